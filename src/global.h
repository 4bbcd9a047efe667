/* global.h - internal interface of the global service (global.c). */
#ifndef AEMP_GLOBAL_H
#define AEMP_GLOBAL_H

#include "internal.h"
#include "proto.h"

/* Set up state (node init) / free it (shutdown). */
void aemp__global_init(void);
void aemp__global_shutdown(void);

/* After configure: register the g_* requests, publish our listeners in
 * family 'l, look for a master among the seeds. */
void aemp__global_start(void);

/* Turn this node into a global node (a seed that was contacted as one, or
 * that found itself in its seed list). */
void aemp__global_become(void);

/* Ask the master where node listens (answer: g_found). */
void aemp__global_find(const char *node);

/* Seeds (seed.c): the node IDs learned for the seed addresses (new
 * reference), and whether a node ID is one of them. */
aemp_msg_t *aemp__seed_nodes(void);
int aemp__seed_is_node(const char *node);

/* The dialect of the connection to node (AEMP_DIALECT_*), 0 if none. */
unsigned aemp__node_dialect(const char *node);

/* On a global node: how many (node, family) subscriptions it feeds, how
 * many of them copy the whole family at each report (g_mon_cost), and
 * how many libaemp global nodes that are up (itself included) share the
 * fan-out budget; 0, 0 and 0 elsewhere (aemp_stats). */
void aemp__global_gauges(size_t *subscriptions, size_t *costly, size_t *share);

/* 1 if node is this node or is connected and its greeting names libaemp
 * as its provider (so it understands libaemp's own requests), else 0. */
int aemp__node_is_libaemp(const char *node);

/* 1.30 compatibility (global1.c). */
void aemp__global1_init(void);
void aemp__global1_start(void);
void aemp__global1_shutdown(void);
void aemp__global1_reg(const char *group, const char *port);
void aemp__global1_unreg(const char *group, const char *port);
/* Members of a group learned from 1.30 nodes: a new message whose root is
 * a map {port -> node}, or NULL if there are none. */
aemp_msg_t *aemp__global1_members(const char *group);

/* Group membership may have changed (grp_mon callbacks re-check). */
void aemp__grp_changed(const char *group);

/* String-keyed tables of the distribution layer (global.c): a table.h
 * table whose values are aemp_kv_t entries that own their key.  One entry
 * type serves every level: a set member (nothing), a database key (val), a
 * family or a node's shard (sub, a nested table of entries).  Keys are any
 * bytes of explicit length (NUL-terminated copies, so C-string keys can be
 * printed).  Every operation is O(1) expected, iteration O(capacity). */
typedef struct aemp_kv {
    aemp_msg_t *val;     /* a value (its root), or NULL */
    aemp_table_t *sub;   /* a nested table of aemp_kv_t (aemp__kv_sub), or NULL */
    uint32_t len;        /* of the key (a table key: shorter than 4 GiB) */
    char key[];
} aemp_kv_t;

/* e's nested table, made (empty) on first use: most entries -- a set
 * member, a database key in a watcher's mirror -- never have one, and an
 * entry is 20 bytes and its key (a 4096-key mirror: 128 KiB less than
 * with the table inside every entry). */
aemp_table_t *aemp__kv_sub(aemp_kv_t *e);

/* e's nested table to read: an empty one if it has none. */
const aemp_table_t *aemp__kv_sub_ro(const aemp_kv_t *e);

/* Entries in e's nested table. */
static inline size_t aemp__kv_count(const aemp_kv_t *e)
{
    return e->sub ? e->sub->used : 0;
}

/* The entry for key, or NULL. */
aemp_kv_t *aemp__kv_get(const aemp_table_t *t, const char *key, size_t len);

/* The entry for key, created empty if there is none. */
aemp_kv_t *aemp__kv_put(aemp_table_t *t, const char *key, size_t len);

/* aemp__kv_put that tells whether it created the entry (*created = 1). */
aemp_kv_t *aemp__kv_put_new(aemp_table_t *t, const char *key, size_t len, int *created);

/* Make e -- offsetof(aemp_kv_t, key) + len + 1 bytes from whoever keeps
 * the entries -- the entry of key (no value, no nested table; len below
 * 4 GiB).  Returns e. */
aemp_kv_t *aemp__kv_init(aemp_kv_t *e, const char *key, size_t len);

/* Set key's value to val (a reference is taken; NULL allowed), creating
 * the entry if needed; returns it. */
aemp_kv_t *aemp__kv_set(aemp_table_t *t, const char *key, size_t len, aemp_msg_t *val);

/* Remove key's entry from t and return it (the caller owns it: free it
 * with aemp__kv_free or keep it elsewhere), or NULL. */
aemp_kv_t *aemp__kv_take(aemp_table_t *t, const char *key, size_t len);

/* Drop e's value and nested table (with everything below it); the entry
 * and its key stay. */
void aemp__kv_empty(aemp_kv_t *e);

/* Free an entry that no table holds, with everything below it. */
void aemp__kv_free(aemp_kv_t *e);

/* Remove key with everything below it; 1 if it was there, else 0. */
int aemp__kv_del(aemp_table_t *t, const char *key, size_t len);

/* Iterate (start with *pos = 0): 1 with the next entry in *e, 0 at the
 * end.  Only the entry just returned may be deleted meanwhile. */
int aemp__kv_next(const aemp_table_t *t, size_t *pos, aemp_kv_t **e);

/* Free every entry (recursively) and the table's storage; t is empty and
 * usable afterwards. */
void aemp__kv_clear(aemp_table_t *t);

/* Append t to a message under construction as one map {key: value}
 * (entries without a value: null), in table order. */
void aemp__kv_build_map(aemp_build_t *b, const aemp_table_t *t);


#endif
