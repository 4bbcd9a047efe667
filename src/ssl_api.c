/* ssl_api.c - libssl loaded on first use (see ssl_api.h). */
#define AEMP_SSL_API_IMPL
#include "ssl_api.h"

#include <dlfcn.h>
#include <stdio.h>

#include <openssl/opensslv.h>

#define SSL_STR(x) #x
#define SSL_XSTR(x) SSL_STR(x)
#define LIBSSL_SONAME "libssl.so." SSL_XSTR(OPENSSL_VERSION_MAJOR)

aemp_ssl_api_t aemp__ssl;

static int loaded;          /* 1: aemp__ssl is filled; -1: loading failed */
static char load_error[256];

int aemp__ssl_load(char *err, size_t errlen)
{
    if (!loaded) {
        void *h = dlopen(LIBSSL_SONAME, RTLD_NOW | RTLD_LOCAL);
        loaded = 1;
        if (!h) {
            snprintf(load_error, sizeof load_error, "TLS needs %s (OpenSSL %d): %s", LIBSSL_SONAME,
                     OPENSSL_VERSION_MAJOR, dlerror());
            loaded = -1;
        }
#define AEMP_SSL_RESOLVE(f)                                                                        \
    if (loaded > 0 && !(*(void **)&aemp__ssl.f = dlsym(h, #f))) {                                  \
        snprintf(load_error, sizeof load_error, "TLS needs %s with %s: %s", LIBSSL_SONAME, #f,     \
                 dlerror());                                                                       \
        loaded = -1;                                                                               \
    }
        AEMP_SSL_FUNCS(AEMP_SSL_RESOLVE)
        AEMP_SSL_CERT_FUNCS(AEMP_SSL_RESOLVE)
#undef AEMP_SSL_RESOLVE
    }
    if (loaded < 0) {
        snprintf(err, errlen, "%s", load_error);
        return -1;
    }
    return 0;
}
