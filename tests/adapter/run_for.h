/*
 * aredis_loop_run_for() and aredis_await_for() on every loop: the built-in
 * one and the libuv, libevent and libev adapters. Each
 * tests/adapter/run_for_<loop>.c defines an rf_driver (make an aredis_loop on
 * a fresh foreign loop; tear both down, checking that nothing of ours is
 * left on the foreign loop) and calls rf_main().
 *
 * run_for returns when its time is up (1), on aredis_loop_stop() (1), or as
 * soon as nothing is left to watch (0): an idle watcher keeps it running its
 * whole time; a lone timer only until it fired. await_for gives up at its
 * deadline and leaves the future pending. Timing assertions are lower bounds
 * (a timer never fires early) with generous upper bounds; every test runs
 * under alarm() so that a loop that blocks when it must not fails instead of
 * hanging CTest.
 */
#ifndef AREDIS_TEST_RUN_FOR_H
#define AREDIS_TEST_RUN_FOR_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts.h"

#include "loop/loop_internal.h"

typedef struct rf_driver {
    const char *name;
    /* Make a foreign loop (stored in *foreign) and an aredis_loop on it. */
    aredis_loop *(*make)(void **foreign);
    /* aredis_loop_free(loop), then check and free the foreign loop. */
    void (*destroy)(aredis_loop *loop, void *foreign);
} rf_driver;

static const rf_driver *rf_drv;

typedef struct rf_fx {
    aredis_loop *loop;
    void *foreign;
} rf_fx;

#define RF_LOOP(state) (((rf_fx *)*(state))->loop)

static void rf_on_alarm(int sig) {
    static const char msg[] = "FAIL: the loop blocked (alarm)\n";
    (void)sig;
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static int rf_setup(void **state) {
    rf_fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->loop = rf_drv->make(&fx->foreign);
    assert_non_null(fx->loop);
    *state = fx;
    signal(SIGALRM, rf_on_alarm);
    alarm(30);
    return 0;
}

static int rf_teardown(void **state) {
    rf_fx *fx = *state;
    rf_drv->destroy(fx->loop, fx->foreign);
    alarm(0);
    free(fx);
    return 0;
}

static void rf_socketpair(int sv[2]) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(sv[i], F_GETFL);
        assert_int_equal(fcntl(sv[i], F_SETFL, fl | O_NONBLOCK), 0);
    }
}

/* A READ watcher that counts and drains. */
typedef struct rf_io {
    int fd;
    int count;
} rf_io;

static void rf_io_cb(void *arg, int events) {
    rf_io *r = arg;
    char buf[64];
    r->count++;
    if (events & AREDIS_EV_READ)
        while (read(r->fd, buf, sizeof buf) > 0) {
        }
}

static void rf_count(void *arg) { (*(int *)arg)++; }
static void rf_stop(void *arg) { aredis_loop_stop(arg); }

/* Writes one byte to the fd in *arg. */
static void rf_put(void *arg) { assert_int_equal(write(*(int *)arg, "x", 1), 1); }

/* Nothing to watch: 0 at once; 0 ms too. */
static void rf_empty(void **state) {
    aredis_loop *l = RF_LOOP(state);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 60000), 0);
    assert_int_equal(aredis_loop_run_for(l, 0), 0);
    assert_true(ts_now_ms() - t0 < 5000);
}

/*
 * An idle watcher: run_for(200) returns 1 after at least 200 ms (190 by
 * another clock); a byte written at 50 ms by a timer is dispatched during
 * it. 0 ms: one turn that does not block.
 */
static void rf_idle_watcher(void **state) {
    aredis_loop *l = RF_LOOP(state);
    int sv[2];
    rf_socketpair(sv);
    rf_io r = {sv[0], 0};
    void *io = aredis__io_new(l, sv[0], rf_io_cb, &r);
    assert_non_null(io);
    aredis__io_set(l, io, AREDIS_EV_READ);

    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 200), 1);
    uint64_t took = ts_now_ms() - t0;
    ts_log("%s: run_for(200) with an idle watcher took %llu ms", rf_drv->name,
           (unsigned long long)took);
    assert_true(took >= 190);
    assert_true(took < 5000);
    assert_int_equal(r.count, 0);

    aredis_timer *t = aredis_timer_new(l, rf_put, &sv[1]);
    aredis_timer_start(t, 50, 0);
    t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 250), 1);
    assert_true(ts_now_ms() - t0 >= 240);
    assert_int_equal(r.count, 1);

    t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 0), 1);
    assert_true(ts_now_ms() - t0 < 150);

    aredis_timer_free(t);
    aredis__io_free(l, io);
    close(sv[0]);
    close(sv[1]);
}

/* A lone timer: run_for returns 0 once it has fired, before its time. */
static void rf_lone_timer(void **state) {
    aredis_loop *l = RF_LOOP(state);
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(l, rf_count, &ticks);
    aredis_timer_start(t, 50, 0);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 60000), 0);
    uint64_t took = ts_now_ms() - t0;
    assert_int_equal(ticks, 1);
    assert_true(took >= 45);
    assert_true(took < 5000);
    aredis_timer_free(t);
}

/* A repeating timer ticks during it; a stop from a callback ends it (1),
 * and the request is consumed. */
static void rf_ticks_and_stop(void **state) {
    aredis_loop *l = RF_LOOP(state);
    int ticks = 0;
    aredis_timer *rep = aredis_timer_new(l, rf_count, &ticks);
    aredis_timer_start(rep, 20, 20);
    assert_int_equal(aredis_loop_run_for(l, 300), 1);
    ts_log("%s: a 20 ms timer ticked %d times in run_for(300)", rf_drv->name, ticks);
    assert_true(ticks >= 5);

    aredis_timer *stop = aredis_timer_new(l, rf_stop, l);
    aredis_timer_start(stop, 60, 0);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 60000), 1);
    uint64_t took = ts_now_ms() - t0;
    assert_true(took >= 55);
    assert_true(took < 5000);
    t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 100), 1);
    assert_true(ts_now_ms() - t0 >= 95);
    aredis_timer_free(stop);
    aredis_timer_free(rep);
}

/*
 * A client on this loop: await_for gives up on DEBUG SLEEP 0.3 after 50 ms
 * and leaves it pending; aredis_await then gets its OK; an idle client keeps
 * run_for running its time.
 */
static void rf_client(void **state) {
    static const char *const conf[] = {"enable-debug-command local", NULL};
    aredis_loop *l = RF_LOOP(state);
    ts_server *s = ts_server_start(conf, 0);
    aredis_client *c = ts_client(l, s);

    uint64_t t0 = ts_now_ms();
    aredis_future *f = aredis_future_command(c, "DEBUG SLEEP %.1f", 0.3);
    assert_int_equal(aredis_await_for(f, 50), AREDIS_ERR_TIMEOUT);
    assert_true(ts_now_ms() - t0 >= 45);
    assert_false(aredis_future_is_done(f));
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_true(ts_now_ms() - t0 >= 280);
    aredis_future_release(f);

    f = aredis_future_command(c, "ECHO %+.2e", 1234.5);
    assert_int_equal(aredis_await_for(f, 10000), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->str, "+1.23e+03");
    aredis_future_release(f);

    t0 = ts_now_ms();
    assert_int_equal(aredis_loop_run_for(l, 150), 1);
    assert_true(ts_now_ms() - t0 >= 140);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);

    aredis_client_free(c);
    /* Let the loop finish what the client's teardown left (adapters close
     * handles asynchronously). */
    aredis_loop_run_for(l, 50);
    ts_server_stop(s);
}

static int rf_main(const rf_driver *drv) {
    rf_drv = drv;
#define RF_T(fn) cmocka_unit_test_setup_teardown(fn, rf_setup, rf_teardown)
    const struct CMUnitTest tests[] = {
        RF_T(rf_empty),          RF_T(rf_idle_watcher), RF_T(rf_lone_timer),
        RF_T(rf_ticks_and_stop), RF_T(rf_client),
    };
#undef RF_T
    return _cmocka_run_group_tests(drv->name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}

#endif
