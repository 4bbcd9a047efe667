/* bench/fiber - fibers (selective receive): scan cost, wake-up cost,
 * creation cost and memory per idle fiber.
 *
 * Prints:
 *   RESULT fiber_get_cond_1000_queued <n> msgs/s
 *       aemp_get_cond taking a message queued behind 1,000 non-matching
 *       ones (every call scans the 1,000 with the predicate)
 *   RESULT fiber_get_wakeup <n> msgs/s
 *       aemp_get_cond with an empty queue: the fiber waits when each
 *       message arrives (one predicate call and two context switches)
 *   RESULT fiber_create_run_exit <n> fibers/s
 *       aemp_port_async + start + one message + end + port kill
 *   RESULT fiber_idle_memory <bytes> bytes/fiber
 *       RSS growth per fiber blocked in aemp_get (10,000 fibers, default
 *       256 KiB stacks: only touched pages count)
 *   RESULT fiber_idle_memory_16k <bytes> bytes/fiber
 *       the same with 16 KiB stacks
 * Usage: bench_fiber [messages]   (default 200,000)
 */
#include <aemp.h>
#include "aemp_fiber.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOISE 1000
#define IDLE 10000

static long total;
static int done;
static double elapsed;

static int is_hit(aemp_msg_t *msg, void *arg)
{
    size_t len;
    const char *t = aemp_msg_tag(msg, &len);
    return t && len == 3 && memcmp(t, "hit", 3) == 0;
}

static void run_until_done(void)
{
    while (!done)
        ev_run(aemp_loop(), EVRUN_ONCE);
}

/* ---- get_cond with everything queued up front */

static void scan_body(void *arg)
{
    aemp_msg_t *m;
    if (aemp_get("start", -1, &m) != 0)
        return;
    aemp_msg_unref(m);
    ev_tstamp t0 = ev_time();
    for (long i = 0; i < total; i++) {
        if (aemp_get_cond(is_hit, NULL, -1, &m) != 0)
            return;
        aemp_msg_unref(m);
    }
    elapsed = ev_time() - t0;
    done = 1;
}

static double bench_scan(void)
{
    done = 0;
    const char *p = aemp_port_async(scan_body, NULL);
    aemp_msg_t *noise = aemp_msgf("si", "noise", 0);
    aemp_msg_t *hit = aemp_msgf("si", "hit", 0);
    for (int i = 0; i < NOISE; i++)
        aemp_snd(p, aemp_msg_ref(noise));
    for (long i = 0; i < total; i++)
        aemp_snd(p, aemp_msg_ref(hit));
    aemp_sndf(p, "s", "start");
    aemp_msg_unref(noise);
    aemp_msg_unref(hit);
    run_until_done();
    aemp_kil(p, NULL);
    return total / elapsed;
}

/* ---- get_cond while waiting: a producer sends hits, the queue is empty */

static const char *consumer, *producer;
static long sent;
static aemp_msg_t *hit_msg;

static void waiting_body(void *arg)
{
    aemp_msg_t *m;
    for (long i = 0; i < total; i++) {
        if (aemp_get_cond(is_hit, NULL, -1, &m) != 0)
            return;
        aemp_msg_unref(m);
    }
    done = 1;
}

/* Sends a batch of hits, then asks itself for the next batch. */
static void on_produce(aemp_msg_t *msg, void *arg)
{
    for (int i = 0; i < 1000 && sent < total; i++, sent++)
        aemp_snd(consumer, aemp_msg_ref(hit_msg));
    if (sent < total)
        aemp_snd(producer, aemp_msg_ref(msg));
}

static double bench_waiting(void)
{
    done = 0;
    sent = 0;
    consumer = aemp_port_async(waiting_body, NULL);
    for (int i = 0; i < 8; i++)   /* the fiber starts and waits */
        ev_run(aemp_loop(), EVRUN_NOWAIT);
    hit_msg = aemp_msgf("si", "hit", 0);
    producer = aemp_port(on_produce, NULL);
    ev_tstamp t0 = ev_time();
    aemp_sndf(producer, "s", "go");
    run_until_done();
    double dt = ev_time() - t0;
    aemp_kil(consumer, NULL);
    aemp_kil(producer, NULL);
    aemp_msg_unref(hit_msg);
    return total / dt;
}

/* ---- creation and exit */

static long ended;

static void one_shot(void *arg)
{
    aemp_msg_t *m;
    if (aemp_get_cond(NULL, NULL, -1, &m) == 0)
        aemp_msg_unref(m);
    ended++;
}

static double bench_create(long n)
{
    ended = 0;
    ev_tstamp t0 = ev_time();
    for (long i = 0; i < n; i += 1000) {
        for (long k = 0; k < 1000; k++)
            aemp_sndf(aemp_port_async(one_shot, NULL), "s", "x");
        while (ended < i + 1000)
            ev_run(aemp_loop(), EVRUN_NOWAIT);
    }
    for (int i = 0; i < 8; i++)
        ev_run(aemp_loop(), EVRUN_NOWAIT);
    return n / (ev_time() - t0);
}

/* ---- memory per idle fiber */

static long rss_bytes(void)
{
    long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    return n == 2 ? resident * sysconf(_SC_PAGESIZE) : 0;
}

static void idle_body(void *arg)
{
    aemp_msg_t *m;
    if (aemp_get("wake", -1, &m) == 0)
        aemp_msg_unref(m);
}

static double bench_idle(size_t stack)
{
    aemp_fiber_set_stack_size(stack);
    char **ids = malloc(IDLE * sizeof *ids);
    for (int i = 0; i < 8; i++)
        ev_run(aemp_loop(), EVRUN_NOWAIT);
    long before = rss_bytes();
    for (int i = 0; i < IDLE; i++)
        ids[i] = (char *)aemp_port_async(idle_body, NULL);
    for (int i = 0; i < 8; i++)   /* every fiber starts and blocks */
        ev_run(aemp_loop(), EVRUN_NOWAIT);
    long after = rss_bytes();
    if (aemp_fiber_count() != IDLE)
        fprintf(stderr, "bench_fiber: %zu fibers alive, expected %d\n", aemp_fiber_count(), IDLE);
    for (int i = 0; i < IDLE; i++)
        aemp_kil(ids[i], NULL);
    for (int i = 0; i < 8; i++)
        ev_run(aemp_loop(), EVRUN_NOWAIT);
    free(ids);
    aemp_fiber_set_stack_size(256 * 1024);
    return (double)(after - before) / IDLE;
}

int main(int argc, char **argv)
{
    total = argc > 1 ? atol(argv[1]) : 200000;
    if (total <= 0)
        total = 200000;
    aemp_init(NULL);
    printf("RESULT fiber_get_cond_1000_queued %.0f msgs/s\n", bench_scan());
    total *= 10;
    printf("RESULT fiber_get_wakeup %.0f msgs/s\n", bench_waiting());
    total /= 10;
    printf("RESULT fiber_create_run_exit %.0f fibers/s\n", bench_create(total / 2));
    printf("RESULT fiber_idle_memory %.0f bytes/fiber\n", bench_idle(256 * 1024));
    printf("RESULT fiber_idle_memory_16k %.0f bytes/fiber\n", bench_idle(16 * 1024));
    aemp_shutdown();
    return 0;
}
