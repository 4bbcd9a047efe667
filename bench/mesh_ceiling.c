/* bench/mesh_ceiling.c - the join storm of bench_mesh scale in bare TCP:
 * what the same communication costs this machine with nothing else in it.
 *
 * One seed process and N worker processes, forked like the libaemp ones.
 * A worker connects to the seed, sends its entry (a CEIL_REC-byte record)
 * and counts the distinct entries it receives in a table of its own until
 * it has all N; then it reports "A <index> <wall-clock time>".  The seed
 * collects the entries and sends every worker the ones it does not have
 * yet: a new worker at once (its snapshot), the others by the fan-out
 * rule of a libaemp global node (src/fanout_pace.h, with its defaults,
 * counting two global nodes as seed1 of the default run does, the master
 * of every worker there: in a storm one delivery per interval, a storm's
 * end within a quarter interval, a change after a quiet spell at once).
 * It reports "J <n> <time>" when it has every entry.  No greeting, no
 * authentication, no framing, no messages to decode, no monitors: what is
 * left is the forks, the connections, one write and one wake-up per
 * delivery, the bytes, and one table insert per entry and watcher.
 */
#define _GNU_SOURCE   /* accept4 */
#include "mesh_ceiling.h"

#include "benchutil.h"
#include "mesh_scale.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fanout_pace.h"

#define CEIL_SHARE 2   /* global nodes the fan-out rule counts (bench_mesh's G) */

/* ------------------------------------------------------------ seed */

typedef struct {
    int fd;
    char rec[CEIL_REC];
    size_t got;      /* bytes of its record read */
    size_t sent;     /* bytes of the entries sent to it */
    size_t target;   /* bytes of the entries it is to be sent */
    int out;         /* waiting for EPOLLOUT */
} peer_t;

static struct {
    int n, ep, report_fd;
    char *entries;   /* every entry so far, CEIL_REC bytes each */
    size_t count;    /* entries so far */
    peer_t *peers;   /* by fd */
    int *subs;       /* fds of the workers whose record arrived */
    int nsubs;
    size_t fanned;   /* entries the last fan-out covered */
    size_t last_keys;
    double last;     /* when the last fan-out went out */
    double changed;  /* when the last entry arrived */
} Z;

static void peer_push(peer_t *p)
{
    while (p->sent < p->target) {
        ssize_t w = send(p->fd, Z.entries + p->sent, p->target - p->sent, MSG_NOSIGNAL);
        if (w > 0) {
            p->sent += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    int want = p->sent < p->target;
    if (want != p->out) {
        struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.fd = p->fd };
        epoll_ctl(Z.ep, EPOLL_CTL_MOD, p->fd, &ev);
        p->out = want;
    }
}

static void peer_read(peer_t *p)
{
    char rest[64];   /* a worker sends nothing after its record */
    for (;;) {
        int rec = p->got < CEIL_REC;
        ssize_t r = read(p->fd, rec ? p->rec + p->got : rest, rec ? CEIL_REC - p->got : sizeof rest);
        if (r > 0 && rec) {
            p->got += (size_t)r;
            continue;
        }
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            epoll_ctl(Z.ep, EPOLL_CTL_DEL, p->fd, NULL);   /* gone: not read again */
        if (r <= 0)
            break;
    }
    if (p->got == CEIL_REC && Z.count < (size_t)Z.n) {
        p->got++;   /* counted */
        memcpy(Z.entries + Z.count * CEIL_REC, p->rec, CEIL_REC);
        Z.count++;
        Z.changed = bu_now();
        Z.subs[Z.nsubs++] = p->fd;
        p->target = Z.count * CEIL_REC;   /* its snapshot, at once */
        peer_push(p);
        if (Z.count == (size_t)Z.n)
            mesh_report(Z.report_fd, 'J', Z.n, mesh_wall());
    }
}

static double fanout_interval(void)
{
    aemp_fanout_cost_t c = { .subscribers = Z.nsubs, .last_keys = (double)Z.last_keys, .share = CEIL_SHARE };
    return aemp__fanout_interval(&c, AEMP_DEFAULT_DB_FANOUT_CPU, AEMP_DEFAULT_DB_FANOUT_MAX_DELAY);
}

/* The entries since the last fan-out to every worker that has not got
 * them; returns the seconds until the next one is due (-1: none waits). */
static double fanout(void)
{
    if (Z.fanned == Z.count)
        return -1;
    double due = aemp__fanout_due(Z.last, Z.changed, fanout_interval()), now = bu_now();
    if (due > now)
        return due - now;
    for (int i = 0; i < Z.nsubs; i++) {
        peer_t *p = &Z.peers[Z.subs[i]];
        if (p->target < Z.count * CEIL_REC) {
            p->target = Z.count * CEIL_REC;
            peer_push(p);
        }
    }
    Z.last_keys = Z.count - Z.fanned;
    Z.fanned = Z.count;
    Z.last = now;
    return -1;
}

static void seed_main(int lfd, int n, int report_fd, int maxfd)
{
    bu_child_safety();
    signal(SIGTERM, SIG_DFL);
    Z.n = n;
    Z.report_fd = report_fd;
    Z.entries = calloc((size_t)n + 1, CEIL_REC);
    Z.peers = calloc((size_t)maxfd, sizeof *Z.peers);
    Z.subs = calloc((size_t)n + 1, sizeof *Z.subs);
    Z.ep = epoll_create1(0);
    if (!Z.entries || !Z.peers || !Z.subs || Z.ep < 0)
        _exit(1);
    Z.last = -1e9;
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];
    epoll_ctl(Z.ep, EPOLL_CTL_ADD, lfd, &ev);
    int timeout = -1;
    for (;;) {
        int k = epoll_wait(Z.ep, evs, 256, timeout);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= maxfd) {
                        close(c);
                        continue;
                    }
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    Z.peers[c] = (peer_t){ .fd = c };
                    struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(Z.ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            peer_t *p = &Z.peers[fd];
            if (evs[i].events & EPOLLIN)
                peer_read(p);
            if (evs[i].events & EPOLLOUT)
                peer_push(p);
        }
        double wait = fanout();
        timeout = wait < 0 ? -1 : (int)(wait * 1000) + 1;
    }
}

/* ------------------------------------------------------------ worker */

static uint64_t rec_hash(const char *r)
{
    uint64_t a, b;
    memcpy(&a, r, 8);
    memcpy(&b, r + 8, 8);
    uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

static void worker_main(int port, int index, int n, int report_fd)
{
    bu_child_safety();
    signal(SIGTERM, SIG_DFL);
    int fd = bu_tcp_connect(port);
    if (fd < 0)
        _exit(1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char rec[CEIL_REC] = { 0 };
    snprintf(rec, sizeof rec, "w%d", index);
    if (bu_full_io(fd, rec, sizeof rec, 1) < 0)
        _exit(1);
    /* the table of entries: open addressing, at most half full */
    size_t cap = 16;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    char *table = calloc(cap, CEIL_REC);
    if (!table)
        _exit(1);
    static char buf[64 * 1024];
    size_t have = 0, distinct = 0;
    while (distinct < (size_t)n) {
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            _exit(2);
        have += (size_t)r;
        size_t whole = have - have % CEIL_REC;
        for (size_t off = 0; off < whole; off += CEIL_REC) {
            const char *e = buf + off;
            for (size_t s = rec_hash(e) & (cap - 1);; s = (s + 1) & (cap - 1)) {
                char *slot = table + s * CEIL_REC;
                if (!slot[0]) {
                    memcpy(slot, e, CEIL_REC);
                    distinct++;
                    break;
                }
                if (!memcmp(slot, e, CEIL_REC))
                    break;
            }
        }
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
    mesh_report(report_fd, 'A', index, mesh_wall());
    mesh_report(report_fd, 'G', index, mesh_own_faults());
    for (;;)
        pause();
}

/* ------------------------------------------------------------ spawning */

/* fork(): 0 in the child (close_fd closed there, if >= 0), the child's
 * PID in the parent; exits on failure. */
static pid_t fork_child(int close_fd)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0 && close_fd >= 0)
        close(close_fd);
    return pid;
}

pid_t mesh_ceiling_seed(int n, int report_fd, int close_fd, int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t len = sizeof sin;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 65535) < 0
        || getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
        perror("mesh ceiling: listen");
        exit(1);
    }
    *port = ntohs(sin.sin_port);
    int maxfd = n + 1024;   /* the connections and what the benchmark had open */
    pid_t pid = fork_child(close_fd);
    if (!pid)
        seed_main(lfd, n, report_fd, maxfd);
    close(lfd);
    return pid;
}

pid_t mesh_ceiling_worker(int port, int index, int n, int report_fd, int close_fd)
{
    pid_t pid = fork_child(close_fd);
    if (!pid)
        worker_main(port, index, n, report_fd);
    return pid;
}
