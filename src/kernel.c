/* kernel.c - the node port "": requests from other nodes (and our own)
 * in both dialects: mon1/mon0/kil0, kil (1.30) and kil1 (2.02), snd relays,
 * info/known_nodes/up_nodes (1.30), can (2.02), time, devnull, the
 * keepalive, AnyEvent::MP::_spawn, and named functions from the registry.
 *
 * The built-in requests live in one table (name, handler, whether another
 * node may use it in secure mode); every other tag is a named function.
 * Requests that answer take a reply specification as trailing arguments:
 * a port ID followed by elements to put before the results.
 */
#include "node.h"

#include <stdlib.h>
#include <string.h>

/* One request being handled: msg = [tag, args...]. */
typedef struct req {
    aemp_rnode_t *src;        /* the node it came from, NULL for our own */
    const char *from;         /* its node ID (ours for our own) */
    aemp_msg_t *msg;
    const char *s1;           /* element 1 if it is a string, else NULL */
    size_t l1;
} req_t;

/* Send (spec..., results...) to the port named by element `at` of the
 * request, where spec is the elements after it; results may be NULL. */
static void reply(const req_t *r, size_t at, const aemp_msg_t *results)
{
    const char *to = aemp_msg_str(r->msg, at, NULL);
    if (!to)
        return;   /* no reply wanted */
    aemp_build_t *b = aemp_build_new();
    for (size_t i = at + 1; i < aemp_msg_len(r->msg); i++)
        aemp_build_val(b, aemp_msg_at(r->msg, i));
    for (size_t i = 0; i < aemp_msg_len(results); i++)
        aemp_build_val(b, aemp_msg_at(results, i));
    aemp_msg_t *m = aemp_build_msg(b);
    if (m)
        aemp_snd(to, m);
}

/* reply() with a results message that is released afterwards. */
static void reply_new(const req_t *r, size_t at, aemp_msg_t *results)
{
    reply(r, at, results);
    aemp_msg_unref(results);
}

/* Our port ID "<nodeid>#<name>" (malloc'd). */
static char *local_id(const char *name, size_t len)
{
    char *id = malloc(aemp__g.nodeid_len + len + 2);
    if (!id)
        abort();
    memcpy(id, aemp__g.nodeid, aemp__g.nodeid_len);
    id[aemp__g.nodeid_len] = '#';
    memcpy(id + aemp__g.nodeid_len + 1, name, len);
    id[aemp__g.nodeid_len + 1 + len] = 0;
    return id;
}

static void req_nop(req_t *r)
{
}

static void req_mon1(req_t *r)
{
    if (!r->s1 || !r->src)
        return;
    aemp_lport_t *p = aemp__port_find(r->s1, r->l1);
    if (p && !p->dead) {
        aemp__node_rmon_add(r->src, p);
        return;
    }
    char *id = local_id(r->s1, r->l1);
    aemp_msg_t *reason = aemp__reason_no_such_port(id);
    aemp__node_request(r->src, "kil0", aemp_msgf("s#m", r->s1, r->l1, reason));
    aemp_msg_unref(reason);
    free(id);
}

static void req_mon0(req_t *r)
{
    if (r->s1 && r->src)
        aemp__node_rmon_del(r->src, r->s1, r->l1);
}

static void req_kil0(req_t *r)
{
    if (!r->s1 || !r->src)
        return;
    aemp_msg_t *reason = aemp__msg_slice(r->msg, 2);
    aemp__node_kil0(r->src, r->s1, r->l1, reason);
    aemp_msg_unref(reason);
}

static void req_kil(req_t *r)
{
    if (!r->s1 || !r->l1)
        return;
    char *id = local_id(r->s1, r->l1);
    aemp_kil(id, aemp__msg_slice(r->msg, 2));
    free(id);
}

static void req_snd(req_t *r)
{
    if (r->s1)
        aemp_snd(r->s1, aemp__msg_slice(r->msg, 2));
}

static void req_snd_multiple(req_t *r)
{
    for (size_t i = 1; i < aemp_msg_len(r->msg); i++) {
        const aemp_val_t *one = aemp_msg_at(r->msg, i);
        const char *to = aemp_val_str(aemp_val_at(one, 0), NULL);
        if (!to)
            continue;
        aemp_build_t *b = aemp_build_new();
        for (size_t k = 1; k < aemp_val_len(one); k++)
            aemp_build_val(b, aemp_val_at(one, k));
        aemp_msg_t *m = aemp_build_msg(b);
        if (m)
            aemp_snd(to, m);
    }
}

static void req_info(req_t *r)
{
    reply_new(r, 1, aemp_msgf("s", aemp__g.nodeid));
}

static void req_known_nodes(req_t *r)
{
    reply_new(r, 1, aemp__known_nodes());
}

static void req_up_nodes(req_t *r)
{
    reply_new(r, 1, aemp_up_nodes());
}

static int is_builtin(const char *tag, size_t len);

static void req_can(req_t *r)
{
    int can = r->s1 && (is_builtin(r->s1, r->l1) || aemp__func_exists(r->s1));
    reply_new(r, 2, aemp_msgf("s", can ? "1" : ""));
}

static void req_time(req_t *r)
{
    reply_new(r, 1, aemp_msgf("f", ev_time()));
}

static void req_eval(req_t *r)
{
    reply_new(r, 2, aemp_msgf("s", "eval is not supported: this node is libaemp, not Perl"));
    aemp_log(AEMP_LOG_WARN, "refused Perl eval request from %s", r->from);
}

/* Secure mode: another node may not make this node run a function (by
 * spawn or by name), except those of the node protocol itself. */
static int refused(const req_t *r, const char *func)
{
    if (!r->src || !aemp__g.net.secure || aemp__func_is_protocol(func))
        return 0;
    aemp_log(AEMP_LOG_WARN, "refused request from %s to run '%s': remote execution not allowed (secure mode)",
             r->from, func);
    return 1;
}

static void req_spawn(req_t *r)
{
    const char *func = aemp_msg_str(r->msg, 2, NULL);
    if (!r->s1 || !r->l1 || !func) {
        aemp_log(AEMP_LOG_ERROR, "error processing node message from %s: malformed _spawn", r->from);
        return;
    }
    if (refused(r, func))
        return;   /* the spawner's monitor sees no_such_port */
    aemp_msg_t *args = aemp__msg_slice(r->msg, 3);
    aemp__spawn_local(r->s1, r->l1, func, args);
    aemp_msg_unref(args);
}

/* The built-in requests. */
static const struct builtin {
    const char *tag;
    void (*fn)(req_t *r);
} builtins[] = {
    { "", req_nop },
    { "devnull", req_nop },
    { "mon1", req_mon1 },
    { "mon0", req_mon0 },
    { "kil0", req_kil0 },
    { "kil", req_kil },
    { "kil1", req_kil },
    { "snd", req_snd },
    { "snd_multiple", req_snd_multiple },
    { "info", req_info },
    { "known_nodes", req_known_nodes },
    { "up_nodes", req_up_nodes },
    { "can", req_can },
    { "time", req_time },
    { "eval", req_eval },
    { "AnyEvent::MP::_spawn", req_spawn },
};

static const struct builtin *find_builtin(const char *tag, size_t len)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strlen(builtins[i].tag) == len && memcmp(builtins[i].tag, tag, len) == 0)
            return &builtins[i];
    return NULL;
}

static int is_builtin(const char *tag, size_t len)
{
    return find_builtin(tag, len) != NULL;
}

static void handle(req_t *r)
{
    size_t tl = 0;
    const char *tag = aemp_msg_tag(r->msg, &tl);
    if (!tag)
        tag = "";
    r->s1 = aemp_msg_str(r->msg, 1, &r->l1);
    const struct builtin *b = find_builtin(tag, tl);
    if (b) {
        b->fn(r);
        return;
    }
    if (memchr(tag, 0, tl) || refused(r, tag))
        return;
    aemp_msg_t *args = aemp__msg_slice(r->msg, 1);
    if (aemp__func_call(tag, args) == AEMP_ENOFUNC)
        aemp_log(AEMP_LOG_ERROR, "error processing node message from %s: unable to resolve function '%s'",
                 r->from, tag);
    aemp_msg_unref(args);
}

void aemp__kernel_request(aemp_rnode_t *src, aemp_msg_t *msg)
{
    req_t r = { src, src ? src->id : aemp__g.nodeid, msg, NULL, 0 };
    const char *saved = aemp__g.srcnode;
    aemp__g.srcnode = r.from;
    handle(&r);
    aemp__g.srcnode = saved;
    aemp_msg_unref(msg);
}

void aemp__node_port_request(const char *srcnode, aemp_msg_t *msg)
{
    aemp__kernel_request(NULL, msg);
}

const char *aemp_srcnode(void)
{
    return aemp__g.srcnode;
}
