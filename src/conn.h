/* conn.h - TCP transports: listeners, outgoing connects, the handshake via
 * proto.c, TLS via tls.c (memory BIOs: the socket stays here), batched
 * writes (one write per connection per loop pass), handshake timeouts and
 * keepalives.  The only module that does socket I/O.
 */
#ifndef AEMP_CONN_H
#define AEMP_CONN_H

#include "internal.h"
#include "proto.h"
#include "tls.h"

struct aemp_conn {
    int fd;
    ev_io rio, wio;
    ev_timer timer;           /* handshake timeout, then keepalive */
    aemp_proto_t *proto;
    aemp_rnode_t *node;       /* set at greeting */
    char *peeraddr;           /* "ip:port" */
    char *seed;               /* seed address this connection serves, or NULL */
    int outgoing;
    int connected;            /* TCP connect finished */
    int up;                   /* authenticated and attached */
    int dirty;                /* output pending: on the flush list */
    int closed;
    /* TLS (spec §8.4), from AEMP_PROTO_START_TLS on: all socket I/O goes
     * through `tls`; `wire` holds ciphertext (and the rest of our greeting)
     * not yet written to the socket. */
    aemp_tls_t *tls;
    aemp_buf_t wire;
    int tls_up;               /* handshake done, proto told (tls_ready) */
    ev_tstamp last_write;
    aemp_conn_t *next_dirty;
};

/* Listen on "ip:port" (port 0 = ephemeral).  On success writes the bound
 * "ip:port" to bound.  Returns 0 or AEMP_EIO/AEMP_EINVAL with err set. */
int aemp__conn_listen(const char *addr, char *bound, size_t boundsize, char *err, size_t errlen);

/* Start an outgoing connection to "ip:port".  node: the node we expect (or
 * NULL); seed: the seed address it serves (or NULL).  NULL on immediate
 * failure (err set). */
aemp_conn_t *aemp__conn_connect(const char *addr, aemp_rnode_t *node, const char *seed,
                                char *err, size_t errlen);

/* Queue one frame on an authenticated connection (msg borrowed). */
void aemp__conn_send(aemp_conn_t *c, const char *dest, size_t destlen, const aemp_msg_t *msg);

/* Close with a reason; the node layer hears about it (conn_lost). */
void aemp__conn_close(aemp_conn_t *c, const char *reason);

/* Close every listener (a configure that failed half-way). */
void aemp__conn_listeners_close(void);

/* Close every connection and listener silently (shutdown). */
void aemp__conn_shutdown(void);

/* Start the flush watcher (node init). */
void aemp__conn_init(void);

/* A connection of node n still in its handshake, other than except. */
aemp_conn_t *aemp__conn_pending_for(aemp_rnode_t *n, aemp_conn_t *except);

/* A connection to seed address addr still in its handshake. */
aemp_conn_t *aemp__conn_pending_seed(const char *addr);

/* Number of open connections (tests, info). */
size_t aemp__conn_count(void);

#endif
