/* aemp_services.c - what every `aemp run` node offers to other nodes:
 * the named functions aemp::echo, aemp::sink, aemp::link and aemp::die
 * (for spawn),
 * and the well-known port "<nodeid>#echo".
 */
#include "aemp_cli.h"

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
void cli_services_register(void)
{
    aemp_func_register("aemp::echo", echo_init, NULL);
    aemp_func_register("aemp::sink", sink_init, NULL);
    aemp_func_register("aemp::link", link_init, NULL);
    aemp_func_register("aemp::die", die_init, NULL);
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
