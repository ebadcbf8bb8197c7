/*
 * Transactions (aredis/tx.h) against a real server, in RESP3 and then RESP2:
 * MULTI/EXEC's result array; a WATCH abort (NIL, no error); check-and-set;
 * EXECABORT with the bad command named; a run-time error in its slot; the
 * commands a transaction sends itself refused; never interleaved with
 * plain commands; the WATCH reservation (plain commands on the client wait
 * until the EXEC, free and discard end it); a failed WATCH does not keep
 * the connection reserved; a reconnect between WATCH and EXEC; a connection
 * lost while MULTI..EXEC is in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "rec.h"
#include "ts.h"

static const char *const k_debug_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv;
static aredis_loop *g_loop;
static int g_proto; /* 3, then 2 */

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_debug_conf, 0);
    g_loop = aredis_loop_new();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

static aredis_options opts(void) {
    aredis_options o = ts_options(g_srv);
    o.protocol = g_proto;
    return o;
}

static aredis_client *client(void) {
    aredis_options o = opts();
    aredis_client *c = ts_connect(g_loop, &o);
    assert_int_equal(aredis_client_protocol(c), g_proto);
    return c;
}

/* A second client (RESP2): another user of the server. */
static aredis_client *observer(void) {
    aredis_options o = ts_options(g_srv);
    o.protocol = 2;
    return ts_connect(g_loop, &o);
}

/* ---- Recording outcomes -------------------------------------------------- */

/* GET key on c is want (NULL: nil). */
static void get_is(aredis_client *c, const char *key, const char *want) {
    aredis_future *f = ts_cmd(c, "GET %s", key);
    assert_null(aredis_future_error(f));
    if (want)
        ts_assert_str(aredis_future_reply(f), want);
    else
        assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_NIL);
    aredis_future_release(f);
}

/* Run a command whose reply does not matter, asserting it succeeded. */
static void run(aredis_client *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    va_end(ap);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
}

static int is_connection_error(aredis_err e) { return e == AREDIS_ERR_IO || e == AREDIS_ERR_EOF; }

static void watch1(aredis_tx *tx, const char *key) {
    const char *keys[] = {key};
    aredis_future *w = aredis_tx_watch_future(tx, 1, keys, NULL);
    assert_non_null(w);
    assert_int_equal(aredis_await(w), AREDIS_ERR_OK);
    ts_assert_status(aredis_future_reply(w), "OK");
    aredis_future_release(w);
}

/* ---- MULTI / EXEC -------------------------------------------------------- */

static void test_multi_exec_array(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_tx *tx = aredis_tx_new(c);
    assert_non_null(tx);
    for (int form = 0; form < 2; form++) {
        run(c, "DEL tx:a tx:l");
        assert_int_equal(aredis_tx_queue(tx, "SET %s %d", "tx:a", 1), AREDIS_ERR_OK);
        assert_int_equal(aredis_tx_queue(tx, "INCR tx:a"), AREDIS_ERR_OK);
        const char *argv[] = {"GET", "tx:a"};
        assert_int_equal(aredis_tx_queue_argv(tx, 2, argv, NULL), AREDIS_ERR_OK);
        assert_int_equal(aredis_tx_queue(tx, "RPUSH tx:l x y"), AREDIS_ERR_OK);
        assert_int_equal(aredis_tx_size(tx), 4);
        ts_rec x = {0};
        aredis_future *f = NULL;
        aredis_reply *r;
        if (form == 0) {
            assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_OK);
            assert_int_equal(aredis_tx_size(tx), 0);
            ts_rec_wait(g_loop, &x, 5000);
            assert_int_equal(x.calls, 1);
            assert_int_equal(x.code, AREDIS_ERR_OK);
            r = x.r;
        } else {
            f = aredis_tx_exec_future(tx);
            assert_non_null(f);
            assert_int_equal(aredis_tx_size(tx), 0);
            assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
            r = aredis_future_reply(f);
        }
        assert_false(aredis_tx_aborted(r));
        ts_assert_array(r, 4);
        ts_assert_status(r->element[0], "OK");
        ts_assert_int(r->element[1], 2);
        ts_assert_str(r->element[2], "2");
        ts_assert_int(r->element[3], 2);
        aredis_future_release(f);
        ts_rec_clear(&x);
    }
    aredis_tx_free(tx);
    aredis_client_free(c);
}

/* A watched key changed by another client: EXEC answers nil, no error;
 * nothing queued ran; the connection is free again afterwards. */
static void test_watch_abort(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_client *obs = observer();
    ts_cmd_ok(obs, "SET tx:w start");
    aredis_tx *tx = aredis_tx_new(c);
    watch1(tx, "tx:w");
    ts_cmd_ok(obs, "SET tx:w other");
    aredis_tx_queue(tx, "SET tx:w mine");
    aredis_tx_queue(tx, "SET tx:w2 mine");
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_null(aredis_future_error(f));
    assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_NIL);
    assert_true(aredis_tx_aborted(aredis_future_reply(f)));
    aredis_future_release(f);
    get_is(obs, "tx:w", "other");
    get_is(obs, "tx:w2", NULL);
    assert_false(aredis_tx_aborted(NULL));

    /* The same transaction again, unwatched now: it runs. */
    aredis_tx_queue(tx, "SET tx:w mine");
    ts_rec x = {0};
    assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &x, 5000);
    assert_int_equal(x.code, AREDIS_ERR_OK);
    assert_false(aredis_tx_aborted(x.r));
    ts_assert_array(x.r, 1);
    ts_rec_clear(&x);
    get_is(obs, "tx:w", "mine");
    ts_echo_tokens(c, "after-abort", 5, 5000, "a WATCH abort");
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
}

/* Check-and-set: WATCH, read on the transaction's connection, queue the
 * write computed from it, EXEC. Future style, then callback style. */
static void test_check_and_set(void **state) {
    (void)state;
    aredis_client *c = client();
    ts_cmd_ok(c, "SET tx:bal 100");
    aredis_tx *tx = aredis_tx_new(c);

    watch1(tx, "tx:bal");
    aredis_future *g = aredis_tx_future_command(tx, "GET %s", "tx:bal");
    assert_int_equal(aredis_await(g), AREDIS_ERR_OK);
    ts_assert_str(aredis_future_reply(g), "100");
    long long bal = atoll(aredis_future_reply(g)->str);
    aredis_future_release(g);
    assert_int_equal(aredis_tx_queue(tx, "SET tx:bal %lld", bal - 10), AREDIS_ERR_OK);
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_array(aredis_future_reply(f), 1);
    ts_assert_status(aredis_future_reply(f)->element[0], "OK");
    aredis_future_release(f);
    ts_cmd_bytes(c, "90", 2, "GET tx:bal");

    /* Callback style: watch, read, queue from the read's callback. */
    ts_rec w = {0}, rd = {0}, x = {0};
    const char *keys[] = {"tx:bal", "tx:other"};
    assert_int_equal(aredis_tx_watch(tx, ts_on_rec, &w, 2, keys, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_command(tx, ts_on_rec, &rd, "GET tx:bal"), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &rd, 5000);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.code, AREDIS_ERR_OK);
    ts_assert_status(w.r, "OK");
    assert_true(w.seq < rd.seq);
    assert_int_equal(rd.code, AREDIS_ERR_OK);
    ts_assert_str(rd.r, "90");
    aredis_tx_queue(tx, "DECRBY tx:bal %d", 15);
    assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &x, 5000);
    assert_int_equal(x.code, AREDIS_ERR_OK);
    ts_assert_array(x.r, 1);
    ts_assert_int(x.r->element[0], 75);

    /* A server error on a read between WATCH and EXEC: SERVER, as a plain
     * command's. */
    ts_rec bad = {0};
    watch1(tx, "tx:bal");
    assert_int_equal(aredis_tx_command(tx, ts_on_rec, &bad, "LLEN tx:bal"), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &bad, 5000);
    assert_int_equal(bad.code, AREDIS_ERR_SERVER);
    assert_string_equal(bad.prefix, "WRONGTYPE");
    aredis_tx_discard(tx);
    ts_rec_clear(&w);
    ts_rec_clear(&rd);
    ts_rec_clear(&x);
    ts_rec_clear(&bad);
    aredis_tx_free(tx);
    ts_echo_tokens(c, "after-cas", 5, 5000, "check-and-set");
    aredis_client_free(c);
}

/* A queued command the server refuses: EXECABORT, the bad command and the
 * server's reason in the detail, nothing ran. */
static void test_execabort(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_tx *tx = aredis_tx_new(c);
    struct {
        const char *bad;
        const char *name, *reason;
    } cases[] = {
        {"NOSUCHCMD tx:ea", "NOSUCHCMD", "unknown command"},
        {"SET tx:ea:only", "SET", "wrong number of arguments"},
    };
    for (int i = 0; i < 2; i++) {
        run(c, "DEL tx:ea:1 tx:ea:2");
        aredis_tx_queue(tx, "SET tx:ea:1 v");
        assert_int_equal(aredis_tx_queue(tx, cases[i].bad), AREDIS_ERR_OK);
        aredis_tx_queue(tx, "SET tx:ea:2 v");
        ts_rec x = {0};
        assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_OK);
        ts_rec_wait(g_loop, &x, 5000);
        ts_log("EXECABORT (%s): %s [%s] %s", cases[i].bad, aredis_err_name(x.code), x.prefix,
               x.detail);
        assert_int_equal(x.calls, 1);
        assert_int_equal(x.code, AREDIS_ERR_SERVER);
        assert_string_equal(x.prefix, "EXECABORT");
        assert_non_null(strstr(x.detail, cases[i].name));
        assert_non_null(strstr(x.detail, cases[i].reason));
        assert_non_null(strstr(x.detail, "command 2"));
        ts_rec_clear(&x);
        get_is(c, "tx:ea:1", NULL);
        get_is(c, "tx:ea:2", NULL);
    }
    /* The future form: failed with the same error. */
    aredis_tx_queue(tx, "NOSUCHCMD");
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_SERVER);
    assert_string_equal(aredis_future_error(f)->prefix, "EXECABORT");
    assert_non_null(strstr(aredis_future_error(f)->detail, "NOSUCHCMD"));
    aredis_future_release(f);
    ts_echo_tokens(c, "after-execabort", 5, 5000, "EXECABORT");
    aredis_tx_free(tx);
    aredis_client_free(c);
}

/* A command failing while EXEC runs: its ERROR in its slot, the others
 * applied, the exec a success. */
static void test_runtime_error_in_slot(void **state) {
    (void)state;
    aredis_client *c = client();
    ts_cmd_ok(c, "SET tx:r:s text");
    ts_cmd_ok(c, "SET tx:r:t 0");
    aredis_tx *tx = aredis_tx_new(c);
    aredis_tx_queue(tx, "INCR tx:r:t");
    aredis_tx_queue(tx, "INCR tx:r:s");
    aredis_tx_queue(tx, "LPUSH tx:r:s x");
    aredis_tx_queue(tx, "INCR tx:r:t");
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_reply *r = aredis_future_reply(f);
    ts_assert_array(r, 4);
    ts_assert_int(r->element[0], 1);
    assert_int_equal(r->element[1]->type, AREDIS_REPLY_ERROR);
    assert_true(strncmp(r->element[1]->str, "ERR", 3) == 0);
    assert_int_equal(r->element[2]->type, AREDIS_REPLY_ERROR);
    assert_true(strncmp(r->element[2]->str, "WRONGTYPE", 9) == 0);
    ts_assert_int(r->element[3], 2);
    aredis_future_release(f);
    ts_cmd_bytes(c, "2", 1, "GET tx:r:t");
    aredis_tx_free(tx);
    aredis_client_free(c);
}

/* MULTI, EXEC, DISCARD: INVALID, nothing queued; the client's refusals,
 * WATCH and UNWATCH among them: UNSUPPORTED; an empty exec: INVALID. */
static void test_queue_refusals(void **state) {
    (void)state;
    aredis_client *c = client();
    /* No transaction: the future forms give NULL and say INVALID. */
    const char *k[] = {"tx:q"};
    assert_null(aredis_tx_exec_future(NULL));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_null(aredis_tx_future_command(NULL, "GET tx:q"));
    assert_null(aredis_tx_watch_future(NULL, 1, k, NULL));
    aredis_tx *tx = aredis_tx_new(c);
    assert_int_equal(aredis_tx_queue(tx, "INCR tx:q"), AREDIS_ERR_OK);
    const char *own[] = {"MULTI", "EXEC", "DISCARD", "multi", "Exec"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        aredis_err e = aredis_tx_queue(tx, own[i]);
        if (e != AREDIS_ERR_INVALID) fail_msg("%s: %s, want INVALID", own[i], aredis_err_name(e));
        assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
        assert_int_equal(aredis_tx_size(tx), 1);
    }
    const char *watch[] = {"WATCH tx:q", "UNWATCH", "watch tx:q"};
    for (size_t i = 0; i < sizeof watch / sizeof *watch; i++) {
        aredis_err e = aredis_tx_queue(tx, watch[i]);
        if (e != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s: %s, want UNSUPPORTED", watch[i], aredis_err_name(e));
        assert_int_equal(aredis_tx_size(tx), 1);
    }
    const char *argv[] = {"multi"};
    assert_int_equal(aredis_tx_queue_argv(tx, 1, argv, NULL), AREDIS_ERR_INVALID);
    const char *refused[] = {"SUBSCRIBE tx:ch", "AUTH pw", "HELLO 3", "MONITOR"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        aredis_err e = aredis_tx_queue(tx, refused[i]);
        if (e != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s: %s, want UNSUPPORTED", refused[i], aredis_err_name(e));
        assert_int_equal(aredis_tx_size(tx), 1);
    }
    assert_int_equal(aredis_tx_queue(tx, NULL), AREDIS_ERR_INVALID);
    const char *none[] = {"tx:q"};
    assert_int_equal(aredis_tx_watch(tx, NULL, NULL, 0, none, NULL), AREDIS_ERR_INVALID);

    run(c, "DEL tx:q");
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_array(aredis_future_reply(f), 1);
    ts_assert_int(aredis_future_reply(f)->element[0], 1);
    aredis_future_release(f);

    /* Empty: INVALID, callback never runs; the future form already failed. */
    ts_rec x = {0};
    assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_INVALID);
    f = aredis_tx_exec_future(tx);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);
    ts_echo_tokens(c, "after-refusals", 3, 5000, "refusals");
    assert_int_equal(x.calls, 0);
    aredis_tx_free(tx);
    aredis_client_free(c);
}

/* ---- Never interleaved ------------------------------------------------- */

typedef struct mix {
    aredis_client *c;
    ts_rec plain[8];
    ts_rec tx[3];
    size_t done;
    aredis_tx *later;
} mix;

/* From the first transaction's callback: a plain INCR and a transaction. */
static void on_first_tx(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    mix *m = data;
    ts_on_rec(c, r, err, &m->tx[0]);
    if (aredis_command(c, ts_on_rec, &m->plain[6], "INCR tx:ni:plain") != AREDIS_ERR_OK)
        m->plain[6].calls = -1;
    aredis_tx_queue(m->later, "INCR tx:ni:t3");
    aredis_tx_queue(m->later, "INCR tx:ni:t3");
    if (aredis_tx_exec(m->later, ts_on_rec, &m->tx[2]) != AREDIS_ERR_OK) m->tx[2].calls = -1;
    if (aredis_command(c, ts_on_rec, &m->plain[7], "INCR tx:ni:plain") != AREDIS_ERR_OK)
        m->plain[7].calls = -1;
}

/*
 * Plain INCRs issued between the queue calls of two transactions, and from
 * the first transaction's callback: each plain INCR gets its own integer
 * (inside MULTI it would have answered QUEUED) in issue order, and each
 * transaction's array holds exactly its own commands' results.
 */
static void test_never_interleaved(void **state) {
    (void)state;
    aredis_client *c = client();
    run(c, "DEL tx:ni:plain tx:ni:t1 tx:ni:t2 tx:ni:t3");
    mix m;
    memset(&m, 0, sizeof m);
    m.c = c;
    m.later = aredis_tx_new(c);
    for (int i = 0; i < 8; i++)
        m.plain[i].counter = &m.done;
    for (int i = 0; i < 3; i++)
        m.tx[i].counter = &m.done;
    aredis_tx *t1 = aredis_tx_new(c), *t2 = aredis_tx_new(c);
    int p = 0;
    for (int i = 0; i < 3; i++) {
        aredis_tx_queue(t1, "INCR tx:ni:t1");
        assert_int_equal(aredis_command(c, ts_on_rec, &m.plain[p++], "INCR tx:ni:plain"),
                         AREDIS_ERR_OK);
        aredis_tx_queue(t2, "INCR tx:ni:t2");
    }
    aredis_tx_queue(t2, "INCR tx:ni:t2");
    assert_int_equal(aredis_tx_exec(t1, on_first_tx, &m), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &m.plain[p++], "INCR tx:ni:plain"),
                     AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_exec(t2, ts_on_rec, &m.tx[1]), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &m.plain[p++], "INCR tx:ni:plain"),
                     AREDIS_ERR_OK);
    assert_int_equal(p, 5);
    m.plain[5].calls = 1; /* unused slot */
    m.done++;
    assert_true(ts_wait_count(g_loop, &m.done, 11, 5000));

    long long want = 1;
    for (int i = 0; i < 8; i++) {
        if (i == 5) continue;
        assert_int_equal(m.plain[i].calls, 1);
        assert_int_equal(m.plain[i].code, AREDIS_ERR_OK);
        ts_assert_int(m.plain[i].r, want++); /* never QUEUED */
    }
    const long long sizes[] = {3, 4, 2};
    for (int t = 0; t < 3; t++) {
        assert_int_equal(m.tx[t].calls, 1);
        assert_int_equal(m.tx[t].code, AREDIS_ERR_OK);
        ts_assert_array(m.tx[t].r, (size_t)sizes[t]);
        for (size_t i = 0; i < (size_t)sizes[t]; i++)
            ts_assert_int(m.tx[t].r->element[i], (long long)i + 1);
    }
    /* Issue order is completion order. */
    assert_true(m.plain[2].seq < m.tx[0].seq);
    assert_true(m.tx[0].seq < m.plain[3].seq);
    assert_true(m.plain[3].seq < m.tx[1].seq);
    assert_true(m.tx[1].seq < m.plain[4].seq);
    assert_true(m.plain[4].seq < m.plain[6].seq);
    assert_true(m.plain[6].seq < m.tx[2].seq);
    assert_true(m.tx[2].seq < m.plain[7].seq);
    for (int i = 0; i < 8; i++)
        ts_rec_clear(&m.plain[i]);
    for (int i = 0; i < 3; i++)
        ts_rec_clear(&m.tx[i]);
    aredis_tx_free(t1);
    aredis_tx_free(t2);
    aredis_tx_free(m.later);
    aredis_client_free(c);
}

/* ---- The WATCH reservation ---------------------------------------------- */

/*
 * After WATCH, `SET watched other` issued as a plain command on the same
 * client is held until the EXEC has been written: the transaction is not
 * aborted by it, the exec's callback runs first, and the plain SET's value
 * is the last one. Once with the WATCH answered first, once all in one
 * loop turn.
 */
static void test_reservation_holds_plain_commands(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_tx *tx = aredis_tx_new(c);
    for (int turn = 0; turn < 2; turn++) {
        ts_cmd_ok(c, "SET tx:rv start");
        ts_rec plain = {0}, plain_get = {0}, x = {0};
        const char *keys[] = {"tx:rv"};
        if (turn == 0) {
            watch1(tx, "tx:rv");
        } else {
            assert_int_equal(aredis_tx_watch(tx, NULL, NULL, 1, keys, NULL), AREDIS_ERR_OK);
        }
        assert_int_equal(aredis_command(c, ts_on_rec, &plain, "SET tx:rv other"), AREDIS_ERR_OK);
        assert_int_equal(aredis_command(c, ts_on_rec, &plain_get, "GET tx:rv"), AREDIS_ERR_OK);
        /* A pipeline issued elsewhere waits too. */
        aredis_pipeline *p = aredis_pipeline_new(c);
        aredis_pipeline_command(p, "ECHO piped");
        ts_rec piped = {0};
        assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &piped), AREDIS_ERR_OK);
        aredis_pipeline_free(p);
        if (turn == 0) {
            /* A read on the transaction's connection goes ahead of them. */
            aredis_future *g = aredis_tx_future_command(tx, "GET tx:rv");
            assert_int_equal(aredis_await(g), AREDIS_ERR_OK);
            ts_assert_str(aredis_future_reply(g), "start");
            aredis_future_release(g);
            assert_int_equal(plain.calls, 0); /* held */
            assert_int_equal(plain_get.calls, 0);
            assert_int_equal(piped.calls, 0);
        }
        aredis_tx_queue(tx, "SET tx:rv mine");
        aredis_tx_queue(tx, "GET tx:rv");
        assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_OK);
        ts_rec_wait(g_loop, &piped, 5000);
        assert_int_equal(x.calls, 1);
        assert_int_equal(x.code, AREDIS_ERR_OK);
        assert_false(aredis_tx_aborted(x.r)); /* the plain SET came after EXEC */
        ts_assert_array(x.r, 2);
        ts_assert_str(x.r->element[1], "mine");
        assert_int_equal(plain.code, AREDIS_ERR_OK);
        assert_true(x.seq < plain.seq);
        assert_true(plain.seq < plain_get.seq);
        ts_assert_str(plain_get.r, "other");
        assert_true(plain_get.seq < piped.seq);
        assert_int_equal(piped.code, AREDIS_ERR_OK);
        ts_assert_array(piped.r, 1);
        ts_assert_str(piped.r->element[0], "piped");
        ts_rec_clear(&piped);
        ts_rec_clear(&plain);
        ts_rec_clear(&plain_get);
        ts_rec_clear(&x);
    }
    aredis_tx_free(tx);
    aredis_client_free(c);
}

/* Freeing a watching transaction ends the reservation: held commands go. */
static void test_free_releases_reservation(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_tx *tx = aredis_tx_new(c);
    watch1(tx, "tx:fr");
    ts_rec plain = {0};
    assert_int_equal(aredis_command(c, ts_on_rec, &plain, "ECHO held"), AREDIS_ERR_OK);
    aredis_future *g = aredis_tx_future_command(tx, "PING");
    assert_int_equal(aredis_await(g), AREDIS_ERR_OK);
    aredis_future_release(g);
    assert_int_equal(plain.calls, 0);
    aredis_tx_free(tx);
    ts_rec_wait(g_loop, &plain, 5000);
    assert_int_equal(plain.code, AREDIS_ERR_OK);
    ts_assert_str(plain.r, "held");
    ts_rec_clear(&plain);
    ts_echo_tokens(c, "after-free", 5, 5000, "a freed watching transaction");
    aredis_client_free(c);
}

/*
 * Two transactions watching on one client: the second's WATCH (and its
 * reads and EXEC) wait behind the first's reservation, so neither sees the
 * other's writes as a change made between its WATCH and EXEC: both commit.
 */
static void test_two_watchers(void **state) {
    (void)state;
    aredis_client *c = client();
    ts_cmd_ok(c, "SET tx:2w 0");
    aredis_tx *t1 = aredis_tx_new(c), *t2 = aredis_tx_new(c);
    const char *keys[] = {"tx:2w"};
    ts_rec w1 = {0}, w2 = {0}, r1 = {0}, r2 = {0}, x1 = {0}, x2 = {0};
    assert_int_equal(aredis_tx_watch(t1, ts_on_rec, &w1, 1, keys, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_watch(t2, ts_on_rec, &w2, 1, keys, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_command(t2, ts_on_rec, &r2, "GET tx:2w"), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_command(t1, ts_on_rec, &r1, "GET tx:2w"), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &r1, 5000);
    assert_int_equal(w2.calls, 0); /* held behind t1's reservation */
    assert_int_equal(r2.calls, 0);
    ts_assert_str(r1.r, "0");
    aredis_tx_queue(t2, "INCRBY tx:2w 10");
    assert_int_equal(aredis_tx_exec(t2, ts_on_rec, &x2), AREDIS_ERR_OK); /* waits too */
    aredis_tx_queue(t1, "INCRBY tx:2w 1");
    assert_int_equal(aredis_tx_exec(t1, ts_on_rec, &x1), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &x2, 5000);
    assert_int_equal(x1.code, AREDIS_ERR_OK);
    assert_int_equal(x2.code, AREDIS_ERR_OK);
    assert_false(aredis_tx_aborted(x1.r));
    assert_false(aredis_tx_aborted(x2.r));
    ts_assert_int(x1.r->element[0], 1);
    ts_assert_int(x2.r->element[0], 11);
    ts_assert_str(r2.r, "1"); /* t2 read after t1's EXEC */
    assert_true(x1.seq < w2.seq && w2.seq < r2.seq && r2.seq < x2.seq);
    ts_cmd_bytes(c, "11", 2, "GET tx:2w");
    ts_rec *all[] = {&w1, &w2, &r1, &r2, &x1, &x2};
    for (size_t i = 0; i < 6; i++)
        ts_rec_clear(all[i]);
    aredis_tx_free(t1);
    aredis_tx_free(t2);
    ts_echo_tokens(c, "after-two", 5, 5000, "two watchers");
    aredis_client_free(c);
}

typedef struct write_wait {
    aredis_client *c;
    uint64_t bytes_before;
} write_wait;

static int bytes_went_out(const void *arg) {
    const write_wait *w = arg;
    aredis_client_stats now;
    aredis_client_get_stats(w->c, &now);
    return now.bytes_out > w->bytes_before;
}

/* A WATCH cancelled once written (its future): the reservation it took
 * ends; the exec reports the WATCH gone. */
static void test_cancelled_watch_releases(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_cmd_opts none = AREDIS_CMD_OPTS_INIT;
    none.flags = AREDIS_CMD_NO_TIMEOUT;
    aredis_future *sleep = aredis_future_command_ex(c, &none, "DEBUG SLEEP 0.3");
    aredis_tx *tx = aredis_tx_new(c);
    const char *keys[] = {"tx:cw"};
    write_wait ww = {c, 0};
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    ww.bytes_before = st.bytes_out;
    aredis_future *w = aredis_tx_watch_future(tx, 1, keys, NULL);
    assert_true(ts_wait_until(g_loop, bytes_went_out, &ww, 5000));
    assert_false(aredis_future_is_done(w)); /* written; the server is asleep */
    aredis_future_cancel(w);
    assert_int_equal(aredis_future_error(w)->code, AREDIS_ERR_CANCELLED);
    aredis_future_release(w);
    ts_echo_tokens(c, "after-cancelled-watch", 5, 5000, "a cancelled WATCH");
    assert_int_equal(aredis_await(sleep), AREDIS_ERR_OK);
    aredis_future_release(sleep);
    aredis_tx_queue(tx, "SET tx:cw x");
    assert_int_equal(aredis_tx_exec(tx, NULL, NULL), AREDIS_ERR_IO);
    assert_int_equal(aredis_tx_size(tx), 0);
    aredis_tx_free(tx);
    aredis_client_free(c);
}

/*
 * Discard sends UNWATCH: after it, another client's write to the key does
 * not abort a later MULTI/EXEC on the same connection (a WATCH still in
 * force would), and held commands go.
 */
static void test_discard_unwatches(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_client *obs = observer();
    aredis_tx *tx = aredis_tx_new(c);
    watch1(tx, "tx:d");
    aredis_tx_queue(tx, "SET tx:d never");
    ts_rec plain = {0};
    assert_int_equal(aredis_command(c, ts_on_rec, &plain, "ECHO held"), AREDIS_ERR_OK);
    aredis_tx_discard(tx);
    assert_int_equal(aredis_tx_size(tx), 0);
    ts_rec_wait(g_loop, &plain, 5000);
    ts_assert_str(plain.r, "held");
    ts_rec_clear(&plain);
    ts_cmd_ok(obs, "SET tx:d changed");

    aredis_tx *other = aredis_tx_new(c);
    aredis_tx_queue(other, "SET tx:d2 ran");
    aredis_future *f = aredis_tx_exec_future(other);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_false(aredis_tx_aborted(aredis_future_reply(f)));
    ts_assert_array(aredis_future_reply(f), 1);
    aredis_future_release(f);
    get_is(obs, "tx:d", "changed");
    get_is(obs, "tx:d2", "ran");
    /* The discarded transaction is usable again. */
    aredis_tx_queue(tx, "GET tx:d");
    f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_array(aredis_future_reply(f), 1);
    ts_assert_str(aredis_future_reply(f)->element[0], "changed");
    aredis_future_release(f);
    aredis_tx_free(other);
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
}

/*
 * A WATCH the server refuses (an ACL user without WATCH: NOPERM) took the
 * reservation when it was written; it must not keep it: plain commands on
 * the client go on, the exec reports the lost WATCH, free is clean.
 */
static void test_failed_watch_releases(void **state) {
    (void)state;
    aredis_client *admin = observer();
    ts_cmd_ok(admin, "ACL SETUSER txnowatch on >pw ~* &* +@all -watch");
    aredis_options o = opts();
    o.username = "txnowatch";
    o.password = "pw";
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_tx *tx = aredis_tx_new(c);
    const char *keys[] = {"tx:fw"};
    aredis_future *w = aredis_tx_watch_future(tx, 1, keys, NULL);
    assert_int_equal(aredis_await(w), AREDIS_ERR_SERVER);
    ts_log("WATCH refused: %s", aredis_future_error(w)->detail);
    assert_string_equal(aredis_future_error(w)->prefix, "NOPERM");
    aredis_future_release(w);
    /* Not held behind a reservation nobody will end. */
    ts_echo_tokens(c, "after-noperm", 5, 3000, "a refused WATCH");
    aredis_tx_queue(tx, "SET tx:fw x");
    ts_rec x = {0};
    aredis_err e = aredis_tx_exec(tx, ts_on_rec, &x);
    ts_log("exec after a refused WATCH: %s (%s)", aredis_err_name(e), aredis_call_error()->detail);
    assert_int_equal(e, AREDIS_ERR_IO);
    aredis_tx_free(tx);
    ts_echo_tokens(c, "after-noperm-free", 5, 3000, "a refused WATCH, freed");
    get_is(admin, "tx:fw", NULL);
    aredis_client_free(c);
    run(admin, "ACL DELUSER txnowatch");
    aredis_client_free(admin);
}

/* A WATCH that timed out on the wire (the server busy) holds the
 * reservation too: it must end, not block the client for good. */
static void test_timed_out_watch_releases(void **state) {
    (void)state;
    aredis_options o = opts();
    o.request_timeout_ms = 300;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_cmd_opts none = AREDIS_CMD_OPTS_INIT;
    none.flags = AREDIS_CMD_NO_TIMEOUT;
    aredis_future *sleep = aredis_future_command_ex(c, &none, "DEBUG SLEEP 0.6");
    aredis_tx *tx = aredis_tx_new(c);
    const char *keys[] = {"tx:tw"};
    aredis_future *w = aredis_tx_watch_future(tx, 1, keys, NULL);
    assert_int_equal(aredis_await(w), AREDIS_ERR_TIMEOUT);
    aredis_future_release(w);
    assert_int_equal(aredis_await(sleep), AREDIS_ERR_OK);
    aredis_future_release(sleep);
    /* The exec reports the WATCH lost; then plain commands must flow. */
    aredis_tx_queue(tx, "SET tx:tw x");
    ts_rec x = {0};
    aredis_err e = aredis_tx_exec(tx, ts_on_rec, &x);
    ts_log("exec after a timed-out WATCH: %s", aredis_err_name(e));
    assert_int_equal(e, AREDIS_ERR_IO);
    ts_echo_tokens(c, "after-watch-timeout", 5, 3000, "a timed-out WATCH");
    aredis_tx_free(tx);
    aredis_client_free(c);
}

/*
 * A WATCH held behind another transaction's reservation times out there;
 * the EXEC issued behind it must fail with it, not run later unwatched
 * once the other transaction is done.
 */
static void test_held_watch_timeout_fails_exec(void **state) {
    (void)state;
    aredis_options o = opts();
    o.request_timeout_ms = 300;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_client *obs = observer();
    ts_cmd_ok(obs, "SET tx:hw start");
    aredis_tx *t1 = aredis_tx_new(c), *t2 = aredis_tx_new(c);
    watch1(t1, "tx:hw"); /* t1 holds the connection */
    const char *keys[] = {"tx:hw"};
    ts_rec w2 = {0}, x2 = {0};
    assert_int_equal(aredis_tx_watch(t2, ts_on_rec, &w2, 1, keys, NULL), AREDIS_ERR_OK);
    aredis_tx_queue(t2, "SET tx:hw t2");
    aredis_cmd_opts long_wait = AREDIS_CMD_OPTS_INIT;
    long_wait.timeout_ms = 10000; /* outlives its WATCH's 300 ms */
    assert_int_equal(aredis_tx_exec_ex(t2, &long_wait, ts_on_rec, &x2), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &w2, 3000);
    assert_int_equal(w2.code, AREDIS_ERR_TIMEOUT);
    ts_rec_wait(g_loop, &x2, 3000); /* failed with its WATCH, long before its own deadline */
    assert_int_equal(x2.code, AREDIS_ERR_IO);
    ts_log("exec behind a timed-out held WATCH: %s", aredis_err_name(x2.code));
    /* t1 finishes; nothing of t2 may run afterwards. */
    aredis_tx_queue(t1, "SET tx:hw t1");
    aredis_future *f = aredis_tx_exec_future(t1);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    ts_echo_tokens(c, "after-held-timeout", 5, 3000, "a held WATCH that timed out");
    get_is(obs, "tx:hw", "t1");
    ts_rec *all[] = {&w2, &x2};
    for (size_t i = 0; i < 2; i++)
        ts_rec_clear(all[i]);
    aredis_tx_free(t1);
    aredis_tx_free(t2);
    aredis_client_free(obs);
    aredis_client_free(c);
}

/* ---- Connections lost --------------------------------------------------- */

static void on_conn(aredis_client *c, void *data) {
    (void)c;
    (*(size_t *)data)++;
}

/*
 * WATCH, then the connection is killed and the client reconnects: the
 * server forgot the WATCH, so the exec is refused with IO ("connection lost
 * after WATCH") and nothing ran; the transaction is reset; a plain command
 * held by the reservation is not lost; watching again works.
 */
static void test_reconnect_between_watch_and_exec(void **state) {
    (void)state;
    size_t connects = 0;
    aredis_options o = opts();
    o.on_connect = on_conn;
    o.cb_data = &connects;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_client *obs = observer();
    ts_cmd_ok(obs, "SET tx:rc start");
    long long id = ts_client_id(c);
    aredis_tx *tx = aredis_tx_new(c);
    watch1(tx, "tx:rc");
    ts_rec held = {0};
    assert_int_equal(aredis_command(c, ts_on_rec, &held, "ECHO held"), AREDIS_ERR_OK);
    aredis_tx_queue(tx, "SET tx:rc mine");

    aredis_future *k = ts_cmd(obs, "CLIENT KILL ID %lld", id);
    ts_assert_int(aredis_future_reply(k), 1);
    aredis_future_release(k);
    assert_true(ts_wait_count(g_loop, &connects, 2, 5000));
    ts_rec_wait(g_loop, &held, 5000); /* carried over to the new connection */
    assert_int_equal(held.code, AREDIS_ERR_OK);
    ts_assert_str(held.r, "held");
    ts_rec_clear(&held);

    ts_rec x = {0};
    assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_IO);
    ts_log("exec after a reconnect: %s", aredis_call_error()->detail);
    assert_non_null(strstr(aredis_call_error()->detail, "WATCH"));
    assert_int_equal(aredis_tx_size(tx), 0); /* reset: nothing stale left to run */
    get_is(obs, "tx:rc", "start");

    /* Watch again: it works on the new connection. */
    watch1(tx, "tx:rc");
    aredis_tx_queue(tx, "SET tx:rc again");
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_array(aredis_future_reply(f), 1);
    aredis_future_release(f);
    get_is(obs, "tx:rc", "again");
    ts_echo_tokens(c, "after-reconnect", 5, 5000, "a reconnect between WATCH and EXEC");
    assert_int_equal(x.calls, 0);
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
}

/* The same with a read and the future form: both refused with IO. */
/*
 * A second WATCH on top of one lost with its connection would leave the
 * first key unwatched: refused (IO), the transaction reset; the next
 * WATCH works.
 */
static void test_rewatch_after_lost_watch(void **state) {
    (void)state;
    size_t connects = 0;
    aredis_options o = opts();
    o.on_connect = on_conn;
    o.cb_data = &connects;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_client *obs = observer();
    long long id = ts_client_id(c);
    aredis_tx *tx = aredis_tx_new(c);
    watch1(tx, "tx:rw:a");
    aredis_tx_queue(tx, "SET tx:rw:a stale");
    aredis_future *k = ts_cmd(obs, "CLIENT KILL ID %lld", id);
    ts_assert_int(aredis_future_reply(k), 1);
    aredis_future_release(k);
    assert_true(ts_wait_count(g_loop, &connects, 2, 5000));
    const char *keys[] = {"tx:rw:b"};
    ts_rec w = {0};
    assert_int_equal(aredis_tx_watch(tx, ts_on_rec, &w, 1, keys, NULL), AREDIS_ERR_IO);
    assert_non_null(strstr(aredis_call_error()->detail, "WATCH"));
    assert_int_equal(aredis_tx_size(tx), 0);
    watch1(tx, "tx:rw:b");
    aredis_tx_queue(tx, "SET tx:rw:b fresh");
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_array(aredis_future_reply(f), 1);
    aredis_future_release(f);
    get_is(obs, "tx:rw:b", "fresh");
    aredis_future *g = ts_cmd(obs, "EXISTS tx:rw:a");
    ts_assert_int(aredis_future_reply(g), 0);
    aredis_future_release(g);
    assert_int_equal(w.calls, 0);
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
}

static void test_reconnect_refuses_reads_and_future(void **state) {
    (void)state;
    size_t connects = 0;
    aredis_options o = opts();
    o.on_connect = on_conn;
    o.cb_data = &connects;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_client *obs = observer();
    long long id = ts_client_id(c);
    aredis_tx *tx = aredis_tx_new(c);
    watch1(tx, "tx:rc2");
    aredis_tx_queue(tx, "SET tx:rc2 mine");
    aredis_future *k = ts_cmd(obs, "CLIENT KILL ID %lld", id);
    aredis_future_release(k);
    assert_true(ts_wait_count(g_loop, &connects, 2, 5000));
    ts_rec rd = {0};
    assert_int_equal(aredis_tx_command(tx, ts_on_rec, &rd, "GET tx:rc2"), AREDIS_ERR_IO);
    /* The exec still knows the WATCH is gone. */
    aredis_future *f = aredis_tx_exec_future(tx);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_IO);
    aredis_future_release(f);
    get_is(obs, "tx:rc2", NULL);
    assert_int_equal(rd.calls, 0);
    ts_echo_tokens(c, "after-reconnect-2", 5, 5000, "refused reads");
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
}

/*
 * The connection is reset (by the proxy) before the client has noticed;
 * the EXEC is issued then, so it goes into the output but is never written:
 * the write (or the read before it) finds the reset.
 *
 * answered = 1: the WATCH was written and answered before the reset; it
 * died with the connection, so the EXEC must fail with the connection
 * error — never be sent again on the next connection without it (another
 * client changed the watched key: running it would show).
 *
 * answered = 0: WATCH, queue and EXEC all in the same loop turn, after the
 * reset: neither was written, so both go out on the next connection, in
 * order (the WATCH then sees the key as it is now: not aborted), and the
 * reservation the resent WATCH takes is ended by the resent EXEC.
 */
static void exec_unwritten(int answered) {
    ts_proxy *px = ts_proxy_start(ts_server_host(g_srv), ts_server_port(g_srv));
    size_t connects = 0;
    aredis_options o = opts();
    o.port = ts_proxy_port(px);
    o.on_connect = on_conn;
    o.cb_data = &connects;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_client *obs = observer();
    ts_cmd_ok(obs, "SET tx:ul start");
    aredis_tx *tx = aredis_tx_new(c);
    if (answered) {
        watch1(tx, "tx:ul");
        ts_cmd_ok(obs, "SET tx:ul changed"); /* the WATCH would abort the EXEC */
        ts_proxy_reset_all(px);              /* the client has not run since: it does not know */
    } else {
        ts_cmd_ok(obs, "SET tx:ul changed");
        ts_proxy_reset_all(px);
        const char *keys[] = {"tx:ul"};
        assert_int_equal(aredis_tx_watch(tx, NULL, NULL, 1, keys, NULL), AREDIS_ERR_OK);
    }
    aredis_tx_queue(tx, "SET tx:ul mine");
    ts_rec x = {0};
    aredis_err e = aredis_tx_exec(tx, ts_on_rec, &x);
    if (e == AREDIS_ERR_OK) {
        ts_rec_wait(g_loop, &x, 5000);
    } else {
        x.code = e;
        snprintf(x.detail, sizeof x.detail, "refused: %s", aredis_call_error()->detail);
    }
    ts_log("WATCH %s, exec on a reset connection: %s (%s)",
           answered ? "answered" : "in the same turn", aredis_err_name(x.code), x.detail);
    assert_true(ts_wait_count(g_loop, &connects, 2, 5000));
    ts_echo_tokens(c, "after-reset", 5, 5000, "an exec on a reset connection");
    if (answered) {
        get_is(obs, "tx:ul", "changed"); /* never ran without its WATCH */
        assert_true(is_connection_error(x.code));
    } else {
        assert_int_equal(x.code, AREDIS_ERR_OK);
        ts_assert_array(x.r, 1);
        get_is(obs, "tx:ul", "mine");
    }
    ts_rec_clear(&x);
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
    ts_proxy_stop(px);
}

static void test_exec_unwritten_after_answered_watch(void **state) {
    (void)state;
    exec_unwritten(1);
}

static void test_watch_and_exec_unwritten(void **state) {
    (void)state;
    exec_unwritten(0);
}

/*
 * The connection dies while MULTI..EXEC is in flight, after EXEC reached
 * the server: the proxy cuts the reply in half and closes. The exec fails
 * with the connection error — and the server ran it whole (once EXEC
 * arrived, Redis runs the transaction): the client cannot know which.
 */
static void test_lost_after_exec_reached_server(void **state) {
    (void)state;
    ts_proxy *px = ts_proxy_start(ts_server_host(g_srv), ts_server_port(g_srv));
    aredis_options o = opts();
    o.port = ts_proxy_port(px);
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_client *obs = observer();
    run(obs, "DEL tx:lx:a tx:lx:b");
    aredis_tx *tx = aredis_tx_new(c);
    aredis_tx_queue(tx, "SET tx:lx:a 1");
    aredis_tx_queue(tx, "SET tx:lx:b 1");
    ts_proxy_cut_next_reply(px);
    ts_rec x = {0};
    assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &x, 5000);
    ts_log("reply cut after EXEC: %s (%s)", aredis_err_name(x.code), x.detail);
    assert_int_equal(x.calls, 1);
    assert_true(is_connection_error(x.code));
    assert_null(x.r);
    get_is(obs, "tx:lx:a", "1");
    get_is(obs, "tx:lx:b", "1");
    ts_rec_clear(&x);
    ts_echo_tokens(c, "after-cut", 5, 5000, "a cut EXEC reply");
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
    ts_proxy_stop(px);
}

/*
 * Observation, not a guarantee: [SET a, DEBUG SLEEP 0.5, SET b] in a
 * transaction; once its bytes are written, another client kills the
 * connection. The server is single-threaded: the kill is read only after
 * EXEC (and its sleep) ran, so the transaction ran whole; whether its reply
 * got out before the close depends on the server's write order. What is
 * asserted: one outcome; all or nothing applied; an OK exec has all three
 * results.
 */
static void test_killed_during_exec(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_client *obs = observer();
    run(obs, "DEL tx:kd:a tx:kd:b");
    long long id = ts_client_id(c);
    aredis_tx *tx = aredis_tx_new(c);
    aredis_tx_queue(tx, "SET tx:kd:a 1");
    aredis_tx_queue(tx, "DEBUG SLEEP 0.5");
    aredis_tx_queue(tx, "SET tx:kd:b 1");
    write_wait ww = {c, 0};
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    ww.bytes_before = st.bytes_out;
    ts_rec x = {0};
    assert_int_equal(aredis_tx_exec(tx, ts_on_rec, &x), AREDIS_ERR_OK);
    assert_true(ts_wait_until(g_loop, bytes_went_out, &ww, 5000));
    ts_result kill = {0};
    assert_int_equal(aredis_command(obs, ts_on_reply, &kill, "CLIENT KILL ID %lld SKIPME no", id),
                     AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &x, 5000);
    assert_true(ts_wait(g_loop, &kill.done, 5000));
    ts_log("killed during EXEC's sleep: exec %s (%s), kill answered %lld", aredis_err_name(x.code),
           x.detail, kill.integer);
    assert_int_equal(x.calls, 1);
    aredis_future *a = ts_cmd(obs, "EXISTS tx:kd:a tx:kd:b");
    long long n = aredis_future_reply(a)->integer;
    aredis_future_release(a);
    ts_log("keys applied: %lld of 2", n);
    assert_true(n == 0 || n == 2); /* all or nothing */
    if (x.code == AREDIS_ERR_OK) {
        ts_assert_array(x.r, 3);
        assert_int_equal(n, 2);
    } else {
        assert_true(is_connection_error(x.code));
    }
    ts_rec_clear(&x);
    ts_echo_tokens(c, "after-kill-exec", 5, 5000, "a kill during EXEC");
    aredis_tx_free(tx);
    aredis_client_free(obs);
    aredis_client_free(c);
}

static int run_group(int proto) {
    g_proto = proto;
    ts_log("---- RESP%d ----", proto);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_exec_array),
        cmocka_unit_test(test_watch_abort),
        cmocka_unit_test(test_check_and_set),
        cmocka_unit_test(test_execabort),
        cmocka_unit_test(test_runtime_error_in_slot),
        cmocka_unit_test(test_queue_refusals),
        cmocka_unit_test(test_never_interleaved),
        cmocka_unit_test(test_reservation_holds_plain_commands),
        cmocka_unit_test(test_free_releases_reservation),
        cmocka_unit_test(test_two_watchers),
        cmocka_unit_test(test_cancelled_watch_releases),
        cmocka_unit_test(test_discard_unwatches),
        cmocka_unit_test(test_failed_watch_releases),
        cmocka_unit_test(test_timed_out_watch_releases),
        cmocka_unit_test(test_reconnect_between_watch_and_exec),
        cmocka_unit_test(test_rewatch_after_lost_watch),
        cmocka_unit_test(test_held_watch_timeout_fails_exec),
        cmocka_unit_test(test_reconnect_refuses_reads_and_future),
        cmocka_unit_test(test_exec_unwritten_after_answered_watch),
        cmocka_unit_test(test_watch_and_exec_unwritten),
        cmocka_unit_test(test_lost_after_exec_reached_server),
        cmocka_unit_test(test_killed_during_exec),
    };
    return cmocka_run_group_tests_name(proto == 3 ? "transaction RESP3" : "transaction RESP2",
                                       tests, setup, teardown);
}

int main(void) {
    int failed = run_group(3);
    failed += run_group(2);
    return failed ? 1 : 0;
}
