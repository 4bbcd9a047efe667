/* Multi-process tests of transport behaviours of the node layer: this test
 * process is one node ("tester"); real `aemp run` processes are its peers.
 *   1. aemp_mon_nodes: up/down callbacks (outgoing and incoming
 *      connections, SIGKILL), strict alternation, cancellation.
 *   2. aemp_snd_to_func on a peer (aemp::reply) and locally; FIFO order
 *      with ordinary messages; argument errors.
 *   3. The no-holes guarantee: a peer killed in the middle of an echoed
 *      stream: contiguous prefix, the monitor fires, nothing after it; a
 *      port's death notice does not overtake its earlier messages; a burst
 *      to a peer that exited fails the connection (no SIGPIPE).
 *   4. Messages queued while connecting arrive in order; a refused address
 *      fails monitors after connect_interval and drops the queue.
 *   5. Simultaneous connects (seeds pointing at each other, directly and
 *      forced through a proxy that releases both connects at once) leave
 *      exactly one connection, and messages flow both ways.
 *   6. A listener-less node keeps its connection alive with keepalives
 *      (observed on the wire through a proxy).
 *   7. A node relays a message that arrived over CBOR (bytes, uint64, a
 *      NUL in a map key, nesting at the limit) to a 1.30 peer over JSON;
 *      the JSON peer takes it and keeps its link.
 * Every peer's stderr goes to <tmpdir>/<nodeid>.log (AEMP_WARNLEVEL=7). */
#include "testutil.h"

#include "procutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define SECRET "node-test-secret"
#define CONNECT_INTERVAL 1.0

static char tmpdir[64];
static char rcenv[128];

/* ------------------------------------------------------------ peers */

#define MAXLIVE 16
static pu_node_t *live[MAXLIVE];   /* started, not yet stopped */
static pu_node_t peer[6];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
        return -1;
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

/* Start `aemp run nodeid ID secret S [binds 127.0.0.1:0] extra...` without
 * waiting for it.  stdout: a pipe (n->out); stderr: <tmpdir>/<ID>.log. */
static int spawn_peer(pu_node_t *n, const char *nodeid, const char *const *extra)
{
    memset(n, 0, sizeof *n);
    const char *argv[48];
    int c = 0, has_binds = 0;
    argv[c++] = "nodeid";
    argv[c++] = nodeid;
    argv[c++] = "secret";
    argv[c++] = SECRET;
    for (int i = 0; extra && extra[i]; i++)
        if (i % 2 == 0 && !strcmp(extra[i], "binds"))
            has_binds = 1;
    if (!has_binds) {
        argv[c++] = "binds";
        argv[c++] = "127.0.0.1:0";
    }
    for (int i = 0; extra && extra[i] && c < 46; i++)
        argv[c++] = extra[i];
    argv[c] = NULL;
    char logpath[160];
    snprintf(logpath, sizeof logpath, "%s/%s.log", tmpdir, nodeid);
    static const char *const env[] = { "AEMP_WARNLEVEL=7", NULL };
    if (!pu_spawn(n, env, argv, logpath, 1))
        return 0;
    snprintf(n->nodeid, sizeof n->nodeid, "%s", nodeid);
    for (int i = 0; i < MAXLIVE; i++) {
        if (!live[i]) {
            live[i] = n;
            break;
        }
    }
    return 1;
}

/* Start and wait for it.  Timers armed after this (connect deadlines,
 * cal timeouts) count from the loop's cached time, so refresh it: the wait
 * happened outside the loop. */
static int start_peer(pu_node_t *n, const char *nodeid, const char *const *extra)
{
    int ok = spawn_peer(n, nodeid, extra) && pu_await(n);
    ev_now_update(aemp_loop());
    return ok;
}

/* Stop by PID (procutil: bounded, SIGKILL after 5 s; copes with a peer
 * that libev's default loop has reaped already). */
static void stop_peer(pu_node_t *n, int sig)
{
    pu_stop(n, sig);
    for (int i = 0; i < MAXLIVE; i++)
        if (live[i] == n)
            live[i] = NULL;
    ev_now_update(aemp_loop());   /* we blocked outside the loop */
}

static void stop_all(void)
{
    for (int i = 0; i < MAXLIVE; i++)
        if (live[i])
            stop_peer(live[i], SIGTERM);
}

/* Tell our node where the peer listens. */
static void add_peer(const pu_node_t *n)
{
    aemp_msg_t *a = aemp_msgf("s", n->addr);
    assert_int_equal(aemp_add_node(n->nodeid, a), 0);
    aemp_msg_unref(a);
}

/* The peer's log so far (malloc'd). */
static char *peer_log(const char *nodeid)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s.log", tmpdir, nodeid);
    return pu_read_file(path);
}

/* ------------------------------------------------------------ helpers */

static int run_until_ge(volatile int *v, int target, double seconds)
{
    double end = pu_now() + seconds;
    while (*v < target) {
        if (pu_now() >= end)
            return 0;
        tu_run_for(0.005);
    }
    return 1;
}

static aemp_msg_t *reply;
static int replied;
static void on_reply(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(reply);
    reply = aemp_msg_ref(r);
    replied = 1;
}

/* cal and wait (bounded); the reply (owned by the caller) or NULL */
static aemp_msg_t *call(const char *port, aemp_msg_t *msg, double timeout)
{
    replied = 0;
    aemp_msg_unref(reply);
    reply = NULL;
    assert_non_null(aemp_cal(port, msg, on_reply, NULL, timeout));
    assert_true(tu_run_until(&replied, timeout + 2));
    aemp_msg_t *r = reply;
    reply = NULL;
    return r;
}

static void echo_roundtrip(const pu_node_t *n)
{
    char port[200];
    snprintf(port, sizeof port, "%s#echo", n->nodeid);
    aemp_msg_t *r = call(port, aemp_msgf("s", "ping"), 5);
    assert_non_null(r);
    tu_assert_msg(r, "[\"ping\"]");
    aemp_msg_unref(r);
}

/* Number of times `other` is in node's up_nodes (asked over the network),
 * or -1 without an answer. */
static int up_count(const char *node, const char *other)
{
    aemp_msg_t *r = call(node, aemp_msgf("s", "up_nodes"), 3);
    if (!r)
        return -1;
    int n = 0;
    for (size_t i = 0; i < aemp_msg_len(r); i++) {
        const char *s = aemp_msg_str(r, i, NULL);
        if (s && !strcmp(s, other))
            n++;
    }
    aemp_msg_unref(r);
    return n;
}

/* Poll (bounded) until up_count(node, other) == want. */
static int await_up_count(const char *node, const char *other, int want, double seconds)
{
    double end = pu_now() + seconds;
    int n;
    while ((n = up_count(node, other)) != want && pu_now() < end)
        tu_run_for(0.1);
    return n == want;
}

static aemp_msg_t *mon_reason;
static int mon_fired;
static double mon_time;
static void on_mon(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(mon_reason);
    mon_reason = aemp_msg_ref(r);
    mon_time = pu_now();
    mon_fired++;
}

/* every message to a list port, in order: the first INBOX_MAX are kept,
 * `received` counts them all */
#define INBOX_MAX 16384
static aemp_msg_t *inbox[INBOX_MAX];
static int received;
static void on_list(aemp_msg_t *m, void *arg)
{
    if (received < INBOX_MAX)
        inbox[received] = aemp_msg_ref(m);
    received++;
}

static void reset_inbox(void)
{
    for (int i = 0; i < received && i < INBOX_MAX; i++) {
        aemp_msg_unref(inbox[i]);
        inbox[i] = NULL;
    }
    received = 0;
}

/* Element 1 of inbox message i as an integer (-1 if it is none). */
static int64_t inbox_int1(int i)
{
    int64_t v = -1;
    if (i < received && i < INBOX_MAX)
        aemp_msg_int(inbox[i], 1, &v);
    return v;
}

/* ------------------------------------------- a TCP proxy in our own loop */

#define MAXPC 32
typedef struct proxy proxy_t;
typedef struct pconn {
    int fd[2];            /* 0: the accepted client, 1: upstream */
    ev_io w[2];
    int used, live, parked;
    proxy_t *px;
} pconn_t;

typedef struct chunk {
    double t;
    size_t off, len;
} chunk_t;

struct proxy {
    int lfd, port, target;
    ev_io aw;
    int record;           /* log client -> upstream bytes of the first connection */
    pconn_t *recorded;
    char rec[1 << 16];
    size_t reclen;
    chunk_t chunks[4096];
    size_t nchunks;
};

static pconn_t pcs[MAXPC];
static int hold;          /* park accepted connections until this many wait */

static void pc_close(pconn_t *pc)
{
    for (int k = 0; k < 2; k++) {
        if (pc->fd[k] >= 0) {
            ev_io_stop(aemp_loop(), &pc->w[k]);
            close(pc->fd[k]);
            pc->fd[k] = -1;
        }
    }
    pc->live = pc->parked = 0;
}

static void pc_read(EV_P_ ev_io *w, int revents)
{
    pconn_t *pc = w->data;
    int k = w == &pc->w[0] ? 0 : 1;
    char buf[65536];
    ssize_t r = read(pc->fd[k], buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        pc_close(pc);
        return;
    }
    proxy_t *px = pc->px;
    if (k == 0 && px->record && pc == px->recorded && px->nchunks < 4096
        && px->reclen + (size_t)r <= sizeof px->rec) {
        memcpy(px->rec + px->reclen, buf, (size_t)r);
        px->chunks[px->nchunks++] = (chunk_t){ pu_now(), px->reclen, (size_t)r };
        px->reclen += (size_t)r;
    }
    for (ssize_t done = 0; done < r;) {
        ssize_t n = write(pc->fd[1 - k], buf + done, (size_t)(r - done));
        if (n <= 0) {   /* SO_SNDTIMEO bounds a stuck peer */
            pc_close(pc);
            return;
        }
        done += n;
    }
}

/* Connect upstream and start forwarding. */
static void pc_start(pconn_t *pc)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)pc->px->target) };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    pc->fd[1] = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { 2, 0 };
    if (pc->fd[1] < 0 || connect(pc->fd[1], (struct sockaddr *)&sin, sizeof sin) < 0) {
        pc_close(pc);
        return;
    }
    for (int k = 0; k < 2; k++) {
        setsockopt(pc->fd[k], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ev_io_init(&pc->w[k], pc_read, pc->fd[k], EV_READ);
        pc->w[k].data = pc;
        ev_io_start(aemp_loop(), &pc->w[k]);
    }
    pc->parked = 0;
    pc->live = 1;
}

static void px_accept(EV_P_ ev_io *w, int revents)
{
    proxy_t *px = w->data;
    int fd = accept(px->lfd, NULL, NULL);
    if (fd < 0)
        return;
    pconn_t *pc = NULL;
    for (int i = 0; i < MAXPC && !pc; i++)
        if (!pcs[i].used)
            pc = &pcs[i];
    if (!pc) {
        close(fd);
        return;
    }
    memset(pc, 0, sizeof *pc);
    pc->used = 1;
    pc->px = px;
    pc->fd[0] = fd;
    pc->fd[1] = -1;
    if (px->record && !px->recorded)
        px->recorded = pc;
    if (!hold) {
        pc_start(pc);
        return;
    }
    pc->parked = 1;
    int parked = 0;
    for (int i = 0; i < MAXPC; i++)
        parked += pcs[i].used && pcs[i].parked;
    if (parked >= hold) {   /* release them all at once */
        hold = 0;
        for (int i = 0; i < MAXPC; i++)
            if (pcs[i].used && pcs[i].parked)
                pc_start(&pcs[i]);
    }
}

static proxy_t *proxy_new(int target, int record)
{
    proxy_t *px = calloc(1, sizeof *px);
    assert_non_null(px);
    px->target = target;
    px->record = record;
    px->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t len = sizeof sin;
    assert_int_equal(bind(px->lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(px->lfd, 16), 0);
    getsockname(px->lfd, (struct sockaddr *)&sin, &len);
    px->port = ntohs(sin.sin_port);
    ev_io_init(&px->aw, px_accept, px->lfd, EV_READ);
    px->aw.data = px;
    ev_io_start(aemp_loop(), &px->aw);
    return px;
}

static int proxy_live(const proxy_t *px)
{
    int n = 0;
    for (int i = 0; i < MAXPC; i++)
        n += pcs[i].used && pcs[i].live && (!px || pcs[i].px == px);
    return n;
}

static void proxy_free(proxy_t *px)
{
    if (!px)
        return;
    for (int i = 0; i < MAXPC; i++) {
        if (pcs[i].used && pcs[i].px == px) {
            pc_close(&pcs[i]);
            pcs[i].used = 0;
        }
    }
    ev_io_stop(aemp_loop(), &px->aw);
    close(px->lfd);
    free(px);
}

static proxy_t *proxies[4];

/* ------------------------------------------------------------ setup */

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-node-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    aemp_log_hook_add(tu_log_hook, NULL);
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:f}", "nodeid", "tester", "secret", SECRET,
                        "binds", "127.0.0.1:0", "connect_interval", CONNECT_INTERVAL) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    stop_all();
    aemp_shutdown();
    reset_inbox();
    aemp_msg_unref(mon_reason);
    aemp_msg_unref(reply);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

/* After every test, also a failed one: no peer or proxy survives it. */
static int test_teardown(void **state)
{
    stop_all();
    for (int i = 0; i < 4; i++) {
        proxy_free(proxies[i]);
        proxies[i] = NULL;
    }
    hold = 0;
    tu_run_for(0.05);
    return 0;
}

/* ------------------------------------------------- 1. aemp_mon_nodes */

typedef struct nodeev {
    char node[64];
    int up;
    aemp_msg_t *reason;
} nodeev_t;
static nodeev_t nodeev[64];
static int nnodeev, ncounted;

static void on_node(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    if (strncmp(node, "updown", 6) || nnodeev >= 64)
        return;
    snprintf(nodeev[nnodeev].node, sizeof nodeev[nnodeev].node, "%s", node);
    nodeev[nnodeev].up = up;
    nodeev[nnodeev].reason = aemp_msg_ref(reason);
    nnodeev++;
}

static void on_node_count(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    if (!strncmp(node, "updown", 6))
        ncounted++;
}

static void check_up_event(int i, const char *node)
{
    assert_string_equal(nodeev[i].node, node);
    assert_int_equal(nodeev[i].up, 1);
    tu_assert_msg(nodeev[i].reason, "[]");
}

static void check_down_event(int i, const char *node)
{
    assert_string_equal(nodeev[i].node, node);
    assert_int_equal(nodeev[i].up, 0);
    aemp_msg_t *r = nodeev[i].reason;
    assert_int_equal(aemp_msg_len(r), 3);
    assert_string_equal(aemp_msg_str(r, 0, NULL), "transport_error");
    assert_string_equal(aemp_msg_str(r, 1, NULL), node);
    size_t whylen = 0;
    assert_non_null(aemp_msg_str(r, 2, &whylen));
    assert_true(whylen > 0);
}

static void mon_nodes_up_down_cancel(void **state)
{
    assert_int_equal(aemp_mon_nodes(NULL, NULL, NULL), AEMP_EINVAL);
    aemp_handle_t h, h2;
    assert_int_equal(aemp_mon_nodes(on_node, NULL, &h), 0);
    assert_int_equal(aemp_mon_nodes(on_node_count, NULL, &h2), 0);
    nnodeev = ncounted = 0;

    /* outgoing connections to the same address, three lives of one node */
    char bind[32];
    snprintf(bind, sizeof bind, "127.0.0.1:%d", free_port());
    const char *args[] = { "binds", bind, NULL };
    pu_node_t *n = &peer[0];
    for (int round = 0; round < 3; round++) {
        assert_true(start_peer(n, "updown", args));
        if (round == 0)
            add_peer(n);
        echo_roundtrip(n);
        assert_true(run_until_ge(&nnodeev, 2 * round + 1, 5));
        check_up_event(2 * round, "updown");
        assert_int_equal(aemp_node_is_up("updown"), 1);
        stop_peer(n, SIGKILL);
        assert_true(run_until_ge(&nnodeev, 2 * round + 2, 5));
        check_down_event(2 * round + 1, "updown");
        assert_int_equal(aemp_node_is_up("updown"), 0);
    }

    /* an incoming connection: a node that has us as its seed */
    char seeds[64];
    aemp_msg_t *listeners = aemp_listeners();
    assert_non_null(aemp_msg_str(listeners, 0, NULL));
    snprintf(seeds, sizeof seeds, "%s", aemp_msg_str(listeners, 0, NULL));
    aemp_msg_unref(listeners);
    const char *in_args[] = { "seeds", seeds, NULL };
    assert_true(start_peer(&peer[1], "updown_in", in_args));
    assert_true(run_until_ge(&nnodeev, 7, 10));
    check_up_event(6, "updown_in");
    stop_peer(&peer[1], SIGKILL);
    assert_true(run_until_ge(&nnodeev, 8, 5));
    check_down_event(7, "updown_in");

    tu_run_for(0.2);
    assert_int_equal(nnodeev, 8);   /* nothing twice */
    for (int i = 0; i < nnodeev; i++)
        assert_int_equal(nodeev[i].up, i % 2 == 0);   /* strictly alternating */
    assert_int_equal(ncounted, 8);  /* every callback sees every event */

    /* cancelled: no more calls; the other callback still runs */
    assert_int_equal(aemp_mon_nodes_cancel(h), 0);
    assert_int_equal(aemp_mon_nodes_cancel(h), AEMP_ENOENT);
    assert_true(start_peer(n, "updown", args));
    echo_roundtrip(n);
    stop_peer(n, SIGKILL);
    assert_true(run_until_ge(&ncounted, 10, 5));
    tu_run_for(0.1);
    assert_int_equal(nnodeev, 8);
    assert_int_equal(aemp_mon_nodes_cancel(h2), 0);
    for (int i = 0; i < nnodeev; i++)
        aemp_msg_unref(nodeev[i].reason);
    nnodeev = 0;
}

/* ------------------------------------------------- 2. snd_to_func */

static aemp_msg_t *local_args;
static char local_src[128];
static int local_called;
static void local_func(aemp_msg_t *args, void *arg)
{
    aemp_msg_unref(local_args);
    local_args = aemp_msg_ref(args);
    snprintf(local_src, sizeof local_src, "%s", aemp_srcnode() ? aemp_srcnode() : "(null)");
    local_called++;
}

static void snd_to_func_remote_and_local(void **state)
{
    pu_node_t *n = &peer[0];
    assert_true(start_peer(n, "funcs", NULL));
    add_peer(n);
    reset_inbox();
    const char *me = aemp_port(on_list, NULL);

    /* the peer runs aemp::reply ME "called" 42 {"k":[1,2]} */
    assert_int_equal(aemp_snd_to_func("funcs", "aemp::reply", aemp_msgf("ssi{s[ii]}", me, "called", 42, "k", 1, 2)),
                     0);
    assert_true(run_until_ge(&received, 1, 5));
    tu_assert_msg(inbox[0], "[\"called\",42,{\"k\":[1,2]}]");

    /* a port ID names its node too; no arguments beyond the port */
    char echo[200];
    snprintf(echo, sizeof echo, "%s#echo", n->nodeid);
    assert_int_equal(aemp_snd_to_func(echo, "aemp::reply", aemp_msgf("s", me)), 0);
    assert_true(run_until_ge(&received, 2, 5));
    tu_assert_msg(inbox[1], "[]");

    /* function calls (node port) and messages to a port of one node,
     * interleaved: the peer handles both in arrival order (node-port
     * requests go through its job queue like port messages), so their
     * effects come back in send order */
    reset_inbox();
    for (int i = 0; i < 40; i++) {
        if (i % 2)
            assert_int_equal(aemp_sndf(echo, "sis", "seq", i, me), 0);
        else
            assert_int_equal(aemp_snd_to_func("funcs", "aemp::reply", aemp_msgf("ssi", me, "seq", i)), 0);
    }
    assert_true(run_until_ge(&received, 40, 5));
    for (int i = 0; i < 40; i++)
        assert_int_equal(inbox_int1(i), i);

    /* an unknown function: the peer logs it, the connection stays */
    assert_int_equal(aemp_snd_to_func("funcs", "nope::missing", aemp_msgf("i", 1)), 0);
    echo_roundtrip(n);
    char *log = peer_log("funcs");
    if (!strstr(log, "unable to resolve function 'nope::missing'"))
        fail_msg("peer log lacks the unresolved function:\n%s", log);
    free(log);
    assert_int_equal(aemp_node_is_up("funcs"), 1);

    /* argument errors; args are stolen also on failure */
    assert_int_equal(aemp_snd_to_func("funcs", NULL, aemp_msg_empty()), AEMP_EINVAL);
    assert_int_equal(aemp_snd_to_func("funcs", "", NULL), AEMP_EINVAL);
    assert_int_equal(aemp_snd_to_func("funcs", "aemp::reply", aemp_valf("{}")), AEMP_EINVAL);
    assert_int_equal(aemp_snd_to_func(NULL, "aemp::reply", aemp_msg_empty()), AEMP_EPORTID);
    assert_int_equal(aemp_snd_to_func("", "aemp::reply", NULL), AEMP_EPORTID);

    /* our own node: called from the loop, never inside the call */
    assert_int_equal(aemp_func_register("test::local", local_func, NULL), 0);
    local_called = 0;
    assert_int_equal(aemp_snd_to_func(aemp_node(), "test::local", aemp_msgf("is", 7, "x")), 0);
    assert_int_equal(local_called, 0);
    assert_true(run_until_ge(&local_called, 1, 2));
    tu_assert_msg(local_args, "[7,\"x\"]");
    assert_string_equal(local_src, "tester");
    assert_int_equal(aemp_func_unregister("test::local"), 0);
    aemp_msg_unref(local_args);
    local_args = NULL;

    aemp_kil(me, NULL);
    stop_peer(n, SIGTERM);
}

/* ------------------------------------------------- 3. no holes */

static int seq_next, seq_gaps, seq_late, seq_mon;
static aemp_msg_t *seq_reason;
static void on_seq(aemp_msg_t *m, void *arg)
{
    int64_t i = -1;
    aemp_msg_int(m, 1, &i);
    if (seq_mon)
        seq_late++;
    if (i != seq_next)
        seq_gaps++;
    seq_next = (int)i + 1;
}

static void on_seq_mon(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(seq_reason);
    seq_reason = aemp_msg_ref(r);
    seq_mon = 1;
}

/* Rounds 0-2: SIGKILL; round 3: SIGTERM (the peer closes its sockets
 * while we still write: without MSG_NOSIGNAL/SIG_IGN a write would raise
 * SIGPIPE in this process, which keeps the default action). */
static void no_holes_when_the_peer_is_killed(void **state)
{
    enum { ROUNDS = 4, KILL_AT = 3000, WINDOW = 20000, BATCH = 500, MAXSEND = 1000000 };
    for (int round = 0; round < ROUNDS; round++) {
        char id[32];
        snprintf(id, sizeof id, "victim%d", round);
        pu_node_t *n = &peer[0];
        assert_true(start_peer(n, id, NULL));
        add_peer(n);
        char *port = aemp_spawn(id, "aemp::echo", NULL);
        assert_non_null(port);
        const char *me = aemp_port(on_seq, NULL);
        seq_next = seq_gaps = seq_late = seq_mon = 0;
        aemp_sndf(port, "sis", "n", 0, me);
        if (!run_until_ge(&seq_next, 1, 5)) {
            char *log = peer_log(id);
            fail_msg("no first echo from %s; our log:\n%s\n%s's log:\n%s", id,
                     strlen(tu_log) > 3000 ? tu_log + strlen(tu_log) - 3000 : tu_log, id, log);
        }
        assert_int_equal(aemp_mon(port, on_seq_mon, NULL, NULL), 0);

        int sent = 1, killed = 0, sent_at_kill = 0, got_at_kill = 0;
        double end = pu_now() + 20;
        while (!seq_mon && pu_now() < end) {
            if (sent - seq_next < WINDOW && sent < MAXSEND) {
                for (int i = 0; i < BATCH; i++, sent++)
                    aemp_sndf(port, "sis", "n", sent, me);
                ev_run(aemp_loop(), EVRUN_NOWAIT);
            } else {
                tu_run_for(0.002);
            }
            if (!killed && seq_next >= KILL_AT && sent > seq_next) {   /* some still in flight */
                sent_at_kill = sent;
                got_at_kill = seq_next;
                kill(n->pid, round < 3 ? SIGKILL : SIGTERM);
                killed = 1;
            }
        }
        assert_true(killed);
        assert_true(seq_mon);
        int got_at_mon = seq_next;
        tu_run_for(0.5);
        print_message("round %d: %s after %d echoes with %d sent; %d echoes before the monitor, "
                      "%d after it; reason %s\n", round, round < 3 ? "SIGKILL" : "SIGTERM", got_at_kill,
                      sent_at_kill, got_at_mon, seq_late, aemp_msg_str(seq_reason, 2, NULL));
        assert_true(got_at_kill < sent_at_kill);   /* killed with messages in flight */
        assert_int_equal(seq_gaps, 0);             /* a contiguous prefix 0..k */
        assert_int_equal(seq_late, 0);             /* nothing after the monitor */
        assert_string_equal(aemp_msg_str(seq_reason, 0, NULL), "transport_error");
        assert_string_equal(aemp_msg_str(seq_reason, 1, NULL), id);
        assert_int_equal(aemp_node_is_up(id), 0);
        stop_peer(n, SIGKILL);
        aemp_kil(me, NULL);
        free(port);
    }
    aemp_msg_unref(seq_reason);
    seq_reason = NULL;
}

/* A port that sends a message and then dies: its death notice (kil0)
 * comes after the message on the same connection, so the monitor must not
 * fire before the message is delivered - also for aemp_cal without a
 * timeout, which monitors the destination and must report the reply, not
 * the death. */
static char order[64];
static void on_order_msg(aemp_msg_t *m, void *arg)
{
    strcat(order, "M");
}
static char order_reason[256];
static void on_order_mon(aemp_msg_t *r, void *arg)
{
    strcat(order, "D");
    char *t = aemp_val_text(aemp_msg_root(r));
    snprintf(order_reason, sizeof order_reason, "%s", t);
    free(t);
}
static int cal_done;
static aemp_msg_t *cal_reply;
static void on_cal(aemp_msg_t *r, void *arg)
{
    cal_reply = aemp_msg_ref(r);
    cal_done = 1;
}

static void death_notice_after_earlier_messages(void **state)
{
    pu_node_t *n = &peer[0];
    assert_true(start_peer(n, "replier", NULL));
    add_peer(n);
    echo_roundtrip(n);
    int bad = 0, cal_bad = 0;
    for (int round = 0; round < 10; round++) {
        char *port = aemp_spawn("replier", "aemp::echo", NULL);
        const char *me = aemp_port(on_order_msg, NULL);
        order[0] = 0;
        aemp_mon(port, on_order_mon, NULL, NULL);
        aemp_sndf(port, "ss", "last words", me);
        aemp_kilf(port, "ss", "bye", "now");
        double end = pu_now() + 5;
        while (strlen(order) < 2 && pu_now() < end)
            tu_run_for(0.01);
        assert_int_equal(strlen(order), 2);
        if (strcmp(order, "MD")) {
            if (!bad)
                print_message("order %s, monitor reason %s\n", order, order_reason);
            bad++;
        }
        aemp_kil(me, NULL);
        free(port);

        port = aemp_spawn("replier", "aemp::echo", NULL);
        cal_done = 0;
        assert_non_null(aemp_cal(port, aemp_msgf("s", "answer"), on_cal, NULL, 0));
        aemp_kilf(port, "ss", "bye", "now");
        assert_true(tu_run_until(&cal_done, 5));
        cal_bad += cal_reply == NULL;
        aemp_msg_unref(cal_reply);
        cal_reply = NULL;
        free(port);
    }
    print_message("death notice before an earlier message: %d of 10; cal reported death instead of "
                  "the reply: %d of 10\n", bad, cal_bad);
    assert_int_equal(bad, 0);
    assert_int_equal(cal_bad, 0);
    stop_peer(n, SIGTERM);
}

/* A peer that exits cleanly (its socket sends FIN, not RST) while we have
 * a big burst for it: writing to the dead connection must fail that
 * connection, not kill this process with SIGPIPE (left at its default
 * action by main, as in any program that does not know better). */
static void burst_to_a_peer_that_exited(void **state)
{
    pu_node_t *n = &peer[0];
    assert_true(start_peer(n, "gone", NULL));
    add_peer(n);
    echo_roundtrip(n);
    mon_fired = 0;
    assert_int_equal(aemp_mon("gone#echo", on_mon, NULL, NULL), 0);
    tu_run_for(0.1);
    stop_peer(n, SIGTERM);   /* exits; the loop has not seen the EOF yet */
    aemp_msg_t *big = aemp_msgf("s", "0123456789012345678901234567890123456789012345678901234567890123456789");
    for (int i = 0; i < 200000; i++)
        aemp_snd("gone#echo", aemp_msg_ref(big));
    aemp_msg_unref(big);
    assert_true(run_until_ge(&mon_fired, 1, 5));
    print_message("burst after exit: %s\n", aemp_msg_str(mon_reason, 2, NULL));
    assert_string_equal(aemp_msg_str(mon_reason, 0, NULL), "transport_error");
    assert_int_equal(aemp_node_is_up("gone"), 0);
}

/* ------------------------------------------------- 4. queue / refused */

static void queued_while_connecting_arrive_in_order(void **state)
{
    enum { N = 10000 };
    pu_node_t *n = &peer[0];
    assert_true(start_peer(n, "queued", NULL));
    assert_int_equal(aemp_node_is_up("queued"), AEMP_ENOENT);
    add_peer(n);
    assert_int_equal(aemp_node_is_up("queued"), 0);   /* known, not connected */
    reset_inbox();
    const char *me = aemp_port(on_list, NULL);
    for (int i = 0; i < N; i++)
        assert_int_equal(aemp_sndf("queued#echo", "sis", "q", i, me), 0);
    assert_int_equal(aemp_node_is_up("queued"), 0);   /* sending never connects inline */
    assert_true(run_until_ge(&received, N, 10));
    for (int i = 0; i < N; i++)
        assert_int_equal(inbox_int1(i), i);
    assert_int_equal(aemp_node_is_up("queued"), 1);
    tu_run_for(0.1);
    assert_int_equal(received, N);
    aemp_kil(me, NULL);
    stop_peer(n, SIGTERM);
}

static int nodemon_fired;
static aemp_msg_t *nodemon_reason;
static void on_nodemon(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(nodemon_reason);
    nodemon_reason = aemp_msg_ref(r);
    nodemon_fired++;
}

static void refused_address_fails_and_drops_the_queue(void **state)
{
    int port = free_port();   /* closed: connects are refused */
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    aemp_msg_t *a = aemp_msgf("s", addr);
    assert_int_equal(aemp_add_node("ghost", a), 0);
    aemp_msg_unref(a);
    reset_inbox();
    const char *me = aemp_port(on_list, NULL);
    mon_fired = nodemon_fired = 0;
    assert_int_equal(aemp_mon("ghost#echo", on_mon, NULL, NULL), 0);
    assert_int_equal(aemp_mon("ghost", on_nodemon, NULL, NULL), 0);
    double t0 = pu_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(aemp_sndf("ghost#echo", "sis", "lost", i, me), 0);
    assert_true(run_until_ge(&mon_fired, 1, CONNECT_INTERVAL + 3));
    double dt = mon_time - t0;
    char *why = aemp_val_text(aemp_msg_root(mon_reason));
    print_message("refused: the monitor fired after %.2f s: %s\n", dt, why);
    free(why);
    assert_true(dt >= CONNECT_INTERVAL * 0.9);
    assert_true(dt <= CONNECT_INTERVAL + 2);
    tu_assert_msg(mon_reason, "[\"transport_error\",\"ghost\",\"Connection refused\"]");
    assert_true(run_until_ge(&nodemon_fired, 1, 1));
    tu_assert_msg(nodemon_reason, "[\"transport_error\",\"ghost\",\"Connection refused\"]");
    assert_int_equal(aemp_node_is_up("ghost"), 0);

    /* the queue was dropped: a node that appears there now gets only what
     * is sent after the failure */
    pu_node_t *n = &peer[0];
    const char *args[] = { "binds", addr, NULL };
    assert_true(start_peer(n, "ghost", args));
    assert_int_equal(aemp_sndf("ghost#echo", "ss", "fresh", me), 0);
    assert_true(run_until_ge(&received, 1, 5));
    tu_run_for(0.3);
    assert_int_equal(received, 1);
    tu_assert_msg(inbox[0], "[\"fresh\"]");
    aemp_kil(me, NULL);
    stop_peer(n, SIGTERM);
    aemp_msg_unref(nodemon_reason);
    nodemon_reason = NULL;
}

/* ------------------------------------------------- 5. simultaneous */

/* Established TCP connections between the processes a and b (both ends
 * found in /proc/net/tcp through the socket inodes of each process). */
typedef struct tcpent {
    unsigned lport, rport;
    unsigned long inode;
} tcpent_t;

static int proc_inodes(pid_t pid, unsigned long *ino, int max)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char path[320], link[64];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t l = readlink(path, link, sizeof link - 1);
        if (l <= 0)
            continue;
        link[l] = 0;
        unsigned long i;
        if (sscanf(link, "socket:[%lu]", &i) == 1)
            ino[n++] = i;
    }
    closedir(d);
    return n;
}

static int established(tcpent_t *t, int max)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return 0;
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return 0;
    }
    while (n < max && fgets(line, sizeof line, f)) {
        unsigned long la, ra, inode;
        unsigned lp, rp, st;
        if (sscanf(line, " %*d: %lx:%x %lx:%x %x %*s %*s %*s %*u %*u %lu", &la, &lp, &ra, &rp, &st, &inode) == 6
            && st == 1)
            t[n++] = (tcpent_t){ lp, rp, inode };
    }
    fclose(f);
    return n;
}

static int owned(unsigned long inode, const unsigned long *ino, int n)
{
    for (int i = 0; i < n; i++)
        if (ino[i] == inode)
            return 1;
    return 0;
}

static int connections_between(pid_t a, pid_t b)
{
    static tcpent_t t[4096];
    unsigned long ia[256], ib[256];
    int na = proc_inodes(a, ia, 256), nb = proc_inodes(b, ib, 256), nt = established(t, 4096), count = 0;
    for (int i = 0; i < nt; i++) {
        if (!owned(t[i].inode, ia, na))
            continue;
        for (int j = 0; j < nt; j++)
            if (t[j].lport == t[i].rport && t[j].rport == t[i].lport && owned(t[j].inode, ib, nb))
                count++;
    }
    return count;
}

static int relayed;
static void on_relayed(aemp_msg_t *m, void *arg)
{
    relayed++;
}

/* Both nodes list each other once, one connection links them (counted by
 * `count`), and messages flow both ways between them. */
static void check_one_connection(pu_node_t *a, pu_node_t *b, int (*count)(void *), void *arg)
{
    add_peer(a);
    add_peer(b);
    assert_true(await_up_count(a->nodeid, b->nodeid, 1, 10));
    assert_true(await_up_count(b->nodeid, a->nodeid, 1, 10));
    double end = pu_now() + 5;
    while (count(arg) != 1 && pu_now() < end)
        tu_run_for(0.05);
    assert_int_equal(count(arg), 1);
    tu_run_for(0.5);
    assert_int_equal(count(arg), 1);
    assert_int_equal(up_count(a->nodeid, b->nodeid), 1);
    assert_int_equal(up_count(b->nodeid, a->nodeid), 1);
    /* a relays to b's echo port and b to a's: both directions of a-b */
    const char *me = aemp_port(on_relayed, NULL);
    char pa[200], pb[200];
    snprintf(pa, sizeof pa, "%s#echo", a->nodeid);
    snprintf(pb, sizeof pb, "%s#echo", b->nodeid);
    relayed = 0;
    assert_int_equal(aemp_snd_on(a->nodeid, pb, aemp_msgf("ss", "a-to-b", me)), 0);
    assert_int_equal(aemp_snd_on(b->nodeid, pa, aemp_msgf("ss", "b-to-a", me)), 0);
    assert_true(run_until_ge(&relayed, 2, 5));
    aemp_kil(me, NULL);
}

static int count_proc(void *arg)
{
    pu_node_t *p = arg;
    return connections_between(p[0].pid, p[1].pid);
}

static int count_proxied(void *arg)
{
    return proxy_live(NULL);
}

static void report_resolution(const char *a, const char *b)
{
    char *la = peer_log(a), *lb = peer_log(b);
    print_message("%s/%s: %d 'simultaneous connect', %d 'already connected', %d 'switched connections'\n", a, b,
                  pu_count(la, "simultaneous connect") + pu_count(lb, "simultaneous connect"),
                  pu_count(la, "already connected") + pu_count(lb, "already connected"),
                  pu_count(la, "switched connections") + pu_count(lb, "switched connections"));
    free(la);
    free(lb);
}

static void simultaneous_connects_leave_one_connection(void **state)
{
    for (int round = 0; round < 3; round++) {
        /* seeds pointing at each other, started together */
        pu_node_t *p = &peer[0];
        int port[2] = { free_port(), free_port() };
        char bind[2][32], seed[2][32], id[2][32];
        for (int i = 0; i < 2; i++) {
            snprintf(bind[i], sizeof bind[i], "127.0.0.1:%d", port[i]);
            snprintf(seed[i], sizeof seed[i], "127.0.0.1:%d", port[1 - i]);
            snprintf(id[i], sizeof id[i], "sim%c%d", 'A' + i, round);
        }
        for (int i = 0; i < 2; i++) {
            const char *args[] = { "binds", bind[i], "seeds", seed[i], NULL };
            assert_true(spawn_peer(&p[i], id[i], args));
        }
        assert_true(pu_await(&p[0]) && pu_await(&p[1]));
        ev_now_update(aemp_loop());
        check_one_connection(&p[0], &p[1], count_proc, p);
        report_resolution(id[0], id[1]);
        stop_peer(&p[0], SIGTERM);
        stop_peer(&p[1], SIGTERM);
    }
    for (int round = 0; round < 3; round++) {
        /* forced: each node's seed is a proxy that holds both connects
         * until both have arrived, then lets them through together */
        pu_node_t *p = &peer[2];
        int port[2] = { free_port(), free_port() };
        char bind[2][32], seed[2][32], id[2][32];
        hold = 2;
        for (int i = 0; i < 2; i++)
            proxies[i] = proxy_new(port[1 - i], 0);   /* i's seed leads to the other node */
        for (int i = 0; i < 2; i++) {
            snprintf(bind[i], sizeof bind[i], "127.0.0.1:%d", port[i]);
            snprintf(seed[i], sizeof seed[i], "127.0.0.1:%d", proxies[i]->port);
            snprintf(id[i], sizeof id[i], "forced%c%d", 'A' + i, round);
        }
        for (int i = 0; i < 2; i++) {
            const char *args[] = { "binds", bind[i], "seeds", seed[i], NULL };
            assert_true(start_peer(&p[i], id[i], args));
        }
        double end = pu_now() + 5;
        while (hold && pu_now() < end)
            tu_run_for(0.01);
        assert_int_equal(hold, 0);   /* both connects were held and released */
        check_one_connection(&p[0], &p[1], count_proxied, NULL);
        report_resolution(id[0], id[1]);
        stop_peer(&p[0], SIGTERM);
        stop_peer(&p[1], SIGTERM);
        for (int i = 0; i < 2; i++) {
            proxy_free(proxies[i]);
            proxies[i] = NULL;
        }
    }
}

/* ------------------------------------------------- 6. keepalive */

/* Keepalive frames ["",""] in the recorded client bytes after `from`;
 * *other gets the number of bytes that are not keepalives, *maxgap the
 * longest time between two of them. */
static int keepalives(const proxy_t *px, size_t from, const char *ka, size_t kalen, size_t *other, double *maxgap)
{
    int n = 0;
    double last = 0;
    *other = 0;
    *maxgap = 0;
    for (size_t c = 0; c < px->nchunks; c++) {
        const chunk_t *ch = &px->chunks[c];
        if (ch->off < from)
            continue;
        for (size_t i = 0; i < ch->len;) {
            if (ch->len - i >= kalen && !memcmp(px->rec + ch->off + i, ka, kalen)) {
                if (n && ch->t - last > *maxgap)
                    *maxgap = ch->t - last;
                last = ch->t;
                n++;
                i += kalen;
            } else {
                ++*other;
                i++;
            }
        }
    }
    return n;
}

static void listener_less_node_sends_keepalives(void **state)
{
    static const struct {
        const char *dialect, *ka;
        size_t kalen;
    } variant[] = {
        { "2.02", "\x82\x60\x60", 3 },   /* CBOR ["",""] */
        { "1.30", "[\"\",\"\"]", 7 },    /* JSON */
    };
    for (int v = 0; v < 2; v++) {
        char pid_[32], lid[32];
        snprintf(pid_, sizeof pid_, "keeper%d", v);
        snprintf(lid, sizeof lid, "lonely%d", v);
        pu_node_t *p = &peer[0], *l = &peer[1];
        const char *pargs[] = { "dialect", variant[v].dialect, NULL };
        assert_true(start_peer(p, pid_, pargs));
        add_peer(p);
        int pport = atoi(strrchr(p->addr, ':') + 1);
        proxies[0] = proxy_new(pport, 1);
        char seed[32];
        snprintf(seed, sizeof seed, "127.0.0.1:%d", proxies[0]->port);
        const char *largs[] = { "binds", "", "monitor_timeout", "0.3", "seeds", seed, NULL };
        assert_true(start_peer(l, lid, largs));
        assert_string_equal(l->addr, "");   /* no listeners */
        assert_true(await_up_count(pid_, lid, 1, 10));
        tu_run_for(1.0);   /* the start-up traffic is over */
        size_t from = proxies[0]->reclen;
        double t0 = pu_now();
        tu_run_for(3.0);   /* ten monitor_timeouts */
        double span = pu_now() - t0;
        size_t other;
        double maxgap;
        int n = keepalives(proxies[0], from, variant[v].ka, variant[v].kalen, &other, &maxgap);
        print_message("%s: %d keepalives in %.1f s, longest gap %.2f s, %zu other bytes\n", variant[v].dialect, n,
                      span, maxgap, other);
        assert_true(n >= 4);          /* one per 0.3..0.6 s of silence */
        assert_true(maxgap < 1.0);
        assert_int_equal(other, 0);   /* nothing else was needed */
        /* the connection lived through it: one connection, still up */
        assert_int_equal(proxy_live(proxies[0]), 1);
        assert_int_equal(up_count(pid_, lid), 1);
        char *lp = peer_log(pid_), *ll = peer_log(lid);
        if (strstr(lp, "closed") || strstr(lp, "unable to resolve") || strstr(lp, "dropped"))
            fail_msg("%s logged trouble:\n%s", pid_, lp);
        if (strstr(ll, "closed") || strstr(ll, "timeout"))
            fail_msg("%s logged trouble:\n%s", lid, ll);
        free(lp);
        free(ll);
        stop_peer(l, SIGTERM);
        stop_peer(p, SIGTERM);
        proxy_free(proxies[0]);
        proxies[0] = NULL;
    }
}

/* ------------------------------------------------- 7. relays to JSON peers */

/* Append to b what a 2.02 peer may send and JSON text has no plain form
 * for: the byte string c3 a4, UINT64_MAX, a map whose key holds a NUL
 * byte, and `nest` arrays nested in each other with "bottom" inside.
 * as_json_returns: the values as they come back from a peer that we talk
 * JSON with - the byte string as the text of U+00C3 U+00A4, which is how
 * Perl's JSON::XS writes those two bytes (see test_remote's wire_values);
 * everything else unchanged. */
static void put_relay_values(aemp_build_t *b, int as_json_returns, int nest)
{
    if (as_json_returns)
        aemp_build_strn(b, "\xc3\x83\xc2\xa4", 4);
    else
        aemp_build_bytes(b, "\xc3\xa4", 2);
    aemp_build_fmt(b, "u {s#: i}", (uint64_t)UINT64_MAX, "n\0l", (size_t)3, 1);
    for (int d = 0; d < nest; d++)
        aemp_build_array(b);
    aemp_build_str(b, "bottom");
    for (int d = 0; d < nest; d++)
        aemp_build_close(b);
}

/* A node ("relay") gets over CBOR, from us, a snd request (its node port)
 * whose message holds bytes, a uint64, a NUL in a map key and arrays
 * nested to the limit, and relays it to a 1.30 peer ("jsonsink") over
 * JSON.  The JSON peer takes the frame (its echo port sends the message
 * back to us) and keeps its link to the relay: the frame is one that both
 * framings carry, nobody drops the connection. */
static void relay_from_cbor_to_json_keeps_the_link(void **state)
{
    tu_log[0] = 0;
    pu_node_t *sink = &peer[0], *relay = &peer[1];
    const char *sargs[] = { "dialect", "1.30", NULL };
    assert_true(start_peer(sink, "jsonsink", sargs));
    add_peer(sink);
    echo_roundtrip(sink);   /* the sink's echoes come back to us on this link */
    const char *rargs[] = { "seeds", sink->addr, NULL };
    assert_true(start_peer(relay, "relay", rargs));
    add_peer(relay);
    echo_roundtrip(relay);
    assert_true(await_up_count("jsonsink", "relay", 1, 10));
    /* the framings of the two hops */
    if (!strstr(tu_log, "node relay up (2.02 dialect, hmac_sha3_512/cbor)"))
        fail_msg("we do not talk CBOR with the relay:\n%s", tu_log);
    char *log = peer_log("jsonsink");
    if (!strstr(log, "node relay up (1.30 dialect, hmac_md6_64_256/json)"))
        fail_msg("the relay does not talk JSON with the sink:\n%s", log);
    free(log);

    /* the nesting is at the limit: one array more is no message */
    const int nest = AEMP_MSG_MAX_DEPTH - 1;   /* plus the message's own array */
    aemp_build_t *b = aemp_build_new();
    put_relay_values(b, 0, nest + 1);
    assert_null(aemp_build_msg(b));

    reset_inbox();
    const char *me = aemp_port(on_list, NULL);
    b = aemp_build_new();
    put_relay_values(b, 0, nest);
    aemp_build_str(b, me);   /* the echo's reply port */
    aemp_msg_t *m = aemp_build_msg(b);
    assert_non_null(m);
    assert_int_equal(aemp_snd_on("relay", "jsonsink#echo", m), 0);
    assert_true(run_until_ge(&received, 1, 5));
    b = aemp_build_new();
    put_relay_values(b, 1, nest);
    aemp_msg_t *want = aemp_build_msg(b);
    assert_non_null(want);
    /* the same values of the same types (text and bytes differ) */
    if (!aemp_val_equal(aemp_msg_root(inbox[0]), aemp_msg_root(want)))
        fail_msg("the echo of the relayed message differs: %s", aemp_val_text(aemp_msg_root(inbox[0])));
    aemp_msg_unref(want);

    /* the links stayed: still listed on both sides, never closed, nothing
     * malformed; and the next relay takes the same way */
    tu_run_for(0.3);
    assert_int_equal(up_count("jsonsink", "relay"), 1);
    assert_int_equal(up_count("relay", "jsonsink"), 1);
    const char *const nodes[2] = { "jsonsink", "relay" };
    for (int i = 0; i < 2; i++) {
        log = peer_log(nodes[i]);
        char closed[64];
        snprintf(closed, sizeof closed, " to %s closed", nodes[1 - i]);
        if (strstr(log, closed) || strstr(log, "malformed"))
            fail_msg("%s dropped its link:\n%s", nodes[i], log);
        free(log);
    }
    assert_int_equal(aemp_snd_on("relay", "jsonsink#echo", aemp_msgf("ss", "after", me)), 0);
    assert_true(run_until_ge(&received, 2, 5));
    tu_assert_msg(inbox[1], "[\"after\"]");
    assert_int_equal(aemp_node_is_up("relay"), 1);
    assert_int_equal(aemp_node_is_up("jsonsink"), 1);
    aemp_kil(me, NULL);
    reset_inbox();
    stop_peer(relay, SIGTERM);
    stop_peer(sink, SIGTERM);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);   /* what a library user gets by default */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(mon_nodes_up_down_cancel, test_teardown),
        cmocka_unit_test_teardown(snd_to_func_remote_and_local, test_teardown),
        cmocka_unit_test_teardown(no_holes_when_the_peer_is_killed, test_teardown),
        cmocka_unit_test_teardown(death_notice_after_earlier_messages, test_teardown),
        cmocka_unit_test_teardown(burst_to_a_peer_that_exited, test_teardown),
        cmocka_unit_test_teardown(queued_while_connecting_arrive_in_order, test_teardown),
        cmocka_unit_test_teardown(refused_address_fails_and_drops_the_queue, test_teardown),
        cmocka_unit_test_teardown(simultaneous_connects_leave_one_connection, test_teardown),
        cmocka_unit_test_teardown(listener_less_node_sends_keepalives, test_teardown),
        cmocka_unit_test_teardown(relay_from_cbor_to_json_keeps_the_link, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
