/* Tests for the rc file, profiles, resolution and node IDs (config.c). */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

struct fx {
    char dir[64];
    char rc[128];
    char err[512];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/aemp-test-config-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->rc, sizeof f->rc, "%s/rc", f->dir);
    setenv("PERL_ANYEVENT_MP_RC", f->rc, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* malloc'd content, NULL if missing */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static aemp_config_t *load_text(struct fx *f, const char *text)
{
    aemp_config_t *cfg;
    write_file(f->rc, text);
    int rc = aemp__config_load(NULL, &cfg, f->err, sizeof f->err);
    if (rc)
        fail_msg("load failed: %s", f->err);
    return cfg;
}

/* -------------------------------------------------------------- the file */

static void default_path(void **state)
{
    struct fx *f = *state;
    char *p;
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

    assert_int_equal(aemp__config_default_path(&p, f->err, sizeof f->err), 0);
    assert_string_equal(p, f->rc);
    free(p);

    unsetenv("PERL_ANYEVENT_MP_RC");
    setenv("HOME", "/home/x", 1);
    assert_int_equal(aemp__config_default_path(&p, f->err, sizeof f->err), 0);
    assert_string_equal(p, "/home/x/.perl-anyevent-mp");
    free(p);

    unsetenv("HOME");
    setenv("APPDATA", "C:/app", 1);
    assert_int_equal(aemp__config_default_path(&p, f->err, sizeof f->err), 0);
    assert_string_equal(p, "C:/app/perl-anyevent-mp");
    free(p);

    unsetenv("APPDATA");
    assert_int_equal(aemp__config_default_path(&p, f->err, sizeof f->err), -1);
    assert_null(p);
    assert_non_null(strstr(f->err, "PERL_ANYEVENT_MP_RC"));

    if (home) {
        setenv("HOME", home, 1);
        free(home);
    }
    setenv("PERL_ANYEVENT_MP_RC", f->rc, 1);
}

static void missing_file_is_empty(void **state)
{
    struct fx *f = *state;
    aemp_config_t *cfg;
    assert_int_equal(aemp__config_load(NULL, &cfg, f->err, sizeof f->err), 0);
    assert_false(aemp__config_exists(cfg));
    assert_false(aemp__config_unparsable(cfg));
    assert_false(aemp__config_modified(cfg));
    json_t *want = json_pack("{s:i}", "version", 1);
    assert_true(json_equal(aemp__config_root(cfg), want));
    json_decref(want);

    /* a new config gets a secret once */
    assert_int_equal(aemp__config_ensure_secret(cfg, f->err, sizeof f->err), 1);
    assert_int_equal(aemp__config_ensure_secret(cfg, f->err, sizeof f->err), 0);
    assert_true(aemp__config_modified(cfg));
    assert_int_equal(strlen(json_string_value(aemp__config_get(cfg, "secret"))),
                     AEMP_CONFIG_SECRET_LEN);

    /* first save creates the file 0600, no backup */
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), 0);
    assert_false(aemp__config_modified(cfg));
    struct stat st;
    assert_int_equal(stat(f->rc, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char bak[160];
    snprintf(bak, sizeof bak, "%s~", f->rc);
    assert_false(exists(bak));

    aemp_config_t *again;
    assert_int_equal(aemp__config_load(f->rc, &again, f->err, sizeof f->err), 0);
    assert_true(aemp__config_exists(again));
    assert_true(json_equal(aemp__config_root(cfg), aemp__config_root(again)));
    aemp__config_free(again);
    aemp__config_free(cfg);

    /* white space only counts as empty */
    write_file(f->rc, " \n\t\n");
    assert_int_equal(aemp__config_load(f->rc, &cfg, f->err, sizeof f->err), 0);
    assert_int_equal(json_integer_value(json_object_get(aemp__config_root(cfg), "version")), 1);
    aemp__config_free(cfg);
}

static void relaxed_parsing(void **state)
{
    struct fx *f = *state;
    aemp_config_t *cfg = load_text(f,
        "# leading comment\n"
        "{\n"
        "   \"version\" : 1, # trailing comment with \"quotes\" and , commas ]\n"
        "   \"secret\"  : \"a#b,c]\", # '#' inside a string is data\n"
        "   \"esc\"     : \"q\\\"#x\",\n"
        "   \"seeds\"   : [\"10.0.0.1:4040\", \"10.0.0.2:4040\",],\n"
        "   \"list\"    : [1, 2, # comment before the bracket\n"
        "                 ],\n"
        "   \"profile\" : {\n"
        "      \"seed\" : { \"binds\" : [\"*:4040\"], },\n"
        "   },\n"
        "}\n"
        "# the end\n");
    json_t *root = aemp__config_root(cfg);
    assert_string_equal(json_string_value(json_object_get(root, "secret")), "a#b,c]");
    assert_string_equal(json_string_value(json_object_get(root, "esc")), "q\"#x");
    assert_int_equal(json_array_size(json_object_get(root, "seeds")), 2);
    assert_int_equal(json_array_size(json_object_get(root, "list")), 2);
    json_t *seed = json_object_get(json_object_get(root, "profile"), "seed");
    assert_string_equal(json_string_value(json_array_get(json_object_get(seed, "binds"), 0)),
                        "*:4040");
    aemp__config_free(cfg);

    /* relaxed means one trailing comma, not empty elements */
    json_t *v;
    static const char *bad[] = { "{\"a\": [1,,]}", "{,}", "{\"a\": [,]}", "{\"a\":1,,}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(aemp__config_parse(bad[i], strlen(bad[i]), "t", &v, f->err,
                                            sizeof f->err), -1);
        assert_null(v);
        assert_non_null(strstr(f->err, "t:1:"));
    }
    assert_int_equal(aemp__config_parse("[1]", 3, "t", &v, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "t:1:1: invalid JSON: expected an object, got array");
    assert_int_equal(aemp__config_parse("#x\n", 3, "t", &v, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "empty input"));
}

static void malformed_file_not_overwritten(void **state)
{
    struct fx *f = *state;
    const char *text = "{\n  \"a\": 1, # fine\n  \"b\": [1 2]\n}\n";
    write_file(f->rc, text);
    aemp_config_t *cfg;
    assert_int_equal(aemp__config_load(NULL, &cfg, f->err, sizeof f->err), -1);
    assert_non_null(cfg);
    char want[200];
    snprintf(want, sizeof want, "%s:3:11: invalid JSON: ", f->rc);
    assert_memory_equal(f->err, want, strlen(want));
    assert_true(aemp__config_unparsable(cfg));

    /* editing works in memory, saving refuses */
    assert_int_equal(aemp__config_set(cfg, "nodeid", json_string("x"), f->err, sizeof f->err), 0);
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "refusing to overwrite"));
    assert_non_null(strstr(f->err, f->rc));
    char *now = slurp(f->rc);
    assert_string_equal(now, text);
    free(now);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s~new~", f->rc);
    assert_false(exists(tmp));
    aemp__config_free(cfg);

    /* structural errors count as unparsable too */
    write_file(f->rc, "{\"profile\": 5}");
    assert_int_equal(aemp__config_load(NULL, &cfg, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "key 'profile' must be an object"));
    assert_true(aemp__config_unparsable(cfg));
    aemp__config_free(cfg);
    write_file(f->rc, "{\"profile\": {\"a\": []}}");
    assert_int_equal(aemp__config_load(NULL, &cfg, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "profile 'a' must be an object"));
    aemp__config_free(cfg);

    /* a directory where the file should be */
    unlink(f->rc);
    mkdir(f->rc, 0700);
    assert_int_equal(aemp__config_load(NULL, &cfg, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "Is a directory"));
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), -1);
    aemp__config_free(cfg);
    rmdir(f->rc);
}

static void atomic_save_and_backup(void **state)
{
    struct fx *f = *state;
    const char *orig = "# my config\n{\"version\": 1, \"x\": 1,}\n";
    write_file(f->rc, orig);
    chmod(f->rc, 0640);
    aemp_config_t *cfg;
    assert_int_equal(aemp__config_load(NULL, &cfg, f->err, sizeof f->err), 0);
    assert_int_equal(aemp__config_set(cfg, "y", json_integer(2), f->err, sizeof f->err), 0);
    assert_true(aemp__config_modified(cfg));
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), 0);

    char bak[160], tmp[160];
    snprintf(bak, sizeof bak, "%s~", f->rc);
    snprintf(tmp, sizeof tmp, "%s~new~", f->rc);
    char *b = slurp(bak);
    assert_string_equal(b, orig);
    free(b);
    assert_false(exists(tmp));
    char *now = slurp(f->rc);
    assert_non_null(strstr(now, "\"y\": 2"));
    assert_non_null(strchr(now, '\n'));
    assert_int_equal(now[strlen(now) - 1], '\n');
    assert_int_equal(now[strlen(now) - 2], '}');
    struct stat st;
    stat(f->rc, &st);
    assert_int_equal(st.st_mode & 0777, 0640); /* an existing file keeps its mode */

    /* the second save backs up the first one */
    assert_int_equal(aemp__config_set(cfg, "z", json_integer(3), f->err, sizeof f->err), 0);
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), 0);
    b = slurp(bak);
    assert_string_equal(b, now);
    free(b);
    free(now);
    aemp__config_free(cfg);

    assert_int_equal(aemp__config_load(NULL, &cfg, f->err, sizeof f->err), 0);
    assert_int_equal(json_integer_value(aemp__config_get(cfg, "z")), 3);
    aemp__config_free(cfg);
}

static void unwritable_directory(void **state)
{
    struct fx *f = *state;
    char notdir[128], path[192];
    /* a regular file where a directory should be (chmod does not stop root) */
    snprintf(notdir, sizeof notdir, "%s/plainfile", f->dir);
    write_file(notdir, "x");
    snprintf(path, sizeof path, "%s/rc", notdir);
    aemp_config_t *cfg;
    assert_int_equal(aemp__config_load(path, &cfg, f->err, sizeof f->err), 0);
    assert_false(aemp__config_exists(cfg));
    assert_int_equal(aemp__config_set(cfg, "nodeid", json_string("n"), f->err, sizeof f->err), 0);
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), -1);
    char want[300];
    snprintf(want, sizeof want, "cannot write '%s~new~': Not a directory", path);
    assert_string_equal(f->err, want);
    aemp__config_free(cfg);

    /* a directory that does not exist */
    snprintf(path, sizeof path, "%s/nonexistent/rc", f->dir);
    assert_int_equal(aemp__config_load(path, &cfg, f->err, sizeof f->err), 0);
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "cannot write '%s~new~': No such file or directory", path);
    assert_string_equal(f->err, want);
    aemp__config_free(cfg);

    /* no path at all */
    cfg = aemp__config_new(NULL);
    assert_int_equal(aemp__config_save(cfg, f->err, sizeof f->err), -1);
    aemp__config_free(cfg);
}

/* ---------------------------------------------------------------- editing */

static json_t *strs(const char *a, const char *b, const char *c)
{
    json_t *v = json_array();
    if (a)
        json_array_append_new(v, json_string(a));
    if (b)
        json_array_append_new(v, json_string(b));
    if (c)
        json_array_append_new(v, json_string(c));
    return v;
}

static void assert_json(const json_t *got, json_t *want)
{
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", g ? g : "NULL", w);
    }
    json_decref(want);
}

static void editing(void **state)
{
    struct fx *f = *state;
    aemp_config_t *cfg = aemp__config_new(f->rc);
    char *e = f->err;
    size_t el = sizeof f->err;

    /* global target */
    assert_null(aemp__config_target(cfg));
    assert_int_equal(aemp__config_set(cfg, "secret", json_string("s"), e, el), 0);
    assert_int_equal(aemp__config_set(cfg, "profile", json_object(), e, el), -1);
    assert_non_null(strstr(e, "reserved"));
    assert_int_equal(aemp__config_del(cfg, "version", e, el), -1);
    assert_int_equal(aemp__config_set_parent(cfg, "x", e, el), -1);
    assert_non_null(strstr(e, "global section"));

    /* seeds: add after removing equal entries; del removes all equal */
    assert_int_equal(aemp__config_add_item(cfg, "seeds", json_string("a:1"), true, e, el), 0);
    assert_int_equal(aemp__config_add_item(cfg, "seeds", json_string("b:1"), true, e, el), 0);
    assert_int_equal(aemp__config_add_item(cfg, "seeds", json_string("a:1"), true, e, el), 0);
    assert_json(aemp__config_get(cfg, "seeds"), strs("b:1", "a:1", NULL));
    assert_int_equal(aemp__config_set(cfg, "seeds", strs("a:1", "b:1", "a:1"), e, el), 0);
    json_t *a1 = json_string("a:1");
    assert_int_equal(aemp__config_del_item(cfg, "seeds", a1, true, e, el), 0);
    json_decref(a1);
    assert_json(aemp__config_get(cfg, "seeds"), strs("b:1", NULL, NULL));
    assert_int_equal(aemp__config_add_item(cfg, "seeds", json_integer(1), true, e, el), -1);
    assert_string_equal(e, "key 'seeds' entries must be a string, got number");

    /* services: duplicates allowed; del removes the first equal entry */
    json_t *svc = json_pack("[s,i]", "f", 1);
    assert_int_equal(aemp__config_add_item(cfg, "services", json_string("x"), false, e, el), 0);
    assert_int_equal(aemp__config_add_item(cfg, "services", json_incref(svc), false, e, el), 0);
    assert_int_equal(aemp__config_add_item(cfg, "services", json_string("x"), false, e, el), 0);
    assert_int_equal(json_array_size(aemp__config_get(cfg, "services")), 3);
    json_t *x = json_string("x");
    assert_int_equal(aemp__config_del_item(cfg, "services", x, false, e, el), 0);
    assert_json(aemp__config_get(cfg, "services"), json_pack("[O,s]", svc, "x"));
    assert_int_equal(aemp__config_del_item(cfg, "nothere", x, true, e, el), 0);
    json_decref(x);
    json_decref(svc);
    assert_int_equal(aemp__config_add_item(cfg, "secret", json_string("x"), false, e, el), -1);
    assert_non_null(strstr(e, "not a list"));

    /* profiles */
    assert_int_equal(aemp__config_select(cfg, "", e, el), -1);
    assert_int_equal(aemp__config_select(cfg, "server", e, el), 0);
    assert_string_equal(aemp__config_target(cfg), "server");
    assert_int_equal(aemp__config_set(cfg, "nodeid", json_string("srv"), e, el), 0);
    assert_int_equal(aemp__config_set(cfg, "monitor_timeout", json_string("abc"), e, el), -1);
    assert_string_equal(e, "key 'monitor_timeout' must be a number, got string");
    assert_int_equal(aemp__config_set(cfg, "monitor_timeout", json_string("5"), e, el), 0);
    assert_int_equal(aemp__config_set(cfg, "nodelay", json_array(), e, el), -1);
    assert_string_equal(e, "key 'nodelay' must be a boolean, got array");
    assert_int_equal(aemp__config_set(cfg, "dialect", json_string("3.0"), e, el), -1);
    assert_int_equal(aemp__config_set(cfg, "my_own_key", json_array(), e, el), 0);
    assert_int_equal(aemp__config_select(cfg, "doomed", e, el), 0);
    assert_int_equal(aemp__config_set(cfg, "parent", json_string("server"), e, el), 0);
    assert_int_equal(aemp__config_select(cfg, "server", e, el), 0);
    assert_int_equal(aemp__config_set_parent(cfg, "doomed", e, el), -1);
    assert_string_equal(e, "parent 'doomed' would make a loop: server -> doomed -> server");
    assert_int_equal(aemp__config_set_parent(cfg, "server", e, el), -1);
    assert_int_equal(aemp__config_set_parent(cfg, "later", e, el), 0); /* may not exist yet */
    aemp__config_del_parent(cfg);
    assert_null(aemp__config_get(cfg, "parent"));
    assert_int_equal(aemp__config_del(cfg, "my_own_key", e, el), 0);
    assert_int_equal(aemp__config_select(cfg, "alpha", e, el), 0);

    json_t *shown;
    assert_int_equal(aemp__config_show(cfg, "server", &shown, e, el), 0);
    assert_json(shown, json_pack("{s:s,s:s}", "nodeid", "srv", "monitor_timeout", "5"));
    json_decref(shown);
    assert_int_equal(aemp__config_show(cfg, "nope", &shown, e, el), -1);
    assert_string_equal(e, "no such profile 'nope'");
    assert_int_equal(aemp__config_show(cfg, NULL, &shown, e, el), 0);
    assert_null(json_object_get(shown, "profile"));
    assert_string_equal(json_string_value(json_object_get(shown, "secret")), "s");
    json_decref(shown);

    json_t *names = aemp__config_profiles(cfg);
    assert_json(names, strs("alpha", "doomed", "server"));
    json_decref(names);

    assert_int_equal(aemp__config_del_profile(cfg, "alpha", e, el), 0);
    assert_null(aemp__config_target(cfg)); /* the deleted target falls back to global */
    assert_int_equal(aemp__config_del_profile(cfg, "alpha", e, el), -1);
    names = aemp__config_profiles(cfg);
    assert_json(names, strs("doomed", "server", NULL));
    json_decref(names);

    /* round trip through the file */
    assert_int_equal(aemp__config_save(cfg, e, el), 0);
    aemp_config_t *again;
    assert_int_equal(aemp__config_load(f->rc, &again, e, el), 0);
    assert_true(json_equal(aemp__config_root(cfg), aemp__config_root(again)));
    aemp__config_free(again);
    aemp__config_free(cfg);

    /* known keys */
    assert_true(aemp__config_known_key("seeds"));
    assert_true(aemp__config_known_key("max_frame"));
    assert_false(aemp__config_known_key("seed"));
    size_t n = 0;
    for (const char *const *k = aemp__config_known_keys(); *k; k++)
        n++;
    assert_true(n >= 20);
}

/* ------------------------------------------------------------- resolution */

static const char *chain_rc =
    "{\n"
    "  \"version\": 1,\n"
    "  \"a\": \"top\", \"b\": \"top\", \"c\": \"top\", \"d\": \"top\",\n"
    "  \"monitor_timeout\": 7, \"binds\": [\"*:1\"],\n"
    "  \"parent\": \"ignored-at-top-level\",\n"
    "  \"profile\": {\n"
    "    \"p\": { \"parent\": \"q\", \"a\": \"p\" },\n"
    "    \"q\": { \"parent\": \"r\", \"a\": \"q\", \"b\": \"q\" },\n"
    "    \"r\": { \"a\": \"r\", \"b\": \"r\", \"c\": \"r\", \"connect_interval\": \"3.5\" },\n"
    "  },\n"
    "}\n";

static const char *sv(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void resolve_priority(void **state)
{
    struct fx *f = *state;
    aemp_config_t *cfg = load_text(f, chain_rc);
    json_t *args = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "a", "args", "b", "args", "c", "args",
                             "d", "args", "e", "args", "connect_interval", 9);
    json_t *res;
    char *used;
    assert_int_equal(aemp__config_resolve(cfg, "p", args, 0, &res, &used, f->err, sizeof f->err),
                     0);
    assert_string_equal(used, "p");
    free(used);
    assert_string_equal(sv(res, "a"), "p");
    assert_string_equal(sv(res, "b"), "q");
    assert_string_equal(sv(res, "c"), "r");
    assert_string_equal(sv(res, "d"), "top");
    assert_string_equal(sv(res, "e"), "args");
    assert_int_equal(json_integer_value(json_object_get(res, "monitor_timeout")), 7);
    /* numeric strings are normalised */
    assert_true(json_is_real(json_object_get(res, "connect_interval")));
    assert_true(json_real_value(json_object_get(res, "connect_interval")) == 3.5);
    assert_string_equal(json_string_value(json_array_get(json_object_get(res, "binds"), 0)), "*:1");
    /* built-in defaults fill the gaps */
    assert_json(json_object_get(res, "framing_format"), strs("cbor", "json", NULL));
    assert_int_equal(json_array_size(json_object_get(res, "auth_offer")), 4);
    assert_int_equal(json_array_size(json_object_get(res, "auth_accept")), 6);
    assert_json(json_object_get(res, "seeds"), json_array());
    assert_json(json_object_get(res, "services"), json_array());
    assert_true(json_is_false(json_object_get(res, "autocork")));
    assert_true(json_is_true(json_object_get(res, "nodelay")));
    assert_true(json_is_false(json_object_get(res, "secure")));
    assert_string_equal(sv(res, "dialect"), "both");
    assert_int_equal(json_integer_value(json_object_get(res, "max_frame")), 16 * 1024 * 1024);
    /* structural keys are gone */
    assert_null(json_object_get(res, "profile"));
    assert_null(json_object_get(res, "parent"));
    assert_null(json_object_get(res, "version"));
    json_decref(res);

    /* a profile that does not exist is empty: top level over args */
    assert_int_equal(aemp__config_resolve(cfg, "none", args, 0, &res, NULL, f->err,
                                          sizeof f->err), 0);
    assert_string_equal(sv(res, "a"), "top");
    assert_string_equal(sv(res, "e"), "args");
    assert_int_equal(json_integer_value(json_object_get(res, "connect_interval")), 9);
    json_decref(res);

    /* profile from args; default profile = host name */
    json_t *a2 = json_pack("{s:s}", "profile", "q");
    assert_int_equal(aemp__config_resolve(cfg, NULL, a2, 0, &res, &used, f->err, sizeof f->err),
                     0);
    assert_string_equal(used, "q");
    assert_string_equal(sv(res, "a"), "q");
    json_decref(res);
    free(used);
    json_decref(a2);
    assert_int_equal(aemp__config_resolve(cfg, NULL, NULL, 0, &res, &used, f->err, sizeof f->err),
                     0);
    char host[256];
    aemp__config_hostname(host, sizeof host);
    assert_string_equal(used, host);
    free(used);
    json_decref(res);

    json_decref(args);
    aemp__config_free(cfg);
}

static void resolve_force_norc(void **state)
{
    struct fx *f = *state;
    aemp_config_t *cfg = load_text(f, chain_rc);
    json_t *args = json_pack("{s:s,s:[s]}", "a", "args", "seeds", "s:1");
    json_t *res;

    /* FORCE: args win over the rc file... */
    assert_int_equal(aemp__config_resolve(cfg, "p", args, AEMP_CONFIG_FORCE, &res, NULL, f->err,
                                          sizeof f->err), 0);
    assert_string_equal(sv(res, "a"), "args");
    assert_string_equal(sv(res, "b"), "q");
    assert_string_equal(sv(res, "d"), "top");
    /* ...and so do the five Perl defaults (the quirk): rc's 7 and 3.5 are lost */
    assert_int_equal(json_integer_value(json_object_get(res, "monitor_timeout")), 30);
    assert_int_equal(json_integer_value(json_object_get(res, "connect_interval")), 2);
    /* other defaults do not override the rc file */
    assert_string_equal(json_string_value(json_array_get(json_object_get(res, "binds"), 0)), "*:1");
    assert_json(json_object_get(res, "seeds"), strs("s:1", NULL, NULL));
    json_decref(res);

    /* force given as a configure argument */
    json_t *a2 = json_pack("{s:s,s:s}", "a", "args", "force", "1");
    assert_int_equal(aemp__config_resolve(cfg, "p", a2, 0, &res, NULL, f->err, sizeof f->err), 0);
    assert_string_equal(sv(res, "a"), "args");
    assert_null(json_object_get(res, "force"));
    json_decref(res);
    json_decref(a2);

    /* NORC: defaults + args only */
    assert_int_equal(aemp__config_resolve(cfg, "p", args, AEMP_CONFIG_NORC, &res, NULL, f->err,
                                          sizeof f->err), 0);
    assert_string_equal(sv(res, "a"), "args");
    assert_null(json_object_get(res, "b"));
    assert_null(json_object_get(res, "d"));
    assert_int_equal(json_integer_value(json_object_get(res, "monitor_timeout")), 30);
    assert_json(json_object_get(res, "binds"), strs("*", NULL, NULL));
    json_decref(res);
    /* no config object at all behaves like NORC */
    assert_int_equal(aemp__config_resolve(NULL, "p", args, 0, &res, NULL, f->err, sizeof f->err),
                     0);
    assert_string_equal(sv(res, "a"), "args");
    assert_null(json_object_get(res, "d"));
    json_decref(res);

    json_decref(args);
    aemp__config_free(cfg);
}

static void resolve_loops_and_unknown_parents(void **state)
{
    struct fx *f = *state;
    json_t *res;
    aemp_config_t *cfg = load_text(f,
        "{\"profile\": {\"a\": {\"parent\": \"b\"}, \"b\": {\"parent\": \"c\"},"
        " \"c\": {\"parent\": \"a\"}, \"self\": {\"parent\": \"self\"},"
        " \"orphan\": {\"parent\": \"ghost\"}, \"bad\": {\"parent\": 3},"
        " \"leaf\": {\"parent\": \"a\"}}}");
    assert_int_equal(aemp__config_resolve(cfg, "a", NULL, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_null(res);
    assert_string_equal(f->err, "profile parent chain loops: a -> b -> c -> a");
    assert_int_equal(aemp__config_resolve(cfg, "leaf", NULL, 0, &res, NULL, f->err,
                                          sizeof f->err), -1);
    assert_string_equal(f->err, "profile parent chain loops: leaf -> a -> b -> c -> a");
    assert_int_equal(aemp__config_resolve(cfg, "self", NULL, 0, &res, NULL, f->err,
                                          sizeof f->err), -1);
    assert_string_equal(f->err, "profile parent chain loops: self -> self");
    assert_int_equal(aemp__config_resolve(cfg, "orphan", NULL, 0, &res, NULL, f->err,
                                          sizeof f->err), -1);
    assert_string_equal(f->err, "profile 'orphan' names unknown parent 'ghost'");
    assert_int_equal(aemp__config_resolve(cfg, "bad", NULL, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_string_equal(f->err, "profile 'bad': key 'parent' must be a string, got number");
    /* NORC never looks at the chain */
    assert_int_equal(aemp__config_resolve(cfg, "a", NULL, AEMP_CONFIG_NORC, &res, NULL, f->err,
                                          sizeof f->err), 0);
    json_decref(res);
    aemp__config_free(cfg);
}

static void resolve_type_errors(void **state)
{
    struct fx *f = *state;
    json_t *res;
    aemp_config_t *cfg = load_text(f,
        "{\"nodelay\": \"0\", \"autocork\": 1, \"my_key\": {\"kept\": true},"
        " \"profile\": {\"p\": {\"nodelay\": [1]}, \"s\": {\"seeds\": [\"a\", 5]},"
        " \"v\": {\"services\": [\"x\", [\"f\", 1], []]}, \"m\": {\"max_frame\": 100},"
        " \"ok\": {\"secure\": \"\"}}}");
    assert_int_equal(aemp__config_resolve(cfg, "p", NULL, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_string_equal(f->err, "profile 'p': key 'nodelay' must be a boolean, got array");
    assert_int_equal(aemp__config_resolve(cfg, "s", NULL, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_string_equal(f->err, "profile 's': key 'seeds' element 2 must be a string, got number");
    assert_int_equal(aemp__config_resolve(cfg, "v", NULL, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_non_null(strstr(f->err, "key 'services' element 3 must be a string or an array"));
    assert_int_equal(aemp__config_resolve(cfg, "m", NULL, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_non_null(strstr(f->err, "key 'max_frame' must be an integer from 1024"));

    json_t *args = json_pack("{s:s}", "monitor_timeout", "abc");
    assert_int_equal(aemp__config_resolve(cfg, "ok", args, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_string_equal(f->err,
                        "configure argument: key 'monitor_timeout' must be a number, got string");
    json_decref(args);
    args = json_pack("{s:i}", "connect_interval", -1);
    assert_int_equal(aemp__config_resolve(cfg, "ok", args, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_string_equal(f->err,
                        "configure argument: key 'connect_interval' must be a positive number, got -1");
    json_decref(args);
    args = json_integer(1);
    assert_int_equal(aemp__config_resolve(cfg, "ok", args, 0, &res, NULL, f->err, sizeof f->err),
                     -1);
    assert_string_equal(f->err, "configure arguments must be an object, got number");
    json_decref(args);

    /* Perl truth values become booleans; unknown keys are kept */
    assert_int_equal(aemp__config_resolve(cfg, "ok", NULL, 0, &res, NULL, f->err, sizeof f->err),
                     0);
    assert_true(json_is_false(json_object_get(res, "nodelay")));
    assert_true(json_is_true(json_object_get(res, "autocork")));
    assert_true(json_is_false(json_object_get(res, "secure")));
    assert_true(json_is_true(json_object_get(json_object_get(res, "my_key"), "kept")));
    json_decref(res);
    aemp__config_free(cfg);

    /* the check function on its own */
    json_t *v = json_string("1e3");
    assert_int_equal(aemp__config_check("monitor_timeout", v, f->err, sizeof f->err), 0);
    json_decref(v);
    v = json_string("0x10");
    assert_int_equal(aemp__config_check("monitor_timeout", v, f->err, sizeof f->err), -1);
    json_decref(v);
    v = json_string("inf");
    assert_int_equal(aemp__config_check("monitor_timeout", v, f->err, sizeof f->err), -1);
    json_decref(v);
    /* the fan-out budget and its cap: positive numbers */
    v = json_integer(0);
    assert_int_equal(aemp__config_check("db_fanout_cpu", v, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "key 'db_fanout_cpu' must be a positive number, got 0");
    json_decref(v);
    v = json_string("soon");
    assert_int_equal(aemp__config_check("db_fanout_max_delay", v, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "key 'db_fanout_max_delay' must be a number, got string");
    json_decref(v);
    v = json_real(0.5);
    assert_int_equal(aemp__config_check("db_fanout_cpu", v, f->err, sizeof f->err), 0);
    assert_int_equal(aemp__config_check("db_fanout_max_delay", v, f->err, sizeof f->err), 0);
    json_decref(v);
    v = json_integer(5);
    assert_int_equal(aemp__config_check("secret", v, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "key 'secret' must be a string, got number");
    assert_int_equal(aemp__config_check("unknown", v, f->err, sizeof f->err), 0);
    json_decref(v);

    /* booleans: words, not any string */
    const char *yes[] = { "1", "true", "Yes", "ON" }, *no[] = { "", "0", "false", "no", "Off" };
    for (size_t i = 0; i < 4; i++) {
        v = json_string(yes[i]);
        assert_int_equal(aemp__config_check("nodelay", v, f->err, sizeof f->err), 0);
        json_t *n = aemp__config_normalise("nodelay", v);
        assert_true(json_is_true(n));
        json_decref(n);
        json_decref(v);
    }
    for (size_t i = 0; i < 5; i++) {
        v = json_string(no[i]);
        json_t *n = aemp__config_normalise("nodelay", v);
        assert_true(json_is_false(n));
        json_decref(n);
        json_decref(v);
    }
    v = json_string("maybe");
    assert_int_equal(aemp__config_check("nodelay", v, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "key 'nodelay' must be a boolean (true/false, 1/0, yes/no, on/off), got \"maybe\"");
    json_decref(v);

    /* endpoints are checked (no lookups), in lists and comma strings */
    v = json_string("127.0.0.1:99999");
    assert_int_equal(aemp__config_check("binds", v, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "key 'binds' element 1: bad endpoint '127.0.0.1:99999'"));
    json_decref(v);
    v = json_pack("[ss]", "no-such-host.invalid:4040", "a:1,b:x");
    assert_int_equal(aemp__config_check("seeds", v, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "key 'seeds' element 2: bad endpoint 'b:x'"));
    json_decref(v);
    v = json_string("a:1,*:2");
    assert_int_equal(aemp__config_check("seeds", v, f->err, sizeof f->err), 0);
    json_t *n = aemp__config_normalise("seeds", v);
    assert_json(n, strs("a:1", "*:2", NULL));
    json_decref(n);
    json_decref(v);

    /* module_path is a key; unknown keys get a suggestion */
    assert_true(aemp__config_known_key("module_path"));
    v = json_string("/a:/b");
    assert_int_equal(aemp__config_check("module_path", v, f->err, sizeof f->err), 0);
    json_decref(v);
    aemp__config_unknown_msg("nodid", f->err, sizeof f->err);
    assert_string_equal(f->err, "'nodid' is not a configuration key libaemp knows (did you mean 'nodeid'?)");
    aemp__config_unknown_msg("zzzzzzzz", f->err, sizeof f->err);
    assert_string_equal(f->err, "'zzzzzzzz' is not a configuration key libaemp knows");
}

/* aemp__config_chain_get: a profile's own value, then its parents', never
 * the global section's. */
static void chain_get(void **state)
{
    struct fx *f = *state;
    aemp_config_t *cfg = load_text(f, chain_rc);
    assert_string_equal(json_string_value(aemp__config_chain_get(cfg, "p", "a")), "p");
    assert_string_equal(json_string_value(aemp__config_chain_get(cfg, "p", "b")), "q");
    assert_string_equal(json_string_value(aemp__config_chain_get(cfg, "p", "c")), "r");
    assert_null(aemp__config_chain_get(cfg, "p", "d"));       /* global only */
    assert_null(aemp__config_chain_get(cfg, "p", "binds"));   /* global only */
    assert_null(aemp__config_chain_get(cfg, "nosuch", "a"));
    aemp__config_free(cfg);
}

/* --------------------------------------------------------------- identity */

static bool all_b62(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", s[i]) || !s[i])
            return false;
    return true;
}

/* node ID from a template (NULL = no nodeid key) */
static int nodeid_of(struct fx *f, const char *tmpl, const char *profile, char **id, bool *rnd)
{
    json_t *cfg = tmpl ? json_pack("{s:s}", "nodeid", tmpl) : json_object();
    int rc = aemp__config_nodeid(cfg, profile, id, rnd, f->err, sizeof f->err);
    json_decref(cfg);
    return rc;
}

static void node_ids(void **state)
{
    struct fx *f = *state;
    char host[256];
    aemp__config_hostname(host, sizeof host);
    char *id;
    bool rnd;

    /* fixed */
    assert_int_equal(nodeid_of(f, "server1", "p", &id, &rnd), 0);
    assert_string_equal(id, "server1");
    assert_false(rnd);
    free(id);

    /* default: "<profile>/" + random */
    assert_int_equal(nodeid_of(f, NULL, "client", &id, &rnd), 0);
    assert_int_equal(strlen(id), 7 + AEMP_CONFIG_RUNIQ_LEN);
    assert_memory_equal(id, "client/", 7);
    assert_true(all_b62(id + 7, AEMP_CONFIG_RUNIQ_LEN));
    assert_true(rnd);
    free(id);

    /* default profile = host name */
    assert_int_equal(nodeid_of(f, NULL, NULL, &id, &rnd), 0);
    assert_memory_equal(id, host, strlen(host));
    assert_int_equal(id[strlen(host)], '/');
    free(id);

    /* %n */
    assert_int_equal(nodeid_of(f, "n-%n-%n", "p", &id, &rnd), 0);
    char want[600];
    snprintf(want, sizeof want, "n-%s-%s", host, host);
    assert_string_equal(id, want);
    assert_false(rnd);
    free(id);

    /* %u and trailing '/' use one random string */
    assert_int_equal(nodeid_of(f, "aemp/%n/%u", "p", &id, &rnd), 0);
    snprintf(want, sizeof want, "aemp/%s/", host);
    assert_memory_equal(id, want, strlen(want));
    assert_int_equal(strlen(id), strlen(want) + AEMP_CONFIG_RUNIQ_LEN);
    assert_true(all_b62(id + strlen(want), AEMP_CONFIG_RUNIQ_LEN));
    assert_true(rnd);
    free(id);
    assert_int_equal(nodeid_of(f, "x%uy/", "p", &id, &rnd), 0);
    assert_int_equal(strlen(id), 3 + 2 * AEMP_CONFIG_RUNIQ_LEN);
    assert_memory_equal(id + 1, id + 3 + AEMP_CONFIG_RUNIQ_LEN, AEMP_CONFIG_RUNIQ_LEN);
    free(id);

    /* anon/ */
    assert_int_equal(nodeid_of(f, "anon/", "p", &id, &rnd), 0);
    assert_int_equal(strlen(id), 5 + AEMP_CONFIG_RUNIQ_LEN);
    assert_memory_equal(id, "anon/", 5);
    assert_true(all_b62(id + 5, AEMP_CONFIG_RUNIQ_LEN));
    char *id2;
    assert_int_equal(nodeid_of(f, "anon/", "p", &id2, NULL), 0);
    assert_string_not_equal(id, id2);
    free(id);
    free(id2);

    /* invalid */
    assert_int_equal(nodeid_of(f, "", "p", &id, &rnd), -1);
    assert_null(id);
    assert_string_equal(f->err, "node ID is empty");
    assert_int_equal(nodeid_of(f, "a#b", "p", &id, &rnd), -1);
    assert_string_equal(f->err, "invalid node ID 'a#b': must not contain '#'");
    assert_int_equal(nodeid_of(f, "a;b", "p", &id, &rnd), -1);
    assert_non_null(strstr(f->err, "';'"));
    assert_int_equal(nodeid_of(f, "a,b", "p", &id, &rnd), -1);
    assert_non_null(strstr(f->err, "','"));
    assert_int_equal(nodeid_of(f, "a\nb", "p", &id, &rnd), -1);
    assert_non_null(strstr(f->err, "line feed"));
    assert_int_equal(nodeid_of(f, "a\rb", "p", &id, &rnd), -1);
    assert_non_null(strstr(f->err, "carriage return"));
    assert_int_equal(nodeid_of(f, NULL, "bad#profile", &id, &rnd), -1);
    json_t *cfg = json_pack("{s:i}", "nodeid", 5);
    assert_int_equal(aemp__config_nodeid(cfg, "p", &id, &rnd, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "key 'nodeid' must be a string, got number");
    json_decref(cfg);
}

static void secrets(void **state)
{
    struct fx *f = *state;
    char a[AEMP_CONFIG_SECRET_LEN + 1], b[AEMP_CONFIG_SECRET_LEN + 1];
    assert_int_equal(aemp__config_gensecret(a, sizeof a, f->err, sizeof f->err), 0);
    assert_int_equal(aemp__config_gensecret(b, sizeof b, f->err, sizeof f->err), 0);
    assert_int_equal(strlen(a), 86);
    assert_true(all_b62(a, 86));
    assert_true(all_b62(b, 86));
    assert_string_not_equal(a, b);
    char small[10];
    assert_int_equal(aemp__config_gensecret(small, sizeof small, f->err, sizeof f->err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(default_path, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(relaxed_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_file_not_overwritten, setup, teardown),
        cmocka_unit_test_setup_teardown(atomic_save_and_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(editing, setup, teardown),
        cmocka_unit_test_setup_teardown(chain_get, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_force_norc, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_loops_and_unknown_parents, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_type_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(node_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
