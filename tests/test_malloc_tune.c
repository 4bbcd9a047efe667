/* Tests for aemp_tune_malloc: after it, a large block comes from the heap
 * and, freed, stays there for the next one (glibc's malloc; skipped under
 * AddressSanitizer, whose allocator is its own). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <aemp.h>

#include "asan.h"

#if defined(__GLIBC__) && !defined(AEMP_ASAN)
#include <malloc.h>
#define CAN_TUNE 1
#endif

/* Below 1 MiB, and twice the block of the untuned test, which runs first
 * and leaves glibc's dynamic thresholds at its size (mmap) and twice that
 * (trim): without the tuning, a block of BIG would still be mapped and,
 * freed at the top of the heap, trimmed. */
#define BIG (768 * 1024)

static void large_blocks_stay_in_the_heap(void **state)
{
#ifdef CAN_TUNE
    assert_int_equal(aemp_tune_malloc(), 0);
    struct mallinfo2 before = mallinfo2();
    char *p = malloc(BIG);
    assert_non_null(p);
    memset(p, 1, BIG);
    struct mallinfo2 held = mallinfo2();
    assert_int_equal(held.hblkhd, before.hblkhd);   /* no block of its own from mmap */
    assert_true(held.arena >= before.arena + BIG);   /* the heap grew for it */
    free(p);
    struct mallinfo2 freed = mallinfo2();
    assert_int_equal(freed.arena, held.arena);   /* not trimmed: below 2 MiB */
    assert_true(freed.fordblks >= BIG);
    char *q = malloc(BIG / 2);   /* the next large block reuses it */
    assert_non_null(q);
    struct mallinfo2 again = mallinfo2();
    assert_int_equal(again.arena, freed.arena);
    assert_int_equal(again.hblkhd, before.hblkhd);
    free(q);
#else
    skip();
#endif
}

static void untuned_large_block_is_mapped(void **state)
{
#ifdef CAN_TUNE
    /* the contrast (run first, before any tuning): a block above the
     * default threshold of 128 KiB gets a mapping of its own */
    struct mallinfo2 before = mallinfo2();
    char *p = malloc(BIG / 2);
    assert_non_null(p);
    struct mallinfo2 held = mallinfo2();
    assert_true(held.hblkhd >= before.hblkhd + BIG / 2);
    free(p);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(untuned_large_block_is_mapped),
        cmocka_unit_test(large_blocks_stay_in_the_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
