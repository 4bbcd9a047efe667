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
 * and decodes database updates ["", "g_chg2", "scale", {port ID: null
 * ...}, []] of 4, 64 and 4096 keys, each as encoded (straight into its
 * message, by levels) and with a tag on the whole frame (which takes the
 * decoder's general way, through the builder), in the same run:
 *   RESULT frame_cbor_nested_<k> <n> keys/s
 *   RESULT frame_cbor_nested_builder_<k> <n> keys/s
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

/* Decode frames ["", "g_chg2", "scale", {key: null ...}, []] of `keys`
 * port IDs, `tagged`: with a tag on the whole frame, for about `total`
 * keys in all, from buffers of about 1 MiB; returns keys per second, or
 * -1 if a frame did not come out whole. */
static double run_nested(int keys, int tagged, long total)
{
    aemp_build_t *b = aemp_build_new();
    char key[40];
    aemp_build_str(b, "g_chg2");
    aemp_build_str(b, "scale");
    aemp_build_map(b);
    for (int i = 0; i < keys; i++) {
        snprintf(key, sizeof key, "w%d#Ab3xYz9Qa%d", i, i);
        aemp_build_str(b, key);
        aemp_build_null(b);
    }
    aemp_build_close(b);
    aemp_build_array(b);
    aemp_build_close(b);
    aemp_msg_t *m = aemp_build_msg(b);
    aemp_buf_t one = AEMP_BUF_INIT, wire = AEMP_BUF_INIT;
    if (tagged)
        aemp__buf_append(&one, "\xd9\xd9\xf7", 3);   /* self-described CBOR */
    aemp__frame_encode(AEMP_FRAMING_CBOR, &one, "", 0, m);
    long per = (long)((1 << 20) / one.len) + 1;
    for (long i = 0; i < per; i++)
        aemp__buf_append(&wire, one.data, one.len);
    aemp_frame_reader_t r;
    aemp__frame_reader_init(&r, AEMP_FRAMING_CBOR, 16 * 1024 * 1024);
    long frames = 0, bad = 0, want = total / keys + 1;
    double t0 = now();
    while (frames < want) {
        aemp_buf_t in = AEMP_BUF_INIT;
        aemp__buf_append(&in, wire.data, wire.len);
        aemp_frame_t fr;
        while (aemp__frame_next(&r, &in, &fr) == 1) {
            bad += aemp_val_len(aemp_msg_at(fr.msg, 2)) != (size_t)keys;
            aemp_msg_unref(fr.msg);
            frames++;
        }
        bad += aemp__buf_used(&in) != 0;
        aemp__buf_free(&in);
    }
    double dt = now() - t0;
    aemp__frame_reader_free(&r);
    aemp__buf_free(&one);
    aemp__buf_free(&wire);
    aemp_msg_unref(m);
    return bad ? -1 : (double)frames * keys / dt;
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
    static const int sizes[] = { 4, 64, 4096 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        double lv = run_nested(sizes[i], 0, 4 * count), bl = run_nested(sizes[i], 1, 4 * count);
        if (lv < 0 || bl < 0) {
            fprintf(stderr, "frame_bench: nested frames did not decode whole\n");
            return 1;
        }
        printf("RESULT frame_cbor_nested_%d %.0f keys/s\n", sizes[i], lv);
        printf("RESULT frame_cbor_nested_builder_%d %.0f keys/s\n", sizes[i], bl);
    }
    return 0;
}
