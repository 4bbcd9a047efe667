/* fanout_pace.h - when a global node sends a family's next change report
 * (g_chg2) to its subscribers: the pacing rule of the batched fan-out
 * (global.c), without I/O or clocks, so that it can be read and tested
 * alone.
 *
 * A report costs each subscriber about AEMP_FANOUT_WAKE, plus
 * AEMP_FANOUT_PER_KEY per key it handles (the keys of the report, or the
 * whole family for a subscriber whose reports copy it).  In a storm of
 * changes the reports of a family are spaced so that together they cost
 * the network at most `cpu` of one CPU (db_fanout_cpu), the libaemp global
 * nodes that share the subscribers each spending their share of it, and
 * never more than max_delay apart (db_fanout_max_delay).  The first change
 * after a quiet spell goes out at once.  When a storm ends -- the family
 * had no change for AEMP_FANOUT_QUIET -- what waits goes out early, but
 * no sooner than a quarter interval after the previous report: the storm's
 * last changes arrive within a quarter interval, and no pattern of
 * changes costs more than 4 x cpu.
 */
#ifndef AEMP_FANOUT_PACE_H
#define AEMP_FANOUT_PACE_H

#define AEMP_FANOUT_WAKE 20e-6      /* seconds a report costs a subscriber ... */
#define AEMP_FANOUT_PER_KEY 150e-9  /* ... plus this per key it handles */
#define AEMP_FANOUT_QUIET 0.02      /* seconds without a change that end a storm */
#define AEMP_FANOUT_EARLY 4         /* a storm's end is sent after interval / this */

#define AEMP_DEFAULT_DB_FANOUT_CPU 0.25       /* db_fanout_cpu: CPUs */
#define AEMP_DEFAULT_DB_FANOUT_MAX_DELAY 1.0  /* db_fanout_max_delay: seconds */

/* What the next report of a family costs, as one global node sees it. */
typedef struct aemp_fanout_cost {
    double subscribers;   /* this node's subscribers of the family */
    double costly;        /* of them, those whose reports copy the whole family */
    double family_keys;   /* keys in the family */
    double last_keys;     /* keys the previous report carried */
    double share;         /* libaemp global nodes up that share the fan-out, this one included */
} aemp_fanout_cost_t;

/* Seconds between two reports of the family in a storm: what one costs
 * all its subscribers, times share, divided by cpu (> 0), at most
 * max_delay; 0 without subscribers. */
double aemp__fanout_interval(const aemp_fanout_cost_t *c, double cpu, double max_delay);

/* When the waiting changes of a family are due: sent is when the previous
 * report went out, changed when the family last changed (both on one
 * clock), interval from aemp__fanout_interval.  A due time not after now
 * means now. */
double aemp__fanout_due(double sent, double changed, double interval);

#endif
