/*
 * Client-side caching: this client's own writes are seen at once — plain
 * commands, DEL, HSET under HGETALL, EVAL, COPY, FLUSHDB, pipelines,
 * transactions, EXEC, a pool's other connection, a write no command table
 * knows (a renamed SET) — and the commands that would blind the cache
 * (CLIENT TRACKING, HELLO 2) are refused on every path, a refused batch
 * changing nothing; nothing is served or stored inside MULTI.
 */
#include "cache_common.h"

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
 * Two connections sharing a cache — a, and b behind a proxy that can delay
 * what b gets (its invalidations) — and a plain writer w; `key` set to
 * "old".
 */
typedef struct two_conns {
    aredis_client *w, *a, *b;
    aredis_cache *k;
    ts_proxy *px;
} two_conns;

static void two_conns_setup(two_conns *t, const char *key) {
    t->w = plain_client();
    fresh(t->w);
    ts_cmd_ok(t->w, "SET %s old", key);
    t->k = cache_new(1u << 20, 0, NULL);
    t->px = ts_proxy_start(ts_server_host(g_srv), ts_server_port(g_srv));
    t->a = cached_client(t->k);
    aredis_options ob = ts_options(g_srv);
    ob.port = ts_proxy_port(t->px);
    ob.cache = t->k;
    t->b = ts_connect(g_loop, &ob);
}

static void two_conns_teardown(two_conns *t) {
    aredis_client_free(t->a);
    aredis_client_free(t->b);
    ts_proxy_stop(t->px);
    aredis_client_free(t->w);
    aredis_cache_free(t->k);
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
    two_conns t;
    two_conns_setup(&t, "oo:k");
    aredis_client *w = t.w, *a = t.a, *b = t.b;
    aredis_cache *k = t.k;
    ts_proxy *px = t.px;

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

    two_conns_teardown(&t);
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
    two_conns t;
    two_conns_setup(&t, "ex:k");
    aredis_client *w = t.w, *a = t.a, *b = t.b;
    aredis_cache *k = t.k;
    ts_proxy *px = t.px;

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

    two_conns_teardown(&t);
}

/*
 * The same with a pipeline: its SET waits behind a BLPOP on the server
 * while the other connection reads (and stores) the old value; once the
 * pipeline is answered, a read must see the new value.
 */
static void test_own_write_pipeline_other_connection(void **state) {
    (void)state;
    two_conns t;
    two_conns_setup(&t, "pp:k");
    aredis_client *w = t.w, *a = t.a, *b = t.b;
    aredis_cache *k = t.k;
    ts_proxy *px = t.px;

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

    two_conns_teardown(&t);
}

/*
 * The same with a transaction (aredis/tx.h): its EXEC waits on the server
 * behind a BLPOP of the same connection while the other connection reads.
 */
static void test_own_write_tx_other_connection(void **state) {
    (void)state;
    two_conns t;
    two_conns_setup(&t, "tx:k");
    aredis_client *w = t.w, *a = t.a, *b = t.b;
    aredis_cache *k = t.k;
    ts_proxy *px = t.px;

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

    two_conns_teardown(&t);
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
        TS_LOOP_CASE(test_own_writes),
        TS_LOOP_CASE(test_own_write_pool),
        TS_LOOP_CASE(test_own_write_other_connection),
        TS_LOOP_CASE(test_own_write_exec_other_connection),
        TS_LOOP_CASE(test_own_write_pipeline_other_connection),
        TS_LOOP_CASE(test_own_write_tx_other_connection),
        TS_LOOP_CASE(test_unknown_write_empties),
        TS_LOOP_CASE(test_multi_not_served),
        TS_LOOP_CASE(test_tracking_commands_refused),
        TS_LOOP_CASE(test_tracking_off_refused_in_batches),
        TS_LOOP_CASE(test_refused_batch_changes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
