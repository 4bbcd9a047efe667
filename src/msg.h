/* msg.h - the message value type's representation, for the library's own
 * codecs (frame.c) and runtime.  The public view is aemp_msg.h.
 *
 * A finished message is one allocation:
 *
 *   struct aemp_msg | cells[ncells] | string heap
 *
 * cells[0] is the root.  The children of every array (and the key/value
 * cells of every map: key, value, key, value, ...) are contiguous cells, so
 * element i is found in O(1).  Every offset is relative to the cell that
 * holds it and points forward, so a const aemp_val_t * alone is a complete
 * view of its value (no pointer back to the message is needed).
 *
 * A builder holds the cells in pre-order (each container followed by its
 * subtree, with the subtree's size in `span`) plus the heap; finishing lays
 * the cells out breadth-first into the final allocation in one pass.
 *
 * Not every cell or heap byte need be reachable from the root: a slice
 * (aemp__msg_slice) is a copy of the whole block with the root re-pointed
 * past the elements it drops.  Code that reads a message walks it from
 * the root; ncells and heaplen give the size of the block, not the number
 * of values in it.
 */
#ifndef AEMP_MSG_INTERNAL_H
#define AEMP_MSG_INTERNAL_H

#include "aemp_msg.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct aemp_val {
    uint8_t type;        /* aemp_type_t */
    uint8_t pad[3];
    uint32_t n;          /* STR/BYTES: length; ARRAY: elements; MAP: pairs */
    union {
        int64_t i;       /* BOOL (0/1), INT */
        uint64_t u;      /* UINT */
        double d;        /* DOUBLE */
        uint64_t off;    /* STR/BYTES: byte offset from this cell to the data;
                            ARRAY/MAP: cell offset to the first child
                            (builder: number of cells in the subtree) */
    } v;
};
_Static_assert(offsetof(struct aemp_val, n) == 4 && offsetof(struct aemp_val, v) == 8 &&
                   sizeof(struct aemp_val) == 16,
               "cell layout (aemp__cell_set)");

/* Set cell c to type, n and the 8 bytes v (pad zeroed): the first half in
 * one store where the layout allows. */
static inline void aemp__cell_set(struct aemp_val *c, uint8_t type, uint32_t n, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t head = type | (uint64_t)n << 32;   /* type, pad[3] = 0, n */
    memcpy(c, &head, sizeof head);
#else
    c->type = type;
    memset(c->pad, 0, sizeof c->pad);
    c->n = n;
#endif
    c->v.u = v;
}

/* Copy n bytes from src to dst (not overlapping): up to 16 bytes with
 * two overlapping loads and stores of the largest fitting width instead
 * of a call (most strings of a message are short), more with memcpy. */
static inline __attribute__((always_inline)) void aemp__copy_small(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n < 4) {
        if (n) {
            d[0] = s[0];
            d[n / 2] = s[n / 2];
            d[n - 1] = s[n - 1];
        }
    } else {
        memcpy(d, s, n);
    }
}

struct aemp_msg {
    uint32_t refs;
    uint32_t ncells;
    uint32_t heaplen;    /* bytes of string heap after the cells */
    uint32_t flags;
    struct aemp_val cells[];
};

/* Longest string a message may hold (the n field). */
#define AEMP_MSG_MAX_STR UINT32_MAX

struct aemp_build {
    struct aemp_val *cells;     /* pre-order */
    uint32_t ncells, capcells;
    char *heap;
    size_t heaplen, capheap;
    uint32_t open[AEMP_MSG_MAX_DEPTH];  /* cell index of each open container */
    int depth;                  /* open containers (the implicit top array not counted) */
    int maxdepth;               /* depth allowed for containers (AEMP_MSG_MAX_DEPTH) */
    int deepest;                /* deepest nesting so far: a message (whose array
                                   adds a level) must stay below maxdepth */
    uint32_t ntop;              /* values at the top level */
    bool expect_key;            /* innermost open container is a map awaiting a key */
    int err;                    /* first error (AEMP_E*), sticky */
    char errtext[96];
    struct aemp_build *next_free;
};

/* Reset b for a new message (keeping its storage).  The maximum depth is
 * AEMP_MSG_MAX_DEPTH for a message (aemp_build_msg) built from b. */
void aemp__build_reset(aemp_build_t *b);

/* Make room in b for `cells` more values and `heap` more bytes of strings
 * (their NULs included), so that building a large message of known size
 * grows b's storage once instead of once per doubling (each doubling
 * copies what was built and touches fresh memory).  A hint: building
 * more still works, and an impossible size is left to the builder's own
 * checks. */
void aemp__build_reserve(aemp_build_t *b, size_t cells, size_t heap);

/* Reserve a string of len bytes (type AEMP_T_STR or AEMP_T_BYTES) and
 * return where its bytes go (len + 1 writable, the NUL is set by the
 * builder); NULL after an error.  For decoders that unescape in place. */
char *aemp__build_str_space(aemp_build_t *b, aemp_type_t type, size_t len);

/* Shrink the string added last to len bytes (len <= what was reserved). */
void aemp__build_str_shrink(aemp_build_t *b, size_t len);

/* Record an error (first one wins) with a text for aemp__build_error. */
void aemp__build_fail(aemp_build_t *b, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The text of the builder's error ("" if none). */
const char *aemp__build_error(const aemp_build_t *b);

/* Finish like aemp_build_msg but keep b for reuse (the caller resets it or
 * returns it with aemp_build_abort).  NULL after an error. */
aemp_msg_t *aemp__build_take_msg(aemp_build_t *b);

/* String bytes of a STR/BYTES cell. */
static inline const char *aemp__val_strp(const struct aemp_val *v)
{
    return (const char *)v + v->v.off;
}

/* First child of an ARRAY/MAP cell of a finished message. */
static inline const struct aemp_val *aemp__val_child(const struct aemp_val *v)
{
    return v + v->v.off;
}

/* Add a scalar value (NULL, BOOL, INT, UINT or DOUBLE) given as a cell
 * whose type and v are set (INT/UINT as aemp_build_uint leaves them: UINT
 * only above INT64_MAX) to b.  For decoders that decode a scalar once for
 * either a builder or a flat message.  0, or b's error. */
int aemp__build_scalar(aemp_build_t *b, const struct aemp_val *c);

/* Make c the string cell (type AEMP_T_STR or AEMP_T_BYTES) of s[0..len),
 * whose bytes and NUL are written at h, in the heap of c's message block;
 * returns the heap byte after the NUL.  (len fits the cell's 32 bits.) */
static inline char *aemp__cell_str_at(struct aemp_val *c, uint8_t type, const void *s, size_t len, char *h)
{
    aemp__cell_set(c, type, (uint32_t)len, 0);
    aemp__copy_small(h, s, len);
    h[len] = 0;
    c->v.off = (uint64_t)(h - (char *)c);
    return h + len + 1;
}

/* A new flat message: root array of n elements, cells[1..n] and `heaplen`
 * heap bytes uninitialised for the caller to write (every byte of them:
 * pad zero, offsets relative); the caller may lower heaplen when it used
 * less heap than it asked for.  NULL if n or heaplen do not fit the
 * 32-bit fields. */
aemp_msg_t *aemp__msg_new_flat(size_t n, size_t heaplen);

/* aemp__msg_new_flat that also tells in *room how many heap bytes the
 * block really holds (>= heaplen: a small block is rounded up to its
 * size class): a decoder that does not know the heap's size yet may
 * write up to *room bytes and then set heaplen to what it used. */
aemp_msg_t *aemp__msg_new_flat_room(size_t n, size_t heaplen, size_t *room);

/* A flat message read off a format and its arguments before it is laid
 * out: the elements (scalars and strings, at most AEMP_FLAT_MAX) as cells
 * of the message, except that a string's bytes are still the caller's, at
 * strs[i] (its length in the cell).  Valid as long as those arguments. */
#define AEMP_FLAT_MAX 16
typedef struct aemp_flat {
    struct aemp_val cells[AEMP_FLAT_MAX];
    const char *strs[AEMP_FLAT_MAX];
    uint32_t n;
    size_t heap;               /* string bytes of the message, NULs counted */
} aemp_flat_t;

/* One element of a flat format as aemp__flat_next reads it: a cell's
 * type, length and 8 bytes (aemp__cell_set), and for a string its bytes,
 * still the caller's. */
typedef struct aemp_flat_elem {
    uint8_t type;
    uint32_t len;
    uint64_t v;
    const char *str;
} aemp_flat_elem_t;

/* Read the element of a flat format at *fmt (after any ' ' or ','),
 * taking its arguments from *ap, and advance *fmt past it: 1 with *e set,
 * 0 at the end of the format, -1 if the format holds something else here
 * (an array, a map, a message, an unknown letter, or a string of
 * AEMP_MSG_MAX_STR bytes or more: the builder reports those).  The one
 * reading of the flat formats, shared by the scan below and the encoders
 * that write a frame straight from a format (frame.c). */
static inline __attribute__((always_inline)) int aemp__flat_next(const char **fmt, va_list *ap,
                                                                  aemp_flat_elem_t *e)
{
    const char *f = *fmt;
    while (*f == ' ' || *f == ',')
        f++;
    e->type = AEMP_T_NULL;
    e->len = 0;
    e->v = 0;
    switch (*f) {
    case 0:
        *fmt = f;
        return 0;
    case 'n':
        break;
    case 'b':
        e->type = AEMP_T_BOOL;
        e->v = va_arg(*ap, int) != 0;
        break;
    case 'i':
        e->type = AEMP_T_INT;
        e->v = (uint64_t)(int64_t)va_arg(*ap, int);
        break;
    case 'I':
        e->type = AEMP_T_INT;
        e->v = (uint64_t)va_arg(*ap, int64_t);
        break;
    case 'u':
        e->v = va_arg(*ap, uint64_t);
        e->type = e->v <= INT64_MAX ? AEMP_T_INT : AEMP_T_UINT;
        break;
    case 'f': {
        double d = va_arg(*ap, double);
        e->type = AEMP_T_DOUBLE;
        memcpy(&e->v, &d, sizeof e->v);
        break;
    }
    case 's': {
        const char *str = va_arg(*ap, const char *);
        size_t sl;
        if (f[1] == '#') {
            sl = va_arg(*ap, size_t);
            f++;
        } else {
            sl = str ? strlen(str) : 0;
        }
        if (!str)   /* null */
            break;
        if (sl >= AEMP_MSG_MAX_STR)
            return -1;
        e->type = AEMP_T_STR;
        e->len = (uint32_t)sl;
        e->str = str;
        break;
    }
    default:
        return -1;
    }
    *fmt = f + 1;
    return 1;
}

/* Scan fmt and its arguments (a copy of ap; ap is left untouched) into f:
 * 0, or -1 if the format is not flat (then aemp_vmsgf's builder takes it,
 * with its error reporting). */
int aemp__flat_scan(aemp_flat_t *f, const char *fmt, va_list ap);

/* The message of a scanned format (a new reference), or NULL. */
aemp_msg_t *aemp__flat_msg(const aemp_flat_t *f);

/* aemp_vmsgf through the builder alone, for a format aemp__flat_scan has
 * already found not to be flat. */
aemp_msg_t *aemp__vmsgf_built(const char *fmt, va_list ap);

/* Relays.  The results of these three share no memory with m (borrowed)
 * and keep its values exactly, in one copy of m's block with no work per
 * element beyond the prefix noted; they may keep cells and heap bytes of
 * m that no element reaches any more (ncells and heaplen then count
 * them: aemp__msg_size is the real size of the block).  NULL only if the
 * result would be too large (a string of AEMP_MSG_MAX_STR bytes, or
 * counts beyond 32 bits). */

/* A new message whose root array holds a string s[0..len) followed by the
 * elements of m (NULL or a root that is no array: none): used to prepend a
 * tag or port. */
aemp_msg_t *aemp__msg_prepend_str(const char *s, size_t len, const aemp_msg_t *m);

/* A new message: the elements of m from element `from` on (the root
 * re-pointed in a copy of the block).  No elements left: the shared empty
 * message. */
aemp_msg_t *aemp__msg_slice(const aemp_msg_t *m, size_t from);

/* The same, taking over the caller's reference to m: when that is the
 * only one, m itself is re-pointed (no copy; with no elements left too,
 * so that pointers into m stay valid) and returned; otherwise a slice as
 * above, and m's reference is dropped. */
aemp_msg_t *aemp__msg_slice_own(aemp_msg_t *m, size_t from);

/* 1 if the caller's reference to m is its only one (m is not shared):
 * aemp__msg_slice_own then re-points m instead of copying it. */
int aemp__msg_sole(const aemp_msg_t *m);

/* 1 if m is one of the shared static messages (never freed). */
int aemp__msg_is_shared(const aemp_msg_t *m);

/* A new message: the elements of m followed by the string s[0..len) (the
 * top-level elements of m adjusted, O(their number)). */
aemp_msg_t *aemp__msg_append_str(const aemp_msg_t *m, const char *s, size_t len);

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF). */
int aemp__utf8_valid(const uint8_t *s, size_t n);

/* Length of the valid UTF-8 sequence of a non-ASCII lead byte at s[0]
 * (n bytes available): 2, 3 or 4, or 0 if it is invalid or cut short
 * (overlong forms, surrogates, above U+10FFFF). */
size_t aemp__utf8_seq(const uint8_t *s, size_t n);

/* The shortest of %.15g/%.16g/%.17g that reads back as v, always with a
 * '.' or an exponent ("1.0"); "nan", "inf", "-inf" for non-finite values.
 * out needs 32 bytes.  Returns the length. */
size_t aemp__fmt_double(char *out, double v);

/* Bytes the message occupies (header, cells, heap). */
size_t aemp__msg_size(const aemp_msg_t *m);

#endif
