/* bench/benchutil.h - what the two-process benchmarks (bench_remote,
 * bench_tls, bench_zmq_oneway, bench_tcp_ceiling) share: the supervisor that runs each measurement in fresh child processes
 * (started and stopped by PID, every wait bounded), the server and client
 * roles of those children (one-way throughput with flow control, ping-pong
 * round trips), percentiles and RESULT lines.
 *
 * A measurement is a server child and a client child, both this program
 * re-executed through /proc/self/exe with role arguments.  The server
 * prints "LISTEN <addr>", the client "VALUE <text>"; the supervisor reads
 * both with bounded waits.
 *
 * One-way flow control: the sink acks every BU_ACK_EVERY messages; the
 * sender keeps at most BU_WINDOW messages unacked, so memory stays bounded.
 */
#ifndef AEMP_BENCHUTIL_H
#define AEMP_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BU_ACK_EVERY 50000
#define BU_WINDOW 200000
#define BU_BATCH 10000
#define BU_WARMUP_ROUNDS 1000
#define BU_CHILD_ALARM 300   /* seconds: a child never lives longer */

/* ------------------------------------------------------------ common */

/* Name this program: argv[0] of its children and the prefix of its error
 * messages.  Call first in main(), before any other bu_ function. */
void bu_init(const char *prog);

/* The program name given to bu_init(). */
const char *bu_prog(void);

/* Monotonic clock in seconds. */
double bu_now(void);

/* Median and p99 of n > 0 samples, each times scale; sorts the samples. */
void bu_percentiles(double *s, size_t n, double scale, double *median, double *p99);

/* In a child: die with the parent (SIGKILL) and after BU_CHILD_ALARM s. */
void bu_child_safety(void);

/* Wait for child pid to exit, at most `seconds`, then SIGKILL it and
 * collect it.  Returns its wait status. */
int bu_reap(pid_t pid, double seconds);

/* The comparison message ["ping", i, "abcdefghijklmnop"] (bench_local's
 * fresh workload) as CBOR, the way libaemp's CBOR framing writes its
 * elements: written to out (at least BU_PING_MAX bytes), length returned
 * (27 to 32 bytes, depending on i). */
#define BU_PING_MAX 32
#define BU_PING_PAYLOAD "abcdefghijklmnop"
size_t bu_cbor_ping(unsigned char *out, uint64_t i);

/* ------------------------------------------------------------ supervisor */

/* Stands in client arguments for the address from the server's LISTEN line. */
extern const char bu_listen_addr[];
#define BU_ADDR bu_listen_addr

/* One measurement: start this program with the NULL-terminated arguments
 * `server`, wait up to 10 s for its "LISTEN <addr>" line, start it with
 * `client` (each BU_ADDR entry replaced by <addr>) and wait up to 240 s
 * for its "VALUE <text>" line.  Both children are stopped by PID before
 * returning.  Returns 0 and <text> in value, or -1 (with a message). */
int bu_measure(const char *const *server, const char *const *client, char *value, size_t size);

/* Print "RESULT <name> <value> <unit>" for the first number in a VALUE
 * text "<median> <p99>" and, if p99_name is not NULL, "RESULT <p99_name>
 * <p99> <unit>" for the second, both with `decimals` decimals.  Returns 0,
 * or -1 (nothing printed) if the text does not hold two numbers. */
int bu_result_pair(const char *value, const char *median_name, const char *p99_name, int decimals,
                   const char *unit);

/* ------------------------------------------------------------ aemp roles */

/* Configure this process as node `nodeid` bound to 127.0.0.1:0 with the
 * given framing, authenticated by `auth_key` ("secret" or "cert") set to
 * `auth_value`, without rc file.  Exits the process on failure. */
void bu_configure(const char *nodeid, const char *auth_key, const char *auth_value, const char *framing);

/* Server role, on a configured node "srv": "srv#sink" counts messages and
 * sends the count to "cli#ack" every BU_ACK_EVERY; "srv#echo" sends each
 * message minus its last element to the port that is its last element.
 * Prints "LISTEN <first listener>" and runs the loop until SIGTERM. */
void bu_serve(void);

/* Client, on a configured node: make the server node "srv" known at addr,
 * call "srv#echo" once and wait (up to 10 s) for the answer.  Returns the
 * seconds from the call to the answer; exits the process on no answer. */
double bu_connect(const char *addr);

/* One-way client role, after bu_connect(): send n messages (rounded up to
 * a multiple of BU_ACK_EVERY) ["tag", i, "x"] to "srv#sink" in batches of
 * BU_BATCH, at most BU_WINDOW unacked, until all are acked; print
 * "VALUE <msgs/s>" and shut the node down.  Returns the exit code. */
int bu_oneway(long n);

/* Round-trip client role, after bu_connect(): BU_WARMUP_ROUNDS + n ping-
 * pongs ["ping", i, "cli#pong"] through "srv#echo", one at a time; print
 * "VALUE <median> <p99>" of the last n in microseconds and shut the node
 * down.  Returns the exit code. */
int bu_rtt(long n);

/* Bare TCP on 127.0.0.1 for the comparison peers: listen on an ephemeral
 * port, print "LISTEN <port>" (what bu_measure waits for), accept one
 * connection and return its fd; or connect to port.  -1 (after a message
 * on stderr) on failure. */
int bu_tcp_accept_one(void);
int bu_tcp_connect(int port);

/* Write (writing) or read exactly n bytes, retrying on EINTR; 0, or -1 on
 * an error or end of file. */
int bu_full_io(int fd, char *buf, size_t n, int writing);

#endif
