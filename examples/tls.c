/*
 * tls — connect over TLS with the server's certificate verified (chain AND
 * name; see docs/SECURITY.md).
 *
 *   ./example_tls rediss://127.0.0.1:6380 ca.crt [client.crt client.key]
 *
 * A server to try it on (certificates from scripts/gen-test-certs.sh):
 *   scripts/gen-test-certs.sh /tmp/certs
 *   redis-server --port 0 --tls-port 6380 --tls-cert-file /tmp/certs/server.crt \
 *       --tls-key-file /tmp/certs/server.key --tls-ca-cert-file /tmp/certs/ca.crt \
 *       --tls-auth-clients optional
 *   ./example_tls rediss://localhost:6380 /tmp/certs/ca.crt
 *
 * There is deliberately no "skip verification" switch here: see
 * docs/SECURITY.md for why tls_insecure_skip_verify is not for production.
 */
#include <aredis/aredis.h>
#include <stdio.h>

int main(int argc, char **argv) {
    const char *s = argc > 1 ? argv[1] : "rediss://localhost:6380";
    aredis_uri *u;
    char err[256];
    if (aredis_uri_parse(s, &u, err, sizeof err) != AREDIS_ERR_OK) {
        fprintf(stderr, "bad URI: %s\n", err); /* never contains the password */
        return 2;
    }
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(u, &o);                   /* rediss:// sets o.tls = 1 */
    o.tls_ca_file = argc > 2 ? argv[2] : NULL; /* NULL: the system trust store */
    if (argc > 4) {                            /* mutual TLS */
        o.tls_cert_file = argv[3];
        o.tls_key_file = argv[4];
    }
    o.reconnect = 0; /* a TLS error is final anyway; fail fast here */
    o.connect_timeout_ms = 5000;

    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(u); /* the client copied what it needs */
    if (!c) {
        fprintf(stderr, "invalid options\n");
        aredis_loop_free(loop);
        return 2;
    }
    aredis_client_connect(c);
    int rc = 0;
    aredis_future *f = aredis_future_command(c, "PING");
    if (aredis_await(f) == AREDIS_ERR_OK) {
        printf("PING over TLS -> %s\n", aredis_future_reply(f)->str);
    } else {
        /* e.g. AREDIS_ERR_TLS: TLS handshake failed: certificate verify
         * failed: hostname mismatch */
        const aredis_error *e = aredis_future_error(f);
        fprintf(stderr, "failed: %s: %s\n", aredis_err_name(e->code), e->detail);
        rc = 1;
    }
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return rc;
}
