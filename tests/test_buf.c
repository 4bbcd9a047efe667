/* Tests for the growable byte buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "buf.h"

static void append_consume_compact(void **state)
{
    aemp_buf_t b = AEMP_BUF_INIT;
    aemp__buf_puts(&b, "hello ");
    aemp__buf_append(&b, "world", 5);
    aemp__buf_putc(&b, '!');
    assert_int_equal(aemp__buf_used(&b), 12);
    assert_memory_equal(aemp__buf_head(&b), "hello world!", 12);
    aemp__buf_consume(&b, 6);
    assert_int_equal(aemp__buf_used(&b), 6);
    assert_memory_equal(aemp__buf_head(&b), "world!", 6);
    aemp__buf_compact(&b);
    assert_int_equal(b.off, 0);
    assert_memory_equal(b.data, "world!", 6);
    aemp__buf_consume(&b, 6);
    assert_int_equal(aemp__buf_used(&b), 0);
    assert_int_equal(b.len, 0);
    aemp__buf_free(&b);
    assert_null(b.data);
}

static void grows_large(void **state)
{
    aemp_buf_t b = AEMP_BUF_INIT;
    for (int i = 0; i < 100000; i++)
        aemp__buf_putc(&b, (uint8_t)i);
    assert_int_equal(aemp__buf_used(&b), 100000);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(b.data[i], (uint8_t)i);
    /* reserve after a large consume reuses the prefix instead of growing */
    size_t cap = b.cap;
    aemp__buf_consume(&b, 99990);
    aemp__buf_reserve(&b, cap - 20);
    assert_int_equal(b.cap, cap);
    assert_int_equal(aemp__buf_used(&b), 10);
    assert_int_equal(aemp__buf_head(&b)[0], (uint8_t)99990);
    aemp__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_consume_compact),
        cmocka_unit_test(grows_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
