/*
 * high-throughput, correctness half (TEST-PLAN integration): 10,000
 * concurrent SETs; 5,000 × (SET, GET, INCR) with the counter at 5,000; a
 * pipeline of 10,000 SETs with 10,000 replies. Rates are logged only:
 * bench/ owns the numbers.
 */
#include <stdio.h>
#include <string.h>

#include "ts.h"

static size_t g_ok, g_err;

static void count(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    (void)data;
    if (err)
        g_err++;
    else
        g_ok++;
}

static void log_rate(const char *what, size_t n, uint64_t t0) {
    uint64_t ms = ts_now_ms() - t0;
    ts_log("%s: %zu ops in %llu ms (%.0f ops/s)", what, n, (unsigned long long)ms,
           ms ? (double)n * 1000.0 / (double)ms : 0.0);
}

static void test_10k_concurrent_sets(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    g_ok = g_err = 0;
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < 10000; i++)
        assert_int_equal(aredis_command(env->c, count, NULL, "SET ht:%d %d", i, i), AREDIS_ERR_OK);
    assert_true(ts_wait_count(env->loop, &g_ok, 10000, 60000));
    log_rate("10,000 concurrent SETs", 10000, t0);
    assert_int_equal(g_err, 0);
    aredis_future *f = ts_cmd(env->c, "GET ht:9999");
    assert_string_equal(aredis_future_reply(f)->str, "9999");
    aredis_future_release(f);
}

typedef struct {
    int i;
    int ok;
} sgi;

static size_t g_sgi_done, g_sgi_bad;

static void sgi_get(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    sgi *s = data;
    char want[32];
    snprintf(want, sizeof want, "v%d", s->i);
    if (err || !r->str || strcmp(r->str, want) != 0) g_sgi_bad++;
    g_sgi_done++;
}

static void sgi_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    (void)data;
    if (err) g_sgi_bad++;
    g_sgi_done++;
}

static void test_set_get_incr_5000(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    static sgi s[5000];
    ts_cmd_ok(env->c, "SET ht:counter 0");
    g_sgi_done = g_sgi_bad = 0;
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < 5000; i++) {
        s[i].i = i;
        assert_int_equal(aredis_command(env->c, sgi_incr, &s[i], "SET ht:s:%d v%d", i, i), 0);
        assert_int_equal(aredis_command(env->c, sgi_get, &s[i], "GET ht:s:%d", i), 0);
        assert_int_equal(aredis_command(env->c, sgi_incr, &s[i], "INCR ht:counter"), 0);
    }
    assert_true(ts_wait_count(env->loop, &g_sgi_done, 15000, 60000));
    log_rate("5,000 x (SET, GET, INCR)", 15000, t0);
    assert_int_equal(g_sgi_bad, 0);
    aredis_future *f = ts_cmd(env->c, "GET ht:counter");
    assert_string_equal(aredis_future_reply(f)->str, "5000");
    aredis_future_release(f);
}

/* 10,000 SETs issued in one loop turn leave as one pipeline; every reply
 * comes back, in order. */
static size_t g_order_next;
static int g_order_bad;

static void in_order(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    if (err || (size_t)(uintptr_t)data != g_order_next) g_order_bad++;
    g_order_next++;
}

static void test_pipeline_10000(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    g_order_next = 0;
    g_order_bad = 0;
    uint64_t t0 = ts_now_ms();
    for (uintptr_t i = 0; i < 10000; i++)
        assert_int_equal(aredis_command(env->c, in_order, (void *)i, "SET pl:%d x", (int)i), 0);
    assert_int_equal(aredis_client_pending(env->c), 10000);
    assert_true(ts_wait_count(env->loop, &g_order_next, 10000, 60000));
    log_rate("pipeline of 10,000 SETs", 10000, t0);
    assert_int_equal(g_order_bad, 0);
    assert_int_equal(aredis_client_pending(env->c), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_10k_concurrent_sets),
        cmocka_unit_test(test_set_get_incr_5000),
        cmocka_unit_test(test_pipeline_10000),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
