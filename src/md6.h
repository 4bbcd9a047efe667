/* md6.h - the MD6 hash function (Rivest et al., 2008) and HMAC-MD6.
 *
 * Used by the 1.30 dialect's auth methods hmac_md6_64_256 and tls_md6_64_256.
 * Pure computation: no I/O, no allocation, no global state.
 */
#ifndef AEMP_MD6_H
#define AEMP_MD6_H

#include <stddef.h>
#include <stdint.h>

#define AEMP_MD6_MAX_BYTES 64      /* largest digest: 512 bits */
#define AEMP_MD6_MAX_KEY   64      /* largest key: 64 bytes */
#define AEMP_MD6_MAX_LEVELS 29     /* enough for any message length */

/* Streaming context; treat as opaque. */
typedef struct aemp_md6_ctx {
    unsigned d, L, r;                      /* digest bits, mode, rounds */
    uint64_t K[8];                         /* key, zero padded */
    unsigned keylen;
    unsigned top;                          /* highest level in use */
    uint64_t B[AEMP_MD6_MAX_LEVELS + 1][64];   /* partial block per level */
    unsigned bits[AEMP_MD6_MAX_LEVELS + 1];    /* bits in B[level] */
    uint64_t index[AEMP_MD6_MAX_LEVELS + 1];   /* blocks done per level */
    uint64_t total_bits;
    int finalized;
    uint8_t root[128];                     /* final chaining value, big-endian */
    uint8_t hashval[AEMP_MD6_MAX_BYTES];   /* the trimmed digest */
} aemp_md6_ctx;

/* Start a hash of d bits (1..512) in mode L (0..64, 64 = the default tree
 * mode), with r rounds (0 = the default 40 + d/4, and at least 80 with a key),
 * keyed with keylen (0..64) bytes.  Returns 0, or -1 on a bad parameter. */
int aemp__md6_init(aemp_md6_ctx *c, unsigned d, unsigned L, unsigned r,
                   const uint8_t *key, size_t keylen);

/* Add len bytes of message.  O(len). */
void aemp__md6_update(aemp_md6_ctx *c, const uint8_t *data, size_t len);

/* Finish; writes (d+7)/8 bytes to out (the last d bits of the final chaining
 * value, as the reference implementation outputs them). */
void aemp__md6_final(aemp_md6_ctx *c, uint8_t *out);

/* One-shot MD6 with the parameters of aemp__md6_init.  Returns 0 or -1. */
int aemp__md6(unsigned d, unsigned L, unsigned r, const uint8_t *key, size_t keylen,
              const uint8_t *msg, size_t len, uint8_t *out);

/* RFC 2104 HMAC over MD6-<bits> (default mode and rounds, no MD6 key),
 * block size block_bytes; a key longer than the block is first replaced by
 * MD6-<bits>(key).  Writes bits/8 bytes to out.  Argument order is
 * (key, message) here; callers reproducing Digest::HMAC_MD6's
 * hmac_md6_hex(DATA, KEY) must map accordingly. */
void aemp__hmac_md6(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len,
                    size_t block_bytes, unsigned bits, uint8_t *out);

#endif
