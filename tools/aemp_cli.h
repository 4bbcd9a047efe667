/* aemp_cli.h - what the files of the aemp tool share: the command line
 * state, the command table entry, argument helpers and the command
 * handlers.  Not installed; nothing here is part of libaemp.
 */
#ifndef AEMP_CLI_H
#define AEMP_CLI_H

#include "aemp.h"
#include "aemp_json.h"
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes (also the return values of command handlers: 0 = go on). */
enum {
    CLI_OK = 0,          /* success */
    CLI_FAIL = 1,        /* the operation failed, timed out, abnormal death */
    CLI_USAGE = 2,       /* bad command line */
    CLI_UNSUPPORTED = 3, /* not supported by this implementation */
    CLI_WATCHDOG_RESTART = 75, /* a node under the watchdog asks to be restarted */
};

/* The state of one aemp invocation. */
typedef struct cli {
    aemp_msg_t *args;      /* the decoded argument list (root array) */
    size_t pos;            /* index of the next unconsumed argument */
    const char *cmd;       /* the running command's name (for messages) */
    aemp_config_t *cfg;    /* the rc file, loaded on first use */
    bool secret_explicit;  /* a command set or removed the global secret */
} cli_t;

typedef struct cli_cmd cli_cmd_t;

/* A command handler: consumes its arguments from c, returns an exit code
 * (CLI_OK to go on with the next command). */
typedef int (*cli_fn)(cli_t *c, const cli_cmd_t *cmd);

struct cli_cmd {
    const char *name;
    cli_fn fn;
    const char *key;       /* the configuration key of set/del/add/del-item handlers */
    const char *args;      /* argument synopsis, "" if none */
    const char *summary;   /* one line */
    const char *help;      /* the long text (NULL: only the summary) */
    const char *alias_of;  /* the command this one is an alias of, or NULL */
};

/* ----------------------------------------------------- aemp.c helpers */

/* Print "aemp: <cmd>: <message>" on stderr. */
void cli_err(const cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Number of arguments left. */
size_t cli_left(const cli_t *c);

/* The next argument (borrowed from c->args), consumed; NULL (after
 * printing "missing argument <what>") if there is none. */
const aemp_val_t *cli_arg(cli_t *c, const char *what);

/* The next argument, which must be a string without NUL bytes; NULL after
 * an error message if it is missing or is not such a string. */
const char *cli_str_arg(cli_t *c, const char *what);

/* The next argument as a new jansson value, for the rc-file code (see
 * aemp_val_to_json); NULL after an error message if it is missing. */
json_t *cli_json_arg(cli_t *c, const char *what);

/* The NODE argument: a non-empty node ID without a port part; NULL after
 * an error message. */
const char *cli_node_arg(cli_t *c);

/* Every argument left, as a new message (root array); they are consumed. */
aemp_msg_t *cli_rest(cli_t *c);

/* The value to store for key from an argument (arg STOLEN; returns a new
 * reference): a string for a list key (seeds, binds, services,
 * framing_format, auth_offer, auth_accept) becomes the list of its
 * comma-separated parts. */
json_t *cli_value_for(const char *key, json_t *arg);

/* Every argument left, as KEY VALUE pairs in a new jansson object (the
 * form of configure arguments that the rc-file code takes); NULL after an
 * error message (odd count, a key that is not a string). */
json_t *cli_pairs(cli_t *c);

/* A value as text for messages to people: strings as they are (cut at a
 * NUL byte), anything else as aemp_val_text prints it (malloc'd, never
 * NULL). */
char *cli_text(const aemp_val_t *v);

/* Print a value to f: strings as they are (every byte), anything else as
 * aemp_val_text prints it. */
void cli_print_val(FILE *f, const aemp_val_t *v);

/* Pretty-print a jansson value (3-space indent, sorted keys) to stdout. */
void cli_print_pretty(const json_t *v);

/* The rc file, loaded on first use; NULL after an error message (the
 * caller exits with CLI_FAIL). */
aemp_config_t *cli_config(cli_t *c);

/* Save the rc file if it was modified (adding a random secret first if
 * the file is new and no command handled the secret).  0 or -1 after an
 * error message. */
int cli_save(cli_t *c);

/* The command table, terminated by an entry with name NULL. */
extern const cli_cmd_t cli_commands[];

/* ------------------------------------------- aemp_config_cmds.c */

int cli_cmd_set_key(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_del_key(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_add_item(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_del_item(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_set(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_del(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_gensecret(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_setcert(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_gencert(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_profile(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_delprofile(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_setparent(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_delparent(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_showprofile(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_showconfig(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_resolve(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_seeds(cli_t *c, const cli_cmd_t *cmd);

/* The configure arguments of the throw-away client node of the protocol
 * commands (new jansson object, the rc-file code's form). */
json_t *cli_client_args(void);

/* The configure arguments of the client node as a new jansson object: the
 * effective configuration of profile "aemp" (cli_client_args filling
 * gaps), with binds only if profile "aemp" or its parents set them (else
 * none: no listener), and norc.  NULL after an error message. */
json_t *cli_client_config(cli_t *c);

/* The resolved seed addresses ("ip:port" strings, new array) that the
 * configuration gives for profile (NULL: the client's profile "aemp") with
 * configure arguments args (borrowed, may be NULL).  NULL after an error
 * message. */
json_t *cli_resolved_seeds(cli_t *c, const char *profile, const json_t *args);

/* ------------------------------------------------- aemp_cert.c */

/* A new self-signed certificate (CN=AnyEvent::MP, RSA 2048, 3650 days):
 * the certificate followed by its private key, PEM, malloc'd into *pem.
 * 0, or -1 with a message in err. */
int cli_gencert(char **pem, char *err, size_t errlen);

/* ---------------------------------------------- aemp_net_cmds.c */

/* The throw-away client node of a protocol command: configure it (an exit
 * code), run the loop until cli_client_finish(code) and free the node
 * (returns that code). */
int cli_client_start(cli_t *c);
int cli_client_wait(void);
void cli_client_finish(int code);

int cli_cmd_run(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_snd(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_cal(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_mon(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_trace(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_nodes(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_db(cli_t *c, const cli_cmd_t *cmd);

/* ---------------------------------------------- aemp_stats_cmds.c */
int cli_cmd_stats(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_top(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_loglevel(cli_t *c, const cli_cmd_t *cmd);

/* ---------------------------------------------- aemp_eval_cmds.c */
int cli_cmd_eval(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_shell(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_restart(cli_t *c, const cli_cmd_t *cmd);
int cli_cmd_unsupported(cli_t *c, const cli_cmd_t *cmd);

/* --------------------------------------------------- aemp_dot.c */

/* What a node of a graph is (flags). */
enum {
    CLI_NODE_SEED = 1,         /* a seed (drawn as a box) */
    CLI_NODE_GLOBAL = 2,       /* a global node (double outline) */
    CLI_NODE_UNREACHABLE = 4,  /* could not be reached (dashed) */
    CLI_NODE_CLIENT = 8,       /* this client (dotted) */
};

/* A graph of the network for Graphviz (trace --dot, nodes --dot). */
typedef struct cli_graph cli_graph_t;

/* A new, empty graph; cli_graph_free releases it (NULL is fine). */
cli_graph_t *cli_graph_new(void);
void cli_graph_free(cli_graph_t *g);

/* Add node id with flags (OR-ed into any earlier ones). */
void cli_graph_node(cli_graph_t *g, const char *id, unsigned flags);

/* Add the undirected connection a -- b (once per pair; a == b ignored). */
void cli_graph_edge(cli_graph_t *g, const char *a, const char *b);

/* Print the graph in the DOT language ("graph aemp { ... }"), nodes and
 * then edges sorted, to f. */
void cli_graph_print(const cli_graph_t *g, FILE *f);

/* ---------------------------------------------- aemp_watchdog.c */

/* Become the watchdog of `aemp run` (unless AEMP_WATCHDOG=0): fork the
 * node and restart it as aemp_watchdog.c's policy says.  Returns -1 in the
 * node process (go on and run the node), or the supervisor's exit code in
 * the supervisor. */
int cli_watchdog(void);

/* 1 if this process is a node under the watchdog. */
int cli_watched(void);

/* ---------------------------------------------- aemp_services.c */

/* Register the named functions of `aemp run` (aemp::echo, aemp::sink,
 * aemp::restart, ...; docs/aemp.md). */
void cli_services_register(void);

/* 1 once aemp::restart has asked the node to be restarted. */
int cli_services_restart_asked(void);

/* Create the well-known echo port "<nodeid>#echo" (after configure). */
int cli_services_echo_port(void);

/* -------------------------------------------------- aemp_commands.c */

int cli_cmd_help(cli_t *c, const cli_cmd_t *cmd);

/* The command called name, or NULL. */
const cli_cmd_t *cli_find(const char *name);

/* Print the help of one command to stdout. */
void cli_help_command(const cli_cmd_t *cmd);

/* Print the short usage text to f. */
void cli_usage(FILE *f);

#endif
