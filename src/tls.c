/* tls.c - OpenSSL glue for the AEMP transport (see tls.h).
 *
 * A session is an SSL object between two memory BIOs: `rbio` holds
 * ciphertext fed from the socket, `wbio` collects ciphertext for the socket.
 * The read BIO reports "retry" rather than end-of-file when empty, so
 * running out of input is never mistaken for the peer closing.
 */
#define _GNU_SOURCE   /* memmem */
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl_api.h"   /* OpenSSL's headers, its functions loaded on first use */

#define TLS_READ_CHUNK 16384

struct aemp_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct aemp_tls {
    SSL *ssl;
    BIO *rbio, *wbio;   /* owned by ssl */
    int established;
    int failed;
    char error[256];
};

static void oom(void)
{
    fprintf(stderr, "aemp: out of memory\n");
    abort();
}

/* ------------------------------------------------------------ contexts */

/* Never prompt for a pass phrase: encrypted keys are refused. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* The reason text of the oldest queued OpenSSL error (queue cleared). */
static const char *ssl_reason(char *buf, size_t size, const char *dflt)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, size, "%s", r ? r : dflt);
    ERR_clear_error();
    return buf;
}

/* Build the node's context (see tls.h).  O(size of the PEM). */
aemp_tls_ctx_t *aemp__tls_ctx_new(const char *pem, size_t len, char *err, size_t errlen)
{
    char why[160];
    aemp_tls_ctx_t *ctx = NULL;
    SSL_CTX *sc = NULL;
    EVP_PKEY *key = NULL;
    X509 **certs = NULL;   /* every certificate, in file order */
    int ncerts = 0, capcerts = 0;
    BIO *bio = NULL;
    X509 *own = NULL;

    if (aemp__ssl_load(err, errlen) < 0)
        return NULL;
    ERR_clear_error();
    if (!pem || !len || len > (size_t)1 << 30) {
        snprintf(err, errlen, "cert: empty");
        goto out;
    }

    /* every certificate, in file order */
    if (!(bio = BIO_new_mem_buf(pem, (int)len)))
        oom();
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, no_password, NULL))) {
        if (ncerts == capcerts) {
            capcerts = capcerts ? 2 * capcerts : 4;
            if (!(certs = realloc(certs, (size_t)capcerts * sizeof *certs)))
                oom();
        }
        certs[ncerts++] = x;
    }
    ERR_clear_error();   /* the end of the text ends the loop with an error */
    BIO_free(bio);

    /* the private key (PEM_read_bio_PrivateKey skips other blocks) */
    if (!(bio = BIO_new_mem_buf(pem, (int)len)))
        oom();
    key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (!key) {
        ssl_reason(why, sizeof why, "unknown error");
        if (!memmem(pem, len, "PRIVATE KEY-----", 16))
            snprintf(err, errlen, "cert: no private key found in the PEM text (it must hold an "
                                  "unencrypted private key and its certificate)");
        else if (memmem(pem, len, "ENCRYPTED", 9))
            snprintf(err, errlen, "cert: the private key is encrypted (not supported)");
        else
            snprintf(err, errlen, "cert: cannot read the private key (%s)", why);
        goto out;
    }
    if (!ncerts) {
        snprintf(err, errlen, "cert: no certificate found in the PEM text");
        goto out;
    }
    for (int i = 0; i < ncerts && !own; i++)
        if (X509_check_private_key(certs[i], key))
            own = certs[i];
    ERR_clear_error();
    if (!own) {
        snprintf(err, errlen, "cert: none of the certificates matches the private key");
        goto out;
    }

    if (!(sc = SSL_CTX_new(TLS_method())))
        oom();
    SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION);
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(sc, 0);
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(sc, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* verify the peer, require a client certificate, no host-name check */
    SSL_CTX_set_verify(sc, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if (SSL_CTX_use_certificate(sc, own) != 1 || SSL_CTX_use_PrivateKey(sc, key) != 1
        || SSL_CTX_check_private_key(sc) != 1) {
        snprintf(err, errlen, "cert: the certificate or key is unusable: %s",
                 ssl_reason(why, sizeof why, "unknown error"));
        goto out;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(sc);
    for (int i = 0; i < ncerts; i++) {
        X509 *c = certs[i];
        if (X509_STORE_add_cert(store, c) != 1) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
                snprintf(err, errlen, "cert: cannot use certificate %d as an authority: %s", i + 1,
                         ssl_reason(why, sizeof why, "unknown error"));
                goto out;
            }
            ERR_clear_error();
        }
        if (c != own && SSL_CTX_add1_chain_cert(sc, c) != 1) {
            snprintf(err, errlen, "cert: cannot use certificate %d in the chain: %s", i + 1,
                     ssl_reason(why, sizeof why, "unknown error"));
            goto out;
        }
    }

    if (!(ctx = calloc(1, sizeof *ctx)))
        oom();
    ctx->ssl_ctx = sc;
    sc = NULL;
out:
    BIO_free(bio);
    EVP_PKEY_free(key);
    for (int i = 0; i < ncerts; i++)
        X509_free(certs[i]);
    free(certs);
    SSL_CTX_free(sc);
    ERR_clear_error();
    return ctx;
}

void aemp__tls_ctx_free(aemp_tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* ------------------------------------------------------------ sessions */

aemp_tls_t *aemp__tls_new(aemp_tls_ctx_t *ctx, int client)
{
    aemp_tls_t *t = calloc(1, sizeof *t);
    if (!t || !(t->ssl = SSL_new(ctx->ssl_ctx)) || !(t->rbio = BIO_new(BIO_s_mem()))
        || !(t->wbio = BIO_new(BIO_s_mem())))
        oom();
    BIO_set_mem_eof_return(t->rbio, -1);   /* empty = retry, not EOF */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (client)
        SSL_set_connect_state(t->ssl);
    else
        SSL_set_accept_state(t->ssl);
    return t;
}

void aemp__tls_free(aemp_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);   /* frees both BIOs */
    free(t);
}

void aemp__tls_feed(aemp_tls_t *t, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = BIO_write(t->rbio, p, chunk);
        if (w <= 0)
            oom();   /* a memory BIO only fails to grow */
        p += w;
        n -= (size_t)w;
    }
}

/* Is this reason code an alert by which the peer refused our certificate? */
static int peer_refused_cert(int reason)
{
    switch (reason) {
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return 1;
    default:
        return 0;
    }
}

/* Record why the session failed (from the OpenSSL error queue, the verify
 * result and SSL_get_error's code) and make the failure sticky. */
static int set_error(aemp_tls_t *t, int sslerr)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(t->ssl);
        snprintf(t->error, sizeof t->error, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && peer_refused_cert(ERR_GET_REASON(e))) {
        snprintf(t->error, sizeof t->error, "%s (the peer rejected our certificate)",
                 reason ? reason : "alert");
    } else if (reason) {
        snprintf(t->error, sizeof t->error, "%s", reason);
    } else if (e) {
        ERR_error_string_n(e, t->error, sizeof t->error);
    } else {
        snprintf(t->error, sizeof t->error, "TLS failure (SSL error %d)", sslerr);
    }
    ERR_clear_error();
    t->failed = 1;
    return AEMP_TLS_ERR;
}

/* Handshake, then decrypt (see tls.h).  O(input). */
int aemp__tls_input(aemp_tls_t *t, aemp_buf_t *plain)
{
    if (t->failed)
        return AEMP_TLS_ERR;
    if (!t->established) {
        ERR_clear_error();
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return AEMP_TLS_OK;
            return set_error(t, e);
        }
        t->established = 1;
    }
    for (;;) {
        uint8_t *p = aemp__buf_reserve(plain, TLS_READ_CHUNK);
        size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_ex(t->ssl, p, TLS_READ_CHUNK, &n);
        if (r == 1) {
            plain->len += n;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return AEMP_TLS_OK;
        if (e == SSL_ERROR_ZERO_RETURN)
            return AEMP_TLS_EOF;
        return set_error(t, e);
    }
}

/* Encrypt, then move pending ciphertext to wire (see tls.h).  O(bytes). */
int aemp__tls_output(aemp_tls_t *t, aemp_buf_t *plain, size_t max, aemp_buf_t *wire)
{
    int rc = AEMP_TLS_OK;
    if (!t->failed && t->established && aemp__buf_used(plain)) {
        size_t n = aemp__buf_used(plain);
        if (n > max)
            n = max;
        size_t w = 0;
        ERR_clear_error();
        if (SSL_write_ex(t->ssl, aemp__buf_head(plain), n, &w) == 1) {
            aemp__buf_consume(plain, w);
        } else {
            int e = SSL_get_error(t->ssl, 0);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                rc = set_error(t, e);
        }
    }
    size_t pending;
    while ((pending = BIO_ctrl_pending(t->wbio)) > 0) {
        int chunk = pending > (1u << 30) ? 1 << 30 : (int)pending;
        uint8_t *p = aemp__buf_reserve(wire, (size_t)chunk);
        int r = BIO_read(t->wbio, p, chunk);
        if (r <= 0)
            break;
        wire->len += (size_t)r;
    }
    return rc;
}

void aemp__tls_close_notify(aemp_tls_t *t)
{
    if (t->failed || !t->established || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl);   /* 0: sent, the peer's not seen yet - all we want */
    ERR_clear_error();
}

int aemp__tls_want_write(const aemp_tls_t *t)
{
    return BIO_ctrl_pending(t->wbio) > 0;
}

int aemp__tls_established(const aemp_tls_t *t)
{
    return t->established;
}

const char *aemp__tls_error(const aemp_tls_t *t)
{
    return t->error;
}

const char *aemp__tls_describe(const aemp_tls_t *t, char *buf, size_t size)
{
    snprintf(buf, size, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
    return buf;
}
