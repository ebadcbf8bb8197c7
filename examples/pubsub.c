/*
 * pubsub — a subscription with a handler, a pattern, and the futures
 * style: messages keep arriving across server restarts (the subscription
 * is replayed after every reconnect), and ordinary commands keep working
 * on the same RESP3 connection.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_pubsub   (that is the default)
 *
 * Exits 0 when the three messages reached the handler and next() got the
 * fourth.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_seen;

static void on_message(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    (void)data;
    if (m->pattern)
        printf("[%.*s] %.*s: %.*s\n", (int)m->pattern_len, m->pattern, (int)m->channel_len,
               m->channel, (int)m->payload_len, m->payload);
    else
        printf("%.*s: %.*s\n", (int)m->channel_len, m->channel, (int)m->payload_len, m->payload);
    g_seen++;
}

static void on_event(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                     void *data) {
    (void)s;
    (void)data;
    if (ev == AREDIS_SUB_RESUBSCRIBED)
        printf("reconnected: subscribed again (messages sent meanwhile are lost)\n");
    else if (err)
        printf("subscription event %d: %s\n", (int)ev, err->detail);
}

int main(void) {
    const char *url = getenv("REDIS_URL");
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        return 2;
    }
    aredis_uri_apply(uri, &o);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);

    /* 1. A handler: every message of "news" and of the pattern "log.*". */
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = on_message;
    so.on_event = on_event;
    aredis_subscription *s = aredis_subscription_new(c, &so);
    const char *channels[] = {"news"};
    const char *patterns[] = {"log.*"};
    aredis_future *f1 = aredis_subscription_subscribe_f(s, AREDIS_SUB_CHANNEL, 1, channels, NULL);
    aredis_future *f2 = aredis_subscription_subscribe_f(s, AREDIS_SUB_PATTERN, 1, patterns, NULL);
    if (aredis_await(f1) != AREDIS_ERR_OK || aredis_await(f2) != AREDIS_ERR_OK) {
        const aredis_error *e =
            aredis_future_error(f1) ? aredis_future_error(f1) : aredis_future_error(f2);
        fprintf(stderr, "subscribe failed: %s\n", e->detail);
        return 1;
    }
    aredis_future_release(f1);
    aredis_future_release(f2);

    /* Publishing from the same client: on RESP3 the subscribed connection
     * still runs every command. */
    aredis_future_release(aredis_future_command(c, "PUBLISH news %s", "hello"));
    aredis_future_release(aredis_future_command(c, "PUBLISH log.disk %s", "90% full"));
    aredis_future *last = aredis_future_command(c, "PUBLISH news %s", "bye");
    if (aredis_await(last) != AREDIS_ERR_OK || aredis_future_reply(last)->integer != 1) {
        fprintf(stderr, "PUBLISH news did not reach its 1 subscriber\n");
        return 1;
    }
    aredis_future_release(last);
    for (int i = 0; i < 50 && g_seen < 3; i++) /* at most 5 s */
        aredis_loop_run_for(loop, 100);
    if (g_seen != 3) {
        fprintf(stderr, "%d of the 3 messages arrived\n", g_seen);
        return 1;
    }

    /* 2. The futures style: no handler, next() resolves with each message. */
    aredis_subscription *q = aredis_subscription_new(c, NULL);
    const char *queue[] = {"jobs"};
    aredis_future *fq = aredis_subscription_subscribe_f(q, AREDIS_SUB_CHANNEL, 1, queue, NULL);
    if (aredis_await(fq) != AREDIS_ERR_OK) {
        fprintf(stderr, "subscribe failed: %s\n", aredis_future_error(fq)->detail);
        return 1;
    }
    aredis_future_release(fq);
    aredis_future_release(aredis_future_command(c, "PUBLISH jobs %s", "job-1"));
    aredis_future *nx = aredis_subscription_next(q);
    aredis_message m;
    if (aredis_await_for(nx, 5000) != AREDIS_ERR_OK ||
        aredis_message_parse(aredis_future_reply(nx), &m) != 0) {
        fprintf(stderr, "next(): no message within 5 s\n");
        return 1;
    }
    printf("next(): %.*s on %.*s\n", (int)m.payload_len, m.payload, (int)m.channel_len, m.channel);
    if (m.payload_len != 5 || memcmp(m.payload, "job-1", 5) != 0) return 1;
    aredis_future_release(nx);

    aredis_subscription_free(q);
    aredis_subscription_free(s);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
