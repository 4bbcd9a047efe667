/* Tests for the queue limits while connecting (docs/configuration.md) and
 * for forgetting idle node-table entries: messages to nodes that do not
 * answer are capped in bytes per node, in total and in the number of
 * nodes; overflow fires the monitors with a reason naming the limit, is
 * counted in aemp_stats, and later messages start afresh. */
#include "testutil.h"

#include <unistd.h>

static char tmpdir[64], rcenv[128];

static uint64_t stat_of(const char *name)
{
    aemp_msg_t *s = aemp_stats();
    const aemp_val_t *v = aemp_val_get(aemp_msg_root(s), name);
    assert_non_null(v);
    uint64_t u = 0;
    assert_int_equal(aemp_val_uint(v, &u), 0);
    aemp_msg_unref(s);
    return u;
}

typedef struct fired {
    int count;
    char text[256];
} fired_t;

static void on_death(aemp_msg_t *reason, void *arg)
{
    fired_t *f = arg;
    f->count++;
    const char *t = aemp_msg_str(reason, 2, NULL);
    snprintf(f->text, sizeof f->text, "%s", t ? t : "?");
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-limits-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    char err[256];
    /* no network: every other node is unreachable; monitor_timeout is how
     * long a node without an address may hold a queue */
    if (aemp_configuref(err, sizeof err, "{s:s, s:[], s:i, s:i, s:i, s:i}", "nodeid", "limited", "binds",
                        "max_connect_queue", 262144, "max_connect_queue_total", 600000,
                        "max_connecting_nodes", 6, "monitor_timeout", 2) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    aemp_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Send n messages of size bytes to port id. */
static void send_blobs(const char *id, int n, size_t size)
{
    char *blob = malloc(size);
    assert_non_null(blob);
    memset(blob, 'b', size);
    for (int i = 0; i < n; i++)
        assert_int_equal(aemp_sndf(id, "siy", "blob", i, blob, size), 0);
    free(blob);
}

static void per_node_limit(void **state)
{
    static fired_t f;   /* static: the monitor may fire after this test */
    aemp_handle_t h;
    assert_int_equal(aemp_mon("ghost#p", on_death, &f, &h), 0);
    uint64_t before = stat_of("dropped_connect_queue");
    send_blobs("ghost#p", 2, 100000);   /* 200 kB: fits */
    tu_run_for(0.05);
    assert_int_equal(f.count, 0);
    assert_int_equal(stat_of("connecting_nodes"), 1);
    assert_true(stat_of("connect_queue_bytes") > 200000);
    send_blobs("ghost#p", 1, 100000);   /* one more does not */
    tu_run_for(0.05);
    assert_int_equal(f.count, 1);
    assert_string_equal(f.text, "send queue overflow while connecting: more than max_connect_queue (262144 bytes)");
    /* dropped: the queued mon1 request and two blobs, and the one that did not fit */
    assert_int_equal(stat_of("dropped_connect_queue"), before + 4);
    assert_int_equal(stat_of("connect_queue_bytes"), 0);
    /* a later message starts afresh */
    send_blobs("ghost#p", 1, 1000);
    assert_int_equal(stat_of("connecting_nodes"), 1);
    tu_run_for(0.05);
    assert_int_equal(f.count, 1);   /* exactly once */
}

static void total_and_node_count_limits(void **state)
{
    static fired_t f[7];
    char id[7][32];
    for (int i = 0; i < 7; i++)
        snprintf(id[i], sizeof id[i], "far%d#p", i);
    aemp_handle_t h;
    /* a monitor queues a mon1 request: far0..far2 hold queues (with ghost: 4) */
    for (int i = 0; i < 3; i++)
        assert_int_equal(aemp_mon(id[i], on_death, &f[i], &h), 0);
    send_blobs(id[0], 1, 250000);
    send_blobs(id[1], 1, 250000);
    /* far2: 250 kB more would pass 600000 in total */
    send_blobs(id[2], 1, 250000);
    tu_run_for(0.05);
    assert_int_equal(f[0].count + f[1].count, 0);
    assert_int_equal(f[2].count, 1);
    assert_string_equal(f[2].text,
                        "send queue overflow while connecting: more than max_connect_queue_total (600000 bytes) for all nodes");
    /* far2's queue is gone: far3..far5 make six nodes with a queue; far6
     * would be the seventh */
    for (int i = 3; i < 7; i++)
        assert_int_equal(aemp_mon(id[i], on_death, &f[i], &h), 0);
    tu_run_for(0.05);
    assert_int_equal(f[3].count + f[4].count + f[5].count, 0);
    assert_int_equal(f[6].count, 1);
    assert_string_equal(f[6].text, "not queued: max_connecting_nodes (6) nodes already wait for a connection");
    assert_int_equal(stat_of("connecting_nodes"), 6);
    assert_true(stat_of("dropped_connect_queue_total") >= 1);
    assert_true(stat_of("dropped_connecting_nodes") >= 1);
}

/* Nodes that never answered and that nothing refers to leave the table
 * after their failure; a node we monitor stays until the monitor is gone. */
static void idle_nodes_are_forgotten(void **state)
{
    /* all queues go when their nodes fail (no address: after monitor_timeout) */
    double end = ev_time() + 5;
    while (stat_of("connecting_nodes") && ev_time() < end)
        tu_run_for(0.05);
    assert_int_equal(stat_of("connecting_nodes"), 0);
    assert_int_equal(aemp_snd("lost#p", aemp_msgf("s", "x")), 0);
    assert_int_equal(aemp_node_is_up("lost"), 0);   /* known, connecting */
    uint64_t forgotten = stat_of("nodes_forgotten");
    /* no address: the node fails after monitor_timeout (2 s) */
    end = ev_time() + 5;
    while (aemp_node_is_up("lost") != AEMP_ENOENT && ev_time() < end)
        tu_run_for(0.05);
    assert_int_equal(aemp_node_is_up("lost"), AEMP_ENOENT);
    assert_true(stat_of("nodes_forgotten") > forgotten);
    assert_int_equal(stat_of("connecting_nodes"), 0);
    assert_int_equal(aemp_node_is_up("ghost"), AEMP_ENOENT);   /* its monitors fired and are gone */
    assert_int_equal(stat_of("nodes"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_node_limit),
        cmocka_unit_test(total_and_node_count_limits),
        cmocka_unit_test(idle_nodes_are_forgotten),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
