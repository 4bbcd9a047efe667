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
#include "aemp_json.h"

/* The process's log lines, each followed by a newline, as the hook
 * tu_log_hook collected them (aemp_log_hook_add(tu_log_hook, NULL));
 * lines that do not fit any more are dropped.  tu_log[0] = 0 empties it. */
static char tu_log[65536] __attribute__((unused));
static inline void tu_log_hook(int level, const char *msg, void *arg)
{
    size_t n = strlen(tu_log);
    if (n + strlen(msg) + 2 < sizeof tu_log) {
        strcat(tu_log, msg);
        strcat(tu_log, "\n");
    }
}

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

/* Compare a value with the JSON text `expect` (parsed by jansson and
 * converted with aemp_msg_from_json: strings compare as text strings). */
static inline void tu_assert_val(const aemp_val_t *v, const char *expect)
{
    json_error_t err;
    json_t *e = json_loads(expect, JSON_DECODE_ANY, &err);
    if (!e)
        fail_msg("bad expected JSON %s: %s", expect, err.text);
    aemp_msg_t *em = aemp_msg_from_json(e);
    json_decref(e);
    if (!v || !aemp_val_equal(v, aemp_msg_root(em))) {
        char *got = v ? aemp_val_text(v) : strdup("NULL");
        aemp_msg_unref(em);
        fail_msg("expected %s, got %s", expect, got);
    }
    aemp_msg_unref(em);
}

/* The same for a message's root (m NULL fails). */
static inline void tu_assert_msg(const aemp_msg_t *m, const char *expect)
{
    tu_assert_val(m ? aemp_msg_root(m) : NULL, expect);
}

/* A box records the last message (or kill reason) a callback saw and how
 * many it saw: tu_box_put fits both aemp_rcv_fn and aemp_mon_fn. */
typedef struct tu_box {
    aemp_msg_t *last;
    int count;
} tu_box_t;

static inline void tu_box_put(aemp_msg_t *m, void *box)
{
    tu_box_t *b = box;
    aemp_msg_unref(b->last);
    b->last = aemp_msg_ref(m);
    b->count++;
}

static inline void tu_box_clear(tu_box_t *b)
{
    aemp_msg_unref(b->last);
    b->last = NULL;
    b->count = 0;
}

static inline void tu_cal_done(aemp_msg_t *r, void *box)
{
    tu_box_put(r, box);
}

/* aemp_cal and wait (bounded): the reply (owned by the caller) or NULL on
 * timeout / death of the destination. */
static inline aemp_msg_t *tu_call(const char *port, aemp_msg_t *msg, double timeout)
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
