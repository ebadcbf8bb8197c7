/*
 * mixed-workload (TEST-PLAN concurrency): 100 SETs, 5 pipelines of 50 SETs
 * and 20 PUBLISHes issued at once, interleaved, then every value reads back;
 * 1,000 mixed operations (every 10th a pipeline SET+INCR, every 5th a
 * PUBLISH, else a SET) complete in their counts, and the pipelines' counter
 * reads 100, each pipeline's INCR seeing its own place in the order.
 */
#include <stdio.h>
#include <string.h>

#include "ts.h"

/* Completions by kind, and failures. */
typedef struct tally {
    size_t sets, pipes, pubs, done, bad;
    long long incr[100]; /* the INCR result of pipeline k */
} tally;

static tally g_t;

static void on_set(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    if (!err && r->type == AREDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
        g_t.sets++;
    else
        g_t.bad++;
    g_t.done++;
}

static void on_pub(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    if (!err && r->type == AREDIS_REPLY_INTEGER && r->integer == 0) /* nobody subscribed */
        g_t.pubs++;
    else
        g_t.bad++;
    g_t.done++;
}

/* A pipeline of n SETs, or of SET + INCR (data: the pipeline's number, the
 * place for its INCR's result). */
static void on_pipe(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    size_t want = (size_t)(data ? 2 : 50);
    int ok = !err && r && r->type == AREDIS_REPLY_ARRAY && r->elements == want;
    for (size_t i = 0; ok && i < r->elements; i++) {
        const aredis_reply *e = r->element[i];
        if (data && i == 1)
            ok = e->type == AREDIS_REPLY_INTEGER;
        else
            ok = e->type == AREDIS_REPLY_STATUS && strcmp(e->str, "OK") == 0;
    }
    if (ok && data) *(long long *)data = r->element[1]->integer;
    if (ok)
        g_t.pipes++;
    else
        g_t.bad++;
    g_t.done++;
}

static void test_at_once_then_read_back(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    aredis_client *c = env->c;
    memset(&g_t, 0, sizeof g_t);
    int pipes = 0, pubs = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(aredis_command(c, on_set, NULL, "SET mw:a:%d v%d", i, i), AREDIS_ERR_OK);
        if (i % 20 == 10) { /* 5 pipelines, among the SETs */
            aredis_pipeline *p = aredis_pipeline_new(c);
            for (int k = 0; k < 50; k++)
                aredis_pipeline_command(p, "SET mw:p:%d:%d %d", pipes, k, pipes * 1000 + k);
            assert_int_equal(aredis_pipeline_exec(p, on_pipe, NULL), AREDIS_ERR_OK);
            aredis_pipeline_free(p);
            pipes++;
        }
        if (i % 5 == 2) { /* 20 PUBLISHes */
            assert_int_equal(aredis_command(c, on_pub, NULL, "PUBLISH mw:ch msg-%d", i),
                             AREDIS_ERR_OK);
            pubs++;
        }
    }
    assert_int_equal(pipes, 5);
    assert_int_equal(pubs, 20);
    assert_true(ts_wait_count(env->loop, &g_t.done, 125, 10000));
    assert_int_equal(g_t.bad, 0);
    assert_int_equal(g_t.sets, 100);
    assert_int_equal(g_t.pipes, 5);
    assert_int_equal(g_t.pubs, 20);

    /* Read back: the plain SETs, then each pipeline's 50 values. */
    aredis_pipeline *get = aredis_pipeline_new(c);
    for (int i = 0; i < 100; i++)
        aredis_pipeline_command(get, "GET mw:a:%d", i);
    for (int p = 0; p < 5; p++)
        for (int k = 0; k < 50; k++)
            aredis_pipeline_command(get, "GET mw:p:%d:%d", p, k);
    aredis_future *f = aredis_pipeline_exec_future(get);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_reply *r = aredis_future_reply(f);
    assert_int_equal(r->elements, 350);
    for (int i = 0; i < 350; i++) {
        char want[32];
        if (i < 100)
            snprintf(want, sizeof want, "v%d", i);
        else
            snprintf(want, sizeof want, "%d", ((i - 100) / 50) * 1000 + (i - 100) % 50);
        assert_int_equal(r->element[i]->type, AREDIS_REPLY_STRING);
        assert_string_equal(r->element[i]->str, want);
    }
    aredis_future_release(f);
    aredis_pipeline_free(get);
}

static void test_thousand_mixed(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    aredis_client *c = env->c;
    memset(&g_t, 0, sizeof g_t);
    ts_cmd_ok(c, "SET mw:counter 0");
    size_t want_sets = 0, want_pubs = 0, want_pipes = 0;
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < 1000; i++) {
        if (i % 10 == 0) {
            aredis_pipeline *p = aredis_pipeline_new(c);
            aredis_pipeline_command(p, "SET mw:m:last %d", i);
            aredis_pipeline_command(p, "INCR mw:counter");
            assert_int_equal(aredis_pipeline_exec(p, on_pipe, &g_t.incr[want_pipes]),
                             AREDIS_ERR_OK);
            aredis_pipeline_free(p);
            want_pipes++;
        } else if (i % 5 == 0) {
            assert_int_equal(aredis_command(c, on_pub, NULL, "PUBLISH mw:ch m%d", i),
                             AREDIS_ERR_OK);
            want_pubs++;
        } else {
            assert_int_equal(aredis_command(c, on_set, NULL, "SET mw:m:%d %d", i, i),
                             AREDIS_ERR_OK);
            want_sets++;
        }
    }
    assert_true(ts_wait_count(env->loop, &g_t.done, 1000, 10000));
    ts_log("1,000 mixed operations: %llu ms", (unsigned long long)(ts_now_ms() - t0));
    assert_int_equal(want_pipes, 100);
    assert_int_equal(want_pubs, 100);
    assert_int_equal(want_sets, 800);
    assert_int_equal(g_t.bad, 0);
    assert_int_equal(g_t.pipes, 100);
    assert_int_equal(g_t.pubs, 100);
    assert_int_equal(g_t.sets, 800);
    for (int k = 0; k < 100; k++)
        assert_int_equal(g_t.incr[k], k + 1); /* in issue order */
    ts_cmd_bytes(c, "100", 3, "GET mw:counter");
    ts_cmd_bytes(c, "990", 3, "GET mw:m:last");
    ts_cmd_bytes(c, "999", 3, "GET mw:m:999");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at_once_then_read_back),
        cmocka_unit_test(test_thousand_mixed),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
