/* Convergence tests of the 2.02 network model with real processes: two
 * seeds (global nodes) and six ordinary `aemp run` nodes, plus this test
 * process as a ninth node.  Every node finds every other through its
 * master, every registration reaches everyone, and after a seed and an
 * ordinary node are killed and restarted the database converges again with
 * nothing stale. */
#include "testutil.h"

#include "procutil.h"

#include <arpa/inet.h>
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

static json_t *view;      /* latest contents of GROUP seen by db_mon */
static int mon_calls;
static void on_group(json_t *family, json_t *added, json_t *changed, json_t *deleted, void *arg)
{
    json_decref(view);
    view = json_deep_copy(family);
    mon_calls++;
}

/* Wait until the group holds exactly the wanted members (bounded). */
static int converged;
static int group_is(char **want, int n)
{
    if (json_object_size(view) != (size_t)n)
        return 0;
    for (int i = 0; i < n; i++)
        if (!json_object_get(view, want[i]))
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
    char *s = view ? json_dumps(view, JSON_COMPACT) : strdup("null");
    fprintf(stderr, "group not converged: %s\n", s);
    free(s);
    return 0;
}

static void register_worker(int i)
{
    free(member[i]);
    member[i] = aemp_spawn(work[i].nodeid, "aemp::grp_echo", json_pack("[s]", GROUP));
    assert_non_null(member[i]);
}

static json_t *query_result;
static int queried;
static void on_query(json_t *r, void *arg)
{
    json_decref(query_result);
    query_result = json_incref(r);
    queried = 1;
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
    json_decref(view);
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
    queried = 0;
    assert_int_equal(aemp_db_keys(GROUP, on_query, NULL), 0);
    assert_true(tu_run_until(&queried, 10));
    assert_int_equal(json_array_size(query_result), NWORK);
    queried = 0;
    assert_int_equal(aemp_db_family("'g", on_query, NULL), 0);
    assert_true(tu_run_until(&queried, 10));
    assert_non_null(json_object_get(query_result, "seed1"));
    assert_non_null(json_object_get(query_result, "seed2"));
    assert_int_equal(json_object_size(query_result), 2);
    queried = 0;
    assert_int_equal(aemp_db_values("no_such_family", on_query, NULL), 0);
    assert_true(tu_run_until(&queried, 10));
    tu_assert_json(query_result, "[]");
    json_decref(query_result);
    query_result = NULL;
}

static json_t *inbox[NWORK];
static int ngot;
static void on_echo(json_t *m, void *arg)
{
    int i = (int)json_integer_value(json_array_get(m, 1));
    if (i >= 0 && i < NWORK && !inbox[i]) {
        inbox[i] = json_incref(m);
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
        aemp_snd_on(work[i].nodeid, next, json_pack("[sis]", "ring", i, me));
    }
    double end = pu_now() + 20;
    while (ngot < NWORK && pu_now() < end)
        tu_run_for(0.05);
    assert_int_equal(ngot, NWORK);
    for (int i = 0; i < NWORK; i++) {
        json_decref(inbox[i]);
        inbox[i] = NULL;
    }
    aemp_kil(me, NULL);
}

static void values_and_deletes_propagate(void **state)
{
    /* a worker sets and deletes an entry of its own */
    aemp_handle_t h;
    json_decref(view);
    view = NULL;
    assert_int_equal(aemp_db_mon("config", on_group, NULL, &h), 0);
    aemp_snd_to_func(work[2].nodeid, "aemp::db_set", json_pack("[ssi]", "config", "limit", 42));
    double end = pu_now() + 10;
    while (!json_object_get(view, "limit") && pu_now() < end)
        tu_run_for(0.05);
    tu_assert_json(json_object_get(view, "limit"), "42");
    aemp_snd_to_func(work[2].nodeid, "aemp::db_del", json_pack("[ss]", "config", "limit"));
    end = pu_now() + 10;
    while (json_object_get(view, "limit") && pu_now() < end)
        tu_run_for(0.05);
    assert_null(json_object_get(view, "limit"));
    assert_int_equal(aemp_db_mon_cancel(h), 0);
    /* our own entries too */
    assert_int_equal(aemp_db_set("config", "mine", json_string("x")), 0);
    assert_int_equal(aemp_db_del("config", "mine"), 0);
    assert_int_equal(aemp_db_del("config", "mine"), AEMP_ENOENT);
    json_decref(view);
    view = NULL;
}

static void group_reg_from_this_node(void **state)
{
    aemp_handle_t h;
    assert_int_equal(aemp_grp_mon(GROUP, NULL, NULL, &h), AEMP_EINVAL);
    json_decref(view);
    view = NULL;
    aemp_db_mon(GROUP, on_group, NULL, &h);
    tu_run_for(0.5);
    const char *mine = aemp_port(on_echo, NULL);
    char *all[NWORK + 1];
    for (int i = 0; i < NWORK; i++)
        all[i] = member[i];
    all[NWORK] = strdup(mine);
    assert_int_equal(aemp_grp_reg(GROUP, mine, NULL), 0);
    assert_true(wait_group(all, NWORK + 1, 10));
    json_t *members = aemp_grp_get(GROUP);
    assert_int_equal(json_array_size(members), NWORK + 1);
    json_decref(members);
    aemp_kil(mine, NULL);   /* its registration goes with it */
    assert_true(wait_group(member, NWORK, 10));
    free(all[NWORK]);
    aemp_db_mon_cancel(h);
}

static void converges_after_seed_and_node_die(void **state)
{
    aemp_handle_t h;
    json_decref(view);
    view = NULL;
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
    assert_null(json_object_get(view, stale));
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
        cmocka_unit_test(group_reg_from_this_node),
        cmocka_unit_test(converges_after_seed_and_node_die),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
