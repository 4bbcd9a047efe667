/* endpoint.c - parsing and resolving "host:port" endpoints (binds, seeds).
 *
 * Follows AnyEvent::MP's rules (spec §6.5) with AnyEvent::Socket's
 * parse_hostport syntax, minus service names (ports are numeric).
 */
#include "endpoint.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

/* Longest endpoint string accepted by the parser. */
#define MAX_ENDPOINT 512

static void hostname(char *buf, size_t n)
{
    struct utsname u;
    if (uname(&u) == 0 && u.nodename[0])
        snprintf(buf, n, "%s", u.nodename);
    else
        snprintf(buf, n, "%s", "localhost");
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* An IPv6 literal, optionally with "%scope". */
static bool ipv6_literal(const char *s)
{
    char buf[MAX_ENDPOINT];
    struct in6_addr a;
    snprintf(buf, sizeof buf, "%s", s);
    char *pct = strchr(buf, '%');
    if (pct) {
        if (!pct[1])
            return false;
        for (char *p = pct + 1; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
                return false;
        *pct = 0;
    }
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* A host name or IPv4 literal: letters, digits, '-', '.', '_'; or "*". */
static const char *bad_host_char(const char *s)
{
    if (!strcmp(s, "*"))
        return NULL;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-._", *s))
            return s;
    return NULL;
}

/* Port text: "" or "*" => 0, else decimal 0..65535.  Writes the reason into
 * why on failure. */
static int parse_port(const char *s, uint16_t *port, char *why, size_t n)
{
    if (!*s || !strcmp(s, "*")) {
        *port = 0;
        return 0;
    }
    if (!all_digits(s)) {
        snprintf(why, n, "port '%.40s' is not a number", s);
        return -1;
    }
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535) {
            snprintf(why, n, "port %.40s is out of range (0-65535)", s);
            return -1;
        }
    }
    *port = (uint16_t)v;
    return 0;
}

static int set_host(aemp_endpoint_t *ep, const char *h, char *why, size_t n)
{
    if (strlen(h) >= sizeof ep->host) {
        snprintf(why, n, "host name too long");
        return -1;
    }
    snprintf(ep->host, sizeof ep->host, "%s", h);
    return 0;
}

int aemp__endpoint_parse(const char *s, aemp_endpoint_t *ep, char *err, size_t errlen)
{
    char t[MAX_ENDPOINT];
    char why[160];
    const char *b = s, *e = s + strlen(s);
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    memset(ep, 0, sizeof *ep);
    if ((size_t)(e - b) >= sizeof t) {
        aemp__seterr(err, errlen, "bad endpoint '%.40s...': too long", b);
        return -1;
    }
    memcpy(t, b, (size_t)(e - b));
    t[e - b] = 0;

    const char *portstr = "";
    if (!*t || all_digits(t)) {
        /* "" / "4040": this host */
        hostname(ep->host, sizeof ep->host);
        portstr = t;
    } else if (t[0] == '[') {
        char *close = strchr(t, ']');
        if (!close) {
            snprintf(why, sizeof why, "missing ']'");
            goto bad;
        }
        *close = 0;
        const char *h = t + 1;
        const char *rest = close + 1;
        if (!*h) {
            snprintf(why, sizeof why, "empty address in []");
            goto bad;
        }
        if (strchr(h, ':') ? !ipv6_literal(h) : bad_host_char(h) != NULL || !strcmp(h, "*")) {
            snprintf(why, sizeof why, "'%.60s' is not a valid address", h);
            goto bad;
        }
        if (set_host(ep, h, why, sizeof why) < 0)
            goto bad;
        if (*rest == ':')
            portstr = rest + 1;
        else if (*rest) {
            snprintf(why, sizeof why, "unexpected '%.40s' after ']'", rest);
            goto bad;
        }
    } else {
        char *colon = strchr(t, ':');
        if (colon && strchr(colon + 1, ':')) {
            /* several colons: only a bare IPv6 address (no port) is valid */
            if (!ipv6_literal(t)) {
                snprintf(why, sizeof why,
                         "too many ':' (write an IPv6 address with a port as [address]:port)");
                goto bad;
            }
            if (set_host(ep, t, why, sizeof why) < 0)
                goto bad;
        } else {
            if (colon) {
                *colon = 0;
                portstr = colon + 1;
            }
            if (!*t) {
                snprintf(why, sizeof why, "empty host");
                goto bad;
            }
            const char *c = bad_host_char(t);
            if (c) {
                if (isprint((unsigned char)*c))
                    snprintf(why, sizeof why, "invalid character '%c' in host", *c);
                else
                    snprintf(why, sizeof why, "invalid character 0x%02x in host",
                             (unsigned char)*c);
                goto bad;
            }
            if (set_host(ep, t, why, sizeof why) < 0)
                goto bad;
        }
    }
    if (parse_port(portstr, &ep->port, why, sizeof why) < 0)
        goto bad;
    return 0;

bad:
    /* quote the original text, shortened so that the reason stays visible */
    if (e - b > 64)
        aemp__seterr(err, errlen, "bad endpoint '%.60s...': %s", b, why);
    else
        aemp__seterr(err, errlen, "bad endpoint '%.*s': %s", (int)(e - b), b, why);
    return -1;
}

int aemp__endpoint_format(const struct sockaddr *sa, char *out, size_t n, char *err,
                          size_t errlen)
{
    char ip[INET6_ADDRSTRLEN];
    int w;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        w = snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        w = snprintf(out, n, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        aemp__seterr(err, errlen, "unsupported address family %d", sa->sa_family);
        return -1;
    }
    if (w < 0 || (size_t)w >= n) {
        aemp__seterr(err, errlen, "address buffer too small");
        return -1;
    }
    return 0;
}

/* append s to the array unless an equal string is already there */
static void add_unique(json_t *res, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(res, i, v) {
        if (!strcmp(json_string_value(v), s))
            return;
    }
    json_array_append_new(res, json_string(s));
}

/* Every usable local address with port `port` (see the header). */
static int local_addrs(json_t *res, uint16_t port, char *err, size_t errlen)
{
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) < 0) {
        aemp__seterr(err, errlen, "cannot list local addresses (getifaddrs): %s", strerror(errno));
        return -1;
    }
    size_t found = 0;
    char buf[AEMP_ENDPOINT_STRMAX];
    for (int pass = 0; pass < 2; pass++) {
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
            if (!i->ifa_addr)
                continue;
            if (pass == 0 && i->ifa_addr->sa_family == AF_INET) {
                struct sockaddr_in a = *(struct sockaddr_in *)i->ifa_addr;
                if ((ntohl(a.sin_addr.s_addr) >> 24) == 127)
                    continue;
                a.sin_port = htons(port);
                if (aemp__endpoint_format((struct sockaddr *)&a, buf, sizeof buf, NULL, 0) == 0) {
                    add_unique(res, buf);
                    found++;
                }
            } else if (pass == 1 && i->ifa_addr->sa_family == AF_INET6) {
                struct sockaddr_in6 a = *(struct sockaddr_in6 *)i->ifa_addr;
                uint8_t b0 = a.sin6_addr.s6_addr[0];
                if (!((b0 >= 0x20 && b0 <= 0x3f) || b0 == 0xfc || b0 == 0xfd))
                    continue;
                a.sin6_port = htons(port);
                a.sin6_scope_id = 0;
                if (aemp__endpoint_format((struct sockaddr *)&a, buf, sizeof buf, NULL, 0) == 0) {
                    add_unique(res, buf);
                    found++;
                }
            }
        }
    }
    freeifaddrs(ifa);
    if (!found) { /* loopback-only machine: listen there rather than nowhere */
        snprintf(buf, sizeof buf, "127.0.0.1:%u", (unsigned)port);
        add_unique(res, buf);
    }
    return 0;
}

/* Resolve one endpoint and append its addresses.  Returns 1 if the name was
 * skipped (flags), 0 on success, -1 on error. */
static int resolve_one(json_t *res, const char *text, unsigned flags, char *err, size_t errlen)
{
    aemp_endpoint_t ep;
    if (aemp__endpoint_parse(text, &ep, err, errlen) < 0)
        return -1;
    if (!strcmp(ep.host, "*"))
        return local_addrs(res, ep.port, err, errlen);

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)ep.port);
    int r = getaddrinfo(ep.host, portstr, &hints, &ai);
    if (r != 0) {
        bool skip = flags & AEMP_ENDPOINT_SKIP_UNRESOLVED;
        if (!skip || !(err && errlen && err[0])) /* when skipping, keep the first message */
            aemp__seterr(err, errlen, "cannot resolve '%s': %s", ep.host,
                   r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return skip ? 1 : -1;
    }
    char buf[AEMP_ENDPOINT_STRMAX];
    for (struct addrinfo *a = ai; a; a = a->ai_next)
        if (aemp__endpoint_format(a->ai_addr, buf, sizeof buf, NULL, 0) == 0)
            add_unique(res, buf);
    freeaddrinfo(ai);
    return 0;
}

/* Resolve one list element: "" = this host, else comma-separated parts. */
static int resolve_element(json_t *res, const char *s, unsigned flags, char *err, size_t errlen)
{
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return resolve_one(res, "", flags, err, errlen) < 0 ? -1 : 0;
    char part[MAX_ENDPOINT];
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n >= sizeof part) {
            aemp__seterr(err, errlen, "bad endpoint '%.40s...': too long", p);
            return -1;
        }
        memcpy(part, p, n);
        part[n] = 0;
        const char *q = part;
        while (isspace((unsigned char)*q))
            q++;
        if (*q && resolve_one(res, part, flags, err, errlen) < 0)
            return -1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

int aemp__endpoint_resolve(const json_t *list, unsigned flags, json_t **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    json_t *res = json_array();
    if (!res)
        abort();
    if (json_is_string(list)) {
        if (resolve_element(res, json_string_value(list), flags, err, errlen) < 0)
            goto fail;
    } else if (json_is_array(list)) {
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            if (!json_is_string(v)) {
                aemp__seterr(err, errlen, "endpoint list element %zu must be a string, got %s", i + 1,
                       aemp__json_type_name(v));
                goto fail;
            }
            if (resolve_element(res, json_string_value(v), flags, err, errlen) < 0)
                goto fail;
        }
    } else {
        aemp__seterr(err, errlen, "endpoint list must be an array of strings, got %s",
               list ? aemp__json_type_name(list) : "nothing");
        goto fail;
    }
    *out = res;
    return 0;
fail:
    json_decref(res);
    return -1;
}

int aemp__endpoint_sockaddr(const char *ipport, struct sockaddr_storage *ss, socklen_t *len,
                            char *err, size_t errlen)
{
    aemp_endpoint_t ep;
    if (aemp__endpoint_parse(ipport, &ep, err, errlen) < 0)
        return -1;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)ep.port);
    if (strcmp(ep.host, "*") == 0 || getaddrinfo(ep.host, portstr, &hints, &ai) != 0 || !ai) {
        aemp__seterr(err, errlen, "bad endpoint '%s': '%s' is not a numeric IP address", ipport,
               ep.host);
        return -1;
    }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}
