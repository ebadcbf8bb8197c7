/*
 * Client-side caching across a client's life: a server restart empties the
 * cache; close() from on_invalidate during a lost connection stays closed;
 * a hit's callback runs on a later loop turn, exactly once, cancelled with
 * its future (also from a callback run by close()) or its client; the cache
 * freed right after use; a forked child's new client not served the
 * parent's entries; RESP2, a second loop and invalid options refused; a
 * server refusing HELLO 3 or CLIENT TRACKING (fake server).
 */
#include "cache_common.h"

/* A restart: the cache is emptied, and the next read is the restarted
 * server's value. */
static void test_server_restart_empties(void **state) {
    (void)state;
    ts_server *srv = ts_server_start_default();
    aredis_client *w = ts_client(g_loop, srv);
    ts_cmd_ok(w, "SET rs:k before");
    inv_log log = {0};
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    aredis_client *c = cached_on(srv, k);
    expect_str(c, "before", "GET rs:k");
    expect_str(c, "before", "GET rs:k");
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.hits, 1);
    uint64_t flushes = s.flushes;

    ts_server_kill(srv);
    if (!wait_stat(k, ST_FLUSHES, flushes + 1)) fail_msg("the lost connection did not empty it");
    s = cstats(k);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(log.nulls, 1);
    ts_server_restart(srv);
    ts_cmd_ok(w, "SET rs:k after");
    aredis_future *ready = aredis_future_ready(c);
    assert_int_equal(aredis_await(ready), AREDIS_ERR_OK);
    aredis_future_release(ready);
    expect_str(c, "after", "GET rs:k"); /* after the restart */
    expect_str(c, "after", "GET rs:k"); /* after the restart */
    s = cstats(k);
    assert_int_equal(s.flushes, flushes + 1);
    assert_int_equal(s.entries, 1);
    assert_int_equal(clstats(c).connects, 2);
    /* Tracking is on again on the new connection: another write invalidates. */
    uint64_t msgs = s.invalidation_messages;
    ts_cmd_ok(w, "SET rs:k again");
    assert_true(wait_stat(k, ST_INVAL_MSGS, msgs + 1));
    expect_str(c, "again", "GET rs:k");

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
    ts_server_stop(srv);
}

/*
 * The application closes the client from the cache's on_invalidate while a
 * lost connection empties the cache: the client stays closed (no reconnect
 * brings it back), refuses commands with CLOSED, and on_invalidate heard of
 * that teardown once. A witness killed right after it, with the same
 * reconnect policy, shows that a reconnect would have happened by then.
 */
typedef struct close_in_inval {
    aredis_client *c; /* closed at the first whole-cache invalidation */
    size_t calls, nulls;
    aredis_state state_after_close; /* right after close(), inside the callback */
} close_in_inval;

static void close_on_flush(aredis_cache *k, const char *key, size_t len, void *data) {
    (void)k;
    (void)len;
    close_in_inval *x = data;
    x->calls++;
    if (key) return;
    x->nulls++;
    if (x->nulls == 1) {
        aredis_client_close(x->c);
        x->state_after_close = aredis_client_state(x->c);
    }
}

typedef struct reconnected {
    const aredis_client *c;
    uint64_t connects;
} reconnected;

static int has_reconnected(const void *arg) {
    const reconnected *r = arg;
    return clstats(r->c).connects >= r->connects && aredis_client_state(r->c) == AREDIS_STATE_READY;
}

static void test_close_from_on_invalidate(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET ci:k v");
    close_in_inval x;
    memset(&x, 0, sizeof x);
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.on_invalidate = close_on_flush;
    co.data = &x;
    aredis_cache *k = aredis_cache_new(&co);
    assert_non_null(k);
    aredis_options o = ts_options(g_srv);
    o.reconnect_delay_ms = 5;
    o.max_reconnect_delay_ms = 5;
    o.reconnect_jitter = 0;
    aredis_client *witness = ts_connect(g_loop, &o);
    o.cache = k;
    aredis_client *c = ts_connect(g_loop, &o);
    x.c = c;
    expect_str(c, "v", "GET ci:k");
    assert_int_equal(cstats(k).entries, 1);
    long long id = ts_client_id(c), wid = ts_client_id(witness);

    assert_int_equal(int_of(w, "CLIENT KILL ID %lld", id), 1);
    if (!ts_wait_count(g_loop, &x.nulls, 1, 10000))
        fail_msg("the lost connection did not empty the cache (on_invalidate calls %zu)", x.calls);
    assert_int_equal(x.state_after_close, AREDIS_STATE_CLOSED);
    if (aredis_client_state(c) != AREDIS_STATE_CLOSED)
        fail_msg("closed from on_invalidate, the client is %s once the teardown is over",
                 aredis_state_name(aredis_client_state(c)));
    assert_int_equal(cstats(k).entries, 0);

    /* The loop runs on until the witness has reconnected. */
    assert_int_equal(int_of(w, "CLIENT KILL ID %lld", wid), 1);
    reconnected rw = {witness, 2};
    if (!ts_wait_until(g_loop, has_reconnected, &rw, 10000))
        fail_msg("the witness did not reconnect (state %s)",
                 aredis_state_name(aredis_client_state(witness)));
    if (aredis_client_state(c) != AREDIS_STATE_CLOSED)
        fail_msg("closed from on_invalidate, the client is %s again",
                 aredis_state_name(aredis_client_state(c)));
    assert_int_equal(clstats(c).connects, 1);
    assert_int_equal(x.nulls, 1); /* told once */
    assert_int_equal(aredis_command(c, NULL, NULL, "PING"), AREDIS_ERR_CLOSED);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_CLOSED);
    settle(w);
    assert_int_equal(x.nulls, 1);

    aredis_client_free(c);
    aredis_client_free(witness);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- Delivery of hits ------------------------------------------------------------ */

static void retain_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)err;
    *(aredis_reply **)data = r ? aredis_reply_retain(r) : NULL;
}

typedef struct nested {
    aredis_client *c;
    ts_result inner;
    int inner_ran_inside; /* the inner hit's callback ran inside the outer's call */
    int outer_calls;
} nested;

static void nested_outer(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    (void)err;
    nested *n = data;
    n->outer_calls++;
    assert_int_equal(aredis_command(c, ts_on_reply, &n->inner, "GET lt:k"), AREDIS_ERR_OK);
    if (n->inner.calls) n->inner_ran_inside = 1;
}

static void test_hit_on_later_turn(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET lt:k lv");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    expect_str(c, "lv", "GET lt:k");

    ts_result r;
    memset(&r, 0, sizeof r);
    uint64_t out = clstats(c).bytes_out;
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET lt:k"), AREDIS_ERR_OK);
    assert_int_equal(r.calls, 0); /* not inside the call */
    assert_int_equal(cstats(k).hits, 1);
    assert_int_equal(aredis_client_pending(c), 1);
    assert_true(ts_wait(g_loop, &r.done, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_int_equal(r.type, AREDIS_REPLY_STRING);
    assert_string_equal(r.text, "lv");
    settle(c);
    settle(w);
    assert_int_equal(r.calls, 1); /* exactly once */
    assert_int_equal(aredis_client_pending(c), 0);
    assert_int_equal(clstats(c).bytes_out, out + 14); /* only the PING ("*1\r\n$4\r\nPING\r\n") */

    /* A hit issued from a hit's callback: also on a later turn. */
    nested n;
    memset(&n, 0, sizeof n);
    assert_int_equal(aredis_command(c, nested_outer, &n, "GET lt:k"), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &n.inner.done, 5000));
    assert_int_equal(n.outer_calls, 1);
    assert_false(n.inner_ran_inside);
    settle(c);
    assert_int_equal(n.inner.calls, 1);
    assert_string_equal(n.inner.text, "lv");
    assert_int_equal(cstats(k).hits, 3);

    /* A hit's reply kept (a future's, one retained in the callback) outlives
     * its entry. */
    aredis_future *f = ts_cmd(c, "GET lt:k");
    assert_int_equal(cstats(k).hits, 4);
    aredis_reply *kept = NULL;
    assert_int_equal(aredis_command(c, retain_reply, &kept, "GET lt:k"), AREDIS_ERR_OK);
    settle(c);
    assert_non_null(kept);
    uint64_t msgs = cstats(k).invalidation_messages;
    ts_cmd_ok(w, "SET lt:k changed");
    assert_true(wait_stat(k, ST_INVAL_MSGS, msgs + 1));
    assert_int_equal(cstats(k).entries, 0);
    assert_string_equal(aredis_future_reply(f)->str, "lv");
    assert_string_equal(kept->str, "lv");
    aredis_reply_release(kept);
    aredis_future_release(f);
    expect_str(c, "changed", "GET lt:k");

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

static void test_cancel_hit_future(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET cf:k cv");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    expect_str(c, "cv", "GET cf:k");

    aredis_future *f = aredis_future_command(c, "GET cf:k");
    assert_non_null(f);
    assert_int_equal(cstats(k).hits, 1);
    int thens = 0;
    assert_int_equal(aredis_future_then(f, count_then, &thens), AREDIS_ERR_OK);
    assert_false(aredis_future_is_done(f));
    aredis_future_cancel(f);
    assert_true(aredis_future_is_done(f));
    assert_non_null(aredis_future_error(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    assert_int_equal(thens, 1);
    settle(c);
    settle(c);
    assert_int_equal(thens, 1);
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    assert_int_equal(aredis_client_pending(c), 0);
    aredis_future_release(f);
    /* The entry is still there for the next read. */
    expect_str(c, "cv", "GET cf:k");
    assert_int_equal(cstats(k).hits, 2);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

static void test_close_and_free_with_hits_pending(void **state) {
    (void)state;
    enum { N = 5 };
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET fp:k fv");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);

    /* close(): every pending hit completes CANCELLED before it returns. */
    aredis_client *c = cached_client(k);
    expect_str(c, "fv", "GET fp:k");
    ts_result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "GET fp:k"), AREDIS_ERR_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].calls, 0);
    aredis_client_close(c);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_CANCELLED);
    }
    settle(w);
    settle(w);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].calls, 1);
    aredis_client_free(c);

    /* free(): the same, and the client's hits timer must not fire after. */
    c = cached_client(k);
    expect_str(c, "fv", "GET fp:k");
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "GET fp:k"), AREDIS_ERR_OK);
    aredis_future *f = aredis_future_command(c, "GET fp:k");
    assert_non_null(f);
    assert_int_equal(cstats(k).hits, 2 * N + 1);
    aredis_client_free(c);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_CANCELLED);
    }
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    aredis_future_release(f);
    settle(w);
    settle(w);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].calls, 1);

    aredis_client_free(w);
    aredis_cache_free(k);
}

/*
 * close() completes the pending hits one by one; the first one's callback
 * cancels the second one's future (taken by the teardown already): no
 * crash, and each completes exactly once, CANCELLED.
 */
typedef struct cancel_next {
    ts_result r;
    aredis_future *next;
} cancel_next;

static void cancel_next_hit(aredis_client *c, aredis_reply *r, const aredis_error *err,
                            void *data) {
    cancel_next *x = data;
    ts_on_reply(c, r, err, &x->r);
    aredis_future_cancel(x->next);
}

static void test_hit_cancelled_from_close(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET hx:k hv");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    expect_str(c, "hv", "GET hx:k");

    cancel_next first;
    memset(&first, 0, sizeof first);
    ts_result last;
    memset(&last, 0, sizeof last);
    assert_int_equal(aredis_command(c, cancel_next_hit, &first, "GET hx:k"), AREDIS_ERR_OK);
    aredis_future *f2 = aredis_future_command(c, "GET hx:k");
    assert_non_null(f2);
    first.next = f2;
    int thens = 0;
    assert_int_equal(aredis_future_then(f2, count_then, &thens), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &last, "GET hx:k"), AREDIS_ERR_OK);
    assert_int_equal(cstats(k).hits, 3);
    assert_int_equal(aredis_client_pending(c), 3);
    assert_int_equal(first.r.calls, 0);
    assert_false(aredis_future_is_done(f2));

    aredis_client_close(c);
    assert_int_equal(first.r.calls, 1);
    assert_int_equal(first.r.code, AREDIS_ERR_CANCELLED);
    assert_true(aredis_future_is_done(f2));
    assert_int_equal(aredis_future_error(f2)->code, AREDIS_ERR_CANCELLED);
    assert_null(aredis_future_reply(f2));
    assert_int_equal(thens, 1);
    assert_int_equal(last.calls, 1);
    assert_int_equal(last.code, AREDIS_ERR_CANCELLED);
    assert_int_equal(aredis_client_pending(c), 0);
    settle(w);
    settle(w);
    assert_int_equal(first.r.calls, 1);
    assert_int_equal(thens, 1);
    assert_int_equal(last.calls, 1);
    aredis_future_release(f2);
    aredis_client_free(c);
    /* The cache still serves another client. */
    c = cached_client(k);
    expect_str(c, "hv", "GET hx:k");
    expect_str(c, "hv", "GET hx:k");
    assert_int_equal(cstats(k).hits, 4);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- Refused setups ------------------------------------------------------------------ */

static void test_refused_setups(void **state) {
    (void)state;
    aredis_cache *k = cache_new(1u << 20, 0, NULL);

    /* RESP2 */
    aredis_options o = ts_options(g_srv);
    o.cache = k;
    o.protocol = 2;
    assert_null(aredis_client_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_non_null(strstr(aredis_call_error()->detail, "RESP3"));

    /* A second loop. */
    o.protocol = 3;
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    aredis_loop *other = aredis_loop_new();
    assert_non_null(other);
    assert_null(aredis_client_new(other, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    /* Also once the first client is gone: the cache stays its loop's. */
    aredis_client_free(c);
    assert_null(aredis_client_new(other, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    aredis_loop_free(other);
    /* And the first loop still works with it. */
    c = ts_connect(g_loop, &o);
    settle(c);
    aredis_client_free(c);
    aredis_cache_free(k);

    /* A pool refuses them too (its probe client), without keeping the cache. */
    aredis_cache *kp = cache_new(1u << 20, 0, NULL);
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    po.client.cache = kp;
    po.client.protocol = 2;
    assert_null(aredis_pool_new(g_loop, &po));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    po.client.protocol = 3;
    aredis_pool *pool = aredis_pool_new(g_loop, &po);
    assert_non_null(pool);
    aredis_loop *other2 = aredis_loop_new();
    assert_non_null(other2);
    assert_null(aredis_pool_new(other2, &po));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    aredis_loop_free(other2);
    aredis_pool_free(pool);
    aredis_cache_free(kp);

    /* Invalid cache options. */
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.max_bytes = 0;
    co.max_entries = 0;
    assert_null(aredis_cache_new(&co));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    static const char *const pre[] = {"a:"};
    co = (aredis_cache_options)AREDIS_CACHE_OPTIONS_INIT;
    co.prefixes = pre;
    co.nprefixes = 1;
    assert_null(aredis_cache_new(&co)); /* prefixes outside BCAST */
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    co.mode = AREDIS_CACHE_OPTIN;
    assert_null(aredis_cache_new(&co));
    static const char *const nullpre[] = {"a:", NULL};
    co.mode = AREDIS_CACHE_BCAST;
    co.prefixes = nullpre;
    co.nprefixes = 2;
    assert_null(aredis_cache_new(&co));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    co.nprefixes = 1;
    aredis_cache *ok = aredis_cache_new(&co);
    assert_non_null(ok);
    aredis_cache_free(ok);
    aredis_cache *def = aredis_cache_new(NULL);
    assert_non_null(def);
    assert_int_equal(aredis_cache_allowed(def, "GET"), 1);
    aredis_cache_free(def);
    aredis_cache_free(NULL);
}

/* ---- The cache's lifetime ------------------------------------------------------------ */

static void test_cache_freed_early(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET fe:k one");
    inv_log log = {0};
    watch(&log, "fe:k", 4);
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    aredis_options o = ts_options(g_srv);
    o.cache = k;
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    aredis_cache_free(k); /* the client keeps its reference */
    k = NULL;
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    long long calls = get_calls(w);
    expect_str(c, "one", "GET fe:k");
    expect_str(c, "one", "GET fe:k");
    assert_int_equal(get_calls(w), calls + 1); /* the second was a hit */
    ts_cmd_ok(w, "SET fe:k two");
    assert_true(ts_wait_count(g_loop, &log.watched, 1, 10000));
    expect_str(c, "two", "GET fe:k");
    /* A read in flight (a miss) when the client goes: CANCELLED, and its
     * hold on the cache let go. */
    ts_result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET fe:other"), AREDIS_ERR_OK);
    aredis_client_free(c);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, AREDIS_ERR_CANCELLED);

    /* A pool: freed right after aredis_pool_new. */
    aredis_cache *k2 = cache_new(1u << 20, 0, NULL);
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    po.client.cache = k2;
    po.max_connections = 2;
    aredis_pool *pool = aredis_pool_new(g_loop, &po);
    assert_non_null(pool);
    aredis_cache_free(k2);
    calls = get_calls(w);
    for (int i = 0; i < 3; i++) {
        aredis_future *f = aredis_pool_future_command(pool, "GET fe:k");
        assert_non_null(f);
        check_str(f, "two", "pool GET fe:k");
        aredis_future_release(f);
    }
    assert_int_equal(get_calls(w), calls + 1);
    aredis_pool_free(pool);
    aredis_client_free(w);
}

/*
 * fork(): the child inherits the cache's entries, but nothing in the child
 * tracks those keys (the connections that did are the parent's). A new
 * client made in the child on the same cache must not be served the
 * parent's entry once the server holds a newer value. The child reports
 * through its exit status (it never uses cmocka) and leaves with _exit().
 */
#define FK_CONNECT 0x01 /* the child's client could not connect */
#define FK_GET 0x02     /* a GET in the child failed */
#define FK_STALE 0x04   /* the child was served the parent's cached value */

static const ts_child_check k_fork_checks[] = {
    {FK_CONNECT, "a new client in the child (same cache, same loop) could not connect"},
    {FK_GET, "GET in the child failed or did not return a string"},
    {FK_STALE, "the child's new client was served the parent's cached value"},
};

static int fork_cache_child(aredis_cache *k) {
    alarm(30); /* a hang kills the child: the parent sees the signal */
    if (aredis_loop_after_fork(g_loop) != AREDIS_ERR_OK) return FK_CONNECT;
    aredis_options o = ts_options(g_srv);
    o.cache = k;
    o.reconnect = 0;
    aredis_client *c = aredis_client_new(g_loop, &o);
    if (!c || aredis_client_connect(c) != AREDIS_ERR_OK) return FK_CONNECT;
    aredis_future *ready = aredis_future_ready(c);
    aredis_err e = ready ? aredis_await(ready) : AREDIS_ERR_NOMEM;
    aredis_future_release(ready);
    if (e != AREDIS_ERR_OK) return FK_CONNECT;
    int bad = 0;
    for (int i = 0; i < 2; i++) { /* a miss, then a hit of what it stored */
        aredis_future *f = aredis_future_command(c, "GET fk:k");
        const aredis_reply *r =
            f && aredis_await(f) == AREDIS_ERR_OK ? aredis_future_reply(f) : NULL;
        if (!r || r->type != AREDIS_REPLY_STRING)
            bad |= FK_GET;
        else if (r->len != 5 || memcmp(r->str, "child", 5) != 0)
            bad |= FK_STALE;
        aredis_future_release(f);
    }
    aredis_client_free(c);
    return bad;
}

static void test_fork_new_client_not_served_parent_entries(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET fk:k parent");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    expect_str(c, "parent", "GET fk:k");
    expect_str(c, "parent", "GET fk:k");
    assert_int_equal(cstats(k).hits, 1);
    /* The new value, from a loop of its own: running it does not read c's
     * invalidation, so the parent's entry is still there at the fork. */
    aredis_loop *wl = aredis_loop_new();
    assert_non_null(wl);
    aredis_client *w2 = ts_client(wl, g_srv);
    ts_cmd_ok(w2, "SET fk:k child");
    aredis_client_free(w2);
    aredis_loop_free(wl);
    assert_int_equal(cstats(k).entries, 1);

    pid_t pid = ts_fork();
    if (pid == 0) _exit(fork_cache_child(k));
    ts_wait_child(pid, k_fork_checks, sizeof k_fork_checks / sizeof k_fork_checks[0]);

    /* The parent's own connection is told, and reads fresh. */
    assert_true(wait_stat(k, ST_INVAL_MSGS, 1));
    expect_str(c, "child", "GET fk:k");

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- Servers that cannot track ------------------------------------------------------- */

static void test_server_without_resp3(void **state) {
    (void)state;
    ts_fake *f = ts_fake_new();
    ts_fake_reply(f, "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n");
    ts_fake_wait_eof(f, 5000);
    ts_fake_start(f);
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = ts_fake_port(f);
    o.cache = k;
    aredis_client *c = NULL;
    char detail[300];
    aredis_err e = ts_connect_err(g_loop, &o, &c, detail, sizeof detail);
    assert_int_equal(e, AREDIS_ERR_HANDSHAKE);
    if (!strstr(detail, "RESP3")) fail_msg("detail does not say RESP3: %s", detail);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE); /* not retried */
    assert_int_equal(ts_fake_accepted(f), 1);
    aredis_client_free(c);
    ts_fake_stop(f);
    aredis_cache_free(k);
}

static void test_server_refuses_tracking(void **state) {
    (void)state;
    ts_fake *f = ts_fake_new();
    ts_fake_hello3(f);
    ts_fake_reply(f, "-ERR tracking is not available here\r\n");
    ts_fake_wait_eof(f, 5000);
    ts_fake_start(f);
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = ts_fake_port(f);
    o.cache = k;
    aredis_client *c = NULL;
    char detail[300];
    aredis_err e = ts_connect_err(g_loop, &o, &c, detail, sizeof detail);
    assert_int_equal(e, AREDIS_ERR_HANDSHAKE);
    if (!strstr(detail, "CLIENT TRACKING")) fail_msg("detail: %s", detail);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    aredis_client_free(c);
    ts_fake_stop(f);
    aredis_cache_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_server_restart_empties),
        TS_LOOP_CASE(test_close_from_on_invalidate),
        TS_LOOP_CASE(test_hit_on_later_turn),
        TS_LOOP_CASE(test_cancel_hit_future),
        TS_LOOP_CASE(test_close_and_free_with_hits_pending),
        TS_LOOP_CASE(test_hit_cancelled_from_close),
        TS_LOOP_CASE(test_refused_setups),
        TS_LOOP_CASE(test_cache_freed_early),
        TS_LOOP_CASE(test_fork_new_client_not_served_parent_entries),
        TS_LOOP_CASE(test_server_without_resp3),
        TS_LOOP_CASE(test_server_refuses_tracking),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
