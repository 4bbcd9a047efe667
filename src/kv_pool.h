/* kv_pool.h - memory for the entries of one large index of aemp_kv_t
 * (kv_index.h) without a malloc per entry: a watcher's mirror of a family
 * holds one entry per key, thousands of them, made in bursts.
 *
 * Entries are carved from chunks the pool owns, each entry at its exact
 * size rounded up to 8 bytes (malloc would give a 38-byte entry 48 bytes
 * and a call); a released entry is kept for the next one of its size.
 * Entries of more than KV_POOL_MAX_ENTRY bytes, and entries with a nested
 * table, are not the pool's business: it takes them from and gives them
 * back to malloc.  The memory of the chunks is reused for the index's
 * later entries and goes back when the pool is freed, so it is bounded by
 * the most entries the index held at once.  One thread (DESIGN.md).
 */
#ifndef AEMP_KV_POOL_H
#define AEMP_KV_POOL_H

#include "global.h"
#include "kv_index.h"

#define KV_POOL_MAX_ENTRY 128   /* bytes: larger entries come from malloc */
#define KV_POOL_CHUNK 16384     /* bytes of a chunk */

typedef struct aemp_kv_pool {
    char *at, *end;                          /* the unused room of the newest chunk */
    void *chunks;                            /* every chunk (linked through its first word) */
    void *kept[KV_POOL_MAX_ENTRY / 8];       /* released entries of each size (linked likewise) */
} aemp_kv_pool_t;

#define AEMP_KV_POOL_INIT { NULL, NULL, NULL, { NULL } }

/* The entry of key in ix (h = aemp__kv_index_hash(aemp__hash(key, len))),
 * made from pool p if there is none (*created = 1). */
aemp_kv_t *aemp__kv_pool_put_new_h(aemp_kv_pool_t *p, aemp_kv_index_t *ix, const char *key, size_t len, uint32_t h,
                                   int *created);

/* Release entry e of pool p that no index holds (its value unreferenced):
 * kept for the next entry of its size. */
void aemp__kv_pool_release(aemp_kv_pool_t *p, aemp_kv_t *e);

/* Release every entry of index ix (of pool p) and free ix's slots. */
void aemp__kv_pool_clear(aemp_kv_pool_t *p, aemp_kv_index_t *ix);

/* Free p's chunks: every entry of p must have been released. */
void aemp__kv_pool_free(aemp_kv_pool_t *p);

#endif
