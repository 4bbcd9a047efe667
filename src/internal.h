/* internal.h - state and functions shared by the library's modules.
 * Nothing here is part of the public API (aemp.h).
 */
#ifndef AEMP_INTERNAL_H
#define AEMP_INTERNAL_H

#include "aemp.h"
#include "msg.h"
#include <jansson.h>
#include "fanout_pace.h"
#include "table.h"

#include <stdbool.h>

typedef struct aemp_lport aemp_lport_t;
typedef struct aemp_monitor aemp_monitor_t;
typedef struct aemp_rnode aemp_rnode_t;
typedef struct aemp_conn aemp_conn_t;

/* Network settings of the node (set by aemp_configure). */
struct aemp_net {
    unsigned char *secret;   /* shared secret or NULL */
    size_t secretlen;
    struct aemp_tls_ctx *tls;   /* TLS context built from `cert` (tls.h), or NULL:
                                   owned here, freed by aemp__conn_shutdown */
    unsigned dialects;       /* AEMP_DIALECT_* (proto.h), 0 = both */
    int offer[8], accept[8], framings[4];   /* 0-terminated method/framing lists; empty = defaults */
    double monitor_timeout;  /* handshake timeout, seed back-off cap */
    double connect_interval; /* deadline of one connect */
    size_t max_frame;        /* incoming frame limit */
    size_t max_queue;        /* max_send_queue: bytes unsent on one connection before it fails */
    size_t max_connect_queue;        /* bytes queued for one node while connecting */
    size_t max_connect_queue_total;  /* bytes queued for all connecting nodes */
    size_t max_connecting_nodes;     /* nodes that may hold a queue at once */
    size_t max_unauth;       /* max_unauthenticated: incoming connections in their handshake */
    size_t dataconn_max_pending;   /* data connections pending at once (dataconn.c) */
    int listen_backlog;      /* 0: the system's maximum */
    double db_fanout_cpu;    /* a family's fan-out in a storm: share of one CPU (fanout_pace.h) */
    double db_fanout_max_delay;   /* longest a change waits for its report, seconds */
    int nodelay;
    aemp_msg_t *listeners;   /* our bound addresses ["ip:port", ...] */
    json_t *seeds;           /* resolved seed addresses */
    int secure;              /* refuse remote code execution (spawn, named functions) */
    int configured;
};

/* Defaults of the limits (docs/configuration.md; the fan-out's: fanout_pace.h). */
#define AEMP_DEFAULT_MAX_SEND_QUEUE ((size_t)64 << 20)
#define AEMP_DEFAULT_MAX_CONNECT_QUEUE ((size_t)64 << 20)
#define AEMP_DEFAULT_MAX_CONNECT_QUEUE_TOTAL ((size_t)256 << 20)
#define AEMP_DEFAULT_MAX_CONNECTING_NODES ((size_t)4096)
#define AEMP_DEFAULT_MAX_UNAUTHENTICATED ((size_t)256)
#define AEMP_DEFAULT_DATACONN_MAX_PENDING ((size_t)1024)

/* Counters of events an operator wants to see (aemp_stats). */
enum aemp_stat {
    AEMP_STAT_ACCEPT_ERRORS,          /* accept() failed (EMFILE & co.) */
    AEMP_STAT_UNAUTH_SHED,            /* unauthenticated connections closed to make room */
    AEMP_STAT_HANDSHAKE_FAILURES,     /* connections that failed before authenticating */
    AEMP_STAT_SEND_QUEUE_OVERFLOWS,   /* connections closed: max_send_queue */
    AEMP_STAT_DROPPED_CONNECT_QUEUE,  /* messages dropped: max_connect_queue */
    AEMP_STAT_DROPPED_CONNECT_TOTAL,  /* messages dropped: max_connect_queue_total */
    AEMP_STAT_DROPPED_CONNECTING_NODES, /* messages dropped: max_connecting_nodes */
    AEMP_STAT_NODES_FORGOTTEN,        /* idle node-table entries freed */
    AEMP_STAT_MSGS_IN,                /* frames received from other nodes */
    AEMP_STAT_MSGS_OUT,               /* frames queued for other nodes */
    AEMP_STAT_BYTES_IN,               /* bytes read from connections */
    AEMP_STAT_BYTES_OUT,              /* bytes queued for connections (before TLS) */
    AEMP_STAT_NODES_UP,               /* node-up events (connects and reconnects) */
    AEMP_STAT_NODES_DOWN,             /* node-down events */
    AEMP_STAT_COUNT
};

/* 1 if name is one of aemp_stats' event counters (they only grow), 0 for
 * a gauge or anything else (stats.c). */
int aemp__stats_is_counter(const char *name);

/* The node singleton: one node per process (DESIGN.md). */
struct aemp_global {
    int initialised;
    struct ev_loop *loop;
    char *nodeid;           /* our node ID */
    size_t nodeid_len;
    char uniq[16];          /* per-process prefix of port names */
    char runiq[16];         /* per-process prefix of spawned port names */
    char counter[32];       /* shared counter, Perl-style string increment */
    struct aemp_porttab {   /* port name -> aemp_lport_t (port.c) */
        aemp_lport_t **slots; /* NULL empty, AEMP__PORT_GONE deleted */
        size_t cap, used, dead;
    } ports;
    aemp_table_t monitors;  /* handle -> aemp_monitor_t */
    aemp_table_t timers;    /* handle -> timer */
    uint64_t next_handle;
    struct aemp_net net;
    const char *srcnode;    /* origin of the message being processed */
    uint64_t stats[AEMP_STAT_COUNT];
};
extern struct aemp_global aemp__g;

/* Initialise the node with the default loop if that has not happened. */
void aemp__ensure_init(void);

/* A fresh handle value (never 0, never reused in this process). */
aemp_handle_t aemp__new_handle(void);

/* ---- identifiers (ids.c) */

/* Write a new port name (UNIQ or RUNIQ prefix + counter) NUL-terminated
 * into buf (AEMP_PORT_NAME_MAX bytes); returns its length. */
#define AEMP_PORT_NAME_MAX 48
size_t aemp__next_port_name(int spawned, char *buf);

/* The name of a port of this node other than the node port: 0, or
 * AEMP_EPORTID, AEMP_ENOTLOCAL, AEMP_ENODEPORT. */
int aemp__local_port_name(const char *id, const char **name, size_t *namelen);

/* A new port name alone (malloc'd), as in aemp__new_port_id. */
char *aemp__new_port_name(int spawned);

/* Split an ID at the first '#': returns 1 and the name (after '#') if the
 * ID's node part is this node; 0 for another node; AEMP_EPORTID if
 * malformed (NULL, empty node part).  A bare node ID has name "". */
int aemp__split_local(const char *id, const char **name, size_t *namelen);

/* aemp__split_local that also gives the length of the node part. */
int aemp__split_id(const char *id, size_t *nodelen, const char **name, size_t *namelen);

/* ---- deferred work (loop.c): one FIFO, drained by the event loop */

/* Deliver msg (reference stolen) to a local port (reference taken). */
void aemp__job_msg(aemp_lport_t *p, aemp_msg_t *msg);

/* The same, but delivered at once if no job is queued (so it overtakes
 * nothing): for messages that arrive from the network, whose receive
 * loop copes with what the callback does (see node.c). */
void aemp__job_msg_now(aemp_lport_t *p, aemp_msg_t *msg);

/* Deliver msg to the local port called name (resolved at delivery time). */
void aemp__job_msg_named(const char *name, size_t len, aemp_msg_t *msg);

/* Kill a local port with reason (stolen) at its turn in the queue. */
void aemp__job_kil(aemp_lport_t *p, aemp_msg_t *reason);

/* Call fn(arg) at its turn in the queue. */
void aemp__job_call(void (*fn)(void *arg), void *arg);

/* The same for an arg that fn frees: drop(arg) frees it instead if the
 * queue is cleared before the job runs (shutdown). */
void aemp__job_call_owned(void (*fn)(void *arg), void (*drop)(void *arg), void *arg);

/* Drop every pending job (shutdown). */
void aemp__jobs_clear(void);

/* ---- ports (port.c) */

struct aemp_monlist {
    aemp_monitor_t *head, *tail;
    size_t count;
    void *remote;             /* node layer's owner of a remote port's list */
};
typedef struct aemp_monlist aemp_monlist_t;

struct aemp_tagcb {
    char *tag;
    size_t len;
    aemp_rcv_fn fn;
    void *arg;
};

/* What only some ports need (tag callbacks, monitors, remote monitors, a
 * fiber): allocated on first use, so an idle port is just struct
 * aemp_lport and its ID. */
struct aemp_lport_ext {
    struct aemp_tagcb *tags;
    uint32_t ntags, captags;
    aemp_monlist_t mons;      /* local monitors of this port */
    aemp_rnode_t **rmon;      /* remote nodes that monitor this port */
    uint32_t nrmon, caprmon;
    struct aemp_fiber *fiber; /* the fiber serving this port, or NULL (fiber.c) */
};

struct aemp_lport {
    aemp_rcv_fn fn;           /* default callback */
    void *arg;
    struct aemp_lport_ext *x; /* NULL until needed (aemp__port_ext) */
    const char *name;         /* points into id */
    uint32_t namelen;
    uint32_t hash;            /* of the name, for the port table */
    unsigned refs : 31;       /* table + queued jobs */
    unsigned dead : 1;
    char id[];                /* "<nodeid>#<name>" */
};

/* The port's extension, allocated if it has none yet. */
struct aemp_lport_ext *aemp__port_ext(aemp_lport_t *p);

/* The port's fiber, or NULL. */
static inline struct aemp_fiber *aemp__port_fiber(const aemp_lport_t *p)
{
    return p->x ? p->x->fiber : NULL;
}

/* Number of local monitors of the port. */
static inline size_t aemp__port_nmons(const aemp_lport_t *p)
{
    return p->x ? p->x->mons.count : 0;
}

/* Find a live local port by name. */
aemp_lport_t *aemp__port_find(const char *name, size_t len);

/* Create a local port with the given name (must not exist). */
aemp_lport_t *aemp__port_create_named(const char *name, size_t len);

void aemp__port_ref(aemp_lport_t *p);
void aemp__port_unref(aemp_lport_t *p);

/* Dispatch one message to a port (called by the queue; msg stolen). */
void aemp__port_deliver(aemp_lport_t *p, aemp_msg_t *msg);

/* Kill a port now (called by the queue; reason stolen). */
void aemp__port_die(aemp_lport_t *p, aemp_msg_t *reason);

/* Free every port without firing monitors (shutdown), then the table. */
void aemp__ports_clear(void);
void aemp__ports_free_table(void);

/* The node ID changed (configure): IDs of existing ports keep the old one,
 * so they are no longer local IDs. */
void aemp__ports_nodeid_changed(void);

/* Message for a node-port request (port name "") that arrived locally or
 * from srcnode; msg stolen.  Implemented by the kernel. */
void aemp__node_port_request(const char *srcnode, aemp_msg_t *msg);

/* ---- port context (port.c) */

struct aemp_ctx {
    const char *self;
    char *die;                /* pending die message, malloc'd */
    struct aemp_ctx *prev;
};

/* Run fn(arg) in the context of port id self; applies a pending die. */
void aemp__in_context(const char *self, void (*fn)(void *arg), void *arg);

/* The innermost port context (NULL outside), and replacing it: fibers keep
 * their own chain of contexts while they are suspended. */
struct aemp_ctx *aemp__ctx_get(void);
void aemp__ctx_set(struct aemp_ctx *c);

/* ---- fibers (fiber.c) */

/* p, served by a fiber, died: cancel the fiber (resumed with
 * AEMP_ECANCELED if it waits) and drop its queue. */
void aemp__fiber_port_died(aemp_lport_t *p);

/* Free every fiber and cached stack without resuming them (shutdown). */
void aemp__fibers_clear(void);

/* ---- monitors (mon.c) */

enum aemp_mon_kind { AEMP_MON_CB, AEMP_MON_KIL, AEMP_MON_SND, AEMP_MON_GUARD };

struct aemp_monitor {
    aemp_handle_t id;             /* registry key */
    enum aemp_mon_kind kind;
    bool cancelled;
    aemp_mon_fn fn;               /* CB */
    void *arg;
    void (*release)(void *);      /* GUARD */
    char *rcvport;                /* KIL, SND */
    aemp_msg_t *msg;              /* SND */
    char *target;                 /* monitored ID, until attached */
    aemp_monlist_t *list;         /* where it is linked, or NULL */
    aemp_monitor_t *prev, *next;
};

/* Link a monitor into a list. */
void aemp__monlist_add(aemp_monlist_t *l, aemp_monitor_t *m);

/* Fire and free every monitor in the list with reason (borrowed). */
void aemp__monlist_fire(aemp_monlist_t *l, aemp_msg_t *reason);

/* Free every monitor of the list without firing (guards release). */
void aemp__monlist_clear(aemp_monlist_t *l);

/* Free every monitor and timer (shutdown). */
void aemp__monitors_clear(void);
void aemp__timers_clear(void);

/* The reason message for "no such port" (new reference). */
aemp_msg_t *aemp__reason_no_such_port(const char *portid);

/* ---- named functions (func.c) */

/* Call the registered function name with args (borrowed); AEMP_ENOFUNC if
 * there is none. */
int aemp__func_call(const char *name, aemp_msg_t *args);

/* Register a function that is part of the node protocol (the 1.30 Global
 * service): other nodes may spawn it even in secure mode. */
void aemp__func_register_protocol(const char *name, aemp_func_fn fn, void *arg);
int aemp__func_is_protocol(const char *name);
void aemp__funcs_clear(void);

/* Create local port `name` and run func(args) in its context. */
void aemp__spawn_local(const char *name, size_t len, const char *func, aemp_msg_t *args);

/* All node IDs we know, ours first (new reference). */
aemp_msg_t *aemp__known_nodes(void);

/* ---- misc */

/* ---- rate-limited logging (log.c) */

/* aemp_log_level()'s value once read (-1 before). */
extern int aemp__log_threshold;

/* 1 if frames are traced (level AEMP_LOG_TRACE): a load and a compare on
 * the paths that ask for every frame. */
static inline int aemp__log_tracing(void)
{
    int t = aemp__log_threshold;
    return (t < 0 ? aemp_log_level() : t) >= AEMP_LOG_TRACE;
}

/* One call site's state; zero-initialise (static). */
typedef struct aemp_ratelimit {
    double next;              /* end of the current period (monotonic seconds) */
    double since;             /* when the last line went out */
    unsigned lines;           /* lines written in this period */
    unsigned long suppressed; /* lines not written since the last one */
} aemp_ratelimit_t;

#define AEMP_LOG_RATE_PERIOD 1.0   /* seconds */
#define AEMP_LOG_RATE_BURST 10     /* lines of one call site per period */

/* Log like aemp_log, at most AEMP_LOG_RATE_BURST lines per
 * AEMP_LOG_RATE_PERIOD for this call site (rl); the next line written says
 * how many were suppressed ("... (repeated 41233 times in the last 1.0 s)"). */
void aemp__log_limited(aemp_ratelimit_t *rl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The local time `when` (seconds since the epoch) as log lines show it,
 * "YYYY-mm-dd HH:MM:SS". */
#define AEMP_LOG_STAMP_MAX 32
void aemp__log_stamp(double when, char out[AEMP_LOG_STAMP_MAX]);

/* Compact text of a message for log lines (malloc'd; never NULL). */
char *aemp__msg_text(const aemp_msg_t *m);

#endif
