/*
 * Connection pools (aredis/pool.h) against a real server: acquire and
 * release, with(), commands on the pool, in callback and future forms;
 * callbacks never inside the call; FIFO service of many waiters (no
 * barging by later calls); the acquire timeout's text; min and max
 * respected; idle timeout; max age; the stats, exact; a pool command's
 * session state never outliving it; a blocking pool command out of
 * rotation; URI, key prefix and database for every connection; free with
 * everything pending, and from inside a callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"
#include "ts.h"

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

static aredis_pool_options popts(void) {
    aredis_pool_options o = AREDIS_POOL_OPTIONS_INIT;
    o.client = ts_options(g_srv);
    return o;
}

static aredis_pool *mkpool(const aredis_pool_options *o) {
    aredis_pool *p = aredis_pool_new(g_loop, o);
    if (!p) fail_msg("aredis_pool_new: %s", aredis_call_error()->detail);
    return p;
}

static aredis_pool_stats stats(const aredis_pool *p) {
    aredis_pool_stats s;
    aredis_pool_get_stats(p, &s);
    /* The invariants of pool.h, whatever else a test checks. */
    assert_int_equal(s.total, s.opening + s.idle + s.in_use + s.checking);
    assert_int_equal(s.created - s.discarded, s.idle + s.in_use + s.checking);
    return s;
}

/* Run the loop until the pool's stats satisfy `ok`. */
typedef struct {
    const aredis_pool *p;
    int (*ok)(const aredis_pool_stats *s, size_t want);
    size_t want;
} stats_wait;

static int stats_done(const void *arg) {
    const stats_wait *w = arg;
    aredis_pool_stats s;
    aredis_pool_get_stats(w->p, &s);
    return w->ok(&s, w->want);
}

static int idle_is(const aredis_pool_stats *s, size_t n) { return s->idle == n; }
static int total_is(const aredis_pool_stats *s, size_t n) { return s->total == n; }
static int in_use_is(const aredis_pool_stats *s, size_t n) { return s->in_use == n; }
static int waiting_is(const aredis_pool_stats *s, size_t n) { return s->waiting == n; }
static int discarded_is(const aredis_pool_stats *s, size_t n) { return s->discarded == n; }
static int checking_is(const aredis_pool_stats *s, size_t n) { return s->checking == n; }

static void wait_stats(const aredis_pool *p, int (*ok)(const aredis_pool_stats *, size_t),
                       size_t want) {
    stats_wait w = {p, ok, want};
    if (!ts_wait_until(g_loop, stats_done, &w, 10000)) {
        aredis_pool_stats s;
        aredis_pool_get_stats(p, &s);
        fail_msg("pool stats never got there: total %zu idle %zu in_use %zu opening %zu "
                 "checking %zu waiting %zu created %llu discarded %llu",
                 s.total, s.idle, s.in_use, s.opening, s.checking, s.waiting,
                 (unsigned long long)s.created, (unsigned long long)s.discarded);
    }
}

/* Run the loop for about ms (a timer ends the wait: nothing is timed). */
static void flag_set(void *arg) { *(int *)arg = 1; }
static void run_ms(uint64_t ms) {
    int flag = 0;
    aredis_timer *t = aredis_timer_new(g_loop, flag_set, &flag);
    aredis_timer_start(t, ms, 0);
    assert_true(ts_wait(g_loop, &flag, ms + 10000));
    aredis_timer_free(t);
}

/* ---- Acquire results ---------------------------------------------------- */

static int g_seq; /* completion order across recorders */

typedef struct got {
    int calls;
    int seq;
    int ticket; /* order of the acquire call */
    aredis_pool *pool;
    aredis_client *c;
    aredis_err code;
    char detail[400];
    int release; /* release at once from the callback */
} got;

static void on_got(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data) {
    got *g = data;
    g->calls++;
    g->seq = ++g_seq;
    g->pool = p;
    g->c = c;
    g->code = err ? err->code : AREDIS_ERR_OK;
    snprintf(g->detail, sizeof g->detail, "%s", err ? err->detail : "");
    if (err) assert_null(c);
    if (c && g->release) assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
}

static aredis_client *acquire_wait(aredis_pool *p) {
    got g = {0};
    assert_int_equal(aredis_pool_acquire(p, on_got, &g), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g.calls, 10000));
    if (g.code != AREDIS_ERR_OK) fail_msg("acquire failed: %s", g.detail);
    assert_int_equal(g.calls, 1);
    assert_non_null(g.c);
    return g.c;
}

/* ---- Acquire / release ---------------------------------------------------- */

static void test_acquire_release(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 2;
    aredis_pool *p = mkpool(&o);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.total, 0); /* min 0: nothing opened yet */

    got g = {0};
    assert_int_equal(aredis_pool_acquire(p, on_got, &g), AREDIS_ERR_OK);
    assert_int_equal(g.calls, 0); /* never inside the call */
    assert_true(ts_wait(g_loop, &g.calls, 10000));
    assert_int_equal(g.code, AREDIS_ERR_OK);
    assert_ptr_equal(g.pool, p);
    assert_int_equal(aredis_client_state(g.c), AREDIS_STATE_READY);
    ts_cmd_ok(g.c, "SET pool:k %s", "v1");
    s = stats(p);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.created, 1);
    assert_int_equal(aredis_pool_release(p, g.c), AREDIS_ERR_OK);
    s = stats(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.idle, 1);

    /* The idle one again, and still never inside the call. */
    got h = {0};
    assert_int_equal(aredis_pool_acquire(p, on_got, &h), AREDIS_ERR_OK);
    assert_int_equal(h.calls, 0);
    assert_true(ts_wait(g_loop, &h.calls, 10000));
    assert_ptr_equal(h.c, g.c);
    ts_cmd_bytes(h.c, "v1", 2, "GET pool:k");
    assert_int_equal(aredis_pool_release(p, h.c), AREDIS_ERR_OK);

    /* Releasing twice, or a client that is not the pool's. */
    assert_int_equal(aredis_pool_release(p, h.c), AREDIS_ERR_INVALID);
    aredis_client *other = ts_client(g_loop, g_srv);
    assert_int_equal(aredis_pool_release(p, other), AREDIS_ERR_INVALID);
    aredis_client_free(other);
    assert_int_equal(aredis_pool_acquire(p, NULL, NULL), AREDIS_ERR_INVALID);

    s = stats(p);
    assert_int_equal(s.acquires, 2);
    assert_int_equal(s.discarded, 0);
    aredis_pool_free(p);
}

/* ---- Commands on the pool ------------------------------------------------- */

static void test_pool_command_callback(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 2;
    aredis_pool *p = mkpool(&o);

    /* Nothing is idle yet: these wait for the first connection. */
    ts_rec a = {0}, b = {0}, c = {0};
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &a, "SET %s %s", "pool:cmd", "x"),
                     AREDIS_ERR_OK);
    const char *argv[] = {"GET", "pool:cmd"};
    assert_int_equal(aredis_pool_command_argv(p, ts_on_rec, &b, 2, argv, NULL), AREDIS_ERR_OK);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 3000;
    const char *argv2[] = {"STRLEN", "pool:cmd"};
    assert_int_equal(aredis_pool_command_argv_ex(p, &co, ts_on_rec, &c, 2, argv2, NULL),
                     AREDIS_ERR_OK);
    assert_int_equal(a.calls + b.calls + c.calls, 0);
    ts_rec_wait(g_loop, &c, 10000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    ts_assert_status(a.r, "OK");
    ts_assert_str(b.r, "x");
    ts_assert_int(c.r, 1);
    assert_true(a.seq < b.seq && b.seq < c.seq);

    /* Now one is idle: sent at once. */
    ts_rec d = {0};
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &d, "INCR %s", "pool:n"), AREDIS_ERR_OK);
    assert_int_equal(d.calls, 0);
    ts_rec_wait(g_loop, &d, 10000);
    ts_assert_int(d.r, 1);

    /* Refused at the call: a malformed format; the client's refusals. */
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &d, "GET %"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &d, "SUBSCRIBE ch"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(d.calls, 1);

    /* A server error is an answer. */
    ts_rec e = {0};
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &e, "INCR %s", "pool:cmd"), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &e, 10000);
    assert_int_equal(e.code, AREDIS_ERR_SERVER);

    aredis_pool_stats s = stats(p);
    assert_int_equal(s.commands, 5);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.acquires, 0); /* pool commands take no connection from anyone */
    ts_rec_clear(&a);
    ts_rec_clear(&b);
    ts_rec_clear(&c);
    ts_rec_clear(&d);
    ts_rec_clear(&e);
    aredis_pool_free(p);
}

static void test_pool_command_future(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 1;
    aredis_pool *p = mkpool(&o);

    /* Waiting for the first connection: the pool's own future. */
    aredis_future *f = aredis_pool_future_command(p, "SET %s %s", "pool:fut", "y");
    assert_non_null(f);
    assert_false(aredis_future_is_done(f));
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_status(aredis_future_reply(f), "OK");
    aredis_future_release(f);

    /* Idle now: the command's own future. */
    const char *argv[] = {"GET", "pool:fut"};
    aredis_future *g = aredis_pool_future_argv(p, 2, argv, NULL);
    assert_int_equal(aredis_await(g), AREDIS_ERR_OK);
    ts_assert_str(aredis_future_reply(g), "y");
    aredis_future_release(g);

    /* Refused: a future failed already. */
    aredis_future *h = aredis_pool_future_command(p, "SUBSCRIBE ch");
    assert_true(aredis_future_is_done(h));
    assert_int_equal(aredis_future_error(h)->code, AREDIS_ERR_UNSUPPORTED);
    aredis_future_release(h);

    /* The only connection held: a command waits; cancelling it ends the
     * wait and it is never sent. */
    aredis_client *c = acquire_wait(p);
    aredis_future *w = aredis_pool_future_command(p, "INCR %s", "pool:never");
    run_ms(20);
    assert_false(aredis_future_is_done(w));
    assert_int_equal(stats(p).waiting, 1);
    aredis_future_cancel(w);
    assert_int_equal(aredis_future_error(w)->code, AREDIS_ERR_CANCELLED);
    assert_int_equal(stats(p).waiting, 0);
    aredis_future_release(w);

    /* Another waits, and runs once the connection is back. */
    aredis_future *x = aredis_pool_future_command(p, "INCR %s", "pool:after");
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    assert_int_equal(aredis_await(x), AREDIS_ERR_OK);
    ts_assert_int(aredis_future_reply(x), 1);
    aredis_future_release(x);

    aredis_future *chk = aredis_pool_future_command(p, "EXISTS %s", "pool:never");
    assert_int_equal(aredis_await(chk), AREDIS_ERR_OK);
    ts_assert_int(aredis_future_reply(chk), 0);
    aredis_future_release(chk);
    aredis_pool_free(p);
}

/* ---- with() --------------------------------------------------------------- */

typedef struct with_state {
    int runs;
    aredis_client *c;
    const char *cmd; /* the command fn runs; NULL: fn returns NULL */
} with_state;

static aredis_future *with_fn(aredis_client *c, void *data) {
    with_state *w = data;
    w->runs++;
    w->c = c;
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    return w->cmd ? aredis_future_command(c, w->cmd) : NULL;
}

static void test_with(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 1;
    aredis_pool *p = mkpool(&o);

    with_state a = {0, NULL, "INCR pool:with"};
    aredis_future *f = aredis_pool_with(p, with_fn, &a);
    assert_non_null(f);
    assert_int_equal(a.runs, 0); /* never inside the call */
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_int_equal(a.runs, 1);
    ts_assert_int(aredis_future_reply(f), 1);
    /* Released before the future settled. */
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.idle, 1);
    aredis_future_release(f);

    /* fn returns NULL: released at once, done with no reply. */
    with_state b = {0, NULL, NULL};
    f = aredis_pool_with(p, with_fn, &b);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_null(aredis_future_reply(f));
    assert_int_equal(stats(p).in_use, 0);
    aredis_future_release(f);

    /* fn's work fails: released all the same, the error passed on. */
    with_state c = {0, NULL, "INCR pool:with:missing:type"};
    aredis_future *set = aredis_pool_future_command(p, "SET pool:with:missing:type abc");
    assert_int_equal(aredis_await(set), AREDIS_ERR_OK);
    aredis_future_release(set);
    f = aredis_pool_with(p, with_fn, &c);
    assert_int_equal(aredis_await(f), AREDIS_ERR_SERVER);
    assert_string_equal(aredis_future_error(f)->prefix, "ERR");
    assert_non_null(aredis_future_reply(f));
    assert_int_equal(stats(p).in_use, 0);
    aredis_future_release(f);

    /* The connection held by someone else: with() times out, fn never
     * runs. */
    aredis_pool_free(p);
    o.acquire_timeout_ms = 50;
    p = mkpool(&o);
    aredis_client *held = acquire_wait(p);
    with_state d = {0, NULL, "PING"};
    f = aredis_pool_with(p, with_fn, &d);
    assert_int_equal(aredis_await(f), AREDIS_ERR_TIMEOUT);
    assert_int_equal(d.runs, 0);
    assert_non_null(strstr(aredis_future_error(f)->detail, "pool exhausted"));
    aredis_future_release(f);

    /* Cancelled while it waits: fn never runs, nothing is held. */
    with_state e = {0, NULL, "PING"};
    aredis_pool_free(p);
    o.acquire_timeout_ms = 5000;
    p = mkpool(&o);
    held = acquire_wait(p);
    f = aredis_pool_with(p, with_fn, &e);
    run_ms(10);
    aredis_future_cancel(f);
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    assert_int_equal(stats(p).waiting, 0);
    aredis_future_release(f);
    assert_int_equal(aredis_pool_release(p, held), AREDIS_ERR_OK);
    run_ms(10);
    assert_int_equal(e.runs, 0);
    s = stats(p);
    assert_int_equal(s.in_use, 0);

    /* Cancelled while its work runs (a BLPOP that nothing wakes): the work
     * is cancelled, the connection released (and, with a blocking command
     * still owed by the server, closed rather than handed on). */
    with_state g = {0, NULL, "BLPOP pool:with:nothing 0"};
    f = aredis_pool_with(p, with_fn, &g);
    while (g.runs == 0)
        aredis_loop_run_once(g_loop, 1);
    assert_int_equal(stats(p).in_use, 1);
    aredis_future_cancel(f);
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    aredis_future_release(f);
    s = stats(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.discarded, 1);
    /* The next user is not held up. */
    aredis_future *ping = aredis_pool_future_command(p, "PING");
    assert_int_equal(aredis_await(ping), AREDIS_ERR_OK);
    aredis_future_release(ping);
    aredis_pool_free(p);
}

/* ---- FIFO ------------------------------------------------------------------ */

#define NWAIT 40

typedef struct fifo_state {
    aredis_pool *p;
    int served[3 * NWAIT];
    int nserved;
    int next_ticket;
    got g[3 * NWAIT];
    with_state w[3 * NWAIT];
    int tickets_w[3 * NWAIT];
} fifo_state;

static fifo_state g_fifo;

static void fifo_on_got(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data) {
    got *g = data;
    assert_null(err);
    g_fifo.served[g_fifo.nserved++] = g->ticket;
    /* A newcomer, from inside the callback: it must queue behind every
     * waiter already there, not take the connection released below. */
    if (g_fifo.next_ticket < 2 * NWAIT) {
        got *n = &g_fifo.g[g_fifo.next_ticket];
        n->ticket = g_fifo.next_ticket++;
        assert_int_equal(aredis_pool_acquire(p, fifo_on_got, n), AREDIS_ERR_OK);
    }
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
}

static aredis_future *fifo_with(aredis_client *c, void *data) {
    (void)c;
    int *ticket = data;
    g_fifo.served[g_fifo.nserved++] = *ticket;
    return NULL;
}

static void test_fifo(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 2;
    aredis_pool *p = mkpool(&o);
    memset(&g_fifo, 0, sizeof g_fifo);
    g_fifo.p = p;
    aredis_client *h1 = acquire_wait(p);
    aredis_client *h2 = acquire_wait(p);
    /* NWAIT waiters, acquires and with()s alternating, while both
     * connections are held. */
    aredis_future *fs[NWAIT];
    size_t nf = 0;
    for (int i = 0; i < NWAIT; i++) {
        int t = g_fifo.next_ticket++;
        if (i % 3 == 2) {
            g_fifo.tickets_w[t] = t;
            fs[nf++] = aredis_pool_with(p, fifo_with, &g_fifo.tickets_w[t]);
        } else {
            g_fifo.g[t].ticket = t;
            assert_int_equal(aredis_pool_acquire(p, fifo_on_got, &g_fifo.g[t]), AREDIS_ERR_OK);
        }
    }
    assert_int_equal(stats(p).waiting, NWAIT);
    assert_int_equal(aredis_pool_release(p, h1), AREDIS_ERR_OK);
    assert_int_equal(aredis_pool_release(p, h2), AREDIS_ERR_OK);
    wait_stats(p, waiting_is, 0);
    wait_stats(p, in_use_is, 0);
    assert_int_equal(g_fifo.nserved, g_fifo.next_ticket);
    for (int i = 0; i < g_fifo.nserved; i++)
        if (g_fifo.served[i] != i) fail_msg("served #%d was ticket %d", i, g_fifo.served[i]);
    for (size_t i = 0; i < nf; i++) {
        assert_int_equal(aredis_await(fs[i]), AREDIS_ERR_OK);
        aredis_future_release(fs[i]);
    }
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.total, 2); /* never more than max */
    assert_int_equal(s.acquires, (uint64_t)g_fifo.next_ticket + 2);
    aredis_pool_free(p);
}

/* ---- Timeouts, min/max, idle, age ------------------------------------------- */

static void test_acquire_timeout_text(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 2;
    o.acquire_timeout_ms = 100;
    aredis_pool *p = mkpool(&o);
    aredis_client *a = acquire_wait(p);
    aredis_client *b = acquire_wait(p);
    got g = {0};
    assert_int_equal(aredis_pool_acquire(p, on_got, &g), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g.calls, 10000));
    assert_int_equal(g.code, AREDIS_ERR_TIMEOUT);
    ts_log("timeout: %s", g.detail);
    assert_non_null(strstr(g.detail, "pool exhausted: 2 in use, 0 idle, max 2, 1 waiting"));
    assert_non_null(strstr(g.detail, "after 100 ms"));

    /* A pool command waits the same way. */
    ts_rec r = {0};
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &r, "PING"), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &r, 10000);
    assert_int_equal(r.code, AREDIS_ERR_TIMEOUT);
    assert_non_null(strstr(r.detail, "pool exhausted"));
    ts_rec_clear(&r);

    aredis_pool_stats s = stats(p);
    assert_int_equal(s.timeouts, 2);
    assert_int_equal(s.waiting, 0);
    aredis_pool_release(p, a);
    aredis_pool_release(p, b);
    aredis_pool_free(p);
}

static void test_min_max(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.min_connections = 2;
    o.max_connections = 3;
    aredis_pool *p = mkpool(&o);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.opening, 2); /* opened at once */
    wait_stats(p, idle_is, 2);
    got g[4] = {{0}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(aredis_pool_acquire(p, on_got, &g[i]), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g[2].calls, 10000));
    s = stats(p);
    assert_int_equal(s.total, 3);
    assert_int_equal(s.in_use, 3);
    assert_int_equal(s.waiting, 1);
    assert_int_equal(g[3].calls, 0);
    run_ms(20);
    assert_int_equal(stats(p).total, 3); /* max holds */
    assert_int_equal(aredis_pool_release(p, g[1].c), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g[3].calls, 10000));
    assert_ptr_equal(g[3].c, g[1].c);
    aredis_pool_release(p, g[0].c);
    aredis_pool_release(p, g[2].c);
    aredis_pool_release(p, g[3].c);
    s = stats(p);
    assert_int_equal(s.idle, 3);
    assert_int_equal(s.created, 3);

    /* Invalid limits. */
    o.min_connections = 4;
    assert_null(aredis_pool_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    o.min_connections = 0;
    o.max_connections = 0;
    assert_null(aredis_pool_new(g_loop, &o));
    aredis_pool_free(p);
}

static void test_idle_timeout(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.min_connections = 1;
    o.max_connections = 3;
    o.idle_timeout_ms = 50;
    aredis_pool *p = mkpool(&o);
    aredis_client *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = acquire_wait(p);
    for (int i = 0; i < 3; i++)
        aredis_pool_release(p, c[i]);
    assert_int_equal(stats(p).idle, 3);
    wait_stats(p, total_is, 1); /* down to min, no further */
    run_ms(120);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.total, 1);
    assert_int_equal(s.idle, 1);
    assert_int_equal(s.discarded, 2);
    assert_int_equal(s.created, 3);
    aredis_pool_free(p);
}

static void test_max_age(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 2;
    o.max_age_ms = 100;
    aredis_pool *p = mkpool(&o);
    aredis_client *c = acquire_wait(p);
    long long id1 = ts_client_id(c);
    run_ms(130); /* older than max_age while held */
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.discarded, 1); /* recycled at its release */
    assert_int_equal(s.total, 0);
    c = acquire_wait(p);
    long long id2 = ts_client_id(c);
    assert_true(id2 != id1);
    aredis_pool_release(p, c);
    /* Idle ones age out as well (and min_connections would reopen). */
    wait_stats(p, discarded_is, 2);
    assert_int_equal(stats(p).total, 0);
    aredis_pool_free(p);
}

/* ---- Stats, exact -------------------------------------------------------- */

static void test_stats_exact(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.min_connections = 1;
    o.max_connections = 2;
    o.acquire_timeout_ms = 100;
    aredis_pool *p = mkpool(&o);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.total, 1);
    assert_int_equal(s.opening, 1);
    assert_int_equal(s.created, 0);
    wait_stats(p, idle_is, 1);
    aredis_client *a = acquire_wait(p);
    aredis_client *b = acquire_wait(p);
    s = stats(p);
    assert_int_equal(s.total, 2);
    assert_int_equal(s.idle, 0);
    assert_int_equal(s.in_use, 2);
    assert_int_equal(s.created, 2);
    assert_int_equal(s.acquires, 2);
    got g = {0};
    aredis_pool_acquire(p, on_got, &g);
    assert_int_equal(stats(p).waiting, 1);
    assert_true(ts_wait(g_loop, &g.calls, 10000));
    ts_rec r = {0};
    aredis_command(a, ts_on_rec, &r, "SELECT 3");
    ts_rec_wait(g_loop, &r, 10000);
    ts_rec_clear(&r);
    aredis_pool_release(p, a); /* dirty: reset in place */
    aredis_pool_release(p, b);
    aredis_future *f = aredis_pool_future_command(p, "PING");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    wait_stats(p, checking_is, 0);
    s = stats(p);
    assert_int_equal(s.total, 2);
    assert_int_equal(s.idle, 2);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.opening, 0);
    assert_int_equal(s.checking, 0);
    assert_int_equal(s.waiting, 0);
    assert_int_equal(s.created, 2);
    assert_int_equal(s.discarded, 0);
    assert_int_equal(s.connect_failures, 0);
    assert_int_equal(s.acquires, 2);
    assert_int_equal(s.commands, 1);
    assert_int_equal(s.timeouts, 1);
    assert_int_equal(s.resets, 1);
    assert_int_equal(s.health_checks, 0);
    aredis_pool_free(p);
}

/* ---- A pool command's session state never outlives it ---------------------- */

static void test_pool_command_session(void **state) {
    (void)state;
    ts_require(TS_FEATURE_CLIENT_INFO);
    aredis_pool_options o = popts();
    o.max_connections = 1;
    o.client.db = 2;
    aredis_pool *p = mkpool(&o);
    ts_rec a = {0}, b = {0}, m = {0}, q = {0};
    aredis_pool_command(p, ts_on_rec, &a, "SELECT 5");
    aredis_pool_command(p, ts_on_rec, &m, "MULTI");
    aredis_pool_command(p, ts_on_rec, &q, "SET %s %s", "pool:sess", "z");
    aredis_pool_command(p, ts_on_rec, &b, "CLIENT INFO");
    ts_rec_wait(g_loop, &b, 10000);
    ts_assert_status(a.r, "OK");
    ts_assert_status(m.r, "OK");
    /* SELECT and MULTI went out on the one connection; the pool took it out
     * of rotation until they were answered and reset it: the later commands
     * waited, and ran outside MULTI, in the configured database. */
    ts_assert_status(q.r, "OK");
    assert_non_null(b.r->str);
    assert_non_null(strstr(b.r->str, " db=2 "));
    assert_non_null(strstr(b.r->str, " multi=-1 "));
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.discarded, 0);
    assert_true(s.resets >= 1);
    ts_rec_clear(&a);
    ts_rec_clear(&b);
    ts_rec_clear(&m);
    ts_rec_clear(&q);
    aredis_pool_free(p);
}

/* A blocking pool command keeps its connection out of rotation: the next
 * commands go to another one instead of waiting behind it. */
static void test_pool_command_blocking(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 2;
    aredis_pool *p = mkpool(&o);
    aredis_future *warm = aredis_pool_future_command(p, "DEL pool:blk");
    assert_int_equal(aredis_await(warm), AREDIS_ERR_OK);
    aredis_future_release(warm);
    ts_rec blk = {0};
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &blk, "BLPOP pool:blk 0"), AREDIS_ERR_OK);
    assert_int_equal(stats(p).checking, 1);
    aredis_future *f = aredis_pool_future_command(p, "RPUSH pool:blk v");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    ts_rec_wait(g_loop, &blk, 10000);
    if (blk.code != AREDIS_ERR_OK) fail_msg("BLPOP: %s", blk.detail);
    ts_assert_array(blk.r, 2);
    ts_rec_clear(&blk);
    wait_stats(p, idle_is, 2);
    aredis_pool_stats s = stats(p);
    assert_int_equal(s.total, 2);
    assert_int_equal(s.discarded, 0);
    aredis_pool_free(p);
}

/* ---- Every connection's options: URI, database, prefix -------------------- */

static void test_uri_db_prefix(void **state) {
    (void)state;
    ts_require(TS_FEATURE_CLIENT_INFO);
    char uri[128];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/3", ts_server_port(g_srv));
    aredis_pool_options o = AREDIS_POOL_OPTIONS_INIT;
    o.uri = uri;
    o.client.prefix = "pfx:";
    o.max_connections = 2;
    aredis_pool *p = mkpool(&o);
    aredis_client *a = acquire_wait(p);
    aredis_client *b = acquire_wait(p);
    char db[16];
    assert_true(ts_client_field(a, "db", db, sizeof db));
    assert_string_equal(db, "3");
    assert_true(ts_client_field(b, "db", db, sizeof db));
    assert_string_equal(db, "3");
    aredis_pool_release(p, a);
    aredis_pool_release(p, b);
    aredis_future *f = aredis_pool_future_command(p, "SET %s %s", "k", "prefixed");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    aredis_pool_free(p);
    aredis_options co = ts_options(g_srv);
    co.db = 3;
    aredis_client *obs = ts_connect(g_loop, &co);
    ts_cmd_bytes(obs, "prefixed", 8, "GET pfx:k");
    aredis_client_free(obs);

    o.uri = "redis://[bad";
    assert_null(aredis_pool_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_URI);
}

/* ---- Free ------------------------------------------------------------------ */

static void test_free_cancels(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 1;
    aredis_pool *p = mkpool(&o);
    ts_rec blk = {0};
    assert_int_equal(aredis_pool_command(p, ts_on_rec, &blk, "BLPOP pool:free:none 0"),
                     AREDIS_ERR_OK);
    while (stats(p).checking == 0)
        aredis_loop_run_once(g_loop, 1);
    got g = {0};
    aredis_pool_acquire(p, on_got, &g);
    ts_rec r = {0};
    aredis_pool_command(p, ts_on_rec, &r, "PING");
    with_state w = {0, NULL, "PING"};
    aredis_future *f = aredis_pool_with(p, with_fn, &w);
    aredis_future *pf = aredis_pool_future_command(p, "PING");
    assert_int_equal(stats(p).waiting, 4);
    aredis_pool_free(p);
    assert_int_equal(blk.calls, 1);
    assert_int_equal(blk.code, AREDIS_ERR_CANCELLED);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.code, AREDIS_ERR_CANCELLED);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, AREDIS_ERR_CANCELLED);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    assert_int_equal(aredis_future_error(pf)->code, AREDIS_ERR_CANCELLED);
    assert_int_equal(w.runs, 0);
    aredis_future_release(f);
    aredis_future_release(pf);
    ts_rec_clear(&blk);
    ts_rec_clear(&r);
    run_ms(10);
}

static aredis_pool *g_free_me;
static int g_after_free;

static void free_from_cb(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)err;
    (void)data;
    assert_ptr_equal(p, g_free_me);
    aredis_pool_free(p);
    g_after_free++;
}

static void free_from_reply(aredis_client *c, aredis_reply *r, const aredis_error *err,
                            void *data) {
    (void)c;
    (void)r;
    (void)err;
    (void)data;
    aredis_pool_free(g_free_me);
    g_after_free++;
}

static void test_free_inside_callbacks(void **state) {
    (void)state;
    aredis_pool_options o = popts();
    o.max_connections = 2;
    /* From an acquire's callback, with another acquire and a pool command
     * pending. */
    g_free_me = mkpool(&o);
    g_after_free = 0;
    got other = {0};
    aredis_pool_acquire(g_free_me, free_from_cb, NULL);
    aredis_pool_acquire(g_free_me, on_got, &other);
    assert_true(ts_wait(g_loop, &g_after_free, 10000));
    run_ms(10);
    /* The second acquire was either served before or cancelled by the free. */
    assert_int_equal(other.calls, 1);

    /* From a pool command's reply, with more in flight on the connection. */
    g_free_me = mkpool(&o);
    g_after_free = 0;
    ts_rec more[3] = {{0}};
    aredis_pool_command(g_free_me, free_from_reply, NULL, "PING");
    for (int i = 0; i < 3; i++)
        aredis_pool_command(g_free_me, ts_on_rec, &more[i], "PING");
    assert_true(ts_wait(g_loop, &g_after_free, 10000));
    run_ms(10);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(more[i].calls, 1);
        ts_rec_clear(&more[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_release),
        cmocka_unit_test(test_pool_command_callback),
        cmocka_unit_test(test_pool_command_future),
        cmocka_unit_test(test_with),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_acquire_timeout_text),
        cmocka_unit_test(test_min_max),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_max_age),
        cmocka_unit_test(test_stats_exact),
        cmocka_unit_test(test_pool_command_session),
        cmocka_unit_test(test_pool_command_blocking),
        cmocka_unit_test(test_uri_db_prefix),
        cmocka_unit_test(test_free_cancels),
        cmocka_unit_test(test_free_inside_callbacks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
