/* func.c - named functions: the registry that spawn, snd_to_func and
 * dynamic node-port requests resolve names in (a name that is not
 * registered is looked for in loadable modules, module.c); spawn itself. */
#include "internal.h"

#include "frame.h"   /* before node.h, which uses aemp_frame_t */
#include "module.h"
#include "node.h"

#include <stdlib.h>
#include <string.h>

typedef struct func {
    aemp_func_fn fn;
    void *arg;
    bool protocol;     /* part of the node protocol: allowed in secure mode */
    char name[];
} func_t;

static aemp_table_t funcs;

static func_t *put(const char *name, aemp_func_fn fn, void *arg, bool protocol);

int aemp_func_register(const char *name, aemp_func_fn fn, void *arg)
{
    if (!name || !*name || !fn)
        return AEMP_EINVAL;
    put(name, fn, arg, false);
    return 0;
}

void aemp__func_register_protocol(const char *name, aemp_func_fn fn, void *arg)
{
    put(name, fn, arg, true);
}

int aemp__func_is_protocol(const char *name)
{
    func_t *f = aemp__table_get(&funcs, name, strlen(name));
    return f && f->protocol;
}

/* Insert or replace a registry entry. */
static func_t *put(const char *name, aemp_func_fn fn, void *arg, bool protocol)
{
    size_t len = strlen(name);
    func_t *f = aemp__table_get(&funcs, name, len);
    if (!f) {
        f = malloc(sizeof *f + len + 1);
        if (!f)
            abort();
        memcpy(f->name, name, len + 1);
        aemp__table_put(&funcs, f->name, len, f);
    }
    f->fn = fn;
    f->arg = arg;
    f->protocol = protocol;
    return f;
}

int aemp_func_unregister(const char *name)
{
    if (!name)
        return AEMP_EINVAL;
    func_t *f = aemp__table_del(&funcs, name, strlen(name));
    if (!f)
        return AEMP_ENOFUNC;
    free(f);
    return 0;
}

int aemp__func_registered(const char *name)
{
    return aemp__table_get(&funcs, name, strlen(name)) != NULL;
}

int aemp__func_resolve(const char *name, char *err, size_t errlen)
{
    return aemp__module_resolve(name, err, errlen);
}

/* Resolves (loading modules); the reason of a load error is logged by
 * module.c, the caller reports "unable to resolve". */
int aemp__func_call(const char *name, aemp_msg_t *args)
{
    if (aemp__module_resolve(name, NULL, 0) < 0)
        return AEMP_ENOFUNC;
    func_t *f = aemp__table_get(&funcs, name, strlen(name));
    if (!f)
        return AEMP_ENOFUNC;
    f->fn(args, f->arg);
    return 0;
}

void aemp__funcs_clear(void)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&funcs, &pos, NULL, NULL, &v))
        free(v);
    aemp__table_free(&funcs);
}

/* ---------------------------------------------------------------- spawn */

typedef struct spawn_job {
    char *id;        /* full ID of the new port */
    char *func;
    aemp_msg_t *args;
    const char *error;   /* why func could not be resolved, or NULL */
} spawn_job_t;

/* 1 if our port with the full ID id exists (and is alive). */
static int port_exists(const char *id)
{
    const char *name = strchr(id, '#') + 1;
    aemp_lport_t *p = aemp__port_find(name, strlen(name));
    return p && !p->dead;
}

static void spawn_body(void *v)
{
    spawn_job_t *s = v;
    if (s->error)
        aemp_die("%s", s->error);
    else if (aemp__func_call(s->func, s->args) == AEMP_ENOFUNC)
        aemp_die("unable to resolve function '%s'", s->func);
    /* a death with no port to kill would go unseen: say it here */
    struct aemp_ctx *c = aemp__ctx_get();
    if (c->die && !port_exists(s->id))
        aemp_log(AEMP_LOG_ERROR, "spawn of %s: init function '%.256s' died before the port existed "
                 "(monitors see no_such_port): %s", s->id, s->func, c->die);
}

/* Run func(args) in the context of our port `name`, having created the
 * port first if create (local spawn), else leaving it to the function's
 * rcv (the node-port request).  Modules are loaded before entering port
 * context, so a module's init function never runs with SELF set. */
static void spawn_in(const char *name, size_t len, const char *func, aemp_msg_t *args, int create)
{
    char err[1024];
    int resolved = aemp__module_resolve(func, err, sizeof err) == 0;
    aemp_lport_t *p = aemp__port_find(name, len);
    if (!p && create)
        p = aemp__port_create_named(name, len);
    char *self = NULL;
    if (p) {
        aemp__port_ref(p);
    } else {
        size_t nl = aemp__g.nodeid_len;
        self = malloc(nl + 1 + len + 1);
        if (!self)
            abort();
        memcpy(self, aemp__g.nodeid, nl);
        self[nl] = '#';
        memcpy(self + nl + 1, name, len);
        self[nl + 1 + len] = 0;
    }
    spawn_job_t s = { p ? p->id : self, (char *)func, args, resolved ? NULL : err };
    aemp__in_context(s.id, spawn_body, &s);
    if (p)
        aemp__port_unref(p);
    free(self);
}

/* Local spawn: the port exists (without callbacks) before the init
 * function runs, so a failing or unknown function kills a real port and
 * the spawner's monitor sees why: ("die", "unable to resolve function
 * '<func>'") or the module load error. */
void aemp__spawn_local(const char *name, size_t len, const char *func, aemp_msg_t *args)
{
    spawn_in(name, len, func, args, 1);
}

void aemp__spawn_request(const char *name, size_t len, const char *func, aemp_msg_t *args)
{
    spawn_in(name, len, func, args, 0);
}

static void spawn_job(void *v)
{
    spawn_job_t *s = v;
    const char *name = strchr(s->id, '#') + 1;
    aemp__spawn_local(name, strlen(name), s->func, s->args);
    free(s->id);
    free(s->func);
    aemp_msg_unref(s->args);
    free(s);
}

/* 1 if m is a message whose root is an array (what may be sent). */
static int is_array_msg(const aemp_msg_t *m)
{
    return aemp_val_type(aemp_msg_root(m)) == AEMP_T_ARRAY;
}

char *aemp_spawn(const char *node, const char *func, aemp_msg_t *args)
{
    if (!func || !strstr(func, "::") || (args && !is_array_msg(args))) {
        aemp_msg_unref(args);
        return NULL;
    }
    aemp__ensure_init();
    const char *name;
    size_t namelen;
    int local = aemp__split_local(node, &name, &namelen);
    if (local < 0) {
        aemp_msg_unref(args);
        return NULL;
    }
    aemp_msg_t *req = NULL;
    char *portname = aemp__new_port_name(1);
    if (!local) {
        /* ["", "AnyEvent::MP::_spawn", portname, func, args...] */
        req = args ? aemp_msgf("ssm", portname, func, args) : aemp_msgf("ss", portname, func);
        aemp_msg_unref(args);
        if (!req) {   /* logged by aemp_msgf */
            free(portname);
            return NULL;
        }
    }
    size_t nodelen = aemp_node_len(node);
    size_t pl = strlen(portname);
    char *id = malloc(nodelen + 1 + pl + 1);
    if (!id)
        abort();
    memcpy(id, node, nodelen);
    id[nodelen] = '#';
    memcpy(id + nodelen + 1, portname, pl + 1);
    if (local) {
        /* always deferred: the init function never runs inside spawn */
        spawn_job_t *s = malloc(sizeof *s);
        if (!s || !(s->id = strdup(id)) || !(s->func = strdup(func)))
            abort();
        s->args = args ? args : aemp_msg_empty();
        s->error = NULL;
        aemp__job_call(spawn_job, s);
    } else {
        aemp__node_request(aemp__node_get(node, nodelen), "AnyEvent::MP::_spawn", req);
    }
    free(portname);
    return id;
}

int aemp_snd_to_func(const char *node, const char *func, aemp_msg_t *args)
{
    if (!func || !*func || (args && !is_array_msg(args))) {
        aemp_msg_unref(args);
        return AEMP_EINVAL;
    }
    aemp__ensure_init();
    size_t nodelen = node ? aemp_node_len(node) : 0;
    if (!nodelen) {
        aemp_msg_unref(args);
        return AEMP_EPORTID;
    }
    /* [func, args...] to the node port of that node */
    aemp_msg_t *msg = args ? aemp__msg_prepend_str(func, strlen(func), args) : aemp_msgf("s", func);
    aemp_msg_unref(args);
    if (!msg)
        return AEMP_EINVAL;
    char *nodeonly = strndup(node, nodelen);
    if (!nodeonly)
        abort();
    int r = aemp_snd(nodeonly, msg);
    free(nodeonly);
    return r;
}

int aemp_snd_on(const char *node, const char *port, aemp_msg_t *msg)
{
    if (!port || !msg || !is_array_msg(msg)) {
        aemp_msg_unref(msg);
        return AEMP_EINVAL;
    }
    aemp_msg_t *args = aemp__msg_prepend_str(port, strlen(port), msg);
    aemp_msg_unref(msg);
    if (!args)
        return AEMP_EINVAL;
    return aemp_snd_to_func(node, "snd", args);
}
