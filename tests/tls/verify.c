/*
 * TLS connects that must fail, each with AREDIS_ERR_TLS (or, where the
 * server closes the connection, a connection error) and a detail that says
 * why in OpenSSL's words: a CA that did not sign the server, a certificate
 * whose name is not the host connected to (by DNS name and by IP), an
 * expired certificate, mutual TLS without a client certificate, a plain
 * server, and bad TLS options. A verification failure is final: the
 * reconnect policy does not retry it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

typedef struct {
    int connects;
    int errors;
    int attempts;
} counters;

static void on_connect(aredis_client *c, void *data) {
    (void)c;
    ((counters *)data)->connects++;
}
static void on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c, (void)err;
    ((counters *)data)->errors++;
}
static void on_attempt(aredis_client *c, unsigned attempt, uint32_t delay, void *data) {
    (void)c, (void)attempt, (void)delay;
    ((counters *)data)->attempts++;
}

/* Does s contain one of the '|'-separated alternatives in alts? */
static int contains_any(const char *s, const char *alts) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", alts);
    for (char *save = NULL, *a = strtok_r(buf, "|", &save); a; a = strtok_r(NULL, "|", &save))
        if (strstr(s, a)) return 1;
    return 0;
}

/*
 * Connect with o and expect `want`; the detail must contain every one of
 * the NULL-terminated `needles` (each may list alternatives: "a|b").
 * Logs the detail (the report quotes it).
 */
static void expect_failure(aredis_loop *loop, aredis_options o, aredis_err want, const char *what,
                           const char *const *needles) {
    counters k = {0, 0, 0};
    o.on_connect = on_connect;
    o.on_error = on_error;
    o.on_reconnect_attempt = on_attempt;
    o.cb_data = &k;
    if (o.connect_timeout_ms == 0 || o.connect_timeout_ms > 5000) o.connect_timeout_ms = 5000;
    aredis_client *c;
    char detail[512];
    aredis_err e = ts_tls_connect(loop, &o, &c, detail, sizeof detail);
    ts_log("%s: %s: %s", what, aredis_err_name(e), detail);
    if (e != want)
        fail_msg("%s: expected %s, got %s (%s)", what, aredis_err_name(want), aredis_err_name(e),
                 detail);
    for (int i = 0; needles && needles[i]; i++)
        if (!contains_any(detail, needles[i]))
            fail_msg("%s: detail '%s' lacks '%s'", what, detail, needles[i]);
    assert_int_equal(k.connects, 0);
    /* The same reason is kept as the client's last error. */
    const aredis_error *last = aredis_client_last_error(c);
    assert_int_equal(last->code, want);
    /* A certificate that fails verification now fails the same way in
     * 100 ms: the policy does not retry a TLS error, even with reconnect on. */
    if (want == AREDIS_ERR_TLS && o.reconnect) {
        assert_int_equal(k.attempts, 0);
        assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    }
    aredis_client_free(c);
}

/* The client trusts a CA that did not sign the server's certificate. */
static void test_wrong_ca(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.tls_ca_file = ts_tls_file("other-ca.crt");
    /* Redis sends its chain with the CA in it, or just the leaf. */
    static const char *const why[] = {
        "certificate verify failed",
        "self-signed certificate in certificate chain|unable to get local issuer certificate",
        NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "wrong CA", why);
    /* No CA given: the system store does not know the test CA either. */
    o.tls_ca_file = NULL;
    expect_failure(loop, o, AREDIS_ERR_TLS, "system store", why);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/* A valid certificate (our CA) for wrong.example: the name check fails. */
static void test_name_mismatch(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, "wrong-name.crt", "wrong-name.key");
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.reconnect = 0;

    o.host = "127.0.0.1";
    static const char *const ip[] = {"certificate verify failed", "IP address mismatch", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "IP mismatch", ip);

    o.host = "localhost";
    static const char *const dns[] = {"certificate verify failed", "hostname mismatch", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "hostname mismatch", dns);

    /* tls_server_name is what is checked: the right name makes it pass... */
    o.host = "127.0.0.1";
    o.tls_server_name = "wrong.example";
    aredis_client *c;
    char detail[512];
    aredis_err e = ts_tls_connect(loop, &o, &c, detail, sizeof detail);
    if (e != AREDIS_ERR_OK) fail_msg("tls_server_name: %s: %s", aredis_err_name(e), detail);
    ts_cmd_ok(c, "SET k v");
    aredis_client_free(c);
    /* ...and a wrong one fails even when the host would have matched. */
    ts_tls_server_stop(s);
    s = ts_tls_server_start(NULL, NULL, NULL);
    o = ts_tls_options(s);
    o.reconnect = 0;
    o.tls_server_name = "not-localhost.example";
    expect_failure(loop, o, AREDIS_ERR_TLS, "tls_server_name mismatch", dns);
    /* An IP given as the name is matched against the IP SANs only. */
    o.tls_server_name = "127.0.0.2";
    expect_failure(loop, o, AREDIS_ERR_TLS, "other IP", ip);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

static void test_expired_certificate(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, "expired.crt", "expired.key");
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    static const char *const why[] = {"certificate verify failed", "certificate has expired", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "expired", why);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/*
 * Mutual TLS without a client certificate. With TLS 1.3 the client's side of
 * the handshake completes before the server has checked for a certificate;
 * the server's "certificate required" alert arrives on the first read (the
 * HELLO reply), so it is a TLS error during the Redis handshake.
 */
static void test_mutual_tls_without_client_cert(void **state) {
    (void)state;
    static const char *const conf[] = {"tls-auth-clients yes", NULL};
    ts_tls_server *s = ts_tls_server_start(conf, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.reconnect = 0;
    static const char *const why13[] = {"certificate required", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "mTLS without cert (TLS 1.3)", why13);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);

    /* TLS 1.2 only on the server: the refusal comes inside the handshake. */
    static const char *const conf12[] = {"tls-auth-clients yes", "tls-protocols TLSv1.2", NULL};
    s = ts_tls_server_start(conf12, NULL, NULL);
    loop = aredis_loop_new();
    o = ts_tls_options(s);
    o.reconnect = 0;
    static const char *const why12[] = {"TLS handshake failed", "handshake failure", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "mTLS without cert (TLS 1.2)", why12);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/*
 * A plain-text redis-server on the port: it reads the ClientHello as the
 * start of an inline command and waits for its newline, so nothing ever
 * comes back; connect_timeout_ms ends it.
 */
static void test_plain_server(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.tls = 1;
    o.tls_ca_file = ts_tls_file("ca.crt");
    o.reconnect = 0;
    o.connect_timeout_ms = 300;
    expect_failure(loop, o, AREDIS_ERR_TIMEOUT, "plain server", NULL);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* Options that cannot work fail at connect with a clear message. */
static void test_bad_options(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.reconnect = 0;

    o.tls_ca_file = "/nonexistent/ca.crt";
    static const char *const noca[] = {"cannot read tls_ca_file '/nonexistent/ca.crt'",
                                       "No such file or directory", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "missing CA file", noca);

    o = ts_tls_options(s);
    o.reconnect = 0;
    o.tls_cert_file = ts_tls_file("client.crt");
    static const char *const half[] = {"tls_cert_file and tls_key_file", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "cert without key", half);

    o.tls_key_file = ts_tls_file("server.key"); /* not client.crt's key */
    static const char *const mismatch[] = {"cannot use private key", "key values mismatch", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "key mismatch", mismatch);

    o.tls_key_file = "/nonexistent/client.key";
    static const char *const nokey[] = {"cannot read tls_key_file", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "missing key", nokey);

    o.tls_cert_file = ts_tls_file("ca.key"); /* not a certificate */
    o.tls_key_file = ts_tls_file("client.key");
    static const char *const notcert[] = {"cannot load client certificate", NULL};
    expect_failure(loop, o, AREDIS_ERR_TLS, "key as cert", notcert);

    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_name_mismatch),
        cmocka_unit_test(test_expired_certificate),
        cmocka_unit_test(test_mutual_tls_without_client_cert),
        cmocka_unit_test(test_plain_server),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests_name("tls_verify", tests, NULL, NULL);
}
