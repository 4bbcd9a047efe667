/* proto.h - sans-I/O core of the AEMP transport protocol (both dialects).
 *
 * One aemp_proto_t is one side of one connection: bytes the peer sent go into
 * aemp__proto_in(), aemp__proto_next() turns them into events, and bytes to
 * send accumulate in aemp__proto_out() (the greeting is there right after
 * aemp__proto_new).  No sockets, no clocks, no globals: the caller does I/O,
 * timeouts and TLS.
 *
 * Phases: greeting (two lines each way) -> [TLS] -> auth line each way ->
 * data (frames in the framing each side announced in its auth line).
 */
#ifndef AEMP_PROTO_H
#define AEMP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "frame.h"

/* Dialects of the Perl implementation a node is willing to speak. */
#define AEMP_DIALECT_130 1u   /* AnyEvent::MP 1.30: HMAC-MD6, JSON */
#define AEMP_DIALECT_202 2u   /* AnyEvent::MP 2.02: HMAC-SHA3-512, CBOR */
#define AEMP_DIALECT_BOTH (AEMP_DIALECT_130 | AEMP_DIALECT_202)

#define AEMP_PROTO_MAX_LINE 4096     /* handshake line limit incl. LF */
#define AEMP_PROTO_NONCE_BYTES 66
#define AEMP_PROTO_MAX_METHODS 8

typedef struct aemp_proto_cfg {
    const char *nodeid;               /* our node ID (required) */
    const uint8_t *secret;            /* shared secret, may be NULL */
    size_t secretlen;
    unsigned dialects;                /* AEMP_DIALECT_*; 0 = both */
    /* Method and framing lists; n == 0 selects the defaults for `dialects`. */
    aemp_auth_method_t auth_offer[AEMP_PROTO_MAX_METHODS];   /* we send */
    size_t n_offer;
    aemp_auth_method_t auth_accept[AEMP_PROTO_MAX_METHODS];  /* we accept (advertised) */
    size_t n_accept;
    aemp_framing_t framings[4];       /* we accept, in preference order */
    size_t n_framings;
    int have_cert;                    /* announce tls=1.0 */
    size_t max_frame;                 /* data-phase frame limit, 0 = unlimited */
    const char *peeraddr;             /* the peer's address as we see it, or NULL */
    /* For tests that replay captured sessions: use exactly this greeting
     * line 1 and nonce line instead of building them (NULL = build). */
    const char *line1_override;
    const char *nonce_override;
    /* Protocol extensions (spec §8.2, §8.3, §11.1).  protocol: the name we
     * greet with (NULL = "aemp"; e.g. "aemp-dataconn" when we connect for
     * an extension).  extensions: names an "aemp" side switches to when the
     * peer's line 1 names one of them (up to AEMP_PROTO_MAX_EXT, NULL
     * ends the list early); any other "aemp-<word>" is refused.  For an
     * extension the node-ID checks and the dialect check are skipped (it
     * carries no node protocol).  extra_key/extra_value: further KEY=VALUE
     * pairs of our line 1 (e.g. dataconn_id), values escaped as §8.2 says. */
    const char *protocol;
    const char *extensions[4];
    const char *extra_key[2], *extra_value[2];
    size_t n_extra;
} aemp_proto_cfg_t;

#define AEMP_PROTO_MAX_EXT 4

typedef enum aemp_proto_event {
    AEMP_PROTO_NEED_MORE = 0,   /* nothing more to do until more input */
    AEMP_PROTO_GREETING,        /* peer's line 1 parsed: aemp__proto_peer_node() is known;
                                   the caller may refuse with aemp__proto_fail() */
    AEMP_PROTO_START_TLS,       /* both announced TLS: switch the transport now;
                                   aemp__proto_tls_client() tells the role */
    AEMP_PROTO_AUTHED,          /* handshake complete; frames follow */
    AEMP_PROTO_FRAME,           /* *frame holds a decoded frame (see frame.h) */
    AEMP_PROTO_ERROR,           /* fatal; aemp__proto_error() says why */
} aemp_proto_event_t;

typedef struct aemp_proto aemp_proto_t;

/* Create one side of a connection; the greeting is queued in the out buffer.
 * The cfg is copied (strings too).  Returns NULL only on bad cfg. */
aemp_proto_t *aemp__proto_new(const aemp_proto_cfg_t *cfg);

/* Free everything. */
void aemp__proto_free(aemp_proto_t *p);

/* Input buffer: append bytes received from the peer (plaintext). */
aemp_buf_t *aemp__proto_in(aemp_proto_t *p);

/* Output buffer: bytes to send; the caller consumes what it wrote. */
aemp_buf_t *aemp__proto_out(aemp_proto_t *p);

/* Process input until one event happens.  Call repeatedly until it returns
 * AEMP_PROTO_NEED_MORE or AEMP_PROTO_ERROR (after which it keeps returning
 * ERROR).  For AEMP_PROTO_FRAME, *frame receives the frame: the caller owns
 * frame->msg; frame->dest is valid until the next call. */
aemp_proto_event_t aemp__proto_next(aemp_proto_t *p, aemp_frame_t *frame);

/* Call after AEMP_PROTO_START_TLS once the TLS session is up: the auth line
 * is queued (it must go out inside TLS). */
void aemp__proto_tls_ready(aemp_proto_t *p);

/* Refuse the connection with a printf-style reason (becomes the error). */
void aemp__proto_fail(aemp_proto_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queue one data frame [dest, msg...] (msg borrowed).  Only after AUTHED. */
void aemp__proto_send(aemp_proto_t *p, const char *dest, size_t destlen, const aemp_msg_t *msg);

/* Queue the frame [dest, elements of the flat format fmt] written straight
 * from the format (aemp__frame_encode_fmt; ap is left untouched): 0, or -1
 * with nothing queued if the format is not flat.  Only after AUTHED. */
int aemp__proto_send_fmt(aemp_proto_t *p, const char *dest, size_t destlen, const char *fmt, va_list ap);

/* Queue frames already encoded in our send framing (what
 * aemp__frame_encode with aemp__proto_send_framing(p) appended), as they
 * are: one encoding serves many connections.  Only after AUTHED. */
void aemp__proto_send_encoded(aemp_proto_t *p, const void *bytes, size_t len);

/* Accessors (valid once the corresponding phase is reached; NULL/0 before). */
const char *aemp__proto_error(const aemp_proto_t *p);
const char *aemp__proto_peer_node(const aemp_proto_t *p);      /* after GREETING */
const char *aemp__proto_peer_value(const aemp_proto_t *p, const char *key); /* greeting KEY=VALUE */
unsigned aemp__proto_peer_dialect(const aemp_proto_t *p);      /* AEMP_DIALECT_130 or _202 */
int aemp__proto_tls(const aemp_proto_t *p);                    /* TLS decided */
int aemp__proto_tls_client(const aemp_proto_t *p);             /* we are the TLS client */
aemp_auth_method_t aemp__proto_send_auth(const aemp_proto_t *p);
aemp_auth_method_t aemp__proto_recv_auth(const aemp_proto_t *p);
/* The method the peer's auth line named, also when it failed to verify
 * (AEMP_AUTH_NONE before the auth line or if it named none we know). */
aemp_auth_method_t aemp__proto_peer_method(const aemp_proto_t *p);
aemp_framing_t aemp__proto_send_framing(const aemp_proto_t *p);
aemp_framing_t aemp__proto_recv_framing(const aemp_proto_t *p);
const char *aemp__proto_line(const aemp_proto_t *p, int which); /* 0,1 ours; 2,3 peer's */
/* The protocol this side speaks: "aemp", or the extension it greeted with
 * or switched to at the peer's line 1 (then the caller hands the
 * connection to that extension's handler after AUTHED instead of reading
 * frames; any bytes still in the in buffer are the extension's). */
const char *aemp__proto_protocol(const aemp_proto_t *p);
/* The value of one of our own extra greeting pairs (cfg->extra_key), or NULL. */
const char *aemp__proto_own_value(const aemp_proto_t *p, const char *key);

#endif
