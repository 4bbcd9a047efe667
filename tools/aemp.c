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

#include "frame.h"
#include "msg.h"

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
    size_t n = aemp_msg_len(c->args);
    return c->pos < n ? n - c->pos : 0;
}

/* Consume and return the next argument, or complain that it is missing. */
const aemp_val_t *cli_arg(cli_t *c, const char *what)
{
    if (!cli_left(c)) {
        cli_err(c, "missing argument %s", what);
        return NULL;
    }
    return aemp_msg_at(c->args, c->pos++);
}

/* Consume the next argument, which must be a string usable as a C string. */
const char *cli_str_arg(cli_t *c, const char *what)
{
    const aemp_val_t *v = cli_arg(c, what);
    if (!v)
        return NULL;
    size_t len;
    const char *s = aemp_val_str(v, &len);
    if (!s) {
        char *t = cli_text(v);
        cli_err(c, "%s must be a string, got %s", what, t);
        free(t);
        return NULL;
    }
    if (strlen(s) != len) {
        cli_err(c, "%s must not contain a NUL character", what);
        return NULL;
    }
    return s;
}

const char *cli_node_arg(cli_t *c)
{
    const char *node = cli_str_arg(c, "NODE");
    if (node && (!*node || strchr(node, '#'))) {
        cli_err(c, "'%s' is not a node ID", node);
        return NULL;
    }
    return node;
}

/* Consume the next argument and convert it for the rc-file code. */
json_t *cli_json_arg(cli_t *c, const char *what)
{
    const aemp_val_t *v = cli_arg(c, what);
    return v ? aemp_val_to_json(v) : NULL;
}

/* Consume every argument left; returns them as a new message. */
aemp_msg_t *cli_rest(cli_t *c)
{
    size_t from = c->pos;
    c->pos = aemp_msg_len(c->args);
    return aemp__msg_slice(c->args, from);
}

/* The value to store for key from a command line argument (arg stolen):
 * a string for a list key becomes its comma-separated parts. */
json_t *cli_value_for(const char *key, json_t *arg)
{
    json_t *v = aemp__config_list_value(key, arg);
    json_decref(arg);
    return v;
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
        json_object_set_new(o, k, cli_value_for(k, cli_json_arg(c, "VALUE")));
    }
    return o;
}

/* Strings as they are, other values as aemp_val_text prints them. */
char *cli_text(const aemp_val_t *v)
{
    const char *s = aemp_val_str(v, NULL);
    char *t = s ? strdup(s) : aemp_val_text(v);
    if (!t)
        abort();   /* no memory: as the message code does */
    return t;
}

/* Strings byte for byte, other values as aemp_val_text prints them. */
void cli_print_val(FILE *f, const aemp_val_t *v)
{
    size_t len;
    const char *s = aemp_val_str(v, &len);
    if (s) {
        fwrite(s, 1, len, f);
        return;
    }
    char *t = aemp_val_text(v);
    fputs(t, f);
    free(t);
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

/* True if the n bytes at p are JSON whitespace only. */
static bool only_space(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

/* Decode one JSON text (a command line argument) into a new message whose
 * root is its value, with the library's own JSON decoder: it reads numbers
 * as Perl's JSON::XS does (integers exact over the whole int64 and uint64
 * range, larger ones as doubles), which jansson cannot.  The decoder reads
 * frames, so the text is decoded as the frame ["", TEXT] and must be
 * exactly one value.  NULL with the reason in err. */
static aemp_msg_t *decode_json(const char *text, char *err, size_t errlen)
{
    static const char head[] = "[\"\",";
    aemp_buf_t in = AEMP_BUF_INIT;
    aemp__buf_append(&in, head, sizeof head - 1);
    aemp__buf_puts(&in, text);
    aemp__buf_putc(&in, ']');
    aemp_frame_reader_t r;
    aemp__frame_reader_init(&r, AEMP_FRAMING_JSON, aemp__buf_used(&in));
    aemp_frame_t f = { 0 };
    aemp_msg_t *v = NULL;
    int rc = aemp__frame_next(&r, &in, &f);
    if (rc < 0) {
        snprintf(err, errlen, "%s", r.error);
    } else if (rc == 0) {
        snprintf(err, errlen, "unexpected end of text");
    } else if (aemp_msg_len(f.msg) != 1 || !only_space(aemp__buf_head(&in), aemp__buf_used(&in))) {
        snprintf(err, errlen, "not exactly one JSON value");
    } else {
        v = aemp_msg_copy_val(aemp_msg_at(f.msg, 0));
    }
    aemp_msg_unref(f.msg);
    aemp__frame_reader_free(&r);
    aemp__buf_free(&in);
    return v;
}

/* Decode the command line as Perl's aemp does: a single argument starting
 * with '[' is a JSON array that replaces the argument list; otherwise each
 * argument starting with '[', '{' or '"' is one JSON value, every other
 * one a string.  NULL after an error message. */
static aemp_msg_t *decode_args(int argc, char **argv)
{
    char err[256];
    if (argc == 1 && argv[0][0] == '[') {
        aemp_msg_t *a = decode_json(argv[0], err, sizeof err);
        if (!a) {
            fprintf(stderr, "aemp: the argument '%s' is not valid JSON: %s\n", argv[0], err);
            return NULL;
        }
        return a;   /* an array: the text starts with '[' */
    }
    aemp_build_t *b = aemp_build_new();
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] == '[' || s[0] == '{' || s[0] == '"') {
            aemp_msg_t *v = decode_json(s, err, sizeof err);
            if (!v) {
                fprintf(stderr, "aemp: argument %d '%s' is not valid JSON: %s\n", i + 1, s, err);
                aemp_build_abort(b);
                return NULL;
            }
            aemp_build_val(b, aemp_msg_root(v));
            aemp_msg_unref(v);
        } else if (aemp__utf8_valid((const uint8_t *)s, strlen(s))) {
            aemp_build_str(b, s);
        } else {
            fprintf(stderr, "aemp: argument %d is not valid UTF-8\n", i + 1);
            aemp_build_abort(b);
            return NULL;
        }
    }
    aemp_msg_t *args = aemp_build_msg(b);
    if (!args)
        fprintf(stderr, "aemp: the arguments are beyond the message limits\n");
    return args;
}

/* True if v is the string "--help". */
static bool is_help_flag(const aemp_val_t *v)
{
    const char *s = aemp_val_str(v, NULL);
    return s && strcmp(s, "--help") == 0;
}

/* Run the commands left to right; returns the exit code. */
static int run_commands(cli_t *c)
{
    while (cli_left(c)) {
        const aemp_val_t *name = aemp_msg_at(c->args, c->pos++);
        const char *s = aemp_val_str(name, NULL);
        const cli_cmd_t *cmd = s ? cli_find(s) : NULL;
        c->cmd = NULL;
        if (!cmd) {
            char *t = cli_text(name);
            cli_err(c, "no such aemp command '%s' (try 'aemp help')", t);
            free(t);
            return CLI_USAGE;
        }
        c->cmd = cmd->name;
        if (cli_left(c) && is_help_flag(aemp_msg_at(c->args, c->pos))) {
            cli_help_command(cmd);
            c->pos = aemp_msg_len(c->args);
            break;
        }
        int rc = cmd->fn(c, cmd);
        if (rc != CLI_OK)
            return rc;
    }
    c->cmd = NULL;
    return cli_save(c) < 0 ? CLI_FAIL : CLI_OK;
}

/* --version: the tool's version, the library's (they differ only if a
 * build mixed them up), and the built-in module directory. */
static int print_version(void)
{
    printf("aemp %s (libaemp %s)\nmodule directory: %s\n", AEMP_VERSION, aemp_version(),
           AEMP_MODULE_DIR);
    return CLI_OK;
}

/* Entry point: decode, dispatch, clean up. */
int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    aemp_tune_malloc();   /* a node's large frames reuse the heap (aemp.h) */
    if (argc < 2) {
        cli_usage(stderr);
        return CLI_USAGE;
    }
    if (argc == 2 && !strcmp(argv[1], "--version"))
        return print_version();
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        cli_t h = { 0 };
        h.args = aemp_msg_empty();
        int rc = cli_cmd_help(&h, cli_find("help"));
        aemp_msg_unref(h.args);
        return rc;
    }
    cli_t c = { 0 };
    c.args = decode_args(argc - 1, argv + 1);
    if (!c.args)
        return CLI_USAGE;
    int rc;
    if (!aemp_msg_len(c.args)) {
        cli_usage(stderr);
        rc = CLI_USAGE;
    } else {
        rc = run_commands(&c);
    }
    fflush(stdout);
    aemp__config_free(c.cfg);
    aemp_msg_unref(c.args);
    return rc;
}
