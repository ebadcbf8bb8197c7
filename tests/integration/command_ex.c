/*
 * The format forms with per-command options: aredis_command_ex(),
 * aredis_vcommand_ex(), aredis_future_command_ex() and
 * aredis_future_vcommand_ex(). A per-command timeout fails a slow command
 * while the client's is long; AREDIS_CMD_NO_TIMEOUT lets commands outlive a
 * short client timeout; the format and argv forms put the same bytes on the
 * wire; bad formats are refused like aredis_command()'s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_server.h"
#include "ts.h"

static const char *const k_debug_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv;
static aredis_loop *g_loop;

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

static aredis_client *client_with_timeout(uint32_t timeout_ms) {
    aredis_options o = ts_options(g_srv);
    o.request_timeout_ms = timeout_ms;
    return ts_connect(g_loop, &o);
}

/* The v-forms, through a variadic wrapper each. */
static aredis_err vcommand_ex(aredis_client *c, const aredis_cmd_opts *o, ts_result *r,
                              const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis_vcommand_ex(c, o, ts_on_reply, r, fmt, ap);
    va_end(ap);
    return e;
}

static aredis_future *future_vcommand_ex(aredis_client *c, const aredis_cmd_opts *o,
                                         const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand_ex(c, o, fmt, ap);
    va_end(ap);
    return f;
}

/* ---- Per-command timeout ------------------------------------------------ */

/*
 * DEBUG SLEEP 1 with a 200 ms timeout of its own, on a client whose timeout
 * is 10 s: TIMEOUT at about 200 ms, in all four format forms; the client
 * keeps working (the late replies are dropped).
 */
static void test_per_command_timeout(void **state) {
    (void)state;
    aredis_client *c = client_with_timeout(10000);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 200;

    for (int form = 0; form < 4; form++) {
        uint64_t t0 = ts_now_ms(), took;
        aredis_err code;
        if (form < 2) {
            ts_result r = {0};
            if (form == 0)
                assert_int_equal(aredis_command_ex(c, &co, ts_on_reply, &r, "DEBUG SLEEP %d", 1),
                                 AREDIS_ERR_OK);
            else
                assert_int_equal(vcommand_ex(c, &co, &r, "DEBUG %s %.1f", "SLEEP", 1.0),
                                 AREDIS_ERR_OK);
            assert_true(ts_wait(g_loop, &r.done, 5000));
            assert_int_equal(r.calls, 1);
            code = r.code;
            took = r.at - t0;
        } else {
            aredis_future *f = form == 2 ? aredis_future_command_ex(c, &co, "DEBUG SLEEP %d", 1)
                                         : future_vcommand_ex(c, &co, "DEBUG SLEEP %.1f", 1.0);
            assert_non_null(f);
            code = aredis_await(f);
            took = ts_now_ms() - t0;
            aredis_future_release(f);
        }
        ts_log("form %d: DEBUG SLEEP 1 with its own 200 ms: %s after %llu ms", form,
               aredis_err_name(code), (unsigned long long)took);
        assert_int_equal(code, AREDIS_ERR_TIMEOUT);
        assert_true(took >= 190);
        /* The server is still asleep: wait its sleep out before the next. */
        ts_cmd_ok(c, "SET cmdex:after %d", form);
    }
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    assert_int_equal(st.timeouts, 4);
    aredis_client_free(c);
}

/* ---- No timeout --------------------------------------------------------- */

/*
 * A 300 ms client timeout. With AREDIS_CMD_NO_TIMEOUT, DEBUG SLEEP 0.8 and a
 * BLPOP of 1 s behind it both complete, the BLPOP about 1.8 s after it was
 * issued: past the 300 ms + 1 s the client would give a blocking command.
 * A PING issued with them, without the flag, times out at 300 ms.
 */
static void test_no_timeout_outlives_client_timeout(void **state) {
    (void)state;
    aredis_client *c = client_with_timeout(300);
    aredis_cmd_opts none = AREDIS_CMD_OPTS_INIT;
    none.flags = AREDIS_CMD_NO_TIMEOUT;

    uint64_t t0 = ts_now_ms();
    aredis_future *sleep = aredis_future_command_ex(c, &none, "DEBUG SLEEP %.1f", 0.8);
    ts_result blpop = {0};
    assert_int_equal(
        aredis_command_ex(c, &none, ts_on_reply, &blpop, "BLPOP %s %d", "cmdex:empty", 1),
        AREDIS_ERR_OK);
    aredis_future *ping = aredis_future_command(c, "PING");

    assert_int_equal(aredis_await(ping), AREDIS_ERR_TIMEOUT);
    uint64_t ping_at = ts_now_ms() - t0;
    assert_int_equal(aredis_await(sleep), AREDIS_ERR_OK);
    uint64_t sleep_at = ts_now_ms() - t0;
    assert_true(ts_wait(g_loop, &blpop.done, 10000));
    ts_log("PING timed out at %llu ms; DEBUG SLEEP 0.8 done at %llu ms, BLPOP 1 at %llu ms",
           (unsigned long long)ping_at, (unsigned long long)sleep_at,
           (unsigned long long)(blpop.at - t0));
    assert_true(ping_at >= 290);
    assert_true(sleep_at >= 750);
    assert_int_equal(blpop.code, AREDIS_ERR_OK);
    assert_int_equal(blpop.type, AREDIS_REPLY_NIL);
    assert_true(blpop.at - t0 >= 1700);
    aredis_future_release(sleep);
    aredis_future_release(ping);
    aredis_client_free(c);
}

/* opts NULL is the defaults: the client's timeout applies. */
static void test_null_opts_is_default(void **state) {
    (void)state;
    aredis_client *c = client_with_timeout(200);
    ts_result r = {0};
    assert_int_equal(aredis_command_ex(c, NULL, ts_on_reply, &r, "DEBUG SLEEP %.2f", 0.6),
                     AREDIS_ERR_OK);
    aredis_future *f = aredis_future_command_ex(c, NULL, "SET cmdex:k %s", "v");
    assert_int_equal(aredis_await(f), AREDIS_ERR_TIMEOUT); /* behind the sleep */
    assert_true(ts_wait(g_loop, &r.done, 5000));
    assert_int_equal(r.code, AREDIS_ERR_TIMEOUT);
    aredis_future_release(f);
    /* Out of the sleep (the SET, timed out, was still sent and applied). */
    aredis_cmd_opts none = AREDIS_CMD_OPTS_INIT;
    none.flags = AREDIS_CMD_NO_TIMEOUT;
    f = aredis_future_command_ex(c, &none, "PING");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    f = aredis_future_command_ex(c, NULL, "GET cmdex:%c", 'k');
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->str, "v");
    aredis_future_release(f);
    aredis_client_free(c);
}

/* ---- The bytes on the wire ----------------------------------------------- */

static void send_both(aredis_client *c, int future_form, const aredis_cmd_opts *o, int which) {
    static const char bin[] = {'a', '\0', 'b', ' ', '\r', '\n'};
    const char *argv[5];
    size_t lens[5];
    int argc;
    char num[64];
    aredis_future *f1 = NULL, *f2;
    ts_result r1 = {0}, r2 = {0};

    switch (which) {
    case 0: /* SET with a binary value */
        argv[0] = "SET", argv[1] = "cmdex:key:7", argv[2] = bin;
        lens[0] = 3, lens[1] = 11, lens[2] = sizeof bin;
        argc = 3;
        if (future_form)
            f1 = aredis_future_command_ex(c, o, "SET cmdex:key:%d %b", 7, bin, sizeof bin);
        else
            assert_int_equal(aredis_command_ex(c, o, ts_on_reply, &r1, "SET cmdex:key:%d %b", 7,
                                               bin, sizeof bin),
                             AREDIS_ERR_OK);
        break;
    case 1: /* ZADD with a double */
        snprintf(num, sizeof num, "%f", 1.5);
        argv[0] = "ZADD", argv[1] = "k", argv[2] = num, argv[3] = "m";
        lens[0] = 4, lens[1] = 1, lens[2] = strlen(num), lens[3] = 1;
        argc = 4;
        if (future_form)
            f1 = aredis_future_command_ex(c, o, "ZADD k %f m", 1.5);
        else
            assert_int_equal(aredis_command_ex(c, o, ts_on_reply, &r1, "ZADD k %f m", 1.5),
                             AREDIS_ERR_OK);
        break;
    default: /* printf conversions with flags, widths and precisions */
        snprintf(num, sizeof num, "%08.3f|%-6x|%+d|%c", -2.25, 255u, 42, 'Z');
        argv[0] = "ECHO", argv[1] = num;
        lens[0] = 4, lens[1] = strlen(num);
        argc = 2;
        if (future_form)
            f1 = aredis_future_command_ex(c, o, "ECHO %08.3f|%-6x|%+d|%c", -2.25, 255u, 42, 'Z');
        else
            assert_int_equal(aredis_command_ex(c, o, ts_on_reply, &r1, "ECHO %08.3f|%-6x|%+d|%c",
                                               -2.25, 255u, 42, 'Z'),
                             AREDIS_ERR_OK);
        break;
    }
    if (future_form) {
        f2 = aredis_future_argv_ex(c, o, argc, argv, lens);
        assert_int_equal(aredis_await(f1), AREDIS_ERR_OK);
        assert_int_equal(aredis_await(f2), AREDIS_ERR_OK);
        aredis_future_release(f1);
        aredis_future_release(f2);
    } else {
        assert_int_equal(aredis_command_argv_ex(c, o, ts_on_reply, &r2, argc, argv, lens),
                         AREDIS_ERR_OK);
        assert_true(ts_wait(g_loop, &r1.done, 5000));
        assert_true(ts_wait(g_loop, &r2.done, 5000));
        assert_int_equal(r1.code, AREDIS_ERR_OK);
        assert_int_equal(r2.code, AREDIS_ERR_OK);
    }
}

/* The expected bytes of send_both(which): its argv form, encoded once. */
static void expected_of(int which, char **out, size_t *len) {
    static const char bin[] = {'a', '\0', 'b', ' ', '\r', '\n'};
    char num[64];
    if (which == 0) {
        const char *argv[3] = {"SET", "cmdex:key:7", bin};
        size_t lens[3] = {3, 11, sizeof bin};
        assert_int_equal(aredis_format_argv(out, len, 3, argv, lens), AREDIS_ERR_OK);
    } else if (which == 1) {
        snprintf(num, sizeof num, "%f", 1.5);
        const char *argv[4] = {"ZADD", "k", num, "m"};
        assert_int_equal(aredis_format_argv(out, len, 4, argv, NULL), AREDIS_ERR_OK);
    } else {
        snprintf(num, sizeof num, "%08.3f|%-6x|%+d|%c", -2.25, 255u, 42, 'Z');
        const char *argv[2] = {"ECHO", num};
        assert_int_equal(aredis_format_argv(out, len, 2, argv, NULL), AREDIS_ERR_OK);
    }
}

/*
 * A fake server records every byte: each command sent in the format form
 * (callback and future, with and without options) is followed by its argv
 * form, and the two are the same bytes, equal to aredis_format_argv's.
 */
static void test_format_and_argv_same_bytes(void **state) {
    (void)state;
    ts_fake *fk = ts_fake_new();
    ts_fake_hello3(fk);
    ts_fake_serve(fk, "+OK\r\n");
    ts_fake_start(fk);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(fk);
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 5000;
    co.flags = AREDIS_CMD_RETRYABLE;

    size_t before;
    free(ts_fake_received(fk, &before)); /* the handshake */
    size_t at = before;
    for (int future_form = 0; future_form < 2; future_form++)
        for (int with_opts = 0; with_opts < 2; with_opts++)
            for (int which = 0; which < 3; which++) {
                send_both(c, future_form, with_opts ? &co : NULL, which);
                char *want;
                size_t wlen, n;
                expected_of(which, &want, &wlen);
                char *rx = ts_fake_received(fk, &n);
                assert_int_equal(n, at + 2 * wlen);
                assert_memory_equal(rx + at, want, wlen);
                assert_memory_equal(rx + at + wlen, want, wlen);
                at = n;
                free(rx);
                aredis_free_command(want);
            }
    aredis_client_free(c);
    ts_fake_stop(fk);
}

/* Against the real server: what the format form stores reads back as the
 * argv form's. */
static void test_round_trip(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 3000;
    aredis_future *f =
        aredis_future_command_ex(c, &co, "ZADD cmdex:z %f %s %.3e %s", 1.5, "a", -250.0, "b");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_int_equal(aredis_future_reply(f)->integer, 2);
    aredis_future_release(f);
    const char *argv[3] = {"ZSCORE", "cmdex:z", "b"};
    f = aredis_future_argv_ex(c, &co, 3, argv, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_reply *r = aredis_future_reply(f);
    assert_true(r->type == AREDIS_REPLY_DOUBLE || r->type == AREDIS_REPLY_STRING);
    assert_true(strcmp(r->str, "-250") == 0);
    aredis_future_release(f);
    /* An integer conversion with flags and width, read back byte for byte. */
    ts_result set = {0};
    assert_int_equal(aredis_command_ex(c, &co, ts_on_reply, &set, "SET cmdex:hex %#06x", 255u),
                     AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &set.done, 5000));
    assert_int_equal(set.code, AREDIS_ERR_OK);
    ts_cmd_bytes(c, "0x00ff", 6, "GET cmdex:hex");
    aredis_client_free(c);
}

/* ---- Refusals ------------------------------------------------------------ */

static void test_bad_formats_refused(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    ts_result r = {0};
    assert_int_equal(aredis_command_ex(c, &co, ts_on_reply, &r, "GET %q", "x"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_command_ex(c, &co, ts_on_reply, &r, "GET %5s", "x"),
                     AREDIS_ERR_INVALID);
    assert_int_equal(aredis_command_ex(c, &co, ts_on_reply, &r, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_int_equal(vcommand_ex(c, &co, &r, "   "), AREDIS_ERR_INVALID);
    aredis_future *f = aredis_future_command_ex(c, &co, "GET %*d", 5, 1);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);
    f = future_vcommand_ex(c, NULL, "GET %");
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);
    assert_int_equal(r.calls, 0);
    ts_cmd_ok(c, "SET cmdex:still %s", "works");
    aredis_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_command_timeout),
        cmocka_unit_test(test_no_timeout_outlives_client_timeout),
        cmocka_unit_test(test_null_opts_is_default),
        cmocka_unit_test(test_format_and_argv_same_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_formats_refused),
    };
    return cmocka_run_group_tests_name("command_ex", tests, setup, teardown);
}
