/*
 * pubsub — a subscription with a handler, a pattern, and the futures
 * style: messages keep arriving across server restarts (the subscription
 * is replayed after every reconnect), and ordinary commands keep working
 * on the same RESP3 connection.
 *
 *   ./example_pubsub [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(int argc, char **argv) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    aredis_client *c = aredis_client_new(loop, &o);
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
        printf("subscribe failed: %s\n", e->detail);
        return 1;
    }
    aredis_future_release(f1);
    aredis_future_release(f2);

    /* Publishing from the same client: on RESP3 the subscribed connection
     * still runs every command. */
    aredis_future_release(aredis_future_command(c, "PUBLISH news %s", "hello"));
    aredis_future_release(aredis_future_command(c, "PUBLISH log.disk %s", "90% full"));
    aredis_future *last = aredis_future_command(c, "PUBLISH news %s", "bye");
    aredis_await(last);
    aredis_future_release(last);
    while (g_seen < 3 && aredis_loop_run_for(loop, 2000) == 1) {
    }

    /* 2. The futures style: no handler, next() resolves with each message. */
    aredis_subscription *q = aredis_subscription_new(c, NULL);
    const char *queue[] = {"jobs"};
    aredis_future *fq = aredis_subscription_subscribe_f(q, AREDIS_SUB_CHANNEL, 1, queue, NULL);
    aredis_await(fq);
    aredis_future_release(fq);
    aredis_future_release(aredis_future_command(c, "PUBLISH jobs %s", "job-1"));
    aredis_future *nx = aredis_subscription_next(q);
    if (aredis_await_for(nx, 5000) == AREDIS_ERR_OK) {
        aredis_message m;
        if (aredis_message_parse(aredis_future_reply(nx), &m) == 0)
            printf("next(): %.*s on %.*s\n", (int)m.payload_len, m.payload, (int)m.channel_len,
                   m.channel);
    }
    aredis_future_release(nx);

    aredis_subscription_free(q);
    aredis_subscription_free(s);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return g_seen >= 3 ? 0 : 1;
}
