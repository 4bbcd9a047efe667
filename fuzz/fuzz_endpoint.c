/* fuzz_endpoint.c - libFuzzer target for the endpoint parser of
 * src/endpoint.c ("host:port", "[v6]:port", "*:port", ...).
 *
 * Input: one endpoint text (cut at a NUL byte, as C strings are).
 * Properties (a violation aborts):
 *  - parse fails with a message "bad endpoint '...': why", or gives a
 *    non-empty host made of host-name characters, "*", or an IPv6 literal;
 *  - the canonical form of a parsed endpoint ("host:port", "[v6]:port")
 *    parses to the same host and port;
 *  - a numeric endpoint gives a socket address whose formatted text gives
 *    the same address again (and formats the same);
 *  - the text as a comma list whose every part is numeric (or "*") resolves
 *    without a name lookup to addresses that all convert back, with each
 *    numeric part's address among them and no duplicates.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message about a violated property. */
static void violation(const char *what, const char *input, const char *detail)
{
    fprintf(stderr, "endpoint property violated: %s\n  input  '%.300s'\n  detail '%.300s'\n",
            what, input, detail ? detail : "-");
    abort();
}

/* True if the host is "*", a name/IPv4 of [A-Za-z0-9._-], or holds ':'
 * (an IPv6 literal; the parser checked it with inet_pton). */
static int host_ok(const char *h)
{
    if (!*h)
        return 0;
    if (!strcmp(h, "*") || strchr(h, ':'))
        return 1;
    for (; *h; h++)
        if (!isalnum((unsigned char)*h) && !strchr("-._", *h))
            return 0;
    return 1;
}

/* The address and port of a socket address, comparable with memcmp. */
typedef struct addr_key {
    int family;
    uint8_t addr[16];
    uint16_t port;
} addr_key_t;

static addr_key_t key_of(const struct sockaddr_storage *ss)
{
    addr_key_t k;
    memset(&k, 0, sizeof k);
    k.family = ss->ss_family;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(k.addr, &in->sin_addr, 4);
        k.port = in->sin_port;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(k.addr, &in6->sin6_addr, 16);
        k.port = in6->sin6_port;
    }
    return k;
}

/* The numeric endpoint s as a socket address, formatted; 0 or -1 if it is
 * not numeric.  Checks the format/convert-back property on the way. */
static int numeric(const char *s, char *text, size_t n, addr_key_t *key)
{
    struct sockaddr_storage ss, again;
    socklen_t len, len2;
    char err[256], text2[AEMP_ENDPOINT_STRMAX];
    if (aemp__endpoint_sockaddr(s, &ss, &len, err, sizeof err) < 0) {
        if (strncmp(err, "bad endpoint '", 14))
            violation("a failed conversion says 'bad endpoint'", s, err);
        return -1;
    }
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        violation("a numeric endpoint is IPv4 or IPv6", s, NULL);
    if (aemp__endpoint_format((struct sockaddr *)&ss, text, n, err, sizeof err) < 0)
        violation("a converted address formats", s, err);
    if (aemp__endpoint_sockaddr(text, &again, &len2, err, sizeof err) < 0)
        violation("a formatted address converts back", text, err);
    *key = key_of(&ss);
    addr_key_t k2 = key_of(&again);
    if (memcmp(key, &k2, sizeof k2))
        violation("a formatted address converts back to the same address", s, text);
    if (aemp__endpoint_format((struct sockaddr *)&again, text2, sizeof text2, err, sizeof err) < 0
        || strcmp(text, text2))
        violation("formatting is a fixed point", text, text2);
    return 0;
}

/* The parse properties for one endpoint text. */
static void check_parse(const char *s)
{
    aemp_endpoint_t ep, ep2;
    char err[256], canon[AEMP_ENDPOINT_HOSTMAX + 16];
    err[0] = 0;
    if (aemp__endpoint_parse(s, &ep, err, sizeof err) < 0) {
        if (strncmp(err, "bad endpoint '", 14) || !strstr(err, "': "))
            violation("a refused endpoint says 'bad endpoint '...': why'", s, err);
        return;
    }
    if (strnlen(ep.host, sizeof ep.host) == sizeof ep.host || !host_ok(ep.host))
        violation("a parsed host is a name, '*' or an IPv6 literal", s, ep.host);
    snprintf(canon, sizeof canon, strchr(ep.host, ':') ? "[%s]:%u" : "%s:%u", ep.host,
             (unsigned)ep.port);
    if (aemp__endpoint_parse(canon, &ep2, err, sizeof err) < 0)
        violation("the canonical form parses", canon, err);
    if (strcmp(ep.host, ep2.host) || ep.port != ep2.port)
        violation("the canonical form parses to the same endpoint", s, canon);
}

/* The resolve properties when every comma part of s is numeric or "*"
 * (then no name is looked up). */
static void check_resolve(const char *s)
{
    addr_key_t keys[8];
    size_t nkeys = 0;
    int parts = 0;
    char part[600], text[AEMP_ENDPOINT_STRMAX];
    for (const char *p = s;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n >= sizeof part)
            return;
        memcpy(part, p, n);
        part[n] = 0;
        if (part[strspn(part, " \t\n\r\f\v")]) {
            aemp_endpoint_t ep;
            parts++;
            if (nkeys < 8 && numeric(part, text, sizeof text, &keys[nkeys]) == 0)
                nkeys++;
            else if (aemp__endpoint_parse(part, &ep, NULL, 0) < 0 || strcmp(ep.host, "*"))
                return;   /* a name: resolving it would look it up */
        }
        if (!c)
            break;
        p = c + 1;
    }
    if (!parts)
        return;   /* empty: the host name, looked up */

    json_t *list = json_string(s), *out = NULL;
    char err[256];
    if (!list)
        return;   /* not UTF-8: no configuration holds it */
    if (aemp__endpoint_resolve(list, 0, &out, err, sizeof err) < 0)
        violation("numeric endpoints resolve", s, err);
    size_t i;
    json_t *v;
    addr_key_t got[64];
    size_t ngot = 0;
    json_array_foreach(out, i, v) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (!json_is_string(v)
            || aemp__endpoint_sockaddr(json_string_value(v), &ss, &len, err, sizeof err) < 0)
            violation("a resolved address converts", s, json_string_value(v));
        addr_key_t k = key_of(&ss);
        for (size_t j = 0; j < ngot; j++)
            if (!memcmp(&got[j], &k, sizeof k))
                violation("resolved addresses have no duplicates", s, json_string_value(v));
        if (ngot < 64)
            got[ngot++] = k;
    }
    for (size_t j = 0; j < nkeys; j++) {
        size_t g = 0;
        while (g < ngot && memcmp(&got[g], &keys[j], sizeof keys[j]))
            g++;
        if (g == ngot && ngot < 64)
            violation("every numeric part is among the resolved addresses", s, NULL);
    }
    json_decref(out);
    json_decref(list);
}

/* One input.  Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    check_parse(s);
    check_resolve(s);
    free(s);
    return 0;
}
