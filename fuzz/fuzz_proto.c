/* fuzz_proto.c - libFuzzer target for the handshake state machine and the
 * data phase of src/proto.c, in both roles and both dialects, with and
 * without a shared secret and a certificate.
 *
 * Input: byte 0 = mode, byte 1 = feeding, then the peer's bytes.
 *
 * Mode bit 7 clear - replay: we are one side of a captured Perl session
 * (tests/vectors/capture: 1.30, capture2: 2.02) with its greeting lines
 * and secret, and the rest of the input is what the peer sends, from its
 * greeting on.  Bits 0-1 pick the session and our role: 1.30 as the
 * listener, 1.30 as the connector, 2.02 as the listener, 2.02 as the
 * connector; the seeds are the recorded streams, so the fuzzer starts from
 * a handshake that authenticates and goes on into the frames.
 *
 * Mode bit 7 set - pair: a second proto object is the peer.  The two
 * shake hands in memory and the rest of the input is what the peer sends
 * after that, i.e. frames in the framing it announced (HMAC needs no
 * luck here).  Bits 0-1 pick the peer's dialects; byte 1 bit 4 gives the
 * peer a certificate, bit 5 another secret, bit 7 none, and bit 6 takes
 * the peer's greeting line 1 from the input (up to the first LF).
 *
 * Both modes: bits 2-3 our dialects (default, 1.30, 2.02, both), bit 4 no
 * secret, bit 5 we have a certificate, bit 6 a frame limit of 256 bytes.
 * Byte 1 bits 0-3: the peer's bytes arrive in pieces of 1-16 bytes.
 *
 * Properties (a violation aborts): the event contract of pp_run
 * (proto_pair.h, including the frame round trip); feeding the peer's
 * bytes in pieces gives exactly the events of feeding them at once; in
 * pair mode, a pair that must authenticate does, both sides agree on the
 * methods and framings, and the greeting values (escaped on the wire)
 * arrive unchanged.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto_pair.h"

#ifndef AEMP_VECTORS_DIR
#define AEMP_VECTORS_DIR "tests/vectors"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The secrets of the captured sessions (see their handshake.txt). */
static const char *const capture_secret[2] = { "aemp-interop-capture-secret",
                                               "aemp2-example-secret" };

/* Greeting lines of the captured sessions: [session][0 = listener, 1 =
 * connector][line 1, nonce line], read once from the recorded streams. */
static char *capture_line[2][2][2];

/* Read the first two lines of a recorded stream into out[0], out[1];
 * exits if the file is missing (the target cannot run without it). */
static void read_greeting(const char *rel, char *out[2])
{
    char path[1024], line[AEMP_PROTO_MAX_LINE + 2];
    snprintf(path, sizeof path, "%s/%s", AEMP_VECTORS_DIR, rel);
    FILE *f = fopen(path, "rb");
    for (int i = 0; i < 2; i++) {
        if (!f || !fgets(line, sizeof line, f)) {
            fprintf(stderr, "fuzz_proto: cannot read the greeting in %s\n", path);
            exit(1);
        }
        line[strcspn(line, "\r\n")] = 0;
        out[i] = strdup(line);
    }
    fclose(f);
}

/* Set from $AEMP_FUZZ_VERBOSE: print what each run of an input reached
 * (for checking that seeds get where they should). */
static int verbose;

/* Print what side p reached, if verbose. */
static void report(const char *what, const pp_seen_t *seen, const aemp_proto_t *p)
{
    if (verbose)
        fprintf(stderr, "fuzz_proto: %s: greeting %d, authed %d, frames %d, error: %s\n", what,
                seen->greeting, seen->authed, seen->frames,
                aemp__proto_error(p) ? aemp__proto_error(p) : "-");
}

/* Load the captured greeting lines (once). */
static void load_captures(void)
{
    if (capture_line[0][0][0])
        return;
    verbose = getenv("AEMP_FUZZ_VERBOSE") != NULL;
    read_greeting("capture/conn1.s2c.bin", capture_line[0][0]);
    read_greeting("capture/conn1.c2s.bin", capture_line[0][1]);
    read_greeting("capture2/conn1.s2c.bin", capture_line[1][0]);
    read_greeting("capture2/conn1.c2s.bin", capture_line[1][1]);
}

/* Feed p[0..n) to side a in pieces of `chunk` bytes (0 = at once), running
 * it after each piece. */
static void feed(aemp_proto_t *a, const uint8_t *p, size_t n, size_t chunk, pp_seen_t *seen,
                 aemp_buf_t *trace)
{
    for (size_t fed = 0; fed < n;) {
        size_t k = chunk && n - fed > chunk ? chunk : n - fed;
        aemp__buf_append(aemp__proto_in(a), p + fed, k);
        fed += k;
        if (pp_run(a, seen, trace) == AEMP_PROTO_ERROR)
            return;
    }
}

/* Replay mode: our side of a captured session, the peer's stream from the
 * input.  Appends the events and our output to trace. */
static void run_replay(uint8_t mode, const uint8_t *p, size_t n, size_t chunk, aemp_buf_t *trace)
{
    int session = (mode >> 1) & 1, role = mode & 1;
    char *const *ours = capture_line[session][role];
    const char *nodeid = role ? "client" : "seed";
    aemp_proto_cfg_t c = pp_cfg(nodeid, mode & 0x10 ? NULL : capture_secret[session],
                                pp_dialects(mode >> 2), mode & 0x20, mode & 0x40 ? 256 : 1 << 20);
    c.line1_override = ours[0];
    c.nonce_override = ours[1];
    aemp_proto_t *a = aemp__proto_new(&c);
    if (!a)
        abort();   /* the captured lines are valid */
    pp_seen_t seen = { 0 };
    if (pp_run(a, &seen, trace) != AEMP_PROTO_NEED_MORE)
        pp_violation("a new side waits for the peer", a);
    feed(a, p, n, chunk, &seen, trace);
    report("replay", &seen, a);
    aemp_buf_t *out = aemp__proto_out(a);
    aemp__buf_append(trace, aemp__buf_head(out), aemp__buf_used(out));
    aemp__proto_free(a);
}

/* Fail unless two values are the same string (NULL only equal to NULL). */
static void same_str(const char *want, const char *got, const char *what, aemp_proto_t *p)
{
    if (!want != !got || (want && strcmp(want, got)))
        pp_violation(what, p);
}

/* Pair mode: the handshake with a second proto object, then the peer's
 * bytes from the input.  Appends the events of our side to trace. */
static void run_pair(uint8_t mode, uint8_t feeding, const uint8_t *p, size_t n, size_t chunk,
                     aemp_buf_t *trace)
{
    static const char peeraddr[] = "127.0.0.1:4040;odd=%3b%";   /* escaped on the wire */
    const char *sa = mode & 0x10 ? NULL : PP_SECRET;
    const char *sb = feeding & 0x80 ? NULL : feeding & 0x20 ? "another-secret" : PP_SECRET;
    unsigned da = pp_dialects(mode >> 2), db = pp_dialects(mode);
    int ca = !!(mode & 0x20), cb = !!(feeding & 0x10);
    char line1[AEMP_PROTO_MAX_LINE];
    int own_line = !!(feeding & 0x40);

    aemp_proto_cfg_t cfa = pp_cfg("a", sa, da, ca, mode & 0x40 ? 256 : 1 << 20);
    cfa.nonce_override = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh";
    cfa.peeraddr = peeraddr;
    aemp_proto_cfg_t cfb = pp_cfg("b", sb, db, cb, 0);
    cfb.nonce_override = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi";
    if (own_line) {
        const uint8_t *lf = memchr(p, '\n', n);
        size_t k = lf ? (size_t)(lf - p) : n;
        if (k >= sizeof line1)
            return;
        memcpy(line1, p, k);
        line1[k] = 0;
        cfb.line1_override = line1;
        p += lf ? k + 1 : k;
        n -= lf ? k + 1 : k;
    }
    aemp_proto_t *a = aemp__proto_new(&cfa), *b = aemp__proto_new(&cfb);
    if (!a || (!b && !own_line))
        abort();
    if (!b) {   /* a line 1 proto.c will not send (CR in it) */
        aemp__proto_free(a);
        return;
    }

    pp_seen_t seen_a = { 0 }, seen_b = { 0 };
    for (int round = 0; round < 8; round++) {
        size_t moved = pp_move(a, b, 0) + pp_move(b, a, 0);
        pp_run(a, &seen_a, trace);
        pp_run(b, &seen_b, NULL);
        if (!moved)
            break;
    }

    int must = !own_line && (da ? da : AEMP_DIALECT_BOTH) == (db ? db : AEMP_DIALECT_BOTH)
        && ((sa && sb && !strcmp(sa, sb)) || (!sa && !sb && ca && cb));
    if (must && !(seen_a.authed && seen_b.authed)) {
        fprintf(stderr, "a: %s / b: %s\n", aemp__proto_error(a) ? aemp__proto_error(a) : "-",
                aemp__proto_error(b) ? aemp__proto_error(b) : "-");
        pp_violation("two sides with the same dialects and a common secret (or both TLS) "
                     "authenticate", a);
    }
    if (seen_a.authed && seen_b.authed) {
        if (aemp__proto_send_auth(a) != aemp__proto_recv_auth(b)
            || aemp__proto_recv_auth(a) != aemp__proto_send_auth(b)
            || aemp__proto_send_framing(a) != aemp__proto_recv_framing(b)
            || aemp__proto_recv_framing(a) != aemp__proto_send_framing(b))
            pp_violation("both sides agree on the methods and framings", a);
        if (aemp__proto_tls(a) != aemp__proto_tls(b)
            || (aemp__proto_tls(a) && aemp__proto_tls_client(a) == aemp__proto_tls_client(b)))
            pp_violation("both sides agree on TLS, one of them is the client", a);
    }
    if (seen_b.greeting)
        same_str(peeraddr, aemp__proto_peer_value(b, "peeraddr"),
                 "a greeting value arrives unchanged", b);
    if (seen_a.authed)
        feed(a, p, n, chunk, &seen_a, trace);
    report("pair", &seen_a, a);
    aemp__proto_free(a);
    aemp__proto_free(b);
}

/* One scenario, its peer bytes in pieces of `chunk` (0 = at once); the
 * events go to trace. */
static void run(const uint8_t *data, size_t size, size_t chunk, aemp_buf_t *trace)
{
    if (data[0] & 0x80)
        run_pair(data[0], data[1], data + 2, size - 2, chunk, trace);
    else
        run_replay(data[0], data + 2, size - 2, chunk, trace);
}

/* One input: both ways of feeding it, compared.  Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    load_captures();
    aemp_buf_t whole = AEMP_BUF_INIT, pieces = AEMP_BUF_INIT;
    aemp__buf_putc(&whole, data[0]);   /* never empty: no NULL data below */
    aemp__buf_putc(&pieces, data[0]);
    run(data, size, 0, &whole);
    run(data, size, 1 + (data[1] & 15), &pieces);
    if (aemp__buf_used(&whole) != aemp__buf_used(&pieces)
        || memcmp(aemp__buf_head(&whole), aemp__buf_head(&pieces), aemp__buf_used(&whole))) {
        fprintf(stderr, "proto property violated: feeding the peer's bytes in pieces of %d "
                "changes the events (%zu vs %zu trace bytes)\n", 1 + (data[1] & 15),
                aemp__buf_used(&whole), aemp__buf_used(&pieces));
        abort();
    }
    aemp__buf_free(&whole);
    aemp__buf_free(&pieces);
    return 0;
}
