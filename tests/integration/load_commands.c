/*
 * aredis_options.load_commands: the server's own command table, read at
 * connect, covers commands the built-in table lacks.
 *
 * - A scripted server whose COMMAND reply lists a command the built-in
 *   table does not know (NEWCMD key value): with a prefix, it is refused
 *   without load_commands, and sent with its key prefixed (never its value)
 *   with it; aredis_client_known_commands() counts it.
 * - A real server: the handshake loads the table and the client works; one
 *   whose ACL refuses COMMAND still connects (the built-in table serves).
 */
#include <stdlib.h>
#include <string.h>

#include "fake_server.h"
#include "ts.h"

/* COMMAND's reply in RESP2: one command, "newcmd key value", whose key is
 * argument 1 (a key spec: index 1, range 0). */
static const char k_command_reply[] =
    "*1\r\n"
    "*10\r\n"
    "$6\r\nnewcmd\r\n"
    ":3\r\n"
    "*1\r\n+write\r\n"
    ":1\r\n:1\r\n:1\r\n"
    "*0\r\n"
    "*0\r\n"
    "*1\r\n"
    "*6\r\n"
    "$5\r\nflags\r\n*1\r\n+RW\r\n"
    "$12\r\nbegin_search\r\n"
    "*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n"
    "$9\r\nfind_keys\r\n"
    "*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n"
    "*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n"
    "*0\r\n";

static aredis_client *connect_fake(aredis_loop *loop, ts_fake *f, int load) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(f);
    o.protocol = 2;
    o.prefix = "app:";
    o.load_commands = load;
    o.reconnect = 0;
    return ts_connect(loop, &o);
}

static void test_unknown_command_prefixed_once_loaded(void **state) {
    (void)state;
    aredis_loop *loop = aredis_loop_new();
    ts_fake *f = ts_fake_new();
    /* Without load_commands: RESP2 handshake (PING), then silence. */
    ts_fake_reply(f, "+PONG\r\n");
    ts_fake_wait_eof(f, 10000);
    ts_fake_next_conn(f);
    /* With it: COMMAND is the handshake; then NEWCMD answered +OK. */
    ts_fake_reply(f, k_command_reply);
    ts_fake_reply(f, "+OK\r\n");
    ts_fake_wait_eof(f, 10000);
    ts_fake_start(f);

    aredis_client *c = connect_fake(loop, f, 0);
    assert_int_equal(aredis_client_known_commands(c), 0);
    ts_result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "NEWCMD k k"), AREDIS_ERR_UNSUPPORTED);
    assert_non_null(strstr(aredis_call_error()->detail, "load_commands"));
    assert_int_equal(r.calls, 0);
    aredis_client_free(c);

    c = connect_fake(loop, f, 1);
    assert_int_equal(aredis_client_known_commands(c), 1);
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "NEWCMD k k"), AREDIS_ERR_OK);
    assert_true(ts_wait(loop, &r.done, 5000));
    assert_int_equal(r.code, AREDIS_ERR_OK);
    size_t len;
    char *got = ts_fake_received(f, &len);
    /* The key got the prefix; the value (the same bytes) did not. */
    assert_non_null(strstr(got, "*3\r\n$6\r\nNEWCMD\r\n$5\r\napp:k\r\n$1\r\nk\r\n"));
    assert_non_null(strstr(got, "*1\r\n$7\r\nCOMMAND\r\n"));
    free(got);
    aredis_client_free(c);
    ts_fake_stop(f);
    aredis_loop_free(loop);
}

/* A real server: the table loads (it adds nothing the generator did not
 * see from the same server, or what a newer server has), commands work. */
static void test_real_server(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.load_commands = 1;
    o.prefix = "lc:";
    aredis_client *c = ts_connect(loop, &o);
    ts_log("the server's table adds %zu commands to the built-in one",
           aredis_client_known_commands(c));
    ts_cmd_ok(c, "SET k v");
    ts_cmd_bytes(c, "v", 1, "GET k");
    aredis_client *plain = ts_client(loop, s);
    ts_cmd_bytes(plain, "v", 1, "GET lc:k");
    if (ts_server_has(TS_FEATURE_HASH_FIELD_TTL)) {
        /* Redis 7.4's HEXPIRE is not in the built-in (7.0) table: known
         * through the loaded one, its key is prefixed. */
        assert_true(aredis_client_known_commands(c) > 0);
        aredis_future *f = ts_cmd(c, "HSET h f v");
        aredis_future_release(f);
        f = ts_cmd(c, "HEXPIRE h 100 FIELDS 1 f");
        assert_null(aredis_future_error(f));
        aredis_future_release(f);
        f = ts_cmd(plain, "HTTL lc:h FIELDS 1 f");
        assert_null(aredis_future_error(f));
        assert_true(aredis_future_reply(f)->element[0]->integer > 0);
        aredis_future_release(f);
    }
    aredis_client_free(plain);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* An ACL that refuses COMMAND: the connect still succeeds. */
static void test_command_refused(void **state) {
    (void)state;
    static const char *const conf[] = {"user default on nopass ~* &* +@all -command", NULL};
    ts_server *s = ts_server_start(conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.load_commands = 1;
    aredis_client *c = ts_connect(loop, &o);
    assert_int_equal(aredis_client_known_commands(c), 0);
    ts_cmd_ok(c, "SET k v");
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_command_prefixed_once_loaded),
        cmocka_unit_test(test_real_server),
        cmocka_unit_test(test_command_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
