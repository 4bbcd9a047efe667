/* sha3.h - SHA3-512 (FIPS 202) and HMAC-SHA3-512 (RFC 2104, block 72 bytes).
 *
 * Used by the 2.02 dialect's auth methods hmac_sha3_512 and tls_sha3_512.
 * Pure computation: no I/O, no allocation, no global state - so that a
 * node that does not use TLS never initialises OpenSSL (whose start, for
 * every process, cost more than the node's own).
 */
#ifndef AEMP_SHA3_H
#define AEMP_SHA3_H

#include <stddef.h>
#include <stdint.h>

#define AEMP_SHA3_512_BYTES 64   /* digest */
#define AEMP_SHA3_512_RATE 72    /* bytes absorbed per permutation; the HMAC block */

/* Streaming context; treat as opaque. */
typedef struct aemp_sha3_ctx {
    uint64_t a[25];     /* the Keccak state, lane (x, y) at a[x + 5y] */
    size_t fill;        /* bytes of the current block absorbed */
} aemp_sha3_ctx;

/* Start a SHA3-512 hash. */
void aemp__sha3_512_init(aemp_sha3_ctx *c);

/* Add len bytes of message.  O(len). */
void aemp__sha3_512_update(aemp_sha3_ctx *c, const void *data, size_t len);

/* Finish: write the 64-byte digest to out.  The context is spent. */
void aemp__sha3_512_final(aemp_sha3_ctx *c, uint8_t out[AEMP_SHA3_512_BYTES]);

/* SHA3-512 of data[0..len) into out. */
void aemp__sha3_512(const void *data, size_t len, uint8_t out[AEMP_SHA3_512_BYTES]);

/* HMAC-SHA3-512 of msg with key (any length; longer than the block it is
 * hashed first) into out. */
void aemp__hmac_sha3_512(const void *key, size_t keylen, const void *msg, size_t msglen,
                         uint8_t out[AEMP_SHA3_512_BYTES]);

#endif
