/* frame.c - message framings: JSON and CBOR (see frame.h).
 *
 * Splitting is incremental and linear: the reader keeps its scanning state
 * between calls, so every byte of a frame is scanned once however the frame
 * is cut into reads, and the scanners enforce the frame size limit and the
 * nesting limit (AEMP_MSG_MAX_DEPTH, the frame's array counted as 1) in the
 * same way for both framings.  When no frame is begun, the decoder first
 * tries the bytes at hand directly, checking everything the scanner
 * would (so a frame that arrived whole is walked once); if that fails --
 * the frame is cut, or wrong -- the scanner takes over (once per frame,
 * so the cost stays linear) and only a complete frame is decoded, with
 * exactly the old errors.  Element 0 (the destination port) goes to the
 * reader's own buffer, elements 1.. become the root array of the new
 * message: a flat frame (only scalars and strings after the destination,
 * nearly all traffic) straight in its final layout, any other through the
 * reader's message builder (see "flat frames" below).  Encoding walks a
 * message's cells and writes into the output buffer.  Neither direction
 * allocates anything but the output buffer and the decoded message in
 * steady state.
 *
 * Value mapping (the same set of values both ways, so that any frame
 * accepted from one peer can be encoded for any other):
 *  - CBOR: text strings are STR (their bytes kept, even if not UTF-8),
 *    byte strings BYTES; integers of the whole uint64 range are INT/UINT,
 *    negative ones below INT64_MIN (down to -2^64) doubles; half, single and
 *    double floats are doubles (non-finite ones kept); undefined is null;
 *    tags are skipped (their content is decoded); map keys are strings
 *    (kept with their kind) or integers (their decimal text), nothing else.
 *    Encoding writes STR as text and BYTES as byte strings, integers as
 *    major types 0/1, doubles as float64, definite arrays and maps.
 *  - JSON: strings are STR (escapes decoded, \u0000 kept; invalid UTF-8 is
 *    an error); integers that fit int64 are INT, above that up to UINT64_MAX
 *    UINT, beyond that doubles (as Perl's JSON::XS does); other numbers are
 *    doubles read exactly (as strtod does).  Encoding is compact UTF-8 with
 *    only '"', '\\' and control characters escaped (as jansson and JSON::XS
 *    do); BYTES, and STR that is not valid UTF-8, are written as Perl writes
 *    a byte string: each byte as the character of that code point; UINT as
 *    its digits; doubles in jansson's style (always a '.' or an exponent)
 *    with the shortest of %.15g/%.16g/%.17g that reads back exactly;
 *    non-finite doubles as null.  So a value survives CBOR -> JSON -> CBOR
 *    except that byte strings (and text that is not UTF-8) arrive as the
 *    text of their Latin-1 reading and non-finite doubles as null.
 */
#define _GNU_SOURCE /* strtod_l, newlocale */
#include "frame.h"

#include <cbor.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CBOR scanner stack entries: a count of items still expected in a definite
 * container, or one of these markers for indefinite-length items. */
#define ST_INDEF_ARRAY UINT64_MAX
#define ST_INDEF_MAP0 (UINT64_MAX - 1) /* indefinite map, even item count so far */
#define ST_INDEF_MAP1 (UINT64_MAX - 2) /* indefinite map, odd item count so far */
#define ST_INDEF_BYTES (UINT64_MAX - 3)
#define ST_INDEF_TEXT (UINT64_MAX - 4)
#define ST_MAX_COUNT (UINT64_MAX - 5)

/* What a decoder found in element 0 of a frame. */
#define FRAME_EMPTY 0   /* the frame was [] */
#define FRAME_DEST 1    /* a string: in r->dest */
#define FRAME_NODEST 2  /* another value: decoded as the builder's first value */

/* The destination buffer is shrunk back when it grew beyond this. */
#define DEST_KEEP 4096u

typedef struct aemp_val val_t;

/* Make c a cell of type t with no payload yet (no uninitialised bytes). */
static inline void cell_init(val_t *c, aemp_type_t t)
{
    aemp__cell_set(c, (uint8_t)t, 0, 0);
}

/* Make c the integer u: INT if it fits int64, else UINT (as
 * aemp_build_uint does). */
static inline void cell_uint(val_t *c, uint64_t u)
{
    aemp__cell_set(c, u <= INT64_MAX ? AEMP_T_INT : AEMP_T_UINT, 0, u);
}

/* ------------------------------------------------------------ names */

/* Wire name of a framing; NULL for NONE. */
const char *aemp__framing_name(aemp_framing_t f)
{
    switch (f) {
    case AEMP_FRAMING_JSON: return "json";
    case AEMP_FRAMING_CBOR: return "cbor";
    default: return NULL;
    }
}

/* Framing for a wire name of len bytes; NONE if unknown. */
aemp_framing_t aemp__framing_parse(const char *name, size_t len)
{
    if (!name)
        return AEMP_FRAMING_NONE;
    if (len == 4 && !memcmp(name, "json", 4))
        return AEMP_FRAMING_JSON;
    if (len == 4 && !memcmp(name, "cbor", 4))
        return AEMP_FRAMING_CBOR;
    return AEMP_FRAMING_NONE;
}

/* ------------------------------------------------------------ bytes */

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* A big-endian word loaded with memcpy, in host order (and back). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BE32(w) __builtin_bswap32(w)
#define BE64(w) __builtin_bswap64(w)
#else
#define BE32(w) (w)
#define BE64(w) (w)
#endif

/* The 8 bytes at p as one word (any alignment). */
static inline uint64_t load8(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* 1 if a JSON string holds the byte c as it is on both sides: printable
 * ASCII except '"' and '\\'. */
static inline int json_plain(uint8_t c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Nonzero if one of the 8 bytes of w is not json_plain (a word-at-a-time
 * test: a zero byte after xor with '"' or '\\', a byte below 0x20, a byte
 * with the high bit set). */
static inline uint64_t json_special8(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), s = w ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((s - ONES) & ~s) | ((w - ONES * 0x20) & ~w) | w) & HIGHS;
}

/* Nonzero if one of the 8 bytes of w is '"' or '\\'. */
static inline uint64_t quote_bslash8(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), s = w ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((s - ONES) & ~s)) & HIGHS;
}

/* How many of the 8 bytes at p come before the first one flagged in the
 * nonzero mask m of json_special8 or quote_bslash8 (is_special tells which
 * test made it, for the byte-wise fallback).  On a little-endian machine
 * the lowest flag is exact (a borrow only runs upwards from a byte that
 * really matched), so that is a count of trailing zeros. */
static inline size_t lead8(const uint8_t *p, uint64_t m, int is_special)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)p;
    (void)is_special;
    return (size_t)__builtin_ctzll(m) >> 3;
#else
    (void)m;
    size_t k = 0;
    if (is_special)
        while (json_plain(p[k]))
            k++;
    else
        while (p[k] != '"' && p[k] != '\\')
            k++;
    return k;
#endif
}

/* The index of the first '"' or '\\' in p[i..end), or end. */
static inline size_t find_quote_bslash(const uint8_t *p, size_t i, size_t end)
{
    while (end - i >= 8) {
        uint64_t m = quote_bslash8(load8(p + i));
        if (m)
            return i + lead8(p + i, m, 0);
        i += 8;
    }
    while (i < end && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

/* Write the decimal digits of u, after a '-' if neg, so that they end just
 * before `end`; returns where they start (at most 21 bytes before end). */
static char *fmt_dec(char *end, uint64_t u, int neg)
{
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        *--p = '-';
    return p;
}

/* ------------------------------------------------------------ JSON encode */

/* Append the JSON escape of the ASCII byte c ('"', '\\' or a control
 * character): the short forms where JSON has them, else \u00XX. */
static void json_put_esc(aemp_buf_t *b, uint8_t c)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
    size_t n = 2;
    switch (c) {
    case '"': e[1] = '"'; break;
    case '\\': e[1] = '\\'; break;
    case '\b': e[1] = 'b'; break;
    case '\f': e[1] = 'f'; break;
    case '\n': e[1] = 'n'; break;
    case '\r': e[1] = 'r'; break;
    case '\t': e[1] = 't'; break;
    default: n = 6;
    }
    aemp__buf_append(b, e, n);
}

/* Append s[0..n) as a JSON string literal.  Text (bytes == 0) that is
 * valid UTF-8 is copied as it is; a byte string, or text that turns out
 * not to be UTF-8, is written with every byte as the character of that
 * code point (what Perl writes for a byte string).  Valid text costs one
 * pass; plain ASCII is copied a word at a time into room reserved up
 * front, anything else in runs. */
static void json_put_str(aemp_buf_t *b, const char *str, size_t n, int bytes)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t start = b->len, i = 0;
    uint8_t *w = aemp__buf_reserve(b, n + 2);
    *w++ = '"';
    /* fast path: plain ASCII (the room for it was reserved) */
    for (;;) {
        if (n - i >= 8 && !json_special8(load8(s + i))) {
            memcpy(w, s + i, 8);
            w += 8;
            i += 8;
        } else if (i < n && json_plain(s[i])) {
            *w++ = s[i++];
        } else {
            break;
        }
    }
    if (i == n) {
        *w++ = '"';
        b->len = (size_t)(w - b->data);
        return;
    }
    b->len = (size_t)(w - b->data);
    while (i < n) {
        /* the longest run of bytes that are copied unchanged */
        size_t j = i, l;
        while (j < n) {
            if (n - j >= 8 && !json_special8(load8(s + j)))
                j += 8;
            else if (json_plain(s[j]))
                j++;
            else if (s[j] >= 0x80 && !bytes && (l = aemp__utf8_seq(s + j, n - j)) != 0)
                j += l;
            else
                break;
        }
        aemp__buf_append(b, s + i, j - i);
        if (j == n)
            break;
        uint8_t c = s[j];
        i = j + 1;
        if (c < 0x80) {
            json_put_esc(b, c);
        } else if (bytes) {
            uint8_t *p = aemp__buf_reserve(b, 2);
            p[0] = (uint8_t)(0xc0 | (c >> 6));
            p[1] = (uint8_t)(0x80 | (c & 0x3f));
            b->len += 2;
        } else { /* not UTF-8 after all: start over as bytes */
            b->len = start;
            json_put_str(b, str, n, 1);
            return;
        }
    }
    aemp__buf_putc(b, '"');
}

/* Format a finite double as jansson does: aemp__fmt_double's shortest
 * exact form (always a '.' or an exponent) without '+' or leading zeros in
 * the exponent.  Returns the length written to out (>= 40 bytes). */
static size_t fmt_real(char *out, double v)
{
    size_t len = aemp__fmt_double(out, v);
    char *ex = strchr(out, 'e');
    if (ex) {
        char *start = ex + 1, *end;
        if (*start == '-')
            start++;
        end = start;
        if (*end == '+')
            end++;
        while (*end == '0' && end[1])
            end++;
        if (end != start) {
            memmove(start, end, strlen(end) + 1);
            len = strlen(out);
        }
    }
    return len;
}

/* Append any value as JSON.  Recursion is bounded by the message's depth
 * limit. */
static void json_put_val(aemp_buf_t *b, const val_t *v)
{
    char tmp[40], *e = tmp + sizeof tmp, *p;
    switch (v->type) {
    case AEMP_T_BOOL:
        if (v->v.i)
            aemp__buf_append(b, "true", 4);
        else
            aemp__buf_append(b, "false", 5);
        return;
    case AEMP_T_INT:
        p = fmt_dec(e, v->v.i < 0 ? (uint64_t)0 - (uint64_t)v->v.i : (uint64_t)v->v.i, v->v.i < 0);
        aemp__buf_append(b, p, (size_t)(e - p));
        return;
    case AEMP_T_UINT:
        p = fmt_dec(e, v->v.u, 0);
        aemp__buf_append(b, p, (size_t)(e - p));
        return;
    case AEMP_T_DOUBLE:
        if (!isfinite(v->v.d))
            break;
        aemp__buf_append(b, tmp, fmt_real(tmp, v->v.d));
        return;
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        json_put_str(b, aemp__val_strp(v), v->n, v->type == AEMP_T_BYTES);
        return;
    case AEMP_T_ARRAY: {
        const val_t *c = aemp__val_child(v);
        aemp__buf_putc(b, '[');
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                aemp__buf_putc(b, ',');
            json_put_val(b, c + i);
        }
        aemp__buf_putc(b, ']');
        return;
    }
    case AEMP_T_MAP: {
        const val_t *c = aemp__val_child(v);
        aemp__buf_putc(b, '{');
        for (uint32_t i = 0; i < v->n; i++, c += 2) {
            if (i)
                aemp__buf_putc(b, ',');
            json_put_str(b, aemp__val_strp(c), c->n, c->type == AEMP_T_BYTES);
            aemp__buf_putc(b, ':');
            json_put_val(b, c + 1);
        }
        aemp__buf_putc(b, '}');
        return;
    }
    }
    aemp__buf_append(b, "null", 4); /* null, non-finite doubles */
}

/* ------------------------------------------------------------ CBOR encode */

/* Write the shortest CBOR head of major type `major` with argument v to p
 * (room for 9 bytes); returns its length.  The same bytes as libcbor's
 * cbor_encode_uint/negint/string_start/array_start/map_start, inline: these
 * heads are most of what a message frame consists of. */
static inline size_t cb_head(uint8_t *p, unsigned major, uint64_t v)
{
    uint8_t m = (uint8_t)(major << 5);
    if (v < 24) {
        p[0] = (uint8_t)(m | v);
        return 1;
    }
    if (v <= 0xff) {
        p[0] = m | 24;
        p[1] = (uint8_t)v;
        return 2;
    }
    if (v <= 0xffff) {
        p[0] = m | 25;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)v;
        return 3;
    }
    if (v <= 0xffffffffu) {
        uint32_t be = BE32((uint32_t)v);
        p[0] = m | 26;
        memcpy(p + 1, &be, 4);
        return 5;
    }
    uint64_t be = BE64(v);
    p[0] = m | 27;
    memcpy(p + 1, &be, 8);
    return 9;
}

/* Append a CBOR head. */
static inline void cb_put_head(aemp_buf_t *b, unsigned major, uint64_t v)
{
    uint8_t *p = b->cap - b->len >= 9 ? b->data + b->len : aemp__buf_reserve(b, 9);
    b->len += cb_head(p, major, v);
}

/* Append a CBOR string of major type 2 (bytes) or 3 (text). */
static void cbor_put_str(aemp_buf_t *b, unsigned major, const char *s, size_t n)
{
    uint8_t *p = b->cap - b->len >= 9 + n ? b->data + b->len : aemp__buf_reserve(b, 9 + n);
    size_t h = cb_head(p, major, n);
    memcpy(p + h, s, n);
    b->len += h + n;
}

/* Room the CBOR form of the scalar or string cell c needs at most. */
static inline size_t cb_scalar_room(const val_t *c)
{
    return 9 + (c->type == AEMP_T_STR || c->type == AEMP_T_BYTES ? c->n : 0);
}

/* Write the CBOR form of the cell c, a scalar or a string, at w (room for
 * cb_scalar_room(c) bytes); returns its length. */
static inline size_t cb_put_scalar(uint8_t *w, const val_t *c)
{
    switch (c->type) {
    case AEMP_T_BOOL:
        return cbor_encode_bool(c->v.i != 0, w, 9);
    case AEMP_T_INT:
        if (c->v.i >= 0)
            return cb_head(w, 0, (uint64_t)c->v.i);
        return cb_head(w, 1, (uint64_t)(-(c->v.i + 1)));
    case AEMP_T_UINT:
        return cb_head(w, 0, c->v.u);
    case AEMP_T_DOUBLE:
        return cbor_encode_double(c->v.d, w, 9);
    case AEMP_T_STR:
    case AEMP_T_BYTES: {
        size_t h = cb_head(w, c->type == AEMP_T_BYTES ? 2 : 3, c->n);
        memcpy(w + h, aemp__val_strp(c), c->n);
        return h + c->n;
    }
    }
    return cbor_encode_null(w, 9);
}

/* Append any value as CBOR.  Recursion is bounded by the message's depth
 * limit. */
static void cbor_put_val(aemp_buf_t *b, const val_t *v)
{
    if (v->type == AEMP_T_ARRAY || v->type == AEMP_T_MAP) {
        const val_t *c = aemp__val_child(v);
        uint32_t k = v->type == AEMP_T_MAP ? 2 * v->n : v->n;
        cb_put_head(b, v->type == AEMP_T_MAP ? 5 : 4, v->n);
        for (uint32_t i = 0; i < k; i++)
            cbor_put_val(b, c + i);
        return;
    }
    size_t room = cb_scalar_room(v);
    uint8_t *p = b->cap - b->len >= room ? b->data + b->len : aemp__buf_reserve(b, room);
    b->len += cb_put_scalar(p, v);
}

/* The bytes of the string cell c[i]: from strs[i] for the cells of a
 * scanned format (aemp_flat_t), else from the message's heap. */
static inline const char *cell_bytes(const val_t *c, const char *const *strs, uint32_t i)
{
    return strs ? strs[i] : aemp__val_strp(&c[i]);
}

/* Append the CBOR frame [dest, c[0..n)] of a message's cells if all of
 * them are scalars and strings, with room reserved once for all of it; 0
 * if one is an array or a map (nothing appended). */
static int cbor_put_flat_frame(aemp_buf_t *b, const char *dest, size_t destlen, const val_t *c, uint32_t n)
{
    size_t room = 9 + 9 + destlen;
    for (uint32_t i = 0; i < n; i++) {
        if (c[i].type == AEMP_T_ARRAY || c[i].type == AEMP_T_MAP)
            return 0;
        room += cb_scalar_room(&c[i]);
    }
    uint8_t *w0 = b->cap - b->len >= room ? b->data + b->len : aemp__buf_reserve(b, room), *w = w0;
    w += cb_head(w, 4, (uint64_t)n + 1);
    w += cb_head(w, 3, destlen);
    aemp__copy_small(w, dest, destlen);
    w += destlen;
    for (uint32_t i = 0; i < n; i++) {
        if (c[i].type == AEMP_T_STR || c[i].type == AEMP_T_BYTES) {
            w += cb_head(w, c[i].type == AEMP_T_BYTES ? 2 : 3, c[i].n);
            aemp__copy_small(w, aemp__val_strp(&c[i]), c[i].n);
            w += c[i].n;
        } else {
            w += cb_put_scalar(w, &c[i]);
        }
    }
    b->len += (size_t)(w - w0);
    return 1;
}

/* Append the JSON frame [dest, c[0..n)] (string bytes as cell_bytes gives
 * them). */
static void json_put_frame(aemp_buf_t *b, const char *dest, size_t destlen, const val_t *c,
                           const char *const *strs, uint32_t n)
{
    aemp__buf_putc(b, '[');
    json_put_str(b, dest, destlen, 0);
    for (uint32_t i = 0; i < n; i++) {
        aemp__buf_putc(b, ',');
        if (c[i].type == AEMP_T_STR || c[i].type == AEMP_T_BYTES)
            json_put_str(b, cell_bytes(c, strs, i), c[i].n, c[i].type == AEMP_T_BYTES);
        else
            json_put_val(b, &c[i]);
    }
    aemp__buf_putc(b, ']');
}

/* ------------------------------------------------------------ encode API */

/* Append the frame [dest, msg...] in framing f (see frame.h); a NULL or
 * non-array message counts as empty.  The destination is written as text. */
void aemp__frame_encode(aemp_framing_t f, aemp_buf_t *out,
                        const char *dest, size_t destlen, const aemp_msg_t *msg)
{
    const val_t *root = msg ? aemp_msg_root(msg) : NULL;
    uint32_t n = root && root->type == AEMP_T_ARRAY ? root->n : 0;
    const val_t *c = n ? aemp__val_child(root) : NULL;
    if (f == AEMP_FRAMING_JSON) {
        json_put_frame(out, dest, destlen, c, NULL, n);
    } else if (f == AEMP_FRAMING_CBOR && !cbor_put_flat_frame(out, dest, destlen, c, n)) {
        cb_put_head(out, 4, (uint64_t)n + 1);
        cbor_put_str(out, 3, dest, destlen);
        for (uint32_t i = 0; i < n; i++)
            cbor_put_val(out, c + i);
    }
}

/* The CBOR frame [dest, elements of a flat format] written as the format
 * is read (aemp__flat_next), with no cells in between: the array's head
 * is one byte (at most AEMP_FLAT_MAX + 1 elements), and room is reserved
 * up front for the heads and a few short strings, and for a string that
 * does not fit in the rest as it comes.  Nothing is
 * appended (-1) if the format is not flat. */
#define FMT_FRAME_SLACK 256   /* string bytes reserved with the heads */
static int cbor_put_fmt_frame(aemp_buf_t *b, const char *dest, size_t destlen, const char *fmt, va_list ap)
{
    _Static_assert(AEMP_FLAT_MAX + 1 < 24, "one-byte array head");
    size_t room = 1 + 9 + destlen + 9 * (AEMP_FLAT_MAX + 1) + FMT_FRAME_SLACK;
    uint8_t *w0 = b->cap - b->len >= room ? b->data + b->len : aemp__buf_reserve(b, room);
    uint8_t *w = w0 + 1, *end = w0 + room;
    w += cb_head(w, 3, destlen);
    aemp__copy_small(w, dest, destlen);
    w += destlen;
    va_list cp;
    va_copy(cp, ap);
    aemp_flat_elem_t e;
    unsigned n = 0;
    int r;
    while ((r = aemp__flat_next(&fmt, &cp, &e)) > 0) {
        if (n == AEMP_FLAT_MAX) {
            r = -1;
            break;
        }
        n++;
        if (e.type != AEMP_T_STR) {
            val_t c;
            aemp__cell_set(&c, e.type, 0, e.v);
            w += cb_put_scalar(w, &c);   /* within the heads' room */
            continue;
        }
        if ((size_t)(end - w) < 9 * (AEMP_FLAT_MAX + 1) + (size_t)e.len) {
            /* grow with the bytes written so far counted as held */
            size_t used = (size_t)(w - w0);
            room = used + 9 * (AEMP_FLAT_MAX + 1) + e.len + FMT_FRAME_SLACK;
            b->len += used;
            w0 = aemp__buf_reserve(b, room - used) - used;
            b->len -= used;
            w = w0 + used;
            end = w0 + room;
        }
        w += cb_head(w, 3, e.len);
        aemp__copy_small(w, e.str, e.len);
        w += e.len;
    }
    va_end(cp);
    if (r < 0)
        return -1;
    w0[0] = (uint8_t)(0x80 | (n + 1));
    b->len += (size_t)(w - w0);
    return 0;
}

/* The JSON frame of a flat format, through its scanned cells (a string
 * may need escaping, so its room is not known from its length). */
static __attribute__((noinline)) int json_put_fmt_frame(aemp_buf_t *b, const char *dest, size_t destlen,
                                                        const char *fmt, va_list ap)
{
    aemp_flat_t flat;
    if (aemp__flat_scan(&flat, fmt, ap) != 0)
        return -1;
    json_put_frame(b, dest, destlen, flat.cells, flat.strs, flat.n);
    return 0;
}

int aemp__frame_encode_fmt(aemp_framing_t f, aemp_buf_t *out, const char *dest, size_t destlen,
                           const char *fmt, va_list ap)
{
    if (f == AEMP_FRAMING_CBOR)
        return cbor_put_fmt_frame(out, dest, destlen, fmt, ap);
    if (f == AEMP_FRAMING_JSON)
        return json_put_fmt_frame(out, dest, destlen, fmt, ap);
    return 0;   /* no framing: nothing written, as aemp__frame_encode */
}

/* Append one value (NULL: null) as a frame in framing f. */
void aemp__frame_encode_value(aemp_framing_t f, aemp_buf_t *out, const aemp_val_t *value)
{
    static const val_t null_val = { AEMP_T_NULL, { 0 }, 0, { 0 } };
    if (!value)
        value = &null_val;
    if (f == AEMP_FRAMING_JSON)
        json_put_val(out, value);
    else if (f == AEMP_FRAMING_CBOR)
        cbor_put_val(out, value);
}

/* ------------------------------------------------------------ reader */

/* Initialise r for framing f with a frame size limit (0 = none). */
void aemp__frame_reader_init(aemp_frame_reader_t *r, aemp_framing_t f, size_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->framing = f;
    r->max_frame = max_frame;
}

/* Free the scanner stack, the builder and the destination buffer; r must
 * be initialised again before reuse. */
void aemp__frame_reader_free(aemp_frame_reader_t *r)
{
    free(r->stack);
    r->stack = NULL;
    r->stack_len = r->stack_cap = 0;
    aemp_build_abort(r->build);
    r->build = NULL;
    free(r->dest);
    r->dest = NULL;
    r->destcap = 0;
}

/* Record an error; the reader stays failed.  Returns -1. */
static int fail(aemp_frame_reader_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(aemp_frame_reader_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->failed = 1;
    return -1;
}

/* The frame-size error. */
static int fail_size(aemp_frame_reader_t *r)
{
    return fail(r, "frame of more than %zu bytes exceeds the limit", r->max_frame);
}

/* Forget the scanning state of the frame just taken. */
static void reset_scan(aemp_frame_reader_t *r)
{
    r->scan = 0;
    r->depth = 0;
    r->in_string = 0;
    r->escape = 0;
    r->started = 0;
    r->skip = 0;
    r->stack_len = 0;
}

/* Room for a destination of len bytes plus a NUL in r->dest (grown as
 * needed, shrunk back after an unusually long one); NULL on no memory. */
static char *dest_room(aemp_frame_reader_t *r, size_t len)
{
    if (len >= r->destcap || (r->destcap > DEST_KEEP && len < DEST_KEEP)) {
        size_t cap = len < 64 ? 64 : len + 1;
        char *p = realloc(r->dest, cap);
        if (!p)
            return NULL;
        r->dest = p;
        r->destcap = cap;
    }
    return r->dest;
}

/* ------------------------------------------------------------ JSON split */

/* Consume the JSON whitespace at the head of `in`. */
static void json_skip_ws(aemp_buf_t *in)
{
    const uint8_t *h = aemp__buf_head(in);
    size_t n = aemp__buf_used(in), ws = 0;
    while (ws < n && (h[ws] == ' ' || h[ws] == '\n' || h[ws] == '\r' || h[ws] == '\t'))
        ws++;
    if (ws)
        aemp__buf_consume(in, ws);
}

/* Scan the JSON frame at the head of `in` from r->scan on.  Returns 1 when
 * the frame is complete (r->scan = its length), 0 if more bytes are needed,
 * -1 on error.  Leading whitespace is consumed from `in`. */
static int json_scan(aemp_frame_reader_t *r, aemp_buf_t *in)
{
    if (!r->started) {
        json_skip_ws(in);
        if (!aemp__buf_used(in))
            return 0;
        uint8_t c = *aemp__buf_head(in);
        if (c != '[') {
            if (c == '{' || c == '"' || c == '-' || (c >= '0' && c <= '9') ||
                c == 't' || c == 'f' || c == 'n')
                return fail(r, "frame is not an array");
            return fail(r, "malformed JSON frame at byte 0: unexpected byte 0x%02x", c);
        }
        r->started = 1;
        r->depth = 1;
        r->scan = 1;
    }

    const uint8_t *p = aemp__buf_head(in);
    size_t avail = aemp__buf_used(in);
    size_t end = avail;
    if (r->max_frame && end > r->max_frame)
        end = r->max_frame;
    size_t i = r->scan;
    int depth = r->depth, in_str = r->in_string, esc = r->escape;
    int done = 0;

    while (i < end) {
        if (in_str) {
            if (esc) {
                esc = 0;
                i++;
                continue;
            }
            i = find_quote_bslash(p, i, end);
            if (i == end)
                break;
            if (p[i++] == '\\')
                esc = 1;
            else
                in_str = 0;
            continue;
        }
        uint8_t c = p[i++];
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > AEMP_MSG_MAX_DEPTH)
                return fail(r, "malformed JSON frame at byte %zu: nesting deeper than %d levels",
                            i - 1, AEMP_MSG_MAX_DEPTH);
        } else if (c == ']' || c == '}') {
            if (--depth == 0) {
                done = 1;
                break;
            }
        }
    }
    r->scan = i;
    r->depth = depth;
    r->in_string = in_str;
    r->escape = esc;
    if (done)
        return 1;
    if (r->max_frame && avail > r->max_frame)
        return fail_size(r);
    return 0;
}

/* ------------------------------------------------------------ CBOR split */

/* Push a scanner stack entry; -1 (error set) on no memory.  The stack
 * holds at most AEMP_MSG_MAX_DEPTH containers and one indefinite string. */
static int cbor_push(aemp_frame_reader_t *r, uint64_t e)
{
    if (r->stack_len == r->stack_cap) {
        size_t cap = r->stack_cap ? r->stack_cap * 2 : 16;
        uint64_t *s = realloc(r->stack, cap * sizeof *s);
        if (!s)
            return fail(r, "out of memory");
        r->stack = s;
        r->stack_cap = cap;
    }
    r->stack[r->stack_len++] = e;
    return 0;
}

/* Scan the CBOR frame at the head of `in` from r->scan on, checking that it
 * is well formed (and an array).  Returns 1 when complete (r->scan = its
 * length), 0 if more bytes are needed, -1 on error.  Each byte is looked at
 * once; a head cut by the end of the data is re-read next time (<= 9 bytes). */
static int cbor_scan(aemp_frame_reader_t *r, aemp_buf_t *in)
{
    const uint8_t *p = aemp__buf_head(in);
    size_t avail = aemp__buf_used(in);
    size_t max = r->max_frame;
    size_t i = r->scan;

    for (;;) {
        if (r->skip) {
            size_t have = avail - i;
            if (have < r->skip) {
                r->skip -= have;
                r->scan = avail;
                return 0;
            }
            i += (size_t)r->skip;
            r->skip = 0;
            goto item_done;
        }
        if (i >= avail) {
            r->scan = i;
            return 0;
        }
        {
            uint8_t ib = p[i];
            unsigned major = ib >> 5, ai = ib & 31;
            size_t hl;
            uint64_t val = 0;
            if (ai < 24) {
                hl = 1;
                val = ai;
            } else if (ai <= 27) {
                hl = 1 + ((size_t)1 << (ai - 24));
            } else if (ai == 31) {
                hl = 1;
            } else {
                return fail(r, "malformed CBOR frame: reserved additional information %u at byte %zu",
                            ai, i);
            }
            if (avail - i < hl) {
                if (max && i + hl > max)
                    return fail_size(r);
                r->scan = i;
                return 0;
            }
            for (size_t k = 1; k < hl; k++)
                val = (val << 8) | p[i + k];
            size_t at = i;
            i += hl;
            if (max && i > max)
                return fail_size(r);

            if (r->stack_len) {
                uint64_t top = r->stack[r->stack_len - 1];
                if ((top == ST_INDEF_BYTES || top == ST_INDEF_TEXT) && ib != 0xff &&
                    (major != (top == ST_INDEF_BYTES ? 2u : 3u) || ai == 31))
                    return fail(r, "malformed CBOR frame: bad chunk in an indefinite-length string at byte %zu",
                                at);
            }
            if (!r->started) {
                if (major == 6 && ai != 31)
                    continue; /* tag on the whole frame */
                if (major != 4)
                    return fail(r, "frame is not an array");
                r->started = 1;
            }

            switch (major) {
            case 0:
            case 1:
                if (ai == 31)
                    return fail(r, "malformed CBOR frame: indefinite-length integer at byte %zu", at);
                goto item_done;
            case 2:
            case 3:
                if (ai == 31) {
                    if (cbor_push(r, major == 2 ? ST_INDEF_BYTES : ST_INDEF_TEXT) < 0)
                        return -1;
                    continue;
                }
                if (max && val > max - i)
                    return fail_size(r);
                if (val > SIZE_MAX)
                    return fail(r, "malformed CBOR frame: string too long at byte %zu", at);
                if (!val)
                    goto item_done;
                r->skip = val;
                continue;
            case 4:
            case 5:
                /* the stack holds exactly the open containers here (an
                 * indefinite string admits only chunks of its own kind) */
                if (r->stack_len >= AEMP_MSG_MAX_DEPTH)
                    return fail(r, "malformed CBOR frame: nesting deeper than %d levels at byte %zu",
                                AEMP_MSG_MAX_DEPTH, at);
                if (ai == 31) {
                    if (cbor_push(r, major == 4 ? ST_INDEF_ARRAY : ST_INDEF_MAP0) < 0)
                        return -1;
                    continue;
                }
                if (!val)
                    goto item_done;
                if (val > (major == 4 ? ST_MAX_COUNT : ST_MAX_COUNT / 2))
                    return fail(r, "malformed CBOR frame: container too long at byte %zu", at);
                if (major == 5)
                    val *= 2;
                if (max && val > max - i) /* every item takes a byte at least */
                    return fail_size(r);
                if (cbor_push(r, val) < 0)
                    return -1;
                continue;
            case 6:
                if (ai == 31)
                    return fail(r, "malformed CBOR frame: indefinite-length tag at byte %zu", at);
                r->escape = 1;
                continue;
            default: /* 7 */
                if (ai >= 20 && ai <= 23) /* false, true, null, undefined */
                    goto item_done;
                if (ai >= 25 && ai <= 27) /* half, single, double float */
                    goto item_done;
                if (ai == 31) {
                    if (r->escape)
                        return fail(r, "malformed CBOR frame: tag without content at byte %zu", at);
                    if (!r->stack_len || r->stack[r->stack_len - 1] < ST_INDEF_TEXT)
                        return fail(r, "malformed CBOR frame: unexpected break at byte %zu", at);
                    if (r->stack[r->stack_len - 1] == ST_INDEF_MAP1)
                        return fail(r, "malformed CBOR frame: key without value in a map at byte %zu", at);
                    r->stack_len--;
                    goto item_done;
                }
                return fail(r, "malformed CBOR frame: unsupported simple value %" PRIu64 " at byte %zu",
                            ai == 24 ? val : (uint64_t)ai, at);
            }
        }

    item_done:
        r->escape = 0;
        for (;;) {
            if (!r->stack_len) {
                r->scan = i;
                return 1;
            }
            uint64_t *top = &r->stack[r->stack_len - 1];
            if (*top == ST_INDEF_MAP0)
                *top = ST_INDEF_MAP1;
            else if (*top == ST_INDEF_MAP1)
                *top = ST_INDEF_MAP0;
            else if (*top >= ST_INDEF_TEXT)
                ; /* indefinite array, or a chunk of an indefinite string */
            else if (--*top == 0) {
                r->stack_len--;
                continue; /* the container is an item of its parent */
            }
            break;
        }
    }
}

/* ------------------------------------------------------------ CBOR decode */

/* Decoder over one complete frame that cbor_scan accepted (so heads,
 * lengths, chunks, breaks and the depth are known to be right; what is
 * checked again here costs nothing).  Values go to the builder b. */
typedef struct cdec {
    const uint8_t *base, *p, *end;
    aemp_frame_reader_t *r;
    aemp_build_t *b;
    int trial;                 /* a trial (see json's jdec_t): the decoder also
                                  checks what the scanner checks; failures are
                                  silent */
    int depth;                 /* open containers */
    int tagged;                /* a tag was read after the last complete item
                                  (cbor_scan's `escape`: it refuses a break
                                  then, even one closing a container opened
                                  after the tag) */
} cdec_t;

/* Report a decoding error at byte `at` of the frame.  Returns -1. */
static int cd_fail(cdec_t *d, const uint8_t *at, const char *what)
{
    if (d->trial)
        return -1;
    return fail(d->r, "malformed CBOR frame: %s at byte %zu", what, (size_t)(at - d->base));
}

/* Report the builder's error (a limit) for the item at `at`, if any:
 * -1 then, else 0. */
static int cd_check(cdec_t *d, const uint8_t *at)
{
    if (!d->b->err)
        return 0;
    return cd_fail(d, at, aemp__build_error(d->b));
}

/* The big-endian argument of k (1, 2, 4 or 8) bytes after the initial
 * byte of the head at q. */
static inline __attribute__((always_inline)) uint64_t cb_arg(const uint8_t *q, size_t k)
{
    switch (k) {
    case 1:
        return q[1];
    case 2:
        return (uint64_t)q[1] << 8 | q[2];
    case 4: {
        uint32_t w;
        memcpy(&w, q + 1, 4);
        return BE32(w);
    }
    default: {
        uint64_t v;
        memcpy(&v, q + 1, 8);
        return BE64(v);
    }
    }
}

/* Parse the head at q (before end): its length in bytes, or 0 if it is cut
 * by the end or uses reserved additional information 28..30. */
static inline __attribute__((always_inline)) size_t
cb_parse_head(const uint8_t *q, const uint8_t *end, unsigned *major, unsigned *ai, uint64_t *val)
{
    if (q >= end)
        return 0;
    *major = q[0] >> 5;
    *ai = q[0] & 31;
    *val = *ai;
    if (*ai < 24 || *ai == 31)
        return 1;
    if (*ai > 27)
        return 0;
    size_t k = (size_t)1 << (*ai - 24);
    if ((size_t)(end - q) <= k)
        return 0;
    *val = cb_arg(q, k);
    return 1 + k;
}

/* Read the head of the next item, skipping tags; *at gets the item's
 * first byte (after its tags).  -1 on error.  (Checks marked "scanner"
 * only fail on a trial: otherwise cbor_scan already refused such frames.) */
static int cd_head(cdec_t *d, unsigned *major, unsigned *ai, uint64_t *val, const uint8_t **at)
{
    for (;;) {
        size_t hl = cb_parse_head(d->p, d->end, major, ai, val);
        if (!hl)
            return cd_fail(d, d->p, "bad or truncated head");
        *at = d->p;
        d->p += hl;
        if (*ai == 31 && (*major <= 1 || *major == 6)) /* scanner */
            return cd_fail(d, *at, "indefinite-length integer or tag");
        if (*major != 6)
            return 0;
        d->tagged = 1;
    }
}

/* The string whose head (major 2 or 3, ai, val) was just read: *len gets
 * its length; a definite string's bytes are at *s (and consumed); an
 * indefinite one (whose chunks must be definite strings of the same major
 * type) gives *s = NULL and is left for cd_str_gather.  -1 on error. */
static int cd_str(cdec_t *d, unsigned major, unsigned ai, uint64_t val, const uint8_t **s,
                  size_t *len)
{
    if (ai != 31) {
        if (val > (uint64_t)(d->end - d->p))
            return cd_fail(d, d->p, "truncated string");
        *s = d->p;
        *len = (size_t)val;
        d->p += val;
        return 0;
    }
    size_t total = 0;
    for (const uint8_t *q = d->p;;) {
        unsigned cm, ca;
        uint64_t cv;
        if (q < d->end && *q == 0xff) {
            if (d->tagged) /* scanner */
                return cd_fail(d, q, "tag without content");
            break;
        }
        size_t hl = cb_parse_head(q, d->end, &cm, &ca, &cv);
        if (!hl || ca == 31 || cm != major || cv > (uint64_t)(d->end - q - hl))
            return cd_fail(d, q, "bad chunk in an indefinite-length string");
        total += (size_t)cv;
        d->tagged = 0;
        q += hl + cv;
    }
    *s = NULL;
    *len = total;
    return 0;
}

/* Copy the chunks of the indefinite string at d->p (measured by cd_str)
 * to out and consume them and the break. */
static void cd_str_gather(cdec_t *d, char *out)
{
    while (*d->p != 0xff) {
        unsigned cm, ca;
        uint64_t cv = 0;
        size_t hl = cb_parse_head(d->p, d->end, &cm, &ca, &cv);
        memcpy(out, d->p + hl, (size_t)cv);
        out += cv;
        d->p += hl + cv;
    }
    d->p++;
}

/* Add the string whose head (major 2 or 3, ai, val) was just read to the
 * builder, keeping its kind.  -1 on error. */
static int cd_build_str(cdec_t *d, unsigned major, unsigned ai, uint64_t val, const uint8_t *at)
{
    const uint8_t *s;
    size_t len;
    if (cd_str(d, major, ai, val, &s, &len) < 0)
        return -1;
    char *o = aemp__build_str_space(d->b, major == 2 ? AEMP_T_BYTES : AEMP_T_STR, len);
    if (!o)
        return cd_check(d, at);
    if (s)
        memcpy(o, s, len);
    else
        cd_str_gather(d, o);
    return 0;
}

/* Decode an IEEE 754 half-precision value. */
static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    int m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e != 31)
        v = ldexp(m + 1024, e - 25);
    else
        v = m == 0 ? INFINITY : NAN;
    return (h & 0x8000) ? -v : v;
}

/* The scalar of a CBOR head (major 0, 1 or 7; ai and val as cb_parse_head
 * gives them) as the cell c: unsigned integers INT or, above INT64_MAX,
 * UINT; negative ones INT or, below INT64_MIN, doubles; false, true, null,
 * undefined (null) and half, single and double floats.  -1 for anything
 * else: other major types, indefinite lengths, breaks, other simple
 * values. */
static inline int cb_scalar(unsigned major, unsigned ai, uint64_t val, val_t *c)
{
    if (ai == 31)
        return -1;
    switch (major) {
    case 0:
        cell_uint(c, val);
        return 0;
    case 1:
        if (val <= INT64_MAX) {
            cell_init(c, AEMP_T_INT);
            c->v.i = -1 - (int64_t)val;
        } else {
            cell_init(c, AEMP_T_DOUBLE);
            c->v.d = -1.0 - (double)val;
        }
        return 0;
    case 7:
        break;
    default:
        return -1;
    }
    switch (ai) {
    case 20:
    case 21:
        cell_init(c, AEMP_T_BOOL);
        c->v.i = ai == 21;
        return 0;
    case 22:
    case 23: /* null, undefined */
        cell_init(c, AEMP_T_NULL);
        return 0;
    case 25:
        cell_init(c, AEMP_T_DOUBLE);
        c->v.d = half_to_double((uint16_t)val);
        return 0;
    case 26: {
        uint32_t u = (uint32_t)val;
        float f;
        memcpy(&f, &u, sizeof f);
        cell_init(c, AEMP_T_DOUBLE);
        c->v.d = f;
        return 0;
    }
    case 27:
        cell_init(c, AEMP_T_DOUBLE);
        memcpy(&c->v.d, &val, sizeof c->v.d);
        return 0;
    }
    return -1;
}

static int cd_item(cdec_t *d);

/* The end of a break or an item that cbor_scan counts as complete (clears
 * the tag flag); -1 if the decoder failed.  */
static inline int cd_done(cdec_t *d, int rc)
{
    if (rc == 0)
        d->tagged = 0;
    return rc;
}

/* Decode a map key: a string (kept with its kind) or an integer (its
 * decimal text).  -1 on error. */
static int cd_key_body(cdec_t *d)
{
    unsigned major, ai;
    uint64_t val;
    const uint8_t *at;
    if (cd_head(d, &major, &ai, &val, &at) < 0)
        return -1;
    if (major == 2 || major == 3)
        return cd_build_str(d, major, ai, val, at);
    if (major > 1)
        return cd_fail(d, at, "map key is not a string or an integer");
    char num[24], *e = num + sizeof num, *p;
    if (major == 0)
        p = fmt_dec(e, val, 0);
    else if (val < UINT64_MAX)
        p = fmt_dec(e, val + 1, 1);
    else
        p = memcpy(e - 21, "-18446744073709551616", 21);
    aemp_build_strn(d->b, p, (size_t)(e - p));
    return cd_check(d, at);
}

/* A map key; clears the tag flag when done. */
static int cd_key(cdec_t *d)
{
    return cd_done(d, cd_key_body(d));
}

/* A container of at least this many elements makes room for them in the
 * builder at once (one of thousands of elements that the levels leave to
 * the builder -- in a tagged frame, say -- grows it once). */
#define CD_RESERVE_FROM 32

/* Make room for a container of count elements (pairs if map), bounded by
 * the bytes left -- every value takes one at least, and so does every
 * string byte -- so that a count that lies reserves no more than the
 * frame could fill. */
static void cd_reserve(cdec_t *d, int map, uint64_t count)
{
    size_t left = (size_t)(d->end - d->p);
    size_t cells = count > left ? left : map && 2 * count > left ? left : (size_t)(map ? 2 * count : count);
    aemp__build_reserve(d->b, cells, left / 16 < cells ? left : cells * 16);
}

/* Decode one item into the builder.  Recursion is bounded by the depth
 * limit (AEMP_MSG_MAX_DEPTH).  -1 on error.  The checks marked "scanner"
 * only fail on a trial: otherwise cbor_scan already refused such frames. */
static int cd_item_body(cdec_t *d)
{
    unsigned major, ai;
    uint64_t val;
    const uint8_t *at;
    aemp_build_t *b = d->b;
    if (cd_head(d, &major, &ai, &val, &at) < 0)
        return -1;

    switch (major) {
    case 2:
    case 3:
        return cd_build_str(d, major, ai, val, at);
    case 4:
    case 5:
        if (d->depth >= AEMP_MSG_MAX_DEPTH) /* scanner */
            return cd_fail(d, at, "nesting too deep");
        if (major == 4 ? aemp_build_array(b) : aemp_build_map(b))
            return cd_check(d, at);
        if (ai != 31 && val >= CD_RESERVE_FROM)
            cd_reserve(d, major == 5, val);
        d->depth++;
        for (uint64_t k = 0; ai == 31 || k < val; k++) {
            if (ai == 31) {
                if (d->p >= d->end)
                    return cd_fail(d, d->p, "truncated container");
                if (*d->p == 0xff) {
                    if (d->tagged) /* scanner */
                        return cd_fail(d, d->p, "tag without content");
                    d->p++;
                    break;
                }
            }
            if ((major == 5 && cd_key(d) < 0) || cd_item(d) < 0)
                return -1;
        }
        d->depth--;
        aemp_build_close(b);
        break;
    default: { /* 0, 1, 7 (cd_head refused indefinite integers); 6 (tags) was skipped */
        val_t c;
        if (cb_scalar(major, ai, val, &c) < 0)
            return cd_fail(d, at, ai == 31 ? "unexpected break" : "unsupported simple value");
        aemp__build_scalar(b, &c);
    }
    }
    return cd_check(d, at);
}

/* One item; clears the tag flag when done. */
static int cd_item(cdec_t *d)
{
    return cd_done(d, cd_item_body(d));
}

/* Decode the CBOR frame p[0..*n) that cbor_scan accepted: element 0 into
 * r->dest (its length in *destlen) if it is a string, everything else into
 * the builder.  On a trial p[0..*n) are the bytes at hand and *n gets the
 * frame's length.  Returns FRAME_EMPTY, FRAME_DEST, FRAME_NODEST or -1 (on
 * a trial: no frame decoded, no error set). */
static int cbor_decode(aemp_frame_reader_t *r, const uint8_t *p, size_t *n, size_t *destlen,
                       int trial)
{
    cdec_t d = { p, p, p + *n, r, r->build, trial, 1, 0 };
    unsigned major, ai;
    uint64_t count;
    const uint8_t *at;
    if (cd_head(&d, &major, &ai, &count, &at) < 0)
        return -1;
    if (major != 4) /* scanner */
        return trial ? -1 : fail(r, "frame is not an array");
    d.tagged = 0; /* tags on the whole frame are no tags of an item */
    int indef = ai == 31, kind = FRAME_EMPTY;
    for (uint64_t k = 0; indef || k < count; k++) {
        if (indef) {
            if (d.p >= d.end)
                return cd_fail(&d, d.p, "truncated frame");
            if (*d.p == 0xff) {
                if (d.tagged) /* scanner */
                    return cd_fail(&d, d.p, "tag without content");
                d.p++;
                break;
            }
        }
        if (k > 0) {
            if (cd_item(&d) < 0)
                return -1;
            continue;
        }
        /* element 0: the destination, if it is a string */
        const uint8_t *el0 = d.p, *s;
        size_t len;
        unsigned ai0;
        uint64_t val;
        if (cd_head(&d, &major, &ai0, &val, &at) < 0)
            return -1;
        if (major != 2 && major != 3) {
            d.p = el0;
            if (cd_item(&d) < 0)
                return -1;
            kind = FRAME_NODEST;
            continue;
        }
        if (cd_str(&d, major, ai0, val, &s, &len) < 0)
            return -1;
        char *o = dest_room(r, len);
        if (!o)
            return trial ? -1 : fail(r, "out of memory");
        if (s)
            memcpy(o, s, len);
        else
            cd_str_gather(&d, o);
        o[len] = 0;
        *destlen = len;
        kind = FRAME_DEST;
        d.tagged = 0;
    }
    if (trial)
        *n = (size_t)(d.p - p);
    else if (d.p != d.end) /* cannot happen: the scanner ended the frame here */
        return cd_fail(&d, d.p, "data after the end of the frame");
    return kind;
}

/* ------------------------------------------------------------ JSON decode */

/* Decoder over one complete frame that json_scan delimited (brackets
 * outside strings balance and nest at most AEMP_MSG_MAX_DEPTH deep; all
 * else is checked here), or, on a trial (see aemp__frame_next), over the
 * bytes at hand, which may or may not hold a whole frame: then the decoder
 * checks the nesting itself, and any failure (an error, or the end of the
 * bytes) only means "ask the scanner" and formats no text.  Values go to
 * the builder b. */
typedef struct jdec {
    const uint8_t *base, *p, *end;
    aemp_frame_reader_t *r;
    aemp_build_t *b;
    int trial;                 /* a trial: failures are silent */
    int depth;                 /* open brackets/braces, the frame's counted */
} jdec_t;

/* Report a decoding error at byte `at` of the frame.  Returns -1. */
static int jd_fail(jdec_t *d, const uint8_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int jd_fail(jdec_t *d, const uint8_t *at, const char *fmt, ...)
{
    if (d->trial)
        return -1;
    char what[120];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return fail(d->r, "malformed JSON frame at byte %zu: %s", (size_t)(at - d->base), what);
}

/* Report the builder's error (a limit) for the value at `at`, if any:
 * -1 then, else 0. */
static int jd_check(jdec_t *d, const uint8_t *at)
{
    if (!d->b->err)
        return 0;
    return jd_fail(d, at, "%s", aemp__build_error(d->b));
}

/* Report an unexpected byte (or the end of the frame) at d->p. */
static int jd_unexpected(jdec_t *d, const char *wanted)
{
    if (d->p >= d->end)
        return jd_fail(d, d->p, "%s expected, found the end of the frame", wanted);
    uint8_t c = *d->p;
    if (c > 0x20 && c < 0x7f)
        return jd_fail(d, d->p, "%s expected, found '%c'", wanted, c);
    return jd_fail(d, d->p, "%s expected, found byte 0x%02x", wanted, c);
}

/* Skip JSON whitespace at d->p. */
static inline void jd_ws(jdec_t *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

/* The closing quote of the string literal whose opening quote is at d->p,
 * or NULL if there is none in the frame; *plain says whether the content
 * is plain ASCII without escapes (so it needs only copying). */
static const uint8_t *jd_str_end(jdec_t *d, int *plain)
{
    const uint8_t *q = d->p + 1, *end = d->end;
    for (;;) { /* the plain prefix */
        if (end - q >= 8) {
            uint64_t m = json_special8(load8(q));
            if (!m) {
                q += 8;
                continue;
            }
            q += lead8(q, m, 1);
            break;
        }
        while (q < end && json_plain(*q))
            q++;
        break;
    }
    *plain = q < end && *q == '"';
    if (*plain)
        return q;
    const uint8_t *base = d->p;
    size_t i = (size_t)(q - base), n = (size_t)(end - base);
    for (;;) {
        i = find_quote_bslash(base, i, n);
        if (i == n || base[i] == '"')
            break;
        if (++i == n) /* a backslash: skip the byte after it */
            break;
        i++;
    }
    return i < n ? base + i : NULL;
}

/* Four hex digits at q as a number, or -1. */
static long hex4(const uint8_t *q)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = q[i];
        int x = c >= '0' && c <= '9' ? c - '0'
              : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (x < 0)
            return -1;
        v = v * 16 + x;
    }
    return v;
}

/* Decode the content of the string literal at d->p (up to its closing
 * quote at `close`, see jd_str_end) into out, which has room for as many
 * bytes as the literal's content (decoding never lengthens it); *len gets
 * the decoded length and d->p moves past the literal.  Escapes are decoded
 * (\u0000 gives a NUL byte, surrogate pairs one code point), UTF-8 is
 * checked.  -1 on error. */
static int jd_unescape(jdec_t *d, const uint8_t *close, char *out, size_t *len)
{
    const uint8_t *q = d->p + 1;
    uint8_t *o = (uint8_t *)out;
    while (q < close) {
        if (close - q >= 8) {
            uint64_t m = json_special8(load8(q));
            size_t k = m ? lead8(q, m, 1) : 8;
            if (k) {
                memcpy(o, q, 8); /* room: the literal's content is >= 8 bytes from q */
                o += k;
                q += k;
                continue;
            }
        }
        uint8_t c = *q;
        if (json_plain(c)) {
            *o++ = c;
            q++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = aemp__utf8_seq(q, (size_t)(close - q));
            if (!l)
                return jd_fail(d, q, "invalid UTF-8 sequence starting with byte 0x%02x in a string",
                               c);
            memcpy(o, q, l);
            o += l;
            q += l;
            continue;
        }
        if (c != '\\')
            return jd_fail(d, q, "unescaped control character 0x%02x in a string", c);
        const uint8_t *esc = q;
        q += 2;
        switch (esc[1]) {
        case '"': case '\\': case '/': *o++ = esc[1]; continue;
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'n': *o++ = '\n'; continue;
        case 'r': *o++ = '\r'; continue;
        case 't': *o++ = '\t'; continue;
        case 'u': break;
        default:
            if (esc[1] > 0x20 && esc[1] < 0x7f)
                return jd_fail(d, esc, "invalid escape '\\%c' in a string", esc[1]);
            return jd_fail(d, esc, "invalid escape in a string");
        }
        long cp = close - q >= 4 ? hex4(q) : -1;
        if (cp < 0)
            return jd_fail(d, esc, "\\u must be followed by four hex digits");
        q += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return jd_fail(d, esc, "lone low surrogate \\u%04lX in a string", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            long lo = close - q >= 6 && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return jd_fail(d, esc,
                               "high surrogate \\u%04lX not followed by a low one in a string", cp);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            q += 6;
        }
        if (cp < 0x80) {
            *o++ = (uint8_t)cp;
        } else if (cp < 0x800) {
            *o++ = (uint8_t)(0xc0 | (cp >> 6));
            *o++ = (uint8_t)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *o++ = (uint8_t)(0xe0 | (cp >> 12));
            *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (uint8_t)(0x80 | (cp & 0x3f));
        } else {
            *o++ = (uint8_t)(0xf0 | (cp >> 18));
            *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (uint8_t)(0x80 | (cp & 0x3f));
        }
    }
    *len = (size_t)(o - (uint8_t *)out);
    d->p = close + 1;
    return 0;
}

/* Decode the string literal at d->p, whose closing quote is `close` and
 * whose content is plain or not (see jd_str_end), into out (room for the
 * content's length): the common part of the two string sinks (the builder,
 * the destination).  *outlen gets the decoded length; -1 on error. */
static int jd_str_into(jdec_t *d, const uint8_t *close, int plain, char *out, size_t *outlen)
{
    size_t raw = (size_t)(close - d->p - 1);
    if (!plain)
        return jd_unescape(d, close, out, outlen);
    memcpy(out, d->p + 1, raw);
    *outlen = raw;
    d->p = close + 1;
    return 0;
}

/* Decode the string literal at d->p into the builder as a text string (a
 * value or a map key).  -1 on error. */
static int jd_build_str(jdec_t *d)
{
    const uint8_t *at = d->p;
    int plain;
    const uint8_t *close = jd_str_end(d, &plain);
    if (!close)
        return jd_fail(d, at, "unterminated string");
    size_t raw = (size_t)(close - at - 1), len;
    char *o = aemp__build_str_space(d->b, AEMP_T_STR, raw);
    if (!o)
        return jd_check(d, at);
    if (jd_str_into(d, close, plain, o, &len) < 0)
        return -1;
    if (len < raw)
        aemp__build_str_shrink(d->b, len);
    return 0;
}

/* Powers of ten that doubles hold exactly. */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The "C" locale for strtod_l (created once; 0 if that failed). */
static locale_t c_locale(void)
{
    static locale_t loc;
    if (!loc)
        loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    return loc;
}

/* The double nearest to the JSON number s[0..e) (grammar already checked),
 * as strtod gives it: exactly computed when the digits fit 2^53 and the
 * power of ten is at most 22 (one correctly rounded operation), else by
 * strtod in the C locale.  Overflow gives an infinity, as in Perl. */
static int jd_real(jdec_t *d, const uint8_t *s, const uint8_t *e, double *out)
{
    const uint8_t *q = s;
    int neg = *q == '-', exact = 1;
    uint64_t m = 0;
    long exp10 = 0, ex = 0;
    q += neg;
    for (int frac = 0; q < e && ((*q >= '0' && *q <= '9') || (*q == '.' && !frac)); q++) {
        if (*q == '.') {
            frac = 1;
            continue;
        }
        unsigned dg = *q - '0';
        if (m > ((UINT64_C(1) << 53) - dg) / 10)
            exact = 0;
        else
            m = m * 10 + dg;
        exp10 -= frac;
    }
    if (q < e) { /* exponent */
        int eneg = 0;
        q++;
        if (*q == '+' || *q == '-')
            eneg = *q++ == '-';
        for (; q < e; q++)
            if (ex < 100000)
                ex = ex * 10 + (*q - '0');
        exp10 += eneg ? -ex : ex;
    }
    if (exact && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
        *out = neg ? -v : v;
        return 0;
    }
    char *endp;
    locale_t loc = c_locale();
    *out = loc ? strtod_l((const char *)s, &endp, loc) : strtod((const char *)s, &endp);
    if ((const uint8_t *)endp != e)
        return jd_fail(d, s, "unreadable number");
    return 0;
}

/* 1 if q (before end) is at a decimal digit. */
static inline int is_digit(const uint8_t *q, const uint8_t *end)
{
    return q < end && *q >= '0' && *q <= '9';
}

/* Decode the number at d->p into the cell c: integers that fit int64 or
 * uint64 as INT or UINT, everything else (fractions, exponents, bigger
 * integers) as a double.  -1 on error. */
static int jd_number(jdec_t *d, val_t *c)
{
    const uint8_t *s = d->p, *q = s, *end = d->end;
    int neg = *q == '-', real = 0;
    q += neg;
    const uint8_t *digits = q;
    if (!is_digit(q, end))
        return jd_fail(d, q, "a digit must follow '-'");
    uint64_t u = (uint64_t)(*q - '0');   /* the first 19 digits (no overflow) */
    if (*q++ != '0')
        for (; is_digit(q, end); q++)
            if (q - digits < 19)
                u = u * 10 + (unsigned)(*q - '0');
    size_t nd = (size_t)(q - digits);
    if (q < end && *q == '.') {
        real = 1;
        q++;
        if (!is_digit(q, end))
            return jd_fail(d, q, "a digit must follow the '.' of a number");
        while (is_digit(q, end))
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        real = 1;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(q, end))
            return jd_fail(d, q, "a digit must follow the exponent mark of a number");
        while (is_digit(q, end))
            q++;
    }
    if (q == end) /* on a trial only: a frame ends with ']', so more bytes follow */
        return jd_fail(d, q, "a number at the end of the frame");
    d->p = q;
    if (!real && nd <= 20) {
        size_t i = nd < 20 ? nd : 19;
        for (; i < nd; i++) { /* the 20th digit, if it fits */
            unsigned dg = digits[i] - '0';
            if (u > (UINT64_MAX - dg) / 10)
                break;
            u = u * 10 + dg;
        }
        if (i == nd && !neg) {
            cell_uint(c, u);
            return 0;
        }
        if (i == nd && u <= (uint64_t)INT64_MAX + 1) {
            cell_init(c, AEMP_T_INT);
            c->v.i = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
            return 0;
        }
    }
    cell_init(c, AEMP_T_DOUBLE);
    return jd_real(d, s, q, &c->v.d);
}

/* 1 if the literal word w (of n bytes) is at d->p (and consume it). */
static int jd_word(jdec_t *d, const char *w, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n))
        return 0;
    d->p += n;
    return 1;
}

static int jd_value(jdec_t *d);

/* Decode the array or object whose opening bracket is at d->p.  -1 on
 * error. */
static int jd_container(jdec_t *d)
{
    const uint8_t *at = d->p;
    int map = *d->p++ == '{';
    uint8_t close = map ? '}' : ']';
    if (map ? aemp_build_map(d->b) : aemp_build_array(d->b))
        return jd_check(d, at);
    jd_ws(d);
    if (d->p < d->end && *d->p == close) {
        d->p++;
        aemp_build_close(d->b);
        return 0;
    }
    for (;;) {
        if (map) {
            if (d->p >= d->end || *d->p != '"')
                return jd_unexpected(d, "a string key");
            if (jd_build_str(d) < 0)
                return -1;
            jd_ws(d);
            if (d->p >= d->end || *d->p != ':')
                return jd_unexpected(d, "':'");
            d->p++;
            jd_ws(d);
        }
        if (jd_value(d) < 0)
            return -1;
        jd_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            jd_ws(d);
            continue;
        }
        if (d->p < d->end && *d->p == close) {
            d->p++;
            aemp_build_close(d->b);
            return 0;
        }
        return jd_unexpected(d, map ? "',' or '}'" : "',' or ']'");
    }
}

/* Decode the scalar (number, true, false or null) at d->p (no leading
 * whitespace) into the cell c.  -1 on error, or if there is none there. */
static int jd_scalar(jdec_t *d, val_t *c)
{
    if (d->p < d->end) {
        switch (*d->p) {
        case '-':
        case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
            return jd_number(d, c);
        case 't':
        case 'f': {
            int t = *d->p == 't';
            if (t ? jd_word(d, "true", 4) : jd_word(d, "false", 5)) {
                cell_init(c, AEMP_T_BOOL);
                c->v.i = t;
                return 0;
            }
            break;
        }
        case 'n':
            if (jd_word(d, "null", 4)) {
                cell_init(c, AEMP_T_NULL);
                return 0;
            }
            break;
        }
    }
    return jd_unexpected(d, "a value");
}

/* Decode one value at d->p (no leading whitespace).  Recursion is bounded
 * by the depth limit (AEMP_MSG_MAX_DEPTH).  -1 on error. */
static int jd_value(jdec_t *d)
{
    const uint8_t *at = d->p;
    if (d->p < d->end && *d->p == '"')
        return jd_build_str(d);
    if (d->p < d->end && (*d->p == '[' || *d->p == '{')) {
        /* the scanner's limit (it already held unless on a trial) */
        if (d->depth >= AEMP_MSG_MAX_DEPTH)
            return jd_fail(d, d->p, "nesting deeper than %d levels", AEMP_MSG_MAX_DEPTH);
        d->depth++;
        int rc = jd_container(d);
        d->depth--;
        return rc;
    }
    val_t c;
    if (jd_scalar(d, &c) < 0)
        return -1;
    aemp__build_scalar(d->b, &c);
    return jd_check(d, at);
}

/* Decode the JSON frame p[0..*n) that json_scan delimited (it starts with
 * '['): element 0 into r->dest (its length in *destlen) if it is a string,
 * everything else into the builder.  On a trial p[0..*n) are the bytes at
 * hand (from a '[' on) and *n gets the frame's length.  Returns FRAME_EMPTY,
 * FRAME_DEST, FRAME_NODEST or -1 (on a trial: no frame decoded, maybe no
 * error set). */
static int json_decode(aemp_frame_reader_t *r, const uint8_t *p, size_t *n, size_t *destlen,
                       int trial)
{
    jdec_t d = { p, p + 1, p + *n, r, r->build, trial, 1 };
    int kind = FRAME_EMPTY;
    jd_ws(&d);
    if (d.p < d.end && *d.p == ']') {
        d.p++;
    } else {
        if (d.p < d.end && *d.p == '"') { /* the destination */
            int plain;
            const uint8_t *close = jd_str_end(&d, &plain);
            if (!close)
                return jd_fail(&d, d.p, "unterminated string");
            char *o = dest_room(r, (size_t)(close - d.p - 1));
            if (!o)
                return trial ? -1 : fail(r, "out of memory");
            if (jd_str_into(&d, close, plain, o, destlen) < 0)
                return -1;
            o[*destlen] = 0;
            kind = FRAME_DEST;
        } else {
            if (jd_value(&d) < 0)
                return -1;
            kind = FRAME_NODEST;
        }
        for (;;) {
            jd_ws(&d);
            if (d.p < d.end && *d.p == ']') {
                d.p++;
                break;
            }
            if (d.p >= d.end || *d.p != ',')
                return jd_unexpected(&d, "',' or ']'");
            d.p++;
            jd_ws(&d);
            if (jd_value(&d) < 0)
                return -1;
        }
    }
    if (trial)
        *n = (size_t)(d.p - p);
    else if (d.p != d.end) /* cannot happen: the scanner ended the frame here */
        return jd_fail(&d, d.p, "data after the end of the frame");
    return kind;
}

/* ------------------------------------------------------------ flat frames */

/* Most frames are flat: a destination string and then only scalars and
 * strings.  Such a frame is decoded straight into its final message (see
 * msg.h: root array, the elements in order, the heap after them) with no
 * builder: the elements go to a scratch array of cells first, whose
 * strings still point into the frame, then the message is allocated at
 * its exact size (JSON strings with escapes: at most their raw length)
 * and the cells and string bytes are copied into it once.  Anything else
 * -- a nested array or map, a tag, an indefinite length, more than
 * FLAT_MAX elements, an error, bytes that end before the frame does -- is
 * "not flat", and the frame goes the general way (the builder), which
 * decides and reports exactly as it always did, so the flat path sets no
 * error and changes no limit. */
#define FLAT_MAX 64
#define NOT_FLAT (-2)
/* A CBOR flat message is allocated with room for the heap of the last
 * one (see cbor_flat) if that was at most this big. */
#define FLAT_GUESS_MAX 192u

/* The elements after the destination, as cells of the final message
 * except that a string's v.off is the offset of its content in the frame
 * and pad[0] is 1 for a JSON string with escapes (decoded at the copy). */
typedef struct flat {
    val_t cells[FLAT_MAX];
    uint32_t n;
    size_t heap;               /* heap bytes the strings need (NULs counted);
                                  JSON strings with escapes at most */
} flat_t;

/* Make c the scratch cell of the string of len bytes whose content is at
 * offset `at` of the frame.  Returns the heap bytes it needs. */
static inline size_t flat_str(val_t *c, aemp_type_t type, size_t at, size_t len, int escaped)
{
    cell_init(c, type);
    c->pad[0] = (uint8_t)escaped;
    c->n = (uint32_t)len;
    c->v.off = at;
    return len + 1;
}

/* The message of the elements in f, whose strings are in the frame at
 * base (for the empty one the shared empty message); NULL if a JSON
 * string with escapes does not decode. */
static aemp_msg_t *flat_msg(const flat_t *f, const uint8_t *base)
{
    if (!f->n)
        return aemp_msg_empty();
    aemp_msg_t *m = aemp__msg_new_flat(f->n, f->heap);
    if (!m)
        return NULL;
    val_t *F = m->cells + 1;
    char *heap = (char *)(F + f->n), *h = heap;
    for (uint32_t i = 0; i < f->n; i++) {
        /* field by field: the scratch cells were written that way, and a
         * whole-cell load of them would stall on store forwarding */
        const val_t *s = &f->cells[i];
        val_t *c = &F[i];
        uint8_t type = s->type, escaped = s->pad[0];
        uint32_t len = s->n;
        uint64_t v = s->v.u;
        c->type = type;
        memset(c->pad, 0, sizeof c->pad);
        c->n = len;
        c->v.u = v;
        if (type != AEMP_T_STR && type != AEMP_T_BYTES)
            continue;
        const uint8_t *src = base + v;
        if (escaped) {
            jdec_t d = { base, src - 1, src + len, NULL, NULL, 1, 1 };
            size_t dlen;
            if (jd_unescape(&d, src + len, h, &dlen) < 0) {
                aemp_msg_unref(m);
                return NULL;
            }
            len = (uint32_t)dlen;
            c->n = len;
        } else {
            aemp__copy_small(h, src, len);
        }
        h[len] = 0;
        c->v.off = (uint64_t)(h - (char *)c);
        h += len + 1;
    }
    m->heaplen = (uint32_t)(h - heap);
    return m;
}

/* The next element of a flat CBOR frame, at *q (the frame's bytes end at
 * end), into c: a scalar as its cell (returns 0), a string as its type
 * and length c->n, its bytes at *str (returns 1); *q moves past it.
 * NOT_FLAT for anything else (a container, a tag, an indefinite length,
 * a string too long or cut short, bytes that end). */
static inline __attribute__((always_inline)) int cbor_flat_elem(const uint8_t **q, const uint8_t *end, val_t *c, const uint8_t **str)
{
    const uint8_t *p = *q;
    if (p < end) {   /* one-byte heads first: most elements have them */
        uint8_t b = p[0];
        if (b < 24) {   /* unsigned 0..23 */
            aemp__cell_set(c, AEMP_T_INT, 0, b);
            *q = p + 1;
            return 0;
        }
        if ((uint8_t)(b - 0x40) < 24 || (uint8_t)(b - 0x60) < 24) {   /* short bytes / text */
            size_t len = b & 31;
            if (len > (size_t)(end - p - 1))
                return NOT_FLAT;
            aemp__cell_set(c, b < 0x60 ? AEMP_T_BYTES : AEMP_T_STR, (uint32_t)len, 0);
            *str = p + 1;
            *q = p + 1 + len;
            return 1;
        }
        if ((uint8_t)(b - 0x18) < 4) {   /* unsigned with a 1, 2, 4 or 8 byte argument */
            size_t k = (size_t)1 << (b - 0x18);
            if ((size_t)(end - p) <= k)
                return NOT_FLAT;
            cell_uint(c, cb_arg(p, k));
            *q = p + 1 + k;
            return 0;
        }
    }
    unsigned major, ai;
    uint64_t val;
    size_t hl = cb_parse_head(*q, end, &major, &ai, &val);
    if (!hl || ai == 31)
        return NOT_FLAT;
    *q += hl;
    if (major == 0) {
        cell_uint(c, val);
        return 0;
    }
    if (major == 2 || major == 3) {
        if (val > (uint64_t)(end - *q) || val >= AEMP_MSG_MAX_STR)
            return NOT_FLAT;
        aemp__cell_set(c, major == 2 ? AEMP_T_BYTES : AEMP_T_STR, (uint32_t)val, 0);
        *str = *q;
        *q += val;
        return 1;
    }
    return cb_scalar(major, ai, val, c) < 0 ? NOT_FLAT : 0;
}

/* cbor_flat for a message whose strings do not fit the heap cbor_flat
 * guessed: one pass over the heads into scratch cells, as json_flat does
 * (each head is parsed once, integers without a call), then flat_msg lays
 * the message out at its exact size.  Arguments and result as for
 * cbor_flat, except that the elements start at `first` and there are
 * `nel` of them. */
static int cbor_flat_exact(aemp_frame_reader_t *r, const uint8_t *p, size_t *n, const uint8_t *first,
                           uint32_t nel, aemp_msg_t **out)
{
    const uint8_t *q = first, *end = p + *n, *str;
    size_t heap = 0;
    flat_t f;   /* (not zeroed: 1 KiB) */
    for (uint32_t k = 0; k < nel; k++) {
        val_t *c = &f.cells[k];
        int kind = cbor_flat_elem(&q, end, c, &str);
        if (kind == NOT_FLAT)
            return NOT_FLAT;
        if (kind)
            heap += flat_str(c, c->type, (size_t)(str - p), c->n, 0);
    }
    f.n = nel;
    f.heap = heap;
    aemp_msg_t *m = flat_msg(&f, p);
    if (!m)
        return NOT_FLAT;
    r->flat_heap = heap <= FLAT_GUESS_MAX ? heap : 0;
    *out = m;
    *n = (size_t)(q - p);
    return FRAME_DEST;
}

/* Decode the CBOR frame at p[0..*n) if it is flat: *n gets its length,
 * element 0 goes to r->dest (its length in *destlen), the message to *out.
 * One pass straight into the message: it is allocated when the element
 * count is known, with room for as many heap bytes as the reader's last
 * flat message had (rounded up to the block's size); only if the strings
 * need more is the frame decoded again by cbor_flat_exact.  FRAME_DEST,
 * or NOT_FLAT. */
static int cbor_flat(aemp_frame_reader_t *r, const uint8_t *p, size_t *n, size_t *destlen,
                     aemp_msg_t **out)
{
    const uint8_t *q = p, *end = p + *n, *dest;
    unsigned major, ai;
    uint64_t count, val;
    size_t hl;
    _Static_assert(FLAT_MAX + 1 >= 23, "one-byte array heads are flat counts");
    if (q < end && (uint8_t)(q[0] - 0x81) < 23) {   /* one-byte heads first */
        count = q[0] & 31;
        q++;
    } else {
        hl = cb_parse_head(q, end, &major, &ai, &count);
        if (!hl || major != 4 || ai == 31 || count == 0 || count - 1 > FLAT_MAX)
            return NOT_FLAT;
        q += hl;
    }
    if (q < end && ((uint8_t)(q[0] - 0x60) < 24 || (uint8_t)(q[0] - 0x40) < 24)) {
        val = q[0] & 31;
        hl = 1;
    } else {
        hl = cb_parse_head(q, end, &major, &ai, &val);
        if (!hl || (major != 2 && major != 3) || ai == 31)
            return NOT_FLAT;
    }
    if (val > (uint64_t)(end - q - hl))
        return NOT_FLAT;
    dest = q + hl;
    size_t dlen = (size_t)val;
    char *o = dest_room(r, dlen);
    if (!o)
        return NOT_FLAT;
    const uint8_t *first = dest + dlen;
    uint32_t nel = (uint32_t)(count - 1);
    aemp_msg_t *m;
    int kind = FRAME_DEST;
    if (!nel) {
        m = aemp_msg_empty();
        q = first;
    } else {
        size_t room;
        m = aemp__msg_new_flat_room(nel, r->flat_heap, &room);
        if (!m)
            return NOT_FLAT;
        val_t *c = m->cells + 1, *cend = c + nel;
        char *heap = (char *)cend, *h = heap, *hend = heap + room;
        const uint8_t *str;
        for (q = first; c < cend; c++) {
            int elem = cbor_flat_elem(&q, end, c, &str);
            if (elem == NOT_FLAT) {
                aemp_msg_unref(m);
                return NOT_FLAT;
            }
            if (!elem)
                continue;
            size_t len = c->n;
            if (len >= (size_t)(hend - h)) { /* more heap than guessed */
                aemp_msg_unref(m);
                m = NULL;
                kind = cbor_flat_exact(r, p, n, first, nel, &m);
                if (kind != FRAME_DEST)
                    return kind;
                q = p + *n;
                break;
            }
            aemp__copy_small(h, str, len);
            h[len] = 0;
            c->v.off = (uint64_t)(h - (char *)c);
            h += len + 1;
        }
        if (c == cend) {
            m->heaplen = (uint32_t)(h - heap);
            r->flat_heap = m->heaplen;
        }
    }
    aemp__copy_small(o, dest, dlen);
    o[dlen] = 0;
    *out = m;
    *destlen = dlen;
    *n = (size_t)(q - p);
    return kind;
}

/* ---------------------------------------------------- CBOR by levels
 *
 * A nested CBOR frame of definite lengths goes straight into its message
 * too, in two passes over its bytes and without the builder: a message's
 * cells are stored level by level (the root, then every element of the
 * root, then the children of those in order, ...; a container's children
 * are contiguous), and the cells of one level come in the order a walk of
 * the frame meets them.  So the first pass counts the cells of each level
 * and the heap bytes, the message is allocated at its exact size, and the
 * second pass writes each cell at the next free place of its level.  A
 * snapshot of thousands of keys then costs its message once, not a
 * builder and a copy of it.  Only what this handles simply: element 0 a
 * definite string (the destination), definite arrays and maps, map keys
 * that are strings, scalars, at most LEVELS_MAX levels below the root;
 * anything else (tags, indefinite lengths, integer keys, deeper nesting,
 * an error, bytes that end early) is NOT_FLAT and takes the builder's way,
 * which decides and reports as it always did. */
#define LEVELS_MAX 16

typedef struct levels {
    const uint8_t *end;
    uint32_t count[LEVELS_MAX + 1];   /* cells at each level (1: the root's elements) */
    uint32_t next[LEVELS_MAX + 2];    /* second pass: the next free cell of each level */
    size_t heap;                      /* string bytes with their NULs */
    int deepest;
    val_t *cells;                     /* second pass: the message's cells */
    char *h;                          /* second pass: the next free heap byte */
} levels_t;

/* First pass: count the item at *q (at `level`) and what it holds; *q
 * moves past it.  -1 for anything the levels do not handle.  key: the
 * item is a map key (a string only). */
static int lv_count(levels_t *L, const uint8_t **q, int level, int key)
{
    unsigned major = 0, ai = 0;
    uint64_t val = 0;
    size_t hl = cb_parse_head(*q, L->end, &major, &ai, &val);
    if (!hl || ai == 31 || level > LEVELS_MAX || L->count[level] == UINT32_MAX)
        return -1;
    if ((major == 2 || major == 3) && val >= AEMP_MSG_MAX_STR)
        return -1;   /* the builder refuses it */
    if ((major == 4 || major == 5) && val > UINT32_MAX)
        return -1;   /* a cell holds a count in 32 bits */
    *q += hl;
    L->count[level]++;
    if (level > L->deepest)
        L->deepest = level;
    if (major == 2 || major == 3) {
        if (val > (uint64_t)(L->end - *q))
            return -1;
        *q += val;
        L->heap += (size_t)val + 1;
        return 0;
    }
    if (key)
        return -1;
    if (major == 4 || major == 5) {
        uint64_t items = major == 5 ? 2 * val : val;
        if (val > (uint64_t)(L->end - *q) || items > (uint64_t)(L->end - *q))
            return -1;   /* every item takes a byte at least */
        for (uint64_t i = 0; i < items; i++)
            if (lv_count(L, q, level + 1, major == 5 && !(i & 1)) < 0)
                return -1;
        return 0;
    }
    val_t c;
    return cb_scalar(major, ai, val, &c);   /* a tag (6) or an odd simple value: -1 */
}

/* Second pass over what lv_count accepted: write the item at *q into the
 * next cell of its level. */
static void lv_place(levels_t *L, const uint8_t **q, int level)
{
    unsigned major = 0, ai = 0;
    uint64_t val = 0;
    size_t hl = cb_parse_head(*q, L->end, &major, &ai, &val);
    *q += hl;
    uint32_t at = L->next[level]++;
    val_t *c = &L->cells[at];
    switch (major) {
    case 2:
    case 3:
        L->h = aemp__cell_str_at(c, major == 2 ? AEMP_T_BYTES : AEMP_T_STR, *q, (size_t)val, L->h);
        *q += val;
        return;
    case 4:
    case 5: {
        aemp__cell_set(c, major == 4 ? AEMP_T_ARRAY : AEMP_T_MAP, (uint32_t)val, L->next[level + 1] - at);
        for (uint64_t i = 0, items = major == 5 ? 2 * val : val; i < items; i++)
            lv_place(L, q, level + 1);
        return;
    }
    default:
        cb_scalar(major, ai, val, c);
    }
}

/* Decode the CBOR frame at p[0..*n) by levels if it can be: *n gets its
 * length, element 0 goes to r->dest (its length in *destlen), the message
 * to *out.  FRAME_DEST, or NOT_FLAT. */
static int cbor_levels(aemp_frame_reader_t *r, const uint8_t *p, size_t *n, size_t *destlen,
                       aemp_msg_t **out)
{
    const uint8_t *q = p, *end = p + *n;
    unsigned major, ai;
    uint64_t count, dlen;
    size_t hl = cb_parse_head(q, end, &major, &ai, &count);
    if (!hl || major != 4 || ai == 31 || count < 2)
        return NOT_FLAT;
    q += hl;
    hl = cb_parse_head(q, end, &major, &ai, &dlen);
    if (!hl || (major != 2 && major != 3) || ai == 31 || dlen > (uint64_t)(end - q - hl))
        return NOT_FLAT;
    const uint8_t *dest = q + hl, *first = dest + dlen;
    levels_t L;
    memset(L.count, 0, sizeof L.count);
    L.end = end;
    L.heap = 0;
    L.deepest = 0;
    q = first;
    for (uint64_t k = 1; k < count; k++)
        if (lv_count(&L, &q, 1, 0) < 0)
            return NOT_FLAT;
    size_t cells = 0;
    for (int l = 1; l <= L.deepest; l++)
        cells += L.count[l];
    if (L.heap > UINT32_MAX)
        return NOT_FLAT;
    aemp_msg_t *m = aemp__msg_new_flat(cells, L.heap);
    char *o = m ? dest_room(r, (size_t)dlen) : NULL;
    if (!o) {
        aemp_msg_unref(m);
        return NOT_FLAT;
    }
    m->cells[0].n = L.count[1];   /* the root's elements; their children follow */
    L.next[1] = 1;
    for (int l = 1; l <= L.deepest; l++)
        L.next[l + 1] = L.next[l] + L.count[l];
    L.cells = m->cells;
    L.h = (char *)(m->cells + 1 + cells);
    for (const uint8_t *w = first; w < q;)
        lv_place(&L, &w, 1);
    memcpy(o, dest, (size_t)dlen);
    o[dlen] = 0;
    *out = m;
    *destlen = (size_t)dlen;
    *n = (size_t)(q - p);
    return FRAME_DEST;
}

/* Decode the JSON frame at p[0..*n) (from its '[' on) if it is flat, as
 * cbor_flat does.  FRAME_DEST, or NOT_FLAT. */
static int json_flat(aemp_frame_reader_t *r, const uint8_t *p, size_t *n, size_t *destlen,
                     aemp_msg_t **out)
{
    jdec_t d = { p, p + 1, p + *n, r, NULL, 1, 1 }; /* a trial: silent */
    int plain;
    jd_ws(&d);
    if (d.p >= d.end || *d.p != '"')
        return NOT_FLAT;
    const uint8_t *close = jd_str_end(&d, &plain);
    char *o = close ? dest_room(r, (size_t)(close - d.p - 1)) : NULL;
    size_t dlen;
    if (!o || jd_str_into(&d, close, plain, o, &dlen) < 0)
        return NOT_FLAT;
    o[dlen] = 0;
    flat_t f;   /* (not zeroed: 1 KiB) */
    size_t heap = 0;
    uint32_t k;
    for (k = 0;; k++) {
        jd_ws(&d);
        if (d.p < d.end && *d.p == ']') {
            d.p++;
            break;
        }
        if (d.p >= d.end || *d.p != ',' || k == FLAT_MAX)
            return NOT_FLAT;
        d.p++;
        jd_ws(&d);
        if (d.p < d.end && *d.p == '"') {
            if (!(close = jd_str_end(&d, &plain)) || (size_t)(close - d.p - 1) >= AEMP_MSG_MAX_STR)
                return NOT_FLAT;
            heap += flat_str(&f.cells[k], AEMP_T_STR, (size_t)(d.p + 1 - p), (size_t)(close - d.p - 1),
                             !plain);
            d.p = close + 1;
        } else if (d.p >= d.end || *d.p == '[' || *d.p == '{' || jd_scalar(&d, &f.cells[k]) < 0) {
            return NOT_FLAT;
        }
    }
    f.n = k;
    f.heap = heap;
    if (!(*out = flat_msg(&f, p)))
        return NOT_FLAT;
    *destlen = dlen;
    *n = (size_t)(d.p - p);
    return FRAME_DEST;
}

/* ------------------------------------------------------------ next frame */

/* An empty builder for the next frame in r->build. */
static void build_prepare(aemp_frame_reader_t *r)
{
    if (r->build)
        aemp__build_reset(r->build);
    else
        r->build = aemp_build_new();
}

/* Give r's builder back to msg.c's cache (which trims big ones): a reader
 * holds one only while it decodes a frame, so that a node's thousands of
 * connections do not each keep a builder's storage - as large as the
 * largest message some builder of the process made - between frames.
 * (Taking one from the cache and giving it back costs a few stores.) */
static void build_release(aemp_frame_reader_t *r)
{
    if (r->build) {   /* (a flat frame took none) */
        aemp_build_abort(r->build);
        r->build = NULL;
    }
}

/* Decode the frame at p[0..*n) in r's framing (n, destlen, trial and the
 * result as for json_decode and cbor_decode): a flat frame straight into
 * its message, which goes to *flat, any other into the reader's builder
 * (*flat untouched). */
static int decode(aemp_frame_reader_t *r, const uint8_t *p, size_t *n, size_t *destlen, int trial,
                  aemp_msg_t **flat)
{
    int json = r->framing == AEMP_FRAMING_JSON;
    size_t fn = *n;
    aemp_msg_t *m = NULL;
    int kind = json ? json_flat(r, p, &fn, destlen, &m) : cbor_flat(r, p, &fn, destlen, &m);
    if (kind == NOT_FLAT && !json) {
        fn = *n;
        kind = cbor_levels(r, p, &fn, destlen, &m);
    }
    if (kind != NOT_FLAT) {
        if (trial || fn == *n) { /* (a scanned frame ends where it ends) */
            *n = fn;
            *flat = m;
            return kind;
        }
        aemp_msg_unref(m);
    }
    build_prepare(r);
    return json ? json_decode(r, p, n, destlen, trial) : cbor_decode(r, p, n, destlen, trial);
}

/* Take the next complete frame from `in` (see frame.h).  Byte offsets in
 * error texts count from the first byte of the offending frame. */
int aemp__frame_next(aemp_frame_reader_t *r, aemp_buf_t *in, aemp_frame_t *frame)
{
    memset(frame, 0, sizeof *frame);
    if (r->failed)
        return -1;

    int json = r->framing == AEMP_FRAMING_JSON;
    if (!json && r->framing != AEMP_FRAMING_CBOR)
        return fail(r, "no framing selected");

    size_t destlen = 0, n;
    int kind = -1;
    aemp_msg_t *m = NULL;   /* a flat frame's message */
    if (!r->scan && !r->started) {
        /* No frame begun: try to decode one straight from the bytes at
         * hand (within max_frame), the decoder checking all the scanner
         * would.  If that fails -- too few bytes, or an error -- the
         * scanner and the decoder do it again (the scanner then keeps its
         * state, so this costs one extra pass over the bytes at hand at
         * most once per frame) and report exactly what they always did. */
        if (json)
            json_skip_ws(in);
        n = aemp__buf_used(in);
        if (!n)
            return 0;
        const uint8_t *p = aemp__buf_head(in);
        if (!json || p[0] == '[') {
            if (r->max_frame && n > r->max_frame)
                n = r->max_frame;
            kind = decode(r, p, &n, &destlen, 1, &m);
            if (kind >= 0) {
                r->scan = n;
            } else { /* forget any error a trial left */
                r->failed = 0;
                r->error[0] = 0;
                build_release(r);
            }
        }
    }
    if (kind < 0) {
        int rc = json ? json_scan(r, in) : aemp__buf_used(in) ? cbor_scan(r, in) : 0;
        if (rc <= 0)
            return rc;
        n = r->scan;
        kind = decode(r, aemp__buf_head(in), &n, &destlen, 0, &m);
        if (kind < 0)
            return -1;
    }

    if (kind == FRAME_EMPTY) {
        m = aemp_msg_empty();
    } else if (!m) {
        r->built++;
        m = aemp__build_take_msg(r->build);
        if (m && kind == FRAME_NODEST) {
            m = aemp__msg_slice_own(m, 1);
        }
        if (!m) /* cannot happen: the decoders checked every step */
            return fail(r, "%s frame refused: %s", aemp__framing_name(r->framing),
                        aemp__build_error(r->build));
    }
    frame->empty = kind == FRAME_EMPTY;
    frame->dest = kind == FRAME_DEST ? r->dest : NULL;
    frame->destlen = destlen;
    frame->msg = m;

    build_release(r);
    aemp__buf_consume(in, r->scan);
    reset_scan(r);
    return 1;
}
