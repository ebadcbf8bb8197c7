/*
 * retry (TEST-PLAN reliability): reconnect on the next command after a
 * close; exponential backoff between attempts; the attempt limit; jitter.
 */
#include "counters.h"

static void test_next_set_reconnects(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.reconnect_delay_ms = 50;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ts_cmd_ok(c, "CLIENT SETNAME victim");
    /* Close the socket from the server side. */
    aredis_client *killer = ts_client(loop, s);
    aredis_future_release(ts_cmd(killer, "CLIENT KILL SKIPME yes TYPE normal"));
    aredis_client_free(killer);
    assert_true(ts_wait(loop, &k.disconnects, 5000));
    ts_cmd_ok(c, "SET retry:after-close ok");
    ts_log("after close: connects=%d", k.connects);
    assert_true(k.connects >= 2);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* Run a client against a port where nothing listens until the policy gives
 * up; returns how long that took. */
static uint64_t run_until_give_up(conn_counters *k, uint32_t delay, uint32_t max_delay,
                                  unsigned attempts, double jitter) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_dead_port();
    o.reconnect_delay_ms = delay;
    o.max_reconnect_delay_ms = max_delay;
    o.max_reconnect_attempts = attempts;
    o.reconnect_jitter = jitter;
    o.connect_timeout_ms = 100;
    o.wait_for_first_connect = 1; /* the ready future waits until it gives up */
    cc_wire(&o, k);
    aredis_client *c = aredis_client_new(loop, &o);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    aredis_future *f = aredis_future_ready(c);
    aredis_err e = aredis_await(f);
    uint64_t took = ts_now_ms() - t0;
    assert_true(aredis_err_is_connection(e));
    ts_log("gave up after %llu ms: %s", (unsigned long long)took, aredis_future_error(f)->detail);
    assert_non_null(strstr(aredis_future_error(f)->detail, "gave up"));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return took;
}

static void test_exponential_backoff(void **state) {
    (void)state;
    conn_counters k;
    run_until_give_up(&k, 100, 1000, 4, 0.0);
    assert_int_equal(k.attempts, 4);
    /* Failed attempts are reported as errors: the initial one, then one per
     * reconnect attempt. */
    assert_int_equal(k.errors, 5);
    uint64_t g12 = k.error_at[2] - k.error_at[1];
    uint64_t g23 = k.error_at[3] - k.error_at[2];
    ts_log("gaps between attempts: 1->2 %llu ms, 2->3 %llu ms; delays %u %u %u %u",
           (unsigned long long)g12, (unsigned long long)g23, k.attempt_delay[0], k.attempt_delay[1],
           k.attempt_delay[2], k.attempt_delay[3]);
    assert_true((double)g23 > 1.5 * (double)g12);
    assert_int_equal(k.attempt_delay[0], 100);
    assert_int_equal(k.attempt_delay[1], 200);
    assert_int_equal(k.attempt_delay[2], 400);
    assert_int_equal(k.attempt_delay[3], 800);
}

static void test_max_attempts(void **state) {
    (void)state;
    conn_counters k;
    uint64_t took = run_until_give_up(&k, 100, 1000, 3, 0.1);
    assert_int_equal(k.attempts, 3);
    assert_true(took < 2000);
}

static void test_backoff_caps(void **state) {
    (void)state;
    conn_counters k;
    run_until_give_up(&k, 50, 120, 5, 0.0);
    assert_int_equal(k.attempt_delay[0], 50);
    assert_int_equal(k.attempt_delay[1], 100);
    for (int i = 2; i < 5; i++)
        assert_int_equal(k.attempt_delay[i], 120);
}

static void test_jitter(void **state) {
    (void)state;
    uint32_t seen[3][3];
    for (int run = 0; run < 3; run++) {
        conn_counters k;
        run_until_give_up(&k, 50, 1000, 3, 0.2);
        for (int i = 0; i < 3; i++) {
            seen[run][i] = k.attempt_delay[i];
            uint32_t base = 50u << i;
            assert_true(seen[run][i] >= base * 8 / 10 && seen[run][i] <= base * 12 / 10 + 1);
        }
    }
    int all_equal = 1;
    for (int run = 1; run < 3; run++)
        for (int i = 0; i < 3; i++)
            if (seen[run][i] != seen[0][i]) all_equal = 0;
    ts_log("jittered first delays: %u %u %u", seen[0][0], seen[1][0], seen[2][0]);
    assert_false(all_equal);
}

static void test_auth_failure_not_retried(void **state) {
    (void)state;
    static const char *const conf[] = {"requirepass right", NULL};
    ts_server *s = ts_server_start(conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.password = "wrong";
    o.reconnect_delay_ms = 10;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    aredis_future *f = aredis_future_ready(c);
    assert_int_equal(aredis_await(f), AREDIS_ERR_AUTH);
    aredis_future_release(f);
    assert_int_equal(k.attempts, 0); /* no retry storm */
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_set_reconnects),
        cmocka_unit_test(test_exponential_backoff),
        cmocka_unit_test(test_max_attempts),
        cmocka_unit_test(test_backoff_caps),
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_auth_failure_not_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
