/* aemp_services.c - what every `aemp run` node offers to other nodes:
 * the named functions aemp::echo, aemp::sink, aemp::link, aemp::die and
 * aemp::grp_echo (for spawn), aemp::db_set, aemp::db_del, aemp::grp_get
 * and aemp::reply (for snd_to_func), and the well-known port
 * "<nodeid>#echo".
 */
#include "aemp_cli.h"
#include "aemp_fiber.h"

#include <stdlib.h>
#include <string.h>

/* Echo: send the message minus its last element to the port ID that is its
 * last element (the reply convention of cal). */
static void echo_msg(json_t *msg, void *arg)
{
    size_t n = json_array_size(msg);
    json_t *to = n ? json_array_get(msg, n - 1) : NULL;
    if (!json_is_string(to)) {
        aemp_log(AEMP_LOG_WARN, "%s: message without a reply port ignored", aemp_self());
        return;
    }
    json_t *reply = json_array();
    for (size_t i = 0; i + 1 < n; i++)
        json_array_append(reply, json_array_get(msg, i));
    if (aemp_snd(json_string_value(to), reply) < 0)
        aemp_log(AEMP_LOG_WARN, "%s: bad reply port '%s'", aemp_self(), json_string_value(to));
}

/* aemp::echo init function: SELF echoes every message. */
static void echo_init(json_t *args, void *arg)
{
    aemp_rcv(aemp_self(), echo_msg, NULL);
}

/* Sink: count every message. */
static void sink_msg(json_t *msg, void *arg)
{
    ++*(json_int_t *)arg;
}

/* Sink, tag "count": reply [count] to the last element. */
static void sink_count(json_t *msg, void *arg)
{
    size_t n = json_array_size(msg);
    json_t *to = n ? json_array_get(msg, n - 1) : NULL;
    if (json_is_string(to))
        aemp_sndf(json_string_value(to), "I", *(json_int_t *)arg);
}

/* aemp::sink init function: SELF counts messages; "count" asks for the
 * number. */
static void sink_init(json_t *args, void *arg)
{
    json_int_t *count = calloc(1, sizeof *count);
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
static void link_msg(json_t *msg, void *arg)
{
}

/* aemp::link init function, args [PORT]: SELF ignores messages and dies
 * with PORT's reason when PORT dies abnormally (a link, Perl's mon PORT). */
static void link_init(json_t *args, void *arg)
{
    const char *port = json_string_value(json_array_get(args, 0));
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
static void die_init(json_t *args, void *arg)
{
    aemp_die("requested");
}

/* Register the named functions (see the help of `run`). */
/* "aemp::db_set" family key value: set an entry of this node in the
 * network-wide database (for operators and tests). */
static void db_set_fn(json_t *args, void *arg)
{
    const char *family = json_string_value(json_array_get(args, 0));
    const char *key = json_string_value(json_array_get(args, 1));
    json_t *value = json_array_get(args, 2);
    if (family && key)
        aemp_db_set(family, key, value ? json_incref(value) : NULL);
}

/* "aemp::db_del" family key: delete one of this node's entries. */
static void db_del_fn(json_t *args, void *arg)
{
    const char *family = json_string_value(json_array_get(args, 0));
    const char *key = json_string_value(json_array_get(args, 1));
    if (family && key)
        aemp_db_del(family, key);
}

/* "aemp::reply" port args...: send [args...] to port - makes the effect of
 * a snd_to_func call from another node visible (tests). */
static void reply_fn(json_t *args, void *arg)
{
    const char *port = json_string_value(json_array_get(args, 0));
    if (!port) {
        aemp_log(AEMP_LOG_WARN, "aemp::reply needs a port ID as its first argument");
        return;
    }
    json_t *msg = json_array();
    for (size_t i = 1; i < json_array_size(args); i++)
        json_array_append(msg, json_array_get(args, i));
    aemp_snd(port, msg);
}

/* "aemp::grp_echo" group: spawn init function: an echo port registered in
 * group (it leaves the group when it dies). */
static void grp_echo_init(json_t *args, void *arg)
{
    const char *group = json_string_value(json_array_get(args, 0));
    aemp_rcv(aemp_self(), echo_msg, NULL);
    if (group)
        aemp_grp_reg(group, aemp_self(), NULL);
}

/* "aemp::ioclient" spawn init function, args [IOSERVER, PATH, DELAY,
 * [CHUNK...], NOTIFY or null]: a client of the fiber ioserver
 * (examples/ioserver.c).  SELF, served by a fiber, sends ["write_file",
 * SELF, PATH(, NOTIFY)], then ["data", SELF, CHUNK] for each chunk with
 * DELAY seconds before each, then ["data", SELF, ""], and ends. */
static void ioclient_body(void *arg)
{
    json_t *args = arg;
    const char *server = json_string_value(json_array_get(args, 0));
    const char *path = json_string_value(json_array_get(args, 1));
    double delay = json_number_value(json_array_get(args, 2));
    json_t *chunks = json_array_get(args, 3);
    const char *notify = json_string_value(json_array_get(args, 4));
    const char *self = aemp_self();
    if (notify)
        aemp_sndf(server, "ssss", "write_file", self, path, notify);
    else
        aemp_sndf(server, "sss", "write_file", self, path);
    size_t i;
    json_t *chunk;
    json_array_foreach(chunks, i, chunk) {
        if (delay > 0 && aemp_fiber_sleep(delay) != 0)
            break;   /* cancelled */
        aemp_snd(server, json_pack("[ssO]", "data", self, chunk));
    }
    aemp_sndf(server, "sss", "data", self, "");
    json_decref(args);
}

static void ioclient_init(json_t *args, void *arg)
{
    if (!json_is_string(json_array_get(args, 0)) || !json_is_string(json_array_get(args, 1))) {
        aemp_die("aemp::ioclient needs IOSERVER and PATH arguments");
        return;
    }
    int r = aemp_rcv_async(aemp_self(), ioclient_body, json_incref(args));
    if (r) {
        json_decref(args);
        aemp_die("aemp::ioclient: %s", aemp_strerror(r));
    }
}

/* "aemp::grp_get" group replyport: reply the group's members as seen by
 * this node (an array, possibly empty). */
static void grp_get_fn(json_t *args, void *arg)
{
    const char *group = json_string_value(json_array_get(args, 0));
    const char *reply = json_string_value(json_array_get(args, 1));
    if (!group || !reply)
        return;
    json_t *members = aemp_grp_get(group);
    aemp_snd(reply, json_pack("[o]", members ? members : json_array()));
}

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
