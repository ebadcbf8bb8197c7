/*
 * Reply routing: every reply reaches the command it answers, and no other.
 *
 *   - Commands that would break the one-reply-per-command pairing (SUBSCRIBE
 *     and friends, MONITOR, SYNC/PSYNC, RESET, CLIENT REPLY OFF/SKIP,
 *     WATCH/UNWATCH) are
 *     refused at issue time through every generic command function, in any
 *     letter case: AREDIS_ERR_UNSUPPORTED (futures: already failed with it),
 *     the callback never runs, aredis_call_error() names the command. After
 *     one, 100 ECHOs each get their own token, on RESP3 and RESP2, on the
 *     connection first made. CLIENT REPLY ON is allowed.
 *   - A reply for a command whose bytes were never written (a surplus reply,
 *     read in the same chunk as the reply before it, while the command issued
 *     from that reply's callback still waits for the flush) is a protocol
 *     error: never handed to that command. The connection is torn down; the
 *     unwritten command is sent on the next connection (reconnect on) or
 *     fails once with AREDIS_ERR_PROTOCOL (reconnect off).
 *   - A user AUTH, or HELLO ... AUTH, is a barrier: sent alone, and later
 *     commands wait for its reply. Checked against a scripted server with
 *     the Redis 7.2 bug that drops a failing AUTH's error reply when other
 *     replies are pending (ts_fake_serve_auth_drop), and, for the reply
 *     shapes, against a real redis-server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "fake_server.h"

#define NTOK 100
#define WAIT_MS 5000

/* ---- Fixtures ------------------------------------------------------------- */

/* One real redis-server for the tests that need one, started at first use
 * (the fake-server tests run without redis-server). */
static ts_server *g_srv;

static ts_server *srv(void) {
    if (!g_srv) g_srv = ts_server_start_default();
    return g_srv;
}

static int group_teardown(void **state) {
    (void)state;
    ts_server_stop(g_srv);
    g_srv = NULL;
    return 0;
}

/* A client of the real server speaking `protocol`, with its connection
 * events counted in k; connected. */
static aredis_client *real_client(aredis_loop *loop, int protocol, conn_counters *k) {
    aredis_options o = ts_options(srv());
    o.protocol = protocol;
    cc_wire(&o, k);
    return ts_connect(loop, &o);
}

/* Let the loop run a little more: nothing may be delivered late or twice. */
static void settle(aredis_loop *loop) {
    int never = 0;
    (void)ts_wait(loop, &never, 30);
}

/* s contains word, ignoring case. */
static int names(const char *s, const char *word) {
    char up[512];
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof up; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    up[i] = '\0';
    return strstr(up, word) != NULL;
}

/* ---- 1. Refused at issue time --------------------------------------------- */

typedef struct refused {
    const char *cmd;  /* words separated by single spaces */
    const char *name; /* what the error detail must name (upper case) */
} refused;

static const refused k_refused[] = {
    {"SUBSCRIBE ch", "SUBSCRIBE"},
    {"PSUBSCRIBE p*", "PSUBSCRIBE"},
    {"SSUBSCRIBE ch", "SSUBSCRIBE"},
    {"UNSUBSCRIBE", "UNSUBSCRIBE"},
    {"UNSUBSCRIBE ch", "UNSUBSCRIBE"},
    {"PUNSUBSCRIBE", "PUNSUBSCRIBE"},
    {"SUNSUBSCRIBE", "SUNSUBSCRIBE"},
    {"MONITOR", "MONITOR"},
    {"SYNC", "SYNC"},
    {"PSYNC ? -1", "PSYNC"},
    {"RESET", "RESET"},
    {"CLIENT REPLY OFF", "CLIENT REPLY"},
    {"CLIENT REPLY SKIP", "CLIENT REPLY"},
    {"WATCH k", "WATCH"},
    {"UNWATCH", "UNWATCH"},
};

static const refused k_refused_lower[] = {
    {"subscribe ch", "SUBSCRIBE"},
    {"psubscribe p*", "PSUBSCRIBE"},
    {"ssubscribe ch", "SSUBSCRIBE"},
    {"unsubscribe", "UNSUBSCRIBE"},
    {"unsubscribe ch", "UNSUBSCRIBE"},
    {"punsubscribe", "PUNSUBSCRIBE"},
    {"sunsubscribe", "SUNSUBSCRIBE"},
    {"monitor", "MONITOR"},
    {"sync", "SYNC"},
    {"psync ? -1", "PSYNC"},
    {"reset", "RESET"},
    {"client reply off", "CLIENT REPLY"},
    {"client reply skip", "CLIENT REPLY"},
    {"Subscribe ch", "SUBSCRIBE"},
    {"Client Reply Off", "CLIENT REPLY"},
    {"CLIENT reply SKIP", "CLIENT REPLY"},
    {"watch k", "WATCH"},
    {"Unwatch", "UNWATCH"},
};

#define NREFUSED (sizeof k_refused / sizeof *k_refused)
#define NREFUSED_LOWER (sizeof k_refused_lower / sizeof *k_refused_lower)

/* The generic command functions a refused command goes through. */
typedef enum {
    API_FMT,        /* aredis_command */
    API_VFMT,       /* aredis_vcommand */
    API_ARGV,       /* aredis_command_argv */
    API_ARGV_EX,    /* aredis_command_argv_ex */
    API_FUTURE,     /* aredis_future_command */
    API_FUTURE_ARGV /* aredis_future_argv */
} issue_api;

static const char *const k_api_name[] = {
    "aredis_command",         "aredis_vcommand",       "aredis_command_argv",
    "aredis_command_argv_ex", "aredis_future_command", "aredis_future_argv",
};

/* Split cmd at its spaces into argv (words kept in buf). */
static int split(const char *cmd, char *buf, size_t buflen, const char **argv, int max) {
    int argc = 0;
    snprintf(buf, buflen, "%s", cmd);
    for (char *w = strtok(buf, " "); w && argc < max; w = strtok(NULL, " "))
        argv[argc++] = w;
    return argc;
}

static aredis_err vcmd(aredis_client *c, aredis_reply_fn *cb, void *data, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis_vcommand(c, cb, data, fmt, ap);
    va_end(ap);
    return e;
}

/*
 * Issue cmd through api: it must be refused at once with UNSUPPORTED (a
 * future: already failed with it) and, for the callback functions, the
 * thread's call error must say UNSUPPORTED and name the command.
 */
static void issue_refused(aredis_client *c, issue_api api, const refused *r, ts_result *res) {
    char buf[128];
    const char *argv[8];
    int argc = split(r->cmd, buf, sizeof buf, argv, 8);
    aredis_cmd_opts opts = AREDIS_CMD_OPTS_INIT;
    aredis_err e = AREDIS_ERR_OK;
    switch (api) {
    case API_FMT:
        e = aredis_command(c, ts_on_reply, res, r->cmd);
        break;
    case API_VFMT:
        e = vcmd(c, ts_on_reply, res, r->cmd);
        break;
    case API_ARGV:
        e = aredis_command_argv(c, ts_on_reply, res, argc, argv, NULL);
        break;
    case API_ARGV_EX:
        e = aredis_command_argv_ex(c, &opts, ts_on_reply, res, argc, argv, NULL);
        break;
    case API_FUTURE:
    case API_FUTURE_ARGV: {
        aredis_future *f = api == API_FUTURE ? aredis_future_command(c, r->cmd)
                                             : aredis_future_argv(c, argc, argv, NULL);
        assert_non_null(f);
        if (!aredis_future_is_done(f))
            fail_msg("%s(\"%s\"): future pending, not already failed", k_api_name[api], r->cmd);
        const aredis_error *fe = aredis_future_error(f);
        if (!fe || fe->code != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s(\"%s\"): future done with %s, want AREDIS_ERR_UNSUPPORTED",
                     k_api_name[api], r->cmd, fe ? aredis_err_name(fe->code) : "success");
        aredis_future_release(f);
        return;
    }
    }
    if (e != AREDIS_ERR_UNSUPPORTED)
        fail_msg("%s(\"%s\") returned %s, want AREDIS_ERR_UNSUPPORTED", k_api_name[api], r->cmd,
                 aredis_err_name(e));
    const aredis_error *ce = aredis_call_error();
    assert_non_null(ce);
    if (ce->code != AREDIS_ERR_UNSUPPORTED)
        fail_msg("%s(\"%s\"): aredis_call_error()->code is %s", k_api_name[api], r->cmd,
                 aredis_err_name(ce->code));
    assert_non_null(ce->detail);
    if (!names(ce->detail, r->name))
        fail_msg("%s(\"%s\"): call error detail [%s] does not name %s", k_api_name[api], r->cmd,
                 ce->detail, r->name);
}

/* PING gets PONG (within WAIT_MS: a reply that never comes fails, not hangs). */
static void ping_pong(aredis_client *c, const char *after) {
    ts_echo_tokens(c, "", 0, WAIT_MS, after);
}

/* NTOK ECHOs, then a PING: each gets its own reply, exactly once. */
static void echo_tokens(aredis_client *c, const char *after) {
    ts_echo_tokens(c, "tok", NTOK, WAIT_MS, after);
}

/* One refused command on a fresh client, then the ECHOs and a PING on the
 * same connection: the first one made. */
static void run_refused(issue_api api, int protocol, const refused *r) {
    aredis_loop *loop = aredis_loop_new();
    conn_counters k;
    aredis_client *c = real_client(loop, protocol, &k);
    assert_int_equal(aredis_client_protocol(c), protocol);
    char what[96];
    snprintf(what, sizeof what, "%s(\"%s\") on RESP%d", k_api_name[api], r->cmd, protocol);

    ts_result res;
    memset(&res, 0, sizeof res);
    issue_refused(c, api, r, &res);
    echo_tokens(c, what);

    if (res.calls != 0) fail_msg("%s: the refused command's callback ran", what);
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    if (k.disconnects != 0 || k.errors != 0 || st.connects != 1 || k.connects != 1)
        fail_msg("%s: connection torn down (disconnects %d, errors %d, connects %llu)", what,
                 k.disconnects, k.errors, (unsigned long long)st.connects);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    assert_int_equal(aredis_client_pending(c), 0);
    /* A refused command is not an accepted one: the ECHOs only, and PING. */
    assert_int_equal(st.commands, NTOK + 1);
    aredis_client_free(c);
    aredis_loop_free(loop);
}

static void run_all(issue_api api, const refused *list, size_t n) {
    for (size_t i = 0; i < n; i++) {
        run_refused(api, 3, &list[i]);
        run_refused(api, 2, &list[i]);
    }
    ts_log("%s: %zu commands refused on RESP3 and RESP2", k_api_name[api], n);
}

/* A case: the refused commands of the lists chosen, through one function. */
typedef struct refused_case {
    issue_api api;
    int upper; /* k_refused */
    int lower; /* k_refused_lower */
} refused_case;

static void test_refused(void **state) {
    const refused_case *rc = *state;
    if (rc->upper) run_all(rc->api, k_refused, NREFUSED);
    if (rc->lower) run_all(rc->api, k_refused_lower, NREFUSED_LOWER);
}

static const refused_case k_case_command = {API_FMT, 1, 0};
static const refused_case k_case_lower_case = {API_FMT, 0, 1};
static const refused_case k_case_vcommand = {API_VFMT, 1, 0};
static const refused_case k_case_argv = {API_ARGV, 1, 1};
static const refused_case k_case_argv_ex = {API_ARGV_EX, 1, 0};
static const refused_case k_case_future = {API_FUTURE, 1, 1};
static const refused_case k_case_future_argv = {API_FUTURE_ARGV, 1, 0};

/* CLIENT REPLY ON changes nothing: it is sent and answered OK. */
static void test_client_reply_on_allowed(void **state) {
    (void)state;
    static const char *const spellings[] = {"CLIENT REPLY ON", "client reply on"};
    for (int protocol = 3; protocol >= 2; protocol--) {
        for (size_t i = 0; i < 2; i++) {
            aredis_loop *loop = aredis_loop_new();
            conn_counters k;
            aredis_client *c = real_client(loop, protocol, &k);
            ts_result res;
            memset(&res, 0, sizeof res);
            assert_int_equal(aredis_command(c, ts_on_reply, &res, spellings[i]), AREDIS_ERR_OK);
            echo_tokens(c, spellings[i]);
            assert_int_equal(res.calls, 1);
            assert_int_equal(res.code, AREDIS_ERR_OK);
            assert_int_equal(res.type, AREDIS_REPLY_STATUS);
            assert_string_equal(res.text, "OK");
            assert_int_equal(k.disconnects, 0);
            assert_int_equal(k.errors, 0);
            aredis_client_free(c);
            aredis_loop_free(loop);
        }
    }
}

/* ---- 2. A reply for a command never sent ---------------------------------- */

/* One run: the fake, a client of it, and what happened. */
typedef struct surplus_run {
    ts_fake *f;
    aredis_loop *loop;
    aredis_client *c;
    conn_counters k;
    ts_result a, b;
    aredis_err b_issued;
} surplus_run;

/* A's callback: record A, then issue B. B's bytes only leave at the flush at
 * the end of this loop turn. */
static void a_then_b(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    surplus_run *s = data;
    ts_on_reply(c, r, err, &s->a);
    s->b_issued = aredis_command(c, ts_on_reply, &s->b, "GET b");
}

/*
 * The fake answers A with two replies in one write: "+FIRST" for A and a
 * surplus "+SURPLUS" that no written command asked for. Then, on the next
 * connection, "+AFTER" to everything. A client of it (reconnecting or not)
 * issues A, whose callback issues B; returns once B has completed and the
 * loop settled. A got its own reply; B completed once, and not with the
 * surplus reply.
 */
static void surplus_start(surplus_run *s, int reconnect) {
    memset(s, 0, sizeof *s);
    s->f = ts_fake_new();
    ts_fake_hello3(s->f);
    ts_fake_reply(s->f, "+FIRST\r\n+SURPLUS\r\n");
    ts_fake_wait_eof(s->f, 10000); /* the client is the one to hang up */
    ts_fake_next_conn(s->f);
    ts_fake_hello3(s->f);
    ts_fake_serve(s->f, "+AFTER\r\n");
    ts_fake_start(s->f);

    s->loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(s->f);
    o.reconnect = reconnect;
    o.reconnect_delay_ms = 20;
    cc_wire(&o, &s->k);
    s->c = ts_connect(s->loop, &o);
    s->b_issued = AREDIS_ERR__COUNT; /* not yet */
    assert_int_equal(aredis_command(s->c, a_then_b, s, "GET a"), AREDIS_ERR_OK);
    assert_true(ts_wait(s->loop, &s->b.done, WAIT_MS));
    settle(s->loop);
    assert_int_equal(s->a.calls, 1);
    assert_int_equal(s->a.code, AREDIS_ERR_OK);
    assert_string_equal(s->a.text, "FIRST");
    assert_int_equal(s->b_issued, AREDIS_ERR_OK);
    ts_log("B got %s [%s]; on_error %d (%s)", aredis_err_name(s->b.code), s->b.text, s->k.errors,
           s->k.errors ? aredis_err_name(s->k.last_error) : "-");
    if (strcmp(s->b.text, "SURPLUS") == 0)
        fail_msg("B, never written, was handed the surplus reply");
    assert_int_equal(s->b.calls, 1);
    /* The surplus reply broke the connection: a protocol error. */
    assert_int_equal(s->k.errors, 1);
    assert_int_equal(s->k.last_error, AREDIS_ERR_PROTOCOL);
}

static void surplus_stop(surplus_run *s) {
    aredis_client_free(s->c);
    aredis_loop_free(s->loop);
    ts_fake_stop(s->f);
}

static void test_surplus_reply_reconnect(void **state) {
    (void)state;
    surplus_run s;
    surplus_start(&s, 1);
    assert_int_equal(s.k.disconnects, 1);
    assert_int_equal(s.k.last_disconnect, AREDIS_ERR_PROTOCOL);
    /* B, kept, was sent on the next connection. */
    assert_int_equal(s.b.code, AREDIS_ERR_OK);
    assert_string_equal(s.b.text, "AFTER");
    assert_int_equal(ts_fake_accepted(s.f), 2);
    aredis_client_stats st;
    aredis_client_get_stats(s.c, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(aredis_client_state(s.c), AREDIS_STATE_READY);
    surplus_stop(&s);
}

static void test_surplus_reply_no_reconnect(void **state) {
    (void)state;
    surplus_run s;
    surplus_start(&s, 0);
    /* B fails once, with the protocol error. */
    assert_int_equal(s.b.code, AREDIS_ERR_PROTOCOL);
    assert_false(s.b.had_reply);
    assert_int_equal(aredis_client_state(s.c), AREDIS_STATE_IDLE);
    assert_int_equal(aredis_client_last_error(s.c)->code, AREDIS_ERR_PROTOCOL);
    assert_int_equal(ts_fake_accepted(s.f), 1);
    surplus_stop(&s);
}

/* ---- 3. User AUTH and HELLO ... AUTH are barriers ------------------------- */

/*
 * Against the AUTH-dropping fake (handshake: HELLO refused then a lone PING,
 * or just the PING on protocol 2): PING, the auth command and ECHO issued in
 * one loop turn. Each gets its own reply; the auth command gets the server's
 * WRONGPASS, which the fake only sends when the AUTH arrived alone.
 */
static void run_barrier(int protocol, const char *auth_cmd, const char *token) {
    ts_fake *f = ts_fake_new();
    ts_fake_serve_auth_drop(f);
    ts_fake_start(f);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(f);
    o.protocol = protocol;
    o.reconnect = 0;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(loop, &o);
    assert_int_equal(aredis_client_protocol(c), 2);
    size_t hs = ts_fake_commands(f); /* the handshake's */

    ts_result ping, auth, echo;
    size_t done = 0;
    memset(&ping, 0, sizeof ping);
    memset(&auth, 0, sizeof auth);
    memset(&echo, 0, sizeof echo);
    ping.done_counter = auth.done_counter = echo.done_counter = &done;
    assert_int_equal(aredis_command(c, ts_on_reply, &ping, "PING"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &auth, auth_cmd), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &echo, "ECHO %s", token), AREDIS_ERR_OK);
    int all = ts_wait_count(loop, &done, 3, WAIT_MS);
    settle(loop);
    ts_log("RESP%d %s: PING %s [%s], auth %s [%s], ECHO %s [%s]", protocol, auth_cmd,
           ping.done ? aredis_err_name(ping.code) : "pending", ping.text,
           auth.done ? aredis_err_name(auth.code) : "pending", auth.text,
           echo.done ? aredis_err_name(echo.code) : "pending", echo.text);

    assert_int_equal(ping.calls, 1);
    assert_int_equal(ping.code, AREDIS_ERR_OK);
    assert_string_equal(ping.text, "PONG");
    assert_int_equal(auth.calls, 1);
    assert_int_equal(auth.code, AREDIS_ERR_SERVER);
    assert_string_equal(auth.prefix, "WRONGPASS");
    assert_true(auth.had_reply);
    assert_int_equal(auth.type, AREDIS_REPLY_ERROR);
    assert_int_equal(echo.calls, 1);
    assert_int_equal(echo.code, AREDIS_ERR_OK);
    assert_string_equal(echo.text, token);
    assert_true(all);
    /* Nothing lost, nothing torn down. */
    assert_int_equal(ts_fake_commands(f), hs + 3);
    assert_int_equal(k.errors, 0);
    assert_int_equal(k.disconnects, 0);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    ping_pong(c, auth_cmd);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_fake_stop(f);
}

static void test_auth_barrier(void **state) {
    (void)state;
    run_barrier(3, "AUTH u wrong", "x");
    run_barrier(2, "AUTH u wrong", "x");
    run_barrier(3, "auth u wrong", "x2");
}

static void test_hello_auth_barrier(void **state) {
    (void)state;
    run_barrier(3, "HELLO 3 AUTH u wrong", "y");
    run_barrier(2, "HELLO 3 AUTH u wrong", "y");
}

/*
 * A real server (default user, nopass): SET, AUTH, HELLO 3 AUTH and GET in
 * one loop turn each get a reply of the right shape — whatever the barrier
 * does to their timing.
 */
static void test_auth_pipeline_real_server(void **state) {
    (void)state;
    aredis_loop *loop = aredis_loop_new();
    conn_counters k;
    aredis_client *c = real_client(loop, 3, &k);
    ts_result set, auth, hello, get;
    size_t done = 0;
    memset(&set, 0, sizeof set);
    memset(&auth, 0, sizeof auth);
    memset(&hello, 0, sizeof hello);
    memset(&get, 0, sizeof get);
    set.done_counter = auth.done_counter = hello.done_counter = get.done_counter = &done;
    assert_int_equal(aredis_command(c, ts_on_reply, &set, "SET routing:k v"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &auth, "AUTH default wrong"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &hello, "HELLO 3 AUTH default wrong"),
                     AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &get, "GET routing:k"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(loop, &done, 4, WAIT_MS));
    settle(loop);
    ts_log("AUTH: %s [%s]; HELLO: %s type %d", aredis_err_name(auth.code), auth.text,
           aredis_err_name(hello.code), (int)hello.type);

    assert_int_equal(set.calls, 1);
    assert_int_equal(set.code, AREDIS_ERR_OK);
    assert_int_equal(set.type, AREDIS_REPLY_STATUS);
    assert_string_equal(set.text, "OK");

    assert_int_equal(auth.calls, 1);
    if (auth.code == AREDIS_ERR_OK) {
        assert_int_equal(auth.type, AREDIS_REPLY_STATUS);
        assert_string_equal(auth.text, "OK");
    } else {
        assert_int_equal(auth.code, AREDIS_ERR_SERVER);
        assert_string_equal(auth.prefix, "WRONGPASS");
    }

    assert_int_equal(hello.calls, 1);
    if (hello.code == AREDIS_ERR_OK) {
        assert_int_equal(hello.type, AREDIS_REPLY_MAP);
    } else {
        assert_int_equal(hello.code, AREDIS_ERR_SERVER);
        assert_string_equal(hello.prefix, "WRONGPASS");
    }

    assert_int_equal(get.calls, 1);
    assert_int_equal(get.code, AREDIS_ERR_OK);
    assert_int_equal(get.type, AREDIS_REPLY_STRING);
    assert_string_equal(get.text, "v");
    ping_pong(c, "AUTH and HELLO");
    assert_int_equal(k.errors, 0);
    assert_int_equal(k.disconnects, 0);
    aredis_client_free(c);
    aredis_loop_free(loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_CASE("test_refused_command", test_refused, k_case_command),
        TS_CASE("test_refused_lower_case", test_refused, k_case_lower_case),
        TS_CASE("test_refused_vcommand", test_refused, k_case_vcommand),
        TS_CASE("test_refused_argv", test_refused, k_case_argv),
        TS_CASE("test_refused_argv_ex", test_refused, k_case_argv_ex),
        TS_CASE("test_refused_future", test_refused, k_case_future),
        TS_CASE("test_refused_future_argv", test_refused, k_case_future_argv),
        cmocka_unit_test(test_client_reply_on_allowed),
        cmocka_unit_test(test_surplus_reply_reconnect),
        cmocka_unit_test(test_surplus_reply_no_reconnect),
        cmocka_unit_test(test_auth_barrier),
        cmocka_unit_test(test_hello_auth_barrier),
        cmocka_unit_test(test_auth_pipeline_real_server),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
