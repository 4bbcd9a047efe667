/* mon.c - monitors: the four actions, one-shot firing, cancellation,
 * and attaching monitors to local ports (remote ports: node layer).
 *
 * Every monitor is in the registry (handle -> monitor) until it fires or is
 * cancelled.  A monitor of a local port is attached from the job queue, so
 * it keeps its order relative to messages and kills sent before it: monitoring
 * a port right after sending it a message that kills it reports
 * no_such_port, as in AnyEvent::MP.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Node layer: attach to a remote port or node; called with a fresh monitor. */
void aemp__remote_mon(aemp_monitor_t *m, const char *id, size_t nodelen, const char *name, size_t namelen);
/* Node layer: the last monitor left a remote list. */
void aemp__remote_monlist_empty(aemp_monlist_t *l);

aemp_msg_t *aemp__reason_no_such_port(const char *portid)
{
    return aemp_msgf("sss", "no_such_port", "cannot monitor nonexistent port", portid);
}

void aemp__monlist_add(aemp_monlist_t *l, aemp_monitor_t *m)
{
    m->list = l;
    m->next = NULL;
    m->prev = l->tail;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
    l->count++;
}

static void unlink_mon(aemp_monitor_t *m)
{
    aemp_monlist_t *l = m->list;
    if (!l)
        return;
    if (m->prev)
        m->prev->next = m->next;
    else
        l->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        l->tail = m->prev;
    l->count--;
    m->list = NULL;
    m->prev = m->next = NULL;
}

static void free_mon(aemp_monitor_t *m)
{
    free(m->rcvport);
    free(m->target);
    aemp_msg_unref(m->msg);
    free(m);
}

static void unregister(aemp_monitor_t *m)
{
    aemp__table_del(&aemp__g.monitors, (const char *)&m->id, sizeof m->id);
}

/* Run the action with reason (borrowed), then free the monitor. */
static void fire(aemp_monitor_t *m, aemp_msg_t *reason)
{
    unregister(m);
    switch (m->kind) {
    case AEMP_MON_CB:
        m->fn(reason, m->arg);
        break;
    case AEMP_MON_KIL:
        if (aemp_msg_len(reason))
            aemp_kil(m->rcvport, aemp_msg_ref(reason));
        break;
    case AEMP_MON_SND:
        aemp_snd(m->rcvport, aemp_msgf("mm", m->msg, reason));
        break;
    case AEMP_MON_GUARD:
        m->release(m->arg);
        break;
    }
    free_mon(m);
}

void aemp__monlist_fire(aemp_monlist_t *l, aemp_msg_t *reason)
{
    aemp_monitor_t *m;
    while ((m = l->head)) {
        unlink_mon(m);
        fire(m, reason);
    }
}

/* Discard without running the action (guards still release). */
static void discard(aemp_monitor_t *m)
{
    unlink_mon(m);
    unregister(m);
    if (m->kind == AEMP_MON_GUARD)
        m->release(m->arg);
    free_mon(m);
}

void aemp__monlist_clear(aemp_monlist_t *l)
{
    while (l->head)
        discard(l->head);
}

void aemp__monitors_clear(void)
{
    size_t pos = 0;
    void *v;
    while (aemp__table_next(&aemp__g.monitors, &pos, NULL, NULL, &v)) {
        aemp_monitor_t *m = v;
        if (m->cancelled) {   /* its guard already released */
            unregister(m);
            free_mon(m);
        } else {
            discard(m);
        }
    }
}

/* Queue job: attach a monitor to a local port, or fire no_such_port. */
static void attach_local(void *v)
{
    aemp_monitor_t *m = v;
    if (m->cancelled) {
        unregister(m);
        free_mon(m);
        return;
    }
    const char *name = strchr(m->target, '#') + 1;
    aemp_lport_t *p = aemp__port_find(name, strlen(name));
    if (p && !p->dead) {
        aemp__monlist_add(&aemp__port_ext(p)->mons, m);
    } else {
        aemp_msg_t *reason = aemp__reason_no_such_port(m->target);
        fire(m, reason);
        aemp_msg_unref(reason);
    }
}

/* Common part of the four forms: validate, register, attach. */
static int start(aemp_monitor_t *m, const char *port, aemp_handle_t *handle)
{
    aemp__ensure_init();
    const char *name;
    size_t len;
    int r = aemp__split_local(port, &name, &len);
    if (r < 0) {
        free_mon(m);
        return r;
    }
    m->id = aemp__new_handle();
    aemp__table_put(&aemp__g.monitors, (const char *)&m->id, sizeof m->id, m);
    if (handle)
        *handle = m->id;
    if (r && len) {
        m->target = strdup(port);
        if (!m->target)
            abort();
        aemp__job_call(attach_local, m);
    } else if (!r) {
        aemp__remote_mon(m, port, aemp_node_len(port), name, len);
    }
    /* a monitor of our own node ID never fires; it stays until cancelled */
    return 0;
}

static aemp_monitor_t *new_mon(enum aemp_mon_kind kind)
{
    aemp_monitor_t *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->kind = kind;
    return m;
}

int aemp_mon(const char *port, aemp_mon_fn fn, void *arg, aemp_handle_t *handle)
{
    if (!fn)
        return AEMP_EINVAL;
    aemp_monitor_t *m = new_mon(AEMP_MON_CB);
    m->fn = fn;
    m->arg = arg;
    return start(m, port, handle);
}

int aemp_mon_kil(const char *port, const char *rcvport, aemp_handle_t *handle)
{
    if (!rcvport && !(rcvport = aemp_self()))
        return AEMP_ENOSELF;
    aemp_monitor_t *m = new_mon(AEMP_MON_KIL);
    m->rcvport = strdup(rcvport);
    if (!m->rcvport)
        abort();
    return start(m, port, handle);
}

int aemp_mon_snd(const char *port, const char *rcvport, aemp_msg_t *msg, aemp_handle_t *handle)
{
    if (!rcvport || aemp_val_type(aemp_msg_root(msg)) != AEMP_T_ARRAY) {
        aemp_msg_unref(msg);
        return AEMP_EINVAL;
    }
    aemp_monitor_t *m = new_mon(AEMP_MON_SND);
    m->rcvport = strdup(rcvport);
    if (!m->rcvport)
        abort();
    m->msg = msg;
    return start(m, port, handle);
}

int aemp_mon_guard(const char *port, void (*release)(void *ptr), void *ptr, aemp_handle_t *handle)
{
    if (!release)
        return AEMP_EINVAL;
    aemp_monitor_t *m = new_mon(AEMP_MON_GUARD);
    m->release = release;
    m->arg = ptr;
    return start(m, port, handle);
}

int aemp_mon_cancel(aemp_handle_t handle)
{
    aemp__ensure_init();
    aemp_monitor_t *m = aemp__table_get(&aemp__g.monitors, (const char *)&handle, sizeof handle);
    if (!m || m->cancelled)
        return AEMP_ENOENT;
    aemp_monlist_t *l = m->list;
    if (m->kind == AEMP_MON_GUARD)
        m->release(m->arg);
    if (!l && m->target) {
        /* not attached yet: the pending attach job frees it */
        m->cancelled = true;
        return 0;
    }
    unregister(m);
    unlink_mon(m);
    free_mon(m);
    if (l && l->remote && !l->count)
        aemp__remote_monlist_empty(l);
    return 0;
}
