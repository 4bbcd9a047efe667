/* buf.h - growable byte buffer used by framing, protocol and I/O code.
 *
 * A buffer owns its storage.  Data lives in [data+off, data+len); consumers
 * advance `off` instead of moving bytes, and aemp__buf_compact() reclaims the
 * consumed prefix when it is worth it.  Allocation failure aborts the process
 * (as jansson's does not, but a message system that cannot allocate a few
 * bytes of buffer cannot keep any of its guarantees either).
 */
#ifndef AEMP_BUF_H
#define AEMP_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct aemp_buf {
    uint8_t *data;
    size_t off;   /* first unconsumed byte */
    size_t len;   /* end of valid data */
    size_t cap;   /* allocated size */
} aemp_buf_t;

#define AEMP_BUF_INIT { NULL, 0, 0, 0 }

/* Release the storage (small storage is kept for the next buffer that
 * starts: buf.c); the buffer is empty and reusable afterwards. */
void aemp__buf_free(aemp_buf_t *b);

/* Make room for at least `n` more bytes after len; returns the write pointer.
 * Cost: amortised O(1), may move the data. */
uint8_t *aemp__buf_reserve(aemp_buf_t *b, size_t n);

/* Append `n` bytes. */
void aemp__buf_append(aemp_buf_t *b, const void *p, size_t n);

/* Append one byte. */
static inline void aemp__buf_putc(aemp_buf_t *b, uint8_t c)
{
    if (b->len == b->cap)
        aemp__buf_reserve(b, 1);
    b->data[b->len++] = c;
}

/* Append a NUL-terminated string (without the NUL). */
void aemp__buf_puts(aemp_buf_t *b, const char *s);

/* Number of unconsumed bytes. */
static inline size_t aemp__buf_used(const aemp_buf_t *b) { return b->len - b->off; }

/* Pointer to the first unconsumed byte. */
static inline uint8_t *aemp__buf_head(const aemp_buf_t *b) { return b->data + b->off; }

/* Mark `n` bytes as consumed; resets to empty when everything is consumed. */
void aemp__buf_consume(aemp_buf_t *b, size_t n);

/* Move unconsumed bytes to the front of the storage. */
void aemp__buf_compact(aemp_buf_t *b);

/* Release the storage of an empty buffer that holds more than `keep`
 * bytes, so that one large message does not pin its size for good. */
void aemp__buf_trim(aemp_buf_t *b, size_t keep);

#endif
