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

typedef struct aemp_conn_ext aemp_conn_ext_t;

struct aemp_conn {
    int fd;                   /* -1 once detached */
    const aemp_conn_ext_t *ext;   /* protocol extension it speaks, or NULL */
    int detached;             /* handed to the extension (aemp__conn_detach) */
    ev_io rio, wio;
    ev_timer timer;           /* handshake timeout, then keepalive */
    aemp_proto_t *proto;
    aemp_rnode_t *node;       /* outgoing: the node we expect; set to the
                                 authenticated peer at AUTHED (node.c) */
    char *peeraddr;           /* "ip:port" */
    char *seed;               /* seed address this connection serves, or NULL */
    int outgoing;
    int connected;            /* TCP connect finished */
    int up;                   /* authenticated and attached */
    int dirty;                /* output pending: on the flush list */
    int closed;
    int held;                 /* authenticated but on standby: input not processed */
    int overflow;             /* unsent output exceeded max_send_queue: closing */
    size_t all_index;         /* its place in conn.c's table of every connection */
    /* the lists a connection is on (conn.c): CONN_UNAUTH, incoming and not
     * yet authenticated, oldest first (shedding); CONN_PENDING, in its
     * handshake (not up, not closed), for the look-ups by node */
    struct aemp_conn_link {
        aemp_conn_t *prev, *next;
        int on;
    } lists[2];
    /* TLS (spec §8.4), from AEMP_PROTO_START_TLS on: all socket I/O goes
     * through `tls`; `wire` holds ciphertext (and the rest of our greeting)
     * not yet written to the socket. */
    aemp_tls_t *tls;
    aemp_buf_t wire;
    int tls_up;               /* handshake done, proto told (tls_ready) */
    ev_tstamp last_write;
    ev_tstamp since;          /* when it was opened */
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;   /* always-on counters */
    aemp_conn_t *next_dirty;
};

/* Listen on "ip:port" (port 0 = ephemeral).  On success writes the bound
 * "ip:port" to bound.  Returns 0 or AEMP_EIO/AEMP_EINVAL with err set. */
int aemp__conn_listen(const char *addr, char *bound, size_t boundsize, char *err, size_t errlen);

/* A non-blocking, close-on-exec TCP socket listening on "ip:port" with a
 * listen queue of `queue`; the bound "ip:port" goes to bound.  The fd, or
 * AEMP_EIO/AEMP_EINVAL with err set ("cannot listen on <addr>: <why>"). */
int aemp__listen_socket(const char *addr, int queue, char *bound, size_t boundsize, char *err, size_t errlen);

/* Start an outgoing connection to "ip:port".  node: the node we expect (or
 * NULL); seed: the seed address it serves (or NULL).  NULL on immediate
 * failure (err set). */
aemp_conn_t *aemp__conn_connect(const char *addr, aemp_rnode_t *node, const char *seed,
                                char *err, size_t errlen);

/* Queue one frame on an authenticated connection (msg borrowed). */
void aemp__conn_send(aemp_conn_t *c, const char *dest, size_t destlen, const aemp_msg_t *msg);

/* aemp__conn_send of the message of a flat format (msg.h), encoded
 * straight from the format and its arguments (ap left untouched) with no
 * message laid out (one is built only to trace the frame): 0 (also when c
 * is closing and drops it, as aemp__conn_send does), or -1 with nothing
 * queued if the format is not flat. */
int aemp__conn_send_fmt(aemp_conn_t *c, const char *dest, size_t destlen, const char *fmt, va_list ap);

/* Queue the frame [dest, msg...] already encoded in c's send framing
 * (aemp__conn_framing) as `bytes` (borrowed): the fan-out of one message
 * to many connections encodes it once per framing.  Counters, trace log
 * and max_send_queue as aemp__conn_send; when more than OUT_AT_ONCE
 * (conn.c) bytes wait, what the socket takes is written at once. */
void aemp__conn_send_encoded(aemp_conn_t *c, const char *dest, size_t destlen, const aemp_msg_t *msg,
                             const void *bytes, size_t len);

/* The framing c sends in (AEMP_FRAMING_NONE before authentication). */
aemp_framing_t aemp__conn_framing(const aemp_conn_t *c);

/* Close with a reason; the node layer hears about it (conn_lost). */
void aemp__conn_close(aemp_conn_t *c, const char *reason);

/* Close every listener (a configure that failed half-way). */
void aemp__conn_listeners_close(void);

/* Close every connection and listener silently (shutdown). */
void aemp__conn_shutdown(void);

/* Start the flush watcher (node init). */
void aemp__conn_init(void);

/* Our own connection attempt to node n still in its handshake, other than
 * except. */
aemp_conn_t *aemp__conn_pending_for(aemp_rnode_t *n, aemp_conn_t *except);

/* A connection to seed address addr still in its handshake. */
aemp_conn_t *aemp__conn_pending_seed(const char *addr);

/* Number of open connections (tests, info). */
size_t aemp__conn_count(void);

/* Call fn for every open connection (read-only: fn must not close any). */
void aemp__conn_each(void (*fn)(const aemp_conn_t *c, void *arg), void *arg);

/* Unsent bytes of c (its send queue). */
size_t aemp__conn_unsent(const aemp_conn_t *c);

/* Incoming connections that have not authenticated yet. */
size_t aemp__conn_unauth_count(void);

/* A connection still in its handshake (other than except) that is, or
 * claims in its greeting to be, node id: our own attempt to reach it or an
 * incoming connection whose (unauthenticated) greeting names it. */
aemp_conn_t *aemp__conn_rival(const char *id, aemp_conn_t *except);

/* 1 if some open connection expects or serves node n (c->node == n). */
int aemp__conn_refers(const aemp_rnode_t *n);

/* Stop processing input of an authenticated connection (standby), and
 * resume it later (from the job queue: buffered frames are delivered). */
void aemp__conn_hold(aemp_conn_t *c);
void aemp__conn_release(aemp_conn_t *c);

/* Protocol extensions (spec §8.7): an upper module registers a handler
 * for an extension name ("aemp-dataconn", dataconn.c).  An incoming
 * connection whose peer greets with that name switches to it; outgoing
 * ones are opened with aemp__conn_connect_ext.  Such a connection never
 * becomes a node's transport, and no frames are read from it: once
 * authenticated it is handed to the handler. */
struct aemp_conn_ext {
    const char *protocol;
    /* c authenticated: the handler takes it over with aemp__conn_detach,
     * or closes it (aemp__conn_close).  It must do one of the two. */
    void (*authed)(aemp_conn_t *c);
    /* c closed before authenticating (reason: why); may be NULL */
    void (*failed)(aemp_conn_t *c, const char *reason);
};

/* Register (at most 4) / unregister an extension handler (ext is kept). */
void aemp__conn_ext_register(const aemp_conn_ext_t *ext);
void aemp__conn_ext_unregister(const aemp_conn_ext_t *ext);

/* Like aemp__conn_connect, but greeting with ext's protocol name and the
 * extra greeting pair key=value (key may be NULL). */
aemp_conn_t *aemp__conn_connect_ext(const char *addr, const aemp_conn_ext_t *ext, const char *key,
                                    const char *value, char *err, size_t errlen);

/* What an authenticated extension connection hands over. */
typedef struct aemp_conn_detached {
    int fd;              /* the socket (non-blocking, close-on-exec); the receiver closes it */
    aemp_tls_t *tls;     /* the established TLS session, or NULL */
    aemp_buf_t in;       /* plaintext the peer sent after its auth line */
    aemp_buf_t out;      /* plaintext not yet sent (e.g. our auth line) */
    aemp_buf_t wire;     /* ciphertext not yet written to the socket */
} aemp_conn_detached_t;

/* From the ext's authed callback: move c's socket, TLS session and
 * buffers to *d and free c (without closing the socket).  O(buffered). */
void aemp__conn_detach(aemp_conn_t *c, aemp_conn_detached_t *d);

#endif
