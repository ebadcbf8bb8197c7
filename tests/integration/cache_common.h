/*
 * What the client-side caching tests (integration/cache*.c) share: a
 * default server per file, caches and clients on the running case's loop,
 * and waits on the cache's statistics.
 */
#ifndef AREDIS_TEST_CACHE_COMMON_H
#define AREDIS_TEST_CACHE_COMMON_H

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

static inline int setup(void **state) {
    (void)state;
    g_srv = ts_server_start_default();
    return 0;
}

static inline int teardown(void **state) {
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

static inline void on_inv(aredis_cache *k, const char *key, size_t len, void *data) {
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
static inline void watch(inv_log *l, const char *key, size_t len) {
    l->watch = key;
    l->watch_len = len;
    l->watched = 0;
}

static inline aredis_cache *cache_with(aredis_cache_options *co, inv_log *log) {
    if (log) {
        co->on_invalidate = on_inv;
        co->data = log;
    }
    aredis_cache *k = aredis_cache_new(co);
    if (!k) fail_msg("aredis_cache_new: %s", aredis_call_error()->detail);
    return k;
}

static inline aredis_cache *cache_new(size_t max_bytes, size_t max_entries, inv_log *log) {
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.max_bytes = max_bytes;
    co.max_entries = max_entries;
    return cache_with(&co, log);
}

static inline aredis_client *cached_on(const ts_server *s, aredis_cache *k) {
    aredis_options o = ts_options(s);
    o.cache = k;
    return ts_connect(g_loop, &o);
}

static inline aredis_client *cached_client(aredis_cache *k) { return cached_on(g_srv, k); }

static inline aredis_client *plain_client(void) { return ts_client(g_loop, g_srv); }

static inline aredis_cache_stats cstats(const aredis_cache *k) {
    aredis_cache_stats s;
    aredis_cache_get_stats(k, &s);
    return s;
}

static inline aredis_client_stats clstats(const aredis_client *c) {
    aredis_client_stats s;
    aredis_client_get_stats(c, &s);
    return s;
}

/* The server answers everything: a FLUSHALL through a client without a
 * cache, before any cached client of the case exists. */
static inline void fresh(aredis_client *w) { ts_cmd_ok(w, "FLUSHALL"); }

/* Check a finished future: a string equal to want, or nil when want is NULL. */
static inline void check_str(aredis_future *f, const char *want, const char *what) {
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
static inline void expect_str(aredis_client *c, const char *want, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(f);
    check_str(f, want, fmt);
    aredis_future_release(f);
}

/* Run a command and return its integer reply. */
static inline long long int_of(aredis_client *c, const char *fmt, ...) {
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
static inline long long get_calls(aredis_client *w) {
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
static inline void settle(aredis_client *c) {
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

static inline int stat_reached(const void *arg) {
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

static inline int wait_stat(const aredis_cache *k, stat_kind kind, uint64_t target) {
    stat_cond s = {k, kind, target};
    return ts_wait_until(g_loop, stat_reached, &s, 10000);
}

/* The "flags" of CLIENT TRACKINGINFO on c contain `flag`: 1, else 0. */
static inline int tracking_flag(aredis_client *c, const char *flag) {
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
static inline int tracking_prefix(aredis_client *c, const char *prefix) {
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

static inline void count_push(aredis_client *c, aredis_reply *push, void *data) {
    (void)c;
    (void)push;
    (*(int *)data)++;
}

static inline void count_then(aredis_future *f, void *data) {
    (void)f;
    (*(int *)data)++;
}

/* ---- Hits and misses --------------------------------------------------------- */

/* N keys read once: N misses; then M more times each: N*M hits, nothing sent. */

#endif
