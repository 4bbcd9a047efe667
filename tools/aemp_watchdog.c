/* aemp_watchdog.c - `aemp run` under a watchdog, like Perl's
 * AnyEvent::Watchdog: the process started as `aemp run` stays a small
 * supervisor, and the node runs in a child that it restarts.
 *
 * Policy:
 * - the node exits 0 (SIGTERM/SIGINT to it, or to the supervisor, which
 *   passes them on): the supervisor exits 0 too - a clean stop, no restart;
 * - the node exits with CLI_WATCHDOG_RESTART (`aemp restart NODE`, the
 *   function aemp::restart): restarted at once;
 * - the node fails within its first STARTUP_GRACE seconds (a bad
 *   configuration, a bind in use): not restarted, the supervisor exits with
 *   the node's code;
 * - the node dies of a signal (a crash, kill -9) or fails later: restarted
 *   after a back-off of 1, 2, 4 ... at most 30 s; more than MAX_RESTARTS
 *   within RESTART_WINDOW seconds and the supervisor gives up (exit 1).
 * Each decision is one line on stderr.  The child dies with the supervisor
 * (PR_SET_PDEATHSIG), so killing the supervisor with SIGKILL leaves no
 * orphan node.  AEMP_WATCHDOG=0 runs the node in the process itself.
 */
#include "aemp_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STARTUP_GRACE 2.0
#define MAX_RESTARTS 5
#define RESTART_WINDOW 60.0
#define BACKOFF_MAX 30.0

static volatile sig_atomic_t stopping;
static volatile pid_t child;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* SIGTERM, SIGINT: stop the node and then ourselves; SIGHUP: pass it on. */
static void on_signal(int sig)
{
    if (sig != SIGHUP)
        stopping = 1;
    if (child > 0)
        kill(child, sig);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "aemp: run: watchdog: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

/* Sleep up to seconds, returning early when a stop is asked for. */
static void rest(double seconds)
{
    double end = now() + seconds;
    while (!stopping && now() < end) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

int cli_watchdog(void)
{
    const char *e = getenv("AEMP_WATCHDOG");
    if (e && !strcmp(e, "0"))
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t supervisor = getpid();
    double restarts[MAX_RESTARTS + 1];
    int nrestarts = 0;
    double backoff = 1.0;
    fflush(stdout);
    fflush(stderr);
    for (;;) {
        double started = now();
        pid_t pid = fork();
        if (pid < 0) {
            say("cannot start the node: %s", strerror(errno));
            return CLI_FAIL;
        }
        if (pid == 0) {
            /* the node: die with the supervisor, default signal handling */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != supervisor)
                _exit(CLI_FAIL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            setenv("AEMP_WATCHDOG_CHILD", "1", 1);
            return -1;
        }
        child = pid;
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        child = 0;
        double ran = now() - started;
        if (stopping) {
            int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
            say("node stopped (pid %d), not restarting", (int)pid);
            return code;
        }
        char how[64];
        if (WIFEXITED(status)) {
            int code = WEXITSTATUS(status);
            if (code == 0)
                return CLI_OK;
            if (code == CLI_WATCHDOG_RESTART) {
                say("restarting the node (pid %d) as asked", (int)pid);
                backoff = 1.0;
                continue;
            }
            if (ran < STARTUP_GRACE) {
                say("the node failed to start (exit %d after %.1f s); not restarting", code, ran);
                return code;
            }
            snprintf(how, sizeof how, "exited with %d", code);
        } else {
            snprintf(how, sizeof how, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        }
        /* the restarts within the window, this one included */
        double t = now();
        int kept = 0;
        for (int i = 0; i < nrestarts; i++)
            if (t - restarts[i] < RESTART_WINDOW)
                restarts[kept++] = restarts[i];
        nrestarts = kept;
        if (nrestarts >= MAX_RESTARTS) {
            say("the node (pid %d) %s; %d restarts within %.0f s already, giving up", (int)pid, how,
                MAX_RESTARTS, RESTART_WINDOW);
            return CLI_FAIL;
        }
        restarts[nrestarts++] = t;
        if (ran > RESTART_WINDOW)
            backoff = 1.0;   /* it ran well for a while: start the back-off anew */
        say("the node (pid %d) %s after %.1f s; restarting in %.0f s (restart %d of at most %d within %.0f s)",
            (int)pid, how, ran, backoff, nrestarts, MAX_RESTARTS, RESTART_WINDOW);
        rest(backoff);
        if (stopping)
            return CLI_OK;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
}

int cli_watched(void)
{
    const char *e = getenv("AEMP_WATCHDOG_CHILD");
    return e && !strcmp(e, "1");
}
