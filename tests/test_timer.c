/* Tests for aemp_after: timers that send or call, and cancelling them. */
#include "testutil.h"

static aemp_msg_t *got;
static int ngot;
static void keep(aemp_msg_t *m, void *a)
{
    aemp_msg_unref(got);
    got = aemp_msg_ref(m);
    ngot++;
}

static int setup(void **s)
{
    got = NULL;
    ngot = 0;
    return tu_setup(s);
}

static int teardown(void **s)
{
    aemp_msg_unref(got);
    got = NULL;
    return tu_teardown(s);
}

static void after_sends_message(void **state)
{
    const char *p = aemp_port(keep, NULL);
    ev_tstamp t0 = ev_time();
    assert_int_equal(aemp_after(0.05, p, aemp_msgf("s", "tick"), NULL), 0);
    tu_drain();
    assert_int_equal(ngot, 0);
    int *flag = &ngot;
    assert_true(tu_run_until((volatile int *)flag, 5));
    assert_true(ev_time() - t0 >= 0.04);
    tu_assert_msg(got, "[\"tick\"]");
}

static int called;
static void cb(void *arg)
{
    called += *(int *)arg;
}

static void after_cb_and_cancel(void **state)
{
    int one = 1, hundred = 100;
    aemp_handle_t h;
    aemp_after_cb(0.01, cb, &one, NULL);
    aemp_after_cb(0.01, cb, &hundred, &h);
    assert_int_equal(aemp_after_cancel(h), 0);
    assert_int_equal(aemp_after_cancel(h), AEMP_ENOENT);
    tu_run_for(0.1);
    assert_int_equal(called, 1);
    assert_int_equal(aemp_after(1, NULL, aemp_msg_empty(), NULL), AEMP_EINVAL);
    assert_int_equal(aemp_after(1, "#x", aemp_msg_empty(), NULL), AEMP_EPORTID);
    assert_int_equal(aemp_after_cb(1, NULL, NULL, NULL), AEMP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(after_sends_message, setup, teardown),
        cmocka_unit_test_setup_teardown(after_cb_and_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
