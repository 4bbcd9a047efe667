/* frame.c - message framings: JSON and CBOR (see frame.h).
 *
 * Splitting is incremental and linear: the reader keeps its scanning state
 * between calls, so every byte of a frame is scanned once however the frame
 * is cut into reads; only a complete frame is decoded (JSON by jansson, CBOR
 * by the small decoder below, which relies on the scanner having checked the
 * frame's structure).  JSON frames made of the common subset (arrays,
 * objects, strings without escapes, integers of up to 18 digits, true, false,
 * null) are decoded by a small decoder below as well; any other frame (or a
 * malformed one) goes to jansson, so values and error texts are jansson's.
 * Encoding writes straight into the output buffer (JSON by hand, CBOR heads
 * inline, floats and simple values with libcbor's cbor_encode_* primitives).
 *
 * Value mapping and its limits:
 *  - JSON and CBOR strings become JSON strings.  CBOR text AND byte strings
 *    are both accepted: Perl's CBOR::XS sends strings without the UTF-8 flag
 *    as byte strings.  A string whose bytes are valid UTF-8 is taken as
 *    UTF-8; any other string is taken as Latin-1 (one byte = one code point,
 *    which is what the Perl byte string meant) and converted to UTF-8.  The
 *    same applies to text strings with invalid UTF-8 (CBOR::XS does not
 *    validate them either).
 *  - CBOR integers outside the int64 range become reals; non-finite CBOR
 *    floats (NaN, infinities; JSON cannot hold them) become null; undefined
 *    becomes null; tags are skipped (their content is decoded); map keys must
 *    be strings or integers (integers become their decimal text).
 *  - Encoding writes CBOR text strings, integers, float64 reals, true, false,
 *    null, definite arrays and maps.  JSON output is compact UTF-8 (only '"',
 *    '\\' and control characters are escaped, as jansson does); reals are
 *    written in jansson's style (always with '.' or an exponent) but with the
 *    shortest of %.15g/%.16g/%.17g that reads back as the same double.
 *  - Nesting is limited to AEMP_FRAME_MAX_DEPTH levels both ways (jansson's
 *    parser limit): deeper input is an error, deeper (or cyclic) values are
 *    encoded as null beyond the limit.
 */
#include "frame.h"

#include <cbor.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AEMP_FRAME_MAX_DEPTH JSON_PARSER_MAX_DEPTH

/* CBOR scanner stack entries: a count of items still expected in a definite
 * container, or one of these markers for indefinite-length items. */
#define ST_INDEF_ARRAY UINT64_MAX
#define ST_INDEF_MAP0 (UINT64_MAX - 1) /* indefinite map, even item count so far */
#define ST_INDEF_MAP1 (UINT64_MAX - 2) /* indefinite map, odd item count so far */
#define ST_INDEF_BYTES (UINT64_MAX - 3)
#define ST_INDEF_TEXT (UINT64_MAX - 4)
#define ST_MAX_COUNT (UINT64_MAX - 5)

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

/* ------------------------------------------------------------ strings */

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF: the rules jansson applies). */
static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            uint8_t d = s[i + k];
            if ((d & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (d & 0x3f);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            return 0;
        if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
            return 0;
        i += len;
    }
    return 1;
}

/* The UTF-8 form of the string bytes s[0..n): s itself if valid UTF-8,
 * else a Latin-1 -> UTF-8 conversion stored in a new *tmp (caller frees;
 * NULL when s is returned).  *outlen gets the length; NULL on no memory. */
static const char *str_utf8(const uint8_t *s, size_t n, char **tmp, size_t *outlen)
{
    *tmp = NULL;
    if (utf8_valid(s, n)) {
        *outlen = n;
        return (const char *)s;
    }
    char *o = malloc(2 * n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c < 0x80) {
            o[k++] = (char)c;
        } else {
            o[k++] = (char)(0xc0 | (c >> 6));
            o[k++] = (char)(0x80 | (c & 0x3f));
        }
    }
    *tmp = o;
    *outlen = k;
    return o;
}

/* ------------------------------------------------------------ JSON encode */

/* Bytes that must be escaped in a JSON string: 1 = control, 2 = '"' or '\\'. */
static const uint8_t json_esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
};

/* Append s[0..n) as a JSON string literal (UTF-8 kept as is). */
static void json_put_str(aemp_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const uint8_t *u = (const uint8_t *)s;
    uint8_t *w = aemp__buf_reserve(b, n + 2);
    size_t i = 0;
    *w++ = '"';
    /* fast path: copy while nothing needs escaping (room was reserved) */
    while (i < n && !json_esc[u[i]])
        *w++ = u[i++];
    b->len = (size_t)(w - b->data);
    while (i < n) {
        size_t start = i;
        while (i < n && !json_esc[u[i]])
            i++;
        aemp__buf_append(b, u + start, i - start);
        if (i == n)
            break;
        uint8_t c = u[i++];
        char e[6] = { '\\', 0, 0, 0, 0, 0 };
        size_t el = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        aemp__buf_append(b, e, el);
    }
    aemp__buf_putc(b, '"');
}

/* Append the decimal form of v. */
static void json_put_int(aemp_buf_t *b, json_int_t v)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    aemp__buf_append(b, p, (size_t)(e - p));
}

/* Format a finite double as jansson does (always a '.' or an exponent, no
 * '+' or leading zeros in the exponent) using the shortest precision that
 * reads back exactly.  Returns the length written to out (>= 40 bytes). */
static size_t fmt_real(char *out, double v)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 40, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            break;
    }
    if (n < 0 || n >= 40) { /* cannot happen for %.17g */
        memcpy(out, "0.0", 4);
        return 3;
    }
    size_t len = (size_t)n;
    int has_dot_or_e = 0;
    for (size_t i = 0; i < len; i++) {
        if (out[i] == ',') /* a locale's decimal comma */
            out[i] = '.';
        if (out[i] == '.' || out[i] == 'e')
            has_dot_or_e = 1;
    }
    if (!has_dot_or_e) {
        memcpy(out + len, ".0", 3);
        len += 2;
    }
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

/* Append any JSON value; containers deeper than the limit become null. */
static void json_put_value(aemp_buf_t *b, const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        json_put_str(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        json_put_int(b, json_integer_value(v));
        return;
    case JSON_REAL: {
        char tmp[40];
        size_t n = fmt_real(tmp, json_real_value(v));
        aemp__buf_append(b, tmp, n);
        return;
    }
    case JSON_TRUE: aemp__buf_append(b, "true", 4); return;
    case JSON_FALSE: aemp__buf_append(b, "false", 5); return;
    case JSON_NULL: aemp__buf_append(b, "null", 4); return;
    case JSON_ARRAY: {
        if (depth >= AEMP_FRAME_MAX_DEPTH) {
            aemp__buf_append(b, "null", 4);
            return;
        }
        size_t n = json_array_size(v);
        aemp__buf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                aemp__buf_putc(b, ',');
            json_put_value(b, json_array_get(v, i), depth + 1);
        }
        aemp__buf_putc(b, ']');
        return;
    }
    case JSON_OBJECT: {
        if (depth >= AEMP_FRAME_MAX_DEPTH) {
            aemp__buf_append(b, "null", 4);
            return;
        }
        aemp__buf_putc(b, '{');
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                aemp__buf_putc(b, ',');
            first = 0;
            json_put_str(b, json_object_iter_key(it), json_object_iter_key_len(it));
            aemp__buf_putc(b, ':');
            json_put_value(b, json_object_iter_value(it), depth + 1);
        }
        aemp__buf_putc(b, '}');
        return;
    }
    }
    aemp__buf_append(b, "null", 4);
}

/* ------------------------------------------------------------ CBOR encode */

/* Append one CBOR head produced by a libcbor encoder (at most 9 bytes). */
#define CB_PUT(b, call)                                              \
    do {                                                             \
        uint8_t *p_ = aemp__buf_reserve((b), 9);                     \
        (b)->len += call;                                            \
    } while (0)

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
        p[0] = m | 26;
        for (int i = 0; i < 4; i++)
            p[1 + i] = (uint8_t)(v >> (24 - 8 * i));
        return 5;
    }
    p[0] = m | 27;
    for (int i = 0; i < 8; i++)
        p[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    return 9;
}

/* Append a CBOR head. */
static inline void cb_put_head(aemp_buf_t *b, unsigned major, uint64_t v)
{
    uint8_t *p = b->cap - b->len >= 9 ? b->data + b->len : aemp__buf_reserve(b, 9);
    b->len += cb_head(p, major, v);
}

/* Append a CBOR text string. */
static void cbor_put_str(aemp_buf_t *b, const char *s, size_t n)
{
    uint8_t *p = b->cap - b->len >= 9 + n ? b->data + b->len : aemp__buf_reserve(b, 9 + n);
    size_t h = cb_head(p, 3, n);
    memcpy(p + h, s, n);
    b->len += h + n;
}

/* Append any JSON value as CBOR; containers deeper than the limit become
 * null. */
static void cbor_put_value(aemp_buf_t *b, const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        cbor_put_str(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        if (i >= 0)
            cb_put_head(b, 0, (uint64_t)i);
        else
            cb_put_head(b, 1, (uint64_t)(-(i + 1)));
        return;
    }
    case JSON_REAL:
        CB_PUT(b, cbor_encode_double(json_real_value(v), p_, 9));
        return;
    case JSON_TRUE: CB_PUT(b, cbor_encode_bool(true, p_, 9)); return;
    case JSON_FALSE: CB_PUT(b, cbor_encode_bool(false, p_, 9)); return;
    case JSON_NULL: CB_PUT(b, cbor_encode_null(p_, 9)); return;
    case JSON_ARRAY: {
        if (depth >= AEMP_FRAME_MAX_DEPTH) {
            CB_PUT(b, cbor_encode_null(p_, 9));
            return;
        }
        size_t n = json_array_size(v);
        cb_put_head(b, 4, n);
        for (size_t i = 0; i < n; i++)
            cbor_put_value(b, json_array_get(v, i), depth + 1);
        return;
    }
    case JSON_OBJECT: {
        if (depth >= AEMP_FRAME_MAX_DEPTH) {
            CB_PUT(b, cbor_encode_null(p_, 9));
            return;
        }
        cb_put_head(b, 5, json_object_size(v));
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            cbor_put_str(b, json_object_iter_key(it), json_object_iter_key_len(it));
            cbor_put_value(b, json_object_iter_value(it), depth + 1);
        }
        return;
    }
    }
    CB_PUT(b, cbor_encode_null(p_, 9));
}

/* ------------------------------------------------------------ encode API */

/* Append the frame [dest, msg...] in framing f; msg must be an array (a
 * non-array counts as empty). */
void aemp__frame_encode(aemp_framing_t f, aemp_buf_t *out,
                        const char *dest, size_t destlen, const json_t *msg)
{
    size_t n = json_is_array(msg) ? json_array_size(msg) : 0;
    if (f == AEMP_FRAMING_JSON) {
        aemp__buf_putc(out, '[');
        json_put_str(out, dest, destlen);
        for (size_t i = 0; i < n; i++) {
            aemp__buf_putc(out, ',');
            json_put_value(out, json_array_get(msg, i), 1);
        }
        aemp__buf_putc(out, ']');
    } else if (f == AEMP_FRAMING_CBOR) {
        cb_put_head(out, 4, n + 1);
        cbor_put_str(out, dest, destlen);
        for (size_t i = 0; i < n; i++)
            cbor_put_value(out, json_array_get(msg, i), 1);
    }
}

/* Append one JSON value as a frame in framing f. */
void aemp__frame_encode_value(aemp_framing_t f, aemp_buf_t *out, const json_t *value)
{
    if (f == AEMP_FRAMING_JSON)
        json_put_value(out, value, 0);
    else if (f == AEMP_FRAMING_CBOR)
        cbor_put_value(out, value, 0);
}

/* ------------------------------------------------------------ reader */

/* Initialise r for framing f with a frame size limit (0 = none). */
void aemp__frame_reader_init(aemp_frame_reader_t *r, aemp_framing_t f, size_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->framing = f;
    r->max_frame = max_frame;
}

/* Free the scanner stack; r must be initialised again before reuse. */
void aemp__frame_reader_free(aemp_frame_reader_t *r)
{
    free(r->stack);
    r->stack = NULL;
    r->stack_len = r->stack_cap = 0;
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

/* ------------------------------------------------------------ JSON split */

/* Scan the JSON frame at the head of `in` from r->scan on.  Returns 1 when
 * the frame is complete (r->scan = its length), 0 if more bytes are needed,
 * -1 on error.  Leading whitespace is consumed from `in`. */
static int json_scan(aemp_frame_reader_t *r, aemp_buf_t *in)
{
    if (!r->started) {
        const uint8_t *h = aemp__buf_head(in);
        size_t n = aemp__buf_used(in), ws = 0;
        while (ws < n && (h[ws] == ' ' || h[ws] == '\n' || h[ws] == '\r' || h[ws] == '\t'))
            ws++;
        if (ws)
            aemp__buf_consume(in, ws);
        if (ws == n)
            return 0;
        uint8_t c = h[ws];
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
            while (i < end && p[i] != '"' && p[i] != '\\')
                i++;
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
            if (++depth > AEMP_FRAME_MAX_DEPTH)
                return fail(r, "malformed JSON frame at byte %zu: nesting deeper than %d levels",
                            i - 1, AEMP_FRAME_MAX_DEPTH);
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

/* Push a scanner stack entry; -1 (error set) if nesting is too deep. */
static int cbor_push(aemp_frame_reader_t *r, uint64_t e, size_t at)
{
    if (r->stack_len >= AEMP_FRAME_MAX_DEPTH)
        return fail(r, "malformed CBOR frame: nesting deeper than %d levels at byte %zu",
                    AEMP_FRAME_MAX_DEPTH, at);
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
                    if (cbor_push(r, major == 2 ? ST_INDEF_BYTES : ST_INDEF_TEXT, at) < 0)
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
                if (ai == 31) {
                    if (cbor_push(r, major == 4 ? ST_INDEF_ARRAY : ST_INDEF_MAP0, at) < 0)
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
                if (cbor_push(r, val, at) < 0)
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

/* Decoder over one complete frame that cbor_scan accepted. */
typedef struct cdec {
    const uint8_t *p, *end;
    const char *err;
} cdec_t;

/* Read one head; -1 with d->err on truncation or a reserved encoding. */
static int cd_head(cdec_t *d, unsigned *major, unsigned *ai, uint64_t *val)
{
    if (d->p >= d->end) {
        d->err = "truncated item";
        return -1;
    }
    uint8_t ib = *d->p++;
    *major = ib >> 5;
    *ai = ib & 31;
    *val = 0;
    if (*ai < 24) {
        *val = *ai;
    } else if (*ai <= 27) {
        size_t k = (size_t)1 << (*ai - 24);
        if ((size_t)(d->end - d->p) < k) {
            d->err = "truncated head";
            return -1;
        }
        for (size_t j = 0; j < k; j++)
            *val = (*val << 8) | *d->p++;
    } else if (*ai != 31) {
        d->err = "reserved additional information";
        return -1;
    }
    return 0;
}

/* Read the payload of a string whose head was (major, ai, val): *s and *n
 * get its bytes; indefinite strings are joined into a new *tmp (caller
 * frees).  -1 with d->err on error. */
static int cd_string_bytes(cdec_t *d, unsigned major, unsigned ai, uint64_t val,
                           const uint8_t **s, size_t *n, uint8_t **tmp)
{
    *tmp = NULL;
    if (ai != 31) {
        if (val > (uint64_t)(d->end - d->p)) {
            d->err = "truncated string";
            return -1;
        }
        *s = d->p;
        *n = (size_t)val;
        d->p += val;
        return 0;
    }
    size_t len = 0, cap = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (d->p < d->end && *d->p == 0xff) {
            d->p++;
            break;
        }
        unsigned cm, ca;
        uint64_t cv;
        if (cd_head(d, &cm, &ca, &cv) < 0)
            goto bad;
        if (cm != major || ca == 31 || cv > (uint64_t)(d->end - d->p)) {
            d->err = "bad chunk in an indefinite-length string";
            goto bad;
        }
        if (len + cv > cap) {
            size_t nc = cap ? cap : 64;
            while (nc < len + cv)
                nc *= 2;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) {
                d->err = "out of memory";
                goto bad;
            }
            buf = nb;
            cap = nc;
        }
        if (cv)
            memcpy(buf + len, d->p, (size_t)cv);
        len += (size_t)cv;
        d->p += cv;
    }
    *tmp = buf;
    *s = buf ? buf : (const uint8_t *)"";
    *n = len;
    return 0;
bad:
    free(buf);
    return -1;
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

/* A JSON real, or null for a non-finite value. */
static json_t *mk_real(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* A JSON string from string bytes (see str_utf8). */
static json_t *mk_string(cdec_t *d, const uint8_t *s, size_t n)
{
    char *tmp;
    size_t len;
    const char *u = str_utf8(s, n, &tmp, &len);
    json_t *j = u ? json_stringn_nocheck(u, len) : NULL;
    free(tmp);
    if (!j)
        d->err = "out of memory";
    return j;
}

static json_t *cd_item(cdec_t *d);

/* Decode a map key and store the following value in obj.  -1 on error. */
static int cd_pair(cdec_t *d, json_t *obj)
{
    unsigned major, ai;
    uint64_t val;
    do {
        if (cd_head(d, &major, &ai, &val) < 0)
            return -1;
    } while (major == 6);

    char num[24], *tmp = NULL;
    uint8_t *stmp = NULL;
    const char *key;
    size_t klen;
    if (major == 0) {
        klen = (size_t)snprintf(num, sizeof num, "%" PRIu64, val);
        key = num;
    } else if (major == 1) {
        if (val == UINT64_MAX)
            klen = (size_t)snprintf(num, sizeof num, "-18446744073709551616");
        else
            klen = (size_t)snprintf(num, sizeof num, "-%" PRIu64, val + 1);
        key = num;
    } else if (major == 2 || major == 3) {
        const uint8_t *s;
        size_t n;
        if (cd_string_bytes(d, major, ai, val, &s, &n, &stmp) < 0)
            return -1;
        key = str_utf8(s, n, &tmp, &klen);
        if (!key) {
            free(stmp);
            d->err = "out of memory";
            return -1;
        }
    } else {
        d->err = "map key is not a string or an integer";
        return -1;
    }
    json_t *v = cd_item(d);
    int rc = -1;
    if (v) {
        rc = json_object_setn_new_nocheck(obj, key, klen, v);
        if (rc < 0)
            d->err = "out of memory";
    }
    free(tmp);
    free(stmp);
    return rc;
}

/* Decode one item (nesting depth was bounded by the scanner).  NULL with
 * d->err on error. */
static json_t *cd_item(cdec_t *d)
{
    unsigned major, ai;
    uint64_t val;
    json_t *j;
    do {
        if (cd_head(d, &major, &ai, &val) < 0)
            return NULL;
    } while (major == 6); /* tags: decode the content */

    switch (major) {
    case 0:
        j = val <= INT64_MAX ? json_integer((json_int_t)val) : json_real((double)val);
        break;
    case 1:
        j = val <= INT64_MAX ? json_integer(-1 - (json_int_t)val) : json_real(-1.0 - (double)val);
        break;
    case 2:
    case 3: {
        const uint8_t *s;
        size_t n;
        uint8_t *tmp;
        if (cd_string_bytes(d, major, ai, val, &s, &n, &tmp) < 0)
            return NULL;
        j = mk_string(d, s, n);
        free(tmp);
        return j;
    }
    case 4:
        j = json_array();
        if (!j)
            break;
        for (uint64_t k = 0; ai == 31 || k < val; k++) {
            if (ai == 31 && d->p < d->end && *d->p == 0xff) {
                d->p++;
                break;
            }
            json_t *e = cd_item(d);
            if (!e || json_array_append_new(j, e) < 0) {
                if (e)
                    d->err = "out of memory";
                json_decref(j);
                return NULL;
            }
        }
        return j;
    case 5:
        j = json_object();
        if (!j)
            break;
        for (uint64_t k = 0; ai == 31 || k < val; k++) {
            if (ai == 31 && d->p < d->end && *d->p == 0xff) {
                d->p++;
                break;
            }
            if (cd_pair(d, j) < 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    default: /* 7 */
        switch (ai) {
        case 20: return json_false();
        case 21: return json_true();
        case 22:
        case 23: return json_null();
        case 25: j = mk_real(half_to_double((uint16_t)val)); break;
        case 26: {
            uint32_t u = (uint32_t)val;
            float f;
            memcpy(&f, &u, sizeof f);
            j = mk_real(f);
            break;
        }
        case 27: {
            double f;
            memcpy(&f, &val, sizeof f);
            j = mk_real(f);
            break;
        }
        default:
            d->err = ai == 31 ? "unexpected break" : "unsupported simple value";
            return NULL;
        }
    }
    if (!j && !d->err)
        d->err = "out of memory";
    return j;
}

/* ------------------------------------------------------------ JSON decode */

/* The fast JSON decoder: one frame that json_scan accepted, parsed in one
 * pass without jansson's lexer.  It understands only the subset named at the
 * top and gives up (NULL, nothing leaked) at anything else - an escape, a
 * control character, invalid UTF-8, a real, a long integer, a syntax error -
 * whereupon the caller parses the frame with jansson.  What it accepts it
 * decodes exactly as json_loadb would. */
typedef struct jdec {
    const uint8_t *p, *end;
} jdec_t;

static inline void jd_ws(jdec_t *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

/* A string literal at d->p (its '"'): its bytes in *s, *n; -1 to give up. */
static int jd_str(jdec_t *d, const char **s, size_t *n)
{
    const uint8_t *q = ++d->p;
    while (q < d->end && *q != '"' && *q != '\\' && *q >= 0x20)
        q++;
    if (q >= d->end || *q != '"' || !utf8_valid(d->p, (size_t)(q - d->p)))
        return -1;
    *s = (const char *)d->p;
    *n = (size_t)(q - d->p);
    d->p = q + 1;
    return 0;
}

static json_t *jd_value(jdec_t *d, int depth);

/* The elements of an array after its '['; NULL to give up. */
static json_t *jd_array(jdec_t *d, int depth)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    d->p++;
    jd_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        return a;
    }
    for (;;) {
        json_t *v = jd_value(d, depth);
        if (!v || json_array_append_new(a, v) < 0)
            break;
        jd_ws(d);
        if (d->p >= d->end)
            break;
        if (*d->p == ']') {
            d->p++;
            return a;
        }
        if (*d->p++ != ',')
            break;
        jd_ws(d);
    }
    json_decref(a);
    return NULL;
}

/* The members of an object after its '{'; NULL to give up. */
static json_t *jd_object(jdec_t *d, int depth)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    d->p++;
    jd_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t klen;
        if (d->p >= d->end || *d->p != '"' || jd_str(d, &k, &klen) < 0)
            break;
        jd_ws(d);
        if (d->p >= d->end || *d->p++ != ':')
            break;
        jd_ws(d);
        json_t *v = jd_value(d, depth);
        if (!v || json_object_setn_new_nocheck(o, k, klen, v) < 0)
            break;
        jd_ws(d);
        if (d->p >= d->end)
            break;
        if (*d->p == '}') {
            d->p++;
            return o;
        }
        if (*d->p++ != ',')
            break;
        jd_ws(d);
    }
    json_decref(o);
    return NULL;
}

/* One value at d->p (no leading whitespace); NULL to give up. */
static json_t *jd_value(jdec_t *d, int depth)
{
    if (d->p >= d->end || depth >= AEMP_FRAME_MAX_DEPTH)
        return NULL;
    switch (*d->p) {
    case '[':
        return jd_array(d, depth + 1);
    case '{':
        return jd_object(d, depth + 1);
    case '"': {
        const char *s;
        size_t n;
        return jd_str(d, &s, &n) < 0 ? NULL : json_stringn_nocheck(s, n);
    }
    case 't':
        if (d->end - d->p >= 4 && !memcmp(d->p, "true", 4)) {
            d->p += 4;
            return json_true();
        }
        return NULL;
    case 'f':
        if (d->end - d->p >= 5 && !memcmp(d->p, "false", 5)) {
            d->p += 5;
            return json_false();
        }
        return NULL;
    case 'n':
        if (d->end - d->p >= 4 && !memcmp(d->p, "null", 4)) {
            d->p += 4;
            return json_null();
        }
        return NULL;
    default: {
        /* -?(0|[1-9][0-9]*) of at most 18 digits, not followed by a
         * fraction, an exponent or another digit: cannot overflow */
        const uint8_t *q = d->p;
        int neg = *q == '-';
        q += neg;
        const uint8_t *digits = q;
        json_int_t v = 0;
        while (q < d->end && *q >= '0' && *q <= '9' && q - digits < 18)
            v = v * 10 + (*q++ - '0');
        size_t nd = (size_t)(q - digits);
        if (nd == 0 || (nd > 1 && *digits == '0'))
            return NULL;
        if (q < d->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9')))
            return NULL;
        d->p = q;
        return json_integer(neg ? -v : v);
    }
    }
}

/* Decode the JSON frame of len bytes at p with the fast decoder; NULL if it
 * gave up. */
static json_t *json_fast(const uint8_t *p, size_t len)
{
    jdec_t d = { p, p + len };
    json_t *j = jd_value(&d, 0);
    if (j && d.p != d.end) {   /* cannot happen: the scanner ended the frame */
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ------------------------------------------------------------ next frame */

/* Take the next complete frame from `in` (see frame.h).  Byte offsets in
 * error texts count from the first byte of the offending frame. */
int aemp__frame_next(aemp_frame_reader_t *r, aemp_buf_t *in, json_t **frame)
{
    *frame = NULL;
    if (r->failed)
        return -1;

    if (r->framing == AEMP_FRAMING_JSON) {
        int rc = json_scan(r, in);
        if (rc <= 0)
            return rc;
        json_error_t err;
        json_t *j = json_fast(aemp__buf_head(in), r->scan);
        if (!j)
            j = json_loadb((const char *)aemp__buf_head(in), r->scan, JSON_ALLOW_NUL, &err);
        if (!j)
            return fail(r, "malformed JSON frame at byte %d: %s", err.position, err.text);
        if (!json_is_array(j)) { /* cannot happen: the text starts with '[' */
            json_decref(j);
            return fail(r, "frame is not an array");
        }
        aemp__buf_consume(in, r->scan);
        reset_scan(r);
        *frame = j;
        return 1;
    }

    if (r->framing == AEMP_FRAMING_CBOR) {
        if (!aemp__buf_used(in))
            return 0;
        int rc = cbor_scan(r, in);
        if (rc <= 0)
            return rc;
        cdec_t d = { aemp__buf_head(in), aemp__buf_head(in) + r->scan, NULL };
        json_t *j = cd_item(&d);
        if (!j)
            return fail(r, "malformed CBOR frame: %s", d.err ? d.err : "undecodable");
        if (!json_is_array(j)) { /* cannot happen: the scanner checked */
            json_decref(j);
            return fail(r, "frame is not an array");
        }
        aemp__buf_consume(in, r->scan);
        reset_scan(r);
        *frame = j;
        return 1;
    }

    return fail(r, "no framing selected");
}
