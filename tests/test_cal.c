/* Tests for aemp_cal: the reply, the timeout, the death of the destination
 * (without a timeout), exactly one callback, bad arguments. */
#include "testutil.h"

static int setup(void **s)
{
    return tu_setup(s);
}

static int teardown(void **s)
{
    return tu_teardown(s);
}

/* An echo server: replies to the port in the last element with the
 * elements before it. */
static void echo(aemp_msg_t *m, void *a)
{
    size_t n = aemp_msg_len(m);
    const char *reply = aemp_msg_str(m, n - 1, NULL);
    aemp_build_t *b = aemp_build_new();
    for (size_t i = 0; i + 1 < n; i++)
        aemp_build_val(b, aemp_msg_at(m, i));
    aemp_snd(reply, aemp_build_msg(b));
}

static aemp_msg_t *reply;
static int nreplies;
static void on_reply(aemp_msg_t *r, void *a)
{
    aemp_msg_unref(reply);
    reply = aemp_msg_ref(r);
    nreplies++;
}

static void cal_gets_reply(void **state)
{
    nreplies = 0;
    const char *srv = aemp_port(echo, NULL);
    const char *rp = aemp_cal(srv, aemp_msgf("si", "hello", 7), on_reply, NULL, 5);
    assert_non_null(rp);
    char rpid[128];
    snprintf(rpid, sizeof rpid, "%s", rp);
    int *flag = &nreplies;
    assert_true(tu_run_until((volatile int *)flag, 5));
    tu_assert_msg(reply, "[\"hello\",7]");
    /* the reply port is gone and the timer does not fire later */
    tu_run_for(0.05);
    assert_int_equal(nreplies, 1);
    /* a late second reply finds the reply port gone */
    assert_int_equal(aemp_sndf(rpid, "s", "late"), 0);
    tu_drain();
    assert_int_equal(nreplies, 1);
    aemp_msg_unref(reply);
    reply = NULL;
}

static void silent(aemp_msg_t *m, void *a) {}

static void cal_times_out(void **state)
{
    nreplies = 0;
    const char *srv = aemp_port(silent, NULL);
    aemp_cal(srv, aemp_msgf("s", "q"), on_reply, NULL, 0.05);
    int *flag = &nreplies;
    assert_true(tu_run_until((volatile int *)flag, 5));
    assert_null(reply);
    tu_run_for(0.1);
    assert_int_equal(nreplies, 1);
}

static void cal_without_timeout_monitors_destination(void **state)
{
    nreplies = 0;
    const char *srv = aemp_port(silent, NULL);
    aemp_cal(srv, aemp_msgf("s", "q"), on_reply, NULL, 0);
    tu_drain();
    assert_int_equal(nreplies, 0);
    aemp_kilf(srv, "s", "gone");
    tu_drain();
    assert_int_equal(nreplies, 1);
    assert_null(reply);
    /* bad arguments */
    assert_null(aemp_cal(NULL, aemp_msg_empty(), on_reply, NULL, 1));
    assert_null(aemp_cal(srv, aemp_valf("s", "x"), on_reply, NULL, 1));
    assert_null(aemp_cal(srv, aemp_msg_empty(), NULL, NULL, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(cal_gets_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(cal_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(cal_without_timeout_monitors_destination, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
