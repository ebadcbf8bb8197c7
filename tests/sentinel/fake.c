/* labels: cluster */
/*
 * The Sentinel client against fake sentinels (tests/support/sentinel.h, "A
 * fake sentinel") and real data nodes, for what real sentinels cannot be
 * made to do on cue:
 *   - silent sentinels ahead of a working one in the list go to the back
 *     once they fail, so that the next attempt asks the working one first
 *     (they cannot use up every attempt's deadline); with
 *     sentinel_timeout_ms 0 the deadline is shared among the sentinels left
 *     to ask; the reconnect's log line names the sentinels, not the last
 *     address;
 *   - a +switch-master heard while a lookup waits for a sentinel that has
 *     not heard of the failover: the client goes where it was announced;
 *   - node.protocol 2: the watch is made (its subscription's own connection
 *     connects), and losing only that connection moves the watch on;
 *   - malformed +switch-master messages and sentinel answers (ports out of
 *     range, trailing junk) are not acted on;
 *   - a lookup cut off by the connect deadline reports TIMEOUT and counts
 *     as a failed lookup, whichever timer the loop runs first;
 *   - node.tls: the TLS context is built once, by
 *     aredis_sentinel_client_new().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aredis/log.h"
#include "sentinel.h"
#include "ts.h"

#define g_loop ts_case_loop()

static ts_server *g_p1, *g_p2;

/* ---- Helpers ------------------------------------------------------------- */

typedef struct events {
    size_t disconnects;
} events;

static void ev_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)err;
    ((events *)data)->disconnects++;
}

static aredis_sentinel_options sopts(const char *const *list, size_t n) {
    aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;
    so.sentinels = list;
    so.nsentinels = n;
    so.master_name = TS_SENTINEL_MASTER;
    so.node.reconnect_delay_ms = 20;
    so.node.max_reconnect_delay_ms = 100;
    return so;
}

static aredis_client *sclient(const aredis_sentinel_options *so) {
    aredis_client *c = aredis_sentinel_client_new(g_loop, so);
    if (!c) fail_msg("aredis_sentinel_client_new: %s", aredis_call_error()->detail);
    return c;
}

static const char *addr_of(char *buf, size_t len, int port) {
    snprintf(buf, len, "127.0.0.1:%d", port);
    return buf;
}

static aredis_sentinel_stats stats(const aredis_client *c) {
    aredis_sentinel_stats st;
    assert_int_equal(aredis_sentinel_get_stats(c, &st), AREDIS_ERR_OK);
    return st;
}

static int current_port(const aredis_client *c) {
    int port = -1;
    assert_int_equal(aredis_sentinel_current(c, NULL, 0, &port), AREDIS_ERR_OK);
    return port;
}

static int is_ready(const void *arg) {
    return aredis_client_state((aredis_client *)arg) == AREDIS_STATE_READY;
}

static int watching(const void *arg) { return stats(arg).watch_connects >= 1; }
static int watched_twice(const void *arg) { return stats(arg).watch_connects >= 2; }
static int one_switch(const void *arg) { return stats(arg).switches >= 1; }

static int has_subscriber(const void *arg) { return ts_fsent_subscribers((ts_fsent *)arg) >= 1; }
static int was_asked(const void *arg) { return ts_fsent_lookups((ts_fsent *)arg) >= 1; }
static int no_connection(const void *arg) { return ts_fsent_connections((ts_fsent *)arg) == 0; }

static void assert_has(const char *text, const char *needle) {
    if (!strstr(text, needle)) fail_msg("[%s] lacks [%s]", text, needle);
}

/* The role the server behind c reports (ROLE's first element). */
static void assert_master(aredis_client *c) {
    aredis_future *f = ts_cmd(c, "ROLE");
    const aredis_reply *r = aredis_future_reply(f);
    if (!r || r->type != AREDIS_REPLY_ARRAY || !r->elements || !r->element[0]->str)
        fail_msg("ROLE: %s", aredis_future_error(f) ? aredis_future_error(f)->detail : "?");
    assert_string_equal(r->element[0]->str, "master");
    aredis_future_release(f);
}

/* Log lines, kept while a case captures them. */
static char g_log[8192];
static void keep_log(int level, const char *line, void *data) {
    (void)level;
    (void)data;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", line);
}

/* ---- Cases ----------------------------------------------------------------- */

/* Two silent sentinels ahead of the working one use up the first attempt's
 * deadline (each its sentinel_timeout_ms); they go to the back, and the
 * next attempt asks the working one first. */
static void test_silent_sentinels_go_last(void **state) {
    (void)state;
    int port1, port2;
    int l1 = ts_silent_listener(&port1), l2 = ts_silent_listener(&port2);
    ts_fsent *g = ts_fsent_start(NULL);
    ts_fsent_set_master_port(g, ts_server_port(g_p1));
    char a1[32], a2[32], ag[32];
    const char *list[] = {addr_of(a1, sizeof a1, port1), addr_of(a2, sizeof a2, port2),
                          addr_of(ag, sizeof ag, ts_fsent_port(g))};
    aredis_sentinel_options so = sopts(list, 3);
    so.watch = 0;
    so.sentinel_timeout_ms = 200;
    so.node.connect_timeout_ms = 400;
    g_log[0] = '\0';
    aredis_set_log_handler(keep_log, NULL, AREDIS_LOG_INFO);
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    int ok = ts_wait_until(g_loop, is_ready, c, 3000);
    aredis_set_log_handler(NULL, NULL, 0);
    aredis_sentinel_stats st = stats(c);
    if (!ok)
        fail_msg("not ready after 3 s: %s (lookups %llu, the working sentinel asked %u times)",
                 aredis_client_last_error(c)->detail, (unsigned long long)st.lookups,
                 ts_fsent_lookups(g));
    assert_int_equal(st.lookups, 2);
    assert_int_equal(st.lookup_failures, 1);
    assert_int_equal(st.sentinel_errors, 2); /* the second one cut by the deadline */
    assert_int_equal(ts_fsent_lookups(g), 1);
    assert_int_equal(current_port(c), ts_server_port(g_p1));
    assert_master(c);
    /* The reconnect asks the sentinels: its log line says so, not the
     * address that was tried last. */
    assert_has(g_log, "reconnect to primary of 'mymaster' (via sentinels) scheduled");
    aredis_client_free(c);
    ts_fsent_stop(g);
    close(l1);
    close(l2);
}

/* sentinel_timeout_ms 0: each sentinel asked gets an equal share of what is
 * left of the deadline, so a silent first one leaves time for the next. */
static void test_zero_timeout_shares_deadline(void **state) {
    (void)state;
    int port1;
    int l1 = ts_silent_listener(&port1);
    ts_fsent *g = ts_fsent_start(NULL);
    ts_fsent_set_master_port(g, ts_server_port(g_p1));
    char a1[32], ag[32];
    const char *list[] = {addr_of(a1, sizeof a1, port1), addr_of(ag, sizeof ag, ts_fsent_port(g))};
    aredis_sentinel_options so = sopts(list, 2);
    so.watch = 0;
    so.sentinel_timeout_ms = 0;
    so.node.connect_timeout_ms = 600;
    aredis_client *c = sclient(&so);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    if (!ts_wait_until(g_loop, is_ready, c, 2000))
        fail_msg("not ready after 2 s: %s", aredis_client_last_error(c)->detail);
    ts_log("connected past a silent sentinel in %llu ms", (unsigned long long)(ts_now_ms() - t0));
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.lookups, 1); /* the first attempt */
    assert_int_equal(st.lookup_failures, 0);
    assert_int_equal(st.sentinel_errors, 1);
    assert_int_equal(current_port(c), ts_server_port(g_p1));
    aredis_client_free(c);
    ts_fsent_stop(g);
    close(l1);
}

/* A +switch-master heard from the watched sentinel while the lookup waits
 * for another one, which has not heard of the failover and names the old
 * primary: the client goes to the primary announced. */
static void test_switch_during_lookup(void **state) {
    (void)state;
    ts_fsent *a = ts_fsent_start(NULL), *b = ts_fsent_start(NULL);
    ts_fsent_set_master_port(a, ts_server_port(g_p1));
    ts_fsent_set_silent(a, 1); /* watched, but it answers no lookup */
    ts_fsent_set_master_port(b, ts_server_port(g_p1));
    ts_fsent_set_delay(b, 400); /* answers the old primary, late */
    char aa[32], ab[32];
    const char *list[] = {addr_of(aa, sizeof aa, ts_fsent_port(a)),
                          addr_of(ab, sizeof ab, ts_fsent_port(b))};
    aredis_sentinel_options so = sopts(list, 2);
    so.sentinel_timeout_ms = 700;
    so.node.connect_timeout_ms = 5000;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    /* The watch subscribes on a; the lookup gives a up, asks b. */
    assert_true(ts_wait_until(g_loop, has_subscriber, a, 3000));
    assert_true(ts_wait_until(g_loop, was_asked, b, 3000));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CONNECTING);
    char payload[128];
    snprintf(payload, sizeof payload, "mymaster 127.0.0.1 %d 127.0.0.1 %d", ts_server_port(g_p1),
             ts_server_port(g_p2));
    assert_int_equal(ts_fsent_publish(a, payload), 1);
    char why[512];
    aredis_err e = ts_await_ready(c, why, sizeof why);
    if (e != AREDIS_ERR_OK) fail_msg("not ready: %s: %s", aredis_err_name(e), why);
    if (current_port(c) != ts_server_port(g_p2))
        fail_msg("the switch to %d was dropped: the client is on %d", ts_server_port(g_p2),
                 current_port(c));
    assert_master(c);
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.switches, 1);
    assert_int_equal(st.relocations, 1);
    aredis_client_free(c);
    ts_fsent_stop(a);
    ts_fsent_stop(b);
}

/* node.protocol 2: the watch's subscription has a connection of its own,
 * which must connect; when only that one is lost, the watch ends (its other
 * connection closed too) and moves to the next sentinel. */
static void test_resp2_watch(void **state) {
    (void)state;
    ts_fsent *a = ts_fsent_start(NULL), *b = ts_fsent_start(NULL);
    ts_fsent_set_master_port(a, ts_server_port(g_p1));
    ts_fsent_set_master_port(b, ts_server_port(g_p1));
    char aa[32], ab[32];
    const char *list[] = {addr_of(aa, sizeof aa, ts_fsent_port(a)),
                          addr_of(ab, sizeof ab, ts_fsent_port(b))};
    aredis_sentinel_options so = sopts(list, 2);
    so.node.protocol = 2;
    events ev = {0};
    so.node.on_disconnect = ev_disconnect;
    so.node.cb_data = &ev;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_protocol(c), 2);
    if (!ts_wait_until(g_loop, watching, c, 3000)) fail_msg("the RESP2 watch was never made");
    assert_int_equal(ts_fsent_subscribers(a), 1);
    assert_int_equal(ts_fsent_kill_subscribers(a), 1);
    assert_true(ts_wait_until(g_loop, watched_twice, c, 3000));
    assert_int_equal(ts_fsent_subscribers(b), 1);
    assert_true(ts_wait_until(g_loop, no_connection, a, 3000)); /* the watch left a whole */
    assert_int_equal(stats(c).watch_connects, 2);
    /* The data connection was not touched. */
    assert_int_equal(ev.disconnects, 0);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    aredis_client_free(c);
    ts_fsent_stop(a);
    ts_fsent_stop(b);
}

/* Messages that are not "<name> <ip> <port> <ip> <port>" with ports in
 * 1..65535 are not acted on; nor are answers whose port is not one. */
static void test_malformed(void **state) {
    (void)state;
    ts_fsent *a = ts_fsent_start(NULL);
    ts_fsent_set_master_port(a, ts_server_port(g_p1));
    char aa[32];
    const char *list[] = {addr_of(aa, sizeof aa, ts_fsent_port(a))};
    aredis_sentinel_options so = sopts(list, 1);
    events ev = {0};
    so.node.on_disconnect = ev_disconnect;
    so.node.cb_data = &ev;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    assert_true(ts_wait_until(g_loop, watching, c, 3000));
    int p1 = ts_server_port(g_p1);
    /* "mymaster 127.0.0.1 <p1> " and each of these: */
    const char *bad[] = {
        "127.0.0.1 0",      "127.0.0.1 99999", "127.0.0.1 -5",    "127.0.0.1 6379junk",
        "127.0.0.1 6379 x", "127.0.0.1",       "127.0.0.1 +6379",
    };
    char payload[160];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(payload, sizeof payload, "mymaster 127.0.0.1 %d %s", p1, bad[i]);
        assert_int_equal(ts_fsent_publish(a, payload), 1);
    }
    /* Then a good one (a switch to where it is): once it is counted, every
     * message before it has been read. */
    snprintf(payload, sizeof payload, "mymaster 127.0.0.1 1 127.0.0.1 %d", p1);
    assert_int_equal(ts_fsent_publish(a, payload), 1);
    assert_true(ts_wait_until(g_loop, one_switch, c, 3000));
    aredis_loop_run_for(g_loop, 50);
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.relocations, 0);
    assert_int_equal(ev.disconnects, 0);
    assert_int_equal(st.switches, 1);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    aredis_client_free(c);

    /* A sentinel answering a port that is none: no address. */
    char p1junk[32];
    snprintf(p1junk, sizeof p1junk, "%djunk", p1);
    const char *ports[] = {p1junk, "0", "99999", "-5", ""};
    for (size_t i = 0; i < sizeof ports / sizeof *ports; i++) {
        ts_fsent_set_master(a, "127.0.0.1", ports[i]);
        so = sopts(list, 1);
        so.watch = 0;
        so.node.reconnect = 0;
        c = sclient(&so);
        assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
        char why[512];
        aredis_err e = ts_await_ready(c, why, sizeof why);
        if (e != AREDIS_ERR_IO)
            fail_msg("port '%s' answered: %s: %s", ports[i], aredis_err_name(e), why);
        assert_has(why, "an address with no usable port");
        aredis_client_free(c);
    }
    ts_fsent_stop(a);
}

/* Blocks the loop (a callback that takes long): the timers due meanwhile
 * all fire on the next turn, in the order they were due. */
static void stall(void *arg) { usleep((useconds_t)(uintptr_t)arg * 1000u); }

/* The connect deadline passes while a silent sentinel is asked, and the
 * sentinel connection's own timer (due a little earlier) is the one the
 * loop runs first: still a TIMEOUT worded as the client's own, and counted
 * as a failed lookup and a sentinel that did not answer. */
static void test_deadline_cut(void **state) {
    (void)state;
    int port;
    int lfd = ts_silent_listener(&port);
    char silent[32];
    const char *list[] = {addr_of(silent, sizeof silent, port)};
    aredis_sentinel_options so = sopts(list, 1);
    so.watch = 0;
    so.sentinel_timeout_ms = 250;
    so.node.connect_timeout_ms = 300;
    so.node.reconnect = 0;
    aredis_client *c = sclient(&so);
    aredis_timer *t = aredis_timer_new(g_loop, stall, (void *)(uintptr_t)300);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    aredis_timer_start(t, 100, 0); /* asleep from 100 to 400 ms */
    char why[512], want[160];
    aredis_err e = ts_await_ready(c, why, sizeof why);
    if (e != AREDIS_ERR_TIMEOUT) fail_msg("%s: %s", aredis_err_name(e), why);
    snprintf(want, sizeof want,
             "connect timed out locating primary of 'mymaster' (via sentinels): %s (no answer "
             "yet)",
             silent);
    assert_has(why, want);
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.lookup_failures, 1);
    assert_int_equal(st.sentinel_errors, 1);
    aredis_timer_free(t);
    aredis_client_free(c);
    close(lfd);
}

/* node.tls without a tls_context: one is built by
 * aredis_sentinel_client_new(), for every connection (a file that cannot
 * be read fails it there, not at each connect). */
static void test_tls_context_built_once(void **state) {
    (void)state;
    const char *list[] = {"127.0.0.1:26379"};
    aredis_sentinel_options so = sopts(list, 1);
    so.node.tls = 1;
    so.node.tls_ca_file = "/nonexistent/aredis-test-ca.crt";
    assert_null(aredis_sentinel_client_new(g_loop, &so));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_TLS);
    /* The system store: it loads, and the client is made. */
    so.node.tls_ca_file = NULL;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    aredis_client_free(c);
}

static int group_setup(void **state) {
    (void)state;
    g_p1 = ts_server_start_default();
    g_p2 = ts_server_start_default();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    ts_server_stop(g_p1);
    ts_server_stop(g_p2);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_silent_sentinels_go_last),
        TS_LOOP_CASE(test_zero_timeout_shares_deadline),
        TS_LOOP_CASE(test_switch_during_lookup),
        TS_LOOP_CASE(test_resp2_watch),
        TS_LOOP_CASE(test_malformed),
        TS_LOOP_CASE(test_deadline_cut),
        TS_LOOP_CASE(test_tls_context_built_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
