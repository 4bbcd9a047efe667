/* malloc_tune.c - aemp_tune_malloc (see aemp.h): glibc's malloc told to
 * keep freed blocks below MMAP_THRESHOLD in the heap. */
#include <aemp.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#define MMAP_THRESHOLD (1 << 20)          /* blocks below it come from the heap */
#define TRIM_THRESHOLD (2 * MMAP_THRESHOLD) /* free heap top kept (glibc's own ratio) */

int aemp_tune_malloc(void)
{
#ifdef __GLIBC__
    if (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
        return 0;
#endif
    return AEMP_EIO;
}
