/* Multi-process tests of the transport and node protocol: this test process
 * is one node; real `aemp run` processes are its peers, one per dialect
 * setting (2.02 only, 1.30 only, both).  Covers remote snd/cal, spawn,
 * monitors and kills in both directions, node-port requests, relays, a
 * wrong secret, malformed peers, and a peer killed with SIGKILL. */
#include "testutil.h"

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

static char logbuf[16384];
static void log_hook(int level, const char *msg, void *arg)
{
    size_t n = strlen(logbuf);
    if (n + strlen(msg) + 2 < sizeof logbuf) {
        strcat(logbuf, msg);
        strcat(logbuf, "\n");
    }
}

static int start_peer(pu_node_t *p, const char *nodeid, const char *dialect, const char *secret)
{
    const char *env[] = { rcenv, "AEMP_WARNLEVEL=2", NULL };
    const char *args[] = { "nodeid", nodeid, "binds", "127.0.0.1:0", "secret", secret,
                           "dialect", dialect, "connect_interval", "3", NULL };
    if (!pu_start(p, env, args))
        return 0;
    json_t *a = json_pack("[s]", p->addr);
    aemp_add_node(p->nodeid, a);
    json_decref(a);
    return 1;
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-remote-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    aemp_log_hook_add(log_hook, NULL);
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
        json_t *r = tu_call(port, json_pack("[sis]", "hello", i, "grüße ✓"), 5);
        assert_non_null(r);
        char expect[64];
        snprintf(expect, sizeof expect, "[\"hello\",%d,\"grüße ✓\"]", i);
        tu_assert_json(r, expect);
        json_decref(r);
        assert_int_equal(aemp_node_is_up(peers[i].nodeid), 1);
        char line[256];
        snprintf(line, sizeof line, "node %s up (%s dialect, %s)", peers[i].nodeid, expect_dialect[i],
                 expect_auth[i]);
        if (!strstr(logbuf, line))
            fail_msg("missing log line '%s' in:\n%s", line, logbuf);
    }
    json_t *up = aemp_up_nodes();
    assert_int_equal(json_array_size(up), NPEERS);
    json_decref(up);
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
        tu_assert_json(box.last, expect);
        /* monitor it, kill it remotely with a reason (kil / kil1 by dialect) */
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        aemp_kilf(id, "ss", "custom_error", "bye");
        assert_true(tu_run_until(&mon.count, 5));
        tu_assert_json(mon.last, "[\"custom_error\",\"bye\"]");
        /* a monitor of the now dead port: no_such_port with the full ID */
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        assert_true(tu_run_until(&mon.count, 5));
        char nsp[512];
        snprintf(nsp, sizeof nsp, "[\"no_such_port\",\"cannot monitor nonexistent port\",\"%s\"]", id);
        tu_assert_json(mon.last, nsp);
        free(id);
    }
    aemp_kil(me, NULL);
}

static void spawn_failures_reach_the_monitor(void **state)
{
    for (int i = 0; i < NPEERS; i++) {
        char *id = aemp_spawn(peers[i].nodeid, "nope::missing", NULL);
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        assert_true(tu_run_until(&mon.count, 5));
        tu_assert_json(mon.last, "[\"die\",\"unable to resolve function 'nope::missing'\"]");
        free(id);
        id = aemp_spawn(peers[i].nodeid, "aemp::die", NULL);
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        assert_true(tu_run_until(&mon.count, 5));
        tu_assert_json(mon.last, "[\"die\",\"requested\"]");
        free(id);
    }
    assert_null(aemp_spawn(peers[0].nodeid, "nocolons", NULL));
}

static void node_port_requests(void **state)
{
    for (int i = 0; i < NPEERS; i++) {
        const char *n = peers[i].nodeid;
        json_t *r = tu_call(n, json_pack("[s]", "time"), 5);
        assert_non_null(r);
        assert_true(json_is_real(json_array_get(r, 0)));
        double dt = json_real_value(json_array_get(r, 0)) - ev_time();
        assert_true(dt > -60 && dt < 60);
        json_decref(r);
        r = tu_call(n, json_pack("[s]", "info"), 5);
        char expect[300];
        snprintf(expect, sizeof expect, "[\"%s\"]", n);
        tu_assert_json(r, expect);
        json_decref(r);
        r = tu_call(n, json_pack("[ss]", "can", "mon1"), 5);
        tu_assert_json(r, "[\"1\"]");
        json_decref(r);
        r = tu_call(n, json_pack("[ss]", "can", "no_such_request"), 5);
        tu_assert_json(r, "[\"\"]");
        json_decref(r);
        r = tu_call(n, json_pack("[s]", "up_nodes"), 5);
        assert_true(json_array_size(r) >= 1);
        json_decref(r);
        /* a Perl-only request gets an error reply, never a crash */
        r = tu_call(n, json_pack("[ss]", "eval", "1+1"), 5);
        assert_true(json_is_string(json_array_get(r, 0)));
        assert_non_null(strstr(json_string_value(json_array_get(r, 0)), "not supported"));
        json_decref(r);
    }
}

static void relay_with_snd_on(void **state)
{
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NPEERS; i++) {
        box.count = 0;
        assert_int_equal(aemp_snd_on(peers[i].nodeid, me, json_pack("[si]", "relayed", i)), 0);
        assert_true(tu_run_until(&box.count, 5));
        char expect[64];
        snprintf(expect, sizeof expect, "[\"relayed\",%d]", i);
        tu_assert_json(box.last, expect);
    }
    aemp_kil(me, NULL);
}

/* The peer monitors one of our ports through aemp::link: when our port
 * dies abnormally, the linked spawned port dies with the same reason. */
static void remote_monitors_of_our_ports(void **state)
{
    for (int i = 0; i < NPEERS; i++) {
        const char *mine = aemp_port(tu_box_put, &box);
        char *id = aemp_spawn(peers[i].nodeid, "aemp::link", json_pack("[s]", mine));
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        tu_run_for(0.2);   /* let the peer's mon1 arrive */
        aemp_kilf(mine, "ss", "linked", "death");
        assert_true(tu_run_until(&mon.count, 5));
        tu_assert_json(mon.last, "[\"linked\",\"death\"]");
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
    assert_string_equal(json_string_value(json_array_get(mon.last, 0)), "transport_error");
    assert_string_equal(json_string_value(json_array_get(mon.last, 2)),
                        "authentication failure/shared secret mismatch");
    assert_int_equal(aemp_node_is_up(bad.nodeid), 0);
    /* the peer is still running and so are our other connections */
    assert_int_equal(kill(bad.pid, 0), 0);
    char echo[256];
    snprintf(echo, sizeof echo, "%s#echo", peers[P202].nodeid);
    json_t *r = tu_call(echo, json_pack("[s]", "still"), 5);
    tu_assert_json(r, "[\"still\"]");
    json_decref(r);
    pu_stop(&bad, SIGTERM);
}

/* A raw TCP client to our own listener. */
static int raw_connect(void)
{
    const json_t *l = aemp_listeners();
    const char *addr = json_string_value(json_array_get(l, 0));
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(colon + 1)) };
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
    json_t *r = tu_call(echo, json_pack("[s]", "alive"), 5);
    tu_assert_json(r, "[\"alive\"]");
    json_decref(r);
}

static void garbage_greeting_is_dropped(void **state)
{
    int fd = raw_connect();
    const char junk[] = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(write(fd, junk, sizeof junk - 1), (ssize_t)(sizeof junk - 1));
    assert_true(closed_by_node(fd, 5));
    close(fd);
    assert_non_null(strstr(logbuf, "unparsable greeting, expected 'aemp', got 'GET / HTTP/1.0'"));
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
    assert_non_null(strstr(logbuf, "handshake line too long"));
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
        json_t *frame;
        aemp_proto_event_t ev;
        while ((ev = aemp__proto_next(p, &frame)) != AEMP_PROTO_NEED_MORE && ev != AEMP_PROTO_ERROR) {
            if (ev == AEMP_PROTO_AUTHED)
                authed = 1;
            if (ev == AEMP_PROTO_FRAME)
                json_decref(frame);
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
    assert_non_null(strstr(logbuf, "exceeds the limit"));
    aemp__proto_free(p);
    still_works();
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
    assert_string_equal(json_string_value(json_array_get(mon.last, 0)), "transport_error");
    assert_string_equal(json_string_value(json_array_get(mon.last, 1)), "victim");
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
    json_t *a = json_pack("[s]", sec.addr);
    aemp_add_node(sec.nodeid, a);
    json_decref(a);
    char *id = aemp_spawn(sec.nodeid, "aemp::echo", NULL);
    mon.count = 0;
    aemp_mon(id, tu_box_put, &mon, NULL);
    assert_true(tu_run_until(&mon.count, 5));
    assert_string_equal(json_string_value(json_array_get(mon.last, 0)), "no_such_port");
    free(id);
    /* a named function is not called: its reply never comes */
    const char *me = aemp_port(tu_box_put, &box);
    box.count = 0;
    aemp_snd_to_func(sec.nodeid, "aemp::grp_get", json_pack("[ss]", "g", me));
    tu_run_for(0.5);
    assert_int_equal(box.count, 0);
    /* ordinary messages and node-port requests still work */
    char echo[256];
    snprintf(echo, sizeof echo, "%s#echo", sec.nodeid);
    json_t *r = tu_call(echo, json_pack("[s]", "still"), 5);
    tu_assert_json(r, "[\"still\"]");
    json_decref(r);
    r = tu_call(sec.nodeid, json_pack("[s]", "info"), 5);
    tu_assert_json(r, "[\"securepeer\"]");
    json_decref(r);
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
        cmocka_unit_test(remote_monitors_of_our_ports),
        cmocka_unit_test(wrong_secret_is_rejected),
        cmocka_unit_test(garbage_greeting_is_dropped),
        cmocka_unit_test(oversized_greeting_is_dropped),
        cmocka_unit_test(truncated_frame_then_eof),
        cmocka_unit_test(oversized_frame_is_dropped),
        cmocka_unit_test(killed_peer_fires_transport_error),
        cmocka_unit_test(secure_node_refuses_remote_execution),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
