/* Loadable modules and services, in one process: the "services" key of
 * configure (modules, functions with and without arguments, failures that
 * are logged while the node keeps running), spawn of a function whose
 * module is not loaded yet, the package chain, missing and broken modules
 * (init failure, a non-ELF file, an undefined symbol, no entry point) whose
 * error reaches the spawner's monitor, node-port requests and "can" that
 * load modules, and aemp_module_load. The test modules are
 * tests/modules/tmod.c. */
#include "testutil.h"

#include "aemp_module.h"

#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];
static void assert_logged(const char *text)
{
    if (!strstr(tu_log, text))
        fail_msg("missing log line '%s' in:\n%s", text, tu_log);
}

static aemp_msg_t *inbox;
static int received;
static void on_msg(aemp_msg_t *m, void *arg)
{
    aemp_msg_unref(inbox);
    inbox = aemp_msg_ref(m);
    received++;
}

static aemp_msg_t *reason;
static int fired;
static void on_mon(aemp_msg_t *r, void *arg)
{
    aemp_msg_unref(reason);
    reason = aemp_msg_ref(r);
    fired++;
}

/* Spawn func locally and wait for the monitor (bounded); returns the die
 * message (borrowed from `reason`). */
static const char *spawn_and_wait_death(const char *func)
{
    char *id = aemp_spawn(aemp_node(), func, NULL);
    assert_non_null(id);
    fired = 0;
    assert_int_equal(aemp_mon(id, on_mon, NULL, NULL), 0);
    free(id);
    assert_true(tu_run_until(&fired, 5));
    assert_string_equal(aemp_msg_str(reason, 0, NULL), "die");
    return aemp_msg_str(reason, 1, NULL);
}

/* Fail unless text starts with "<head>tried <files> in <the search
 * path>": the directories of this test (AEMP_MODULE_PATH, then
 * module_path as configure_starts_services sets it, then the current
 * directory), then the built-in one, then tail. */
static void assert_miss(const char *text, const char *head, const char *files, const char *tail)
{
    char cwd[1024], want[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%stried %s in %s, /nonexistent, %s, %s (the current directory), ", head, files,
             tmpdir, AEMP_TEST_MODULE_DIR, cwd);
    if (strncmp(text, want, strlen(want)))
        fail_msg("got '%s', expected it to start with '%s'", text, want);
    const char *rest = text + strlen(want);
    if (!strchr(rest, '/') || strlen(rest) < strlen(tail) || strcmp(rest + strlen(rest) - strlen(tail), tail))
        fail_msg("got '%s', expected the built-in directory and '%s' after '%s'", text, tail, want);
}

/* The log line that contains needle (borrowed from tu_log up to its end
 * of line, copied into a static buffer). */
static const char *log_line(const char *needle)
{
    static char line[4096];
    const char *p = strstr(tu_log, needle);
    if (!p)
        fail_msg("missing log line '%s' in:\n%s", needle, tu_log);
    size_t n = strcspn(p, "\n");
    snprintf(line, sizeof line, "%.*s", (int)n, p);
    return line;
}

/* Send msg and wait for one message to the port `me`. */
static aemp_msg_t *wait_msg(void)
{
    assert_true(tu_run_until(&received, 5));
    received = 0;
    return inbox;
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-module-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    /* the environment names only the scratch directory (broken modules);
     * the built test modules come from the "module_path" key */
    char env[128];
    snprintf(env, sizeof env, "%s", tmpdir);
    setenv("AEMP_MODULE_PATH", env, 1);
    aemp_log_hook_add(tu_log_hook, NULL);
    aemp_set_log_level(AEMP_LOG_CRIT);   /* the expected errors go to the hook only */
    return 0;
}

static int group_teardown(void **state)
{
    tu_drain();
    aemp_shutdown();
    aemp_msg_unref(inbox);
    aemp_msg_unref(reason);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- tests */

static void configure_starts_services(void **state)
{
    char err[512];
    aemp_msg_t *args = aemp_valf("{s:b, s:s, s:[], s:[s], s:[s, [s, i, s], s, s, s, s, [s, s]]}", "norc", 1,
                                 "nodeid", "svctest", "binds", "module_path", "/nonexistent:" AEMP_TEST_MODULE_DIR,
                                 "services", "tmod::svc::", "tmod::svc::start", 1, "x", "tmod::svc::noargs",
                                 "tmod::missing::fn", "tmod::initfail::", "nope::", "tmod::svc::start", "y");
    int r = aemp_configure(args, err, sizeof err);
    aemp_msg_unref(args);
    if (r != 0)
        fail_msg("configure: %s", err);
    assert_string_equal(aemp_node(), "svctest");

    /* failures are logged, the node runs on */
    assert_logged("service 'tmod::missing::fn' not started: unable to resolve function 'tmod::missing::fn'");
    assert_logged("service 'tmod::initfail::' not started: module 'tmod::initfail': aemp_module_init returned 7");
    assert_miss(log_line("service 'nope::' not started"), "service 'nope::' not started: module 'nope' not found: ",
                "nope.so", "");

    /* what the module saw, in order */
    const char *me = aemp_port(on_msg, NULL);
    received = 0;
    assert_int_equal(aemp_snd_to_func(aemp_node(), "tmod::svc::report", aemp_msgf("s", me)), 0);
    tu_assert_msg(wait_msg(),
                   "[[[\"init\",\"tmod::svc\"],[\"start\",1,\"x\"],[\"noargs\",0],[\"start\",\"y\"]]]");
    aemp_kil(me, NULL);
}

static void spawn_loads_the_module(void **state)
{
    const char *me = aemp_port(on_msg, NULL);
    received = 0;
    char *id = aemp_spawn(aemp_node(), "tmod::good::echo", NULL);
    assert_non_null(id);
    fired = 0;
    aemp_mon(id, on_mon, NULL, NULL);
    aemp_sndf(id, "sis", "hi", 42, me);
    tu_assert_msg(wait_msg(), "[\"hi\",42]");
    assert_int_equal(fired, 0);

    /* a second spawn does not load it again; init ran outside port context */
    char *id2 = aemp_spawn(aemp_node(), "tmod::good::echo", NULL);
    aemp_sndf(id2, "ss", "again", me);
    tu_assert_msg(wait_msg(), "[\"again\"]");
    aemp_snd_to_func(aemp_node(), "tmod::good::inits", aemp_msgf("s", me));
    tu_assert_msg(wait_msg(), "[1,true]");
    assert_logged("loading module 'tmod::good' from " AEMP_TEST_MODULE_DIR "/tmod_good.so");
    aemp_kil(id, NULL);
    aemp_kil(id2, NULL);
    aemp_kil(me, NULL);
    assert_true(tu_run_until(&fired, 5));
    free(id);
    free(id2);
}

static void package_chain(void **state)
{
    const char *me = aemp_port(on_msg, NULL);
    received = 0;
    char *id = aemp_spawn(aemp_node(), "tmod::chain::a::b::fn", aemp_msgf("s", me));
    assert_non_null(id);
    tu_assert_msg(wait_msg(), "[\"chain-ok\"]");
    /* longest package first, missing ones skipped */
    const char *b = strstr(tu_log, "module 'tmod::chain::a::b' not found");
    const char *a = strstr(tu_log, "module 'tmod::chain::a' not found");
    const char *m = strstr(tu_log, "loading module 'tmod::chain' from");
    assert_non_null(b);
    assert_non_null(a);
    assert_non_null(m);
    assert_true(b < a && a < m);
    free(id);
    aemp_kil(me, NULL);
}

/* A miss names every file it looked for (the flat name and Perl's
 * layout, for each package of the chain) and every directory. */
static void missing_module(void **state)
{
    assert_miss(spawn_and_wait_death("tmod::nothere::fn"),
                "unable to resolve function 'tmod::nothere::fn': no module file found (",
                "tmod_nothere.so, tmod/nothere.so, tmod.so", ")");
    assert_miss(spawn_and_wait_death("My::Chat::Server::fn"),
                "unable to resolve function 'My::Chat::Server::fn': no module file found (",
                "my_chat_server.so, My/Chat/Server.so, my_chat.so, My/Chat.so, my.so, My.so", ")");
    /* a loaded module that lacks the function: the chain runs out */
    assert_miss(spawn_and_wait_death("tmod::good::nosuch"),
                "unable to resolve function 'tmod::good::nosuch': module tmod::good does not register it, and no "
                "other module file was found (",
                "tmod.so", ")");
    assert_string_equal(spawn_and_wait_death("::main_only"),
                        "unable to resolve function '::main_only': it is not registered and names no module");
}

/* Perl's layout in the current directory: mymod::chatserver is
 * ./mymod/chatserver.so, found with no search path configured for it. */
static void module_from_the_current_directory(void **state)
{
    char was[1024], cwd[1024];
    assert_non_null(getcwd(was, sizeof was));
    assert_int_equal(chdir(AEMP_TEST_CWD_DIR), 0);
    assert_non_null(getcwd(cwd, sizeof cwd));
    const char *me = aemp_port(on_msg, NULL);
    received = 0;
    char *id = aemp_spawn(aemp_node(), "mymod::chatserver::client_connect", aemp_msgf("s", me));
    assert_non_null(id);
    char expect[512];
    snprintf(expect, sizeof expect, "[\"connected\",\"%s\"]", id);
    tu_assert_msg(wait_msg(), expect);
    aemp_sndf(id, "ss", "hello", me);
    tu_assert_msg(wait_msg(), "[\"hello\"]");
    char line[1200];
    snprintf(line, sizeof line, "loading module 'mymod::chatserver' from %s/mymod/chatserver.so", cwd);
    assert_logged(line);
    aemp_kil(id, NULL);
    aemp_kil(me, NULL);
    free(id);
    assert_int_equal(chdir(was), 0);
}

static void init_failure_reaches_the_monitor(void **state)
{
    /* failed at configure time already: the error is remembered; the
     * missing "tmod::initfail::x" before it is skipped */
    assert_string_equal(spawn_and_wait_death("tmod::initfail::x::fn"),
                        "module 'tmod::initfail': aemp_module_init returned 7");
    assert_string_equal(spawn_and_wait_death("tmod::initfail::other"),
                        "module 'tmod::initfail': aemp_module_init returned 7");
}

static void broken_files_reach_the_monitor(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tmod_broken.so", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an ELF shared object\n", f);
    fclose(f);
    const char *e = spawn_and_wait_death("tmod::broken::fn");
    assert_true(!strncmp(e, "module 'tmod::broken': ", 23));
    assert_non_null(strstr(e, "tmod_broken.so"));
    assert_logged(e);   /* and logged */

    e = spawn_and_wait_death("tmod::undef::fn");
    assert_true(!strncmp(e, "module 'tmod::undef': ", 22));
    assert_non_null(strstr(e, "aemp_no_such_function_anywhere"));

    e = spawn_and_wait_death("tmod::noinit::fn");
    char expect[512];
    snprintf(expect, sizeof expect, "module 'tmod::noinit': no aemp_module_init in %s/tmod_noinit.so",
             AEMP_TEST_MODULE_DIR);
    assert_string_equal(e, expect);
}

static void node_port_requests_load_modules(void **state)
{
    const char *me = aemp_port(on_msg, NULL);
    received = 0;
    /* a request naming a function of a module that is not loaded yet */
    assert_false(strstr(tu_log, "loading module 'tmod::rpc'"));
    aemp_snd_to_func(aemp_node(), "tmod::rpc::hello", aemp_msgf("s", me));
    tu_assert_msg(wait_msg(), "[\"hello from rpc\"]");
    assert_logged("loading module 'tmod::rpc' from");
    /* "can" knows it now (it answers from what is loaded, never loads) */
    aemp_sndf(aemp_node(), "sss", "can", "tmod::rpc::hello", me);
    tu_assert_msg(wait_msg(), "[\"1\"]");
    aemp_sndf(aemp_node(), "sss", "can", "tmod::nothere::x", me);
    tu_assert_msg(wait_msg(), "[\"\"]");
    /* an unresolvable request is logged (at level 1, with what was
     * looked for where), not answered */
    aemp_snd_to_func(aemp_node(), "tmod::nothere::y", aemp_msgf("s", me));
    tu_run_for(0.1);
    assert_int_equal(received, 0);
    char head[256];
    snprintf(head, sizeof head, "error processing node message from %s: unable to resolve function "
             "'tmod::nothere::y': no module file found (", aemp_node());
    assert_miss(log_line(head), head, "tmod_nothere.so, tmod/nothere.so, tmod.so", ")");
    aemp_kil(me, NULL);
}

static void module_load_api(void **state)
{
    char err[512];
    assert_int_equal(aemp_module_load("tmod::good", err, sizeof err), 0);
    assert_int_equal(aemp_module_load("TMod::Good", err, sizeof err), 0);   /* same file, loaded */
    assert_int_equal(aemp_module_load("tmod::absent", err, sizeof err), AEMP_ENOENT);
    assert_miss(err, "module 'tmod::absent' not found: ", "tmod_absent.so, tmod/absent.so", "");
    assert_int_equal(aemp_module_load("tmod::initfail", err, sizeof err), AEMP_EIO);
    assert_string_equal(err, "module 'tmod::initfail': aemp_module_init returned 7");
    const char *bad[] = { "", "../x", "a/b", "a::", "::a", "a:::b", "a:b", "a b", NULL };
    for (int i = 0; bad[i]; i++)
        assert_int_equal(aemp_module_load(bad[i], err, sizeof err), AEMP_EINVAL);
    assert_int_equal(aemp_module_load(NULL, NULL, 0), AEMP_EINVAL);

    /* spawn's own argument check */
    assert_null(aemp_spawn(aemp_node(), "nocolons", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(configure_starts_services),
        cmocka_unit_test(spawn_loads_the_module),
        cmocka_unit_test(package_chain),
        cmocka_unit_test(missing_module),
        cmocka_unit_test(module_from_the_current_directory),
        cmocka_unit_test(init_failure_reaches_the_monitor),
        cmocka_unit_test(broken_files_reach_the_monitor),
        cmocka_unit_test(node_port_requests_load_modules),
        cmocka_unit_test(module_load_api),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
