/**
 * @file
 * aredis/tls.h — a TLS context built once and shared.
 *
 * Building a TLS context loads the CA store, the client certificate and its
 * key: with the system store that is about 20 ms of CPU. A client given
 * only the tls_* file options builds its own at its first connect, on the
 * loop thread. Many clients (and later pools and cluster nodes) can share
 * one instead:
 *
 * @code
 * aredis_options t = AREDIS_OPTIONS_INIT;
 * t.tls_ca_file = "ca.crt";                  // the same fields as a client
 * aredis_tls_context *tls = aredis_tls_context_new(&t);
 * if (!tls) fputs(aredis_call_error()->detail, stderr);  // why it failed
 * for (...) {
 *     aredis_options o = AREDIS_OPTIONS_INIT;
 *     o.tls = 1;
 *     o.tls_context = tls;                    // instead of the tls_* files
 *     clients[i] = aredis_client_new(loop, &o);
 * }
 * aredis_tls_context_release(tls);            // the clients keep it alive
 * @endcode
 *
 * A context is reference counted (atomically: clients on different threads
 * may share one): aredis_client_new() takes a reference and the client's
 * free drops it. It is never changed after it is built.
 */
#ifndef AREDIS_TLS_H
#define AREDIS_TLS_H

#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct aredis_options;
/** A TLS context (opaque, reference counted): the CA store, and the client
 * certificate and key, loaded once. */
typedef struct aredis_tls_context aredis_tls_context;

/**
 * Build a context from the TLS fields of `o`: tls_ca_file, tls_ca_path (NULL
 * both: the system store), tls_cert_file and tls_key_file (mutual TLS, both
 * or neither), tls_insecure_skip_verify. Other fields are ignored; the host
 * name to verify comes from each client. Returns NULL on failure (a file
 * that cannot be read, a key that does not match its certificate, out of
 * memory): aredis_call_error() then says why (code AREDIS_ERR_TLS or
 * AREDIS_ERR_NOMEM). The caller holds one reference.
 */
AREDIS_API aredis_tls_context *aredis_tls_context_new(const struct aredis_options *o);

/** Take one more reference. Returns ctx. */
AREDIS_API aredis_tls_context *aredis_tls_context_retain(aredis_tls_context *ctx);

/** Drop a reference; the last one frees the context. NULL is ignored. */
AREDIS_API void aredis_tls_context_release(aredis_tls_context *ctx);

#ifdef __cplusplus
}
#endif

#endif
