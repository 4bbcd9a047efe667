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
 * different) misses, and so do an ID too long to keep and a bare node
 * ID.  The strings are heap copies of their exact size, so that
 * AddressSanitizer reports a comparison that reads past a shorter
 * string's end. */
static void destcache_same_address_same_bytes(void **state)
{
    int node = 1, other = 2;
    char *buf = malloc(64);
    strcpy(buf, "peer#port1");
    const char *name = NULL;
    size_t namelen = 0;
    assert_null(aemp__destcache_get(buf, &name, &namelen));
    aemp__destcache_put(buf, 4, 5, &node);
    assert_ptr_equal(aemp__destcache_get(buf, &name, &namelen), &node);
    assert_ptr_equal(name, buf + 5);   /* "port1", within the caller's ID */
    assert_int_equal(namelen, 5);

    char *copy = strdup(buf);   /* same bytes, another address */
    assert_null(aemp__destcache_get(copy, &name, &namelen));
    free(copy);
    strcpy(buf, "peer#port2");   /* same address, one byte different */
    assert_null(aemp__destcache_get(buf, &name, &namelen));
    strcpy(buf, "peer#port1x");   /* longer */
    assert_null(aemp__destcache_get(buf, &name, &namelen));
    strcpy(buf, "peer#port1");   /* the cached bytes again */
    assert_ptr_equal(aemp__destcache_get(buf, &name, &namelen), &node);
    free(buf);

    char *shorter = strdup("peer#p");   /* exactly 7 bytes */
    aemp__destcache_put(shorter, 4, 1, &other);
    assert_ptr_equal(aemp__destcache_get(shorter, &name, &namelen), &other);
    shorter[5] = 0;   /* "peer#": shorter than what is cached */
    assert_null(aemp__destcache_get(shorter, &name, &namelen));
    shorter[5] = 'p';

    char longid[AEMP_DESTCACHE_MAX_ID + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[0] = 'n';
    longid[1] = '#';
    longid[sizeof longid - 1] = 0;
    aemp__destcache_put(longid, 1, sizeof longid - 3, &node);
    assert_null(aemp__destcache_get(longid, &name, &namelen));

    char *bare = strdup("peer");   /* a node port: no name, not kept */
    aemp__destcache_put(bare, 4, 0, &node);
    assert_null(aemp__destcache_get(bare, &name, &namelen));
    free(bare);

    assert_ptr_equal(aemp__destcache_get(shorter, &name, &namelen), &other);
    aemp__destcache_clear();
    assert_null(aemp__destcache_get(shorter, &name, &namelen));
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
