/*
 * Client-side caching under load: the in-flight race (10,000 writes
 * against reads always in flight on three connections sharing one cache: no
 * read issued after an invalidation returns a value older than what was
 * acknowledged when it arrived), the byte budget under 100,000 distinct
 * keys, the entry limit, the TTL.
 */
#include "cache_common.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_race_in_flight),
        TS_LOOP_CASE(test_budget_bytes),
        TS_LOOP_CASE(test_budget_entries),
        TS_LOOP_CASE(test_ttl),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
