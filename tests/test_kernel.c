/* Node-port requests from a hostile (but authenticated) peer, against real
 * `aemp run` processes: this test process is that peer.
 *
 *   - every request is checked against the shape in the kernel's request
 *     table; a malformed one is logged once at WARN, naming the sender, the
 *     request and what was wrong, and ignored
 *   - a secure node loads no module for another node: `can` answers from
 *     what is registered only, named functions and spawn are refused (the
 *     module tests/modules/evil.c leaves a marker file when it is loaded)
 *   - a sweep of every request name with wrong argument types and counts
 *     leaves the target's RSS where it was, and the target keeps answering
 */
#include "testutil.h"

#include "procutil.h"

#include <stdint.h>
#include <sys/stat.h>

#define SECRET "kernel-test-secret"

/* The sweep: SWEEP requests after WARMUP ones, RSS allowed to grow by
 * RSS_BOUND_KB meanwhile. */
#define WARMUP 6000
#define SWEEP 50000
#define RSS_BOUND_KB (8 * 1024)

enum { OPEN, SECURE, NPEERS };
static pu_node_t peers[NPEERS];
static const char *const peer_ids[NPEERS] = { "kopen", "ksecure" };
static char tmpdir[64];
static char rcenv[128];
static char modenv[512];
static char markerenv[NPEERS][200];
static char marker[NPEERS][160];
static char logpath[NPEERS][160];
/* Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
 * default) before it is reused, which RSS would show as growth: the peers
 * run without one.  NULL (the end of the environment) otherwise. */
#if defined __SANITIZE_ADDRESS__
static char asanenv[512];
#else
static char *asanenv;
#endif

static int start_peer(int i, int secure)
{
    snprintf(marker[i], sizeof marker[i], "%s/%s.evil", tmpdir, peer_ids[i]);
    snprintf(markerenv[i], sizeof markerenv[i], "AEMP_EVIL_MARKER=%s", marker[i]);
    snprintf(logpath[i], sizeof logpath[i], "%s/%s.log", tmpdir, peer_ids[i]);
    const char *env[] = { rcenv, modenv, markerenv[i], "AEMP_WARNLEVEL=2", asanenv, NULL };
    const char *args[] = { "nodeid", peer_ids[i], "binds", "127.0.0.1:0", "secret", SECRET,
                           "secure", secure ? "1" : "0", NULL };
    if (!pu_spawn(&peers[i], env, args, logpath[i], 0) || !pu_await(&peers[i]))
        return 0;
    aemp_msg_t *a = aemp_msgf("s", peers[i].addr);
    aemp_add_node(peers[i].nodeid, a);
    aemp_msg_unref(a);
    return 1;
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-kernel-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    snprintf(modenv, sizeof modenv, "AEMP_MODULE_PATH=%s", AEMP_TEST_MODULE_DIR);
#if defined __SANITIZE_ADDRESS__
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(asanenv, sizeof asanenv, "ASAN_OPTIONS=%s%squarantine_size_mb=0", asan ? asan : "",
             asan && *asan ? ":" : "");
#endif
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:i}", "nodeid", "sweeper", "secret", SECRET,
                        "binds", "127.0.0.1:0", "connect_interval", 3) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    if (!start_peer(OPEN, 0) || !start_peer(SECURE, 1))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    /* each peer exits cleanly on SIGTERM (under the sanitizers: with no
     * leak report) */
    int failed = 0;
    for (int i = 0; i < NPEERS; i++) {
        int status = pu_stop(&peers[i], SIGTERM);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "peer %s ended with status 0x%x; see %s\n", peer_ids[i], status, logpath[i]);
            failed = 1;
        }
    }
    if (failed)
        return -1;   /* the logs stay for a look */
    aemp_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ helpers */

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* VmRSS of a process in KiB (-1 if unreadable). */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* How often needle occurs in the log of peer i (its first MiB). */
static int logged(int i, const char *needle)
{
    return pu_count_in_file(logpath[i], needle);
}

/* Fail unless the log of peer i shows needle (waiting up to 5 s for it). */
static void assert_logged(int i, const char *needle)
{
    double end = pu_now() + 5;
    while (!logged(i, needle) && pu_now() < end)
        tu_run_for(0.02);
    if (!logged(i, needle)) {
        char *log = pu_read_file(logpath[i]);
        fail_msg("no '%s' in the log of %s:\n%s", needle, peer_ids[i], log);
    }
}

/* A node-port request to peer i and its answer (NULL if none came in
 * `timeout` seconds): aemp_cal appends our reply port to msg. */
static aemp_msg_t *ask(int i, aemp_msg_t *msg, double timeout)
{
    tu_box_t b = { NULL, 0 };
    assert_non_null(aemp_cal(peers[i].nodeid, msg, tu_cal_done, &b, timeout));
    tu_run_until(&b.count, timeout + 1);
    return b.last;
}

/* The peer answers a time request (it is alive and reading). */
static void assert_answers(int i)
{
    aemp_msg_t *r = ask(i, aemp_msgf("s", "time"), 10);
    assert_non_null(r);
    assert_int_equal(aemp_val_type(aemp_msg_at(r, 0)), AEMP_T_DOUBLE);
    aemp_msg_unref(r);
}


static int relayed(const char *node);

/* Fail unless peer i knows no node but the ones of this test (and those
 * that the relays of the sweep named). */
static void assert_knows_only_us(int i)
{
    aemp_msg_t *r = ask(i, aemp_msgf("s", "known_nodes"), 5);
    assert_non_null(r);
    for (size_t k = 0; k < aemp_msg_len(r); k++) {
        const char *n = aemp_msg_str(r, k, NULL);
        assert_non_null(n);
        if (strcmp(n, "sweeper") && strcmp(n, peer_ids[OPEN]) && strcmp(n, peer_ids[SECURE]) && !relayed(n)) {
            char *all = aemp_val_text(aemp_msg_root(r));
            fail_msg("%s knows the made-up node '%s': %s", peer_ids[i], n, all);
        }
    }
    aemp_msg_unref(r);
}


/* A secure node loads nothing for another node: `can` answers "" for a
 * function of a module that is not loaded, calling it by name or spawning
 * it is refused and logged, eval gets no answer; the node protocol itself
 * keeps working ("can" knows the built-in and the g_* requests). */
static void secure_node_loads_nothing(void **state)
{
    aemp_msg_t *r = ask(SECURE, aemp_msgf("ss", "can", "Evil::f"), 5);
    tu_assert_msg(r, "[\"\"]");
    aemp_msg_unref(r);

    tu_box_t box = { NULL, 0 };
    const char *me = aemp_port(tu_box_put, &box);
    assert_int_equal(aemp_snd_to_func(peers[SECURE].nodeid, "Evil::f", aemp_msgf("s", me)), 0);
    assert_logged(SECURE, "refused request from sweeper to run 'Evil::f': remote execution not allowed (secure mode)");

    tu_box_t mon = { NULL, 0 };
    char *id = aemp_spawn(peers[SECURE].nodeid, "Evil::f", NULL);
    assert_non_null(id);
    assert_int_equal(aemp_mon(id, tu_box_put, &mon, NULL), 0);
    assert_true(tu_run_until(&mon.count, 5));
    assert_string_equal(aemp_msg_str(mon.last, 0, NULL), "no_such_port");
    tu_box_clear(&mon);
    free(id);
    assert_int_equal(logged(SECURE, "refused request from sweeper to run 'Evil::f'"), 2);

    assert_null(ask(SECURE, aemp_msgf("ss", "eval", "1+1"), 0.5));
    assert_logged(SECURE, "refused eval request from sweeper: remote execution not allowed (secure mode)");

    const char *proto[] = { "mon1", "kil1", "time", "g_slave", "g_find", NULL };
    for (int k = 0; proto[k]; k++) {
        r = ask(SECURE, aemp_msgf("ss", "can", proto[k]), 5);
        tu_assert_msg(r, "[\"1\"]");
        aemp_msg_unref(r);
    }
    assert_answers(SECURE);
    assert_false(exists(marker[SECURE]));
    assert_int_equal(box.count, 0);
    aemp_kil(me, NULL);
}

/* `can` never loads a module, secure or not (it answers from the request
 * table and the registry); calling the function does, on a node that is
 * not secure, and then `can` knows it - which shows that the marker file
 * would betray a load. */
static void can_answers_from_what_is_loaded(void **state)
{
    aemp_msg_t *r = ask(OPEN, aemp_msgf("ss", "can", "Evil::f"), 5);
    tu_assert_msg(r, "[\"\"]");
    aemp_msg_unref(r);
    assert_false(exists(marker[OPEN]));

    tu_box_t box = { NULL, 0 };
    const char *me = aemp_port(tu_box_put, &box);
    assert_int_equal(aemp_snd_to_func(peers[OPEN].nodeid, "Evil::f", aemp_msgf("s", me)), 0);
    assert_true(tu_run_until(&box.count, 5));
    tu_assert_msg(box.last, "[\"evil ran\"]");
    tu_box_clear(&box);
    aemp_kil(me, NULL);
    assert_true(exists(marker[OPEN]));

    r = ask(OPEN, aemp_msgf("ss", "can", "Evil::f"), 5);
    tu_assert_msg(r, "[\"1\"]");
    aemp_msg_unref(r);
    /* a name with a NUL byte is no name that exists */
    r = ask(OPEN, aemp_msgf("s#", "Evil::f\0x", (size_t)9), 5);
    assert_null(r);
    r = ask(OPEN, aemp_msgf("ss#", "can", "mon1\0x", (size_t)6), 5);
    tu_assert_msg(r, "[\"\"]");
    aemp_msg_unref(r);
}

/* Malformed requests are ignored with one WARN line each that names the
 * sender, the request and what is wrong; well-formed ones still work. */
static void malformed_requests_are_logged(void **state)
{
    static const struct {
        const char *fmt;
        const char *line;
    } cases[] = {
        { "si", "kil: element 1 (port name) must be a string, got an integer" },
        { "s", "mon1: element 1 (port name) is missing" },
        { "ss", "kil0: element 1 (port name) 'a#b' contains '#'" },
        { "ss", "time: element 1 (reply port) 'made#x' names a node this node does not know" },
        { "si", "g_global: takes no arguments, got 1" },
        { "sss", "mon0: takes 1 argument, got 2" },
        { "s[i]", "snd_multiple: element 1 (relay) must be an array starting with a port ID, got an array" },
        { "ss{}", "g_found: element 2 (addresses) must be an array or null, got a map" },
        { "s[]", "g_slave: element 1 (database) must be a map, got an array" },
        { "sn", "AnyEvent::MP::_spawn: element 1 (new port name) must be a string, got null" },
        { "ssi", "AnyEvent::MP::_spawn: element 2 (init function) must be a string, got an integer" },
    };
    const char *tags[] = { "kil", "mon1", "kil0", "time", "g_global", "mon0", "snd_multiple", "g_found",
                           "g_slave", "AnyEvent::MP::_spawn", "AnyEvent::MP::_spawn" };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        aemp_msg_t *m;
        if (k == 0 || k == 4)
            m = aemp_msgf(cases[k].fmt, tags[k], 42);
        else if (k == 1 || k == 6 || k == 8 || k == 9)
            m = aemp_msgf(cases[k].fmt, tags[k], 5);
        else if (k == 2)
            m = aemp_msgf(cases[k].fmt, tags[k], "a#b");
        else if (k == 3)
            m = aemp_msgf(cases[k].fmt, tags[k], "made#x");
        else if (k == 5)
            m = aemp_msgf(cases[k].fmt, tags[k], "p", "q");
        else if (k == 7)
            m = aemp_msgf(cases[k].fmt, tags[k], "n");
        else
            m = aemp_msgf(cases[k].fmt, tags[k], "p", 7);
        assert_non_null(m);
        assert_int_equal(aemp_snd(peers[OPEN].nodeid, m), 0);
        char line[256];
        snprintf(line, sizeof line, "malformed node-port request from sweeper ignored: %s", cases[k].line);
        assert_logged(OPEN, line);
        assert_int_equal(logged(OPEN, line), 1);
    }
    assert_int_equal(aemp_snd(peers[OPEN].nodeid, aemp_msgf("is", 17, "x")), 0);
    assert_logged(OPEN, "malformed node-port request from sweeper ignored: (no name): element 0 (request name) "
                        "must be a string, got an integer");
    assert_int_equal(aemp_snd(peers[OPEN].nodeid, aemp_msgf("s#", "Nope::f\0\n", (size_t)9)), 0);
    assert_logged(OPEN, "malformed node-port request from sweeper ignored: Nope::f\\u0000\\n: the request name "
                        "contains a NUL byte");
    /* a function name longer than any module name is not looked for along
     * its package chain in quadratic time, and the log line is short */
    size_t n = 1 << 16;
    char *longname = malloc(n + 1);
    assert_non_null(longname);
    for (size_t i = 0; i < n; i += 3)
        memcpy(longname + i, "Z::", n - i < 3 ? n - i : 3);
    longname[n - 1] = 'f';
    longname[n] = 0;
    double t0 = pu_now();
    assert_int_equal(aemp_snd_to_func(peers[OPEN].nodeid, longname, NULL), 0);
    free(longname);
    assert_answers(OPEN);
    assert_true(pu_now() - t0 < 2);
    assert_logged(OPEN, "unable to resolve function 'Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::Z::...'");

    /* well-formed requests still work */
    aemp_msg_t *r = ask(OPEN, aemp_msgf("s", "info"), 5);
    tu_assert_msg(r, "[\"kopen\"]");
    aemp_msg_unref(r);
    assert_knows_only_us(OPEN);
}

/* Requests that name nodes create no node-table entry for them: a reply
 * to a made-up node is refused, a g_found nobody asked for is dropped, and
 * the 1.30 Global port starts only when its peer spawns it.  (Relays,
 * snd and snd_multiple, go to any node: reaching nodes the relaying node
 * does not know yet is what they are for; the node layer bounds what
 * waits for such nodes.) */
static void made_up_nodes_are_not_created(void **state)
{
    assert_int_equal(aemp_snd(peers[OPEN].nodeid, aemp_msgf("ss", "info", "made1#p")), 0);
    assert_int_equal(aemp_snd(peers[OPEN].nodeid, aemp_msgf("ss", "known_nodes", "made2")), 0);
    assert_int_equal(aemp_snd(peers[OPEN].nodeid, aemp_msgf("sss", "can", "mon1", "made3#p")), 0);
    assert_int_equal(aemp_snd(peers[OPEN].nodeid, aemp_msgf("ss[s]", "g_found", "made4", "127.0.0.1:9")), 0);
    assert_int_equal(aemp_snd(peers[OPEN].nodeid, aemp_msgf("sis", "AnyEvent::MP::Global::connect", 0, "made5")), 0);
    assert_logged(OPEN, "AnyEvent::MP::Global::connect from sweeper ignored: it must be spawned");

    tu_box_t mon = { NULL, 0 };
    char *id = aemp_spawn(peers[OPEN].nodeid, "AnyEvent::MP::Global::connect", aemp_msgf("is", 0, "made6"));
    assert_non_null(id);
    assert_int_equal(aemp_mon(id, tu_box_put, &mon, NULL), 0);
    assert_true(tu_run_until(&mon.count, 5));
    /* the init died before it made the port exist (as in AnyEvent::MP) */
    assert_string_equal(aemp_msg_str(mon.last, 0, NULL), "no_such_port");
    tu_box_clear(&mon);
    free(id);
    assert_logged(OPEN, "AnyEvent::MP::Global::connect from sweeper ignored: it names another node (made6)");
    assert_logged(OPEN, "init function 'AnyEvent::MP::Global::connect' died before the port existed");
    assert_answers(OPEN);
    assert_knows_only_us(OPEN);
}

/* ------------------------------------------------------------- sweep */

/* Every request name the node port knows, some it does not, and tags
 * that are no names at all (NULL: element 0 is not a string). */
static const char *const sweep_names[] = {
    "", "devnull", "mon1", "mon0", "kil0", "kil", "kil1", "snd", "snd_multiple", "info",
    "known_nodes", "up_nodes", "can", "time", "eval", "AnyEvent::MP::_spawn",
    "AnyEvent::MP::Global::connect", "g_slave", "g_global", "g_set", "g_upd", "g_find", "g_found",
    "g_db_family", "g_db_keys", "g_db_values", "g_reply", "g_mon1", "g_mon0", "g_chg1", "g_chg2",
    "no_such_request", "Nope::Such::func", "Z::", "::", NULL,
};
#define NNAMES (sizeof sweep_names / sizeof sweep_names[0])
#define NVARIANTS 16

/* A string of n bytes, different for each k. */
static void build_long(aemp_build_t *b, size_t n, unsigned k)
{
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'L', n);
    snprintf(s, 24, "long%u#", k);
    s[strlen(s)] = 'L';
    aemp_build_strn(b, s, n);
    free(s);
}

/* Request number k of the sweep: name k % NNAMES with argument variant
 * k / NNAMES % NVARIANTS, made-up strings numbered k so that nothing
 * repeats. */
static aemp_msg_t *sweep_request(unsigned k)
{
    const char *name = sweep_names[k % NNAMES];
    unsigned v = k / NNAMES % NVARIANTS;
    char s[64];
    aemp_build_t *b = aemp_build_new();
    if (name)
        aemp_build_str(b, name);
    else if (v & 1)
        aemp_build_int(b, (int64_t)k);
    else
        aemp_build_fmt(b, "[s]", "kil");
    switch (v) {
    case 0:   /* no arguments */
        break;
    case 1:   /* integers where strings belong */
        aemp_build_fmt(b, "ii", 42, -1);
        break;
    case 2:   /* nested arrays */
        for (int d = 0; d < 40; d++)
            aemp_build_array(b);
        aemp_build_int(b, (int64_t)k);
        for (int d = 0; d < 40; d++)
            aemp_build_close(b);
        break;
    case 3:   /* maps */
        snprintf(s, sizeof s, "fam%u", k);
        aemp_build_fmt(b, "{s:{s:[ii]}}{s:n}", s, "key", 1, 2, "x", "y");
        break;
    case 4:   /* NUL bytes */
        snprintf(s, sizeof s, "a%u", k);
        aemp_build_strn(b, s, strlen(s) + 1);
        aemp_build_strn(b, "c\0d#e\0", 6);
        break;
    case 5:   /* very long strings */
        build_long(b, 8192, k);
        build_long(b, 4096, k + 1);
        break;
    case 6:   /* huge counts */
        for (int i = 0; i < 1000; i++)
            aemp_build_int(b, i);
        break;
    case 7:
        aemp_build_fmt(b, "nbf", 1, 1.5);
        break;
    case 8:   /* invalid UTF-8 bytes */
        snprintf(s, sizeof s, "\xff\xfe%u", k);
        aemp_build_bytes(b, s, strlen(s));
        aemp_build_bytes(b, "\xc3", 1);
        break;
    case 9:   /* a made-up name, then wrong types */
        snprintf(s, sizeof s, "made%u", k);
        aemp_build_fmt(b, "si{}", s, 42);
        break;
    case 10:
        aemp_build_fmt(b, "uI", (uint64_t)UINT64_MAX, (int64_t)INT64_MIN);
        break;
    case 11:   /* made-up names and IDs */
        snprintf(s, sizeof s, "up%u", k);
        aemp_build_fmt(b, "s", s);
        snprintf(s, sizeof s, "#bad#%u", k);
        aemp_build_fmt(b, "s[i]", s, 1);
        break;
    case 12:   /* arrays of made-up relays */
        snprintf(s, sizeof s, "x%u", k);
        aemp_build_fmt(b, "[si][n]i", s, 1, 5);
        break;
    case 13:   /* empty strings */
        aemp_build_fmt(b, "sss", "", "", "");
        break;
    case 14:   /* a port name, then a map where an array belongs */
        snprintf(s, sizeof s, "p%u", k);
        aemp_build_fmt(b, "s{s:i}{}", s, "a", 1);
        break;
    default:   /* a lot of elements, each an array */
        for (int i = 0; i < 300; i++)
            aemp_build_fmt(b, "[i]", i);
        break;
    }
    aemp_msg_t *m = aemp_build_msg(b);
    assert_non_null(m);
    return m;
}

/* 1 if node is a made-up node that a relay of the sweep named: its ID
 * ends in the number k of a snd or snd_multiple request. */
static int relayed(const char *node)
{
    size_t n = strlen(node);
    while (n && node[n - 1] >= '0' && node[n - 1] <= '9')
        n--;
    if (!node[n])
        return 0;
    const char *name = sweep_names[strtoul(node + n, NULL, 10) % NNAMES];
    return name && (!strcmp(name, "snd") || !strcmp(name, "snd_multiple"));
}

/* Send requests [from, to) to peer i, checking every 500 that it answers
 * (which also keeps the queues short). */
static void sweep(int i, unsigned from, unsigned to)
{
    for (unsigned k = from; k < to; k++) {
        assert_int_equal(aemp_snd(peers[i].nodeid, sweep_request(k)), 0);
        if (k % 500 == 499)
            assert_answers(i);
    }
    assert_answers(i);
}

static void sweep_leaves_rss_flat(void **state)
{
    assert_answers(OPEN);
    sweep(OPEN, 0, WARMUP);
    tu_run_for(0.5);
    long before = rss_kb(peers[OPEN].pid);
    assert_true(before > 0);
    sweep(OPEN, WARMUP, WARMUP + SWEEP);
    tu_run_for(0.5);
    long after = rss_kb(peers[OPEN].pid);
    printf("RESULT kernel_sweep_rss_growth %ld KiB (%d malformed requests, RSS %ld -> %ld KiB)\n",
           after - before, SWEEP, before, after);
    assert_true(after - before < RSS_BOUND_KB);
    /* still a working node: an echo port answers */
    char port[160];
    snprintf(port, sizeof port, "%s#echo", peers[OPEN].nodeid);
    aemp_msg_t *r = tu_call(port, aemp_msgf("s", "still here"), 5);
    tu_assert_msg(r, "[\"still here\"]");
    aemp_msg_unref(r);
    assert_knows_only_us(OPEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secure_node_loads_nothing),
        cmocka_unit_test(can_answers_from_what_is_loaded),
        cmocka_unit_test(malformed_requests_are_logged),
        cmocka_unit_test(made_up_nodes_are_not_created),
        cmocka_unit_test(sweep_leaves_rss_flat),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
