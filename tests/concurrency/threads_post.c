/* labels: threads */
/*
 * Commands from other threads (aredis/threads.h) against a real server: the
 * test's main thread runs the loop (it is the loop's thread), worker threads
 * issue commands through an aredis_shared. Checked: every reply reaches its
 * own command, in each thread's order, with the right values, through the
 * callback form and the waiting form; posts from the loop thread itself run
 * later, never inside the call; a waiting call on the loop thread is refused;
 * aredis_shared_free with commands handed over and not issued completes them
 * with CLOSED at once (no hang), also under a stream of calls from threads
 * holding their own references; a call's own bound ends it even when the
 * loop does not run, and the client's request timeout ends one without a
 * bound. Run under ThreadSanitizer by `make tsan-test`.
 *
 * Workers never touch the loop-thread state of the test: they tell the main
 * thread they are done with a job posted to the loop (aredis_loop_post),
 * which also wakes the loop. The main thread waits with ts_wait_until().
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts.h"

#include "loop/loop_internal.h" /* npending: "the call has been posted" */

#define NTHREADS 4
#define WAIT_MS 60000

/* ---- Shared helpers ---------------------------------------------------------- */

/* A worker's "done" job: on the loop thread, counts finished workers. */
static int g_workers_done;
static void worker_done_fn(void *arg, aredis_err code) {
    (void)arg;
    (void)code;
    g_workers_done++;
}

static void worker_finished(aredis_loop *loop) {
    assert_int_equal(aredis_loop_post(loop, worker_done_fn, NULL), AREDIS_ERR_OK);
}

static int workers_all_done(const void *arg) { return g_workers_done == *(const int *)arg; }

static void wait_workers(aredis_loop *loop, int n) {
    assert_true(ts_wait_until(loop, workers_all_done, &n, WAIT_MS));
}

/* ---- The callback form --------------------------------------------------------- */

#define CB_N 500 /* commands of each kind (SET, GET) per thread */

/* One command of the callback test. Written by its worker before the call,
 * read and completed on the loop thread. */
typedef struct cb_cmd {
    int t, k, is_get;
    int hits; /* callback runs (loop thread) */
} cb_cmd;

static cb_cmd g_cb_cmds[NTHREADS][2 * CB_N];
static int g_cb_next[NTHREADS]; /* the next command index each thread's callback expects */
static long g_cb_done, g_cb_bad, g_cb_order;

static void cb_on_reply(aredis_shared *s, aredis_reply *r, const aredis_error *err, void *data) {
    cb_cmd *c = data;
    char want[64];
    (void)s;
    c->hits++;
    g_cb_done++;
    int idx = 2 * c->k + c->is_get;
    if (idx != g_cb_next[c->t]) g_cb_order++;
    g_cb_next[c->t] = idx + 1;
    if (err || !r) {
        g_cb_bad++;
        return;
    }
    if (c->is_get) {
        snprintf(want, sizeof want, "v-%d-%d", c->t, c->k);
        if (r->type != AREDIS_REPLY_STRING || strcmp(r->str, want) != 0) g_cb_bad++;
    } else if (r->type != AREDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
        g_cb_bad++;
    }
}

typedef struct worker {
    aredis_shared *s;
    aredis_loop *loop;
    int t;
    long refused;  /* calls that returned an error they should not have */
    long failures; /* wrong outcomes seen by this thread */
    char why[160]; /* the first failure */
} worker;

static void worker_fail(worker *w, const char *what, aredis_err code) {
    if (w->failures++ == 0)
        snprintf(w->why, sizeof w->why, "thread %d: %s (%s)", w->t, what, aredis_err_name(code));
}

static void *cb_worker(void *arg) {
    worker *w = arg;
    char key[64], val[64];
    for (int k = 0; k < CB_N; k++) {
        cb_cmd *set = &g_cb_cmds[w->t][2 * k], *get = &g_cb_cmds[w->t][2 * k + 1];
        *set = (cb_cmd){w->t, k, 0, 0};
        *get = (cb_cmd){w->t, k, 1, 0};
        snprintf(key, sizeof key, "thr:cb:%d:%d", w->t, k);
        snprintf(val, sizeof val, "v-%d-%d", w->t, k);
        const char *argv[3] = {"SET", key, val};
        if (aredis_shared_command_argv(w->s, cb_on_reply, set, 3, argv, NULL) != AREDIS_ERR_OK)
            w->refused++;
        if (aredis_shared_command(w->s, cb_on_reply, get, "GET %s", key) != AREDIS_ERR_OK)
            w->refused++;
    }
    worker_finished(w->loop);
    return NULL;
}

static int cb_all_done(const void *arg) {
    (void)arg;
    return g_cb_done == (long)NTHREADS * 2 * CB_N;
}

/* Four threads issue SET k v / GET k pairs of their own keys through the
 * callback form: every callback runs once, on the loop thread, in each
 * thread's issue order, and each GET sees its own SET's value. */
static void test_callback_form(void **state) {
    ts_env *env = *state;
    aredis_shared *s = aredis_shared_new(env->c);
    worker w[NTHREADS];
    pthread_t th[NTHREADS];

    assert_non_null(s);
    g_workers_done = 0;
    for (int t = 0; t < NTHREADS; t++) {
        w[t] = (worker){s, env->loop, t, 0, 0, ""};
        assert_int_equal(pthread_create(&th[t], NULL, cb_worker, &w[t]), 0);
    }
    wait_workers(env->loop, NTHREADS);
    assert_true(ts_wait_until(env->loop, cb_all_done, NULL, WAIT_MS));
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(w[t].refused, 0);
        for (int i = 0; i < 2 * CB_N; i++)
            assert_int_equal(g_cb_cmds[t][i].hits, 1);
    }
    assert_int_equal(g_cb_bad, 0);
    assert_int_equal(g_cb_order, 0);
    aredis_shared_free(s);
}

/* ---- The waiting form ------------------------------------------------------------ */

#define CALL_N 300

static void *call_worker(void *arg) {
    worker *w = arg;
    char key[64], val[64];
    aredis_reply *r;
    aredis_error e;
    aredis_err rc;

    for (int k = 0; k < CALL_N; k++) {
        snprintf(key, sizeof key, "thr:call:%d:%d", w->t, k);
        snprintf(val, sizeof val, "w-%d-%d", w->t, k);
        const char *argv[3] = {"SET", key, val};
        rc = aredis_shared_call_argv(w->s, 10000, &r, &e, 3, argv, NULL);
        if (rc != AREDIS_ERR_OK || !r || r->type != AREDIS_REPLY_STATUS || strcmp(r->str, "OK"))
            worker_fail(w, "SET", rc);
        aredis_reply_release(r);
        rc = aredis_shared_call(w->s, 0, &r, NULL, "GET %s", key);
        if (rc != AREDIS_ERR_OK || !r || r->type != AREDIS_REPLY_STRING || strcmp(r->str, val))
            worker_fail(w, "GET", rc);
        aredis_reply_release(r); /* on this thread: the loop no longer holds it */
    }
    /* A server error reply comes back as SERVER, with the reply and the prefix. */
    snprintf(key, sizeof key, "thr:call:%d:0", w->t);
    rc = aredis_shared_call(w->s, 10000, &r, &e, "INCR %s", key);
    if (rc != AREDIS_ERR_SERVER || e.code != AREDIS_ERR_SERVER || !r ||
        r->type != AREDIS_REPLY_ERROR || strcmp(e.prefix, "ERR") != 0 || !e.detail[0])
        worker_fail(w, "INCR of a string", rc);
    aredis_reply_release(r);
    worker_finished(w->loop);
    return NULL;
}

/* Four threads SET and GET their own keys with the waiting form (argv and
 * format, with and without a bound): every call returns its own reply, owned
 * by the caller. */
static void test_call_form(void **state) {
    ts_env *env = *state;
    aredis_shared *s = aredis_shared_new(env->c);
    worker w[NTHREADS];
    pthread_t th[NTHREADS];

    assert_non_null(s);
    g_workers_done = 0;
    for (int t = 0; t < NTHREADS; t++) {
        w[t] = (worker){s, env->loop, t, 0, 0, ""};
        assert_int_equal(pthread_create(&th[t], NULL, call_worker, &w[t]), 0);
    }
    wait_workers(env->loop, NTHREADS);
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        if (w[t].failures) fail_msg("%ld failures; first: %s", w[t].failures, w[t].why);
    }
    aredis_shared_free(s);
}

/* ---- Per-thread order on the wire ---------------------------------------------- */

#define ORDER_N 400

static void *order_worker(void *arg) {
    worker *w = arg;
    char key[64];
    snprintf(key, sizeof key, "thr:order:%d", w->t);
    for (int k = 0; k < ORDER_N; k++)
        if (aredis_shared_command(w->s, NULL, NULL, "RPUSH %s %d", key, k) != AREDIS_ERR_OK)
            w->refused++;
    worker_finished(w->loop);
    return NULL;
}

/* Each thread's commands reach the server in the order it issued them: four
 * threads RPUSH 0..399 to lists of their own, interleaved with each other;
 * each list reads back 0..399. */
static void test_thread_order(void **state) {
    ts_env *env = *state;
    aredis_shared *s = aredis_shared_new(env->c);
    worker w[NTHREADS];
    pthread_t th[NTHREADS];

    assert_non_null(s);
    g_workers_done = 0;
    for (int t = 0; t < NTHREADS; t++) {
        w[t] = (worker){s, env->loop, t, 0, 0, ""};
        assert_int_equal(pthread_create(&th[t], NULL, order_worker, &w[t]), 0);
    }
    wait_workers(env->loop, NTHREADS);
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(w[t].refused, 0);
        /* after every push: the lists as the server has them */
        aredis_future *f = ts_cmd(env->c, "LRANGE thr:order:%d 0 -1", t);
        aredis_reply *r = aredis_future_reply(f);
        assert_non_null(r);
        assert_int_equal(r->elements, ORDER_N);
        for (int k = 0; k < ORDER_N; k++)
            assert_int_equal(atoi(r->element[k]->str), k);
        aredis_future_release(f);
    }
    aredis_shared_free(s);
}

/* ---- On the loop thread ------------------------------------------------------- */

static int g_local_hits;
static char g_local_text[32];
static aredis_err g_local_code;

static void local_cb(aredis_shared *s, aredis_reply *r, const aredis_error *err, void *data) {
    (void)s;
    (void)data;
    g_local_hits++;
    g_local_code = err ? err->code : AREDIS_ERR_OK;
    snprintf(g_local_text, sizeof g_local_text, "%s", r && r->str ? r->str : "");
}

/* On the loop thread: the callback form posts too (the callback runs in a
 * later turn, never inside the call); the waiting form is refused with
 * INVALID instead of waiting for itself. */
static void test_loop_thread(void **state) {
    ts_env *env = *state;
    aredis_shared *s = aredis_shared_new(env->c);
    aredis_reply *r = (aredis_reply *)&r; /* not NULL: must be cleared */
    aredis_error e;

    assert_non_null(s);
    assert_ptr_equal(aredis_shared_client(s), env->c);
    assert_true(aredis_loop_on_thread(env->loop));
    g_local_hits = 0;
    assert_int_equal(aredis_shared_command(s, local_cb, NULL, "ECHO %s", "here"), AREDIS_ERR_OK);
    assert_int_equal(g_local_hits, 0);
    assert_int_equal(aredis_shared_call(s, 1000, &r, &e, "PING"), AREDIS_ERR_INVALID);
    assert_null(r);
    assert_int_equal(e.code, AREDIS_ERR_INVALID);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_true(ts_wait(env->loop, &g_local_hits, 5000));
    assert_int_equal(g_local_code, AREDIS_ERR_OK);
    assert_string_equal(g_local_text, "here");

    /* Bad arguments are refused at the call; the callback never runs. */
    assert_int_equal(aredis_shared_command(s, local_cb, NULL, "GET %"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_shared_command_argv(s, local_cb, NULL, 0, NULL, NULL),
                     AREDIS_ERR_INVALID);
    assert_int_equal(aredis_shared_command(NULL, local_cb, NULL, "PING"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_shared_call(NULL, 0, &r, NULL, "PING"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_shared_call(s, 0, NULL, NULL, "PING"), AREDIS_ERR_INVALID);
    /* A command the client refuses at issue is an outcome: the callback. */
    g_local_hits = 0;
    assert_int_equal(aredis_shared_command(s, local_cb, NULL, "SUBSCRIBE ch"), AREDIS_ERR_OK);
    assert_true(ts_wait(env->loop, &g_local_hits, 5000));
    assert_int_equal(g_local_code, AREDIS_ERR_UNSUPPORTED);
    aredis_shared_free(s);
}

/* ---- aredis_shared_free with commands handed over ---------------------------- */

typedef struct call_out {
    aredis_shared *s;
    aredis_loop *loop;
    aredis_err rc;
    int have_reply;
} call_out;

static void *blocked_caller(void *arg) {
    call_out *o = arg;
    aredis_reply *r = NULL;
    o->rc = aredis_shared_call(o->s, 0, &r, NULL, "PING"); /* no bound of its own */
    o->have_reply = r != NULL;
    aredis_reply_release(r);
    return NULL;
}

/* Wait (without running the loop) until n jobs are posted to it and not run
 * yet: the worker's call is then handed over. */
static void wait_posted(aredis_loop *loop, size_t n) {
    uint64_t until = ts_now_ms() + WAIT_MS;
    while (atomic_load(&loop->npending) < n) {
        assert_true(ts_now_ms() < until);
        sched_yield();
    }
}

/* Commands handed over and not issued when aredis_shared_free runs complete
 * with CLOSED before it returns: the callbacks run, and a thread waiting
 * without a bound wakes up. The loop does not run meanwhile. */
static void test_free_with_queued(void **state) {
    ts_env *env = *state;
    aredis_shared *s = aredis_shared_new(env->c);
    call_out o = {s, env->loop, AREDIS_ERR_OK, 0};
    pthread_t th;

    assert_non_null(s);
    assert_int_equal(pthread_create(&th, NULL, blocked_caller, &o), 0);
    wait_posted(env->loop, 1);
    g_local_hits = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_shared_command(s, local_cb, NULL, "PING"), AREDIS_ERR_OK);
    aredis_shared_free(s);
    assert_int_equal(g_local_hits, 3);
    assert_int_equal(g_local_code, AREDIS_ERR_CLOSED);
    assert_int_equal(pthread_join(th, NULL), 0); /* woken: no hang */
    assert_int_equal(o.rc, AREDIS_ERR_CLOSED);
    assert_int_equal(o.have_reply, 0);
    /* The posts run later and only let go of their jobs. */
    aredis_loop_run_once(env->loop, 0);
    assert_int_equal(g_local_hits, 3);
    ts_cmd_ok(env->c, "SET thr:after-free ok"); /* the client is fine */
}

/* A stream of commands from threads that hold references of their own; the
 * loop thread frees the shared object in the middle. Every command accepted
 * completes exactly once (OK, or CLOSED for those not issued yet); every
 * call returns; after the free, calls fail with CLOSED at once. */
#define STREAM_MAX 200000

typedef struct stream_worker {
    aredis_shared *s;
    aredis_loop *loop;
    int t, waits; /* waits: the waiting form, else the callback form */
    long accepted, closed_at_call, bad;
} stream_worker;

static int *g_stream_hits[NTHREADS];
static long g_stream_done, g_stream_closed, g_stream_bad;
static atomic_long g_stream_calls;           /* calls that returned, in the waiting threads */
static atomic_long g_stream_acked[NTHREADS]; /* callbacks run, per thread */
#define STREAM_WINDOW 256                    /* callback-form commands in flight per thread */

static void stream_cb(aredis_shared *s, aredis_reply *r, const aredis_error *err, void *data) {
    int *hit = data;
    (void)s;
    (*hit)++;
    for (int t = 0; t < NTHREADS; t++)
        if (hit >= g_stream_hits[t] && hit < g_stream_hits[t] + STREAM_MAX)
            atomic_fetch_add(&g_stream_acked[t], 1);
    g_stream_done++;
    if (!err && r && r->type == AREDIS_REPLY_STATUS)
        ;
    else if (err && err->code == AREDIS_ERR_CLOSED)
        g_stream_closed++;
    else
        g_stream_bad++;
}

static void *stream_main(void *arg) {
    stream_worker *w = arg;
    for (long i = 0; i < STREAM_MAX; i++) {
        aredis_err rc;
        if (w->waits) {
            aredis_reply *r = NULL;
            rc = aredis_shared_call(w->s, 10000, &r, NULL, "PING");
            if (rc == AREDIS_ERR_OK && (!r || r->type != AREDIS_REPLY_STATUS)) w->bad++;
            if (rc != AREDIS_ERR_OK && rc != AREDIS_ERR_CLOSED) w->bad++;
            aredis_reply_release(r);
            atomic_fetch_add(&g_stream_calls, 1);
        } else {
            /* a window of commands in flight (the loop runs meanwhile) */
            uint64_t until = ts_now_ms() + WAIT_MS;
            while (w->accepted - atomic_load(&g_stream_acked[w->t]) >= STREAM_WINDOW) {
                if (ts_now_ms() > until) {
                    w->bad++;
                    break;
                }
                sched_yield();
            }
            rc = aredis_shared_command(w->s, stream_cb, &g_stream_hits[w->t][i], "PING");
        }
        if (rc == AREDIS_ERR_CLOSED && aredis_call_error()->code == AREDIS_ERR_CLOSED &&
            strstr(aredis_call_error()->detail, "aredis_shared_free")) {
            w->closed_at_call++;
            break; /* refused at the call: freed */
        }
        if (rc == AREDIS_ERR_OK || w->waits) w->accepted++;
    }
    aredis_shared_release(w->s);
    worker_finished(w->loop);
    return NULL;
}

static int stream_progress(const void *arg) { return g_stream_done >= *(const long *)arg; }

/* Both kinds under way: callbacks done, and calls returned. */
static int stream_busy(const void *arg) {
    (void)arg;
    return g_stream_done >= 2000 && atomic_load(&g_stream_calls) >= 200;
}

static void test_free_under_stream(void **state) {
    ts_env *env = *state;
    aredis_shared *s = aredis_shared_new(env->c);
    stream_worker w[NTHREADS];
    pthread_t th[NTHREADS];

    assert_non_null(s);
    g_workers_done = 0;
    g_stream_done = g_stream_closed = g_stream_bad = 0;
    for (int t = 0; t < NTHREADS; t++) {
        g_stream_hits[t] = calloc(STREAM_MAX, sizeof(int));
        atomic_store(&g_stream_acked[t], 0);
        assert_non_null(g_stream_hits[t]);
        w[t] = (stream_worker){aredis_shared_retain(s), env->loop, t, t % 2, 0, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, stream_main, &w[t]), 0);
    }
    atomic_store(&g_stream_calls, 0);
    assert_true(ts_wait_until(env->loop, stream_busy, NULL, WAIT_MS));
    aredis_shared_free(s); /* the workers' references keep the memory */
    wait_workers(env->loop, NTHREADS);
    long accepted_cb = 0;
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(w[t].bad, 0);
        assert_int_equal(w[t].closed_at_call, 1); /* each one saw the free */
        if (!w[t].waits) accepted_cb += w[t].accepted;
    }
    /* Callbacks of commands issued before the free come with their replies. */
    assert_true(ts_wait_until(env->loop, stream_progress, &accepted_cb, WAIT_MS));
    assert_int_equal(g_stream_done, accepted_cb);
    assert_int_equal(g_stream_bad, 0);
    for (int t = 0; t < NTHREADS; t++) {
        for (long i = 0; i < STREAM_MAX; i++)
            assert_true(g_stream_hits[t][i] == (i < w[t].accepted && !w[t].waits ? 1 : 0));
        free(g_stream_hits[t]);
    }
    ts_log("stream: %ld callbacks (%ld CLOSED by the free); waiting threads: %ld + %ld calls",
           g_stream_done, g_stream_closed, w[1].accepted, w[3].accepted);
}

/* ---- Bounds ----------------------------------------------------------------------- */

static void *bounded_caller(void *arg) {
    call_out *o = arg;
    aredis_reply *r = NULL;
    aredis_error e;
    o->rc = aredis_shared_call(o->s, 50, &r, &e, "PING");
    o->have_reply = r != NULL;
    if (o->rc != e.code) o->rc = AREDIS_ERR_IO; /* err must agree */
    aredis_reply_release(r);
    worker_finished(o->loop);
    return NULL;
}

static void *unbounded_caller(void *arg) {
    call_out *o = arg;
    aredis_reply *r = NULL;
    o->rc = aredis_shared_call(o->s, 0, &r, NULL, "GET %s", "k");
    o->have_reply = r != NULL;
    aredis_reply_release(r);
    worker_finished(o->loop);
    return NULL;
}

/* A call's own bound ends it even when the loop does not run at all; the
 * job then runs, finds its deadline past, and goes (ASan: nothing leaks).
 * Without a bound, the client's request timeout ends a call whose server
 * never answers. */
static void test_bounds(void **state) {
    ts_env *env = *state;
    aredis_shared *s = aredis_shared_new(env->c);
    call_out o = {s, env->loop, AREDIS_ERR_OK, 0};
    pthread_t th;

    assert_non_null(s);
    g_workers_done = 0;
    assert_int_equal(pthread_create(&th, NULL, bounded_caller, &o), 0);
    assert_int_equal(pthread_join(th, NULL), 0); /* the loop never ran */
    assert_int_equal(o.rc, AREDIS_ERR_TIMEOUT);
    assert_int_equal(o.have_reply, 0);
    wait_workers(env->loop, 1);
    aredis_shared_free(s);

    /* A server that never answers; the client's request timeout is 300 ms. */
    int port, fd = ts_silent_listener(&port);
    aredis_options opt = AREDIS_OPTIONS_INIT;
    opt.port = port;
    opt.request_timeout_ms = 300;
    opt.connect_timeout_ms = 60000;
    opt.wait_for_first_connect = 1;
    opt.reconnect = 0;
    aredis_client *c = aredis_client_new(env->loop, &opt);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    s = aredis_shared_new(c);
    assert_non_null(s);
    o = (call_out){s, env->loop, AREDIS_ERR_OK, 0};
    g_workers_done = 0;
    assert_int_equal(pthread_create(&th, NULL, unbounded_caller, &o), 0);
    wait_workers(env->loop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(o.rc, AREDIS_ERR_TIMEOUT);
    assert_int_equal(o.have_reply, 0);
    aredis_shared_free(s);
    aredis_client_free(c);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callback_form),    cmocka_unit_test(test_call_form),
        cmocka_unit_test(test_thread_order),     cmocka_unit_test(test_loop_thread),
        cmocka_unit_test(test_free_with_queued), cmocka_unit_test(test_free_under_stream),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests_name("threads_post", tests, ts_env_setup, ts_env_teardown);
}
