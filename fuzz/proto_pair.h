/* proto_pair.h - driving proto objects (src/proto.c) in memory, for the
 * fuzz targets fuzz_proto.c and fuzz_auth.c: a configuration from a few
 * control bits, moving bytes from one side to the other, and running one
 * side until it needs input, recording what it reported.
 *
 * "TLS" is a pass-through here: START_TLS is answered with tls_ready at
 * once and the bytes stay plaintext, which is what proto.c sees after a
 * real TLS layer anyway.
 *
 * Everything is static: include it into one program.
 */
#ifndef AEMP_PROTO_PAIR_H
#define AEMP_PROTO_PAIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame_check.h"
#include "proto.h"

/* The shared secret of the in-memory pairs. */
#define PP_SECRET "fuzz-shared-secret"

/* Dialect setting from two control bits: default (both), 1.30, 2.02, both. */
static unsigned pp_dialects(unsigned bits)
{
    static const unsigned d[4] = { 0, AEMP_DIALECT_130, AEMP_DIALECT_202, AEMP_DIALECT_BOTH };
    return d[bits & 3];
}

/* A configuration (strings borrowed, must outlive aemp__proto_new). */
static aemp_proto_cfg_t pp_cfg(const char *nodeid, const char *secret, unsigned dialects,
                               int cert, size_t max_frame)
{
    aemp_proto_cfg_t c;
    memset(&c, 0, sizeof c);
    c.nodeid = nodeid;
    c.secret = (const uint8_t *)secret;
    c.secretlen = secret ? strlen(secret) : 0;
    c.dialects = dialects;
    c.have_cert = cert;
    c.max_frame = max_frame;
    return c;
}

/* Move up to `chunk` bytes (0 = all) of from's output into to's input;
 * returns how many. */
static size_t pp_move(aemp_proto_t *from, aemp_proto_t *to, size_t chunk)
{
    aemp_buf_t *o = aemp__proto_out(from);
    size_t n = aemp__buf_used(o);
    if (chunk && n > chunk)
        n = chunk;
    if (n) {
        aemp__buf_append(aemp__proto_in(to), aemp__buf_head(o), n);
        aemp__buf_consume(o, n);
    }
    return n;
}

/* Abort with a message about a violated expectation of proto.c. */
static void pp_violation(const char *what, const aemp_proto_t *p)
{
    fprintf(stderr, "proto property violated: %s (error: %s)\n", what,
            aemp__proto_error(p) ? aemp__proto_error(p) : "-");
    abort();
}

/* What pp_run saw of one side. */
typedef struct pp_seen {
    int greeting, authed, error, frames;
} pp_seen_t;

/* Run p until it needs input or has failed; returns the last event
 * (NEED_MORE or ERROR).  Checks the event contract: a frame's message is
 * set exactly for FRAME and satisfies the frame round-trip property
 * (frame_check.h), the peer node is known from GREETING on, an error has a
 * reason and stays.  If trace is not NULL, every event is appended to it
 * with what it carries (frames as their CBOR encoding), so that two runs
 * can be compared byte for byte. */
static aemp_proto_event_t pp_run(aemp_proto_t *p, pp_seen_t *seen, aemp_buf_t *trace)
{
    for (;;) {
        aemp_frame_t f;
        aemp_proto_event_t ev = aemp__proto_next(p, &f);
        if ((ev == AEMP_PROTO_FRAME) != (f.msg != NULL))
            pp_violation("a message comes with FRAME and only with FRAME", p);
        if (trace && ev != AEMP_PROTO_NEED_MORE)   /* how often depends on the pieces */
            aemp__buf_putc(trace, (uint8_t)ev);
        switch (ev) {
        case AEMP_PROTO_NEED_MORE:
            return ev;
        case AEMP_PROTO_ERROR: {
            const char *e = aemp__proto_error(p);
            if (!e || !*e)
                pp_violation("an error has a reason", p);
            if (aemp__proto_next(p, NULL) != AEMP_PROTO_ERROR || aemp__proto_error(p) != e)
                pp_violation("an error is sticky", p);
            if (trace)
                aemp__buf_puts(trace, e);
            seen->error++;
            return ev;
        }
        case AEMP_PROTO_GREETING:
            if (!aemp__proto_peer_node(p) || seen->greeting++)
                pp_violation("one GREETING, with the peer's node ID", p);
            if (trace) {
                aemp__buf_puts(trace, aemp__proto_peer_node(p));
                aemp__buf_putc(trace, 0);
            }
            break;
        case AEMP_PROTO_START_TLS:
            if (!aemp__proto_tls(p))
                pp_violation("START_TLS only when TLS was decided", p);
            aemp__proto_tls_ready(p);
            break;
        case AEMP_PROTO_AUTHED:
            if (!seen->greeting || seen->authed++)
                pp_violation("one AUTHED, after GREETING", p);
            if (trace) {
                aemp__buf_putc(trace, (uint8_t)aemp__proto_send_auth(p));
                aemp__buf_putc(trace, (uint8_t)aemp__proto_recv_auth(p));
                aemp__buf_putc(trace, (uint8_t)aemp__proto_send_framing(p));
                aemp__buf_putc(trace, (uint8_t)aemp__proto_recv_framing(p));
            }
            break;
        case AEMP_PROTO_FRAME:
            if (!seen->authed)
                pp_violation("frames only after AUTHED", p);
            seen->frames++;
            fc_check_frame(&f);
            if (trace) {
                aemp__buf_putc(trace, (uint8_t)f.empty);
                aemp__buf_append(trace, &f.destlen, sizeof f.destlen);
                if (f.dest)
                    aemp__buf_append(trace, f.dest, f.destlen);
                aemp__frame_encode_value(AEMP_FRAMING_CBOR, trace, aemp_msg_root(f.msg));
            }
            aemp_msg_unref(f.msg);
            break;
        }
    }
}

#endif
