/* bench/mesh - how fast a network of N nodes forms and agrees.
 *
 * For N = 8, 16, 32: two seeds (global nodes) and N-3 workers are forked
 * as separate processes on 127.0.0.1; this process is node N.  Measured:
 *   mesh_join_<N>        seconds until every node's address ('l family)
 *                        is visible here
 *   mesh_db_agree_<N>    seconds until a database of 10,000 entries,
 *                        written by all workers together, is complete here
 *   db_set_latency_*     one db_set here until this node's monitor sees it
 *                        (to the master and back): median and p99
 * Then the scaling measurement of mesh_scale.c, N = 64 ... up to
 * $AEMP_BENCH_MESH_MAX (default 256; 4096 is the largest step);
 * "bench_mesh scale [max [min [G]]]" runs only that part, N from min to max,
 * with G global nodes (default 2).
 * Prints "RESULT <name> <value> <unit>" lines.  Every child is stopped by
 * its PID; every wait is bounded.  It runs itself with LD_BIND_NOW=1
 * (bind_now).
 */
#include <aemp.h>

#include "benchutil.h"
#include "mesh_scale.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENTRIES 10000
#define SECRET "bench-mesh"

/* "bench::fill" from first count: db_set count entries of family "bench". */
static void fill(aemp_msg_t *args, void *arg)
{
    int64_t first, count;
    if (aemp_msg_unpack(args, "II", &first, &count) != 0)
        return;
    for (int64_t i = first; i < first + count; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%lld", (long long)i);
        aemp_db_setf("bench", key, "I", i);
    }
}

/* A child node: configure, serve until SIGTERM. */
static void child(const char *nodeid, const char *binds, const char *seeds)
{
    aemp_set_log_level(1);
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b, s:i}", "nodeid", nodeid, "secret", SECRET,
                        "binds", binds, "seeds", seeds, "norc", 1, "connect_interval", 2) != 0) {
        fprintf(stderr, "%s: %s\n", nodeid, err);
        _exit(1);
    }
    aemp_func_register("bench::fill", fill, NULL);
    signal(SIGTERM, SIG_DFL);
    aemp_run();
    _exit(0);
}

static pid_t spawn_child(const char *nodeid, const char *binds, const char *seeds)
{
    pid_t pid = fork();
    if (pid == 0)
        child(nodeid, binds, seeds);
    return pid;
}

static aemp_msg_t *seen;   /* latest contents of the monitored family (root: a map) */
static void on_family(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted,
                      void *arg)
{
    aemp_msg_unref(seen);
    seen = aemp_msg_ref(family);
}

static size_t seen_size(void)
{
    return seen ? aemp_val_len(aemp_msg_root(seen)) : 0;
}

/* Run the loop until the monitored family has `want` keys or `limit` s. */
static double wait_size(size_t want, double limit)
{
    ev_tstamp t0 = ev_time();
    while (seen_size() < want && ev_time() - t0 < limit)
        ev_run(aemp_loop(), EVRUN_ONCE);
    return seen_size() >= want ? ev_time() - t0 : -1;
}

/* In a forked child: configure as node "observer" on 127.0.0.1:0 with
 * these seeds, quietly; _exit(1) on failure. */
static void configure_observer(const char *seeds)
{
    aemp_set_log_level(1);
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b}", "nodeid", "observer", "secret", SECRET,
                        "binds", "127.0.0.1:0", "seeds", seeds, "norc", 1) != 0)
        _exit(1);
}

static void run_mesh(int n)
{
    pid_t pids[64];
    int np = 0;
    char seeds[128], b1[64], b2[64];
    int p1 = mesh_free_port(), p2 = mesh_free_port();
    snprintf(b1, sizeof b1, "127.0.0.1:%d", p1);
    snprintf(b2, sizeof b2, "127.0.0.1:%d", p2);
    snprintf(seeds, sizeof seeds, "%s,%s", b1, b2);
    ev_tstamp t0 = ev_time();
    pids[np++] = spawn_child("seed1", b1, seeds);
    pids[np++] = spawn_child("seed2", b2, seeds);
    for (int i = 0; i < n - 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "w%d", i);
        pids[np++] = spawn_child(id, "127.0.0.1:0", seeds);
    }
    /* this process: the last node; its own configure is a fresh process
     * start too, so measure inside a child-of-ours: fork the observer */
    int fds[2];
    if (pipe(fds) < 0)
        abort();
    pid_t obs = fork();
    if (obs == 0) {
        close(fds[0]);
        configure_observer(seeds);
        aemp_handle_t h;
        aemp_db_mon("'l", on_family, NULL, &h);
        double join = wait_size((size_t)n, 60);
        if (join >= 0)
            join = ev_time() - t0;
        aemp_db_mon_cancel(h);
        aemp_msg_unref(seen);
        seen = NULL;
        /* workers write ENTRIES entries together */
        aemp_db_mon("bench", on_family, NULL, &h);
        ev_tstamp t1 = ev_time();
        int workers = n - 3, per = ENTRIES / workers;
        for (int i = 0; i < workers; i++) {
            char id[32];
            snprintf(id, sizeof id, "w%d", i);
            int count = i == workers - 1 ? ENTRIES - per * i : per;
            aemp_snd_to_func(id, "bench::fill", aemp_msgf("ii", per * i, count));
        }
        double agree = wait_size(ENTRIES, 120);
        if (agree >= 0)
            agree = ev_time() - t1;
        aemp_db_mon_cancel(h);
        char line[256];
        int len = snprintf(line, sizeof line, "%.3f %.3f\n", join, agree);
        if (write(fds[1], line, (size_t)len) < 0)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char buf[256] = { 0 };
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(fds[0]);
    bu_reap(obs, 200);   /* it gives up by itself after 180 s */
    double join = -1, agree = -1;
    sscanf(buf, "%lf %lf", &join, &agree);
    printf("RESULT mesh_join_%d %.3f s\n", n, join);
    printf("RESULT mesh_db_agree_%d %.3f s\n", n, agree);
    fflush(stdout);
    for (int i = 0; i < np; i++)
        kill(pids[i], SIGTERM);
    for (int i = 0; i < np; i++)
        bu_reap(pids[i], 5);
}

/* ------------------------------------------------------ db_set latency */

static int lat_seen;
static int64_t lat_want;
static void on_lat(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted, void *arg)
{
    const aemp_val_t *k = aemp_val_get(aemp_msg_root(family), "k");
    int64_t v;
    if (k && aemp_val_int(k, &v) == 0 && v == lat_want)
        lat_seen = 1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run_latency(void)
{
    char b1[64], seeds[64];
    snprintf(b1, sizeof b1, "127.0.0.1:%d", mesh_free_port());
    snprintf(seeds, sizeof seeds, "%s", b1);
    pid_t seed = spawn_child("seed1", b1, seeds);
    pid_t obs = fork();
    if (obs == 0) {
        configure_observer(seeds);
        aemp_handle_t h;
        aemp_db_mon("lat", on_lat, NULL, &h);
        enum { ROUNDS = 500 };
        static double t[ROUNDS];
        int done = 0;
        ev_tstamp start = ev_time();
        for (int i = 1; i <= ROUNDS && ev_time() - start < 60; i++) {
            lat_seen = 0;
            lat_want = i;
            ev_tstamp t0 = ev_time();
            aemp_db_setf("lat", "k", "i", i);
            while (!lat_seen && ev_time() - t0 < 5)
                ev_run(aemp_loop(), EVRUN_ONCE);
            if (lat_seen)
                t[done++] = (ev_time() - t0) * 1e6;
        }
        qsort(t, (size_t)done, sizeof t[0], cmp);
        if (done) {
            printf("RESULT db_set_latency_median %.0f us\n", t[done / 2]);
            printf("RESULT db_set_latency_p99 %.0f us\n", t[(size_t)(done * 0.99)]);
        }
        fflush(stdout);
        _exit(done ? 0 : 1);
    }
    bu_reap(obs, 120);   /* 500 rounds, each given up after 5 s, at most 60 s */
    kill(seed, SIGTERM);
    bu_reap(seed, 5);
}

/* Every node of the benchmark is a child forked from this process.  With
 * the libraries' symbols bound lazily, each child resolved the same ones
 * again on its first calls (ten of a worker's seventy page faults until it
 * is configured: the symbol tables it reads, the tables it writes): so the
 * benchmark runs itself again with LD_BIND_NOW=1, and the dynamic linker
 * binds them once, here, before the first fork.  A node started by exec
 * binds its symbols once either way. */
static void bind_now(char **argv)
{
    if (getenv("LD_BIND_NOW"))
        return;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return;   /* no /proc: run as it is */
    self[len] = 0;   /* the file itself, not the link: the process keeps its name */
    setenv("LD_BIND_NOW", "1", 1);
    execv(self, argv);
}

int main(int argc, char **argv)
{
    bind_now(argv);
    signal(SIGPIPE, SIG_IGN);
    const char *env = getenv("AEMP_BENCH_MESH_MAX");
    int scale_max = env ? atoi(env) : 256;
    if (argc > 1 && !strcmp(argv[1], "scale")) {   /* only the scaling part */
        mesh_scale_run(argc > 3 ? atoi(argv[3]) : 0, argc > 2 ? atoi(argv[2]) : scale_max,
                       argc > 4 ? atoi(argv[4]) : 2, SECRET);
        return 0;
    }
    int sizes[] = { 8, 16, 32 };
    int maxn = argc > 1 ? atoi(argv[1]) : 32;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i] <= maxn)
            run_mesh(sizes[i]);
    run_latency();
    mesh_scale_run(0, scale_max, 2, SECRET);
    return 0;
}
