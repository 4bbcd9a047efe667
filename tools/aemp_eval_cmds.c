/* aemp_eval_cmds.c - `aemp eval NODE EXPR...`, `aemp shell NODE` and
 * `aemp restart NODE`: the remote node evaluates, not the tool.  Both send the node-port request
 *     ["", "eval", <code>, <reply port>]
 * which a Perl node answers with (<error or "">, <results>...); a libaemp
 * node answers with the error "cannot evaluate: ..." (it has no Perl). */
#include "aemp_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVAL_TIMEOUT 10.0

static struct {
    const char *node;
    int shell;
    int waiting;             /* a request is out */
    int eof;
    int failed;              /* eval: the exit code */
    char buf[65536];
    size_t len;
    ev_io in;
} ev_st;

/* Print a reply: the results one per line, or the error on stderr.
 * Returns 0, or -1 for an error or no reply. */
static int print_reply(aemp_msg_t *reply)
{
    if (!reply) {
        fprintf(stderr, "aemp: %s: no answer from %s within %g s\n", ev_st.shell ? "shell" : "eval",
                ev_st.node, EVAL_TIMEOUT);
        return -1;
    }
    const char *error = aemp_msg_str(reply, 0, NULL);
    if (error && *error) {
        fprintf(stderr, "aemp: %s: %s: %s\n", ev_st.shell ? "shell" : "eval", ev_st.node, error);
        return -1;
    }
    for (size_t i = 1; i < aemp_msg_len(reply); i++) {
        cli_print_val(stdout, aemp_msg_at(reply, i));
        fputc('\n', stdout);
    }
    fflush(stdout);
    return 0;
}

static void next_line(void);

static void reply_cb(aemp_msg_t *reply, void *arg)
{
    ev_st.waiting = 0;
    if (print_reply(reply) < 0)
        ev_st.failed = 1;
    if (!ev_st.shell) {
        cli_client_finish(ev_st.failed ? CLI_FAIL : CLI_OK);
        return;
    }
    next_line();
}

static void ask(const char *code, size_t len)
{
    ev_st.waiting = 1;
    aemp_cal(ev_st.node, aemp_msgf("ss#", "eval", code, len), reply_cb, NULL, EVAL_TIMEOUT);
}

static void prompt(void)
{
    if (isatty(0)) {
        printf("%s> ", ev_st.node);
        fflush(stdout);
    }
}

/* Shell: send the next complete line, or read more, or finish at the end. */
static void next_line(void)
{
    for (;;) {
        char *nl = memchr(ev_st.buf, '\n', ev_st.len);
        if (nl || (ev_st.eof && ev_st.len)) {
            size_t n = nl ? (size_t)(nl - ev_st.buf) : ev_st.len;
            char line[sizeof ev_st.buf];
            memcpy(line, ev_st.buf, n);
            size_t used = nl ? n + 1 : n;
            memmove(ev_st.buf, ev_st.buf + used, ev_st.len - used);
            ev_st.len -= used;
            while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
                n--;
            if (!n) {
                prompt();
                continue;
            }
            ev_io_stop(aemp_loop(), &ev_st.in);
            ask(line, n);
            return;
        }
        if (ev_st.eof) {
            if (isatty(0))
                printf("\n");
            ev_io_stop(aemp_loop(), &ev_st.in);
            cli_client_finish(CLI_OK);
            return;
        }
        ev_io_start(aemp_loop(), &ev_st.in);
        return;
    }
}

static void stdin_cb(EV_P_ ev_io *w, int revents)
{
    if (ev_st.len == sizeof ev_st.buf) {
        fprintf(stderr, "aemp: shell: line longer than %zu bytes\n", sizeof ev_st.buf);
        ev_io_stop(EV_A_ w);
        cli_client_finish(CLI_FAIL);
        return;
    }
    ssize_t r = read(0, ev_st.buf + ev_st.len, sizeof ev_st.buf - ev_st.len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0)
        ev_st.eof = 1;
    else
        ev_st.len += (size_t)r;
    next_line();
}

int cli_cmd_eval(cli_t *c, const cli_cmd_t *cmd)
{
    memset(&ev_st, 0, sizeof ev_st);
    if (!(ev_st.node = cli_node_arg(c)))
        return CLI_USAGE;
    if (!cli_left(c)) {
        cli_err(c, "missing argument EXPR");
        return CLI_USAGE;
    }
    /* the expression: the remaining arguments joined by spaces, as Perl's aemp does */
    char code[sizeof ev_st.buf];
    size_t n = 0;
    while (cli_left(c)) {
        const char *s = cli_str_arg(c, "EXPR");
        if (!s)
            return CLI_USAGE;
        size_t l = strlen(s);
        if (n + l + 2 > sizeof code) {
            cli_err(c, "expression longer than %zu bytes", sizeof code);
            return CLI_USAGE;
        }
        if (n)
            code[n++] = ' ';
        memcpy(code + n, s, l);
        n += l;
    }
    int rc = cli_client_start(c);
    if (rc != CLI_OK)
        return rc;
    ask(code, n);
    return cli_client_wait();
}

int cli_cmd_shell(cli_t *c, const cli_cmd_t *cmd)
{
    memset(&ev_st, 0, sizeof ev_st);
    ev_st.shell = 1;
    if (!(ev_st.node = cli_node_arg(c)))
        return CLI_USAGE;
    int rc = cli_client_start(c);
    if (rc != CLI_OK)
        return rc;
    ev_io_init(&ev_st.in, stdin_cb, 0, EV_READ);
    prompt();
    next_line();
    return cli_client_wait();
}

/* What Perl's aemp restart evaluates: AnyEvent::Watchdog restarts the node
 * from an idle callback (after the reply went out). */
static const char PERL_RESTART[] =
    "my $w; $w = AE::idle sub { undef $w; require AnyEvent::Watchdog::Util; "
    "AnyEvent::Watchdog::Util::restart }; ()";

static void restart_reply(aemp_msg_t *reply, void *arg);

static void restart_done(aemp_msg_t *reply, void *arg)
{
    const char *error = reply ? aemp_msg_str(reply, 0, NULL) : NULL;
    if (!error) {
        fprintf(stderr, "aemp: restart: no answer from %s within %g s\n", ev_st.node, EVAL_TIMEOUT);
        cli_client_finish(CLI_FAIL);
    } else if (*error) {
        fprintf(stderr, "aemp: restart: %s: %s\n", ev_st.node, error);
        cli_client_finish(CLI_FAIL);
    } else {
        printf("%s: restarting\n", ev_st.node);
        cli_client_finish(CLI_OK);
    }
}

/* The Perl way first; a libaemp node says it cannot evaluate, and is then
 * asked through its own function aemp::restart. */
static void restart_reply(aemp_msg_t *reply, void *arg)
{
    const char *error = reply ? aemp_msg_str(reply, 0, NULL) : NULL;
    if (error && strstr(error, "cannot evaluate: this node is libaemp")) {
        aemp_cal(ev_st.node, aemp_msgf("s", "aemp::restart"), restart_done, NULL, EVAL_TIMEOUT);
        return;
    }
    restart_done(reply, arg);
}

int cli_cmd_restart(cli_t *c, const cli_cmd_t *cmd)
{
    memset(&ev_st, 0, sizeof ev_st);
    if (!(ev_st.node = cli_node_arg(c)))
        return CLI_USAGE;
    int rc = cli_client_start(c);
    if (rc != CLI_OK)
        return rc;
    aemp_cal(ev_st.node, aemp_msgf("ss#", "eval", PERL_RESTART, sizeof PERL_RESTART - 1), restart_reply, NULL,
             EVAL_TIMEOUT);
    return cli_client_wait();
}
