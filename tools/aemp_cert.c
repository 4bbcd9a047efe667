/* aemp_cert.c - `aemp gencert`: a self-signed certificate made with
 * OpenSSL's library, equivalent to Perl aemp's
 *   openssl req -new -nodes -x509 -days 3650 -newkey rsa:2048 -batch -subj /CN=AnyEvent::MP
 * (with the v3_ca extensions `openssl req -x509` adds: subject and
 * authority key identifiers, basicConstraints critical CA:TRUE), stored as
 * the certificate followed by the private key (PEM).  Nodes with the same
 * `cert` trust each other over TLS (docs/tls.md).
 */
#include "aemp_cli.h"

#include "ssl_api.h"   /* OpenSSL's headers, its functions loaded by aemp__ssl_load */

#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last OpenSSL error as text into err. */
static int ssl_fail(const char *what, char *err, size_t errlen)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "gencert: %s: %s", what, buf);
    return -1;
}

/* A random positive 64-bit serial number. */
static int set_serial(X509 *x)
{
    unsigned char b[8];
    if (RAND_bytes(b, sizeof b) != 1)
        return 0;
    b[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    if (!bn)
        return 0;
    int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/* Add the extension name=value to the self-signed x. */
static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Build the key and the certificate; PEM text into *pem (malloc'd).
 * Returns 0, or -1 with a message in err. */
int cli_gencert(char **pem, char *err, size_t errlen)
{
    if (aemp__ssl_load(err, errlen) < 0)
        return -1;
    int rc = -1;
    X509 *x = NULL;
    BIO *bio = NULL;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    if (!key)
        return ssl_fail("cannot generate an RSA key", err, errlen);
    if (!(x = X509_new()) || !X509_set_version(x, 2) || !set_serial(x)
        || !X509_gmtime_adj(X509_getm_notBefore(x), 0)
        || !X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 24 * 3600) || !X509_set_pubkey(x, key)) {
        ssl_fail("cannot build the certificate", err, errlen);
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"AnyEvent::MP",
                                    -1, -1, 0)
        || !X509_set_issuer_name(x, name)
        || !add_ext(x, NID_subject_key_identifier, "hash")
        || !add_ext(x, NID_authority_key_identifier, "keyid:always")
        || !add_ext(x, NID_basic_constraints, "critical,CA:TRUE")
        || !X509_sign(x, key, EVP_sha256())) {
        ssl_fail("cannot sign the certificate", err, errlen);
        goto out;
    }
    if (!(bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509(bio, x)
        || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        ssl_fail("cannot encode the certificate", err, errlen);
        goto out;
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !(*pem = malloc((size_t)n + 1))) {
        snprintf(err, errlen, "gencert: out of memory");
        goto out;
    }
    memcpy(*pem, data, (size_t)n);
    (*pem)[n] = 0;
    rc = 0;
out:
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
