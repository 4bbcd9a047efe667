/* aemp_commands.c - the aemp command table and the help texts.
 * An entry whose fn is NULL is a section heading of the help listing.
 */
#include "aemp_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* setKEY VALUE, its alias KEY VALUE, and delKEY for one configuration key. */
#define KEY_COMMANDS(key, arg, summary, help)                                              \
    { "set" key, cli_cmd_set_key, key, arg, summary, help, NULL },                         \
    { key, cli_cmd_set_key, key, arg, summary, help, "set" key },                          \
    { "del" key, cli_cmd_del_key, key, "", "remove " key " from the current target",      \
      "Remove the key '" key "' from the current target (the global section, or the "     \
      "profile chosen with 'profile NAME'), so that a parent profile, the global "        \
      "section or the built-in default applies again.", NULL }

#define LIST_HELP                                                                          \
    " LIST is a comma-separated list (\"a:1,b:2\") or a JSON array ('[\"a:1\",\"b:2\"]')."

#define ENDPOINT_HELP                                                                      \
    " An endpoint is HOST:PORT, [IPv6]:PORT, HOST (port 0), PORT (this host), '*:PORT' "   \
    "(every local address); port '*' or 0 means an ephemeral port."

const cli_cmd_t cli_commands[] = {
    { "Configuration commands (they edit the current target: the global section, or the "
      "profile chosen with 'profile NAME'; the rc file is written when the command line "
      "has completed without error):", NULL, NULL, NULL, NULL, NULL, NULL },
    { "profile", cli_cmd_profile, NULL, "NAME", "make profile NAME the current target (created if missing)",
      "Make profile NAME the target of the following configuration commands. The profile "
      "is created (empty) if it does not exist. Example: aemp profile seed setbinds '*:4040'", NULL },
    { "delprofile", cli_cmd_delprofile, NULL, "NAME", "delete profile NAME",
      "Delete profile NAME from the rc file (an error if there is no such profile). If it "
      "was the current target, the global section becomes the target.", NULL },
    { "setparent", cli_cmd_setparent, NULL, "NAME", "set the parent profile of the current profile",
      "Make NAME the parent of the current target, which must be a profile: keys missing in "
      "the profile are taken from the parent chain, then from the global section. A chain "
      "that would loop is refused. Also: parent NAME.", NULL },
    { "parent", cli_cmd_setparent, NULL, "NAME", "set the parent profile of the current profile",
      "Make NAME the parent of the current target, which must be a profile: keys missing in "
      "the profile are taken from the parent chain, then from the global section. A chain "
      "that would loop is refused.", "setparent" },
    { "delparent", cli_cmd_delparent, NULL, "", "remove the parent of the current profile",
      "Remove the 'parent' key of the current target.", NULL },
    KEY_COMMANDS("nodeid", "ID", "set the node ID",
                 "Set the node ID. '%n' becomes the host name; '%u', and a trailing '/', become "
                 "10 random characters (so 'client/' gives client/<random>); 'anon/' gives "
                 "anon/<random>. Without a node ID a node is called '<profile>/'."),
    { "gensecret", cli_cmd_gensecret, NULL, "", "set the secret to a new random string",
      "Set the secret to a new random string of 86 base-62 characters (512 bits). Nodes "
      "authenticate each other with the shared secret. A new rc file always gets one.", NULL },
    KEY_COMMANDS("secret", "SECRET", "set the shared secret",
                 "Set the shared secret that nodes use to authenticate each other (HMAC). "
                 "Nodes that should talk to each other need the same secret."),
    { "gencert", cli_cmd_gencert, NULL, "", "generate a self-signed TLS certificate into cert",
      "Generate a self-signed certificate (RSA 2048 bits, CN=AnyEvent::MP, valid 3650 days) "
      "and store it, followed by its private key (PEM), in 'cert' - what Perl's aemp does "
      "with 'openssl req'. A node with a cert announces TLS; two nodes that both do talk "
      "TLS (no fallback), and each must present a certificate signed by one in the other's "
      "cert - so give every node the same cert (generate it once, e.g. in the global "
      "section). Over TLS no shared secret is needed (auth tls_sha3_512 or tls_md6_64_256); "
      "towards a node without cert the secret is used. See docs/tls.md.", NULL },
    { "setcert", cli_cmd_setcert, "cert", "FILE", "store the PEM file FILE in cert",
      "Store the content of FILE (an unencrypted private key, its certificate and optional "
      "CA certificates, PEM, in any order) in 'cert'. Every certificate in it is also "
      "trusted to sign peers' certificates (no host-name check). The text is checked when "
      "a node is configured. Also: cert FILE.", NULL },
    { "cert", cli_cmd_setcert, "cert", "FILE", "store the PEM file FILE in cert",
      "Store the content of FILE (an unencrypted private key, its certificate and optional "
      "CA certificates, PEM, in any order) in 'cert'. Every certificate in it is also "
      "trusted to sign peers' certificates (no host-name check).", "setcert" },
    { "delcert", cli_cmd_del_key, "cert", "", "remove cert from the current target",
      "Remove the key 'cert' from the current target: the node no longer offers TLS and "
      "authenticates with the shared secret.", NULL },
    { "setseeds", cli_cmd_set_key, "seeds", "LIST", "set the seed endpoints",
      "Replace the list of seeds: the endpoints a node connects to in order to join the "
      "network." LIST_HELP ENDPOINT_HELP " Also: seeds LIST.", NULL },
    { "seeds", cli_cmd_seeds, "seeds", "[LIST]", "set the seeds, or (as the last word) print them",
      "With an argument: an alias of setseeds (replace the seed list)." LIST_HELP
      " As the last word of the command line (no argument): print the resolved seed "
      "addresses of the current profile's effective configuration, one per line - by "
      "default of profile 'aemp', the one the protocol commands use.", NULL },
    { "delseeds", cli_cmd_del_key, "seeds", "", "remove seeds from the current target",
      "Remove the key 'seeds' from the current target.", NULL },
    { "addseed", cli_cmd_add_item, "seeds", "ENDPOINT", "append a seed (removing an equal one first)",
      "Append ENDPOINT to the seeds of the current target, after removing every equal "
      "entry (so it is never listed twice)." ENDPOINT_HELP, NULL },
    { "delseed", cli_cmd_del_item, "seeds", "ENDPOINT", "remove a seed",
      "Remove every entry equal to ENDPOINT from the seeds of the current target.", NULL },
    { "setbinds", cli_cmd_set_key, "binds", "LIST", "set the listening endpoints",
      "Replace the list of binds: the endpoints a node listens on (default '*', every "
      "local address with an ephemeral port)." LIST_HELP ENDPOINT_HELP " Also: binds LIST.", NULL },
    { "binds", cli_cmd_set_key, "binds", "LIST", "set the listening endpoints",
      "Replace the list of binds: the endpoints a node listens on." LIST_HELP ENDPOINT_HELP,
      "setbinds" },
    { "delbinds", cli_cmd_del_key, "binds", "", "remove binds from the current target",
      "Remove the key 'binds' from the current target.", NULL },
    { "addbind", cli_cmd_add_item, "binds", "ENDPOINT", "append a bind (removing an equal one first)",
      "Append ENDPOINT to the binds of the current target, after removing every equal "
      "entry." ENDPOINT_HELP, NULL },
    { "delbind", cli_cmd_del_item, "binds", "ENDPOINT", "remove a bind",
      "Remove every entry equal to ENDPOINT from the binds of the current target.", NULL },
    { "setservices", cli_cmd_set_key, "services", "LIST", "set the services started at configure time",
      "Replace the list of services: functions a node calls when it is configured. An "
      "entry is a function name, or a JSON array [\"function\", args...]." LIST_HELP
      " Also: services LIST.", NULL },
    { "services", cli_cmd_set_key, "services", "LIST", "set the services started at configure time",
      "Replace the list of services: functions a node calls when it is configured." LIST_HELP,
      "setservices" },
    { "delservices", cli_cmd_del_key, "services", "", "remove services from the current target",
      "Remove the key 'services' from the current target.", NULL },
    { "addservice", cli_cmd_add_item, "services", "SPEC", "append a service (duplicates allowed)",
      "Append SPEC (a function name, or a JSON array '[\"function\",args...]') to the "
      "services of the current target.", NULL },
    { "delservice", cli_cmd_del_item, "services", "SPEC", "remove the first equal service",
      "Remove the first entry equal to SPEC from the services of the current target.", NULL },
    KEY_COMMANDS("monitor_timeout", "SECONDS", "set the handshake timeout / retry cap",
                 "Set monitor_timeout (default 30): the handshake timeout and the longest "
                 "interval between connection attempts to a seed."),
    KEY_COMMANDS("connect_interval", "SECONDS", "set the per-connect deadline",
                 "Set connect_interval (default 2): how long one attempt to reach a node may "
                 "take (messages to it wait that long at most)."),
    KEY_COMMANDS("framing_format", "LIST", "set the accepted framings",
                 "Set framing_format, the framings accepted in order of preference (default "
                 "cbor,json; 'storable' is understood by Perl only)." LIST_HELP),
    KEY_COMMANDS("auth_offer", "LIST", "set the auth methods we send",
                 "Set auth_offer, the authentication methods this node is willing to send "
                 "(default tls_sha3_512,hmac_sha3_512,tls_md6_64_256,hmac_md6_64_256)." LIST_HELP),
    KEY_COMMANDS("auth_accept", "LIST", "set the auth methods we accept",
                 "Set auth_accept, the authentication methods accepted from the peer (default "
                 "adds tls_anon and cleartext to auth_offer's; cleartext needs no secret)." LIST_HELP),
    KEY_COMMANDS("autocork", "BOOL", "set autocork (batch writes)",
                 "Set autocork (default false). libaemp always batches writes per loop pass."),
    KEY_COMMANDS("nodelay", "BOOL", "set TCP_NODELAY",
                 "Set nodelay (default true): TCP_NODELAY on connections."),
    KEY_COMMANDS("secure", "BOOL", "refuse remote code execution (2.02)",
                 "Set secure (default false): refuse eval and dynamically resolved node-port "
                 "requests (including spawn) from other nodes."),
    KEY_COMMANDS("dialect", "DIALECT", "set the protocol dialect (libaemp)",
                 "Set dialect (libaemp only): 'both' (default), '1.30' or '2.02' - which "
                 "AnyEvent::MP dialects this node speaks."),
    KEY_COMMANDS("max_frame", "BYTES", "set the largest accepted frame (libaemp)",
                 "Set max_frame (libaemp only, default 16777216): the largest frame accepted "
                 "from a peer."),
    { "set", cli_cmd_set, NULL, "KEY VALUE", "set any key of the current target",
      "Set KEY to VALUE in the current target (a string unless it is JSON). Known keys are "
      "type-checked; a key libaemp does not know is stored with a warning. List keys "
      "accept a comma-separated string.", NULL },
    { "del", cli_cmd_del, NULL, "KEY", "remove any key from the current target",
      "Remove KEY from the current target (a warning for a key libaemp does not know).", NULL },
    { "showprofile", cli_cmd_showprofile, NULL, "NAME", "print a profile's own values",
      "Print the values set in profile NAME itself (pretty JSON, keys sorted), without "
      "those inherited from parents or the global section.", NULL },
    { "showconfig", cli_cmd_showconfig, NULL, "[NAME [KEY VALUE...]]", "print the effective configuration",
      "Print the configuration a node configured with profile NAME (default: the host name) "
      "and the configure arguments KEY VALUE... would use: built-in defaults < arguments < "
      "global section < parent chain < profile. Consumes the rest of the command line.", NULL },
    { "_resolve", cli_cmd_resolve, NULL, "ENDPOINTS", "print resolved endpoints",
      "Resolve ENDPOINTS (a comma-separated list or a JSON array of endpoints) to ip:port "
      "addresses and print them one per line." ENDPOINT_HELP, NULL },

    { "Running a node:", NULL, NULL, NULL, NULL, NULL, NULL },
    { "run", cli_cmd_run, NULL, "[PROFILE] [KEY VALUE...]", "configure and run a node until SIGTERM/SIGINT",
      "Configure a node with the configure arguments KEY VALUE... (an odd count: the first "
      "is the profile name), e.g. 'aemp run profile seed' or 'aemp run nodeid x binds "
      "127.0.0.1:0'. Values in the rc file win over these arguments unless 'force 1' is "
      "given (a value the rc file overrides is warned about). Prints '<nodeid> listening on "
      "<addr>[,<addr>...]' and runs until SIGTERM or SIGINT (exit 0); SIGHUP is logged and "
      "ignored. The node offers the spawnable functions aemp::echo (the port echoes "
      "each message, minus its last element, to the port ID in its last element), "
      "aemp::grp_echo GROUP (an echo port in group GROUP), "
      "aemp::sink (counts messages; ['count', REPLYPORT] is answered with the count), "
      "aemp::link (argument PORT: ignores messages and dies with PORT's reason when PORT "
      "dies abnormally), aemp::die (dies with 'die','requested') and aemp::ioclient (a "
      "client of examples/ioserver); the functions aemp::db_set FAMILY KEY VALUE, "
      "aemp::db_del FAMILY KEY, aemp::grp_get GROUP REPLYPORT and aemp::reply PORT ARGS... "
      "for node-port requests ('aemp snd NODE aemp::db_set f k v'); and the port "
      "<nodeid>#echo, which echoes like aemp::echo. See docs/aemp.md. Unlike Perl's aemp it is not restarted by a watchdog. Consumes the "
      "rest of the command line.", NULL },

    { "Protocol commands (they configure a client node first: profile 'aemp', node ID "
      "aemp/%n/%u, so the rc file's profile 'aemp' sets its seeds and secret; the client "
      "listens nowhere unless profile 'aemp' sets binds; results go to stdout, errors to "
      "stderr; they consume the rest of the command line):", NULL, NULL, NULL, NULL, NULL, NULL },
    { "snd", cli_cmd_snd, NULL, "PORT [ARG...]", "send a message and confirm its delivery",
      "Send [ARG...] to PORT, then ask PORT's node to relay 'message sent successfully' back "
      "(which proves the message arrived) while monitoring PORT. Prints that line (exit 0), or "
      "the kill reason of PORT on stderr and nothing on stdout (exit 1); exit 1 after 5 s "
      "without an answer. A node ID as "
      "PORT addresses its node port, e.g. 'aemp snd NODE kil1 PORTNAME reason text'.", NULL },
    { "cal", cli_cmd_cal, NULL, "PORT [ARG...]", "call PORT and print the reply",
      "Send [ARG..., REPLYPORT] to PORT and print the reply's values JSON-encoded and "
      "comma-separated (a JSON array without brackets), e.g. 'aemp cal NODE#echo hello' "
      "prints \"hello\". Exit 1 if PORT dies first or after 5 s without reply. Arguments are "
      "strings unless JSON (aemp '[\"cal\",\"NODE#echo\",1]' sends the number 1).", NULL },
    { "mon", cli_cmd_mon, NULL, "PORT", "wait until PORT dies and print the reason",
      "Monitor PORT and wait (without time limit) until it dies; print the kill reason, "
      "space-separated (an empty line for a normal death). Exit 0 for a normal death, 1 "
      "for any other reason (including no_such_port and transport_error).", NULL },
    { "trace", cli_cmd_trace, NULL, "NODE [--dot]", "print the network as seen from NODE",
      "Ask NODE for its connected nodes (the 1.30 node-port request up_nodes), then every "
      "newly seen node, recursively. Prints 'seed NODE', then one line per node that "
      "answered: '<node> <neighbour>...' (without this client). Nodes that cannot be "
      "reached are named on stderr. Exit 0 when all answered, 1 if some could not be "
      "reached or after 15 s. With --dot the same as a Graphviz graph (aemp trace NODE --dot "
      "| dot -Tsvg >net.svg): every node that answered or was named, each connection once, "
      "NODE as a box, global nodes (asked of the client's master, at most 2 s more) with a "
      "double outline, unreachable nodes dashed. Note: Perl 2.02 nodes do not answer "
      "up_nodes (the request was removed in 2.x), so tracing through them times out.", NULL },
    { "nodes", cli_cmd_nodes, NULL, "[--dot]", "connect to the seeds and print the connected nodes",
      "Connect as a client to the seeds of profile 'aemp', wait until they are connected "
      "(at most 3 s), and print the IDs of the connected nodes, one per line. A client "
      "connects only to its seeds (and the nodes it talks to), so this lists the seeds' "
      "node IDs; use 'trace NODE' to see further. With --dot a Graphviz graph: the client "
      "(dotted) connected to each seed (a box; global nodes with a double outline). Exit 1 "
      "if no seed is configured or none could be reached.", NULL },
    { "stats", cli_cmd_stats, NULL, "NODE", "print a libaemp node's counters",
      "Ask NODE (a libaemp node) for its counters and gauges (the node-port request 'stats', "
      "also aemp_stats() and the Prometheus 'metrics' bind): connections, ports, monitors, "
      "messages and bytes in and out, queue bytes, drops by limit, shed and failed handshakes, "
      "then one line per connected node. Exit 1 without an answer within 5 s (Perl nodes do "
      "not answer). docs/security.md lists every counter.", NULL },
    { "top", cli_cmd_top, NULL, "NODE [INTERVAL [COUNT]]", "watch a libaemp node's counters live",
      "Like stats, refreshed every INTERVAL seconds (default 1) with message rates per second, "
      "node-wide and per connected node; stops after COUNT refreshes (default: until "
      "interrupted). The screen is cleared between refreshes when stdout is a terminal.", NULL },
    { "loglevel", cli_cmd_loglevel, NULL, "NODE LEVEL", "set a running libaemp node's log level",
      "Set NODE's log level to LEVEL (0..9) at run time (the node-port request 'loglevel'); "
      "prints the new and the old level. At 9 the node logs every frame in and out, "
      "abbreviated. Exit 1 if the node refuses or does not answer within 5 s.", NULL },
    { "db", cli_cmd_db, NULL, "[--keys] FAMILY", "print a family of the global database",
      "Connect as a client to the seeds of profile 'aemp', wait until one of them is the "
      "client's master, ask it for FAMILY in the global database (aemp_db_family) and print "
      "its entries sorted by key, one per line: the key, a space, the value as JSON (nothing "
      "for an empty or unknown family); exit 0. With --keys only the keys (aemp_db_keys), "
      "e.g. 'aemp db --keys workers' lists the members of the group 'workers'. Exit 1 "
      "if no seed is configured or after 5 s without an answer.", NULL },
    { "eval", cli_cmd_eval, NULL, "NODE EXPR...", "evaluate a Perl expression on a Perl node",
      "Send EXPR (the arguments joined by spaces) to NODE's node port as the request 'eval': "
      "NODE evaluates it (the tool does not) and the results are printed one per line; an "
      "error of the evaluation goes to stderr. Works against every Perl node that allows eval; "
      "a libaemp node answers 'cannot evaluate: this node is libaemp, not Perl'. Exit 0 on "
      "success, 1 for an error or no answer within 10 s.", NULL },
    { "shell", cli_cmd_shell, NULL, "NODE", "evaluate lines of Perl on a Perl node",
      "Read lines from stdin (a prompt when it is a terminal; a pipe works too) and evaluate "
      "each on NODE like 'eval', printing the results or the error, until end of input. "
      "Exit 0 at the end of input.", NULL },
    { "restart", cli_cmd_restart, NULL, "NODE", "restart a node running under a watchdog",
      "Restart NODE: a Perl node through AnyEvent::Watchdog (the code Perl's aemp evaluates on "
      "it), a libaemp node started by 'aemp run' through its watchdog (the function "
      "aemp::restart). Prints 'NODE: restarting', exit 0; exit 1 if the node cannot restart "
      "(no watchdog, secure mode) or does not answer within 10 s.", NULL },

    { "Help:", NULL, NULL, NULL, NULL, NULL, NULL },
    { "help", cli_cmd_help, NULL, "[COMMAND]", "print this help, or the help of COMMAND",
      "Print the list of commands, or the help of COMMAND ('aemp COMMAND --help' does the "
      "same). Ends the command line.", NULL },
    { NULL, NULL, NULL, NULL, NULL, NULL, NULL },
};

/* The command called name (section headings are not commands). */
const cli_cmd_t *cli_find(const char *name)
{
    for (const cli_cmd_t *c = cli_commands; c->name; c++)
        if (c->fn && !strcmp(c->name, name))
            return c;
    return NULL;
}

/* Print text wrapped at 78 columns with the given indentation. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
    int col = indent;
    fprintf(f, "%*s", indent, "");
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        if (col > indent && col + 1 + (int)n > 78) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        fprintf(f, "%s%.*s", col > indent ? " " : "", (int)n, p);
        col += (col > indent ? 1 : 0) + (int)n;
        p += n;
    }
    fputc('\n', f);
}

/* The short usage text. */
void cli_usage(FILE *f)
{
    fputs("usage: aemp SUBCOMMAND [ARGS...] [SUBCOMMAND [ARGS...]]...\n"
          "Try 'aemp help' for the list of subcommands.\n",
          f);
}

/* The help of one command. */
void cli_help_command(const cli_cmd_t *cmd)
{
    printf("usage: aemp %s%s%s\n\n", cmd->name, *cmd->args ? " " : "", cmd->args);
    if (cmd->alias_of)
        printf("  Alias of '%s'.\n\n", cmd->alias_of);
    print_wrapped(stdout, cmd->help ? cmd->help : cmd->summary, 2);
    fputs("\nSee 'aemp help' for the general syntax and the exit codes.\n", stdout);
}

/* The full help: syntax, every command, exit codes, environment. */
static void help_all(void)
{
    fputs("usage: aemp SUBCOMMAND [ARGS...] [SUBCOMMAND [ARGS...]]...\n\n", stdout);
    print_wrapped(stdout,
                  "aemp manages the AnyEvent::MP configuration file shared by libaemp and Perl "
                  "nodes, runs nodes and talks to them. Subcommands run from left to right, each "
                  "taking its arguments, e.g.: aemp gensecret profile xyzzy binds 4040,4041 "
                  "nodeid anon/",
                  0);
    putchar('\n');
    print_wrapped(stdout,
                  "JSON arguments: if the only argument starts with '[', it is a JSON array that "
                  "replaces the whole argument list; otherwise every argument starting with '[', "
                  "'{' or '\"' is decoded as one JSON value (e.g. aemp setbinds '[\"*:4040\"]'). "
                  "Other arguments are strings.",
                  0);
    for (const cli_cmd_t *c = cli_commands; c->name; c++) {
        if (!c->fn) {
            putchar('\n');
            print_wrapped(stdout, c->name, 0);
            continue;
        }
        char head[256];
        snprintf(head, sizeof head, "%s%s%s", c->name, *c->args ? " " : "", c->args);
        if (c->alias_of)
            printf("  %-30s alias of %s\n", head, c->alias_of);
        else if (strlen(head) > 30)
            printf("  %s\n  %-30s %s\n", head, "", c->summary);
        else
            printf("  %-30s %s\n", head, c->summary);
    }
    fputs("\nExit codes:\n"
          "  0  success\n"
          "  1  failure: the operation failed (bad rc file, unwritable file, refused value,\n"
          "     network error), a timeout, or an abnormal death seen by mon/snd/cal\n"
          "  2  usage error: unknown command, missing or malformed argument, bad JSON\n"
          "  3  not supported by this implementation (eval, shell, restart)\n"
          "\nOptions (alone on the command line):\n"
          "  --version  the versions of aemp and of the libaemp it runs with, and the\n"
          "             module directory searched last\n"
          "  --help     this text\n"
          "\nEnvironment:\n"
          "  PERL_ANYEVENT_MP_RC  the rc file (default $HOME/.perl-anyevent-mp)\n"
          "  AEMP_WARNLEVEL       log level on stderr, 0-9 (also PERL_ANYEVENT_MP_WARNLEVEL);\n"
          "                       default 5 for run, 2 for the protocol commands\n"
          "\n'aemp help COMMAND' or 'aemp COMMAND --help' describes one command.\n",
          stdout);
}

/* help [COMMAND]. */
int cli_cmd_help(cli_t *c, const cli_cmd_t *cmd)
{
    if (cli_left(c)) {
        const aemp_val_t *v = aemp_msg_at(c->args, c->pos);
        const char *name = aemp_val_str(v, NULL);
        const cli_cmd_t *which = name ? cli_find(name) : NULL;
        if (!which) {
            char *t = cli_text(v);
            cli_err(c, "no such aemp command '%s' (try 'aemp help')", t);
            free(t);
            return CLI_USAGE;
        }
        cli_help_command(which);
    } else {
        help_all();
    }
    c->pos = aemp_msg_len(c->args);
    return CLI_OK;
}
