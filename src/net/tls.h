/*
 * TLS over a connected non-blocking socket (OpenSSL 3). The client drives
 * the handshake from its loop callbacks and then reads and writes through
 * these calls instead of read(2)/send(2).
 *
 * Security defaults: TLS 1.2 minimum; the peer certificate is verified
 * against the CA file/path (or the system store), and its name is checked
 * against the host connected to (DNS name or IP address) unless
 * tls_insecure_skip_verify is set.
 */
#ifndef AREDIS_NET_TLS_H
#define AREDIS_NET_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "aredis/client.h"
#include "aredis/tls.h"
#include "aredis/error.h"

/* One SSL_CTX, shared by the clients that hold a reference (the public
 * aredis_tls_context of aredis/tls.h). */
typedef struct aredis_tls_context aredis__tls_ctx;
typedef struct aredis__tls aredis__tls; /* one per connection: SSL */

/* Build the context from the options (CA, client cert/key, verification).
 * AREDIS_ERR_TLS with a message (OpenSSL's reason) on failure. */
aredis_err aredis__tls_ctx_new(const aredis_options *o, aredis__tls_ctx **out, char *err,
                               size_t errlen);
/* Drop a reference (the last one frees it). NULL ignored. */
void aredis__tls_ctx_free(aredis__tls_ctx *ctx);
/* Take a reference. */
aredis__tls_ctx *aredis__tls_ctx_ref(aredis__tls_ctx *ctx);

/* Start TLS on a connected fd. `host` is what the user asked to connect to:
 * it is sent as SNI (unless an IP literal, or tls_server_name overrides) and
 * checked against the certificate. NULL with a message on failure. */
aredis__tls *aredis__tls_new(aredis__tls_ctx *ctx, int fd, const char *host, char *err,
                             size_t errlen);

/* Advance the handshake: 0 when done; AREDIS_EV_READ or AREDIS_EV_WRITE when
 * it waits for that; -1 on failure with OpenSSL's reason in err ("certificate
 * verify failed: unable to get local issuer certificate", ...). */
int aredis__tls_handshake(aredis__tls *t, char *err, size_t errlen);

/*
 * Read/write like read(2)/send(2): > 0 bytes; 0 = orderly EOF (read only);
 * -1 and *want = AREDIS_EV_READ / AREDIS_EV_WRITE when it would block (call
 * again when that event fires), or -1 and *want = 0 on a failure, with a
 * message in err. A read that returned data may have left more decrypted
 * bytes inside OpenSSL: call it again until it would block.
 */
ssize_t aredis__tls_read(aredis__tls *t, void *buf, size_t n, int *want, char *err, size_t errlen);
ssize_t aredis__tls_write(aredis__tls *t, const void *buf, size_t n, int *want, char *err,
                          size_t errlen);

/*
 * OpenSSL's writes never block: what the socket does not take at once waits
 * in the connection's own buffer (so a key update can be answered from
 * inside a read while application data waits). aredis__tls_pending() is how
 * much waits — watch for writable while it is nonzero — and
 * aredis__tls_flush() sends it: 0 when all is gone, 1 when the socket is
 * full, -1 on failure with a message in err (errno the cause, or 0).
 * aredis__tls_write() takes no more plaintext (-1, *want WRITE) while 64 KiB
 * of ciphertext waits.
 */
size_t aredis__tls_pending(const aredis__tls *t);
int aredis__tls_flush(aredis__tls *t, char *err, size_t errlen);

/* After a failure: 1 when it was a certificate refusal (ours of the
 * server's certificate, or the server's alert about ours), which the next
 * attempt would meet again; 0 for anything else (a reset, an alert or bad
 * record on a live link). */
int aredis__tls_refused(const aredis__tls *t);

/* Free the connection state (no close_notify is awaited). NULL ignored. */
void aredis__tls_free(aredis__tls *t);

#endif
