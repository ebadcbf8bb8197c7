/*
 * tls — connect over TLS with the server's certificate verified (chain AND
 * name; see docs/SECURITY.md), optionally with a client certificate.
 *
 *   REDIS_URL=rediss://localhost:6380 REDIS_TLS_CA=ca.crt ./example_tls
 *
 * Environment:
 *   REDIS_URL       a rediss:// URI (default rediss://localhost:6380)
 *   REDIS_TLS_CA    the CA file to verify the server with (unset: the
 *                   system's trust store)
 *   REDIS_TLS_CERT  a client certificate and its key, for a server that
 *   REDIS_TLS_KEY   asks for one (tls-auth-clients yes): mutual TLS
 *
 * A server to try it on (certificates from scripts/gen-test-certs.sh):
 *   scripts/gen-test-certs.sh /tmp/certs
 *   redis-server --port 0 --tls-port 6380 --tls-cert-file /tmp/certs/server.crt \
 *       --tls-key-file /tmp/certs/server.key --tls-ca-cert-file /tmp/certs/ca.crt \
 *       --tls-auth-clients optional
 *   REDIS_TLS_CA=/tmp/certs/ca.crt ./example_tls
 *
 * There is deliberately no "skip verification" switch here: see
 * docs/SECURITY.md for why tls_insecure_skip_verify is not for production.
 * Exits 0 when the server answered PING over a verified connection.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An environment variable, NULL when unset or empty. */
static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int main(void) {
    const char *url = env("REDIS_URL");
    aredis_uri *u;
    char err[256];
    if (aredis_uri_parse(url ? url : "rediss://localhost:6380", &u, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err); /* never contains the password */
        return 2;
    }
    if (!aredis_uri_is_tls(u)) {
        fprintf(stderr, "REDIS_URL must be a rediss:// URI\n");
        aredis_uri_free(u);
        return 2;
    }
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(u, &o);                 /* rediss:// sets o.tls = 1 */
    o.tls_ca_file = env("REDIS_TLS_CA");     /* NULL: the system trust store */
    o.tls_cert_file = env("REDIS_TLS_CERT"); /* mutual TLS: both, or neither */
    o.tls_key_file = env("REDIS_TLS_KEY");
    o.reconnect = 0; /* a TLS error is final anyway; fail fast here */
    o.connect_timeout_ms = 5000;

    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(u); /* the client copied what it needs */
    if (!c) {
        /* e.g. AREDIS_ERR_TLS: a CA, certificate or key file that cannot
         * be loaded */
        fprintf(stderr, "invalid options: %s\n", aredis_call_error()->detail);
        aredis_loop_free(loop);
        return 2;
    }
    aredis_client_connect(c);
    int rc = 0;
    aredis_future *f = aredis_future_command(c, "PING");
    if (aredis_await(f) == AREDIS_ERR_OK && strcmp(aredis_future_reply(f)->str, "PONG") == 0) {
        printf("PING over TLS -> %s\n", aredis_future_reply(f)->str);
    } else {
        /* e.g. AREDIS_ERR_TLS: TLS handshake failed: certificate verify
         * failed: hostname mismatch */
        const aredis_error *e = aredis_future_error(f);
        fprintf(stderr, "failed: %s: %s\n", e ? aredis_err_name(e->code) : "PING",
                e ? e->detail : "not PONG");
        rc = 1;
    }
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return rc;
}
