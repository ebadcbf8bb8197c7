/*
 * libevent — aredis inside an application that already runs a libevent
 * event_base.
 *
 * The application owns the base and its own events (here a persistent
 * timer standing in for its real work); aredis is given the same base
 * through the header-only adapter and its commands run alongside: no
 * second thread, no second loop. Each timer tick INCRs a counter with a
 * callback; after five ticks the application stops and cleans up.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_libevent   (that is the default)
 *
 * Built only where libevent's headers are installed (Debian:
 * libevent-dev). A program that also calls aredis from other threads
 * needs evthread_use_pthreads() first (aredis/adapters/libevent.h).
 * Exits 0 when the five INCRs counted 1 to 5.
 */
#include <aredis/aredis.h>
#include <aredis/adapters/libevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    aredis_client *c;
    struct event *tick;
    int ticks, replies, failed;
} app;

static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    app *a = data;
    a->replies++;
    if (err) {
        a->failed = 1;
        fprintf(stderr, "INCR failed: %s\n", err->detail);
    } else if (r->integer != a->replies) {
        a->failed = 1;
        fprintf(stderr, "INCR -> %lld, expected %d\n", r->integer, a->replies);
    } else {
        printf("tick %d: counter = %lld\n", a->replies, r->integer);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    app *a = arg;
    if (++a->ticks > 5 || a->failed) {
        event_del(a->tick);
        aredis_command(a->c, NULL, NULL, "DEL %s", "example:libevent:counter");
        aredis_client_disconnect(a->c); /* graceful: the DEL is still sent */
        return;
    }
    if (aredis_command(a->c, on_incr, a, "INCR %s", "example:libevent:counter") != AREDIS_ERR_OK) {
        fprintf(stderr, "INCR refused: %s\n", aredis_call_error()->detail);
        a->failed = 1;
    }
}

int main(void) {
    struct event_base *base = event_base_new();
    aredis_loop *loop = base ? aredis_loop_libevent(base) : NULL;
    aredis_options o = AREDIS_OPTIONS_INIT;
    const char *url = getenv("REDIS_URL");
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        return 2;
    }
    aredis_uri_apply(uri, &o);
    app a = {0};
    a.c = loop ? aredis_client_new(loop, &o) : NULL;
    aredis_uri_free(uri);
    if (!a.c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(a.c);
    aredis_command(a.c, NULL, NULL, "DEL %s", "example:libevent:counter"); /* start from 0 */

    /* The application's own work on the same base: every 100 ms. */
    struct timeval every = {0, 100 * 1000};
    a.tick = event_new(base, -1, EV_PERSIST, on_tick, &a);
    event_add(a.tick, &every);

    event_base_dispatch(base); /* returns when the timer and the client are done */

    aredis_client_free(a.c);
    aredis_loop_free(loop); /* never frees `base` */
    event_free(a.tick);
    event_base_free(base);
    return a.failed || a.replies != 5 ? 1 : 0;
}
