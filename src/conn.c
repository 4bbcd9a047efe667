/* conn.c - TCP transports (see conn.h).
 *
 * Writes are batched: sending only encodes into the connection's output
 * buffer and puts the connection on a flush list; an ev_prepare watcher
 * writes each listed connection once per loop pass, right before the loop
 * polls.  A connection whose unsent output exceeds max_queue bytes fails
 * with "send queue overflow" (its monitors fire: nothing is lost silently);
 * the check runs when a frame is queued, so one loop pass cannot grow the
 * buffer beyond the limit by more than one frame.
 *
 * Accepting under pressure: connections are accepted in batches of
 * ACCEPT_BATCH per loop pass; at most max_unauthenticated incoming
 * connections may be in their handshake (a new one sheds the oldest); when
 * accept fails for want of descriptors or memory, the oldest
 * unauthenticated connection is shed to make room, and if there is none,
 * the listener pauses for ACCEPT_PAUSE seconds instead of spinning.  Repeated
 * log lines are rate-limited.
 *
 * TLS (spec §8.4): when the protocol reports AEMP_PROTO_START_TLS, the rest
 * of our greeting moves to the connection's `wire` buffer, a tls.c session
 * is started in the role the protocol chose, and the bytes the protocol had
 * not consumed (the start of the peer's TLS stream) are fed to it.  From then
 * on ciphertext read from the socket goes to the session, whose plaintext is
 * appended to the protocol's in buffer; the protocol's out buffer is
 * encrypted into `wire` in chunks of WIRE_CHUNK while the socket takes it.
 * When the handshake completes the protocol is told (aemp__proto_tls_ready)
 * and queues its auth line.  A TLS failure closes that connection only, with
 * "TLS handshake failed: <why>" (or "TLS error: <why>" once authenticated);
 * the alert telling the peer why goes out first.
 */
#include "conn.h"

#include "endpoint.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>   /* malloc_trim */
#endif

/* One read of at most READ_CHUNK bytes per callback.  A frame is
 * delivered as soon as it is decoded unless the job ring holds something,
 * in which case every frame of the read stays allocated until the ring is
 * drained: 4 x 64 KiB (~20,000 small messages) no longer fit the CPU
 * caches (the receiver spent half its time on cache misses in malloc and
 * free), 128 KiB (~4,000) do.  Against 32 KiB, 128 KiB reads raise the
 * one-way rate of small messages by about a seventh (fewer reads, window
 * updates and loop passes per message; 256 KiB adds nothing); only a
 * connection whose reads keep filling its buffer ramps up to it. */
#define READ_CHUNK (128 * 1024)
#define READ_ROUNDS 1
/* The first read of a connection asks for READ_MIN bytes; a read that
 * fills its buffer doubles it, up to READ_CHUNK (read_size).  A global
 * node's thousands of mostly idle connections keep a buffer of about
 * READ_MIN each, not READ_CHUNK (whose pages, once touched, stayed
 * resident: a third of a seed's memory at 2048 workers). */
#define READ_MIN 1024
#define WIRE_CHUNK (256 * 1024)   /* plaintext encrypted per step while flushing */
#define ACCEPT_BATCH 128          /* connections accepted per listener per loop pass */
#define ACCEPT_PAUSE 0.1          /* seconds a listener rests after EMFILE & co. */
#define OUT_AT_ONCE (4 * 1024)    /* a pre-encoded frame leaving more than this unsent is written at once */
/* After a fan-out storm the freed buffers leave holes in the heap that
 * malloc does not give back (only its top): once TRIM_AFTER bytes of
 * buffers of more than TRIM_COUNT bytes each were freed, the heap is
 * trimmed (malloc_trim: free pages go back to the system), at the end of
 * the loop pass and at most once per TRIM_INTERVAL seconds. */
#define TRIM_AFTER (1u << 20)
#define TRIM_COUNT 4096
#define TRIM_INTERVAL 0.25

typedef struct listener {
    ev_io w;                  /* first: the callback casts back */
    ev_timer pause;           /* re-enables w after a resource shortage */
    char addr[AEMP_ENDPOINT_STRMAX];
    struct listener *next;
} listener_t;

typedef struct conn_link {
    aemp_conn_t *c;
    struct conn_link *next;
} conn_link_t;

static listener_t *listeners;
static aemp_conn_t *dirty_head;
static ev_prepare flush_watcher;
static aemp_conn_t **all;       /* every open connection */
static size_t nall, capall;

static int shutting_down;
static const aemp_conn_ext_t *exts[AEMP_PROTO_MAX_EXT];   /* protocol extensions */
/* Intrusive lists of connections, oldest first (each connection's links
 * are in its lists[]): the incoming ones not yet authenticated, and every
 * one in its handshake. */
enum { CONN_UNAUTH, CONN_PENDING };
static struct conn_list {
    aemp_conn_t *head, *tail;
    size_t n;
} lists[2];

static void process(aemp_conn_t *c);
static void flush_one(aemp_conn_t *c);
static void tls_pump(aemp_conn_t *c);

/* --------------------------------------------------------------- helpers */

static void track(aemp_conn_t *c)
{
    if (nall == capall) {
        capall = capall ? capall * 2 : 16;
        all = realloc(all, capall * sizeof *all);
        if (!all)
            abort();
    }
    c->all_index = nall;
    all[nall++] = c;
}

static void untrack(aemp_conn_t *c)
{
    size_t i = c->all_index;
    if (i >= nall || all[i] != c)
        return;
    all[i] = all[--nall];
    all[i]->all_index = i;
}

/* Append c to list k (if not on it). */
static void list_add(int k, aemp_conn_t *c)
{
    struct aemp_conn_link *l = &c->lists[k];
    struct conn_list *L = &lists[k];
    if (l->on)
        return;
    l->on = 1;
    l->next = NULL;
    l->prev = L->tail;
    if (L->tail)
        L->tail->lists[k].next = c;
    else
        L->head = c;
    L->tail = c;
    L->n++;
}

/* Take c off list k (if on it). */
static void list_del(int k, aemp_conn_t *c)
{
    struct aemp_conn_link *l = &c->lists[k];
    struct conn_list *L = &lists[k];
    if (!l->on)
        return;
    l->on = 0;
    if (l->prev)
        l->prev->lists[k].next = l->next;
    else
        L->head = l->next;
    if (l->next)
        l->next->lists[k].prev = l->prev;
    else
        L->tail = l->prev;
    l->prev = l->next = NULL;
    L->n--;
}

size_t aemp__conn_count(void)
{
    return nall;
}

size_t aemp__conn_unauth_count(void)
{
    return lists[CONN_UNAUTH].n;
}

static void unauth_add(aemp_conn_t *c)
{
    list_add(CONN_UNAUTH, c);
}

/* c is authenticated or closed: off the handshake lists. */
static void handshake_over(aemp_conn_t *c)
{
    list_del(CONN_UNAUTH, c);
    list_del(CONN_PENDING, c);
}

/* The look-ups below walk only the connections in their handshake (a
 * few, however many are up): O(pending), not O(connections). */
#define EACH_PENDING(c) for (aemp_conn_t *c = lists[CONN_PENDING].head; c; c = c->lists[CONN_PENDING].next)

aemp_conn_t *aemp__conn_rival(const char *id, aemp_conn_t *except)
{
    size_t len = strlen(id);
    EACH_PENDING(c) {
        if (c == except || c->closed || c->up || strcmp(aemp__proto_protocol(c->proto), "aemp"))
            continue;   /* an extension connection is nobody's transport */
        if (c->node && c->node->idlen == len && !memcmp(c->node->id, id, len))
            return c;
        const char *claim = aemp__proto_peer_node(c->proto);
        if (!c->node && claim && !strcmp(claim, id))
            return c;
    }
    return NULL;
}

int aemp__conn_refers(const aemp_rnode_t *n)
{
    for (size_t i = 0; i < nall; i++)
        if (all[i]->node == n)
            return 1;
    return 0;
}

aemp_conn_t *aemp__conn_pending_for(aemp_rnode_t *n, aemp_conn_t *except)
{
    EACH_PENDING(c) {
        if (c != except && !c->closed && !c->up && c->node == n)
            return c;
    }
    return NULL;
}

aemp_conn_t *aemp__conn_pending_seed(const char *addr)
{
    EACH_PENDING(c) {
        if (!c->closed && !c->up && c->seed && !strcmp(c->seed, addr))
            return c;
    }
    return NULL;
}

/* Dead peers must be noticed in about monitor_timeout, not after the
 * kernel's default of hours: TCP keepalive probes start after
 * monitor_timeout of silence, and data (our keepalive frames included)
 * unacknowledged for monitor_timeout fails the connection. */
static void set_socket_options(int fd)
{
    int one = 1;
    int t = (int)aemp__g.net.monitor_timeout;
    if (t < 1)
        t = 1;
    int probes = 3, intvl = t / 3 > 0 ? t / 3 : 1;
    unsigned int user_timeout = (unsigned int)(aemp__g.net.monitor_timeout * 1000);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &t, sizeof t);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
    if (aemp__g.net.nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void mark_dirty(aemp_conn_t *c)
{
    if (c->dirty || c->closed)
        return;
    c->dirty = 1;
    c->next_dirty = dirty_head;
    dirty_head = c;
}

static void free_conn(void *v)
{
    aemp_conn_t *c = v;
    aemp__proto_free(c->proto);
    aemp__tls_free(c->tls);
    aemp__buf_free(&c->wire);
    free(c->peeraddr);
    free(c->seed);
    free(c);
}

/* ------------------------------------------------------- proto config */

static void fill_cfg(aemp_proto_cfg_t *cfg, const char *peeraddr, const aemp_conn_ext_t *ext,
                     const char *key, const char *value)
{
    struct aemp_net *net = &aemp__g.net;
    memset(cfg, 0, sizeof *cfg);
    cfg->nodeid = aemp__g.nodeid;
    cfg->secret = net->secret;
    cfg->secretlen = net->secretlen;
    cfg->dialects = net->dialects;
    for (int i = 0; i < 8 && net->offer[i]; i++)
        cfg->auth_offer[cfg->n_offer++] = net->offer[i];
    for (int i = 0; i < 8 && net->accept[i]; i++)
        cfg->auth_accept[cfg->n_accept++] = net->accept[i];
    for (int i = 0; i < 4 && net->framings[i]; i++)
        cfg->framings[cfg->n_framings++] = net->framings[i];
    cfg->max_frame = net->max_frame;
    cfg->have_cert = net->tls != NULL;   /* announce tls=1.0 */
    cfg->peeraddr = peeraddr;
    size_t n = 0;
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT; i++)
        if (exts[i])
            cfg->extensions[n++] = exts[i]->protocol;
    if (ext)
        cfg->protocol = ext->protocol;
    if (key) {
        cfg->extra_key[0] = key;
        cfg->extra_value[0] = value;
        cfg->n_extra = 1;
    }
}

void aemp__conn_ext_register(const aemp_conn_ext_t *ext)
{
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT; i++)
        if (exts[i] == ext)
            return;
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT; i++) {
        if (!exts[i]) {
            exts[i] = ext;
            return;
        }
    }
    abort();   /* a build with more extension modules than slots */
}

void aemp__conn_ext_unregister(const aemp_conn_ext_t *ext)
{
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT; i++)
        if (exts[i] == ext)
            exts[i] = NULL;
}

/* The registered handler for an extension name, or NULL. */
static const aemp_conn_ext_t *find_ext(const char *protocol)
{
    for (size_t i = 0; i < AEMP_PROTO_MAX_EXT; i++)
        if (exts[i] && !strcmp(exts[i]->protocol, protocol))
            return exts[i];
    return NULL;
}

static void timer_cb(EV_P_ ev_timer *w, int revents);
static void read_cb(EV_P_ ev_io *w, int revents);
static void write_cb(EV_P_ ev_io *w, int revents);

static aemp_conn_t *new_conn(int fd, const char *peeraddr, int outgoing, const aemp_conn_ext_t *ext,
                             const char *key, const char *value)
{
    aemp_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->peeraddr = strdup(peeraddr)))
        abort();
    c->fd = fd;
    c->outgoing = outgoing;
    aemp_proto_cfg_t cfg;
    fill_cfg(&cfg, peeraddr, ext, key, value);
    c->proto = aemp__proto_new(&cfg);
    if (!c->proto)
        abort();
    c->ext = ext;
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    /* above the job queue's check watcher (priority 0): what a read
     * delivers runs in the same loop pass, not after one more poll */
    ev_set_priority(&c->rio, 1);
    c->rio.data = c;
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    c->wio.data = c;
    ev_timer_init(&c->timer, timer_cb, aemp__g.net.monitor_timeout, 0);
    c->timer.data = c;
    ev_timer_start(aemp__g.loop, &c->timer);
    c->last_write = c->since = ev_now(aemp__g.loop);
    track(c);
    list_add(CONN_PENDING, c);
    return c;
}

/* ------------------------------------------------------------- closing */

void aemp__conn_close(aemp_conn_t *c, const char *reason)
{
    if (c->closed)
        return;
    c->closed = 1;
    struct ev_loop *loop = aemp__g.loop;
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    if (c->dirty) {
        for (aemp_conn_t **p = &dirty_head; *p; p = &(*p)->next_dirty) {
            if (*p == c) {
                *p = c->next_dirty;
                break;
            }
        }
        c->dirty = 0;
    }
    if (c->fd >= 0)
        close(c->fd);
    untrack(c);
    handshake_over(c);
    if (c->ext && !c->detached && !c->up && c->ext->failed)
        c->ext->failed(c, reason);
    /* the node layer says what matters (node down, handshake failures) */
    aemp_log(c->up ? AEMP_LOG_DEBUG : AEMP_LOG_TRACE, "connection %s%s%s closed: %s",
             c->peeraddr, c->node ? " to " : "", c->node ? c->node->id : "", reason);
    aemp__node_conn_lost(c, reason);   /* monitors fire from the job queue (node.c) */
    if (shutting_down)
        free_conn(c);
    else
        aemp__job_call(free_conn, c);   /* callers up the stack may still look at c */
}

/* ------------------------------------------------------------- reading */

/* Bytes the next read into in asks for: what its storage holds, at least
 * READ_MIN and at most READ_CHUNK. */
static size_t read_size(const aemp_buf_t *in)
{
    return in->cap < READ_MIN ? READ_MIN : in->cap < READ_CHUNK ? in->cap : READ_CHUNK;
}

/* ---------------------------------------------------------- heap trim */

static size_t freed_since_trim;   /* bytes of large buffers freed since the last trim */
static ev_tstamp last_trim = -1e9;
static int trim_due;              /* a trim job or the timer is pending */
static ev_timer trim_timer;       /* for a trim within TRIM_INTERVAL of the last */

static void heap_trim(void *unused)
{
    (void)unused;
    trim_due = 0;
    freed_since_trim = 0;
    last_trim = ev_now(aemp__g.loop);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void trim_timer_cb(EV_P_ ev_timer *w, int revents)
{
    ev_ref(EV_A);   /* the expired timer was unreferenced (trim_soon) */
    heap_trim(NULL);
}

/* The buffer storage of `bytes` just freed: a trim when enough was. */
static void buffer_freed(size_t bytes)
{
    if (bytes <= TRIM_COUNT)
        return;
    freed_since_trim += bytes;
    if (freed_since_trim < TRIM_AFTER || trim_due || shutting_down)
        return;
    trim_due = 1;
    double wait = last_trim + TRIM_INTERVAL - ev_now(aemp__g.loop);
    if (wait <= 0) {
        aemp__job_call(heap_trim, NULL);
        return;
    }
    ev_timer_set(&trim_timer, wait, 0);
    ev_timer_start(aemp__g.loop, &trim_timer);
    ev_unref(aemp__g.loop);   /* does not keep the loop running */
}

/* Free b if it is empty and holds more than keep bytes (aemp__buf_trim),
 * counting what was freed for the heap trim. */
static void trim_buf(aemp_buf_t *b, size_t keep)
{
    size_t cap = b->cap;
    aemp__buf_trim(b, keep);
    if (!b->cap)
        buffer_freed(cap);
}

/* Read what the socket has (a bounded number of chunks per callback):
 * plaintext straight into the protocol's in buffer, or, once TLS has
 * started, ciphertext into the TLS session, then process it. */
static void read_cb(EV_P_ ev_io *w, int revents)
{
    static uint8_t scratch[READ_CHUNK];   /* ciphertext; one thread */
    aemp_conn_t *c = w->data;
    aemp_buf_t *in = aemp__proto_in(c->proto);
    for (int rounds = 0; rounds < READ_ROUNDS; rounds++) {
        ssize_t r;
        if (c->tls) {
            r = read(c->fd, scratch, READ_CHUNK);
        } else {
            /* plaintext straight into the buffer's room; a read that fills
             * a small buffer asks how much more waits (FIONREAD) and takes
             * it (up to READ_CHUNK in all) into the buffer grown once for
             * it, so that a frame larger than a small buffer costs one more
             * read, not one per doubling, and no copy (an EOF or an error
             * behind it is the next callback's) */
            size_t room = read_size(in);
            r = read(c->fd, aemp__buf_reserve(in, room), room);
            int avail;
            if (r > 0)
                in->len += (size_t)r;
            if (r == (ssize_t)room && room < READ_CHUNK && ioctl(c->fd, FIONREAD, &avail) == 0 && avail > 0) {
                size_t more = (size_t)avail < READ_CHUNK - room ? (size_t)avail : READ_CHUNK - room;
                ssize_t r2 = read(c->fd, aemp__buf_reserve(in, more), more);
                if (r2 > 0) {
                    in->len += (size_t)r2;
                    r += r2;
                }
            }
        }
        if (r > 0) {
            c->bytes_in += (uint64_t)r;
            aemp__g.stats[AEMP_STAT_BYTES_IN] += (uint64_t)r;
            if (c->tls)
                aemp__tls_feed(c->tls, scratch, (size_t)r);
            if ((size_t)r < READ_CHUNK)
                break;
            continue;
        }
        if (r == 0) {
            if (c->tls)
                tls_pump(c);
            process(c);   /* whatever arrived before the end (TLS may start here) */
            if (!c->closed && c->tls && !c->up) {
                /* a clear reason, logged and closed by process() */
                aemp__proto_fail(c->proto, "TLS handshake failed: Unexpected end-of-file");
                process(c);
            } else if (!c->closed && !c->up && aemp__proto_peer_node(c->proto)) {
                /* the peer greeted, then hung up: it refused us */
                aemp__proto_fail(c->proto, "Unexpected end-of-file: the peer closed the connection during the handshake");
                process(c);
            }
            aemp__conn_close(c, "Unexpected end-of-file");
            return;
        }
        if (errno == EAGAIN || errno == EINTR)
            break;
        aemp__conn_close(c, strerror(errno));
        return;
    }
    if (c->tls)
        tls_pump(c);
    process(c);
    /* a drained input buffer is freed, whatever it grew to: an idle
     * connection holds none.  The next read takes READ_MIN bytes from
     * malloc's per-thread cache and, if more waits, grows the buffer once
     * for it (above), so a stream pays one more read per burst that drains
     * it.  (Kept, the 128 KiB that a watcher's snapshot of thousands of
     * keys needs stayed with every late joiner of a large network, and the
     * mirror built from the snapshot took fresh pages instead of those.) */
    if (!c->closed)
        trim_buf(in, 0);
}

/* ------------------------------------------------------------------ TLS */

/* Run the TLS session on the ciphertext fed so far: the handshake, then
 * plaintext into the protocol's in buffer.  Tells the protocol when the
 * handshake is done; a failure becomes the protocol's error, which
 * process() logs before it sends the pending alert and closes. */
static void tls_pump(aemp_conn_t *c)
{
    int r = aemp__tls_input(c->tls, aemp__proto_in(c->proto));
    if (r == AEMP_TLS_ERR)
        aemp__proto_fail(c->proto, "%s: %s", c->up ? "TLS error" : "TLS handshake failed",
                         aemp__tls_error(c->tls));
    else if (r == AEMP_TLS_EOF)
        aemp__proto_fail(c->proto, "Unexpected end-of-file (TLS session closed by the peer)");
    else if (!c->tls_up && aemp__tls_established(c->tls)) {
        char how[128];
        c->tls_up = 1;
        aemp_log(AEMP_LOG_DEBUG, "connection %s: TLS established (%s)", c->peeraddr,
                 aemp__tls_describe(c->tls, how, sizeof how));
        aemp__proto_tls_ready(c->proto);   /* queues the auth line, inside TLS */
    }
    if (aemp__tls_want_write(c->tls))
        mark_dirty(c);
}

/* AEMP_PROTO_START_TLS: switch this connection to TLS (see the top). */
static void start_tls(aemp_conn_t *c)
{
    if (!aemp__g.net.tls) {   /* cannot happen: tls=1.0 is announced only with a context */
        aemp__proto_fail(c->proto, "TLS requested, but this node has no certificate");
        return;
    }
    int client = aemp__proto_tls_client(c->proto);
    aemp_buf_t *out = aemp__proto_out(c->proto);
    aemp__buf_append(&c->wire, aemp__buf_head(out), aemp__buf_used(out));   /* greeting rest */
    aemp__buf_consume(out, aemp__buf_used(out));
    c->tls = aemp__tls_new(aemp__g.net.tls, client);
    aemp_buf_t *in = aemp__proto_in(c->proto);
    if (aemp__buf_used(in)) {   /* the peer's first TLS bytes */
        aemp__tls_feed(c->tls, aemp__buf_head(in), aemp__buf_used(in));
        aemp__buf_consume(in, aemp__buf_used(in));
    }
    aemp_log(AEMP_LOG_TRACE, "connection %s: starting TLS as the %s", c->peeraddr,
             client ? "client" : "server");
    tls_pump(c);
}

/* Level 9: one line per frame in (<) or out (>), abbreviated. */
static void trace_frame(const aemp_conn_t *c, const char *dir, const char *dest, size_t destlen,
                        const aemp_msg_t *msg)
{
    char *text = aemp__msg_text(msg);
    size_t n = strlen(text);
    aemp_log(AEMP_LOG_TRACE, "frame %s %s %s: \"%.*s\" %.*s%s", dir, c->outgoing ? "to" : "from",
             c->node ? c->node->id : c->peeraddr, (int)(destlen > 64 ? 64 : destlen), dest ? dest : "",
             (int)(n > 200 ? 200 : n), text, n > 200 ? "..." : "");
    free(text);
}

/* What to check after a handshake failure, for the log line ("" if the
 * error says it all). */
static const char *failure_hint(const char *error, int outgoing)
{
    if (strstr(error, "closed the connection during the handshake"))
        return "; does it have the same secret, or is another node with our ID already connected to it?";
    if (strstr(error, "shared secret mismatch"))
        return "; check that both nodes have the same secret (`secret` in the profile or rc file)";
    if (strstr(error, "no shared secret configured"))
        return "; configure the same `secret` (or a `cert`) on both nodes";
    if (strstr(error, "no common auth type"))
        return "; compare auth_offer and auth_accept (and dialect) of both nodes";
    if (strstr(error, "unparsable greeting") || strstr(error, "version mismatch"))
        return outgoing ? "; is that address an AEMP node?" : "; the peer is not an AEMP node";
    return "";
}

/* Log why the handshake of c failed: at the default level (WARN), except
 * for the expected cases (a seed that is ourselves, a duplicate connection);
 * rate-limited.  The peer is named by its address, the node it claims or we
 * expect, and the auth method it used. */
static void log_handshake_failure(aemp_conn_t *c, const char *claim)
{
    const char *error = aemp__proto_error(c->proto);
    const char *who = c->node ? c->node->id : claim;   /* a claim is only logged */
    int level = AEMP_LOG_WARN;
    if ((claim && !strcmp(claim, aemp__g.nodeid)) || strstr(error, "already connected"))
        level = AEMP_LOG_INFO;
    char method[64] = "";
    aemp_auth_method_t m = aemp__proto_peer_method(c->proto);
    if (m != AEMP_AUTH_NONE)
        snprintf(method, sizeof method, " (auth %s)", aemp__auth_name(m));
    static aemp_ratelimit_t rl;
    aemp__log_limited(&rl, level, "connection %s%s%s: %s%s%s", c->peeraddr, who ? " from " : "", who ? who : "",
                      error, method, failure_hint(error, c->outgoing));
}

/* Turn buffered input into protocol events. */
static void process(aemp_conn_t *c)
{
    aemp_frame_t frame;
    while (!c->closed && !c->held) {
        switch (aemp__proto_next(c->proto, &frame)) {
        case AEMP_PROTO_NEED_MORE:
            if (aemp__buf_used(aemp__proto_out(c->proto))
                || (c->tls && (aemp__buf_used(&c->wire) || aemp__tls_want_write(c->tls))))
                mark_dirty(c);
            return;
        case AEMP_PROTO_GREETING:
            if (strcmp(aemp__proto_protocol(c->proto), "aemp")) {
                c->ext = find_ext(aemp__proto_protocol(c->proto));   /* proto only switches to ours */
                break;
            }
            aemp__node_greeted(c, aemp__proto_peer_node(c->proto));
            break;   /* a refusal surfaces as AEMP_PROTO_ERROR next */
        case AEMP_PROTO_START_TLS:
            start_tls(c);   /* a failure surfaces as AEMP_PROTO_ERROR next */
            break;
        case AEMP_PROTO_AUTHED:
            if (c->ext) {   /* no frames: the extension takes the connection */
                handshake_over(c);
                ev_timer_stop(aemp__g.loop, &c->timer);
                c->ext->authed(c);
                return;
            }
            c->up = 1;
            handshake_over(c);
            ev_timer_stop(aemp__g.loop, &c->timer);
            /* keepalive: a connection idle for monitor_timeout sends the
             * no-op ["",""], so that a half-open connection (the peer
             * restarted, a partition healed) is reset and a dead peer is
             * noticed (TCP_USER_TIMEOUT) - 1.30 did this only for nodes
             * without listeners */
            ev_timer_set(&c->timer, aemp__g.net.monitor_timeout, aemp__g.net.monitor_timeout);
            ev_timer_again(aemp__g.loop, &c->timer);
            aemp__node_connected(c);
            break;
        case AEMP_PROTO_FRAME:
            c->msgs_in++;
            aemp__g.stats[AEMP_STAT_MSGS_IN]++;
            if (aemp__log_tracing())
                trace_frame(c, "<", frame.dest, frame.destlen, frame.msg);
            aemp__node_frame(c, &frame);
            break;
        case AEMP_PROTO_ERROR: {
            /* a seed that is ourselves is found here ("refuse to talk");
             * what else an unauthenticated peer claims is not believed */
            const char *claim = aemp__proto_peer_node(c->proto);
            if (c->seed && claim && !strcmp(claim, aemp__g.nodeid))
                aemp__seed_greeted(c->seed, claim);
            /* send what the protocol still has (nothing secret) and close */
            log_handshake_failure(c, claim);
            flush_one(c);
            if (!c->closed)
                aemp__conn_close(c, aemp__proto_error(c->proto));
            return;
        }
        }
    }
}

void aemp__conn_hold(aemp_conn_t *c)
{
    c->held = 1;
    ev_io_stop(aemp__g.loop, &c->rio);
}

static void release_job(void *arg)
{
    aemp_conn_t *c = arg;
    if (c->closed)
        return;
    if (c->tls)
        tls_pump(c);
    process(c);   /* what was buffered while held */
}

void aemp__conn_release(aemp_conn_t *c)
{
    if (!c->held || c->closed)
        return;
    c->held = 0;
    ev_io_start(aemp__g.loop, &c->rio);
    aemp__job_call(release_job, c);
}

/* ------------------------------------------------------------- writing */

/* Bytes queued on c and not yet written to the socket. */
static size_t unsent(const aemp_conn_t *c)
{
    return aemp__buf_used(aemp__proto_out(c->proto)) + (c->tls ? aemp__buf_used(&c->wire) : 0);
}

size_t aemp__conn_unsent(const aemp_conn_t *c)
{
    return unsent(c);
}

void aemp__conn_each(void (*fn)(const aemp_conn_t *c, void *arg), void *arg)
{
    for (size_t i = 0; i < nall; i++)
        fn(all[i], arg);
}

/* Count a frame of c that took its unsent output from `before` to now
 * (and `sent` bytes of it went to the socket at once), trace it, and
 * schedule the flush. */
static void frame_queued(aemp_conn_t *c, size_t before, size_t sent, const char *dest, size_t destlen,
                         const aemp_msg_t *msg)
{
    size_t after = unsent(c), bytes = after - before + sent;
    c->msgs_out++;
    c->bytes_out += bytes;
    aemp__g.stats[AEMP_STAT_MSGS_OUT]++;
    aemp__g.stats[AEMP_STAT_BYTES_OUT] += bytes;
    if (aemp__log_tracing())
        trace_frame(c, ">", dest, destlen, msg);
    if (after > aemp__g.net.max_queue)
        c->overflow = 1;
    mark_dirty(c);
}

void aemp__conn_send(aemp_conn_t *c, const char *dest, size_t destlen, const aemp_msg_t *msg)
{
    if (c->closed || c->overflow)
        return;   /* an overflowing connection closes at the flush: its monitors fire */
    size_t before = unsent(c);
    aemp__proto_send(c->proto, dest, destlen, msg);
    frame_queued(c, before, 0, dest, destlen, msg);
}

int aemp__conn_send_fmt(aemp_conn_t *c, const char *dest, size_t destlen, const char *fmt, va_list ap)
{
    if (c->closed || c->overflow)
        return 0;
    size_t before = unsent(c);
    if (aemp__proto_send_fmt(c->proto, dest, destlen, fmt, ap) != 0)
        return -1;
    aemp_msg_t *traced = aemp__log_tracing() ? aemp_vmsgf(fmt, ap) : NULL;
    frame_queued(c, before, 0, dest, destlen, traced);
    aemp_msg_unref(traced);
    return 0;
}

/* Hand p[0..n) to c's socket now, without waiting, if c is a connected
 * plaintext connection: the bytes it took (0 if none; errors are left to
 * the regular flush). */
static size_t send_now(aemp_conn_t *c, const void *p, size_t n)
{
    if (c->tls || !c->connected)
        return 0;
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0)
        return 0;
    c->last_write = ev_now(aemp__g.loop);
    return (size_t)w;
}

void aemp__conn_send_encoded(aemp_conn_t *c, const char *dest, size_t destlen, const aemp_msg_t *msg,
                             const void *bytes, size_t len)
{
    if (c->closed || c->overflow)
        return;
    size_t before = unsent(c), direct = 0;
    /* a fan-out hands the same large frame to thousands of connections in
     * one pass: one with nothing unsent gets it straight from the shared
     * bytes, so that what waits is in the kernel's socket buffers, and
     * only what the socket does not take is copied here (a copy per
     * connection, each freed only at the flush, made a global node's RSS
     * peak at the frame's size times its subscribers); errors are left to
     * the regular flush */
    if (!before && len > OUT_AT_ONCE && c->up)
        direct = send_now(c, bytes, len);
    if (direct < len)
        aemp__proto_send_encoded(c->proto, (const char *)bytes + direct, len - direct);
    frame_queued(c, before, direct, dest, destlen, msg);
    if (direct)
        return;
    /* behind other output: hand what is queued to the socket now */
    aemp_buf_t *out = aemp__proto_out(c->proto);
    if (!c->overflow && aemp__buf_used(out) > OUT_AT_ONCE)
        aemp__buf_consume(out, send_now(c, aemp__buf_head(out), aemp__buf_used(out)));
}

aemp_framing_t aemp__conn_framing(const aemp_conn_t *c)
{
    return c->up ? aemp__proto_send_framing(c->proto) : AEMP_FRAMING_NONE;
}

/* Close c because its unsent output exceeds max_send_queue. */
static void overflow_close(aemp_conn_t *c)
{
    char why[160];
    snprintf(why, sizeof why, "send queue overflow: %zu bytes unsent, more than max_send_queue (%zu)",
             unsent(c), aemp__g.net.max_queue);
    aemp__g.stats[AEMP_STAT_SEND_QUEUE_OVERFLOWS]++;
    static aemp_ratelimit_t rl;
    aemp__log_limited(&rl, AEMP_LOG_WARN, "connection %s%s%s: %s", c->peeraddr, c->node ? " to " : "",
                      c->node ? c->node->id : "", why);
    aemp__conn_close(c, why);
}

/* Write as much of the output buffer as the socket takes; with TLS, the
 * protocol's plaintext is encrypted into `wire` a chunk at a time. */
static void flush_one(aemp_conn_t *c)
{
    if (c->closed)
        return;
    if (c->overflow) {
        overflow_close(c);
        return;
    }
    if (!c->connected)
        return;
    aemp_buf_t *plain = aemp__proto_out(c->proto);
    aemp_buf_t *out = c->tls ? &c->wire : plain;
    for (;;) {
        if (c->tls && aemp__buf_used(&c->wire) < WIRE_CHUNK
            && aemp__tls_output(c->tls, plain, WIRE_CHUNK, &c->wire) == AEMP_TLS_ERR) {
            char why[320];
            snprintf(why, sizeof why, "TLS error: %s", aemp__tls_error(c->tls));
            aemp_log(AEMP_LOG_WARN, "connection %s: %s", c->peeraddr, why);
            aemp__conn_close(c, why);
            return;
        }
        if (!aemp__buf_used(out))
            break;
        /* MSG_NOSIGNAL: a peer gone away fails this connection (EPIPE)
         * instead of killing the process with SIGPIPE */
        ssize_t w = send(c->fd, aemp__buf_head(out), aemp__buf_used(out), MSG_NOSIGNAL);
        if (w > 0) {
            aemp__buf_consume(out, (size_t)w);
            c->last_write = ev_now(aemp__g.loop);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            if (unsent(c) > aemp__g.net.max_queue) {
                overflow_close(c);
                return;
            }
            ev_io_start(aemp__g.loop, &c->wio);
            return;
        }
        aemp__conn_close(c, w < 0 ? strerror(errno) : "write returned 0");
        return;
    }
    ev_io_stop(aemp__g.loop, &c->wio);
    /* drained: the buffer is freed (the next frame allocates again, from
     * malloc's per-thread cache for a small one); a global node's
     * thousands of idle connections kept up to 4 KiB each before, the size
     * of the last fan-out they carried */
    trim_buf(plain, 0);
    trim_buf(&c->wire, 2 * WIRE_CHUNK);   /* TLS: a chunk is the unit */
}

static void flush_all(EV_P_ ev_prepare *w, int revents)
{
    while (dirty_head) {
        aemp_conn_t *c = dirty_head;
        dirty_head = c->next_dirty;
        c->dirty = 0;
        flush_one(c);
    }
}

static void write_cb(EV_P_ ev_io *w, int revents)
{
    aemp_conn_t *c = w->data;
    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            aemp__conn_close(c, strerror(err));
            return;
        }
        c->connected = 1;
        ev_io_start(EV_A_ &c->rio);
    }
    flush_one(c);
}

/* ---------------------------------------------------- timeouts, keepalive */

static void timer_cb(EV_P_ ev_timer *w, int revents)
{
    aemp_conn_t *c = w->data;
    if (!c->up) {
        aemp__conn_close(c, "handshake timeout");
        return;
    }
    if (ev_now(EV_A) - c->last_write >= aemp__g.net.monitor_timeout - 0.01) {
        aemp_msg_t *ka = aemp_msgf("s", "");
        aemp__conn_send(c, "", 0, ka);   /* ["",""]: a no-op in both dialects */
        aemp_msg_unref(ka);
    }
}

/* ----------------------------------------------------- accept / connect */

/* Make room for a new incoming connection: close the oldest one still in
 * its handshake.  Returns 0 if there was none. */
static int shed_oldest(const char *why)
{
    aemp_conn_t *c = lists[CONN_UNAUTH].head;
    if (!c)
        return 0;
    aemp__g.stats[AEMP_STAT_UNAUTH_SHED]++;
    static aemp_ratelimit_t rl;
    aemp__log_limited(&rl, AEMP_LOG_WARN, "connection %s: closed before authentication: %s", c->peeraddr, why);
    aemp__conn_close(c, why);
    return 1;
}

static void accept_resume(EV_P_ ev_timer *t, int revents)
{
    listener_t *l = (listener_t *)((char *)t - offsetof(listener_t, pause));
    ev_io_start(EV_A_ &l->w);
}

static void accept_cb(EV_P_ ev_io *w, int revents)
{
    listener_t *l = (listener_t *)w;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept(w->fd, (struct sockaddr *)&ss, &len);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
                return;
            if (e == ECONNABORTED || e == EPROTO)
                continue;   /* that client gave up: take the next */
            aemp__g.stats[AEMP_STAT_ACCEPT_ERRORS]++;
            if ((e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
                && shed_oldest("out of file descriptors or memory, making room for a new connection"))
                continue;
            static aemp_ratelimit_t rl;
            aemp__log_limited(&rl, AEMP_LOG_WARN, "accept on %s: %s; not accepting for %.1f s", l->addr,
                              strerror(e), ACCEPT_PAUSE);
            ev_io_stop(EV_A_ w);
            ev_timer_set(&l->pause, ACCEPT_PAUSE, 0);
            ev_timer_start(EV_A_ &l->pause);
            return;
        }
        if (lists[CONN_UNAUTH].n >= aemp__g.net.max_unauth) {
            char why[120];
            snprintf(why, sizeof why, "more than max_unauthenticated (%zu) connections in their handshake",
                     aemp__g.net.max_unauth);
            shed_oldest(why);
        }
        set_socket_options(fd);
        char peer[AEMP_ENDPOINT_STRMAX] = "?";
        aemp__endpoint_format((struct sockaddr *)&ss, peer, sizeof peer, NULL, 0);
        aemp_conn_t *c = new_conn(fd, peer, 0, NULL, NULL, NULL);
        c->connected = 1;
        unauth_add(c);
        ev_io_start(EV_A_ &c->rio);
        mark_dirty(c);   /* the greeting */
    }
}

/* The listen backlog: listen_backlog, or the system's maximum. */
static int backlog(void)
{
    if (aemp__g.net.listen_backlog > 0)
        return aemp__g.net.listen_backlog;
    int max = SOMAXCONN;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    if (f) {
        if (fscanf(f, "%d", &max) != 1 || max <= 0)
            max = SOMAXCONN;
        fclose(f);
    }
    return max;
}

int aemp__listen_socket(const char *addr, int queue, char *bound, size_t boundsize, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (aemp__endpoint_sockaddr(addr, &ss, &len, err, errlen) < 0)
        return AEMP_EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket for %s: %s", addr, strerror(errno));
        return AEMP_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, queue) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        close(fd);
        return AEMP_EIO;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    aemp__endpoint_format((struct sockaddr *)&ss, bound, boundsize, NULL, 0);
    return fd;
}

int aemp__conn_listen(const char *addr, char *bound, size_t boundsize, char *err, size_t errlen)
{
    listener_t *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    int fd = aemp__listen_socket(addr, backlog(), l->addr, sizeof l->addr, err, errlen);
    if (fd < 0) {
        free(l);
        return fd;
    }
    snprintf(bound, boundsize, "%s", l->addr);
    ev_io_init(&l->w, accept_cb, fd, EV_READ);
    ev_timer_init(&l->pause, accept_resume, ACCEPT_PAUSE, 0);
    ev_io_start(aemp__g.loop, &l->w);
    l->next = listeners;
    listeners = l;
    aemp_log(AEMP_LOG_INFO, "listening on %s", l->addr);
    return 0;
}

static aemp_conn_t *connect_to(const char *addr, const aemp_conn_ext_t *ext, const char *key,
                               const char *value, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (aemp__endpoint_sockaddr(addr, &ss, &len, err, errlen) < 0)
        return NULL;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    set_socket_options(fd);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return NULL;
    }
    aemp_conn_t *c = new_conn(fd, addr, 1, ext, key, value);
    ev_io_start(aemp__g.loop, &c->wio);   /* completion of the connect */
    return c;
}

aemp_conn_t *aemp__conn_connect(const char *addr, aemp_rnode_t *node, const char *seed,
                                char *err, size_t errlen)
{
    aemp_conn_t *c = connect_to(addr, NULL, NULL, NULL, err, errlen);
    if (!c)
        return NULL;
    c->node = node;
    if (seed && !(c->seed = strdup(seed)))
        abort();
    return c;
}

aemp_conn_t *aemp__conn_connect_ext(const char *addr, const aemp_conn_ext_t *ext, const char *key,
                                    const char *value, char *err, size_t errlen)
{
    return connect_to(addr, ext, key, value, err, errlen);
}

void aemp__conn_detach(aemp_conn_t *c, aemp_conn_detached_t *d)
{
    memset(d, 0, sizeof *d);
    d->fd = c->fd;
    d->tls = c->tls;
    c->tls = NULL;
    aemp_buf_t *in = aemp__proto_in(c->proto), *out = aemp__proto_out(c->proto);
    if (aemp__buf_used(in))
        aemp__buf_append(&d->in, aemp__buf_head(in), aemp__buf_used(in));
    if (aemp__buf_used(out))
        aemp__buf_append(&d->out, aemp__buf_head(out), aemp__buf_used(out));
    d->wire = c->wire;
    c->wire = (aemp_buf_t)AEMP_BUF_INIT;
    c->fd = -1;
    c->detached = 1;
    c->up = 1;   /* not a handshake failure */
    aemp__conn_close(c, "handed over to its protocol extension");
}

/* ------------------------------------------------------------ lifecycle */

void aemp__conn_init(void)
{
    ev_prepare_init(&flush_watcher, flush_all);
    ev_prepare_start(aemp__g.loop, &flush_watcher);
    ev_unref(aemp__g.loop);
    ev_timer_init(&trim_timer, trim_timer_cb, TRIM_INTERVAL, 0);
}

void aemp__conn_listeners_close(void)
{
    while (listeners) {
        listener_t *l = listeners;
        listeners = l->next;
        ev_io_stop(aemp__g.loop, &l->w);
        ev_timer_stop(aemp__g.loop, &l->pause);
        close(l->w.fd);
        free(l);
    }
}

void aemp__conn_shutdown(void)
{
    struct ev_loop *loop = aemp__g.loop;
    shutting_down = 1;
    while (nall) {
        aemp_conn_t *c = all[0];
        c->node = NULL;   /* silent: the node table goes away too */
        aemp__conn_close(c, "shutdown");
    }
    free(all);
    all = NULL;
    capall = 0;
    dirty_head = NULL;
    aemp__conn_listeners_close();
    ev_ref(loop);
    ev_prepare_stop(loop, &flush_watcher);
    if (ev_is_active(&trim_timer)) {
        ev_ref(loop);
        ev_timer_stop(loop, &trim_timer);
    }
    trim_due = 0;
    aemp__tls_ctx_free(aemp__g.net.tls);   /* the node's TLS context (configure.c) */
    aemp__g.net.tls = NULL;
    shutting_down = 0;
}
