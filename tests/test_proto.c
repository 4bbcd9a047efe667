/* Tests for the sans-I/O transport protocol core (spec §8): in-memory pairs
 * of every dialect combination, byte-exact replays of the captured Perl
 * sessions of both dialects, and every handshake failure with its text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "proto.h"
#include "nodeid.h"

#ifndef AEMP_VECTORS_DIR
#define AEMP_VECTORS_DIR "tests/vectors"
#endif

#define LINE_TOO_LONG "handshake line too long (more than 4096 bytes)"
#define MISMATCH "authentication failure/shared secret mismatch"

/* ------------------------------------------------------------ helpers */

static aemp_proto_cfg_t cfg_make(const char *node, const char *secret, unsigned dialects)
{
    aemp_proto_cfg_t c;
    memset(&c, 0, sizeof c);
    c.nodeid = node;
    c.secret = (const uint8_t *)secret;
    c.secretlen = secret ? strlen(secret) : 0;
    c.dialects = dialects;
    return c;
}

static aemp_proto_t *mk(const char *node, const char *secret, unsigned dialects)
{
    aemp_proto_cfg_t c = cfg_make(node, secret, dialects);
    aemp_proto_t *p = aemp__proto_new(&c);
    assert_non_null(p);
    return p;
}

/* Read a whole file below the vectors directory. */
static uint8_t *slurp(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", AEMP_VECTORS_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    aemp_buf_t b = AEMP_BUF_INIT;
    uint8_t tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        aemp__buf_append(&b, tmp, n);
    fclose(f);
    *len = b.len;
    aemp__buf_putc(&b, 0);   /* NUL-terminate for text use */
    return b.data;
}

/* 1 if a and b are the same value, a text string and a byte string of the
 * same bytes counting as the same (which kind a Perl peer sends is its
 * business). */
static int same_value(const aemp_val_t *a, const aemp_val_t *b)
{
    aemp_type_t ta = aemp_val_type(a), tb = aemp_val_type(b);
    if ((ta == AEMP_T_STR || ta == AEMP_T_BYTES) && (tb == AEMP_T_STR || tb == AEMP_T_BYTES)) {
        size_t la, lb;
        const char *sa = aemp_val_str(a, &la), *sb = aemp_val_str(b, &lb);
        return la == lb && !memcmp(sa, sb, la);
    }
    if (ta != tb || aemp_val_len(a) != aemp_val_len(b))
        return 0;
    if (ta == AEMP_T_ARRAY || ta == AEMP_T_MAP) {
        for (size_t i = 0; i < aemp_val_len(a); i++) {
            if (ta == AEMP_T_ARRAY && !same_value(aemp_val_at(a, i), aemp_val_at(b, i)))
                return 0;
            if (ta == AEMP_T_MAP && (!same_value(aemp_val_key(a, i), aemp_val_key(b, i)) ||
                                     !same_value(aemp_val_value(a, i), aemp_val_value(b, i))))
                return 0;
        }
        return 1;
    }
    return aemp_val_equal(a, b);
}

/* Fail unless frame (a whole frame) is `want` (consumed) in the sense of
 * same_value. */
static void assert_frame(const aemp_msg_t *frame, aemp_msg_t *want)
{
    assert_non_null(frame);
    assert_non_null(want);
    if (!same_value(aemp_msg_root(frame), aemp_msg_root(want))) {
        char *g = aemp_val_text(aemp_msg_root(frame)), *w = aemp_val_text(aemp_msg_root(want));
        fail_msg("frame %s, want %s", g, w);
    }
    aemp_msg_unref(want);
}

/* One side of an in-memory connection and what it has seen. */
typedef struct side {
    aemp_proto_t *p;
    int greeting, start_tls, authed, error;
    int auto_tls;      /* call tls_ready right after START_TLS (pass-through "TLS") */
    aemp_msg_t *frames[64];  /* received frames, whole: [dest, msg...] */
    size_t nframes;          /* how many were received (only 64 kept) */
} side_t;

static void side_init(side_t *s, const aemp_proto_cfg_t *c)
{
    memset(s, 0, sizeof *s);
    s->p = aemp__proto_new(c);
    assert_non_null(s->p);
    s->auto_tls = 1;
}

static void side_free(side_t *s)
{
    aemp__proto_free(s->p);
    for (size_t i = 0; i < s->nframes && i < 64; i++)
        aemp_msg_unref(s->frames[i]);
}

/* Handle events until NEED_MORE or ERROR; returns how many were handled. */
static int drive(side_t *s)
{
    int n = 0;
    for (;;) {
        aemp_frame_t f;
        switch (aemp__proto_next(s->p, &f)) {
        case AEMP_PROTO_NEED_MORE:
            assert_null(f.msg);
            return n;
        case AEMP_PROTO_ERROR:
            assert_null(f.msg);
            s->error = 1;
            return n;
        case AEMP_PROTO_GREETING:
            s->greeting++;
            break;
        case AEMP_PROTO_START_TLS:
            s->start_tls++;
            if (s->auto_tls)
                aemp__proto_tls_ready(s->p);
            break;
        case AEMP_PROTO_AUTHED:
            s->authed++;
            break;
        case AEMP_PROTO_FRAME:
            assert_non_null(f.msg);
            assert_true(f.dest || f.empty);
            if (s->nframes < 64)
                s->frames[s->nframes] = f.empty ? aemp_msg_empty()
                                                : aemp__msg_prepend_str(f.dest, f.destlen, f.msg);
            s->nframes++;
            aemp_msg_unref(f.msg);
            break;
        }
        n++;
    }
}

/* Move up to chunk bytes (0 = all) from one side's out to the other's in. */
static size_t move(aemp_proto_t *from, aemp_proto_t *to, size_t chunk)
{
    aemp_buf_t *o = aemp__proto_out(from);
    size_t n = aemp__buf_used(o);
    if (chunk && n > chunk)
        n = chunk;
    if (n) {
        aemp__buf_append(aemp__proto_in(to), aemp__buf_head(o), n);
        aemp__buf_consume(o, n);
    }
    return n;
}

/* Pump bytes both ways and handle events until nothing changes. */
static void run_pair(side_t *a, side_t *b, size_t chunk)
{
    for (long guard = 0; guard < 10000000; guard++) {
        size_t m = move(a->p, b->p, chunk) + move(b->p, a->p, chunk);
        int e = drive(a) + drive(b);
        if (!m && !e)
            return;
    }
    fail_msg("pair does not settle");
}

/* Handle events of a lone instance; returns the last event. */
static aemp_proto_event_t settle(aemp_proto_t *p, int *frames)
{
    for (;;) {
        aemp_frame_t f;
        aemp_proto_event_t ev = aemp__proto_next(p, &f);
        if (ev == AEMP_PROTO_FRAME) {
            aemp_msg_unref(f.msg);
            if (frames)
                ++*frames;
            continue;
        }
        if (ev == AEMP_PROTO_NEED_MORE || ev == AEMP_PROTO_ERROR)
            return ev;
        if (ev == AEMP_PROTO_START_TLS)
            return ev;
    }
}

static void feed(aemp_proto_t *p, const char *s)
{
    aemp__buf_puts(aemp__proto_in(p), s);
}

static aemp_proto_event_t next_ev(aemp_proto_t *p)
{
    aemp_frame_t f;
    aemp_proto_event_t ev = aemp__proto_next(p, &f);
    aemp_msg_unref(f.msg);
    return ev;
}

static void expect_error(aemp_proto_t *p, const char *msg)
{
    assert_int_equal(settle(p, NULL), AEMP_PROTO_ERROR);
    assert_string_equal(aemp__proto_error(p), msg);
    /* sticky */
    assert_int_equal(next_ev(p), AEMP_PROTO_ERROR);
    assert_string_equal(aemp__proto_error(p), msg);
}

/* The message each side sends after authentication, and its frame. */
static void exchange_frames(side_t *a, side_t *b, size_t chunk)
{
    aemp_msg_t *m1 = aemp_msgf("si{s:[bnf]}s", "hello", 42, "k", 1, 2.5, "ünï");
    aemp_msg_t *m2 = aemp_msgf("s[i[ii]]i", "world", 1, 2, 3, -7);
    aemp__proto_send(a->p, "portb", 5, m1);
    aemp__proto_send(a->p, "", 0, m2);
    aemp__proto_send(b->p, "porta", 5, m2);
    run_pair(a, b, chunk);
    assert_false(a->error);
    assert_false(b->error);
    assert_int_equal(b->nframes, 2);
    assert_int_equal(a->nframes, 1);
    /* exactly the values sent, whatever the framing */
    aemp_msg_t *want = aemp_msgf("ssi{s:[bnf]}s", "portb", "hello", 42, "k", 1, 2.5, "ünï");
    assert_true(aemp_val_equal(aemp_msg_root(b->frames[0]), aemp_msg_root(want)));
    aemp_msg_unref(want);
    want = aemp_msgf("ss[i[ii]]i", "", "world", 1, 2, 3, -7);
    assert_true(aemp_val_equal(aemp_msg_root(b->frames[1]), aemp_msg_root(want)));
    aemp_msg_unref(want);
    want = aemp_msgf("ss[i[ii]]i", "porta", "world", 1, 2, 3, -7);
    assert_true(aemp_val_equal(aemp_msg_root(a->frames[0]), aemp_msg_root(want)));
    aemp_msg_unref(want);
    aemp_msg_unref(m1);
    aemp_msg_unref(m2);
}

/* Connect a and b, check the negotiated methods, exchange frames. */
static void pair_ok(const aemp_proto_cfg_t *ca, const aemp_proto_cfg_t *cb,
                    aemp_auth_method_t auth_a, aemp_framing_t fr_a,
                    aemp_auth_method_t auth_b, aemp_framing_t fr_b,
                    unsigned dialect_seen_by_a, unsigned dialect_seen_by_b, size_t chunk)
{
    side_t a, b;
    side_init(&a, ca);
    side_init(&b, cb);
    run_pair(&a, &b, chunk);
    if (a.error || b.error)
        fail_msg("handshake failed: a: %s / b: %s", aemp__proto_error(a.p) ? aemp__proto_error(a.p) : "-",
                 aemp__proto_error(b.p) ? aemp__proto_error(b.p) : "-");
    assert_int_equal(a.greeting, 1);
    assert_int_equal(b.greeting, 1);
    assert_int_equal(a.authed, 1);
    assert_int_equal(b.authed, 1);
    assert_int_equal(aemp__proto_send_auth(a.p), auth_a);
    assert_int_equal(aemp__proto_recv_auth(b.p), auth_a);
    assert_int_equal(aemp__proto_send_auth(b.p), auth_b);
    assert_int_equal(aemp__proto_recv_auth(a.p), auth_b);
    assert_int_equal(aemp__proto_send_framing(a.p), fr_a);
    assert_int_equal(aemp__proto_recv_framing(b.p), fr_a);
    assert_int_equal(aemp__proto_send_framing(b.p), fr_b);
    assert_int_equal(aemp__proto_recv_framing(a.p), fr_b);
    assert_int_equal(aemp__proto_peer_dialect(a.p), dialect_seen_by_a);
    assert_int_equal(aemp__proto_peer_dialect(b.p), dialect_seen_by_b);
    assert_string_equal(aemp__proto_peer_node(a.p), cb->nodeid);
    assert_string_equal(aemp__proto_peer_node(b.p), ca->nodeid);
    /* each side's lines are the other's peer lines */
    assert_string_equal(aemp__proto_line(a.p, 0), aemp__proto_line(b.p, 2));
    assert_string_equal(aemp__proto_line(a.p, 1), aemp__proto_line(b.p, 3));
    assert_string_equal(aemp__proto_line(b.p, 0), aemp__proto_line(a.p, 2));
    assert_string_equal(aemp__proto_line(b.p, 1), aemp__proto_line(a.p, 3));
    exchange_frames(&a, &b, chunk);
    side_free(&a);
    side_free(&b);
}

/* A hand-driven peer: its greeting lines and, once it saw ours, auth line. */
typedef struct manual {
    char l1[512], l2[128];
} manual_t;

/* Feed the manual peer's greeting (with the given terminator) to p. */
static void manual_greet(aemp_proto_t *p, const manual_t *m, const char *eol)
{
    char s[800];
    snprintf(s, sizeof s, "%s%s%s%s", m->l1, eol, m->l2, eol);
    feed(p, s);
}

/* The token the manual peer sends to p with method meth. */
static void manual_token(aemp_proto_t *p, const manual_t *m, aemp_auth_method_t meth,
                         const char *secret, char *out)
{
    int n = aemp__auth_token(meth, (const uint8_t *)secret, secret ? strlen(secret) : 0,
                             m->l1, m->l2, aemp__proto_line(p, 0), aemp__proto_line(p, 1),
                             out, AEMP_AUTH_TOKEN_MAX);
    assert_true(n >= 0);
}

static void manual_init(manual_t *m, const char *l1)
{
    snprintf(m->l1, sizeof m->l1, "%s", l1);
    snprintf(m->l2, sizeof m->l2, "%s",
             "bWFudWFsIHBlZXIgbm9uY2UgbWFudWFsIHBlZXIgbm9uY2UgbWFudWFsIHBlZXIgbm9uY2UgbWFudWFsIHBl");
}

#define PEER202 "aemp;1;peer;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;json;mproto=1;gproto=1"
#define PEER130 "aemp;1;peer;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json"

/* Bring p (2.02-only, secret "s") through the greeting with a manual 2.02 peer;
 * our auth line is then in p's out buffer. */
static void greet_202(aemp_proto_t *p, manual_t *m)
{
    manual_init(m, PEER202);
    manual_greet(p, m, "\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    assert_int_equal(next_ev(p), AEMP_PROTO_NEED_MORE);
}

/* ------------------------------------------------------------ greeting */

static void greeting_lines(void **state)
{
    static const char *acc_both = "tls_sha3_512,hmac_sha3_512,tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext";
    aemp_proto_cfg_t c = cfg_make("n1", "s", AEMP_DIALECT_BOTH);
    c.have_cert = 1;
    c.peeraddr = "1.2.3.4:5";
    aemp_proto_t *p = aemp__proto_new(&c);
    assert_non_null(p);
    const char *l1 = aemp__proto_line(p, 0);
    char want[512];
    snprintf(want, sizeof want, "aemp;1;n1;%s;cbor,json;provider=libaemp-", acc_both);
    assert_memory_equal(l1, want, strlen(want));
    const char *tail = ";peeraddr=1.2.3.4:5;tls=1.0;mproto=1;gproto=1";
    assert_true(strlen(l1) > strlen(tail));
    assert_string_equal(l1 + strlen(l1) - strlen(tail), tail);
    /* the provider value is one field */
    assert_ptr_equal(strchr(l1 + strlen(want), ';'), l1 + strlen(l1) - strlen(tail));

    /* nonce: base64 of 66 random bytes, 88 chars */
    const char *l2 = aemp__proto_line(p, 1);
    assert_int_equal(strlen(l2), 88);
    unsigned char raw[80];
    assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)l2, 88), 66);
    unsigned char again[89];   /* and exactly the standard encoding of them */
    assert_int_equal(EVP_EncodeBlock(again, raw, 66), 88);
    assert_memory_equal(again, l2, 88);
    /* the out buffer holds exactly the two lines */
    aemp_buf_t *o = aemp__proto_out(p);
    assert_int_equal(aemp__buf_used(o), strlen(l1) + 1 + strlen(l2) + 1);
    assert_memory_equal(aemp__buf_head(o), l1, strlen(l1));
    assert_int_equal(aemp__buf_head(o)[strlen(l1)], '\n');
    assert_int_equal(aemp__buf_head(o)[aemp__buf_used(o) - 1], '\n');
    /* peer lines unknown yet */
    assert_null(aemp__proto_line(p, 2));
    assert_null(aemp__proto_peer_node(p));
    assert_int_equal(aemp__proto_peer_dialect(p), 0);
    assert_null(aemp__proto_error(p));

    aemp_proto_t *q = mk("n2", "s", AEMP_DIALECT_BOTH);
    assert_string_not_equal(aemp__proto_line(q, 1), l2);   /* random */
    aemp__proto_free(q);
    aemp__proto_free(p);

    p = mk("n1", NULL, AEMP_DIALECT_130);
    assert_memory_equal(aemp__proto_line(p, 0),
                        "aemp;1;n1;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json;provider=libaemp-",
                        strlen("aemp;1;n1;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json;provider=libaemp-"));
    assert_null(strstr(aemp__proto_line(p, 0), "proto="));
    assert_null(strstr(aemp__proto_line(p, 0), "tls="));
    assert_null(strstr(aemp__proto_line(p, 0), "peeraddr"));
    aemp__proto_free(p);

    p = mk("n1", NULL, AEMP_DIALECT_202);
    l1 = aemp__proto_line(p, 0);
    assert_memory_equal(l1, "aemp;1;n1;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;provider=libaemp-",
                        strlen("aemp;1;n1;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;provider=libaemp-"));
    assert_string_equal(l1 + strlen(l1) - strlen(";mproto=1;gproto=1"), ";mproto=1;gproto=1");
    aemp__proto_free(p);

    /* dialects 0 = both */
    p = mk("n1", NULL, 0);
    assert_non_null(strstr(aemp__proto_line(p, 0), acc_both));
    aemp__proto_free(p);
}

static void greeting_values_escaped(void **state)
{
    aemp_proto_cfg_t ca = cfg_make("a", "s", 0), cb = cfg_make("b", "s", 0);
    ca.peeraddr = "x;y%z";
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    assert_non_null(strstr(aemp__proto_line(a.p, 0), ";peeraddr=x%3by%25z"));
    run_pair(&a, &b, 0);
    assert_int_equal(b.authed, 1);
    assert_string_equal(aemp__proto_peer_value(b.p, "peeraddr"), "x;y%z");
    assert_non_null(aemp__proto_peer_value(b.p, "provider"));
    assert_memory_equal(aemp__proto_peer_value(b.p, "provider"), "libaemp-", 8);
    assert_string_equal(aemp__proto_peer_value(b.p, "mproto"), "1");
    assert_null(aemp__proto_peer_value(b.p, "tls"));
    assert_null(aemp__proto_peer_value(b.p, "nonexistent"));
    side_free(&a);
    side_free(&b);

    /* a peer's pairs: %XX decoding, pair without '=', later value wins */
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, "aemp;1;peer;hmac_sha3_512;json;k=a%3bb%25c%2;flag;k2=1;k2=2;=x\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    assert_string_equal(aemp__proto_peer_value(p, "k"), "a;b%c%2");
    assert_null(aemp__proto_peer_value(p, "flag"));
    assert_string_equal(aemp__proto_peer_value(p, "k2"), "2");
    assert_int_equal(aemp__proto_peer_dialect(p), AEMP_DIALECT_130);
    aemp__proto_free(p);

    /* nproto (the POD's name) also marks a 2.02 peer */
    p = mk("me", "s", 0);
    feed(p, "aemp;1;peer;hmac_sha3_512;json;nproto=1\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    assert_int_equal(aemp__proto_peer_dialect(p), AEMP_DIALECT_202);
    aemp__proto_free(p);
}

static void bad_cfg(void **state)
{
    aemp_proto_cfg_t c = cfg_make(NULL, NULL, 0);
    assert_null(aemp__proto_new(&c));
    c = cfg_make("", NULL, 0);
    assert_null(aemp__proto_new(&c));
    c = cfg_make("a;b", NULL, 0);
    assert_null(aemp__proto_new(&c));
    c = cfg_make("a\nb", NULL, 0);
    assert_null(aemp__proto_new(&c));
    c = cfg_make("a", NULL, 4);
    assert_null(aemp__proto_new(&c));
    c = cfg_make("a", NULL, 0);
    c.n_framings = 1;
    c.framings[0] = AEMP_FRAMING_NONE;
    assert_null(aemp__proto_new(&c));
    c = cfg_make("a", NULL, 0);
    c.n_offer = 1;
    c.auth_offer[0] = AEMP_AUTH_NONE;
    assert_null(aemp__proto_new(&c));
    c = cfg_make("a", NULL, 0);
    c.n_accept = AEMP_PROTO_MAX_METHODS + 1;
    assert_null(aemp__proto_new(&c));
    c = cfg_make("a", NULL, 0);
    c.nonce_override = "x\ny";
    assert_null(aemp__proto_new(&c));
    aemp__proto_free(NULL);
}

/* ------------------------------------------------------------ (a) pairs */

static void pair_both_both(void **state)
{
    aemp_proto_cfg_t a = cfg_make("a", "geheim", AEMP_DIALECT_BOTH);
    aemp_proto_cfg_t b = cfg_make("b", "geheim", 0);
    pair_ok(&a, &b, AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR,
            AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR, AEMP_DIALECT_202, AEMP_DIALECT_202, 0);
}

static void pair_130_both(void **state)
{
    aemp_proto_cfg_t a = cfg_make("a", "geheim", AEMP_DIALECT_130);
    aemp_proto_cfg_t b = cfg_make("b", "geheim", AEMP_DIALECT_BOTH);
    pair_ok(&a, &b, AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON,
            AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON, AEMP_DIALECT_130, AEMP_DIALECT_130, 0);
    pair_ok(&b, &a, AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON,
            AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON, AEMP_DIALECT_130, AEMP_DIALECT_130, 0);
}

static void pair_202_both(void **state)
{
    aemp_proto_cfg_t a = cfg_make("a", "geheim", AEMP_DIALECT_202);
    aemp_proto_cfg_t b = cfg_make("b", "geheim", AEMP_DIALECT_BOTH);
    pair_ok(&a, &b, AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR,
            AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR, AEMP_DIALECT_202, AEMP_DIALECT_202, 0);
    /* same dialect on both ends */
    aemp_proto_cfg_t c = cfg_make("c", "geheim", AEMP_DIALECT_202);
    pair_ok(&a, &c, AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR,
            AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR, AEMP_DIALECT_202, AEMP_DIALECT_202, 0);
    aemp_proto_cfg_t d = cfg_make("d", "geheim", AEMP_DIALECT_130);
    aemp_proto_cfg_t e = cfg_make("e", "geheim", AEMP_DIALECT_130);
    pair_ok(&d, &e, AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON,
            AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON, AEMP_DIALECT_130, AEMP_DIALECT_130, 0);
}

static void pair_130_202_fails(void **state)
{
    aemp_proto_cfg_t ca = cfg_make("a", "geheim", AEMP_DIALECT_130);
    aemp_proto_cfg_t cb = cfg_make("b", "geheim", AEMP_DIALECT_202);
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    run_pair(&a, &b, 0);
    assert_true(a.error);
    assert_true(b.error);
    assert_int_equal(a.authed + b.authed, 0);
    assert_string_equal(aemp__proto_error(a.p),
                        "tls_sha3_512,hmac_sha3_512,tls_anon,cleartext: no common auth type supported");
    assert_string_equal(aemp__proto_error(b.p),
                        "tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext: no common auth type supported");
    side_free(&a);
    side_free(&b);
}

/* Each side writes the first framing of the peer's list that it can write:
 * a prefers json, b prefers cbor => a writes cbor, b writes json. */
static void pair_asymmetric_framing(void **state)
{
    aemp_proto_cfg_t a = cfg_make("a", "geheim", 0);
    a.n_framings = 2;
    a.framings[0] = AEMP_FRAMING_JSON;
    a.framings[1] = AEMP_FRAMING_CBOR;
    aemp_proto_cfg_t b = cfg_make("b", "geheim", 0);
    pair_ok(&a, &b, AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR,
            AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_JSON, AEMP_DIALECT_202, AEMP_DIALECT_202, 0);
}

/* A 2.02-only node whose lists allow MD6 authenticates a 1.30 peer but then
 * refuses its dialect. */
static void pair_dialect_refused(void **state)
{
    aemp_proto_cfg_t ca = cfg_make("a", "geheim", AEMP_DIALECT_202);
    ca.n_offer = 1;
    ca.auth_offer[0] = AEMP_AUTH_HMAC_MD6_64_256;
    ca.n_accept = 2;
    ca.auth_accept[0] = AEMP_AUTH_HMAC_SHA3_512;
    ca.auth_accept[1] = AEMP_AUTH_HMAC_MD6_64_256;
    aemp_proto_cfg_t cb = cfg_make("b", "geheim", AEMP_DIALECT_130);
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    run_pair(&a, &b, 0);
    assert_true(a.error);
    assert_string_equal(aemp__proto_error(a.p),
                        "peer speaks the 1.30 dialect, which this node is configured not to speak");
    /* b sees a bilingual peer, sends its auth line and waits for a's */
    assert_false(b.error);
    assert_int_equal(b.authed, 0);
    assert_int_equal(aemp__proto_peer_dialect(b.p), AEMP_DIALECT_130);
    assert_int_equal(aemp__proto_send_auth(b.p), AEMP_AUTH_HMAC_MD6_64_256);
    side_free(&a);
    side_free(&b);
}

/* ------------------------------------------------------------ (b) replays */

/* Read the capture's secret from handshake.txt ("secret hex: ..." preferred,
 * else "secret: ..."). */
static size_t read_secret(const char *dir, uint8_t *out, size_t outsize)
{
    char rel[256];
    size_t len;
    snprintf(rel, sizeof rel, "%s/handshake.txt", dir);
    char *txt = (char *)slurp(rel, &len);
    size_t n = 0;
    char *h = strstr(txt, "\nsecret hex: ");
    if (h) {
        h += strlen("\nsecret hex: ");
        while (n < outsize && h[2 * n] && h[2 * n] != '\n') {
            unsigned v;
            assert_int_equal(sscanf(h + 2 * n, "%2x", &v), 1);
            out[n++] = (uint8_t)v;
        }
    } else {
        char *s = strstr(txt, "\nsecret: ");
        assert_non_null(s);
        s += strlen("\nsecret: ");
        while (n < outsize && s[n] && s[n] != '\n') {
            out[n] = (uint8_t)s[n];
            n++;
        }
    }
    free(txt);
    return n;
}

/* The first n lines of a stream: returns the offset just after the n-th LF
 * and copies lines 1 and 2 (without LF). */
static size_t head_lines(const uint8_t *s, size_t len, int n, char *l1, char *l2, size_t cap)
{
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *lf = memchr(s + off, '\n', len - off);
        assert_non_null(lf);
        size_t ll = (size_t)(lf - (s + off));
        char *dst = i == 0 ? l1 : i == 1 ? l2 : NULL;
        if (dst) {
            assert_true(ll < cap);
            memcpy(dst, s + off, ll);
            dst[ll] = 0;
        }
        off += ll + 1;
    }
    return off;
}

/* Replay one side of a captured session: configure it exactly as the capture's
 * `me` (lines overridden), feed it the other side's bytes in chunks and check
 * that it reproduces its three handshake lines byte for byte, authenticates
 * and decodes nframes frames. */
static void replay(const char *dir, int as_client, unsigned dialects, size_t chunk,
                   size_t nframes, aemp_auth_method_t meth, aemp_framing_t fr, const aemp_msg_t *first)
{
    char rel_own[256], rel_peer[256];
    snprintf(rel_own, sizeof rel_own, "%s/conn1.%s.bin", dir, as_client ? "c2s" : "s2c");
    snprintf(rel_peer, sizeof rel_peer, "%s/conn1.%s.bin", dir, as_client ? "s2c" : "c2s");
    size_t own_len, peer_len;
    uint8_t *own = slurp(rel_own, &own_len);
    uint8_t *peer = slurp(rel_peer, &peer_len);
    uint8_t secret[256];
    size_t secretlen = read_secret(dir, secret, sizeof secret);
    assert_true(secretlen > 0);

    static char l1[4096], l2[4096], x1[4096], x2[4096];
    size_t own_hs = head_lines(own, own_len, 3, l1, l2, sizeof l1);
    head_lines(peer, peer_len, 2, x1, x2, sizeof x1);

    aemp_proto_cfg_t c;
    memset(&c, 0, sizeof c);
    c.nodeid = as_client ? "client" : "seed";
    c.secret = secret;
    c.secretlen = secretlen;
    c.dialects = dialects;
    c.line1_override = l1;
    c.nonce_override = l2;
    side_t s;
    side_init(&s, &c);

    for (size_t off = 0; off < peer_len;) {
        size_t n = chunk && peer_len - off > chunk ? chunk : peer_len - off;
        aemp__buf_append(aemp__proto_in(s.p), peer + off, n);
        off += n;
        drive(&s);
        if (s.error)
            fail_msg("replay %s %s: %s", dir, c.nodeid, aemp__proto_error(s.p));
    }
    assert_int_equal(s.greeting, 1);
    assert_int_equal(s.start_tls, 0);
    assert_int_equal(s.authed, 1);
    assert_int_equal(aemp__buf_used(aemp__proto_in(s.p)), 0);
    /* exactly the captured greeting + auth line, nothing else */
    aemp_buf_t *o = aemp__proto_out(s.p);
    assert_int_equal(aemp__buf_used(o), own_hs);
    assert_memory_equal(aemp__buf_head(o), own, own_hs);
    assert_string_equal(aemp__proto_peer_node(s.p), as_client ? "seed" : "client");
    assert_string_equal(aemp__proto_line(s.p, 2), x1);
    assert_string_equal(aemp__proto_line(s.p, 3), x2);
    assert_int_equal(aemp__proto_send_auth(s.p), meth);
    assert_int_equal(aemp__proto_recv_auth(s.p), meth);
    assert_int_equal(aemp__proto_send_framing(s.p), fr);
    assert_int_equal(aemp__proto_recv_framing(s.p), fr);
    assert_int_equal(s.nframes, nframes);
    if (first)
        assert_frame(s.frames[0], aemp_msg_ref((aemp_msg_t *)first));
    side_free(&s);
    free(own);
    free(peer);
}

static void replay_130(void **state)
{
    aemp_msg_t *seed_first = aemp_msgf("ssssis", "", "AnyEvent::MP::_spawn", "niqix2JTuakCquRfU.a",
                                   "AnyEvent::MP::Global::connect", 0, "seed");
    aemp_msg_t *client_first = aemp_msgf("ssssis", "", "AnyEvent::MP::_spawn", "ro3hv4BJWFlBAF4J.a",
                                     "AnyEvent::MP::Global::connect", 0, "client");
    static const size_t chunks[] = { 0, 1, 7 };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        replay("capture", 1, AEMP_DIALECT_130, chunks[i], 33, AEMP_AUTH_HMAC_MD6_64_256,
               AEMP_FRAMING_JSON, seed_first);
        replay("capture", 0, AEMP_DIALECT_130, chunks[i], 38, AEMP_AUTH_HMAC_MD6_64_256,
               AEMP_FRAMING_JSON, client_first);
    }
    /* a bilingual node answers a 1.30 peer exactly like a 1.30 node */
    replay("capture", 1, AEMP_DIALECT_BOTH, 0, 33, AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON, seed_first);
    replay("capture", 0, AEMP_DIALECT_BOTH, 0, 38, AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON, client_first);
    aemp_msg_unref(seed_first);
    aemp_msg_unref(client_first);
}

static void replay_202(void **state)
{
    aemp_msg_t *seed_first = aemp_msgf("ss", "", "g_global");
    aemp_msg_t *client_first = aemp_msgf("sss", "control", "ping", "client#34GMaIeW2b");
    static const size_t chunks[] = { 0, 1, 997 };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        replay("capture2", 1, AEMP_DIALECT_202, chunks[i], 38, AEMP_AUTH_HMAC_SHA3_512,
               AEMP_FRAMING_CBOR, seed_first);
        replay("capture2", 0, AEMP_DIALECT_202, chunks[i], 52, AEMP_AUTH_HMAC_SHA3_512,
               AEMP_FRAMING_CBOR, client_first);
    }
    replay("capture2", 1, AEMP_DIALECT_BOTH, 0, 38, AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR, seed_first);
    replay("capture2", 0, AEMP_DIALECT_BOTH, 0, 52, AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR, client_first);
    aemp_msg_unref(seed_first);
    aemp_msg_unref(client_first);
}

/* The captured peer's auth line is checked, not just accepted: a replay with
 * the wrong secret fails verification. */
static void replay_wrong_secret(void **state)
{
    size_t own_len, peer_len;
    uint8_t *own = slurp("capture2/conn1.c2s.bin", &own_len);
    uint8_t *peer = slurp("capture2/conn1.s2c.bin", &peer_len);
    static char l1[4096], l2[4096];
    head_lines(own, own_len, 2, l1, l2, sizeof l1);
    aemp_proto_cfg_t c = cfg_make("client", "not-the-secret", AEMP_DIALECT_202);
    c.line1_override = l1;
    c.nonce_override = l2;
    aemp_proto_t *p = aemp__proto_new(&c);
    aemp__buf_append(aemp__proto_in(p), peer, peer_len);
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    expect_error(p, MISMATCH);
    aemp__proto_free(p);
    free(own);
    free(peer);
}

/* ------------------------------------------------------------ (c) failures */

static void wrong_secret(void **state)
{
    aemp_proto_cfg_t ca = cfg_make("a", "secret-one", 0), cb = cfg_make("b", "secret-two", 0);
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    run_pair(&a, &b, 0);
    assert_true(a.error && b.error);
    assert_string_equal(aemp__proto_error(a.p), MISMATCH);
    assert_string_equal(aemp__proto_error(b.p), MISMATCH);
    assert_int_equal(a.authed + b.authed, 0);
    side_free(&a);
    side_free(&b);

    /* 1.30 too */
    ca = cfg_make("a", "secret-one", AEMP_DIALECT_130);
    cb = cfg_make("b", "secret-two", AEMP_DIALECT_130);
    side_init(&a, &ca);
    side_init(&b, &cb);
    run_pair(&a, &b, 0);
    assert_string_equal(aemp__proto_error(a.p), MISMATCH);
    assert_string_equal(aemp__proto_error(b.p), MISMATCH);
    side_free(&a);
    side_free(&b);
}

static void line_too_long(void **state)
{
    char *big = malloc(5001);
    memset(big, 'x', 5000);
    big[5000] = 0;
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, big);
    expect_error(p, LINE_TOO_LONG);
    aemp__proto_free(p);

    /* detected as soon as 4096 bytes without LF are buffered */
    p = mk("me", "s", 0);
    big[4095] = 0;
    feed(p, big);
    assert_int_equal(next_ev(p), AEMP_PROTO_NEED_MORE);
    feed(p, "x");
    expect_error(p, LINE_TOO_LONG);
    aemp__proto_free(p);

    /* 4095 bytes + LF is still a line (and then a bad greeting) */
    p = mk("me", "s", 0);
    feed(p, big);
    feed(p, "\n");
    assert_int_equal(settle(p, NULL), AEMP_PROTO_ERROR);
    assert_memory_equal(aemp__proto_error(p), "unparsable greeting, expected 'aemp', got 'xxx",
                        strlen("unparsable greeting, expected 'aemp', got 'xxx"));
    aemp__proto_free(p);

    /* also the nonce line and the auth line */
    manual_t m;
    p = mk("me", "s", AEMP_DIALECT_202);
    manual_init(&m, PEER202);
    feed(p, m.l1);
    feed(p, "\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    big[4095] = 'x';
    feed(p, big);
    expect_error(p, LINE_TOO_LONG);
    aemp__proto_free(p);

    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    feed(p, big);
    expect_error(p, LINE_TOO_LONG);
    aemp__proto_free(p);
    free(big);
}

static void bad_protocol(void **state)
{
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, "http;1;peer;hmac_sha3_512;json\n");
    expect_error(p, "unparsable greeting, expected 'aemp', got 'http'");
    assert_string_equal(aemp__proto_peer_node(p), "peer");   /* learned anyway */
    aemp__proto_free(p);

    p = mk("me", "s", 0);
    feed(p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_error(p, "unparsable greeting, expected 'aemp', got 'GET / HTTP/1.1'");
    aemp__proto_free(p);

    p = mk("me", "s", 0);
    feed(p, "aemp;1;peer;hmac_sha3_512\n");   /* fewer than 5 fields */
    expect_error(p, "unparsable greeting, expected 'aemp', got 'aemp'");
    aemp__proto_free(p);

    p = mk("me", "s", 0);
    feed(p, "aemp-dataconn;1;peer;hmac_sha3_512;json;dataconn_id=1\n");
    expect_error(p, "unparsable greeting, expected 'aemp', got 'aemp-dataconn'");
    aemp__proto_free(p);

    p = mk("me", "s", 0);
    feed(p, "\n");
    expect_error(p, "unparsable greeting, expected 'aemp', got ''");
    aemp__proto_free(p);

    p = mk("me", "s", 0);
    feed(p, "aemp;1;peer\0x;hmac_sha3_512;json\n");   /* feed stops at NUL: incomplete */
    assert_int_equal(next_ev(p), AEMP_PROTO_NEED_MORE);
    aemp__buf_append(aemp__proto_in(p), "\0;a;b\n", 6);
    expect_error(p, "handshake line contains a NUL byte");
    aemp__proto_free(p);
}

static void bad_version(void **state)
{
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, "aemp;2;peer;hmac_sha3_512;json\n");
    expect_error(p, "version mismatch (we: 1, they: 2)");
    aemp__proto_free(p);

    p = mk("me", "s", 0);
    feed(p, "aemp;0;peer;hmac_md6_64_256;json\n");
    expect_error(p, "version mismatch (we: 1, they: 0)");
    aemp__proto_free(p);

    /* compared numerically, as Perl does */
    p = mk("me", "s", 0);
    feed(p, "aemp;1.0;peer;hmac_sha3_512;json\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    aemp__proto_free(p);
}

/* Peer node IDs are checked like ours (nodeid.c): refused at the greeting,
 * not learned, with the offending bytes escaped in the message. */
static void bad_peer_ids(void **state)
{
    static const struct {
        const char *line, *error;
    } cases[] = {
        { "aemp;1;;hmac_sha3_512;json\n", "invalid node ID '' in greeting: must not be empty" },
        { "aemp;1;a#b;hmac_sha3_512;json\n", "invalid node ID 'a#b' in greeting: must not contain '#'" },
        { "aemp;1;n3#echo;hmac_sha3_512;json\n", "invalid node ID 'n3#echo' in greeting: must not contain '#'" },
        { "aemp;1;c\x01x;hmac_sha3_512;json\n",
          "invalid node ID 'c\\x01x' in greeting: must not contain a control character (byte 0x01 at offset 1)" },
        { "aemp;1;\xc3\x28;hmac_sha3_512;json\n", "invalid node ID '\\xc3(' in greeting: not valid UTF-8" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aemp_proto_t *p = mk("me", "s", 0);
        feed(p, cases[i].line);
        expect_error(p, cases[i].error);
        assert_null(aemp__proto_peer_node(p));
        aemp__proto_free(p);
    }
    /* the longest allowed ID passes, one byte more does not */
    for (int extra = 0; extra < 2; extra++) {
        char line[AEMP_NODEID_MAX + 64];
        size_t n = AEMP_NODEID_MAX + (size_t)extra, at = (size_t)sprintf(line, "aemp;1;");
        memset(line + at, 'n', n);
        sprintf(line + at + n, ";hmac_sha3_512;json\n");
        aemp_proto_t *p = mk("me", "s", 0);
        feed(p, line);
        if (extra) {
            assert_int_equal(settle(p, NULL), AEMP_PROTO_ERROR);
            assert_non_null(strstr(aemp__proto_error(p), "in greeting: 1025 bytes long, at most 1024 allowed"));
        } else {
            assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
        }
        aemp__proto_free(p);
    }
}

static void talk_to_self(void **state)
{
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, "aemp;1;me;hmac_sha3_512;json\n");
    expect_error(p, "I refuse to talk to myself");
    aemp__proto_free(p);

    /* two instances with the same node ID */
    aemp_proto_cfg_t c = cfg_make("same", "s", 0);
    side_t a, b;
    side_init(&a, &c);
    side_init(&b, &c);
    run_pair(&a, &b, 0);
    assert_string_equal(aemp__proto_error(a.p), "I refuse to talk to myself");
    assert_string_equal(aemp__proto_error(b.p), "I refuse to talk to myself");
    side_free(&a);
    side_free(&b);

    /* our own greeting reflected back is caught here already (check 4
     * comes before the echo check) */
    p = mk("me", "s", 0);
    aemp_buf_t *o = aemp__proto_out(p);
    aemp__buf_append(aemp__proto_in(p), aemp__buf_head(o), aemp__buf_used(o));
    expect_error(p, "I refuse to talk to myself");
    aemp__proto_free(p);
}

static void echo_attack(void **state)
{
    aemp_proto_t *p = mk("me", "s", 0);
    char s[512];
    snprintf(s, sizeof s, "aemp;1;other;hmac_sha3_512;json\n%s\n", aemp__proto_line(p, 1));
    feed(p, s);
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    expect_error(p, "authentication error, echo attack?");
    aemp__proto_free(p);

    /* a relay that rewrites the node ID but reflects our nonce */
    aemp_proto_cfg_t c = cfg_make("a", "s", 0);
    c.nonce_override = "same-nonce";
    aemp_proto_cfg_t d = cfg_make("b", "s", 0);
    d.nonce_override = "same-nonce";
    side_t a, b;
    side_init(&a, &c);
    side_init(&b, &d);
    run_pair(&a, &b, 0);
    assert_string_equal(aemp__proto_error(a.p), "authentication error, echo attack?");
    assert_string_equal(aemp__proto_error(b.p), "authentication error, echo attack?");
    side_free(&a);
    side_free(&b);
}

static void no_common_framing(void **state)
{
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, "aemp;1;peer;hmac_sha3_512;storable,xml\nnonce\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    expect_error(p, "storable,xml: no common framing method supported");
    aemp__proto_free(p);

    /* json-only node vs cbor-only node */
    aemp_proto_cfg_t ca = cfg_make("a", "s", 0), cb = cfg_make("b", "s", 0);
    ca.n_framings = 1;
    ca.framings[0] = AEMP_FRAMING_JSON;
    cb.n_framings = 1;
    cb.framings[0] = AEMP_FRAMING_CBOR;
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    run_pair(&a, &b, 0);
    assert_string_equal(aemp__proto_error(a.p), "cbor: no common framing method supported");
    assert_string_equal(aemp__proto_error(b.p), "json: no common framing method supported");
    side_free(&a);
    side_free(&b);
}

static void snd_auth_errors(void **state)
{
    /* no common method at all */
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, "aemp;1;peer;hmac_md5,tls_sha3_512;json\nnonce\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    expect_error(p, "hmac_md5,tls_sha3_512: no common auth type supported");
    aemp__proto_free(p);

    /* no TLS, no secret */
    p = mk("me", NULL, 0);
    feed(p, PEER202 "\nnonce\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    expect_error(p, "unable to handshake TLS and no shared secret configured");
    aemp__proto_free(p);

    /* a common method that is not the HMAC method */
    aemp_proto_cfg_t c = cfg_make("me", "s", 0);
    c.n_offer = 1;
    c.auth_offer[0] = AEMP_AUTH_CLEARTEXT;
    p = aemp__proto_new(&c);
    feed(p, "aemp;1;peer;cleartext;json\nnonce\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    expect_error(p, "cleartext: fatal, selected unsupported snd auth method");
    aemp__proto_free(p);

    /* ...and with TLS, a method that is not a TLS method */
    c = cfg_make("me", "s", 0);
    c.have_cert = 1;
    p = aemp__proto_new(&c);
    feed(p, "aemp;1;peer;hmac_sha3_512,tls_sha3_512;json;tls=1.0\nnonce\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    expect_error(p, "hmac_sha3_512: fatal, selected unsupported snd auth method");
    aemp__proto_free(p);
}

static void rcv_auth_errors(void **state)
{
    manual_t m;
    char tok[AEMP_AUTH_TOKEN_MAX], s[1500];

    /* unknown method */
    aemp_proto_t *p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    feed(p, "md5_foo;abc;json\n");
    expect_error(p, "md5_foo: fatal, selected unsupported rcv auth method");
    aemp__proto_free(p);

    /* known, but not in our accept list */
    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    manual_token(p, &m, AEMP_AUTH_HMAC_MD6_64_256, "s", tok);
    snprintf(s, sizeof s, "hmac_md6_64_256;%s;json\n", tok);
    feed(p, s);
    expect_error(p, "hmac_md6_64_256: fatal, selected unsupported rcv auth method");
    aemp__proto_free(p);

    /* a TLS-only method on a plain connection (even with the right token) */
    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    manual_token(p, &m, AEMP_AUTH_TLS_SHA3_512, NULL, tok);
    snprintf(s, sizeof s, "tls_sha3_512;%s;cbor\n", tok);
    feed(p, s);
    expect_error(p, "tls_sha3_512: TLS auth method used on a plain connection");
    aemp__proto_free(p);

    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    feed(p, "tls_anon;;json\n");
    expect_error(p, "tls_anon: TLS auth method used on a plain connection");
    aemp__proto_free(p);

    /* wrong token, empty line, token of the wrong direction */
    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    feed(p, "hmac_sha3_512;0123;json\n");
    expect_error(p, MISMATCH);
    aemp__proto_free(p);

    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    feed(p, "\n");
    expect_error(p, ": fatal, selected unsupported rcv auth method");
    aemp__proto_free(p);

    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    {   /* our own token reflected */
        aemp_buf_t *o = aemp__proto_out(p);
        const char *ol = (const char *)aemp__buf_head(o);
        const char *auth = strchr(strchr(ol, '\n') + 1, '\n') + 1;
        aemp__buf_append(aemp__proto_in(p), auth, (size_t)((const char *)aemp__buf_head(o) + aemp__buf_used(o) - auth));
    }
    expect_error(p, MISMATCH);
    aemp__proto_free(p);

    /* right token, framing we cannot decode */
    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    manual_token(p, &m, AEMP_AUTH_HMAC_SHA3_512, "s", tok);
    snprintf(s, sizeof s, "hmac_sha3_512;%s;storable\n", tok);
    feed(p, s);
    expect_error(p, "storable: unusable remote framing");
    aemp__proto_free(p);

    p = mk("me", "s", AEMP_DIALECT_202);
    greet_202(p, &m);
    manual_token(p, &m, AEMP_AUTH_HMAC_SHA3_512, "s", tok);
    snprintf(s, sizeof s, "hmac_sha3_512;%s\n", tok);
    feed(p, s);
    expect_error(p, ": unusable remote framing");
    aemp__proto_free(p);

    /* cleartext (the "simple client", spec §8.10) is accepted */
    p = mk("me", "geheim", AEMP_DIALECT_202);
    greet_202(p, &m);
    feed(p, "cleartext;67656865696d;json;extra=1\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_AUTHED);
    assert_int_equal(aemp__proto_recv_auth(p), AEMP_AUTH_CLEARTEXT);
    assert_int_equal(aemp__proto_recv_framing(p), AEMP_FRAMING_JSON);
    aemp__proto_free(p);

    p = mk("me", "geheim", AEMP_DIALECT_202);
    greet_202(p, &m);
    feed(p, "cleartext;67656865696e;json\n");
    expect_error(p, MISMATCH);
    aemp__proto_free(p);
}

/* Complete a manual 2.02 handshake (json framing from the peer). */
static aemp_proto_t *authed_manual(size_t max_frame, manual_t *m)
{
    aemp_proto_cfg_t c = cfg_make("me", "s", AEMP_DIALECT_202);
    c.max_frame = max_frame;
    aemp_proto_t *p = aemp__proto_new(&c);
    greet_202(p, m);
    char tok[AEMP_AUTH_TOKEN_MAX], s[1500];
    manual_token(p, m, AEMP_AUTH_HMAC_SHA3_512, "s", tok);
    snprintf(s, sizeof s, "hmac_sha3_512;%s;json\n", tok);
    feed(p, s);
    assert_int_equal(next_ev(p), AEMP_PROTO_AUTHED);
    return p;
}

static void bad_frames(void **state)
{
    manual_t m;
    aemp_proto_t *p = authed_manual(0, &m);
    feed(p, "[1,2]]");
    assert_int_equal(next_ev(p), AEMP_PROTO_FRAME);
    assert_int_equal(settle(p, NULL), AEMP_PROTO_ERROR);
    assert_non_null(aemp__proto_error(p));
    assert_true(strlen(aemp__proto_error(p)) > 0);
    assert_int_equal(next_ev(p), AEMP_PROTO_ERROR);
    aemp__proto_free(p);

    p = authed_manual(0, &m);
    feed(p, "{\"a\":1}");
    assert_int_equal(settle(p, NULL), AEMP_PROTO_ERROR);
    assert_true(strlen(aemp__proto_error(p)) > 0);
    aemp__proto_free(p);

    /* over max_frame: complete, and incomplete */
    p = authed_manual(16, &m);
    feed(p, "[\"short\"]");
    assert_int_equal(next_ev(p), AEMP_PROTO_FRAME);
    feed(p, "[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]");
    assert_int_equal(settle(p, NULL), AEMP_PROTO_ERROR);
    assert_true(strlen(aemp__proto_error(p)) > 0);
    aemp__proto_free(p);

    p = authed_manual(16, &m);
    feed(p, "[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    assert_int_equal(settle(p, NULL), AEMP_PROTO_ERROR);
    assert_true(strlen(aemp__proto_error(p)) > 0);
    aemp__proto_free(p);
}

/* CR LF line endings, and data-phase bytes in the same chunk as the auth
 * line (and the greeting): nothing is lost. */
static void crlf_and_same_chunk(void **state)
{
    aemp_proto_t *p = mk("me", "s", AEMP_DIALECT_202);
    manual_t m;
    manual_init(&m, PEER202);
    char tok[AEMP_AUTH_TOKEN_MAX], s[3000];
    /* the peer's token depends on our lines only, which are known already */
    manual_token(p, &m, AEMP_AUTH_HMAC_SHA3_512, "s", tok);
    snprintf(s, sizeof s, "%s\r\n%s\r\nhmac_sha3_512;%s;json\r\n[\"a\",1][\"b\",2]\n[\"c\",",
             m.l1, m.l2, tok);
    feed(p, s);
    int frames = 0;
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    assert_int_equal(next_ev(p), AEMP_PROTO_AUTHED);
    assert_int_equal(settle(p, &frames), AEMP_PROTO_NEED_MORE);
    assert_int_equal(frames, 2);
    feed(p, "3]");
    aemp_frame_t f;
    assert_int_equal(aemp__proto_next(p, &f), AEMP_PROTO_FRAME);
    assert_string_equal(f.dest, "c");
    aemp_msg_t *want = aemp_msgf("i", 3);
    assert_true(aemp_val_equal(aemp_msg_root(f.msg), aemp_msg_root(want)));
    aemp_msg_unref(want);
    aemp_msg_unref(f.msg);
    assert_int_equal(next_ev(p), AEMP_PROTO_NEED_MORE);
    assert_string_equal(aemp__proto_line(p, 2), m.l1);   /* CR stripped */
    assert_string_equal(aemp__proto_line(p, 3), m.l2);
    aemp__proto_free(p);

    /* in a pair: a's frames arrive in the same chunk as its auth line */
    aemp_proto_cfg_t ca = cfg_make("a", "s", 0), cb = cfg_make("b", "s", 0);
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    move(a.p, b.p, 0);
    drive(&b);             /* b: GREETING, queues its auth line */
    move(b.p, a.p, 0);
    drive(&a);             /* a: GREETING + AUTHED */
    assert_int_equal(a.authed, 1);
    aemp_msg_t *msg = aemp_msgf("i", 1);
    for (int i = 0; i < 3; i++)
        aemp__proto_send(a.p, "x", 1, msg);
    aemp_msg_unref(msg);
    /* auth line + 3 frames in one chunk */
    move(a.p, b.p, 0);
    drive(&b);
    assert_int_equal(b.authed, 1);
    assert_int_equal(b.nframes, 3);
    side_free(&a);
    side_free(&b);
}

static void byte_at_a_time(void **state)
{
    aemp_proto_cfg_t a = cfg_make("a", "geheim", 0);
    aemp_proto_cfg_t b = cfg_make("b", "geheim", 0);
    pair_ok(&a, &b, AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR,
            AEMP_AUTH_HMAC_SHA3_512, AEMP_FRAMING_CBOR, AEMP_DIALECT_202, AEMP_DIALECT_202, 1);
    aemp_proto_cfg_t c = cfg_make("c", "geheim", AEMP_DIALECT_130);
    pair_ok(&c, &b, AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON,
            AEMP_AUTH_HMAC_MD6_64_256, AEMP_FRAMING_JSON, AEMP_DIALECT_130, AEMP_DIALECT_130, 1);
    /* CR LF, one byte at a time */
    aemp_proto_t *p = mk("me", "s", AEMP_DIALECT_202);
    manual_t m;
    manual_init(&m, PEER202);
    char tok[AEMP_AUTH_TOKEN_MAX], s[3000];
    manual_token(p, &m, AEMP_AUTH_HMAC_SHA3_512, "s", tok);
    snprintf(s, sizeof s, "%s\r\n%s\r\nhmac_sha3_512;%s;json\r\n[\"a\",1] [\"b\",{\"c\":[]}]",
             m.l1, m.l2, tok);
    int greet = 0, authed = 0, frames = 0;
    for (size_t i = 0; s[i]; i++) {
        aemp__buf_append(aemp__proto_in(p), s + i, 1);
        for (;;) {
            aemp_frame_t f;
            aemp_proto_event_t ev = aemp__proto_next(p, &f);
            aemp_msg_unref(f.msg);
            if (ev == AEMP_PROTO_NEED_MORE)
                break;
            assert_int_not_equal(ev, AEMP_PROTO_ERROR);
            greet += ev == AEMP_PROTO_GREETING;
            authed += ev == AEMP_PROTO_AUTHED;
            frames += ev == AEMP_PROTO_FRAME;
        }
    }
    assert_int_equal(greet, 1);
    assert_int_equal(authed, 1);
    assert_int_equal(frames, 2);
    aemp__proto_free(p);
}

/* ------------------------------------------------------------ (d) caller decisions, TLS */

static void fail_after_greeting(void **state)
{
    aemp_proto_t *p = mk("me", "s", 0);
    feed(p, PEER202 "\nnonce\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    assert_string_equal(aemp__proto_peer_node(p), "peer");
    aemp__proto_fail(p, "%s already connected, not connecting again.", aemp__proto_peer_node(p));
    expect_error(p, "peer already connected, not connecting again.");
    aemp__proto_fail(p, "second");   /* the first error wins */
    assert_string_equal(aemp__proto_error(p), "peer already connected, not connecting again.");
    /* nothing queued after the greeting */
    aemp_buf_t *o = aemp__proto_out(p);
    assert_int_equal(aemp__buf_used(o),
                     strlen(aemp__proto_line(p, 0)) + strlen(aemp__proto_line(p, 1)) + 2);
    aemp__proto_free(p);
}

static void tls_pair(unsigned dialects, aemp_auth_method_t expect)
{
    aemp_proto_cfg_t ca = cfg_make("a", NULL, dialects), cb = cfg_make("b", NULL, dialects);
    ca.have_cert = cb.have_cert = 1;
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    a.auto_tls = b.auto_tls = 0;
    run_pair(&a, &b, 0);
    assert_int_equal(a.start_tls, 1);
    assert_int_equal(b.start_tls, 1);
    assert_true(aemp__proto_tls(a.p) && aemp__proto_tls(b.p));
    assert_int_equal(aemp__proto_tls_client(a.p) + aemp__proto_tls_client(b.p), 1);
    assert_int_equal(aemp__proto_tls_client(a.p),
                     strcmp(aemp__proto_line(a.p, 1), aemp__proto_line(b.p, 1)) < 0);
    /* no auth line before the TLS session is up; next() keeps waiting */
    assert_int_equal(aemp__buf_used(aemp__proto_out(a.p)), 0);
    assert_int_equal(next_ev(a.p), AEMP_PROTO_NEED_MORE);
    assert_int_equal(a.authed + b.authed, 0);
    aemp__proto_tls_ready(a.p);
    aemp__proto_tls_ready(b.p);
    run_pair(&a, &b, 0);
    assert_false(a.error || b.error);
    assert_int_equal(a.authed, 1);
    assert_int_equal(b.authed, 1);
    assert_int_equal(aemp__proto_send_auth(a.p), expect);
    assert_int_equal(aemp__proto_recv_auth(a.p), expect);
    assert_int_equal(aemp__proto_send_auth(b.p), expect);
    exchange_frames(&a, &b, 0);
    side_free(&a);
    side_free(&b);
}

static void start_tls(void **state)
{
    tls_pair(AEMP_DIALECT_BOTH, AEMP_AUTH_TLS_SHA3_512);
    tls_pair(AEMP_DIALECT_202, AEMP_AUTH_TLS_SHA3_512);
    tls_pair(AEMP_DIALECT_130, AEMP_AUTH_TLS_MD6_64_256);

    /* only one side has a certificate: no TLS, HMAC */
    aemp_proto_cfg_t ca = cfg_make("a", "s", 0), cb = cfg_make("b", "s", 0);
    ca.have_cert = 1;
    side_t a, b;
    side_init(&a, &ca);
    side_init(&b, &cb);
    run_pair(&a, &b, 0);
    assert_int_equal(a.start_tls + b.start_tls, 0);
    assert_int_equal(a.authed + b.authed, 2);
    assert_false(aemp__proto_tls(a.p));
    assert_int_equal(aemp__proto_send_auth(a.p), AEMP_AUTH_HMAC_SHA3_512);
    side_free(&a);
    side_free(&b);

    /* tls value: int() == 1 */
    static const struct { const char *v; int tls; } tv[] = {
        { "1.0", 1 }, { "1", 1 }, { "1.9", 1 }, { " 1", 1 }, { "0", 0 }, { "2", 0 },
        { "yes", 0 }, { "", 0 }, { "0x1", 0 }, { "1e999", 0 },
    };
    for (size_t i = 0; i < sizeof tv / sizeof tv[0]; i++) {
        aemp_proto_cfg_t c = cfg_make("me", "s", 0);
        c.have_cert = 1;
        aemp_proto_t *p = aemp__proto_new(&c);
        char s[256];
        snprintf(s, sizeof s, "aemp;1;peer;tls_sha3_512,hmac_sha3_512;json;tls=%s\nnonce\n", tv[i].v);
        feed(p, s);
        assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
        assert_int_equal(next_ev(p), tv[i].tls ? AEMP_PROTO_START_TLS : AEMP_PROTO_NEED_MORE);
        assert_int_equal(aemp__proto_tls(p), tv[i].tls);
        aemp__proto_free(p);
    }

    /* tls_anon from the peer inside TLS: accepted (untrusted peer) */
    aemp_proto_cfg_t c = cfg_make("me", NULL, 0);
    c.have_cert = 1;
    aemp_proto_t *p = aemp__proto_new(&c);
    feed(p, "aemp;1;peer;tls_sha3_512,tls_anon;json;tls=1.0\nnonce\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    assert_int_equal(next_ev(p), AEMP_PROTO_START_TLS);
    /* "nonce" > our base64 nonce? the role is the string comparison */
    assert_int_equal(aemp__proto_tls_client(p), strcmp(aemp__proto_line(p, 1), "nonce") < 0);
    aemp__proto_tls_ready(p);
    aemp__proto_tls_ready(p);   /* idempotent */
    const char *ol = (const char *)aemp__buf_head(aemp__proto_out(p));
    size_t ol_len = aemp__buf_used(aemp__proto_out(p));
    const char *auth = strchr(strchr(ol, '\n') + 1, '\n') + 1;
    assert_memory_equal(auth, "tls_sha3_512;", 13);
    assert_int_equal(ol[ol_len - 1], '\n');
    assert_int_equal(auth + 13 + 128 + 5 + 1, ol + ol_len);   /* ;json LF */
    feed(p, "tls_anon;;json\n[\"x\"]");
    assert_int_equal(next_ev(p), AEMP_PROTO_AUTHED);
    assert_int_equal(aemp__proto_recv_auth(p), AEMP_AUTH_TLS_ANON);
    assert_int_equal(next_ev(p), AEMP_PROTO_FRAME);
    aemp__proto_free(p);
}

/* ------------------------------------------------------------ extensions */

#define DC_ACC130 "tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext"

/* The connecting side of a data connection (spec §11.1): protocol
 * aemp-dataconn and the pair dataconn_id=<id>, byte for byte; no node or
 * global protocol versions (Perl 2.02 sends them for "aemp" only). */
static void dataconn_greeting_bytes(void **state)
{
    aemp_proto_cfg_t c = cfg_make("client", "s", AEMP_DIALECT_130);
    c.protocol = "aemp-dataconn";
    c.extra_key[0] = "dataconn_id";
    c.extra_value[0] = "b@client";
    c.n_extra = 1;
    c.peeraddr = "127.0.0.1:4040";
    aemp_proto_t *p = aemp__proto_new(&c);
    assert_non_null(p);
    assert_string_equal(aemp__proto_line(p, 0), "aemp-dataconn;1;client;" DC_ACC130
                        ";json;dataconn_id=b@client;provider=libaemp-0.1.0;peeraddr=127.0.0.1:4040");
    assert_string_equal(aemp__proto_protocol(p), "aemp-dataconn");
    assert_string_equal(aemp__proto_own_value(p, "dataconn_id"), "b@client");
    assert_null(aemp__proto_own_value(p, "provider"));
    aemp__proto_free(p);

    /* both dialects: still no mproto/gproto; a ';' in the ID is escaped */
    c.dialects = AEMP_DIALECT_BOTH;
    c.extra_value[0] = "7;x%@n";
    c.peeraddr = NULL;
    p = aemp__proto_new(&c);
    assert_non_null(p);
    const char *l1 = aemp__proto_line(p, 0);
    assert_non_null(strstr(l1, ";cbor,json;dataconn_id=7%3bx%25@n;provider="));
    assert_null(strstr(l1, "proto="));
    assert_memory_equal(l1, "aemp-dataconn;1;client;", 23);
    aemp__proto_free(p);

    /* a plain node greets as "aemp" even when it knows the extension */
    c = cfg_make("server", "s", AEMP_DIALECT_130);
    c.extensions[0] = "aemp-dataconn";
    p = aemp__proto_new(&c);
    assert_memory_equal(aemp__proto_line(p, 0), "aemp;1;server;", 14);
    assert_string_equal(aemp__proto_protocol(p), "aemp");
    aemp__proto_free(p);
}

/* A Perl 1.30 node connecting for a data connection, as its Transport
 * writes it: the acceptor starts as "aemp", switches at line 1, skips the
 * node-ID and dialect checks, authenticates with HMAC-MD6, and leaves the
 * bytes after the peer's auth line unread. */
static void dataconn_accept_perl130(void **state)
{
    aemp_proto_cfg_t c = cfg_make("server", "geheim", AEMP_DIALECT_BOTH);
    c.extensions[0] = "aemp-dataconn";
    aemp_proto_t *p = aemp__proto_new(&c);
    assert_non_null(p);
    manual_t m;
    manual_init(&m, "aemp-dataconn;1;server;" DC_ACC130 ";json,storable;dataconn_id=c@server;"
                    "provider=AE-1.30;peeraddr=127.0.0.1:4040");   /* same node ID: allowed */
    manual_greet(p, &m, "\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    assert_string_equal(aemp__proto_protocol(p), "aemp-dataconn");
    assert_string_equal(aemp__proto_peer_value(p, "dataconn_id"), "c@server");
    assert_null(aemp__proto_own_value(p, "dataconn_id"));
    assert_int_equal(next_ev(p), AEMP_PROTO_NEED_MORE);
    /* our auth line: hmac_md6_64_256 (the peer's list), framing json */
    aemp_buf_t *o = aemp__proto_out(p);
    char *out = strndup((const char *)aemp__buf_head(o), aemp__buf_used(o));
    assert_non_null(strstr(out, "\nhmac_md6_64_256;"));
    assert_string_equal(out + strlen(out) - 6, ";json\n");
    free(out);
    char tok[AEMP_AUTH_TOKEN_MAX + 1] = { 0 };
    manual_token(p, &m, AEMP_AUTH_HMAC_MD6_64_256, "geheim", tok);
    char line[AEMP_AUTH_TOKEN_MAX + 64];
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
    feed(p, line);
    aemp__buf_append(aemp__proto_in(p), "raw\0bytes[", 10);   /* not a frame */
    assert_int_equal(next_ev(p), AEMP_PROTO_AUTHED);
    assert_int_equal(aemp__buf_used(aemp__proto_in(p)), 10);
    assert_memory_equal(aemp__buf_head(aemp__proto_in(p)), "raw\0bytes[", 10);
    aemp__proto_free(p);
}

/* Two sides in memory: connector "aemp-dataconn", acceptor "aemp" that
 * knows the extension; with TLS announced on both the switch happens
 * before TLS starts. */
static void dataconn_pair(void **state)
{
    for (int tls = 0; tls < 2; tls++) {
        aemp_proto_cfg_t ca = cfg_make("a", "s", 0), cb = cfg_make("b", "s", 0);
        ca.protocol = "aemp-dataconn";
        ca.extra_key[0] = "dataconn_id";
        ca.extra_value[0] = "1@a";
        ca.n_extra = 1;
        cb.extensions[0] = "aemp-other";
        cb.extensions[1] = "aemp-dataconn";
        ca.have_cert = cb.have_cert = tls;
        side_t a, b;
        side_init(&a, &ca);
        side_init(&b, &cb);
        run_pair(&a, &b, 7);
        assert_false(a.error || b.error);
        assert_int_equal(a.authed, 1);
        assert_int_equal(b.authed, 1);
        assert_int_equal(a.start_tls, tls);
        assert_string_equal(aemp__proto_protocol(a.p), "aemp-dataconn");
        assert_string_equal(aemp__proto_protocol(b.p), "aemp-dataconn");
        assert_memory_equal(aemp__proto_line(b.p, 0), "aemp;1;b;", 9);
        assert_string_equal(aemp__proto_peer_value(b.p, "dataconn_id"), "1@a");
        assert_null(aemp__proto_peer_value(a.p, "dataconn_id"));
        assert_int_equal(aemp__proto_send_auth(a.p), tls ? AEMP_AUTH_TLS_SHA3_512 : AEMP_AUTH_HMAC_SHA3_512);
        side_free(&a);
        side_free(&b);
    }
}

/* Extension names that do not fit are refused with Perl's text. */
static void dataconn_refusals(void **state)
{
    aemp_proto_cfg_t c = cfg_make("me", "s", 0);
    c.extensions[0] = "aemp-dataconn";
    aemp_proto_t *p = aemp__proto_new(&c);
    feed(p, "aemp-foo;1;peer;hmac_sha3_512;json\n");
    expect_error(p, "unparsable greeting, expected 'aemp', got 'aemp-foo'");
    aemp__proto_free(p);

    /* a plain node talking to itself is still refused */
    p = aemp__proto_new(&c);
    feed(p, "aemp;1;me;hmac_sha3_512;json\n");
    expect_error(p, "I refuse to talk to myself");
    aemp__proto_free(p);

    c = cfg_make("me", "s", 0);
    c.protocol = "aemp-dataconn";
    p = aemp__proto_new(&c);
    feed(p, "aemp-other;1;peer;hmac_sha3_512;json\n");
    expect_error(p, "unparsable greeting, expected 'aemp-dataconn', got 'aemp-other'");
    aemp__proto_free(p);

    /* a connector accepts a plain "aemp" acceptor and the same name */
    p = aemp__proto_new(&c);
    feed(p, "aemp-dataconn;1;peer;hmac_sha3_512;json\n");
    assert_int_equal(next_ev(p), AEMP_PROTO_GREETING);
    aemp__proto_free(p);

    /* bad configurations */
    static const char *bad_names[] = { "aemp-", "dataconn", "aemp-data conn", "aemp-x;y" };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        c = cfg_make("me", "s", 0);
        c.protocol = bad_names[i];
        assert_null(aemp__proto_new(&c));
        c = cfg_make("me", "s", 0);
        c.extensions[0] = bad_names[i];
        assert_null(aemp__proto_new(&c));
    }
    static const char *bad_keys[] = { "", "a;b", "a=b", "a%b", "a\nb" };
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        c = cfg_make("me", "s", 0);
        c.extra_key[0] = bad_keys[i];
        c.extra_value[0] = "v";
        c.n_extra = 1;
        assert_null(aemp__proto_new(&c));
    }
    c = cfg_make("me", "s", 0);
    c.extra_key[0] = "k";
    c.extra_value[0] = "v\r";
    c.n_extra = 1;
    assert_null(aemp__proto_new(&c));
    c.n_extra = 3;
    assert_null(aemp__proto_new(&c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greeting_lines),
        cmocka_unit_test(greeting_values_escaped),
        cmocka_unit_test(bad_cfg),
        cmocka_unit_test(pair_both_both),
        cmocka_unit_test(pair_130_both),
        cmocka_unit_test(pair_202_both),
        cmocka_unit_test(pair_130_202_fails),
        cmocka_unit_test(pair_asymmetric_framing),
        cmocka_unit_test(pair_dialect_refused),
        cmocka_unit_test(replay_130),
        cmocka_unit_test(replay_202),
        cmocka_unit_test(replay_wrong_secret),
        cmocka_unit_test(wrong_secret),
        cmocka_unit_test(line_too_long),
        cmocka_unit_test(bad_protocol),
        cmocka_unit_test(bad_version),
        cmocka_unit_test(talk_to_self),
        cmocka_unit_test(bad_peer_ids),
        cmocka_unit_test(echo_attack),
        cmocka_unit_test(no_common_framing),
        cmocka_unit_test(snd_auth_errors),
        cmocka_unit_test(rcv_auth_errors),
        cmocka_unit_test(bad_frames),
        cmocka_unit_test(crlf_and_same_chunk),
        cmocka_unit_test(byte_at_a_time),
        cmocka_unit_test(fail_after_greeting),
        cmocka_unit_test(start_tls),
        cmocka_unit_test(dataconn_greeting_bytes),
        cmocka_unit_test(dataconn_accept_perl130),
        cmocka_unit_test(dataconn_pair),
        cmocka_unit_test(dataconn_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
