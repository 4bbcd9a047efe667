/* proto.c - sans-I/O core of the AEMP transport protocol (spec §8).
 *
 * One aemp_proto_t runs the symmetric handshake state machine of one side of
 * one connection:
 *
 *   LINE1 --greeting line 1--> LINE2 --line 2--> [TLS_WAIT --tls_ready-->]
 *   AUTH --peer's auth line--> DATA (frames) ; any failure --> ERROR (sticky)
 *
 * Everything the peer said is parsed here; bytes go in through the in buffer
 * and out through the out buffer, nothing else crosses the boundary (no
 * sockets, no clocks, no globals).  Lines before authentication are bounded
 * by AEMP_PROTO_MAX_LINE; data frames by cfg->max_frame (in frame.c).
 *
 * TLS note for the caller: when aemp__proto_next() returns
 * AEMP_PROTO_START_TLS, the in buffer has been consumed exactly up to the end
 * of the peer's line 2; any bytes still in it are already the peer's TLS
 * stream and must be taken out of it (consumed) and handed to the TLS layer.
 * After aemp__proto_tls_ready() the in buffer receives decrypted bytes only.
 */
#include "proto.h"

#include "nodeid.h"
#include "random.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The provider=... value of our greeting.  Kept in step with AEMP_VERSION by
 * hand: aemp.h cannot be included here (it pulls in ev.h). */
#define PROTO_PROVIDER "libaemp-0.1.0"

#define PROTO_NAME "aemp"
#define PROTO_VERSION 1

enum proto_state {
    ST_LINE1,     /* waiting for the peer's greeting line 1 */
    ST_LINE2,     /* waiting for the peer's nonce line */
    ST_TLS_WAIT,  /* START_TLS reported, waiting for aemp__proto_tls_ready() */
    ST_AUTH,      /* our auth line is queued, waiting for the peer's */
    ST_DATA,      /* authenticated: frames */
    ST_ERROR,     /* fatal, sticky */
};

typedef struct proto_kv {
    char *key;
    char *value;   /* unescaped; NULL for a pair without '=' */
} proto_kv_t;

struct aemp_proto {
    /* configuration (copied) */
    char *nodeid;
    uint8_t *secret;
    size_t secretlen;
    unsigned dialects;
    aemp_auth_method_t offer[AEMP_PROTO_MAX_METHODS];
    size_t n_offer;
    aemp_auth_method_t accept[AEMP_PROTO_MAX_METHODS];
    size_t n_accept;
    aemp_framing_t framings[4];
    size_t n_framings;
    int have_cert;
    size_t max_frame;
    char *protocol;          /* "aemp" or the extension (after a switch too) */
    char *extensions[AEMP_PROTO_MAX_EXT];
    char *own_key[2], *own_value[2];   /* extra pairs of our line 1 */
    size_t n_own;

    aemp_buf_t in, out;
    enum proto_state state;
    size_t scanned;          /* bytes at the head of `in` known to hold no LF */

    char *line[4];           /* 0,1 ours; 2,3 the peer's (no terminators) */
    char *peer_node;
    char *peer_accept;       /* raw comma lists from the peer's line 1 */
    char *peer_framings;
    proto_kv_t *kv;
    size_t n_kv;
    unsigned peer_dialect;

    int tls;
    int tls_client;
    aemp_auth_method_t send_auth, recv_auth;
    aemp_auth_method_t peer_method;   /* what the peer's auth line named, verified or not */
    aemp_framing_t send_framing, recv_framing;
    char *auth_line;         /* our auth line incl. LF until it is queued */
    int auth_queued;

    aemp_frame_reader_t reader;
    int reader_live;

    char *error;
};

/* ------------------------------------------------------------ defaults */

static const aemp_auth_method_t offer_both[] = {
    AEMP_AUTH_TLS_SHA3_512, AEMP_AUTH_HMAC_SHA3_512,
    AEMP_AUTH_TLS_MD6_64_256, AEMP_AUTH_HMAC_MD6_64_256,
};
static const aemp_auth_method_t accept_both[] = {
    AEMP_AUTH_TLS_SHA3_512, AEMP_AUTH_HMAC_SHA3_512,
    AEMP_AUTH_TLS_MD6_64_256, AEMP_AUTH_HMAC_MD6_64_256,
    AEMP_AUTH_TLS_ANON, AEMP_AUTH_CLEARTEXT,
};
static const aemp_auth_method_t offer_130[] = {
    AEMP_AUTH_TLS_MD6_64_256, AEMP_AUTH_HMAC_MD6_64_256,
};
static const aemp_auth_method_t accept_130[] = {
    AEMP_AUTH_TLS_MD6_64_256, AEMP_AUTH_HMAC_MD6_64_256,
    AEMP_AUTH_TLS_ANON, AEMP_AUTH_CLEARTEXT,
};
static const aemp_auth_method_t offer_202[] = {
    AEMP_AUTH_TLS_SHA3_512, AEMP_AUTH_HMAC_SHA3_512,
};
static const aemp_auth_method_t accept_202[] = {
    AEMP_AUTH_TLS_SHA3_512, AEMP_AUTH_HMAC_SHA3_512,
    AEMP_AUTH_TLS_ANON, AEMP_AUTH_CLEARTEXT,
};
static const aemp_framing_t framings_json[] = { AEMP_FRAMING_JSON };
static const aemp_framing_t framings_both[] = { AEMP_FRAMING_CBOR, AEMP_FRAMING_JSON };

#define COUNT(a) (sizeof (a) / sizeof (a)[0])

/* ------------------------------------------------------------ helpers */

/* malloc that aborts when out of memory (the buffer policy of buf.h). */
static void *xmalloc(size_t n);

/* 1 if we speak an extension protocol rather than plain "aemp". */
static int is_extension(const aemp_proto_t *p)
{
    return strcmp(p->protocol, PROTO_NAME) != 0;
}

/* "aemp-<word>" (Perl's /^aemp-\w+$/: letters, digits, '_'). */
static int extension_name_ok(const char *s, size_t n)
{
    if (n <= 5 || memcmp(s, PROTO_NAME "-", 5) != 0)
        return 0;
    for (size_t i = 5; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

static void *xmalloc(size_t n)
{
    void *d = malloc(n ? n : 1);
    if (!d) {
        fprintf(stderr, "aemp: out of memory\n");
        abort();
    }
    return d;
}

/* Copy n bytes into a new NUL-terminated string.  O(n). */
static char *dup_mem(const void *s, size_t n)
{
    char *d = xmalloc(n + 1);
    if (n)
        memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* printf into a new string (aborts when out of memory). */
static char *vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return dup_mem("(unformattable error)", 21);
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* Enter the ERROR state with the formatted reason, unless already there
 * (the first error wins). */
static void vfail(aemp_proto_t *p, const char *fmt, va_list ap)
{
    if (p->state == ST_ERROR)
        return;
    p->error = vfmt(fmt, ap);
    p->state = ST_ERROR;
}

static void fail(aemp_proto_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(aemp_proto_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, fmt, ap);
    va_end(ap);
}

static int has_method(const aemp_auth_method_t *v, size_t n, aemp_auth_method_t m)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == m)
            return 1;
    return 0;
}

static int has_framing(const aemp_framing_t *v, size_t n, aemp_framing_t f)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == f)
            return 1;
    return 0;
}

/* Append s to b with ';' escaped as %3b and '%' as %25 (greeting values). */
static void put_escaped(aemp_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == ';')
            aemp__buf_puts(b, "%3b");
        else if (*s == '%')
            aemp__buf_puts(b, "%25");
        else
            aemp__buf_putc(b, (uint8_t)*s);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reverse of put_escaped: every %XX (two hex digits) becomes that byte;
 * other '%' stay.  Returns a new string.  O(len). */
static char *unescape(const char *s, size_t len)
{
    char *d = xmalloc(len + 1);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len
            && (hi = hexval((unsigned char)s[i + 1])) >= 0
            && (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            d[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = 0;
    return d;
}

/* Perl's numeric value of a string: optional leading whitespace, then a
 * decimal number prefix (sign, digits, fraction, exponent); anything else
 * counts as 0.  Used for the version field and the tls value. */
static double perl_num(const char *s)
{
    if (!s)
        return 0;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    size_t n = 0;
    if (s[n] == '+' || s[n] == '-')
        n++;
    size_t digits = 0;
    while (isdigit((unsigned char)s[n]))
        n++, digits++;
    if (s[n] == '.') {
        n++;
        while (isdigit((unsigned char)s[n]))
            n++, digits++;
    }
    if (!digits)
        return 0;
    if (s[n] == 'e' || s[n] == 'E') {
        size_t e = n + 1;
        if (s[e] == '+' || s[e] == '-')
            e++;
        if (isdigit((unsigned char)s[e])) {
            while (isdigit((unsigned char)s[e]))
                e++;
            n = e;
        }
    }
    char tmp[64];
    if (n >= sizeof tmp)
        return 0;   /* absurdly long number: not 1 */
    memcpy(tmp, s, n);
    tmp[n] = 0;
    return strtod(tmp, NULL);
}

/* Join method names with ',' onto b. */
static void put_methods(aemp_buf_t *b, const aemp_auth_method_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            aemp__buf_putc(b, ',');
        aemp__buf_puts(b, aemp__auth_name(v[i]));
    }
}

/* Take the text of b as a new string and free b. */
static char *buf_take(aemp_buf_t *b)
{
    char *s = dup_mem(b->data ? (const char *)aemp__buf_head(b) : "", aemp__buf_used(b));
    aemp__buf_free(b);
    return s;
}

/* A line we send must not contain a line terminator. */
static int line_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

/* ------------------------------------------------------------ creation */

/* Build our greeting line 1 from the configuration (spec §8.2). */
static char *build_line1(const aemp_proto_t *p, const aemp_proto_cfg_t *cfg)
{
    aemp_buf_t b = AEMP_BUF_INIT;
    aemp__buf_puts(&b, p->protocol);
    aemp__buf_puts(&b, ";1;");
    aemp__buf_puts(&b, p->nodeid);
    aemp__buf_putc(&b, ';');
    put_methods(&b, p->accept, p->n_accept);
    aemp__buf_putc(&b, ';');
    for (size_t i = 0; i < p->n_framings; i++) {
        if (i)
            aemp__buf_putc(&b, ',');
        aemp__buf_puts(&b, aemp__framing_name(p->framings[i]));
    }
    for (size_t i = 0; i < p->n_own; i++) {
        aemp__buf_putc(&b, ';');
        aemp__buf_puts(&b, p->own_key[i]);
        aemp__buf_putc(&b, '=');
        put_escaped(&b, p->own_value[i]);
    }
    aemp__buf_puts(&b, ";provider=");
    put_escaped(&b, PROTO_PROVIDER);
    if (cfg->peeraddr) {
        aemp__buf_puts(&b, ";peeraddr=");
        put_escaped(&b, cfg->peeraddr);
    }
    if (p->have_cert)
        aemp__buf_puts(&b, ";tls=1.0");
    if ((p->dialects & AEMP_DIALECT_202) && !is_extension(p))   /* node protocol only: as Perl 2.02 */
        aemp__buf_puts(&b, ";mproto=1;gproto=1");
    return buf_take(&b);
}

/* Write the standard base64 of in[0..n), n a multiple of 3 (so no
 * padding), to out (room for 4 * n / 3 bytes); returns that length. */
static size_t base64(char *out, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = out;
    for (size_t i = 0; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = abc[w >> 18];
        *o++ = abc[(w >> 12) & 63];
        *o++ = abc[(w >> 6) & 63];
        *o++ = abc[w & 63];
    }
    return (size_t)(o - out);
}

/* Base64 (no line breaks) of AEMP_PROTO_NONCE_BYTES random bytes, or NULL if
 * the random generator fails. */
static char *build_nonce(void)
{
    _Static_assert(AEMP_PROTO_NONCE_BYTES % 3 == 0, "a nonce's base64 has no padding");
    unsigned char raw[AEMP_PROTO_NONCE_BYTES];
    char b64[4 * AEMP_PROTO_NONCE_BYTES / 3];
    if (aemp__random_bytes(raw, sizeof raw) < 0)
        return NULL;
    size_t n = base64(b64, raw, sizeof raw);
    explicit_bzero(raw, sizeof raw);
    return dup_mem(b64, n);
}

/* Create one side of a connection (see proto.h).  Returns NULL on a bad cfg
 * (missing/ill-formed node ID, a node ID or line override containing ';' /
 * CR / LF where not allowed, unknown methods or framings, too many entries,
 * a greeting longer than AEMP_PROTO_MAX_LINE) and if the random generator
 * fails.  O(size of cfg). */
aemp_proto_t *aemp__proto_new(const aemp_proto_cfg_t *cfg)
{
    if (!cfg || !cfg->nodeid || !*cfg->nodeid || strpbrk(cfg->nodeid, ";\r\n"))
        return NULL;
    if (cfg->secretlen && !cfg->secret)
        return NULL;
    if (cfg->dialects & ~AEMP_DIALECT_BOTH)
        return NULL;
    if (cfg->protocol && strcmp(cfg->protocol, PROTO_NAME)
        && !extension_name_ok(cfg->protocol, strlen(cfg->protocol)))
        return NULL;
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT && cfg->extensions[i]; i++)
        if (!extension_name_ok(cfg->extensions[i], strlen(cfg->extensions[i])))
            return NULL;
    if (cfg->n_extra > COUNT(cfg->extra_key))
        return NULL;
    for (size_t i = 0; i < cfg->n_extra; i++)
        if (!cfg->extra_key[i] || !*cfg->extra_key[i] || strpbrk(cfg->extra_key[i], ";=%\r\n")
            || !cfg->extra_value[i] || strpbrk(cfg->extra_value[i], "\r\n"))
            return NULL;
    if (cfg->n_offer > AEMP_PROTO_MAX_METHODS || cfg->n_accept > AEMP_PROTO_MAX_METHODS
        || cfg->n_framings > COUNT(cfg->framings))
        return NULL;
    for (size_t i = 0; i < cfg->n_offer; i++)
        if (!aemp__auth_name(cfg->auth_offer[i]))
            return NULL;
    for (size_t i = 0; i < cfg->n_accept; i++)
        if (!aemp__auth_name(cfg->auth_accept[i]))
            return NULL;
    for (size_t i = 0; i < cfg->n_framings; i++)
        if (cfg->framings[i] != AEMP_FRAMING_JSON && cfg->framings[i] != AEMP_FRAMING_CBOR)
            return NULL;
    if ((cfg->line1_override && !line_ok(cfg->line1_override))
        || (cfg->nonce_override && !line_ok(cfg->nonce_override)))
        return NULL;

    aemp_proto_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nodeid = dup_mem(cfg->nodeid, strlen(cfg->nodeid));
    if (cfg->secretlen) {
        p->secret = (uint8_t *)dup_mem(cfg->secret, cfg->secretlen);
        p->secretlen = cfg->secretlen;
    }
    p->dialects = cfg->dialects ? cfg->dialects : AEMP_DIALECT_BOTH;
    p->have_cert = !!cfg->have_cert;
    p->max_frame = cfg->max_frame;
    const char *proto = cfg->protocol ? cfg->protocol : PROTO_NAME;
    p->protocol = dup_mem(proto, strlen(proto));
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT && cfg->extensions[i]; i++)
        p->extensions[i] = dup_mem(cfg->extensions[i], strlen(cfg->extensions[i]));
    for (size_t i = 0; i < cfg->n_extra; i++) {
        p->own_key[i] = dup_mem(cfg->extra_key[i], strlen(cfg->extra_key[i]));
        p->own_value[i] = dup_mem(cfg->extra_value[i], strlen(cfg->extra_value[i]));
    }
    p->n_own = cfg->n_extra;

    const aemp_auth_method_t *doff, *dacc;
    const aemp_framing_t *dfr;
    size_t ndoff, ndacc, ndfr;
    if (p->dialects == AEMP_DIALECT_130) {
        doff = offer_130, ndoff = COUNT(offer_130);
        dacc = accept_130, ndacc = COUNT(accept_130);
        dfr = framings_json, ndfr = COUNT(framings_json);
    } else if (p->dialects == AEMP_DIALECT_202) {
        doff = offer_202, ndoff = COUNT(offer_202);
        dacc = accept_202, ndacc = COUNT(accept_202);
        dfr = framings_both, ndfr = COUNT(framings_both);
    } else {
        doff = offer_both, ndoff = COUNT(offer_both);
        dacc = accept_both, ndacc = COUNT(accept_both);
        dfr = framings_both, ndfr = COUNT(framings_both);
    }
    if (cfg->n_offer)
        doff = cfg->auth_offer, ndoff = cfg->n_offer;
    if (cfg->n_accept)
        dacc = cfg->auth_accept, ndacc = cfg->n_accept;
    if (cfg->n_framings)
        dfr = cfg->framings, ndfr = cfg->n_framings;
    memcpy(p->offer, doff, ndoff * sizeof *doff);
    p->n_offer = ndoff;
    memcpy(p->accept, dacc, ndacc * sizeof *dacc);
    p->n_accept = ndacc;
    memcpy(p->framings, dfr, ndfr * sizeof *dfr);
    p->n_framings = ndfr;

    p->line[0] = cfg->line1_override ? dup_mem(cfg->line1_override, strlen(cfg->line1_override))
                                     : build_line1(p, cfg);
    p->line[1] = cfg->nonce_override ? dup_mem(cfg->nonce_override, strlen(cfg->nonce_override))
                                     : build_nonce();
    if (!p->line[1] || strlen(p->line[0]) + 1 > AEMP_PROTO_MAX_LINE
        || strlen(p->line[1]) + 1 > AEMP_PROTO_MAX_LINE) {
        aemp__proto_free(p);
        return NULL;
    }
    aemp__buf_puts(&p->out, p->line[0]);
    aemp__buf_putc(&p->out, '\n');
    aemp__buf_puts(&p->out, p->line[1]);
    aemp__buf_putc(&p->out, '\n');
    p->state = ST_LINE1;
    return p;
}

/* Free everything (secret wiped).  NULL is fine. */
void aemp__proto_free(aemp_proto_t *p)
{
    if (!p)
        return;
    free(p->nodeid);
    free(p->protocol);
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT; i++)
        free(p->extensions[i]);
    for (size_t i = 0; i < p->n_own; i++) {
        free(p->own_key[i]);
        free(p->own_value[i]);
    }
    if (p->secret) {
        explicit_bzero(p->secret, p->secretlen);
        free(p->secret);
    }
    aemp__buf_free(&p->in);
    aemp__buf_free(&p->out);
    for (int i = 0; i < 4; i++)
        free(p->line[i]);
    free(p->peer_node);
    free(p->peer_accept);
    free(p->peer_framings);
    for (size_t i = 0; i < p->n_kv; i++) {
        free(p->kv[i].key);
        free(p->kv[i].value);
    }
    free(p->kv);
    if (p->auth_line) {
        explicit_bzero(p->auth_line, strlen(p->auth_line));
        free(p->auth_line);
    }
    if (p->reader_live)
        aemp__frame_reader_free(&p->reader);
    free(p->error);
    free(p);
}

/* The buffers: the caller appends received bytes to `in` and consumes what
 * it wrote from `out`. */
aemp_buf_t *aemp__proto_in(aemp_proto_t *p) { return &p->in; }

aemp_buf_t *aemp__proto_out(aemp_proto_t *p) { return &p->out; }

/* ------------------------------------------------------------ handshake */

/* Take the next complete handshake line out of `in`: returns 1 and a new
 * string in *line (LF and one trailing CR removed), 0 if no complete line is
 * buffered yet, -1 after failing (line too long or containing NUL).  Each
 * byte is scanned once however the input is split.  O(new bytes). */
static int take_line(aemp_proto_t *p, char **line)
{
    size_t n = aemp__buf_used(&p->in);
    if (p->scanned > n)
        p->scanned = 0;   /* the caller consumed input behind our back */
    /* an input buffer that never held bytes has no data: no pointer arithmetic on NULL */
    const uint8_t *h = n ? aemp__buf_head(&p->in) : NULL;
    const uint8_t *lf = n > p->scanned ? memchr(h + p->scanned, '\n', n - p->scanned) : NULL;
    if (!lf) {
        p->scanned = n;
        if (n >= AEMP_PROTO_MAX_LINE) {
            fail(p, "handshake line too long (more than %d bytes)", AEMP_PROTO_MAX_LINE);
            return -1;
        }
        return 0;
    }
    size_t len = (size_t)(lf - h);
    if (len + 1 > AEMP_PROTO_MAX_LINE) {
        fail(p, "handshake line too long (more than %d bytes)", AEMP_PROTO_MAX_LINE);
        return -1;
    }
    if (memchr(h, 0, len)) {
        fail(p, "handshake line contains a NUL byte");
        return -1;
    }
    size_t l = len;
    if (l && h[l - 1] == '\r')
        l--;
    *line = dup_mem(h, l);
    aemp__buf_consume(&p->in, len + 1);
    p->scanned = 0;
    return 1;
}

/* True if the comma list `list` names a method for which pred() holds. */
static int list_has(const char *list, int (*pred)(aemp_auth_method_t))
{
    const char *s = list;
    while (s && *s) {
        const char *c = strchr(s, ',');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        if (pred(aemp__auth_parse(s, n)))
            return 1;
        s = c ? c + 1 : NULL;
    }
    return 0;
}

static int is_md6(aemp_auth_method_t m)
{
    return m == AEMP_AUTH_HMAC_MD6_64_256 || m == AEMP_AUTH_TLS_MD6_64_256;
}

/* Parse the peer's line 1 and run checks 2-4 of spec §8.3.  Returns 0 if the
 * greeting is acceptable (GREETING is then reported), -1 after failing. */
static int parse_line1(aemp_proto_t *p, const char *line)
{
    /* fields are ';'-separated; empty fields count */
    const char *f[5];
    size_t fl[5];
    size_t nf = 0;
    const char *s = line;
    while (nf < 5) {
        const char *c = strchr(s, ';');
        f[nf] = s;
        fl[nf] = c ? (size_t)(c - s) : strlen(s);
        nf++;
        if (!c) {
            s = NULL;
            break;
        }
        s = c + 1;
    }
    /* s: start of the KEY=VALUE part, or NULL */
    /* learned even if later checks fail (spec §8.3), if it is a valid ID */
    char why[96];
    int bad_id = nf < 3 || aemp__nodeid_check(f[2], fl[2], why, sizeof why) < 0;
    if (!bad_id)
        p->peer_node = dup_mem(f[2], fl[2]);

    /* check 1: a plain "aemp" side switches to an extension the peer
     * names, if it is one we were given; check 2: the names must agree,
     * except that an extension side talks to a plain "aemp" acceptor */
    if (!is_extension(p) && extension_name_ok(f[0], fl[0])) {
        for (size_t i = 0; i < AEMP_PROTO_MAX_EXT && p->extensions[i]; i++) {
            if (strlen(p->extensions[i]) == fl[0] && !memcmp(p->extensions[i], f[0], fl[0])) {
                free(p->protocol);
                p->protocol = dup_mem(f[0], fl[0]);
                break;
            }
        }
    }
    int name_ok = (fl[0] == strlen(p->protocol) && !memcmp(f[0], p->protocol, fl[0]))
                  || (fl[0] == strlen(PROTO_NAME) && !memcmp(f[0], PROTO_NAME, fl[0]));
    if (nf < 5 || !name_ok) {
        fail(p, "unparsable greeting, expected '%s', got '%.*s'", p->protocol, (int)fl[0], f[0]);
        return -1;
    }
    char *version = dup_mem(f[1], fl[1]);
    if (perl_num(version) != PROTO_VERSION) {
        fail(p, "version mismatch (we: %d, they: %s)", PROTO_VERSION, version);
        free(version);
        return -1;
    }
    free(version);
    if (bad_id) {
        char shown[128];
        aemp__nodeid_escape(f[2], fl[2], shown, sizeof shown);
        fail(p, "invalid node ID '%s' in greeting: %s", shown, why);
        return -1;
    }
    if (!is_extension(p) && strcmp(p->peer_node, p->nodeid) == 0) {
        fail(p, "I refuse to talk to myself");
        return -1;
    }
    p->peer_accept = dup_mem(f[3], fl[3]);
    p->peer_framings = dup_mem(f[4], fl[4]);

    int has202 = 0;
    while (s) {
        const char *c = strchr(s, ';');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        size_t kl = eq ? (size_t)(eq - s) : n;
        if (kl) {
            proto_kv_t *nkv = realloc(p->kv, (p->n_kv + 1) * sizeof *p->kv);
            if (!nkv) {
                fprintf(stderr, "aemp: out of memory\n");
                abort();
            }
            p->kv = nkv;
            proto_kv_t *kv = &p->kv[p->n_kv++];
            kv->key = dup_mem(s, kl);
            kv->value = eq ? unescape(eq + 1, n - kl - 1) : NULL;
            if (!strcmp(kv->key, "mproto") || !strcmp(kv->key, "nproto")
                || !strcmp(kv->key, "gproto"))
                has202 = 1;
        }
        s = c ? c + 1 : NULL;
    }

    /* The peer's dialect: 2.02 if it announces a 2.02 node/global protocol.
     * A bilingual peer (one that also accepts MD6 methods, i.e. another
     * libaemp node) answers a 1.30-only node in 1.30, so for such a node it
     * counts as 1.30. */
    if (!has202)
        p->peer_dialect = AEMP_DIALECT_130;
    else if (p->dialects & AEMP_DIALECT_202)
        p->peer_dialect = AEMP_DIALECT_202;
    else if (list_has(p->peer_accept, is_md6))
        p->peer_dialect = AEMP_DIALECT_130;
    else
        p->peer_dialect = AEMP_DIALECT_202;
    return 0;
}

/* After the peer's line 2: echo check, TLS decision, choice of our auth
 * method and framing (spec §8.4, §8.5), dialect check, and computation of our
 * auth line.  Returns 0 or -1 after failing. */
static int after_line2(aemp_proto_t *p)
{
    if (strcmp(p->line[1], p->line[3]) == 0) {
        fail(p, "authentication error, echo attack?");
        return -1;
    }

    double tv = perl_num(aemp__proto_peer_value(p, "tls"));
    p->tls = p->have_cert && tv >= 1 && tv < 2;   /* Perl: int($tls) == 1 */
    p->tls_client = p->tls && strcmp(p->line[1], p->line[3]) < 0;

    aemp_auth_method_t m = AEMP_AUTH_NONE;
    for (const char *s = p->peer_accept; s && *s && m == AEMP_AUTH_NONE;) {
        const char *c = strchr(s, ',');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        aemp_auth_method_t x = aemp__auth_parse(s, n);
        if (x != AEMP_AUTH_NONE && has_method(p->offer, p->n_offer, x)
            && (!aemp__auth_needs_tls(x) || p->tls))
            m = x;
        s = c ? c + 1 : NULL;
    }
    if (m == AEMP_AUTH_NONE) {
        fail(p, "%s: no common auth type supported", p->peer_accept);
        return -1;
    }
    if (p->tls) {
        if (!aemp__auth_needs_tls(m)) {
            fail(p, "%s: fatal, selected unsupported snd auth method", aemp__auth_name(m));
            return -1;
        }
    } else if (p->secretlen) {
        if (m != AEMP_AUTH_HMAC_SHA3_512 && m != AEMP_AUTH_HMAC_MD6_64_256) {
            fail(p, "%s: fatal, selected unsupported snd auth method", aemp__auth_name(m));
            return -1;
        }
    } else {
        fail(p, "unable to handshake TLS and no shared secret configured");
        return -1;
    }

    aemp_framing_t fr = AEMP_FRAMING_NONE;
    for (const char *s = p->peer_framings; s && *s && fr == AEMP_FRAMING_NONE;) {
        const char *c = strchr(s, ',');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        aemp_framing_t x = aemp__framing_parse(s, n);
        if (x != AEMP_FRAMING_NONE && has_framing(p->framings, p->n_framings, x))
            fr = x;
        s = c ? c + 1 : NULL;
    }
    if (fr == AEMP_FRAMING_NONE) {
        fail(p, "%s: no common framing method supported", p->peer_framings);
        return -1;
    }

    if (!is_extension(p) && !(p->dialects & p->peer_dialect)) {
        fail(p, "peer speaks the %s dialect, which this node is configured not to speak",
             p->peer_dialect == AEMP_DIALECT_130 ? "1.30" : "2.02");
        return -1;
    }

    char token[AEMP_AUTH_TOKEN_MAX];
    int tl = aemp__auth_token(m, p->secret, p->secretlen, p->line[0], p->line[1],
                              p->line[2], p->line[3], token, sizeof token);
    if (tl < 0) {
        fail(p, "%s: cannot compute the auth token", aemp__auth_name(m));
        return -1;
    }
    aemp_buf_t b = AEMP_BUF_INIT;
    aemp__buf_puts(&b, aemp__auth_name(m));
    aemp__buf_putc(&b, ';');
    aemp__buf_append(&b, token, (size_t)tl);
    aemp__buf_putc(&b, ';');
    aemp__buf_puts(&b, aemp__framing_name(fr));
    aemp__buf_putc(&b, '\n');
    explicit_bzero(token, sizeof token);
    p->auth_line = buf_take(&b);
    p->send_auth = m;
    p->send_framing = fr;
    return 0;
}

/* Append our auth line to the out buffer (once). */
static void queue_auth(aemp_proto_t *p)
{
    if (p->auth_queued || !p->auth_line)
        return;
    aemp__buf_puts(&p->out, p->auth_line);
    explicit_bzero(p->auth_line, strlen(p->auth_line));
    free(p->auth_line);
    p->auth_line = NULL;
    p->auth_queued = 1;
}

/* Verify the peer's auth line "<method>;<token>;<framing>[;...]" (spec §8.5).
 * Returns 0 (data phase begins) or -1 after failing. */
static int check_auth(aemp_proto_t *p, const char *line)
{
    const char *f[3] = { line, "", "" };
    size_t fl[3] = { strlen(line), 0, 0 };
    const char *s = line;
    for (int i = 0; i < 3; i++) {
        const char *c = strchr(s, ';');
        f[i] = s;
        fl[i] = c ? (size_t)(c - s) : strlen(s);
        if (!c)
            break;
        s = c + 1;
    }

    aemp_auth_method_t m = aemp__auth_parse(f[0], fl[0]);
    p->peer_method = m;
    if (m == AEMP_AUTH_NONE || !has_method(p->accept, p->n_accept, m)) {
        fail(p, "%.*s: fatal, selected unsupported rcv auth method", (int)fl[0], f[0]);
        return -1;
    }
    if (aemp__auth_needs_tls(m) && !p->tls) {
        fail(p, "%s: TLS auth method used on a plain connection", aemp__auth_name(m));
        return -1;
    }
    if (!aemp__auth_verify(m, p->secret, p->secretlen, p->line[2], p->line[3],
                           p->line[0], p->line[1], f[1], fl[1])) {
        fail(p, "authentication failure/shared secret mismatch");
        return -1;
    }
    aemp_framing_t fr = aemp__framing_parse(f[2], fl[2]);
    if (fr != AEMP_FRAMING_JSON && fr != AEMP_FRAMING_CBOR) {
        fail(p, "%.*s: unusable remote framing", (int)fl[2], f[2]);
        return -1;
    }
    p->recv_auth = m;   /* AEMP_AUTH_TLS_ANON: the peer is untrusted */
    p->recv_framing = fr;
    aemp__frame_reader_init(&p->reader, fr, p->max_frame);
    p->reader_live = 1;
    return 0;
}

/* Process buffered input until one event happens (see proto.h).  Each input
 * byte of the handshake is scanned once and each frame decoded once, so the
 * cost is linear in the input however it is split. */
aemp_proto_event_t aemp__proto_next(aemp_proto_t *p, aemp_frame_t *frame)
{
    char *line = NULL;
    int r;

    if (frame && p->state != ST_DATA)   /* (aemp__frame_next fills it) */
        memset(frame, 0, sizeof *frame);
    for (;;) {
        switch (p->state) {
        case ST_ERROR:
            return AEMP_PROTO_ERROR;

        case ST_LINE1:
            if ((r = take_line(p, &line)) <= 0)
                return r < 0 ? AEMP_PROTO_ERROR : AEMP_PROTO_NEED_MORE;
            p->line[2] = line;
            if (parse_line1(p, line) < 0)
                return AEMP_PROTO_ERROR;
            p->state = ST_LINE2;
            return AEMP_PROTO_GREETING;

        case ST_LINE2:
            if ((r = take_line(p, &line)) <= 0)
                return r < 0 ? AEMP_PROTO_ERROR : AEMP_PROTO_NEED_MORE;
            p->line[3] = line;
            if (after_line2(p) < 0)
                return AEMP_PROTO_ERROR;
            if (p->tls) {
                p->state = ST_TLS_WAIT;
                return AEMP_PROTO_START_TLS;
            }
            queue_auth(p);
            p->state = ST_AUTH;
            break;

        case ST_TLS_WAIT:
            return AEMP_PROTO_NEED_MORE;

        case ST_AUTH:
            if ((r = take_line(p, &line)) <= 0)
                return r < 0 ? AEMP_PROTO_ERROR : AEMP_PROTO_NEED_MORE;
            r = check_auth(p, line);
            free(line);
            if (r < 0)
                return AEMP_PROTO_ERROR;
            p->state = ST_DATA;
            return AEMP_PROTO_AUTHED;

        case ST_DATA: {
            /* straight into the caller's frame: a copy of a frame just
             * written field by field would stall on store forwarding */
            aemp_frame_t own, *f = frame ? frame : &own;
            r = aemp__frame_next(&p->reader, &p->in, f);
            if (r == 0)
                return AEMP_PROTO_NEED_MORE;
            if (r < 0) {
                fail(p, "%s", p->reader.error[0] ? p->reader.error : "malformed frame");
                return AEMP_PROTO_ERROR;
            }
            if (!frame)
                aemp_msg_unref(own.msg);
            return AEMP_PROTO_FRAME;
        }
        }
    }
}

/* Queue our auth line once the TLS session is up (only in the state after
 * START_TLS; ignored otherwise). */
void aemp__proto_tls_ready(aemp_proto_t *p)
{
    if (p->state != ST_TLS_WAIT)
        return;
    queue_auth(p);
    p->state = ST_AUTH;
}

/* Enter the ERROR state with a printf-style reason; the first error wins. */
void aemp__proto_fail(aemp_proto_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, fmt, ap);
    va_end(ap);
}

/* Encode [dest, msg...] in our send framing onto the out buffer.  Calling it
 * before our auth line is queued is a caller bug (asserted; ignored without
 * assertions).  O(size of msg). */
void aemp__proto_send(aemp_proto_t *p, const char *dest, size_t destlen, const aemp_msg_t *msg)
{
    assert(p->auth_queued);
    if (!p->auth_queued)
        return;
    aemp__frame_encode(p->send_framing, &p->out, dest, destlen, msg);
}

int aemp__proto_send_fmt(aemp_proto_t *p, const char *dest, size_t destlen, const char *fmt, va_list ap)
{
    assert(p->auth_queued);
    if (!p->auth_queued)
        return -1;
    return aemp__frame_encode_fmt(p->send_framing, &p->out, dest, destlen, fmt, ap);
}

/* See proto.h.  O(len). */
void aemp__proto_send_encoded(aemp_proto_t *p, const void *bytes, size_t len)
{
    assert(p->auth_queued);
    if (!p->auth_queued)
        return;
    aemp__buf_append(&p->out, bytes, len);
}

/* ------------------------------------------------------------ accessors */

/* See proto.h; all O(1) except aemp__proto_peer_value. */

const char *aemp__proto_error(const aemp_proto_t *p) { return p->error; }

const char *aemp__proto_peer_node(const aemp_proto_t *p) { return p->peer_node; }

/* The unescaped value of the peer's greeting key (the last one if repeated);
 * NULL if absent or given without '='.  O(number of pairs). */
const char *aemp__proto_peer_value(const aemp_proto_t *p, const char *key)
{
    for (size_t i = p->n_kv; i-- > 0;)
        if (strcmp(p->kv[i].key, key) == 0)
            return p->kv[i].value;
    return NULL;
}

unsigned aemp__proto_peer_dialect(const aemp_proto_t *p) { return p->peer_dialect; }

int aemp__proto_tls(const aemp_proto_t *p) { return p->tls; }

int aemp__proto_tls_client(const aemp_proto_t *p) { return p->tls_client; }

aemp_auth_method_t aemp__proto_send_auth(const aemp_proto_t *p) { return p->send_auth; }

aemp_auth_method_t aemp__proto_recv_auth(const aemp_proto_t *p) { return p->recv_auth; }
aemp_auth_method_t aemp__proto_peer_method(const aemp_proto_t *p) { return p->peer_method; }

aemp_framing_t aemp__proto_send_framing(const aemp_proto_t *p) { return p->send_framing; }

aemp_framing_t aemp__proto_recv_framing(const aemp_proto_t *p) { return p->recv_framing; }

const char *aemp__proto_line(const aemp_proto_t *p, int which)
{
    return which >= 0 && which < 4 ? p->line[which] : NULL;
}

const char *aemp__proto_protocol(const aemp_proto_t *p) { return p->protocol; }

const char *aemp__proto_own_value(const aemp_proto_t *p, const char *key)
{
    for (size_t i = 0; i < p->n_own; i++)
        if (strcmp(p->own_key[i], key) == 0)
            return p->own_value[i];
    return NULL;
}
