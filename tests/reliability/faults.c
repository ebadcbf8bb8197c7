/*
 * Faults beyond the plan: SIGKILL in the middle of a 1,000-command pipeline
 * (every callback once, nothing re-sent); a reply cut in half is never
 * delivered; timed-out commands never steal replies (the redis-py
 * CVE-2023-28858 scenario) through a slow link; a blackholed link is found
 * dead by the request timeout and health check and recovered when traffic
 * passes again; retryable commands are re-sent, others are not.
 */
#include <stdlib.h>

#include "counters.h"
#include "proxy.h"

/* ---- SIGKILL mid-pipeline ---------------------------------------------- */

typedef struct {
    ts_server *srv;
    size_t done, ok, failed;
    int calls[1000];
    int killed;
} pipe_state;

static pipe_state *g_pipe;
static void *g_slots[1000];

static void pipe_reply_slot(aredis_client *c, aredis_reply *r, const aredis_error *err,
                            void *data) {
    size_t i = (size_t)((void **)data - g_slots);
    g_pipe->calls[i]++;
    g_pipe->done++;
    if (err)
        g_pipe->failed++;
    else
        g_pipe->ok++;
    (void)c;
    (void)r;
    if (g_pipe->done == 100 && !g_pipe->killed) {
        g_pipe->killed = 1;
        ts_server_kill(g_pipe->srv);
    }
}

static void test_sigkill_mid_pipeline(void **state) {
    (void)state;
    static const char *const aof[] = {"appendonly yes", "appendfsync always", NULL};
    pipe_state p;
    memset(&p, 0, sizeof p);
    p.srv = ts_server_start(aof, 0);
    g_pipe = &p;
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(p.srv);
    o.reconnect_delay_ms = 50;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(loop, &o);
    ts_cmd_ok(c, "SET pipe:n 0");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(aredis_command(c, pipe_reply_slot, &g_slots[i], "INCR pipe:n"), 0);
    assert_true(ts_wait_count(loop, &p.done, 1000, 10000));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(p.calls[i], 1);
    ts_log("pipeline of 1000 INCRs, SIGKILL after 100 replies: %zu ok, %zu failed", p.ok, p.failed);
    assert_true(p.failed > 0);

    ts_server_restart(p.srv);
    aredis_future *f = ts_cmd(c, "GET pipe:n");
    if (aredis_future_error(f)) { /* written to the dead link: fails once */
        aredis_future_release(f);
        f = ts_cmd(c, "GET pipe:n");
    }
    long long n1 = atoll(aredis_future_reply(f)->str);
    aredis_future_release(f);
    /* More round trips: if anything were re-sent the counter would move. */
    for (int i = 0; i < 5; i++)
        aredis_future_release(ts_cmd(c, "PING"));
    f = ts_cmd(c, "GET pipe:n");
    long long n2 = atoll(aredis_future_reply(f)->str);
    aredis_future_release(f);
    ts_log("counter after restart: %lld, later: %lld", n1, n2);
    assert_true(n1 >= (long long)p.ok); /* every acknowledged INCR persisted */
    assert_true(n1 <= 1000);
    assert_int_equal(n1, n2); /* nothing re-sent after the reconnect */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(p.calls[i], 1);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(p.srv);
}

/* ---- A reply cut in half ----------------------------------------------- */

static void test_cut_reply_never_delivered(void **state) {
    (void)state;
    ts_proxied rig;
    aredis_options o = ts_proxied_start(&rig);
    o.reconnect = 0;
    aredis_client *c = ts_connect(rig.loop, &o);
    char big[4096];
    memset(big, 'z', sizeof big);
    aredis_future_release(ts_cmd(c, "SET cut:big %b", big, sizeof big));
    ts_proxy_cut_next_reply(rig.px);
    reply_rec r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET cut:big"), AREDIS_ERR_OK);
    assert_true(ts_wait(rig.loop, &r.done, 5000));
    assert_int_equal(r.calls, 1);
    assert_true(aredis_err_is_connection(r.code));
    assert_int_equal(r.text[0], '\0'); /* no partial value was handed over */
    ts_proxied_stop(&rig, c);
}

/* ---- Timeouts over a slow link never misroute replies ------------------ */

static void test_timeouts_keep_replies_in_place(void **state) {
    (void)state;
    ts_proxied rig;
    aredis_options o = ts_proxied_start(&rig);
    aredis_client *c = ts_connect(rig.loop, &o);
    for (int i = 0; i < 20; i++)
        ts_cmd_ok(c, "SET cve:%d value-%d", i, i);
    ts_proxy_delay(rig.px, 150);
    /* Every other GET times out (50 ms), the rest wait long enough. */
    aredis_future *f[20];
    for (int i = 0; i < 20; i++) {
        aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
        co.timeout_ms = (i % 2) ? 50 : 10000;
        char key[16];
        snprintf(key, sizeof key, "cve:%d", i);
        const char *argv[] = {"GET", key};
        f[i] = aredis_future_argv_ex(c, &co, 2, argv, NULL);
        if (i % 5 == 4) aredis_future_cancel(f[i - 1]);
    }
    for (int i = 0; i < 20; i++) {
        aredis_err e = aredis_await(f[i]);
        if (i % 2) {
            assert_true(e == AREDIS_ERR_TIMEOUT || e == AREDIS_ERR_CANCELLED);
        } else {
            char want[16];
            snprintf(want, sizeof want, "value-%d", i);
            if (e == AREDIS_ERR_CANCELLED) continue;
            assert_int_equal(e, AREDIS_ERR_OK);
            assert_string_equal(aredis_future_reply(f[i])->str, want);
        }
    }
    ts_proxy_pass(rig.px);
    aredis_future *after = ts_cmd(c, "GET cve:7");
    assert_string_equal(aredis_future_reply(after)->str, "value-7");
    aredis_future_release(after);
    for (int i = 0; i < 20; i++)
        aredis_future_release(f[i]);
    ts_proxied_stop(&rig, c);
}

/* ---- Blackhole: found dead, recovered ---------------------------------- */

static void test_blackhole_detected_and_recovered(void **state) {
    (void)state;
    ts_proxied rig;
    aredis_options o = ts_proxied_start(&rig);
    o.request_timeout_ms = 200;
    o.dead_timeout_ms = 300;
    o.health_check_interval_ms = 200;
    o.connect_timeout_ms = 300;
    o.reconnect_delay_ms = 50;
    o.max_reconnect_delay_ms = 200;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(rig.loop, &o);
    ts_cmd_ok(c, "SET bh:key before");

    ts_proxy_blackhole(rig.px, 1);
    reply_rec r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET bh:key"), AREDIS_ERR_OK);
    assert_true(ts_wait(rig.loop, &r.done, 3000));
    assert_int_equal(r.code, AREDIS_ERR_TIMEOUT);         /* what was in flight fails */
    assert_true(ts_wait(rig.loop, &k.disconnects, 3000)); /* the dead link is found */
    while (k.errors < 2)
        assert_true(aredis_loop_run_once(rig.loop, 1)); /* retries time out */
    ts_proxy_blackhole(rig.px, 0);
    ts_proxy_close_all(rig.px); /* drop the frozen attempts */
    while (k.connects < 2)
        assert_true(aredis_loop_run_once(rig.loop, 1));
    aredis_future *f = ts_cmd(c, "GET bh:key");
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "before");
    aredis_future_release(f);

    /* Idle now: the health check keeps PINGing and the link stays up. */
    aredis_client_stats st0, st1;
    aredis_client_get_stats(c, &st0);
    uint64_t t0 = ts_now_ms();
    while (ts_now_ms() - t0 < 700)
        aredis_loop_run_once(rig.loop, 1);
    aredis_client_get_stats(c, &st1);
    ts_log("blackhole: connects=%d disconnects=%d; idle health PINGs written: %llu", k.connects,
           k.disconnects, (unsigned long long)(st1.write_calls - st0.write_calls));
    assert_true(st1.write_calls - st0.write_calls >= 2);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    ts_proxied_stop(&rig, c);
}

/* ---- Retryable vs at-most-once ------------------------------------------ */

static void test_retryable_resent_others_not(void **state) {
    (void)state;
    ts_proxied rig;
    aredis_options o = ts_proxied_start(&rig);
    o.reconnect_delay_ms = 20;
    o.retry_read_only = 1;
    aredis_client *c = ts_connect(rig.loop, &o);
    ts_cmd_ok(c, "SET rt:k v");
    ts_cmd_ok(c, "SET rt:n 0");

    ts_proxy_blackhole(rig.px, 1);
    aredis_future *get = aredis_future_command(c, "GET rt:k");   /* read-only: retried */
    aredis_future *incr = aredis_future_command(c, "INCR rt:n"); /* at most once */
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_RETRYABLE;
    const char *set[] = {"SET", "rt:flag", "set"};
    aredis_future *flagged = aredis_future_argv_ex(c, &co, 3, set, NULL); /* opted in */
    aredis_client_stats st;
    do {
        aredis_loop_run_once(rig.loop, 0);
        aredis_client_get_stats(c, &st);
    } while (st.bytes_out == 0 || aredis_client_pending(c) < 3);
    ts_proxy_close_all(rig.px);
    ts_proxy_blackhole(rig.px, 0);
    assert_int_equal(aredis_await(get), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(get)->str, "v");
    assert_true(aredis_err_is_connection(aredis_await(incr)));
    assert_int_equal(aredis_await(flagged), AREDIS_ERR_OK);
    aredis_future *n = ts_cmd(c, "GET rt:n");
    assert_string_equal(aredis_future_reply(n)->str, "0"); /* the INCR never ran */
    aredis_future_release(n);
    aredis_future_release(get);
    aredis_future_release(incr);
    aredis_future_release(flagged);
    ts_proxied_stop(&rig, c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_mid_pipeline),
        cmocka_unit_test(test_cut_reply_never_delivered),
        cmocka_unit_test(test_timeouts_keep_replies_in_place),
        cmocka_unit_test(test_blackhole_detected_and_recovered),
        cmocka_unit_test(test_retryable_resent_others_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
