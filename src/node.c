/* node.c - remote nodes: the node table, send queues while connecting,
 * connect cycles, remote monitors (both directions), failure handling with
 * the no-holes guarantee, and node up/down callbacks.  Only this module
 * knows about connections (through conn.h).
 */
#include "node.h"

#include "conn.h"
#include "destcache.h"
#include "global.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long an authenticated connection waits, on standby, for a rival
 * connection that the simultaneous-connect rule prefers (seconds). */
#define STANDBY_WAIT 2.0

static aemp_table_t nodes;   /* node ID -> aemp_rnode_t */
static size_t queued_nodes;  /* nodes whose queue is not empty */
static size_t queued_bytes;  /* over all queues */

/* a remote port's monitor list with its name (the table key) */
typedef struct lmon_entry {
    aemp_monlist_t list;
    aemp_rnode_t *node;
    size_t len;
    char name[];
} lmon_entry_t;

typedef struct node_cb {
    aemp_handle_t id;
    aemp_node_mon_fn fn;
    void *arg;
    struct node_cb *next;
} node_cb_t;
static node_cb_t *node_cbs;

static void start_connect(aemp_rnode_t *n);
static void fail_node(aemp_rnode_t *n, const char *text);

/* ------------------------------------------------------------ node table */

/* The node found last: a program that sends to one node again and again
 * skips the hash.  Cleared when that node is freed. */
static aemp_rnode_t *last_found;

aemp_rnode_t *aemp__node_find(const char *id, size_t len)
{
    aemp_rnode_t *n = last_found;
    if (n && aemp__same_key(n->id, n->idlen, id, len))
        return n;
    n = aemp__table_get(&nodes, id, len);
    if (n)
        last_found = n;
    return n;
}

aemp_rnode_t *aemp__node_get(const char *id, size_t len)
{
    aemp_rnode_t *n = aemp__node_find(id, len);
    if (n)
        return n;
    n = calloc(1, sizeof *n);
    if (!n || !(n->id = malloc(len + 1)))
        abort();
    memcpy(n->id, id, len);
    n->id[len] = 0;
    n->idlen = len;
    aemp__table_put(&nodes, n->id, len, n);
    return n;
}

void aemp__node_set_addrs(aemp_rnode_t *n, const aemp_val_t *addrs)
{
    aemp_msg_unref(n->addrs);
    n->addrs = NULL;
    n->next_addr = 0;
    aemp__node_add_addrs(n, addrs);
}

/* Number of known addresses of n. */
static size_t addr_count(const aemp_rnode_t *n)
{
    return aemp_msg_len(n->addrs);
}

void aemp__node_add_addrs(aemp_rnode_t *n, const aemp_val_t *addrs)
{
    size_t have = addr_count(n), added = 0;
    aemp_build_t *b = aemp_build_new();
    for (size_t j = 0; j < have; j++)
        aemp_build_val(b, aemp_msg_at(n->addrs, j));
    for (size_t i = 0; i < aemp_val_len(addrs); i++) {
        const aemp_val_t *a = aemp_val_at(addrs, i);
        if (!aemp_val_str(a, NULL))
            continue;
        int dup = 0;
        for (size_t j = 0; j < have && !dup; j++)
            dup = aemp_val_equal(a, aemp_msg_at(n->addrs, j));
        if (!dup) {
            aemp_build_val(b, a);
            added++;
        }
    }
    if (!added) {
        aemp_build_abort(b);
        return;
    }
    aemp_msg_unref(n->addrs);
    n->addrs = aemp_build_msg(b);
}

static void rmon_forget(aemp_lport_t *p, aemp_rnode_t *n);

/* ---------------------------------------------------------------- queue */

/* What a queued message costs. */
static size_t queued_size(size_t destlen, const aemp_msg_t *msg)
{
    return sizeof(queued_msg_t) + destlen + 1 + aemp__msg_size(msg);
}

static void queue_push(aemp_rnode_t *n, const char *dest, size_t destlen, aemp_msg_t *msg)
{
    size_t size = queued_size(destlen, msg);
    if (!n->qhead)
        queued_nodes++;
    n->qbytes += size;
    queued_bytes += size;
    queued_msg_t *q = malloc(sizeof *q);
    if (!q || !(q->dest = malloc(destlen + 1)))
        abort();
    memcpy(q->dest, dest, destlen);
    q->dest[destlen] = 0;
    q->destlen = destlen;
    q->msg = msg;
    q->next = NULL;
    if (n->qtail)
        n->qtail->next = q;
    else
        n->qhead = q;
    n->qtail = q;
    n->qlen++;
}

/* Detach n's queue (returned) and forget its size. */
static queued_msg_t *queue_take(aemp_rnode_t *n)
{
    queued_msg_t *q = n->qhead;
    if (q)
        queued_nodes--;
    queued_bytes -= n->qbytes;
    n->qbytes = 0;
    n->qhead = n->qtail = NULL;
    n->qlen = 0;
    return q;
}

static void queue_drop(aemp_rnode_t *n)
{
    queued_msg_t *q = queue_take(n);
    while (q) {
        queued_msg_t *next = q->next;
        free(q->dest);
        aemp_msg_unref(q->msg);
        free(q);
        q = next;
    }
}

/* Node-port requests whose tag depends on the peer's dialect are queued
 * under a neutral tag and translated when they go out. */
static const char KILL_TAG[] = "\x01kil";

static void send_now(aemp_rnode_t *n, const char *dest, size_t destlen, const aemp_msg_t *msg)
{
    size_t tl;
    const char *tag = destlen == 0 ? aemp_msg_tag(msg, &tl) : NULL;
    if (tag && tl == sizeof KILL_TAG - 1 && memcmp(tag, KILL_TAG, tl) == 0) {
        const char *kil = n->dialect == AEMP_DIALECT_130 ? "kil" : "kil1";
        aemp_msg_t *rest = aemp__msg_slice(msg, 1);
        aemp_msg_t *m = aemp__msg_prepend_str(kil, strlen(kil), rest);
        aemp_msg_unref(rest);
        aemp__conn_send(n->conn, dest, destlen, m);
        aemp_msg_unref(m);
        return;
    }
    aemp__conn_send(n->conn, dest, destlen, msg);
}

void aemp__node_send(aemp_rnode_t *n, const char *dest, size_t destlen, aemp_msg_t *msg)
{
    if (n->conn) {
        send_now(n, dest, destlen, msg);
        aemp_msg_unref(msg);
        return;
    }
    /* the limits (docs/configuration.md): a message that does not fit
     * fails the node - its queue is dropped and its monitors fire, so no
     * later message overtakes a lost one */
    struct aemp_net *net = &aemp__g.net;
    size_t size = queued_size(destlen, msg);
    char why[200];
    enum aemp_stat stat;
    if (!n->qhead && queued_nodes >= net->max_connecting_nodes) {
        snprintf(why, sizeof why, "not queued: max_connecting_nodes (%zu) nodes already wait for a connection",
                 net->max_connecting_nodes);
        stat = AEMP_STAT_DROPPED_CONNECTING_NODES;
    } else if (n->qbytes + size > net->max_connect_queue) {
        snprintf(why, sizeof why, "send queue overflow while connecting: more than max_connect_queue (%zu bytes)",
                 net->max_connect_queue);
        stat = AEMP_STAT_DROPPED_CONNECT_QUEUE;
    } else if (queued_bytes + size > net->max_connect_queue_total) {
        snprintf(why, sizeof why,
                 "send queue overflow while connecting: more than max_connect_queue_total (%zu bytes) for all nodes",
                 net->max_connect_queue_total);
        stat = AEMP_STAT_DROPPED_CONNECT_TOTAL;
    } else {
        queue_push(n, dest, destlen, msg);
        start_connect(n);
        return;
    }
    aemp__g.stats[stat] += 1 + n->qlen;
    static aemp_ratelimit_t rl[AEMP_STAT_COUNT];   /* one per limit */
    aemp__log_limited(&rl[stat], AEMP_LOG_WARN, "node %s: %zu messages dropped: %s", n->id, n->qlen + 1, why);
    aemp_msg_unref(msg);
    fail_node(n, why);
}

void aemp__node_request(aemp_rnode_t *n, const char *tag, aemp_msg_t *args)
{
    aemp_msg_t *msg = aemp__msg_prepend_str(tag, strlen(tag), args);
    aemp_msg_unref(args);
    aemp__node_send(n, "", 0, msg);
}

/* ------------------------------------------------------- connect cycles */

static void stop_connect(aemp_rnode_t *n)
{
    n->connecting = 0;
    free(n->last_error);
    n->last_error = NULL;
    ev_timer_stop(aemp__g.loop, &n->connect_timer);
    ev_timer_stop(aemp__g.loop, &n->deadline);
}

static void try_next_addr(EV_P_ ev_timer *w, int revents)
{
    aemp_rnode_t *n = w->data;
    size_t count = addr_count(n);
    if (n->conn || !count)
        return;
    if (aemp__conn_pending_for(n, NULL)) {
        /* an attempt is still in its handshake: give it the interval */
        ev_timer_set(&n->connect_timer, 0.4, 0);
        ev_timer_start(EV_A_ &n->connect_timer);
        return;
    }
    const char *addr = aemp_msg_str(n->addrs, n->next_addr % count, NULL);
    n->next_addr++;
    char err[256];
    aemp_log(AEMP_LOG_TRACE, "connecting to %s at %s", n->id, addr);
    if (!aemp__conn_connect(addr, n, NULL, err, sizeof err))
        aemp_log(AEMP_LOG_INFO, "cannot connect to %s at %s: %s", n->id, addr, err);
    double interval = aemp__g.net.connect_interval / (count ? count : 1);
    if (interval < 0.4)
        interval = 0.4;
    ev_timer_set(&n->connect_timer, interval, 0);
    ev_timer_start(EV_A_ &n->connect_timer);
}

static void connect_deadline(EV_P_ ev_timer *w, int revents)
{
    aemp_rnode_t *n = w->data;
    if (n->conn)
        return;
    fail_node(n, n->last_error ? n->last_error : addr_count(n) ? "connect timeout" : "no known address");
}

/* Begin connecting unless connected or already trying.  Without a known
 * address the node waits for an incoming connection until the deadline. */
static void start_connect(aemp_rnode_t *n)
{
    if (n->conn || n->connecting)
        return;
    n->connecting = 1;
    ev_now_update(aemp__g.loop);   /* the caller may have blocked outside the loop */
    ev_timer_init(&n->connect_timer, try_next_addr, 0, 0);
    n->connect_timer.data = n;
    /* connect_interval is the deadline of a connect to known addresses;
     * while we still wait for the master to tell us where the node
     * listens, monitor_timeout applies */
    int known = addr_count(n) > 0;
    ev_timer_init(&n->deadline, connect_deadline,
                  known ? aemp__g.net.connect_interval : aemp__g.net.monitor_timeout, 0);
    n->deadline.data = n;
    ev_timer_start(aemp__g.loop, &n->deadline);
    if (addr_count(n))
        ev_timer_start(aemp__g.loop, &n->connect_timer);
    /* the master knows where it listens now (addresses change on restart) */
    aemp__global_find(n->id);
}

void aemp__node_addrs_learned(aemp_rnode_t *n)
{
    if (n->connecting && !n->conn) {
        ev_timer_stop(aemp__g.loop, &n->deadline);
        ev_timer_set(&n->deadline, aemp__g.net.connect_interval, 0);
        ev_timer_start(aemp__g.loop, &n->deadline);
        ev_timer_stop(aemp__g.loop, &n->connect_timer);
        ev_timer_set(&n->connect_timer, 0, 0);
        ev_timer_start(aemp__g.loop, &n->connect_timer);
    }
}

/* ------------------------------------------------------------- failures */

typedef struct failure {
    aemp_rnode_t *node;
    int was_up;
    aemp_msg_t *reason;
    aemp_table_t lmon;        /* the node's detached monitor lists */
    aemp_monlist_t nodemon;
} failure_t;

/* Free n if nothing refers to it any more: no connection (not even one in
 * its handshake), no queue, no monitors either way, no known address, no
 * failure still to report.  Such entries come from messages to nodes that
 * never answered (a relay to a made-up node ID); keeping them would let a
 * peer grow the table without bound.  Nodes that were up once stay (they
 * are as many as the authenticated peers). */
static void node_forget_if_idle(aemp_rnode_t *n)
{
    if (n->ever_up || n->conn || n->connecting || n->qhead || n->standby || n->failures || addr_count(n)
        || n->lmon.used || n->rmon.used || n->nodemon.head || aemp__conn_refers(n))
        return;
    aemp__table_del(&nodes, n->id, n->idlen);
    if (last_found == n)
        last_found = NULL;
    aemp__destcache_clear();
    aemp__g.stats[AEMP_STAT_NODES_FORGOTTEN]++;
    aemp__table_free(&n->lmon);
    aemp__table_free(&n->rmon);
    aemp_msg_unref(n->addrs);
    free(n->last_error);
    free(n->id);
    free(n);
}

/* Fire (or, at shutdown, discard) the detached monitors; then node-down. */
static void failure_finish(failure_t *f, int fire)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&f->lmon, &pos, NULL, NULL, &v)) {
        lmon_entry_t *e = v;
        if (fire)
            aemp__monlist_fire(&e->list, f->reason);
        else
            aemp__monlist_clear(&e->list);
        free(e);
    }
    aemp__table_free(&f->lmon);
    if (fire)
        aemp__monlist_fire(&f->nodemon, f->reason);
    else
        aemp__monlist_clear(&f->nodemon);
    if (fire && f->was_up)
        aemp__node_updown(f->node, 0, f->reason);
    aemp_msg_unref(f->reason);
    f->node->failures--;
    if (fire)
        node_forget_if_idle(f->node);
    free(f);
}

static void failure_fire(void *arg)
{
    failure_finish(arg, 1);
}

static void failure_drop(void *arg)
{
    failure_finish(arg, 0);
}

/* Drop the queue, fire every monitor of the node's ports and of the node
 * with ("transport_error", <node>, text), forget its monitors of our ports,
 * and report node-down if it was up.  Later sends start afresh. */
static void fail_node(aemp_rnode_t *n, const char *text)
{
    int was_up = n->conn != NULL;
    n->conn = NULL;
    aemp_msg_t *reason = aemp_msgf("sss", "transport_error", n->id, text);   /* text may be last_error */
    text = aemp_msg_str(reason, 2, NULL);
    /* a node somebody waited for (messages, monitors) failing is news */
    int wanted = n->qhead || n->lmon.used || n->nodemon.head;
    size_t dropped = n->qlen;
    stop_connect(n);
    queue_drop(n);
    if (was_up) {
        aemp__g.stats[AEMP_STAT_NODES_DOWN]++;
        /* a listener-less client (the aemp tool) closing is routine */
        int routine = !addr_count(n) && !strcmp(text, "Unexpected end-of-file");
        aemp_log(routine ? AEMP_LOG_DEBUG : AEMP_LOG_INFO, "node %s: %s", n->id, text);
    }
    else {
        static aemp_ratelimit_t rl;
        aemp__log_limited(&rl, wanted ? AEMP_LOG_WARN : AEMP_LOG_DEBUG, "node %s: %s (%zu queued messages dropped%s)",
                          n->id, text, dropped,
                          strstr(text, "no known address")
                              ? "; no global node knows its address: is it running, in the same network, with the same secret?"
                              : "");
    }

    /* their monitors of our ports are void now */
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&n->rmon, &pos, NULL, NULL, &v)) {
        aemp_lport_t *p = v;
        rmon_forget(p, n);
        aemp__port_unref(p);
    }
    aemp__table_free(&n->rmon);

    /* detach our monitors now (later monitors belong to a new connection)
     * and fire them from the queue, after the messages that arrived before
     * the failure */
    failure_t *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->node = n;
    n->failures++;
    f->was_up = was_up;
    f->reason = reason;
    f->lmon = n->lmon;
    memset(&n->lmon, 0, sizeof n->lmon);
    f->nodemon = n->nodemon;
    memset(&n->nodemon, 0, sizeof n->nodemon);
    for (aemp_monitor_t *m = f->nodemon.head; m; m = m->next)
        m->list = &f->nodemon;
    pos = 0;
    while (aemp__table_next(&f->lmon, &pos, NULL, NULL, &v)) {
        lmon_entry_t *e = v;
        e->list.remote = NULL;   /* no mon0 for a dead connection */
        for (aemp_monitor_t *m = e->list.head; m; m = m->next)
            m->list = &e->list;
    }
    aemp__job_call_owned(failure_fire, failure_drop, f);
}

/* ------------------------------------------------------ connection events */

int aemp__node_greeted(aemp_conn_t *c, const char *peer)
{
    /* the greeting is not authenticated: nothing is created or changed for
     * the node it names; only a newcomer for a node that is up is refused */
    aemp_rnode_t *n = aemp__node_find(peer, strlen(peer));
    if (n && n->conn) {
        aemp__proto_fail(c->proto, "%s already connected, not connecting again.", peer);
        return -1;
    }
    return 0;
}

/* The simultaneous-connect rule (both sides decide the same): of two
 * connections in opposite directions, keep the one opened by the node with
 * the smaller ID; of two in the same direction, the older one.  1 if a is
 * kept over b. */
static int preferred(const aemp_conn_t *a, const aemp_conn_t *b, const char *peer)
{
    if (a->outgoing == b->outgoing)
        return 0;
    int ours_lower = strcmp(aemp__g.nodeid, peer) < 0;
    return a->outgoing ? ours_lower : !ours_lower;
}

static void standby_expired(EV_P_ ev_timer *w, int revents);

/* Make the authenticated connection c the node's transport. */
static void attach(aemp_rnode_t *n, aemp_conn_t *c)
{
    if (n->standby == c) {
        n->standby = NULL;
        ev_timer_stop(aemp__g.loop, &n->standby_timer);
        aemp__conn_release(c);
    }
    if (n->conn && n->conn != c) {
        aemp_conn_t *old = n->conn;
        fail_node(n, "switched connections");
        old->node = NULL;
        aemp__conn_close(old, "switched connections");
    }
    /* our own attempts that lost are no longer needed */
    for (aemp_conn_t *r; (r = aemp__conn_pending_for(n, c));) {
        r->node = NULL;   /* not this node's failure */
        aemp__conn_close(r, "simultaneous connect, keeping the other connection");
    }
    stop_connect(n);
    n->conn = c;
    n->ever_up = 1;
    aemp__g.stats[AEMP_STAT_NODES_UP]++;
    n->dialect = aemp__proto_peer_dialect(c->proto);
    aemp_log(AEMP_LOG_INFO, "node %s up (%s dialect, %s/%s)", n->id,
             n->dialect == AEMP_DIALECT_130 ? "1.30" : "2.02",
             aemp__auth_name(aemp__proto_recv_auth(c->proto)),
             aemp__framing_name(aemp__proto_send_framing(c->proto)));
    queued_msg_t *q = queue_take(n);
    while (q) {
        queued_msg_t *next = q->next;
        if (n->conn == c)
            send_now(n, q->dest, q->destlen, q->msg);
        free(q->dest);
        aemp_msg_unref(q->msg);
        free(q);
        q = next;
    }
    if (n->conn == c)
        aemp__node_updown(n, 1, NULL);
}

/* Close the standby connection of n (its rival won). */
static void standby_drop(aemp_rnode_t *n, const char *why)
{
    aemp_conn_t *s = n->standby;
    n->standby = NULL;
    ev_timer_stop(aemp__g.loop, &n->standby_timer);
    s->node = NULL;
    aemp__conn_close(s, why);
}

/* The rival did not authenticate in time: use the standby now.  The rival
 * is left alone: if it authenticates later, the rule switches to it (as the
 * peer, which may have seen it authenticate first, decides too), so both
 * sides still end with the same connection. */
static void standby_expired(EV_P_ ev_timer *w, int revents)
{
    aemp_rnode_t *n = w->data;
    aemp_conn_t *c = n->standby;
    if (c)
        attach(n, c);
}

void aemp__node_connected(aemp_conn_t *c)
{
    const char *peer = aemp__proto_peer_node(c->proto);
    aemp_rnode_t *n = aemp__node_get(peer, strlen(peer));
    c->node = n;
    if (c->seed) {
        aemp__seed_greeted(c->seed, peer);
        aemp_msg_t *a = aemp_msgf("s", c->seed);
        aemp__node_add_addrs(n, aemp_msg_root(a));
        aemp_msg_unref(a);
    }
    if (n->conn && n->conn != c) {
        if (!preferred(c, n->conn, peer)) {
            c->node = NULL;
            aemp__conn_close(c, "already connected, keeping the other connection");
            return;
        }
        attach(n, c);
        return;
    }
    if (n->standby && n->standby != c) {
        if (!preferred(c, n->standby, peer)) {
            c->node = NULL;
            aemp__conn_close(c, "simultaneous connect, keeping the other connection");
            return;
        }
        standby_drop(n, "simultaneous connect, keeping the other connection");
        attach(n, c);
        return;
    }
    aemp_conn_t *rival = aemp__conn_rival(peer, c);
    if (rival && preferred(rival, c, peer)) {
        /* the rule prefers a connection still in its handshake: wait for it
         * (briefly - an unauthenticated claim must not hold us up) */
        aemp_log(AEMP_LOG_DEBUG, "node %s: connection %s waits for the simultaneous connection %s",
                 n->id, c->peeraddr, rival->peeraddr);
        n->standby = c;
        aemp__conn_hold(c);
        ev_timer_init(&n->standby_timer, standby_expired, STANDBY_WAIT, 0);
        n->standby_timer.data = n;
        ev_timer_start(aemp__g.loop, &n->standby_timer);
        return;
    }
    attach(n, c);
}

void aemp__node_conn_lost(aemp_conn_t *c, const char *reason)
{
    aemp_rnode_t *n = c->node;
    if (!c->up)
        aemp__g.stats[AEMP_STAT_HANDSHAKE_FAILURES]++;
    if (!c->up && c->seed)
        aemp__seed_failed(c->seed, reason);
    if (!n) {
        /* an incoming connection that named a node in its greeting may have
         * been the rival a standby waits for */
        const char *claim = c->up ? NULL : aemp__proto_peer_node(c->proto);
        aemp_rnode_t *m = claim ? aemp__node_find(claim, strlen(claim)) : NULL;
        if (m && m->standby && !aemp__conn_rival(m->id, c))
            attach(m, m->standby);
        return;
    }
    if (n->conn == c) {
        fail_node(n, reason);
        return;
    }
    if (n->standby == c) {
        n->standby = NULL;
        ev_timer_stop(aemp__g.loop, &n->standby_timer);
        return;
    }
    /* a handshake failed: the connect cycle (if any) tries the next address,
     * and its deadline reports this reason if nothing better comes */
    if (!c->seed && (!n->last_error || strcmp(n->last_error, reason))) {
        /* once per reason and connect cycle: somebody wants to reach it */
        static aemp_ratelimit_t rl;
        aemp__log_limited(&rl, n->qhead || n->lmon.used || n->nodemon.head ? AEMP_LOG_WARN : AEMP_LOG_INFO,
                          "cannot reach node %s at %s: %s", n->id, c->peeraddr, reason);
    }
    free(n->last_error);
    n->last_error = strdup(reason);
    if (n->standby && !aemp__conn_rival(n->id, c))
        attach(n, n->standby);
}

typedef struct kernel_job {
    aemp_rnode_t *node;
    aemp_msg_t *msg;
} kernel_job_t;

static void kernel_job(void *arg)
{
    kernel_job_t *k = arg;
    aemp__kernel_request(k->node, k->msg);
    free(k);
}

static void kernel_job_drop(void *arg)
{
    kernel_job_t *k = arg;
    aemp_msg_unref(k->msg);
    free(k);
}

void aemp__node_frame(aemp_conn_t *c, aemp_frame_t *frame)
{
    aemp_rnode_t *n = c->node;
    aemp_msg_t *msg = frame->msg;
    if (frame->empty) {   /* [] keepalive */
        aemp_msg_unref(msg);
        return;
    }
    if (!frame->dest) {
        aemp_log(AEMP_LOG_WARN, "frame from %s without a destination port name dropped", n->id);
        aemp_msg_unref(msg);
        return;
    }
    size_t len = frame->destlen;
    if (len == 0) {
        /* in order with the port messages received before it: a death
         * notice must not overtake the messages the port sent first */
        kernel_job_t *k = malloc(sizeof *k);
        if (!k)
            abort();
        k->node = n;
        k->msg = msg;
        aemp__job_call_owned(kernel_job, kernel_job_drop, k);
        return;
    }
    /* delivered at once if nothing is queued: the frame is consumed, and
     * the receive loop (process() in conn.c) looks at the connection again
     * before the next frame, so the callback may close it, hold it, kill
     * the port or send; frames of one connection stay in wire order, since
     * a frame that had to be queued makes every later one queue too */
    aemp_lport_t *p = aemp__port_find(frame->dest, len);
    if (p)
        aemp__job_msg_now(p, msg);
    else
        aemp__job_msg_named(frame->dest, len, msg);
}

/* ------------------------------------------------- remote port monitors */

void aemp__remote_mon(aemp_monitor_t *m, const char *id, size_t nodelen, const char *name, size_t namelen)
{
    aemp_rnode_t *n = aemp__node_get(id, nodelen);
    if (!namelen) {
        aemp__monlist_add(&n->nodemon, m);
        n->nodemon.remote = NULL;
        if (!n->conn && addr_count(n))
            start_connect(n);
        return;
    }
    lmon_entry_t *e = aemp__table_get(&n->lmon, name, namelen);
    if (!e) {
        e = calloc(1, sizeof *e + namelen + 1);
        if (!e)
            abort();
        memcpy(e->name, name, namelen);
        e->len = namelen;
        e->node = n;
        e->list.remote = e;
        aemp__table_put(&n->lmon, e->name, namelen, e);
        aemp__node_request(n, "mon1", aemp_msgf("s#", name, namelen));
    }
    aemp__monlist_add(&e->list, m);
}

void aemp__remote_monlist_empty(aemp_monlist_t *l)
{
    lmon_entry_t *e = l->remote;
    if (!e)
        return;
    aemp__table_del(&e->node->lmon, e->name, e->len);
    aemp__node_request(e->node, "mon0", aemp_msgf("s#", e->name, e->len));
    free(e);
}

void aemp__node_kil0(aemp_rnode_t *n, const char *name, size_t len, aemp_msg_t *reason)
{
    lmon_entry_t *e = aemp__table_del(&n->lmon, name, len);
    if (!e)
        return;
    e->list.remote = NULL;
    aemp__monlist_fire(&e->list, reason);
    free(e);
}

/* ------------------------------------------- remote monitors of our ports */

void aemp__node_rmon_add(aemp_rnode_t *n, aemp_lport_t *p)
{
    if (aemp__table_get(&n->rmon, p->name, p->namelen))
        return;   /* one registration per (node, port) */
    aemp__port_ref(p);
    aemp__table_put(&n->rmon, p->name, p->namelen, p);
    struct aemp_lport_ext *x = aemp__port_ext(p);
    if (x->nrmon == x->caprmon) {
        size_t cap = x->caprmon ? x->caprmon * 2 : 2;
        aemp_rnode_t **a = realloc(x->rmon, cap * sizeof *a);
        if (!a)
            abort();
        x->rmon = a;
        x->caprmon = (uint32_t)cap;
    }
    x->rmon[x->nrmon++] = n;
}

/* Forget that node n monitors port p (the port's side of the record). */
static void rmon_forget(aemp_lport_t *p, aemp_rnode_t *n)
{
    struct aemp_lport_ext *x = p->x;
    for (size_t i = 0; x && i < x->nrmon; i++) {
        if (x->rmon[i] == n) {
            x->rmon[i] = x->rmon[--x->nrmon];
            break;
        }
    }
}

void aemp__node_rmon_del(aemp_rnode_t *n, const char *name, size_t len)
{
    aemp_lport_t *p = aemp__table_del(&n->rmon, name, len);
    if (!p)
        return;
    rmon_forget(p, n);
    aemp__port_unref(p);
}

int aemp__remote_monitored(aemp_lport_t *p)
{
    return p->x && p->x->nrmon > 0;
}

void aemp__remote_port_died(aemp_lport_t *p, aemp_msg_t *reason)
{
    struct aemp_lport_ext *x = p->x;
    if (!x)
        return;
    while (x->nrmon) {
        aemp_rnode_t *n = x->rmon[--x->nrmon];
        aemp_lport_t *q = aemp__table_del(&n->rmon, p->name, p->namelen);
        if (n->conn)
            aemp__node_request(n, "kil0", aemp_msgf("s#m", p->name, (size_t)p->namelen, reason));
        if (q)
            aemp__port_unref(q);
    }
    free(x->rmon);
    x->rmon = NULL;
    x->caprmon = 0;
}

/* ------------------------------------------------------- snd/kil routing */

/* Sends to a remote port ID remember the ID's node in the destination
 * cache (destcache.h), which is cleared whenever a node object is freed;
 * the next send to the same ID string goes straight to that node. */

void aemp__remote_snd(const char *id, size_t nodelen, const char *name, size_t namelen, aemp_msg_t *msg)
{
    aemp_rnode_t *n = aemp__node_get(id, nodelen);
    aemp__destcache_put(id, nodelen, namelen, n);
    aemp__node_send(n, name, namelen, msg);
}

int aemp__remote_snd_known(const char *id, aemp_msg_t *msg)
{
    const char *name;
    size_t namelen;
    aemp_rnode_t *n = aemp__destcache_get(id, &name, &namelen);
    if (!n)
        return 1;
    aemp__node_send(n, name, namelen, msg);
    return 0;
}

int aemp__remote_snd_fmt(const char *id, size_t nodelen, const char *name, size_t namelen,
                         const char *fmt, va_list ap)
{
    aemp_rnode_t *n = aemp__node_find(id, nodelen);
    if (!n || !n->conn || !namelen)
        return 1;
    aemp__destcache_put(id, nodelen, namelen, n);
    return aemp__conn_send_fmt(n->conn, name, namelen, fmt, ap);
}

int aemp__remote_snd_fmt_known(const char *id, const char *fmt, va_list ap)
{
    const char *name;
    size_t namelen;
    aemp_rnode_t *n = aemp__destcache_get(id, &name, &namelen);
    if (!n || !n->conn)
        return 1;
    return aemp__conn_send_fmt(n->conn, name, namelen, fmt, ap);
}

void aemp__remote_kil(const char *id, size_t nodelen, const char *name, size_t namelen, aemp_msg_t *reason)
{
    aemp_msg_t *msg = aemp_msgf("ss#m", KILL_TAG, name, namelen, reason);
    aemp_msg_unref(reason);
    aemp__node_send(aemp__node_get(id, nodelen), "", 0, msg);
}

/* ------------------------------------------------------- node up / down */

void aemp__node_updown(aemp_rnode_t *n, int up, aemp_msg_t *reason)
{
    if (!reason)
        reason = aemp_msg_empty();
    for (node_cb_t *cb = node_cbs, *next; cb; cb = next) {
        next = cb->next;
        cb->fn(n->id, up, reason, cb->arg);
    }
}

int aemp_mon_nodes(aemp_node_mon_fn fn, void *arg, aemp_handle_t *handle)
{
    if (!fn)
        return AEMP_EINVAL;
    aemp__ensure_init();
    node_cb_t *cb = calloc(1, sizeof *cb);
    if (!cb)
        abort();
    cb->id = aemp__new_handle();
    cb->fn = fn;
    cb->arg = arg;
    cb->next = node_cbs;
    node_cbs = cb;
    if (handle)
        *handle = cb->id;
    return 0;
}

int aemp_mon_nodes_cancel(aemp_handle_t handle)
{
    for (node_cb_t **p = &node_cbs; *p; p = &(*p)->next) {
        if ((*p)->id == handle) {
            node_cb_t *cb = *p;
            *p = cb->next;
            free(cb);
            return 0;
        }
    }
    return AEMP_ENOENT;
}

unsigned aemp__node_dialect(const char *node)
{
    aemp_rnode_t *n = aemp__node_find(node, strlen(node));
    return n && n->conn ? n->dialect : 0;
}

int aemp__node_is_libaemp(const char *node)
{
    size_t len = strlen(node);
    if (len == aemp__g.nodeid_len && memcmp(node, aemp__g.nodeid, len) == 0)
        return 1;
    aemp_rnode_t *n = aemp__node_find(node, len);
    const char *provider = n && n->conn && n->conn->proto ? aemp__proto_peer_value(n->conn->proto, "provider")
                                                          : NULL;
    return provider && !strncmp(provider, "libaemp-", 8);
}

int aemp_node_is_up(const char *node)
{
    if (!node)
        return AEMP_EINVAL;
    aemp__ensure_init();
    size_t len = aemp_node_len(node);
    if (len == aemp__g.nodeid_len && memcmp(node, aemp__g.nodeid, len) == 0)
        return 1;
    aemp_rnode_t *n = aemp__node_find(node, len);
    if (!n)
        return AEMP_ENOENT;
    return n->conn != NULL;
}

aemp_msg_t *aemp_up_nodes(void)
{
    aemp__ensure_init();
    aemp_build_t *b = aemp_build_new();
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&nodes, &pos, NULL, NULL, &v)) {
        aemp_rnode_t *n = v;
        if (n->conn)
            aemp_build_strn(b, n->id, n->idlen);
    }
    return aemp_build_msg(b);
}

aemp_msg_t *aemp__known_nodes(void)
{
    aemp_build_t *b = aemp_build_new();
    aemp_build_strn(b, aemp__g.nodeid, aemp__g.nodeid_len);
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&nodes, &pos, NULL, NULL, &v))
        aemp_build_strn(b, ((aemp_rnode_t *)v)->id, ((aemp_rnode_t *)v)->idlen);
    return aemp_build_msg(b);
}

int aemp_add_node(const char *node, const aemp_msg_t *addrs)
{
    if (!node || !*node || strchr(node, '#') || aemp_val_type(aemp_msg_root(addrs)) != AEMP_T_ARRAY)
        return AEMP_EINVAL;
    aemp__ensure_init();
    aemp__node_add_addrs(aemp__node_get(node, strlen(node)), aemp_msg_root(addrs));
    return 0;
}

void aemp__node_gauges(size_t *nnodes, size_t *nqueued, size_t *qbytes)
{
    *nnodes = nodes.used;
    *nqueued = queued_nodes;
    *qbytes = queued_bytes;
}

/* ------------------------------------------------------------ lifecycle */

void aemp__node_init(void)
{
    struct aemp_net *net = &aemp__g.net;
    net->monitor_timeout = 30;
    net->connect_interval = 2;
    net->max_frame = 16u << 20;
    net->max_queue = AEMP_DEFAULT_MAX_SEND_QUEUE;
    net->max_connect_queue = AEMP_DEFAULT_MAX_CONNECT_QUEUE;
    net->max_connect_queue_total = AEMP_DEFAULT_MAX_CONNECT_QUEUE_TOTAL;
    net->max_connecting_nodes = AEMP_DEFAULT_MAX_CONNECTING_NODES;
    net->max_unauth = AEMP_DEFAULT_MAX_UNAUTHENTICATED;
    net->dataconn_max_pending = AEMP_DEFAULT_DATACONN_MAX_PENDING;
    net->db_fanout_cpu = AEMP_DEFAULT_DB_FANOUT_CPU;
    net->db_fanout_max_delay = AEMP_DEFAULT_DB_FANOUT_MAX_DELAY;
    net->nodelay = 1;
    net->listeners = aemp_msg_empty();
    net->seeds = json_array();
    aemp__conn_init();
    aemp__global_init();
    aemp__logcatcher_init();
    aemp__dataconn_init();
}

void aemp__node_shutdown(void)
{
    aemp__logcatcher_shutdown();
    aemp__dataconn_shutdown();
    aemp__global_shutdown();
    aemp__seeds_stop();
    aemp__conn_shutdown();
    aemp__metrics_stop();
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&nodes, &pos, NULL, NULL, &v)) {
        aemp_rnode_t *n = v;
        stop_connect(n);
        ev_timer_stop(aemp__g.loop, &n->standby_timer);
        queue_drop(n);
        size_t p2 = 0;
        void *w;
        while (aemp__table_next(&n->rmon, &p2, NULL, NULL, &w)) {
            aemp_lport_t *p = w;
            if (p->x) {
                free(p->x->rmon);
                p->x->rmon = NULL;
                p->x->nrmon = p->x->caprmon = 0;
            }
            aemp__port_unref(p);
        }
        aemp__table_free(&n->rmon);
        p2 = 0;
        while (aemp__table_next(&n->lmon, &p2, NULL, NULL, &w)) {
            lmon_entry_t *e = w;
            e->list.remote = NULL;
            aemp__monlist_clear(&e->list);
            free(e);
        }
        aemp__table_free(&n->lmon);
        aemp__monlist_clear(&n->nodemon);
        aemp_msg_unref(n->addrs);
        free(n->id);
        free(n);
    }
    aemp__table_free(&nodes);
    last_found = NULL;
    aemp__destcache_clear();
    queued_nodes = queued_bytes = 0;
    while (node_cbs) {
        node_cb_t *next = node_cbs->next;
        free(node_cbs);
        node_cbs = next;
    }
    struct aemp_net *net = &aemp__g.net;
    aemp_msg_unref(net->listeners);
    json_decref(net->seeds);
    free(net->secret);
    memset(net, 0, sizeof *net);
}
