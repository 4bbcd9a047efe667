/* bench/mesh_ceiling.h - the join storm of bench_mesh scale in bare TCP
 * (mesh_ceiling.c): the ceiling that the libaemp runs are compared to. */
#ifndef AEMP_BENCH_MESH_CEILING_H
#define AEMP_BENCH_MESH_CEILING_H

#include <sys/types.h>

#define CEIL_REC 16   /* bytes of an entry: a worker's name, zero-padded */

/* Fork the seed of a network of n workers, listening on 127.0.0.1 (its
 * port into *port); it writes "J <n> <time>" to report_fd once it has
 * every entry.  close_fd: a descriptor the child closes (-1: none).
 * Stop it by its PID (SIGTERM). */
pid_t mesh_ceiling_seed(int n, int report_fd, int close_fd, int *port);

/* Fork worker `index` of n, connecting to the seed at port; it writes
 * "A <index> <time>" to report_fd once it holds all n entries.  Stop it
 * by its PID (SIGTERM). */
pid_t mesh_ceiling_worker(int port, int index, int n, int report_fd, int close_fd);

#endif
