/* bench/mesh_scale.h - the scaling part of bench/mesh (mesh_scale.c). */
#ifndef AEMP_BENCH_MESH_SCALE_H
#define AEMP_BENCH_MESH_SCALE_H

/* Run the scaling measurement for N = 64, 256, 1024, 2048, 4096 from min
 * up to max (and max itself), each with every worker watching and with
 * only one watcher, with `seeds` global nodes (2..8; each worker lists two
 * of them); prints RESULT lines.  secret: the network's secret. */
void mesh_scale_run(int min, int max, int seeds, const char *secret);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int mesh_free_port(void);

/* Wall-clock seconds (the same clock in every process). */
double mesh_wall(void);

/* Page faults of this process so far (a forked child's count from its
 * fork). */
double mesh_own_faults(void);

/* A child's report to the collector: the line "<kind> <index> <value>"
 * on fd, the write end of the report pipe (exits if it cannot write). */
void mesh_report(int fd, char kind, int index, double value);

#endif
