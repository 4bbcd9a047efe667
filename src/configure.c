/* configure.c - aemp_configure: resolve the configuration (config.c),
 * then apply it: node ID, secret, TLS certificate, dialect and method lists,
 * timeouts, listeners on the binds, seeds. */
#include "frame.h"   /* before node.h, which uses aemp_frame_t */
#include "node.h"

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "destcache.h"
#include "endpoint.h"
#include "metrics.h"
#include "module.h"
#include "global.h"
#include "proto.h"
#include "tls.h"
#include "util.h"

#include "aemp_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Whether a method or framing belongs to a dialect we speak. */
static int in_dialect(int m, int framing, unsigned dialects)
{
    if (!dialects || dialects == AEMP_DIALECT_BOTH)
        return 1;
    if (framing)
        return dialects == AEMP_DIALECT_202 || m == AEMP_FRAMING_JSON;
    int md6 = m == AEMP_AUTH_HMAC_MD6_64_256 || m == AEMP_AUTH_TLS_MD6_64_256;
    int sha3 = m == AEMP_AUTH_HMAC_SHA3_512 || m == AEMP_AUTH_TLS_SHA3_512;
    return dialects == AEMP_DIALECT_130 ? !sha3 : !md6;
}

/* Names from a JSON array into a 0-terminated list of enum values; names
 * this implementation does not know (e.g. "storable") and methods of a
 * dialect the node does not speak are skipped. */
static int method_list(const json_t *names, int *out, size_t max, int framing, unsigned dialects,
                       const char *key, char *err, size_t errlen)
{
    size_t n = 0, i;
    json_t *v;
    memset(out, 0, max * sizeof *out);
    if (!names)
        return 0;
    json_array_foreach(names, i, v) {
        if (!json_is_string(v))
            return fail(err, errlen, AEMP_ECONFIG, "%s: entries must be strings", key);
        int m = framing ? (int)aemp__framing_parse(json_string_value(v), json_string_length(v))
                        : (int)aemp__auth_parse(json_string_value(v), json_string_length(v));
        if (m && in_dialect(m, framing, dialects) && n + 1 < max)
            out[n++] = m;
    }
    if (!n && json_array_size(names))
        return fail(err, errlen, AEMP_ECONFIG, "%s: none of the listed methods is supported", key);
    return 0;
}

static double number(const json_t *cfg, const char *key, double dflt)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_string(v))
        return atof(json_string_value(v));
    return dflt;
}

/* Listen on every resolved bind address (a JSON array of "ip:port", may be
 * NULL) and return our bound addresses as a new message ["ip:port", ...]
 * (empty for no binds).  On failure every listener opened here is closed
 * again, *code receives the AEMP_E* code, err the reason, and NULL is
 * returned. */
static aemp_msg_t *open_listeners(const json_t *binds, char *err, size_t errlen, int *code)
{
    aemp_build_t *b = aemp_build_new();
    size_t i;
    json_t *addr;
    char e[512];
    json_array_foreach(binds, i, addr) {
        char bound[AEMP_ENDPOINT_STRMAX];
        int lr = aemp__conn_listen(json_string_value(addr), bound, sizeof bound, e, sizeof e);
        if (lr < 0) {
            aemp__conn_listeners_close();
            aemp_build_abort(b);
            *code = fail(err, errlen, lr, "%s", e);
            return NULL;
        }
        aemp_build_str(b, bound);
    }
    aemp_msg_t *m = aemp_build_msg(b);
    if (!m) {   /* a few short strings: not beyond any limit */
        aemp__conn_listeners_close();
        *code = fail(err, errlen, AEMP_ECONFIG, "cannot record the listener addresses");
    }
    return m;
}

/* Apply a resolved configuration.  Returns 0 or an AEMP_E* code. */
static int apply(const json_t *cfg, const char *profile, char *err, size_t errlen)
{
    struct aemp_net *net = &aemp__g.net;
    char *id = NULL;
    char e[512];
    if (aemp__config_nodeid(cfg, profile, &id, NULL, e, sizeof e) < 0)
        return fail(err, errlen, AEMP_ECONFIG, "%s", e);

    unsigned dialects = 0;
    const char *d = json_string_value(json_object_get(cfg, "dialect"));
    if (!d || !strcmp(d, "both"))
        dialects = 0;
    else if (!strcmp(d, "1.30"))
        dialects = AEMP_DIALECT_130;
    else if (!strcmp(d, "2.02"))
        dialects = AEMP_DIALECT_202;
    else {
        free(id);
        return fail(err, errlen, AEMP_ECONFIG, "dialect must be \"both\", \"1.30\" or \"2.02\", got \"%s\"", d);
    }
    int offer[8], accept[8], framings[4];
    int r;
    if ((r = method_list(json_object_get(cfg, "auth_offer"), offer, 8, 0, dialects, "auth_offer", err, errlen)) ||
        (r = method_list(json_object_get(cfg, "auth_accept"), accept, 8, 0, dialects, "auth_accept", err, errlen)) ||
        (r = method_list(json_object_get(cfg, "framing_format"), framings, 4, 1, dialects, "framing_format", err,
                         errlen))) {
        free(id);
        return r;
    }

    /* TLS: a non-empty `cert` (key + certificate + optional CA certificates,
     * PEM) becomes the node's TLS context; a bad one is a config error */
    aemp_tls_ctx_t *tls = NULL;
    const json_t *cert = json_object_get(cfg, "cert");
    if (cert && !json_is_null(cert) && !json_is_string(cert)) {
        free(id);
        return fail(err, errlen, AEMP_ECONFIG, "cert: must be a string (PEM text)");
    }
    if (json_string_length(cert)
        && !(tls = aemp__tls_ctx_new(json_string_value(cert), json_string_length(cert), e, sizeof e))) {
        free(id);
        return fail(err, errlen, AEMP_ECONFIG, "%s", e);
    }

    /* resolve endpoints before changing anything */
    json_t *binds = NULL, *seeds = NULL;
    json_t *bl = json_object_get(cfg, "binds");
    if (bl && aemp__endpoint_resolve(bl, 0, &binds, e, sizeof e) < 0) {
        free(id);
        aemp__tls_ctx_free(tls);
        return fail(err, errlen, AEMP_ECONFIG, "binds: %s", e);
    }
    json_t *sl = json_object_get(cfg, "seeds");
    if (sl && aemp__endpoint_resolve(sl, AEMP_ENDPOINT_SKIP_UNRESOLVED, &seeds, e, sizeof e) < 0) {
        free(id);
        aemp__tls_ctx_free(tls);
        json_decref(binds);
        return fail(err, errlen, AEMP_ECONFIG, "seeds: %s", e);
    }
    if (sl && e[0])
        aemp_log(AEMP_LOG_WARN, "seeds: %s (skipped)", e);

    /* listeners first: the only step that can still fail, and on failure
     * nothing may have changed */
    /* the metrics endpoint (optional), checked before anything changes */
    const json_t *mv = json_object_get(cfg, "metrics");
    if (mv && !json_is_null(mv) && !json_is_string(mv)) {
        free(id);
        aemp__tls_ctx_free(tls);
        json_decref(binds);
        json_decref(seeds);
        return fail(err, errlen, AEMP_ECONFIG, "metrics: must be an endpoint string (\"127.0.0.1:9464\")");
    }
    const char *metrics = json_string_length(mv) ? json_string_value(mv) : NULL;
    int old_backlog = net->listen_backlog;
    net->listen_backlog = (int)number(cfg, "listen_backlog", 0);
    aemp_msg_t *listeners = open_listeners(binds, err, errlen, &r);
    json_decref(binds);
    if (!listeners) {
        net->listen_backlog = old_backlog;
        json_decref(seeds);
        aemp__tls_ctx_free(tls);
        free(id);
        return r;
    }

    if (metrics) {
        char bound[AEMP_ENDPOINT_STRMAX];
        if ((r = aemp__metrics_start(metrics, bound, sizeof bound, e, sizeof e)) != 0) {
            aemp__conn_listeners_close();
            aemp_msg_unref(listeners);
            json_decref(seeds);
            aemp__tls_ctx_free(tls);
            free(id);
            return fail(err, errlen, AEMP_ECONFIG, "%s", e);
        }
    }

    /* the node ID: ports created from now on carry it */
    free(aemp__g.nodeid);
    aemp__g.nodeid = id;
    aemp__g.nodeid_len = strlen(id);
    aemp__ports_nodeid_changed();
    aemp__destcache_clear();   /* a cached remote ID may name us now */

    const char *secret = json_string_value(json_object_get(cfg, "secret"));
    free(net->secret);
    net->secret = NULL;
    net->secretlen = 0;
    if (secret && *secret) {
        net->secretlen = strlen(secret);
        net->secret = (unsigned char *)strdup(secret);
    }
    aemp__tls_ctx_free(net->tls);
    net->tls = tls;
    net->dialects = dialects;
    memcpy(net->offer, offer, sizeof offer);
    memcpy(net->accept, accept, sizeof accept);
    memcpy(net->framings, framings, sizeof framings);
    net->monitor_timeout = number(cfg, "monitor_timeout", 30);
    net->connect_interval = number(cfg, "connect_interval", 2);
    net->max_frame = (size_t)number(cfg, "max_frame", 16u << 20);
    net->max_queue = (size_t)number(cfg, "max_send_queue", (double)AEMP_DEFAULT_MAX_SEND_QUEUE);
    net->max_connect_queue = (size_t)number(cfg, "max_connect_queue", (double)AEMP_DEFAULT_MAX_CONNECT_QUEUE);
    net->max_connect_queue_total =
        (size_t)number(cfg, "max_connect_queue_total", (double)AEMP_DEFAULT_MAX_CONNECT_QUEUE_TOTAL);
    net->max_connecting_nodes =
        (size_t)number(cfg, "max_connecting_nodes", (double)AEMP_DEFAULT_MAX_CONNECTING_NODES);
    net->max_unauth = (size_t)number(cfg, "max_unauthenticated", (double)AEMP_DEFAULT_MAX_UNAUTHENTICATED);
    net->dataconn_max_pending =
        (size_t)number(cfg, "dataconn_max_pending", (double)AEMP_DEFAULT_DATACONN_MAX_PENDING);
    net->db_fanout_cpu = number(cfg, "db_fanout_cpu", AEMP_DEFAULT_DB_FANOUT_CPU);
    net->db_fanout_max_delay = number(cfg, "db_fanout_max_delay", AEMP_DEFAULT_DB_FANOUT_MAX_DELAY);
    net->secure = aemp__json_truthy(json_object_get(cfg, "secure"));
    json_t *nd = json_object_get(cfg, "nodelay");
    net->nodelay = !nd || aemp__json_truthy(nd);

    aemp_msg_unref(net->listeners);
    net->listeners = listeners;
    json_decref(net->seeds);
    net->seeds = seeds ? seeds : json_array();
    net->configured = 1;
    aemp_log(AEMP_LOG_DEBUG, "configured as %s", aemp__g.nodeid);
    aemp__seeds_start(net->seeds);
    aemp__global_start();
    aemp__services_start(cfg);
    return 0;
}

/* Warn about configure arguments that do not do what they say: a key that
 * is not known (kept, for services to read), and, unless force is set, a
 * value that the rc file overrides (AnyEvent::MP's precedence: the rc file
 * wins), naming the rc file's section. */
static void warn_args(const aemp_config_t *cfg, const char *profile, const json_t *args,
                      const json_t *merged)
{
    const char *k;
    json_t *v;
    char msg[256];
    bool force = aemp__json_truthy(json_object_get(args, "force"));
    json_object_foreach((json_t *)args, k, v) {
        if (!aemp__config_known_key(k)) {
            aemp__config_unknown_msg(k, msg, sizeof msg);
            aemp_log(AEMP_LOG_WARN, "configure argument: %s; it is kept for services to read", msg);
            continue;
        }
        const json_t *now = json_object_get(merged, k);
        if (force || !now)
            continue;
        json_t *want = aemp__config_normalise(k, v);
        if (!json_equal(want, now)) {
            char *a = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);
            char *b = json_dumps(now, JSON_ENCODE_ANY | JSON_COMPACT);
            const char *path = aemp__config_path(cfg);
            if (aemp__config_chain_get(cfg, profile, k))
                aemp_log(AEMP_LOG_WARN, "configure argument %s %s is overridden by profile '%s' of %s (%s); "
                         "the rc file wins unless the argument force is true", k, a, profile, path, b);
            else
                aemp_log(AEMP_LOG_WARN, "configure argument %s %s is overridden by the global section of %s "
                         "(%s); the rc file wins unless the argument force is true", k, a, path, b);
            free(a);
            free(b);
        }
        json_decref(want);
    }
}

int aemp_configure(const aemp_msg_t *args, char *err, size_t errlen)
{
    aemp__ensure_init();
    if (aemp__g.net.configured)
        return fail(err, errlen, AEMP_EAGAIN, "the node is already configured");
    if (args && aemp_val_type(aemp_msg_root(args)) != AEMP_T_MAP)
        return fail(err, errlen, AEMP_EINVAL, "configure arguments must be a map, got %s",
                    aemp_type_name(aemp_val_type(aemp_msg_root(args))));
    /* the merge with the rc file is jansson's work (config.c) */
    json_t *jargs = args ? aemp_msg_to_json(args) : NULL;
    char e[512];
    aemp_config_t *cfg = NULL;
    if (!aemp__json_truthy(json_object_get(jargs, "norc"))) {
        char *path = NULL;
        if (aemp__config_default_path(&path, e, sizeof e) == 0) {
            int lr = aemp__config_load(path, &cfg, e, sizeof e);
            free(path);
            if (lr < 0) {
                aemp__config_free(cfg);
                json_decref(jargs);
                return fail(err, errlen, AEMP_ECONFIG, "%s", e);
            }
        }
    }
    json_t *merged = NULL;
    char *profile = NULL;
    int rr = aemp__config_resolve(cfg, NULL, jargs, 0, &merged, &profile, e, sizeof e);
    if (rr == 0)
        warn_args(cfg, profile, jargs, merged);
    aemp__config_free(cfg);
    json_decref(jargs);
    if (rr < 0)
        return fail(err, errlen, AEMP_ECONFIG, "%s", e);
    int r = apply(merged, profile, err, errlen);
    json_decref(merged);
    free(profile);
    return r;
}

int aemp_configuref(char *err, size_t errlen, const char *fmt, ...)
{
    if (!fmt)
        return fail(err, errlen, AEMP_EINVAL, "bad configure format: no format");
    va_list ap;
    va_start(ap, fmt);
    aemp_msg_t *args = aemp_vvalf(fmt, ap);   /* logs why a format fails */
    va_end(ap);
    if (!args)
        return fail(err, errlen, AEMP_EINVAL, "bad configure format \"%s\": it must describe exactly one complete map",
                    fmt);
    int r = aemp_configure(args, err, errlen);
    aemp_msg_unref(args);
    return r;
}

aemp_msg_t *aemp_listeners(void)
{
    aemp__ensure_init();
    aemp_msg_t *l = aemp__g.net.listeners;
    return l ? aemp_msg_ref(l) : aemp_msg_empty();
}
