/*
 * reconnect — a client riding through a server restart. Run it, then restart
 * redis-server (or kill it and start it again): the counter keeps going, the
 * events are printed, and no write is silently applied twice.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_reconnect [seconds]
 *
 * REDIS_URL defaults to redis://127.0.0.1:6379; it runs for `seconds`
 * (default 30), or until Ctrl-C (SIGINT or SIGTERM). Exits 0 when, at the
 * end, the client is connected with INCRs acknowledged since its last
 * (re)connect: a server still down when the time is up is a failure.
 */
#include <aredis/aredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static long ok, failed, ok_since_connect;
static int connects;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1; /* the next tick stops the loop: nothing else is safe here */
}

static void on_connect(aredis_client *c, void *data) {
    (void)c;
    (void)data;
    printf("connected (%d)\n", ++connects);
    ok_since_connect = 0;
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

static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    if (err) {
        /* At most once: it may or may not have run; it was not re-sent. */
        failed++;
        printf("INCR failed: %s\n", err->detail);
        return;
    }
    if (ok_since_connect++ == 0) printf("first INCR since connected -> %lld\n", r->integer);
    if (++ok % 10 == 0) printf("counter = %lld\n", r->integer);
}

static void tick(void *arg) {
    aredis_client *c = arg;
    if (g_stop) {
        aredis_loop_stop(aredis_client_loop(c));
        return;
    }
    aredis_command(c, on_incr, NULL, "INCR example:reconnect");
}

static void stop(void *arg) { aredis_loop_stop(arg); }

int main(int argc, char **argv) {
    const char *url = getenv("REDIS_URL");
    int seconds = argc > 1 ? atoi(argv[1]) : 30;
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        return 2;
    }
    aredis_uri_apply(uri, &o);
    o.request_timeout_ms = 2000;     /* queued time counts */
    o.reconnect_delay_ms = 100;      /* 100, 200, 400, ... */
    o.max_reconnect_delay_ms = 2000; /* capped at 2 s */
    o.max_queue_size = 1000;         /* bounded while disconnected */
    o.on_connect = on_connect;
    o.on_disconnect = on_disconnect;
    o.on_reconnect_attempt = on_attempt;
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a pipe */
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    aredis_timer *t = aredis_timer_new(loop, tick, c);
    aredis_timer_start(t, 100, 100); /* an INCR every 100 ms */
    aredis_timer *end = aredis_timer_new(loop, stop, loop);
    aredis_timer_start(end, (uint64_t)(seconds > 0 ? seconds : 1) * 1000, 0);
    aredis_loop_run(loop);

    printf("%ld INCRs acknowledged, %ld failed, %d connects\n", ok, failed, connects);
    int back = aredis_client_state(c) == AREDIS_STATE_READY && ok_since_connect > 0;
    if (!back) fprintf(stderr, "not connected with INCRs going through at the end\n");
    aredis_timer_free(t);
    aredis_timer_free(end);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return back ? 0 : 1;
}
