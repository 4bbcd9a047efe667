/* logcatcher.c - AnyEvent::MP::LogCatcher (spec §11.2): collect the log
 * lines of every node of the network at one node.
 *
 * Catching side, the named function "AnyEvent::MP::LogCatcher::catch"
 * (level; absent or null stops): for every other node that is up or listed
 * in the database family "'l" (2.02 networks, where not every node is
 * connected to us), a local port prints what arrives as
 *     YYYY-mm-dd HH:MM:SS [<node>] <level> <message>
 * to stderr, and the node is asked to send it its lines:
 *     ["", "AnyEvent::MP::LogCatcher::connect", 0, <port>, <level>].
 * The port is killed when its node goes down or leaves "'l"; a new catch
 * kills the old ports with reason "restart".
 *
 * Sending side, "AnyEvent::MP::LogCatcher::connect" (0, port, level): every
 * log line at or below level goes to port as [<level>, <message>] to a
 * 1.30 catcher and as [<time>, "AnyEvent::MP", <level>, <message>] to a 2.02
 * one, until the port dies (we monitor it).  Lines are collected by a log
 * hook and sent from a timer, never from inside the code that logs; at most
 * PENDING_MAX wait (more are counted and reported as one line), and lines
 * logged while sending are not sent again (no loops).  Not allowed from
 * other nodes in secure mode (Perl resolves it dynamically, too).
 */
#include "internal.h"

#include "frame.h"   /* before node.h, which uses aemp_frame_t */
#include "node.h"
#include "global.h"  /* aemp__node_dialect */
#include "proto.h"   /* AEMP_DIALECT_130 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_MAX 1024   /* log lines waiting to be sent */

/* ------------------------------------------------------------ sending */

typedef struct sink {
    char *port;          /* the catcher's port */
    int level;
    int dialect;         /* of the catcher's node */
    aemp_handle_t mon;
    struct sink *next;
} sink_t;

typedef struct pending {
    int level;
    double time;
    char *text;
} pending_t;

static sink_t *sinks;
static pending_t pending[PENDING_MAX];
static size_t npending;
static unsigned long overflowed;
static int sending;              /* inside flush: our own lines are not caught */
static int hooked;
static ev_timer flush_timer;

static void flush(EV_P_ ev_timer *w, int revents)
{
    sending = 1;
    for (size_t i = 0; i < npending; i++) {
        pending_t *p = &pending[i];
        for (sink_t *s = sinks; s; s = s->next) {
            if (p->level > s->level)
                continue;
            if (s->dialect == AEMP_DIALECT_130)
                aemp_sndf(s->port, "is", p->level, p->text);
            else
                aemp_sndf(s->port, "fsis", p->time, "AnyEvent::MP", p->level, p->text);
        }
        free(p->text);
    }
    npending = 0;
    if (overflowed) {
        char text[96];
        snprintf(text, sizeof text, "log catcher: %lu lines were not sent (more than %d waiting)", overflowed,
                 PENDING_MAX);
        for (sink_t *s = sinks; s; s = s->next) {
            if (s->dialect == AEMP_DIALECT_130)
                aemp_sndf(s->port, "is", AEMP_LOG_WARN, text);
            else
                aemp_sndf(s->port, "fsis", ev_time(), "AnyEvent::MP", AEMP_LOG_WARN, text);
        }
        overflowed = 0;
    }
    sending = 0;
}

static int max_level(void)
{
    int m = -1;
    for (sink_t *s = sinks; s; s = s->next)
        if (s->level > m)
            m = s->level;
    return m;
}

static void hook(int level, const char *msg, void *arg)
{
    if (sending || !sinks || level > max_level())
        return;
    if (npending == PENDING_MAX) {
        overflowed++;
        return;
    }
    pending_t *p = &pending[npending++];
    p->level = level;
    p->time = ev_time();
    p->text = strdup(msg);
    if (!p->text)
        abort();
    if (!ev_is_active(&flush_timer)) {
        ev_timer_set(&flush_timer, 0, 0);
        ev_timer_start(aemp__g.loop, &flush_timer);
    }
}

static void sink_free(sink_t *s)
{
    free(s->port);
    free(s);
}

static void sink_died(aemp_msg_t *reason, void *arg)
{
    for (sink_t **p = &sinks; *p; p = &(*p)->next) {
        if (*p == arg) {
            sink_t *s = *p;
            *p = s->next;
            sink_free(s);
            break;
        }
    }
    if (!sinks && hooked) {
        aemp_log_hook_remove(hook, NULL);
        hooked = 0;
    }
}

/* "AnyEvent::MP::LogCatcher::connect" (0, port, level). */
static void connect_fn(aemp_msg_t *args, void *unused)
{
    const char *port = aemp_msg_str(args, 1, NULL);
    int64_t level = 0;
    if (!port || aemp_val_int(aemp_msg_at(args, 2), &level) != 0) {
        aemp_log(AEMP_LOG_WARN, "AnyEvent::MP::LogCatcher::connect from %s ignored: expected (0, port, level)",
                 aemp_srcnode() ? aemp_srcnode() : "?");
        return;
    }
    sink_t *s = calloc(1, sizeof *s);
    if (!s || !(s->port = strdup(port)))
        abort();
    s->level = (int)level;
    const char *src = aemp_srcnode();
    s->dialect = src ? (int)aemp__node_dialect(src) : (int)AEMP_DIALECT_202;
    if (aemp_mon(port, sink_died, s, &s->mon) != 0) {
        sink_free(s);
        return;
    }
    s->next = sinks;
    sinks = s;
    if (!hooked) {
        ev_timer_init(&flush_timer, flush, 0, 0);
        aemp_log_hook_add(hook, NULL);
        hooked = 1;
    }
    aemp_log(AEMP_LOG_INFO, "sending log lines up to level %d to %s", s->level, port);
}

/* ------------------------------------------------------------ catching */

typedef struct catch_port {
    char *node;
    char *port;
    struct catch_port *next;
} catch_port_t;

static catch_port_t *caught;
static int catch_level = -1;     /* -1: not catching */
static aemp_handle_t nodes_mon, db_mon;

/* A line from another node: 1.30 [level, text], 2.02 [time, title, level, text]. */
static void print_line(aemp_msg_t *msg, void *arg)
{
    catch_port_t *c = arg;
    int v202 = aemp_msg_len(msg) >= 4;
    int64_t level = 0;
    aemp_val_int(aemp_msg_at(msg, v202 ? 2 : 0), &level);
    const char *text = aemp_msg_str(msg, v202 ? 3 : 1, NULL);
    double when = ev_time();
    if (v202)
        aemp_val_double(aemp_msg_at(msg, 0), &when);
    char stamp[AEMP_LOG_STAMP_MAX];
    aemp__log_stamp(when, stamp);
    fprintf(stderr, "%s [%s] %d %s\n", stamp, c->node, (int)level, text ? text : "");
    fflush(stderr);
}

static catch_port_t *find_caught(const char *node)
{
    for (catch_port_t *c = caught; c; c = c->next)
        if (!strcmp(c->node, node))
            return c;
    return NULL;
}

static void attach(const char *node)
{
    if (catch_level < 0 || !strcmp(node, aemp_node()) || find_caught(node))
        return;
    catch_port_t *c = calloc(1, sizeof *c);
    if (!c || !(c->node = strdup(node)))
        abort();
    c->port = strdup(aemp_port(print_line, c));
    if (!c->port)
        abort();
    c->next = caught;
    caught = c;
    aemp_sndf(node, "sisi", "AnyEvent::MP::LogCatcher::connect", 0, c->port, catch_level);
}

/* Kill the port catching node's lines (every port if node is NULL). */
static void detach(const char *node, const char *why)
{
    catch_port_t **p = &caught;
    while (*p) {
        catch_port_t *c = *p;
        if (node && strcmp(c->node, node)) {
            p = &c->next;
            continue;
        }
        *p = c->next;
        aemp_kilf(c->port, why ? "s" : NULL, why);
        free(c->node);
        free(c->port);
        free(c);
    }
}

static void node_updown(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    if (up)
        attach(node);
    else
        detach(node, NULL);
}

static void listed(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted, void *arg)
{
    for (size_t i = 0; i < aemp_msg_len(added); i++)
        if (aemp_msg_str(added, i, NULL))
            attach(aemp_msg_str(added, i, NULL));
    for (size_t i = 0; i < aemp_msg_len(deleted); i++)
        if (aemp_msg_str(deleted, i, NULL))
            detach(aemp_msg_str(deleted, i, NULL), NULL);
}

/* "AnyEvent::MP::LogCatcher::catch" (level): start (again), or stop. */
static void catch_fn(aemp_msg_t *args, void *unused)
{
    int64_t level = -1;
    const aemp_val_t *v = aemp_msg_at(args, 0);
    if (v && aemp_val_type(v) != AEMP_T_NULL && aemp_val_int(v, &level) != 0) {
        const char *s = aemp_val_str(v, NULL);
        level = s ? atoi(s) : -1;
    }
    detach(NULL, "restart");
    if (nodes_mon) {
        aemp_mon_nodes_cancel(nodes_mon);
        nodes_mon = 0;
    }
    if (db_mon) {
        aemp_db_mon_cancel(db_mon);
        db_mon = 0;
    }
    catch_level = level < 0 ? -1 : (int)level;
    if (catch_level < 0)
        return;
    aemp_log(AEMP_LOG_NOTICE, "catching log lines up to level %d from every node", catch_level);
    aemp_mon_nodes(node_updown, NULL, &nodes_mon);
    aemp_msg_t *up = aemp_up_nodes();
    for (size_t i = 0; i < aemp_msg_len(up); i++)
        attach(aemp_msg_str(up, i, NULL));
    aemp_msg_unref(up);
    aemp_db_mon("'l", listed, NULL, &db_mon);
}

void aemp__logcatcher_init(void)
{
    aemp_func_register("AnyEvent::MP::LogCatcher::catch", catch_fn, NULL);
    aemp_func_register("AnyEvent::MP::LogCatcher::connect", connect_fn, NULL);
}

void aemp__logcatcher_shutdown(void)
{
    while (sinks) {
        sink_t *s = sinks;
        sinks = s->next;
        sink_free(s);
    }
    if (hooked) {
        aemp_log_hook_remove(hook, NULL);
        hooked = 0;
    }
    if (aemp__g.loop)
        ev_timer_stop(aemp__g.loop, &flush_timer);
    for (size_t i = 0; i < npending; i++)
        free(pending[i].text);
    npending = 0;
    while (caught) {
        catch_port_t *c = caught;
        caught = c->next;
        free(c->node);
        free(c->port);
        free(c);
    }
    catch_level = -1;
    nodes_mon = db_mon = 0;
}
