/* cal.c - aemp_cal: a request with a fresh reply port, answered once by
 * the reply, a timeout, or the death of the destination. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct cal {
    aemp_cal_fn cb;
    void *arg;
    char *reply_port;
    aemp_handle_t timer;     /* timeout form */
    aemp_handle_t mon;       /* monitor form */
    int done;
} cal_t;

/* Finish: cancel what is left, kill the reply port, call back once. */
static void finish(cal_t *c, aemp_msg_t *reply)
{
    if (c->done)
        return;
    c->done = 1;
    if (c->timer)
        aemp_after_cancel(c->timer);
    if (c->mon)
        aemp_mon_cancel(c->mon);
    c->timer = c->mon = 0;
    aemp_kil(c->reply_port, NULL);
    c->cb(reply, c->arg);
}

static void on_reply(aemp_msg_t *msg, void *arg)
{
    finish(arg, msg);
}

static void on_timeout(void *arg)
{
    cal_t *c = arg;
    c->timer = 0;
    finish(c, NULL);
}

static void on_dest_died(aemp_msg_t *reason, void *arg)
{
    cal_t *c = arg;
    c->mon = 0;
    finish(c, NULL);
}

/* Guard on the reply port: frees the state when the port is gone. */
static void release(void *arg)
{
    cal_t *c = arg;
    free(c->reply_port);
    free(c);
}

const char *aemp_cal(const char *port, aemp_msg_t *msg, aemp_cal_fn cb, void *arg, double timeout)
{
    if (!port || !cb || aemp_val_type(aemp_msg_root(msg)) != AEMP_T_ARRAY) {
        aemp_msg_unref(msg);
        return NULL;
    }
    aemp__ensure_init();
    const char *name;
    size_t len;
    if (aemp__split_local(port, &name, &len) < 0) {
        aemp_msg_unref(msg);
        return NULL;
    }
    cal_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->cb = cb;
    c->arg = arg;
    const char *rp = aemp_port(on_reply, c);
    c->reply_port = strdup(rp);
    if (!c->reply_port)
        abort();
    aemp_mon_guard(rp, release, c, NULL);
    aemp_msg_t *full = aemp__msg_append_str(msg, rp, strlen(rp));
    aemp_msg_unref(msg);
    if (timeout > 0)
        aemp_after_cb(timeout, on_timeout, c, &c->timer);
    else
        aemp_mon(port, on_dest_died, c, &c->mon);
    aemp_snd(port, full);
    return rp;
}
