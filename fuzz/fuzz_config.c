/* fuzz_config.c - libFuzzer target for the relaxed-JSON rc file parser of
 * src/config.c and the resolution that consumes what it parsed.
 *
 * Input: the text of an rc file.
 * Properties (a violation aborts):
 *  - a refusal says "<name>:<line>:<col>: invalid JSON: why";
 *  - relaxed JSON is a superset of JSON: a text jansson accepts as an
 *    object parses to the same value;
 *  - what parsed is a fixed point: dumped as strict JSON it parses to the
 *    same value, and a comment before or after the text changes nothing;
 *  - resolving every profile of it (and the global section, with and
 *    without `force`, and the text as configure arguments) either fails
 *    with a message or gives an object without the structural keys whose
 *    every known key passes the type check; a node ID made from it is
 *    non-empty and free of '#', ';', ',', CR and LF.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.rc"

/* Abort with a message about a violated property. */
static void violation(const char *what, const char *detail)
{
    fprintf(stderr, "config property violated: %s\n  %.500s\n", what, detail ? detail : "-");
    abort();
}

/* Parse text[0..n) with the relaxed parser; NULL if refused (the message
 * checked). */
static json_t *parse(const char *text, size_t n)
{
    json_t *v = NULL;
    char err[512];
    err[0] = 0;
    if (aemp__config_parse(text, n, NAME, &v, err, sizeof err) < 0) {
        int line, col;
        char c;
        if (v || sscanf(err, NAME ":%d:%d%c", &line, &col, &c) != 3 || c != ':' || line < 1
            || col < 0 || !strstr(err, ": invalid JSON: "))
            violation("a refusal says '" NAME ":<line>:<col>: invalid JSON: why'", err);
        return NULL;
    }
    if (!json_is_object(v))
        violation("what parses is an object", err);
    return v;
}

/* Fail unless the relaxed parse of text[0..n) equals want. */
static void same_parse(const char *text, size_t n, const json_t *want, const char *what)
{
    json_t *v = parse(text, n);
    if (!v || !json_equal(v, want))
        violation(what, text);
    json_decref(v);
}

/* Resolve and check the result (see the header comment). */
static void check_resolve(const aemp_config_t *cfg, const char *profile, const json_t *args,
                          unsigned flags)
{
    json_t *res = NULL;
    char *used = NULL, err[512];
    err[0] = 0;
    if (aemp__config_resolve(cfg, profile, args, flags, &res, &used, err, sizeof err) < 0) {
        if (res || used || !err[0])
            violation("a failed resolution gives a message and nothing else", err);
        return;
    }
    if (!json_is_object(res) || !used)
        violation("a resolution is an object and names its profile", err);
    static const char *const gone[] = { "profile", "parent", "version", "norc", "force" };
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        if (json_object_get(res, gone[i]))
            violation("a resolution has no structural keys", gone[i]);
    const char *k;
    json_t *v;
    json_object_foreach(res, k, v) {
        if (aemp__config_check(k, v, err, sizeof err) < 0)
            violation("every resolved value passes its type check", err);
    }
    char *id = NULL;
    bool rnd;
    if (aemp__config_nodeid(res, used, &id, &rnd, err, sizeof err) == 0) {
        if (!id || !*id || strpbrk(id, "#;,\r\n"))
            violation("a node ID is non-empty, without '#', ';', ',', CR, LF", id);
    } else if (id || !err[0]) {
        violation("a refused node ID gives a message and nothing else", err);
    }
    free(id);
    free(used);
    json_decref(res);
}

/* One input.  Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_t *v = parse(text, size);

    json_error_t je;
    json_t *strict = json_loadb(text, size, 0, &je);
    if (json_is_object(strict) && (!v || !json_equal(strict, v)))
        violation("a JSON object parses to the same value", text);
    json_decref(strict);
    if (!v)
        return 0;

    char *dump = json_dumps(v, JSON_COMPACT);
    if (!dump)
        violation("a parsed value can be dumped", NULL);
    same_parse(dump, strlen(dump), v, "dumped as JSON, a parsed value parses back");
    free(dump);
    char *framed = malloc(size + 32);
    if (!framed)
        abort();
    memcpy(framed, "# leading\n", 10);
    memcpy(framed + 10, text, size);
    memcpy(framed + 10 + size, "\n# trailing, }", 14);
    same_parse(framed, size + 24, v, "comments around a parsed text change nothing");
    free(framed);

    aemp_config_t *cfg = aemp__config_new(NULL);
    if (!cfg)
        abort();
    json_object_update(aemp__config_root(cfg), v);
    aemp__config_touch(cfg);
    const json_t *profiles = json_object_get(v, "profile");
    const char *name;
    json_t *p;
    int n = 0;
    if (json_is_object(profiles))
        json_object_foreach((json_t *)profiles, name, p) {
            if (n++ == 4)
                break;
            check_resolve(cfg, name, NULL, 0);
            check_resolve(cfg, name, NULL, AEMP_CONFIG_FORCE);
        }
    check_resolve(cfg, "no-such-profile", NULL, 0);
    check_resolve(NULL, NULL, v, AEMP_CONFIG_NORC);
    aemp__config_free(cfg);
    json_decref(v);
    return 0;
}
