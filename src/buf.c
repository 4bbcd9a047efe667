/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aemp__buf_free(aemp_buf_t *b)
{
    free(b->data);
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
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
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
