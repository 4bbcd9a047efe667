/* random.c - random identifiers (see random.h). */
#include "random.h"

#include <openssl/rand.h>

const char aemp__base62[63] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int aemp__random_base62(char *out, size_t n)
{
    unsigned char rnd[64];
    size_t done = 0;
    while (done < n) {
        if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
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
