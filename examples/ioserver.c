/* ioserver.c - the Coro::MP tutorial's file-writing server (scenario S14):
 * a port served by a fiber that uses selective receive to write one file
 * at a time while requests and data from many clients interleave.
 *
 * Protocol of the server port:
 *   ["write_file", SOURCE, PATH]           write PATH (truncated) with the
 *   ["write_file", SOURCE, PATH, NOTIFY]   data that SOURCE sends; NOTIFY gets
 *                                          ["written", PATH, BYTES] at the end
 *   ["data", SOURCE, CHUNK]                append CHUNK (a string) to SOURCE's
 *                                          file; "" (or no chunk) closes it
 * Strings may be text or byte strings (a Perl client's framing decides).
 * Requests are served one at a time in arrival order; the data of waiting
 * clients stays queued meanwhile.  If SOURCE sends nothing for TIMEOUT
 * seconds (default 5) the server dies with ("die", "timeout waiting for
 * data from SOURCE for PATH"); it also dies when a file cannot be opened
 * or written.  Other messages are logged and dropped.
 *
 * The server is the named function "ioserver::start" (spawn init args:
 * [TIMEOUT], optional), so other nodes can spawn it.
 *
 *   $ ./ioserver [-t TIMEOUT] [demo [DIR]]
 *       the tutorial in one process: two clients write files concurrently,
 *       then a stalled client makes the server time out
 *   $ ./ioserver [-t TIMEOUT] serve [CONFIG-KEY VALUE ...]
 *       configure a node (e.g. binds 127.0.0.1:4040 secret s3cret),
 *       serve at "<nodeid>#ioserver" and offer ioserver::start
 */
#include <aemp.h>
#include "aemp_fiber.h"
#include "aemp_json.h"   /* jansson: the demo's output, serve's configuration values */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 if element i of msg is the string s (text or bytes). */
static int elem_is(aemp_msg_t *msg, size_t i, const char *s)
{
    size_t len;
    const char *v = aemp_msg_str(msg, i, &len);
    return v && len == strlen(s) && memcmp(v, s, len) == 0;
}

/* Everything except data: requests, and junk for the catch-all. */
static int not_data(aemp_msg_t *msg, void *arg)
{
    return !elem_is(msg, 0, "data");
}

/* Data from one source. */
static int data_from(aemp_msg_t *msg, void *source)
{
    return elem_is(msg, 0, "data") && elem_is(msg, 1, source);
}

/* Write one file: 1 when it was closed by an empty chunk, 0 when the
 * fiber must end (aemp_die was called, or the port died). */
static int write_one(const char *source, const char *path, const char *notify, double timeout)
{
    FILE *fh = fopen(path, "wb");
    if (!fh) {
        aemp_die("open %s: %s", path, strerror(errno));
        return 0;
    }
    int64_t bytes = 0;
    int ok = 0;
    for (;;) {
        aemp_msg_t *msg;
        int r = aemp_get_cond(data_from, (void *)source, timeout, &msg);
        if (r == AEMP_ETIMEDOUT)
            aemp_die("timeout waiting for data from %s for %s", source, path);
        if (r)
            break;   /* timed out, or cancelled: the port died */
        size_t n = 0;
        const char *chunk = aemp_msg_str(msg, 2, &n);
        if (!chunk)
            n = 0;
        if (n && fwrite(chunk, 1, n, fh) != n) {
            aemp_die("write %s: %s", path, strerror(errno));
            aemp_msg_unref(msg);
            break;
        }
        aemp_msg_unref(msg);
        bytes += (int64_t)n;
        if (!n) {
            ok = 1;
            break;
        }
    }
    if (fclose(fh) != 0 && ok) {
        aemp_die("close %s: %s", path, strerror(errno));
        ok = 0;
    }
    if (ok && notify)
        aemp_sndf(notify, "ssI", "written", path, bytes);
    return ok;
}

/* The fiber: arg is a malloc'd timeout in seconds (freed here). */
static void ioserver_body(void *arg)
{
    double timeout = *(double *)arg;
    free(arg);
    for (;;) {
        aemp_msg_t *req;
        if (aemp_get_cond(not_data, NULL, -1, &req) != 0)
            return;   /* cancelled */
        const char *source = aemp_msg_str(req, 1, NULL);
        const char *path = aemp_msg_str(req, 2, NULL);
        const char *notify = aemp_msg_str(req, 3, NULL);
        if (!elem_is(req, 0, "write_file") || !source || !path || !*path) {
            char *text = aemp_val_text(aemp_msg_root(req));
            aemp_log(AEMP_LOG_WARN, "ioserver %s: unexpected message %s dropped", aemp_self(), text);
            free(text);
            aemp_msg_unref(req);
            continue;
        }
        int ok = write_one(source, path, notify, timeout);
        aemp_msg_unref(req);
        if (!ok)
            return;
    }
}

static double *timeout_arg(double timeout)
{
    double *t = malloc(sizeof *t);
    if (!t)
        abort();
    *t = timeout > 0 ? timeout : 5;
    return t;
}

/* Create a local ioserver port (timeout <= 0: 5 seconds); NULL on failure. */
const char *ioserver_start(double timeout)
{
    double *t = timeout_arg(timeout);
    const char *port = aemp_port_async(ioserver_body, t);
    if (!port)
        free(t);
    return port;
}

/* The spawn init function "ioserver::start", args [TIMEOUT] (optional). */
static void ioserver_init(aemp_msg_t *args, void *arg)
{
    double timeout = 0;   /* absent or no number: the default */
    if (args)
        aemp_msg_double(args, 0, &timeout);
    double *t = timeout_arg(timeout);
    int r = aemp_rcv_async(aemp_self(), ioserver_body, t);
    if (r) {
        free(t);
        aemp_die("ioserver: %s", aemp_strerror(r));
    }
}

/* Register "ioserver::start". */
int ioserver_register(void)
{
    return aemp_func_register("ioserver::start", ioserver_init, NULL);
}

#ifndef IOSERVER_NO_MAIN

/* ------------------------------------------------------------ the demo */

struct client {
    const char *server, *path, *notify;
    const char *chunks[4];
    double delay;       /* between chunks */
    int stall;          /* stop sending before the empty chunk */
};

/* A client fiber: one write_file request, then the chunks. */
static void client_body(void *arg)
{
    struct client *c = arg;
    const char *self = aemp_self();
    aemp_sndf(c->server, "ssss", "write_file", self, c->path, c->notify);
    for (int i = 0; i < 4 && c->chunks[i]; i++) {
        if (c->delay > 0 && aemp_fiber_sleep(c->delay) != 0)
            return;
        aemp_sndf(c->server, "sss", "data", self, c->chunks[i]);
    }
    if (!c->stall)
        aemp_sndf(c->server, "sss", "data", self, "");
}

static int written;

/* The notify port: print the written file's content as a JSON string. */
static void on_written(aemp_msg_t *msg, void *arg)
{
    const char *path = aemp_msg_str(msg, 1, NULL);
    char buf[256] = "";
    FILE *fh = path ? fopen(path, "rb") : NULL;
    size_t n = fh ? fread(buf, 1, sizeof buf - 1, fh) : 0;
    buf[n] = 0;
    if (fh)
        fclose(fh);
    json_t *s = json_stringn(buf, n);   /* NULL if it is not UTF-8 */
    char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    printf("wrote %s: %s\n", strrchr(path ? path : "/?", '/') + 1, text ? text : "?");
    free(text);
    json_decref(s);
    written++;
}

static void on_server_death(aemp_msg_t *reason, void *arg)
{
    char *text = aemp_val_text(aemp_msg_root(reason));
    printf("ioserver was killed: %s\n", text);
    free(text);
    aemp_stop();
}

static int demo(double timeout, const char *dir_arg)
{
    char dir[256];
    if (dir_arg) {
        snprintf(dir, sizeof dir, "%s", dir_arg);
    } else {
        snprintf(dir, sizeof dir, "/tmp/ioserver-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    char p1[300], p2[300], p3[300];
    snprintf(p1, sizeof p1, "%s/unsafe", dir);
    snprintf(p2, sizeof p2, "%s/second", dir);
    snprintf(p3, sizeof p3, "%s/stalled", dir);

    const char *server = ioserver_start(timeout);
    aemp_mon(server, on_server_death, NULL, NULL);
    const char *notify = aemp_port(on_written, NULL);
    /* two clients at once: their data interleaves, the files do not */
    struct client a = { server, p1, notify, { "abc\n", "def\n" }, 0.01, 0 };
    struct client b = { server, p2, notify, { "1\n", "2\n", "3\n" }, 0.005, 0 };
    aemp_port_async(client_body, &a);
    aemp_port_async(client_body, &b);
    while (written < 2)
        ev_run(aemp_loop(), EVRUN_ONCE);
    /* a client that stops sending: the server gives up after the timeout */
    struct client c = { server, p3, notify, { "partial\n" }, 0, 1 };
    aemp_port_async(client_body, &c);
    aemp_run();
    if (!dir_arg) {
        unlink(p1);
        unlink(p2);
        unlink(p3);
        rmdir(dir);
    }
    return 0;
}

/* ----------------------------------------------------------- the server */

static void on_death_exit(aemp_msg_t *reason, void *arg)
{
    char *text = aemp_val_text(aemp_msg_root(reason));
    fprintf(stderr, "ioserver died: %s\n", text);
    free(text);
    exit(1);
}

/* Configure from KEY VALUE pairs: a VALUE that parses as JSON is that
 * value (binds '["127.0.0.1:4040"]', connect_interval 3), else a string. */
static int configure_from_args(int argc, char **argv)
{
    json_t *conf = json_object();
    for (int i = 0; i + 1 < argc; i += 2) {
        json_t *v = json_loads(argv[i + 1], JSON_DECODE_ANY, NULL);
        json_object_set_new(conf, argv[i], v ? v : json_string(argv[i + 1]));
    }
    aemp_msg_t *args = aemp_msg_from_json(conf);
    json_decref(conf);
    char err[256] = "the configuration is nested too deeply";
    int r = args ? aemp_configure(args, err, sizeof err) : AEMP_ECONFIG;
    aemp_msg_unref(args);
    if (r != 0)
        fprintf(stderr, "configure: %s\n", err);
    return r;
}

static int serve(double timeout, int argc, char **argv)
{
    if (configure_from_args(argc, argv) != 0)
        return 1;
    ioserver_register();
    char id[512];
    snprintf(id, sizeof id, "%s#ioserver", aemp_node());
    int r = aemp_rcv_async(id, ioserver_body, timeout_arg(timeout));
    if (r) {
        fprintf(stderr, "ioserver: %s\n", aemp_strerror(r));
        return 1;
    }
    aemp_mon(id, on_death_exit, NULL, NULL);
    printf("%s\n", id);
    fflush(stdout);
    aemp_run();
    return 0;
}

int main(int argc, char **argv)
{
    double timeout = 5;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
        timeout = atof(argv[i + 1]);
        i += 2;
    }
    if (i < argc && strcmp(argv[i], "serve") == 0)
        return serve(timeout, argc - i - 1, argv + i + 1);
    if (i < argc && strcmp(argv[i], "demo") == 0)
        i++;
    if (i < argc && argv[i][0] == '-') {
        fprintf(stderr, "usage: %s [-t TIMEOUT] [demo [DIR] | serve [KEY VALUE ...]]\n", argv[0]);
        return 2;
    }
    ioserver_register();
    return demo(timeout, i < argc ? argv[i] : NULL);
}

#endif
