/* bench/tcp_ceiling - the most messages per second that TCP on 127.0.0.1
 * moves between two processes here: the ceiling for bench_remote's and
 * bench_zmq_oneway's one-way numbers.
 *
 * Prints:
 *   RESULT tcp_ceiling <n> msgs/s   ["ping", i, "abcdefghijklmnop"] as CBOR
 *                                   (27-32 bytes each), encoded back to back
 *                                   and written 64 KiB at a time
 * Usage: bench_tcp_ceiling [messages]   (default 50,000,000)
 *
 * The writer encodes every message (i counts up, so each is new) into a
 * 64 KiB buffer and writes the buffer whenever the next message would not
 * fit; the reader reads 64 KiB at a time until the writer closes, checks
 * that exactly the expected number of bytes arrived and reports messages
 * per second from its connect to the end.  It does not split the
 * stream into messages: what it measures is the transport alone.
 *
 * Both ends are fresh child processes (this program re-executed with a
 * role argument, see benchutil.h): the writer listens and prints "LISTEN
 * <port>", the reader connects and prints "VALUE <msgs/s>".  The
 * supervisor reads both with bounded waits and stops both by PID.
 */
#include "benchutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

/* Bytes of messages 0 .. n-1 on the wire. */
static uint64_t stream_bytes(uint64_t n)
{
    unsigned char tmp[BU_PING_MAX];
    uint64_t total = 0;
    /* the length only changes where i needs a longer CBOR head */
    static const uint64_t steps[] = { 24, 256, 65536, 4294967296ull };
    uint64_t from = 0;
    for (size_t k = 0; k <= sizeof steps / sizeof steps[0] && from < n; k++) {
        uint64_t to = k < sizeof steps / sizeof steps[0] && steps[k] < n ? steps[k] : n;
        total += (to - from) * bu_cbor_ping(tmp, from);
        from = to;
    }
    return total;
}

/* Child role --writer N: listen on 127.0.0.1, print "LISTEN <port>",
 * accept one reader and send it n messages, then close. */
static int run_writer(long n)
{
    bu_child_safety();
    int fd = bu_tcp_accept_one();
    if (fd < 0)
        return 1;
    static unsigned char buf[CHUNK];
    size_t used = 0;
    for (long i = 0; i < n; i++) {
        if (used + BU_PING_MAX > sizeof buf) {
            if (bu_full_io(fd, (char *)buf, used, 1) < 0) {
                perror("bench_tcp_ceiling: write");
                return 1;
            }
            used = 0;
        }
        used += bu_cbor_ping(buf + used, (uint64_t)i);
    }
    if (bu_full_io(fd, (char *)buf, used, 1) < 0) {
        perror("bench_tcp_ceiling: write");
        return 1;
    }
    close(fd);
    return 0;
}

/* Child role --reader PORT N: connect, read until the writer closes,
 * print "VALUE <msgs/s>" from the connect to the end. */
static int run_reader(int port, long n)
{
    bu_child_safety();
    int fd = bu_tcp_connect(port);
    if (fd < 0)
        return 1;
    static unsigned char buf[CHUNK];
    uint64_t got = 0, want = stream_bytes((uint64_t)n);
    double t0 = bu_now();   /* the writer starts as soon as it accepted */
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            perror("bench_tcp_ceiling: read");
            return 1;
        }
        if (r == 0)
            break;
        got += (uint64_t)r;
    }
    double dt = bu_now() - t0;
    close(fd);
    if (got != want || dt <= 0) {
        fprintf(stderr, "bench_tcp_ceiling: %llu bytes arrived, %llu expected\n",
                (unsigned long long)got, (unsigned long long)want);
        return 1;
    }
    printf("VALUE %.0f\n", n / dt);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    bu_init("bench_tcp_ceiling");
    if (argc >= 3 && !strcmp(argv[1], "--writer"))
        return run_writer(atol(argv[2]));
    if (argc >= 4 && !strcmp(argv[1], "--reader"))
        return run_reader(atoi(argv[2]), atol(argv[3]));

    long msgs = argc > 1 ? atol(argv[1]) : 50000000;
    if (msgs <= 0) {
        fprintf(stderr, "usage: bench_tcp_ceiling [messages]\n");
        return 2;
    }
    char nmsgs[32], v[128];
    snprintf(nmsgs, sizeof nmsgs, "%ld", msgs);
    const char *writer[] = { "--writer", nmsgs, NULL };
    const char *reader[] = { "--reader", BU_ADDR, nmsgs, NULL };
    if (bu_measure(writer, reader, v, sizeof v) != 0)
        return 1;
    printf("RESULT tcp_ceiling %s msgs/s\n", v);
    return 0;
}
