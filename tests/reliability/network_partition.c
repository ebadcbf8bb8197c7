/*
 * network-partition (TEST-PLAN reliability), with the fault-injecting proxy
 * standing in for the network: a connection closed under a slow command
 * fails it with a connection error; after the partition heals the client
 * reconnects by itself; commands in flight finish exactly once; the loop is
 * never blocked while reconnecting.
 */
#include "counters.h"
#include "proxy.h"

static ts_server *g_srv;
static ts_proxy *g_proxy;

static int setup(void **state) {
    (void)state;
    static const char *const conf[] = {"enable-debug-command local", NULL};
    g_srv = ts_server_start(conf, 0);
    g_proxy = ts_proxy_start("127.0.0.1", ts_server_port(g_srv));
    return 0;
}

/* Also after a failed setup: then either may be NULL (both calls take it). */
static int teardown(void **state) {
    (void)state;
    ts_proxy_stop(g_proxy);
    g_proxy = NULL;
    ts_server_kill(g_srv); /* it may still be in DEBUG SLEEP */
    ts_server_stop(g_srv);
    g_srv = NULL;
    return 0;
}

static aredis_client *via_proxy(aredis_loop *loop, aredis_options *o) {
    o->port = ts_proxy_port(g_proxy);
    return ts_connect(loop, o);
}

static void test_closed_during_slow_command(void **state) {
    (void)state;
    ts_proxy_pass(g_proxy);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.reconnect = 0;
    aredis_client *c = via_proxy(loop, &o);
    reply_rec r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "DEBUG SLEEP 5"), AREDIS_ERR_OK);
    /* Once the command has left the client, cut the link. */
    aredis_client_stats st;
    do {
        aredis_loop_run_once(loop, 0);
        aredis_client_get_stats(c, &st);
    } while (st.bytes_out == 0);
    uint64_t t0 = ts_now_ms();
    ts_proxy_close_all(g_proxy);
    assert_true(ts_wait(loop, &r.done, 3000));
    ts_log("DEBUG SLEEP 5 cut after %llu ms: %s", (unsigned long long)(ts_now_ms() - t0),
           aredis_err_name(r.code));
    assert_int_equal(r.calls, 1);
    assert_true(aredis_err_is_connection(r.code)); /* not TIMEOUT, not a hang */
    assert_true(ts_now_ms() - t0 < 3000);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_restart(g_srv); /* end the DEBUG SLEEP for the next tests */
}

static void test_reconnects_when_healed(void **state) {
    (void)state;
    ts_proxy_pass(g_proxy);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.reconnect_delay_ms = 50;
    o.max_reconnect_delay_ms = 200;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = via_proxy(loop, &o);
    ts_cmd_ok(c, "SET part:before written-before");
    aredis_future *f;

    ts_proxy_refuse(g_proxy, 1);
    ts_proxy_close_all(g_proxy);
    assert_true(ts_wait(loop, &k.disconnects, 5000));
    while (k.errors < 3)
        assert_true(aredis_loop_run_once(loop, 1)); /* partitioned */
    ts_proxy_refuse(g_proxy, 0);                    /* healed */
    while (k.connects < 2)
        assert_true(aredis_loop_run_once(loop, 1));
    f = ts_cmd(c, "GET part:before");
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "written-before");
    aredis_future_release(f);
    assert_true(k.disconnects >= 1);
    assert_true(k.connects >= 2);
    aredis_client_free(c);
    aredis_loop_free(loop);
}

static void test_in_flight_finish_once(void **state) {
    (void)state;
    ts_proxy_pass(g_proxy);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.reconnect_delay_ms = 50;
    aredis_client *c = via_proxy(loop, &o);
    /* The link goes silent: the SETs leave the client but never arrive. */
    ts_proxy_blackhole(g_proxy, 1);
    reply_rec r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "SET inflight:%d x", i), 0);
    aredis_client_stats st;
    do {
        aredis_loop_run_once(loop, 0);
        aredis_client_get_stats(c, &st);
    } while (st.bytes_out == 0);
    ts_proxy_close_all(g_proxy);
    ts_proxy_blackhole(g_proxy, 0);
    assert_true(ts_wait(loop, &r[2].done, 5000));
    int errors = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        if (r[i].code != AREDIS_ERR_OK) errors++;
    }
    ts_log("3 SETs in flight at the drop: %d failed", errors);
    assert_true(errors >= 1);
    /* Running on: none of them is called again (none was re-sent). */
    aredis_future_release(ts_cmd(c, "PING"));
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 1);
    aredis_client_free(c);
    aredis_loop_free(loop);
}

static void on_tick(void *arg) { (*(int *)arg)++; }

static void test_loop_not_blocked_while_reconnecting(void **state) {
    (void)state;
    ts_proxy_pass(g_proxy);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.reconnect_delay_ms = 20;
    o.max_reconnect_delay_ms = 100;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = via_proxy(loop, &o);
    ts_proxy_refuse(g_proxy, 1);
    ts_proxy_close_all(g_proxy);
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(loop, on_tick, &ticks);
    aredis_timer_start(t, 50, 50);
    uint64_t t0 = ts_now_ms();
    while (ts_now_ms() - t0 < 500)
        aredis_loop_run_once(loop, 1);
    ts_log("50 ms timer: %d ticks in 500 ms while %d reconnect attempts were made", ticks,
           k.attempts);
    assert_true(ticks >= 5);
    assert_true(k.attempts >= 2);
    ts_proxy_refuse(g_proxy, 0);
    aredis_timer_free(t);
    aredis_client_free(c);
    aredis_loop_free(loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_during_slow_command),
        cmocka_unit_test(test_reconnects_when_healed),
        cmocka_unit_test(test_in_flight_finish_once),
        cmocka_unit_test(test_loop_not_blocked_while_reconnecting),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
