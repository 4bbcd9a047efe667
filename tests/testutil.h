/* testutil.h - helpers for tests that drive the event loop. */
#ifndef AEMP_TESTUTIL_H
#define AEMP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aemp.h"

static inline void tu_timeout_cb(EV_P_ ev_timer *w, int revents)
{
    *(int *)w->data = 1;
}

/* Run the loop until *flag becomes non-zero or `seconds` pass (bounded).
 * Returns 1 if the flag was set. */
static inline int tu_run_until(volatile int *flag, double seconds)
{
    struct ev_loop *loop = aemp_loop();
    int expired = 0;
    ev_timer t;
    ev_timer_init(&t, tu_timeout_cb, seconds, 0);
    t.data = &expired;
    ev_timer_start(loop, &t);
    while (!*flag && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
    return *flag != 0;
}

/* Run the loop for `seconds`, whatever happens. */
static inline void tu_run_for(double seconds)
{
    int never = 0;
    tu_run_until(&never, seconds);
}

/* Let every queued job run (a few loop passes without blocking). */
static inline void tu_drain(void)
{
    for (int i = 0; i < 8; i++)
        ev_run(aemp_loop(), EVRUN_NOWAIT);
}

/* Compare a JSON value with the JSON text `expect`. */
static inline void tu_assert_json(const json_t *v, const char *expect)
{
    json_error_t err;
    json_t *e = json_loads(expect, JSON_DECODE_ANY, &err);
    if (!e)
        fail_msg("bad expected JSON %s: %s", expect, err.text);
    if (!json_equal((json_t *)v, e)) {
        char *got = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("NULL");
        json_decref(e);
        fail_msg("expected %s, got %s", expect, got);
    }
    json_decref(e);
}

/* A box records the last message (or kill reason) a callback saw and how
 * many it saw: tu_box_put fits both aemp_rcv_fn and aemp_mon_fn. */
typedef struct tu_box {
    json_t *last;
    int count;
} tu_box_t;

static inline void tu_box_put(json_t *v, void *box)
{
    tu_box_t *b = box;
    json_decref(b->last);
    b->last = v ? json_incref(v) : NULL;
    b->count++;
}

static inline void tu_box_clear(tu_box_t *b)
{
    json_decref(b->last);
    b->last = NULL;
    b->count = 0;
}

static inline void tu_cal_done(json_t *r, void *box)
{
    tu_box_put(r, box);
}

/* aemp_cal and wait (bounded): the reply (owned by the caller) or NULL on
 * timeout / death of the destination. */
static inline json_t *tu_call(const char *port, json_t *msg, double timeout)
{
    tu_box_t b = { NULL, 0 };
    assert_non_null(aemp_cal(port, msg, tu_cal_done, &b, timeout));
    assert_true(tu_run_until(&b.count, timeout + 2));
    return b.last;
}

/* cmocka setup/teardown that give each test a fresh node. */
static inline int tu_setup(void **state)
{
    aemp_init(NULL);
    return 0;
}

static inline int tu_teardown(void **state)
{
    tu_drain();
    aemp_shutdown();
    return 0;
}

#endif
