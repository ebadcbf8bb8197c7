/*
 * The client against a real server: connect, commands both ways (callbacks
 * and futures), typed errors, RESP2 vs RESP3 replies, unix sockets, close
 * and free from inside callbacks.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ts.h"

static ts_server *g_srv;
static aredis_loop *g_loop;

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(NULL, 1);
    g_loop = aredis_loop_new();
    assert_non_null(g_loop);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

static void test_set_get_future(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    assert_int_equal(aredis_client_protocol(c), 3);
    ts_cmd_ok(c, "SET %s %s", "basic:k", "hello");
    aredis_future *f = ts_cmd(c, "GET %s", "basic:k");
    assert_null(aredis_future_error(f));
    assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_STRING);
    assert_string_equal(aredis_future_reply(f)->str, "hello");
    aredis_future_release(f);
    f = ts_cmd(c, "GET %s", "basic:missing");
    assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_NIL);
    aredis_future_release(f);
    aredis_client_free(c);
}

typedef ts_result result;

static void test_callbacks_and_server_error(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    result a = {0}, b = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &a, "SET %s %d", "basic:n", 41), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_reply, &b, "INCR %s", "basic:n"), AREDIS_ERR_OK);
    assert_int_equal(a.calls, 0); /* never from inside the issuing call */
    assert_true(ts_wait(g_loop, &b.done, 5000));
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_int_equal(b.type, AREDIS_REPLY_INTEGER);

    /* A server error is an answer, typed SERVER with its prefix. */
    result e = {0};
    ts_cmd_ok(c, "SET %s %s", "basic:str", "x");
    assert_int_equal(aredis_command(c, ts_on_reply, &e, "LPUSH %s %s", "basic:str", "y"),
                     AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &e.done, 5000));
    assert_int_equal(e.code, AREDIS_ERR_SERVER);
    assert_string_equal(e.prefix, "WRONGTYPE");
    assert_int_equal(e.type, AREDIS_REPLY_ERROR);
    assert_false(aredis_err_is_connection(e.code));
    /* The connection is still fine afterwards. */
    ts_cmd_ok(c, "SET %s %s", "basic:after", "ok");
    aredis_client_free(c);
}

static void test_hgetall_resp3_map_resp2_array(void **state) {
    (void)state;
    aredis_client *c3 = ts_client(g_loop, g_srv);
    aredis_options o = ts_options(g_srv);
    o.protocol = 2;
    aredis_client *c2 = aredis_client_new(g_loop, &o);
    assert_non_null(c2);
    assert_int_equal(aredis_client_connect(c2), AREDIS_ERR_OK);
    aredis_future *ready = aredis_future_ready(c2);
    assert_int_equal(aredis_await(ready), AREDIS_ERR_OK);
    aredis_future_release(ready);
    assert_int_equal(aredis_client_protocol(c2), 2);

    aredis_future_release(ts_cmd(c3, "DEL basic:h"));
    aredis_future_release(ts_cmd(c3, "HSET basic:h a 1 b 2"));
    aredis_future *f3 = ts_cmd(c3, "HGETALL basic:h");
    aredis_future *f2 = ts_cmd(c2, "HGETALL basic:h");
    aredis_reply *m = aredis_future_reply(f3), *a = aredis_future_reply(f2);
    assert_int_equal(m->type, AREDIS_REPLY_MAP);
    assert_int_equal(m->elements, 4); /* two pairs, flattened */
    assert_int_equal(a->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(a->elements, 4);
    aredis_future_release(f3);
    aredis_future_release(f2);
    aredis_client_free(c3);
    aredis_client_free(c2);
}

static void test_unix_socket(void **state) {
    (void)state;
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.unix_path = ts_server_unix(g_srv);
    assert_non_null(o.unix_path);
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ts_cmd_ok(c, "SET %s %s", "basic:unix", "via-unix");
    aredis_future *f = ts_cmd(c, "GET basic:unix");
    assert_string_equal(aredis_future_reply(f)->str, "via-unix");
    aredis_future_release(f);
    aredis_client_free(c);
}

static int free_port_nothing_listens(void) {
    /* The fixture's port after a stop is free; use a fresh server and stop it. */
    ts_server *s = ts_server_start_default();
    int port = ts_server_port(s);
    ts_server_stop(s);
    return port;
}

static void test_connection_refused(void **state) {
    (void)state;
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = free_port_nothing_listens();
    o.reconnect = 0; /* fail at once instead of retrying */
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "PING"), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &r.done, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, AREDIS_ERR_CONNREFUSED);
    assert_true(aredis_err_is_connection(r.code));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    /* Not connected now: refused at once, callback never runs. */
    result r2 = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r2, "PING"), AREDIS_ERR_NOT_CONNECTED);
    aredis_client_free(c);
    assert_int_equal(r2.calls, 0);
}

static void test_close_cancels_exactly_once(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    result r[10];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 10; i++)
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "PING"), AREDIS_ERR_OK);
    aredis_client_close(c);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, AREDIS_ERR_CANCELLED);
    }
    assert_int_equal(aredis_command(c, ts_on_reply, &r[0], "PING"), AREDIS_ERR_CLOSED);
    assert_int_equal(r[0].calls, 1);
    aredis_client_free(c);
}

typedef struct {
    int calls;
    int done;
    aredis_err code;
} free_ctx;

static void free_in_cb(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    free_ctx *x = data;
    x->calls++;
    x->done = 1;
    x->code = err ? err->code : AREDIS_ERR_OK;
    aredis_client_free(c); /* second call from the second callback is a no-op */
}

static void test_free_inside_callback(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    free_ctx a = {0}, b = {0};
    assert_int_equal(aredis_command(c, free_in_cb, &a, "PING"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, free_in_cb, &b, "PING"), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &a.done, 5000));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.code, AREDIS_ERR_OK);
    /* The second command was cancelled by the free, exactly once. */
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.code, AREDIS_ERR_CANCELLED);
}

static void test_graceful_disconnect(void **state) {
    (void)state;
    aredis_client *c = ts_client(g_loop, g_srv);
    result r[5];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 5; i++)
        assert_int_equal(aredis_command(c, ts_on_reply, &r[i], "INCR basic:graceful"),
                         AREDIS_ERR_OK);
    aredis_client_disconnect(c);
    result late = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &late, "PING"), AREDIS_ERR_CLOSED);
    assert_true(ts_wait(g_loop, &r[4].done, 5000));
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
    /* Disconnected by request: idle (connect() may be called again), and no
     * reconnect was started. */
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    assert_int_equal(aredis_client_last_error(c)->code, AREDIS_ERR_CLOSED);
    aredis_client_free(c);
}

static void test_commands_before_ready_wait(void **state) {
    (void)state;
    aredis_options o = ts_options(g_srv);
    o.db = 3;
    o.client_name = "aredis-test";
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    /* Issued while connecting: they wait for the handshake. */
    aredis_future *f1 = aredis_future_command(c, "SET basic:db3 %s", "three");
    aredis_future *f2 = aredis_future_command(c, "CLIENT GETNAME");
    aredis_future *all[] = {f1, f2};
    aredis_future *both = aredis_future_all(all, 2);
    assert_int_equal(aredis_await(both), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f2)->str, "aredis-test");
    char db[16];
    assert_true(ts_client_field(c, "db", db, sizeof db));
    assert_string_equal(db, "3");
    aredis_future_release(both);
    aredis_future_release(f1);
    aredis_future_release(f2);
    aredis_client_free(c);
}

static void test_bad_inputs(void **state) {
    (void)state;
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = 0;
    assert_null(aredis_client_new(g_loop, &o));
    o.port = 70000;
    assert_null(aredis_client_new(g_loop, &o));
    o = (aredis_options)AREDIS_OPTIONS_INIT;
    o.db = -1;
    assert_null(aredis_client_new(g_loop, &o));
    assert_null(aredis_client_new(NULL, NULL));
    aredis_client *c = ts_client(g_loop, g_srv);
    result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET %q", "x"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "   "), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_command_argv(c, ts_on_reply, &r, 0, NULL, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_INVALID);
    aredis_future *f = aredis_future_command(c, "GET %q", "x");
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);
    assert_int_equal(r.calls, 0);
    /* The client still works. */
    ts_cmd_ok(c, "SET basic:bad ok");
    aredis_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_future),
        cmocka_unit_test(test_callbacks_and_server_error),
        cmocka_unit_test(test_hgetall_resp3_map_resp2_array),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_close_cancels_exactly_once),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_graceful_disconnect),
        cmocka_unit_test(test_commands_before_ready_wait),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
