/* dataconn.c - AnyEvent::MP::DataConn (spec §11.1): raw authenticated byte
 * streams between nodes over the protocol extension "aemp-dataconn".
 *
 * One pending data connection is one state, keyed by its ID
 * "<unique><counter>@<our node>", on both nodes:
 *
 *   caller (aemp_dataconn_connect)          target
 *   ["","AnyEvent::MP::DataConn::_expect",id,port,timeout,initfunc,@initdata]
 *                                    --->   state "expect", own timeout
 *   ["","snd","<me>#<tmp>"]          --->   relays [] back: the barrier
 *   barrier done: the target's listeners known?
 *     yes: connect to them one by one (every 2 s), greeting
 *          "aemp-dataconn;...;dataconn_id=<id>"
 *     no:  ["","AnyEvent::MP::DataConn::_connect",id,<me>]  ---> the
 *          target connects to our listeners the same way
 *   either side's conn.c hands the authenticated connection (matched by the
 *   dataconn_id of either greeting) to us: a stream; the caller's callback
 *   gets one end, the target's initfunc(@initdata, <stream handle>) the other.
 *
 * Failures: the caller's own timeout, or every attempt at the listeners
 * failing, calls back with the error and kills the calling port with
 * ("AnyEvent::MP::DataConn", <error>); the target's timeout kills that
 * port from the target's side (Perl sends an undefined reason there; we
 * send a text).  Unlike Perl, a failed attempt at one listener does not end
 * the whole connect while others remain, and an incoming data connection
 * must come from the node its state expects.
 *
 * Address knowledge is the node layer's (the node object's addresses, which
 * seeds, 1.30 Global's addr table and 2.02's g_find fill); when none is
 * known, a g_find is asked and waited for up to LOOKUP_WAIT before we fall
 * back to "_connect" (if we listen) or fail with "no listeners found".
 */
#include "internal.h"

#include "conn.h"
#include "frame.h"   /* before node.h, which uses aemp_frame_t */
#include "global.h"  /* aemp__global_find */
#include "node.h"
#include "module.h"  /* aemp__func_resolve */
#include "nodeid.h"
#include "stream.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define EXPECT_FN "AnyEvent::MP::DataConn::_expect"
#define CONNECT_FN "AnyEvent::MP::DataConn::_connect"
#define KILL_TAG "AnyEvent::MP::DataConn"
#define RETRY 2.0            /* seconds between attempts at the listeners (as in Perl) */
#define LOOKUP_WAIT 0.5      /* seconds an address lookup may take */
#define LOOKUP_POLL 0.05
#define HANDLE_PREFIX "AnyEvent::MP::DataConn::stream/"
#define MAX_ATTEMPTS 8       /* connections in their handshake per state */

enum role { CALLER, TARGET };

typedef struct dc_state {
    char *id;
    uintptr_t serial;         /* the callbacks' argument (never a pointer that may dangle) */
    enum role role;
    char *port;               /* the calling port (ours as CALLER, the peer's as TARGET) */
    char *peer;               /* the node at the other end */
    double timeout;
    char *initfunc;           /* TARGET: runs with the stream */
    aemp_msg_t *initdata;
    aemp_dataconn_fn cb;      /* CALLER */
    void *arg;
    aemp_handle_t portmon;    /* CALLER: the calling port dies first */
    char *barrier;            /* CALLER: the round-trip port */
    ev_timer deadline;
    ev_timer next;            /* next attempt / address lookup poll */
    double lookup_end;
    aemp_msg_t *addrs;        /* being tried */
    size_t next_addr;
    aemp_conn_t *attempts[MAX_ATTEMPTS];
    char *last_error;
} dc_state_t;

static aemp_table_t states;   /* id -> dc_state_t* */
static unsigned long counter;
static uintptr_t serials;
static aemp_table_t handles;  /* handle -> aemp_stream_t* not yet taken */
static unsigned long handle_counter;

static void ext_authed(aemp_conn_t *c);
static void ext_failed(aemp_conn_t *c, const char *reason);
static const aemp_conn_ext_t ext = { "aemp-dataconn", ext_authed, ext_failed };

/* ---------------------------------------------------------------- states */

static dc_state_t *find(const char *id)
{
    return id ? aemp__table_get(&states, id, strlen(id)) : NULL;
}

/* The state with this serial, or NULL (O(pending)). */
static dc_state_t *find_serial(uintptr_t serial)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&states, &pos, NULL, NULL, &v))
        if (((dc_state_t *)v)->serial == serial)
            return v;
    return NULL;
}

/* Unlink and free st (timers, attempts, the port monitor).  Attempts
 * still in their handshake are closed (they are nobody's). */
static void state_free(dc_state_t *st)
{
    aemp__table_del(&states, st->id, strlen(st->id));
    ev_timer_stop(aemp__g.loop, &st->deadline);
    ev_timer_stop(aemp__g.loop, &st->next);
    if (st->portmon)
        aemp_mon_cancel(st->portmon);
    if (st->barrier)
        aemp_kil(st->barrier, NULL);
    for (size_t i = 0; i < MAX_ATTEMPTS; i++) {
        aemp_conn_t *c = st->attempts[i];
        st->attempts[i] = NULL;
        if (c)
            aemp__conn_close(c, "data connection no longer wanted");
    }
    free(st->id);
    free(st->port);
    free(st->peer);
    free(st->initfunc);
    free(st->barrier);
    free(st->last_error);
    aemp_msg_unref(st->initdata);
    aemp_msg_unref(st->addrs);
    free(st);
}

/* A handle string for s, valid until taken (aemp_dataconn_stream). */
static char *handle_for(aemp_stream_t *s)
{
    char h[sizeof HANDLE_PREFIX + 48];
    snprintf(h, sizeof h, HANDLE_PREFIX "%s%lu", aemp__g.uniq, ++handle_counter);
    char *k = strdup(h);
    if (!k)
        abort();
    aemp__table_put(&handles, k, strlen(k), s);
    return k;
}

/* Run initfunc(@initdata, <handle of s>); close s if it was not taken.
 * Not in port context (as Perl calls it from the transport). */
static void run_initfunc(const char *initfunc, aemp_msg_t *initdata, aemp_stream_t *s)
{
    char *h = handle_for(s);
    aemp_msg_t *base = initdata ? aemp_msg_ref(initdata) : aemp_msg_empty();
    aemp_msg_t *args = aemp__msg_append_str(base, h, strlen(h));
    aemp_msg_unref(base);
    int r = args ? aemp__func_call(initfunc, args) : AEMP_ELIMIT;
    aemp_msg_unref(args);
    aemp_stream_t *left = aemp__table_del(&handles, h, strlen(h));
    if (left) {
        if (r == AEMP_ENOFUNC)
            aemp_log(AEMP_LOG_WARN, "data connection with %s: unable to resolve function '%s'; closing it",
                     aemp_stream_peer(left), initfunc);
        else
            aemp_log(AEMP_LOG_WARN, "data connection with %s: %s did not take the stream "
                     "(aemp_dataconn_stream); closing it", aemp_stream_peer(left), initfunc);
        aemp_stream_close(left);
    }
    free(h);
}

/* The end of a state: a stream (success) or an error. */
static void done(dc_state_t *st, aemp_stream_t *s, const char *error)
{
    if (st->role == CALLER) {
        aemp_dataconn_fn cb = st->cb;
        void *arg = st->arg;
        char *port = strdup(st->port);
        char *err = error ? strdup(error) : NULL;
        if (!port || (error && !err))
            abort();
        state_free(st);
        cb(s, err, arg);
        if (!s) {
            aemp_log(AEMP_LOG_INFO, "data connection for %s failed: %s", port, err);
            aemp_kil(port, aemp_msgf("ss", KILL_TAG, err));
        }
        free(port);
        free(err);
        return;
    }
    char *initfunc = st->initfunc;
    aemp_msg_t *initdata = st->initdata;
    char *port = st->port;
    st->initfunc = NULL;
    st->initdata = NULL;
    st->port = NULL;
    state_free(st);
    if (s) {
        run_initfunc(initfunc, initdata, s);
    } else {
        aemp_log(AEMP_LOG_INFO, "data connection for %s failed: %s", port, error);
        aemp_kil(port, aemp_msgf("ss", KILL_TAG, error));
    }
    free(initfunc);
    aemp_msg_unref(initdata);
    free(port);
}

static void deadline_cb(EV_P_ ev_timer *w, int revents)
{
    dc_state_t *st = w->data;
    char why[256];
    if (st->role == CALLER)
        snprintf(why, sizeof why, "%s: unable to establish connection within %g seconds", st->peer, st->timeout);
    else
        snprintf(why, sizeof why, "%s: no data connection from %s arrived within %g seconds", aemp__g.nodeid,
                 st->peer, st->timeout);
    if (st->last_error) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, " (last error: %s)", st->last_error);
    }
    done(st, NULL, why);
}

/* A new state with its deadline armed; NULL if too many are pending. */
static dc_state_t *state_new(const char *id, enum role role, const char *port, const char *peer, double timeout)
{
    if (states.used >= aemp__g.net.dataconn_max_pending)
        return NULL;
    dc_state_t *st = calloc(1, sizeof *st);
    if (!st || !(st->id = strdup(id)) || !(st->port = strdup(port)) || !(st->peer = strdup(peer)))
        abort();
    st->role = role;
    st->serial = ++serials;
    st->timeout = timeout;
    ev_timer_init(&st->deadline, deadline_cb, timeout, 0);
    st->deadline.data = st;
    ev_timer_start(aemp__g.loop, &st->deadline);
    ev_timer_init(&st->next, NULL, 0, 0);
    st->next.data = st;
    aemp__table_put(&states, st->id, strlen(st->id), st);
    return st;
}

/* ------------------------------------------------------------ connecting */

static size_t live_attempts(const dc_state_t *st)
{
    size_t n = 0;
    for (size_t i = 0; i < MAX_ATTEMPTS; i++)
        n += st->attempts[i] != NULL;
    return n;
}

static void set_error(dc_state_t *st, const char *error)
{
    free(st->last_error);
    st->last_error = strdup(error);
    if (!st->last_error)
        abort();
}

/* Every address tried and every attempt over: give up now. */
static void maybe_exhausted(dc_state_t *st)
{
    if (st->next_addr < aemp_msg_len(st->addrs) || live_attempts(st))
        return;
    char why[512];
    snprintf(why, sizeof why, "%s: cannot connect to any of its listeners: %s", st->peer,
             st->last_error ? st->last_error : "no usable address");
    done(st, NULL, why);
}

/* Open the next attempt; the timer brings the one after it. */
static void next_attempt(EV_P_ ev_timer *w, int revents)
{
    dc_state_t *st = w->data;
    size_t slot = MAX_ATTEMPTS;
    for (size_t i = 0; i < MAX_ATTEMPTS && slot == MAX_ATTEMPTS; i++)
        if (!st->attempts[i])
            slot = i;
    if (st->next_addr >= aemp_msg_len(st->addrs) || slot == MAX_ATTEMPTS)
        return;
    const char *addr = aemp_msg_str(st->addrs, st->next_addr++, NULL);
    char err[256];
    aemp_conn_t *c = addr ? aemp__conn_connect_ext(addr, &ext, "dataconn_id", st->id, err, sizeof err) : NULL;
    if (c) {
        aemp_log(AEMP_LOG_DEBUG, "data connection %s: connecting to %s at %s", st->id, st->peer, addr);
        st->attempts[slot] = c;
    } else {
        char why[320];
        snprintf(why, sizeof why, "%s: %s", addr ? addr : "(not a string)", addr ? err : "bad address");
        set_error(st, why);
    }
    if (st->next_addr < aemp_msg_len(st->addrs)) {
        ev_timer_set(&st->next, c ? RETRY : 0, 0);
        ev_timer_start(EV_A_ &st->next);
    }
    maybe_exhausted(st);   /* may free st */
}

static void ask_to_connect(dc_state_t *st);

/* Connect to the addresses of st->peer, or, if none are known after a
 * lookup, ask it to connect to us (CALLER, if we listen) or fail. */
static void resolve_poll(EV_P_ ev_timer *w, int revents)
{
    dc_state_t *st = w->data;
    aemp_rnode_t *n = aemp__node_find(st->peer, strlen(st->peer));
    if (n && aemp_msg_len(n->addrs)) {
        aemp_msg_unref(st->addrs);
        st->addrs = aemp_msg_ref(n->addrs);
        st->next_addr = 0;
        ev_timer_stop(EV_A_ &st->next);
        ev_set_cb(&st->next, next_attempt);
        ev_timer_set(&st->next, 0, 0);
        ev_timer_start(EV_A_ &st->next);
        return;
    }
    if (ev_now(EV_A) < st->lookup_end) {
        ev_timer_set(&st->next, LOOKUP_POLL, 0);
        ev_timer_start(EV_A_ &st->next);
        return;
    }
    ask_to_connect(st);
}

static void connect_to_peer(dc_state_t *st)
{
    aemp_rnode_t *n = aemp__node_find(st->peer, strlen(st->peer));
    st->lookup_end = ev_now(aemp__g.loop) + LOOKUP_WAIT;
    if (!n || !aemp_msg_len(n->addrs))
        aemp__global_find(st->peer);   /* the answer fills the node's addresses */
    ev_set_cb(&st->next, resolve_poll);
    ev_timer_set(&st->next, 0, 0);
    ev_timer_start(aemp__g.loop, &st->next);
}

/* No listeners of the peer known. */
static void ask_to_connect(dc_state_t *st)
{
    aemp_msg_t *mine = aemp_listeners();
    int listening = aemp_msg_len(mine) > 0;
    aemp_msg_unref(mine);
    if (st->role == CALLER && listening) {
        aemp_log(AEMP_LOG_DEBUG, "data connection %s: no listeners of %s known, asking it to connect to us",
                 st->id, st->peer);
        aemp_snd_to_func(st->peer, CONNECT_FN, aemp_msgf("ss", st->id, aemp__g.nodeid));
        return;   /* the deadline covers it */
    }
    char why[256];
    snprintf(why, sizeof why, "%s: no listeners found", st->peer);
    done(st, NULL, why);
}

/* ------------------------------------------------------- conn.c's hooks */

/* The data connection ID of c: ours if we greeted with one, else the peer's. */
static const char *conn_id(aemp_conn_t *c)
{
    const char *id = aemp__proto_own_value(c->proto, "dataconn_id");
    return id ? id : aemp__proto_peer_value(c->proto, "dataconn_id");
}

static void forget_attempt(dc_state_t *st, aemp_conn_t *c)
{
    for (size_t i = 0; i < MAX_ATTEMPTS; i++)
        if (st && st->attempts[i] == c)
            st->attempts[i] = NULL;
}

static void ext_authed(aemp_conn_t *c)
{
    const char *id = conn_id(c);
    const char *peer = aemp__proto_peer_node(c->proto);
    dc_state_t *st = find(id);
    forget_attempt(st, c);
    if (!st || strcmp(st->peer, peer)) {
        char shown[128];
        aemp__nodeid_escape(id ? id : "", id ? strlen(id) : 0, shown, sizeof shown);
        static aemp_ratelimit_t rl;
        aemp__log_limited(&rl, c->outgoing ? AEMP_LOG_INFO : AEMP_LOG_WARN,
                          "data connection %s %s (%s): %s dataconn_id '%s'; closing it",
                          c->outgoing ? "to" : "from", peer, c->peeraddr,
                          !id ? "no" : !st ? "unknown (expired or never requested)" : "another node's", shown);
        aemp__conn_close(c, "unknown dataconn_id");
        return;
    }
    aemp_conn_detached_t d;
    aemp__conn_detach(c, &d);
    aemp_log(AEMP_LOG_DEBUG, "data connection %s with %s up%s", st->id, st->peer, d.tls ? " (TLS)" : "");
    aemp_stream_t *s = aemp__stream_new(d.fd, d.tls, &d.in, &d.out, &d.wire, st->peer);
    done(st, s, NULL);
}

static void ext_failed(aemp_conn_t *c, const char *reason)
{
    if (!c->outgoing)
        return;   /* an unauthenticated peer decides nothing (logged by conn.c) */
    dc_state_t *st = find(conn_id(c));
    if (!st)
        return;
    forget_attempt(st, c);
    char why[320];
    snprintf(why, sizeof why, "%s: %s", c->peeraddr, reason);
    set_error(st, why);
    if (st->next_addr < aemp_msg_len(st->addrs) && ev_cb(&st->next) == next_attempt) {
        ev_timer_stop(aemp__g.loop, &st->next);   /* no need to wait: the next one now */
        ev_timer_set(&st->next, 0, 0);
        ev_timer_start(aemp__g.loop, &st->next);
        return;
    }
    maybe_exhausted(st);
}

/* ------------------------------------------------------ node-port requests */

/* The caller's round trip came back: the target has seen _expect. */
static void barrier_cb(aemp_msg_t *msg, void *arg)
{
    dc_state_t *st = find_serial((uintptr_t)arg);
    if (st && st->barrier) {
        aemp_kil(st->barrier, NULL);
        free(st->barrier);
        st->barrier = NULL;
        connect_to_peer(st);
    }
}

/* Shown value of a request argument (for log lines). */
static const char *str_or(const aemp_msg_t *args, size_t i, const char *dflt)
{
    const char *s = aemp_msg_str(args, i, NULL);
    return s ? s : dflt;
}

/* "AnyEvent::MP::DataConn::_expect" (id, port, timeout, initfunc, @initdata). */
static void expect_fn(aemp_msg_t *args, void *unused)
{
    const char *id = aemp_msg_str(args, 0, NULL), *port = aemp_msg_str(args, 1, NULL);
    const char *initfunc = aemp_msg_str(args, 3, NULL);
    double timeout = 0;
    const aemp_val_t *tv = aemp_msg_at(args, 2);
    if (aemp_val_double(tv, &timeout) != 0) {
        const char *ts = aemp_val_str(tv, NULL);   /* Perl may send a number as a string */
        timeout = ts ? strtod(ts, NULL) : 0;
    }
    const char *src = aemp_srcnode() ? aemp_srcnode() : "?";
    if (!id || !*id || !port || !initfunc || !(timeout > 0)) {
        aemp_log(AEMP_LOG_WARN, "%s from %s ignored: expected (id, port, timeout, initfunc, initdata...)", EXPECT_FN,
                 src);
        return;
    }
    char node[AEMP_NODEID_MAX + 1];
    if (aemp_node_of(port, node, sizeof node) <= 0 || aemp_port_is_local(port)) {
        aemp_log(AEMP_LOG_WARN, "%s from %s ignored: '%.200s' is not a port of another node", EXPECT_FN, src, port);
        return;
    }
    if (find(id)) {
        aemp_log(AEMP_LOG_WARN, "%s from %s ignored: data connection '%.200s' is already pending", EXPECT_FN, src, id);
        return;
    }
    char err[1024];
    if (aemp__func_resolve(initfunc, err, sizeof err) != 0) {
        char why[1200];
        snprintf(why, sizeof why, "unable to resolve function '%.256s'", initfunc);
        aemp_log(AEMP_LOG_WARN, "data connection %s from %s refused: %s", id, node, why);
        aemp_kil(port, aemp_msgf("ss", KILL_TAG, why));
        return;
    }
    dc_state_t *st = state_new(id, TARGET, port, node, timeout);
    if (!st) {
        char why[160];
        snprintf(why, sizeof why, "%s: too many pending data connections (dataconn_max_pending %zu)", aemp__g.nodeid,
                 aemp__g.net.dataconn_max_pending);
        aemp_log(AEMP_LOG_WARN, "data connection %s from %s refused: %s", id, node, why);
        aemp_kil(port, aemp_msgf("ss", KILL_TAG, why));
        return;
    }
    if (!(st->initfunc = strdup(initfunc)))
        abort();
    st->initdata = aemp__msg_slice(args, 4);
    aemp_log(AEMP_LOG_DEBUG, "data connection %s: expecting %s within %g s", id, node, timeout);
}

/* "AnyEvent::MP::DataConn::_connect" (id, node): connect to node for the
 * data connection we expect. */
static void connect_fn(aemp_msg_t *args, void *unused)
{
    const char *id = aemp_msg_str(args, 0, NULL), *node = aemp_msg_str(args, 1, NULL);
    dc_state_t *st = find(id);
    if (!st || !node || st->role != TARGET || strcmp(node, st->peer)) {
        aemp_log(AEMP_LOG_INFO, "%s from %s ignored: no data connection '%.200s' with '%.200s' is expected",
                 CONNECT_FN, aemp_srcnode() ? aemp_srcnode() : "?", str_or(args, 0, "?"), node ? node : "?");
        return;
    }
    connect_to_peer(st);
}

/* -------------------------------------------------------- the public API */

/* Both ends of a local socketpair. */
static int local_pair(const char *port, const char *initfunc, aemp_msg_t *initdata, aemp_dataconn_fn cb,
                      void *arg)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot create local socketpair: %s", strerror(errno));
        aemp_msg_unref(initdata);
        cb(NULL, why, arg);
        aemp_kil(port, aemp_msgf("ss", KILL_TAG, why));
        return 0;
    }
    aemp_stream_t *mine = aemp__stream_new(sv[0], NULL, NULL, NULL, NULL, aemp__g.nodeid);
    aemp_stream_t *theirs = aemp__stream_new(sv[1], NULL, NULL, NULL, NULL, aemp__g.nodeid);
    run_initfunc(initfunc, initdata, theirs);
    aemp_msg_unref(initdata);
    cb(mine, NULL, arg);
    return 0;
}

static void port_died(aemp_msg_t *reason, void *arg)
{
    dc_state_t *st = find_serial((uintptr_t)arg);
    if (!st)
        return;
    st->portmon = 0;   /* fired: nothing to cancel */
    aemp_dataconn_fn cb = st->cb;
    void *cbarg = st->arg;
    state_free(st);
    /* e.g. the target's timeout: ("AnyEvent::MP::DataConn", <why or null>) */
    char *text = aemp_val_text(aemp_msg_root(reason));
    char why[512];
    snprintf(why, sizeof why, "calling port died: %s", text);
    free(text);
    cb(NULL, why, cbarg);
}

int aemp_dataconn_connect(const char *port, const char *target, double timeout, const char *initfunc,
                          aemp_msg_t *initdata, aemp_dataconn_fn cb, void *arg)
{
    aemp__ensure_init();
    int r = 0;
    if (!port)
        port = aemp_self();
    if (!cb || !initfunc || !strstr(initfunc, "::") || !(timeout > 0) || !target || !*target
        || (initdata && aemp_val_type(aemp_msg_root(initdata)) != AEMP_T_ARRAY))
        r = AEMP_EINVAL;
    else if (!port)
        r = AEMP_ENOSELF;
    else if (aemp_port_is_local(port) != 1 || !strchr(port, '#'))
        r = AEMP_ENOTLOCAL;
    char node[AEMP_NODEID_MAX + 1];
    if (!r && aemp_node_of(target, node, sizeof node) <= 0)
        r = AEMP_EPORTID;
    if (!r && states.used >= aemp__g.net.dataconn_max_pending)
        r = AEMP_ELIMIT;
    if (r) {
        aemp_msg_unref(initdata);
        return r;
    }
    if (aemp_port_is_local(node))
        return local_pair(port, initfunc, initdata, cb, arg);

    char id[AEMP_PORT_NAME_MAX + AEMP_NODEID_MAX + 32];
    snprintf(id, sizeof id, "%s%lu@%s", aemp__g.uniq, ++counter, aemp__g.nodeid);
    dc_state_t *st = state_new(id, CALLER, port, node, timeout);
    st->cb = cb;
    st->arg = arg;
    aemp_mon(port, port_died, (void *)st->serial, &st->portmon);

    /* ["", _expect, id, port, timeout, initfunc, @initdata] */
    aemp_build_t *b = aemp_build_new();
    aemp_build_str(b, id);
    aemp_build_str(b, port);
    if (timeout < 1e15 && timeout == (double)(int64_t)timeout)
        aemp_build_int(b, (int64_t)timeout);   /* 5, not 5.0, as Perl writes it */
    else
        aemp_build_double(b, timeout);
    aemp_build_str(b, initfunc);
    for (size_t i = 0; initdata && i < aemp_msg_len(initdata); i++)
        aemp_build_val(b, aemp_msg_at(initdata, i));
    aemp_msg_unref(initdata);
    aemp_snd_to_func(node, EXPECT_FN, aemp_build_msg(b));

    /* the round trip: ["", "snd", "<me>#<tmp>"] comes back as [] */
    const char *tmp = aemp_port(barrier_cb, (void *)st->serial);
    if (!(st->barrier = strdup(tmp)))
        abort();
    aemp_snd_on(node, tmp, aemp_msg_empty());
    return 0;
}

aemp_stream_t *aemp_dataconn_stream(const aemp_msg_t *args)
{
    size_t n = aemp_msg_len(args);
    const char *h = n ? aemp_msg_str(args, n - 1, NULL) : NULL;
    if (!h || strncmp(h, HANDLE_PREFIX, strlen(HANDLE_PREFIX)))
        return NULL;
    return aemp__table_del(&handles, h, strlen(h));
}

/* ------------------------------------------------------------ lifecycle */

void aemp__dataconn_init(void)
{
    aemp__conn_ext_register(&ext);
    aemp_func_register(EXPECT_FN, expect_fn, NULL);
    aemp_func_register(CONNECT_FN, connect_fn, NULL);
}

void aemp__dataconn_shutdown(void)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&states, &pos, NULL, NULL, &v)) {
        dc_state_t *st = v;
        st->portmon = 0;   /* the port table goes away by itself */
        free(st->barrier);
        st->barrier = NULL;
        state_free(st);
        pos = 0;
    }
    aemp__table_free(&states);
    aemp__table_free(&handles);
    aemp__streams_shutdown();
    aemp__conn_ext_unregister(&ext);
}
