/* chat_server.c - the tutorial's chat server (AnyEvent::MP's eg/chat_server
 * and eg/chat_server2) as a loadable module: module "chat::server", file
 * chat_server.so.  Start it with a node:
 *
 *     AEMP_MODULE_PATH=<dir of chat_server.so> aemp run nodeid chatsrv \
 *         binds 127.0.0.1:4040 secret s3cret services chat::server::
 *
 * When loaded, it creates the server port "<nodeid>#chat", a well-known
 * name, so clients need only the server's node ID (once the global
 * registry lands, the port will also be registered in the group
 * "eg_chat_server" with grp_reg, as in the tutorial).  Protocol:
 *
 *   ["join", CLIENT, NICK]     (S11) CLIENT is the client's port: it gets
 *                              every chat line as [TEXT] until it dies
 *                              (at most 1024 clients at a time)
 *   ["privmsg", NICK, TEXT]    (S11) broadcast "NICK: TEXT"
 *
 * and the function "chat::server::client_connect" for spawn (S12):
 * spawn(servernode, "chat::server::client_connect", [CLIENT, NICK]) gives a
 * per-client port on the server; every [TEXT] sent to it is broadcast as
 * "NICK: TEXT".  The spawned port is linked to CLIENT.  Spawning it onto a
 * node that has not loaded the module loads it (services on demand, S13).
 *
 * Either way the server monitors each client: when a client port dies, the
 * others read "NICK (quits, <reason>)".
 */
#include <aemp_module.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The clients: port ID -> nick, at most MAX_CLIENTS (joins beyond are
 * refused). */
#define MAX_CLIENTS 1024
typedef struct client {
    char *port;
    char *nick;
} client_t;
static client_t clients[MAX_CLIENTS];
static size_t nclients;
static char server_id[512];  /* "<nodeid>#chat" */

/* The index of client port `port`, or nclients if it is not one. */
static size_t client_index(const char *port)
{
    size_t i = 0;
    while (i < nclients && strcmp(clients[i].port, port))
        i++;
    return i;
}

/* Remember (or rename) a client.  Returns 0, or -1 when the table is full
 * or memory is short. */
static int client_put(const char *port, const char *nick)
{
    size_t i = client_index(port);
    char *n = strdup(nick);
    if (!n)
        return -1;
    if (i < nclients) {
        free(clients[i].nick);
        clients[i].nick = n;
        return 0;
    }
    char *p = nclients < MAX_CLIENTS ? strdup(port) : NULL;
    if (!p) {
        free(n);
        return -1;
    }
    clients[nclients++] = (client_t){ p, n };
    return 0;
}

/* Forget a client (no-op if unknown). */
static void client_del(const char *port)
{
    size_t i = client_index(port);
    if (i == nclients)
        return;
    free(clients[i].port);
    free(clients[i].nick);
    clients[i] = clients[--nclients];
}

/* Send [text] to every client. */
static void broadcast(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void broadcast(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    aemp_log(AEMP_LOG_INFO, "chat: relaying: %s", text);
    for (size_t i = 0; i < nclients; i++)
        aemp_sndf(clients[i].port, "s", text);
}

/* A kill reason as text: the elements from `from` on, separated by spaces
 * (Perl's "@_"); strings as they are, other values as JSON-like text. */
static void reason_text(const aemp_msg_t *reason, size_t from, char *out, size_t size)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = from; i < aemp_msg_len(reason) && n < size; i++) {
        const char *str = aemp_msg_str(reason, i, NULL);
        char *t = str ? NULL : aemp_val_text(aemp_msg_at(reason, i));
        n += snprintf(out + n, size - n, "%s%s", i > from ? " " : "", t ? t : str);
        free(t);
    }
}

/* [CLIENT, CLIENT, NICK, reason...]: a client port died (the message of
 * the monitor set up by add_client, under the tag CLIENT). */
static void on_client_gone(aemp_msg_t *msg, void *arg)
{
    const char *client = aemp_msg_str(msg, 1, NULL);
    const char *nick = aemp_msg_str(msg, 2, NULL);
    if (!client || !nick)
        return;
    char why[1024];
    reason_text(msg, 3, why, sizeof why);
    aemp_rcv_tag(aemp_self(), client, NULL, NULL);
    client_del(client);
    broadcast("%s (quits, %s)", nick, why);
    if (strcmp(aemp_self(), server_id))
        aemp_kil(aemp_self(), NULL);   /* a spawned per-client port ends with its client */
}

/* Add a client and monitor it from SELF: when it dies, SELF receives
 * [CLIENT, CLIENT, NICK, reason...] - a tag unique to this client. */
static int add_client(const char *client, const char *nick)
{
    if (client_index(client) == nclients && nclients == MAX_CLIENTS)
        return AEMP_EINVAL;   /* full: checked before anything is set up */
    int r = aemp_rcv_tag(aemp_self(), client, on_client_gone, NULL);
    if (r < 0)
        return r;
    r = aemp_mon_snd(client, aemp_self(), aemp_msgf("sss", client, client, nick), NULL);
    if (r < 0)
        return r;
    if (client_put(client, nick) < 0)
        return AEMP_EINVAL;
    broadcast("%s (joins)", nick);
    return 0;
}

/* ["join", CLIENT, NICK] */
static void on_join(aemp_msg_t *msg, void *arg)
{
    const char *client = aemp_msg_str(msg, 1, NULL);
    const char *nick = aemp_msg_str(msg, 2, NULL);
    if (!client || !nick || add_client(client, nick) < 0)
        aemp_log(AEMP_LOG_WARN, "chat: join ignored (malformed, or too many clients)");
}

/* ["privmsg", NICK, TEXT] */
static void on_privmsg(aemp_msg_t *msg, void *arg)
{
    const char *nick = aemp_msg_str(msg, 1, NULL);
    const char *text = aemp_msg_str(msg, 2, NULL);
    if (nick && text)
        broadcast("%s: %s", nick, text);
}

/* Anything else: ignore it (instead of dying of "unhandled_message"). */
static void on_other(aemp_msg_t *msg, void *arg)
{
    aemp_log(AEMP_LOG_WARN, "chat: unknown message ignored");
}

/* A spawned per-client port: [TEXT] from its client. */
static void on_line(aemp_msg_t *msg, void *arg)
{
    const char *text = aemp_msg_str(msg, 0, NULL);
    if (text)
        broadcast("%s: %s", (const char *)arg, text);
}

/* chat::server::client_connect [CLIENT, NICK]: runs in the new port. */
static void client_connect(aemp_msg_t *args, void *arg)
{
    const char *client = aemp_msg_str(args, 0, NULL);
    const char *nick = aemp_msg_str(args, 1, NULL);
    if (!client || !nick) {
        aemp_die("usage: spawn NODE, chat::server::client_connect, CLIENT, NICK");
        return;
    }
    char *copy = strdup(nick);
    if (!copy) {
        aemp_die("out of memory");
        return;
    }
    const char *self = aemp_self();
    aemp_mon_guard(self, free, copy, NULL);   /* freed with the port */
    aemp_rcv(self, on_line, copy);
    /* the cleanup monitor first: its message reaches SELF before the link
     * below kills it (monitors fire in the order they were set up) */
    if (add_client(client, nick) < 0) {
        aemp_die("cannot monitor client %s", client);
        return;
    }
    aemp_mon_kil(client, self, NULL);         /* linked to the client */
}

int aemp_module_init(const char *module_name)
{
    int n = snprintf(server_id, sizeof server_id, "%s#chat", aemp_node());
    if (n < 0 || (size_t)n >= sizeof server_id)
        return 1;
    if (aemp_rcv(server_id, on_other, NULL) < 0 || aemp_rcv_tag(server_id, "join", on_join, NULL) < 0
        || aemp_rcv_tag(server_id, "privmsg", on_privmsg, NULL) < 0)
        return 2;
    aemp_func_register("chat::server::client_connect", client_connect, NULL);
    aemp_log(AEMP_LOG_INFO, "chat: server ready at %s (module %s)", server_id, module_name);
    return 0;
}
