/* ssl_api.h - the OpenSSL functions tls.c calls, resolved at run time.
 *
 * libaemp does not link libssl and libcrypto: a node that does not use
 * TLS never maps them (their relocated data was 460 KiB of the 624 KiB of
 * anonymous memory of an idle `aemp run` node: docs/scaling.md).  The first TLS context (aemp__tls_ctx_new)
 * loads libssl of the OpenSSL major version the headers are from, with
 * its libcrypto, and fills aemp__ssl; tls.c, which includes this header
 * after OpenSSL's, calls each function through it under its own name
 * (as does `aemp cert`, tools/aemp_cert.c, which calls aemp__ssl_load
 * first).
 */
#ifndef AEMP_SSL_API_H
#define AEMP_SSL_API_H

#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/* Every function tls.c uses (after OpenSSL's macros: SSL_CTX_set_mode is
 * SSL_CTX_ctrl), in libssl or libcrypto. */
#define AEMP_SSL_FUNCS(X)                                                                          \
    X(BIO_ctrl) X(BIO_ctrl_pending) X(BIO_free) X(BIO_new) X(BIO_new_mem_buf) X(BIO_read)          \
    X(BIO_s_mem) X(BIO_write) X(ERR_clear_error) X(ERR_error_string_n) X(ERR_get_error)            \
    X(ERR_peek_last_error) X(ERR_reason_error_string) X(EVP_PKEY_free) X(PEM_read_bio_PrivateKey)  \
    X(PEM_read_bio_X509) X(SSL_CIPHER_get_name) X(SSL_CTX_check_private_key) X(SSL_CTX_ctrl)       \
    X(SSL_CTX_free) X(SSL_CTX_get_cert_store) X(SSL_CTX_new) X(SSL_CTX_set_num_tickets)            \
    X(SSL_CTX_set_options) X(SSL_CTX_set_verify) X(SSL_CTX_use_PrivateKey)                         \
    X(SSL_CTX_use_certificate) X(SSL_do_handshake) X(SSL_free) X(SSL_get_current_cipher)           \
    X(SSL_get_error) X(SSL_get_shutdown) X(SSL_get_verify_result) X(SSL_get_version) X(SSL_new)   \
    X(SSL_read_ex) X(SSL_set_accept_state) X(SSL_set_bio) X(SSL_set_connect_state) X(SSL_shutdown) \
    X(SSL_write_ex) X(TLS_method) X(X509_STORE_add_cert) X(X509_check_private_key) X(X509_free)   \
    X(X509_verify_cert_error_string)

/* And those `aemp cert` (tools/aemp_cert.c) uses besides, in libcrypto. */
#define AEMP_SSL_CERT_FUNCS(X)                                                                     \
    X(BN_bin2bn) X(BN_free) X(BN_to_ASN1_INTEGER) X(EVP_PKEY_Q_keygen) X(EVP_sha256)               \
    X(PEM_write_bio_PrivateKey) X(PEM_write_bio_X509) X(RAND_bytes) X(X509V3_EXT_conf_nid)         \
    X(X509V3_set_ctx) X(X509_EXTENSION_free) X(X509_NAME_add_entry_by_txt) X(X509_add_ext)         \
    X(X509_get_serialNumber) X(X509_get_subject_name) X(X509_getm_notAfter) X(X509_getm_notBefore) \
    X(X509_gmtime_adj) X(X509_new) X(X509_set_issuer_name) X(X509_set_pubkey) X(X509_set_version) \
    X(X509_sign)

typedef struct aemp_ssl_api {
#define AEMP_SSL_FIELD(f) __typeof__(&f) f;
    AEMP_SSL_FUNCS(AEMP_SSL_FIELD)
    AEMP_SSL_CERT_FUNCS(AEMP_SSL_FIELD)
#undef AEMP_SSL_FIELD
} aemp_ssl_api_t;

extern aemp_ssl_api_t aemp__ssl;

/* Load libssl and resolve every function of both lists into aemp__ssl,
 * once: 0, or -1 with err set ("TLS needs libssl.so.3 (OpenSSL 3): ...");
 * a failure is remembered and reported again. */
int aemp__ssl_load(char *err, size_t errlen);

#ifndef AEMP_SSL_API_IMPL
/* From here on each name means the loaded function. */
#define BIO_ctrl (aemp__ssl.BIO_ctrl)
#define BIO_ctrl_pending (aemp__ssl.BIO_ctrl_pending)
#define BIO_free (aemp__ssl.BIO_free)
#define BIO_new (aemp__ssl.BIO_new)
#define BIO_new_mem_buf (aemp__ssl.BIO_new_mem_buf)
#define BIO_read (aemp__ssl.BIO_read)
#define BIO_s_mem (aemp__ssl.BIO_s_mem)
#define BIO_write (aemp__ssl.BIO_write)
#define ERR_clear_error (aemp__ssl.ERR_clear_error)
#define ERR_error_string_n (aemp__ssl.ERR_error_string_n)
#define ERR_get_error (aemp__ssl.ERR_get_error)
#define ERR_peek_last_error (aemp__ssl.ERR_peek_last_error)
#define ERR_reason_error_string (aemp__ssl.ERR_reason_error_string)
#define EVP_PKEY_free (aemp__ssl.EVP_PKEY_free)
#define PEM_read_bio_PrivateKey (aemp__ssl.PEM_read_bio_PrivateKey)
#define PEM_read_bio_X509 (aemp__ssl.PEM_read_bio_X509)
#define SSL_CIPHER_get_name (aemp__ssl.SSL_CIPHER_get_name)
#define SSL_CTX_check_private_key (aemp__ssl.SSL_CTX_check_private_key)
#define SSL_CTX_ctrl (aemp__ssl.SSL_CTX_ctrl)
#define SSL_CTX_free (aemp__ssl.SSL_CTX_free)
#define SSL_CTX_get_cert_store (aemp__ssl.SSL_CTX_get_cert_store)
#define SSL_CTX_new (aemp__ssl.SSL_CTX_new)
#define SSL_CTX_set_num_tickets (aemp__ssl.SSL_CTX_set_num_tickets)
#define SSL_CTX_set_options (aemp__ssl.SSL_CTX_set_options)
#define SSL_CTX_set_verify (aemp__ssl.SSL_CTX_set_verify)
#define SSL_CTX_use_PrivateKey (aemp__ssl.SSL_CTX_use_PrivateKey)
#define SSL_CTX_use_certificate (aemp__ssl.SSL_CTX_use_certificate)
#define SSL_do_handshake (aemp__ssl.SSL_do_handshake)
#define SSL_free (aemp__ssl.SSL_free)
#define SSL_get_current_cipher (aemp__ssl.SSL_get_current_cipher)
#define SSL_get_error (aemp__ssl.SSL_get_error)
#define SSL_get_shutdown (aemp__ssl.SSL_get_shutdown)
#define SSL_get_verify_result (aemp__ssl.SSL_get_verify_result)
#define SSL_get_version (aemp__ssl.SSL_get_version)
#define SSL_new (aemp__ssl.SSL_new)
#define SSL_read_ex (aemp__ssl.SSL_read_ex)
#define SSL_set_accept_state (aemp__ssl.SSL_set_accept_state)
#define SSL_set_bio (aemp__ssl.SSL_set_bio)
#define SSL_set_connect_state (aemp__ssl.SSL_set_connect_state)
#define SSL_shutdown (aemp__ssl.SSL_shutdown)
#define SSL_write_ex (aemp__ssl.SSL_write_ex)
#define TLS_method (aemp__ssl.TLS_method)
#define X509_STORE_add_cert (aemp__ssl.X509_STORE_add_cert)
#define X509_check_private_key (aemp__ssl.X509_check_private_key)
#define X509_free (aemp__ssl.X509_free)
#define X509_verify_cert_error_string (aemp__ssl.X509_verify_cert_error_string)
#define BN_bin2bn (aemp__ssl.BN_bin2bn)
#define BN_free (aemp__ssl.BN_free)
#define BN_to_ASN1_INTEGER (aemp__ssl.BN_to_ASN1_INTEGER)
#define EVP_PKEY_Q_keygen (aemp__ssl.EVP_PKEY_Q_keygen)
#define EVP_sha256 (aemp__ssl.EVP_sha256)
#define PEM_write_bio_PrivateKey (aemp__ssl.PEM_write_bio_PrivateKey)
#define PEM_write_bio_X509 (aemp__ssl.PEM_write_bio_X509)
#define RAND_bytes (aemp__ssl.RAND_bytes)
#define X509V3_EXT_conf_nid (aemp__ssl.X509V3_EXT_conf_nid)
#define X509V3_set_ctx (aemp__ssl.X509V3_set_ctx)
#define X509_EXTENSION_free (aemp__ssl.X509_EXTENSION_free)
#define X509_NAME_add_entry_by_txt (aemp__ssl.X509_NAME_add_entry_by_txt)
#define X509_add_ext (aemp__ssl.X509_add_ext)
#define X509_get_serialNumber (aemp__ssl.X509_get_serialNumber)
#define X509_get_subject_name (aemp__ssl.X509_get_subject_name)
#define X509_getm_notAfter (aemp__ssl.X509_getm_notAfter)
#define X509_getm_notBefore (aemp__ssl.X509_getm_notBefore)
#define X509_gmtime_adj (aemp__ssl.X509_gmtime_adj)
#define X509_new (aemp__ssl.X509_new)
#define X509_set_issuer_name (aemp__ssl.X509_set_issuer_name)
#define X509_set_pubkey (aemp__ssl.X509_set_pubkey)
#define X509_set_version (aemp__ssl.X509_set_version)
#define X509_sign (aemp__ssl.X509_sign)
#endif

#endif
