/*
 * SCAN iterators (aredis/scan.h): SCAN, HSCAN, SSCAN and ZSCAN walked to
 * the end in the three styles (batch callbacks, batch futures, per-element
 * walk), RESP2 and RESP3; MATCH (binary safe), COUNT and TYPE; keys added
 * and deleted during a scan; the connection killed with a batch in flight
 * (the batch is sent again with the same cursor) and a batch that fails for
 * good (the cursor is kept); a per-batch timeout; freeing with a batch in
 * flight and from inside every callback; malformed replies; invalid options.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "fake_server.h"
#include "proxy.h"

#define NKEYS 10000
#define NCOLL 1000 /* entries of the big hash, set and zset: past listpack */
#define WAIT_MS 20000

static const int k_resp2 = 2;
static const int k_resp3 = 3;

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

static int proto_of(void **state) { return *state ? *(const int *)*state : 3; }

/* A client of the shared server speaking `proto`, on a flushed database. */
static aredis_client *client_proto(int proto) {
    aredis_options o = ts_options(g_srv);
    o.protocol = proto;
    aredis_client *c = ts_connect(g_loop, &o);
    assert_int_equal(aredis_client_protocol(c), proto);
    ts_cmd_ok(c, "FLUSHALL");
    return c;
}

/* ---- Filling the database ------------------------------------------------- */

/* Keys printf(fmt, i) for i in [from, to), each set to "v", MSET 500 at a
 * time. */
static void mset_keys(aredis_client *c, const char *fmt, int from, int to) {
    enum { CHUNK = 500 };
    static char keys[CHUNK][32];
    const char *argv[1 + 2 * CHUNK];
    for (int i = from; i < to;) {
        int n = 0;
        argv[n++] = "MSET";
        for (int k = 0; k < CHUNK && i < to; k++, i++) {
            snprintf(keys[k], sizeof keys[k], fmt, i);
            argv[n++] = keys[k];
            argv[n++] = "v";
        }
        aredis_future *f = aredis_future_argv(c, n, argv, NULL);
        if (aredis_await(f) != AREDIS_ERR_OK) fail_msg("MSET: %s", aredis_future_error(f)->detail);
        aredis_future_release(f);
    }
}

/* A big collection at key: HSET f:i v:i, SADD m:i, or ZADD i m:i. */
static void fill_collection(aredis_client *c, aredis_scan_kind kind, const char *key, int n) {
    enum { CHUNK = 250 };
    static char a[CHUNK][24], b[CHUNK][24];
    const char *argv[2 + 2 * CHUNK];
    for (int i = 0; i < n;) {
        int m = 0;
        argv[m++] = kind == AREDIS_SCAN_HASH ? "HSET" : kind == AREDIS_SCAN_SET ? "SADD" : "ZADD";
        argv[m++] = key;
        for (int k = 0; k < CHUNK && i < n; k++, i++) {
            if (kind == AREDIS_SCAN_HASH) {
                snprintf(a[k], sizeof a[k], "f:%d", i);
                snprintf(b[k], sizeof b[k], "v:%d", i);
                argv[m++] = a[k];
                argv[m++] = b[k];
            } else if (kind == AREDIS_SCAN_SET) {
                snprintf(a[k], sizeof a[k], "m:%d", i);
                argv[m++] = a[k];
            } else {
                snprintf(a[k], sizeof a[k], "%d", i);
                snprintf(b[k], sizeof b[k], "m:%d", i);
                argv[m++] = a[k];
                argv[m++] = b[k];
            }
        }
        aredis_future *f = aredis_future_argv(c, m, argv, NULL);
        if (aredis_await(f) != AREDIS_ERR_OK) fail_msg("fill: %s", aredis_future_error(f)->detail);
        aredis_future_release(f);
    }
}

/* ---- Seeing every element -------------------------------------------------- */

/*
 * What a scan saw: elements named prefix + decimal index in [0, n) are
 * counted in hits[index]; any other element counts in `others`. For pairs
 * the value must match the element's index ("v:<i>" for a hash, score i
 * for a zset): mismatches count in bad_values.
 */
typedef struct tracker {
    const char *prefix;
    size_t n;
    aredis_scan_kind kind;
    unsigned *hits;
    size_t elements, others, bad_values;
} tracker;

static void tracker_init(tracker *t, const char *prefix, size_t n, aredis_scan_kind kind) {
    memset(t, 0, sizeof *t);
    t->prefix = prefix;
    t->n = n;
    t->kind = kind;
    t->hits = calloc(n, sizeof *t->hits);
    assert_non_null(t->hits);
}

static void tracker_free(tracker *t) { free(t->hits); }

/* The index of an element named prefix + digits, or -1. */
static long index_of(const tracker *t, const aredis_reply *e) {
    size_t pl = strlen(t->prefix);
    if (e->type != AREDIS_REPLY_STRING || e->len <= pl || memcmp(e->str, t->prefix, pl) != 0)
        return -1;
    char *end;
    long i = strtol(e->str + pl, &end, 10);
    if (end != e->str + e->len || i < 0 || (size_t)i >= t->n) return -1;
    return i;
}

static void track_one(tracker *t, const aredis_reply *e, const aredis_reply *v) {
    t->elements++;
    long i = index_of(t, e);
    if (i < 0) {
        t->others++;
        return;
    }
    t->hits[i]++;
    if (t->kind == AREDIS_SCAN_HASH) {
        char want[24];
        snprintf(want, sizeof want, "v:%ld", i);
        if (!v || v->len != strlen(want) || memcmp(v->str, want, v->len) != 0) t->bad_values++;
    } else if (t->kind == AREDIS_SCAN_ZSET) {
        double d = !v ? -1 : v->type == AREDIS_REPLY_DOUBLE ? v->dval : strtod(v->str, NULL);
        if (d != (double)i) t->bad_values++;
    } else if (v) {
        t->bad_values++;
    }
}

static void track_batch(tracker *t, const aredis_reply *b) {
    assert_non_null(b);
    size_t step = t->kind == AREDIS_SCAN_HASH || t->kind == AREDIS_SCAN_ZSET ? 2 : 1;
    assert_int_equal(b->elements % step, 0);
    for (size_t i = 0; i < b->elements; i += step)
        track_one(t, b->element[i], step == 2 ? b->element[i + 1] : NULL);
}

/* Assert every index was seen at least once. */
static void assert_all_seen(const tracker *t, const char *what) {
    size_t missing = 0, dups = 0;
    long first = -1;
    for (size_t i = 0; i < t->n; i++) {
        if (!t->hits[i] && missing++ == 0) first = (long)i;
        if (t->hits[i] > 1) dups++;
    }
    ts_log("%s: %zu elements, %zu of %zu distinct seen, %zu seen twice or more, %zu others", what,
           t->elements, t->n - missing, t->n, dups, t->others);
    if (missing)
        fail_msg("%s: %zu of %zu never seen (first: %s%ld)", what, missing, t->n, t->prefix, first);
    assert_int_equal(t->bad_values, 0);
}

/* ---- Three ways to drive an iterator --------------------------------------- */

/* The state of a scan driven by callbacks (batch or per-element). */
typedef struct run {
    tracker *t;
    int done;        /* the drive ended */
    int calls;       /* batch or done callbacks */
    aredis_err code; /* how it ended */
    char detail[256];
    size_t batches;
    size_t elements;
    size_t stop_after;                         /* each: stop after this many elements */
    void (*hook)(struct run *, aredis_scan *); /* after each batch / element */
    void *ctx;
} run;

static void finish(run *r, const aredis_error *err) {
    r->done = 1;
    r->code = err ? err->code : AREDIS_ERR_OK;
    snprintf(r->detail, sizeof r->detail, "%s", err ? err->detail : "");
}

/* Batch callback: track, then ask for the next until complete. */
static void on_batch(aredis_scan *s, const aredis_reply *batch, const aredis_error *err,
                     void *data) {
    run *r = data;
    r->calls++;
    if (err) {
        assert_null(batch);
        finish(r, err);
        return;
    }
    r->batches++;
    if (r->t) track_batch(r->t, batch);
    if (r->hook) r->hook(r, s);
    if (aredis_scan_done(s)) {
        finish(r, NULL);
        return;
    }
    aredis_err e = aredis_scan_next(s, on_batch, r);
    if (e != AREDIS_ERR_OK) finish(r, aredis_call_error());
}

static void drive_callbacks(aredis_scan *s, run *r) {
    assert_int_equal(aredis_scan_next(s, on_batch, r), AREDIS_ERR_OK);
    assert_true(aredis_scan_busy(s));
    assert_true(ts_wait(g_loop, &r->done, WAIT_MS));
}

static int on_elem(aredis_scan *s, const aredis_reply *e, const aredis_reply *v, void *data) {
    run *r = data;
    r->elements++;
    if (r->t) track_one(r->t, e, v);
    if (r->hook) r->hook(r, s);
    return r->stop_after && r->elements >= r->stop_after;
}

static void on_done(aredis_scan *s, const aredis_error *err, void *data) {
    (void)s;
    run *r = data;
    r->calls++;
    finish(r, err);
}

static void drive_each(aredis_scan *s, run *r) {
    assert_int_equal(aredis_scan_each(s, on_elem, on_done, r), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &r->done, WAIT_MS));
    assert_int_equal(r->calls, 1);
}

/* Await batch futures until the scan is complete; returns the batches. */
static size_t drive_futures(aredis_scan *s, tracker *t) {
    size_t batches = 0;
    while (!aredis_scan_done(s)) {
        aredis_future *f = aredis_scan_next_future(s);
        assert_non_null(f);
        if (aredis_await(f) != AREDIS_ERR_OK)
            fail_msg("batch %zu: %s", batches, aredis_future_error(f)->detail);
        const aredis_reply *b;
        assert_int_equal(aredis_scan_batch(s, f, &b), AREDIS_ERR_OK);
        track_batch(t, b);
        aredis_future_release(f);
        batches++;
    }
    assert_string_equal(aredis_scan_cursor(s), "0");
    return batches;
}

/* ---- Every key, every style ------------------------------------------------ */

/* 10,000 keys, batch callbacks: every key at least once, then complete. */
static void test_scan_all_callbacks(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    mset_keys(c, "k:%d", 0, NKEYS);
    aredis_scan *s = aredis_scan_new(c, NULL);
    assert_non_null(s);
    assert_false(aredis_scan_done(s));
    assert_string_equal(aredis_scan_cursor(s), "0");
    tracker t;
    tracker_init(&t, "k:", NKEYS, AREDIS_SCAN_KEYS);
    run r = {.t = &t};
    drive_callbacks(s, &r);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_int_equal(r.calls, (int)r.batches);
    assert_int_equal(aredis_scan_batches(s), r.batches);
    assert_true(aredis_scan_done(s));
    assert_false(aredis_scan_busy(s));
    assert_string_equal(aredis_scan_cursor(s), "0");
    assert_int_equal(t.others, 0);
    assert_all_seen(&t, "SCAN, callbacks");
    /* Complete: one more batch is refused, and says why. */
    assert_int_equal(aredis_scan_next(s, on_batch, &r), AREDIS_ERR_INVALID);
    assert_non_null(strstr(aredis_call_error()->detail, "complete"));
    assert_null(aredis_scan_next_future(s));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    tracker_free(&t);
    aredis_scan_free(s);
    aredis_client_free(c);
}

/* The same with futures, and one batch at a time in both styles. */
static void test_scan_all_futures(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    mset_keys(c, "k:%d", 0, NKEYS);
    aredis_scan *s = aredis_scan_new(c, NULL);
    assert_non_null(s);

    /* A second batch while one is in flight is refused, in every style. */
    aredis_future *f = aredis_scan_next_future(s);
    assert_non_null(f);
    assert_true(aredis_scan_busy(s));
    run r = {0};
    assert_int_equal(aredis_scan_next(s, on_batch, &r), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_non_null(strstr(aredis_call_error()->detail, "one batch at a time"));
    assert_null(aredis_scan_next_future(s));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_int_equal(aredis_scan_each(s, on_elem, on_done, &r), AREDIS_ERR_INVALID);
    const aredis_reply *b = (const aredis_reply *)&r;
    assert_int_equal(aredis_scan_batch(s, f, &b), AREDIS_ERR_INVALID); /* still pending */
    assert_null(b);

    tracker t;
    tracker_init(&t, "k:", NKEYS, AREDIS_SCAN_KEYS);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_false(aredis_scan_busy(s));
    assert_int_equal(aredis_scan_batch(s, f, &b), AREDIS_ERR_OK);
    track_batch(&t, b);
    aredis_future_release(f);
    size_t batches = 1 + drive_futures(s, &t);
    assert_int_equal(aredis_scan_batches(s), batches);
    assert_int_equal(r.calls, 0); /* the refused calls never call back */
    assert_int_equal(t.others, 0);
    assert_all_seen(&t, "SCAN, futures");
    tracker_free(&t);
    aredis_scan_free(s);
    aredis_client_free(c);
}

/* ---- MATCH, COUNT, TYPE -------------------------------------------------- */

static void test_match_and_count(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    mset_keys(c, "k:%d", 0, NKEYS);
    mset_keys(c, "other:%d", 0, 1000);

    /* MATCH: only k:1, k:10..k:19, k:100..k:199, k:1000..k:1999. */
    aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
    o.match = "k:1*";
    aredis_scan *s = aredis_scan_new(c, &o);
    tracker t;
    tracker_init(&t, "k:", 2000, AREDIS_SCAN_KEYS);
    run r = {.t = &t};
    drive_callbacks(s, &r);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_int_equal(t.others, 0);
    size_t want = 0;
    for (size_t i = 0; i < t.n; i++) {
        char k[24];
        snprintf(k, sizeof k, "%zu", i);
        if (k[0] == '1') {
            want++;
            if (!t.hits[i]) fail_msg("k:%zu not seen", i);
        } else if (t.hits[i]) {
            fail_msg("k:%zu does not match k:1* yet was returned", i);
        }
    }
    ts_log("MATCH k:1*: %zu keys in %zu batches (%zu expected keys)", t.elements, r.batches, want);
    tracker_free(&t);
    aredis_scan_free(s);

    /* COUNT: more work per batch, so far fewer batches than the default 10. */
    size_t batches[2];
    for (int k = 0; k < 2; k++) {
        aredis_scan_opts co = AREDIS_SCAN_OPTS_INIT;
        co.count = k ? 1000 : 0;
        s = aredis_scan_new(c, &co);
        tracker_init(&t, "k:", NKEYS, AREDIS_SCAN_KEYS);
        batches[k] = drive_futures(s, &t);
        assert_all_seen(&t, k ? "COUNT 1000" : "default COUNT");
        tracker_free(&t);
        aredis_scan_free(s);
    }
    ts_log("batches for 11000 keys: %zu with the default COUNT, %zu with COUNT 1000", batches[0],
           batches[1]);
    assert_true(batches[0] > 300);
    assert_true(batches[1] < 60);
    assert_true(batches[1] * 5 < batches[0]);

    /* MATCH is binary safe: a pattern holding a NUL byte, with its length. */
    static const char k1[] = "bin\0x:1", k2[] = "bin\0x:2", k3[] = "bin\0y:1";
    const char *argv[] = {"MSET", k1, "v", k2, "v", k3, "v"};
    size_t lens[] = {4, sizeof k1 - 1, 1, sizeof k2 - 1, 1, sizeof k3 - 1, 1};
    aredis_future *f = aredis_future_argv(c, 7, argv, lens);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    static const char pat[] = "bin\0x:*";
    o.match = pat;
    o.matchlen = sizeof pat - 1;
    s = aredis_scan_new(c, &o);
    int seen1 = 0, seen2 = 0, others = 0;
    while (!aredis_scan_done(s)) {
        f = aredis_scan_next_future(s);
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        const aredis_reply *b;
        assert_int_equal(aredis_scan_batch(s, f, &b), AREDIS_ERR_OK);
        for (size_t i = 0; i < b->elements; i++) {
            const aredis_reply *e = b->element[i];
            if (e->len == sizeof k1 - 1 && !memcmp(e->str, k1, e->len))
                seen1++;
            else if (e->len == sizeof k2 - 1 && !memcmp(e->str, k2, e->len))
                seen2++;
            else
                others++;
        }
        aredis_future_release(f);
    }
    assert_true(seen1 >= 1 && seen2 >= 1);
    assert_int_equal(others, 0);
    aredis_scan_free(s);
    aredis_client_free(c);
}

/* TYPE: a mix of strings and hashes; each filter returns its own kind. */
static void test_type_filter(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    mset_keys(c, "t:%d", 0, 500);
    for (int i = 500; i < 1000; i++)
        aredis_command(c, NULL, NULL, "HSET t:%d f v", i);
    ts_cmd_ok(c, "SET t:last x"); /* replies in order: the HSETs are done */

    static const char *const types[] = {"string", "hash"};
    for (int k = 0; k < 2; k++) {
        aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
        o.type = types[k];
        o.match = "t:*";
        aredis_scan *s = aredis_scan_new(c, &o);
        assert_non_null(s);
        tracker t;
        tracker_init(&t, "t:", 1000, AREDIS_SCAN_KEYS);
        run r = {.t = &t};
        drive_each(s, &r);
        assert_int_equal(r.code, AREDIS_ERR_OK);
        assert_true(aredis_scan_done(s));
        /* strings: t:0..t:499 and t:last; hashes: t:500..t:999. */
        for (size_t i = 0; i < 1000; i++)
            if ((t.hits[i] != 0) != ((i >= 500) == (k == 1)))
                fail_msg("TYPE %s: t:%zu %s", types[k], i, t.hits[i] ? "returned" : "missed");
        assert_int_equal(t.others, k == 0 ? 1 : 0);
        ts_log("TYPE %s: %zu keys", types[k], t.elements);
        tracker_free(&t);
        aredis_scan_free(s);
    }
    aredis_client_free(c);
}

/* ---- HSCAN, SSCAN, ZSCAN ---------------------------------------------------- */

static void test_collections(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    static const struct {
        aredis_scan_kind kind;
        const char *key, *prefix;
    } cases[] = {
        {AREDIS_SCAN_HASH, "big:h", "f:"},
        {AREDIS_SCAN_SET, "big:s", "m:"},
        {AREDIS_SCAN_ZSET, "big:z", "m:"},
    };
    for (size_t k = 0; k < 3; k++) {
        fill_collection(c, cases[k].kind, cases[k].key, NCOLL);
        /* Each style once per kind: walk, batch callbacks, futures. */
        for (int style = 0; style < 3; style++) {
            aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
            o.kind = cases[k].kind;
            o.key = cases[k].key;
            aredis_scan *s = aredis_scan_new(c, &o);
            assert_non_null(s);
            tracker t;
            tracker_init(&t, cases[k].prefix, NCOLL, cases[k].kind);
            run r = {.t = &t};
            size_t batches;
            if (style == 0) {
                drive_each(s, &r);
                assert_int_equal(r.code, AREDIS_ERR_OK);
                batches = (size_t)aredis_scan_batches(s);
            } else if (style == 1) {
                drive_callbacks(s, &r);
                assert_int_equal(r.code, AREDIS_ERR_OK);
                batches = r.batches;
            } else {
                batches = drive_futures(s, &t);
            }
            char what[64];
            snprintf(what, sizeof what, "%s %s, style %d",
                     cases[k].kind == AREDIS_SCAN_HASH  ? "HSCAN"
                     : cases[k].kind == AREDIS_SCAN_SET ? "SSCAN"
                                                        : "ZSCAN",
                     cases[k].key, style);
            assert_int_equal(t.others, 0);
            assert_all_seen(&t, what);
            assert_true(batches > 1); /* a real multi-batch scan, not one listpack */
            tracker_free(&t);
            aredis_scan_free(s);
        }
    }
    aredis_client_free(c);
}

/* HSCAN of a string is a server error for that batch; nothing moves. */
static void test_server_error(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    ts_cmd_ok(c, "SET str x");
    aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
    o.kind = AREDIS_SCAN_HASH;
    o.key = "str";
    aredis_scan *s = aredis_scan_new(c, &o);
    run r = {0};
    drive_callbacks(s, &r);
    assert_int_equal(r.code, AREDIS_ERR_SERVER);
    assert_non_null(strstr(r.detail, "WRONGTYPE"));
    assert_false(aredis_scan_done(s));
    assert_string_equal(aredis_scan_cursor(s), "0");
    assert_int_equal(aredis_scan_batches(s), 0);
    aredis_future *f = aredis_scan_next_future(s);
    assert_int_equal(aredis_await(f), AREDIS_ERR_SERVER);
    const aredis_reply *b;
    assert_int_equal(aredis_scan_batch(s, f, &b), AREDIS_ERR_SERVER);
    assert_null(b);
    aredis_future_release(f);
    aredis_scan_free(s);
    aredis_client_free(c);
}

/* ---- Changes during the scan ---------------------------------------------- */

/* Every other element: add a new key and delete a doomed one (the table
 * grows and rehashes under the scan). */
static void mutate(run *r, aredis_scan *s) {
    int *n = r->ctx;
    if (r->elements % 2) return;
    if (*n < 5000) aredis_command(aredis_scan_client(s), NULL, NULL, "SET new:%d v", *n);
    if (*n < 2000) aredis_command(aredis_scan_client(s), NULL, NULL, "DEL doomed:%d", *n);
    ++*n;
}

static void test_changes_during_scan(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    mset_keys(c, "stay:%d", 0, NKEYS);
    mset_keys(c, "doomed:%d", 0, 2000);
    aredis_scan *s = aredis_scan_new(c, NULL);
    tracker t;
    tracker_init(&t, "stay:", NKEYS, AREDIS_SCAN_KEYS);
    int n = 0;
    run r = {.t = &t, .hook = mutate, .ctx = &n};
    drive_each(s, &r);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_true(aredis_scan_done(s));
    ts_log("changes during the scan: %d rounds of SET new + DEL doomed", n);
    assert_true(n >= 2000);
    assert_all_seen(&t, "SCAN while adding 5000 and deleting 2000 keys");
    tracker_free(&t);
    aredis_scan_free(s);
    aredis_client_free(c);
}

/* ---- Reconnects ------------------------------------------------------------ */

/*
 * A client behind a proxy, with keys k:0..k:NKEYS-1 on the shared server;
 * a scan of them that has done a few batches. Then its connection is killed
 * (CLIENT KILL ID from another client) while the next batch is in flight,
 * its bytes swallowed by a blackholed proxy so that its reply is surely
 * lost. Returns the in-flight batch's future; *before is the cursor it
 * sent.
 */
typedef struct kill_rig {
    ts_proxy *px;
    aredis_client *c, *killer;
    conn_counters k;
    aredis_scan *s;
    tracker t;
    char before[32];
} kill_rig;

static aredis_future *kill_mid_scan(kill_rig *g, int proto, int reconnect) {
    g->px = ts_proxy_start("127.0.0.1", ts_server_port(g_srv));
    aredis_options o = ts_options(g_srv);
    o.port = ts_proxy_port(g->px);
    o.protocol = proto;
    o.reconnect = reconnect;
    o.reconnect_delay_ms = 20;
    cc_wire(&o, &g->k);
    g->c = ts_connect(g_loop, &o);
    g->killer = ts_client(g_loop, g_srv);
    ts_cmd_ok(g->killer, "FLUSHALL");
    mset_keys(g->killer, "k:%d", 0, NKEYS);

    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.count = 100;
    g->s = aredis_scan_new(g->c, &so);
    tracker_init(&g->t, "k:", NKEYS, AREDIS_SCAN_KEYS);
    for (int i = 0; i < 5; i++) {
        aredis_future *f = aredis_scan_next_future(g->s);
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        const aredis_reply *b;
        assert_int_equal(aredis_scan_batch(g->s, f, &b), AREDIS_ERR_OK);
        track_batch(&g->t, b);
        aredis_future_release(f);
    }
    assert_false(aredis_scan_done(g->s));
    snprintf(g->before, sizeof g->before, "%s", aredis_scan_cursor(g->s));
    assert_string_not_equal(g->before, "0");

    /* From here the server logs every command it runs, with its arguments. */
    ts_cmd_ok(g->killer, "CONFIG SET slowlog-max-len 1000");
    ts_cmd_ok(g->killer, "SLOWLOG RESET");
    ts_cmd_ok(g->killer, "CONFIG SET slowlog-log-slower-than 0");

    long long id = ts_client_id(g->c);
    ts_proxy_blackhole(g->px, 1);
    aredis_future *f = aredis_scan_next_future(g->s);
    assert_non_null(f);
    aredis_future *kill = ts_cmd(g->killer, "CLIENT KILL ID %lld", id); /* also sends the batch */
    assert_null(aredis_future_error(kill));
    assert_int_equal(aredis_future_reply(kill)->integer, 1);
    aredis_future_release(kill);
    assert_false(aredis_future_is_done(f));
    assert_string_equal(aredis_scan_cursor(g->s), g->before);
    ts_proxy_blackhole(g->px, 0); /* the client now sees its connection end */
    return f;
}

/* The SCAN commands the server ran since kill_mid_scan(): their cursors,
 * in order, in cursors[]. Returns how many. */
static size_t scans_logged(aredis_client *killer, char cursors[][32], size_t max) {
    ts_cmd_ok(killer, "CONFIG SET slowlog-log-slower-than 10000");
    aredis_future *f = ts_cmd(killer, "SLOWLOG GET 1000");
    assert_null(aredis_future_error(f));
    const aredis_reply *log = aredis_future_reply(f);
    size_t n = 0;
    for (size_t i = log->elements; i-- > 0;) { /* newest first: walk back */
        const aredis_reply *args = log->element[i]->element[3];
        if (args->elements >= 2 && strcmp(args->element[0]->str, "SCAN") == 0 && n < max)
            snprintf(cursors[n++], 32, "%s", args->element[1]->str);
    }
    aredis_future_release(f);
    return n;
}

static void kill_rig_finish(kill_rig *g) {
    tracker_free(&g->t);
    aredis_scan_free(g->s);
    aredis_client_free(g->c);
    aredis_client_free(g->killer);
    ts_proxy_stop(g->px);
}

/* The lost batch is sent again after the reconnect, with the same cursor,
 * and the scan still sees every key. */
static void test_reconnect_resends_batch(void **state) {
    kill_rig g;
    aredis_future *f = kill_mid_scan(&g, proto_of(state), 1);
    if (aredis_await(f) != AREDIS_ERR_OK)
        fail_msg("the batch in flight failed: %s", aredis_future_error(f)->detail);
    const aredis_reply *b;
    assert_int_equal(aredis_scan_batch(g.s, f, &b), AREDIS_ERR_OK);
    track_batch(&g.t, b);
    aredis_future_release(f);
    assert_int_equal(g.k.connects, 2);
    assert_true(g.k.disconnects >= 1);

    char cursors[8][32];
    size_t n = scans_logged(g.killer, cursors, 8);
    ts_log("cursor before the kill %s; SCANs the server ran after it: %zu, first with %s", g.before,
           n, n ? cursors[0] : "-");
    assert_int_equal(n, 1); /* the lost one never reached the server */
    assert_string_equal(cursors[0], g.before);

    drive_futures(g.s, &g.t);
    assert_all_seen(&g.t, "SCAN across a killed connection");
    kill_rig_finish(&g);
}

/* Reconnection off: the batch fails, the cursor stays; once connected
 * again, the next batch asks for the same place and the scan completes. */
static void test_failed_batch_keeps_cursor(void **state) {
    kill_rig g;
    aredis_future *f = kill_mid_scan(&g, proto_of(state), 0);
    aredis_err e = aredis_await(f);
    ts_log("batch in flight with reconnect off: %s (%s)", aredis_err_name(e),
           aredis_future_error(f) ? aredis_future_error(f)->detail : "");
    assert_true(aredis_err_is_connection(e));
    const aredis_reply *b;
    assert_int_equal(aredis_scan_batch(g.s, f, &b), e);
    aredis_future_release(f);
    assert_string_equal(aredis_scan_cursor(g.s), g.before);
    assert_false(aredis_scan_busy(g.s));

    /* Not connected: the next batch is refused at once, nothing runs. */
    run r = {0};
    assert_int_not_equal(aredis_scan_next(g.s, on_batch, &r), AREDIS_ERR_OK);
    ts_log("refused while disconnected: %s", aredis_call_error()->detail);
    assert_false(aredis_scan_busy(g.s));

    assert_int_equal(aredis_client_connect(g.c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(g.c, NULL, 0), AREDIS_ERR_OK);
    r.t = &g.t;
    drive_callbacks(g.s, &r);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_int_equal(r.calls, (int)r.batches);
    static char big[1024][32];
    size_t n = scans_logged(g.killer, big, 1024);
    assert_true(n >= 1);
    assert_string_equal(big[0], g.before);
    assert_all_seen(&g.t, "SCAN after a failed batch");
    kill_rig_finish(&g);
}

/* The scripted server's side of the handshake: HELLO 3, or RESP2's lone
 * PING. */
static void fake_handshake(ts_fake *fk, int proto) {
    if (proto == 3)
        ts_fake_hello3(fk);
    else
        ts_fake_reply(fk, "+PONG\r\n");
}

/* The lost batch is re-sent byte for byte: a scripted server that hangs up
 * after reading the second batch sees the same cursor twice. */
static void test_resend_same_bytes(void **state) {
    int proto = proto_of(state);
    ts_fake *fk = ts_fake_new();
    fake_handshake(fk, proto);
    ts_fake_reply(fk, "*2\r\n$2\r\n17\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    ts_fake_read_cmd(fk, 1);
    ts_fake_close(fk);
    ts_fake_next_conn(fk);
    fake_handshake(fk, proto);
    ts_fake_reply(fk, "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nc\r\n");
    ts_fake_wait_eof(fk, 5000);
    ts_fake_start(fk);

    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(fk);
    o.protocol = proto;
    o.reconnect_delay_ms = 10;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.match = "*";
    aredis_scan *s = aredis_scan_new(c, &so);
    run r = {0};
    assert_int_equal(aredis_scan_each(s, on_elem, on_done, &r), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &r.done, WAIT_MS));
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_int_equal(r.elements, 3);
    assert_true(aredis_scan_done(s));
    assert_int_equal(aredis_scan_batches(s), 2);
    aredis_scan_free(s);
    aredis_client_free(c);

    size_t len;
    char *got = ts_fake_received(fk, &len);
    static const char first[] = "*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$1\r\n*\r\n";
    static const char again[] = "*4\r\n$4\r\nSCAN\r\n$2\r\n17\r\n$5\r\nMATCH\r\n$1\r\n*\r\n";
    int n0 = 0, n17 = 0;
    for (const char *p = got; (p = memmem(p, len - (size_t)(p - got), "*4\r\n$4\r\nSCAN", 12));
         p++) {
        if (!strncmp(p, first, sizeof first - 1)) n0++;
        if (!strncmp(p, again, sizeof again - 1)) n17++;
    }
    free(got);
    assert_int_equal(n0, 1);
    assert_int_equal(n17, 2); /* lost with the first connection, then again */
    ts_fake_stop(fk);
}

/* A per-batch timeout: the batch fails with TIMEOUT, the cursor stays, and
 * the next batch (its late reply dropped by the client) goes on. */
static void test_batch_timeout(void **state) {
    (void)state;
    ts_proxy *px = ts_proxy_start("127.0.0.1", ts_server_port(g_srv));
    aredis_options o = ts_options(g_srv);
    o.port = ts_proxy_port(px);
    aredis_client *c = ts_connect(g_loop, &o);
    ts_cmd_ok(c, "FLUSHALL");
    mset_keys(c, "k:%d", 0, 1000);
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.timeout_ms = 100;
    aredis_scan *s = aredis_scan_new(c, &so);
    ts_proxy_delay(px, 400);
    aredis_future *f = aredis_scan_next_future(s);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_await(f), AREDIS_ERR_TIMEOUT);
    uint64_t took = ts_now_ms() - t0;
    aredis_future_release(f);
    ts_log("batch timed out after %llu ms", (unsigned long long)took);
    assert_true(took < 350);
    assert_string_equal(aredis_scan_cursor(s), "0");
    assert_int_equal(aredis_scan_batches(s), 0);
    ts_proxy_pass(px);
    tracker t;
    tracker_init(&t, "k:", 1000, AREDIS_SCAN_KEYS);
    drive_futures(s, &t);
    assert_all_seen(&t, "SCAN after a timed-out batch");
    tracker_free(&t);
    aredis_scan_free(s);
    aredis_client_free(c);
    ts_proxy_stop(px);
}

/* ---- Resuming, stopping -------------------------------------------------- */

/* A walk stopped by its element callback, resumed by batches by hand,
 * then by another iterator from its cursor: every key is seen but the rest
 * of the batch the walk stopped in, which the cursor is already past. */
static void test_stop_and_resume(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    mset_keys(c, "k:%d", 0, NKEYS);
    aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
    o.count = 50;

    /* The first batch, as a scan from 0 gives it (the keyspace is still). */
    aredis_scan *s = aredis_scan_new(c, &o);
    tracker first;
    tracker_init(&first, "k:", NKEYS, AREDIS_SCAN_KEYS);
    aredis_future *f = aredis_scan_next_future(s);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    const aredis_reply *b;
    assert_int_equal(aredis_scan_batch(s, f, &b), AREDIS_ERR_OK);
    track_batch(&first, b);
    aredis_future_release(f);
    aredis_scan_free(s);
    assert_true(first.elements > 7);

    s = aredis_scan_new(c, &o);
    tracker t;
    tracker_init(&t, "k:", NKEYS, AREDIS_SCAN_KEYS);
    run r = {.t = &t, .stop_after = 7};
    drive_each(s, &r);
    assert_int_equal(r.code, AREDIS_ERR_OK); /* a stop is not an error */
    assert_int_equal(r.elements, 7);
    assert_int_equal(aredis_scan_batches(s), 1);
    assert_false(aredis_scan_done(s));
    assert_false(aredis_scan_busy(s));

    for (int i = 0; i < 3; i++) {
        f = aredis_scan_next_future(s);
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        assert_int_equal(aredis_scan_batch(s, f, &b), AREDIS_ERR_OK);
        track_batch(&t, b);
        aredis_future_release(f);
    }
    /* Another iterator, from this one's cursor. */
    o.cursor = aredis_scan_cursor(s);
    aredis_scan *s2 = aredis_scan_new(c, &o);
    assert_non_null(s2);
    assert_string_equal(aredis_scan_cursor(s2), aredis_scan_cursor(s));
    aredis_scan_free(s);
    drive_futures(s2, &t);
    aredis_scan_free(s2);

    size_t missing = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.hits[i]) continue;
        missing++;
        if (!first.hits[i]) fail_msg("k:%zu missed, and not in the stopped batch", i);
    }
    ts_log("stopped after 7 of the first batch's %zu keys; %zu keys missed, all in its tail",
           first.elements, missing);
    assert_true(missing <= first.elements - 7);
    tracker_free(&first);
    tracker_free(&t);
    aredis_client_free(c);
}

/* ---- Freeing ------------------------------------------------------------- */

typedef struct free_probe {
    int calls, ok, cancelled;
    aredis_err code;       /* the last outcome */
    int accepted;          /* aredis_scan_next() from inside accepted */
    aredis_err next_in_cb; /* what aredis_scan_next() said from inside, last */
    int free_in_cb;        /* free the iterator from inside the callback */
    int free_at_elem;      /* free from inside the nth element callback */
    int elems;
} free_probe;

static void probe_outcome(free_probe *p, const aredis_error *err) {
    p->calls++;
    p->code = err ? err->code : AREDIS_ERR_OK;
    if (!err) p->ok++;
    if (err && err->code == AREDIS_ERR_CANCELLED) p->cancelled++;
}

static void probe_batch(aredis_scan *s, const aredis_reply *batch, const aredis_error *err,
                        void *data) {
    free_probe *p = data;
    assert_true((batch == NULL) == (err != NULL));
    probe_outcome(p, err);
    p->next_in_cb = aredis_scan_next(s, probe_batch, p);
    if (p->next_in_cb == AREDIS_ERR_OK) p->accepted++;
    if (p->free_in_cb) aredis_scan_free(s);
}

static int probe_elem(aredis_scan *s, const aredis_reply *e, const aredis_reply *v, void *data) {
    (void)e;
    (void)v;
    free_probe *p = data;
    if (++p->elems == p->free_at_elem) {
        aredis_scan_free(s);
        aredis_scan_free(s); /* twice: ignored */
    }
    return 0;
}

static void probe_done(aredis_scan *s, const aredis_error *err, void *data) {
    free_probe *p = data;
    probe_outcome(p, err);
    p->next_in_cb = aredis_scan_next(s, probe_batch, p);
    if (p->free_in_cb) aredis_scan_free(s);
}

static void test_free_in_flight(void **state) {
    aredis_client *c = client_proto(proto_of(state));
    mset_keys(c, "k:%d", 0, 1000);

    /* Batch callback: runs inside free with CANCELLED; the iterator refuses
     * new batches from there; the late reply is dropped by the client. */
    free_probe p = {0};
    aredis_scan *s = aredis_scan_new(c, NULL);
    assert_int_equal(aredis_scan_next(s, probe_batch, &p), AREDIS_ERR_OK);
    assert_int_equal(p.calls, 0);
    aredis_scan_free(s);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.cancelled, 1);
    assert_int_equal(p.next_in_cb, AREDIS_ERR_INVALID);
    ts_echo_tokens(c, "after-free-cb", 20, WAIT_MS, "a freed scan's batch");
    assert_int_equal(p.calls, 1);

    /* Future: fails with CANCELLED; the caller still releases it. */
    s = aredis_scan_new(c, NULL);
    aredis_future *f = aredis_scan_next_future(s);
    aredis_scan_free(s);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    ts_echo_tokens(c, "after-free-future", 20, WAIT_MS, "a freed scan's future");
    aredis_future_release(f);

    /* Walk: its done callback runs once, with CANCELLED. */
    memset(&p, 0, sizeof p);
    s = aredis_scan_new(c, NULL);
    assert_int_equal(aredis_scan_each(s, probe_elem, probe_done, &p), AREDIS_ERR_OK);
    aredis_scan_free(s);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.cancelled, 1);
    assert_int_equal(p.elems, 0);
    assert_int_equal(p.next_in_cb, AREDIS_ERR_INVALID);

    /* Freed from inside its batch callback, right after asking for the
     * next batch: that one is cancelled, nested, and the memory goes when
     * the outer callback returns. */
    memset(&p, 0, sizeof p);
    p.free_in_cb = 1;
    s = aredis_scan_new(c, NULL);
    assert_int_equal(aredis_scan_next(s, probe_batch, &p), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &p.calls, WAIT_MS));
    assert_int_equal(p.calls, 2);
    assert_int_equal(p.ok, 1);
    assert_int_equal(p.accepted, 1);                    /* the real batch's next() */
    assert_int_equal(p.cancelled, 1);                   /* ...cancelled by the free */
    assert_int_equal(p.next_in_cb, AREDIS_ERR_INVALID); /* being freed */
    ts_echo_tokens(c, "free-in-cb", 5, WAIT_MS, "a scan freed in its callback");
    assert_int_equal(p.calls, 2);

    /* Freed from inside an element callback: the walk ends CANCELLED. */
    memset(&p, 0, sizeof p);
    p.free_at_elem = 3;
    s = aredis_scan_new(c, NULL);
    assert_int_equal(aredis_scan_each(s, probe_elem, probe_done, &p), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &p.calls, WAIT_MS));
    ts_echo_tokens(c, "free-in-elem", 5, WAIT_MS, "a scan freed in an element callback");
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.elems, 3); /* nothing after the free */
    assert_int_equal(p.cancelled, 1);

    /* Freed from inside the done callback of a walk that completes. */
    memset(&p, 0, sizeof p);
    p.free_in_cb = 1;
    s = aredis_scan_new(c, NULL);
    assert_int_equal(aredis_scan_each(s, probe_elem, probe_done, &p), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &p.calls, WAIT_MS));
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.ok, 1);
    assert_true(p.elems >= 1000);
    assert_int_equal(p.next_in_cb, AREDIS_ERR_INVALID); /* complete */

    /* The client freed with a batch in flight: CANCELLED; then the scan. */
    memset(&p, 0, sizeof p);
    s = aredis_scan_new(c, NULL);
    assert_int_equal(aredis_scan_next(s, probe_batch, &p), AREDIS_ERR_OK);
    aredis_client_free(c);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.cancelled, 1);
    assert_int_equal(p.accepted, 0);
    assert_string_equal(aredis_scan_cursor(s), "0");
    aredis_scan_free(s);
}

/* ---- Malformed replies and refused options -------------------------------- */

static void test_malformed_replies(void **state) {
    int proto = proto_of(state);
    static const char *const bad[] = {
        "*2\r\n$3\r\nabc\r\n*0\r\n",                    /* cursor not a number */
        "*1\r\n$1\r\n0\r\n",                            /* one element */
        "*2\r\n$1\r\n5\r\n$1\r\nx\r\n",                 /* elements not an array */
        "*2\r\n$1\r\n5\r\n*1\r\n*0\r\n",                /* an element not a string */
        ":7\r\n",                                       /* not an array */
        "*2\r\n$21\r\n184467440737095516160\r\n*0\r\n", /* cursor past 64 bits */
        "*3\r\n$1\r\n0\r\n*0\r\n*0\r\n",                /* three elements */
        "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nf\r\n",           /* HSCAN: half a pair */
    };
    const size_t nbad = sizeof bad / sizeof bad[0];
    ts_fake *fk = ts_fake_new();
    fake_handshake(fk, proto);
    for (size_t i = 0; i < nbad; i++)
        ts_fake_reply(fk, bad[i]);
    ts_fake_reply(fk, "-ERR boom\r\n");
    /* Then good ones: SCAN done; HSCAN elements as a RESP3 map. */
    ts_fake_reply(fk, "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nz\r\n");
    ts_fake_reply(fk, "*2\r\n$2\r\n00\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    ts_fake_wait_eof(fk, 5000);
    ts_fake_start(fk);

    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(fk);
    o.protocol = proto;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.match = "a:*";
    so.count = 50;
    so.type = "hash";
    aredis_scan *s = aredis_scan_new(c, &so);
    aredis_scan_opts ho = AREDIS_SCAN_OPTS_INIT;
    ho.kind = AREDIS_SCAN_HASH;
    ho.key = "h";
    aredis_scan *hs = aredis_scan_new(c, &ho);

    for (size_t i = 0; i < nbad; i++) {
        aredis_scan *it = i == nbad - 1 ? hs : s;
        if (i % 2) { /* futures */
            aredis_future *f = aredis_scan_next_future(it);
            assert_int_equal(aredis_await(f), AREDIS_ERR_OK); /* the command itself worked */
            const aredis_reply *b;
            assert_int_equal(aredis_scan_batch(it, f, &b), AREDIS_ERR_PROTOCOL);
            assert_null(b);
            ts_log("reply %zu: %s", i, aredis_call_error()->detail);
            aredis_future_release(f);
        } else { /* callbacks */
            run r = {0};
            drive_callbacks(it, &r);
            assert_int_equal(r.code, AREDIS_ERR_PROTOCOL);
            ts_log("reply %zu: %s", i, r.detail);
        }
        assert_string_equal(aredis_scan_cursor(it), "0");
        assert_false(aredis_scan_done(it));
        assert_int_equal(aredis_scan_batches(it), 0);
    }
    run r = {0};
    drive_callbacks(s, &r);
    assert_int_equal(r.code, AREDIS_ERR_SERVER);
    assert_string_equal(aredis_scan_cursor(s), "0");

    tracker t;
    tracker_init(&t, "z", 1, AREDIS_SCAN_KEYS);
    drive_futures(s, &t);
    assert_int_equal(t.elements, 1);
    tracker_free(&t);

    memset(&r, 0, sizeof r);
    drive_each(hs, &r);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_int_equal(r.elements, 1); /* one pair */
    assert_true(aredis_scan_done(hs));
    assert_string_equal(aredis_scan_cursor(hs), "0");
    aredis_scan_free(s);
    aredis_scan_free(hs);
    aredis_client_free(c);

    /* Every SCAN carried MATCH, COUNT and TYPE, in that order. */
    size_t len;
    char *got = ts_fake_received(fk, &len);
    static const char want[] = "*8\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$3\r\na:*\r\n"
                               "$5\r\nCOUNT\r\n$2\r\n50\r\n$4\r\nTYPE\r\n$4\r\nhash\r\n";
    int n = 0;
    for (const char *p = got; (p = memmem(p, len - (size_t)(p - got), want, sizeof want - 1)); p++)
        n++;
    free(got);
    assert_int_equal(n, (int)nbad - 1 + 2);
    ts_fake_stop(fk);
}

static void test_invalid_options(void **state) {
    (void)state;
    aredis_client *c = client_proto(3);
    static const struct {
        aredis_scan_kind kind;
        const char *key, *match, *type, *cursor;
        size_t keylen, matchlen;
        const char *why;
    } bad[] = {
        {AREDIS_SCAN_HASH, "h", NULL, "hash", NULL, 0, 0, "TYPE"},
        {AREDIS_SCAN_SET, "s", NULL, "set", NULL, 0, 0, "TYPE"},
        {AREDIS_SCAN_ZSET, "z", NULL, "zset", NULL, 0, 0, "TYPE"},
        {AREDIS_SCAN_HASH, NULL, NULL, NULL, NULL, 0, 0, "need a key"},
        {AREDIS_SCAN_KEYS, "k", NULL, NULL, NULL, 0, 0, "takes none"},
        {AREDIS_SCAN_KEYS, NULL, NULL, NULL, NULL, 3, 0, "takes none"},
        {AREDIS_SCAN_KEYS, NULL, NULL, NULL, NULL, 0, 4, "matchlen"},
        {AREDIS_SCAN_KEYS, NULL, NULL, "", NULL, 0, 0, "empty TYPE"},
        {AREDIS_SCAN_KEYS, NULL, NULL, NULL, "12x", 0, 0, "cursor"},
        {AREDIS_SCAN_KEYS, NULL, NULL, NULL, "", 0, 0, "cursor"},
        {AREDIS_SCAN_KEYS, NULL, NULL, NULL, "-1", 0, 0, "cursor"},
        {AREDIS_SCAN_KEYS, NULL, NULL, NULL, "18446744073709551616", 0, 0, "cursor"},
        {(aredis_scan_kind)7, NULL, NULL, NULL, NULL, 0, 0, "kind"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
        o.kind = bad[i].kind;
        o.key = bad[i].key;
        o.keylen = bad[i].keylen;
        o.match = bad[i].match;
        o.matchlen = bad[i].matchlen;
        o.type = bad[i].type;
        o.cursor = bad[i].cursor;
        assert_null(aredis_scan_new(c, &o));
        assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
        if (!strstr(aredis_call_error()->detail, bad[i].why))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, aredis_call_error()->detail,
                     bad[i].why);
    }
    assert_null(aredis_scan_new(NULL, NULL));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);

    /* Valid edge cases: the largest cursor; TYPE with SCAN. */
    aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
    o.cursor = "18446744073709551615";
    o.type = "string";
    aredis_scan *s = aredis_scan_new(c, &o);
    assert_non_null(s);
    assert_string_equal(aredis_scan_cursor(s), "18446744073709551615");

    /* NULL arguments to the calls. */
    assert_int_equal(aredis_scan_next(s, NULL, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_scan_next(NULL, on_batch, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_scan_each(s, NULL, on_done, NULL), AREDIS_ERR_INVALID);
    assert_null(aredis_scan_next_future(NULL));
    const aredis_reply *b;
    assert_int_equal(aredis_scan_batch(s, NULL, &b), AREDIS_ERR_INVALID);
    assert_false(aredis_scan_busy(s));
    aredis_scan_set_data(s, &o);
    assert_ptr_equal(aredis_scan_get_data(s), &o);
    assert_ptr_equal(aredis_scan_client(s), c);
    aredis_scan_free(s);
    aredis_scan_free(NULL);

    /* A closed client refuses the batch: no callback, the reason said. */
    s = aredis_scan_new(c, NULL);
    aredis_client_close(c);
    run r = {0};
    assert_int_equal(aredis_scan_next(s, on_batch, &r), AREDIS_ERR_CLOSED);
    assert_non_null(strstr(aredis_call_error()->detail, "SCAN"));
    assert_null(aredis_scan_next_future(s));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_CLOSED);
    assert_int_equal(aredis_scan_each(s, on_elem, on_done, &r), AREDIS_ERR_CLOSED);
    assert_false(aredis_scan_busy(s));
    assert_int_equal(r.calls, 0);
    aredis_scan_free(s);
    aredis_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_CASE("scan_all_callbacks_resp3", test_scan_all_callbacks, k_resp3),
        TS_CASE("scan_all_callbacks_resp2", test_scan_all_callbacks, k_resp2),
        TS_CASE("scan_all_futures_resp3", test_scan_all_futures, k_resp3),
        TS_CASE("scan_all_futures_resp2", test_scan_all_futures, k_resp2),
        TS_CASE("match_and_count_resp3", test_match_and_count, k_resp3),
        TS_CASE("match_and_count_resp2", test_match_and_count, k_resp2),
        TS_CASE("type_filter_resp3", test_type_filter, k_resp3),
        TS_CASE("type_filter_resp2", test_type_filter, k_resp2),
        TS_CASE("collections_resp3", test_collections, k_resp3),
        TS_CASE("collections_resp2", test_collections, k_resp2),
        TS_CASE("server_error_resp3", test_server_error, k_resp3),
        TS_CASE("server_error_resp2", test_server_error, k_resp2),
        TS_CASE("changes_during_scan_resp3", test_changes_during_scan, k_resp3),
        TS_CASE("changes_during_scan_resp2", test_changes_during_scan, k_resp2),
        TS_CASE("reconnect_resends_batch_resp3", test_reconnect_resends_batch, k_resp3),
        TS_CASE("reconnect_resends_batch_resp2", test_reconnect_resends_batch, k_resp2),
        TS_CASE("failed_batch_keeps_cursor_resp3", test_failed_batch_keeps_cursor, k_resp3),
        TS_CASE("failed_batch_keeps_cursor_resp2", test_failed_batch_keeps_cursor, k_resp2),
        TS_CASE("resend_same_bytes_resp3", test_resend_same_bytes, k_resp3),
        TS_CASE("resend_same_bytes_resp2", test_resend_same_bytes, k_resp2),
        cmocka_unit_test(test_batch_timeout),
        TS_CASE("stop_and_resume_resp3", test_stop_and_resume, k_resp3),
        TS_CASE("free_in_flight_resp3", test_free_in_flight, k_resp3),
        TS_CASE("free_in_flight_resp2", test_free_in_flight, k_resp2),
        TS_CASE("malformed_replies_resp3", test_malformed_replies, k_resp3),
        TS_CASE("malformed_replies_resp2", test_malformed_replies, k_resp2),
        cmocka_unit_test(test_invalid_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
