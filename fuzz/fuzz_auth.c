/* fuzz_auth.c - libFuzzer target for the auth line: its parsing in
 * src/proto.c and the methods of src/auth.c behind it.
 *
 * Input: byte 0 = configuration, then the peer's auth line up to the
 * first LF, then optionally "secret LF own1 LF own2 LF peer1 LF peer2" for
 * the direct checks of auth.c (missing parts: the pair's secret and lines).
 * Byte 0: bits 0-1 our dialects, bits 2-3 the peer's (default, 1.30, 2.02,
 * both), bit 4 we have no secret, bit 5 both sides have a certificate (the
 * TLS methods).
 *
 * 1. A proto object ("a") reads a real peer's greeting ("b", built by
 *    proto.c with the same secret) and then the auth line of the input.
 *    A token field that is exactly "*" is replaced with the right token
 *    for the method the line names, so that the fuzzer gets past the HMAC
 *    and explores the method and framing fields.  Property: the line is
 *    accepted exactly when the method is one we advertise, a TLS method
 *    comes over TLS, aemp__auth_verify accepts the token and the framing
 *    is json or cbor; then the negotiated values are those of the line.
 * 2. Names and parsing agree for every method value (and the invalid ones
 *    around them), and every valid method needs either TLS or a secret.
 *    For the method the line names (else one picked by byte 0 bits 6-7:
 *    1-3 a hash method, 0 an invalid value), with the secret and lines of
 *    the input: a token has the length and lowercase hex of its method; it
 *    verifies, and a token with one character changed or one character
 *    short does not; a token depends on which side sends it (no
 *    reflection).
 * A violation aborts.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto_pair.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message about a violated property of auth.c. */
static void auth_violation(const char *what, aemp_auth_method_t m)
{
    fprintf(stderr, "auth property violated: %s (method %d, %s)\n", what, (int)m,
            aemp__auth_name(m) ? aemp__auth_name(m) : "invalid");
    abort();
}

/* The ';'-separated fields 0-2 of an auth line as check_auth sees them
 * (the last one ends at the next ';'). */
typedef struct fields {
    const char *f[3];
    size_t n[3];
} fields_t;

static fields_t split3(const char *s, size_t len)
{
    fields_t r = { { s + len, s + len, s + len }, { 0, 0, 0 } };
    const char *end = s + len;
    for (int i = 0; i < 3; i++) {
        const char *c = memchr(s, ';', (size_t)(end - s));
        r.f[i] = s;
        r.n[i] = c ? (size_t)(c - s) : (size_t)(end - s);
        if (!c)
            break;
        s = c + 1;
    }
    return r;
}

/* True if method m is in the comma list of field 3 of greeting line 1. */
static int advertised(const char *line1, aemp_auth_method_t m)
{
    const char *s = line1;
    for (int i = 0; i < 3 && s; i++) {
        s = strchr(s, ';');
        s = s ? s + 1 : NULL;
    }
    while (s && *s && *s != ';') {
        size_t n = strcspn(s, ",;");
        if (aemp__auth_parse(s, n) == m)
            return 1;
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

/* Part 1: the auth line `line` (len bytes, no LF) fed to a side that has
 * read a real peer's greeting. */
static void check_line(uint8_t cfgbits, const char *line, size_t len)
{
    const char *secret = cfgbits & 0x10 ? NULL : PP_SECRET;
    int cert = !!(cfgbits & 0x20);
    aemp_proto_cfg_t ca = pp_cfg("a", secret, pp_dialects(cfgbits), cert, 0);
    ca.nonce_override = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh";
    aemp_proto_cfg_t cb = pp_cfg("b", PP_SECRET, pp_dialects(cfgbits >> 2), cert, 0);
    cb.nonce_override = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi";
    aemp_proto_t *a = aemp__proto_new(&ca), *b = aemp__proto_new(&cb);
    if (!a || !b)
        abort();
    pp_seen_t seen = { 0 };
    pp_move(b, a, 0);   /* b's greeting */
    if (pp_run(a, &seen, NULL) != AEMP_PROTO_NEED_MORE)
        goto out;       /* refused before the auth line: not this target's concern */
    if (!seen.greeting)
        pp_violation("a whole greeting gives GREETING", a);

    /* the line as sent: "*" as token becomes the right one */
    aemp_buf_t sent = AEMP_BUF_INIT;
    fields_t fl = split3(line, len);
    aemp_auth_method_t m = aemp__auth_parse(fl.f[0], fl.n[0]);
    char token[AEMP_AUTH_TOKEN_MAX];
    int tl = -1;
    if (fl.n[1] == 1 && fl.f[1][0] == '*' && fl.f[1] > line)
        tl = aemp__auth_token(m, (const uint8_t *)secret, secret ? strlen(secret) : 0,
                              aemp__proto_line(a, 2), aemp__proto_line(a, 3),
                              aemp__proto_line(a, 0), aemp__proto_line(a, 1), token,
                              sizeof token);
    if (tl >= 0) {
        aemp__buf_append(&sent, line, (size_t)(fl.f[1] - line));
        aemp__buf_append(&sent, token, (size_t)tl);
        aemp__buf_append(&sent, fl.f[1] + 1, len - (size_t)(fl.f[1] + 1 - line));
    } else {
        aemp__buf_append(&sent, line, len);
    }
    aemp__buf_putc(&sent, '\n');
    aemp__buf_append(aemp__proto_in(a), aemp__buf_head(&sent), aemp__buf_used(&sent));

    /* what proto.c must decide */
    const char *s = (const char *)aemp__buf_head(&sent);
    size_t n = aemp__buf_used(&sent) - 1;
    int ok = n + 1 <= AEMP_PROTO_MAX_LINE && !memchr(s, 0, n);
    if (n && s[n - 1] == '\r')
        n--;
    fl = split3(s, n);
    m = aemp__auth_parse(fl.f[0], fl.n[0]);
    aemp_framing_t fr = aemp__framing_parse(fl.f[2], fl.n[2]);
    ok = ok && m != AEMP_AUTH_NONE && advertised(aemp__proto_line(a, 0), m)
        && (!aemp__auth_needs_tls(m) || aemp__proto_tls(a))
        && aemp__auth_verify(m, (const uint8_t *)secret, secret ? strlen(secret) : 0,
                             aemp__proto_line(a, 2), aemp__proto_line(a, 3),
                             aemp__proto_line(a, 0), aemp__proto_line(a, 1), fl.f[1], fl.n[1])
        && (fr == AEMP_FRAMING_JSON || fr == AEMP_FRAMING_CBOR);

    aemp_proto_event_t ev = pp_run(a, &seen, NULL);
    if (ok != seen.authed || (ev == AEMP_PROTO_ERROR) == ok)
        pp_violation(ok ? "a valid auth line is accepted" : "an invalid auth line is refused", a);
    if (ok && (aemp__proto_recv_auth(a) != m || aemp__proto_recv_framing(a) != fr))
        pp_violation("the negotiated method and framing are the line's", a);
    aemp__buf_free(&sent);
out:
    aemp__proto_free(a);
    aemp__proto_free(b);
}

/* Part 2a: names, parsing and requirements of every method value (and the
 * invalid ones around them); name/namelen is field 0 of the input line. */
static void check_names(const char *name, size_t namelen)
{
    aemp_auth_method_t parsed = aemp__auth_parse(name, namelen);
    if (parsed != AEMP_AUTH_NONE
        && (strlen(aemp__auth_name(parsed)) != namelen
            || memcmp(aemp__auth_name(parsed), name, namelen)))
        auth_violation("a parsed name is exactly the method's name", parsed);
    for (int i = AEMP_AUTH_NONE; i <= AEMP_AUTH_CLEARTEXT + 1; i++) {
        aemp_auth_method_t m = (aemp_auth_method_t)i;
        const char *nm = aemp__auth_name(m);
        int valid = i > AEMP_AUTH_NONE && i <= AEMP_AUTH_CLEARTEXT;
        if (!nm != !valid || (nm && aemp__auth_parse(nm, strlen(nm)) != m))
            auth_violation("every valid method has a name that parses back to it", m);
        if (valid && aemp__auth_needs_tls(m) == aemp__auth_needs_secret(m))
            auth_violation("a method needs either TLS or a secret", m);
    }
}

/* Part 2b: the tokens of method m (any value) with the given secret and
 * lines. */
static void check_tokens(aemp_auth_method_t m, const uint8_t *secret, size_t slen,
                         const char *o1, const char *o2, const char *p1, const char *p2)
{
    char tok[AEMP_AUTH_TOKEN_MAX], other[AEMP_AUTH_TOKEN_MAX];
    int n = aemp__auth_token(m, secret, slen, o1, o2, p1, p2, tok, sizeof tok);
    int want;
    switch (m) {
    case AEMP_AUTH_HMAC_SHA3_512:
    case AEMP_AUTH_TLS_SHA3_512:
        want = 128;
        break;
    case AEMP_AUTH_HMAC_MD6_64_256:
    case AEMP_AUTH_TLS_MD6_64_256:
        want = 64;
        break;
    case AEMP_AUTH_TLS_ANON:
        want = 0;
        break;
    case AEMP_AUTH_CLEARTEXT:
        want = 2 * slen + 1 <= sizeof tok ? (int)(2 * slen) : -1;
        break;
    default:
        want = -1;
    }
    if (n != want || (n >= 0 && strlen(tok) != (size_t)n)
        || strspn(tok, "0123456789abcdef") != (n > 0 ? (size_t)n : 0))
        auth_violation("a token has its method's length in lowercase hex", m);
    if (n < 0)
        return;
    if (m == AEMP_AUTH_CLEARTEXT)
        for (size_t k = 0; k < slen; k++)
            if (tok[2 * k] != "0123456789abcdef"[secret[k] >> 4]
                || tok[2 * k + 1] != "0123456789abcdef"[secret[k] & 15])
                auth_violation("the cleartext token is the secret in hex", m);

    int usable = !aemp__auth_needs_secret(m) || slen > 0;
    if (aemp__auth_verify(m, secret, slen, o1, o2, p1, p2, tok, (size_t)n) != usable)
        auth_violation("a token verifies (with a secret where the method needs one)", m);
    if (n == 0)
        return;
    if (aemp__auth_verify(m, secret, slen, o1, o2, p1, p2, tok, (size_t)n - 1))
        auth_violation("a token one character short does not verify", m);
    size_t at = (size_t)(slen ? secret[0] : 0) % (size_t)n;
    tok[at] = tok[at] == '0' ? '1' : '0';
    if (aemp__auth_verify(m, secret, slen, o1, o2, p1, p2, tok, (size_t)n))
        auth_violation("a token with one character changed does not verify", m);
    tok[at] = tok[at] == '0' ? '1' : '0';
    if (m != AEMP_AUTH_CLEARTEXT && (strcmp(o1, p1) || strcmp(o2, p2))) {
        if (aemp__auth_token(m, secret, slen, p1, p2, o1, o2, other, sizeof other) != n
            || !strcmp(tok, other))
            auth_violation("the token depends on which side sends it", m);
    }
}

/* The next LF-terminated part of [*p, end) as a new string (NULs cut it
 * short), or NULL at the end; *p moves past it. */
static char *next_part(const uint8_t **p, const uint8_t *end, size_t *len)
{
    if (*p >= end)
        return NULL;
    const uint8_t *lf = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = lf ? (size_t)(lf - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = 0;
    *len = n;
    *p += lf ? n + 1 : n;
    return s;
}

/* One input: both parts.  Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1, *end = data + size;
    size_t linelen = 0, slen = 0, k;
    char *line = next_part(&p, end, &linelen);
    if (!line)
        line = calloc(1, 1);
    check_line(data[0], line, linelen);

    static const char *const dflt[4] = {
        "aemp;1;a;hmac_sha3_512,hmac_md6_64_256;cbor,json;provider=x",
        "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh",
        "aemp;1;b;hmac_sha3_512,hmac_md6_64_256;cbor,json;provider=y",
        "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi",
    };
    char *sec = next_part(&p, end, &slen);
    char *lines[4];
    for (int i = 0; i < 4; i++)
        lines[i] = next_part(&p, end, &k);
    fields_t fl = split3(line, linelen);
    check_names(fl.f[0], fl.n[0]);
    /* the tokens of the method the line names, else of a hash method (or an
     * invalid value) chosen by bits 6-7 of byte 0: hashing is the cost */
    aemp_auth_method_t m = aemp__auth_parse(fl.f[0], fl.n[0]);
    if (m == AEMP_AUTH_NONE)
        m = (aemp_auth_method_t)((data[0] >> 6) ? data[0] >> 6 : AEMP_AUTH_CLEARTEXT + 1);
    check_tokens(m, sec ? (const uint8_t *)sec : (const uint8_t *)PP_SECRET,
                 sec ? slen : strlen(PP_SECRET), lines[0] ? lines[0] : dflt[0],
                 lines[1] ? lines[1] : dflt[1], lines[2] ? lines[2] : dflt[2],
                 lines[3] ? lines[3] : dflt[3]);
    for (int i = 0; i < 4; i++)
        free(lines[i]);
    free(sec);
    free(line);
    return 0;
}
