/* auth.h - the handshake authentication methods of both dialects.
 *
 * Pure computation over the four greeting lines and the shared secret; no I/O.
 * Tokens are lowercase hex, NUL-terminated.
 */
#ifndef AEMP_AUTH_H
#define AEMP_AUTH_H

#include <stddef.h>
#include <stdint.h>

typedef enum aemp_auth_method {
    AEMP_AUTH_NONE = 0,          /* unknown / not chosen */
    AEMP_AUTH_HMAC_SHA3_512,     /* 2.02: HMAC-SHA3-512(key=secret, msg=lines) */
    AEMP_AUTH_TLS_SHA3_512,      /* 2.02: SHA3-512(lines), TLS only */
    AEMP_AUTH_HMAC_MD6_64_256,   /* 1.30: HMAC-MD6(key=lines, msg=MD6-256(secret)) */
    AEMP_AUTH_TLS_MD6_64_256,    /* 1.30: MD6-256(lines), TLS only */
    AEMP_AUTH_TLS_ANON,          /* empty token, TLS only */
    AEMP_AUTH_CLEARTEXT,         /* hex(secret); accepted, never sent */
} aemp_auth_method_t;

#define AEMP_AUTH_TOKEN_MAX 1024  /* buffer size that fits every token (cleartext: 2*secret) */

/* The wire name of a method ("hmac_sha3_512", ...); NULL for NONE. */
const char *aemp__auth_name(aemp_auth_method_t m);

/* Parse a wire name of len bytes; AEMP_AUTH_NONE if unknown. */
aemp_auth_method_t aemp__auth_parse(const char *name, size_t len);

/* True for the methods that are only valid inside TLS. */
int aemp__auth_needs_tls(aemp_auth_method_t m);

/* True for the methods that need a shared secret. */
int aemp__auth_needs_secret(aemp_auth_method_t m);

/* Compute the token that a node sends whose own greeting lines are
 * (own1, own2) and whose peer's lines are (peer1, peer2) - all without line
 * terminators; the hashed text is own1 LF own2 LF peer1 LF peer2 LF.
 * To verify a peer's token, call it with the peer's lines as "own".
 * Writes lowercase hex to out (outsize >= AEMP_AUTH_TOKEN_MAX is always
 * enough).  Returns the token length, or -1 (unknown method, secret too long
 * for the buffer, crypto failure). */
int aemp__auth_token(aemp_auth_method_t m, const uint8_t *secret, size_t secretlen,
                     const char *own1, const char *own2,
                     const char *peer1, const char *peer2,
                     char *out, size_t outsize);

/* Check a token received from the peer: recomputes it with the peer's lines
 * first and compares in constant time.  Returns 1 on match, 0 otherwise. */
int aemp__auth_verify(aemp_auth_method_t m, const uint8_t *secret, size_t secretlen,
                      const char *peer1, const char *peer2,
                      const char *own1, const char *own2,
                      const char *token, size_t tokenlen);

#endif
