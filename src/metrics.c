/* metrics.c - the optional `metrics` bind: aemp_stats() in the Prometheus
 * text exposition format (version 0.0.4) over plain HTTP/1.0.
 *
 * One request per connection: the request head is read (at most
 * METRICS_MAX_REQUEST bytes, within METRICS_TIMEOUT seconds), any GET is
 * answered with the current figures, anything else with 405, and the
 * connection is closed.  At most METRICS_MAX_CLIENTS are served at once; a
 * further client is closed at once.  The endpoint knows nothing of the
 * node's connections: it reads aemp_stats() like any user.
 */
#include "metrics.h"

#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define METRICS_MAX_REQUEST 8192
#define METRICS_TIMEOUT 5.0
#define METRICS_MAX_CLIENTS 16

typedef struct client {
    ev_io w;
    ev_timer t;
    size_t len;
    char req[METRICS_MAX_REQUEST];
    struct client *next;
} client_t;

static ev_io listener;
static int listening;
static client_t *clients;
static int nclients;

/* ------------------------------------------------------------ the text */

typedef struct text {
    char *p;
    size_t len, cap;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (n > 0 ? (size_t)n : 0) + 256;
        t->p = realloc(t->p, t->cap);
        if (!t->p)
            abort();
    }
}

/* A label value with \, " and newlines escaped. */
static void put_label(text_t *t, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '"')
            put(t, "\\%c", s[i]);
        else if (s[i] == '\n')
            put(t, "\\n");
        else
            put(t, "%c", s[i]);
    }
}

static void render(text_t *t)
{
    aemp_msg_t *stats = aemp_stats();
    const aemp_val_t *root = aemp_msg_root(stats);
    for (size_t i = 0; i < aemp_val_len(root); i++) {
        size_t kl;
        const char *k = aemp_val_str(aemp_val_key(root, i), &kl);
        const aemp_val_t *v = aemp_val_value(root, i);
        uint64_t u;
        if (!k || aemp_val_uint(v, &u) != 0)
            continue;
        /* counters end in _total; everything else is a gauge */
        const char *suffix = aemp__stats_is_counter(k) ? "_total" : "";
        put(t, "# TYPE aemp_%s%s %s\naemp_%s%s %llu\n", k, suffix, *suffix ? "counter" : "gauge", k, suffix,
            (unsigned long long)u);
    }
    /* per peer: one family per field, labelled by node */
    const aemp_val_t *peers = aemp_val_get(root, "peers");
    static const char *const fields[] = { "messages_in", "messages_out", "bytes_in", "bytes_out",
                                          "send_queue_bytes" };
    for (size_t f = 0; peers && f < sizeof fields / sizeof fields[0]; f++) {
        int counter = strcmp(fields[f], "send_queue_bytes") != 0;
        put(t, "# TYPE aemp_peer_%s%s %s\n", fields[f], counter ? "_total" : "", counter ? "counter" : "gauge");
        for (size_t i = 0; i < aemp_val_len(peers); i++) {
            size_t nl;
            const char *node = aemp_val_str(aemp_val_key(peers, i), &nl);
            uint64_t u;
            if (!node || aemp_val_uint(aemp_val_get(aemp_val_value(peers, i), fields[f]), &u) != 0)
                continue;
            put(t, "aemp_peer_%s%s{node=\"", fields[f], counter ? "_total" : "");
            put_label(t, node, nl);
            put(t, "\"} %llu\n", (unsigned long long)u);
        }
    }
    aemp_msg_unref(stats);
}

/* --------------------------------------------------------------- serving */

static void client_free(client_t *c)
{
    ev_io_stop(aemp__g.loop, &c->w);
    ev_timer_stop(aemp__g.loop, &c->t);
    close(c->w.fd);
    for (client_t **p = &clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    nclients--;
    free(c);
}

/* Write all of buf, blocking briefly if the socket is full (the answer is
 * small; a client that does not read loses it). */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return;
        }
    }
}

static void answer(client_t *c)
{
    text_t body = { 0 };
    int get = !strncmp(c->req, "GET ", 4);
    if (get)
        render(&body);
    else
        put(&body, "only GET is served here\n");
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      get ? "200 OK" : "405 Method Not Allowed",
                      get ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain", body.len);
    int fl = fcntl(c->w.fd, F_GETFL);
    fcntl(c->w.fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = { 1, 0 };
    setsockopt(c->w.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    write_all(c->w.fd, head, (size_t)hl);
    write_all(c->w.fd, body.p, body.len);
    free(body.p);
    client_free(c);
}

static void client_read(EV_P_ ev_io *w, int revents)
{
    client_t *c = (client_t *)w;
    ssize_t r = read(w->fd, c->req + c->len, sizeof c->req - 1 - c->len);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        client_free(c);
        return;
    }
    c->len += (size_t)r;
    c->req[c->len] = 0;
    if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
        answer(c);
    else if (c->len == sizeof c->req - 1)
        client_free(c);   /* a request head this long is not a scrape */
}

static void client_timeout(EV_P_ ev_timer *t, int revents)
{
    client_t *c = (client_t *)((char *)t - offsetof(client_t, t));
    client_free(c);
}

static void accept_cb(EV_P_ ev_io *w, int revents)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept(w->fd, NULL, NULL);
        if (fd < 0)
            return;   /* EAGAIN, or a shortage: the node's own listeners deal with those */
        if (nclients >= METRICS_MAX_CLIENTS) {
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        client_t *c = calloc(1, sizeof *c);
        if (!c)
            abort();
        ev_io_init(&c->w, client_read, fd, EV_READ);
        ev_timer_init(&c->t, client_timeout, METRICS_TIMEOUT, 0);
        ev_io_start(EV_A_ &c->w);
        ev_timer_start(EV_A_ &c->t);
        c->next = clients;
        clients = c;
        nclients++;
    }
}

int aemp__metrics_start(const char *addr, char *bound, size_t boundsize, char *err, size_t errlen)
{
    char why[320];
    int fd = aemp__listen_socket(addr, 64, bound, boundsize, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "metrics: %s", why);
        return fd;
    }
    ev_io_init(&listener, accept_cb, fd, EV_READ);
    ev_io_start(aemp__g.loop, &listener);
    ev_unref(aemp__g.loop);   /* the endpoint alone does not keep the loop running */
    listening = 1;
    aemp_log(AEMP_LOG_NOTICE, "metrics (Prometheus text format) on http://%s/metrics", bound);
    return 0;
}

void aemp__metrics_stop(void)
{
    while (clients)
        client_free(clients);
    if (!listening)
        return;
    ev_ref(aemp__g.loop);
    ev_io_stop(aemp__g.loop, &listener);
    close(listener.fd);
    listening = 0;
}
