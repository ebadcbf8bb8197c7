/*
 * TLS connects that must work: a TLS-only redis-server (`port 0`,
 * `tls-port N`) verified against the test CA, by IP literal (IP SAN) and by
 * DNS name (DNS SAN), with tls_server_name, with a CA directory, through a
 * rediss:// URI, with mutual TLS, and with verification explicitly off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls.h"

/* Connect with o, assert success, SET/GET a value, free the client. */
static void roundtrip(aredis_loop *loop, const aredis_options *o, const char *what) {
    aredis_client *c;
    char detail[512];
    aredis_err e = ts_tls_connect(loop, o, &c, detail, sizeof detail);
    if (e != AREDIS_ERR_OK) fail_msg("%s: %s: %s", what, aredis_err_name(e), detail);
    ts_cmd_ok(c, "SET tls:%s %s", what, "value");
    aredis_future *f = ts_cmd(c, "GET tls:%s", what);
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "value");
    aredis_future_release(f);
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    assert_int_equal(st.connects, 1);
    aredis_client_free(c);
}

static void test_verified_by_ca_file(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    assert_int_equal(o.tls_insecure_skip_verify, 0); /* verification is the default */
    roundtrip(loop, &o, "ca-file");
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/* The certificate has IP:127.0.0.1 and DNS:localhost: both names verify. */
static void test_ip_and_dns_names(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.host = "127.0.0.1";
    roundtrip(loop, &o, "ipv4-literal");
    o.host = "localhost"; /* may resolve to ::1 first: the client moves on to 127.0.0.1 */
    roundtrip(loop, &o, "dns-name");
    /* tls_server_name: connect by IP, verify (and send SNI for) a name. */
    o.host = "127.0.0.1";
    o.tls_server_name = "localhost";
    roundtrip(loop, &o, "server-name");
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/* tls_ca_path: a directory of certificates named by subject hash. */
static void test_ca_path(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    char cmd[1024], hash[64] = "", dir[512], link[700];
    snprintf(cmd, sizeof cmd, "openssl x509 -hash -noout -in '%s'", ts_tls_file("ca.crt"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(hash, sizeof hash, p));
    pclose(p);
    hash[strcspn(hash, "\r\n")] = '\0';
    assert_true(strlen(hash) > 0);
    snprintf(dir, sizeof dir, "%s/capath", ts_tls_server_dir(s));
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(link, sizeof link, "%s/%s.0", dir, hash);
    assert_int_equal(symlink(ts_tls_file("ca.crt"), link), 0);

    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.tls_ca_file = NULL;
    o.tls_ca_path = dir;
    roundtrip(loop, &o, "ca-path");
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/* rediss:// turns TLS on; the CA still comes from the options. */
static void test_rediss_uri(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    char uri[128], err[256];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d/2?name=tls-uri", ts_tls_server_port(s));
    aredis_uri *u;
    assert_int_equal(aredis_uri_parse(uri, &u, err, sizeof err), AREDIS_ERR_OK);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.tls_ca_file = ts_tls_file("ca.crt");
    aredis_uri_apply(u, &o);
    assert_int_equal(o.tls, 1);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c;
    char detail[512];
    aredis_err e = ts_tls_connect(loop, &o, &c, detail, sizeof detail);
    aredis_uri_free(u); /* the client copied what it needs */
    if (e != AREDIS_ERR_OK) fail_msg("rediss:// connect: %s: %s", aredis_err_name(e), detail);
    aredis_future *f = ts_cmd(c, "CLIENT GETNAME");
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "tls-uri");
    aredis_future_release(f);
    char db[16];
    assert_true(ts_client_field(c, "db", db, sizeof db));
    assert_string_equal(db, "2");
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/* Mutual TLS: tls-auth-clients yes, and the client presents its cert. */
static void test_mutual_tls_with_client_cert(void **state) {
    (void)state;
    static const char *const conf[] = {"tls-auth-clients yes", NULL};
    ts_tls_server *s = ts_tls_server_start(conf, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.tls_cert_file = ts_tls_file("client.crt");
    o.tls_key_file = ts_tls_file("client.key");
    roundtrip(loop, &o, "mtls");
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/*
 * tls_insecure_skip_verify: connects although nothing checks out — a CA
 * that did not sign the server, a name that does not match, an expired
 * certificate, or no CA at all.
 */
static void test_insecure_skip_verify(void **state) {
    (void)state;
    aredis_loop *loop = aredis_loop_new();

    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_options o = ts_tls_options(s);
    o.tls_ca_file = ts_tls_file("other-ca.crt");
    o.tls_insecure_skip_verify = 1;
    roundtrip(loop, &o, "skip-wrong-ca");
    o.tls_ca_file = NULL; /* the system store does not know our CA either */
    roundtrip(loop, &o, "skip-no-ca");
    ts_tls_server_stop(s);

    s = ts_tls_server_start(NULL, "wrong-name.crt", "wrong-name.key");
    o = ts_tls_options(s);
    o.tls_insecure_skip_verify = 1;
    roundtrip(loop, &o, "skip-wrong-name");
    ts_tls_server_stop(s);

    s = ts_tls_server_start(NULL, "expired.crt", "expired.key");
    o = ts_tls_options(s);
    o.tls_insecure_skip_verify = 1;
    roundtrip(loop, &o, "skip-expired");
    ts_tls_server_stop(s);

    aredis_loop_free(loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verified_by_ca_file),
        cmocka_unit_test(test_ip_and_dns_names),
        cmocka_unit_test(test_ca_path),
        cmocka_unit_test(test_rediss_uri),
        cmocka_unit_test(test_mutual_tls_with_client_cert),
        cmocka_unit_test(test_insecure_skip_verify),
    };
    return cmocka_run_group_tests_name("tls_connect", tests, NULL, NULL);
}
