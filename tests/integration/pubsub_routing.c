/*
 * Reply routing with pub/sub traffic (src/client/push.c), one scripted
 * server per rule, so the bytes are exactly the ones under test:
 *
 *   - RESP3: a message push, an unsolicited confirmation push and another
 *     push arriving before a GET's reply are nobody's reply: the GET gets
 *     its own, the other push goes to on_push, and with no subscription the
 *     message is dropped.
 *   - RESP3: a message between the two confirmations of SUBSCRIBE a b goes
 *     to the subscription; the call completes with the last confirmation;
 *     the GET behind it gets its own reply.
 *   - RESP2 (shared): a message array while a PING is owed goes to the
 *     subscription, the PING gets ["pong", ""].
 *   - RESP2: an array shaped like a message that answers a command issued
 *     before the SUBSCRIBE is that command's reply, not a message.
 *   - An error reply to SUBSCRIBE a b ends the call at once: the GET after
 *     it gets its own reply, not the shifted one.
 *   - A confirmation for a SUBSCRIBE never written (the server's own) is not
 *     matched to it, nor is one of another kind (a dropped shard channel)
 *     while a SUBSCRIBE is owed.
 *   - RESP2: a leftover sunsubscribe confirmation (the server dropped the
 *     channel just as our SUNSUBSCRIBE of it was owed) is never a reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_server.h"
#include "rec.h"
#include "ts.h"

#define WAIT_MS 5000

typedef struct run {
    ts_fake *f;
    aredis_loop *loop;
    aredis_client *c;
    aredis_subscription *s;
    size_t msgs, pushes;
    char last_payload[64];
} run;

static void on_push(aredis_client *c, aredis_reply *push, void *data) {
    (void)c;
    (void)push;
    ((run *)data)->pushes++;
}

static void on_msg(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    run *r = data;
    snprintf(r->last_payload, sizeof r->last_payload, "%.*s", (int)m->payload_len, m->payload);
    r->msgs++;
}

/* Start the fake (its script already added), connect, make a shared
 * subscription with a recording handler. */
static void start(run *r, int resp2) {
    ts_fake_start(r->f);
    r->loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(r->f);
    o.reconnect = 0;
    o.on_push = on_push;
    o.cb_data = r;
    r->c = ts_connect(r->loop, &o);
    assert_int_equal(aredis_client_protocol(r->c), resp2 ? 2 : 3);
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = on_msg;
    so.data = r;
    so.connection = AREDIS_SUB_SHARED;
    r->s = aredis_subscription_new(r->c, &so);
    assert_non_null(r->s);
}

static void stop(run *r) {
    aredis_subscription_free(r->s);
    aredis_client_free(r->c);
    aredis_loop_free(r->loop);
    ts_fake_stop(r->f);
}

static void subscribe_ab(run *r, ts_rec *x) {
    const char *names[] = {"a", "b"};
    assert_int_equal(
        aredis_subscription_subscribe(r->s, AREDIS_SUB_CHANNEL, 2, names, NULL, ts_on_rec, x),
        AREDIS_ERR_OK);
}

static void test_pushes_before_a_reply(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello3(r.f);
    ts_fake_reply(r.f, ">3\r\n$7\r\nmessage\r\n$1\r\nz\r\n$2\r\nhi\r\n"
                       ">3\r\n$12\r\nsunsubscribe\r\n$1\r\nz\r\n:0\r\n"
                       ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
                       "$3\r\nval\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 0);
    ts_rec get = {0};
    assert_int_equal(aredis_command(r.c, ts_on_rec, &get, "GET k"), AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &get, WAIT_MS);
    assert_int_equal(get.code, AREDIS_ERR_OK);
    ts_assert_str(get.r, "val");
    assert_int_equal(r.pushes, 1); /* the invalidation only */
    assert_int_equal(r.msgs, 0);   /* no subscription holds z */
    ts_rec_clear(&get);
    stop(&r);
}

static void test_message_between_confirmations(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello3(r.f);
    ts_fake_read_cmd(r.f, 2); /* SUBSCRIBE a b; GET k */
    ts_fake_send_str(r.f, ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                          ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nfirst\r\n"
                          ">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                          "$3\r\nval\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 0);
    ts_rec sub = {0}, get = {0};
    subscribe_ab(&r, &sub);
    assert_int_equal(aredis_command(r.c, ts_on_rec, &get, "GET k"), AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &get, WAIT_MS);
    ts_rec_wait(r.loop, &sub, WAIT_MS);
    assert_int_equal(sub.code, AREDIS_ERR_OK);
    assert_int_equal(sub.r->type, AREDIS_REPLY_PUSH);
    ts_assert_str(sub.r->element[1], "b");
    assert_int_equal(sub.calls, 1);
    assert_int_equal(get.code, AREDIS_ERR_OK);
    ts_assert_str(get.r, "val");
    assert_int_equal(r.msgs, 1);
    assert_string_equal(r.last_payload, "first");
    assert_int_equal(r.pushes, 0);
    ts_rec_clear(&sub);
    ts_rec_clear(&get);
    stop(&r);
}

static void test_resp2_message_while_ping_owed(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello2(r.f);
    ts_fake_reply(r.f, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    ts_fake_reply(r.f, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nm1\r\n"
                       "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 1);
    const char *a = "a";
    ts_rec sub = {0}, ping = {0};
    assert_int_equal(
        aredis_subscription_subscribe(r.s, AREDIS_SUB_CHANNEL, 1, &a, NULL, ts_on_rec, &sub),
        AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &sub, WAIT_MS);
    assert_int_equal(sub.code, AREDIS_ERR_OK);
    /* Subscribed on RESP2: GET refused, PING allowed. */
    assert_int_equal(aredis_command(r.c, NULL, NULL, "GET k"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis_command(r.c, ts_on_rec, &ping, "PING"), AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &ping, WAIT_MS);
    assert_int_equal(ping.code, AREDIS_ERR_OK);
    ts_assert_array(ping.r, 2);
    ts_assert_str(ping.r->element[0], "pong");
    assert_int_equal(r.msgs, 1);
    assert_string_equal(r.last_payload, "m1");
    ts_rec_clear(&sub);
    ts_rec_clear(&ping);
    stop(&r);
}

static void test_resp2_message_shaped_reply(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello2(r.f);
    ts_fake_read_cmd(r.f, 2); /* LRANGE; SUBSCRIBE a */
    ts_fake_send_str(r.f, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\nlist\r\n"
                          "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 1);
    ts_rec lr = {0}, sub = {0};
    assert_int_equal(aredis_command(r.c, ts_on_rec, &lr, "LRANGE l 0 -1"), AREDIS_ERR_OK);
    const char *a = "a";
    assert_int_equal(
        aredis_subscription_subscribe(r.s, AREDIS_SUB_CHANNEL, 1, &a, NULL, ts_on_rec, &sub),
        AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &sub, WAIT_MS);
    ts_rec_wait(r.loop, &lr, WAIT_MS);
    assert_int_equal(lr.code, AREDIS_ERR_OK);
    ts_assert_array(lr.r, 3);
    ts_assert_str(lr.r->element[2], "list");
    assert_int_equal(sub.code, AREDIS_ERR_OK);
    assert_int_equal(r.msgs, 0);
    ts_rec_clear(&lr);
    ts_rec_clear(&sub);
    stop(&r);
}

static void test_error_ends_subscribe(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello3(r.f);
    ts_fake_read_cmd(r.f, 2); /* SUBSCRIBE a b; GET k */
    ts_fake_send_str(r.f, "-NOPERM this user has no permissions to access the 'b' channel\r\n"
                          "$3\r\nval\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 0);
    ts_rec sub = {0}, get = {0};
    subscribe_ab(&r, &sub);
    assert_int_equal(aredis_command(r.c, ts_on_rec, &get, "GET k"), AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &get, WAIT_MS);
    ts_rec_wait(r.loop, &sub, WAIT_MS);
    assert_int_equal(sub.code, AREDIS_ERR_SERVER);
    assert_string_equal(sub.prefix, "NOPERM");
    assert_int_equal(get.code, AREDIS_ERR_OK);
    ts_assert_str(get.r, "val");
    assert_int_equal(aredis_subscription_count(r.s, AREDIS_SUB_CHANNEL), 0);
    ts_rec_clear(&sub);
    ts_rec_clear(&get);
    stop(&r);
}

/* A server's own confirmation arriving before our SUBSCRIBE was written:
 * the GET's reply is matched, the confirmation goes nowhere near the
 * SUBSCRIBE issued from the GET's callback. */
typedef struct chain {
    run *r;
    ts_rec get, sub;
} chain;

static void get_then_subscribe(aredis_client *c, aredis_reply *rep, const aredis_error *err,
                               void *data) {
    chain *ch = data;
    ts_on_rec(c, rep, err, &ch->get);
    const char *a = "a";
    assert_int_equal(aredis_subscription_subscribe(ch->r->s, AREDIS_SUB_CHANNEL, 1, &a, NULL,
                                                   ts_on_rec, &ch->sub),
                     AREDIS_ERR_OK);
}

static void test_confirmation_not_written_yet(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello3(r.f);
    /* The GET's reply and, in the same write, a confirmation for "a" that
     * no written command asked for. */
    ts_fake_reply(r.f, "$3\r\nval\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    ts_fake_reply(r.f, ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:7\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 0);
    chain ch;
    memset(&ch, 0, sizeof ch);
    ch.r = &r;
    assert_int_equal(aredis_command(r.c, get_then_subscribe, &ch, "GET k"), AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &ch.sub, WAIT_MS);
    ts_assert_str(ch.get.r, "val");
    assert_int_equal(ch.sub.code, AREDIS_ERR_OK);
    ts_assert_int(ch.sub.r->element[2], 7); /* its own confirmation, the second */
    ts_rec_clear(&ch.get);
    ts_rec_clear(&ch.sub);
    stop(&r);
}

/* A confirmation of another kind (the server dropping a shard channel)
 * while a SUBSCRIBE is owed is not counted as the SUBSCRIBE's. */
static void test_other_kind_not_counted(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello3(r.f);
    ts_fake_reply(r.f, ">3\r\n$12\r\nsunsubscribe\r\n$1\r\nx\r\n:0\r\n"
                       ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                       ">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    ts_fake_reply(r.f, "$3\r\nval\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 0);
    ts_rec sub = {0}, get = {0};
    subscribe_ab(&r, &sub);
    ts_rec_wait(r.loop, &sub, WAIT_MS);
    assert_int_equal(sub.code, AREDIS_ERR_OK);
    ts_assert_str(sub.r->element[1], "b"); /* both of its own, not the sunsubscribe */
    assert_int_equal(aredis_command(r.c, ts_on_rec, &get, "GET k"), AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &get, WAIT_MS);
    ts_assert_str(get.r, "val");
    ts_rec_clear(&sub);
    ts_rec_clear(&get);
    stop(&r);
}

/* RESP2: the server drops a shard channel on its own just as our
 * SUNSUBSCRIBE of it is owed: its confirmation is taken for the call's, and
 * the call's own, arriving once nothing is subscribed any more, must not be
 * handed to the PING behind it. */
static void test_resp2_leftover_sunsubscribe(void **state) {
    (void)state;
    run r = {0};
    r.f = ts_fake_new();
    ts_fake_hello2(r.f);
    ts_fake_reply(r.f, "*3\r\n$10\r\nssubscribe\r\n$1\r\nx\r\n:1\r\n");
    ts_fake_read_cmd(r.f, 2); /* SUNSUBSCRIBE x; PING */
    ts_fake_send_str(r.f, "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nx\r\n:0\r\n"
                          "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nx\r\n:0\r\n"
                          "+PONG\r\n");
    ts_fake_wait_eof(r.f, 10000);
    start(&r, 1);
    const char *x = "x";
    ts_rec sub = {0}, unsub = {0}, ping = {0};
    assert_int_equal(
        aredis_subscription_subscribe(r.s, AREDIS_SUB_SHARD, 1, &x, NULL, ts_on_rec, &sub),
        AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &sub, WAIT_MS);
    assert_int_equal(sub.code, AREDIS_ERR_OK);
    assert_int_equal(
        aredis_subscription_unsubscribe(r.s, AREDIS_SUB_SHARD, 1, &x, NULL, ts_on_rec, &unsub),
        AREDIS_ERR_OK);
    assert_int_equal(aredis_command(r.c, ts_on_rec, &ping, "PING"), AREDIS_ERR_OK);
    ts_rec_wait(r.loop, &ping, WAIT_MS);
    ts_rec_wait(r.loop, &unsub, WAIT_MS);
    assert_int_equal(unsub.code, AREDIS_ERR_OK);
    assert_int_equal(ping.code, AREDIS_ERR_OK);
    ts_assert_status(ping.r, "PONG");
    ts_rec_clear(&sub);
    ts_rec_clear(&unsub);
    ts_rec_clear(&ping);
    stop(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pushes_before_a_reply),
        cmocka_unit_test(test_message_between_confirmations),
        cmocka_unit_test(test_resp2_message_while_ping_owed),
        cmocka_unit_test(test_resp2_message_shaped_reply),
        cmocka_unit_test(test_error_ends_subscribe),
        cmocka_unit_test(test_confirmation_not_written_yet),
        cmocka_unit_test(test_other_kind_not_counted),
        cmocka_unit_test(test_resp2_leftover_sunsubscribe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
