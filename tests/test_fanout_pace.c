/* Tests for the pacing rule of the batched fan-out (fanout_pace.h): the
 * interval's formula and cap, and, on a simulated clock, what the rule
 * does with storms, storms' ends, spaced changes and isolated ones --
 * how many reports go out, how long a change waits for its report, and
 * that no pattern of changes costs more than four times the budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>

#include "fanout_pace.h"

#define EPS 1e-9

static void interval_formula(void **state)
{
    aemp_fanout_cost_t c = { .subscribers = 0, .share = 1 };
    assert_true(aemp__fanout_interval(&c, 0.25, 1.0) == 0);   /* nobody to tell */

    /* 4096 changes-only subscribers, last report 10 keys, two global nodes */
    c = (aemp_fanout_cost_t){ .subscribers = 4096, .last_keys = 10, .family_keys = 4096, .share = 2 };
    double cost = 4096 * AEMP_FANOUT_WAKE + 4096 * 10 * AEMP_FANOUT_PER_KEY;
    assert_true(fabs(aemp__fanout_interval(&c, 0.25, 10.0) - cost * 2 / 0.25) < EPS);
    assert_true(fabs(aemp__fanout_interval(&c, 1.0, 10.0) - cost * 2) < EPS);   /* 4 x the budget: 1/4 the time */
    assert_true(aemp__fanout_interval(&c, 0.25, 0.5) == 0.5);                   /* capped */

    /* a subscriber that copies the family pays for every key of it */
    c.costly = 1;
    double costly = 4095 * AEMP_FANOUT_WAKE + 4095 * 10 * AEMP_FANOUT_PER_KEY +
                    AEMP_FANOUT_WAKE + 4096 * AEMP_FANOUT_PER_KEY;
    assert_true(fabs(aemp__fanout_interval(&c, 1.0, 10.0) - costly * 2) < EPS);

    /* a share below one (no global node counted) is one */
    c = (aemp_fanout_cost_t){ .subscribers = 100, .share = 0 };
    assert_true(fabs(aemp__fanout_interval(&c, 1.0, 10.0) - 100 * AEMP_FANOUT_WAKE) < EPS);
}

static void due_cases(void **state)
{
    /* after a quiet spell: due at once (the previous report is long past) */
    assert_true(aemp__fanout_due(-1e9, 100.0, 0.5) <= 100.0);
    /* in a storm (the last change just now): one interval after the last report */
    assert_true(fabs(aemp__fanout_due(100.0, 100.4, 0.5) - 100.42) < EPS);   /* storm end first */
    assert_true(fabs(aemp__fanout_due(100.0, 100.49, 0.5) - 100.5) < EPS);   /* the interval first */
    /* a storm's end: the quiet time after the last change ... */
    assert_true(fabs(aemp__fanout_due(100.0, 100.2, 0.5) - (100.2 + AEMP_FANOUT_QUIET)) < EPS);
    /* ... but not before a quarter interval after the last report */
    assert_true(fabs(aemp__fanout_due(100.0, 100.01, 0.5) - 100.125) < EPS);
}

/* A global node's outbox on a simulated clock: changes at the times
 * change(i) for i < n (increasing), each run through the rule at once (the
 * job at the end of its loop pass) and again when the timer set for the
 * next due time fires.  Counts the reports and the longest wait of any
 * change for its report (the last change's wait separately). */
typedef struct {
    int reports;
    double max_wait, last_wait;
} sim_t;

static sim_t simulate(double (*change)(int i), int n, double interval)
{
    sim_t r = { 0, 0, 0 };
    double sent = -1e9, changed = 0, oldest = -1, timer = INFINITY;
    int i = 0;
    while (i < n || oldest >= 0) {
        double next_change = i < n ? change(i) : INFINITY;
        double now = next_change <= timer ? next_change : timer;
        if (now == next_change) {   /* a change arrives */
            changed = now;
            if (oldest < 0)
                oldest = now;
            i++;
        }
        timer = INFINITY;
        double due = aemp__fanout_due(sent, changed, interval);
        if (due <= now) {   /* the report goes out */
            double wait = now - oldest;
            r.max_wait = wait > r.max_wait ? wait : r.max_wait;
            if (i == n)
                r.last_wait = now - changed;
            r.reports++;
            sent = now;
            oldest = -1;
        } else {
            timer = due;
        }
    }
    return r;
}

static double every_ms(int i) { return 10.0 + i * 0.001; }
static double every_25ms(int i) { return 10.0 + i * 0.025; }
static double every_2s(int i) { return 10.0 + i * 2.0; }

/* A storm (a change every millisecond for 9.7 s): one report per interval,
 * no change waits longer than an interval, the last a quarter of one. */
static void storm(void **state)
{
    double iv = 0.5;
    sim_t r = simulate(every_ms, 9700, iv);
    assert_in_range(r.reports, 20, 21);   /* 9.7 s / 0.5 s, the first at once, the end early */
    assert_true(r.max_wait <= iv + EPS);
    assert_true(r.last_wait <= iv / AEMP_FANOUT_EARLY + EPS);
}

/* Changes just farther apart than the quiet time: every one ends a
 * "storm", yet reports go out at most every quarter interval -- four times
 * the budget at most -- and none waits longer than a quarter interval
 * and the quiet time. */
static void spaced_changes_cost_at_most_four_budgets(void **state)
{
    double iv = 0.5, early = iv / AEMP_FANOUT_EARLY;
    sim_t r = simulate(every_25ms, 400, iv);   /* 10 s */
    assert_true(r.reports <= (int)(10.0 / early) + 2);
    assert_true(r.reports >= (int)(10.0 / (early + AEMP_FANOUT_QUIET + 0.025)) - 1);   /* not one per interval */
    assert_true(r.max_wait <= early + AEMP_FANOUT_QUIET + EPS);
}

/* Isolated changes go out at once, each in its own report. */
static void isolated_changes_go_out_at_once(void **state)
{
    sim_t r = simulate(every_2s, 10, 0.5);
    assert_int_equal(r.reports, 10);
    assert_true(r.max_wait == 0);
}

/* With the interval at its cap no change waits longer than the cap. */
static void the_cap_bounds_every_wait(void **state)
{
    aemp_fanout_cost_t c = { .subscribers = 1e6, .share = 4 };
    double iv = aemp__fanout_interval(&c, 0.25, 1.0);
    assert_true(iv == 1.0);
    sim_t r = simulate(every_ms, 5000, iv);
    assert_true(r.max_wait <= 1.0 + EPS);
    assert_in_range(r.reports, 5, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interval_formula),
        cmocka_unit_test(due_cases),
        cmocka_unit_test(storm),
        cmocka_unit_test(spaced_changes_cost_at_most_four_budgets),
        cmocka_unit_test(isolated_changes_go_out_at_once),
        cmocka_unit_test(the_cap_bounds_every_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
