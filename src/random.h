/* random.h - random identifiers from OpenSSL's generator. */
#ifndef AEMP_RANDOM_H
#define AEMP_RANDOM_H

#include <stddef.h>

/* The base-62 alphabet in the order AnyEvent::MP uses: 0-9, A-Z, a-z. */
extern const char aemp__base62[63];

/* Write n uniformly random base-62 characters (0-9, A-Z, a-z) and a NUL
 * into out.  Returns 0, or -1 if OpenSSL's RAND_bytes fails. */
int aemp__random_base62(char *out, size_t n);

#endif
