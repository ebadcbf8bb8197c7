/*
 * bench/threads.c — commands from other threads (aredis/threads.h): ops/s of
 * SET and GET issued through one aredis_shared from 1 thread and from 8,
 * side by side in one run, in both forms:
 *
 *   callback   aredis_shared_command, at most WINDOW commands in flight per
 *              thread (a semaphore: the callback, on the loop thread, gives
 *              a slot back);
 *   call       aredis_shared_call, one command at a time per thread, each
 *              waiting for its reply.
 *
 * One client, one loop, run by the main thread; the workers only issue.
 * Every command crosses to the loop thread through aredis_loop_post(); a
 * reply of the call form comes back through the handover post.
 *
 *   threads [-h HOST] [-p PORT] [-n COUNT] [-N CALL_COUNT] [-w WINDOW]
 *           [-t 1,8] [-s SIZE]
 *
 * COUNT (default 200,000) commands per callback run, CALL_COUNT (default
 * 50,000) per call run, split evenly between the threads. Nothing is
 * asserted; errors are counted and printed.
 */
#include <aredis/aredis.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define MAX_THREADS 64

typedef struct run run;

typedef struct worker {
    run *r;
    int t;
    long n;
    sem_t slots; /* callback form: free slots of the window */
    long errors; /* call form: failed calls */
} worker;

struct run {
    aredis_shared *s;
    aredis_loop *loop;
    int is_get, calls, window;
    const char *value;
    size_t value_len;
    atomic_long cb_errors; /* callback form: written on the loop thread, read after */
    int done;              /* workers finished (loop thread) */
    int nthreads;
    double t1;
};

/* Loop thread: a worker finished; the last stops the loop. */
static void worker_done(void *arg, aredis_err code) {
    run *r = arg;
    (void)code;
    if (++r->done == r->nthreads) {
        r->t1 = bench_now();
        aredis_loop_stop(r->loop);
    }
}

static void on_reply(aredis_shared *s, aredis_reply *reply, const aredis_error *err, void *data) {
    worker *w = data;
    (void)s;
    (void)reply;
    if (err) atomic_fetch_add_explicit(&w->r->cb_errors, 1, memory_order_relaxed);
    sem_post(&w->slots);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    run *r = w->r;
    char key[32];
    const char *argv[3];
    size_t argvlen[3];
    int argc = r->is_get ? 2 : 3;

    snprintf(key, sizeof key, "bench:threads:%d", w->t);
    argv[0] = r->is_get ? "GET" : "SET";
    argvlen[0] = 3;
    argv[1] = key;
    argvlen[1] = strlen(key);
    argv[2] = r->value;
    argvlen[2] = r->value_len;
    for (long i = 0; i < w->n; i++) {
        if (r->calls) {
            aredis_reply *reply = NULL;
            if (aredis_shared_call_argv(r->s, 0, &reply, NULL, argc, argv, argvlen) !=
                AREDIS_ERR_OK)
                w->errors++;
            aredis_reply_release(reply);
        } else {
            while (sem_wait(&w->slots) != 0) {
            }
            if (aredis_shared_command_argv(r->s, on_reply, w, argc, argv, argvlen) !=
                AREDIS_ERR_OK) {
                w->errors++;
                sem_post(&w->slots);
            }
        }
    }
    if (!r->calls) { /* every slot back: all replies in */
        for (int k = 0; k < r->window; k++)
            while (sem_wait(&w->slots) != 0) {
            }
    }
    aredis_loop_post(r->loop, worker_done, r);
    return NULL;
}

/* One run: n commands from nthreads threads. Returns ops/s, or -1. */
static double run_once(aredis_shared *s, aredis_loop *loop, int is_get, int calls, int window,
                       const char *value, size_t value_len, long n, int nthreads, long *errors) {
    static worker w[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    run r;

    memset(&r, 0, sizeof r);
    r.s = s;
    r.loop = loop;
    r.is_get = is_get;
    r.calls = calls;
    r.window = window;
    r.value = value;
    r.value_len = value_len;
    r.nthreads = nthreads;
    atomic_init(&r.cb_errors, 0);
    double t0 = bench_now();
    for (int t = 0; t < nthreads; t++) {
        w[t].r = &r;
        w[t].t = t;
        w[t].n = n / nthreads + (t < n % nthreads);
        w[t].errors = 0;
        sem_init(&w[t].slots, 0, (unsigned)window);
        if (pthread_create(&th[t], NULL, worker_main, &w[t]) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            exit(1);
        }
    }
    aredis_loop_run(loop); /* until the last worker's done post */
    *errors = atomic_load(&r.cb_errors);
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        sem_destroy(&w[t].slots);
        *errors += w[t].errors;
    }
    double secs = r.t1 - t0;
    return secs > 0 ? (double)n / secs : -1;
}

static void usage(void) {
    fprintf(stderr, "usage: threads [-h HOST] [-p PORT] [-n COUNT] [-N CALL_COUNT] [-w WINDOW]\n"
                    "               [-t 1,8] [-s SIZE]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *v;
    int port = 6379, window = 64;
    long n = 200000, ncall = 50000, size = 3, levels[8] = {1, 8};
    int nlevels = 2;

    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "-h")) || (v = bench_opt(argc, argv, &i, "--host")))
            host = v;
        else if ((v = bench_opt(argc, argv, &i, "-p")) || (v = bench_opt(argc, argv, &i, "--port")))
            port = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-n")))
            n = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "-N")))
            ncall = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "-w")))
            window = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-t")))
            nlevels = bench_parse_list(v, levels, 8);
        else if ((v = bench_opt(argc, argv, &i, "-s")))
            size = atol(v);
        else
            usage();
    }
    if (n < 1 || ncall < 1 || window < 1 || size < 0 || nlevels < 1) usage();
    for (int k = 0; k < nlevels; k++)
        if (levels[k] < 1 || levels[k] > MAX_THREADS) usage();

    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = host;
    o.port = port;
    o.request_timeout_ms = 30000;
    aredis_client *c = aredis_client_new(loop, &o);
    if (!c || aredis_client_connect(c) != AREDIS_ERR_OK) {
        fprintf(stderr, "threads: cannot make the client\n");
        return 1;
    }
    aredis_future *ready = aredis_future_ready(c);
    if (aredis_await(ready) != AREDIS_ERR_OK) {
        fprintf(stderr, "threads: cannot connect to %s:%d: %s\n", host, port,
                aredis_future_error(ready)->detail);
        return 1;
    }
    aredis_future_release(ready);
    char *value = malloc((size_t)size + 1);
    memset(value, 'x', (size_t)size);
    value[size] = '\0';
    aredis_shared *s = aredis_shared_new(c);

    printf("aredis %s, commands from threads through one client (aredis_shared), %s:%d\n",
           aredis_version(), host, port);
    printf("callback: %ld commands per run, at most %d in flight per thread; "
           "call: %ld per run, one at a time per thread; value %ld bytes\n\n",
           n, window, ncall, size);
    printf("%-4s %-9s", "op", "form");
    for (int k = 0; k < nlevels; k++) {
        char h[32];
        snprintf(h, sizeof h, "%ld thread%s", levels[k], levels[k] == 1 ? "" : "s");
        printf(" %14s", h);
    }
    for (int k = 1; k < nlevels; k++) {
        char h[32];
        snprintf(h, sizeof h, "%ld/%ld", levels[k], levels[0]);
        printf(" %7s", h);
    }
    printf(" %7s\n", "errors");
    for (int is_get = 0; is_get < 2; is_get++) {
        for (int calls = 0; calls < 2; calls++) {
            double ops[8];
            long errors = 0;
            for (int k = 0; k < nlevels; k++) {
                long e = 0;
                ops[k] = run_once(s, loop, is_get, calls, window, value, (size_t)size,
                                  calls ? ncall : n, (int)levels[k], &e);
                errors += e;
            }
            printf("%-4s %-9s", is_get ? "GET" : "SET", calls ? "call" : "callback");
            for (int k = 0; k < nlevels; k++) {
                char buf[32];
                printf(" %12s/s", bench_fmt_rate(ops[k], buf, sizeof buf));
            }
            for (int k = 1; k < nlevels; k++)
                printf(" %6.2fx", ops[k] / ops[0]);
            printf(" %7ld\n", errors);
            fflush(stdout);
        }
    }
    aredis_shared_free(s);
    aredis_client_free(c);
    aredis_loop_free(loop);
    free(value);
    return 0;
}
