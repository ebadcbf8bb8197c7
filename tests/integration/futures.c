/*
 * Futures: then (order, at once when already done), await, all (first
 * failure wins), any (the winner's index and reply), cancel (a waiting
 * command is never sent), release before completion (the command still
 * completes), and the ready future.
 */
#include <string.h>

#include "ts.h"

static ts_server *g_srv;
static aredis_loop *g_loop;

static int setup(void **state) {
    (void)state;
    static const char *const conf[] = {"enable-debug-command local", NULL};
    g_srv = ts_server_start(conf, 0);
    g_loop = aredis_loop_new();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

typedef struct {
    int order[8];
    int n;
} then_log;

static void then_a(aredis_future *f, void *data) {
    (void)f;
    then_log *l = data;
    l->order[l->n++] = 1;
}
static void then_b(aredis_future *f, void *data) {
    (void)f;
    then_log *l = data;
    l->order[l->n++] = 2;
}

static void test_then_order_and_immediate(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    then_log log = {{0}, 0};
    aredis_future *f = aredis_future_command(c, "PING");
    assert_int_equal(aredis_future_then(f, then_a, &log), AREDIS_ERR_OK);
    assert_int_equal(aredis_future_then(f, then_b, &log), AREDIS_ERR_OK);
    assert_int_equal(log.n, 0); /* not from inside the issuing calls */
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.order[0], 1);
    assert_int_equal(log.order[1], 2);
    /* Already done: runs at once. */
    assert_int_equal(aredis_future_then(f, then_a, &log), AREDIS_ERR_OK);
    assert_int_equal(log.n, 3);
    /* Awaiting a done future returns its outcome again. */
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->str, "PONG");
    aredis_future_release(f);
    aredis_client_free(c);
}

static void test_all_first_failure(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    ts_cmd_ok(c, "SET fut:str x");
    aredis_future *fs[3] = {
        aredis_future_command(c, "PING"),
        aredis_future_command(c, "LPUSH fut:str y"), /* WRONGTYPE */
        aredis_future_command(c, "ECHO last"),
    };
    aredis_future *all = aredis_future_all(fs, 3);
    assert_int_equal(aredis_await(all), AREDIS_ERR_SERVER);
    assert_string_equal(aredis_future_error(all)->prefix, "WRONGTYPE");
    /* The others still complete on their own. */
    assert_int_equal(aredis_await(fs[2]), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(fs[2])->str, "last");
    aredis_future *none = aredis_future_all(NULL, 0);
    assert_true(aredis_future_is_done(none));
    assert_null(aredis_future_error(none));
    aredis_future_release(none);
    aredis_future_release(all);
    for (int i = 0; i < 3; i++)
        aredis_future_release(fs[i]);
    aredis_client_free(c);
}

static void test_any_winner(void **state) {
    (void)state;
    aredis_client *slow = ts_client(g_loop, g_srv);
    aredis_client *fast = ts_client(g_loop, g_srv);
    aredis_future *fs[2] = {
        aredis_future_command(slow, "BLPOP fut:empty 0.3"), /* blocks only its client */
        aredis_future_command(fast, "ECHO quick"),
    };
    aredis_future *any = aredis_future_any(fs, 2);
    assert_int_equal(aredis_await(any), AREDIS_ERR_OK);
    assert_int_equal(aredis_future_index(any), 1);
    assert_string_equal(aredis_future_reply(any)->str, "quick");
    assert_false(aredis_future_is_done(fs[0]));
    assert_int_equal(aredis_await(fs[0]), AREDIS_ERR_OK);
    aredis_future_release(any);
    aredis_future_release(fs[0]);
    aredis_future_release(fs[1]);
    aredis_client_free(slow);
    aredis_client_free(fast);
}

/* A cancelled command that was still waiting for the connection is never
 * sent at all. */
static void test_cancel_waiting_never_sent(void **state) {
    (void)state;
    aredis_options o = ts_options(g_srv);
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    aredis_future *f = aredis_future_command(c, "SET fut:cancelled yes"); /* waits */
    aredis_future_cancel(f);
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    aredis_future *e = ts_cmd(c, "EXISTS fut:cancelled");
    assert_int_equal(aredis_future_reply(e)->integer, 0);
    aredis_future_release(e);
    aredis_future_cancel(f); /* a second cancel is a no-op */
    aredis_future_release(f);
    aredis_client_free(c);
}

/* Releasing a pending future does not cancel its command. */
static void test_release_is_not_cancel(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    aredis_future_release(aredis_future_command(c, "SET fut:released done"));
    aredis_future *g = ts_cmd(c, "GET fut:released");
    assert_string_equal(aredis_future_reply(g)->str, "done");
    aredis_future_release(g);
    aredis_client_free(c);
}

static void test_ready_future(void **state) {
    (void)state;
    aredis_options o = ts_options(g_srv);
    aredis_client *c = aredis_client_new(g_loop, &o);
    /* Idle, never connected: fails at once instead of waiting forever. */
    aredis_future *r = aredis_future_ready(c);
    assert_true(aredis_future_is_done(r));
    assert_int_equal(aredis_future_error(r)->code, AREDIS_ERR_NOT_CONNECTED);
    aredis_future_release(r);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    r = aredis_future_ready(c);
    assert_int_equal(aredis_await(r), AREDIS_ERR_OK);
    aredis_future_release(r);
    /* Ready already: done at once. */
    r = aredis_future_ready(c);
    assert_true(aredis_future_is_done(r));
    aredis_future_release(r);
    aredis_client_close(c);
    r = aredis_future_ready(c);
    assert_int_equal(aredis_future_error(r)->code, AREDIS_ERR_CLOSED);
    aredis_future_release(r);
    aredis_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_then_order_and_immediate),
        cmocka_unit_test(test_all_first_failure),
        cmocka_unit_test(test_any_winner),
        cmocka_unit_test(test_cancel_waiting_never_sent),
        cmocka_unit_test(test_release_is_not_cancel),
        cmocka_unit_test(test_ready_future),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
