/* The order of node-port kills and spawns, as AnyEvent::MP has it, against
 * real `aemp run` nodes of each dialect (1.30 and 2.02).  This test process
 * is a raw peer: it authenticates with proto.c over a plain socket and
 * writes several requests with one write(), so they reach the node in one
 * read, then a `time` request whose answer marks the end of what the node
 * sent back for them.
 *
 *   - ["","mon1",P]["","mon0",P]["","kil",P,"x"]["","mon1",P] (kil1 for
 *     2.02): the kill happens inside its request, so the second mon1 finds
 *     no port and gets kil0 no_such_port, never "x"
 *   - ["","AnyEvent::MP::_spawn",Q,F]["","mon1",Q] for an init function F
 *     that dies (aemp::die) or cannot be resolved: the port never exists,
 *     the monitor gets no_such_port, and the node logs why the init died
 *   - a control: a spawned port that calls rcv exists at once, so a mon1
 *     right after its _spawn, then a kill, reports the kill's reason
 */
#include "testutil.h"

#include "procutil.h"
#include "proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SECRET "kernel-order-secret"

enum { N130, N202, NNODES };
static pu_node_t nodes[NNODES];
static const char *const node_ids[NNODES] = { "order130", "order202" };
static const char *const dialect_arg[NNODES] = { "1.30", "2.02" };
static const unsigned dialect_bit[NNODES] = { AEMP_DIALECT_130, AEMP_DIALECT_202 };
/* the remote kill request of each dialect */
static const char *const kil_req[NNODES] = { "kil", "kil1" };
static char tmpdir[64];
static char rcenv[128];
static char logpath[NNODES][160];

/* ---------------------------------------------------------- raw peer */

typedef struct raw {
    int fd;
    aemp_proto_t *p;
    char id[32];   /* our node ID: a new one per connection, so one that a
                      failed test left open is no rival */
} raw_t;

/* Write everything in the proto's out buffer with one write() (a blocking
 * socket: all of it goes, in one piece for a few hundred bytes). */
static void flush_out(raw_t *r)
{
    aemp_buf_t *out = aemp__proto_out(r->p);
    size_t n = aemp__buf_used(out);
    if (!n)
        return;
    ssize_t w = write(r->fd, aemp__buf_head(out), n);
    assert_int_equal(w, (ssize_t)n);
    aemp__buf_consume(out, n);
}

/* Read what the node sent within `seconds` into the proto (0 on EOF or
 * timeout). */
static int read_some(raw_t *r, double seconds)
{
    struct pollfd pfd = { r->fd, POLLIN, 0 };
    if (poll(&pfd, 1, (int)(seconds * 1000)) <= 0)
        return 0;
    char buf[8192];
    ssize_t n = read(r->fd, buf, sizeof buf);
    if (n <= 0)
        return 0;
    aemp__buf_append(aemp__proto_in(r->p), buf, (size_t)n);
    return 1;
}

/* Connect to node i and authenticate in its dialect under a new ID. */
static void raw_open(raw_t *r, int i)
{
    static int count;
    snprintf(r->id, sizeof r->id, "orderpeer%d", ++count);
    const char *colon = strrchr(nodes[i].addr, ':');
    assert_non_null(colon);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sin, sizeof sin), 0);
    aemp_proto_cfg_t cfg = { 0 };
    cfg.nodeid = r->id;
    cfg.secret = (const uint8_t *)SECRET;
    cfg.secretlen = strlen(SECRET);
    cfg.dialects = dialect_bit[i];
    r->p = aemp__proto_new(&cfg);
    assert_non_null(r->p);
    double end = pu_now() + 5;
    for (;;) {
        flush_out(r);
        aemp_frame_t frame;
        aemp_proto_event_t ev;
        int authed = 0;
        while ((ev = aemp__proto_next(r->p, &frame)) != AEMP_PROTO_NEED_MORE) {
            if (ev == AEMP_PROTO_ERROR)
                fail_msg("handshake with %s: %s", node_ids[i], aemp__proto_error(r->p));
            if (ev == AEMP_PROTO_AUTHED)
                authed = 1;
            if (ev == AEMP_PROTO_FRAME)
                aemp_msg_unref(frame.msg);
        }
        flush_out(r);
        if (authed) {
            assert_int_equal(aemp__proto_peer_dialect(r->p), dialect_bit[i]);
            return;
        }
        if (pu_now() > end || !read_some(r, end - pu_now()))
            fail_msg("no handshake with %s", node_ids[i]);
    }
}

static void raw_close(raw_t *r)
{
    close(r->fd);
    aemp__proto_free(r->p);
}

/* Queue one node-port request [msg...] (stolen). */
static void request(raw_t *r, aemp_msg_t *msg)
{
    assert_non_null(msg);
    aemp__proto_send(r->p, "", 0, msg);
    aemp_msg_unref(msg);
}

/* Queue a `time` request answered to <our ID>#<mark>, write everything queued
 * in one write(), and collect the kil0 requests the node sends until the
 * answer comes (5 s at most): a message of [port name, reason...] per
 * kil0, in arrival order. */
static aemp_msg_t *write_and_collect(raw_t *r, const char *mark)
{
    char reply[64];
    snprintf(reply, sizeof reply, "%s#%s", r->id, mark);
    request(r, aemp_msgf("ss", "time", reply));
    flush_out(r);
    aemp_build_t *kil0s = aemp_build_new();
    double end = pu_now() + 5;
    int done = 0;
    while (!done) {
        aemp_frame_t frame;
        aemp_proto_event_t ev;
        while ((ev = aemp__proto_next(r->p, &frame)) != AEMP_PROTO_NEED_MORE) {
            assert_int_not_equal(ev, AEMP_PROTO_ERROR);
            if (ev != AEMP_PROTO_FRAME)
                continue;
            const char *tag = aemp_msg_str(frame.msg, 0, NULL);
            if (frame.dest && !frame.destlen && tag && !strcmp(tag, "kil0")) {
                aemp_build_array(kil0s);
                for (size_t k = 1; k < aemp_msg_len(frame.msg); k++)
                    aemp_build_val(kil0s, aemp_msg_at(frame.msg, k));
                aemp_build_close(kil0s);
            } else if (frame.dest && !strcmp(frame.dest, mark)) {
                done = 1;
            }
            aemp_msg_unref(frame.msg);
        }
        if (!done && (pu_now() > end || !read_some(r, end - pu_now())))
            fail_msg("no answer to the time request '%s'", mark);
    }
    aemp_msg_t *m = aemp_build_msg(kil0s);
    assert_non_null(m);
    return m;
}

/* Fail unless the kil0 requests seen are exactly `expect` (JSON text). */
static void assert_kil0s(aemp_msg_t *got, const char *expect)
{
    tu_assert_val(aemp_msg_root(got), expect);
    aemp_msg_unref(got);
}

/* How often needle occurs in the log of node i. */
static int logged(int i, const char *needle)
{
    return pu_count_in_file(logpath[i], needle);
}

/* Fail unless the log of node i shows needle (waiting up to 5 s). */
static void assert_logged(int i, const char *needle)
{
    double end = pu_now() + 5;
    while (!logged(i, needle) && pu_now() < end)
        usleep(20000);
    if (!logged(i, needle)) {
        char *log = pu_read_file(logpath[i]);
        fail_msg("no '%s' in the log of %s:\n%s", needle, node_ids[i], log);
    }
}

/* ------------------------------------------------------------ set-up */

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-korder-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    const char *env[] = { rcenv, NULL };   /* the default log level */
    for (int i = 0; i < NNODES; i++) {
        snprintf(logpath[i], sizeof logpath[i], "%s/%s.log", tmpdir, node_ids[i]);
        const char *args[] = { "nodeid", node_ids[i], "binds", "127.0.0.1:0", "secret", SECRET,
                               "dialect", dialect_arg[i], NULL };
        if (!pu_spawn(&nodes[i], env, args, logpath[i], 0) || !pu_await(&nodes[i]))
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    int failed = 0;
    for (int i = 0; i < NNODES; i++) {
        int status = pu_stop(&nodes[i], SIGTERM);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s ended with status 0x%x; see %s\n", node_ids[i], status, logpath[i]);
            failed = 1;
        }
    }
    if (failed)
        return -1;   /* the logs stay for a look */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- tests */

/* The no_such_port reason of node i's port `name` as a kil0 (JSON). */
static const char *nsp(int i, const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "[\"%s\",\"no_such_port\",\"cannot monitor nonexistent port\",\"%s#%s\"]", name,
             node_ids[i], name);
    return buf;
}

static void kill_inside_the_request(void **state)
{
    for (int i = 0; i < NNODES; i++) {
        raw_t r;
        raw_open(&r, i);
        /* a live port P first */
        request(&r, aemp_msgf("sss", "AnyEvent::MP::_spawn", "killme", "aemp::echo"));
        assert_kil0s(write_and_collect(&r, "m1"), "[]");
        /* then, in one write: mon1 mon0 kil mon1 */
        request(&r, aemp_msgf("ss", "mon1", "killme"));
        request(&r, aemp_msgf("ss", "mon0", "killme"));
        request(&r, aemp_msgf("sss", kil_req[i], "killme", "x"));
        request(&r, aemp_msgf("ss", "mon1", "killme"));
        char expect[300];
        snprintf(expect, sizeof expect, "[%s]", nsp(i, "killme"));
        assert_kil0s(write_and_collect(&r, "m2"), expect);

        /* control: a monitor in place before the kill sees its reason;
         * the kill took effect at once, so the mon1 after it in the same
         * write gets no_such_port, after the reason */
        request(&r, aemp_msgf("sss", "AnyEvent::MP::_spawn", "killme2", "aemp::echo"));
        request(&r, aemp_msgf("ss", "mon1", "killme2"));
        request(&r, aemp_msgf("ssss", kil_req[i], "killme2", "custom_error", "bye"));
        request(&r, aemp_msgf("ss", "mon1", "killme2"));
        snprintf(expect, sizeof expect, "[[\"killme2\",\"custom_error\",\"bye\"],%s]", nsp(i, "killme2"));
        assert_kil0s(write_and_collect(&r, "m3"), expect);
        raw_close(&r);
    }
}

static void spawn_of_a_dying_init(void **state)
{
    for (int i = 0; i < NNODES; i++) {
        raw_t r;
        raw_open(&r, i);
        /* an init function that dies without calling rcv */
        request(&r, aemp_msgf("sss", "AnyEvent::MP::_spawn", "dies", "aemp::die"));
        request(&r, aemp_msgf("ss", "mon1", "dies"));
        /* one that cannot be resolved */
        request(&r, aemp_msgf("sss", "AnyEvent::MP::_spawn", "unknown", "nope::missing"));
        request(&r, aemp_msgf("ss", "mon1", "unknown"));
        char expect[600];
        snprintf(expect, sizeof expect, "[%s,", nsp(i, "dies"));
        strcat(expect, nsp(i, "unknown"));
        strcat(expect, "]");
        assert_kil0s(write_and_collect(&r, "s1"), expect);
        char line[300];
        snprintf(line, sizeof line,
                 "spawn of %s#dies: init function 'aemp::die' died before the port existed "
                 "(monitors see no_such_port): requested",
                 node_ids[i]);
        assert_logged(i, line);
        snprintf(line, sizeof line,
                 "spawn of %s#unknown: init function 'nope::missing' died before the port existed "
                 "(monitors see no_such_port): unable to resolve function 'nope::missing'",
                 node_ids[i]);
        assert_logged(i, line);

        /* an init that calls rcv makes the port exist inside the request:
         * the mon1 right after it attaches, and the kill reports its reason */
        request(&r, aemp_msgf("sss", "AnyEvent::MP::_spawn", "lives", "aemp::echo"));
        request(&r, aemp_msgf("ss", "mon1", "lives"));
        request(&r, aemp_msgf("sss", kil_req[i], "lives", "gone"));
        assert_kil0s(write_and_collect(&r, "s2"), "[[\"lives\",\"gone\"]]");
        raw_close(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_inside_the_request),
        cmocka_unit_test(spawn_of_a_dying_init),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
