/* chat_client.c - the tutorial's resilient chat client (AnyEvent::MP's
 * eg/chat_client, S11, and eg/chat_client2, S12) for the chat server module
 * (chat_server.c).
 *
 *     chat_client [-2] [-s SECRET] NICK SERVERNODE SEED...
 *
 * It configures a node "chat-NICK/<unique>" with the seeds (endpoints such
 * as 127.0.0.1:4040; the server itself will do) and the secret, then joins
 * the server: a client port prints every chat line it receives; lines read
 * from stdin are sent as ["privmsg", NICK, LINE] to SERVERNODE#chat.  With
 * -2 it spawns a per-client port on the server instead
 * ("chat::server::client_connect") and sends the lines there.
 *
 * Supervision: the client monitors its own port, and links it to the
 * server port (mon server -> kill client).  So when the server or its node
 * dies the client port dies too; the client prints "disconnected <reason>"
 * and tries to join again every second until the server is back.  The
 * server monitors the client port the same way: when this program dies
 * the others read "NICK (quits, <reason>)".  End of input leaves the chat.
 *
 * Output lines (stdout, flushed): "connecting to SERVERNODE...", every chat
 * line, "disconnected <reason>", "bye".
 */
#include <aemp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *nick;
static const char *server_node;
static char server_port[512];   /* SERVERNODE#chat */
static int spawn_mode;          /* -2: S12 */

static char *client;            /* our current client port, or NULL */
static char *target;            /* where lines go: the server port or our spawned port */
static int joined;              /* our own "(joins)" line came back */
static int quitting;
static char joins_line[512];

static void server_connect(void *arg);

/* A kill reason as text: the elements separated by spaces. */
static void print_reason(const char *prefix, const aemp_msg_t *reason)
{
    fputs(prefix, stdout);
    for (size_t i = 0; i < aemp_msg_len(reason); i++) {
        const char *str = aemp_msg_str(reason, i, NULL);
        char *t = str ? NULL : aemp_val_text(aemp_msg_at(reason, i));
        printf(" %s", t ? t : str);
        free(t);
    }
    putchar('\n');
    fflush(stdout);
}

/* The client port: [TEXT] from the server. */
static void on_message(aemp_msg_t *msg, void *arg)
{
    const char *text = aemp_msg_str(msg, 0, NULL);
    if (!text)
        return;
    if (!joined && !strcmp(text, joins_line))
        joined = 1;
    printf("%s\n", text);
    fflush(stdout);
}

/* The client port died: we lost the server (or left). */
static void on_client_death(aemp_msg_t *reason, void *arg)
{
    free(client);
    free(target);
    client = target = NULL;
    if (quitting)
        return;
    if (joined)
        print_reason("disconnected", reason);
    else
        aemp_log(AEMP_LOG_INFO, "join failed, retrying");
    joined = 0;
    aemp_after_cb(1.0, server_connect, NULL, NULL);
}

/* Join the server with a fresh client port (the supervisor's step). */
static void server_connect(void *arg)
{
    if (quitting || client)
        return;
    client = strdup(aemp_port(on_message, NULL));
    aemp_mon(client, on_client_death, NULL, NULL);
    if (spawn_mode) {
        /* S12: a port of our own on the server, running client_connect */
        target = aemp_spawn(server_node, "chat::server::client_connect", aemp_msgf("ss", client, nick));
    } else {
        /* S11: join the server port */
        target = strdup(server_port);
        aemp_sndf(server_port, "sss", "join", client, nick);
    }
    if (!target) {
        fprintf(stderr, "chat_client: bad server node '%s'\n", server_node);
        exit(2);
    }
    aemp_mon_kil(target, client, NULL);   /* server gone => client gone */
}

/* Leave: kill our port normally, stop the loop soon after. */
static void stop_soon(void *arg)
{
    aemp_stop();
}

static void quit(void)
{
    if (quitting)
        return;
    quitting = 1;
    if (client)
        aemp_kil(client, NULL);
    printf("bye\n");
    fflush(stdout);
    aemp_after_cb(0.3, stop_soon, NULL, NULL);
}

/* stdin: one chat line per input line. */
static char linebuf[4096];
static size_t linelen;

static void send_line(const char *line)
{
    if (!*line)
        return;
    if (!joined || !target) {
        printf("(not connected, line dropped)\n");
        fflush(stdout);
    } else if (spawn_mode) {
        aemp_sndf(target, "s", line);
    } else {
        aemp_sndf(server_port, "sss", "privmsg", nick, line);
    }
}

static void on_stdin(struct ev_loop *loop, ev_io *w, int revents)
{
    ssize_t n = read(w->fd, linebuf + linelen, sizeof linebuf - 1 - linelen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        ev_io_stop(loop, w);
        quit();
        return;
    }
    linelen += (size_t)n;
    linebuf[linelen] = 0;
    char *start = linebuf, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = 0;
        send_line(start);
        start = nl + 1;
    }
    linelen -= (size_t)(start - linebuf);
    memmove(linebuf, start, linelen);
    if (linelen == sizeof linebuf - 1) {   /* an over-long line: send what we have */
        linebuf[linelen] = 0;
        send_line(linebuf);
        linelen = 0;
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: chat_client [-2] [-s SECRET] NICK SERVERNODE SEED...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *secret = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "2s:")) != -1) {
        if (opt == '2')
            spawn_mode = 1;
        else if (opt == 's')
            secret = optarg;
        else
            return usage();
    }
    if (argc - optind < 3)
        return usage();
    nick = argv[optind];
    server_node = argv[optind + 1];
    snprintf(server_port, sizeof server_port, "%s#chat", server_node);
    snprintf(joins_line, sizeof joins_line, "%s (joins)", nick);

    /* configure: our arguments win over the rc file ("force") */
    char nodeid[256];
    snprintf(nodeid, sizeof nodeid, "chat-%s/", nick);
    aemp_build_t *b = aemp_build_new();
    aemp_build_map(b);
    aemp_build_fmt(b, "s:s, s:s, s:[s], s:b", "profile", "chat_client", "nodeid", nodeid, "binds", "127.0.0.1:0",
                   "force", 1);
    aemp_build_str(b, "seeds");
    aemp_build_array(b);
    for (int i = optind + 2; i < argc; i++)
        aemp_build_str(b, argv[i]);
    aemp_build_close(b);
    if (secret)
        aemp_build_fmt(b, "s:s", "secret", secret);
    aemp_build_close(b);
    aemp_msg_t *args = aemp_build_root(b);
    char err[512];
    if (!args || aemp_configure(args, err, sizeof err) < 0) {
        fprintf(stderr, "chat_client: %s\n", args ? err : "cannot build the configuration");
        aemp_msg_unref(args);
        return 1;
    }
    aemp_msg_unref(args);

    printf("connecting to %s...\n", server_node);
    fflush(stdout);
    server_connect(NULL);

    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    ev_io in;
    ev_io_init(&in, on_stdin, 0, EV_READ);
    ev_io_start(aemp_loop(), &in);
    aemp_run();
    ev_io_stop(aemp_loop(), &in);
    aemp_shutdown();
    free(client);
    free(target);
    return 0;
}
