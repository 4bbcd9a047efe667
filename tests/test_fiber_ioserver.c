/* Tests of examples/ioserver.c (tutorial scenario S14): a fiber port that
 * writes one file at a time with selective receive, fed with interleaved
 * requests and data by several local client fibers and by clients spawned
 * on a real `aemp run` peer (its aemp::ioclient service); every file's
 * bytes are checked.  Also: the data timeout kills the server with "die",
 * the server can be spawned as "ioserver::start", junk is dropped. */
#include "testutil.h"

#include "aemp_fiber.h"
#include "procutil.h"

#include <sys/stat.h>

#define SECRET "fiber-ioserver-secret"

/* examples/ioserver.c, compiled into this test without its main */
const char *ioserver_start(double timeout);
int ioserver_register(void);

static pu_node_t peer;
static char tmpdir[64];
static char rcenv[128];

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-iosrv-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:i}", "nodeid", "iotester",
                        "secret", SECRET, "binds", "127.0.0.1:0", "connect_interval", 3) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    const char *env[] = { rcenv, "AEMP_WARNLEVEL=2", NULL };
    const char *args[] = { "nodeid", "iopeer", "binds", "127.0.0.1:0", "secret", SECRET,
                           "connect_interval", "3", NULL };
    if (!pu_start(&peer, env, args))
        return -1;
    aemp_msg_t *a = aemp_msgf("s", peer.addr);
    aemp_add_node(peer.nodeid, a);
    aemp_msg_unref(a);
    return 0;
}

static int group_teardown(void **state)
{
    pu_stop(&peer, SIGTERM);
    aemp_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ helpers */

#define MAXWRITTEN 16
static aemp_msg_t *written[MAXWRITTEN];   /* ["written", path, bytes] messages */
static int nwritten;

static void on_written(aemp_msg_t *msg, void *arg)
{
    if (nwritten < MAXWRITTEN)
        written[nwritten] = aemp_msg_ref(msg);
    nwritten++;
}

static aemp_msg_t *death;
static int died;

static void on_death(aemp_msg_t *reason, void *arg)
{
    aemp_msg_unref(death);
    death = aemp_msg_ref(reason);
    died++;
}

/* Run the loop until *count >= n (bounded); 1 on success. */
static int wait_count(volatile int *count, int n, double seconds)
{
    ev_tstamp end = ev_time() + seconds;
    while (*count < n && ev_time() < end)
        ev_run(aemp_loop(), EVRUN_ONCE);
    return *count >= n;
}

static void reset(void)
{
    for (int i = 0; i < nwritten && i < MAXWRITTEN; i++) {
        aemp_msg_unref(written[i]);
        written[i] = NULL;
    }
    aemp_msg_unref(death);
    death = NULL;
    nwritten = died = 0;
}

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* Assert that file `name` holds exactly `expect`. */
static void assert_file(const char *name, const char *expect)
{
    char path[256];
    path_of(path, sizeof path, name);
    FILE *fh = fopen(path, "rb");
    if (!fh)
        fail_msg("%s does not exist", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fh);
    fclose(fh);
    buf[n] = 0;
    if (n != strlen(expect) || memcmp(buf, expect, n) != 0)
        fail_msg("%s: expected \"%s\", got \"%s\"", name, expect, buf);
}

/* A local client fiber: write_file, then each chunk after `delay`. */
struct client {
    const char *server, *notify;
    char path[256];
    const char *chunks[8];
    double delay;
    int stall;   /* never send the closing empty chunk */
};

static void client_body(void *arg)
{
    struct client *c = arg;
    const char *self = aemp_self();
    aemp_sndf(c->server, "ssss", "write_file", self, c->path, c->notify);
    for (int i = 0; i < 8 && c->chunks[i]; i++) {
        if (aemp_fiber_sleep(c->delay) != 0)
            return;
        aemp_sndf(c->server, "sss", "data", self, c->chunks[i]);
    }
    if (!c->stall)
        aemp_sndf(c->server, "sss", "data", self, "");
}

static char *concat(const char *const *chunks)
{
    static char buf[4096];
    buf[0] = 0;
    for (int i = 0; i < 8 && chunks[i]; i++)
        strcat(buf, chunks[i]);
    return buf;
}

/* -------------------------------------------------------------- tests */

static void interleaved_local_and_remote_clients(void **state)
{
    reset();
    const char *server = ioserver_start(5);
    assert_non_null(server);
    char server_id[256];
    snprintf(server_id, sizeof server_id, "%s", server);
    aemp_mon(server, on_death, NULL, NULL);
    const char *notify = aemp_port(on_written, NULL);

    /* four local clients with different paces */
    static struct client local[4] = {
        { .chunks = { "abc\n", "def\n" }, .delay = 0.003 },
        { .chunks = { "1\n", "2\n", "3\n", "4\n", "5\n" }, .delay = 0.001 },
        { .chunks = { "grüße ", "✓\n" }, .delay = 0.002 },
        { .chunks = { "x" }, .delay = 0 },
    };
    const char *local_names[4] = { "local0", "local1", "local2", "local3" };
    for (int i = 0; i < 4; i++) {
        local[i].server = server_id;
        local[i].notify = notify;
        path_of(local[i].path, sizeof local[i].path, local_names[i]);
        assert_non_null(aemp_port_async(client_body, &local[i]));
    }
    /* two clients on the peer node, spawned through its aemp::ioclient */
    const char *remote_chunks[2][4] = { { "remote ", "one\n", "end\n" },
                                        { "R2:", "α", "β", "γ" } };
    for (int i = 0; i < 2; i++) {
        char path[256], name[16];
        snprintf(name, sizeof name, "remote%d", i);
        path_of(path, sizeof path, name);
        /* [IOSERVER, PATH, DELAY, [CHUNK...], NOTIFY] */
        aemp_build_t *b = aemp_build_new();
        aemp_build_fmt(b, "ssf", server_id, path, 0.002 * (i + 1));
        aemp_build_array(b);
        for (int k = 0; k < 4 && remote_chunks[i][k]; k++)
            aemp_build_str(b, remote_chunks[i][k]);
        aemp_build_close(b);
        aemp_build_str(b, notify);
        aemp_msg_t *args = aemp_build_msg(b);
        assert_non_null(args);
        char *id = aemp_spawn(peer.nodeid, "aemp::ioclient", args);
        assert_non_null(id);
        free(id);
    }
    wait_count(&nwritten, 6, 20);
    assert_int_equal(nwritten, 6);
    assert_int_equal(died, 0);
    for (int i = 0; i < 4; i++)
        assert_file(local_names[i], concat(local[i].chunks));
    assert_file("remote0", "remote one\nend\n");
    assert_file("remote1", "R2:αβγ");
    /* the notifications carry the byte counts */
    for (int i = 0; i < nwritten; i++) {
        const char *path;
        int64_t bytes;
        assert_int_equal(aemp_msg_unpack(written[i], "*sI", &path, &bytes), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(bytes, st.st_size);
    }
    /* the server is still alive and serves the next request */
    static struct client again = { .chunks = { "again\n" } };
    again.server = server_id;
    again.notify = notify;
    path_of(again.path, sizeof again.path, "again");
    aemp_port_async(client_body, &again);
    wait_count(&nwritten, 7, 5);
    assert_int_equal(nwritten, 7);
    assert_file("again", "again\n");
    aemp_kil(server_id, NULL);
    assert_true(tu_run_until(&died, 5));
    tu_assert_msg(death, "[]");
}

static void data_timeout_kills_the_server(void **state)
{
    reset();
    const char *server = ioserver_start(0.3);
    aemp_mon(server, on_death, NULL, NULL);
    static struct client stalled = { .chunks = { "partial\n" }, .stall = 1 };
    stalled.server = server;
    stalled.notify = aemp_port(on_written, NULL);
    path_of(stalled.path, sizeof stalled.path, "stalled");
    const char *client = aemp_port_async(client_body, &stalled);
    char client_id[256];
    snprintf(client_id, sizeof client_id, "%s", client);
    ev_tstamp t0 = ev_time();
    assert_true(tu_run_until(&died, 5));
    assert_true(ev_time() - t0 >= 0.25);
    char expect[1024];
    snprintf(expect, sizeof expect, "[\"die\",\"timeout waiting for data from %s for %s\"]",
             client_id, stalled.path);
    tu_assert_msg(death, expect);
    assert_int_equal(nwritten, 0);
    assert_file("stalled", "partial\n");
}

static void spawned_by_name_and_junk_dropped(void **state)
{
    reset();
    assert_int_equal(ioserver_register(), 0);
    char *server = aemp_spawn(aemp_node(), "ioserver::start", aemp_msgf("f", 2.0));
    assert_non_null(server);
    aemp_mon(server, on_death, NULL, NULL);
    aemp_sndf(server, "s", "junk");                 /* logged and dropped */
    aemp_sndf(server, "ssi", "write_file", "x", 1);   /* malformed: dropped */
    static struct client c = { .chunks = { "spawned ", "ok\n" }, .delay = 0.001 };
    c.server = server;
    c.notify = aemp_port(on_written, NULL);
    path_of(c.path, sizeof c.path, "spawned");
    aemp_port_async(client_body, &c);
    assert_true(tu_run_until(&nwritten, 5));
    assert_file("spawned", "spawned ok\n");
    assert_int_equal(died, 0);
    /* an unopenable path kills it with "die" */
    aemp_sndf(server, "sss", "write_file", "src", "/nonexistent-dir/file");
    assert_true(tu_run_until(&died, 5));
    assert_non_null(death);
    tu_assert_val(aemp_msg_at(death, 0), "\"die\"");
    const char *text = aemp_msg_str(death, 1, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "open /nonexistent-dir/file: "));
    free(server);
    reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interleaved_local_and_remote_clients),
        cmocka_unit_test(data_timeout_kills_the_server),
        cmocka_unit_test(spawned_by_name_and_junk_dropped),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
