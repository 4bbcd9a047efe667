/* evil.c - the module "Evil" (evil.so) for tests/test_kernel.c: loading it
 * is the event the secure-mode tests look for.  Its init function creates
 * the file named by $AEMP_EVIL_MARKER (when set) and registers "Evil::f",
 * which answers [PORT] with ["evil ran"]. */
#include "aemp_module.h"

#include <stdio.h>
#include <stdlib.h>

static void evil_f(aemp_msg_t *args, void *arg)
{
    const char *to = aemp_msg_str(args, 0, NULL);
    if (to)
        aemp_sndf(to, "s", "evil ran");
}

int aemp_module_init(const char *name)
{
    const char *marker = getenv("AEMP_EVIL_MARKER");
    if (marker) {
        FILE *f = fopen(marker, "w");
        if (f) {
            fputs(name, f);
            fclose(f);
        }
    }
    return aemp_func_register("Evil::f", evil_f, NULL);
}
