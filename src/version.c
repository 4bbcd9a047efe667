/* version.c - the library's version at run time (aemp_version). */
#include "aemp.h"

#ifndef AEMP_LIB_VERSION
#define AEMP_LIB_VERSION AEMP_VERSION
#endif

/* The version the library was built as; compare with AEMP_VERSION, the
 * version of the header a program was compiled with. */
const char *aemp_version(void)
{
    return AEMP_LIB_VERSION;
}
