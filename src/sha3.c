/* sha3.c - SHA3-512 and HMAC-SHA3-512 (see sha3.h): the Keccak-f[1600]
 * permutation with 24 rounds, the SHA-3 padding (0x06 ... 0x80) and lanes
 * in little-endian byte order. */
#include "sha3.h"

#include <string.h>

static const uint64_t round_constants[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
    0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* rotation of lane (x, y), at x + 5y */
static const unsigned rotations[25] = {
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
};

static inline uint64_t rotl(uint64_t v, unsigned n)
{
    return n ? (v << n) | (v >> (64 - n)) : v;
}

static void keccak_f1600(uint64_t a[25])
{
    for (int round = 0; round < 24; round++) {
        uint64_t c[5], b[25];
        for (int x = 0; x < 5; x++)   /* theta */
            c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
        for (int x = 0; x < 5; x++) {
            uint64_t d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
            for (int y = 0; y < 25; y += 5)
                a[x + y] ^= d;
        }
        for (int x = 0; x < 5; x++)   /* rho and pi: (x, y) -> (y, 2x + 3y) */
            for (int y = 0; y < 5; y++)
                b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], rotations[x + 5 * y]);
        for (int y = 0; y < 25; y += 5)   /* chi */
            for (int x = 0; x < 5; x++)
                a[x + y] = b[x + y] ^ (~b[(x + 1) % 5 + y] & b[(x + 2) % 5 + y]);
        a[0] ^= round_constants[round];   /* iota */
    }
}

/* XOR byte v into the state at byte position i of the block. */
static inline void absorb_byte(aemp_sha3_ctx *c, size_t i, uint8_t v)
{
    c->a[i / 8] ^= (uint64_t)v << (8 * (i % 8));
}

void aemp__sha3_512_init(aemp_sha3_ctx *c)
{
    memset(c, 0, sizeof *c);
}

void aemp__sha3_512_update(aemp_sha3_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        absorb_byte(c, c->fill++, p[i]);
        if (c->fill == AEMP_SHA3_512_RATE) {
            keccak_f1600(c->a);
            c->fill = 0;
        }
    }
}

void aemp__sha3_512_final(aemp_sha3_ctx *c, uint8_t out[AEMP_SHA3_512_BYTES])
{
    absorb_byte(c, c->fill, 0x06);
    absorb_byte(c, AEMP_SHA3_512_RATE - 1, 0x80);
    keccak_f1600(c->a);
    for (size_t i = 0; i < AEMP_SHA3_512_BYTES; i++)
        out[i] = (uint8_t)(c->a[i / 8] >> (8 * (i % 8)));
    explicit_bzero(c, sizeof *c);
}

void aemp__sha3_512(const void *data, size_t len, uint8_t out[AEMP_SHA3_512_BYTES])
{
    aemp_sha3_ctx c;
    aemp__sha3_512_init(&c);
    aemp__sha3_512_update(&c, data, len);
    aemp__sha3_512_final(&c, out);
}

void aemp__hmac_sha3_512(const void *key, size_t keylen, const void *msg, size_t msglen,
                         uint8_t out[AEMP_SHA3_512_BYTES])
{
    uint8_t k[AEMP_SHA3_512_RATE] = { 0 }, pad[AEMP_SHA3_512_RATE], inner[AEMP_SHA3_512_BYTES];
    if (keylen > sizeof k)
        aemp__sha3_512(key, keylen, k);
    else if (keylen)
        memcpy(k, key, keylen);
    aemp_sha3_ctx c;
    for (size_t i = 0; i < sizeof k; i++)
        pad[i] = k[i] ^ 0x36;
    aemp__sha3_512_init(&c);
    aemp__sha3_512_update(&c, pad, sizeof pad);
    aemp__sha3_512_update(&c, msg, msglen);
    aemp__sha3_512_final(&c, inner);
    for (size_t i = 0; i < sizeof k; i++)
        pad[i] = k[i] ^ 0x5c;
    aemp__sha3_512_init(&c);
    aemp__sha3_512_update(&c, pad, sizeof pad);
    aemp__sha3_512_update(&c, inner, sizeof inner);
    aemp__sha3_512_final(&c, out);
    explicit_bzero(k, sizeof k);
    explicit_bzero(pad, sizeof pad);
    explicit_bzero(inner, sizeof inner);
}
