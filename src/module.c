/* module.c - loadable modules: shared objects found on the module search
 * path by package name, opened once per process, and the package chain
 * that resolves a function name to the module defining it (Perl's
 * load_func).  Rules: include/aemp_module.h. */
#include "module.h"
#include "util.h"

#include "aemp_module.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef AEMP_MODULE_DIR
#define AEMP_MODULE_DIR "/usr/local/lib/aemp/modules"
#endif

/* Longest module name and path we handle. */
#define NAME_MAX_LEN 256
#define PATH_MAX_LEN 4096

enum mstate { M_LOADING, M_LOADED, M_FAILED };

typedef struct module {
    enum mstate state;
    void *handle;        /* never closed: its code may be referenced anywhere */
    char *error;         /* M_FAILED: the load error */
    char file[];         /* the key: "my_mod.so" */
} module_t;

/* Every module that was opened (or failed after being found), by name.
 * Process-wide like the function registry: it survives aemp_shutdown. */
static aemp_table_t modules;

/* The "module_path" configuration key, colon-separated, or NULL. */
static char *config_path;

void aemp__module_set_path(const json_t *path)
{
    free(config_path);
    config_path = NULL;
    if (json_is_string(path)) {
        config_path = strdup(json_string_value(path));
    } else if (json_is_array(path)) {
        size_t total = 1, i;
        json_t *d;
        json_array_foreach(path, i, d)
            if (json_is_string(d))
                total += json_string_length(d) + 1;
        config_path = calloc(1, total);
        if (!config_path)
            abort();
        json_array_foreach(path, i, d) {
            if (!json_is_string(d))
                continue;
            if (*config_path)
                strcat(config_path, ":");
            strcat(config_path, json_string_value(d));
        }
    }
}

/* A valid module name: components of [A-Za-z0-9_] separated by "::". */
static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > NAME_MAX_LEN)
        return 0;
    int comp = 0;   /* length of the current component */
    for (const char *p = name; *p; p++) {
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
            comp++;
        } else if (c == ':' && p[1] == ':' && comp) {
            p++;
            comp = 0;
        } else {
            return 0;
        }
    }
    return comp > 0;
}

/* The file name of a valid module name: lower case, "::" -> "_", ".so". */
static void file_name(const char *name, char *out)
{
    char *o = out;
    for (const char *p = name; *p; p++) {
        if (*p == ':') {
            *o++ = '_';
            p++;
        } else {
            *o++ = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
        }
    }
    strcpy(o, ".so");
}

/* Look for file in the colon-separated directory list dirs; 1 and the
 * path in out if it exists. */
static int search_dirs(const char *dirs, const char *file, char *out)
{
    if (!dirs)
        return 0;
    const char *p = dirs;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n && n + 1 + strlen(file) < PATH_MAX_LEN) {
            memcpy(out, p, n);
            out[n] = '/';
            strcpy(out + n + 1, file);
            struct stat st;
            if (stat(out, &st) == 0)
                return 1;
        }
        if (!colon)
            return 0;
        p = colon + 1;
    }
}

/* Find a module's file along the search path. */
static int find_file(const char *file, char *path)
{
    return search_dirs(getenv("AEMP_MODULE_PATH"), file, path) || search_dirs(config_path, file, path)
           || search_dirs(AEMP_MODULE_DIR, file, path);
}

/* Record a module that failed; returns AEMP_EIO with its error in err. */
static int failed(module_t *m, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int failed(module_t *m, char *err, size_t errlen, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    m->state = M_FAILED;
    free(m->error);
    m->error = strdup(text);
    if (!m->error)
        abort();
    aemp_log(AEMP_LOG_ERROR, "%s", text);
    aemp__seterr(err, errlen, "%s", text);
    return AEMP_EIO;
}

int aemp_module_load(const char *name, char *err, size_t errlen)
{
    if (!name || !valid_name(name)) {
        aemp__seterr(err, errlen, "invalid module name '%s'", name ? name : "(null)");
        return AEMP_EINVAL;
    }
    /* keyed by file name: "My::Mod" and "my::mod" are one module */
    char file[NAME_MAX_LEN + 8];
    file_name(name, file);
    size_t len = strlen(file);
    module_t *m = aemp__table_get(&modules, file, len);
    if (m) {
        if (m->state != M_FAILED)
            return 0;   /* loaded, or loading (a module that loads itself) */
        aemp__seterr(err, errlen, "%s", m->error);
        return AEMP_EIO;
    }
    char path[PATH_MAX_LEN];
    if (!find_file(file, path)) {
        aemp_log(AEMP_LOG_DEBUG, "module '%s' not found (no %s on the module path)", name, file);
        aemp__seterr(err, errlen, "module '%s' not found (no %s on the module path)", name, file);
        return AEMP_ENOENT;
    }
    m = calloc(1, sizeof *m + len + 1);
    if (!m)
        abort();
    memcpy(m->file, file, len + 1);
    aemp__table_put(&modules, m->file, len, m);

    dlerror();
    m->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) {
        const char *e = dlerror();
        return failed(m, err, errlen, "module '%s': %s", name, e ? e : "dlopen failed");
    }
    int (*init)(const char *) = (int (*)(const char *))dlsym(m->handle, AEMP_MODULE_INIT_SYMBOL);
    if (!init)
        return failed(m, err, errlen, "module '%s': no %s in %s", name, AEMP_MODULE_INIT_SYMBOL, path);
    m->state = M_LOADING;
    aemp_log(AEMP_LOG_INFO, "loading module '%s' from %s", name, path);
    int r = init(name);
    if (r != 0)
        return failed(m, err, errlen, "module '%s': %s returned %d", name, AEMP_MODULE_INIT_SYMBOL, r);
    m->state = M_LOADED;
    return 0;
}

int aemp__module_resolve(const char *func, char *err, size_t errlen)
{
    if (aemp__func_registered(func))
        return 0;
    size_t len = strlen(func);
    /* Perl: $pkg =~ s/::[^:]+$// until the function exists.  The packages
     * are the prefixes before each "::", from the right, one pass over the
     * name; prefixes longer than a module name may be are not tried. */
    char pkg[NAME_MAX_LEN + 1];
    size_t end = len;   /* the package tried next is func[0..end) */
    for (;;) {
        size_t i = end;
        while (i > 0 && func[i - 1] != ':')
            i--;
        /* func[i..end) is the last component: it must not be empty, and
         * "::" must separate it from a non-empty package */
        if (i == end || i < 3 || func[i - 2] != ':')
            break;
        end = i - 2;
        if (end > NAME_MAX_LEN)
            continue;
        memcpy(pkg, func, end);
        pkg[end] = 0;
        char e[1024];
        int r = aemp_module_load(pkg, e, sizeof e);
        if (r < 0 && r != AEMP_ENOENT && r != AEMP_EINVAL) {
            aemp__seterr(err, errlen, "%s", e);
            return AEMP_EIO;
        }
        if (aemp__func_registered(func))
            return 0;
    }
    aemp__seterr(err, errlen, "unable to resolve function '%.*s'", (int)(len > 512 ? 512 : len), func);
    return AEMP_ENOFUNC;
}
