/* log.c - levelled logging with hooks (levels 0-9 as in AnyEvent::MP). */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HOOKS 16

int aemp__log_threshold = -1;   /* -1: not read from the environment yet */
static struct { aemp_log_hook_fn fn; void *arg; } hooks[MAX_HOOKS];
static int nhooks;

int aemp_log_level(void)
{
    if (aemp__log_threshold < 0) {
        const char *e = getenv("AEMP_WARNLEVEL");
        if (!e || !*e)
            e = getenv("PERL_ANYEVENT_MP_WARNLEVEL");
        aemp__log_threshold = (e && *e) ? atoi(e) : 5;
    }
    return aemp__log_threshold;
}

void aemp_set_log_level(int level)
{
    aemp__log_threshold = level;
}

int aemp_log_hook_add(aemp_log_hook_fn fn, void *arg)
{
    if (!fn || nhooks == MAX_HOOKS)
        return AEMP_EINVAL;
    hooks[nhooks].fn = fn;
    hooks[nhooks].arg = arg;
    nhooks++;
    return 0;
}

int aemp_log_hook_remove(aemp_log_hook_fn fn, void *arg)
{
    for (int i = 0; i < nhooks; i++) {
        if (hooks[i].fn == fn && hooks[i].arg == arg) {
            memmove(&hooks[i], &hooks[i + 1], (nhooks - i - 1) * sizeof hooks[0]);
            nhooks--;
            return 0;
        }
    }
    return AEMP_ENOENT;
}

static void emit(int level, const char *msg);

void aemp_log(int level, const char *fmt, ...)
{
    if (level > aemp_log_level() && !nhooks)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, msg);
}

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void aemp__log_limited(aemp_ratelimit_t *rl, int level, const char *fmt, ...)
{
    if (level > aemp_log_level() && !nhooks)
        return;
    double now = monotonic();
    if (now >= rl->next) {   /* a new period */
        rl->next = now + AEMP_LOG_RATE_PERIOD;
        rl->lines = 0;
    }
    if (rl->lines >= AEMP_LOG_RATE_BURST) {
        rl->suppressed++;
        return;
    }
    rl->lines++;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rl->suppressed && n >= 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, " (repeated %lu times in the last %.1f s)",
                 rl->suppressed, now - rl->since);
    rl->suppressed = 0;
    rl->since = now;
    emit(level, msg);
}

/* Hand one formatted line to the hooks and, at or below the level, to
 * stderr. */
static void emit(int level, const char *msg)
{
    /* hooks may remove themselves: iterate over a copy */
    int n = nhooks;
    typeof(hooks[0]) copy[MAX_HOOKS];
    memcpy(copy, hooks, n * sizeof hooks[0]);
    for (int i = 0; i < n; i++)
        copy[i].fn(level, msg, copy[i].arg);
    if (level <= aemp_log_level()) {
        char stamp[AEMP_LOG_STAMP_MAX];
        aemp__log_stamp((double)time(NULL), stamp);
        fprintf(stderr, "%s <%d> %s\n", stamp, level, msg);
    }
}

void aemp__log_stamp(double when, char out[AEMP_LOG_STAMP_MAX])
{
    time_t t = (time_t)when;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, AEMP_LOG_STAMP_MAX, "%Y-%m-%d %H:%M:%S", &tm);
}
