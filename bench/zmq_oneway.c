/* bench/zmq_oneway - ZeroMQ's PUSH/PULL one-way throughput between two
 * processes over tcp://127.0.0.1, for comparison with bench_remote's
 * remote_oneway_cbor and bench_tcp_ceiling.
 *
 * Prints:
 *   RESULT zmq_oneway <n> msgs/s   ["ping", i, "abcdefghijklmnop"] as CBOR
 *                                  (27-32 bytes), one ZeroMQ message each
 * Usage: bench_zmq_oneway [messages]   (default 5,000,000)
 *
 * The PUSH end encodes every message anew (i counts up) and sends it with
 * zmq_send; ZeroMQ's high-water marks (1,000 messages on each side by
 * default) are the flow control, so memory stays bounded.  The PULL end
 * receives each message, checks that it is exactly the next one expected
 * (bytes and order) and reports messages per second from its connect to
 * the last message.
 *
 * Both ends are fresh child processes (this program re-executed with a
 * role argument, see benchutil.h): the PUSH end binds and prints "LISTEN
 * <endpoint>", the PULL end connects and prints "VALUE <msgs/s>".  The
 * supervisor reads both with bounded waits and stops both by PID; the PULL
 * end gives up when no message comes for 10 s.
 */
#include "benchutil.h"

#include <zmq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECV_TIMEOUT_MS 10000

/* Report a failed ZeroMQ call and return 1 (the child's exit code). */
static int zfail(const char *what)
{
    fprintf(stderr, "bench_zmq_oneway: %s: %s\n", what, zmq_strerror(zmq_errno()));
    return 1;
}

/* Child role --push N: bind a PUSH socket on 127.0.0.1 (any port), print
 * "LISTEN <endpoint>", send n messages, then wait to be stopped (ZeroMQ
 * delivers in the background; the supervisor stops this process once the
 * PULL end has reported, or the alarm does). */
static int run_push(long n)
{
    bu_child_safety();
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_PUSH) : NULL;
    if (!s)
        return zfail("socket");
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0)
        return zfail("bind");
    char endpoint[256];
    size_t len = sizeof endpoint;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        return zfail("ZMQ_LAST_ENDPOINT");
    printf("LISTEN %s\n", endpoint);
    fflush(stdout);
    unsigned char buf[BU_PING_MAX];
    for (long i = 0; i < n; i++) {
        size_t m = bu_cbor_ping(buf, (uint64_t)i);
        if (zmq_send(s, buf, m, 0) != (int)m)
            return zfail("send");
    }
    for (;;)
        pause();   /* until SIGTERM (supervisor) or SIGALRM (bu_child_safety) */
}

/* Child role --pull ENDPOINT N: connect a PULL socket, receive and check n
 * messages, print "VALUE <msgs/s>". */
static int run_pull(const char *endpoint, long n)
{
    bu_child_safety();
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_PULL) : NULL;
    if (!s)
        return zfail("socket");
    int timeout = RECV_TIMEOUT_MS, linger = 0;
    if (zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout) != 0
        || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0)
        return zfail("setsockopt");
    double t0 = bu_now();
    if (zmq_connect(s, endpoint) != 0)
        return zfail("connect");
    unsigned char buf[BU_PING_MAX + 1], want[BU_PING_MAX];
    for (long i = 0; i < n; i++) {
        int got = zmq_recv(s, buf, sizeof buf, 0);
        if (got < 0)
            return zfail("recv");
        size_t m = bu_cbor_ping(want, (uint64_t)i);
        if ((size_t)got != m || memcmp(buf, want, m) != 0) {
            fprintf(stderr, "bench_zmq_oneway: message %ld is not the one sent\n", i);
            return 1;
        }
    }
    double dt = bu_now() - t0;
    printf("VALUE %.0f\n", n / dt);
    fflush(stdout);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    bu_init("bench_zmq_oneway");
    if (argc >= 3 && !strcmp(argv[1], "--push"))
        return run_push(atol(argv[2]));
    if (argc >= 4 && !strcmp(argv[1], "--pull"))
        return run_pull(argv[2], atol(argv[3]));

    long msgs = argc > 1 ? atol(argv[1]) : 5000000;
    if (msgs <= 0) {
        fprintf(stderr, "usage: bench_zmq_oneway [messages]\n");
        return 2;
    }
    char nmsgs[32], v[128];
    snprintf(nmsgs, sizeof nmsgs, "%ld", msgs);
    const char *push[] = { "--push", nmsgs, NULL };
    const char *pull[] = { "--pull", BU_ADDR, nmsgs, NULL };
    if (bu_measure(push, pull, v, sizeof v) != 0)
        return 1;
    printf("RESULT zmq_oneway %s msgs/s\n", v);
    return 0;
}
