/* Tests for SHA3-512 and HMAC-SHA3-512: the FIPS 202 answers for "" and
 * "abc", and agreement with OpenSSL's implementation for every message
 * length across several blocks, in pieces of every size, and for keys
 * shorter than, as long as and longer than the 72-byte block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sha3.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void known_answers(void **state)
{
    uint8_t md[64];
    char h[129];
    aemp__sha3_512("", 0, md);
    hex(md, 64, h);
    assert_string_equal(h, "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a6"
                           "15b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26");
    aemp__sha3_512("abc", 3, md);
    hex(md, 64, h);
    assert_string_equal(h, "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
                           "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0");
}

static uint8_t data[600];

static void fill(void)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        x = x * 1103515245 + 12345;
        data[i] = (uint8_t)(x >> 16);
    }
}

static void same_as_openssl(void **state)
{
    fill();
    for (size_t len = 0; len <= 300; len++) {
        uint8_t mine[64], theirs[64];
        unsigned n = 0;
        aemp__sha3_512(data, len, mine);
        assert_int_equal(EVP_Digest(data, len, theirs, &n, EVP_sha3_512(), NULL), 1);
        assert_memory_equal(mine, theirs, 64);
        /* the same message fed in pieces of `step` bytes */
        size_t step = len % 17 + 1;
        aemp_sha3_ctx c;
        aemp__sha3_512_init(&c);
        for (size_t off = 0; off < len; off += step)
            aemp__sha3_512_update(&c, data + off, len - off < step ? len - off : step);
        aemp__sha3_512_final(&c, mine);
        assert_memory_equal(mine, theirs, 64);
    }
}

static void hmac_same_as_openssl(void **state)
{
    fill();
    static const size_t keys[] = { 0, 1, 20, 71, 72, 73, 144, 200 };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        for (size_t len = 0; len <= 160; len += 7) {
            uint8_t mine[64], theirs[64];
            unsigned n = 0;
            static const uint8_t empty = 0;
            aemp__hmac_sha3_512(data + 300, keys[k], data, len, mine);
            assert_non_null(HMAC(EVP_sha3_512(), keys[k] ? data + 300 : &empty, (int)keys[k], data, len, theirs, &n));
            assert_int_equal(n, 64);
            assert_memory_equal(mine, theirs, 64);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answers),
        cmocka_unit_test(same_as_openssl),
        cmocka_unit_test(hmac_same_as_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
