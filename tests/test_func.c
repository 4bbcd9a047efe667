/* Tests for named functions and local spawn (func.c): registration,
 * snd_to_func on the own node, deferred init functions in port context,
 * unknown functions, bad arguments. */
#include "testutil.h"

static tu_box_t seen;
static char seen_self[256];

static void record_fn(aemp_msg_t *args, void *arg)
{
    tu_box_put(args, &seen);
    snprintf(seen_self, sizeof seen_self, "%s", aemp_self() ? aemp_self() : "");
}

static int setup(void **s)
{
    tu_box_clear(&seen);
    seen_self[0] = 0;
    return tu_setup(s);
}

static int teardown(void **s)
{
    tu_box_clear(&seen);
    aemp_func_unregister("t::record");
    aemp_func_unregister("t::init");
    return tu_teardown(s);
}

static void register_and_call_by_name(void **state)
{
    assert_int_equal(aemp_func_register("t::record", record_fn, NULL), 0);
    assert_int_equal(aemp_snd_to_func(aemp_node(), "t::record", aemp_msgf("si", "a", 1)), 0);
    assert_int_equal(seen.count, 0);   /* from the loop, not inside the call */
    tu_drain();
    assert_int_equal(seen.count, 1);
    tu_assert_msg(seen.last, "[\"a\",1]");
    assert_string_equal(seen_self, "");   /* not in port context */
    /* unregistered: nothing is called */
    assert_int_equal(aemp_func_unregister("t::record"), 0);
    assert_int_equal(aemp_func_unregister("t::record"), AEMP_ENOFUNC);
    aemp_snd_to_func(aemp_node(), "t::record", NULL);
    tu_drain();
    assert_int_equal(seen.count, 1);
    /* bad arguments */
    assert_int_equal(aemp_func_register(NULL, record_fn, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_func_register("", record_fn, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_func_register("x::y", NULL, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_snd_to_func(aemp_node(), "", NULL), AEMP_EINVAL);
    assert_int_equal(aemp_snd_to_func(aemp_node(), "x::y", aemp_valf("s", "no")), AEMP_EINVAL);
    assert_int_equal(aemp_snd_to_func("", "x::y", NULL), AEMP_EPORTID);
}

static tu_box_t inbox;
static void spawned_rcv(aemp_msg_t *m, void *arg)
{
    tu_box_put(m, &inbox);
}

static void init_fn(aemp_msg_t *args, void *arg)
{
    record_fn(args, arg);
    aemp_rcv(aemp_self(), spawned_rcv, NULL);
}

static void local_spawn_is_deferred_and_in_context(void **state)
{
    aemp_func_register("t::init", init_fn, NULL);
    char *id = aemp_spawn(aemp_node(), "t::init", aemp_msgf("s", "arg"));
    assert_non_null(id);
    assert_true(aemp_port_is_local(id));
    assert_int_equal(seen.count, 0);   /* never inside aemp_spawn */
    /* the new port may be sent to at once: the message waits for it */
    aemp_sndf(id, "s", "hello");
    tu_drain();
    assert_int_equal(seen.count, 1);
    tu_assert_msg(seen.last, "[\"arg\"]");
    assert_string_equal(seen_self, id);
    assert_int_equal(inbox.count, 1);
    tu_assert_msg(inbox.last, "[\"hello\"]");
    /* spawning by a port ID of the node works too */
    const char *p = aemp_port(NULL, NULL);
    char *id2 = aemp_spawn(p, "t::init", NULL);
    assert_non_null(id2);
    assert_int_equal(aemp_node_len(id2), strlen(aemp_node()));
    tu_drain();
    assert_int_equal(seen.count, 2);
    tu_assert_msg(seen.last, "[]");
    free(id);
    free(id2);
    tu_box_clear(&inbox);
}

static void unknown_function_kills_the_port(void **state)
{
    char *id = aemp_spawn(aemp_node(), "nope::missing", NULL);
    assert_non_null(id);
    tu_box_t dead = { NULL, 0 };
    aemp_mon(id, tu_box_put, &dead, NULL);
    tu_drain();
    assert_int_equal(dead.count, 1);
    /* the reason names the module files it looked for, and where */
    assert_string_equal(aemp_msg_str(dead.last, 0, NULL), "die");
    const char *why = aemp_msg_str(dead.last, 1, NULL);
    assert_non_null(why);
    const char *head = "unable to resolve function 'nope::missing': no module file found (tried nope.so in ";
    assert_int_equal(strncmp(why, head, strlen(head)), 0);
    tu_box_clear(&dead);
    free(id);
    /* bad spawn arguments */
    assert_null(aemp_spawn(aemp_node(), "nocolons", NULL));
    assert_null(aemp_spawn(aemp_node(), NULL, NULL));
    assert_null(aemp_spawn(aemp_node(), "a::b", aemp_valf("s", "not an array")));
    assert_null(aemp_spawn("#bad", "a::b", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(register_and_call_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(local_spawn_is_deferred_and_in_context, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_function_kills_the_port, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
