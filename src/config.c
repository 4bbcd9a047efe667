/* config.c - the rc file, profiles, configuration resolution, node IDs.
 *
 * The file format and the merge rules follow AnyEvent::MP::Config (see
 * spec §6) so that C and Perl nodes can share one rc file; where the Perl
 * code misbehaves (parent loops recurse forever, an unparsable file is
 * silently replaced) we report an error instead.
 */
#include "config.h"
#include "util.h"
#include "random.h"
#include "nodeid.h"
#include "endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

/* An rc file larger than this is certainly not a configuration. */
#define MAX_FILE_SIZE (64u * 1024 * 1024)

#define MAX_FRAME_MIN 1024
#define MAX_FRAME_MAX 2147483647

struct aemp_config {
    char *path;        /* file, NULL if none */
    json_t *root;      /* the whole rc object */
    char *target;      /* editing target profile, NULL = global section */
    bool modified;
    bool unparsable;   /* loaded from a file we could not read or parse */
    bool exists;       /* the file existed when loaded or has been saved */
};

/* ---------------------------------------------------------------- helpers */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

/* malloc'd concatenation of a and b */
static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s)
        abort();
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

/* Strict decimal number syntax (what a user means by a numeric string;
 * unlike strtod, no hex, inf or nan).  Surrounding blanks are allowed. */
static bool numeric_string(const char *s, double *out)
{
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *start = p;
    if (*p == '+' || *p == '-')
        p++;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    const char *end = p;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return false;
    char *e;
    double d = strtod(start, &e);
    if (e != end || !isfinite(d))
        return false;
    *out = d;
    return true;
}

/* The numeric value of a number or numeric string. */
static bool number_value(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
        return numeric_string(json_string_value(v), out);
    return false;
}

/* ------------------------------------------------------------- known keys */

enum kind {
    K_ANY,       /* not checked */
    K_STRING,
    K_STRLIST,   /* array of strings (or one comma-separated string) */
    K_ENDPOINTS, /* array of endpoints (or one comma-separated string) */
    K_SERVICES,  /* array of (string | [string, args...]) (or a comma list) */
    K_PATHLIST,  /* array of strings, or one colon-separated string */
    K_NUMBER,    /* positive number (or numeric string) */
    K_FRAME,     /* integer in [MAX_FRAME_MIN, MAX_FRAME_MAX] */
    K_BOOL,      /* true/false, a number, null, or a boolean word (bool_word) */
    K_DIALECT,   /* "both", "1.30" or "2.02" */
};

static const struct keyinfo {
    const char *name;
    enum kind kind;
} key_table[] = {
    { "nodeid", K_STRING },
    { "secret", K_STRING },
    { "cert", K_STRING },
    { "binds", K_ENDPOINTS },
    { "seeds", K_ENDPOINTS },
    { "services", K_SERVICES },
    { "module_path", K_PATHLIST },
    { "parent", K_STRING },
    { "monitor_timeout", K_NUMBER },
    { "connect_interval", K_NUMBER },
    { "framing_format", K_STRLIST },
    { "auth_offer", K_STRLIST },
    { "auth_accept", K_STRLIST },
    { "autocork", K_BOOL },
    { "nodelay", K_BOOL },
    { "secure", K_BOOL },
    { "eval", K_STRING },
    { "profile", K_STRING },
    { "norc", K_BOOL },
    { "force", K_BOOL },
    { "version", K_ANY },
    { "dialect", K_DIALECT },
    { "max_frame", K_FRAME },
    { "max_send_queue", K_NUMBER },
    { "max_connect_queue", K_NUMBER },
    { "max_connect_queue_total", K_NUMBER },
    { "max_connecting_nodes", K_NUMBER },
    { "max_unauthenticated", K_NUMBER },
    { "dataconn_max_pending", K_NUMBER },
    { "listen_backlog", K_NUMBER },
    { "db_fanout_cpu", K_NUMBER },
    { "db_fanout_max_delay", K_NUMBER },
    { "metrics", K_STRING },
};

#define NKEYS (sizeof key_table / sizeof key_table[0])

static const struct keyinfo *find_key(const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(key_table[i].name, key))
            return &key_table[i];
    return NULL;
}

bool aemp__config_known_key(const char *key)
{
    return key && find_key(key) != NULL;
}

const char *const *aemp__config_known_keys(void)
{
    static const char *names[NKEYS + 1];
    if (!names[0])
        for (size_t i = 0; i < NKEYS; i++)
            names[i] = key_table[i].name;
    return names;
}

/* Edit distance of a and b, capped at 3 (enough to spot a typo). */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 2)
        return 3;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] < 3 ? row[lb] : 3;
}

void aemp__config_unknown_msg(const char *key, char *err, size_t errlen)
{
    const char *best = NULL;
    int bestd = 3;
    for (size_t i = 0; i < NKEYS; i++) {
        int d = distance(key, key_table[i].name);
        if (d < bestd) {
            bestd = d;
            best = key_table[i].name;
        }
    }
    if (best)
        aemp__seterr(err, errlen, "'%s' is not a configuration key libaemp knows (did you mean '%s'?)",
                     key, best);
    else
        aemp__seterr(err, errlen, "'%s' is not a configuration key libaemp knows", key);
}

/* The value of a boolean word ("true", "false", "yes", "no", "on", "off",
 * "1", "0", "" in any case); -1 if s is none of them. */
static int bool_word(const char *s)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "", "0", "false", "no", "off" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!strcasecmp(s, yes[i]))
            return 1;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (!strcasecmp(s, no[i]))
            return 0;
    return -1;
}

/* True for the kinds whose value is a list that may be given as one
 * comma-separated string. */
static bool comma_list(enum kind k)
{
    return k == K_STRLIST || k == K_ENDPOINTS || k == K_SERVICES;
}

/* Split "a,b,c" into ["a","b","c"] as Perl's split /,/ does (trailing
 * empty fields are dropped). */
static json_t *split_commas(const char *s)
{
    json_t *a = json_array();
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        json_array_append_new(a, json_stringn(p, n));
        if (!comma)
            break;
        p = comma + 1;
    }
    while (json_array_size(a)) {
        json_t *last = json_array_get(a, json_array_size(a) - 1);
        if (json_string_length(last))
            break;
        json_array_remove(a, json_array_size(a) - 1);
    }
    return a;
}

json_t *aemp__config_list_value(const char *key, json_t *v)
{
    const struct keyinfo *ki = key ? find_key(key) : NULL;
    if (ki && comma_list(ki->kind) && json_is_string(v))
        return split_commas(json_string_value(v));
    return json_incref(v);
}

/* Is v an acceptable list element for kind k? */
static bool element_ok(enum kind k, const json_t *v)
{
    if (json_is_string(v))
        return true;
    if (k == K_SERVICES)
        return json_is_array(v) && json_array_size(v) > 0 && json_is_string(json_array_get(v, 0));
    return false;
}

static const char *element_expect(enum kind k)
{
    return k == K_SERVICES ? "a string or an array starting with a function name" : "a string";
}

/* Check the endpoint syntax of element `index` (a string that may hold
 * several comma-separated endpoints) of key; no name lookups. */
static int check_endpoints(const char *key, size_t index, const json_t *e, char *err, size_t errlen)
{
    json_t *parts = split_commas(json_string_value(e));
    size_t i;
    json_t *p;
    char why[512];
    int r = 0;
    json_array_foreach(parts, i, p) {
        aemp_endpoint_t ep;
        if (json_array_size(parts) > 1 && !json_string_length(p))
            continue;   /* an empty part of a comma list is skipped */
        if (aemp__endpoint_parse(json_string_value(p), &ep, why, sizeof why) < 0) {
            aemp__seterr(err, errlen, "key '%s' element %zu: %s", key, index, why);
            r = -1;
            break;
        }
    }
    json_decref(parts);
    return r;
}

int aemp__config_check(const char *key, const json_t *v, char *err, size_t errlen)
{
    const struct keyinfo *ki = key ? find_key(key) : NULL;
    if (!ki || !v)
        return 0;
    double d;
    switch (ki->kind) {
    case K_ANY:
        return 0;
    case K_STRING:
        if (json_is_string(v))
            return 0;
        aemp__seterr(err, errlen, "key '%s' must be a string, got %s", key, aemp__json_type_name(v));
        return -1;
    case K_PATHLIST:
        if (json_is_string(v))
            return 0;
        __attribute__((fallthrough));   /* or an array of strings */
    case K_STRLIST:
    case K_ENDPOINTS:
    case K_SERVICES:
        if (json_is_string(v) && ki->kind != K_PATHLIST) {
            json_t *list = split_commas(json_string_value(v));
            int r = aemp__config_check(key, list, err, errlen);
            json_decref(list);
            return r;
        }
        if (!json_is_array(v)) {
            aemp__seterr(err, errlen, "key '%s' must be an array%s, got %s", key,
                   ki->kind == K_STRLIST ? " of strings" : "", aemp__json_type_name(v));
            return -1;
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *e = json_array_get(v, i);
            if (!element_ok(ki->kind, e)) {
                aemp__seterr(err, errlen, "key '%s' element %zu must be %s, got %s", key, i + 1,
                       element_expect(ki->kind), aemp__json_type_name(e));
                return -1;
            }
            if (ki->kind == K_ENDPOINTS && check_endpoints(key, i + 1, e, err, errlen) < 0)
                return -1;
        }
        return 0;
    case K_NUMBER:
        if (!number_value(v, &d)) {
            aemp__seterr(err, errlen, "key '%s' must be a number, got %s", key, aemp__json_type_name(v));
            return -1;
        }
        if (!(d > 0)) {
            aemp__seterr(err, errlen, "key '%s' must be a positive number, got %g", key, d);
            return -1;
        }
        return 0;
    case K_FRAME:
        if (!number_value(v, &d)) {
            aemp__seterr(err, errlen, "key '%s' must be a number, got %s", key, aemp__json_type_name(v));
            return -1;
        }
        if (d != floor(d) || d < MAX_FRAME_MIN || d > MAX_FRAME_MAX) {
            aemp__seterr(err, errlen, "key '%s' must be an integer from %d to %d, got %g", key,
                   MAX_FRAME_MIN, MAX_FRAME_MAX, d);
            return -1;
        }
        return 0;
    case K_BOOL:
        if (json_is_array(v) || json_is_object(v)) {
            aemp__seterr(err, errlen, "key '%s' must be a boolean, got %s", key, aemp__json_type_name(v));
            return -1;
        }
        if (json_is_string(v) && bool_word(json_string_value(v)) < 0) {
            aemp__seterr(err, errlen,
                         "key '%s' must be a boolean (true/false, 1/0, yes/no, on/off), got \"%s\"",
                         key, json_string_value(v));
            return -1;
        }
        return 0;
    case K_DIALECT:
        if (!json_is_string(v)) {
            aemp__seterr(err, errlen, "key '%s' must be a string (\"both\", \"1.30\" or \"2.02\"), got %s",
                   key, aemp__json_type_name(v));
            return -1;
        }
        if (strcmp(json_string_value(v), "both") && strcmp(json_string_value(v), "1.30")
            && strcmp(json_string_value(v), "2.02")) {
            aemp__seterr(err, errlen, "key '%s' must be \"both\", \"1.30\" or \"2.02\", got \"%s\"", key,
                   json_string_value(v));
            return -1;
        }
        return 0;
    }
    return 0;
}

/* The canonical form of a checked value of a known key (new reference):
 * numbers for numeric strings, true/false for truth values, lists for
 * comma-separated strings. */
static json_t *normalise(const char *key, json_t *v)
{
    const struct keyinfo *ki = find_key(key);
    double d;
    if (ki && (ki->kind == K_NUMBER || ki->kind == K_FRAME) && json_is_string(v)
        && number_value(v, &d)) {
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    if (ki && ki->kind == K_BOOL && json_is_string(v) && bool_word(json_string_value(v)) >= 0)
        return json_boolean(bool_word(json_string_value(v)));
    if (ki && ki->kind == K_BOOL && !json_is_boolean(v))
        return json_boolean(aemp__json_truthy(v));
    return aemp__config_list_value(key, v);
}

json_t *aemp__config_normalise(const char *key, json_t *v)
{
    return normalise(key, v);
}

json_t *aemp__config_defaults(void)
{
    return json_pack("{s:i, s:i, s:[ss], s:[ssss], s:[ssssss], s:[s], s:[], s:[],"
                     " s:b, s:b, s:b, s:s, s:I}",
                     "monitor_timeout", 30,
                     "connect_interval", 2,
                     "framing_format", "cbor", "json",
                     "auth_offer", "tls_sha3_512", "hmac_sha3_512", "tls_md6_64_256",
                     "hmac_md6_64_256",
                     "auth_accept", "tls_sha3_512", "hmac_sha3_512", "tls_md6_64_256",
                     "hmac_md6_64_256", "tls_anon", "cleartext",
                     "binds", "*",
                     "seeds",
                     "services",
                     "autocork", 0,
                     "nodelay", 1,
                     "secure", 0,
                     "dialect", "both",
                     "max_frame", (json_int_t)AEMP_CONFIG_MAX_FRAME_DEFAULT);
}

/* The defaults that Perl's find_profile puts into the merge itself (and
 * that therefore override the rc file under "force"). */
static const char *const perl_defaults[] = {
    "monitor_timeout", "connect_interval", "framing_format", "auth_offer", "auth_accept",
};

static bool is_perl_default(const char *key)
{
    for (size_t i = 0; i < sizeof perl_defaults / sizeof perl_defaults[0]; i++)
        if (!strcmp(perl_defaults[i], key))
            return true;
    return false;
}

/* ------------------------------------------------------------- relaxed JSON */

static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Turn relaxed JSON into strict JSON in place, keeping every byte's line and
 * column: comments and trailing commas become spaces. */
static void relax(char *s, size_t len)
{
    bool instr = false;
    char last = 0; /* last significant character outside strings/comments */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (instr) {
            if (c == '\\')
                i++;
            else if (c == '"') {
                instr = false;
                last = '"';
            }
            continue;
        }
        if (c == '"') {
            instr = true;
            continue;
        }
        if (c == '#') {
            while (i < len && s[i] != '\n')
                s[i++] = ' ';
            continue; /* s[i] is the newline (or the end) */
        }
        if (c == ',' && last && !strchr("{[,:", last)) {
            size_t j = i + 1;
            for (;;) {
                while (j < len && json_ws(s[j]))
                    j++;
                if (j < len && s[j] == '#') {
                    while (j < len && s[j] != '\n')
                        j++;
                    continue;
                }
                break;
            }
            if (j < len && (s[j] == '}' || s[j] == ']')) {
                s[i] = ' ';
                continue;
            }
        }
        if (!json_ws(c))
            last = c;
    }
}

/* 1-based line and column (in characters) of byte offset off. */
static void line_col(const char *s, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

int aemp__config_parse(const char *text, size_t len, const char *name, json_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (!name)
        name = "<input>";
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, text, len);
    s[len] = 0;
    relax(s, len);

    size_t first = 0;
    while (first < len && json_ws(s[first]))
        first++;
    if (first == len) {
        int l, c;
        line_col(s, len, &l, &c);
        aemp__seterr(err, errlen, "%s:%d:%d: invalid JSON: no value (empty input)", name, l, c);
        free(s);
        return -1;
    }

    json_error_t je;
    json_t *v = json_loadb(s, len, 0, &je);
    if (!v) {
        aemp__seterr(err, errlen, "%s:%d:%d: invalid JSON: %s", name, je.line, je.column, je.text);
        free(s);
        return -1;
    }
    if (!json_is_object(v)) {
        int l, c;
        line_col(s, first, &l, &c);
        aemp__seterr(err, errlen, "%s:%d:%d: invalid JSON: expected an object, got %s", name, l, c,
               aemp__json_type_name(v));
        json_decref(v);
        free(s);
        return -1;
    }
    free(s);
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------- the file */

int aemp__config_default_path(char **path, char *err, size_t errlen)
{
    const char *v;
    *path = NULL;
    if ((v = getenv("PERL_ANYEVENT_MP_RC")) && *v)
        *path = xstrdup(v);
    else if ((v = getenv("HOME")) && *v)
        *path = concat(v, "/.perl-anyevent-mp");
    else if ((v = getenv("APPDATA")) && *v)
        *path = concat(v, "/perl-anyevent-mp");
    else {
        aemp__seterr(err, errlen,
               "cannot locate the configuration file: none of PERL_ANYEVENT_MP_RC, HOME, APPDATA is set");
        return -1;
    }
    return 0;
}

aemp_config_t *aemp__config_new(const char *path)
{
    aemp_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->root = json_pack("{s:i}", "version", 1);
    if (!cfg->root) {
        free(cfg);
        return NULL;
    }
    cfg->path = path ? xstrdup(path) : NULL;
    return cfg;
}

void aemp__config_free(aemp_config_t *cfg)
{
    if (!cfg)
        return;
    json_decref(cfg->root);
    free(cfg->path);
    free(cfg->target);
    free(cfg);
}

/* Check the rc file's structure: "profile", if present, is an object of
 * objects. */
static int check_structure(const char *path, const json_t *root, char *err, size_t errlen)
{
    const json_t *profiles = json_object_get(root, "profile");
    if (!profiles)
        return 0;
    if (!json_is_object(profiles)) {
        aemp__seterr(err, errlen, "%s: key 'profile' must be an object (of profiles), got %s", path,
               aemp__json_type_name(profiles));
        return -1;
    }
    const char *name;
    json_t *p;
    json_object_foreach((json_t *)profiles, name, p) {
        if (!json_is_object(p)) {
            aemp__seterr(err, errlen, "%s: profile '%s' must be an object, got %s", path, name,
                   aemp__json_type_name(p));
            return -1;
        }
    }
    return 0;
}

/* Read a whole file into a malloc'd buffer; -1 with errno set on failure
 * (EFBIG if too large). */
static int read_file(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE_SIZE) {
                free(buf);
                errno = EFBIG;
                goto fail;
            }
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            errno = e;
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int aemp__config_load(const char *path, aemp_config_t **cfgp, char *err, size_t errlen)
{
    char *dpath = NULL;
    *cfgp = NULL;
    if (!path) {
        if (aemp__config_default_path(&dpath, err, errlen) < 0) {
            *cfgp = aemp__config_new(NULL);
            return -1;
        }
        path = dpath;
    }
    aemp_config_t *cfg = aemp__config_new(path);
    free(dpath);
    if (!cfg) {
        aemp__seterr(err, errlen, "out of memory");
        return -1;
    }
    *cfgp = cfg;
    path = cfg->path;

    char *data;
    size_t len;
    if (read_file(path, &data, &len) < 0) {
        if (errno == ENOENT || errno == ENOTDIR) /* no file: nothing to lose */
            return 0;
        aemp__seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        cfg->exists = true;
        cfg->unparsable = true;
        return -1;
    }
    cfg->exists = true;

    size_t i = 0;
    while (i < len && json_ws(data[i]))
        i++;
    if (i == len) { /* nothing to lose: same as a missing file */
        free(data);
        return 0;
    }

    json_t *root;
    int rc = aemp__config_parse(data, len, path, &root, err, errlen);
    free(data);
    if (rc < 0) {
        cfg->unparsable = true;
        return -1;
    }
    if (check_structure(path, root, err, errlen) < 0) {
        json_decref(root);
        cfg->unparsable = true;
        return -1;
    }
    json_decref(cfg->root);
    cfg->root = root;
    return 0;
}

/* write all of buf to fd */
static int write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Best effort: make a rename durable by syncing the directory. */
static void sync_dir_of(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int aemp__config_save(aemp_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->unparsable) {
        aemp__seterr(err, errlen,
               "refusing to overwrite '%s': it could not be read or parsed (fix or remove it first)",
               cfg->path ? cfg->path : "?");
        return -1;
    }
    if (!cfg->path) {
        aemp__seterr(err, errlen, "cannot save the configuration: no file name");
        return -1;
    }
    const char *path = cfg->path;
    char *text = json_dumps(cfg->root, JSON_INDENT(3));
    if (!text) {
        aemp__seterr(err, errlen, "cannot encode the configuration as JSON");
        return -1;
    }
    char *tmp = concat(path, "~new~");
    char *bak = concat(path, "~");
    int rc = -1;

    struct stat st;
    bool old = stat(path, &st) == 0;
    if (!old && errno != ENOENT && errno != ENOTDIR) {
        aemp__seterr(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        aemp__seterr(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, old ? (st.st_mode & 07777) : 0600) < 0 || write_all(fd, text, strlen(text)) < 0
        || write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
        aemp__seterr(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0) {
        aemp__seterr(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }

    if (old) {
        if (unlink(bak) < 0 && errno != ENOENT) {
            aemp__seterr(err, errlen, "cannot remove old backup '%s': %s", bak, strerror(errno));
            unlink(tmp);
            goto out;
        }
        if (link(path, bak) < 0) {
            aemp__seterr(err, errlen, "cannot create backup '%s': %s", bak, strerror(errno));
            unlink(tmp);
            goto out;
        }
    }
    if (rename(tmp, path) < 0) {
        aemp__seterr(err, errlen, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    sync_dir_of(path);
    cfg->modified = false;
    cfg->exists = true;
    rc = 0;
out:
    free(text);
    free(tmp);
    free(bak);
    return rc;
}

const char *aemp__config_path(const aemp_config_t *cfg)
{
    return cfg->path;
}

json_t *aemp__config_root(const aemp_config_t *cfg)
{
    return cfg->root;
}

bool aemp__config_modified(const aemp_config_t *cfg)
{
    return cfg->modified;
}

void aemp__config_touch(aemp_config_t *cfg)
{
    cfg->modified = true;
}

bool aemp__config_unparsable(const aemp_config_t *cfg)
{
    return cfg->unparsable;
}

bool aemp__config_exists(const aemp_config_t *cfg)
{
    return cfg->exists;
}

/* ---------------------------------------------------------------- editing */

/* root.profile (created if create), NULL if absent or not an object. */
static json_t *profiles_obj(aemp_config_t *cfg, bool create)
{
    json_t *p = json_object_get(cfg->root, "profile");
    if (!p && create) {
        p = json_object();
        json_object_set_new(cfg->root, "profile", p);
        cfg->modified = true;
    }
    return json_is_object(p) ? p : NULL;
}

/* The target's object, created if missing; NULL only if the file's
 * "profile" is not an object. */
static json_t *target_obj(aemp_config_t *cfg)
{
    if (!cfg->target)
        return cfg->root;
    json_t *profiles = profiles_obj(cfg, true);
    if (!profiles)
        return NULL;
    json_t *p = json_object_get(profiles, cfg->target);
    if (!json_is_object(p)) {
        p = json_object();
        json_object_set_new(profiles, cfg->target, p);
        cfg->modified = true;
    }
    return p;
}

static int no_profiles_err(char *err, size_t errlen)
{
    aemp__seterr(err, errlen, "key 'profile' of the configuration is not an object");
    return -1;
}

int aemp__config_select(aemp_config_t *cfg, const char *name, char *err, size_t errlen)
{
    if (name && !*name) {
        aemp__seterr(err, errlen, "profile name must not be empty");
        return -1;
    }
    char *old = cfg->target;
    cfg->target = name ? xstrdup(name) : NULL;
    if (!target_obj(cfg)) {
        free(cfg->target);
        cfg->target = old;
        return no_profiles_err(err, errlen);
    }
    free(old);
    return 0;
}

const char *aemp__config_target(const aemp_config_t *cfg)
{
    return cfg->target;
}

json_t *aemp__config_get(const aemp_config_t *cfg, const char *key)
{
    if (!cfg->target)
        return json_object_get(cfg->root, key);
    json_t *p = json_object_get(json_object_get(cfg->root, "profile"), cfg->target);
    return json_is_object(p) ? json_object_get(p, key) : NULL;
}

static bool reserved(const char *key)
{
    return !strcmp(key, "profile") || !strcmp(key, "version");
}

int aemp__config_set(aemp_config_t *cfg, const char *key, json_t *value, char *err,
                     size_t errlen)
{
    int rc = -1;
    if (!key || !*key || !value) {
        aemp__seterr(err, errlen, "a key and a value are required");
        goto out;
    }
    if (reserved(key)) {
        aemp__seterr(err, errlen, "key '%s' is reserved and cannot be set", key);
        goto out;
    }
    if (!strcmp(key, "parent")) {
        if (!json_is_string(value)) {
            aemp__seterr(err, errlen, "key 'parent' must be a string, got %s", aemp__json_type_name(value));
            goto out;
        }
        rc = aemp__config_set_parent(cfg, json_string_value(value), err, errlen);
        goto out;
    }
    if (aemp__config_check(key, value, err, errlen) < 0)
        goto out;
    json_t *obj = target_obj(cfg);
    if (!obj) {
        no_profiles_err(err, errlen);
        goto out;
    }
    json_object_set(obj, key, value);
    cfg->modified = true;
    rc = 0;
out:
    json_decref(value);
    return rc;
}

int aemp__config_del(aemp_config_t *cfg, const char *key, char *err, size_t errlen)
{
    if (!key || reserved(key)) {
        aemp__seterr(err, errlen, "key '%s' is reserved and cannot be deleted", key ? key : "(null)");
        return -1;
    }
    json_t *obj = target_obj(cfg);
    if (!obj)
        return no_profiles_err(err, errlen);
    if (json_object_del(obj, key) == 0)
        cfg->modified = true;
    return 0;
}

int aemp__config_add_item(aemp_config_t *cfg, const char *key, json_t *item, bool unique,
                          char *err, size_t errlen)
{
    int rc = -1;
    const struct keyinfo *ki = key ? find_key(key) : NULL;
    if (!key || !item) {
        aemp__seterr(err, errlen, "a key and an item are required");
        goto out;
    }
    if (reserved(key)) {
        aemp__seterr(err, errlen, "key '%s' is reserved and cannot be set", key);
        goto out;
    }
    if (ki && !comma_list(ki->kind) && ki->kind != K_PATHLIST) {
        aemp__seterr(err, errlen, "key '%s' is not a list", key);
        goto out;
    }
    if (ki && !element_ok(ki->kind, item)) {
        aemp__seterr(err, errlen, "key '%s' entries must be %s, got %s", key, element_expect(ki->kind),
               aemp__json_type_name(item));
        goto out;
    }
    json_t *one = json_pack("[O]", item);
    int bad = aemp__config_check(key, one, err, errlen);
    json_decref(one);
    if (bad < 0)
        goto out;
    json_t *obj = target_obj(cfg);
    if (!obj) {
        no_profiles_err(err, errlen);
        goto out;
    }
    json_t *list = json_object_get(obj, key);
    if (!list) {
        list = json_array();
        json_object_set_new(obj, key, list);
    } else if (!json_is_array(list)) {
        aemp__seterr(err, errlen, "key '%s' holds a %s, not a list", key, aemp__json_type_name(list));
        goto out;
    }
    if (unique)
        for (size_t i = json_array_size(list); i-- > 0;)
            if (json_equal(json_array_get(list, i), item))
                json_array_remove(list, i);
    json_array_append(list, item);
    cfg->modified = true;
    rc = 0;
out:
    json_decref(item);
    return rc;
}

int aemp__config_del_item(aemp_config_t *cfg, const char *key, const json_t *item, bool all,
                          char *err, size_t errlen)
{
    if (!key || !item) {
        aemp__seterr(err, errlen, "a key and an item are required");
        return -1;
    }
    json_t *list = aemp__config_get(cfg, key);
    if (!list)
        return 0;
    if (!json_is_array(list)) {
        aemp__seterr(err, errlen, "key '%s' holds a %s, not a list", key, aemp__json_type_name(list));
        return -1;
    }
    for (size_t i = 0; i < json_array_size(list);) {
        if (json_equal(json_array_get(list, i), (json_t *)item)) {
            json_array_remove(list, i);
            cfg->modified = true;
            if (!all)
                break;
        } else {
            i++;
        }
    }
    return 0;
}

/* The parent name of profile object p, NULL if none ("" and null count as
 * none, as Perl tests truth); *bad is set if parent is not a string. */
static const char *parent_of(const json_t *p, const json_t **bad)
{
    const json_t *par = json_object_get(p, "parent");
    *bad = NULL;
    if (!par || json_is_null(par))
        return NULL;
    if (!json_is_string(par)) {
        *bad = par;
        return NULL;
    }
    return *json_string_value(par) ? json_string_value(par) : NULL;
}

/* A growable list of names for chain walks and messages. */
struct names {
    const char **v;
    size_t n, cap;
};

static void names_push(struct names *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            abort();
    }
    l->v[l->n++] = s;
}

static bool names_has(const struct names *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return true;
    return false;
}

/* "a -> b -> c -> last" into err */
static void chain_msg(char *err, size_t errlen, const char *prefix, const struct names *l,
                      const char *last)
{
    if (!err || !errlen)
        return;
    size_t off = (size_t)snprintf(err, errlen, "%s", prefix);
    for (size_t i = 0; i < l->n && off < errlen; i++)
        off += (size_t)snprintf(err + off, errlen - off, "%s -> ", l->v[i]);
    if (off < errlen)
        snprintf(err + off, errlen - off, "%s", last);
}

int aemp__config_set_parent(aemp_config_t *cfg, const char *parent, char *err, size_t errlen)
{
    if (!cfg->target) {
        aemp__seterr(err, errlen, "the global section cannot have a parent (select a profile first)");
        return -1;
    }
    if (!parent || !*parent) {
        aemp__seterr(err, errlen, "parent profile name must not be empty");
        return -1;
    }
    json_t *obj = target_obj(cfg);
    if (!obj)
        return no_profiles_err(err, errlen);
    json_t *profiles = profiles_obj(cfg, false);

    /* follow the chain from the new parent; reaching the target = loop */
    struct names chain = { 0 };
    names_push(&chain, cfg->target);
    const char *cur = parent;
    int rc = 0;
    while (cur) {
        if (!strcmp(cur, cfg->target)) {
            char prefix[128];
            snprintf(prefix, sizeof prefix, "parent '%s' would make a loop: ", parent);
            chain_msg(err, errlen, prefix, &chain, cur);
            rc = -1;
            break;
        }
        if (names_has(&chain, cur)) /* an existing loop elsewhere: not ours to judge here */
            break;
        names_push(&chain, cur);
        const json_t *p = json_object_get(profiles, cur), *bad;
        cur = json_is_object(p) ? parent_of(p, &bad) : NULL;
    }
    free(chain.v);
    if (rc < 0)
        return -1;
    json_object_set_new(obj, "parent", json_string(parent));
    cfg->modified = true;
    return 0;
}

void aemp__config_del_parent(aemp_config_t *cfg)
{
    if (!cfg->target)
        return;
    json_t *obj = target_obj(cfg);
    if (obj && json_object_del(obj, "parent") == 0)
        cfg->modified = true;
}

int aemp__config_del_profile(aemp_config_t *cfg, const char *name, char *err, size_t errlen)
{
    json_t *profiles = profiles_obj(cfg, false);
    if (!name || !profiles || !json_object_get(profiles, name)) {
        aemp__seterr(err, errlen, "no such profile '%s'", name ? name : "(null)");
        return -1;
    }
    json_object_del(profiles, name);
    cfg->modified = true;
    if (cfg->target && !strcmp(cfg->target, name)) {
        free(cfg->target);
        cfg->target = NULL;
    }
    return 0;
}

int aemp__config_show(const aemp_config_t *cfg, const char *name, json_t **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (!name) {
        json_t *c = json_deep_copy(cfg->root);
        if (!c)
            abort();
        json_object_del(c, "profile");
        *out = c;
        return 0;
    }
    json_t *p = json_object_get(json_object_get(cfg->root, "profile"), name);
    if (!json_is_object(p)) {
        aemp__seterr(err, errlen, "no such profile '%s'", name);
        return -1;
    }
    *out = json_deep_copy(p);
    if (!*out)
        abort();
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *aemp__config_profiles(const aemp_config_t *cfg)
{
    json_t *profiles = json_object_get(cfg->root, "profile");
    json_t *out = json_array();
    if (!out || !json_is_object(profiles))
        return out;
    size_t n = json_object_size(profiles), i = 0;
    const char **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        abort();
    const char *k;
    json_t *p;
    json_object_foreach(profiles, k, p) v[i++] = k;
    qsort(v, n, sizeof *v, cmp_str);
    for (i = 0; i < n; i++)
        json_array_append_new(out, json_string(v[i]));
    free(v);
    return out;
}

int aemp__config_ensure_secret(aemp_config_t *cfg, char *err, size_t errlen)
{
    if (json_object_get(cfg->root, "secret"))
        return 0;
    char s[AEMP_CONFIG_SECRET_LEN + 1];
    if (aemp__config_gensecret(s, sizeof s, err, errlen) < 0)
        return -1;
    json_object_set_new(cfg->root, "secret", json_string(s));
    cfg->modified = true;
    return 1;
}

/* ------------------------------------------------------------- resolution */

/* Type-check every known key of one layer; `what` names the layer in the
 * message.  rc layers skip "profile" and "version" (structural keys). */
static int check_layer(const json_t *layer, const char *what, bool rc_layer, char *err,
                       size_t errlen)
{
    const char *k;
    json_t *v;
    char msg[512];
    json_object_foreach((json_t *)layer, k, v) {
        if (rc_layer && (!strcmp(k, "profile") || !strcmp(k, "version")))
            continue;
        if (aemp__config_check(k, v, msg, sizeof msg) < 0) {
            aemp__seterr(err, errlen, "%s: %s", what, msg);
            return -1;
        }
    }
    return 0;
}

/* dst[k] = copy of src[k] for every k (only keys passing `filter` if set) */
static void merge(json_t *dst, const json_t *src, bool (*filter)(const char *))
{
    const char *k;
    json_t *v;
    if (!src)
        return;
    json_object_foreach((json_t *)src, k, v) {
        if (filter && !filter(k))
            continue;
        json_t *c = json_deep_copy(v);
        if (!c)
            abort();
        json_object_set_new(dst, k, c);
    }
}

/* Collect the profile chain: chain->v[0] = the named profile, then its
 * parent, ...; objs in parallel.  A missing named profile gives an empty
 * chain. */
static int walk_chain(const json_t *root, const char *name, struct names *chain,
                      const json_t ***objs, char *err, size_t errlen)
{
    const json_t *profiles = json_object_get(root, "profile");
    if (profiles && !json_is_object(profiles)) {
        aemp__seterr(err, errlen, "key 'profile' of the configuration must be an object, got %s",
               aemp__json_type_name(profiles));
        return -1;
    }
    const json_t *p = json_object_get(profiles, name);
    const char *cur = name;
    size_t cap = 0;
    *objs = NULL;
    while (p) {
        if (!json_is_object(p)) {
            aemp__seterr(err, errlen, "profile '%s' must be an object, got %s", cur, aemp__json_type_name(p));
            return -1;
        }
        if (chain->n == cap) {
            cap = cap ? 2 * cap : 8;
            *objs = realloc(*objs, cap * sizeof **objs);
            if (!*objs)
                abort();
        }
        (*objs)[chain->n] = p;
        names_push(chain, cur);

        const json_t *bad;
        const char *par = parent_of(p, &bad);
        if (bad) {
            aemp__seterr(err, errlen, "profile '%s': key 'parent' must be a string, got %s", cur,
                   aemp__json_type_name(bad));
            return -1;
        }
        if (!par)
            break;
        if (names_has(chain, par)) {
            chain_msg(err, errlen, "profile parent chain loops: ", chain, par);
            return -1;
        }
        p = json_object_get(profiles, par);
        if (!p) {
            aemp__seterr(err, errlen, "profile '%s' names unknown parent '%s'", cur, par);
            return -1;
        }
        cur = par;
    }
    return 0;
}

json_t *aemp__config_chain_get(const aemp_config_t *cfg, const char *profile, const char *key)
{
    struct names chain = { 0 };
    const json_t **objs = NULL;
    json_t *found = NULL;
    if (cfg && profile && walk_chain(cfg->root, profile, &chain, &objs, NULL, 0) == 0)
        for (size_t i = 0; i < chain.n && !found; i++)
            found = json_object_get(objs[i], key);
    free(chain.v);
    free(objs);
    return found;
}

static bool arg_true(const json_t *args, const char *key)
{
    const json_t *v = json_object_get(args, key);
    return v && aemp__json_truthy(v);
}

static bool not_perl_default(const char *key)
{
    return !is_perl_default(key);
}

int aemp__config_resolve(const aemp_config_t *cfg, const char *profile, const json_t *args,
                         unsigned flags, json_t **out, char **profile_used, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (profile_used)
        *profile_used = NULL;
    if (args && !json_is_object(args)) {
        aemp__seterr(err, errlen, "configure arguments must be an object, got %s", aemp__json_type_name(args));
        return -1;
    }
    if (args && check_layer(args, "configure argument", false, err, errlen) < 0)
        return -1;
    if (args && arg_true(args, "norc"))
        flags |= AEMP_CONFIG_NORC;
    if (args && arg_true(args, "force"))
        flags |= AEMP_CONFIG_FORCE;

    char host[256];
    if (!profile && args && json_is_string(json_object_get(args, "profile")))
        profile = json_string_value(json_object_get(args, "profile"));
    if (!profile) {
        aemp__config_hostname(host, sizeof host);
        profile = host;
    }

    bool use_rc = cfg && !(flags & AEMP_CONFIG_NORC);
    struct names chain = { 0 };
    const json_t **objs = NULL;
    json_t *defaults = aemp__config_defaults();
    json_t *res = json_object();
    int rc = -1;
    if (!defaults || !res)
        abort();

    if (use_rc) {
        if (check_layer(cfg->root, "global section", true, err, errlen) < 0)
            goto out;
        if (walk_chain(cfg->root, profile, &chain, &objs, err, errlen) < 0)
            goto out;
        for (size_t i = 0; i < chain.n; i++) {
            char what[300];
            snprintf(what, sizeof what, "profile '%s'", chain.v[i]);
            if (check_layer(objs[i], what, true, err, errlen) < 0)
                goto out;
        }
    }

    if (!use_rc || !(flags & AEMP_CONFIG_FORCE)) {
        merge(res, defaults, is_perl_default);
        merge(res, args, NULL);
    }
    if (use_rc) {
        merge(res, cfg->root, NULL);
        for (size_t i = chain.n; i-- > 0;)
            merge(res, objs[i], NULL);
        if (flags & AEMP_CONFIG_FORCE) {
            merge(res, defaults, is_perl_default);
            merge(res, args, NULL);
        }
    }
    /* the other built-in defaults only fill gaps */
    const char *k;
    json_t *v;
    json_object_foreach(defaults, k, v) {
        if (not_perl_default(k) && !json_object_get(res, k))
            json_object_set(res, k, v);
    }

    static const char *const drop[] = { "profile", "parent", "version", "norc", "force" };
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        json_object_del(res, drop[i]);

    json_object_foreach(res, k, v) {
        json_t *n = normalise(k, v);
        if (n != v)
            json_object_set(res, k, n); /* replacing a value keeps iteration valid */
        json_decref(n);
    }

    if (profile_used)
        *profile_used = xstrdup(profile);
    *out = res;
    res = NULL;
    rc = 0;
out:
    json_decref(res);
    json_decref(defaults);
    free(chain.v);
    free(objs);
    return rc;
}

/* --------------------------------------------------------------- identity */

void aemp__config_hostname(char *buf, size_t n)
{
    struct utsname u;
    if (!n)
        return;
    if (uname(&u) == 0 && u.nodename[0])
        snprintf(buf, n, "%s", u.nodename);
    else
        snprintf(buf, n, "%s", "localhost");
}

int aemp__config_gensecret(char *out, size_t n, char *err, size_t errlen)
{
    if (n < AEMP_CONFIG_SECRET_LEN + 1) {
        aemp__seterr(err, errlen, "secret buffer too small");
        return -1;
    }
    if (aemp__random_base62(out, AEMP_CONFIG_SECRET_LEN) < 0) {
        aemp__seterr(err, errlen, "cannot generate a secret: the kernel's random generator failed");
        return -1;
    }
    return 0;
}

/* minimal growable string */
struct str {
    char *p;
    size_t n, cap;
};

static void str_add(struct str *s, const char *p, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        if (!s->p)
            abort();
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = 0;
}

int aemp__config_nodeid(const json_t *cfg, const char *profile, char **id, bool *random_part,
                        char *err, size_t errlen)
{
    char host[256];
    char runiq[AEMP_CONFIG_RUNIQ_LEN + 1];
    const char *tmpl;
    char *own = NULL;
    *id = NULL;
    if (random_part)
        *random_part = false;
    aemp__config_hostname(host, sizeof host);

    const json_t *v = cfg ? json_object_get(cfg, "nodeid") : NULL;
    if (v) {
        if (!json_is_string(v)) {
            aemp__seterr(err, errlen, "key 'nodeid' must be a string, got %s", aemp__json_type_name(v));
            return -1;
        }
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            aemp__seterr(err, errlen, "node ID must not contain NUL characters");
            return -1;
        }
        tmpl = json_string_value(v);
    } else {
        own = concat(profile ? profile : host, "/");
        tmpl = own;
    }
    if (aemp__random_base62(runiq, AEMP_CONFIG_RUNIQ_LEN) < 0) {
        free(own);
        aemp__seterr(err, errlen, "cannot generate a node ID: the kernel's random generator failed");
        return -1;
    }

    struct str s = { 0 };
    bool rnd = false;
    str_add(&s, "", 0);
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == 'n') {
            str_add(&s, host, strlen(host));
            p++;
        } else if (p[0] == '%' && p[1] == 'u') {
            str_add(&s, runiq, AEMP_CONFIG_RUNIQ_LEN);
            rnd = true;
            p++;
        } else {
            str_add(&s, p, 1);
        }
    }
    if (s.n && s.p[s.n - 1] == '/') {
        str_add(&s, runiq, AEMP_CONFIG_RUNIQ_LEN);
        rnd = true;
    }
    free(own);

    char why[96];
    if (aemp__nodeid_check(s.p, s.n, why, sizeof why) < 0) {
        char shown[128];
        aemp__nodeid_escape(s.p, s.n, shown, sizeof shown);
        if (!s.n)
            aemp__seterr(err, errlen, "node ID is empty");
        else
            aemp__seterr(err, errlen, "invalid node ID '%s': %s", shown, why);
        free(s.p);
        return -1;
    }
    *id = s.p;
    if (random_part)
        *random_part = rnd;
    return 0;
}
