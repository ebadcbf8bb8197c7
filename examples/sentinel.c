/*
 * sentinel — a client that finds its primary through Redis Sentinel and
 * follows failovers with no change to the application: it INCRs a counter
 * five times a second and says where it is connected whenever that
 * changes. Kill the primary (or run SENTINEL FAILOVER mymaster on a
 * sentinel) while it runs: a few INCRs in flight fail, then it carries on
 * on the new primary.
 *
 *   REDIS_SENTINELS=127.0.0.1:26379,127.0.0.1:26380 ./example_sentinel
 *   ./example_sentinel 127.0.0.1:26379 127.0.0.1:26380     (the same)
 *
 * With neither, the one sentinel 127.0.0.1:26379. Environment, too:
 * SENTINEL_MASTER (default mymaster), SENTINEL_PASSWORD and REDIS_PASSWORD
 * (none), DURATION_S (default 60; Ctrl-C, SIGINT or SIGTERM, stops it
 * sooner). Exits 0 when, at the end, the client is connected with INCRs
 * acknowledged since its last (re)connect.
 */
#include <aredis/aredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1; /* the next tick stops the loop: nothing else is safe here */
}

typedef struct app {
    aredis_client *c;
    char where[128];
    long ok, failed, ok_here; /* ok_here: since the last connect */
} app;

static void on_connect(aredis_client *c, void *data) {
    app *a = data;
    char host[100];
    int port = 0;
    if (aredis_sentinel_current(c, host, sizeof host, &port) != AREDIS_ERR_OK) return;
    char now[128];
    snprintf(now, sizeof now, "%s:%d", host, port);
    printf("connected to the primary at %s%s\n", now,
           !a->where[0]                 ? ""
           : strcmp(a->where, now) != 0 ? " (moved: a failover was followed)"
                                        : " (again)");
    snprintf(a->where, sizeof a->where, "%s", now);
    a->ok_here = 0;
}

static void on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    printf("connection: %s: %s\n", aredis_err_name(err->code), err->detail);
}

static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    app *a = data;
    if (err) {
        a->failed++;
        printf("INCR failed: %s\n", err->detail);
        return;
    }
    if (a->ok_here++ == 0) printf("first INCR on %s -> %lld\n", a->where, r->integer);
    if (++a->ok % 25 == 0)
        printf("counter at %lld (%ld INCRs, %ld failed)\n", r->integer, a->ok, a->failed);
}

static void tick(void *data) {
    app *a = data;
    if (g_stop) {
        aredis_loop_stop(aredis_client_loop(a->c));
        return;
    }
    /* Issued whatever the state: while the client reconnects to a new
     * primary, it waits (queue_during_reconnect) and goes there. */
    if (aredis_command(a->c, on_incr, a, "INCR %s", "example:sentinel:counter") != AREDIS_ERR_OK)
        printf("INCR refused: %s\n", aredis_call_error()->detail);
}

static void stop(void *data) { aredis_loop_stop(data); }

int main(int argc, char **argv) {
    const char *master = getenv("SENTINEL_MASTER");
    const char *seconds = getenv("DURATION_S");
    const char *env = getenv("REDIS_SENTINELS");
    aredis_loop *loop = aredis_loop_new();
    app a = {0};

    /* The sentinels: the arguments, else $REDIS_SENTINELS split at commas. */
    static char list[1024];
    const char *sentinels[16] = {"127.0.0.1:26379"};
    size_t n = 1;
    if (argc > 1) {
        for (n = 0; n < 16 && (int)n < argc - 1; n++)
            sentinels[n] = argv[n + 1];
    } else if (env && *env) {
        snprintf(list, sizeof list, "%s", env);
        n = 0;
        for (char *p = strtok(list, ","); p && n < 16; p = strtok(NULL, ","))
            sentinels[n++] = p;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a pipe */

    aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;
    so.sentinels = sentinels;
    so.nsentinels = n;
    so.master_name = master ? master : "mymaster";
    so.sentinel_password = getenv("SENTINEL_PASSWORD");
    so.node.password = getenv("REDIS_PASSWORD");
    so.node.wait_for_first_connect = 1; /* started before the servers: wait */
    so.node.on_connect = on_connect;
    so.node.on_error = on_error;
    so.node.cb_data = &a;
    a.c = aredis_sentinel_client_new(loop, &so);
    if (!a.c) {
        fprintf(stderr, "sentinel client: %s\n", aredis_call_error()->detail);
        return 2;
    }
    aredis_client_connect(a.c);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    aredis_timer *t = aredis_timer_new(loop, tick, &a);
    aredis_timer *end = aredis_timer_new(loop, stop, loop);
    aredis_timer_start(t, 0, 200);
    aredis_timer_start(end, (uint64_t)(seconds ? atoi(seconds) : 60) * 1000, 0);
    aredis_loop_run(loop);

    aredis_sentinel_stats st;
    aredis_sentinel_get_stats(a.c, &st);
    printf(
        "%ld INCRs, %ld failed; %llu lookups, %llu failovers followed (%llu by +switch-master)\n",
        a.ok, a.failed, (unsigned long long)st.lookups, (unsigned long long)st.moves,
        (unsigned long long)st.relocations);
    int back = aredis_client_state(a.c) == AREDIS_STATE_READY && a.ok_here > 0;
    if (!back) fprintf(stderr, "not connected with INCRs going through at the end\n");
    aredis_timer_free(t);
    aredis_timer_free(end);
    aredis_client_free(a.c);
    aredis_loop_free(loop);
    return back ? 0 : 1;
}
