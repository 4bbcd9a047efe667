/* fiber.c - ports served by fibers: selective receive (Coro::MP).
 *
 * A fiber is a ucontext coroutine on its own mmap'd stack with a PROT_NONE
 * guard area below it.  Fibers are only ever switched to from the code
 * that wakes them (the start job, message delivery, a timer, a monitor) and
 * switch back to exactly that code when they block or end, so every switch
 * is a pair: resume() ... yield().  A fiber never frees itself: when its
 * body has returned it switches back for the last time and the resumer
 * finishes it (kills the port, frees the stack).
 *
 * Receiving fibers hook into a port through its default callback
 * (fiber_rcv): port delivery is unchanged, so ordinary ports pay nothing.
 * While a fiber waits, each arriving message is tested against what it
 * waits for (a tag, or a predicate) on the delivering stack: a match is
 * handed over directly and the fiber resumed; anything else is appended to
 * the queue without a context switch.  The queue was fully scanned before
 * the fiber blocked, so nothing is ever scanned twice.  The queue holds
 * message references: messages are immutable, so a queued message may be
 * shared with its sender and other receivers, and is never copied.
 *
 * Port context: every fiber has its own base aemp_ctx (SELF = its port;
 * aemp_die stores the message there) and keeps its own chain of contexts
 * while suspended; resume() swaps the chain in and out.
 *
 * Stack overflow: a SIGSEGV handler on an alternate signal stack
 * recognises faults in a guard area (or a stack pointer below the running
 * fiber's stack), prints one line and aborts; other faults go to the
 * previous handler.
 */
#define _GNU_SOURCE   /* REG_RSP in ucontext_t */
#include "internal.h"
#include "aemp_fiber.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif
#ifdef FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define DEFAULT_STACK (256 * 1024)
#define MIN_STACK (8 * 1024)
#define MAX_STACK ((size_t)1 << 30)
#define GUARD_SIZE (16 * 1024)   /* rounded up to whole pages */
#define POOL_MAX 64              /* cached stacks of the current size */

enum fstate { F_NEW, F_RUNNING, F_WAITING, F_DONE };
enum wkind { W_NONE, W_GET, W_SLEEP, W_SYNCAL };

typedef struct aemp_fiber fiber_t;

struct aemp_fiber {
    fiber_t *prev, *next;        /* every live fiber */
    aemp_lport_t *port;          /* receiving fiber: its port (a reference) */
    char *self;                  /* SELF (malloc'd port ID) */
    bool linked;                 /* the end of the body kills the port */
    bool cancelled;              /* the port died */
    enum fstate state;
    aemp_fiber_fn body;
    void *arg;
    struct aemp_ctx ctx;         /* base port context: SELF, pending die */
    struct aemp_ctx *ctx_top;    /* the fiber's context chain while suspended */
    ucontext_t uc;
    ucontext_t *caller;          /* where yield() goes: the resumer's stack */
    unsigned char *map;          /* guard + stack */
    size_t maplen, guard;
    /* the message queue: q[qhead .. qhead + qlen), one reference each */
    aemp_msg_t **q;
    size_t qhead, qlen, qcap;
    /* what the fiber waits for, and what woke it */
    enum wkind wk;
    const char *wtag;
    size_t wtaglen;
    aemp_get_pred wpred;
    void *wparg;
    int wresult;
    aemp_msg_t *wmsg;            /* the message that woke it (a reference) */
    ev_timer timer;
    aemp_msg_t *exit_reason;     /* from aemp_fiber_exit (a reference) */
#ifdef FIBER_ASAN
    void *fake_stack;
    const void *caller_bottom;
    size_t caller_size;
#endif
};

static fiber_t *fibers;          /* list of live fibers */
static size_t nfibers;
static fiber_t *cur;             /* the running fiber, or NULL */
static fiber_t *starting;        /* handed to fiber_entry */
static size_t stack_size = DEFAULT_STACK;
static size_t page_size;

static void *pool[POOL_MAX];     /* cached maps of pool_maplen bytes */
static size_t pool_len, pool_maplen;

/* ------------------------------------------------- stacks and the guard */

static size_t round_page(size_t n)
{
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page_size - 1) / page_size * page_size;
}

static void pool_flush(void)
{
    while (pool_len)
        munmap(pool[--pool_len], pool_maplen);
}

static int stack_alloc(fiber_t *f)
{
    size_t guard = round_page(GUARD_SIZE);
    size_t len = guard + stack_size;
    if (pool_len && pool_maplen == len) {
        f->map = pool[--pool_len];
    } else {
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m == MAP_FAILED)
            return -1;
        if (mprotect(m, guard, PROT_NONE) != 0) {
            munmap(m, len);
            return -1;
        }
        f->map = m;
    }
    f->maplen = len;
    f->guard = guard;
    return 0;
}

static void stack_free(fiber_t *f)
{
#ifdef FIBER_ASAN
    ASAN_UNPOISON_MEMORY_REGION(f->map + f->guard, f->maplen - f->guard);
#endif
    if (pool_maplen != f->maplen) {
        pool_flush();
        pool_maplen = f->maplen;
    }
    if (pool_len < POOL_MAX)
        pool[pool_len++] = f->map;
    else
        munmap(f->map, f->maplen);
    f->map = NULL;
}

/* Async-signal-safe output of the overflow line. */
static void put(char **p, char *end, const char *s)
{
    while (*s && *p < end)
        *(*p)++ = *s++;
}

static void report_overflow(fiber_t *f)
{
    char buf[512], num[24], *p = buf, *end = buf + sizeof buf - 1;
    size_t n = f->maplen - f->guard;
    int i = sizeof num - 1;
    num[i] = 0;
    do {
        num[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n && i);
    put(&p, end, "aemp: fiber stack overflow in port ");
    put(&p, end, f->self ? f->self : "?");
    put(&p, end, " (stack size ");
    put(&p, end, num + i);
    put(&p, end, " bytes)\n");
    ssize_t w = write(2, buf, (size_t)(p - buf));
    (void)w;
    abort();
}

/* The stack pointer of the interrupted code, or 0 if unknown here. */
static uintptr_t fault_sp(void *uctx)
{
    ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
    return 0;
#endif
}

static struct sigaction old_segv;
static int handler_installed;

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    if (cur) {
        uintptr_t lo = (uintptr_t)cur->map, stack_lo = lo + cur->guard;
        uintptr_t sp = fault_sp(uctx);
        if ((a >= lo && a < stack_lo) || (sp && sp < stack_lo && sp + 65536 >= lo))
            report_overflow(cur);
    }
    for (fiber_t *f = fibers; f; f = f->next) {
        uintptr_t lo = (uintptr_t)f->map;
        if (a >= lo && a < lo + f->guard)
            report_overflow(f);
    }
    /* not ours: hand over to whoever handled SIGSEGV before */
    if ((old_segv.sa_flags & SA_SIGINFO) && old_segv.sa_sigaction) {
        old_segv.sa_sigaction(sig, si, uctx);
    } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
    } else {
        signal(SIGSEGV, SIG_DFL);   /* the fault repeats and kills us */
    }
}

/* Install the overflow handler (and an alternate signal stack if there is
 * none) on first use, and again if someone replaced it since: the handler
 * then chains to the replacement.  One sigaction call per new fiber. */
static void install_handler(void)
{
    if (handler_installed) {
        struct sigaction now;
        if (sigaction(SIGSEGV, NULL, &now) != 0 || ((now.sa_flags & SA_SIGINFO) &&
                                                   now.sa_sigaction == segv_handler))
            return;
    }
    handler_installed = 1;
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_DISABLE)) {
        size_t size = round_page(64 * 1024);
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            ss.ss_sp = m;
            ss.ss_size = size;
            ss.ss_flags = 0;
            if (sigaltstack(&ss, NULL) != 0)
                munmap(m, size);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) != 0)
        aemp_log(AEMP_LOG_WARN, "fibers: cannot install the stack overflow handler");
}

/* ------------------------------------------------------------ the queue */

/* Append msg (reference stolen) to f's queue. */
static void queue_push(fiber_t *f, aemp_msg_t *msg)
{
    if (f->qhead + f->qlen == f->qcap) {
        if (f->qhead > f->qcap / 2) {
            memmove(f->q, f->q + f->qhead, f->qlen * sizeof *f->q);
            f->qhead = 0;
        } else {
            size_t cap = f->qcap ? f->qcap * 2 : 8;
            aemp_msg_t **q = realloc(f->q, cap * sizeof *q);
            if (!q)
                abort();
            f->q = q;
            f->qcap = cap;
        }
    }
    f->q[f->qhead + f->qlen++] = msg;
}

/* Remove and return element i (0 = oldest; its reference goes to the
 * caller), moving the shorter side. */
static aemp_msg_t *queue_take(fiber_t *f, size_t i)
{
    aemp_msg_t **base = f->q + f->qhead;
    aemp_msg_t *m = base[i];
    if (i < f->qlen / 2) {
        memmove(base + 1, base, i * sizeof *base);
        f->qhead++;
    } else {
        memmove(base + i, base + i + 1, (f->qlen - i - 1) * sizeof *base);
    }
    if (!--f->qlen)
        f->qhead = 0;
    return m;
}

/* Drop every queued message and the queue's storage. */
static void queue_clear(fiber_t *f)
{
    for (size_t i = 0; i < f->qlen; i++)
        aemp_msg_unref(f->q[f->qhead + i]);
    free(f->q);
    f->q = NULL;
    f->qhead = f->qlen = f->qcap = 0;
}

/* ------------------------------------------------------------ switching */

static void fiber_finish(fiber_t *f);
static void fiber_rcv(aemp_msg_t *msg, void *arg);

/* What a get waits for: messages whose element 0 is the string (text or
 * bytes) tag[0..taglen) if tag is not NULL, else those pred accepts (pred
 * NULL: every message).  1 if m is one of them. */
static int wanted(const char *tag, size_t taglen, aemp_get_pred pred, void *parg, aemp_msg_t *m)
{
    if (tag) {
        size_t len;
        const char *t = aemp_msg_tag(m, &len);
        return t && len == taglen && memcmp(t, tag, taglen) == 0;
    }
    return !pred || pred(m, parg);
}

static void fiber_entry(void)
{
    fiber_t *f = starting;
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
    f->body(f->arg);
    f->state = F_DONE;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(NULL, f->caller_bottom, f->caller_size);
#endif
    setcontext(f->caller);
    abort();   /* not reached */
}

/* Switch to f until it blocks or ends; finish it if it ended. */
static void resume(fiber_t *f)
{
    fiber_t *prev = cur;
    struct aemp_ctx *saved = aemp__ctx_get();
    ucontext_t back;
    back.uc_stack.ss_sp = NULL;   /* ASan reads it when switching back */
    back.uc_stack.ss_size = 0;
    if (f->state == F_NEW)
        starting = f;
    f->caller = &back;
    f->state = F_RUNNING;
    cur = f;
    aemp__ctx_set(f->ctx_top);
#ifdef FIBER_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, f->map + f->guard, f->maplen - f->guard);
#endif
    if (swapcontext(&back, &f->uc) != 0)
        abort();
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    f->ctx_top = aemp__ctx_get();
    aemp__ctx_set(saved);
    cur = prev;
    if (f->state == F_DONE)
        fiber_finish(f);
}

/* Inside f: give control back to its resumer until woken. */
static void yield(fiber_t *f)
{
    f->state = F_WAITING;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(&f->fake_stack, f->caller_bottom, f->caller_size);
#endif
    if (swapcontext(&f->uc, f->caller) != 0)
        abort();
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &f->caller_bottom, &f->caller_size);
#endif
}

/* Wake a waiting fiber with a result (and a message reference, stolen;
 * may be NULL). */
static void wake(fiber_t *f, int result, aemp_msg_t *msg)
{
    f->wresult = result;
    f->wmsg = msg;
    resume(f);
}

static void on_timer(EV_P_ ev_timer *w, int revents)
{
    fiber_t *f = w->data;
    if (f->state == F_WAITING)
        wake(f, f->wk == W_SLEEP ? 0 : AEMP_ETIMEDOUT, NULL);
}

/* Inside f: block until woken; timeout > 0 arms the timer. */
static int wait_for(fiber_t *f, enum wkind wk, double timeout)
{
    f->wk = wk;
    f->wresult = AEMP_ETIMEDOUT;
    f->wmsg = NULL;
    if (timeout >= 0) {
        if (timeout > 0)
            ev_now_update(aemp__g.loop);   /* the fiber may have run a while */
        ev_timer_set(&f->timer, timeout, 0.);
        ev_timer_start(aemp__g.loop, &f->timer);
    }
    yield(f);
    if (ev_is_active(&f->timer))
        ev_timer_stop(aemp__g.loop, &f->timer);
    f->wk = W_NONE;
    f->wtag = NULL;
    f->wpred = NULL;
    return f->wresult;
}

/* --------------------------------------------------- creation and death */

static void start_job(void *arg)
{
    fiber_t *f = arg;
    if (f->state == F_NEW)
        resume(f);
}

/* A context that starts fiber_entry on the given stack (getcontext returns
 * only once here: the fiber starts at fiber_entry, not after this call). */
static void init_context(ucontext_t *uc, void *stack, size_t size)
{
    if (getcontext(uc) != 0)
        abort();
    uc->uc_stack.ss_sp = stack;
    uc->uc_stack.ss_size = size;
    uc->uc_link = NULL;
    makecontext(uc, fiber_entry, 0);
}

static fiber_t *fiber_new(const char *self, aemp_fiber_fn fn, void *arg)
{
    fiber_t *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    if (stack_alloc(f) != 0) {
        aemp_log(AEMP_LOG_ERROR, "fibers: cannot allocate a stack of %zu bytes", stack_size);
        free(f);
        return NULL;
    }
    install_handler();
    f->self = strdup(self);
    if (!f->self)
        abort();
    f->body = fn;
    f->arg = arg;
    f->state = F_NEW;
    f->ctx.self = f->self;
    f->ctx_top = &f->ctx;
    init_context(&f->uc, f->map + f->guard, f->maplen - f->guard);
    ev_timer_init(&f->timer, on_timer, 0., 0.);
    f->timer.data = f;
    f->next = fibers;
    if (fibers)
        fibers->prev = f;
    fibers = f;
    nfibers++;
    aemp__job_call(start_job, f);
    return f;
}

static void fiber_free(fiber_t *f)
{
    if (ev_is_active(&f->timer))
        ev_timer_stop(aemp__g.loop, &f->timer);
    if (f->prev)
        f->prev->next = f->next;
    else
        fibers = f->next;
    if (f->next)
        f->next->prev = f->prev;
    nfibers--;
    queue_clear(f);
    aemp_msg_unref(f->wmsg);
    aemp_msg_unref(f->exit_reason);
    free(f->ctx.die);
    if (f->port) {
        if (aemp__port_fiber(f->port) == f)
            f->port->x->fiber = NULL;
        aemp__port_unref(f->port);
    }
    stack_free(f);
    free(f->self);
    free(f);
}

/* A message for a port whose fiber has ended (its kill is on the way). */
static void drop_rcv(aemp_msg_t *msg, void *arg)
{
}

/* The body has returned (or called aemp_fiber_exit): kill and free. */
static void fiber_finish(fiber_t *f)
{
    aemp_msg_t *reason = f->exit_reason;
    f->exit_reason = NULL;
    if (!reason && f->ctx.die)
        reason = aemp_msgf("ss", "die", f->ctx.die);
    aemp_lport_t *p = f->port;
    if (p && !p->dead && p->fn == fiber_rcv && p->arg == f) {
        p->fn = drop_rcv;   /* until the kill below takes effect */
        p->arg = NULL;
    }
    if (f->linked) {
        if (p && !p->dead) {
            aemp_kil(f->self, reason);
        } else {
            aemp_msg_unref(reason);
        }
    } else if (reason && aemp_kil(f->self, reason) != 0) {
        aemp_log(AEMP_LOG_ERROR, "cannot kill %s after its fiber ended", f->self);
    }
    fiber_free(f);
}

/* The default callback of a fiber's port: hand msg (borrowed) to the
 * waiting fiber if it is what the fiber waits for, else queue it. */
static void fiber_rcv(aemp_msg_t *msg, void *arg)
{
    fiber_t *f = arg;
    if (f->cancelled)
        return;
    if (f->state == F_WAITING && f->wk == W_GET &&
        wanted(f->wtag, f->wtaglen, f->wpred, f->wparg, msg)) {
        wake(f, 0, aemp_msg_ref(msg));
        return;
    }
    queue_push(f, aemp_msg_ref(msg));
}

/* Attach f to local port p as its receiving fiber. */
static void attach(fiber_t *f, aemp_lport_t *p)
{
    aemp__port_ref(p);
    f->port = p;
    f->linked = true;
    aemp__port_ext(p)->fiber = f;
    p->fn = fiber_rcv;
    p->arg = f;
}

void aemp__fiber_port_died(aemp_lport_t *p)
{
    fiber_t *f = aemp__port_fiber(p);
    p->x->fiber = NULL;
    f->cancelled = true;
    queue_clear(f);
    if (f->state == F_WAITING)
        wake(f, AEMP_ECANCELED, NULL);
}

void aemp__fibers_clear(void)
{
    while (fibers) {
        fiber_t *f = fibers;
        if (f->port && f->port->fn == fiber_rcv && f->port->arg == f)
            f->port->fn = NULL;
        fiber_free(f);
    }
    pool_flush();
    cur = NULL;
}

/* ------------------------------------------------------------ public API */

const char *aemp_port_async(aemp_fiber_fn fn, void *arg)
{
    if (!fn)
        return NULL;
    const char *id = aemp_port(NULL, NULL);
    const char *name;
    size_t len;
    aemp__split_local(id, &name, &len);
    aemp_lport_t *p = aemp__port_find(name, len);
    fiber_t *f = fiber_new(id, fn, arg);
    if (!f) {
        aemp__port_die(p, aemp_msg_empty());   /* never seen by anyone: drop it */
        return NULL;
    }
    attach(f, p);
    return p->id;
}

int aemp_rcv_async(const char *port, aemp_fiber_fn fn, void *arg)
{
    if (!port || !fn)
        return AEMP_EINVAL;
    aemp__ensure_init();
    const char *name;
    size_t len;
    int r = aemp__local_port_name(port, &name, &len);
    if (r)
        return r;
    aemp_lport_t *p = aemp__port_find(name, len);
    if (p && aemp__port_fiber(p))
        return AEMP_EAGAIN;
    fiber_t *f = fiber_new(port, fn, arg);   /* port is the full local ID */
    if (!f)
        return AEMP_EIO;
    if (!p)
        p = aemp__port_create_named(name, len);
    attach(f, p);
    return 0;
}

int aemp_peval_async(const char *port, aemp_fiber_fn fn, void *arg)
{
    if (!port || !fn)
        return AEMP_EINVAL;
    aemp__ensure_init();
    const char *name;
    size_t len;
    int r = aemp__split_local(port, &name, &len);
    if (r < 0)
        return r;
    return fiber_new(port, fn, arg) ? 0 : AEMP_EIO;
}

/* Take the oldest queued message that is wanted (see wanted()), or wait
 * for one: aemp_get and aemp_get_cond. */
static int get_common(const char *tag, aemp_get_pred pred, void *parg, double timeout, aemp_msg_t **msg)
{
    if (!msg)
        return AEMP_EINVAL;
    *msg = NULL;
    fiber_t *f = cur;
    if (!f || !f->port)
        return AEMP_ENOFIBER;
    if (f->cancelled)
        return AEMP_ECANCELED;
    size_t taglen = tag ? strlen(tag) : 0;
    for (size_t i = 0; i < f->qlen; i++) {
        if (wanted(tag, taglen, pred, parg, f->q[f->qhead + i])) {
            *msg = queue_take(f, i);
            return 0;
        }
    }
    if (timeout == 0)
        return AEMP_ETIMEDOUT;
    f->wtag = tag;
    f->wtaglen = taglen;
    f->wpred = pred;
    f->wparg = parg;
    int r = wait_for(f, W_GET, timeout > 0 ? timeout : -1);
    if (r == 0) {
        *msg = f->wmsg;
        f->wmsg = NULL;
    }
    return r;
}

int aemp_get(const char *tag, double timeout, aemp_msg_t **msg)
{
    if (!tag) {
        if (msg)
            *msg = NULL;
        return AEMP_EINVAL;
    }
    return get_common(tag, NULL, NULL, timeout, msg);
}

int aemp_get_cond(aemp_get_pred pred, void *arg, double timeout, aemp_msg_t **msg)
{
    return get_common(NULL, pred, arg, timeout, msg);
}

/* syncal: the reply port's callback and the destination monitor find the
 * waiting fiber through a token that the reply port's guard frees. */
struct syncal_tok {
    fiber_t *f;
};

/* Wake the fiber waiting in aemp_syncal, if it still waits, with result
 * and msg (borrowed, may be NULL); later calls do nothing. */
static void syncal_wake(struct syncal_tok *t, int result, aemp_msg_t *msg)
{
    fiber_t *f = t->f;
    if (f && f->state == F_WAITING && f->wk == W_SYNCAL) {
        t->f = NULL;
        wake(f, result, aemp_msg_ref(msg));
    }
}

/* The reply port's callback: the first reply wakes the fiber. */
static void syncal_reply(aemp_msg_t *msg, void *arg)
{
    syncal_wake(arg, 0, msg);
}

/* The destination's monitor (timeout < 0): it died before replying. */
static void syncal_dead(aemp_msg_t *reason, void *arg)
{
    syncal_wake(arg, AEMP_ENOPORT, NULL);
}

/* 1 if m is a message whose root is an array (what aemp_snd and
 * aemp_kil accept). */
static int is_array_msg(const aemp_msg_t *m)
{
    return m && aemp_val_type(aemp_msg_root(m)) == AEMP_T_ARRAY;
}

int aemp_syncal(double timeout, const char *port, aemp_msg_t *msg, aemp_msg_t **reply)
{
    if (reply)
        *reply = NULL;
    fiber_t *f = cur;
    int r = 0;
    if (!f)
        r = AEMP_ENOFIBER;
    else if (!port || !reply || !is_array_msg(msg) || timeout == 0)
        r = AEMP_EINVAL;
    else if (f->cancelled)
        r = AEMP_ECANCELED;
    else {
        const char *name;
        size_t len;
        int l = aemp__split_local(port, &name, &len);
        if (l < 0)
            r = l;
    }
    if (r) {
        aemp_msg_unref(msg);
        return r;
    }
    struct syncal_tok *t = malloc(sizeof *t);
    if (!t)
        abort();
    t->f = f;
    char *rp = strdup(aemp_port(syncal_reply, t));
    if (!rp)
        abort();
    aemp_mon_guard(rp, free, t, NULL);
    aemp_msg_t *call = aemp__msg_append_str(msg, rp, strlen(rp));
    aemp_msg_unref(msg);
    aemp_handle_t mon = 0;
    if (!call) {
        r = AEMP_ELIMIT;   /* msg was already at the size limit */
    } else {
        if (timeout < 0)
            aemp_mon(port, syncal_dead, t, &mon);
        aemp_snd(port, call);
        r = wait_for(f, W_SYNCAL, timeout > 0 ? timeout : -1);
    }
    t->f = NULL;
    if (mon)
        aemp_mon_cancel(mon);
    aemp_kil(rp, NULL);
    free(rp);
    if (r == 0) {
        *reply = f->wmsg;
        f->wmsg = NULL;
    }
    return r;
}

int aemp_fiber_sleep(double seconds)
{
    fiber_t *f = cur;
    if (!f)
        return AEMP_ENOFIBER;
    if (f->cancelled)
        return AEMP_ECANCELED;
    return wait_for(f, W_SLEEP, seconds > 0 ? seconds : 0);
}

int aemp_fiber_exit(aemp_msg_t *reason)
{
    fiber_t *f = cur;
    if (!f || (reason && !is_array_msg(reason))) {
        aemp_msg_unref(reason);
        return f ? AEMP_EINVAL : AEMP_ENOFIBER;
    }
    f->exit_reason = reason;
    f->state = F_DONE;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(NULL, f->caller_bottom, f->caller_size);
#endif
    setcontext(f->caller);
    abort();   /* not reached */
}

int aemp_in_fiber(void)
{
    return cur != NULL;
}

size_t aemp_fiber_queued(void)
{
    return cur ? cur->qlen : 0;
}

int aemp_fiber_set_stack_size(size_t bytes)
{
    if (bytes < MIN_STACK || bytes > MAX_STACK)
        return AEMP_EINVAL;
    stack_size = round_page(bytes);
    return 0;
}

size_t aemp_fiber_stack_size(void)
{
    return stack_size;
}

size_t aemp_fiber_count(void)
{
    return nfibers;
}
