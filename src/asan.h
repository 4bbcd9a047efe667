/* asan.h - marking memory kept for reuse as unusable under AddressSanitizer
 * (the message block cache in msg.c, the buffer cache in buf.c), so that a
 * use after it was given back is still reported; no-ops otherwise. */
#ifndef AEMP_ASAN_H
#define AEMP_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define AEMP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AEMP_ASAN 1
#endif
#endif

#ifdef AEMP_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
