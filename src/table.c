/* table.c - string-keyed hash table (see table.h). */
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "random.h"

static const char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

/* One step of the hash: fold the word w into h, multiply, and bring the
 * high bits (where the multiply put the word's influence) down. */
static inline uint64_t hash_mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 32);
}

/* The hash's seed, random for each process (a constructor: the library's
 * first hash may come before anything else runs).  Keys come from peers
 * -- database keys, port and node IDs -- and with a hash anyone can
 * compute, a peer could pick keys that all probe the same slots of every
 * watcher's mirror and make each insert cost a scan.  Without the random
 * bytes (the kernel's generator failed) the clock and an address stand in. */
static uint64_t hash_seed = 0xcbf29ce484222325ULL;

__attribute__((constructor)) static void hash_seed_init(void)
{
    uint64_t r;
    if (aemp__random_bytes(&r, sizeof r) != 0) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        r = (uint64_t)t.tv_nsec ^ (uint64_t)t.tv_sec << 32 ^ (uint64_t)(uintptr_t)&r;
    }
    hash_seed ^= r;
}

uint64_t aemp__hash(const char *s, size_t len)
{
    /* Eight bytes a step (keys are node IDs, port IDs and names: a step
     * per byte cost a multiply's latency per byte), the last word loaded
     * at the end of the key, overlapping the one before: for a given
     * length every byte is in a word at a fixed offset.  The length is
     * mixed into the seed in a step of its own (XORed into the seed, 6
     * and "2111..." met 5 and "1111...").  A final avalanche with two
     * multiplies, since the tables probe on the low bits and keep the low
     * 32: similar keys (port names share long prefixes) spread. */
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = hash_mix(hash_seed, len), w;
    if (len >= 8) {
        for (size_t n = len; n > 8; n -= 8, p += 8) {
            memcpy(&w, p, 8);
            h = hash_mix(h, w);
        }
        memcpy(&w, s + len - 8, 8);
        h = hash_mix(h, w);
    } else if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + len - 4, 4);
        h = hash_mix(h, (uint64_t)hi << 32 | lo);
    } else if (len) {
        h = hash_mix(h, p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16);
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Slots of a table's first array: room for two entries.  Most tables
 * are small (a global node keeps several per node it serves: the node's
 * shard, its families, the holders of each of its keys), and 16 slots
 * (512 bytes) each were a tenth of a global node's memory per worker. */
#define TABLE_MIN 4

static aemp_table_slot_t *find(const aemp_table_t *t, const char *key, size_t len, uint32_t h)
{
    if (!t->cap)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        aemp_table_slot_t *s = &t->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMBSTONE && s->hash == h && aemp__same_key(s->key, s->len, key, len))
            return s;
    }
}

static void resize(aemp_table_t *t, size_t cap)
{
    aemp_table_slot_t *old = t->slots;
    size_t oldcap = t->cap;
    t->slots = cap <= (size_t)1 << 31 ? calloc(cap, sizeof *t->slots) : NULL;
    if (!t->slots) {
        fprintf(stderr, "aemp: out of memory (table of %zu slots)\n", cap);
        abort();
    }
    t->cap = (uint32_t)cap;
    t->dead = 0;
    size_t mask = cap - 1;
    for (size_t j = 0; j < oldcap; j++) {
        aemp_table_slot_t *s = &old[j];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        size_t i = s->hash & mask;
        while (t->slots[i].key)
            i = (i + 1) & mask;
        t->slots[i] = *s;
    }
    free(old);
}

void *aemp__table_get(const aemp_table_t *t, const char *key, size_t len)
{
    aemp_table_slot_t *s = find(t, key, len, (uint32_t)aemp__hash(key, len));
    return s ? s->value : NULL;
}

aemp_table_slot_t *aemp__table_slot(aemp_table_t *t, const char *key, size_t len, int *created)
{
    return aemp__table_slot_h(t, key, len, (uint32_t)aemp__hash(key, len), created);
}

void aemp__table_key_check(size_t len)
{
    if (len > UINT32_MAX) {
        fprintf(stderr, "aemp: table key of %zu bytes\n", len);
        abort();
    }
}

aemp_table_slot_t *aemp__table_slot_h(aemp_table_t *t, const char *key, size_t len, uint32_t h, int *created)
{
    aemp__table_key_check(len);
    /* room first, so that one probe finds the key or the slot for it */
    size_t to = aemp__table_regrow(t->used, t->dead, t->cap, TABLE_MIN);
    if (to)
        resize(t, to);
    size_t mask = t->cap - 1;
    aemp_table_slot_t *room = NULL;   /* the first tombstone on the way */
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        aemp_table_slot_t *s = &t->slots[i];
        if (!s->key) {
            if (!room)
                room = s;
            break;
        }
        if (s->key == TOMBSTONE) {
            if (!room)
                room = s;
        } else if (s->hash == h && aemp__same_key(s->key, s->len, key, len)) {
            *created = 0;
            return s;
        }
    }
    if (room->key == TOMBSTONE)
        t->dead--;
    *room = (aemp_table_slot_t){ key, NULL, h, (uint32_t)len };
    t->used++;
    *created = 1;
    return room;
}

uintptr_t aemp__table_load_first(const aemp_table_t *t, const uint32_t *h, size_t n)
{
    uintptr_t sum = 0;
    if (t->cap)
        for (size_t i = 0; i < n; i++)   /* independent loads: their misses overlap */
            sum += (uintptr_t)t->slots[h[i] & (t->cap - 1)].key;
    return sum;
}

void aemp__table_reserve(aemp_table_t *t, size_t more)
{
    size_t to = aemp__table_reserve_to(t->used, t->dead, more, t->cap, TABLE_MIN);
    if (to)
        resize(t, to);
}

void *aemp__table_put(aemp_table_t *t, const char *key, size_t len, void *value)
{
    int created;
    aemp_table_slot_t *s = aemp__table_slot(t, key, len, &created);
    void *old = s->value;
    s->key = key;
    s->value = value;
    return old;
}

void *aemp__table_del(aemp_table_t *t, const char *key, size_t len)
{
    aemp_table_slot_t *s = find(t, key, len, (uint32_t)aemp__hash(key, len));
    if (!s)
        return NULL;
    void *v = s->value;
    s->key = TOMBSTONE;
    s->value = NULL;
    t->used--;
    t->dead++;
    return v;
}

int aemp__table_next(const aemp_table_t *t, size_t *pos, const char **key, size_t *len, void **value)
{
    while (*pos < t->cap) {
        aemp_table_slot_t *s = &t->slots[(*pos)++];
        if (s->key && s->key != TOMBSTONE) {
            if (key)
                *key = s->key;
            if (len)
                *len = s->len;
            if (value)
                *value = s->value;
            return 1;
        }
    }
    return 0;
}

void aemp__table_free(aemp_table_t *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = t->dead = 0;
}
