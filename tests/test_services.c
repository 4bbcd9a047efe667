/* Services end to end, with real processes (tutorial scenarios S11-S13):
 * `aemp run` nodes load the chat server module (examples/chat_server.c)
 * through the "services" key - from a profile of the rc file and from the
 * command line - or on demand when a client spawns one of its functions;
 * examples/chat_client processes chat through it.  Checked: messages flow
 * between clients; a service that fails to load is skipped and the node
 * runs on; kill -9 of the server node makes the clients print
 * "disconnected ..."; a restarted server gets them back; kill -9 of a client
 * makes the others read "<nick> (quits, ...)"; end of input ends a client.
 * This process is no node: it only starts, drives and stops the others, each
 * by its PID, with bounded waits. */
#define _GNU_SOURCE   /* pipe2 */
#include "testutil.h"

#include "procutil.h"

#include <sys/prctl.h>

#define SECRET "services-test-secret"

static char tmpdir[64];
static char rcenv[128];
static const char *env[] = { rcenv, "AEMP_MODULE_PATH=" CHAT_MODULE_DIR, "AEMP_WARNLEVEL=2", NULL };

/* ------------------------------------------------------- processes */

typedef struct client {
    pid_t pid;
    int in, out;           /* its stdin and stdout */
    const char *nick;
    char seen[16384];      /* every line it printed, for failure messages */
} client_t;

/* Start argv[0] with our environment entries; *in (if not NULL) becomes
 * the write end of its stdin, *out the read end of its stdout.  Our pipe
 * ends are close-on-exec, so that no other child holds them (a client must
 * see the end of its input), and the child dies with this process, so that
 * nothing outlives a test that crashes or times out. */
static pid_t start_proc(const char *const *argv, int *in, int *out)
{
    int ip[2] = { -1, -1 }, op[2];
    if ((in && pipe2(ip, O_CLOEXEC) < 0) || pipe2(op, O_CLOEXEC) < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (in)
            dup2(ip[0], 0);
        dup2(op[1], 1);
        for (int i = 0; env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (in) {
        close(ip[0]);
        *in = ip[1];
    }
    close(op[1]);
    *out = op[0];
    return pid;
}

/* Start `aemp run ARGS...` with our environment and wait up to 10 s for
 * its "<nodeid> listening on <addr>" line. */
static int start_node(pu_node_t *n, const char *const *args)
{
    return pu_start(n, env, args);
}

static int start_client(client_t *c, const char *nick, int spawn_mode, const char *server, const char *seed)
{
    const char *argv[] = { CHAT_CLIENT_BIN, "-s", SECRET, nick, server, seed, NULL, NULL };
    if (spawn_mode) {
        memmove(argv + 2, argv + 1, 5 * sizeof *argv);
        argv[1] = "-2";
    }
    c->nick = nick;
    c->seen[0] = 0;
    c->pid = start_proc(argv, &c->in, &c->out);
    return c->pid > 0;
}

/* Wait up to `seconds` for a line of c's output that contains text. */
static void expect(client_t *c, const char *text, double seconds)
{
    double end = pu_now() + seconds;
    char line[1024];
    while (pu_now() < end) {
        if (!pu_read_line(c->out, line, sizeof line, end - pu_now()))
            break;
        if (strlen(c->seen) + strlen(line) + 2 < sizeof c->seen) {
            strcat(c->seen, line);
            strcat(c->seen, "\n");
        }
        if (strstr(line, text))
            return;
    }
    fail_msg("%s: no line with '%s' within %g s; its output:\n%s", c->nick, text, seconds, c->seen);
}

static void say(client_t *c, const char *line)
{
    size_t n = strlen(line);
    assert_int_equal(write(c->in, line, n), (ssize_t)n);
    assert_int_equal(write(c->in, "\n", 1), 1);
}

/* Stop by PID (signal, then SIGKILL after 5 s); returns the wait status. */
static int stop_client(client_t *c, int sig)
{
    if (c->pid <= 0)
        return -1;
    pu_node_t n = { .pid = c->pid, .out = c->out };
    int status = pu_stop(&n, sig);
    close(c->in);
    c->pid = 0;
    return status;
}

/* End of input: the client says bye and exits by itself (bounded wait). */
static void close_input(client_t *c)
{
    close(c->in);
    c->in = -1;
    expect(c, "bye", 5);
    int status = -1;
    double end = pu_now() + 5;
    while (pu_now() < end && waitpid(c->pid, &status, WNOHANG) != c->pid)
        usleep(10000);
    if (pu_now() >= end) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &status, 0);
    }
    close(c->out);
    c->pid = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ------------------------------------------------------- the processes */

enum { ALICE, BOB, CAROL, DAVE, NCLIENTS };
static client_t clients[NCLIENTS];
static pu_node_t server;

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-services-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    /* the server's profile: a broken service first, then the chat module */
    char path[128];
    snprintf(path, sizeof path, "%s/rc", tmpdir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{ \"profile\": { \"chatsrv\": { \"nodeid\": \"chatsrv\", \"secret\": \"%s\",\n"
               "  \"services\": [\"nope::\", \"chat::server::\"] } } }\n", SECRET);
    fclose(f);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* After each test, also a failed one: stop whatever still runs. */
static int stop_all(void **state)
{
    for (int i = 0; i < NCLIENTS; i++)
        stop_client(&clients[i], SIGTERM);
    pu_stop(&server, SIGTERM);
    return 0;
}

static int group_teardown(void **state)
{
    stop_all(state);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- tests */

/* S11 + S13: the server node loads the chat module from its profile's
 * services (skipping one that does not exist); two clients chat; the server
 * is killed and restarted (services from the command line this time); a
 * client is killed. */
static void chat_service_from_profile(void **state)
{
    const char *args[] = { "chatsrv", "binds", "127.0.0.1:0", NULL };
    assert_true(start_node(&server, args));
    assert_string_equal(server.nodeid, "chatsrv");
    char addr[64];
    snprintf(addr, sizeof addr, "%s", server.addr);

    client_t *alice = &clients[ALICE], *bob = &clients[BOB];
    assert_true(start_client(alice, "alice", 0, "chatsrv", addr));
    expect(alice, "connecting to chatsrv...", 5);
    expect(alice, "alice (joins)", 10);
    assert_true(start_client(bob, "bob", 0, "chatsrv", addr));
    expect(bob, "bob (joins)", 10);
    expect(alice, "bob (joins)", 5);

    say(alice, "hello bob");
    expect(bob, "alice: hello bob", 5);
    expect(alice, "alice: hello bob", 5);
    say(bob, "hi alice");
    expect(alice, "bob: hi alice", 5);

    /* the server node dies: both clients notice */
    pu_stop(&server, SIGKILL);
    expect(alice, "disconnected transport_error", 10);
    expect(bob, "disconnected transport_error", 10);

    /* it comes back on the same address, services given on the command line */
    const char *again[] = { "nodeid", "chatsrv", "binds", addr, "secret", SECRET, "services", "chat::server::", NULL };
    assert_true(start_node(&server, again));
    expect(alice, "alice (joins)", 15);
    expect(bob, "bob (joins)", 15);
    say(bob, "back again");
    expect(alice, "bob: back again", 5);

    /* a client dies: the others read why */
    stop_client(bob, SIGKILL);
    expect(alice, "bob (quits, transport_error", 10);

    close_input(alice);
    pu_stop(&server, SIGTERM);
}

/* S12 + S13: a node without services; a client spawns the module's
 * client_connect there, which loads the module on demand; an S11 client
 * joins the server port the module created; they chat; one leaves. */
static void chat_module_loaded_on_demand(void **state)
{
    const char *args[] = { "nodeid", "chatsrv2", "binds", "127.0.0.1:0", "secret", SECRET, NULL };
    assert_true(start_node(&server, args));
    char addr[64];
    snprintf(addr, sizeof addr, "%s", server.addr);

    client_t *carol = &clients[CAROL], *dave = &clients[DAVE];
    assert_true(start_client(carol, "carol", 1, "chatsrv2", addr));
    expect(carol, "carol (joins)", 10);
    assert_true(start_client(dave, "dave", 0, "chatsrv2", addr));
    expect(dave, "dave (joins)", 10);
    expect(carol, "dave (joins)", 5);

    say(carol, "spawned and loaded");
    expect(dave, "carol: spawned and loaded", 5);
    say(dave, "joined the port");
    expect(carol, "dave: joined the port", 5);

    /* leaving normally: an empty reason */
    close_input(dave);
    expect(carol, "dave (quits, )", 5);

    /* the server node dies and returns: the spawning client spawns again */
    pu_stop(&server, SIGKILL);
    expect(carol, "disconnected transport_error", 10);
    const char *again[] = { "nodeid", "chatsrv2", "binds", addr, "secret", SECRET, NULL };
    assert_true(start_node(&server, again));
    expect(carol, "carol (joins)", 15);
    say(carol, "still here");
    expect(carol, "carol: still here", 5);

    stop_client(carol, SIGKILL);
    pu_stop(&server, SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(chat_service_from_profile, stop_all),
        cmocka_unit_test_teardown(chat_module_loaded_on_demand, stop_all),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
