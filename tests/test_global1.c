/* 1.30 compatibility of the global service with real processes: two
 * `aemp run` nodes that speak only the 1.30 dialect (so they run the 1.30
 * Global protocol: Global::connect ports, addr/nodes/set/reg1/reg0/seedme1)
 * and one 2.02 seed; this test process speaks both and bridges them.
 * Checks the 1.30 mesh (we learn and reach a 1.30 node we were never told
 * about), group registrations in both directions, their removal when the
 * port dies, and the bridge of 1.30 members into the 2.02 database. */
#include "testutil.h"

#include "procutil.h"

#define SECRET "global1-test-secret"

static pu_node_t a130, b130, seed202;
static char tmpdir[64], rcenv[128];

static int start(pu_node_t *n, const char *id, const char *dialect, const char *seeds)
{
    const char *env[] = { rcenv, "AEMP_WARNLEVEL=1", NULL };
    const char *args[] = { "nodeid", id, "binds", "127.0.0.1:0", "secret", SECRET, "dialect", dialect,
                           "seeds", seeds, "connect_interval", "2", "monitor_timeout", "4", NULL };
    return pu_start(n, env, args);
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-global1-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    if (!start(&a130, "a130", "1.30", "[]") || !start(&seed202, "seed202", "2.02", "[]"))
        return -1;
    if (!start(&b130, "b130", "1.30", a130.addr))
        return -1;
    char seeds[160], err[256];
    snprintf(seeds, sizeof seeds, "%s,%s", a130.addr, seed202.addr);
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:i, s:i}", "nodeid", "bridge", "secret",
                        SECRET, "binds", "127.0.0.1:0", "seeds", seeds, "connect_interval", 2,
                        "monitor_timeout", 4) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    pu_stop(&b130, SIGTERM);
    pu_stop(&a130, SIGTERM);
    pu_stop(&seed202, SIGTERM);
    aemp_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int wait_for(int (*cond)(void *), void *arg, double seconds)
{
    double end = pu_now() + seconds;
    while (pu_now() < end) {
        if (cond(arg))
            return 1;
        tu_run_for(0.05);
    }
    return cond(arg);
}

static int is_up(void *node)
{
    return aemp_node_is_up(node) == 1;
}

/* b130 was never named to us: the 1.30 seed a130 tells us about it. */
static void mesh_finds_unnamed_node(void **state)
{
    assert_true(wait_for(is_up, "a130", 10));
    assert_true(wait_for(is_up, "b130", 15));
}

static int member_count;
static const char *watched;

/* 1 if the array value a holds the string s. */
static int holds(const aemp_val_t *a, const char *s)
{
    for (size_t i = 0, n = aemp_val_type(a) == AEMP_T_ARRAY ? aemp_val_len(a) : 0; i < n; i++) {
        const char *e = aemp_val_str(aemp_val_at(a, i), NULL);
        if (e && !strcmp(e, s))
            return 1;
    }
    return 0;
}

static int has_member(void *port)
{
    aemp_msg_t *m = aemp_grp_get("chat");
    int found = m && holds(aemp_msg_root(m), port);
    aemp_msg_unref(m);
    return found;
}
static int lacks_member(void *port)
{
    return !has_member(port);
}

static void on_grp(aemp_msg_t *ports, aemp_msg_t *added, aemp_msg_t *removed, void *arg)
{
    member_count = (int)aemp_msg_len(ports);
    (void)watched;
}

static char *b_member;

static void their_registration_reaches_us(void **state)
{
    aemp_handle_t h;
    member_count = -1;
    assert_int_equal(aemp_grp_mon("chat", on_grp, NULL, &h), 0);
    b_member = aemp_spawn("b130", "aemp::grp_echo", aemp_msgf("s", "chat"));
    assert_true(wait_for(has_member, b_member, 15));
    double end = pu_now() + 5;
    while (member_count != 1 && pu_now() < end)
        tu_run_for(0.05);
    assert_int_equal(member_count, 1);
    aemp_db_mon_cancel(h);
}

static aemp_msg_t *answer;   /* the last reply [members] */
static int answered;
static void on_answer(aemp_msg_t *m, void *arg)
{
    aemp_msg_unref(answer);
    answer = aemp_msg_ref(m);
    answered = 1;
}

static int b_sees(const char *port)
{
    const char *me = aemp_port(on_answer, NULL);
    answered = 0;
    aemp_snd_to_func("b130", "aemp::grp_get", aemp_msgf("ss", "chat", me));
    tu_run_until(&answered, 5);
    aemp_kil(me, NULL);
    return answer && holds(aemp_msg_at(answer, 0), port);
}

static void our_registration_reaches_them(void **state)
{
    const char *mine = aemp_port(on_answer, NULL);
    char id[256];
    snprintf(id, sizeof id, "%s", mine);
    assert_int_equal(aemp_grp_reg("chat", id, NULL), 0);
    double end = pu_now() + 10;
    int seen = 0;
    while (!seen && pu_now() < end) {
        seen = b_sees(id);
        if (!seen)
            tu_run_for(0.2);
    }
    assert_true(seen);
    aemp_kil(id, NULL);   /* reg0 goes out */
    end = pu_now() + 10;
    while (seen && pu_now() < end) {
        tu_run_for(0.2);
        seen = b_sees(id);
    }
    assert_false(seen);
}

static aemp_msg_t *keys;   /* root: an array of keys */
static int got_keys;
static void on_keys(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(keys);
    keys = aemp_msg_ref(r);
    got_keys = 1;
}

/* The bridge: what 1.30 nodes registered is in the 2.02 database too. */
static void bridge_into_the_database(void **state)
{
    double end = pu_now() + 10;
    int found = 0;
    while (!found && pu_now() < end) {
        got_keys = 0;
        aemp_db_keys("chat", on_keys, NULL);
        tu_run_until(&got_keys, 5);
        found = keys && holds(aemp_msg_root(keys), b_member);
        if (!found)
            tu_run_for(0.2);
    }
    assert_true(found);
    /* the member dies on b130: it leaves the group everywhere */
    aemp_kil(b_member, NULL);
    assert_true(wait_for(lacks_member, b_member, 10));
    aemp_msg_unref(keys);
    aemp_msg_unref(answer);
    free(b_member);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mesh_finds_unnamed_node),
        cmocka_unit_test(their_registration_reaches_us),
        cmocka_unit_test(our_registration_reaches_them),
        cmocka_unit_test(bridge_into_the_database),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
