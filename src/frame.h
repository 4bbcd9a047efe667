/* frame.h - message framings: JSON and CBOR.
 *
 * A frame is one array [dest-port-name, message elements...].  Encoding
 * appends to a byte buffer; decoding splits a byte stream into frames in
 * linear time (a frame may span many reads, one read may hold many frames)
 * and bounds the size of a frame.  No I/O.
 */
#ifndef AEMP_FRAME_H
#define AEMP_FRAME_H

#include <jansson.h>
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
 * combined array.  msg must be an array (borrowed).  Strings are written as
 * UTF-8 (JSON) or CBOR text strings.  Cost: O(size of msg). */
void aemp__frame_encode(aemp_framing_t f, aemp_buf_t *out,
                        const char *dest, size_t destlen, const json_t *msg);

/* Append any JSON value as one frame (used for [] keepalives and tests). */
void aemp__frame_encode_value(aemp_framing_t f, aemp_buf_t *out, const json_t *value);

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
} aemp_frame_reader_t;

/* Initialise a reader for framing f with a frame size limit in bytes
 * (0 = unlimited). */
void aemp__frame_reader_init(aemp_frame_reader_t *r, aemp_framing_t f, size_t max_frame);

/* Release the reader's memory. */
void aemp__frame_reader_free(aemp_frame_reader_t *r);

/* Take the next complete frame from the unconsumed bytes of `in`:
 *   returns 1 and stores a new reference to the decoded array in *frame
 *     (the caller owns it; its bytes are consumed from `in`);
 *   returns 0 if `in` holds no complete frame yet (scanning state is kept, so
 *     feeding more bytes and calling again costs only the new bytes);
 *   returns -1 on a malformed frame, a frame that is not an array, or a frame
 *     larger than max_frame; r->error then says what and the stream is
 *     unusable.
 * Whitespace between JSON texts is skipped.  CBOR byte strings and text
 * strings both decode to JSON strings. */
int aemp__frame_next(aemp_frame_reader_t *r, aemp_buf_t *in, json_t **frame);

#endif
