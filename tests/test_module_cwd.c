/* Modules from the current directory, as the tutorial has it: a real
 * `aemp run` node started in a directory that holds mymod/chatserver.so
 * (Perl's layout for mymod::chatserver), with no module path configured,
 * serves "mymod::chatserver::client_connect" to another node that spawns
 * it; a function of a module that is nowhere makes it log, at its default
 * level, the files and directories it looked in.  One node per dialect
 * (the module search has none; the spawn request is each dialect's). */
#include "testutil.h"

#include "procutil.h"

#include <unistd.h>

#define SECRET "module-cwd-secret"

enum { N130, N202, NNODES };
static pu_node_t nodes[NNODES];
static const char *const node_ids[NNODES] = { "cwd130", "cwd202" };
static const char *const dialect_arg[NNODES] = { "1.30", "2.02" };
static char tmpdir[64];
static char rcenv[128];
static char logpath[NNODES][160];
static char cwd[1024];   /* the nodes' current directory, as getcwd has it */

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-modcwd-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rcenv, sizeof rcenv, "PERL_ANYEVENT_MP_RC=%s/rc", tmpdir);
    putenv(rcenv);
    unsetenv("AEMP_MODULE_PATH");
    char was[1024];
    if (!getcwd(was, sizeof was) || chdir(AEMP_TEST_CWD_DIR) != 0 || !getcwd(cwd, sizeof cwd))
        return -1;
    const char *env[] = { rcenv, NULL };   /* the default log level */
    int ok = 1;
    for (int i = 0; i < NNODES && ok; i++) {
        snprintf(logpath[i], sizeof logpath[i], "%s/%s.log", tmpdir, node_ids[i]);
        const char *args[] = { "nodeid", node_ids[i], "binds", "127.0.0.1:0", "secret", SECRET,
                               "dialect", dialect_arg[i], NULL };
        ok = pu_spawn(&nodes[i], env, args, logpath[i], 0) && pu_await(&nodes[i]);
    }
    if (chdir(was) != 0 || !ok)
        return -1;
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s]}", "nodeid", "cwdtester", "secret", SECRET, "binds",
                        "127.0.0.1:0") != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    for (int i = 0; i < NNODES; i++) {
        aemp_msg_t *a = aemp_msgf("s", nodes[i].addr);
        aemp_add_node(nodes[i].nodeid, a);
        aemp_msg_unref(a);
    }
    return 0;
}

static int group_teardown(void **state)
{
    int failed = 0;
    for (int i = 0; i < NNODES; i++) {
        int status = pu_stop(&nodes[i], SIGTERM);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s ended with status 0x%x; see %s\n", node_ids[i], status, logpath[i]);
            failed = 1;
        }
    }
    aemp_shutdown();
    if (failed)
        return -1;   /* the logs stay for a look */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The first line of node i's log that contains needle (malloc'd), waiting
 * up to 5 s for it; fails if there is none. */
static char *log_line(int i, const char *needle)
{
    double end = pu_now() + 5;
    for (;;) {
        char *log = pu_read_file(logpath[i]);
        char *p = strstr(log, needle);
        if (p) {
            char *line = strndup(p, strcspn(p, "\n"));
            free(log);
            return line;
        }
        if (pu_now() > end)
            fail_msg("no '%s' in the log of %s:\n%s", needle, node_ids[i], log);
        free(log);
        tu_run_for(0.05);
    }
}

static void spawned_from_the_current_directory(void **state)
{
    tu_box_t box = { NULL, 0 };
    const char *me = aemp_port(tu_box_put, &box);
    for (int i = 0; i < NNODES; i++) {
        char *id = aemp_spawn(nodes[i].nodeid, "mymod::chatserver::client_connect", aemp_msgf("s", me));
        assert_non_null(id);
        box.count = 0;
        assert_true(tu_run_until(&box.count, 5));
        char expect[300];
        snprintf(expect, sizeof expect, "[\"connected\",\"%s\"]", id);
        tu_assert_msg(box.last, expect);
        box.count = 0;
        aemp_sndf(id, "ss", "hello", me);
        assert_true(tu_run_until(&box.count, 5));
        tu_assert_msg(box.last, "[\"hello\"]");
        aemp_kil(id, NULL);
        free(id);
    }
    aemp_kil(me, NULL);
    tu_box_clear(&box);
}

static void a_miss_names_files_and_directories(void **state)
{
    for (int i = 0; i < NNODES; i++) {
        assert_int_equal(aemp_snd_to_func(nodes[i].nodeid, "mymod::nothere::fn", NULL), 0);
        char *line = log_line(i, "error processing node message from cwdtester: unable to resolve function "
                                 "'mymod::nothere::fn'");
        char want[1400];
        snprintf(want, sizeof want,
                 "error processing node message from cwdtester: unable to resolve function 'mymod::nothere::fn': "
                 "no module file found (tried mymod_nothere.so, mymod/nothere.so, mymod.so in %s (the current "
                 "directory), /",
                 cwd);
        if (strncmp(line, want, strlen(want)) || line[strlen(line) - 1] != ')')
            fail_msg("log line '%s' does not start with '%s' (then the built-in directory)", line, want);
        free(line);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spawned_from_the_current_directory),
        cmocka_unit_test(a_miss_names_files_and_directories),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
