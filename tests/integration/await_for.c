/*
 * Waiting with a deadline, on the built-in loop: aredis_await_for() (a
 * timeout that leaves the future pending and usable; the future's own
 * outcome when it is done first) and aredis_loop_run_for() (returns when
 * the time is up, on aredis_loop_stop(), or when nothing is left to watch).
 * The adapter loops run the same through tests/adapter/run_for_*.c.
 *
 * Timing assertions are lower bounds (timers never fire early), with
 * generous upper bounds only.
 */
#include <string.h>

#include "ts.h"

static const char *const k_debug_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv;
static aredis_loop *g_loop;
static aredis_client *g_c;

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_debug_conf, 0);
    g_loop = aredis_loop_new();
    g_c = ts_client(g_loop, g_srv);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_client_free(g_c);
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

/* ---- aredis_await_for ---------------------------------------------------- */

/*
 * DEBUG SLEEP 0.5 awaited for 100 ms: TIMEOUT after at least 100 ms, the
 * future still pending (no error, no reply); a later aredis_await() gets its
 * OK, about 0.5 s after it was issued.
 */
static void test_timeout_then_await(void **state) {
    (void)state;
    uint64_t t0 = ts_now_ms();
    aredis_future *f = aredis_future_command(g_c, "DEBUG SLEEP %.1f", 0.5);
    assert_int_equal(aredis_await_for(f, 100), AREDIS_ERR_TIMEOUT);
    uint64_t t1 = ts_now_ms() - t0;
    assert_false(aredis_future_is_done(f));
    assert_null(aredis_future_error(f));
    assert_null(aredis_future_reply(f));
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    uint64_t t2 = ts_now_ms() - t0;
    ts_log("await_for 100 ms: TIMEOUT after %llu ms; await: OK after %llu ms",
           (unsigned long long)t1, (unsigned long long)t2);
    assert_true(t1 >= 95);
    assert_true(t1 < 5000);
    assert_true(t2 >= 450);
    assert_string_equal(aredis_future_reply(f)->str, "OK");
    /* Done now: await_for returns the outcome at once, any timeout. */
    assert_int_equal(aredis_await_for(f, 0), AREDIS_ERR_OK);
    aredis_future_release(f);
}

/* Several short waits in a row on the same future, then it completes. */
static void test_repeated_waits(void **state) {
    (void)state;
    aredis_future *f = aredis_future_command(g_c, "DEBUG SLEEP %.1f", 0.4);
    int timeouts = 0;
    aredis_err e;
    while ((e = aredis_await_for(f, 50)) == AREDIS_ERR_TIMEOUT) {
        assert_false(aredis_future_is_done(f));
        timeouts++;
        assert_true(timeouts < 200);
    }
    ts_log("DEBUG SLEEP 0.4 done after %d waits of 50 ms", timeouts);
    assert_int_equal(e, AREDIS_ERR_OK);
    assert_true(timeouts >= 5);
    aredis_future_release(f);
}

/* Done before the deadline: the reply, well before it. */
static void test_done_first(void **state) {
    (void)state;
    uint64_t t0 = ts_now_ms();
    aredis_future *f = aredis_future_command(g_c, "ECHO %s", "quick");
    assert_int_equal(aredis_await_for(f, 60000), AREDIS_ERR_OK);
    assert_true(ts_now_ms() - t0 < 5000);
    assert_string_equal(aredis_future_reply(f)->str, "quick");
    aredis_future_release(f);

    /* A server error is the future's outcome too. */
    f = aredis_future_command(g_c, "NOSUCHCOMMAND %d", 1);
    assert_int_equal(aredis_await_for(f, 5000), AREDIS_ERR_SERVER);
    assert_non_null(aredis_future_error(f));
    aredis_future_release(f);
}

/*
 * The command's own TIMEOUT (150 ms per-command deadline) against the wait's
 * (5 s): the future is done, failed with TIMEOUT; aredis_future_is_done()
 * tells the two apart.
 */
static void test_command_timeout_is_the_outcome(void **state) {
    (void)state;
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 150;
    uint64_t t0 = ts_now_ms();
    aredis_future *f = aredis_future_command_ex(g_c, &co, "DEBUG SLEEP %.1f", 0.5);
    assert_int_equal(aredis_await_for(f, 5000), AREDIS_ERR_TIMEOUT);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_TIMEOUT);
    assert_true(ts_now_ms() - t0 >= 140);
    aredis_future_release(f);
    ts_cmd_ok(g_c, "SET awaitfor:after %s", "timeout"); /* waits out the sleep */
}

/* A wait that timed out, then a cancel: CANCELLED; the client carries on. */
static void test_timeout_then_cancel(void **state) {
    (void)state;
    aredis_future *f = aredis_future_command(g_c, "DEBUG SLEEP %.1f", 0.3);
    assert_int_equal(aredis_await_for(f, 50), AREDIS_ERR_TIMEOUT);
    aredis_future_cancel(f);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    assert_int_equal(aredis_await_for(f, 1000), AREDIS_ERR_CANCELLED);
    aredis_future_release(f);
    ts_cmd_ok(g_c, "SET awaitfor:after %s", "cancel");
}

/* 0 ms: one turn that does not block. */
static void test_zero_timeout(void **state) {
    (void)state;
    aredis_future *f = aredis_future_command(g_c, "DEBUG SLEEP %.1f", 0.2);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_await_for(f, 0), AREDIS_ERR_TIMEOUT);
    assert_true(ts_now_ms() - t0 < 150);
    assert_false(aredis_future_is_done(f));
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
}

/* Futures refused at issue, and NULL. */
static void test_already_failed(void **state) {
    (void)state;
    aredis_future *f = aredis_future_command(g_c, "GET %q", 1);
    assert_int_equal(aredis_await_for(f, 1000), AREDIS_ERR_INVALID);
    aredis_future_release(f);
    assert_int_equal(aredis_await_for(NULL, 10), AREDIS_ERR_INVALID);
    /* all() of nothing is done at once, and has no loop. */
    f = aredis_future_all(NULL, 0);
    assert_int_equal(aredis_await_for(f, 10), AREDIS_ERR_OK);
    aredis_future_release(f);
}

/* A combinator is waited on the same way. */
static void test_combinator(void **state) {
    (void)state;
    aredis_future *fs[2];
    fs[0] = aredis_future_command(g_c, "DEBUG SLEEP %.1f", 0.3);
    fs[1] = aredis_future_command(g_c, "PING");
    aredis_future *all = aredis_future_all(fs, 2);
    assert_int_equal(aredis_await_for(all, 50), AREDIS_ERR_TIMEOUT);
    assert_int_equal(aredis_await_for(all, 10000), AREDIS_ERR_OK);
    assert_true(aredis_future_is_done(fs[1]));
    aredis_future_release(all);
    aredis_future_release(fs[0]);
    aredis_future_release(fs[1]);
}

/* ---- aredis_loop_run_for ------------------------------------------------- */

/* A connected, idle client: run_for(200) returns 1 after at least 200 ms. */
static void test_run_for_idle(void **state) {
    (void)state;
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(g_loop, 200), 1);
    uint64_t took = ts_now_ms() - t0;
    ts_log("run_for(200) on an idle client returned after %llu ms", (unsigned long long)took);
    assert_true(took >= 190);
    assert_true(took < 5000);
    assert_int_equal(aredis_client_state(g_c), AREDIS_STATE_READY);
}

/* Commands issued before it complete during it; it still runs its time. */
static void test_run_for_dispatches(void **state) {
    (void)state;
    ts_result r = {0};
    assert_int_equal(aredis_command(g_c, ts_on_reply, &r, "ECHO %5.1f", 2.5), AREDIS_ERR_OK);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(g_loop, 150), 1);
    assert_true(ts_now_ms() - t0 >= 140);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_string_equal(r.text, "  2.5");
}

static void stop_loop(void *arg) { aredis_loop_stop(arg); }
static void count_tick(void *arg) { (*(int *)arg)++; }

/* aredis_loop_stop() from a callback ends it early; the request is consumed. */
static void test_run_for_stop(void **state) {
    (void)state;
    aredis_timer *t = aredis_timer_new(g_loop, stop_loop, g_loop);
    aredis_timer_start(t, 50, 0);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(g_loop, 60000), 1);
    uint64_t took = ts_now_ms() - t0;
    assert_true(took >= 45);
    assert_true(took < 5000);
    /* Consumed: the next run_for runs its time. */
    t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(g_loop, 100), 1);
    assert_true(ts_now_ms() - t0 >= 95);
    /* A stop made before the call ends it at once, and is consumed. */
    aredis_loop_stop(g_loop);
    t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(g_loop, 60000), 1);
    assert_true(ts_now_ms() - t0 < 5000);
    aredis_timer_free(t);
}

/* User timers tick during it. */
static void test_run_for_timers_tick(void **state) {
    (void)state;
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(g_loop, count_tick, &ticks);
    aredis_timer_start(t, 20, 20);
    assert_int_equal(aredis_loop_run_for(g_loop, 300), 1);
    ts_log("a 20 ms timer ticked %d times in run_for(300)", ticks);
    assert_true(ticks >= 5);
    aredis_timer_free(t);
}

/* On a loop with nothing to watch it returns 0 at once; with only a timer,
 * once the timer has fired; 0 ms is one turn. */
static void test_run_for_nothing_left(void **state) {
    (void)state;
    aredis_loop *loop = aredis_loop_new();
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(loop, 60000), 0);
    assert_true(ts_now_ms() - t0 < 5000);
    assert_int_equal(aredis_loop_run_for(loop, 0), 0);

    int ticks = 0;
    aredis_timer *t = aredis_timer_new(loop, count_tick, &ticks);
    aredis_timer_start(t, 50, 0);
    assert_int_equal(aredis_loop_run_for(loop, 0), 1); /* armed, not due */
    assert_int_equal(ticks, 0);
    t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(loop, 60000), 0);
    uint64_t took = ts_now_ms() - t0;
    assert_int_equal(ticks, 1);
    assert_true(took >= 40);
    assert_true(took < 5000);
    aredis_timer_free(t);
    aredis_loop_free(loop);
    assert_int_equal(aredis_loop_run_for(NULL, 10), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_then_await),
        cmocka_unit_test(test_repeated_waits),
        cmocka_unit_test(test_done_first),
        cmocka_unit_test(test_command_timeout_is_the_outcome),
        cmocka_unit_test(test_timeout_then_cancel),
        cmocka_unit_test(test_zero_timeout),
        cmocka_unit_test(test_already_failed),
        cmocka_unit_test(test_combinator),
        cmocka_unit_test(test_run_for_idle),
        cmocka_unit_test(test_run_for_dispatches),
        cmocka_unit_test(test_run_for_stop),
        cmocka_unit_test(test_run_for_timers_tick),
        cmocka_unit_test(test_run_for_nothing_left),
    };
    return cmocka_run_group_tests_name("await_for", tests, setup, teardown);
}
