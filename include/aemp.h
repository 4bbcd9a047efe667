/* aemp.h - libaemp: Erlang-style distributed message passing for C,
 * wire compatible with Perl's AnyEvent::MP (dialects 1.30 and 2.02).
 *
 * Concepts (see docs/api.md for the long form):
 *   node     one process with one event loop (libev); it has a node ID.
 *   port     a named message destination in a node; its ID is
 *            "<nodeid>#<portname>".  Port names are never reused.
 *   message  an immutable, reference-counted array of values (aemp_msg_t,
 *            see aemp_msg.h); customarily element 0 is a string tag that
 *            aemp_rcv_tag() dispatches on.
 *   SELF     the port whose callback is running (aemp_self()).
 *   monitor  a one-shot action that runs when a port dies, or when messages
 *            to it may have been lost; it carries the kill reason (a JSON
 *            message: empty = normal death).
 *
 * Threading: one node per process, one thread.  Every function must be
 * called from the thread that runs the node's loop.
 *
 * Errors: functions that can fail return 0 (or a positive value where
 * stated) on success and a negative AEMP_E* code on failure; aemp_strerror()
 * names it.  A failing call changes nothing.
 *
 * Ownership: a message passed to a function documented as "stealing" it
 * is owned by the library afterwards, also on failure; the caller must not
 * use it again.  Messages handed to callbacks are borrowed: they are valid
 * during the callback; take a reference (aemp_msg_ref) to keep one.
 * Messages are immutable, so one message may be sent to many ports (take a
 * reference for each send).
 *
 * jansson users: aemp_json.h converts between json_t and messages.
 */
#ifndef AEMP_H
#define AEMP_H

#include <ev.h>
#include "aemp_msg.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header (also the build's: CMakeLists.txt reads it
 * from here). */
#define AEMP_VERSION "0.1.0"

/* The version of the libaemp the program runs with (a static string, e.g.
 * "0.1.0"); it differs from AEMP_VERSION when a program compiled against
 * one version runs with another shared library.  Never fails. */
const char *aemp_version(void);

/* ---------------------------------------------------------------- errors */

enum {
    AEMP_OK = 0,
    AEMP_EINVAL = -1,      /* invalid argument (NULL, wrong JSON type, ...) */
    AEMP_EPORTID = -2,     /* malformed port or node ID */
    AEMP_ENOTLOCAL = -3,   /* the port is not on this node */
    AEMP_ENOPORT = -4,     /* no such port */
    AEMP_ENODEPORT = -5,   /* not allowed on the node port */
    AEMP_ENOSELF = -6,     /* needs port context (SELF) but there is none */
    AEMP_ENOENT = -7,      /* no such handle / entry (e.g. already fired) */
    AEMP_ECONFIG = -8,     /* bad configuration */
    AEMP_EAGAIN = -9,      /* already done / once only (e.g. configure) */
    AEMP_ENOFUNC = -10,    /* no function registered under that name */
    AEMP_EIO = -11,        /* system error (bind, listen, ...) */
    AEMP_ETIMEDOUT = -12,  /* a blocking wait timed out (fibers) */
    AEMP_ECANCELED = -13,  /* the fiber's port died while it waited */
    AEMP_ENOFIBER = -14,   /* needs a (receiving) fiber but there is none */
    AEMP_ETYPE = -15,      /* a message value has another type */
    AEMP_ERANGE = -16,     /* no such element, or a number out of range */
    AEMP_ELIMIT = -17,     /* a message beyond the limits (depth, size) */
};

/* A static, human readable text for an AEMP_E* code. */
const char *aemp_strerror(int err);

/* ------------------------------------------------------------- the node */

/* Attach the node to a libev loop (NULL = the default loop).  Optional:
 * every other function initialises the node with the default loop on first
 * use.  Returns AEMP_EAGAIN if already initialised with another loop. */
int aemp_init(struct ev_loop *loop);

/* The loop the node runs in (initialising the node if needed). */
struct ev_loop *aemp_loop(void);

/* Run the event loop until nothing is left to do or aemp_stop(). */
void aemp_run(void);

/* Make aemp_run() return after the current loop iteration. */
void aemp_stop(void);

/* Free every port, timer, monitor and connection; the node can be
 * initialised again afterwards (with new random IDs).  Mainly for tests and
 * leak checkers; ports are dropped without firing their monitors. */
void aemp_shutdown(void);

/* This node's ID.  Before configuration it is "anon/<random>". */
const char *aemp_node(void);

/* Length of the node part of a port or node ID: everything before the first
 * '#' (the whole string if there is none).  Pure function. */
size_t aemp_node_len(const char *id);

/* Copy the node part of id into buf (NUL-terminated).  Returns its length,
 * or AEMP_EINVAL if buf is too small. */
int aemp_node_of(const char *id, char *buf, size_t size);

/* 1 if the port (or node) ID names this node, else 0. */
int aemp_port_is_local(const char *id);

/* Ask glibc's malloc to keep freed blocks of up to 1 MiB in the heap for
 * reuse (mmap threshold 1 MiB, trim threshold 2 MiB) instead of returning
 * every block of 128 KiB or more to the kernel at once: a process that
 * reads large frames -- a watcher's snapshot of a family of thousands of
 * keys -- then lays its mirror into memory the kernel already gave it
 * instead of fresh pages, each of which costs a page fault.  glibc tunes
 * itself this way after the first such block is freed; this does it from
 * the start, which matters for many nodes starting at once (see
 * docs/scaling.md).  A process-wide policy: libaemp never sets it itself;
 * the aemp tool calls this.  Returns 0, or AEMP_EIO if malloc is not
 * glibc's or refused. */
int aemp_tune_malloc(void);

/* ---------------------------------------------------------------- ports */

/* A receive callback: msg is the whole message (tag callbacks too: element
 * 0 is the tag), borrowed (see "Ownership"); SELF is the port. */
typedef void (*aemp_rcv_fn)(aemp_msg_t *msg, void *arg);

/* Create a local port and return its ID (owned by the library, valid while
 * the port lives; copy it to keep it longer).  fn (may be NULL) becomes the
 * default callback.  A message that finds no callback kills the port with
 * reason ("unhandled_message", "no callback found for message '<tag>'").
 * Cost: O(1).  Never fails. */
const char *aemp_port(aemp_rcv_fn fn, void *arg);

/* Set (replace) the default callback of a local port; fn NULL removes it.
 * A local port ID that does not exist yet is created (this is how spawned
 * ports come to life).  Errors: AEMP_EPORTID, AEMP_ENOTLOCAL,
 * AEMP_ENODEPORT. */
int aemp_rcv(const char *port, aemp_rcv_fn fn, void *arg);

/* Register (replace) the callback for messages whose element 0 is the
 * string tag (text or byte string); fn NULL unregisters it.  The callback
 * receives the whole message, tag included (element 0), so element indexes
 * are the same in every kind of callback.  Same errors as aemp_rcv. */
int aemp_rcv_tag(const char *port, const char *tag, aemp_rcv_fn fn, void *arg);

/* Send msg (STOLEN; its root must be an array) to port (local or remote; a bare node ID
 * addresses that node's node port).  Never blocks and never reports
 * delivery failure: a message to a port that does not exist when the
 * message arrives is dropped (use monitors to learn about losses).  Local
 * messages are delivered from the event loop in send order, never inside
 * this call.  Cost: O(1), no copy.  Errors: AEMP_EINVAL (msg NULL or not an
 * array), AEMP_EPORTID. */
int aemp_snd(const char *port, aemp_msg_t *msg);

/* aemp_snd with the message built by aemp_msgf from the format of the
 * message's ELEMENTS: aemp_sndf(p, "sis", "ping", 1, "x") sends
 * ["ping", 1, "x"].  One allocation.  Errors as aemp_snd, plus AEMP_EINVAL
 * for a bad format. */
int aemp_sndf(const char *port, const char *fmt, ...);

/* Kill a port with reason (a message, STOLEN; NULL or [] = normal kill).
 * Remote ports are killed through their node.  The kill happens from the
 * event loop, after every message sent to the port before it.  Killing a
 * port that does not exist is a silent no-op.  Errors: AEMP_EINVAL (reason
 * not an array), AEMP_EPORTID, AEMP_ENODEPORT. */
int aemp_kil(const char *port, aemp_msg_t *reason);

/* aemp_kil with the reason built like aemp_sndf; fmt NULL = normal kill. */
int aemp_kilf(const char *port, const char *fmt, ...);

/* The port whose code is running (a receive callback, peval, psub, spawn
 * init function), or NULL outside port context. */
const char *aemp_self(void);

/* The C analogue of Perl's die in port context: when the current callback
 * returns, SELF is killed with reason ("die", <message>) (trailing newlines
 * stripped).  The callback should return right after calling this.  Outside
 * port context the message is logged at level 1 and nothing else happens.
 * Calling it twice keeps the first message. */
void aemp_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run fn(arg) with SELF = port, in port context (aemp_die kills port).
 * The port need not be local.  Errors: AEMP_EINVAL, AEMP_EPORTID. */
int aemp_peval(const char *port, void (*fn)(void *arg), void *arg);

/* A closure that carries the port context into deferred code (timers,
 * I/O watchers): aemp_psub captures SELF; aemp_psub_call runs
 * fn(arg, data) in that port context.  Returns NULL outside port context.
 * The caller frees it with aemp_psub_free. */
typedef struct aemp_psub aemp_psub_t;
aemp_psub_t *aemp_psub(void (*fn)(void *arg, void *data), void *arg);
void aemp_psub_call(aemp_psub_t *ps, void *data);
void aemp_psub_free(aemp_psub_t *ps);

/* ------------------------------------------------------------- monitors */

/* A handle that cancels a monitor or timer; 0 is never a valid handle. */
typedef uint64_t aemp_handle_t;

/* Monitor callback: reason is borrowed; an empty message means normal death. */
typedef void (*aemp_mon_fn)(aemp_msg_t *reason, void *arg);

/* Monitor a port (local or remote, or a node ID: fires when the connection
 * to that node fails).  One-shot: the action runs once, on death or on
 * possible message loss, then the monitor is gone.  Monitoring a port that
 * does not exist fires with ("no_such_port", "cannot monitor nonexistent
 * port", <portid>).  Actions run from the event loop, never inside the call.
 * If handle is not NULL it receives a handle for aemp_mon_cancel.
 *
 *   aemp_mon      call fn(reason, arg) on any death
 *   aemp_mon_kil  on ABNORMAL death kill rcvport (NULL = SELF) with the same
 *                 reason (a "link")
 *   aemp_mon_snd  on any death send msg (STOLEN) + reason elements to rcvport
 *   aemp_mon_guard  on death (or cancel) call release(ptr): ties resources
 *                 to a port's lifetime
 * Errors: AEMP_EINVAL, AEMP_EPORTID, AEMP_ENOSELF (aemp_mon_kil without
 * rcvport outside port context). */
int aemp_mon(const char *port, aemp_mon_fn fn, void *arg, aemp_handle_t *handle);
int aemp_mon_kil(const char *port, const char *rcvport, aemp_handle_t *handle);
int aemp_mon_snd(const char *port, const char *rcvport, aemp_msg_t *msg, aemp_handle_t *handle);
int aemp_mon_guard(const char *port, void (*release)(void *ptr), void *ptr, aemp_handle_t *handle);

/* Cancel a monitor before it fires (a guard's release runs now).
 * Returns 0, or AEMP_ENOENT if it already fired or was cancelled. */
int aemp_mon_cancel(aemp_handle_t handle);

/* --------------------------------------------------------------- timers */

/* After `seconds`, send msg (STOLEN) to port. */
int aemp_after(double seconds, const char *port, aemp_msg_t *msg, aemp_handle_t *handle);

/* After `seconds`, call fn(arg) (not in port context; use a psub for that). */
int aemp_after_cb(double seconds, void (*fn)(void *arg), void *arg, aemp_handle_t *handle);

/* Cancel a pending timer.  Returns 0 or AEMP_ENOENT (fired/cancelled). */
int aemp_after_cancel(aemp_handle_t handle);

/* ------------------------------------------------------------------ cal */

/* Reply callback of aemp_cal: reply is the reply message (borrowed), or NULL
 * on timeout or when the destination died. */
typedef void (*aemp_cal_fn)(aemp_msg_t *reply, void *arg);

/* Simple RPC: create a temporary reply port, append its ID to msg (STOLEN),
 * send it to port, and call cb exactly once: with the first reply, or with
 * NULL after `timeout` seconds (timeout > 0), or - with timeout <= 0 - when
 * the destination dies (it is monitored).  Returns the reply port ID (valid
 * until cb has run), or NULL on a bad argument. */
const char *aemp_cal(const char *port, aemp_msg_t *msg, aemp_cal_fn cb, void *arg, double timeout);

/* -------------------------------------------------------------- network */

/* Configure the node (once per process; AEMP_EAGAIN afterwards).  args is
 * a message whose root is a map of configuration keys (borrowed, may be
 * NULL): "profile"
 * (default: the host name), "norc", "force", and every key of
 * docs/configuration.md ("nodeid", "secret", "binds", "seeds",
 * "monitor_timeout", "connect_interval", "framing_format", "auth_offer",
 * "auth_accept", "nodelay", "dialect", "max_frame", ...).  The rc file
 * ($PERL_ANYEVENT_MP_RC, else ~/.perl-anyevent-mp) is merged as
 * AnyEvent::MP does: profile over parents over global section over args.
 * Then the node ID is set, listeners are opened on the binds, and the seeds
 * are contacted.  On failure err (may be NULL) receives a message and
 * nothing is changed except what the error says.
 * Errors: AEMP_ECONFIG (bad value, unparsable rc file, ...), AEMP_EIO
 * (cannot listen), AEMP_EAGAIN. */
int aemp_configure(const aemp_msg_t *args, char *err, size_t errlen);

/* Like aemp_configure with the map built by aemp_valf:
 * aemp_configuref(err, sizeof err, "{s:s, s:[s]}", "nodeid", "n1", "binds", "127.0.0.1:0"). */
int aemp_configuref(char *err, size_t errlen, const char *fmt, ...);

/* Our listening addresses ["ip:port", ...] (a new reference; empty before
 * configuration). */
aemp_msg_t *aemp_listeners(void);

/* A named function, callable by spawn, snd_to_func and node-port requests
 * from other nodes ("Pkg::name" or "::name").  args is borrowed. */
typedef void (*aemp_func_fn)(aemp_msg_t *args, void *arg);

/* Register (replace) a named function.  Errors: AEMP_EINVAL. */
int aemp_func_register(const char *name, aemp_func_fn fn, void *arg);

/* Remove a named function.  Errors: AEMP_ENOFUNC. */
int aemp_func_unregister(const char *name);

/* Create a port on node (a node ID or any port ID on it) and run the
 * registered function func(args) in its context there; args (a message,
 * STOLEN, may be NULL) are the init arguments.  Returns the new port ID at
 * once (malloc'd: the caller frees it); the port may be sent to and
 * monitored immediately.  The init function runs from the event loop, never
 * inside this call.  An unknown function name kills the new port with
 * ("die", "unable to resolve function '<func>'").  NULL if func lacks "::"
 * or an argument is malformed. */
char *aemp_spawn(const char *node, const char *func, aemp_msg_t *args);

/* Call the named function on node with args (STOLEN, may be NULL), outside
 * port context.  Errors: AEMP_EINVAL, AEMP_EPORTID. */
int aemp_snd_to_func(const char *node, const char *func, aemp_msg_t *args);

/* Ask node to send msg (STOLEN) to port (a relay).  Errors as aemp_snd. */
int aemp_snd_on(const char *node, const char *port, aemp_msg_t *msg);

/* 1 if a connection to node is established (also for our own node ID),
 * 0 if the node is known but not connected, AEMP_ENOENT if unknown. */
int aemp_node_is_up(const char *node);

/* IDs of the connected nodes (new reference; caller unrefs). */
aemp_msg_t *aemp_up_nodes(void);

/* The node's counters and gauges as a map (new reference): unsigned
 * integers connections, unauthenticated_connections, nodes,
 * connecting_nodes, connect_queue_bytes, ports, monitors, fibers, log_level and the
 * event counters (messages_in/out, bytes_in/out, nodes_up/down, drops by
 * limit, shed and failed handshakes, ...), and "peers": a map node ID ->
 * {address, direction, dialect, messages_in, messages_out, bytes_in,
 * bytes_out, send_queue_bytes, seconds_up} of the connected nodes.
 * docs/security.md#counters lists every name.  Always on: counting costs a
 * few additions per frame. */
aemp_msg_t *aemp_stats(void);

/* Tell the node where another node listens (addrs: a message of "ip:port"
 * strings, borrowed); used when a connection must be opened to it. */
int aemp_add_node(const char *node, const aemp_msg_t *addrs);

/* Node up/down callback: up is 1 or 0; reason (borrowed) is the transport
 * error on the way down, [] on the way up.  Up and down alternate per node. */
typedef void (*aemp_node_mon_fn)(const char *node, int up, aemp_msg_t *reason, void *arg);
int aemp_mon_nodes(aemp_node_mon_fn fn, void *arg, aemp_handle_t *handle);
int aemp_mon_nodes_cancel(aemp_handle_t handle);

/* The node the message or node-port request being processed came from
 * (valid in named functions and spawn init functions), else NULL. */
const char *aemp_srcnode(void);

/* ------------------------------------------------- distributed database */

/* The network-wide database (the 2.02 model): family -> key -> value.
 * Every node owns the entries it sets; global nodes (the seeds) merge them
 * and answer queries; changes reach monitors within a round trip or two.
 * Family names starting with ' are internal ('l: node -> listeners,
 * 'g: the global nodes). */

/* Set family/key to value (a message whose root is the value, STOLEN; NULL
 * = null), e.g. aemp_valf("s", "x").  Nothing is sent if the value is
 * unchanged.  Errors: AEMP_EINVAL (empty family or key), AEMP_ELIMIT (the
 * value is nested deeper than AEMP_MSG_MAX_DEPTH - 3: the database protocol
 * wraps it in three more levels). */
int aemp_db_set(const char *family, const char *key, aemp_msg_t *value);

/* aemp_db_set with the value built by aemp_valf(fmt, ...). */
int aemp_db_setf(const char *family, const char *key, const char *fmt, ...);

/* Delete one of our entries.  Errors: AEMP_EINVAL, AEMP_ENOENT. */
int aemp_db_del(const char *family, const char *key);

/* Set family/port = value (STOLEN, may be NULL) and delete the entry when
 * the port dies (port NULL = SELF).  handle (may be NULL) can be cancelled
 * with aemp_mon_cancel, which deletes the entry.  Errors: as aemp_db_set,
 * AEMP_ENOSELF. */
int aemp_db_reg(const char *family, const char *port, aemp_msg_t *value, aemp_handle_t *handle);

/* Asynchronous queries answered by the master: the whole family as a map,
 * its keys or its values as arrays (the root of the result message; empty
 * when the family is empty).  The result is borrowed.  Queries wait for a master and are
 * asked again after a master change. */
typedef void (*aemp_db_query_fn)(aemp_msg_t *result, void *arg);
int aemp_db_family(const char *family, aemp_db_query_fn cb, void *arg);
int aemp_db_keys(const char *family, aemp_db_query_fn cb, void *arg);
int aemp_db_values(const char *family, aemp_db_query_fn cb, void *arg);

/* Monitor a family: the callback runs once the master has answered with
 * the current contents (even if empty), then after changes, with the whole
 * family and arrays of added, changed and deleted keys (all borrowed; take
 * a reference to keep them).  Changes that arrive within one loop pass are
 * reported in one call, computed against the previous report (a key added
 * and deleted in the same pass is not reported).  A change may be reported
 * for an unchanged value. */
typedef void (*aemp_db_mon_fn)(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted, void *arg);
int aemp_db_mon(const char *family, aemp_db_mon_fn cb, void *arg, aemp_handle_t *handle);

/* aemp_db_mon for a callback that keeps its own state from the changes:
 * it gets NULL for `family` (the first call still lists every key as
 * added), so a report costs O(changes) instead of a copy of the whole
 * family - what a watcher of a family of thousands of entries wants. */
int aemp_db_mon_changes(const char *family, aemp_db_mon_fn cb, void *arg, aemp_handle_t *handle);
int aemp_db_mon_cancel(aemp_handle_t handle);

/* The 1.x group API on top of the database: a group is a family whose keys
 * are port IDs.  aemp_grp_get returns the members (new reference) from the
 * merged database on global nodes or from the local mirror elsewhere, or
 * NULL if there are none.  On a node that is not global, the first call of
 * a group starts mirroring it (for the life of the node): that call
 * usually returns NULL, later ones see the members once the master has
 * answered (docs/global.md). */
typedef void (*aemp_grp_mon_fn)(aemp_msg_t *ports, aemp_msg_t *added, aemp_msg_t *removed, void *arg);
int aemp_grp_reg(const char *group, const char *port, aemp_handle_t *handle);
aemp_msg_t *aemp_grp_get(const char *group);
int aemp_grp_mon(const char *group, aemp_grp_mon_fn cb, void *arg, aemp_handle_t *handle);

/* 1 if this node is a global node. */
int aemp_is_global(void);

/* -------------------------------------------------------------- logging */

/* Log levels as in AnyEvent::MP: 0 always, 1 unexpected errors,
 * 2 warnings, 5 default threshold, 7 connectivity and services,
 * 8 debugging, 9 tracing. */
#define AEMP_LOG_CRIT 0
#define AEMP_LOG_ERROR 1
#define AEMP_LOG_WARN 2
#define AEMP_LOG_NOTICE 5
#define AEMP_LOG_INFO 7
#define AEMP_LOG_DEBUG 8
#define AEMP_LOG_TRACE 9

/* Log a message.  It goes to every hook (all levels), and to stderr as
 * "YYYY-mm-dd HH:MM:SS <level> <message>" if level <= the threshold. */
void aemp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The stderr threshold: initially $AEMP_WARNLEVEL, else
 * $PERL_ANYEVENT_MP_WARNLEVEL, else 5. */
int aemp_log_level(void);
void aemp_set_log_level(int level);

/* A hook receives every log line (message without timestamp). */
typedef void (*aemp_log_hook_fn)(int level, const char *msg, void *arg);
int aemp_log_hook_add(aemp_log_hook_fn fn, void *arg);
int aemp_log_hook_remove(aemp_log_hook_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

/* Selective receive in fibers (the Coro::MP model): see aemp_fiber.h. */
#include "aemp_fiber.h"

#endif
