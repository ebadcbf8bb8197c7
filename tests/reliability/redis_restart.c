/*
 * redis-restart (TEST-PLAN reliability): the client rides through a real
 * server restart (SIGKILL, then the same port, appendonly yes); with
 * reconnect off commands fail with a connection error while the server is
 * down; commands issued while disconnected run after the reconnect.
 */
#include "counters.h"
#include "proxy.h"

static const char *const k_aof[] = {"appendonly yes", "appendfsync always", NULL};

static void test_reconnects_after_restart(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_aof, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.reconnect_delay_ms = 100;
    o.max_reconnect_delay_ms = 2000;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(loop, &o);
    ts_cmd_ok(c, "SET restart:key %s", "survives");

    ts_server_restart(s); /* SIGKILL, then start again on the same port */
    aredis_future *f = aredis_future_command(c, "GET restart:key");
    aredis_err e = aredis_await(f);
    /* The GET may have been written to the dying connection; then it fails
     * once (at most once) and a second GET goes over the new connection. */
    if (e != AREDIS_ERR_OK) {
        assert_true(aredis_err_is_connection(e));
        aredis_future_release(f);
        f = aredis_future_command(c, "GET restart:key");
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    }
    assert_string_equal(aredis_future_reply(f)->str, "survives");
    aredis_future_release(f);
    ts_log("restart: connects=%d disconnects=%d attempts=%d", k.connects, k.disconnects,
           k.attempts);
    assert_true(k.disconnects >= 1);
    assert_true(k.connects >= 2);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

static void test_fails_while_down_without_reconnect(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_aof, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.reconnect = 0;
    o.request_timeout_ms = 1000;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(loop, &o);
    ts_server_kill(s);
    reply_rec r = {0};
    aredis_err e = aredis_command(c, ts_on_reply, &r, "GET restart:x");
    if (e == AREDIS_ERR_OK) {
        assert_true(ts_wait(loop, &r.done, 5000));
        assert_int_equal(r.calls, 1);
        ts_log("GET while down: %s", aredis_err_name(r.code));
        assert_true(aredis_err_is_connection(r.code));
    } else {
        /* The client had already seen the close: refused at once. */
        assert_int_equal(e, AREDIS_ERR_NOT_CONNECTED);
    }
    /* And it stays down: no reconnect was attempted. */
    assert_int_equal(k.attempts, 0);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    ts_server_restart(s);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ts_cmd_ok(c, "SET restart:back yes");
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

static void test_queued_commands_run_after_reconnect(void **state) {
    (void)state;
    ts_proxied rig;
    aredis_options o = ts_proxied_start(&rig);
    o.reconnect_delay_ms = 50;
    o.max_reconnect_delay_ms = 200;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(rig.loop, &o);

    /* Cut the connection and keep the way closed. */
    ts_proxy_refuse(rig.px, 1);
    ts_proxy_close_all(rig.px);
    assert_true(ts_wait(rig.loop, &k.disconnects, 5000));
    reply_rec r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "SET queued:%d v%d", i, i),
                         AREDIS_ERR_OK);
    /* Some attempts fail while the way is closed; the SETs wait. */
    while (k.errors < 3)
        assert_true(aredis_loop_run_once(rig.loop, 1));
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 0);

    ts_proxy_refuse(rig.px, 0);
    assert_true(ts_wait(rig.loop, &r[2].done, 5000));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
        aredis_future *f = ts_cmd(c, "GET queued:%d", i);
        char want[8];
        snprintf(want, sizeof want, "v%d", i);
        assert_string_equal(aredis_future_reply(f)->str, want);
        aredis_future_release(f);
    }
    assert_true(k.connects >= 2);
    ts_proxied_stop(&rig, c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconnects_after_restart),
        cmocka_unit_test(test_fails_while_down_without_reconnect),
        cmocka_unit_test(test_queued_commands_run_after_reconnect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
