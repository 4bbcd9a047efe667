/* nodeid.c - the syntax of node IDs (see nodeid.h). */
#include "nodeid.h"

#include "msg.h"

#include <stdio.h>
#include <string.h>

int aemp__nodeid_check(const char *id, size_t len, char *why, size_t whylen)
{
    if (!len) {
        snprintf(why, whylen, "must not be empty");
        return -1;
    }
    if (len > AEMP_NODEID_MAX) {
        snprintf(why, whylen, "%zu bytes long, at most %d allowed", len, AEMP_NODEID_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '#' || c == ';' || c == ',') {
            snprintf(why, whylen, "must not contain '%c'", c);
            return -1;
        }
        if (c == '\n' || c == '\r') {
            snprintf(why, whylen, "must not contain %s", c == '\n' ? "a line feed" : "a carriage return");
            return -1;
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, whylen, "must not contain a control character (byte 0x%02x at offset %zu)", c, i);
            return -1;
        }
    }
    if (!aemp__utf8_valid((const unsigned char *)id, len)) {
        snprintf(why, whylen, "not valid UTF-8");
        return -1;
    }
    return 0;
}

void aemp__nodeid_escape(const char *id, size_t len, char *out, size_t outsize)
{
    size_t o = 0;
    if (!outsize)
        return;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
        if (o + need + 4 > outsize) {   /* room for "..." and the NUL */
            if (o + 4 <= outsize)
                memcpy(out + o, "...", 3), o += 3;
            break;
        }
        if (need == 1)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outsize - o, "\\x%02x", c);
    }
    out[o] = 0;
}
