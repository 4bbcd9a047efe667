/* random.h - random bytes and identifiers from the kernel's generator
 * (getrandom: no user-space generator to seed, nothing to initialise). */
#ifndef AEMP_RANDOM_H
#define AEMP_RANDOM_H

#include <stddef.h>

/* The base-62 alphabet in the order AnyEvent::MP uses: 0-9, A-Z, a-z. */
extern const char aemp__base62[63];

/* Fill out with n random bytes.  Returns 0, or -1 if the kernel's
 * generator fails (errno set). */
int aemp__random_bytes(void *out, size_t n);

/* Write n uniformly random base-62 characters (0-9, A-Z, a-z) and a NUL
 * into out.  Returns 0, or -1 if the generator fails. */
int aemp__random_base62(char *out, size_t n);

#endif
