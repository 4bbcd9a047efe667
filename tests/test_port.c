/* Tests for local ports: creation, IDs, rcv/tag dispatch, snd, kil,
 * port context (SELF, die, peval, psub), ordering and bad input. */
#include "testutil.h"

static aemp_msg_t *last;   /* last message seen by `record` */
static char last_self[256];
static int count;

static void record(aemp_msg_t *msg, void *arg)
{
    aemp_msg_unref(last);
    last = aemp_msg_ref(msg);
    snprintf(last_self, sizeof last_self, "%s", aemp_self() ? aemp_self() : "");
    count++;
    if (arg)
        (*(int *)arg)++;
}

static aemp_msg_t *reason;
static int died;
static void on_death(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(reason);
    reason = aemp_msg_ref(r);
    died++;
}

static int setup(void **s)
{
    last = NULL;
    reason = NULL;
    count = died = 0;
    last_self[0] = 0;
    return tu_setup(s);
}

static int teardown(void **s)
{
    aemp_msg_unref(last);
    aemp_msg_unref(reason);
    last = reason = NULL;
    return tu_teardown(s);
}

static void node_id_and_port_ids(void **state)
{
    const char *node = aemp_node();
    assert_non_null(node);
    assert_int_equal(strncmp(node, "anon/", 5), 0);
    assert_int_equal(strlen(node), 15);
    const char *p1 = aemp_port(NULL, NULL);
    char buf[128];
    assert_int_equal(aemp_node_of(p1, buf, sizeof buf), (int)strlen(node));
    assert_string_equal(buf, node);
    assert_int_equal(aemp_node_len("a#b#c"), 1);
    assert_int_equal(aemp_node_len("plainnode"), 9);
    assert_int_equal(aemp_node_of("abc#d", buf, 3), AEMP_EINVAL);
    assert_true(aemp_port_is_local(p1));
    assert_true(aemp_port_is_local(node));
    assert_false(aemp_port_is_local("othernode#x"));
    /* names are unique and never reused */
    char first[128];
    snprintf(first, sizeof first, "%s", p1);
    for (int i = 0; i < 1000; i++) {
        const char *p = aemp_port(NULL, NULL);
        assert_string_not_equal(p, first);
        aemp_kil(p, NULL);
    }
    tu_drain();
    /* a restarted node has different prefixes */
    char oldnode[64];
    snprintf(oldnode, sizeof oldnode, "%s", node);
    aemp_shutdown();
    aemp_init(NULL);
    assert_string_not_equal(aemp_node(), oldnode);
    const char *p2 = aemp_port(NULL, NULL);
    assert_string_not_equal(strchr(p2, '#'), strchr(first, '#'));
}

static void default_and_tag_callbacks(void **state)
{
    int tagged = 0, deflt = 0;
    const char *p = aemp_port(record, &deflt);
    assert_int_equal(aemp_rcv_tag(p, "ping", record, &tagged), 0);
    assert_int_equal(aemp_sndf(p, "sis", "ping", 1, "x"), 0);
    /* never delivered inside the sender's call */
    assert_int_equal(count, 0);
    tu_drain();
    assert_int_equal(tagged, 1);
    tu_assert_msg(last, "[\"ping\",1,\"x\"]");   /* the whole message, tag included */
    assert_string_equal(last_self, p);
    aemp_sndf(p, "si", "other", 2);
    tu_drain();
    assert_int_equal(deflt, 1);
    tu_assert_msg(last, "[\"other\",2]"); /* default gets the whole message */
    /* replace the tag callback, then unregister it */
    int tagged2 = 0;
    aemp_rcv_tag(p, "ping", record, &tagged2);
    aemp_sndf(p, "s", "ping");
    tu_drain();
    assert_int_equal(tagged2, 1);
    assert_int_equal(tagged, 1);
    aemp_rcv_tag(p, "ping", NULL, NULL);
    aemp_sndf(p, "s", "ping");
    tu_drain();
    assert_int_equal(deflt, 2);
    tu_assert_msg(last, "[\"ping\"]");
    /* replace the default callback */
    int deflt2 = 0;
    aemp_rcv(p, record, &deflt2);
    aemp_sndf(p, "");
    tu_drain();
    assert_int_equal(deflt2, 1);
    tu_assert_msg(last, "[]");
}

static void shared_message_is_not_modified(void **state)
{
    int tagged = 0;
    const char *p = aemp_port(NULL, NULL);
    aemp_rcv_tag(p, "t", record, &tagged);
    aemp_msg_t *msg = aemp_msgf("si", "t", 5);
    aemp_snd(p, aemp_msg_ref(msg));   /* the sender keeps a reference */
    tu_drain();
    assert_int_equal(tagged, 1);
    tu_assert_msg(last, "[\"t\",5]");
    assert_ptr_equal(last, msg);      /* delivered without a copy */
    tu_assert_msg(msg, "[\"t\",5]");
    aemp_msg_unref(msg);
}

static void port_without_callback_dies_unhandled(void **state)
{
    const char *p = aemp_port(NULL, NULL);
    char id[128];
    snprintf(id, sizeof id, "%s", p);
    aemp_mon(p, on_death, NULL, NULL);
    aemp_sndf(p, "si", "hello\x01world-and-a-very-long-tag-beyond-thirty", 1);
    tu_drain();
    assert_int_equal(died, 1);
    tu_assert_msg(reason, "[\"unhandled_message\",\"no callback found for message 'hello.world-and-a-very-long-ta'\"]");
    /* the port is gone: rcv creates a new one with the same ID only on request */
    assert_int_equal(aemp_sndf(id, "s", "x"), 0);
    tu_drain();
    assert_int_equal(count, 0);
}

static void rcv_creates_port(void **state)
{
    char id[256];
    snprintf(id, sizeof id, "%s#myport", aemp_node());
    aemp_sndf(id, "s", "early");      /* resolved at delivery time */
    assert_int_equal(aemp_rcv(id, record, NULL), 0);
    tu_drain();
    assert_int_equal(count, 1);
    tu_assert_msg(last, "[\"early\"]");
    assert_string_equal(last_self, id);
}

static void kil_normal_and_with_reason(void **state)
{
    const char *a = aemp_port(record, NULL);
    aemp_mon(a, on_death, NULL, NULL);
    assert_int_equal(aemp_kil(a, NULL), 0);
    tu_drain();
    assert_int_equal(died, 1);
    tu_assert_msg(reason, "[]");
    const char *b = aemp_port(record, NULL);
    aemp_mon(b, on_death, NULL, NULL);
    assert_int_equal(aemp_kilf(b, "ss", "custom_error", "bye"), 0);
    tu_drain();
    assert_int_equal(died, 2);
    tu_assert_msg(reason, "[\"custom_error\",\"bye\"]");
    /* killing a dead or unknown port is a silent no-op */
    char id[256];
    snprintf(id, sizeof id, "%s#doesnotexist", aemp_node());
    assert_int_equal(aemp_kil(id, NULL), 0);
    tu_drain();
}

static void kill_after_earlier_messages(void **state)
{
    const char *p = aemp_port(record, NULL);
    aemp_mon(p, on_death, NULL, NULL);
    aemp_sndf(p, "i", 1);
    aemp_sndf(p, "i", 2);
    aemp_kil(p, NULL);
    aemp_sndf(p, "i", 3);   /* after the kill: dropped */
    tu_drain();
    assert_int_equal(count, 2);
    tu_assert_msg(last, "[2]");
    assert_int_equal(died, 1);
}

static void die_in_callback(aemp_msg_t *msg, void *arg)
{
    int64_t n = -1;
    aemp_msg_int(msg, 0, &n);
    aemp_die("oops: %d\n\n", (int)n);
}

static void die_kills_port(void **state)
{
    const char *p = aemp_port(die_in_callback, NULL);
    aemp_mon(p, on_death, NULL, NULL);
    aemp_sndf(p, "i", 7);
    tu_drain();
    assert_int_equal(died, 1);
    tu_assert_msg(reason, "[\"die\",\"oops: 7\"]");
    /* outside port context aemp_die only logs */
    aemp_die("nothing to kill");
    assert_null(aemp_self());
}

static char peval_seen[256];
static void peval_body(void *arg)
{
    snprintf(peval_seen, sizeof peval_seen, "%s", aemp_self() ? aemp_self() : "");
    if (arg)
        aemp_die("peval failed");
}

static void peval_runs_in_context(void **state)
{
    const char *p = aemp_port(record, NULL);
    aemp_mon(p, on_death, NULL, NULL);
    assert_int_equal(aemp_peval(p, peval_body, NULL), 0);
    assert_string_equal(peval_seen, p);
    assert_null(aemp_self());
    tu_drain();
    assert_int_equal(died, 0);
    assert_int_equal(aemp_peval(p, peval_body, (void *)1), 0);
    tu_drain();
    assert_int_equal(died, 1);
    tu_assert_msg(reason, "[\"die\",\"peval failed\"]");
    assert_int_equal(aemp_peval(NULL, peval_body, NULL), AEMP_EINVAL);
}

static aemp_psub_t *saved_psub;
static void make_psub_cb(aemp_msg_t *msg, void *arg);
static void psub_body(void *arg, void *data)
{
    snprintf(peval_seen, sizeof peval_seen, "%s", aemp_self() ? aemp_self() : "");
    if (data)
        aemp_die("psub died");
}
static void make_psub_cb(aemp_msg_t *msg, void *arg)
{
    saved_psub = aemp_psub(psub_body, NULL);
}

static void psub_carries_context(void **state)
{
    assert_null(aemp_psub(psub_body, NULL));   /* no SELF */
    const char *p = aemp_port(make_psub_cb, NULL);
    char id[128];
    snprintf(id, sizeof id, "%s", p);
    aemp_mon(p, on_death, NULL, NULL);
    aemp_sndf(p, "");
    tu_drain();
    assert_non_null(saved_psub);
    peval_seen[0] = 0;
    aemp_psub_call(saved_psub, NULL);
    assert_string_equal(peval_seen, id);
    aemp_psub_call(saved_psub, (void *)1);
    tu_drain();
    assert_int_equal(died, 1);
    tu_assert_msg(reason, "[\"die\",\"psub died\"]");
    aemp_psub_free(saved_psub);
}

static void bad_input(void **state)
{
    const char *p = aemp_port(record, NULL);
    assert_int_equal(aemp_snd(p, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_snd(p, aemp_valf("s", "not an array")), AEMP_EINVAL);
    assert_int_equal(aemp_snd(NULL, aemp_msg_empty()), AEMP_EPORTID);
    assert_int_equal(aemp_snd("", aemp_msg_empty()), AEMP_EPORTID);
    assert_int_equal(aemp_snd("#name", aemp_msg_empty()), AEMP_EPORTID);
    assert_int_equal(aemp_sndf(p, "[", 1), AEMP_EINVAL);
    assert_int_equal(aemp_rcv("othernode#x", record, NULL), AEMP_ENOTLOCAL);
    assert_int_equal(aemp_rcv(aemp_node(), record, NULL), AEMP_ENODEPORT);
    assert_int_equal(aemp_rcv_tag(p, NULL, record, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_kil(aemp_node(), NULL), AEMP_ENODEPORT);
    char nodeport[128];
    snprintf(nodeport, sizeof nodeport, "%s#", aemp_node());
    assert_int_equal(aemp_kil(nodeport, NULL), AEMP_ENODEPORT);
    assert_int_equal(aemp_kil(p, aemp_valf("s", "x")), AEMP_EINVAL);
    assert_int_equal(aemp_kil(NULL, NULL), AEMP_EPORTID);
    tu_drain();
    assert_int_equal(count, 0);   /* nothing was delivered or killed */
    assert_int_equal(aemp_sndf(p, "s", "still alive"), 0);
    tu_drain();
    assert_int_equal(count, 1);
    assert_string_equal(aemp_strerror(AEMP_ENODEPORT), "operation not allowed on the node port");
    assert_string_equal(aemp_strerror(12345), "unknown error");
}

/* A million-round ping-pong runs from the loop in constant stack. */
static long rounds;
static const char *ping_port, *pong_port;
static void *stack_low, *stack_high;
static void track_stack(void)
{
    char here;
    void *p = &here;
    if (!stack_low || p < stack_low)
        stack_low = p;
    if (!stack_high || p > stack_high)
        stack_high = p;
}
static void on_ping(aemp_msg_t *msg, void *arg)
{
    track_stack();
    if (++rounds < 1000000)
        aemp_snd(pong_port, aemp_msg_ref(msg));
    else
        *(int *)arg = 1;
}
static void on_pong(aemp_msg_t *msg, void *arg)
{
    track_stack();
    aemp_snd(ping_port, aemp_msg_ref(msg));
}

static void million_round_ping_pong(void **state)
{
    int done = 0;
    ping_port = aemp_port(on_ping, &done);
    pong_port = aemp_port(on_pong, NULL);
    aemp_sndf(ping_port, "s", "ball");
    assert_true(tu_run_until(&done, 60));
    assert_int_equal(rounds, 1000000);
    assert_true((char *)stack_high - (char *)stack_low < 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(node_id_and_port_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(default_and_tag_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_message_is_not_modified, setup, teardown),
        cmocka_unit_test_setup_teardown(port_without_callback_dies_unhandled, setup, teardown),
        cmocka_unit_test_setup_teardown(rcv_creates_port, setup, teardown),
        cmocka_unit_test_setup_teardown(kil_normal_and_with_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_after_earlier_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(die_kills_port, setup, teardown),
        cmocka_unit_test_setup_teardown(peval_runs_in_context, setup, teardown),
        cmocka_unit_test_setup_teardown(psub_carries_context, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(million_round_ping_pong, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
