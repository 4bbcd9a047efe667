/* aemp_cert.c - `aemp gencert`: a self-signed certificate made with
 * OpenSSL's library, equivalent to Perl aemp's
 *   openssl req -new -nodes -x509 -days 3650 -newkey rsa:2048 -batch -subj /CN=AnyEvent::MP
 * stored as the certificate followed by the private key (PEM).
 */
#include "aemp_cli.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

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

/* Build the key and the certificate; PEM text into *pem. */
int cli_gencert(char **pem, char *err, size_t errlen)
{
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
        || !X509_set_issuer_name(x, name) || !X509_sign(x, key, EVP_sha256())) {
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
