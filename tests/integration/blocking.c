/*
 * Blocking commands and the request timeout (docs/BLOCKING.md): the
 * command table marks them blocking and says where their block time is;
 * the client's request timeout is extended by it.
 *
 * - BLPOP with a block time past the request timeout is not cut at the
 *   request timeout, and a push from another client releases it;
 * - BLPOP ... 0 (for ever) has no deadline at all;
 * - BLPOP / BZPOPMIN / XREAD BLOCK / WAIT that run out of time return
 *   their own "nothing" (nil, or WAIT's count), not AREDIS_ERR_TIMEOUT;
 * - a blocking command on a shared client delays the commands behind it
 *   (replies are in order), and not those of another client.
 */
#include <string.h>

#include "ts.h"

static ts_server *g_srv;
static aredis_loop *g_loop;

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start_default();
    g_loop = aredis_loop_new();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

static aredis_client *client(uint32_t request_timeout_ms) {
    aredis_options o = ts_options(g_srv);
    o.request_timeout_ms = request_timeout_ms;
    return ts_connect(g_loop, &o);
}

/* BLPOP 3 on a client whose requests time out after 300 ms: still waiting
 * at 800 ms (time must pass: that is the point), released by a push. */
static void test_not_cut_at_request_timeout(void **state) {
    (void)state;
    aredis_client *c = client(300), *pusher = ts_client(g_loop, g_srv);
    aredis_future *f = aredis_future_command(c, "BLPOP blk:l1 3");
    uint64_t t0 = ts_now_ms();
    aredis_loop_run_for(g_loop, 800);
    assert_false(aredis_future_is_done(f));
    assert_true(ts_now_ms() - t0 >= 800);
    aredis_future *p = ts_cmd(pusher, "RPUSH blk:l1 job");
    aredis_future_release(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_reply *r = aredis_future_reply(f);
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, "blk:l1");
    assert_string_equal(r->element[1]->str, "job");
    aredis_future_release(f);
    aredis_client_free(pusher);
    aredis_client_free(c);
}

/* BLPOP 0 has no deadline: pending well past the request timeout. */
static void test_block_forever_has_no_deadline(void **state) {
    (void)state;
    aredis_client *c = client(200), *pusher = ts_client(g_loop, g_srv);
    aredis_future *f = aredis_future_command(c, "BLPOP blk:l2 0");
    aredis_loop_run_for(g_loop, 700);
    assert_false(aredis_future_is_done(f));
    aredis_future *p = ts_cmd(pusher, "LPUSH blk:l2 v");
    aredis_future_release(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->element[1]->str, "v");
    aredis_future_release(f);
    aredis_client_free(pusher);
    aredis_client_free(c);
}

/* Blocking commands that run out of their own time answer "nothing",
 * after their block time, not the client's TIMEOUT at 300 ms. */
static void test_own_time_runs_out(void **state) {
    (void)state;
    aredis_client *c = client(300);
    const char *cmds[] = {"BLPOP blk:none 0.6", "BZPOPMIN blk:znone 0.6",
                          "XREAD BLOCK 600 STREAMS blk:snone $", "WAIT 1 600"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        uint64_t t0 = ts_now_ms();
        aredis_future *f = aredis_future_command(c, cmds[i]);
        aredis_err e = aredis_await(f);
        uint64_t took = ts_now_ms() - t0;
        ts_log("%s: %s after %llu ms", cmds[i], aredis_err_name(e), (unsigned long long)took);
        if (e != AREDIS_ERR_OK) fail_msg("%s: %s", cmds[i], aredis_err_name(e));
        assert_true(took >= 550);
        aredis_reply *r = aredis_future_reply(f);
        if (strncmp(cmds[i], "WAIT", 4) == 0)
            assert_int_equal(r->type, AREDIS_REPLY_INTEGER); /* replicas reached: 0 */
        else
            assert_int_equal(r->type, AREDIS_REPLY_NIL);
        aredis_future_release(f);
    }
    aredis_client_free(c);
}

/* Replies are in order: a PING behind a BLPOP on the same client waits for
 * it; a PING on another client does not. */
static void test_shared_client_waits_behind(void **state) {
    (void)state;
    aredis_client *c = client(5000), *other = ts_client(g_loop, g_srv);
    aredis_future *blpop = aredis_future_command(c, "BLPOP blk:l3 0.8");
    aredis_future *behind = aredis_future_command(c, "PING");
    aredis_future *apart = aredis_future_command(other, "PING");
    assert_int_equal(aredis_await(apart), AREDIS_ERR_OK);
    assert_false(aredis_future_is_done(behind)); /* still behind the BLPOP */
    assert_int_equal(aredis_await(behind), AREDIS_ERR_OK);
    assert_true(aredis_future_is_done(blpop));
    assert_int_equal(aredis_future_reply(blpop)->type, AREDIS_REPLY_NIL);
    aredis_future_release(blpop);
    aredis_future_release(behind);
    aredis_future_release(apart);
    aredis_client_free(other);
    aredis_client_free(c);
}

static int reconnected(const void *arg) {
    aredis_client_stats st;
    aredis_client_get_stats((const aredis_client *)arg, &st);
    return st.connects >= 2 && aredis_client_state(arg) == AREDIS_STATE_READY;
}

/*
 * BLPOP 0 with a PING behind it that times out: the server is silent
 * because the BLPOP is waiting, as asked. The dead-link rule (silence
 * after a timed-out command) must not tear the connection down under it:
 * still one connection well past dead_timeout_ms, and the BLPOP is
 * served by a push. A cancelled BLPOP 0, waited for by nobody, does end
 * the link after dead_timeout_ms (everything behind it would wait for
 * ever otherwise).
 */
static void test_blocking_silence_is_not_a_dead_link(void **state) {
    (void)state;
    aredis_options o = ts_options(g_srv);
    o.request_timeout_ms = 200;
    o.dead_timeout_ms = 300;
    aredis_client *c = ts_connect(g_loop, &o), *pusher = ts_client(g_loop, g_srv);
    aredis_future *blpop = aredis_future_command(c, "BLPOP blk:l4 0");
    aredis_future *ping = aredis_future_command(c, "PING");
    assert_int_equal(aredis_await(ping), AREDIS_ERR_TIMEOUT);
    aredis_future_release(ping);
    aredis_loop_run_for(g_loop, 1200); /* 2 dead timeouts past the PING's */
    assert_false(aredis_future_is_done(blpop));
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    assert_int_equal(st.connects, 1);
    aredis_future *p = ts_cmd(pusher, "RPUSH blk:l4 served");
    aredis_future_release(p);
    assert_int_equal(aredis_await(blpop), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(blpop)->element[1]->str, "served");
    aredis_future_release(blpop);
    ts_echo_tokens(c, "after-blpop", 5, 3000, "a BLPOP 0 with a timed-out PING behind it");

    /* Cancelled: nobody waits for it; the link is given up and renewed. */
    blpop = aredis_future_command(c, "BLPOP blk:l5 0");
    ping = aredis_future_command(c, "PING");
    aredis_future_cancel(blpop);
    assert_int_equal(aredis_await(ping), AREDIS_ERR_TIMEOUT);
    aredis_future_release(ping);
    aredis_future_release(blpop);
    assert_true(ts_wait_until(g_loop, reconnected, c, 5000));
    ts_echo_tokens(c, "after-cancelled-blpop", 5, 5000, "a cancelled BLPOP 0");
    aredis_client_free(pusher);
    aredis_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_cut_at_request_timeout),
        cmocka_unit_test(test_block_forever_has_no_deadline),
        cmocka_unit_test(test_own_time_runs_out),
        cmocka_unit_test(test_shared_client_waits_behind),
        cmocka_unit_test(test_blocking_silence_is_not_a_dead_link),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
