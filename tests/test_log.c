/* Tests for logging: threshold from the environment, hooks, format. */
#include "testutil.h"
#include "internal.h"

#include <unistd.h>

static char seen[1024];
static int seen_level = -1, hook_calls;
static void hook(int level, const char *msg, void *arg)
{
    snprintf(seen, sizeof seen, "%s", msg);
    seen_level = level;
    hook_calls++;
}

static void threshold_from_environment(void **state)
{
    /* the test is run with AEMP_WARNLEVEL=3 (see tests/CMakeLists.txt) */
    assert_int_equal(aemp_log_level(), 3);
    aemp_set_log_level(9);
    assert_int_equal(aemp_log_level(), 9);
    aemp_set_log_level(3);
}

static void hooks_see_every_level(void **state)
{
    assert_int_equal(aemp_log_hook_add(hook, NULL), 0);
    aemp_log(9, "trace %d", 42);   /* above the threshold: hook only */
    assert_string_equal(seen, "trace 42");
    assert_int_equal(seen_level, 9);
    assert_int_equal(aemp_log_hook_remove(hook, NULL), 0);
    assert_int_equal(aemp_log_hook_remove(hook, NULL), AEMP_ENOENT);
    aemp_log(1, "not seen");
    assert_int_equal(hook_calls, 1);
    assert_int_equal(aemp_log_hook_add(NULL, NULL), AEMP_EINVAL);
}

static void stderr_format(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fds[1], 2);
    aemp_log(2, "warning text");
    aemp_log(4, "hidden text");   /* 4 > threshold 3 */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fds[1]);
    char buf[512] = { 0 };
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(n > 0);
    /* YYYY-mm-dd HH:MM:SS <2> warning text */
    assert_int_equal(strlen(buf), strlen("2026-01-01 00:00:00 <2> warning text\n"));
    assert_true(buf[4] == '-' && buf[7] == '-' && buf[10] == ' ' && buf[13] == ':' && buf[16] == ':');
    assert_string_equal(buf + 20, "<2> warning text\n");
    assert_null(strstr(buf, "hidden"));
}

/* A call site that repeats itself writes AEMP_LOG_RATE_BURST lines per
 * period; the next line after the period says how many were suppressed. */
static void repeated_lines_are_rate_limited(void **state)
{
    static aemp_ratelimit_t rl, other;
    assert_int_equal(aemp_log_hook_add(hook, NULL), 0);
    hook_calls = 0;
    for (int i = 0; i < 1000; i++)
        aemp__log_limited(&rl, AEMP_LOG_WARN, "accept: Too many open files (%d)", i);
    assert_int_equal(hook_calls, AEMP_LOG_RATE_BURST);
    assert_string_equal(seen, "accept: Too many open files (9)");
    aemp__log_limited(&other, AEMP_LOG_WARN, "another site");   /* its own budget */
    assert_int_equal(hook_calls, AEMP_LOG_RATE_BURST + 1);
    usleep((useconds_t)(AEMP_LOG_RATE_PERIOD * 1e6) + 50000);
    aemp__log_limited(&rl, AEMP_LOG_WARN, "accept: Too many open files (%d)", 1000);
    assert_int_equal(hook_calls, AEMP_LOG_RATE_BURST + 2);
    assert_non_null(strstr(seen, "accept: Too many open files (1000) (repeated 990 times in the last "));
    aemp__log_limited(&rl, AEMP_LOG_WARN, "quiet again");
    assert_string_equal(seen, "quiet again");   /* nothing suppressed since */
    assert_int_equal(aemp_log_hook_remove(hook, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threshold_from_environment),
        cmocka_unit_test(hooks_see_every_level),
        cmocka_unit_test(stderr_format),
        cmocka_unit_test(repeated_lines_are_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
