/* Multi-process tests of the transport and node protocol: this test process
 * is one node; real `aemp run` processes are its peers, one per dialect
 * setting (2.02 only, 1.30 only, both).  Covers remote snd/cal, spawn,
 * monitors and kills in both directions, node-port requests, relays,
 * values beyond JSON (bytes, uint64, NUL bytes) in both framings, a wrong
 * secret, malformed peers, and a peer killed with SIGKILL. */
#include "testutil.h"

#include "conn.h"
#include "node.h"
#include "procutil.h"
#include "proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SECRET "remote-test-secret"

enum { P202, P130, PBOTH, NPEERS };
static pu_node_t peers[NPEERS];
static const char *const dialect_arg[NPEERS] = { "2.02", "1.30", "both" };
static char tmpdir[64];
static char rcenv[128];

static int start_peer(pu_node_t *p, const char *nodeid, const char *dialect, const char *secret)
{
    const char *env[] = { rcenv, "AEMP_WARNLEVEL=2", NULL };
    const char *args[] = { "nodeid", nodeid, "binds", "127.0.0.1:0", "secret", secret,
                           "dialect", dialect, "connect_interval", "3", NULL };
    if (!pu_start(p, env, args))
        return 0;
    aemp_msg_t *a = aemp_msgf("s", p->addr);
    aemp_add_node(p->nodeid, a);
    aemp_msg_unref(a);
    return 1;
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-remote-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    aemp_log_hook_add(tu_log_hook, NULL);
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:i, s:i}", "nodeid", "tester",
                        "secret", SECRET, "binds", "127.0.0.1:0", "connect_interval", 3,
                        "max_frame", 65536) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    const char *ids[NPEERS] = { "peer202", "peer130", "peerboth" };
    for (int i = 0; i < NPEERS; i++)
        if (!start_peer(&peers[i], ids[i], dialect_arg[i], SECRET))
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    for (int i = 0; i < NPEERS; i++)
        pu_stop(&peers[i], SIGTERM);
    aemp_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ helpers */

/* what monitors and the box.last port saw (see tu_box_t) */
static tu_box_t mon, box;

static char portid[NPEERS][256];

/* ------------------------------------------------------------- tests */

static void cal_echo_in_each_dialect(void **state)
{
    const char *expect_auth[NPEERS] = { "hmac_sha3_512/cbor", "hmac_md6_64_256/json", "hmac_sha3_512/cbor" };
    const char *expect_dialect[NPEERS] = { "2.02", "1.30", "2.02" };
    for (int i = 0; i < NPEERS; i++) {
        char port[256];
        snprintf(port, sizeof port, "%s#echo", peers[i].nodeid);
        aemp_msg_t *r = tu_call(port, aemp_msgf("sis", "hello", i, "grüße ✓"), 5);
        assert_non_null(r);
        char expect[64];
        snprintf(expect, sizeof expect, "[\"hello\",%d,\"grüße ✓\"]", i);
        tu_assert_msg(r, expect);
        aemp_msg_unref(r);
        assert_int_equal(aemp_node_is_up(peers[i].nodeid), 1);
        char line[256];
        snprintf(line, sizeof line, "node %s up (%s dialect, %s)", peers[i].nodeid, expect_dialect[i],
                 expect_auth[i]);
        if (!strstr(tu_log, line))
            fail_msg("missing log line '%s' in:\n%s", line, tu_log);
    }
    aemp_msg_t *up = aemp_up_nodes();
    assert_int_equal(aemp_msg_len(up), NPEERS);
    aemp_msg_unref(up);
}

static void remote_spawn_snd_mon_kil(void **state)
{
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NPEERS; i++) {
        char *id = aemp_spawn(peers[i].nodeid, "aemp::echo", NULL);
        assert_non_null(id);
        assert_int_equal(aemp_node_len(id), strlen(peers[i].nodeid));
        snprintf(portid[i], sizeof portid[i], "%s", id);
        box.count = 0;
        aemp_sndf(id, "sis", "ping", i, me);
        assert_true(tu_run_until(&box.count, 5));
        char expect[64];
        snprintf(expect, sizeof expect, "[\"ping\",%d]", i);
        tu_assert_msg(box.last, expect);
        /* monitor it, kill it remotely with a reason (kil / kil1 by dialect) */
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        aemp_kilf(id, "ss", "custom_error", "bye");
        assert_true(tu_run_until(&mon.count, 5));
        tu_assert_msg(mon.last, "[\"custom_error\",\"bye\"]");
        /* a monitor of the now dead port: no_such_port with the full ID */
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        assert_true(tu_run_until(&mon.count, 5));
        char nsp[512];
        snprintf(nsp, sizeof nsp, "[\"no_such_port\",\"cannot monitor nonexistent port\",\"%s\"]", id);
        tu_assert_msg(mon.last, nsp);
        free(id);
    }
    aemp_kil(me, NULL);
}

/* A remote init function that dies (or cannot be resolved) before it
 * calls rcv leaves no port, as in AnyEvent::MP: the spawner's monitor gets
 * no_such_port (the node logs why the init died). */
static void spawn_failures_reach_the_monitor(void **state)
{
    const char *funcs[] = { "nope::missing", "aemp::die" };
    for (int i = 0; i < NPEERS; i++) {
        for (int f = 0; f < 2; f++) {
            char *id = aemp_spawn(peers[i].nodeid, funcs[f], NULL);
            mon.count = 0;
            aemp_mon(id, tu_box_put, &mon, NULL);
            assert_true(tu_run_until(&mon.count, 5));
            char nsp[512];
            snprintf(nsp, sizeof nsp, "[\"no_such_port\",\"cannot monitor nonexistent port\",\"%s\"]", id);
            tu_assert_msg(mon.last, nsp);
            free(id);
        }
    }
    assert_null(aemp_spawn(peers[0].nodeid, "nocolons", NULL));
}

static void node_port_requests(void **state)
{
    for (int i = 0; i < NPEERS; i++) {
        const char *n = peers[i].nodeid;
        aemp_msg_t *r = tu_call(n, aemp_msgf("s", "time"), 5);
        assert_non_null(r);
        assert_int_equal(aemp_val_type(aemp_msg_at(r, 0)), AEMP_T_DOUBLE);
        double t = 0;
        assert_int_equal(aemp_msg_double(r, 0, &t), 0);
        double dt = t - ev_time();
        assert_true(dt > -60 && dt < 60);
        aemp_msg_unref(r);
        r = tu_call(n, aemp_msgf("s", "info"), 5);
        char expect[300];
        snprintf(expect, sizeof expect, "[\"%s\"]", n);
        tu_assert_msg(r, expect);
        aemp_msg_unref(r);
        r = tu_call(n, aemp_msgf("ss", "can", "mon1"), 5);
        tu_assert_msg(r, "[\"1\"]");
        aemp_msg_unref(r);
        r = tu_call(n, aemp_msgf("ss", "can", "no_such_request"), 5);
        tu_assert_msg(r, "[\"\"]");
        aemp_msg_unref(r);
        r = tu_call(n, aemp_msgf("s", "up_nodes"), 5);
        assert_true(aemp_msg_len(r) >= 1);
        aemp_msg_unref(r);
        /* a Perl-only request gets an error reply, never a crash */
        r = tu_call(n, aemp_msgf("ss", "eval", "1+1"), 5);
        const char *why = aemp_msg_str(r, 0, NULL);
        assert_non_null(why);
        assert_non_null(strstr(why, "cannot evaluate: this node is libaemp, not Perl"));
        aemp_msg_unref(r);
    }
}

static void relay_with_snd_on(void **state)
{
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NPEERS; i++) {
        box.count = 0;
        assert_int_equal(aemp_snd_on(peers[i].nodeid, me, aemp_msgf("si", "relayed", i)), 0);
        assert_true(tu_run_until(&box.count, 5));
        char expect[64];
        snprintf(expect, sizeof expect, "[\"relayed\",%d]", i);
        tu_assert_msg(box.last, expect);
    }
    aemp_kil(me, NULL);
}

/* Fail unless got is the message want: the same values of the same types
 * (text and byte strings differ, so do INT and UINT). */
static void assert_same_msg(const aemp_msg_t *got, const aemp_msg_t *want)
{
    assert_non_null(want);
    if (got && aemp_val_equal(aemp_msg_root(got), aemp_msg_root(want)))
        return;
    char *g = got ? aemp_val_text(aemp_msg_root(got)) : strdup("NULL");
    char *w = aemp_val_text(aemp_msg_root(want));
    fail_msg("expected %s, got %s", w, g);
}

/* The values that only the message type (not JSON text or jansson) holds:
 * the byte string c3 a4, UINT64_MAX, INT64_MIN, 1e300, a map whose key and
 * value hold a NUL byte, and a string with a NUL byte.  as_json_returns:
 * the same values as they come back from a peer that we talk JSON with.
 * JSON has no byte strings; they are written as Perl's JSON::XS writes a
 * byte string, each byte as the character of that code point, so the two
 * bytes come back as the TEXT string of U+00C3 U+00A4 ("Ã¤", UTF-8
 * c3 83 c2 a4): to Perl the same string as the two bytes it was (length 2,
 * ord 0xc3 and 0xa4), now without the byte-string marking.  Every other
 * value comes back unchanged in both framings. */
static aemp_msg_t *wire_values(int as_json_returns)
{
    const char *fmt = as_json_returns ? "s# u I f {s#: s#} s#" : "y u I f {s#: s#} s#";
    const char *s = as_json_returns ? "\xc3\x83\xc2\xa4" : "\xc3\xa4";
    size_t len = as_json_returns ? 4 : 2;
    return aemp_msgf(fmt, s, len, (uint64_t)UINT64_MAX, (int64_t)INT64_MIN, 1e300, "k\0y", (size_t)3, "v\0w",
                     (size_t)3, "nul\0inside", (size_t)10);
}

/* wire_values go to each peer and come back through its echo port (cal)
 * and through its node port (snd_on, relayed back to us): over CBOR (the
 * 2.02 peers) every value is kept, byte strings stay BYTES; over JSON (the
 * 1.30 peer) the byte string comes back as the text Perl would see (see
 * wire_values).  The connections stay up. */
static void values_cross_both_framings(void **state)
{
    aemp_msg_t *sent = wire_values(0);
    aemp_msg_t *over_json = wire_values(1);
    assert_non_null(sent);
    assert_non_null(over_json);
    const aemp_val_t *b = aemp_msg_at(sent, 0);
    assert_int_equal(aemp_val_type(b), AEMP_T_BYTES);
    assert_int_equal(aemp_val_len(b), 2);
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NPEERS; i++) {
        int json = i == P130;
        const aemp_msg_t *want = json ? over_json : sent;
        char port[256];
        snprintf(port, sizeof port, "%s#echo", peers[i].nodeid);
        aemp_msg_t *r = tu_call(port, aemp_msg_ref(sent), 5);
        assert_same_msg(r, want);
        const aemp_val_t *first = aemp_msg_at(r, 0);
        assert_string_equal(aemp_type_name(aemp_val_type(first)), json ? "str" : "bytes");
        assert_int_equal(aemp_val_len(first), json ? 4 : 2);
        aemp_msg_unref(r);

        box.count = 0;
        assert_int_equal(aemp_snd_on(peers[i].nodeid, me, aemp_msg_ref(sent)), 0);
        assert_true(tu_run_until(&box.count, 5));
        assert_same_msg(box.last, want);
        assert_int_equal(aemp_node_is_up(peers[i].nodeid), 1);
    }
    aemp_kil(me, NULL);
    aemp_msg_unref(sent);
    aemp_msg_unref(over_json);
}

/* The peer monitors one of our ports through aemp::link: when our port
 * dies abnormally, the linked spawned port dies with the same reason. */
static void remote_monitors_of_our_ports(void **state)
{
    for (int i = 0; i < NPEERS; i++) {
        const char *mine = aemp_port(tu_box_put, &box);
        char *id = aemp_spawn(peers[i].nodeid, "aemp::link", aemp_msgf("s", mine));
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        tu_run_for(0.2);   /* let the peer's mon1 arrive */
        aemp_kilf(mine, "ss", "linked", "death");
        assert_true(tu_run_until(&mon.count, 5));
        tu_assert_msg(mon.last, "[\"linked\",\"death\"]");
        free(id);
    }
}

static void wrong_secret_is_rejected(void **state)
{
    pu_node_t bad;
    assert_true(start_peer(&bad, "badsecret", "both", "not-the-secret"));
    mon.count = 0;
    char port[256];
    snprintf(port, sizeof port, "%s#echo", bad.nodeid);
    aemp_mon(port, tu_box_put, &mon, NULL);
    aemp_sndf(port, "s", "hello");
    assert_true(tu_run_until(&mon.count, 10));
    assert_string_equal(aemp_msg_str(mon.last, 0, NULL), "transport_error");
    assert_string_equal(aemp_msg_str(mon.last, 2, NULL), "authentication failure/shared secret mismatch");
    assert_int_equal(aemp_node_is_up(bad.nodeid), 0);
    /* the peer is still running and so are our other connections */
    assert_int_equal(kill(bad.pid, 0), 0);
    char echo[256];
    snprintf(echo, sizeof echo, "%s#echo", peers[P202].nodeid);
    aemp_msg_t *r = tu_call(echo, aemp_msgf("s", "still"), 5);
    tu_assert_msg(r, "[\"still\"]");
    aemp_msg_unref(r);
    pu_stop(&bad, SIGTERM);
}

/* A raw TCP client to our own listener. */
static int raw_connect(void)
{
    aemp_msg_t *l = aemp_listeners();
    const char *addr = aemp_msg_str(l, 0, NULL);
    assert_non_null(addr);
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(colon + 1)) };
    aemp_msg_unref(l);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

/* Drive the loop until the peer closes fd (bounded); returns 1 if closed. */
static int closed_by_node(int fd, double seconds)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    double end = pu_now() + seconds;
    char buf[4096];
    while (pu_now() < end) {
        tu_run_for(0.02);
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            return 1;
    }
    return 0;
}

static void still_works(void)
{
    char echo[256];
    snprintf(echo, sizeof echo, "%s#echo", peers[P130].nodeid);
    aemp_msg_t *r = tu_call(echo, aemp_msgf("s", "alive"), 5);
    tu_assert_msg(r, "[\"alive\"]");
    aemp_msg_unref(r);
}

static void garbage_greeting_is_dropped(void **state)
{
    int fd = raw_connect();
    const char junk[] = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(write(fd, junk, sizeof junk - 1), (ssize_t)(sizeof junk - 1));
    assert_true(closed_by_node(fd, 5));
    close(fd);
    assert_non_null(strstr(tu_log, "unparsable greeting, expected 'aemp', got 'GET / HTTP/1.0'"));
    still_works();
}

static void oversized_greeting_is_dropped(void **state)
{
    int fd = raw_connect();
    char big[5000];
    memset(big, 'a', sizeof big);
    memcpy(big, "aemp;1;x;", 9);
    assert_int_equal(write(fd, big, sizeof big), (ssize_t)sizeof big);
    assert_true(closed_by_node(fd, 5));
    close(fd);
    assert_non_null(strstr(tu_log, "handshake line too long"));
    still_works();
}

/* Complete a real handshake with proto.c over a raw socket, then send
 * bytes; returns the fd. */
static int raw_authenticated(aemp_proto_t **pp)
{
    int fd = raw_connect();
    aemp_proto_cfg_t cfg = { 0 };
    cfg.nodeid = "rawclient";
    cfg.secret = (const uint8_t *)SECRET;
    cfg.secretlen = strlen(SECRET);
    cfg.dialects = AEMP_DIALECT_130;   /* JSON: easy to truncate */
    aemp_proto_t *p = aemp__proto_new(&cfg);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int authed = 0;
    double end = pu_now() + 5;
    while (!authed && pu_now() < end) {
        aemp_buf_t *out = aemp__proto_out(p);
        if (aemp__buf_used(out)) {
            ssize_t w = write(fd, aemp__buf_head(out), aemp__buf_used(out));
            if (w > 0)
                aemp__buf_consume(out, (size_t)w);
        }
        tu_run_for(0.01);
        char buf[4096];
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0)
            aemp__buf_append(aemp__proto_in(p), buf, (size_t)r);
        aemp_frame_t frame;
        aemp_proto_event_t ev;
        while ((ev = aemp__proto_next(p, &frame)) != AEMP_PROTO_NEED_MORE && ev != AEMP_PROTO_ERROR) {
            if (ev == AEMP_PROTO_AUTHED)
                authed = 1;
            if (ev == AEMP_PROTO_FRAME)
                aemp_msg_unref(frame.msg);
        }
        assert_true(ev != AEMP_PROTO_ERROR);
    }
    assert_true(authed);
    aemp_buf_t *out = aemp__proto_out(p);
    if (aemp__buf_used(out))
        assert_true(write(fd, aemp__buf_head(out), aemp__buf_used(out)) > 0);
    *pp = p;
    return fd;
}

static void truncated_frame_then_eof(void **state)
{
    aemp_proto_t *p;
    int fd = raw_authenticated(&p);
    tu_run_for(0.1);
    assert_int_equal(aemp_node_is_up("rawclient"), 1);
    const char part[] = "[\"echo\",\"never comple";
    assert_int_equal(write(fd, part, sizeof part - 1), (ssize_t)(sizeof part - 1));
    close(fd);
    double end = pu_now() + 5;
    while (aemp_node_is_up("rawclient") == 1 && pu_now() < end)
        tu_run_for(0.02);
    assert_int_equal(aemp_node_is_up("rawclient"), 0);
    aemp__proto_free(p);
    still_works();
}

static void oversized_frame_is_dropped(void **state)
{
    aemp_proto_t *p;
    int fd = raw_authenticated(&p);
    /* a 100 KB string: over this node's max_frame of 64 KiB */
    size_t n = 100000;
    char *big = malloc(n + 32);
    strcpy(big, "[\"echo\",\"");
    memset(big + 9, 'x', n);
    strcpy(big + 9 + n, "\"]");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    ssize_t w = write(fd, big, strlen(big));
    (void)w;
    free(big);
    assert_true(closed_by_node(fd, 5));
    close(fd);
    assert_non_null(strstr(tu_log, "exceeds the limit"));
    aemp__proto_free(p);
    still_works();
}

/* The capacities of the input and output buffers of the connection to
 * node `id` (-1 if there is none), and what waits unsent on it. */
typedef struct {
    long in, out, unsent;
} conn_bufs_t;

static conn_bufs_t bufs_of(const char *id)
{
    conn_bufs_t b = { -1, -1, -1 };
    aemp_rnode_t *n = aemp__node_find(id, strlen(id));
    if (n && n->conn) {
        b.in = (long)aemp__proto_in(n->conn->proto)->cap;
        b.out = (long)aemp__proto_out(n->conn->proto)->cap;
        b.unsent = (long)aemp__conn_unsent(n->conn);
    }
    return b;
}

static int got_small;
static void on_raw(aemp_msg_t *msg, void *arg)
{
    got_small++;
}

/* Drain (read and drop) what the node sent to the raw client. */
static void drain_fd(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* An idle connection holds no buffers: a drained output buffer is freed
 * whatever its size, a drained input buffer too, whether it never grew
 * (the first read asks for 1 KiB) or grew for a larger frame.  (A global
 * node serves thousands of mostly idle connections, and a watcher's
 * snapshot of thousands of keys is one large frame: docs/scaling.md.) */
static void drained_buffers_are_freed(void **state)
{
    aemp_proto_t *p;
    int fd = raw_authenticated(&p);
    double end = pu_now() + 5;
    while (aemp_node_is_up("rawclient") != 1 && pu_now() < end)
        tu_run_for(0.02);
    assert_int_equal(aemp_node_is_up("rawclient"), 1);
    const char *me = strchr(aemp_port(on_raw, NULL), '#') + 1;   /* a frame names the local port */
    /* a small frame in, a small and a 20 KB message out */
    char frame[512];
    int len = snprintf(frame, sizeof frame, "[\"%s\",\"small\"]", me);
    got_small = 0;
    assert_int_equal(write(fd, frame, (size_t)len), len);
    size_t n = 20000;
    char *big = malloc(n + 1);
    memset(big, 'y', n);
    big[n] = 0;
    aemp_snd("rawclient#x", aemp_msgf("s", "hi"));
    aemp_snd("rawclient#x", aemp_msgf("s", big));
    end = pu_now() + 5;
    conn_bufs_t b = bufs_of("rawclient");
    while ((!got_small || b.unsent) && pu_now() < end) {
        tu_run_for(0.02);
        drain_fd(fd);
        b = bufs_of("rawclient");
    }
    assert_int_equal(got_small, 1);
    assert_int_equal(b.unsent, 0);
    assert_int_equal(b.in, 0);
    assert_int_equal(b.out, 0);
    /* a 40 KB frame in: the buffer grows for it and is freed once drained */
    n = 40000;
    char *bigframe = malloc(n + 600);
    len = snprintf(bigframe, n + 600, "[\"%s\",\"", me);
    memset(bigframe + len, 'z', n);
    strcpy(bigframe + len + n, "\"]");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    assert_int_equal(write(fd, bigframe, strlen(bigframe)), (ssize_t)strlen(bigframe));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    end = pu_now() + 5;
    while (got_small < 2 && pu_now() < end)
        tu_run_for(0.02);
    assert_int_equal(got_small, 2);
    b = bufs_of("rawclient");
    assert_int_equal(b.in, 0);
    assert_int_equal(b.out, 0);
    free(bigframe);
    free(big);
    close(fd);
    end = pu_now() + 5;
    while (aemp_node_is_up("rawclient") == 1 && pu_now() < end)
        tu_run_for(0.02);
    aemp__proto_free(p);
    still_works();
}

/* aemp_sndf to a port of a node that is up lays a flat message out on the
 * stack and encodes it into the connection at once: every flat type must
 * arrive as sent, in both framings (the echo sends it back). */
static void sndf_flat_types_to_connected_node(void **state)
{
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NPEERS; i++) {
        assert_int_equal(aemp_node_is_up(peers[i].nodeid), 1);
        char *id = aemp_spawn(peers[i].nodeid, "aemp::echo", NULL);
        assert_non_null(id);
        box.count = 0;
        assert_int_equal(aemp_sndf(id, "sIus#nbfs", "t", INT64_MIN, UINT64_MAX, "a\0b", (size_t)3, 1, -1.5,
                                   me), 0);
        assert_true(tu_run_until(&box.count, 5));
        aemp_msg_t *m = box.last;
        assert_int_equal(aemp_msg_len(m), 7);
        assert_string_equal(aemp_msg_str(m, 0, NULL), "t");
        int64_t iv;
        uint64_t uv;
        double dv;
        int bv;
        size_t len;
        assert_int_equal(aemp_msg_int(m, 1, &iv), 0);
        assert_true(iv == INT64_MIN);
        assert_int_equal(aemp_msg_uint(m, 2, &uv), 0);
        assert_true(uv == UINT64_MAX);
        const char *sv = aemp_msg_str(m, 3, &len);
        assert_non_null(sv);
        assert_int_equal(len, 3);
        assert_memory_equal(sv, "a\0b", 3);
        assert_int_equal(aemp_val_type(aemp_msg_at(m, 4)), AEMP_T_NULL);
        assert_int_equal(aemp_msg_bool(m, 5, &bv), 0);
        assert_int_equal(bv, 1);
        assert_int_equal(aemp_msg_double(m, 6, &dv), 0);
        assert_true(dv == -1.5);
        aemp_kil(id, NULL);
        free(id);
    }
    aemp_kil(me, NULL);
}

/* A program that writes one remote ID after another into the same buffer
 * must reach each of them: the send path remembers the node of an ID by
 * the string's address (destcache.h), and a reused buffer must not send
 * to the port it named before.  The first port is killed before the
 * buffer is rewritten, so a message misrouted to it would be lost and the
 * wait below would fail; both aemp_sndf's and aemp_snd's paths are used. */
static void reused_id_buffer_reaches_each_port(void **state)
{
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NPEERS; i++) {
        char *a = aemp_spawn(peers[i].nodeid, "aemp::echo", NULL);
        char *b = aemp_spawn(peers[i].nodeid, "aemp::echo", NULL);
        assert_non_null(a);
        assert_non_null(b);
        char buf[256];
        snprintf(buf, sizeof buf, "%s", a);
        for (int round = 0; round < 2; round++) {   /* the second one hits the cache */
            box.count = 0;
            assert_int_equal(aemp_sndf(buf, "sis", "to-a", round, me), 0);
            assert_true(tu_run_until(&box.count, 5));
            tu_assert_msg(box.last, round ? "[\"to-a\",1]" : "[\"to-a\",0]");
        }
        mon.count = 0;
        aemp_mon(a, tu_box_put, &mon, NULL);
        aemp_kil(a, NULL);
        assert_true(tu_run_until(&mon.count, 5));
        snprintf(buf, sizeof buf, "%s", b);
        box.count = 0;
        assert_int_equal(aemp_sndf(buf, "sis", "to-b", 0, me), 0);
        assert_true(tu_run_until(&box.count, 5));
        tu_assert_msg(box.last, "[\"to-b\",0]");
        box.count = 0;
        assert_int_equal(aemp_snd(buf, aemp_msgf("sis", "to-b", 1, me)), 0);
        assert_true(tu_run_until(&box.count, 5));
        tu_assert_msg(box.last, "[\"to-b\",1]");
        aemp_kil(b, NULL);
        free(a);
        free(b);
    }
    aemp_kil(me, NULL);
}

static void killed_peer_fires_transport_error(void **state)
{
    pu_node_t victim;
    assert_true(start_peer(&victim, "victim", "both", SECRET));
    char *id = aemp_spawn(victim.nodeid, "aemp::echo", NULL);
    const char *me = aemp_port(tu_box_put, &box);
    box.count = 0;
    aemp_sndf(id, "ss", "hi", me);
    assert_true(tu_run_until(&box.count, 5));
    mon.count = 0;
    aemp_mon(id, tu_box_put, &mon, NULL);
    int node_mon_fired = 0;
    mon.count = 0;
    tu_run_for(0.1);
    pu_stop(&victim, SIGKILL);
    assert_true(tu_run_until(&mon.count, 10));
    (void)node_mon_fired;
    assert_string_equal(aemp_msg_str(mon.last, 0, NULL), "transport_error");
    assert_string_equal(aemp_msg_str(mon.last, 1, NULL), "victim");
    assert_int_equal(aemp_node_is_up("victim"), 0);
    free(id);
    still_works();
}

/* A node with "secure" set refuses to run code for other nodes: spawning
 * on it fails (the port never exists), named functions are not called;
 * messages to its ports and the node protocol still work. */
static void secure_node_refuses_remote_execution(void **state)
{
    pu_node_t sec;
    const char *env[] = { rcenv, "AEMP_WARNLEVEL=1", NULL };
    const char *args[] = { "nodeid", "securepeer", "binds", "127.0.0.1:0", "secret", SECRET, "secure", "1", NULL };
    assert_true(pu_start(&sec, env, args));
    aemp_msg_t *a = aemp_msgf("s", sec.addr);
    aemp_add_node(sec.nodeid, a);
    aemp_msg_unref(a);
    char *id = aemp_spawn(sec.nodeid, "aemp::echo", NULL);
    mon.count = 0;
    aemp_mon(id, tu_box_put, &mon, NULL);
    assert_true(tu_run_until(&mon.count, 5));
    assert_string_equal(aemp_msg_str(mon.last, 0, NULL), "no_such_port");
    free(id);
    /* a named function is not called: its reply never comes */
    const char *me = aemp_port(tu_box_put, &box);
    box.count = 0;
    aemp_snd_to_func(sec.nodeid, "aemp::grp_get", aemp_msgf("ss", "g", me));
    tu_run_for(0.5);
    assert_int_equal(box.count, 0);
    /* ordinary messages and node-port requests still work */
    char echo[256];
    snprintf(echo, sizeof echo, "%s#echo", sec.nodeid);
    aemp_msg_t *r = tu_call(echo, aemp_msgf("s", "still"), 5);
    tu_assert_msg(r, "[\"still\"]");
    aemp_msg_unref(r);
    r = tu_call(sec.nodeid, aemp_msgf("s", "info"), 5);
    tu_assert_msg(r, "[\"securepeer\"]");
    aemp_msg_unref(r);
    aemp_kil(me, NULL);
    pu_stop(&sec, SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cal_echo_in_each_dialect),
        cmocka_unit_test(remote_spawn_snd_mon_kil),
        cmocka_unit_test(spawn_failures_reach_the_monitor),
        cmocka_unit_test(node_port_requests),
        cmocka_unit_test(relay_with_snd_on),
        cmocka_unit_test(values_cross_both_framings),
        cmocka_unit_test(remote_monitors_of_our_ports),
        cmocka_unit_test(wrong_secret_is_rejected),
        cmocka_unit_test(garbage_greeting_is_dropped),
        cmocka_unit_test(oversized_greeting_is_dropped),
        cmocka_unit_test(truncated_frame_then_eof),
        cmocka_unit_test(oversized_frame_is_dropped),
        cmocka_unit_test(drained_buffers_are_freed),
        cmocka_unit_test(sndf_flat_types_to_connected_node),
        cmocka_unit_test(reused_id_buffer_reaches_each_port),
        cmocka_unit_test(killed_peer_fires_transport_error),
        cmocka_unit_test(secure_node_refuses_remote_execution),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
