/* module.h - loadable modules (module.c), function resolution along the
 * package chain, and the configured services (services.c).  The public
 * side is include/aemp_module.h. */
#ifndef AEMP_MODULE_INTERNAL_H
#define AEMP_MODULE_INTERNAL_H

#include "internal.h"

/* Set the search path of the "module_path" configuration key: an array of
 * directories or a colon-separated string (borrowed); NULL or anything else
 * clears it. */
void aemp__module_set_path(const json_t *path);

/* Make the function `func` exist by loading modules along its package
 * chain ("A::B::c": module "A::B", then "A"; missing modules are skipped).
 * Returns 0 if func is registered afterwards (or was already), else
 * AEMP_ENOFUNC with err = "unable to resolve function '<func>'", or
 * AEMP_EIO with err = the load error that stopped the search. */
int aemp__module_resolve(const char *func, char *err, size_t errlen);

/* 1 if func is registered right now (no loading); implemented in func.c. */
int aemp__func_registered(const char *func);

/* 0 if func is registered or could be loaded (aemp__module_resolve), else
 * its error. */
int aemp__func_resolve(const char *func, char *err, size_t errlen);

/* The node-port request AnyEvent::MP::_spawn: run func(args) (borrowed)
 * in the context of our port `name` right now, as AnyEvent::MP does.  The
 * port is not created for it: it comes to exist when the function calls
 * rcv on SELF (or exists already), so an init function that dies or cannot
 * be resolved before that leaves no port (a monitor gets no_such_port) and
 * is logged at level 1.  (Local aemp_spawn creates the port first:
 * aemp__spawn_local.)  Implemented in func.c. */
void aemp__spawn_request(const char *name, size_t len, const char *func, aemp_msg_t *args);

/* Start the services of a resolved configuration (borrowed): take the
 * "module_path" key, then for each entry of "services": "Pkg::" loads the
 * module Pkg, "Pkg::func" resolves and calls func with no arguments,
 * ["Pkg::func", args...] calls it with args.  Failures are logged at level
 * 1 and skipped: the node keeps running.  Called at the end of configure,
 * outside port context.  (services.c) */
void aemp__services_start(const json_t *cfg);

#endif
