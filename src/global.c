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
 * are registered here as named functions; a global node is its own master
 * and sends those requests to itself through the same path.
 */
#include "global.h"

#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ state */

static struct {
    int started;
    int global;              /* we are a global node */
    char *master;            /* node ID of our master, or NULL */
    json_t *local;           /* our local database: family -> {key -> value} */
    json_t *pending;         /* requests to (re)send to every new master: key -> [tag, args...] */
    json_t *globals;         /* node IDs known to be global: id -> true */
    /* global node only */
    json_t *slaves;          /* id -> true */
    json_t *shards;          /* node -> family -> key -> value */
    json_t *merged;          /* family -> key -> value */
    json_t *subscribers;     /* family -> {node -> true} */
    /* queries and mirrors */
    unsigned long next_query;
    aemp_table_t queries;    /* id -> query_t */
    json_t *mirrors;         /* family -> {key -> value} (db_mon) */
    aemp_table_t dbmons;     /* handle -> dbmon_t */
    aemp_handle_t updown;
    json_t *refind;          /* nodes whose address the master did not know yet */
    ev_timer refind_timer;
} G;

typedef struct query {
    char id[24];
    aemp_db_query_fn cb;
    void *arg;
} query_t;

typedef struct dbmon {
    aemp_handle_t id;
    char *family;
    aemp_db_mon_fn cb;
    aemp_grp_mon_fn gcb;     /* grp_mon adapter */
    void *arg;
    int primed;              /* has seen its first call */
    json_t *members;         /* grp_mon: the members last reported {port -> true} */
} dbmon_t;

static void send_to(const char *node, json_t *msg)
{
    aemp_snd(node, msg);
}

/* Send a request to the master now (if any) and remember it under key so
 * that a new master gets it again; key NULL = fire and forget. */
static void to_master(const char *key, json_t *msg)
{
    if (key)
        json_object_set(G.pending, key, msg);   /* sent again to a new master */
    if (G.master)
        send_to(G.master, msg);
    else
        json_decref(msg);
}

static void pending_done(const char *key)
{
    json_object_del(G.pending, key);
}

static int is_self(const char *node)
{
    return node && !strcmp(node, aemp__g.nodeid);
}

/* ----------------------------------------------------------- db helpers */

/* family object of db (created if create) */
static json_t *fam(json_t *db, const char *family, int create)
{
    json_t *f = json_object_get(db, family);
    if (!f && create) {
        f = json_object();
        json_object_set_new(db, family, f);
    }
    return f;
}

/* ------------------------------------------------- global node: merging */

static void notify_subscribers(const char *family, json_t *set, json_t *del)
{
    if (!json_object_size(set) && !json_array_size(del))
        return;
    json_t *subs = json_object_get(G.subscribers, family);
    const char *node;
    json_t *v;
    json_object_foreach(subs, node, v) {
        send_to(node, json_pack("[ssOO]", "g_chg2", family, set, del));
    }
}

/* Apply an update of shard `src` to the merged DB; fills the effective
 * sets/deletes for monitors and the deletes to forward to other globals. */
static void apply_update(const char *src, const char *family, json_t *set, json_t *del,
                         json_t *eff_set, json_t *eff_del, json_t *fwd_del)
{
    json_t *shard = json_object_get(G.shards, src);
    if (!shard) {
        shard = json_object();
        json_object_set_new(G.shards, src, shard);
    }
    json_t *sf = fam(shard, family, 1);
    json_t *mf = fam(G.merged, family, 1);
    const char *key;
    json_t *v;
    json_object_foreach(set, key, v) {
        json_object_set(sf, key, v);
        json_t *old = json_object_get(mf, key);
        if (!old || !json_equal(old, v)) {
            json_object_set(mf, key, v);
            json_object_set(eff_set, key, v);
        }
    }
    size_t i;
    json_t *k;
    json_array_foreach(del, i, k) {
        if (!json_is_string(k))
            continue;
        key = json_string_value(k);
        if (!json_object_get(sf, key))
            continue;
        json_object_del(sf, key);
        /* another shard may still hold it: prefer one of my slaves */
        json_t *repl = NULL;
        int repl_is_slave = 0;
        const char *node;
        json_t *other;
        json_object_foreach(G.shards, node, other) {
            json_t *ov = json_object_get(json_object_get(other, family), key);
            if (!ov)
                continue;
            int slave = json_object_get(G.slaves, node) != NULL;
            if (!repl || (slave && !repl_is_slave)) {
                repl = ov;
                repl_is_slave = slave;
            }
        }
        if (repl) {
            json_object_set(mf, key, repl);
            json_object_set(eff_set, key, repl);
            if (!repl_is_slave)
                json_array_append(fwd_del, k);
        } else if (json_object_get(mf, key)) {
            json_object_del(mf, key);
            json_array_append(eff_del, k);
            json_array_append(fwd_del, k);
        }
    }
    if (!json_object_size(sf))
        json_object_del(shard, family);
    if (!json_object_size(mf))
        json_object_del(G.merged, family);
}

static void keep_global_connected(const char *node);

/* g_upd from src: apply, tell monitors, and forward slave updates to the
 * other global nodes. */
static void global_update(const char *src, const char *family, json_t *set, json_t *del)
{
    json_t *eff_set = json_object(), *eff_del = json_array(), *fwd_del = json_array();
    apply_update(src, family, set, del, eff_set, eff_del, fwd_del);
    notify_subscribers(family, eff_set, eff_del);
    int from_slave = json_object_get(G.slaves, src) != NULL;
    if (from_slave && (json_object_size(set) || json_array_size(fwd_del))) {
        const char *node;
        json_t *v;
        json_object_foreach(G.globals, node, v) {
            if (!is_self(node) && aemp_node_is_up(node) == 1)
                send_to(node, json_pack("[ssOO]", "g_upd", family, set ? set : eff_set, fwd_del));
        }
    }
    /* globals keep connections to each other */
    if (!strcmp(family, "'g")) {
        const char *node;
        json_t *v;
        json_object_foreach(set, node, v)
            keep_global_connected(node);
    }
    if (!strcmp(family, "'l")) {
        const char *node;
        json_t *v;
        json_object_foreach(set, node, v) {
            if (!is_self(node) && json_is_array(v))
                aemp__node_set_addrs(aemp__node_get(node, strlen(node)), v);
        }
    }
    json_decref(eff_set);
    json_decref(eff_del);
    json_decref(fwd_del);
}

/* Drop everything a node contributed (it went away). */
static void global_disconnect(const char *node)
{
    json_t *shard = json_object_get(G.shards, node);
    if (shard) {
        json_incref(shard);
        int was_slave = json_object_get(G.slaves, node) != NULL;
        const char *family;
        json_t *f;
        json_t *families = json_array();
        json_object_foreach(shard, family, f)
            json_array_append_new(families, json_string(family));
        size_t i;
        json_t *fn;
        json_array_foreach(families, i, fn) {
            json_t *keys = json_array();
            const char *key;
            json_t *v;
            json_object_foreach(json_object_get(shard, json_string_value(fn)), key, v)
                json_array_append_new(keys, json_string(key));
            global_update(node, json_string_value(fn), NULL, keys);
            json_decref(keys);
        }
        json_decref(families);
        json_object_del(G.shards, node);
        (void)was_slave;
        json_decref(shard);
    }
    json_object_del(G.slaves, node);
    const char *family;
    json_t *subs;
    json_object_foreach(G.subscribers, family, subs)
        json_object_del(subs, node);
}

static void keep_global_connected(const char *node)
{
    if (is_self(node))
        return;
    json_object_set_new(G.globals, node, json_true());
    if (G.global && aemp_node_is_up(node) != 1) {
        json_t *addrs = json_object_get(json_object_get(G.merged, "'l"), node);
        if (json_is_array(addrs))
            aemp_add_node(node, addrs);
        send_to(node, json_pack("[s]", "g_global"));   /* connects */
    }
}

/* The merged databases of all my slaves (what another global gets). */
static json_t *slaves_db(void)
{
    json_t *db = json_object();
    const char *node;
    json_t *v;
    json_object_foreach(G.slaves, node, v) {
        const char *family;
        json_t *f;
        json_object_foreach(json_object_get(G.shards, node), family, f)
            json_object_update(fam(db, family, 1), f);
    }
    return db;
}

/* ---------------------------------------------------- becoming global */

static void master_set(const char *node);

void aemp__global_become(void)
{
    if (G.global || !G.started)
        return;
    G.global = 1;
    aemp_log(AEMP_LOG_INFO, "%s is a global node now", aemp__g.nodeid);
    master_set(aemp__g.nodeid);
    aemp_db_set("'g", aemp__g.nodeid, NULL);
    json_t *up = aemp_up_nodes();
    size_t i;
    json_t *n;
    json_array_foreach(up, i, n)
        if (aemp__node_dialect(json_string_value(n)) != AEMP_DIALECT_130)
            send_to(json_string_value(n), json_pack("[s]", "g_global"));
    json_decref(up);
}

/* ------------------------------------------------------------- masters */

static void master_set(const char *node)
{
    if (G.master && !strcmp(G.master, node))
        return;
    free(G.master);
    G.master = strdup(node);
    aemp_log(AEMP_LOG_DEBUG, "master is %s", node);
    send_to(node, json_pack("[sO]", "g_slave", G.local));
    const char *key;
    json_t *req;
    json_object_foreach(G.pending, key, req)
        send_to(node, json_incref(req));
}

static void master_search(void)
{
    if (G.global) {
        master_set(aemp__g.nodeid);
        return;
    }
    free(G.master);
    G.master = NULL;
    json_t *seeds = aemp__seed_nodes();
    size_t i;
    json_t *n;
    json_array_foreach(seeds, i, n) {
        if (aemp_node_is_up(json_string_value(n)) == 1 &&
            aemp__node_dialect(json_string_value(n)) != AEMP_DIALECT_130) {
            master_set(json_string_value(n));
            break;
        }
    }
    json_decref(seeds);
}

static void on_updown(const char *node, int up, json_t *reason, void *arg)
{
    if (up && aemp__node_dialect(node) == AEMP_DIALECT_130)
        return;   /* 1.30 peers get the 1.30 Global service (global1.c) */
    if (up) {
        if (aemp__seed_is_node(node))
            send_to(node, json_pack("[s]", "g_slave"));
        if (G.global)
            send_to(node, json_pack("[s]", "g_global"));
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

static const char *src(void)
{
    return aemp_srcnode() ? aemp_srcnode() : aemp__g.nodeid;
}

static void h_g_slave(json_t *args, void *unused)
{
    json_t *db = json_array_get(args, 0);
    if (!db) {   /* "please run the global service" */
        aemp__global_become();
        return;
    }
    if (!G.global)
        aemp__global_become();
    const char *from = src();
    /* a new slave's db replaces what we had from it */
    if (json_object_get(G.shards, from) && !is_self(from))
        global_disconnect(from);
    json_object_set_new(G.slaves, from, json_true());
    const char *family;
    json_t *f;
    json_object_foreach(db, family, f)
        if (json_is_object(f))
            global_update(from, family, f, NULL);
}

static void h_g_global(json_t *args, void *unused)
{
    const char *from = src();
    json_object_set_new(G.globals, from, json_true());
    if (!G.global)
        return;
    json_t *db = slaves_db();
    send_to(from, json_pack("[so]", "g_set", db));
}

static void h_g_set(json_t *args, void *unused)
{
    const char *from = src();
    json_t *db = json_array_get(args, 0);
    if (!G.global || !json_is_object(db))
        return;
    json_object_set_new(G.globals, from, json_true());
    /* replace the shard of that global */
    json_t *old = json_object_get(G.shards, from);
    if (old) {
        const char *family;
        json_t *f;
        json_t *drops = json_object();
        json_object_foreach(old, family, f) {
            json_t *keys = json_array();
            const char *key;
            json_t *v;
            json_object_foreach(f, key, v)
                if (!json_object_get(json_object_get(db, family), key))
                    json_array_append_new(keys, json_string(key));
            json_object_set_new(drops, family, keys);
        }
        json_t *keys;
        json_object_foreach(drops, family, keys)
            global_update(from, family, NULL, keys);
        json_decref(drops);
    }
    const char *family;
    json_t *f;
    json_object_foreach(db, family, f)
        if (json_is_object(f))
            global_update(from, family, f, NULL);
}

static void h_g_upd(json_t *args, void *unused)
{
    const char *family = json_string_value(json_array_get(args, 0));
    json_t *set = json_array_get(args, 1), *del = json_array_get(args, 2);
    if (!G.global || !family)
        return;
    global_update(src(), family, json_is_object(set) ? set : NULL, json_is_array(del) ? del : NULL);
}

static void h_g_find(json_t *args, void *unused)
{
    const char *node = json_string_value(json_array_get(args, 0));
    if (!node)
        return;
    json_t *addrs = json_object_get(json_object_get(G.merged, "'l"), node);
    if (is_self(node))
        addrs = (json_t *)aemp_listeners();
    send_to(src(), json_pack("[ssO]", "g_found", node, addrs ? addrs : json_null()));
}

/* Ask the master again for every node that still waits for an address. */
static void refind(EV_P_ ev_timer *w, int revents)
{
    json_t *nodes = G.refind;
    G.refind = json_object();
    const char *node;
    json_t *v;
    json_object_foreach(nodes, node, v) {
        aemp_rnode_t *n = aemp__node_find(node, strlen(node));
        if (n && n->connecting && !n->conn)
            aemp__global_find(node);
    }
    json_decref(nodes);
    if (!json_object_size(G.refind))
        ev_timer_stop(EV_A_ w);
}

static void h_g_found(json_t *args, void *unused)
{
    const char *node = json_string_value(json_array_get(args, 0));
    json_t *addrs = json_array_get(args, 1);
    if (!node)
        return;
    char key[300];
    snprintf(key, sizeof key, "g_find %s", node);
    pending_done(key);
    aemp_rnode_t *n = aemp__node_get(node, strlen(node));
    if (json_is_array(addrs) && json_array_size(addrs)) {
        aemp__node_set_addrs(n, addrs);
        aemp__node_addrs_learned(n);
    } else if (n->connecting && !n->conn) {
        /* not registered yet (it may be starting): ask again shortly,
         * until the connect deadline gives up */
        json_object_set_new(G.refind, node, json_true());
        if (!ev_is_active(&G.refind_timer))
            ev_timer_again(aemp__g.loop, &G.refind_timer);
    }
}

static void h_g_db_query(json_t *args, const char *kind)
{
    const char *family = json_string_value(json_array_get(args, 0));
    json_t *id = json_array_get(args, 1);
    if (!family || !id)
        return;
    json_t *f = json_object_get(G.merged, family);
    json_t *res;
    if (!strcmp(kind, "family")) {
        res = f ? json_deep_copy(f) : json_object();
    } else {
        res = json_array();
        const char *key;
        json_t *v;
        json_object_foreach(f, key, v)
            json_array_append_new(res, kind[0] == 'k' ? json_string(key) : json_incref(v));
    }
    send_to(src(), json_pack("[sOo]", "g_reply", id, res));
}
static void h_g_db_family(json_t *a, void *u) { h_g_db_query(a, "family"); }
static void h_g_db_keys(json_t *a, void *u) { h_g_db_query(a, "keys"); }
static void h_g_db_values(json_t *a, void *u) { h_g_db_query(a, "values"); }

static void h_g_reply(json_t *args, void *unused)
{
    json_t *idv = json_array_get(args, 0);
    if (!json_is_string(idv))
        return;
    const char *id = json_string_value(idv);
    query_t *q = aemp__table_del(&G.queries, id, strlen(id));
    if (!q)
        return;
    pending_done(id);
    q->cb(json_array_get(args, 1), q->arg);
    free(q);
}

static void h_g_mon1(json_t *args, void *unused)
{
    const char *family = json_string_value(json_array_get(args, 0));
    if (!family || !G.global)
        return;
    json_t *subs = fam(G.subscribers, family, 1);
    json_object_set_new(subs, src(), json_true());
    json_t *f = json_object_get(G.merged, family);
    send_to(src(), json_pack("[ssO]", "g_chg1", family, f ? f : json_null()));
}

static void h_g_mon0(json_t *args, void *unused)
{
    const char *family = json_string_value(json_array_get(args, 0));
    if (family)
        json_object_del(json_object_get(G.subscribers, family), src());
}

/* The members of a group: the database view plus members learned from
 * 1.30 nodes (new object port -> true). */
static json_t *group_members(const char *group)
{
    json_t *all = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(G.global ? G.merged : G.mirrors, group), key, v)
        json_object_set_new(all, key, json_true());
    json_object_foreach(aemp__global1_members(group), key, v)
        json_object_set_new(all, key, json_true());
    return all;
}

/* Report a grp_mon monitor's membership changes since its last call
 * (nothing if there are none, unless it was never called: then the first
 * call is made if the group is not empty). */
static void grp_report(dbmon_t *m)
{
    json_t *now = group_members(m->family);
    json_t *ports = json_array(), *added = json_array(), *removed = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(now, key, v) {
        json_array_append_new(ports, json_string(key));
        if (!json_object_get(m->members, key))
            json_array_append_new(added, json_string(key));
    }
    json_object_foreach(m->members, key, v)
        if (!json_object_get(now, key))
            json_array_append_new(removed, json_string(key));
    json_decref(m->members);
    m->members = now;
    if (json_array_size(added) || json_array_size(removed))
        m->gcb(ports, added, removed, m->arg);
    json_decref(ports);
    json_decref(added);
    json_decref(removed);
}

/* The monitors of a family, collected first: callbacks may cancel some. */
static size_t monitors_of(const char *family, aemp_handle_t *ids, size_t max)
{
    size_t pos = 0, n = 0;
    void *v;
    while (aemp__table_next(&G.dbmons, &pos, NULL, NULL, &v) && n < max)
        if (!strcmp(((dbmon_t *)v)->family, family))
            ids[n++] = ((dbmon_t *)v)->id;
    return n;
}

/* Call the monitors of a family with added/changed/deleted lists. */
static void call_monitors(const char *family, json_t *hash, json_t *added, json_t *changed, json_t *deleted)
{
    aemp_handle_t ids[256];
    size_t n = monitors_of(family, ids, 256);
    for (size_t i = 0; i < n; i++) {
        dbmon_t *m = aemp__table_get(&G.dbmons, (const char *)&ids[i], sizeof ids[i]);
        if (!m)
            continue;
        m->primed = 1;
        if (m->cb)
            m->cb(hash, added, changed, deleted, m->arg);
        else
            grp_report(m);
    }
}

void aemp__grp_changed(const char *group)
{
    aemp_handle_t ids[256];
    size_t n = monitors_of(group, ids, 256);
    for (size_t i = 0; i < n; i++) {
        dbmon_t *m = aemp__table_get(&G.dbmons, (const char *)&ids[i], sizeof ids[i]);
        if (m && m->gcb)
            grp_report(m);
    }
}

static void h_g_chg1(json_t *args, void *unused)
{
    const char *family = json_string_value(json_array_get(args, 0));
    json_t *snap = json_array_get(args, 1);
    if (!family || !G.master || strcmp(src(), G.master))
        return;
    json_t *old = json_object_get(G.mirrors, family);
    if (!old)
        return;   /* nobody monitors it any more */
    json_t *added = json_array(), *changed = json_array(), *deleted = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(snap, key, v)
        json_array_append_new(json_object_get(old, key) ? changed : added, json_string(key));
    json_object_foreach(old, key, v)
        if (!json_object_get(snap, key))
            json_array_append_new(deleted, json_string(key));
    json_t *fresh = json_is_object(snap) ? json_deep_copy(snap) : json_object();
    json_object_set_new(G.mirrors, family, fresh);
    call_monitors(family, fresh, added, changed, deleted);
    json_decref(added);
    json_decref(changed);
    json_decref(deleted);
}

static void h_g_chg2(json_t *args, void *unused)
{
    const char *family = json_string_value(json_array_get(args, 0));
    json_t *set = json_array_get(args, 1), *del = json_array_get(args, 2);
    if (!family || !G.master || strcmp(src(), G.master))
        return;
    json_t *mirror = json_object_get(G.mirrors, family);
    if (!mirror)
        return;
    json_t *added = json_array(), *changed = json_array(), *deleted = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(set, key, v) {
        json_array_append_new(json_object_get(mirror, key) ? changed : added, json_string(key));
        json_object_set(mirror, key, v);
    }
    size_t i;
    json_array_foreach(del, i, v) {
        if (json_is_string(v) && json_object_get(mirror, json_string_value(v))) {
            json_object_del(mirror, json_string_value(v));
            json_array_append(deleted, v);
        }
    }
    if (json_array_size(added) || json_array_size(changed) || json_array_size(deleted))
        call_monitors(family, mirror, added, changed, deleted);
    json_decref(added);
    json_decref(changed);
    json_decref(deleted);
}

/* ------------------------------------------------------------ public API */

int aemp_db_set(const char *family, const char *key, json_t *value)
{
    if (!family || !*family || !key || !*key) {
        json_decref(value);
        return AEMP_EINVAL;
    }
    aemp__ensure_init();
    if (!value)
        value = json_null();
    json_t *f = fam(G.local, family, 1);
    json_t *old = json_object_get(f, key);
    if (old && json_equal(old, value)) {
        json_decref(value);
        return 0;
    }
    json_object_set(f, key, value);
    json_t *set = json_object();
    json_object_set_new(set, key, value);
    to_master(NULL, json_pack("[sso]", "g_upd", family, set));
    return 0;
}

int aemp_db_del(const char *family, const char *key)
{
    if (!family || !key)
        return AEMP_EINVAL;
    aemp__ensure_init();
    json_t *f = json_object_get(G.local, family);
    if (!json_object_get(f, key))
        return AEMP_ENOENT;
    json_object_del(f, key);
    if (!json_object_size(f))
        json_object_del(G.local, family);
    to_master(NULL, json_pack("[ssn[s]]", "g_upd", family, key));
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

int aemp_db_reg(const char *family, const char *port, json_t *value, aemp_handle_t *handle)
{
    if (!port)
        port = aemp_self();
    if (!family || !port) {
        json_decref(value);
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

static int query(const char *tag, const char *family, aemp_db_query_fn cb, void *arg)
{
    if (!family || !cb)
        return AEMP_EINVAL;
    aemp__ensure_init();
    query_t *q = calloc(1, sizeof *q);
    if (!q)
        abort();
    snprintf(q->id, sizeof q->id, "q%lu", ++G.next_query);
    q->cb = cb;
    q->arg = arg;
    aemp__table_put(&G.queries, q->id, strlen(q->id), q);
    to_master(q->id, json_pack("[sss]", tag, family, q->id));
    return 0;
}

int aemp_db_family(const char *family, aemp_db_query_fn cb, void *arg)
{
    return query("g_db_family", family, cb, arg);
}

int aemp_db_keys(const char *family, aemp_db_query_fn cb, void *arg)
{
    return query("g_db_keys", family, cb, arg);
}

int aemp_db_values(const char *family, aemp_db_query_fn cb, void *arg)
{
    return query("g_db_values", family, cb, arg);
}

typedef struct prime {
    aemp_handle_t id;
} prime_t;

/* First call of a monitor added to a family that is already mirrored. */
static void prime_later(void *p)
{
    prime_t *pr = p;
    dbmon_t *m = aemp__table_get(&G.dbmons, (const char *)&pr->id, sizeof pr->id);
    if (m && m->gcb) {
        m->primed = 1;
        grp_report(m);
    } else if (m && !m->primed) {
        m->primed = 1;
        json_t *mirror = json_object_get(G.mirrors, m->family);
        json_t *keys = json_array(), *none = json_array();
        const char *key;
        json_t *v;
        json_object_foreach(mirror, key, v)
            json_array_append_new(keys, json_string(key));
        m->cb(mirror, keys, none, none, m->arg);
        json_decref(keys);
        json_decref(none);
    }
    free(pr);
}

static int mon_start(const char *family, aemp_db_mon_fn cb, aemp_grp_mon_fn gcb, void *arg, aemp_handle_t *handle)
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
    m->arg = arg;
    aemp__table_put(&G.dbmons, (const char *)&m->id, sizeof m->id, m);
    if (handle)
        *handle = m->id;
    if (gcb || json_object_get(G.mirrors, family)) {
        /* a group monitor also reports members learned from 1.30 nodes,
         * which need no master */
        prime_t *p = malloc(sizeof *p);
        if (!p)
            abort();
        p->id = m->id;
        aemp__job_call(prime_later, p);
    }
    if (!json_object_get(G.mirrors, family)) {
        json_object_set_new(G.mirrors, family, json_object());
        char key[300];
        snprintf(key, sizeof key, "mon1 %s", family);
        to_master(key, json_pack("[ss]", "g_mon1", family));
    }
    return 0;
}

int aemp_db_mon(const char *family, aemp_db_mon_fn cb, void *arg, aemp_handle_t *handle)
{
    return mon_start(family, cb, NULL, arg, handle);
}

int aemp_db_mon_cancel(aemp_handle_t handle)
{
    dbmon_t *m = aemp__table_del(&G.dbmons, (const char *)&handle, sizeof handle);
    if (!m)
        return AEMP_ENOENT;
    int others = 0;
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&G.dbmons, &pos, NULL, NULL, &v))
        if (!strcmp(((dbmon_t *)v)->family, m->family))
            others = 1;
    if (!others) {
        char key[300];
        snprintf(key, sizeof key, "mon1 %s", m->family);
        pending_done(key);
        json_object_del(G.mirrors, m->family);
        to_master(NULL, json_pack("[ss]", "g_mon0", m->family));
    }
    json_decref(m->members);
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

json_t *aemp_grp_get(const char *group)
{
    aemp__ensure_init();
    json_t *all = group_members(group);
    if (!json_object_size(all)) {
        json_decref(all);
        return NULL;
    }
    json_t *ports = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(all, key, v)
        json_array_append_new(ports, json_string(key));
    json_decref(all);
    return ports;
}

int aemp_grp_mon(const char *group, aemp_grp_mon_fn cb, void *arg, aemp_handle_t *handle)
{
    return mon_start(group, NULL, cb, arg, handle);
}

int aemp_is_global(void)
{
    return G.global;
}

/* ------------------------------------------------------------ lifecycle */

void aemp__global_find(const char *node)
{
    char key[300];
    snprintf(key, sizeof key, "g_find %s", node);
    if (!G.started)
        return;
    if (G.global) {
        json_t *addrs = json_object_get(json_object_get(G.merged, "'l"), node);
        if (json_is_array(addrs) && json_array_size(addrs)) {
            aemp_rnode_t *n = aemp__node_get(node, strlen(node));
            aemp__node_set_addrs(n, addrs);
            aemp__node_addrs_learned(n);
        }
        return;
    }
    if (!json_object_get(G.pending, key))
        to_master(key, json_pack("[ss]", "g_find", node));
}

void aemp__global_start(void)
{
    if (G.started)
        return;
    G.started = 1;
    static const struct { const char *name; aemp_func_fn fn; } handlers[] = {
        { "g_slave", h_g_slave }, { "g_global", h_g_global }, { "g_set", h_g_set },
        { "g_upd", h_g_upd }, { "g_find", h_g_find }, { "g_found", h_g_found },
        { "g_db_family", h_g_db_family }, { "g_db_keys", h_g_db_keys },
        { "g_db_values", h_g_db_values }, { "g_reply", h_g_reply }, { "g_mon1", h_g_mon1 },
        { "g_mon0", h_g_mon0 }, { "g_chg1", h_g_chg1 }, { "g_chg2", h_g_chg2 },
    };
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        aemp__func_register_protocol(handlers[i].name, handlers[i].fn, NULL);
    aemp_mon_nodes(on_updown, NULL, &G.updown);
    aemp__global1_start();
    aemp_db_set("'l", aemp__g.nodeid, json_deep_copy(aemp_listeners()));
    master_search();
}

void aemp__global_init(void)
{
    memset(&G, 0, sizeof G);
    G.local = json_object();
    G.pending = json_object();
    G.globals = json_object();
    G.slaves = json_object();
    G.shards = json_object();
    G.merged = json_object();
    G.subscribers = json_object();
    G.mirrors = json_object();
    G.refind = json_object();
    aemp__global1_init();
    ev_init(&G.refind_timer, refind);
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
        json_decref(((dbmon_t *)v)->members);
        free(((dbmon_t *)v)->family);
        free(v);
    }
    aemp__table_free(&G.dbmons);
    json_decref(G.local);
    json_decref(G.pending);
    json_decref(G.globals);
    json_decref(G.slaves);
    json_decref(G.shards);
    json_decref(G.merged);
    json_decref(G.subscribers);
    json_decref(G.mirrors);
    json_decref(G.refind);
    ev_timer_stop(aemp__g.loop, &G.refind_timer);
    aemp__global1_shutdown();
    free(G.master);
    memset(&G, 0, sizeof G);
}
