/* loop.c - the node's lifecycle and its deferred-work queue.
 *
 * Everything that must not happen inside the caller's stack (local message
 * delivery, kills, monitor actions) is appended to one FIFO of jobs.  The
 * FIFO is drained from an ev_check watcher; an ev_idle watcher keeps the
 * loop from blocking while jobs are pending.  Jobs added while draining are
 * run in the same pass up to a budget, so a ping-pong between two local
 * ports needs no syscall per message yet I/O is never starved, and the
 * stack depth stays constant.
 */
#include "internal.h"
#include "random.h"

#include <stdlib.h>
#include <string.h>

struct aemp_global aemp__g;

void aemp__ids_init(void);
void aemp__node_init(void);
void aemp__node_shutdown(void);

enum job_kind { JOB_MSG, JOB_MSG_NAMED, JOB_KIL, JOB_CALL };

typedef struct job {
    enum job_kind kind;
    union {
        aemp_lport_t *port;      /* MSG, KIL */
        char *name;              /* MSG_NAMED (malloc'd, NUL-terminated) */
        void (*fn)(void *);      /* CALL */
    } u;
    union {
        aemp_msg_t *msg;         /* MSG, MSG_NAMED: message; KIL: reason */
        void *arg;               /* CALL */
    } d;
    void (*drop)(void *);        /* CALL: frees arg if the job never runs */
} job_t;

/* ring buffer, capacity a power of two */
static job_t *ring;
static size_t ring_cap, ring_head, ring_len;
static ev_check drain_watcher;
static ev_idle wake_watcher;

#define DRAIN_BUDGET 65536   /* jobs per loop pass before I/O gets a turn */

static void grow(void)
{
    size_t cap = ring_cap ? ring_cap * 2 : 1024;
    job_t *n = malloc(cap * sizeof *n);
    if (!n)
        abort();
    for (size_t i = 0; i < ring_len; i++)
        n[i] = ring[(ring_head + i) & (ring_cap - 1)];
    free(ring);
    ring = n;
    ring_cap = cap;
    ring_head = 0;
}

/* Append a job of `kind` and return it for the caller to fill in (filled
 * field by field: building a job_t on the stack and copying it costs a
 * store-forwarding stall per message). */
static inline job_t *push(enum job_kind kind)
{
    if (ring_len == ring_cap)
        grow();
    job_t *j = &ring[(ring_head + ring_len) & (ring_cap - 1)];
    if (!ring_len++ && aemp__g.loop)
        ev_idle_start(aemp__g.loop, &wake_watcher);
    j->kind = kind;
    j->drop = NULL;
    return j;
}

void aemp__job_msg(aemp_lport_t *p, aemp_msg_t *msg)
{
    aemp__port_ref(p);
    job_t *j = push(JOB_MSG);
    j->u.port = p;
    j->d.msg = msg;
}

void aemp__job_msg_now(aemp_lport_t *p, aemp_msg_t *msg)
{
    if (ring_len) {
        aemp__job_msg(p, msg);
        return;
    }
    aemp__port_ref(p);   /* the callback may kill the port */
    aemp__port_deliver(p, msg);
    aemp__port_unref(p);
}

void aemp__job_msg_named(const char *name, size_t len, aemp_msg_t *msg)
{
    char *copy = malloc(len + 1);
    if (!copy)
        abort();
    memcpy(copy, name, len);
    copy[len] = 0;
    job_t *j = push(JOB_MSG_NAMED);
    j->u.name = copy;
    j->d.msg = msg;
}

void aemp__job_kil(aemp_lport_t *p, aemp_msg_t *reason)
{
    aemp__port_ref(p);
    job_t *j = push(JOB_KIL);
    j->u.port = p;
    j->d.msg = reason;
}

void aemp__job_call(void (*fn)(void *arg), void *arg)
{
    job_t *j = push(JOB_CALL);
    j->u.fn = fn;
    j->d.arg = arg;
}

void aemp__job_call_owned(void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
    job_t *j = push(JOB_CALL);
    j->u.fn = fn;
    j->d.arg = arg;
    j->drop = drop;
}

static void run_job(job_t *j)
{
    switch (j->kind) {
    case JOB_MSG:
        aemp__port_deliver(j->u.port, j->d.msg);
        aemp__port_unref(j->u.port);
        break;
    case JOB_MSG_NAMED: {
        size_t len = strlen(j->u.name);
        aemp_lport_t *p = aemp__port_find(j->u.name, len);
        if (p) {
            aemp__port_ref(p);
            aemp__port_deliver(p, j->d.msg);
            aemp__port_unref(p);
        } else if (len == 0) {
            aemp__node_port_request(aemp__g.nodeid, j->d.msg);
        } else {
            aemp_log(AEMP_LOG_DEBUG, "message to nonexistent local port %s#%s dropped",
                     aemp__g.nodeid, j->u.name);
            aemp_msg_unref(j->d.msg);
        }
        free(j->u.name);
        break;
    }
    case JOB_KIL:
        aemp__port_die(j->u.port, j->d.msg);
        aemp__port_unref(j->u.port);
        break;
    case JOB_CALL:
        j->u.fn(j->d.arg);
        break;
    }
}

static void drain(EV_P_ ev_check *w, int revents)
{
    for (int budget = DRAIN_BUDGET; ring_len && budget; budget--) {
        job_t j = ring[ring_head];
        ring_head = (ring_head + 1) & (ring_cap - 1);
        if (!--ring_len)
            ring_head = 0;   /* an empty ring starts over: a process that
                                never queues many jobs touches few of its pages */
        run_job(&j);
    }
    if (!ring_len)
        ev_idle_stop(EV_A_ &wake_watcher);
}

static void wake(EV_P_ ev_idle *w, int revents)
{
    /* nothing: being active makes the loop poll without blocking */
}

void aemp__jobs_clear(void)
{
    while (ring_len) {
        job_t *j = &ring[ring_head];
        ring_head = (ring_head + 1) & (ring_cap - 1);
        ring_len--;
        switch (j->kind) {
        case JOB_MSG:
        case JOB_KIL:
            aemp_msg_unref(j->d.msg);
            aemp__port_unref(j->u.port);
            break;
        case JOB_MSG_NAMED:
            aemp_msg_unref(j->d.msg);
            free(j->u.name);
            break;
        case JOB_CALL:
            if (j->drop)
                j->drop(j->d.arg);
            break;
        }
    }
    free(ring);
    ring = NULL;
    ring_cap = ring_head = ring_len = 0;
}

/* ------------------------------------------------------------ lifecycle */

static void init_with(struct ev_loop *loop)
{
    memset(&aemp__g, 0, sizeof aemp__g);
    aemp__g.loop = loop;
    aemp__g.next_handle = 1;
    aemp__ids_init();
    char rnd[11];
    if (aemp__random_base62(rnd, 10) < 0)
        abort();
    size_t n = strlen("anon/") + 10;
    aemp__g.nodeid = malloc(n + 1);
    if (!aemp__g.nodeid)
        abort();
    memcpy(aemp__g.nodeid, "anon/", 5);
    memcpy(aemp__g.nodeid + 5, rnd, 11);
    aemp__g.nodeid_len = n;
    ev_check_init(&drain_watcher, drain);
    ev_check_start(loop, &drain_watcher);
    ev_unref(loop);   /* the drain watcher alone must not keep ev_run alive */
    ev_idle_init(&wake_watcher, wake);
    if (ring_len)
        ev_idle_start(loop, &wake_watcher);
    aemp__g.initialised = 1;
    aemp__node_init();
}

int aemp_init(struct ev_loop *loop)
{
    if (!loop)
        loop = EV_DEFAULT;
    if (aemp__g.initialised)
        return aemp__g.loop == loop ? 0 : AEMP_EAGAIN;
    init_with(loop);
    return 0;
}

void aemp__ensure_init(void)
{
    if (!aemp__g.initialised)
        init_with(EV_DEFAULT);
}

struct ev_loop *aemp_loop(void)
{
    aemp__ensure_init();
    return aemp__g.loop;
}

void aemp_run(void)
{
    aemp__ensure_init();
    ev_run(aemp__g.loop, 0);
}

void aemp_stop(void)
{
    aemp__ensure_init();
    ev_break(aemp__g.loop, EVBREAK_ALL);
}

aemp_handle_t aemp__new_handle(void)
{
    return aemp__g.next_handle++;
}

const char *aemp_node(void)
{
    aemp__ensure_init();
    return aemp__g.nodeid;
}

void aemp_shutdown(void)
{
    if (!aemp__g.initialised)
        return;
    struct ev_loop *loop = aemp__g.loop;
    aemp__node_shutdown();
    aemp__timers_clear();
    aemp__jobs_clear();
    aemp__ports_clear();
    aemp__monitors_clear();
    ev_ref(loop);
    ev_check_stop(loop, &drain_watcher);
    ev_idle_stop(loop, &wake_watcher);
    free(aemp__g.nodeid);
    aemp__ports_free_table();
    aemp__table_free(&aemp__g.monitors);
    aemp__table_free(&aemp__g.timers);
    memset(&aemp__g, 0, sizeof aemp__g);
}
