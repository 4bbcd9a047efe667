/* bench/local - local message throughput and ping-pong rate.
 *
 * Prints:
 *   RESULT local_oneway_shared <n> msgs/s   one prebuilt message sent by reference
 *   RESULT local_oneway_fresh <n> msgs/s    a new ["tag", i, "x"] per message
 *   RESULT local_pingpong <n> roundtrips/s  two ports bouncing one message
 * Usage: bench_local [messages]   (default 10,000,000)
 */
#include <aemp.h>
#include <stdio.h>
#include <stdlib.h>

#define BATCH 10000

static long total, sent, received;
static const char *sink, *producer;
static json_t *shared;
static int fresh, done;

static void on_sink(json_t *msg, void *arg)
{
    if (++received == total)
        done = 1;
}

/* Sends a batch to the sink, then asks itself for the next batch, so the
 * queue stays small and the loop keeps turning. */
static void on_produce(json_t *msg, void *arg)
{
    for (int i = 0; i < BATCH && sent < total; i++, sent++) {
        if (fresh)
            aemp_sndf(sink, "sIs", "tag", (json_int_t)sent, "x");
        else
            aemp_snd(sink, json_incref(shared));
    }
    if (sent < total)
        aemp_snd(producer, json_incref(msg));
}

/* Send [word] to port, run the loop until `done`; returns the seconds. */
static ev_tstamp kick_and_run(const char *port, const char *word)
{
    ev_tstamp t0 = ev_time();
    aemp_sndf(port, "s", word);
    while (!done)
        ev_run(aemp_loop(), EVRUN_ONCE);
    return ev_time() - t0;
}

static double run_oneway(int use_fresh)
{
    fresh = use_fresh;
    sent = received = 0;
    done = 0;
    sink = aemp_port(on_sink, NULL);
    producer = aemp_port(on_produce, NULL);
    ev_tstamp dt = kick_and_run(producer, "go");
    aemp_kil(sink, NULL);
    aemp_kil(producer, NULL);
    return total / dt;
}

static long rounds, max_rounds;
static const char *ping, *pong;
static void on_ping(json_t *msg, void *arg)
{
    if (++rounds < max_rounds)
        aemp_snd(pong, json_incref(msg));
    else
        done = 1;
}
static void on_pong(json_t *msg, void *arg)
{
    aemp_snd(ping, json_incref(msg));
}

int main(int argc, char **argv)
{
    total = argc > 1 ? atol(argv[1]) : 10000000;
    aemp_init(NULL);
    shared = json_pack("[sis]", "tag", 1, "x");
    printf("RESULT local_oneway_shared %.0f msgs/s\n", run_oneway(0));
    printf("RESULT local_oneway_fresh %.0f msgs/s\n", run_oneway(1));
    max_rounds = total / 4;
    done = 0;
    ping = aemp_port(on_ping, NULL);
    pong = aemp_port(on_pong, NULL);
    printf("RESULT local_pingpong %.0f roundtrips/s\n", max_rounds / kick_and_run(ping, "ball"));
    json_decref(shared);
    aemp_shutdown();
    return 0;
}
