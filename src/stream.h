/* stream.h - the raw byte stream of a data connection (aemp_dataconn.h):
 * a socket, optionally inside an established TLS session, with a read
 * callback, a write queue with a high-water mark, half-close and errors.
 * Like conn.c it does socket I/O (and only for its own sockets); TLS goes
 * through tls.c's memory BIOs. */
#ifndef AEMP_STREAM_H
#define AEMP_STREAM_H

#include "aemp_dataconn.h"
#include "buf.h"
#include "tls.h"

/* A stream on fd (owned from now on), tls (an established session or NULL,
 * owned), with in (plaintext already received), out (plaintext to send)
 * and wire (ciphertext to send) moved in (each may be NULL; the buffers
 * are left empty).  What is queued starts going out at once; reading
 * starts with aemp_stream_set_cbs.  peer: the node at the other end. */
aemp_stream_t *aemp__stream_new(int fd, aemp_tls_t *tls, aemp_buf_t *in, aemp_buf_t *out, aemp_buf_t *wire,
                                const char *peer);

/* Close every stream (node shutdown); no callbacks. */
void aemp__streams_shutdown(void);

#endif
