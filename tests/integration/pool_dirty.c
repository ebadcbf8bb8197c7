/*
 * A pool never hands a connection on dirty (aredis/pool.h, docs/POOL.md):
 * one test per way a user can leave a connection behind, each proving the
 * next user gets a clean one — reset in place (same CLIENT ID: DISCARD,
 * SELECT, a PING behind the owed replies) or replaced (a new CLIENT ID:
 * WATCH held, subscribed, a blocking command pending, AUTH/HELLO). The
 * commands that could leave state no one can see (CLIENT REPLY OFF/SKIP,
 * plain WATCH/UNWATCH, SUBSCRIBE, RESET) are refused at issue time, and the
 * connection stays clean.
 *
 * Every pool here has max_connections = 1 unless a test says otherwise, so
 * that "the next user" gets the very connection the last one released, or
 * its replacement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"
#include "ts.h"

static const char *const k_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv;
static aredis_loop *g_loop;
static aredis_client *g_obs; /* another user of the server, outside the pool */

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_conf, 0);
    g_loop = aredis_loop_new();
    g_obs = ts_client(g_loop, g_srv);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_client_free(g_obs);
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

static aredis_pool *mkpool(int db, int protocol) {
    aredis_pool_options o = AREDIS_POOL_OPTIONS_INIT;
    o.client = ts_options(g_srv);
    o.client.db = db;
    o.client.protocol = protocol;
    o.max_connections = 1;
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    if (!p) fail_msg("aredis_pool_new: %s", aredis_call_error()->detail);
    return p;
}

typedef struct got {
    int calls;
    aredis_client *c;
    aredis_err code;
    const size_t *count; /* when set: its value at the callback, in seen */
    size_t seen;
} got;

static void on_got(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data) {
    (void)p;
    got *g = data;
    g->calls++;
    g->c = c;
    g->code = err ? err->code : AREDIS_ERR_OK;
    if (g->count) g->seen = *g->count;
}

static aredis_client *acquire_wait(aredis_pool *p) {
    got g = {0};
    assert_int_equal(aredis_pool_acquire(p, on_got, &g), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g.calls, 10000));
    assert_int_equal(g.code, AREDIS_ERR_OK);
    return g.c;
}

static aredis_pool_stats stats(const aredis_pool *p) {
    aredis_pool_stats s;
    aredis_pool_get_stats(p, &s);
    assert_int_equal(s.total, s.opening + s.idle + s.in_use + s.checking);
    assert_int_equal(s.created - s.discarded, s.idle + s.in_use + s.checking);
    return s;
}

/* The next user's connection is clean: outside MULTI, in the configured
 * database, not subscribed, not blocked; a plain SET answers OK (not
 * QUEUED) and the usual round of commands gets its own replies. */
static void assert_clean(aredis_client *c, int db) {
    ts_cmd_ok(c, "SET %s %s", "pool:dirty:probe", "clean");
    ts_echo_tokens(c, "clean", 20, 10000, "the next user's first commands");
    if (!ts_server_has(TS_FEATURE_CLIENT_INFO)) return;
    char v[32], want[16];
    snprintf(want, sizeof want, "%d", db);
    assert_true(ts_client_field(c, "db", v, sizeof v));
    assert_string_equal(v, want);
    assert_true(ts_client_field(c, "multi", v, sizeof v));
    assert_string_equal(v, "-1");
    assert_true(ts_client_field(c, "sub", v, sizeof v));
    assert_string_equal(v, "0");
    assert_true(ts_client_field(c, "psub", v, sizeof v));
    assert_string_equal(v, "0");
    assert_true(ts_client_field(c, "flags", v, sizeof v));
    assert_null(strchr(v, 'x')); /* in MULTI */
    assert_null(strchr(v, 'b')); /* blocked */
    assert_null(strchr(v, 'P')); /* pub/sub */
}

/* ---- Reset in place ---------------------------------------------------- */

static void test_multi_discarded(void **state) {
    (void)state;
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    aredis_future_release(ts_cmd(c, "DEL pool:dirty:multi"));
    ts_cmd_ok(c, "MULTI");
    aredis_future *q = ts_cmd(c, "SET pool:dirty:multi %s", "queued");
    ts_assert_status(aredis_future_reply(q), "QUEUED");
    aredis_future_release(q);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK); /* MULTI left open */

    c = acquire_wait(p);
    assert_int_equal(ts_client_id(c), id); /* reset in place, not replaced */
    assert_clean(c, 0);
    /* The queued SET never ran. */
    aredis_future *g = ts_cmd(c, "EXISTS pool:dirty:multi");
    ts_assert_int(aredis_future_reply(g), 0);
    aredis_future_release(g);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.resets, 1);
    assert_int_equal(s.discarded, 0);
    aredis_pool_free(p);
}

static void test_select_restored(void **state) {
    (void)state;
    aredis_pool *p = mkpool(1, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    ts_cmd_ok(c, "SELECT 4");
    ts_cmd_ok(c, "SET pool:dirty:db %s", "in-4");
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);

    c = acquire_wait(p);
    assert_int_equal(ts_client_id(c), id);
    assert_clean(c, 1);
    aredis_future *g = ts_cmd(c, "EXISTS pool:dirty:db"); /* it is in db 4, not 1 */
    ts_assert_int(aredis_future_reply(g), 0);
    aredis_future_release(g);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.resets, 1);
    assert_int_equal(s.discarded, 0);
    aredis_pool_free(p);
}

/* Replies still owed (not blocking): the released commands complete, to
 * their own callbacks; the next user gets the connection only after them. */
static void test_owed_replies(void **state) {
    (void)state;
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    aredis_future_release(ts_cmd(c, "DEL pool:dirty:owed"));
    enum { N = 50 };
    ts_rec r[N];
    memset(r, 0, sizeof r);
    size_t completed = 0;
    for (int i = 0; i < N; i++)
        r[i].counter = &completed;
    for (int i = 0; i < N; i++)
        assert_int_equal(aredis_command(c, ts_on_rec, &r[i], "INCR pool:dirty:owed"),
                         AREDIS_ERR_OK);
    /* Released in the same turn: not one reply has come. */
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.checking, 1); /* out of rotation meanwhile */
    assert_int_equal(s.idle, 0);
    got g = {0};
    g.count = &completed;
    assert_int_equal(aredis_pool_acquire(p, on_got, &g), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g.calls, 10000));
    assert_int_equal(g.code, AREDIS_ERR_OK);
    assert_int_equal(g.seen, N); /* every released reply came before the next user */
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
        ts_assert_int(r[i].r, i + 1);
        ts_rec_clear(&r[i]);
    }
    c = g.c;
    assert_int_equal(ts_client_id(c), id);
    assert_clean(c, 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    s = stats(p);
    assert_int_equal(s.resets, 1);
    assert_int_equal(s.discarded, 0);
    aredis_pool_free(p);
}

/* A reply still owed by the server to a command whose future was
 * cancelled (no one waits for it, the client does): same rule. */
static void test_owed_cancelled(void **state) {
    (void)state;
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    aredis_future *slow = aredis_future_command(c, "DEBUG SLEEP 0.2");
    aredis_loop_run_once(g_loop, 0); /* on the wire */
    aredis_future_cancel(slow);
    aredis_future_release(slow);
    assert_int_equal(aredis_client_pending(c), 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    assert_int_equal(stats(p).checking, 1);
    c = acquire_wait(p);
    assert_int_equal(ts_client_id(c), id);
    assert_clean(c, 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    assert_int_equal(stats(p).discarded, 0);
    aredis_pool_free(p);
}

/* ---- Replaced ------------------------------------------------------------ */

static void test_blocking_pending(void **state) {
    (void)state;
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    ts_rec blk = {0};
    assert_int_equal(aredis_command(c, ts_on_rec, &blk, "BLPOP pool:dirty:never 0"), AREDIS_ERR_OK);
    aredis_loop_run_once(g_loop, 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    /* Closed: the BLPOP fails at once instead of holding the next user. */
    assert_int_equal(blk.calls, 1);
    assert_int_equal(blk.code, AREDIS_ERR_CANCELLED);
    ts_rec_clear(&blk);
    c = acquire_wait(p);
    assert_true(ts_client_id(c) != id);
    assert_clean(c, 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.discarded, 1);
    assert_int_equal(s.created, 2);
    aredis_pool_free(p);
}

static void test_watch_held(void **state) {
    (void)state;
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    ts_cmd_ok(c, "SET pool:dirty:watched %s", "1");
    aredis_tx *tx = aredis_tx_new(c);
    const char *keys[] = {"pool:dirty:watched"};
    aredis_future *w = aredis_tx_watch_future(tx, 1, keys, NULL);
    assert_int_equal(aredis_await(w), AREDIS_ERR_OK);
    aredis_future_release(w);
    /* Released while the transaction still holds its WATCH: closed, but
     * the client object stays valid for the transaction. */
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CLOSED);
    aredis_tx_free(tx);

    /* The watched key changes; the next user's transaction must not be
     * aborted by a WATCH it never made. */
    ts_cmd_ok(g_obs, "SET pool:dirty:watched %s", "2");
    aredis_client *d = acquire_wait(p);
    assert_true(ts_client_id(d) != id);
    assert_clean(d, 0);
    aredis_tx *tx2 = aredis_tx_new(d);
    aredis_tx_queue(tx2, "INCR pool:dirty:watched");
    aredis_future *e = aredis_tx_exec_future(tx2);
    assert_int_equal(aredis_await(e), AREDIS_ERR_OK);
    assert_false(aredis_tx_aborted(aredis_future_reply(e)));
    ts_assert_array(aredis_future_reply(e), 1);
    aredis_future_release(e);
    aredis_tx_free(tx2);
    assert_int_equal(aredis_pool_release(p, d), AREDIS_ERR_OK);
    assert_int_equal(stats(p).discarded, 1);
    aredis_pool_free(p);
}

static void subscribed_case(int protocol) {
    aredis_pool *p = mkpool(0, protocol);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    /* The command API refuses the subscribe family... */
    assert_int_equal(aredis_command(c, NULL, NULL, "SUBSCRIBE pool:ch"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis_command(c, NULL, NULL, "PSUBSCRIBE pool:*"), AREDIS_ERR_UNSUPPORTED);
    /* ...and a subscription (RESP3: on this connection; RESP2: on one of
     * its own, which the pool sees too) is released with its client. */
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    aredis_subscription *sub = aredis_subscription_new(c, &so);
    assert_non_null(sub);
    const char *ch[] = {"pool:ch"};
    aredis_future *f = aredis_subscription_subscribe_f(sub, AREDIS_SUB_CHANNEL, 1, ch, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_subscription_free(sub); /* still safe: the client is kept */

    aredis_client *d = acquire_wait(p);
    assert_true(ts_client_id(d) != id);
    assert_clean(d, 0);
    /* Nobody is subscribed any more. */
    aredis_future *n = ts_cmd(g_obs, "PUBLISH pool:ch hello");
    ts_assert_int(aredis_future_reply(n), 0);
    aredis_future_release(n);
    assert_int_equal(aredis_pool_release(p, d), AREDIS_ERR_OK);
    assert_int_equal(stats(p).discarded, 1);
    aredis_pool_free(p);
}

static void test_subscribed_resp3(void **state) {
    (void)state;
    subscribed_case(3);
}

static void test_subscribed_resp2(void **state) {
    (void)state;
    subscribed_case(2);
}

static void test_auth_and_hello(void **state) {
    (void)state;
    ts_cmd_ok(g_obs, "ACL SETUSER pooluser on >poolpw ~* &* +@all");
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    ts_cmd_ok(c, "AUTH pooluser poolpw");
    aredis_future *who = ts_cmd(c, "ACL WHOAMI");
    ts_assert_str(aredis_future_reply(who), "pooluser");
    aredis_future_release(who);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);

    c = acquire_wait(p);
    long long id2 = ts_client_id(c);
    assert_true(id2 != id);
    who = ts_cmd(c, "ACL WHOAMI");
    ts_assert_str(aredis_future_reply(who), "default");
    aredis_future_release(who);
    assert_clean(c, 0);
    /* HELLO (another protocol, or another user): the same. */
    aredis_future *h = ts_cmd(c, "HELLO 2");
    assert_null(aredis_future_error(h));
    aredis_future_release(h);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    c = acquire_wait(p);
    assert_true(ts_client_id(c) != id2);
    assert_int_equal(aredis_client_protocol(c), 3);
    assert_clean(c, 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    assert_int_equal(stats(p).discarded, 2);
    aredis_pool_free(p);
    aredis_future_release(ts_cmd(g_obs, "ACL DELUSER pooluser"));
}

/* ---- Refused at issue time: nothing left behind ----------------------------- */

static void test_refused_commands(void **state) {
    (void)state;
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    long long id = ts_client_id(c);
    static const char *const refused[] = {"CLIENT REPLY OFF", "CLIENT REPLY SKIP", "WATCH pool:k",
                                          "UNWATCH",          "SUBSCRIBE pool:c",  "RESET"};
    ts_rec r = {0};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        assert_int_equal(aredis_command(c, ts_on_rec, &r, refused[i]), AREDIS_ERR_UNSUPPORTED);
        ts_log("%s: %s", refused[i], aredis_call_error()->detail);
    }
    /* Pipelines refuse them too. */
    aredis_pipeline *pl = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(pl, "CLIENT REPLY OFF"), AREDIS_ERR_UNSUPPORTED);
    aredis_pipeline_free(pl);
    assert_int_equal(r.calls, 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    c = acquire_wait(p);
    assert_int_equal(ts_client_id(c), id); /* nothing to reset */
    assert_clean(c, 0);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.discarded, 0);
    assert_int_equal(s.resets, 0);
    aredis_pool_free(p);
}

/* A clean release costs nothing: no command, the same connection. */
static void test_clean_release_is_free(void **state) {
    (void)state;
    aredis_pool *p = mkpool(0, 3);
    aredis_client *c = acquire_wait(p);
    ts_cmd_ok(c, "SET pool:dirty:clean %s", "v");
    aredis_client_stats before, after;
    aredis_client_get_stats(c, &before);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_client *d = acquire_wait(p);
    assert_ptr_equal(c, d);
    aredis_client_get_stats(d, &after);
    assert_int_equal(after.commands, before.commands);
    assert_int_equal(aredis_pool_release(p, d), AREDIS_ERR_OK);
    aredis_pool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_discarded),       cmocka_unit_test(test_select_restored),
        cmocka_unit_test(test_owed_replies),          cmocka_unit_test(test_owed_cancelled),
        cmocka_unit_test(test_blocking_pending),      cmocka_unit_test(test_watch_held),
        cmocka_unit_test(test_subscribed_resp3),      cmocka_unit_test(test_subscribed_resp2),
        cmocka_unit_test(test_auth_and_hello),        cmocka_unit_test(test_refused_commands),
        cmocka_unit_test(test_clean_release_is_free),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
