/* aemp_net_cmds.c - the commands that need the network: `run` (a node
 * that runs until SIGTERM/SIGINT) and the protocol commands snd, cal, mon,
 * trace, nodes and db, which configure a throw-away client node first.
 * eval, shell and restart need a Perl interpreter and are refused.
 */
#include "aemp_cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SND_TIMEOUT 5.0
#define CAL_TIMEOUT 5.0
#define TRACE_TIMEOUT 15.0
#define NODES_WAIT 3.0
#define DB_TIMEOUT 5.0

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

/* Print the elements of a message or reason separated by spaces. */
static void print_joined(const json_t *a, size_t from)
{
    for (size_t i = from; i < json_array_size(a); i++) {
        char *t = cli_text(json_array_get(a, i));
        printf("%s%s", i > from ? " " : "", t ? t : "");
        free(t);
    }
    putchar('\n');
    fflush(stdout);
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
 * the node with args (borrowed).  Returns an exit code. */
static int configure_node(cli_t *c, const json_t *args)
{
    if (cli_save(c) < 0)
        return CLI_FAIL;
    char err[1024];
    if (aemp_configure(args, err, sizeof err) < 0) {
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
    json_t *args = cli_client_args();
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

/* ------------------------------------------------------------------ run */

static ev_signal sigterm_w, sigint_w;

/* SIGTERM / SIGINT: leave the loop. */
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    aemp_log(AEMP_LOG_INFO, "signal %d received, shutting down", w->signum);
    aemp_stop();
}

/* run [PROFILE] [KEY VALUE...]: configure a node and run it. */
int cli_cmd_run(cli_t *c, const cli_cmd_t *cmd)
{
    const char *profile = NULL;
    if (cli_left(c) % 2 && !(profile = cli_str_arg(c, "PROFILE")))
        return CLI_USAGE;
    json_t *args = cli_pairs(c);
    if (!args)
        return CLI_USAGE;
    if (profile)
        json_object_set_new(args, "profile", json_string(profile));
    cli_services_register();
    int rc = configure_node(c, args);
    json_decref(args);
    if (rc != CLI_OK)
        return rc;
    if (cli_services_echo_port() < 0)
        cli_err(c, "warning: cannot create the port %s#echo", aemp_node());

    printf("%s listening on ", aemp_node());
    const json_t *l = aemp_listeners();
    for (size_t i = 0; i < json_array_size(l); i++)
        printf("%s%s", i ? "," : "", json_string_value(json_array_get(l, i)));
    putchar('\n');
    fflush(stdout);

    struct ev_loop *loop = aemp_loop();
    ev_signal_init(&sigterm_w, on_signal, SIGTERM);
    ev_signal_init(&sigint_w, on_signal, SIGINT);
    ev_signal_start(loop, &sigterm_w);
    ev_signal_start(loop, &sigint_w);
    aemp_run();
    ev_signal_stop(loop, &sigterm_w);
    ev_signal_stop(loop, &sigint_w);
    aemp_shutdown();
    return CLI_OK;
}

/* ------------------------------------------------------------------ snd */

/* The relayed confirmation (or anything else) reached the reply port. */
static void snd_reply(json_t *msg, void *arg)
{
    print_joined(msg, 0);
    finish(CLI_OK);
}

/* The destination died: an abnormal reason means failure; after a normal
 * death the message was delivered, so wait for the confirmation. */
static void snd_died(json_t *reason, void *arg)
{
    if (!json_array_size(reason) || st.done)
        return;
    print_joined(reason, 0);
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
    json_t *msg = cli_rest(c);
    int rc = client(c);
    if (rc != CLI_OK) {
        json_decref(msg);
        return rc;
    }
    int r = aemp_snd(port, msg);
    if (r < 0) {
        cli_err(c, "cannot send to '%s': %s", port, aemp_strerror(r));
        aemp_shutdown();
        return CLI_USAGE;
    }
    aemp_mon(port, snd_died, NULL, NULL);
    const char *reply = aemp_port(snd_reply, NULL);
    aemp_snd_on(port, reply, json_pack("[s]", "message sent successfully"));
    aemp_after_cb(timeout, on_timeout, (void *)&timeout, NULL);
    return wait_done();
}

/* ------------------------------------------------------------------ cal */

/* The reply (or NULL: timeout). */
static void cal_reply(json_t *reply, void *arg)
{
    if (st.done)
        return;
    if (!reply) {
        fprintf(stderr, "aemp: cal: no reply within %g s\n", CAL_TIMEOUT);
        finish(CLI_FAIL);
        return;
    }
    char *s = json_dumps(reply, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = s ? strlen(s) : 0;
    if (n >= 2)
        printf("%.*s\n", (int)(n - 2), s + 1);   /* the array without its brackets */
    free(s);
    fflush(stdout);
    finish(CLI_OK);
}

/* The destination died before it replied. */
static void cal_died(json_t *reason, void *arg)
{
    if (st.done)
        return;
    char *t = json_dumps(reason, JSON_COMPACT);
    fprintf(stderr, "aemp: cal: %s died before replying: %s\n", (const char *)arg,
            json_array_size(reason) ? t : "normal death");
    free(t);
    finish(CLI_FAIL);
}

/* cal PORT ARGS...: a request with a reply port appended; print the reply. */
int cli_cmd_cal(cli_t *c, const cli_cmd_t *cmd)
{
    const char *port = port_arg(c, "PORT");
    if (!port)
        return CLI_USAGE;
    json_t *msg = cli_rest(c);
    int rc = client(c);
    if (rc != CLI_OK) {
        json_decref(msg);
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
static void mon_fired(json_t *reason, void *arg)
{
    print_joined(reason, 0);
    finish(json_array_size(reason) ? CLI_FAIL : CLI_OK);
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

static struct {
    json_t *state;      /* node ID -> ASKED / ANSWERED / FAILED */
    const char *reply;  /* our reply port */
    int pending;
    int failed;
} tr;

/* Ask node for its connected nodes; its connection failing also ends the
 * wait for it. */
static void trace_ask(const char *node)
{
    json_object_set_new(tr.state, node, json_integer(ASKED));
    tr.pending++;
    aemp_sndf(node, "sss", "up_nodes", tr.reply, node);
    aemp_mon_snd(node, tr.reply, json_pack("[ss]", DOWN_TAG, node), NULL);
}

/* The state of node, or -1 if not seen yet. */
static int trace_state(const char *node)
{
    json_t *v = json_object_get(tr.state, node);
    return v ? (int)json_integer_value(v) : -1;
}

/* One less answer to wait for. */
static void trace_settle(void)
{
    if (--tr.pending == 0)
        finish(tr.failed ? CLI_FAIL : CLI_OK);
}

/* An answer [node, neighbours...]: print it and ask the new nodes. */
static void trace_answer(json_t *msg, void *arg)
{
    json_t *nv = json_array_get(msg, 0);
    if (!json_is_string(nv) || trace_state(json_string_value(nv)) != ASKED)
        return;
    const char *node = json_string_value(nv);
    json_object_set_new(tr.state, node, json_integer(ANSWERED));
    printf("%s", node);
    for (size_t i = 1; i < json_array_size(msg); i++) {
        const char *n = json_string_value(json_array_get(msg, i));
        if (n && strcmp(n, aemp_node()))
            printf(" %s", n);
    }
    putchar('\n');
    fflush(stdout);
    for (size_t i = 1; i < json_array_size(msg); i++) {
        const char *n = json_string_value(json_array_get(msg, i));
        if (n && *n && strcmp(n, aemp_node()) && trace_state(n) < 0)
            trace_ask(n);
    }
    trace_settle();
}

/* A node we asked went down (or could not be reached): [node, reason...]. */
static void trace_down(json_t *msg, void *arg)
{
    const char *node = json_string_value(json_array_get(msg, 0));
    if (!node || trace_state(node) != ASKED)
        return;
    json_object_set_new(tr.state, node, json_integer(FAILED));
    tr.failed++;
    fprintf(stderr, "aemp: trace: cannot reach %s:", node);
    for (size_t i = 1; i < json_array_size(msg); i++) {
        char *t = cli_text(json_array_get(msg, i));
        fprintf(stderr, " %s", t ? t : "");
        free(t);
    }
    fputc('\n', stderr);
    trace_settle();
}

/* Timeout: name the nodes that never answered. */
static void trace_timeout(void *arg)
{
    if (st.done)
        return;
    fprintf(stderr, "aemp: trace: timeout after %g s; no answer from:", TRACE_TIMEOUT);
    const char *k;
    json_t *v;
    json_object_foreach(tr.state, k, v)
        if (json_integer_value(v) == ASKED)
            fprintf(stderr, " %s", k);
    fputc('\n', stderr);
    finish(CLI_FAIL);
}

/* trace NODE: the network as seen through up_nodes requests. */
int cli_cmd_trace(cli_t *c, const cli_cmd_t *cmd)
{
    const char *arg = port_arg(c, "NODE");
    if (!arg)
        return CLI_USAGE;
    char *node = strndup(arg, aemp_node_len(arg));
    int rc = client(c);
    if (rc != CLI_OK) {
        free(node);
        return rc;
    }
    tr.state = json_object();
    tr.pending = tr.failed = 0;
    tr.reply = aemp_port(trace_answer, NULL);
    aemp_rcv_tag(tr.reply, DOWN_TAG, trace_down, NULL);
    aemp_after_cb(TRACE_TIMEOUT, trace_timeout, NULL, NULL);
    printf("seed %s\n", node);
    fflush(stdout);
    trace_ask(node);
    free(node);
    rc = wait_done();
    json_decref(tr.state);
    tr.state = NULL;
    return rc;
}

/* ---------------------------------------------------------------- nodes */

static size_t nodes_wanted;

/* Stop waiting once as many nodes are up as there are seeds. */
static void nodes_updown(const char *node, int up, json_t *reason, void *arg)
{
    json_t *up_nodes = aemp_up_nodes();
    if (json_array_size(up_nodes) >= nodes_wanted)
        finish(CLI_OK);
    json_decref(up_nodes);
}

/* Wait time is over: report what is up. */
static void nodes_waited(void *arg)
{
    finish(CLI_OK);
}

/* Order strings for qsort. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* nodes: connect to the seeds and print the connected nodes. */
int cli_cmd_nodes(cli_t *c, const cli_cmd_t *cmd)
{
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

    json_t *up = aemp_up_nodes();
    size_t n = json_array_size(up);
    const char **names = calloc(n ? n : 1, sizeof *names);
    for (size_t i = 0; names && i < n; i++)
        names[i] = json_string_value(json_array_get(up, i));
    if (names) {
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++)
            puts(names[i]);
    }
    free(names);
    fflush(stdout);
    json_decref(up);
    aemp_shutdown();
    if (!n) {
        cli_err(c, "no seed could be reached within %g s", NODES_WAIT);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ------------------------------------------------------------------- db */

/* The master's answer: the keys of the family (an array). */
static void db_keys_reply(json_t *keys, void *arg)
{
    if (st.done)
        return;
    size_t n = json_array_size(keys);
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        finish(CLI_FAIL);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (json_is_string(json_array_get(keys, i)))
            names[k++] = json_string_value(json_array_get(keys, i));
    qsort(names, k, sizeof *names, cmp_str);
    for (size_t i = 0; i < k; i++)
        puts(names[i]);
    free(names);
    fflush(stdout);
    finish(CLI_OK);
}

/* db FAMILY: ask a seed (the client's master) for the keys of FAMILY in
 * the global database, e.g. the members of a group. */
int cli_cmd_db(cli_t *c, const cli_cmd_t *cmd)
{
    static const double timeout = DB_TIMEOUT;
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
    int r = aemp_db_keys(family, db_keys_reply, NULL);
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
    c->pos = json_array_size(c->args);
    fprintf(stderr, "aemp: %s is not supported by this implementation (it needs a Perl interpreter)\n",
            cmd->name);
    return CLI_UNSUPPORTED;
}
