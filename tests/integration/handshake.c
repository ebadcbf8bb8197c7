/*
 * The handshake against real servers: password and ACL authentication (via
 * HELLO and via AUTH), typed AUTH errors, the RESP2 fallback when a server
 * has no HELLO, SELECT and SETNAME, the connect timeout against a peer that
 * never answers, IPv6 and URIs.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts.h"

static void test_password(void **state) {
    (void)state;
    static const char *const conf[] = {"requirepass s3cret-pw", NULL};
    ts_server *s = ts_server_start(conf, 0);
    aredis_loop *loop = aredis_loop_new();
    char why[256];
    for (int proto = 2; proto <= 3; proto++) {
        aredis_options o = ts_options(s);
        o.protocol = proto;
        aredis_client *c;
        /* Right password. */
        o.password = "s3cret-pw";
        assert_int_equal(ts_connect_err(loop, &o, &c, why, sizeof why), AREDIS_ERR_OK);
        assert_int_equal(aredis_client_protocol(c), proto);
        ts_cmd_ok(c, "SET auth:k v");
        aredis_client_free(c);
        /* Wrong password: AUTH, not retried, and the secret is not echoed. */
        o.password = "wrong-pw-xyz";
        assert_int_equal(ts_connect_err(loop, &o, &c, why, sizeof why), AREDIS_ERR_AUTH);
        ts_log("proto %d, wrong password: %s", proto, why);
        assert_null(strstr(why, "wrong-pw-xyz"));
        assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
        aredis_client_free(c);
        /* No password: AUTH naming NOAUTH. */
        o.password = NULL;
        assert_int_equal(ts_connect_err(loop, &o, &c, why, sizeof why), AREDIS_ERR_AUTH);
        ts_log("proto %d, no password: %s", proto, why);
        if (proto == 3) assert_non_null(strstr(why, "NOAUTH"));
        aredis_client_free(c);
    }
    aredis_loop_free(loop);
    ts_server_stop(s);
}

static void test_acl_user(void **state) {
    (void)state;
    static const char *const conf[] = {"user testuser on >testpass ~* &* +@all", NULL};
    ts_server *s = ts_server_start(conf, 0);
    aredis_loop *loop = aredis_loop_new();
    for (int proto = 2; proto <= 3; proto++) {
        aredis_options o = ts_options(s);
        o.protocol = proto;
        o.username = "testuser";
        o.password = "testpass";
        aredis_client *c;
        assert_int_equal(ts_connect_err(loop, &o, &c, NULL, 0), AREDIS_ERR_OK);
        aredis_future *f = ts_cmd(c, "ACL WHOAMI");
        assert_string_equal(aredis_future_reply(f)->str, "testuser");
        aredis_future_release(f);
        aredis_client_free(c);
        o.password = "nope";
        char why[256];
        assert_int_equal(ts_connect_err(loop, &o, &c, why, sizeof why), AREDIS_ERR_AUTH);
        assert_non_null(strstr(why, "WRONGPASS"));
        aredis_client_free(c);
    }
    /* A username without a password is refused up front. */
    aredis_options o = ts_options(s);
    o.username = "testuser";
    assert_null(aredis_client_new(loop, &o));
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* A server without HELLO: protocol 3 falls back to RESP2, and AUTH, SELECT
 * and SETNAME still happen. */
static void test_fallback_without_hello(void **state) {
    (void)state;
    static const char *const conf[] = {"rename-command HELLO \"\"", "requirepass pw", NULL};
    ts_server *s = ts_server_start(conf, 0);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.password = "pw";
    o.db = 2;
    o.client_name = "fallback-client";
    aredis_client *c;
    char why[256];
    aredis_err e = ts_connect_err(loop, &o, &c, why, sizeof why);
    if (e) fail_msg("connect: %s", why);
    assert_int_equal(aredis_client_protocol(c), 2);
    char v[64];
    assert_true(ts_client_field(c, "db", v, sizeof v));
    assert_string_equal(v, "2");
    assert_true(ts_client_field(c, "name", v, sizeof v));
    assert_string_equal(v, "fallback-client");
    if (ts_server_has(TS_FEATURE_CLIENT_INFO_RESP)) {
        assert_true(ts_client_field(c, "resp", v, sizeof v));
        assert_string_equal(v, "2");
    } else {
        ts_log("not checked: the server's resp= (needs %s; the server is %s): "
               "RESP2 is seen in HGETALL's shape only",
               ts_feature_name(TS_FEATURE_CLIENT_INFO_RESP), ts_server_describe());
    }
    /* RESP2 shape: HGETALL is a flat array. */
    aredis_future_release(ts_cmd(c, "HSET fb:h a 1"));
    aredis_future *f = ts_cmd(c, "HGETALL fb:h");
    assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_ARRAY);
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* A peer that accepts but never answers: the handshake is bounded by
 * connect_timeout_ms, and waiting commands fail with TIMEOUT. */
static void test_connect_timeout(void **state) {
    (void)state;
    int port;
    int lfd = ts_silent_listener(&port);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = port;
    o.connect_timeout_ms = 300;
    o.reconnect = 0;
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    uint64_t t0 = ts_now_ms();
    aredis_future *cmd = aredis_future_command(c, "PING");
    assert_int_equal(aredis_await(cmd), AREDIS_ERR_TIMEOUT);
    uint64_t took = ts_now_ms() - t0;
    ts_log("silent peer: failed after %llu ms: %s", (unsigned long long)took,
           aredis_future_error(cmd)->detail);
    assert_true(took >= 250 && took < 2000);
    aredis_future_release(cmd);
    aredis_client_free(c);

    /* With reconnect on, the client keeps trying; a command's own deadline
     * still bounds it: time spent queued counts. */
    o.reconnect = 1;
    o.reconnect_delay_ms = 50;
    o.request_timeout_ms = 400;
    o.wait_for_first_connect = 1; /* else the first failed attempt fails it */
    c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    t0 = ts_now_ms();
    cmd = aredis_future_command(c, "PING");
    assert_int_equal(aredis_await(cmd), AREDIS_ERR_TIMEOUT);
    took = ts_now_ms() - t0;
    assert_true(took >= 350 && took < 2000);
    /* It never left: the detail says it waited for a connection. */
    assert_non_null(
        strstr(aredis_future_error(cmd)->detail, "request timed out waiting for a connection"));
    aredis_future_release(cmd);
    aredis_client_free(c);
    aredis_loop_free(loop);
    close(lfd);
}

static int have_ipv6_loopback(void) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void test_ipv6_and_uri(void **state) {
    (void)state;
    int v6 = have_ipv6_loopback();
    static const char *const conf6[] = {"bind 127.0.0.1 ::1", NULL};
    ts_server *s = ts_server_start(v6 ? conf6 : NULL, 1);
    aredis_loop *loop = aredis_loop_new();
    char uri[512], err[256];
    const char *forms[3];
    int n = 0;
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/4?client_name=uri-client&timeout=2",
             ts_server_port(s));
    forms[n++] = strdup(uri);
    snprintf(uri, sizeof uri, "unix://%s?db=4", ts_server_unix(s));
    forms[n++] = strdup(uri);
    if (v6) {
        snprintf(uri, sizeof uri, "redis://[::1]:%d/4", ts_server_port(s));
        forms[n++] = strdup(uri);
    } else {
        ts_log("no IPv6 loopback here: the [::1] form is not exercised");
    }
    for (int i = 0; i < n; i++) {
        aredis_uri *u;
        assert_int_equal(aredis_uri_parse(forms[i], &u, err, sizeof err), AREDIS_ERR_OK);
        aredis_options o = AREDIS_OPTIONS_INIT;
        aredis_uri_apply(u, &o);
        aredis_client *c;
        char why[256];
        aredis_err e = ts_connect_err(loop, &o, &c, why, sizeof why);
        aredis_uri_free(u);
        if (e) fail_msg("%s: %s", forms[i], why);
        char db[16];
        assert_true(ts_client_field(c, "db", db, sizeof db));
        assert_string_equal(db, "4");
        ts_log("connected via %s", forms[i]);
        aredis_client_free(c);
        free((void *)forms[i]);
    }
    aredis_loop_free(loop);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_acl_user),
        cmocka_unit_test(test_fallback_without_hello),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_ipv6_and_uri),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
