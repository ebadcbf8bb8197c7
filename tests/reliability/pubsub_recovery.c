/*
 * pubsub-recovery (TEST-PLAN reliability), in RESP3 and then RESP2 (whose
 * subscriptions have a hidden connection of their own: AREDIS_SUB_AUTO),
 * with reconnect on: subscriptions come back by themselves.
 *
 *   restart          the server is killed and restarted on its port:
 *                    channels, patterns and (Redis 7) shard channels are
 *                    subscribed again; RESUBSCRIBED is reported once per
 *                    reconnect, before the first message after it
 *   client kill      CLIENT KILL ID of the subscribed connection, then
 *                    CLIENT KILL TYPE pubsub: the same, twice
 *   in flight        a subscribe written to a connection that then dies,
 *                    and one issued while disconnected: subscribed after
 *                    the reconnect anyway
 *   unsubscribed     while disconnected: not replayed (the server has no
 *                    subscriber for it afterwards, nothing is delivered)
 *   next()           futures pending across a reconnect resolve with the
 *                    first messages after it; buffered ones survive
 *   ending           close(), close() while reconnecting, the policy giving
 *                    up: ENDED once, pending next() futures fail
 *   queued commands  issued during an outage: the replay goes first (RESP3:
 *                    a queued PUBLISH to the client's own channel reaches
 *                    it) and every reply is its own command's
 *   refused          the replay refused (an ACL change): ERROR, the names
 *                    kept, subscribed by the next reconnect
 *   the proxy        a confirmation cut in half; the replay's own
 *                    confirmation cut in half; a reset and a cut in the
 *                    middle of a stream of 1,000 messages: nothing twice,
 *                    order kept, delivery resumes after the replay
 *
 * Nothing sleeps: the loop runs until a condition holds (ts_wait*), or the
 * server is asked (PUBSUB NUMSUB) round trip after round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "proxy.h"
#include "rec.h"

static int g_proto; /* 3, then 2 */

/* ---- The rig: a server, maybe a proxy, a loop, a publisher ---------------- */

typedef struct rig {
    ts_server *srv;
    ts_proxy *px; /* NULL: the subscriber goes straight to the server */
    aredis_loop *loop;
    aredis_client *pub; /* publishes and inspects, always straight to the server */
} rig;

/* The subscriber's options: the server's (or the proxy's) address, the
 * protocol of the run, the default reconnect policy with a lower cap. */
static aredis_options rig_start(rig *r, int proxied) {
    memset(r, 0, sizeof *r);
    r->srv = ts_server_start(NULL, 0);
    r->loop = aredis_loop_new();
    assert_non_null(r->loop);
    if (proxied) r->px = ts_proxy_start("127.0.0.1", ts_server_port(r->srv));
    aredis_options po = ts_options(r->srv);
    po.reconnect_delay_ms = 20;
    po.max_reconnect_delay_ms = 200;
    r->pub = ts_connect(r->loop, &po);
    aredis_options o = ts_options(r->srv);
    if (proxied) o.port = ts_proxy_port(r->px);
    o.protocol = g_proto;
    o.max_reconnect_delay_ms = 1000;
    return o;
}

static void rig_stop(rig *r, aredis_client *c) {
    aredis_client_free(c);
    aredis_client_free(r->pub);
    aredis_loop_free(r->loop);
    ts_proxy_stop(r->px);
    ts_server_stop(r->srv);
}

/* After a restart: the publisher answers again (PINGs until one succeeds,
 * so that no PUBLISH of a test is ever written to a dead link, or twice). */
static void pub_ready(rig *r) {
    uint64_t until = ts_now_ms() + 10000;
    for (;;) {
        aredis_future *f = ts_cmd(r->pub, "PING");
        int ok = aredis_future_error(f) == NULL;
        aredis_future_release(f);
        if (ok) return;
        if (ts_now_ms() > until) fail_msg("the publisher did not reconnect within 10 s");
    }
}

/* PUBLISH (or SPUBLISH): the receivers count. */
static long long publish(rig *r, const char *cmd, const char *ch, const char *msg) {
    aredis_future *f = ts_cmd(r->pub, "%s %s %s", cmd, ch, msg);
    if (aredis_future_error(f))
        fail_msg("%s %s %s: %s", cmd, ch, msg, aredis_future_error(f)->detail);
    long long n = aredis_future_reply(f)->integer;
    aredis_future_release(f);
    return n;
}

/* The server's count of subscribers to a name (PUBSUB NUMSUB, SHARDNUMSUB;
 * NUMPAT for patterns: every pattern of every client). */
static long long server_count(rig *r, aredis_sub_kind kind, const char *name) {
    aredis_future *f = kind == AREDIS_SUB_CHANNEL ? ts_cmd(r->pub, "PUBSUB NUMSUB %s", name)
                       : kind == AREDIS_SUB_SHARD ? ts_cmd(r->pub, "PUBSUB SHARDNUMSUB %s", name)
                                                  : ts_cmd(r->pub, "PUBSUB NUMPAT");
    if (aredis_future_error(f)) fail_msg("PUBSUB: %s", aredis_future_error(f)->detail);
    const aredis_reply *x = aredis_future_reply(f);
    long long n;
    if (kind == AREDIS_SUB_PATTERN) {
        assert_int_equal(x->type, AREDIS_REPLY_INTEGER);
        n = x->integer;
    } else {
        assert_int_equal(x->type, AREDIS_REPLY_ARRAY);
        assert_int_equal(x->elements, 2);
        n = x->element[1]->integer;
    }
    aredis_future_release(f);
    return n;
}

/* Ask the server, round trip after round trip, until the count is want. */
static void wait_server_count(rig *r, aredis_sub_kind kind, const char *name, long long want) {
    uint64_t until = ts_now_ms() + 10000;
    long long n;
    while ((n = server_count(r, kind, name)) != want)
        if (ts_now_ms() > until)
            fail_msg("the server has %lld subscriber(s) to %s, want %lld (10 s)", n, name, want);
}

/* ---- What a subscription saw, in order ------------------------------------ */

enum { LOGN = 4096 };

typedef struct entry {
    int ev; /* 0: a message; else the event */
    aredis_sub_kind kind;
    char channel[160];
    char payload[32];
} entry;

typedef struct watch {
    size_t n;    /* log entries (also past LOGN) */
    size_t msgs; /* messages */
    int resub, ended, errors, overflow, dropped;
    aredis_err end_code;
    aredis_err error_code[8];
    char error_detail[8][160];
    /* Faults applied from inside the handlers. */
    ts_proxy *px;
    int cut_on_resub;     /* cut the next reply after this RESUBSCRIBED (1: the first) */
    size_t fault_at;      /* after this many messages ... */
    int fault;            /* ... 1: reset every connection; 2: cut the next reply */
    int fault_done;       /* applied */
    long long seq[20000]; /* the stream: payloads as numbers */
    size_t nseq;
    entry log[LOGN];
} watch;

static watch *watch_new(void) {
    watch *w = calloc(1, sizeof *w);
    assert_non_null(w);
    return w;
}

static void log_add(watch *w, int ev, const aredis_message *m) {
    if (w->n < LOGN) {
        entry *e = &w->log[w->n];
        e->ev = ev;
        if (m) {
            e->kind = m->kind;
            snprintf(e->channel, sizeof e->channel, "%.*s", (int)m->channel_len, m->channel);
            snprintf(e->payload, sizeof e->payload, "%.*s", (int)m->payload_len, m->payload);
        }
    }
    w->n++;
}

static void on_msg(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    watch *w = data;
    log_add(w, 0, m);
    w->msgs++;
    if (w->nseq < sizeof w->seq / sizeof w->seq[0]) {
        char num[32];
        snprintf(num, sizeof num, "%.*s", (int)(m->payload_len < 31 ? m->payload_len : 31),
                 m->payload);
        w->seq[w->nseq++] = atoll(num);
    }
    if (w->fault && !w->fault_done && w->msgs == w->fault_at) {
        w->fault_done = 1;
        if (w->fault == 1)
            ts_proxy_reset_all(w->px);
        else
            ts_proxy_cut_next_reply(w->px);
    }
}

static void on_ev(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                  void *data) {
    (void)s;
    watch *w = data;
    log_add(w, (int)ev, NULL);
    switch (ev) {
    case AREDIS_SUB_RESUBSCRIBED:
        w->resub++;
        if (w->cut_on_resub && w->resub == w->cut_on_resub) ts_proxy_cut_next_reply(w->px);
        break;
    case AREDIS_SUB_ENDED:
        w->ended++;
        w->end_code = err ? err->code : AREDIS_ERR_OK;
        break;
    case AREDIS_SUB_ERROR:
        if (w->errors < 8) {
            w->error_code[w->errors] = err ? err->code : AREDIS_ERR_OK;
            snprintf(w->error_detail[w->errors], sizeof w->error_detail[0], "%s",
                     err && err->detail ? err->detail : "");
        }
        w->errors++;
        break;
    case AREDIS_SUB_OVERFLOW:
        w->overflow++;
        break;
    case AREDIS_SUB_DROPPED:
        w->dropped++;
        break;
    }
}

/* A subscription logging into w: to a handler, or (handler 0) for next(). */
static aredis_subscription *new_sub(aredis_client *c, watch *w, int handler) {
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = handler ? on_msg : NULL;
    so.on_event = on_ev;
    so.data = w;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    assert_non_null(s);
    return s;
}

static void sub_ok(aredis_subscription *s, aredis_sub_kind kind, const char *name) {
    aredis_future *f = aredis_subscription_subscribe_f(s, kind, 1, &name, NULL);
    assert_non_null(f);
    if (aredis_await(f) != AREDIS_ERR_OK)
        fail_msg("subscribe %s: %s", name, aredis_future_error(f)->detail);
    aredis_future_release(f);
}

/* Where in the log: the message with this payload (-1 when none); how many
 * messages carry it. */
static long msg_at(const watch *w, const char *payload) {
    for (size_t i = 0; i < w->n && i < LOGN; i++)
        if (!w->log[i].ev && strcmp(w->log[i].payload, payload) == 0) return (long)i;
    return -1;
}

static int msg_count(const watch *w, const char *payload) {
    int n = 0;
    for (size_t i = 0; i < w->n && i < LOGN; i++)
        n += !w->log[i].ev && strcmp(w->log[i].payload, payload) == 0;
    return n;
}

/* Where the k-th (1-based) event ev is in the log, -1 when none. */
static long ev_at(const watch *w, int ev, int k) {
    for (size_t i = 0; i < w->n && i < LOGN; i++)
        if (w->log[i].ev == ev && --k == 0) return (long)i;
    return -1;
}

/* The message `payload` arrived exactly once, after the k-th RESUBSCRIBED. */
static void expect_after_resub(const watch *w, const char *payload, int k) {
    long m = msg_at(w, payload), e = ev_at(w, AREDIS_SUB_RESUBSCRIBED, k);
    if (m < 0) fail_msg("%s was not delivered", payload);
    if (msg_count(w, payload) != 1)
        fail_msg("%s was delivered %d times", payload, msg_count(w, payload));
    if (e < 0 || e > m)
        fail_msg("RESUBSCRIBED #%d (log entry %ld) not before %s (log entry %ld)", k, e, payload,
                 m);
}

static int ge_int(const void *p) {
    const int *const *a = p;
    return *a[0] >= *a[1];
}

/* Run until *v >= want. */
static int wait_int(aredis_loop *loop, const int *v, int want, uint64_t ms) {
    const int *a[2] = {v, &want};
    return ts_wait_until(loop, ge_int, a, ms);
}

/* The connection with this name that is subscribed to something, from
 * CLIENT LIST: its id (fails the test when there is none). */
static long long subscribed_conn(rig *r, const char *name) {
    aredis_future *f = ts_cmd(r->pub, "CLIENT LIST");
    assert_null(aredis_future_error(f));
    const char *all = aredis_future_reply(f)->str;
    char want[96];
    snprintf(want, sizeof want, " name=%s ", name);
    long long id = -1;
    for (const char *line = all; line && *line && id < 0;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[2048];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
        const char *sub = strstr(buf, " sub="), *psub = strstr(buf, " psub=");
        const char *ssub = strstr(buf, " ssub=");
        int subscribed = (sub && atoi(sub + 5) > 0) || (psub && atoi(psub + 6) > 0) ||
                         (ssub && atoi(ssub + 6) > 0);
        if (strstr(buf, want) && subscribed && strncmp(buf, "id=", 3) == 0) id = atoll(buf + 3);
        line = end ? end + 1 : NULL;
    }
    aredis_future_release(f);
    if (id < 0) fail_msg("no subscribed connection named %s in CLIENT LIST", name);
    return id;
}

/* ---- (a) A server restart -------------------------------------------------- */

static void test_restart_resubscribes_everything(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    int shard = ts_server_has(TS_FEATURE_SPUBLISH);
    sub_ok(s, AREDIS_SUB_CHANNEL, "rs:ch");
    sub_ok(s, AREDIS_SUB_PATTERN, "rs:pat.*");
    if (shard)
        sub_ok(s, AREDIS_SUB_SHARD, "rs:sh");
    else
        ts_log("not checked: shard channels (%s)", ts_server_describe());
    assert_int_equal(publish(&r, "PUBLISH", "rs:ch", "before"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 1, 5000));

    ts_server_kill(r.srv);
    ts_server_restart(r.srv);
    pub_ready(&r);
    /* Nothing asked of the application: the subscription comes back. */
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "rs:ch", 1);
    wait_server_count(&r, AREDIS_SUB_PATTERN, NULL, 1);
    if (shard) wait_server_count(&r, AREDIS_SUB_SHARD, "rs:sh", 1);
    assert_int_equal(publish(&r, "PUBLISH", "rs:ch", "after-ch"), 1);
    assert_int_equal(publish(&r, "PUBLISH", "rs:pat.x", "after-pat"), 1);
    if (shard) assert_int_equal(publish(&r, "SPUBLISH", "rs:sh", "after-sh"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, shard ? 4 : 3, 5000));
    ts_echo_tokens(c, "rs", 10, 5000, "a server restart"); /* the client's commands work */

    assert_int_equal(msg_count(w, "before"), 1);
    assert_true(msg_at(w, "before") < ev_at(w, AREDIS_SUB_RESUBSCRIBED, 1));
    expect_after_resub(w, "after-ch", 1);
    expect_after_resub(w, "after-pat", 1);
    if (shard) expect_after_resub(w, "after-sh", 1);
    long pat = msg_at(w, "after-pat");
    assert_int_equal(w->log[pat].kind, AREDIS_SUB_PATTERN);
    assert_string_equal(w->log[pat].channel, "rs:pat.x");
    if (shard) assert_int_equal(w->log[msg_at(w, "after-sh")].kind, AREDIS_SUB_SHARD);
    /* Once per reconnect. RESP3: the client's connection is the
     * subscription's; RESP2: one restart, one reconnect of the hidden one. */
    aredis_sub_stats st;
    aredis_subscription_get_stats(s, &st);
    ts_log("restart: connects=%d, RESUBSCRIBED %d, stats.resubscribes %llu", k.connects, w->resub,
           (unsigned long long)st.resubscribes);
    assert_int_equal(w->resub, 1);
    assert_int_equal(st.resubscribes, 1);
    if (g_proto == 3) assert_int_equal(k.connects - 1, w->resub);
    assert_int_equal(w->errors, 0);
    assert_int_equal(w->ended, 0);
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_CHANNEL), 1);
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_PATTERN), 1);
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_SHARD), shard ? 1 : 0);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* ---- (b) CLIENT KILL of the subscribed connection ------------------------- */

static void test_client_kill_recovers(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    char name[32];
    snprintf(name, sizeof name, "pskill%d", g_proto);
    o.client_name = name; /* the hidden RESP2 connection has it too */
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "ck:ch");
    sub_ok(s, AREDIS_SUB_PATTERN, "ck:p*");

    /* 1: by id, found by its name and its subscriptions. */
    long long id = subscribed_conn(&r, name);
    if (g_proto == 3) assert_int_equal(id, ts_client_id(c));
    aredis_future *f = ts_cmd(r.pub, "CLIENT KILL ID %lld", id);
    ts_assert_int(aredis_future_reply(f), 1);
    aredis_future_release(f);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "ck:ch", 1);
    wait_server_count(&r, AREDIS_SUB_PATTERN, NULL, 1);
    assert_int_equal(publish(&r, "PUBLISH", "ck:ch", "after-1"), 1);
    assert_int_equal(publish(&r, "PUBLISH", "ck:pattern", "after-1p"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 2, 5000));
    expect_after_resub(w, "after-1", 1);
    expect_after_resub(w, "after-1p", 1);

    /* 2: every subscribed connection (TYPE pubsub): only this one is. */
    f = ts_cmd(r.pub, "CLIENT KILL TYPE pubsub");
    assert_null(aredis_future_error(f));
    ts_assert_int(aredis_future_reply(f), 1);
    aredis_future_release(f);
    assert_true(wait_int(r.loop, &w->resub, 2, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "ck:ch", 1);
    wait_server_count(&r, AREDIS_SUB_PATTERN, NULL, 1);
    assert_int_equal(publish(&r, "PUBLISH", "ck:ch", "after-2"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 3, 5000));
    expect_after_resub(w, "after-2", 2);
    ts_echo_tokens(c, "ck", 10, 5000, "two CLIENT KILLs");
    assert_int_equal(w->resub, 2);
    if (g_proto == 3) assert_int_equal(k.connects - 1, w->resub);
    if (g_proto == 2) assert_int_equal(k.connects, 1); /* the client's own never dropped */
    assert_int_equal(w->errors, 0);
    assert_int_equal(w->msgs, 3);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* ---- (c) A subscribe in flight when the connection drops ------------------ */

static int not_ready(const void *c) { return aredis_client_state(c) != AREDIS_STATE_READY; }

static void test_subscribe_in_flight_when_dropped(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 1);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "if:warm"); /* RESP2: its connection is up */

    /* Written, never answered: the link swallows it, then dies. */
    ts_proxy_blackhole(r.px, 1);
    aredis_client_stats st0, st1;
    aredis_client_get_stats(c, &st0);
    const char *names[] = {"if:a", "if:b"};
    ts_rec x = {0};
    assert_int_equal(
        aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 2, names, NULL, ts_on_rec, &x),
        AREDIS_ERR_OK);
    assert_int_equal(x.calls, 0); /* never from inside the call */
    if (g_proto == 3) {
        uint64_t until = ts_now_ms() + 5000;
        do {
            assert_true(ts_now_ms() < until);
            aredis_loop_run_once(r.loop, 0);
            aredis_client_get_stats(c, &st1);
        } while (st1.bytes_out == st0.bytes_out);
    } else {
        /* The hidden connection's bytes cannot be counted from here: a few
         * turns write them (the flush is one defer away). */
        for (int i = 0; i < 5; i++)
            aredis_loop_run_once(r.loop, 0);
    }
    assert_int_equal(x.calls, 0);
    ts_proxy_blackhole(r.px, 0);
    ts_proxy_close_all(r.px);
    ts_rec_wait(r.loop, &x, 10000);
    ts_log("subscribe in flight: %s", aredis_err_name(x.code));
    if (g_proto == 3) assert_true(aredis_err_is_connection(x.code));
    assert_true(x.code == AREDIS_ERR_OK || aredis_err_is_connection(x.code));
    ts_rec_clear(&x);
    /* The names are the subscription's all the same: subscribed again. */
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_CHANNEL), 3);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "if:a", 1);
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "if:b", 1);
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "if:warm", 1);
    assert_int_equal(publish(&r, "PUBLISH", "if:a", "a1"), 1);
    assert_int_equal(publish(&r, "PUBLISH", "if:b", "b1"), 1);
    assert_int_equal(publish(&r, "PUBLISH", "if:warm", "w1"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 3, 5000));
    expect_after_resub(w, "a1", 1);
    expect_after_resub(w, "b1", 1);
    expect_after_resub(w, "w1", 1);
    assert_int_equal(w->resub, 1);
    assert_int_equal(x.calls, 0);

    /* Issued while disconnected (the way refused): it waits, and the
     * reconnect subscribes it (replay, then the call itself). */
    ts_proxy_refuse(r.px, 1);
    ts_proxy_close_all(r.px);
    const char *late = "if:late";
    if (g_proto == 3) /* disconnected for sure before the call */
        assert_true(ts_wait_until(r.loop, not_ready, c, 10000));
    assert_int_equal(
        aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 1, &late, NULL, ts_on_rec, &x),
        AREDIS_ERR_OK);
    ts_proxy_refuse(r.px, 0);
    ts_rec_wait(r.loop, &x, 10000);
    ts_log("subscribe while disconnected: %s", aredis_err_name(x.code));
    if (g_proto == 3) assert_int_equal(x.code, AREDIS_ERR_OK);
    assert_true(x.code == AREDIS_ERR_OK || aredis_err_is_connection(x.code));
    ts_rec_clear(&x);
    assert_true(wait_int(r.loop, &w->resub, 2, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "if:late", 1);
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "if:a", 1);
    assert_int_equal(publish(&r, "PUBLISH", "if:late", "l1"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 4, 5000));
    expect_after_resub(w, "l1", 2);
    assert_int_equal(w->errors, 0);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* ---- (d) An unsubscribe while disconnected is not replayed ----------------- */

static void test_unsubscribe_while_down_not_replayed(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 1);
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new(), *w2 = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    aredis_subscription *s2 = new_sub(c, w2, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "ud:keep");
    sub_ok(s, AREDIS_SUB_CHANNEL, "ud:gone");
    sub_ok(s2, AREDIS_SUB_CHANNEL, "ud:only"); /* its only name */
    watch *w3 = watch_new();
    aredis_subscription *s3 = new_sub(c, w3, 1);
    sub_ok(s3, AREDIS_SUB_CHANNEL, "ud:freed");

    ts_proxy_refuse(r.px, 1);
    ts_proxy_close_all(r.px);
    assert_true(ts_wait(r.loop, &k.disconnects, 10000));
    ts_rec x = {0}, x2 = {0};
    const char *gone = "ud:gone", *only = "ud:only";
    assert_int_equal(
        aredis_subscription_unsubscribe(s, AREDIS_SUB_CHANNEL, 1, &gone, NULL, ts_on_rec, &x),
        AREDIS_ERR_OK);
    assert_int_equal(
        aredis_subscription_unsubscribe(s2, AREDIS_SUB_CHANNEL, 1, &only, NULL, ts_on_rec, &x2),
        AREDIS_ERR_OK);
    aredis_subscription_free(s3); /* and one freed while disconnected */
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_CHANNEL), 1);
    assert_int_equal(aredis_subscription_count(s2, AREDIS_SUB_CHANNEL), 0);
    ts_proxy_refuse(r.px, 0);

    ts_rec_wait(r.loop, &x, 10000);
    ts_rec_wait(r.loop, &x2, 10000);
    ts_log("unsubscribe while disconnected: %s, %s", aredis_err_name(x.code),
           aredis_err_name(x2.code));
    if (g_proto == 3) {
        assert_int_equal(x.code, AREDIS_ERR_OK);
        assert_int_equal(x2.code, AREDIS_ERR_OK);
    }
    assert_true(x.code == AREDIS_ERR_OK || aredis_err_is_connection(x.code));
    assert_true(x2.code == AREDIS_ERR_OK || aredis_err_is_connection(x2.code));
    ts_rec_clear(&x);
    ts_rec_clear(&x2);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "ud:keep", 1);
    /* The replay is done: the names let go were not in it. */
    assert_int_equal(server_count(&r, AREDIS_SUB_CHANNEL, "ud:gone"), 0);
    assert_int_equal(server_count(&r, AREDIS_SUB_CHANNEL, "ud:only"), 0);
    assert_int_equal(server_count(&r, AREDIS_SUB_CHANNEL, "ud:freed"), 0);
    assert_int_equal(publish(&r, "PUBLISH", "ud:gone", "g1"), 0);
    assert_int_equal(publish(&r, "PUBLISH", "ud:only", "o1"), 0);
    assert_int_equal(publish(&r, "PUBLISH", "ud:freed", "f1"), 0);
    assert_int_equal(publish(&r, "PUBLISH", "ud:keep", "k1"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 1, 5000));
    ts_echo_tokens(c, "ud", 5, 5000, "the reconnect"); /* a round trip more */
    expect_after_resub(w, "k1", 1);
    assert_int_equal(w->msgs, 1);
    assert_int_equal(w2->msgs, 0);
    assert_int_equal(w2->resub, 0); /* nothing held: nothing replayed */
    assert_int_equal(w->errors + w2->errors, 0);
    assert_int_equal(w3->msgs + (size_t)w3->resub, 0);
    aredis_subscription_free(s);
    aredis_subscription_free(s2);
    free(w);
    free(w2);
    free(w3);
    rig_stop(&r, c);
}

/* ---- (e) next() across a reconnect ---------------------------------------- */

static int buffered_is(const void *p) {
    const aredis_subscription *const *s = p;
    aredis_sub_stats st;
    aredis_subscription_get_stats(*s, &st);
    return st.buffered >= 1;
}

static void expect_payload(aredis_future *f, const char *want) {
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_message m;
    assert_int_equal(aredis_message_parse(aredis_future_reply(f), &m), 0);
    if (m.payload_len != strlen(want) || memcmp(m.payload, want, m.payload_len) != 0)
        fail_msg("next() gave %.*s, want %s", (int)m.payload_len, m.payload, want);
}

static void test_next_across_reconnect(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 0);
    sub_ok(s, AREDIS_SUB_CHANNEL, "nx:ch");
    /* One buffered before the restart: it stays. */
    assert_int_equal(publish(&r, "PUBLISH", "nx:ch", "b0"), 1);
    assert_true(ts_wait_until(r.loop, buffered_is, &s, 5000));

    ts_server_kill(r.srv);
    aredis_future *f0 = aredis_subscription_next(s);
    assert_true(aredis_future_is_done(f0)); /* the buffered one, at once */
    expect_payload(f0, "b0");
    aredis_future *f1 = aredis_subscription_next(s);
    aredis_future *f2 = aredis_subscription_next(s);
    assert_false(aredis_future_is_done(f1));
    ts_server_restart(r.srv);
    pub_ready(&r);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "nx:ch", 1);
    /* The reconnect and the replay's confirmations resolved nothing. */
    assert_false(aredis_future_is_done(f1));
    assert_false(aredis_future_is_done(f2));
    assert_int_equal(publish(&r, "PUBLISH", "nx:ch", "a1"), 1);
    assert_int_equal(publish(&r, "PUBLISH", "nx:ch", "a2"), 1);
    expect_payload(f1, "a1");
    expect_payload(f2, "a2");
    aredis_future *f3 = aredis_subscription_next(s);
    assert_int_equal(publish(&r, "PUBLISH", "nx:ch", "a3"), 1);
    expect_payload(f3, "a3");
    aredis_sub_stats st;
    aredis_subscription_get_stats(s, &st);
    assert_int_equal(st.delivered, 4);
    assert_int_equal(st.buffered, 0);
    assert_int_equal(st.resubscribes, 1);
    assert_int_equal(w->resub, 1);
    aredis_future_release(f0);
    aredis_future_release(f1);
    aredis_future_release(f2);
    aredis_future_release(f3);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* ---- (f) The client ends ---------------------------------------------------- */

static int is_idle(const void *c) { return aredis_client_state(c) == AREDIS_STATE_IDLE; }

static void expect_failed(aredis_future *f) {
    assert_true(aredis_future_is_done(f));
    assert_non_null(aredis_future_error(f));
    assert_null(aredis_future_reply(f));
}

/* close() while connected: ENDED once, pending next() futures fail at once;
 * the subscription refuses calls afterwards and is freed safely. */
static void test_close_ends(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 0);
    sub_ok(s, AREDIS_SUB_CHANNEL, "cl:ch");
    aredis_future *f1 = aredis_subscription_next(s);
    aredis_future *f2 = aredis_subscription_next(s);
    aredis_client_close(c);
    expect_failed(f1);
    expect_failed(f2);
    ts_log("next() after close: %s", aredis_err_name(aredis_future_error(f1)->code));
    assert_int_equal(w->ended, 1);
    assert_int_equal(w->resub, 0);
    assert_int_equal(aredis_future_error(f1)->code, w->end_code);
    assert_int_equal(publish(&r, "PUBLISH", "cl:ch", "x"), 0); /* really gone */
    aredis_future *f3 = aredis_subscription_next(s);
    expect_failed(f3);
    const char *n = "cl:other";
    assert_int_not_equal(
        aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 1, &n, NULL, NULL, NULL),
        AREDIS_ERR_OK);
    assert_int_equal(w->ended, 1);
    aredis_future_release(f1);
    aredis_future_release(f2);
    aredis_future_release(f3);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* close() while the server is down and the client reconnecting. */
static void test_close_while_reconnecting_ends(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 0);
    sub_ok(s, AREDIS_SUB_CHANNEL, "cr:ch");
    aredis_future *f1 = aredis_subscription_next(s);
    ts_server_kill(r.srv);
    assert_true(ts_wait(r.loop, &k.disconnects, 10000));
    assert_false(aredis_future_is_done(f1)); /* a reconnect is coming */
    assert_int_equal(w->ended, 0);
    aredis_client_close(c);
    expect_failed(f1);
    assert_int_equal(w->ended, 1);
    assert_int_equal(w->resub, 0);
    aredis_future_release(f1);
    aredis_subscription_free(s);
    free(w);
    ts_server_restart(r.srv); /* for the publisher's sake at the end */
    rig_stop(&r, c);
}

/* The policy gives up (max_reconnect_attempts): ENDED, with the error. */
static void test_gave_up_ends(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    o.reconnect_delay_ms = 20;
    o.max_reconnect_attempts = 2;
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 0);
    sub_ok(s, AREDIS_SUB_CHANNEL, "gu:ch");
    aredis_future *f1 = aredis_subscription_next(s);
    ts_server_kill(r.srv);
    assert_true(wait_int(r.loop, &w->ended, 1, 20000));
    expect_failed(f1);
    ts_log("gave up: ENDED with %s; next() %s", aredis_err_name(w->end_code),
           aredis_err_name(aredis_future_error(f1)->code));
    assert_true(aredis_err_is_connection(w->end_code));
    assert_true(aredis_err_is_connection(aredis_future_error(f1)->code));
    assert_int_equal(w->ended, 1);
    aredis_future_release(f1);

    /* connect() again (docs/PUBSUB.md): replayed as after a reconnect.
     * (RESP2: the client's own connection gives up on its own too.) */
    assert_true(ts_wait_until(r.loop, is_idle, c, 20000));
    ts_server_restart(r.srv);
    pub_ready(&r);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "gu:ch", 1);
    aredis_future *f2 = aredis_subscription_next(s);
    assert_int_equal(publish(&r, "PUBLISH", "gu:ch", "again"), 1);
    expect_payload(f2, "again");
    aredis_future_release(f2);
    assert_int_equal(w->ended, 1);
    assert_int_equal(w->resub, 1);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/*
 * A graceful aredis_client_disconnect(): the client keeps no connection, so
 * its subscriptions end as when the policy gives up (ENDED, the server has
 * no subscriber left), whichever connection they were on; connect() again
 * replays them.
 * On RESP2 the subscription lives on the hidden connection: the user's
 * client's disconnect() disconnects it too (features/pubsub.c on_down()).
 */
static void test_disconnect_ends(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "dc:ch");
    aredis_client_disconnect(c);
    assert_true(ts_wait_until(r.loop, is_idle, c, 10000));
    if (w->ended != 1)
        fail_msg("after disconnect(): ENDED reported %d time(s); the server has %lld "
                 "subscriber(s) to dc:ch",
                 w->ended, server_count(&r, AREDIS_SUB_CHANNEL, "dc:ch"));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "dc:ch", 0);
    assert_int_equal(publish(&r, "PUBLISH", "dc:ch", "dropped"), 0);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "dc:ch", 1);
    assert_int_equal(publish(&r, "PUBLISH", "dc:ch", "back"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 1, 5000));
    expect_after_resub(w, "back", 1);
    assert_int_equal(w->msgs, 1);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* ---- (g) Commands queued during the outage ---------------------------------- */

static void test_queued_commands_after_replay(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 1);
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "qc:ch");
    ts_cmd_ok(c, "SET qc:k0 v0");
    aredis_future_release(ts_cmd(c, "DEL qc:n"));

    ts_proxy_refuse(r.px, 1);
    ts_proxy_close_all(r.px);
    assert_true(ts_wait(r.loop, &k.disconnects, 10000));
    assert_int_not_equal(aredis_client_state(c), AREDIS_STATE_READY);
    enum { SET1, PUB, NUMSUB, GET0, GET1, INCR, NQ };
    ts_rec q[NQ];
    memset(q, 0, sizeof q);
    assert_int_equal(aredis_command(c, ts_on_rec, &q[SET1], "SET qc:k1 v1"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &q[PUB], "PUBLISH qc:ch self"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &q[NUMSUB], "PUBSUB NUMSUB qc:ch"),
                     AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &q[GET0], "GET qc:k0"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &q[GET1], "GET qc:k1"), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &q[INCR], "INCR qc:n"), AREDIS_ERR_OK);
    ts_proxy_refuse(r.px, 0);
    for (int i = 0; i < NQ; i++)
        ts_rec_wait(r.loop, &q[i], 10000);
    for (int i = 0; i < NQ; i++)
        if (q[i].code != AREDIS_ERR_OK || q[i].calls != 1)
            fail_msg("queued command %d: %d call(s), %s %s", i, q[i].calls,
                     aredis_err_name(q[i].code), q[i].detail);
    ts_assert_status(q[SET1].r, "OK");
    ts_assert_str(q[GET0].r, "v0");
    ts_assert_str(q[GET1].r, "v1");
    ts_assert_int(q[INCR].r, 1);
    ts_assert_array(q[NUMSUB].r, 2);
    ts_assert_str(q[NUMSUB].r->element[0], "qc:ch");
    assert_int_equal(q[PUB].r->type, AREDIS_REPLY_INTEGER);
    if (g_proto == 3) {
        /* One connection: the replay went out before the queued commands,
         * so the server had the subscriber when it ran the PUBLISH. */
        ts_assert_int(q[PUB].r, 1);
        ts_assert_int(q[NUMSUB].r->element[1], 1);
        assert_true(ts_wait_count(r.loop, &w->msgs, 1, 5000));
        expect_after_resub(w, "self", 1);
    } else {
        /* RESP2: the replay is on the subscription's own connection. */
        ts_log("RESP2: queued PUBLISH reached %lld", q[PUB].r->integer);
    }
    for (int i = 0; i < NQ; i++)
        ts_rec_clear(&q[i]);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "qc:ch", 1);
    size_t want = w->msgs + 1;
    assert_int_equal(publish(&r, "PUBLISH", "qc:ch", "later"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, want, 5000));
    expect_after_resub(w, "later", 1);
    assert_int_equal(w->resub, 1);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* ---- The replay refused --------------------------------------------------- */

/*
 * An ACL change takes a channel away from the subscriber's user (Redis
 * then drops its connection): the replay is refused, AREDIS_SUB_ERROR says
 * so with the server's words, the names stay; once the ACL allows them
 * again, the next reconnect subscribes them.
 */
static void test_replay_refused_then_retried(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 0);
    ts_cmd_ok(r.pub, "ACL SETUSER psu on >pw ~* &* +@all");
    o.username = "psu";
    o.password = "pw";
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    const char *names[] = {"acl:a", "acl:b"};
    aredis_future *f = aredis_subscription_subscribe_f(s, AREDIS_SUB_CHANNEL, 2, names, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);

    /* acl:b is no longer allowed: the server drops the subscriber. */
    ts_cmd_ok(r.pub, "ACL SETUSER psu resetchannels &acl:a");
    assert_true(wait_int(r.loop, &w->errors, 1, 10000));
    ts_log("replay refused: %s, \"%s\"", aredis_err_name(w->error_code[0]), w->error_detail[0]);
    assert_int_equal(w->error_code[0], AREDIS_ERR_SERVER);
    assert_non_null(strstr(w->error_detail[0], "NOPERM"));
    assert_int_equal(w->resub, 1);
    assert_int_equal(aredis_subscription_count(s, AREDIS_SUB_CHANNEL), 2); /* kept */
    assert_int_equal(server_count(&r, AREDIS_SUB_CHANNEL, "acl:a"), 0);

    /* Allowed again, and the connection dropped: the next replay works. */
    ts_cmd_ok(r.pub, "ACL SETUSER psu allchannels");
    f = ts_cmd(r.pub, "CLIENT KILL USER psu");
    assert_null(aredis_future_error(f));
    assert_true(aredis_future_reply(f)->integer >= 1);
    aredis_future_release(f);
    assert_true(wait_int(r.loop, &w->resub, 2, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "acl:a", 1);
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "acl:b", 1);
    assert_int_equal(publish(&r, "PUBLISH", "acl:b", "b"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 1, 5000));
    expect_after_resub(w, "b", 2);
    assert_int_equal(w->errors, 1);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/* ---- (h) The fault proxy --------------------------------------------------- */

/* The confirmation of a subscribe cut in half: the call fails (no half
 * confirmation is taken for one), the names come back with the replay. */
static void test_confirmation_cut(void **state) {
    (void)state;
    rig r;
    aredis_options o = rig_start(&r, 1);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    aredis_subscription *s = new_sub(c, w, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "cc:warm");
    char names[3][120];
    const char *np[3];
    for (int i = 0; i < 3; i++) {
        snprintf(names[i], sizeof names[i], "cc:%d:%090d", i, 0);
        np[i] = names[i];
    }
    ts_proxy_cut_next_reply(r.px);
    ts_rec x = {0};
    assert_int_equal(
        aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 3, np, NULL, ts_on_rec, &x),
        AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &x, 10000);
    ts_log("subscribe whose confirmation was cut: %s", aredis_err_name(x.code));
    assert_true(aredis_err_is_connection(x.code));
    assert_null(x.r);
    ts_rec_clear(&x);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    for (int i = 0; i < 3; i++)
        wait_server_count(&r, AREDIS_SUB_CHANNEL, names[i], 1);
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "cc:warm", 1);
    for (int i = 0; i < 3; i++) {
        char msg[8];
        snprintf(msg, sizeof msg, "m%d", i);
        assert_int_equal(publish(&r, "PUBLISH", names[i], msg), 1);
    }
    assert_int_equal(publish(&r, "PUBLISH", "cc:warm", "w"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 4, 5000));
    expect_after_resub(w, "m0", 1);
    expect_after_resub(w, "m1", 1);
    expect_after_resub(w, "m2", 1);
    expect_after_resub(w, "w", 1);
    assert_int_equal(w->resub, 1);
    assert_int_equal(w->msgs, 4);
    assert_int_equal(w->errors, 0);
    assert_int_equal(x.calls, 0);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

/*
 * The replay's own confirmation cut in half (the cut is armed from inside
 * the first RESUBSCRIBED event, so the next bytes the server sends are its
 * answer): one more reconnect, one more replay, and the names are back.
 * Returns the watch (caller frees) for the checks of its events.
 */
static watch *replay_cut(void) {
    rig r;
    aredis_options o = rig_start(&r, 1);
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    w->px = r.px;
    w->cut_on_resub = 1;
    aredis_subscription *s = new_sub(c, w, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "rc:ch");
    sub_ok(s, AREDIS_SUB_PATTERN, "rc:p*");
    /* Only the subscribed connection goes (RESP2: not the client's own,
     * whose handshake the cut could otherwise catch). */
    aredis_future *f = ts_cmd(r.pub, "CLIENT KILL TYPE pubsub");
    ts_assert_int(aredis_future_reply(f), 1);
    aredis_future_release(f);
    assert_true(wait_int(r.loop, &w->resub, 2, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "rc:ch", 1);
    wait_server_count(&r, AREDIS_SUB_PATTERN, NULL, 1);
    assert_int_equal(publish(&r, "PUBLISH", "rc:ch", "after"), 1);
    assert_int_equal(publish(&r, "PUBLISH", "rc:pat", "after-p"), 1);
    assert_true(ts_wait_count(r.loop, &w->msgs, 2, 5000));
    expect_after_resub(w, "after", 2);
    expect_after_resub(w, "after-p", 2);
    if (w->errors)
        ts_log("replay cut: RESUBSCRIBED %d, ERROR %d (the first: %s, \"%s\")", w->resub, w->errors,
               aredis_err_name(w->error_code[0]), w->error_detail[0]);
    else
        ts_log("replay cut: RESUBSCRIBED %d, no ERROR", w->resub);
    assert_int_equal(w->resub, 2);
    assert_int_equal(w->msgs, 2);
    aredis_subscription_free(s);
    w->px = NULL;
    rig_stop(&r, c);
    return w;
}

static void test_replay_confirmation_cut(void **state) {
    (void)state;
    free(replay_cut());
}

/*
 * The same, for what on_event is told about the lost replay. The lost
 * connection is already followed by a reconnect and a second replay (and
 * RESUBSCRIBED): it is no refusal by the server. AREDIS_SUB_ERROR is for
 * "subscribing again failed (an ACL now refuses a channel)" and must not
 * say AREDIS_ERR_SERVER for an EOF (features/pubsub.c call_done() reports
 * only an error reply; a lost replay is replayed again).
 */
static void test_replay_lost_is_no_server_error(void **state) {
    (void)state;
    watch *w = replay_cut();
    for (int i = 0; i < w->errors && i < 8; i++)
        if (w->error_code[i] == AREDIS_ERR_SERVER)
            fail_msg("AREDIS_SUB_ERROR #%d says AREDIS_ERR_SERVER (a refusal) for a lost "
                     "connection: \"%s\"",
                     i, w->error_detail[i]);
    free(w);
}

/* A stream of 1,000 messages with a fault after the 300th delivered (a
 * reset, or the next chunk cut in half): what is delivered is one run from
 * 0, then one run up to the end — nothing twice, nothing out of order —
 * and delivery resumes after the replay. */
typedef struct pacer {
    aredis_client *pub;
    int next, total, inflight, window;
    size_t done;
    int errors;
} pacer;

static void pace_fill(pacer *p);

static void pace_cb(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    pacer *p = data;
    p->inflight--;
    p->done++;
    if (err) p->errors++;
    pace_fill(p);
}

static void pace_fill(pacer *p) {
    while (p->inflight < p->window && p->next < p->total) {
        assert_int_equal(aredis_command(p->pub, pace_cb, p, "PUBLISH ms:ch %d", p->next),
                         AREDIS_ERR_OK);
        p->next++;
        p->inflight++;
    }
}

static void stream_with_fault(int fault) {
    enum { N = 1000, AT = 300, TAIL = 10 };
    rig r;
    aredis_options o = rig_start(&r, 1);
    o.reconnect_delay_ms = 1; /* back while the stream still flows */
    aredis_client *c = ts_connect(r.loop, &o);
    watch *w = watch_new();
    w->px = r.px;
    w->fault = fault;
    w->fault_at = AT;
    aredis_subscription *s = new_sub(c, w, 1);
    sub_ok(s, AREDIS_SUB_CHANNEL, "ms:ch");
    pacer p = {r.pub, 0, N, 0, 4, 0, 0};
    pace_fill(&p);
    assert_true(ts_wait_count(r.loop, &p.done, N, 20000));
    assert_int_equal(p.errors, 0);
    assert_int_equal(w->fault_done, 1);
    assert_true(wait_int(r.loop, &w->resub, 1, 10000));
    wait_server_count(&r, AREDIS_SUB_CHANNEL, "ms:ch", 1);
    for (int i = N; i < N + TAIL; i++) {
        char m[16];
        snprintf(m, sizeof m, "%d", i);
        assert_int_equal(publish(&r, "PUBLISH", "ms:ch", m), 1);
    }
    /* The last one in: everything before it has been read. */
    uint64_t until = ts_now_ms() + 10000;
    while (!(w->nseq && w->seq[w->nseq - 1] == N + TAIL - 1)) {
        assert_true(ts_now_ms() < until);
        aredis_loop_run_once(r.loop, 1);
    }
    /* One run from 0 (past the fault point), a gap, one run to the end. */
    size_t i = 0;
    while (i < w->nseq && w->seq[i] == (long long)i)
        i++;
    size_t head = i;
    long long resume = i < w->nseq ? w->seq[i] : -1;
    for (; i < w->nseq; i++)
        if (w->seq[i] != resume + (long long)(i - head))
            fail_msg("delivered #%zu is %lld after %lld: not one run after the gap", i, w->seq[i],
                     w->seq[i - 1]);
    ts_log("%s after %d: delivered 0..%zu, then %lld..%d (%zu of %d); RESUBSCRIBED %d",
           fault == 1 ? "reset" : "cut", AT, head - 1, resume, N + TAIL - 1, w->nseq, N + TAIL,
           w->resub);
    assert_true(head >= AT);
    assert_true(resume >= (long long)head);
    assert_int_equal(w->resub, 1);
    /* The resumed run starts after the replay. */
    char first[32];
    snprintf(first, sizeof first, "%lld", resume);
    if (resume > (long long)head) expect_after_resub(w, first, 1);
    aredis_sub_stats st;
    aredis_subscription_get_stats(s, &st);
    assert_int_equal(st.delivered, w->nseq);
    aredis_subscription_free(s);
    free(w);
    rig_stop(&r, c);
}

static void test_stream_reset(void **state) {
    (void)state;
    stream_with_fault(1);
}

static void test_stream_cut(void **state) {
    (void)state;
    stream_with_fault(2);
}

static int run_all(int proto) {
    g_proto = proto;
    printf("# RESP%d\n", proto);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_resubscribes_everything),
        cmocka_unit_test(test_client_kill_recovers),
        cmocka_unit_test(test_subscribe_in_flight_when_dropped),
        cmocka_unit_test(test_unsubscribe_while_down_not_replayed),
        cmocka_unit_test(test_next_across_reconnect),
        cmocka_unit_test(test_close_ends),
        cmocka_unit_test(test_close_while_reconnecting_ends),
        cmocka_unit_test(test_gave_up_ends),
        cmocka_unit_test(test_disconnect_ends),
        cmocka_unit_test(test_queued_commands_after_replay),
        cmocka_unit_test(test_replay_refused_then_retried),
        cmocka_unit_test(test_confirmation_cut),
        cmocka_unit_test(test_replay_confirmation_cut),
        cmocka_unit_test(test_replay_lost_is_no_server_error),
        cmocka_unit_test(test_stream_reset),
        cmocka_unit_test(test_stream_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(void) { return run_all(3) | run_all(2); }
