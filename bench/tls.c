/* bench/tls - the cost of TLS: message throughput, round-trip latency and
 * connection set-up between two nodes on 127.0.0.1, over TLS and over plain
 * TCP (HMAC auth) in the same run, CBOR framing.
 *
 * Prints:
 *   RESULT tls_oneway_cbor <n> msgs/s      ["tag", i, "x"] one way, acked in bulk
 *   RESULT plain_oneway_cbor <n> msgs/s
 *   RESULT tls_rtt_median <us> us          ping-pong through a remote port
 *   RESULT tls_rtt_p99 <us> us
 *   RESULT plain_rtt_median <us> us
 *   RESULT plain_rtt_p99 <us> us
 *   RESULT tls_handshake <ms> ms           median time from the first send to a
 *   RESULT plain_handshake <ms> ms         new node until its reply: TCP connect,
 *                                          greeting, [TLS,] auth, one round trip
 * Usage: bench_tls [messages [rounds [connections]]]
 *        (defaults 2,000,000, 20,000 and 50)
 *
 * The certificate (RSA 2048, self-signed, as `aemp gencert` makes it) is
 * generated once into a temporary file that both nodes load as `cert`.
 * Every measurement runs in two fresh processes (this program, re-executed
 * through /proc/self/exe with a role argument): a server node and a client
 * node.  This process only supervises: it reads the children's
 * "LISTEN"/"VALUE" lines with bounded waits and stops every child by its
 * PID; the children also carry an alarm and die with their parent.
 *
 * One-way flow control: the sink acks every ACK_EVERY messages; the sender
 * keeps at most WINDOW messages unacked, so memory stays bounded.
 */
#include <aemp.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACK_EVERY 50000
#define WINDOW 200000
#define BATCH 10000
#define WARMUP_ROUNDS 1000
#define CHILD_ALARM 300        /* seconds: a child never lives longer */
#define SECRET "bench-tls-secret"

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

/* Median and p99 of n samples, times scale; sorts them. */
static void percentiles(double *s, size_t n, double scale, double *median, double *p99)
{
    qsort(s, n, sizeof *s, cmp_double);
    *median = s[n / 2] * scale;
    *p99 = s[(size_t)(n * 0.99)] * scale;
}

static void child_safety(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(CHILD_ALARM);
}

/* ------------------------------------------------------- certificate */

/* A self-signed RSA 2048 certificate followed by its key (PEM) into the
 * file `path`.  Returns 0 or -1. */
static int make_cert(const char *path)
{
    int rc = -1;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    FILE *f = NULL;
    if (!key || !x || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1)
        || !X509_gmtime_adj(X509_getm_notBefore(x), 0)
        || !X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 24 * 3600) || !X509_set_pubkey(x, key))
        goto out;
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"AnyEvent::MP", -1, -1, 0)
        || !X509_set_issuer_name(x, name) || !X509_sign(x, key, EVP_sha256()))
        goto out;
    if (!(f = fopen(path, "w")) || !PEM_write_X509(f, x) || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
        goto out;
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = -1;
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* The content of a text file (malloc'd) or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *s = calloc(1, 65536);
    size_t n = s ? fread(s, 1, 65535, f) : 0;
    fclose(f);
    if (s)
        s[n] = 0;
    return s;
}

/* ------------------------------------------------------------ aemp nodes */

/* Configure as nodeid; with a cert file (mode "tls") TLS is used, else
 * the shared secret. */
static void configure(const char *nodeid, const char *mode, const char *certfile)
{
    char err[512];
    int r;
    if (!strcmp(mode, "tls")) {
        char *pem = slurp(certfile);
        if (!pem) {
            fprintf(stderr, "bench_tls: cannot read %s\n", certfile);
            exit(1);
        }
        r = aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b}", "nodeid", nodeid, "cert", pem,
                            "binds", "127.0.0.1:0", "framing_format", "cbor", "norc", 1);
        free(pem);
    } else {
        r = aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b}", "nodeid", nodeid, "secret",
                            SECRET, "binds", "127.0.0.1:0", "framing_format", "cbor", "norc", 1);
    }
    if (r != 0) {
        fprintf(stderr, "bench_tls: configure %s: %s\n", nodeid, err);
        exit(1);
    }
}

/* server: "srv#sink" counts and acks to the port in the message; "srv#echo"
 * sends each message minus its last element to the port that is its last
 * element. */
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

static int run_server(const char *mode, const char *certfile)
{
    child_safety();
    configure("srv", mode, certfile);
    aemp_rcv("srv#sink", on_sink, NULL);
    aemp_rcv("srv#echo", on_echo, NULL);
    printf("LISTEN %s\n", json_string_value(json_array_get(aemp_listeners(), 0)));
    fflush(stdout);
    ev_signal_init(&sigterm_w, on_sigterm, SIGTERM);
    ev_signal_start(aemp_loop(), &sigterm_w);
    aemp_run();
    aemp_shutdown();
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

/* Configure as nodeid, send one cal to srv#echo at addr and wait for the
 * reply; returns the seconds it took (the connection set-up included). */
static double client_connect(const char *nodeid, const char *mode, const char *certfile, const char *addr)
{
    configure(nodeid, mode, certfile);
    json_t *a = json_pack("[s]", addr);
    aemp_add_node("srv", a);
    json_decref(a);
    ready = 0;
    double t0 = now();
    aemp_cal("srv#echo", json_pack("[s]", "hello"), on_ready, NULL, 10);
    run_until(&ready);
    double dt = now() - t0;
    if (ready < 0) {
        fprintf(stderr, "bench_tls: no answer from the server node at %s\n", addr);
        exit(1);
    }
    return dt;
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

static void on_ack(json_t *msg, void *arg)
{
    acked = (long)json_integer_value(json_array_get(msg, 0));
    if (acked >= total)
        oneway_done = 1;
    else if (!producing)
        produce();
}

static int run_oneway(const char *mode, const char *certfile, const char *addr, long n)
{
    child_safety();
    total = (n + ACK_EVERY - 1) / ACK_EVERY * ACK_EVERY;
    client_connect("cli", mode, certfile, addr);
    aemp_rcv("cli#ack", on_ack, NULL);
    producer = aemp_port(on_produce, NULL);
    double t0 = now();
    aemp_peval(producer, (void (*)(void *))produce, NULL);
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

static int run_rtt(const char *mode, const char *certfile, const char *addr, long n)
{
    child_safety();
    rounds = n;
    samples = calloc((size_t)n, sizeof *samples);
    if (!samples)
        return 1;
    client_connect("cli", mode, certfile, addr);
    aemp_rcv("cli#pong", on_pong, NULL);
    send_ping();
    run_until(&rtt_done);
    double median, p99;
    percentiles(samples, (size_t)n, 1e6, &median, &p99);
    printf("VALUE %.1f %.1f\n", median, p99);
    fflush(stdout);
    free(samples);
    aemp_shutdown();
    return 0;
}

/* client, connection set-up: n fresh nodes (new node IDs) one after the
 * other, each reconfigured from scratch in this process. */
static int run_connect(const char *mode, const char *certfile, const char *addr, long n)
{
    child_safety();
    double *s = calloc((size_t)n, sizeof *s);
    if (!s)
        return 1;
    for (long i = 0; i < n; i++) {
        aemp_init(NULL);
        s[i] = client_connect("cli/", mode, certfile, addr);   /* "cli/<random>" */
        aemp_shutdown();
    }
    double median, p99;
    percentiles(s, (size_t)n, 1e3, &median, &p99);
    printf("VALUE %.2f %.2f\n", median, p99);
    fflush(stdout);
    free(s);
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
    argv[n++] = "bench_tls";
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

/* One measurement: a server child in `mode`, then a client child running
 * `role` whose VALUE line is the result.  Returns 0 and the line's text in
 * value. */
static int measure(const char *mode, const char *certfile, const char *role, const char *count, char *value,
                   size_t size)
{
    child_t s = { 0 }, c = { 0 };
    char addr[128];
    int rc = -1;
    const char *server[] = { "--server", mode, certfile, NULL };
    if (start_child(&s, server) < 0 || read_line(&s, "LISTEN ", addr, sizeof addr, 10) < 0) {
        fprintf(stderr, "bench_tls: the %s server did not start\n", mode);
        goto out;
    }
    const char *cargs[] = { role, mode, certfile, addr, count, NULL };
    if (start_child(&c, cargs) < 0 || read_line(&c, "VALUE ", value, size, 240) < 0) {
        fprintf(stderr, "bench_tls: %s %s gave no result\n", role, mode);
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
    if (argc >= 4 && !strcmp(argv[1], "--server"))
        return run_server(argv[2], argv[3]);
    if (argc >= 6 && !strcmp(argv[1], "--oneway"))
        return run_oneway(argv[2], argv[3], argv[4], atol(argv[5]));
    if (argc >= 6 && !strcmp(argv[1], "--rtt"))
        return run_rtt(argv[2], argv[3], argv[4], atol(argv[5]));
    if (argc >= 6 && !strcmp(argv[1], "--connect"))
        return run_connect(argv[2], argv[3], argv[4], atol(argv[5]));

    long msgs = argc > 1 ? atol(argv[1]) : 2000000;
    long nrounds = argc > 2 ? atol(argv[2]) : 20000;
    long nconn = argc > 3 ? atol(argv[3]) : 50;
    if (msgs <= 0 || nrounds <= 0 || nconn <= 0) {
        fprintf(stderr, "usage: bench_tls [messages [rounds [connections]]]\n");
        return 2;
    }
    char certfile[] = "/tmp/bench-tls-XXXXXX";
    int fd = mkstemp(certfile);
    if (fd < 0 || close(fd) < 0 || make_cert(certfile) < 0) {
        fprintf(stderr, "bench_tls: cannot make a certificate in %s\n", certfile);
        if (fd >= 0)
            unlink(certfile);
        return 1;
    }
    char nmsgs[32], nr[32], nc[32], v[128];
    snprintf(nmsgs, sizeof nmsgs, "%ld", msgs);
    snprintf(nr, sizeof nr, "%ld", nrounds);
    snprintf(nc, sizeof nc, "%ld", nconn);
    static const char *const modes[] = { "tls", "plain" };
    int failed = 0;
    double median, p99;

    for (int m = 0; m < 2; m++) {
        if (measure(modes[m], certfile, "--oneway", nmsgs, v, sizeof v) == 0)
            printf("RESULT %s_oneway_cbor %s msgs/s\n", modes[m], v);
        else
            failed = 1;
        fflush(stdout);
    }
    for (int m = 0; m < 2; m++) {
        if (measure(modes[m], certfile, "--rtt", nr, v, sizeof v) == 0
            && sscanf(v, "%lf %lf", &median, &p99) == 2) {
            printf("RESULT %s_rtt_median %.1f us\n", modes[m], median);
            printf("RESULT %s_rtt_p99 %.1f us\n", modes[m], p99);
        } else {
            failed = 1;
        }
        fflush(stdout);
    }
    for (int m = 0; m < 2; m++) {
        if (measure(modes[m], certfile, "--connect", nc, v, sizeof v) == 0
            && sscanf(v, "%lf %lf", &median, &p99) == 2)
            printf("RESULT %s_handshake %.2f ms\n", modes[m], median);
        else
            failed = 1;
        fflush(stdout);
    }
    unlink(certfile);
    return failed;
}
