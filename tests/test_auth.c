/* Tests for the handshake authentication methods: spec Appendix A, the 1.30
 * capture (hmac_md6_64_256) and the 2.02 capture (hmac_sha3_512). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "md6.h"

#ifndef AEMP_VECTORS_DIR
#error "AEMP_VECTORS_DIR must name the test vectors directory"
#endif

/* ---- Appendix A of the spec (secret "geheim") ---- */

static const char A1[] = "aemp;1;nodeA;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;provider=AE-2.01;mproto=1;gproto=1;peeraddr=127.0.0.1:4040";
static const char A2[] = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";
static const char B1[] = "aemp;1;nodeB;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;provider=AE-2.01;mproto=1;gproto=1;peeraddr=127.0.0.1:51000";
static const char B2[] = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC";
static const char A_HMAC[] = "753d2f6f477d413c8e7b7313da59e80c0daf33f1e0ed3731b4b9e03c3c320b34c39fbcefe355ceb55e5b222ebed08353ccc0c3b894e058228000d0b709f7bc94";
static const char B_HMAC[] = "a15bb62549e045fe2ae4b33a8ada9dd3feda9ef53531a5d2474662dd11d5390041565a9ec090ce5695b14de5e5ef46f219c557cfbb01a58dfc156365ee6a3902";
static const char A_TLS[] = "7e229f5215e37b8ab11c6d5d3d3e499e3e0f5cce4b2771ea5ca238a2fedf6fdc9a4026e23a69901e40f9bfb01231dfa49efb42bab88d275536ee119b6f0a2554";
#define GEHEIM ((const uint8_t *)"geheim"), 6

static void appendix_a(void **state)
{
    char tok[AEMP_AUTH_TOKEN_MAX];
    assert_int_equal(aemp__auth_token(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2,
                                      tok, sizeof tok), 128);
    assert_string_equal(tok, A_HMAC);
    assert_int_equal(aemp__auth_token(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, B1, B2, A1, A2,
                                      tok, sizeof tok), 128);
    assert_string_equal(tok, B_HMAC);
    assert_int_equal(aemp__auth_token(AEMP_AUTH_TLS_SHA3_512, NULL, 0, A1, A2, B1, B2,
                                      tok, sizeof tok), 128);
    assert_string_equal(tok, A_TLS);
    /* B verifies A's token: peer (A) lines first. */
    assert_true(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2,
                                  A_HMAC, strlen(A_HMAC)));
    assert_true(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, B1, B2, A1, A2,
                                  B_HMAC, strlen(B_HMAC)));
    assert_true(aemp__auth_verify(AEMP_AUTH_TLS_SHA3_512, NULL, 0, A1, A2, B1, B2,
                                  A_TLS, strlen(A_TLS)));
    /* the wrong order does not verify */
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, B1, B2, A1, A2,
                                   A_HMAC, strlen(A_HMAC)));
}

/* ---- capture files ---- */

/* Copy the rest of the n-th (0-based) line of the file starting with prefix
 * into out (without line terminator); fails the test if absent. */
static void find_line(const char *path, const char *prefix, int n, char *out, size_t outsize)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    size_t pl = strlen(prefix);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, prefix, pl) != 0 || n-- > 0)
            continue;
        char *v = line + pl;
        while (*v == ' ')
            v++;
        v[strcspn(v, "\r\n")] = 0;
        assert_true(strlen(v) < outsize);
        strcpy(out, v);
        fclose(f);
        return;
    }
    fclose(f);
    fail_msg("%s: no line %d starting with '%s'", path, n, prefix);
}

/* From an auth line "method;token;framing": the method and the token. */
static void split_auth(const char *line, aemp_auth_method_t *m, char *tok, size_t toksize)
{
    const char *s1 = strchr(line, ';');
    assert_non_null(s1);
    const char *s2 = strchr(s1 + 1, ';');
    assert_non_null(s2);
    *m = aemp__auth_parse(line, (size_t)(s1 - line));
    assert_true((size_t)(s2 - s1 - 1) < toksize);
    memcpy(tok, s1 + 1, (size_t)(s2 - s1 - 1));
    tok[s2 - s1 - 1] = 0;
}

/* Check both auth lines of a session: each side's token from its own lines
 * first, and verification from the receiver's point of view. */
static void check_session(aemp_auth_method_t want_m, const uint8_t *secret, size_t secretlen,
                          const char *c1, const char *c2, const char *s1, const char *s2,
                          const char *c_auth, const char *s_auth)
{
    aemp_auth_method_t m;
    char want[AEMP_AUTH_TOKEN_MAX], tok[AEMP_AUTH_TOKEN_MAX];
    int len = want_m == AEMP_AUTH_HMAC_SHA3_512 ? 128 : 64;

    split_auth(c_auth, &m, want, sizeof want);
    assert_int_equal(m, want_m);
    assert_int_equal(aemp__auth_token(m, secret, secretlen, c1, c2, s1, s2, tok, sizeof tok), len);
    assert_string_equal(tok, want);
    assert_true(aemp__auth_verify(m, secret, secretlen, c1, c2, s1, s2, want, strlen(want)));
    assert_false(aemp__auth_verify(m, secret, secretlen, s1, s2, c1, c2, want, strlen(want)));
    assert_false(aemp__auth_verify(m, secret, secretlen - 1, c1, c2, s1, s2, want, strlen(want)));

    split_auth(s_auth, &m, want, sizeof want);
    assert_int_equal(m, want_m);
    assert_int_equal(aemp__auth_token(m, secret, secretlen, s1, s2, c1, c2, tok, sizeof tok), len);
    assert_string_equal(tok, want);
    assert_true(aemp__auth_verify(m, secret, secretlen, s1, s2, c1, c2, want, strlen(want)));
}

static void capture_130_hmac_md6(void **state)
{
    const char *path = AEMP_VECTORS_DIR "/capture/handshake.txt";
    char secret[256], c1[1024], c2[1024], s1[1024], s2[1024], ca[1024], sa[1024], mhex[256];
    find_line(path, "secret:", 0, secret, sizeof secret);
    find_line(path, "client greeting line 1:", 0, c1, sizeof c1);
    find_line(path, "client greeting line 2 (nonce, base64):", 0, c2, sizeof c2);
    find_line(path, "seed greeting line 1:", 0, s1, sizeof s1);
    find_line(path, "seed greeting line 2 (nonce, base64):", 0, s2, sizeof s2);
    find_line(path, "client auth line:", 0, ca, sizeof ca);
    find_line(path, "seed auth line:", 0, sa, sizeof sa);
    find_line(path, "M = MD6-256(secret) (hex):", 0, mhex, sizeof mhex);
    assert_string_equal(secret, "aemp-interop-capture-secret");
    assert_int_equal(strncmp(c1, "aemp;1;client;", 14), 0);

    /* the intermediate M = MD6-256(secret) */
    uint8_t m[32];
    char hex[65];
    assert_int_equal(aemp__md6(256, 64, 0, NULL, 0, (const uint8_t *)secret, strlen(secret), m), 0);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", m[i]);
    assert_string_equal(hex, mhex);

    check_session(AEMP_AUTH_HMAC_MD6_64_256, (const uint8_t *)secret, strlen(secret),
                  c1, c2, s1, s2, ca, sa);
}

static void capture_202_hmac_sha3(void **state)
{
    const char *path = AEMP_VECTORS_DIR "/capture2/handshake.txt";
    char sline[256], c1[1024], c2[1024], s1[1024], s2[1024], ca[1024], sa[1024];
    find_line(path, "secret (shared, configured on both nodes):", 0, sline, sizeof sline);
    find_line(path, "greeting line 1:", 0, c1, sizeof c1);
    find_line(path, "greeting line 2 (nonce, base64 of 66 random bytes):", 0, c2, sizeof c2);
    find_line(path, "auth line:", 0, ca, sizeof ca);
    find_line(path, "greeting line 1:", 1, s1, sizeof s1);
    find_line(path, "greeting line 2 (nonce, base64 of 66 random bytes):", 1, s2, sizeof s2);
    find_line(path, "auth line:", 1, sa, sizeof sa);
    /* the secret is shown quoted */
    assert_int_equal(sline[0], '"');
    char *end = strchr(sline + 1, '"');
    assert_non_null(end);
    *end = 0;
    const char *secret = sline + 1;
    assert_string_equal(secret, "aemp2-example-secret");
    assert_int_equal(strncmp(c1, "aemp;1;client;", 14), 0);
    assert_int_equal(strncmp(s1, "aemp;1;seed;", 12), 0);

    check_session(AEMP_AUTH_HMAC_SHA3_512, (const uint8_t *)secret, strlen(secret),
                  c1, c2, s1, s2, ca, sa);
}

/* ---- the other methods ---- */

static void cleartext_and_anon(void **state)
{
    char tok[AEMP_AUTH_TOKEN_MAX];
    assert_int_equal(aemp__auth_token(AEMP_AUTH_CLEARTEXT, GEHEIM, A1, A2, B1, B2,
                                      tok, sizeof tok), 12);
    assert_string_equal(tok, "67656865696d");
    assert_true(aemp__auth_verify(AEMP_AUTH_CLEARTEXT, GEHEIM, B1, B2, A1, A2, "67656865696d", 12));
    assert_false(aemp__auth_verify(AEMP_AUTH_CLEARTEXT, GEHEIM, B1, B2, A1, A2, "67656865696D", 12));
    /* uppercase/high bytes come out lowercase */
    assert_int_equal(aemp__auth_token(AEMP_AUTH_CLEARTEXT, (const uint8_t *)"\xAB\xff", 2,
                                      A1, A2, B1, B2, tok, sizeof tok), 4);
    assert_string_equal(tok, "abff");
    /* a secret too long for the buffer */
    assert_int_equal(aemp__auth_token(AEMP_AUTH_CLEARTEXT, GEHEIM, A1, A2, B1, B2, tok, 12), -1);
    assert_int_equal(aemp__auth_token(AEMP_AUTH_CLEARTEXT, GEHEIM, A1, A2, B1, B2, tok, 13), 12);

    strcpy(tok, "junk");
    assert_int_equal(aemp__auth_token(AEMP_AUTH_TLS_ANON, NULL, 0, A1, A2, B1, B2,
                                      tok, sizeof tok), 0);
    assert_string_equal(tok, "");
    assert_true(aemp__auth_verify(AEMP_AUTH_TLS_ANON, NULL, 0, B1, B2, A1, A2, "", 0));
    assert_false(aemp__auth_verify(AEMP_AUTH_TLS_ANON, NULL, 0, B1, B2, A1, A2, "x", 1));

    /* tls_md6_64_256 = MD6-256 of the greeting text */
    char text[1024];
    uint8_t h[32];
    char hex[65];
    snprintf(text, sizeof text, "%s\n%s\n%s\n%s\n", A1, A2, B1, B2);
    assert_int_equal(aemp__md6(256, 64, 0, NULL, 0, (const uint8_t *)text, strlen(text), h), 0);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", h[i]);
    assert_int_equal(aemp__auth_token(AEMP_AUTH_TLS_MD6_64_256, NULL, 0, A1, A2, B1, B2,
                                      tok, sizeof tok), 64);
    assert_string_equal(tok, hex);
    assert_true(aemp__auth_verify(AEMP_AUTH_TLS_MD6_64_256, NULL, 0, A1, A2, B1, B2, hex, 64));

    /* unknown method */
    assert_int_equal(aemp__auth_token(AEMP_AUTH_NONE, GEHEIM, A1, A2, B1, B2, tok, sizeof tok), -1);
    assert_int_equal(aemp__auth_token((aemp_auth_method_t)99, GEHEIM, A1, A2, B1, B2,
                                      tok, sizeof tok), -1);
    assert_false(aemp__auth_verify(AEMP_AUTH_NONE, GEHEIM, A1, A2, B1, B2, "", 0));
    /* an HMAC token does not fit a small buffer */
    assert_int_equal(aemp__auth_token(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, tok, 128), -1);
}

static void names_round_trip(void **state)
{
    static const aemp_auth_method_t all[] = {
        AEMP_AUTH_HMAC_SHA3_512, AEMP_AUTH_TLS_SHA3_512, AEMP_AUTH_HMAC_MD6_64_256,
        AEMP_AUTH_TLS_MD6_64_256, AEMP_AUTH_TLS_ANON, AEMP_AUTH_CLEARTEXT,
    };
    static const char *const names[] = {
        "hmac_sha3_512", "tls_sha3_512", "hmac_md6_64_256", "tls_md6_64_256", "tls_anon", "cleartext",
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *n = aemp__auth_name(all[i]);
        assert_non_null(n);
        assert_string_equal(n, names[i]);
        assert_int_equal(aemp__auth_parse(n, strlen(n)), all[i]);
        /* the length, not a NUL, ends the name */
        char buf[64];
        snprintf(buf, sizeof buf, "%s;xyz", n);
        assert_int_equal(aemp__auth_parse(buf, strlen(n)), all[i]);
        assert_int_equal(aemp__auth_parse(buf, strlen(n) - 1), AEMP_AUTH_NONE);
        assert_int_equal(aemp__auth_parse(buf, strlen(n) + 1), AEMP_AUTH_NONE);
    }
    assert_null(aemp__auth_name(AEMP_AUTH_NONE));
    assert_null(aemp__auth_name((aemp_auth_method_t)42));
    assert_int_equal(aemp__auth_parse("hex_secret", 10), AEMP_AUTH_NONE);
    assert_int_equal(aemp__auth_parse("HMAC_SHA3_512", 13), AEMP_AUTH_NONE);
    assert_int_equal(aemp__auth_parse("md6", 3), AEMP_AUTH_NONE);
    assert_int_equal(aemp__auth_parse("", 0), AEMP_AUTH_NONE);
    assert_int_equal(aemp__auth_parse(NULL, 0), AEMP_AUTH_NONE);
}

static void verify_rejects(void **state)
{
    char bad[AEMP_AUTH_TOKEN_MAX];
    size_t n = strlen(A_HMAC);

    assert_true(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, A_HMAC, n));
    /* one character changed, at the start, middle and end */
    size_t pos[] = { 0, n / 2, n - 1 };
    for (size_t i = 0; i < 3; i++) {
        strcpy(bad, A_HMAC);
        bad[pos[i]] = bad[pos[i]] == '0' ? '1' : '0';
        assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, bad, n));
    }
    /* truncated, extended, empty */
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, A_HMAC, n - 1));
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, A_HMAC, n / 2));
    strcpy(bad, A_HMAC);
    strcat(bad, "0");
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, bad, n + 1));
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, "", 0));
    /* uppercase hex is not the token */
    for (size_t i = 0; i < n; i++)
        bad[i] = (char)(A_HMAC[i] >= 'a' ? A_HMAC[i] - 32 : A_HMAC[i]);
    bad[n] = 0;
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, GEHEIM, A1, A2, B1, B2, bad, n));
    /* the right token under another method or secret */
    assert_false(aemp__auth_verify(AEMP_AUTH_TLS_SHA3_512, GEHEIM, A1, A2, B1, B2, A_HMAC, n));
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, (const uint8_t *)"geheiM", 6,
                                   A1, A2, B1, B2, A_HMAC, n));
    /* a secret-based method never verifies without a secret */
    char tok[AEMP_AUTH_TOKEN_MAX];
    int len = aemp__auth_token(AEMP_AUTH_HMAC_SHA3_512, NULL, 0, A1, A2, B1, B2, tok, sizeof tok);
    assert_int_equal(len, 128);
    assert_false(aemp__auth_verify(AEMP_AUTH_HMAC_SHA3_512, NULL, 0, A1, A2, B1, B2, tok, 128));
    assert_false(aemp__auth_verify(AEMP_AUTH_CLEARTEXT, NULL, 0, A1, A2, B1, B2, "", 0));
}

static void classify(void **state)
{
    assert_false(aemp__auth_needs_tls(AEMP_AUTH_HMAC_SHA3_512));
    assert_true(aemp__auth_needs_tls(AEMP_AUTH_TLS_SHA3_512));
    assert_false(aemp__auth_needs_tls(AEMP_AUTH_HMAC_MD6_64_256));
    assert_true(aemp__auth_needs_tls(AEMP_AUTH_TLS_MD6_64_256));
    assert_true(aemp__auth_needs_tls(AEMP_AUTH_TLS_ANON));
    assert_false(aemp__auth_needs_tls(AEMP_AUTH_CLEARTEXT));
    assert_false(aemp__auth_needs_tls(AEMP_AUTH_NONE));

    assert_true(aemp__auth_needs_secret(AEMP_AUTH_HMAC_SHA3_512));
    assert_false(aemp__auth_needs_secret(AEMP_AUTH_TLS_SHA3_512));
    assert_true(aemp__auth_needs_secret(AEMP_AUTH_HMAC_MD6_64_256));
    assert_false(aemp__auth_needs_secret(AEMP_AUTH_TLS_MD6_64_256));
    assert_false(aemp__auth_needs_secret(AEMP_AUTH_TLS_ANON));
    assert_true(aemp__auth_needs_secret(AEMP_AUTH_CLEARTEXT));
    assert_false(aemp__auth_needs_secret(AEMP_AUTH_NONE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appendix_a),
        cmocka_unit_test(capture_130_hmac_md6),
        cmocka_unit_test(capture_202_hmac_sha3),
        cmocka_unit_test(cleartext_and_anon),
        cmocka_unit_test(names_round_trip),
        cmocka_unit_test(verify_rejects),
        cmocka_unit_test(classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
