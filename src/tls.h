/* tls.h - OpenSSL glue for the AEMP transport (spec §8.4).
 *
 * TLS runs over memory BIOs: this module never touches a socket.  conn.c
 * keeps owning the socket and its batching; it hands the ciphertext it reads
 * to aemp__tls_feed(), gets plaintext out of aemp__tls_input() (appended to
 * the protocol's in buffer), and turns the protocol's plaintext out buffer
 * into ciphertext for the socket with aemp__tls_output().
 *
 * Trust model (as in Perl's AnyEvent::MP): the node's `cert` PEM holds its
 * private key, its certificate and optional CA certificates; every
 * certificate in it is also a trust anchor.  Both ends verify the peer's
 * certificate and a client certificate is required; there is no host-name
 * check.  TLS 1.2 or newer.
 */
#ifndef AEMP_TLS_H
#define AEMP_TLS_H

#include <stddef.h>

#include "buf.h"

/* The node's TLS context (an SSL_CTX built from its `cert`). */
typedef struct aemp_tls_ctx aemp_tls_ctx_t;

/* One TLS session (one connection). */
typedef struct aemp_tls aemp_tls_t;

/* Results of aemp__tls_input / aemp__tls_output. */
#define AEMP_TLS_OK 0      /* progress made or more input needed */
#define AEMP_TLS_EOF (-1)  /* the peer closed the TLS session (close_notify) */
#define AEMP_TLS_ERR (-2)  /* fatal; aemp__tls_error() says why */

/* Build a context from PEM text of `len` bytes: the private key (unencrypted),
 * the certificate that matches it, and optional further certificates, in any
 * order (aemp gencert writes certificate then key).  All certificates become
 * trust anchors, the non-matching ones are also sent as chain.  Returns the
 * context, or NULL with a message in err ("cert: no private key found", ...).
 * The caller frees it with aemp__tls_ctx_free.  Cost: parsing the PEM. */
aemp_tls_ctx_t *aemp__tls_ctx_new(const char *pem, size_t len, char *err, size_t errlen);

/* Free a context (NULL is fine).  Sessions made from it keep their own
 * reference to the underlying SSL_CTX, so order does not matter. */
void aemp__tls_ctx_free(aemp_tls_ctx_t *ctx);

/* Start a session in the given role (client != 0: we send the ClientHello).
 * Aborts when out of memory (the buffer policy of buf.h). */
aemp_tls_t *aemp__tls_new(aemp_tls_ctx_t *ctx, int client);

/* Free a session (NULL is fine).  Sends nothing. */
void aemp__tls_free(aemp_tls_t *t);

/* Append n bytes of ciphertext received from the peer.  O(n). */
void aemp__tls_feed(aemp_tls_t *t, const void *data, size_t n);

/* Advance the handshake as far as the fed input allows, then decrypt every
 * complete record into `plain` (appended).  Returns AEMP_TLS_OK,
 * AEMP_TLS_EOF or AEMP_TLS_ERR (sticky).  After it, the session may have
 * ciphertext to send (aemp__tls_want_write). */
int aemp__tls_input(aemp_tls_t *t, aemp_buf_t *plain);

/* Encrypt up to `max` bytes from the head of `plain` (consumed) once the
 * handshake is done, then move every pending ciphertext byte (handshake
 * messages, alerts, records) to `wire`.  After an error only the pending
 * bytes (e.g. the alert telling the peer why) are moved.  Returns
 * AEMP_TLS_ERR only if encrypting failed in this call, else AEMP_TLS_OK. */
int aemp__tls_output(aemp_tls_t *t, aemp_buf_t *plain, size_t max, aemp_buf_t *wire);

/* Queue a close_notify alert (our side of the session ends; move it out
 * with aemp__tls_output).  Once established only; later calls do nothing. */
void aemp__tls_close_notify(aemp_tls_t *t);

/* Ciphertext is waiting to be moved out by aemp__tls_output. */
int aemp__tls_want_write(const aemp_tls_t *t);

/* The handshake has completed. */
int aemp__tls_established(const aemp_tls_t *t);

/* Why the session failed ("certificate verify failed: self-signed
 * certificate", ...); "" before any error. */
const char *aemp__tls_error(const aemp_tls_t *t);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once established (for log lines). */
const char *aemp__tls_describe(const aemp_tls_t *t, char *buf, size_t size);

#endif
