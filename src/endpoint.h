/* endpoint.h - "host:port" endpoints of binds and seeds.
 *
 * Syntax of one endpoint (see docs/configuration.md):
 *   ""  or  "4040"           the host name (uname -n), port 0 / 4040
 *   "host:port"  "host"      port missing, empty or "*" => 0 (ephemeral)
 *   "[v6addr]:port"  "[v6addr]"  "v6addr" (bare, without a port)
 *   "*:port"                 every local interface address
 * A list element may hold several endpoints separated by commas.
 *
 * Failing functions return 0 or -1 and put a one-line message into the
 * caller's err[errlen] buffer (err may be NULL).
 */
#ifndef AEMP_ENDPOINT_H
#define AEMP_ENDPOINT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest host part accepted (DNS names are at most 253 characters). */
#define AEMP_ENDPOINT_HOSTMAX 256

/* Room for any formatted "ip:port" / "[v6]:port" string with its NUL. */
#define AEMP_ENDPOINT_STRMAX 64

typedef struct aemp_endpoint {
    char host[AEMP_ENDPOINT_HOSTMAX]; /* name, IPv4/IPv6 literal (no brackets) or "*" */
    uint16_t port;                    /* 0 = ephemeral */
} aemp_endpoint_t;

/* Flags of aemp__endpoint_resolve(). */
enum {
    /* Skip names that do not resolve instead of failing; the message of the
     * first one skipped is still left in err (err[0] == 0 if none). */
    AEMP_ENDPOINT_SKIP_UNRESOLVED = 1,
};

/* Parse ONE endpoint (no commas) into *ep.  Blanks around it are ignored.
 * An empty or all-digit string means the host name (uname -n).  No name
 * lookups.  Errors: "bad endpoint 'x:y:z': <why>" for malformed input
 * (several ':' without brackets, bad characters, empty host, port not a
 * number or above 65535, unbalanced brackets, host too long). */
int aemp__endpoint_parse(const char *s, aemp_endpoint_t *ep, char *err, size_t errlen);

/* Resolve a list of endpoint strings (a JSON array of strings, or one
 * string; borrowed) into a new JSON array of "ip:port" / "[v6]:port"
 * strings in *out.  Each element may hold comma-separated endpoints (empty
 * parts of such a list are skipped; an element that is entirely empty means
 * the host name).  Order: list order, then resolver order within one
 * endpoint; later duplicates are dropped.
 * Host "*" expands to every local interface address: IPv4 addresses except
 * 127/8, then IPv6 global unicast (first byte 0x20-0x3f) and ULA (fc/fd)
 * addresses.  If the machine has none of those (e.g. a network namespace
 * with only loopback), "*" gives 127.0.0.1 instead, so a node still gets a
 * listener.  Other names go through getaddrinfo (TCP; this BLOCKS while DNS
 * answers).
 * Errors: bad list or element type; a malformed endpoint; a name that does
 * not resolve ("cannot resolve 'host': <why>") unless
 * AEMP_ENDPOINT_SKIP_UNRESOLVED; getifaddrs failure. */
int aemp__endpoint_resolve(const json_t *list, unsigned flags, json_t **out, char *err,
                           size_t errlen);

/* Fill *ss / *len from a numeric "ip:port" or "[v6]:port" string (as
 * produced by aemp__endpoint_resolve) for connect() or bind().  No name
 * lookups.  Errors: malformed endpoint; host not a numeric IP address. */
int aemp__endpoint_sockaddr(const char *ipport, struct sockaddr_storage *ss, socklen_t *len,
                            char *err, size_t errlen);

/* Format an AF_INET / AF_INET6 socket address as "ip:port" / "[v6]:port"
 * into out (n >= AEMP_ENDPOINT_STRMAX is always enough).
 * Errors: other address families, buffer too small. */
int aemp__endpoint_format(const struct sockaddr *sa, char *out, size_t n, char *err,
                          size_t errlen);

#endif
