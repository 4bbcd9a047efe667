/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include "asan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The storage of freed small buffers (256, 512 and 1024 bytes, the sizes a
 * buffer starts with) is kept, up to BUF_CACHE_DEPTH of each size (28 KiB
 * in all), for the next buffer that starts: a connection releases its
 * buffers whenever they drain (so that thousands of idle connections hold
 * none), and a ping-pong would otherwise go to malloc and free for every
 * message.  Under AddressSanitizer kept storage is poisoned.  (One thread:
 * see DESIGN.md.) */
#define BUF_FIRST 256
#define BUF_CACHE_CLASSES 3
#define BUF_CACHE_DEPTH 16
static uint8_t *buf_cache[BUF_CACHE_CLASSES][BUF_CACHE_DEPTH];
static unsigned buf_cached[BUF_CACHE_CLASSES];

/* The cache class of storage of cap bytes, or -1. */
static int cache_class(size_t cap)
{
    for (int k = 0; k < BUF_CACHE_CLASSES; k++)
        if (cap == (size_t)BUF_FIRST << k)
            return k;
    return -1;
}

void aemp__buf_free(aemp_buf_t *b)
{
    int k = b->data ? cache_class(b->cap) : -1;
    if (k >= 0 && buf_cached[k] < BUF_CACHE_DEPTH) {
        POISON(b->data, b->cap);
        buf_cache[k][buf_cached[k]++] = b->data;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

uint8_t *aemp__buf_reserve(aemp_buf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return b->data + b->len;
    /* reuse the consumed prefix before growing */
    if (b->off && b->cap - (b->len - b->off) >= n && b->off >= b->len / 2) {
        aemp__buf_compact(b);
        return b->data + b->len;
    }
    size_t need = b->len + n;
    size_t cap = b->cap ? b->cap : BUF_FIRST;
    while (cap < need)
        cap *= 2;
    int k = b->data ? -1 : cache_class(cap);
    uint8_t *p;
    if (k >= 0 && buf_cached[k]) {
        p = buf_cache[k][--buf_cached[k]];
        UNPOISON(p, cap);
    } else {
        p = realloc(b->data, cap);
    }
    if (!p) {
        fprintf(stderr, "aemp: out of memory (buffer of %zu bytes)\n", cap);
        abort();
    }
    b->data = p;
    b->cap = cap;
    return b->data + b->len;
}

void aemp__buf_append(aemp_buf_t *b, const void *p, size_t n)
{
    if (!n)
        return;
    memcpy(aemp__buf_reserve(b, n), p, n);
    b->len += n;
}

void aemp__buf_puts(aemp_buf_t *b, const char *s)
{
    aemp__buf_append(b, s, strlen(s));
}

void aemp__buf_consume(aemp_buf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void aemp__buf_compact(aemp_buf_t *b)
{
    if (!b->off)
        return;
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

void aemp__buf_trim(aemp_buf_t *b, size_t keep)
{
    if (b->cap > keep && !aemp__buf_used(b))
        aemp__buf_free(b);
}
