/* bench/mesh_scale.c - how a network of N worker processes scales.
 *
 * Two seeds (global nodes; G of them with "scale MAX MIN G"), one observer
 * node and N workers, each a forked process on 127.0.0.1.  Every seed lists
 * all G seeds.  With G = 2 every node lists seed1, seed2 (seed1 is every
 * worker's master); with G > 2 worker i lists two, seeds i mod G and
 * i+1 mod G (its master is the first while it is up), so each global node
 * is the master of N/G workers and is connected to 2N/G of them.  Every worker db_regs one port in family
 * "scale" and (unless only one watcher is measured) db_mons that family
 * (with aemp_db_mon_changes; $AEMP_BENCH_MESH_FULL=1: with aemp_db_mon);
 * the observer watches "scale" and "'l".  Every process reports what it
 * saw through one pipe as lines "<kind> <index> <value>" (kind: J the
 * observer's 'l is complete, A the family has N entries, C it has N - k
 * after the kill, R it has N again after the restart, L/M first-message
 * latency median/max in µs; F the worker's page faults from its fork
 * until it is configured, G until it has N entries); times are
 * wall-clock seconds, comparable across processes.  The phases:
 *   start     fork the workers; join and agree are counted from the
 *             moment the last one is forked
 *   kill      SIGKILL every tenth worker (k of them); cleanup counts from
 *             the kill until the watchers have N - k entries
 *   rejoin    restart them under the same node IDs; until every watcher
 *             has N entries again
 * plus seed RSS (the largest) and CPU (all seeds) from /proc, connections (sockets of every process,
 * less listeners, halved), median worker RSS, first-message latency from
 * the observer to workers it never contacted, and the kernel's listen-
 * queue overflows (/proc/net/netstat) before and after.  Every process is
 * stopped by its PID; every wait is bounded.  $AEMP_BENCH_MESH_PERF=<prefix>
 * records a perf profile of seed1 per run (see perf_start);
 * $AEMP_BENCH_MESH_LOG=<level> sets every node's log level (default 1);
 * $AEMP_BENCH_MESH_ONLY=all, one or ceiling runs only that variant.
 *
 * After each run with every worker watching, the same storm in bare TCP
 * (mesh_ceiling.c: one seed, N workers that send their entry and count
 * the distinct entries they receive, the same fan-out rule, nothing else)
 * as RESULT scale_ceiling_*: what the communication alone costs here.
 */
#include "mesh_scale.h"

#include "mesh_ceiling.h"

#include <aemp.h>

#include "benchutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define FAMILY "scale"
#define PINGS 20
#define MAX_SEEDS 8

int mesh_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(fd, (struct sockaddr *)&sin, sizeof sin);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

double mesh_wall(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

double mesh_own_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)(ru.ru_minflt + ru.ru_majflt) : -1;
}

void mesh_report(int fd, char kind, int index, double value)
{
    char line[64];
    int len = snprintf(line, sizeof line, "%c %d %.6f\n", kind, index, value);
    if (write(fd, line, (size_t)len) != len)
        _exit(3);
}

/* ------------------------------------------------------------ children */

static struct {
    const char *secret;
    const char *seeds;     /* the seed list of the next process forked */
    int nseeds;            /* G */
    char seed_addr[MAX_SEEDS][32];
    char seeds_all[MAX_SEEDS * 32];
    char seeds_pair[MAX_SEEDS][64];
    int n, k;              /* workers, of which k are killed */
    int report_fd;         /* write end of the report pipe */
    int ctl_fd;            /* observer: read end of its control pipe */
    int index;             /* this child's worker index, n = observer */
    int phase;             /* 0: wants N, 1: wants N - k, 2: wants N again */
    double pong;           /* observer: when the last pong came, or 0 */
} S;

static void report(char kind, double value)
{
    mesh_report(S.report_fd, kind, S.index, value);
}

/* db_mon of "scale": report when the size reaches the phase's target.  A
 * watcher monitors with aemp_db_mon_changes and counts the entries from
 * the changes (family is NULL), or with aemp_db_mon and reads the size of
 * the family it is handed (AEMP_BENCH_MESH_FULL=1: every report copies the
 * whole family). */
static int scale_size;
static void on_scale(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted, void *arg)
{
    if (family)
        scale_size = (int)aemp_val_len(aemp_msg_root(family));
    else
        scale_size += (int)aemp_msg_len(added) - (int)aemp_msg_len(deleted);
    int size = scale_size;
    if (S.phase == 0 && size == S.n) {
        report('A', mesh_wall());
        report('G', mesh_own_faults());
        S.phase = 1;
    } else if (S.phase == 1 && size == S.n - S.k) {
        report('C', mesh_wall());
        S.phase = 2;
    } else if (S.phase == 2 && size == S.n) {
        report('R', mesh_wall());
        S.phase = 3;
    }
}

/* db_mon of "'l" (observer): every node's address is known. */
static void on_listeners(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted,
                         void *arg)
{
    static int done;
    if (!done && (int)aemp_val_len(aemp_msg_root(family)) >= S.n + 3) {
        done = 1;
        report('J', mesh_wall());
    }
}

/* "bench::ping" [port]: answer to port. */
static void ping(aemp_msg_t *args, void *arg)
{
    const char *port = aemp_msg_str(args, 0, NULL);
    if (port)
        aemp_sndf(port, "s", "pong");
}

static void on_pong(aemp_msg_t *msg, void *arg)
{
    S.pong = mesh_wall();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Observer: one message to each of PINGS workers it never talked to
 * (never killed ones), timed to the answer; reports L (median), M (max). */
static void first_messages(void)
{
    const char *me = aemp_port(on_pong, NULL);
    double t[PINGS];
    int done = 0;
    for (int i = 0; i < PINGS; i++) {
        int w = 1 + (int)((long)i * (S.n - 1) / PINGS);
        if (w % 10 == 0)
            w++;
        if (w >= S.n)
            continue;
        char id[32];
        snprintf(id, sizeof id, "w%d", w);
        S.pong = 0;
        double t0 = mesh_wall();
        aemp_snd_to_func(id, "bench::ping", aemp_msgf("s", me));
        while (!S.pong && mesh_wall() - t0 < 5)
            ev_run(aemp_loop(), EVRUN_ONCE);
        if (S.pong)
            t[done++] = (S.pong - t0) * 1e6;
    }
    qsort(t, (size_t)done, sizeof t[0], cmp_double);
    report('L', done ? t[done / 2] : -1);
    report('M', done ? t[done - 1] : -1);
}

static void on_ctl(EV_P_ ev_io *w, int revents)
{
    char c;
    if (read(w->fd, &c, 1) != 1) {
        ev_io_stop(EV_A_ w);
        return;
    }
    first_messages();
}

/* A forked child: node `id` (bound to bind) of the network; a worker
 * (index < n) db_regs a port, watches if `watch`; the observer watches. */
static void node_main(const char *id, const char *bind, int index, int watch, int phase)
{
    bu_child_safety();
    aemp_tune_malloc();   /* as the aemp tool does */
    S.index = index;
    S.phase = phase;
    aemp_set_log_level(getenv("AEMP_BENCH_MESH_LOG") ? atoi(getenv("AEMP_BENCH_MESH_LOG")) : 1);
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b}", "nodeid", id, "secret", S.secret,
                        "binds", bind, "seeds", S.seeds, "norc", 1) != 0) {
        fprintf(stderr, "%s: %s\n", id, err);
        _exit(1);
    }
    signal(SIGTERM, SIG_DFL);
    if (phase == 0)
        report('F', mesh_own_faults());
    aemp_handle_t h;
    static ev_io ctl;
    if (index == S.n) {
        aemp_db_mon("'l", on_listeners, NULL, &h);
        ev_io_init(&ctl, on_ctl, S.ctl_fd, EV_READ);
        ev_io_start(aemp_loop(), &ctl);
    } else if (index >= 0) {
        aemp_func_register("bench::ping", ping, NULL);
        aemp_db_reg(FAMILY, aemp_port(on_pong, NULL), NULL, &h);
    }
    if (watch) {
        const char *full = getenv("AEMP_BENCH_MESH_FULL");
        if (full && *full == '1')
            aemp_db_mon(FAMILY, on_scale, NULL, &h);
        else
            aemp_db_mon_changes(FAMILY, on_scale, NULL, &h);
    }
    aemp_run();
    _exit(0);
}

/* Fork node `id`; its seeds: all of them for a seed (index < 0), else the
 * pair of worker `index` (the observer's: pair 0). */
static pid_t spawn(const char *id, const char *bind, int index, int watch, int phase, int close_fd)
{
    S.seeds = index < 0 ? S.seeds_all : S.seeds_pair[index < S.n ? index % S.nseeds : 0];
    pid_t pid = fork();
    if (pid == 0) {
        if (close_fd >= 0)
            close(close_fd);
        node_main(id, bind, index, watch, phase);
    }
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    return pid;
}

/* ------------------------------------------------------------ collector */

#define SLOTS 6   /* kinds of per-index reports (kind_slot) */

typedef struct {
    int n;
    double *t[SLOTS];      /* A, C, R, J, F, G per index (n = observer); 0: not yet */
    int count[SLOTS];
    double lat[2];         /* L, M */
    char buf[4096];
    size_t used;
    int fd;
} collect_t;

/* A collector of reports from n workers and the observer (index n) on
 * the read end fd of their pipe; collect_free frees it. */
static void collect_init(collect_t *c, int n, int fd)
{
    *c = (collect_t){ .n = n, .fd = fd };
    for (int s = 0; s < SLOTS; s++)
        c->t[s] = calloc((size_t)n + 1, sizeof(double));
}

static void collect_free(collect_t *c)
{
    for (int s = 0; s < SLOTS; s++)
        free(c->t[s]);
}

static int kind_slot(char kind)
{
    switch (kind) {
    case 'A': return 0;
    case 'C': return 1;
    case 'R': return 2;
    case 'J': return 3;
    case 'F': return 4;
    case 'G': return 5;
    default: return -1;
    }
}

static void collect_line(collect_t *c, const char *line)
{
    char kind;
    int idx;
    double v;
    if (sscanf(line, "%c %d %lf", &kind, &idx, &v) != 3 || idx < 0 || idx > c->n)
        return;
    if (kind == 'L' || kind == 'M') {
        c->lat[kind == 'M'] = v;
        return;
    }
    int s = kind_slot(kind);
    if (s >= 0 && !c->t[s][idx]) {
        c->t[s][idx] = v;
        c->count[s]++;
    }
}

/* Read reports until `cond` holds or `limit` seconds passed; returns 1 if
 * it holds. */
static int collect_until(collect_t *c, int (*cond)(const collect_t *, const void *), const void *arg, double limit)
{
    double t0 = bu_now();
    while (!cond(c, arg)) {
        double left = limit - (bu_now() - t0);
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t got = read(c->fd, c->buf + c->used, sizeof c->buf - 1 - c->used);
        if (got <= 0)
            continue;
        c->used += (size_t)got;
        c->buf[c->used] = 0;
        char *start = c->buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = 0;
            collect_line(c, start);
            start = nl + 1;
        }
        c->used -= (size_t)(start - c->buf);
        memmove(c->buf, start, c->used);
    }
    return 1;
}

typedef struct {
    int slot, want;
} want_t;

static int have_count(const collect_t *c, const void *arg)
{
    const want_t *w = arg;
    return c->count[w->slot] >= w->want;
}

static int have_latency(const collect_t *c, const void *arg)
{
    return c->lat[1] != 0;
}

/* The latest time in slot since `since` (-1 if none reported). */
/* The median of the times in slot, after since (-1 if none). */
static double median(const collect_t *c, int slot, double since)
{
    double *t = malloc((size_t)(c->n + 1) * sizeof *t);
    int k = 0;
    for (int i = 0; t && i <= c->n; i++)
        if (c->t[slot][i])
            t[k++] = c->t[slot][i] - since;
    qsort(t, (size_t)k, sizeof *t, cmp_double);
    double m = k ? t[k / 2] : -1;
    free(t);
    return m;
}

static double latest(const collect_t *c, int slot, double since)
{
    double m = -1;
    for (int i = 0; i <= c->n; i++)
        if (c->t[slot][i] && c->t[slot][i] - since > m)
            m = c->t[slot][i] - since;
    return m;
}

/* ------------------------------------------------------------ /proc */

/* A number from a /proc/net file of "Prefix: names" / "Prefix: values"
 * line pairs (netstat, snmp), or -1. */
static long proc_net_counter(const char *file, const char *prefix, const char *name)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    char names[4096], values[4096];
    long result = -1;
    size_t plen = strlen(prefix);
    while (result < 0 && fgets(names, sizeof names, f) && fgets(values, sizeof values, f)) {
        if (strncmp(names, prefix, plen))
            continue;
        char *sn, *sv;
        char *n = strtok_r(names, " \n", &sn), *v = strtok_r(values, " \n", &sv);
        while ((n = strtok_r(NULL, " \n", &sn)) && (v = strtok_r(NULL, " \n", &sv)))
            if (!strcmp(n, name)) {
                result = atol(v);
                break;
            }
    }
    fclose(f);
    return result;
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* User + system CPU seconds of pid, or -1. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The machine's busy CPU seconds so far (/proc/stat: every CPU's user,
 * nice, system, irq and softirq time), or -1: with nothing else running,
 * the difference over a phase is the work the network did in it. */
static double machine_busy(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long us, ni, sy, id, io, irq, sirq;
    int got = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &us, &ni, &sy, &id, &io, &irq, &sirq) : 0;
    if (f)
        fclose(f);
    return got == 7 ? (double)(us + ni + sy + irq + sirq) / (double)sysconf(_SC_CLK_TCK) : -1;
}

/* The machine's page faults so far (pgfault of /proc/vmstat), or -1. */
static long machine_faults(void)
{
    FILE *f = fopen("/proc/vmstat", "r");
    char name[64];
    long v, faults = -1;
    while (f && fscanf(f, "%63s %ld", name, &v) == 2)
        if (!strcmp(name, "pgfault"))
            faults = v;
    if (f)
        fclose(f);
    return faults;
}

/* The machine's busy CPU seconds and page faults at one moment. */
typedef struct {
    double busy;
    long faults;
} meter_t;

static meter_t meter_now(void)
{
    return (meter_t){ machine_busy(), machine_faults() };
}

/* CPU seconds and faults from a to b, -1 if either was unreadable. */
static double meter_cpu(meter_t a, meter_t b)
{
    return a.busy >= 0 && b.busy >= 0 ? b.busy - a.busy : -1;
}

static double meter_faults(meter_t a, meter_t b)
{
    return a.faults >= 0 && b.faults >= 0 ? (double)(b.faults - a.faults) : -1;
}

/* Sockets held by pid. */
static int sockets_of(pid_t pid)
{
    char path[64], link[320], target[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len > 7 && !strncmp(target, "socket:", 7))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ profile */

/* With $AEMP_BENCH_MESH_PERF set to a path prefix, `perf record -g` of
 * seed1 for the whole run into <prefix>-<n>.data; returns perf's PID or
 * 0.  Stopped by perf_stop. */
static pid_t perf_start(pid_t seed, int n, int all)
{
    const char *prefix = getenv("AEMP_BENCH_MESH_PERF");
    if (!prefix || !*prefix)
        return 0;
    char out[512], target[32];
    snprintf(out, sizeof out, "%s-%s%d.data", prefix, all ? "" : "one-", n);
    snprintf(target, sizeof target, "%d", (int)seed);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("perf", "perf", "record", "-q", "-g", "-p", target, "-o", out, (char *)NULL);
        _exit(127);
    }
    return pid > 0 ? pid : 0;
}

static void perf_stop(pid_t pid)
{
    if (pid) {
        kill(pid, SIGINT);
        bu_reap(pid, 30);
    }
}

/* ------------------------------------------------------------ one run */

/* RESULT scale[1][_gG]_<what>_<n>: "1" with one watcher, _gG with G != 2
 * global nodes. */
static void result(const char *what, int all, int n, double v, const char *unit)
{
    char g[16] = "";
    if (S.nseeds != 2)
        snprintf(g, sizeof g, "_g%d", S.nseeds);
    printf("RESULT scale%s%s_%s_%d %.3f %s\n", all ? "" : "1", g, what, n, v, unit);
    fflush(stdout);
}

/* The largest RSS of the seeds in MiB, and their CPU seconds together. */
static double seeds_rss(const pid_t *seed)
{
    long m = 0;
    for (int i = 0; i < S.nseeds; i++)
        if (rss_kib(seed[i]) > m)
            m = rss_kib(seed[i]);
    return (double)m / 1024;
}

static double seeds_cpu(const pid_t *seed)
{
    double t = 0;
    for (int i = 0; i < S.nseeds; i++)
        t += cpu_seconds(seed[i]);
    return t;
}

/* One network of n workers; all: every worker watches (else only the
 * observer does). */
static void run(int n, int all)
{
    S.n = n;
    S.k = (n + 9) / 10;
    size_t used = 0;
    for (int i = 0; i < S.nseeds; i++) {
        snprintf(S.seed_addr[i], sizeof S.seed_addr[i], "127.0.0.1:%d", mesh_free_port());
        used += (size_t)snprintf(S.seeds_all + used, sizeof S.seeds_all - used, "%s%s", i ? "," : "",
                                 S.seed_addr[i]);
    }
    /* with two seeds everybody lists both in the same order (seed1 is
     * every worker's master), as the runs before G existed did */
    for (int i = 0; i < S.nseeds; i++) {
        int a = S.nseeds == 2 ? 0 : i, b = S.nseeds == 2 ? 1 : (i + 1) % S.nseeds;
        snprintf(S.seeds_pair[i], sizeof S.seeds_pair[i], "%.31s,%.31s", S.seed_addr[a], S.seed_addr[b]);
    }
    int rep[2], ctl[2];
    if (pipe(rep) < 0 || pipe(ctl) < 0)
        abort();
    S.report_fd = rep[1];
    S.ctl_fd = ctl[0];
    long over0 = proc_net_counter("/proc/net/netstat", "TcpExt:", "ListenOverflows");
    long retr0 = proc_net_counter("/proc/net/snmp", "Tcp:", "RetransSegs");
    collect_t c;
    collect_init(&c, n, rep[0]);
    pid_t *pids = calloc((size_t)n, sizeof *pids), seed[MAX_SEEDS], obs;
    for (int i = 0; i < S.nseeds; i++) {
        char id[16];
        snprintf(id, sizeof id, "seed%d", i + 1);
        seed[i] = spawn(id, S.seed_addr[i], -1, 0, 0, rep[0]);
    }
    obs = spawn("observer", "127.0.0.1:0", n, 1, 0, rep[0]);
    pid_t perf = perf_start(seed[0], n, all);
    close(ctl[0]);
    double t0 = mesh_wall();
    meter_t m0 = meter_now();
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "w%d", i);
        pids[i] = spawn(id, "127.0.0.1:0", i, all, 0, rep[0]);
    }
    double tstart = mesh_wall();
    double limit = 30 + n / 20.0;
    int watchers = all ? n + 1 : 1;
    collect_until(&c, have_count, &(want_t){ 3, 1 }, limit);
    collect_until(&c, have_count, &(want_t){ 0, watchers }, limit);
    meter_t m1 = meter_now();
    result("start", all, n, tstart - t0, "s");
    result("join", all, n, latest(&c, 3, tstart), "s");
    result("agree", all, n, c.count[0] >= watchers ? latest(&c, 0, tstart) : -1, "s");
    result("agree_median", all, n, median(&c, 0, tstart), "s");
    result("seed_rss", all, n, seeds_rss(seed), "MiB");
    result("seed_cpu", all, n, seeds_cpu(seed), "s");
    result("machine_cpu", all, n, meter_cpu(m0, m1), "s");
    result("machine_faults", all, n, meter_faults(m0, m1), "count");
    result("worker_faults_configured", all, n, median(&c, 4, 0), "count");
    if (all)
        result("worker_faults_agree", all, n, median(&c, 5, 0), "count");
    if (all) {
        /* every process has one listener; the rest are connections, each
         * counted at both ends */
        long socks = sockets_of(obs) - 1;
        for (int i = 0; i < S.nseeds; i++)
            socks += sockets_of(seed[i]) - 1;
        for (int i = 0; i < n; i++)
            socks += sockets_of(pids[i]) - 1;
        result("connections", all, n, socks / 2.0, "conns");
        long rss[32];
        int ns = 0;
        for (int i = 1; i < n && ns < 32; i += (n + 31) / 32)
            rss[ns++] = rss_kib(pids[i]);
        qsort(rss, (size_t)ns, sizeof rss[0], cmp_long);
        result("worker_rss", all, n, ns ? rss[ns / 2] / 1024.0 : -1, "MiB");
        if (write(ctl[1], "L", 1) == 1 && collect_until(&c, have_latency, NULL, 5.0 * PINGS + 5)) {
            result("first_msg_median", all, n, c.lat[0] / 1000, "ms");
            result("first_msg_max", all, n, c.lat[1] / 1000, "ms");
        }
    }
    /* churn: kill every tenth worker, wait for the watchers to drop them */
    double tkill = mesh_wall();
    for (int i = 0; i < n; i += 10)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i += 10)
        bu_reap(pids[i], 5);
    result("kill_reaped", all, n, mesh_wall() - tkill, "s");
    collect_until(&c, have_count, &(want_t){ 1, all ? n - S.k + 1 : 1 }, limit);
    result("kill_observer", all, n, c.t[1][n] ? c.t[1][n] - tkill : -1, "s");
    if (all) {
        result("kill_median", all, n, median(&c, 1, tkill), "s");
        result("kill_all", all, n, c.count[1] >= n - S.k + 1 ? latest(&c, 1, tkill) : -1, "s");
        /* rejoin: the same node IDs again */
        for (int i = 0; i < n; i += 10) {
            char id[32];
            snprintf(id, sizeof id, "w%d", i);
            pids[i] = spawn(id, "127.0.0.1:0", i, all, 2, rep[0]);
        }
        double trestart = mesh_wall();
        collect_until(&c, have_count, &(want_t){ 2, n + 1 }, limit);
        result("rejoin", all, n, c.count[2] >= n + 1 ? latest(&c, 2, trestart) : -1, "s");
    }
    long over1 = proc_net_counter("/proc/net/netstat", "TcpExt:", "ListenOverflows");
    long retr1 = proc_net_counter("/proc/net/snmp", "Tcp:", "RetransSegs");
    result("listen_overflows", all, n, (double)(over1 - over0), "count");
    result("retransmits", all, n, (double)(retr1 - retr0), "count");
    result("seed_cpu_total", all, n, seeds_cpu(seed), "s");
    perf_stop(perf);
    for (int i = 0; i < S.nseeds; i++)
        kill(seed[i], SIGTERM);
    kill(obs, SIGTERM);
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    for (int i = 0; i < S.nseeds; i++)
        bu_reap(seed[i], 5);
    bu_reap(obs, 5);
    for (int i = 0; i < n; i++)
        bu_reap(pids[i], 5);
    close(rep[0]);
    close(rep[1]);
    close(ctl[1]);
    collect_free(&c);
    free(pids);
}

/* The same join storm in bare TCP (mesh_ceiling.c): one seed, n workers
 * that each send their entry and count the distinct entries they get.
 * RESULT scale_ceiling_<what>_<n>, times from the last fork as in run(),
 * and the machine's CPU and faults from the first fork to agreement. */
static void run_ceiling(int n)
{
    int rep[2];
    if (pipe(rep) < 0)
        abort();
    collect_t c;
    collect_init(&c, n, rep[0]);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    int port;
    pid_t seed = mesh_ceiling_seed(n, rep[1], rep[0], &port);
    double t0 = mesh_wall();
    meter_t m0 = meter_now();
    for (int i = 0; i < n; i++)
        pids[i] = mesh_ceiling_worker(port, i, n, rep[1], rep[0]);
    double tstart = mesh_wall(), limit = 30 + n / 20.0;
    collect_until(&c, have_count, &(want_t){ 3, 1 }, limit);
    collect_until(&c, have_count, &(want_t){ 0, n }, limit);
    meter_t m1 = meter_now();
    printf("RESULT scale_ceiling_start_%d %.3f s\n", n, tstart - t0);
    printf("RESULT scale_ceiling_join_%d %.3f s\n", n, latest(&c, 3, tstart));
    printf("RESULT scale_ceiling_agree_%d %.3f s\n", n, c.count[0] >= n ? latest(&c, 0, tstart) : -1);
    printf("RESULT scale_ceiling_agree_median_%d %.3f s\n", n, median(&c, 0, tstart));
    printf("RESULT scale_ceiling_machine_cpu_%d %.3f s\n", n, meter_cpu(m0, m1));
    printf("RESULT scale_ceiling_machine_faults_%d %.0f count\n", n, meter_faults(m0, m1));
    printf("RESULT scale_ceiling_worker_faults_agree_%d %.0f count\n", n, median(&c, 5, 0));
    fflush(stdout);
    kill(seed, SIGTERM);
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    bu_reap(seed, 5);
    for (int i = 0; i < n; i++)
        bu_reap(pids[i], 5);
    close(rep[0]);
    close(rep[1]);
    collect_free(&c);
    free(pids);
}

/* Room for every process's descriptors: the soft fd limit up to the hard. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The variants of one size: every worker watching, the bare storm, one
 * watcher. */
static void run_size(int n, int all, int ceiling, int one)
{
    if (all)
        run(n, 1);
    if (ceiling)
        run_ceiling(n);
    if (one)
        run(n, 0);
}

void mesh_scale_run(int min, int max, int seeds, const char *secret)
{
    S.secret = secret;
    S.nseeds = seeds < 2 ? 2 : seeds > MAX_SEEDS ? MAX_SEEDS : seeds;
    raise_fd_limit();
    /* $AEMP_BENCH_MESH_ONLY=all, one or ceiling: only that variant (to
     * profile it) */
    const char *only = getenv("AEMP_BENCH_MESH_ONLY");
    if (only && !*only)
        only = NULL;
    int all = !only || !strcmp(only, "all"), one = !only || !strcmp(only, "one");
    int ceiling = !only || !strcmp(only, "ceiling");
    int sizes[] = { 64, 256, 1024, 2048, 4096 };
    int nsizes = sizeof sizes / sizeof sizes[0], last = 0;
    for (int i = 0; i < nsizes && sizes[i] <= max; i++) {
        if (sizes[i] < min)
            continue;
        run_size(sizes[i], all, ceiling, one);
        last = sizes[i];
    }
    if (max > last && max >= 16 && max >= min)
        run_size(max, all, ceiling, one);
}
