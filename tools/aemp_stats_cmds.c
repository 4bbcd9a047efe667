/* aemp_stats_cmds.c - looking into a running node: `aemp stats NODE`,
 * `aemp top NODE [INTERVAL [COUNT]]` and `aemp loglevel NODE LEVEL`, all
 * through libaemp's node-port requests "stats" and "loglevel" (answered by
 * libaemp nodes; a Perl node does not know them and the command times out
 * with a message saying so). */
#include "aemp_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATS_TIMEOUT 5.0

static struct {
    const char *node;
    double interval;
    long count, done;
    aemp_msg_t *last;        /* previous stats map, for rates (top) */
    double last_time;
    int top;
} sx;

/* Print the scalar figures of a stats map, one "name value" per line. */
static void print_figures(const aemp_val_t *map)
{
    for (size_t i = 0; i < aemp_val_len(map); i++) {
        const char *k = aemp_val_str(aemp_val_key(map, i), NULL);
        const aemp_val_t *v = aemp_val_value(map, i);
        uint64_t u;
        if (k && aemp_val_uint(v, &u) == 0)
            printf("%-28s %llu\n", k, (unsigned long long)u);
    }
}

/* The figure name of map (0 if missing). */
static uint64_t figure(const aemp_val_t *map, const char *name)
{
    uint64_t u = 0;
    aemp_val_uint(aemp_val_get(map, name), &u);
    return u;
}

/* One line per connected node. */
static void print_peers(const aemp_val_t *peers, const aemp_val_t *before, double dt)
{
    if (!aemp_val_len(peers)) {
        printf("no connected nodes\n");
        return;
    }
    printf("%-24s %-4s %-5s %12s %12s %10s %10s %10s\n", "node", "dir", "dial", "msgs in", "msgs out",
           dt > 0 ? "in/s" : "bytes in", dt > 0 ? "out/s" : "bytes out", "queued");
    for (size_t i = 0; i < aemp_val_len(peers); i++) {
        const char *node = aemp_val_str(aemp_val_key(peers, i), NULL);
        const aemp_val_t *p = aemp_val_value(peers, i);
        const aemp_val_t *old = before ? aemp_val_get(before, node ? node : "") : NULL;
        uint64_t in = figure(p, "messages_in"), out = figure(p, "messages_out");
        double a = (double)figure(p, "bytes_in"), b = (double)figure(p, "bytes_out");
        if (dt > 0) {
            a = old ? (double)(in - figure(old, "messages_in")) / dt : 0;
            b = old ? (double)(out - figure(old, "messages_out")) / dt : 0;
        }
        printf("%-24.24s %-4s %-5s %12llu %12llu %10.0f %10.0f %10llu\n", node ? node : "?",
               aemp_val_str(aemp_val_get(p, "direction"), NULL), aemp_val_str(aemp_val_get(p, "dialect"), NULL),
               (unsigned long long)in, (unsigned long long)out, a, b,
               (unsigned long long)figure(p, "send_queue_bytes"));
    }
}

static void ask(void *unused);

static void stats_reply(aemp_msg_t *reply, void *unused)
{
    const aemp_val_t *map = reply ? aemp_msg_at(reply, 0) : NULL;
    if (!map || aemp_val_type(map) != AEMP_T_MAP) {
        fprintf(stderr, "aemp: %s: no answer from %s within %g s (a libaemp node answers 'stats'; "
                "Perl nodes do not; see the messages above for why the node could not be reached)\n",
                sx.top ? "top" : "stats", sx.node, STATS_TIMEOUT);
        cli_client_finish(CLI_FAIL);
        return;
    }
    double now = ev_time();
    if (sx.top) {
        if (isatty(1))
            printf("\033[H\033[2J");
        const aemp_val_t *old = sx.last ? aemp_msg_at(sx.last, 0) : NULL;
        double dt = old ? now - sx.last_time : 0;
        printf("%s  ports %llu  monitors %llu  connections %llu  nodes %llu  log level %llu\n", sx.node,
               (unsigned long long)figure(map, "ports"), (unsigned long long)figure(map, "monitors"),
               (unsigned long long)figure(map, "connections"), (unsigned long long)figure(map, "nodes"),
               (unsigned long long)figure(map, "log_level"));
        if (old && dt > 0)
            printf("messages in %.0f/s  out %.0f/s  bytes in %.0f/s  out %.0f/s\n",
                   (double)(figure(map, "messages_in") - figure(old, "messages_in")) / dt,
                   (double)(figure(map, "messages_out") - figure(old, "messages_out")) / dt,
                   (double)(figure(map, "bytes_in") - figure(old, "bytes_in")) / dt,
                   (double)(figure(map, "bytes_out") - figure(old, "bytes_out")) / dt);
        else
            printf("messages in %llu  out %llu (rates from the next refresh on)\n",
                   (unsigned long long)figure(map, "messages_in"), (unsigned long long)figure(map, "messages_out"));
        print_peers(aemp_val_get(map, "peers"), old ? aemp_val_get(old, "peers") : NULL, dt);
        fflush(stdout);
        aemp_msg_unref(sx.last);
        sx.last = aemp_msg_ref(reply);
        sx.last_time = now;
        if (sx.count && ++sx.done >= sx.count) {
            cli_client_finish(CLI_OK);
            return;
        }
        aemp_after_cb(sx.interval, ask, NULL, NULL);
        return;
    }
    print_figures(map);
    print_peers(aemp_val_get(map, "peers"), NULL, 0);
    cli_client_finish(CLI_OK);
}

static void ask(void *unused)
{
    aemp_cal(sx.node, aemp_msgf("s", "stats"), stats_reply, NULL, STATS_TIMEOUT);
}

/* A positive number argument, or def if none is left. */
static int number_arg(cli_t *c, const char *what, double def, double *out)
{
    *out = def;
    if (!cli_left(c))
        return 0;
    const char *s = cli_str_arg(c, what);
    char *end;
    double d = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !(d > 0)) {
        cli_err(c, "%s must be a positive number, got '%s'", what, s ? s : "");
        return -1;
    }
    *out = d;
    return 0;
}

int cli_cmd_stats(cli_t *c, const cli_cmd_t *cmd)
{
    memset(&sx, 0, sizeof sx);
    if (!(sx.node = cli_node_arg(c)))
        return CLI_USAGE;
    int rc = cli_client_start(c);
    if (rc != CLI_OK)
        return rc;
    ask(NULL);
    return cli_client_wait();
}

int cli_cmd_top(cli_t *c, const cli_cmd_t *cmd)
{
    memset(&sx, 0, sizeof sx);
    sx.top = 1;
    double count = 0;
    if (!(sx.node = cli_node_arg(c)) || number_arg(c, "INTERVAL", 1.0, &sx.interval) < 0
        || number_arg(c, "COUNT", 0, &count) < 0)
        return CLI_USAGE;
    sx.count = (long)count;
    int rc = cli_client_start(c);
    if (rc != CLI_OK)
        return rc;
    ask(NULL);
    rc = cli_client_wait();
    aemp_msg_unref(sx.last);
    sx.last = NULL;
    return rc;
}

static void loglevel_reply(aemp_msg_t *reply, void *arg)
{
    const char *error = reply ? aemp_msg_str(reply, 0, NULL) : NULL;
    int64_t old = 0;
    if (!error) {
        fprintf(stderr, "aemp: loglevel: no answer from %s within %g s (a libaemp node answers 'loglevel'; "
                "Perl nodes do not)\n", sx.node, STATS_TIMEOUT);
        cli_client_finish(CLI_FAIL);
        return;
    }
    if (*error) {
        fprintf(stderr, "aemp: loglevel: %s: %s\n", sx.node, error);
        cli_client_finish(CLI_FAIL);
        return;
    }
    aemp_val_int(aemp_msg_at(reply, 1), &old);
    printf("%s: log level %d (was %lld)\n", sx.node, *(int *)arg, (long long)old);
    cli_client_finish(CLI_OK);
}

int cli_cmd_loglevel(cli_t *c, const cli_cmd_t *cmd)
{
    memset(&sx, 0, sizeof sx);
    static int level;
    if (!(sx.node = cli_node_arg(c)))
        return CLI_USAGE;
    const char *s = cli_str_arg(c, "LEVEL");
    char *end;
    long l = s ? strtol(s, &end, 10) : -1;
    if (!s || end == s || *end || l < 0 || l > 9) {
        cli_err(c, "LEVEL must be 0..9, got '%s'", s ? s : "");
        return CLI_USAGE;
    }
    level = (int)l;
    int rc = cli_client_start(c);
    if (rc != CLI_OK)
        return rc;
    aemp_cal(sx.node, aemp_msgf("si", "loglevel", level), loglevel_reply, &level, STATS_TIMEOUT);
    return cli_client_wait();
}
