/* port.c - local ports: the port table, receive callbacks and tag dispatch,
 * sending, killing, and port context (SELF, die, peval, psub).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Remote half of snd/kil, implemented by the node layer. */
void aemp__remote_snd(const char *id, size_t nodelen, const char *name, size_t namelen, aemp_msg_t *msg);
/* Send the message of a flat format to a port of a connected node at
 * once, encoded straight from the format (ap left untouched): 0 if sent,
 * 1 if the node is not connected, -1 if the format is not flat (nothing
 * sent either way). */
int aemp__remote_snd_fmt(const char *id, size_t nodelen, const char *name, size_t namelen,
                         const char *fmt, va_list ap);
/* The same two for an ID a send resolved lately (the node layer's
 * destination cache): 1 if it is not known (or, for the format, its node
 * is not connected), nothing sent and msg still the caller's. */
int aemp__remote_snd_known(const char *id, aemp_msg_t *msg);
int aemp__remote_snd_fmt_known(const char *id, const char *fmt, va_list ap);
void aemp__remote_kil(const char *id, size_t nodelen, const char *name, size_t namelen, aemp_msg_t *reason);
/* Tell remote monitors that a local port died (node layer). */
void aemp__remote_port_died(aemp_lport_t *p, aemp_msg_t *reason);
int aemp__remote_monitored(aemp_lport_t *p);

static struct aemp_ctx *ctx_top;

/* ------------------------------------------------------------ port table */

/* The port table is open addressing over port pointers (8 bytes a slot;
 * the name's hash lives in the port), kept between 3/8 and 3/4 full. */
#define AEMP__PORT_GONE ((aemp_lport_t *)1)

static int tab_match(const aemp_lport_t *p, uint32_t h, const char *name, size_t len)
{
    return p->hash == h && aemp__same_key(p->name, p->namelen, name, len);
}

static void tab_resize(size_t cap)
{
    struct aemp_porttab *t = &aemp__g.ports;
    aemp_lport_t **old = t->slots;
    size_t oldcap = t->cap;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots)
        abort();
    t->cap = cap;
    t->dead = 0;
    for (size_t i = 0; i < oldcap; i++) {
        aemp_lport_t *p = old[i];
        if (!p || p == AEMP__PORT_GONE)
            continue;
        size_t j = p->hash & (cap - 1);
        while (t->slots[j])
            j = (j + 1) & (cap - 1);
        t->slots[j] = p;
    }
    free(old);
}

/* The port found last by name: messages from a peer mostly go to one
 * port after another, so a run of them skips the hash.  Cleared when that
 * port leaves the table. */
static aemp_lport_t *last_found;

static void tab_put(aemp_lport_t *p)
{
    struct aemp_porttab *t = &aemp__g.ports;
    if ((t->used + t->dead + 1) * 4 >= t->cap * 3)
        tab_resize(t->cap ? (t->used * 2 + 2 > t->cap ? t->cap * 2 : t->cap) : 64);
    size_t j = p->hash & (t->cap - 1);
    while (t->slots[j] && t->slots[j] != AEMP__PORT_GONE)
        j = (j + 1) & (t->cap - 1);
    if (t->slots[j] == AEMP__PORT_GONE)
        t->dead--;
    t->slots[j] = p;
    t->used++;
}

/* The slot holding the live port `name`, or NULL. */
static aemp_lport_t **tab_slot(const char *name, size_t len)
{
    struct aemp_porttab *t = &aemp__g.ports;
    if (!t->used)
        return NULL;
    uint32_t h = (uint32_t)aemp__hash(name, len);
    for (size_t j = h & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        aemp_lport_t *p = t->slots[j];
        if (!p)
            return NULL;
        if (p != AEMP__PORT_GONE && tab_match(p, h, name, len))
            return &t->slots[j];
    }
}

static void tab_del(aemp_lport_t *p)
{
    aemp_lport_t **slot = tab_slot(p->name, p->namelen);
    if (last_found == p)
        last_found = NULL;
    if (slot && *slot == p) {
        *slot = AEMP__PORT_GONE;
        aemp__g.ports.used--;
        aemp__g.ports.dead++;
    }
}

void aemp__ports_free_table(void)
{
    free(aemp__g.ports.slots);
    memset(&aemp__g.ports, 0, sizeof aemp__g.ports);
    last_found = NULL;
}

/* Ports found by the address of their own ID string: programs keep the
 * pointer aemp_port() returned and send to it again and again, so a
 * direct-mapped cache from that address to the port saves hashing and
 * comparing the ID on every send.  The ID storage belongs to the port and
 * never changes, so a hit needs no string comparison; an entry is dropped
 * when its port is freed. */
#define IDCACHE_SIZE 256
static struct idcache {
    const char *id;
    aemp_lport_t *p;
} idcache[IDCACHE_SIZE];

static inline struct idcache *idcache_slot(const char *id)
{
    return &idcache[((uintptr_t)id >> 4) & (IDCACHE_SIZE - 1)];
}

/* The port whose own ID string is at `id`, if it is cached; else NULL.
 * The cache is emptied when the node ID changes, so a cached ID is local. */
static inline aemp_lport_t *idcache_get(const char *id)
{
    struct idcache *c = idcache_slot(id);
    return c->id == id ? c->p : NULL;
}

void aemp__ports_nodeid_changed(void)
{
    memset(idcache, 0, sizeof idcache);
}

/* A new live port `name` with its ID built in place. */
static aemp_lport_t *port_alloc(const char *name, size_t len)
{
    size_t nl = aemp__g.nodeid_len;
    aemp_lport_t *p = malloc(offsetof(aemp_lport_t, id) + nl + 1 + len + 1);
    if (!p)
        abort();
    p->fn = NULL;
    p->arg = NULL;
    p->x = NULL;
    memcpy(p->id, aemp__g.nodeid, nl);
    p->id[nl] = '#';
    memcpy(p->id + nl + 1, name, len);
    p->id[nl + 1 + len] = 0;
    p->name = p->id + nl + 1;
    p->namelen = (uint32_t)len;
    p->hash = (uint32_t)aemp__hash(name, len);
    p->refs = 1;   /* the table's reference */
    p->dead = 0;
    tab_put(p);
    *idcache_slot(p->id) = (struct idcache){ p->id, p };
    return p;
}

aemp_lport_t *aemp__port_find(const char *name, size_t len)
{
    aemp_lport_t *p = last_found;
    if (p && aemp__same_key(p->name, p->namelen, name, len))
        return p;
    aemp_lport_t **slot = tab_slot(name, len);
    if (slot)
        last_found = *slot;
    return slot ? *slot : NULL;
}

aemp_lport_t *aemp__port_create_named(const char *name, size_t len)
{
    return port_alloc(name, len);
}

struct aemp_lport_ext *aemp__port_ext(aemp_lport_t *p)
{
    if (!p->x) {
        p->x = calloc(1, sizeof *p->x);
        if (!p->x)
            abort();
    }
    return p->x;
}

void aemp__port_ref(aemp_lport_t *p)
{
    p->refs++;
}

static void free_tags(aemp_lport_t *p)
{
    struct aemp_lport_ext *x = p->x;
    if (!x)
        return;
    for (size_t i = 0; i < x->ntags; i++)
        free(x->tags[i].tag);
    free(x->tags);
    x->tags = NULL;
    x->ntags = x->captags = 0;
}

void aemp__port_unref(aemp_lport_t *p)
{
    if (--p->refs)
        return;
    struct idcache *c = idcache_slot(p->id);
    if (c->p == p)
        *c = (struct idcache){ NULL, NULL };
    free_tags(p);
    if (p->x)
        free(p->x->rmon);
    free(p->x);
    free(p);
}

const char *aemp_port(aemp_rcv_fn fn, void *arg)
{
    aemp__ensure_init();
    char name[AEMP_PORT_NAME_MAX];
    size_t len = aemp__next_port_name(0, name);
    aemp_lport_t *p = port_alloc(name, len);
    p->fn = fn;
    p->arg = arg;
    return p->id;
}

/* Resolve a port ID for rcv: must be local, not the node port; created if
 * it does not exist yet. */
static int rcv_port(const char *port, aemp_lport_t **out)
{
    aemp__ensure_init();
    const char *name;
    size_t len;
    int r = aemp__local_port_name(port, &name, &len);
    if (r)
        return r;
    aemp_lport_t *p = aemp__port_find(name, len);
    *out = p ? p : aemp__port_create_named(name, len);
    return 0;
}

int aemp_rcv(const char *port, aemp_rcv_fn fn, void *arg)
{
    aemp_lport_t *p;
    int r = rcv_port(port, &p);
    if (r)
        return r;
    p->fn = fn;
    p->arg = arg;
    return 0;
}

int aemp_rcv_tag(const char *port, const char *tag, aemp_rcv_fn fn, void *arg)
{
    if (!tag)
        return AEMP_EINVAL;
    aemp_lport_t *p;
    int r = rcv_port(port, &p);
    if (r)
        return r;
    size_t tl = strlen(tag);
    struct aemp_lport_ext *x = p->x;
    for (size_t i = 0; x && i < x->ntags; i++) {
        if (x->tags[i].len == tl && memcmp(x->tags[i].tag, tag, tl) == 0) {
            if (fn) {
                x->tags[i].fn = fn;
                x->tags[i].arg = arg;
            } else {
                free(x->tags[i].tag);
                x->tags[i] = x->tags[--x->ntags];
            }
            return 0;
        }
    }
    if (!fn)
        return 0;
    x = aemp__port_ext(p);
    if (x->ntags == x->captags) {
        size_t cap = x->captags ? x->captags * 2 : 4;
        struct aemp_tagcb *t = realloc(x->tags, cap * sizeof *t);
        if (!t)
            abort();
        x->tags = t;
        x->captags = (uint32_t)cap;
    }
    char *copy = strdup(tag);
    if (!copy)
        abort();
    x->tags[x->ntags++] = (struct aemp_tagcb){ copy, tl, fn, arg };
    return 0;
}

/* ---------------------------------------------------------- snd and kil */

int aemp_snd(const char *port, aemp_msg_t *msg)
{
    if (!msg || aemp_val_type(aemp_msg_root(msg)) != AEMP_T_ARRAY) {
        aemp_msg_unref(msg);
        return AEMP_EINVAL;
    }
    aemp__ensure_init();
    aemp_lport_t *p = port ? idcache_get(port) : NULL;
    if (p) {
        aemp__job_msg(p, msg);   /* a dead port drops it at delivery */
        return 0;
    }
    if (port && aemp__remote_snd_known(port, msg) == 0)
        return 0;
    const char *name;
    size_t nodelen, len;
    int r = aemp__split_id(port, &nodelen, &name, &len);
    if (r < 0) {
        aemp_msg_unref(msg);
        return r;
    }
    if (r) {
        p = len ? aemp__port_find(name, len) : NULL;
        if (p)
            aemp__job_msg(p, msg);
        else
            aemp__job_msg_named(name, len, msg);   /* resolved at delivery */
    } else {
        aemp__remote_snd(port, nodelen, name, len, msg);
    }
    return 0;
}

/* aemp_sndf's fast path: a flat message to a port of a connected node is
 * encoded into the connection straight from the format and its arguments,
 * with no message laid out.  0 if sent, 1 if the port is not on a
 * connected node, -1 if the format is not flat (ap left untouched). */
static int sndf_now(const char *port, const char *fmt, va_list ap)
{
    if (!port || idcache_get(port))
        return 1;
    int known = aemp__remote_snd_fmt_known(port, fmt, ap);
    if (known != 1)
        return known;
    const char *name;
    size_t nodelen, len;
    if (aemp__split_id(port, &nodelen, &name, &len) != 0 || !len)
        return 1;
    return aemp__remote_snd_fmt(port, nodelen, name, len, fmt, ap);
}

int aemp_sndf(const char *port, const char *fmt, ...)
{
    if (!fmt)
        return AEMP_EINVAL;
    aemp__ensure_init();
    va_list ap;
    va_start(ap, fmt);
    aemp_flat_t flat;
    aemp_msg_t *msg;
    int now = sndf_now(port, fmt, ap);
    if (now == 0) {
        va_end(ap);
        return 0;
    }
    if (now > 0 && aemp__flat_scan(&flat, fmt, ap) == 0)   /* a local or waiting port */
        msg = aemp__flat_msg(&flat);
    else
        msg = aemp__vmsgf_built(fmt, ap);
    va_end(ap);
    if (!msg)
        return AEMP_EINVAL;
    return aemp_snd(port, msg);
}

int aemp_kil(const char *port, aemp_msg_t *reason)
{
    if (reason && aemp_val_type(aemp_msg_root(reason)) != AEMP_T_ARRAY) {
        aemp_msg_unref(reason);
        return AEMP_EINVAL;
    }
    aemp__ensure_init();
    const char *name;
    size_t len;
    int r = aemp__split_local(port, &name, &len);
    if (r >= 0 && !len)
        r = AEMP_ENODEPORT;
    if (r < 0) {
        aemp_msg_unref(reason);
        return r;
    }
    if (!reason)
        reason = aemp_msg_empty();
    if (r) {
        aemp_lport_t *p = aemp__port_find(name, len);
        if (p)
            aemp__job_kil(p, reason);
        else
            aemp_msg_unref(reason);   /* killing a nonexistent port: no-op */
    } else {
        aemp__remote_kil(port, aemp_node_len(port), name, len, reason);
    }
    return 0;
}

int aemp_kilf(const char *port, const char *fmt, ...)
{
    aemp_msg_t *reason = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        reason = aemp_vmsgf(fmt, ap);
        va_end(ap);
        if (!reason)
            return AEMP_EINVAL;
    }
    return aemp_kil(port, reason);
}

/* ------------------------------------------------------------- context */

const char *aemp_self(void)
{
    return ctx_top ? ctx_top->self : NULL;
}

void aemp_die(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    if (!ctx_top) {
        aemp_log(AEMP_LOG_ERROR, "aemp_die outside port context: %s", buf);
        return;
    }
    if (!ctx_top->die) {
        ctx_top->die = strdup(buf);
        if (!ctx_top->die)
            abort();
    }
}

struct aemp_ctx *aemp__ctx_get(void)
{
    return ctx_top;
}

void aemp__ctx_set(struct aemp_ctx *c)
{
    ctx_top = c;
}

void aemp__in_context(const char *self, void (*fn)(void *arg), void *arg)
{
    struct aemp_ctx c = { self, NULL, ctx_top };
    ctx_top = &c;
    fn(arg);
    ctx_top = c.prev;
    if (c.die) {
        if (aemp_kil(self, aemp_msgf("ss", "die", c.die)) != 0)
            aemp_log(AEMP_LOG_ERROR, "cannot kill %s after die: %s", self, c.die);
        free(c.die);
    }
}

int aemp_peval(const char *port, void (*fn)(void *arg), void *arg)
{
    if (!fn || !port)
        return AEMP_EINVAL;
    aemp__ensure_init();
    const char *name;
    size_t len;
    int r = aemp__split_local(port, &name, &len);
    if (r < 0)
        return r;
    /* the ID may be freed by what fn does (e.g. a kill): run on a copy */
    char *copy = strdup(port);
    if (!copy)
        abort();
    aemp__in_context(copy, fn, arg);
    free(copy);
    return 0;
}

struct aemp_psub {
    char *self;
    void (*fn)(void *arg, void *data);
    void *arg;
};

struct psub_call {
    aemp_psub_t *ps;
    void *data;
};

static void psub_trampoline(void *v)
{
    struct psub_call *c = v;
    c->ps->fn(c->ps->arg, c->data);
}

aemp_psub_t *aemp_psub(void (*fn)(void *arg, void *data), void *arg)
{
    if (!fn || !ctx_top)
        return NULL;
    aemp_psub_t *ps = malloc(sizeof *ps);
    if (!ps)
        abort();
    ps->self = strdup(ctx_top->self);
    if (!ps->self)
        abort();
    ps->fn = fn;
    ps->arg = arg;
    return ps;
}

void aemp_psub_call(aemp_psub_t *ps, void *data)
{
    struct psub_call c = { ps, data };
    aemp__in_context(ps->self, psub_trampoline, &c);
}

void aemp_psub_free(aemp_psub_t *ps)
{
    if (!ps)
        return;
    free(ps->self);
    free(ps);
}

/* ------------------------------------------------------------ delivery */

struct dispatch {
    aemp_rcv_fn fn;
    void *arg;
    aemp_msg_t *msg;
};

static void dispatch_trampoline(void *v)
{
    struct dispatch *d = v;
    d->fn(d->msg, d->arg);
}

/* The reason for a message that found no callback. */
static aemp_msg_t *unhandled_reason(const aemp_msg_t *msg)
{
    char tag[31];
    const aemp_val_t *t = aemp_msg_at(msg, 0);
    const char *src = "";
    char *text = NULL;
    size_t srclen = 0;
    if (aemp_val_str(t, &srclen))
        src = aemp_val_str(t, NULL);
    else if (t)
        srclen = strlen(src = text = aemp_val_text(t));
    size_t i;
    for (i = 0; i < 30 && i < srclen; i++)
        tag[i] = (src[i] >= 32 && src[i] < 127) ? src[i] : '.';
    tag[i] = 0;
    free(text);
    char buf[96];
    snprintf(buf, sizeof buf, "no callback found for message '%s'", tag);
    return aemp_msgf("ss", "unhandled_message", buf);
}

void aemp__port_deliver(aemp_lport_t *p, aemp_msg_t *msg)
{
    if (p->dead) {
        aemp_log(AEMP_LOG_DEBUG, "message to dead port %s dropped", p->id);
        aemp_msg_unref(msg);
        return;
    }
    struct dispatch d = { p->fn, p->arg, msg };
    struct aemp_lport_ext *x = p->x;
    if (x && x->ntags) {
        size_t l;
        const char *s = aemp_msg_tag(msg, &l);
        if (s) {
            for (size_t i = 0; i < x->ntags; i++) {
                if (x->tags[i].len == l && memcmp(x->tags[i].tag, s, l) == 0) {
                    d.fn = x->tags[i].fn;
                    d.arg = x->tags[i].arg;
                    break;
                }
            }
        }
    }
    if (!d.fn) {
        aemp__job_kil(p, unhandled_reason(msg));
        aemp_msg_unref(msg);
        return;
    }
    aemp__in_context(p->id, dispatch_trampoline, &d);
    aemp_msg_unref(msg);
}

void aemp__port_die(aemp_lport_t *p, aemp_msg_t *reason)
{
    if (p->dead) {
        aemp_msg_unref(reason);
        return;
    }
    p->dead = 1;
    tab_del(p);
    if (aemp_msg_len(reason) && !aemp__port_nmons(p) && !aemp__remote_monitored(p)) {
        char *text = aemp__msg_text(reason);
        aemp_log(AEMP_LOG_WARN, "unmonitored local port %s died with reason: %s", p->id, text);
        free(text);
    }
    free_tags(p);
    p->fn = NULL;
    if (aemp__port_fiber(p))
        aemp__fiber_port_died(p);   /* unwinds the fiber before monitors fire */
    if (p->x)
        aemp__monlist_fire(&p->x->mons, reason);
    aemp__remote_port_died(p, reason);
    aemp_msg_unref(reason);
    aemp__port_unref(p);   /* the table's reference */
}

void aemp__ports_clear(void)
{
    aemp__fibers_clear();
    struct aemp_porttab *t = &aemp__g.ports;
    for (size_t i = 0; i < t->cap; i++) {
        aemp_lport_t *p = t->slots[i];
        if (!p || p == AEMP__PORT_GONE)
            continue;
        t->slots[i] = AEMP__PORT_GONE;
        t->used--;
        t->dead++;
        p->dead = 1;
        if (p->x)
            aemp__monlist_clear(&p->x->mons);
        aemp__port_unref(p);
    }
}
