/* aemp.c - the aemp command-line tool: argument decoding, the command
 * loop and the helpers every command uses.
 *
 *   aemp <subcommand> [args] [<subcommand> [args]]...
 *
 * Subcommands run left to right, each consuming its arguments, as in
 * Perl's aemp.  The commands themselves live in aemp_config_cmds.c
 * (rc file editing), aemp_net_cmds.c (run and the protocol commands) and
 * aemp_commands.c (the table and the help texts).
 */
#include "aemp_cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print "aemp: <cmd>: <message>" (or "aemp: <message>") on stderr. */
void cli_err(const cli_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c && c->cmd)
        fprintf(stderr, "aemp: %s: ", c->cmd);
    else
        fputs("aemp: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Number of arguments not consumed yet. */
size_t cli_left(const cli_t *c)
{
    size_t n = json_array_size(c->args);
    return c->pos < n ? n - c->pos : 0;
}

/* Consume and return the next argument, or complain that it is missing. */
json_t *cli_arg(cli_t *c, const char *what)
{
    if (!cli_left(c)) {
        cli_err(c, "missing argument %s", what);
        return NULL;
    }
    return json_array_get(c->args, c->pos++);
}

/* Consume the next argument, which must be a string. */
const char *cli_str_arg(cli_t *c, const char *what)
{
    json_t *v = cli_arg(c, what);
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        char *t = cli_text(v);
        cli_err(c, "%s must be a string, got %s", what, t ? t : "?");
        free(t);
        return NULL;
    }
    return json_string_value(v);
}

/* Consume every argument left; returns them as a new array. */
json_t *cli_rest(cli_t *c)
{
    json_t *a = json_array();
    while (cli_left(c))
        json_array_append(a, json_array_get(c->args, c->pos++));
    return a;
}

/* Keys whose value is a list: a plain string argument is a comma list. */
static const char *const list_keys[] = {
    "seeds", "binds", "services", "framing_format", "auth_offer", "auth_accept", NULL,
};

/* True if key holds a list. */
static bool is_list_key(const char *key)
{
    for (int i = 0; list_keys[i]; i++)
        if (!strcmp(list_keys[i], key))
            return true;
    return false;
}

/* Split "a,b,c" into ["a","b","c"] as Perl's split /,/ does (trailing
 * empty fields are dropped). */
static json_t *split_commas(const char *s)
{
    json_t *a = json_array();
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        json_array_append_new(a, json_stringn(p, n));
        if (!comma)
            break;
        p = comma + 1;
    }
    while (json_array_size(a)) {
        json_t *last = json_array_get(a, json_array_size(a) - 1);
        if (json_string_length(last))
            break;
        json_array_remove(a, json_array_size(a) - 1);
    }
    return a;
}

/* The value to store for key from a command line argument (new reference):
 * a string for a list key becomes its comma-separated parts. */
json_t *cli_value_for(const char *key, json_t *arg)
{
    if (is_list_key(key) && json_is_string(arg))
        return split_commas(json_string_value(arg));
    return json_incref(arg);
}

/* Build a configure-style object from key/value arguments (all that are
 * left); NULL after an error message. */
json_t *cli_pairs(cli_t *c)
{
    if (cli_left(c) % 2) {
        cli_err(c, "odd number of KEY VALUE arguments");
        return NULL;
    }
    json_t *o = json_object();
    while (cli_left(c)) {
        const char *k = cli_str_arg(c, "KEY");
        if (!k) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, k, cli_value_for(k, json_array_get(c->args, c->pos++)));
    }
    return o;
}

/* Strings as they are, other values as compact JSON; malloc'd. */
char *cli_text(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Pretty JSON as Perl's JSON::XS->pretty prints it (3 spaces), keys sorted
 * so that the output is stable. */
void cli_print_pretty(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(3) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

/* Load the rc file on first use.  A malformed file is an error (with its
 * file:line:col); the file is then never written. */
aemp_config_t *cli_config(cli_t *c)
{
    if (c->cfg)
        return c->cfg;
    char err[1024];
    aemp_config_t *cfg = NULL;
    if (aemp__config_load(NULL, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "aemp: %s\n", err);
        aemp__config_free(cfg);
        return NULL;
    }
    c->cfg = cfg;
    return cfg;
}

/* Save the rc file if a command changed it.  A new file gets a random
 * secret, as the Perl tool's does, unless a command dealt with the secret. */
int cli_save(cli_t *c)
{
    if (!c->cfg || !aemp__config_modified(c->cfg))
        return 0;
    char err[1024];
    if (!aemp__config_exists(c->cfg) && !c->secret_explicit
        && aemp__config_ensure_secret(c->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "aemp: %s\n", err);
        return -1;
    }
    if (aemp__config_save(c->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "aemp: %s\n", err);
        return -1;
    }
    return 0;
}

/* Decode the command line as Perl's aemp does: a single argument starting
 * with '[' is a JSON array that replaces the argument list; otherwise each
 * argument starting with '[', '{' or '"' is one JSON value.  NULL after an
 * error message. */
static json_t *decode_args(int argc, char **argv)
{
    json_error_t je;
    if (argc == 1 && argv[0][0] == '[') {
        json_t *a = json_loads(argv[0], JSON_DECODE_ANY, &je);
        if (!a) {
            fprintf(stderr, "aemp: the argument '%s' is not valid JSON: %s (column %d)\n", argv[0],
                    je.text, je.column);
            return NULL;
        }
        if (!json_is_array(a)) {
            fprintf(stderr, "aemp: the argument '%s' is not a JSON array\n", argv[0]);
            json_decref(a);
            return NULL;
        }
        return a;
    }
    json_t *args = json_array();
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        json_t *v;
        if (s[0] == '[' || s[0] == '{' || s[0] == '"') {
            v = json_loads(s, JSON_DECODE_ANY, &je);
            if (!v) {
                fprintf(stderr, "aemp: argument %d '%s' is not valid JSON: %s (column %d)\n", i + 1,
                        s, je.text, je.column);
                json_decref(args);
                return NULL;
            }
        } else if (!(v = json_string(s))) {
            fprintf(stderr, "aemp: argument %d is not valid UTF-8\n", i + 1);
            json_decref(args);
            return NULL;
        }
        json_array_append_new(args, v);
    }
    return args;
}

/* True if v is the string "--help". */
static bool is_help_flag(const json_t *v)
{
    return json_is_string(v) && strcmp(json_string_value(v), "--help") == 0;
}

/* Run the commands left to right; returns the exit code. */
static int run_commands(cli_t *c)
{
    while (cli_left(c)) {
        json_t *name = json_array_get(c->args, c->pos++);
        const cli_cmd_t *cmd = json_is_string(name) ? cli_find(json_string_value(name)) : NULL;
        c->cmd = NULL;
        if (!cmd) {
            char *t = cli_text(name);
            cli_err(c, "no such aemp command '%s' (try 'aemp help')", t ? t : "?");
            free(t);
            return CLI_USAGE;
        }
        c->cmd = cmd->name;
        if (cli_left(c) && is_help_flag(json_array_get(c->args, c->pos))) {
            cli_help_command(cmd);
            c->pos = json_array_size(c->args);
            break;
        }
        int rc = cmd->fn(c, cmd);
        if (rc != CLI_OK)
            return rc;
    }
    c->cmd = NULL;
    return cli_save(c) < 0 ? CLI_FAIL : CLI_OK;
}

/* Entry point: decode, dispatch, clean up. */
int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        cli_usage(stderr);
        return CLI_USAGE;
    }
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        cli_t h = { 0 };
        h.args = json_array();
        int rc = cli_cmd_help(&h, cli_find("help"));
        json_decref(h.args);
        return rc;
    }
    cli_t c = { 0 };
    c.args = decode_args(argc - 1, argv + 1);
    if (!c.args)
        return CLI_USAGE;
    int rc;
    if (!json_array_size(c.args)) {
        cli_usage(stderr);
        rc = CLI_USAGE;
    } else {
        rc = run_commands(&c);
    }
    fflush(stdout);
    aemp__config_free(c.cfg);
    json_decref(c.args);
    return rc;
}
