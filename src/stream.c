/* stream.c - raw byte streams of data connections (see stream.h and
 * aemp_dataconn.h).
 *
 * Reading: one ev_io per stream, started only while the user has callbacks
 * installed and has not paused it; each callback reads up to READ_ROUNDS
 * chunks of READ_CHUNK bytes and hands them to on_read (through the TLS
 * session's plaintext buffer when there is one).  Bytes that arrived before
 * the callbacks (the end of the handshake's last read) wait in `in` and are
 * delivered from a zero timer, never inside aemp_stream_set_cbs.
 *
 * Writing: aemp_stream_write appends to `out` and arms the write watcher,
 * so many small writes of one loop pass go out in one send(); with TLS the
 * plaintext is encrypted into `wire` a WIRE_CHUNK at a time while the
 * socket takes it.  A write that leaves the queue at or above the
 * high-water mark returns 0 and asks for on_drain, which runs once the
 * queue has fallen to half the mark.
 *
 * Every callback may close the stream: `busy` counts the callbacks running,
 * and a stream closed inside one is freed when the outermost returns.
 */
#include "stream.h"

#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define READ_ROUNDS 4
#define WIRE_CHUNK (256 * 1024)

struct aemp_stream {
    int fd;
    aemp_tls_t *tls;
    aemp_buf_t in;            /* plaintext received, not delivered yet */
    aemp_buf_t out;           /* plaintext queued */
    aemp_buf_t wire;          /* ciphertext queued (TLS) */
    ev_io rio, wio;
    ev_timer kick;            /* delivers `in` from the loop */
    aemp_stream_cbs_t cbs;
    void *arg;
    int have_cbs;
    size_t high_water;
    int want_drain;           /* a write returned 0 */
    int paused;
    int eof;                  /* the peer's direction ended */
    int shut_wanted, shut_done;
    int failed;
    int closed;               /* aemp_stream_close called */
    int busy;                 /* callbacks running */
    char *peer;
    aemp_stream_t *prev, *next;   /* every stream (shutdown) */
};

static aemp_stream_t *streams;

static void read_cb(EV_P_ ev_io *w, int revents);
static void write_cb(EV_P_ ev_io *w, int revents);
static void kick_cb(EV_P_ ev_timer *w, int revents);
static int flush(aemp_stream_t *s);

/* ------------------------------------------------------------ lifecycle */

aemp_stream_t *aemp__stream_new(int fd, aemp_tls_t *tls, aemp_buf_t *in, aemp_buf_t *out, aemp_buf_t *wire,
                                const char *peer)
{
    aemp_stream_t *s = calloc(1, sizeof *s);
    if (!s || !(s->peer = strdup(peer ? peer : "")))
        abort();
    s->fd = fd;
    s->tls = tls;
    if (in) {
        s->in = *in;
        *in = (aemp_buf_t)AEMP_BUF_INIT;
    }
    if (out) {
        s->out = *out;
        *out = (aemp_buf_t)AEMP_BUF_INIT;
    }
    if (wire) {
        s->wire = *wire;
        *wire = (aemp_buf_t)AEMP_BUF_INIT;
    }
    s->high_water = AEMP_STREAM_HIGH_WATER;
    ev_io_init(&s->rio, read_cb, fd, EV_READ);
    s->rio.data = s;
    ev_io_init(&s->wio, write_cb, fd, EV_WRITE);
    s->wio.data = s;
    ev_timer_init(&s->kick, kick_cb, 0, 0);
    s->kick.data = s;
    s->next = streams;
    if (streams)
        streams->prev = s;
    streams = s;
    if (aemp_stream_queued(s))
        ev_io_start(aemp__g.loop, &s->wio);   /* e.g. our auth line */
    return s;
}

/* Stop the watchers and close the socket (the object stays). */
static void stop_io(aemp_stream_t *s)
{
    struct ev_loop *loop = aemp__g.loop;
    ev_io_stop(loop, &s->rio);
    ev_io_stop(loop, &s->wio);
    ev_timer_stop(loop, &s->kick);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static void stream_free(aemp_stream_t *s)
{
    stop_io(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    aemp__tls_free(s->tls);
    aemp__buf_free(&s->in);
    aemp__buf_free(&s->out);
    aemp__buf_free(&s->wire);
    free(s->peer);
    free(s);
}

void aemp_stream_close(aemp_stream_t *s)
{
    if (!s || s->closed)
        return;
    s->closed = 1;
    stop_io(s);
    if (!s->busy)
        stream_free(s);
}

void aemp__streams_shutdown(void)
{
    while (streams) {
        aemp_stream_t *s = streams;
        s->busy = 0;
        s->closed = 1;
        stream_free(s);
    }
}

/* ------------------------------------------------------------ callbacks */

/* Each returns 1 if the stream was closed by the callback (s is gone or
 * going: the caller returns at once). */

static int after_cb(aemp_stream_t *s)
{
    s->busy--;
    if (!s->closed)
        return 0;
    if (!s->busy)
        stream_free(s);
    return 1;
}

static int call_read(aemp_stream_t *s, const void *data, size_t len)
{
    if (!s->cbs.on_read)
        return 0;
    s->busy++;
    s->cbs.on_read(s, data, len, s->arg);
    return after_cb(s);
}

static int call_drain(aemp_stream_t *s)
{
    s->want_drain = 0;
    if (!s->cbs.on_drain)
        return 0;
    s->busy++;
    s->cbs.on_drain(s, s->arg);
    return after_cb(s);
}

static int call_eof(aemp_stream_t *s)
{
    if (!s->cbs.on_eof)
        return 0;
    s->busy++;
    s->cbs.on_eof(s, s->arg);
    return after_cb(s);
}

/* The stream failed: close the socket, tell the user once. */
static int fail(aemp_stream_t *s, const char *why)
{
    if (s->failed)
        return 0;
    s->failed = 1;
    stop_io(s);
    aemp_log(AEMP_LOG_DEBUG, "data connection with %s failed: %s", s->peer, why);
    if (!s->cbs.on_error)
        return 0;
    s->busy++;
    s->cbs.on_error(s, why, s->arg);
    return after_cb(s);
}

/* Start or stop the read watcher as the state says. */
static void update_reading(aemp_stream_t *s)
{
    if (s->failed || s->closed)
        return;
    if (s->have_cbs && !s->paused && !s->eof)
        ev_io_start(aemp__g.loop, &s->rio);
    else
        ev_io_stop(aemp__g.loop, &s->rio);
}

/* Hand `in` to on_read (while not paused).  1 if the stream was closed. */
static int deliver_in(aemp_stream_t *s)
{
    while (aemp__buf_used(&s->in) && !s->paused && !s->failed) {
        size_t n = aemp__buf_used(&s->in);
        /* the callback may pause or close: deliver a copy-free view, then
         * consume it before anything else can append */
        aemp_buf_t b = s->in;
        s->in = (aemp_buf_t)AEMP_BUF_INIT;
        int gone = call_read(s, aemp__buf_head(&b), n);
        aemp__buf_free(&b);
        if (gone)
            return 1;
    }
    return 0;
}

void aemp_stream_set_cbs(aemp_stream_t *s, const aemp_stream_cbs_t *cbs, void *arg)
{
    if (cbs)
        s->cbs = *cbs;
    else
        memset(&s->cbs, 0, sizeof s->cbs);
    s->arg = arg;
    s->have_cbs = 1;
    update_reading(s);
    if (aemp__buf_used(&s->in) && !s->failed)
        ev_timer_start(aemp__g.loop, &s->kick);
}

static void kick_cb(EV_P_ ev_timer *w, int revents)
{
    aemp_stream_t *s = w->data;
    deliver_in(s);
}

void aemp_stream_pause(aemp_stream_t *s, int paused)
{
    s->paused = !!paused;
    update_reading(s);
    if (!s->paused && aemp__buf_used(&s->in) && !s->failed)
        ev_timer_start(aemp__g.loop, &s->kick);
}

/* -------------------------------------------------------------- reading */

/* The peer's direction ended. */
static void got_eof(aemp_stream_t *s)
{
    s->eof = 1;
    update_reading(s);
    call_eof(s);
}

static void read_cb(EV_P_ ev_io *w, int revents)
{
    static uint8_t chunk[READ_CHUNK];   /* one thread: one scratch buffer */
    aemp_stream_t *s = w->data;
    for (int round = 0; round < READ_ROUNDS && !s->paused && !s->eof; round++) {
        ssize_t r = read(s->fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            fail(s, strerror(errno));
            return;
        }
        if (r == 0) {
            if (s->tls) {   /* a FIN without close_notify: maybe truncated */
                fail(s, "Unexpected end-of-file (the peer closed the TLS connection without close_notify)");
                return;
            }
            got_eof(s);
            return;
        }
        if (!s->tls) {
            if (call_read(s, chunk, (size_t)r))
                return;
        } else {
            aemp__tls_feed(s->tls, chunk, (size_t)r);
            int t = aemp__tls_input(s->tls, &s->in);
            if (deliver_in(s))
                return;
            if (t == AEMP_TLS_ERR) {
                char why[320];
                snprintf(why, sizeof why, "TLS error: %s", aemp__tls_error(s->tls));
                fail(s, why);
                return;
            }
            if (aemp__tls_want_write(s->tls))
                ev_io_start(EV_A_ &s->wio);   /* e.g. a key update */
            if (t == AEMP_TLS_EOF) {
                got_eof(s);
                return;
            }
        }
        if ((size_t)r < sizeof chunk)
            return;
    }
}

/* -------------------------------------------------------------- writing */

size_t aemp_stream_queued(const aemp_stream_t *s)
{
    return aemp__buf_used(&s->out) + aemp__buf_used(&s->wire);
}

void aemp_stream_set_high_water(aemp_stream_t *s, size_t bytes)
{
    s->high_water = bytes ? bytes : 1;
}

int aemp_stream_write(aemp_stream_t *s, const void *data, size_t len)
{
    if (s->failed || s->closed)
        return AEMP_EIO;
    if (s->shut_wanted)
        return AEMP_EINVAL;
    if (len)
        aemp__buf_append(&s->out, data, len);
    ev_io_start(aemp__g.loop, &s->wio);
    if (aemp_stream_queued(s) >= s->high_water) {
        s->want_drain = 1;
        return 0;
    }
    return 1;
}

int aemp_stream_shutdown(aemp_stream_t *s)
{
    if (s->failed || s->closed)
        return AEMP_EIO;
    s->shut_wanted = 1;
    ev_io_start(aemp__g.loop, &s->wio);
    return 0;
}

/* Write what the socket takes; then half-close as due.  1 if the stream
 * failed (and may be gone: on_error may have closed it). */
static int flush(aemp_stream_t *s)
{
    for (;;) {
        aemp_buf_t *b = s->tls ? &s->wire : &s->out;
        if (s->tls && aemp__buf_used(&s->wire) < WIRE_CHUNK) {
            if (s->shut_wanted && !aemp__buf_used(&s->out))
                aemp__tls_close_notify(s->tls);
            if (aemp__tls_output(s->tls, &s->out, WIRE_CHUNK, &s->wire) == AEMP_TLS_ERR) {
                char why[320];
                snprintf(why, sizeof why, "TLS error: %s", aemp__tls_error(s->tls));
                fail(s, why);
                return 1;
            }
        }
        if (!aemp__buf_used(b))
            break;
        ssize_t w = send(s->fd, aemp__buf_head(b), aemp__buf_used(b), MSG_NOSIGNAL);
        if (w > 0) {
            aemp__buf_consume(b, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;   /* the watcher stays on */
        fail(s, w < 0 ? strerror(errno) : "write returned 0");
        return 1;
    }
    ev_io_stop(aemp__g.loop, &s->wio);
    if (s->shut_wanted && !s->shut_done) {
        s->shut_done = 1;
        shutdown(s->fd, SHUT_WR);
    }
    return 0;
}

static void write_cb(EV_P_ ev_io *w, int revents)
{
    aemp_stream_t *s = w->data;
    if (flush(s))
        return;
    if (s->want_drain && aemp_stream_queued(s) <= s->high_water / 2)
        call_drain(s);
}

/* ------------------------------------------------------------ accessors */

int aemp_stream_fd(const aemp_stream_t *s)
{
    return s->fd;
}

int aemp_stream_tls(const aemp_stream_t *s)
{
    return s->tls != NULL;
}

const char *aemp_stream_peer(const aemp_stream_t *s)
{
    return s->peer;
}

int aemp_stream_take_fd(aemp_stream_t *s, void **buffered, size_t *buflen)
{
    if (s->failed || s->fd < 0)
        return AEMP_EIO;
    if (s->tls)
        return AEMP_EINVAL;
    if (aemp_stream_queued(s))
        return AEMP_EAGAIN;
    size_t n = aemp__buf_used(&s->in);
    void *copy = NULL;
    if (n) {
        if (!(copy = malloc(n)))
            abort();
        memcpy(copy, aemp__buf_head(&s->in), n);
    }
    if (buffered)
        *buffered = copy;
    else
        free(copy);
    if (buflen)
        *buflen = buffered ? n : 0;
    int fd = s->fd;
    struct ev_loop *loop = aemp__g.loop;
    ev_io_stop(loop, &s->rio);
    ev_io_stop(loop, &s->wio);
    ev_timer_stop(loop, &s->kick);
    s->fd = -1;
    aemp_stream_close(s);
    return fd;
}
