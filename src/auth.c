/* auth.c - the handshake authentication methods of both dialects (spec §8.5).
 *
 * Every token is computed over the "greeting text"
 *     own1 LF own2 LF peer1 LF peer2 LF
 * where "own" is the sender of the token.  Pure computation, no I/O.
 */
#include "auth.h"

#include <limits.h>
#include <string.h>


#include "buf.h"
#include "md6.h"
#include "sha3.h"

static const struct {
    aemp_auth_method_t m;
    const char *name;
} auth_names[] = {
    { AEMP_AUTH_HMAC_SHA3_512, "hmac_sha3_512" },
    { AEMP_AUTH_TLS_SHA3_512, "tls_sha3_512" },
    { AEMP_AUTH_HMAC_MD6_64_256, "hmac_md6_64_256" },
    { AEMP_AUTH_TLS_MD6_64_256, "tls_md6_64_256" },
    { AEMP_AUTH_TLS_ANON, "tls_anon" },
    { AEMP_AUTH_CLEARTEXT, "cleartext" },
};

#define N_AUTH_NAMES (sizeof auth_names / sizeof auth_names[0])

/* The wire name of m, or NULL for NONE and out-of-range values.  O(1). */
const char *aemp__auth_name(aemp_auth_method_t m)
{
    for (size_t i = 0; i < N_AUTH_NAMES; i++)
        if (auth_names[i].m == m)
            return auth_names[i].name;
    return NULL;
}

/* Map the len-byte wire name to a method (exact, case-sensitive match);
 * AEMP_AUTH_NONE if unknown.  O(1). */
aemp_auth_method_t aemp__auth_parse(const char *name, size_t len)
{
    if (!name)
        return AEMP_AUTH_NONE;
    for (size_t i = 0; i < N_AUTH_NAMES; i++)
        if (strlen(auth_names[i].name) == len && memcmp(auth_names[i].name, name, len) == 0)
            return auth_names[i].m;
    return AEMP_AUTH_NONE;
}

/* 1 for tls_sha3_512, tls_md6_64_256 and tls_anon, else 0.  O(1). */
int aemp__auth_needs_tls(aemp_auth_method_t m)
{
    return m == AEMP_AUTH_TLS_SHA3_512 || m == AEMP_AUTH_TLS_MD6_64_256
        || m == AEMP_AUTH_TLS_ANON;
}

/* 1 for hmac_sha3_512, hmac_md6_64_256 and cleartext, else 0.  O(1). */
int aemp__auth_needs_secret(aemp_auth_method_t m)
{
    return m == AEMP_AUTH_HMAC_SHA3_512 || m == AEMP_AUTH_HMAC_MD6_64_256
        || m == AEMP_AUTH_CLEARTEXT;
}

/* Write n bytes as lowercase hex plus NUL to out; returns 2n, or -1 if out
 * (outsize bytes) is too small.  O(n). */
static int put_hex(const uint8_t *p, size_t n, char *out, size_t outsize)
{
    static const char digits[] = "0123456789abcdef";
    if (outsize < 1 || n > (outsize - 1) / 2 || n > INT_MAX / 2)
        return -1;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
    return (int)(2 * n);
}

/* Append s and one LF to b. */
static void put_line(aemp_buf_t *b, const char *s)
{
    aemp__buf_puts(b, s);
    aemp__buf_putc(b, '\n');
}

/* Compute the token of method m that the owner of (own1, own2) sends; see
 * auth.h.  Allocates a temporary copy of the greeting text (freed before
 * returning).  O(length of the lines + secretlen). */
int aemp__auth_token(aemp_auth_method_t m, const uint8_t *secret, size_t secretlen,
                     const char *own1, const char *own2,
                     const char *peer1, const char *peer2,
                     char *out, size_t outsize)
{
    uint8_t md[AEMP_SHA3_512_BYTES];   /* the largest digest: MD6 is at most 64 bytes too */
    int ret = -1;

    if (!out || outsize < 1 || (secretlen > 0 && !secret))
        return -1;
    out[0] = 0;

    switch (m) {
    case AEMP_AUTH_TLS_ANON:
        return 0;
    case AEMP_AUTH_CLEARTEXT:
        return put_hex(secret, secretlen, out, outsize);
    case AEMP_AUTH_HMAC_SHA3_512:
    case AEMP_AUTH_TLS_SHA3_512:
    case AEMP_AUTH_HMAC_MD6_64_256:
    case AEMP_AUTH_TLS_MD6_64_256:
        break;
    default:
        return -1;
    }
    if (!own1 || !own2 || !peer1 || !peer2)
        return -1;

    aemp_buf_t text = AEMP_BUF_INIT;
    put_line(&text, own1);
    put_line(&text, own2);
    put_line(&text, peer1);
    put_line(&text, peer2);
    const uint8_t *t = aemp__buf_head(&text);
    size_t tlen = aemp__buf_used(&text);

    switch (m) {
    case AEMP_AUTH_HMAC_SHA3_512:
        /* RFC 2104 HMAC-SHA3-512 (block 72 bytes), key = secret, msg = text. */
        aemp__hmac_sha3_512(secret, secretlen, t, tlen, md);
        ret = put_hex(md, 64, out, outsize);
        break;
    case AEMP_AUTH_TLS_SHA3_512:
        aemp__sha3_512(t, tlen, md);
        ret = put_hex(md, 64, out, outsize);
        break;
    case AEMP_AUTH_HMAC_MD6_64_256: {
        /* As coded in AnyEvent::MP 1.30: hmac_md6_hex(MD6-256(secret), text,
         * 64, 256), i.e. the greeting text is the HMAC key and the hash of
         * the secret is the HMAC message. */
        uint8_t k[32];
        if (aemp__md6(256, 64, 0, NULL, 0, secret, secretlen, k) == 0) {
            aemp__hmac_md6(t, tlen, k, sizeof k, 64, 256, md);
            ret = put_hex(md, 32, out, outsize);
        }
        break;
    }
    case AEMP_AUTH_TLS_MD6_64_256:
        if (aemp__md6(256, 64, 0, NULL, 0, t, tlen, md) == 0)
            ret = put_hex(md, 32, out, outsize);
        break;
    default:
        break;
    }
    explicit_bzero(md, sizeof md);
    aemp__buf_free(&text);
    if (ret < 0)
        out[0] = 0;
    return ret;
}

/* Recompute the peer's token (peer lines first) and compare it with
 * token/tokenlen in constant time; a length mismatch, an unknown method, or
 * a secret-based method with an empty secret never matches.  Returns 1 on
 * match, else 0.  O(length of the lines + secretlen). */
int aemp__auth_verify(aemp_auth_method_t m, const uint8_t *secret, size_t secretlen,
                      const char *peer1, const char *peer2,
                      const char *own1, const char *own2,
                      const char *token, size_t tokenlen)
{
    char want[AEMP_AUTH_TOKEN_MAX];

    if (aemp__auth_needs_secret(m) && secretlen == 0)
        return 0;
    if (!token && tokenlen > 0)
        return 0;
    int n = aemp__auth_token(m, secret, secretlen, peer1, peer2, own1, own2,
                             want, sizeof want);
    if (n < 0 || (size_t)n != tokenlen)
        return 0;
    unsigned char diff = 0;   /* constant time: every byte is compared */
    for (int i = 0; i < n; i++)
        diff |= (unsigned char)(want[i] ^ token[i]);
    explicit_bzero(want, sizeof want);
    int ok = diff == 0;
    return ok;
}
