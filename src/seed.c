/* seed.c - keeping connections to the configured seeds.
 *
 * Every seed address gets a retry timer: while its node is not up and no
 * connection to it is in progress, connect; retries back off from
 * (1+rand)*0.6 s, doubling up to monitor_timeout, and restart quickly when
 * a seed node goes down.  A seed that turns out to be this node is dropped:
 * one of our own listener addresses at once, any other when its greeting
 * names us.
 */
#include "node.h"

#include "conn.h"
#include "global.h"
#include "random.h"

#include <stdlib.h>
#include <string.h>

typedef struct seed {
    char *addr;
    char *nodeid;        /* learned from its greeting */
    ev_timer retry;
    double backoff;
    int self;
    char *last_error;    /* the failure logged last (logged again only when it changes) */
} seed_t;

static seed_t *seeds;
static size_t nseeds;
static aemp_handle_t updown_handle;

static double jitter(void)
{
    unsigned char b = 128;
    aemp__random_bytes(&b, 1);   /* on failure: the middle */
    return 1.0 + b / 256.0;
}

static int seed_busy(seed_t *s)
{
    if (s->nodeid && aemp_node_is_up(s->nodeid) == 1)
        return 1;
    return aemp__conn_pending_seed(s->addr) != NULL;
}

/* True if addr is one of the addresses this node listens on. */
static int own_listener(const char *addr)
{
    const aemp_msg_t *l = aemp__g.net.listeners;
    for (size_t i = 0, n = l ? aemp_msg_len(l) : 0; i < n; i++) {
        const char *mine = aemp_msg_str(l, i, NULL);
        if (mine && !strcmp(mine, addr))
            return 1;
    }
    return 0;
}

static void retry_cb(EV_P_ ev_timer *w, int revents)
{
    seed_t *s = w->data;
    if (s->self)
        return;
    if (own_listener(s->addr)) {
        /* what the greeting would tell, without a connection to ourselves */
        aemp_log(AEMP_LOG_DEBUG, "seed %s is this node (one of its listeners)", s->addr);
        s->self = 1;
        aemp__global_become();
        return;
    }
    if (!seed_busy(s)) {
        char err[256];
        aemp_log(AEMP_LOG_TRACE, "connecting to seed %s", s->addr);
        if (!aemp__conn_connect(s->addr, s->nodeid ? aemp__node_get(s->nodeid, strlen(s->nodeid)) : NULL,
                                s->addr, err, sizeof err))
            aemp_log(AEMP_LOG_INFO, "cannot connect to seed %s: %s", s->addr, err);
    }
    double max = aemp__g.net.monitor_timeout;
    s->backoff = s->backoff * 2 > max ? max : s->backoff * 2;
    ev_timer_set(w, s->backoff, 0);
    ev_timer_start(EV_A_ w);
}

static void restart(seed_t *s)
{
    s->backoff = 0.6 * jitter();
    ev_timer_stop(aemp__g.loop, &s->retry);
    ev_timer_set(&s->retry, s->backoff / 2, 0);
    ev_timer_start(aemp__g.loop, &s->retry);
}

static void on_updown(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    for (size_t i = 0; i < nseeds; i++)
        if (!up && seeds[i].nodeid && !strcmp(seeds[i].nodeid, node))
            restart(&seeds[i]);
}

void aemp__seed_greeted(const char *addr, const char *peer)
{
    for (size_t i = 0; i < nseeds; i++) {
        seed_t *s = &seeds[i];
        if (strcmp(s->addr, addr))
            continue;
        if (!strcmp(peer, aemp__g.nodeid)) {
            aemp_log(AEMP_LOG_DEBUG, "seed %s is this node", addr);
            s->self = 1;
            ev_timer_stop(aemp__g.loop, &s->retry);
            aemp__global_become();
            return;
        }
        if (s->last_error) {
            aemp_log(AEMP_LOG_NOTICE, "seed %s: reached %s", addr, peer);
            free(s->last_error);
            s->last_error = NULL;
        }
        if (!s->nodeid || strcmp(s->nodeid, peer)) {
            free(s->nodeid);
            s->nodeid = strdup(peer);
        }
    }
}

void aemp__seed_failed(const char *addr, const char *reason)
{
    for (size_t i = 0; i < nseeds; i++) {
        seed_t *s = &seeds[i];
        if (strcmp(s->addr, addr) || s->self || (s->last_error && !strcmp(s->last_error, reason)))
            continue;
        free(s->last_error);
        s->last_error = strdup(reason);
        aemp_log(AEMP_LOG_WARN, "seed %s: %s (retrying every %g s at most; is a node running there, "
                 "with the same secret?)", addr, reason, aemp__g.net.monitor_timeout);
    }
}

aemp_msg_t *aemp__seed_nodes(void)
{
    aemp_build_t *b = aemp_build_new();
    for (size_t i = 0; i < nseeds; i++)
        if (seeds[i].nodeid && !seeds[i].self)
            aemp_build_str(b, seeds[i].nodeid);
    return aemp_build_msg(b);
}

int aemp__seed_is_node(const char *node)
{
    for (size_t i = 0; i < nseeds; i++)
        if (seeds[i].nodeid && !strcmp(seeds[i].nodeid, node))
            return 1;
    return 0;
}

int aemp__seed_is_self(const char *addr)
{
    for (size_t i = 0; i < nseeds; i++)
        if (!strcmp(seeds[i].addr, addr))
            return seeds[i].self;
    return 0;
}

void aemp__seeds_start(const json_t *addrs)
{
    size_t n = json_array_size(addrs);
    seeds = calloc(n ? n : 1, sizeof *seeds);
    if (!seeds)
        abort();
    for (size_t i = 0; i < n; i++) {
        seed_t *s = &seeds[nseeds++];
        s->addr = strdup(json_string_value(json_array_get(addrs, i)));
        if (!s->addr)
            abort();
        ev_timer_init(&s->retry, retry_cb, 0, 0);
        s->retry.data = s;
        /* a short random delay so that nodes started together spread out */
        s->backoff = 0.6 * jitter();
        ev_timer_set(&s->retry, (jitter() - 1.0) * 0.05, 0);
        ev_timer_start(aemp__g.loop, &s->retry);
    }
    if (n)
        aemp_mon_nodes(on_updown, NULL, &updown_handle);
}

void aemp__seeds_stop(void)
{
    for (size_t i = 0; i < nseeds; i++) {
        ev_timer_stop(aemp__g.loop, &seeds[i].retry);
        free(seeds[i].addr);
        free(seeds[i].nodeid);
        free(seeds[i].last_error);
    }
    free(seeds);
    seeds = NULL;
    nseeds = 0;
    updown_handle = 0;
}
