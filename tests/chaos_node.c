/* chaos_node.c - one node of the chaos test (tests/test_chaos.py).
 *
 *   chaos_node INDEX INCARNATION LOGFILE SECRET ADDR0 ADDR1 ... ADDRn-1
 *
 * Runs node "chaos<INDEX>" listening on ADDR<INDEX>, with every other
 * address as a seed, and the sink port "chaos<INDEX>#sink".  For every
 * other node it runs a sender: it monitors that node's sink, and while the
 * monitor stands sends ["d", INDEX, INCARNATION, epoch, seq, check] with
 * seq counting up from 0 in each epoch.  When the monitor fires the epoch
 * ends; after CHAOS_REMON seconds the sender monitors again and begins the
 * next epoch.  The sink checks, per sending node, that (incarnation,
 * epoch, seq) only grows and notes every stream start and every gap.
 *
 * Everything that the driver's invariants need is appended to LOGFILE the
 * moment it happens, one write(2) per line, so a SIGKILL loses nothing:
 *   <t> start <index> <inc> <pid>
 *   <t> ready
 *   <t> mon <peer> <epoch>                      monitor placed
 *   <t> fire <peer> <epoch> <sent> <reason...>  monitor fired (first time)
 *   <t> dupfire <peer> <epoch> <reason...>      the same monitor fired again
 *   <t> stream <sender> <sinc> <epoch> <seq>    first message of a stream
 *   <t> gap <sender> <sinc> <epoch> <expected> <got>
 *   <t> order <sender> <sinc> <epoch> <seq> <last sinc> <last epoch> <last seq>
 *   <t> bad <text>                              a malformed sink message
 *   <t> up <node> | down <node> <reason...>     node up/down callbacks
 *   <t> rss <kB> <received> <sent>              once a second
 *   <t> seen <sender>:<sinc>:<count> ...        once a second: messages per
 *                                               sender since the last line
 *   <t> sum <sender> <sinc> <epoch> <count> <last seq> <last t>   at exit
 *   <t> exit
 * <t> is CLOCK_MONOTONIC in seconds, the clock of the driver's
 * time.monotonic().  SIGTERM ends the node cleanly (exit status 0).
 *
 * Environment: CHAOS_RATE messages per second to each peer (default 500),
 * CHAOS_REMON seconds between a firing and the next monitor (default 0.2).
 */
#include "aemp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 16
#define TICK 0.01   /* seconds between send bursts */

/* one monitor placed by a sender: identifies the epoch it guards */
typedef struct chaos_mon {
    int peer;
    int64_t epoch;
    int fired;
    struct chaos_mon *next;   /* every monitor ever placed, freed at exit */
} chaos_mon_t;

/* a sender towards one peer's sink */
typedef struct sender {
    char sink[64];
    int64_t epoch;
    int64_t seq;               /* next sequence number */
    chaos_mon_t *mon;          /* the standing monitor, NULL between epochs */
} sender_t;

/* what the sink knows of one sending node */
typedef struct stream {
    int have;
    int64_t sinc, epoch, last, count;
    int64_t recent;            /* messages since the last "seen" line */
    double last_t;
} stream_t;

static int me, nnodes;
static int64_t incarnation;
static int logfd = -1;
static sender_t senders[MAX_NODES];
static stream_t streams[MAX_NODES];
static chaos_mon_t *all_mons;
static int64_t received, sent;
static double rate = 500, remon = 0.2, credit;
static ev_signal term_watcher;

/* CLOCK_MONOTONIC in seconds. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Append one event line "<t> <fmt...>\n" to the log with a single write. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%.6f ", now());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(logfd, line, (size_t)n) != n)
        _exit(3);   /* the driver would read wrong findings */
}

/* A kill reason as one line of text (newlines cannot occur: aemp_val_text
 * escapes them). */
static char *reason_text(aemp_msg_t *reason)
{
    return aemp_val_text(aemp_msg_root(reason));
}

/* ---------------------------------------------------------------- senders */

static void place_monitor(void *arg);

/* A sender's monitor fired: the epoch ends (the first time), the next
 * monitor follows after `remon` seconds. */
static void on_fire(aemp_msg_t *reason, void *arg)
{
    chaos_mon_t *m = arg;
    char *why = reason_text(reason);
    if (m->fired++) {
        note("dupfire %d %lld %s", m->peer, (long long)m->epoch, why);
        free(why);
        return;
    }
    sender_t *s = &senders[m->peer];
    note("fire %d %lld %lld %s", m->peer, (long long)m->epoch, (long long)s->seq, why);
    free(why);
    if (s->mon == m) {
        s->mon = NULL;
        aemp_after_cb(remon, place_monitor, (void *)(intptr_t)m->peer, NULL);
    }
}

/* Begin the next epoch towards peer: monitor its sink, then send. */
static void place_monitor(void *arg)
{
    int peer = (int)(intptr_t)arg;
    sender_t *s = &senders[peer];
    chaos_mon_t *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->peer = peer;
    m->epoch = ++s->epoch;
    m->next = all_mons;
    all_mons = m;
    s->seq = 0;
    s->mon = m;
    note("mon %d %lld", peer, (long long)m->epoch);
    if (aemp_mon(s->sink, on_fire, m, NULL) < 0) {
        note("bad cannot monitor %s", s->sink);
        s->mon = NULL;
    }
}

/* The check value of a message: lets the sink notice a corrupted one. */
static int64_t check_of(int64_t sinc, int64_t epoch, int64_t seq)
{
    return (int64_t)(((uint64_t)seq * 2654435761u) ^ ((uint64_t)epoch << 20) ^ (uint64_t)sinc);
}

/* Every TICK: send this tick's share of `rate` to every standing epoch. */
static void tick(void *arg)
{
    credit += rate * TICK;
    int burst = (int)credit;
    credit -= burst;
    for (int p = 0; p < nnodes; p++) {
        sender_t *s = &senders[p];
        if (p == me || !s->mon)
            continue;
        for (int i = 0; i < burst; i++, s->seq++, sent++)
            aemp_sndf(s->sink, "siIIII", "d", me, incarnation, s->epoch, s->seq,
                      check_of(incarnation, s->epoch, s->seq));
    }
    aemp_after_cb(TICK, tick, NULL, NULL);
}

/* ------------------------------------------------------------------- sink */

/* A message on our sink: check the order of its sender's stream. */
static void on_sink(aemp_msg_t *msg, void *arg)
{
    int from;
    int64_t sinc, epoch, seq, check;
    if (aemp_msg_unpack(msg, "*iIIII", &from, &sinc, &epoch, &seq, &check) < 0 || from < 0
        || from >= nnodes || from == me) {
        char *t = aemp_val_text(aemp_msg_root(msg));
        note("bad message %s", t);
        free(t);
        return;
    }
    if (check != check_of(sinc, epoch, seq)) {
        note("bad check %d %lld %lld %lld", from, (long long)sinc, (long long)epoch, (long long)seq);
        return;
    }
    received++;
    stream_t *st = &streams[from];
    double t = now();
    if (!st->have || sinc > st->sinc || (sinc == st->sinc && epoch > st->epoch)) {
        note("stream %d %lld %lld %lld", from, (long long)sinc, (long long)epoch, (long long)seq);
    } else if (sinc < st->sinc || epoch < st->epoch || seq <= st->last) {
        note("order %d %lld %lld %lld %lld %lld %lld", from, (long long)sinc, (long long)epoch,
             (long long)seq, (long long)st->sinc, (long long)st->epoch, (long long)st->last);
        return;   /* the stream's state stays at its newest message */
    } else if (seq != st->last + 1) {
        note("gap %d %lld %lld %lld %lld", from, (long long)sinc, (long long)epoch,
             (long long)(st->last + 1), (long long)seq);
    }
    if (!st->have || sinc != st->sinc || epoch != st->epoch)
        st->count = 0;
    st->have = 1;
    st->sinc = sinc;
    st->epoch = epoch;
    st->last = seq;
    st->count++;
    st->recent++;
    st->last_t = t;
}

/* ----------------------------------------------------------------- status */

/* Resident set size in kB (0 if unknown). */
static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Once a second: memory, totals, and who sent us what since last time. */
static void status(void *arg)
{
    note("rss %ld %lld %lld", rss_kb(), (long long)received, (long long)sent);
    char line[MAX_NODES * 48] = "";
    size_t n = 0;
    for (int p = 0; p < nnodes; p++) {
        stream_t *st = &streams[p];
        if (st->recent)
            n += (size_t)snprintf(line + n, sizeof line - n, " %d:%lld:%lld", p, (long long)st->sinc,
                                  (long long)st->recent);
        st->recent = 0;
    }
    note("seen%s", line);
    aemp_after_cb(1.0, status, NULL, NULL);
}

static void on_node(const char *node, int up, aemp_msg_t *reason, void *arg)
{
    if (up) {
        note("up %s", node);
        return;
    }
    char *why = reason_text(reason);
    note("down %s %s", node, why);
    free(why);
}

/* SIGTERM: write the summary and leave the loop. */
static void on_term(struct ev_loop *loop, ev_signal *w, int revents)
{
    for (int p = 0; p < nnodes; p++) {
        stream_t *st = &streams[p];
        if (st->have)
            note("sum %d %lld %lld %lld %lld %.6f", p, (long long)st->sinc, (long long)st->epoch,
                 (long long)st->count, (long long)st->last, st->last_t);
    }
    note("rss %ld %lld %lld", rss_kb(), (long long)received, (long long)sent);
    ev_signal_stop(loop, w);
    aemp_stop();
}

/* ------------------------------------------------------------------- main */

/* The configure arguments: our ID, bind, every other address as a seed. */
static aemp_msg_t *config_args(const char *secret, char **addrs)
{
    char id[32];
    snprintf(id, sizeof id, "chaos%d", me);
    aemp_build_t *b = aemp_build_new();
    aemp_build_map(b);
    aemp_build_fmt(b, "s:s s:s s:[s] s:f s:f s:b", "nodeid", id, "secret", secret, "binds",
                   addrs[me], "monitor_timeout", 3.0, "connect_interval", 1.0, "norc", 1);
    aemp_build_str(b, "seeds");
    aemp_build_array(b);
    for (int i = 0; i < nnodes; i++)
        if (i != me)
            aemp_build_str(b, addrs[i]);
    aemp_build_close(b);
    aemp_build_close(b);
    return aemp_build_root(b);
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: chaos_node INDEX INCARNATION LOGFILE SECRET ADDR0 ADDR1 ...\n");
        return 2;
    }
    me = atoi(argv[1]);
    incarnation = atoll(argv[2]);
    nnodes = argc - 5;
    if (me < 0 || me >= nnodes || nnodes > MAX_NODES) {
        fprintf(stderr, "chaos_node: index %d out of range (%d nodes, at most %d)\n", me, nnodes,
                MAX_NODES);
        return 2;
    }
    if (getenv("CHAOS_RATE"))
        rate = atof(getenv("CHAOS_RATE"));
    if (getenv("CHAOS_REMON"))
        remon = atof(getenv("CHAOS_REMON"));
    logfd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        fprintf(stderr, "chaos_node: %s: %s\n", argv[3], strerror(errno));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    note("start %d %lld %d", me, (long long)incarnation, (int)getpid());

    aemp_msg_t *args = config_args(argv[4], argv + 5);
    char err[256];
    if (!args || aemp_configure(args, err, sizeof err) < 0) {
        fprintf(stderr, "chaos_node %d: configure: %s\n", me, args ? err : "bad arguments");
        aemp_msg_unref(args);
        return 1;
    }
    aemp_msg_unref(args);
    /* the sink exists before the loop runs: no message can find it missing */
    char sink[64];
    snprintf(sink, sizeof sink, "chaos%d#sink", me);
    if (aemp_rcv(sink, on_sink, NULL) < 0) {
        fprintf(stderr, "chaos_node %d: cannot create %s\n", me, sink);
        return 1;
    }
    aemp_mon_nodes(on_node, NULL, NULL);
    ev_signal_init(&term_watcher, on_term, SIGTERM);
    ev_signal_start(aemp_loop(), &term_watcher);
    for (int p = 0; p < nnodes; p++) {
        snprintf(senders[p].sink, sizeof senders[p].sink, "chaos%d#sink", p);
        if (p != me)
            place_monitor((void *)(intptr_t)p);
    }
    aemp_after_cb(TICK, tick, NULL, NULL);
    aemp_after_cb(1.0, status, NULL, NULL);
    note("ready");

    aemp_run();

    aemp_shutdown();
    while (all_mons) {
        chaos_mon_t *next = all_mons->next;
        free(all_mons);
        all_mons = next;
    }
    note("exit");
    close(logfd);
    return 0;
}
