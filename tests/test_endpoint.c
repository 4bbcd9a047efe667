/* Tests for endpoint parsing and resolution (endpoint.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "endpoint.h"

static char err[256];

static void parse_ok(const char *s, const char *host, unsigned port)
{
    aemp_endpoint_t ep;
    if (aemp__endpoint_parse(s, &ep, err, sizeof err) < 0)
        fail_msg("'%s': %s", s, err);
    assert_string_equal(ep.host, host);
    assert_int_equal(ep.port, port);
}

static void parse_bad(const char *s, const char *msg)
{
    aemp_endpoint_t ep;
    assert_int_equal(aemp__endpoint_parse(s, &ep, err, sizeof err), -1);
    if (!strstr(err, msg))
        fail_msg("'%s': message '%s' lacks '%s'", s, err, msg);
}

static void parse_forms(void **state)
{
    (void)state;
    struct utsname u;
    uname(&u);
    const char *host = u.nodename;

    parse_ok("127.0.0.1:4040", "127.0.0.1", 4040);
    parse_ok("  10.0.0.1:5  ", "10.0.0.1", 5);
    parse_ok("localhost", "localhost", 0);
    parse_ok("example.org:", "example.org", 0);
    parse_ok("my-host_1.example:65535", "my-host_1.example", 65535);
    parse_ok("[::1]:4040", "::1", 4040);
    parse_ok("[::1]", "::1", 0);
    parse_ok("[fd00::2]:*", "fd00::2", 0);
    parse_ok("[fe80::1%eth0]:7", "fe80::1%eth0", 7);
    parse_ok("::1", "::1", 0);
    parse_ok("2001:db8::1", "2001:db8::1", 0);
    parse_ok("[127.0.0.1]:9", "127.0.0.1", 9);
    parse_ok("4040", host, 4040);
    parse_ok("", host, 0);
    parse_ok("0", host, 0);
    parse_ok("*", "*", 0);
    parse_ok("*:*", "*", 0);
    parse_ok("*:4040", "*", 4040);
    parse_ok("host:*", "host", 0);
}

static void parse_errors(void **state)
{
    (void)state;
    parse_bad("x:y:z", "bad endpoint 'x:y:z': too many ':'");
    parse_bad("h:1:2", "too many ':'");
    parse_bad("h:65536", "bad endpoint 'h:65536': port 65536 is out of range (0-65535)");
    parse_bad("h:99999999999999999999999", "out of range");
    parse_bad("99999", "out of range");
    parse_bad("h:abc", "port 'abc' is not a number");
    parse_bad("h:-1", "port '-1' is not a number");
    parse_bad("h: 1", "not a number");
    parse_bad(":4040", "bad endpoint ':4040': empty host");
    parse_bad("[::1", "missing ']'");
    parse_bad("[::1]x", "unexpected 'x' after ']'");
    parse_bad("[::1]:x", "not a number");
    parse_bad("[]:1", "empty address");
    parse_bad("[::g]:1", "not a valid address");
    parse_bad("[*]:1", "not a valid address");
    parse_bad("ho st:1", "invalid character ' ' in host");
    parse_bad("a,b:1", "invalid character ','");
    parse_bad("**:1", "invalid character '*'");
    parse_bad("h/x", "invalid character '/'");
    char longhost[400];
    memset(longhost, 'a', 300);
    strcpy(longhost + 300, ":1");
    parse_bad(longhost, "host name too long");
}

static json_t *resolve(const char *json, unsigned flags)
{
    json_error_t je;
    json_t *in = json_loads(json, JSON_DECODE_ANY, &je);
    assert_non_null(in);
    json_t *out = NULL;
    if (aemp__endpoint_resolve(in, flags, &out, err, sizeof err) < 0) {
        json_decref(in);
        return NULL;
    }
    json_decref(in);
    return out;
}

static void expect(json_t *got, const char *want_json)
{
    json_t *want = json_loads(want_json, 0, NULL);
    assert_non_null(got);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, 0);
        fail_msg("got %s, want %s", g, want_json);
    }
    json_decref(want);
    json_decref(got);
}

static void resolve_lists(void **state)
{
    (void)state;
    expect(resolve("[\"127.0.0.1:0\"]", 0), "[\"127.0.0.1:0\"]");
    expect(resolve("\"127.0.0.1:4040\"", 0), "[\"127.0.0.1:4040\"]");
    expect(resolve("[\"127.0.0.1:4040,127.0.0.1:4041\"]", 0),
           "[\"127.0.0.1:4040\", \"127.0.0.1:4041\"]");
    /* element order kept, duplicates dropped, empty parts skipped */
    expect(resolve("[\"127.0.0.1:2\", \"127.0.0.1:1, 127.0.0.1:2,,\", \"127.0.0.1:1\","
                   " \"[::1]:5\", \"[0:0::1]:5\"]", 0),
           "[\"127.0.0.1:2\", \"127.0.0.1:1\", \"[::1]:5\"]");
    expect(resolve("[]", 0), "[]");

    /* names go through the resolver */
    json_t *r = resolve("[\"localhost:1234\"]", 0);
    assert_non_null(r);
    assert_true(json_array_size(r) >= 1);
    bool v4 = false;
    size_t i;
    json_t *v;
    json_array_foreach(r, i, v) {
        const char *s = json_string_value(v);
        assert_true(strlen(s) > 5 && !strcmp(s + strlen(s) - 5, ":1234"));
        if (!strcmp(s, "127.0.0.1:1234"))
            v4 = true;
        else
            assert_string_equal(s, "[::1]:1234");
    }
    assert_true(v4);
    json_decref(r);

    /* unresolvable names: an error, or skipped on request */
    assert_null(resolve("[\"no-such-host.invalid:1\"]", 0));
    assert_non_null(strstr(err, "cannot resolve 'no-such-host.invalid'"));
    expect(resolve("[\"no-such-host.invalid:1\", \"127.0.0.1:1\"]", AEMP_ENDPOINT_SKIP_UNRESOLVED),
           "[\"127.0.0.1:1\"]");
    assert_non_null(strstr(err, "cannot resolve 'no-such-host.invalid'"));
    expect(resolve("[\"127.0.0.1:1\"]", AEMP_ENDPOINT_SKIP_UNRESOLVED), "[\"127.0.0.1:1\"]");
    assert_string_equal(err, "");

    /* bad input */
    assert_null(resolve("[\"127.0.0.1:1\", 5]", 0));
    assert_string_equal(err, "endpoint list element 2 must be a string, got number");
    assert_null(resolve("{}", 0));
    assert_string_equal(err, "endpoint list must be an array of strings, got object");
    assert_null(resolve("[\"127.0.0.1:1,x:y:z\"]", 0));
    assert_non_null(strstr(err, "bad endpoint 'x:y:z'"));
}

static void resolve_star(void **state)
{
    (void)state;
    json_t *r = resolve("[\"*:4040\", \"*\"]", 0);
    assert_non_null(r);
    size_t n = json_array_size(r);
    assert_true(n >= 2 && n % 2 == 0);
    size_t i;
    json_t *v;
    bool seen_v6 = false;
    json_array_foreach(r, i, v) {
        const char *s = json_string_value(v);
        const char *port = i < n / 2 ? ":4040" : ":0";
        assert_true(!strcmp(s + strlen(s) - strlen(port), port));
        if (s[0] == '[') {
            seen_v6 = true;
            /* global unicast or ULA only */
            assert_true(s[1] == '2' || s[1] == '3' || !strncmp(s + 1, "fc", 2)
                        || !strncmp(s + 1, "fd", 2));
        } else {
            /* IPv4 before IPv6; loopback only as the fallback */
            assert_false(seen_v6 && i < n / 2);
            if (!strncmp(s, "127.", 4))
                assert_true(n == 2 && !strncmp(s, "127.0.0.1:", 10));
        }
    }
    json_decref(r);
}

static void sockaddr_conversion(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char buf[AEMP_ENDPOINT_STRMAX];

    assert_int_equal(aemp__endpoint_sockaddr("127.0.0.1:4040", &ss, &len, err, sizeof err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    assert_int_equal(ntohs(in->sin_port), 4040);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(aemp__endpoint_format((struct sockaddr *)&ss, buf, sizeof buf, err, sizeof err),
                     0);
    assert_string_equal(buf, "127.0.0.1:4040");

    assert_int_equal(aemp__endpoint_sockaddr("[::1]:4041", &ss, &len, err, sizeof err), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    assert_int_equal(ntohs(in6->sin6_port), 4041);
    assert_memory_equal(&in6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback);
    assert_int_equal(aemp__endpoint_format((struct sockaddr *)&ss, buf, sizeof buf, err, sizeof err),
                     0);
    assert_string_equal(buf, "[::1]:4041");

    assert_int_equal(aemp__endpoint_sockaddr("[fd00::2]:0", &ss, &len, err, sizeof err), 0);
    assert_int_equal(aemp__endpoint_format((struct sockaddr *)&ss, buf, sizeof buf, err, sizeof err),
                     0);
    assert_string_equal(buf, "[fd00::2]:0");

    assert_int_equal(aemp__endpoint_sockaddr("localhost:1", &ss, &len, err, sizeof err), -1);
    assert_string_equal(err, "bad endpoint 'localhost:1': 'localhost' is not a numeric IP address");
    assert_int_equal(aemp__endpoint_sockaddr("*:1", &ss, &len, err, sizeof err), -1);
    assert_int_equal(aemp__endpoint_sockaddr("1.2.3.4:70000", &ss, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));

    /* format: small buffer, other families */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(1) };
    assert_int_equal(aemp__endpoint_format((struct sockaddr *)&a, buf, 5, err, sizeof err), -1);
    struct sockaddr un = { .sa_family = AF_UNIX };
    assert_int_equal(aemp__endpoint_format(&un, buf, sizeof buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "unsupported address family"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_forms),
        cmocka_unit_test(parse_errors),
        cmocka_unit_test(resolve_lists),
        cmocka_unit_test(resolve_star),
        cmocka_unit_test(sockaddr_conversion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
