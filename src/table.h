/* table.h - string-keyed hash table (open addressing, linear probing).
 *
 * Keys are byte strings of explicit length; the table does NOT copy them:
 * the key memory must stay valid while the entry exists (typically the key
 * lives inside the value).  Values are opaque pointers.
 */
#ifndef AEMP_TABLE_H
#define AEMP_TABLE_H

#include <stddef.h>
#include <string.h>
#include <stdint.h>

/* 24 bytes: a watcher's mirror of a family of N keys is mostly these
 * (keys are shorter than 4 GiB, as every string of a message is). */
typedef struct aemp_table_slot {
    const char *key;     /* NULL = empty; TOMBSTONE = deleted */
    void *value;
    uint32_t hash;       /* the low half of aemp__hash */
    uint32_t len;
} aemp_table_slot_t;

typedef struct aemp_table {
    aemp_table_slot_t *slots;
    uint32_t cap;    /* power of two, or 0 */
    uint32_t used;   /* live entries */
    uint32_t dead;   /* tombstones */
} aemp_table_t;

#define AEMP_TABLE_INIT { NULL, 0, 0, 0 }

/* 1 if the byte strings a[0..alen) and b[0..blen) are equal.  Short ones
 * (node IDs, port names) are compared in line: for a few bytes a call of
 * memcmp costs more than the comparison. */
static inline int aemp__same_key(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    if (alen > 16)
        return memcmp(a, b, alen) == 0;
    if (alen >= 8) {   /* two overlapping words from each */
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8);
        memcpy(&a1, a + alen - 8, 8);
        memcpy(&b0, b, 8);
        memcpy(&b1, b + alen - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (alen >= 4) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4);
        memcpy(&a1, a + alen - 4, 4);
        memcpy(&b0, b, 4);
        memcpy(&b1, b + alen - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    for (size_t i = 0; i < alen; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* Abort with a message for a key of 4 GiB or more (a slot keeps a 32-bit
 * length; every string of a message is shorter). */
void aemp__table_key_check(size_t len);

/* The growth rule of a table (and of kv_index.c's index), at most 3/4
 * full, deleted slots included.  Before one more insert into `cap` slots
 * (0: none yet) holding `used` entries and `dead` deleted slots: 0 if it
 * has room, else the slots to rehash into -- `min` for the first, twice
 * as many if the entries alone fill half, else as many (the rehash drops
 * the deleted slots). */
static inline size_t aemp__table_regrow(size_t used, size_t dead, size_t cap, size_t min)
{
    if ((used + dead + 1) * 4 < cap * 3)
        return 0;
    return !cap ? min : used * 2 + 2 > cap ? cap * 2 : cap;
}

/* The same before `more` inserts: 0 if there is room, else the smallest
 * power-of-two multiple of cap (of min if cap is 0) that has it. */
static inline size_t aemp__table_reserve_to(size_t used, size_t dead, size_t more, size_t cap, size_t min)
{
    size_t need = used + dead + more + 1, to = cap ? cap : min;
    while (need * 4 >= to * 3)
        to *= 2;
    return to > cap ? to : 0;
}

/* Hash of a byte string: stable within a process, seeded at random for
 * each (so that the order of a table's entries differs between runs). */
uint64_t aemp__hash(const char *s, size_t len);

/* Look up a key; NULL if absent.  O(1) expected. */
void *aemp__table_get(const aemp_table_t *t, const char *key, size_t len);

/* Insert or replace; returns the previous value or NULL. */
void *aemp__table_put(aemp_table_t *t, const char *key, size_t len, void *value);

/* The slot of key, with one probe: the existing one (*created = 0), or a
 * new one (*created = 1) holding the caller's key pointer and a NULL
 * value, which the caller then points at storage that lives with the
 * entry (slot->key, slot->value).  Valid until the next insert. */
aemp_table_slot_t *aemp__table_slot(aemp_table_t *t, const char *key, size_t len, int *created);

/* aemp__table_slot with the key's hash given: h = (uint32_t)aemp__hash(key, len). */
aemp_table_slot_t *aemp__table_slot_h(aemp_table_t *t, const char *key, size_t len, uint32_t h, int *created);

/* Load the slot where the probe of each of n keys (their hashes h[0..n))
 * begins, all in one go, and return a value of no meaning (it keeps the
 * loads): a loop over many keys of a big table that other work pushed out
 * of the caches calls it for a batch of keys before their look-ups, so
 * that the cache misses of the batch overlap instead of following each
 * other (a software prefetch a few keys ahead did not hide them).
 * A table that grows meanwhile only makes the loads useless. */
uintptr_t aemp__table_load_first(const aemp_table_t *t, const uint32_t *h, size_t n);

/* Make room for `more` new entries, so that inserting them does not
 * grow the table step by step (one resize at most, now). */
void aemp__table_reserve(aemp_table_t *t, size_t more);

/* Remove a key; returns its value or NULL if absent. */
void *aemp__table_del(aemp_table_t *t, const char *key, size_t len);

/* Iterate: start with *pos = 0; returns 1 with key/value of the next entry,
 * 0 at the end.  The table must not be modified during iteration except by
 * deleting the entry just returned. */
int aemp__table_next(const aemp_table_t *t, size_t *pos, const char **key, size_t *len, void **value);

/* Free the slot array (not keys or values). */
void aemp__table_free(aemp_table_t *t);

#endif
