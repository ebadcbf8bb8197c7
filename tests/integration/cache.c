/*
 * Client-side caching (aredis/cache.h) against a real server: exact hit
 * and miss counts and no I/O for a hit; another client's write, FLUSHDB and
 * FLUSHALL invalidate (the next read after the invalidation arrived is
 * fresh), a server-side expiry too; error replies not stored; the
 * allow-list; BCAST and OPTIN modes; a key prefix; binary keys.
 */
#include "cache_common.h"

static void test_hit_miss_counts(void **state) {
    (void)state;
    enum { N = 16, M = 5 };
    aredis_client *w = plain_client();
    fresh(w);
    for (int i = 0; i < N; i++)
        ts_cmd_ok(w, "SET hm:%d value-%d", i, i);
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    long long calls0 = get_calls(w);

    char want[32];
    for (int i = 0; i < N; i++) {
        snprintf(want, sizeof want, "value-%d", i);
        expect_str(c, want, "GET hm:%d", i);
    }
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.misses, N);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.stores, N);
    assert_int_equal(s.entries, N);
    assert_int_equal(s.not_stored, 0);
    assert_true(s.bytes > 0);
    assert_int_equal(get_calls(w), calls0 + N);

    aredis_client_stats before = clstats(c);
    /* M - 1 passes one at a time, then one pass with all N in flight at once. */
    for (int m = 0; m < M - 1; m++)
        for (int i = 0; i < N; i++) {
            snprintf(want, sizeof want, "value-%d", i);
            expect_str(c, want, "GET hm:%d", i);
        }
    aredis_future *fs[N];
    for (int i = 0; i < N; i++) {
        fs[i] = aredis_future_command(c, "GET hm:%d", i);
        assert_non_null(fs[i]);
    }
    for (int i = 0; i < N; i++) {
        snprintf(want, sizeof want, "value-%d", i);
        check_str(fs[i], want, "GET hm:<i> (all in flight)");
        aredis_future_release(fs[i]);
    }
    s = cstats(k);
    assert_int_equal(s.hits, N * M);
    assert_int_equal(s.misses, N);
    assert_int_equal(s.stores, N);
    assert_int_equal(s.entries, N);
    aredis_client_stats after = clstats(c);
    /* A hit sends nothing and reads nothing. */
    assert_int_equal(after.bytes_out, before.bytes_out);
    assert_int_equal(after.bytes_in, before.bytes_in);
    assert_int_equal(after.commands, before.commands);
    assert_int_equal(get_calls(w), calls0 + N);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* An error reply is handed over, not stored (and counted in not_stored,
 * cache.h: "replies not stored: invalidated while in flight, an error
 * reply, too big"). */
static void test_error_reply_not_stored(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    assert_int_equal(int_of(w, "HSET er:hash f 1"), 1);
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    long long calls = get_calls(w);
    for (int i = 0; i < 2; i++) {
        aredis_future *f = ts_cmd(c, "GET er:hash");
        assert_non_null(aredis_future_error(f));
        assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_SERVER);
        assert_non_null(aredis_future_reply(f));
        assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_ERROR);
        aredis_future_release(f);
    }
    assert_int_equal(get_calls(w), calls + 2); /* both sent */
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.stores, 0);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    if (s.not_stored != 2)
        fail_msg("not_stored is %" PRIu64 " after two error replies, want 2", s.not_stored);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- Other clients' writes ------------------------------------------------------- */

static void test_other_client_set_invalidates(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET oc:k old");
    inv_log log = {0};
    watch(&log, "oc:k", 4);
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    int pushes = 0;
    aredis_options o = ts_options(g_srv);
    o.cache = k;
    o.on_push = count_push;
    o.cb_data = &pushes;
    aredis_client *c = ts_connect(g_loop, &o);

    expect_str(c, "old", "GET oc:k");
    expect_str(c, "old", "GET oc:k");
    assert_int_equal(int_of(c, "STRLEN oc:k"), 3);
    assert_int_equal(int_of(c, "EXISTS oc:k"), 1);
    expect_str(c, NULL, "GET oc:missing");
    expect_str(c, NULL, "GET oc:missing");
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 4);
    assert_int_equal(s.entries, 4); /* GET, STRLEN, EXISTS of oc:k; GET of oc:missing */

    ts_cmd_ok(w, "SET oc:k newer");
    if (!ts_wait_count(g_loop, &log.watched, 1, 10000))
        fail_msg("no invalidation of oc:k arrived (on_invalidate calls %zu)", log.calls);
    s = cstats(k);
    assert_true(s.invalidation_messages >= 1);
    assert_int_equal(s.entries, 1); /* the three of oc:k went together */
    assert_true(s.invalidations >= 3);
    expect_str(c, "newer", "GET oc:k");
    assert_int_equal(int_of(c, "STRLEN oc:k"), 5);
    assert_int_equal(int_of(c, "EXISTS oc:k"), 1);
    assert_int_equal(cstats(k).hits, 2); /* all three were misses */

    /* A cached nil: the key's creation invalidates it. */
    uint64_t msgs = cstats(k).invalidation_messages;
    ts_cmd_ok(w, "SET oc:missing here");
    assert_true(wait_stat(k, ST_INVAL_MSGS, msgs + 1));
    expect_str(c, "here", "GET oc:missing");

    /* An expiry on the server invalidates too. */
    watch(&log, "oc:exp", 6);
    ts_cmd_ok(w, "SET oc:exp short PX 200");
    expect_str(c, "short", "GET oc:exp");
    expect_str(c, "short", "GET oc:exp");
    if (!ts_wait_count(g_loop, &log.watched, 1, 10000))
        fail_msg("no invalidation after oc:exp expired on the server");
    expect_str(c, NULL, "GET oc:exp");
    assert_int_equal(pushes, 0); /* invalidations are the cache's, not on_push's */

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- Flushes --------------------------------------------------------------------- */

static void test_flush_from_other_client(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "MSET fl:1 a fl:2 b fl:3 c");
    inv_log log = {0};
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    aredis_client *c = cached_client(k);
    expect_str(c, "a", "GET fl:1");
    expect_str(c, "b", "GET fl:2");
    expect_str(c, "c", "GET fl:3");
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.entries, 3);
    uint64_t flushes = s.flushes;

    ts_cmd_ok(w, "FLUSHDB");
    if (!ts_wait_count(g_loop, &log.nulls, 1, 10000))
        fail_msg("no nil invalidation after FLUSHDB (on_invalidate calls %zu)", log.calls);
    assert_false(log.bad_null);
    s = cstats(k);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(s.flushes, flushes + 1);
    expect_str(c, NULL, "GET fl:1"); /* after FLUSHDB */

    /* fl:1's nil is cached: its creation is announced before it is read again. */
    uint64_t msgs = s.invalidation_messages;
    ts_cmd_ok(w, "MSET fl:1 x fl:2 y");
    assert_true(wait_stat(k, ST_INVAL_MSGS, msgs + 1));
    expect_str(c, "x", "GET fl:1");
    expect_str(c, "y", "GET fl:2");
    assert_int_equal(cstats(k).entries, 2);
    size_t nulls = log.nulls;
    ts_cmd_ok(w, "FLUSHALL");
    assert_true(ts_wait_count(g_loop, &log.nulls, nulls + 1, 10000));
    s = cstats(k);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(s.flushes, flushes + 2);
    expect_str(c, NULL, "GET fl:1"); /* after FLUSHALL */
    expect_str(c, NULL, "GET fl:2"); /* after FLUSHALL */

    /* aredis_cache_clear: the same, from the application. */
    msgs = s.invalidation_messages;
    ts_cmd_ok(w, "SET fl:1 z");
    assert_true(wait_stat(k, ST_INVAL_MSGS, msgs + 1));
    expect_str(c, "z", "GET fl:1");
    expect_str(c, "z", "GET fl:1");
    nulls = log.nulls;
    aredis_cache_clear(k);
    assert_int_equal(log.nulls, nulls + 1);
    s = cstats(k);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(s.flushes, flushes + 3);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

static void test_allow_list(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "MSET al:a 1 al:b 2");
    inv_log log = {0};
    aredis_cache *k = cache_new(1u << 20, 0, &log);

    assert_int_equal(aredis_cache_allowed(k, "get"), 1);
    assert_int_equal(aredis_cache_allowed(k, "GET"), 1);
    assert_int_equal(aredis_cache_allowed(k, "HGETALL"), 1);
    assert_int_equal(aredis_cache_allowed(k, "geohash"), 1);
    assert_int_equal(aredis_cache_allowed(k, "set"), 0);
    assert_int_equal(aredis_cache_allowed(k, "MGET"), 0);
    assert_int_equal(aredis_cache_allowed(k, "TTL"), 0);
    assert_int_equal(aredis_cache_allowed(k, "nosuchcmd"), 0);
    assert_int_equal(aredis_cache_allow(k, "SET"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cache_allow(k, "BLPOP"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cache_allow(k, "nosuchcmd"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cache_allow(k, "KEYS"), AREDIS_ERR_INVALID); /* reads no key */
    assert_int_equal(aredis_cache_allow(k, "PING"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cache_allow(k, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cache_deny(k, "nosuchcmd"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cache_allowed(k, "SET"), 0);
    assert_int_equal(aredis_cache_allowed(k, "BLPOP"), 0);
    assert_int_equal(aredis_cache_allow(k, "mget"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cache_allowed(k, "MGET"), 1);

    aredis_client *c = cached_client(k);
    /* Two keys: never cached, not counted. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(int_of(c, "EXISTS al:a al:b"), 2);
        aredis_future *f = ts_cmd(c, "MGET al:a al:b");
        assert_int_equal(aredis_future_reply(f)->elements, 2);
        aredis_future_release(f);
    }
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.hits, 0);
    /* One key: cached. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(int_of(c, "EXISTS al:a"), 1);
        aredis_future *f = ts_cmd(c, "MGET al:a");
        assert_int_equal(aredis_future_reply(f)->elements, 1);
        aredis_future_release(f);
    }
    s = cstats(k);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.hits, 2);

    /* Denied: dropped (the whole cache), and GETs go to the server uncounted. */
    expect_str(c, "1", "GET al:a");
    uint64_t flushes = cstats(k).flushes;
    assert_int_equal(aredis_cache_deny(k, "GET"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cache_allowed(k, "get"), 0);
    s = cstats(k);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.flushes, flushes + 1);
    assert_int_equal(log.nulls, 1);
    uint64_t misses = s.misses, hits = s.hits;
    long long calls = get_calls(w);
    for (int i = 0; i < 3; i++)
        expect_str(c, "1", "GET al:a");
    s = cstats(k);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.misses, misses);
    assert_int_equal(s.hits, hits);
    assert_int_equal(get_calls(w), calls + 3);
    /* Denying what is not allowed changes nothing. */
    assert_int_equal(aredis_cache_deny(k, "GET"), AREDIS_ERR_OK);
    assert_int_equal(cstats(k).flushes, flushes + 1);
    /* Allowed again. */
    assert_int_equal(aredis_cache_allow(k, "get"), AREDIS_ERR_OK);
    expect_str(c, "1", "GET al:a");
    expect_str(c, "1", "GET al:a");
    assert_int_equal(cstats(k).hits, hits + 1);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- Modes --------------------------------------------------------------------------- */

static void test_bcast_mode(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "MSET user:1 a other:1 b");
    static const char *const pre[] = {"user:"};
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.mode = AREDIS_CACHE_BCAST;
    co.prefixes = pre;
    co.nprefixes = 1;
    inv_log log = {0};
    watch(&log, "user:1", 6);
    aredis_cache *k = cache_with(&co, &log);
    aredis_client *c = cached_client(k);
    assert_true(tracking_flag(c, "on"));
    assert_true(tracking_flag(c, "bcast"));
    assert_true(tracking_prefix(c, "user:"));

    expect_str(c, "a", "GET user:1");
    expect_str(c, "a", "GET user:1");
    expect_str(c, "b", "GET other:1");
    expect_str(c, "b", "GET other:1");
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.entries, 1);

    ts_cmd_ok(w, "SET user:1 a2");
    assert_true(ts_wait_count(g_loop, &log.watched, 1, 10000));
    assert_int_equal(cstats(k).entries, 0);
    expect_str(c, "a2", "GET user:1");
    /* A key under the prefix never read: announced all the same. */
    uint64_t msgs = cstats(k).invalidation_messages;
    ts_cmd_ok(w, "SET user:never x");
    assert_true(wait_stat(k, ST_INVAL_MSGS, msgs + 1));
    /* Another key's write is not announced; other:1 is still read fresh. */
    ts_cmd_ok(w, "SET other:1 b2");
    expect_str(c, "b2", "GET other:1");
    expect_str(c, "a2", "GET user:1");
    assert_int_equal(cstats(k).hits, 2);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

static void test_optin_mode(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET op:k a");
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.mode = AREDIS_CACHE_OPTIN;
    inv_log log = {0};
    watch(&log, "op:k", 4);
    aredis_cache *k = cache_with(&co, &log);
    aredis_client *c = cached_client(k);
    assert_true(tracking_flag(c, "on"));
    assert_true(tracking_flag(c, "optin"));

    expect_str(c, "a", "GET op:k");
    expect_str(c, "a", "GET op:k");
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.stores, 1);
    ts_cmd_ok(w, "SET op:k b");
    if (!ts_wait_count(g_loop, &log.watched, 1, 10000))
        fail_msg("OPTIN: no invalidation of a key read through the cache");
    assert_int_equal(cstats(k).entries, 0);
    expect_str(c, "b", "GET op:k");
    expect_str(c, "b", "GET op:k");
    s = cstats(k);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 2);
    /* A read inside OPTIN with a reply the callback sees as usual (hash). */
    assert_int_equal(int_of(w, "HSET op:h f v"), 1);
    aredis_future *f = ts_cmd(c, "HGET op:h f");
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "v");
    aredis_future_release(f);
    f = ts_cmd(c, "HGET op:h f");
    assert_string_equal(aredis_future_reply(f)->str, "v");
    aredis_future_release(f);
    assert_int_equal(cstats(k).hits, 3);
    /* An error reply: an error for the callback, not stored. */
    s = cstats(k);
    for (int i = 0; i < 2; i++) {
        ts_result r;
        memset(&r, 0, sizeof r);
        assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET op:h"), AREDIS_ERR_OK);
        assert_true(ts_wait(g_loop, &r.done, 5000));
        assert_int_equal(r.code, AREDIS_ERR_SERVER);
        assert_string_equal(r.prefix, "WRONGTYPE");
        assert_int_equal(r.type, AREDIS_REPLY_ERROR);
    }
    aredis_cache_stats s2 = cstats(k);
    assert_int_equal(s2.misses, s.misses + 2);
    assert_int_equal(s2.stores, s.stores);
    assert_int_equal(s2.not_stored, s.not_stored + 2);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- Keys: prefix, databases, binary ------------------------------------------------- */

static void test_key_prefix(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET app:k one");
    ts_cmd_ok(w, "SET k elsewhere");
    inv_log log = {0};
    watch(&log, "app:k", 5);
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    aredis_options o = ts_options(g_srv);
    o.cache = k;
    o.prefix = "app:";
    aredis_client *c = ts_connect(g_loop, &o);

    expect_str(c, "one", "GET k");
    expect_str(c, "one", "GET k");
    assert_int_equal(cstats(k).hits, 1);
    ts_cmd_ok(w, "SET app:k two");
    assert_true(ts_wait_count(g_loop, &log.watched, 1, 10000));
    expect_str(c, "two", "GET k");
    /* A write of the unprefixed name is another key. */
    ts_cmd_ok(w, "SET k other");
    settle(w);
    expect_str(c, "two", "GET k");
    /* Own write. */
    ts_cmd_ok(c, "SET k three");
    expect_str(c, "three", "GET k");
    expect_str(w, "three", "GET app:k");

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* BCAST prefixes behind the client's key prefix. */
static void test_key_prefix_bcast(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "MSET app:user:1 a app:other:1 b");
    static const char *const pre[] = {"user:"};
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.mode = AREDIS_CACHE_BCAST;
    co.prefixes = pre;
    co.nprefixes = 1;
    inv_log log = {0};
    watch(&log, "app:user:1", 10);
    aredis_cache *k = cache_with(&co, &log);
    aredis_options o = ts_options(g_srv);
    o.cache = k;
    o.prefix = "app:";
    aredis_client *c = ts_connect(g_loop, &o);
    assert_true(tracking_prefix(c, "app:user:"));

    expect_str(c, "a", "GET user:1");
    expect_str(c, "a", "GET user:1");
    expect_str(c, "b", "GET other:1");
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.entries, 1);
    ts_cmd_ok(w, "SET app:user:1 a2");
    assert_true(ts_wait_count(g_loop, &log.watched, 1, 10000));
    expect_str(c, "a2", "GET user:1");

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

static void test_binary_keys(void **state) {
    (void)state;
    static const char k1[] = {'b', 'i', '\0', 'a'};
    static const char k2[] = {'b', 'i', '\0', 'b'};
    static const char v1[] = {'x', '\0', '\r', '\n', 'y'};
    static const char v2[] = {'z', '\0'};
    static const char v3[] = {'n', '\0', 'e', 'w'};
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET %b %b", k1, sizeof k1, v1, sizeof v1);
    ts_cmd_ok(w, "SET %b %b", k2, sizeof k2, v2, sizeof v2);
    inv_log log = {0};
    watch(&log, k1, sizeof k1);
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    aredis_client *c = cached_client(k);

    for (int i = 0; i < 2; i++) {
        ts_cmd_bytes(c, v1, sizeof v1, "GET %b", k1, sizeof k1);
        ts_cmd_bytes(c, v2, sizeof v2, "GET %b", k2, sizeof k2);
    }
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.hits, 2);
    ts_cmd_ok(w, "SET %b %b", k1, sizeof k1, v3, sizeof v3);
    assert_true(ts_wait_count(g_loop, &log.watched, 1, 10000));
    assert_int_equal(cstats(k).entries, 1);
    ts_cmd_bytes(c, v3, sizeof v3, "GET %b", k1, sizeof k1);
    ts_cmd_bytes(c, v2, sizeof v2, "GET %b", k2, sizeof k2);
    assert_int_equal(cstats(k).hits, 3);
    /* Own write of a binary key. */
    ts_cmd_ok(c, "SET %b %b", k2, sizeof k2, v1, sizeof v1);
    ts_cmd_bytes(c, v1, sizeof v1, "GET %b", k2, sizeof k2);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_hit_miss_counts),
        TS_LOOP_CASE(test_error_reply_not_stored),
        TS_LOOP_CASE(test_other_client_set_invalidates),
        TS_LOOP_CASE(test_flush_from_other_client),
        TS_LOOP_CASE(test_allow_list),
        TS_LOOP_CASE(test_bcast_mode),
        TS_LOOP_CASE(test_optin_mode),
        TS_LOOP_CASE(test_key_prefix),
        TS_LOOP_CASE(test_key_prefix_bcast),
        TS_LOOP_CASE(test_binary_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
