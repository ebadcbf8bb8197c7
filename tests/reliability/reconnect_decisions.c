/*
 * reconnect decisions (reliability): what the reconnect policy does with
 * each way a connection can end, and the order the connection callbacks run
 * in.
 *
 *  1. Transient refusals answered to the handshake (LOADING, BUSY,
 *     MASTERDOWN, TRYAGAIN, "max number of clients reached"; to HELLO and to
 *     the lone RESP2 PING) are retried with backoff like a failed connect,
 *     on the first connect and on a reconnect alike: the client is READY on
 *     the next connection, on_error runs once per failed connection,
 *     on_disconnect never for the refused one (it was not established). On
 *     a reconnect, the ready future and a command issued while reconnecting
 *     (never written) wait through the refused attempt and succeed; on the
 *     first connect they either do the same or fail once with the refusal.
 *     Permanent refusals (WRONGPASS, NOAUTH, NOPERM) fail with AUTH and are
 *     not retried; an invalid database fails with HANDSHAKE, not retried.
 *  2. No teardown runs inside another: a dead-link teardown (TIMEOUT) that
 *     fails an in-flight health-check PING reports the lost connection once
 *     (one on_error, one on_disconnect) and schedules exactly one reconnect.
 *  3. on_disconnect runs only for a connection that was established (after
 *     on_connect): not for a failed connect, nor for close() while
 *     CONNECTING or in the HANDSHAKE; once, with CLOSED, for a READY one.
 *  4. A forked child with reconnect_in_child: the command that adopts the
 *     inherited client runs no callback from inside the call; the inherited
 *     command and on_error get FORKED once each, later, from the loop, and
 *     the new command is answered on a connection of the child's own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counters.h"
#include "fake_server.h"
#include "proxy.h"

/* Let the loop run a while: nothing more may happen (no retry, no second
 * report). A bounded wait for a condition that must NOT come true. */
static void drain(aredis_loop *loop, uint64_t ms) {
    int never = 0;
    (void)ts_wait(loop, &never, ms);
}

/* The attempt numbers passed to on_reconnect_attempt, on top of the shared
 * counters. */
static unsigned g_attempt_no[32];

static void rec_attempt(aredis_client *c, unsigned attempt, uint32_t delay, void *data) {
    conn_counters *k = data;
    if (k->attempts < 32) g_attempt_no[k->attempts] = attempt;
    cc_on_attempt(c, attempt, delay, data);
}

/* The detail of the last on_error, for checking that the server's words
 * reach it. */
static char g_error_detail[256];
static aredis_err g_error_code;

static void rec_error(aredis_client *c, const aredis_error *err, void *data) {
    snprintf(g_error_detail, sizeof g_error_detail, "%s", err->detail ? err->detail : "");
    g_error_code = err->code;
    cc_on_error(c, err, data);
}

static void wire(aredis_options *o, conn_counters *k) {
    cc_wire(o, k);
    o->on_reconnect_attempt = rec_attempt;
    o->on_error = rec_error;
    memset(g_attempt_no, 0, sizeof g_attempt_no);
    g_error_detail[0] = '\0';
    g_error_code = AREDIS_ERR_OK;
}

/* Options for a client of 127.0.0.1:port, with the counters k wired. */
static aredis_options port_options(int port, uint32_t connect_timeout_ms, conn_counters *k) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = port;
    o.connect_timeout_ms = connect_timeout_ms;
    wire(&o, k);
    return o;
}

/* A new client with options o, connecting (not waited for). */
static aredis_client *connecting(aredis_loop *loop, const aredis_options *o) {
    aredis_client *c = aredis_client_new(loop, o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    return c;
}

/* Wait for c's ready future: its outcome, logged after `what`. */
static aredis_err ready_outcome(aredis_client *c, const char *what) {
    char why[512];
    aredis_err e = ts_await_ready(c, why, sizeof why);
    ts_log("%s: %s %s", what, aredis_err_name(e), why);
    return e;
}

/* Free c, then loop: freeing the client reports no more disconnects than
 * the `disconnects` it has seen. */
static void free_client(aredis_client *c, aredis_loop *loop, const conn_counters *k,
                        int disconnects) {
    aredis_client_free(c);
    assert_int_equal(k->disconnects, disconnects);
    aredis_loop_free(loop);
}

/* The connect failed for good: nothing more happens in drain_ms (no retry,
 * no second report), and the client is IDLE after one error. */
static void gave_up(aredis_loop *loop, aredis_client *c, const conn_counters *k,
                    uint64_t drain_ms) {
    drain(loop, drain_ms);
    cc_expect(k, 0, 0, 1, 0);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
}

/* ---- 1. Handshake refusals: transient ones retried, permanent ones not --- */

typedef struct refusal {
    const char *line; /* the error the server answers the handshake with */
    const char *word; /* what the connection error's detail must quote */
    int protocol;     /* 3: answered to HELLO; 2: to the lone PING */
    aredis_err want;  /* permanent: the ready future's outcome */
} refusal;

/* A normal server's answer to the handshake of a client with default
 * options speaking `protocol`. */
static void script_handshake(ts_fake *f, int protocol) {
    if (protocol == 3)
        ts_fake_hello3(f);
    else
        ts_fake_reply(f, "+PONG\r\n"); /* the lone RESP2 PING */
}

/* Connection 1 refused: every command, until the client hangs up (so a
 * client that fell back from HELLO to RESP2 meets the refusal again). Then
 * a normal server. */
static void script_refused_once(ts_fake *f, const refusal *rf) {
    ts_fake_serve(f, rf->line);
    ts_fake_next_conn(f);
    script_handshake(f, rf->protocol);
    ts_fake_serve(f, "+OK\r\n");
}

/* Connection 1 up: it answers one PING, then the server closes it.
 * Connection 2 refused, connection 3 normal (script_refused_once). */
static void script_up_then_refused(ts_fake *f, const refusal *rf) {
    script_handshake(f, rf->protocol);
    ts_fake_reply(f, "+PONG\r\n");
    ts_fake_close(f);
    ts_fake_next_conn(f);
    script_refused_once(f, rf);
}

/* Every connection refused, every command. */
static void script_refused_always(ts_fake *f, const refusal *rf) { ts_fake_serve(f, rf->line); }

/* A refusal case: the fake, and a client of it with its counters. */
typedef struct {
    const refusal *rf;
    ts_fake *f;
    aredis_loop *loop;
    conn_counters k;
    aredis_client *c;
} refusal_rig;

/*
 * Start the fake playing script, then a client of it speaking the refusal's
 * protocol (the case's state), retrying every 20 ms: connecting, not waited
 * for. With get, a GET is issued into it at once. `when` names the
 * handshake refused, for the log.
 */
static void refusal_start(refusal_rig *r, void **state, const char *when,
                          void (*script)(ts_fake *, const refusal *), ts_result *get) {
    r->rf = *state;
    ts_log("%s (RESP%d) answered: %.*s", when, r->rf->protocol, (int)strlen(r->rf->line) - 2,
           r->rf->line);
    r->f = ts_fake_new();
    script(r->f, r->rf);
    ts_fake_start(r->f);
    r->loop = aredis_loop_new();
    aredis_options o = port_options(ts_fake_port(r->f), 5000, &r->k);
    o.protocol = r->rf->protocol;
    o.reconnect = 1;
    o.reconnect_delay_ms = 20;
    o.reconnect_jitter = 0; /* exact delays: the backoff of a failed connect */
    o.request_timeout_ms = 10000;
    r->c = connecting(r->loop, &o);
    if (get) {
        memset(get, 0, sizeof *get);
        assert_int_equal(aredis_command(r->c, ts_on_reply, get, "GET k"), AREDIS_ERR_OK);
    }
}

static void refusal_stop(refusal_rig *r) {
    aredis_client_free(r->c);
    aredis_loop_free(r->loop);
    ts_fake_stop(r->f);
}

/* Connected again after the refusal: READY on the refusal's protocol, the
 * last error quoting the server, the reconnects numbered 1, 2, ... with
 * the doubling delays of failed attempts, on `connections` accepted. */
static void check_retried(const refusal_rig *r, size_t connections) {
    assert_int_equal(aredis_client_state(r->c), AREDIS_STATE_READY);
    assert_int_equal(aredis_client_protocol(r->c), r->rf->protocol);
    assert_non_null(strstr(g_error_detail, r->rf->word));
    for (int i = 0; i < r->k.attempts; i++) {
        assert_int_equal(g_attempt_no[i], i + 1);
        assert_int_equal(r->k.attempt_delay[i], 20u << i);
    }
    assert_int_equal(ts_fake_accepted(r->f), connections);
}

typedef struct {
    aredis_client *c;
    const conn_counters *k;
} settled_arg;

static int connected_or_idle(const void *p) {
    const settled_arg *a = p;
    return a->k->connects > 0 || aredis_client_state(a->c) == AREDIS_STATE_IDLE;
}

/*
 * The refusal answers the FIRST connect. The policy retries it in the
 * background; whether the first connect's waiters (the ready future, a
 * command issued at once) wait for the retry or fail with the refusal is a
 * separate option (first-connect semantics), so either is accepted for them
 * — but a failure must be the refusal itself, once, never a hang. What must
 * hold: the client connects on the next attempt, with one error reported.
 */
static void test_transient_refusal_first_connect(void **state) {
    refusal_rig r;
    ts_result get;
    refusal_start(&r, state, "first handshake", script_refused_once, &get);
    aredis_err first = ready_outcome(r.c, "first ready future");
    /* Retried: the next attempt connects (an IDLE client has given up). */
    settled_arg sa = {r.c, &r.k};
    assert_true(ts_wait_until(r.loop, connected_or_idle, &sa, 5000));
    if (!r.k.connects)
        fail_msg("not retried: the client gave up after %s (%s)", aredis_err_name(g_error_code),
                 g_error_detail);
    char why[512];
    aredis_err e = ts_await_ready(r.c, why, sizeof why);
    ts_log("ready: %s %s; errors=%d attempts=%d error: %s %s", aredis_err_name(e), why, r.k.errors,
           r.k.attempts, aredis_err_name(g_error_code), g_error_detail);
    assert_int_equal(e, AREDIS_ERR_OK);

    /* One failed connection: one error quoting the server, one reconnect
     * scheduled (attempt 1, the first backoff delay), no on_disconnect (it
     * was never established), then one on_connect. */
    cc_expect(&r.k, 1, 0, 1, 1);
    check_retried(&r, 2);

    /* The first connect's waiters: kept for the retry, or failed once with
     * the refusal — nothing else, and nothing hangs. */
    assert_true(ts_wait(r.loop, &get.done, 5000));
    drain(r.loop, 50);
    assert_int_equal(get.calls, 1);
    if (first != AREDIS_ERR_OK) assert_int_equal(first, g_error_code);
    if (get.code == AREDIS_ERR_OK)
        assert_string_equal(get.text, "OK");
    else
        assert_int_equal(get.code, g_error_code);
    /* A command now is answered. */
    ts_cmd_ok(r.c, "SET k v");
    refusal_stop(&r);
}

/*
 * The refusal answers a RECONNECT (the client had been up): commands issued
 * while reconnecting were never written, so they are kept through the
 * refused attempt and answered on the next one; the ready future waits for
 * it too. The refused attempt counts as a failed attempt: attempt 2, with
 * the doubled delay.
 */
static void test_transient_refusal_on_reconnect(void **state) {
    refusal_rig r;
    refusal_start(&r, state, "reconnect handshake", script_up_then_refused, NULL);
    assert_int_equal(ready_outcome(r.c, "ready"), AREDIS_ERR_OK);
    aredis_future *pf = ts_cmd(r.c, "PING");
    assert_null(aredis_future_error(pf));
    assert_string_equal(aredis_future_reply(pf)->str, "PONG");
    aredis_future_release(pf);

    /* Connection 1 is lost (EOF). While the client reconnects (nothing is
     * written until a connection is READY), issue a command and ask for the
     * ready future. */
    assert_true(ts_wait(r.loop, &r.k.disconnects, 5000));
    assert_int_equal(r.k.last_disconnect, AREDIS_ERR_EOF);
    assert_int_not_equal(aredis_client_state(r.c), AREDIS_STATE_READY);
    ts_result get = {0};
    assert_int_equal(aredis_command(r.c, ts_on_reply, &get, "GET k"), AREDIS_ERR_OK);
    aredis_future *ready = aredis_future_ready(r.c);
    assert_non_null(ready);

    aredis_err e = aredis_await(ready);
    ts_log("ready: %s %s; errors=%d attempts=%d error: %s %s", aredis_err_name(e),
           e ? aredis_future_error(ready)->detail : "", r.k.errors, r.k.attempts,
           aredis_err_name(g_error_code), g_error_detail);
    assert_int_equal(e, AREDIS_ERR_OK);
    aredis_future_release(ready);
    assert_true(ts_wait(r.loop, &get.done, 5000));
    drain(r.loop, 50);
    assert_int_equal(get.calls, 1);
    if (get.code != AREDIS_ERR_OK)
        fail_msg("GET issued while reconnecting failed: %s instead of being kept",
                 aredis_err_name(get.code));
    assert_string_equal(get.text, "OK");

    /* Two failed connections (lost, then refused): two errors, the last
     * quoting the server; two reconnects scheduled, numbered 1 and 2 with
     * the doubling delay of failed attempts; on_disconnect only for the
     * established one. */
    cc_expect(&r.k, 2, 1, 2, 2);
    check_retried(&r, 3);
    refusal_stop(&r);
}

static void test_permanent_refusal_not_retried(void **state) {
    refusal_rig r;
    ts_result get;
    refusal_start(&r, state, "handshake", script_refused_always, &get);
    assert_int_equal(ready_outcome(r.c, "ready"), r.rf->want);
    /* Long enough for several retries at 20 ms, had one been scheduled. */
    gave_up(r.loop, r.c, &r.k, 300);
    assert_int_equal(g_error_code, r.rf->want);
    assert_int_equal(ts_fake_accepted(r.f), 1);
    assert_int_equal(get.calls, 1);
    assert_int_equal(get.code, r.rf->want);
    refusal_stop(&r);
}

static void test_invalid_db_not_retried(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.db = 99999;
    o.reconnect = 1;
    o.reconnect_delay_ms = 20;
    conn_counters k;
    wire(&o, &k);
    aredis_client *c = connecting(loop, &o);
    assert_int_equal(ready_outcome(c, "db 99999"), AREDIS_ERR_HANDSHAKE);
    gave_up(loop, c, &k, 300);
    free_client(c, loop, &k, 0);
    ts_server_stop(s);
}

/* ---- 2. A teardown that fails the health PING does not nest another ------ */

typedef struct {
    aredis_client *c;
    uint64_t base;
} writes_arg;

static int wrote_more(const void *p) {
    const writes_arg *a = p;
    aredis_client_stats st;
    aredis_client_get_stats(a->c, &st);
    return st.write_calls > a->base;
}

static int connects_reach_2(const void *p) { return ((const conn_counters *)p)->connects >= 2; }

static void test_dead_link_with_health_ping_in_flight(void **state) {
    (void)state;
    ts_proxied r;
    aredis_options o = ts_proxied_start(&r);
    o.health_check_interval_ms = 100;
    o.request_timeout_ms = 3000; /* the health PING's deadline: never reached here */
    o.dead_timeout_ms = 300;
    o.reconnect = 1;
    o.reconnect_delay_ms = 2000; /* one attempt scheduled during the test */
    o.max_reconnect_attempts = 1;
    conn_counters k;
    wire(&o, &k);
    aredis_client *c = ts_connect(r.loop, &o);
    assert_int_equal(k.connects, 1);

    /* The link goes silent; wait for the health PING to go out into it (no
     * user command is issued meanwhile, so any write is the PING). */
    ts_proxy_blackhole(r.px, 1);
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    assert_int_equal(st.commands, 0);
    writes_arg wa = {c, st.write_calls};
    assert_true(ts_wait_until(r.loop, wrote_more, &wa, 3000));

    /* A command that times out on the wire: from now on, dead_timeout_ms of
     * silence declares the link dead (TIMEOUT), which also fails the PING. */
    ts_result cmd = {0};
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 50;
    const char *argv[] = {"GET", "dead:key"};
    assert_int_equal(aredis_command_argv_ex(c, &co, ts_on_reply, &cmd, 2, argv, NULL),
                     AREDIS_ERR_OK);
    assert_true(ts_wait(r.loop, &cmd.done, 3000));
    assert_int_equal(cmd.code, AREDIS_ERR_TIMEOUT);

    assert_true(ts_wait(r.loop, &k.errors, 5000));
    drain(r.loop, 300); /* a nested or second report would show by now */
    ts_log("after the dead link: errors=%d disconnects=%d attempts=%d (no. %u) state=%s "
           "last error: %s",
           k.errors, k.disconnects, k.attempts, g_attempt_no[0],
           aredis_state_name(aredis_client_state(c)), aredis_client_last_error(c)->detail);
    assert_int_equal(cmd.calls, 1);
    cc_expect(&k, 1, 1, 1, 1);
    assert_int_equal(g_error_code, AREDIS_ERR_TIMEOUT);
    assert_int_equal(k.last_disconnect, AREDIS_ERR_TIMEOUT);
    assert_int_equal(g_attempt_no[0], 1);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_RECONNECTING);

    /* The link comes back: the scheduled attempt reconnects. */
    ts_proxy_blackhole(r.px, 0);
    assert_true(ts_wait_until(r.loop, connects_reach_2, &k, 10000));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    ts_cmd_ok(c, "SET %s %s", "dead:after", "ok");
    cc_expect(&k, 2, 1, 1, 1);

    ts_proxied_stop(&r, c);
}

/* ---- 3. on_disconnect only for an established connection ---------------- */

/* A listener that never answers (its fd in *lfd: close it), and a client
 * with the counters k connecting to it. */
static aredis_client *silent_peer_client(aredis_loop *loop, int *lfd, uint32_t connect_timeout_ms,
                                         int reconnect, conn_counters *k) {
    int port;
    *lfd = ts_silent_listener(&port);
    aredis_options o = port_options(port, connect_timeout_ms, k);
    o.reconnect = reconnect;
    return connecting(loop, &o);
}

static void test_failed_connect_no_disconnect(void **state) {
    (void)state;
    aredis_loop *loop = aredis_loop_new();
    conn_counters k;
    int lfd;
    aredis_client *c = silent_peer_client(loop, &lfd, 200, 0, &k);
    assert_int_not_equal(ready_outcome(c, "silent listener"), AREDIS_ERR_OK);
    gave_up(loop, c, &k, 50);
    free_client(c, loop, &k, 0);
    close(lfd);
}

static void test_close_while_connecting_no_disconnect(void **state) {
    (void)state;
    aredis_loop *loop = aredis_loop_new();
    conn_counters k;
    int lfd;
    aredis_client *c = silent_peer_client(loop, &lfd, 5000, 1, &k);
    ts_result get = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &get, "GET k"), AREDIS_ERR_OK);
    /* No loop turn yet: the connect's result has not been looked at. */
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CONNECTING);
    aredis_client_close(c);
    assert_int_equal(get.calls, 1);
    assert_int_equal(get.code, AREDIS_ERR_CANCELLED);
    drain(loop, 50);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CLOSED);
    cc_expect(&k, 0, 0, 0, 0);
    free_client(c, loop, &k, 0);
    close(lfd);
}

static int fake_read_one(const void *p) { return ts_fake_commands((ts_fake *)p) >= 1; }

static void test_close_in_handshake_no_disconnect(void **state) {
    (void)state;
    ts_fake *f = ts_fake_new();
    ts_fake_read_cmd(f, 1); /* the HELLO, never answered */
    ts_fake_sleep(f, 5000);
    ts_fake_start(f);
    aredis_loop *loop = aredis_loop_new();
    conn_counters k;
    aredis_options o = port_options(ts_fake_port(f), 10000, &k);
    aredis_client *c = connecting(loop, &o);
    assert_true(ts_wait_until(loop, fake_read_one, f, 5000));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_HANDSHAKE);
    aredis_client_close(c);
    drain(loop, 50);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CLOSED);
    cc_expect(&k, 0, 0, 0, 0);
    free_client(c, loop, &k, 0);
    ts_fake_stop(f);
}

static void test_close_established_disconnects_once(void **state) {
    (void)state;
    ts_fake *f = ts_fake_new();
    ts_fake_hello3(f);
    ts_fake_serve(f, "+OK\r\n");
    ts_fake_start(f);
    aredis_loop *loop = aredis_loop_new();
    conn_counters k;
    aredis_options o = port_options(ts_fake_port(f), 5000, &k);
    aredis_client *c = ts_connect(loop, &o);
    ts_cmd_ok(c, "SET k v");
    cc_expect(&k, 1, 0, 0, 0);
    aredis_client_close(c);
    assert_true(ts_wait(loop, &k.disconnects, 2000));
    drain(loop, 50);
    cc_expect(&k, 1, 1, 0, 0);
    assert_int_equal(k.last_disconnect, AREDIS_ERR_CLOSED);
    free_client(c, loop, &k, 1);
    ts_fake_stop(f);
}

/* ---- 4. Fork: adopting the inherited client runs no callback inside ----- */

/* Child check bits (exit status). */
#define CK_AFTER_FORK 0x01 /* aredis_loop_after_fork failed */
#define CK_ISSUE 0x02      /* the command in the child was refused */
#define CK_IN_CALL 0x04    /* a callback ran from inside aredis_command */
#define CK_TIMED_OUT 0x08  /* the loop never completed everything */
#define CK_INHERITED 0x10  /* the inherited BLPOP: not once with FORKED */
#define CK_ON_ERROR 0x20   /* on_error: not once with FORKED */
#define CK_NEW_CMD 0x40    /* the new command: not once, OK, own connection */

static const ts_child_check k_child_checks[] = {
    {CK_AFTER_FORK, "aredis_loop_after_fork() failed"},
    {CK_ISSUE, "issuing a command on the inherited client was refused"},
    {CK_IN_CALL, "a callback (on_error, on_disconnect, the inherited command's) ran from "
                 "inside aredis_command()"},
    {CK_TIMED_OUT, "the loop did not complete the inherited and the new command in time"},
    {CK_INHERITED, "the inherited BLPOP did not complete exactly once with FORKED"},
    {CK_ON_ERROR, "on_error did not run exactly once with FORKED"},
    {CK_NEW_CMD, "the new command was not answered once, on a connection of the child's own"},
};

static volatile int g_in_call;

typedef struct {
    int calls, in_call;
    aredis_err code;
    long long integer;
} fork_rec;

static fork_rec g_fk_error, g_fk_disconnect;

/* One more call of k's callback, with code; from inside a call or not. */
static void fk_record(fork_rec *k, aredis_err code) {
    k->calls++;
    k->code = code;
    if (g_in_call) k->in_call++;
}

static void fk_on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    fk_record(&g_fk_error, err->code);
}

static void fk_on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    fk_record(&g_fk_disconnect, err->code);
}

static void fk_on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    fork_rec *k = data;
    if (r && r->type == AREDIS_REPLY_INTEGER) k->integer = r->integer;
    fk_record(k, err ? err->code : AREDIS_ERR_OK);
}

static void child_tick(void *arg) { (void)arg; }

/* The child's own bounded wait (no cmocka in the child). */
static int child_wait(aredis_loop *loop, const fork_rec *a, const fork_rec *b, int ms) {
    aredis_timer *t = aredis_timer_new(loop, child_tick, NULL);
    if (!t) return 0;
    uint64_t until = ts_now_ms() + (uint64_t)ms;
    while (!(a->calls && b->calls && g_fk_error.calls) && ts_now_ms() < until) {
        aredis_timer_start(t, 20, 0);
        aredis_loop_run_once(loop, 1);
    }
    /* A little more: nothing may run twice. */
    uint64_t settle = ts_now_ms() + 50;
    while (ts_now_ms() < settle) {
        aredis_timer_start(t, 10, 0);
        aredis_loop_run_once(loop, 1);
    }
    aredis_timer_free(t);
    return a->calls && b->calls && g_fk_error.calls;
}

static int fork_child(aredis_loop *loop, aredis_client *c, fork_rec *blpop, long long parent_id) {
    int bad = 0;
    alarm(30); /* a hang kills the child; the parent sees the signal */
    memset(&g_fk_error, 0, sizeof g_fk_error);
    memset(&g_fk_disconnect, 0, sizeof g_fk_disconnect);
    if (aredis_loop_after_fork(loop) != AREDIS_ERR_OK) bad |= CK_AFTER_FORK;

    fork_rec id = {0};
    g_in_call = 1;
    aredis_err e = aredis_command(c, fk_on_reply, &id, "CLIENT ID");
    g_in_call = 0;
    if (e != AREDIS_ERR_OK) bad |= CK_ISSUE;
    if (g_fk_error.in_call || g_fk_disconnect.in_call || blpop->in_call || id.in_call)
        bad |= CK_IN_CALL;

    if (e == AREDIS_ERR_OK && !child_wait(loop, blpop, &id, 10000)) bad |= CK_TIMED_OUT;
    if (blpop->calls != 1 || blpop->code != AREDIS_ERR_FORKED) bad |= CK_INHERITED;
    if (g_fk_error.calls != 1 || g_fk_error.code != AREDIS_ERR_FORKED) bad |= CK_ON_ERROR;
    if (e == AREDIS_ERR_OK &&
        (id.calls != 1 || id.code != AREDIS_ERR_OK || id.integer <= 0 || id.integer == parent_id))
        bad |= CK_NEW_CMD;
    /* Whatever ran later ran from the loop, not from inside a call. */
    if (g_fk_error.in_call || g_fk_disconnect.in_call || blpop->in_call || id.in_call)
        bad |= CK_IN_CALL;

    aredis_client_free(c);
    aredis_loop_free(loop);
    return bad;
}

static void test_fork_adopt_runs_no_callback_inside_call(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.reconnect_in_child = 1;
    o.on_error = fk_on_error;
    o.on_disconnect = fk_on_disconnect;
    memset(&g_fk_error, 0, sizeof g_fk_error);
    memset(&g_fk_disconnect, 0, sizeof g_fk_disconnect);
    aredis_client *c = ts_connect(loop, &o);
    long long parent_id = ts_client_id(c);
    assert_true(parent_id > 0);

    /* In flight at the fork: a BLPOP with no deadline, surely written. */
    fork_rec blpop = {0};
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_NO_TIMEOUT;
    const char *argv[] = {"BLPOP", "fork:nokey", "5"};
    assert_int_equal(aredis_command_argv_ex(c, &co, fk_on_reply, &blpop, 3, argv, NULL),
                     AREDIS_ERR_OK);
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    writes_arg wa = {c, st.write_calls};
    assert_true(ts_wait_until(loop, wrote_more, &wa, 5000));
    assert_int_equal(blpop.calls, 0);

    pid_t pid = ts_fork();
    if (pid == 0) _exit(fork_child(loop, c, &blpop, parent_id));
    ts_wait_child(pid, k_child_checks, sizeof k_child_checks / sizeof k_child_checks[0]);

    /* The parent saw nothing of it. */
    assert_int_equal(g_fk_error.calls, 0);
    assert_int_equal(g_fk_disconnect.calls, 0);
    assert_int_equal(blpop.calls, 0);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    aredis_client_free(c);
    assert_int_equal(blpop.calls, 1);
    assert_int_equal(blpop.code, AREDIS_ERR_CANCELLED);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* ---- The cases ------------------------------------------------------------ */

/* A refusal as answered to HELLO (name##3) and to the lone RESP2 PING
 * (name##2). */
#define REFUSAL(name, line, word, want)                                                            \
    static const refusal name##3 = {line, word, 3, want};                                          \
    static const refusal name##2 = {line, word, 2, want}
#define TRANSIENT(name, line, word) REFUSAL(name, line, word, AREDIS_ERR_OK)
#define PERMANENT(name, line, word) REFUSAL(name, line, word, AREDIS_ERR_AUTH)
TRANSIENT(t_loading, "-LOADING Redis is loading the dataset in memory\r\n", "LOADING");
TRANSIENT(t_busy, "-BUSY Redis is busy running a script.\r\n", "BUSY");
TRANSIENT(t_masterdown, "-MASTERDOWN Link with MASTER is down\r\n", "MASTERDOWN");
TRANSIENT(t_tryagain, "-TRYAGAIN please\r\n", "TRYAGAIN");
TRANSIENT(t_maxclients, "-ERR max number of clients reached\r\n", "max number of clients");
PERMANENT(p_wrongpass, "-WRONGPASS invalid username-password pair\r\n", "WRONGPASS");
PERMANENT(p_noauth, "-NOAUTH Authentication required.\r\n", "NOAUTH");
PERMANENT(p_noperm, "-NOPERM this user has no permissions\r\n", "NOPERM");

/* A parametrised case, named after what it answers. */
#define CASE(fn, label, param) TS_CASE(#fn "(" label ")", fn, param)
/* The cases of fn for a refusal answered to HELLO and to the RESP2 PING. */
#define CASES(fn, label, name)                                                                     \
    CASE(fn, "HELLO: " label, name##3), CASE(fn, "RESP2 PING: " label, name##2)

/* The cases of fn for every transient refusal, and every permanent one. */
#define TRANSIENT_CASES(fn)                                                                        \
    CASES(fn, "LOADING", t_loading), CASES(fn, "BUSY", t_busy),                                    \
        CASES(fn, "MASTERDOWN", t_masterdown), CASES(fn, "TRYAGAIN", t_tryagain),                  \
        CASES(fn, "max clients", t_maxclients)
#define PERMANENT_CASES(fn)                                                                        \
    CASES(fn, "WRONGPASS", p_wrongpass), CASES(fn, "NOAUTH", p_noauth),                            \
        CASES(fn, "NOPERM", p_noperm)

int main(void) {
    const struct CMUnitTest tests[] = {
        TRANSIENT_CASES(test_transient_refusal_first_connect),
        TRANSIENT_CASES(test_transient_refusal_on_reconnect),
        PERMANENT_CASES(test_permanent_refusal_not_retried),
        cmocka_unit_test(test_invalid_db_not_retried),
        cmocka_unit_test(test_dead_link_with_health_ping_in_flight),
        cmocka_unit_test(test_failed_connect_no_disconnect),
        cmocka_unit_test(test_close_while_connecting_no_disconnect),
        cmocka_unit_test(test_close_in_handshake_no_disconnect),
        cmocka_unit_test(test_close_established_disconnects_once),
        cmocka_unit_test(test_fork_adopt_runs_no_callback_inside_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
