/*
 * Client-side caching and databases: entries kept per database, also
 * after a refused or discarded SELECT, a SELECT that timed out (it may
 * still run), one issued while reconnecting across a failed attempt, and
 * one that crossed a failed attempt and then timed out.
 */
#include "cache_common.h"

/* Plain clients on databases 0 and 3 of s (emptied first when `fresh_all`),
 * with `key` set to v0 in one and v3 in the other. */
static void two_dbs(const ts_server *s, int fresh_all, const char *key, const char *v0,
                    const char *v3, aredis_client **w0, aredis_client **w3) {
    *w0 = ts_client(g_loop, s);
    if (fresh_all) fresh(*w0);
    aredis_options o3 = ts_options(s);
    o3.db = 3;
    *w3 = ts_connect(g_loop, &o3);
    ts_cmd_ok(*w0, "SET %s %s", key, v0);
    ts_cmd_ok(*w3, "SET %s %s", key, v3);
}

static void test_databases_separate(void **state) {
    (void)state;
    aredis_client *w0, *w3;
    two_dbs(g_srv, 1, "db:k", "zero", "three", &w0, &w3);
    aredis_cache *k = cache_new(1u << 20, 0, NULL);
    aredis_client *c0 = cached_client(k);
    aredis_options o3 = ts_options(g_srv);
    o3.db = 3;
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
    aredis_client *w0, *w3;
    two_dbs(g_srv, 1, "rsel:k", "zero", "three", &w0, &w3);
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
    aredis_client *w0, *w3;
    two_dbs(g_srv, 1, "dsel:k", "zero", "three", &w0, &w3);
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
    aredis_client *w0, *w3;
    two_dbs(g_srv, 1, "sto:k", "db0", "db3", &w0, &w3);
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
    aredis_client *w0, *w3;
    two_dbs(srv, 0, "srx:k", "db0", "db3", &w0, &w3);
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
    aredis_client *w0, *w3;
    two_dbs(srv, 0, "pk", "db0", "db3", &w0, &w3);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_databases_separate),
        TS_LOOP_CASE(test_refused_select_keeps_db),
        TS_LOOP_CASE(test_discarded_select_keeps_db),
        TS_LOOP_CASE(test_select_timeout_db_unknown),
        TS_LOOP_CASE(test_select_across_reconnect),
        TS_LOOP_CASE(test_select_timeout_after_reconnect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
