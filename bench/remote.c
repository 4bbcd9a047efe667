/* bench/remote - message throughput and round-trip latency between two
 * nodes on 127.0.0.1, in CBOR and JSON framing, next to a bare TCP
 * ping-pong measured in the same run.
 *
 * Prints:
 *   RESULT remote_spawn_cbor/json <n> spawns/s  spawns on the other node, each
 *                                           answering when it runs (1000 in flight)
 *   RESULT remote_oneway_cbor <n> msgs/s     ["ping", i, "abcdefghijklmnop"] one way, acked in bulk
 *   RESULT remote_oneway_json <n> msgs/s
 *   RESULT remote_rtt_median_cbor <us> us    ping-pong through a remote port
 *   RESULT remote_rtt_p99_cbor <us> us
 *   RESULT remote_rtt_median_json <us> us
 *   RESULT remote_rtt_p99_json <us> us
 *   RESULT tcp_rtt_median <us> us            blocking write/read of 30 bytes,
 *   RESULT tcp_rtt_p99 <us> us               TCP_NODELAY, two processes
 *   ... and the same six with "_1cpu" appended: both processes on one CPU
 * Usage: bench_remote [messages [rounds]]   (defaults 3,000,000 and 20,000)
 *        bench_remote oneway [messages]     only remote_oneway_cbor (for
 *                                           scripts/bench.sh's pairing with
 *                                           bench_zmq_oneway)
 *
 * Round trips are measured twice: with the two processes wherever the
 * scheduler puts them (on this machine usually two CPUs, where each hop
 * waits for an idle CPU to wake, 70-90 us), and with both on one CPU (a
 * hop is a direct switch, 6-13 us, so what a node adds shows).  In each
 * placement the CBOR and the bare TCP ping-pong alternate three times and
 * the medians of their medians are printed: the machine's wake-up latency
 * changes within a run, and alternating lets both see the same changes.
 *
 * Every measurement runs in two fresh processes (this program, re-executed
 * through /proc/self/exe with a role argument): a server node and a client
 * node, each configured once.  This process only supervises: it reads the
 * children's "LISTEN"/"VALUE" lines with bounded waits and stops every
 * child by its PID.  The children also carry an alarm and die with their
 * parent, so nothing outlives a crashed run.
 *
 * The supervisor, the aemp node roles and the flow control are shared with
 * bench_tls (benchutil.h); the bare TCP ping-pong is this file's own.
 */
#define _GNU_SOURCE   /* sched_setaffinity, CPU_SET */
#include "benchutil.h"

#include <aemp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sched.h>
#include <unistd.h>

#define RTT_REPEATS 3   /* CBOR and bare TCP round trips alternate this often */

#define TCP_MSG 30
#define SECRET "bench-remote-secret"

/* ------------------------------------------------------------ aemp nodes */

/* Child: configure as nodeid with the shared secret and the framing. */
static void configure(const char *nodeid, const char *framing)
{
    bu_child_safety();
    bu_configure(nodeid, "secret", SECRET, framing);
}

static void spawned(aemp_msg_t *args, void *arg);

/* Child role --server FRAMING: the sink/echo server node "srv", which also
 * serves the spawned function. */
static int run_server(const char *framing)
{
    configure("srv", framing);
    aemp_func_register("bench::spawned", spawned, NULL);
    bu_serve();
    return 0;
}

/* Child role --oneway FRAMING ADDR N: one-way throughput to the server. */
static int run_oneway(const char *framing, const char *addr, long n)
{
    configure("cli", framing);
    bu_connect(addr);
    return bu_oneway(n);
}

/* Child role --rtt FRAMING ADDR N: round trips through the server. */
static int run_rtt(const char *framing, const char *addr, long n)
{
    configure("cli", framing);
    bu_connect(addr);
    return bu_rtt(n);
}

/* ------------------------------------------------------------ spawning */

/* Server side of the spawn measurement (registered in the server): the new
 * port tells the spawner (args[0]) it runs and ends itself. */
static void spawned(aemp_msg_t *args, void *arg)
{
    const char *to = aemp_msg_str(args, 0, NULL);
    if (to)
        aemp_sndf(to, "s", "up");
    aemp_kil(aemp_self(), NULL);
}

#define SPAWN_WINDOW 1000   /* spawns in flight */
static long spawn_total, spawn_sent, spawn_up;
static const char *spawn_reply;

static void spawn_more(void)
{
    while (spawn_sent < spawn_total && spawn_sent - spawn_up < SPAWN_WINDOW) {
        free(aemp_spawn("srv", "bench::spawned", aemp_msgf("s", spawn_reply)));
        spawn_sent++;
    }
}

static void on_spawned(aemp_msg_t *msg, void *arg)
{
    if (++spawn_up == spawn_total)
        aemp_stop();
    else
        spawn_more();
}

/* Child role --spawn FRAMING ADDR N: N spawns on the server, at most
 * SPAWN_WINDOW in flight, each answering once it runs; prints the rate. */
static int run_spawn(const char *framing, const char *addr, long n)
{
    configure("cli", framing);
    bu_connect(addr);
    spawn_total = n;
    spawn_reply = aemp_port(on_spawned, NULL);
    double t0 = bu_now();
    spawn_more();
    aemp_run();
    printf("VALUE %.0f\n", n / (bu_now() - t0));
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------ bare TCP */

/* Set TCP_NODELAY on a socket. */
static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Child role --tcp-server: print "LISTEN <port>", accept one connection
 * and echo TCP_MSG-byte messages until it ends. */
static int run_tcp_server(void)
{
    bu_child_safety();
    int fd = bu_tcp_accept_one();
    if (fd < 0)
        return 1;
    nodelay(fd);
    char buf[TCP_MSG];
    while (bu_full_io(fd, buf, sizeof buf, 0) == 0 && bu_full_io(fd, buf, sizeof buf, 1) == 0)
        ;
    return 0;
}

/* Child role --tcp-client PORT N: BU_WARMUP_ROUNDS + n blocking ping-pongs
 * of TCP_MSG bytes; print "VALUE <median> <p99>" of the last n in us. */
static int run_tcp_client(int port, long n)
{
    bu_child_safety();
    int fd = bu_tcp_connect(port);
    if (fd < 0)
        return 1;
    nodelay(fd);
    double *s = calloc((size_t)n, sizeof *s);
    if (!s)
        return 1;
    char buf[TCP_MSG];
    memset(buf, 'x', sizeof buf);
    for (long i = 0; i < n + BU_WARMUP_ROUNDS; i++) {
        double t0 = bu_now();
        if (bu_full_io(fd, buf, sizeof buf, 1) < 0 || bu_full_io(fd, buf, sizeof buf, 0) < 0) {
            fprintf(stderr, "bench_remote: tcp ping-pong failed\n");
            return 1;
        }
        if (i >= BU_WARMUP_ROUNDS)
            s[i - BU_WARMUP_ROUNDS] = bu_now() - t0;
    }
    double median, p99;
    bu_percentiles(s, (size_t)n, 1e6, &median, &p99);
    printf("VALUE %.1f %.1f\n", median, p99);
    fflush(stdout);
    free(s);
    close(fd);
    return 0;
}

/* ------------------------------------------------------------ supervisor */

/* The highest CPU this process may run on (where the one-CPU round trips
 * go), or -1 if there is just one or the mask cannot be read. */
static int one_cpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2)
        return -1;
    for (int c = CPU_SETSIZE - 1; c >= 0; c--)
        if (CPU_ISSET(c, &set))
            return c;
    return -1;
}

/* Run the children of the next measurements on `cpu` only (their affinity
 * is inherited), or, for cpu < 0, on the CPUs in *all. */
static void place_children(int cpu, const cpu_set_t *all)
{
    cpu_set_t set = *all;
    if (cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
    }
    sched_setaffinity(0, sizeof set, &set);
}

/* One round-trip measurement (bench_remote with `client` arguments against
 * `server`): its median and p99 in *median and *p99.  0 or -1. */
static int rtt_once(const char *const *server, const char *const *client, double *median, double *p99)
{
    char v[128];
    return bu_measure(server, client, v, sizeof v) == 0 && sscanf(v, "%lf %lf", median, p99) == 2 ? 0 : -1;
}

/* Median of n > 0 values (sorts them). */
static double median_of(double *v, int n)
{
    double ignored, m;
    bu_percentiles(v, (size_t)n, 1.0, &m, &ignored);
    return m;
}

/* The round trips of both framings and of the bare TCP ping-pong, with the
 * children on any CPU (cpu < 0) or all on one CPU.  CBOR and TCP alternate
 * RTT_REPEATS times and the medians of their medians (and of their p99s)
 * are printed, so a change of this machine's wake-up latency during the
 * run shows in both; JSON runs once.  Names of the one-CPU lines end in
 * "_1cpu".  0, or -1 if a measurement failed. */
static int measure_rtt(int cpu, const char *rounds)
{
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof all, &all) != 0)
        CPU_ZERO(&all);
    const char *sfx = cpu >= 0 ? "_1cpu" : "";
    const char *cbor_server[] = { "--server", "cbor", NULL };
    const char *cbor_client[] = { "--rtt", "cbor", BU_ADDR, rounds, NULL };
    const char *json_server[] = { "--server", "json", NULL };
    const char *json_client[] = { "--rtt", "json", BU_ADDR, rounds, NULL };
    const char *tcp_server[] = { "--tcp-server", NULL };
    const char *tcp_client[] = { "--tcp-client", BU_ADDR, rounds, NULL };
    double cbor[2][RTT_REPEATS], tcp[2][RTT_REPEATS], json[2];
    int failed = 0;
    place_children(cpu, &all);
    for (int r = 0; r < RTT_REPEATS && !failed; r++)
        failed = rtt_once(cbor_server, cbor_client, &cbor[0][r], &cbor[1][r]) != 0
                 || rtt_once(tcp_server, tcp_client, &tcp[0][r], &tcp[1][r]) != 0;
    if (!failed)
        failed = rtt_once(json_server, json_client, &json[0], &json[1]) != 0;
    if (CPU_COUNT(&all) > 0)
        place_children(-1, &all);
    if (failed)
        return -1;
    printf("RESULT remote_rtt_median_cbor%s %.1f us\n", sfx, median_of(cbor[0], RTT_REPEATS));
    printf("RESULT remote_rtt_p99_cbor%s %.1f us\n", sfx, median_of(cbor[1], RTT_REPEATS));
    printf("RESULT remote_rtt_median_json%s %.1f us\n", sfx, json[0]);
    printf("RESULT remote_rtt_p99_json%s %.1f us\n", sfx, json[1]);
    printf("RESULT tcp_rtt_median%s %.1f us\n", sfx, median_of(tcp[0], RTT_REPEATS));
    printf("RESULT tcp_rtt_p99%s %.1f us\n", sfx, median_of(tcp[1], RTT_REPEATS));
    fflush(stdout);
    return 0;
}

/* One-way throughput in `framing` with `msgs` messages: prints its RESULT
 * line.  0, or -1 if the measurement failed. */
static int measure_oneway(const char *framing, const char *msgs)
{
    char v[128];
    const char *server[] = { "--server", framing, NULL };
    const char *client[] = { "--oneway", framing, BU_ADDR, msgs, NULL };
    if (bu_measure(server, client, v, sizeof v) != 0)
        return -1;
    printf("RESULT remote_oneway_%s %s msgs/s\n", framing, v);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    bu_init("bench_remote");
    if (argc >= 3 && !strcmp(argv[1], "--server"))
        return run_server(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "--oneway"))
        return run_oneway(argv[2], argv[3], atol(argv[4]));
    if (argc >= 5 && !strcmp(argv[1], "--rtt"))
        return run_rtt(argv[2], argv[3], atol(argv[4]));
    if (argc >= 5 && !strcmp(argv[1], "--spawn"))
        return run_spawn(argv[2], argv[3], atol(argv[4]));
    if (argc >= 2 && !strcmp(argv[1], "--tcp-server"))
        return run_tcp_server();
    if (argc >= 4 && !strcmp(argv[1], "--tcp-client"))
        return run_tcp_client(atoi(argv[2]), atol(argv[3]));

    if (argc >= 2 && !strcmp(argv[1], "oneway")) {
        char nmsgs[32];
        snprintf(nmsgs, sizeof nmsgs, "%ld", argc > 2 ? atol(argv[2]) : 3000000L);
        return atol(nmsgs) <= 0 || measure_oneway("cbor", nmsgs) != 0;
    }
    long msgs = argc > 1 ? atol(argv[1]) : 3000000;
    long nrounds = argc > 2 ? atol(argv[2]) : 20000;
    if (msgs <= 0 || nrounds <= 0) {
        fprintf(stderr, "usage: bench_remote [messages [rounds]]\n");
        return 2;
    }
    char nmsgs[32], nr[32], v[128];
    snprintf(nmsgs, sizeof nmsgs, "%ld", msgs);
    snprintf(nr, sizeof nr, "%ld", nrounds);
    static const char *const framings[] = { "cbor", "json" };
    int failed = 0;

    for (int f = 0; f < 2; f++)
        if (measure_oneway(framings[f], nmsgs) != 0)
            failed = 1;
    int cpu = one_cpu();
    if (measure_rtt(-1, nr) != 0 || (cpu >= 0 && measure_rtt(cpu, nr) != 0))
        failed = 1;
    for (int f = 0; f < 2; f++) {
        const char *server[] = { "--server", framings[f], NULL };
        const char *client[] = { "--spawn", framings[f], BU_ADDR, nr, NULL };
        if (bu_measure(server, client, v, sizeof v) == 0)
            printf("RESULT remote_spawn_%s %s spawns/s\n", framings[f], v);
        else
            failed = 1;
        fflush(stdout);
    }
    return failed;
}
