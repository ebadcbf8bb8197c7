/* TLS: not built yet — every entry fails with a clear message. */
#include "net/tls.h"

#include <stdio.h>

aredis_err aredis__tls_ctx_new(const aredis_options *o, aredis__tls_ctx **out, char *err,
                               size_t errlen) {
    (void)o;
    *out = NULL;
    snprintf(err, errlen, "TLS support is not built in");
    return AREDIS_ERR_UNSUPPORTED;
}
void aredis__tls_ctx_free(aredis__tls_ctx *ctx) { (void)ctx; }
aredis__tls *aredis__tls_new(aredis__tls_ctx *ctx, int fd, const char *host, char *err,
                             size_t errlen) {
    (void)ctx, (void)fd, (void)host;
    snprintf(err, errlen, "TLS support is not built in");
    return NULL;
}
int aredis__tls_handshake(aredis__tls *t, char *err, size_t errlen) {
    (void)t;
    snprintf(err, errlen, "TLS support is not built in");
    return -1;
}
ssize_t aredis__tls_read(aredis__tls *t, void *buf, size_t n, int *want, char *err,
                         size_t errlen) {
    (void)t, (void)buf, (void)n;
    *want = 0;
    snprintf(err, errlen, "TLS support is not built in");
    return -1;
}
ssize_t aredis__tls_write(aredis__tls *t, const void *buf, size_t n, int *want, char *err,
                          size_t errlen) {
    (void)t, (void)buf, (void)n;
    *want = 0;
    snprintf(err, errlen, "TLS support is not built in");
    return -1;
}
void aredis__tls_free(aredis__tls *t) { (void)t; }
