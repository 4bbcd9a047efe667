/* aemp_net_cmds.c - the commands that need the network: `run` (a node
 * that runs until SIGTERM/SIGINT) and the protocol commands snd, cal, mon,
 * trace, nodes and db, which configure a throw-away client node first.
 * eval, shell and restart need a Perl interpreter and are refused.
 */
#include "aemp_cli.h"

#include "table.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SND_TIMEOUT 5.0
#define CAL_TIMEOUT 5.0
#define TRACE_TIMEOUT 15.0
#define NODES_WAIT 3.0
#define DB_TIMEOUT 5.0
#define GLOBALS_WAIT 2.0

/* The outcome of the running protocol command. */
static struct {
    const char *cmd;   /* for messages from callbacks */
    int done;
    int code;
} st;

/* End the command with exit code `code` (the first call wins). */
static void finish(int code)
{
    if (st.done)
        return;
    st.done = 1;
    st.code = code;
    aemp_stop();
}

/* Timer callback: the command took too long. */
static void on_timeout(void *arg)
{
    if (st.done)
        return;
    fprintf(stderr, "aemp: %s: timeout after %g s\n", st.cmd, *(const double *)arg);
    finish(CLI_FAIL);
}

/* Print the elements of a message or reason separated by spaces, from
 * element `from` on, and a newline (see cli_print_val). */
static void print_joined(FILE *f, const aemp_msg_t *m, size_t from)
{
    for (size_t i = from; i < aemp_msg_len(m); i++) {
        if (i > from)
            fputc(' ', f);
        cli_print_val(f, aemp_msg_at(m, i));
    }
    fputc('\n', f);
    fflush(f);
}

/* If neither AEMP_WARNLEVEL nor PERL_ANYEVENT_MP_WARNLEVEL is set, log
 * only warnings and errors. */
static void quiet_by_default(void)
{
    const char *a = getenv("AEMP_WARNLEVEL"), *b = getenv("PERL_ANYEVENT_MP_WARNLEVEL");
    if (!(a && *a) && !(b && *b))
        aemp_set_log_level(AEMP_LOG_WARN);
}

/* Save pending rc changes (so that the node sees them), then configure
 * the node with args (a jansson object as the rc-file code builds it,
 * borrowed).  Returns an exit code. */
static int configure_node(cli_t *c, const json_t *args)
{
    if (cli_save(c) < 0)
        return CLI_FAIL;
    aemp_msg_t *m = aemp_msg_from_json(args);
    if (!m) {
        cli_err(c, "the configure arguments are nested too deeply");
        return CLI_FAIL;
    }
    char err[1024];
    int r = aemp_configure(m, err, sizeof err);
    aemp_msg_unref(m);
    if (r < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Configure the throw-away client node of a protocol command. */
static int client(cli_t *c)
{
    quiet_by_default();
    st.cmd = c->cmd;
    st.done = 0;
    st.code = 0;
    json_t *args = cli_client_config(c);
    if (!args)
        return CLI_FAIL;
    int rc = configure_node(c, args);
    json_decref(args);
    return rc;
}

/* Run the loop until the command finishes, free the node, return the
 * command's exit code. */
static int wait_done(void)
{
    if (!st.done)
        aemp_run();
    aemp_shutdown();
    return st.code;
}

/* The PORT argument: a port or node ID with a non-empty node part. */
static const char *port_arg(cli_t *c, const char *what)
{
    const char *port = cli_str_arg(c, what);
    if (port && (!aemp_node_len(port) || port[0] == '#')) {
        cli_err(c, "'%s' is not a port or node ID", port);
        return NULL;
    }
    return port;
}

/* Consume the next argument if it is the string flag (e.g. "--dot"). */
static bool flag_arg(cli_t *c, const char *flag)
{
    const char *s = cli_left(c) ? aemp_val_str(aemp_msg_at(c->args, c->pos), NULL) : NULL;
    if (!s || strcmp(s, flag))
        return false;
    c->pos++;
    return true;
}

/* ----------------------------------------------------- --dot: globals */

static int globals_waiting;

/* The master's answer: the keys of 'g are the global nodes. */
static void globals_reply(aemp_msg_t *keys, void *arg)
{
    if (!globals_waiting)
        return;
    const aemp_val_t *a = aemp_msg_root(keys);
    for (size_t i = 0; i < aemp_val_len(a); i++) {
        size_t len;
        const char *id = aemp_val_str(aemp_val_at(a, i), &len);
        if (id && strlen(id) == len)
            cli_graph_node(arg, id, CLI_NODE_GLOBAL);
    }
    globals_waiting = 0;
    aemp_stop();
}

/* No answer in time (no master: e.g. a 1.30 network): draw without. */
static void globals_timeout(void *arg)
{
    globals_waiting = 0;
    aemp_stop();
}

/* Mark the global nodes in g, asking the client's master (at most
 * GLOBALS_WAIT seconds); runs the loop again after the command's end. */
static void mark_globals(cli_graph_t *g)
{
    globals_waiting = 1;
    if (aemp_db_keys("'g", globals_reply, g) < 0)
        return;
    aemp_after_cb(GLOBALS_WAIT, globals_timeout, NULL, NULL);
    aemp_run();
    globals_waiting = 0;
}

/* ------------------------------------------------------------------ run */

static ev_signal sigterm_w, sigint_w, sighup_w;

/* SIGTERM / SIGINT: leave the loop. */
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    aemp_log(AEMP_LOG_INFO, "signal %d received, shutting down", w->signum);
    aemp_stop();
}

/* SIGHUP: what a daemon without a log file of its own does - say so and go
 * on (the node logs to stderr, so there is nothing to reopen). */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    aemp_log(AEMP_LOG_WARN, "SIGHUP received and ignored (stop the node with SIGTERM or SIGINT)");
}

/* run [PROFILE] [KEY VALUE...]: configure a node and run it. */
int cli_cmd_run(cli_t *c, const cli_cmd_t *cmd)
{
    const char *profile = NULL;
    if (cli_left(c) % 2 && !(profile = cli_str_arg(c, "PROFILE")))
        return CLI_USAGE;
    if (profile && aemp__config_known_key(profile)) {
        cli_err(c, "'%s' is a configuration key, not a profile name: is the value of a KEY VALUE "
                   "pair missing? (an odd number of words makes the first one the profile)", profile);
        return CLI_USAGE;
    }
    json_t *args = cli_pairs(c);
    if (!args)
        return CLI_USAGE;
    if (profile)
        json_object_set_new(args, "profile", json_string(profile));
    int watchdog = cli_watchdog();
    if (watchdog >= 0) {   /* the supervisor: the node ran (and stopped) in a child */
        json_decref(args);
        fflush(stdout);
        exit(watchdog);
    }
    cli_services_register();
    int rc = configure_node(c, args);
    json_decref(args);
    if (rc != CLI_OK)
        return rc;
    if (cli_services_echo_port() < 0)
        cli_err(c, "warning: cannot create the port %s#echo", aemp_node());

    printf("%s listening on ", aemp_node());
    aemp_msg_t *l = aemp_listeners();
    for (size_t i = 0; i < aemp_msg_len(l); i++) {
        const char *addr = aemp_msg_str(l, i, NULL);
        printf("%s%s", i ? "," : "", addr ? addr : "?");
    }
    aemp_msg_unref(l);
    putchar('\n');
    fflush(stdout);

    struct ev_loop *loop = aemp_loop();
    ev_signal_init(&sigterm_w, on_signal, SIGTERM);
    ev_signal_init(&sigint_w, on_signal, SIGINT);
    ev_signal_init(&sighup_w, on_hup, SIGHUP);
    ev_signal_start(loop, &sigterm_w);
    ev_signal_start(loop, &sigint_w);
    ev_signal_start(loop, &sighup_w);
    aemp_run();
    ev_signal_stop(loop, &sigterm_w);
    ev_signal_stop(loop, &sigint_w);
    ev_signal_stop(loop, &sighup_w);
    aemp_shutdown();
    return cli_services_restart_asked() ? CLI_WATCHDOG_RESTART : CLI_OK;
}

/* ------------------------------------------------------------------ snd */

/* The relayed confirmation (or anything else) reached the reply port;
 * nothing is printed once the command has failed. */
static void snd_reply(aemp_msg_t *msg, void *arg)
{
    if (st.done)
        return;
    print_joined(stdout, msg, 0);
    finish(CLI_OK);
}

/* The destination died: an abnormal reason means failure (said on stderr);
 * after a normal death the message was delivered, so wait for the
 * confirmation. */
static void snd_died(aemp_msg_t *reason, void *arg)
{
    if (!aemp_msg_len(reason) || st.done)
        return;
    fprintf(stderr, "aemp: snd: %s died: ", (const char *)arg);
    print_joined(stderr, reason, 0);
    finish(CLI_FAIL);
}

/* snd PORT ARGS...: send, then prove delivery with a relay through the
 * destination's node. */
int cli_cmd_snd(cli_t *c, const cli_cmd_t *cmd)
{
    static const double timeout = SND_TIMEOUT;
    const char *port = port_arg(c, "PORT");
    if (!port)
        return CLI_USAGE;
    aemp_msg_t *msg = cli_rest(c);
    int rc = client(c);
    if (rc != CLI_OK) {
        aemp_msg_unref(msg);
        return rc;
    }
    int r = aemp_snd(port, msg);
    if (r < 0) {
        cli_err(c, "cannot send to '%s': %s", port, aemp_strerror(r));
        aemp_shutdown();
        return CLI_USAGE;
    }
    aemp_mon(port, snd_died, (void *)port, NULL);
    const char *reply = aemp_port(snd_reply, NULL);
    aemp_snd_on(port, reply, aemp_msgf("s", "message sent successfully"));
    aemp_after_cb(timeout, on_timeout, (void *)&timeout, NULL);
    return wait_done();
}

/* ------------------------------------------------------------------ cal */

/* The reply (or NULL: timeout). */
static void cal_reply(aemp_msg_t *reply, void *arg)
{
    if (st.done)
        return;
    if (!reply) {
        fprintf(stderr, "aemp: cal: no reply within %g s\n", CAL_TIMEOUT);
        finish(CLI_FAIL);
        return;
    }
    char *s = aemp_val_text(aemp_msg_root(reply));
    size_t n = strlen(s);
    if (n >= 2)
        printf("%.*s\n", (int)(n - 2), s + 1);   /* the array without its brackets */
    free(s);
    fflush(stdout);
    finish(CLI_OK);
}

/* The destination died before it replied. */
static void cal_died(aemp_msg_t *reason, void *arg)
{
    if (st.done)
        return;
    char *t = aemp_val_text(aemp_msg_root(reason));
    fprintf(stderr, "aemp: cal: %s died before replying: %s\n", (const char *)arg,
            aemp_msg_len(reason) ? t : "normal death");
    free(t);
    finish(CLI_FAIL);
}

/* cal PORT ARGS...: a request with a reply port appended; print the reply. */
int cli_cmd_cal(cli_t *c, const cli_cmd_t *cmd)
{
    const char *port = port_arg(c, "PORT");
    if (!port)
        return CLI_USAGE;
    aemp_msg_t *msg = cli_rest(c);
    int rc = client(c);
    if (rc != CLI_OK) {
        aemp_msg_unref(msg);
        return rc;
    }
    aemp_mon(port, cal_died, (void *)port, NULL);
    if (!aemp_cal(port, msg, cal_reply, NULL, CAL_TIMEOUT)) {
        cli_err(c, "cannot call '%s'", port);
        aemp_shutdown();
        return CLI_USAGE;
    }
    return wait_done();
}

/* ------------------------------------------------------------------ mon */

/* The monitored port died: print the reason. */
static void mon_fired(aemp_msg_t *reason, void *arg)
{
    print_joined(stdout, reason, 0);
    finish(aemp_msg_len(reason) ? CLI_FAIL : CLI_OK);
}

/* mon PORT: wait for PORT to die. */
int cli_cmd_mon(cli_t *c, const cli_cmd_t *cmd)
{
    const char *port = port_arg(c, "PORT");
    if (!port)
        return CLI_USAGE;
    int rc = client(c);
    if (rc != CLI_OK)
        return rc;
    aemp_mon(port, mon_fired, NULL, NULL);
    return wait_done();
}

/* ---------------------------------------------------------------- trace */

#define DOWN_TAG "\001down"

enum { ASKED = 0, ANSWERED = 1, FAILED = 2 };

/* A node that trace has asked (the key of its table entry is its id). */
typedef struct trace_node {
    int state;          /* ASKED / ANSWERED / FAILED */
    char id[];          /* NUL-terminated */
} trace_node_t;

static struct {
    aemp_table_t nodes; /* node ID -> trace_node_t (owned) */
    const char *reply;  /* our reply port */
    int pending;
    int failed;
    cli_graph_t *graph; /* --dot: the graph instead of the lines */
} tr;

/* Element i of msg if it is a string usable as a node ID (no NUL byte),
 * else NULL. */
static const char *node_at(const aemp_msg_t *msg, size_t i)
{
    size_t len;
    const char *s = aemp_msg_str(msg, i, &len);
    return s && strlen(s) == len ? s : NULL;
}

/* The entry of node, or NULL if it was not asked. */
static trace_node_t *trace_find(const char *node)
{
    return aemp__table_get(&tr.nodes, node, strlen(node));
}

/* The state of node, or -1 if not seen yet. */
static int trace_state(const char *node)
{
    trace_node_t *t = trace_find(node);
    return t ? t->state : -1;
}

/* Ask node (not seen yet) for its connected nodes; its connection failing
 * also ends the wait for it. */
static void trace_ask(const char *node)
{
    size_t len = strlen(node);
    trace_node_t *t = malloc(sizeof *t + len + 1);
    if (!t)
        abort();   /* no memory: as the message code does */
    t->state = ASKED;
    memcpy(t->id, node, len + 1);
    aemp__table_put(&tr.nodes, t->id, len, t);
    tr.pending++;
    aemp_sndf(node, "sss", "up_nodes", tr.reply, node);
    aemp_mon_snd(node, tr.reply, aemp_msgf("ss", DOWN_TAG, node), NULL);
}

/* Forget every node. */
static void trace_clear(void)
{
    size_t pos = 0, len;
    const char *key;
    void *t;
    while (aemp__table_next(&tr.nodes, &pos, &key, &len, &t))
        free(t);
    aemp__table_free(&tr.nodes);
    tr.nodes = (aemp_table_t)AEMP_TABLE_INIT;
}

/* One less answer to wait for. */
static void trace_settle(void)
{
    if (--tr.pending == 0)
        finish(tr.failed ? CLI_FAIL : CLI_OK);
}

/* An answer [node, neighbours...]: print it and ask the new nodes. */
static void trace_answer(aemp_msg_t *msg, void *arg)
{
    const char *node = node_at(msg, 0);
    trace_node_t *t = node ? trace_find(node) : NULL;
    if (!t || t->state != ASKED)
        return;
    t->state = ANSWERED;
    size_t n = aemp_msg_len(msg);
    if (tr.graph) {
        cli_graph_node(tr.graph, node, 0);
        for (size_t i = 1; i < n; i++) {
            const char *nb = node_at(msg, i);
            if (nb && *nb && strcmp(nb, aemp_node()))
                cli_graph_edge(tr.graph, node, nb);
        }
    } else {
        printf("%s", node);
        for (size_t i = 1; i < n; i++) {
            const char *nb = node_at(msg, i);
            if (nb && strcmp(nb, aemp_node()))
                printf(" %s", nb);
        }
        putchar('\n');
        fflush(stdout);
    }
    for (size_t i = 1; i < n; i++) {
        const char *nb = node_at(msg, i);
        if (nb && *nb && strcmp(nb, aemp_node()) && trace_state(nb) < 0)
            trace_ask(nb);
    }
    trace_settle();
}

/* A node we asked went down (or could not be reached): the monitor's
 * message [DOWN_TAG, node, reason...]. */
static void trace_down(aemp_msg_t *msg, void *arg)
{
    const char *node = node_at(msg, 1);
    trace_node_t *t = node ? trace_find(node) : NULL;
    if (!t || t->state != ASKED)
        return;
    t->state = FAILED;
    tr.failed++;
    if (tr.graph)
        cli_graph_node(tr.graph, node, CLI_NODE_UNREACHABLE);
    fprintf(stderr, "aemp: trace: cannot reach %s:%s", node, aemp_msg_len(msg) > 2 ? " " : "");
    print_joined(stderr, msg, 2);
    trace_settle();
}

/* Timeout: name the nodes that never answered. */
static void trace_timeout(void *arg)
{
    if (st.done)
        return;
    fprintf(stderr, "aemp: trace: timeout after %g s; no answer from:", TRACE_TIMEOUT);
    size_t pos = 0, len;
    const char *key;
    void *t;
    while (aemp__table_next(&tr.nodes, &pos, &key, &len, &t))
        if (((trace_node_t *)t)->state == ASKED)
            fprintf(stderr, " %s", key);
    fputc('\n', stderr);
    finish(CLI_FAIL);
}

/* trace [--dot] NODE [--dot]: the network as seen through up_nodes
 * requests, as lines or as a Graphviz graph. */
int cli_cmd_trace(cli_t *c, const cli_cmd_t *cmd)
{
    bool dot = flag_arg(c, "--dot");
    const char *arg = port_arg(c, "NODE");
    if (!arg)
        return CLI_USAGE;
    dot = flag_arg(c, "--dot") || dot;
    if (cli_left(c)) {
        cli_err(c, "unexpected argument after NODE (only --dot may follow)");
        return CLI_USAGE;
    }
    char *node = strndup(arg, aemp_node_len(arg));
    int rc = client(c);
    if (rc != CLI_OK) {
        free(node);
        return rc;
    }
    tr.pending = tr.failed = 0;
    tr.reply = aemp_port(trace_answer, NULL);
    aemp_rcv_tag(tr.reply, DOWN_TAG, trace_down, NULL);
    aemp_after_cb(TRACE_TIMEOUT, trace_timeout, NULL, NULL);
    tr.graph = dot ? cli_graph_new() : NULL;
    if (tr.graph) {
        cli_graph_node(tr.graph, node, CLI_NODE_SEED);
    } else {
        printf("seed %s\n", node);
        fflush(stdout);
    }
    trace_ask(node);
    free(node);
    if (!st.done)
        aemp_run();
    if (tr.graph) {
        mark_globals(tr.graph);
        cli_graph_print(tr.graph, stdout);
        cli_graph_free(tr.graph);
        tr.graph = NULL;
    }
    aemp_shutdown();
    trace_clear();
    return st.code;
}

/* ------------------------------------------------------------- sorting */

/* A string's bytes (and, for a map's key, its value). */
typedef struct str_ref {
    const char *s;
    size_t len;
    const aemp_val_t *val;
} str_ref_t;

/* Order strings bytewise, as Perl's sort does. */
static int cmp_str(const void *a, const void *b)
{
    const str_ref_t *x = a, *y = b;
    int r = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

/* Print the string elements of the array value a, sorted, one per line
 * (every byte of them). */
static void print_sorted(const aemp_val_t *a)
{
    size_t n = aemp_val_type(a) == AEMP_T_ARRAY ? aemp_val_len(a) : 0, k = 0;
    str_ref_t *names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        abort();   /* no memory: as the message code does */
    for (size_t i = 0; i < n; i++)
        if ((names[k].s = aemp_val_str(aemp_val_at(a, i), &names[k].len)))
            k++;
    qsort(names, k, sizeof *names, cmp_str);
    for (size_t i = 0; i < k; i++) {
        fwrite(names[i].s, 1, names[i].len, stdout);
        putchar('\n');
    }
    free(names);
    fflush(stdout);
}

/* ---------------------------------------------------------------- nodes */

static size_t nodes_wanted;

/* Stop waiting once as many nodes are up as there are seeds. */
static void nodes_updown(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    aemp_msg_t *up_nodes = aemp_up_nodes();
    if (aemp_msg_len(up_nodes) >= nodes_wanted)
        finish(CLI_OK);
    aemp_msg_unref(up_nodes);
}

/* Wait time is over: report what is up. */
static void nodes_waited(void *arg)
{
    finish(CLI_OK);
}

/* nodes: connect to the seeds and print the connected nodes. */
int cli_cmd_nodes(cli_t *c, const cli_cmd_t *cmd)
{
    bool dot = flag_arg(c, "--dot");
    if (cli_left(c)) {
        cli_err(c, "unexpected argument (only --dot is allowed)");
        return CLI_USAGE;
    }
    json_t *seeds = cli_resolved_seeds(c, NULL, NULL);
    if (!seeds)
        return CLI_FAIL;
    nodes_wanted = json_array_size(seeds);
    json_decref(seeds);
    if (!nodes_wanted) {
        cli_err(c, "no seeds configured for profile 'aemp' (set them with "
                   "'aemp profile aemp setseeds HOST:PORT,...'), so there is nothing to connect to");
        return CLI_FAIL;
    }
    int rc = client(c);
    if (rc != CLI_OK)
        return rc;
    aemp_mon_nodes(nodes_updown, NULL, NULL);
    aemp_after_cb(NODES_WAIT, nodes_waited, NULL, NULL);
    aemp_run();

    aemp_msg_t *up = aemp_up_nodes();
    size_t n = aemp_msg_len(up);
    if (dot) {
        cli_graph_t *g = cli_graph_new();
        cli_graph_node(g, aemp_node(), CLI_NODE_CLIENT);
        for (size_t i = 0; i < n; i++) {
            const char *id = node_at(up, i);
            if (id) {
                cli_graph_node(g, id, CLI_NODE_SEED);
                cli_graph_edge(g, aemp_node(), id);
            }
        }
        if (n)
            mark_globals(g);
        cli_graph_print(g, stdout);
        cli_graph_free(g);
    } else {
        print_sorted(aemp_msg_root(up));
    }
    aemp_msg_unref(up);
    aemp_shutdown();
    if (!n) {
        cli_err(c, "no seed could be reached within %g s", NODES_WAIT);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ------------------------------------------------------------------- db */

/* Print the pairs of the map value m sorted by key, one per line: the key
 * (every byte of it), a space, the value as JSON (aemp_val_text). */
static void print_pairs(const aemp_val_t *m)
{
    size_t n = aemp_val_type(m) == AEMP_T_MAP ? aemp_val_len(m) : 0, k = 0;
    str_ref_t *pairs = calloc(n ? n : 1, sizeof *pairs);
    if (!pairs)
        abort();   /* no memory: as the message code does */
    for (size_t i = 0; i < n; i++)
        if ((pairs[k].s = aemp_val_str(aemp_val_key(m, i), &pairs[k].len)))
            pairs[k++].val = aemp_val_value(m, i);
    qsort(pairs, k, sizeof *pairs, cmp_str);
    for (size_t i = 0; i < k; i++) {
        char *t = aemp_val_text(pairs[i].val);
        fwrite(pairs[i].s, 1, pairs[i].len, stdout);
        printf(" %s\n", t);
        free(t);
    }
    free(pairs);
    fflush(stdout);
}

/* The master's answer: the keys of the family (the root array). */
static void db_keys_reply(aemp_msg_t *keys, void *arg)
{
    if (st.done)
        return;
    print_sorted(aemp_msg_root(keys));
    finish(CLI_OK);
}

/* The master's answer: the whole family (the root map). */
static void db_family_reply(aemp_msg_t *family, void *arg)
{
    if (st.done)
        return;
    print_pairs(aemp_msg_root(family));
    finish(CLI_OK);
}

/* db [--keys] FAMILY: ask a seed (the client's master) for FAMILY in the
 * global database - its entries, or with --keys only their keys (e.g. the
 * members of a group). */
int cli_cmd_db(cli_t *c, const cli_cmd_t *cmd)
{
    static const double timeout = DB_TIMEOUT;
    bool keys_only = flag_arg(c, "--keys");
    const char *family = cli_str_arg(c, "FAMILY");
    if (!family)
        return CLI_USAGE;
    if (!*family) {
        cli_err(c, "FAMILY must not be empty");
        return CLI_USAGE;
    }
    json_t *seeds = cli_resolved_seeds(c, NULL, NULL);
    if (!seeds)
        return CLI_FAIL;
    size_t nseeds = json_array_size(seeds);
    json_decref(seeds);
    if (!nseeds) {
        cli_err(c, "no seeds configured for profile 'aemp' (set them with "
                   "'aemp profile aemp setseeds HOST:PORT,...'), so there is no database to ask");
        return CLI_FAIL;
    }
    int rc = client(c);
    if (rc != CLI_OK)
        return rc;
    /* answered once a seed is connected and has become our master */
    int r = keys_only ? aemp_db_keys(family, db_keys_reply, NULL)
                      : aemp_db_family(family, db_family_reply, NULL);
    if (r < 0) {
        cli_err(c, "cannot query '%s': %s", family, aemp_strerror(r));
        aemp_shutdown();
        return CLI_FAIL;
    }
    aemp_after_cb(timeout, on_timeout, (void *)&timeout, NULL);
    return wait_done();
}

/* ------------------------------------------------------ not supported */

/* eval, shell, restart: they evaluate Perl code on a node. */
int cli_cmd_unsupported(cli_t *c, const cli_cmd_t *cmd)
{
    c->pos = aemp_msg_len(c->args);
    fprintf(stderr, "aemp: %s is not supported by this implementation (it needs a Perl interpreter)\n",
            cmd->name);
    return CLI_UNSUPPORTED;
}

int cli_client_start(cli_t *c)
{
    return client(c);
}

int cli_client_wait(void)
{
    return wait_done();
}

void cli_client_finish(int code)
{
    finish(code);
}
