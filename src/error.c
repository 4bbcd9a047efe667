/* error.c - texts of the AEMP_E* codes. */
#include "aemp.h"

const char *aemp_strerror(int err)
{
    switch (err) {
    case AEMP_OK: return "success";
    case AEMP_EINVAL: return "invalid argument";
    case AEMP_EPORTID: return "malformed port or node ID";
    case AEMP_ENOTLOCAL: return "port is not on this node";
    case AEMP_ENOPORT: return "no such port";
    case AEMP_ENODEPORT: return "operation not allowed on the node port";
    case AEMP_ENOSELF: return "no port context (SELF is not set)";
    case AEMP_ENOENT: return "no such handle (already fired or cancelled)";
    case AEMP_ECONFIG: return "bad configuration";
    case AEMP_EAGAIN: return "already done";
    case AEMP_ENOFUNC: return "no function registered under that name";
    case AEMP_EIO: return "system error";
    case AEMP_ETIMEDOUT: return "timed out";
    case AEMP_ECANCELED: return "cancelled: the port died";
    case AEMP_ENOFIBER: return "not in a fiber with a message queue";
    case AEMP_ETYPE: return "message value has another type";
    case AEMP_ERANGE: return "no such element, or number out of range";
    case AEMP_ELIMIT: return "message beyond the limits (depth or size)";
    }
    return "unknown error";
}
