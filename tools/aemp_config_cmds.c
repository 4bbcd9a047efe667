/* aemp_config_cmds.c - the configuration commands of the aemp tool: they
 * edit the current target (the global section, or the profile chosen with
 * `profile NAME`) of the rc file in memory; aemp.c saves it at the end.
 */
#include "aemp_cli.h"

#include "endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Remember that the global secret was dealt with (so that saving a new
 * file does not add one behind the user's back). */
static void note_key(cli_t *c, const char *key)
{
    if (!strcmp(key, "secret") && !aemp__config_target(c->cfg))
        c->secret_explicit = true;
}

/* Store value (stolen) under key in the current target. */
static int set_value(cli_t *c, const char *key, json_t *value)
{
    char err[512];
    if (aemp__config_set(c->cfg, key, value, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    note_key(c, key);
    return CLI_OK;
}

/* Remove key from the current target. */
static int del_value(cli_t *c, const char *key)
{
    char err[512];
    if (!strcmp(key, "parent")) {
        aemp__config_del_parent(c->cfg);
        return CLI_OK;
    }
    if (aemp__config_del(c->cfg, key, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    note_key(c, key);
    return CLI_OK;
}

/* setX VALUE (and its alias X): set the command's key. */
int cli_cmd_set_key(cli_t *c, const cli_cmd_t *cmd)
{
    json_t *arg = cli_json_arg(c, cmd->args);
    if (!arg)
        return CLI_USAGE;
    if (!cli_config(c)) {
        json_decref(arg);
        return CLI_FAIL;
    }
    return set_value(c, cmd->key, cli_value_for(cmd->key, arg));
}

/* delX: remove the command's key. */
int cli_cmd_del_key(cli_t *c, const cli_cmd_t *cmd)
{
    if (!cli_config(c))
        return CLI_FAIL;
    return del_value(c, cmd->key);
}

/* addseed / addbind (unique) and addservice (duplicates allowed). */
int cli_cmd_add_item(cli_t *c, const cli_cmd_t *cmd)
{
    json_t *arg = cli_json_arg(c, cmd->args);
    if (!arg)
        return CLI_USAGE;
    if (!cli_config(c)) {
        json_decref(arg);
        return CLI_FAIL;
    }
    char err[512];
    bool unique = strcmp(cmd->key, "services") != 0;
    if (aemp__config_add_item(c->cfg, cmd->key, arg, unique, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* delseed / delbind (every equal entry) and delservice (the first). */
int cli_cmd_del_item(cli_t *c, const cli_cmd_t *cmd)
{
    json_t *arg = cli_json_arg(c, cmd->args);
    if (!arg)
        return CLI_USAGE;
    int rc = CLI_OK;
    char err[512];
    bool all = strcmp(cmd->key, "services") != 0;
    if (!cli_config(c)) {
        rc = CLI_FAIL;
    } else if (aemp__config_del_item(c->cfg, cmd->key, arg, all, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        rc = CLI_FAIL;
    }
    json_decref(arg);
    return rc;
}

/* set KEY VALUE: any key; unknown keys are stored with a warning. */
int cli_cmd_set(cli_t *c, const cli_cmd_t *cmd)
{
    const char *key = cli_str_arg(c, "KEY");
    if (!key)
        return CLI_USAGE;
    json_t *arg = cli_json_arg(c, "VALUE");
    if (!arg)
        return CLI_USAGE;
    if (!cli_config(c)) {
        json_decref(arg);
        return CLI_FAIL;
    }
    if (!aemp__config_known_key(key)) {
        char msg[256];
        aemp__config_unknown_msg(key, msg, sizeof msg);
        cli_err(c, "warning: %s; storing it anyway", msg);
    }
    return set_value(c, key, cli_value_for(key, arg));
}

/* del KEY: remove any key. */
int cli_cmd_del(cli_t *c, const cli_cmd_t *cmd)
{
    const char *key = cli_str_arg(c, "KEY");
    if (!key)
        return CLI_USAGE;
    if (!cli_config(c))
        return CLI_FAIL;
    if (!aemp__config_known_key(key)) {
        char msg[256];
        aemp__config_unknown_msg(key, msg, sizeof msg);
        cli_err(c, "warning: %s", msg);
    }
    return del_value(c, key);
}

/* gensecret: a new random secret. */
int cli_cmd_gensecret(cli_t *c, const cli_cmd_t *cmd)
{
    if (!cli_config(c))
        return CLI_FAIL;
    char secret[AEMP_CONFIG_SECRET_LEN + 1], err[256];
    if (aemp__config_gensecret(secret, sizeof secret, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    return set_value(c, "secret", json_string(secret));
}

/* Read a whole (small) file into a malloc'd string; NULL with errno. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= (1u << 24)) {
                free(buf);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        errno = buf ? EIO : ENOMEM;
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* setcert FILE (alias cert): store the file's PEM content. */
int cli_cmd_setcert(cli_t *c, const cli_cmd_t *cmd)
{
    const char *file = cli_str_arg(c, "FILE");
    if (!file)
        return CLI_USAGE;
    if (!cli_config(c))
        return CLI_FAIL;
    char *pem = read_text(file);
    if (!pem) {
        cli_err(c, "cannot read '%s': %s", file, strerror(errno));
        return CLI_FAIL;
    }
    json_t *v = json_string(pem);
    free(pem);
    if (!v) {
        cli_err(c, "'%s' is not a text (PEM) file", file);
        return CLI_FAIL;
    }
    return set_value(c, "cert", v);
}

/* gencert: a new self-signed certificate and key in "cert". */
int cli_cmd_gencert(cli_t *c, const cli_cmd_t *cmd)
{
    if (!cli_config(c))
        return CLI_FAIL;
    char *pem = NULL, err[256];
    if (cli_gencert(&pem, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    json_t *v = json_string(pem);
    free(pem);
    return set_value(c, "cert", v);
}

/* The commands that apply one rc-file operation to a NAME argument. */
static int name_op(cli_t *c, int (*op)(aemp_config_t *, const char *, char *, size_t))
{
    const char *name = cli_str_arg(c, "NAME");
    if (!name)
        return CLI_USAGE;
    if (!cli_config(c))
        return CLI_FAIL;
    char err[512];
    if (op(c->cfg, name, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* profile NAME: make NAME the current target (created if missing). */
int cli_cmd_profile(cli_t *c, const cli_cmd_t *cmd)
{
    return name_op(c, aemp__config_select);
}

/* delprofile NAME. */
int cli_cmd_delprofile(cli_t *c, const cli_cmd_t *cmd)
{
    return name_op(c, aemp__config_del_profile);
}

/* setparent NAME (alias parent). */
int cli_cmd_setparent(cli_t *c, const cli_cmd_t *cmd)
{
    return name_op(c, aemp__config_set_parent);
}

/* delparent. */
int cli_cmd_delparent(cli_t *c, const cli_cmd_t *cmd)
{
    if (!cli_config(c))
        return CLI_FAIL;
    aemp__config_del_parent(c->cfg);
    return CLI_OK;
}

/* showprofile NAME: the profile's own values. */
int cli_cmd_showprofile(cli_t *c, const cli_cmd_t *cmd)
{
    const char *name = cli_str_arg(c, "NAME");
    if (!name)
        return CLI_USAGE;
    if (!cli_config(c))
        return CLI_FAIL;
    json_t *out = NULL;
    char err[512];
    if (aemp__config_show(c->cfg, name, &out, err, sizeof err) < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    cli_print_pretty(out);
    json_decref(out);
    return CLI_OK;
}

/* showconfig [NAME [KEY VALUE...]]: the merged configuration. */
int cli_cmd_showconfig(cli_t *c, const cli_cmd_t *cmd)
{
    const char *name = NULL;
    if (cli_left(c) && !(name = cli_str_arg(c, "NAME")))
        return CLI_USAGE;
    json_t *args = cli_pairs(c);
    if (!args)
        return CLI_USAGE;
    if (!cli_config(c)) {
        json_decref(args);
        return CLI_FAIL;
    }
    json_t *out = NULL;
    char err[512];
    int r = aemp__config_resolve(c->cfg, name, args, 0, &out, NULL, err, sizeof err);
    json_decref(args);
    if (r < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    cli_print_pretty(out);
    json_decref(out);
    return CLI_OK;
}

/* Print each string of a jansson array (the endpoint code's result) on
 * its own line. */
static void print_lines(const json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
        if (json_is_string(v))
            puts(json_string_value(v));
}

/* _resolve ENDPOINTS: print the resolved endpoints, one per line. */
int cli_cmd_resolve(cli_t *c, const cli_cmd_t *cmd)
{
    json_t *arg = cli_json_arg(c, "ENDPOINTS");
    if (!arg)
        return CLI_USAGE;
    json_t *out = NULL;
    char err[512];
    int r = aemp__endpoint_resolve(arg, 0, &out, err, sizeof err);
    json_decref(arg);
    if (r < 0) {
        cli_err(c, "%s", err);
        return CLI_FAIL;
    }
    print_lines(out);
    json_decref(out);
    return CLI_OK;
}

/* The throw-away client node's configure arguments (2.02 aemp's). */
json_t *cli_client_args(void)
{
    return json_pack("{s:s, s:s}", "profile", "aemp", "nodeid", "aemp/%n/%u");
}

/* The client node's whole configuration, resolved here: profile "aemp"
 * with the client's defaults, binds only from that profile's chain (a
 * client listens nowhere: it reaches other nodes through its seeds), and
 * norc, as the rc file has been read already. */
json_t *cli_client_config(cli_t *c)
{
    if (!cli_config(c))
        return NULL;
    json_t *args = cli_client_args(), *eff = NULL;
    char err[512];
    int r = aemp__config_resolve(c->cfg, NULL, args, 0, &eff, NULL, err, sizeof err);
    json_decref(args);
    if (r < 0) {
        cli_err(c, "%s", err);
        return NULL;
    }
    const char *k;
    json_t *v, *tmp;
    json_object_foreach_safe(eff, tmp, k, v)
        if (!aemp__config_known_key(k))
            json_object_del(eff, k);   /* nothing on a client reads them */
    json_t *binds = aemp__config_chain_get(c->cfg, "aemp", "binds");
    json_object_set_new(eff, "binds", binds ? json_deep_copy(binds) : json_array());
    json_object_set_new(eff, "profile", json_string("aemp"));
    json_object_set_new(eff, "norc", json_true());
    return eff;
}

/* The resolved seeds of a profile's effective configuration. */
json_t *cli_resolved_seeds(cli_t *c, const char *profile, const json_t *args)
{
    if (!cli_config(c))
        return NULL;
    json_t *cargs = args ? NULL : cli_client_args();
    json_t *eff = NULL, *out = NULL;
    char err[512];
    int r = aemp__config_resolve(c->cfg, profile, args ? args : cargs, 0, &eff, NULL, err,
                                 sizeof err);
    json_decref(cargs);
    if (r < 0) {
        cli_err(c, "%s", err);
        return NULL;
    }
    json_t *seeds = json_object_get(eff, "seeds");
    if (!seeds)
        out = json_array();
    else if (aemp__endpoint_resolve(seeds, AEMP_ENDPOINT_SKIP_UNRESOLVED, &out, err, sizeof err) < 0)
        cli_err(c, "%s", err);
    else if (err[0])
        cli_err(c, "warning: %s (skipped)", err);
    json_decref(eff);
    return out;
}

/* seeds LIST sets the seeds (alias of setseeds); `seeds` as the last word
 * prints the resolved seeds of the current profile (default: "aemp", the
 * protocol commands' profile). */
int cli_cmd_seeds(cli_t *c, const cli_cmd_t *cmd)
{
    if (cli_left(c))
        return cli_cmd_set_key(c, cmd);
    if (!cli_config(c))
        return CLI_FAIL;
    const char *target = aemp__config_target(c->cfg);
    json_t *seeds = cli_resolved_seeds(c, target ? target : "aemp", NULL);
    if (!seeds)
        return CLI_FAIL;
    print_lines(seeds);
    json_decref(seeds);
    return CLI_OK;
}
