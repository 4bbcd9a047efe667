/* kernel.h - the node-port request table (kernel.c): every request that
 * the node port "" handles by name, with the argument shape it accepts,
 * the dialects that send it and whether another node may send it to a
 * node in secure mode.  The kernel's own requests are built in; upper
 * modules (global.c) register theirs.  A tag in no table is a named
 * function (func.c).
 *
 * Argument shapes: one code per element after the tag, in order:
 *   s  a string (text or byte string)
 *   n  a name: a non-empty string without NUL bytes (node ID, function)
 *   p  a port name: a name without '#'
 *   P  a port ID ("node#name", or a node ID for its node port): a name
 *      not starting with '#'
 *   i  an integer
 *   a  an array                    A  an array or null
 *   m  a map                       M  a map or null
 *   r  a relay: an array whose element 0 is a port ID (as P)
 *   v  any value
 * A code followed by '?' may be missing, and so may every one after it; a
 * code followed by '*' (the last one) stands for any number of elements,
 * none included.  A final '>' is a reply specification: nothing, or a
 * port ID (as P) followed by any values that the reply starts with.  More
 * elements than the shape has room for make the request malformed.  The
 * reply port of a request from another node must be on our node or on a
 * node in the node table: a request cannot make us reach out to made-up
 * nodes (a relay, snd, can: that is what it is for).
 *
 * `labels` names the elements for log lines, comma-separated, one per
 * code ("port name,reason"); the reply port needs none.
 */
#ifndef AEMP_KERNEL_H
#define AEMP_KERNEL_H

#include "internal.h"

/* May another node send the request to a node in secure mode? */
enum aemp_req_secure {
    AEMP_REQ_REFUSED = 0,    /* no: logged and ignored */
    AEMP_REQ_ALLOWED,        /* yes: part of the node protocol */
    AEMP_REQ_PROTOCOL_ONLY,  /* only if the function it names is part of the protocol */
};

struct aemp_kreq;   /* one request being handled (kernel.c) */

typedef struct aemp_request {
    const char *name;
    const char *shape;
    const char *labels;
    unsigned dialects;            /* AEMP_DIALECT_* (proto.h) whose peers send it */
    enum aemp_req_secure secure;
    /* the handler: fn (upper modules) gets the arguments after the tag,
     * borrowed, with aemp_srcnode() the sender; builtin is the kernel's */
    aemp_func_fn fn;
    void (*builtin)(struct aemp_kreq *r);
} aemp_request_t;

/* Add n requests (static storage, kept) to the table, replacing entries
 * of the same name registered before; the built-in requests cannot be
 * replaced (a caller bug).  Process-wide: the table survives
 * aemp_shutdown, as the function registry does. */
void aemp__kernel_register(const aemp_request_t *reqs, size_t n);

#endif
