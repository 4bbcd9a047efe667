/* nodeid.h - the syntax of node IDs, ours and our peers' (pure: no I/O, no
 * globals), so that the configuration and the handshake apply one rule.
 */
#ifndef AEMP_NODEID_H
#define AEMP_NODEID_H

#include <stddef.h>

/* Longest node ID in bytes, ours or a peer's. */
#define AEMP_NODEID_MAX 1024

/* Check a node ID: non-empty, at most AEMP_NODEID_MAX bytes, valid UTF-8,
 * none of '#' (the port separator), ';' and ',' (greeting and list
 * separators), no control characters (below U+0020 and U+007F).  Returns 0,
 * or -1 with what is wrong written to why ("must not contain '#'"). */
int aemp__nodeid_check(const char *id, size_t len, char *why, size_t whylen);

/* Write id[0..len) to out (outsize bytes, NUL-terminated, cut short if
 * needed) with every byte outside printable ASCII as \xNN, for log lines
 * about IDs that failed the check. */
void aemp__nodeid_escape(const char *id, size_t len, char *out, size_t outsize);

#endif
