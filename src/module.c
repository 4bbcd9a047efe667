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
#include <unistd.h>

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

/* The flat file name of a valid module name: lower case, "::" -> "_",
 * ".so" ("My::Chat" -> "my_chat.so"). */
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

/* The file name in Perl's layout: the name as written, "::" -> "/",
 * ".so" ("mymod::chatserver" -> "mymod/chatserver.so", as Perl's
 * mymod/chatserver.pm). */
static void layout_name(const char *name, char *out)
{
    char *o = out;
    for (const char *p = name; *p; p++) {
        if (*p == ':') {
            *o++ = '/';
            p++;
        } else {
            *o++ = *p;
        }
    }
    strcpy(o, ".so");
}

/* Call fn(dir, len, cwd, arg) for each directory of the search path in
 * order (dir is not NUL-terminated; cwd: it is the current directory)
 * until fn returns non-zero; returns that value, or 0. */
static int each_dir(int (*fn)(const char *dir, size_t len, int cwd, void *arg), void *arg)
{
    const char *lists[] = { getenv("AEMP_MODULE_PATH"), config_path, NULL, AEMP_MODULE_DIR };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        int r;
        if (i == 2) {   /* the current directory, as Perl's "." in @INC */
            char cwd[PATH_MAX_LEN];
            if (getcwd(cwd, sizeof cwd) && (r = fn(cwd, strlen(cwd), 1, arg)))
                return r;
            continue;
        }
        for (const char *p = lists[i]; p && *p;) {
            const char *colon = strchr(p, ':');
            size_t n = colon ? (size_t)(colon - p) : strlen(p);
            if (n && (r = fn(p, n, 0, arg)))
                return r;
            p = colon ? colon + 1 : p + n;
        }
    }
    return 0;
}

/* The files a module may be in, and where one was found. */
struct lookup {
    const char *files[2];   /* flat name, Perl layout (NULL if the same) */
    char *path;             /* out: PATH_MAX_LEN bytes */
};

/* each_dir callback: 1 if one of l->files is in dir (path in l->path). */
static int look_in(const char *dir, size_t len, int cwd, void *arg)
{
    struct lookup *l = arg;
    for (int i = 0; i < 2 && l->files[i]; i++) {
        if (len + 1 + strlen(l->files[i]) >= PATH_MAX_LEN)
            continue;
        memcpy(l->path, dir, len);
        l->path[len] = '/';
        strcpy(l->path + len + 1, l->files[i]);
        struct stat st;
        if (stat(l->path, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

/* Find the file of the valid module name along the search path: in each
 * directory the flat name, then the Perl layout.  1 and its path in path
 * (PATH_MAX_LEN bytes), else 0. */
static int find_file(const char *name, char *path)
{
    char flat[NAME_MAX_LEN + 8], layout[NAME_MAX_LEN + 8];
    file_name(name, flat);
    layout_name(name, layout);
    struct lookup l = { { flat, strcmp(flat, layout) ? layout : NULL }, path };
    return each_dir(look_in, &l);
}

/* A growing text of a few hundred bytes: what was tried. */
struct text {
    char buf[1024];
    size_t len;
};

static void text_add(struct text *t, const char *s, size_t n)
{
    if (t->len + n >= sizeof t->buf)
        n = sizeof t->buf - 1 - t->len;
    memcpy(t->buf + t->len, s, n);
    t->buf[t->len += n] = 0;
}

static void text_adds(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

/* Add a file name to t unless it is there already (", "-separated). */
static void text_add_file(struct text *t, const char *file)
{
    size_t n = strlen(file);
    for (const char *p = t->buf; (p = strstr(p, file)); p += n)
        if ((p == t->buf || p[-1] == ' ') && (p[n] == ',' || !p[n]))
            return;
    if (t->len)
        text_adds(t, ", ");
    text_adds(t, file);
}

/* Add the files of the valid module name to t. */
static void add_files(struct text *t, const char *name)
{
    char f[NAME_MAX_LEN + 8];
    file_name(name, f);
    text_add_file(t, f);
    layout_name(name, f);
    text_add_file(t, f);
}

/* each_dir callback: append the directory to the text. */
static int add_dir(const char *dir, size_t len, int cwd, void *arg)
{
    struct text *t = arg;
    if (t->len)
        text_adds(t, ", ");
    text_add(t, dir, len);
    if (cwd)
        text_adds(t, " (the current directory)");
    return 0;
}

/* "tried <files> in <directories>" for the files listed in files. */
static void describe_tried(const struct text *files, char *out, size_t size)
{
    struct text dirs = { "", 0 };
    each_dir(add_dir, &dirs);
    snprintf(out, size, "tried %s in %s", files->buf, dirs.len ? dirs.buf : "no directory");
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
    if (!find_file(name, path)) {
        struct text files = { "", 0 };
        add_files(&files, name);
        char tried[1024];
        describe_tried(&files, tried, sizeof tried);
        aemp_log(AEMP_LOG_DEBUG, "module '%s' not found: %s", name, tried);
        aemp__seterr(err, errlen, "module '%s' not found: %s", name, tried);
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

/* The function name as messages show it: cut to about 60 characters,
 * bytes outside printable ASCII as '?' (it may come from another node). */
static void shown_name(const char *func, char *out, size_t size)
{
    size_t n = strlen(func), i;
    size_t max = n > 64 ? 60 : n;
    for (i = 0; i < max && i + 4 < size; i++)
        out[i] = func[i] >= 32 && func[i] < 127 ? func[i] : '?';
    strcpy(out + i, n > max ? "..." : "");
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
    struct text missing = { "", 0 }, loaded = { "", 0 };
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
        if (r == AEMP_ENOENT) {
            add_files(&missing, pkg);
        } else if (r == 0) {
            if (loaded.len)
                text_adds(&loaded, ", ");
            text_adds(&loaded, pkg);
        }
    }
    char name[80], tried[1024] = "";
    shown_name(func, name, sizeof name);
    if (missing.len)
        describe_tried(&missing, tried, sizeof tried);
    if (loaded.len && missing.len)
        aemp__seterr(err, errlen, "unable to resolve function '%s': module %s does not register it, and no "
                     "other module file was found (%s)", name, loaded.buf, tried);
    else if (loaded.len)
        aemp__seterr(err, errlen, "unable to resolve function '%s': module %s does not register it", name,
                     loaded.buf);
    else if (missing.len)
        aemp__seterr(err, errlen, "unable to resolve function '%s': no module file found (%s)", name, tried);
    else
        aemp__seterr(err, errlen, "unable to resolve function '%s': it is not registered and names no module",
                     name);
    return AEMP_ENOFUNC;
}
