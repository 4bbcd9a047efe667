/* aemp_dataconn.h - AnyEvent::MP::DataConn: authenticated raw byte streams
 * between two nodes, and the stream object that carries them.
 *
 * A data connection uses the node's own listeners and security: the same
 * greeting and authentication as a node connection (shared secret, TLS when
 * both nodes have a certificate), but with the protocol name
 * "aemp-dataconn", and no framing afterwards: the bytes are the
 * application's.  One of the two nodes must listen.  It works between
 * libaemp nodes of either dialect and with Perl AnyEvent::MP 1.30 nodes;
 * docs/dataconn.md has the protocol and the 2.02 situation.
 *
 * Streams fit libev: everything runs from the node's loop, reading is
 * callback driven, writing queues and tells when to stop (a high-water
 * mark) and when to go on (on_drain).  One thread, like the rest of aemp.h.
 */
#ifndef AEMP_DATACONN_H
#define AEMP_DATACONN_H

#include "aemp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- streams */

typedef struct aemp_stream aemp_stream_t;

/* Default high-water mark of a stream's write queue (bytes). */
#define AEMP_STREAM_HIGH_WATER ((size_t)1 << 20)

/* Stream callbacks; every one may be NULL, and every one may call
 * aemp_stream_close(s) (the stream is freed once the callback returns). */
typedef struct aemp_stream_cbs {
    /* Bytes from the peer (borrowed: valid during the call), in order. */
    void (*on_read)(aemp_stream_t *s, const void *data, size_t len, void *arg);
    /* After aemp_stream_write returned 0: the queue has fallen to half the
     * high-water mark; write more. */
    void (*on_drain)(aemp_stream_t *s, void *arg);
    /* The peer ended its direction (TCP FIN, or TLS close_notify); we may
     * still write.  Called once; reading stops. */
    void (*on_eof)(aemp_stream_t *s, void *arg);
    /* The stream failed ("Connection reset by peer", a TLS error,
     * "Unexpected end-of-file" under TLS without close_notify, ...): the
     * socket is closed, unsent data is lost.  Called once; the object stays
     * until aemp_stream_close. */
    void (*on_error)(aemp_stream_t *s, const char *error, void *arg);
} aemp_stream_cbs_t;

/* Install callbacks (copied) and start reading.  A new stream is
 * quiescent: it reads nothing until this is called; bytes the peer sent
 * early are kept and delivered from the loop after this call (never inside
 * it).  May be called again to replace the callbacks. */
void aemp_stream_set_cbs(aemp_stream_t *s, const aemp_stream_cbs_t *cbs, void *arg);

/* Queue len bytes (copied) for the peer; they are written from the loop.
 * Returns 1 while the queue is below the high-water mark, 0 once it is at or
 * above it (keep the data coming only after on_drain), AEMP_EIO if the
 * stream failed, AEMP_EINVAL after aemp_stream_shutdown.  Never blocks;
 * the queue itself is not bounded: the caller respects the mark. */
int aemp_stream_write(aemp_stream_t *s, const void *data, size_t len);

/* Bytes queued and not yet written to the socket (plaintext and, with
 * TLS, ciphertext). */
size_t aemp_stream_queued(const aemp_stream_t *s);

/* Set the high-water mark (bytes, at least 1; default
 * AEMP_STREAM_HIGH_WATER). */
void aemp_stream_set_high_water(aemp_stream_t *s, size_t bytes);

/* Stop (paused != 0) or resume reading: the peer is held back by TCP flow
 * control meanwhile. */
void aemp_stream_pause(aemp_stream_t *s, int paused);

/* End our direction once the queue is written (TLS: close_notify, then a
 * TCP half-close); the peer sees on_eof.  Reading goes on.  Errors:
 * AEMP_EIO if the stream failed. */
int aemp_stream_shutdown(aemp_stream_t *s);

/* Close the socket now (unsent data is dropped) and free the stream.  No
 * callback runs after it.  NULL is fine. */
void aemp_stream_close(aemp_stream_t *s);

/* The socket (for inspection, socket options, poll integration); -1 once
 * failed.  With TLS, reading or writing it directly breaks the session. */
int aemp_stream_fd(const aemp_stream_t *s);

/* 1 if the stream runs inside TLS, else 0. */
int aemp_stream_tls(const aemp_stream_t *s);

/* The node at the other end (our own ID for a local pair). */
const char *aemp_stream_peer(const aemp_stream_t *s);

/* Take the bare socket out of a plain (non-TLS) stream and free the
 * stream: returns the fd (non-blocking, close-on-exec, the caller owns
 * it) and in *buffered / *buflen the bytes already read from it and not
 * yet delivered (malloc'd, the caller frees; NULL/0 if none).  Errors:
 * AEMP_EINVAL with TLS (the session needs this library), AEMP_EAGAIN
 * while written data is still queued (try again after on_drain or when
 * aemp_stream_queued is 0), AEMP_EIO if the stream failed; the stream is
 * unchanged then. */
int aemp_stream_take_fd(aemp_stream_t *s, void **buffered, size_t *buflen);

/* --------------------------------------------------------------- DataConn */

/* The caller's result: exactly one call per successful
 * aemp_dataconn_connect.  On success s is the local end (owned by the
 * callee: close it with aemp_stream_close) and error is NULL; on failure s
 * is NULL, error says why, and the calling port is killed with
 * ("AnyEvent::MP::DataConn", error) right after the callback returns
 * (unless the port is what died). */
typedef void (*aemp_dataconn_fn)(aemp_stream_t *s, const char *error, void *arg);

/* AnyEvent::MP::DataConn::connect_to: open a data connection to target (a
 * node ID or any port ID on it), in the context of port (a local port ID;
 * NULL = SELF).  When it is up, the named function initfunc runs on the
 * target node with the elements of initdata (STOLEN, may be NULL) plus one
 * last element, a handle that aemp_dataconn_stream() turns into the
 * remote end of the stream; then cb runs here with the local end.  On
 * failure or when timeout seconds pass first, nothing runs remotely, cb
 * gets the error, and port is killed with ("AnyEvent::MP::DataConn",
 * error).  timeout should cover four network round trips and a message
 * round trip.  If port dies first (the target's own timeout kills it
 * too), cb gets "calling port died: <reason as JSON>" (no kill).
 *
 * A local target (our own node) gets a socketpair at once: initfunc, then
 * cb, both inside this call (as in Perl).  Otherwise the target is asked
 * to expect the connection, then we connect to its listeners one by one
 * (every 2 s) or, if it has none we know of, ask it to connect to us.
 *
 * Returns 0, or AEMP_EINVAL (NULL/empty arguments, timeout <= 0, a
 * function name without "::"), AEMP_ENOSELF (port NULL outside port
 * context), AEMP_ENOTLOCAL (port is not ours), AEMP_EPORTID (malformed
 * target), AEMP_ELIMIT (dataconn_max_pending data connections are already
 * pending); cb is not called then. */
int aemp_dataconn_connect(const char *port, const char *target, double timeout, const char *initfunc,
                          aemp_msg_t *initdata, aemp_dataconn_fn cb, void *arg);

/* Inside an initfunc called for a data connection: the stream whose handle
 * is the last element of args (borrowed), now owned by the caller.  NULL if
 * args does not end in such a handle or it was already taken.  A stream an
 * initfunc does not take is closed when it returns. */
aemp_stream_t *aemp_dataconn_stream(const aemp_msg_t *args);

#ifdef __cplusplus
}
#endif

#endif
