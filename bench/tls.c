/* bench/tls - the cost of TLS: message throughput, round-trip latency and
 * connection set-up between two nodes on 127.0.0.1, over TLS and over plain
 * TCP (HMAC auth) in the same run, CBOR framing.
 *
 * Prints:
 *   RESULT tls_oneway_cbor <n> msgs/s      ["tag", i, "x"] one way, acked in bulk
 *   RESULT plain_oneway_cbor <n> msgs/s
 *   RESULT tls_rtt_median <us> us          ping-pong through a remote port
 *   RESULT tls_rtt_p99 <us> us
 *   RESULT plain_rtt_median <us> us
 *   RESULT plain_rtt_p99 <us> us
 *   RESULT tls_handshake <ms> ms           median time from the first send to a
 *   RESULT plain_handshake <ms> ms         new node until its reply: TCP connect,
 *                                          greeting, [TLS,] auth, one round trip
 * Usage: bench_tls [messages [rounds [connections]]]
 *        (defaults 2,000,000, 20,000 and 50)
 *
 * The certificate (RSA 2048, self-signed, as `aemp gencert` makes it) is
 * generated once into a temporary file that both nodes load as `cert`.
 * Every measurement runs in two fresh processes (this program, re-executed
 * through /proc/self/exe with a role argument): a server node and a client
 * node.  This process only supervises: it reads the children's
 * "LISTEN"/"VALUE" lines with bounded waits and stops every child by its
 * PID; the children also carry an alarm and die with their parent.
 *
 * The supervisor, the aemp node roles and the flow control are shared with
 * bench_remote (benchutil.h); the certificate and the connection set-up
 * measurement are this file's own.
 */
#include "benchutil.h"

#include <aemp.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "bench-tls-secret"

/* ------------------------------------------------------- certificate */

/* A self-signed RSA 2048 certificate followed by its key (PEM) into the
 * file `path`.  Returns 0 or -1. */
static int make_cert(const char *path)
{
    int rc = -1;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    FILE *f = NULL;
    if (!key || !x || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1)
        || !X509_gmtime_adj(X509_getm_notBefore(x), 0)
        || !X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 24 * 3600) || !X509_set_pubkey(x, key))
        goto out;
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"AnyEvent::MP", -1, -1, 0)
        || !X509_set_issuer_name(x, name) || !X509_sign(x, key, EVP_sha256()))
        goto out;
    if (!(f = fopen(path, "w")) || !PEM_write_X509(f, x) || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
        goto out;
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = -1;
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* The content of a text file (malloc'd) or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *s = calloc(1, 65536);
    size_t n = s ? fread(s, 1, 65535, f) : 0;
    fclose(f);
    if (s)
        s[n] = 0;
    return s;
}

/* ------------------------------------------------------------ aemp nodes */

/* Configure as nodeid, CBOR framing; with a cert file (mode "tls") TLS is
 * used, else the shared secret.  Exits the process on failure. */
static void configure(const char *nodeid, const char *mode, const char *certfile)
{
    if (!strcmp(mode, "tls")) {
        char *pem = slurp(certfile);
        if (!pem) {
            fprintf(stderr, "bench_tls: cannot read %s\n", certfile);
            exit(1);
        }
        bu_configure(nodeid, "cert", pem, "cbor");
        free(pem);
    } else {
        bu_configure(nodeid, "secret", SECRET, "cbor");
    }
}

/* Child role --server MODE CERTFILE: the sink/echo server node "srv". */
static int run_server(const char *mode, const char *certfile)
{
    bu_child_safety();
    configure("srv", mode, certfile);
    bu_serve();
    aemp_shutdown();
    return 0;
}

/* Child role --oneway MODE CERTFILE ADDR N: one-way throughput. */
static int run_oneway(const char *mode, const char *certfile, const char *addr, long n)
{
    bu_child_safety();
    configure("cli", mode, certfile);
    bu_connect(addr);
    return bu_oneway(n);
}

/* Child role --rtt MODE CERTFILE ADDR N: round trips through the server. */
static int run_rtt(const char *mode, const char *certfile, const char *addr, long n)
{
    bu_child_safety();
    configure("cli", mode, certfile);
    bu_connect(addr);
    return bu_rtt(n);
}

/* Child role --connect MODE CERTFILE ADDR N: connection set-up, n fresh
 * nodes (new node IDs "cli/<random>") one after the other, each
 * reconfigured from scratch in this process; prints "VALUE <median> <p99>"
 * in milliseconds. */
static int run_connect(const char *mode, const char *certfile, const char *addr, long n)
{
    bu_child_safety();
    double *s = calloc((size_t)n, sizeof *s);
    if (!s)
        return 1;
    for (long i = 0; i < n; i++) {
        aemp_init(NULL);
        configure("cli/", mode, certfile);
        s[i] = bu_connect(addr);
        aemp_shutdown();
    }
    double median, p99;
    bu_percentiles(s, (size_t)n, 1e3, &median, &p99);
    printf("VALUE %.2f %.2f\n", median, p99);
    fflush(stdout);
    free(s);
    return 0;
}

/* ------------------------------------------------------------ supervisor */

/* One measurement of `role` against a server in `mode` (see bu_measure). */
static int measure(const char *mode, const char *certfile, const char *role, const char *count, char *value,
                   size_t size)
{
    const char *server[] = { "--server", mode, certfile, NULL };
    const char *client[] = { role, mode, certfile, BU_ADDR, count, NULL };
    return bu_measure(server, client, value, size);
}

int main(int argc, char **argv)
{
    bu_init("bench_tls");
    if (argc >= 4 && !strcmp(argv[1], "--server"))
        return run_server(argv[2], argv[3]);
    if (argc >= 6 && !strcmp(argv[1], "--oneway"))
        return run_oneway(argv[2], argv[3], argv[4], atol(argv[5]));
    if (argc >= 6 && !strcmp(argv[1], "--rtt"))
        return run_rtt(argv[2], argv[3], argv[4], atol(argv[5]));
    if (argc >= 6 && !strcmp(argv[1], "--connect"))
        return run_connect(argv[2], argv[3], argv[4], atol(argv[5]));

    long msgs = argc > 1 ? atol(argv[1]) : 2000000;
    long nrounds = argc > 2 ? atol(argv[2]) : 20000;
    long nconn = argc > 3 ? atol(argv[3]) : 50;
    if (msgs <= 0 || nrounds <= 0 || nconn <= 0) {
        fprintf(stderr, "usage: bench_tls [messages [rounds [connections]]]\n");
        return 2;
    }
    char certfile[] = "/tmp/bench-tls-XXXXXX";
    int fd = mkstemp(certfile);
    if (fd < 0 || close(fd) < 0 || make_cert(certfile) < 0) {
        fprintf(stderr, "bench_tls: cannot make a certificate in %s\n", certfile);
        if (fd >= 0)
            unlink(certfile);
        return 1;
    }
    char nmsgs[32], nr[32], nc[32], v[128], name[64], name99[64];
    snprintf(nmsgs, sizeof nmsgs, "%ld", msgs);
    snprintf(nr, sizeof nr, "%ld", nrounds);
    snprintf(nc, sizeof nc, "%ld", nconn);
    static const char *const modes[] = { "tls", "plain" };
    int failed = 0;

    for (int m = 0; m < 2; m++) {
        if (measure(modes[m], certfile, "--oneway", nmsgs, v, sizeof v) == 0)
            printf("RESULT %s_oneway_cbor %s msgs/s\n", modes[m], v);
        else
            failed = 1;
        fflush(stdout);
    }
    for (int m = 0; m < 2; m++) {
        snprintf(name, sizeof name, "%s_rtt_median", modes[m]);
        snprintf(name99, sizeof name99, "%s_rtt_p99", modes[m]);
        if (measure(modes[m], certfile, "--rtt", nr, v, sizeof v) != 0
            || bu_result_pair(v, name, name99, 1, "us") != 0)
            failed = 1;
        fflush(stdout);
    }
    for (int m = 0; m < 2; m++) {
        snprintf(name, sizeof name, "%s_handshake", modes[m]);
        if (measure(modes[m], certfile, "--connect", nc, v, sizeof v) != 0
            || bu_result_pair(v, name, NULL, 2, "ms") != 0)
            failed = 1;
        fflush(stdout);
    }
    unlink(certfile);
    return failed;
}
