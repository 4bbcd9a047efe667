/* kv_pool.c - entries of an index of aemp_kv_t from chunks (kv_pool.h). */
#include "kv_pool.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "asan.h"

/* Bytes of an entry with a key of len bytes (and its NUL), rounded up to
 * 8 (the low three bits of an entry's address stay free: the mirror's
 * touched records use them). */
static size_t entry_size(size_t len)
{
    return (offsetof(aemp_kv_t, key) + len + 1 + 7) & ~(size_t)7;
}

/* Room for an entry of `size` bytes (<= KV_POOL_MAX_ENTRY). */
static void *pool_take(aemp_kv_pool_t *p, size_t size)
{
    void **kept = &p->kept[size / 8 - 1];
    if (*kept) {
        void *e = *kept;
        UNPOISON(e, size);
        *kept = *(void **)e;
        return e;
    }
    if ((size_t)(p->end - p->at) < size) {
        char *chunk = malloc(KV_POOL_CHUNK);
        if (!chunk)
            abort();
        *(void **)chunk = p->chunks;
        p->chunks = chunk;
        p->at = chunk + 8;   /* after the link, 8-aligned */
        p->end = chunk + KV_POOL_CHUNK;
    }
    void *e = p->at;
    p->at += size;
    return e;
}

aemp_kv_t *aemp__kv_pool_put_new_h(aemp_kv_pool_t *p, aemp_kv_index_t *ix, const char *key, size_t len, uint32_t h,
                                   int *created)
{
    aemp_kv_t **place = aemp__kv_index_place_h(ix, key, len, h, created);
    if (!*created)
        return *place;
    size_t size = entry_size(len);
    aemp_kv_t *e = size <= KV_POOL_MAX_ENTRY ? pool_take(p, size) : malloc(size);
    if (!e)
        abort();
    return *place = aemp__kv_init(e, key, len);
}

void aemp__kv_pool_release(aemp_kv_pool_t *p, aemp_kv_t *e)
{
    size_t size = entry_size(e->len);
    if (size > KV_POOL_MAX_ENTRY) {   /* malloc's */
        aemp__kv_free(e);
        return;
    }
    aemp__kv_empty(e);
    void **kept = &p->kept[size / 8 - 1];
    *(void **)e = *kept;
    *kept = e;
    POISON((char *)e + sizeof(void *), size - sizeof(void *));
}

void aemp__kv_pool_clear(aemp_kv_pool_t *p, aemp_kv_index_t *ix)
{
    size_t pos = 0;
    aemp_kv_t *e;
    while (aemp__kv_index_next(ix, &pos, &e))
        aemp__kv_pool_release(p, e);
    aemp__kv_index_free(ix);
}

void aemp__kv_pool_free(aemp_kv_pool_t *p)
{
    while (p->chunks) {
        void *chunk = p->chunks;
        p->chunks = *(void **)chunk;
        UNPOISON(chunk, KV_POOL_CHUNK);
        free(chunk);
    }
    *p = (aemp_kv_pool_t)AEMP_KV_POOL_INIT;
}
