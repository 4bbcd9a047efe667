/* bench/local - local message throughput and ping-pong rate.
 *
 * Prints:
 *   RESULT local_oneway_shared <n> msgs/s   one prebuilt message sent by reference
 *   RESULT local_oneway_fresh <n> msgs/s    a new ["ping", i, "abcdefghijklmnop"]
 *                                           built with aemp_sndf per message
 *   RESULT local_pingpong <n> roundtrips/s  two ports bouncing one message
 * The same message shape is used by bench_erlang_local, bench_zmq_oneway
 * and bench_tcp_ceiling, so their numbers compare.
 * Usage: bench_local [messages]   (default 10,000,000)
 */
#include <aemp.h>
#include <stdio.h>
#include <stdlib.h>

#define BATCH 10000
#define PAYLOAD "abcdefghijklmnop"

static long total, sent, received;
static const char *sink, *producer;
static aemp_msg_t *shared;
static int fresh, done;

static void on_sink(aemp_msg_t *msg, void *arg)
{
    if (++received == total)
        done = 1;
}

/* Sends a batch to the sink, then asks itself for the next batch, so the
 * queue stays small and the loop keeps turning. */
static void on_produce(aemp_msg_t *msg, void *arg)
{
    for (int i = 0; i < BATCH && sent < total; i++, sent++) {
        if (fresh)
            aemp_sndf(sink, "sIs", "ping", (int64_t)sent, PAYLOAD);
        else
            aemp_snd(sink, aemp_msg_ref(shared));
    }
    if (sent < total)
        aemp_snd(producer, aemp_msg_ref(msg));
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
static void on_ping(aemp_msg_t *msg, void *arg)
{
    if (++rounds < max_rounds)
        aemp_snd(pong, aemp_msg_ref(msg));
    else
        done = 1;
}
static void on_pong(aemp_msg_t *msg, void *arg)
{
    aemp_snd(ping, aemp_msg_ref(msg));
}

int main(int argc, char **argv)
{
    total = argc > 1 ? atol(argv[1]) : 10000000;
    aemp_init(NULL);
    shared = aemp_msgf("sis", "ping", 1, PAYLOAD);
    printf("RESULT local_oneway_shared %.0f msgs/s\n", run_oneway(0));
    printf("RESULT local_oneway_fresh %.0f msgs/s\n", run_oneway(1));
    max_rounds = total / 4;
    done = 0;
    ping = aemp_port(on_ping, NULL);
    pong = aemp_port(on_pong, NULL);
    printf("RESULT local_pingpong %.0f roundtrips/s\n", max_rounds / kick_and_run(ping, "ball"));
    aemp_msg_unref(shared);
    aemp_shutdown();
    return 0;
}
