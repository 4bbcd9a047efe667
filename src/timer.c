/* timer.c - aemp_after: one-shot timers that send a message or call a
 * function, cancellable by handle. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct timer {
    ev_timer w;
    aemp_handle_t id;
    char *port;          /* send form */
    aemp_msg_t *msg;
    void (*fn)(void *);  /* call form */
    void *arg;
} timer_t_;

static void timer_free(timer_t_ *t)
{
    ev_timer_stop(aemp__g.loop, &t->w);
    aemp__table_del(&aemp__g.timers, (const char *)&t->id, sizeof t->id);
    free(t->port);
    aemp_msg_unref(t->msg);
    free(t);
}

static void timer_fired(EV_P_ ev_timer *w, int revents)
{
    timer_t_ *t = (timer_t_ *)w;
    void (*fn)(void *) = t->fn;
    void *arg = t->arg;
    char *port = t->port;
    aemp_msg_t *msg = t->msg;
    t->port = NULL;
    t->msg = NULL;
    timer_free(t);
    if (fn) {
        fn(arg);
    } else {
        aemp_snd(port, msg);
        free(port);
    }
}

static int start(timer_t_ *t, double seconds, aemp_handle_t *handle)
{
    t->id = aemp__new_handle();
    aemp__table_put(&aemp__g.timers, (const char *)&t->id, sizeof t->id, t);
    /* the loop's cached time may be old if the caller blocked outside it */
    ev_now_update(aemp__g.loop);
    ev_timer_init(&t->w, timer_fired, seconds > 0 ? seconds : 0, 0);
    ev_timer_start(aemp__g.loop, &t->w);
    if (handle)
        *handle = t->id;
    return 0;
}

int aemp_after(double seconds, const char *port, aemp_msg_t *msg, aemp_handle_t *handle)
{
    if (!port || aemp_val_type(aemp_msg_root(msg)) != AEMP_T_ARRAY) {
        aemp_msg_unref(msg);
        return AEMP_EINVAL;
    }
    aemp__ensure_init();
    const char *name;
    size_t len;
    int r = aemp__split_local(port, &name, &len);
    if (r < 0) {
        aemp_msg_unref(msg);
        return r;
    }
    timer_t_ *t = calloc(1, sizeof *t);
    if (!t || !(t->port = strdup(port)))
        abort();
    t->msg = msg;
    return start(t, seconds, handle);
}

int aemp_after_cb(double seconds, void (*fn)(void *arg), void *arg, aemp_handle_t *handle)
{
    if (!fn)
        return AEMP_EINVAL;
    aemp__ensure_init();
    timer_t_ *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->fn = fn;
    t->arg = arg;
    return start(t, seconds, handle);
}

int aemp_after_cancel(aemp_handle_t handle)
{
    aemp__ensure_init();
    timer_t_ *t = aemp__table_get(&aemp__g.timers, (const char *)&handle, sizeof handle);
    if (!t)
        return AEMP_ENOENT;
    timer_free(t);
    return 0;
}

void aemp__timers_clear(void)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&aemp__g.timers, &pos, NULL, NULL, &v))
        timer_free(v);
}
