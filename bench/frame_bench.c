/* frame_bench.c - encode+decode throughput of the JSON and CBOR framings,
 * and the decoding alone of the remote one-way workload.
 *
 * Round trips N frames ["port","tag",123] (destination "port", message
 * ["tag",123]) through aemp__frame_encode and aemp__frame_next, encoding
 * batches of frames into one buffer and splitting them back, as a
 * connection does; then decodes N frames ["srv#sink","ping",i,
 * "abcdefghijklmnop"] (what bench_remote's one-way receiver gets) from a
 * buffer encoded beforehand, in reads of 32 KiB as a connection takes
 * them, keeping each read's messages until the read is done (as the
 * runtime does before their port runs).  Prints one line each:
 *   RESULT frame_json_roundtrip <n> msgs/s
 *   RESULT frame_cbor_roundtrip <n> msgs/s
 *   RESULT frame_json_decode <n> msgs/s
 *   RESULT frame_cbor_decode <n> msgs/s
 * Usage: frame_bench [count]   (default 1000000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"

#define READ_BYTES 32768
#define PING_PAYLOAD "abcdefghijklmnop"

/* Seconds on a monotonic clock. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Round-trip `count` frames in framing f; returns messages per second, or
 * -1 if a frame did not come back intact. */
static double run(aemp_framing_t f, long count)
{
    enum { BATCH = 64 };
    aemp_msg_t *msg = aemp_msgf("si", "tag", 123);
    aemp_buf_t buf = AEMP_BUF_INIT;
    aemp_frame_reader_t r;
    aemp__frame_reader_init(&r, f, 16 * 1024 * 1024);
    long done = 0, bad = 0;
    double t0 = now();
    while (done < count) {
        long n = count - done < BATCH ? count - done : BATCH;
        for (long i = 0; i < n; i++)
            aemp__frame_encode(f, &buf, "port", 4, msg);
        aemp_frame_t fr;
        long got = 0;
        while (aemp__frame_next(&r, &buf, &fr) == 1) {
            int64_t v;
            if (fr.destlen != 4 || aemp_msg_len(fr.msg) != 2 || aemp_msg_int(fr.msg, 1, &v) ||
                v != 123)
                bad++;
            aemp_msg_unref(fr.msg);
            got++;
        }
        if (got != n)
            bad++;
        done += n;
    }
    double dt = now() - t0;
    aemp__frame_reader_free(&r);
    aemp__buf_free(&buf);
    aemp_msg_unref(msg);
    return bad ? -1 : (double)count / dt;
}

/* Decode `count` one-way frames in framing f from a buffer encoded
 * beforehand, READ_BYTES at a time; returns messages per second, or -1 if
 * a frame was not the one sent. */
static double run_decode(aemp_framing_t f, long count)
{
    aemp_buf_t wire = AEMP_BUF_INIT, in = AEMP_BUF_INIT;
    for (long i = 0; i < count; i++) {
        aemp_msg_t *m = aemp_msgf("sIs", "ping", (int64_t)i, PING_PAYLOAD);
        aemp__frame_encode(f, &wire, "srv#sink", 8, m);
        aemp_msg_unref(m);
    }
    size_t cap = READ_BYTES / 16 + 1;   /* a frame has more than 16 bytes */
    aemp_msg_t **held = malloc(cap * sizeof *held);
    if (!held)
        return -1;
    aemp_frame_reader_t r;
    aemp__frame_reader_init(&r, f, 16 * 1024 * 1024);
    long got = 0, bad = 0;
    double t0 = now();
    for (size_t at = 0; at < wire.len;) {
        size_t n = wire.len - at < READ_BYTES ? wire.len - at : READ_BYTES;
        aemp__buf_append(&in, wire.data + at, n);
        at += n;
        size_t nheld = 0;
        aemp_frame_t fr;
        while (aemp__frame_next(&r, &in, &fr) == 1) {
            int64_t v;
            if (fr.destlen != 8 || aemp_msg_len(fr.msg) != 3 || aemp_msg_int(fr.msg, 1, &v) ||
                v != got)
                bad++;
            got++;
            if (nheld < cap)
                held[nheld++] = fr.msg;
            else
                aemp_msg_unref(fr.msg);
        }
        for (size_t i = 0; i < nheld; i++)
            aemp_msg_unref(held[i]);
    }
    double dt = now() - t0;
    aemp__frame_reader_free(&r);
    aemp__buf_free(&wire);
    aemp__buf_free(&in);
    free(held);
    return bad || got != count ? -1 : (double)count / dt;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 1000000;
    if (count <= 0)
        count = 1000000;
    double j = run(AEMP_FRAMING_JSON, count);
    double c = run(AEMP_FRAMING_CBOR, count);
    double jd = run_decode(AEMP_FRAMING_JSON, count);
    double cd = run_decode(AEMP_FRAMING_CBOR, count);
    if (j < 0 || c < 0 || jd < 0 || cd < 0) {
        fprintf(stderr, "frame_bench: frames did not round-trip\n");
        return 1;
    }
    printf("RESULT frame_json_roundtrip %.0f msgs/s\n", j);
    printf("RESULT frame_cbor_roundtrip %.0f msgs/s\n", c);
    printf("RESULT frame_json_decode %.0f msgs/s\n", jd);
    printf("RESULT frame_cbor_decode %.0f msgs/s\n", cd);
    return 0;
}
