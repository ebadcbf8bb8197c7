/*
 * The client on every loop: the same scenario runs on the built-in loop and
 * on the libuv, libevent and libev adapters (one executable per loop:
 * libevent's and libev's headers cannot share a file) — connect and await,
 * SET/GET, 1,000 commands issued in one turn leaving in one write
 * (auto-pipelining), a request timeout whose late reply is dropped, a user
 * timer ticking alongside, and a client connected by host name (resolved on
 * a thread that wakes the loop through a watched pipe).
 */
#ifndef AREDIS_TEST_CLIENT_SCENARIO_H
#define AREDIS_TEST_CLIENT_SCENARIO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"

static ts_server *g_srv;
static const char *const k_conf[] = {"enable-debug-command local", NULL};

typedef struct {
    const char *name;
    aredis_loop *(*make)(void **foreign);
    void (*destroy)(aredis_loop *loop, void *foreign);
} loop_kind;

static size_t g_done, g_bad;

static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    /* Replies come in order: the i-th INCR sees base + i + 1. */
    long long want = (long long)(uintptr_t)data;
    if (err || r->type != AREDIS_REPLY_INTEGER || r->integer != want) g_bad++;
    g_done++;
}

static void on_tick(void *arg) { (*(int *)arg)++; }

static void scenario(const loop_kind *k) {
    void *foreign;
    aredis_loop *loop = k->make(&foreign);
    assert_non_null(loop);
    ts_log("loop: %s", k->name);

    /* Connect and await through the vtable's run_once. */
    aredis_options o = ts_options(g_srv);
    o.request_timeout_ms = 2000;
    aredis_client *c = aredis_client_new(loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ts_cmd_ok(c, "SET loops:%s %s", k->name, k->name);
    aredis_future *f = ts_cmd(c, "GET loops:%s", k->name);
    assert_string_equal(aredis_future_reply(f)->str, k->name);
    aredis_future_release(f);

    /* 1,000 INCRs issued in one turn leave in one write. */
    ts_cmd_ok(c, "SET loops:n 0");
    aredis_client_stats before, after;
    aredis_client_get_stats(c, &before);
    g_done = g_bad = 0;
    for (uintptr_t i = 0; i < 1000; i++)
        assert_int_equal(aredis_command(c, on_incr, (void *)(i + 1), "INCR loops:n"), 0);
    assert_true(ts_wait_count(loop, &g_done, 1000, 10000));
    aredis_client_get_stats(c, &after);
    assert_int_equal(g_bad, 0);
    ts_log("%s: 1000 commands in %llu write call(s), %llu read call(s)", k->name,
           (unsigned long long)(after.write_calls - before.write_calls),
           (unsigned long long)(after.read_calls - before.read_calls));
    assert_int_equal(after.write_calls - before.write_calls, 1);
    assert_int_equal(after.replies - before.replies, 1000);

    /* A timed-out command's late reply never reaches the next command. */
    ts_cmd_ok(c, "SET loops:mine %s", "yes");
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 100;
    const char *sl[] = {"DEBUG", "SLEEP", "0.4"};
    aredis_future *slow = aredis_future_argv_ex(c, &co, 3, sl, NULL);
    aredis_future *get = aredis_future_command(c, "GET loops:mine");
    assert_int_equal(aredis_await(slow), AREDIS_ERR_TIMEOUT);
    assert_int_equal(aredis_await(get), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(get)->str, "yes");
    aredis_future_release(slow);
    aredis_future_release(get);

    /* A user timer on the same loop, alongside the client. */
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(loop, on_tick, &ticks);
    aredis_timer_start(t, 5, 5);
    const char *sl2[] = {"DEBUG", "SLEEP", "0.1"};
    aredis_future *s2 = aredis_future_argv(c, 3, sl2, NULL);
    assert_int_equal(aredis_await(s2), AREDIS_ERR_OK);
    aredis_future_release(s2);
    assert_true(ticks >= 3);
    aredis_timer_free(t);

    /* By name: the resolver thread wakes this loop through an io watcher. */
    aredis_options byname = o;
    byname.host = "localhost";
    aredis_client *c2 = aredis_client_new(loop, &byname);
    assert_non_null(c2);
    assert_int_equal(aredis_client_connect(c2), AREDIS_ERR_OK);
    ts_cmd_ok(c2, "SET loops:byname:%s %s", k->name, "yes");
    aredis_client_free(c2);

    aredis_client_free(c);
    k->destroy(loop, foreign);
}

static int scenario_setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_conf, 0);
    return 0;
}

static int scenario_teardown(void **state) {
    (void)state;
    ts_server_stop(g_srv);
    return 0;
}

static const loop_kind *g_kind;

static void test_client_on_loop(void **state) {
    (void)state;
    scenario(g_kind);
}

static int scenario_main(const loop_kind *k) {
    g_kind = k;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_client_on_loop)};
    return cmocka_run_group_tests_name(k->name, tests, scenario_setup, scenario_teardown);
}

#endif
