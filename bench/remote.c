/* bench/remote - message throughput and round-trip latency between two
 * nodes on 127.0.0.1, in CBOR and JSON framing, next to a bare TCP
 * ping-pong measured in the same run.
 *
 * Prints:
 *   RESULT remote_oneway_cbor <n> msgs/s     ["tag", i, "x"] one way, acked in bulk
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
 * One-way flow control: the sink acks every ACK_EVERY messages; the sender
 * keeps at most WINDOW messages unacked, so memory stays bounded.
 */
#include <aemp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACK_EVERY 50000
#define WINDOW 200000
#define BATCH 10000
#define WARMUP_ROUNDS 1000
#define TCP_MSG 30
#define CHILD_ALARM 300        /* seconds: a child never lives longer */
#define SECRET "bench-remote-secret"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median and p99 (microseconds) of n samples (seconds); sorts them. */
static void percentiles(double *s, size_t n, double *median, double *p99)
{
    qsort(s, n, sizeof *s, cmp_double);
    *median = s[n / 2] * 1e6;
    *p99 = s[(size_t)(n * 0.99)] * 1e6;
}

static void child_safety(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(CHILD_ALARM);
}

/* ------------------------------------------------------------ aemp nodes */

static void configure(const char *nodeid, const char *framing)
{
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b}", "nodeid", nodeid,
                        "secret", SECRET, "binds", "127.0.0.1:0", "framing_format", framing,
                        "norc", 1) != 0) {
        fprintf(stderr, "bench_remote: configure %s: %s\n", nodeid, err);
        exit(1);
    }
}

/* server: "srv#sink" counts and acks to "cli#ack"; "srv#echo" sends each
 * message minus its last element to the port that is its last element. */
static json_int_t sunk;
static void on_sink(json_t *msg, void *arg)
{
    if (++sunk % ACK_EVERY == 0)
        aemp_sndf("cli#ack", "I", sunk);
}

static void on_echo(json_t *msg, void *arg)
{
    size_t n = json_array_size(msg);
    json_t *to = json_array_get(msg, n - 1);
    if (!json_is_string(to))
        return;
    json_t *reply = json_array();
    for (size_t i = 0; i + 1 < n; i++)
        json_array_append(reply, json_array_get(msg, i));
    aemp_snd(json_string_value(to), reply);
}

static ev_signal sigterm_w;
static void on_sigterm(EV_P_ ev_signal *w, int revents)
{
    aemp_stop();
}

static int run_server(const char *framing)
{
    child_safety();
    configure("srv", framing);
    aemp_rcv("srv#sink", on_sink, NULL);
    aemp_rcv("srv#echo", on_echo, NULL);
    printf("LISTEN %s\n", json_string_value(json_array_get(aemp_listeners(), 0)));
    fflush(stdout);
    ev_signal_init(&sigterm_w, on_sigterm, SIGTERM);
    ev_signal_start(aemp_loop(), &sigterm_w);
    aemp_run();
    return 0;
}

/* client, common: connect and make sure the connection is up */
static int ready;
static void on_ready(json_t *reply, void *arg)
{
    ready = reply ? 1 : -1;
}

static void run_until(volatile int *flag)
{
    while (!*flag)
        ev_run(aemp_loop(), EVRUN_ONCE);
}

static void client_connect(const char *framing, const char *addr)
{
    child_safety();
    configure("cli", framing);
    json_t *a = json_pack("[s]", addr);
    aemp_add_node("srv", a);
    json_decref(a);
    aemp_cal("srv#echo", json_pack("[s]", "hello"), on_ready, NULL, 10);
    run_until(&ready);
    if (ready < 0) {
        fprintf(stderr, "bench_remote: no answer from the server node at %s\n", addr);
        exit(1);
    }
}

/* client, one-way */
static long total, sent, acked;
static int producing, oneway_done;
static const char *producer;

static void produce(void)
{
    for (int i = 0; i < BATCH && sent < total && sent - acked < WINDOW; i++, sent++)
        aemp_sndf("srv#sink", "sIs", "tag", (json_int_t)sent, "x");
    producing = sent < total && sent - acked < WINDOW;
    if (producing)
        aemp_sndf(producer, "s", "go");   /* next batch after the loop turned */
}

static void on_produce(json_t *msg, void *arg)
{
    produce();
}

static void start_producing(void *arg)
{
    produce();
}

static void on_ack(json_t *msg, void *arg)
{
    acked = (long)json_integer_value(json_array_get(msg, 0));
    if (acked >= total)
        oneway_done = 1;
    else if (!producing)
        produce();
}

static int run_oneway(const char *framing, const char *addr, long n)
{
    total = (n + ACK_EVERY - 1) / ACK_EVERY * ACK_EVERY;
    client_connect(framing, addr);
    aemp_rcv("cli#ack", on_ack, NULL);
    producer = aemp_port(on_produce, NULL);
    double t0 = now();
    aemp_peval(producer, start_producing, NULL);
    run_until(&oneway_done);
    double dt = now() - t0;
    printf("VALUE %.0f\n", total / dt);
    fflush(stdout);
    aemp_shutdown();
    return 0;
}

/* client, round trips */
static long rounds, round_no;
static double *samples, t_send;
static int rtt_done;

static void send_ping(void)
{
    t_send = now();
    aemp_sndf("srv#echo", "sIs", "ping", (json_int_t)round_no, "cli#pong");
}

static void on_pong(json_t *msg, void *arg)
{
    double t = now();
    if (round_no >= WARMUP_ROUNDS)
        samples[round_no - WARMUP_ROUNDS] = t - t_send;
    if (++round_no == rounds + WARMUP_ROUNDS) {
        rtt_done = 1;
        return;
    }
    send_ping();
}

static int run_rtt(const char *framing, const char *addr, long n)
{
    rounds = n;
    samples = calloc((size_t)n, sizeof *samples);
    if (!samples)
        return 1;
    client_connect(framing, addr);
    aemp_rcv("cli#pong", on_pong, NULL);
    send_ping();
    run_until(&rtt_done);
    double median, p99;
    percentiles(samples, (size_t)n, &median, &p99);
    printf("VALUE %.1f %.1f\n", median, p99);
    fflush(stdout);
    free(samples);
    aemp_shutdown();
    return 0;
}

/* ------------------------------------------------------------ bare TCP */

static int full_io(int fd, char *buf, size_t n, int writing)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = writing ? write(fd, buf + done, n - done) : read(fd, buf + done, n - done);
        if (r > 0)
            done += (size_t)r;
        else if (r < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    return 0;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int run_tcp_server(void)
{
    child_safety();
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(l, 1) < 0
        || getsockname(l, (struct sockaddr *)&sin, &len) < 0) {
        perror("bench_remote: tcp server");
        return 1;
    }
    printf("LISTEN %d\n", ntohs(sin.sin_port));
    fflush(stdout);
    int fd = accept(l, NULL, NULL);
    if (fd < 0)
        return 1;
    nodelay(fd);
    char buf[TCP_MSG];
    while (full_io(fd, buf, sizeof buf, 0) == 0 && full_io(fd, buf, sizeof buf, 1) == 0)
        ;
    return 0;
}

static int run_tcp_client(int port, long n)
{
    child_safety();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        perror("bench_remote: tcp client");
        return 1;
    }
    nodelay(fd);
    double *s = calloc((size_t)n, sizeof *s);
    if (!s)
        return 1;
    char buf[TCP_MSG];
    memset(buf, 'x', sizeof buf);
    for (long i = 0; i < n + WARMUP_ROUNDS; i++) {
        double t0 = now();
        if (full_io(fd, buf, sizeof buf, 1) < 0 || full_io(fd, buf, sizeof buf, 0) < 0) {
            fprintf(stderr, "bench_remote: tcp ping-pong failed\n");
            return 1;
        }
        if (i >= WARMUP_ROUNDS)
            s[i - WARMUP_ROUNDS] = now() - t0;
    }
    double median, p99;
    percentiles(s, (size_t)n, &median, &p99);
    printf("VALUE %.1f %.1f\n", median, p99);
    fflush(stdout);
    free(s);
    close(fd);
    return 0;
}

/* ------------------------------------------------------------ supervisor */

typedef struct child {
    pid_t pid;
    int out;
} child_t;

/* Start this program with a role and arguments (NULL-terminated). */
static int start_child(child_t *c, const char *const *args)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    const char *argv[16];
    int n = 0;
    argv[n++] = "bench_remote";
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    c->pid = pid;
    c->out = fds[0];
    return 0;
}

/* Stop a child by PID: SIGTERM, up to 5 s, then SIGKILL. */
static void stop_child(child_t *c)
{
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGTERM);
    double end = now() + 5;
    int status;
    while (waitpid(c->pid, &status, WNOHANG) == 0) {
        if (now() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            break;
        }
        usleep(5000);
    }
    close(c->out);
    c->pid = 0;
}

/* Read the child's next line starting with prefix within `seconds`. */
static int read_line(child_t *c, const char *prefix, char *buf, size_t size, double seconds)
{
    double end = now() + seconds;
    for (;;) {
        size_t n = 0;
        for (;;) {
            int left = (int)((end - now()) * 1000);
            if (left <= 0)
                return -1;
            struct pollfd p = { c->out, POLLIN, 0 };
            if (poll(&p, 1, left) <= 0)
                continue;
            char ch;
            if (read(c->out, &ch, 1) != 1)
                return -1;
            if (ch == '\n')
                break;
            if (n + 1 < size)
                buf[n++] = ch;
        }
        buf[n] = 0;
        if (!strncmp(buf, prefix, strlen(prefix))) {
            memmove(buf, buf + strlen(prefix), strlen(buf + strlen(prefix)) + 1);
            return 0;
        }
    }
}

/* One measurement: a server child, then a client child whose VALUE line is
 * the result.  Returns 0 and the line's text in value. */
static int measure(const char *const *server, const char *client_role, const char *a1,
                   const char *a2, char *value, size_t size)
{
    child_t s = { 0 }, c = { 0 };
    char addr[128];
    int rc = -1;
    if (start_child(&s, server) < 0 || read_line(&s, "LISTEN ", addr, sizeof addr, 10) < 0) {
        fprintf(stderr, "bench_remote: the server did not start\n");
        goto out;
    }
    const char *cargs[] = { client_role, a1, addr, a2, NULL };
    if (!strcmp(client_role, "--tcp-client")) {   /* --tcp-client PORT ROUNDS */
        cargs[1] = addr;
        cargs[2] = a2;
        cargs[3] = NULL;
    }
    if (start_child(&c, cargs) < 0 || read_line(&c, "VALUE ", value, size, 240) < 0) {
        fprintf(stderr, "bench_remote: %s %s gave no result\n", client_role, a1 ? a1 : "");
        goto out;
    }
    rc = 0;
out:
    stop_child(&c);
    stop_child(&s);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--server"))
        return run_server(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "--oneway"))
        return run_oneway(argv[2], argv[3], atol(argv[4]));
    if (argc >= 5 && !strcmp(argv[1], "--rtt"))
        return run_rtt(argv[2], argv[3], atol(argv[4]));
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
    char nmsgs[32], nr[32], v[128];
    snprintf(nmsgs, sizeof nmsgs, "%ld", msgs);
    snprintf(nr, sizeof nr, "%ld", nrounds);
    static const char *const framings[] = { "cbor", "json" };
    int failed = 0;

    for (int f = 0; f < 2; f++) {
        const char *server[] = { "--server", framings[f], NULL };
        if (measure(server, "--oneway", framings[f], nmsgs, v, sizeof v) == 0)
            printf("RESULT remote_oneway_%s %s msgs/s\n", framings[f], v);
        else
            failed = 1;
        fflush(stdout);
    }
    for (int f = 0; f < 2; f++) {
        const char *server[] = { "--server", framings[f], NULL };
        double median, p99;
        if (measure(server, "--rtt", framings[f], nr, v, sizeof v) == 0
            && sscanf(v, "%lf %lf", &median, &p99) == 2) {
            printf("RESULT remote_rtt_median_%s %.1f us\n", framings[f], median);
            printf("RESULT remote_rtt_p99_%s %.1f us\n", framings[f], p99);
        } else {
            failed = 1;
        }
        fflush(stdout);
    }
    const char *tcp_server[] = { "--tcp-server", NULL };
    double median, p99;
    if (measure(tcp_server, "--tcp-client", NULL, nr, v, sizeof v) == 0
        && sscanf(v, "%lf %lf", &median, &p99) == 2) {
        printf("RESULT tcp_rtt_median %.1f us\n", median);
        printf("RESULT tcp_rtt_p99 %.1f us\n", p99);
    } else {
        failed = 1;
    }
    return failed;
}
