/*
 * Test support for TLS: throwaway certificates (scripts/gen-test-certs.sh,
 * run once per test process into a temp dir that is removed at exit), and a
 * redis-server that listens on TLS only (`port 0`, `tls-port N`).
 *
 * Include after ts.h.
 */
#ifndef AREDIS_TS_TLS_H
#define AREDIS_TS_TLS_H

#include <sys/types.h>

#include "ts.h"

/*
 * The directory holding the test certificates (see gen-test-certs.sh for
 * the list: ca, server, client, other-ca, wrong-name, expired — each .crt
 * and .key). Made on first use. If the openssl CLI or the script is
 * missing: SKIP (exit 77) unless the CI environment variable is set, then
 * FAIL. The script is found through AREDIS_SOURCE_DIR when set, else
 * relative to this file's path at build time.
 */
const char *ts_tls_certs_dir(void);
/* "<certs dir>/<name>", e.g. ts_tls_file("ca.crt"). The string lives until
 * exit. */
const char *ts_tls_file(const char *name);

typedef struct ts_tls_server ts_tls_server;

/*
 * Start a redis-server on 127.0.0.1 with TLS only: `port 0`, `tls-port` on
 * a free port, tls-cert-file/tls-key-file (`cert`/`key`: a file name in the
 * certs dir, or an absolute path; NULL: server.crt / server.key),
 * tls-ca-cert-file ca.crt, `tls-auth-clients no`; then the `extra_conf`
 * lines (NULL-terminated, may be NULL), which may override any of it
 * (e.g. "tls-auth-clients yes"). Waits until the log says it is ready.
 * A missing redis-server skips the test like ts_server_start(); so does a
 * server binary built without TLS that $REDIS_SERVER chose ("SKIP: needs a
 * server built with TLS ..."; the default binary must have TLS under CI).
 */
ts_tls_server *ts_tls_server_start(const char *const *extra_conf, const char *cert,
                                   const char *key);
int ts_tls_server_port(const ts_tls_server *s);
const char *ts_tls_server_dir(const ts_tls_server *s);
pid_t ts_tls_server_pid(const ts_tls_server *s);
/* SIGKILL and reap; the dir and port are kept for a restart. NULL ignored. */
void ts_tls_server_kill(ts_tls_server *s);
/* Start again on the same port and config; waits until ready. */
void ts_tls_server_restart(ts_tls_server *s);
/* SIGTERM (then SIGKILL), remove the dir, free. NULL ignored. */
void ts_tls_server_stop(ts_tls_server *s);

/*
 * Options for s: host "127.0.0.1", its TLS port, tls = 1, tls_ca_file =
 * the test CA, reconnect as AREDIS_OPTIONS_INIT has it.
 */
aredis_options ts_tls_options(const ts_tls_server *s);

/*
 * Make a client on loop with o, connect, and wait (aredis_future_ready)
 * until it is ready or failed. Returns the outcome; *out is the client
 * (free it), and detail (if not NULL) holds the error's detail ("" on
 * success).
 */
aredis_err ts_tls_connect(aredis_loop *loop, const aredis_options *o, aredis_client **out,
                          char *detail, size_t detail_len);

#endif
