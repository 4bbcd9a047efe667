/* Tests for the JSON and CBOR framings: captured sessions of real Perl
 * nodes (1.30 JSON, 2.02 CBOR) decoded and re-encoded byte for byte, round
 * trips of every value type through both framings, the cross-framing
 * property (fuzz/frame_check.h) over generated messages, incremental
 * splitting, the size and depth limits, and malformed input with its error
 * texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "../fuzz/frame_check.h"
#include "testutil.h"

#ifndef AEMP_VECTORS_DIR
#define AEMP_VECTORS_DIR "tests/vectors"
#endif

/* ------------------------------------------------------------ helpers */

static uint8_t *read_file(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", AEMP_VECTORS_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

/* Offset just after the first `lines` LF-terminated lines. */
static size_t skip_lines(const uint8_t *p, size_t len, int lines)
{
    size_t i = 0;
    while (lines > 0 && i < len)
        if (p[i++] == '\n')
            lines--;
    assert_int_equal(lines, 0);
    return i;
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    while (h[0] && h[1] && h[0] != '\n') {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

/* Fail unless a and b are the same value, showing both. */
static void assert_val_eq(const aemp_val_t *got, const aemp_val_t *want)
{
    if (!aemp_val_equal(got, want)) {
        char *g = got ? aemp_val_text(got) : strdup("NULL");
        char *w = want ? aemp_val_text(want) : strdup("NULL");
        fail_msg("got %.3000s, want %.3000s", g, w);
    }
}

/* 1 if a and b are the same value with the pairs of maps in any order
 * (the transcripts print Perl hashes in another order than the wire has
 * them). */
static int same_unordered(const aemp_val_t *a, const aemp_val_t *b)
{
    if (aemp_val_type(a) != aemp_val_type(b) || aemp_val_len(a) != aemp_val_len(b))
        return 0;
    if (aemp_val_type(a) == AEMP_T_ARRAY) {
        for (size_t i = 0; i < aemp_val_len(a); i++)
            if (!same_unordered(aemp_val_at(a, i), aemp_val_at(b, i)))
                return 0;
        return 1;
    }
    if (aemp_val_type(a) == AEMP_T_MAP) {
        for (size_t i = 0; i < aemp_val_len(a); i++) {
            size_t kl;
            const char *k = aemp_val_str(aemp_val_key(a, i), &kl);
            const aemp_val_t *bv = aemp_val_getn(b, k, kl);
            if (!bv || !same_unordered(aemp_val_value(a, i), bv))
                return 0;
        }
        return 1;
    }
    return aemp_val_equal(a, b);
}

/* The same for two messages' roots; consumes want. */
static void assert_msg_eq(const aemp_msg_t *got, aemp_msg_t *want)
{
    assert_non_null(want);
    assert_val_eq(got ? aemp_msg_root(got) : NULL, aemp_msg_root(want));
    aemp_msg_unref(want);
}

/* The whole frame as one message: [dest, msg...] with the destination as
 * text, [] for a keepalive, [null, msg...] without a string destination. */
static aemp_msg_t *whole(const struct fc_frame *e)
{
    if (e->empty)
        return aemp_msg_empty();
    if (e->dest)
        return aemp__msg_prepend_str(e->dest, e->destlen, e->msg);
    return aemp_msgf("nm", e->msg);
}

/* Feed p[0..len) into a reader in chunks of `chunk` bytes, collecting every
 * frame into *out (each also checked with fc_check_frame); each frame's
 * offset and size within p go to offs/sizes (may be NULL; room for
 * `maxn`).  Asserts that no error occurs and that nothing is left over. */
static void decode_all(aemp_framing_t f, const uint8_t *p, size_t len, size_t chunk,
                       size_t *offs, size_t *sizes, size_t maxn, fc_frames_t *out)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    size_t fed = 0;
    memset(out, 0, sizeof *out);
    aemp__frame_reader_init(&r, f, 16 * 1024 * 1024);
    while (fed < len) {
        size_t n = len - fed < chunk ? len - fed : chunk;
        aemp__buf_append(&in, p + fed, n);
        fed += n;
        for (;;) {
            size_t before = aemp__buf_used(&in);
            aemp_frame_t fr;
            int rc = aemp__frame_next(&r, &in, &fr);
            if (rc < 0)
                fail_msg("frame error: %s", r.error);
            if (rc == 0)
                break;
            if (offs && out->n < maxn) {
                offs[out->n] = fed - before;
                sizes[out->n] = before - aemp__buf_used(&in);
            }
            fc_check_frame(&fr);
            fc_frames_push(out, &fr);
            aemp_msg_unref(fr.msg);
        }
    }
    assert_int_equal(aemp__buf_used(&in), 0);
    assert_int_equal(r.scan, 0);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

/* Decode exactly one frame from p[0..len) (no size limit) into *e; asserts
 * the result code and that nothing is left.  Free with fc_frames_free of a
 * one-element list, or free_frame. */
static void decode_frame(aemp_framing_t f, const void *p, size_t len, struct fc_frame *e)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr;
    aemp__frame_reader_init(&r, f, 0);
    aemp__buf_append(&in, p, len);
    int rc = aemp__frame_next(&r, &in, &fr);
    if (rc != 1)
        fail_msg("expected one frame, got %d (%s)", rc, r.error);
    assert_int_equal(aemp__buf_used(&in), 0);
    assert_non_null(fr.msg);
    fc_check_frame(&fr);
    fc_frames_t l = { 0 };
    fc_frames_push(&l, &fr);
    *e = l.v[0];
    free(l.v);
    aemp_msg_unref(fr.msg);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

static void free_frame(struct fc_frame *e)
{
    free(e->dest);
    aemp_msg_unref(e->msg);
    memset(e, 0, sizeof *e);
}

/* Decode exactly one frame and return it whole (see whole()). */
static aemp_msg_t *decode_one(aemp_framing_t f, const void *p, size_t len)
{
    struct fc_frame e;
    decode_frame(f, p, len, &e);
    aemp_msg_t *m = whole(&e);
    free_frame(&e);
    return m;
}

/* Feed p[0..len) in one go; return the result code and copy the error.
 * On an error, frame->msg must be NULL. */
static int feed(aemp_framing_t f, size_t max, const void *p, size_t len, char *err, size_t errsz)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr;
    aemp__frame_reader_init(&r, f, max);
    aemp__buf_append(&in, p, len);
    int rc = aemp__frame_next(&r, &in, &fr);
    if (err)
        snprintf(err, errsz, "%s", r.error);
    if (rc == 1)
        fc_check_frame(&fr);
    else
        assert_null(fr.msg);
    aemp_msg_unref(fr.msg);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
    return rc;
}

/* feed() must fail with exactly the error text `want`. */
static void expect_error(aemp_framing_t f, const void *p, size_t len, const char *want)
{
    char err[160];
    int rc = feed(f, 0, p, len, err, sizeof err);
    if (rc != -1 || strcmp(err, want))
        fail_msg("%.*s: rc %d, error '%s', want '%s'", (int)len, (const char *)p, rc, err, want);
}

#define EXPECT_JSON_ERROR(lit, want) expect_error(AEMP_FRAMING_JSON, lit, sizeof lit - 1, want)

/* The message of one JSON text parsed by jansson (strings are text). */
static aemp_msg_t *jansson_msg(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    aemp_msg_t *m = aemp_msg_from_json(j);
    json_decref(j);
    assert_non_null(m);
    return m;
}

/* Encode (dest, msg) or a keepalive, like a connection does. */
static void encode_frame(aemp_framing_t f, aemp_buf_t *out, const struct fc_frame *e)
{
    if (e->empty)
        aemp__frame_encode_value(f, out, aemp_msg_root(aemp_msg_empty()));
    else
        aemp__frame_encode(f, out, e->dest ? e->dest : "", e->destlen, e->msg);
}

/* ------------------------------------------------------------ names */

static void framing_names(void **state)
{
    assert_string_equal(aemp__framing_name(AEMP_FRAMING_JSON), "json");
    assert_string_equal(aemp__framing_name(AEMP_FRAMING_CBOR), "cbor");
    assert_null(aemp__framing_name(AEMP_FRAMING_NONE));
    assert_int_equal(aemp__framing_parse("json", 4), AEMP_FRAMING_JSON);
    assert_int_equal(aemp__framing_parse("cbor", 4), AEMP_FRAMING_CBOR);
    assert_int_equal(aemp__framing_parse("cbor,json", 4), AEMP_FRAMING_CBOR);
    assert_int_equal(aemp__framing_parse("storable", 8), AEMP_FRAMING_NONE);
    assert_int_equal(aemp__framing_parse("jso", 3), AEMP_FRAMING_NONE);
    assert_int_equal(aemp__framing_parse("JSON", 4), AEMP_FRAMING_NONE);
    assert_int_equal(aemp__framing_parse("", 0), AEMP_FRAMING_NONE);
}

/* ------------------------------------------------------------ 1.30 JSON capture */

/* The frames of one direction as listed in transcript-conn1.txt (parsed by
 * jansson), into want[] (room for maxn); returns their count. */
static size_t transcript_frames(const char *dir, aemp_msg_t **want, size_t maxn)
{
    size_t len, n = 0;
    char *t = (char *)read_file("capture/transcript-conn1.txt", &len);
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        double ts;
        char d[4];
        int pos = 0;
        if (sscanf(line, " %lf %3s %n", &ts, d, &pos) != 2 || pos == 0 || line[pos] != '[')
            continue;
        if (strcmp(d, dir))
            continue;
        assert_true(n < maxn);
        want[n++] = jansson_msg(line + pos);
    }
    free(t);
    return n;
}

static void check_json_capture(const char *bin, const char *dir, size_t nframes, fc_frames_t *one)
{
    size_t len;
    uint8_t *p = read_file(bin, &len);
    size_t start = skip_lines(p, len, 3);
    aemp_msg_t *want[64];
    assert_int_equal(transcript_frames(dir, want, 64), nframes);

    size_t offs[64], sizes[64];
    fc_frames_t bytewise, odd;
    decode_all(AEMP_FRAMING_JSON, p + start, len - start, len, offs, sizes, 64, one);
    decode_all(AEMP_FRAMING_JSON, p + start, len - start, 1, NULL, NULL, 0, &bytewise);
    decode_all(AEMP_FRAMING_JSON, p + start, len - start, 7, NULL, NULL, 0, &odd);
    assert_int_equal(one->n, nframes);
    assert_int_equal(bytewise.n, nframes);
    assert_int_equal(odd.n, nframes);
    for (size_t i = 0; i < nframes; i++) {
        fc_frames_t *l[] = { one, &bytewise, &odd };
        for (int k = 0; k < 3; k++) {
            aemp_msg_t *w = whole(&l[k]->v[i]);
            if (!same_unordered(aemp_msg_root(w), aemp_msg_root(want[i])))
                assert_val_eq(aemp_msg_root(w), aemp_msg_root(want[i]));
            aemp_msg_unref(w);
        }
        assert_true(one->v[i].empty || one->v[i].dest);
    }

    /* re-encoding reproduces the captured bytes (JSON::XS and our encoder
     * agree on every frame of this session) */
    size_t same = 0;
    for (size_t i = 0; i < nframes; i++) {
        aemp_buf_t out = AEMP_BUF_INIT;
        encode_frame(AEMP_FRAMING_JSON, &out, &one->v[i]);
        if (out.len == sizes[i] && !memcmp(out.data, p + start + offs[i], sizes[i]))
            same++;
        else
            print_message("re-encoding differs: %.*s\n", (int)sizes[i], p + start + offs[i]);
        aemp__buf_free(&out);
    }
    assert_int_equal(same, nframes);

    for (size_t i = 0; i < nframes; i++)
        aemp_msg_unref(want[i]);
    fc_frames_free(&bytewise);
    fc_frames_free(&odd);
    free(p);
}

static void json_capture_c2s(void **state)
{
    fc_frames_t fr;
    check_json_capture("capture/conn1.c2s.bin", "c2s", 38, &fr);

    aemp_msg_t *w = whole(&fr.v[0]);
    tu_assert_msg(w, "[\"\",\"AnyEvent::MP::_spawn\",\"ro3hv4BJWFlBAF4J.a\","
                     "\"AnyEvent::MP::Global::connect\",0,\"client\"]");
    aemp_msg_unref(w);
    w = whole(&fr.v[6]);
    tu_assert_msg(w, "[\"echo\",\"hello\",42,3.5,null,[1,[2,3]],{\"a\":\"b\",\"n\":-7},"
                     "\"client#HYNSZA0g.b\"]");
    assert_int_equal(aemp_val_type(aemp_msg_at(w, 3)), AEMP_T_DOUBLE);
    assert_int_equal(aemp_val_type(aemp_msg_at(w, 2)), AEMP_T_INT);
    aemp_msg_unref(w);
    /* "grüße ✓ 😀 \u0000 end" */
    assert_string_equal(fr.v[9].dest, "echo");
    const char want[] = "gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xf0\x9f\x98\x80 \0 end";
    size_t n;
    const char *s = aemp_msg_str(fr.v[9].msg, 0, &n);
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(s, want, sizeof want - 1);
    assert_int_equal(aemp_val_type(aemp_msg_at(fr.v[9].msg, 0)), AEMP_T_STR);
    w = whole(&fr.v[12]);
    tu_assert_msg(w, "[\"\",\"mon1\",\"ro3hv4BJWFlBAF4J.g\"]");
    aemp_msg_unref(w);
    w = whole(&fr.v[10]);
    tu_assert_msg(w, "[\"\",\"AnyEvent::MP::_spawn\",\"ro3hv4BJWFlBAF4J.g\","
                     "\"AEMPInterop::Seed::spawn_echo\",\"client#HYNSZA0g.f\"]");
    aemp_msg_unref(w);
    fc_frames_free(&fr);
}

static void json_capture_s2c(void **state)
{
    fc_frames_t fr;
    check_json_capture("capture/conn1.s2c.bin", "s2c", 33, &fr);
    fc_frames_free(&fr);
}

static void json_encode_exact(void **state)
{
    aemp_msg_t *msg = aemp_msgf("ss", "mon1", "ro3hv4BJWFlBAF4J.g");
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(AEMP_FRAMING_JSON, &out, "", 0, msg);
    const char want[] = "[\"\",\"mon1\",\"ro3hv4BJWFlBAF4J.g\"]";
    assert_int_equal(out.len, sizeof want - 1);
    assert_memory_equal(out.data, want, sizeof want - 1);
    aemp_msg_unref(msg);

    /* value formatting: escapes, UTF-8 kept, reals in jansson style */
    msg = jansson_msg("[\"a\\u0001\\u001f\\u007f/\\\"\\\\\\n\\t\\r\\b\\f\xc3\xbc\","
                      "0.1,3.0,-0.0,1e300,1e-5,1795911113.08258,-9223372036854775808,"
                      "9223372036854775807,true,false,null,[],{},{\"k\\n\":[1]}]");
    aemp__buf_free(&out);
    aemp__frame_encode(AEMP_FRAMING_JSON, &out, "d\"", 2, msg);
    const char want2[] =
        "[\"d\\\"\",\"a\\u0001\\u001F\x7f/\\\"\\\\\\n\\t\\r\\b\\f\xc3\xbc\","
        "0.1,3.0,-0.0,1e300,1e-5,1795911113.08258,-9223372036854775808,"
        "9223372036854775807,true,false,null,[],{},{\"k\\n\":[1]}]";
    if (out.len != sizeof want2 - 1 || memcmp(out.data, want2, sizeof want2 - 1))
        fail_msg("got %.*s", (int)out.len, out.data);
    struct fc_frame back;
    decode_frame(AEMP_FRAMING_JSON, out.data, out.len, &back);
    assert_string_equal(back.dest, "d\"");
    assert_val_eq(aemp_msg_root(back.msg), aemp_msg_root(msg));
    free_frame(&back);
    aemp_msg_unref(msg);
    aemp__buf_free(&out);

    /* the types JSON has no word for: byte strings and text that is not
     * UTF-8 as Perl writes byte strings (each byte a code point), NUL as
     * \u0000, UINT as digits, non-finite doubles as null */
    aemp_build_t *b = aemp_build_new();
    aemp_build_bytes(b, "\xc3\xa4", 2);
    aemp_build_strn(b, "\xff", 1);
    aemp_build_strn(b, "\xc3\xa4\xff", 3);            /* valid until the last byte */
    aemp_build_bytes(b, "a\0\n\x7f", 4);
    aemp_build_strn(b, "a\0b", 3);
    aemp_build_uint(b, UINT64_MAX);
    aemp_build_int(b, INT64_MIN);
    aemp_build_double(b, INFINITY);
    aemp_build_double(b, -INFINITY);
    aemp_build_double(b, NAN);
    aemp_build_double(b, 1e22);
    aemp_build_map(b);
    aemp_build_bytes(b, "\xe9", 1);
    aemp_build_int(b, 1);
    aemp_build_strn(b, "k\0", 2);
    aemp_build_bool(b, 1);
    aemp_build_close(b);
    msg = aemp_build_msg(b);
    assert_non_null(msg);
    aemp__buf_free(&out);
    aemp__frame_encode(AEMP_FRAMING_JSON, &out, "\xff", 1, msg);
    const char want3[] =
        "[\"\xc3\xbf\",\"\xc3\x83\xc2\xa4\",\"\xc3\xbf\",\"\xc3\x83\xc2\xa4\xc3\xbf\","
        "\"a\\u0000\\n\x7f\",\"a\\u0000b\",18446744073709551615,-9223372036854775808,"
        "null,null,null,1e22,{\"\xc3\xa9\":1,\"k\\u0000\":true}]";
    if (out.len != sizeof want3 - 1 || memcmp(out.data, want3, sizeof want3 - 1))
        fail_msg("got %.*s", (int)out.len, out.data);
    /* and it reads back as JSON sees it */
    decode_frame(AEMP_FRAMING_JSON, out.data, out.len, &back);
    assert_int_equal(back.destlen, 2);
    assert_memory_equal(back.dest, "\xc3\xbf", 2);
    assert_msg_eq(back.msg, fc_json_view(msg));
    assert_int_equal(aemp_val_type(aemp_msg_at(back.msg, 5)), AEMP_T_UINT);
    free_frame(&back);
    aemp_msg_unref(msg);
    aemp__buf_free(&out);
}

/* ------------------------------------------------------------ 2.02 CBOR capture */

typedef struct tframe {
    int num;
    char dir[4];
    size_t off, size;
    char *hex;
} tframe_t;

/* Frames listed in capture2/transcript.txt; returns their count. */
static size_t cbor_transcript(tframe_t *out, size_t maxn)
{
    size_t len, n = 0;
    char *t = (char *)read_file("capture2/transcript.txt", &len);
    char *save = NULL;
    char *line = strtok_r(t, "\n", &save);
    while (line) {
        tframe_t f;
        double ts;
        if (line[0] == '#' &&
            sscanf(line, "#%d %lf %3s @%zu (%zu bytes)", &f.num, &ts, f.dir, &f.off, &f.size) == 5) {
            strtok_r(NULL, "\n", &save);               /* diagnostic line */
            char *hex = strtok_r(NULL, "\n", &save);   /* hex line */
            assert_non_null(hex);
            while (*hex == ' ')
                hex++;
            f.hex = strdup(hex);
            assert_true(n < maxn);
            out[n++] = f;
        }
        line = strtok_r(NULL, "\n", &save);
    }
    free(t);
    return n;
}

static void cbor_capture_frames(const char *bin, size_t chunk, size_t *start, size_t *offs,
                                size_t *sizes, size_t maxn, fc_frames_t *out, uint8_t **data)
{
    size_t len;
    uint8_t *p = read_file(bin, &len);
    *start = skip_lines(p, len, 3);
    decode_all(AEMP_FRAMING_CBOR, p + *start, len - *start, chunk, offs, sizes, maxn, out);
    if (data)
        *data = p;
    else
        free(p);
}

/* Frame number `num` of the transcript, from the decoded streams. */
static const struct fc_frame *frame_by_num(const tframe_t *tf, size_t nt, int num,
                                           const fc_frames_t *c2s, const fc_frames_t *s2c)
{
    size_t ci = 0, si = 0;
    for (size_t i = 0; i < nt; i++) {
        int is_c = !strcmp(tf[i].dir, "c2s");
        if (tf[i].num == num)
            return is_c ? &c2s->v[ci] : &s2c->v[si];
        if (is_c)
            ci++;
        else
            si++;
    }
    fail_msg("no frame #%d", num);
    return NULL;
}

/* The frame as JSON sees it (Perl's byte strings are text to a JSON peer)
 * compared with the JSON text `want`. */
static void assert_frame_json(const struct fc_frame *e, const char *want)
{
    aemp_msg_t *w = whole(e), *v = fc_json_view(w);
    tu_assert_msg(v, want);
    aemp_msg_unref(v);
    aemp_msg_unref(w);
}

static int same_frames(const fc_frames_t *a, const fc_frames_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        aemp_msg_t *x = whole(&a->v[i]), *y = whole(&b->v[i]);
        int eq = aemp_val_equal(aemp_msg_root(x), aemp_msg_root(y));
        aemp_msg_unref(x);
        aemp_msg_unref(y);
        if (!eq)
            return 0;
    }
    return 1;
}

static void cbor_capture(void **state)
{
    static tframe_t tf[128];
    size_t nt = cbor_transcript(tf, 128);
    assert_int_equal(nt, 90);

    size_t offs[2][128], sizes[2][128], start[2];
    fc_frames_t c2s, s2c;
    uint8_t *data[2];
    cbor_capture_frames("capture2/conn1.c2s.bin", SIZE_MAX, &start[0], offs[0], sizes[0], 128,
                        &c2s, &data[0]);
    cbor_capture_frames("capture2/conn1.s2c.bin", SIZE_MAX, &start[1], offs[1], sizes[1], 128,
                        &s2c, &data[1]);
    assert_int_equal(c2s.n, 52);
    assert_int_equal(s2c.n, 38);

    /* byte-wise feeding yields the same frames */
    size_t dummy;
    fc_frames_t c2s1, s2c1, c2s13;
    cbor_capture_frames("capture2/conn1.c2s.bin", 1, &dummy, NULL, NULL, 0, &c2s1, NULL);
    cbor_capture_frames("capture2/conn1.s2c.bin", 1, &dummy, NULL, NULL, 0, &s2c1, NULL);
    cbor_capture_frames("capture2/conn1.c2s.bin", 13, &dummy, NULL, NULL, 0, &c2s13, NULL);
    assert_true(same_frames(&c2s, &c2s1));
    assert_true(same_frames(&s2c, &s2c1));
    assert_true(same_frames(&c2s, &c2s13));

    /* every frame sits at the offset and has the size the transcript says,
     * decoding its hex alone gives the same value, and re-encoding its
     * message gives exactly the captured bytes after the destination (Perl's
     * byte strings stay byte strings, its text stays text) */
    size_t idx[2] = { 0, 0 };
    for (size_t i = 0; i < nt; i++) {
        int d = strcmp(tf[i].dir, "c2s") ? 1 : 0;
        size_t k = idx[d]++;
        const struct fc_frame *fr = &(d ? &s2c : &c2s)->v[k];
        assert_int_equal(start[d] + offs[d][k], tf[i].off);
        assert_int_equal(sizes[d][k], tf[i].size);
        if (strlen(tf[i].hex) == 2 * tf[i].size) {
            uint8_t bytes[1024];
            assert_true(tf[i].size <= sizeof bytes);
            size_t n = unhex(tf[i].hex, bytes);
            aemp_msg_t *one = decode_one(AEMP_FRAMING_CBOR, bytes, n), *w = whole(fr);
            assert_val_eq(aemp_msg_root(one), aemp_msg_root(w));
            aemp_msg_unref(one);
            aemp_msg_unref(w);
        }
        assert_false(fr->empty);
        assert_non_null(fr->dest); /* byte or text string */

        const uint8_t *raw = data[d] + start[d] + offs[d][k];
        aemp_buf_t rest = AEMP_BUF_INIT;
        for (size_t e = 0; e < aemp_msg_len(fr->msg); e++)
            aemp__frame_encode_value(AEMP_FRAMING_CBOR, &rest, aemp_msg_at(fr->msg, e));
        assert_true(rest.len < sizes[d][k]);
        if (memcmp(raw + sizes[d][k] - rest.len, rest.data, rest.len))
            fail_msg("frame #%d: re-encoded message differs", tf[i].num);
        aemp__buf_free(&rest);
    }

    assert_frame_json(frame_by_num(tf, nt, 1, &c2s, &s2c),
                      "[\"control\",\"ping\",\"client#34GMaIeW2b\"]");
    assert_frame_json(frame_by_num(tf, nt, 2, &c2s, &s2c), "[\"\",\"g_slave\"]");
    assert_frame_json(frame_by_num(tf, nt, 4, &c2s, &s2c),
                      "[\"\",\"g_slave\",{\"'l\":{\"client\":[]}}]");
    assert_frame_json(frame_by_num(tf, nt, 9, &c2s, &s2c),
                      "[\"echo\",\"hello\",[1,\"two\",{\"3\":4}],\"client#34GMaIeW2c\"]");
    assert_frame_json(frame_by_num(tf, nt, 14, &c2s, &s2c),
                      "[\"echo\",\"gr\\u00fc\\u00dfe \\u263a\",\"client#34GMaIeW2e\"]");
    /* Perl sent ASCII strings as byte strings and the text as text */
    const struct fc_frame *f14 = frame_by_num(tf, nt, 14, &c2s, &s2c);
    assert_int_equal(aemp_val_type(aemp_msg_at(f14->msg, 0)), AEMP_T_STR);
    assert_int_equal(aemp_val_type(aemp_msg_at(f14->msg, 1)), AEMP_T_BYTES);
    const struct fc_frame *f9 = frame_by_num(tf, nt, 9, &c2s, &s2c);
    assert_int_equal(aemp_val_type(aemp_msg_at(f9->msg, 0)), AEMP_T_BYTES);
    assert_int_equal(aemp_val_type(aemp_val_key(aemp_val_at(aemp_msg_at(f9->msg, 1), 2), 0)),
                     AEMP_T_BYTES);
    /* the transcript prints the time with 15 digits; the wire has a double */
    const struct fc_frame *t = frame_by_num(tf, nt, 40, &c2s, &s2c);
    assert_int_equal(aemp_msg_len(t->msg), 1);
    assert_int_equal(aemp_val_type(aemp_msg_at(t->msg, 0)), AEMP_T_DOUBLE);
    double ts;
    assert_int_equal(aemp_msg_double(t->msg, 0, &ts), 0);
    assert_true(ts == 1795911113.082578);
    assert_frame_json(frame_by_num(tf, nt, 44, &c2s, &s2c), "[\"34GMaIeW2q\",\"\",42]");
    assert_frame_json(frame_by_num(tf, nt, 69, &c2s, &s2c),
                      "[\"\",\"g_upd\",\"fam_db\",null,[\"k2\"]]");
    assert_frame_json(frame_by_num(tf, nt, 70, &c2s, &s2c),
                      "[\"\",\"g_chg2\",\"fam_db\",{},[\"k2\"]]");
    assert_frame_json(frame_by_num(tf, nt, 90, &c2s, &s2c),
                      "[\"34GMaIeW2y\",\"db_get\",\"fam_creg\",{}]");

    /* the 200 kB echo */
    const struct fc_frame *big = frame_by_num(tf, nt, 16, &c2s, &s2c);
    size_t xl;
    const char *x = aemp_msg_str(big->msg, 0, &xl);
    assert_int_equal(xl, 200000);
    assert_int_equal(strspn(x, "x"), 200000);
    assert_string_equal(aemp_msg_str(big->msg, 1, NULL), "client#34GMaIeW2f");

    /* our encoding of ["","g_slave"] writes the destination and text
     * strings as text */
    aemp_msg_t *msg = aemp_msgf("s", "g_slave");
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(AEMP_FRAMING_CBOR, &out, "", 0, msg);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, "\x82\x60\x67g_slave", 10);
    aemp_msg_t *back = decode_one(AEMP_FRAMING_CBOR, out.data, out.len);
    tu_assert_msg(back, "[\"\",\"g_slave\"]");
    aemp_msg_unref(back);
    aemp_msg_unref(msg);
    aemp__buf_free(&out);

    for (size_t i = 0; i < nt; i++)
        free(tf[i].hex);
    fc_frames_free(&c2s);
    fc_frames_free(&s2c);
    fc_frames_free(&c2s1);
    fc_frames_free(&s2c1);
    fc_frames_free(&c2s13);
    free(data[0]);
    free(data[1]);
}

/* ------------------------------------------------------------ round trips */

/* Values of every type and the edges of each (the elements of a message;
 * element 0 is a string so that the message can be a frame itself). */
static aemp_msg_t *sample_values(void)
{
    aemp_build_t *b = aemp_build_new();
    assert_int_equal(aemp_build_fmt(b,
        "s [] {} s s s s# s",
        "first", "", "plain", "gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xf0\x9f\x98\x80",
        "nul \0 inside", (size_t)12, "quote \" back \\ nl \n ctl \x01 del \x7f"), 0);
    static const int64_t ints[] = {
        0, 1, -1, 23, 24, -24, -25, 255, 256, -256, -257, 65535, 65536, 4294967295LL,
        4294967296LL, -4294967296LL, -4294967297LL, INT64_MAX, INT64_MIN,
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        aemp_build_int(b, ints[i]);
    aemp_build_uint(b, UINT64_MAX);
    aemp_build_uint(b, (uint64_t)INT64_MAX + 1);
    static const double reals[] = {
        0.0, -0.0, 0.1, -2.5, 3.0, 1e300, -1e-300, 5e-324, DBL_MAX, DBL_MIN,
        1795911113.08258, 1e22, 1e21, 123456789.125, 9007199254740993.0, 0.30000000000000004,
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        aemp_build_double(b, reals[i]);
    assert_int_equal(aemp_build_fmt(b,
        "b b n [i [i [i [i []]]]] {s: {s: {s: [{}]}}}"
        "{s:i, s:i, s:[b,n], s:{s:i}} [s,s,s,n,[s]] s#",
        1, 0, 1, 2, 3, 4, "a", "b", "c",
        "k\xc3\xbc", 1, "", 2, "x", 1, "nested", "n", -7,
        "", "g_upd", "fam_db", "k2", "\0", (size_t)1), 0);
    /* byte strings, text that is not UTF-8, NUL in keys, a byte-string key */
    aemp_build_bytes(b, "\xc3\xa4", 2);
    aemp_build_bytes(b, "", 0);
    aemp_build_bytes(b, "\x00\xff", 2);
    aemp_build_bytes(b, "ascii", 5);
    aemp_build_strn(b, "\xe9t\xe9", 3);
    assert_int_equal(aemp_build_fmt(b, "{s#:i, s#:s#}", "a\0b", (size_t)3, 1, "\0", (size_t)1,
                                    "v\0", (size_t)2), 0);
    aemp_build_map(b);
    aemp_build_bytes(b, "\xc3\xa4", 2);
    aemp_build_bytes(b, "\xff", 1);
    aemp_build_close(b);
    /* non-finite doubles (CBOR keeps them; JSON writes null) */
    aemp_build_double(b, INFINITY);
    aemp_build_double(b, -INFINITY);
    aemp_build_double(b, NAN);
    aemp_msg_t *m = aemp_build_msg(b);
    assert_non_null(m);
    return m;
}

/* What decoding the encoding of m in framing f must give. */
static aemp_msg_t *expected_in(aemp_framing_t f, aemp_msg_t *m)
{
    return f == AEMP_FRAMING_CBOR ? aemp_msg_ref(m) : fc_json_view(m);
}

/* The same double, -0.0 told from 0.0. */
static int same_double(const aemp_val_t *a, const aemp_val_t *b)
{
    double x, y;
    if (aemp_val_type(a) != AEMP_T_DOUBLE)
        return 1;
    aemp_val_double(a, &x);
    aemp_val_double(b, &y);
    return signbit(x) == signbit(y);
}

static void roundtrip(aemp_framing_t f)
{
    aemp_msg_t *vals = sample_values();
    aemp_msg_t *want_all = expected_in(f, vals);

    /* each value alone, wrapped in a frame */
    for (size_t i = 0; i < aemp_msg_len(vals); i++) {
        const aemp_val_t *v = aemp_msg_at(vals, i);
        aemp_msg_t *msg = aemp_msgf("sv", "tag", v);
        aemp_buf_t out = AEMP_BUF_INIT;
        aemp__frame_encode(f, &out, "port", 4, msg);
        struct fc_frame back;
        decode_frame(f, out.data, out.len, &back);
        assert_string_equal(back.dest, "port");
        assert_int_equal(aemp_msg_len(back.msg), 2);
        /* integers stay integers (INT/UINT), reals reals, bytes bytes */
        assert_val_eq(aemp_msg_at(back.msg, 1), aemp_msg_at(want_all, i));
        assert_true(same_double(aemp_msg_at(back.msg, 1), v));
        free_frame(&back);
        aemp_msg_unref(msg);
        aemp__buf_free(&out);
    }

    /* all values in one frame with a NUL in the destination, byte-wise */
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(f, &out, "p\0rt", 4, vals);
    fc_frames_t frames;
    decode_all(f, out.data, out.len, 1, NULL, NULL, 0, &frames);
    assert_int_equal(frames.n, 1);
    assert_int_equal(frames.v[0].destlen, 4);
    assert_memory_equal(frames.v[0].dest, "p\0rt", 4);
    assert_val_eq(aemp_msg_root(frames.v[0].msg), aemp_msg_root(want_all));
    fc_frames_free(&frames);
    aemp__buf_free(&out);

    /* encode_value of the whole array: element 0 is the destination */
    aemp__frame_encode_value(f, &out, aemp_msg_root(vals));
    aemp_msg_t *back = decode_one(f, out.data, out.len);
    assert_val_eq(aemp_msg_root(back), aemp_msg_root(want_all));
    aemp_msg_unref(back);
    aemp__buf_free(&out);

    /* a NULL or non-array message counts as empty */
    aemp__frame_encode(f, &out, "d", 1, NULL);
    back = decode_one(f, out.data, out.len);
    tu_assert_msg(back, "[\"d\"]");
    aemp_msg_unref(back);
    aemp__buf_free(&out);
    aemp_msg_t *scalar = aemp_valf("i", 5);
    aemp__frame_encode(f, &out, "d", 1, scalar);
    back = decode_one(f, out.data, out.len);
    tu_assert_msg(back, "[\"d\"]");
    aemp_msg_unref(back);
    aemp_msg_unref(scalar);
    aemp__buf_free(&out);

    aemp_msg_unref(want_all);
    aemp_msg_unref(vals);
}

static void json_roundtrip(void **state) { roundtrip(AEMP_FRAMING_JSON); }
static void cbor_roundtrip(void **state) { roundtrip(AEMP_FRAMING_CBOR); }

/* "\xc3\xa4" as a byte string: CBOR -> CBOR keeps it exactly, CBOR ->
 * JSON gives what Perl writes for the two-character byte string. */
static void bytes_across_framings(void **state)
{
    aemp_msg_t *m = aemp_msgf("y", "\xc3\xa4", (size_t)2);
    aemp_buf_t c = AEMP_BUF_INIT, j = AEMP_BUF_INIT;
    aemp__frame_encode(AEMP_FRAMING_CBOR, &c, "p", 1, m);
    assert_int_equal(c.len, 6);
    assert_memory_equal(c.data, "\x82\x61p\x42\xc3\xa4", 6);
    struct fc_frame e;
    decode_frame(AEMP_FRAMING_CBOR, c.data, c.len, &e);
    assert_int_equal(aemp_val_type(aemp_msg_at(e.msg, 0)), AEMP_T_BYTES);
    assert_val_eq(aemp_msg_root(e.msg), aemp_msg_root(m));
    aemp__frame_encode(AEMP_FRAMING_JSON, &j, e.dest, e.destlen, e.msg);
    const char want[] = "[\"p\",\"\xc3\x83\xc2\xa4\"]";
    assert_int_equal(j.len, sizeof want - 1);
    assert_memory_equal(j.data, want, sizeof want - 1);
    free_frame(&e);
    decode_frame(AEMP_FRAMING_JSON, j.data, j.len, &e);
    tu_assert_msg(e.msg, "[\"\\u00c3\\u00a4\"]");
    free_frame(&e);
    aemp__buf_free(&c);
    aemp__buf_free(&j);
    aemp_msg_unref(m);
}

/* NUL bytes in a key and in a string, over both framings. */
static void nul_bytes(void **state)
{
    aemp_msg_t *m = aemp_msgf("{s#:s#}s#", "k\0y", (size_t)3, "v\0", (size_t)2, "\0", (size_t)1);
    for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
        aemp_buf_t out = AEMP_BUF_INIT;
        aemp__frame_encode((aemp_framing_t)f, &out, "\0", 1, m);
        struct fc_frame e;
        decode_frame((aemp_framing_t)f, out.data, out.len, &e);
        assert_int_equal(e.destlen, 1);
        assert_int_equal(e.dest[0], 0);
        assert_val_eq(aemp_msg_root(e.msg), aemp_msg_root(m));
        size_t n;
        assert_non_null(aemp_val_getn(aemp_msg_at(e.msg, 0), "k\0y", 3));
        assert_null(aemp_val_getn(aemp_msg_at(e.msg, 0), "k", 1));
        assert_memory_equal(aemp_val_str(aemp_val_value(aemp_msg_at(e.msg, 0), 0), &n), "v\0", 2);
        assert_int_equal(n, 2);
        free_frame(&e);
        aemp__buf_free(&out);
    }
    aemp_msg_unref(m);
    /* straight from JSON text */
    const char *text = "[\"\",{\"a\\u0000\":\"\\u0000\"}]";
    aemp_msg_t *got = decode_one(AEMP_FRAMING_JSON, text, strlen(text));
    assert_msg_eq(got, aemp_msgf("s{s#:s#}", "", "a\0", (size_t)2, "\0", (size_t)1));
    aemp_msg_unref(got);
}

static void keepalive(void **state)
{
    const aemp_val_t *empty = aemp_msg_root(aemp_msg_empty());
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode_value(AEMP_FRAMING_JSON, &out, empty);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "[]", 2);
    struct fc_frame e;
    decode_frame(AEMP_FRAMING_JSON, out.data, out.len, &e);
    assert_true(e.empty);
    assert_null(e.dest);
    assert_int_equal(aemp_msg_len(e.msg), 0);
    free_frame(&e);
    aemp__buf_free(&out);

    aemp__frame_encode_value(AEMP_FRAMING_CBOR, &out, empty);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], 0x80);
    decode_frame(AEMP_FRAMING_CBOR, out.data, out.len, &e);
    assert_true(e.empty);
    assert_null(e.dest);
    assert_int_equal(aemp_msg_len(e.msg), 0);
    free_frame(&e);
    aemp__buf_free(&out);
    /* indefinite-length [] too */
    decode_frame(AEMP_FRAMING_CBOR, "\x9f\xff", 2, &e);
    assert_true(e.empty);
    free_frame(&e);

    /* [] [ ] between other frames, with whitespace; ["a"] is no keepalive */
    const char s[] = " [] \n[\"a\"]\t[ ]\r\n[[]]";
    fc_frames_t fr;
    decode_all(AEMP_FRAMING_JSON, (const uint8_t *)s, sizeof s - 1, 1, NULL, NULL, 0, &fr);
    assert_int_equal(fr.n, 4);
    assert_true(fr.v[0].empty && fr.v[2].empty);
    assert_false(fr.v[1].empty || fr.v[3].empty);
    assert_string_equal(fr.v[1].dest, "a");
    assert_int_equal(aemp_msg_len(fr.v[1].msg), 0);
    assert_null(fr.v[3].dest); /* [[]]: element 0 is no string */
    assert_int_equal(aemp_msg_len(fr.v[3].msg), 0);
    fc_frames_free(&fr);
}

/* A frame whose element 0 is no string: no destination, the message is
 * still decoded (elements 1..). */
static void non_string_destination(void **state)
{
    static const struct {
        aemp_framing_t f;
        const char *p;
        size_t n;
        const char *want;
    } cases[] = {
        { AEMP_FRAMING_JSON, "[1,2,3]", 7, "[2,3]" },
        { AEMP_FRAMING_JSON, "[{\"a\":[1]},\"x\"]", 15, "[\"x\"]" },
        { AEMP_FRAMING_JSON, "[null]", 6, "[]" },
        { AEMP_FRAMING_CBOR, "\x83\x01\x02\x03", 4, "[2,3]" },
        { AEMP_FRAMING_CBOR, "\x82\xa1\x61" "a\x81\x01\x61x", 8, "[\"x\"]" },
        { AEMP_FRAMING_CBOR, "\x81\xf6", 2, "[]" },
        { AEMP_FRAMING_CBOR, "\x82\xc1\x01\x02", 4, "[2]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fc_frame e;
        decode_frame(cases[i].f, cases[i].p, cases[i].n, &e);
        assert_null(e.dest);
        assert_false(e.empty);
        tu_assert_msg(e.msg, cases[i].want);
        free_frame(&e);
    }
}

/* ------------------------------------------------------------ JSON values */

/* A reproducible pseudo-random sequence (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}


/* The single element of the frame ["", text] decoded. */
static aemp_msg_t *json_value(const char *text)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "[\"\",%s]", text);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    struct fc_frame e;
    decode_frame(AEMP_FRAMING_JSON, buf, (size_t)n, &e);
    assert_int_equal(aemp_msg_len(e.msg), 1);
    aemp_msg_t *m = aemp_msg_ref(e.msg);
    free_frame(&e);
    return m;
}

static void json_numbers(void **state)
{
    struct {
        const char *text;
        aemp_type_t type;
        int64_t i;
        uint64_t u;
        double d;
    } cases[] = {
        { "0", AEMP_T_INT, 0, 0, 0 },
        { "-0", AEMP_T_INT, 0, 0, 0 },
        { "42", AEMP_T_INT, 42, 0, 0 },
        { "9223372036854775807", AEMP_T_INT, INT64_MAX, 0, 0 },
        { "-9223372036854775808", AEMP_T_INT, INT64_MIN, 0, 0 },
        { "9223372036854775808", AEMP_T_UINT, 0, (uint64_t)INT64_MAX + 1, 0 },
        { "18446744073709551615", AEMP_T_UINT, 0, UINT64_MAX, 0 },
        /* beyond 64 bits: doubles, as JSON::XS does */
        { "18446744073709551616", AEMP_T_DOUBLE, 0, 0, 18446744073709551616.0 },
        { "-9223372036854775809", AEMP_T_DOUBLE, 0, 0, -9223372036854775809.0 },
        { "-18446744073709551616", AEMP_T_DOUBLE, 0, 0, -18446744073709551616.0 },
        { "123456789012345678901234567890", AEMP_T_DOUBLE, 0, 0, 123456789012345678901234567890.0 },
        { "1.0", AEMP_T_DOUBLE, 0, 0, 1.0 },
        { "-0.0", AEMP_T_DOUBLE, 0, 0, -0.0 },
        { "1e2", AEMP_T_DOUBLE, 0, 0, 100.0 },
        { "1E+2", AEMP_T_DOUBLE, 0, 0, 100.0 },
        { "25e-1", AEMP_T_DOUBLE, 0, 0, 2.5 },
        { "0.1", AEMP_T_DOUBLE, 0, 0, 0.1 },
        { "0.30000000000000004", AEMP_T_DOUBLE, 0, 0, 0.30000000000000004 },
        { "1.7976931348623157e308", AEMP_T_DOUBLE, 0, 0, DBL_MAX },
        { "2.2250738585072014e-308", AEMP_T_DOUBLE, 0, 0, DBL_MIN },
        { "5e-324", AEMP_T_DOUBLE, 0, 0, 5e-324 },
        { "4.9406564584124654e-324", AEMP_T_DOUBLE, 0, 0, 5e-324 },
        { "1e-400", AEMP_T_DOUBLE, 0, 0, 0.0 },
        { "9007199254740993.0", AEMP_T_DOUBLE, 0, 0, 9007199254740992.0 },
        { "1e400", AEMP_T_DOUBLE, 0, 0, INFINITY },
        { "-1e400", AEMP_T_DOUBLE, 0, 0, -INFINITY },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aemp_msg_t *m = json_value(cases[i].text);
        const aemp_val_t *v = aemp_msg_at(m, 0);
        if (aemp_val_type(v) != cases[i].type)
            fail_msg("%s: type %s", cases[i].text, aemp_type_name(aemp_val_type(v)));
        int64_t iv;
        uint64_t uv;
        double dv;
        switch (cases[i].type) {
        case AEMP_T_INT:
            assert_int_equal(aemp_val_int(v, &iv), 0);
            assert_true(iv == cases[i].i);
            break;
        case AEMP_T_UINT:
            assert_int_equal(aemp_val_uint(v, &uv), 0);
            assert_true(uv == cases[i].u);
            break;
        default:
            assert_int_equal(aemp_val_double(v, &dv), 0);
            if (!(dv == cases[i].d) || signbit(dv) != signbit(cases[i].d))
                fail_msg("%s: got %.17g", cases[i].text, dv);
        }
        aemp_msg_unref(m);
    }

    /* a 400-digit integer is a double too (an infinity, as in Perl) */
    char big[420];
    memset(big, '9', 400);
    big[400] = 0;
    aemp_msg_t *m = json_value(big);
    double dv;
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 0)), AEMP_T_DOUBLE);
    assert_int_equal(aemp_msg_double(m, 0, &dv), 0);
    assert_true(isinf(dv) && dv > 0);
    aemp_msg_unref(m);

    /* mantissas of 15..19 digits with small exponents: where the exact
     * fast path ends */
    for (int k = 0; k < 20000; k++) {
        char txt[64];
        unsigned nd = 15 + (unsigned)(rnd() % 5), n = 0;
        for (unsigned i = 0; i < nd; i++)
            txt[n++] = (char)('0' + (i == 0 ? 1 + rnd() % 9 : rnd() % 10));
        snprintf(txt + n, sizeof txt - n, "e%d", (int)(rnd() % 45) - 22);
        m = json_value(txt);
        aemp_msg_double(m, 0, &dv);
        double want = strtod(txt, NULL);
        if (memcmp(&dv, &want, sizeof dv))
            fail_msg("%s: got %.17g, strtod %.17g", txt, dv, want);
        aemp_msg_unref(m);
    }

    /* reals read exactly as strtod reads them (the fast path and the slow
     * one), over many generated decimal texts */
    for (int k = 0; k < 50000; k++) {
        char txt[80];
        size_t n = 0;
        if (rnd() & 1)
            txt[n++] = '-';
        unsigned nd = 1 + (unsigned)(rnd() % 25), point = (unsigned)(rnd() % (nd + 1));
        if (rnd() % 4 == 0) { /* 0.xxx */
            txt[n++] = '0';
            point = 1;
            nd++;
        }
        for (unsigned i = n && txt[n - 1] == '0' ? 1 : 0; i < nd; i++) {
            if (i == point && i > 0)
                txt[n++] = '.';
            txt[n++] = (char)('0' + (i == 0 ? 1 + rnd() % 9 : rnd() % 10));
        }
        int has_point = point > 0 && point < nd;
        if (!has_point || rnd() % 2)
            n += (size_t)snprintf(txt + n, sizeof txt - n, "e%d", (int)(rnd() % 701) - 350);
        txt[n] = 0;
        m = json_value(txt);
        assert_int_equal(aemp_val_type(aemp_msg_at(m, 0)), AEMP_T_DOUBLE);
        aemp_msg_double(m, 0, &dv);
        double want = strtod(txt, NULL);
        if (memcmp(&dv, &want, sizeof dv))
            fail_msg("%s: got %.17g, strtod %.17g", txt, dv, want);
        aemp_msg_unref(m);
    }
}

static void json_strings(void **state)
{
    static const struct {
        const char *text;
        const char *want;
        size_t len;
    } cases[] = {
        { "\"\"", "", 0 },
        { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8 },
        { "\"\\u0000\"", "\0", 1 },
        { "\"a\\u0000b\"", "a\0b", 3 },
        { "\"\\u0041\\u00e4\\u00E4\\u263a\\uffff\"", "A\xc3\xa4\xc3\xa4\xe2\x98\xba\xef\xbf\xbf", 11 },
        { "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4 },
        { "\"\\u007f\\u0080\\u07ff\\u0800\\uFFFD\"", "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbd", 11 },
        { "\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4 },
        { "\"x\\ud800\\udc00y\"", "x\xf0\x90\x80\x80y", 6 },
        { "\"raw \xc3\xa4 \xe2\x98\xba \xf0\x9f\x98\x80 \x7f\"", "raw \xc3\xa4 \xe2\x98\xba \xf0\x9f\x98\x80 \x7f", 17 },
        { "\"long plain ascii string, more than eight bytes\"",
          "long plain ascii string, more than eight bytes", 46 },
        { "\"0123456789abcdef\\n0123456789abcdef\"", "0123456789abcdef\n0123456789abcdef", 33 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aemp_msg_t *m = json_value(cases[i].text);
        size_t n;
        const char *s = aemp_msg_str(m, 0, &n);
        assert_int_equal(aemp_val_type(aemp_msg_at(m, 0)), AEMP_T_STR);
        if (n != cases[i].len || memcmp(s, cases[i].want, n))
            fail_msg("%s: got %zu bytes", cases[i].text, n);
        assert_int_equal(s[n], 0); /* NUL-terminated */
        aemp_msg_unref(m);
    }
    /* the destination is decoded the same way */
    struct fc_frame e;
    decode_frame(AEMP_FRAMING_JSON, "[\"a\\u00e4\\n\\u0000\"]", 19, &e);
    assert_int_equal(e.destlen, 5);
    assert_memory_equal(e.dest, "a\xc3\xa4\n\0", 6);
    free_frame(&e);
    /* object keys too; pairs keep their order */
    aemp_msg_t *m = json_value("{\"z\":1,\"\\u00e4\":2,\"a\":3}");
    assert_msg_eq(m, aemp_msgf("{s:i,s:i,s:i}", "z", 1, "\xc3\xa4", 2, "a", 3));
    aemp_msg_unref(m);
}

/* Every byte the JSON codec treats specially, at every position of a
 * string longer than a few words (the word-at-a-time paths): the encoder
 * escapes it or writes the UTF-8 of its code point, the decoder refuses it
 * raw where JSON does, at its exact offset. */
static void json_special_bytes_everywhere(void **state)
{
    static const uint8_t special[] = { 0x00, 0x01, 0x08, 0x0a, 0x1f, '"', '\\', 0x7f, 0x80, 0xc3, 0xff };
    char err[160], want[160];
    for (size_t k = 0; k < sizeof special; k++) {
        for (size_t pos = 0; pos < 40; pos++) {
            char str[40], frame[64];
            for (size_t i = 0; i < sizeof str; i++)
                str[i] = (char)('a' + i % 26);
            str[pos] = (char)special[k];
            if (special[k] == '\\' && pos + 1 < sizeof str)
                str[pos + 1] = 'q'; /* no valid escape */
            for (int bytes = 0; bytes <= 1; bytes++) {
                aemp_msg_t *m = bytes ? aemp_msgf("y", str, sizeof str) : aemp_msgf("s#", str, sizeof str);
                aemp_buf_t out = AEMP_BUF_INIT;
                aemp__frame_encode(AEMP_FRAMING_JSON, &out, "", 0, m);
                for (size_t i = 0; i < out.len; i++)
                    assert_true(out.data[i] >= 0x20);
                struct fc_frame e;
                decode_frame(AEMP_FRAMING_JSON, out.data, out.len, &e);
                assert_msg_eq(e.msg, fc_json_view(m));
                free_frame(&e);
                aemp__buf_free(&out);
                aemp_msg_unref(m);
            }
            /* raw in a JSON text */
            if (special[k] == '"')
                continue;
            frame[0] = '[';
            frame[1] = '"';
            memcpy(frame + 2, str, sizeof str);
            memcpy(frame + 2 + sizeof str, "\"]", 2);
            size_t n = 4 + sizeof str;
            int rc = feed(AEMP_FRAMING_JSON, 0, frame, n, err, sizeof err);
            uint8_t c = special[k];
            if (c == 0x7f) {
                assert_int_equal(rc, 1);
                continue;
            }
            if (c < 0x20)
                snprintf(want, sizeof want, "malformed JSON frame at byte %zu: unescaped control "
                         "character 0x%02x in a string", pos + 2, c);
            else if (c == '\\')
                snprintf(want, sizeof want, "malformed JSON frame at byte %zu: invalid escape "
                         "'\\%c' in a string", pos + 2, pos + 1 < sizeof str ? str[pos + 1] : '"');
            else
                snprintf(want, sizeof want, "malformed JSON frame at byte %zu: invalid UTF-8 "
                         "sequence starting with byte 0x%02x in a string", pos + 2, c);
            if (c == '\\' && pos + 1 == sizeof str) /* escapes the closing quote: incomplete */
                assert_int_equal(rc, 0);
            else if (rc != -1 || strcmp(err, want))
                fail_msg("byte 0x%02x at %zu: rc %d, '%s', want '%s'", c, pos, rc, err, want);
        }
    }
}

/* A message of one element nested `depth` arrays deep, around a 1. */
static aemp_msg_t *deep_msg(int depth)
{
    aemp_build_t *b = aemp_build_new();
    for (int i = 0; i < depth; i++)
        aemp_build_array(b);
    aemp_build_int(b, 1);
    for (int i = 0; i < depth; i++)
        aemp_build_close(b);
    return aemp_build_msg(b);
}

/* The reader keeps no builder between frames: it gives it back to msg.c
 * (which trims a big one) after every frame, so that idle connections
 * hold no builder storage; its destination buffer shrinks again after a
 * big frame.  (The messages are nested deeper than CBOR's decoding by
 * levels goes: flat ones and shallower ones take no builder.) */
static void reader_memory(void **state)
{
    for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
        size_t n = 100000;
        char *big = malloc(n);
        memset(big, 'd', n);
        aemp_msg_t *small = deep_msg(20);   /* beyond the levels: the builder's */
        aemp_buf_t in = AEMP_BUF_INIT;
        aemp__frame_encode((aemp_framing_t)f, &in, "p", 1, small);
        aemp__frame_encode((aemp_framing_t)f, &in, big, n, small);
        aemp__frame_encode((aemp_framing_t)f, &in, "p", 1, small);
        aemp_frame_reader_t r;
        aemp_frame_t fr;
        aemp__frame_reader_init(&r, (aemp_framing_t)f, 0);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
        aemp_msg_unref(fr.msg);
        assert_int_equal(r.built, 1);
        assert_null(r.build); /* given back after the frame */
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
        assert_int_equal(fr.destlen, n);
        assert_memory_equal(fr.dest, big, n);
        assert_true(r.destcap > n);
        aemp_msg_unref(fr.msg);
        assert_null(r.build);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
        assert_string_equal(fr.dest, "p");
        assert_true(r.destcap <= 4096);
        aemp_msg_unref(fr.msg);
        aemp__frame_reader_free(&r);
        aemp__buf_free(&in);
        aemp_msg_unref(small);
        free(big);
    }
}

/* ------------------------------------------------------------ splitting */

static void many_frames_one_read(void **state)
{
    for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
        aemp_buf_t out = AEMP_BUF_INIT;
        for (int i = 0; i < 1000; i++) {
            aemp_msg_t *msg = aemp_msgf("sis", "tag", i, "x]\"[{");
            aemp__frame_encode((aemp_framing_t)f, &out, "port", 4, msg);
            if (f == AEMP_FRAMING_JSON && i % 3 == 0)
                aemp__buf_puts(&out, "\n ");
            aemp_msg_unref(msg);
        }
        aemp_frame_reader_t r;
        aemp__frame_reader_init(&r, (aemp_framing_t)f, 1024);
        aemp_frame_t fr;
        int n = 0;
        while (aemp__frame_next(&r, &out, &fr) == 1) {
            int64_t v;
            assert_string_equal(fr.dest, "port");
            assert_int_equal(aemp_msg_int(fr.msg, 1, &v), 0);
            assert_int_equal(v, n);
            assert_string_equal(aemp_msg_str(fr.msg, 2, NULL), "x]\"[{");
            aemp_msg_unref(fr.msg);
            n++;
        }
        assert_int_equal(n, 1000);
        assert_int_equal(aemp__buf_used(&out), 0);
        aemp__frame_reader_free(&r);
        aemp__buf_free(&out);
    }
}

static void truncated_needs_more(void **state)
{
    /* JSON: brackets and escapes inside strings, cut everywhere */
    const char s[] = "[\"a]\\\"[\\\\\",{\"k]\":[1,2]},\"\\u0000\"]";
    for (size_t cut = 0; cut < sizeof s - 1; cut++) {
        aemp_frame_reader_t r;
        aemp_buf_t in = AEMP_BUF_INIT;
        aemp_frame_t fr;
        aemp__frame_reader_init(&r, AEMP_FRAMING_JSON, 0);
        aemp__buf_append(&in, s, cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0);
        assert_null(fr.msg);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0); /* idempotent */
        aemp__buf_append(&in, s + cut, sizeof s - 1 - cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
        assert_string_equal(fr.dest, "a]\"[\\");
        assert_msg_eq(fr.msg, aemp_msgf("{s:[ii]}s#", "k]", 1, 2, "\0", (size_t)1));
        aemp_msg_unref(fr.msg);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0);
        aemp__buf_free(&in);
        aemp__frame_reader_free(&r);
    }

    /* CBOR: [256, "", [_ 1], {_ "k": h'6869'}] cut everywhere (heads too) */
    const uint8_t c[] = { 0x84, 0x19, 0x01, 0x00, 0x60, 0x9f, 0x01, 0xff,
                          0xbf, 0x61, 'k', 0x42, 'h', 'i', 0xff };
    for (size_t cut = 0; cut < sizeof c; cut++) {
        aemp_frame_reader_t r;
        aemp_buf_t in = AEMP_BUF_INIT;
        aemp_frame_t fr;
        aemp__frame_reader_init(&r, AEMP_FRAMING_CBOR, 0);
        aemp__buf_append(&in, c, cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0);
        aemp__buf_append(&in, c + cut, sizeof c - cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
        assert_null(fr.dest); /* element 0 is 256 */
        assert_msg_eq(fr.msg, aemp_msgf("s[i]{s:y}", "", 1, "k", "hi", (size_t)2));
        aemp_msg_unref(fr.msg);
        aemp__buf_free(&in);
        aemp__frame_reader_free(&r);
    }
}

/* What a reader makes of a stream: every result code but 0, the error
 * text, the frames (destination and message) and how far the stream was
 * consumed after each result. */
typedef struct split_run {
    int rc[16];
    size_t taken[16]; /* bytes of the stream consumed after each result */
    char err[160];
    fc_frames_t frames;
    size_t ncalls;
} split_run_t;

/* Feed p[0..len) to a reader with limit max: first p[0..cut) (if cut is
 * nonzero), then the rest `step` bytes at a time (0 = all at once),
 * calling aemp__frame_next until it wants more after each read; record it
 * all in *out. */
static void split_feed(aemp_framing_t f, size_t max, const uint8_t *p, size_t len, size_t cut,
                       size_t step, split_run_t *out)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    size_t fed = 0;
    int failed = 0;
    memset(out, 0, sizeof *out);
    aemp__frame_reader_init(&r, f, max);
    while (!failed && fed < len) {
        size_t n = fed == 0 && cut ? cut : step ? step : len - fed;
        if (n > len - fed)
            n = len - fed;
        aemp__buf_append(&in, p + fed, n);
        fed += n;
        for (;;) {
            aemp_frame_t fr;
            int rc = aemp__frame_next(&r, &in, &fr);
            if (rc == 0)
                break; /* a read that completes nothing is not recorded */
            assert_true(out->ncalls < 16);
            out->rc[out->ncalls] = rc;
            out->taken[out->ncalls++] = fed - aemp__buf_used(&in);
            if (rc < 0) {
                assert_null(fr.msg);
                snprintf(out->err, sizeof out->err, "%s", r.error);
                failed = 1;
                break;
            }
            fc_check_frame(&fr);
            fc_frames_push(&out->frames, &fr);
            aemp_msg_unref(fr.msg);
        }
    }
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

static void split_same(const split_run_t *a, const split_run_t *b, const char *what, size_t cut)
{
    if (a->ncalls != b->ncalls || memcmp(a->rc, b->rc, sizeof a->rc) ||
        memcmp(a->taken, b->taken, sizeof a->taken) || strcmp(a->err, b->err) ||
        a->frames.n != b->frames.n)
        fail_msg("%s (cut %zu): %zu vs %zu results, error '%s' vs '%s'", what, cut, a->ncalls,
                 b->ncalls, a->err, b->err);
    for (size_t i = 0; i < a->frames.n; i++) {
        const struct fc_frame *x = &a->frames.v[i], *y = &b->frames.v[i];
        assert_int_equal(x->empty, y->empty);
        assert_int_equal(!x->dest, !y->dest);
        assert_int_equal(x->destlen, y->destlen);
        if (x->dest)
            assert_memory_equal(x->dest, y->dest, x->destlen);
        assert_val_eq(aemp_msg_root(x->msg), aemp_msg_root(y->msg));
    }
}

/* A frame decodes in one pass when it is all there and through the
 * scanner when it arrives in pieces: both ways must give the same frames,
 * the same errors at the same bytes and the same limits, whether the
 * stream comes at once, in two reads cut at every position, or one byte
 * per read. */
static void one_pass_vs_pieces(void **state)
{
    (void)state;
    static const struct {
        aemp_framing_t f;
        size_t max;
        const char *hex; /* CBOR as hex, or NULL */
        const char *text;
    } cases[] = {
        { AEMP_FRAMING_JSON, 0, NULL, "[\"port\",\"tag\",123] [\"p\\u00e9\\\"x\",{\"k\":[1,-2.5e3,true,null]}]" },
        { AEMP_FRAMING_JSON, 0, NULL, " \r\n[]\t[\"a long destination name here\",\"\\\\ \\\" \\/ \\b\\f\\n\\r\\t \\ud83d\\ude00 caf\xc3\xa9 and more text\"]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[1,[2,[3]],18446744073709551615,18446744073709551616,-9223372036854775808,12345678901234567890123e-5]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\"]  [\"b\",\"unterminated" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",1 2]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",\"\x01\"]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",\"\xc3\x28\"]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",\"\\x\"]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",\"\\ud800\"]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",tru]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",{\"k\" 1}]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",01]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[\"a\",1.]" },
        { AEMP_FRAMING_JSON, 0, NULL, "[1]{\"a\":1}" },
        { AEMP_FRAMING_JSON, 0, NULL, "[1] x" },
        { AEMP_FRAMING_JSON, 0, NULL, "[1,]]]" },
        { AEMP_FRAMING_JSON, 12, NULL, "[\"ab\",12345][\"ab\",123456]" },
        { AEMP_FRAMING_JSON, 12, NULL, "[\"ab\",123] [\"abc\",\"]]]]]]]]]]]\"]" },
        { AEMP_FRAMING_JSON, 5, NULL, "[[[[" },
        { AEMP_FRAMING_CBOR, 0, "8364706f7274637461671837" "82617001" "80" "c1c28261710a", NULL },
        { AEMP_FRAMING_CBOR, 0, "9f7f6170617aff5f4101420203ffbf616b9f01fff9" "3c00" "fa3fc00000fb3ff8000000000000f5f4f6f7ffff", NULL },
        { AEMP_FRAMING_CBOR, 0, "83a20102030404" "3bffffffffffffffff" "82018261611b0000000100000000", NULL },
        { AEMP_FRAMING_CBOR, 0, "82616101" "8261613f", NULL },    /* indefinite integer */
        { AEMP_FRAMING_CBOR, 0, "82616101" "8261a1a13f01", NULL }, /* ... as a map key */
        { AEMP_FRAMING_CBOR, 0, "8261617f61616201ff", NULL },    /* bad chunk */
        { AEMP_FRAMING_CBOR, 0, "826161dfd000", NULL },          /* indefinite tag */
        { AEMP_FRAMING_CBOR, 0, "df8161", NULL },                /* ... before the frame */
        { AEMP_FRAMING_CBOR, 0, "826161bf01ff", NULL },          /* key without value */
        { AEMP_FRAMING_CBOR, 0, "826161c6ff", NULL },            /* tag without content */
        { AEMP_FRAMING_CBOR, 0, "826161c19fff", NULL },          /* ... as the scanner sees it */
        { AEMP_FRAMING_CBOR, 0, "826161c19f9fffff", NULL },
        { AEMP_FRAMING_CBOR, 0, "826161c1829fff01", NULL },
        { AEMP_FRAMING_CBOR, 0, "826161c15fff", NULL },
        { AEMP_FRAMING_CBOR, 0, "82c15fff01", NULL },
        { AEMP_FRAMING_CBOR, 0, "826161c15f4100ff" "c19f01ff" "d9d9f7c19f01c2ff", NULL },
        { AEMP_FRAMING_CBOR, 0, "826161f800", NULL },            /* simple value */
        { AEMP_FRAMING_CBOR, 0, "826161a1f401", NULL },          /* bad map key */
        { AEMP_FRAMING_CBOR, 0, "8261611c", NULL },              /* reserved */
        { AEMP_FRAMING_CBOR, 0, "a0", NULL },                    /* not an array */
        { AEMP_FRAMING_CBOR, 9, "83616161620a" "8361616162190100", NULL },
        { AEMP_FRAMING_CBOR, 9, "8261619a00010000", NULL },      /* count beyond the limit */
        { AEMP_FRAMING_CBOR, 0, "8261615a00000010", NULL },      /* truncated string */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        uint8_t buf[512];
        const uint8_t *p = buf;
        size_t len;
        if (cases[c].hex) {
            len = unhex(cases[c].hex, buf);
        } else {
            p = (const uint8_t *)cases[c].text;
            len = strlen(cases[c].text);
        }
        split_run_t whole, piece;
        split_feed(cases[c].f, cases[c].max, p, len, 0, 0, &whole);
        for (size_t cut = 1; cut < len; cut++) {
            split_feed(cases[c].f, cases[c].max, p, len, cut, 0, &piece);
            split_same(&whole, &piece, cases[c].hex ? cases[c].hex : cases[c].text, cut);
            fc_frames_free(&piece.frames);
        }
        split_feed(cases[c].f, cases[c].max, p, len, 0, 1, &piece);
        split_same(&whole, &piece, cases[c].hex ? cases[c].hex : cases[c].text, 0);
        fc_frames_free(&piece.frames);
        fc_frames_free(&whole.frames);
    }

    /* deep nesting: at the limit it decodes, one more is refused, alike */
    for (int extra = 0; extra < 2; extra++) {
        for (int cbor = 0; cbor < 2; cbor++) {
            uint8_t b[4 * AEMP_MSG_MAX_DEPTH + 8];
            size_t n = 0, levels = AEMP_MSG_MAX_DEPTH + (size_t)extra;
            if (cbor) {
                for (size_t i = 0; i + 1 < levels; i++)
                    b[n++] = 0x81;
                b[n++] = 0x80;
            } else {
                for (size_t i = 0; i < levels; i++)
                    b[n++] = '[';
                for (size_t i = 0; i < levels; i++)
                    b[n++] = ']';
            }
            aemp_framing_t f = cbor ? AEMP_FRAMING_CBOR : AEMP_FRAMING_JSON;
            split_run_t whole, piece;
            split_feed(f, 0, b, n, 0, 0, &whole);
            assert_int_equal(whole.rc[0], extra ? -1 : 1);
            for (size_t cut = 1; cut < n; cut += 7) {
                split_feed(f, 0, b, n, cut, 0, &piece);
                split_same(&whole, &piece, "deep", cut);
                fc_frames_free(&piece.frames);
            }
            fc_frames_free(&whole.frames);
        }
    }
}

/* A ~4 MB frame fed one byte per call: completes only if scanning is linear. */
static void big_frame_bytewise(aemp_framing_t f)
{
    size_t slen = 3 * 1024 * 1024;
    char *s = malloc(slen);
    for (size_t i = 0; i < slen; i++)
        s[i] = (i % 1000 == 999) ? '"' : (i % 777 == 0) ? '\\' : (char)('a' + i % 26);
    aemp_build_t *b = aemp_build_new();
    aemp_build_strn(b, s, slen);
    aemp_build_array(b);
    for (int i = 0; i < 100000; i++)
        if (i % 2)
            aemp_build_int(b, i * 1000);
        else
            aemp_build_fmt(b, "[i]", i);
    aemp_build_close(b);
    aemp_msg_t *msg = aemp_build_msg(b);
    assert_non_null(msg);
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(f, &out, "big", 3, msg);
    assert_true(out.len > 3 * 1024 * 1024);

    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr = { 0 };
    aemp__frame_reader_init(&r, f, 16 * 1024 * 1024);
    size_t i;
    for (i = 0; i < out.len; i++) {
        aemp__buf_append(&in, out.data + i, 1);
        int rc = aemp__frame_next(&r, &in, &fr);
        if (rc < 0)
            fail_msg("%s", r.error);
        if (rc == 1)
            break;
    }
    assert_int_equal(i, out.len - 1);
    assert_non_null(fr.msg);
    assert_string_equal(fr.dest, "big");
    assert_val_eq(aemp_msg_root(fr.msg), aemp_msg_root(msg));
    aemp_msg_unref(fr.msg);
    free(s);
    aemp_msg_unref(msg);
    aemp__buf_free(&out);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

static void json_big_bytewise(void **state) { big_frame_bytewise(AEMP_FRAMING_JSON); }
static void cbor_big_bytewise(void **state) { big_frame_bytewise(AEMP_FRAMING_CBOR); }

/* ------------------------------------------------------------ limits, errors */

static void max_frame(void **state)
{
    char err[160];
    char big[300];
    big[0] = '[';
    big[1] = '"';
    memset(big + 2, 'x', sizeof big - 2);

    /* incomplete frame larger than the limit: error before it completes */
    assert_int_equal(feed(AEMP_FRAMING_JSON, 100, big, sizeof big, err, sizeof err), -1);
    assert_string_equal(err, "frame of more than 100 bytes exceeds the limit");

    /* exactly at the limit is fine */
    char at[100];
    memset(at, 'y', sizeof at);
    memcpy(at, "[\"", 2);
    memcpy(at + 98, "\"]", 2);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 100, at, sizeof at, NULL, 0), 1);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 99, at, sizeof at, err, sizeof err), -1);
    assert_string_equal(err, "frame of more than 99 bytes exceeds the limit");

    /* byte-wise: the error comes with byte 101 */
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr;
    aemp__frame_reader_init(&r, AEMP_FRAMING_JSON, 100);
    for (size_t i = 0; i < 100; i++) {
        aemp__buf_append(&in, big + i, 1);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0);
    }
    aemp__buf_append(&in, big + 100, 1);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    aemp__buf_append(&in, "\"][]", 4);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1); /* stays failed */
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);

    /* CBOR: a string head announcing 16 MiB fails at once */
    const uint8_t c[] = { 0x82, 0x60, 0x5a, 0x01, 0x00, 0x00, 0x00 };
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 16777216, c, sizeof c, err, sizeof err), -1);
    assert_string_equal(err, "frame of more than 16777216 bytes exceeds the limit");
    /* ... and an array head announcing more items than bytes allowed */
    const uint8_t c2[] = { 0x9a, 0x00, 0x10, 0x00, 0x00 };
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 1000, c2, sizeof c2, err, sizeof err), -1);
    assert_string_equal(err, "frame of more than 1000 bytes exceeds the limit");
    /* a big CBOR frame in pieces */
    uint8_t *cb = calloc(1, 2000);
    cb[0] = 0x81;
    cb[1] = 0x59;
    cb[2] = 0x07;
    cb[3] = 0x00; /* bytes(1792) */
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 1000, cb, 1796, err, sizeof err), -1);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 1796, cb, 1796, err, sizeof err), 1);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 1795, cb, 10, err, sizeof err), -1);
    free(cb);
    /* unlimited */
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, c, sizeof c, err, sizeof err), 0);
}

/* A 16 MiB string in a frame exactly at the limit is taken in both
 * framings; one more byte is refused. */
static void max_frame_16mib(void **state)
{
    const size_t slen = 16u << 20, frame = slen + 7; /* ["",".."] and 82 60 5a <len> .. */
    char err[160];
    for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
        for (int over = 0; over <= 1; over++) {
            size_t n = slen + (size_t)over;
            char *s = malloc(n);
            memset(s, 's', n);
            aemp_msg_t *m = aemp_msgf("s#", s, n);
            aemp_buf_t out = AEMP_BUF_INIT;
            aemp__frame_encode((aemp_framing_t)f, &out, "", 0, m);
            assert_int_equal(out.len, frame + (size_t)over);
            aemp_frame_reader_t r;
            aemp_frame_t fr;
            aemp__frame_reader_init(&r, (aemp_framing_t)f, frame);
            int rc = aemp__frame_next(&r, &out, &fr);
            if (over) {
                assert_int_equal(rc, -1);
                snprintf(err, sizeof err, "frame of more than %zu bytes exceeds the limit", frame);
                assert_string_equal(r.error, err);
            } else {
                assert_int_equal(rc, 1);
                size_t got;
                const char *gs = aemp_msg_str(fr.msg, 0, &got);
                assert_int_equal(got, slen);
                assert_memory_equal(gs, s, slen);
                aemp_msg_unref(fr.msg);
            }
            aemp__frame_reader_free(&r);
            aemp__buf_free(&out);
            aemp_msg_unref(m);
            free(s);
        }
    }
}

/* Frames nested exactly AEMP_MSG_MAX_DEPTH deep (the frame's array counted)
 * are taken in both framings, and re-encode for the other; one level more
 * is refused by both, whatever the innermost container. */
static void depth_limits(void **state)
{
    const int max = AEMP_MSG_MAX_DEPTH;
    char err[160], want[160];
    for (int over = 0; over <= 1; over++) {
        int depth = max + over;
        for (int maps = 0; maps <= 1; maps++) {
            /* JSON: ["d", [[...[]...]]] or ["d", {"a":{"a":...{}...}}] */
            aemp_buf_t j = AEMP_BUF_INIT, c = AEMP_BUF_INIT;
            aemp__buf_puts(&j, "[\"d\",");
            aemp__buf_append(&c, "\x82\x61" "d", 3);
            for (int k = 2; k <= depth; k++) {
                if (maps) {
                    aemp__buf_puts(&j, k < depth ? "{\"a\":" : "{}");
                    aemp__buf_append(&c, k < depth ? "\xa1\x61" "a" : "\xa0", k < depth ? 3 : 1);
                } else {
                    aemp__buf_puts(&j, k < depth ? "[" : "[]");
                    aemp__buf_putc(&c, k < depth ? 0x81 : 0x80);
                }
            }
            for (int k = 2; k < depth; k++)
                aemp__buf_putc(&j, maps ? '}' : ']');
            aemp__buf_putc(&j, ']');
            int rj = feed(AEMP_FRAMING_JSON, 0, j.data, j.len, err, sizeof err);
            if (over) {
                assert_int_equal(rj, -1);
                snprintf(want, sizeof want,
                         "malformed JSON frame at byte %zu: nesting deeper than %d levels",
                         5 + (size_t)(max - 1) * (maps ? 5 : 1), max);
                assert_string_equal(err, want);
            } else {
                assert_int_equal(rj, 1); /* feed() re-encoded it both ways */
            }
            int rc = feed(AEMP_FRAMING_CBOR, 0, c.data, c.len, err, sizeof err);
            if (over) {
                assert_int_equal(rc, -1);
                snprintf(want, sizeof want,
                         "malformed CBOR frame: nesting deeper than %d levels at byte %zu", max,
                         3 + (size_t)(max - 1) * (maps ? 3 : 1));
                assert_string_equal(err, want);
            } else {
                assert_int_equal(rc, 1);
                /* the same value in both framings */
                aemp_msg_t *a = decode_one(AEMP_FRAMING_JSON, j.data, j.len);
                aemp_msg_t *b = decode_one(AEMP_FRAMING_CBOR, c.data, c.len);
                assert_val_eq(aemp_msg_root(a), aemp_msg_root(b));
                aemp_msg_unref(a);
                aemp_msg_unref(b);
            }
            aemp__buf_free(&j);
            aemp__buf_free(&c);
        }
    }
    /* a CBOR frame 2048 deep (accepted before, but no JSON peer could take
     * it) is refused */
    uint8_t *deep = malloc(2048);
    memset(deep, 0x81, 2047);
    deep[2047] = 0x80;
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, deep, 2048, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper than 512 levels"));
    free(deep);
    /* a message built as deep as allowed encodes and decodes */
    aemp_build_t *b = aemp_build_new();
    for (int k = 2; k <= max; k++)
        aemp_build_array(b);
    for (int k = 2; k <= max; k++)
        aemp_build_close(b);
    aemp_msg_t *m = aemp_build_msg(b);
    assert_non_null(m);
    for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
        aemp_buf_t out = AEMP_BUF_INIT;
        aemp__frame_encode((aemp_framing_t)f, &out, "d", 1, m);
        struct fc_frame e;
        decode_frame((aemp_framing_t)f, out.data, out.len, &e);
        assert_val_eq(aemp_msg_root(e.msg), aemp_msg_root(m));
        free_frame(&e);
        aemp__buf_free(&out);
    }
    aemp_msg_unref(m);
}

static void malformed_json(void **state)
{
    char err[160];
    EXPECT_JSON_ERROR("[1,}", "malformed JSON frame at byte 3: a value expected, found '}'");
    EXPECT_JSON_ERROR("[1 2]", "malformed JSON frame at byte 3: ',' or ']' expected, found '2'");
    EXPECT_JSON_ERROR("[1,]", "malformed JSON frame at byte 3: a value expected, found ']'");
    EXPECT_JSON_ERROR("[tru]", "malformed JSON frame at byte 1: a value expected, found 't'");
    EXPECT_JSON_ERROR("[nul,1]", "malformed JSON frame at byte 1: a value expected, found 'n'");
    EXPECT_JSON_ERROR("[\"\",+1]", "malformed JSON frame at byte 4: a value expected, found '+'");
    EXPECT_JSON_ERROR("[\"\",.5]", "malformed JSON frame at byte 4: a value expected, found '.'");
    EXPECT_JSON_ERROR("[\"\",01]", "malformed JSON frame at byte 5: ',' or ']' expected, found '1'");
    EXPECT_JSON_ERROR("[\"\",0x10]", "malformed JSON frame at byte 5: ',' or ']' expected, found 'x'");
    EXPECT_JSON_ERROR("[\"\",-]", "malformed JSON frame at byte 5: a digit must follow '-'");
    EXPECT_JSON_ERROR("[\"\",1.]",
                      "malformed JSON frame at byte 6: a digit must follow the '.' of a number");
    EXPECT_JSON_ERROR("[\"\",1e+]",
                      "malformed JSON frame at byte 7: a digit must follow the exponent mark of a number");
    EXPECT_JSON_ERROR("[\"\",\x01]", "malformed JSON frame at byte 4: a value expected, found byte 0x01");
    EXPECT_JSON_ERROR("[{\"a\":1,}]", "malformed JSON frame at byte 8: a string key expected, found '}'");
    EXPECT_JSON_ERROR("[{1:2}]", "malformed JSON frame at byte 2: a string key expected, found '1'");
    EXPECT_JSON_ERROR("[{\"a\" 1}]", "malformed JSON frame at byte 6: ':' expected, found '1'");
    EXPECT_JSON_ERROR("[{\"a\":1]}", "malformed JSON frame at byte 7: ',' or '}' expected, found ']'");
    EXPECT_JSON_ERROR("[1}", "malformed JSON frame at byte 2: ',' or ']' expected, found '}'");
    EXPECT_JSON_ERROR("[[1}]", "malformed JSON frame at byte 3: ',' or ']' expected, found '}'");
    /* strings: invalid UTF-8 with the offset of the offending byte */
#define BAD_UTF8(at, byte) \
    "malformed JSON frame at byte " #at ": invalid UTF-8 sequence starting with byte 0x" #byte " in a string"
    EXPECT_JSON_ERROR("[\"\xff\"]", BAD_UTF8(2, ff));
    EXPECT_JSON_ERROR("[\"ab\xc0\x80\"]", BAD_UTF8(4, c0));
    EXPECT_JSON_ERROR("[\"\xed\xa0\x80\"]", BAD_UTF8(2, ed));
    EXPECT_JSON_ERROR("[\"\xf4\x90\x80\x80\"]", BAD_UTF8(2, f4));
    EXPECT_JSON_ERROR("[\"\xe2\x9c\"]", BAD_UTF8(2, e2));
    EXPECT_JSON_ERROR("[\"a\",\"\x80\"]", BAD_UTF8(6, 80));
    EXPECT_JSON_ERROR("[\"\",{\"k\xfe\":1}]", BAD_UTF8(7, fe));
    EXPECT_JSON_ERROR("[\"a\tb\"]",
                      "malformed JSON frame at byte 3: unescaped control character 0x09 in a string");
    EXPECT_JSON_ERROR("[\"\\x\"]", "malformed JSON frame at byte 2: invalid escape '\\x' in a string");
    EXPECT_JSON_ERROR("[\"\\u12\"]",
                      "malformed JSON frame at byte 2: \\u must be followed by four hex digits");
    EXPECT_JSON_ERROR("[\"\\u12g4\"]",
                      "malformed JSON frame at byte 2: \\u must be followed by four hex digits");
    EXPECT_JSON_ERROR("[\"\",\"a\\udc00\"]",
                      "malformed JSON frame at byte 6: lone low surrogate \\uDC00 in a string");
    EXPECT_JSON_ERROR("[\"\\ud800\"]", "malformed JSON frame at byte 2: high surrogate \\uD800 not "
                                       "followed by a low one in a string");
    EXPECT_JSON_ERROR("[\"\\ud800\\u0041\"]", "malformed JSON frame at byte 2: high surrogate \\uD800 "
                                              "not followed by a low one in a string");
    /* not an array, garbage before the frame */
    EXPECT_JSON_ERROR("x[]", "malformed JSON frame at byte 0: unexpected byte 0x78");
    EXPECT_JSON_ERROR("]", "malformed JSON frame at byte 0: unexpected byte 0x5d");
    EXPECT_JSON_ERROR("{\"a\":1}", "frame is not an array");
    EXPECT_JSON_ERROR("  \"s\"", "frame is not an array");
    EXPECT_JSON_ERROR("17", "frame is not an array");
    /* accepted now: a NUL in an object key, integers beyond 64 bits */
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[{\"a\\u0000\":1}]", 15, err, sizeof err), 1);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[18446744073709551616]", 22, err, sizeof err), 1);

    /* deep nesting is refused while scanning */
    size_t n = 5000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, deep, n, err, sizeof err), -1);
    assert_string_equal(err, "malformed JSON frame at byte 512: nesting deeper than 512 levels");
    free(deep);

    /* truncated: need more, not an error */
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[\"abc", 5, err, sizeof err), 0);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[1,[2", 5, err, sizeof err), 0);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "  ", 2, err, sizeof err), 0);

    /* an error makes the reader unusable */
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr;
    aemp__frame_reader_init(&r, AEMP_FRAMING_JSON, 0);
    aemp__buf_puts(&in, "[1][2,]");
    assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
    aemp_msg_unref(fr.msg);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    assert_null(fr.msg);
    assert_null(fr.dest);
    aemp__buf_puts(&in, "[3]");
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    assert_null(fr.msg);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);

    /* no framing */
    aemp__frame_reader_init(&r, AEMP_FRAMING_NONE, 0);
    aemp__buf_puts(&in, "[]");
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    assert_string_equal(r.error, "no framing selected");
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

#define CB(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Decode the CBOR frame p[0..n) at once and byte-wise: its destination
 * must be want_dest (NULL: none, or a keepalive) and its message want
 * (consumed). */
static void cbor_decode_check(const uint8_t *p, size_t n, const char *want_dest, aemp_msg_t *want)
{
    assert_non_null(want);
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        fc_frames_t l;
        decode_all(AEMP_FRAMING_CBOR, p, n, bytewise ? 1 : n, NULL, NULL, 0, &l);
        assert_int_equal(l.n, 1);
        if (want_dest) {
            assert_non_null(l.v[0].dest);
            assert_string_equal(l.v[0].dest, want_dest);
        } else {
            assert_null(l.v[0].dest);
        }
        assert_val_eq(aemp_msg_root(l.v[0].msg), aemp_msg_root(want));
        fc_frames_free(&l);
    }
    aemp_msg_unref(want);
}

static void cbor_features(void **state)
{
    /* indefinite array, string (chunks), map; element 0 is 1: no dest */
    cbor_decode_check(CB(0x9f, 0x01, 0x5f, 0x42, 'a', 'b', 0x41, 'c', 0xff,
                         0x7f, 0x61, 'd', 0x60, 0xff, 0xbf, 0x61, 'k', 0xf7, 0xff, 0xff),
                      NULL, aemp_msgf("ys{s:n}", "abc", (size_t)3, "d", "k"));
    /* empty indefinite string (the destination) and containers */
    cbor_decode_check(CB(0x83, 0x5f, 0xff, 0x9f, 0xff, 0xbf, 0xff), "", aemp_msgf("[]{}"));
    /* a destination in chunks */
    cbor_decode_check(CB(0x82, 0x7f, 0x62, 'p', 'o', 0x62, 'r', 't', 0xff, 0x01), "port",
                      aemp_msgf("i", 1));
    /* floats: half 1.0, half -2.5, half subnormal, single 100000.0,
     * double 0.1, half inf, single NaN, half -inf (non-finite kept) */
    cbor_decode_check(CB(0x88, 0xf9, 0x3c, 0x00, 0xf9, 0xc1, 0x00, 0xf9, 0x00, 0x01,
                         0xfa, 0x47, 0xc3, 0x50, 0x00,
                         0xfb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a,
                         0xf9, 0x7c, 0x00, 0xfa, 0x7f, 0xc0, 0x00, 0x00, 0xf9, 0xfc, 0x00),
                      NULL, aemp_msgf("fffffff", -2.5, 5.9604644775390625e-8, 100000.0, 0.1,
                                      (double)INFINITY, (double)NAN, -(double)INFINITY));
    /* simple values, undefined -> null */
    cbor_decode_check(CB(0x84, 0xf4, 0xf5, 0xf6, 0xf7), NULL, aemp_msgf("bnn", 1));
    /* tags are skipped: on items, on keys, on the destination, on the frame */
    cbor_decode_check(CB(0xd9, 0xd9, 0xf7, 0x82, 0xc0, 0x61, 'x', 0xc1, 0xa1, 0xc2, 0x61, 'k', 0x01),
                      "x", aemp_msgf("{s:i}", "k", 1));
    /* integer keys become decimal text */
    cbor_decode_check(CB(0x82, 0x60, 0xa4, 0x01, 0x02, 0x20, 0x03, 0x1b, 0xff, 0xff, 0xff, 0xff,
                         0xff, 0xff, 0xff, 0xff, 0x04,
                         0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x05),
                      "", aemp_msgf("{s:i,s:i,s:i,s:i}", "1", 2, "-1", 3, "18446744073709551615", 4,
                                    "-18446744073709551616", 5));
    /* integer ranges: the whole uint64 range stays integers (INT/UINT),
     * below INT64_MIN becomes a double */
    cbor_decode_check(CB(0x85, 0x60, 0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
                      "", aemp_msgf("IIuf", INT64_MAX, INT64_MIN, UINT64_MAX, -18446744073709551616.0));
    /* byte strings stay byte strings, whatever their bytes */
    cbor_decode_check(CB(0x84, 0x60, 0x42, 0xc3, 0xbc, 0x43, 'g', 0xfc, 'n', 0x41, 0xff), "",
                      aemp_msgf("yyy", "\xc3\xbc", (size_t)2, "g\xfcn", (size_t)3, "\xff", (size_t)1));
    /* text strings keep their bytes even if not UTF-8; NUL kept */
    cbor_decode_check(CB(0x83, 0x60, 0x62, 0xe9, 0x00, 0x63, 'a', 0x00, 'b'), "",
                      aemp_msgf("s#s#", "\xe9\0", (size_t)2, "a\0b", (size_t)3));
    /* a byte-string map key stays a byte string */
    aemp_build_t *b = aemp_build_new();
    aemp_build_map(b);
    aemp_build_bytes(b, "\xe9", 1);
    aemp_build_int(b, 1);
    aemp_build_close(b);
    cbor_decode_check(CB(0x82, 0x60, 0xa1, 0x41, 0xe9, 0x01), "", aemp_build_msg(b));
    /* longer heads for short values are fine */
    cbor_decode_check(CB(0x98, 0x02, 0x18, 0x05, 0x79, 0x00, 0x01, 'z'), NULL, aemp_msgf("s", "z"));
}

/* Containers large enough that the decoder makes room for them at once
 * (arrays that reserve after other cells were built; a snapshot's map of
 * thousands of keys; many large maps in one array, each reserving its own
 * room): the message comes out the same whether
 * the frame arrives at once, in 1000-byte chunks or one byte at a time,
 * and a count that claims more than the frame holds reserves no more
 * than the bytes at hand and only waits for the rest. */
static void cbor_large_containers(void **state)
{
    aemp_build_t *b = aemp_build_new();
    char key[32];
    /* small containers that reserve after other cells: room is made
     * beyond what is built already */
    for (int a = 0; a < 3; a++) {
        aemp_build_array(b);
        for (int i = 0; i < 40; i++)
            aemp_build_int(b, a * 100 + i);
        aemp_build_close(b);
    }
    aemp_build_map(b);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "w%d#port%d", i, i * 7);
        aemp_build_str(b, key);
        if (i % 3)
            aemp_build_int(b, i);
        else
            aemp_build_null(b);
    }
    aemp_build_close(b);
    aemp_build_array(b);
    for (int m = 0; m < 60; m++) {
        aemp_build_map(b);
        for (int i = 0; i < 40; i++) {
            snprintf(key, sizeof key, "k%d.%d", m, i);
            aemp_build_str(b, key);
            aemp_build_str(b, key + 1);
        }
        aemp_build_close(b);
    }
    aemp_build_close(b);
    aemp_msg_t *vals = aemp_build_msg(b);
    /* as encoded (decoded by levels), and with a tag on the whole frame
     * (which the levels leave to the builder, whose reservations this
     * tests) */
    for (int tagged = 0; tagged < 2; tagged++) {
        aemp_buf_t out = AEMP_BUF_INIT;
        if (tagged)
            aemp__buf_append(&out, "\xd9\xd9\xf7", 3);   /* self-described CBOR */
        aemp__frame_encode(AEMP_FRAMING_CBOR, &out, "port", 4, vals);
        const size_t chunks[] = { out.len, 1000, 1 };
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            fc_frames_t l;
            decode_all(AEMP_FRAMING_CBOR, out.data, out.len, chunks[c], NULL, NULL, 0, &l);
            assert_int_equal(l.n, 1);
            assert_string_equal(l.v[0].dest, "port");
            assert_val_eq(aemp_msg_root(l.v[0].msg), aemp_msg_root(vals));
            fc_frames_free(&l);
        }
        aemp__buf_free(&out);
    }
    aemp_msg_unref(vals);

    /* counts that claim more than the bytes at hand: a map of 2^20 pairs
     * and an array of 2^20 elements wait for the rest (and reserve no
     * more than the bytes at hand), a map of 2^63 pairs is refused */
    const struct {
        uint8_t p[14];
        int rc;
    } lies[] = {
        { { 0x82, 0x60, 0xba, 0, 0x10, 0, 0, 0x61, 'k', 0x01, 0x61, 'l', 0x02, 0x03 }, 0 },
        { { 0x82, 0x60, 0x9a, 0, 0x10, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 }, 0 },
        { { 0x82, 0x60, 0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x61, 'k', 0x01 }, -1 },
    };
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        aemp_frame_reader_t r;
        aemp_buf_t in = AEMP_BUF_INIT;
        aemp_frame_t fr;
        aemp__frame_reader_init(&r, AEMP_FRAMING_CBOR, 16 * 1024 * 1024);
        aemp__buf_append(&in, lies[i].p, sizeof lies[i].p);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), lies[i].rc);
        if (lies[i].rc)
            assert_string_equal(r.error, "malformed CBOR frame: container too long at byte 2");
        else
            assert_int_equal(aemp__buf_used(&in), sizeof lies[i].p);
        aemp__buf_free(&in);
        aemp__frame_reader_free(&r);
    }
}

static void cbor_errors(void **state)
{
    char err[160];
    struct {
        const uint8_t *p;
        size_t n;
        const char *err;
    } cases[] = {
        { CB(0xa0), "frame is not an array" },
        { CB(0x01), "frame is not an array" },
        { CB(0x61, 'a'), "frame is not an array" },
        { CB(0xc1, 0xa0), "frame is not an array" },
        { CB(0xff), "frame is not an array" },
        { CB(0x81, 0xff), "malformed CBOR frame: unexpected break at byte 1" },
        { CB(0x81, 0x1c), "malformed CBOR frame: reserved additional information 28 at byte 1" },
        { CB(0x81, 0xbf, 0x01, 0xff), "malformed CBOR frame: key without value in a map at byte 3" },
        { CB(0x81, 0x5f, 0x61, 'a', 0xff),
          "malformed CBOR frame: bad chunk in an indefinite-length string at byte 2" },
        { CB(0x81, 0x5f, 0x5f, 0xff, 0xff),
          "malformed CBOR frame: bad chunk in an indefinite-length string at byte 2" },
        { CB(0x81, 0xe0), "malformed CBOR frame: unsupported simple value 0 at byte 1" },
        { CB(0x81, 0xf8, 0x20), "malformed CBOR frame: unsupported simple value 32 at byte 1" },
        { CB(0x81, 0x1f), "malformed CBOR frame: indefinite-length integer at byte 1" },
        { CB(0x81, 0xdf), "malformed CBOR frame: indefinite-length tag at byte 1" },
        { CB(0x9f, 0xc1, 0xff), "malformed CBOR frame: tag without content at byte 2" },
        { CB(0x81, 0xa1, 0xf5, 0x01),
          "malformed CBOR frame: map key is not a string or an integer at byte 2" },
        { CB(0x82, 0x60, 0xa1, 0x80, 0x01),
          "malformed CBOR frame: map key is not a string or an integer at byte 3" },
        { CB(0x82, 0x60, 0xa1, 0xc1, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0, 0x01),
          "malformed CBOR frame: map key is not a string or an integer at byte 4" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = feed(AEMP_FRAMING_CBOR, 0, cases[i].p, cases[i].n, err, sizeof err);
        if (rc != -1 || strcmp(err, cases[i].err))
            fail_msg("case %zu: rc %d, error '%s', want '%s'", i, rc, err, cases[i].err);
    }

    /* deep nesting */
    size_t n = 3000;
    uint8_t *deep = malloc(n);
    memset(deep, 0x81, n);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, deep, n, err, sizeof err), -1);
    assert_string_equal(err, "malformed CBOR frame: nesting deeper than 512 levels at byte 512");
    free(deep);

    /* truncated: need more, not an error */
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, CB(0x83, 0x01), NULL, 0), 0);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, CB(0x82, 0x1b, 0x00), NULL, 0), 0);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, CB(0x82, 0x65, 'a'), NULL, 0), 0);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, CB(0x9f, 0x01), NULL, 0), 0);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, CB(0xc1), NULL, 0), 0);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, CB(0x81, 0xc1), NULL, 0), 0);

    /* error after good frames; reader stays failed */
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr;
    aemp__frame_reader_init(&r, AEMP_FRAMING_CBOR, 0);
    aemp__buf_append(&in, CB(0x80, 0x81, 0x01, 0xa0, 0x80));
    assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
    assert_true(fr.empty);
    aemp_msg_unref(fr.msg);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
    aemp_msg_unref(fr.msg);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    assert_string_equal(r.error, "frame is not an array");
    assert_null(fr.msg);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

/* ------------------------------------------------------------ cross-framing property */

/* Append the UTF-8 form of code point cp to o; returns its length. */
static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A random string: ASCII, ASCII with what JSON escapes, UTF-8 text of all
 * planes, or random bytes; as text or as a byte string. */
static void gen_str(aemp_build_t *b)
{
    char s[256];
    size_t n = 0, len = rnd() % 40;
    unsigned kind = rnd() % 4;
    for (size_t i = 0; i < len; i++) {
        switch (kind) {
        case 0: s[n++] = (char)(' ' + rnd() % 95); break;
        case 1: s[n++] = "\"\\\n\t\x01\x1f\x7f\0ab/"[rnd() % 11]; break;
        case 2: {
            static const uint32_t base[] = { 0x20, 0xa0, 0x800, 0xe000, 0x10000, 0x10fff0 };
            uint32_t cp = base[rnd() % 6] + (uint32_t)(rnd() % 16);
            n += put_utf8(s + n, cp);
            break;
        }
        default: s[n++] = (char)rnd(); break;
        }
    }
    if (rnd() % 2)
        aemp_build_strn(b, s, n);
    else
        aemp_build_bytes(b, s, n);
}

/* A random double: any bit pattern, a short decimal, an integral value or
 * a special one. */
static double gen_double(void)
{
    static const double special[] = { 0.0, -0.0, 5e-324, DBL_MAX, DBL_MIN, 1e22, 0.1, NAN };
    uint64_t u = rnd();
    double d;
    switch (rnd() % 4) {
    case 0: memcpy(&d, &u, sizeof d); return d;
    case 1: return (double)(int64_t)(u % 2000001) / 1000.0 - 1000.0;
    case 2: return (double)(int64_t)u;
    default: return special[u % 8];
    }
}

/* A random value, containers at most `depth` more levels deep. */
static void gen_val(aemp_build_t *b, int depth)
{
    unsigned k = (unsigned)(rnd() % (depth > 0 ? 11 : 8));
    uint64_t u = rnd();
    switch (k) {
    case 0: aemp_build_null(b); break;
    case 1: aemp_build_bool(b, (int)(u & 1)); break;
    case 2: aemp_build_int(b, (int64_t)u >> (u % 64)); break;
    case 3: aemp_build_uint(b, u | (1ull << 63)); break;
    case 4: aemp_build_int(b, (u & 1) ? INT64_MIN : INT64_MAX); break;
    case 5: aemp_build_double(b, gen_double()); break;
    case 6:
    case 7: gen_str(b); break;
    case 8:
    case 9: {
        aemp_build_array(b);
        for (unsigned i = 0, n = (unsigned)(rnd() % 6); i < n; i++)
            gen_val(b, depth - 1);
        aemp_build_close(b);
        break;
    }
    default:
        aemp_build_map(b);
        for (unsigned i = 0, n = (unsigned)(rnd() % 5); i < n; i++) {
            if (rnd() % 4)
                gen_str(b);
            else
                aemp_build_str(b, "k");
            gen_val(b, depth - 1);
        }
        aemp_build_close(b);
    }
}

/* Generated messages of every type: CBOR -> CBOR gives the same value,
 * CBOR -> JSON -> decode gives it as JSON sees it (bytes and text that is
 * not UTF-8 become the text of their Latin-1 reading, non-finite doubles
 * null), and the whole stream satisfies the fuzzers' property, split
 * anywhere. */
static void cross_framing_property(void **state)
{
    aemp_buf_t stream[2] = { AEMP_BUF_INIT, AEMP_BUF_INIT };
    for (int k = 0; k < 3000; k++) {
        aemp_build_t *b = aemp_build_new();
        for (unsigned i = 0, n = (unsigned)(rnd() % 5); i < n; i++)
            gen_val(b, 5);
        aemp_msg_t *m = aemp_build_msg(b);
        assert_non_null(m);
        char dest[16];
        snprintf(dest, sizeof dest, "p%d", k);

        aemp_buf_t c = AEMP_BUF_INIT, j = AEMP_BUF_INIT;
        aemp__frame_encode(AEMP_FRAMING_CBOR, &c, dest, strlen(dest), m);
        struct fc_frame ec, ej;
        decode_frame(AEMP_FRAMING_CBOR, c.data, c.len, &ec);
        assert_string_equal(ec.dest, dest);
        assert_val_eq(aemp_msg_root(ec.msg), aemp_msg_root(m));
        aemp__frame_encode(AEMP_FRAMING_JSON, &j, ec.dest, ec.destlen, ec.msg);
        decode_frame(AEMP_FRAMING_JSON, j.data, j.len, &ej);
        assert_string_equal(ej.dest, dest);
        aemp_msg_t *view = fc_json_view(m);
        assert_val_eq(aemp_msg_root(ej.msg), aemp_msg_root(view));
        aemp_msg_unref(view);
        free_frame(&ec);
        free_frame(&ej);

        aemp__buf_append(&stream[0], c.data, c.len);
        aemp__buf_append(&stream[1], j.data, j.len);
        aemp__buf_free(&c);
        aemp__buf_free(&j);
        aemp_msg_unref(m);
    }
    fc_check_input(AEMP_FRAMING_CBOR, stream[0].data, stream[0].len);
    fc_check_input(AEMP_FRAMING_JSON, stream[1].data, stream[1].len);
    aemp__buf_free(&stream[0]);
    aemp__buf_free(&stream[1]);
}

/* ------------------------------------------------------------ flat frames */

/* Walk the elements of m: its size must be exactly the header, its cells
 * and its strings (a decoded message holds nothing else). */
static void assert_exact_block(const aemp_msg_t *m)
{
    size_t heap = 0, n = aemp_msg_len(m);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        if (aemp_val_str(aemp_msg_at(m, i), &len))
            heap += len + 1;
    }
    assert_int_equal(aemp__msg_size(m), sizeof(aemp_msg_t) + (n + 1) * 16 + heap);
}

/* Decode the single frame p[0..len) with a fresh reader; *took_builder
 * says whether the reader needed its message builder. */
static aemp_msg_t *decode_flat(aemp_framing_t f, const void *p, size_t len, int *took_builder)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr;
    aemp__frame_reader_init(&r, f, 0);
    aemp__buf_append(&in, p, len);
    int rc = aemp__frame_next(&r, &in, &fr);
    if (rc != 1)
        fail_msg("expected a frame, got %d (%s)", rc, r.error);
    assert_int_equal(aemp__buf_used(&in), 0);
    assert_string_equal(fr.dest, "dest");
    *took_builder = r.built != 0;
    assert_null(r.build);   /* never kept between frames */
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
    return fr.msg;
}

/* Cells and heap bytes of v and all it holds. */
static void val_size(const aemp_val_t *v, size_t *cells, size_t *heap)
{
    size_t len;
    ++*cells;
    if (aemp_val_str(v, &len))
        *heap += len + 1;
    aemp_type_t t = aemp_val_type(v);
    for (size_t i = 0, n = t == AEMP_T_ARRAY || t == AEMP_T_MAP ? aemp_val_len(v) : 0; i < n; i++) {
        if (aemp_val_type(v) == AEMP_T_MAP) {
            val_size(aemp_val_key(v, i), cells, heap);
            val_size(aemp_val_value(v, i), cells, heap);
        } else {
            val_size(aemp_val_at(v, i), cells, heap);
        }
    }
}

/* m as a CBOR frame to "dest", decoded again (decode_flat). */
static aemp_msg_t *cbor_round_trip(const aemp_msg_t *m, int *took_builder)
{
    aemp_buf_t buf = AEMP_BUF_INIT;
    aemp__frame_encode(AEMP_FRAMING_CBOR, &buf, "dest", 4, m);
    aemp_msg_t *got = decode_flat(AEMP_FRAMING_CBOR, buf.data, buf.len, took_builder);
    if (!*took_builder) {   /* a byte at a time as well: the scanner first, then the levels */
        fc_frames_t l;
        decode_all(AEMP_FRAMING_CBOR, buf.data, buf.len, rnd() % 8 ? buf.len : 1, NULL, NULL, 0, &l);
        assert_int_equal(l.n, 1);
        assert_val_eq(aemp_msg_root(l.v[0].msg), aemp_msg_root(got));
        fc_frames_free(&l);
    }
    aemp__buf_free(&buf);
    return got;
}

/* Nested CBOR frames of definite lengths with string keys decode by
 * levels, without the builder, into a message of exactly their size,
 * whole or a byte at a time, the same values as were encoded; what the
 * levels leave alone (deeper nesting, integer keys, a tag, an indefinite
 * length, a count the bytes cannot hold) takes the builder's way. */
static void cbor_level_frames(void **state)
{
    for (int k = 0; k < 3000; k++) {
        aemp_build_t *b = aemp_build_new();
        for (unsigned i = 0, n = 1 + (unsigned)(rnd() % 5); i < n; i++)
            gen_val(b, 5);
        aemp_msg_t *m = aemp_build_msg(b);
        int built;
        aemp_msg_t *got = cbor_round_trip(m, &built);
        assert_false(built);
        assert_val_eq(aemp_msg_root(got), aemp_msg_root(m));
        size_t cells = 0, heap = 0;
        val_size(aemp_msg_root(got), &cells, &heap);
        assert_int_equal(aemp__msg_size(got), sizeof(aemp_msg_t) + cells * 16 + heap);
        aemp_msg_unref(got);
        aemp_msg_unref(m);
    }

    /* deeper than the levels go: the builder, the same value */
    aemp_msg_t *deep = deep_msg(40);
    int built;
    aemp_msg_t *got = cbor_round_trip(deep, &built);
    assert_true(built);
    assert_val_eq(aemp_msg_root(got), aemp_msg_root(deep));
    aemp_msg_unref(got);
    aemp_msg_unref(deep);

    /* an integer key, a tagged element, an indefinite array inside */
    static const uint8_t intkey[] = { 0x82, 0x64, 'd', 'e', 's', 't', 0xa1, 0x07, 0x61, 'a' };
    got = decode_flat(AEMP_FRAMING_CBOR, intkey, sizeof intkey, &built);
    assert_true(built);
    assert_string_equal(aemp_val_str(aemp_val_get(aemp_msg_at(got, 0), "7"), NULL), "a");
    aemp_msg_unref(got);
    static const uint8_t tagged[] = { 0x82, 0x64, 'd', 'e', 's', 't', 0x81, 0xc1, 0x05 };
    got = decode_flat(AEMP_FRAMING_CBOR, tagged, sizeof tagged, &built);
    assert_true(built);
    assert_msg_eq(got, aemp_msgf("[i]", 5));
    aemp_msg_unref(got);
    static const uint8_t indef[] = { 0x82, 0x64, 'd', 'e', 's', 't', 0x9f, 0x01, 0x02, 0xff };
    got = decode_flat(AEMP_FRAMING_CBOR, indef, sizeof indef, &built);
    assert_true(built);
    assert_msg_eq(got, aemp_msgf("[ii]", 1, 2));
    aemp_msg_unref(got);

    /* a nested count larger than the frame: the rest is waited for */
    static const uint8_t lying[] = { 0x82, 0x64, 'd', 'e', 's', 't', 0x99, 0x03, 0xe8, 0x01, 0x02 };
    char err[160];
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, lying, sizeof lying, err, sizeof err), 0);
}

/* Frames of a destination and scalars and strings only (what almost all
 * traffic is) decode straight into their message with no builder, up to
 * 64 elements; the same values, in both framings, as the builder gives
 * (the same frame with a nested element added goes that way in JSON, by
 * levels in CBOR), each message exactly its values' size (JSON strings
 * with escapes included). */
static void flat_frames(void **state)
{
    for (int k = 0; k < 2000; k++) {
        aemp_build_t *b = aemp_build_new();
        unsigned n = k < 200 ? (unsigned)(k % 70) : (unsigned)(rnd() % 8);
        for (unsigned i = 0; i < n; i++)
            gen_val(b, 0);
        aemp_msg_t *m = aemp_build_msg(b);
        assert_non_null(m);
        aemp_msg_t *nested = aemp_msgf("m[i]", m, 7);
        for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
            aemp_msg_t *want = f == AEMP_FRAMING_JSON ? fc_json_view(m) : aemp_msg_ref(m);
            aemp_buf_t buf = AEMP_BUF_INIT;
            aemp__frame_encode((aemp_framing_t)f, &buf, "dest", 4, m);
            int built;
            aemp_msg_t *got = decode_flat((aemp_framing_t)f, buf.data, buf.len, &built);
            assert_int_equal(built, f == AEMP_FRAMING_JSON && n > 64);   /* CBOR: by levels */
            assert_val_eq(aemp_msg_root(got), aemp_msg_root(want));
            assert_exact_block(got);
            buf.len = 0;
            aemp__frame_encode((aemp_framing_t)f, &buf, "dest", 4, nested);
            aemp_msg_t *gn = decode_flat((aemp_framing_t)f, buf.data, buf.len, &built);
            assert_int_equal(built, f == AEMP_FRAMING_JSON);   /* CBOR: by levels */
            assert_int_equal(aemp_msg_len(gn), n + 1);
            for (unsigned i = 0; i < n; i++)
                assert_val_eq(aemp_msg_at(gn, i), aemp_msg_at(got, i));
            aemp_msg_unref(gn);
            aemp_msg_unref(got);
            aemp_msg_unref(want);
            aemp__buf_free(&buf);
        }
        aemp_msg_unref(nested);
        aemp_msg_unref(m);
    }

    /* JSON escapes of every kind in a flat frame: decoded, the heap exact */
    static const char esc[] = "[\"dest\",\"a\\n\\t\\\"\\\\\\/\\u00e9\\ud83d\\ude00\",\"\\u0000\",\"\xc3\xa9x\",1,\"plain\"]";
    int built;
    aemp_msg_t *got = decode_flat(AEMP_FRAMING_JSON, esc, sizeof esc - 1, &built);
    assert_false(built);
    size_t len;
    const char *s = aemp_msg_str(got, 0, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(s, "a\n\t\"\\/\xc3\xa9\xf0\x9f\x98\x80", 12);
    assert_int_equal(s[len], 0);
    s = aemp_msg_str(got, 1, &len);
    assert_int_equal(len, 1);
    assert_int_equal(s[0], 0);
    assert_string_equal(aemp_msg_str(got, 2, NULL), "\xc3\xa9x");
    assert_string_equal(aemp_msg_str(got, 4, NULL), "plain");
    assert_exact_block(got);
    aemp_msg_unref(got);

    /* a bad string among flat values: the builder's way, its error */
    EXPECT_JSON_ERROR("[\"dest\",1,\"a\\qb\"]",
                      "malformed JSON frame at byte 12: invalid escape '\\q' in a string");
    EXPECT_JSON_ERROR("[\"dest\",1,\"\xc3\"]",
                      "malformed JSON frame at byte 11: invalid UTF-8 sequence starting with byte "
                      "0xc3 in a string");
    /* CBOR: a tag, an indefinite string, a simple value among flat ones */
    static const uint8_t tagged[] = { 0x83, 0x64, 'd', 'e', 's', 't', 0xc1, 0x01, 0x7f, 0x61, 'a', 0x61, 'b', 0xff };
    got = decode_flat(AEMP_FRAMING_CBOR, tagged, sizeof tagged, &built);
    assert_true(built);
    assert_msg_eq(got, aemp_msgf("is", 1, "ab"));
    aemp_msg_unref(got);
    static const uint8_t simple[] = { 0x82, 0x64, 'd', 'e', 's', 't', 0xf0 };
    char err[160];
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, simple, sizeof simple, err, sizeof err), -1);
    assert_string_equal(err, "malformed CBOR frame: unsupported simple value 16 at byte 6");
}

/* aemp__frame_encode_fmt through a variadic front, as aemp_sndf calls it */
static int encode_fmt(aemp_framing_t f, aemp_buf_t *out, const char *dest, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = aemp__frame_encode_fmt(f, out, dest, strlen(dest), fmt, ap);
    va_end(ap);
    return r;
}

/* The frame written straight from a format is the frame of the message
 * the same format builds, byte for byte, in both framings; a format that
 * is not flat appends nothing; a long string grows the buffer mid-frame
 * (also one whose consumed prefix is reclaimed) without losing what was
 * written before it. */
static void frames_from_formats(void **state)
{
    (void)state;
    static char big[70000];
    memset(big, 'x', sizeof big - 1);
    big[1000] = '"';   /* JSON escapes it */
    const char nul[] = "a\0b";
    static const char *const dests[] = { "d", "a-port-name-of-thirty-bytes-xy", "" };
    for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
        for (size_t d = 0; d < sizeof dests / sizeof *dests; d++) {
            for (int k = 0; k < 10; k++) {
                aemp_buf_t a = AEMP_BUF_INIT, b = AEMP_BUF_INIT;
                aemp_msg_t *m = NULL;
                int r = -1;
                /* b holds two unconsumed bytes after a consumed prefix, in
                 * a buffer of 4 KiB: a string that does not fit reclaims
                 * the prefix mid-frame (case 9) or grows the buffer */
                static char prefix[3002];
                memset(prefix, '8', sizeof prefix);
                prefix[3001] = '9';
                aemp__buf_append(&b, prefix, sizeof prefix);
                aemp__buf_consume(&b, 3000);
#define BOTH(...)                                                                   \
    do {                                                                            \
        m = aemp_msgf(__VA_ARGS__);                                                 \
        r = encode_fmt((aemp_framing_t)f, &b, dests[d], __VA_ARGS__);               \
    } while (0)
                switch (k) {
                case 0: BOTH(""); break;
                case 1: BOTH("sIs", "ping", (int64_t)42, "abcdefghijklmnop"); break;
                case 2: BOTH("n b b i I u u f", 1, 0, -7, INT64_MIN, (uint64_t)INT64_MAX, UINT64_MAX, 1e300); break;
                case 3: BOTH("s#, s, s", nul, (size_t)3, (const char *)NULL, ""); break;
                case 4: BOTH("sss", big, "after the big one", big + 60000); break;
                case 5: BOTH("iiiiiiiiiiiiiiii", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16); break;
                case 6: BOTH("s#s#s#s#", big, (size_t)300, big, (size_t)300, big, (size_t)65000, "tail", (size_t)4); break;
                case 7: BOTH("iiiiiiiiiiiiiiiii", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17); break;
                case 8: BOTH("si[i]", "nested", 1, 2); break;
                case 9: BOTH("ss#s", "head", big, (size_t)3000, "tail"); break;
                }
#undef BOTH
                assert_non_null(m);
                aemp__buf_append(&a, "89", 2);
                aemp__frame_encode((aemp_framing_t)f, &a, dests[d], strlen(dests[d]), m);
                if (k == 9)
                    assert_int_equal(b.off, 0);   /* the prefix was reclaimed */
                if (k == 7 || k == 8) {   /* 17 elements, a nested array: not flat, nothing appended */
                    assert_int_equal(r, -1);
                    assert_int_equal(aemp__buf_used(&b), 2);
                } else {
                    assert_int_equal(r, 0);
                    assert_int_equal(aemp__buf_used(&b), aemp__buf_used(&a));
                    assert_memory_equal(aemp__buf_head(&b), aemp__buf_head(&a), aemp__buf_used(&a));
                }
                aemp_msg_unref(m);
                aemp__buf_free(&a);
                aemp__buf_free(&b);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing_names),
        cmocka_unit_test(json_capture_c2s),
        cmocka_unit_test(json_capture_s2c),
        cmocka_unit_test(json_encode_exact),
        cmocka_unit_test(cbor_capture),
        cmocka_unit_test(json_roundtrip),
        cmocka_unit_test(cbor_roundtrip),
        cmocka_unit_test(bytes_across_framings),
        cmocka_unit_test(nul_bytes),
        cmocka_unit_test(keepalive),
        cmocka_unit_test(non_string_destination),
        cmocka_unit_test(json_numbers),
        cmocka_unit_test(json_strings),
        cmocka_unit_test(json_special_bytes_everywhere),
        cmocka_unit_test(reader_memory),
        cmocka_unit_test(many_frames_one_read),
        cmocka_unit_test(truncated_needs_more),
        cmocka_unit_test(one_pass_vs_pieces),
        cmocka_unit_test(json_big_bytewise),
        cmocka_unit_test(cbor_big_bytewise),
        cmocka_unit_test(max_frame),
        cmocka_unit_test(max_frame_16mib),
        cmocka_unit_test(depth_limits),
        cmocka_unit_test(malformed_json),
        cmocka_unit_test(cbor_features),
        cmocka_unit_test(cbor_large_containers),
        cmocka_unit_test(cbor_level_frames),
        cmocka_unit_test(cbor_errors),
        cmocka_unit_test(cross_framing_property),
        cmocka_unit_test(flat_frames),
        cmocka_unit_test(frames_from_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
