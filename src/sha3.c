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

static inline uint64_t rotl(uint64_t v, unsigned n)
{
    return (v << n) | (v >> (64 - n));   /* n is 1..63 */
}

/* The permutation, 24 rounds.  The state lives in 25 locals (lane x + 5y
 * is a<x+5y>) so that it stays in registers: theta, then rho and pi
 * together (lane (x, y) moves to (y, 2x + 3y) rotated by its offset; b<i>
 * is the lane that lands at index i), then chi row by row and iota.  (A
 * loop over a table of lanes kept the state in memory: 2.3 times slower.) */
static void keccak_f1600(uint64_t a[25])
{
    uint64_t a00 = a[0], a01 = a[1], a02 = a[2], a03 = a[3], a04 = a[4];
    uint64_t a05 = a[5], a06 = a[6], a07 = a[7], a08 = a[8], a09 = a[9];
    uint64_t a10 = a[10], a11 = a[11], a12 = a[12], a13 = a[13], a14 = a[14];
    uint64_t a15 = a[15], a16 = a[16], a17 = a[17], a18 = a[18], a19 = a[19];
    uint64_t a20 = a[20], a21 = a[21], a22 = a[22], a23 = a[23], a24 = a[24];
    for (int round = 0; round < 24; round++) {
        uint64_t c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20, c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21;
        uint64_t c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22, c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23;
        uint64_t c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24;
        uint64_t d0 = c4 ^ rotl(c1, 1), d1 = c0 ^ rotl(c2, 1), d2 = c1 ^ rotl(c3, 1);
        uint64_t d3 = c2 ^ rotl(c4, 1), d4 = c3 ^ rotl(c0, 1);
        uint64_t b00 = a00 ^ d0;
        uint64_t b01 = rotl(a06 ^ d1, 44);
        uint64_t b02 = rotl(a12 ^ d2, 43);
        uint64_t b03 = rotl(a18 ^ d3, 21);
        uint64_t b04 = rotl(a24 ^ d4, 14);
        uint64_t b05 = rotl(a03 ^ d3, 28);
        uint64_t b06 = rotl(a09 ^ d4, 20);
        uint64_t b07 = rotl(a10 ^ d0, 3);
        uint64_t b08 = rotl(a16 ^ d1, 45);
        uint64_t b09 = rotl(a22 ^ d2, 61);
        uint64_t b10 = rotl(a01 ^ d1, 1);
        uint64_t b11 = rotl(a07 ^ d2, 6);
        uint64_t b12 = rotl(a13 ^ d3, 25);
        uint64_t b13 = rotl(a19 ^ d4, 8);
        uint64_t b14 = rotl(a20 ^ d0, 18);
        uint64_t b15 = rotl(a04 ^ d4, 27);
        uint64_t b16 = rotl(a05 ^ d0, 36);
        uint64_t b17 = rotl(a11 ^ d1, 10);
        uint64_t b18 = rotl(a17 ^ d2, 15);
        uint64_t b19 = rotl(a23 ^ d3, 56);
        uint64_t b20 = rotl(a02 ^ d2, 62);
        uint64_t b21 = rotl(a08 ^ d3, 55);
        uint64_t b22 = rotl(a14 ^ d4, 39);
        uint64_t b23 = rotl(a15 ^ d0, 41);
        uint64_t b24 = rotl(a21 ^ d1, 2);
        a00 = b00 ^ (~b01 & b02) ^ round_constants[round];
        a01 = b01 ^ (~b02 & b03); a02 = b02 ^ (~b03 & b04);
        a03 = b03 ^ (~b04 & b00); a04 = b04 ^ (~b00 & b01);
        a05 = b05 ^ (~b06 & b07); a06 = b06 ^ (~b07 & b08); a07 = b07 ^ (~b08 & b09);
        a08 = b08 ^ (~b09 & b05); a09 = b09 ^ (~b05 & b06);
        a10 = b10 ^ (~b11 & b12); a11 = b11 ^ (~b12 & b13); a12 = b12 ^ (~b13 & b14);
        a13 = b13 ^ (~b14 & b10); a14 = b14 ^ (~b10 & b11);
        a15 = b15 ^ (~b16 & b17); a16 = b16 ^ (~b17 & b18); a17 = b17 ^ (~b18 & b19);
        a18 = b18 ^ (~b19 & b15); a19 = b19 ^ (~b15 & b16);
        a20 = b20 ^ (~b21 & b22); a21 = b21 ^ (~b22 & b23); a22 = b22 ^ (~b23 & b24);
        a23 = b23 ^ (~b24 & b20); a24 = b24 ^ (~b20 & b21);
    }
    a[0] = a00; a[1] = a01; a[2] = a02; a[3] = a03; a[4] = a04;
    a[5] = a05; a[6] = a06; a[7] = a07; a[8] = a08; a[9] = a09;
    a[10] = a10; a[11] = a11; a[12] = a12; a[13] = a13; a[14] = a14;
    a[15] = a15; a[16] = a16; a[17] = a17; a[18] = a18; a[19] = a19;
    a[20] = a20; a[21] = a21; a[22] = a22; a[23] = a23; a[24] = a24;
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
