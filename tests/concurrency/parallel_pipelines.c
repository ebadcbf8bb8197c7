/*
 * parallel-pipelines (TEST-PLAN concurrency): 10 pipelines of 100 SETs
 * executed concurrently give 10 results of 100 replies each, every value
 * stored; 5 pipelines run one after the other and 5 at once both complete
 * (times logged, not asserted).
 */
#include <stdio.h>
#include <string.h>

#include "ts.h"

/* One exec's outcome: its reply checked in the callback. */
typedef struct outcome {
    int calls;
    aredis_err code;
    size_t elements, ok; /* replies, and how many were +OK */
    size_t *done;
} outcome;

static void on_exec(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    outcome *o = data;
    o->calls++;
    o->code = err ? err->code : AREDIS_ERR_OK;
    if (r && r->type == AREDIS_REPLY_ARRAY) {
        o->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == AREDIS_REPLY_STATUS && strcmp(r->element[i]->str, "OK") == 0)
                o->ok++;
    }
    (*o->done)++;
}

static aredis_pipeline *sets(aredis_client *c, const char *tag, int p, int n) {
    aredis_pipeline *pl = aredis_pipeline_new(c);
    assert_non_null(pl);
    for (int i = 0; i < n; i++)
        assert_int_equal(aredis_pipeline_command(pl, "SET pp:%s:%d:%d %d-%d", tag, p, i, p, i),
                         AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_size(pl), (size_t)n);
    return pl;
}

/* Every value a pipeline stored reads back (a pipeline of GETs each). */
static void check_values(aredis_client *c, const char *tag, int np, int n) {
    for (int p = 0; p < np; p++) {
        aredis_pipeline *get = aredis_pipeline_new(c);
        for (int i = 0; i < n; i++)
            aredis_pipeline_command(get, "GET pp:%s:%d:%d", tag, p, i);
        aredis_future *f = aredis_pipeline_exec_future(get);
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        aredis_reply *r = aredis_future_reply(f);
        assert_int_equal(r->elements, (size_t)n);
        for (int i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof want, "%d-%d", p, i);
            assert_int_equal(r->element[i]->type, AREDIS_REPLY_STRING);
            assert_string_equal(r->element[i]->str, want);
        }
        aredis_future_release(f);
        aredis_pipeline_free(get);
    }
}

static void test_ten_concurrent_pipelines(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    size_t done = 0;
    outcome out[10];
    memset(out, 0, sizeof out);
    uint64_t t0 = ts_now_ms();
    for (int p = 0; p < 10; p++) {
        out[p].done = &done;
        aredis_pipeline *pl = sets(env->c, "ten", p, 100);
        assert_int_equal(aredis_pipeline_exec(pl, on_exec, &out[p]), AREDIS_ERR_OK);
        aredis_pipeline_free(pl);
    }
    assert_true(ts_wait_count(env->loop, &done, 10, 10000));
    ts_log("10 concurrent pipelines of 100 SETs: %llu ms", (unsigned long long)(ts_now_ms() - t0));
    for (int p = 0; p < 10; p++) {
        assert_int_equal(out[p].calls, 1);
        assert_int_equal(out[p].code, AREDIS_ERR_OK);
        assert_int_equal(out[p].elements, 100);
        assert_int_equal(out[p].ok, 100);
    }
    check_values(env->c, "ten", 10, 100);
}

static void test_sequential_vs_concurrent(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    /* Sequential: each exec awaited before the next is issued. */
    uint64_t t0 = ts_now_ms();
    for (int p = 0; p < 5; p++) {
        aredis_pipeline *pl = sets(env->c, "seq", p, 100);
        aredis_future *f = aredis_pipeline_exec_future(pl);
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        assert_int_equal(aredis_future_reply(f)->elements, 100);
        aredis_future_release(f);
        aredis_pipeline_free(pl);
    }
    uint64_t seq = ts_now_ms() - t0;

    /* Concurrent: all five issued, then awaited together. */
    t0 = ts_now_ms();
    aredis_future *fs[5];
    for (int p = 0; p < 5; p++) {
        aredis_pipeline *pl = sets(env->c, "conc", p, 100);
        fs[p] = aredis_pipeline_exec_future(pl);
        assert_non_null(fs[p]);
        aredis_pipeline_free(pl);
    }
    aredis_future *all = aredis_future_all(fs, 5);
    assert_int_equal(aredis_await(all), AREDIS_ERR_OK);
    uint64_t conc = ts_now_ms() - t0;
    for (int p = 0; p < 5; p++) {
        assert_int_equal(aredis_future_reply(fs[p])->elements, 100);
        aredis_future_release(fs[p]);
    }
    aredis_future_release(all);
    ts_log("5 pipelines of 100 SETs: sequential %llu ms, concurrent %llu ms",
           (unsigned long long)seq, (unsigned long long)conc);
    check_values(env->c, "seq", 5, 100);
    check_values(env->c, "conc", 5, 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ten_concurrent_pipelines),
        cmocka_unit_test(test_sequential_vs_concurrent),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
