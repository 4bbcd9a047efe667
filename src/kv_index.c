/* kv_index.c - a compact hash index of aemp_kv_t entries (kv_index.h). */
#include "kv_index.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define KV_INDEX_EMPTY 0u
#define KV_INDEX_DELETED 1u
#define KV_INDEX_MIN 4   /* slots of an index's first arrays */

/* The entry addresses: after the cap hashes (cap >= 4, so 8-aligned). */
static inline aemp_kv_t **entries(const aemp_kv_index_t *ix)
{
    return (aemp_kv_t **)(void *)(ix->hash + ix->cap);
}

static inline int same(const aemp_kv_t *e, const char *key, size_t len)
{
    return aemp__same_key(e->key, e->len, key, len);
}

/* The slot of key, or -1. */
static long find(const aemp_kv_index_t *ix, const char *key, size_t len, uint32_t h)
{
    if (!ix->cap)
        return -1;
    size_t mask = ix->cap - 1;
    aemp_kv_t *const *ent = entries(ix);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t s = ix->hash[i];
        if (s == KV_INDEX_EMPTY)
            return -1;
        if (s == h && same(ent[i], key, len))
            return (long)i;
    }
}

static void resize(aemp_kv_index_t *ix, size_t cap)
{
    uint32_t *old = ix->hash;
    aemp_kv_t **oldent = old ? entries(ix) : NULL;
    size_t oldcap = ix->cap;
    /* both arrays in one block; only the hashes need to start zeroed (an
     * address is read only where its hash is a key's) */
    size_t slot = sizeof(uint32_t) + sizeof(aemp_kv_t *);
    uint32_t *hash = cap <= (size_t)1 << 31 && cap <= SIZE_MAX / slot ? malloc(cap * slot) : NULL;
    if (!hash) {
        fprintf(stderr, "aemp: out of memory (index of %zu slots)\n", cap);
        abort();
    }
    memset(hash, 0, cap * sizeof *hash);
    ix->hash = hash;
    ix->cap = (uint32_t)cap;
    ix->dead = 0;
    aemp_kv_t **ent = entries(ix);
    size_t mask = cap - 1;
    for (size_t j = 0; j < oldcap; j++) {
        uint32_t h = old[j];
        if (h == KV_INDEX_EMPTY || h == KV_INDEX_DELETED)
            continue;
        size_t i = h & mask;
        while (hash[i] != KV_INDEX_EMPTY)
            i = (i + 1) & mask;
        hash[i] = h;
        ent[i] = oldent[j];
    }
    free(old);
}

aemp_kv_t *aemp__kv_index_get_h(const aemp_kv_index_t *ix, const char *key, size_t len, uint32_t h)
{
    long i = find(ix, key, len, h);
    return i < 0 ? NULL : entries(ix)[i];
}

aemp_kv_t *aemp__kv_index_get(const aemp_kv_index_t *ix, const char *key, size_t len)
{
    return aemp__kv_index_get_h(ix, key, len, aemp__kv_index_hash(aemp__hash(key, len)));
}

aemp_kv_t **aemp__kv_index_place_h(aemp_kv_index_t *ix, const char *key, size_t len, uint32_t h, int *created)
{
    aemp__table_key_check(len);
    /* room first, so that one probe finds the key or the slot for it */
    size_t to = aemp__table_regrow(ix->used, ix->dead, ix->cap, KV_INDEX_MIN);
    if (to)
        resize(ix, to);
    size_t mask = ix->cap - 1;
    aemp_kv_t **ent = entries(ix);
    size_t room = (size_t)-1;   /* the first deleted slot on the way */
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t s = ix->hash[i];
        if (s == KV_INDEX_EMPTY) {
            if (room == (size_t)-1)
                room = i;
            break;
        }
        if (s == KV_INDEX_DELETED) {
            if (room == (size_t)-1)
                room = i;
        } else if (s == h && same(ent[i], key, len)) {
            *created = 0;
            return &ent[i];
        }
    }
    if (ix->hash[room] == KV_INDEX_DELETED)
        ix->dead--;
    ix->hash[room] = h;
    ent[room] = NULL;
    ix->used++;
    *created = 1;
    return &ent[room];
}

aemp_kv_t *aemp__kv_index_take(aemp_kv_index_t *ix, const char *key, size_t len)
{
    long i = find(ix, key, len, aemp__kv_index_hash(aemp__hash(key, len)));
    if (i < 0)
        return NULL;
    aemp_kv_t *e = entries(ix)[i];
    ix->hash[i] = KV_INDEX_DELETED;
    ix->used--;
    ix->dead++;
    return e;
}

int aemp__kv_index_next(const aemp_kv_index_t *ix, size_t *pos, aemp_kv_t **e)
{
    while (*pos < ix->cap) {
        size_t i = (*pos)++;
        if (ix->hash[i] != KV_INDEX_EMPTY && ix->hash[i] != KV_INDEX_DELETED) {
            *e = entries(ix)[i];
            return 1;
        }
    }
    return 0;
}

void aemp__kv_index_reserve(aemp_kv_index_t *ix, size_t more)
{
    size_t to = aemp__table_reserve_to(ix->used, ix->dead, more, ix->cap, KV_INDEX_MIN);
    if (to)
        resize(ix, to);
}

uintptr_t aemp__kv_index_load_first(const aemp_kv_index_t *ix, const uint32_t *h, size_t n)
{
    uintptr_t sum = 0;
    if (ix->cap)
        for (size_t i = 0; i < n; i++)   /* independent loads: their misses overlap */
            sum += ix->hash[aemp__kv_index_hash(h[i]) & (ix->cap - 1)];
    return sum;
}

void aemp__kv_index_free(aemp_kv_index_t *ix)
{
    free(ix->hash);
    *ix = (aemp_kv_index_t)AEMP_KV_INDEX_INIT;
}
