/* kv_index.h - a compact hash index of aemp_kv_t entries (global.h) by
 * their keys: the table of a watcher's mirror of a family.
 *
 * An aemp_table_t slot is 24 bytes (key, value, hash, length), because a
 * table's key may live anywhere.  An entry holds its own key and length,
 * so the index keeps only the key's 32-bit hash and the entry's address:
 * 12 bytes a slot, in two arrays (every hash, then every address), and a
 * probe reads the hashes alone until one matches.  A 4096-key mirror is
 * 8192 slots: 96 KiB instead of 192, and its doublings on the way there
 * 96 KiB instead of 192 more -- pages that every one of thousands of
 * watcher processes on a machine would touch for the first time.
 *
 * Open addressing with linear probing, grown by the tables' rule (at
 * most 3/4 full, deleted slots included: aemp__table_regrow in table.h).
 * The index does not own its entries (the mirror's pool does).  Every
 * operation O(1) expected, iteration O(capacity).  One thread.
 */
#ifndef AEMP_KV_INDEX_H
#define AEMP_KV_INDEX_H

#include "global.h"

#include <stddef.h>
#include <stdint.h>

typedef struct aemp_kv_index {
    uint32_t *hash;   /* cap slot hashes (KV_INDEX_EMPTY, _DELETED or a key's), then cap entry addresses */
    uint32_t cap;     /* power of two, or 0 */
    uint32_t used;    /* entries */
    uint32_t dead;    /* deleted slots */
} aemp_kv_index_t;

#define AEMP_KV_INDEX_INIT { NULL, 0, 0, 0 }

/* The hash an index keeps for a key whose aemp__hash is h (two values
 * mark empty and deleted slots; a key's hash is never either). */
static inline uint32_t aemp__kv_index_hash(uint64_t h)
{
    uint32_t v = (uint32_t)h;
    return v < 2 ? v + 2 : v;
}

/* The entry of key (h = aemp__kv_index_hash(aemp__hash(key, len))), or NULL. */
aemp_kv_t *aemp__kv_index_get_h(const aemp_kv_index_t *ix, const char *key, size_t len, uint32_t h);

/* aemp__kv_index_get_h with the hash computed. */
aemp_kv_t *aemp__kv_index_get(const aemp_kv_index_t *ix, const char *key, size_t len);

/* The place of key's entry (h as for get_h), with one probe: the existing
 * entry's (*created = 0), or a new one (*created = 1) that holds NULL and
 * that the caller must point at the key's entry before anything else
 * touches the index.  Valid until the next insert. */
aemp_kv_t **aemp__kv_index_place_h(aemp_kv_index_t *ix, const char *key, size_t len, uint32_t h, int *created);

/* Remove key's entry from the index and return it (the caller owns it),
 * or NULL if there is none. */
aemp_kv_t *aemp__kv_index_take(aemp_kv_index_t *ix, const char *key, size_t len);

/* Iterate (start with *pos = 0): 1 with the next entry in *e, 0 at the
 * end.  Only the entry just returned may be taken meanwhile. */
int aemp__kv_index_next(const aemp_kv_index_t *ix, size_t *pos, aemp_kv_t **e);

/* Make room for `more` new entries: inserting them grows the index at
 * most once, now. */
void aemp__kv_index_reserve(aemp_kv_index_t *ix, size_t more);

/* Load the slot where the probe of each of n keys (h[0..n): the low 32
 * bits of their aemp__hash, as a caller that also uses them for an
 * aemp_table_t has them) begins, all in one go, and return a value of no meaning (it
 * keeps the loads): the misses of a batch of look-ups in a big index
 * overlap instead of following each other (as aemp__table_load_first). */
uintptr_t aemp__kv_index_load_first(const aemp_kv_index_t *ix, const uint32_t *h, size_t n);

/* Free the slots (not the entries); ix is empty and usable afterwards. */
void aemp__kv_index_free(aemp_kv_index_t *ix);

#endif
