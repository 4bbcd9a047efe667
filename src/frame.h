/* frame.h - message framings: JSON and CBOR.
 *
 * A frame is one array [dest-port-name, message elements...].  Encoding
 * appends to a byte buffer; decoding splits a byte stream into frames in
 * linear time (a frame may span many reads, one read may hold many frames)
 * and bounds the size of a frame.  No I/O.
 */
#ifndef AEMP_FRAME_H
#define AEMP_FRAME_H

#include "msg.h"
#include <stdarg.h>
#include <stddef.h>

#include "buf.h"

typedef enum aemp_framing {
    AEMP_FRAMING_NONE = 0,
    AEMP_FRAMING_JSON,
    AEMP_FRAMING_CBOR,
} aemp_framing_t;

/* Wire name ("json", "cbor"); NULL for NONE. */
const char *aemp__framing_name(aemp_framing_t f);

/* Parse a wire name of len bytes; AEMP_FRAMING_NONE if unknown (e.g. "storable"). */
aemp_framing_t aemp__framing_parse(const char *name, size_t len);

/* Append the frame [dest, msg[0], msg[1], ...] to out without building the
 * combined array.  msg's root must be an array (borrowed; NULL or another
 * root counts as no elements); dest is written as a text string.  CBOR
 * keeps text and byte strings apart and writes integers of the whole
 * uint64 range; JSON writes byte strings as Perl does (each byte as the
 * character of that code point, UTF-8 encoded), text that is not valid
 * UTF-8 likewise, and non-finite doubles as null.  Cost: O(size of msg),
 * no allocation beyond the buffer's growth. */
void aemp__frame_encode(aemp_framing_t f, aemp_buf_t *out,
                        const char *dest, size_t destlen, const aemp_msg_t *msg);

/* aemp__frame_encode of the message aemp_msgf(fmt, ...) would build, for a
 * flat format (aemp__flat_next: scalars and strings, at most
 * AEMP_FLAT_MAX), written straight from the format and its arguments (a
 * copy of ap; ap is left untouched) without laying the message out: the
 * same bytes.  0, or -1 with nothing appended if the format is not flat
 * (the caller builds the message). */
int aemp__frame_encode_fmt(aemp_framing_t f, aemp_buf_t *out, const char *dest, size_t destlen,
                           const char *fmt, va_list ap);

/* Append any value (borrowed; NULL = null) as one frame (used for
 * keepalives and tests). */
void aemp__frame_encode_value(aemp_framing_t f, aemp_buf_t *out, const aemp_val_t *value);

/* One decoded frame [dest, elements...]. */
typedef struct aemp_frame {
    const char *dest;          /* element 0 (text or byte string), NUL-terminated;
                                  NULL for [] or a non-string element 0;
                                  owned by the reader, valid until its next call */
    size_t destlen;
    int empty;                 /* the frame was [] (a keepalive) */
    aemp_msg_t *msg;           /* elements 1.. as the root array (caller owns;
                                  for [] the shared empty message); NULL
                                  unless aemp__frame_next returned 1 */
} aemp_frame_t;

/* Stream splitter/decoder state.  Embed it; initialise with _init. */
typedef struct aemp_frame_reader {
    aemp_framing_t framing;
    size_t max_frame;          /* bytes; 0 = unlimited */
    size_t scan;               /* bytes of the current frame already scanned */
    /* scanner state, private to frame.c */
    int depth;                 /* JSON: open brackets/braces in the current frame */
    int in_string;             /* JSON: inside a string literal */
    int escape;                /* JSON: last byte was a backslash inside a string;
                                  CBOR: a tag waits for its content item */
    int started;               /* the current frame's first byte has been seen */
    int failed;                /* an error was reported; the reader is unusable */
    uint64_t skip;             /* CBOR: string payload bytes still to skip */
    size_t stack_len;
    size_t stack_cap;
    uint64_t *stack;           /* CBOR: items still expected per open container */
    char error[160];           /* set when aemp__frame_next returns -1 */
    aemp_build_t *build;       /* decoder's builder while a frame is decoded
                                  (from msg.c's cache, given back after it) */
    unsigned long built;       /* frames decoded through a builder (not flat) */
    char *dest;                /* element 0 of the last frame (grown as
                                  needed, shrunk again after a long one) */
    size_t destcap;            /* bytes allocated at dest */
    size_t flat_heap;          /* CBOR: heap bytes of the last flat message
                                  (the guess for the next one) */
} aemp_frame_reader_t;

/* Initialise a reader for framing f with a frame size limit in bytes
 * (0 = unlimited). */
void aemp__frame_reader_init(aemp_frame_reader_t *r, aemp_framing_t f, size_t max_frame);

/* Release the reader's memory. */
void aemp__frame_reader_free(aemp_frame_reader_t *r);

/* Take the next complete frame from the unconsumed bytes of `in`:
 *   returns 1 and fills *frame (the caller owns frame->msg; its bytes are
 *     consumed from `in`; a frame whose element 0 is no string is decoded
 *     all the same, with frame->dest NULL);
 *   returns 0 if `in` holds no complete frame yet (scanning state is kept, so
 *     feeding more bytes and calling again costs only the new bytes);
 *   returns -1 on a malformed frame, a frame that is not an array, a frame
 *     larger than max_frame or nested deeper than AEMP_MSG_MAX_DEPTH (the
 *     frame's array counted); r->error then says what and the stream is
 *     unusable.
 * Both framings decode to the same values under the same limits, so every
 * accepted frame can be encoded in either framing: JSON integers beyond the
 * 64-bit ranges become doubles (as JSON::XS does), CBOR byte strings stay
 * bytes, CBOR integer map keys become their decimal text, tags are skipped
 * (their content is decoded), undefined becomes null.  Whitespace between
 * JSON texts is skipped.  Errors say what and at which byte of the frame.
 * Cost: linear in the frame; in steady state the only allocation is the
 * message. */
int aemp__frame_next(aemp_frame_reader_t *r, aemp_buf_t *in, aemp_frame_t *frame);

#endif
