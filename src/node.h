/* node.h - the node table: one aemp_rnode_t per remote node we know.
 *
 * A remote node is idle, connecting (messages queue in the node object) or
 * up (messages are encoded straight into its connection's output buffer).
 * When a connection fails, the queue is dropped and every monitor this node
 * holds on ports of that node fires with ("transport_error", <node>, <text>)
 * before anything else can be sent - the "no holes" guarantee.
 *
 * Nothing is created for a peer before it has authenticated: an incoming
 * connection gets its node object, and the simultaneous-connect rule runs,
 * at AUTHED.  Node objects that nothing refers to any more (no connection,
 * queue, monitor or known address) are freed after their failure.
 */
#ifndef AEMP_NODE_H
#define AEMP_NODE_H

#include "frame.h"
#include "internal.h"

typedef struct queued_msg {
    struct queued_msg *next;
    char *dest;               /* port name on the remote node */
    size_t destlen;
    aemp_msg_t *msg;
} queued_msg_t;

struct aemp_rnode {
    char *id;
    size_t idlen;
    aemp_conn_t *conn;        /* established transport, or NULL */
    unsigned dialect;         /* of the established transport */
    queued_msg_t *qhead, *qtail;
    size_t qlen;
    aemp_msg_t *addrs;        /* known listener addresses ["ip:port", ...] or NULL */
    int connecting;           /* a connect cycle runs */
    char *last_error;         /* why the last handshake with it failed */
    size_t next_addr;         /* next address to try */
    ev_timer connect_timer;   /* next attempt */
    ev_timer deadline;        /* overall connect deadline */
    aemp_table_t lmon;        /* port name -> aemp_monlist_t* (our monitors of its ports) */
    aemp_table_t rmon;        /* port name -> aemp_lport_t* (its monitors of our ports) */
    aemp_monlist_t nodemon;   /* monitors of the node itself */
    size_t qbytes;            /* bytes in the queue (messages, names, records) */
    aemp_conn_t *standby;     /* authenticated, waiting for a rival the
                                 simultaneous-connect rule prefers */
    ev_timer standby_timer;   /* how long it waits (STANDBY_WAIT) */
    int failures;             /* failure jobs not yet run */
    int ever_up;              /* it authenticated once: kept in the table */
};

/* Find or create the node object for id (len bytes). */
aemp_rnode_t *aemp__node_get(const char *id, size_t len);

/* Find an existing node object. */
aemp_rnode_t *aemp__node_find(const char *id, size_t len);

/* Send [dest, msg...] to a node: now if up, else queued (msg stolen). */
void aemp__node_send(aemp_rnode_t *n, const char *dest, size_t destlen, aemp_msg_t *msg);

/* Send a node-port request ["", tag, args...] (args: a message whose
 * elements follow the tag, stolen, may be NULL). */
void aemp__node_request(aemp_rnode_t *n, const char *tag, aemp_msg_t *args);

/* Addresses for n arrived (g_found): connect now if a connect waits. */
void aemp__node_addrs_learned(aemp_rnode_t *n);

/* Replace the known addresses of a node (an authoritative answer). */
void aemp__node_set_addrs(aemp_rnode_t *n, const aemp_val_t *addrs);

/* Remember addresses for a node (an array value of "ip:port", borrowed). */
void aemp__node_add_addrs(aemp_rnode_t *n, const aemp_val_t *addrs);

/* Connection events (from conn.c). */
int aemp__node_greeted(aemp_conn_t *c, const char *peer);   /* 0 or -1 (c failed) */
void aemp__node_connected(aemp_conn_t *c);
void aemp__node_frame(aemp_conn_t *c, aemp_frame_t *frame);
void aemp__node_conn_lost(aemp_conn_t *c, const char *reason);

/* Kernel helpers: register/unregister a remote monitor of a local port. */
void aemp__node_rmon_add(aemp_rnode_t *n, aemp_lport_t *p);
void aemp__node_rmon_del(aemp_rnode_t *n, const char *name, size_t len);
/* kil0 from node n for its port name: fire our monitors (reason borrowed). */
void aemp__node_kil0(aemp_rnode_t *n, const char *name, size_t len, aemp_msg_t *reason);

/* Kernel: handle a node-port request from srcnode (msg = [tag, args...]). */
void aemp__kernel_request(aemp_rnode_t *src, aemp_msg_t *msg);

/* Call every node up/down callback. */
void aemp__node_updown(aemp_rnode_t *n, int up, aemp_msg_t *reason);

/* Node-table figures for aemp_stats: entries, nodes holding a queue, and
 * the bytes queued for them. */
void aemp__node_gauges(size_t *nodes, size_t *queued_nodes, size_t *queued_bytes);

/* AnyEvent::MP::LogCatcher (logcatcher.c): register its functions; free
 * its state. */
void aemp__logcatcher_init(void);
void aemp__logcatcher_shutdown(void);

/* AnyEvent::MP::DataConn (dataconn.c): register its functions and its
 * protocol extension; free its states and every stream. */
void aemp__dataconn_init(void);
void aemp__dataconn_shutdown(void);

/* Seeds (seed.c). */
void aemp__seeds_start(const json_t *addrs);
void aemp__seeds_stop(void);
void aemp__seed_greeted(const char *addr, const char *peer);
/* A connection to seed addr failed before authenticating: logged at the
 * default level when the reason differs from the one logged last. */
void aemp__seed_failed(const char *addr, const char *reason);

#endif
