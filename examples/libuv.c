/*
 * libuv — aredis inside an application that already runs a libuv loop.
 *
 * The application owns the uv loop and its own handles (here a repeating
 * timer standing in for its real work); aredis is given the same loop
 * through the header-only adapter and its commands run alongside: no
 * second thread, no second loop. Each timer tick INCRs a counter with a
 * callback; after five ticks the application stops and cleans up.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_libuv   (that is the default)
 *
 * Built only where libuv's headers are installed (Debian: libuv1-dev).
 * Exits 0 when the five INCRs counted 1 to 5.
 */
#include <aredis/aredis.h>
#include <aredis/adapters/libuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
    aredis_client *c;
    uv_timer_t tick;
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

static void on_tick(uv_timer_t *t) {
    app *a = t->data;
    if (++a->ticks > 5 || a->failed) {
        uv_timer_stop(t);
        aredis_command(a->c, NULL, NULL, "DEL %s", "example:libuv:counter");
        aredis_client_disconnect(a->c); /* graceful: the DEL is still sent */
        return;
    }
    if (aredis_command(a->c, on_incr, a, "INCR %s", "example:libuv:counter") != AREDIS_ERR_OK) {
        fprintf(stderr, "INCR refused: %s\n", aredis_call_error()->detail);
        a->failed = 1;
    }
}

int main(void) {
    uv_loop_t *uv = uv_default_loop();
    aredis_loop *loop = aredis_loop_libuv(uv);
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
    aredis_command(a.c, NULL, NULL, "DEL %s", "example:libuv:counter"); /* start from 0 */

    /* The application's own work on the same loop. */
    uv_timer_init(uv, &a.tick);
    a.tick.data = &a;
    uv_timer_start(&a.tick, on_tick, 0, 100);

    uv_run(uv, UV_RUN_DEFAULT); /* returns when the timer and the client are done */

    aredis_client_free(a.c);
    aredis_loop_free(loop); /* never frees `uv` */
    uv_close((uv_handle_t *)&a.tick, NULL);
    uv_run(uv, UV_RUN_DEFAULT); /* let libuv finish closing */
    uv_loop_close(uv);
    return a.failed || a.replies != 5 ? 1 : 0;
}
