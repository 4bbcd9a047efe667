/* random.c - random bytes and identifiers (see random.h). */
#include "random.h"

#include <errno.h>
#include <sys/random.h>

const char aemp__base62[63] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int aemp__random_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int aemp__random_base62(char *out, size_t n)
{
    unsigned char rnd[64];
    size_t done = 0;
    while (done < n) {
        if (aemp__random_bytes(rnd, sizeof rnd) < 0)
            return -1;
        for (size_t i = 0; i < sizeof rnd && done < n; i++) {
            if (rnd[i] >= 248)   /* rejection sampling keeps it uniform: 248 = 4 * 62 */
                continue;
            out[done++] = aemp__base62[rnd[i] % 62];
        }
    }
    out[n] = 0;
    return 0;
}
