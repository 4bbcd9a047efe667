/* global.c - the 2.02 network model: seeds and global nodes, masters,
 * address lookup, and the replicated database (db_*), with the 1.x group
 * API (grp_*) on top.
 *
 * Every node keeps its own local database (the entries it set) and sends
 * every change to its master, a global node.  Global nodes are seeds that
 * someone contacted as a seed (or that found themselves in their seed
 * list); they mesh with each other, keep one shard per slave and per other
 * global node, merge the shards into the global database, answer queries
 * and feed monitors.  All of it travels as node-port requests (g_*), which
 * are registered here in the kernel's request table with the shapes of
 * their arguments; a global node is its own master and sends those
 * requests to itself through the same path.
 *
 * Databases are string-keyed tables (aemp_kv_t, see global.h): family ->
 * key -> value, each value a message whose root is the value, so byte
 * strings and uint64 values pass through unchanged.  Values are immutable:
 * a shard, the merged view and the messages built from them share one
 * message per value.  Wire layouts (tests/vectors/capture2/messages2.md):
 *   g_slave [db]            g_global []             g_set [db]
 *   g_upd [family, {key: value} or null, [key...] or null]
 *   g_find [node]           g_found [node, [addr...] or null]
 *   g_db_family/keys/values [family, id]   ->   g_reply [id, result]
 *   g_mon1 [family]  ->  g_chg1 [family, {key: value} or null]
 *   g_mon0 [family]         g_chg2 [family, {key: value}, [key...]]
 * where db is {family: {key: value}}.
 *
 * Monitors (db_mon, grp_mon) read a local mirror of the family that the
 * master keeps up to date (g_mon1 -> g_chg1, then g_chg2).  Changes are
 * reported from the event loop, once for all the changes that arrived
 * until then: a monitor's family argument is a new message each time (its
 * cost is the family's size), so a burst of updates costs one report.
 */
#include "global.h"
#include "fanout_pace.h"
#include "kv_pool.h"

#include "conn.h"
#include "kernel.h"
#include "node.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest value the database accepts, counted with the value's root: the
 * deepest message that carries one is [tag, {family: {key: value}}]
 * (g_slave, g_set), whose array and two maps come on top. */
#define DB_VALUE_DEPTH (AEMP_MSG_MAX_DEPTH - 3)

/* ------------------------------------------------------- string tables */

aemp_kv_t *aemp__kv_get(const aemp_table_t *t, const char *key, size_t len)
{
    return aemp__table_get(t, key, len);
}

aemp_kv_t *aemp__kv_init(aemp_kv_t *e, const char *key, size_t len)
{
    e->val = NULL;
    e->sub = NULL;
    e->len = (uint32_t)len;   /* the table or index refused a longer key */
    memcpy(e->key, key, len);
    e->key[len] = 0;
    return e;
}

aemp_kv_t *aemp__kv_put_new(aemp_table_t *t, const char *key, size_t len, int *created)
{
    aemp_table_slot_t *s = aemp__table_slot(t, key, len, created);
    if (!*created)
        return s->value;
    aemp_kv_t *e = malloc(offsetof(aemp_kv_t, key) + len + 1);
    if (!e)
        abort();
    aemp__kv_init(e, key, len);
    s->key = e->key;
    s->value = e;
    return e;
}

aemp_kv_t *aemp__kv_put(aemp_table_t *t, const char *key, size_t len)
{
    int created;
    return aemp__kv_put_new(t, key, len, &created);
}

aemp_kv_t *aemp__kv_set(aemp_table_t *t, const char *key, size_t len, aemp_msg_t *val)
{
    aemp_kv_t *e = aemp__kv_put(t, key, len);
    aemp_msg_ref(val);   /* before the unref: val may be the old value */
    aemp_msg_unref(e->val);
    e->val = val;
    return e;
}

void aemp__kv_empty(aemp_kv_t *e)
{
    aemp_msg_unref(e->val);
    e->val = NULL;
    if (e->sub) {
        aemp__kv_clear(e->sub);
        free(e->sub);
        e->sub = NULL;
    }
}

void aemp__kv_free(aemp_kv_t *e)
{
    aemp__kv_empty(e);
    free(e);
}

aemp_table_t *aemp__kv_sub(aemp_kv_t *e)
{
    if (!e->sub && !(e->sub = calloc(1, sizeof *e->sub)))
        abort();
    return e->sub;
}

const aemp_table_t *aemp__kv_sub_ro(const aemp_kv_t *e)
{
    static const aemp_table_t none = AEMP_TABLE_INIT;
    return e->sub ? e->sub : &none;
}

aemp_kv_t *aemp__kv_take(aemp_table_t *t, const char *key, size_t len)
{
    return aemp__table_del(t, key, len);
}

int aemp__kv_del(aemp_table_t *t, const char *key, size_t len)
{
    aemp_kv_t *e = aemp__kv_take(t, key, len);
    if (!e)
        return 0;
    aemp__kv_free(e);
    return 1;
}

int aemp__kv_next(const aemp_table_t *t, size_t *pos, aemp_kv_t **e)
{
    void *v;
    if (!aemp__table_next(t, pos, NULL, NULL, &v))
        return 0;
    *e = v;
    return 1;
}

void aemp__kv_clear(aemp_table_t *t)
{
    size_t pos = 0;
    aemp_kv_t *e;
    while (aemp__kv_next(t, &pos, &e))
        aemp__kv_free(e);
    aemp__table_free(t);
}

/* The next entry of a container of entries (start with *pos = 0): a
 * table (aemp__kv_next) or a mirror's index (aemp__kv_index_next). */
typedef int (*kv_next_fn)(const void *c, size_t *pos, aemp_kv_t **e);

static int table_next(const void *t, size_t *pos, aemp_kv_t **e)
{
    return aemp__kv_next(t, pos, e);
}

static int index_next(const void *ix, size_t *pos, aemp_kv_t **e)
{
    return aemp__kv_index_next(ix, pos, e);
}

/* Append the entries of c to a message under construction as one map
 * {key: value} (an entry without a value: null), in c's order. */
static void build_entry_map(aemp_build_t *b, kv_next_fn next, const void *c)
{
    aemp_build_map(b);
    size_t pos = 0;
    aemp_kv_t *e;
    while (next(c, &pos, &e)) {
        aemp_build_strn(b, e->key, e->len);
        if (e->val)
            aemp_build_val(b, aemp_msg_root(e->val));
        else
            aemp_build_null(b);
    }
    aemp_build_close(b);
}

void aemp__kv_build_map(aemp_build_t *b, const aemp_table_t *t)
{
    build_entry_map(b, table_next, t);
}

/* Bytes a key is assumed to take in a builder (a port ID with its NUL),
 * reserved per key when the keys of a table are copied into one. */
#define KEY_GUESS 32

/* Append the keys of t as one array of strings. */
static void build_keys(aemp_build_t *b, const aemp_table_t *t)
{
    aemp_build_array(b);
    aemp__build_reserve(b, t->used, (size_t)t->used * KEY_GUESS);
    size_t pos = 0;
    aemp_kv_t *e;
    while (aemp__kv_next(t, &pos, &e))
        aemp_build_strn(b, e->key, e->len);
    aemp_build_close(b);
}

/* Append the values of t as one array. */
static void build_values(aemp_build_t *b, const aemp_table_t *t)
{
    aemp_build_array(b);
    size_t pos = 0;
    aemp_kv_t *e;
    while (aemp__kv_next(t, &pos, &e))
        aemp_build_val(b, aemp_msg_root(e->val));
    aemp_build_close(b);
}

/* Append a database (family -> key -> value) as {family: {key: value}}. */
static void build_db(aemp_build_t *b, const aemp_table_t *db)
{
    aemp_build_map(b);
    size_t pos = 0;
    aemp_kv_t *f;
    while (aemp__kv_next(db, &pos, &f)) {
        aemp_build_strn(b, f->key, f->len);
        aemp__kv_build_map(b, aemp__kv_sub_ro(f));
    }
    aemp_build_close(b);
}

/* Pairs of v if it is a map, elements if it is an array, else 0 (v may
 * be NULL). */
static size_t map_len(const aemp_val_t *v)
{
    return aemp_val_type(v) == AEMP_T_MAP ? aemp_val_len(v) : 0;
}

static size_t array_len(const aemp_val_t *v)
{
    return aemp_val_type(v) == AEMP_T_ARRAY ? aemp_val_len(v) : 0;
}

/* Index the strings of an array or the keys of a map into t (key ->
 * their value cell; nothing is copied: t borrows v's memory). */
static void index_strings(aemp_table_t *t, const aemp_val_t *v)
{
    aemp_type_t type = aemp_val_type(v);
    for (size_t i = 0, n = map_len(v) + array_len(v); i < n; i++) {
        const aemp_val_t *s = type == AEMP_T_MAP ? aemp_val_key(v, i) : aemp_val_at(v, i);
        size_t len;
        const char *str = aemp_val_str(s, &len);
        if (str)
            aemp__table_put(t, str, len, (void *)s);
    }
}

/* The entry family/key of a database, or NULL. */
static aemp_kv_t *db_entry(const aemp_table_t *db, const char *family, const char *key, size_t klen)
{
    aemp_kv_t *f = aemp__kv_get(db, family, strlen(family));
    return f ? aemp__kv_get(aemp__kv_sub_ro(f), key, klen) : NULL;
}

/* 1 if v is nested at most max deep (its root counted). */
static int depth_within(const aemp_val_t *v, int max)
{
    if (max < 1)
        return 0;
    aemp_type_t type = aemp_val_type(v);
    for (size_t i = 0, n = map_len(v) + array_len(v); i < n; i++)
        if (!depth_within(type == AEMP_T_MAP ? aemp_val_value(v, i) : aemp_val_at(v, i), max - 1))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ state */

/* The local mirror of a family that db_mon/grp_mon monitors watch. */
typedef struct mirror {
    aemp_kv_index_t keys;    /* key -> value, as the master told us */
    aemp_kv_pool_t pool;     /* the memory of its entries */
    aemp_table_t touched;    /* keys changed since the last report -> a
                                record (touch_*): did the key exist then,
                                does it now, and whose entry holds the key */
    aemp_msg_t *reported;    /* the family as of the last report (a map), or NULL */
    int synced;              /* the master sent the whole family (g_chg1) */
    int full;                /* a g_chg1 came since the last report */
    int due;                 /* a report job is queued */
    int kept;                /* aemp_grp_get asked for it: it stays when its
                                last monitor goes */
    int cost_told;           /* the report cost the master was told
                                (COST_*), 0 if none */
    char name[];             /* the family */
} mirror_t;

static struct {
    int started;
    int global;              /* we are a global node */
    char *master;            /* node ID of our master, or NULL */
    aemp_table_t local;      /* our local database: family -> key -> value */
    aemp_table_t pending;    /* requests to (re)send to every new master: key -> [tag, args...] */
    aemp_table_t globals;    /* node IDs known to be global (a set) */
    /* global node only */
    aemp_table_t slaves;     /* set of node IDs */
    aemp_table_t shards;     /* node -> family -> key -> value */
    aemp_table_t holders;    /* family -> key -> set of the nodes whose
                                shard holds it (one or two, mostly) */
    aemp_table_t merged;     /* family -> key -> value */
    aemp_table_t subscribers;/* family -> set of node IDs */
    aemp_table_t costly;     /* family -> set of the subscribers whose
                                reports copy the whole family (g_mon_cost) */
    aemp_table_t outboxes;   /* family -> outbox_t: changes not sent yet */
    aemp_table_t snap_wait;  /* family -> set of subscribers that wait for
                                their snapshot (g_chg1, sent by outbox_job) */
    int outbox_due;          /* the job that sends them is queued */
    ev_timer outbox_timer;   /* for the next g_chg2 that waits */
    /* queries and mirrors */
    unsigned long next_query;
    aemp_table_t queries;    /* id -> query_t */
    aemp_table_t mirrors;    /* family -> mirror_t (db_mon) */
    aemp_table_t dbmons;     /* handle -> dbmon_t */
    aemp_handle_t updown;
    aemp_table_t refind;     /* nodes whose address the master did not know yet (a set) */
    ev_timer refind_timer;
} G;

typedef struct query {
    char id[24];
    char kind;               /* 'f'amily, 'k'eys, 'v'alues */
    aemp_db_query_fn cb;
    void *arg;
} query_t;

typedef struct dbmon {
    aemp_handle_t id;
    char *family;
    aemp_db_mon_fn cb;
    aemp_grp_mon_fn gcb;     /* grp_mon adapter */
    void *arg;
    int primed;              /* db_mon: has seen its first call */
    int changes_only;        /* aemp_db_mon_changes: no family map */
    aemp_msg_t *members;     /* grp_mon: the members last reported (an array), or NULL */
} dbmon_t;

/* Send msg (stolen; NULL - building it failed - sends nothing) to node. */
static void send_to(const char *node, aemp_msg_t *msg)
{
    if (msg)
        aemp_snd(node, msg);
}

/* Send a request to the master now (if any) and remember it under key so
 * that a new master gets it again; key NULL = fire and forget. */
static void to_master(const char *key, aemp_msg_t *msg)
{
    if (!msg)
        return;
    if (key)
        aemp__kv_set(&G.pending, key, strlen(key), msg);   /* sent again to a new master */
    if (G.master)
        send_to(G.master, msg);
    else
        aemp_msg_unref(msg);
}

static void pending_done(const char *key)
{
    aemp__kv_del(&G.pending, key, strlen(key));
}

/* The pending-request key "<what> <name>" (malloc'd). */
static char *pending_key(const char *what, const char *name)
{
    size_t len = strlen(what) + 1 + strlen(name) + 1;
    char *k = malloc(len);
    if (!k)
        abort();
    snprintf(k, len, "%s %s", what, name);
    return k;
}

static int is_self(const char *node)
{
    return node && !strcmp(node, aemp__g.nodeid);
}

static int set_has(const aemp_table_t *set, const char *s)
{
    return aemp__kv_get(set, s, strlen(s)) != NULL;
}

static void set_add(aemp_table_t *set, const char *s)
{
    aemp__kv_put(set, s, strlen(s));
}

/* One node-port message for many nodes, encoded once per framing: a node
 * whose connection is up gets those bytes appended to its output as they
 * are; any other (this node, one still connecting) gets the message
 * through aemp_snd, as send_to would. */
typedef struct fanout {
    aemp_msg_t *msg;
    aemp_buf_t enc[AEMP_FRAMING_CBOR + 1];   /* per framing, made on first use */
} fanout_t;

/* Start a fan-out of msg (stolen; NULL: fanout_to sends nothing). */
static void fanout_init(fanout_t *f, aemp_msg_t *msg)
{
    memset(f, 0, sizeof *f);
    f->msg = msg;
}

static void fanout_to(fanout_t *f, const char *node, size_t len)
{
    if (!f->msg)
        return;
    aemp_rnode_t *n = is_self(node) ? NULL : aemp__node_find(node, len);
    aemp_framing_t fr = n && n->conn ? aemp__conn_framing(n->conn) : AEMP_FRAMING_NONE;
    if (fr == AEMP_FRAMING_NONE || fr > AEMP_FRAMING_CBOR) {
        send_to(node, aemp_msg_ref(f->msg));
        return;
    }
    aemp_buf_t *e = &f->enc[fr];
    if (!aemp__buf_used(e))
        aemp__frame_encode(fr, e, "", 0, f->msg);
    aemp__conn_send_encoded(n->conn, "", 0, f->msg, aemp__buf_head(e), aemp__buf_used(e));
}

static void fanout_done(fanout_t *f)
{
    aemp_msg_unref(f->msg);
    for (size_t i = 0; i < sizeof f->enc / sizeof f->enc[0]; i++)
        aemp__buf_free(&f->enc[i]);
}

/* ------------------------------------------------- global node: merging */

/* A list of keys that point into messages alive for the whole update. */
typedef struct keylist {
    size_t n, cap;
    struct { const char *s; size_t len; } *v;
} keylist_t;

static void keys_add(keylist_t *k, const char *s, size_t len)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 8;
        k->v = realloc(k->v, k->cap * sizeof *k->v);
        if (!k->v)
            abort();
    }
    k->v[k->n].s = s;
    k->v[k->n++].len = len;
}

/* What one update did to the merged view. */
typedef struct effects {
    aemp_table_t set;        /* key -> its new value */
    keylist_t del;           /* keys gone from the merged view */
    aemp_table_t fwd_set;    /* key -> value: every set the update made to
                                the sender's shard, changed or not */
    keylist_t fwd_del;       /* deletes the other global nodes must hear */
} effects_t;

static void effects_free(effects_t *fx)
{
    aemp__kv_clear(&fx->set);
    aemp__kv_clear(&fx->fwd_set);
    free(fx->del.v);
    free(fx->fwd_del.v);
}

/* ------------------------------------------- global node: batched fan-out
 *
 * Changes are not sent as they are made: each family has an outbox that
 * collects, per key, its latest state (a value, or no value: deleted)
 * once for the family's subscribers (sent as one g_chg2) and once for the
 * other global nodes (one g_upd).  A job sends the outboxes at the end of
 * the loop pass: the g_upd every pass, the g_chg2 of a family when the
 * pacing rule of fanout_pace.h says (in a storm, one per interval, so
 * that the reports cost the network db_fanout_cpu of one CPU, at most
 * db_fanout_max_delay apart; a storm's end within a quarter interval),
 * so that a storm of changes to a family that thousands of nodes watch
 * costs each of them a few messages a second, while a change after a
 * quiet spell goes out in the same pass.  n changes to a family watched
 * by w nodes cost about w + globals messages instead of n x (w + globals).
 * The messages are the 2.02 forms, which carry any number of keys, so
 * Perl peers read them unchanged.  Receivers apply a message's sets, then
 * its deletes; a key is in one of the two, so the end state is the same
 * as with one message per change.  A node that subscribes (g_mon1) while
 * changes wait gets a snapshot that has them and later the g_chg2 again,
 * which changes nothing there. */

typedef struct outbox {
    aemp_table_t mon;        /* key -> value, or no value: deleted (subscribers) */
    aemp_table_t fwd;        /* the same for the other global nodes */
    ev_tstamp sent;          /* when the last g_chg2 went out */
    ev_tstamp changed;       /* when mon last got a change */
    size_t sent_keys;        /* how many keys it carried */
    size_t len;
    char family[];
} outbox_t;

static outbox_t *outbox_get(const char *family, size_t flen)
{
    outbox_t *ob = aemp__table_get(&G.outboxes, family, flen);
    if (ob)
        return ob;
    ob = calloc(1, sizeof *ob + flen + 1);
    if (!ob)
        abort();
    memcpy(ob->family, family, flen);
    ob->len = flen;
    ob->sent = -1e9;
    aemp__table_put(&G.outboxes, ob->family, flen, ob);
    return ob;
}

static void outbox_free(outbox_t *ob)
{
    aemp__kv_clear(&ob->mon);
    aemp__kv_clear(&ob->fwd);
    free(ob);
}

/* Append an outbox table as a map of its sets and an array of its
 * deletes. */
static void build_outbox(aemp_build_t *b, const aemp_table_t *t)
{
    size_t pos = 0;
    aemp_kv_t *e;
    aemp_build_map(b);
    while (aemp__kv_next(t, &pos, &e))
        if (e->val) {
            aemp_build_strn(b, e->key, e->len);
            aemp_build_val(b, aemp_msg_root(e->val));
        }
    aemp_build_close(b);
    aemp_build_array(b);
    pos = 0;
    while (aemp__kv_next(t, &pos, &e))
        if (!e->val)
            aemp_build_strn(b, e->key, e->len);
    aemp_build_close(b);
}

/* The subscribers of a family (a set), or NULL if it has none. */
static aemp_table_t *subscribers_of(const char *family, size_t flen)
{
    aemp_kv_t *subs = aemp__kv_get(&G.subscribers, family, flen);
    return subs && aemp__kv_count(subs) ? aemp__kv_sub(subs) : NULL;
}

/* Send the outbox's changes for subscribers as one g_chg2 to each, and
 * empty it. */
static void outbox_send_mon(outbox_t *ob)
{
    aemp_table_t *subs = subscribers_of(ob->family, ob->len);
    if (ob->mon.used && subs) {
        aemp_build_t *b = aemp_build_new();
        aemp_build_str(b, "g_chg2");
        aemp_build_strn(b, ob->family, ob->len);
        build_outbox(b, &ob->mon);
        fanout_t f;
        fanout_init(&f, aemp_build_msg(b));
        size_t pos = 0;
        aemp_kv_t *node;
        while (aemp__kv_next(subs, &pos, &node))
            fanout_to(&f, node->key, node->len);
        fanout_done(&f);
        ob->sent = ev_now(aemp__g.loop);
        ob->sent_keys = ob->mon.used;
    }
    aemp__kv_clear(&ob->mon);
}

/* Send the outbox's changes for the other global nodes as one g_upd to
 * each that is up, and empty it. */
static void outbox_send_fwd(outbox_t *ob)
{
    fanout_t f;
    fanout_init(&f, NULL);
    size_t pos = 0;
    aemp_kv_t *node;
    while (ob->fwd.used && aemp__kv_next(&G.globals, &pos, &node)) {
        if (is_self(node->key) || aemp_node_is_up(node->key) != 1)
            continue;
        if (!f.msg) {
            aemp_build_t *b = aemp_build_new();
            aemp_build_str(b, "g_upd");
            aemp_build_strn(b, ob->family, ob->len);
            build_outbox(b, &ob->fwd);
            if (!(f.msg = aemp_build_msg(b)))
                break;
        }
        fanout_to(&f, node->key, node->len);
    }
    fanout_done(&f);
    aemp__kv_clear(&ob->fwd);
}

/* Send the snapshots (g_chg1) that subscribers wait for: one message per
 * family, encoded once, to each waiting node that still subscribes. */
static void send_snapshots(void)
{
    aemp_table_t wait = G.snap_wait;
    G.snap_wait = (aemp_table_t)AEMP_TABLE_INIT;
    size_t pos = 0;
    aemp_kv_t *w;
    while (aemp__kv_next(&wait, &pos, &w)) {
        aemp_table_t *subs = subscribers_of(w->key, w->len);
        aemp_kv_t *f = aemp__kv_get(&G.merged, w->key, w->len);
        aemp_build_t *b = aemp_build_new();
        aemp_build_str(b, "g_chg1");
        aemp_build_strn(b, w->key, w->len);
        if (f)
            aemp__kv_build_map(b, aemp__kv_sub_ro(f));
        else
            aemp_build_null(b);
        fanout_t fo;
        fanout_init(&fo, aemp_build_msg(b));
        size_t npos = 0;
        aemp_kv_t *node;
        while (subs && aemp__kv_next(aemp__kv_sub_ro(w), &npos, &node))
            if (aemp__kv_get(subs, node->key, node->len))
                fanout_to(&fo, node->key, node->len);
        fanout_done(&fo);
    }
    aemp__kv_clear(&wait);
}

/* The libaemp global nodes that are up, this one included: they feed
 * the subscribers of a family in shares and spend its fan-out budget
 * together (a Perl global node sends every change as it comes). */
static size_t fanout_share(void)
{
    size_t n = 1, pos = 0;
    aemp_kv_t *node;
    while (aemp__kv_next(&G.globals, &pos, &node))
        n += !is_self(node->key) && aemp_node_is_up(node->key) == 1 && aemp__node_is_libaemp(node->key);
    return n;
}

/* Seconds between two g_chg2 of a family in a storm (fanout_pace.h):
 * what the last one cost this node's subscribers -- the keys of that
 * g_chg2 each, or every key of the family for a subscriber whose reports
 * copy the family (g_mon_cost: a libaemp aemp_db_mon or grp_mon; a Perl
 * callback gets its mirror by reference) -- times the libaemp global
 * nodes that share the fan-out (each spends its share, subs_i / (share x
 * subs_i) of db_fanout_cpu), however the subscribers are spread over
 * them. */
static double fanout_interval(const outbox_t *ob)
{
    aemp_table_t *subs = subscribers_of(ob->family, ob->len);
    if (!subs)
        return 0;
    aemp_kv_t *f = aemp__kv_get(&G.merged, ob->family, ob->len);
    aemp_kv_t *c = aemp__kv_get(&G.costly, ob->family, ob->len);
    aemp_fanout_cost_t cost = {
        .subscribers = (double)subs->used,
        .costly = c ? (double)aemp__kv_count(c) : 0,
        .family_keys = f ? (double)aemp__kv_count(f) : 0,
        .last_keys = (double)ob->sent_keys,
        .share = (double)fanout_share(),
    };
    return aemp__fanout_interval(&cost, aemp__g.net.db_fanout_cpu, aemp__g.net.db_fanout_max_delay);
}

/* The members of all the sets in sets (family -> set of node IDs). */
static size_t sets_size(const aemp_table_t *sets)
{
    size_t n = 0, pos = 0;
    aemp_kv_t *e;
    while (aemp__kv_next(sets, &pos, &e))
        n += aemp__kv_count(e);
    return n;
}

/* See global.h. */
void aemp__global_gauges(size_t *subscriptions, size_t *costly, size_t *share)
{
    *subscriptions = sets_size(&G.subscribers);
    *costly = sets_size(&G.costly);
    *share = aemp_is_global() ? fanout_share() : 0;
}

/* Take node out of the set of family in sets (family -> set of node
 * IDs), and the family out of sets once its set is empty. */
static void set_del_in(aemp_table_t *sets, const char *family, size_t flen, const char *node, size_t nlen)
{
    aemp_kv_t *set = aemp__kv_get(sets, family, flen);
    if (set && (aemp__kv_del(aemp__kv_sub(set), node, nlen), !aemp__kv_count(set)))
        aemp__kv_del(sets, family, flen);
}

/* Forget node as a subscriber of family. */
static void unsubscribe(const char *family, size_t flen, const char *node, size_t nlen)
{
    set_del_in(&G.costly, family, flen, node, nlen);
    set_del_in(&G.subscribers, family, flen, node, nlen);
}

/* The job (and timer) that sends the outboxes: every g_upd, the g_chg2
 * that are due (aemp__fanout_due); the timer is set for the next one that
 * is not.  An outbox that is empty and whose interval is over is freed. */
static void outbox_job(void *unused)
{
    G.outbox_due = 0;
    /* snapshots first: a subscriber's g_chg1 comes before its g_chg2 */
    send_snapshots();
    ev_tstamp now = ev_now(aemp__g.loop), next = 0;
    /* take the list first: sending may add outboxes (never frees one) */
    size_t n = 0, pos = 0;
    outbox_t **list = malloc((G.outboxes.used ? G.outboxes.used : 1) * sizeof *list);
    void *v;
    if (!list)
        abort();
    while (aemp__table_next(&G.outboxes, &pos, NULL, NULL, &v))
        list[n++] = v;
    for (size_t i = 0; i < n; i++) {
        outbox_t *ob = list[i];
        outbox_send_fwd(ob);
        double interval = fanout_interval(ob);
        double due = ob->mon.used ? aemp__fanout_due(ob->sent, ob->changed, interval) : ob->sent + interval;
        if (ob->mon.used && due <= now)
            outbox_send_mon(ob);
        else if (ob->mon.used && (!next || due < next))
            next = due;
        else if (!ob->mon.used && due <= now) {
            aemp__table_del(&G.outboxes, ob->family, ob->len);
            outbox_free(ob);
        }
    }
    free(list);
    ev_timer_stop(aemp__g.loop, &G.outbox_timer);
    if (next) {
        ev_timer_set(&G.outbox_timer, next - now, 0);
        ev_timer_start(aemp__g.loop, &G.outbox_timer);
    }
}

static void outbox_timer_cb(EV_P_ ev_timer *w, int revents)
{
    outbox_job(NULL);
}

/* Record the latest state of key in an outbox table (val NULL: deleted). */
static void outbox_schedule(void)
{
    if (!G.outbox_due) {
        G.outbox_due = 1;
        aemp__job_call(outbox_job, NULL);
    }
}

static void outbox_put(aemp_table_t *t, const char *key, size_t klen, aemp_msg_t *val)
{
    aemp__kv_set(t, key, klen, val);
    outbox_schedule();
}

/* Queue what one update did for the subscribers (if the family has any)
 * and, if it came from a slave, for the other global nodes: its sets (the
 * update's own, or the merged view's restored values if it set nothing),
 * then its deletes. */
static void outbox_add(const char *family, size_t flen, const effects_t *fx, int had_set, int from_slave)
{
    int mon = subscribers_of(family, flen) && (fx->set.used || fx->del.n);
    int fwd = from_slave && (fx->fwd_set.used || fx->fwd_del.n || (!had_set && fx->set.used));
    if (!mon && !fwd)
        return;
    outbox_t *ob = outbox_get(family, flen);
    size_t pos = 0;
    aemp_kv_t *e;
    if (mon)
        ob->changed = ev_now(aemp__g.loop);
    while (mon && aemp__kv_next(&fx->set, &pos, &e))
        outbox_put(&ob->mon, e->key, e->len, e->val);
    for (size_t i = 0; mon && i < fx->del.n; i++)
        outbox_put(&ob->mon, fx->del.v[i].s, fx->del.v[i].len, NULL);
    const aemp_table_t *fset = had_set ? &fx->fwd_set : &fx->set;
    pos = 0;
    while (fwd && aemp__kv_next(fset, &pos, &e))
        outbox_put(&ob->fwd, e->key, e->len, e->val);
    for (size_t i = 0; fwd && i < fx->fwd_del.n; i++)
        outbox_put(&ob->fwd, fx->fwd_del.v[i].s, fx->fwd_del.v[i].len, NULL);
}

/* Record that src's shard holds family/key. */
static void holders_add(const char *family, size_t flen, const char *key, size_t klen, const char *src)
{
    aemp_kv_t *f = aemp__kv_put(&G.holders, family, flen);
    aemp_kv_t *k = aemp__kv_put(aemp__kv_sub(f), key, klen);
    aemp__kv_put(aemp__kv_sub(k), src, strlen(src));
}

/* Record that src's shard no longer holds family/key. */
static void holders_del(const char *family, size_t flen, const char *key, size_t klen, const char *src)
{
    aemp_kv_t *f = aemp__kv_get(&G.holders, family, flen);
    aemp_kv_t *k = f ? aemp__kv_get(aemp__kv_sub_ro(f), key, klen) : NULL;
    if (!k)
        return;
    aemp__kv_del(aemp__kv_sub(k), src, strlen(src));
    if (!aemp__kv_count(k))
        aemp__kv_del(aemp__kv_sub(f), key, klen);
    if (!aemp__kv_count(f))
        aemp__kv_del(&G.holders, family, flen);
}

/* Apply an update of shard `src` to the merged DB (set: a map or NULL,
 * del: an array of keys or NULL); fills the effects for monitors and the
 * deletes to forward to other globals. */
static void apply_update(const char *src, const char *family, size_t flen,
                         const aemp_val_t *set, const aemp_val_t *del, effects_t *fx)
{
    aemp_kv_t *shard = aemp__kv_put(&G.shards, src, strlen(src));
    aemp_kv_t *sf = aemp__kv_put(aemp__kv_sub(shard), family, flen);
    aemp_kv_t *mf = aemp__kv_put(&G.merged, family, flen);
    for (size_t i = 0, n = map_len(set); i < n; i++) {
        size_t klen;
        const char *key = aemp_val_str(aemp_val_key(set, i), &klen);
        const aemp_val_t *v = aemp_val_value(set, i);
        if (!depth_within(v, DB_VALUE_DEPTH)) {
            aemp_log(AEMP_LOG_WARN, "value of %s/%s from %s nested too deep, ignored", family, key, src);
            continue;
        }
        holders_add(family, flen, key, klen, src);
        aemp_kv_t *old = aemp__kv_get(aemp__kv_sub_ro(mf), key, klen);
        if (old && aemp_val_equal(aemp_msg_root(old->val), v)) {
            aemp__kv_set(aemp__kv_sub(sf), key, klen, old->val);   /* share the merged one */
            aemp__kv_set(&fx->fwd_set, key, klen, old->val);
            continue;
        }
        aemp_msg_t *vm = aemp_msg_copy_val(v);
        aemp__kv_set(aemp__kv_sub(sf), key, klen, vm);
        aemp__kv_set(aemp__kv_sub(mf), key, klen, vm);
        aemp__kv_set(&fx->set, key, klen, vm);
        aemp__kv_set(&fx->fwd_set, key, klen, vm);
        aemp_msg_unref(vm);
    }
    for (size_t i = 0, n = array_len(del); i < n; i++) {
        size_t klen;
        const char *key = aemp_val_str(aemp_val_at(del, i), &klen);
        if (!key || !aemp__kv_del(aemp__kv_sub(sf), key, klen))
            continue;
        holders_del(family, flen, key, klen, src);
        /* another shard may still hold it: prefer one of my slaves */
        aemp_kv_t *repl = NULL;
        int repl_is_slave = 0;
        aemp_kv_t *hf = aemp__kv_get(&G.holders, family, flen);
        aemp_kv_t *hk = hf ? aemp__kv_get(aemp__kv_sub_ro(hf), key, klen) : NULL;
        size_t pos = 0;
        aemp_kv_t *holder;
        while (hk && aemp__kv_next(aemp__kv_sub_ro(hk), &pos, &holder)) {
            aemp_kv_t *other = aemp__kv_get(&G.shards, holder->key, holder->len);
            aemp_kv_t *of = other ? aemp__kv_get(aemp__kv_sub_ro(other), family, flen) : NULL;
            aemp_kv_t *ov = of ? aemp__kv_get(aemp__kv_sub_ro(of), key, klen) : NULL;
            if (!ov)
                continue;
            int slave = aemp__kv_get(&G.slaves, other->key, other->len) != NULL;
            if (!repl || (slave && !repl_is_slave)) {
                repl = ov;
                repl_is_slave = slave;
            }
        }
        if (repl) {
            aemp__kv_set(aemp__kv_sub(mf), key, klen, repl->val);
            aemp__kv_set(&fx->set, key, klen, repl->val);
            if (!repl_is_slave)
                keys_add(&fx->fwd_del, key, klen);
        } else if (aemp__kv_del(aemp__kv_sub(mf), key, klen)) {
            keys_add(&fx->del, key, klen);
            keys_add(&fx->fwd_del, key, klen);
        }
    }
    if (!aemp__kv_count(sf))
        aemp__kv_del(aemp__kv_sub(shard), family, flen);
    if (!aemp__kv_count(mf))
        aemp__kv_del(&G.merged, family, flen);
}

static void keep_global_connected(const char *node);

/* g_upd from src (set: a map or NULL, del: an array or NULL; both, and
 * family, must stay valid during the call): apply, and queue the news for
 * monitors and (slave updates) the other global nodes. */
static void global_update(const char *src, const char *family, size_t flen,
                          const aemp_val_t *set, const aemp_val_t *del)
{
    effects_t fx = { AEMP_TABLE_INIT, { 0 }, AEMP_TABLE_INIT, { 0 } };
    apply_update(src, family, flen, set, del, &fx);
    outbox_add(family, flen, &fx, set != NULL, set_has(&G.slaves, src));
    effects_free(&fx);
    /* globals keep connections to each other */
    int is_g = flen == 2 && !memcmp(family, "'g", 2), is_l = flen == 2 && !memcmp(family, "'l", 2);
    for (size_t i = 0, n = (is_g || is_l) ? map_len(set) : 0; i < n; i++) {
        const char *node = aemp_val_str(aemp_val_key(set, i), NULL);
        const aemp_val_t *v = aemp_val_value(set, i);
        if (is_g)
            keep_global_connected(node);
        else if (!is_self(node) && aemp_val_type(v) == AEMP_T_ARRAY)
            aemp__node_set_addrs(aemp__node_get(node, strlen(node)), v);
    }
}

/* Every family of a database {family: {key: value}} (a map value) from
 * src as an update. */
static void apply_db(const char *src, const aemp_val_t *db)
{
    for (size_t i = 0, n = map_len(db); i < n; i++) {
        size_t flen;
        const char *family = aemp_val_str(aemp_val_key(db, i), &flen);
        const aemp_val_t *f = aemp_val_value(db, i);
        if (aemp_val_type(f) == AEMP_T_MAP)
            global_update(src, family, flen, f, NULL);
    }
}

/* The keys of a shard (family -> key -> value) that db (a map value
 * {family: {key: value}}, or NULL for none) lacks: a new message
 * [[family, [key...]]...] with one element per family of the shard.  It
 * owns its strings, so the shard may change while it is applied. */
static aemp_msg_t *shard_drops(const aemp_table_t *shard, const aemp_val_t *db)
{
    aemp_build_t *b = aemp_build_new();
    size_t pos = 0;
    aemp_kv_t *f;
    while (aemp__kv_next(shard, &pos, &f)) {
        aemp_table_t keep = AEMP_TABLE_INIT;
        if (map_len(db))
            index_strings(&keep, aemp_val_getn(db, f->key, f->len));
        aemp_build_array(b);
        aemp_build_strn(b, f->key, f->len);
        aemp_build_array(b);
        size_t kpos = 0;
        aemp_kv_t *k;
        while (aemp__kv_next(aemp__kv_sub_ro(f), &kpos, &k))
            if (!aemp__table_get(&keep, k->key, k->len))
                aemp_build_strn(b, k->key, k->len);
        aemp_build_close(b);
        aemp_build_close(b);
        aemp__table_free(&keep);
    }
    return aemp_build_msg(b);
}

/* Delete the keys of a shard_drops message (stolen) from src's shard. */
static void apply_drops(const char *src, aemp_msg_t *drops)
{
    for (size_t i = 0, n = aemp_msg_len(drops); i < n; i++) {
        const aemp_val_t *d = aemp_msg_at(drops, i);
        size_t flen;
        const char *family = aemp_val_str(aemp_val_at(d, 0), &flen);
        global_update(src, family, flen, NULL, aemp_val_at(d, 1));
    }
    aemp_msg_unref(drops);
}

/* Drop everything a node contributed (it went away). */
static void global_disconnect(const char *node)
{
    size_t nlen = strlen(node);
    aemp_kv_t *shard = aemp__kv_get(&G.shards, node, nlen);
    if (shard) {
        apply_drops(node, shard_drops(aemp__kv_sub_ro(shard), NULL));
        aemp__kv_del(&G.shards, node, nlen);
    }
    aemp__kv_del(&G.slaves, node, nlen);
    size_t pos = 0;
    aemp_kv_t *subs;
    while (aemp__kv_next(&G.subscribers, &pos, &subs))
        unsubscribe(subs->key, subs->len, node, nlen);
}

static void keep_global_connected(const char *node)
{
    if (!node || is_self(node))
        return;
    set_add(&G.globals, node);
    if (G.global && aemp_node_is_up(node) != 1) {
        aemp_kv_t *addrs = db_entry(&G.merged, "'l", node, strlen(node));
        if (addrs && aemp_val_type(aemp_msg_root(addrs->val)) == AEMP_T_ARRAY)
            aemp_add_node(node, addrs->val);
        send_to(node, aemp_msgf("s", "g_global"));   /* connects */
    }
}

/* The merged databases of all my slaves (what another global gets),
 * appended as one map {family: {key: value}}. */
static void build_slaves_db(aemp_build_t *b)
{
    aemp_table_t db = AEMP_TABLE_INIT;
    size_t pos = 0;
    aemp_kv_t *node;
    while (aemp__kv_next(&G.slaves, &pos, &node)) {
        aemp_kv_t *shard = aemp__kv_get(&G.shards, node->key, node->len);
        size_t fpos = 0;
        aemp_kv_t *f;
        while (shard && aemp__kv_next(aemp__kv_sub_ro(shard), &fpos, &f)) {
            aemp_kv_t *df = aemp__kv_put(&db, f->key, f->len);
            size_t kpos = 0;
            aemp_kv_t *k;
            while (aemp__kv_next(aemp__kv_sub_ro(f), &kpos, &k))
                aemp__kv_set(aemp__kv_sub(df), k->key, k->len, k->val);
        }
    }
    build_db(b, &db);
    aemp__kv_clear(&db);
}

/* ---------------------------------------------------- becoming global */

static void master_set(const char *node);

/* Put this node's own shard (what it set, its 'g entry among it) into the
 * merged view now, not when the g_slave and g_upd it sends itself arrive
 * (they change nothing then): a node that turns global because a client
 * asks it to be its master answers the client's next query in the same
 * loop pass, before its messages to itself. */
static void merge_own_db(void)
{
    aemp_build_t *b = aemp_build_new();
    build_db(b, &G.local);
    aemp_msg_t *db = aemp_build_msg(b);
    if (!db)
        return;
    set_add(&G.slaves, aemp__g.nodeid);
    apply_db(aemp__g.nodeid, aemp_msg_at(db, 0));
    aemp_msg_unref(db);
}

void aemp__global_become(void)
{
    if (G.global || !G.started)
        return;
    G.global = 1;
    aemp_log(AEMP_LOG_INFO, "%s is a global node now", aemp__g.nodeid);
    master_set(aemp__g.nodeid);
    aemp_db_set("'g", aemp__g.nodeid, NULL);
    merge_own_db();
    aemp_msg_t *up = aemp_up_nodes();
    for (size_t i = 0, n = aemp_msg_len(up); i < n; i++) {
        const char *node = aemp_msg_str(up, i, NULL);
        if (node && aemp__node_dialect(node) != AEMP_DIALECT_130)
            send_to(node, aemp_msgf("s", "g_global"));
    }
    aemp_msg_unref(up);
}

/* ------------------------------------------------------------- masters */

static void mirrors_tell_cost(void);

static void master_set(const char *node)
{
    if (G.master && !strcmp(G.master, node))
        return;
    free(G.master);
    G.master = strdup(node);
    if (!G.master)
        abort();
    aemp_log(AEMP_LOG_DEBUG, "master is %s", node);
    aemp_build_t *b = aemp_build_new();
    aemp_build_str(b, "g_slave");
    build_db(b, &G.local);
    send_to(node, aemp_build_msg(b));
    size_t pos = 0;
    aemp_kv_t *req;
    while (aemp__kv_next(&G.pending, &pos, &req))
        send_to(node, aemp_msg_ref(req->val));
    mirrors_tell_cost();
}

static void master_search(void)
{
    if (G.global) {
        master_set(aemp__g.nodeid);
        return;
    }
    free(G.master);
    G.master = NULL;
    aemp_msg_t *seeds = aemp__seed_nodes();
    for (size_t i = 0, n = aemp_msg_len(seeds); i < n; i++) {
        const char *node = aemp_msg_str(seeds, i, NULL);
        if (node && aemp_node_is_up(node) == 1 && aemp__node_dialect(node) != AEMP_DIALECT_130) {
            master_set(node);
            break;
        }
    }
    aemp_msg_unref(seeds);
}

static void on_updown(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    if (up && aemp__node_dialect(node) == AEMP_DIALECT_130)
        return;   /* 1.30 peers get the 1.30 Global service (global1.c) */
    if (up) {
        if (aemp__seed_is_node(node))
            send_to(node, aemp_msgf("s", "g_slave"));
        if (G.global)
            send_to(node, aemp_msgf("s", "g_global"));
        if (!G.master)
            master_search();
    } else {
        if (G.global)
            global_disconnect(node);
        if (G.master && !strcmp(G.master, node))
            master_search();
    }
}

/* ------------------------------------------------------ request handlers */

/* Handlers get the request's arguments after the tag (borrowed). */

static const char *src(void)
{
    return aemp_srcnode() ? aemp_srcnode() : aemp__g.nodeid;
}

static void h_g_slave(aemp_msg_t *args, void *unused)
{
    const aemp_val_t *db = aemp_msg_at(args, 0);
    if (!db) {   /* "please run the global service" */
        aemp__global_become();
        return;
    }
    if (!G.global)
        aemp__global_become();
    const char *from = src();
    /* a new slave's db replaces what we had from it */
    if (aemp__kv_get(&G.shards, from, strlen(from)) && !is_self(from))
        global_disconnect(from);
    set_add(&G.slaves, from);
    apply_db(from, db);
}

static void h_g_global(aemp_msg_t *args, void *unused)
{
    const char *from = src();
    set_add(&G.globals, from);
    if (!G.global)
        return;
    aemp_build_t *b = aemp_build_new();
    aemp_build_str(b, "g_set");
    build_slaves_db(b);
    send_to(from, aemp_build_msg(b));
}

static void h_g_set(aemp_msg_t *args, void *unused)
{
    const char *from = src();
    const aemp_val_t *db = aemp_msg_at(args, 0);
    if (!G.global || aemp_val_type(db) != AEMP_T_MAP)
        return;
    set_add(&G.globals, from);
    /* replace the shard of that global: drop what it no longer has */
    aemp_kv_t *old = aemp__kv_get(&G.shards, from, strlen(from));
    if (old)
        apply_drops(from, shard_drops(aemp__kv_sub_ro(old), db));
    apply_db(from, db);
}

static void h_g_upd(aemp_msg_t *args, void *unused)
{
    size_t flen;
    const char *family = aemp_msg_str(args, 0, &flen);
    const aemp_val_t *set = aemp_msg_at(args, 1), *del = aemp_msg_at(args, 2);
    if (!G.global || !family)
        return;
    global_update(src(), family, flen, aemp_val_type(set) == AEMP_T_MAP ? set : NULL,
                  aemp_val_type(del) == AEMP_T_ARRAY ? del : NULL);
}

static void h_g_find(aemp_msg_t *args, void *unused)
{
    const char *node = aemp_msg_str(args, 0, NULL);
    if (!node)
        return;
    aemp_msg_t *mine = is_self(node) ? aemp_listeners() : NULL;
    aemp_kv_t *e = mine ? NULL : db_entry(&G.merged, "'l", node, strlen(node));
    const aemp_val_t *addrs = mine ? aemp_msg_root(mine) : e ? aemp_msg_root(e->val) : NULL;
    send_to(src(), aemp_msgf("ssv", "g_found", node, addrs));   /* NULL: null */
    aemp_msg_unref(mine);
}

/* Ask the master again for every node that still waits for an address. */
static void refind(EV_P_ ev_timer *w, int revents)
{
    aemp_table_t nodes = G.refind;
    G.refind = (aemp_table_t)AEMP_TABLE_INIT;
    size_t pos = 0;
    aemp_kv_t *e;
    while (aemp__kv_next(&nodes, &pos, &e)) {
        aemp_rnode_t *n = aemp__node_find(e->key, e->len);
        if (n && n->connecting && !n->conn)
            aemp__global_find(e->key);
    }
    aemp__kv_clear(&nodes);
    if (!G.refind.used)
        ev_timer_stop(EV_A_ w);
}

static void h_g_found(aemp_msg_t *args, void *unused)
{
    const char *node = aemp_msg_str(args, 0, NULL);
    const aemp_val_t *addrs = aemp_msg_at(args, 1);
    if (!node)
        return;
    char *key = pending_key("g_find", node);
    pending_done(key);
    free(key);
    /* an answer for a node nobody here wants to reach creates nothing */
    aemp_rnode_t *n = aemp__node_find(node, strlen(node));
    if (!n)
        return;
    if (array_len(addrs)) {
        aemp__node_set_addrs(n, addrs);
        aemp__node_addrs_learned(n);
    } else if (n->connecting && !n->conn) {
        /* not registered yet (it may be starting): ask again shortly,
         * until the connect deadline gives up */
        set_add(&G.refind, node);
        if (!ev_is_active(&G.refind_timer))
            ev_timer_again(aemp__g.loop, &G.refind_timer);
    }
}

/* Answer a query [family, id] with g_reply [id, result]; kind as query_t. */
static void h_g_db_query(aemp_msg_t *args, char kind)
{
    size_t flen;
    const char *family = aemp_msg_str(args, 0, &flen);
    const aemp_val_t *id = aemp_msg_at(args, 1);
    if (!family || !id)
        return;
    static const aemp_table_t none = AEMP_TABLE_INIT;
    aemp_kv_t *f = aemp__kv_get(&G.merged, family, flen);
    const aemp_table_t *t = f ? aemp__kv_sub_ro(f) : &none;
    aemp_build_t *b = aemp_build_new();
    aemp_build_str(b, "g_reply");
    aemp_build_val(b, id);
    if (kind == 'f')
        aemp__kv_build_map(b, t);
    else if (kind == 'k')
        build_keys(b, t);
    else
        build_values(b, t);
    send_to(src(), aemp_build_msg(b));
}
static void h_g_db_family(aemp_msg_t *a, void *u) { h_g_db_query(a, 'f'); }
static void h_g_db_keys(aemp_msg_t *a, void *u) { h_g_db_query(a, 'k'); }
static void h_g_db_values(aemp_msg_t *a, void *u) { h_g_db_query(a, 'v'); }

static void h_g_reply(aemp_msg_t *args, void *unused)
{
    size_t idlen;
    const char *id = aemp_msg_str(args, 0, &idlen);
    if (!id)
        return;
    query_t *q = aemp__table_del(&G.queries, id, idlen);
    if (!q)
        return;
    pending_done(q->id);
    const aemp_val_t *res = aemp_msg_at(args, 1);
    aemp_type_t want = q->kind == 'f' ? AEMP_T_MAP : AEMP_T_ARRAY;
    aemp_msg_t *r;
    if (aemp_val_type(res) == want) {
        r = aemp_msg_copy_val(res);
    } else {
        aemp_log(AEMP_LOG_WARN, "db query answer from %s is a %s, not a %s: taken as empty", src(),
                 aemp_type_name(aemp_val_type(res)), aemp_type_name(want));
        r = aemp_valf(want == AEMP_T_MAP ? "{}" : "[]");
    }
    q->cb(r, q->arg);
    aemp_msg_unref(r);
    free(q);
}

static void h_g_mon1(aemp_msg_t *args, void *unused)
{
    size_t flen;
    const char *family = aemp_msg_str(args, 0, &flen);
    if (!family || !G.global)
        return;
    /* the snapshot goes out at the end of the loop pass (outbox_job), one
     * encoding for every node that subscribed in that pass; it includes
     * the changes still in the outbox, and the g_chg2 that brings them
     * later changes nothing there (h_g_chg2 skips values it has and
     * deletes of keys it lacks) */
    set_add(aemp__kv_sub(aemp__kv_put(&G.subscribers, family, flen)), src());
    set_add(aemp__kv_sub(aemp__kv_put(&G.snap_wait, family, flen)), src());
    outbox_schedule();
}

static void h_g_mon0(aemp_msg_t *args, void *unused)
{
    size_t flen;
    const char *family = aemp_msg_str(args, 0, &flen);
    if (family)
        unsubscribe(family, flen, src(), strlen(src()));
}

/* g_mon_cost family cost (libaemp only, after g_mon1): what a report of
 * the family costs the subscriber -- "family" (it copies the whole
 * family) or "changes" (what changed; the default, as for Perl) -- for
 * fanout_interval. */
static void h_g_mon_cost(aemp_msg_t *args, void *unused)
{
    size_t flen;
    const char *family = aemp_msg_str(args, 0, &flen), *cost = aemp_msg_str(args, 1, NULL);
    aemp_kv_t *subs = aemp__kv_get(&G.subscribers, family, flen);
    const char *node = src();
    size_t nlen = strlen(node);
    if (strcmp(cost, "family") && strcmp(cost, "changes")) {
        aemp_log(AEMP_LOG_WARN, "g_mon_cost from %s: unknown cost '%s' (not 'family' or 'changes'): ignored",
                 node, cost);
        return;
    }
    if (!G.global || !subs || !set_has(aemp__kv_sub_ro(subs), node))
        return;   /* not (or no longer) a subscriber */
    if (!strcmp(cost, "family"))
        set_add(aemp__kv_sub(aemp__kv_put(&G.costly, family, flen)), node);
    else
        set_del_in(&G.costly, family, flen, node, nlen);
}

/* ------------------------------------------------------------- monitors */

/* The handles of the monitors of a family (malloc'd, *n of them), taken
 * first because callbacks may cancel monitors. */
static aemp_handle_t *monitors_of(const char *family, size_t *n)
{
    aemp_handle_t *ids = malloc((G.dbmons.used ? G.dbmons.used : 1) * sizeof *ids);
    if (!ids)
        abort();
    size_t pos = 0;
    void *v;
    *n = 0;
    while (aemp__table_next(&G.dbmons, &pos, NULL, NULL, &v))
        if (!strcmp(((dbmon_t *)v)->family, family))
            ids[(*n)++] = ((dbmon_t *)v)->id;
    return ids;
}

static dbmon_t *dbmon_get(aemp_handle_t id)
{
    return aemp__table_get(&G.dbmons, (const char *)&id, sizeof id);
}

/* What a group's members are read from: the merged database on a global
 * node, the mirror elsewhere (neither if there is none). */
typedef struct {
    const aemp_table_t *merged;
    const aemp_kv_index_t *mirror;
} group_view_t;

static group_view_t group_view(const char *group)
{
    if (G.global) {
        aemp_kv_t *f = aemp__kv_get(&G.merged, group, strlen(group));
        return (group_view_t){ .merged = f ? aemp__kv_sub_ro(f) : NULL };
    }
    mirror_t *mi = aemp__table_get(&G.mirrors, group, strlen(group));
    return (group_view_t){ .mirror = mi ? &mi->keys : NULL };
}

/* The view's next member (start with *pos = 0), as aemp__kv_next. */
static int view_next(group_view_t v, size_t *pos, aemp_kv_t **e)
{
    return v.merged ? aemp__kv_next(v.merged, pos, e) : v.mirror && aemp__kv_index_next(v.mirror, pos, e);
}

/* 1 if the port is a member in the view. */
static int view_has(group_view_t v, const char *port, size_t len)
{
    return v.merged ? aemp__kv_get(v.merged, port, len) != NULL
                    : v.mirror && aemp__kv_index_get(v.mirror, port, len) != NULL;
}

/* The members of a group: the database view plus members learned from
 * 1.30 nodes, each once: a new message [port...]. */
static aemp_msg_t *group_members(const char *group)
{
    group_view_t view = group_view(group);
    aemp_msg_t *old = aemp__global1_members(group);
    aemp_build_t *b = aemp_build_new();
    size_t pos = 0;
    aemp_kv_t *e;
    while (view_next(view, &pos, &e))
        aemp_build_strn(b, e->key, e->len);
    const aemp_val_t *map = old ? aemp_msg_root(old) : NULL;
    for (size_t i = 0, n = map_len(map); i < n; i++) {
        size_t len;
        const char *port = aemp_val_str(aemp_val_key(map, i), &len);
        if (!view_has(view, port, len))
            aemp_build_strn(b, port, len);
    }
    aemp_msg_unref(old);
    return aemp_build_msg(b);
}

/* Append the strings of array a that are not in index (see
 * index_strings), as top-level values. */
static void build_missing(aemp_build_t *b, const aemp_val_t *a, const aemp_table_t *index)
{
    for (size_t i = 0, n = array_len(a); i < n; i++) {
        size_t len;
        const char *s = aemp_val_str(aemp_val_at(a, i), &len);
        if (s && !aemp__table_get(index, s, len))
            aemp_build_strn(b, s, len);
    }
}

/* Report a grp_mon monitor's membership changes since its last call
 * (nothing if there are none, so the first call comes once the group is
 * not empty). */
static void grp_report(dbmon_t *m)
{
    aemp_msg_t *now = group_members(m->family);
    const aemp_val_t *was = m->members ? aemp_msg_root(m->members) : NULL;
    aemp_table_t inow = AEMP_TABLE_INIT, iwas = AEMP_TABLE_INIT;
    index_strings(&inow, aemp_msg_root(now));
    index_strings(&iwas, was);
    aemp_build_t *ba = aemp_build_new(), *br = aemp_build_new();
    build_missing(ba, aemp_msg_root(now), &iwas);
    build_missing(br, was, &inow);
    aemp__table_free(&inow);
    aemp__table_free(&iwas);
    aemp_msg_t *added = aemp_build_msg(ba), *removed = aemp_build_msg(br);
    aemp_msg_unref(m->members);
    m->members = aemp_msg_ref(now);   /* m may be cancelled by the callback */
    if (added && removed && (aemp_msg_len(added) || aemp_msg_len(removed)))
        m->gcb(now, added, removed, m->arg);
    aemp_msg_unref(now);
    aemp_msg_unref(added);
    aemp_msg_unref(removed);
}

void aemp__grp_changed(const char *group)
{
    size_t n;
    aemp_handle_t *ids = monitors_of(group, &n);
    for (size_t i = 0; i < n; i++) {
        dbmon_t *m = dbmon_get(ids[i]);
        if (m && m->gcb)
            grp_report(m);
    }
    free(ids);
}

static mirror_t *mirror_get(const char *family, size_t len)
{
    return aemp__table_get(&G.mirrors, family, len);
}

/* A record of the touched table: a pointer to an entry holding the key,
 * with these bits in its low ones (entries are malloc'ed, so aligned):
 * TOUCH_WAS the key existed at the last report, TOUCH_NOW it exists now,
 * TOUCH_OWN the entry is the record's own (the key was deleted from the
 * mirror or the mirror was replaced by a snapshot); without it the entry
 * is the key's entry in the mirror, borrowed.  A key set in a join storm
 * costs its record no allocation and no copy of the key. */
#define TOUCH_WAS 1u
#define TOUCH_NOW 2u
#define TOUCH_OWN 4u
#define TOUCH_BITS 7u
_Static_assert(TOUCH_BITS < 8, "entries are 8-aligned (malloc, kv_pool.c): the record's bits are free");

static aemp_kv_t *touch_entry(const void *rec)
{
    return (aemp_kv_t *)((uintptr_t)rec & ~(uintptr_t)TOUCH_BITS);
}

static unsigned touch_bits(const void *rec)
{
    return (unsigned)((uintptr_t)rec & TOUCH_BITS);
}

static void *touch_pack(aemp_kv_t *e, unsigned bits)
{
    return (void *)((uintptr_t)e | bits);
}

/* The next record of the touched table (start with *pos = 0). */
static int touch_next(const mirror_t *mi, size_t *pos, aemp_kv_t **e, unsigned *bits)
{
    void *rec;
    if (!aemp__table_next(&mi->touched, pos, NULL, NULL, &rec))
        return 0;
    *e = touch_entry(rec);
    *bits = touch_bits(rec);
    return 1;
}

/* Empty the touched table, freeing the entries the records own. */
static void touch_clear(mirror_t *mi)
{
    size_t pos = 0;
    aemp_kv_t *e;
    unsigned bits;
    while (touch_next(mi, &pos, &e, &bits))
        if (bits & TOUCH_OWN)
            aemp__kv_pool_release(&mi->pool, e);
    aemp__table_free(&mi->touched);
}

static void mirror_free(mirror_t *mi)
{
    aemp_msg_unref(mi->reported);
    touch_clear(mi);
    aemp__kv_pool_clear(&mi->pool, &mi->keys);
    aemp__kv_pool_free(&mi->pool);
    free(mi);
}

/* Key e (its entry in the mirror, h the hash of its key) was set;
 * created: it was not there. */
static void mirror_touch_set(mirror_t *mi, aemp_kv_t *e, uint32_t h, int created)
{
    int fresh;
    aemp_table_slot_t *s = aemp__table_slot_h(&mi->touched, e->key, e->len, h, &fresh);
    if (fresh) {
        s->key = e->key;   /* borrowed from the mirror's entry */
        s->value = touch_pack(e, (created ? 0 : TOUCH_WAS) | TOUCH_NOW);
    } else {
        s->value = touch_pack(touch_entry(s->value), touch_bits(s->value) | TOUCH_NOW);
    }
}

/* Entry gone left the mirror (deleted, or the mirror replaced): the key's
 * record takes it over, unless the record has an entry of its own. */
static void mirror_touch_gone(mirror_t *mi, aemp_kv_t *gone)
{
    int fresh;
    aemp_table_slot_t *s = aemp__table_slot(&mi->touched, gone->key, gone->len, &fresh);
    if (fresh) {   /* untouched since the last report: it existed then */
        s->key = gone->key;
        s->value = touch_pack(gone, TOUCH_WAS | TOUCH_OWN);
        return;
    }
    aemp_kv_t *e = touch_entry(s->value);
    unsigned bits = touch_bits(s->value) & ~TOUCH_NOW;
    if (bits & TOUCH_OWN) {
        aemp__kv_pool_release(&mi->pool, gone);
    } else {   /* the borrowed entry was this one */
        e = gone;
        bits |= TOUCH_OWN;
    }
    s->value = touch_pack(e, bits);
}

/* Delete key from the mirror. */
static void mirror_delete(mirror_t *mi, const char *key, size_t len)
{
    aemp_kv_t *gone = aemp__kv_index_take(&mi->keys, key, len);
    if (gone)
        mirror_touch_gone(mi, gone);
}

/* The mirror's family as a new message (root: a map): the pairs of the
 * last report that did not change since, in order, then the changed keys
 * that exist.  Copying the previous message is sequential, so a report
 * costs little per unchanged key even in a large family. */
static aemp_msg_t *mirror_family(const mirror_t *mi)
{
    aemp_build_t *b = aemp_build_new();
    if (!mi->reported) {
        build_entry_map(b, index_next, &mi->keys);
        return aemp_build_root(b);
    }
    const aemp_val_t *old = aemp_msg_root(mi->reported);
    /* a touched key that was absent before is not in the old report: if
     * all are (keys were only added), no old pair needs a look-up */
    size_t existed = 0, pos = 0;
    aemp_kv_t *t;
    unsigned bits;
    while (touch_next(mi, &pos, &t, &bits))
        existed += (bits & TOUCH_WAS) != 0;
    aemp_build_map(b);
    for (size_t i = 0, n = aemp_val_len(old); i < n; i++) {
        size_t len;
        const char *key = aemp_val_str(aemp_val_key(old, i), &len);
        if (!existed || !aemp__kv_get(&mi->touched, key, len)) {
            aemp_build_strn(b, key, len);
            aemp_build_val(b, aemp_val_value(old, i));
        }
    }
    pos = 0;
    while (touch_next(mi, &pos, &t, &bits)) {
        aemp_kv_t *now = !(bits & TOUCH_NOW) ? NULL : !(bits & TOUCH_OWN) ? t : aemp__kv_index_get(&mi->keys, t->key, t->len);
        if (now) {
            aemp_build_strn(b, t->key, t->len);
            aemp_build_val(b, aemp_msg_root(now->val));
        }
    }
    aemp_build_close(b);
    return aemp_build_root(b);
}

/* A report's list of keys, [key...], written straight into its message:
 * counted first (key_list_count for each), then made (key_list_make) and
 * filled in the same order (key_list_add). */
typedef struct key_list {
    size_t n, heap;          /* keys, and their bytes with a NUL each */
    aemp_msg_t *msg;
    struct aemp_val *cell;   /* the next key's cell */
    char *h;                 /* where its bytes go */
} key_list_t;

static void key_list_count(key_list_t *l, size_t len)
{
    l->n++;
    l->heap += len + 1;
}

static void key_list_make(key_list_t *l)
{
    l->msg = l->n ? aemp__msg_new_flat(l->n, l->heap) : aemp_msg_empty();
    if (!l->msg)
        abort();   /* a table's keys fit a message's 32-bit counts */
    l->cell = l->msg->cells + 1;
    l->h = (char *)(l->cell + l->n);
}

static void key_list_add(key_list_t *l, const char *key, size_t len)
{
    l->h = aemp__cell_str_at(l->cell++, AEMP_T_STR, key, len, l->h);
}

/* The keys of index ix as a new message [key...]. */
static aemp_msg_t *keys_msg(const aemp_kv_index_t *ix)
{
    key_list_t l = { 0 };
    size_t pos = 0;
    aemp_kv_t *e;
    while (aemp__kv_index_next(ix, &pos, &e))
        key_list_count(&l, e->len);
    key_list_make(&l);
    for (pos = 0; aemp__kv_index_next(ix, &pos, &e);)
        key_list_add(&l, e->key, e->len);
    return l.msg;
}

/* The list of lists[3] (added, changed, deleted) that a touched record
 * with these bits goes to, or NULL (the key came and went again). */
static key_list_t *touched_list(key_list_t *lists, unsigned bits)
{
    int now = (bits & TOUCH_NOW) != 0, was = (bits & TOUCH_WAS) != 0;
    return !now && !was ? NULL : &lists[!was ? 0 : now ? 1 : 2];
}

/* Call the monitors of a mirror: every grp_mon monitor checks its members;
 * once the mirror is synced, a db_mon monitor's first call gets the whole
 * family as added, later calls what changed since the previous report.
 * Changes that arrive together are reported together. */
static void mirror_report(mirror_t *mi)
{
    /* added, changed, deleted: counted, then written */
    key_list_t lists[3] = { { 0 } }, *l;
    size_t pos = 0;
    aemp_kv_t *t;
    unsigned bits;
    while (touch_next(mi, &pos, &t, &bits))
        if ((l = touched_list(lists, bits)))
            key_list_count(l, t->len);
    for (int k = 0; k < 3; k++)
        key_list_make(&lists[k]);
    for (pos = 0; touch_next(mi, &pos, &t, &bits);)
        if ((l = touched_list(lists, bits)))
            key_list_add(l, t->key, t->len);
    aemp_msg_t *added = lists[0].msg, *changed = lists[1].msg, *deleted = lists[2].msg;
    int report = mi->full || aemp_msg_len(added) || aemp_msg_len(changed) || aemp_msg_len(deleted);
    mi->full = 0;
    size_t n;
    aemp_handle_t *ids = monitors_of(mi->name, &n);
    /* the whole family (and its keys for first calls), built once for
     * every db_mon monitor that gets called */
    int need = 0, first = 0;
    for (size_t i = 0; i < n && mi->synced; i++) {
        dbmon_t *m = dbmon_get(ids[i]);
        need |= !m->gcb && !m->changes_only && (report || !m->primed);
        first |= !m->gcb && !m->primed;
    }
    /* unchanged since the last report (a new monitor's first call): that
     * report's family serves again */
    aemp_msg_t *family = !need ? NULL : mi->reported && !mi->touched.used ? aemp_msg_ref(mi->reported)
                                                                          : mirror_family(mi);
    aemp_msg_t *all = NULL, *none = aemp_msg_empty();
    aemp_msg_unref(mi->reported);
    mi->reported = aemp_msg_ref(family);   /* NULL (unknown) if not built */
    touch_clear(mi);
    if (first)
        all = keys_msg(&mi->keys);
    int synced = mi->synced;
    /* from here on, callbacks may cancel the monitors and free mi */
    for (size_t i = 0; i < n; i++) {
        dbmon_t *m = dbmon_get(ids[i]);
        if (!m)
            continue;
        if (m->gcb) {
            grp_report(m);
        } else if (synced && !m->primed) {
            m->primed = 1;
            m->cb(m->changes_only ? NULL : family, all, none, none, m->arg);
        } else if (synced && report) {
            m->cb(m->changes_only ? NULL : family, added, changed, deleted, m->arg);
        }
    }
    free(ids);
    aemp_msg_unref(added);
    aemp_msg_unref(changed);
    aemp_msg_unref(deleted);
    aemp_msg_unref(family);
    aemp_msg_unref(all);
    aemp_msg_unref(none);
}

static void report_job(void *arg)
{
    char *family = arg;
    mirror_t *mi = mirror_get(family, strlen(family));
    if (mi && mi->due) {
        mi->due = 0;
        mirror_report(mi);
    }
    free(family);
}

/* Report the mirror's changes from the event loop (once for all changes
 * made until then). */
static void mirror_schedule(mirror_t *mi)
{
    if (mi->due)
        return;
    char *family = strdup(mi->name);
    if (!family)
        abort();
    mi->due = 1;
    aemp__job_call_owned(report_job, free, family);
}

/* Keys of a mirror update whose slots are loaded together before they
 * are applied (aemp__kv_index_load_first): each key costs a cache miss in
 * the mirror of a watcher among thousands of processes, and in a batch
 * those misses overlap. */
#define MIRROR_BATCH 64

/* The hashes of the batch of keys of the map m that starts at key i (up
 * to MIRROR_BATCH of them; 0 for a key that is not a string) into h, and
 * their slots in the mirror loaded. */
static void mirror_load(const mirror_t *mi, const aemp_val_t *m, size_t i, uint32_t *h)
{
    size_t n = map_len(m) - i < MIRROR_BATCH ? map_len(m) - i : MIRROR_BATCH;
    for (size_t k = 0; k < n; k++) {
        size_t klen;
        const char *key = aemp_val_str(aemp_val_key(m, i + k), &klen);
        h[k] = key ? (uint32_t)aemp__hash(key, klen) : 0;
    }
    uintptr_t sum = aemp__kv_index_load_first(&mi->keys, h, n);
    __asm__ volatile("" ::"r"(sum));   /* the loads are the point */
}

/* The entry of key i of the map m in the mirror, made if it is new
 * (*created = 1); *hash gets the key's hash.  Called for i = 0, 1, ...:
 * the first key of each batch of MIRROR_BATCH computes the batch's hashes
 * into h and loads their slots (mirror_load). */
static aemp_kv_t *mirror_put(mirror_t *mi, const aemp_val_t *m, size_t i, uint32_t *h, uint32_t *hash,
                             int *created)
{
    size_t j = i % MIRROR_BATCH;
    if (!j)
        mirror_load(mi, m, i, h);
    size_t klen;
    const char *key = aemp_val_str(aemp_val_key(m, i), &klen);
    *hash = h[j];
    return aemp__kv_pool_put_new_h(&mi->pool, &mi->keys, key, klen, aemp__kv_index_hash(h[j]), created);
}

static void h_g_chg1(aemp_msg_t *args, void *unused)
{
    size_t flen;
    const char *family = aemp_msg_str(args, 0, &flen);
    const aemp_val_t *snap = aemp_msg_at(args, 1);
    if (!family || !G.master || strcmp(src(), G.master))
        return;
    mirror_t *mi = mirror_get(family, flen);
    if (!mi)
        return;   /* nobody monitors it any more */
    /* before the first sync no db_mon monitor has had a call and nothing
     * was reported: what changed needs no record (a first call gets the
     * whole family), which saves a table entry per key of a snapshot */
    int track = mi->synced;
    if (track) {   /* every entry leaves the mirror into its key's record */
        aemp__table_reserve(&mi->touched, (size_t)mi->keys.used + map_len(snap));
        size_t pos = 0;
        aemp_kv_t *e;
        while (aemp__kv_index_next(&mi->keys, &pos, &e))
            mirror_touch_gone(mi, e);
        aemp__kv_index_free(&mi->keys);
    } else {
        aemp__kv_pool_clear(&mi->pool, &mi->keys);
    }
    aemp__kv_index_reserve(&mi->keys, map_len(snap));   /* one slot array, not a doubling per size */
    uint32_t h[MIRROR_BATCH];
    for (size_t i = 0, n = map_len(snap); i < n; i++) {
        uint32_t hash;
        int created;
        aemp_kv_t *e = mirror_put(mi, snap, i, h, &hash, &created);
        if (track)
            mirror_touch_set(mi, e, hash, created);
        aemp_msg_unref(e->val);
        e->val = aemp_msg_copy_val(aemp_val_value(snap, i));
    }
    mi->synced = 1;
    mi->full = 1;
    mirror_schedule(mi);
}

static void h_g_chg2(aemp_msg_t *args, void *unused)
{
    size_t flen;
    const char *family = aemp_msg_str(args, 0, &flen);
    const aemp_val_t *set = aemp_msg_at(args, 1), *del = aemp_msg_at(args, 2);
    if (!family || !G.master || strcmp(src(), G.master))
        return;
    mirror_t *mi = mirror_get(family, flen);
    if (!mi)
        return;
    /* the keys touched since the last report: a new table for each report */
    aemp__table_reserve(&mi->touched, map_len(set) + array_len(del));
    uint32_t h[MIRROR_BATCH];
    for (size_t i = 0, n = map_len(set); i < n; i++) {
        uint32_t hash;
        int created;   /* one look-up: the entry is made if it is new */
        aemp_kv_t *e = mirror_put(mi, set, i, h, &hash, &created);
        if (!created && aemp_val_equal(aemp_msg_root(e->val), aemp_val_value(set, i)))
            continue;   /* already known (a snapshot came after the change) */
        mirror_touch_set(mi, e, hash, created);
        aemp_msg_unref(e->val);
        e->val = aemp_msg_copy_val(aemp_val_value(set, i));
    }
    for (size_t i = 0, n = array_len(del); i < n; i++) {
        size_t klen;
        const char *key = aemp_val_str(aemp_val_at(del, i), &klen);
        if (key)
            mirror_delete(mi, key, klen);
    }
    if (mi->touched.used)
        mirror_schedule(mi);
}

/* ------------------------------------------------------------ public API */

int aemp_db_set(const char *family, const char *key, aemp_msg_t *value)
{
    if (!family || !*family || !key || !*key) {
        aemp_msg_unref(value);
        return AEMP_EINVAL;
    }
    aemp__ensure_init();
    if (!value)
        value = aemp_valf("n");
    const aemp_val_t *v = aemp_msg_root(value);
    if (!depth_within(v, DB_VALUE_DEPTH)) {
        aemp_msg_unref(value);
        return AEMP_ELIMIT;
    }
    aemp_kv_t *f = aemp__kv_put(&G.local, family, strlen(family));
    aemp_kv_t *old = aemp__kv_get(aemp__kv_sub_ro(f), key, strlen(key));
    if (old && aemp_val_equal(aemp_msg_root(old->val), v)) {
        aemp_msg_unref(value);
        return 0;
    }
    aemp__kv_set(aemp__kv_sub(f), key, strlen(key), value);
    to_master(NULL, aemp_msgf("ss{sv}", "g_upd", family, key, v));
    aemp_msg_unref(value);
    return 0;
}

int aemp_db_setf(const char *family, const char *key, const char *fmt, ...)
{
    if (!fmt)
        return AEMP_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    aemp_msg_t *value = aemp_vvalf(fmt, ap);
    va_end(ap);
    if (!value)
        return AEMP_EINVAL;
    return aemp_db_set(family, key, value);
}

int aemp_db_del(const char *family, const char *key)
{
    if (!family || !key)
        return AEMP_EINVAL;
    aemp__ensure_init();
    size_t flen = strlen(family);
    aemp_kv_t *f = aemp__kv_get(&G.local, family, flen);
    if (!f || !aemp__kv_del(aemp__kv_sub(f), key, strlen(key)))
        return AEMP_ENOENT;
    if (!aemp__kv_count(f))
        aemp__kv_del(&G.local, family, flen);
    to_master(NULL, aemp_msgf("ssn[s]", "g_upd", family, key));
    return 0;
}

typedef struct reg {
    char *family;
    char *port;
} reg_t;

static void reg_release(void *p)
{
    reg_t *r = p;
    aemp_db_del(r->family, r->port);
    free(r->family);
    free(r->port);
    free(r);
}

int aemp_db_reg(const char *family, const char *port, aemp_msg_t *value, aemp_handle_t *handle)
{
    if (!port)
        port = aemp_self();
    if (!family || !port) {
        aemp_msg_unref(value);
        return family ? AEMP_ENOSELF : AEMP_EINVAL;
    }
    int r = aemp_db_set(family, port, value);
    if (r)
        return r;
    reg_t *g = malloc(sizeof *g);
    if (!g || !(g->family = strdup(family)) || !(g->port = strdup(port)))
        abort();
    return aemp_mon_guard(port, reg_release, g, handle);
}

static int query(const char *tag, char kind, const char *family, aemp_db_query_fn cb, void *arg)
{
    if (!family || !cb)
        return AEMP_EINVAL;
    aemp__ensure_init();
    query_t *q = calloc(1, sizeof *q);
    if (!q)
        abort();
    snprintf(q->id, sizeof q->id, "q%lu", ++G.next_query);
    q->kind = kind;
    q->cb = cb;
    q->arg = arg;
    aemp__table_put(&G.queries, q->id, strlen(q->id), q);
    to_master(q->id, aemp_msgf("sss", tag, family, q->id));
    return 0;
}

int aemp_db_family(const char *family, aemp_db_query_fn cb, void *arg)
{
    return query("g_db_family", 'f', family, cb, arg);
}

int aemp_db_keys(const char *family, aemp_db_query_fn cb, void *arg)
{
    return query("g_db_keys", 'k', family, cb, arg);
}

int aemp_db_values(const char *family, aemp_db_query_fn cb, void *arg)
{
    return query("g_db_values", 'v', family, cb, arg);
}

/* The mirror of family, made if there is none: the master is asked to
 * keep it up to date (g_mon1, answered by g_chg1; asked again of every
 * new master). */
static mirror_t *mirror_open(const char *family)
{
    size_t len = strlen(family);
    mirror_t *mi = mirror_get(family, len);
    if (mi)
        return mi;
    mi = calloc(1, sizeof *mi + len + 1);
    if (!mi)
        abort();
    memcpy(mi->name, family, len);
    aemp__table_put(&G.mirrors, mi->name, len, mi);
    char *key = pending_key("mon1", family);
    to_master(key, aemp_msgf("ss", "g_mon1", family));
    free(key);
    return mi;
}

/* What a report of family costs this node (COST_*): COST_FAMILY if a
 * monitor gets the whole family (aemp_db_mon) or checks its members
 * (grp_mon), else COST_CHANGES. */
enum { COST_CHANGES = 1, COST_FAMILY = 2 };
static int report_cost(const char *family)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&G.dbmons, &pos, NULL, NULL, &v)) {
        const dbmon_t *m = v;
        if ((m->gcb || !m->changes_only) && !strcmp(m->family, family))
            return COST_FAMILY;
    }
    return COST_CHANGES;
}

/* Tell a libaemp master what a report of the mirror's family costs this
 * node (g_mon_cost, which sets the family's fan-out interval there), if
 * that changed since it was last told; a Perl master is not asked. */
static void mirror_tell_cost(mirror_t *mi)
{
    if (!G.master || !aemp__node_is_libaemp(G.master))
        return;
    int cost = report_cost(mi->name);
    if (cost == mi->cost_told)
        return;
    mi->cost_told = cost;
    send_to(G.master, aemp_msgf("sss", "g_mon_cost", mi->name, cost == COST_FAMILY ? "family" : "changes"));
}

/* Tell a new master the report cost of every mirror (after their g_mon1). */
static void mirrors_tell_cost(void)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&G.mirrors, &pos, NULL, NULL, &v)) {
        ((mirror_t *)v)->cost_told = 0;
        mirror_tell_cost(v);
    }
}

static int mon_start(const char *family, aemp_db_mon_fn cb, aemp_grp_mon_fn gcb, int changes_only, void *arg,
                     aemp_handle_t *handle)
{
    if (!family || (!cb && !gcb))
        return AEMP_EINVAL;
    aemp__ensure_init();
    dbmon_t *m = calloc(1, sizeof *m);
    if (!m || !(m->family = strdup(family)))
        abort();
    m->id = aemp__new_handle();
    m->cb = cb;
    m->gcb = gcb;
    m->changes_only = changes_only;
    m->arg = arg;
    aemp__table_put(&G.dbmons, (const char *)&m->id, sizeof m->id, m);
    if (handle)
        *handle = m->id;
    mirror_t *mi = mirror_open(family);
    mirror_tell_cost(mi);
    /* a group monitor also reports members learned from 1.30 nodes,
     * which need no master */
    if (gcb || mi->synced)
        mirror_schedule(mi);
    return 0;
}

int aemp_db_mon(const char *family, aemp_db_mon_fn cb, void *arg, aemp_handle_t *handle)
{
    return mon_start(family, cb, NULL, 0, arg, handle);
}

int aemp_db_mon_changes(const char *family, aemp_db_mon_fn cb, void *arg, aemp_handle_t *handle)
{
    return mon_start(family, cb, NULL, 1, arg, handle);
}

int aemp_db_mon_cancel(aemp_handle_t handle)
{
    dbmon_t *m = aemp__table_del(&G.dbmons, (const char *)&handle, sizeof handle);
    if (!m)
        return AEMP_ENOENT;
    int others = 0;
    size_t pos = 0;
    void *v;
    while (!others && aemp__table_next(&G.dbmons, &pos, NULL, NULL, &v))
        others = !strcmp(((dbmon_t *)v)->family, m->family);
    mirror_t *kept = mirror_get(m->family, strlen(m->family));
    if (!others && !(kept && kept->kept)) {
        char *key = pending_key("mon1", m->family);
        pending_done(key);
        free(key);
        mirror_t *mi = aemp__table_del(&G.mirrors, m->family, strlen(m->family));
        if (mi)
            mirror_free(mi);
        to_master(NULL, aemp_msgf("ss", "g_mon0", m->family));
    } else if (kept) {
        /* (m is out of G.dbmons already) */
        mirror_tell_cost(kept);
    }
    aemp_msg_unref(m->members);
    free(m->family);
    free(m);
    return 0;
}

typedef struct grp_entry {
    char *group;
    char *port;
} grp_entry_t;

static void grp_release(void *p)
{
    grp_entry_t *e = p;
    aemp__global1_unreg(e->group, e->port);
    free(e->group);
    free(e->port);
    free(e);
}

int aemp_grp_reg(const char *group, const char *port, aemp_handle_t *handle)
{
    if (!port)
        port = aemp_self();
    int r = aemp_db_reg(group, port, NULL, handle);
    if (r)
        return r;
    /* 1.30 peers hear of it too, until the port dies */
    aemp__global1_reg(group, port);
    grp_entry_t *e = malloc(sizeof *e);
    if (!e || !(e->group = strdup(group)) || !(e->port = strdup(port)))
        abort();
    return aemp_mon_guard(port, grp_release, e, NULL);
}

/* On a node that is not global, the first call of a group starts
 * mirroring it for the life of the node (as a grp_mon would), so that
 * polling finds the members once the master has sent them. */
aemp_msg_t *aemp_grp_get(const char *group)
{
    if (!group)
        return NULL;
    aemp__ensure_init();
    if (!G.global && *group)
        mirror_open(group)->kept = 1;
    aemp_msg_t *ports = group_members(group);
    if (!aemp_msg_len(ports)) {
        aemp_msg_unref(ports);
        return NULL;
    }
    return ports;
}

int aemp_grp_mon(const char *group, aemp_grp_mon_fn cb, void *arg, aemp_handle_t *handle)
{
    return mon_start(group, NULL, cb, 0, arg, handle);
}

int aemp_is_global(void)
{
    return G.global;
}

/* ------------------------------------------------------------ lifecycle */

void aemp__global_find(const char *node)
{
    if (!G.started)
        return;
    if (G.global) {
        aemp_kv_t *e = db_entry(&G.merged, "'l", node, strlen(node));
        const aemp_val_t *addrs = e ? aemp_msg_root(e->val) : NULL;
        if (array_len(addrs)) {
            aemp_rnode_t *n = aemp__node_get(node, strlen(node));
            aemp__node_set_addrs(n, addrs);
            aemp__node_addrs_learned(n);
        }
        return;
    }
    char *key = pending_key("g_find", node);
    if (!aemp__kv_get(&G.pending, key, strlen(key)))
        to_master(key, aemp_msgf("ss", "g_find", node));
    free(key);
}

void aemp__global_start(void)
{
    if (G.started)
        return;
    G.started = 1;
    /* the g_* node-port requests, checked by the kernel against these
     * shapes (kernel.h) before a handler runs */
#define G_REQ(name, shape, labels, fn) { name, shape, labels, AEMP_DIALECT_202, AEMP_REQ_ALLOWED, fn, NULL }
    static const aemp_request_t requests[] = {
        G_REQ("g_slave", "m?", "database", h_g_slave),
        G_REQ("g_global", "", "", h_g_global),
        G_REQ("g_set", "m", "database", h_g_set),
        G_REQ("g_upd", "sMA?", "family,set,delete", h_g_upd),
        G_REQ("g_find", "n", "node ID", h_g_find),
        G_REQ("g_found", "nA", "node ID,addresses", h_g_found),
        G_REQ("g_db_family", "sv", "family,query ID", h_g_db_family),
        G_REQ("g_db_keys", "sv", "family,query ID", h_g_db_keys),
        G_REQ("g_db_values", "sv", "family,query ID", h_g_db_values),
        G_REQ("g_reply", "sv", "query ID,result", h_g_reply),
        G_REQ("g_mon1", "s", "family", h_g_mon1),
        G_REQ("g_mon0", "s", "family", h_g_mon0),
        G_REQ("g_mon_cost", "ss", "family,cost", h_g_mon_cost),
        G_REQ("g_chg1", "sM", "family,snapshot", h_g_chg1),
        G_REQ("g_chg2", "sMA", "family,set,delete", h_g_chg2),
    };
#undef G_REQ
    aemp__kernel_register(requests, sizeof requests / sizeof requests[0]);
    aemp_mon_nodes(on_updown, NULL, &G.updown);
    aemp__global1_start();
    aemp_db_set("'l", aemp__g.nodeid, aemp_listeners());
    master_search();
}

void aemp__global_init(void)
{
    memset(&G, 0, sizeof G);   /* every table empty (AEMP_TABLE_INIT) */
    aemp__global1_init();
    ev_init(&G.refind_timer, refind);
    ev_init(&G.outbox_timer, outbox_timer_cb);
    G.refind_timer.repeat = 0.5;
}

void aemp__global_shutdown(void)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&G.queries, &pos, NULL, NULL, &v))
        free(v);
    aemp__table_free(&G.queries);
    pos = 0;
    while (aemp__table_next(&G.dbmons, &pos, NULL, NULL, &v)) {
        aemp_msg_unref(((dbmon_t *)v)->members);
        free(((dbmon_t *)v)->family);
        free(v);
    }
    aemp__table_free(&G.dbmons);
    pos = 0;
    while (aemp__table_next(&G.mirrors, &pos, NULL, NULL, &v))
        mirror_free(v);
    aemp__table_free(&G.mirrors);
    aemp__kv_clear(&G.local);
    aemp__kv_clear(&G.pending);
    aemp__kv_clear(&G.globals);
    aemp__kv_clear(&G.slaves);
    aemp__kv_clear(&G.shards);
    aemp__kv_clear(&G.holders);
    aemp__kv_clear(&G.merged);
    aemp__kv_clear(&G.subscribers);
    aemp__kv_clear(&G.costly);
    pos = 0;
    while (aemp__table_next(&G.outboxes, &pos, NULL, NULL, &v))
        outbox_free(v);
    aemp__table_free(&G.outboxes);
    aemp__kv_clear(&G.snap_wait);
    aemp__kv_clear(&G.refind);
    ev_timer_stop(aemp__g.loop, &G.refind_timer);
    ev_timer_stop(aemp__g.loop, &G.outbox_timer);
    aemp__global1_shutdown();
    free(G.master);
    memset(&G, 0, sizeof G);
}
