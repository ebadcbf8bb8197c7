/*
 * Traffic over TLS: a 1 MiB value both ways, a 1,000-command pipeline,
 * commands appended while a large TLS write is pending (the output buffer
 * moves between a would-block write and its retry), RESP3 push messages,
 * a reconnect after the TLS server restarts, the handshake bounded by
 * connect_timeout_ms, no SIGPIPE when the server vanishes mid-write, and a
 * corrupted record on a live link handled as a lost connection (reconnect),
 * not as a certificate refusal.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "counters.h"
#include "proxy.h"
#include "tls.h"

static void fill(char *buf, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)((i * 31u + seed) & 0xff); /* binary, NULs too */
}

static void test_one_mib_value(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    aredis_client *c = ts_connect(loop, &o);
    size_t n = 1u << 20;
    char *val = malloc(n);
    assert_non_null(val);
    fill(val, n, 7);
    ts_cmd_ok(c, "SET tls:big %b", val, n);
    ts_cmd_bytes(c, val, n, "GET tls:big");
    free(val);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

typedef struct {
    size_t done;
    size_t in_order;
    size_t errors;
} pipe_rec;

static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    pipe_rec *p = data;
    if (err)
        p->errors++;
    else if (r->type == AREDIS_REPLY_INTEGER && r->integer == (long long)p->done + 1)
        p->in_order++;
    p->done++;
}

static void test_pipeline_1000(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    aredis_client *c = ts_connect(loop, &o);
    pipe_rec p = {0, 0, 0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(aredis_command(c, on_incr, &p, "INCR tls:counter"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(loop, &p.done, 1000, 10000));
    assert_int_equal(p.errors, 0);
    assert_int_equal(p.in_order, 1000);
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    ts_log("1000 INCR over TLS: %llu write calls, %llu read calls",
           (unsigned long long)st.write_calls, (unsigned long long)st.read_calls);
    assert_true(st.write_calls < 1000); /* pipelined, not one write per command */
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/*
 * Big values queued while a TLS write is waiting for the socket: new
 * commands grow (realloc) the output buffer between a would-block
 * SSL_write and its retry. Every value must arrive intact.
 */
static void test_writes_while_buffer_moves(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    aredis_client *c = ts_connect(loop, &o);
    enum { N = 12 };
    size_t n = 3u << 18; /* 768 KiB each */
    char *val = malloc(n);
    assert_non_null(val);
    pipe_rec p = {0, 0, 0};
    /* A stopped server reads nothing: the socket fills and writes block. */
    assert_int_equal(kill(ts_tls_server_pid(s), SIGSTOP), 0);
    aredis_client_stats before;
    aredis_client_get_stats(c, &before);
    for (int i = 0; i < N; i++) {
        fill(val, n, (unsigned)i);
        assert_int_equal(aredis_command(c, on_incr, &p, "APPEND tls:mv:%d %b", i, val, n),
                         AREDIS_ERR_OK);
        /* Let the loop write (until it would block) before the next append
         * grows the buffer under the pending write. */
        for (int k = 0; k < 3; k++)
            aredis_loop_run_once(loop, 0);
    }
    aredis_client_stats during;
    aredis_client_get_stats(c, &during);
    ts_log("while the server was stopped: %llu of %zu bytes went out",
           (unsigned long long)(during.bytes_out - before.bytes_out), (size_t)N * n);
    assert_true(during.bytes_out - before.bytes_out < (uint64_t)N * n); /* it did block */
    assert_int_equal(kill(ts_tls_server_pid(s), SIGCONT), 0);
    assert_true(ts_wait_count(loop, &p.done, N, 20000));
    assert_int_equal(p.errors, 0);
    for (int i = 0; i < N; i++) {
        fill(val, n, (unsigned)i);
        aredis_future *f = ts_cmd(c, "GET tls:mv:%d", i);
        assert_null(aredis_future_error(f));
        assert_int_equal(aredis_future_reply(f)->len, n);
        assert_memory_equal(aredis_future_reply(f)->str, val, n);
        aredis_future_release(f);
    }
    free(val);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/* RESP3 pushes arrive over TLS: a client-side-caching invalidation (the
 * subscribe family is refused by the command API until pub/sub has one). */
typedef struct {
    int invalidations;
    char last[64];
} push_rec;

static void on_push(aredis_client *c, aredis_reply *push, void *data) {
    (void)c;
    push_rec *p = data;
    if (push->elements == 2 && push->element[0]->str &&
        strcmp(push->element[0]->str, "invalidate") == 0 &&
        push->element[1]->type == AREDIS_REPLY_ARRAY && push->element[1]->elements == 1) {
        p->invalidations++;
        snprintf(p->last, sizeof p->last, "%s", push->element[1]->element[0]->str);
    }
}

static void test_push_over_tls(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    push_rec pr = {0, ""};
    o.on_push = on_push;
    o.cb_data = &pr;
    aredis_client *sub = ts_connect(loop, &o);
    if (aredis_client_protocol(sub) != 3) {
        ts_log("server speaks RESP2 only: no push messages to test");
        aredis_client_free(sub);
        aredis_loop_free(loop);
        ts_tls_server_stop(s);
        skip();
    }
    ts_cmd_ok(sub, "CLIENT TRACKING ON");
    aredis_future_release(ts_cmd(sub, "GET tls:tracked"));
    aredis_options po = ts_tls_options(s);
    aredis_client *other = ts_connect(loop, &po);
    ts_cmd_ok(other, "SET tls:tracked changed");
    assert_true(ts_wait(loop, &pr.invalidations, 5000));
    assert_string_equal(pr.last, "tls:tracked");
    /* The push took no command's place: the next reply is its own. */
    ts_cmd_bytes(sub, "changed", 7, "GET tls:tracked");
    aredis_client_free(other);
    aredis_client_free(sub);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/* Kill the TLS server, start it again: the client reconnects over TLS. */
static void test_reconnect(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.reconnect_delay_ms = 50;
    o.max_reconnect_delay_ms = 500;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(loop, &o);
    ts_cmd_ok(c, "SET tls:before %s", "x");
    assert_int_equal(k.connects, 1);

    ts_tls_server_kill(s);
    assert_true(ts_wait(loop, &k.disconnects, 5000));
    ts_tls_server_restart(s);
    int two = 0;
    uint64_t until = ts_now_ms() + 10000;
    while (k.connects < 2 && ts_now_ms() < until)
        aredis_loop_run_once(loop, 1);
    two = k.connects == 2;
    assert_true(two);
    ts_cmd_ok(c, "SET tls:after %s", "y");
    aredis_future *f = ts_cmd(c, "GET tls:after");
    assert_string_equal(aredis_future_reply(f)->str, "y");
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/*
 * A listener that accepts TCP (the kernel does, from the backlog) and never
 * answers the ClientHello: the handshake must end at connect_timeout_ms.
 */
static void test_handshake_timeout(void **state) {
    (void)state;
    int port;
    int lfd = ts_silent_listener(&port);

    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = port;
    o.tls = 1;
    o.tls_ca_file = ts_tls_file("ca.crt");
    o.connect_timeout_ms = 300;
    o.reconnect = 0;
    aredis_client *c;
    char detail[512];
    uint64_t t0 = ts_now_ms();
    aredis_err e = ts_tls_connect(loop, &o, &c, detail, sizeof detail);
    uint64_t took = ts_now_ms() - t0;
    ts_log("silent TLS peer: %s after %llu ms: %s", aredis_err_name(e), (unsigned long long)took,
           detail);
    assert_int_equal(e, AREDIS_ERR_TIMEOUT);
    assert_non_null(strstr(detail, "TLS handshake timed out"));
    assert_true(took >= 250);
    assert_true(took < 3000);
    aredis_client_free(c);
    aredis_loop_free(loop);
    close(lfd);
}

/*
 * The server dies while a large TLS write is under way. The library must
 * report a connection error — not kill the process with SIGPIPE (which is
 * left at its default action here on purpose).
 */
static void test_no_sigpipe(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.reconnect = 0;
    aredis_client *c = ts_connect(loop, &o);
    size_t n = 8u << 20;
    char *val = malloc(n);
    assert_non_null(val);
    fill(val, n, 3);
    ts_tls_server_kill(s);
    aredis_future *f = aredis_future_command(c, "SET tls:dead %b", val, n);
    aredis_err e = aredis_await(f);
    ts_log("write to a dead TLS server: %s: %s", aredis_err_name(e),
           aredis_future_error(f) ? aredis_future_error(f)->detail : "");
    assert_true(aredis_err_is_connection(e));
    aredis_future_release(f);
    free(val);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_tls_server_stop(s);
}

/*
 * A TLS error on an established link — here a record whose authentication
 * tag was flipped on the way ("bad record mac") — is a lost connection: the
 * command in flight fails with AREDIS_ERR_TLS (at most once: it was
 * written), and the client reconnects by itself. Only a certificate
 * refusal is for good.
 */
static void test_bad_record_reconnects(void **state) {
    (void)state;
    ts_tls_server *s = ts_tls_server_start(NULL, NULL, NULL);
    ts_proxy *px = ts_proxy_start("127.0.0.1", ts_tls_server_port(s));
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_tls_options(s);
    o.port = ts_proxy_port(px);
    o.reconnect_delay_ms = 20;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(loop, &o);
    ts_cmd_ok(c, "SET tls:live %s", "before");
    ts_proxy_corrupt_next_reply(px);
    aredis_future *f = ts_cmd(c, "GET tls:live");
    assert_int_equal(aredis_await(f), AREDIS_ERR_TLS);
    ts_log("corrupted record: %s", aredis_future_error(f)->detail);
    aredis_future_release(f);
    assert_int_equal(k.disconnects, 1);
    /* Reconnected, not given up: the next command goes through. */
    ts_cmd_bytes(c, "before", 6, "GET tls:live");
    assert_int_equal(k.connects, 2);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_proxy_stop(px);
    ts_tls_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_mib_value),
        cmocka_unit_test(test_pipeline_1000),
        cmocka_unit_test(test_writes_while_buffer_moves),
        cmocka_unit_test(test_push_over_tls),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_no_sigpipe),
        cmocka_unit_test(test_bad_record_reconnects),
    };
    return cmocka_run_group_tests_name("tls_traffic", tests, NULL, NULL);
}
