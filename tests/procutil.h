/* procutil.h - start and stop real `aemp` processes from tests.
 * Every process is stopped by its PID; every wait is bounded. */
#ifndef AEMP_PROCUTIL_H
#define AEMP_PROCUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct pu_node {
    pid_t pid;
    int out;               /* its stdout */
    char nodeid[128];
    char addr[64];         /* first listening address */
} pu_node_t;

static inline double pu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read one line from fd within `seconds`; 1 on success. */
static inline int pu_read_line(int fd, char *buf, size_t size, double seconds)
{
    size_t n = 0;
    double end = pu_now() + seconds;
    while (n + 1 < size) {
        int left = (int)((end - pu_now()) * 1000);
        if (left <= 0)
            return 0;
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, left) <= 0)
            continue;
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r <= 0)
            return 0;
        if (c == '\n') {
            buf[n] = 0;
            return 1;
        }
        buf[n++] = c;
    }
    buf[n] = 0;
    return 1;
}

/* Fork and exec `path` with argv (NULL-terminated) and extra environment
 * entries env ("K=V", NULL-terminated, or NULL).  Its stdout becomes
 * n->out (close-on-exec, so no other child holds it); its stderr goes to
 * logpath (created; appended to if append, else truncated) or is
 * inherited if logpath is NULL.  The child dies with this process, so
 * nothing outlives a test that crashes.  Returns 1 on success. */
static inline int pu_exec(pu_node_t *n, const char *path, const char *const *argv, const char *const *env,
                          const char *logpath, int append)
{
    int fds[2];
    if (pipe(fds) < 0)
        return 0;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], 1);
        if (logpath) {
            int fd = open(logpath, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
            if (fd >= 0)
                dup2(fd, 2);
        }
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    n->pid = pid;
    n->out = fds[0];
    return 1;
}

/* pu_exec of `aemp run <args...>` (NULL-terminated). */
static inline int pu_spawn(pu_node_t *n, const char *const *env, const char *const *args,
                           const char *logpath, int append)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = AEMP_BIN;
    argv[argc++] = "run";
    for (int i = 0; args[i] && argc < 62; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    return pu_exec(n, AEMP_BIN, argv, env, logpath, append);
}

/* Wait up to 10 s for the "<nodeid> listening on <addr>[,...]" line of a
 * spawned node; fills n->nodeid and n->addr (the first address). */
static inline int pu_await(pu_node_t *n)
{
    char line[512];
    if (!pu_read_line(n->out, line, sizeof line, 10))
        return 0;
    char *sp = strstr(line, " listening on ");
    if (!sp)
        return 0;
    *sp = 0;
    const char *addr = sp + strlen(" listening on ");
    if (strlen(line) >= sizeof n->nodeid || strlen(addr) >= sizeof n->addr)
        return 0;
    strcpy(n->nodeid, line);
    strcpy(n->addr, addr);
    char *comma = strchr(n->addr, ',');
    if (comma)
        *comma = 0;
    return 1;
}

/* pu_spawn (stderr inherited) and pu_await. */
static inline int pu_start(pu_node_t *n, const char *const *env, const char *const *args)
{
    return pu_spawn(n, env, args, NULL, 0) && pu_await(n);
}

/* How often needle occurs in hay (not overlapping). */
static inline int pu_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static inline char *pu_read_file(const char *path);

/* How often needle occurs in the first MiB of a file (a node's log). */
static inline int pu_count_in_file(const char *path, const char *needle)
{
    char *s = pu_read_file(path);
    int n = pu_count(s, needle);
    free(s);
    return n;
}

/* The first MiB of a file as a string (malloc'd, never NULL; empty if the
 * file cannot be read), e.g. a node's log. */
static inline char *pu_read_file(const char *path)
{
    char *s = calloc(1, 1 << 20);
    if (!s)
        abort();
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(s, 1, (1 << 20) - 1, f);
        s[n] = 0;
        fclose(f);
    }
    return s;
}

/* Stop by PID: SIGTERM, up to 5 s, then SIGKILL.  Returns the wait status. */
static inline int pu_stop(pu_node_t *n, int sig)
{
    if (n->pid <= 0)
        return -1;
    int status = -1;
    int gone = 0;
    /* a child that already exited (perhaps reaped by libev's default loop,
     * which reaps every child on SIGCHLD) is not signalled: its PID may
     * belong to another process by now */
    pid_t r0 = waitpid(n->pid, &status, WNOHANG);
    if (r0 == n->pid || (r0 < 0 && errno == ECHILD))
        gone = 1;
    else
        kill(n->pid, sig);
    double end = pu_now() + 5;
    while (!gone && pu_now() < end) {
        pid_t r = waitpid(n->pid, &status, WNOHANG);
        if (r == n->pid || (r < 0 && errno == ECHILD)) {
            /* ECHILD: libev's default loop reaped it already */
            gone = 1;
            break;
        }
        usleep(10000);
    }
    if (!gone) {
        kill(n->pid, SIGKILL);
        waitpid(n->pid, &status, 0);
    }
    close(n->out);
    n->pid = 0;
    return status;
}

#endif
