/* aemp_module.h - loadable modules for libaemp nodes (see docs/api.md,
 * "Modules and services").
 *
 * A module is a shared object that registers named functions (and may start
 * a service: create ports, timers, ...) when it is loaded.  It is the C
 * counterpart of a Perl package that AnyEvent::MP `require`s on demand.
 *
 * Module name -> files: the package name, lower-cased, with every "::"
 * replaced by "_", plus ".so" ("My::Chat::Server" -> "my_chat_server.so"),
 * or Perl's layout, the name as written with every "::" a directory
 * ("mymod::chatserver" -> "mymod/chatserver.so").  Only names made of
 * [A-Za-z0-9_] components separated by "::" are valid.
 *
 * Search path, first match wins (in each directory the flat name, then the
 * layout): the directories in $AEMP_MODULE_PATH (colon-separated, read at
 * each load), then those of the configuration key "module_path" (an array
 * of directories or a colon-separated string), then the current
 * directory, then the built-in directory <libdir>/aemp/modules.  A miss
 * names every file and directory it tried.
 *
 * A module is opened with dlopen(RTLD_NOW | RTLD_LOCAL) once per process;
 * then its entry point aemp_module_init is called.  A module does NOT link
 * libaemp: the aemp_* symbols come from the program that loads it (a
 * program linked with the static library must export its symbols, e.g.
 * -rdynamic and the whole archive; CMake: aemp_module_host()).
 *
 * Loading on demand: when a function "A::B::c" is needed (spawn, a
 * node-port request, a service) and is not registered, the modules "A::B"
 * then "A" are loaded in turn until the function exists, as Perl's
 * load_func does.  A module that is not found is skipped; any other load
 * error (dlopen error, missing entry point, init failure) ends the search
 * and becomes the error (for spawn: the kill reason ("die", <error>)); when
 * the names run out the error is "unable to resolve function 'A::B::c': "
 * and what was tried where.
 * A failed module stays failed for the life of the process (Perl: "attempt
 * to reload ... aborted"); a missing module is looked for again next time.
 */
#ifndef AEMP_MODULE_H
#define AEMP_MODULE_H

#include "aemp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The name of the entry point every module defines. */
#define AEMP_MODULE_INIT_SYMBOL "aemp_module_init"

/* Defined by each module, not by the library.  Called once per process,
 * right after the module is opened, outside port context, with the module
 * name as loaded (e.g. "My::Chat::Server").  Register functions with
 * aemp_func_register here, and start the module's service if it has one.
 * Return 0 on success; any other value fails the load with the error
 * "module '<name>': aemp_module_init returned <value>" (the module stays
 * mapped: what it registered before failing remains). */
int aemp_module_init(const char *module_name);

/* Load the module `name` (a package name, "My::Mod") unless it is loaded
 * already (then 0 at once), like Perl's require.  Runs its init function
 * inside this call.  Cost: a few stat calls along the search path, dlopen.
 * Errors (err, if not NULL, receives a one-line message): AEMP_EINVAL (not
 * a valid module name), AEMP_ENOENT (no file for it on the search path;
 * err names the files and directories tried),
 * AEMP_EIO (dlopen failed, no entry point, init returned non-zero, or the
 * module failed to load earlier in this process). */
int aemp_module_load(const char *name, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
