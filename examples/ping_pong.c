/* ping_pong.c - two local ports play ping-pong, then one kills the other
 * and a monitor reports the reason.
 *
 *   $ ./ping_pong 3
 *   ping 1
 *   pong 1
 *   ...
 *   pong port died: ["game_over","3 rounds"]
 */
#include <aemp.h>
#include <stdio.h>
#include <stdlib.h>

static int rounds;
static const char *ping_port;

/* The pong port answers every ping ["ping", N, REPLY_TO] with
 * ["pong", N] to REPLY_TO. */
static void on_ping(aemp_msg_t *msg, void *arg)
{
    const char *reply_to;
    int64_t n;
    if (aemp_msg_unpack(msg, "*Is", &n, &reply_to) != 0) {   /* skip the tag */
        aemp_die("malformed ping");
        return;
    }
    printf("ping %lld\n", (long long)n);
    aemp_sndf(reply_to, "sI", "pong", n);
}

/* The ping port counts pongs and ends the game by killing the pong port. */
static void on_pong(aemp_msg_t *msg, void *arg)
{
    const char *pong_port = arg;
    int64_t n;
    if (aemp_msg_int(msg, 1, &n) != 0) {
        aemp_die("malformed pong");
        return;
    }
    printf("pong %lld\n", (long long)n);
    if (n < rounds)
        aemp_sndf(pong_port, "sIs", "ping", n + 1, aemp_self());
    else
        aemp_kilf(pong_port, "ss", "game_over", rounds == 1 ? "1 round" : "3 rounds");
}

static void on_pong_death(aemp_msg_t *reason, void *arg)
{
    char *text = aemp_val_text(aemp_msg_root(reason));
    printf("pong port died: %s\n", text);
    free(text);
    aemp_kil(ping_port, NULL);
    aemp_stop();
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 3;
    if (rounds != 1 && rounds != 3) {
        fprintf(stderr, "usage: ping_pong [1|3]\n");
        return 2;
    }
    const char *pong = aemp_port(NULL, NULL);
    aemp_rcv_tag(pong, "ping", on_ping, NULL);
    ping_port = aemp_port(NULL, NULL);
    aemp_rcv_tag(ping_port, "pong", on_pong, (void *)pong);
    aemp_mon(pong, on_pong_death, NULL, NULL);
    aemp_sndf(pong, "sis", "ping", 1, ping_port);
    aemp_run();
    aemp_shutdown();
    return 0;
}
