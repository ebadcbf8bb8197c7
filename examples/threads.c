/*
 * threads — one client, commands from four threads (aredis/threads.h,
 * docs/THREADS.md).
 *
 * The main thread owns the loop and the client and runs the loop. Four
 * worker threads issue commands through an aredis_shared: each INCRs a
 * counter of its own 1,000 times, waiting for every reply
 * (aredis_shared_call), then asks for the counter with a callback
 * (aredis_shared_command), which runs on the loop thread. The fourth
 * callback stops the loop.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_threads   (that is the default)
 *
 * Exits 0 when every counter reached 1,000.
 */
#include <aredis/aredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define WORKERS 4
#define INCRS 1000

typedef struct worker {
    aredis_shared *s;
    aredis_loop *loop;
    int id;
    int failed;
} worker;

static int g_reported; /* loop thread only */

/* On the loop thread, posted by a worker whose GET could not be issued. */
static void count_failure(void *loop, aredis_err code) {
    if (code == AREDIS_ERR_OK && ++g_reported == WORKERS) aredis_loop_stop(loop);
}

/* On the loop thread: the counter's final value. */
static void on_counter(aredis_shared *s, aredis_reply *r, const aredis_error *err, void *data) {
    worker *w = data;
    if (err) {
        fprintf(stderr, "worker %d: GET failed: %s\n", w->id, err->detail);
        w->failed = 1;
    } else {
        printf("worker %d: counter = %s\n", w->id, r->str ? r->str : "(nil)");
        if (!r->str || atoi(r->str) != INCRS) w->failed = 1;
    }
    if (++g_reported == WORKERS) aredis_loop_stop(aredis_client_loop(aredis_shared_client(s)));
}

static void *worker_main(void *arg) {
    worker *w = arg;
    for (int i = 0; i < INCRS; i++) {
        aredis_reply *r;
        aredis_error e;
        /* Waits for the reply (at most 2 s), which is then ours. */
        if (aredis_shared_call(w->s, 2000, &r, &e, "INCR example:threads:%d", w->id) !=
            AREDIS_ERR_OK) {
            fprintf(stderr, "worker %d: INCR failed: %s\n", w->id, e.detail);
            aredis_reply_release(r); /* a server error reply, or NULL */
            w->failed = 1;
            break;
        }
        aredis_reply_release(r);
    }
    /* Called back on the loop thread instead of waiting. */
    if (aredis_shared_command(w->s, on_counter, w, "GET example:threads:%d", w->id) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "worker %d: %s\n", w->id, aredis_call_error()->detail);
        w->failed = 1;
        /* Count it all the same: any thread may post a function to the loop. */
        aredis_loop_post(w->loop, count_failure, NULL);
    }
    return NULL;
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

    aredis_future *ready = aredis_future_ready(c);
    if (aredis_await(ready) != AREDIS_ERR_OK) {
        fprintf(stderr, "cannot connect: %s\n", aredis_future_error(ready)->detail);
        return 1;
    }
    aredis_future_release(ready);
    aredis_future_release(aredis_future_command(c, "DEL example:threads:0 example:threads:1 "
                                                   "example:threads:2 example:threads:3"));

    /* Made on the loop thread; used from the workers. */
    aredis_shared *s = aredis_shared_new(c);
    worker w[WORKERS];
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (worker){s, loop, i, 0};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }

    aredis_loop_run(loop); /* until the fourth counter is in */

    int failed = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
        failed |= w[i].failed;
    }
    /* Workers first, then the shared object, the client, the loop. */
    aredis_shared_free(s);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return failed;
}
