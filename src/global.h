/* global.h - internal interface of the global service (global.c). */
#ifndef AEMP_GLOBAL_H
#define AEMP_GLOBAL_H

#include "internal.h"
#include "proto.h"

/* Set up state (node init) / free it (shutdown). */
void aemp__global_init(void);
void aemp__global_shutdown(void);

/* After configure: register the g_* requests, publish our listeners in
 * family 'l, look for a master among the seeds. */
void aemp__global_start(void);

/* Turn this node into a global node (a seed that was contacted as one, or
 * that found itself in its seed list). */
void aemp__global_become(void);

/* Ask the master where node listens (answer: g_found). */
void aemp__global_find(const char *node);

/* Seeds (seed.c): the node IDs learned for the seed addresses (new
 * reference), and whether a node ID is one of them. */
json_t *aemp__seed_nodes(void);
int aemp__seed_is_node(const char *node);

/* The dialect of the connection to node (AEMP_DIALECT_*), 0 if none. */
unsigned aemp__node_dialect(const char *node);

/* 1.30 compatibility (global1.c). */
void aemp__global1_init(void);
void aemp__global1_start(void);
void aemp__global1_shutdown(void);
void aemp__global1_reg(const char *group, const char *port);
void aemp__global1_unreg(const char *group, const char *port);
/* Members of a group learned from 1.30 nodes: {port -> node} (borrowed). */
json_t *aemp__global1_members(const char *group);

/* Group membership may have changed (grp_mon callbacks re-check). */
void aemp__grp_changed(const char *group);

#endif
