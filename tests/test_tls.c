/* Multi-process tests of TLS (spec §8.4, §8.5): this test process is one
 * node with a certificate made by `aemp gencert`; real `aemp run` processes
 * are its peers.  Covers: gencert/setcert/delcert, the certificate loader,
 * TLS between C nodes in both dialects (tls_sha3_512, tls_md6_64_256,
 * tls_anon) with cal, spawn, monitors and kills; a certificate mismatch
 * (both sides say why); a TLS node against plain nodes with and without a
 * shared secret; TLS methods on a plain connection; peers that break off
 * the TLS handshake. */
#include "testutil.h"

#include "procutil.h"
#include "proto.h"
#include "tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define SECRET "tls-test-secret"

static char tmpdir[64];
static char rcpath[128];
static char rcenv[192];
static char *cert_a, *cert_b;   /* PEM of the profiles tlsA and tlsB */

/* ------------------------------------------------------- processes */

/* Run the aemp tool with args (NULL-terminated), stdout+stderr into
 * `outfile` (or /dev/null); returns its exit status, -1 after 60 s (killed). */
static int run_tool(const char *outfile, const char *const *args)
{
    const char *argv[32];
    int argc = 0;
    argv[argc++] = AEMP_BIN;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(outfile ? outfile : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(AEMP_BIN, (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    double end = pu_now() + 60;
    while (pu_now() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Every peer started, so that teardown can stop those that a failed test
 * left running (tests stop their own peers with pu_stop). */
static pid_t started[64];
static int nstarted;

/* Stop (by PID, bounded) every started peer that is still running. */
static void stop_leftovers(void)
{
    for (int i = 0; i < nstarted; i++) {
        int status;
        if (waitpid(started[i], &status, WNOHANG) != 0)
            continue;   /* reaped already (pu_stop), or just exited */
        kill(started[i], SIGTERM);
        double end = pu_now() + 5;
        while (waitpid(started[i], &status, WNOHANG) == 0) {
            if (pu_now() >= end) {
                kill(started[i], SIGKILL);
                waitpid(started[i], &status, 0);
                break;
            }
            usleep(10000);
        }
    }
    nstarted = 0;
}

/* As pu_start, with the peer's stderr (its log, level 8) in <tmpdir>/<tag>.log. */
static int start_node(pu_node_t *n, const char *tag, const char *const *args)
{
    char logpath[256];
    snprintf(logpath, sizeof logpath, "%s/%s.log", tmpdir, tag);
    static const char *const env[] = { "AEMP_WARNLEVEL=8", NULL };
    if (!pu_spawn(n, env, args, logpath, 0))
        return 0;
    if (nstarted < (int)(sizeof started / sizeof started[0]))
        started[nstarted++] = n->pid;
    if (!pu_await(n))
        return 0;
    aemp_msg_t *a = aemp_msgf("s", n->addr);
    aemp_add_node(n->nodeid, a);
    aemp_msg_unref(a);
    return 1;
}

/* The peer's log so far (malloc'd, never NULL). */
static char *peer_log(const char *tag)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.log", tmpdir, tag);
    return pu_read_file(path);
}

/* Wait (bounded, running our loop) until the peer's log contains text. */
static int peer_log_has(const char *tag, const char *text, double seconds)
{
    double end = pu_now() + seconds;
    for (;;) {
        char *s = peer_log(tag);
        int found = strstr(s, text) != NULL;
        free(s);
        if (found)
            return 1;
        if (pu_now() >= end)
            return 0;
        tu_run_for(0.05);
    }
}

/* TLS peers sharing our certificate (profile tlsA), no secret. */
enum { TBOTH, T202, T130, NTLS };
static pu_node_t tlspeer[NTLS];
static const char *const tls_ids[NTLS] = { "tlsboth", "tls202", "tls130" };
static const char *const tls_dialect[NTLS] = { "both", "2.02", "1.30" };

/* The PEM text of profile.<name>.cert in the rc file (malloc'd) or NULL. */
static char *rc_cert(const char *name)
{
    json_error_t je;
    json_t *rc = json_load_file(rcpath, 0, &je);
    const char *s = json_string_value(json_object_get(json_object_get(json_object_get(rc, "profile"), name), "cert"));
    char *r = s ? strdup(s) : NULL;
    json_decref(rc);
    return r;
}

static int setup_nodes(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-tls-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcpath, sizeof rcpath, "%s/rc", tmpdir);
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s", rcpath);
    putenv(rcenv);
    /* two certificates made by the tool; no global secret (a new rc file
     * gets one) so that "no shared secret" cases are real */
    const char *gen[] = { "delsecret", "profile", "tlsA", "gencert", "profile", "tlsB", "gencert", NULL };
    if (run_tool(NULL, gen) != 0) {
        fprintf(stderr, "aemp gencert failed\n");
        return -1;
    }
    cert_a = rc_cert("tlsA");
    cert_b = rc_cert("tlsB");
    if (!cert_a || !cert_b)
        return -1;
    aemp_log_hook_add(tu_log_hook, NULL);
    char err[512];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:s, s:[s], s:i}", "profile", "tlsA", "nodeid", "tester",
                        "secret", SECRET, "binds", "127.0.0.1:0", "connect_interval", 3) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    for (int i = 0; i < NTLS; i++) {
        const char *args[] = { "profile", "tlsA", "nodeid", tls_ids[i], "binds", "127.0.0.1:0",
                               "dialect", tls_dialect[i], "connect_interval", "3", NULL };
        if (!start_node(&tlspeer[i], tls_ids[i], args))
            return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    if (setup_nodes() == 0)
        return 0;
    stop_leftovers();   /* cmocka skips the teardown after a failed setup */
    return -1;
}

static int group_teardown(void **state)
{
    for (int i = 0; i < NTLS; i++)
        pu_stop(&tlspeer[i], SIGTERM);
    stop_leftovers();
    aemp_shutdown();
    free(cert_a);
    free(cert_b);
    /* under AddressSanitizer the peers report to their logs */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -l -e 'Sanitizer' -e 'runtime error' %s/*.log %s/*.out 2>/dev/null", tmpdir,
             tmpdir);
    int found = system(cmd) == 0;
    if (found)
        fprintf(stderr, "a peer reported a sanitizer error: see the files above (kept in %s)\n", tmpdir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (!found && system(cmd) != 0)
        return -1;
    return found ? -1 : 0;
}

/* ------------------------------------------------------------ helpers */

/* what monitors and the box.last port saw (see tu_box_t) */
static tu_box_t mon, box;

static void assert_log(const char *text)
{
    if (!strstr(tu_log, text))
        fail_msg("missing log line '%s' in:\n%s", text, tu_log);
}

/* cal <node>#echo over whatever connection we have to it */
static void echo_ok(const char *node, const char *word)
{
    char port[256];
    snprintf(port, sizeof port, "%s#echo", node);
    aemp_msg_t *r = tu_call(port, aemp_msgf("s", word), 5);
    char expect[128];
    snprintf(expect, sizeof expect, "[\"%s\"]", word);
    tu_assert_msg(r, expect);
    aemp_msg_unref(r);
}

static void still_works(void)
{
    echo_ok(tlspeer[TBOTH].nodeid, "alive");
}

/* Send to <node>#echo with a monitor and wait for the monitor (bounded);
 * returns the transport_error text (in mon.last). */
static const char *expect_transport_error(const char *node)
{
    char port[256];
    snprintf(port, sizeof port, "%s#echo", node);
    mon.count = 0;
    aemp_mon(port, tu_box_put, &mon, NULL);
    aemp_sndf(port, "s", "hello");
    assert_true(tu_run_until(&mon.count, 10));
    assert_string_equal(aemp_msg_str(mon.last, 0, NULL), "transport_error");
    assert_string_equal(aemp_msg_str(mon.last, 1, NULL), node);
    assert_int_equal(aemp_node_is_up(node), 0);
    return aemp_msg_str(mon.last, 2, NULL);
}

/* ------------------------------------------------------------- tests */

/* gencert stored "certificate, then key"; the loader takes both orders and
 * refuses broken PEM with a clear message. */
static void certificates_and_loader(void **state)
{
    const char *c = strstr(cert_a, "-----BEGIN CERTIFICATE-----");
    const char *k = strstr(cert_a, "PRIVATE KEY-----");
    assert_non_null(c);
    assert_non_null(k);
    assert_true(c < k);
    assert_string_not_equal(cert_a, cert_b);
    char err[256];
    aemp_tls_ctx_t *ctx = aemp__tls_ctx_new(cert_a, strlen(cert_a), err, sizeof err);
    assert_non_null(ctx);
    aemp__tls_ctx_free(ctx);

    /* key first, as `setcert` files usually are */
    const char *keystart = strstr(cert_a, "-----BEGIN PRIVATE KEY-----");
    assert_non_null(keystart);
    size_t certlen = (size_t)(keystart - cert_a);
    char *swapped = malloc(strlen(cert_a) + 1);
    strcpy(swapped, keystart);
    strncat(swapped, cert_a, certlen);
    assert_non_null(ctx = aemp__tls_ctx_new(swapped, strlen(swapped), err, sizeof err));
    aemp__tls_ctx_free(ctx);

    /* broken variants */
    assert_null(aemp__tls_ctx_new("garbage", 7, err, sizeof err));
    assert_non_null(strstr(err, "no private key found"));
    assert_null(aemp__tls_ctx_new(keystart, strlen(keystart), err, sizeof err));
    assert_non_null(strstr(err, "no certificate found"));
    const char *kb = strstr(cert_b, "-----BEGIN PRIVATE KEY-----");
    char *mixed = malloc(certlen + strlen(kb) + 1);
    memcpy(mixed, cert_a, certlen);
    strcpy(mixed + certlen, kb);   /* A's certificate, B's key */
    assert_null(aemp__tls_ctx_new(mixed, strlen(mixed), err, sizeof err));
    assert_non_null(strstr(err, "none of the certificates matches the private key"));
    free(mixed);

    /* setcert stores a file's text; the node uses it (TLS with us below);
     * delcert removes it */
    char path[256], out[256];
    snprintf(path, sizeof path, "%s/keyfirst.pem", tmpdir);
    FILE *f = fopen(path, "w");
    fputs(swapped, f);
    fclose(f);
    const char *set[] = { "profile", "keyfirst", "setcert", path, "profile", "gone", "setcert", path, NULL };
    assert_int_equal(run_tool(NULL, set), 0);
    char *kf = rc_cert("keyfirst");
    assert_string_equal(kf, swapped);
    free(kf);
    const char *del[] = { "profile", "gone", "delcert", NULL };
    assert_int_equal(run_tool(NULL, del), 0);
    assert_null(rc_cert("gone"));
    free(swapped);

    /* a bad cert makes configure fail with the loader's message */
    snprintf(out, sizeof out, "%s/badcert.out", tmpdir);
    const char *bad[] = { "run", "nodeid", "badpem", "binds", "127.0.0.1:0", "cert", "not a pem", NULL };
    assert_int_not_equal(run_tool(out, bad), 0);
    f = fopen(out, "r");
    char text[1024] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    if (!strstr(text, "cert: no private key found"))
        fail_msg("unexpected output of aemp run with a bad cert: %s", text);
}

/* cal, spawn, snd, mon, kil with a reason: all over TLS, in each dialect,
 * with the TLS auth method of the dialect. */
static void tls_between_c_nodes(void **state)
{
    const char *expect[NTLS] = { "2.02 dialect, tls_sha3_512/cbor", "2.02 dialect, tls_sha3_512/cbor",
                                 "1.30 dialect, tls_md6_64_256/json" };
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NTLS; i++) {
        const char *node = tlspeer[i].nodeid;
        char port[256];
        snprintf(port, sizeof port, "%s#echo", node);
        aemp_msg_t *r = tu_call(port, aemp_msgf("sis", "hello", i, "über TLS ✓"), 5);
        char ex[64];
        snprintf(ex, sizeof ex, "[\"hello\",%d,\"über TLS ✓\"]", i);
        tu_assert_msg(r, ex);
        aemp_msg_unref(r);
        char line[256];
        snprintf(line, sizeof line, "node %s up (%s)", node, expect[i]);
        assert_log(line);
        /* the peer saw our TLS auth method too */
        snprintf(line, sizeof line, "node tester up (%s dialect, %s/",
                 i == T130 ? "1.30" : "2.02", i == T130 ? "tls_md6_64_256" : "tls_sha3_512");
        assert_true(peer_log_has(tls_ids[i], line, 5));
        assert_true(peer_log_has(tls_ids[i], "TLS established (TLSv1.", 5));

        char *id = aemp_spawn(node, "aemp::echo", NULL);
        assert_non_null(id);
        box.count = 0;
        aemp_sndf(id, "sis", "ping", i, me);
        assert_true(tu_run_until(&box.count, 5));
        snprintf(ex, sizeof ex, "[\"ping\",%d]", i);
        tu_assert_msg(box.last, ex);
        mon.count = 0;
        aemp_mon(id, tu_box_put, &mon, NULL);
        aemp_kilf(id, "ss", "tls_kill", "bye");
        assert_true(tu_run_until(&mon.count, 5));
        tu_assert_msg(mon.last, "[\"tls_kill\",\"bye\"]");
        free(id);

        /* a large message: many TLS records each way */
        size_t big = 1 << 20;
        char *s = malloc(big + 1);
        for (size_t j = 0; j < big; j++)
            s[j] = (char)('a' + j % 26);
        s[big] = 0;
        r = tu_call(port, aemp_msgf("s", s), 10);
        assert_string_equal(aemp_msg_str(r, 0, NULL), s);
        aemp_msg_unref(r);
        free(s);
    }
    aemp_kil(me, NULL);
}

/* A peer that offers only tls_anon authenticates inside TLS with it. */
static void tls_anon_inside_tls(void **state)
{
    pu_node_t p;
    const char *args[] = { "profile", "tlsA", "nodeid", "anonpeer", "binds", "127.0.0.1:0",
                           "auth_offer", "[\"tls_anon\"]", NULL };
    assert_true(start_node(&p, "anonpeer", args));
    echo_ok(p.nodeid, "anon");
    assert_log("node anonpeer up (2.02 dialect, tls_anon/cbor)");
    pu_stop(&p, SIGTERM);
}

/* A different self-signed certificate: both sides refuse, and say why. */
static void certificate_mismatch(void **state)
{
    pu_node_t p;
    const char *args[] = { "profile", "tlsB", "nodeid", "othercert", "binds", "127.0.0.1:0", NULL };
    assert_true(start_node(&p, "othercert", args));
    const char *why = expect_transport_error(p.nodeid);
    assert_non_null(why);
    if (strncmp(why, "TLS handshake failed: ", 22) != 0)
        fail_msg("unexpected reason: %s", why);
    /* one side failed to verify the other's certificate, the other side
     * got the alert (which side depends on the nonces) */
    const char *verify = "TLS handshake failed: certificate verify failed: self-signed certificate";
    const char *alert = "(the peer rejected our certificate)";
    int we_verified = strstr(why, "certificate verify failed") != NULL;
    if (!we_verified && !strstr(why, alert))
        fail_msg("unexpected reason: %s", why);
    assert_true(peer_log_has("othercert", we_verified ? alert : verify, 5));
    assert_int_equal(kill(p.pid, 0), 0);   /* the peer still runs */
    pu_stop(&p, SIGTERM);
    still_works();
}

/* We announce tls, a plain peer does not: no TLS, so the secret decides. */
static void tls_node_against_plain_nodes(void **state)
{
    /* same secret: HMAC */
    pu_node_t p;
    const char *a1[] = { "nodeid", "plainsecret", "binds", "127.0.0.1:0", "secret", SECRET, NULL };
    assert_true(start_node(&p, "plainsecret", a1));
    echo_ok(p.nodeid, "plain");
    assert_log("node plainsecret up (2.02 dialect, hmac_sha3_512/cbor)");
    pu_stop(&p, SIGTERM);

    /* no secret on the plain node: it refuses (we get EOF) */
    pu_node_t q;
    const char *a2[] = { "nodeid", "plainnosecret", "binds", "127.0.0.1:0", NULL };
    assert_true(start_node(&q, "plainnosecret", a2));
    expect_transport_error(q.nodeid);
    assert_true(peer_log_has("plainnosecret", "unable to handshake TLS and no shared secret configured", 5));

    /* a TLS node without a secret seeding from it: both sides say so */
    pu_node_t s;
    const char *a3[] = { "profile", "tlsA", "nodeid", "tlsseeder", "binds", "127.0.0.1:0", "seeds", q.addr, NULL };
    assert_true(start_node(&s, "tlsseeder", a3));
    assert_true(peer_log_has("tlsseeder", "unable to handshake TLS and no shared secret configured", 10));
    char *ql = peer_log("plainnosecret");
    char *first = strstr(ql, "unable to handshake TLS and no shared secret configured");
    assert_non_null(first);
    free(ql);
    assert_true(peer_log_has("plainnosecret", "from tlsseeder: unable to handshake TLS", 5));
    pu_stop(&s, SIGTERM);
    pu_stop(&q, SIGTERM);
    still_works();
}

/* A raw TCP client to our own listener (non-blocking). */
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
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Drive the loop until the node closes fd (bounded); returns 1 if closed. */
static int closed_by_node(int fd, double seconds)
{
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

static void write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    double end = pu_now() + 5;
    while (n && pu_now() < end) {
        ssize_t w = write(fd, s, n);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
        } else {
            tu_run_for(0.01);
        }
    }
    assert_int_equal(n, 0);
}

/* Exchange greetings with our node through proto.c over a raw socket until
 * the protocol reports `until` (START_TLS or ERROR); returns the event. */
static aemp_proto_event_t raw_greet(int fd, aemp_proto_t *p, aemp_proto_event_t until)
{
    aemp_proto_event_t ev = AEMP_PROTO_NEED_MORE;
    double end = pu_now() + 5;
    while (pu_now() < end) {
        aemp_buf_t *out = aemp__proto_out(p);
        if (aemp__buf_used(out)) {
            write_all(fd, aemp__buf_head(out), aemp__buf_used(out));
            aemp__buf_consume(out, aemp__buf_used(out));
        }
        tu_run_for(0.01);
        char buf[4096];
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0)
            aemp__buf_append(aemp__proto_in(p), buf, (size_t)r);
        while ((ev = aemp__proto_next(p, NULL)) != AEMP_PROTO_NEED_MORE)
            if (ev == until || ev == AEMP_PROTO_ERROR)
                return ev;
    }
    return ev;
}

/* tls_* methods are refused on a plain connection, even with the right hash. */
static void tls_methods_need_tls(void **state)
{
    const aemp_auth_method_t methods[] = { AEMP_AUTH_TLS_SHA3_512, AEMP_AUTH_TLS_ANON, AEMP_AUTH_TLS_MD6_64_256 };
    for (int i = 0; i < 3; i++) {
        int fd = raw_connect();
        aemp_proto_cfg_t cfg = { 0 };
        cfg.nodeid = "rawplain";
        cfg.secret = (const uint8_t *)SECRET;   /* so that the proto gets past line 2 */
        cfg.secretlen = strlen(SECRET);
        cfg.dialects = methods[i] == AEMP_AUTH_TLS_MD6_64_256 ? AEMP_DIALECT_130 : AEMP_DIALECT_202;
        aemp_proto_t *p = aemp__proto_new(&cfg);
        /* run until our line 2 is parsed (the proto then has queued its own auth line: drop it) */
        double end = pu_now() + 5;
        while (!aemp__proto_line(p, 3) && pu_now() < end) {
            aemp_buf_t *out = aemp__proto_out(p);
            if (aemp__buf_used(out)) {
                write_all(fd, aemp__buf_head(out), aemp__buf_used(out));
                aemp__buf_consume(out, aemp__buf_used(out));
            }
            tu_run_for(0.01);
            char buf[4096];
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0)
                aemp__buf_append(aemp__proto_in(p), buf, (size_t)r);
            aemp_proto_event_t ev;
            while (!aemp__proto_line(p, 3) && (ev = aemp__proto_next(p, NULL)) != AEMP_PROTO_NEED_MORE)
                assert_int_not_equal(ev, AEMP_PROTO_ERROR);
        }
        assert_non_null(aemp__proto_line(p, 3));
        aemp_buf_t *pout = aemp__proto_out(p);   /* not its own (HMAC) auth line */
        aemp__buf_consume(pout, aemp__buf_used(pout));
        char token[AEMP_AUTH_TOKEN_MAX];
        int tl = aemp__auth_token(methods[i], NULL, 0, aemp__proto_line(p, 0), aemp__proto_line(p, 1),
                                  aemp__proto_line(p, 2), aemp__proto_line(p, 3), token, sizeof token);
        assert_true(tl >= 0);
        char line[2048];
        snprintf(line, sizeof line, "%s;%.*s;json\n", aemp__auth_name(methods[i]), tl, token);
        write_all(fd, line, strlen(line));
        assert_true(closed_by_node(fd, 5));
        close(fd);
        char expect[128];
        snprintf(expect, sizeof expect, "%s: TLS auth method used on a plain connection",
                 aemp__auth_name(methods[i]));
        assert_log(expect);
        assert_int_equal(aemp_node_is_up("rawplain"), AEMP_ENOENT);   /* nothing known of a peer that never authenticated */
        aemp__proto_free(p);
    }
    still_works();
}

/* Peers that break off after the greeting announced TLS. */
static void peer_breaks_off_tls_handshake(void **state)
{
    const char *tails[] = {
        "",                                   /* nothing at all */
        "\x16\x03\x01\x02\x00\x01\x00\x01",   /* the start of a ClientHello record */
        "GET / HTTP/1.0\r\n\r\n",             /* not TLS */
    };
    const size_t lens[] = { 0, 8, 18 };
    for (int i = 0; i < 3; i++) {
        tu_log[0] = 0;
        int fd = raw_connect();
        aemp_proto_cfg_t cfg = { 0 };
        cfg.nodeid = "rawtls";
        cfg.have_cert = 1;   /* announce tls=1.0; no secret */
        aemp_proto_t *p = aemp__proto_new(&cfg);
        assert_int_equal(raw_greet(fd, p, AEMP_PROTO_START_TLS), AEMP_PROTO_START_TLS);
        if (lens[i])
            write_all(fd, tails[i], lens[i]);
        if (i < 2) {
            tu_run_for(0.1);
            close(fd);   /* in the middle of the handshake */
            double end = pu_now() + 5;
            while (!strstr(tu_log, "closed: TLS handshake failed") && pu_now() < end)
                tu_run_for(0.02);
            assert_log("connection 127.0.0.1:");
            assert_log(" from rawtls: TLS handshake failed: Unexpected end-of-file");
        } else {
            assert_true(closed_by_node(fd, 5));
            close(fd);
            assert_log("TLS handshake failed: ");
        }
        assert_int_equal(aemp_node_is_up("rawtls"), AEMP_ENOENT);   /* nothing known of a peer that never authenticated */
        aemp__proto_free(p);
        still_works();
    }
}

/* A TLS client without a certificate (plain OpenSSL on the socket) is
 * refused: a client certificate is required. */
static void client_without_certificate_is_refused(void **state)
{
    tu_log[0] = 0;
    int fd = raw_connect();
    aemp_proto_cfg_t cfg = { 0 };
    cfg.nodeid = "nocert";
    cfg.have_cert = 1;
    cfg.nonce_override = "+";   /* lowest base64 text: we are the TLS client */
    aemp_proto_t *p = aemp__proto_new(&cfg);
    assert_int_equal(raw_greet(fd, p, AEMP_PROTO_START_TLS), AEMP_PROTO_START_TLS);
    assert_int_equal(aemp__proto_tls_client(p), 1);
    assert_int_equal(aemp__buf_used(aemp__proto_in(p)), 0);   /* the server waits for us */

    SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(cc, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(cc);
    SSL_set_fd(ssl, fd);
    SSL_set_connect_state(ssl);
    char why[256] = "";
    double end = pu_now() + 5;
    int hs = 0;
    while (pu_now() < end) {
        char buf[256];
        int r = hs ? SSL_read(ssl, buf, sizeof buf) : SSL_do_handshake(ssl);
        if (r == 1 && !hs) {
            hs = 1;   /* TLS 1.3: the server checks our (missing) certificate after this */
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            unsigned long x = ERR_get_error();
            snprintf(why, sizeof why, "%s", x && ERR_reason_error_string(x) ? ERR_reason_error_string(x) : "?");
            break;
        }
        tu_run_for(0.01);
    }
    ERR_clear_error();
    assert_non_null(strstr(why, "certificate required"));
    end = pu_now() + 5;
    while (!strstr(tu_log, "from nocert: TLS handshake failed") && pu_now() < end)
        tu_run_for(0.02);
    assert_log("from nocert: TLS handshake failed: peer did not return a certificate");
    SSL_free(ssl);
    SSL_CTX_free(cc);
    close(fd);
    aemp__proto_free(p);
    still_works();
}

/* The port tester#rawecho: sends message element 0 to element 1. */
static void rawecho_cb(aemp_msg_t *msg, void *arg)
{
    aemp_snd(aemp_msg_str(msg, 1, NULL), aemp_msgf("v", aemp_msg_at(msg, 0)));
}

/* A complete TLS session from this process with tls.c against our own
 * listener: handshake, tls_sha3_512, a frame each way. */
static void raw_tls_client_roundtrip(void **state)
{
    char err[256];
    aemp_tls_ctx_t *ctx = aemp__tls_ctx_new(cert_a, strlen(cert_a), err, sizeof err);
    assert_non_null(ctx);
    assert_int_equal(aemp_rcv("tester#rawecho", rawecho_cb, NULL), 0);
    int fd = raw_connect();
    aemp_proto_cfg_t cfg = { 0 };
    cfg.nodeid = "rawsession";
    cfg.have_cert = 1;
    cfg.dialects = AEMP_DIALECT_130;   /* JSON frames */
    aemp_proto_t *p = aemp__proto_new(&cfg);
    assert_int_equal(raw_greet(fd, p, AEMP_PROTO_START_TLS), AEMP_PROTO_START_TLS);
    aemp_tls_t *t = aemp__tls_new(ctx, aemp__proto_tls_client(p));
    aemp_buf_t *in = aemp__proto_in(p);
    aemp__tls_feed(t, aemp__buf_head(in), aemp__buf_used(in));
    aemp__buf_consume(in, aemp__buf_used(in));
    aemp_buf_t wire = AEMP_BUF_INIT;
    int ready = 0, authed = 0, got = 0, sent = 0;
    double end = pu_now() + 5;
    while (!got && pu_now() < end) {
        assert_int_equal(aemp__tls_input(t, in), AEMP_TLS_OK);
        if (!ready && aemp__tls_established(t)) {
            ready = 1;
            aemp__proto_tls_ready(p);
        }
        aemp_frame_t frame;
        aemp_proto_event_t ev;
        while ((ev = aemp__proto_next(p, &frame)) != AEMP_PROTO_NEED_MORE) {
            assert_int_not_equal(ev, AEMP_PROTO_ERROR);
            if (ev == AEMP_PROTO_AUTHED)
                authed = 1;
            if (ev == AEMP_PROTO_FRAME) {
                const char *text = aemp_msg_str(frame.msg, 0, NULL);
                if (frame.dest && strcmp(frame.dest, "rawreply") == 0 && text && strcmp(text, "via tls") == 0)
                    got = 1;
                aemp_msg_unref(frame.msg);
            }
        }
        if (authed && !sent) {
            sent = 1;
            aemp_msg_t *m = aemp_msgf("ss", "via tls", "rawsession#rawreply");
            aemp__proto_send(p, "rawecho", 7, m);
            aemp_msg_unref(m);
        }
        assert_int_equal(aemp__tls_output(t, aemp__proto_out(p), 1 << 20, &wire), AEMP_TLS_OK);
        if (aemp__buf_used(&wire)) {
            write_all(fd, aemp__buf_head(&wire), aemp__buf_used(&wire));
            aemp__buf_consume(&wire, aemp__buf_used(&wire));
        }
        tu_run_for(0.01);
        char buf[16384];
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0)
            aemp__tls_feed(t, buf, (size_t)r);
    }
    assert_true(authed);
    assert_true(got);
    assert_int_equal(aemp__proto_recv_auth(p), AEMP_AUTH_TLS_MD6_64_256);
    assert_log("node rawsession up (1.30 dialect, tls_md6_64_256/json)");
    close(fd);
    aemp__buf_free(&wire);
    aemp__tls_free(t);
    aemp__tls_ctx_free(ctx);
    aemp__proto_free(p);
    double e2 = pu_now() + 5;
    while (aemp_node_is_up("rawsession") == 1 && pu_now() < e2)
        tu_run_for(0.02);
    assert_int_equal(aemp_node_is_up("rawsession"), 0);
    still_works();
}

/* A peer that set its cert key-first with `aemp setcert` talks TLS with us. */
static void setcert_node_talks_tls(void **state)
{
    pu_node_t p;
    const char *args[] = { "profile", "keyfirst", "nodeid", "keyfirstpeer", "binds", "127.0.0.1:0", NULL };
    assert_true(start_node(&p, "keyfirstpeer", args));
    echo_ok(p.nodeid, "keyfirst");
    assert_log("node keyfirstpeer up (2.02 dialect, tls_sha3_512/cbor)");
    pu_stop(&p, SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(certificates_and_loader),
        cmocka_unit_test(tls_between_c_nodes),
        cmocka_unit_test(tls_anon_inside_tls),
        cmocka_unit_test(certificate_mismatch),
        cmocka_unit_test(tls_node_against_plain_nodes),
        cmocka_unit_test(tls_methods_need_tls),
        cmocka_unit_test(peer_breaks_off_tls_handshake),
        cmocka_unit_test(client_without_certificate_is_refused),
        cmocka_unit_test(raw_tls_client_roundtrip),
        cmocka_unit_test(setcert_node_talks_tls),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
