/* labels: cluster */
/*
 * The Sentinel client (aredis/sentinel.h) against a real primary, replica
 * and three sentinels (tests/support/sentinel.h), and against a fake
 * sentinel where a real one cannot be made to lie:
 *   - it connects where the sentinels name the primary (ROLE master there),
 *     commands issued before the connect go out once it is made, and the
 *     +switch-master watch is made;
 *   - a dead first sentinel is skipped, and the one that answered is asked
 *     first next time; a silent one is given up after sentinel_timeout_ms;
 *   - no sentinel answering, and a master name no sentinel knows: the
 *     attempt fails with a detail naming each sentinel and what it said,
 *     and the reconnect policy (attempts, callbacks) runs as for a refused
 *     connect; the connect deadline passing while a sentinel is asked: a
 *     TIMEOUT naming it, counted as a failed lookup;
 *   - role REPLICA connects to the replica;
 *   - ROLE is verified: a fake sentinel naming the replica as the primary
 *     (and the primary as a replica) fails the attempt, transiently;
 *   - a RESP2 subscription (its own connection) finds the primary through
 *     the sentinels too;
 *   - close and free while the sentinels are being asked, and free from
 *     inside on_error: every callback once, CANCELLED, and the sentinel
 *     connections closed;
 *   - the watch, dropped by its sentinel, moves to the next one;
 *   - the READONLY and ROLE handshake steps (client/feature.h) on a plain
 *     client; invalid options refused with a reason.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/feature.h"
#include "fake_server.h"
#include "sentinel.h"
#include "ts.h"

#define g_loop ts_case_loop()

static ts_sentinel *g_ts;
static char g_addr[3][32];
static const char *g_list[3];

/* ---- Helpers ------------------------------------------------------------- */

typedef struct events {
    size_t connects, errors, reconnects, disconnects;
    char last_error[256], last_disconnect[256];
} events;

static void ev_connect(aredis_client *c, void *data) {
    (void)c;
    ((events *)data)->connects++;
}
static void ev_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    events *e = data;
    e->errors++;
    snprintf(e->last_error, sizeof e->last_error, "%s", err->detail);
}
static void ev_reconnect(aredis_client *c, unsigned attempt, uint32_t delay_ms, void *data) {
    (void)c;
    (void)attempt;
    (void)delay_ms;
    ((events *)data)->reconnects++;
}
static void ev_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    events *e = data;
    e->disconnects++;
    snprintf(e->last_disconnect, sizeof e->last_disconnect, "%s", err->detail);
}

static aredis_sentinel_options sopts(const char *const *list, size_t n, events *ev) {
    aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;
    so.sentinels = list;
    so.nsentinels = n;
    so.master_name = TS_SENTINEL_MASTER;
    so.node.reconnect_delay_ms = 20;
    so.node.max_reconnect_delay_ms = 200;
    if (ev) {
        so.node.on_connect = ev_connect;
        so.node.on_error = ev_error;
        so.node.on_reconnect_attempt = ev_reconnect;
        so.node.on_disconnect = ev_disconnect;
        so.node.cb_data = ev;
    }
    return so;
}

static aredis_client *sclient(const aredis_sentinel_options *so) {
    aredis_client *c = aredis_sentinel_client_new(g_loop, so);
    if (!c) fail_msg("aredis_sentinel_client_new: %s", aredis_call_error()->detail);
    return c;
}

static void ready(aredis_client *c) {
    char why[512];
    aredis_err e = ts_await_ready(c, why, sizeof why);
    if (e != AREDIS_ERR_OK) fail_msg("not ready: %s: %s", aredis_err_name(e), why);
}

static int current_port(const aredis_client *c) {
    char host[64];
    int port = -1;
    assert_int_equal(aredis_sentinel_current(c, host, sizeof host, &port), AREDIS_ERR_OK);
    assert_string_equal(host, "127.0.0.1");
    return port;
}

static aredis_sentinel_stats stats(const aredis_client *c) {
    aredis_sentinel_stats st;
    assert_int_equal(aredis_sentinel_get_stats(c, &st), AREDIS_ERR_OK);
    return st;
}

/* The role the server behind c reports (ROLE's first element). */
static void assert_role(aredis_client *c, const char *want) {
    aredis_future *f = ts_cmd(c, "ROLE");
    const aredis_reply *r = aredis_future_reply(f);
    if (!r || r->type != AREDIS_REPLY_ARRAY || !r->elements || !r->element[0]->str)
        fail_msg("ROLE: %s", aredis_future_error(f) ? aredis_future_error(f)->detail : "?");
    assert_string_equal(r->element[0]->str, want);
    aredis_future_release(f);
}

static void assert_has(const char *text, const char *needle) {
    if (!strstr(text, needle)) fail_msg("[%s] lacks [%s]", text, needle);
}

static int watching(const void *arg) {
    aredis_sentinel_stats st;
    aredis_sentinel_get_stats(arg, &st);
    return st.watch_connects >= 1;
}

static int is_idle(const void *arg) { return aredis_client_state(arg) == AREDIS_STATE_IDLE; }

static int connects_reach_2(const void *arg) { return ((const events *)arg)->connects >= 2; }

static void fmt_dead(char *buf, size_t len) { snprintf(buf, len, "127.0.0.1:%d", ts_dead_port()); }

/* ---- Cases ---------------------------------------------------------------- */

static void test_connects_to_primary(void **state) {
    (void)state;
    aredis_sentinel_options so = sopts(g_list, 3, NULL);
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_sentinel_current(c, NULL, 0, NULL), AREDIS_ERR_NOT_CONNECTED);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    /* Issued before the sentinels have answered: it waits, then goes to
     * the primary. */
    aredis_future *set = aredis_future_command(c, "SET %s %s", "sent:k", "v1");
    ready(c);
    assert_int_equal(aredis_await(set), AREDIS_ERR_OK);
    aredis_future_release(set);
    assert_int_equal(current_port(c), ts_sentinel_primary_port(g_ts));
    assert_role(c, "master");
    ts_cmd_bytes(c, "v1", 2, "GET %s", "sent:k");
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.lookup_failures, 0);
    assert_int_equal(st.sentinel_errors, 0);
    /* The +switch-master watch is made. */
    assert_true(ts_wait_until(g_loop, watching, c, 10000));
    /* Not a sentinel client: refused, with a reason. */
    aredis_options po = AREDIS_OPTIONS_INIT;
    aredis_client *plain = aredis_client_new(g_loop, &po);
    assert_int_equal(aredis_sentinel_current(plain, NULL, 0, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_sentinel_get_stats(plain, &st), AREDIS_ERR_INVALID);
    aredis_client_free(plain);
    aredis_client_free(c);
}

static void test_dead_first_sentinel(void **state) {
    (void)state;
    char dead[32];
    fmt_dead(dead, sizeof dead);
    const char *list[] = {dead, g_list[0], g_list[1], g_list[2]};
    events ev = {0};
    aredis_sentinel_options so = sopts(list, 4, &ev);
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ready(c);
    assert_int_equal(current_port(c), ts_sentinel_primary_port(g_ts));
    assert_int_equal(stats(c).sentinel_errors, 1);
    /* Drop the connection from the server's side: the reconnect asks the
     * sentinels again, the one that answered first. */
    long long id = ts_client_id(c);
    aredis_options po = AREDIS_OPTIONS_INIT;
    po.port = ts_sentinel_primary_port(g_ts);
    aredis_client *admin = ts_connect(g_loop, &po);
    aredis_future *k = aredis_future_command(admin, "CLIENT KILL ID %lld", id);
    assert_int_equal(aredis_await(k), AREDIS_ERR_OK);
    assert_int_equal(aredis_future_reply(k)->integer, 1);
    aredis_future_release(k);
    assert_true(ts_wait_until(g_loop, connects_reach_2, &ev, 10000));
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.lookups, 2);
    assert_int_equal(st.sentinel_errors, 1); /* the dead one was not asked again */
    assert_int_equal(st.moves, 0);
    assert_int_equal(current_port(c), ts_sentinel_primary_port(g_ts));
    assert_role(c, "master");
    aredis_client_free(admin);
    aredis_client_free(c);
}

static void test_silent_first_sentinel(void **state) {
    (void)state;
    int port;
    int lfd = ts_silent_listener(&port);
    char silent[32];
    snprintf(silent, sizeof silent, "127.0.0.1:%d", port);
    const char *list[] = {silent, g_list[1]};
    aredis_sentinel_options so = sopts(list, 2, NULL);
    so.sentinel_timeout_ms = 200;
    aredis_client *c = sclient(&so);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ready(c);
    ts_log("connected past a silent sentinel in %llu ms", (unsigned long long)(ts_now_ms() - t0));
    assert_int_equal(current_port(c), ts_sentinel_primary_port(g_ts));
    assert_int_equal(stats(c).sentinel_errors, 1);
    aredis_client_free(c);
    close(lfd);
}

/* The attempt's connect deadline passes while a sentinel is being asked:
 * a TIMEOUT naming what was being tried. */
static void test_deadline_while_locating(void **state) {
    (void)state;
    int port;
    int lfd = ts_silent_listener(&port);
    char silent[32];
    snprintf(silent, sizeof silent, "127.0.0.1:%d", port);
    const char *list[] = {silent};
    aredis_sentinel_options so = sopts(list, 1, NULL);
    so.sentinel_timeout_ms = 10000;
    so.node.connect_timeout_ms = 300;
    so.node.reconnect = 0;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    char why[512], want[160];
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_TIMEOUT);
    snprintf(want, sizeof want,
             "connect timed out locating primary of 'mymaster' (via sentinels): %s (no answer "
             "yet)",
             silent);
    assert_has(why, want);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    /* A failed lookup, and a sentinel that did not answer. */
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.lookup_failures, 1);
    assert_int_equal(st.sentinel_errors, 1);
    aredis_client_free(c);
    close(lfd);
}

static void test_no_sentinel_answers(void **state) {
    (void)state;
    char d1[32], d2[32];
    fmt_dead(d1, sizeof d1);
    fmt_dead(d2, sizeof d2);
    const char *list[] = {d1, d2};
    events ev = {0};
    aredis_sentinel_options so = sopts(list, 2, &ev);
    so.node.max_reconnect_attempts = 2;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    char why[512];
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_IO);
    assert_has(why, "no sentinel gave the address of the primary of 'mymaster'");
    assert_has(why, d1);
    assert_has(why, d2);
    assert_has(why, "refused");
    /* The policy runs: two more attempts, then it gives up. */
    assert_true(ts_wait_until(g_loop, is_idle, c, 10000));
    assert_int_equal(ev.reconnects, 2);
    assert_int_equal(ev.errors, 3);
    assert_int_equal(ev.connects, 0);
    assert_has(ev.last_error, "gave up after 2 reconnect attempt(s)");
    assert_has(ev.last_error, "no sentinel gave the address");
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.lookups, 3);
    assert_int_equal(st.lookup_failures, 3);
    assert_int_equal(st.sentinel_errors, 6);
    assert_int_equal(aredis_client_last_error(c)->code, AREDIS_ERR_IO);
    aredis_client_free(c);
}

static void test_unknown_master_name(void **state) {
    (void)state;
    events ev = {0};
    aredis_sentinel_options so = sopts(g_list, 3, &ev);
    so.master_name = "nosuchmaster";
    so.node.reconnect = 0;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    char why[512];
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_IO);
    assert_has(why, "'nosuchmaster'");
    assert_has(why, "does not know 'nosuchmaster'");
    for (int i = 0; i < 3; i++)
        assert_has(why, g_addr[i]);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    assert_int_equal(ev.errors, 1);
    assert_int_equal(ev.reconnects, 0);
    assert_int_equal(stats(c).sentinel_errors, 3);
    aredis_client_free(c);
}

static void test_replica_role(void **state) {
    (void)state;
    aredis_sentinel_options so = sopts(g_list, 3, NULL);
    so.role = AREDIS_SENTINEL_REPLICA;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ready(c);
    assert_int_equal(current_port(c), ts_sentinel_replica_port(g_ts));
    assert_role(c, "slave");
    /* A replica: reads work, writes are refused by the server. */
    aredis_future *f = ts_cmd(c, "SET %s %s", "sent:r", "x");
    assert_non_null(aredis_future_error(f));
    assert_string_equal(aredis_future_error(f)->prefix, "READONLY");
    aredis_future_release(f);
    aredis_future_release(ts_cmd(c, "GET %s", "sent:r"));
    aredis_client_free(c);
}

/* A fake sentinel whose every connection gets the handshake then `answer`. */
static ts_fake *fake_sentinel(const char *answer) {
    ts_fake *f = ts_fake_new();
    ts_fake_hello3(f);
    ts_fake_reply(f, answer);
    ts_fake_wait_eof(f, 10000);
    ts_fake_start(f);
    return f;
}

static void test_role_verified(void **state) {
    (void)state;
    /* It names the replica as the primary. */
    char answer[128];
    snprintf(answer, sizeof answer, "*2\r\n$9\r\n127.0.0.1\r\n$%zu\r\n%d\r\n",
             (size_t)snprintf(NULL, 0, "%d", ts_sentinel_replica_port(g_ts)),
             ts_sentinel_replica_port(g_ts));
    ts_fake *f = fake_sentinel(answer);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ts_fake_port(f));
    const char *list[] = {addr};
    events ev = {0};
    aredis_sentinel_options so = sopts(list, 1, &ev);
    so.watch = 0;
    so.node.max_reconnect_attempts = 1;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    char why[512], want[128];
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_HANDSHAKE);
    snprintf(want, sizeof want, "ROLE: 127.0.0.1:%d is a replica, not the primary wanted",
             ts_sentinel_replica_port(g_ts));
    assert_has(why, want);
    /* Transient: the policy tried again (and gave up after its one). */
    assert_true(ts_wait_until(g_loop, is_idle, c, 10000));
    assert_int_equal(ev.reconnects, 1);
    assert_int_equal(ev.errors, 2);
    assert_has(ev.last_error, want);
    assert_int_equal(stats(c).lookups, 2);
    aredis_client_free(c);
    ts_fake_stop(f);

    /* It names the primary as a healthy replica. */
    char rep[512];
    char port[16];
    snprintf(port, sizeof port, "%d", ts_sentinel_primary_port(g_ts));
    snprintf(rep, sizeof rep,
             "*1\r\n*8\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n$%zu\r\n%s\r\n"
             "$5\r\nflags\r\n$5\r\nslave\r\n$18\r\nmaster-link-status\r\n$2\r\nok\r\n",
             strlen(port), port);
    f = fake_sentinel(rep);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ts_fake_port(f));
    so.role = AREDIS_SENTINEL_REPLICA;
    so.node.reconnect = 0;
    c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_HANDSHAKE);
    snprintf(want, sizeof want, "ROLE: 127.0.0.1:%s is a master, not the replica wanted", port);
    assert_has(why, want);
    aredis_client_free(c);
    ts_fake_stop(f);
}

static void on_msg(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    ts_result *r = data;
    snprintf(r->text, sizeof r->text, "%.*s", (int)m->payload_len, m->payload);
    r->done = 1;
}

static void test_resp2_subscription(void **state) {
    (void)state;
    aredis_sentinel_options so = sopts(g_list, 3, NULL);
    so.node.protocol = 2;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ready(c);
    assert_int_equal(aredis_client_protocol(c), 2);
    ts_result got = {0};
    aredis_sub_options sub = AREDIS_SUB_OPTIONS_INIT;
    sub.on_message = on_msg;
    sub.data = &got;
    aredis_subscription *s = aredis_subscription_new(c, &sub);
    assert_non_null(s);
    const char *ch[] = {"sent:news"};
    aredis_future *f = aredis_subscription_subscribe_f(s, AREDIS_SUB_CHANNEL, 1, ch, NULL);
    if (aredis_await(f) != AREDIS_ERR_OK) fail_msg("%s", aredis_future_error(f)->detail);
    aredis_future_release(f);
    /* Published on the primary: the subscription's own connection found
     * it through the sentinels too. */
    aredis_options po = AREDIS_OPTIONS_INIT;
    po.port = ts_sentinel_primary_port(g_ts);
    aredis_client *pub = ts_connect(g_loop, &po);
    aredis_future *p = ts_cmd(pub, "PUBLISH sent:news hello");
    assert_int_equal(aredis_future_reply(p)->integer, 1);
    aredis_future_release(p);
    assert_true(ts_wait(g_loop, &got.done, 5000));
    assert_string_equal(got.text, "hello");
    /* The client itself still runs commands (RESP2: the subscription is
     * elsewhere). */
    assert_role(c, "master");
    assert_true(stats(c).lookups >= 2); /* the client's and the subscriber's */
    aredis_subscription_free(s);
    aredis_client_free(pub);
    aredis_client_free(c);
}

/*
 * A sentinel that accepts and never answers (a silent listener the test
 * accepts on itself, so that it sees every connection and its end).
 */
typedef struct mute {
    int lfd;
    int fds[8];
    int n;
} mute;

static void mute_accept(mute *m) {
    for (;;) {
        int fd = accept(m->lfd, NULL, NULL);
        if (fd < 0) return;
        assert_true(m->n < 8);
        m->fds[m->n++] = fd;
    }
}

/* The watch's connection and the lookup's are both there. */
static int mute_two(const void *arg) {
    mute *m = (mute *)arg;
    mute_accept(m);
    return m->n >= 2;
}

/* Every connection accepted has been closed by the client. */
static int mute_all_closed(const void *arg) {
    mute *m = (mute *)arg;
    mute_accept(m);
    for (int i = 0; i < m->n; i++) {
        char b[64];
        ssize_t r = recv(m->fds[i], b, sizeof b, MSG_DONTWAIT);
        while (r > 0) /* the handshake it sent: drop it */
            r = recv(m->fds[i], b, sizeof b, MSG_DONTWAIT);
        if (r != 0) return 0;
    }
    return 1;
}

static void while_locating(int do_free) {
    mute m = {0};
    int port;
    m.lfd = ts_silent_listener(&port);
    fcntl(m.lfd, F_SETFL, fcntl(m.lfd, F_GETFL) | O_NONBLOCK);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    const char *list[] = {addr};
    events ev = {0};
    aredis_sentinel_options so = sopts(list, 1, &ev);
    so.sentinel_timeout_ms = 15000;
    so.node.connect_timeout_ms = 20000;
    so.node.wait_for_first_connect = 1;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ts_result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET %s", "k"), AREDIS_ERR_OK);
    assert_true(ts_wait_until(g_loop, mute_two, &m, 5000));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CONNECTING);
    assert_int_equal(r.calls, 0);
    if (do_free) {
        aredis_client_free(c);
    } else {
        aredis_client_close(c);
        assert_int_equal(aredis_client_state(c), AREDIS_STATE_CLOSED);
    }
    /* Every callback once, at once, CANCELLED; nothing of a connection that
     * never was. */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, AREDIS_ERR_CANCELLED);
    assert_int_equal(ev.disconnects, 0);
    assert_int_equal(ev.reconnects, 0);
    /* The sentinel connections (the lookup's and the watch's) are closed,
     * and no other is made. */
    assert_true(ts_wait_until(g_loop, mute_all_closed, &m, 5000));
    aredis_loop_run_for(g_loop, 100);
    mute_accept(&m);
    assert_int_equal(m.n, 2);
    assert_int_equal(r.calls, 1);
    if (!do_free) aredis_client_free(c);
    for (int i = 0; i < m.n; i++)
        close(m.fds[i]);
    close(m.lfd);
}

static void test_close_while_locating(void **state) {
    (void)state;
    while_locating(0);
}

static void test_free_while_locating(void **state) {
    (void)state;
    while_locating(1);
}

static int watched_twice(const void *arg) {
    aredis_sentinel_stats st;
    aredis_sentinel_get_stats(arg, &st);
    return st.watch_connects >= 2;
}

/* The watch's sentinel drops it (right after subscribing, here a fake):
 * it moves to the next sentinel, a real one, and subscribes there. */
static void test_watch_moves_on(void **state) {
    (void)state;
    ts_fake *f = ts_fake_new();
    /* The watch connects first (at once), the lookup on the next turn. */
    ts_fake_hello3(f);
    ts_fake_reply(f, ">3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
    ts_fake_read_cmd(f, 1);
    ts_fake_close(f);
    ts_fake_next_conn(f);
    ts_fake_hello3(f);
    ts_fake_reply(f, "_\r\n"); /* the lookup: "no such master" */
    ts_fake_wait_eof(f, 10000);
    ts_fake_start(f);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ts_fake_port(f));
    const char *list[] = {addr, g_list[0]};
    aredis_sentinel_options so = sopts(list, 2, NULL);
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ready(c);
    assert_int_equal(current_port(c), ts_sentinel_primary_port(g_ts));
    assert_true(ts_wait_until(g_loop, watched_twice, c, 10000));
    aredis_sentinel_stats st = stats(c);
    assert_int_equal(st.watch_connects, 2);
    assert_int_equal(st.sentinel_errors, 1);
    /* The second subscription is on the real sentinel. */
    aredis_reply *r = ts_node_cmd(ts_sentinel_port(g_ts, 0), "CLIENT", "LIST", (char *)NULL);
    assert_non_null(r);
    if (!r->str || !strstr(r->str, " sub=1 ")) fail_msg("no subscriber on sentinel 0: %s", r->str);
    aredis_reply_free(r);
    aredis_client_free(c);
    ts_fake_stop(f);
}

static void free_on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)err;
    aredis_client_free(c);
    (*(int *)data)++;
}

/* Freed from inside its on_error, run by the lookup's failure (itself
 * inside the last sentinel connection's callback). */
static void test_free_in_callback(void **state) {
    (void)state;
    char d1[32];
    fmt_dead(d1, sizeof d1);
    const char *list[] = {d1};
    int freed = 0;
    aredis_sentinel_options so = sopts(list, 1, NULL);
    so.node.on_error = free_on_error;
    so.node.cb_data = &freed;
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ts_result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "GET %s", "k"), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &freed, 5000));
    assert_int_equal(freed, 1);
    assert_int_equal(r.calls, 1);
    assert_int_not_equal(r.code, AREDIS_ERR_OK);
    /* Nothing of it runs any more: the loop goes idle. */
    aredis_loop_run_for(g_loop, 50);
    assert_int_equal(freed, 1);
}

/* The handshake steps themselves, on plain clients. */
static void test_handshake_steps(void **state) {
    (void)state;
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_sentinel_primary_port(g_ts);
    o.reconnect = 0;
    /* READONLY: a server without cluster support refuses it. */
    aredis_client *c = aredis_client_new(g_loop, &o);
    aredis__client_set_readonly(c, 1);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    char why[512];
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_HANDSHAKE);
    assert_has(why, "READONLY refused: ERR This instance has cluster support disabled");
    aredis_client_free(c);
    /* ROLE: the primary is a master, not a replica. */
    c = aredis_client_new(g_loop, &o);
    aredis__client_expect_role(c, AREDIS__ROLE_MASTER);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ready(c);
    aredis_client_free(c);
    c = aredis_client_new(g_loop, &o);
    aredis__client_expect_role(c, AREDIS__ROLE_REPLICA);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_HANDSHAKE);
    assert_has(why, "is a master, not the replica wanted");
    aredis_client_free(c);
    /* RESP2 too: ROLE goes in the pipelined tail. */
    o.protocol = 2;
    o.port = ts_sentinel_replica_port(g_ts);
    c = aredis_client_new(g_loop, &o);
    aredis__client_expect_role(c, AREDIS__ROLE_REPLICA);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ready(c);
    aredis_client_free(c);
}

static void expect_invalid(const aredis_sentinel_options *so, const char *why) {
    assert_null(aredis_sentinel_client_new(g_loop, so));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_has(aredis_call_error()->detail, why);
}

static void test_invalid_options(void **state) {
    (void)state;
    const char *bad_port[] = {"127.0.0.1:99999"};
    const char *bad_v6[] = {"[::1:26379"};
    const char *ok[] = {"[::1]:26379"};
    aredis_sentinel_options so = sopts(ok, 0, NULL);
    expect_invalid(&so, "no sentinels");
    so = sopts(bad_port, 1, NULL);
    expect_invalid(&so, "'127.0.0.1:99999' is not host:port");
    so = sopts(bad_v6, 1, NULL);
    expect_invalid(&so, "is not host:port");
    so = sopts(ok, 1, NULL);
    so.master_name = NULL;
    expect_invalid(&so, "no master_name");
    so = sopts(ok, 1, NULL);
    so.role = 7;
    expect_invalid(&so, "role");
    so = sopts(ok, 1, NULL);
    so.node.unix_path = "/tmp/x.sock";
    expect_invalid(&so, "node.unix_path");
    so = sopts(ok, 1, NULL);
    so.sentinel_username = "u";
    expect_invalid(&so, "sentinel_username without sentinel_password");
    so = sopts(ok, 1, NULL);
    so.node.db = -1;
    expect_invalid(&so, "db is negative");
    /* Made but not connected: freeing it does nothing else. */
    so = sopts(ok, 1, NULL);
    aredis_client *c = sclient(&so);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    aredis_client_free(c);
}

static int group_setup(void **state) {
    (void)state;
    g_ts = ts_sentinel_start(3);
    for (int i = 0; i < 3; i++) {
        snprintf(g_addr[i], sizeof g_addr[i], "127.0.0.1:%d", ts_sentinel_port(g_ts, i));
        g_list[i] = g_addr[i];
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    ts_sentinel_stop(g_ts);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_invalid_options),         TS_LOOP_CASE(test_connects_to_primary),
        TS_LOOP_CASE(test_dead_first_sentinel),     TS_LOOP_CASE(test_silent_first_sentinel),
        TS_LOOP_CASE(test_deadline_while_locating), TS_LOOP_CASE(test_no_sentinel_answers),
        TS_LOOP_CASE(test_unknown_master_name),     TS_LOOP_CASE(test_replica_role),
        TS_LOOP_CASE(test_role_verified),           TS_LOOP_CASE(test_resp2_subscription),
        TS_LOOP_CASE(test_close_while_locating),    TS_LOOP_CASE(test_free_while_locating),
        TS_LOOP_CASE(test_free_in_callback),        TS_LOOP_CASE(test_watch_moves_on),
        TS_LOOP_CASE(test_handshake_steps),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
