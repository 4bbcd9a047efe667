/* stats.c - the node's counters and gauges as one message (aemp_stats).
 * The counters live in aemp__g.stats and are incremented where the event
 * happens; the gauges are read from the modules that own them. */
#include "conn.h"
#include "global.h"
#include "node.h"

#include "aemp_fiber.h"

#include <string.h>

static const char *const stat_names[AEMP_STAT_COUNT] = {
    [AEMP_STAT_ACCEPT_ERRORS] = "accept_errors",
    [AEMP_STAT_UNAUTH_SHED] = "unauthenticated_shed",
    [AEMP_STAT_HANDSHAKE_FAILURES] = "handshake_failures",
    [AEMP_STAT_SEND_QUEUE_OVERFLOWS] = "send_queue_overflows",
    [AEMP_STAT_DROPPED_CONNECT_QUEUE] = "dropped_connect_queue",
    [AEMP_STAT_DROPPED_CONNECT_TOTAL] = "dropped_connect_queue_total",
    [AEMP_STAT_DROPPED_CONNECTING_NODES] = "dropped_connecting_nodes",
    [AEMP_STAT_NODES_FORGOTTEN] = "nodes_forgotten",
    [AEMP_STAT_MSGS_IN] = "messages_in",
    [AEMP_STAT_MSGS_OUT] = "messages_out",
    [AEMP_STAT_BYTES_IN] = "bytes_in",
    [AEMP_STAT_BYTES_OUT] = "bytes_out",
    [AEMP_STAT_NODES_UP] = "nodes_up",
    [AEMP_STAT_NODES_DOWN] = "nodes_down",
};

/* One authenticated connection: "<node>": {...}. */
static void add_peer(const aemp_conn_t *c, void *arg)
{
    aemp_build_t *b = arg;
    if (!c->up || c->closed || !c->node || c->node->conn != c)
        return;
    aemp_build_strn(b, c->node->id, c->node->idlen);
    aemp_build_fmt(b, "{s:s, s:s, s:s, s:u, s:u, s:u, s:u, s:u, s:f}", "address", c->peeraddr, "direction",
                   c->outgoing ? "out" : "in", "dialect",
                   aemp__proto_peer_dialect(c->proto) == AEMP_DIALECT_130 ? "1.30" : "2.02", "messages_in",
                   c->msgs_in, "messages_out", c->msgs_out, "bytes_in", c->bytes_in, "bytes_out", c->bytes_out,
                   "send_queue_bytes", (uint64_t)aemp__conn_unsent(c), "seconds_up",
                   ev_now(aemp__g.loop) - c->since);
}

int aemp__stats_is_counter(const char *name)
{
    for (int i = 0; i < AEMP_STAT_COUNT; i++)
        if (!strcmp(stat_names[i], name))
            return 1;
    return 0;
}

aemp_msg_t *aemp_stats(void)
{
    aemp__ensure_init();
    size_t nodes, queued, qbytes;
    aemp__node_gauges(&nodes, &queued, &qbytes);
    aemp_build_t *b = aemp_build_new();
    aemp_build_map(b);
    aemp_build_str(b, "connections");
    aemp_build_uint(b, aemp__conn_count());
    aemp_build_str(b, "unauthenticated_connections");
    aemp_build_uint(b, aemp__conn_unauth_count());
    aemp_build_str(b, "nodes");
    aemp_build_uint(b, nodes);
    aemp_build_str(b, "connecting_nodes");
    aemp_build_uint(b, queued);
    aemp_build_str(b, "connect_queue_bytes");
    aemp_build_uint(b, qbytes);
    aemp_build_str(b, "ports");
    aemp_build_uint(b, aemp__g.ports.used);
    aemp_build_str(b, "monitors");
    aemp_build_uint(b, aemp__g.monitors.used);
    aemp_build_str(b, "fibers");
    aemp_build_uint(b, aemp_fiber_count());
    size_t subs, costly, share;
    aemp__global_gauges(&subs, &costly, &share);
    aemp_build_str(b, "db_subscriptions");
    aemp_build_uint(b, subs);
    aemp_build_str(b, "db_subscriptions_full");
    aemp_build_uint(b, costly);
    aemp_build_str(b, "db_fanout_share");
    aemp_build_uint(b, share);
    aemp_build_str(b, "log_level");
    aemp_build_uint(b, (uint64_t)aemp_log_level());
    for (int i = 0; i < AEMP_STAT_COUNT; i++) {
        aemp_build_str(b, stat_names[i]);
        aemp_build_uint(b, aemp__g.stats[i]);
    }
    aemp_build_str(b, "peers");
    aemp_build_map(b);
    aemp__conn_each(add_peer, b);
    aemp_build_close(b);
    aemp_build_close(b);
    return aemp_build_root(b);
}
