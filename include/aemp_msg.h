/* aemp_msg.h - libaemp's message values (included by aemp.h).
 *
 * A message is an immutable, reference-counted value built in a single
 * allocation.  Its root is usually an array: the elements of the message,
 * element 0 customarily a string tag.  Values are the union of what both
 * wire framings (CBOR and JSON) carry:
 *
 *   null, bool, int (int64), uint (integers above INT64_MAX, up to
 *   UINT64_MAX), double, str (UTF-8 text), bytes (byte string), array, map
 *   (ordered pairs with string keys; keys may hold any bytes, NUL included)
 *
 * Integers are kept canonical: every integer that fits int64 is an INT,
 * only larger ones are UINT, so equal numbers always have the same type.
 *
 * Reading allocates nothing and every element of an array or map is found
 * in O(1): a const aemp_val_t * points into the message and stays valid as
 * long as the message does.  Text and byte strings are NUL-terminated in
 * memory (the NUL is not counted in the length), so a string without
 * embedded NULs can be used as a C string directly.
 *
 * Strings: a Perl string is both text and bytes, and a peer's framing
 * decides which one arrives (Perl's CBOR::XS sends ASCII strings as byte
 * strings, JSON has no byte strings), so the string accessors accept both
 * kinds; aemp_val_type() tells them apart.  Over JSON a byte string is
 * written as Perl does: each byte as the character of that code point.
 *
 * Limits, the same for building and for both framings (so that any message
 * accepted from one peer can be encoded for any other): nesting depth
 * AEMP_MSG_MAX_DEPTH counted with the message's own array (the frame's
 * array on the wire), strings shorter than 4 GiB; the size of a frame is the
 * node's max_frame configuration key.
 *
 * Errors of the typed accessors: AEMP_ETYPE (the value has another type),
 * AEMP_ERANGE (no such element, or the number does not fit the C type).
 */
#ifndef AEMP_MSG_H
#define AEMP_MSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nesting depth limit of a message, its own array counted (so a message
 * may hold arrays nested AEMP_MSG_MAX_DEPTH - 1 deep).  Perl's JSON::XS and
 * CBOR::XS refuse deeper input by default. */
#define AEMP_MSG_MAX_DEPTH 512

typedef struct aemp_msg aemp_msg_t;     /* a message (reference-counted) */
typedef struct aemp_val aemp_val_t;     /* a value inside a message */
typedef struct aemp_build aemp_build_t; /* a message under construction */

typedef enum aemp_type {
    AEMP_T_NULL = 0,
    AEMP_T_BOOL,
    AEMP_T_INT,      /* int64 */
    AEMP_T_UINT,     /* above INT64_MAX */
    AEMP_T_DOUBLE,
    AEMP_T_STR,      /* text (UTF-8) */
    AEMP_T_BYTES,    /* byte string */
    AEMP_T_ARRAY,
    AEMP_T_MAP,
} aemp_type_t;

/* Name of a type ("null", "bool", "int", "uint", "double", "str", "bytes",
 * "array", "map"). */
const char *aemp_type_name(aemp_type_t t);

/* ---------------------------------------------------------- references */

/* Take a reference (returns m; NULL passes through).  O(1). */
aemp_msg_t *aemp_msg_ref(aemp_msg_t *m);

/* Drop a reference; the last one frees the message.  NULL is a no-op. */
void aemp_msg_unref(aemp_msg_t *m);

/* ------------------------------------------------------------- building */

/* Build a message from a format describing its ELEMENTS; the result's root
 * is an array:  aemp_msgf("sis", "ping", 1, "x") is ["ping", 1, "x"].
 *   n null          b bool (int)       i int (int)        I int64_t
 *   u uint64_t      f double           s text (const char *, NUL-terminated;
 *   s# text (const char *, size_t)                         NULL = null)
 *   y bytes (const void *, size_t)     v a copy of a value (const aemp_val_t *;
 *   m the elements of a message (aemp_msg_t *, borrowed),  NULL = null)
 *   [ ... ] array   { ... } map: keys are s or s#, each followed by a value
 * Spaces, ',' and ':' are ignored.  Cost: one allocation (plus one for the
 * builder the first time).  Returns NULL for a bad format or a value beyond
 * the limits (and logs why at level 1); NULL is never a valid message. */
aemp_msg_t *aemp_msgf(const char *fmt, ...);
aemp_msg_t *aemp_vmsgf(const char *fmt, va_list ap);

/* The same with exactly one value at the root, not an array of elements:
 * aemp_valf("{s:i}", "a", 1) is {"a": 1}; used for database values. */
aemp_msg_t *aemp_valf(const char *fmt, ...);
aemp_msg_t *aemp_vvalf(const char *fmt, va_list ap);

/* The empty message [] (a new reference to a shared one). */
aemp_msg_t *aemp_msg_empty(void);

/* A new message whose root is a deep copy of v (NULL: null).  A null,
 * false or true is a new reference to a shared message. */
aemp_msg_t *aemp_msg_copy_val(const aemp_val_t *v);

/* A step-by-step builder, for messages whose shape is known only at run
 * time.  Calls append values to the innermost open array or map (to the
 * top level when none is open; in a map a key string must precede each
 * value).  An error (depth or size beyond the limits, a non-string key, a
 * close without an open) is remembered and makes the finish call fail.
 * Builders are recycled: steady-state building allocates only the message. */
aemp_build_t *aemp_build_new(void);
int aemp_build_null(aemp_build_t *b);
int aemp_build_bool(aemp_build_t *b, int v);
int aemp_build_int(aemp_build_t *b, int64_t v);
int aemp_build_uint(aemp_build_t *b, uint64_t v);
int aemp_build_double(aemp_build_t *b, double v);
int aemp_build_str(aemp_build_t *b, const char *s);              /* NUL-terminated */
int aemp_build_strn(aemp_build_t *b, const char *s, size_t len);
int aemp_build_bytes(aemp_build_t *b, const void *p, size_t len);
int aemp_build_val(aemp_build_t *b, const aemp_val_t *v);        /* deep copy */
int aemp_build_array(aemp_build_t *b);   /* open an array */
int aemp_build_map(aemp_build_t *b);     /* open a map */
int aemp_build_close(aemp_build_t *b);   /* close the innermost array/map */
/* Append values described by a format (as aemp_msgf). */
int aemp_build_fmt(aemp_build_t *b, const char *fmt, ...);
int aemp_build_vfmt(aemp_build_t *b, const char *fmt, va_list ap);

/* Finish: a message whose root is an array of the top-level values
 * (aemp_build_msg), or whose root is the single top-level value
 * (aemp_build_root; an error unless exactly one was added).  The builder is
 * consumed either way.  NULL after an error (containers left open count). */
aemp_msg_t *aemp_build_msg(aemp_build_t *b);
aemp_msg_t *aemp_build_root(aemp_build_t *b);

/* Throw a builder away. */
void aemp_build_abort(aemp_build_t *b);

/* -------------------------------------------------------------- reading */

/* The root value. */
const aemp_val_t *aemp_msg_root(const aemp_msg_t *m);

/* Number of elements of the root array (0 if the root is not an array). */
size_t aemp_msg_len(const aemp_msg_t *m);

/* Element i of the root array, or NULL.  O(1). */
const aemp_val_t *aemp_msg_at(const aemp_msg_t *m, size_t i);

/* Element 0 as a string if it is one (text or bytes), else NULL: the tag
 * that aemp_rcv_tag dispatches on.  *len (may be NULL) gets its length. */
const char *aemp_msg_tag(const aemp_msg_t *m, size_t *len);

/* Typed access to element i of the root array (see the aemp_val_ forms).
 * aemp_msg_str returns NULL when there is no such element or it is no
 * string. */
const char *aemp_msg_str(const aemp_msg_t *m, size_t i, size_t *len);
int aemp_msg_int(const aemp_msg_t *m, size_t i, int64_t *out);
int aemp_msg_uint(const aemp_msg_t *m, size_t i, uint64_t *out);
int aemp_msg_double(const aemp_msg_t *m, size_t i, double *out);
int aemp_msg_bool(const aemp_msg_t *m, size_t i, int *out);

/* Read the elements of the root array by a format, from element 0:
 *   n null       b int* (bool)    i int*    I int64_t*    u uint64_t*
 *   f double* (ints too)          s const char** (string)
 *   s# const char**, size_t*      y const void**, size_t* (any string)
 *   v const aemp_val_t** (any value)   * skip one element
 * Trailing elements beyond the format are ignored.  Returns 0, or
 * AEMP_ERANGE (too few elements, a number that does not fit) or AEMP_ETYPE
 * (an element of another type) with nothing promised about the outputs.
 * Allocates nothing. */
int aemp_msg_unpack(const aemp_msg_t *m, const char *fmt, ...);

/* Type of a value (AEMP_T_NULL for v NULL). */
aemp_type_t aemp_val_type(const aemp_val_t *v);

/* Scalars: 0 or AEMP_ETYPE/AEMP_ERANGE.  aemp_val_int accepts INT (and
 * UINT is AEMP_ERANGE); aemp_val_uint accepts non-negative INT and UINT;
 * aemp_val_double accepts DOUBLE and both integer types. */
int aemp_val_bool(const aemp_val_t *v, int *out);
int aemp_val_int(const aemp_val_t *v, int64_t *out);
int aemp_val_uint(const aemp_val_t *v, uint64_t *out);
int aemp_val_double(const aemp_val_t *v, double *out);

/* A string value (text or bytes): its bytes, NUL-terminated, and the length
 * in *len (may be NULL).  NULL if v is no string. */
const char *aemp_val_str(const aemp_val_t *v, size_t *len);

/* Number of elements of an array, of pairs of a map, bytes of a string;
 * 0 for other types. */
size_t aemp_val_len(const aemp_val_t *v);

/* Element i of an array, or NULL.  O(1). */
const aemp_val_t *aemp_val_at(const aemp_val_t *v, size_t i);

/* Pair i of a map: its key (a string value) and its value, or NULL.  O(1). */
const aemp_val_t *aemp_val_key(const aemp_val_t *v, size_t i);
const aemp_val_t *aemp_val_value(const aemp_val_t *v, size_t i);

/* The value of the first pair of a map whose key is key[0..len), or NULL.
 * O(pairs).  aemp_val_get takes a NUL-terminated key. */
const aemp_val_t *aemp_val_getn(const aemp_val_t *v, const char *key, size_t len);
const aemp_val_t *aemp_val_get(const aemp_val_t *v, const char *key);

/* 1 if a and b are the same value (same types - text and bytes differ -,
 * same order of elements and pairs), else 0. */
int aemp_val_equal(const aemp_val_t *a, const aemp_val_t *b);

/* Compact JSON-like text of a value for people (logs, the aemp tool): byte
 * strings that are not UTF-8 are shown with \u00XX escapes of their bytes;
 * newline, tab and CR as \n, \t, \r, other control characters as \u00XX.
 * malloc'd, never NULL (aborts on no memory like the rest). */
char *aemp_val_text(const aemp_val_t *v);

/* Truth as Perl sees it: null, false, 0, 0.0, "" and "0" are false. */
int aemp_val_truthy(const aemp_val_t *v);

#ifdef __cplusplus
}
#endif

#endif
