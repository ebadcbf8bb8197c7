/*
 * queue-memory (reliability): what commands cost while the client is
 * disconnected, counted in live heap bytes through the allocator hooks
 * (aredis_set_allocator, installed before any aredis call and kept for the
 * whole process; every block carries a small header with its requested
 * size, so the count is the bytes the library asked for and still holds).
 *
 *   - a command queued before the first connect (wait_for_first_connect,
 *     nothing listening) costs well under 200 bytes, and freeing the client
 *     gives every byte back and runs every callback once (CANCELLED);
 *   - 100,000 commands that time out during an outage (reconnects refused)
 *     leave the heap where it was: the records of commands that will never
 *     be sent are not kept until the reconnect — for the client's default
 *     request timeout and for per-command timeouts alike;
 *   - max_queue_size bounds the commands held during an outage;
 *   - a queued command that is cancelled is freed at once.
 *
 * Each measurement is taken after a warm-up that does the same thing on a
 * smaller scale, so that what the library keeps for reuse by design (free
 * command records, the per-thread reply blocks of aredis/alloc.h, loop
 * capacity) is already in the baseline; what is left is what grows with
 * the number of commands. Measurements are taken with the client in the
 * same state (waiting to reconnect), never while a connect attempt holds
 * its socket and reader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "proxy.h"

/* ---- Live heap bytes (ts_heap_hooks(), installed by main) ----------------- */

/* assert got <= max, with the numbers in the failure message. */
static void assert_at_most(long long got, long long max, const char *what) {
    if (got > max) fail_msg("%s: %lld bytes, more than %lld", what, got, max);
}

/* ---- Per-command outcomes ------------------------------------------------ */

enum { NCODES = 64 };

typedef struct {
    unsigned char calls;
    unsigned char code;
} outcome;

typedef struct {
    size_t done;
    size_t by_code[NCODES];
    size_t twice; /* callbacks that ran more than once */
} tally;

static tally g_tally;

static void on_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    outcome *o = data;
    aredis_err code = err ? err->code : AREDIS_ERR_OK;
    if (o->calls++) g_tally.twice++;
    o->code = (unsigned char)code;
    g_tally.done++;
    g_tally.by_code[(unsigned)code < NCODES ? (unsigned)code : NCODES - 1]++;
}

static void tally_reset(void) { memset(&g_tally, 0, sizeof g_tally); }

static void log_codes(const char *what) {
    for (int i = 0; i < NCODES; i++)
        if (g_tally.by_code[i])
            ts_log("%s: %zu x %s", what, g_tally.by_code[i], aredis_err_name((aredis_err)i));
}

/* ---- Client states --------------------------------------------------------- */

static int is_reconnecting(const void *c) {
    return aredis_client_state(c) == AREDIS_STATE_RECONNECTING;
}
static int is_not_ready(const void *c) { return aredis_client_state(c) != AREDIS_STATE_READY; }
static int is_ready(const void *c) { return aredis_client_state(c) == AREDIS_STATE_READY; }

/*
 * Live bytes with the client waiting for its next reconnect attempt (no
 * socket, no reader): the same state at every measurement.
 */
static long long settled_live(aredis_loop *loop, aredis_client *c) {
    assert_true(ts_wait_until(loop, is_reconnecting, c, 10000));
    return ts_heap_live();
}

/* Reconnect attempts 50 ms apart, then at most 200 ms (a test sees many of
 * them), commands timing out after request_timeout_ms (0: never), and the
 * connection events counted in cc. */
static void retry_fast(aredis_options *o, uint32_t request_timeout_ms, conn_counters *cc) {
    o->reconnect = 1;
    o->reconnect_delay_ms = 50;
    o->max_reconnect_delay_ms = 200;
    o->request_timeout_ms = request_timeout_ms;
    cc_wire(o, cc);
}

/* ---- 1. The cost of a command queued before the first connect ------------- */

static aredis_options dead_options(int port, conn_counters *cc) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = port;
    o.wait_for_first_connect = 1;
    retry_fast(&o, 0, cc);
    return o;
}

/* Issue n SETs, free the client, wait for nothing: what the round leaves. */
static void dead_round(aredis_loop *loop, int port, size_t n, outcome *res, long long *per_cmd) {
    conn_counters cc;
    aredis_options o = dead_options(port, &cc);
    aredis_client *c = aredis_client_new(loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    /* At least one attempt has failed: the commands below wait through
     * failed attempts, not just the first connect. */
    assert_true(cc_wait_attempts(loop, &cc, 1, 10000));
    long long before = settled_live(loop, c);
    long long blocks_before = ts_heap_blocks();

    tally_reset();
    memset(res, 0, n * sizeof *res);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(aredis_command(c, on_done, &res[i], "SET key:%zu value", i),
                         AREDIS_ERR_OK);
    long long grown = ts_heap_live() - before;
    if (per_cmd) *per_cmd = grown / (long long)n;
    ts_log("%zu commands queued while disconnected: +%lld bytes in +%lld blocks "
           "(%lld bytes each)",
           n, grown, ts_heap_blocks() - blocks_before, grown / (long long)n);
    assert_int_equal(aredis_client_pending(c), n);

    /* Two more failed attempts: every command still waits, none completed. */
    int seen = cc.attempts;
    assert_true(cc_wait_attempts(loop, &cc, seen + 2, 10000));
    assert_int_equal(g_tally.done, 0);
    assert_int_equal(aredis_client_pending(c), n);
    assert_int_equal(cc.connects, 0);

    aredis_client_free(c);
    assert_int_equal(g_tally.done, n);
    assert_int_equal(g_tally.twice, 0);
    assert_int_equal(g_tally.by_code[AREDIS_ERR_CANCELLED], n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].code, AREDIS_ERR_CANCELLED);
    }
}

static void test_queued_command_cost(void **state) {
    (void)state;
    int port = ts_dead_port();
    aredis_loop *loop = aredis_loop_new();
    assert_non_null(loop);
    enum { N = 10000 };
    outcome *res = calloc(N, sizeof *res);
    assert_non_null(res);

    /* Warm-up: the same round, smaller, so the loop's own capacity is in the
     * baseline. */
    dead_round(loop, port, 100, res, NULL);
    long long start = ts_heap_live();

    long long per_cmd = 0;
    dead_round(loop, port, N, res, &per_cmd);
    long long after = ts_heap_live();
    ts_log("after the client was freed: %+lld bytes against the start", after - start);
    assert_at_most(per_cmd, 199, "growth per queued command");
    /* Everything the client held is given back. */
    assert_at_most(after - start, 4096, "left after the client was freed");
    assert_at_most(start - after, 4096, "freed below the start after the client was freed");

    free(res);
    aredis_loop_free(loop);
}

/* ---- An outage: the server is up, the proxy refuses reconnects ------------ */

typedef struct {
    ts_proxied rig;
    aredis_client *c;
    conn_counters cc;
} outage_rig;

/* A connected client behind the proxy, then an outage: every connection
 * closed, new ones refused. Returns with the client disconnected. */
static void outage_start(outage_rig *x, uint32_t request_timeout_ms, size_t max_queue) {
    aredis_options o = ts_proxied_start(&x->rig);
    o.max_queue_size = max_queue;
    retry_fast(&o, request_timeout_ms, &x->cc);
    x->c = ts_connect(x->rig.loop, &o);
    ts_cmd_ok(x->c, "SET qm:before %s", "x");
    aredis_future *f = ts_cmd(x->c, "GET qm:before");
    assert_null(aredis_future_error(f));
    aredis_future_release(f);

    ts_proxy_refuse(x->rig.px, 1);
    ts_proxy_close_all(x->rig.px);
    assert_true(ts_wait_until(x->rig.loop, is_not_ready, x->c, 10000));
    assert_true(ts_wait_until(x->rig.loop, is_reconnecting, x->c, 10000));
}

/* End the outage: the client reconnects and a command works again. */
static void outage_recover(outage_rig *x) {
    int connects = x->cc.connects;
    ts_proxy_refuse(x->rig.px, 0);
    ts_proxy_pass(x->rig.px);
    assert_true(ts_wait_until(x->rig.loop, is_ready, x->c, 15000));
    assert_true(x->cc.connects > connects);
    ts_cmd_ok(x->c, "SET qm:after %s", "y");
    aredis_future *f = ts_cmd(x->c, "GET qm:after");
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "y");
    aredis_future_release(f);
}

static void outage_end(outage_rig *x) {
    outage_recover(x);
    ts_proxied_stop(&x->rig, x->c);
}

/*
 * Issue n GETs during the outage: with the client's request timeout when
 * per_cmd_timeout is 0, else with that per-command timeout. Returns once
 * every callback ran.
 */
static void timeout_round(outage_rig *x, size_t n, uint32_t per_cmd_timeout, outcome *res) {
    tally_reset();
    memset(res, 0, n * sizeof *res);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = per_cmd_timeout;
    uint64_t t0 = ts_now_ms();
    for (size_t i = 0; i < n; i++) {
        char key[32];
        int kl = snprintf(key, sizeof key, "qm:k:%zu", i);
        const char *argv[] = {"GET", key};
        const size_t lens[] = {3, (size_t)kl};
        aredis_err e = per_cmd_timeout
                           ? aredis_command_argv_ex(x->c, &co, on_done, &res[i], 2, argv, lens)
                           : aredis_command_argv(x->c, on_done, &res[i], 2, argv, lens);
        assert_int_equal(e, AREDIS_ERR_OK);
    }
    uint64_t issued = ts_now_ms();
    assert_int_equal(aredis_client_pending(x->c), n);
    assert_true(ts_wait_count(x->rig.loop, &g_tally.done, n, 30000));
    ts_log("%zu commands issued in %llu ms, all completed %llu ms later", n,
           (unsigned long long)(issued - t0), (unsigned long long)(ts_now_ms() - issued));
    log_codes("outcomes");
    assert_int_equal(g_tally.twice, 0);
    assert_int_equal(g_tally.by_code[AREDIS_ERR_TIMEOUT], n);
    assert_int_equal(aredis_client_pending(x->c), 0);
    assert_int_equal(x->cc.connects, 1); /* the outage held throughout */
}

/* ---- 2. Commands timing out during an outage leave nothing behind ---------- */

/* Where the commands' timeout comes from. */
typedef struct {
    uint32_t client_timeout;  /* the client's request_timeout_ms */
    uint32_t per_cmd_timeout; /* each command's own; 0: none */
} timeouts;

static const timeouts k_default_timeout = {200, 0};
static const timeouts k_per_command_timeout = {0, 200};

static void test_timeouts_during_outage(void **state) {
    const timeouts *t = *state;
    enum { WARM = 2000, N = 100000 };
    outage_rig x;
    outage_start(&x, t->client_timeout, 0);
    uint64_t outage_t0 = ts_now_ms();
    outcome *res = calloc(N, sizeof *res);
    assert_non_null(res);

    timeout_round(&x, WARM, t->per_cmd_timeout, res);
    long long l0 = settled_live(x.rig.loop, x.c);
    long long b0 = ts_heap_blocks();

    timeout_round(&x, N, t->per_cmd_timeout, res);
    long long l1 = settled_live(x.rig.loop, x.c);
    ts_log("after %d timed-out commands: %+lld bytes in %+lld blocks (outage so far %llu ms)", N,
           l1 - l0, ts_heap_blocks() - b0, (unsigned long long)(ts_now_ms() - outage_t0));
    assert_at_most(l1 - l0, 8192, "growth after the timed-out commands");
    assert_int_equal(aredis_client_pending(x.c), 0);

    free(res);
    outage_end(&x);
}

/* ---- 3. max_queue_size bounds what an outage holds ------------------------- */

static void test_bound_during_outage(void **state) {
    (void)state;
    enum { LIMIT = 100, BURST = 150 };
    outage_rig x;
    outage_start(&x, 200, LIMIT);
    outcome res[BURST];

    for (int round = 0; round < 2; round++) {
        tally_reset();
        memset(res, 0, sizeof res);
        size_t accepted = 0, refused = 0;
        for (int i = 0; i < BURST; i++) {
            aredis_err e = aredis_command(x.c, on_done, &res[i], "SET qm:b:%d %d", i, i);
            if (e == AREDIS_ERR_OK)
                accepted++;
            else if (e == AREDIS_ERR_QUEUE_FULL)
                refused++;
            else
                fail_msg("command %d refused with %s", i, aredis_err_name(e));
            /* The first LIMIT are the accepted ones. */
            assert_int_equal(e, i < LIMIT ? AREDIS_ERR_OK : AREDIS_ERR_QUEUE_FULL);
        }
        assert_int_equal(accepted, LIMIT);
        assert_int_equal(refused, BURST - LIMIT);
        assert_int_equal(aredis_client_pending(x.c), LIMIT);
        /* The accepted ones time out; the refused ones never run. */
        assert_true(ts_wait_count(x.rig.loop, &g_tally.done, LIMIT, 10000));
        aredis_loop_run_once(x.rig.loop, 0);
        assert_int_equal(g_tally.done, LIMIT);
        assert_int_equal(g_tally.by_code[AREDIS_ERR_TIMEOUT], LIMIT);
        for (int i = LIMIT; i < BURST; i++)
            assert_int_equal(res[i].calls, 0);
        /* Their slots are free again: the second round is the same. */
        assert_int_equal(aredis_client_pending(x.c), 0);
    }
    assert_int_equal(x.cc.connects, 1);
    outage_end(&x);
}

/* ---- 4. A cancelled queued command is freed at once ------------------------ */

static void issue_and_cancel(aredis_client *c, aredis_future **fs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        fs[i] = aredis_future_command(c, "SET qm:f:%zu %zu", i, i);
        assert_non_null(fs[i]);
        assert_false(aredis_future_is_done(fs[i]));
    }
    assert_int_equal(aredis_client_pending(c), n);
    for (size_t i = 0; i < n; i++) {
        aredis_future_cancel(fs[i]);
        assert_true(aredis_future_is_done(fs[i]));
        assert_int_equal(aredis_future_error(fs[i])->code, AREDIS_ERR_CANCELLED);
        aredis_future_release(fs[i]);
    }
    assert_int_equal(aredis_client_pending(c), 0);
}

static void test_cancelled_freed_at_once(void **state) {
    (void)state;
    enum { WARM = 2000, N = 10000 };
    outage_rig x;
    outage_start(&x, 0, 0);
    aredis_future **fs = calloc(N, sizeof *fs);
    assert_non_null(fs);

    issue_and_cancel(x.c, fs, WARM);
    long long l0 = settled_live(x.rig.loop, x.c);
    long long b0 = ts_heap_blocks();
    issue_and_cancel(x.c, fs, N);
    /* At once: the loop has not run since. */
    long long l1 = ts_heap_live();
    ts_log("after %d futures cancelled and released: %+lld bytes in %+lld blocks", N, l1 - l0,
           ts_heap_blocks() - b0);
    assert_at_most(l1 - l0, 8192, "growth after the cancelled commands");

    free(fs);
    outage_recover(&x);
    /* Nothing cancelled was sent after the reconnect. */
    aredis_future *f = ts_cmd(x.c, "EXISTS qm:f:0 qm:f:1 qm:f:%d", N - 1);
    assert_null(aredis_future_error(f));
    assert_int_equal(aredis_future_reply(f)->integer, 0);
    aredis_future_release(f);
    ts_proxied_stop(&x.rig, x.c);
}

int main(void) {
    /* Before any aredis call: every block the library holds is counted. */
    aredis_set_allocator(ts_heap_hooks());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queued_command_cost),
        TS_CASE("test_timeouts_default_timeout", test_timeouts_during_outage, k_default_timeout),
        TS_CASE("test_timeouts_per_command_timeout", test_timeouts_during_outage,
                k_per_command_timeout),
        cmocka_unit_test(test_bound_during_outage),
        cmocka_unit_test(test_cancelled_freed_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
