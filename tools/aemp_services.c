/* aemp_services.c - what every `aemp run` node offers to other nodes:
 * the named functions aemp::echo, aemp::sink, aemp::link, aemp::die and
 * aemp::grp_echo (for spawn), aemp::db_set, aemp::db_del, aemp::grp_get
 * and aemp::reply (for snd_to_func), and the well-known port
 * "<nodeid>#echo".
 */
#include "aemp_cli.h"
#include "aemp_fiber.h"
#include "msg.h"

#include <stdlib.h>
#include <string.h>

/* Element i of msg if it is a string usable as a port ID (no NUL byte),
 * else NULL. */
static const char *port_at(const aemp_msg_t *msg, size_t i)
{
    size_t len;
    const char *s = aemp_msg_str(msg, i, &len);
    return s && strlen(s) == len ? s : NULL;
}

/* A new message of the elements [from, to) of msg. */
static aemp_msg_t *elements(const aemp_msg_t *msg, size_t from, size_t to)
{
    aemp_build_t *b = aemp_build_new();
    for (size_t i = from; i < to; i++)
        aemp_build_val(b, aemp_msg_at(msg, i));
    return aemp_build_msg(b);
}

/* Echo: send the message minus its last element to the port ID that is its
 * last element (the reply convention of cal). */
static void echo_msg(aemp_msg_t *msg, void *arg)
{
    size_t n = aemp_msg_len(msg);
    const char *to = n ? port_at(msg, n - 1) : NULL;
    if (!to) {
        aemp_log(AEMP_LOG_WARN, "%s: message without a reply port ignored", aemp_self());
        return;
    }
    if (aemp_snd(to, elements(msg, 0, n - 1)) < 0)
        aemp_log(AEMP_LOG_WARN, "%s: bad reply port '%s'", aemp_self(), to);
}

/* aemp::echo init function: SELF echoes every message. */
static void echo_init(aemp_msg_t *args, void *arg)
{
    aemp_rcv(aemp_self(), echo_msg, NULL);
}

/* Sink: count every message. */
static void sink_msg(aemp_msg_t *msg, void *arg)
{
    ++*(int64_t *)arg;
}

/* Sink, tag "count" (["count", REPLYPORT]): reply [count] to the last
 * element. */
static void sink_count(aemp_msg_t *msg, void *arg)
{
    size_t n = aemp_msg_len(msg);
    const char *to = n >= 2 ? port_at(msg, n - 1) : NULL;
    if (to)
        aemp_sndf(to, "I", *(int64_t *)arg);
}

/* aemp::sink init function: SELF counts messages; "count" asks for the
 * number. */
static void sink_init(aemp_msg_t *args, void *arg)
{
    int64_t *count = calloc(1, sizeof *count);
    if (!count) {
        aemp_die("out of memory");
        return;
    }
    const char *self = aemp_self();
    aemp_rcv(self, sink_msg, count);
    aemp_rcv_tag(self, "count", sink_count, count);
    aemp_mon_guard(self, free, count, NULL);
}

/* A linked port ignores messages. */
static void link_msg(aemp_msg_t *msg, void *arg)
{
}

/* aemp::link init function, args [PORT]: SELF ignores messages and dies
 * with PORT's reason when PORT dies abnormally (a link, Perl's mon PORT). */
static void link_init(aemp_msg_t *args, void *arg)
{
    const char *port = port_at(args, 0);
    if (!port) {
        aemp_die("aemp::link needs a port ID argument");
        return;
    }
    aemp_rcv(aemp_self(), link_msg, NULL);
    int r = aemp_mon_kil(port, aemp_self(), NULL);
    if (r < 0)
        aemp_die("aemp::link: cannot monitor '%s': %s", port, aemp_strerror(r));
}

/* aemp::die init function: the new port dies at once. */
static void die_init(aemp_msg_t *args, void *arg)
{
    aemp_die("requested");
}

/* "aemp::db_set" family key value: set an entry of this node in the
 * network-wide database (for operators and tests). */
static void db_set_fn(aemp_msg_t *args, void *arg)
{
    const char *family = aemp_msg_str(args, 0, NULL);
    const char *key = aemp_msg_str(args, 1, NULL);
    const aemp_val_t *value = aemp_msg_at(args, 2);
    if (family && key)
        aemp_db_set(family, key, value ? aemp_msg_copy_val(value) : NULL);
}

/* "aemp::db_del" family key: delete one of this node's entries. */
static void db_del_fn(aemp_msg_t *args, void *arg)
{
    const char *family = aemp_msg_str(args, 0, NULL);
    const char *key = aemp_msg_str(args, 1, NULL);
    if (family && key)
        aemp_db_del(family, key);
}

/* "aemp::reply" port args...: send [args...] to port - makes the effect of
 * a snd_to_func call from another node visible (tests). */
static void reply_fn(aemp_msg_t *args, void *arg)
{
    const char *port = port_at(args, 0);
    if (!port) {
        aemp_log(AEMP_LOG_WARN, "aemp::reply needs a port ID as its first argument");
        return;
    }
    aemp_snd(port, aemp__msg_slice(args, 1));
}

/* "aemp::grp_echo" group: spawn init function: an echo port registered in
 * group (it leaves the group when it dies). */
static void grp_echo_init(aemp_msg_t *args, void *arg)
{
    const char *group = aemp_msg_str(args, 0, NULL);
    aemp_rcv(aemp_self(), echo_msg, NULL);
    if (group)
        aemp_grp_reg(group, aemp_self(), NULL);
}

/* "aemp::ioclient" spawn init function, args [IOSERVER, PATH, DELAY,
 * [CHUNK...], NOTIFY or null]: a client of the fiber ioserver
 * (examples/ioserver.c).  SELF, served by a fiber, sends ["write_file",
 * SELF, PATH(, NOTIFY)], then ["data", SELF, CHUNK] for each chunk with
 * DELAY seconds before each, then ["data", SELF, ""], and ends.  arg is
 * the init arguments (a reference the body releases). */
static void ioclient_body(void *arg)
{
    aemp_msg_t *args = arg;
    const char *server = port_at(args, 0);
    const char *path = aemp_msg_str(args, 1, NULL);
    double delay;
    if (aemp_msg_double(args, 2, &delay) < 0)
        delay = 0;   /* no number: no delay */
    const aemp_val_t *chunks = aemp_msg_at(args, 3);
    size_t nchunks = aemp_val_type(chunks) == AEMP_T_ARRAY ? aemp_val_len(chunks) : 0;
    const char *notify = aemp_msg_str(args, 4, NULL);
    const char *self = aemp_self();
    if (notify)
        aemp_sndf(server, "ssss", "write_file", self, path, notify);
    else
        aemp_sndf(server, "sss", "write_file", self, path);
    for (size_t i = 0; i < nchunks; i++) {
        if (delay > 0 && aemp_fiber_sleep(delay) != 0)
            break;   /* cancelled */
        aemp_snd(server, aemp_msgf("ssv", "data", self, aemp_val_at(chunks, i)));
    }
    aemp_sndf(server, "sss", "data", self, "");
    aemp_msg_unref(args);
}

static void ioclient_init(aemp_msg_t *args, void *arg)
{
    if (!port_at(args, 0) || !aemp_msg_str(args, 1, NULL)) {
        aemp_die("aemp::ioclient needs IOSERVER and PATH arguments");
        return;
    }
    int r = aemp_rcv_async(aemp_self(), ioclient_body, aemp_msg_ref(args));
    if (r) {
        aemp_msg_unref(args);
        aemp_die("aemp::ioclient: %s", aemp_strerror(r));
    }
}

/* "aemp::grp_get" group replyport: reply the group's members as seen by
 * this node (an array, possibly empty). */
static void grp_get_fn(aemp_msg_t *args, void *arg)
{
    const char *group = aemp_msg_str(args, 0, NULL);
    const char *reply = port_at(args, 1);
    if (!group || !reply)
        return;
    aemp_msg_t *members = aemp_grp_get(group);
    aemp_snd(reply, members ? aemp_msgf("v", aemp_msg_root(members)) : aemp_msgf("[]"));
    aemp_msg_unref(members);
}

static int restart_asked;

static void restart_now(void *arg)
{
    restart_asked = 1;
    aemp_stop();
}

/* aemp::restart [reply port]: under the watchdog, reply "" and leave the
 * loop soon (the node exits with CLI_WATCHDOG_RESTART and the watchdog
 * starts it again); without one, reply why not. */
static void restart_fn(aemp_msg_t *args, void *arg)
{
    const char *reply = port_at(args, 0);
    if (!cli_watched()) {
        if (reply)
            aemp_sndf(reply, "s", "cannot restart: this node does not run under the watchdog (AEMP_WATCHDOG=0)");
        return;
    }
    aemp_log(AEMP_LOG_NOTICE, "restart asked by %s", aemp_srcnode() ? aemp_srcnode() : "?");
    if (reply)
        aemp_sndf(reply, "s", "");
    aemp_after_cb(0.1, restart_now, NULL, NULL);   /* the reply goes out first */
}

int cli_services_restart_asked(void)
{
    return restart_asked;
}

/* Register the named functions (see the help of `run`). */
void cli_services_register(void)
{
    aemp_func_register("aemp::grp_get", grp_get_fn, NULL);
    aemp_func_register("aemp::db_set", db_set_fn, NULL);
    aemp_func_register("aemp::db_del", db_del_fn, NULL);
    aemp_func_register("aemp::reply", reply_fn, NULL);
    aemp_func_register("aemp::grp_echo", grp_echo_init, NULL);
    aemp_func_register("aemp::echo", echo_init, NULL);
    aemp_func_register("aemp::sink", sink_init, NULL);
    aemp_func_register("aemp::link", link_init, NULL);
    aemp_func_register("aemp::die", die_init, NULL);
    aemp_func_register("aemp::ioclient", ioclient_init, NULL);
    aemp_func_register("aemp::restart", restart_fn, NULL);
}

/* Create "<nodeid>#echo". */
int cli_services_echo_port(void)
{
    const char *node = aemp_node();
    size_t n = strlen(node);
    char *id = malloc(n + sizeof "#echo");
    if (!id)
        return AEMP_EINVAL;
    memcpy(id, node, n);
    memcpy(id + n, "#echo", sizeof "#echo");
    int r = aemp_rcv(id, echo_msg, NULL);
    free(id);
    return r;
}
