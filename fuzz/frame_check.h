/* frame_check.h - the round-trip property of the frame codecs, shared by
 * tests/test_frame.c and the fuzz targets (fuzz/fuzz_frame.c, fuzz/proto_pair.h).
 *
 * Property: every frame a reader accepts, encoded again in either framing,
 * is accepted and decodes to the same value -- exactly over CBOR, and over
 * JSON as "JSON sees it" (fc_json_view: byte strings and text that is not
 * UTF-8 become the text of their Latin-1 reading, non-finite doubles
 * become null) -- and a value that came through JSON is a fixed point of
 * both framings (the same value and the same JSON bytes again).  A
 * violation prints what differs and aborts.
 *
 * Everything is static: include it into one program.
 */
#ifndef AEMP_FRAME_CHECK_H
#define AEMP_FRAME_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* Append to b the string s[0..n) as JSON sees it: itself if it is text
 * and valid UTF-8, else each byte as the code point of that value. */
static void fc_build_json_str(aemp_build_t *b, const char *s, size_t n, int bytes)
{
    if (!bytes && aemp__utf8_valid((const uint8_t *)s, n)) {
        aemp_build_strn(b, s, n);
        return;
    }
    char *o = aemp__build_str_space(b, AEMP_T_STR, 2 * n);
    if (!o)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            o[k++] = (char)c;
        } else {
            o[k++] = (char)(0xc0 | (c >> 6));
            o[k++] = (char)(0x80 | (c & 0x3f));
        }
    }
    aemp__build_str_shrink(b, k);
}

/* Append to b the value v as JSON sees it (see above). */
static void fc_build_json_view(aemp_build_t *b, const aemp_val_t *v)
{
    size_t n;
    const char *s;
    double d;
    switch (aemp_val_type(v)) {
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        s = aemp_val_str(v, &n);
        fc_build_json_str(b, s, n, aemp_val_type(v) == AEMP_T_BYTES);
        return;
    case AEMP_T_DOUBLE:
        aemp_val_double(v, &d);
        if (isfinite(d))
            aemp_build_double(b, d);
        else
            aemp_build_null(b);
        return;
    case AEMP_T_ARRAY:
        aemp_build_array(b);
        for (size_t i = 0; i < aemp_val_len(v); i++)
            fc_build_json_view(b, aemp_val_at(v, i));
        aemp_build_close(b);
        return;
    case AEMP_T_MAP:
        aemp_build_map(b);
        for (size_t i = 0; i < aemp_val_len(v); i++) {
            fc_build_json_view(b, aemp_val_key(v, i));
            fc_build_json_view(b, aemp_val_value(v, i));
        }
        aemp_build_close(b);
        return;
    default:
        aemp_build_val(b, v);
    }
}

/* A new message: m (borrowed, its root an array) as JSON sees it. */
static aemp_msg_t *fc_json_view(const aemp_msg_t *m)
{
    aemp_build_t *b = aemp_build_new();
    for (size_t i = 0; i < aemp_msg_len(m); i++)
        fc_build_json_view(b, aemp_msg_at(m, i));
    return aemp_build_msg(b);
}

/* Print a violation of the property and abort. */
static void fc_violation(const char *what, const aemp_val_t *want, const aemp_val_t *got)
{
    char *w = want ? aemp_val_text(want) : NULL, *g = got ? aemp_val_text(got) : NULL;
    fprintf(stderr, "frame round trip violated: %s\n  want %.2000s\n  got  %.2000s\n", what,
            w ? w : "-", g ? g : "-");
    free(w);
    free(g);
    abort();
}

/* Decode the single frame in p[0..n) (no size limit); aborts unless the
 * bytes are exactly one frame. */
static void fc_decode_one(aemp_framing_t f, const uint8_t *p, size_t n, aemp_frame_t *fr,
                          char **dest)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp__frame_reader_init(&r, f, 0);
    aemp__buf_append(&in, p, n);
    int rc = aemp__frame_next(&r, &in, fr);
    if (rc != 1 || aemp__buf_used(&in)) {
        fprintf(stderr, "frame round trip violated: re-encoded %s frame of %zu bytes not taken "
                "back (rc %d, %zu bytes left): %s\n", aemp__framing_name(f), n, rc,
                aemp__buf_used(&in), r.error);
        abort();
    }
    *dest = NULL;
    if (fr->dest) {
        *dest = malloc(fr->destlen + 1);
        memcpy(*dest, fr->dest, fr->destlen + 1);
        fr->dest = *dest;
    }
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
}

/* Encode [dest, msg...] (empty: []) in framing f into out (cleared). */
static void fc_encode(aemp_framing_t f, aemp_buf_t *out, int empty, const char *dest,
                      size_t destlen, const aemp_msg_t *msg)
{
    out->off = out->len = 0;
    if (empty)
        aemp__frame_encode_value(f, out, aemp_msg_root(aemp_msg_empty()));
    else
        aemp__frame_encode(f, out, dest, destlen, msg);
}

/* Check that re-encoding in framing f gives back (want_dest, want): the
 * decoded frame is returned in *got (the caller unrefs got->msg and frees
 * *gdest). */
static void fc_trip(aemp_framing_t f, int empty, const char *dest, size_t destlen,
                    const aemp_msg_t *msg, const char *want_dest, size_t want_destlen,
                    const aemp_msg_t *want, aemp_buf_t *out, aemp_frame_t *got, char **gdest)
{
    fc_encode(f, out, empty, dest, destlen, msg);
    fc_decode_one(f, aemp__buf_head(out), aemp__buf_used(out), got, gdest);
    if (got->empty != empty)
        fc_violation(f == AEMP_FRAMING_JSON ? "JSON: keepalive flag" : "CBOR: keepalive flag",
                     NULL, NULL);
    if (!empty && (!got->dest || got->destlen != want_destlen ||
                   memcmp(got->dest, want_dest, want_destlen)))
        fc_violation(f == AEMP_FRAMING_JSON ? "JSON: destination" : "CBOR: destination", NULL,
                     NULL);
    if (!aemp_val_equal(aemp_msg_root(got->msg), aemp_msg_root(want)))
        fc_violation(f == AEMP_FRAMING_JSON ? "JSON: message" : "CBOR: message",
                     aemp_msg_root(want), aemp_msg_root(got->msg));
}

/* Check the property for one decoded frame (borrowed).  A frame without a
 * string destination is re-encoded with the destination "". */
static void fc_check_frame(const aemp_frame_t *fr)
{
    const char *dest = fr->dest ? fr->dest : "";
    size_t destlen = fr->dest ? fr->destlen : 0;
    aemp_buf_t out = AEMP_BUF_INIT, out2 = AEMP_BUF_INIT;
    aemp_frame_t c, j, jc, jj;
    char *cd, *jd, *jcd, *jjd;

    /* CBOR: exactly the same */
    fc_trip(AEMP_FRAMING_CBOR, fr->empty, dest, destlen, fr->msg, dest, destlen, fr->msg, &out,
            &c, &cd);

    /* JSON: as JSON sees it */
    aemp_build_t *b = aemp_build_new();
    fc_build_json_str(b, dest, destlen, 0);
    aemp_msg_t *vd = aemp_build_root(b);
    aemp_msg_t *vm = fc_json_view(fr->msg);
    size_t vdlen;
    const char *vdest = aemp_val_str(aemp_msg_root(vd), &vdlen);
    fc_trip(AEMP_FRAMING_JSON, fr->empty, dest, destlen, fr->msg, vdest, vdlen, vm, &out, &j,
            &jd);

    /* what came through JSON is a fixed point of both framings */
    fc_trip(AEMP_FRAMING_CBOR, j.empty, vdest, vdlen, j.msg, vdest, vdlen, vm, &out2, &jc,
            &jcd);
    fc_trip(AEMP_FRAMING_JSON, j.empty, vdest, vdlen, j.msg, vdest, vdlen, vm, &out2, &jj,
            &jjd);
    if (out.len != out2.len || memcmp(out.data, out2.data, out.len))
        fc_violation("JSON: re-encoding what JSON decoded gives other bytes", aemp_msg_root(vm),
                     aemp_msg_root(j.msg));

    aemp_msg_unref(c.msg);
    aemp_msg_unref(j.msg);
    aemp_msg_unref(jc.msg);
    aemp_msg_unref(jj.msg);
    aemp_msg_unref(vd);
    aemp_msg_unref(vm);
    free(cd);
    free(jd);
    free(jcd);
    free(jjd);
    aemp__buf_free(&out);
    aemp__buf_free(&out2);
}

/* A list of decoded frames (copies). */
typedef struct fc_frames {
    struct fc_frame {
        int empty;
        char *dest;            /* NULL: none */
        size_t destlen;
        aemp_msg_t *msg;
    } *v;
    size_t n, cap;
} fc_frames_t;

/* Append a copy of the decoded frame fr (borrowed) to l. */
static void fc_frames_push(fc_frames_t *l, const aemp_frame_t *fr)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            abort();
    }
    struct fc_frame *e = &l->v[l->n++];
    e->empty = fr->empty;
    e->dest = NULL;
    e->destlen = fr->destlen;
    if (fr->dest) {
        e->dest = malloc(fr->destlen + 1);
        if (!e->dest)
            abort();
        memcpy(e->dest, fr->dest, fr->destlen + 1);
    }
    e->msg = aemp_msg_ref(fr->msg);
}

/* Free everything l holds; l is empty afterwards. */
static void fc_frames_free(fc_frames_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].dest);
        aemp_msg_unref(l->v[i].msg);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* The frames a reader with the given limit takes from p[0..n) fed `chunk`
 * bytes at a time (0 = all at once): each checked with fc_check_frame and,
 * if l is not NULL, appended to l.  Returns the reader's last result: 0
 * (all taken, perhaps an incomplete rest) or -1 (an error). */
static int fc_check_stream(aemp_framing_t f, size_t max_frame, const uint8_t *p, size_t n,
                           size_t chunk, fc_frames_t *l)
{
    aemp_frame_reader_t r;
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_frame_t fr;
    int rc = 0;
    aemp__frame_reader_init(&r, f, max_frame);
    for (size_t fed = 0; fed < n && rc >= 0;) {
        size_t k = chunk && n - fed > chunk ? chunk : n - fed;
        aemp__buf_append(&in, p + fed, k);
        fed += k;
        while ((rc = aemp__frame_next(&r, &in, &fr)) == 1) {
            fc_check_frame(&fr);
            if (l)
                fc_frames_push(l, &fr);
            aemp_msg_unref(fr.msg);
        }
    }
    aemp__buf_free(&in);
    aemp__frame_reader_free(&r);
    return rc;
}

/* The whole check of one input: the frames in it satisfy the property,
 * and feeding it in pieces (of 1..13 bytes, chosen by its first byte)
 * gives the same frames and the same outcome as feeding it at once.
 * (Marked unused: programs that check single frames only leave it out.) */
static void __attribute__((unused)) fc_check_input(aemp_framing_t f, const uint8_t *p, size_t n)
{
    const size_t max_frame = 1u << 20;
    size_t chunk = n ? 1 + p[0] % 13 : 1;
    fc_frames_t a = { 0 }, b = { 0 };
    int rca = fc_check_stream(f, max_frame, p, n, 0, &a);
    int rcb = fc_check_stream(f, max_frame, p, n, chunk, &b);
    if (rca != rcb || a.n != b.n) {
        fprintf(stderr, "frame splitting violated: at once rc %d and %zu frames, in pieces of "
                "%zu bytes rc %d and %zu frames\n", rca, a.n, chunk, rcb, b.n);
        abort();
    }
    for (size_t i = 0; i < a.n; i++) {
        const struct fc_frame *x = &a.v[i], *y = &b.v[i];
        if (x->empty != y->empty || !x->dest != !y->dest || x->destlen != y->destlen ||
            (x->dest && memcmp(x->dest, y->dest, x->destlen)))
            fc_violation("splitting: the same destination", NULL, NULL);
        if (!aemp_val_equal(aemp_msg_root(x->msg), aemp_msg_root(y->msg)))
            fc_violation("splitting: the same message", aemp_msg_root(x->msg),
                         aemp_msg_root(y->msg));
    }
    fc_frames_free(&a);
    fc_frames_free(&b);
}

#endif
