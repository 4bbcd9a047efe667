/* md6.c - MD6 (Rivest et al., 2008) with w=64, n=89, c=16, b=64, and HMAC-MD6.
 *
 * Written from the MD6 specification: the compression function f maps the
 * 89-word input N = Q || K || U || V || B (15 constant words, 8 key words,
 * the node ID, the control word, a 64-word data block) to 16 words; the mode
 * of operation is a 4-ary tree of "PAR" levels 1..L and, if the message is
 * still longer than one node after L levels, one sequential "SEQ" chain at
 * level L+1.  Words are big-endian.  No I/O, no allocation, no global state.
 */
#include "md6.h"

#include <string.h>

enum {
    MD6_N = 89,          /* words of compression input */
    MD6_C = 16,          /* words of compression output */
    MD6_B = 64,          /* words of data block */
    MD6_BLOCK_BITS = MD6_B * 64,
    MD6_CV_BITS = MD6_C * 64,
    MD6_MAX_R = 255,
    RING = 128,          /* ring buffer for the step function, >= n, power of 2 */
};

/* Q: the first 960 bits of the fractional part of sqrt(6). */
static const uint64_t md6_Q[15] = {
    0x7311c2812425cfa0ULL, 0x6432286434aac8e7ULL, 0xb60450e9ef68b7c1ULL,
    0xe8fb23908d9f06f1ULL, 0xdd2e76cba691e5bfULL, 0x0cd0d63b2c30bc41ULL,
    0x1f8ccf6823058f8aULL, 0x54e5ed5b88e3775dULL, 0x4ad12aae0a6d6031ULL,
    0x3e7f16bb88222e0dULL, 0x8af8671d3fb50c2cULL, 0x995ad1178bd25c31ULL,
    0xc878c1dd04c4b633ULL, 0x3b72066c7a1552acULL, 0x0d6f3522631effcbULL,
};

/* Right and left shift amounts of the 16 steps of a round. */
static const unsigned char md6_rs[16] = { 10, 5, 13, 10, 11, 12, 2, 7, 14, 15, 7, 13, 11, 7, 6, 12 };
static const unsigned char md6_ls[16] = { 11, 24, 9, 16, 15, 9, 27, 15, 6, 2, 29, 8, 15, 5, 31, 9 };

#define MD6_S0    0x0123456789abcdefULL
#define MD6_SMASK 0x7311c2812425cfa0ULL

/* The compression function: r rounds of 16 steps over the 89 input words in
 * N; writes the last 16 words computed to out.  O(r). */
static void md6_f(const uint64_t N[MD6_N], unsigned r, uint64_t out[MD6_C])
{
    uint64_t A[RING];
    uint64_t S = MD6_S0;
    size_t i, end = (size_t)r * 16 + MD6_N;

    for (i = 0; i < MD6_N; i++)
        A[i] = N[i];
    for (i = MD6_N; i < end; i += 16) {
        for (unsigned j = 0; j < 16; j++) {
            size_t t = i + j;
            uint64_t x = S;
            x ^= A[(t - 89) & (RING - 1)];
            x ^= A[(t - 17) & (RING - 1)];
            x ^= A[(t - 18) & (RING - 1)] & A[(t - 21) & (RING - 1)];
            x ^= A[(t - 31) & (RING - 1)] & A[(t - 67) & (RING - 1)];
            x ^= x >> md6_rs[j];
            A[t & (RING - 1)] = x ^ (x << md6_ls[j]);
        }
        S = ((S << 1) | (S >> 63)) ^ (S & MD6_SMASK);
    }
    for (i = 0; i < MD6_C; i++)
        out[i] = A[(end - MD6_C + i) & (RING - 1)];
}

/* Compress the block buffered at level ell (zero padded) with final flag z;
 * the 16-word result goes to out.  O(r). */
static void md6_compress_level(const aemp_md6_ctx *c, unsigned ell, unsigned z,
                               uint64_t out[MD6_C])
{
    uint64_t N[MD6_N];
    uint64_t p = MD6_BLOCK_BITS - c->bits[ell];

    memcpy(N, md6_Q, sizeof md6_Q);
    memcpy(N + 15, c->K, sizeof c->K);
    N[23] = ((uint64_t)ell << 56) | (c->index[ell] & 0x00ffffffffffffffULL);
    N[24] = ((uint64_t)c->r << 48) | ((uint64_t)c->L << 40) | ((uint64_t)z << 36)
          | (p << 20) | ((uint64_t)c->keylen << 12) | (uint64_t)c->d;
    memcpy(N + 25, c->B[ell], sizeof c->B[ell]);
    md6_f(N, c->r, out);
}

/* Compress what is pending from level ell upwards.  Without `final` only full
 * blocks are compressed (callers guarantee more input follows); with `final`
 * every level up to the root is flushed and the root, compressed with z = 1,
 * is stored in c->hashval as 128 big-endian bytes.  O(levels * r). */
static void md6_process(aemp_md6_ctx *c, unsigned ell, int final)
{
    const unsigned seq = c->L + 1;        /* the level of the SEQ chain */
    uint64_t C[MD6_C];

    for (;;) {
        if (!final) {
            if (c->bits[ell] < MD6_BLOCK_BITS)
                return;
        } else if (ell == c->top) {
            /* Defensive: a top node holding nothing new needs no compression. */
            if (ell == seq ? (c->bits[ell] == MD6_CV_BITS && c->index[ell] > 0)
                           : (ell > 1 && c->bits[ell] == MD6_CV_BITS))
                return;
        }
        unsigned z = (final && ell == c->top) ? 1 : 0;
        md6_compress_level(c, ell, z, C);
        if (z) {
            for (unsigned i = 0; i < MD6_C; i++)
                for (unsigned k = 0; k < 8; k++)
                    c->root[i * 8 + k] = (uint8_t)(C[i] >> (56 - 8 * k));
            return;
        }
        memset(c->B[ell], 0, sizeof c->B[ell]);
        c->bits[ell] = 0;
        c->index[ell]++;

        unsigned next = ell + 1 < seq ? ell + 1 : seq;
        if (next > AEMP_MD6_MAX_LEVELS)   /* unreachable with < 2^64-bit input */
            next = AEMP_MD6_MAX_LEVELS;
        if (next == seq && c->index[next] == 0 && c->bits[next] == 0)
            c->bits[next] = MD6_CV_BITS;  /* SEQ starts with a zero IV */
        memcpy(&c->B[next][c->bits[next] / 64], C, sizeof C);
        c->bits[next] += MD6_CV_BITS;
        if (next > c->top)
            c->top = next;
        ell = next;
    }
}

/* Start an MD6 computation; see md6.h.  O(1). */
int aemp__md6_init(aemp_md6_ctx *c, unsigned d, unsigned L, unsigned r,
                   const uint8_t *key, size_t keylen)
{
    if (!c || d < 1 || d > 512 || L > 64 || r > MD6_MAX_R || keylen > AEMP_MD6_MAX_KEY
        || (keylen > 0 && !key))
        return -1;
    memset(c, 0, sizeof *c);
    if (r == 0) {
        r = 40 + d / 4;
        if (keylen > 0 && r < 80)
            r = 80;
    }
    c->d = d;
    c->L = L;
    c->r = r;
    c->keylen = (unsigned)keylen;
    for (size_t i = 0; i < keylen; i++)
        c->K[i / 8] |= (uint64_t)key[i] << (56 - 8 * (i % 8));
    c->top = 1;
    if (L == 0)
        c->bits[1] = MD6_CV_BITS;         /* level 1 is the SEQ chain */
    return 0;
}

/* Add message bytes; see md6.h.  O(len). */
void aemp__md6_update(aemp_md6_ctx *c, const uint8_t *data, size_t len)
{
    if (c->finalized)
        return;
    c->total_bits += (uint64_t)len * 8;
    while (len > 0) {
        /* A full level-1 block is compressed only once more input exists,
         * so that the last block can still become the root (z = 1). */
        if (c->bits[1] == MD6_BLOCK_BITS)
            md6_process(c, 1, 0);
        unsigned pos = c->bits[1] / 8;                  /* byte offset in block */
        size_t room = (MD6_BLOCK_BITS - c->bits[1]) / 8;
        size_t n = len < room ? len : room;
        uint64_t *W = c->B[1];
        size_t k = 0;
        while (k < n && (pos + k) % 8 != 0) {
            W[(pos + k) / 8] |= (uint64_t)data[k] << (56 - 8 * ((pos + k) % 8));
            k++;
        }
        for (; k + 8 <= n; k += 8) {
            const uint8_t *q = data + k;
            W[(pos + k) / 8] = ((uint64_t)q[0] << 56) | ((uint64_t)q[1] << 48)
                             | ((uint64_t)q[2] << 40) | ((uint64_t)q[3] << 32)
                             | ((uint64_t)q[4] << 24) | ((uint64_t)q[5] << 16)
                             | ((uint64_t)q[6] << 8) | (uint64_t)q[7];
        }
        for (; k < n; k++)
            W[(pos + k) / 8] |= (uint64_t)data[k] << (56 - 8 * ((pos + k) % 8));
        c->bits[1] += (unsigned)n * 8;
        data += n;
        len -= n;
    }
}

/* Finish and write the digest; see md6.h.  O(levels * r). */
void aemp__md6_final(aemp_md6_ctx *c, uint8_t *out)
{
    unsigned nbytes = (c->d + 7) / 8, rem = c->d % 8;

    if (!c->finalized) {
        md6_process(c, 1, 1);
        c->finalized = 1;
        /* The last d bits of the 1024-bit value, left-justified in
         * nbytes bytes (trailing bits of the last byte zero). */
        const uint8_t *src = c->root + sizeof c->root - nbytes;
        for (unsigned i = 0; i < nbytes; i++) {
            if (rem == 0)
                c->hashval[i] = src[i];
            else
                c->hashval[i] = (uint8_t)((src[i] << (8 - rem))
                                          | (i + 1 < nbytes ? src[i + 1] >> rem : 0));
        }
    }
    memcpy(out, c->hashval, nbytes);
}

/* One-shot MD6; see md6.h.  O(len). */
int aemp__md6(unsigned d, unsigned L, unsigned r, const uint8_t *key, size_t keylen,
              const uint8_t *msg, size_t len, uint8_t *out)
{
    aemp_md6_ctx c;
    if (aemp__md6_init(&c, d, L, r, key, keylen) != 0)
        return -1;
    aemp__md6_update(&c, msg, len);
    aemp__md6_final(&c, out);
    return 0;
}

/* Feed n bytes of (K0 zero-padded) XOR pad into c, in small pieces. */
static void hmac_feed_pad(aemp_md6_ctx *c, const uint8_t *k0, size_t k0len, size_t n,
                          uint8_t pad)
{
    uint8_t chunk[64];
    for (size_t off = 0; off < n;) {
        size_t m = n - off < sizeof chunk ? n - off : sizeof chunk;
        for (size_t i = 0; i < m; i++)
            chunk[i] = (uint8_t)((off + i < k0len ? k0[off + i] : 0) ^ pad);
        aemp__md6_update(c, chunk, m);
        off += m;
    }
}

/* HMAC-MD6 as CPAN Digest::HMAC_MD6 computes it; see md6.h.  bits must be
 * 1..512 (a multiple of 8 for the output to be complete).  O(len + keylen). */
void aemp__hmac_md6(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len,
                    size_t block_bytes, unsigned bits, uint8_t *out)
{
    aemp_md6_ctx c;
    uint8_t k0[AEMP_MD6_MAX_BYTES], inner[AEMP_MD6_MAX_BYTES], outer[AEMP_MD6_MAX_BYTES];
    const uint8_t *kp = key;
    size_t klen = keylen;
    size_t hlen = (bits + 7) / 8;

    if (bits < 1 || bits > 512)
        return;
    if (keylen > block_bytes) {
        aemp__md6(bits, 64, 0, NULL, 0, key, keylen, k0);
        kp = k0;
        klen = hlen;
    }
    /* As Perl's string XOR does: the pad covers max(block, key) bytes. */
    size_t padlen = klen > block_bytes ? klen : block_bytes;

    aemp__md6_init(&c, bits, 64, 0, NULL, 0);
    hmac_feed_pad(&c, kp, klen, padlen, 0x36);
    aemp__md6_update(&c, msg, len);
    aemp__md6_final(&c, inner);

    aemp__md6_init(&c, bits, 64, 0, NULL, 0);
    hmac_feed_pad(&c, kp, klen, padlen, 0x5c);
    aemp__md6_update(&c, inner, hlen);
    aemp__md6_final(&c, outer);

    memcpy(out, outer, bits / 8);
}
