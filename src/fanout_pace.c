/* fanout_pace.c - the pacing rule of the batched fan-out (fanout_pace.h). */
#include "fanout_pace.h"

double aemp__fanout_interval(const aemp_fanout_cost_t *c, double cpu, double max_delay)
{
    if (c->subscribers <= 0)
        return 0;
    double cost = c->subscribers * AEMP_FANOUT_WAKE +
                  AEMP_FANOUT_PER_KEY * (c->costly * c->family_keys + (c->subscribers - c->costly) * c->last_keys);
    double t = cost * (c->share > 1 ? c->share : 1) / cpu;
    return t < max_delay ? t : max_delay;
}

double aemp__fanout_due(double sent, double changed, double interval)
{
    double due = sent + interval;
    double storm_end = changed + AEMP_FANOUT_QUIET, earliest = sent + interval / AEMP_FANOUT_EARLY;
    double early = storm_end > earliest ? storm_end : earliest;
    return early < due ? early : due;
}
