/* services.c - the "services" configuration key: what a node starts at the
 * end of aemp_configure (spec §2.4 step 6).  Unlike AnyEvent::MP, whose
 * configure dies when a service fails, a failing service is logged at
 * level 1 and the node keeps running without it. */
#include "module.h"

#include "aemp_module.h"

#include <stdlib.h>
#include <string.h>

/* Resolve func (loading modules as needed) and call it with args
 * (borrowed), outside port context. */
static void call_service(const char *func, json_t *args)
{
    char err[1024];
    if (aemp__func_resolve(func, err, sizeof err) < 0) {
        aemp_log(AEMP_LOG_ERROR, "service '%s' not started: %s", func, err);
        return;
    }
    aemp_log(AEMP_LOG_INFO, "starting service '%s'", func);
    aemp__func_call(func, args);
}

/* Load the module of a "Pkg::" entry. */
static void load_service(const char *spec)
{
    size_t n = strlen(spec) - 2;
    char *name = strndup(spec, n);
    if (!name)
        abort();
    char err[1024];
    if (aemp_module_load(name, err, sizeof err) < 0)
        aemp_log(AEMP_LOG_ERROR, "service '%s' not started: %s", spec, err);
    else
        aemp_log(AEMP_LOG_INFO, "service '%s' loaded", spec);
    free(name);
}

void aemp__services_start(const json_t *cfg)
{
    aemp__module_set_path(json_object_get(cfg, "module_path"));
    json_t *services = json_object_get(cfg, "services");
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s) {
        if (json_is_string(s) && json_string_length(s)) {
            const char *spec = json_string_value(s);
            size_t n = json_string_length(s);
            if (n > 2 && !strcmp(spec + n - 2, "::")) {
                load_service(spec);
            } else {
                json_t *none = json_array();
                call_service(spec, none);
                json_decref(none);
            }
        } else if (json_is_array(s) && json_is_string(json_array_get(s, 0))) {
            json_t *args = json_array();
            for (size_t k = 1; k < json_array_size(s); k++)
                json_array_append(args, json_array_get(s, k));
            call_service(json_string_value(json_array_get(s, 0)), args);
            json_decref(args);
        } else {
            char *text = aemp__json_text(s);
            aemp_log(AEMP_LOG_ERROR, "service %zu not started: %s is neither a name nor [name, args...]", i + 1,
                     text);
            free(text);
        }
    }
}
