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
 * Usage: bench_remote [messages [rounds]]   (defaults 3,000,000 and 20,000)
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
#include <unistd.h>

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

    long msgs = argc > 1 ? atol(argv[1]) : 3000000;
    long nrounds = argc > 2 ? atol(argv[2]) : 20000;
    if (msgs <= 0 || nrounds <= 0) {
        fprintf(stderr, "usage: bench_remote [messages [rounds]]\n");
        return 2;
    }
    char nmsgs[32], nr[32], v[128], name[64], name99[64];
    snprintf(nmsgs, sizeof nmsgs, "%ld", msgs);
    snprintf(nr, sizeof nr, "%ld", nrounds);
    static const char *const framings[] = { "cbor", "json" };
    int failed = 0;

    for (int f = 0; f < 2; f++) {
        const char *server[] = { "--server", framings[f], NULL };
        const char *client[] = { "--oneway", framings[f], BU_ADDR, nmsgs, NULL };
        if (bu_measure(server, client, v, sizeof v) == 0)
            printf("RESULT remote_oneway_%s %s msgs/s\n", framings[f], v);
        else
            failed = 1;
        fflush(stdout);
    }
    for (int f = 0; f < 2; f++) {
        const char *server[] = { "--server", framings[f], NULL };
        const char *client[] = { "--rtt", framings[f], BU_ADDR, nr, NULL };
        snprintf(name, sizeof name, "remote_rtt_median_%s", framings[f]);
        snprintf(name99, sizeof name99, "remote_rtt_p99_%s", framings[f]);
        if (bu_measure(server, client, v, sizeof v) != 0 || bu_result_pair(v, name, name99, 1, "us") != 0)
            failed = 1;
        fflush(stdout);
    }
    for (int f = 0; f < 2; f++) {
        const char *server[] = { "--server", framings[f], NULL };
        const char *client[] = { "--spawn", framings[f], BU_ADDR, nr, NULL };
        if (bu_measure(server, client, v, sizeof v) == 0)
            printf("RESULT remote_spawn_%s %s spawns/s\n", framings[f], v);
        else
            failed = 1;
        fflush(stdout);
    }
    const char *tcp_server[] = { "--tcp-server", NULL };
    const char *tcp_client[] = { "--tcp-client", BU_ADDR, nr, NULL };
    if (bu_measure(tcp_server, tcp_client, v, sizeof v) != 0
        || bu_result_pair(v, "tcp_rtt_median", "tcp_rtt_p99", 1, "us") != 0)
        failed = 1;
    return failed;
}
