/* kernel.c - the node port "": requests from other nodes (and our own)
 * in both dialects: mon1/mon0/kil0, kil (1.30) and kil1 (2.02), snd relays,
 * info/known_nodes/up_nodes (1.30), can (2.02), time, devnull, the
 * keepalive, AnyEvent::MP::_spawn, and named functions from the registry.
 *
 * Requests that answer take a reply specification as trailing arguments:
 * a port ID followed by elements to put before the results.
 */
#include "node.h"

#include <stdlib.h>
#include <string.h>

/* Send (spec[1..], results...) to the port spec[0]; spec and results are
 * borrowed arrays (results may be NULL). */
static void reply(json_t *spec, json_t *results)
{
    json_t *to = json_array_get(spec, 0);
    if (!json_is_string(to))
        return;   /* no reply wanted */
    json_t *msg = json_array();
    for (size_t i = 1; i < json_array_size(spec); i++)
        json_array_append(msg, json_array_get(spec, i));
    if (results)
        json_array_extend(msg, results);
    aemp_snd(json_string_value(to), msg);
}

/* The elements of msg from index `from` on, as a new array. */
static json_t *slice(json_t *msg, size_t from)
{
    json_t *a = json_array();
    for (size_t i = from; i < json_array_size(msg); i++)
        json_array_append(a, json_array_get(msg, i));
    return a;
}

static const char *const builtins[] = {
    "", "devnull", "mon1", "mon0", "kil0", "kil", "kil1", "snd", "snd_multiple",
    "info", "known_nodes", "up_nodes", "can", "time", "eval", NULL,
};

static int is_builtin(const char *tag)
{
    for (int i = 0; builtins[i]; i++)
        if (strcmp(builtins[i], tag) == 0)
            return 1;
    return 0;
}

/* Secure mode: another node may not make this node run a function (by
 * spawn or by name), except those of the node protocol itself. */
static int refused(aemp_rnode_t *src, const char *from, const char *func)
{
    if (!src || !aemp__g.net.secure || aemp__func_is_protocol(func))
        return 0;
    aemp_log(AEMP_LOG_WARN, "refused request from %s to run '%s': remote execution not allowed (secure mode)",
             from, func);
    return 1;
}

static void do_kill(json_t *msg)
{
    json_t *name = json_array_get(msg, 1);
    if (!json_is_string(name) || !json_string_length(name))
        return;
    char *id = malloc(aemp__g.nodeid_len + 2 + json_string_length(name));
    if (!id)
        abort();
    strcpy(id, aemp__g.nodeid);
    strcat(id, "#");
    strcat(id, json_string_value(name));
    aemp_kil(id, slice(msg, 2));
    free(id);
}

static void handle(aemp_rnode_t *src, const char *from, json_t *msg)
{
    json_t *tagv = json_array_get(msg, 0);
    const char *tag = json_is_string(tagv) ? json_string_value(tagv) : "";
    json_t *arg1 = json_array_get(msg, 1);
    const char *s1 = json_is_string(arg1) ? json_string_value(arg1) : NULL;
    size_t l1 = s1 ? json_string_length(arg1) : 0;

    if (!*tag || !strcmp(tag, "devnull")) {
        return;
    } else if (!strcmp(tag, "mon1")) {
        if (!s1 || !src)
            return;
        aemp_lport_t *p = aemp__port_find(s1, l1);
        if (p && !p->dead) {
            aemp__node_rmon_add(src, p);
        } else {
            char *id = malloc(aemp__g.nodeid_len + l1 + 2);
            if (!id)
                abort();
            strcpy(id, aemp__g.nodeid);
            strcat(id, "#");
            strcat(id, s1);
            json_t *args = json_pack("[s]", s1);
            json_t *r = aemp__reason_no_such_port(id);
            json_array_extend(args, r);
            json_decref(r);
            aemp__node_request(src, "kil0", args);
            free(id);
        }
    } else if (!strcmp(tag, "mon0")) {
        if (s1 && src)
            aemp__node_rmon_del(src, s1, l1);
    } else if (!strcmp(tag, "kil0")) {
        if (s1 && src) {
            json_t *reason = slice(msg, 2);
            aemp__node_kil0(src, s1, l1, reason);
            json_decref(reason);
        }
    } else if (!strcmp(tag, "kil") || !strcmp(tag, "kil1")) {
        do_kill(msg);
    } else if (!strcmp(tag, "snd")) {
        if (s1)
            aemp_snd(s1, slice(msg, 2));
    } else if (!strcmp(tag, "snd_multiple")) {
        for (size_t i = 1; i < json_array_size(msg); i++) {
            json_t *one = json_array_get(msg, i);
            json_t *to = json_array_get(one, 0);
            if (json_is_string(to))
                aemp_snd(json_string_value(to), slice(one, 1));
        }
    } else if (!strcmp(tag, "info")) {
        json_t *spec = slice(msg, 1), *res = json_pack("[s]", aemp__g.nodeid);
        reply(spec, res);
        json_decref(spec);
        json_decref(res);
    } else if (!strcmp(tag, "known_nodes") || !strcmp(tag, "up_nodes")) {
        json_t *spec = slice(msg, 1);
        json_t *res = tag[0] == 'k' ? aemp__known_nodes() : aemp_up_nodes();
        reply(spec, res);
        json_decref(spec);
        json_decref(res);
    } else if (!strcmp(tag, "can")) {
        json_t *spec = slice(msg, 2);
        int can = s1 && (is_builtin(s1) || !strcmp(s1, "AnyEvent::MP::_spawn") || aemp__func_exists(s1));
        json_t *res = json_pack("[s]", can ? "1" : "");
        reply(spec, res);
        json_decref(spec);
        json_decref(res);
    } else if (!strcmp(tag, "time")) {
        json_t *spec = slice(msg, 1), *res = json_pack("[f]", ev_time());
        reply(spec, res);
        json_decref(spec);
        json_decref(res);
    } else if (!strcmp(tag, "eval")) {
        json_t *spec = slice(msg, 2);
        json_t *res = json_pack("[s]", "eval is not supported: this node is libaemp, not Perl");
        reply(spec, res);
        json_decref(spec);
        json_decref(res);
        aemp_log(AEMP_LOG_WARN, "refused Perl eval request from %s", from);
    } else if (!strcmp(tag, "AnyEvent::MP::_spawn")) {
        json_t *func = json_array_get(msg, 2);
        if (!s1 || !l1 || !json_is_string(func)) {
            aemp_log(AEMP_LOG_ERROR, "error processing node message from %s: malformed _spawn", from);
            return;
        }
        if (refused(src, from, json_string_value(func)))
            return;   /* the spawner's monitor sees no_such_port */
        json_t *args = slice(msg, 3);
        aemp__spawn_local(s1, l1, json_string_value(func), args);
        json_decref(args);
    } else {
        if (refused(src, from, tag))
            return;
        json_t *args = slice(msg, 1);
        if (aemp__func_call(tag, args) == AEMP_ENOFUNC)
            aemp_log(AEMP_LOG_ERROR, "error processing node message from %s: unable to resolve function '%s'",
                     from, tag);
        json_decref(args);
    }
}

void aemp__kernel_request(aemp_rnode_t *src, json_t *msg)
{
    const char *from = src ? src->id : aemp__g.nodeid;
    const char *saved = aemp__g.srcnode;
    aemp__g.srcnode = from;
    handle(src, from, msg);
    aemp__g.srcnode = saved;
    json_decref(msg);
}

void aemp__node_port_request(const char *srcnode, json_t *msg)
{
    aemp__kernel_request(NULL, msg);
}

const char *aemp_srcnode(void)
{
    return aemp__g.srcnode;
}
