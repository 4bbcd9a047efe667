/* Tests for the JSON and CBOR framings: captured sessions of real Perl
 * nodes (1.30 JSON, 2.02 CBOR), round trips, incremental splitting, limits
 * and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

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

/* Feed p[0..len) into a reader in chunks of `chunk` bytes, collecting every
 * frame; each frame's offset and size within p go to offs/sizes (may be
 * NULL; room for `maxn`).  Asserts that no error occurs and that nothing is
 * left over.  Returns a new array of the frames. */
static json_t *decode_all(aemp_framing_t f, const uint8_t *p, size_t len, size_t chunk,
                          size_t *offs, size_t *sizes, size_t maxn)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    json_t *frames = json_array();
    size_t fed = 0;
    aemp__frame_reader_init(&r, f, 16 * 1024 * 1024);
    while (fed < len) {
        size_t n = len - fed < chunk ? len - fed : chunk;
        aemp__buf_append(&in, p + fed, n);
        fed += n;
        for (;;) {
            size_t before = aemp__buf_used(&in);
            json_t *fr;
            int rc = aemp__frame_next(&r, &in, &fr);
            if (rc < 0)
                fail_msg("frame error: %s", r.error);
            if (rc == 0)
                break;
            size_t k = json_array_size(frames);
            if (offs && k < maxn) {
                offs[k] = fed - before;
                sizes[k] = before - aemp__buf_used(&in);
            }
            json_array_append_new(frames, fr);
        }
    }
    assert_int_equal(aemp__buf_used(&in), 0);
    assert_int_equal(r.scan, 0);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
    return frames;
}

/* Decode exactly one frame from p[0..len); asserts the result code. */
static json_t *decode_one(aemp_framing_t f, const void *p, size_t len)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    json_t *fr = NULL;
    aemp__frame_reader_init(&r, f, 0);
    aemp__buf_append(&in, p, len);
    int rc = aemp__frame_next(&r, &in, &fr);
    if (rc != 1)
        fail_msg("expected one frame, got %d (%s)", rc, r.error);
    assert_int_equal(aemp__buf_used(&in), 0);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
    return fr;
}

/* Feed p[0..len) in one go; return the result code and copy the error. */
static int feed(aemp_framing_t f, size_t max, const void *p, size_t len, char *err, size_t errsz)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    json_t *fr = NULL;
    aemp__frame_reader_init(&r, f, max);
    aemp__buf_append(&in, p, len);
    int rc = aemp__frame_next(&r, &in, &fr);
    if (err)
        snprintf(err, errsz, "%s", r.error);
    json_decref(fr);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
    return rc;
}

static void assert_json_eq(const json_t *got, const char *want_text)
{
    json_error_t e;
    json_t *want = json_loads(want_text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (!want)
        fail_msg("bad test JSON %s: %s", want_text, e.text);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", s, want_text);
    }
    json_decref(want);
}

/* json_equal that also handles object keys containing NUL (jansson's
 * json_equal looks keys up by C string). */
static int jeq(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!jeq(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        for (void *it = json_object_iter((json_t *)a); it; it = json_object_iter_next((json_t *)a, it)) {
            json_t *v = json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));
            if (!v || !jeq(json_object_iter_value(it), v))
                return 0;
        }
        return 1;
    }
    return json_equal(a, b);
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

/* The frames of one direction as listed in transcript-conn1.txt. */
static json_t *transcript_frames(const char *dir)
{
    size_t len;
    char *t = (char *)read_file("capture/transcript-conn1.txt", &len);
    json_t *out = json_array();
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        double ts;
        char d[4];
        int pos = 0;
        if (sscanf(line, " %lf %3s %n", &ts, d, &pos) != 2 || pos == 0 || line[pos] != '[')
            continue;
        if (strcmp(d, dir))
            continue;
        json_error_t e;
        json_t *j = json_loads(line + pos, JSON_ALLOW_NUL, &e);
        if (!j)
            fail_msg("transcript line %s: %s", line, e.text);
        json_array_append_new(out, j);
    }
    free(t);
    return out;
}

static void check_json_capture(const char *bin, const char *dir, size_t nframes)
{
    size_t len;
    uint8_t *p = read_file(bin, &len);
    size_t start = skip_lines(p, len, 3);
    json_t *want = transcript_frames(dir);
    assert_int_equal(json_array_size(want), nframes);

    size_t offs[64], sizes[64];
    json_t *one = decode_all(AEMP_FRAMING_JSON, p + start, len - start, len, offs, sizes, 64);
    json_t *bytewise = decode_all(AEMP_FRAMING_JSON, p + start, len - start, 1, NULL, NULL, 0);
    json_t *odd = decode_all(AEMP_FRAMING_JSON, p + start, len - start, 7, NULL, NULL, 0);
    assert_int_equal(json_array_size(one), nframes);
    assert_true(json_equal(one, want));
    assert_true(json_equal(bytewise, want));
    assert_true(json_equal(odd, want));

    /* re-encoding reproduces the captured bytes (JSON::XS and our encoder
     * agree on every frame of this session) */
    size_t same = 0;
    for (size_t i = 0; i < nframes; i++) {
        json_t *fr = json_array_get(one, i);
        json_t *msg = json_array();
        for (size_t k = 1; k < json_array_size(fr); k++)
            json_array_append(msg, json_array_get(fr, k));
        json_t *dest = json_array_get(fr, 0);
        aemp_buf_t out = AEMP_BUF_INIT;
        if (dest)
            aemp__frame_encode(AEMP_FRAMING_JSON, &out, json_string_value(dest),
                               json_string_length(dest), msg);
        else /* [] keepalive */
            aemp__frame_encode_value(AEMP_FRAMING_JSON, &out, fr);
        if (out.len == sizes[i] && !memcmp(out.data, p + start + offs[i], sizes[i]))
            same++;
        else
            print_message("re-encoding differs: %.*s\n", (int)sizes[i], p + start + offs[i]);
        aemp__buf_free(&out);
        json_decref(msg);
    }
    assert_int_equal(same, nframes);

    json_decref(want);
    json_decref(one);
    json_decref(bytewise);
    json_decref(odd);
    free(p);
}

static void json_capture_c2s(void **state)
{
    check_json_capture("capture/conn1.c2s.bin", "c2s", 38);

    size_t len;
    uint8_t *p = read_file("capture/conn1.c2s.bin", &len);
    size_t start = skip_lines(p, len, 3);
    json_t *fr = decode_all(AEMP_FRAMING_JSON, p + start, len - start, 1, NULL, NULL, 0);
    assert_json_eq(json_array_get(fr, 0),
                   "[\"\",\"AnyEvent::MP::_spawn\",\"ro3hv4BJWFlBAF4J.a\","
                   "\"AnyEvent::MP::Global::connect\",0,\"client\"]");
    assert_json_eq(json_array_get(fr, 6),
                   "[\"echo\",\"hello\",42,3.5,null,[1,[2,3]],{\"a\":\"b\",\"n\":-7},"
                   "\"client#HYNSZA0g.b\"]");
    /* "grüße ✓ 😀 \u0000 end" */
    json_t *g = json_array_get(fr, 9);
    assert_string_equal(json_string_value(json_array_get(g, 0)), "echo");
    const char want[] = "gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xf0\x9f\x98\x80 \0 end";
    assert_int_equal(json_string_length(json_array_get(g, 1)), sizeof want - 1);
    assert_memory_equal(json_string_value(json_array_get(g, 1)), want, sizeof want - 1);
    assert_json_eq(json_array_get(fr, 12), "[\"\",\"mon1\",\"ro3hv4BJWFlBAF4J.g\"]");
    assert_json_eq(json_array_get(fr, 10),
                   "[\"\",\"AnyEvent::MP::_spawn\",\"ro3hv4BJWFlBAF4J.g\","
                   "\"AEMPInterop::Seed::spawn_echo\",\"client#HYNSZA0g.f\"]");
    assert_true(json_is_real(json_array_get(json_array_get(fr, 6), 3)));
    assert_true(json_is_integer(json_array_get(json_array_get(fr, 6), 2)));
    json_decref(fr);
    free(p);
}

static void json_capture_s2c(void **state)
{
    check_json_capture("capture/conn1.s2c.bin", "s2c", 33);
}

static void json_encode_exact(void **state)
{
    json_t *msg = json_pack("[ss]", "mon1", "ro3hv4BJWFlBAF4J.g");
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(AEMP_FRAMING_JSON, &out, "", 0, msg);
    const char want[] = "[\"\",\"mon1\",\"ro3hv4BJWFlBAF4J.g\"]";
    assert_int_equal(out.len, sizeof want - 1);
    assert_memory_equal(out.data, want, sizeof want - 1);
    json_decref(msg);

    /* value formatting: escapes, UTF-8 kept, reals in jansson style */
    json_error_t e;
    msg = json_loads("[\"a\\u0001\\u001f\\u007f/\\\"\\\\\\n\\t\\r\\b\\f\xc3\xbc\","
                     "0.1,3.0,-0.0,1e300,1e-5,1795911113.08258,-9223372036854775808,"
                     "9223372036854775807,true,false,null,[],{},{\"k\\n\":[1]}]",
                     JSON_ALLOW_NUL, &e);
    if (!msg)
        fail_msg("%s", e.text);
    aemp__buf_free(&out);
    aemp__frame_encode(AEMP_FRAMING_JSON, &out, "d\"", 2, msg);
    const char want2[] =
        "[\"d\\\"\",\"a\\u0001\\u001F\x7f/\\\"\\\\\\n\\t\\r\\b\\f\xc3\xbc\","
        "0.1,3.0,-0.0,1e300,1e-5,1795911113.08258,-9223372036854775808,"
        "9223372036854775807,true,false,null,[],{},{\"k\\n\":[1]}]";
    if (out.len != sizeof want2 - 1 || memcmp(out.data, want2, sizeof want2 - 1))
        fail_msg("got %.*s", (int)out.len, out.data);
    json_t *back = decode_one(AEMP_FRAMING_JSON, out.data, out.len);
    assert_string_equal(json_string_value(json_array_get(back, 0)), "d\"");
    assert_true(json_array_size(back) == json_array_size(msg) + 1);
    for (size_t i = 0; i < json_array_size(msg); i++)
        assert_true(json_equal(json_array_get(back, i + 1), json_array_get(msg, i)));
    json_decref(back);
    json_decref(msg);
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

static json_t *cbor_capture_frames(const char *bin, size_t chunk, size_t *start,
                                   size_t *offs, size_t *sizes, size_t maxn)
{
    size_t len;
    uint8_t *p = read_file(bin, &len);
    *start = skip_lines(p, len, 3);
    json_t *fr = decode_all(AEMP_FRAMING_CBOR, p + *start, len - *start, chunk, offs, sizes, maxn);
    free(p);
    return fr;
}

/* Frame number `num` of the transcript, from the decoded streams. */
static json_t *frame_by_num(const tframe_t *tf, size_t nt, int num, json_t *c2s, json_t *s2c)
{
    size_t ci = 0, si = 0;
    for (size_t i = 0; i < nt; i++) {
        int is_c = !strcmp(tf[i].dir, "c2s");
        if (tf[i].num == num)
            return is_c ? json_array_get(c2s, ci) : json_array_get(s2c, si);
        if (is_c)
            ci++;
        else
            si++;
    }
    fail_msg("no frame #%d", num);
    return NULL;
}

static void cbor_capture(void **state)
{
    static tframe_t tf[128];
    size_t nt = cbor_transcript(tf, 128);
    assert_int_equal(nt, 90);

    size_t offs[2][128], sizes[2][128], start[2];
    json_t *c2s = cbor_capture_frames("capture2/conn1.c2s.bin", SIZE_MAX, &start[0],
                                      offs[0], sizes[0], 128);
    json_t *s2c = cbor_capture_frames("capture2/conn1.s2c.bin", SIZE_MAX, &start[1],
                                      offs[1], sizes[1], 128);
    assert_int_equal(json_array_size(c2s), 52);
    assert_int_equal(json_array_size(s2c), 38);

    /* byte-wise feeding yields the same frames */
    size_t dummy;
    json_t *c2s1 = cbor_capture_frames("capture2/conn1.c2s.bin", 1, &dummy, NULL, NULL, 0);
    json_t *s2c1 = cbor_capture_frames("capture2/conn1.s2c.bin", 1, &dummy, NULL, NULL, 0);
    json_t *c2s13 = cbor_capture_frames("capture2/conn1.c2s.bin", 13, &dummy, NULL, NULL, 0);
    assert_true(json_equal(c2s, c2s1));
    assert_true(json_equal(s2c, s2c1));
    assert_true(json_equal(c2s, c2s13));

    /* every frame sits at the offset and has the size the transcript says,
     * and decoding its hex alone gives the same value */
    size_t idx[2] = { 0, 0 };
    for (size_t i = 0; i < nt; i++) {
        int d = strcmp(tf[i].dir, "c2s") ? 1 : 0;
        size_t k = idx[d]++;
        assert_int_equal(start[d] + offs[d][k], tf[i].off);
        assert_int_equal(sizes[d][k], tf[i].size);
        if (strlen(tf[i].hex) == 2 * tf[i].size) {
            uint8_t bytes[1024];
            assert_true(tf[i].size <= sizeof bytes);
            size_t n = unhex(tf[i].hex, bytes);
            json_t *one = decode_one(AEMP_FRAMING_CBOR, bytes, n);
            assert_true(json_equal(one, json_array_get(d ? s2c : c2s, k)));
            json_decref(one);
        }
        json_t *fr = json_array_get(d ? s2c : c2s, k);
        assert_true(json_is_array(fr));
        assert_true(json_is_string(json_array_get(fr, 0))); /* byte or text string */
    }

    assert_json_eq(frame_by_num(tf, nt, 1, c2s, s2c), "[\"control\",\"ping\",\"client#34GMaIeW2b\"]");
    assert_json_eq(frame_by_num(tf, nt, 2, c2s, s2c), "[\"\",\"g_slave\"]");
    assert_json_eq(frame_by_num(tf, nt, 4, c2s, s2c), "[\"\",\"g_slave\",{\"'l\":{\"client\":[]}}]");
    assert_json_eq(frame_by_num(tf, nt, 9, c2s, s2c),
                   "[\"echo\",\"hello\",[1,\"two\",{\"3\":4}],\"client#34GMaIeW2c\"]");
    assert_json_eq(frame_by_num(tf, nt, 14, c2s, s2c),
                   "[\"echo\",\"gr\\u00fc\\u00dfe \\u263a\",\"client#34GMaIeW2e\"]");
    /* the transcript prints the time with 15 digits; the wire has a double */
    json_t *t = frame_by_num(tf, nt, 40, c2s, s2c);
    assert_int_equal(json_array_size(t), 2);
    assert_true(json_is_real(json_array_get(t, 1)));
    assert_true(json_real_value(json_array_get(t, 1)) == 1795911113.082578);
    assert_json_eq(frame_by_num(tf, nt, 44, c2s, s2c), "[\"34GMaIeW2q\",\"\",42]");
    assert_json_eq(frame_by_num(tf, nt, 69, c2s, s2c), "[\"\",\"g_upd\",\"fam_db\",null,[\"k2\"]]");
    assert_json_eq(frame_by_num(tf, nt, 70, c2s, s2c), "[\"\",\"g_chg2\",\"fam_db\",{},[\"k2\"]]");
    assert_json_eq(frame_by_num(tf, nt, 90, c2s, s2c), "[\"34GMaIeW2y\",\"db_get\",\"fam_creg\",{}]");

    /* the 200 kB echo */
    json_t *big = frame_by_num(tf, nt, 16, c2s, s2c);
    const json_t *x = json_array_get(big, 1);
    assert_int_equal(json_string_length(x), 200000);
    assert_int_equal(strspn(json_string_value(x), "x"), 200000);
    assert_string_equal(json_string_value(json_array_get(big, 2)), "client#34GMaIeW2f");

    /* our encoding of ["","g_slave"] uses text strings */
    json_t *msg = json_pack("[s]", "g_slave");
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(AEMP_FRAMING_CBOR, &out, "", 0, msg);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, "\x82\x60\x67g_slave", 10);
    json_t *back = decode_one(AEMP_FRAMING_CBOR, out.data, out.len);
    assert_true(json_equal(back, frame_by_num(tf, nt, 2, c2s, s2c)));
    json_decref(back);
    json_decref(msg);
    aemp__buf_free(&out);

    for (size_t i = 0; i < nt; i++)
        free(tf[i].hex);
    json_decref(c2s);
    json_decref(s2c);
    json_decref(c2s1);
    json_decref(s2c1);
    json_decref(c2s13);
}

/* ------------------------------------------------------------ round trips */

/* Values for round trips; object keys with NUL only for CBOR (jansson's
 * parser refuses them, so the JSON framing cannot carry them). */
static json_t *sample_values(int nul_keys)
{
    json_error_t e;
    json_t *v = json_loads(
        "[[],{},\"\",\"plain\",\"gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xf0\x9f\x98\x80\","
        "\"nul \\u0000 inside\",\"quote \\\" back \\\\ nl \\n ctl \\u0001 del \x7f\","
        "0,1,-1,23,24,-24,-25,255,256,-256,-257,65535,65536,4294967295,4294967296,"
        "-4294967296,-4294967297,9223372036854775807,-9223372036854775808,"
        "0.0,-0.0,0.1,-2.5,3.0,1e300,-1e-300,5e-324,1.7976931348623157e308,1795911113.08258,"
        "true,false,null,"
        "[1,[2,[3,[4,[]]]]],{\"a\":{\"b\":{\"c\":[{}]}}},"
        "{\"k\xc3\xbc\":1,\"\":2,\"x\":[true,null],\"nested\":{\"n\":-7}},"
        "[\"\",\"g_upd\",\"fam_db\",null,[\"k2\"]]]",
        JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("sample: %s", e.text);
    json_array_append_new(v, json_stringn("\0", 1));
    if (nul_keys) {
        json_t *o = json_object();
        json_object_setn_new(o, "a\0b", 3, json_integer(1));
        json_array_append_new(v, o);
    }
    return v;
}

static void roundtrip(aemp_framing_t f)
{
    json_t *vals = sample_values(f == AEMP_FRAMING_CBOR);

    /* each value alone, wrapped in a frame */
    for (size_t i = 0; i < json_array_size(vals); i++) {
        json_t *v = json_array_get(vals, i);
        json_t *msg = json_pack("[sO]", "tag", v);
        aemp_buf_t out = AEMP_BUF_INIT;
        aemp__frame_encode(f, &out, "port", 4, msg);
        json_t *back = decode_one(f, out.data, out.len);
        assert_int_equal(json_array_size(back), 3);
        assert_string_equal(json_string_value(json_array_get(back, 0)), "port");
        if (!jeq(json_array_get(back, 2), v)) {
            char *s = json_dumps(v, JSON_ENCODE_ANY);
            fail_msg("round trip of %s failed", s);
        }
        /* integers stay integers, reals stay reals */
        assert_int_equal(json_typeof(json_array_get(back, 2)), json_typeof(v));
        json_decref(back);
        json_decref(msg);
        aemp__buf_free(&out);
    }

    /* all values in one frame with a NUL in the destination, byte-wise */
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(f, &out, "p\0rt", 4, vals);
    json_t *frames = decode_all(f, out.data, out.len, 1, NULL, NULL, 0);
    assert_int_equal(json_array_size(frames), 1);
    json_t *back = json_array_get(frames, 0);
    assert_int_equal(json_string_length(json_array_get(back, 0)), 4);
    assert_memory_equal(json_string_value(json_array_get(back, 0)), "p\0rt", 4);
    assert_int_equal(json_array_size(back), json_array_size(vals) + 1);
    for (size_t i = 0; i < json_array_size(vals); i++)
        assert_true(jeq(json_array_get(back, i + 1), json_array_get(vals, i)));
    json_decref(frames);
    aemp__buf_free(&out);

    /* encode_value of the whole array */
    aemp__frame_encode_value(f, &out, vals);
    back = decode_one(f, out.data, out.len);
    assert_true(jeq(back, vals));
    json_decref(back);
    aemp__buf_free(&out);

    /* a non-array message counts as empty */
    aemp__frame_encode(f, &out, "d", 1, NULL);
    back = decode_one(f, out.data, out.len);
    assert_json_eq(back, "[\"d\"]");
    json_decref(back);
    aemp__buf_free(&out);

    json_decref(vals);
}

static void json_roundtrip(void **state) { roundtrip(AEMP_FRAMING_JSON); }
static void cbor_roundtrip(void **state) { roundtrip(AEMP_FRAMING_CBOR); }

static void keepalive(void **state)
{
    json_t *empty = json_array();
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode_value(AEMP_FRAMING_JSON, &out, empty);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "[]", 2);
    json_t *back = decode_one(AEMP_FRAMING_JSON, out.data, out.len);
    assert_true(json_is_array(back) && json_array_size(back) == 0);
    json_decref(back);
    aemp__buf_free(&out);

    aemp__frame_encode_value(AEMP_FRAMING_CBOR, &out, empty);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], 0x80);
    back = decode_one(AEMP_FRAMING_CBOR, out.data, out.len);
    assert_true(json_is_array(back) && json_array_size(back) == 0);
    json_decref(back);
    aemp__buf_free(&out);
    json_decref(empty);

    /* [] [ ] between other frames, with whitespace */
    const char s[] = " [] \n[\"a\"]\t[ ]\r\n[[]]";
    json_t *fr = decode_all(AEMP_FRAMING_JSON, (const uint8_t *)s, sizeof s - 1, 1, NULL, NULL, 0);
    assert_json_eq(fr, "[[],[\"a\"],[],[[]]]");
    json_decref(fr);
}

/* ------------------------------------------------------------ splitting */

static void many_frames_one_read(void **state)
{
    for (int f = AEMP_FRAMING_JSON; f <= AEMP_FRAMING_CBOR; f++) {
        aemp_buf_t out = AEMP_BUF_INIT;
        for (int i = 0; i < 1000; i++) {
            json_t *msg = json_pack("[sis]", "tag", i, "x]\"[{");
            aemp__frame_encode((aemp_framing_t)f, &out, "port", 4, msg);
            if (f == AEMP_FRAMING_JSON && i % 3 == 0)
                aemp__buf_puts(&out, "\n ");
            json_decref(msg);
        }
        aemp_frame_reader_t r;
        aemp__frame_reader_init(&r, (aemp_framing_t)f, 1024);
        json_t *fr;
        int n = 0;
        while (aemp__frame_next(&r, &out, &fr) == 1) {
            assert_int_equal(json_integer_value(json_array_get(fr, 2)), n);
            assert_string_equal(json_string_value(json_array_get(fr, 3)), "x]\"[{");
            json_decref(fr);
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
        json_t *fr = NULL;
        aemp__frame_reader_init(&r, AEMP_FRAMING_JSON, 0);
        aemp__buf_append(&in, s, cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0);
        assert_null(fr);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0); /* idempotent */
        aemp__buf_append(&in, s + cut, sizeof s - 1 - cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
        assert_json_eq(fr, "[\"a]\\\"[\\\\\",{\"k]\":[1,2]},\"\\u0000\"]");
        json_decref(fr);
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
        json_t *fr = NULL;
        aemp__frame_reader_init(&r, AEMP_FRAMING_CBOR, 0);
        aemp__buf_append(&in, c, cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 0);
        aemp__buf_append(&in, c + cut, sizeof c - cut);
        assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
        assert_json_eq(fr, "[256,\"\",[1],{\"k\":\"hi\"}]");
        json_decref(fr);
        aemp__buf_free(&in);
        aemp__frame_reader_free(&r);
    }
}

/* A ~4 MB frame fed one byte per call: completes only if scanning is linear. */
static void big_frame_bytewise(aemp_framing_t f)
{
    json_t *msg = json_array();
    size_t slen = 3 * 1024 * 1024;
    char *s = malloc(slen);
    for (size_t i = 0; i < slen; i++)
        s[i] = (i % 1000 == 999) ? '"' : (i % 777 == 0) ? '\\' : (char)('a' + i % 26);
    json_array_append_new(msg, json_stringn(s, slen));
    json_t *ints = json_array();
    for (int i = 0; i < 100000; i++)
        json_array_append_new(ints, i % 2 ? json_integer(i * 1000) : json_pack("[i]", i));
    json_array_append_new(msg, ints);
    aemp_buf_t out = AEMP_BUF_INIT;
    aemp__frame_encode(f, &out, "big", 3, msg);
    assert_true(out.len > 3 * 1024 * 1024);

    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    json_t *fr = NULL;
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
    assert_non_null(fr);
    assert_string_equal(json_string_value(json_array_get(fr, 0)), "big");
    assert_int_equal(json_string_length(json_array_get(fr, 1)), slen);
    assert_memory_equal(json_string_value(json_array_get(fr, 1)), s, slen);
    assert_true(json_equal(json_array_get(fr, 2), ints));
    json_decref(fr);
    free(s);
    json_decref(msg);
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
    json_t *fr;
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

static void malformed_json(void **state)
{
    char err[160];
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[1,}", 4, err, sizeof err), -1);
    assert_true(!strncmp(err, "malformed JSON frame at byte ", 29));
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[1 2]", 5, err, sizeof err), -1);
    assert_true(!strncmp(err, "malformed JSON frame at byte ", 29));
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[\"\xff\"]", 5, err, sizeof err), -1);
    assert_true(!strncmp(err, "malformed JSON frame at byte ", 29));
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[tru]", 5, err, sizeof err), -1);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "x[]", 3, err, sizeof err), -1);
    assert_string_equal(err, "malformed JSON frame at byte 0: unexpected byte 0x78");
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "]", 1, err, sizeof err), -1);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "{\"a\":1}", 7, err, sizeof err), -1);
    assert_string_equal(err, "frame is not an array");
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "  \"s\"", 5, err, sizeof err), -1);
    assert_string_equal(err, "frame is not an array");
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "17", 2, err, sizeof err), -1);
    assert_string_equal(err, "frame is not an array");
    /* NUL in an object key: jansson refuses (a limit of the JSON framing) */
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[{\"a\\u0000\":1}]", 15, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL byte in object key"));
    /* too big for int64: jansson refuses */
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, "[18446744073709551616]", 22, err, sizeof err), -1);

    /* deep nesting is refused while scanning */
    size_t n = 5000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    assert_int_equal(feed(AEMP_FRAMING_JSON, 0, deep, n, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper than"));
    free(deep);

    /* an error makes the reader unusable */
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    json_t *fr;
    aemp__frame_reader_init(&r, AEMP_FRAMING_JSON, 0);
    aemp__buf_puts(&in, "[1][2,]");
    assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
    json_decref(fr);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    assert_null(fr);
    aemp__buf_puts(&in, "[3]");
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    assert_null(fr);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);

    /* no framing */
    aemp__frame_reader_init(&r, AEMP_FRAMING_NONE, 0);
    aemp__buf_puts(&in, "[]");
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

#define CB(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

static void cbor_decode_check(const uint8_t *p, size_t n, const char *want)
{
    json_t *fr = decode_one(AEMP_FRAMING_CBOR, p, n);
    assert_json_eq(fr, want);
    json_decref(fr);
    /* and byte-wise */
    json_t *all = decode_all(AEMP_FRAMING_CBOR, p, n, 1, NULL, NULL, 0);
    assert_int_equal(json_array_size(all), 1);
    assert_json_eq(json_array_get(all, 0), want);
    json_decref(all);
}

static void cbor_features(void **state)
{
    /* indefinite array, string (chunks), map */
    cbor_decode_check(CB(0x9f, 0x01, 0x5f, 0x42, 'a', 'b', 0x41, 'c', 0xff,
                         0x7f, 0x61, 'd', 0x60, 0xff, 0xbf, 0x61, 'k', 0xf7, 0xff, 0xff),
                      "[1,\"abc\",\"d\",{\"k\":null}]");
    /* empty indefinite string and containers */
    cbor_decode_check(CB(0x83, 0x5f, 0xff, 0x9f, 0xff, 0xbf, 0xff), "[\"\",[],{}]");
    /* floats: half 1.0, half -2.5, half subnormal, single 100000.0,
     * double 0.1, half inf -> null, single NaN -> null */
    cbor_decode_check(CB(0x87, 0xf9, 0x3c, 0x00, 0xf9, 0xc1, 0x00, 0xf9, 0x00, 0x01,
                         0xfa, 0x47, 0xc3, 0x50, 0x00,
                         0xfb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a,
                         0xf9, 0x7c, 0x00, 0xfa, 0x7f, 0xc0, 0x00, 0x00),
                      "[1.0,-2.5,5.9604644775390625e-8,100000.0,0.1,null,null]");
    /* simple values, undefined -> null */
    cbor_decode_check(CB(0x84, 0xf4, 0xf5, 0xf6, 0xf7), "[false,true,null,null]");
    /* tags are skipped: on items, on keys, on the whole frame */
    cbor_decode_check(CB(0xd9, 0xd9, 0xf7, 0x82, 0xc0, 0x61, 'x', 0xc1, 0xa1, 0xc2, 0x61, 'k', 0x01),
                      "[\"x\",{\"k\":1}]");
    /* integer keys become decimal strings */
    cbor_decode_check(CB(0x81, 0xa3, 0x01, 0x02, 0x20, 0x03, 0x1b, 0xff, 0xff, 0xff, 0xff,
                         0xff, 0xff, 0xff, 0xff, 0x04),
                      "[{\"1\":2,\"-1\":3,\"18446744073709551615\":4}]");
    /* integer ranges: int64 extremes stay integers, beyond becomes real */
    cbor_decode_check(CB(0x84, 0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
                      "[9223372036854775807,-9223372036854775808,"
                      "1.8446744073709552e19,-1.8446744073709552e19]");
    /* byte strings: valid UTF-8 is UTF-8, anything else is Latin-1 */
    cbor_decode_check(CB(0x83, 0x42, 0xc3, 0xbc, 0x43, 'g', 0xfc, 'n', 0x41, 0xff),
                      "[\"\\u00fc\",\"g\\u00fcn\",\"\\u00ff\"]");
    /* text string with invalid UTF-8 is taken as Latin-1 too; NUL kept */
    cbor_decode_check(CB(0x82, 0x62, 0xe9, 0x00, 0x63, 'a', 0x00, 'b'),
                      "[\"\\u00e9\\u0000\",\"a\\u0000b\"]");
    /* byte-string map key, Latin-1 */
    cbor_decode_check(CB(0x81, 0xa1, 0x41, 0xe9, 0x01), "[{\"\\u00e9\":1}]");
    /* longer heads for short values are fine */
    cbor_decode_check(CB(0x98, 0x02, 0x18, 0x05, 0x79, 0x00, 0x01, 'z'), "[5,\"z\"]");
}

static void cbor_errors(void **state)
{
    char err[160];
    struct {
        const uint8_t *p;
        size_t n;
        const char *err; /* prefix */
    } cases[] = {
        { CB(0xa0), "frame is not an array" },
        { CB(0x01), "frame is not an array" },
        { CB(0x61, 'a'), "frame is not an array" },
        { CB(0xc1, 0xa0), "frame is not an array" },
        { CB(0xff), "frame is not an array" },
        { CB(0x81, 0xff), "malformed CBOR frame: unexpected break" },
        { CB(0x81, 0x1c), "malformed CBOR frame: reserved additional information" },
        { CB(0x81, 0xbf, 0x01, 0xff), "malformed CBOR frame: key without value" },
        { CB(0x81, 0x5f, 0x61, 'a', 0xff), "malformed CBOR frame: bad chunk" },
        { CB(0x81, 0x5f, 0x5f, 0xff, 0xff), "malformed CBOR frame: bad chunk" },
        { CB(0x81, 0xe0), "malformed CBOR frame: unsupported simple value" },
        { CB(0x81, 0xf8, 0x20), "malformed CBOR frame: unsupported simple value" },
        { CB(0x81, 0x1f), "malformed CBOR frame: indefinite-length integer" },
        { CB(0x81, 0xdf), "malformed CBOR frame: indefinite-length tag" },
        { CB(0x9f, 0xc1, 0xff), "malformed CBOR frame: tag without content" },
        { CB(0x81, 0xa1, 0xf5, 0x01), "malformed CBOR frame: map key is not a string" },
        { CB(0x81, 0xa1, 0x80, 0x01), "malformed CBOR frame: map key is not a string" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = feed(AEMP_FRAMING_CBOR, 0, cases[i].p, cases[i].n, err, sizeof err);
        if (rc != -1 || strncmp(err, cases[i].err, strlen(cases[i].err)))
            fail_msg("case %zu: rc %d, error '%s', want '%s'", i, rc, err, cases[i].err);
    }

    /* deep nesting */
    size_t n = 3000;
    uint8_t *deep = malloc(n);
    memset(deep, 0x81, n);
    assert_int_equal(feed(AEMP_FRAMING_CBOR, 0, deep, n, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper than"));
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
    json_t *fr;
    aemp__frame_reader_init(&r, AEMP_FRAMING_CBOR, 0);
    aemp__buf_append(&in, CB(0x80, 0x81, 0x01, 0xa0, 0x80));
    assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
    json_decref(fr);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), 1);
    json_decref(fr);
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    assert_string_equal(r.error, "frame is not an array");
    assert_int_equal(aemp__frame_next(&r, &in, &fr), -1);
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
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
        cmocka_unit_test(keepalive),
        cmocka_unit_test(many_frames_one_read),
        cmocka_unit_test(truncated_needs_more),
        cmocka_unit_test(json_big_bytewise),
        cmocka_unit_test(cbor_big_bytewise),
        cmocka_unit_test(max_frame),
        cmocka_unit_test(malformed_json),
        cmocka_unit_test(cbor_features),
        cmocka_unit_test(cbor_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
