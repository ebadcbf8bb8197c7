/*
 * slow-commands (TEST-PLAN reliability): request and per-command timeouts
 * against a server stuck in DEBUG SLEEP; the loop keeps running; a timed-out
 * command's late reply is never delivered to another command.
 */
#include <stdio.h>
#include <string.h>

#include "ts.h"

static const char *const k_debug_conf[] = {"enable-debug-command local", NULL};

typedef ts_result result;

static aredis_client *client_with_timeout(aredis_loop *loop, ts_server *s, uint32_t timeout) {
    aredis_options o = ts_options(s);
    o.request_timeout_ms = timeout;
    return ts_connect(loop, &o);
}

static void test_request_timeout(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_debug_conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = client_with_timeout(loop, s, 500);
    result r = {0};
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "DEBUG SLEEP 5"), AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &r.done, 3000));
    uint64_t took = r.at - t0;
    ts_log("DEBUG SLEEP 5 with 0.5 s timeout failed after %llu ms", (unsigned long long)took);
    assert_int_equal(r.code, AREDIS_ERR_TIMEOUT);
    assert_true(took >= 400);
    assert_true(took < 1500);
    assert_int_equal(r.calls, 1);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_kill(s);
    ts_server_stop(s);
}

static void test_per_command_timeout(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_debug_conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = client_with_timeout(loop, s, 10000);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 500;
    const char *argv[] = {"DEBUG", "SLEEP", "5"};
    result r = {0};
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_command_argv_ex(c, &co, ts_on_reply, &r, 3, argv, NULL), AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &r.done, 3000));
    assert_int_equal(r.code, AREDIS_ERR_TIMEOUT);
    assert_true(r.at - t0 < 1500);
    assert_true(r.at - t0 >= 400);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_kill(s);
    ts_server_stop(s);
}

static void tick(void *arg) { (*(int *)arg)++; }

static void test_timer_ticks_during_sleep(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_debug_conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = client_with_timeout(loop, s, 0);
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(loop, tick, &ticks);
    aredis_timer_start(t, 20, 20);
    result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "DEBUG SLEEP 0.2"), AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &r.done, 5000));
    assert_int_equal(r.code, AREDIS_ERR_OK);
    ts_log("20 ms timer ticked %d times during DEBUG SLEEP 0.2", ticks);
    assert_true(ticks >= 5);
    aredis_timer_free(t);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* DEBUG SLEEP 5 then two GETs, all with a 0.5 s timeout: every command
 * finishes once; the late replies go nowhere; a later GET gets its own. */
static void test_no_reply_goes_astray(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_debug_conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = client_with_timeout(loop, s, 500);
    ts_cmd_ok(c, "SET k1 v1");
    ts_cmd_ok(c, "SET k2 v2");
    result sl = {0}, g1 = {0}, g2 = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &sl, "DEBUG SLEEP 5"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &g1, "GET k1"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &g2, "GET k2"), AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &g2.done, 3000));
    assert_int_equal(sl.code, AREDIS_ERR_TIMEOUT);
    assert_int_equal(g1.code, AREDIS_ERR_TIMEOUT);
    assert_int_equal(g2.code, AREDIS_ERR_TIMEOUT);

    /* Behind the three orphans: a GET with a long deadline gets ITS value. */
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 15000;
    const char *argv[] = {"GET", "k2"};
    result after = {0};
    assert_int_equal(aredis_command_argv_ex(c, &co, ts_on_reply, &after, 2, argv, NULL),
                     AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &after.done, 15000));
    assert_int_equal(after.code, AREDIS_ERR_OK);
    assert_string_equal(after.text, "v2");
    assert_int_equal(sl.calls + g1.calls + g2.calls + after.calls, 4);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* A GET queued behind a command that timed out gets its own correct value. */
static void test_get_behind_timed_out_command(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_debug_conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = client_with_timeout(loop, s, 0);
    ts_cmd_ok(c, "SET behind %s", "mine");
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 200;
    const char *sleep_argv[] = {"DEBUG", "SLEEP", "0.8"};
    result sl = {0}, g = {0};
    assert_int_equal(aredis_command_argv_ex(c, &co, ts_on_reply, &sl, 3, sleep_argv, NULL),
                     AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &g, "GET behind"), AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &g.done, 5000));
    assert_int_equal(sl.code, AREDIS_ERR_TIMEOUT);
    assert_true(sl.at < g.at);
    assert_int_equal(g.code, AREDIS_ERR_OK);
    assert_string_equal(g.text, "mine");
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* A cancelled future's late reply is dropped too (the redis-py CVE case). */
static void test_cancel_then_next_commands(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_debug_conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = client_with_timeout(loop, s, 0);
    ts_cmd_ok(c, "SET a %s", "A");
    ts_cmd_ok(c, "SET b %s", "B");
    aredis_future *slow = aredis_future_command(c, "DEBUG SLEEP 0.3");
    aredis_future *ga = aredis_future_command(c, "GET a");
    aredis_future_cancel(slow);
    assert_int_equal(aredis_future_error(slow)->code, AREDIS_ERR_CANCELLED);
    aredis_future *gb = aredis_future_command(c, "GET b");
    assert_int_equal(aredis_await(ga), AREDIS_ERR_OK);
    assert_int_equal(aredis_await(gb), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(ga)->str, "A");
    assert_string_equal(aredis_future_reply(gb)->str, "B");
    aredis_future_release(slow);
    aredis_future_release(ga);
    aredis_future_release(gb);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* A server that never answers again: past the dead-link grace the
 * connection is declared dead instead of waiting forever. */
static void test_dead_link_detected(void **state) {
    (void)state;
    ts_server *s = ts_server_start(k_debug_conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.request_timeout_ms = 200;
    o.dead_timeout_ms = 300;
    o.reconnect = 0; /* observe the dead link, not the recovery */
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "DEBUG SLEEP 3"), AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &r.done, 3000));
    assert_int_equal(r.code, AREDIS_ERR_TIMEOUT);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    uint64_t t0 = ts_now_ms();
    while (aredis_client_state(c) == AREDIS_STATE_READY && ts_now_ms() - t0 < 2500)
        aredis_loop_run_once(loop, 1);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    assert_int_equal(aredis_client_last_error(c)->code, AREDIS_ERR_TIMEOUT);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_kill(s);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_per_command_timeout),
        cmocka_unit_test(test_timer_ticks_during_sleep),
        cmocka_unit_test(test_no_reply_goes_astray),
        cmocka_unit_test(test_get_behind_timed_out_command),
        cmocka_unit_test(test_cancel_then_next_commands),
        cmocka_unit_test(test_dead_link_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
