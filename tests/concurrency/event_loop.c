/*
 * event-loop (TEST-PLAN concurrency): the client shares the loop fairly —
 * timers tick while commands run, other loop work completes alongside, and
 * interleaved SET / sleep / INCR sequences all complete.
 */
#include "ts.h"

static size_t g_done;
static int g_errors;

static void count(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    (void)data;
    if (err) g_errors++;
    g_done++;
}

static void on_tick(void *arg) { (*(int *)arg)++; }

/*
 * A chain of SETs (each issued from the previous reply) keeps the client busy
 * every loop turn. The 10 ms timer must still tick: run until it has ticked
 * 5 times with at least 100 SETs done. A client that starved the timer, or a
 * timer that starved the client, never gets there.
 */
static int g_chain_stop;
static int g_chain_n;

static void chain_next(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    (void)data;
    if (err) g_errors++;
    g_chain_n++;
    if (!g_chain_stop && aredis_command(c, chain_next, NULL, "SET ev:%d x", g_chain_n) != 0)
        g_errors++;
}

static void test_timer_ticks_while_sets_run(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(env->loop, on_tick, &ticks);
    aredis_timer_start(t, 10, 10);
    g_errors = 0;
    g_chain_n = 0;
    g_chain_stop = 0;
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_command(env->c, chain_next, NULL, "SET ev:start x"), AREDIS_ERR_OK);
    while ((ticks < 5 || g_chain_n < 100) && ts_now_ms() - t0 < 20000)
        aredis_loop_run_once(env->loop, 1);
    g_chain_stop = 1;
    ts_log("10 ms timer ticked %d times while %d SETs ran (%llu ms)", ticks, g_chain_n,
           (unsigned long long)(ts_now_ms() - t0));
    assert_true(ticks >= 5);
    assert_true(g_chain_n >= 100);
    assert_int_equal(g_errors, 0);
    aredis_timer_free(t);
    /* Let the last SET of the chain finish. */
    aredis_future_release(ts_cmd(env->c, "PING"));
}

typedef struct {
    aredis_timer *t;
    int remaining;
    int done;
} sleeper;

static void on_sleep(void *arg) {
    sleeper *s = arg;
    if (--s->remaining == 0) {
        s->done = 1;
        aredis_timer_stop(s->t);
    }
}

static void test_other_work_alongside(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    sleeper s = {NULL, 10, 0};
    s.t = aredis_timer_new(env->loop, on_sleep, &s);
    aredis_timer_start(s.t, 10, 10);
    g_done = 0;
    g_errors = 0;
    for (int i = 0; i < 50; i++)
        assert_int_equal(aredis_command(env->c, count, NULL, "SET other:%d y", i), AREDIS_ERR_OK);
    assert_true(ts_wait_count(env->loop, &g_done, 50, 10000));
    assert_true(ts_wait(env->loop, &s.done, 10000));
    assert_int_equal(s.remaining, 0);
    assert_int_equal(g_errors, 0);
    aredis_timer_free(s.t);
}

/* 50 × (SET, a 1 ms sleep on the loop, INCR): 150 completions, counter 50. */
typedef struct {
    int i;
    aredis_timer *t;
} step;

static size_t g_completions;

static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    (void)data;
    if (err) g_errors++;
    g_completions++;
}

static void after_sleep(void *arg) {
    ts_env *env = ts_env_get();
    step *s = arg;
    g_completions++; /* the sleep itself */
    if (aredis_command(env->c, on_incr, s, "INCR ev:counter") != AREDIS_ERR_OK) g_errors++;
}

static void on_set_then_sleep(aredis_client *c, aredis_reply *r, const aredis_error *err,
                              void *data) {
    (void)c;
    (void)r;
    step *s = data;
    if (err) g_errors++;
    g_completions++;
    aredis_timer_start(s->t, 1, 0);
}

static void test_set_sleep_incr(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    static step steps[50];
    ts_cmd_ok(env->c, "SET ev:counter 0");
    g_completions = 0;
    g_errors = 0;
    for (int i = 0; i < 50; i++) {
        steps[i].i = i;
        steps[i].t = aredis_timer_new(env->loop, after_sleep, &steps[i]);
        assert_int_equal(aredis_command(env->c, on_set_then_sleep, &steps[i], "SET ev:s:%d v", i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(env->loop, &g_completions, 150, 10000));
    assert_int_equal(g_completions, 150);
    assert_int_equal(g_errors, 0);
    aredis_future *f = ts_cmd(env->c, "GET ev:counter");
    assert_string_equal(aredis_future_reply(f)->str, "50");
    aredis_future_release(f);
    for (int i = 0; i < 50; i++)
        aredis_timer_free(steps[i].t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_ticks_while_sets_run),
        cmocka_unit_test(test_other_work_alongside),
        cmocka_unit_test(test_set_sleep_incr),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
