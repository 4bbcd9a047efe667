/* Tests for MD6 and HMAC-MD6 against tests/vectors/md6.txt and hmac_md6.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md6.h"

#ifndef AEMP_VECTORS_DIR
#error "AEMP_VECTORS_DIR must name the test vectors directory"
#endif

/* Decode len hex digits; returns the number of bytes or -1. */
static long unhex(const char *s, size_t len, uint8_t *out)
{
    if (len % 2)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        unsigned v;
        char two[3] = { s[i], s[i + 1], 0 };
        if (sscanf(two, "%2x", &v) != 1)
            return -1;
        out[i / 2] = (uint8_t)v;
    }
    return (long)(len / 2);
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

/* Split line at TABs into at most max fields (in place); returns the count. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = 0;
            f[n++] = p + 1;
        }
    return n;
}

/* Build the message of a "hex:" / "repeat:" / "pattern95:" spec (malloc'd). */
static uint8_t *make_msg(const char *spec, size_t *len)
{
    uint8_t *m;
    *len = 0;
    if (strncmp(spec, "hex:", 4) == 0) {
        size_t hl = strlen(spec + 4);
        m = malloc(hl / 2 + 1);
        assert_non_null(m);
        long n = unhex(spec + 4, hl, m);
        assert_true(n >= 0);
        *len = (size_t)n;
    } else if (strncmp(spec, "repeat:", 7) == 0) {
        unsigned b;
        size_t count;
        assert_int_equal(sscanf(spec + 7, "%x:%zu", &b, &count), 2);
        m = malloc(count + 1);
        assert_non_null(m);
        memset(m, (int)b, count);
        *len = count;
    } else if (strncmp(spec, "pattern95:", 10) == 0) {
        size_t count, mul;
        assert_int_equal(sscanf(spec + 10, "%zu:%zu", &count, &mul), 2);
        m = malloc(count + 1);
        assert_non_null(m);
        for (size_t i = 0; i < count; i++)
            m[i] = (uint8_t)(32 + (i * mul) % 95);
        *len = count;
    } else {
        fail_msg("unknown message spec %s", spec);
        return NULL;
    }
    return m;
}

/* Hash msg by streaming it in pieces of `chunk` bytes. */
static void md6_chunked(unsigned d, unsigned L, unsigned r, const uint8_t *key, size_t keylen,
                        const uint8_t *msg, size_t len, size_t chunk, uint8_t *out)
{
    aemp_md6_ctx c;
    assert_int_equal(aemp__md6_init(&c, d, L, r, key, keylen), 0);
    for (size_t off = 0; off < len; off += chunk)
        aemp__md6_update(&c, msg + off, len - off < chunk ? len - off : chunk);
    aemp__md6_final(&c, out);
}

/* Every vector of md6.txt, one-shot and streamed in chunks of 1/7/64/511. */
static void md6_vectors(void **state)
{
    static const size_t chunks[] = { 1, 7, 64, 511 };
    FILE *f = fopen(AEMP_VECTORS_DIR "/md6.txt", "r");
    assert_non_null(f);
    char line[8192];
    int checked = 0, lines = 0, streamed = 0, keyed = 0, seq = 0;

    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n' || line[0] == '\r')
            continue;
        lines++;
        char *fld[8];
        assert_true(split_tabs(line, fld, 8) >= 6);
        unsigned d = (unsigned)strtoul(fld[0], NULL, 10);
        unsigned L = (unsigned)strtoul(fld[1], NULL, 10);
        unsigned r = fld[2][0] ? (unsigned)strtoul(fld[2], NULL, 10) : 0;
        uint8_t key[AEMP_MD6_MAX_KEY];
        long keylen = unhex(fld[3], strlen(fld[3]), key);
        assert_true(keylen >= 0 && keylen <= AEMP_MD6_MAX_KEY);
        size_t len = 0;
        uint8_t *msg = make_msg(fld[4], &len);
        uint8_t out[AEMP_MD6_MAX_BYTES];
        char hex[2 * AEMP_MD6_MAX_BYTES + 1];

        assert_int_equal(aemp__md6(d, L, r, key, (size_t)keylen, msg, len, out), 0);
        tohex(out, (d + 7) / 8, hex);
        if (strcmp(hex, fld[5]) != 0)
            fail_msg("md6 d=%u L=%u r=%s key=%s msg=%.40s: got %s want %s",
                     d, L, fld[2], fld[3], fld[4], hex, fld[5]);
        checked++;
        keyed += keylen > 0;
        seq += L < 64;

        for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
            md6_chunked(d, L, r, key, (size_t)keylen, msg, len, chunks[i], out);
            tohex(out, (d + 7) / 8, hex);
            if (strcmp(hex, fld[5]) != 0)
                fail_msg("md6 chunk %zu d=%u L=%u msg=%.40s: got %s want %s",
                         chunks[i], d, L, fld[4], hex, fld[5]);
            streamed++;
        }
        free(msg);
    }
    fclose(f);
    print_message("md6.txt: %d vectors checked (%d keyed, %d with L<64), %d streamed runs\n",
                  checked, keyed, seq, streamed);
    assert_int_equal(checked, lines);
    assert_true(checked >= 97);   /* the file has 97 vector lines */
    assert_true(keyed > 10);
    assert_true(seq > 10);
}

/* Every line of hmac_md6.txt: columns are DATA then KEY (Digest::HMAC_MD6). */
static void hmac_md6_vectors(void **state)
{
    FILE *f = fopen(AEMP_VECTORS_DIR "/hmac_md6.txt", "r");
    assert_non_null(f);
    char line[8192];
    int checked = 0;

    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "hmac\t", 5) != 0)
            continue;
        char *fld[8];
        assert_true(split_tabs(line, fld, 8) >= 6);
        size_t block = strtoul(fld[1], NULL, 10);
        unsigned bits = (unsigned)strtoul(fld[2], NULL, 10);
        static uint8_t data[2048], key[2048];
        long dl = unhex(fld[3], strlen(fld[3]), data);
        long kl = unhex(fld[4], strlen(fld[4]), key);
        assert_true(dl >= 0 && kl >= 0);
        uint8_t out[AEMP_MD6_MAX_BYTES];
        char hex[2 * AEMP_MD6_MAX_BYTES + 1];
        aemp__hmac_md6(key, (size_t)kl, data, (size_t)dl, block, bits, out);
        tohex(out, bits / 8, hex);
        assert_string_equal(hex, fld[5]);
        checked++;
    }
    fclose(f);
    print_message("hmac_md6.txt: %d vectors checked\n", checked);
    assert_true(checked >= 2);
}

/* HMAC with a key no longer than the block is not pre-hashed: it equals the
 * textbook construction computed by hand with aemp__md6. */
static void hmac_md6_short_key(void **state)
{
    const uint8_t key[] = "short key", msg[] = "some message";
    uint8_t pad[64 + sizeof msg], inner[32], pad2[64 + 32], want[32], got[32];

    memset(pad, 0x36, 64);
    for (size_t i = 0; i < sizeof key - 1; i++)
        pad[i] ^= key[i];
    memcpy(pad + 64, msg, sizeof msg - 1);
    assert_int_equal(aemp__md6(256, 64, 0, NULL, 0, pad, 64 + sizeof msg - 1, inner), 0);
    memset(pad2, 0x5c, 64);
    for (size_t i = 0; i < sizeof key - 1; i++)
        pad2[i] ^= key[i];
    memcpy(pad2 + 64, inner, 32);
    assert_int_equal(aemp__md6(256, 64, 0, NULL, 0, pad2, sizeof pad2, want), 0);

    aemp__hmac_md6(key, sizeof key - 1, msg, sizeof msg - 1, 64, 256, got);
    assert_memory_equal(got, want, 32);
}

/* Every digest size 1..512 works; unused trailing bits are zero; the digest
 * depends on d; streaming matches one-shot at every size. */
static void md6_all_sizes(void **state)
{
    uint8_t msg[700];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 31 + 7);
    uint8_t prev[AEMP_MD6_MAX_BYTES] = { 0 };
    for (unsigned d = 1; d <= 512; d++) {
        uint8_t a[AEMP_MD6_MAX_BYTES], b[AEMP_MD6_MAX_BYTES];
        unsigned n = (d + 7) / 8;
        assert_int_equal(aemp__md6(d, 64, 0, NULL, 0, msg, sizeof msg, a), 0);
        if (d % 8)
            assert_int_equal(a[n - 1] & ((1u << (8 - d % 8)) - 1), 0);
        if (d > 16)
            assert_memory_not_equal(a, prev, n - 1);
        md6_chunked(d, 64, 0, (const uint8_t *)"k", 1, msg, sizeof msg, 13, b);
        uint8_t c1[AEMP_MD6_MAX_BYTES];
        assert_int_equal(aemp__md6(d, 64, 0, (const uint8_t *)"k", 1, msg, sizeof msg, c1), 0);
        assert_memory_equal(b, c1, n);
        memcpy(prev, a, n);
    }
}

/* Multi-level tree boundaries: block counts around powers of 4, one-shot vs
 * byte-sized and odd-sized streaming, for the tree mode and small L. */
static void md6_tree_boundaries(void **state)
{
    static const size_t lens[] = { 0, 1, 511, 512, 513, 2047, 2048, 2049, 8191, 8192,
                                   8193, 4 * 8192, 4 * 8192 + 1, 16 * 8192 + 512 };
    static const unsigned Ls[] = { 0, 1, 2, 3, 64 };
    size_t maxlen = 16 * 8192 + 512;
    uint8_t *msg = malloc(maxlen);
    assert_non_null(msg);
    for (size_t i = 0; i < maxlen; i++)
        msg[i] = (uint8_t)(i ^ (i >> 8));
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t Li = 0; Li < sizeof Ls / sizeof Ls[0]; Li++) {
            uint8_t a[32], b[32], c[32];
            assert_int_equal(aemp__md6(256, Ls[Li], 0, NULL, 0, msg, lens[li], a), 0);
            md6_chunked(256, Ls[Li], 0, NULL, 0, msg, lens[li], 1, b);
            md6_chunked(256, Ls[Li], 0, NULL, 0, msg, lens[li], 4093, c);
            assert_memory_equal(a, b, 32);
            assert_memory_equal(a, c, 32);
        }
    free(msg);
}

/* Parameter checks of aemp__md6_init. */
static void md6_bad_params(void **state)
{
    aemp_md6_ctx c;
    uint8_t key[65] = { 0 };
    assert_int_equal(aemp__md6_init(&c, 0, 64, 0, NULL, 0), -1);
    assert_int_equal(aemp__md6_init(&c, 513, 64, 0, NULL, 0), -1);
    assert_int_equal(aemp__md6_init(&c, 256, 65, 0, NULL, 0), -1);
    assert_int_equal(aemp__md6_init(&c, 256, 64, 0, key, 65), -1);
    assert_int_equal(aemp__md6_init(&c, 256, 64, 0, key, 64), 0);
    assert_int_equal(aemp__md6_init(&c, 1, 0, 1, NULL, 0), 0);
    assert_int_equal(aemp__md6_init(&c, 512, 64, 255, NULL, 0), 0);
}

/* The default rounds: an explicit r equal to the default gives the same
 * digest, with and without a key (keyed: at least 80). */
static void md6_default_rounds(void **state)
{
    const uint8_t m[] = "abc";
    uint8_t a[64], b[64];
    assert_int_equal(aemp__md6(256, 64, 0, NULL, 0, m, 3, a), 0);
    assert_int_equal(aemp__md6(256, 64, 104, NULL, 0, m, 3, b), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(aemp__md6(64, 64, 0, (const uint8_t *)"k", 1, m, 3, a), 0);
    assert_int_equal(aemp__md6(64, 64, 80, (const uint8_t *)"k", 1, m, 3, b), 0);
    assert_memory_equal(a, b, 8);
    assert_int_equal(aemp__md6(64, 64, 0, NULL, 0, m, 3, a), 0);
    assert_int_equal(aemp__md6(64, 64, 56, NULL, 0, m, 3, b), 0);
    assert_memory_equal(a, b, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(md6_vectors),
        cmocka_unit_test(hmac_md6_vectors),
        cmocka_unit_test(hmac_md6_short_key),
        cmocka_unit_test(md6_all_sizes),
        cmocka_unit_test(md6_tree_boundaries),
        cmocka_unit_test(md6_bad_params),
        cmocka_unit_test(md6_default_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
