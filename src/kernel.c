/* kernel.c - the node port "": requests from other nodes (and our own)
 * in both dialects: mon1/mon0/kil0, kil (1.30) and kil1 (2.02), snd relays,
 * info/known_nodes/up_nodes (1.30), can (2.02), time, devnull, the
 * keepalive, AnyEvent::MP::_spawn, the requests upper modules register
 * (the g_* of global.c), and named functions from the registry.
 *
 * Every request named in the table (kernel.h: name, argument shape,
 * dialects, secure mode) is checked against its shape before its handler
 * runs; a malformed one is ignored with one WARN line naming the sender,
 * the request and what was wrong (errors are never answered, as in
 * AnyEvent::MP).  Any other tag is a named function.  Requests that
 * answer take a reply specification as trailing arguments: a port ID
 * followed by elements to put before the results.
 */
#include "kernel.h"

#include "module.h"   /* aemp__func_registered, aemp__module_resolve, aemp__spawn_request */
#include "node.h"
#include "proto.h"    /* AEMP_DIALECT_* */

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One request being handled: msg = [tag, args...]. */
typedef struct aemp_kreq {
    aemp_rnode_t *src;        /* the node it came from, NULL for our own */
    const char *from;         /* its node ID (ours for our own) */
    aemp_msg_t *msg;
    const char *s1;           /* element 1 if it is a string, else NULL */
    size_t l1;
    size_t reply_at;          /* element of the reply port, 0: no reply wanted */
} req_t;

/* ------------------------------------------------------------ log lines */

/* How a value is described in a log line: "an integer", "a map", ... */
static const char *a_type(const aemp_val_t *v)
{
    switch (aemp_val_type(v)) {
    case AEMP_T_NULL:
        return "null";
    case AEMP_T_BOOL:
        return "a boolean";
    case AEMP_T_INT:
    case AEMP_T_UINT:
        return "an integer";
    case AEMP_T_DOUBLE:
        return "a floating-point number";
    case AEMP_T_STR:
        return "a string";
    case AEMP_T_BYTES:
        return "a byte string";
    case AEMP_T_ARRAY:
        return "an array";
    case AEMP_T_MAP:
        return "a map";
    }
    return "a value";
}

/* A value as a log line shows it (malloc'd): a string as its text with
 * what is not printable ASCII escaped as aemp_val_text escapes it (no
 * quotes: callers put it in '...'), other values as aemp_val_text writes
 * them; cut to about 60 characters. */
static char *shown(const aemp_val_t *v)
{
    char *t = aemp_val_text(v);
    size_t n = strlen(t);
    if (aemp_val_str(v, NULL) && n >= 2 && t[0] == '"' && t[n - 1] == '"') {
        memmove(t, t + 1, n - 2);
        t[n -= 2] = 0;
    }
    if (n > 64) {
        n = 60;
        while (n && ((unsigned char)t[n] & 0xc0) == 0x80)
            n--;   /* not inside a UTF-8 sequence */
        memcpy(t + n, "...", 4);
    }
    return t;
}

/* Log that the request r (whose name is shown as name) was malformed and
 * is ignored, with what was wrong. */
static void malformed(const req_t *r, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void malformed(const req_t *r, const char *name, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    aemp_log(AEMP_LOG_WARN, "malformed node-port request from %s ignored: %s: %s", r->from, name, why);
}

/* --------------------------------------------------------------- shapes */

/* "must be <want>, got <what v is>" into why; -1. */
static int wrong(char *why, size_t size, const char *want, const aemp_val_t *v)
{
    snprintf(why, size, "must be %s, got %s", want, a_type(v));
    return -1;
}

/* "'<v as shown>' <what>" into why; -1. */
static int bad_str(char *why, size_t size, const aemp_val_t *v, const char *what)
{
    char *t = shown(v);
    snprintf(why, size, "'%s' %s", t, what);
    free(t);
    return -1;
}

/* Does the value v fit the shape code c (kernel.h; 'R' is a reply port:
 * a port ID that, if remote, must name our node or one we know)?  0, or
 * -1 with what is wrong in why.  remote: the request came from another
 * node. */
static int fits(char c, const aemp_val_t *v, int remote, char *why, size_t size)
{
    aemp_type_t t = aemp_val_type(v);
    switch (c) {
    case 'v':
        return 0;
    case 'i':
        return t == AEMP_T_INT || t == AEMP_T_UINT ? 0 : wrong(why, size, "an integer", v);
    case 'a':
        return t == AEMP_T_ARRAY ? 0 : wrong(why, size, "an array", v);
    case 'A':
        return t == AEMP_T_ARRAY || t == AEMP_T_NULL ? 0 : wrong(why, size, "an array or null", v);
    case 'm':
        return t == AEMP_T_MAP ? 0 : wrong(why, size, "a map", v);
    case 'M':
        return t == AEMP_T_MAP || t == AEMP_T_NULL ? 0 : wrong(why, size, "a map or null", v);
    case 'r': {
        const aemp_val_t *to = aemp_val_at(v, 0);
        if (t != AEMP_T_ARRAY || !aemp_val_str(to, NULL))
            return wrong(why, size, "an array starting with a port ID", v);
        char inner[256];
        if (fits('P', to, remote, inner, sizeof inner) == 0)
            return 0;
        snprintf(why, size, "has a bad port ID: %s", inner);
        return -1;
    }
    default: {   /* s n p P R */
        size_t len;
        const char *s = aemp_val_str(v, &len);
        if (!s)
            return wrong(why, size, "a string", v);
        if (c == 's')
            return 0;
        if (!len) {
            snprintf(why, size, "must not be empty");
            return -1;
        }
        if (memchr(s, 0, len))
            return bad_str(why, size, v, "contains a NUL byte");
        if (c == 'p' && memchr(s, '#', len))
            return bad_str(why, size, v, "contains '#'");
        if (c == 'P' || c == 'R') {
            const char *name;
            size_t namelen;
            int local = aemp__split_local(s, &name, &namelen);
            if (local < 0)
                return bad_str(why, size, v, "is no port ID");
            if (c == 'R' && !local && remote && !aemp__node_find(s, aemp_node_len(s)))
                return bad_str(why, size, v, "names a node this node does not know");
        }
        return 0;
    }
    }
}

/* Label number k of a request (its labels, comma-separated) into out. */
static const char *label(const aemp_request_t *q, size_t k, char *out, size_t size)
{
    const char *p = q->labels ? q->labels : "";
    while (k && (p = strchr(p, ',')))
        p++, k--;
    size_t n = p ? strcspn(p, ",") : 0;
    if (!n)
        return "argument";
    snprintf(out, size, "%.*s", (int)n, p);
    return out;
}

/* Check the arguments of r (elements 1...) against the shape of q and
 * note where its reply port is.  0, or -1 with what is wrong in why. */
static int check_args(const aemp_request_t *q, req_t *r, char *why, size_t size)
{
    size_t n = aemp_msg_len(r->msg), el = 1, k = 0;
    int remote = r->src != NULL, optional = 0;
    char inner[400], lab[64];
    for (const char *c = q->shape; *c; c++, k++) {
        if (*c == '>') {
            if (el < n && fits('R', aemp_msg_at(r->msg, el), remote, inner, sizeof inner) < 0) {
                snprintf(why, size, "element %zu (reply port) %s", el, inner);
                return -1;
            }
            r->reply_at = el < n ? el : 0;
            return 0;
        }
        if (c[1] == '*') {
            for (; el < n; el++) {
                if (fits(*c, aemp_msg_at(r->msg, el), remote, inner, sizeof inner) < 0) {
                    snprintf(why, size, "element %zu (%s) %s", el, label(q, k, lab, sizeof lab), inner);
                    return -1;
                }
            }
            return 0;
        }
        if (c[1] == '?')
            optional = 1;
        if (el >= n) {
            if (optional)
                return 0;
            snprintf(why, size, "element %zu (%s) is missing", el, label(q, k, lab, sizeof lab));
            return -1;
        }
        if (fits(*c, aemp_msg_at(r->msg, el), remote, inner, sizeof inner) < 0) {
            snprintf(why, size, "element %zu (%s) %s", el, label(q, k, lab, sizeof lab), inner);
            return -1;
        }
        el++;
        if (c[1] == '?')
            c++;
    }
    if (el < n) {
        if (el == 1)
            snprintf(why, size, "takes no arguments, got %zu", n - 1);
        else
            snprintf(why, size, "takes %s%zu argument%s, got %zu", optional ? "at most " : "", el - 1,
                     el == 2 ? "" : "s", n - 1);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------- built-in requests */

/* Send (spec..., results...) to the reply port of r, where spec is the
 * elements after it; nothing if no reply is wanted.  results may be
 * NULL. */
static void reply(const req_t *r, const aemp_msg_t *results)
{
    if (!r->reply_at)
        return;
    const char *to = aemp_msg_str(r->msg, r->reply_at, NULL);
    aemp_build_t *b = aemp_build_new();
    for (size_t i = r->reply_at + 1; i < aemp_msg_len(r->msg); i++)
        aemp_build_val(b, aemp_msg_at(r->msg, i));
    for (size_t i = 0; i < aemp_msg_len(results); i++)
        aemp_build_val(b, aemp_msg_at(results, i));
    aemp_msg_t *m = aemp_build_msg(b);
    if (m)
        aemp_snd(to, m);
}

/* reply() with a results message that is released afterwards. */
static void reply_new(const req_t *r, aemp_msg_t *results)
{
    reply(r, results);
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
    if (!r->src)
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
    if (r->src)
        aemp__node_rmon_del(r->src, r->s1, r->l1);
}

static void req_kil0(req_t *r)
{
    if (!r->src)
        return;
    aemp_msg_t *reason = aemp__msg_slice(r->msg, 2);
    aemp__node_kil0(r->src, r->s1, r->l1, reason);
    aemp_msg_unref(reason);
}

/* kil (1.30) and kil1 (2.02): the port dies inside the request, as in
 * AnyEvent::MP (its monitors fire now), so a request after it in the same
 * read (a mon1) finds no port.  Killing a port that does not exist is a
 * no-op.  (aemp_kil from user code stays deferred.) */
static void req_kil(req_t *r)
{
    aemp_lport_t *p = aemp__port_find(r->s1, r->l1);
    if (p)
        aemp__port_die(p, aemp__msg_slice(r->msg, 2));
}

static void req_snd(req_t *r)
{
    aemp_snd(r->s1, aemp__msg_slice(r->msg, 2));
}

static void req_snd_multiple(req_t *r)
{
    for (size_t i = 1; i < aemp_msg_len(r->msg); i++) {
        const aemp_val_t *one = aemp_msg_at(r->msg, i);
        aemp_build_t *b = aemp_build_new();
        for (size_t k = 1; k < aemp_val_len(one); k++)
            aemp_build_val(b, aemp_val_at(one, k));
        aemp_msg_t *m = aemp_build_msg(b);
        if (m)
            aemp_snd(aemp_val_str(aemp_val_at(one, 0), NULL), m);
    }
}

static void req_info(req_t *r)
{
    reply_new(r, aemp_msgf("s", aemp__g.nodeid));
}

static void req_known_nodes(req_t *r)
{
    reply_new(r, aemp__known_nodes());
}

static void req_up_nodes(req_t *r)
{
    reply_new(r, aemp_up_nodes());
}

static const aemp_request_t *find_request(const char *name, size_t len);

/* From what exists now (a request, a registered function): nothing is
 * loaded to answer, so `can` never runs a module's code. */
static void req_can(req_t *r)
{
    int can = find_request(r->s1, r->l1) || (!memchr(r->s1, 0, r->l1) && aemp__func_registered(r->s1));
    reply_new(r, aemp_msgf("s", can ? "1" : ""));
}

static void req_time(req_t *r)
{
    reply_new(r, aemp_msgf("f", ev_time()));
}

/* libaemp's own: the node's counters and gauges (aemp_stats), one map. */
static void req_stats(req_t *r)
{
    aemp_msg_t *stats = aemp_stats();
    reply_new(r, aemp_msgf("v", aemp_msg_root(stats)));
    aemp_msg_unref(stats);
}

/* libaemp's own: set the log level at run time; replies the old one. */
static void req_loglevel(req_t *r)
{
    int64_t level = 0;
    aemp_val_int(aemp_msg_at(r->msg, 1), &level);
    int old = aemp_log_level();
    if (level < 0 || level > 9) {
        aemp_log(AEMP_LOG_WARN, "loglevel request from %s ignored: level %lld is not in 0..9", r->from,
                 (long long)level);
        reply_new(r, aemp_msgf("si", "log level must be 0..9", old));
        return;
    }
    aemp_set_log_level((int)level);
    aemp_log(AEMP_LOG_NOTICE, "log level set to %d (was %d) by %s", (int)level, old, r->from);
    reply_new(r, aemp_msgf("si", "", old));
}

static void req_eval(req_t *r)
{
    reply_new(r, aemp_msgf("s", "cannot evaluate: this node is libaemp, not Perl"));
    aemp_log(AEMP_LOG_WARN, "refused Perl eval request from %s", r->from);
}

/* Secure mode: another node may not make this node run a function (by
 * spawn or by name), except those of the node protocol itself.  func is
 * the function's name, fv the value it came in (for the log line). */
static int refused(const req_t *r, const char *func, const aemp_val_t *fv)
{
    if (!r->src || !aemp__g.net.secure || aemp__func_is_protocol(func))
        return 0;
    char *t = shown(fv);
    aemp_log(AEMP_LOG_WARN, "refused request from %s to run '%s': remote execution not allowed (secure mode)",
             r->from, t);
    free(t);
    return 1;
}

static void req_spawn(req_t *r)
{
    const char *func = aemp_msg_str(r->msg, 2, NULL);
    if (refused(r, func, aemp_msg_at(r->msg, 2)))
        return;   /* the spawner's monitor sees no_such_port */
    aemp_msg_t *args = aemp__msg_slice(r->msg, 3);
    aemp__spawn_request(r->s1, r->l1, func, args);
    aemp_msg_unref(args);
}

#define D130 AEMP_DIALECT_130
#define D202 AEMP_DIALECT_202
#define DBOTH AEMP_DIALECT_BOTH
#define YES AEMP_REQ_ALLOWED

/* The built-in requests (docs/protocol.md, "Node-port requests"). */
static const aemp_request_t builtins[] = {
    { "", "v*", "ignored", DBOTH, YES, NULL, req_nop },
    { "devnull", "v*", "ignored", DBOTH, YES, NULL, req_nop },
    { "mon1", "p", "port name", DBOTH, YES, NULL, req_mon1 },
    { "mon0", "p", "port name", DBOTH, YES, NULL, req_mon0 },
    { "kil0", "pv*", "port name,reason", DBOTH, YES, NULL, req_kil0 },
    { "kil", "pv*", "port name,reason", D130, YES, NULL, req_kil },
    { "kil1", "pv*", "port name,reason", D202, YES, NULL, req_kil },
    { "snd", "Pv*", "port ID,message", DBOTH, YES, NULL, req_snd },
    { "snd_multiple", "r*", "relay", D130, YES, NULL, req_snd_multiple },
    { "info", ">", "", D130, YES, NULL, req_info },
    { "known_nodes", ">", "", D130, YES, NULL, req_known_nodes },
    { "up_nodes", ">", "", D130, YES, NULL, req_up_nodes },
    { "can", "s>", "request name", D202, YES, NULL, req_can },
    { "time", ">", "", DBOTH, YES, NULL, req_time },
    { "stats", ">", "", DBOTH, YES, NULL, req_stats },
    { "loglevel", "i>", "level", DBOTH, YES, NULL, req_loglevel },
    { "eval", "s>", "Perl code", DBOTH, AEMP_REQ_REFUSED, NULL, req_eval },
    { "AnyEvent::MP::_spawn", "pnv*", "new port name,init function,init argument", DBOTH,
      AEMP_REQ_PROTOCOL_ONLY, NULL, req_spawn },
};

/* ---------------------------------------------------------------- table */

/* name -> const aemp_request_t *: the built-ins, then registered ones.
 * Process-wide, never freed (the entries are static). */
static aemp_table_t requests;

static void table_add(const aemp_request_t *q)
{
    aemp__table_put(&requests, q->name, strlen(q->name), (void *)q);
}

static void builtins_in(void)
{
    if (requests.used)
        return;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        table_add(&builtins[i]);
}

void aemp__kernel_register(const aemp_request_t *reqs, size_t n)
{
    builtins_in();
    for (size_t i = 0; i < n; i++) {
        const aemp_request_t *old = aemp__table_get(&requests, reqs[i].name, strlen(reqs[i].name));
        assert(!old || !old->builtin);
        (void)old;
        table_add(&reqs[i]);
    }
}

static const aemp_request_t *find_request(const char *name, size_t len)
{
    builtins_in();
    return aemp__table_get(&requests, name, len);
}

/* ------------------------------------------------------------- dispatch */

/* A request of the table: secure mode, shape, then its handler. */
/* The request's arguments (the elements after its tag).  When the
 * kernel holds the message's only reference, the message itself is
 * re-pointed and taken over (r->msg is NULL after it, so
 * aemp__kernel_request releases nothing); otherwise they are a copy and
 * r->msg stays referenced until the request is done.  Either way what
 * was read of r->msg (the tag) stays valid while the handler runs. */
static aemp_msg_t *take_args(req_t *r)
{
    if (!aemp__msg_sole(r->msg))
        return aemp__msg_slice(r->msg, 1);
    aemp_msg_t *args = aemp__msg_slice_own(r->msg, 1);
    r->msg = NULL;
    return args;
}

static void run_request(const aemp_request_t *q, req_t *r)
{
    if (r->src && aemp__g.net.secure && q->secure == AEMP_REQ_REFUSED) {
        aemp_log(AEMP_LOG_WARN, "refused %s request from %s: remote execution not allowed (secure mode)", q->name,
                 r->from);
        return;
    }
    char why[512];
    if (check_args(q, r, why, sizeof why) < 0) {
        malformed(r, q->name, "%s", why);
        return;
    }
    if (q->builtin) {
        q->builtin(r);
        return;
    }
    aemp_msg_t *args = take_args(r);
    q->fn(args, NULL);
    aemp_msg_unref(args);
}

/* Any other tag: a named function (loaded from a module if need be). */
static void run_function(req_t *r, const aemp_val_t *tag)
{
    size_t len;
    const char *name = aemp_val_str(tag, &len);
    if (memchr(name, 0, len)) {
        char *t = shown(tag);
        malformed(r, t, "the request name contains a NUL byte");
        free(t);
        return;
    }
    if (refused(r, name, tag))
        return;
    /* a miss says which module files it looked for, and where */
    char err[1024];
    if (aemp__module_resolve(name, err, sizeof err) < 0) {
        aemp_log(AEMP_LOG_ERROR, "error processing node message from %s: %s", r->from, err);
        return;
    }
    aemp_msg_t *args = take_args(r);   /* name stays valid (take_args) */
    aemp__func_call(name, args);
    aemp_msg_unref(args);
}

static void handle(req_t *r)
{
    const aemp_val_t *tag = aemp_msg_at(r->msg, 0);
    if (!tag)
        return;   /* [] is a keepalive */
    size_t tl;
    const char *name = aemp_val_str(tag, &tl);
    if (!name) {
        malformed(r, "(no name)", "element 0 (request name) must be a string, got %s", a_type(tag));
        return;
    }
    r->s1 = aemp_msg_str(r->msg, 1, &r->l1);
    const aemp_request_t *q = find_request(name, tl);
    if (q)
        run_request(q, r);
    else
        run_function(r, tag);
}

void aemp__kernel_request(aemp_rnode_t *src, aemp_msg_t *msg)
{
    req_t r = { src, src ? src->id : aemp__g.nodeid, msg, NULL, 0, 0 };
    const char *saved = aemp__g.srcnode;
    aemp__g.srcnode = r.from;
    handle(&r);   /* may take over the message (r.msg = NULL) */
    aemp__g.srcnode = saved;
    aemp_msg_unref(r.msg);
}

void aemp__node_port_request(const char *srcnode, aemp_msg_t *msg)
{
    aemp__kernel_request(NULL, msg);
}

const char *aemp_srcnode(void)
{
    return aemp__g.srcnode;
}
