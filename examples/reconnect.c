/*
 * reconnect — a client riding through a server restart. Run it, then restart
 * redis-server (or kill it and start it again): the counter keeps going, the
 * events are printed, and no write is silently applied twice.
 *
 *   ./example_reconnect [port] [seconds]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

static void on_connect(aredis_client *c, void *data) {
    (void)c;
    (void)data;
    printf("connected\n");
}

static void on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    printf("disconnected: %s (%s)\n", err->detail, aredis_err_name(err->code));
}

static void on_attempt(aredis_client *c, unsigned attempt, uint32_t delay_ms, void *data) {
    (void)c;
    (void)data;
    printf("reconnect attempt %u in %u ms\n", attempt, delay_ms);
}

static long ok, failed;

static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    if (err) {
        /* At most once: it may or may not have run; it was not re-sent. */
        failed++;
        printf("INCR failed: %s\n", err->detail);
    } else if (++ok % 10 == 0) {
        printf("counter = %lld\n", r->integer);
    }
}

static void tick(void *arg) { aredis_command(arg, on_incr, NULL, "INCR example:reconnect"); }

static void stop(void *arg) { aredis_loop_stop(arg); }

int main(int argc, char **argv) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    o.request_timeout_ms = 2000;     /* queued time counts */
    o.reconnect_delay_ms = 100;      /* 100, 200, 400, ... */
    o.max_reconnect_delay_ms = 2000; /* capped at 2 s */
    o.max_queue_size = 1000;         /* bounded while disconnected */
    o.on_connect = on_connect;
    o.on_disconnect = on_disconnect;
    o.on_reconnect_attempt = on_attempt;
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);

    aredis_timer *t = aredis_timer_new(loop, tick, c);
    aredis_timer_start(t, 100, 100); /* an INCR every 100 ms */
    aredis_timer *end = aredis_timer_new(loop, stop, loop);
    aredis_timer_start(end, (uint64_t)(argc > 2 ? atoi(argv[2]) : 30) * 1000, 0);
    aredis_loop_run(loop);

    printf("%ld INCRs acknowledged, %ld failed\n", ok, failed);
    aredis_timer_free(t);
    aredis_timer_free(end);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
