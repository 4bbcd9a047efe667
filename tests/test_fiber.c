/* Tests for fibers (selective receive, Coro::MP): queue order, get by tag
 * (text and byte-string tags, the whole message returned), get_cond
 * predicates, queued messages shared by reference, timeouts, syncal,
 * peval_async, ending and killing fibers (unwinding and freeing), 10,000
 * concurrent fibers, and stack overflow detection.
 *
 * cmocka's assertions must not run on a fiber stack (they longjmp), so
 * fiber bodies record what they see in globals and the test functions
 * check them. */
#include "testutil.h"

#include "aemp_fiber.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXREC 64

static aemp_msg_t *rec[MAXREC];   /* what the fiber bodies saw, in order (NULL: nothing) */
static int results[MAXREC];       /* return codes, in order */
static int nresults;
static int done;
static aemp_msg_t *reason;        /* last death reason seen by on_death */
static int died;

/* Record a result and the message it gave (*pm stolen; pm may be NULL). */
static void note(int r, aemp_msg_t **pm)
{
    aemp_msg_t *msg = pm ? *pm : NULL;
    if (nresults < MAXREC) {
        rec[nresults] = msg;
        results[nresults++] = r;
    } else {
        aemp_msg_unref(msg);
    }
}

static void on_death(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(reason);
    reason = aemp_msg_ref(r);
    died++;
}

static void clear_rec(void)
{
    for (int i = 0; i < nresults; i++) {
        aemp_msg_unref(rec[i]);
        rec[i] = NULL;
    }
    nresults = 0;
}

static int setup(void **s)
{
    nresults = done = died = 0;
    reason = NULL;
    return tu_setup(s);
}

static int teardown(void **s)
{
    int r = tu_teardown(s);   /* fibers may still note messages while it drains */
    clear_rec();
    aemp_msg_unref(reason);
    reason = NULL;
    assert_int_equal(aemp_fiber_count(), 0);
    return r;
}

/* Compare the recorded messages, as one array (null where a call gave
 * none), with the JSON text expect. */
static void assert_rec(const char *expect)
{
    aemp_build_t *b = aemp_build_new();
    for (int i = 0; i < nresults; i++) {
        if (rec[i])
            aemp_build_val(b, aemp_msg_root(rec[i]));
        else
            aemp_build_null(b);
    }
    aemp_msg_t *all = aemp_build_msg(b);
    assert_non_null(all);
    tu_assert_msg(all, expect);
    aemp_msg_unref(all);
}

static void assert_results(const int *expect, int n)
{
    assert_int_equal(nresults, n);
    for (int i = 0; i < n; i++)
        if (results[i] != expect[i])
            fail_msg("result %d: expected %d (%s), got %d (%s)", i, expect[i],
                     aemp_strerror(expect[i]), results[i], aemp_strerror(results[i]));
}

/* ------------------------------------------------------------ ordering */

/* Take `arg` messages, oldest first. */
static void take_n(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        aemp_msg_t *m;
        int r = aemp_get_cond(NULL, NULL, -1, &m);
        note(r, &m);
        if (r)
            break;
    }
    done = 1;
}

static void queue_keeps_arrival_order(void **state)
{
    const char *p = aemp_port_async(take_n, (void *)(intptr_t)6);
    assert_non_null(p);
    assert_int_equal(aemp_fiber_count(), 1);
    /* three before the fiber starts, three while it waits */
    for (int i = 0; i < 3; i++)
        aemp_sndf(p, "si", "m", i);
    tu_drain();
    for (int i = 3; i < 6; i++)
        aemp_sndf(p, "si", "m", i);
    assert_true(tu_run_until(&done, 5));
    assert_rec("[[\"m\",0],[\"m\",1],[\"m\",2],[\"m\",3],[\"m\",4],[\"m\",5]]");
    tu_drain();
    assert_int_equal(aemp_fiber_count(), 0);
}

/* ---------------------------------------------------------- get by tag */

static void tag_body(void *arg)
{
    aemp_msg_t *m;
    note(aemp_get("c", -1, &m), &m);          /* ["c",3] */
    note(aemp_get("b", -1, &m), &m);          /* ["b",2] (the older "b") */
    note(aemp_get_cond(NULL, NULL, 0, &m), &m);   /* ["a",1] */
    note(aemp_get("z", -1, &m), &m);          /* waits; "y" stays queued */
    note((int)aemp_fiber_queued(), NULL);    /* ["b",4] and ["y"] */
    note(aemp_get_cond(NULL, NULL, 0, &m), &m);
    note(aemp_get_cond(NULL, NULL, 0, &m), &m);
    note(aemp_get_cond(NULL, NULL, 0, &m), &m);   /* empty: timeout */
    done = 1;
}

static int ctl_seen;
static void on_ctl(aemp_msg_t *msg, void *arg)
{
    ctl_seen++;
}

static void get_by_tag(void **state)
{
    const char *p = aemp_port_async(tag_body, NULL);
    assert_int_equal(aemp_rcv_tag(p, "ctl", on_ctl, NULL), 0);   /* takes precedence */
    ctl_seen = 0;
    aemp_sndf(p, "si", "a", 1);
    aemp_sndf(p, "si", "b", 2);
    aemp_sndf(p, "s", "ctl");
    aemp_sndf(p, "si", "c", 3);
    aemp_sndf(p, "si", "b", 4);
    tu_drain();
    assert_int_equal(nresults, 3);
    aemp_sndf(p, "s", "y");
    aemp_sndf(p, "s", "ctl");
    tu_drain();
    assert_int_equal(nresults, 3);   /* still waiting for "z" */
    aemp_sndf(p, "si", "z", 9);
    assert_true(tu_run_until(&done, 5));
    int expect[] = { 0, 0, 0, 0, 2, 0, 0, AEMP_ETIMEDOUT };
    assert_results(expect, 8);
    assert_rec("[[\"c\",3],[\"b\",2],[\"a\",1],[\"z\",9],null,[\"b\",4],[\"y\"],null]");
    assert_int_equal(ctl_seen, 2);
}

/* Tags match as text or byte strings (a Perl peer's framing decides which
 * arrives), by their whole length; a non-string element 0 is no tag.
 * aemp_get hands over the very message that was sent, tag included: the
 * queue holds references, nothing is copied. */
static aemp_msg_t *shared_msg;

static void bytes_tag_body(void *arg)
{
    aemp_msg_t *m;
    note(aemp_get("bin", -1, &m), &m);      /* byte-string tag, from the queue */
    note(aemp_get("bin", -1, &m), &m);      /* byte-string tag, arrives while waiting */
    note(aemp_get("shared", -1, &m), &m);   /* the sent message itself */
    note(aemp_get("bi", 0, &m), &m);        /* "bix" is no match */
    note(aemp_get("", 0, &m), &m);          /* [5, 6] has no tag */
    note((int)aemp_fiber_queued(), NULL);   /* ["bix", 0] and [5, 6] */
    done = 1;
}

static void tag_is_text_or_bytes(void **state)
{
    const char *p = aemp_port_async(bytes_tag_body, NULL);
    shared_msg = aemp_msgf("si", "shared", 3);
    aemp_snd(p, aemp_msgf("yi", "bin", (size_t)3, 1));
    aemp_sndf(p, "si", "bix", 0);
    aemp_sndf(p, "ii", 5, 6);
    aemp_snd(p, aemp_msg_ref(shared_msg));
    tu_drain();
    assert_int_equal(nresults, 1);
    aemp_snd(p, aemp_msgf("yi", "bin", (size_t)3, 2));
    assert_true(tu_run_until(&done, 5));
    int expect[] = { 0, 0, 0, AEMP_ETIMEDOUT, AEMP_ETIMEDOUT, 2 };
    assert_results(expect, 6);
    for (int i = 0; i < 2; i++) {
        int64_t n;
        assert_int_equal(aemp_val_type(aemp_msg_at(rec[i], 0)), AEMP_T_BYTES);
        assert_string_equal(aemp_msg_tag(rec[i], NULL), "bin");
        assert_int_equal(aemp_msg_int(rec[i], 1, &n), 0);
        assert_int_equal(n, i + 1);
    }
    assert_ptr_equal(rec[2], shared_msg);
    aemp_msg_unref(shared_msg);
    shared_msg = NULL;
}

/* ------------------------------------------------------------ get_cond */

static int big(aemp_msg_t *msg, void *arg)
{
    int64_t n;
    return aemp_msg_int(msg, 1, &n) == 0 && n > *(int *)arg;
}

static int from_source(aemp_msg_t *msg, void *arg)
{
    const char *s = aemp_msg_str(msg, 1, NULL);
    return s && strcmp(s, arg) == 0;
}

static void cond_body(void *arg)
{
    int limit = 10;
    aemp_msg_t *m;
    note(aemp_get_cond(big, &limit, -1, &m), &m);
    note(aemp_get_cond(big, &limit, -1, &m), &m);
    note(aemp_get_cond(from_source, "s2", -1, &m), &m);   /* arrives later */
    note(aemp_get_cond(NULL, NULL, 0, &m), &m);
    done = 1;
}

static void get_cond_predicate(void **state)
{
    const char *p = aemp_port_async(cond_body, NULL);
    aemp_sndf(p, "si", "x", 5);
    aemp_sndf(p, "si", "x", 20);
    aemp_sndf(p, "si", "x", 7);
    aemp_sndf(p, "si", "x", 30);
    tu_drain();
    aemp_sndf(p, "ss", "d", "s1");
    aemp_sndf(p, "ss", "d", "s2");
    assert_true(tu_run_until(&done, 5));
    int expect[] = { 0, 0, 0, 0 };
    assert_results(expect, 4);
    assert_rec("[[\"x\",20],[\"x\",30],[\"d\",\"s2\"],[\"x\",5]]");
}

/* ------------------------------------------------------------ timeouts */

static double elapsed[4];

static void timeout_body(void *arg)
{
    aemp_msg_t *m;
    ev_tstamp t0 = ev_time();
    note(aemp_get("none", 0, &m), &m);
    elapsed[0] = ev_time() - t0;
    t0 = ev_time();
    note(aemp_get("none", 0.1, &m), &m);
    elapsed[1] = ev_time() - t0;
    note(aemp_get_cond(NULL, NULL, 0.1, &m), &m);   /* the queued "noise" */
    aemp_after(0.15, aemp_self(), aemp_msgf("si", "late", 1), NULL);
    t0 = ev_time();
    note(aemp_get("late", -1, &m), &m);
    elapsed[2] = ev_time() - t0;
    t0 = ev_time();
    note(aemp_fiber_sleep(0.05), NULL);
    elapsed[3] = ev_time() - t0;
    done = 1;
}

static void timeouts(void **state)
{
    const char *p = aemp_port_async(timeout_body, NULL);
    aemp_sndf(p, "s", "noise");
    assert_true(tu_run_until(&done, 5));
    int expect[] = { AEMP_ETIMEDOUT, AEMP_ETIMEDOUT, 0, 0, 0 };
    assert_results(expect, 5);
    assert_rec("[null,null,[\"noise\"],[\"late\",1],null]");
    assert_true(elapsed[0] < 0.05);
    assert_true(elapsed[1] >= 0.09 && elapsed[1] < 2);
    assert_true(elapsed[2] >= 0.1 && elapsed[2] < 2);
    assert_true(elapsed[3] >= 0.04 && elapsed[3] < 2);
}

/* -------------------------------------------------------------- syncal */

/* A normal port that replies with the message minus its last element to
 * the port named by its last element. */
static void echo(aemp_msg_t *msg, void *arg)
{
    size_t n = aemp_msg_len(msg);
    const char *to = n ? aemp_msg_str(msg, n - 1, NULL) : NULL;
    if (!to)
        return;
    aemp_build_t *b = aemp_build_new();
    for (size_t i = 0; i + 1 < n; i++)
        aemp_build_val(b, aemp_msg_at(msg, i));
    aemp_snd(to, aemp_build_msg(b));
}

static void suicide(aemp_msg_t *msg, void *arg)
{
    aemp_die("no answer");
}

static const char *echo_port, *silent_port, *dying_port;

static void syncal_body(void *arg)
{
    aemp_msg_t *r;
    note(aemp_syncal(2, echo_port, aemp_msgf("si", "hi", 1), &r), &r);
    note(aemp_syncal(0.1, silent_port, aemp_msgf("s", "x"), &r), &r);
    note(aemp_syncal(-1, dying_port, aemp_msgf("s", "x"), &r), &r);
    note(aemp_syncal(-1, echo_port, aemp_msgf("s", "forever"), &r), &r);
    note(aemp_syncal(0, echo_port, aemp_msgf("s", "x"), &r), &r);
    note(aemp_syncal(1, echo_port, aemp_valf("s", "not an array"), &r), &r);
    note(aemp_syncal(1, "", aemp_msg_empty(), &r), &r);
    note(aemp_syncal(1, echo_port, NULL, &r), &r);
    done = 1;
}

static void syncal(void **state)
{
    echo_port = aemp_port(echo, NULL);
    silent_port = aemp_port(on_ctl, NULL);
    dying_port = aemp_port(suicide, NULL);
    assert_non_null(aemp_port_async(syncal_body, NULL));
    assert_true(tu_run_until(&done, 5));
    int expect[] = { 0, AEMP_ETIMEDOUT, AEMP_ENOPORT, 0, AEMP_EINVAL, AEMP_EINVAL, AEMP_EPORTID,
                     AEMP_EINVAL };
    assert_results(expect, 8);
    assert_rec("[[\"hi\",1],null,null,[\"forever\"],null,null,null,null]");
    tu_drain();
    /* the reply ports are gone */
    aemp_msg_t *r = NULL;
    assert_int_equal(aemp_syncal(1, echo_port, aemp_msg_empty(), &r), AEMP_ENOFIBER);
    assert_null(r);
}

/* --------------------------------------------------------- peval_async */

static char seen_self[256];

static void peval_body(void *arg)
{
    aemp_msg_t *m, *r;
    snprintf(seen_self, sizeof seen_self, "%s", aemp_self() ? aemp_self() : "");
    note(aemp_in_fiber(), NULL);
    note(aemp_get("x", 0, &m), &m);   /* no queue */
    note(aemp_fiber_sleep(0.01), NULL);
    note(aemp_syncal(2, echo_port, aemp_msgf("s", "pe"), &r), &r);
    done++;
    if (arg)
        aemp_die("peval %s", (const char *)arg);
}

static void peval_async(void **state)
{
    echo_port = aemp_port(echo, NULL);
    const char *p = aemp_port(on_ctl, NULL);
    aemp_mon(p, on_death, NULL, NULL);
    assert_int_equal(aemp_peval_async(p, peval_body, NULL), 0);
    assert_int_equal(done, 0);   /* never inside the call */
    assert_true(tu_run_until(&done, 5));
    assert_string_equal(seen_self, p);
    int expect[] = { 1, AEMP_ENOFIBER, 0, 0 };
    assert_results(expect, 4);
    assert_rec("[null,null,null,[\"pe\"]]");
    tu_drain();
    assert_int_equal(died, 0);   /* returning does not kill the port */
    /* aemp_die in a peval fiber kills the port when the body returns */
    done = 0;
    assert_int_equal(aemp_peval_async(p, peval_body, "failed"), 0);
    assert_true(tu_run_until(&died, 5));
    tu_assert_msg(reason, "[\"die\",\"peval failed\"]");
    assert_int_equal(aemp_peval_async(NULL, peval_body, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_peval_async("#x", peval_body, NULL), AEMP_EPORTID);
}

/* -------------------------------------------------------- bad context */

static void noop_body(void *arg)
{
}

static void outside_a_fiber(void **state)
{
    aemp_msg_t *sentinel = aemp_msg_empty();
    aemp_msg_t *m = sentinel;
    assert_int_equal(aemp_get("x", 0, &m), AEMP_ENOFIBER);
    assert_null(m);
    aemp_msg_unref(sentinel);
    assert_int_equal(aemp_get_cond(NULL, NULL, -1, &m), AEMP_ENOFIBER);
    assert_int_equal(aemp_get(NULL, 0, &m), AEMP_EINVAL);
    assert_int_equal(aemp_get("x", 0, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_syncal(1, aemp_node(), aemp_msg_empty(), &m), AEMP_ENOFIBER);
    assert_int_equal(aemp_fiber_sleep(1), AEMP_ENOFIBER);
    assert_int_equal(aemp_fiber_exit(aemp_msg_empty()), AEMP_ENOFIBER);
    assert_int_equal(aemp_in_fiber(), 0);
    assert_int_equal(aemp_fiber_queued(), 0);
    assert_null(aemp_port_async(NULL, NULL));
    const char *p = aemp_port(NULL, NULL);
    assert_int_equal(aemp_rcv_async(p, NULL, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_rcv_async(p, noop_body, NULL), 0);
    assert_int_equal(aemp_rcv_async(p, noop_body, NULL), AEMP_EAGAIN);   /* one per port */
    assert_int_equal(aemp_rcv_async("othernode#x", noop_body, NULL), AEMP_ENOTLOCAL);
    assert_int_equal(aemp_rcv_async(aemp_node(), noop_body, NULL), AEMP_ENODEPORT);
    assert_int_equal(aemp_rcv_async("#x", noop_body, NULL), AEMP_EPORTID);
    assert_int_equal(aemp_fiber_set_stack_size(100), AEMP_EINVAL);
    assert_int_equal(aemp_fiber_set_stack_size(20000), 0);
    assert_int_equal(aemp_fiber_stack_size(), 20480);
    assert_int_equal(aemp_fiber_set_stack_size(256 * 1024), 0);
    assert_string_equal(aemp_strerror(AEMP_ETIMEDOUT), "timed out");
    tu_drain();
}

/* -------------------------------------------------------------- ending */

static void end_body(void *arg)
{
    const char *how = arg;
    aemp_msg_t *m;
    int r = aemp_get_cond(NULL, NULL, -1, &m);
    aemp_msg_unref(m);
    if (r)
        return;
    if (strcmp(how, "die") == 0) {
        aemp_die("bad %d\n", 1);
        return;
    }
    if (strcmp(how, "exit") == 0) {
        aemp_fiber_exit(aemp_msgf("ss", "custom", "reason"));
        done = 99;   /* not reached */
    }
    if (strcmp(how, "exit_bad") == 0)   /* a reason that is no array: refused, returns */
        note(aemp_fiber_exit(aemp_valf("s", "no array")), NULL);
    if (strcmp(how, "exit_die") == 0) {
        aemp_die("first");
        aemp_fiber_exit(NULL);
    }
}

static void check_end(const char *how, const char *expect)
{
    died = 0;
    const char *p = aemp_port_async(end_body, (void *)how);
    aemp_mon(p, on_death, NULL, NULL);
    aemp_sndf(p, "s", "go");
    aemp_sndf(p, "s", "dropped");   /* still queued when the fiber ends */
    assert_true(tu_run_until(&died, 5));
    tu_assert_msg(reason, expect);
    tu_drain();
    assert_int_equal(aemp_fiber_count(), 0);
}

static void ending_kills_the_port(void **state)
{
    check_end("return", "[]");
    check_end("die", "[\"die\",\"bad 1\"]");
    check_end("exit", "[\"custom\",\"reason\"]");
    check_end("exit_die", "[\"die\",\"first\"]");
    check_end("exit_bad", "[]");
    int expect[] = { AEMP_EINVAL };
    assert_results(expect, 1);
    assert_int_equal(done, 0);
    /* messages that arrive after the end, before the kill, are dropped */
    died = 0;
    char p[256];
    snprintf(p, sizeof p, "%s", aemp_port_async(noop_body, NULL));
    aemp_mon(p, on_death, NULL, NULL);
    ev_run(aemp_loop(), EVRUN_NOWAIT);   /* the fiber ran and ended */
    assert_int_equal(aemp_fiber_count(), 0);
    aemp_sndf(p, "s", "late");
    assert_true(tu_run_until(&died, 5));
    tu_assert_msg(reason, "[]");
}

/* ------------------------------------------------- killing and unwinding */

static int unwound, freed;

static void guard_release(void *ptr)
{
    freed++;
}

/* Holds a heap buffer across a blocking call; frees it on cancel. */
static void waiting_body(void *arg)
{
    const char *how = arg;
    char *buf = malloc(4096);
    memset(buf, 'x', 4096);
    aemp_msg_t *m = NULL;
    int r;
    if (strcmp(how, "get") == 0)
        r = aemp_get("never", -1, &m);
    else if (strcmp(how, "sleep") == 0)
        r = aemp_fiber_sleep(100);
    else
        r = aemp_syncal(-1, silent_port, aemp_msgf("s", "x"), &m);
    note(r, &m);
    note(aemp_get("again", -1, &m), &m);   /* cancelled stays cancelled */
    free(buf);
    unwound++;
}

static void killed_port_unwinds_fiber(void **state)
{
    silent_port = aemp_port(on_ctl, NULL);
    const char *hows[] = { "get", "sleep", "syncal" };
    unwound = 0;
    for (int i = 0; i < 3; i++) {
        died = 0;
        const char *p = aemp_port_async(waiting_body, (void *)hows[i]);
        aemp_mon(p, on_death, NULL, NULL);
        aemp_mon_guard(p, guard_release, NULL, NULL);
        for (int k = 0; k < 10; k++)
            aemp_sndf(p, "si", "queued", k);   /* freed with the queue */
        tu_drain();
        assert_int_equal(aemp_fiber_count(), 1);
        aemp_kilf(p, "ss", "stop", hows[i]);
        assert_true(tu_run_until(&died, 5));
        assert_int_equal(unwound, i + 1);   /* before the monitor fired */
        char expect[64];
        snprintf(expect, sizeof expect, "[\"stop\",\"%s\"]", hows[i]);
        tu_assert_msg(reason, expect);
        assert_int_equal(aemp_fiber_count(), 0);
    }
    int expect[] = { AEMP_ECANCELED, AEMP_ECANCELED, AEMP_ECANCELED, AEMP_ECANCELED,
                     AEMP_ECANCELED, AEMP_ECANCELED };
    assert_results(expect, 6);
    assert_int_equal(freed, 3);
    /* killed before it ever ran: the body runs and sees the cancel */
    const char *p = aemp_port(NULL, NULL);
    aemp_kil(p, NULL);   /* queued before the fiber's start */
    assert_int_equal(aemp_rcv_async(p, waiting_body, "get"), 0);
    tu_drain();
    assert_int_equal(unwound, 4);
    assert_int_equal(aemp_fiber_count(), 0);
    /* a waiting fiber at shutdown: its stack is simply freed (teardown) */
    p = aemp_port_async(take_n, (void *)(intptr_t)2);
    aemp_sndf(p, "s", "one");
    tu_drain();
    assert_int_equal(aemp_fiber_count(), 1);
    aemp_sndf(p, "s", "queued at shutdown");
}

/* rcv_async on an existing port with a tag callback. */
static void rcv_async_existing_port(void **state)
{
    const char *p = aemp_port(NULL, NULL);
    ctl_seen = 0;
    aemp_rcv_tag(p, "ctl", on_ctl, NULL);
    aemp_sndf(p, "si", "early", 0);   /* before the fiber is attached: delivered to it */
    assert_int_equal(aemp_rcv_async(p, take_n, (void *)(intptr_t)2), 0);
    aemp_sndf(p, "s", "ctl");
    aemp_sndf(p, "si", "late", 1);
    assert_true(tu_run_until(&done, 5));
    assert_rec("[[\"early\",0],[\"late\",1]]");
    assert_int_equal(ctl_seen, 1);
    /* a spawned-style port that does not exist yet is created */
    char id[256];
    snprintf(id, sizeof id, "%s#fiberport", aemp_node());
    done = 0;
    assert_int_equal(aemp_rcv_async(id, take_n, (void *)(intptr_t)1), 0);
    aemp_sndf(id, "s", "hello");
    assert_true(tu_run_until(&done, 5));
}

/* Two fibers playing ping-pong through get. */
static const char *ping_p, *pong_p;
static int rounds;

static void player(void *arg)
{
    int is_ping = arg != NULL;
    const char *other = is_ping ? pong_p : ping_p;
    if (is_ping)
        aemp_sndf(other, "si", "ball", 0);
    for (;;) {
        aemp_msg_t *m;
        if (aemp_get("ball", 5, &m))
            return;
        int64_t n = -1;
        aemp_msg_int(m, 1, &n);   /* element 0 is the tag */
        aemp_msg_unref(m);
        if (n < 0)
            return;
        rounds = (int)n;
        if (n >= 1000) {
            aemp_sndf(other, "si", "ball", n + 1);
            done = 1;
            return;
        }
        aemp_sndf(other, "si", "ball", n + 1);
    }
}

static void fiber_ping_pong(void **state)
{
    pong_p = aemp_port_async(player, NULL);
    ping_p = aemp_port_async(player, (void *)1);
    assert_true(tu_run_until(&done, 10));
    assert_true(rounds >= 1000);
    tu_drain();
    assert_int_equal(aemp_fiber_count(), 0);
}

/* A fiber that blocks inside a nested port context (aemp_peval) keeps
 * that context, and gets its own back afterwards. */
static char selves[4][256];
static const char *other_port;

static void nested(void *arg)
{
    aemp_msg_t *m;
    snprintf(selves[0], sizeof selves[0], "%s", aemp_self());
    note(aemp_get("x", -1, &m), &m);
    snprintf(selves[1], sizeof selves[1], "%s", aemp_self());
}

static void nesting_body(void *arg)
{
    aemp_peval(other_port, nested, NULL);
    snprintf(selves[2], sizeof selves[2], "%s", aemp_self());
    done = 1;
}

static void context_survives_blocking(void **state)
{
    other_port = aemp_port(on_ctl, NULL);
    const char *p = aemp_port_async(nesting_body, NULL);
    char pid[256];
    snprintf(pid, sizeof pid, "%s", p);
    tu_drain();
    assert_null(aemp_self());   /* the suspended fiber's context is not ours */
    aemp_sndf(p, "s", "x");
    assert_true(tu_run_until(&done, 5));
    assert_string_equal(selves[0], other_port);
    assert_string_equal(selves[1], other_port);
    assert_string_equal(selves[2], pid);
    assert_null(aemp_self());
}

/* ---------------------------------------------------- 10,000 fibers */

#define MANY 10000
static int many_got;

static void one_message(void *arg)
{
    aemp_msg_t *m;
    if (aemp_get("msg", -1, &m) == 0) {
        int64_t n;
        if (aemp_msg_int(m, 1, &n) == 0 && n == (int64_t)(intptr_t)arg)
            many_got++;
        aemp_msg_unref(m);
    }
}

static void ten_thousand_fibers(void **state)
{
    assert_int_equal(aemp_fiber_set_stack_size(16 * 1024), 0);
    char **ids = malloc(MANY * sizeof *ids);
    for (int i = 0; i < MANY; i++) {
        const char *p = aemp_port_async(one_message, (void *)(intptr_t)i);
        assert_non_null(p);
        ids[i] = strdup(p);
    }
    tu_drain();
    assert_int_equal(aemp_fiber_count(), MANY);
    many_got = 0;
    for (int i = 0; i < MANY; i++)
        aemp_sndf(ids[i], "si", "msg", i);
    for (int i = 0; i < 50 && many_got < MANY; i++)
        tu_drain();
    assert_int_equal(many_got, MANY);
    tu_drain();
    assert_int_equal(aemp_fiber_count(), 0);
    for (int i = 0; i < MANY; i++)
        free(ids[i]);
    free(ids);
    assert_int_equal(aemp_fiber_set_stack_size(256 * 1024), 0);
}

/* ------------------------------------------------------- stack overflow */

static volatile int depth_limit = 1 << 30;

static int recurse(int depth)
{
    volatile char pad[512];
    if (depth > depth_limit)
        return 0;
    pad[0] = (char)depth;
    pad[511] = pad[0];
    return recurse(depth + 1) + pad[511];
}

static void overflow_body(void *arg)
{
    recurse(0);
}

static void stack_overflow_is_detected(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        ev_loop_fork(aemp_loop());
        aemp_fiber_set_stack_size(16 * 1024);
        aemp_port_async(overflow_body, NULL);
        for (int i = 0; i < 10; i++)
            ev_run(aemp_loop(), EVRUN_NOWAIT);
        _exit(0);   /* not reached */
    }
    close(fds[1]);
    char out[4096];
    size_t n = 0;
    ssize_t r;
    while (n + 1 < sizeof out && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child status %#x, stderr: %s", status, out);
    if (!strstr(out, "aemp: fiber stack overflow in port ") ||
        !strstr(out, " (stack size 16384 bytes)\n"))
        fail_msg("unexpected stderr: %s", out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(queue_keeps_arrival_order, setup, teardown),
        cmocka_unit_test_setup_teardown(get_by_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(tag_is_text_or_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(get_cond_predicate, setup, teardown),
        cmocka_unit_test_setup_teardown(timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(syncal, setup, teardown),
        cmocka_unit_test_setup_teardown(peval_async, setup, teardown),
        cmocka_unit_test_setup_teardown(outside_a_fiber, setup, teardown),
        cmocka_unit_test_setup_teardown(ending_kills_the_port, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_port_unwinds_fiber, setup, teardown),
        cmocka_unit_test_setup_teardown(rcv_async_existing_port, setup, teardown),
        cmocka_unit_test_setup_teardown(fiber_ping_pong, setup, teardown),
        cmocka_unit_test_setup_teardown(context_survives_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(ten_thousand_fibers, setup, teardown),
        cmocka_unit_test_setup_teardown(stack_overflow_is_detected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
