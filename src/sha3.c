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

/* rho and pi as one walk: lane pi_lane[i] takes the previous lane of the
 * walk rotated by rho_rot[i] (starting from lane 1) */
static const unsigned char pi_lane[24] = {
    10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1,
};
static const unsigned char rho_rot[24] = {
    1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44,
};

static inline uint64_t rotl(uint64_t v, unsigned n)
{
    return (v << n) | (v >> (64 - n));   /* n is 1..63 */
}

static void keccak_f1600(uint64_t a[25])
{
    for (int round = 0; round < 24; round++) {
        /* theta */
        uint64_t c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20], c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21],
                 c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22], c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23],
                 c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
        uint64_t d0 = c4 ^ rotl(c1, 1), d1 = c0 ^ rotl(c2, 1), d2 = c1 ^ rotl(c3, 1), d3 = c2 ^ rotl(c4, 1),
                 d4 = c3 ^ rotl(c0, 1);
        for (int y = 0; y < 25; y += 5) {
            a[y] ^= d0;
            a[y + 1] ^= d1;
            a[y + 2] ^= d2;
            a[y + 3] ^= d3;
            a[y + 4] ^= d4;
        }
        /* rho and pi */
        uint64_t t = a[1];
        for (int i = 0; i < 24; i++) {
            uint64_t next = a[pi_lane[i]];
            a[pi_lane[i]] = rotl(t, rho_rot[i]);
            t = next;
        }
        /* chi */
        for (int y = 0; y < 25; y += 5) {
            uint64_t b0 = a[y], b1 = a[y + 1], b2 = a[y + 2], b3 = a[y + 3], b4 = a[y + 4];
            a[y] = b0 ^ (~b1 & b2);
            a[y + 1] = b1 ^ (~b2 & b3);
            a[y + 2] = b2 ^ (~b3 & b4);
            a[y + 3] = b3 ^ (~b4 & b0);
            a[y + 4] = b4 ^ (~b0 & b1);
        }
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
    while (len) {
        if (c->fill % 8 == 0 && len >= 8) {   /* a whole lane, little-endian */
            uint64_t w = 0;
            for (int b = 0; b < 8; b++)
                w |= (uint64_t)p[b] << (8 * b);
            c->a[c->fill / 8] ^= w;
            c->fill += 8;
            p += 8;
            len -= 8;
        } else {
            absorb_byte(c, c->fill++, *p++);
            len--;
        }
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
