/* Tests for identifiers (ids.c, random.c): the ID syntax helpers, port
 * name generation (prefixes, the Perl-style counter), and random base-62
 * strings. */
#include "testutil.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(split_and_validate, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(port_names, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(random_strings, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
