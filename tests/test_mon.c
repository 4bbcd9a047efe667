/* Tests for monitors: the four forms, one-shot semantics, cancellation,
 * guards, no_such_port, linking, and ordering against messages and kills. */
#include "testutil.h"

static aemp_msg_t *reasons[8];
static int nreasons;

static void on_death(aemp_msg_t *r, void *arg)
{
    if (nreasons < 8)
        reasons[nreasons++] = aemp_msg_ref(r);
    if (arg)
        (*(int *)arg)++;
}

static int setup(void **s)
{
    nreasons = 0;
    return tu_setup(s);
}

static int teardown(void **s)
{
    for (int i = 0; i < nreasons; i++)
        aemp_msg_unref(reasons[i]);
    nreasons = 0;
    return tu_teardown(s);
}

static void ignore(aemp_msg_t *m, void *a) {}

static void callback_form_fires_once(void **state)
{
    const char *p = aemp_port(ignore, NULL);
    int n = 0;
    aemp_handle_t h = 0;
    assert_int_equal(aemp_mon(p, on_death, &n, &h), 0);
    assert_true(h != 0);
    aemp_kilf(p, "s", "first");
    aemp_kilf(p, "s", "second");
    tu_drain();
    assert_int_equal(n, 1);
    tu_assert_msg(reasons[0], "[\"first\"]");
    /* fired monitors cannot be cancelled */
    assert_int_equal(aemp_mon_cancel(h), AEMP_ENOENT);
}

static void monitor_of_missing_port(void **state)
{
    char id[256];
    snprintf(id, sizeof id, "%s#nosuchport", aemp_node());
    int n = 0;
    assert_int_equal(aemp_mon(id, on_death, &n, NULL), 0);
    assert_int_equal(n, 0);   /* never inside the call */
    tu_drain();
    assert_int_equal(n, 1);
    char expect[512];
    snprintf(expect, sizeof expect, "[\"no_such_port\",\"cannot monitor nonexistent port\",\"%s\"]", id);
    tu_assert_msg(reasons[0], expect);
}

static void self_kill(aemp_msg_t *m, void *a)
{
    aemp_kilf(aemp_self(), "s", "suicide");
}

/* Monitor race (tutorial S7): send first, monitor afterwards.  Delivery is
 * always deferred here, so the monitor is attached before the message runs
 * and reports the real reason; once the kill has happened, a new monitor
 * reports no_such_port. */
static void monitor_race_send_then_monitor(void **state)
{
    const char *p = aemp_port(self_kill, NULL);
    char id[128];
    snprintf(id, sizeof id, "%s", p);
    aemp_sndf(p, "s", "die now");
    int n = 0;
    aemp_mon(p, on_death, &n, NULL);
    tu_drain();
    assert_int_equal(n, 1);
    tu_assert_msg(reasons[0], "[\"suicide\"]");
    aemp_mon(id, on_death, &n, NULL);
    tu_drain();
    assert_int_equal(n, 2);
    assert_string_equal(aemp_msg_tag(reasons[1], NULL), "no_such_port");
}

static void cancel_before_and_after_attach(void **state)
{
    const char *p = aemp_port(ignore, NULL);
    int n = 0;
    aemp_handle_t h1, h2;
    aemp_mon(p, on_death, &n, &h1);
    assert_int_equal(aemp_mon_cancel(h1), 0);   /* still pending attach */
    assert_int_equal(aemp_mon_cancel(h1), AEMP_ENOENT);
    aemp_mon(p, on_death, &n, &h2);
    tu_drain();
    assert_int_equal(aemp_mon_cancel(h2), 0);   /* attached */
    aemp_kil(p, NULL);
    tu_drain();
    assert_int_equal(n, 0);
    assert_int_equal(aemp_mon_cancel(0), AEMP_ENOENT);
}

static int linked_deaths;
static void count_link(aemp_msg_t *r, void *a)
{
    linked_deaths++;
    on_death(r, a);
}

/* kil linking (tutorial S8): abnormal death propagates, normal does not. */
static void kil_form_links_on_abnormal_death(void **state)
{
    const char *a = aemp_port(ignore, NULL);
    const char *b = aemp_port(ignore, NULL);
    aemp_mon_kil(a, b, NULL);
    aemp_mon(b, count_link, NULL, NULL);
    aemp_kil(a, NULL);             /* normal: b survives */
    tu_drain();
    assert_int_equal(linked_deaths, 0);
    const char *c = aemp_port(ignore, NULL);
    aemp_mon_kil(c, b, NULL);
    aemp_kilf(c, "ss", "custom_error", "boom");
    tu_drain();
    assert_int_equal(linked_deaths, 1);
    tu_assert_msg(reasons[0], "[\"custom_error\",\"boom\"]");
    /* without rcvport outside port context */
    assert_int_equal(aemp_mon_kil(c, NULL, NULL), AEMP_ENOSELF);
}

static const char *mon_self_target;
static void mon_self_cb(aemp_msg_t *m, void *a)
{
    aemp_mon_kil(mon_self_target, NULL, NULL);   /* rcvport = SELF */
}

static void kil_form_defaults_to_self(void **state)
{
    const char *victim = aemp_port(ignore, NULL);
    mon_self_target = victim;
    const char *watcher = aemp_port(mon_self_cb, NULL);
    int n = 0;
    aemp_mon(watcher, on_death, &n, NULL);
    aemp_sndf(watcher, "s", "go");
    tu_drain();
    aemp_kilf(victim, "s", "bad");
    tu_drain();
    assert_int_equal(n, 1);
    tu_assert_msg(reasons[0], "[\"bad\"]");
}

static aemp_msg_t *got_msg;
static void keep_msg(aemp_msg_t *m, void *a)
{
    aemp_msg_unref(got_msg);
    got_msg = aemp_msg_ref(m);
    (*(int *)a)++;
}

static void snd_form_appends_reason(void **state)
{
    int n = 0;
    const char *rcv = aemp_port(keep_msg, &n);
    const char *p = aemp_port(ignore, NULL);
    assert_int_equal(aemp_mon_snd(p, rcv, aemp_msgf("ss", "died", "p"), NULL), 0);
    aemp_kilf(p, "si", "why", 42);
    tu_drain();
    assert_int_equal(n, 1);
    tu_assert_msg(got_msg, "[\"died\",\"p\",\"why\",42]");
    /* normal death: the message is sent with nothing appended */
    const char *q = aemp_port(ignore, NULL);
    aemp_mon_snd(q, rcv, aemp_msgf("s", "normal"), NULL);
    aemp_kil(q, NULL);
    tu_drain();
    assert_int_equal(n, 2);
    tu_assert_msg(got_msg, "[\"normal\"]");
    aemp_msg_unref(got_msg);
    got_msg = NULL;
    assert_int_equal(aemp_mon_snd(q, rcv, aemp_valf("s", "x"), NULL), AEMP_EINVAL);
    assert_int_equal(aemp_mon_snd(q, NULL, aemp_msg_empty(), NULL), AEMP_EINVAL);
}

static int released;
static void release(void *p)
{
    released += *(int *)p;
}

static void guard_releases_on_death_or_cancel(void **state)
{
    int one = 1, ten = 10;
    const char *p = aemp_port(ignore, NULL);
    aemp_handle_t h;
    aemp_mon_guard(p, release, &one, NULL);
    aemp_mon_guard(p, release, &ten, &h);
    tu_drain();
    assert_int_equal(aemp_mon_cancel(h), 0);
    assert_int_equal(released, 10);
    aemp_kil(p, NULL);
    tu_drain();
    assert_int_equal(released, 11);
}

static void several_monitors_all_fire(void **state)
{
    const char *p = aemp_port(ignore, NULL);
    int n = 0;
    for (int i = 0; i < 5; i++)
        aemp_mon(p, on_death, &n, NULL);
    aemp_kilf(p, "s", "x");
    tu_drain();
    assert_int_equal(n, 5);
}

static void unmonitored_abnormal_death_is_logged(void **state);
static char logged[512];
static void hook(int level, const char *msg, void *arg)
{
    if (strstr(msg, "unmonitored"))
        snprintf(logged, sizeof logged, "%d %s", level, msg);
}

static void unmonitored_abnormal_death_is_logged(void **state)
{
    aemp_log_hook_add(hook, NULL);
    const char *p = aemp_port(ignore, NULL);
    char expect[512];
    snprintf(expect, sizeof expect, "2 unmonitored local port %s died with reason: [\"bad\",1]", p);
    aemp_kilf(p, "si", "bad", 1);
    tu_drain();
    assert_string_equal(logged, expect);
    logged[0] = 0;
    const char *q = aemp_port(ignore, NULL);
    aemp_kil(q, NULL);   /* normal death is not logged */
    tu_drain();
    assert_string_equal(logged, "");
    aemp_log_hook_remove(hook, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(callback_form_fires_once, setup, teardown),
        cmocka_unit_test_setup_teardown(monitor_of_missing_port, setup, teardown),
        cmocka_unit_test_setup_teardown(monitor_race_send_then_monitor, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_before_and_after_attach, setup, teardown),
        cmocka_unit_test_setup_teardown(kil_form_links_on_abnormal_death, setup, teardown),
        cmocka_unit_test_setup_teardown(kil_form_defaults_to_self, setup, teardown),
        cmocka_unit_test_setup_teardown(snd_form_appends_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(guard_releases_on_death_or_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(several_monitors_all_fire, setup, teardown),
        cmocka_unit_test_setup_teardown(unmonitored_abnormal_death_is_logged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
