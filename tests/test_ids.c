/* Tests for identifiers (ids.c, random.c, destcache.c): the ID syntax
 * helpers, port name generation (prefixes, the Perl-style counter), random
 * base-62 strings, and the cache of remote IDs sent to lately. */
#include "testutil.h"

#include "destcache.h"
#include "internal.h"
#include "random.h"

static void split_and_validate(void **state)
{
    const char *name;
    size_t len;
    char mine[128];
    snprintf(mine, sizeof mine, "%s#abc", aemp_node());
    assert_int_equal(aemp__split_local(mine, &name, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(name, "abc", 3);
    assert_int_equal(aemp__split_local(aemp_node(), &name, &len), 1);
    assert_int_equal(len, 0);   /* a bare node ID is the node port */
    assert_int_equal(aemp__split_local("other#x", &name, &len), 0);
    assert_int_equal(aemp__split_local("", &name, &len), AEMP_EPORTID);
    assert_int_equal(aemp__split_local("#x", &name, &len), AEMP_EPORTID);
    assert_int_equal(aemp__split_local(NULL, &name, &len), AEMP_EPORTID);
    /* only the first '#' separates */
    snprintf(mine, sizeof mine, "%s#a#b", aemp_node());
    assert_int_equal(aemp__split_local(mine, &name, &len), 1);
    assert_string_equal(name, "a#b");
    /* a local port name, not the node port */
    snprintf(mine, sizeof mine, "%s#p", aemp_node());
    assert_int_equal(aemp__local_port_name(mine, &name, &len), 0);
    assert_int_equal(aemp__local_port_name(aemp_node(), &name, &len), AEMP_ENODEPORT);
    assert_int_equal(aemp__local_port_name("other#p", &name, &len), AEMP_ENOTLOCAL);
    assert_int_equal(aemp__local_port_name("#p", &name, &len), AEMP_EPORTID);
}

static void port_names(void **state)
{
    /* port: 9-character prefix + counter b, c, ..., z, aa, ab ... */
    char *first = aemp__new_port_name(0);
    assert_int_equal(strlen(first), 10);
    assert_int_equal(first[9], 'b');
    char prefix[10];
    memcpy(prefix, first, 9);
    prefix[9] = 0;
    char *last = NULL;
    for (int i = 0; i < 25; i++) {
        free(last);
        last = aemp__new_port_name(0);
    }
    assert_memory_equal(last, prefix, 9);
    assert_string_equal(last + 9, "aa");   /* b + 25 steps: after z comes aa */
    /* spawned ports: a 10-character random prefix whose last character is
     * never lower case (upper-cased if it is a letter), so that they never
     * collide with a port prefix followed by the lower-case counter */
    for (int i = 0; i < 200; i++) {
        aemp_shutdown();
        aemp_init(NULL);
        char *r = aemp__new_port_name(1);
        assert_false(r[9] >= 'a' && r[9] <= 'z');
        free(r);
    }
    /* a fresh node used "b" above; 25 more names bring the shared counter
     * to "aa", so the next spawn name ends in "ab" */
    for (int i = 0; i < 25; i++)
        free(aemp__new_port_name(0));
    char *sp = aemp__new_port_name(1);
    assert_int_equal(strlen(sp), 12);
    assert_false(sp[9] >= 'a' && sp[9] <= 'z');
    assert_string_equal(sp + 10, "ab");   /* the counter is shared */
    free(first);
    free(last);
    free(sp);
}

static void random_strings(void **state)
{
    char a[65], b[65];
    assert_int_equal(aemp__random_base62(a, 64), 0);
    assert_int_equal(aemp__random_base62(b, 64), 0);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
    int counts[62] = { 0 };
    for (int round = 0; round < 200; round++) {
        assert_int_equal(aemp__random_base62(a, 64), 0);
        for (int i = 0; i < 64; i++) {
            const char *p = strchr(aemp__base62, a[i]);
            assert_non_null(p);
            counts[p - aemp__base62]++;
        }
    }
    /* 12,800 characters: every one of the 62 appears, none dominates */
    for (int i = 0; i < 62; i++)
        assert_true(counts[i] > 100 && counts[i] < 320);
    assert_int_equal(aemp__random_base62(a, 0), 0);
    assert_string_equal(a, "");
}

/* The destination cache answers only for the same address with the same
 * bytes: a buffer reused for another ID (longer, shorter, one byte
 * different) misses, and so does an ID too long to keep.  The strings are
 * heap copies of their exact size, so that AddressSanitizer reports a
 * comparison that reads past a shorter string's end. */
static void destcache_same_address_same_bytes(void **state)
{
    int node = 1, other = 2;
    char *buf = malloc(64);
    strcpy(buf, "peer#port1");
    assert_null(aemp__destcache_get(buf, &(size_t){ 0 }, &(size_t){ 0 }));
    aemp__destcache_put(buf, strlen(buf), 4, &node);
    size_t nodelen = 0, idlen = 0;
    assert_ptr_equal(aemp__destcache_get(buf, &nodelen, &idlen), &node);
    assert_int_equal(nodelen, 4);
    assert_int_equal(idlen, 10);

    char *copy = strdup(buf);   /* same bytes, another address */
    assert_null(aemp__destcache_get(copy, &nodelen, &idlen));
    free(copy);
    strcpy(buf, "peer#port2");   /* same address, one byte different */
    assert_null(aemp__destcache_get(buf, &nodelen, &idlen));
    strcpy(buf, "peer#port1x");   /* longer */
    assert_null(aemp__destcache_get(buf, &nodelen, &idlen));
    strcpy(buf, "peer#port1");   /* the cached bytes again */
    assert_ptr_equal(aemp__destcache_get(buf, &nodelen, &idlen), &node);
    free(buf);

    char *shorter = strdup("peer#p");   /* exactly 7 bytes */
    aemp__destcache_put(shorter, 6, 4, &other);
    assert_ptr_equal(aemp__destcache_get(shorter, &nodelen, &idlen), &other);
    shorter[5] = 0;   /* "peer#": shorter than what is cached */
    assert_null(aemp__destcache_get(shorter, &nodelen, &idlen));
    shorter[5] = 'p';

    char longid[AEMP_DESTCACHE_MAX_ID + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[0] = 'n';
    longid[1] = '#';
    longid[sizeof longid - 1] = 0;
    aemp__destcache_put(longid, sizeof longid - 1, 1, &node);
    assert_null(aemp__destcache_get(longid, &nodelen, &idlen));

    assert_ptr_equal(aemp__destcache_get(shorter, &nodelen, &idlen), &other);
    aemp__destcache_clear();
    assert_null(aemp__destcache_get(shorter, &nodelen, &idlen));
    free(shorter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(split_and_validate, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(port_names, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(random_strings, tu_setup, tu_teardown),
        cmocka_unit_test(destcache_same_address_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
