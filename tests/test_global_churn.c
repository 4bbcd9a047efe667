/* The batched database fan-out under churn, with real processes: two seeds
 * (global nodes), eight workers (half of them prefer the second seed as
 * master, so updates also travel between the global nodes) and this test
 * process, all watching family "churn".  "test_global_churn 3" runs three
 * (up to four) global nodes instead: every seed lists them all, each worker
 * lists only two, a different pair per worker (so every global node is the
 * master of some workers, and a worker never talks to the third), and the
 * views of all global nodes are checked as well.  While workers are killed with
 * SIGKILL and restarted under the same node ID, the live ones set and
 * delete keys and register and kill db_reg ports, in bursts.  At the end
 * every watcher's mirror and the master's merged view hold exactly the
 * live entries, with their values: none stale, none missing.
 *
 * The nodes are this program re-executed as "node <id> <binds> <seeds>";
 * they answer the requests "churn::set" [key], "churn::del" [key],
 * "churn::port" [reply] (a new port, db_reg'd; its ID is sent to reply),
 * "churn::kil" [port] and "churn::view" [reply] (their mirror). */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "churn-test-secret"
#define FAMILY "churn"
#define NWORK 8
#define MAXKEYS 512
#define MAXSEEDS 4

/* ------------------------------------------------------------ a node */

static aemp_msg_t *mirror;   /* this process's latest view of FAMILY (root: a map) */

static void on_family(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted,
                      void *arg)
{
    aemp_msg_unref(mirror);
    mirror = aemp_msg_ref(family);
}

static void n_set(aemp_msg_t *args, void *arg)
{
    const char *key = aemp_msg_str(args, 0, NULL);
    if (key)
        aemp_db_setf(FAMILY, key, "s", aemp_node());
}

static void n_del(aemp_msg_t *args, void *arg)
{
    const char *key = aemp_msg_str(args, 0, NULL);
    if (key)
        aemp_db_del(FAMILY, key);
}

static void ignore(aemp_msg_t *msg, void *arg)
{
}

static void n_port(aemp_msg_t *args, void *arg)
{
    const char *reply = aemp_msg_str(args, 0, NULL);
    const char *port = aemp_port(ignore, NULL);
    aemp_handle_t h;
    aemp_db_reg(FAMILY, port, aemp_valf("s", aemp_node()), &h);
    if (reply)
        aemp_sndf(reply, "s", port);
}

static void n_kil(aemp_msg_t *args, void *arg)
{
    const char *port = aemp_msg_str(args, 0, NULL);
    if (port)
        aemp_kilf(port, "s", "churn");
}

static void n_view(aemp_msg_t *args, void *arg)
{
    const char *reply = aemp_msg_str(args, 0, NULL);
    if (reply)
        aemp_sndf(reply, "sv", aemp_node(), mirror ? aemp_msg_root(mirror) : NULL);
}

static int node_main(const char *id, const char *binds, const char *seeds)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(120);
    aemp_set_log_level(1);
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b, s:i, s:i}", "nodeid", id, "secret",
                        SECRET, "binds", binds, "seeds", seeds, "norc", 1, "connect_interval", 2,
                        "monitor_timeout", 4) != 0) {
        fprintf(stderr, "%s: %s\n", id, err);
        return 1;
    }
    aemp_func_register("churn::set", n_set, NULL);
    aemp_func_register("churn::del", n_del, NULL);
    aemp_func_register("churn::port", n_port, NULL);
    aemp_func_register("churn::kil", n_kil, NULL);
    aemp_func_register("churn::view", n_view, NULL);
    aemp_handle_t h;
    aemp_db_mon(FAMILY, on_family, NULL, &h);
    signal(SIGTERM, SIG_DFL);
    aemp_run();
    return 0;
}

/* ------------------------------------------------------------ processes */

typedef struct proc {
    char id[16];
    char binds[32];
    const char *seeds;
    pid_t pid;               /* 0: dead */
} proc_t;

static proc_t seed[MAXSEEDS], work[NWORK];
static int nseeds = 2;
static char seeds_all[MAXSEEDS * 24], seeds_pair[MAXSEEDS][2 * 24];

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

static void start(proc_t *p)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_global_churn", "node", p->id, p->binds, p->seeds, (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
}

/* SIGKILL (churn) or SIGTERM (the end), then collect it (at most 5 s). */
static void stop(proc_t *p, int sig)
{
    if (!p->pid)
        return;
    kill(p->pid, sig);
    for (int i = 0; i < 500; i++) {
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* ------------------------------------------------------------ the model */

static struct {
    char key[96];
    int owner;               /* worker index */
} model[MAXKEYS];
static int nmodel, nextkey;

static void model_add(const char *key, int owner)
{
    assert_true(nmodel < MAXKEYS);
    snprintf(model[nmodel].key, sizeof model[nmodel].key, "%s", key);
    model[nmodel++].owner = owner;
}

static void model_del(int i)
{
    model[i] = model[--nmodel];
}

/* A random model entry that is a plain key (db_set) or a port (db_reg). */
static int model_pick(int port)
{
    int cand[MAXKEYS], n = 0;
    for (int i = 0; i < nmodel; i++)
        if ((strchr(model[i].key, '#') != NULL) == port)
            cand[n++] = i;
    return n ? cand[rand() % n] : -1;
}

/* 1 if map (a map value, or NULL) holds exactly the model's entries with
 * the owners' node IDs as values; else 0, with the difference on stderr. */
static int matches(const char *who, const aemp_val_t *map)
{
    size_t n = aemp_val_type(map) == AEMP_T_MAP ? aemp_val_len(map) : 0;
    int ok = n == (size_t)nmodel;
    for (int i = 0; i < nmodel; i++) {
        const aemp_val_t *v = aemp_val_get(map, model[i].key);
        const char *s = aemp_val_str(v, NULL);
        if (!s || strcmp(s, work[model[i].owner].id)) {
            if (ok)
                fprintf(stderr, "%s: %s is %s, not %s\n", who, model[i].key, s ? s : "missing",
                        work[model[i].owner].id);
            ok = 0;
        }
    }
    if (!ok && n != (size_t)nmodel)
        fprintf(stderr, "%s: %zu entries, %d live\n", who, n, nmodel);
    return ok;
}

/* ------------------------------------------------------------ requests */

static char *reply_text;
static int replied, views_ok, views_got;

static void on_port_reply(aemp_msg_t *msg, void *arg)
{
    const char *s = aemp_msg_str(msg, 0, NULL);
    free(reply_text);
    reply_text = s ? strdup(s) : NULL;
    replied = 1;
}

static void on_view(aemp_msg_t *msg, void *arg)
{
    views_got++;
    views_ok += matches(aemp_msg_str(msg, 0, NULL), aemp_msg_at(msg, 1));
}

/* Wait (bounded) until worker w answers at its node port.  A worker
 * listens on an ephemeral port, a new one after each restart: what this
 * node sends it before it has learned that port goes to the old address
 * and is dropped (logged, monitors fired), as for any node that cannot
 * be reached, and the model would expect entries that were never set. */
static void reachable(int w)
{
    ev_tstamp end = ev_time() + 20;
    for (;;) {
        aemp_msg_t *r = tu_call(work[w].id, aemp_msgf("s", "info"), 2);
        if (r) {
            aemp_msg_unref(r);
            return;
        }
        assert_true(ev_time() < end);
    }
}

static void call(int w, const char *func, const char *arg)
{
    assert_int_equal(aemp_snd_to_func(work[w].id, func, aemp_msgf("s", arg)), 0);
}

static int live_worker(void)
{
    for (;;) {
        int w = rand() % NWORK;
        if (work[w].pid)
            return w;
    }
}

/* ------------------------------------------------------------ set-up */

static int setup(void **state)
{
    srand((unsigned)time(NULL));
    int port[MAXSEEDS];
    size_t used = 0;
    for (int i = 0; i < nseeds; i++) {
        port[i] = free_port();
        used += (size_t)snprintf(seeds_all + used, sizeof seeds_all - used, "%s127.0.0.1:%d", i ? "," : "",
                                 port[i]);
    }
    /* pair i: seed i first (its master while it is up), then the next;
     * with two seeds the pairs are 12 and 21 */
    for (int i = 0; i < nseeds; i++)
        snprintf(seeds_pair[i], sizeof seeds_pair[i], "127.0.0.1:%d,127.0.0.1:%d", port[i],
                 port[(i + 1) % nseeds]);
    for (int i = 0; i < nseeds; i++) {
        snprintf(seed[i].id, sizeof seed[i].id, "seed%d", i + 1);
        snprintf(seed[i].binds, sizeof seed[i].binds, "127.0.0.1:%d", port[i]);
        seed[i].seeds = seeds_all;
        start(&seed[i]);
    }
    for (int i = 0; i < NWORK; i++) {
        snprintf(work[i].id, sizeof work[i].id, "w%d", i);
        snprintf(work[i].binds, sizeof work[i].binds, "127.0.0.1:0");
        work[i].seeds = seeds_pair[i % nseeds];
        start(&work[i]);
    }
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:[s], s:[s], s:b, s:i, s:i}", "nodeid", "tester",
                        "secret", SECRET, "binds", "127.0.0.1:0", "seeds", seeds_pair[nseeds - 1], "norc", 1,
                        "connect_interval", 2, "monitor_timeout", 4) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < NWORK; i++)
        stop(&work[i], SIGTERM);
    for (int i = 0; i < nseeds; i++)
        stop(&seed[i], SIGTERM);
    aemp_msg_unref(mirror);
    free(reply_text);
    aemp_shutdown();
    return 0;
}

/* ------------------------------------------------------------ the test */

/* Until every worker and seed (churn::view) and this node's mirror match
 * the model, at most `seconds`. */
static int all_agree(double seconds)
{
    const char *me = aemp_port(on_view, NULL);
    ev_tstamp end = ev_time() + seconds;
    while (ev_time() < end) {
        int asked = 0;
        views_ok = views_got = 0;
        for (int i = 0; i < NWORK; i++)
            if (work[i].pid) {
                call(i, "churn::view", me);
                asked++;
            }
        for (int i = 0; i < nseeds; i++) {
            aemp_snd_to_func(seed[i].id, "churn::view", aemp_msgf("s", me));
            asked++;
        }
        ev_tstamp t0 = ev_time();
        while (views_got < asked && ev_time() - t0 < 2)
            ev_run(aemp_loop(), EVRUN_ONCE);
        if (views_ok == asked && matches("tester", mirror ? aemp_msg_root(mirror) : NULL)) {
            aemp_kil(me, NULL);
            return 1;
        }
        tu_run_for(0.2);
    }
    aemp_kil(me, NULL);
    return 0;
}

static int merged_got, merged_ok;   /* the master answered; its answer matched */
static void on_merged(aemp_msg_t *r, void *arg)
{
    merged_ok = matches("master", aemp_msg_root(r));
    merged_got = 1;
}

static void every_watcher_ends_with_the_live_entries(void **state)
{
    aemp_handle_t h;
    assert_int_equal(aemp_db_mon(FAMILY, on_family, NULL, &h), 0);
    /* everybody is up: an empty family agrees everywhere */
    assert_true(all_agree(20));
    for (int k = 0; k < NWORK; k++)
        reachable(k);
    const char *me = aemp_port(on_port_reply, NULL);
    for (int round = 0; round < 24; round++) {
        /* a burst of sets and deletes on several workers */
        for (int j = 0; j < 6; j++) {
            char key[32];
            snprintf(key, sizeof key, "k%d", nextkey++);
            int w = live_worker();
            call(w, "churn::set", key);
            model_add(key, w);
        }
        for (int j = 0; j < 2; j++) {
            int i = model_pick(0);
            if (i >= 0) {
                call(model[i].owner, "churn::del", model[i].key);
                model_del(i);
            }
        }
        /* a registered port, and a registered port killed */
        int w = live_worker();
        replied = 0;
        call(w, "churn::port", me);
        assert_true(tu_run_until(&replied, 10));
        assert_non_null(reply_text);
        model_add(reply_text, w);
        int i = model_pick(1);
        if (i >= 0 && round % 2) {
            call(model[i].owner, "churn::kil", model[i].key);
            model_del(i);
        }
        /* every third round: kill -9 a worker, restart one killed before */
        if (round % 3 == 2) {
            for (int k = 0; k < NWORK; k++)
                if (!work[k].pid && rand() % 2) {
                    start(&work[k]);
                    reachable(k);
                }
            int victim = live_worker();
            stop(&work[victim], SIGKILL);
            for (int k = nmodel - 1; k >= 0; k--)
                if (model[k].owner == victim)
                    model_del(k);
        }
        tu_run_for(0.05 + (rand() % 100) / 1000.0);
    }
    aemp_kil(me, NULL);
    assert_true(all_agree(30));
    /* the master's merged view agrees too */
    merged_got = 0;
    assert_int_equal(aemp_db_family(FAMILY, on_merged, NULL), 0);
    assert_true(tu_run_until(&merged_got, 10));
    assert_int_equal(merged_ok, 1);
    aemp_db_mon_cancel(h);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "node"))
        return node_main(argv[2], argv[3], argv[4]);
    if (argc == 2) {   /* the number of global nodes */
        nseeds = atoi(argv[1]);
        if (nseeds < 2 || nseeds > MAXSEEDS) {
            fprintf(stderr, "usage: %s [global nodes: 2..%d]\n", argv[0], MAXSEEDS);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_watcher_ends_with_the_live_entries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
