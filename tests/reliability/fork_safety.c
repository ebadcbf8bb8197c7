/*
 * fork-safety (reliability): a client inherited by a fork()ed child is
 * unusable there (AREDIS_ERR_FORKED, the callback never runs), and nothing
 * the child does with it — issue, run the inherited loop, await, free —
 * touches the parent's connection: no byte is sent on it, no reply is read
 * from it, its epoll registration survives. The child may make its own loop
 * and client. The parent carries on as if nothing happened: a command in
 * flight at the fork and commands issued but not yet sent get their own
 * replies, in order.
 *
 * The child never uses cmocka: it reports through its exit status, a bit
 * per failed check (decoded in the parent's log), and leaves with _exit()
 * so that no atexit handler (the fixture's server sweep) runs in it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts.h"

#define NINCR 50

/* Child check bits (exit status). */
#define CK_CMD_NOT_FORKED 0x01    /* aredis_command on the inherited client */
#define CK_FUTURE_NOT_FORKED 0x02 /* aredis_future_command on it */
#define CK_INHERITED_ACTIVE 0x04  /* the inherited loop/await dispatched something */
#define CK_NEW_CLIENT 0x08        /* a new loop + client in the child failed */
#define CK_CHILD_CMDS 0x10        /* SET/RPUSH through the new client failed */
#define CK_FREE_CALLBACKS 0x20    /* free(inherited): pending callbacks not once each */
#define CK_STRAY_CALLBACK 0x40    /* a refused command's callback ran */

static const ts_child_check k_checks[] = {
    {CK_CMD_NOT_FORKED, "aredis_command on the inherited client did not return FORKED"},
    {CK_FUTURE_NOT_FORKED, "aredis_future_command on it was not already failed with FORKED"},
    {CK_INHERITED_ACTIVE, "the inherited loop / await ran a callback or completed a future"},
    {CK_NEW_CLIENT, "a new loop and client in the child could not connect"},
    {CK_CHILD_CMDS, "SET/RPUSH through the child's own client failed"},
    {CK_FREE_CALLBACKS, "freeing the inherited client did not complete each pending "
                        "command exactly once with FORKED/CANCELLED"},
    {CK_STRAY_CALLBACK, "the callback of a command refused in the child ran"},
};

typedef ts_result result;

static aredis_options opts_for(const ts_server *s) {
    aredis_options o = ts_options(s);
    o.reconnect = 0; /* a disturbed connection must show, not be healed */
    o.connect_timeout_ms = 5000;
    o.request_timeout_ms = 15000;
    return o;
}

/* A field ("cmd", "flags", "qbuf") of connection `id` as CLIENT LIST shows
 * it, seen from the observer connection. */
static void client_field(aredis_client *obs, long long id, const char *field, char *out,
                         size_t outlen) {
    aredis_future *f = ts_cmd(obs, "CLIENT LIST ID %lld", id);
    assert_null(aredis_future_error(f));
    const char *line = aredis_future_reply(f)->str;
    assert_non_null(line);
    char pat[32];
    snprintf(pat, sizeof pat, " %s=", field);
    const char *p = strstr(line, pat);
    if (!p) fail_msg("no %s in CLIENT LIST line: %s", field, line);
    p += strlen(pat);
    size_t n = strcspn(p, " \r\n");
    if (n >= outlen) n = outlen - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    aredis_future_release(f);
}

/* Write everything the client has queued, without reading anything: one
 * non-blocking loop turn runs the deferred flush. */
static void flush_now(aredis_loop *loop, aredis_client *c) {
    aredis_client_stats before, after;
    aredis_client_get_stats(c, &before);
    uint64_t t0 = ts_now_ms();
    do {
        aredis_loop_run_once(loop, 0);
        aredis_client_get_stats(c, &after);
    } while (after.bytes_out == before.bytes_out && ts_now_ms() - t0 < 5000);
    assert_true(after.bytes_out > before.bytes_out);
}

/* ---- The child ---------------------------------------------------------- */

typedef struct {
    aredis_loop *loop;
    aredis_client *c;
    int port;
    result *blpop;
    result *incr;
    aredis_future *echo;
} inherited;

static int child_main(inherited *in) {
    int bad = 0;
    alarm(30); /* a hang in here kills the child; the parent sees the signal */

    /* 1. The inherited client refuses commands, both ways. */
    result stray = {0};
    if (aredis_command(in->c, ts_on_reply, &stray, "SET fork:stray %s", "child") !=
        AREDIS_ERR_FORKED)
        bad |= CK_CMD_NOT_FORKED;
    aredis_future *cf = aredis_future_command(in->c, "SET fork:stray2 %s", "child");
    if (!cf || !aredis_future_is_done(cf) || !aredis_future_error(cf) ||
        aredis_future_error(cf)->code != AREDIS_ERR_FORKED || aredis_future_reply(cf))
        bad |= CK_FUTURE_NOT_FORKED;
    aredis_future_release(cf);

    /* 2. Its own client, on its own loop: wakes the parent's BLPOP. */
    aredis_loop *nl = aredis_loop_new();
    aredis_client *nc = NULL;
    if (nl) {
        aredis_options o = AREDIS_OPTIONS_INIT;
        o.host = "127.0.0.1";
        o.port = in->port;
        o.reconnect = 0;
        o.connect_timeout_ms = 5000;
        o.request_timeout_ms = 5000;
        nc = aredis_client_new(nl, &o);
    }
    if (!nc || aredis_client_connect(nc) != AREDIS_ERR_OK) {
        bad |= CK_NEW_CLIENT;
    } else {
        aredis_future *rf = aredis_future_ready(nc);
        if (!rf || aredis_await(rf) != AREDIS_ERR_OK) bad |= CK_NEW_CLIENT;
        aredis_future_release(rf);
        aredis_future *f1 = aredis_future_command(nc, "SET child-key %s", "set-by-child");
        aredis_future *f2 = aredis_future_command(nc, "RPUSH fork:list %s", "from-child");
        if (!f1 || aredis_await(f1) != AREDIS_ERR_OK ||
            aredis_future_reply(f1)->type != AREDIS_REPLY_STATUS)
            bad |= CK_CHILD_CMDS;
        if (!f2 || aredis_await(f2) != AREDIS_ERR_OK || aredis_future_reply(f2)->integer != 1)
            bad |= CK_CHILD_CMDS;
        aredis_future_release(f1);
        aredis_future_release(f2);
    }

    /* 3. The inherited loop is inert: running it must neither send the
     * parent's unsent commands nor read the parent's replies (the BLPOP's is
     * on its way now). An await on a pre-fork future must not succeed. */
    aredis_loop_run_once(in->loop, 0);
    aredis_loop_run_once(in->loop, 1);
    if (aredis_await(in->echo) == AREDIS_ERR_OK) bad |= CK_INHERITED_ACTIVE;
    if (in->blpop->calls) bad |= CK_INHERITED_ACTIVE;
    for (int i = 0; i < NINCR; i++)
        if (in->incr[i].calls) bad |= CK_INHERITED_ACTIVE;

    /* 4. Freeing it completes every pending command once, with FORKED (or
     * CANCELLED), and sends nothing. */
    aredis_client_free(in->c);
    int ok = in->blpop->calls == 1 &&
             (in->blpop->code == AREDIS_ERR_FORKED || in->blpop->code == AREDIS_ERR_CANCELLED);
    for (int i = 0; i < NINCR; i++)
        ok = ok && in->incr[i].calls == 1 &&
             (in->incr[i].code == AREDIS_ERR_FORKED || in->incr[i].code == AREDIS_ERR_CANCELLED);
    ok = ok && aredis_future_is_done(in->echo) && aredis_future_error(in->echo) &&
         aredis_future_reply(in->echo) == NULL;
    if (!ok) bad |= CK_FREE_CALLBACKS;
    aredis_loop_free(in->loop);
    if (stray.calls) bad |= CK_STRAY_CALLBACK;

    aredis_client_free(nc);
    aredis_loop_free(nl);
    return bad;
}

/* Wait for the child: it must pass every check. */
static void wait_child(pid_t pid) {
    ts_wait_child(pid, k_checks, sizeof k_checks / sizeof k_checks[0]);
}

/* ---- The test ----------------------------------------------------------- */

static void test_fork_child_cannot_use_inherited_client(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    assert_non_null(loop);
    aredis_options o = opts_for(s);
    aredis_client *c = ts_connect(loop, &o);
    /* The observer lives on a loop of its own, so using it never runs the
     * parent client's loop. */
    aredis_loop *obs_loop = aredis_loop_new();
    aredis_client *obs = ts_client(obs_loop, s);

    long long id = ts_client_id(c);

    /* In flight at the fork: a BLPOP the child's RPUSH will answer. Wait
     * until the server has it blocked, so it is surely on the wire. */
    result blpop = {0};
    size_t done = 0;
    blpop.done_counter = &done;
    const char *bargv[] = {"BLPOP", "fork:list", "10"};
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 20000;
    assert_int_equal(aredis_command_argv_ex(c, &co, ts_on_reply, &blpop, 3, bargv, NULL),
                     AREDIS_ERR_OK);
    flush_now(loop, c);
    char flags[32] = "", cmd[64] = "";
    uint64_t t0 = ts_now_ms();
    do {
        client_field(obs, id, "flags", flags, sizeof flags);
    } while (!strchr(flags, 'b') && ts_now_ms() - t0 < 5000); /* another process's state */
    assert_non_null(strchr(flags, 'b'));
    client_field(obs, id, "cmd", cmd, sizeof cmd);
    assert_string_equal(cmd, "blpop");

    /* Issued but not yet sent at the fork (no loop turn since). */
    result incr[NINCR];
    memset(incr, 0, sizeof incr);
    for (int i = 0; i < NINCR; i++) {
        incr[i].done_counter = &done;
        assert_int_equal(aredis_command(c, ts_on_reply, &incr[i], "INCR %s", "fork:counter"),
                         AREDIS_ERR_OK);
    }
    aredis_future *echo = aredis_future_command(c, "ECHO %s", "parent-own");
    assert_non_null(echo);
    assert_false(aredis_future_is_done(echo));
    aredis_client_stats st_before;
    aredis_client_get_stats(c, &st_before);

    inherited in = {loop, c, ts_server_port(s), &blpop, incr, echo};
    pid_t pid = ts_fork();
    if (pid == 0) _exit(child_main(&in));
    wait_child(pid);

    /* Nothing reached the server on the parent's connection from the child:
     * its last command is still the parent's BLPOP, nothing half-received. */
    client_field(obs, id, "cmd", cmd, sizeof cmd);
    assert_string_equal(cmd, "blpop");
    char qbuf[32];
    client_field(obs, id, "qbuf", qbuf, sizeof qbuf);
    assert_string_equal(qbuf, "0");
    aredis_future *f = ts_cmd(obs, "EXISTS fork:stray fork:stray2");
    assert_int_equal(aredis_future_reply(f)->integer, 0);
    aredis_future_release(f);
    f = ts_cmd(obs, "EXISTS fork:counter");
    assert_int_equal(aredis_future_reply(f)->integer, 0); /* INCRs not sent yet */
    aredis_future_release(f);

    /* The parent's client is untouched and carries on. */
    aredis_client_stats st_after;
    aredis_client_get_stats(c, &st_after);
    assert_memory_equal(&st_before, &st_after, sizeof st_before);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    assert_int_equal(blpop.calls, 0);

    assert_true(ts_wait_count(loop, &done, NINCR + 1, 20000));
    assert_int_equal(blpop.calls, 1);
    assert_int_equal(blpop.code, AREDIS_ERR_OK);
    assert_int_equal(blpop.type, AREDIS_REPLY_ARRAY);
    assert_string_equal(blpop.text, "fork:list");
    assert_string_equal(blpop.text2, "from-child");
    for (int i = 0; i < NINCR; i++) {
        assert_int_equal(incr[i].calls, 1);
        assert_int_equal(incr[i].code, AREDIS_ERR_OK);
        assert_int_equal(incr[i].integer, i + 1); /* its own reply, in order */
    }
    assert_int_equal(aredis_await(echo), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(echo)->str, "parent-own");
    aredis_future_release(echo);

    f = ts_cmd(c, "GET child-key");
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "set-by-child");
    aredis_future_release(f);
    f = ts_cmd(c, "GET fork:counter");
    assert_string_equal(aredis_future_reply(f)->str, "50");
    aredis_future_release(f);
    f = ts_cmd(c, "PING");
    assert_string_equal(aredis_future_reply(f)->str, "PONG");
    aredis_future_release(f);
    assert_int_equal(ts_client_id(c), id); /* the same connection throughout */
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    assert_int_equal(st.connects, 1);

    aredis_client_free(obs);
    aredis_loop_free(obs_loop);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/*
 * The child closes (rather than frees) the inherited client and then frees
 * it, and exits without touching anything else: the parent's connection,
 * idle at the fork, keeps working, and the server never saw the child.
 */
static int child_close_main(aredis_client *c, aredis_loop *loop) {
    int bad = 0;
    alarm(30);
    result stray = {0};
    if (aredis_command(c, ts_on_reply, &stray, "SET fork:closed %s", "child") != AREDIS_ERR_FORKED)
        bad |= CK_CMD_NOT_FORKED;
    aredis_client_close(c);
    aredis_client_free(c);
    aredis_loop_run_once(loop, 0);
    aredis_loop_free(loop);
    if (stray.calls) bad |= CK_STRAY_CALLBACK;
    return bad;
}

static void test_fork_child_closes_inherited_client(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = opts_for(s);
    aredis_client *c = ts_connect(loop, &o);
    aredis_loop *obs_loop = aredis_loop_new();
    aredis_client *obs = ts_client(obs_loop, s);
    long long id = ts_client_id(c);
    ts_cmd_ok(c, "SET %s %s", "fork:before", "v1");

    pid_t pid = ts_fork();
    if (pid == 0) _exit(child_close_main(c, loop));
    wait_child(pid);

    char cmd[64];
    client_field(obs, id, "cmd", cmd, sizeof cmd);
    assert_string_equal(cmd, "set"); /* the parent's last, not the child's */
    aredis_future *f = ts_cmd(obs, "EXISTS fork:closed");
    assert_int_equal(aredis_future_reply(f)->integer, 0);
    aredis_future_release(f);

    /* Many commands at once right after: each its own reply. */
    ts_echo_tokens(c, "after", 20, 10000, "the child closed the inherited client");
    f = ts_cmd(c, "GET fork:before");
    assert_string_equal(aredis_future_reply(f)->str, "v1");
    aredis_future_release(f);
    assert_int_equal(ts_client_id(c), id);

    aredis_client_free(obs);
    aredis_loop_free(obs_loop);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_child_cannot_use_inherited_client),
        cmocka_unit_test(test_fork_child_closes_inherited_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
