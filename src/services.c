/* services.c - the "services" configuration key: what a node starts at the
 * end of aemp_configure (spec §2.4 step 6).  Unlike AnyEvent::MP, whose
 * configure dies when a service fails, a failing service is logged at
 * level 1 and the node keeps running without it. */
#include "module.h"

#include "aemp_json.h"
#include "aemp_module.h"

#include <stdlib.h>
#include <string.h>

/* Resolve func (loading modules as needed) and call it with args
 * (borrowed), outside port context. */
static void call_service(const char *func, aemp_msg_t *args)
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

/* A ["Pkg::func", args...] entry (a JSON array whose element 0 is a
 * string): call func with the other elements as its message. */
static void call_service_entry(size_t index, const json_t *entry)
{
    aemp_msg_t *whole = aemp_msg_from_json(entry);
    if (!whole) {
        aemp_log(AEMP_LOG_ERROR, "service %zu not started: its arguments are nested too deeply", index + 1);
        return;
    }
    aemp_msg_t *args = aemp__msg_slice(whole, 1);
    call_service(aemp_msg_str(whole, 0, NULL), args);
    aemp_msg_unref(args);
    aemp_msg_unref(whole);
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
                aemp_msg_t *none = aemp_msg_empty();
                call_service(spec, none);
                aemp_msg_unref(none);
            }
        } else if (json_is_array(s) && json_is_string(json_array_get(s, 0))) {
            call_service_entry(i, s);
        } else {
            char *text = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);
            aemp_log(AEMP_LOG_ERROR, "service %zu not started: %s is neither a name nor [name, args...]", i + 1,
                     text ? text : "?");
            free(text);
        }
    }
}
