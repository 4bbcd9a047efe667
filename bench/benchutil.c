/* bench/benchutil.c - shared machinery of the two-process benchmarks; see
 * benchutil.h for the contract. */
#include "benchutil.h"

#include <aemp.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
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

static const char *prog = "bench";

/* ------------------------------------------------------------ common */

void bu_init(const char *name)
{
    prog = name;
}

const char *bu_prog(void)
{
    return prog;
}

double bu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* qsort order of doubles, ascending. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bu_percentiles(double *s, size_t n, double scale, double *median, double *p99)
{
    qsort(s, n, sizeof *s, cmp_double);
    *median = s[n / 2] * scale;
    *p99 = s[(size_t)(n * 0.99)] * scale;
}

void bu_child_safety(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(BU_CHILD_ALARM);
}

/* A CBOR head: major type (0..7) and argument n, smallest form. */
static size_t cbor_head(unsigned char *out, unsigned major, uint64_t n)
{
    unsigned char mt = (unsigned char)(major << 5);
    if (n < 24) {
        out[0] = (unsigned char)(mt | n);
        return 1;
    }
    int bytes = n <= 0xff ? 1 : n <= 0xffff ? 2 : n <= 0xffffffffu ? 4 : 8;
    out[0] = (unsigned char)(mt | (bytes == 1 ? 24 : bytes == 2 ? 25 : bytes == 4 ? 26 : 27));
    for (int k = 0; k < bytes; k++)
        out[1 + k] = (unsigned char)(n >> (8 * (bytes - 1 - k)));
    return 1 + (size_t)bytes;
}

size_t bu_cbor_ping(unsigned char *out, uint64_t i)
{
    size_t n = cbor_head(out, 4, 3);                       /* array of 3 */
    n += cbor_head(out + n, 3, 4);                         /* text "ping" */
    memcpy(out + n, "ping", 4);
    n += 4;
    n += cbor_head(out + n, 0, i);                         /* unsigned i */
    n += cbor_head(out + n, 3, sizeof BU_PING_PAYLOAD - 1);   /* text payload */
    memcpy(out + n, BU_PING_PAYLOAD, sizeof BU_PING_PAYLOAD - 1);
    return n + sizeof BU_PING_PAYLOAD - 1;
}

/* ------------------------------------------------------------ supervisor */

const char bu_listen_addr[] = "<listen address>";

typedef struct child {
    pid_t pid;
    int out;   /* read end of its stdout */
} child_t;

/* Start this program with the arguments args (NULL-terminated, at most 14)
 * and its stdout on a pipe.  Returns 0, or -1 with nothing started. */
static int start_child(child_t *c, const char *const *args)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    const char *argv[16];
    int n = 0;
    argv[n++] = prog;
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

int bu_reap(pid_t pid, double seconds)
{
    double end = bu_now() + seconds;
    int status = -1;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (bu_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(5000);
    }
    return status;
}

/* Stop a child by PID: SIGTERM, up to 5 s, then SIGKILL; close its pipe.
 * A child never started (pid 0) is left alone. */
static void stop_child(child_t *c)
{
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGTERM);
    bu_reap(c->pid, 5);
    close(c->out);
    c->pid = 0;
}

/* Read the child's next line starting with prefix within `seconds`; other
 * lines are skipped.  Returns 0 and the rest of the line in buf (cut to
 * size), or -1 on timeout or end of output. */
static int read_line(child_t *c, const char *prefix, char *buf, size_t size, double seconds)
{
    double end = bu_now() + seconds;
    for (;;) {
        size_t n = 0;
        for (;;) {
            int left = (int)((end - bu_now()) * 1000);
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

int bu_measure(const char *const *server, const char *const *client, char *value, size_t size)
{
    child_t s = { 0 }, c = { 0 };
    char addr[128];
    const char *cargs[15];
    int rc = -1;
    if (start_child(&s, server) < 0 || read_line(&s, "LISTEN ", addr, sizeof addr, 10) < 0) {
        fprintf(stderr, "%s: the %s%sserver did not start\n", prog, server[1] ? server[1] : "", server[1] ? " " : "");
        goto out;
    }
    size_t n = 0;
    for (; client[n] && n + 1 < sizeof cargs / sizeof cargs[0]; n++)
        cargs[n] = client[n] == BU_ADDR ? addr : client[n];
    cargs[n] = NULL;
    if (start_child(&c, cargs) < 0 || read_line(&c, "VALUE ", value, size, 240) < 0) {
        fprintf(stderr, "%s: %s %s gave no result\n", prog, client[0], client[1] ? client[1] : "");
        goto out;
    }
    rc = 0;
out:
    stop_child(&c);
    stop_child(&s);
    return rc;
}

int bu_result_pair(const char *value, const char *median_name, const char *p99_name, int decimals,
                   const char *unit)
{
    double median, p99;
    if (sscanf(value, "%lf %lf", &median, &p99) != 2)
        return -1;
    printf("RESULT %s %.*f %s\n", median_name, decimals, median, unit);
    if (p99_name)
        printf("RESULT %s %.*f %s\n", p99_name, decimals, p99, unit);
    return 0;
}

/* ------------------------------------------------------------ aemp roles */

void bu_configure(const char *nodeid, const char *auth_key, const char *auth_value, const char *framing)
{
    char err[512];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b}", "nodeid", nodeid, auth_key,
                        auth_value, "binds", "127.0.0.1:0", "framing_format", framing, "norc", 1) != 0) {
        fprintf(stderr, "%s: configure %s: %s\n", prog, nodeid, err);
        exit(1);
    }
}

/* Run the loop until *flag is set. */
static void run_until(volatile int *flag)
{
    while (!*flag)
        ev_run(aemp_loop(), EVRUN_ONCE);
}

/* server: "srv#sink" counts and acks to "cli#ack". */
static int64_t sunk;
static void on_sink(aemp_msg_t *msg, void *arg)
{
    if (++sunk % BU_ACK_EVERY == 0)
        aemp_sndf("cli#ack", "I", sunk);
}

/* server: "srv#echo" sends the message minus its last element to the port
 * named by its last element. */
static void on_echo(aemp_msg_t *msg, void *arg)
{
    size_t n = aemp_msg_len(msg);
    const char *to = n ? aemp_msg_str(msg, n - 1, NULL) : NULL;
    if (!to)
        return;
    aemp_build_t *b = aemp_build_new();
    for (size_t i = 0; i + 1 < n; i++)
        aemp_build_val(b, aemp_msg_at(msg, i));
    aemp_snd(to, aemp_build_msg(b));
}

/* server: SIGTERM leaves the loop. */
static ev_signal sigterm_w;
static void on_sigterm(EV_P_ ev_signal *w, int revents)
{
    aemp_stop();
}

void bu_serve(void)
{
    aemp_rcv("srv#sink", on_sink, NULL);
    aemp_rcv("srv#echo", on_echo, NULL);
    aemp_msg_t *listeners = aemp_listeners();
    const char *addr = aemp_msg_str(listeners, 0, NULL);
    printf("LISTEN %s\n", addr ? addr : "?");
    fflush(stdout);
    aemp_msg_unref(listeners);
    ev_signal_init(&sigterm_w, on_sigterm, SIGTERM);
    ev_signal_start(aemp_loop(), &sigterm_w);
    aemp_run();
}

/* client: the answer to the first cal (1) or its timeout (-1). */
static int ready;
static void on_ready(aemp_msg_t *reply, void *arg)
{
    ready = reply ? 1 : -1;
}

double bu_connect(const char *addr)
{
    aemp_msg_t *a = aemp_msgf("s", addr);
    aemp_add_node("srv", a);
    aemp_msg_unref(a);
    ready = 0;
    double t0 = bu_now();
    aemp_cal("srv#echo", aemp_msgf("s", "hello"), on_ready, NULL, 10);
    run_until(&ready);
    double dt = bu_now() - t0;
    if (ready < 0) {
        fprintf(stderr, "%s: no answer from the server node at %s\n", prog, addr);
        exit(1);
    }
    return dt;
}

/* client, one-way: state of the sender */
static long total, sent, acked;
static int producing, oneway_done;
static const char *producer;

/* Send up to BU_BATCH messages within the window; while more may go, ask
 * the producer port for the next batch (after the loop turned). */
static void produce(void)
{
    for (int i = 0; i < BU_BATCH && sent < total && sent - acked < BU_WINDOW; i++, sent++)
        aemp_sndf("srv#sink", "sIs", "ping", (int64_t)sent, "abcdefghijklmnop");
    producing = sent < total && sent - acked < BU_WINDOW;
    if (producing)
        aemp_sndf(producer, "s", "go");
}

/* producer port: the next batch. */
static void on_produce(aemp_msg_t *msg, void *arg)
{
    produce();
}

/* peval on the producer port: the first batch. */
static void start_producing(void *arg)
{
    produce();
}

/* "cli#ack": the sink's count; done at total, else reopen the window. */
static void on_ack(aemp_msg_t *msg, void *arg)
{
    int64_t n;
    if (aemp_msg_int(msg, 0, &n) != 0)
        return;
    acked = (long)n;
    if (acked >= total)
        oneway_done = 1;
    else if (!producing)
        produce();
}

int bu_oneway(long n)
{
    total = (n + BU_ACK_EVERY - 1) / BU_ACK_EVERY * BU_ACK_EVERY;
    aemp_rcv("cli#ack", on_ack, NULL);
    producer = aemp_port(on_produce, NULL);
    double t0 = bu_now();
    aemp_peval(producer, start_producing, NULL);
    run_until(&oneway_done);
    double dt = bu_now() - t0;
    printf("VALUE %.0f\n", total / dt);
    fflush(stdout);
    aemp_shutdown();
    return 0;
}

/* client, round trips: state of the pinger */
static long rounds, round_no;
static double *samples, t_send;
static int rtt_done;

/* Send the next ping, its answer to "cli#pong". */
static void send_ping(void)
{
    t_send = bu_now();
    aemp_sndf("srv#echo", "sIs", "ping", (int64_t)round_no, "cli#pong");
}

/* "cli#pong": record the round trip (after the warm-up), ping again. */
static void on_pong(aemp_msg_t *msg, void *arg)
{
    double t = bu_now();
    if (round_no >= BU_WARMUP_ROUNDS)
        samples[round_no - BU_WARMUP_ROUNDS] = t - t_send;
    if (++round_no == rounds + BU_WARMUP_ROUNDS) {
        rtt_done = 1;
        return;
    }
    send_ping();
}

int bu_rtt(long n)
{
    rounds = n;
    samples = calloc((size_t)n, sizeof *samples);
    if (!samples)
        return 1;
    aemp_rcv("cli#pong", on_pong, NULL);
    send_ping();
    run_until(&rtt_done);
    double median, p99;
    bu_percentiles(samples, (size_t)n, 1e6, &median, &p99);
    printf("VALUE %.1f %.1f\n", median, p99);
    fflush(stdout);
    free(samples);
    aemp_shutdown();
    return 0;
}

/* ------------------------------------------------------------ bare TCP */

int bu_tcp_accept_one(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(l, 1) < 0
        || getsockname(l, (struct sockaddr *)&sin, &len) < 0) {
        fprintf(stderr, "%s: listen: %m\n", prog);
        return -1;
    }
    printf("LISTEN %d\n", ntohs(sin.sin_port));
    fflush(stdout);
    int fd = accept(l, NULL, NULL);
    if (fd < 0)
        fprintf(stderr, "%s: accept: %m\n", prog);
    close(l);
    return fd;
}

int bu_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        fprintf(stderr, "%s: connect to 127.0.0.1:%d: %m\n", prog, port);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int bu_full_io(int fd, char *buf, size_t n, int writing)
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
