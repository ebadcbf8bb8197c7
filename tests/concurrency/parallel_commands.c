/*
 * parallel-commands (TEST-PLAN concurrency): sequential vs concurrent SETs
 * (times logged, not asserted); concurrent writes then reads return exactly
 * their values; 1,000 SET→GET chains each see their own value.
 */
#include <stdio.h>
#include <string.h>

#include "ts.h"

static size_t g_ok, g_fail;

static void count_ok(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    (void)data;
    if (err)
        g_fail++;
    else
        g_ok++;
}

static void test_sequential_vs_concurrent(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < 100; i++)
        ts_cmd_ok(env->c, "SET seq:%d %d", i, i);
    uint64_t seq = ts_now_ms() - t0;
    g_ok = g_fail = 0;
    t0 = ts_now_ms();
    for (int i = 0; i < 100; i++)
        assert_int_equal(aredis_command(env->c, count_ok, NULL, "SET conc:%d %d", i, i),
                         AREDIS_ERR_OK);
    assert_true(ts_wait_count(env->loop, &g_ok, 100, 10000));
    ts_log("100 sequential SETs: %llu ms; 100 concurrent: %llu ms", (unsigned long long)seq,
           (unsigned long long)(ts_now_ms() - t0));
    assert_int_equal(g_fail, 0);
}

static void test_writes_then_reads(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    aredis_future *w[50], *r[50];
    for (int i = 0; i < 50; i++)
        w[i] = aredis_future_command(env->c, "SET wr:%d value-%d", i, i);
    aredis_future *all = aredis_future_all(w, 50);
    assert_int_equal(aredis_await(all), AREDIS_ERR_OK);
    aredis_future_release(all);
    for (int i = 0; i < 50; i++)
        r[i] = aredis_future_command(env->c, "GET wr:%d", i);
    all = aredis_future_all(r, 50);
    assert_int_equal(aredis_await(all), AREDIS_ERR_OK);
    for (int i = 0; i < 50; i++) {
        char want[32];
        snprintf(want, sizeof want, "value-%d", i);
        assert_string_equal(aredis_future_reply(r[i])->str, want);
        aredis_future_release(w[i]);
        aredis_future_release(r[i]);
    }
    aredis_future_release(all);
}

/* 1,000 chains: each GET is issued from its SET's callback. */
typedef struct {
    int i;
    int ok;
} chain;

static size_t g_chains_done, g_chains_ok;

static void on_get(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    chain *ch = data;
    char want[32];
    snprintf(want, sizeof want, "chain-%d", ch->i);
    if (!err && r->type == AREDIS_REPLY_STRING && strcmp(r->str, want) == 0) g_chains_ok++;
    g_chains_done++;
}

static void on_set(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    chain *ch = data;
    if (err || aredis_command(c, on_get, ch, "GET chain:%d", ch->i) != AREDIS_ERR_OK)
        g_chains_done++;
}

static void test_set_get_chains(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    static chain ch[1000];
    g_chains_done = g_chains_ok = 0;
    for (int i = 0; i < 1000; i++) {
        ch[i].i = i;
        assert_int_equal(aredis_command(env->c, on_set, &ch[i], "SET chain:%d chain-%d", i, i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(env->loop, &g_chains_done, 1000, 20000));
    assert_int_equal(g_chains_ok, 1000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_vs_concurrent),
        cmocka_unit_test(test_writes_then_reads),
        cmocka_unit_test(test_set_get_chains),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
