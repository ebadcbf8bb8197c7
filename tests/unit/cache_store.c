/*
 * The client-side cache's store (src/features/cache_store.c), no server:
 * hits and misses counted exactly, an invalidation drops every entry of its
 * key and nothing else, the in-flight race (a read sent before an
 * invalidation or a flush and answered after it is never stored), the byte
 * budget and the entry limit under 100,000 distinct keys with LRU order,
 * expiry, and every value freed exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/cache_store.h"
#include "ts.h"

static long g_live; /* values given to the store and not freed yet */

static void *value_new(int v) {
    int *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = v;
    g_live++;
    return p;
}

static void value_free(void *p) {
    assert_non_null(p);
    g_live--;
    free(p);
}

static int value_of(void *p) { return p ? *(int *)p : -1; }

/* Read `cmd` of `key` through the store as the cache would: begin, then
 * complete with value v. Returns 1 when stored. */
static int store(aredis__cstore *s, const char *key, const char *cmd, int v, size_t size) {
    aredis__ctoken t;
    assert_int_equal(aredis__cstore_begin(s, key, strlen(key), &t), 0);
    return aredis__cstore_complete(s, &t, cmd, strlen(cmd), value_new(v), size, 0);
}

static void *get(aredis__cstore *s, const char *cmd, uint64_t now) {
    return aredis__cstore_get(s, cmd, strlen(cmd), now);
}

static aredis__cstore_stats stats(const aredis__cstore *s) {
    aredis__cstore_stats st;
    aredis__cstore_get_stats(s, &st);
    return st;
}

static void test_hits_and_misses(void **state) {
    (void)state;
    g_live = 0;
    aredis__cstore *s = aredis__cstore_new(NULL, value_free);
    assert_non_null(s);
    assert_null(get(s, "GET a", 0));
    assert_int_equal(store(s, "a", "GET a", 1, 8), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(value_of(get(s, "GET a", 0)), 1);
    assert_null(get(s, "GET b", 0));
    /* The same command stored again replaces its value. */
    assert_int_equal(store(s, "a", "GET a", 2, 8), 1);
    assert_int_equal(value_of(get(s, "GET a", 0)), 2);
    aredis__cstore_stats st = stats(s);
    assert_int_equal(st.hits, 6);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.entries, 1);
    assert_int_equal(g_live, 1);
    aredis__cstore_free(s);
    assert_int_equal(g_live, 0);
}

static void test_invalidation_drops_the_key(void **state) {
    (void)state;
    g_live = 0;
    aredis__cstore *s = aredis__cstore_new(NULL, value_free);
    assert_non_null(s);
    assert_int_equal(store(s, "h", "HGET h f1", 1, 8), 1);
    assert_int_equal(store(s, "h", "HGET h f2", 2, 8), 1);
    assert_int_equal(store(s, "h", "HGETALL h", 3, 8), 1);
    assert_int_equal(store(s, "k", "GET k", 4, 8), 1);
    aredis__cstore_invalidate(s, "h", 1);
    assert_null(get(s, "HGET h f1", 0));
    assert_null(get(s, "HGET h f2", 0));
    assert_null(get(s, "HGETALL h", 0));
    assert_int_equal(value_of(get(s, "GET k", 0)), 4);
    aredis__cstore_stats st = stats(s);
    assert_int_equal(st.invalidations, 3);
    assert_int_equal(st.entries, 1);
    assert_int_equal(g_live, 1);
    /* A key never seen: nothing happens. */
    aredis__cstore_invalidate(s, "zz", 2);
    assert_int_equal(stats(s).entries, 1);
    aredis__cstore_flush(s);
    assert_null(get(s, "GET k", 0));
    assert_int_equal(stats(s).entries, 0);
    assert_int_equal(g_live, 0);
    aredis__cstore_free(s);
}

/* The race: a read whose key is invalidated (or the store flushed) between
 * its sending and its reply is not stored; one sent after is. */
static void test_in_flight_race(void **state) {
    (void)state;
    g_live = 0;
    aredis__cstore *s = aredis__cstore_new(NULL, value_free);
    assert_non_null(s);
    aredis__ctoken t1, t2, t3;
    assert_int_equal(aredis__cstore_begin(s, "k", 1, &t1), 0);
    aredis__cstore_invalidate(s, "k", 1); /* the server: k changed */
    assert_int_equal(aredis__cstore_begin(s, "k", 1, &t2), 0);
    /* t1 was answered with a value from before the change, maybe. */
    assert_int_equal(aredis__cstore_complete(s, &t1, "GET k", 5, value_new(1), 8, 0), 0);
    assert_null(get(s, "GET k", 0));
    /* t2 was sent after it: its reply is current. */
    assert_int_equal(aredis__cstore_complete(s, &t2, "GET k", 5, value_new(2), 8, 0), 1);
    assert_int_equal(value_of(get(s, "GET k", 0)), 2);
    /* A flush makes every read in flight uncacheable. */
    assert_int_equal(aredis__cstore_begin(s, "j", 1, &t3), 0);
    aredis__cstore_flush(s);
    assert_int_equal(aredis__cstore_complete(s, &t3, "GET j", 5, value_new(3), 8, 0), 0);
    assert_null(get(s, "GET j", 0));
    /* Another key's invalidation does not matter. */
    assert_int_equal(aredis__cstore_begin(s, "j", 1, &t3), 0);
    aredis__cstore_invalidate(s, "other", 5);
    assert_int_equal(aredis__cstore_complete(s, &t3, "GET j", 5, value_new(4), 8, 0), 1);
    /* An aborted read leaves nothing behind. */
    assert_int_equal(aredis__cstore_begin(s, "x", 1, &t3), 0);
    aredis__cstore_abort(s, &t3);
    assert_int_equal(stats(s).not_stored, 2);
    assert_int_equal(g_live, 1);
    aredis__cstore_free(s);
    assert_int_equal(g_live, 0);
}

/* 100,000 distinct keys through a budget of 64 KiB: never above it, the
 * least recently used go first, every value freed once. */
static void test_budget_and_lru(void **state) {
    (void)state;
    g_live = 0;
    aredis__cstore_limits lim = {64 * 1024, 0, 0};
    aredis__cstore *s = aredis__cstore_new(&lim, value_free);
    assert_non_null(s);
    char cmd[64], key[32];
    assert_int_equal(store(s, "hot", "GET hot", -1, 100), 1);
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(cmd, sizeof cmd, "GET %s", key);
        assert_int_equal(store(s, key, cmd, i, 100), 1);
        if (stats(s).bytes > lim.max_bytes) fail_msg("%zu bytes > budget", stats(s).bytes);
        /* The hot key is read all the time: it stays. */
        assert_int_equal(value_of(get(s, "GET hot", 0)), -1);
    }
    aredis__cstore_stats st = stats(s);
    assert_true(st.entries > 100 && st.entries < 1000);
    assert_int_equal(st.evictions + st.entries, 100001);
    assert_int_equal(g_live, (long)st.entries);
    /* The newest are in, the oldest out. */
    assert_int_equal(value_of(get(s, "GET k99999", 0)), 99999);
    assert_null(get(s, "GET k0", 0));
    /* A value bigger than the whole budget is refused. */
    assert_int_equal(store(s, "big", "GET big", 7, 70 * 1024), 0);
    assert_int_equal(g_live, (long)stats(s).entries);
    aredis__cstore_free(s);
    assert_int_equal(g_live, 0);
}

static void test_entry_limit(void **state) {
    (void)state;
    g_live = 0;
    aredis__cstore_limits lim = {0, 3, 0};
    aredis__cstore *s = aredis__cstore_new(&lim, value_free);
    assert_non_null(s);
    assert_int_equal(store(s, "a", "GET a", 1, 1), 1);
    assert_int_equal(store(s, "b", "GET b", 2, 1), 1);
    assert_int_equal(store(s, "c", "GET c", 3, 1), 1);
    assert_non_null(get(s, "GET a", 0)); /* a is now the most recent */
    assert_int_equal(store(s, "d", "GET d", 4, 1), 1);
    assert_null(get(s, "GET b", 0)); /* the least recent went */
    assert_non_null(get(s, "GET a", 0));
    assert_int_equal(stats(s).entries, 3);
    assert_int_equal(stats(s).evictions, 1);
    aredis__cstore_free(s);
    assert_int_equal(g_live, 0);
}

static void test_expiry(void **state) {
    (void)state;
    g_live = 0;
    aredis__cstore_limits lim = {0, 0, 100};
    aredis__cstore *s = aredis__cstore_new(&lim, value_free);
    assert_non_null(s);
    aredis__ctoken t;
    assert_int_equal(aredis__cstore_begin(s, "a", 1, &t), 0);
    assert_int_equal(aredis__cstore_complete(s, &t, "GET a", 5, value_new(1), 8, 1000), 1);
    assert_non_null(get(s, "GET a", 1099));
    assert_null(get(s, "GET a", 1100));
    aredis__cstore_stats st = stats(s);
    assert_int_equal(st.expirations, 1);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(g_live, 0);
    aredis__cstore_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_and_misses), cmocka_unit_test(test_invalidation_drops_the_key),
        cmocka_unit_test(test_in_flight_race),  cmocka_unit_test(test_budget_and_lru),
        cmocka_unit_test(test_entry_limit),     cmocka_unit_test(test_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
