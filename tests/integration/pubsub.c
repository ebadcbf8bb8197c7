/*
 * Subscriptions (aredis/pubsub.h) against a real server, in RESP3 and then
 * RESP2: channel, pattern and shard messages to a handler and to next()
 * futures; confirmations matched to their calls while ordinary commands
 * run on the same RESP3 connection; RESP2's dedicated connection (AUTO)
 * and a shared one refusing ordinary commands with a reason; unsubscribe
 * stops delivery (also for one of two subscriptions on a channel);
 * 10,000 messages in order; the bound on buffered messages and its event;
 * binary payloads; bad arguments; freeing from a handler; a NOPERM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"
#include "ts.h"

static ts_server *g_srv;
static aredis_loop *g_loop;
static aredis_client *g_pub; /* publishes (RESP2: another user) */
static int g_proto;          /* 3, then 2 */

static int setup(void **state) {
    (void)state;
    static const char *const conf[] = {"user limited on nopass ~* &allowed* +@all", NULL};
    g_srv = ts_server_start(conf, 0);
    g_loop = aredis_loop_new();
    aredis_options o = ts_options(g_srv);
    o.protocol = 2;
    g_pub = ts_connect(g_loop, &o);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_client_free(g_pub);
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

static aredis_client *client(void) {
    aredis_options o = ts_options(g_srv);
    o.protocol = g_proto;
    aredis_client *c = ts_connect(g_loop, &o);
    assert_int_equal(aredis_client_protocol(c), g_proto);
    return c;
}

/* PUBLISH (or SPUBLISH) and wait for its reply: the receivers count. */
static long long publish(const char *cmd, const char *ch, const void *msg, size_t len) {
    aredis_future *f = ts_cmd(g_pub, "%s %s %b", cmd, ch, msg, len);
    assert_null(aredis_future_error(f));
    long long n = aredis_future_reply(f)->integer;
    aredis_future_release(f);
    return n;
}

/* Subscribe and wait for the confirmation. */
static void sub(aredis_subscription *s, aredis_sub_kind kind, const char *a, const char *b) {
    const char *names[2] = {a, b};
    aredis_future *f = aredis_subscription_subscribe_f(s, kind, b ? 2 : 1, names, NULL);
    assert_non_null(f);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
}

static void unsub(aredis_subscription *s, aredis_sub_kind kind, const char *a) {
    aredis_future *f = aredis_subscription_unsubscribe_f(s, kind, 1, &a, NULL);
    assert_non_null(f);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
}

/* ---- A handler that records --------------------------------------------- */

typedef struct got {
    size_t n;
    aredis_sub_kind kind[64];
    char channel[64][32];
    char pattern[64][32];
    char payload[64][64];
    size_t payload_len[64];
} got;

static void on_msg(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    got *g = data;
    if (g->n >= 64) return;
    g->kind[g->n] = m->kind;
    snprintf(g->channel[g->n], 32, "%.*s", (int)m->channel_len, m->channel);
    snprintf(g->pattern[g->n], 32, "%.*s", m->pattern ? (int)m->pattern_len : 0,
             m->pattern ? m->pattern : "");
    memcpy(g->payload[g->n], m->payload, m->payload_len < 64 ? m->payload_len : 64);
    g->payload_len[g->n] = m->payload_len;
    g->n++;
}

static aredis_subscription *handler_sub(aredis_client *c, got *g) {
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = on_msg;
    so.data = g;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    assert_non_null(s);
    return s;
}

/* ---- Tests --------------------------------------------------------------- */

/* Channel and pattern messages reach the handler with their fields. */
static void test_channel_and_pattern(void **state) {
    (void)state;
    aredis_client *c = client();
    got g = {0};
    aredis_subscription *s = handler_sub(c, &g);
    sub(s, AREDIS_SUB_CHANNEL, "news", "sport");
    sub(s, AREDIS_SUB_PATTERN, "log.*", NULL);
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_CHANNEL), 2);
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_PATTERN), 1);
    assert_int_equal(publish("PUBLISH", "news", "hello", 5), 1);
    assert_int_equal(publish("PUBLISH", "log.disk", "full", 4), 1);
    assert_int_equal(publish("PUBLISH", "other", "x", 1), 0);
    assert_true(ts_wait_count(g_loop, &g.n, 2, 5000));
    assert_int_equal(g.kind[0], AREDIS_SUB_CHANNEL);
    assert_string_equal(g.channel[0], "news");
    assert_string_equal(g.pattern[0], "");
    assert_memory_equal(g.payload[0], "hello", 5);
    assert_int_equal(g.kind[1], AREDIS_SUB_PATTERN);
    assert_string_equal(g.channel[1], "log.disk");
    assert_string_equal(g.pattern[1], "log.*");
    assert_memory_equal(g.payload[1], "full", 4);
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* SSUBSCRIBE (Redis 7): smessage. */
static void test_shard(void **state) {
    (void)state;
    ts_require(TS_FEATURE_SPUBLISH);
    aredis_client *c = client();
    got g = {0};
    aredis_subscription *s = handler_sub(c, &g);
    sub(s, AREDIS_SUB_SHARD, "orders", NULL);
    assert_int_equal(publish("SPUBLISH", "orders", "o1", 2), 1);
    assert_true(ts_wait_count(g_loop, &g.n, 1, 5000));
    assert_int_equal(g.kind[0], AREDIS_SUB_SHARD);
    assert_string_equal(g.channel[0], "orders");
    unsub(s, AREDIS_SUB_SHARD, "orders");
    assert_int_equal(publish("SPUBLISH", "orders", "o2", 2), 0);
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* RESP3: commands run on the subscribed connection, their replies matched
 * to them while messages stream in; RESP2 (AUTO): the subscription has a
 * connection of its own and the client's commands are unaffected. */
static void test_commands_while_subscribed(void **state) {
    (void)state;
    aredis_client *c = client();
    got g = {0};
    aredis_subscription *s = handler_sub(c, &g);
    sub(s, AREDIS_SUB_CHANNEL, "mixed", NULL);
    enum { N = 40 };
    ts_rec r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        assert_int_equal(aredis_command(c, ts_on_rec, &r[i], "SET mix:%d v%d", i, i),
                         AREDIS_ERR_OK);
        assert_int_equal(aredis_command(g_pub, NULL, NULL, "PUBLISH mixed m%d", i), AREDIS_ERR_OK);
    }
    for (int i = 0; i < N; i++)
        ts_rec_wait(g_loop, &r[i], 5000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].code, AREDIS_ERR_OK);
        ts_assert_status(r[i].r, "OK");
        ts_rec_clear(&r[i]);
    }
    for (int i = 0; i < N; i++) {
        aredis_future *f = ts_cmd(c, "GET mix:%d", i);
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        ts_assert_str(aredis_future_reply(f), want);
        aredis_future_release(f);
    }
    assert_true(ts_wait_count(g_loop, &g.n, N, 5000));
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "m%d", i);
        assert_int_equal(g.payload_len[i], strlen(want));
        assert_memory_equal(g.payload[i], want, strlen(want));
    }
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* RESP2 with a shared connection: ordinary commands are refused with a
 * reason while subscribed, PING works, and after the last unsubscribe the
 * connection is an ordinary one again. RESP3: nothing is refused. */
static void test_shared_resp2_refuses(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.connection = AREDIS_SUB_SHARED;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    assert_non_null(s);
    sub(s, AREDIS_SUB_CHANNEL, "shared", NULL);
    aredis_err e = aredis_command(c, NULL, NULL, "GET k");
    if (g_proto == 2) {
        assert_int_equal(e, AREDIS_ERR_UNSUPPORTED);
        assert_non_null(strstr(aredis_call_error()->detail, "subscribed (RESP2)"));
        aredis_future *f = ts_cmd(c, "PING");
        assert_null(aredis_future_error(f));
        assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_ARRAY); /* ["pong", ""] */
        aredis_future_release(f);
    } else {
        assert_int_equal(e, AREDIS_ERR_OK);
    }
    aredis_future *nx = aredis_subscription_next(s);
    assert_int_equal(publish("PUBLISH", "shared", "p", 1), 1);
    assert_int_equal(aredis_await(nx), AREDIS_ERR_OK);
    aredis_message m;
    assert_int_equal(aredis_message_parse(aredis_future_reply(nx), &m), 0);
    assert_memory_equal(m.payload, "p", 1);
    aredis_future_release(nx);
    unsub(s, AREDIS_SUB_CHANNEL, "shared");
    ts_cmd_ok(c, "SET k v");
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* next(): buffered messages first, then waiting futures, in order. */
static void test_next_futures(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_subscription *s = aredis_subscription_new(c, NULL);
    assert_non_null(s);
    sub(s, AREDIS_SUB_CHANNEL, "nx", NULL);
    assert_int_equal(publish("PUBLISH", "nx", "a", 1), 1);
    assert_int_equal(publish("PUBLISH", "nx", "b", 1), 1);
    aredis_future *f1 = aredis_subscription_next(s);
    aredis_future *f2 = aredis_subscription_next(s);
    aredis_future *f3 = aredis_subscription_next(s);
    assert_int_equal(aredis_await(f2), AREDIS_ERR_OK);
    assert_int_equal(publish("PUBLISH", "nx", "c", 1), 1);
    assert_int_equal(aredis_await(f3), AREDIS_ERR_OK);
    const char *want[] = {"a", "b", "c"};
    aredis_future *fs[] = {f1, f2, f3};
    for (int i = 0; i < 3; i++) {
        aredis_message m;
        assert_true(aredis_future_is_done(fs[i]));
        assert_int_equal(aredis_message_parse(aredis_future_reply(fs[i]), &m), 0);
        assert_int_equal(m.payload_len, 1);
        assert_memory_equal(m.payload, want[i], 1);
        aredis_future_release(fs[i]);
    }
    /* A pending next() fails with CANCELLED when the subscription goes. */
    aredis_future *f4 = aredis_subscription_next(s);
    assert_false(aredis_future_is_done(f4));
    aredis_subscription_free(s);
    assert_true(aredis_future_is_done(f4));
    assert_int_equal(aredis_future_error(f4)->code, AREDIS_ERR_CANCELLED);
    aredis_future_release(f4);
    aredis_client_free(c);
}

/* Unsubscribe stops delivery at once; with two subscriptions on a channel,
 * one leaving does not stop the other's messages. */
static void test_unsubscribe_stops(void **state) {
    (void)state;
    aredis_client *c = client();
    got g1 = {0}, g2 = {0};
    aredis_subscription *s1 = handler_sub(c, &g1);
    aredis_subscription *s2 = handler_sub(c, &g2);
    sub(s1, AREDIS_SUB_CHANNEL, "both", NULL);
    sub(s2, AREDIS_SUB_CHANNEL, "both", NULL);
    assert_int_equal(publish("PUBLISH", "both", "1", 1), 1); /* one connection */
    assert_true(ts_wait_count(g_loop, &g2.n, 1, 5000));
    assert_true(ts_wait_count(g_loop, &g1.n, 1, 5000));
    unsub(s1, AREDIS_SUB_CHANNEL, "both");
    assert_int_equal(aredis_subscription_count(s1, AREDIS_SUB_CHANNEL), 0);
    assert_int_equal(publish("PUBLISH", "both", "2", 1), 1); /* still subscribed for s2 */
    assert_true(ts_wait_count(g_loop, &g2.n, 2, 5000));
    unsub(s2, AREDIS_SUB_CHANNEL, "both");
    assert_int_equal(publish("PUBLISH", "both", "3", 1), 0); /* the server was told */
    /* A marker through another channel: everything before it has arrived. */
    sub(s1, AREDIS_SUB_CHANNEL, "marker", NULL);
    assert_int_equal(publish("PUBLISH", "marker", "m", 1), 1);
    assert_true(ts_wait_count(g_loop, &g1.n, 2, 5000));
    assert_string_equal(g1.channel[1], "marker");
    assert_int_equal(g1.n, 2);
    assert_int_equal(g2.n, 2);
    aredis_subscription_free(s1);
    aredis_subscription_free(s2);
    aredis_client_free(c);
}

/* 10,000 messages arrive in order, none lost. */
typedef struct seq {
    size_t n;
    int bad;
} seq;

static void on_seq(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    seq *q = data;
    char want[32];
    int len = snprintf(want, sizeof want, "%zu", q->n);
    if (m->payload_len != (size_t)len || memcmp(m->payload, want, (size_t)len) != 0) q->bad++;
    q->n++;
}

static void test_ten_thousand_in_order(void **state) {
    (void)state;
    aredis_client *c = client();
    seq q = {0, 0};
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = on_seq;
    so.data = &q;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    sub(s, AREDIS_SUB_CHANNEL, "seq", NULL);
    enum { N = 10000 };
    for (int i = 0; i < N; i++)
        assert_int_equal(aredis_command(g_pub, NULL, NULL, "PUBLISH seq %d", i), AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &q.n, N, 20000));
    assert_int_equal(q.bad, 0);
    assert_int_equal(q.n, N);
    aredis_sub_stats st;
    aredis_subscription_get_stats(s, &st);
    assert_int_equal(st.delivered, N);
    assert_int_equal(st.dropped, 0);
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* Without a handler, at most max_buffered wait; the oldest are dropped and
 * the event says so, once per episode. */
typedef struct evs {
    int overflow, resub, ended, dropped, error;
} evs;

static void on_ev(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                  void *data) {
    (void)s;
    (void)err;
    evs *e = data;
    if (ev == AREDIS_SUB_OVERFLOW) e->overflow++;
    if (ev == AREDIS_SUB_RESUBSCRIBED) e->resub++;
    if (ev == AREDIS_SUB_ENDED) e->ended++;
    if (ev == AREDIS_SUB_DROPPED) e->dropped++;
    if (ev == AREDIS_SUB_ERROR) e->error++;
}

static void test_buffer_bound(void **state) {
    (void)state;
    aredis_client *c = client();
    evs e = {0};
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.max_buffered = 5;
    so.on_event = on_ev;
    so.data = &e;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    sub(s, AREDIS_SUB_CHANNEL, "flood", NULL);
    for (int i = 0; i < 20; i++)
        assert_int_equal(publish("PUBLISH", "flood", "x", 1), 1);
    /* A marker: all 20 have been read once it is buffered. */
    aredis_sub_stats st;
    for (uint64_t until = ts_now_ms() + 5000; ts_now_ms() < until;) {
        aredis_subscription_get_stats(s, &st);
        if (st.dropped == 15) break;
        aredis_loop_run_once(g_loop, 1);
    }
    aredis_subscription_get_stats(s, &st);
    assert_int_equal(st.dropped, 15);
    assert_int_equal(st.buffered, 5);
    assert_int_equal(e.overflow, 1);
    for (int i = 0; i < 5; i++) {
        aredis_future *f = aredis_subscription_next(s);
        assert_true(aredis_future_is_done(f));
        aredis_future_release(f);
    }
    aredis_subscription_get_stats(s, &st);
    assert_int_equal(st.buffered, 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(publish("PUBLISH", "flood", "y", 1), 1);
    for (uint64_t until = ts_now_ms() + 5000; ts_now_ms() < until;) {
        aredis_subscription_get_stats(s, &st);
        if (st.dropped == 16) break;
        aredis_loop_run_once(g_loop, 1);
    }
    assert_int_equal(st.dropped, 16);
    assert_int_equal(e.overflow, 2); /* a new episode */
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* Every byte value in channel names and payloads. */
static void test_binary(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_subscription *s = aredis_subscription_new(c, NULL);
    const char ch[] = {'b', 0, '\r', '\n', (char)0xff};
    size_t chl = sizeof ch;
    const char *names[] = {ch};
    aredis_future *f = aredis_subscription_subscribe_f(s, AREDIS_SUB_CHANNEL, 1, names, &chl);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    char payload[256];
    for (int i = 0; i < 256; i++)
        payload[i] = (char)i;
    aredis_future *p = ts_cmd(g_pub, "PUBLISH %b %b", ch, chl, payload, sizeof payload);
    ts_assert_int(aredis_future_reply(p), 1);
    aredis_future_release(p);
    aredis_future *nx = aredis_subscription_next(s);
    assert_int_equal(aredis_await(nx), AREDIS_ERR_OK);
    aredis_message m;
    assert_int_equal(aredis_message_parse(aredis_future_reply(nx), &m), 0);
    assert_int_equal(m.channel_len, chl);
    assert_memory_equal(m.channel, ch, chl);
    assert_int_equal(m.payload_len, sizeof payload);
    assert_memory_equal(m.payload, payload, sizeof payload);
    aredis_future_release(nx);
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* Bad arguments are refused at the call; the plain command API refuses the
 * subscribe family and names this API. */
static void test_bad_arguments(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_subscription *s = aredis_subscription_new(c, NULL);
    const char *names[] = {"a", NULL};
    assert_int_equal(
        aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 0, names, NULL, NULL, NULL),
        AREDIS_ERR_INVALID);
    assert_int_equal(
        aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 2, names, NULL, NULL, NULL),
        AREDIS_ERR_INVALID);
    assert_int_equal(
        aredis_subscription_subscribe(s, (aredis_sub_kind)7, 1, names, NULL, NULL, NULL),
        AREDIS_ERR_INVALID);
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.connection = 9;
    assert_null(aredis_subscription_new(c, &so));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_int_equal(aredis_command(c, NULL, NULL, "SUBSCRIBE x"), AREDIS_ERR_UNSUPPORTED);
    assert_non_null(strstr(aredis_call_error()->detail, "aredis_subscription_new"));
    /* next() on a handler subscription: INVALID. */
    got g = {0};
    aredis_subscription *h = handler_sub(c, &g);
    aredis_future *f = aredis_subscription_next(h);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);
    aredis_subscription_free(h);
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* A handler may free its own subscription; later messages go nowhere. */
static aredis_subscription *g_self;
static int g_self_calls;
static void on_free_self(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)m;
    (void)data;
    g_self_calls++;
    assert_ptr_equal(s, g_self);
    aredis_subscription_free(s);
}

static void test_free_from_handler(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = on_free_self;
    g_self = aredis_subscription_new(c, &so);
    g_self_calls = 0;
    got g = {0};
    aredis_subscription *other = handler_sub(c, &g);
    sub(g_self, AREDIS_SUB_CHANNEL, "self", NULL);
    sub(other, AREDIS_SUB_CHANNEL, "self", NULL);
    assert_int_equal(publish("PUBLISH", "self", "1", 1), 1);
    assert_int_equal(publish("PUBLISH", "self", "2", 1), 1);
    assert_true(ts_wait_count(g_loop, &g.n, 2, 5000));
    assert_int_equal(g_self_calls, 1);
    aredis_subscription_free(other);
    aredis_client_free(c);
}

/* An ACL refusing a channel: the call fails with the server's NOPERM and
 * the subscription holds none of its names; the connection goes on. */
static void test_noperm(void **state) {
    (void)state;
    aredis_options o = ts_options(g_srv);
    o.protocol = g_proto;
    o.username = "limited";
    o.password = "any";
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.connection = AREDIS_SUB_SHARED;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    const char *names[] = {"allowed1", "forbidden"};
    ts_rec r = {0};
    assert_int_equal(
        aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 2, names, NULL, ts_on_rec, &r),
        AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &r, 5000);
    assert_int_equal(r.code, AREDIS_ERR_SERVER);
    assert_string_equal(r.prefix, "NOPERM");
    ts_rec_clear(&r);
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_CHANNEL), 0);
    ts_cmd_ok(c, "SET after v"); /* the connection is not subscribed */
    sub(s, AREDIS_SUB_CHANNEL, "allowed2", NULL);
    assert_int_equal(publish("PUBLISH", "allowed2", "ok", 2), 1);
    aredis_future *nx = aredis_subscription_next(s);
    assert_int_equal(aredis_await(nx), AREDIS_ERR_OK);
    aredis_future_release(nx);
    aredis_subscription_free(s);
    aredis_client_free(c);
}

/* Freeing the client first: the subscription learns it (ENDED, next()
 * fails), and freeing it afterwards is safe. */
static void test_client_freed_first(void **state) {
    (void)state;
    aredis_client *c = client();
    evs e = {0};
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_event = on_ev;
    so.data = &e;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    sub(s, AREDIS_SUB_CHANNEL, "gone", NULL);
    aredis_future *nx = aredis_subscription_next(s);
    aredis_client_free(c);
    assert_int_equal(e.ended, 1);
    assert_true(aredis_future_is_done(nx));
    assert_non_null(aredis_future_error(nx));
    aredis_future_release(nx);
    assert_null(aredis_subscription_client(s));
    const char *n1 = "x";
    assert_int_equal(aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 1, &n1, NULL, NULL, NULL),
                     AREDIS_ERR_CLOSED);
    aredis_subscription_free(s);
}

static int run_all(int proto) {
    g_proto = proto;
    printf("# RESP%d\n", proto);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_and_pattern),
        cmocka_unit_test(test_shard),
        cmocka_unit_test(test_commands_while_subscribed),
        cmocka_unit_test(test_shared_resp2_refuses),
        cmocka_unit_test(test_next_futures),
        cmocka_unit_test(test_unsubscribe_stops),
        cmocka_unit_test(test_ten_thousand_in_order),
        cmocka_unit_test(test_buffer_bound),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_free_from_handler),
        cmocka_unit_test(test_noperm),
        cmocka_unit_test(test_client_freed_first),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

int main(void) { return run_all(3) | run_all(2); }
