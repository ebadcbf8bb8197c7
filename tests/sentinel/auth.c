/* labels: cluster */
/*
 * Credentials: sentinels with requirepass and data nodes with requirepass
 * (tests/support/sentinel.h, ts_sentinel_start_auth). With both passwords
 * right the client connects to the primary, and its watch (which
 * authenticates too) is made. A wrong or missing sentinel password: every
 * sentinel refuses, the attempt fails with AREDIS_ERR_AUTH, and the policy
 * stops (no hammering), unless reconnect_on_auth_error; a wrong data-node
 * password: AREDIS_ERR_AUTH from the node, likewise. And through all of it,
 * at DEBUG: no password in any log line, error detail, on_error or
 * on_disconnect text (every secret holds "S3CR3T"; the log shows the
 * handshake with <redacted> in their place, so the check is not vacuous).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentinel.h"
#include "ts.h"

#define g_loop ts_case_loop()
#define MARK "S3CR3T"
#define SENTINEL_PW "sent-S3CR3T-1"
#define NODE_PW "node-S3CR3T-2"
#define WRONG_PW "wrong-S3CR3T-3"

static ts_sentinel *g_ts;
static char g_addr[3][32];
static const char *g_list[3];

/* ---- Capture ------------------------------------------------------------- */

static char *g_cap;
static size_t g_caplen, g_capcap;

static void cap_add(const char *what, const char *s) {
    if (!s) s = "(null)";
    size_t need = strlen(what) + strlen(s) + 4;
    if (g_caplen + need + 1 > g_capcap) {
        g_capcap = (g_caplen + need + 1) * 2;
        g_cap = realloc(g_cap, g_capcap);
        assert_non_null(g_cap);
    }
    g_caplen += (size_t)sprintf(g_cap + g_caplen, "%s: %s\n", what, s);
}

static void capture_log(int level, const char *line, void *data) {
    (void)data;
    cap_add(aredis_log_level_name(level), line);
}

static void assert_clean(const char *where) {
    const char *at = g_cap ? strstr(g_cap, MARK) : NULL;
    if (at) {
        const char *from = at - g_cap > 200 ? at - 200 : g_cap;
        fail_msg("%s: a secret leaked:\n...%.300s", where, from);
    }
}

static void assert_captured(const char *needle) {
    if (!g_cap || !strstr(g_cap, needle)) fail_msg("not in the captured output: [%s]", needle);
}

typedef struct events {
    size_t errors, reconnects;
} events;

static void on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    ((events *)data)->errors++;
    cap_add("on_error", err->detail);
}
static void on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    cap_add("on_disconnect", err->detail);
}
static void on_reconnect(aredis_client *c, unsigned attempt, uint32_t delay_ms, void *data) {
    (void)c;
    (void)attempt;
    (void)delay_ms;
    ((events *)data)->reconnects++;
}

static aredis_sentinel_options sopts(const char *spw, const char *npw, events *ev) {
    aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;
    so.sentinels = g_list;
    so.nsentinels = 3;
    so.master_name = TS_SENTINEL_MASTER;
    so.sentinel_password = spw;
    so.node.password = npw;
    so.node.reconnect_delay_ms = 20;
    so.node.max_reconnect_delay_ms = 100;
    so.node.on_error = on_error;
    so.node.on_disconnect = on_disconnect;
    so.node.on_reconnect_attempt = on_reconnect;
    so.node.cb_data = ev;
    return so;
}

static int watching(const void *arg) {
    aredis_sentinel_stats st;
    aredis_sentinel_get_stats(arg, &st);
    return st.watch_connects >= 1;
}

static int is_idle(const void *arg) { return aredis_client_state(arg) == AREDIS_STATE_IDLE; }

/* Connect and wait: the outcome, its detail captured. */
static aredis_err attempt(aredis_client *c, char *why, size_t len) {
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    aredis_future *f = aredis_future_command(c, "PING");
    aredis_err e = ts_await_ready(c, why, len);
    cap_add("ready", why);
    aredis_await(f);
    if (aredis_future_error(f)) cap_add("command", aredis_future_error(f)->detail);
    aredis_future_release(f);
    cap_add("last_error", aredis_client_last_error(c)->detail);
    return e;
}

/* ---- Cases ----------------------------------------------------------------- */

static void test_right_passwords(void **state) {
    (void)state;
    events ev = {0};
    aredis_sentinel_options so = sopts(SENTINEL_PW, NODE_PW, &ev);
    aredis_client *c = aredis_sentinel_client_new(g_loop, &so);
    assert_non_null(c);
    char why[512];
    assert_int_equal(attempt(c, why, sizeof why), AREDIS_ERR_OK);
    int port = 0;
    assert_int_equal(aredis_sentinel_current(c, NULL, 0, &port), AREDIS_ERR_OK);
    assert_int_equal(port, ts_sentinel_primary_port(g_ts));
    aredis_future *f = ts_cmd(c, "ROLE");
    assert_string_equal(aredis_future_reply(f)->element[0]->str, "master");
    aredis_future_release(f);
    ts_cmd_ok(c, "SET %s %s", "auth:k", "v");
    assert_true(ts_wait_until(g_loop, watching, c, 10000));
    assert_int_equal(ev.errors, 0);
    aredis_client_free(c);
    assert_clean("right passwords");
}

static void expect_refused(const char *spw, const char *npw, const char *want) {
    events ev = {0};
    aredis_sentinel_options so = sopts(spw, npw, &ev);
    aredis_client *c = aredis_sentinel_client_new(g_loop, &so);
    assert_non_null(c);
    char why[512];
    assert_int_equal(attempt(c, why, sizeof why), AREDIS_ERR_AUTH);
    if (!strstr(why, want)) fail_msg("[%s] lacks [%s]", why, want);
    /* A refusal the next attempt would meet again: no retry. */
    assert_true(ts_wait_until(g_loop, is_idle, c, 5000));
    assert_int_equal(ev.reconnects, 0);
    assert_int_equal(ev.errors, 1);
    aredis_client_free(c);
}

static void test_wrong_passwords(void **state) {
    (void)state;
    /* Every sentinel refuses the password. */
    expect_refused(WRONG_PW, NODE_PW, "no sentinel gave the address");
    expect_refused(WRONG_PW, NODE_PW, "WRONGPASS");
    /* None given to sentinels that want one. */
    expect_refused(NULL, NODE_PW, "NOAUTH");
    /* The sentinels answer; the primary refuses its password. */
    expect_refused(SENTINEL_PW, WRONG_PW, "WRONGPASS");
    expect_refused(SENTINEL_PW, NULL, "NOAUTH");
    /* The policy may be told to go on anyway. */
    events ev = {0};
    aredis_sentinel_options so = sopts(WRONG_PW, NODE_PW, &ev);
    so.node.reconnect_on_auth_error = 1;
    so.node.max_reconnect_attempts = 1;
    aredis_client *c = aredis_sentinel_client_new(g_loop, &so);
    char why[512];
    assert_int_equal(attempt(c, why, sizeof why), AREDIS_ERR_AUTH);
    assert_true(ts_wait_until(g_loop, is_idle, c, 5000));
    assert_int_equal(ev.reconnects, 1);
    aredis_client_free(c);
    assert_clean("wrong passwords");
}

static void test_nothing_leaked(void **state) {
    (void)state;
    /* Everything the cases above said, at DEBUG, once more as a whole: the
     * handshakes were logged, with the passwords redacted. */
    assert_captured("HELLO 3 AUTH <redacted> <redacted>");
    assert_captured("SENTINEL get-master-addr-by-name mymaster");
    assert_clean("all cases");
}

static int group_setup(void **state) {
    (void)state;
    aredis_set_log_handler(capture_log, NULL, AREDIS_LOG_DEBUG);
    g_ts = ts_sentinel_start_auth(3, SENTINEL_PW, NODE_PW);
    for (int i = 0; i < 3; i++) {
        snprintf(g_addr[i], sizeof g_addr[i], "127.0.0.1:%d", ts_sentinel_port(g_ts, i));
        g_list[i] = g_addr[i];
    }
    /* The fixture's own clients authenticated through the library too:
     * what they logged is not the client under test's. */
    g_caplen = 0;
    if (g_cap) g_cap[0] = '\0';
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    aredis_set_log_handler(NULL, NULL, 0);
    ts_sentinel_stop(g_ts);
    free(g_cap);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_right_passwords),
        TS_LOOP_CASE(test_wrong_passwords),
        TS_LOOP_CASE(test_nothing_leaked),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
