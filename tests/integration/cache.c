/*
 * Client-side caching (aredis/cache.h) against a real server: exact hit
 * and miss counts, a hit sends nothing (client counters, the server's
 * commandstats); another client's write invalidates (the next read after
 * the invalidation arrived is fresh), a server-side expiry too; own writes
 * are seen at once (plain commands, DEL, HSET under HGETALL, a pipeline,
 * a pool's other connection, EXEC and pipelines seen from another
 * connection); FLUSHDB/FLUSHALL from elsewhere and a server restart empty
 * the cache; the in-flight race (10,000 writes against reads always in
 * flight: no read issued after an invalidation returns a value older than
 * what was acknowledged when it arrived); the byte and entry budgets, the
 * TTL; a hit's callback on a later loop turn, exactly once, cancelled with
 * its future or its client; MULTI not served; the allow-list; CLIENT
 * TRACKING refused; RESP2 and a second loop refused; BCAST and OPTIN
 * modes; a key prefix; databases kept apart (also after a refused or
 * discarded SELECT, a SELECT that timed out, one issued while reconnecting
 * across a failed attempt); binary keys; the cache freed right after use; a
 * server refusing HELLO 3 or CLIENT TRACKING (fake server). And what a
 * review found: a write no command table knows (a renamed SET) empties the
 * cache; close() from on_invalidate during a lost connection stays closed;
 * a hit's future cancelled from a callback run by close(); CLIENT TRACKING
 * in a pipeline or a transaction and HELLO 2 refused; a new client in a
 * forked child not served the parent's entries.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aredis/cache.h"
#include "aredis/pipeline.h"
#include "aredis/pool.h"
#include "aredis/tx.h"
#include "fake_server.h"
#include "proxy.h"
#include "ts.h"

static ts_server *g_srv;
/* The running case's loop (TS_LOOP_CASE). */
#define g_loop ts_case_loop()

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start_default();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ts_server_stop(g_srv);
    return 0;
}

/* ---- Helpers ------------------------------------------------------------------ */

/* What on_invalidate saw. */
typedef struct inv_log {
    size_t calls;   /* every call */
    size_t nulls;   /* key NULL: the whole cache */
    size_t watched; /* key equal to `watch` */
    const char *watch;
    size_t watch_len;
    int bad_null; /* key NULL with a length */
} inv_log;

static void on_inv(aredis_cache *k, const char *key, size_t len, void *data) {
    (void)k;
    inv_log *l = data;
    l->calls++;
    if (!key) {
        l->nulls++;
        if (len) l->bad_null = 1;
        return;
    }
    if (l->watch && len == l->watch_len && memcmp(key, l->watch, len) == 0) l->watched++;
}

/* Count the invalidations of this key from now on. */
static void watch(inv_log *l, const char *key, size_t len) {
    l->watch = key;
    l->watch_len = len;
    l->watched = 0;
}

static aredis_cache *cache_with(aredis_cache_options *co, inv_log *log) {
    if (log) {
        co->on_invalidate = on_inv;
        co->data = log;
    }
    aredis_cache *k = aredis_cache_new(co);
    if (!k) fail_msg("aredis_cache_new: %s", aredis_call_error()->detail);
    return k;
}

static aredis_cache *cache_new(size_t max_bytes, size_t max_entries, inv_log *log) {
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.max_bytes = max_bytes;
    co.max_entries = max_entries;
    return cache_with(&co, log);
}

static aredis_client *cached_on(const ts_server *s, aredis_cache *k) {
    aredis_options o = ts_options(s);
    o.cache = k;
    return ts_connect(g_loop, &o);
}

static aredis_client *cached_client(aredis_cache *k) { return cached_on(g_srv, k); }

static aredis_client *plain_client(void) { return ts_client(g_loop, g_srv); }

static aredis_cache_stats cstats(const aredis_cache *k) {
    aredis_cache_stats s;
    aredis_cache_get_stats(k, &s);
    return s;
}

static aredis_client_stats clstats(const aredis_client *c) {
    aredis_client_stats s;
    aredis_client_get_stats(c, &s);
    return s;
}

/* The server answers everything: a FLUSHALL through a client without a
 * cache, before any cached client of the case exists. */
static void fresh(aredis_client *w) { ts_cmd_ok(w, "FLUSHALL"); }

/* Check a finished future: a string equal to want, or nil when want is NULL. */
static void check_str(aredis_future *f, const char *want, const char *what) {
    aredis_err e = aredis_await(f);
    if (e != AREDIS_ERR_OK)
        fail_msg("%s: %s: %s", what, aredis_err_name(e), aredis_future_error(f)->detail);
    aredis_reply *r = aredis_future_reply(f);
    assert_non_null(r);
    if (!want) {
        if (r->type != AREDIS_REPLY_NIL)
            fail_msg("%s: want nil, got type %d \"%s\"", what, (int)r->type, r->str ? r->str : "");
        return;
    }
    if (r->type != AREDIS_REPLY_STRING)
        fail_msg("%s: want \"%s\", got type %d \"%s\"", what, want, (int)r->type,
                 r->str ? r->str : "");
    if (r->len != strlen(want) || memcmp(r->str, want, r->len) != 0)
        fail_msg("%s: want \"%s\", got \"%.*s\"", what, want, (int)r->len, r->str);
}

/* Run a command on c and check it returns the string want (nil: NULL). */
static void expect_str(aredis_client *c, const char *want, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(f);
    check_str(f, want, fmt);
    aredis_future_release(f);
}

/* Run a command and return its integer reply. */
static long long int_of(aredis_client *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(f);
    aredis_err e = aredis_await(f);
    if (e != AREDIS_ERR_OK) fail_msg("%s: %s", fmt, aredis_future_error(f)->detail);
    aredis_reply *r = aredis_future_reply(f);
    if (r->type != AREDIS_REPLY_INTEGER) fail_msg("%s: type %d", fmt, (int)r->type);
    long long v = r->integer;
    aredis_future_release(f);
    return v;
}

/* The server's count of GET calls (INFO commandstats). */
static long long get_calls(aredis_client *w) {
    aredis_future *f = ts_cmd(w, "INFO commandstats");
    aredis_reply *r = aredis_future_reply(f);
    assert_non_null(r);
    assert_non_null(r->str);
    const char *p = strstr(r->str, "cmdstat_get:calls=");
    long long n = p ? strtoll(p + strlen("cmdstat_get:calls="), NULL, 10) : 0;
    aredis_future_release(f);
    return n;
}

/* Everything c owes has arrived once its PING is answered. */
static void settle(aredis_client *c) {
    aredis_future *f = ts_cmd(c, "PING");
    assert_int_equal(aredis_future_error(f) ? aredis_future_error(f)->code : AREDIS_ERR_OK,
                     AREDIS_ERR_OK);
    aredis_future_release(f);
}

/* Waiting on the cache's counters. */
typedef enum { ST_INVAL_MSGS, ST_FLUSHES, ST_EXPIRATIONS, ST_ENTRIES_AT_MOST } stat_kind;

typedef struct stat_cond {
    const aredis_cache *k;
    stat_kind kind;
    uint64_t target;
} stat_cond;

static int stat_reached(const void *arg) {
    const stat_cond *s = arg;
    aredis_cache_stats st = cstats(s->k);
    switch (s->kind) {
    case ST_INVAL_MSGS:
        return st.invalidation_messages >= s->target;
    case ST_FLUSHES:
        return st.flushes >= s->target;
    case ST_EXPIRATIONS:
        return st.expirations >= s->target;
    case ST_ENTRIES_AT_MOST:
        return st.entries <= s->target;
    }
    return 0;
}

static int wait_stat(const aredis_cache *k, stat_kind kind, uint64_t target) {
    stat_cond s = {k, kind, target};
    return ts_wait_until(g_loop, stat_reached, &s, 10000);
}

/* The "flags" of CLIENT TRACKINGINFO on c contain `flag`: 1, else 0. */
static int tracking_flag(aredis_client *c, const char *flag) {
    aredis_future *f = ts_cmd(c, "CLIENT TRACKINGINFO");
    aredis_reply *r = aredis_future_reply(f);
    if (aredis_future_error(f)) fail_msg("CLIENT TRACKINGINFO: %s", aredis_future_error(f)->detail);
    assert_non_null(r);
    int found = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) { /* a map: key, value, ... */
        const aredis_reply *key = r->element[i], *val = r->element[i + 1];
        if (!key->str || strcmp(key->str, "flags") != 0) continue;
        for (size_t j = 0; j < val->elements; j++)
            if (val->element[j]->str && strcmp(val->element[j]->str, flag) == 0) found = 1;
    }
    aredis_future_release(f);
    return found;
}

/* The "prefixes" of CLIENT TRACKINGINFO on c contain `prefix`. */
static int tracking_prefix(aredis_client *c, const char *prefix) {
    aredis_future *f = ts_cmd(c, "CLIENT TRACKINGINFO");
    aredis_reply *r = aredis_future_reply(f);
    assert_non_null(r);
    int found = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const aredis_reply *key = r->element[i], *val = r->element[i + 1];
        if (!key->str || strcmp(key->str, "prefixes") != 0) continue;
        for (size_t j = 0; j < val->elements; j++)
            if (val->element[j]->str && strcmp(val->element[j]->str, prefix) == 0) found = 1;
    }
    aredis_future_release(f);
    return found;
}

static void count_push(aredis_client *c, aredis_reply *push, void *data) {
    (void)c;
    (void)push;
    (*(int *)data)++;
}

static void count_then(aredis_future *f, void *data) {
    (void)f;
    (*(int *)data)++;
}

/* ---- Hits and misses --------------------------------------------------------- */

/* N keys read once: N misses; then M more times each: N*M hits, nothing sent. */
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

/* ---- Own writes ---------------------------------------------------------------- */

static void test_own_writes(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET ow:k old");
    assert_int_equal(int_of(w, "HSET ow:h f 1"), 1);
    ts_cmd_ok(w, "SET ow:p p0");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);

    expect_str(c, "old", "GET ow:k");
    expect_str(c, "old", "GET ow:k");
    assert_int_equal(cstats(k).hits, 1);

    /* SET then GET issued back to back: the GET sees the SET. */
    aredis_future *fset = aredis_future_command(c, "SET ow:k new1");
    aredis_future *fget = aredis_future_command(c, "GET ow:k");
    check_str(fget, "new1", "GET ow:k right behind SET");
    assert_int_equal(aredis_await(fset), AREDIS_ERR_OK);
    aredis_future_release(fset);
    aredis_future_release(fget);
    /* And once it is answered. */
    expect_str(c, "new1", "GET ow:k");
    ts_cmd_ok(c, "SET ow:k new2");
    expect_str(c, "new2", "GET ow:k");
    expect_str(c, "new2", "GET ow:k");

    /* A script's declared keys. */
    aredis_future *fs =
        ts_cmd(c, "EVAL %s 1 ow:k new3", "return redis.call('SET', KEYS[1], ARGV[1])");
    assert_null(aredis_future_error(fs));
    aredis_future_release(fs);
    expect_str(c, "new3", "GET ow:k");
    /* COPY's destination. */
    expect_str(c, NULL, "GET ow:dst");
    expect_str(c, NULL, "GET ow:dst");
    assert_int_equal(int_of(c, "COPY ow:k ow:dst"), 1);
    expect_str(c, "new3", "GET ow:dst");

    /* DEL */
    assert_int_equal(int_of(c, "DEL ow:k"), 1);
    expect_str(c, NULL, "GET ow:k");

    /* HSET under a cached HGETALL. */
    for (int i = 0; i < 2; i++) {
        aredis_future *f = ts_cmd(c, "HGETALL ow:h");
        assert_null(aredis_future_error(f));
        assert_int_equal(aredis_future_reply(f)->elements, 2);
        aredis_future_release(f);
    }
    uint64_t hits = cstats(k).hits;
    assert_int_equal(int_of(c, "HSET ow:h g 2"), 1);
    aredis_future *fh = ts_cmd(c, "HGETALL ow:h");
    assert_null(aredis_future_error(fh));
    assert_int_equal(aredis_future_reply(fh)->elements, 4);
    aredis_future_release(fh);
    assert_int_equal(cstats(k).hits, hits);

    /* A write inside a pipeline drops the key when the pipeline is issued. */
    expect_str(c, "p0", "GET ow:p");
    expect_str(c, "p0", "GET ow:p");
    size_t entries = cstats(k).entries;
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_non_null(p);
    assert_int_equal(aredis_pipeline_command(p, "SET ow:p p1"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "HDEL ow:h g"), AREDIS_ERR_OK);
    aredis_future *fp = aredis_pipeline_exec_future(p);
    assert_non_null(fp);
    assert_true(cstats(k).entries < entries); /* dropped at once */
    aredis_future *fg = aredis_future_command(c, "GET ow:p");
    check_str(fg, "p1", "GET ow:p right behind the pipeline");
    assert_int_equal(aredis_await(fp), AREDIS_ERR_OK);
    aredis_future_release(fp);
    aredis_future_release(fg);
    fh = ts_cmd(c, "HGETALL ow:h");
    assert_int_equal(aredis_future_reply(fh)->elements, 2);
    aredis_future_release(fh);
    aredis_pipeline_free(p);

    /* A write whose keys are not known (FLUSHDB): everything goes at once. */
    expect_str(c, "p1", "GET ow:p");
    assert_true(cstats(k).entries > 0);
    uint64_t flushes = cstats(k).flushes;
    aredis_future *ff = aredis_future_command(c, "FLUSHDB");
    assert_int_equal(cstats(k).entries, 0);
    assert_int_equal(cstats(k).flushes, flushes + 1);
    expect_str(c, NULL, "GET ow:p");
    assert_int_equal(aredis_await(ff), AREDIS_ERR_OK);
    aredis_future_release(ff);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* A pool of two connections sharing one cache: written on one, read on
 * the other at once. */
static void test_own_write_pool(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET pl:k old");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    po.client.cache = k;
    po.max_connections = 2;
    aredis_pool *pool = aredis_pool_new(g_loop, &po);
    if (!pool) fail_msg("aredis_pool_new: %s", aredis_call_error()->detail);

    ts_acquired a = {0}, b = {0};
    assert_int_equal(aredis_pool_acquire(pool, ts_on_acquired, &a), AREDIS_ERR_OK);
    assert_int_equal(aredis_pool_acquire(pool, ts_on_acquired, &b), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    assert_true(ts_wait(g_loop, &b.calls, 10000));
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_int_equal(b.code, AREDIS_ERR_OK);
    assert_ptr_not_equal(a.c, b.c);
    assert_true(ts_client_id(a.c) != ts_client_id(b.c));

    expect_str(b.c, "old", "GET pl:k");
    expect_str(b.c, "old", "GET pl:k");
    assert_int_equal(cstats(k).hits, 1);
    ts_cmd_ok(a.c, "SET pl:k new");
    /* No waiting for b's invalidation: the write's reply dropped the key. */
    expect_str(b.c, "new", "GET pl:k"); /* other connection */
    expect_str(a.c, "new", "GET pl:k"); /* same connection */
    assert_int_equal(int_of(a.c, "DEL pl:k"), 1);
    expect_str(b.c, NULL, "GET pl:k"); /* after DEL (other connection) */

    assert_int_equal(aredis_pool_release(pool, a.c), AREDIS_ERR_OK);
    assert_int_equal(aredis_pool_release(pool, b.c), AREDIS_ERR_OK);
    aredis_pool_free(pool);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/*
 * Two connections sharing a cache, the second behind a proxy that delays
 * what it gets (its invalidations). A plain SET on the first waits on the
 * server behind a BLPOP of the same connection while the second reads (and
 * stores) the old value; once the SET is answered, a read must see the new
 * value: the write's reply dropped the key again.
 */
static void test_own_write_other_connection(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET oo:k old");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    ts_proxy *px = ts_proxy_start(ts_server_host(g_srv), ts_server_port(g_srv));
    aredis_client *a = cached_client(k);
    aredis_options ob = ts_options(g_srv);
    ob.port = ts_proxy_port(px);
    ob.cache = k;
    aredis_client *b = ts_connect(g_loop, &ob);

    aredis_future *fb = aredis_future_command(a, "BLPOP oo:q 10");
    aredis_future *fs = aredis_future_command(a, "SET oo:k new");
    assert_non_null(fb);
    assert_non_null(fs);
    expect_str(b, "old", "GET oo:k"); /* on b, before the SET ran */
    assert_int_equal(cstats(k).stores, 1);
    assert_int_equal(cstats(k).entries, 1);
    ts_proxy_delay(px, 1000); /* b's invalidation will come late */
    assert_int_equal(int_of(w, "LPUSH oo:q x"), 1);
    assert_int_equal(aredis_await(fb), AREDIS_ERR_OK);
    assert_int_equal(aredis_await(fs), AREDIS_ERR_OK);
    aredis_future_release(fb);
    aredis_future_release(fs);
    assert_int_equal(cstats(k).entries, 0);
    expect_str(a, "new", "GET oo:k"); /* on a after the SET was answered */

    aredis_client_free(a);
    aredis_client_free(b);
    ts_proxy_stop(px);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/*
 * Two connections sharing a cache, the second behind a proxy that delays
 * what it gets (its invalidations). A MULTI ... EXEC on the first: once
 * EXEC is answered the write is done, and a read issued after it must not
 * see the old value the second connection read between the SET's QUEUED
 * and the EXEC (cache.h: "a read issued after it — on any connection of
 * the pool — never sees the old value").
 */
static void test_own_write_exec_other_connection(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET ex:k old");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    ts_proxy *px = ts_proxy_start(ts_server_host(g_srv), ts_server_port(g_srv));
    aredis_client *a = cached_client(k);
    aredis_options ob = ts_options(g_srv);
    ob.port = ts_proxy_port(px);
    ob.cache = k;
    aredis_client *b = ts_connect(g_loop, &ob);

    ts_cmd_ok(a, "MULTI");
    aredis_future *fq = ts_cmd(a, "SET ex:k new");
    assert_non_null(aredis_future_reply(fq));
    assert_string_equal(aredis_future_reply(fq)->str, "QUEUED");
    aredis_future_release(fq);
    /* Read on b between QUEUED and EXEC: the old value, stored. */
    expect_str(b, "old", "GET ex:k"); /* on b */
    assert_int_equal(cstats(k).stores, 1);
    ts_proxy_delay(px, 1000); /* b's invalidation will come late */
    aredis_future *fe = ts_cmd(a, "EXEC");
    assert_null(aredis_future_error(fe));
    assert_int_equal(aredis_future_reply(fe)->elements, 1);
    aredis_future_release(fe);
    expect_str(w, "new", "GET ex:k"); /* no cache */
    expect_str(a, "new", "GET ex:k"); /* on a after EXEC was answered */

    aredis_client_free(a);
    aredis_client_free(b);
    ts_proxy_stop(px);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/*
 * The same with a pipeline: its SET waits behind a BLPOP on the server
 * while the other connection reads (and stores) the old value; once the
 * pipeline is answered, a read must see the new value.
 */
static void test_own_write_pipeline_other_connection(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET pp:k old");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    ts_proxy *px = ts_proxy_start(ts_server_host(g_srv), ts_server_port(g_srv));
    aredis_client *a = cached_client(k);
    aredis_options ob = ts_options(g_srv);
    ob.port = ts_proxy_port(px);
    ob.cache = k;
    aredis_client *b = ts_connect(g_loop, &ob);

    aredis_pipeline *p = aredis_pipeline_new(a);
    assert_non_null(p);
    assert_int_equal(aredis_pipeline_command(p, "BLPOP pp:q 10"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "SET pp:k new"), AREDIS_ERR_OK);
    aredis_future *fp = aredis_pipeline_exec_future(p);
    assert_non_null(fp);
    /* The SET cannot run before pp:q gets an element: b reads the old value. */
    expect_str(b, "old", "GET pp:k"); /* on b */
    assert_int_equal(cstats(k).stores, 1);
    ts_proxy_delay(px, 1000); /* b's invalidation will come late */
    assert_int_equal(int_of(w, "LPUSH pp:q x"), 1);
    assert_int_equal(aredis_await(fp), AREDIS_ERR_OK);
    aredis_future_release(fp);
    aredis_pipeline_free(p);
    expect_str(w, "new", "GET pp:k"); /* no cache */
    expect_str(a, "new", "GET pp:k"); /* on a after the pipeline was answered */

    aredis_client_free(a);
    aredis_client_free(b);
    ts_proxy_stop(px);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/*
 * The same with a transaction (aredis/tx.h): its EXEC waits on the server
 * behind a BLPOP of the same connection while the other connection reads.
 */
static void test_own_write_tx_other_connection(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET tx:k old");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    ts_proxy *px = ts_proxy_start(ts_server_host(g_srv), ts_server_port(g_srv));
    aredis_client *a = cached_client(k);
    aredis_options ob = ts_options(g_srv);
    ob.port = ts_proxy_port(px);
    ob.cache = k;
    aredis_client *b = ts_connect(g_loop, &ob);

    aredis_future *fb = aredis_future_command(a, "BLPOP tx:q 10");
    assert_non_null(fb);
    aredis_tx *tx = aredis_tx_new(a);
    assert_non_null(tx);
    assert_int_equal(aredis_tx_queue(tx, "SET tx:k new"), AREDIS_ERR_OK);
    aredis_future *fe = aredis_tx_exec_future(tx);
    assert_non_null(fe);
    expect_str(b, "old", "GET tx:k"); /* on b, before the transaction ran */
    assert_int_equal(cstats(k).stores, 1);
    ts_proxy_delay(px, 1000); /* b's invalidation will come late */
    assert_int_equal(int_of(w, "LPUSH tx:q x"), 1);
    assert_int_equal(aredis_await(fb), AREDIS_ERR_OK);
    assert_int_equal(aredis_await(fe), AREDIS_ERR_OK);
    aredis_future_release(fb);
    aredis_future_release(fe);
    aredis_tx_free(tx);
    expect_str(w, "new", "GET tx:k"); /* no cache */
    expect_str(a, "new", "GET tx:k"); /* on a after EXEC was answered */

    aredis_client_free(a);
    aredis_client_free(b);
    ts_proxy_stop(px);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/*
 * A write no command table knows (a module's, one newer than the tables, a
 * renamed one: here SET renamed MYSET) may change any key: the cache
 * empties when it is issued and again when it is answered, so a read issued
 * from its reply's callback — before the server's invalidation has come —
 * is not served the value from before it. The same through a pipeline.
 */
typedef struct write_then_get {
    ts_result write; /* the write's own reply */
    ts_result get;   /* the GET issued from its callback */
    int get_issued;  /* aredis_command's return for that GET */
} write_then_get;

static void wtg_on_write(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    write_then_get *x = data;
    ts_on_reply(c, r, err, &x->write);
    x->get_issued = (int)aredis_command(c, ts_on_reply, &x->get, "GET uw:k");
}

static void test_unknown_write_empties(void **state) {
    (void)state;
    static const char *const conf[] = {"rename-command SET MYSET", NULL};
    ts_server *srv = ts_server_start(conf, 0);
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_on(srv, k);
    ts_cmd_ok(c, "MYSET uw:k v1");
    expect_str(c, "v1", "GET uw:k");
    expect_str(c, "v1", "GET uw:k");
    assert_int_equal(cstats(k).hits, 1);
    assert_int_equal(cstats(k).entries, 1);

    write_then_get x;
    memset(&x, 0, sizeof x);
    assert_int_equal(aredis_command(c, wtg_on_write, &x, "MYSET uw:k v2"), AREDIS_ERR_OK);
    size_t entries_at_issue = cstats(k).entries;
    assert_true(ts_wait(g_loop, &x.get.done, 5000));
    assert_int_equal(x.write.code, AREDIS_ERR_OK);
    assert_int_equal(x.get_issued, AREDIS_ERR_OK);
    assert_int_equal(x.get.code, AREDIS_ERR_OK);
    assert_int_equal(x.get.type, AREDIS_REPLY_STRING);
    if (strcmp(x.get.text, "v2") != 0)
        fail_msg("GET issued from MYSET k v2's callback returned \"%s\", want \"v2\"", x.get.text);
    assert_int_equal(entries_at_issue, 0); /* emptied when issued */
    expect_str(c, "v2", "GET uw:k");

    /* Through a pipeline: the same when its reply comes. */
    expect_str(c, "v2", "GET uw:k");
    assert_true(cstats(k).entries > 0);
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_non_null(p);
    assert_int_equal(aredis_pipeline_command(p, "MYSET uw:k v3"), AREDIS_ERR_OK);
    memset(&x, 0, sizeof x);
    assert_int_equal(aredis_pipeline_exec(p, wtg_on_write, &x), AREDIS_ERR_OK);
    entries_at_issue = cstats(k).entries;
    assert_true(ts_wait(g_loop, &x.get.done, 5000));
    assert_int_equal(x.write.code, AREDIS_ERR_OK);
    assert_int_equal(x.get.code, AREDIS_ERR_OK);
    if (strcmp(x.get.text, "v3") != 0)
        fail_msg("GET issued from the pipeline's callback returned \"%s\", want \"v3\"",
                 x.get.text);
    assert_int_equal(entries_at_issue, 0);
    aredis_pipeline_free(p);

    aredis_client_free(c);
    aredis_cache_free(k);
    ts_server_stop(srv);
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

/* ---- The in-flight race ------------------------------------------------------ */

/*
 * A writer (no cache) sets race:k to 1, 2, ... RACE_ROUNDS, a few SETs in
 * flight; `acked` is the highest value acknowledged. Readers with the
 * cache keep GETs of race:k in flight all the time, a few more issued on
 * every loop turn (so reads sent in different writes to the socket
 * straddle the server's SETs). When an invalidation of race:k arrives, the
 * test notes `acked` as the floor: every GET issued after that must return
 * a value >= that floor — a miss is sent after the SET that produced the
 * floor was acknowledged, and a hit must come from a read issued after the
 * invalidation (cache.h, "the in-flight race").
 */
#define RACE_ROUNDS 10000
enum {
    RACE_WRITES_IN_FLIGHT = 4,
    RACE_READERS = 3,          /* cached clients sharing the cache */
    RACE_READS_IN_FLIGHT = 32, /* per reader */
    RACE_READS_PER_TURN = 2    /* per reader and loop turn */
};

typedef struct race {
    aredis_client *w;
    aredis_client *r[RACE_READERS];
    int in_flight[RACE_READERS];
    long long issued; /* SETs sent: values 1..issued */
    long long acked;  /* the highest value acknowledged */
    long long floor;  /* acked when the latest invalidation of race:k arrived */
    int reads_in_flight;
    int stop;
    uint64_t reads, checked, violations, errors, invals;
    long long bad_got, bad_floor;
} race;

typedef struct race_get {
    race *x;
    int reader;
    long long floor; /* x->floor when this GET was issued */
} race_get;

static void race_on_set(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

static void race_issue_set(race *x) {
    long long v = ++x->issued;
    if (aredis_command(x->w, race_on_set, x, "SET race:k %lld", v) != AREDIS_ERR_OK) {
        x->errors++;
        x->stop = 1;
    }
}

static void race_on_set(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    race *x = data;
    if (err) x->errors++;
    x->acked++; /* one connection: acknowledged in order */
    if (x->issued < RACE_ROUNDS && !x->stop)
        race_issue_set(x);
    else if (x->acked == x->issued)
        x->stop = 1;
}

static void race_on_get(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

static void race_issue_get(race *x, int reader) {
    race_get *g = malloc(sizeof *g);
    assert_non_null(g);
    g->x = x;
    g->reader = reader;
    g->floor = x->floor;
    x->reads_in_flight++;
    x->in_flight[reader]++;
    if (aredis_command(x->r[reader], race_on_get, g, "GET race:k") != AREDIS_ERR_OK) {
        free(g);
        x->reads_in_flight--;
        x->in_flight[reader]--;
        x->errors++;
        x->stop = 1;
    }
}

static void race_on_get(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    race_get *g = data;
    race *x = g->x;
    x->reads_in_flight--;
    x->in_flight[g->reader]--;
    x->reads++;
    if (err || !r || r->type != AREDIS_REPLY_STRING) {
        x->errors++;
    } else {
        long long v = strtoll(r->str, NULL, 10);
        if (g->floor > 0) x->checked++;
        if (v < g->floor) {
            if (!x->violations) {
                x->bad_got = v;
                x->bad_floor = g->floor;
            }
            x->violations++;
        }
    }
    free(g);
}

static void race_on_inv(aredis_cache *k, const char *key, size_t len, void *data) {
    (void)k;
    race *x = data;
    if (!key || (len == 6 && memcmp(key, "race:k", 6) == 0)) {
        x->floor = x->acked;
        x->invals++;
    }
}

/* Once per loop turn: more reads, up to the limit; over when the writer is
 * done and every read has come back. */
static int race_turn(const void *arg) {
    race *x = (race *)(uintptr_t)arg;
    for (int i = 0; i < RACE_READERS && !x->stop; i++)
        for (int n = 0; n < RACE_READS_PER_TURN && x->in_flight[i] < RACE_READS_IN_FLIGHT; n++)
            race_issue_get(x, i);
    return x->stop && x->reads_in_flight == 0;
}

static void test_race_in_flight(void **state) {
    (void)state;
    race x;
    memset(&x, 0, sizeof x);
    x.w = plain_client();
    fresh(x.w);
    ts_cmd_ok(x.w, "SET race:k 0");
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.on_invalidate = race_on_inv;
    co.data = &x;
    aredis_cache *k = aredis_cache_new(&co);
    assert_non_null(k);
    for (int i = 0; i < RACE_READERS; i++)
        x.r[i] = cached_client(k);

    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < RACE_WRITES_IN_FLIGHT; i++)
        race_issue_set(&x);
    if (!ts_wait_until(g_loop, race_turn, &x, 60000))
        fail_msg("race: not over after 60 s (acked %lld of %d, reads %" PRIu64 ")", x.acked,
                 RACE_ROUNDS, x.reads);
    aredis_cache_stats s = cstats(k);
    ts_log("race: %d writes, %" PRIu64 " reads (%" PRIu64 " checked against a floor), %" PRIu64
           " hits, %" PRIu64 " misses, %" PRIu64 " invalidations, %" PRIu64 " not stored, %" PRIu64
           " ms",
           RACE_ROUNDS, x.reads, x.checked, s.hits, s.misses, x.invals, s.not_stored,
           ts_now_ms() - t0);
    if (x.violations)
        fail_msg("race: %" PRIu64 " stale reads; first: got %lld, but %lld was acknowledged when "
                 "the invalidation before it was issued arrived",
                 x.violations, x.bad_got, x.bad_floor);
    assert_int_equal(x.errors, 0);
    assert_int_equal(x.acked, RACE_ROUNDS);
    assert_true(s.hits > 0);
    assert_true(s.invalidation_messages > 0);
    assert_true(x.invals > 0);
    assert_true(x.checked > 0);
    /* The last value is what a read now returns. */
    char last[32];
    snprintf(last, sizeof last, "%d", RACE_ROUNDS);
    expect_str(x.w, last, "GET race:k");

    for (int i = 0; i < RACE_READERS; i++)
        aredis_client_free(x.r[i]);
    aredis_client_free(x.w);
    aredis_cache_free(k);
}

/* ---- Budgets ------------------------------------------------------------------ */

enum { BUDGET_KEYS = 100000, BUDGET_BATCH = 1000, BUDGET_WINDOW = 256 };

typedef struct budget {
    aredis_client *c;
    aredis_cache *k;
    size_t max;
    size_t next, done, bad, over, checkpoints;
    size_t peak;
} budget;

static budget *g_budget;

static void budget_issue(budget *b);

static void budget_on_get(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    budget *b = g_budget;
    size_t i = (size_t)(uintptr_t)data;
    char want[32];
    int n = snprintf(want, sizeof want, "bv%zu", i);
    if (err || !r || r->type != AREDIS_REPLY_STRING || r->len != (size_t)n ||
        memcmp(r->str, want, (size_t)n) != 0)
        b->bad++;
    b->done++;
    aredis_cache_stats s = cstats(b->k);
    if (s.bytes > b->peak) b->peak = s.bytes;
    if (s.bytes > b->max) b->over++;
    if (b->done % 10000 == 0) {
        b->checkpoints++;
        if (s.bytes > b->max)
            ts_log("checkpoint %zu: %zu bytes cached, over %zu", b->done, s.bytes, b->max);
    }
    budget_issue(b);
}

static void budget_issue(budget *b) {
    if (b->next >= BUDGET_KEYS) return;
    size_t i = b->next++;
    if (aredis_command(b->c, budget_on_get, (void *)(uintptr_t)i, "GET bk:%zu", i) !=
        AREDIS_ERR_OK) {
        b->bad++;
        b->done++;
    }
}

static void on_count(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    size_t *n = data;
    if (err || !r || r->type == AREDIS_REPLY_ERROR) fail_msg("a preload command failed");
    (*n)++;
}

/* MSET bk:<i> bv<i> for i in [0, n), in batches. */
static void preload(aredis_client *w, const char *kfmt, const char *vfmt, size_t n) {
    const char **argv = malloc((1 + 2 * BUDGET_BATCH) * sizeof *argv);
    char(*keys)[32] = malloc(BUDGET_BATCH * sizeof *keys);
    char(*vals)[32] = malloc(BUDGET_BATCH * sizeof *vals);
    assert_non_null(argv);
    assert_non_null(keys);
    assert_non_null(vals);
    size_t sent = 0, done = 0;
    for (size_t at = 0; at < n; at += BUDGET_BATCH) {
        int argc = 0;
        argv[argc++] = "MSET";
        for (size_t i = at; i < n && i < at + BUDGET_BATCH; i++) {
            snprintf(keys[i - at], sizeof keys[0], kfmt, i);
            snprintf(vals[i - at], sizeof vals[0], vfmt, i);
            argv[argc++] = keys[i - at];
            argv[argc++] = vals[i - at];
        }
        assert_int_equal(aredis_command_argv(w, on_count, &done, argc, argv, NULL), AREDIS_ERR_OK);
        sent++;
    }
    assert_true(ts_wait_count(g_loop, &done, sent, 30000));
    free(argv);
    free(keys);
    free(vals);
}

static void test_budget_bytes(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    preload(w, "bk:%zu", "bv%zu", BUDGET_KEYS);
    budget b;
    memset(&b, 0, sizeof b);
    b.max = 256 * 1024;
    b.k = cache_new(b.max, 0, NULL);
    b.c = cached_client(b.k);
    g_budget = &b;
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < BUDGET_WINDOW; i++)
        budget_issue(&b);
    assert_true(ts_wait_count(g_loop, &b.done, BUDGET_KEYS, 60000));
    aredis_cache_stats s = cstats(b.k);
    ts_log("budget: %d reads in %" PRIu64 " ms, %zu entries, %zu bytes (peak %zu), %" PRIu64
           " evictions",
           BUDGET_KEYS, ts_now_ms() - t0, s.entries, s.bytes, b.peak, s.evictions);
    assert_int_equal(b.bad, 0);
    assert_int_equal(b.checkpoints, BUDGET_KEYS / 10000);
    assert_int_equal(b.over, 0);
    assert_true(b.peak <= b.max);
    assert_true(s.bytes <= b.max);
    assert_true(s.bytes > b.max / 2); /* the budget is used, not wasted */
    assert_int_equal(s.misses, BUDGET_KEYS);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.stores, BUDGET_KEYS);
    assert_true(s.entries > 0);
    assert_true(s.entries < BUDGET_KEYS);
    assert_true(s.evictions > 0);
    assert_int_equal(s.evictions, s.stores - s.entries);
    /* The most recent key is still there; the first one was evicted. */
    expect_str(b.c, "bv99999", "GET bk:99999");
    assert_int_equal(cstats(b.k).hits, 1);
    expect_str(b.c, "bv0", "GET bk:0");
    assert_int_equal(cstats(b.k).misses, BUDGET_KEYS + 1);

    /* A reply bigger than a quarter of max_bytes is handed over, not stored. */
    size_t big = b.max / 4 + 1;
    char *v = malloc(big);
    assert_non_null(v);
    memset(v, 'x', big);
    ts_cmd_ok(w, "SET bk:big %b", v, big);
    uint64_t not_stored = cstats(b.k).not_stored;
    for (int i = 0; i < 2; i++)
        ts_cmd_bytes(b.c, v, big, "GET bk:big");
    s = cstats(b.k);
    assert_int_equal(s.not_stored, not_stored + 2);
    assert_true(s.bytes <= b.max);
    free(v);

    g_budget = NULL;
    aredis_client_free(b.c);
    aredis_client_free(w);
    aredis_cache_free(b.k);
}

static void test_budget_entries(void **state) {
    (void)state;
    enum { KEYS = 200, MAX = 50 };
    aredis_client *w = plain_client();
    fresh(w);
    preload(w, "me:%zu", "mv%zu", KEYS);
    aredis_cache *k = cache_new(0, MAX, NULL);
    aredis_client *c = cached_client(k);
    aredis_future *fs[KEYS];
    for (int i = 0; i < KEYS; i++)
        assert_non_null(fs[i] = aredis_future_command(c, "GET me:%d", i));
    char want[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(want, sizeof want, "mv%d", i);
        check_str(fs[i], want, "GET me:<i>");
        aredis_future_release(fs[i]);
    }
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.stores, KEYS);
    assert_int_equal(s.entries, MAX);
    assert_int_equal(s.evictions, KEYS - MAX);
    /* The last MAX read are the ones kept. */
    for (int i = KEYS - MAX; i < KEYS; i++) {
        snprintf(want, sizeof want, "mv%d", i);
        expect_str(c, want, "GET me:%d", i);
    }
    s = cstats(k);
    assert_int_equal(s.hits, MAX);
    assert_int_equal(s.misses, KEYS);
    expect_str(c, "mv0", "GET me:0");
    s = cstats(k);
    assert_int_equal(s.misses, KEYS + 1);
    assert_int_equal(s.entries, MAX);
    assert_int_equal(s.evictions, KEYS - MAX + 1);

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/* ---- TTL ----------------------------------------------------------------------- */

typedef struct ttl_poll {
    aredis_client *c;
    aredis_cache *k;
    ts_result r;
    int in_flight;
    uint64_t hits_before; /* before the latest GET */
    uint64_t misses_before;
    int bad;
    uint64_t gets;
} ttl_poll;

static void ttl_on_get(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    ttl_poll *t = data;
    ts_on_reply(c, r, err, &t->r);
    if (err || !r || r->type != AREDIS_REPLY_STRING || strcmp(r->str, "tv") != 0) t->bad = 1;
    t->in_flight = 0;
}

/* One GET at a time until an entry has expired. */
static int ttl_expired(const void *arg) {
    ttl_poll *t = (ttl_poll *)(uintptr_t)arg;
    if (cstats(t->k).expirations > 0) return !t->in_flight;
    if (!t->in_flight) {
        aredis_cache_stats s = cstats(t->k);
        t->hits_before = s.hits;
        t->misses_before = s.misses;
        t->in_flight = 1;
        t->gets++;
        if (aredis_command(t->c, ttl_on_get, t, "GET tt:k") != AREDIS_ERR_OK) t->bad = 1;
    }
    return 0;
}

static void test_ttl(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET tt:k tv");
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.ttl_ms = 50;
    aredis_cache *k = cache_with(&co, NULL);
    aredis_client *c = cached_client(k);
    expect_str(c, "tv", "GET tt:k");
    assert_int_equal(cstats(k).entries, 1);

    ttl_poll t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.k = k;
    uint64_t t0 = ts_now_ms();
    assert_true(ts_wait_until(g_loop, ttl_expired, &t, 10000));
    uint64_t took = ts_now_ms() - t0;
    assert_false(t.bad);
    aredis_cache_stats s = cstats(k);
    ts_log("ttl: expired after %" PRIu64 " ms, %" PRIu64 " GETs", took, t.gets);
    assert_int_equal(s.expirations, 1);
    /* The GET that found it expired was sent (a miss), and stored anew. */
    assert_int_equal(s.hits, t.hits_before);
    assert_int_equal(s.misses, t.misses_before + 1);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.stores, 2);
    assert_true(took >= 40); /* not before its time (loop clock granularity aside) */

    aredis_client_free(c);
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

/* ---- MULTI, the allow-list, tracking commands ------------------------------------------ */

static void test_multi_not_served(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "MSET mu:k v mu:n w");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    expect_str(c, "v", "GET mu:k");
    aredis_cache_stats s0 = cstats(k);
    assert_int_equal(s0.entries, 1);

    for (int round = 0; round < 2; round++) {
        const char *key = round == 0 ? "mu:k" : "mu:n"; /* cached, then not */
        const char *val = round == 0 ? "v" : "w";
        ts_cmd_ok(c, "MULTI");
        aredis_future *fq = ts_cmd(c, "GET %s", key);
        assert_null(aredis_future_error(fq));
        assert_int_equal(aredis_future_reply(fq)->type, AREDIS_REPLY_STATUS);
        assert_string_equal(aredis_future_reply(fq)->str, "QUEUED");
        aredis_future_release(fq);
        aredis_future *fe = ts_cmd(c, "EXEC");
        assert_null(aredis_future_error(fe));
        aredis_reply *e = aredis_future_reply(fe);
        assert_int_equal(e->elements, 1);
        assert_int_equal(e->element[0]->type, AREDIS_REPLY_STRING);
        assert_string_equal(e->element[0]->str, val);
        aredis_future_release(fe);
        aredis_cache_stats s = cstats(k);
        assert_int_equal(s.hits, s0.hits);
        assert_int_equal(s.stores, s0.stores);
        assert_int_equal(s.entries, s0.entries);
    }
    /* Nothing "QUEUED" was kept: */
    expect_str(c, "v", "GET mu:k"); /* a hit */
    expect_str(c, "w", "GET mu:n"); /* a miss */
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.hits, s0.hits + 1);
    assert_int_equal(s.misses, s0.misses + 1);
    assert_int_equal(s.entries, 2);
    expect_str(c, "w", "GET mu:n");
    assert_int_equal(cstats(k).hits, s0.hits + 2);

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

static void test_tracking_commands_refused(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET tr:k one");
    inv_log log = {0};
    watch(&log, "tr:k", 4);
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    aredis_client *c = cached_client(k);
    assert_true(tracking_flag(c, "on"));
    assert_false(tracking_flag(c, "off"));
    assert_false(tracking_flag(c, "bcast"));
    assert_false(tracking_flag(c, "optin"));

    static const char *const refused[] = {"CLIENT TRACKING OFF", "client tracking on bcast",
                                          "CLIENT CACHING NO", "CLIENT TRACKING ON OPTIN"};
    ts_result r[4];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], refused[i]), AREDIS_ERR_UNSUPPORTED);
        assert_int_equal(aredis_call_error()->code, AREDIS_ERR_UNSUPPORTED);
    }
    aredis_future *f = aredis_future_command(c, "CLIENT TRACKING OFF");
    assert_non_null(f);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_UNSUPPORTED);
    aredis_future_release(f);
    settle(c);
    settle(c);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].calls, 0);
    /* Tracking still on, and still working. */
    assert_true(tracking_flag(c, "on"));
    expect_str(c, "one", "GET tr:k");
    ts_cmd_ok(w, "SET tr:k two");
    assert_true(ts_wait_count(g_loop, &log.watched, 1, 10000));
    expect_str(c, "two", "GET tr:k");

    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

/*
 * What would turn the cache's tracking off behind its back is refused
 * everywhere, not only on the command API: CLIENT TRACKING/CACHING in a
 * pipeline or a transaction (the whole exec refused, nothing sent), HELLO 2
 * (RESP2 has no invalidations in band). HELLO 3 stays allowed. Afterwards
 * tracking is still on and invalidations still arrive.
 */
static void expect_refused(aredis_future *f, const char *what) {
    assert_non_null(f);
    if (!aredis_future_is_done(f)) fail_msg("%s: not refused at once", what);
    const aredis_error *e = aredis_future_error(f);
    if (!e || e->code != AREDIS_ERR_UNSUPPORTED)
        fail_msg("%s: want UNSUPPORTED, got %s", what, e ? aredis_err_name(e->code) : "OK");
    aredis_future_release(f);
}

static void test_tracking_off_refused_in_batches(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET tb:k v1");
    inv_log log = {0};
    watch(&log, "tb:k", 4);
    aredis_cache *k = cache_new(1u << 20, 0, &log);
    aredis_client *c = cached_client(k);
    expect_str(c, "v1", "GET tb:k");
    expect_str(c, "v1", "GET tb:k");
    assert_int_equal(cstats(k).hits, 1);
    uint64_t out = clstats(c).bytes_out;

    static const char *const blinding[] = {"CLIENT TRACKING OFF", "client tracking on bcast",
                                           "CLIENT CACHING NO"};
    for (size_t i = 0; i < sizeof blinding / sizeof blinding[0]; i++) {
        /* A pipeline: refused when queued or when executed. */
        aredis_pipeline *p = aredis_pipeline_new(c);
        assert_non_null(p);
        assert_int_equal(aredis_pipeline_command(p, "SET tb:k in-pipeline"), AREDIS_ERR_OK);
        aredis_err e = aredis_pipeline_command(p, blinding[i]);
        if (e == AREDIS_ERR_OK)
            expect_refused(aredis_pipeline_exec_future(p), blinding[i]);
        else
            assert_int_equal(e, AREDIS_ERR_UNSUPPORTED);
        aredis_pipeline_free(p);
        /* A transaction: the same. */
        aredis_tx *tx = aredis_tx_new(c);
        assert_non_null(tx);
        assert_int_equal(aredis_tx_queue(tx, "SET tb:k in-tx"), AREDIS_ERR_OK);
        e = aredis_tx_queue(tx, blinding[i]);
        if (e == AREDIS_ERR_OK)
            expect_refused(aredis_tx_exec_future(tx), blinding[i]);
        else
            assert_int_equal(e, AREDIS_ERR_UNSUPPORTED);
        aredis_tx_free(tx);
        /* The transaction's own commands. */
        tx = aredis_tx_new(c);
        assert_non_null(tx);
        assert_int_equal(aredis_tx_command(tx, NULL, NULL, blinding[i]), AREDIS_ERR_UNSUPPORTED);
        aredis_tx_free(tx);
    }
    /* HELLO 2 on the command API. */
    ts_result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "HELLO 2"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_UNSUPPORTED);
    expect_refused(aredis_future_command(c, "hello 2"), "HELLO 2 (future)");
    /* Nothing was sent: only the PING of settle(). */
    settle(c);
    assert_int_equal(clstats(c).bytes_out, out + 14);
    assert_int_equal(r.calls, 0);
    expect_str(w, "v1", "GET tb:k"); /* no SET of a refused batch ran */

    /* HELLO 3 is allowed. */
    aredis_future *f = ts_cmd(c, "HELLO 3");
    if (aredis_future_error(f)) fail_msg("HELLO 3: %s", aredis_future_error(f)->detail);
    assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_MAP);
    aredis_future_release(f);
    assert_int_equal(aredis_client_protocol(c), 3);

    /* Tracking still on, and still working. */
    assert_true(tracking_flag(c, "on"));
    expect_str(c, "v1", "GET tb:k");
    expect_str(c, "v1", "GET tb:k");
    size_t seen = log.watched;
    ts_cmd_ok(w, "SET tb:k v2");
    if (!ts_wait_count(g_loop, &log.watched, seen + 1, 10000))
        fail_msg("no invalidation of tb:k after the refused commands");
    expect_str(c, "v2", "GET tb:k");

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

static void test_databases_separate(void **state) {
    (void)state;
    aredis_client *w0 = plain_client();
    fresh(w0);
    aredis_options o3 = ts_options(g_srv);
    o3.db = 3;
    aredis_client *w3 = ts_connect(g_loop, &o3);
    ts_cmd_ok(w0, "SET db:k zero");
    ts_cmd_ok(w3, "SET db:k three");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c0 = cached_client(k);
    o3.cache = k;
    aredis_client *c3 = ts_connect(g_loop, &o3);

    expect_str(c0, "zero", "GET db:k");
    expect_str(c3, "three", "GET db:k");
    expect_str(c0, "zero", "GET db:k");
    expect_str(c3, "three", "GET db:k");
    aredis_cache_stats s = cstats(k);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.hits, 2);
    /* SELECT on one connection. */
    ts_cmd_ok(c0, "SELECT 3");
    expect_str(c0, "three", "GET db:k"); /* SELECT 3 */
    ts_cmd_ok(c0, "SELECT 0");
    expect_str(c0, "zero", "GET db:k"); /* SELECT 0 */
    assert_int_equal(cstats(k).hits, 4);
    /* A write in db 3 (tracking does not tell databases apart: both go). */
    ts_cmd_ok(w3, "SET db:k three2");
    assert_true(wait_stat(k, ST_ENTRIES_AT_MOST, 0));
    expect_str(c3, "three2", "GET db:k");
    expect_str(c0, "zero", "GET db:k");
    ts_cmd_ok(c0, "SELECT 3");
    expect_str(c0, "three2", "GET db:k"); /* SELECT 3 */
    ts_cmd_ok(c0, "SELECT 0");

    aredis_client_free(c0);
    aredis_client_free(c3);
    aredis_client_free(w0);
    aredis_client_free(w3);
    aredis_cache_free(k);
}

/* A SELECT the server refuses leaves the connection in its database: the
 * reads after it must be cached (and served) as that database's. */
static void test_refused_select_keeps_db(void **state) {
    (void)state;
    aredis_client *w0 = plain_client();
    fresh(w0);
    aredis_options o3 = ts_options(g_srv);
    o3.db = 3;
    aredis_client *w3 = ts_connect(g_loop, &o3);
    ts_cmd_ok(w0, "SET rsel:k zero");
    ts_cmd_ok(w3, "SET rsel:k three");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);

    ts_cmd_ok(c, "SELECT 3");
    aredis_future *f = ts_cmd(c, "SELECT 99");
    assert_non_null(aredis_future_error(f)); /* out of range: still in db 3 */
    aredis_future_release(f);
    expect_str(c, "three", "GET rsel:k"); /* in db 3 after a refused SELECT 99 */
    ts_cmd_ok(c, "SELECT 0");
    f = ts_cmd(c, "SELECT 99");
    assert_non_null(aredis_future_error(f)); /* still in db 0 */
    aredis_future_release(f);
    expect_str(c, "zero", "GET rsel:k"); /* in db 0 after a refused SELECT 99 */

    aredis_client_free(c);
    aredis_client_free(w0);
    aredis_client_free(w3);
    aredis_cache_free(k);
}

/* A SELECT queued in a MULTI that is discarded never runs. */
static void test_discarded_select_keeps_db(void **state) {
    (void)state;
    aredis_client *w0 = plain_client();
    fresh(w0);
    aredis_options o3 = ts_options(g_srv);
    o3.db = 3;
    aredis_client *w3 = ts_connect(g_loop, &o3);
    ts_cmd_ok(w0, "SET dsel:k zero");
    ts_cmd_ok(w3, "SET dsel:k three");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);

    ts_cmd_ok(c, "MULTI");
    aredis_future *f = ts_cmd(c, "SELECT 3");
    assert_string_equal(aredis_future_reply(f)->str, "QUEUED");
    aredis_future_release(f);
    ts_cmd_ok(c, "DISCARD");
    expect_str(c, "zero", "GET dsel:k"); /* still db 0 */
    ts_cmd_ok(c, "SELECT 3");
    expect_str(c, "three", "GET dsel:k"); /* now db 3 */

    aredis_client_free(c);
    aredis_client_free(w0);
    aredis_client_free(w3);
    aredis_cache_free(k);
}

/*
 * A SELECT that times out is still on the wire, and runs once the server
 * gets to it: the connection's database is then unknown, and what it reads
 * must not be stored as db 0's — another client on db 0 must read db 0's
 * value. (The server is kept from answering by a BLPOP ahead of the SELECT
 * on the same connection, released once the SELECT has timed out.)
 */
static void test_select_timeout_db_unknown(void **state) {
    (void)state;
    aredis_client *w0 = plain_client();
    fresh(w0);
    aredis_options o3 = ts_options(g_srv);
    o3.db = 3;
    aredis_client *w3 = ts_connect(g_loop, &o3);
    ts_cmd_ok(w0, "SET sto:k db0");
    ts_cmd_ok(w3, "SET sto:k db3");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c1 = cached_client(k), *c2 = cached_client(k);

    aredis_cmd_opts forever = AREDIS_CMD_OPTS_INIT;
    forever.flags = AREDIS_CMD_NO_TIMEOUT;
    ts_result blpop, sel, get;
    memset(&blpop, 0, sizeof blpop);
    memset(&sel, 0, sizeof sel);
    memset(&get, 0, sizeof get);
    assert_int_equal(aredis_command_ex(c1, &forever, ts_on_reply, &blpop, "BLPOP sto:q 0"),
                     AREDIS_ERR_OK);
    aredis_cmd_opts quick = AREDIS_CMD_OPTS_INIT;
    quick.timeout_ms = 20;
    assert_int_equal(aredis_command_ex(c1, &quick, ts_on_reply, &sel, "SELECT 3"), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &sel.done, 5000));
    assert_int_equal(sel.code, AREDIS_ERR_TIMEOUT);
    assert_int_equal(blpop.calls, 0);
    /* The SELECT runs before this GET on the server: db 3's value. */
    uint64_t stores = cstats(k).stores;
    assert_int_equal(aredis_command(c1, ts_on_reply, &get, "GET sto:k"), AREDIS_ERR_OK);
    assert_int_equal(int_of(w0, "LPUSH sto:q x"), 1);
    assert_true(ts_wait(g_loop, &get.done, 5000));
    assert_int_equal(blpop.code, AREDIS_ERR_OK);
    assert_int_equal(get.code, AREDIS_ERR_OK);
    assert_string_equal(get.text, "db3"); /* c1's connection is on db 3 */
    expect_str(c1, "db3", "GET sto:k");
    uint64_t stores_c1 = cstats(k).stores;
    expect_str(c2, "db0", "GET sto:k"); /* c2 is on db 0 */
    expect_str(c2, "db0", "GET sto:k");
    assert_int_equal(stores_c1, stores); /* nothing c1 read was stored */
    /* A plain SELECT says where c1 is again: caching resumes. */
    ts_cmd_ok(c1, "SELECT 0");
    uint64_t hits = cstats(k).hits;
    expect_str(c1, "db0", "GET sto:k");
    assert_int_equal(cstats(k).hits, hits + 1);

    aredis_client_free(c1);
    aredis_client_free(c2);
    aredis_client_free(w0);
    aredis_client_free(w3);
    aredis_cache_free(k);
}

/* on_reconnect_attempt: how many attempts were scheduled. */
static void count_attempt(aredis_client *c, unsigned attempt, uint32_t delay_ms, void *data) {
    (void)c;
    (void)attempt;
    (void)delay_ms;
    (*(size_t *)data)++;
}

/*
 * A SELECT issued while the client waits to reconnect, with a failed
 * attempt before the server is back: it runs on the next connection, and
 * the cache follows it — the reads after it are db 3's, and after SELECT 0
 * db 0's again (not db 3's value stored as db 0's).
 */
static void test_select_across_reconnect(void **state) {
    (void)state;
    ts_server *srv = ts_server_start_default();
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    size_t attempts = 0;
    aredis_options o = ts_options(srv);
    o.cache = k;
    o.reconnect_delay_ms = 5;
    o.max_reconnect_delay_ms = 20;
    o.reconnect_jitter = 0;
    o.on_reconnect_attempt = count_attempt;
    o.cb_data = &attempts;
    aredis_client *c = ts_connect(g_loop, &o);
    settle(c);

    ts_server_kill(srv);
    /* Lost (attempt 1 scheduled), then attempt 1 failed (attempt 2). */
    if (!ts_wait_count(g_loop, &attempts, 2, 10000))
        fail_msg("no failed reconnect attempt (%zu scheduled)", attempts);
    assert_int_not_equal(aredis_client_state(c), AREDIS_STATE_READY);
    aredis_future *fs = aredis_future_command(c, "SELECT 3");
    assert_non_null(fs);
    assert_false(aredis_future_is_done(fs));
    size_t now = attempts;
    if (!ts_wait_count(g_loop, &attempts, now + 1, 10000))
        fail_msg("no failed reconnect attempt after the SELECT was issued");
    assert_false(aredis_future_is_done(fs));
    ts_server_restart(srv);
    aredis_client *w0 = ts_client(g_loop, srv);
    aredis_options o3 = ts_options(srv);
    o3.db = 3;
    aredis_client *w3 = ts_connect(g_loop, &o3);
    ts_cmd_ok(w0, "SET srx:k db0");
    ts_cmd_ok(w3, "SET srx:k db3");
    assert_int_equal(aredis_await(fs), AREDIS_ERR_OK);
    aredis_future_release(fs);
    assert_int_equal(clstats(c).connects, 2);

    expect_str(c, "db3", "GET srx:k"); /* after SELECT 3 */
    expect_str(c, "db3", "GET srx:k"); /* after SELECT 3 */
    ts_cmd_ok(c, "SELECT 0");
    expect_str(c, "db0", "GET srx:k"); /* after SELECT 0 */
    expect_str(c, "db0", "GET srx:k"); /* after SELECT 0 */
    assert_int_equal(cstats(k).hits, 2);

    aredis_client_free(c);
    aredis_client_free(w0);
    aredis_client_free(w3);
    aredis_cache_free(k);
    ts_server_stop(srv);
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

/* Regressions: a SELECT that crossed a failed reconnect attempt and then
 * timed out; a refused batch leaving its earlier commands' marks. */
static void test_select_timeout_after_reconnect(void **state) {
    (void)state;
    ts_server *srv = ts_server_start_default();
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    size_t attempts = 0;
    aredis_options o = ts_options(srv);
    o.cache = k;
    o.reconnect_delay_ms = 5;
    o.max_reconnect_delay_ms = 20;
    o.reconnect_jitter = 0;
    o.on_reconnect_attempt = count_attempt;
    o.cb_data = &attempts;
    aredis_client *c = ts_connect(g_loop, &o);
    ts_server_kill(srv);
    assert_true(ts_wait_count(g_loop, &attempts, 2, 10000));
    aredis_cmd_opts forever = AREDIS_CMD_OPTS_INIT;
    forever.flags = AREDIS_CMD_NO_TIMEOUT;
    ts_result blpop, sel, get;
    memset(&blpop, 0, sizeof blpop);
    memset(&sel, 0, sizeof sel);
    memset(&get, 0, sizeof get);
    assert_int_equal(aredis_command_ex(c, &forever, ts_on_reply, &blpop, "BLPOP pq 0"),
                     AREDIS_ERR_OK);
    aredis_cmd_opts t = AREDIS_CMD_OPTS_INIT;
    t.timeout_ms = 1500;
    assert_int_equal(aredis_command_ex(c, &t, ts_on_reply, &sel, "SELECT 3"), AREDIS_ERR_OK);
    size_t now = attempts;
    assert_true(ts_wait_count(g_loop, &attempts, now + 1, 10000));
    ts_server_restart(srv);
    aredis_client *w0 = ts_client(g_loop, srv);
    aredis_options o3 = ts_options(srv);
    o3.db = 3;
    aredis_client *w3 = ts_connect(g_loop, &o3);
    ts_cmd_ok(w0, "SET pk db0");
    ts_cmd_ok(w3, "SET pk db3");
    assert_true(ts_wait(g_loop, &sel.done, 5000));
    assert_int_equal(sel.code, AREDIS_ERR_TIMEOUT);
    assert_int_equal(aredis_command(c, ts_on_reply, &get, "GET pk"), AREDIS_ERR_OK);
    assert_int_equal(int_of(w0, "LPUSH pq x"), 1);
    assert_true(ts_wait(g_loop, &get.done, 5000));
    /* The SELECT ran after its timeout: the connection is on db 3, and
     * what it read there is not stored as db 0's. */
    assert_string_equal(get.text, "db3");
    assert_int_equal(cstats(k).stores, 0);
    aredis_options o0 = ts_options(srv);
    o0.cache = k;
    aredis_client *c2 = ts_connect(g_loop, &o0);
    aredis_future *f = ts_cmd(c2, "GET pk");
    assert_string_equal(aredis_future_reply(f)->str, "db0");
    aredis_future_release(f);
    aredis_client_free(c2);
    aredis_client_free(c);
    aredis_client_free(w0);
    aredis_client_free(w3);
    aredis_cache_free(k);
    ts_server_stop(srv);
}

/* Probe B: a refused pipeline [MULTI, CLIENT TRACKING OFF]: is the client left believing a MULTI is
 * open? */
static void test_refused_batch_changes_nothing(void **state) {
    (void)state;
    aredis_client *w = plain_client();
    fresh(w);
    ts_cmd_ok(w, "SET pb:k v");
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c = cached_client(k);
    expect_str(c, "v", "GET pb:k");
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(p, "MULTI"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "CLIENT TRACKING OFF"), AREDIS_ERR_OK);
    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_non_null(aredis_future_error(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_UNSUPPORTED);
    aredis_future_release(f);
    aredis_pipeline_free(p);
    uint64_t hits = cstats(k).hits;
    expect_str(c, "v", "GET pb:k");
    expect_str(c, "v", "GET pb:k");
    /* No MULTI is believed open: both reads are hits. */
    assert_int_equal(cstats(k).hits - hits, 2);
    /* A pipeline [SELECT 3, CLIENT TRACKING OFF] refused. */
    p = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(p, "SELECT 3"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "CLIENT TRACKING OFF"), AREDIS_ERR_OK);
    f = aredis_pipeline_exec_future(p);
    aredis_future_release(f);
    aredis_pipeline_free(p);
    hits = cstats(k).hits;
    expect_str(c, "v", "GET pb:k");
    expect_str(c, "v", "GET pb:k");
    /* The database is still known: both reads are hits. */
    assert_int_equal(cstats(k).hits - hits, 2);
    aredis_client_free(c);
    aredis_client_free(w);
    aredis_cache_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_hit_miss_counts),
        TS_LOOP_CASE(test_error_reply_not_stored),
        TS_LOOP_CASE(test_other_client_set_invalidates),
        TS_LOOP_CASE(test_own_writes),
        TS_LOOP_CASE(test_own_write_pool),
        TS_LOOP_CASE(test_own_write_other_connection),
        TS_LOOP_CASE(test_own_write_exec_other_connection),
        TS_LOOP_CASE(test_own_write_pipeline_other_connection),
        TS_LOOP_CASE(test_own_write_tx_other_connection),
        TS_LOOP_CASE(test_unknown_write_empties),
        TS_LOOP_CASE(test_flush_from_other_client),
        TS_LOOP_CASE(test_server_restart_empties),
        TS_LOOP_CASE(test_close_from_on_invalidate),
        TS_LOOP_CASE(test_race_in_flight),
        TS_LOOP_CASE(test_budget_bytes),
        TS_LOOP_CASE(test_budget_entries),
        TS_LOOP_CASE(test_ttl),
        TS_LOOP_CASE(test_hit_on_later_turn),
        TS_LOOP_CASE(test_cancel_hit_future),
        TS_LOOP_CASE(test_close_and_free_with_hits_pending),
        TS_LOOP_CASE(test_hit_cancelled_from_close),
        TS_LOOP_CASE(test_multi_not_served),
        TS_LOOP_CASE(test_allow_list),
        TS_LOOP_CASE(test_tracking_commands_refused),
        TS_LOOP_CASE(test_tracking_off_refused_in_batches),
        TS_LOOP_CASE(test_refused_setups),
        TS_LOOP_CASE(test_bcast_mode),
        TS_LOOP_CASE(test_optin_mode),
        TS_LOOP_CASE(test_key_prefix),
        TS_LOOP_CASE(test_key_prefix_bcast),
        TS_LOOP_CASE(test_databases_separate),
        TS_LOOP_CASE(test_refused_select_keeps_db),
        TS_LOOP_CASE(test_discarded_select_keeps_db),
        TS_LOOP_CASE(test_select_timeout_db_unknown),
        TS_LOOP_CASE(test_select_across_reconnect),
        TS_LOOP_CASE(test_binary_keys),
        TS_LOOP_CASE(test_cache_freed_early),
        TS_LOOP_CASE(test_fork_new_client_not_served_parent_entries),
        TS_LOOP_CASE(test_server_without_resp3),
        TS_LOOP_CASE(test_server_refuses_tracking),
        TS_LOOP_CASE(test_select_timeout_after_reconnect),
        TS_LOOP_CASE(test_refused_batch_changes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
