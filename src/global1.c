/* global1.c - 1.30 compatibility: the Global service that AnyEvent::MP 1.30
 * nodes run with every peer (full mesh and port groups).
 *
 * When a connection to a 1.30 peer comes up, each side spawns an
 * "AnyEvent::MP::Global::connect" port on the other, monitors it, and sends
 * it its listeners (addr), the addresses it knows (nodes), its group
 * registrations (set) and "setup"; later reg1/reg0 announce group changes,
 * seedme1/seedme0 ask for node lists, find asks for one node's addresses.
 * Group members learned this way are visible through aemp_grp_get and
 * aemp_grp_mon, and this node republishes them in the 2.02 database, so a
 * libaemp node bridges a 1.30 network into a 2.02 one.
 */
#include "global.h"

#include "node.h"

#include <stdlib.h>
#include <string.h>

/* String-keyed tables (aemp_kv_t, global.h). */
static struct {
    aemp_table_t addr;   /* node -> its addresses (an array) learned from 1.30 peers */
    aemp_table_t port;   /* node -> our Global port on that node (a string) */
    aemp_table_t lreg;   /* group -> our local member ports (an array, in registration order) */
    aemp_table_t greg;   /* group -> port -> the node it came from (a string): the 1.30 view */
    aemp_table_t seedme; /* nodes that asked for node lists (a set) */
    aemp_handle_t updown;
} S;

/* ------------------------------------------------------------- helpers */

static void tell(const char *node, aemp_msg_t *msg)
{
    aemp_kv_t *p = aemp__kv_get(&S.port, node, strlen(node));
    if (p && msg)
        aemp_snd(aemp_val_str(aemp_msg_root(p->val), NULL), msg);
    else
        aemp_msg_unref(msg);
}

static void tell_all(aemp_msg_t *msg)
{
    size_t pos = 0;
    aemp_kv_t *p;
    while (msg && aemp__kv_next(&S.port, &pos, &p))
        aemp_snd(aemp_val_str(aemp_msg_root(p->val), NULL), aemp_msg_ref(msg));
    aemp_msg_unref(msg);
}

/* ["nodes", {node: [address...]...}] with every address we know. */
static aemp_msg_t *nodes_msg(void)
{
    aemp_build_t *b = aemp_build_new();
    aemp_build_str(b, "nodes");
    aemp__kv_build_map(b, &S.addr);
    return aemp_build_msg(b);
}

/* A member learned from a 1.30 node: remember it and republish it. */
static void member_add(const char *group, const char *port, const char *from)
{
    aemp_kv_t *g = aemp__kv_put(&S.greg, group, strlen(group));
    if (aemp__kv_get(aemp__kv_sub_ro(g), port, strlen(port)))
        return;
    aemp_msg_t *node = aemp_valf("s", from);
    aemp__kv_set(aemp__kv_sub(g), port, strlen(port), node);
    aemp_msg_unref(node);
    aemp_db_set(group, port, NULL);   /* the bridge into the 2.02 database */
    aemp__grp_changed(group);
}

static void member_del(const char *group, const char *port)
{
    aemp_kv_t *g = aemp__kv_get(&S.greg, group, strlen(group));
    if (!g || !aemp__kv_del(aemp__kv_sub(g), port, strlen(port)))
        return;
    if (!aemp__kv_count(g))
        aemp__kv_del(&S.greg, group, strlen(group));
    aemp_db_del(group, port);
    aemp__grp_changed(group);
}

/* Forget every member that node contributed. */
static void node_members_drop(const char *node)
{
    /* collected first ([group, port, group, port...]): member_del changes
     * the tables */
    aemp_build_t *b = aemp_build_new();
    size_t gpos = 0;
    aemp_kv_t *g;
    while (aemp__kv_next(&S.greg, &gpos, &g)) {
        size_t ppos = 0;
        aemp_kv_t *p;
        while (aemp__kv_next(aemp__kv_sub_ro(g), &ppos, &p))
            if (!strcmp(aemp_val_str(aemp_msg_root(p->val), NULL), node))
                aemp_build_fmt(b, "s#s#", g->key, g->len, p->key, p->len);
    }
    aemp_msg_t *drop = aemp_build_msg(b);
    for (size_t i = 0; i + 1 < aemp_msg_len(drop); i += 2)
        member_del(aemp_msg_str(drop, i, NULL), aemp_msg_str(drop, i + 1, NULL));
    aemp_msg_unref(drop);
}

/* ------------------------------------------------- our side of a peer */

static void global_port_died(aemp_msg_t *reason, void *arg)
{
    const char *node = arg;
    aemp__kv_del(&S.port, node, strlen(node));
    node_members_drop(node);
}

/* Bootstrap the 1.30 Global service with a peer that just came up. */
static void start_node(const char *node)
{
    if (aemp__kv_get(&S.port, node, strlen(node)) || !strcmp(node, aemp__g.nodeid))
        return;
    char *p = aemp_spawn(node, "AnyEvent::MP::Global::connect", aemp_msgf("is", 0, aemp__g.nodeid));
    if (!p)
        return;
    aemp_msg_t *pm = aemp_valf("s", p);
    aemp__kv_set(&S.port, node, strlen(node), pm);
    aemp_msg_unref(pm);
    char *copy = strdup(node);
    if (!copy)
        abort();
    /* the callback runs first on death; the guard frees the copy after it,
     * or alone when the monitor is discarded (shutdown) */
    aemp_mon(p, global_port_died, copy, NULL);
    aemp_mon_guard(p, free, copy, NULL);
    aemp_msg_t *listeners = aemp_listeners();
    aemp_snd(p, aemp_msgf("sv", "addr", aemp_msg_root(listeners)));
    aemp_msg_unref(listeners);
    if (S.addr.used)
        aemp_snd(p, nodes_msg());
    if (S.lreg.used) {
        aemp_build_t *b = aemp_build_new();
        aemp_build_str(b, "set");
        aemp__kv_build_map(b, &S.lreg);
        aemp_snd(p, aemp_build_msg(b));
    }
    aemp_snd(p, aemp_msgf("s", "setup"));
    if (aemp__seed_is_node(node))
        aemp_snd(p, aemp_msgf("s", "seedme1"));   /* a seed keeps us informed */
    free(p);
}

static void on_updown(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    if (up && aemp__node_dialect(node) == AEMP_DIALECT_130)
        start_node(node);
    if (!up)
        aemp__kv_del(&S.seedme, node, strlen(node));
}

/* -------------------------------------- the Global port a peer spawned */

/* Tag callbacks: msg is the whole message, the tag is element 0; arg is
 * the peer's node ID. */

/* Remember addrs (an array) for node and tell the node layer. */
static void addr_learned(const char *node, const aemp_val_t *addrs)
{
    aemp_msg_t *m = aemp_msg_copy_val(addrs);
    aemp__kv_set(&S.addr, node, strlen(node), m);
    if (aemp_msg_len(m))
        aemp_add_node(node, m);
    aemp_msg_unref(m);
}

static void h_addr(aemp_msg_t *msg, void *arg)
{
    const char *peer = arg;
    const aemp_val_t *addrs = aemp_msg_at(msg, 1);
    if (aemp_val_type(addrs) != AEMP_T_ARRAY)
        return;
    addr_learned(peer, addrs);
    aemp_msg_t *nodes = NULL;
    size_t pos = 0;
    aemp_kv_t *node;
    while (aemp__kv_next(&S.seedme, &pos, &node)) {
        if (!strcmp(node->key, peer))
            continue;
        if (!nodes)
            nodes = aemp_msgf("s{sv}", "nodes", peer, addrs);
        tell(node->key, aemp_msg_ref(nodes));
    }
    aemp_msg_unref(nodes);
}

static void h_nodes(aemp_msg_t *msg, void *arg)
{
    const aemp_val_t *nodes = aemp_msg_at(msg, 1);
    if (aemp_val_type(nodes) != AEMP_T_MAP)
        return;
    for (size_t i = 0, n = aemp_val_len(nodes); i < n; i++) {
        const char *node = aemp_val_str(aemp_val_key(nodes, i), NULL);
        const aemp_val_t *addrs = aemp_val_value(nodes, i);
        if (!strcmp(node, aemp__g.nodeid) || aemp_val_type(addrs) != AEMP_T_ARRAY)
            continue;
        addr_learned(node, addrs);
        start_node(node);   /* connects and bootstraps the mesh */
    }
}

static void h_set(aemp_msg_t *msg, void *arg)
{
    const char *peer = arg;
    const aemp_val_t *groups = aemp_msg_at(msg, 1);
    if (aemp_val_type(groups) != AEMP_T_MAP)
        return;
    for (size_t i = 0, n = aemp_val_len(groups); i < n; i++) {
        const char *group = aemp_val_str(aemp_val_key(groups, i), NULL);
        const aemp_val_t *ports = aemp_val_value(groups, i);
        if (aemp_val_type(ports) != AEMP_T_ARRAY)
            continue;
        for (size_t j = 0, np = aemp_val_len(ports); j < np; j++) {
            const char *port = aemp_val_str(aemp_val_at(ports, j), NULL);
            if (port)
                member_add(group, port, peer);
        }
    }
}

static void h_find(aemp_msg_t *msg, void *arg)
{
    const char *peer = arg;
    const char *node = aemp_msg_str(msg, 1, NULL);
    aemp_kv_t *addrs = node ? aemp__kv_get(&S.addr, node, strlen(node)) : NULL;
    if (addrs)
        tell(peer, aemp_msgf("s{sv}", "nodes", node, aemp_msg_root(addrs->val)));
}

static void h_reg1(aemp_msg_t *msg, void *arg)
{
    const char *group = aemp_msg_str(msg, 1, NULL);
    const char *port = aemp_msg_str(msg, 2, NULL);
    if (group && port)
        member_add(group, port, arg);
}

static void h_reg0(aemp_msg_t *msg, void *arg)
{
    const char *group = aemp_msg_str(msg, 1, NULL);
    const char *port = aemp_msg_str(msg, 2, NULL);
    if (group && port)
        member_del(group, port);
}

static void h_seedme1(aemp_msg_t *msg, void *arg)
{
    const char *peer = arg;
    aemp__kv_put(&S.seedme, peer, strlen(peer));
    tell(peer, nodes_msg());
}

static void h_seedme0(aemp_msg_t *msg, void *arg)
{
    const char *peer = arg;
    aemp__kv_del(&S.seedme, peer, strlen(peer));
}

static void h_setup(aemp_msg_t *msg, void *arg)
{
}

static void free_peer(void *arg)
{
    free(arg);
}

/* Init function of "AnyEvent::MP::Global::connect" (version, peer). */
static void global_connect(aemp_msg_t *args, void *unused)
{
    int64_t version;
    if (aemp_msg_int(args, 0, &version) != 0)
        version = 0;   /* as before: a version that is no integer counts as 0 */
    const char *peer = aemp_msg_str(args, 1, NULL);
    const char *self = aemp_self(), *from = aemp_srcnode();
    /* only a spawn by the peer itself starts its Global port */
    if (!self) {
        aemp_log(AEMP_LOG_WARN, "AnyEvent::MP::Global::connect from %s ignored: it must be spawned",
                 from ? from : aemp_node());
        return;
    }
    if (from && peer && strcmp(from, peer)) {
        aemp_log(AEMP_LOG_WARN, "AnyEvent::MP::Global::connect from %s ignored: it names another node (%.64s)",
                 from, peer);
        aemp_die("AnyEvent::MP::Global::connect names another node than its spawner");
        return;
    }
    if (version != 0 || !peer) {
        aemp_die("AnyEvent::MP::Global version mismatch (we: 0, they: %lld)", (long long)version);
        return;
    }
    char *p = strdup(peer);
    if (!p)
        abort();
    static const struct { const char *tag; aemp_rcv_fn fn; } tags[] = {
        { "addr", h_addr }, { "nodes", h_nodes }, { "set", h_set }, { "find", h_find },
        { "reg1", h_reg1 }, { "reg0", h_reg0 }, { "seedme1", h_seedme1 },
        { "seedme0", h_seedme0 }, { "setup", h_setup },
    };
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        aemp_rcv_tag(self, tags[i].tag, tags[i].fn, p);
    aemp_mon_guard(self, free_peer, p, NULL);
    /* the connection to the peer going away takes this port with it */
    aemp_mon_kil(peer, self, NULL);
    start_node(peer);
}

/* -------------------------------------------- our group registrations */

void aemp__global1_reg(const char *group, const char *port)
{
    aemp_kv_t *l = aemp__kv_put(&S.lreg, group, strlen(group));
    aemp_msg_t *ports = l->val ? aemp__msg_append_str(l->val, port, strlen(port)) : aemp_msgf("s", port);
    aemp__kv_set(&S.lreg, group, strlen(group), ports);
    aemp_msg_unref(ports);
    tell_all(aemp_msgf("sss", "reg1", group, port));
}

void aemp__global1_unreg(const char *group, const char *port)
{
    aemp_kv_t *l = aemp__kv_get(&S.lreg, group, strlen(group));
    size_t n = l ? aemp_msg_len(l->val) : 0, i = 0;
    while (i < n && strcmp(aemp_msg_str(l->val, i, NULL), port))
        i++;
    if (i < n) {
        /* the same list without its first registration of port */
        aemp_build_t *b = aemp_build_new();
        for (size_t j = 0; j < n; j++)
            if (j != i)
                aemp_build_val(b, aemp_msg_at(l->val, j));
        aemp_msg_t *ports = aemp_build_msg(b);
        if (aemp_msg_len(ports))
            aemp__kv_set(&S.lreg, group, strlen(group), ports);
        else
            aemp__kv_del(&S.lreg, group, strlen(group));
        aemp_msg_unref(ports);
    }
    tell_all(aemp_msgf("sss", "reg0", group, port));
}

aemp_msg_t *aemp__global1_members(const char *group)
{
    aemp_kv_t *g = aemp__kv_get(&S.greg, group, strlen(group));
    if (!g || !aemp__kv_count(g))
        return NULL;
    aemp_build_t *b = aemp_build_new();
    aemp__kv_build_map(b, aemp__kv_sub_ro(g));
    return aemp_build_root(b);
}

/* ------------------------------------------------------------ lifecycle */

void aemp__global1_start(void)
{
    aemp__func_register_protocol("AnyEvent::MP::Global::connect", global_connect, NULL);
    aemp_mon_nodes(on_updown, NULL, &S.updown);
}

void aemp__global1_init(void)
{
    memset(&S, 0, sizeof S);   /* every table empty (AEMP_TABLE_INIT) */
}

void aemp__global1_shutdown(void)
{
    aemp__kv_clear(&S.addr);
    aemp__kv_clear(&S.port);
    aemp__kv_clear(&S.lreg);
    aemp__kv_clear(&S.greg);
    aemp__kv_clear(&S.seedme);
    memset(&S, 0, sizeof S);
}
