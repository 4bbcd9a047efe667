/* node.c - remote nodes (placeholder until the transport lands): every
 * remote operation behaves as if the connection failed at once. */
#include "internal.h"

#include <stdlib.h>

void aemp__node_init(void) {}
void aemp__node_shutdown(void) {}

void aemp__remote_snd(const char *id, size_t nodelen, const char *name, size_t namelen, json_t *msg)
{
    aemp_log(AEMP_LOG_WARN, "no transport to node %.*s: message dropped", (int)nodelen, id);
    json_decref(msg);
}

void aemp__remote_kil(const char *id, size_t nodelen, const char *name, size_t namelen, json_t *reason)
{
    json_decref(reason);
}

void aemp__remote_port_died(aemp_lport_t *p, json_t *reason) {}
int aemp__remote_monitored(aemp_lport_t *p) { return 0; }

static void fire_transport_error(void *v)
{
    aemp_monitor_t *m = v;
    if (m->cancelled) {
        aemp__table_del(&aemp__g.monitors, (const char *)&m->id, sizeof m->id);
        free(m->target);
        free(m);
        return;
    }
    aemp_monlist_t l = { 0 };
    aemp__monlist_add(&l, m);
    char node[256];
    aemp_node_of(m->target, node, sizeof node);
    json_t *reason = json_pack("[sss]", "transport_error", node, "no transport");
    aemp__monlist_fire(&l, reason);
    json_decref(reason);
}

void aemp__remote_mon(aemp_monitor_t *m, const char *id, size_t nodelen, const char *name, size_t namelen)
{
    m->target = strdup(id);
    aemp__job_call(fire_transport_error, m);
}

void aemp__remote_monlist_empty(aemp_monlist_t *l) {}

void aemp__node_port_request(const char *srcnode, json_t *msg)
{
    json_decref(msg);
}
