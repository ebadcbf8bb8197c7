/*
 * A TLS context built once (aredis_tls_context_new) and shared by many
 * clients: each verifies the server and works; the context outlives the
 * caller's reference while clients hold theirs; a context whose files do not
 * load is refused at once, with why; and a client given a shared context
 * uses it rather than its own tls_* fields.
 */
#include <stdio.h>
#include <string.h>

#include "tls.h"

#define N 8

static int connected_twice(const void *arg) {
    aredis_client_stats st;
    aredis_client_get_stats((const aredis_client *)arg, &st);
    return st.connects >= 2;
}

static void test_many_clients_one_context(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options t = AREDIS_OPTIONS_INIT;
    t.tls_ca_file = ts_tls_file("ca.crt");
    aredis_tls_context *tls = aredis_tls_context_new(&t);
    assert_non_null(tls);
    aredis_client *c[N];
    for (int i = 0; i < N; i++) {
        aredis_options o = ts_tls_options(s);
        o.tls_ca_file = "/nonexistent/ca.crt"; /* the shared context wins */
        o.tls_context = tls;
        char detail[256];
        aredis_err e = ts_tls_connect(loop, &o, &c[i], detail, sizeof detail);
        if (e != AREDIS_ERR_OK) fail_msg("client %d: %s: %s", i, aredis_err_name(e), detail);
    }
    /* The caller lets go; the clients keep the context alive. */
    aredis_tls_context_release(tls);
    for (int i = 0; i < N; i++) {
        ts_cmd_ok(c[i], "SET tls:shared:%d %d", i, i);
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        ts_cmd_bytes(c[i], want, strlen(want), "GET tls:shared:%d", i);
    }
    /* A reconnect uses the same context: the server restarts, and the
     * client is back (a second connect) and works. */
    ts_tls_server_kill(s);
    ts_tls_server_restart(s);
    assert_true(ts_wait_until(loop, connected_twice, c[0], 10000));
    ts_cmd_ok(c[0], "SET tls:shared:after %s", "restart");
    for (int i = 0; i < N; i++)
        aredis_client_free(c[i]);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

static void test_verification_still_applies(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options t = AREDIS_OPTIONS_INIT;
    t.tls_ca_file = ts_tls_file("other-ca.crt"); /* not the server's CA */
    aredis_tls_context *tls = aredis_tls_context_new(&t);
    assert_non_null(tls);
    aredis_options o = ts_tls_options(s);
    o.tls_context = tls;
    o.reconnect = 0;
    aredis_client *c;
    char detail[256];
    assert_int_equal(ts_tls_connect(loop, &o, &c, detail, sizeof detail), AREDIS_ERR_TLS);
    ts_log("shared context, wrong CA: %s", detail);
    assert_non_null(strstr(detail, "certificate verify failed"));
    aredis_client_free(c);
    aredis_tls_context_release(tls);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

static void test_bad_files_refused_at_once(void **state) {
    (void)state;
    aredis_options t = AREDIS_OPTIONS_INIT;
    t.tls_ca_file = "/nonexistent/ca.crt";
    assert_null(aredis_tls_context_new(&t));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_TLS);
    assert_non_null(strstr(aredis_call_error()->detail, "/nonexistent/ca.crt"));
    t.tls_ca_file = ts_tls_file("ca.crt");
    t.tls_cert_file = ts_tls_file("client.crt"); /* without its key */
    assert_null(aredis_tls_context_new(&t));
    assert_non_null(strstr(aredis_call_error()->detail, "tls_key_file"));
    assert_null(aredis_tls_context_new(NULL));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    /* retain/release pair and NULL */
    t.tls_cert_file = NULL;
    aredis_tls_context *tls = aredis_tls_context_new(&t);
    assert_non_null(tls);
    assert_ptr_equal(aredis_tls_context_retain(tls), tls);
    aredis_tls_context_release(tls);
    aredis_tls_context_release(tls);
    aredis_tls_context_release(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_clients_one_context),
        cmocka_unit_test(test_verification_still_applies),
        cmocka_unit_test(test_bad_files_refused_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
