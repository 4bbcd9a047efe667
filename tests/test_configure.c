/* Tests for aemp_configure: a working configuration, and every kind of
 * bad input - each rejected with a precise message, leaving the node as it
 * was (same node ID, no listeners, ports still working). */
#include "testutil.h"

#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[64], rcpath[128], rcenv[160];

static int group_setup(void **s)
{
    snprintf(dir, sizeof dir, "/tmp/aemp-configure-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(rcpath, sizeof rcpath, "%s/rc", dir);
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s", rcpath);
    putenv(rcenv);
    return 0;
}

static int group_teardown(void **s)
{
    unlink(rcpath);
    return rmdir(dir);
}

static void write_rc(const char *text)
{
    FILE *f = fopen(rcpath, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Configure must fail with code and a message containing want; the node
 * keeps its anonymous ID and still delivers messages. */
static void expect_failure(const aemp_msg_t *args, int code, const char *want)
{
    char before[64];
    snprintf(before, sizeof before, "%s", aemp_node());
    char err[512] = "";
    assert_int_equal(aemp_configure(args, err, sizeof err), code);
    if (!strstr(err, want))
        fail_msg("expected '%s' in: %s", want, err);
    assert_string_equal(aemp_node(), before);
    aemp_msg_t *l = aemp_listeners();
    assert_int_equal(aemp_msg_len(l), 0);
    aemp_msg_unref(l);
    tu_box_t b = { NULL, 0 };
    const char *p = aemp_port(tu_box_put, &b);
    aemp_sndf(p, "s", "still works");
    tu_drain();
    assert_int_equal(b.count, 1);
    aemp_kil(p, NULL);
    tu_drain();
    tu_box_clear(&b);
}

static void bad_values(void **state)
{
    write_rc("{}");
    aemp_msg_t *a;
    expect_failure(a = aemp_valf("{ss}", "dialect", "3.0"), AEMP_ECONFIG,
                   "key 'dialect' must be \"both\", \"1.30\" or \"2.02\", got \"3.0\"");
    aemp_msg_unref(a);
    expect_failure(a = aemp_valf("{s[s]}", "binds", "1.2.3.4:5:6"), AEMP_ECONFIG,
                   "configure argument: key 'binds' element 1: bad endpoint '1.2.3.4:5:6'");
    aemp_msg_unref(a);
    /* a list key takes a comma-separated string, checked part by part, as
     * on the command line */
    expect_failure(a = aemp_valf("{ss}", "binds", "127.0.0.1:0,1.2.3.4:99999"), AEMP_ECONFIG,
                   "configure argument: key 'binds' element 2: bad endpoint '1.2.3.4:99999'");
    aemp_msg_unref(a);
    expect_failure(a = aemp_valf("{ss}", "nodelay", "maybe"), AEMP_ECONFIG,
                   "key 'nodelay' must be a boolean (true/false, 1/0, yes/no, on/off), got \"maybe\"");
    aemp_msg_unref(a);
    expect_failure(a = aemp_valf("{ss}", "monitor_timeout", "soon"), AEMP_ECONFIG, "monitor_timeout");
    aemp_msg_unref(a);
    expect_failure(a = aemp_valf("{si}", "db_fanout_cpu", 0), AEMP_ECONFIG,
                   "key 'db_fanout_cpu' must be a positive number, got 0");
    aemp_msg_unref(a);
    expect_failure(a = aemp_valf("{s[s]}", "auth_offer", "rot13"), AEMP_ECONFIG,
                   "auth_offer: none of the listed methods is supported");
    aemp_msg_unref(a);
    expect_failure(a = aemp_valf("{ss}", "nodeid", "bad#id"), AEMP_ECONFIG, "#");
    aemp_msg_unref(a);
    /* a byte string (what a Perl peer may send) counts as a string */
    expect_failure(a = aemp_valf("{sy}", "nodeid", "bad#id", (size_t)6), AEMP_ECONFIG, "#");
    aemp_msg_unref(a);
    expect_failure(a = aemp_valf("s", "not a map"), AEMP_EINVAL, "configure arguments must be a map, got str");
    aemp_msg_unref(a);
}

static void bad_rc_file(void **state)
{
    write_rc("{\n  \"version\": 1,\n  \"secret\": oops\n}\n");
    char want[256];
    snprintf(want, sizeof want, "%s:3:", rcpath);
    expect_failure(NULL, AEMP_ECONFIG, want);
    write_rc("{\"profile\":{\"a\":{\"parent\":\"b\"},\"b\":{\"parent\":\"a\"}}}");
    aemp_msg_t *a = aemp_valf("{ss}", "profile", "a");
    expect_failure(a, AEMP_ECONFIG, "loops");
    aemp_msg_unref(a);
    /* norc ignores the broken file */
    write_rc("{ broken");
    char err[256];
    assert_int_equal(aemp_configuref(err, sizeof err, "{s:b, s:s}", "norc", 1, "nodeid", "norc-node"), 0);
    assert_string_equal(aemp_node(), "norc-node");
    aemp_shutdown();
    aemp_init(NULL);
}

static void port_in_use(void **state)
{
    write_rc("{}");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    char bind_to[64];
    snprintf(bind_to, sizeof bind_to, "127.0.0.1:%d", ntohs(sin.sin_port));
    aemp_msg_t *a = aemp_valf("{s[s]}", "binds", bind_to);
    char want[128];
    snprintf(want, sizeof want, "cannot listen on %s", bind_to);
    expect_failure(a, AEMP_EIO, want);
    aemp_msg_unref(a);
    close(fd);
}

static void profile_and_once_only(void **state)
{
    write_rc("{ \"secret\": \"s\", # comment\n \"profile\": { \"worker\": { \"nodeid\": \"w/%u\", "
             "\"binds\": \"127.0.0.1:0\" }, } }");   /* a list as a comma-separated string */
    char err[256];
    aemp_msg_t *a = aemp_valf("{ssssss}", "profile", "worker", "nodelay", "off", "db_fanout_cpu", "0.5");
    assert_int_equal(aemp_configure(a, err, sizeof err), 0);
    aemp_msg_unref(a);
    /* the fan-out budget as given, its cap by default (fanout_pace.h) */
    assert_true(aemp__g.net.db_fanout_cpu == 0.5);
    assert_true(aemp__g.net.db_fanout_max_delay == 1.0);
    const char *id = aemp_node();
    assert_int_equal(strncmp(id, "w/", 2), 0);
    assert_int_equal(strlen(id), 12);   /* "w/" + 10 random characters */
    aemp_msg_t *l = aemp_listeners();
    assert_int_equal(aemp_msg_len(l), 1);
    assert_int_equal(strncmp(aemp_msg_str(l, 0, NULL), "127.0.0.1:", 10), 0);
    aemp_msg_unref(l);
    /* ports created now carry the configured ID */
    const char *p = aemp_port(NULL, NULL);
    assert_int_equal(aemp_node_len(p), strlen(id));
    /* once only */
    assert_int_equal(aemp_configure(NULL, err, sizeof err), AEMP_EAGAIN);
    assert_string_equal(err, "the node is already configured");
    assert_int_equal(aemp_configuref(err, sizeof err, "{s:s", "x"), AEMP_EINVAL);
    assert_non_null(strstr(err, "bad configure format"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bad_values, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(bad_rc_file, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(port_in_use, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(profile_and_once_only, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
