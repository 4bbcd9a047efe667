/* metrics.h - the optional `metrics` bind: aemp_stats() in the Prometheus
 * text format over HTTP (metrics.c). */
#ifndef AEMP_METRICS_H
#define AEMP_METRICS_H

#include "internal.h"

/* Serve GET /metrics (any path) on "ip:port"; writes the bound address to
 * bound.  0, or AEMP_EINVAL/AEMP_EIO with err set. */
int aemp__metrics_start(const char *addr, char *bound, size_t boundsize, char *err, size_t errlen);

/* Close the endpoint and its clients (shutdown). */
void aemp__metrics_stop(void);

#endif
