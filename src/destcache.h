/* destcache.h - the remote port IDs a program sent to lately, each with
 * what resolving it found (the node layer's node object), so that sending
 * to the same remote port again and again does not split the ID, compare
 * its node part with ours and look the node up every time.
 *
 * A direct-mapped cache keyed by the address of the caller's ID string
 * and checked by its content: a hit needs the same address *and* the same
 * bytes (strcmp with the stored copy, which reads nothing past either
 * NUL), so a buffer that is reused for another ID misses.  It knows
 * nothing of nodes: the owner of the values clears it whenever one of them
 * stops being valid (a node object freed, the node ID changed).  One
 * thread (DESIGN.md). */
#ifndef AEMP_DESTCACHE_H
#define AEMP_DESTCACHE_H

#include <stddef.h>

/* IDs up to this many bytes are cached (longer ones always miss). */
#define AEMP_DESTCACHE_MAX_ID 55

/* The value stored for the ID at `id` (same address, same bytes), and in
 * *name and *namelen its port name (within `id`, after the first '#');
 * NULL if it is not cached. */
void *aemp__destcache_get(const char *id, const char **name, size_t *namelen);

/* Remember value for the ID at `id`: its node part of nodelen bytes, '#'
 * and a port name of namelen bytes (not empty); an ID longer than
 * AEMP_DESTCACHE_MAX_ID is not kept.  Replaces whatever was cached in its
 * slot. */
void aemp__destcache_put(const char *id, size_t nodelen, size_t namelen, void *value);

/* Forget everything (a value stopped being valid). */
void aemp__destcache_clear(void);

#endif
