/* Tests for the message value type (src/msg.c, src/msg_json.c): every type
 * built and read back, nesting and O(1) access, the formats of aemp_msgf,
 * aemp_valf and aemp_msg_unpack, the step builder and its sticky errors,
 * the depth limit, typed accessors, equality, text, truth, copies, the
 * internal helpers, reference counting, builder recycling, large messages,
 * the jansson converters, and the single-allocation layout that makes
 * reading free of allocations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aemp_json.h"
#include "internal.h"
#include "msg.h"

/* ------------------------------------------------------------- helpers */

/* Format errors are logged: remember the last record instead of printing. */
static int log_level_seen = -1;
static char log_seen[4096];

static void log_hook(int level, const char *msg, void *arg)
{
    log_level_seen = level;
    snprintf(log_seen, sizeof log_seen, "%s", msg);
}

static int group_setup(void **state)
{
    aemp_set_log_level(0);   /* the hook still sees every record */
    return aemp_log_hook_add(log_hook, NULL);
}

static int group_teardown(void **state)
{
    return aemp_log_hook_remove(log_hook, NULL);
}

/* Walk the value v of message m: count its cells and heap bytes, mark each
 * cell as seen once, and check that it and its string bytes lie inside the
 * message's single allocation, children after their parent, map keys
 * strings, and strings in the heap after the cells, NUL-terminated. */
static void walk(const aemp_msg_t *m, const struct aemp_val *v, unsigned char *seen,
                 size_t *cells, size_t *heap)
{
    const struct aemp_val *first = m->cells, *end = m->cells + m->ncells;
    assert_true(v >= first && v < end);
    assert_int_equal(seen[v - first], 0);
    seen[v - first] = 1;
    ++*cells;
    /* no uninitialised bytes: equal messages built alike are equal bytes */
    assert_int_equal(v->pad[0] | v->pad[1] | v->pad[2], 0);
    switch (aemp_val_type(v)) {
    case AEMP_T_STR:
    case AEMP_T_BYTES: {
        const char *s = aemp__val_strp(v);
        assert_true(s >= (const char *)end);
        assert_true(s + v->n < (const char *)end + m->heaplen);
        assert_int_equal(s[v->n], 0);
        *heap += v->n + 1;
        break;
    }
    case AEMP_T_ARRAY:
    case AEMP_T_MAP: {
        size_t k = v->type == AEMP_T_MAP ? 2 * (size_t)v->n : v->n;
        if (k)
            assert_true(aemp__val_child(v) > v);
        for (size_t i = 0; i < k; i++) {
            const struct aemp_val *c = aemp__val_child(v) + i;
            if (v->type == AEMP_T_MAP && i % 2 == 0)
                assert_non_null(aemp_val_str(c, NULL));
            walk(m, c, seen, cells, heap);
        }
        break;
    }
    default:
        break;
    }
}

/* m is one allocation: header + ncells * 16 + heaplen, every cell reached
 * at most once from the root and every pointer a reader gets inside it;
 * if exact, every cell and heap byte is reached (a message as built; a
 * relay's slice may keep cells and strings no element reaches). */
static void check_block(const aemp_msg_t *m, int exact)
{
    assert_non_null(m);
    unsigned char *seen = calloc(m->ncells, 1);
    assert_non_null(seen);
    size_t cells = 0, heap = 0;
    walk(m, aemp_msg_root(m), seen, &cells, &heap);
    free(seen);
    if (exact) {
        assert_int_equal(cells, m->ncells);
        assert_int_equal(heap, m->heaplen);
    } else {
        assert_true(cells <= m->ncells);
        assert_true(heap <= m->heaplen);
    }
    assert_int_equal(sizeof(struct aemp_val), 16);
    assert_int_equal(aemp__msg_size(m), sizeof(aemp_msg_t) + (size_t)m->ncells * 16 + m->heaplen);
    if (!aemp__msg_is_shared(m))   /* the shared ones are static */
        assert_true(malloc_usable_size((void *)m) >= aemp__msg_size(m));
}

/* A message as built: one allocation holding exactly its values. */
static void check_layout(const aemp_msg_t *m)
{
    check_block(m, 1);
}

/* The text of v (aemp_val_text) and of m (aemp__msg_text), compared with
 * what is wanted and freed. */
static void assert_text(const aemp_val_t *v, const char *want)
{
    char *t = aemp_val_text(v);
    assert_non_null(t);
    assert_string_equal(t, want);
    free(t);
}

static void assert_msg_text(const aemp_msg_t *m, const char *want)
{
    char *t = aemp__msg_text(m);
    assert_string_equal(t, want);
    free(t);
}

/* A format of n arrays nested in each other: "[[...]]" (malloc'd). */
static char *brackets(int n)
{
    char *f = malloc(2 * (size_t)n + 1);
    assert_non_null(f);
    memset(f, '[', (size_t)n);
    memset(f + n, ']', (size_t)n);
    f[2 * n] = 0;
    return f;
}

/* Nesting depth of a value: its levels of arrays and maps (a scalar adds
 * none, as the limit counts them). */
static int depth_of(const aemp_val_t *v)
{
    int d = 0;
    if (aemp_val_type(v) != AEMP_T_ARRAY && aemp_val_type(v) != AEMP_T_MAP)
        return 0;
    size_t n = aemp_val_len(v);
    if (aemp_val_type(v) == AEMP_T_ARRAY)
        for (size_t i = 0; i < n; i++) {
            int c = depth_of(aemp_val_at(v, i));
            d = c > d ? c : d;
        }
    if (aemp_val_type(v) == AEMP_T_MAP)
        for (size_t i = 0; i < n; i++) {
            int c = depth_of(aemp_val_value(v, i));
            d = c > d ? c : d;
        }
    return d + 1;
}

/* --------------------------------------------------------------- types */

static void type_names(void **state)
{
    assert_string_equal(aemp_type_name(AEMP_T_NULL), "null");
    assert_string_equal(aemp_type_name(AEMP_T_BOOL), "bool");
    assert_string_equal(aemp_type_name(AEMP_T_INT), "int");
    assert_string_equal(aemp_type_name(AEMP_T_UINT), "uint");
    assert_string_equal(aemp_type_name(AEMP_T_DOUBLE), "double");
    assert_string_equal(aemp_type_name(AEMP_T_STR), "str");
    assert_string_equal(aemp_type_name(AEMP_T_BYTES), "bytes");
    assert_string_equal(aemp_type_name(AEMP_T_ARRAY), "array");
    assert_string_equal(aemp_type_name(AEMP_T_MAP), "map");
    assert_string_equal(aemp_type_name((aemp_type_t)99), "?");
    assert_int_equal(aemp_val_type(NULL), AEMP_T_NULL);
}

static void scalars_build_and_read(void **state)
{
    aemp_build_t *b = aemp_build_new();
    assert_int_equal(aemp_build_null(b), 0);
    assert_int_equal(aemp_build_bool(b, 0), 0);
    assert_int_equal(aemp_build_bool(b, 42), 0);              /* any non-zero is true */
    assert_int_equal(aemp_build_int(b, INT64_MIN), 0);
    assert_int_equal(aemp_build_int(b, INT64_MAX), 0);
    assert_int_equal(aemp_build_uint(b, UINT64_C(1) << 63), 0);
    assert_int_equal(aemp_build_uint(b, UINT64_MAX), 0);
    assert_int_equal(aemp_build_uint(b, 5), 0);               /* canonical: an INT */
    assert_int_equal(aemp_build_uint(b, (uint64_t)INT64_MAX), 0);
    assert_int_equal(aemp_build_double(b, 1e300), 0);
    assert_int_equal(aemp_build_double(b, -0.0), 0);
    assert_int_equal(aemp_build_double(b, NAN), 0);
    aemp_msg_t *m = aemp_build_msg(b);
    check_layout(m);
    assert_int_equal(aemp_msg_len(m), 12);
    assert_int_equal(aemp_val_type(aemp_msg_root(m)), AEMP_T_ARRAY);

    static const aemp_type_t want[] = {
        AEMP_T_NULL, AEMP_T_BOOL, AEMP_T_BOOL, AEMP_T_INT, AEMP_T_INT, AEMP_T_UINT,
        AEMP_T_UINT, AEMP_T_INT, AEMP_T_INT, AEMP_T_DOUBLE, AEMP_T_DOUBLE, AEMP_T_DOUBLE,
    };
    for (size_t i = 0; i < 12; i++)
        assert_int_equal(aemp_val_type(aemp_msg_at(m, i)), want[i]);
    assert_null(aemp_msg_at(m, 12));

    int bv = -1;
    assert_int_equal(aemp_msg_bool(m, 1, &bv), 0);
    assert_int_equal(bv, 0);
    assert_int_equal(aemp_msg_bool(m, 2, &bv), 0);
    assert_int_equal(bv, 1);

    int64_t i64;
    assert_int_equal(aemp_msg_int(m, 3, &i64), 0);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(aemp_msg_int(m, 4, &i64), 0);
    assert_true(i64 == INT64_MAX);
    assert_int_equal(aemp_msg_int(m, 7, &i64), 0);
    assert_true(i64 == 5);
    assert_int_equal(aemp_msg_int(m, 8, &i64), 0);
    assert_true(i64 == INT64_MAX);

    uint64_t u64;
    assert_int_equal(aemp_msg_uint(m, 5, &u64), 0);
    assert_true(u64 == UINT64_C(1) << 63);
    assert_int_equal(aemp_msg_uint(m, 6, &u64), 0);
    assert_true(u64 == UINT64_MAX);
    assert_int_equal(aemp_msg_uint(m, 4, &u64), 0);           /* a non-negative INT */
    assert_true(u64 == (uint64_t)INT64_MAX);
    assert_int_equal(aemp_msg_uint(m, 7, &u64), 0);
    assert_true(u64 == 5);

    double d;
    assert_int_equal(aemp_msg_double(m, 9, &d), 0);
    assert_true(d == 1e300);
    assert_int_equal(aemp_msg_double(m, 10, &d), 0);
    assert_true(d == 0.0 && signbit(d));
    assert_int_equal(aemp_msg_double(m, 11, &d), 0);
    assert_true(isnan(d));
    assert_int_equal(aemp_msg_double(m, 3, &d), 0);           /* ints read as doubles */
    assert_true(d == (double)INT64_MIN);
    assert_int_equal(aemp_msg_double(m, 6, &d), 0);
    assert_true(d == 18446744073709551615.0);

    assert_msg_text(m, "[null,false,true,-9223372036854775808,9223372036854775807,"
                       "9223372036854775808,18446744073709551615,5,9223372036854775807,"
                       "1e+300,-0.0,nan]");
    /* scalars have no length, no elements */
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(aemp_val_len(aemp_msg_at(m, i)), 0);
        assert_null(aemp_val_at(aemp_msg_at(m, i), 0));
        assert_null(aemp_val_key(aemp_msg_at(m, i), 0));
        assert_null(aemp_val_str(aemp_msg_at(m, i), NULL));
    }
    aemp_msg_unref(m);
}

static void strings_build_and_read(void **state)
{
    aemp_build_t *b = aemp_build_new();
    assert_int_equal(aemp_build_str(b, "hello"), 0);
    assert_int_equal(aemp_build_str(b, ""), 0);
    assert_int_equal(aemp_build_strn(b, "a\0b", 3), 0);
    assert_int_equal(aemp_build_strn(b, NULL, 0), 0);
    assert_int_equal(aemp_build_bytes(b, "\xc3\xa4", 2), 0);
    assert_int_equal(aemp_build_bytes(b, NULL, 0), 0);
    assert_int_equal(aemp_build_bytes(b, "x\0y", 3), 0);
    assert_int_equal(aemp_build_str(b, NULL), 0);            /* NULL is null */
    aemp_msg_t *m = aemp_build_msg(b);
    check_layout(m);
    assert_int_equal(aemp_msg_len(m), 8);

    size_t len = 99;
    const char *s = aemp_msg_str(m, 0, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    assert_int_equal(aemp_val_len(aemp_msg_at(m, 0)), 5);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 0)), AEMP_T_STR);

    s = aemp_msg_str(m, 1, &len);
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_int_equal(s[0], 0);

    s = aemp_msg_str(m, 2, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 4);                      /* NUL-terminated too */
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 2)), AEMP_T_STR);

    s = aemp_msg_str(m, 3, &len);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");

    s = aemp_msg_str(m, 4, &len);                           /* bytes: kept as 2 bytes */
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 4)), AEMP_T_BYTES);
    assert_int_equal(len, 2);
    assert_memory_equal(s, "\xc3\xa4", 3);
    assert_int_equal(aemp_val_len(aemp_msg_at(m, 4)), 2);

    s = aemp_msg_str(m, 5, NULL);                           /* len may be NULL */
    assert_string_equal(s, "");
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 5)), AEMP_T_BYTES);

    s = aemp_msg_str(m, 6, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "x\0y", 4);

    assert_int_equal(aemp_val_type(aemp_msg_at(m, 7)), AEMP_T_NULL);
    assert_null(aemp_msg_str(m, 7, &len));
    assert_null(aemp_msg_str(m, 8, &len));

    /* the tag: element 0 if it is a string of either kind */
    assert_string_equal(aemp_msg_tag(m, &len), "hello");
    assert_int_equal(len, 5);
    assert_string_equal(aemp_msg_tag(m, NULL), "hello");
    aemp_msg_unref(m);

    m = aemp_msgf("y i", "tg", (size_t)2, 1);
    assert_string_equal(aemp_msg_tag(m, &len), "tg");
    aemp_msg_unref(m);
    m = aemp_msgf("i s", 1, "x");
    assert_null(aemp_msg_tag(m, &len));
    aemp_msg_unref(m);
    assert_null(aemp_msg_tag(aemp_msg_empty(), &len));
    assert_null(aemp_msg_tag(NULL, &len));
}

/* [1, [2, [3, {"a": [4, 5], "b": {"c": "d"}, "": null}]], "e", {}] */
static aemp_msg_t *nested(void)
{
    return aemp_msgf("i [i [i {s:[i i] s:{s:s} s:n}]] s {}", 1, 2, 3, "a", 4, 5, "b", "c", "d", "", "e");
}

static void nested_access(void **state)
{
    aemp_msg_t *m = nested();
    check_layout(m);
    assert_msg_text(m, "[1,[2,[3,{\"a\":[4,5],\"b\":{\"c\":\"d\"},\"\":null}]],\"e\",{}]");
    assert_int_equal(aemp_msg_len(m), 4);
    const aemp_val_t *root = aemp_msg_root(m);
    /* every element of an array is at a fixed stride from the first (O(1)) */
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(aemp_val_at(root, i), aemp_val_at(root, 0) + i);
    assert_ptr_equal(aemp_msg_at(m, 2), aemp_val_at(root, 2));
    assert_null(aemp_val_at(root, 4));
    assert_null(aemp_val_at(root, SIZE_MAX));

    const aemp_val_t *l1 = aemp_msg_at(m, 1);
    assert_int_equal(aemp_val_type(l1), AEMP_T_ARRAY);
    assert_int_equal(aemp_val_len(l1), 2);
    assert_ptr_equal(aemp_val_at(l1, 1), aemp_val_at(l1, 0) + 1);
    int64_t x;
    assert_int_equal(aemp_val_int(aemp_val_at(l1, 0), &x), 0);
    assert_true(x == 2);

    const aemp_val_t *l2 = aemp_val_at(l1, 1);
    assert_int_equal(aemp_val_len(l2), 2);
    assert_int_equal(aemp_val_int(aemp_val_at(l2, 0), &x), 0);
    assert_true(x == 3);

    const aemp_val_t *map = aemp_val_at(l2, 1);
    assert_int_equal(aemp_val_type(map), AEMP_T_MAP);
    assert_int_equal(aemp_val_len(map), 3);
    assert_null(aemp_val_at(map, 0));                       /* a map has no elements */
    for (size_t i = 0; i < 3; i++) {                        /* key, value, key, value ... */
        assert_ptr_equal(aemp_val_key(map, i), aemp_val_key(map, 0) + 2 * i);
        assert_ptr_equal(aemp_val_value(map, i), aemp_val_key(map, i) + 1);
    }
    assert_null(aemp_val_key(map, 3));
    assert_null(aemp_val_value(map, 3));
    assert_string_equal(aemp_val_str(aemp_val_key(map, 0), NULL), "a");
    assert_string_equal(aemp_val_str(aemp_val_key(map, 1), NULL), "b");
    assert_string_equal(aemp_val_str(aemp_val_key(map, 2), NULL), "");

    const aemp_val_t *a = aemp_val_get(map, "a");
    assert_ptr_equal(a, aemp_val_value(map, 0));
    assert_int_equal(aemp_val_len(a), 2);
    assert_int_equal(aemp_val_int(aemp_val_at(a, 1), &x), 0);
    assert_true(x == 5);
    const aemp_val_t *bm = aemp_val_getn(map, "bxx", 1);
    assert_ptr_equal(bm, aemp_val_value(map, 1));
    assert_string_equal(aemp_val_str(aemp_val_get(bm, "c"), NULL), "d");
    assert_ptr_equal(aemp_val_get(map, ""), aemp_val_value(map, 2));
    assert_int_equal(aemp_val_type(aemp_val_get(map, "")), AEMP_T_NULL);
    assert_null(aemp_val_get(map, "c"));                    /* not recursive */
    assert_null(aemp_val_get(map, "ab"));
    assert_ptr_equal(aemp_val_getn(map, "a", 0), aemp_val_value(map, 2));   /* the key "" */
    assert_ptr_equal(aemp_val_getn(map, NULL, 0), aemp_val_value(map, 2));
    assert_null(aemp_val_get(l2, "a"));                     /* not a map */
    assert_null(aemp_val_get(NULL, "a"));

    const aemp_val_t *e = aemp_msg_at(m, 2);
    assert_string_equal(aemp_val_str(e, NULL), "e");
    const aemp_val_t *empty = aemp_msg_at(m, 3);
    assert_int_equal(aemp_val_type(empty), AEMP_T_MAP);
    assert_int_equal(aemp_val_len(empty), 0);
    assert_null(aemp_val_key(empty, 0));
    assert_null(aemp_val_get(empty, ""));

    assert_int_equal(depth_of(root), 5);
    aemp_msg_unref(m);
}

static void map_keys_with_nul(void **state)
{
    aemp_msg_t *m = aemp_valf("{s#:i, s:i, y:i}", "k\0x", (size_t)3, 1, "k", 2, "\xff\0", (size_t)2, 3);
    check_layout(m);
    const aemp_val_t *map = aemp_msg_root(m);
    assert_int_equal(aemp_val_len(map), 3);
    size_t len;
    assert_memory_equal(aemp_val_str(aemp_val_key(map, 0), &len), "k\0x", 4);
    assert_int_equal(len, 3);
    int64_t x;
    assert_int_equal(aemp_val_int(aemp_val_getn(map, "k\0x", 3), &x), 0);
    assert_true(x == 1);
    assert_int_equal(aemp_val_int(aemp_val_get(map, "k"), &x), 0);   /* the exact key */
    assert_true(x == 2);
    assert_null(aemp_val_getn(map, "k\0", 2));
    /* a byte string key is a key too */
    assert_int_equal(aemp_val_type(aemp_val_key(map, 2)), AEMP_T_BYTES);
    assert_int_equal(aemp_val_int(aemp_val_getn(map, "\xff\0", 2), &x), 0);
    assert_true(x == 3);
    assert_text(map, "{\"k\\u0000x\":1,\"k\":2,\"\\u00ff\\u0000\":3}");
    aemp_msg_unref(m);

    /* the first of equal keys wins */
    m = aemp_valf("{s:i s:i}", "a", 1, "a", 2);
    assert_int_equal(aemp_val_int(aemp_val_get(aemp_msg_root(m), "a"), &x), 0);
    assert_true(x == 1);
    aemp_msg_unref(m);
}

/* ------------------------------------------------------------- formats */

static void format_every_letter(void **state)
{
    aemp_msg_t *inner = aemp_msgf("s i", "in", 7);
    aemp_msg_t *vsrc = aemp_valf("{s:[b]}", "k", 1);
    aemp_msg_t *m = aemp_msgf("n b b i I u u f s s# y v v m [ ] { } s s#",
                              1, 0, -5, (int64_t)INT64_MIN, (uint64_t)UINT64_MAX, (uint64_t)3, 0.5,
                              "txt", "a\0b", (size_t)3, "\x80", (size_t)1, aemp_msg_root(vsrc),
                              (const aemp_val_t *)NULL, inner, (const char *)NULL,
                              (const char *)NULL, (size_t)4);
    check_layout(m);
    assert_msg_text(m, "[null,true,false,-5,-9223372036854775808,18446744073709551615,3,0.5,"
                       "\"txt\",\"a\\u0000b\",\"\\u0080\",{\"k\":[true]},null,\"in\",7,[],{},"
                       "null,null]");
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 5)), AEMP_T_UINT);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 6)), AEMP_T_INT);   /* u 3 is an INT */
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 8)), AEMP_T_STR);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 9)), AEMP_T_STR);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 10)), AEMP_T_BYTES);
    assert_true(aemp_val_equal(aemp_msg_at(m, 11), aemp_msg_root(vsrc)));
    assert_ptr_not_equal(aemp_msg_at(m, 11), aemp_msg_root(vsrc));    /* a copy */
    aemp_msg_unref(m);

    /* separators: spaces, tabs, newlines, ',' and ':' are all ignored */
    m = aemp_msgf("[i,i]\t{s:i,s:[]}\n:,", 1, 2, "a", 3, "b");
    check_layout(m);
    assert_msg_text(m, "[[1,2],{\"a\":3,\"b\":[]}]");
    aemp_msg_unref(m);
    m = aemp_msgf("iii", 1, 2, 3);                             /* none needed */
    assert_msg_text(m, "[1,2,3]");
    aemp_msg_unref(m);
    m = aemp_msgf("");
    check_layout(m);
    assert_int_equal(aemp_msg_len(m), 0);
    assert_msg_text(m, "[]");
    aemp_msg_unref(m);

    /* m splices the elements of a message, at the top level or inside */
    m = aemp_msgf("s m s [m] {s:[m]} m", "a", inner, "z", inner, "k", inner, aemp_msg_empty());
    check_layout(m);
    assert_msg_text(m, "[\"a\",\"in\",7,\"z\",[\"in\",7],{\"k\":[\"in\",7]}]");
    aemp_msg_unref(m);
    /* in a map, the spliced elements are keys and values */
    m = aemp_valf("{m}", inner);
    assert_text(aemp_msg_root(m), "{\"in\":7}");
    aemp_msg_unref(m);

    /* aemp_valf: exactly one value at the root */
    m = aemp_valf("s", "x");
    check_layout(m);
    assert_int_equal(aemp_val_type(aemp_msg_root(m)), AEMP_T_STR);
    assert_int_equal(aemp_msg_len(m), 0);                      /* the root is no array */
    assert_null(aemp_msg_at(m, 0));
    assert_text(aemp_msg_root(m), "\"x\"");
    aemp_msg_unref(m);
    m = aemp_valf("{s:i}", "a", 1);
    check_layout(m);
    assert_int_equal(aemp_val_type(aemp_msg_root(m)), AEMP_T_MAP);
    assert_text(aemp_msg_root(m), "{\"a\":1}");
    aemp_msg_unref(m);
    m = aemp_valf(" [ i , s ] ", 1, "b");
    assert_int_equal(aemp_msg_len(m), 2);
    assert_msg_text(m, "[1,\"b\"]");
    aemp_msg_unref(m);
    m = aemp_valf("n");
    check_layout(m);
    assert_int_equal(aemp_val_type(aemp_msg_root(m)), AEMP_T_NULL);
    aemp_msg_unref(m);
    m = aemp_valf("v", aemp_msg_root(vsrc));
    assert_true(aemp_val_equal(aemp_msg_root(m), aemp_msg_root(vsrc)));
    aemp_msg_unref(m);
    m = aemp_valf("u", (uint64_t)UINT64_MAX);
    assert_int_equal(aemp_val_type(aemp_msg_root(m)), AEMP_T_UINT);
    aemp_msg_unref(m);

    aemp_msg_unref(inner);
    aemp_msg_unref(vsrc);
}

/* aemp_vmsgf takes a va_list */
static aemp_msg_t *call_vmsgf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp_msg_t *m = aemp_vmsgf(fmt, ap);
    va_end(ap);
    return m;
}

static void format_errors(void **state)
{
    /* (their arguments are strings only: whatever a format reads before it
     * fails gets a string) */
    static const char *const bad[] = {
        "x",        /* bad letter */
        "s x s",
        "n#",       /* '#' only after s */
        "[",        /* unbalanced */
        "]",
        "[[]",
        "s ] s",
        "{",
        "}",
        "[}",       /* wrong closer */
        "{]",
        "[{]}",
        "{s:[}]",
        "{n:s}",    /* a non-string key */
        "{[]:s}",
        "{{}:s}",
        "{s:s n:s}",
        "{s}",      /* a key without a value */
        "{s:s s}",
        "[{s}]",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        log_level_seen = -1;
        aemp_msg_t *m = aemp_msgf(bad[k], "a", "b", "c", "d");
        if (m)
            fail_msg("format \"%s\" was accepted", bad[k]);
        assert_int_equal(log_level_seen, AEMP_LOG_ERROR);   /* and logged why */
        assert_non_null(strstr(log_seen, bad[k]));
        m = aemp_valf(bad[k], "a", "b", "c", "d");
        if (m)
            fail_msg("format \"%s\" was accepted by aemp_valf", bad[k]);
    }
    assert_null(aemp_msgf("x"));
    assert_non_null(strstr(log_seen, "bad format character 'x'"));
    assert_null(aemp_msgf("[}"));
    assert_non_null(strstr(log_seen, "wrong kind"));
    assert_null(aemp_msgf("{i:i}", 1, 2));
    assert_non_null(strstr(log_seen, "map key must be a string"));
    assert_null(aemp_msgf("{b:i}", 1, 2));
    assert_null(aemp_msgf("{f:i}", 1.0, 2));
    assert_null(aemp_valf("{s:i u:i}", "a", 1, (uint64_t)1, 2));
    assert_null(aemp_msgf("{s}", "a"));
    assert_non_null(strstr(log_seen, "key without a value"));
    assert_null(aemp_msgf("[[", "a"));
    assert_non_null(strstr(log_seen, "left open"));
    assert_null(call_vmsgf("q"));
    assert_null(aemp_msgf(NULL));
    /* aemp_valf needs exactly one value */
    assert_null(aemp_valf(""));
    assert_null(aemp_valf("i i", 1, 2));
    assert_non_null(strstr(log_seen, "single value"));
    /* and after all these failures the recycled builders work */
    aemp_msg_t *m = call_vmsgf("s", "fine");
    assert_msg_text(m, "[\"fine\"]");
    aemp_msg_unref(m);
}

/* -------------------------------------------------------------- builder */

static void builder_steps(void **state)
{
    aemp_msg_t *src = aemp_valf("[s y u]", "q", "\x01", (size_t)1, (uint64_t)UINT64_MAX);
    aemp_build_t *b = aemp_build_new();
    assert_non_null(b);
    assert_int_equal(aemp_build_str(b, "tag"), 0);
    assert_int_equal(aemp_build_array(b), 0);
    assert_int_equal(aemp_build_int(b, 1), 0);
    assert_int_equal(aemp_build_map(b), 0);
    assert_int_equal(aemp_build_str(b, "k"), 0);
    assert_int_equal(aemp_build_val(b, aemp_msg_root(src)), 0);
    assert_int_equal(aemp_build_bytes(b, "bk", 2), 0);        /* a byte-string key */
    assert_int_equal(aemp_build_fmt(b, "{s:i}", "x", 9), 0);
    assert_int_equal(aemp_build_str(b, "e"), 0);
    assert_int_equal(aemp_build_array(b), 0);
    assert_int_equal(aemp_build_close(b), 0);
    assert_int_equal(aemp_build_close(b), 0);                 /* the map */
    assert_int_equal(aemp_build_val(b, NULL), 0);             /* null */
    assert_int_equal(aemp_build_close(b), 0);                 /* the array */
    assert_int_equal(aemp_build_fmt(b, "i s#", 2, "zz", (size_t)1), 0);
    assert_string_equal(aemp__build_error(b), "");
    aemp_msg_t *m = aemp_build_msg(b);
    check_layout(m);
    assert_msg_text(m, "[\"tag\",[1,{\"k\":[\"q\",\"\\u0001\",18446744073709551615],"
                       "\"bk\":{\"x\":9},\"e\":[]},null],2,\"z\"]");
    const aemp_val_t *map = aemp_val_at(aemp_msg_at(m, 1), 1);
    assert_int_equal(aemp_val_type(aemp_val_key(map, 1)), AEMP_T_BYTES);
    assert_int_equal(aemp_val_type(aemp_val_at(aemp_val_get(map, "k"), 1)), AEMP_T_BYTES);
    assert_int_equal(aemp_val_type(aemp_val_at(aemp_val_get(map, "k"), 2)), AEMP_T_UINT);
    aemp_msg_unref(m);

    /* aemp_build_root: the single value is the root */
    b = aemp_build_new();
    assert_int_equal(aemp_build_map(b), 0);
    assert_int_equal(aemp_build_close(b), 0);
    m = aemp_build_root(b);
    check_layout(m);
    assert_int_equal(aemp_val_type(aemp_msg_root(m)), AEMP_T_MAP);
    aemp_msg_unref(m);
    b = aemp_build_new();
    aemp_build_double(b, 2.5);
    m = aemp_build_root(b);
    check_layout(m);
    assert_text(aemp_msg_root(m), "2.5");
    aemp_msg_unref(m);
    b = aemp_build_new();
    assert_null(aemp_build_root(b));                         /* nothing */
    b = aemp_build_new();
    aemp_build_int(b, 1);
    aemp_build_int(b, 2);
    assert_null(aemp_build_root(b));                         /* two */
    b = aemp_build_new();
    assert_int_equal(aemp_build_str(b, "x"), 0);
    m = aemp_build_msg(b);
    assert_msg_text(m, "[\"x\"]");
    aemp_msg_unref(m);
    b = aemp_build_new();
    m = aemp_build_msg(b);                                   /* nothing: [] */
    check_layout(m);
    assert_int_equal(aemp_msg_len(m), 0);
    aemp_msg_unref(m);

    /* abort throws it away (NULL is fine) */
    b = aemp_build_new();
    aemp_build_array(b);
    aemp_build_str(b, "dropped");
    aemp_build_abort(b);
    aemp_build_abort(NULL);
    aemp_msg_unref(src);
}

static void builder_sticky_errors(void **state)
{
    /* close without an open */
    aemp_build_t *b = aemp_build_new();
    assert_int_equal(aemp_build_int(b, 1), 0);
    assert_int_equal(aemp_build_close(b), AEMP_EINVAL);
    assert_non_null(strstr(aemp__build_error(b), "close without"));
    /* every later call fails with the first error, and so does the finish */
    assert_int_equal(aemp_build_int(b, 2), AEMP_EINVAL);
    assert_int_equal(aemp_build_str(b, "x"), AEMP_EINVAL);
    assert_int_equal(aemp_build_array(b), AEMP_EINVAL);
    assert_int_equal(aemp_build_close(b), AEMP_EINVAL);
    assert_int_equal(aemp_build_fmt(b, "i", 3), AEMP_EINVAL);
    assert_int_equal(aemp_build_null(b), AEMP_EINVAL);
    assert_int_equal(aemp_build_bool(b, 1), AEMP_EINVAL);
    assert_int_equal(aemp_build_uint(b, UINT64_MAX), AEMP_EINVAL);
    assert_int_equal(aemp_build_double(b, 1), AEMP_EINVAL);
    assert_int_equal(aemp_build_bytes(b, "a", 1), AEMP_EINVAL);
    assert_int_equal(aemp_build_map(b), AEMP_EINVAL);
    assert_null(aemp__build_str_space(b, AEMP_T_STR, 3));
    assert_non_null(strstr(aemp__build_error(b), "close without"));
    assert_null(aemp_build_msg(b));

    /* a non-string key */
    b = aemp_build_new();
    assert_string_equal(aemp__build_error(b), "");         /* a recycled builder is clean */
    assert_int_equal(aemp_build_map(b), 0);
    assert_int_equal(aemp_build_int(b, 1), AEMP_ETYPE);
    assert_int_equal(aemp_build_str(b, "k"), AEMP_ETYPE);    /* sticky even if now right */
    assert_int_equal(aemp_build_close(b), AEMP_ETYPE);
    assert_null(aemp_build_msg(b));

    b = aemp_build_new();
    assert_int_equal(aemp_build_map(b), 0);
    assert_int_equal(aemp_build_array(b), AEMP_ETYPE);       /* a container as key */
    assert_null(aemp_build_msg(b));

    b = aemp_build_new();
    assert_int_equal(aemp_build_map(b), 0);
    assert_int_equal(aemp_build_map(b), AEMP_ETYPE);
    assert_null(aemp_build_root(b));

    /* a key without a value */
    b = aemp_build_new();
    assert_int_equal(aemp_build_map(b), 0);
    assert_int_equal(aemp_build_str(b, "k"), 0);
    assert_int_equal(aemp_build_close(b), AEMP_EINVAL);
    assert_null(aemp_build_msg(b));

    /* left open */
    b = aemp_build_new();
    assert_int_equal(aemp_build_array(b), 0);
    assert_null(aemp_build_msg(b));
    b = aemp_build_new();
    assert_int_equal(aemp_build_map(b), 0);
    assert_null(aemp_build_root(b));

    /* a format error inside the builder is sticky too */
    b = aemp_build_new();
    assert_int_equal(aemp_build_fmt(b, "i z", 1), AEMP_EINVAL);
    assert_int_equal(aemp_build_int(b, 1), AEMP_EINVAL);
    assert_null(aemp_build_msg(b));

    /* first error wins */
    b = aemp_build_new();
    aemp__build_fail(b, AEMP_ELIMIT, "first %d", 1);
    aemp__build_fail(b, AEMP_EINVAL, "second");
    assert_string_equal(aemp__build_error(b), "first 1");
    assert_int_equal(aemp_build_int(b, 1), AEMP_ELIMIT);
    assert_null(aemp_build_msg(b));

    /* the next builder is clean */
    b = aemp_build_new();
    assert_int_equal(aemp_build_int(b, 1), 0);
    aemp_msg_t *m = aemp_build_msg(b);
    assert_msg_text(m, "[1]");
    aemp_msg_unref(m);
}

static void builder_internal(void **state)
{
    /* reserve string space, fill part of it, shrink */
    aemp_build_t *b = aemp_build_new();
    char *p = aemp__build_str_space(b, AEMP_T_STR, 10);
    assert_non_null(p);
    assert_int_equal(p[10], 0);
    memcpy(p, "abc", 3);
    aemp__build_str_shrink(b, 3);
    p = aemp__build_str_space(b, AEMP_T_BYTES, 2);
    memcpy(p, "\x00\x01", 2);
    aemp__build_str_shrink(b, 5);                             /* longer: ignored */
    assert_int_equal(aemp_build_int(b, 4), 0);
    aemp__build_str_shrink(b, 0);                             /* no string last: ignored */
    /* take_msg keeps the builder */
    aemp_msg_t *m = aemp__build_take_msg(b);
    check_layout(m);
    assert_int_equal(m->heaplen, 4 + 3);                      /* "abc\0" "\0\1\0" */
    size_t len;
    assert_string_equal(aemp_msg_str(m, 0, &len), "abc");
    assert_int_equal(len, 3);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 1)), AEMP_T_BYTES);
    assert_memory_equal(aemp_msg_str(m, 1, &len), "\x00\x01\x00", 3);
    assert_int_equal(len, 2);
    aemp_msg_unref(m);
    /* ... to be reset and used again */
    aemp__build_reset(b);
    assert_int_equal(b->ncells, 0);
    assert_int_equal(aemp_build_str(b, "again"), 0);
    m = aemp__build_take_msg(b);
    assert_msg_text(m, "[\"again\"]");
    aemp_msg_unref(m);
    aemp__build_reset(b);
    aemp_build_array(b);
    assert_null(aemp__build_take_msg(b));                     /* left open */
    aemp__build_reset(b);                                     /* reset clears the error */
    assert_string_equal(aemp__build_error(b), "");
    aemp_build_int(b, 1);
    m = aemp__build_take_msg(b);
    assert_msg_text(m, "[1]");
    aemp_msg_unref(m);
    aemp_build_abort(b);

    /* a shrunk string in the middle of a message */
    b = aemp_build_new();
    aemp_build_str(b, "a");
    p = aemp__build_str_space(b, AEMP_T_STR, 100);
    memcpy(p, "xy", 2);
    aemp__build_str_shrink(b, 2);
    aemp_build_str(b, "b");
    m = aemp_build_msg(b);
    check_layout(m);
    assert_msg_text(m, "[\"a\",\"xy\",\"b\"]");
    aemp_msg_unref(m);

    /* a string of 4 GiB or more is refused before anything is allocated */
    b = aemp_build_new();
    assert_null(aemp__build_str_space(b, AEMP_T_STR, (size_t)UINT32_MAX));
    assert_int_equal(aemp_build_int(b, 1), AEMP_ELIMIT);
    assert_null(aemp_build_msg(b));
}

/* ---------------------------------------------------------------- depth */

static void depth_limit(void **state)
{
    const int D = AEMP_MSG_MAX_DEPTH;
    /* aemp_msgf: the message's own array is level 1 */
    char *f = brackets(D - 1);
    aemp_msg_t *m = aemp_msgf(f);
    free(f);
    assert_non_null(m);
    check_layout(m);
    assert_int_equal(depth_of(aemp_msg_root(m)), D);
    aemp_msg_t *deep_msg = m;
    f = brackets(D);
    log_level_seen = -1;
    assert_null(aemp_msgf(f));
    assert_int_equal(log_level_seen, AEMP_LOG_ERROR);
    assert_non_null(strstr(log_seen, "nested deeper"));
    /* aemp_valf: the root value is level 1 */
    m = aemp_valf(f);
    free(f);
    assert_non_null(m);
    check_layout(m);
    assert_int_equal(depth_of(aemp_msg_root(m)), D);
    aemp_msg_t *deep_val = m;
    f = brackets(D + 1);
    assert_null(aemp_valf(f));
    free(f);

    /* maps count the same (built by steps) */
    aemp_build_t *b = aemp_build_new();
    for (int i = 0; i < D - 1; i++) {
        assert_int_equal(aemp_build_map(b), 0);
        assert_int_equal(aemp_build_str(b, "k"), 0);
    }
    assert_int_equal(aemp_build_map(b), 0);                   /* level D: fits a root value */
    assert_int_equal(aemp_build_map(b), AEMP_ELIMIT);         /* level D + 1 never fits */
    assert_null(aemp_build_msg(b));
    /* D levels by steps: a root value, but not a message (its array adds one) */
    for (int as_msg = 0; as_msg < 2; as_msg++) {
        b = aemp_build_new();
        for (int i = 0; i < D; i++)
            assert_int_equal(aemp_build_array(b), 0);
        for (int i = 0; i < D; i++)
            assert_int_equal(aemp_build_close(b), 0);
        m = as_msg ? aemp_build_msg(b) : aemp_build_root(b);
        if (as_msg) {
            assert_null(m);
        } else {
            assert_non_null(m);
            assert_int_equal(depth_of(aemp_msg_root(m)), D);
            aemp_msg_unref(m);
        }
    }
    b = aemp_build_new();
    for (int i = 0; i < D - 1; i++) {
        assert_int_equal(aemp_build_map(b), 0);
        assert_int_equal(aemp_build_str(b, "k"), 0);
    }
    assert_int_equal(aemp_build_int(b, 1), 0);                /* scalars add no level */
    for (int i = 0; i < D - 1; i++)
        assert_int_equal(aemp_build_close(b), 0);
    m = aemp_build_msg(b);
    assert_non_null(m);
    check_layout(m);
    assert_int_equal(depth_of(aemp_msg_root(m)), D);
    aemp_msg_unref(m);

    /* copies keep the limit: a value D deep fits at the root only */
    m = aemp_msg_copy_val(aemp_msg_root(deep_val));
    assert_non_null(m);
    assert_true(aemp_val_equal(aemp_msg_root(m), aemp_msg_root(deep_val)));
    aemp_msg_unref(m);
    m = aemp_valf("v", aemp_msg_root(deep_val));
    assert_non_null(m);
    aemp_msg_unref(m);
    assert_null(aemp_msgf("v", aemp_msg_root(deep_val)));
    m = aemp_msgf("v", aemp_val_at(aemp_msg_root(deep_val), 0));
    assert_non_null(m);
    assert_int_equal(depth_of(aemp_msg_root(m)), D);
    aemp_msg_unref(m);
    m = aemp_msgf("m", deep_msg);
    assert_non_null(m);
    assert_true(aemp_val_equal(aemp_msg_root(m), aemp_msg_root(deep_msg)));
    aemp_msg_unref(m);
    assert_null(aemp_msgf("[m]", deep_msg));
    /* the helpers keep the elements where they were */
    m = aemp__msg_prepend_str("t", 1, deep_msg);
    assert_non_null(m);
    assert_int_equal(depth_of(aemp_msg_root(m)), D);
    aemp_msg_unref(m);
    aemp_msg_unref(deep_msg);
    aemp_msg_unref(deep_val);
}

/* -------------------------------------------------------------- unpack */

static void unpack_every_letter(void **state)
{
    aemp_msg_t *m = aemp_msgf("n b i I u f i s s# y y [i] s s", 1, -7, (int64_t)INT64_MIN,
                              (uint64_t)UINT64_MAX, 2.5, 3, "str", "a\0b", (size_t)3, "\xff", (size_t)1,
                              "txt", (size_t)3, 1, "skipped", "last");
    int bv = -1, iv = 0;
    int64_t Iv = 0;
    uint64_t uv = 0;
    double fv = 0, f2 = 0;
    const char *sv = NULL, *s2 = NULL;
    size_t s2len = 0, ylen = 0, y2len = 0;
    const void *yv = NULL, *y2 = NULL;
    const aemp_val_t *vv = NULL;
    const char *last = NULL;
    assert_int_equal(aemp_msg_unpack(m, "n b i I u f f s s# y y v * s", &bv, &iv, &Iv, &uv, &fv, &f2, &sv,
                                     &s2, &s2len, &yv, &ylen, &y2, &y2len, &vv, &last),
                     0);
    assert_int_equal(bv, 1);
    assert_int_equal(iv, -7);
    assert_true(Iv == INT64_MIN);
    assert_true(uv == UINT64_MAX);
    assert_true(fv == 2.5);
    assert_true(f2 == 3.0);                                   /* f reads an int */
    assert_string_equal(sv, "str");
    assert_int_equal(s2len, 3);
    assert_memory_equal(s2, "a\0b", 4);
    assert_int_equal(ylen, 1);
    assert_memory_equal(yv, "\xff", 2);
    assert_int_equal(y2len, 3);
    assert_memory_equal(y2, "txt", 3);                        /* y reads text too */
    assert_ptr_equal(vv, aemp_msg_at(m, 11));
    assert_string_equal(last, "last");
    /* without separators, and trailing elements ignored */
    assert_int_equal(aemp_msg_unpack(m, "nbi", &bv, &iv), 0);
    assert_int_equal(aemp_msg_unpack(m, ""), 0);
    assert_int_equal(aemp_msg_unpack(m, "**********v", &vv), 0);
    assert_int_equal(aemp_val_type(vv), AEMP_T_BYTES);        /* element 10: "txt" as bytes */
    assert_int_equal(aemp_msg_unpack(m, "***********v", &vv), 0);
    assert_int_equal(aemp_val_type(vv), AEMP_T_ARRAY);
    aemp_msg_unref(m);
}

static void unpack_errors(void **state)
{
    aemp_msg_t *m = aemp_msgf("s i I u f b n [ ]", "x", 1, (int64_t)INT64_MAX, (uint64_t)UINT64_MAX, 0.5, 1);
    const char *s;
    size_t len;
    int i;
    int64_t I;
    uint64_t u;
    double d;
    const void *y;
    const aemp_val_t *v;
    /* too few elements */
    assert_int_equal(aemp_msg_unpack(m, "*********"), AEMP_ERANGE);
    assert_int_equal(aemp_msg_unpack(m, "********s", &s), AEMP_ERANGE);
    assert_int_equal(aemp_msg_unpack(aemp_msg_empty(), "v", &v), AEMP_ERANGE);
    assert_int_equal(aemp_msg_unpack(NULL, "v", &v), AEMP_ERANGE);
    aemp_msg_t *scalar = aemp_valf("i", 1);                   /* the root is no array */
    assert_int_equal(aemp_msg_unpack(scalar, "i", &i), AEMP_ERANGE);
    aemp_msg_unref(scalar);
    /* wrong types */
    assert_int_equal(aemp_msg_unpack(m, "i", &i), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "I", &I), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "u", &u), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "f", &d), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "b", &i), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "n"), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "*s", &s), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "*s#", &s, &len), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "*y", &y, &len), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "*b", &i), AEMP_ETYPE);    /* an int is no bool */
    assert_int_equal(aemp_msg_unpack(m, "*****i", &i), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "******s", &s), AEMP_ETYPE);   /* null */
    assert_int_equal(aemp_msg_unpack(m, "*******i", &i), AEMP_ETYPE);  /* array */
    assert_int_equal(aemp_msg_unpack(m, "******v n", &v), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "****I", &I), AEMP_ETYPE);  /* a double is no int */
    /* numbers that do not fit */
    assert_int_equal(aemp_msg_unpack(m, "**i", &i), AEMP_ERANGE);  /* INT64_MAX in an int */
    assert_int_equal(aemp_msg_unpack(m, "***I", &I), AEMP_ERANGE); /* UINT in an int64 */
    assert_int_equal(aemp_msg_unpack(m, "***i", &i), AEMP_ERANGE);
    aemp_msg_unref(m);
    m = aemp_msgf("I I I I i", (int64_t)INT32_MAX, (int64_t)INT32_MIN, (int64_t)INT32_MAX + 1,
                  (int64_t)INT32_MIN - 1, -1);
    int a = 0, b = 0;
    assert_int_equal(aemp_msg_unpack(m, "ii", &a, &b), 0);
    assert_int_equal(a, INT32_MAX);
    assert_int_equal(b, INT32_MIN);
    assert_int_equal(aemp_msg_unpack(m, "**i", &a), AEMP_ERANGE);
    assert_int_equal(aemp_msg_unpack(m, "***i", &a), AEMP_ERANGE);
    assert_int_equal(aemp_msg_unpack(m, "****u", &u), AEMP_ERANGE);  /* negative */
    /* a bad letter */
    assert_int_equal(aemp_msg_unpack(m, "x"), AEMP_EINVAL);
    aemp_msg_unref(m);
}

/* ------------------------------------------------------------ accessors */

static void accessor_errors(void **state)
{
    aemp_msg_t *m = aemp_msgf("u s i b f n y", (uint64_t)UINT64_MAX, "7", -1, 1, 1.5, "0", (size_t)1);
    int64_t i = 123;
    uint64_t u = 123;
    double d = 0;
    int b = 0;
    assert_int_equal(aemp_val_int(aemp_msg_at(m, 0), &i), AEMP_ERANGE);   /* UINT */
    assert_int_equal(aemp_val_int(aemp_msg_at(m, 1), &i), AEMP_ETYPE);    /* a string */
    assert_int_equal(aemp_val_int(aemp_msg_at(m, 3), &i), AEMP_ETYPE);    /* a bool */
    assert_int_equal(aemp_val_int(aemp_msg_at(m, 4), &i), AEMP_ETYPE);    /* a double */
    assert_int_equal(aemp_val_int(aemp_msg_at(m, 5), &i), AEMP_ETYPE);    /* null */
    assert_int_equal(aemp_val_int(NULL, &i), AEMP_ETYPE);
    assert_true(i == 123);                                   /* untouched */
    assert_int_equal(aemp_val_uint(aemp_msg_at(m, 2), &u), AEMP_ERANGE);  /* negative */
    assert_int_equal(aemp_val_uint(aemp_msg_at(m, 1), &u), AEMP_ETYPE);
    assert_int_equal(aemp_val_uint(aemp_msg_at(m, 4), &u), AEMP_ETYPE);
    assert_int_equal(aemp_val_uint(NULL, &u), AEMP_ETYPE);
    assert_true(u == 123);
    assert_int_equal(aemp_val_double(aemp_msg_at(m, 1), &d), AEMP_ETYPE);
    assert_int_equal(aemp_val_double(aemp_msg_at(m, 3), &d), AEMP_ETYPE);
    assert_int_equal(aemp_val_double(aemp_msg_at(m, 5), &d), AEMP_ETYPE);
    assert_int_equal(aemp_val_double(NULL, &d), AEMP_ETYPE);
    assert_int_equal(aemp_val_double(aemp_msg_at(m, 2), &d), 0);
    assert_true(d == -1.0);
    assert_int_equal(aemp_val_bool(aemp_msg_at(m, 2), &b), AEMP_ETYPE);
    assert_int_equal(aemp_val_bool(aemp_msg_at(m, 5), &b), AEMP_ETYPE);
    assert_int_equal(aemp_val_bool(NULL, &b), AEMP_ETYPE);
    /* the message forms: no such element is AEMP_ERANGE */
    assert_int_equal(aemp_msg_int(m, 7, &i), AEMP_ERANGE);
    assert_int_equal(aemp_msg_uint(m, 7, &u), AEMP_ERANGE);
    assert_int_equal(aemp_msg_double(m, 7, &d), AEMP_ERANGE);
    assert_int_equal(aemp_msg_bool(m, 7, &b), AEMP_ERANGE);
    assert_int_equal(aemp_msg_int(m, 0, &i), AEMP_ERANGE);
    assert_int_equal(aemp_msg_int(m, 1, &i), AEMP_ETYPE);
    assert_int_equal(aemp_msg_uint(m, 2, &u), AEMP_ERANGE);
    assert_int_equal(aemp_msg_double(m, 5, &d), AEMP_ETYPE);
    assert_int_equal(aemp_msg_bool(m, 4, &b), AEMP_ETYPE);
    assert_int_equal(aemp_msg_int(NULL, 0, &i), AEMP_ERANGE);
    assert_null(aemp_msg_str(m, 0, NULL));
    assert_null(aemp_msg_str(m, 99, NULL));
    /* the string accessors take text and bytes alike */
    assert_string_equal(aemp_msg_str(m, 1, NULL), "7");
    assert_string_equal(aemp_msg_str(m, 6, NULL), "0");
    /* NULL reads as nothing */
    assert_int_equal(aemp_msg_len(NULL), 0);
    assert_null(aemp_msg_at(NULL, 0));
    assert_null(aemp_msg_root(NULL));
    assert_int_equal(aemp_val_len(NULL), 0);
    assert_null(aemp_val_at(NULL, 0));
    assert_null(aemp_val_key(NULL, 0));
    assert_null(aemp_val_value(NULL, 0));
    assert_null(aemp_val_str(NULL, NULL));
    aemp_msg_unref(m);
}

/* ------------------------------------------------- equality, text, truth */

static void equality(void **state)
{
    aemp_msg_t *a = nested(), *b = nested();
    assert_true(aemp_val_equal(aemp_msg_root(a), aemp_msg_root(b)));
    assert_true(aemp_val_equal(aemp_msg_root(a), aemp_msg_root(a)));
    assert_true(aemp_val_equal(aemp_msg_at(a, 1), aemp_msg_at(b, 1)));
    assert_false(aemp_val_equal(aemp_msg_at(a, 1), aemp_msg_at(b, 0)));
    aemp_msg_unref(a);
    aemp_msg_unref(b);

    aemp_msg_t *x, *y;
#define EQ(want, xa, ya)                                               \
    do {                                                               \
        x = xa;                                                        \
        y = ya;                                                        \
        assert_int_equal(aemp_val_equal(aemp_msg_root(x), aemp_msg_root(y)), want); \
        assert_int_equal(aemp_val_equal(aemp_msg_root(y), aemp_msg_root(x)), want); \
        aemp_msg_unref(x);                                             \
        aemp_msg_unref(y);                                             \
    } while (0)
    EQ(0, aemp_valf("s", "ab"), aemp_valf("y", "ab", (size_t)2));        /* text vs bytes */
    EQ(1, aemp_valf("y", "ab", (size_t)2), aemp_valf("y", "ab", (size_t)2));
    EQ(0, aemp_valf("s", "ab"), aemp_valf("s", "abc"));
    EQ(0, aemp_valf("s#", "a\0b", (size_t)3), aemp_valf("s#", "a\0c", (size_t)3));
    EQ(1, aemp_valf("s#", "a\0b", (size_t)3), aemp_valf("s#", "a\0b", (size_t)3));
    EQ(0, aemp_valf("[i i]", 1, 2), aemp_valf("[i i]", 2, 1));           /* order matters */
    EQ(0, aemp_valf("{s:i s:i}", "a", 1, "b", 2), aemp_valf("{s:i s:i}", "b", 2, "a", 1));
    EQ(1, aemp_valf("{s:i s:i}", "a", 1, "b", 2), aemp_valf("{s:I s:u}", "a", (int64_t)1, "b", (uint64_t)2));
    EQ(0, aemp_valf("{s:i}", "a", 1), aemp_valf("{s:i}", "b", 1));
    EQ(0, aemp_valf("{s:i}", "a", 1), aemp_valf("{y:i}", "a", (size_t)1, 1));
    EQ(0, aemp_valf("[i]", 1), aemp_valf("{s:i}", "a", 1));
    EQ(0, aemp_valf("[]"), aemp_valf("{}"));
    EQ(1, aemp_valf("[]"), aemp_valf("[]"));
    EQ(0, aemp_valf("[i]", 1), aemp_valf("[i i]", 1, 1));
    EQ(0, aemp_valf("i", 1), aemp_valf("f", 1.0));                       /* int vs double */
    EQ(0, aemp_valf("i", 1), aemp_valf("b", 1));                         /* int vs bool */
    EQ(0, aemp_valf("i", 0), aemp_valf("n"));
    EQ(1, aemp_valf("n"), aemp_valf("n"));
    EQ(1, aemp_valf("b", 1), aemp_valf("b", 7));
    EQ(0, aemp_valf("b", 1), aemp_valf("b", 0));
    EQ(1, aemp_valf("u", (uint64_t)UINT64_MAX), aemp_valf("u", (uint64_t)UINT64_MAX));
    EQ(0, aemp_valf("u", (uint64_t)UINT64_MAX), aemp_valf("I", (int64_t)-1));   /* same bits */
    EQ(1, aemp_valf("u", (uint64_t)5), aemp_valf("i", 5));                 /* canonical */
    EQ(1, aemp_valf("f", 1e300), aemp_valf("f", 1e300));
    EQ(1, aemp_valf("f", NAN), aemp_valf("f", NAN));                     /* the same value */
    EQ(0, aemp_valf("f", 0.5), aemp_valf("f", 0.25));
    EQ(1, aemp_valf("[[[s]]]", "x"), aemp_valf("[[[s]]]", "x"));
    EQ(0, aemp_valf("[[[s]]]", "x"), aemp_valf("[[[y]]]", "x", (size_t)1));
#undef EQ
    assert_true(aemp_val_equal(NULL, NULL));
    aemp_msg_t *n = aemp_valf("n");
    assert_false(aemp_val_equal(aemp_msg_root(n), NULL));
    assert_false(aemp_val_equal(NULL, aemp_msg_root(n)));
    aemp_msg_unref(n);
}

static void text_form(void **state)
{
    aemp_msg_t *m;
#define TEXT(want, expr)                             \
    do {                                             \
        m = expr;                                    \
        assert_non_null(m);                          \
        assert_text(aemp_msg_root(m), want);         \
        aemp_msg_unref(m);                           \
    } while (0)
    TEXT("null", aemp_valf("n"));
    TEXT("true", aemp_valf("b", 1));
    TEXT("false", aemp_valf("b", 0));
    TEXT("0", aemp_valf("i", 0));
    TEXT("-42", aemp_valf("i", -42));
    TEXT("-9223372036854775808", aemp_valf("I", (int64_t)INT64_MIN));
    TEXT("9223372036854775808", aemp_valf("u", UINT64_C(1) << 63));
    TEXT("18446744073709551615", aemp_valf("u", (uint64_t)UINT64_MAX));
    TEXT("1.0", aemp_valf("f", 1.0));                       /* a double stays a double */
    TEXT("0.1", aemp_valf("f", 0.1));
    TEXT("0.3333333333333333", aemp_valf("f", 1.0 / 3));
    TEXT("-2.5", aemp_valf("f", -2.5));
    TEXT("1e+300", aemp_valf("f", 1e300));
    TEXT("1e-300", aemp_valf("f", 1e-300));
    TEXT("1e+21", aemp_valf("f", 1e21));
    TEXT("0.0", aemp_valf("f", 0.0));
    TEXT("-0.0", aemp_valf("f", -0.0));
    TEXT("nan", aemp_valf("f", NAN));
    TEXT("inf", aemp_valf("f", INFINITY));
    TEXT("-inf", aemp_valf("f", -INFINITY));
    TEXT("1.7976931348623157e+308", aemp_valf("f", 1.7976931348623157e308));
    TEXT("\"\"", aemp_valf("s", ""));
    TEXT("\"plain\"", aemp_valf("s", "plain"));
    TEXT("\"q\\\"b\\\\\"", aemp_valf("s", "q\"b\\"));       /* " and \ escaped */
    TEXT("\"\\u0000\\u0001\\n\\u001f \"", aemp_valf("s#", "\0\1\n\x1f ", (size_t)5));
    TEXT("\"\xc3\xa4\"", aemp_valf("s", "\xc3\xa4"));        /* UTF-8 text as it is */
    TEXT("\"\xc3\xa4\"", aemp_valf("y", "\xc3\xa4", (size_t)2));   /* UTF-8 bytes too */
    TEXT("\"\\u00ff\\u00fe\"", aemp_valf("y", "\xff\xfe", (size_t)2));
    /* bytes that are not UTF-8: every byte above 0x7f escaped */
    TEXT("\"a\\u00c3\\u00a4\\u00ffz\"", aemp_valf("y", "a\xc3\xa4\xffz", (size_t)5));
    TEXT("\"\\u00c0\\u0080\"", aemp_valf("y", "\xc0\x80", (size_t)2));           /* overlong */
    TEXT("\"\\u00ed\\u00a0\\u0080\"", aemp_valf("y", "\xed\xa0\x80", (size_t)3)); /* surrogate */
    TEXT("\"\\u00f4\\u0090\\u0080\\u0080\"", aemp_valf("y", "\xf4\x90\x80\x80", (size_t)4));
    TEXT("\"\xf0\x9f\x98\x80\"", aemp_valf("y", "\xf0\x9f\x98\x80", (size_t)4));  /* U+1F600 */
    TEXT("\"\\u00e2\\u0082\"", aemp_valf("y", "\xe2\x82", (size_t)2));           /* cut short */
    TEXT("[]", aemp_valf("[]"));
    TEXT("{}", aemp_valf("{}"));
    TEXT("[1,\"a\",[null,{\"k\":[true,2.5]}]]", aemp_valf("[i s [n {s:[b f]}]]", 1, "a", "k", 1, 2.5));
    TEXT("{\"\\u00ff\":\"\\u00fe\"}", aemp_valf("{y:y}", "\xff", (size_t)1, "\xfe", (size_t)1));
#undef TEXT
    /* NULL is null; a message's text is its root's */
    assert_text(NULL, "null");
    m = aemp_msgf("s i", "tag", 1);
    assert_msg_text(m, "[\"tag\",1]");
    aemp_msg_unref(m);
    /* long text grows */
    aemp_build_t *b = aemp_build_new();
    for (int i = 0; i < 1000; i++)
        aemp_build_str(b, "abcdefghij");
    m = aemp_build_msg(b);
    char *t = aemp__msg_text(m);
    assert_int_equal(strlen(t), 2 + 1000 * 12 + 999);
    free(t);
    aemp_msg_unref(m);
}

static void utf8_and_doubles(void **state)
{
    assert_true(aemp__utf8_valid((const uint8_t *)"", 0));
    assert_true(aemp__utf8_valid((const uint8_t *)"ascii only, longer than eight", 29));
    assert_true(aemp__utf8_valid((const uint8_t *)"\x7f\xc2\x80\xdf\xbf", 5));
    assert_true(aemp__utf8_valid((const uint8_t *)"\xe0\xa0\x80\xef\xbf\xbf", 6));
    assert_true(aemp__utf8_valid((const uint8_t *)"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8));
    assert_true(aemp__utf8_valid((const uint8_t *)"a\0b", 3));
    assert_false(aemp__utf8_valid((const uint8_t *)"\x80", 1));
    assert_false(aemp__utf8_valid((const uint8_t *)"\xc1\xbf", 2));          /* overlong */
    assert_false(aemp__utf8_valid((const uint8_t *)"\xe0\x9f\xbf", 3));      /* overlong */
    assert_false(aemp__utf8_valid((const uint8_t *)"\xf0\x8f\xbf\xbf", 4));  /* overlong */
    assert_false(aemp__utf8_valid((const uint8_t *)"\xed\xbf\xbf", 3));      /* surrogate */
    assert_false(aemp__utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
    assert_false(aemp__utf8_valid((const uint8_t *)"\xf5\x80\x80\x80", 4));
    assert_false(aemp__utf8_valid((const uint8_t *)"\xc3", 1));              /* cut short */
    assert_false(aemp__utf8_valid((const uint8_t *)"\xc3\x28", 2));
    assert_false(aemp__utf8_valid((const uint8_t *)"12345678\xff", 9));      /* after a fast run */
    assert_false(aemp__utf8_valid((const uint8_t *)"\xff", 1));

    char out[32];
    assert_int_equal(aemp__fmt_double(out, 1.0), 3);
    assert_string_equal(out, "1.0");
    aemp__fmt_double(out, 123456789012345680.0);
    assert_string_equal(out, "1.2345678901234568e+17");
    aemp__fmt_double(out, -1.2345678901234567e-300);
    assert_true(strtod(out, NULL) == -1.2345678901234567e-300);
    aemp__fmt_double(out, 0.1 + 0.2);
    assert_string_equal(out, "0.30000000000000004");
    aemp__fmt_double(out, 5e-324);
    assert_true(strtod(out, NULL) == 5e-324);
    aemp__fmt_double(out, 100.0);
    assert_string_equal(out, "100.0");
    aemp__fmt_double(out, -INFINITY);
    assert_string_equal(out, "-inf");
}

static void truth(void **state)
{
    aemp_msg_t *m = aemp_msgf("n b b i i i u f f f f f s s s s s y y [] {} s",
                              0, 1, 0, 1, -1, (uint64_t)UINT64_MAX, 0.0, -0.0, 0.5, (double)NAN,
                              1e-300, "", "0", "00", "0.0", " ", "0", (size_t)1, "", (size_t)0, "a");
    static const int want[] = {
        0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1,
    };
    assert_int_equal(aemp_msg_len(m), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (aemp_val_truthy(aemp_msg_at(m, i)) != want[i])
            fail_msg("element %zu: truthy is %d", i, aemp_val_truthy(aemp_msg_at(m, i)));
    assert_false(aemp_val_truthy(NULL));
    aemp_msg_unref(m);
}

/* ------------------------------------------------------ copies, helpers */

static void copy_val(void **state)
{
    aemp_msg_t *m = nested();
    const aemp_val_t *map = aemp_val_at(aemp_val_at(aemp_msg_at(m, 1), 1), 1);
    aemp_msg_t *c = aemp_msg_copy_val(map);
    check_layout(c);
    assert_true(aemp_val_equal(aemp_msg_root(c), map));
    assert_int_equal(aemp_val_type(aemp_msg_root(c)), AEMP_T_MAP);
    /* just the value's cells and strings: "a" [4 5] "b" {"c" "d"} "" null */
    assert_int_equal(c->ncells, 1 + 2 * 3 + 2 + 2);
    assert_int_equal(c->heaplen, 2 + 2 + 2 + 2 + 1);
    aemp_msg_unref(m);                                       /* independent of m */
    assert_text(aemp_msg_root(c), "{\"a\":[4,5],\"b\":{\"c\":\"d\"},\"\":null}");
    aemp_msg_unref(c);

    /* every type, kept as it is */
    m = aemp_msgf("n b i u f s y [] {}", 1, -3, (uint64_t)UINT64_MAX, -0.0, "s", "\x80", (size_t)1);
    for (size_t i = 0; i < aemp_msg_len(m); i++) {
        c = aemp_msg_copy_val(aemp_msg_at(m, i));
        check_layout(c);
        assert_true(aemp_val_equal(aemp_msg_root(c), aemp_msg_at(m, i)));
        aemp_msg_unref(c);
    }
    c = aemp_msg_copy_val(aemp_msg_root(m));                  /* the whole message */
    assert_true(aemp_val_equal(aemp_msg_root(c), aemp_msg_root(m)));
    assert_int_equal(aemp__msg_size(c), aemp__msg_size(m));
    double d;
    aemp_msg_double(c, 4, &d);
    assert_true(signbit(d));
    aemp_msg_unref(c);
    aemp_msg_unref(m);

    c = aemp_msg_copy_val(NULL);                              /* NULL: a null root */
    assert_int_equal(aemp_val_type(aemp_msg_root(c)), AEMP_T_NULL);
    aemp_msg_unref(c);

    /* null, false and true: one shared message each, never freed */
    m = aemp_msgf("n b b n", 0, 1);
    aemp_msg_t *n1 = aemp_msg_copy_val(aemp_msg_at(m, 0)), *n2 = aemp_msg_copy_val(aemp_msg_at(m, 3));
    aemp_msg_t *f = aemp_msg_copy_val(aemp_msg_at(m, 1)), *t = aemp_msg_copy_val(aemp_msg_at(m, 2));
    assert_ptr_equal(n1, n2);
    assert_true(aemp__msg_is_shared(n1) && aemp__msg_is_shared(f) && aemp__msg_is_shared(t));
    assert_ptr_not_equal(f, t);
    assert_int_equal(aemp_val_type(aemp_msg_root(f)), AEMP_T_BOOL);
    assert_false(aemp_val_truthy(aemp_msg_root(f)));
    assert_true(aemp_val_truthy(aemp_msg_root(t)));
    for (int i = 0; i < 3; i++)
        aemp_msg_unref(aemp_msg_ref(n1));
    aemp_msg_unref(n1);
    aemp_msg_unref(n2);
    aemp_msg_unref(f);
    aemp_msg_unref(t);
    assert_int_equal(aemp_val_type(aemp_msg_root(n1)), AEMP_T_NULL);   /* still there */
    aemp_msg_t *s = aemp__msg_slice_own(aemp_msg_ref(n1), 0);         /* not an array: no elements */
    assert_ptr_equal(s, aemp_msg_empty());
    aemp_msg_unref(s);
    aemp_msg_unref(m);
}

static void internal_helpers(void **state)
{
    aemp_msg_t *m = aemp_msgf("s u y [i {s:s}]", "a", (uint64_t)UINT64_MAX, "\xff", (size_t)1, 1, "k", "v");

    aemp_msg_t *p = aemp__msg_prepend_str("port", 4, m);
    check_layout(p);
    assert_msg_text(p, "[\"port\",\"a\",18446744073709551615,\"\\u00ff\",[1,{\"k\":\"v\"}]]");
    assert_int_equal(aemp_val_type(aemp_msg_at(p, 0)), AEMP_T_STR);
    assert_int_equal(aemp_val_type(aemp_msg_at(p, 2)), AEMP_T_UINT);
    assert_int_equal(aemp_val_type(aemp_msg_at(p, 3)), AEMP_T_BYTES);
    for (size_t i = 0; i < aemp_msg_len(m); i++)
        assert_true(aemp_val_equal(aemp_msg_at(p, i + 1), aemp_msg_at(m, i)));
    aemp_msg_unref(p);
    p = aemp__msg_prepend_str("t\0x", 3, m);                  /* any bytes */
    size_t len;
    assert_memory_equal(aemp_msg_tag(p, &len), "t\0x", 3);
    assert_int_equal(len, 3);
    aemp_msg_unref(p);
    p = aemp__msg_prepend_str("only", 4, NULL);
    assert_msg_text(p, "[\"only\"]");
    aemp_msg_unref(p);
    p = aemp__msg_prepend_str("e", 1, aemp_msg_empty());
    assert_msg_text(p, "[\"e\"]");
    aemp_msg_unref(p);

    aemp_msg_t *s = aemp__msg_slice(m, 1);
    check_block(s, 0);
    assert_msg_text(s, "[18446744073709551615,\"\\u00ff\",[1,{\"k\":\"v\"}]]");
    aemp_msg_unref(s);
    s = aemp__msg_slice(m, 0);
    check_layout(s);
    assert_true(aemp_val_equal(aemp_msg_root(s), aemp_msg_root(m)));
    assert_ptr_not_equal(s, m);
    aemp_msg_unref(s);
    s = aemp__msg_slice(m, 3);
    check_block(s, 0);
    assert_msg_text(s, "[[1,{\"k\":\"v\"}]]");
    aemp_msg_unref(s);
    s = aemp__msg_slice(m, 4);
    check_layout(s);
    assert_int_equal(aemp_msg_len(s), 0);
    aemp_msg_unref(s);
    s = aemp__msg_slice(m, 1000);
    assert_int_equal(aemp_msg_len(s), 0);
    aemp_msg_unref(s);
    s = aemp__msg_slice(NULL, 0);
    assert_int_equal(aemp_msg_len(s), 0);
    aemp_msg_unref(s);

    aemp_msg_t *a = aemp__msg_append_str(m, "end", 3);
    check_layout(a);
    assert_msg_text(a, "[\"a\",18446744073709551615,\"\\u00ff\",[1,{\"k\":\"v\"}],\"end\"]");
    aemp_msg_unref(a);
    a = aemp__msg_append_str(NULL, "", 0);
    assert_msg_text(a, "[\"\"]");
    aemp_msg_unref(a);

    /* the result of one is input to the next (as the runtime chains them) */
    p = aemp__msg_prepend_str("tag", 3, m);
    s = aemp__msg_slice(p, 1);
    assert_true(aemp_val_equal(aemp_msg_root(s), aemp_msg_root(m)));
    aemp_msg_unref(p);
    aemp_msg_unref(s);
    aemp_msg_unref(m);
}

/* ----------------------------------------------------- refs, recycling */

static void refcounting(void **state)
{
    aemp_msg_t *m = aemp_msgf("s", "x");
    assert_int_equal(m->refs, 1);
    assert_ptr_equal(aemp_msg_ref(m), m);
    assert_ptr_equal(aemp_msg_ref(m), m);
    assert_int_equal(m->refs, 3);
    aemp_msg_unref(m);
    aemp_msg_unref(m);
    assert_int_equal(m->refs, 1);
    assert_string_equal(aemp_msg_str(m, 0, NULL), "x");      /* still alive */
    aemp_msg_unref(m);                                       /* freed (ASan: no leak) */
    assert_null(aemp_msg_ref(NULL));
    aemp_msg_unref(NULL);

    /* the shared empty message */
    aemp_msg_t *e = aemp_msg_empty();
    assert_ptr_equal(aemp_msg_empty(), e);
    assert_int_equal(aemp_msg_len(e), 0);
    assert_int_equal(aemp_val_type(aemp_msg_root(e)), AEMP_T_ARRAY);
    assert_ptr_equal(aemp_msg_root(e), &e->cells[0]);
    assert_null(aemp_msg_at(e, 0));
    check_layout(e);
    assert_int_equal(aemp__msg_size(e), sizeof(aemp_msg_t) + 16);
    for (int i = 0; i < 10; i++)
        aemp_msg_ref(e);
    for (int i = 0; i < 100; i++)                            /* never freed */
        aemp_msg_unref(e);
    assert_ptr_equal(aemp_msg_ref(e), e);
    assert_int_equal(aemp_msg_len(aemp_msg_empty()), 0);
    assert_msg_text(e, "[]");
    m = aemp_msgf("[]");                                     /* [[]] differs from [] */
    assert_false(aemp_val_equal(aemp_msg_root(m), aemp_msg_root(e)));
    assert_true(aemp_val_equal(aemp_msg_at(m, 0), aemp_msg_root(e)));
    aemp_msg_unref(m);
}

static void builder_recycling(void **state)
{
    /* steady state: the builder comes back from the cache */
    aemp_build_t *b = aemp_build_new();
    aemp_build_abort(b);
    for (int i = 0; i < 10000; i++) {
        aemp_build_t *c = aemp_build_new();
        assert_ptr_equal(c, b);
        aemp_build_int(c, i);
        aemp_build_str(c, "payload");
        aemp_msg_t *m = aemp_build_msg(c);
        int64_t x;
        assert_int_equal(aemp_msg_int(m, 0, &x), 0);
        assert_true(x == i);
        aemp_msg_unref(m);
        m = aemp_msgf("is", i, "x");                          /* the formats use it too */
        aemp_msg_unref(m);
    }
    /* its storage is kept while small */
    b = aemp_build_new();
    struct aemp_val *cells = b->cells;
    assert_non_null(cells);
    aemp_build_int(b, 1);
    aemp_msg_unref(aemp_build_msg(b));
    b = aemp_build_new();
    assert_ptr_equal(b->cells, cells);
    aemp_build_abort(b);

    /* several builders at once (nested building), all recycled */
    aemp_build_t *many[10];
    for (int i = 0; i < 10; i++) {
        many[i] = aemp_build_new();
        for (int k = 0; k < i; k++)
            assert_ptr_not_equal(many[i], many[k]);
        aemp_build_int(many[i], i);
    }
    for (int i = 0; i < 10; i++) {
        aemp_msg_t *m = aemp_build_msg(many[i]);
        assert_int_equal(aemp_msg_len(m), 1);
        aemp_msg_unref(m);
    }

    /* a builder that grew huge gives its memory back */
    b = aemp_build_new();
    for (int i = 0; i < 100000; i++)
        aemp_build_int(b, i);
    assert_true(b->capcells >= 100000);
    aemp_build_t *grown = b;
    aemp_msg_unref(aemp_build_msg(b));
    b = aemp_build_new();
    assert_ptr_equal(b, grown);                              /* the last one back */
    assert_true(b->capcells <= 4096);
    aemp_build_abort(b);
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    aemp_msg_t *m = aemp_msgf("s#", big, sizeof big);
    aemp_msg_unref(m);
    b = aemp_build_new();
    assert_true(b->capheap <= 64u << 10);       /* msg.c keeps up to 64 KiB of heap */
    assert_true(b->capcells <= 4096);           /* and 4096 cells */
    aemp_build_abort(b);
}

/* ----------------------------------------------------------------- large */

static void large_messages(void **state)
{
    enum { N = 100000 };
    aemp_build_t *b = aemp_build_new();
    for (int i = 0; i < N; i++)
        assert_int_equal(aemp_build_int(b, i), 0);
    aemp_msg_t *m = aemp_build_msg(b);
    check_layout(m);
    assert_int_equal(aemp_msg_len(m), N);
    assert_int_equal(aemp__msg_size(m), sizeof(aemp_msg_t) + (N + 1) * 16);
    for (int i = 0; i < N; i += 997) {
        int64_t x;
        assert_int_equal(aemp_msg_int(m, (size_t)i, &x), 0);
        assert_true(x == i);
    }
    int64_t x;
    assert_int_equal(aemp_msg_int(m, N - 1, &x), 0);
    assert_true(x == N - 1);
    assert_null(aemp_msg_at(m, N));
    aemp_msg_unref(m);

    /* a map of N pairs and an array of N strings, nested */
    b = aemp_build_new();
    aemp_build_map(b);
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        aemp_build_str(b, key);
        aemp_build_array(b);
        aemp_build_str(b, key + 1);
        aemp_build_close(b);
    }
    aemp_build_close(b);
    m = aemp_build_root(b);
    check_layout(m);
    const aemp_val_t *map = aemp_msg_root(m);
    assert_int_equal(aemp_val_len(map), N);
    assert_string_equal(aemp_val_str(aemp_val_at(aemp_val_get(map, "k99999"), 0), NULL), "99999");
    assert_string_equal(aemp_val_str(aemp_val_key(map, 12345), NULL), "k12345");
    assert_string_equal(aemp_val_str(aemp_val_at(aemp_val_value(map, 12345), 0), NULL), "12345");
    aemp_msg_t *c = aemp_msg_copy_val(map);
    assert_true(aemp_val_equal(aemp_msg_root(c), map));
    assert_int_equal(aemp__msg_size(c), aemp__msg_size(m));
    aemp_msg_unref(c);
    aemp_msg_unref(m);

    /* a 16 MiB string */
    size_t len = (size_t)16 << 20;
    char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + i % 26);
    m = aemp_msgf("s s# y", "head", big, len, big, len);
    check_layout(m);
    assert_int_equal(aemp__msg_size(m), sizeof(aemp_msg_t) + 4 * 16 + 5 + 2 * (len + 1));
    size_t got;
    const char *s = aemp_msg_str(m, 1, &got);
    assert_int_equal(got, len);
    assert_memory_equal(s, big, len);
    assert_int_equal(s[len], 0);
    s = aemp_msg_str(m, 2, &got);
    assert_int_equal(got, len);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 2)), AEMP_T_BYTES);
    assert_memory_equal(s, big, len);
    aemp_msg_t *p = aemp__msg_prepend_str("t", 1, m);
    assert_int_equal(aemp_msg_len(p), 4);
    assert_true(aemp_val_equal(aemp_msg_at(p, 2), aemp_msg_at(m, 1)));
    aemp_msg_unref(p);
    aemp_msg_unref(m);
    free(big);
}

/* -------------------------------------------------------- random trees */

/* A small deterministic generator (the test repeats exactly). */
static uint64_t rng_state = 88172645463325252u;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Append the C string s to the malloc'd string *t of length *len. */
static void tcat(char **t, size_t *len, const char *s)
{
    size_t n = strlen(s);
    *t = realloc(*t, *len + n + 1);
    assert_non_null(*t);
    memcpy(*t + *len, s, n + 1);
    *len += n;
}

/* Append a random value of at most `depth` container levels to b, and the
 * text that aemp_val_text must give for it to *t. */
static void random_value(aemp_build_t *b, char **t, size_t *tlen, int depth)
{
    char buf[64];
    int kind = (int)rnd(depth > 0 ? 9 : 7);
    switch (kind) {
    case 0:
        assert_int_equal(aemp_build_null(b), 0);
        tcat(t, tlen, "null");
        break;
    case 1: {
        int x = (int)rnd(2);
        assert_int_equal(aemp_build_bool(b, x), 0);
        tcat(t, tlen, x ? "true" : "false");
        break;
    }
    case 2: {
        int64_t x = (int64_t)rnd(2000000) - 1000000;
        assert_int_equal(aemp_build_int(b, x), 0);
        snprintf(buf, sizeof buf, "%" PRId64, x);
        tcat(t, tlen, buf);
        break;
    }
    case 3: {
        uint64_t x = (UINT64_C(1) << 63) + rnd(1000);
        assert_int_equal(aemp_build_uint(b, x), 0);
        snprintf(buf, sizeof buf, "%" PRIu64, x);
        tcat(t, tlen, buf);
        break;
    }
    case 4: {
        double x = (double)rnd(1000) + 0.5;
        assert_int_equal(aemp_build_double(b, x), 0);
        snprintf(buf, sizeof buf, "%.1f", x);
        tcat(t, tlen, buf);
        break;
    }
    case 5:
    case 6: {
        size_t n = rnd(12);
        char str[16];
        for (size_t i = 0; i < n; i++)
            str[i] = (char)('a' + rnd(26));
        if (kind == 5)
            assert_int_equal(aemp_build_strn(b, str, n), 0);
        else
            assert_int_equal(aemp_build_bytes(b, str, n), 0);
        snprintf(buf, sizeof buf, "\"%.*s\"", (int)n, str);
        tcat(t, tlen, buf);
        break;
    }
    default: {
        int map = kind == 8;
        size_t n = rnd(6);
        assert_int_equal(map ? aemp_build_map(b) : aemp_build_array(b), 0);
        tcat(t, tlen, map ? "{" : "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                tcat(t, tlen, ",");
            if (map) {
                snprintf(buf, sizeof buf, "k%zu", i);
                assert_int_equal(aemp_build_str(b, buf), 0);
                snprintf(buf, sizeof buf, "\"k%zu\":", i);
                tcat(t, tlen, buf);
            }
            random_value(b, t, tlen, depth - 1);
        }
        assert_int_equal(aemp_build_close(b), 0);
        tcat(t, tlen, map ? "}" : "]");
        break;
    }
    }
}

/* A message of exactly `bytes` bytes (header, root, string cells and
 * heap): n strings of 15 bytes (a 16-byte cell, 16 heap bytes each) and a
 * last one of what is left over (bytes - 32 - 16 * n >= 17). */
static aemp_msg_t *sized_msg(size_t bytes)
{
    aemp_build_t *b = aemp_build_new();
    size_t left = bytes - 32;
    static const char fill[512] = { 0 };
    while (left >= 64) {
        aemp_build_strn(b, fill, 15);
        left -= 32;
    }
    aemp_build_strn(b, fill, left - 17);
    aemp_msg_t *m = aemp_build_msg(b);
    assert_non_null(m);
    assert_int_equal(aemp__msg_size(m), bytes);
    return m;
}

/* Small blocks come back for messages of the same size class (multiples
 * of 64 bytes up to 256), whatever their exact size (malloc alone would
 * not give 49 and 64, or 129 and 192 bytes, the same block); a cached
 * block is reused only for a message it holds. */
static void block_reuse(void **state)
{
    static const size_t sizes[] = { 49, 64, 65, 100, 128, 129, 192, 193, 255, 256 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        aemp_msg_t *m = sized_msg(sizes[i]);
        void *block = m;
        aemp_msg_unref(m);
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            int same_class = (sizes[j] - 1) / 64 == (sizes[i] - 1) / 64;
            m = sized_msg(sizes[j]);
            check_layout(m);   /* its block holds it */
            if (same_class)
                assert_ptr_equal(m, block);
            else
                assert_ptr_not_equal(m, block);
            block = m;
            aemp_msg_unref(m);
            if (!same_class) {   /* put back the block of class i */
                m = sized_msg(sizes[i]);
                block = m;
                aemp_msg_unref(m);
            }
        }
    }
}

/* The elements of m from `from` on, rebuilt value by value (what a relay
 * must give), with `pre` prepended and `post` appended if not NULL. */
static aemp_msg_t *rebuilt(const aemp_msg_t *m, size_t from, const char *pre, const char *post)
{
    aemp_build_t *b = aemp_build_new();
    if (pre)
        aemp_build_str(b, pre);
    for (size_t i = from; i < aemp_msg_len(m); i++)
        assert_int_equal(aemp_build_val(b, aemp_msg_at(m, i)), 0);
    if (post)
        aemp_build_str(b, post);
    aemp_msg_t *r = aemp_build_msg(b);
    assert_non_null(r);
    return r;
}

/* r holds the same values as want (and its text); want is released. */
static void assert_same_msg(const aemp_msg_t *r, aemp_msg_t *want)
{
    assert_true(aemp_val_equal(aemp_msg_root(r), aemp_msg_root(want)));
    char *a = aemp__msg_text(r), *b = aemp__msg_text(want);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_t *ja = aemp_msg_to_json(r), *jb = aemp_msg_to_json(want);
    assert_true(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
    aemp_msg_unref(want);
}

/* Relays: slices are one copy of the block with the root re-pointed,
 * prepend/append one copy with a cell put in; all of them give exactly the
 * values a rebuild gives, own their memory, and chain (a slice's unreached
 * cells stay unreached through prepend, append and further slices). */
static void relay_slices(void **state)
{
    /* nested values: the slice is the source's block, re-pointed */
    aemp_msg_t *m = nested();
    for (size_t from = 0; from <= aemp_msg_len(m); from++) {
        aemp_msg_t *s = aemp__msg_slice(m, from);
        check_block(s, from == 0 || from == aemp_msg_len(m));
        assert_int_equal(aemp_msg_len(s), aemp_msg_len(m) - from);
        if (from < aemp_msg_len(m)) {
            assert_int_equal(aemp__msg_size(s), aemp__msg_size(m));   /* no rebuild */
            assert_int_equal(s->refs, 1);
        }
        assert_same_msg(s, rebuilt(m, from, NULL, NULL));
        aemp_msg_unref(s);
    }
    assert_int_equal(m->refs, 1);                               /* the source untouched */
    aemp_msg_t *s = aemp__msg_slice(m, 1);
    aemp_msg_t *want = rebuilt(m, 1, NULL, NULL);
    aemp_msg_unref(m);                                          /* independent of m */
    check_block(s, 0);
    assert_msg_text(s, "[[2,[3,{\"a\":[4,5],\"b\":{\"c\":\"d\"},\"\":null}]],\"e\",{}]");
    const aemp_val_t *map = aemp_val_at(aemp_val_at(aemp_msg_at(s, 0), 1), 1);
    assert_string_equal(aemp_val_str(aemp_val_get(aemp_val_get(map, "b"), "c"), NULL), "d");
    assert_same_msg(s, want);

    /* chains on a slice whose first element is not cells[1] */
    aemp_msg_t *p = aemp__msg_prepend_str("tag", 3, s);
    check_block(p, 0);
    assert_msg_text(p, "[\"tag\",[2,[3,{\"a\":[4,5],\"b\":{\"c\":\"d\"},\"\":null}]],\"e\",{}]");
    assert_same_msg(p, rebuilt(s, 0, "tag", NULL));
    aemp_msg_t *a = aemp__msg_append_str(s, "reply", 5);
    check_block(a, 0);
    assert_msg_text(a, "[[2,[3,{\"a\":[4,5],\"b\":{\"c\":\"d\"},\"\":null}]],\"e\",{},\"reply\"]");
    assert_same_msg(a, rebuilt(s, 0, NULL, "reply"));
    aemp_msg_t *s2 = aemp__msg_slice(a, 2);                     /* a slice of a slice */
    assert_msg_text(s2, "[{},\"reply\"]");
    aemp_msg_t *a2 = aemp__msg_append_str(p, "", 0);
    assert_same_msg(a2, rebuilt(s, 0, "tag", ""));
    aemp_msg_unref(s);                                          /* each owns its block */
    aemp_msg_unref(p);
    aemp_msg_unref(a);
    assert_msg_text(s2, "[{},\"reply\"]");
    check_block(s2, 0);
    check_block(a2, 0);
    aemp_msg_unref(s2);
    aemp_msg_unref(a2);

    /* taking over the only reference re-points the block itself; with
     * another reference it is a copy and the other holder's view stays */
    m = nested();
    want = rebuilt(m, 1, NULL, NULL);
    aemp_msg_t *want2 = rebuilt(m, 1, NULL, NULL);
    assert_true(aemp__msg_sole(m));
    assert_false(aemp__msg_sole(aemp_msg_empty()));
    assert_false(aemp__msg_sole(NULL));
    s = aemp__msg_slice_own(m, 1);
    assert_ptr_equal(s, m);
    assert_same_msg(s, want);
    aemp_msg_t *held = aemp_msg_ref(s);
    assert_false(aemp__msg_sole(s));
    aemp_msg_t *s3 = aemp__msg_slice_own(s, 2);
    assert_ptr_not_equal(s3, held);
    assert_int_equal(held->refs, 1);
    assert_same_msg(held, want2);
    assert_msg_text(s3, "[{}]");
    aemp_msg_unref(s3);
    const char *e = aemp_msg_str(held, 1, NULL);
    s3 = aemp__msg_slice_own(held, 3);                          /* nothing left: [] */
    assert_ptr_equal(s3, held);                                 /* what was read of it stays */
    assert_int_equal(aemp_msg_len(s3), 0);
    assert_string_equal(e, "e");
    assert_msg_text(s3, "[]");
    aemp_msg_unref(s3);
    m = aemp_msgf("s", "only");                                 /* shared: the empty one */
    held = aemp_msg_ref(m);
    s3 = aemp__msg_slice_own(m, 1);
    assert_ptr_equal(s3, aemp_msg_empty());
    assert_msg_text(held, "[\"only\"]");
    aemp_msg_unref(held);

    /* strings: any bytes, both kinds, a long one */
    static char big[100000];
    memset(big, 'z', sizeof big);
    m = aemp_msgf("s s# y s# s", "head", "a\0b", (size_t)3, "\x00\xff", (size_t)2, big, sizeof big, "");
    s = aemp__msg_slice(m, 1);
    check_block(s, 0);
    size_t len;
    assert_memory_equal(aemp_msg_str(s, 0, &len), "a\0b", 3);
    assert_int_equal(len, 3);
    assert_int_equal(aemp_val_type(aemp_msg_at(s, 1)), AEMP_T_BYTES);
    assert_memory_equal(aemp_msg_str(s, 1, &len), "\x00\xff", 2);
    assert_int_equal(len, 2);
    assert_int_equal(aemp_msg_str(s, 2, &len)[len], 0);
    assert_int_equal(len, sizeof big);
    assert_string_equal(aemp_msg_str(s, 3, NULL), "");
    assert_same_msg(s, rebuilt(m, 1, NULL, NULL));
    p = aemp__msg_prepend_str("t\0", 2, s);
    assert_memory_equal(aemp_msg_tag(p, &len), "t\0", 2);
    assert_int_equal(aemp_msg_len(p), 5);
    assert_true(aemp_val_equal(aemp_msg_at(p, 3), aemp_msg_at(m, 3)));
    s2 = aemp__msg_slice(p, 1);
    assert_same_msg(s2, rebuilt(m, 1, NULL, NULL));
    aemp_msg_unref(s2);
    aemp_msg_unref(p);
    aemp_msg_unref(s);
    aemp_msg_unref(m);

    /* the empty tail is the shared empty message; so are [] and NULL */
    m = aemp_msgf("s i", "x", 1);
    assert_ptr_equal(aemp__msg_slice(m, 2), aemp_msg_empty());
    assert_ptr_equal(aemp__msg_slice(m, SIZE_MAX), aemp_msg_empty());
    assert_ptr_equal(aemp__msg_slice(aemp_msg_empty(), 0), aemp_msg_empty());
    assert_ptr_equal(aemp__msg_slice(NULL, 0), aemp_msg_empty());
    aemp_msg_t *root = aemp_valf("{s:i}", "k", 1);             /* no root array: no elements */
    assert_ptr_equal(aemp__msg_slice(root, 0), aemp_msg_empty());
    p = aemp__msg_prepend_str("p", 1, root);
    assert_msg_text(p, "[\"p\"]");
    check_layout(p);
    aemp_msg_unref(p);
    aemp_msg_unref(root);
    s = aemp__msg_slice(m, 1);
    assert_msg_text(s, "[1]");
    aemp_msg_unref(m);
    aemp_msg_unref(s);

    /* too large: a string the n field cannot hold */
    assert_null(aemp__msg_prepend_str("", AEMP_MSG_MAX_STR, aemp_msg_empty()));
    assert_null(aemp__msg_append_str(NULL, "", AEMP_MSG_MAX_STR));

    /* random messages: every slice, with and without a prepended and an
     * appended string, equals its rebuild */
    for (int round = 0; round < 300; round++) {
        aemp_build_t *b = aemp_build_new();
        char *t = NULL;
        size_t tlen = 0, n = 1 + rnd(6);
        for (size_t i = 0; i < n; i++)
            random_value(b, &t, &tlen, 1 + (int)rnd(4));
        free(t);
        m = aemp_build_msg(b);
        assert_non_null(m);
        for (size_t from = 0; from <= n; from++) {
            s = aemp__msg_slice(m, from);
            check_block(s, 0);
            assert_same_msg(s, rebuilt(m, from, NULL, NULL));
            p = aemp__msg_prepend_str("pre", 3, s);
            check_block(p, 0);
            assert_same_msg(p, rebuilt(m, from, "pre", NULL));
            a = aemp__msg_append_str(p, "post", 4);
            check_block(a, 0);
            assert_same_msg(a, rebuilt(m, from, "pre", "post"));
            s2 = aemp__msg_slice(a, 1);
            assert_same_msg(s2, rebuilt(m, from, NULL, "post"));
            aemp_msg_unref(s2);
            aemp_msg_unref(a);
            aemp_msg_unref(p);
            aemp_msg_unref(s);
        }
        aemp_msg_unref(m);
    }
}

/* Random trees of every type, as messages and as roots: the text shows
 * what was built, copies are equal and byte for byte the same. */
static void random_trees(void **state)
{
    for (int round = 0; round < 2000; round++) {
        aemp_build_t *b = aemp_build_new();
        char *want = NULL;
        size_t wlen = 0;
        int as_msg = round % 2;
        size_t n = as_msg ? rnd(5) : 1;
        if (as_msg)
            tcat(&want, &wlen, "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                tcat(&want, &wlen, ",");
            random_value(b, &want, &wlen, 1 + (int)rnd(6));
        }
        if (as_msg)
            tcat(&want, &wlen, "]");
        aemp_msg_t *m = as_msg ? aemp_build_msg(b) : aemp_build_root(b);
        check_layout(m);
        assert_text(aemp_msg_root(m), want);
        aemp_msg_t *c = aemp_msg_copy_val(aemp_msg_root(m));
        check_layout(c);
        assert_true(aemp_val_equal(aemp_msg_root(c), aemp_msg_root(m)));
        assert_int_equal(aemp__msg_size(c), aemp__msg_size(m));
        assert_int_equal(c->ncells, m->ncells);
        assert_int_equal(c->heaplen, m->heaplen);
        /* no uninitialised bytes (a null or bool copy is a shared message) */
        assert_memory_equal(c->cells, m->cells, aemp__msg_size(m) - sizeof *m);
        aemp_msg_unref(c);
        free(want);
        aemp_msg_unref(m);
    }
}

/* --------------------------------------------------------------- layout */

static void single_allocation_layout(void **state)
{
    /* ["ab", 1, ["xyz"]]: root + 3 + 1 cells, heap "ab\0xyz\0" */
    aemp_msg_t *m = aemp_msgf("si[s]", "ab", 1, "xyz");
    check_layout(m);
    assert_int_equal(m->ncells, 5);
    assert_int_equal(m->heaplen, 7);
    assert_int_equal(aemp__msg_size(m), sizeof(aemp_msg_t) + 5 * 16 + 7);
    assert_int_equal(sizeof(aemp_msg_t), 16);
    /* every pointer a reader gets points into the block */
    const char *lo = (const char *)m, *hi = lo + aemp__msg_size(m);
    const char *s = aemp_msg_str(m, 0, NULL);
    assert_true(s > lo && s < hi);
    const aemp_val_t *inner = aemp_val_at(aemp_msg_at(m, 2), 0);
    assert_true((const char *)inner > lo && (const char *)inner < hi);
    s = aemp_val_str(inner, NULL);
    assert_true(s > lo && s + 3 < hi);
    /* breadth first: the root's elements right after the root */
    assert_ptr_equal(aemp_msg_at(m, 0), &m->cells[1]);
    assert_ptr_equal(inner, &m->cells[4]);
    aemp_msg_unref(m);

    /* a value is a complete view on its own: copying the bytes of the block
     * elsewhere gives the same reading (all offsets are relative) */
    m = nested();
    size_t n = aemp__msg_size(m);
    aemp_msg_t *moved = malloc(n);
    memcpy(moved, m, n);
    assert_true(aemp_val_equal(aemp_msg_root(moved), aemp_msg_root(m)));
    check_layout(moved);
    free(moved);
    aemp_msg_unref(m);

    /* a root scalar: one cell */
    m = aemp_valf("i", 5);
    check_layout(m);
    assert_int_equal(aemp__msg_size(m), sizeof(aemp_msg_t) + 16);
    aemp_msg_unref(m);
    m = aemp_valf("s", "abc");
    check_layout(m);
    assert_int_equal(aemp__msg_size(m), sizeof(aemp_msg_t) + 16 + 4);
    aemp_msg_unref(m);
}

/* ----------------------------------------------------------------- json */

static void json_round_trip(void **state)
{
    json_t *j = json_pack("[s, i, I, f, b, b, n, {s: [i, s], s: {}}, [], s]", "tag", 1,
                          (json_int_t)INT64_MIN, 2.5, 1, 0, "a", 2, "\xc3\xa4", "b", "");
    assert_non_null(j);
    aemp_msg_t *m = aemp_msg_from_json(j);
    check_layout(m);
    assert_msg_text(m, "[\"tag\",1,-9223372036854775808,2.5,true,false,null,"
                       "{\"a\":[2,\"\xc3\xa4\"],\"b\":{}},[],\"\"]");
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 0)), AEMP_T_STR);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 1)), AEMP_T_INT);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 3)), AEMP_T_DOUBLE);
    json_t *back = aemp_msg_to_json(m);
    assert_true(json_equal(back, j));
    json_decref(back);
    /* a value inside */
    back = aemp_val_to_json(aemp_msg_at(m, 7));
    assert_true(json_equal(back, json_array_get(j, 7)));
    json_decref(back);
    aemp_msg_unref(m);
    json_decref(j);

    /* object keys in jansson's order; scalars at the root */
    j = json_loads("{\"z\": 1, \"a\": 2, \"m\": 3}", 0, NULL);
    m = aemp_msg_from_json(j);
    assert_text(aemp_msg_root(m), "{\"z\":1,\"a\":2,\"m\":3}");
    aemp_msg_unref(m);
    json_decref(j);
    j = json_string("x");
    m = aemp_msg_from_json(j);
    assert_int_equal(aemp_val_type(aemp_msg_root(m)), AEMP_T_STR);
    aemp_msg_unref(m);
    json_decref(j);
    j = json_stringn("a\0b", 3);                              /* NUL in a jansson string */
    m = aemp_msg_from_json(j);
    size_t len;
    assert_memory_equal(aemp_val_str(aemp_msg_root(m), &len), "a\0b", 3);
    assert_int_equal(len, 3);
    back = aemp_msg_to_json(m);
    assert_true(json_equal(back, j));
    json_decref(back);
    aemp_msg_unref(m);
    json_decref(j);
    assert_null(aemp_msg_from_json(NULL));
    assert_null(aemp_msg_to_json(NULL));
    assert_null(aemp_val_to_json(NULL));
}

static void json_conversions(void **state)
{
    /* bytes become Latin-1 text, UINT a real, non-finite doubles null, map
     * keys are cut at a NUL */
    aemp_msg_t *m = aemp_msgf("y y y s u f f f {s#:i y:i} s#", "\xc3\xa4", (size_t)2, "\xff\x00\x41", (size_t)3,
                              "", (size_t)0, "\xff", (uint64_t)UINT64_MAX, (double)NAN, (double)INFINITY,
                              -0.0, "k\0x", (size_t)3, 1, "\xe9", (size_t)1, 2, "a\0b", (size_t)3);
    json_t *j = aemp_msg_to_json(m);
    assert_non_null(j);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 10);
    json_t *e = json_array_get(j, 0);
    assert_true(json_is_string(e));
    assert_int_equal(json_string_length(e), 4);
    assert_memory_equal(json_string_value(e), "\xc3\x83\xc2\xa4", 4);      /* U+00C3 U+00A4 */
    e = json_array_get(j, 1);
    assert_int_equal(json_string_length(e), 4);
    assert_memory_equal(json_string_value(e), "\xc3\xbf\x00\x41", 4);
    assert_string_equal(json_string_value(json_array_get(j, 2)), "");
    /* a text string that is not UTF-8 is read as Latin-1 too */
    assert_string_equal(json_string_value(json_array_get(j, 3)), "\xc3\xbf");
    e = json_array_get(j, 4);
    assert_true(json_is_real(e));
    assert_true(json_real_value(e) == 18446744073709551615.0);
    assert_true(json_is_null(json_array_get(j, 5)));
    assert_true(json_is_null(json_array_get(j, 6)));
    e = json_array_get(j, 7);
    assert_true(json_is_real(e));
    assert_true(signbit(json_real_value(e)));
    e = json_array_get(j, 8);
    assert_true(json_is_object(e));
    assert_int_equal(json_integer_value(json_object_get(e, "k")), 1);
    assert_int_equal(json_integer_value(json_object_get(e, "\xc3\xa9")), 2);   /* é */
    assert_int_equal(json_object_size(e), 2);
    e = json_array_get(j, 9);
    assert_int_equal(json_string_length(e), 3);
    assert_memory_equal(json_string_value(e), "a\0b", 3);

    /* back: the Latin-1 text is text now */
    aemp_msg_t *back = aemp_msg_from_json(j);
    check_layout(back);
    assert_int_equal(aemp_val_type(aemp_msg_at(back, 0)), AEMP_T_STR);
    assert_memory_equal(aemp_msg_str(back, 0, NULL), "\xc3\x83\xc2\xa4", 5);
    assert_int_equal(aemp_val_type(aemp_msg_at(back, 4)), AEMP_T_DOUBLE);
    assert_int_equal(aemp_val_type(aemp_msg_at(back, 5)), AEMP_T_NULL);
    aemp_msg_unref(back);
    json_decref(j);
    aemp_msg_unref(m);

    /* depth: a jansson array nested AEMP_MSG_MAX_DEPTH deep converts (it
     * is the message's own array), one more does not */
    json_t *deep = json_array();
    for (int i = 1; i < AEMP_MSG_MAX_DEPTH; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, deep);
        deep = outer;
    }
    m = aemp_msg_from_json(deep);
    assert_non_null(m);
    assert_int_equal(depth_of(aemp_msg_root(m)), AEMP_MSG_MAX_DEPTH);
    j = aemp_msg_to_json(m);
    assert_true(json_equal(j, deep));
    json_decref(j);
    aemp_msg_unref(m);
    json_t *deeper = json_array();
    json_array_append_new(deeper, deep);
    assert_null(aemp_msg_from_json(deeper));
    json_t *obj = json_object();
    json_object_set(obj, "k", deep);
    assert_null(aemp_msg_from_json(obj));
    json_decref(obj);
    json_decref(deeper);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(type_names),
        cmocka_unit_test(scalars_build_and_read),
        cmocka_unit_test(strings_build_and_read),
        cmocka_unit_test(nested_access),
        cmocka_unit_test(map_keys_with_nul),
        cmocka_unit_test(format_every_letter),
        cmocka_unit_test(format_errors),
        cmocka_unit_test(builder_steps),
        cmocka_unit_test(builder_sticky_errors),
        cmocka_unit_test(builder_internal),
        cmocka_unit_test(depth_limit),
        cmocka_unit_test(unpack_every_letter),
        cmocka_unit_test(unpack_errors),
        cmocka_unit_test(accessor_errors),
        cmocka_unit_test(equality),
        cmocka_unit_test(text_form),
        cmocka_unit_test(utf8_and_doubles),
        cmocka_unit_test(truth),
        cmocka_unit_test(copy_val),
        cmocka_unit_test(internal_helpers),
        cmocka_unit_test(refcounting),
        cmocka_unit_test(builder_recycling),
        cmocka_unit_test(large_messages),
        cmocka_unit_test(random_trees),
        cmocka_unit_test(relay_slices),
        cmocka_unit_test(block_reuse),
        cmocka_unit_test(single_allocation_layout),
        cmocka_unit_test(json_round_trip),
        cmocka_unit_test(json_conversions),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
