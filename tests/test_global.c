/* Convergence tests of the 2.02 network model with real processes: two
 * seeds (global nodes) and six ordinary `aemp run` nodes, plus this test
 * process as a ninth node.  Every node finds every other through its
 * master, every registration reaches everyone, and after a seed and an
 * ordinary node are killed and restarted the database converges again with
 * nothing stale.  Values keep their types across nodes (byte strings and
 * uint64 values included). */
#include "testutil.h"

#include "procutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SECRET "global-test-secret"
#define NWORK 6
#define GROUP "workers"

static pu_node_t seed[2], work[NWORK];
static int seedport[2];
static char seeds_arg[128];
static char tmpdir[64], rcenv[128];
static char *member[NWORK];   /* the registered echo port of each worker */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(fd, (struct sockaddr *)&sin, sizeof sin);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

static int start_node(pu_node_t *n, const char *nodeid, const char *binds)
{
    const char *env[] = { rcenv, "AEMP_WARNLEVEL=1", NULL };
    const char *args[] = { "nodeid", nodeid, "binds", binds, "seeds", seeds_arg, "secret", SECRET,
                           "connect_interval", "2", "monitor_timeout", "4", NULL };
    return pu_start(n, env, args);
}

static int start_seed(int i)
{
    char id[32], binds[64];
    snprintf(id, sizeof id, "seed%d", i + 1);
    snprintf(binds, sizeof binds, "127.0.0.1:%d", seedport[i]);
    return start_node(&seed[i], id, binds);
}

static int start_worker(int i)
{
    char id[32];
    snprintf(id, sizeof id, "worker%d", i + 1);
    return start_node(&work[i], id, "127.0.0.1:0");
}

/* ------------------------------------------------------------ the mirror */

static aemp_msg_t *view;  /* latest contents of the family seen by db_mon (root: a map) */
static int mon_calls;
static void on_group(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted,
                     void *arg)
{
    aemp_msg_unref(view);
    view = aemp_msg_ref(family);   /* messages are immutable: no copy needed */
    mon_calls++;
}

/* The value of key in the view, or NULL. */
static const aemp_val_t *view_get(const char *key)
{
    return view ? aemp_val_get(aemp_msg_root(view), key) : NULL;
}

static void view_clear(void)
{
    aemp_msg_unref(view);
    view = NULL;
}

/* Wait until the group holds exactly the wanted members (bounded). */
static int converged;
static int group_is(char **want, int n)
{
    if (!view || aemp_val_len(aemp_msg_root(view)) != (size_t)n)
        return 0;
    for (int i = 0; i < n; i++)
        if (!view_get(want[i]))
            return 0;
    return 1;
}

static int wait_group(char **want, int n, double seconds)
{
    double end = pu_now() + seconds;
    while (pu_now() < end) {
        if (group_is(want, n))
            return 1;
        tu_run_for(0.05);
    }
    char *s = view ? aemp_val_text(aemp_msg_root(view)) : strdup("null");
    fprintf(stderr, "group not converged: %s\n", s);
    free(s);
    return 0;
}

static void register_worker(int i)
{
    free(member[i]);
    member[i] = aemp_spawn(work[i].nodeid, "aemp::grp_echo", aemp_msgf("s", GROUP));
    assert_non_null(member[i]);
}

static aemp_msg_t *query_result;
static int queried;
static void on_query(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(query_result);
    query_result = aemp_msg_ref(r);
    queried = 1;
}

/* Run a query and wait for its answer (bounded); the root of query_result. */
static const aemp_val_t *ask(int (*q)(const char *, aemp_db_query_fn, void *), const char *family)
{
    queried = 0;
    assert_int_equal(q(family, on_query, NULL), 0);
    assert_true(tu_run_until(&queried, 10));
    return aemp_msg_root(query_result);
}

/* ------------------------------------------------------------- set-up */

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-global-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    seedport[0] = free_port();
    seedport[1] = free_port();
    snprintf(seeds_arg, sizeof seeds_arg, "127.0.0.1:%d,127.0.0.1:%d", seedport[0], seedport[1]);
    for (int i = 0; i < 2; i++)
        if (!start_seed(i))
            return -1;
    for (int i = 0; i < NWORK; i++)
        if (!start_worker(i))
            return -1;
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:i, s:i}", "nodeid", "tester/%u",
                        "secret", SECRET, "binds", "127.0.0.1:0", "seeds", seeds_arg,
                        "connect_interval", 2, "monitor_timeout", 4) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    /* a query is answered once this node has a master */
    queried = 0;
    aemp_db_keys("'g", on_query, NULL);
    if (!tu_run_until(&queried, 20))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    for (int i = 0; i < NWORK; i++) {
        pu_stop(&work[i], SIGTERM);
        free(member[i]);
    }
    for (int i = 0; i < 2; i++)
        pu_stop(&seed[i], SIGTERM);
    view_clear();
    aemp_msg_unref(query_result);
    aemp_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* -------------------------------------------------------------- tests */

static void every_registration_reaches_everyone(void **state)
{
    aemp_handle_t h;
    assert_int_equal(aemp_db_mon(GROUP, on_group, NULL, &h), 0);
    for (int i = 0; i < NWORK; i++)
        register_worker(i);
    assert_true(wait_group(member, NWORK, 20));
    /* queries answered by the master agree */
    (void)converged;
}

static void queries_agree(void **state)
{
    const aemp_val_t *keys = ask(aemp_db_keys, GROUP);
    assert_int_equal(aemp_val_type(keys), AEMP_T_ARRAY);
    assert_int_equal(aemp_val_len(keys), NWORK);
    const aemp_val_t *g = ask(aemp_db_family, "'g");
    assert_int_equal(aemp_val_type(g), AEMP_T_MAP);
    assert_non_null(aemp_val_get(g, "seed1"));
    assert_non_null(aemp_val_get(g, "seed2"));
    assert_int_equal(aemp_val_len(g), 2);
    tu_assert_val(ask(aemp_db_values, "no_such_family"), "[]");
    tu_assert_val(ask(aemp_db_family, "no_such_family"), "{}");
    aemp_msg_unref(query_result);
    query_result = NULL;
}

static aemp_msg_t *inbox[NWORK];
static int ngot;
static void on_echo(aemp_msg_t *m, void *arg)
{
    int64_t i;
    if (aemp_msg_int(m, 1, &i) == 0 && i >= 0 && i < NWORK && !inbox[i]) {
        inbox[i] = aemp_msg_ref(m);
        ngot++;
    }
}

/* A ring: worker i relays to the member port on worker i+1, which echoes
 * to this node: every worker finds another worker and this node through
 * its master. */
static void every_node_finds_every_other(void **state)
{
    const char *me = aemp_port(on_echo, NULL);
    ngot = 0;
    for (int i = 0; i < NWORK; i++) {
        const char *next = member[(i + 1) % NWORK];
        aemp_snd_on(work[i].nodeid, next, aemp_msgf("sis", "ring", i, me));
    }
    double end = pu_now() + 20;
    while (ngot < NWORK && pu_now() < end)
        tu_run_for(0.05);
    assert_int_equal(ngot, NWORK);
    for (int i = 0; i < NWORK; i++) {
        aemp_msg_unref(inbox[i]);
        inbox[i] = NULL;
    }
    aemp_kil(me, NULL);
}

static void values_and_deletes_propagate(void **state)
{
    /* a worker sets and deletes an entry of its own */
    aemp_handle_t h;
    view_clear();
    assert_int_equal(aemp_db_mon("config", on_group, NULL, &h), 0);
    aemp_snd_to_func(work[2].nodeid, "aemp::db_set", aemp_msgf("ssi", "config", "limit", 42));
    double end = pu_now() + 10;
    while (!view_get("limit") && pu_now() < end)
        tu_run_for(0.05);
    tu_assert_val(view_get("limit"), "42");
    aemp_snd_to_func(work[2].nodeid, "aemp::db_del", aemp_msgf("ss", "config", "limit"));
    end = pu_now() + 10;
    while (view_get("limit") && pu_now() < end)
        tu_run_for(0.05);
    assert_null(view_get("limit"));
    assert_int_equal(aemp_db_mon_cancel(h), 0);
    /* our own entries too */
    assert_int_equal(aemp_db_set("config", "mine", aemp_valf("s", "x")), 0);
    assert_int_equal(aemp_db_del("config", "mine"), 0);
    assert_int_equal(aemp_db_del("config", "mine"), AEMP_ENOENT);
    assert_int_equal(aemp_db_setf("config", "mine", "{s:[i,b]}", "x", 1, 1), 0);
    assert_int_equal(aemp_db_del("config", "mine"), 0);
    assert_int_equal(aemp_db_set("", "mine", aemp_valf("i", 1)), AEMP_EINVAL);
    assert_int_equal(aemp_db_setf("config", "mine", "[i", 1), AEMP_EINVAL);
    view_clear();
}

/* What a changes-only monitor (aemp_db_mon_changes) has seen. */
static int changes_calls, changes_family_seen;
static char changes_log[512];
static void on_changes(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted,
                       void *arg)
{
    changes_calls++;
    changes_family_seen |= family != NULL;
    aemp_msg_t *lists[3] = { added, changed, deleted };
    const char *sign = "+~-";
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < aemp_msg_len(lists[l]); i++) {
            size_t n = strlen(changes_log);
            snprintf(changes_log + n, sizeof changes_log - n, "%c%s ", sign[l], aemp_msg_str(lists[l], i, NULL));
        }
}

/* Wait (bounded) until the changes log holds `what`. */
static int wait_changes(const char *what)
{
    double end = pu_now() + 10;
    while (!strstr(changes_log, what) && pu_now() < end)
        tu_run_for(0.05);
    return strstr(changes_log, what) != NULL;
}

/* A changes-only monitor gets no family map (so a report costs O(changes)),
 * but every key as added first and then each add, change and delete; a
 * full monitor of the same family still gets the map. */
static void changes_only_monitor(void **state)
{
    aemp_snd_to_func(work[1].nodeid, "aemp::db_set", aemp_msgf("ssi", "cfg2", "pre", 1));
    aemp_handle_t hf, hc;
    view_clear();
    assert_int_equal(aemp_db_mon("cfg2", on_group, NULL, &hf), 0);
    double end = pu_now() + 10;
    while (!view_get("pre") && pu_now() < end)
        tu_run_for(0.05);
    assert_non_null(view_get("pre"));
    changes_log[0] = 0;
    changes_calls = changes_family_seen = 0;
    assert_int_equal(aemp_db_mon_changes("cfg2", on_changes, NULL, &hc), 0);
    assert_true(wait_changes("+pre "));
    aemp_snd_to_func(work[1].nodeid, "aemp::db_set", aemp_msgf("ssi", "cfg2", "a", 1));
    assert_true(wait_changes("+a "));
    aemp_snd_to_func(work[1].nodeid, "aemp::db_set", aemp_msgf("ssi", "cfg2", "a", 2));
    assert_true(wait_changes("~a "));
    aemp_snd_to_func(work[1].nodeid, "aemp::db_del", aemp_msgf("ss", "cfg2", "a"));
    assert_true(wait_changes("-a "));
    assert_string_equal(changes_log, "+pre +a ~a -a ");
    assert_int_equal(changes_family_seen, 0);
    assert_true(changes_calls >= 4);
    /* the full monitor saw the same changes with the map */
    assert_non_null(view_get("pre"));
    assert_null(view_get("a"));
    assert_int_equal(aemp_db_mon_cancel(hc), 0);
    assert_int_equal(aemp_db_mon_cancel(hf), 0);
    assert_int_equal(aemp_db_mon_changes(NULL, on_changes, NULL, &hc), AEMP_EINVAL);
    aemp_snd_to_func(work[1].nodeid, "aemp::db_del", aemp_msgf("ss", "cfg2", "pre"));
    view_clear();
}

/* The sum of a figure of aemp_stats over both seeds (asked with "stats"). */
static uint64_t stat_sum;
static int stat_answers;
static void on_stats(aemp_msg_t *reply, void *name)
{
    uint64_t u = 0;
    if (reply && aemp_val_uint(aemp_val_get(aemp_msg_at(reply, 0), name), &u) == 0)
        stat_sum += u;
    stat_answers++;
}

static uint64_t seeds_stat(const char *name)
{
    stat_sum = 0;
    stat_answers = 0;
    for (int i = 0; i < 2; i++)
        aemp_cal(seed[i].nodeid, aemp_msgf("s", "stats"), on_stats, (void *)name, 5);
    double end = pu_now() + 10;
    while (stat_answers < 2 && pu_now() < end)
        tu_run_for(0.02);
    assert_int_equal(stat_answers, 2);
    return stat_sum;
}

/* Wait (bounded) until the seeds' figure `name` is `want`. */
static int wait_seeds_stat(const char *name, uint64_t want)
{
    double end = pu_now() + 10;
    while (seeds_stat(name) != want && pu_now() < end)
        tu_run_for(0.05);
    return stat_sum == want;
}

/* The master learns from g_mon_cost which of its subscriptions copy the
 * whole family at every report (it spaces their fan-out by the family's
 * size, the others' by what changed): a changes-only monitor subscribes
 * cheaply, adding a full monitor of the same family makes it full, and
 * cancelling that one makes it cheap again. */
static void master_learns_report_cost(void **state)
{
    uint64_t subs = seeds_stat("db_subscriptions"), full = seeds_stat("db_subscriptions_full");
    aemp_handle_t hc, hf;
    assert_int_equal(aemp_db_mon_changes("costs", on_changes, NULL, &hc), 0);
    assert_true(wait_seeds_stat("db_subscriptions", subs + 1));
    assert_int_equal(seeds_stat("db_subscriptions_full"), full);
    assert_int_equal(aemp_db_mon("costs", on_group, NULL, &hf), 0);
    assert_true(wait_seeds_stat("db_subscriptions_full", full + 1));
    assert_int_equal(aemp_db_mon_cancel(hf), 0);
    assert_true(wait_seeds_stat("db_subscriptions_full", full));
    assert_int_equal(seeds_stat("db_subscriptions"), subs + 1);
    assert_int_equal(aemp_db_mon_cancel(hc), 0);
    assert_true(wait_seeds_stat("db_subscriptions", subs));
    view_clear();
}

/* Both seeds are libaemp global nodes that see each other up: each
 * counts two nodes sharing the fan-out budget, so each spaces its g_chg2
 * of a family by twice what its own subscribers cost (and the network's
 * watchers get as many as from one global node feeding them all). */
static void fanout_budget_is_shared_by_the_seeds(void **state)
{
    assert_true(wait_seeds_stat("db_fanout_share", 4));
}

/* Wait (bounded) until the view holds every key of keys[0..n). */
static int wait_keys(const char *const *keys, int n, double seconds)
{
    double end = pu_now() + seconds;
    for (;;) {
        int have = 0;
        for (int i = 0; i < n; i++)
            have += view_get(keys[i]) != NULL;
        if (have == n)
            return 1;
        if (pu_now() >= end)
            return 0;
        tu_run_for(0.05);
    }
}

static void assert_bytes(const aemp_val_t *v, const void *want, size_t len)
{
    assert_non_null(v);
    assert_int_equal(aemp_val_type(v), AEMP_T_BYTES);
    size_t got;
    const char *s = aemp_val_str(v, &got);
    assert_int_equal(got, len);
    assert_memory_equal(s, want, len);
}

static void assert_uint(const aemp_val_t *v, uint64_t want)
{
    assert_non_null(v);
    assert_int_equal(aemp_val_type(v), AEMP_T_UINT);
    uint64_t got;
    assert_int_equal(aemp_val_uint(v, &got), 0);
    assert_true(got == want);
}

/* A peer figure (stats "peers") of the connection between a seed and
 * this node, summed over both seeds (the master's carries the fan-out). */
static uint64_t peer_sum;
static int peer_answers;
static void on_peer_stats(aemp_msg_t *reply, void *name)
{
    uint64_t u = 0;
    const aemp_val_t *peers = reply ? aemp_val_get(aemp_msg_at(reply, 0), "peers") : NULL;
    if (peers && aemp_val_uint(aemp_val_get(aemp_val_get(peers, aemp_node()), name), &u) == 0)
        peer_sum += u;
    peer_answers++;
}

/* This node's figure `name` of its connection to node (its stats
 * "peers"), -1 if there is none. */
static long own_peer_figure(const char *node, const char *name)
{
    aemp_msg_t *st = aemp_stats();
    const aemp_val_t *c = aemp_val_get(aemp_val_get(aemp_msg_root(st), "peers"), node);
    uint64_t u;
    long v = c && aemp_val_uint(aemp_val_get(c, name), &u) == 0 ? (long)u : -1;
    aemp_msg_unref(st);
    return v;
}

/* This node's own figure of its connections to the seeds, summed. */
static uint64_t own_seed_figure(const char *name)
{
    uint64_t sum = 0;
    for (int i = 0; i < 2; i++) {
        long v = own_peer_figure(seed[i].nodeid, name);
        sum += v > 0 ? (uint64_t)v : 0;
    }
    return sum;
}

/* The bytes this node's connection to node still has to send (-1: none). */
static long peer_queue(const char *node)
{
    return own_peer_figure(node, "send_queue_bytes");
}

/* The seeds' bytes_out to this node (*out, at the moments they answer),
 * between this node's bytes_in from them before it asks (*in0) and after
 * the answers came (*in1): in order on each connection, what a seed had
 * sent when it answered arrived before its answer. */
static void bytes_sandwich(uint64_t *in0, uint64_t *out, uint64_t *in1)
{
    *in0 = own_seed_figure("bytes_in");
    peer_sum = 0;
    peer_answers = 0;
    for (int i = 0; i < 2; i++)
        aemp_cal(seed[i].nodeid, aemp_msgf("s", "stats"), on_peer_stats, "bytes_out", 5);
    double end = pu_now() + 10;
    while (peer_answers < 2 && pu_now() < end)
        tu_run_for(0.02);
    assert_int_equal(peer_answers, 2);
    *out = peer_sum;
    *in1 = own_seed_figure("bytes_in");
}

/* Shrink the receive buffers of this node's connections to the seeds, so
 * that a master's large output to it waits partly in the master's queue. */
static int shrink_seed_rcvbufs(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int shrunk = 0;
    while (d && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        if (fd <= 2 || getpeername(fd, (struct sockaddr *)&peer, &len) != 0 || peer.sin_family != AF_INET)
            continue;
        int port = ntohs(peer.sin_port), small = 64 * 1024;
        if ((port == seedport[0] || port == seedport[1]) &&
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0)
            shrunk++;
    }
    if (d)
        closedir(d);
    return shrunk;
}

/* 96 values of 64 KiB each, set on a worker at once, reach this node's
 * monitor whole while it stops reading for a while with a small receive
 * buffer: the master's g_chg2 of them (megabytes: its socket takes part,
 * the rest is queued) goes out straight from the one encoding of the
 * fan-out, and the bytes the seeds count as sent to this node grow by
 * exactly what this node counts as received (the handshake, counted on
 * one side only, cancels out). */
static void large_fanout_arrives_whole(void **state)
{
    enum { NVAL = 96, VLEN = 64 * 1024 };
    static unsigned char val[VLEN];
    char keys[NVAL][16];
    const char *kp[NVAL];
    aemp_handle_t h;
    uint64_t in0a, out0, in0b, in1a, out1, in1b;
    view_clear();
    assert_int_equal(aemp_db_mon("bulk", on_group, NULL, &h), 0);
    tu_run_for(0.3);
    assert_true(shrink_seed_rcvbufs() >= 1);
    bytes_sandwich(&in0a, &out0, &in0b);
    for (int i = 0; i < NVAL; i++) {
        for (size_t j = 0; j < VLEN; j++)
            val[j] = (unsigned char)(i * 31 + j * 7 + (j >> 9));
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        kp[i] = keys[i];
        aemp_snd_to_func(work[4].nodeid, "aemp::db_set", aemp_msgf("ssy", "bulk", keys[i], val, (size_t)VLEN));
    }
    /* the sets handed to the kernel, stop reading for a while: the
     * master's socket to us fills, and what it does not take waits in its
     * queue */
    double end = pu_now() + 10;
    while (peer_queue(work[4].nodeid) && pu_now() < end)
        tu_run_for(0.01);
    assert_int_equal(peer_queue(work[4].nodeid), 0);
    usleep(1500 * 1000);
    assert_true(wait_keys(kp, NVAL, 20));
    for (int i = 0; i < NVAL; i++) {
        for (size_t j = 0; j < VLEN; j++)
            val[j] = (unsigned char)(i * 31 + j * 7 + (j >> 9));
        assert_bytes(view_get(keys[i]), val, VLEN);
    }
    tu_run_for(0.3);
    bytes_sandwich(&in1a, &out1, &in1b);
    assert_true(out1 - out0 >= (uint64_t)NVAL * VLEN);
    assert_true(out1 - out0 >= in1a - in0b && out1 - out0 <= in1b - in0a);
    for (int i = 0; i < NVAL; i++)
        aemp_snd_to_func(work[4].nodeid, "aemp::db_del", aemp_msgf("ss", "bulk", keys[i]));
    assert_int_equal(aemp_db_mon_cancel(h), 0);
    view_clear();
}

/* A byte string (not UTF-8, NULs inside) and a uint64 above INT64_MAX,
 * set with aemp_db_set on a worker, reach this node's monitor through
 * their master unchanged; set here, the master's answer to a query has
 * them unchanged too. */
static void bytes_and_uint64_survive(void **state)
{
    static const unsigned char blob[] = { 0x00, 0xff, 0x80, 'a', 0x00, 0xc3, 0x28 };
    const uint64_t big = UINT64_MAX - 1;
    const char *const keys[] = { "blob", "big" };
    aemp_handle_t h;
    view_clear();
    assert_int_equal(aemp_db_mon("raw", on_group, NULL, &h), 0);
    aemp_snd_to_func(work[1].nodeid, "aemp::db_set", aemp_msgf("ssy", "raw", "blob", blob, sizeof blob));
    aemp_snd_to_func(work[1].nodeid, "aemp::db_set", aemp_msgf("ssu", "raw", "big", big));
    assert_true(wait_keys(keys, 2, 10));
    assert_bytes(view_get("blob"), blob, sizeof blob);
    assert_uint(view_get("big"), big);
    /* set here: through the master and back into our own monitor */
    assert_int_equal(aemp_db_setf("raw", "mine", "[yu]", blob, sizeof blob, big), 0);
    const char *const mine[] = { "mine" };
    assert_true(wait_keys(mine, 1, 10));
    const aemp_val_t *v = view_get("mine");
    assert_int_equal(aemp_val_type(v), AEMP_T_ARRAY);
    assert_int_equal(aemp_val_len(v), 2);
    assert_bytes(aemp_val_at(v, 0), blob, sizeof blob);
    assert_uint(aemp_val_at(v, 1), big);
    const aemp_val_t *fam = ask(aemp_db_family, "raw");
    assert_bytes(aemp_val_get(fam, "blob"), blob, sizeof blob);
    assert_uint(aemp_val_get(fam, "big"), big);
    v = aemp_val_get(fam, "mine");
    assert_non_null(v);
    assert_int_equal(aemp_val_len(v), 2);
    assert_bytes(aemp_val_at(v, 0), blob, sizeof blob);
    assert_uint(aemp_val_at(v, 1), big);
    assert_int_equal(aemp_db_del("raw", "mine"), 0);
    aemp_snd_to_func(work[1].nodeid, "aemp::db_del", aemp_msgf("ss", "raw", "blob"));
    aemp_snd_to_func(work[1].nodeid, "aemp::db_del", aemp_msgf("ss", "raw", "big"));
    assert_int_equal(aemp_db_mon_cancel(h), 0);
    aemp_msg_unref(query_result);
    query_result = NULL;
    view_clear();
}

static void group_reg_from_this_node(void **state)
{
    aemp_handle_t h;
    assert_int_equal(aemp_grp_mon(GROUP, NULL, NULL, &h), AEMP_EINVAL);
    view_clear();
    aemp_db_mon(GROUP, on_group, NULL, &h);
    tu_run_for(0.5);
    const char *mine = aemp_port(on_echo, NULL);
    char *all[NWORK + 1];
    for (int i = 0; i < NWORK; i++)
        all[i] = member[i];
    all[NWORK] = strdup(mine);
    assert_int_equal(aemp_grp_reg(GROUP, mine, NULL), 0);
    assert_true(wait_group(all, NWORK + 1, 10));
    aemp_msg_t *members = aemp_grp_get(GROUP);
    assert_non_null(members);
    assert_int_equal(aemp_msg_len(members), NWORK + 1);
    aemp_msg_unref(members);
    aemp_kil(mine, NULL);   /* its registration goes with it */
    assert_true(wait_group(member, NWORK, 10));
    free(all[NWORK]);
    aemp_db_mon_cancel(h);
}

/* Poll aemp_grp_get(group) every 0.1 s until it holds n members (n 0:
 * until it returns NULL), up to `seconds`; the last result (or NULL). */
static aemp_msg_t *poll_grp_get(const char *group, size_t n, double seconds)
{
    double end = pu_now() + seconds;
    for (;;) {
        aemp_msg_t *m = aemp_grp_get(group);
        if (n ? aemp_msg_len(m) == n : !m)
            return m;
        if (pu_now() > end)
            return m;
        aemp_msg_unref(m);
        tu_run_for(0.1);
    }
}

/* Ask worker i for its aemp_grp_get(group) (the aemp::grp_get function of
 * `aemp run`): [the members as that node sees them] (a new message). */
static aemp_msg_t *worker_grp_get(int i, const char *group)
{
    tu_box_t b = { NULL, 0 };
    const char *me = aemp_port(tu_box_put, &b);
    assert_int_equal(aemp_snd_to_func(work[i].nodeid, "aemp::grp_get", aemp_msgf("ss", group, me)), 0);
    assert_true(tu_run_until(&b.count, 10));
    aemp_kil(me, NULL);
    return b.last;
}

/* The Perl tutorial's sender: nothing but grp_get, once in a while.  The
 * first call of a group on a non-global node starts mirroring it (and
 * finds nothing yet); later calls see the members, their changes, and
 * keep working after a db_mon of the same group is cancelled. */
static void grp_get_just_works(void **state)
{
    const char *group = "tutorial";
    assert_int_equal(aemp_is_global(), 0);
    char *first = aemp_spawn(work[1].nodeid, "aemp::grp_echo", aemp_msgf("s", group));
    assert_non_null(first);
    tu_run_for(0.5);   /* registered: the database has it */
    assert_null(aemp_grp_get(group));   /* the first call: nothing mirrored yet */
    aemp_msg_t *m = poll_grp_get(group, 1, 10);
    assert_non_null(m);
    assert_string_equal(aemp_msg_str(m, 0, NULL), first);
    aemp_msg_unref(m);

    /* the member found that way answers */
    tu_box_t b = { NULL, 0 };
    const char *me = aemp_port(tu_box_put, &b);
    aemp_sndf(first, "ss", "hello", me);
    assert_true(tu_run_until(&b.count, 5));
    tu_assert_msg(b.last, "[\"hello\"]");

    /* a db_mon of the group, cancelled: the mirroring goes on */
    aemp_handle_t h;
    assert_int_equal(aemp_db_mon(group, on_group, NULL, &h), 0);
    tu_run_for(0.2);
    assert_int_equal(aemp_db_mon_cancel(h), 0);
    char *second = aemp_spawn(work[2].nodeid, "aemp::grp_echo", aemp_msgf("s", group));
    m = poll_grp_get(group, 2, 10);
    assert_int_equal(aemp_msg_len(m), 2);
    aemp_msg_unref(m);

    /* a member that dies leaves */
    aemp_kil(first, NULL);
    m = poll_grp_get(group, 1, 10);
    assert_int_equal(aemp_msg_len(m), 1);
    assert_string_equal(aemp_msg_str(m, 0, NULL), second);
    aemp_msg_unref(m);

    /* the same in another `aemp run` process: its first grp_get finds
     * nothing, a later one the member */
    m = worker_grp_get(4, group);
    tu_assert_msg(m, "[[]]");
    aemp_msg_unref(m);
    double end = pu_now() + 10;
    char want[300];
    snprintf(want, sizeof want, "[[\"%s\"]]", second);
    for (;;) {
        m = worker_grp_get(4, group);
        if (aemp_val_len(aemp_msg_at(m, 0)) == 1 || pu_now() > end)
            break;
        aemp_msg_unref(m);
        tu_run_for(0.1);
    }
    tu_assert_msg(m, want);
    aemp_msg_unref(m);

    aemp_kil(second, NULL);
    assert_null(poll_grp_get(group, 0, 10));
    aemp_kil(me, NULL);
    tu_box_clear(&b);
    free(first);
    free(second);
}

static void converges_after_seed_and_node_die(void **state)
{
    aemp_handle_t h;
    view_clear();
    aemp_db_mon(GROUP, on_group, NULL, &h);
    assert_true(wait_group(member, NWORK, 10));
    /* kill seed1 and worker6 hard */
    pu_stop(&seed[0], SIGKILL);
    pu_stop(&work[NWORK - 1], SIGKILL);
    char *left[NWORK];
    for (int i = 0; i < NWORK - 1; i++)
        left[i] = member[i];
    assert_true(wait_group(left, NWORK - 1, 30));
    /* restart both; the worker registers a new port */
    assert_true(start_seed(0));
    assert_true(start_worker(NWORK - 1));
    char *stale = strdup(member[NWORK - 1]);
    tu_run_for(1.0);
    register_worker(NWORK - 1);
    assert_true(wait_group(member, NWORK, 30));
    assert_null(view_get(stale));
    free(stale);
    /* the restarted seed has the whole database again: with the other seed
     * gone it alone serves the group, and nothing is lost or stale */
    tu_run_for(1.0);
    pu_stop(&seed[1], SIGKILL);
    tu_run_for(1.0);
    assert_true(wait_group(member, NWORK, 30));
    assert_true(aemp_node_is_up("seed1") == 1);
    aemp_db_mon_cancel(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_registration_reaches_everyone),
        cmocka_unit_test(queries_agree),
        cmocka_unit_test(every_node_finds_every_other),
        cmocka_unit_test(values_and_deletes_propagate),
        cmocka_unit_test(changes_only_monitor),
        cmocka_unit_test(master_learns_report_cost),
        cmocka_unit_test(fanout_budget_is_shared_by_the_seeds),
        cmocka_unit_test(bytes_and_uint64_survive),
        cmocka_unit_test(large_fanout_arrives_whole),
        cmocka_unit_test(group_reg_from_this_node),
        cmocka_unit_test(grp_get_just_works),
        cmocka_unit_test(converges_after_seed_and_node_die),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
