/* msg.c - the message value type: builder, finished layout, read-only
 * views, comparison and text (see aemp_msg.h for the contract and msg.h for
 * the representation).
 */
#include "msg.h"
#include "asan.h"
#include "internal.h"   /* aemp__msg_text */

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Builders kept for reuse, and the storage a recycled builder may keep
 * (a builder that grew beyond it gives its memory back). */
#define BUILD_CACHE 4
#define BUILD_KEEP_CELLS 4096
#define BUILD_KEEP_HEAP (64u << 10)

static aemp_build_t *free_builders;
static int n_free_builders;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p && n)
        abort();
    return p;
}

const char *aemp_type_name(aemp_type_t t)
{
    static const char *const names[] = {
        "null", "bool", "int", "uint", "double", "str", "bytes", "array", "map",
    };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---------------------------------------------------------- block cache */

/* Small message blocks are kept for reuse instead of going back to malloc:
 * a connection decodes all the frames of a read (a thousand or so) before
 * their ports run and free them, so the blocks are freed in batches
 * larger than malloc's per-thread cache, and the general free and malloc
 * paths cost more than the decoding of such a message.  Blocks of up to
 * MSG_GRAIN * MSG_CLASSES bytes are allocated at the full size of their
 * class (their size rounded up to a multiple of MSG_GRAIN); a freed block
 * goes to the class of its message's size (aemp__msg_size), which never
 * exceeds what the block holds.  At most MSG_CACHE_BYTES in all are kept
 * (enough for a burst of ten thousand small messages, which a port that
 * sends in batches produces before its receiver runs), each class as a
 * list linked through its blocks (the link in the block's last word, so
 * taking or giving back a block is a few instructions and touches no
 * other memory): under AddressSanitizer a kept block is poisoned whole
 * but for that link (a use of the header or the cells after the last
 * unref is still reported) and stays visible to the leak checker.  (One
 * thread: see DESIGN.md.) */
#define MSG_GRAIN 64
#define MSG_CLASSES 4
#define MSG_CACHE_BYTES (2u << 20)


static void *block_list[MSG_CLASSES];   /* kept blocks of each class */
static size_t block_cache_bytes;

/* Where a kept block of `size` bytes holds the next one of its class: its
 * last word, which most messages leave unused (a header or cell is never
 * there, so their use after the last unref is reported). */
static inline void **block_link(void *b, size_t size)
{
    return (void **)((char *)b + size - sizeof(void *));
}

/* The size class of a block of `bytes` bytes (MSG_CLASSES: none, it is
 * too big to be cached); *size gets what a block of that class holds
 * (bytes itself for one of none). */
static inline size_t block_class(size_t bytes, size_t *size)
{
    if (bytes > MSG_GRAIN * MSG_CLASSES) {
        *size = bytes;
        return MSG_CLASSES;
    }
    size_t c = (bytes - 1) / MSG_GRAIN;
    *size = (c + 1) * MSG_GRAIN;
    return c;
}

/* A block of at least `bytes` bytes for a message (from the cache if one
 * of its class is kept).  Aborts on no memory. */
static void *block_alloc(size_t bytes)
{
    size_t size, c = block_class(bytes, &size);
    if (c < MSG_CLASSES && block_list[c]) {
        void *b = block_list[c];
        block_list[c] = *block_link(b, size);
        block_cache_bytes -= size;
        UNPOISON(b, size);
        return b;
    }
    void *p = malloc(size);
    if (!p)
        abort();
    return p;
}

/* Give the block of message m (no references left) back: to the cache if
 * it is small and the cache has room, else to malloc. */
static void block_free(aemp_msg_t *m)
{
    size_t size, c = block_class(aemp__msg_size(m), &size);
    if (c < MSG_CLASSES && block_cache_bytes + size <= MSG_CACHE_BYTES) {
        *block_link(m, size) = block_list[c];
        block_list[c] = m;
        block_cache_bytes += size;
        POISON(m, size);
        UNPOISON(block_link(m, size), sizeof(void *));
        return;
    }
    free(m);
}

/* ------------------------------------------------------------ references */

#define MSG_STATIC 1u   /* flags: never freed (the shared empty message) */

aemp_msg_t *aemp_msg_ref(aemp_msg_t *m)
{
    if (m && !(m->flags & MSG_STATIC))
        m->refs++;
    return m;
}

void aemp_msg_unref(aemp_msg_t *m)
{
    if (!m || (m->flags & MSG_STATIC))
        return;
    if (--m->refs == 0)
        block_free(m);
}

size_t aemp__msg_size(const aemp_msg_t *m)
{
    return sizeof *m + (size_t)m->ncells * sizeof(struct aemp_val) + m->heaplen;
}

/* A new message of ncells cells and heaplen heap bytes, one reference,
 * cells and heap uninitialised (the caller writes every byte); NULL if a
 * count does not fit the 32-bit header fields.  Aborts on no memory. */
static aemp_msg_t *msg_alloc(size_t ncells, size_t heaplen)
{
    if (ncells > UINT32_MAX || heaplen > UINT32_MAX)
        return NULL;
    aemp_msg_t *m = block_alloc(sizeof *m + ncells * sizeof(struct aemp_val) + heaplen);
    m->refs = 1;
    m->ncells = (uint32_t)ncells;
    m->heaplen = (uint32_t)heaplen;
    m->flags = 0;
    return m;
}

aemp_msg_t *aemp__msg_new_flat(size_t n, size_t heaplen)
{
    if (n >= UINT32_MAX)
        return NULL;
    aemp_msg_t *m = msg_alloc(n + 1, heaplen);
    if (!m)
        return NULL;
    aemp__cell_set(&m->cells[0], AEMP_T_ARRAY, (uint32_t)n, 1);   /* children from cell 1 */
    return m;
}

aemp_msg_t *aemp__msg_new_flat_room(size_t n, size_t heaplen, size_t *room)
{
    aemp_msg_t *m = aemp__msg_new_flat(n, heaplen);
    if (!m)
        return NULL;
    size_t bytes = aemp__msg_size(m), size;
    block_class(bytes, &size);
    size_t extra = size - bytes;
    if (extra > UINT32_MAX - heaplen)
        extra = 0;
    *room = heaplen + extra;
    return m;
}

/* A shared static message of one cell (the empty message [], null, false,
 * true).  A struct with a flexible array member may not be part of
 * another struct in ISO C, but it may be a union member: `init` lays out
 * the header and the root cell, `m` is the view of it. */
struct static_layout {
    uint32_t refs, ncells, heaplen, flags;
    struct aemp_val root;
};
_Static_assert(offsetof(aemp_msg_t, cells) == offsetof(struct static_layout, root),
               "a static message's root is its cells[0]");

typedef union {
    aemp_msg_t m;
    struct static_layout init;
} static_msg_t;

static static_msg_t empty_msg = {
    .init = { 1, 1, 0, MSG_STATIC, { AEMP_T_ARRAY, { 0 }, 0, { .off = 1 } } },
};

aemp_msg_t *aemp_msg_empty(void)
{
    return &empty_msg.m;
}

/* The shared messages whose root is null, false or true: a copy of such a
 * value (a database entry's usual value) costs no allocation. */
static static_msg_t scalar_msg[3] = {
    { .init = { 1, 1, 0, MSG_STATIC, { AEMP_T_NULL, { 0 }, 0, { .i = 0 } } } },
    { .init = { 1, 1, 0, MSG_STATIC, { AEMP_T_BOOL, { 0 }, 0, { .i = 0 } } } },
    { .init = { 1, 1, 0, MSG_STATIC, { AEMP_T_BOOL, { 0 }, 0, { .i = 1 } } } },
};

/* -------------------------------------------------------------- builder */

void aemp__build_reset(aemp_build_t *b)
{
    b->ncells = 0;
    b->heaplen = 0;
    b->depth = 0;
    b->maxdepth = AEMP_MSG_MAX_DEPTH;
    b->deepest = 0;
    b->ntop = 0;
    b->expect_key = false;
    b->err = 0;
    b->errtext[0] = 0;
}

aemp_build_t *aemp_build_new(void)
{
    aemp_build_t *b = free_builders;
    if (b) {
        free_builders = b->next_free;
        n_free_builders--;
    } else {
        b = calloc(1, sizeof *b);
        if (!b)
            abort();
    }
    aemp__build_reset(b);
    return b;
}

void aemp_build_abort(aemp_build_t *b)
{
    if (!b)
        return;
    if (n_free_builders >= BUILD_CACHE || b->capcells > BUILD_KEEP_CELLS || b->capheap > BUILD_KEEP_HEAP) {
        if (n_free_builders >= BUILD_CACHE) {
            free(b->cells);
            free(b->heap);
            free(b);
            return;
        }
        free(b->cells);
        free(b->heap);
        b->cells = NULL;
        b->heap = NULL;
        b->capcells = 0;
        b->capheap = 0;
    }
    b->next_free = free_builders;
    free_builders = b;
    n_free_builders++;
}

void aemp__build_fail(aemp_build_t *b, int err, const char *fmt, ...)
{
    if (b->err)
        return;
    b->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->errtext, sizeof b->errtext, fmt, ap);
    va_end(ap);
}

const char *aemp__build_error(const aemp_build_t *b)
{
    return b->errtext;
}

/* A new cell of `type` in the innermost open container (or the top level),
 * with the map key/value alternation checked; NULL after an error. */
static struct aemp_val *add(aemp_build_t *b, aemp_type_t type)
{
    if (b->err)
        return NULL;
    if (b->depth) {
        struct aemp_val *c = &b->cells[b->open[b->depth - 1]];
        if (c->type == AEMP_T_MAP) {
            if (b->expect_key) {
                if (type != AEMP_T_STR && type != AEMP_T_BYTES) {
                    aemp__build_fail(b, AEMP_ETYPE, "map key must be a string, not %s", aemp_type_name(type));
                    return NULL;
                }
                b->expect_key = false;
            } else {
                b->expect_key = true;
                c->n++;
            }
        } else {
            c->n++;
        }
    } else {
        b->ntop++;
    }
    if (b->ncells == b->capcells) {
        if (b->capcells >= UINT32_MAX / 2) {
            aemp__build_fail(b, AEMP_ELIMIT, "message has too many values");
            return NULL;
        }
        b->capcells = b->capcells ? b->capcells * 2 : 64;
        b->cells = xrealloc(b->cells, (size_t)b->capcells * sizeof *b->cells);
    }
    struct aemp_val *v = &b->cells[b->ncells++];
    v->type = (uint8_t)type;
    memset(v->pad, 0, sizeof v->pad);   /* a message holds no uninitialised bytes */
    v->n = 0;
    v->v.u = 0;
    return v;
}

int aemp_build_null(aemp_build_t *b)
{
    return add(b, AEMP_T_NULL) ? 0 : b->err;
}

int aemp_build_bool(aemp_build_t *b, int x)
{
    struct aemp_val *v = add(b, AEMP_T_BOOL);
    if (!v)
        return b->err;
    v->v.i = x != 0;
    return 0;
}

int aemp_build_int(aemp_build_t *b, int64_t x)
{
    struct aemp_val *v = add(b, AEMP_T_INT);
    if (!v)
        return b->err;
    v->v.i = x;
    return 0;
}

int aemp_build_uint(aemp_build_t *b, uint64_t x)
{
    if (x <= INT64_MAX)
        return aemp_build_int(b, (int64_t)x);
    struct aemp_val *v = add(b, AEMP_T_UINT);
    if (!v)
        return b->err;
    v->v.u = x;
    return 0;
}

int aemp_build_double(aemp_build_t *b, double x)
{
    struct aemp_val *v = add(b, AEMP_T_DOUBLE);
    if (!v)
        return b->err;
    v->v.d = x;
    return 0;
}

int aemp__build_scalar(aemp_build_t *b, const struct aemp_val *c)
{
    struct aemp_val *v = add(b, (aemp_type_t)c->type);
    if (!v)
        return b->err;
    v->v = c->v;
    return 0;
}

void aemp__build_reserve(aemp_build_t *b, size_t cells, size_t heap)
{
    if (b->err)
        return;
    /* at least doubling, so that many reservations cost what doubling does */
    if (b->ncells < UINT32_MAX / 4 && cells < UINT32_MAX / 4 - b->ncells && b->ncells + cells > b->capcells) {
        size_t cap = b->ncells + cells, twice = (size_t)b->capcells * 2;
        b->capcells = (uint32_t)(cap > twice || twice >= UINT32_MAX / 2 ? cap : twice);
        b->cells = xrealloc(b->cells, (size_t)b->capcells * sizeof *b->cells);
    }
    if (heap < AEMP_MSG_MAX_STR && b->heaplen + heap + 1 > b->capheap) {
        size_t cap = b->heaplen + heap + 1, twice = b->capheap * 2;
        b->capheap = cap > twice ? cap : twice;
        b->heap = xrealloc(b->heap, b->capheap);
    }
}

char *aemp__build_str_space(aemp_build_t *b, aemp_type_t type, size_t len)
{
    if (b->err)
        return NULL;
    if (len >= AEMP_MSG_MAX_STR) {
        aemp__build_fail(b, AEMP_ELIMIT, "string of %zu bytes is too long", len);
        return NULL;
    }
    struct aemp_val *v = add(b, type);
    if (!v)
        return NULL;
    if (b->capheap - b->heaplen < len + 1) {
        size_t cap = b->capheap ? b->capheap : 1024;
        while (cap - b->heaplen < len + 1)
            cap *= 2;
        b->heap = xrealloc(b->heap, cap);
        b->capheap = cap;
    }
    v->n = (uint32_t)len;
    v->v.off = b->heaplen;
    char *p = b->heap + b->heaplen;
    p[len] = 0;
    b->heaplen += len + 1;
    return p;
}

void aemp__build_str_shrink(aemp_build_t *b, size_t len)
{
    if (b->err || !b->ncells)
        return;
    struct aemp_val *v = &b->cells[b->ncells - 1];
    if ((v->type != AEMP_T_STR && v->type != AEMP_T_BYTES) || len > v->n)
        return;
    v->n = (uint32_t)len;
    b->heaplen = v->v.off + len + 1;
    b->heap[b->heaplen - 1] = 0;
}

int aemp_build_strn(aemp_build_t *b, const char *s, size_t len)
{
    char *p = aemp__build_str_space(b, AEMP_T_STR, len);
    if (!p)
        return b->err;
    if (len)   /* s may be NULL for an empty string */
        memcpy(p, s, len);
    return 0;
}

int aemp_build_str(aemp_build_t *b, const char *s)
{
    if (!s)
        return aemp_build_null(b);
    return aemp_build_strn(b, s, strlen(s));
}

int aemp_build_bytes(aemp_build_t *b, const void *s, size_t len)
{
    char *p = aemp__build_str_space(b, AEMP_T_BYTES, len);
    if (!p)
        return b->err;
    if (len)
        memcpy(p, s, len);
    return 0;
}

static int open_container(aemp_build_t *b, aemp_type_t type)
{
    if (b->err)
        return b->err;
    if (b->depth >= b->maxdepth) {
        aemp__build_fail(b, AEMP_ELIMIT, "nested deeper than %d levels", AEMP_MSG_MAX_DEPTH);
        return b->err;
    }
    if (!add(b, type))
        return b->err;
    b->open[b->depth++] = b->ncells - 1;
    if (b->depth > b->deepest)
        b->deepest = b->depth;
    b->expect_key = type == AEMP_T_MAP;
    return 0;
}

int aemp_build_array(aemp_build_t *b)
{
    return open_container(b, AEMP_T_ARRAY);
}

int aemp_build_map(aemp_build_t *b)
{
    return open_container(b, AEMP_T_MAP);
}

int aemp_build_close(aemp_build_t *b)
{
    if (b->err)
        return b->err;
    if (!b->depth) {
        aemp__build_fail(b, AEMP_EINVAL, "close without an open array or map");
        return b->err;
    }
    uint32_t at = b->open[--b->depth];
    struct aemp_val *c = &b->cells[at];
    if (c->type == AEMP_T_MAP && !b->expect_key) {
        aemp__build_fail(b, AEMP_EINVAL, "map key without a value");
        return b->err;
    }
    c->v.off = b->ncells - at - 1;   /* span */
    /* the closed container was a value: in a map the next item is a key */
    b->expect_key = b->depth && b->cells[b->open[b->depth - 1]].type == AEMP_T_MAP;
    return 0;
}

/* ------------------------------------------------------------ finishing */

/* Copy the children of source container cells (pre-order, from index s,
 * `count` cells at this level) into F at slot *next, breadth-first: a
 * container child keeps its source index in v.off until it is expanded. */
static void place_children(const aemp_build_t *b, struct aemp_val *F, uint32_t q, uint32_t s,
                           uint32_t count, uint32_t *next, size_t heap_at)
{
    F[q].v.off = *next - q;
    for (uint32_t k = 0; k < count; k++) {
        const struct aemp_val *src = &b->cells[s];
        uint32_t o = (*next)++;
        F[o] = *src;
        if (src->type == AEMP_T_ARRAY || src->type == AEMP_T_MAP) {
            F[o].v.off = s;
            s += 1 + (uint32_t)src->v.off;
        } else {
            if (src->type == AEMP_T_STR || src->type == AEMP_T_BYTES)
                F[o].v.off = heap_at - (size_t)o * sizeof *F + src->v.off;
            s++;
        }
    }
}

/* Lay the builder's cells out into a new message.  as_array: the root is
 * a new array of the top-level values; else the root is the single
 * top-level value. */
static aemp_msg_t *finish(aemp_build_t *b, int as_array)
{
    if (!b->err && b->depth)
        aemp__build_fail(b, AEMP_EINVAL, "%d array(s) or map(s) left open", b->depth);
    if (!b->err && as_array && b->deepest >= AEMP_MSG_MAX_DEPTH)
        aemp__build_fail(b, AEMP_ELIMIT, "nested deeper than %d levels", AEMP_MSG_MAX_DEPTH);
    if (!b->err && !as_array && b->ntop != 1)
        aemp__build_fail(b, AEMP_EINVAL, "a single value was expected, not %" PRIu32, b->ntop);
    if (b->err)
        return NULL;
    size_t total = (size_t)b->ncells + (as_array ? 1 : 0);
    size_t cells_bytes = total * sizeof(struct aemp_val);
    int flat = as_array && !b->deepest;
    aemp_msg_t *m = flat ? aemp__msg_new_flat(b->ncells, b->heaplen) : msg_alloc(total, b->heaplen);
    if (!m) {
        aemp__build_fail(b, AEMP_ELIMIT, "message too large");
        return NULL;
    }
    struct aemp_val *F = m->cells;
    if (b->heaplen)
        memcpy((char *)F + cells_bytes, b->heap, b->heaplen);
    uint32_t next = 1;
    if (flat) {
        /* flat: pre-order is already the final order (the root is set);
         * only the string offsets change (they become relative to their
         * cells) */
        if (b->ncells)
            memcpy(F + 1, b->cells, (size_t)b->ncells * sizeof *F);
        for (uint32_t q = 1; q < total; q++)
            if (F[q].type == AEMP_T_STR || F[q].type == AEMP_T_BYTES)
                F[q].v.off += cells_bytes - (size_t)q * sizeof *F;
        return m;
    }
    if (as_array) {
        F[0].type = AEMP_T_ARRAY;
        memset(F[0].pad, 0, sizeof F[0].pad);
        F[0].n = b->ntop;
        place_children(b, F, 0, 0, b->ntop, &next, cells_bytes);
    } else {
        F[0] = b->cells[0];
        if (F[0].type == AEMP_T_STR || F[0].type == AEMP_T_BYTES)
            F[0].v.off = cells_bytes + b->cells[0].v.off;
        else if (F[0].type == AEMP_T_ARRAY || F[0].type == AEMP_T_MAP)
            place_children(b, F, 0, 1, F[0].type == AEMP_T_MAP ? 2 * F[0].n : F[0].n, &next, cells_bytes);
    }
    for (uint32_t q = 1; q < total; q++) {
        struct aemp_val *c = &F[q];
        if (c->type == AEMP_T_ARRAY || c->type == AEMP_T_MAP) {
            uint32_t s = (uint32_t)c->v.off;
            place_children(b, F, q, s + 1, c->type == AEMP_T_MAP ? 2 * c->n : c->n, &next, cells_bytes);
        }
    }
    return m;
}

aemp_msg_t *aemp__build_take_msg(aemp_build_t *b)
{
    return finish(b, 1);
}

aemp_msg_t *aemp_build_msg(aemp_build_t *b)
{
    aemp_msg_t *m = finish(b, 1);
    aemp_build_abort(b);
    return m;
}

aemp_msg_t *aemp_build_root(aemp_build_t *b)
{
    aemp_msg_t *m = finish(b, 0);
    aemp_build_abort(b);
    return m;
}

/* ------------------------------------------------------------ deep copy */

int aemp_build_val(aemp_build_t *b, const aemp_val_t *v)
{
    if (!v)
        return aemp_build_null(b);
    switch ((aemp_type_t)v->type) {
    case AEMP_T_NULL:
        return aemp_build_null(b);
    case AEMP_T_BOOL:
        return aemp_build_bool(b, (int)v->v.i);
    case AEMP_T_INT:
        return aemp_build_int(b, v->v.i);
    case AEMP_T_UINT:
        return aemp_build_uint(b, v->v.u);
    case AEMP_T_DOUBLE:
        return aemp_build_double(b, v->v.d);
    case AEMP_T_STR:
    case AEMP_T_BYTES: {
        char *p = aemp__build_str_space(b, (aemp_type_t)v->type, v->n);
        if (!p)
            return b->err;
        memcpy(p, aemp__val_strp(v), v->n);
        return 0;
    }
    case AEMP_T_ARRAY:
    case AEMP_T_MAP: {
        if (open_container(b, (aemp_type_t)v->type))
            return b->err;
        const struct aemp_val *c = aemp__val_child(v);
        uint32_t k = v->type == AEMP_T_MAP ? 2 * v->n : v->n;
        for (uint32_t i = 0; i < k; i++)
            if (aemp_build_val(b, c + i))
                return b->err;
        return aemp_build_close(b);
    }
    }
    aemp__build_fail(b, AEMP_EINVAL, "corrupt value");
    return b->err;
}

aemp_msg_t *aemp_msg_copy_val(const aemp_val_t *v)
{
    if (!v || v->type == AEMP_T_NULL)
        return &scalar_msg[0].m;
    if (v->type == AEMP_T_BOOL)
        return &scalar_msg[v->v.i ? 2 : 1].m;
    aemp_build_t *b = aemp_build_new();
    b->maxdepth = AEMP_MSG_MAX_DEPTH;
    aemp_build_val(b, v);
    return aemp_build_root(b);
}

/* A new message: the elements of m's root array (borrowed) with the
 * string s[0..len) inserted as element `at` (at most aemp_msg_len(m)); a
 * NULL m or another root counts as no elements.  m's block is copied
 * whole, the new cell goes in at its place in the breadth-first order and
 * the heap grows by the string at its end: the cells after that place and
 * the heap move by one cell each, so their relative offsets hold, and only
 * the `at` elements before it (which now reach one cell further to their
 * children and their strings) are adjusted.  Cells of m no element
 * reaches (left by aemp__msg_slice) are copied as they are and stay
 * unreached.  NULL if the message would be too large. */
static aemp_msg_t *insert_str(const aemp_msg_t *m, size_t at, const char *s, size_t len)
{
    if (len >= AEMP_MSG_MAX_STR)
        return NULL;
    if (!m || m->cells[0].type != AEMP_T_ARRAY)
        m = aemp_msg_empty();
    const struct aemp_val *root = &m->cells[0];
    size_t q = (size_t)root->v.off + at;   /* the new cell's index */
    aemp_msg_t *r = msg_alloc((size_t)m->ncells + 1, (size_t)m->heaplen + len + 1);
    if (!r)
        return NULL;
    struct aemp_val *F = r->cells;
    memcpy(F, m->cells, q * sizeof *F);
    /* the cells from q on and the heap are contiguous in both blocks */
    memcpy(F + q + 1, m->cells + q, (m->ncells - q) * sizeof *F + m->heaplen);
    F[0].n = root->n + 1;
    for (size_t i = (size_t)root->v.off; i < q; i++) {
        if (F[i].type == AEMP_T_ARRAY || F[i].type == AEMP_T_MAP)
            F[i].v.off += 1;
        else if (F[i].type == AEMP_T_STR || F[i].type == AEMP_T_BYTES)
            F[i].v.off += sizeof *F;
    }
    char *heap_end = (char *)(F + r->ncells) + m->heaplen;
    struct aemp_val *c = &F[q];
    c->type = AEMP_T_STR;
    memset(c->pad, 0, sizeof c->pad);
    c->n = (uint32_t)len;
    c->v.off = (uint64_t)(heap_end - (char *)c);
    if (len)   /* s may be NULL for an empty string */
        memcpy(heap_end, s, len);
    heap_end[len] = 0;
    return r;
}

aemp_msg_t *aemp__msg_prepend_str(const char *s, size_t len, const aemp_msg_t *m)
{
    return insert_str(m, 0, s, len);
}

aemp_msg_t *aemp__msg_append_str(const aemp_msg_t *m, const char *s, size_t len)
{
    return insert_str(m, aemp_msg_len(m), s, len);
}

aemp_msg_t *aemp__msg_slice(const aemp_msg_t *m, size_t from)
{
    size_t n = aemp_msg_len(m);
    if (from >= n)
        return aemp_msg_empty();
    aemp_msg_t *r = msg_alloc(m->ncells, m->heaplen);
    memcpy(r->cells, m->cells, (size_t)m->ncells * sizeof *r->cells + m->heaplen);
    r->cells[0].n = (uint32_t)(n - from);
    r->cells[0].v.off += from;
    return r;
}

int aemp__msg_is_shared(const aemp_msg_t *m)
{
    return m && (m->flags & MSG_STATIC);
}

int aemp__msg_sole(const aemp_msg_t *m)
{
    return m && m->refs == 1 && !(m->flags & MSG_STATIC);
}

aemp_msg_t *aemp__msg_slice_own(aemp_msg_t *m, size_t from)
{
    size_t n = aemp_msg_len(m);
    if (!aemp__msg_sole(m) || m->cells[0].type != AEMP_T_ARRAY) {
        aemp_msg_t *r = aemp__msg_slice(m, from);
        aemp_msg_unref(m);
        return r;
    }
    if (from > n)
        from = n;   /* no elements left: still m, so what the caller read of it stays */
    m->cells[0].n = (uint32_t)(n - from);
    m->cells[0].v.off += from;
    return m;
}

/* Append the elements i >= from of m's root array to b. */
static void build_elements(aemp_build_t *b, const aemp_msg_t *m, size_t from)
{
    size_t n = aemp_msg_len(m);
    for (size_t i = from; i < n; i++)
        aemp_build_val(b, aemp_msg_at(m, i));
}

/* --------------------------------------------------------------- format */

/* Build values from fmt; ap is advanced. */
static int vfmt(aemp_build_t *b, const char *fmt, va_list *ap)
{
    for (const char *f = fmt; *f && !b->err; f++) {
        switch (*f) {
        case ' ': case '\t': case '\n': case ',': case ':':
            break;
        case 'n':
            aemp_build_null(b);
            break;
        case 'b':
            aemp_build_bool(b, va_arg(*ap, int));
            break;
        case 'i':
            aemp_build_int(b, va_arg(*ap, int));
            break;
        case 'I':
            aemp_build_int(b, va_arg(*ap, int64_t));
            break;
        case 'u':
            aemp_build_uint(b, va_arg(*ap, uint64_t));
            break;
        case 'f':
            aemp_build_double(b, va_arg(*ap, double));
            break;
        case 's': {
            const char *s = va_arg(*ap, const char *);
            if (f[1] == '#') {
                size_t len = va_arg(*ap, size_t);
                f++;
                if (s)
                    aemp_build_strn(b, s, len);
                else
                    aemp_build_null(b);
            } else {
                aemp_build_str(b, s);
            }
            break;
        }
        case 'y': {
            const void *p = va_arg(*ap, const void *);
            size_t len = va_arg(*ap, size_t);
            aemp_build_bytes(b, p, len);
            break;
        }
        case 'v':
            aemp_build_val(b, va_arg(*ap, const aemp_val_t *));
            break;
        case 'm': {
            const aemp_msg_t *m = va_arg(*ap, const aemp_msg_t *);
            if (m)
                build_elements(b, m, 0);
            break;
        }
        case '[':
            aemp_build_array(b);
            break;
        case '{':
            aemp_build_map(b);
            break;
        case ']':
        case '}':
            if (b->depth && b->cells[b->open[b->depth - 1]].type != (*f == ']' ? AEMP_T_ARRAY : AEMP_T_MAP))
                aemp__build_fail(b, AEMP_EINVAL, "'%c' closes the wrong kind of container", *f);
            else
                aemp_build_close(b);
            break;
        default:
            aemp__build_fail(b, AEMP_EINVAL, "bad format character '%c' in \"%s\"", *f, fmt);
            break;
        }
    }
    return b->err;
}

int aemp_build_vfmt(aemp_build_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int r = fmt ? vfmt(b, fmt, &cp) : (aemp__build_fail(b, AEMP_EINVAL, "NULL format"), b->err);
    va_end(cp);
    return r;
}

int aemp_build_fmt(aemp_build_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = aemp_build_vfmt(b, fmt, ap);
    va_end(ap);
    return r;
}

/* Finish a format-built message; a failure is logged. */
static aemp_msg_t *finish_fmt(aemp_build_t *b, int as_array, const char *fmt)
{
    aemp_msg_t *m = finish(b, as_array);
    if (!m)
        aemp_log(AEMP_LOG_ERROR, "cannot build message from format \"%s\": %s", fmt ? fmt : "(null)",
                 b->errtext);
    aemp_build_abort(b);
    return m;
}

/* The fast path of aemp_vmsgf for flat formats (scalars and strings at
 * the top level, at most AEMP_FLAT_MAX of them): one pass over the format and
 * the arguments fills scratch cells (a string's bytes still the
 * caller's), then the message is laid out at its exact size and the
 * cells and strings are copied into it once, with no builder.  Any other
 * format (ap untouched) goes to the builder, with its error reporting. */
int aemp__flat_scan(aemp_flat_t *f, const char *fmt, va_list ap)
{
    uint32_t n = 0;
    size_t heap = 0;
    va_list cp;
    va_copy(cp, ap);
    aemp_flat_elem_t e;
    int r;
    while ((r = aemp__flat_next(&fmt, &cp, &e)) > 0) {
        if (n == AEMP_FLAT_MAX) {
            r = -1;
            break;
        }
        if (e.type == AEMP_T_STR) {
            f->strs[n] = e.str;
            heap += e.len + 1;
        }
        aemp__cell_set(&f->cells[n], e.type, e.len, e.v);
        n++;
    }
    va_end(cp);
    if (r < 0)
        return -1;
    f->n = n;
    f->heap = heap;
    return 0;
}

/* Copy the scanned cells and strings into m (laid out for f->n elements
 * and f->heap bytes of strings). */
static void flat_place(const aemp_flat_t *f, aemp_msg_t *m)
{
    struct aemp_val *v = m->cells + 1;
    char *hp = (char *)(v + f->n);
    for (uint32_t k = 0; k < f->n; k++) {
        /* field by field: the scan wrote the cells that way, and a
         * whole-cell load of them would stall on store forwarding */
        const struct aemp_val *s = &f->cells[k];
        struct aemp_val *c = &v[k];
        uint8_t type = s->type;
        uint32_t len = s->n;
        aemp__cell_set(c, type, len, s->v.u);
        if (type != AEMP_T_STR)
            continue;
        aemp__copy_small(hp, f->strs[k], len);
        hp[len] = 0;
        c->v.off = (uint64_t)(hp - (char *)c);
        hp += len + 1;
    }
}

aemp_msg_t *aemp__flat_msg(const aemp_flat_t *f)
{
    aemp_msg_t *m = aemp__msg_new_flat(f->n, f->heap);
    if (m)
        flat_place(f, m);
    return m;
}

static aemp_msg_t *msgf_flat(const char *fmt, va_list ap)
{
    aemp_flat_t f;
    return aemp__flat_scan(&f, fmt, ap) < 0 ? NULL : aemp__flat_msg(&f);
}

aemp_msg_t *aemp__vmsgf_built(const char *fmt, va_list ap)
{
    aemp_build_t *b = aemp_build_new();
    aemp_build_vfmt(b, fmt, ap);
    return finish_fmt(b, 1, fmt);
}

aemp_msg_t *aemp_vmsgf(const char *fmt, va_list ap)
{
    if (fmt) {
        aemp_msg_t *m = msgf_flat(fmt, ap);
        if (m)
            return m;
    }
    return aemp__vmsgf_built(fmt, ap);
}

aemp_msg_t *aemp_msgf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp_msg_t *m = aemp_vmsgf(fmt, ap);
    va_end(ap);
    return m;
}

aemp_msg_t *aemp_vvalf(const char *fmt, va_list ap)
{
    aemp_build_t *b = aemp_build_new();
    b->maxdepth = AEMP_MSG_MAX_DEPTH;
    aemp_build_vfmt(b, fmt, ap);
    return finish_fmt(b, 0, fmt);
}

aemp_msg_t *aemp_valf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp_msg_t *m = aemp_vvalf(fmt, ap);
    va_end(ap);
    return m;
}

/* -------------------------------------------------------------- reading */

const aemp_val_t *aemp_msg_root(const aemp_msg_t *m)
{
    return m ? &m->cells[0] : NULL;
}

size_t aemp_msg_len(const aemp_msg_t *m)
{
    return m && m->cells[0].type == AEMP_T_ARRAY ? m->cells[0].n : 0;
}

const aemp_val_t *aemp_msg_at(const aemp_msg_t *m, size_t i)
{
    return m ? aemp_val_at(&m->cells[0], i) : NULL;
}

const char *aemp_msg_tag(const aemp_msg_t *m, size_t *len)
{
    return aemp_val_str(aemp_msg_at(m, 0), len);
}

const char *aemp_msg_str(const aemp_msg_t *m, size_t i, size_t *len)
{
    return aemp_val_str(aemp_msg_at(m, i), len);
}

int aemp_msg_int(const aemp_msg_t *m, size_t i, int64_t *out)
{
    const aemp_val_t *v = aemp_msg_at(m, i);
    return v ? aemp_val_int(v, out) : AEMP_ERANGE;
}

int aemp_msg_uint(const aemp_msg_t *m, size_t i, uint64_t *out)
{
    const aemp_val_t *v = aemp_msg_at(m, i);
    return v ? aemp_val_uint(v, out) : AEMP_ERANGE;
}

int aemp_msg_double(const aemp_msg_t *m, size_t i, double *out)
{
    const aemp_val_t *v = aemp_msg_at(m, i);
    return v ? aemp_val_double(v, out) : AEMP_ERANGE;
}

int aemp_msg_bool(const aemp_msg_t *m, size_t i, int *out)
{
    const aemp_val_t *v = aemp_msg_at(m, i);
    return v ? aemp_val_bool(v, out) : AEMP_ERANGE;
}

aemp_type_t aemp_val_type(const aemp_val_t *v)
{
    return v ? (aemp_type_t)v->type : AEMP_T_NULL;
}

int aemp_val_bool(const aemp_val_t *v, int *out)
{
    if (!v || v->type != AEMP_T_BOOL)
        return AEMP_ETYPE;
    *out = (int)v->v.i;
    return 0;
}

int aemp_val_int(const aemp_val_t *v, int64_t *out)
{
    if (v && v->type == AEMP_T_INT) {
        *out = v->v.i;
        return 0;
    }
    return v && v->type == AEMP_T_UINT ? AEMP_ERANGE : AEMP_ETYPE;
}

int aemp_val_uint(const aemp_val_t *v, uint64_t *out)
{
    if (v && v->type == AEMP_T_UINT) {
        *out = v->v.u;
        return 0;
    }
    if (v && v->type == AEMP_T_INT) {
        if (v->v.i < 0)
            return AEMP_ERANGE;
        *out = (uint64_t)v->v.i;
        return 0;
    }
    return AEMP_ETYPE;
}

int aemp_val_double(const aemp_val_t *v, double *out)
{
    if (!v)
        return AEMP_ETYPE;
    switch (v->type) {
    case AEMP_T_DOUBLE:
        *out = v->v.d;
        return 0;
    case AEMP_T_INT:
        *out = (double)v->v.i;
        return 0;
    case AEMP_T_UINT:
        *out = (double)v->v.u;
        return 0;
    }
    return AEMP_ETYPE;
}

const char *aemp_val_str(const aemp_val_t *v, size_t *len)
{
    if (!v || (v->type != AEMP_T_STR && v->type != AEMP_T_BYTES))
        return NULL;
    if (len)
        *len = v->n;
    return aemp__val_strp(v);
}

size_t aemp_val_len(const aemp_val_t *v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case AEMP_T_STR:
    case AEMP_T_BYTES:
    case AEMP_T_ARRAY:
    case AEMP_T_MAP:
        return v->n;
    }
    return 0;
}

const aemp_val_t *aemp_val_at(const aemp_val_t *v, size_t i)
{
    if (!v || v->type != AEMP_T_ARRAY || i >= v->n)
        return NULL;
    return aemp__val_child(v) + i;
}

const aemp_val_t *aemp_val_key(const aemp_val_t *v, size_t i)
{
    if (!v || v->type != AEMP_T_MAP || i >= v->n)
        return NULL;
    return aemp__val_child(v) + 2 * i;
}

const aemp_val_t *aemp_val_value(const aemp_val_t *v, size_t i)
{
    if (!v || v->type != AEMP_T_MAP || i >= v->n)
        return NULL;
    return aemp__val_child(v) + 2 * i + 1;
}

const aemp_val_t *aemp_val_getn(const aemp_val_t *v, const char *key, size_t len)
{
    if (!v || v->type != AEMP_T_MAP)
        return NULL;
    const struct aemp_val *c = aemp__val_child(v);
    for (uint32_t i = 0; i < v->n; i++, c += 2)
        if (c->n == len && (len == 0 || memcmp(aemp__val_strp(c), key, len) == 0))
            return c + 1;
    return NULL;
}

const aemp_val_t *aemp_val_get(const aemp_val_t *v, const char *key)
{
    return aemp_val_getn(v, key, strlen(key));
}

int aemp_msg_unpack(const aemp_msg_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = 0;
    size_t i = 0;
    for (const char *f = fmt; *f && !r; f++) {
        if (*f == ' ' || *f == ',')
            continue;
        const aemp_val_t *v = aemp_msg_at(m, i++);
        if (!v) {
            r = AEMP_ERANGE;
            break;
        }
        switch (*f) {
        case 'n':
            r = v->type == AEMP_T_NULL ? 0 : AEMP_ETYPE;
            break;
        case 'b':
            r = aemp_val_bool(v, va_arg(ap, int *));
            break;
        case 'i': {
            int *out = va_arg(ap, int *);
            int64_t x;
            r = aemp_val_int(v, &x);
            if (!r && (x < INT_MIN || x > INT_MAX))
                r = AEMP_ERANGE;
            if (!r)
                *out = (int)x;
            break;
        }
        case 'I':
            r = aemp_val_int(v, va_arg(ap, int64_t *));
            break;
        case 'u':
            r = aemp_val_uint(v, va_arg(ap, uint64_t *));
            break;
        case 'f':
            r = aemp_val_double(v, va_arg(ap, double *));
            break;
        case 's': {
            const char **out = va_arg(ap, const char **);
            size_t len;
            const char *s = aemp_val_str(v, &len);
            if (!s) {
                r = AEMP_ETYPE;
                break;
            }
            *out = s;
            if (f[1] == '#') {
                f++;
                *va_arg(ap, size_t *) = len;
            }
            break;
        }
        case 'y': {
            const void **out = va_arg(ap, const void **);
            size_t *lenp = va_arg(ap, size_t *);
            const char *s = aemp_val_str(v, lenp);
            if (!s)
                r = AEMP_ETYPE;
            else
                *out = s;
            break;
        }
        case 'v':
            *va_arg(ap, const aemp_val_t **) = v;
            break;
        case '*':
            break;
        default:
            r = AEMP_EINVAL;
            break;
        }
    }
    va_end(ap);
    return r;
}

/* ---------------------------------------------------- comparison, truth */

int aemp_val_equal(const aemp_val_t *a, const aemp_val_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case AEMP_T_NULL:
        return 1;
    case AEMP_T_BOOL:
    case AEMP_T_INT:
    case AEMP_T_UINT:
        return a->v.u == b->v.u;
    case AEMP_T_DOUBLE:
        return a->v.d == b->v.d || (isnan(a->v.d) && isnan(b->v.d));
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        return a->n == b->n && memcmp(aemp__val_strp(a), aemp__val_strp(b), a->n) == 0;
    case AEMP_T_ARRAY:
    case AEMP_T_MAP: {
        if (a->n != b->n)
            return 0;
        uint32_t k = a->type == AEMP_T_MAP ? 2 * a->n : a->n;
        const struct aemp_val *ca = aemp__val_child(a), *cb = aemp__val_child(b);
        for (uint32_t i = 0; i < k; i++)
            if (!aemp_val_equal(ca + i, cb + i))
                return 0;
        return 1;
    }
    }
    return 0;
}

int aemp_val_truthy(const aemp_val_t *v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case AEMP_T_NULL:
        return 0;
    case AEMP_T_BOOL:
    case AEMP_T_INT:
    case AEMP_T_UINT:
        return v->v.u != 0;
    case AEMP_T_DOUBLE:
        return v->v.d != 0.0;
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        return !(v->n == 0 || (v->n == 1 && aemp__val_strp(v)[0] == '0'));
    }
    return 1;
}

/* ------------------------------------------------------------ utf-8, text */

size_t aemp__utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
            return 0;   /* overlong, surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
            return 0;   /* overlong, above U+10FFFF */
        return 4;
    }
    return 0;
}

int aemp__utf8_valid(const uint8_t *s, size_t n)
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
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = aemp__utf8_seq(s + i, n - i);
        if (!len)
            return 0;
        i += len;
    }
    return 1;
}

size_t aemp__fmt_double(char *out, double v)
{
    if (!isfinite(v))
        return (size_t)snprintf(out, 32, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            break;
    }
    if (n < 0 || n >= 29) { /* cannot happen for %.17g */
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
    if (!has_dot_or_e) {   /* keep it a real: 1 -> 1.0 */
        memcpy(out + len, ".0", 3);
        len += 2;
    }
    return len;
}

/* A growable string for the text form. */
typedef struct {
    char *p;
    size_t len, cap;
} tbuf_t;

static void tput(tbuf_t *t, const char *s, size_t n)
{
    if (t->cap - t->len < n + 1) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap - t->len < n + 1)
            cap *= 2;
        t->p = xrealloc(t->p, cap);
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void tputs(tbuf_t *t, const char *s)
{
    tput(t, s, strlen(s));
}

static void text_str(tbuf_t *t, const struct aemp_val *v)
{
    const uint8_t *s = (const uint8_t *)aemp__val_strp(v);
    int utf8 = aemp__utf8_valid(s, v->n);
    char esc[8];
    tput(t, "\"", 1);
    for (uint32_t i = 0; i < v->n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            tput(t, esc, 2);
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            tput(t, esc, 2);
        } else if (c < 0x20 || (c >= 0x80 && !utf8)) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            tput(t, esc, 6);
        } else {
            tput(t, (const char *)&c, 1);
        }
    }
    tput(t, "\"", 1);
}

static void text_val(tbuf_t *t, const struct aemp_val *v)
{
    char num[40];
    switch (v->type) {
    case AEMP_T_NULL:
        tputs(t, "null");
        break;
    case AEMP_T_BOOL:
        tputs(t, v->v.i ? "true" : "false");
        break;
    case AEMP_T_INT:
        snprintf(num, sizeof num, "%" PRId64, v->v.i);
        tputs(t, num);
        break;
    case AEMP_T_UINT:
        snprintf(num, sizeof num, "%" PRIu64, v->v.u);
        tputs(t, num);
        break;
    case AEMP_T_DOUBLE:
        aemp__fmt_double(num, v->v.d);
        tputs(t, num);
        break;
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        text_str(t, v);
        break;
    case AEMP_T_ARRAY:
    case AEMP_T_MAP: {
        int map = v->type == AEMP_T_MAP;
        tputs(t, map ? "{" : "[");
        const struct aemp_val *c = aemp__val_child(v);
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                tputs(t, ",");
            if (map) {
                text_str(t, c++);
                tputs(t, ":");
            }
            text_val(t, c++);
        }
        tputs(t, map ? "}" : "]");
        break;
    }
    }
}

char *aemp_val_text(const aemp_val_t *v)
{
    tbuf_t t = { NULL, 0, 0 };
    if (v)
        text_val(&t, v);
    else
        tputs(&t, "null");
    return t.p;
}

char *aemp__msg_text(const aemp_msg_t *m)
{
    return aemp_val_text(aemp_msg_root(m));
}
