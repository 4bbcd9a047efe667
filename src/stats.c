/* stats.c - the node's counters and gauges as one message (aemp_stats).
 * The counters live in aemp__g.stats and are incremented where the event
 * happens; the gauges are read from the modules that own them. */
#include "conn.h"
#include "node.h"

static const char *const stat_names[AEMP_STAT_COUNT] = {
    [AEMP_STAT_ACCEPT_ERRORS] = "accept_errors",
    [AEMP_STAT_UNAUTH_SHED] = "unauthenticated_shed",
    [AEMP_STAT_HANDSHAKE_FAILURES] = "handshake_failures",
    [AEMP_STAT_SEND_QUEUE_OVERFLOWS] = "send_queue_overflows",
    [AEMP_STAT_DROPPED_CONNECT_QUEUE] = "dropped_connect_queue",
    [AEMP_STAT_DROPPED_CONNECT_TOTAL] = "dropped_connect_queue_total",
    [AEMP_STAT_DROPPED_CONNECTING_NODES] = "dropped_connecting_nodes",
    [AEMP_STAT_NODES_FORGOTTEN] = "nodes_forgotten",
};

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
    for (int i = 0; i < AEMP_STAT_COUNT; i++) {
        aemp_build_str(b, stat_names[i]);
        aemp_build_uint(b, aemp__g.stats[i]);
    }
    aemp_build_close(b);
    return aemp_build_root(b);
}
