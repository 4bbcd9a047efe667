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

static struct {
    json_t *addr;        /* node -> [addresses] learned from 1.30 peers */
    json_t *port;        /* node -> our Global port on that node */
    json_t *lreg;        /* group -> [our local member ports] */
    json_t *greg;        /* group -> {port -> node it came from} (1.30 view) */
    json_t *seedme;      /* nodes that asked for node lists */
    aemp_handle_t updown;
} S;

/* ------------------------------------------------------------- helpers */

static void tell(const char *node, json_t *msg)
{
    const char *p = json_string_value(json_object_get(S.port, node));
    if (p)
        aemp_snd(p, msg);
    else
        json_decref(msg);
}

static void tell_all(json_t *msg)
{
    const char *node;
    json_t *p;
    json_object_foreach(S.port, node, p)
        aemp_snd(json_string_value(p), json_incref(msg));
    json_decref(msg);
}

/* A member learned from a 1.30 node: remember it and republish it. */
static void member_add(const char *group, const char *port, const char *from)
{
    json_t *g = json_object_get(S.greg, group);
    if (!g) {
        g = json_object();
        json_object_set_new(S.greg, group, g);
    }
    if (json_object_get(g, port))
        return;
    json_object_set_new(g, port, json_string(from));
    aemp_db_set(group, port, NULL);   /* the bridge into the 2.02 database */
    aemp__grp_changed(group);
}

static void member_del(const char *group, const char *port)
{
    json_t *g = json_object_get(S.greg, group);
    if (!json_object_get(g, port))
        return;
    json_object_del(g, port);
    aemp_db_del(group, port);
    aemp__grp_changed(group);
}

/* Forget every member that node contributed. */
static void node_members_drop(const char *node)
{
    const char *group;
    json_t *g;
    json_object_foreach(S.greg, group, g) {
        json_t *ports = json_array();
        const char *port;
        json_t *from;
        json_object_foreach(g, port, from)
            if (!strcmp(json_string_value(from), node))
                json_array_append_new(ports, json_string(port));
        size_t i;
        json_t *p;
        json_array_foreach(ports, i, p)
            member_del(group, json_string_value(p));
        json_decref(ports);
    }
}

/* ------------------------------------------------- our side of a peer */

static void global_port_died(json_t *reason, void *arg)
{
    const char *node = arg;
    json_object_del(S.port, node);
    node_members_drop(node);
}

/* Bootstrap the 1.30 Global service with a peer that just came up. */
static void start_node(const char *node)
{
    if (json_object_get(S.port, node) || !strcmp(node, aemp__g.nodeid))
        return;
    char *p = aemp_spawn(node, "AnyEvent::MP::Global::connect", json_pack("[is]", 0, aemp__g.nodeid));
    if (!p)
        return;
    json_object_set_new(S.port, node, json_string(p));
    char *copy = strdup(node);
    if (!copy)
        abort();
    /* the callback runs first on death; the guard frees the copy after it,
     * or alone when the monitor is discarded (shutdown) */
    aemp_mon(p, global_port_died, copy, NULL);
    aemp_mon_guard(p, free, copy, NULL);
    aemp_snd(p, json_pack("[sO]", "addr", aemp_listeners()));
    if (json_object_size(S.addr))
        aemp_snd(p, json_pack("[sO]", "nodes", S.addr));
    if (json_object_size(S.lreg))
        aemp_snd(p, json_pack("[sO]", "set", S.lreg));
    aemp_snd(p, json_pack("[s]", "setup"));
    if (aemp__seed_is_node(node))
        aemp_snd(p, json_pack("[s]", "seedme1"));   /* a seed keeps us informed */
    free(p);
}

static void on_updown(const char *node, int up, json_t *reason, void *arg)
{
    if (up && aemp__node_dialect(node) == AEMP_DIALECT_130)
        start_node(node);
    if (!up)
        json_object_del(S.seedme, node);
}

/* -------------------------------------- the Global port a peer spawned */

static void h_addr(json_t *args, void *arg)
{
    const char *peer = arg;
    json_t *addrs = json_array_get(args, 0);
    if (!json_is_array(addrs))
        return;
    json_object_set(S.addr, peer, addrs);
    if (json_array_size(addrs))
        aemp_add_node(peer, addrs);
    json_t *nodes = json_object();
    json_object_set(nodes, peer, addrs);
    const char *node;
    json_t *v;
    json_object_foreach(S.seedme, node, v)
        if (strcmp(node, peer))
            tell(node, json_pack("[sO]", "nodes", nodes));
    json_decref(nodes);
}

static void h_nodes(json_t *args, void *arg)
{
    json_t *nodes = json_array_get(args, 0);
    const char *node;
    json_t *addrs;
    json_object_foreach(nodes, node, addrs) {
        if (!strcmp(node, aemp__g.nodeid) || !json_is_array(addrs))
            continue;
        json_object_set(S.addr, node, addrs);
        if (json_array_size(addrs))
            aemp_add_node(node, addrs);
        start_node(node);   /* connects and bootstraps the mesh */
    }
}

static void h_set(json_t *args, void *arg)
{
    const char *peer = arg;
    json_t *groups = json_array_get(args, 0);
    const char *group;
    json_t *ports;
    json_object_foreach(groups, group, ports) {
        size_t i;
        json_t *p;
        json_array_foreach(ports, i, p)
            if (json_is_string(p))
                member_add(group, json_string_value(p), peer);
    }
}

static void h_find(json_t *args, void *arg)
{
    const char *peer = arg;
    const char *node = json_string_value(json_array_get(args, 0));
    json_t *addrs = node ? json_object_get(S.addr, node) : NULL;
    if (addrs)
        tell(peer, json_pack("[s{sO}]", "nodes", node, addrs));
}

static void h_reg1(json_t *args, void *arg)
{
    const char *group = json_string_value(json_array_get(args, 0));
    const char *port = json_string_value(json_array_get(args, 1));
    if (group && port)
        member_add(group, port, arg);
}

static void h_reg0(json_t *args, void *arg)
{
    const char *group = json_string_value(json_array_get(args, 0));
    const char *port = json_string_value(json_array_get(args, 1));
    if (group && port)
        member_del(group, port);
}

static void h_seedme1(json_t *args, void *arg)
{
    const char *peer = arg;
    json_object_set_new(S.seedme, peer, json_true());
    tell(peer, json_pack("[sO]", "nodes", S.addr));
}

static void h_seedme0(json_t *args, void *arg)
{
    json_object_del(S.seedme, (const char *)arg);
}

static void h_setup(json_t *args, void *arg)
{
}

static void free_peer(void *arg)
{
    free(arg);
}

/* Init function of "AnyEvent::MP::Global::connect" (version, peer). */
static void global_connect(json_t *args, void *unused)
{
    json_int_t version = json_integer_value(json_array_get(args, 0));
    const char *peer = json_string_value(json_array_get(args, 1));
    if (version != 0 || !peer) {
        aemp_die("AnyEvent::MP::Global version mismatch (we: 0, they: %lld)", (long long)version);
        return;
    }
    const char *self = aemp_self();
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
    json_t *l = json_object_get(S.lreg, group);
    if (!l) {
        l = json_array();
        json_object_set_new(S.lreg, group, l);
    }
    json_array_append_new(l, json_string(port));
    tell_all(json_pack("[sss]", "reg1", group, port));
}

void aemp__global1_unreg(const char *group, const char *port)
{
    json_t *l = json_object_get(S.lreg, group);
    size_t i;
    json_t *p;
    json_array_foreach(l, i, p) {
        if (!strcmp(json_string_value(p), port)) {
            json_array_remove(l, i);
            break;
        }
    }
    if (!json_array_size(l))
        json_object_del(S.lreg, group);
    tell_all(json_pack("[sss]", "reg0", group, port));
}

json_t *aemp__global1_members(const char *group)
{
    return json_object_get(S.greg, group);
}

/* ------------------------------------------------------------ lifecycle */

void aemp__global1_start(void)
{
    aemp__func_register_protocol("AnyEvent::MP::Global::connect", global_connect, NULL);
    aemp_mon_nodes(on_updown, NULL, &S.updown);
}

void aemp__global1_init(void)
{
    memset(&S, 0, sizeof S);
    S.addr = json_object();
    S.port = json_object();
    S.lreg = json_object();
    S.greg = json_object();
    S.seedme = json_object();
}

void aemp__global1_shutdown(void)
{
    json_decref(S.addr);
    json_decref(S.port);
    json_decref(S.lreg);
    json_decref(S.greg);
    json_decref(S.seedme);
    memset(&S, 0, sizeof S);
}
