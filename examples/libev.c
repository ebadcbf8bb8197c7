/*
 * libev — aredis inside an application that already runs a libev loop.
 *
 * The application owns the ev loop and its own watchers (here a repeating
 * timer standing in for its real work); aredis is given the same loop
 * through the header-only adapter and its commands run alongside: no
 * second thread, no second loop. Each timer tick INCRs a counter with a
 * callback; after five ticks the application stops and cleans up.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_libev   (that is the default)
 *
 * Built only where libev's headers are installed (Debian: libev-dev).
 * Exits 0 when the five INCRs counted 1 to 5.
 */
#include <aredis/aredis.h>
#include <aredis/adapters/libev.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    aredis_client *c;
    ev_timer tick;
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

static void on_tick(struct ev_loop *ev, ev_timer *t, int revents) {
    (void)revents;
    app *a = t->data;
    if (++a->ticks > 5 || a->failed) {
        ev_timer_stop(ev, t);
        aredis_command(a->c, NULL, NULL, "DEL %s", "example:libev:counter");
        aredis_client_disconnect(a->c); /* graceful: the DEL is still sent */
        return;
    }
    if (aredis_command(a->c, on_incr, a, "INCR %s", "example:libev:counter") != AREDIS_ERR_OK) {
        fprintf(stderr, "INCR refused: %s\n", aredis_call_error()->detail);
        a->failed = 1;
    }
}

int main(void) {
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    aredis_loop *loop = ev ? aredis_loop_libev(ev) : NULL;
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
    aredis_command(a.c, NULL, NULL, "DEL %s", "example:libev:counter"); /* start from 0 */

    /* The application's own work on the same loop: at once, then every 100 ms. */
    ev_timer_init(&a.tick, on_tick, 0., 0.1);
    a.tick.data = &a;
    ev_timer_start(ev, &a.tick);

    ev_run(ev, 0); /* returns when the timer and the client are done */

    aredis_client_free(a.c);
    aredis_loop_free(loop); /* never frees `ev` */
    ev_loop_destroy(ev);
    return a.failed || a.replies != 5 ? 1 : 0;
}
