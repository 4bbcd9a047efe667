/* AnyEvent::MP::DataConn (src/dataconn.c, src/stream.c) between real
 * processes over real sockets.  This test process is the node "tester"
 * (with a certificate); its peers are
 *   - libaemp nodes: this program re-executed ("node" mode), plain or with
 *     the same certificate (TLS), with or without listeners;
 *   - fake Perl 1.30 nodes: forked children that speak the 1.30 wire
 *     protocol through proto.c with blocking sockets and report what they
 *     saw on the wire, byte for byte, through a pipe.
 * Covers: a local socketpair; 100 MB each way between two nodes, plain and
 * TLS, checksums compared; a target without listeners (_connect); the
 * exact _expect/_connect/snd frames and the aemp-dataconn greeting as a
 * 1.30 peer receives them; libaemp as the target of a 1.30 caller; an
 * unknown dataconn_id; the target's and the caller's timeouts killing the
 * caller port with ("AnyEvent::MP::DataConn", reason); a wrong secret. */
#include "testutil.h"

#include "procutil.h"
#include "proto.h"
#include "aemp_dataconn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include "internal.h"   /* aemp__node_set_addrs, aemp__node_find */
#include "frame.h"
#include "node.h"

#define SECRET "dataconn-test-secret"
#define BULK ((uint64_t)100 << 20)

static char tmpdir[64], rcenv[128];
static pu_node_t plainpeer, tlspeer, quietpeer;

/* ------------------------------------------------------ data and digests */

/* A deterministic byte stream (xorshift64*), len bytes from state *x. */
static void fill(uint8_t *p, size_t len, uint64_t *x)
{
    for (size_t i = 0; i < len; i += 8) {
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        uint64_t v = *x * 0x2545F4914F6CDD1DULL;
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(p + i, &v, n);
    }
}

static void hex_digest(EVP_MD_CTX *md, char *out)
{
    unsigned char d[32];
    unsigned n = 0;
    EVP_DigestFinal_ex(md, d, &n);
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* ------------------------------------- the functions both kinds of node run */

/* dctest::sink (replyport, <stream>): count and digest everything, then
 * send ["sink", bytes, sha256] to replyport. */
typedef struct sink {
    aemp_stream_t *s;
    EVP_MD_CTX *md;
    uint64_t bytes;
    char *reply;
    int keep;          /* the stream stays open at the end (we still write) */
} sink_t;

static void sink_read(aemp_stream_t *s, const void *data, size_t len, void *arg)
{
    sink_t *k = arg;
    EVP_DigestUpdate(k->md, data, len);
    k->bytes += len;
}

static void sink_end(sink_t *k, const char *error)
{
    char hex[65];
    hex_digest(k->md, hex);
    if (error)
        aemp_sndf(k->reply, "sIs", "sink-error", (int64_t)k->bytes, error);
    else
        aemp_sndf(k->reply, "sIs", "sink", (int64_t)k->bytes, hex);
    EVP_MD_CTX_free(k->md);
    if (!k->keep)
        aemp_stream_close(k->s);
    free(k->reply);
    free(k);
}

static void sink_eof(aemp_stream_t *s, void *arg) { sink_end(arg, NULL); }
static void sink_error(aemp_stream_t *s, const char *e, void *arg) { sink_end(arg, e); }

static void sink_start_keep(aemp_stream_t *s, const char *reply, int keep)
{
    sink_t *k = calloc(1, sizeof *k);
    k->keep = keep;
    k->s = s;
    k->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(k->md, EVP_sha256(), NULL);
    k->reply = strdup(reply);
    aemp_stream_cbs_t cbs = { .on_read = sink_read, .on_eof = sink_eof, .on_error = sink_error };
    aemp_stream_set_cbs(s, &cbs, k);
}

static void sink_start(aemp_stream_t *s, const char *reply)
{
    sink_start_keep(s, reply, 0);
}

static void fn_sink(aemp_msg_t *args, void *unused)
{
    aemp_stream_t *s = aemp_dataconn_stream(args);
    const char *reply = aemp_msg_str(args, 0, NULL);
    if (s && reply)
        sink_start(s, reply);
}

/* dctest::source (replyport, bytes, seed, <stream>): write that many bytes
 * of the seeded stream (respecting the high-water mark), half-close, send
 * ["source", bytes, sha256] to replyport; close at the peer's EOF. */
typedef struct source {
    aemp_stream_t *s;
    EVP_MD_CTX *md;
    uint64_t left, x, total;
    char *reply;
} source_t;

static void source_done(source_t *g)
{
    EVP_MD_CTX_free(g->md);
    aemp_stream_close(g->s);
    free(g->reply);
    free(g);
}

static void source_pump(aemp_stream_t *s, void *arg)
{
    source_t *g = arg;
    static uint8_t chunk[65536];
    while (g->left) {
        size_t n = g->left < sizeof chunk ? (size_t)g->left : sizeof chunk;
        fill(chunk, n, &g->x);
        EVP_DigestUpdate(g->md, chunk, n);
        g->left -= n;
        if (aemp_stream_write(s, chunk, n) == 0 && g->left)
            return;   /* on_drain brings us back */
    }
    if (g->reply) {
        char hex[65];
        hex_digest(g->md, hex);
        aemp_stream_shutdown(s);
        aemp_sndf(g->reply, "sIs", "source", (int64_t)g->total, hex);
        free(g->reply);
        g->reply = NULL;
    }
}

static void source_eof(aemp_stream_t *s, void *arg) { source_done(arg); }
static void source_error(aemp_stream_t *s, const char *e, void *arg) { source_done(arg); }

static void source_start(aemp_stream_t *s, const char *reply, uint64_t bytes, uint64_t seed)
{
    source_t *g = calloc(1, sizeof *g);
    g->s = s;
    g->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(g->md, EVP_sha256(), NULL);
    g->left = g->total = bytes;
    g->x = seed | 1;
    g->reply = strdup(reply);
    aemp_stream_cbs_t cbs = { .on_drain = source_pump, .on_eof = source_eof, .on_error = source_error };
    aemp_stream_set_cbs(s, &cbs, g);
    source_pump(s, g);
}

static void fn_source(aemp_msg_t *args, void *unused)
{
    aemp_stream_t *s = aemp_dataconn_stream(args);
    const char *reply = aemp_msg_str(args, 0, NULL);
    int64_t bytes = 0, seed = 0;
    if (s && reply && aemp_val_int(aemp_msg_at(args, 1), &bytes) == 0
        && aemp_val_int(aemp_msg_at(args, 2), &seed) == 0)
        source_start(s, reply, (uint64_t)bytes, (uint64_t)seed);
}

/* dctest::echo (<stream>): everything back, half-close at EOF. */
static void echo_read(aemp_stream_t *s, const void *data, size_t len, void *arg)
{
    aemp_stream_write(s, data, len);
}
static void echo_eof(aemp_stream_t *s, void *arg) { aemp_stream_shutdown(s); }
static void echo_error(aemp_stream_t *s, const char *e, void *arg) { aemp_stream_close(s); }

static void fn_echo(aemp_msg_t *args, void *unused)
{
    aemp_stream_t *s = aemp_dataconn_stream(args);
    if (!s)
        return;
    aemp_stream_cbs_t cbs = { .on_read = echo_read, .on_eof = echo_eof, .on_error = echo_error };
    aemp_stream_set_cbs(s, &cbs, NULL);
}

static void register_fns(void)
{
    aemp_func_register("dctest::sink", fn_sink, NULL);
    aemp_func_register("dctest::source", fn_source, NULL);
    aemp_func_register("dctest::echo", fn_echo, NULL);
}

/* ------------------------------------------------- a re-executed node */

static int node_main(const char *id, const char *binds, const char *seed, const char *profile)
{
    signal(SIGPIPE, SIG_IGN);
    register_fns();
    char err[512];
    int r;
    if (!strcmp(binds, "-"))   /* no listeners */
        r = aemp_configuref(err, sizeof err, "{s:s, s:s, s:[], s:[s]}", "nodeid", id, "secret", SECRET, "binds",
                            "seeds", seed);
    else if (strcmp(profile, "-"))
        r = aemp_configuref(err, sizeof err, "{s:s, s:s, s:s, s:[s], s:[s]}", "profile", profile, "nodeid", id,
                            "secret", SECRET, "binds", binds, "seeds", seed);
    else
        r = aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s]}", "nodeid", id, "secret", SECRET, "binds",
                            binds, "seeds", seed);
    if (r != 0) {
        fprintf(stderr, "%s: configure: %s\n", id, err);
        return 1;
    }
    aemp_msg_t *l = aemp_listeners();
    printf("%s listening on %s\n", id, aemp_msg_len(l) ? aemp_msg_str(l, 0, NULL) : "-");
    fflush(stdout);
    aemp_msg_unref(l);
    signal(SIGTERM, SIG_DFL);
    aemp_run();
    return 0;
}

static char tester_addr[64];

static int start_node(pu_node_t *n, const char *id, const char *binds, const char *profile)
{
    const char *argv[] = { "test_dataconn", "node", id, binds, tester_addr, profile, NULL };
    return pu_exec(n, "/proc/self/exe", argv, NULL, NULL, 0) && pu_await(n);
}

/* Wait until node is up (it seeds us). */
static int await_up(const char *node)
{
    for (int i = 0; i < 100; i++) {
        if (aemp_node_is_up(node) == 1)
            return 1;
        tu_run_for(0.05);
    }
    return 0;
}

/* ------------------------------------------------- the caller's side */

typedef struct result {
    int done;
    aemp_stream_t *s;
    char *error;
} result_t;

static void got_stream(aemp_stream_t *s, const char *error, void *arg)
{
    result_t *r = arg;
    r->done = 1;
    r->s = s;
    r->error = error ? strdup(error) : NULL;
}

/* A port that records what it receives (all, the last "sink" and
 * "source" reports), and its kill reason. */
static tu_box_t inbox, killbox, sinkbox, sourcebox;

static void record(aemp_msg_t *m, void *arg)
{
    tu_box_put(m, &inbox);
    const char *tag = aemp_msg_str(m, 0, NULL);
    if (tag && !strcmp(tag, "sink"))
        tu_box_put(m, &sinkbox);
    if (tag && !strcmp(tag, "source"))
        tu_box_put(m, &sourcebox);
}

static const char *new_port(void)
{
    tu_box_clear(&inbox);
    tu_box_clear(&killbox);
    tu_box_clear(&sinkbox);
    tu_box_clear(&sourcebox);
    const char *p = aemp_port(record, NULL);
    aemp_mon(p, tu_box_put, &killbox, NULL);
    return p;
}

/* Connect port to target for initfunc(initdata); run until cb. */
static void connect_ok(const char *port, const char *target, const char *initfunc, aemp_msg_t *initdata,
                       result_t *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(aemp_dataconn_connect(port, target, 10, initfunc, initdata, got_stream, r), 0);
    assert_true(tu_run_until(&r->done, 15));
    if (!r->s)
        fail_msg("data connection to %s failed: %s", target, r->error ? r->error : "?");
    assert_null(r->error);
}

/* Send BULK bytes to the peer's sink, and take BULK bytes from its
 * source; compare digests.  Returns MB/s of the slower direction. */
static double bulk(const char *target, int expect_tls, const char *label)
{
    const char *port = new_port();
    result_t r;
    /* we write, the target digests */
    double t0 = pu_now();
    connect_ok(port, target, "dctest::sink", aemp_msgf("s", port), &r);
    assert_int_equal(aemp_stream_tls(r.s), expect_tls);
    assert_string_equal(aemp_stream_peer(r.s), target);
    char myport[256];
    snprintf(myport, sizeof myport, "%s", port);
    source_start(r.s, myport, BULK, 42);   /* also sends us ["source", n, digest] */
    for (int i = 0; i < 600 && (!sinkbox.count || !sourcebox.count); i++)
        tu_run_for(0.1);
    assert_int_equal(sinkbox.count, 1);
    assert_int_equal(sourcebox.count, 1);
    double t1 = pu_now();
    const aemp_msg_t *m = sinkbox.last;
    int64_t n = 0;
    aemp_val_int(aemp_msg_at(m, 1), &n);
    assert_int_equal(n, (int64_t)BULK);
    char want[65];
    {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        uint64_t x = 42 | 1;
        static uint8_t chunk[65536];
        for (uint64_t left = BULK; left;) {
            size_t c = left < sizeof chunk ? (size_t)left : sizeof chunk;
            fill(chunk, c, &x);
            EVP_DigestUpdate(md, chunk, c);
            left -= c;
        }
        hex_digest(md, want);
        EVP_MD_CTX_free(md);
    }
    assert_string_equal(aemp_msg_str(m, 2, NULL), want);
    assert_string_equal(aemp_msg_str(sourcebox.last, 2, NULL), want);
    double up = BULK / 1048576.0 / (t1 - t0);

    /* the target writes, we digest */
    const char *port2 = new_port();
    snprintf(myport, sizeof myport, "%s", port2);
    t0 = pu_now();
    connect_ok(port2, target, "dctest::source", aemp_msgf("sIi", port2, (int64_t)BULK, 42), &r);
    sink_start(r.s, myport);
    for (int i = 0; i < 600 && (!sinkbox.count || !sourcebox.count); i++)
        tu_run_for(0.1);
    assert_int_equal(sinkbox.count, 1);   /* our sink's report */
    assert_int_equal(sourcebox.count, 1); /* the target source's */
    t1 = pu_now();
    m = sinkbox.last;
    aemp_val_int(aemp_msg_at(m, 1), &n);
    assert_int_equal(n, (int64_t)BULK);
    assert_string_equal(aemp_msg_str(m, 2, NULL), want);   /* same seed, same bytes */
    assert_string_equal(aemp_msg_str(sourcebox.last, 2, NULL), want);
    double down = BULK / 1048576.0 / (t1 - t0);
    printf("RESULT dataconn_%s_to_peer_mb_s %.0f MB/s\n", label, up);
    printf("RESULT dataconn_%s_from_peer_mb_s %.0f MB/s\n", label, down);
    assert_int_equal(killbox.count, 0);
    return up < down ? up : down;
}

static void bulk_plain(void **state)
{
    bulk(plainpeer.nodeid, 0, "plain");
}

static void bulk_tls(void **state)
{
    bulk(tlspeer.nodeid, 1, "tls");
}

/* Our own node: a socketpair, initfunc then callback inside the call. */
static void local_pair(void **state)
{
    const char *port = new_port();
    result_t r = { 0 };
    assert_int_equal(aemp_dataconn_connect(port, aemp_node(), 5, "dctest::echo", NULL, got_stream, &r), 0);
    assert_int_equal(r.done, 1);   /* already */
    assert_non_null(r.s);
    assert_string_equal(aemp_stream_peer(r.s), aemp_node());
    assert_int_equal(aemp_stream_tls(r.s), 0);
    char myport[256];
    snprintf(myport, sizeof myport, "%s", port);
    sink_start_keep(r.s, myport, 1);
    aemp_stream_t *s = r.s;
    assert_int_equal(aemp_stream_write(s, "hello, pair", 11), 1);
    assert_int_equal(aemp_stream_shutdown(s), 0);
    assert_int_equal(aemp_stream_write(s, "x", 1), AEMP_EINVAL);
    tu_run_until(&inbox.count, 2.5);
    assert_int_equal(inbox.count, 1);
    tu_assert_msg(inbox.last, "[\"sink\", 11, \"bd70efb9f61670b15414ae4eb2851afc3448409dedd572b53c58f838d761a36c\"]");
    aemp_stream_close(s);
}

/* A target without listeners: it is asked to connect to us. */
static void target_without_listeners(void **state)
{
    const char *port = new_port();
    result_t r;
    double t0 = pu_now();
    connect_ok(port, quietpeer.nodeid, "dctest::echo", NULL, &r);
    assert_true(pu_now() - t0 < 5);
    char myport[256];
    snprintf(myport, sizeof myport, "%s", port);
    sink_start(r.s, myport);
    static uint8_t buf[1 << 20];
    uint64_t x = 7;
    fill(buf, sizeof buf, &x);
    aemp_stream_write(r.s, buf, sizeof buf);
    aemp_stream_shutdown(r.s);
    tu_run_until(&inbox.count, 5);
    assert_int_equal(inbox.count, 1);
    int64_t n = 0;
    aemp_val_int(aemp_msg_at(inbox.last, 1), &n);
    assert_int_equal(n, (int64_t)sizeof buf);
    assert_int_equal(killbox.count, 0);
}

/* A target that never answers: our own timeout kills the caller port. */
static void caller_timeout(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);   /* listens, never accepts */
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    listen(fd, 4);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sin.sin_port));
    aemp_msg_t *a = aemp_msgf("s", addr);
    aemp_add_node("ghost", a);
    aemp_msg_unref(a);
    const char *port = new_port();
    result_t r = { 0 };
    double t0 = pu_now();
    assert_int_equal(aemp_dataconn_connect(port, "ghost#x", 1, "dctest::echo", NULL, got_stream, &r), 0);
    assert_true(tu_run_until(&r.done, 5));
    assert_null(r.s);
    assert_string_equal(r.error, "ghost: unable to establish connection within 1 seconds");
    assert_true(pu_now() - t0 < 2.5);
    tu_run_until(&killbox.count, 1);
    assert_int_equal(killbox.count, 1);
    tu_assert_msg(killbox.last, "[\"AnyEvent::MP::DataConn\", \"ghost: unable to establish connection within 1 seconds\"]");
    free(r.error);
    close(fd);
}

static void bad_calls(void **state)
{
    result_t r = { 0 };
    const char *port = new_port();
    assert_int_equal(aemp_dataconn_connect(NULL, "x", 1, "a::b", NULL, got_stream, &r), AEMP_ENOSELF);
    assert_int_equal(aemp_dataconn_connect(port, "x", 0, "a::b", NULL, got_stream, &r), AEMP_EINVAL);
    assert_int_equal(aemp_dataconn_connect(port, "x", 1, "nocolons", NULL, got_stream, &r), AEMP_EINVAL);
    assert_int_equal(aemp_dataconn_connect(port, "x", 1, "a::b", NULL, NULL, &r), AEMP_EINVAL);
    assert_int_equal(aemp_dataconn_connect("other#p", "x", 1, "a::b", NULL, got_stream, &r), AEMP_ENOTLOCAL);
    assert_int_equal(aemp_dataconn_connect(port, "#p", 1, "a::b", NULL, got_stream, &r), AEMP_EPORTID);
    assert_int_equal(r.done, 0);
    aemp_msg_t *args = aemp_msgf("s", "not a handle");
    assert_null(aemp_dataconn_stream(args));
    aemp_msg_unref(args);
}

/* ----------------------------------------------- fake Perl 1.30 nodes */

/* A blocking 1.30 peer on proto.c: one connection. */
typedef struct fake {
    int fd;
    aemp_proto_t *p;
    aemp_buf_t raw;   /* data-phase bytes as they came (JSON text) */
    int authed;
} fake_t;

static int fk_pipe = -1;   /* reports to the test process, one line each */
static int fk_quiet;       /* fk_handshake does not report its failure */

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(fk_pipe, line, (size_t)n) != n)
        _exit(3);
}

static int fk_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 8) < 0)
        return -1;
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    return fd;
}

static int fk_dial(const char *addr)
{
    char host[64];
    int port = 0;
    if (sscanf(addr, "%63[^:]:%d", host, &port) != 2)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, host, &sin.sin_addr);
    return connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0 ? fd : -1;
}

static int fk_accept(int lfd, double seconds)
{
    struct pollfd p = { lfd, POLLIN, 0 };
    if (poll(&p, 1, (int)(seconds * 1000)) <= 0)
        return -1;
    return accept(lfd, NULL, NULL);
}

/* Start a 1.30 side on fd: protocol/dataconn_id for an extension
 * connection (NULL = a node connection). */
static void fk_init(fake_t *f, int fd, const char *node, const char *secret, const char *protocol,
                    const char *dcid, int accept_ext)
{
    memset(f, 0, sizeof *f);
    f->fd = fd;
    aemp_proto_cfg_t c;
    memset(&c, 0, sizeof c);
    c.nodeid = node;
    c.secret = (const uint8_t *)secret;
    c.secretlen = strlen(secret);
    c.dialects = AEMP_DIALECT_130;
    c.protocol = protocol;
    if (dcid) {
        c.extra_key[0] = "dataconn_id";
        c.extra_value[0] = dcid;
        c.n_extra = 1;
    }
    if (accept_ext)
        c.extensions[0] = "aemp-dataconn";
    f->p = aemp__proto_new(&c);
}

static void fk_flush(fake_t *f)
{
    aemp_buf_t *o = aemp__proto_out(f->p);
    while (aemp__buf_used(o)) {
        ssize_t w = write(f->fd, aemp__buf_head(o), aemp__buf_used(o));
        if (w <= 0)
            return;
        aemp__buf_consume(o, (size_t)w);
    }
}

/* Read once (bounded): 1 if bytes came, 0 at EOF or timeout. */
static int fk_read(fake_t *f, double seconds)
{
    fk_flush(f);
    struct pollfd p = { f->fd, POLLIN, 0 };
    if (poll(&p, 1, (int)(seconds * 1000)) <= 0)
        return 0;
    uint8_t buf[65536];
    ssize_t r = read(f->fd, buf, sizeof buf);
    if (r <= 0)
        return 0;
    aemp__buf_append(aemp__proto_in(f->p), buf, (size_t)r);
    if (f->authed)
        aemp__buf_append(&f->raw, buf, (size_t)r);
    return 1;
}

/* Through the handshake; 1 once authenticated.  *line1 (if given) gets
 * the peer's greeting line 1. */
static int fk_handshake(fake_t *f, char *line1, size_t size)
{
    double end = pu_now() + 5;
    while (pu_now() < end) {
        aemp_frame_t fr;
        aemp_proto_event_t ev;
        while ((ev = aemp__proto_next(f->p, &fr)) != AEMP_PROTO_NEED_MORE) {
            if (ev == AEMP_PROTO_ERROR) {
                report("HANDSHAKE-ERROR %s", aemp__proto_error(f->p));
                fk_flush(f);
                return 0;
            }
            if (ev == AEMP_PROTO_GREETING && line1)
                snprintf(line1, size, "%s", aemp__proto_line(f->p, 2));
            if (ev == AEMP_PROTO_AUTHED) {
                f->authed = 1;
                aemp_buf_t *in = aemp__proto_in(f->p);
                if (aemp__buf_used(in))
                    aemp__buf_append(&f->raw, aemp__buf_head(in), aemp__buf_used(in));
                fk_flush(f);
                return 1;
            }
        }
        if (!fk_read(f, end - pu_now()))
            break;
    }
    if (!fk_quiet)
        report("HANDSHAKE-ERROR no handshake");
    return 0;
}

/* The raw JSON text of the first frame in f->raw starting with prefix
 * (a malloc'd copy), or NULL. */
static char *fk_raw_frame(fake_t *f, const char *prefix)
{
    aemp__buf_putc(&f->raw, 0);
    f->raw.len--;
    const char *s = strstr((const char *)aemp__buf_head(&f->raw), prefix);
    if (!s)
        return NULL;
    int depth = 0, str = 0;
    for (const char *q = s; *q; q++) {
        if (str) {
            if (*q == '\\' && q[1])
                q++;
            else if (*q == '"')
                str = 0;
        } else if (*q == '"') {
            str = 1;
        } else if (*q == '[') {
            depth++;
        } else if (*q == ']' && --depth == 0) {
            return strndup(s, (size_t)(q - s + 1));
        }
    }
    return NULL;
}

/* Wait (bounded) for a data frame whose raw text starts with prefix; the
 * decoded frame [dest, msg...] goes to *msg (if given). */
static char *fk_wait_frame(fake_t *f, const char *prefix, aemp_msg_t **msg, double seconds)
{
    double end = pu_now() + seconds;
    for (;;) {
        aemp_frame_t fr;
        aemp_proto_event_t ev;
        while ((ev = aemp__proto_next(f->p, &fr)) == AEMP_PROTO_FRAME)
            aemp_msg_unref(fr.msg);   /* decoded to keep the protocol going; the raw text is searched */
        char *raw = fk_raw_frame(f, prefix);
        if (raw) {
            if (msg) {
                json_error_t je;
                json_t *j = json_loads(raw, 0, &je);
                *msg = j ? aemp_msg_from_json(j) : NULL;
                json_decref(j);
            }
            return raw;
        }
        if (ev == AEMP_PROTO_ERROR || pu_now() >= end || !fk_read(f, end - pu_now()))
            return NULL;
    }
}

static void fk_send(fake_t *f, const char *dest, aemp_msg_t *msg)
{
    aemp__proto_send(f->p, dest, strlen(dest), msg);
    aemp_msg_unref(msg);
    fk_flush(f);
}

/* Raw bytes after the handshake of an extension connection: write `out`,
 * half-close, read until EOF (bounded); returns what was read. */
static char *fk_raw_exchange(fake_t *f, const char *out, size_t *got)
{
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp_buf_t *left = aemp__proto_in(f->p);
    if (aemp__buf_used(left))
        aemp__buf_append(&in, aemp__buf_head(left), aemp__buf_used(left));
    if (out) {
        if (write(f->fd, out, strlen(out)) < 0)
            _exit(4);
        shutdown(f->fd, SHUT_WR);
    }
    double end = pu_now() + 5;
    for (;;) {
        struct pollfd p = { f->fd, POLLIN, 0 };
        if (poll(&p, 1, (int)((end - pu_now()) * 1000)) <= 0)
            break;
        char buf[4096];
        ssize_t r = read(f->fd, buf, sizeof buf);
        if (r <= 0)
            break;
        aemp__buf_append(&in, buf, (size_t)r);
    }
    *got = aemp__buf_used(&in);
    aemp__buf_putc(&in, 0);
    return (char *)in.data;
}

/* Fake 1.30 target "fake130" (listening on lfd): the libaemp node calls
 * connect_to it.  Reports EXPECT/SND frames, the dataconn GREETING, and
 * DATA read; with bad_secret the data connection uses a wrong secret. */
static void fake_target(int lfd, int bad_secret)
{
    fake_t n, d;
    int fd = fk_accept(lfd, 5);
    fk_init(&n, fd, "fake130", SECRET, NULL, NULL, 0);
    if (fd < 0 || !fk_handshake(&n, NULL, 0))
        _exit(1);
    aemp_msg_t *m = NULL;
    char *expect = fk_wait_frame(&n, "[\"\",\"AnyEvent::MP::DataConn::_expect\"", NULL, 5);
    report("EXPECT %s", expect ? expect : "-");
    char *snd = fk_wait_frame(&n, "[\"\",\"snd\"", &m, 5);
    report("SND %s", snd ? snd : "-");
    if (!snd)
        _exit(1);
    /* relay: the port gets [] */
    const char *tmp = strchr(aemp_msg_str(m, 2, NULL), '#') + 1;
    fk_send(&n, tmp, aemp_msg_empty());
    aemp_msg_unref(m);
    int dfd = fk_accept(lfd, 5);
    char line1[4096] = "";
    fk_init(&d, dfd, "fake130", bad_secret ? "wrong" : SECRET, NULL, NULL, 1);
    int ok = dfd >= 0 && fk_handshake(&d, line1, sizeof line1);
    report("GREETING %s", line1);
    if (!ok)
        _exit(0);
    report("PROTOCOL %s", aemp__proto_protocol(d.p));
    size_t got = 0;
    char *data = fk_raw_exchange(&d, "hello from fake130", &got);
    report("DATA %zu %s", got, data);
    _exit(0);
}

/* Fake 1.30 target "fake2" without listeners: it connects to the tester
 * (addr) and is asked to _connect back. */
static void fake_quiet_target(const char *addr)
{
    fake_t n, d;
    fk_init(&n, fk_dial(addr), "fake2", SECRET, NULL, NULL, 0);
    if (n.fd < 0 || !fk_handshake(&n, NULL, 0))
        _exit(1);
    report("UP");
    aemp_msg_t *m = NULL;
    char *expect = fk_wait_frame(&n, "[\"\",\"AnyEvent::MP::DataConn::_expect\"", &m, 10);
    report("EXPECT %s", expect ? expect : "-");
    char id[256];
    snprintf(id, sizeof id, "%s", m ? aemp_msg_str(m, 2, NULL) : "");
    aemp_msg_unref(m);
    char *snd = fk_wait_frame(&n, "[\"\",\"snd\"", &m, 5);
    if (!snd)
        _exit(1);
    fk_send(&n, strchr(aemp_msg_str(m, 2, NULL), '#') + 1, aemp_msg_empty());
    aemp_msg_unref(m);
    char *conn = fk_wait_frame(&n, "[\"\",\"AnyEvent::MP::DataConn::_connect\"", NULL, 5);
    report("CONNECT %s", conn ? conn : "-");
    fk_init(&d, fk_dial(addr), "fake2", SECRET, "aemp-dataconn", id, 0);
    if (d.fd < 0 || !fk_handshake(&d, NULL, 0))
        _exit(1);
    report("LINE1 %s", aemp__proto_line(d.p, 0));
    size_t got = 0;
    char *data = fk_raw_exchange(&d, "quiet hello", &got);
    report("DATA %zu %s", got, data);
    _exit(0);
}

/* Fake 1.30 caller "fake3": asks the tester to expect data connections
 * (as Perl's connect_to does), then connects for them. */
static void fake_caller(const char *addr)
{
    fake_t n, d, u;
    fk_init(&n, fk_dial(addr), "fake3", SECRET, NULL, NULL, 0);
    if (n.fd < 0 || !fk_handshake(&n, NULL, 0))
        _exit(1);
    /* exactly as a 1.30 node writes them */
    static const char expect1[] = "[\"\",\"AnyEvent::MP::DataConn::_expect\",\"b@fake3\",\"fake3#p1\",5,\"dctest::echo\"]"
                                  "[\"\",\"snd\",\"fake3#p2\"]";
    if (write(n.fd, expect1, strlen(expect1)) < 0)
        _exit(1);
    char *back = fk_wait_frame(&n, "[\"p2\"", NULL, 5);
    report("BARRIER %s", back ? back : "-");
    fk_init(&d, fk_dial(addr), "fake3", SECRET, "aemp-dataconn", "b@fake3", 0);
    if (d.fd < 0 || !fk_handshake(&d, NULL, 0))
        _exit(1);
    size_t got = 0;
    char *data = fk_raw_exchange(&d, "echo me, please", &got);
    report("ECHO %zu %s", got, data);

    /* an ID nobody expects: closed once it authenticated (perhaps before
     * its auth line reached us, as Perl's destroy would) */
    fk_init(&u, fk_dial(addr), "fake3", SECRET, "aemp-dataconn", "nope@fake3", 0);
    fk_quiet = 1;
    int authed = u.fd >= 0 && fk_handshake(&u, NULL, 0);
    fk_quiet = 0;
    data = authed ? fk_raw_exchange(&u, NULL, &got) : NULL;
    report("UNKNOWN %s", !authed || !got ? "closed" : "open");

    /* the target's own timeout kills our port */
    static const char expect2[] = "[\"\",\"AnyEvent::MP::DataConn::_expect\",\"c@fake3\",\"fake3#p3\",1,\"dctest::echo\"]";
    double t0 = pu_now();
    if (write(n.fd, expect2, strlen(expect2)) < 0)
        _exit(1);
    char *kil = fk_wait_frame(&n, "[\"\",\"kil\",\"p3\"", NULL, 5);
    report("KIL %.1f %s", pu_now() - t0, kil ? kil : "-");
    _exit(0);
}

typedef struct fake_proc {
    pid_t pid;
    int out;
} fake_proc_t;

static void fake_start(fake_proc_t *fp, void (*body)(const char *arg, int lfd, int flag), const char *arg, int lfd,
                       int flag)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(fds[0]);
        fk_pipe = fds[1];
        alarm(30);
        body(arg, lfd, flag);
        _exit(0);
    }
    close(fds[1]);
    fp->pid = pid;
    fp->out = fds[0];
}

static void fake_stop(fake_proc_t *fp)
{
    pu_node_t n = { .pid = fp->pid, .out = fp->out };
    pu_stop(&n, SIGKILL);   /* closes out too */
}

/* Run the loop until the fake reports a line (bounded). */
static int fake_line(fake_proc_t *fp, char *line, size_t size, double seconds)
{
    double end = pu_now() + seconds;
    size_t n = 0;
    while (pu_now() < end && n + 1 < size) {
        struct pollfd p = { fp->out, POLLIN, 0 };
        if (poll(&p, 1, 0) <= 0) {
            tu_run_for(0.01);
            continue;
        }
        char c;
        if (read(fp->out, &c, 1) != 1)
            return 0;
        if (c == '\n') {
            line[n] = 0;
            return 1;
        }
        line[n++] = c;
    }
    return 0;
}

static void body_target(const char *arg, int lfd, int bad) { fake_target(lfd, bad); }
static void body_quiet(const char *arg, int lfd, int flag) { fake_quiet_target(arg); }
static void body_caller(const char *arg, int lfd, int flag) { fake_caller(arg); }

/* The frames and the greeting a 1.30 target sees, byte for byte. */
static void wire_to_perl_target(void **state)
{
    int lport = 0, lfd = fk_listen(&lport);
    assert_true(lfd >= 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", lport);
    aemp_msg_t *a = aemp_msgf("s", addr);
    aemp_add_node("fake130", a);
    aemp_msg_unref(a);
    fake_proc_t fp;
    fake_start(&fp, body_target, NULL, lfd, 0);
    close(lfd);
    const char *port = new_port();
    char myport[256];
    snprintf(myport, sizeof myport, "%s", port);
    result_t r = { 0 };
    assert_int_equal(aemp_dataconn_connect(port, "fake130", 5, "fake::sink", aemp_msgf("si", "a", 1), got_stream, &r),
                     0);
    char line[8192];
    assert_true(fake_line(&fp, line, sizeof line, 10));
    /* ["","AnyEvent::MP::DataConn::_expect","<id>","tester#<port>",5,"fake::sink","a",1] */
    const char *pre = "EXPECT [\"\",\"AnyEvent::MP::DataConn::_expect\",\"";
    assert_memory_equal(line, pre, strlen(pre));
    char id[256];
    const char *ib = line + strlen(pre), *ie = strchr(ib, '"');
    assert_non_null(ie);
    snprintf(id, sizeof id, "%.*s", (int)(ie - ib), ib);
    assert_non_null(strstr(id, "@tester"));
    assert_string_equal(id + strlen(id) - 7, "@tester");
    char want[1024];
    snprintf(want, sizeof want, "\",\"%s\",5,\"fake::sink\",\"a\",1]", myport);
    assert_string_equal(ie, want);
    /* the round trip: ["","snd","tester#<tmp>"] */
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_memory_equal(line, "SND [\"\",\"snd\",\"tester#", 22);
    assert_string_equal(line + strlen(line) - 2, "\"]");
    /* then the data connection's greeting */
    assert_true(fake_line(&fp, line, sizeof line, 5));
    snprintf(want, sizeof want, "GREETING aemp-dataconn;1;tester;");
    assert_memory_equal(line, want, strlen(want));
    snprintf(want, sizeof want, ";dataconn_id=%s;", id);
    assert_non_null(strstr(line, want));
    assert_null(strstr(line, "mproto"));
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_string_equal(line, "PROTOCOL aemp-dataconn");
    assert_true(tu_run_until(&r.done, 5));
    assert_non_null(r.s);
    /* raw bytes both ways */
    sink_start_keep(r.s, myport, 1);   /* EOF may come before our bytes are out */
    aemp_stream_write(r.s, "hello from tester", 17);
    aemp_stream_shutdown(r.s);
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_string_equal(line, "DATA 17 hello from tester");
    tu_run_until(&inbox.count, 2);
    assert_int_equal(inbox.count, 1);
    int64_t n = 0;
    aemp_val_int(aemp_msg_at(inbox.last, 1), &n);
    assert_int_equal(n, 18);   /* "hello from fake130" */
    aemp_stream_close(r.s);
    fake_stop(&fp);
}

/* A wrong secret on the data connection: the attempt fails, the caller
 * port is killed with the reason. */
static void wrong_secret(void **state)
{
    int lport = 0, lfd = fk_listen(&lport);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", lport);
    aemp_rnode_t *node = aemp__node_find("fake130", 7);
    assert_non_null(node);
    for (int i = 0; i < 100 && aemp_node_is_up("fake130") == 1; i++)
        tu_run_for(0.05);   /* the last fake130 is gone: notice it first */
    assert_int_not_equal(aemp_node_is_up("fake130"), 1);
    aemp_msg_t *a = aemp_msgf("s", addr);
    aemp__node_set_addrs(node, aemp_msg_root(a));
    aemp_msg_unref(a);
    fake_proc_t fp;
    fake_start(&fp, body_target, NULL, lfd, 1);
    close(lfd);
    const char *port = new_port();
    result_t r = { 0 };
    assert_int_equal(aemp_dataconn_connect(port, "fake130", 5, "fake::sink", NULL, got_stream, &r), 0);
    char line[8192];
    assert_true(fake_line(&fp, line, sizeof line, 10));   /* EXPECT */
    assert_true(fake_line(&fp, line, sizeof line, 5));    /* SND */
    assert_true(fake_line(&fp, line, sizeof line, 5));    /* its side of the failure */
    assert_memory_equal(line, "HANDSHAKE-ERROR ", 16);
    assert_true(tu_run_until(&r.done, 5));
    assert_null(r.s);
    assert_non_null(strstr(r.error, "fake130: cannot connect to any of its listeners: "));
    assert_true(strstr(r.error, "authentication failure/shared secret mismatch") || strstr(r.error, "end-of-file"));
    tu_run_until(&killbox.count, 1);
    assert_int_equal(killbox.count, 1);
    assert_string_equal(aemp_msg_str(killbox.last, 0, NULL), "AnyEvent::MP::DataConn");
    assert_string_equal(aemp_msg_str(killbox.last, 1, NULL), r.error);
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_memory_equal(line, "GREETING aemp-dataconn;1;tester;", 32);
    free(r.error);
    fake_stop(&fp);
    assert_int_equal(aemp_node_is_up("fake130") >= 0, 1);   /* the node itself carried on */
}

/* A 1.30 target we know no listeners of: _connect, then it connects. */
static void wire_connect_request(void **state)
{
    fake_proc_t fp;
    fake_start(&fp, body_quiet, tester_addr, -1, 0);
    char line[8192];
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_string_equal(line, "UP");
    assert_true(await_up("fake2"));
    const char *port = new_port();
    char myport[256];
    snprintf(myport, sizeof myport, "%s", port);
    result_t r = { 0 };
    assert_int_equal(aemp_dataconn_connect(port, "fake2", 5, "fake::echo", NULL, got_stream, &r), 0);
    assert_true(fake_line(&fp, line, sizeof line, 5));
    char want[1024];
    snprintf(want, sizeof want, "EXPECT [\"\",\"AnyEvent::MP::DataConn::_expect\",\"");
    assert_memory_equal(line, want, strlen(want));
    char id[256];
    const char *ib = line + strlen(want), *ie = strchr(ib, '"');
    snprintf(id, sizeof id, "%.*s", (int)(ie - ib), ib);
    snprintf(want, sizeof want, "\",\"%s\",5,\"fake::echo\"]", myport);
    assert_string_equal(ie, want);
    assert_true(fake_line(&fp, line, sizeof line, 5));
    snprintf(want, sizeof want, "CONNECT [\"\",\"AnyEvent::MP::DataConn::_connect\",\"%s\",\"tester\"]", id);
    assert_string_equal(line, want);
    assert_true(fake_line(&fp, line, sizeof line, 5));
    snprintf(want, sizeof want, "LINE1 aemp-dataconn;1;fake2;");
    assert_memory_equal(line, want, strlen(want));
    assert_true(tu_run_until(&r.done, 5));
    assert_non_null(r.s);
    sink_start_keep(r.s, myport, 1);
    aemp_stream_write(r.s, "to fake2", 8);
    aemp_stream_shutdown(r.s);
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_string_equal(line, "DATA 8 to fake2");
    tu_run_until(&inbox.count, 2);
    assert_int_equal(inbox.count, 1);
    tu_assert_msg(inbox.last, "[\"sink\", 11, \"66945eac6373e6180cd541c56349fa327dea8ace1d6c6ae587fe9e6340227326\"]");
    aemp_stream_close(r.s);
    fake_stop(&fp);
}

/* libaemp as the target of a 1.30 caller; an unknown ID; the target's
 * timeout. */
static void perl_caller(void **state)
{
    tu_log[0] = 0;
    fake_proc_t fp;
    fake_start(&fp, body_caller, tester_addr, -1, 0);
    char line[8192];
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_string_equal(line, "BARRIER [\"p2\"]");
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_string_equal(line, "ECHO 15 echo me, please");
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_string_equal(line, "UNKNOWN closed");
    assert_non_null(strstr(tu_log, "data connection from fake3"));
    assert_non_null(strstr(tu_log, "unknown (expired or never requested) dataconn_id 'nope@fake3'"));
    assert_true(fake_line(&fp, line, sizeof line, 5));
    assert_memory_equal(line, "KIL 1.", 6);
    assert_non_null(strstr(line, " [\"\",\"kil\",\"p3\",\"AnyEvent::MP::DataConn\",\"tester: no data connection from "
                                 "fake3 arrived within 1 seconds\"]"));
    fake_stop(&fp);
    assert_true(aemp_node_is_up("fake3") >= 0);
}

/* ----------------------------------------------------------------- setup */

static int run_tool(const char *const *args)
{
    const char *argv[16];
    int argc = 0;
    argv[argc++] = AEMP_BIN;
    for (int i = 0; args[i] && argc < 15; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(AEMP_BIN, (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    for (int i = 0; i < 6000; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-dataconn-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    const char *gen[] = { "delsecret", "profile", "tlsA", "gencert", NULL };   /* our secret, not a new rc file's */
    if (run_tool(gen) != 0) {
        fprintf(stderr, "aemp gencert failed\n");
        return -1;
    }
    aemp_log_hook_add(tu_log_hook, NULL);
    register_fns();
    char err[512];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:s, s:[s]}", "profile", "tlsA", "nodeid", "tester", "secret",
                        SECRET, "binds", "127.0.0.1:0") != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    aemp_msg_t *l = aemp_listeners();
    snprintf(tester_addr, sizeof tester_addr, "%s", aemp_msg_str(l, 0, NULL));
    aemp_msg_unref(l);
    if (!start_node(&plainpeer, "plainpeer", "127.0.0.1:0", "-") || !start_node(&tlspeer, "tlspeer", "127.0.0.1:0", "tlsA")
        || !start_node(&quietpeer, "quietpeer", "-", "-"))
        return -1;
    if (!await_up("plainpeer") || !await_up("tlspeer") || !await_up("quietpeer")) {
        fprintf(stderr, "peers did not come up\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    pu_stop(&plainpeer, SIGTERM);
    pu_stop(&tlspeer, SIGTERM);
    pu_stop(&quietpeer, SIGTERM);
    aemp_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "node"))
        return node_main(argv[2], argv[3], argv[4], argv[5]);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_calls),
        cmocka_unit_test(local_pair),
        cmocka_unit_test(bulk_plain),
        cmocka_unit_test(bulk_tls),
        cmocka_unit_test(target_without_listeners),
        cmocka_unit_test(caller_timeout),
        cmocka_unit_test(wire_to_perl_target),
        cmocka_unit_test(wrong_secret),
        cmocka_unit_test(wire_connect_request),
        cmocka_unit_test(perl_caller),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
