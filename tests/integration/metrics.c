/*
 * The metrics of aredis/observe.h against a real server: the snapshot's
 * operation counts equal the operations performed (by name and error type:
 * replies, error replies, timeouts), histograms cumulative and consistent;
 * per server bytes equal the client's own counters, connects, reconnect
 * attempts after a restart, timeouts; a freed client's counts stay; detach
 * stops counting; the metrics freed while attached (the clients go on);
 * pool gauges equal the pool's stats, its waits and timeouts counted. The
 * Prometheus text (format 0.0.4) parsed back by a parser of this file: its
 * syntax, families, histogram series, escaped label values, and every value
 * equal to the snapshot's; never a password in it.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/observe.h"
#include "counters.h"
#include "ts.h"

static const char *const k_debug_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv;
/* The running case's loop (TS_LOOP_CASE). */
#define g_loop ts_case_loop()

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_debug_conf, 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ts_server_stop(g_srv);
    return 0;
}

/* The name error.type has for an aredis outcome ("TIMEOUT"): the header's
 * attribute table, aredis_err_name() without "AREDIS_ERR_". */
static const char *err_type(aredis_err e) {
    const char *n = aredis_err_name(e);
    return strncmp(n, "AREDIS_ERR_", 11) == 0 ? n + 11 : n;
}

/* ---- Clients and commands ---------------------------------------------------- */

/* A client with its metrics attached before it does anything. */
static aredis_client *metered(aredis_options *o, aredis_metrics *m) {
    aredis_client *c = aredis_client_new(g_loop, o);
    if (!c) fail_msg("aredis_client_new: %s", aredis_call_error()->detail);
    assert_int_equal(aredis_client_set_metrics(c, m), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    char detail[300];
    aredis_err e = ts_await_ready(c, detail, sizeof detail);
    if (e != AREDIS_ERR_OK) fail_msg("connect: %s: %s", aredis_err_name(e), detail);
    return c;
}

typedef struct done_count {
    size_t n;
    size_t failed;
} done_count;

static void on_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    done_count *d = data;
    d->n++;
    if (err) d->failed++;
}

/* Issue n commands of one format (callback form) and wait for all. */
static void run_n(aredis_client *c, const aredis_cmd_opts *o, int n, const char *fmt, ...) {
    done_count d = {0, 0};
    for (int i = 0; i < n; i++) {
        va_list ap;
        va_start(ap, fmt);
        aredis_err e = aredis_vcommand_ex(c, o, on_done, &d, fmt, ap);
        va_end(ap);
        if (e != AREDIS_ERR_OK) fail_msg("%s refused: %s", fmt, aredis_call_error()->detail);
    }
    if (!ts_wait_count(g_loop, &d.n, (size_t)n, 10000))
        fail_msg("%s: %zu of %d replies", fmt, d.n, n);
}

/* Everything owed arrives before PONG. */
static void settle(aredis_client *c) { run_n(c, NULL, 1, "PING"); }

static aredis_client_stats stats_of(aredis_client *c) {
    aredis_client_stats s;
    aredis_client_get_stats(c, &s);
    return s;
}

/* Run the loop until c has written more than `before` bytes. */
static void wait_written(aredis_client *c, uint64_t before) {
    assert_true(ts_wait_bytes_out(g_loop, c, before, 10000));
}

/* ---- Snapshot checks ----------------------------------------------------------- */

static void check_hist(const aredis_histogram *h, const char *what) {
    for (int i = 1; i <= AREDIS_METRICS_BOUNDS; i++)
        if (h->buckets[i] < h->buckets[i - 1])
            fail_msg("%s: bucket %d (%" PRIu64 ") below bucket %d (%" PRIu64 "): not cumulative",
                     what, i, h->buckets[i], i - 1, h->buckets[i - 1]);
    if (h->buckets[AREDIS_METRICS_BOUNDS] != h->count)
        fail_msg("%s: +Inf bucket %" PRIu64 ", count %" PRIu64, what,
                 h->buckets[AREDIS_METRICS_BOUNDS], h->count);
    if (h->count && !(h->sum_seconds > 0))
        fail_msg("%s: %" PRIu64 " observations summing to %g s", what, h->count, h->sum_seconds);
    if (!(h->sum_seconds >= 0) || !isfinite(h->sum_seconds))
        fail_msg("%s: sum %g", what, h->sum_seconds);
    /* The sum lies between what the buckets allow. */
    double hi = 0;
    for (int i = 0; i < AREDIS_METRICS_BOUNDS; i++)
        hi += (double)(h->buckets[i] - (i ? h->buckets[i - 1] : 0)) * aredis_metrics_bounds[i];
    if (h->buckets[AREDIS_METRICS_BOUNDS] == h->buckets[AREDIS_METRICS_BOUNDS - 1] &&
        h->sum_seconds > hi * 1.000001 + 1e-9)
        fail_msg("%s: sum %g s above what the buckets allow (%g)", what, h->sum_seconds, hi);
}

static int cmp_null_first(const char *a, const char *b) {
    if (!a || !b) return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

/* Every entry consistent; sorted by server, name; no entry twice. */
static void check_snapshot(const aredis_metrics_snapshot *s) {
    assert_non_null(s);
    for (size_t i = 0; i < s->n_ops; i++) {
        const aredis_metrics_op *o = &s->ops[i];
        assert_non_null(o->name);
        assert_non_null(o->server_address);
        char what[300];
        snprintf(what, sizeof what, "%s %s:%d %s", o->name, o->server_address, o->server_port,
                 o->error_type ? o->error_type : "ok");
        check_hist(&o->duration, what);
        if (o->duration.count == 0) fail_msg("%s: an entry with no operation", what);
        if (i == 0) continue;
        const aredis_metrics_op *p = &s->ops[i - 1];
        int c = strcmp(p->server_address, o->server_address);
        if (!c) c = (p->server_port > o->server_port) - (p->server_port < o->server_port);
        if (!c) c = strcmp(p->name, o->name);
        if (c > 0)
            fail_msg("ops not sorted: %s:%d %s before %s", p->server_address, p->server_port,
                     p->name, what);
        if (!c && !cmp_null_first(p->error_type, o->error_type))
            fail_msg("%s: twice in the snapshot", what);
    }
    for (size_t i = 0; i < s->n_servers; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->servers[i].server_address, s->servers[j].server_address) &&
                s->servers[i].server_port == s->servers[j].server_port)
                fail_msg("server %s:%d twice", s->servers[i].server_address,
                         s->servers[i].server_port);
    for (size_t i = 0; i < s->n_pools; i++)
        check_hist(&s->pools[i].wait, s->pools[i].pool_name);
}

static const aredis_metrics_op *find_op(const aredis_metrics_snapshot *s, int port,
                                        const char *name, const char *error_type) {
    const aredis_metrics_op *hit = NULL;
    for (size_t i = 0; i < s->n_ops; i++) {
        const aredis_metrics_op *o = &s->ops[i];
        if (o->server_port != port || strcmp(o->name, name) != 0 ||
            cmp_null_first(o->error_type, error_type) != 0)
            continue;
        if (hit) fail_msg("%s %s twice", name, error_type ? error_type : "ok");
        hit = o;
    }
    return hit;
}

static uint64_t op_count(const aredis_metrics_snapshot *s, int port, const char *name,
                         const char *error_type) {
    const aredis_metrics_op *o = find_op(s, port, name, error_type);
    return o ? o->duration.count : 0;
}

static void dump(const aredis_metrics_snapshot *s) {
    for (size_t i = 0; i < s->n_ops; i++)
        ts_log("op %s:%d %s %s count %" PRIu64 " sum %g", s->ops[i].server_address,
               s->ops[i].server_port, s->ops[i].name,
               s->ops[i].error_type ? s->ops[i].error_type : "ok", s->ops[i].duration.count,
               s->ops[i].duration.sum_seconds);
    for (size_t i = 0; i < s->n_servers; i++) {
        const aredis_metrics_server *v = &s->servers[i];
        ts_log("server %s:%d out %" PRIu64 " in %" PRIu64 " connects %" PRIu64 " failures %" PRIu64
               " reconnects %" PRIu64 " timeouts %" PRIu64,
               v->server_address, v->server_port, v->bytes_out, v->bytes_in, v->connects,
               v->connect_failures, v->reconnect_attempts, v->timeouts);
    }
}

static void expect_count(const aredis_metrics_snapshot *s, int port, const char *name,
                         const char *error_type, uint64_t want) {
    uint64_t n = op_count(s, port, name, error_type);
    if (n != want) {
        dump(s);
        fail_msg("%s %s: %" PRIu64 " operations counted, %" PRIu64 " performed", name,
                 error_type ? error_type : "ok", n, want);
    }
}

static uint64_t total_ops(const aredis_metrics_snapshot *s) {
    uint64_t n = 0;
    for (size_t i = 0; i < s->n_ops; i++)
        n += s->ops[i].duration.count;
    return n;
}

static const aredis_metrics_server *find_server(const aredis_metrics_snapshot *s, int port) {
    for (size_t i = 0; i < s->n_servers; i++)
        if (s->servers[i].server_port == port) return &s->servers[i];
    dump(s);
    fail_msg("no server entry for port %d", port);
    return NULL;
}

static void expect_bytes(const aredis_metrics_server *v, const aredis_client_stats *st) {
    if (v->bytes_out != st->bytes_out || v->bytes_in != st->bytes_in)
        fail_msg("metrics: %" PRIu64 " bytes out, %" PRIu64 " in; the client's stats: %" PRIu64
                 " out, %" PRIu64 " in",
                 v->bytes_out, v->bytes_in, st->bytes_out, st->bytes_in);
}

/* ---- Counts -------------------------------------------------------------------- */

static void test_op_counts_exact(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    aredis_options o = ts_options(g_srv);
    aredis_client *c = metered(&o, m);
    int port = ts_server_port(g_srv);

    const int N = 7, M = 3, K = 2, T = 2;
    run_n(c, NULL, M, "SET mx:str %s", "text");
    run_n(c, NULL, N, "GET mx:str");
    run_n(c, NULL, K, "LPUSH mx:str x");
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 50;
    run_n(c, &co, T, "DEBUG SLEEP 0.2");
    settle(c); /* the late replies of DEBUG SLEEP are in */

    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "GET", NULL, (uint64_t)N);
    expect_count(s, port, "SET", NULL, (uint64_t)M);
    expect_count(s, port, "LPUSH", "WRONGTYPE", (uint64_t)K);
    expect_count(s, port, "DEBUG", err_type(AREDIS_ERR_TIMEOUT), (uint64_t)T);
    expect_count(s, port, "PING", NULL, 1);
    expect_count(s, port, "LPUSH", NULL, 0);
    expect_count(s, port, "DEBUG", NULL, 0); /* the late replies count nothing */
    if (total_ops(s) != (uint64_t)(N + M + K + T + 1) || s->n_ops != 5) {
        dump(s);
        fail_msg("%" PRIu64 " operations in %zu entries; %d performed (the handshake is none)",
                 total_ops(s), s->n_ops, N + M + K + T + 1);
    }
    const aredis_metrics_op *d = find_op(s, port, "DEBUG", err_type(AREDIS_ERR_TIMEOUT));
    assert_string_equal(d->server_address, "127.0.0.1");
    /* Each took at least its 50 ms timeout. */
    assert_int_equal(d->duration.buckets[2], 0); /* <= 10 ms */
    assert_true(d->duration.sum_seconds >= 0.09);
    assert_true(d->duration.sum_seconds < 2.0);
    const aredis_metrics_op *g = find_op(s, port, "GET", NULL);
    assert_true(g->duration.sum_seconds < 5.0);

    const aredis_metrics_server *v = find_server(s, port);
    assert_int_equal(s->n_servers, 1);
    assert_string_equal(v->server_address, "127.0.0.1");
    aredis_client_stats st = stats_of(c);
    expect_bytes(v, &st);
    assert_true(v->bytes_out > 0 && v->bytes_in > 0);
    assert_int_equal(v->connects, 1);
    assert_int_equal(v->connect_failures, 0);
    assert_int_equal(v->reconnect_attempts, 0);
    assert_int_equal(v->timeouts, (uint64_t)T);
    assert_int_equal(st.timeouts, (uint64_t)T);
    assert_int_equal(s->n_pools, 0);
    aredis_metrics_snapshot_free(s);

    /* Pipelines and transactions are one operation each. */
    aredis_pipeline *p = aredis_pipeline_new(c);
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_pipeline_command(p, "GET mx:%d", i), AREDIS_ERR_OK);
    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    aredis_pipeline_free(p);
    aredis_tx *tx = aredis_tx_new(c);
    assert_int_equal(aredis_tx_queue(tx, "INCR mx:n"), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "INCR mx:n"), AREDIS_ERR_OK);
    f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    aredis_tx_free(tx);
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "BATCH GET", NULL, 1);
    expect_count(s, port, "MULTI", NULL, 1);
    expect_count(s, port, "GET", NULL, (uint64_t)N);
    expect_count(s, port, "INCR", NULL, 0);
    st = stats_of(c);
    expect_bytes(find_server(s, port), &st);
    aredis_metrics_snapshot_free(s);

    aredis_client_free(c);
    aredis_metrics_free(m);
}

/*
 * Commands issued from reply callbacks, as a busy application does: the
 * client counts a run of one name on its own fast path (client/feature.h)
 * and every other shape the slow way. Names that fit the fast path and
 * names that do not (a 1-argument PING is too short, HINCRBYFLOAT too
 * long), case kept apart, switching back and forth; and the metrics
 * detached and attached again in the middle of the chain: every count
 * exact.
 */
static const char *const k_chain[] = {
    "GET mx:c",
    "GET mx:c",
    "PING",
    "PING",
    "GET mx:c",
    "ECHO hello",
    "HINCRBYFLOAT mx:h f 1.5",
    "HINCRBYFLOAT mx:h f 1",
    "get mx:c",
    "GET mx:c",
    "SET mx:c v",
    "PING",
    "SET mx:c w",
};
#define CHAIN_N (sizeof k_chain / sizeof *k_chain)

typedef struct chain {
    aredis_metrics *m;
    size_t issued, done, rounds, detach_at, attach_at;
    size_t counted[CHAIN_N]; /* per entry of k_chain: issued while attached */
    int attached;
} chain;

static void chain_next(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    chain *ch = data;
    if (err) fail_msg("chain: %s", err->detail);
    ch->done++;
    if (ch->issued == ch->rounds * CHAIN_N) return;
    if (ch->issued == ch->detach_at) {
        assert_int_equal(aredis_client_set_metrics(c, NULL), AREDIS_ERR_OK);
        ch->attached = 0;
    }
    if (ch->issued == ch->attach_at) {
        assert_int_equal(aredis_client_set_metrics(c, ch->m), AREDIS_ERR_OK);
        ch->attached = 1;
    }
    size_t i = ch->issued++ % CHAIN_N;
    if (ch->attached) ch->counted[i]++;
    if (aredis_command(c, chain_next, ch, k_chain[i]) != AREDIS_ERR_OK)
        fail_msg("chain: %s refused: %s", k_chain[i], aredis_call_error()->detail);
}

static void test_counts_from_callbacks(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    aredis_options o = ts_options(g_srv);
    aredis_client *c = metered(&o, m);
    int port = ts_server_port(g_srv);
    run_n(c, NULL, 1, "DEL mx:h");

    chain ch = {0};
    ch.m = m;
    ch.rounds = 40;
    ch.attached = 1;
    ch.detach_at = 7 * CHAIN_N + 3;
    ch.attach_at = 11 * CHAIN_N + 5;
    /* The first from outside a callback (counted the slow way too). */
    ch.counted[0]++;
    ch.issued = 1;
    assert_int_equal(aredis_command(c, chain_next, &ch, k_chain[0]), AREDIS_ERR_OK);
    if (!ts_wait_count(g_loop, &ch.done, ch.rounds * CHAIN_N, 10000))
        fail_msg("chain: %zu of %zu replies", ch.done, ch.rounds * CHAIN_N);

    /* What each name should count: the chain's entries, by name as given. */
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    const char *names[] = {"GET", "PING", "ECHO", "HINCRBYFLOAT", "get", "SET", "DEL"};
    uint64_t total = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        uint64_t want = strcmp(names[k], "DEL") == 0 ? 1 : 0;
        for (size_t i = 0; i < CHAIN_N; i++) {
            size_t nl = strcspn(k_chain[i], " ");
            if (strlen(names[k]) == nl && strncmp(names[k], k_chain[i], nl) == 0)
                want += ch.counted[i];
        }
        expect_count(s, port, names[k], NULL, want);
        total += want;
    }
    if (total_ops(s) != total) {
        dump(s);
        fail_msg("%" PRIu64 " operations counted, %" PRIu64 " expected", total_ops(s), total);
    }
    assert_true(total < ch.rounds * CHAIN_N + 1); /* the detached stretch counted nothing */
    aredis_metrics_snapshot_free(s);
    aredis_client_free(c);
    aredis_metrics_free(m);
}

typedef struct wait_connects {
    const conn_counters *k;
    int n;
} wait_connects;

static int connects_reached(const void *p) {
    const wait_connects *w = p;
    return w->k->connects >= w->n;
}

static void test_reconnect_attempts(void **state) {
    (void)state;
    ts_server *srv = ts_server_start(NULL, 0);
    aredis_metrics *m = aredis_metrics_new();
    aredis_options o = ts_options(srv);
    o.reconnect_delay_ms = 50;
    o.max_reconnect_delay_ms = 200;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = metered(&o, m);
    run_n(c, NULL, 2, "SET mx:r %s", "v");
    ts_server_restart(srv);
    wait_connects w = {&k, 2};
    assert_true(ts_wait_until(g_loop, connects_reached, &w, 20000));
    run_n(c, NULL, 1, "GET mx:r");
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    const aredis_metrics_server *v = find_server(s, ts_server_port(srv));
    if (v->reconnect_attempts < 1 || v->reconnect_attempts != (uint64_t)k.attempts) {
        dump(s);
        fail_msg("reconnect_attempts %" PRIu64 ", the client scheduled %d", v->reconnect_attempts,
                 k.attempts);
    }
    assert_int_equal(v->connects, 2);
    assert_int_equal(v->connects, stats_of(c).connects);
    aredis_client_stats st = stats_of(c);
    expect_bytes(v, &st);
    expect_count(s, ts_server_port(srv), "SET", NULL, 2);
    expect_count(s, ts_server_port(srv), "GET", NULL, 1);
    aredis_metrics_snapshot_free(s);
    aredis_client_free(c);
    aredis_metrics_free(m);
    ts_server_stop(srv);
}

static void test_connect_failures(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    aredis_options o = ts_options(g_srv);
    o.port = ts_dead_port();
    o.reconnect = 0;
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_int_equal(aredis_client_set_metrics(c, m), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_not_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    const aredis_metrics_server *v = find_server(s, o.port);
    assert_int_equal(v->connect_failures, 1);
    assert_int_equal(v->connects, 0);
    aredis_metrics_snapshot_free(s);
    aredis_client_free(c);
    aredis_metrics_free(m);
}

/* Attached while its connect is under way: that connect counts. */
static void test_attached_while_connecting(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_set_metrics(c, m), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    run_n(c, NULL, 2, "GET mx:w");
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, ts_server_port(g_srv), "GET", NULL, 2);
    const aredis_metrics_server *v = find_server(s, ts_server_port(g_srv));
    if (v->connects != 1) fail_msg("attached while connecting: connects %" PRIu64, v->connects);
    aredis_client_stats st = stats_of(c);
    expect_bytes(v, &st);
    aredis_metrics_snapshot_free(s);
    aredis_client_free(c);
    aredis_metrics_free(m);
}

static void test_freed_client_keeps_counts(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    aredis_options o = ts_options(g_srv);
    int port = ts_server_port(g_srv);
    aredis_client *c = metered(&o, m);
    run_n(c, NULL, 3, "GET mx:f");
    aredis_client_stats st1 = stats_of(c);
    aredis_client_free(c);
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "GET", NULL, 3);
    const aredis_metrics_server *v = find_server(s, port);
    assert_int_equal(v->connects, 1);
    assert_int_equal(v->bytes_out, st1.bytes_out);
    assert_true(v->bytes_in >= st1.bytes_in);
    aredis_metrics_snapshot_free(s);

    /* Freed with a command pending: it ended (CANCELLED) and counts. */
    aredis_client *cp = metered(&o, m);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_NO_TIMEOUT;
    done_count d = {0, 0};
    uint64_t out = stats_of(cp).bytes_out;
    assert_int_equal(aredis_command_ex(cp, &co, on_done, &d, "BLPOP mx:never 0"), AREDIS_ERR_OK);
    wait_written(cp, out); /* the BLPOP is on the wire */
    aredis_client_stats stp = stats_of(cp);
    aredis_client_free(cp);
    assert_int_equal(d.n, 1);
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "BLPOP", err_type(AREDIS_ERR_CANCELLED), 1);
    v = find_server(s, port);
    assert_int_equal(v->connects, 2);
    assert_int_equal(v->bytes_out, st1.bytes_out + stp.bytes_out);
    aredis_metrics_snapshot_free(s);
    st1.bytes_out += stp.bytes_out;
    st1.bytes_in += stp.bytes_in;

    /* Two clients on one server add up. */
    aredis_client *c2 = metered(&o, m);
    aredis_client *c3 = metered(&o, m);
    run_n(c2, NULL, 2, "GET mx:f");
    run_n(c3, NULL, 4, "GET mx:f");
    aredis_client_stats st2 = stats_of(c2), st3 = stats_of(c3);
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "GET", NULL, 9);
    v = find_server(s, port);
    assert_int_equal(v->connects, 4);
    assert_int_equal(v->bytes_out, st1.bytes_out + st2.bytes_out + st3.bytes_out);
    assert_int_equal(v->bytes_in, st1.bytes_in + st2.bytes_in + st3.bytes_in);
    aredis_metrics_snapshot_free(s);
    aredis_client_free(c2);
    aredis_client_free(c3);
    aredis_metrics_free(m);
}

static void test_detach_stops_counting(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    aredis_options o = ts_options(g_srv);
    int port = ts_server_port(g_srv);
    aredis_client *c = metered(&o, m);
    run_n(c, NULL, 2, "GET mx:d");
    aredis_client_stats before = stats_of(c);
    assert_int_equal(aredis_client_set_metrics(c, NULL), AREDIS_ERR_OK);
    run_n(c, NULL, 3, "GET mx:d");
    run_n(c, NULL, 1, "SET mx:d %s", "v");
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "GET", NULL, 2);
    expect_count(s, port, "SET", NULL, 0);
    expect_bytes(find_server(s, port), &before);
    aredis_metrics_snapshot_free(s);

    /* Attached to another: counts there from now on. */
    aredis_metrics *m2 = aredis_metrics_new();
    assert_int_equal(aredis_client_set_metrics(c, m2), AREDIS_ERR_OK);
    run_n(c, NULL, 1, "GET mx:d");
    s = aredis_metrics_snapshot_take(m2);
    check_snapshot(s);
    expect_count(s, port, "GET", NULL, 1);
    assert_int_equal(total_ops(s), 1);
    aredis_metrics_snapshot_free(s);
    s = aredis_metrics_snapshot_take(m);
    expect_count(s, port, "GET", NULL, 2);
    aredis_metrics_snapshot_free(s);
    aredis_client_free(c);
    aredis_metrics_free(m);
    aredis_metrics_free(m2);
}

/* Freed while attached to a client and a pool: they go on (ASan watches). */
static void test_metrics_freed_while_attached(void **state) {
    (void)state;
    aredis_metrics_free(NULL);
    aredis_metrics *m = aredis_metrics_new();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = metered(&o, m);
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    aredis_pool *pool = aredis_pool_new(g_loop, &po);
    assert_non_null(pool);
    assert_int_equal(aredis_pool_set_metrics(pool, m), AREDIS_ERR_OK);
    aredis_future *f = aredis_pool_future_command(pool, "GET mx:m");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    run_n(c, NULL, 2, "GET mx:m");
    /* One in flight as it goes. */
    done_count d = {0, 0};
    assert_int_equal(aredis_command(c, on_done, &d, "GET mx:m"), AREDIS_ERR_OK);
    aredis_metrics_free(m);
    assert_true(ts_wait_count(g_loop, &d.n, 1, 10000));
    run_n(c, NULL, 3, "SET mx:m %s", "v");
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 20;
    run_n(c, &co, 1, "DEBUG SLEEP 0.1");
    settle(c);
    f = aredis_pool_future_command(pool, "GET mx:m");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    /* A reconnect with nothing attached any more. */
    aredis_client *killer = ts_client(g_loop, g_srv);
    long long id = ts_client_id(c);
    f = ts_cmd(killer, "CLIENT KILL ID %lld", id);
    aredis_future_release(f);
    aredis_client_free(killer);
    run_n(c, NULL, 1, "PING");
    aredis_pool_free(pool);
    aredis_client_free(c);
}

/* ---- Pools ---------------------------------------------------------------------- */

/* The snapshot's pool entry matches the pool's stats. */
static const aredis_metrics_pool *expect_pool(const aredis_metrics_snapshot *s, aredis_pool *p,
                                              const char *name, size_t max) {
    aredis_pool_stats st;
    aredis_pool_get_stats(p, &st);
    assert_int_equal(s->n_pools, 1);
    const aredis_metrics_pool *q = &s->pools[0];
    assert_string_equal(q->pool_name, name);
    if (q->idle != st.idle || q->used != st.in_use || q->pending != st.waiting || q->max != max)
        fail_msg("pool gauges idle %zu used %zu pending %zu max %zu; its stats: idle %zu in_use "
                 "%zu waiting %zu, max %zu",
                 q->idle, q->used, q->pending, q->max, st.idle, st.in_use, st.waiting, max);
    assert_int_equal(q->timeouts, st.timeouts);
    return q;
}

static void test_pool_metrics(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    po.min_connections = 2;
    po.max_connections = 2;
    po.acquire_timeout_ms = 150;
    aredis_pool *p = aredis_pool_new(g_loop, &po);
    assert_non_null(p);
    assert_int_equal(aredis_pool_set_metrics(p, m), AREDIS_ERR_OK);
    assert_true(ts_wait_pool_idle(g_loop, p, 2, 10000));
    char name[64];
    int port = ts_server_port(g_srv);
    snprintf(name, sizeof name, "127.0.0.1:%d/0", port);

    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    const aredis_metrics_pool *q = expect_pool(s, p, name, 2);
    assert_int_equal(q->idle, 2);
    assert_int_equal(q->wait.count, 0);
    aredis_metrics_snapshot_free(s);

    /* Two found idle (no wait), a third waits. */
    ts_acquired g1 = {0}, g2 = {0}, g3 = {0}, g4 = {0};
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g1), AREDIS_ERR_OK);
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g2), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g2.calls, 10000));
    assert_true(ts_wait(g_loop, &g1.calls, 10000));
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g3), AREDIS_ERR_OK);
    run_n(g1.c, NULL, 2, "GET mx:pool");
    assert_int_equal(g3.calls, 0);
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    q = expect_pool(s, p, name, 2);
    assert_int_equal(q->used, 2);
    assert_int_equal(q->pending, 1);
    assert_int_equal(q->wait.count, 0);
    expect_count(s, port, "GET", NULL, 2); /* on an acquired connection */
    assert_int_equal(find_server(s, port)->connects, 2);
    aredis_metrics_snapshot_free(s);

    assert_int_equal(aredis_pool_release(p, g1.c), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g3.calls, 10000));
    assert_int_equal(g3.code, AREDIS_ERR_OK);
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    q = expect_pool(s, p, name, 2);
    assert_int_equal(q->wait.count, 1);
    assert_true(q->wait.sum_seconds > 0);
    assert_int_equal(q->timeouts, 0);
    aredis_metrics_snapshot_free(s);

    /* A wait that ends in the acquire timeout. */
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g4), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g4.calls, 10000));
    assert_int_equal(g4.code, AREDIS_ERR_TIMEOUT);
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    q = expect_pool(s, p, name, 2);
    assert_int_equal(q->timeouts, 1);
    ts_log("wait histogram after a timed-out wait: count %" PRIu64 " sum %g", q->wait.count,
           q->wait.sum_seconds);
    assert_true(q->wait.count == 1 || q->wait.count == 2);
    aredis_metrics_snapshot_free(s);

    /* Pool commands count as operations. */
    assert_int_equal(aredis_pool_release(p, g2.c), AREDIS_ERR_OK);
    done_count d = {0, 0};
    assert_int_equal(aredis_pool_command(p, on_done, &d, "SET mx:pool %s", "v"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &d.n, 1, 10000));
    assert_int_equal(aredis_pool_release(p, g3.c), AREDIS_ERR_OK);
    assert_true(ts_wait_pool_idle(g_loop, p, 2, 10000));
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "SET", NULL, 1);
    q = expect_pool(s, p, name, 2);
    assert_int_equal(q->idle, 2);
    assert_int_equal(q->used, 0);
    assert_int_equal(q->pending, 0);
    aredis_metrics_snapshot_free(s);
    aredis_pool_free(p);
    aredis_metrics_free(m);
}

/* ---- A parser of the Prometheus text format 0.0.4 ------------------------------ */

#define P_LABELS 12
typedef struct plabel {
    char name[64];
    char value[256];
} plabel;

typedef struct psample {
    char name[128];
    int family; /* index in families */
    plabel labels[P_LABELS];
    int nlabels;
    char value_text[64];
    double value;
    int line;
} psample;

typedef struct pfamily {
    char name[128];
    char type[16]; /* counter, gauge, histogram */
    int help, typed, samples, closed;
} pfamily;

typedef struct prom {
    psample *s;
    size_t n, cap;
    pfamily f[64];
    size_t nf;
    int current; /* the family whose lines come now, -1 */
    char err[400];
} prom;

static int perr(prom *p, int line, const char *fmt, ...) {
    va_list ap;
    int n = snprintf(p->err, sizeof p->err, "line %d: ", line);
    va_start(ap, fmt);
    vsnprintf(p->err + n, sizeof p->err - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int name_start(char ch) { return isalpha((unsigned char)ch) || ch == '_' || ch == ':'; }
static int name_char(char ch) { return name_start(ch) || isdigit((unsigned char)ch); }

/* A metric name at *pp ([a-zA-Z_:][a-zA-Z0-9_:]*), or a label name (no ':'). */
static int read_name(const char **pp, const char *end, char *out, size_t cap, int label) {
    const char *q = *pp;
    if (q >= end || !name_start(*q) || (label && *q == ':')) return -1;
    size_t n = 0;
    while (q < end && name_char(*q) && !(label && *q == ':')) {
        if (n + 1 >= cap) return -1;
        out[n++] = *q++;
    }
    out[n] = '\0';
    *pp = q;
    return 0;
}

static int family_index(prom *p, const char *name) {
    for (size_t i = 0; i < p->nf; i++)
        if (!strcmp(p->f[i].name, name)) return (int)i;
    return -1;
}

/* Lines of one family come together: a family left is never resumed. */
static int enter_family(prom *p, int fi, int line) {
    if (p->current == fi) return 0;
    if (p->f[fi].closed) return perr(p, line, "%s resumed after other families", p->f[fi].name);
    if (p->current >= 0) p->f[p->current].closed = 1;
    p->current = fi;
    return 0;
}

static int add_family(prom *p, const char *name, int line) {
    int fi = family_index(p, name);
    if (fi >= 0) return fi;
    if (p->nf >= sizeof p->f / sizeof *p->f) return perr(p, line, "too many families");
    memset(&p->f[p->nf], 0, sizeof p->f[p->nf]);
    snprintf(p->f[p->nf].name, sizeof p->f[p->nf].name, "%s", name);
    return (int)p->nf++;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* The family a sample name belongs to: its own, or a histogram's for
 * _bucket, _sum, _count. */
static int sample_family(prom *p, const char *name) {
    int fi = family_index(p, name);
    if (fi >= 0 && p->f[fi].typed && strcmp(p->f[fi].type, "histogram") != 0) return fi;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++) {
        if (!ends_with(name, sfx[i])) continue;
        char base[128];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - strlen(sfx[i])), name);
        int bi = family_index(p, base);
        if (bi >= 0 && !strcmp(p->f[bi].type, "histogram")) return bi;
    }
    return -1;
}

static int parse_value(const char *t, double *v) {
    if (!strcmp(t, "+Inf")) {
        *v = INFINITY;
        return 0;
    }
    if (!strcmp(t, "-Inf")) {
        *v = -INFINITY;
        return 0;
    }
    if (!strcmp(t, "NaN")) {
        *v = NAN;
        return 0;
    }
    if (!*t || strspn(t, "0123456789.eE+-") != strlen(t)) return -1;
    char *endp;
    *v = strtod(t, &endp);
    return *endp ? -1 : 0;
}

static int parse_sample(prom *p, const char *q, const char *end, int line) {
    psample s;
    memset(&s, 0, sizeof s);
    s.line = line;
    if (read_name(&q, end, s.name, sizeof s.name, 0) != 0)
        return perr(p, line, "not a metric name at the start of a sample");
    if (q < end && *q == '{') {
        q++;
        while (q < end && *q != '}') {
            if (s.nlabels >= P_LABELS) return perr(p, line, "too many labels");
            plabel *l = &s.labels[s.nlabels];
            if (read_name(&q, end, l->name, sizeof l->name, 1) != 0)
                return perr(p, line, "bad label name");
            for (int i = 0; i < s.nlabels; i++)
                if (!strcmp(s.labels[i].name, l->name))
                    return perr(p, line, "label %s twice", l->name);
            if (q + 1 >= end || q[0] != '=' || q[1] != '"')
                return perr(p, line, "label %s: no =\"", l->name);
            q += 2;
            size_t n = 0;
            for (;;) {
                if (q >= end) return perr(p, line, "label %s: unterminated value", l->name);
                char ch = *q++;
                if (ch == '"') break;
                if (ch == '\\') {
                    if (q >= end) return perr(p, line, "label %s: cut escape", l->name);
                    char e = *q++;
                    if (e == 'n')
                        ch = '\n';
                    else if (e == '\\' || e == '"')
                        ch = e;
                    else
                        return perr(p, line, "label %s: escape \\%c", l->name, e);
                }
                if (n + 1 >= sizeof l->value) return perr(p, line, "label value too long");
                l->value[n++] = ch;
            }
            l->value[n] = '\0';
            s.nlabels++;
            if (q < end && *q == ',') {
                q++;
                continue;
            }
            if (q >= end || *q != '}') return perr(p, line, "after label %s: no , or }", l->name);
        }
        if (q >= end) return perr(p, line, "unterminated labels");
        q++; /* } */
    }
    if (q >= end || *q != ' ') return perr(p, line, "no space before the value");
    q++;
    const char *v0 = q;
    while (q < end && *q != ' ')
        q++;
    if ((size_t)(q - v0) >= sizeof s.value_text) return perr(p, line, "value too long");
    snprintf(s.value_text, sizeof s.value_text, "%.*s", (int)(q - v0), v0);
    if (parse_value(s.value_text, &s.value) != 0)
        return perr(p, line, "value \"%s\" is not a number", s.value_text);
    if (q < end) { /* a timestamp */
        q++;
        const char *t0 = q;
        if (q < end && *q == '-') q++;
        while (q < end && isdigit((unsigned char)*q))
            q++;
        if (q == t0 || q != end) return perr(p, line, "junk after the value");
    }
    s.family = sample_family(p, s.name);
    if (s.family < 0) return perr(p, line, "sample %s has no TYPE before it", s.name);
    if (enter_family(p, s.family, line) != 0) return -1;
    p->f[s.family].samples++;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->s = realloc(p->s, p->cap * sizeof *p->s);
        assert_non_null(p->s);
    }
    p->s[p->n++] = s;
    return 0;
}

static int parse_comment(prom *p, const char *q, const char *end, int line) {
    int help = 0;
    if ((size_t)(end - q) > 7 && !strncmp(q, "# HELP ", 7))
        help = 1;
    else if (!((size_t)(end - q) > 7 && !strncmp(q, "# TYPE ", 7)))
        return perr(p, line, "a comment that is neither HELP nor TYPE");
    q += 7;
    char name[128];
    if (read_name(&q, end, name, sizeof name, 0) != 0) return perr(p, line, "bad metric name");
    if (q >= end || *q != ' ') return perr(p, line, "no space after %s", name);
    q++;
    int fi = add_family(p, name, line);
    if (fi < 0) return -1;
    pfamily *f = &p->f[fi];
    if (enter_family(p, fi, line) != 0) return -1;
    if (help) {
        if (f->help++) return perr(p, line, "HELP %s twice", name);
        for (const char *t = q; t < end; t++)
            if (*t == '\\') {
                if (t + 1 >= end || (t[1] != '\\' && t[1] != 'n'))
                    return perr(p, line, "HELP %s: a bad escape", name);
                t++;
            }
        return 0;
    }
    if (f->typed++) return perr(p, line, "TYPE %s twice", name);
    if (f->samples) return perr(p, line, "TYPE %s after its samples", name);
    snprintf(f->type, sizeof f->type, "%.*s", (int)(end - q), q);
    if (strcmp(f->type, "counter") && strcmp(f->type, "gauge") && strcmp(f->type, "histogram"))
        return perr(p, line, "TYPE %s %s", name, f->type);
    return 0;
}

/* The label set of a sample without le, as one comparable string. */
static void series_key(const psample *s, char *out, size_t cap) {
    int order[P_LABELS];
    int n = 0;
    for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, "le") != 0) order[n++] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(s->labels[order[j - 1]].name, s->labels[order[j]].name) > 0;
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s=%s\x01",
                                s->labels[order[i]].name, s->labels[order[i]].value);
}

static const char *label_of(const psample *s, const char *name) {
    for (int i = 0; i < s->nlabels; i++)
        if (!strcmp(s->labels[i].name, name)) return s->labels[i].value;
    return NULL;
}

/* Every histogram series: buckets with increasing le up to +Inf, counts
 * not decreasing, +Inf == _count, a _sum. */
static int check_histograms(prom *p) {
    char key[1024], k2[1024];
    for (size_t i = 0; i < p->n; i++) {
        const psample *s = &p->s[i];
        const pfamily *f = &p->f[s->family];
        if (strcmp(f->type, "histogram") != 0) {
            if (strcmp(s->name, f->name) != 0)
                return perr(p, s->line, "%s in family %s", s->name, f->name);
            if (!strcmp(f->type, "counter") && !(s->value >= 0))
                return perr(p, s->line, "counter %s = %s", s->name, s->value_text);
            continue;
        }
        int is_bucket = ends_with(s->name, "_bucket");
        if (!is_bucket && label_of(s, "le"))
            return perr(p, s->line, "%s with an le label", s->name);
        if (!is_bucket) continue;
        if (!label_of(s, "le")) return perr(p, s->line, "a bucket without le");
        /* The first bucket of its series: walk the series from here. */
        series_key(s, key, sizeof key);
        int first = 1;
        for (size_t j = 0; j < i; j++) {
            if (p->s[j].family != s->family || !ends_with(p->s[j].name, "_bucket")) continue;
            series_key(&p->s[j], k2, sizeof k2);
            if (!strcmp(key, k2)) first = 0;
        }
        if (!first) continue;
        double prev_le = -INFINITY, prev_count = 0, inf_count = -1;
        int inf_seen = 0;
        int have_count = 0, have_sum = 0;
        for (size_t j = i; j < p->n; j++) {
            const psample *b = &p->s[j];
            if (b->family != s->family) continue;
            series_key(b, k2, sizeof k2);
            if (strcmp(key, k2) != 0) continue;
            if (ends_with(b->name, "_bucket")) {
                double le;
                if (inf_seen) return perr(p, b->line, "a bucket after +Inf");
                if (parse_value(label_of(b, "le"), &le) != 0)
                    return perr(p, b->line, "le=\"%s\"", label_of(b, "le"));
                if (!(le > prev_le)) return perr(p, b->line, "le not increasing");
                if (b->value < prev_count) return perr(p, b->line, "bucket counts decrease");
                prev_le = le;
                prev_count = b->value;
                if (isinf(le)) {
                    if (strcmp(label_of(b, "le"), "+Inf") != 0)
                        return perr(p, b->line, "le=\"%s\", want +Inf", label_of(b, "le"));
                    inf_seen = 1;
                    inf_count = b->value;
                }
            } else if (ends_with(b->name, "_count")) {
                have_count = 1;
                if (!inf_seen || b->value != inf_count)
                    return perr(p, b->line, "_count %s, +Inf bucket %g", b->value_text, inf_count);
            } else if (ends_with(b->name, "_sum")) {
                have_sum = 1;
            }
        }
        if (!inf_seen) return perr(p, s->line, "a histogram series without +Inf");
        if (!have_count || !have_sum)
            return perr(p, s->line, "a histogram series without _count or _sum");
    }
    return 0;
}

/* No series twice: two samples of one name with the same labels (le
 * included) would be one series with two values. */
static int check_duplicates(prom *p) {
    char key[1024], k2[1024];
    for (size_t i = 0; i < p->n; i++) {
        series_key(&p->s[i], key, sizeof key);
        const char *le = label_of(&p->s[i], "le");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->s[i].name, p->s[j].name) != 0) continue;
            const char *le2 = label_of(&p->s[j], "le");
            if (cmp_null_first(le, le2) != 0) continue;
            series_key(&p->s[j], k2, sizeof k2);
            if (!strcmp(key, k2))
                return perr(p, p->s[i].line, "series %s{%s} twice (line %d)", p->s[i].name, key,
                            p->s[j].line);
        }
    }
    return 0;
}

/* Parse text; 0, or -1 with p->err. */
static int prom_parse(prom *p, const char *text, size_t len) {
    memset(p, 0, sizeof *p);
    p->current = -1;
    if (len && text[len - 1] != '\n') return perr(p, 0, "the text does not end with a newline");
    if (memchr(text, '\0', len)) return perr(p, 0, "a NUL inside the text");
    const char *q = text, *end = text + len;
    int line = 0;
    while (q < end) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        line++;
        if (nl == q) return perr(p, line, "an empty line");
        int r = *q == '#' ? parse_comment(p, q, nl, line) : parse_sample(p, q, nl, line);
        if (r != 0) return -1;
        q = nl + 1;
    }
    for (size_t i = 0; i < p->nf; i++)
        if (!p->f[i].typed) return perr(p, line, "%s has HELP and no TYPE", p->f[i].name);
    if (check_duplicates(p) != 0) return -1;
    return check_histograms(p);
}

static void prom_free(prom *p) {
    free(p->s);
    memset(p, 0, sizeof *p);
}

/* The sample named `name` whose labels include each of want (name, value
 * pairs; a NULL value: the label is absent), and no other sample like it. */
static const psample *find_sample(const prom *p, const char *name, const char *const *want,
                                  size_t nwant) {
    const psample *hit = NULL;
    for (size_t i = 0; i < p->n; i++) {
        const psample *s = &p->s[i];
        if (strcmp(s->name, name) != 0) continue;
        int ok = 1;
        for (size_t j = 0; j + 1 < nwant && ok; j += 2) {
            const char *v = label_of(s, want[j]);
            ok = want[j + 1] ? v && !strcmp(v, want[j + 1]) : v == NULL;
        }
        if (!ok) continue;
        if (hit) fail_msg("two samples of %s match (lines %d and %d)", name, hit->line, s->line);
        hit = s;
    }
    return hit;
}

/* A sample with some label of value v1 (and, when set, another of v2). */
static const psample *find_by_values(const prom *p, const char *name, const char *v1,
                                     const char *v2) {
    const psample *hit = NULL;
    for (size_t i = 0; i < p->n; i++) {
        const psample *s = &p->s[i];
        if (strcmp(s->name, name) != 0) continue;
        int a = 0, b = v2 == NULL;
        for (int j = 0; j < s->nlabels; j++) {
            a |= !strcmp(s->labels[j].value, v1);
            if (v2) b |= !strcmp(s->labels[j].value, v2);
        }
        if (!a || !b) continue;
        if (hit) fail_msg("two samples of %s match %s %s", name, v1, v2 ? v2 : "");
        hit = s;
    }
    if (!hit) fail_msg("no sample %s with label values %s %s", name, v1, v2 ? v2 : "");
    return hit;
}

static void want_value(const psample *s, double want, const char *what) {
    if (!s) fail_msg("%s: no such sample", what);
    if (s->value != want)
        fail_msg("%s: %s in the text (line %d), %.17g in the snapshot", what, s->value_text,
                 s->line, want);
}

static void want_close(const psample *s, double want, const char *what) {
    if (!s) fail_msg("%s: no such sample", what);
    if (fabs(s->value - want) > 1e-9 + 1e-6 * fabs(want))
        fail_msg("%s: %s in the text, %.17g in the snapshot", what, s->value_text, want);
}

/* Everything in the snapshot is in the text, with its value. */
static void compare(const prom *p, const aredis_metrics_snapshot *s) {
    char port[16], what[400];
    for (size_t i = 0; i < s->n_ops; i++) {
        const aredis_metrics_op *o = &s->ops[i];
        snprintf(port, sizeof port, "%d", o->server_port);
        const char *want[] = {"db_system_name",
                              "redis",
                              "db_operation_name",
                              o->name,
                              "server_address",
                              o->server_address,
                              "server_port",
                              port,
                              "error_type",
                              o->error_type,
                              "le",
                              NULL};
        snprintf(what, sizeof what, "operation %s %s", o->name,
                 o->error_type ? o->error_type : "ok");
        want_value(find_sample(p, "db_client_operation_duration_seconds_count", want, 12),
                   (double)o->duration.count, what);
        want_close(find_sample(p, "db_client_operation_duration_seconds_sum", want, 12),
                   o->duration.sum_seconds, what);
        for (int b = 0; b <= AREDIS_METRICS_BOUNDS; b++) {
            /* The bucket whose le parses to this bound. */
            const psample *hit = NULL;
            double bound = b < AREDIS_METRICS_BOUNDS ? aredis_metrics_bounds[b] : INFINITY;
            for (size_t j = 0; j < p->n; j++) {
                const psample *x = &p->s[j];
                if (strcmp(x->name, "db_client_operation_duration_seconds_bucket") != 0) continue;
                int ok = 1;
                for (size_t k = 0; k + 1 < 10 && ok; k += 2) {
                    const char *v = label_of(x, want[k]);
                    ok = want[k + 1] ? v && !strcmp(v, want[k + 1]) : v == NULL;
                }
                double le;
                if (ok && parse_value(label_of(x, "le"), &le) == 0 &&
                    (le == bound || fabs(le - bound) < 1e-12))
                    hit = x;
            }
            snprintf(what, sizeof what, "operation %s %s bucket le=%g", o->name,
                     o->error_type ? o->error_type : "ok", bound);
            want_value(hit, (double)o->duration.buckets[b], what);
        }
    }
    for (size_t i = 0; i < s->n_servers; i++) {
        const aredis_metrics_server *v = &s->servers[i];
        snprintf(port, sizeof port, "%d", v->server_port);
        const char *tx[] = {"network_io_direction", "transmit",    "server_address",
                            v->server_address,      "server_port", port};
        const char *rx[] = {"network_io_direction", "receive",     "server_address",
                            v->server_address,      "server_port", port};
        const char *srv[] = {"server_address", v->server_address, "server_port", port};
        want_value(find_sample(p, "aredis_client_network_io_bytes_total", tx, 6),
                   (double)v->bytes_out, "bytes transmitted");
        want_value(find_sample(p, "aredis_client_network_io_bytes_total", rx, 6),
                   (double)v->bytes_in, "bytes received");
        want_value(find_sample(p, "aredis_client_connects_total", srv, 4), (double)v->connects,
                   "connects");
        want_value(find_sample(p, "aredis_client_connect_failures_total", srv, 4),
                   (double)v->connect_failures, "connect failures");
        want_value(find_sample(p, "aredis_client_reconnect_attempts_total", srv, 4),
                   (double)v->reconnect_attempts, "reconnect attempts");
        want_value(find_sample(p, "aredis_client_timeouts_total", srv, 4), (double)v->timeouts,
                   "timeouts");
    }
    for (size_t i = 0; i < s->n_pools; i++) {
        const aredis_metrics_pool *q = &s->pools[i];
        want_value(find_by_values(p, "db_client_connection_count", q->pool_name, "idle"),
                   (double)q->idle, "idle connections");
        want_value(find_by_values(p, "db_client_connection_count", q->pool_name, "used"),
                   (double)q->used, "used connections");
        want_value(find_by_values(p, "db_client_connection_pending_requests", q->pool_name, NULL),
                   (double)q->pending, "pending requests");
        want_value(find_by_values(p, "db_client_connection_max", q->pool_name, NULL),
                   (double)q->max, "max connections");
        want_value(find_by_values(p, "db_client_connection_timeouts_total", q->pool_name, NULL),
                   (double)q->timeouts, "pool timeouts");
        want_value(
            find_by_values(p, "db_client_connection_wait_time_seconds_count", q->pool_name, NULL),
            (double)q->wait.count, "pool waits");
        want_close(
            find_by_values(p, "db_client_connection_wait_time_seconds_sum", q->pool_name, NULL),
            q->wait.sum_seconds, "pool wait time");
    }
}

static const char *type_of(const prom *p, const char *family) {
    int fi = -1;
    for (size_t i = 0; i < p->nf; i++)
        if (!strcmp(p->f[i].name, family)) fi = (int)i;
    if (fi < 0) fail_msg("no family %s in the text", family);
    return p->f[fi].type;
}

/* The parser itself refuses what it must (else it proves nothing). */
static void test_parser_self_check(void **state) {
    (void)state;
    static const char *const bad[] = {
        "x 1\n",                                             /* no TYPE */
        "# TYPE x counter\nx 1",                             /* no newline at the end */
        "# TYPE x counter\n\nx 1\n",                         /* empty line */
        "# TYPE x counter\nx{a=\"b\\t\"} 1\n",               /* bad escape */
        "# TYPE x counter\nx{1a=\"b\"} 1\n",                 /* bad label name */
        "# TYPE x counter\nx{a=\"b\",a=\"c\"} 1\n",          /* label twice */
        "# TYPE x counter\nx one\n",                         /* not a number */
        "# TYPE x counter\n# TYPE x counter\nx 1\n",         /* TYPE twice */
        "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx 2\n", /* not grouped */
        "# TYPE x summary\nx 1\n",                           /* a type not used here */
        "# comment\n",                                       /* another comment */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", /* no _sum */
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE 9x counter\n9x 1\n",
        "# TYPE x counter\nx -1\n",                                     /* a counter below zero */
        "# TYPE x counter\nx{a=\"b\"} 1\nx{a=\"c\"} 1\nx{a=\"b\"} 2\n", /* a series twice */
        "# TYPE g gauge\ng 1\ng 2\n",                                   /* a series twice */
    };
    prom p;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (prom_parse(&p, bad[i], strlen(bad[i])) == 0)
            fail_msg("the parser took bad input %zu: %s", i, bad[i]);
        prom_free(&p);
    }
    const char *good = "# HELP h A \\\\ help\\n text\n# TYPE h histogram\n"
                       "h_bucket{a=\"x\\\"y\\\\z\\n\",le=\"0.5\"} 1\n"
                       "h_bucket{a=\"x\\\"y\\\\z\\n\",le=\"+Inf\"} 3\n"
                       "h_sum{a=\"x\\\"y\\\\z\\n\"} 2.5\nh_count{a=\"x\\\"y\\\\z\\n\"} 3\n"
                       "# TYPE c_total counter\nc_total 1e3 1700000000000\n# TYPE g gauge\n"
                       "g NaN\n";
    if (prom_parse(&p, good, strlen(good)) != 0)
        fail_msg("the parser refused good text: %s", p.err);
    assert_int_equal(p.n, 6);
    assert_string_equal(label_of(&p.s[0], "a"), "x\"y\\z\n");
    assert_true(p.s[4].value == 1000);
    prom_free(&p);
}

#define PW "Prom-Pa55word-8d1c"

static void test_prometheus_text(void **state) {
    (void)state;
    static const char *const conf[] = {"requirepass " PW, NULL};
    ts_server *srv = ts_server_start(conf, 0);
    int port = ts_server_port(srv);
    char uri[200];
    snprintf(uri, sizeof uri, "redis://default:%s@127.0.0.1:%d/0", PW, port);

    /* Empty metrics: valid (maybe empty) text. */
    aredis_metrics *m = aredis_metrics_new();
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    assert_non_null(s);
    assert_int_equal(s->n_ops + s->n_servers + s->n_pools, 0);
    size_t len = 12345;
    char *text = aredis_metrics_prometheus(s, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    prom p;
    if (prom_parse(&p, text, len) != 0) fail_msg("empty metrics: %s\n%s", p.err, text);
    assert_int_equal(p.n, 0);
    prom_free(&p);
    aredis_mem_free(text);
    aredis_metrics_snapshot_free(s);

    /* A client given the password in its options, one in a URI, a pool
     * with the URI. */
    aredis_options o = ts_options(srv);
    o.password = PW;
    aredis_client *c = metered(&o, m);
    aredis_uri *u = NULL;
    assert_int_equal(aredis_uri_parse(uri, &u, NULL, 0), AREDIS_ERR_OK);
    aredis_options uo = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(u, &uo);
    aredis_client *cu = metered(&uo, m);
    aredis_uri_free(u);
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.uri = uri;
    po.max_connections = 2;
    aredis_pool *pool = aredis_pool_new(g_loop, &po);
    assert_non_null(pool);
    assert_int_equal(aredis_pool_set_metrics(pool, m), AREDIS_ERR_OK);

    const int N = 4;
    run_n(c, NULL, 2, "SET mx:p %s", "text");
    run_n(c, NULL, N, "GET mx:p");
    run_n(cu, NULL, 1, "GET mx:p");
    run_n(c, NULL, 1, "LPUSH mx:p x");
    run_n(c, NULL, 1, "AUTH %s", PW);
    run_n(cu, NULL, 1, "AUTH default %s", PW);
    run_n(c, NULL, 1, "CONFIG SET requirepass %s", PW);
    const char *weird[] = {"GE\"T\\x\n", "k"};
    done_count d = {0, 0};
    assert_int_equal(aredis_command_argv(c, on_done, &d, 2, weird, NULL), AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &d.n, 1, 10000));
    assert_int_equal(d.failed, 1); /* unknown command */
    aredis_future *f = aredis_pool_future_command(pool, "GET mx:p");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);

    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "GET", NULL, (uint64_t)N + 2);
    expect_count(s, port, "SET", NULL, 2);
    expect_count(s, port, "LPUSH", "WRONGTYPE", 1);
    expect_count(s, port, "AUTH", NULL, 2);
    expect_count(s, port, "CONFIG", NULL, 1);
    expect_count(s, port, "GE\"T\\x\n", "ERR", 1);
    assert_int_equal(s->n_pools, 1);
    const aredis_metrics_server *v = find_server(s, port);
    assert_int_equal(v->connects, 3);
    aredis_client_stats st = stats_of(c), stu = stats_of(cu);
    assert_true(v->bytes_out > st.bytes_out + stu.bytes_out); /* and the pool's */

    text = aredis_metrics_prometheus(s, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    if (strstr(text, PW) || strstr(text, "Pa55word"))
        fail_msg("the password is in the Prometheus text:\n%s", text);
    assert_non_null(strstr(text, "db_operation_name=\"GE\\\"T\\\\x\\n\""));
    if (prom_parse(&p, text, len) != 0) fail_msg("%s in:\n%s", p.err, text);
    assert_string_equal(type_of(&p, "db_client_operation_duration_seconds"), "histogram");
    assert_string_equal(type_of(&p, "aredis_client_network_io_bytes_total"), "counter");
    assert_string_equal(type_of(&p, "aredis_client_connects_total"), "counter");
    assert_string_equal(type_of(&p, "aredis_client_connect_failures_total"), "counter");
    assert_string_equal(type_of(&p, "aredis_client_reconnect_attempts_total"), "counter");
    assert_string_equal(type_of(&p, "aredis_client_timeouts_total"), "counter");
    assert_string_equal(type_of(&p, "db_client_connection_count"), "gauge");
    assert_string_equal(type_of(&p, "db_client_connection_pending_requests"), "gauge");
    assert_string_equal(type_of(&p, "db_client_connection_max"), "gauge");
    assert_string_equal(type_of(&p, "db_client_connection_timeouts_total"), "counter");
    assert_string_equal(type_of(&p, "db_client_connection_wait_time_seconds"), "histogram");
    compare(&p, s);
    /* Spot checks by hand. */
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    const char *get[] = {"db_operation_name", "GET", "server_port", ports, "error_type", NULL};
    want_value(find_sample(&p, "db_client_operation_duration_seconds_count", get, 6), (double)N + 2,
               "GET count");
    const char *bad[] = {"db_operation_name", "GE\"T\\x\n", "error_type", "ERR"};
    want_value(find_sample(&p, "db_client_operation_duration_seconds_count", bad, 4), 1,
               "the oddly named command");
    /* Every sample of the operation histogram has its labels. */
    size_t n_op_samples = 0;
    for (size_t i = 0; i < p.n; i++) {
        if (strncmp(p.s[i].name, "db_client_operation_duration_seconds", 36) != 0) continue;
        n_op_samples++;
        assert_non_null(label_of(&p.s[i], "db_system_name"));
        assert_non_null(label_of(&p.s[i], "db_operation_name"));
        assert_non_null(label_of(&p.s[i], "server_address"));
        assert_non_null(label_of(&p.s[i], "server_port"));
    }
    assert_int_equal(n_op_samples, s->n_ops * (AREDIS_METRICS_BOUNDS + 3));
    prom_free(&p);
    aredis_mem_free(text);
    aredis_metrics_snapshot_free(s);

    /* Without len. */
    s = aredis_metrics_snapshot_take(m);
    text = aredis_metrics_prometheus(s, NULL);
    assert_non_null(text);
    assert_int_equal(prom_parse(&p, text, strlen(text)), 0);
    prom_free(&p);
    aredis_mem_free(text);
    aredis_metrics_snapshot_free(s);

    aredis_pool_free(pool);
    aredis_client_free(c);
    aredis_client_free(cu);
    aredis_metrics_free(m);
    ts_server_stop(srv);
}

/* ---- Merging snapshots, and regressions ------------------------------------------ */

/*
 * Snapshots of two metrics objects (as two loops would have) merged: the
 * series with the same labels added up, rendered once. Guards the
 * documented way of exporting several loops: rendering each snapshot one
 * after the other repeats families and series, which Prometheus rejects.
 */
static void test_snapshot_merge(void **state) {
    (void)state;
    aredis_metrics *m1 = aredis_metrics_new(), *m2 = aredis_metrics_new();
    assert_non_null(m1);
    assert_non_null(m2);
    aredis_options o = ts_options(g_srv);
    int port = ts_server_port(g_srv);
    aredis_client *c1 = metered(&o, m1);
    aredis_client *c2 = metered(&o, m2);
    const int N1 = 5, N2 = 3;
    run_n(c1, NULL, 1, "SET mx:merge %s", "text");
    run_n(c1, NULL, N1, "GET mx:merge");
    run_n(c2, NULL, N2, "GET mx:merge");
    run_n(c2, NULL, 1, "LPUSH mx:merge x"); /* WRONGTYPE */
    aredis_client_stats st1 = stats_of(c1), st2 = stats_of(c2);
    aredis_metrics_snapshot *s1 = aredis_metrics_snapshot_take(m1);
    aredis_metrics_snapshot *s2 = aredis_metrics_snapshot_take(m2);
    check_snapshot(s1);
    check_snapshot(s2);
    expect_count(s1, port, "GET", NULL, (uint64_t)N1);
    expect_count(s2, port, "GET", NULL, (uint64_t)N2);

    aredis_metrics_snapshot *mg =
        aredis_metrics_snapshot_merge((const aredis_metrics_snapshot *const[]){s1, s2}, 2);
    assert_non_null(mg);
    check_snapshot(mg);
    expect_count(mg, port, "GET", NULL, (uint64_t)(N1 + N2));
    expect_count(mg, port, "SET", NULL, 1);
    expect_count(mg, port, "LPUSH", "WRONGTYPE", 1);
    if (total_ops(mg) != total_ops(s1) + total_ops(s2) || mg->n_ops != 3) {
        dump(mg);
        fail_msg("merged: %" PRIu64 " operations in %zu entries, from %" PRIu64 " + %" PRIu64,
                 total_ops(mg), mg->n_ops, total_ops(s1), total_ops(s2));
    }
    /* The histograms add up bucket by bucket. */
    const aredis_metrics_op *g = find_op(mg, port, "GET", NULL);
    const aredis_metrics_op *g1 = find_op(s1, port, "GET", NULL);
    const aredis_metrics_op *g2 = find_op(s2, port, "GET", NULL);
    for (int b = 0; b <= AREDIS_METRICS_BOUNDS; b++)
        assert_int_equal(g->duration.buckets[b], g1->duration.buckets[b] + g2->duration.buckets[b]);
    assert_true(fabs(g->duration.sum_seconds -
                     (g1->duration.sum_seconds + g2->duration.sum_seconds)) < 1e-9);
    assert_int_equal(mg->n_servers, 1);
    const aredis_metrics_server *v = find_server(mg, port);
    assert_string_equal(v->server_address, "127.0.0.1");
    assert_int_equal(v->connects, 2);
    assert_int_equal(v->bytes_out, st1.bytes_out + st2.bytes_out);
    assert_int_equal(v->bytes_in, st1.bytes_in + st2.bytes_in);
    assert_int_equal(v->bytes_out,
                     find_server(s1, port)->bytes_out + find_server(s2, port)->bytes_out);
    assert_int_equal(v->bytes_in,
                     find_server(s1, port)->bytes_in + find_server(s2, port)->bytes_in);
    assert_int_equal(v->connect_failures, 0);
    assert_int_equal(mg->n_pools, 0);

    /* The merged text is valid; the two texts one after the other are not. */
    size_t len1, len2, lenm;
    char *t1 = aredis_metrics_prometheus(s1, &len1);
    char *t2 = aredis_metrics_prometheus(s2, &len2);
    char *tm = aredis_metrics_prometheus(mg, &lenm);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_non_null(tm);
    prom p;
    if (prom_parse(&p, t1, len1) != 0) fail_msg("the first snapshot's text: %s", p.err);
    prom_free(&p);
    if (prom_parse(&p, tm, lenm) != 0) fail_msg("the merged text: %s\n%s", p.err, tm);
    compare(&p, mg);
    prom_free(&p);
    char *cat = malloc(len1 + len2 + 1);
    assert_non_null(cat);
    memcpy(cat, t1, len1);
    memcpy(cat + len1, t2, len2 + 1);
    if (prom_parse(&p, cat, len1 + len2) == 0)
        fail_msg("the parser took two texts one after the other: it could not tell");
    ts_log("two texts concatenated: %s", p.err);
    prom_free(&p);
    free(cat);
    aredis_mem_free(t1);
    aredis_mem_free(t2);
    aredis_mem_free(tm);
    aredis_metrics_snapshot_free(mg);

    /* One snapshot: itself. */
    mg = aredis_metrics_snapshot_merge((const aredis_metrics_snapshot *const[]){s1}, 1);
    assert_non_null(mg);
    check_snapshot(mg);
    expect_count(mg, port, "GET", NULL, (uint64_t)N1);
    assert_int_equal(mg->n_ops, s1->n_ops);
    assert_int_equal(find_server(mg, port)->bytes_out, find_server(s1, port)->bytes_out);
    aredis_metrics_snapshot_free(mg);

    /* A NULL among them: NULL. None: an empty snapshot. */
    assert_null(
        aredis_metrics_snapshot_merge((const aredis_metrics_snapshot *const[]){s1, NULL}, 2));
    assert_null(
        aredis_metrics_snapshot_merge((const aredis_metrics_snapshot *const[]){NULL, s2}, 2));
    mg = aredis_metrics_snapshot_merge(NULL, 0);
    assert_non_null(mg);
    assert_int_equal(mg->n_ops + mg->n_servers + mg->n_pools, 0);
    tm = aredis_metrics_prometheus(mg, &lenm);
    assert_non_null(tm);
    if (prom_parse(&p, tm, lenm) != 0) fail_msg("the empty merge's text: %s", p.err);
    assert_int_equal(p.n, 0);
    prom_free(&p);
    aredis_mem_free(tm);
    aredis_metrics_snapshot_free(mg);

    aredis_metrics_snapshot_free(s1);
    aredis_metrics_snapshot_free(s2);
    aredis_client_free(c1);
    aredis_client_free(c2);
    aredis_metrics_free(m1);
    aredis_metrics_free(m2);
}

/*
 * Closed by the application while connecting: not a failed connect. Guards
 * the close being counted in connect_failures (the attempt "ended" with
 * CLOSED), which made a dashboard show failures for a client merely closed.
 */
static void test_closed_while_connecting_not_a_failure(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    aredis_options o = ts_options(g_srv);
    int port = ts_server_port(g_srv);
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_set_metrics(c, m), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    aredis_client_close(c); /* before the loop ran: the connect is under way */
    /* Whatever was due runs now. */
    aredis_client *other = ts_client(g_loop, g_srv);
    ts_echo_tokens(other, "mx", 2, 10000, "closed while connecting");
    aredis_client_free(other);
    aredis_client_free(c);

    /* And a connect that does fail: counted. */
    aredis_options od = ts_options(g_srv);
    od.port = ts_dead_port();
    od.reconnect = 0;
    aredis_client *cd = aredis_client_new(g_loop, &od);
    assert_non_null(cd);
    assert_int_equal(aredis_client_set_metrics(cd, m), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_connect(cd), AREDIS_ERR_OK);
    assert_int_not_equal(ts_await_ready(cd, NULL, 0), AREDIS_ERR_OK);

    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    dump(s);
    for (size_t i = 0; i < s->n_servers; i++) {
        const aredis_metrics_server *v = &s->servers[i];
        if (v->server_port != port) continue;
        if (v->connect_failures != 0 || v->connects != 0)
            fail_msg("closed while connecting: %" PRIu64 " connect failure(s), %" PRIu64
                     " connect(s)",
                     v->connect_failures, v->connects);
    }
    const aredis_metrics_server *d = find_server(s, od.port);
    assert_int_equal(d->connect_failures, 1);
    assert_int_equal(d->connects, 0);
    aredis_metrics_snapshot_free(s);
    aredis_client_free(cd);
    aredis_metrics_free(m);
}

/*
 * A script's error reply is free text ("-my secret words"): never a
 * label. Guards its first word becoming error_type (a label of every
 * series it lands in, one series per distinct text: a secret exported,
 * and cardinality without bound).
 */
static const char k_secret_script[] = "return redis.error_reply('my secret words')";

static void eval_chain(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    on_done(c, r, err, data);
    done_count *d = data;
    if (d->n < 3 && aredis_command(c, eval_chain, d, "EVAL %s 0", k_secret_script) != AREDIS_ERR_OK)
        fail_msg("EVAL refused: %s", aredis_call_error()->detail);
}

static void test_error_type_label_safe(void **state) {
    (void)state;
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    aredis_options o = ts_options(g_srv);
    int port = ts_server_port(g_srv);
    aredis_client *c = metered(&o, m);
    done_count d = {0, 0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_command(c, on_done, &d, "EVAL %s 0", k_secret_script),
                         AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &d.n, 3, 10000));
    assert_int_equal(d.failed, 3);
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "EVAL", "SERVER", 3);
    if (s->n_ops != 1) {
        dump(s);
        fail_msg("%zu operation entries for 3 EVALs failing alike", s->n_ops);
    }
    aredis_metrics_snapshot_free(s);
    /* The same issued from reply callbacks (the client's fast path). */
    done_count e = {0, 0};
    assert_int_equal(aredis_command(c, eval_chain, &e, "EVAL %s 0", k_secret_script),
                     AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &e.n, 3, 10000));
    assert_int_equal(e.failed, 3);
    s = aredis_metrics_snapshot_take(m);
    check_snapshot(s);
    expect_count(s, port, "EVAL", "SERVER", 6);
    assert_int_equal(s->n_ops, 1);
    size_t len;
    char *text = aredis_metrics_prometheus(s, &len);
    assert_non_null(text);
    if (strstr(text, "secret")) fail_msg("a script's error text in the Prometheus text:\n%s", text);
    if (strstr(text, "error_type=\"my\"")) fail_msg("a script's word as error_type:\n%s", text);
    prom p;
    if (prom_parse(&p, text, len) != 0) fail_msg("%s in:\n%s", p.err, text);
    compare(&p, s);
    prom_free(&p);
    aredis_mem_free(text);
    aredis_metrics_snapshot_free(s);
    aredis_client_free(c);
    aredis_metrics_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_op_counts_exact),
        TS_LOOP_CASE(test_counts_from_callbacks),
        TS_LOOP_CASE(test_reconnect_attempts),
        TS_LOOP_CASE(test_connect_failures),
        TS_LOOP_CASE(test_attached_while_connecting),
        TS_LOOP_CASE(test_freed_client_keeps_counts),
        TS_LOOP_CASE(test_detach_stops_counting),
        TS_LOOP_CASE(test_metrics_freed_while_attached),
        TS_LOOP_CASE(test_pool_metrics),
        TS_LOOP_CASE(test_parser_self_check),
        TS_LOOP_CASE(test_prometheus_text),
        TS_LOOP_CASE(test_snapshot_merge),
        TS_LOOP_CASE(test_closed_while_connecting_not_a_failure),
        TS_LOOP_CASE(test_error_type_label_safe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
