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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int has_tag(json_t *msg, const char *tag)
{
    const char *t = json_string_value(json_array_get(msg, 0));
    return t && strcmp(t, tag) == 0;
}

/* Everything except data: requests, and junk for the catch-all. */
static int not_data(json_t *msg, void *arg)
{
    return !has_tag(msg, "data");
}

/* Data from one source. */
static int data_from(json_t *msg, void *source)
{
    const char *s = json_string_value(json_array_get(msg, 1));
    return has_tag(msg, "data") && s && strcmp(s, source) == 0;
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
    json_int_t bytes = 0;
    int ok = 0;
    for (;;) {
        json_t *msg;
        int r = aemp_get_cond(data_from, (void *)source, timeout, &msg);
        if (r == AEMP_ETIMEDOUT)
            aemp_die("timeout waiting for data from %s for %s", source, path);
        if (r)
            break;   /* timed out, or cancelled: the port died */
        json_t *chunk = json_array_get(msg, 2);
        size_t n = json_is_string(chunk) ? json_string_length(chunk) : 0;
        if (n && fwrite(json_string_value(chunk), 1, n, fh) != n) {
            aemp_die("write %s: %s", path, strerror(errno));
            json_decref(msg);
            break;
        }
        json_decref(msg);
        bytes += (json_int_t)n;
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
        json_t *req;
        if (aemp_get_cond(not_data, NULL, -1, &req) != 0)
            return;   /* cancelled */
        const char *source = json_string_value(json_array_get(req, 1));
        const char *path = json_string_value(json_array_get(req, 2));
        const char *notify = json_string_value(json_array_get(req, 3));
        if (!has_tag(req, "write_file") || !source || !path || !*path) {
            char *text = json_dumps(req, JSON_COMPACT);
            aemp_log(AEMP_LOG_WARN, "ioserver %s: unexpected message %s dropped", aemp_self(),
                     text ? text : "?");
            free(text);
            json_decref(req);
            continue;
        }
        int ok = write_one(source, path, notify, timeout);
        json_decref(req);
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
static void ioserver_init(json_t *args, void *arg)
{
    double *t = timeout_arg(json_number_value(json_array_get(args, 0)));
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

static void on_written(json_t *msg, void *arg)
{
    const char *path = json_string_value(json_array_get(msg, 1));
    char buf[256] = "";
    FILE *fh = path ? fopen(path, "rb") : NULL;
    size_t n = fh ? fread(buf, 1, sizeof buf - 1, fh) : 0;
    buf[n] = 0;
    if (fh)
        fclose(fh);
    json_t *s = json_string(buf);
    char *text = json_dumps(s, JSON_ENCODE_ANY);
    printf("wrote %s: %s\n", strrchr(path ? path : "/?", '/') + 1, text ? text : "?");
    free(text);
    json_decref(s);
    written++;
}

static void on_server_death(json_t *reason, void *arg)
{
    char *text = json_dumps(reason, JSON_COMPACT);
    printf("ioserver was killed: %s\n", text ? text : "?");
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

static void on_death_exit(json_t *reason, void *arg)
{
    char *text = json_dumps(reason, JSON_COMPACT);
    fprintf(stderr, "ioserver died: %s\n", text ? text : "?");
    free(text);
    exit(1);
}

static int serve(double timeout, int argc, char **argv)
{
    json_t *conf = json_object();
    for (int i = 0; i + 1 < argc; i += 2) {
        json_t *v = json_loads(argv[i + 1], JSON_DECODE_ANY, NULL);
        json_object_set_new(conf, argv[i], v ? v : json_string(argv[i + 1]));
    }
    char err[256];
    if (aemp_configure(conf, err, sizeof err) != 0) {
        fprintf(stderr, "configure: %s\n", err);
        json_decref(conf);
        return 1;
    }
    json_decref(conf);
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
