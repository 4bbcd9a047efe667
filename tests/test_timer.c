/* Tests for aemp_after and aemp_cal. */
#include "testutil.h"

static json_t *got;
static int ngot;
static void keep(json_t *m, void *a)
{
    json_decref(got);
    got = json_incref(m);
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
    json_decref(got);
    got = NULL;
    return tu_teardown(s);
}

static void after_sends_message(void **state)
{
    const char *p = aemp_port(keep, NULL);
    ev_tstamp t0 = ev_time();
    assert_int_equal(aemp_after(0.05, p, json_pack("[s]", "tick"), NULL), 0);
    tu_drain();
    assert_int_equal(ngot, 0);
    int *flag = &ngot;
    assert_true(tu_run_until((volatile int *)flag, 5));
    assert_true(ev_time() - t0 >= 0.04);
    tu_assert_json(got, "[\"tick\"]");
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
    assert_int_equal(aemp_after(1, NULL, json_array(), NULL), AEMP_EINVAL);
    assert_int_equal(aemp_after(1, "#x", json_array(), NULL), AEMP_EPORTID);
    assert_int_equal(aemp_after_cb(1, NULL, NULL, NULL), AEMP_EINVAL);
}

/* An echo server: replies to the port in the last element. */
static void echo(json_t *m, void *a)
{
    size_t n = json_array_size(m);
    const char *reply = json_string_value(json_array_get(m, n - 1));
    json_t *r = json_array();
    for (size_t i = 0; i + 1 < n; i++)
        json_array_append(r, json_array_get(m, i));
    aemp_snd(reply, r);
}

static json_t *reply;
static int nreplies;
static void on_reply(json_t *r, void *a)
{
    json_decref(reply);
    reply = r ? json_incref(r) : NULL;
    nreplies++;
}

static void cal_gets_reply(void **state)
{
    nreplies = 0;
    const char *srv = aemp_port(echo, NULL);
    const char *rp = aemp_cal(srv, json_pack("[si]", "hello", 7), on_reply, NULL, 5);
    assert_non_null(rp);
    char rpid[128];
    snprintf(rpid, sizeof rpid, "%s", rp);
    int *flag = &nreplies;
    assert_true(tu_run_until((volatile int *)flag, 5));
    tu_assert_json(reply, "[\"hello\",7]");
    /* the reply port is gone and the timer does not fire later */
    tu_run_for(0.05);
    assert_int_equal(nreplies, 1);
    int dead = 0;
    assert_int_equal(aemp_sndf(rpid, "s", "late"), 0);
    (void)dead;
    tu_drain();
    assert_int_equal(nreplies, 1);
    json_decref(reply);
    reply = NULL;
}

static void silent(json_t *m, void *a) {}

static void cal_times_out(void **state)
{
    nreplies = 0;
    const char *srv = aemp_port(silent, NULL);
    aemp_cal(srv, json_pack("[s]", "q"), on_reply, NULL, 0.05);
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
    aemp_cal(srv, json_pack("[s]", "q"), on_reply, NULL, 0);
    tu_drain();
    assert_int_equal(nreplies, 0);
    aemp_kilf(srv, "s", "gone");
    tu_drain();
    assert_int_equal(nreplies, 1);
    assert_null(reply);
    /* bad arguments */
    assert_null(aemp_cal(NULL, json_array(), on_reply, NULL, 1));
    assert_null(aemp_cal(srv, json_string("x"), on_reply, NULL, 1));
    assert_null(aemp_cal(srv, json_array(), NULL, NULL, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(after_sends_message, setup, teardown),
        cmocka_unit_test_setup_teardown(after_cb_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(cal_gets_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(cal_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(cal_without_timeout_monitors_destination, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
