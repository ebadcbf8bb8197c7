/*
 * queue-overflow (TEST-PLAN reliability): many concurrent commands complete;
 * with max_queue_size the commands over the bound are refused AT ONCE with
 * AREDIS_ERR_QUEUE_FULL (the callback never runs; a future is already
 * failed), the accepted ones are undisturbed, and the bound holds while the
 * client is disconnected and queueing for a reconnect too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"

#define LIMIT 10
#define BURST 20

typedef ts_result result;

static long long exists(aredis_client *c, const char *key) {
    aredis_future *f = ts_cmd(c, "EXISTS %s", key);
    assert_null(aredis_future_error(f));
    long long n = aredis_future_reply(f)->integer;
    aredis_future_release(f);
    return n;
}

/* ---- Unbounded: many concurrent commands -------------------------------- */

static void test_thousand_concurrent_sets(void **state) {
    ts_env *env = *state;
    aredis_loop *loop = env->loop;
    aredis_client *c = env->c;
    enum { N = 1000 };
    result *r = calloc(N, sizeof *r);
    assert_non_null(r);
    size_t done = 0;
    for (int i = 0; i < N; i++) {
        r[i].done_counter = &done;
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "SET qo:set:%d v%d", i, i),
                         AREDIS_ERR_OK);
    }
    assert_int_equal(aredis_client_pending(c), N);
    assert_true(ts_wait_count(loop, &done, N, 30000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
        assert_int_equal(r[i].type, AREDIS_REPLY_STATUS);
        assert_string_equal(r[i].text, "OK");
    }
    assert_int_equal(aredis_client_pending(c), 0);
    aredis_future *f = ts_cmd(c, "DBSIZE");
    assert_int_equal(aredis_future_reply(f)->integer, N);
    aredis_future_release(f);
    /* Every value is the one its command wrote (read back concurrently). */
    memset(r, 0, N * sizeof *r);
    done = 0;
    for (int i = 0; i < N; i++) {
        r[i].done_counter = &done;
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "GET qo:set:%d", i), AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(loop, &done, N, 30000));
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
        assert_string_equal(r[i].text, want);
    }
    free(r);
}

static void test_500_concurrent_incrs(void **state) {
    ts_env *env = *state;
    aredis_loop *loop = env->loop;
    aredis_client *c = env->c;
    enum { N = 500 };
    result *r = calloc(N, sizeof *r);
    assert_non_null(r);
    size_t done = 0;
    for (int i = 0; i < N; i++) {
        r[i].done_counter = &done;
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "INCR %s", "qo:counter"),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(loop, &done, N, 30000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
        assert_int_equal(r[i].type, AREDIS_REPLY_INTEGER);
        assert_int_equal(r[i].integer, i + 1); /* replies in issue order */
    }
    aredis_future *f = ts_cmd(c, "GET %s", "qo:counter");
    assert_string_equal(aredis_future_reply(f)->str, "500");
    aredis_future_release(f);
    free(r);
}

/* ---- Bounded: max_queue_size = 10 --------------------------------------- */

/*
 * Issue BURST SETs at once. The first LIMIT are accepted, the rest refused
 * with QUEUE_FULL inside the call. Returns through r[] (calls counted).
 */
static void burst_sets(aredis_client *c, const char *tag, result *r, size_t *done) {
    for (int i = 0; i < BURST; i++) {
        r[i].done_counter = done;
        aredis_err e = aredis_command(c, ts_on_reply, &r[i], "SET qo:%s:%d %d", tag, i, i);
        if (i < LIMIT)
            assert_int_equal(e, AREDIS_ERR_OK);
        else
            assert_int_equal(e, AREDIS_ERR_QUEUE_FULL);
    }
    /* Refused at once: nothing completed yet, no refused callback ran. */
    for (int i = 0; i < BURST; i++)
        assert_int_equal(r[i].calls, 0);
    assert_int_equal(aredis_client_pending(c), LIMIT);
}

static void check_burst_outcome(aredis_client *c, const char *tag, const result *r) {
    for (int i = 0; i < LIMIT; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
        assert_string_equal(r[i].text, "OK");
    }
    for (int i = LIMIT; i < BURST; i++)
        assert_int_equal(r[i].calls, 0); /* never */
    /* Accepted ones reached the server, refused ones never did. */
    for (int i = 0; i < BURST; i++) {
        char key[64];
        snprintf(key, sizeof key, "qo:%s:%d", tag, i);
        assert_int_equal(exists(c, key), i < LIMIT ? 1 : 0);
    }
}

static void test_bound_callbacks(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.max_queue_size = LIMIT;
    aredis_client *c = ts_connect(loop, &o);

    result r[BURST];
    memset(r, 0, sizeof r);
    size_t done = 0;
    burst_sets(c, "cb", r, &done);
    assert_true(ts_wait_count(loop, &done, LIMIT, 10000));
    /* Give the refused ones every chance to (wrongly) show up. */
    aredis_loop_run_once(loop, 0);
    assert_int_equal(done, LIMIT);
    assert_int_equal(aredis_client_pending(c), 0);
    check_burst_outcome(c, "cb", r);

    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    /* LIMIT from the burst + the BURST EXISTS checks: refusals not counted. */
    assert_int_equal(st.commands, LIMIT + BURST);

    /* Room again: a second full burst behaves exactly the same. */
    memset(r, 0, sizeof r);
    done = 0;
    burst_sets(c, "cb2", r, &done);
    assert_true(ts_wait_count(loop, &done, LIMIT, 10000));
    check_burst_outcome(c, "cb2", r);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* A completed command frees its slot before its callback runs: the callback
 * can issue the next one even when the queue was full. */
typedef struct {
    aredis_client *c;
    int calls;
    aredis_err chained;
    result next;
} chain_ctx;

static void on_chain(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    (void)err;
    chain_ctx *x = data;
    x->calls++;
    x->chained = aredis_command(c, ts_on_reply, &x->next, "SET qo:chained %s", "yes");
}

static void test_bound_slot_freed_in_callback(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.max_queue_size = LIMIT;
    aredis_client *c = ts_connect(loop, &o);
    chain_ctx x = {0};
    size_t done = 0;
    result r[LIMIT];
    memset(r, 0, sizeof r);
    assert_int_equal(aredis_command(c, on_chain, &x, "PING"), AREDIS_ERR_OK);
    for (int i = 1; i < LIMIT; i++) {
        r[i].done_counter = &done;
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "PING"), AREDIS_ERR_OK);
    }
    assert_int_equal(aredis_command(c, ts_on_reply, &r[0], "PING"), AREDIS_ERR_QUEUE_FULL);
    x.next.done_counter = &done;
    assert_true(ts_wait_count(loop, &done, LIMIT, 10000)); /* 9 PINGs + the chained SET */
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.chained, AREDIS_ERR_OK);
    assert_int_equal(x.next.calls, 1);
    assert_int_equal(x.next.code, AREDIS_ERR_OK);
    assert_int_equal(r[0].calls, 0);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

static void test_bound_futures(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.max_queue_size = LIMIT;
    aredis_client *c = ts_connect(loop, &o);

    aredis_future *f[BURST];
    for (int i = 0; i < BURST; i++) {
        f[i] = aredis_future_command(c, "ECHO fut-%d", i);
        assert_non_null(f[i]);
    }
    for (int i = 0; i < BURST; i++) {
        if (i < LIMIT) {
            assert_false(aredis_future_is_done(f[i]));
            assert_null(aredis_future_error(f[i]));
        } else {
            /* Already done, failed, before the loop ran at all. */
            assert_true(aredis_future_is_done(f[i]));
            assert_non_null(aredis_future_error(f[i]));
            assert_int_equal(aredis_future_error(f[i])->code, AREDIS_ERR_QUEUE_FULL);
            assert_null(aredis_future_reply(f[i]));
        }
    }
    assert_int_equal(aredis_client_pending(c), LIMIT);
    /* Awaiting a refused one returns at once with its error. */
    assert_int_equal(aredis_await(f[BURST - 1]), AREDIS_ERR_QUEUE_FULL);
    /* The accepted ones each get their own reply. */
    for (int i = 0; i < LIMIT; i++) {
        char want[16];
        snprintf(want, sizeof want, "fut-%d", i);
        assert_int_equal(aredis_await(f[i]), AREDIS_ERR_OK);
        assert_string_equal(aredis_future_reply(f[i])->str, want);
    }
    for (int i = 0; i < BURST; i++)
        aredis_future_release(f[i]);
    assert_int_equal(aredis_client_pending(c), 0);

    /* Accepted again once they completed; mixed with callbacks too. */
    result r[BURST];
    memset(r, 0, sizeof r);
    size_t done = 0;
    burst_sets(c, "fut2", r, &done);
    aredis_future *extra = aredis_future_command(c, "PING");
    assert_non_null(extra);
    assert_int_equal(aredis_future_error(extra)->code, AREDIS_ERR_QUEUE_FULL);
    aredis_future_release(extra);
    assert_true(ts_wait_count(loop, &done, LIMIT, 10000));
    check_burst_outcome(c, "fut2", r);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* ---- Bounded while disconnected ---------------------------------------- */

static void test_bound_while_disconnected(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    conn_counters cc;
    aredis_options o = ts_options(s);
    o.max_queue_size = LIMIT;
    o.reconnect = 1;
    o.queue_during_reconnect = 1;
    o.reconnect_delay_ms = 50;
    o.max_reconnect_delay_ms = 200;
    o.connect_timeout_ms = 2000;
    cc_wire(&o, &cc);
    aredis_client *c = ts_connect(loop, &o);
    assert_int_equal(cc.connects, 1);

    ts_server_kill(s);
    assert_true(ts_wait(loop, &cc.disconnects, 10000));
    assert_int_not_equal(aredis_client_state(c), AREDIS_STATE_READY);

    result r[BURST];
    memset(r, 0, sizeof r);
    size_t done = 0;
    burst_sets(c, "down", r, &done);
    /* Futures are bounded by the same count while disconnected. */
    aredis_future *extra = aredis_future_command(c, "PING");
    assert_non_null(extra);
    assert_true(aredis_future_is_done(extra));
    assert_int_equal(aredis_future_error(extra)->code, AREDIS_ERR_QUEUE_FULL);
    aredis_future_release(extra);

    /* Let the client fail two reconnect attempts while down: the queued
     * ones stay queued (no callback), the bound still holds. */
    int before = cc.attempts;
    assert_true(cc_wait_attempts(loop, &cc, before + 2, 10000));
    assert_int_equal(cc.connects, 1);
    assert_int_equal(done, 0);
    assert_int_equal(aredis_client_pending(c), LIMIT);
    assert_int_equal(aredis_command(c, ts_on_reply, &r[BURST - 1], "PING"), AREDIS_ERR_QUEUE_FULL);

    ts_server_restart(s);
    assert_true(ts_wait_count(loop, &done, LIMIT, 15000));
    aredis_loop_run_once(loop, 0);
    assert_int_equal(done, LIMIT);
    assert_true(cc.connects >= 2);
    check_burst_outcome(c, "down", r);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thousand_concurrent_sets, ts_env_setup,
                                        ts_env_teardown),
        cmocka_unit_test_setup_teardown(test_500_concurrent_incrs, ts_env_setup, ts_env_teardown),
        cmocka_unit_test(test_bound_callbacks),
        cmocka_unit_test(test_bound_slot_freed_in_callback),
        cmocka_unit_test(test_bound_futures),
        cmocka_unit_test(test_bound_while_disconnected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
