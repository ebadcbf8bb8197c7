/*
 * parallel-pubsub (TEST-PLAN concurrency), in RESP3 and then RESP2: five
 * subscriber clients on five channels, one publisher sending one message
 * to each: every subscriber gets exactly its own, nothing else; the same
 * with five subscriptions on ONE client (one connection: the registry
 * routes each message to its own subscription only, and a channel and a
 * pattern on that connection each get their own kind once); commands and
 * publishes issued on every client while the others (and itself) are
 * subscribed: every reply is its own command's (values checked) and every
 * subscriber gets exactly its neighbour's messages, in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"
#include "ts.h"

enum { NSUB = 5 };

static ts_server *g_srv;
static aredis_loop *g_loop;
static aredis_client *g_pub; /* publishes; never subscribed */
static int g_proto;          /* 3, then 2 */

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(NULL, 0);
    g_loop = aredis_loop_new();
    g_pub = ts_client(g_loop, g_srv);
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

/* ---- What a subscription received ---------------------------------------- */

enum { INBOX = 128 };

typedef struct inbox {
    size_t n; /* messages received (also past INBOX) */
    aredis_sub_kind kind[INBOX];
    char channel[INBOX][32];
    char pattern[INBOX][32];
    char payload[INBOX][32];
} inbox;

static void on_msg(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    inbox *b = data;
    if (b->n < INBOX) {
        b->kind[b->n] = m->kind;
        snprintf(b->channel[b->n], 32, "%.*s", (int)m->channel_len, m->channel);
        snprintf(b->pattern[b->n], 32, "%.*s", m->pattern ? (int)m->pattern_len : 0,
                 m->pattern ? m->pattern : "");
        snprintf(b->payload[b->n], 32, "%.*s", (int)m->payload_len, m->payload);
    }
    b->n++;
}

static aredis_subscription *new_sub(aredis_client *c, inbox *b) {
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = on_msg;
    so.data = b;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    assert_non_null(s);
    return s;
}

/* A future per subscribe, issued now; awaited by await_all(). */
static aredis_future *subscribe_f(aredis_subscription *s, aredis_sub_kind kind, const char *name) {
    aredis_future *f = aredis_subscription_subscribe_f(s, kind, 1, &name, NULL);
    assert_non_null(f);
    return f;
}

static void await_ok_release(aredis_future **f, size_t n) {
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(aredis_await(f[i]), AREDIS_ERR_OK);
        aredis_future_release(f[i]);
    }
}

/* PUBLISH, the receivers count awaited. */
static long long publish(aredis_client *c, const char *ch, const char *msg) {
    aredis_future *f = ts_cmd(c, "PUBLISH %s %s", ch, msg);
    assert_null(aredis_future_error(f));
    long long n = aredis_future_reply(f)->integer;
    aredis_future_release(f);
    return n;
}

/* A subscription that received exactly payloads[0..n), in order, all on
 * channel ch. */
static void expect_inbox(const inbox *b, const char *ch, const char *const *payloads, size_t n) {
    if (b->n != n) fail_msg("%s: %zu message(s) received, want %zu", ch, b->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b->kind[i], AREDIS_SUB_CHANNEL);
        assert_string_equal(b->channel[i], ch);
        assert_string_equal(b->payload[i], payloads[i]);
    }
}

/* ---- Tests ---------------------------------------------------------------- */

/* Five clients, five channels: a message to each channel reaches its own
 * subscriber only (a second round, a marker per channel, shows nothing
 * else arrived in between). */
static void test_each_gets_its_own(void **state) {
    (void)state;
    aredis_client *c[NSUB];
    aredis_subscription *s[NSUB];
    static inbox box[NSUB];
    memset(box, 0, sizeof box);
    aredis_future *f[NSUB];
    char ch[NSUB][32];
    for (int i = 0; i < NSUB; i++) {
        snprintf(ch[i], sizeof ch[i], "pp:own:%d", i);
        c[i] = client();
        s[i] = new_sub(c[i], &box[i]);
    }
    /* All five subscribes in flight at once. */
    for (int i = 0; i < NSUB; i++)
        f[i] = subscribe_f(s[i], AREDIS_SUB_CHANNEL, ch[i]);
    await_ok_release(f, NSUB);

    /* One message per channel, pipelined, in reverse order for good measure. */
    aredis_future *p[NSUB];
    for (int i = NSUB - 1; i >= 0; i--)
        p[i] = aredis_future_command(g_pub, "PUBLISH %s msg-%d", ch[i], i);
    for (int i = 0; i < NSUB; i++) {
        assert_int_equal(aredis_await(p[i]), AREDIS_ERR_OK);
        ts_assert_int(aredis_future_reply(p[i]), 1);
        aredis_future_release(p[i]);
    }
    assert_int_equal(publish(g_pub, "pp:own:nobody", "x"), 0);
    for (int i = 0; i < NSUB; i++)
        assert_true(ts_wait_count(g_loop, &box[i].n, 1, 5000));
    for (int i = 0; i < NSUB; i++)
        assert_int_equal(publish(g_pub, ch[i], "end"), 1);
    for (int i = 0; i < NSUB; i++)
        assert_true(ts_wait_count(g_loop, &box[i].n, 2, 5000));
    for (int i = 0; i < NSUB; i++) {
        char want[16];
        snprintf(want, sizeof want, "msg-%d", i);
        const char *w[] = {want, "end"};
        expect_inbox(&box[i], ch[i], w, 2);
        aredis_sub_stats st;
        aredis_subscription_get_stats(s[i], &st);
        assert_int_equal(st.delivered, 2);
        assert_int_equal(st.dropped, 0);
    }
    for (int i = 0; i < NSUB; i++) {
        aredis_subscription_free(s[i]);
        aredis_client_free(c[i]);
    }
}

/* Five subscriptions on one client (one connection), one channel each, and
 * on the same client a sixth on a pattern covering them all: each channel
 * subscription gets only its own message, the pattern one gets all five
 * (as pmessage), nobody twice. */
static void test_five_on_one_client(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_subscription *s[NSUB + 1];
    static inbox box[NSUB + 1];
    memset(box, 0, sizeof box);
    aredis_future *f[NSUB + 1];
    char ch[NSUB][32];
    for (int i = 0; i < NSUB; i++) {
        snprintf(ch[i], sizeof ch[i], "pp:one:%d", i);
        s[i] = new_sub(c, &box[i]);
        f[i] = subscribe_f(s[i], AREDIS_SUB_CHANNEL, ch[i]);
    }
    s[NSUB] = new_sub(c, &box[NSUB]);
    f[NSUB] = subscribe_f(s[NSUB], AREDIS_SUB_PATTERN, "pp:one:*");
    await_ok_release(f, NSUB + 1);
    /* Its own commands meanwhile (RESP3: the same connection; RESP2: the
     * client's, the subscriptions having one of their own). */
    ts_cmd_ok(c, "SET pp:one:key v");

    for (int i = 0; i < NSUB; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "one-%d", i);
        /* The channel's subscriber and the pattern's: two receptions. */
        assert_int_equal(publish(g_pub, ch[i], msg), 2);
    }
    assert_true(ts_wait_count(g_loop, &box[NSUB].n, NSUB, 5000));
    for (int i = 0; i < NSUB; i++)
        assert_true(ts_wait_count(g_loop, &box[i].n, 1, 5000));
    /* A marker through the pattern only: everything before it is in. */
    assert_int_equal(publish(g_pub, "pp:one:marker", "m"), 1);
    assert_true(ts_wait_count(g_loop, &box[NSUB].n, NSUB + 1, 5000));
    for (int i = 0; i < NSUB; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "one-%d", i);
        const char *w[] = {msg};
        expect_inbox(&box[i], ch[i], w, 1);
        assert_int_equal(box[NSUB].kind[i], AREDIS_SUB_PATTERN);
        assert_string_equal(box[NSUB].pattern[i], "pp:one:*");
        assert_string_equal(box[NSUB].channel[i], ch[i]);
        assert_string_equal(box[NSUB].payload[i], msg);
    }
    assert_int_equal(box[NSUB].n, NSUB + 1);
    aredis_future *g = ts_cmd(c, "GET pp:one:key");
    ts_assert_str(aredis_future_reply(g), "v");
    aredis_future_release(g);
    for (int i = 0; i <= NSUB; i++)
        aredis_subscription_free(s[i]);
    aredis_client_free(c);
}

/* ---- Commands and publishes while subscribed ------------------------------ */

/* A reply checked against what its command must return. */
typedef struct slot {
    int calls;
    int ok;
    long long want; /* INTEGER replies */
    const char *status;
} slot;

static size_t g_done;

static void on_slot(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    slot *x = data;
    x->calls++;
    g_done++;
    if (err || !r) return;
    if (x->status)
        x->ok = r->type == AREDIS_REPLY_STATUS && strcmp(r->str, x->status) == 0;
    else
        x->ok = r->type == AREDIS_REPLY_INTEGER && r->integer == x->want;
}

/*
 * Every client i is subscribed to pp:mix:i, and from one loop turn issues N
 * rounds of SET pp:mix:i:j, PUBLISH pp:mix:<i+1> from-i-j and INCR
 * pp:mix:ctr:i, all five clients interleaved: every SET is OK, every INCR
 * counts 1..N in order, every PUBLISH reaches exactly one subscriber, and
 * subscriber i+1 receives exactly from-i-0..N-1 in order; the values read
 * back are each SET's own. The publisher's commands run in between too.
 */
static void test_commands_and_publishes_while_subscribed(void **state) {
    (void)state;
    enum { N = 60 };
    aredis_client *c[NSUB];
    aredis_subscription *s[NSUB];
    static inbox box[NSUB];
    memset(box, 0, sizeof box);
    aredis_future *f[NSUB];
    for (int i = 0; i < NSUB; i++) {
        char ch[32];
        snprintf(ch, sizeof ch, "pp:mix:%d", i);
        c[i] = client();
        s[i] = new_sub(c[i], &box[i]);
        f[i] = subscribe_f(s[i], AREDIS_SUB_CHANNEL, ch);
        aredis_future_release(ts_cmd(c[i], "DEL pp:mix:ctr:%d", i));
    }
    await_ok_release(f, NSUB);

    static slot set[NSUB][N], pub[NSUB][N], incr[NSUB][N], other[N];
    memset(set, 0, sizeof set);
    memset(pub, 0, sizeof pub);
    memset(incr, 0, sizeof incr);
    memset(other, 0, sizeof other);
    g_done = 0;
    for (int j = 0; j < N; j++) {
        for (int i = 0; i < NSUB; i++) {
            set[i][j].status = "OK";
            assert_int_equal(
                aredis_command(c[i], on_slot, &set[i][j], "SET pp:mix:%d:%d v-%d-%d", i, j, i, j),
                AREDIS_ERR_OK);
            pub[i][j].want = 1;
            assert_int_equal(aredis_command(c[i], on_slot, &pub[i][j],
                                            "PUBLISH pp:mix:%d from-%d-%d", (i + 1) % NSUB, i, j),
                             AREDIS_ERR_OK);
            incr[i][j].want = j + 1;
            assert_int_equal(aredis_command(c[i], on_slot, &incr[i][j], "INCR pp:mix:ctr:%d", i),
                             AREDIS_ERR_OK);
        }
        other[j].status = "OK";
        assert_int_equal(
            aredis_command(g_pub, on_slot, &other[j], "SET pp:mix:other:%d o-%d", j, j),
            AREDIS_ERR_OK);
    }
    size_t total = (size_t)NSUB * N * 3 + N;
    assert_true(ts_wait_count(g_loop, &g_done, total, 20000));
    for (int i = 0; i < NSUB; i++)
        assert_true(ts_wait_count(g_loop, &box[i].n, N, 20000));
    for (int i = 0; i < NSUB; i++)
        for (int j = 0; j < N; j++) {
            if (set[i][j].calls != 1 || !set[i][j].ok)
                fail_msg("client %d: SET %d: %d call(s), ok %d", i, j, set[i][j].calls,
                         set[i][j].ok);
            if (pub[i][j].calls != 1 || !pub[i][j].ok)
                fail_msg("client %d: PUBLISH %d: %d call(s), ok %d", i, j, pub[i][j].calls,
                         pub[i][j].ok);
            if (incr[i][j].calls != 1 || !incr[i][j].ok)
                fail_msg("client %d: INCR %d (want %lld): %d call(s), ok %d", i, j, incr[i][j].want,
                         incr[i][j].calls, incr[i][j].ok);
        }
    for (int j = 0; j < N; j++)
        assert_true(other[j].calls == 1 && other[j].ok);
    /* A marker per channel: nothing else arrived. */
    for (int i = 0; i < NSUB; i++) {
        char ch[32];
        snprintf(ch, sizeof ch, "pp:mix:%d", i);
        assert_int_equal(publish(g_pub, ch, "end"), 1);
    }
    for (int i = 0; i < NSUB; i++)
        assert_true(ts_wait_count(g_loop, &box[i].n, N + 1, 5000));
    for (int i = 0; i < NSUB; i++) {
        int from = (i + NSUB - 1) % NSUB;
        char ch[32];
        snprintf(ch, sizeof ch, "pp:mix:%d", i);
        static char want[N + 1][32];
        const char *w[N + 1];
        for (int j = 0; j < N; j++) {
            snprintf(want[j], sizeof want[j], "from-%d-%d", from, j);
            w[j] = want[j];
        }
        w[N] = "end";
        expect_inbox(&box[i], ch, w, N + 1);
    }
    /* Every value is its own SET's. */
    for (int i = 0; i < NSUB; i++) {
        aredis_future *g[N];
        for (int j = 0; j < N; j++)
            g[j] = aredis_future_command(c[i], "GET pp:mix:%d:%d", i, j);
        for (int j = 0; j < N; j++) {
            char want[32];
            snprintf(want, sizeof want, "v-%d-%d", i, j);
            assert_int_equal(aredis_await(g[j]), AREDIS_ERR_OK);
            ts_assert_str(aredis_future_reply(g[j]), want);
            aredis_future_release(g[j]);
        }
    }
    for (int i = 0; i < NSUB; i++) {
        aredis_subscription_free(s[i]);
        aredis_client_free(c[i]);
    }
}

/*
 * Subscribing and unsubscribing on some clients while the others' messages
 * stream: client 0 keeps receiving its whole stream, in order, while
 * clients 1..4 each subscribe, get one message and unsubscribe, again and
 * again; no message reaches a client after its unsubscribe was confirmed.
 */
typedef struct stream {
    size_t n;
    int bad;
} stream;

static void on_stream(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    stream *q = data;
    char want[32];
    int len = snprintf(want, sizeof want, "%zu", q->n);
    if (m->payload_len != (size_t)len || memcmp(m->payload, want, (size_t)len) != 0) q->bad++;
    q->n++;
}

static void test_churn_beside_a_stream(void **state) {
    (void)state;
    enum { N = 2000, ROUNDS = 10 };
    aredis_client *c0 = client();
    stream q = {0, 0};
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = on_stream;
    so.data = &q;
    aredis_subscription *s0 = aredis_subscription_new(c0, &so);
    assert_non_null(s0);
    aredis_future *f0 = subscribe_f(s0, AREDIS_SUB_CHANNEL, "pp:stream");
    await_ok_release(&f0, 1);
    aredis_client *c[NSUB - 1];
    aredis_subscription *s[NSUB - 1];
    static inbox box[NSUB - 1];
    memset(box, 0, sizeof box);
    for (int i = 0; i < NSUB - 1; i++) {
        c[i] = client();
        s[i] = new_sub(c[i], &box[i]);
    }
    /* The stream goes out in one go; the churn runs while it arrives. */
    for (int k = 0; k < N; k++)
        assert_int_equal(aredis_command(g_pub, NULL, NULL, "PUBLISH pp:stream %d", k),
                         AREDIS_ERR_OK);
    for (int r = 0; r < ROUNDS; r++) {
        aredis_future *f[NSUB - 1];
        char ch[NSUB - 1][32];
        for (int i = 0; i < NSUB - 1; i++) {
            snprintf(ch[i], sizeof ch[i], "pp:churn:%d", i);
            f[i] = subscribe_f(s[i], AREDIS_SUB_CHANNEL, ch[i]);
        }
        await_ok_release(f, NSUB - 1);
        for (int i = 0; i < NSUB - 1; i++) {
            char msg[16];
            snprintf(msg, sizeof msg, "r%d", r);
            assert_int_equal(publish(g_pub, ch[i], msg), 1);
        }
        for (int i = 0; i < NSUB - 1; i++) {
            assert_true(ts_wait_count(g_loop, &box[i].n, (size_t)r + 1, 5000));
            const char *name = ch[i];
            f[i] = aredis_subscription_unsubscribe_f(s[i], AREDIS_SUB_CHANNEL, 1, &name, NULL);
            assert_non_null(f[i]);
        }
        await_ok_release(f, NSUB - 1);
        for (int i = 0; i < NSUB - 1; i++)
            assert_int_equal(publish(g_pub, ch[i], "late"), 0);
    }
    assert_true(ts_wait_count(g_loop, &q.n, N, 20000));
    assert_int_equal(q.bad, 0);
    assert_int_equal(q.n, N);
    for (int i = 0; i < NSUB - 1; i++) {
        assert_int_equal(box[i].n, ROUNDS);
        for (int r = 0; r < ROUNDS; r++) {
            char msg[16];
            snprintf(msg, sizeof msg, "r%d", r);
            assert_string_equal(box[i].payload[r], msg);
        }
        aredis_subscription_free(s[i]);
        aredis_client_free(c[i]);
    }
    aredis_subscription_free(s0);
    aredis_client_free(c0);
}

static int run_all(int proto) {
    g_proto = proto;
    printf("# RESP%d\n", proto);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_gets_its_own),
        cmocka_unit_test(test_five_on_one_client),
        cmocka_unit_test(test_commands_and_publishes_while_subscribed),
        cmocka_unit_test(test_churn_beside_a_stream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

int main(void) { return run_all(3) | run_all(2); }
