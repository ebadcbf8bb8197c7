/*
 * The loop conformance suite, written once and run against every loop: the
 * built-in one and the libuv, libevent and libev adapters. Each
 * tests/adapter/<loop>.c defines a conf_driver (how to make an aredis_loop on
 * a fresh foreign loop, and how to tear both down) and calls conf_main().
 *
 * The tests talk to the vtable through the internal wrappers of
 * loop/loop_internal.h, exactly as the client does, and use socketpairs, not
 * a server. Nothing here sleeps-and-hopes: "X does not happen" is checked by
 * running the loop for a while behind a guard timer; timing assertions are
 * lower bounds (a timer never fires early) with generous upper bounds. Every
 * test runs under alarm() so that a loop that blocks when it must not fails
 * the test instead of hanging CTest.
 */
#ifndef AREDIS_TEST_CONFORMANCE_H
#define AREDIS_TEST_CONFORMANCE_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts.h"

#include "loop/loop_internal.h"

typedef struct conf_driver {
    const char *name;
    /* Make a foreign loop (stored in *foreign) and an aredis_loop on it. */
    aredis_loop *(*make)(void **foreign);
    /* aredis_loop_free(loop), then check and free the foreign loop. */
    void (*destroy)(aredis_loop *loop, void *foreign);
    /* Timers fire in exact deadline order (the built-in heap). Adapters only
     * promise "never early", so the many-timers test checks less there. */
    int exact_timer_order;
    /* wake_signal (and so aredis_loop_post) may be called from other
     * threads: 0 only for libevent without its locking (evthread). */
    int threads;
} conf_driver;

static const conf_driver *conf_drv;

typedef struct conf_fx {
    aredis_loop *loop;
    void *foreign;
} conf_fx;

#define CONF_LOOP(state) (((conf_fx *)*(state))->loop)

static void conf_on_alarm(int sig) {
    static const char msg[] = "FAIL: the loop blocked (alarm)\n";
    (void)sig;
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static int conf_setup(void **state) {
    conf_fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->loop = conf_drv->make(&fx->foreign);
    assert_non_null(fx->loop);
    *state = fx;
    signal(SIGALRM, conf_on_alarm);
    alarm(20);
    return 0;
}

static int conf_teardown(void **state) {
    conf_fx *fx = *state;
    conf_drv->destroy(fx->loop, fx->foreign);
    alarm(0);
    free(fx);
    return 0;
}

/* ---- Helpers ----------------------------------------------------------- */

static void conf_flag_cb(void *arg) { *(int *)arg = 1; }

/* Run turns (blocking) until *v >= target, or ms pass. 1 if reached. */
static int conf_run_until(aredis_loop *l, const int *v, int target, uint64_t ms) {
    int expired = 0;
    void *guard = aredis__timer_new(l, conf_flag_cb, &expired);

    assert_non_null(guard);
    aredis__timer_arm(l, guard, ms);
    while (*v < target && !expired)
        aredis_loop_run_once(l, 1);
    aredis__timer_free(l, guard);
    return *v >= target;
}

/* Run the loop for about ms, to check that something does NOT happen. */
static void conf_run_for(aredis_loop *l, uint64_t ms) {
    int never = 0;
    conf_run_until(l, &never, 1, ms);
}

static void conf_socketpair(int sv[2]) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(sv[i], F_GETFL);
        assert_int_equal(fcntl(sv[i], F_SETFL, fl | O_NONBLOCK), 0);
    }
}

static void conf_put(int fd) { assert_int_equal(write(fd, "x", 1), 1); }

static void conf_drain(int fd) {
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* An io watcher and what its callback saw / must do. */
typedef struct conf_io {
    aredis_loop *loop;
    void *io;
    int fd;
    int count;
    int events;
    int drain;              /* read everything on READ */
    int free_self;          /* io_free from the callback */
    int replace;            /* free, then watch the same fd with a new io */
    struct conf_io *victim; /* io_free this other watcher from the callback */
    void *defer;            /* defer_arm this from the callback */
    int defers_seen;        /* value of *defer_count when the callback ran */
    const int *defer_count;
} conf_io;

static void conf_io_cb(void *arg, int events) {
    conf_io *r = arg;
    r->count++;
    r->events = events;
    if (r->defer_count) r->defers_seen = *r->defer_count;
    if (r->drain && (events & AREDIS_EV_READ)) conf_drain(r->fd);
    if (r->defer) aredis__defer_arm(r->loop, r->defer);
    if (r->victim && r->victim->io) {
        aredis__io_free(r->loop, r->victim->io);
        r->victim->io = NULL;
    }
    if (r->free_self) {
        aredis__io_free(r->loop, r->io);
        r->io = NULL;
    }
    if (r->replace) {
        r->replace = 0;
        aredis__io_free(r->loop, r->io);
        r->io = aredis__io_new(r->loop, r->fd, conf_io_cb, r);
        assert_non_null(r->io);
        aredis__io_set(r->loop, r->io, AREDIS_EV_READ);
    }
}

static void conf_io_watch(conf_io *r, aredis_loop *l, int fd, int events) {
    r->loop = l;
    r->fd = fd;
    r->io = aredis__io_new(l, fd, conf_io_cb, r);
    assert_non_null(r->io);
    aredis__io_set(l, r->io, events);
}

static void conf_io_unwatch(conf_io *r) {
    if (r->io) aredis__io_free(r->loop, r->io);
    r->io = NULL;
}

/* A non-blocking socketpair sv, and r watching sv[0] for `events`. */
static void conf_io_pair(conf_io *r, aredis_loop *l, int sv[2], int events) {
    conf_socketpair(sv);
    conf_io_watch(r, l, sv[0], events);
}

/* Undo conf_io_pair: stop watching (if still watching) and close both ends. */
static void conf_io_pair_close(conf_io *r, const int sv[2]) {
    conf_io_unwatch(r);
    close(sv[0]);
    close(sv[1]);
}

/* A counting callback for timers and defers. */
typedef struct conf_cnt {
    aredis_loop *loop;
    void *h;
    int count;
    uint64_t at_ms;  /* aredis_loop_now_ms() at the last call */
    int rearm_until; /* timer: re-arm itself (1 ms) until count reaches this */
    int free_self;   /* free its own handle (timer or defer) */
    int is_defer;
    int rearm_defer; /* defer: re-arm itself every time */
    void *other;     /* defer: arm (chain) or free (kill) this one */
    int kill_other;
} conf_cnt;

static void conf_cnt_cb(void *arg) {
    conf_cnt *c = arg;
    c->count++;
    c->at_ms = aredis_loop_now_ms(c->loop);
    if (c->rearm_until && c->count < c->rearm_until) aredis__timer_arm(c->loop, c->h, 1);
    if (c->rearm_defer) aredis__defer_arm(c->loop, c->h);
    if (c->other) {
        if (c->kill_other) {
            aredis__defer_free(c->loop, c->other);
        } else {
            aredis__defer_arm(c->loop, c->other);
        }
        c->other = NULL;
    }
    if (c->free_self) {
        if (c->is_defer) {
            aredis__defer_free(c->loop, c->h);
        } else {
            aredis__timer_free(c->loop, c->h);
        }
        c->h = NULL;
    }
}

static void conf_timer(conf_cnt *c, aredis_loop *l) {
    memset(c, 0, sizeof *c);
    c->loop = l;
    c->h = aredis__timer_new(l, conf_cnt_cb, c);
    assert_non_null(c->h);
}

static void conf_defer(conf_cnt *c, aredis_loop *l) {
    memset(c, 0, sizeof *c);
    c->loop = l;
    c->is_defer = 1;
    c->h = aredis__defer_new(l, conf_cnt_cb, c);
    assert_non_null(c->h);
}

/* ---- I/O --------------------------------------------------------------- */

/* A readable fd fires READ, and only READ. */
static void conf_io_read_fires(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    r.drain = 1;
    conf_put(sv[1]);
    assert_true(conf_run_until(l, &r.count, 1, 2000));
    assert_int_equal(r.events, AREDIS_EV_READ);
    conf_io_pair_close(&r, sv);
}

/* Setting the same mask twice is harmless: one callback per readiness. */
static void conf_io_set_idempotent(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    aredis__io_set(l, r.io, AREDIS_EV_READ);
    r.drain = 1;
    conf_put(sv[1]);
    assert_true(conf_run_until(l, &r.count, 1, 2000));
    aredis__io_set(l, r.io, AREDIS_EV_READ);
    conf_run_for(l, 50);
    assert_int_equal(r.count, 1);
    conf_put(sv[1]);
    assert_true(conf_run_until(l, &r.count, 2, 2000));
    conf_run_for(l, 30);
    assert_int_equal(r.count, 2);
    conf_io_pair_close(&r, sv);
}

/* Switching READ -> WRITE fires WRITE on a writable socket; READ|WRITE with
 * both ready comes as one callback with both bits. */
static void conf_io_write(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    conf_run_for(l, 20);
    assert_int_equal(r.count, 0);
    aredis__io_set(l, r.io, AREDIS_EV_WRITE);
    assert_true(conf_run_until(l, &r.count, 1, 2000));
    assert_int_equal(r.events, AREDIS_EV_WRITE);
    aredis__io_set(l, r.io, 0);
    conf_put(sv[1]);
    r.count = 0;
    aredis__io_set(l, r.io, AREDIS_EV_READ | AREDIS_EV_WRITE);
    assert_true(conf_run_until(l, &r.count, 1, 2000));
    assert_int_equal(r.events, AREDIS_EV_READ | AREDIS_EV_WRITE);
    conf_io_pair_close(&r, sv);
}

/* io_set(0) stops events even though the fd stays ready; setting the mask
 * again resumes them. */
static void conf_io_set_zero_stops(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    conf_put(sv[1]); /* never drained: level-triggered readiness stays */
    assert_true(conf_run_until(l, &r.count, 1, 2000));
    aredis__io_set(l, r.io, 0);
    aredis__io_set(l, r.io, 0);
    int before = r.count;
    conf_run_for(l, 50);
    for (int i = 0; i < 5; i++)
        aredis_loop_run_once(l, 0);
    assert_int_equal(r.count, before);
    aredis__io_set(l, r.io, AREDIS_EV_READ);
    assert_true(conf_run_until(l, &r.count, before + 1, 2000));
    conf_io_pair_close(&r, sv);
}

/* A watcher may free itself from its callback. */
static void conf_io_free_in_own_cb(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    r.free_self = 1;
    conf_put(sv[1]);
    assert_true(conf_run_until(l, &r.count, 1, 2000));
    assert_null(r.io);
    conf_run_for(l, 50);
    assert_int_equal(r.count, 1);
    conf_io_pair_close(&r, sv); /* r.io is NULL: only closes */
}

/* Two watchers ready in the same turn; the first callback frees the other,
 * whose event is already in the turn's ready set. It must never run (and
 * nothing may touch its memory: ASan). */
static void conf_io_free_other_same_turn(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int a[2], b[2];
    conf_io ra = {0}, rb = {0};

    conf_socketpair(a);
    conf_socketpair(b);
    conf_put(a[1]);
    conf_put(b[1]);
    conf_io_watch(&ra, l, a[0], AREDIS_EV_READ);
    conf_io_watch(&rb, l, b[0], AREDIS_EV_READ);
    ra.victim = &rb;
    rb.victim = &ra;
    ra.drain = rb.drain = 1; /* the survivor must not fire again */
    while (ra.count + rb.count == 0)
        aredis_loop_run_once(l, 1);
    assert_int_equal(ra.count + rb.count, 1);
    conf_run_for(l, 50);
    assert_int_equal(ra.count + rb.count, 1);
    assert_true((ra.io == NULL) != (rb.io == NULL));
    conf_io_pair_close(&ra, a);
    conf_io_pair_close(&rb, b);
}

/* Free a watcher and watch the same fd with a new one, from the callback. */
static void conf_io_replace_in_cb(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    r.replace = 1;
    conf_put(sv[1]); /* not drained: the new watcher must see it too */
    assert_true(conf_run_until(l, &r.count, 2, 2000));
    conf_io_pair_close(&r, sv);
}

/* The peer hanging up wakes a READ watcher (with READ set). */
static void conf_io_hangup(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    close(sv[1]);
    assert_true(conf_run_until(l, &r.count, 1, 2000));
    assert_true(r.events & AREDIS_EV_READ);
    conf_io_unwatch(&r);
    close(sv[0]);
}

/* ---- Timers ------------------------------------------------------------ */

/* A timer fires once, never early. */
static void conf_timer_fires_once(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt c;

    conf_timer(&c, l);
    uint64_t t0 = aredis_loop_now_ms(l);
    aredis__timer_arm(l, c.h, 30);
    assert_true(conf_run_until(l, &c.count, 1, 3000));
    assert_true(c.at_ms - t0 >= 30);
    assert_true(c.at_ms - t0 < 530);
    conf_run_for(l, 60);
    assert_int_equal(c.count, 1);
    aredis__timer_free(l, c.h);
}

/* Arming an armed timer moves its deadline, later or earlier. */
static void conf_timer_rearm_moves(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt c;

    conf_timer(&c, l);
    uint64_t t0 = aredis_loop_now_ms(l);
    aredis__timer_arm(l, c.h, 20);
    aredis__timer_arm(l, c.h, 150);
    assert_true(conf_run_until(l, &c.count, 1, 3000));
    assert_true(c.at_ms - t0 >= 150);
    conf_run_for(l, 40);
    assert_int_equal(c.count, 1);

    t0 = aredis_loop_now_ms(l);
    aredis__timer_arm(l, c.h, 2000);
    aredis__timer_arm(l, c.h, 20);
    assert_true(conf_run_until(l, &c.count, 2, 3000));
    assert_true(c.at_ms - t0 >= 20);
    assert_true(c.at_ms - t0 < 1000);
    aredis__timer_free(l, c.h);
}

/* cancel stops an armed timer; cancelling an idle timer is harmless. */
static void conf_timer_cancel(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt c, idle;

    conf_timer(&c, l);
    conf_timer(&idle, l);
    aredis__timer_cancel(l, idle.h);
    aredis__timer_arm(l, c.h, 20);
    aredis__timer_cancel(l, c.h);
    aredis__timer_cancel(l, c.h);
    conf_run_for(l, 80);
    assert_int_equal(c.count, 0);
    assert_int_equal(idle.count, 0);
    aredis__timer_free(l, c.h);
    aredis__timer_free(l, idle.h);
}

/* A timer may free itself from its callback. */
static void conf_timer_free_in_own_cb(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt c;

    conf_timer(&c, l);
    c.free_self = 1;
    aredis__timer_arm(l, c.h, 5);
    assert_true(conf_run_until(l, &c.count, 1, 2000));
    assert_null(c.h);
    conf_run_for(l, 30);
    assert_int_equal(c.count, 1);
}

/* A timer may re-arm itself from its callback (also with 0 ms: no live-lock). */
static void conf_timer_rearm_in_own_cb(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt c;

    conf_timer(&c, l);
    c.rearm_until = 4;
    aredis__timer_arm(l, c.h, 0);
    assert_true(conf_run_until(l, &c.count, 4, 2000));
    conf_run_for(l, 30);
    assert_int_equal(c.count, 4);
    aredis__timer_free(l, c.h);
}

static uint64_t conf_rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define CONF_NTIMERS 1000

typedef struct conf_many {
    aredis_loop *loop;
    uint64_t due[CONF_NTIMERS]; /* now_ms at the last arm + ms */
    int fired[CONF_NTIMERS];
    int order[CONF_NTIMERS];
    int nfired;
    int early; /* a timer fired before its due ms */
} conf_many;

typedef struct conf_many_arg {
    conf_many *m;
    int i;
} conf_many_arg;

static void conf_many_cb(void *arg) {
    conf_many_arg *a = arg;
    conf_many *m = a->m;
    if (aredis_loop_now_ms(m->loop) < m->due[a->i]) m->early++;
    m->fired[a->i]++;
    m->order[m->nfired++] = a->i;
}

/* 1,000 timers with random deadlines, some cancelled, some re-armed: each
 * live one fires once, none early; on the built-in loop, in deadline order. */
static void conf_timers_many(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    static conf_many m;
    static conf_many_arg args[CONF_NTIMERS];
    static void *h[CONF_NTIMERS];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    int live = 0;

    memset(&m, 0, sizeof m);
    m.loop = l;
    for (int i = 0; i < CONF_NTIMERS; i++) {
        args[i].m = &m;
        args[i].i = i;
        h[i] = aredis__timer_new(l, conf_many_cb, &args[i]);
        assert_non_null(h[i]);
        uint64_t ms = conf_rng(&seed) % 150;
        m.due[i] = aredis_loop_now_ms(l) + ms;
        aredis__timer_arm(l, h[i], ms);
    }
    for (int i = 0; i < CONF_NTIMERS; i++) {
        if (i % 7 == 0) {
            aredis__timer_cancel(l, h[i]);
            m.due[i] = UINT64_MAX;
        } else if (i % 5 == 0) {
            uint64_t ms = conf_rng(&seed) % 150;
            m.due[i] = aredis_loop_now_ms(l) + ms;
            aredis__timer_arm(l, h[i], ms);
        }
        if (m.due[i] != UINT64_MAX) live++;
    }
    assert_true(conf_run_until(l, &m.nfired, live, 5000));
    conf_run_for(l, 100);
    assert_int_equal(m.nfired, live);
    assert_int_equal(m.early, 0);
    for (int i = 0; i < CONF_NTIMERS; i++) {
        assert_int_equal(m.fired[i], m.due[i] == UINT64_MAX ? 0 : 1);
    }
    if (conf_drv->exact_timer_order) {
        for (int k = 1; k < m.nfired; k++) {
            assert_true(m.due[m.order[k - 1]] <= m.due[m.order[k]]);
        }
    }
    for (int i = 0; i < CONF_NTIMERS; i++)
        aredis__timer_free(l, h[i]);
}

/* ---- Defers ------------------------------------------------------------ */

/* A defer armed twice runs once. */
static void conf_defer_armed_twice_runs_once(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt d;

    conf_defer(&d, l);
    aredis__defer_arm(l, d.h);
    aredis__defer_arm(l, d.h);
    aredis_loop_run_once(l, 0);
    assert_int_equal(d.count, 1);
    aredis_loop_run_once(l, 0);
    aredis_loop_run_once(l, 0);
    assert_int_equal(d.count, 1);
    aredis__defer_free(l, d.h);
}

/* A defer armed before the loop runs runs on the first run_once, even a
 * blocking one with nothing else to do (it must not block). */
static void conf_defer_before_run(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt d;

    conf_defer(&d, l);
    aredis__defer_arm(l, d.h);
    aredis_loop_run_once(l, 1);
    assert_int_equal(d.count, 1);
    aredis__defer_free(l, d.h);
}

/* A defer armed from an I/O callback runs in that same run_once(block=1),
 * after the callback: before the loop could block again. */
static void conf_defer_from_io_same_turn(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};
    conf_cnt d;

    conf_defer(&d, l);
    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    r.drain = 1;
    r.defer = d.h;
    r.defer_count = &d.count;
    r.defers_seen = -1;
    conf_put(sv[1]);
    while (r.count == 0)
        aredis_loop_run_once(l, 1);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.defers_seen, 0); /* ran after the io callback... */
    assert_int_equal(d.count, 1);       /* ...and within the same run_once */
    aredis__defer_free(l, d.h);
    conf_io_pair_close(&r, sv);
}

/* A defer armed from a defer callback still runs before the loop blocks,
 * though an idle watcher gives the loop something to block on. */
static void conf_defer_chain_no_block(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io idle = {0};
    conf_cnt a, b;

    conf_io_pair(&idle, l, sv, AREDIS_EV_READ);
    conf_defer(&a, l);
    conf_defer(&b, l);
    a.other = b.h;
    uint64_t t0 = aredis_loop_now_ms(l);
    void *guard = aredis__timer_new(l, conf_flag_cb, &(int){0});
    aredis__timer_arm(l, guard, 3000);
    aredis__defer_arm(l, a.h);
    for (int i = 0; i < 2 && b.count == 0; i++)
        aredis_loop_run_once(l, 1);
    assert_int_equal(a.count, 1);
    assert_int_equal(b.count, 1);
    assert_true(aredis_loop_now_ms(l) - t0 < 1000);
    aredis__timer_free(l, guard);
    aredis__defer_free(l, a.h);
    aredis__defer_free(l, b.h);
    conf_io_pair_close(&idle, sv);
}

/* A defer re-arming itself from its callback neither live-locks run_once nor
 * lets it block. */
static void conf_defer_self_rearm_bounded(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io idle = {0};
    conf_cnt d;

    conf_io_pair(&idle, l, sv, AREDIS_EV_READ);
    conf_defer(&d, l);
    d.rearm_defer = 1;
    aredis__defer_arm(l, d.h);
    uint64_t t0 = aredis_loop_now_ms(l);
    aredis_loop_run_once(l, 1);
    assert_true(d.count >= 1 && d.count <= 3);
    int before = d.count;
    aredis_loop_run_once(l, 1);
    assert_true(d.count > before && d.count <= before + 3);
    assert_true(aredis_loop_now_ms(l) - t0 < 1000);
    aredis__defer_free(l, d.h);
    conf_io_pair_close(&idle, sv);
}

/* Freeing a pending defer (from outside, from another defer's callback, or
 * from its own) means it never runs (again). */
static void conf_defer_free_pending(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_cnt a, b, c;

    conf_defer(&a, l);
    aredis__defer_arm(l, a.h);
    aredis__defer_free(l, a.h);
    aredis_loop_run_once(l, 0);
    assert_int_equal(a.count, 0);

    conf_defer(&a, l);
    conf_defer(&b, l);
    conf_defer(&c, l);
    a.other = b.h;
    a.kill_other = 1;
    c.free_self = 1;
    aredis__defer_arm(l, a.h);
    aredis__defer_arm(l, b.h);
    aredis__defer_arm(l, c.h);
    aredis_loop_run_once(l, 0);
    aredis_loop_run_once(l, 0);
    assert_int_equal(a.count, 1);
    assert_int_equal(b.count, 0);
    assert_int_equal(c.count, 1);
    assert_null(c.h);
    aredis__defer_free(l, a.h);
}

/* ---- The loop ---------------------------------------------------------- */

/* run_once(block=0) returns at once when nothing is ready, reporting that
 * something is still watched; with nothing left it reports 0. */
static void conf_run_once_nonblocking(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io r = {0};
    conf_cnt t;

    conf_io_pair(&r, l, sv, AREDIS_EV_READ);
    conf_timer(&t, l);
    aredis__timer_arm(l, t.h, 10000);
    assert_true(aredis_loop_run_once(l, 0) != 0);
    assert_int_equal(r.count, 0);
    assert_int_equal(t.count, 0);
    aredis__timer_cancel(l, t.h);
    assert_true(aredis_loop_run_once(l, 0) != 0); /* the io still counts */
    conf_io_unwatch(&r);
    aredis__timer_free(l, t.h);
    int left = 1;
    for (int i = 0; i < 10 && left; i++)
        left = aredis_loop_run_once(l, 0);
    assert_int_equal(left, 0);
    close(sv[0]);
    close(sv[1]);
}

typedef struct conf_tick {
    aredis_loop *loop;
    aredis_timer *t;
    int count;
    int stop_at;
    int free_at;
    int loop_stop_at;
} conf_tick;

static void conf_tick_cb(void *arg) {
    conf_tick *k = arg;
    k->count++;
    if (k->count == k->stop_at) aredis_timer_stop(k->t);
    if (k->count == k->loop_stop_at) aredis_loop_stop(k->loop);
    if (k->count == k->free_at) {
        aredis_timer_free(k->t);
        k->t = NULL;
    }
}

/* A repeating aredis_timer ticks until stopped; it can be restarted. */
static void conf_user_timer_repeat(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_tick k = {0};

    k.loop = l;
    k.stop_at = 5;
    k.t = aredis_timer_new(l, conf_tick_cb, &k);
    assert_non_null(k.t);
    uint64_t t0 = aredis_loop_now_ms(l);
    aredis_timer_start(k.t, 5, 5);
    assert_true(conf_run_until(l, &k.count, 5, 3000));
    assert_true(aredis_loop_now_ms(l) - t0 >= 25);
    conf_run_for(l, 50);
    assert_int_equal(k.count, 5);
    aredis_timer_start(k.t, 0, 0);
    assert_true(conf_run_until(l, &k.count, 6, 3000));
    conf_run_for(l, 30);
    assert_int_equal(k.count, 6);
    aredis_timer_free(k.t);
}

/* A repeating aredis_timer may free itself from its callback. */
static void conf_user_timer_free_in_cb(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_tick k = {0};

    k.loop = l;
    k.free_at = 3;
    k.t = aredis_timer_new(l, conf_tick_cb, &k);
    assert_non_null(k.t);
    aredis_timer_start(k.t, 2, 2);
    assert_true(conf_run_until(l, &k.count, 3, 3000));
    assert_null(k.t);
    conf_run_for(l, 30);
    assert_int_equal(k.count, 3);
}

/* aredis_loop_run returns on aredis_loop_stop, and when nothing is left. */
static void conf_loop_run_stop(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_tick k = {0};
    conf_cnt once;

    k.loop = l;
    k.loop_stop_at = 3;
    k.t = aredis_timer_new(l, conf_tick_cb, &k);
    assert_non_null(k.t);
    aredis_timer_start(k.t, 1, 1);
    aredis_loop_run(l);
    assert_int_equal(k.count, 3);
    aredis_timer_free(k.t);

    conf_timer(&once, l);
    aredis__timer_arm(l, once.h, 5);
    aredis_loop_run(l);
    assert_int_equal(once.count, 1);
    aredis__timer_free(l, once.h);
}

static void *conf_d_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    (void)ld, (void)fd, (void)cb, (void)arg;
    return NULL;
}
static void conf_d_io_set(void *io, int events) { (void)io, (void)events; }
static void conf_d_free(void *h) { (void)h; }
static void *conf_d_new(void *ld, aredis_timer_fn *cb, void *arg) {
    (void)ld, (void)cb, (void)arg;
    return NULL;
}
static void conf_d_arm(void *t, uint64_t ms) { (void)t, (void)ms; }
static int conf_d_run_once(void *ld, int block) {
    (void)ld, (void)block;
    return 0;
}
static uint64_t conf_d_now(void *ld) {
    (void)ld;
    return 0;
}
static void conf_d_cleanup(void *ld) { (*(int *)ld)++; }
static int conf_d_wakes; /* wake handles made and not freed */
static void *conf_d_wake_new(void *ld, aredis_timer_fn *cb, void *arg) {
    (void)ld, (void)cb, (void)arg;
    conf_d_wakes++;
    return &conf_d_wakes;
}
static void conf_d_wake_free(void *w) {
    (void)w;
    conf_d_wakes--;
}

/* aredis_loop_from_vtable refuses a vtable with any NULL entry; it makes its
 * wake handle at once, and aredis_loop_free frees it. */
static void conf_from_vtable_null(void **state) {
    const aredis_loop_vtable full = {
        conf_d_io_new,  conf_d_io_set,   conf_d_free,     conf_d_new,
        conf_d_arm,     conf_d_free,     conf_d_free,     conf_d_new,
        conf_d_free,    conf_d_free,     conf_d_run_once, conf_d_now,
        conf_d_cleanup, conf_d_wake_new, conf_d_free,     conf_d_wake_free,
    };
    int cleaned = 0;
    aredis_loop_vtable vt;

    (void)state;
    assert_null(aredis_loop_from_vtable(NULL, &cleaned));
#define CONF_NULL_ONE(field)                                                                       \
    do {                                                                                           \
        vt = full;                                                                                 \
        vt.field = NULL;                                                                           \
        assert_null(aredis_loop_from_vtable(&vt, &cleaned));                                       \
    } while (0)
    CONF_NULL_ONE(io_new);
    CONF_NULL_ONE(io_set);
    CONF_NULL_ONE(io_free);
    CONF_NULL_ONE(timer_new);
    CONF_NULL_ONE(timer_arm);
    CONF_NULL_ONE(timer_cancel);
    CONF_NULL_ONE(timer_free);
    CONF_NULL_ONE(defer_new);
    CONF_NULL_ONE(defer_arm);
    CONF_NULL_ONE(defer_free);
    CONF_NULL_ONE(run_once);
    CONF_NULL_ONE(now_ms);
    CONF_NULL_ONE(cleanup);
    CONF_NULL_ONE(wake_new);
    CONF_NULL_ONE(wake_signal);
    CONF_NULL_ONE(wake_free);
#undef CONF_NULL_ONE
    assert_int_equal(cleaned, 0);
    assert_int_equal(conf_d_wakes, 0);
    aredis_loop *l = aredis_loop_from_vtable(&full, &cleaned);
    assert_non_null(l);
    assert_int_equal(conf_d_wakes, 1);
    assert_ptr_equal(aredis_loop_data(l), &cleaned);
    aredis_loop_free(l);
    assert_int_equal(cleaned, 1);
    assert_int_equal(conf_d_wakes, 0);
}

/* ---- Wake handles and posts (other threads) ------------------------------ */

/* Skip a test that signals or posts from other threads where the loop does
 * not allow it. */
static int conf_no_threads(void) {
    if (conf_drv->threads) return 0;
    printf("# skipped: %s is not built for other threads\n", conf_drv->name);
    return 1;
}

/* Run turns (blocking) until pred(arg), for at most ms behind a guard timer.
 * 1 only if pred held before the guard fired: a wake-up that did not end a
 * blocking wait would leave the loop asleep until the guard. */
static int conf_wait(aredis_loop *l, int (*pred)(void *), void *arg, uint64_t ms) {
    int expired = 0;
    void *guard = aredis__timer_new(l, conf_flag_cb, &expired);

    assert_non_null(guard);
    aredis__timer_arm(l, guard, ms);
    while (!pred(arg) && !expired)
        aredis_loop_run_once(l, 1);
    aredis__timer_free(l, guard);
    return pred(arg) && !expired;
}

#define CONF_WTHREADS 4

/* A wake handle, signalled by up to CONF_WTHREADS threads. Each signaller i
 * publishes a sequence number in pub[i] before each signal; every callback
 * run copies pub[] into seen[]: once seen[i] is signaller i's last number,
 * the run after its last signal has happened. */
typedef struct conf_wk {
    aredis_loop *loop;
    void *h;
    pthread_t loop_thread;
    int count;      /* callback runs (loop thread only) */
    int off_thread; /* runs on another thread than the loop's */
    int free_self;  /* wake_free from the callback */
    int resignal;   /* wake_signal from the callback while count < this */
    long seen[CONF_WTHREADS];
    atomic_long pub[CONF_WTHREADS];
    atomic_long ack[CONF_WTHREADS]; /* seen[], for the signallers to read */
    long per_thread;                /* signals each signaller sends */
    int nthreads;
} conf_wk;

static void conf_wk_cb(void *arg) {
    conf_wk *k = arg;
    k->count++;
    if (!pthread_equal(pthread_self(), k->loop_thread)) k->off_thread++;
    for (int i = 0; i < CONF_WTHREADS; i++) {
        k->seen[i] = atomic_load(&k->pub[i]);
        atomic_store(&k->ack[i], k->seen[i]);
    }
    if (k->resignal && k->count < k->resignal) aredis__wake_signal(k->loop, k->h);
    if (k->free_self) {
        aredis__wake_free(k->loop, k->h);
        k->h = NULL;
    }
}

static void conf_wk_make(conf_wk *k, aredis_loop *l) {
    memset(k, 0, sizeof *k);
    k->loop = l;
    k->loop_thread = pthread_self();
    for (int i = 0; i < CONF_WTHREADS; i++) {
        atomic_init(&k->pub[i], 0);
        atomic_init(&k->ack[i], 0);
    }
    k->h = aredis__wake_new(l, conf_wk_cb, k);
    assert_non_null(k->h);
}

typedef struct conf_wk_arg {
    conf_wk *k;
    int i;
} conf_wk_arg;

#define CONF_WK_LAG 500

/*
 * Publish 1..per_thread, signalling after each. Every CONF_WK_LAG signals the
 * signaller waits until a callback has seen its number of CONF_WK_LAG
 * signals ago (bounded by the test's alarm), so that signals keep landing
 * while callbacks run instead of all coming before the first one.
 */
static void *conf_wk_signaller(void *p) {
    conf_wk_arg *a = p;
    for (long n = 1; n <= a->k->per_thread; n++) {
        atomic_store(&a->k->pub[a->i], n);
        aredis__wake_signal(a->k->loop, a->k->h);
        if (n % CONF_WK_LAG == 0) {
            while (atomic_load(&a->k->ack[a->i]) < n - CONF_WK_LAG)
                sched_yield();
        }
    }
    return NULL;
}

static int conf_wk_all_seen(void *p) {
    conf_wk *k = p;
    for (int i = 0; i < k->nthreads; i++)
        if (k->seen[i] != k->per_thread) return 0;
    return k->nthreads > 0;
}

static void conf_wk_start(conf_wk *k, pthread_t *th, conf_wk_arg *args, int n, long per) {
    k->nthreads = n;
    k->per_thread = per;
    for (int i = 0; i < n; i++) {
        args[i].k = k;
        args[i].i = i;
        assert_int_equal(pthread_create(&th[i], NULL, conf_wk_signaller, &args[i]), 0);
    }
}

/* A signal from another thread ends a blocking wait (the loop watches
 * something idle, and a guard timer 10 s away), and the callback runs on
 * the loop's thread. */
static void conf_wake_from_thread(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io idle = {0};
    conf_wk k;
    pthread_t th;
    conf_wk_arg arg;

    if (conf_no_threads()) return;
    conf_io_pair(&idle, l, sv, AREDIS_EV_READ);
    conf_wk_make(&k, l);
    conf_wk_start(&k, &th, &arg, 1, 1);
    assert_true(conf_wait(l, conf_wk_all_seen, &k, 10000));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(k.count >= 1);
    assert_int_equal(k.off_thread, 0);
    aredis__wake_free(l, k.h);
    conf_io_pair_close(&idle, sv);
}

/* Four threads signal 20,000 times each, as fast as they can: the signals
 * coalesce (fewer callback runs than signals, logged), yet the last signal
 * of every thread is followed by a run. */
static void conf_wake_coalesce(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_wk k;
    pthread_t th[CONF_WTHREADS];
    conf_wk_arg args[CONF_WTHREADS];
    const long per = 20000;

    if (conf_no_threads()) return;
    conf_wk_make(&k, l);
    conf_wk_start(&k, th, args, CONF_WTHREADS, per);
    assert_true(conf_wait(l, conf_wk_all_seen, &k, 15000));
    for (int i = 0; i < CONF_WTHREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(k.off_thread, 0);
    assert_true(k.count >= 1 && k.count <= CONF_WTHREADS * per);
    printf("# %s: %ld signals, %d callback runs\n", conf_drv->name, CONF_WTHREADS * per, k.count);
    aredis__wake_free(l, k.h);
}

/* Signals from the loop's own thread: never run inside the call; a callback
 * that signals again runs again in a later turn (no live-lock: each
 * blocking run_once returns); one that frees its own handle never runs
 * again. */
static void conf_wake_same_thread(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    int sv[2];
    conf_io idle = {0};
    conf_wk k;

    conf_io_pair(&idle, l, sv, AREDIS_EV_READ);
    conf_wk_make(&k, l);
    k.resignal = 3;
    aredis__wake_signal(l, k.h);
    assert_int_equal(k.count, 0);
    void *guard = aredis__timer_new(l, conf_flag_cb, &(int){0});
    aredis__timer_arm(l, guard, 10000);
    for (int i = 0; i < 100 && k.count < 3; i++) {
        int before = k.count;
        aredis_loop_run_once(l, 1);
        assert_true(k.count <= before + 2);
    }
    aredis__timer_free(l, guard);
    assert_int_equal(k.count, 3);
    conf_run_for(l, 30);
    assert_int_equal(k.count, 3);
    k.free_self = 1;
    aredis__wake_signal(l, k.h);
    aredis__wake_signal(l, k.h);
    conf_run_for(l, 50);
    assert_int_equal(k.count, 4);
    assert_null(k.h);
    conf_io_pair_close(&idle, sv);
}

/* A wake handle freed while signalled never runs. */
static void conf_wake_free_signalled(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_wk k;

    conf_wk_make(&k, l);
    aredis__wake_signal(l, k.h);
    aredis__wake_free(l, k.h);
    conf_run_for(l, 50);
    assert_int_equal(k.count, 0);
}

/* An idle wake handle keeps nothing alive: run_once reports nothing left,
 * and aredis_loop_run returns. */
static void conf_wake_idle_not_alive(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_wk k;

    conf_wk_make(&k, l);
    int left = 1;
    for (int i = 0; i < 10 && left; i++)
        left = aredis_loop_run_once(l, 0);
    assert_int_equal(left, 0);
    aredis_loop_run(l); /* returns (alarm() catches a hang) */
    assert_int_equal(aredis_loop_run_once(l, 1), 0);
    aredis__wake_free(l, k.h);
}

/* ---- aredis_loop_post ---- */

#define CONF_PTHREADS 4
#define CONF_PPER 2000

typedef struct conf_posts {
    aredis_loop *loop;
    pthread_t loop_thread;
    long next[CONF_PTHREADS]; /* the next sequence number expected of each poster */
    long ran, out_of_order, off_thread, not_ok, on_thread_wrong;
    int stop_at; /* aredis_loop_stop() when `ran` reaches it */
} conf_posts;

typedef struct conf_pjob {
    conf_posts *p;
    int t;
    long seq;
    int repost; /* post a copy of itself with seq + 1 while seq < repost */
} conf_pjob;

static void conf_pjob_fn(void *arg, aredis_err code) {
    conf_pjob *j = arg;
    conf_posts *p = j->p;
    if (code != AREDIS_ERR_OK) p->not_ok++;
    if (!pthread_equal(pthread_self(), p->loop_thread)) p->off_thread++;
    if (!aredis_loop_on_thread(p->loop)) p->on_thread_wrong++;
    if (j->seq != p->next[j->t]) p->out_of_order++;
    p->next[j->t] = j->seq + 1;
    p->ran++;
    if (p->stop_at && p->ran == p->stop_at) aredis_loop_stop(p->loop);
    if (j->repost && j->seq < j->repost) {
        j->seq++;
        assert_int_equal(aredis_loop_post(p->loop, conf_pjob_fn, j), AREDIS_ERR_OK);
    }
}

typedef struct conf_poster {
    conf_posts *p;
    conf_pjob *jobs;
    int t;
    long n, refused, on_thread;
} conf_poster;

static void *conf_poster_main(void *arg) {
    conf_poster *w = arg;
    if (aredis_loop_on_thread(w->p->loop)) w->on_thread++;
    for (long i = 0; i < w->n; i++) {
        w->jobs[i].p = w->p;
        w->jobs[i].t = w->t;
        w->jobs[i].seq = i;
        if (aredis_loop_post(w->p->loop, conf_pjob_fn, &w->jobs[i]) != AREDIS_ERR_OK) w->refused++;
    }
    return NULL;
}

static int conf_posts_all_ran(void *arg) {
    const conf_posts *p = arg;
    return p->ran == (long)CONF_PTHREADS * CONF_PPER;
}

static void conf_posts_init(conf_posts *p, aredis_loop *l) {
    memset(p, 0, sizeof *p);
    p->loop = l;
    p->loop_thread = pthread_self();
}

/* Four threads post 2,000 jobs each: every job runs once, on the loop's
 * thread, and each thread's jobs run in the order it posted them. */
static void conf_post_from_threads(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    static conf_pjob jobs[CONF_PTHREADS][CONF_PPER];
    conf_posts p;
    conf_poster w[CONF_PTHREADS];
    pthread_t th[CONF_PTHREADS];
    int sv[2];
    conf_io idle = {0};

    if (conf_no_threads()) return;
    conf_io_pair(&idle, l, sv, AREDIS_EV_READ);
    conf_posts_init(&p, l);
    assert_true(aredis_loop_on_thread(l));
    for (int t = 0; t < CONF_PTHREADS; t++) {
        w[t] = (conf_poster){&p, jobs[t], t, CONF_PPER, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, conf_poster_main, &w[t]), 0);
    }
    assert_true(conf_wait(l, conf_posts_all_ran, &p, 15000));
    for (int t = 0; t < CONF_PTHREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(w[t].refused, 0);
        assert_int_equal(w[t].on_thread, 0);
        assert_int_equal(p.next[t], CONF_PPER);
    }
    assert_int_equal(p.out_of_order, 0);
    assert_int_equal(p.off_thread, 0);
    assert_int_equal(p.on_thread_wrong, 0);
    assert_int_equal(p.not_ok, 0);
    conf_run_for(l, 20);
    assert_int_equal(p.ran, (long)CONF_PTHREADS * CONF_PPER);
    conf_io_pair_close(&idle, sv);
}

/* Posts from the loop's own thread run in a later turn, never inside the
 * call; with nothing else on the loop, a pending post keeps run_once and
 * aredis_loop_run going, and run() returns once the posts (a job that
 * posts itself again, three times) are done. */
static void conf_post_same_thread(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_posts p;
    conf_pjob a = {0}, b = {0};

    conf_posts_init(&p, l);
    a.p = b.p = &p;
    b.t = 1;
    assert_int_equal(aredis_loop_post(l, conf_pjob_fn, &a), AREDIS_ERR_OK);
    assert_int_equal(p.ran, 0);
    aredis_loop_run_once(l, 0);
    assert_int_equal(p.ran, 1);
    int left = 1; /* nothing left: the turns do not block, and say so */
    for (int i = 0; i < 10 && left; i++)
        left = aredis_loop_run_once(l, 1);
    assert_int_equal(left, 0);

    b.repost = 3;
    assert_int_equal(aredis_loop_post(l, conf_pjob_fn, &b), AREDIS_ERR_OK);
    aredis_loop_run(l);
    assert_int_equal(p.ran, 5);
    assert_int_equal(p.next[1], 4);
    assert_int_equal(p.out_of_order + p.off_thread + p.not_ok, 0);
    assert_int_equal(aredis_loop_post(NULL, conf_pjob_fn, &a), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_loop_post(l, NULL, &a), AREDIS_ERR_INVALID);
}

static void *conf_stopper_main(void *arg) {
    conf_poster *w = arg;
    w->jobs[0].p = w->p;
    if (aredis_loop_post(w->p->loop, conf_pjob_fn, &w->jobs[0]) != AREDIS_ERR_OK) w->refused++;
    return NULL;
}

/* A job posted from another thread wakes aredis_loop_run blocked on an idle
 * watcher and a guard 10 s away, and stops it (aredis_loop_stop from
 * another thread goes through a post). */
static void conf_post_stops_blocked_run(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    conf_posts p;
    conf_pjob job = {0};
    conf_poster w = {0};
    pthread_t th;
    int sv[2], expired = 0;
    conf_io idle = {0};

    if (conf_no_threads()) return;
    conf_io_pair(&idle, l, sv, AREDIS_EV_READ);
    conf_posts_init(&p, l);
    p.stop_at = 1;
    w.p = &p;
    w.jobs = &job;
    void *guard = aredis__timer_new(l, conf_flag_cb, &expired);
    aredis__timer_arm(l, guard, 10000);
    assert_int_equal(pthread_create(&th, NULL, conf_stopper_main, &w), 0);
    aredis_loop_run(l);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.refused, 0);
    assert_int_equal(p.ran, 1);
    assert_int_equal(expired, 0);
    aredis__timer_free(l, guard);
    conf_io_pair_close(&idle, sv);
}

typedef struct conf_closing {
    aredis_loop *loop;
    int order[4];
    aredis_err code[4];
    int n;
    aredis_err repost; /* what a post from inside a closing job returned */
} conf_closing;

typedef struct conf_cjob {
    conf_closing *c;
    int id;
} conf_cjob;

static void conf_cjob_fn(void *arg, aredis_err code) {
    conf_cjob *j = arg;
    conf_closing *c = j->c;
    c->order[c->n] = j->id;
    c->code[c->n] = code;
    c->n++;
    if (code == AREDIS_ERR_CLOSED && j->id == 1)
        c->repost = aredis_loop_post(c->loop, conf_cjob_fn, j);
}

/* aredis_loop_free runs the jobs still posted, in order, with CLOSED; a
 * post made meanwhile is refused with CLOSED. */
static void conf_post_run_at_free(void **state) {
    (void)state;
    void *foreign = NULL;
    aredis_loop *l = conf_drv->make(&foreign);
    conf_closing c = {0};
    conf_cjob j[3] = {{&c, 0}, {&c, 1}, {&c, 2}};

    assert_non_null(l);
    c.loop = l;
    c.repost = AREDIS_ERR_OK;
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_loop_post(l, conf_cjob_fn, &j[i]), AREDIS_ERR_OK);
    conf_drv->destroy(l, foreign);
    assert_int_equal(c.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c.order[i], i);
        assert_int_equal(c.code[i], AREDIS_ERR_CLOSED);
    }
    assert_int_equal(c.repost, AREDIS_ERR_CLOSED);
}

/* aredis_loop_on_thread: the loop's thread only. */
static void *conf_on_thread_main(void *arg) { return (void *)(intptr_t)aredis_loop_on_thread(arg); }

static void conf_post_on_thread(void **state) {
    aredis_loop *l = CONF_LOOP(state);
    pthread_t th;
    void *r = (void *)1;

    assert_true(aredis_loop_on_thread(l));
    assert_false(aredis_loop_on_thread(NULL));
    assert_int_equal(pthread_create(&th, NULL, conf_on_thread_main, l), 0);
    assert_int_equal(pthread_join(th, &r), 0);
    assert_null(r);
}

/* ---- Allocation through aredis's hooks ------------------------------------ */

/*
 * Every allocation of the loop — the built-in one's and each adapter's
 * watchers, timers and defers — goes through aredis_set_allocator()'s hooks:
 * counted live here, and back to zero once everything and the loop are freed.
 */
static long conf_live, conf_allocs;

static void *conf_a_malloc(size_t n) {
    void *p = malloc(n);
    if (p) conf_live++, conf_allocs++;
    return p;
}

static void *conf_a_calloc(size_t m, size_t n) {
    void *p = calloc(m, n);
    if (p) conf_live++, conf_allocs++;
    return p;
}

static void *conf_a_realloc(void *old, size_t n) {
    void *p = realloc(old, n);
    if (p && !old) conf_live++, conf_allocs++;
    return p;
}

static void conf_a_free(void *p) {
    if (p) conf_live--;
    free(p);
}

static void conf_io_nop_cb(void *arg, int events) {
    (void)arg;
    (void)events;
}

static void conf_allocations_through_hooks(void **state) {
    (void)state;
    const aredis_allocator counting = {conf_a_malloc, conf_a_calloc, conf_a_realloc, conf_a_free};
    conf_live = conf_allocs = 0;
    aredis_set_allocator(&counting);
    void *foreign = NULL;
    aredis_loop *l = conf_drv->make(&foreign);
    assert_non_null(l);
    assert_true(conf_allocs > 0); /* the loop itself */
    long before = conf_allocs;

    int sv[2], fired = 0;
    conf_socketpair(sv);
    void *io = aredis__io_new(l, sv[0], conf_io_nop_cb, NULL);
    void *t = aredis__timer_new(l, conf_flag_cb, &fired);
    void *d = aredis__defer_new(l, conf_flag_cb, &fired);
    assert_non_null(io);
    assert_non_null(t);
    assert_non_null(d);
    assert_true(conf_allocs >= before + 3); /* one at least for each */
    aredis__io_set(l, io, AREDIS_EV_READ);
    aredis__timer_arm(l, t, 1);
    aredis__defer_arm(l, d);
    conf_closing c = {0};
    conf_cjob j = {&c, 0};
    c.loop = l;
    assert_int_equal(aredis_loop_post(l, conf_cjob_fn, &j), AREDIS_ERR_OK);
    assert_true(conf_run_until(l, &fired, 1, 5000));
    assert_true(conf_run_until(l, &c.n, 1, 5000));
    aredis__io_free(l, io);
    aredis__timer_free(l, t);
    aredis__defer_free(l, d);
    conf_drv->destroy(l, foreign);
    aredis_reset_allocator();
    assert_int_equal(conf_live, 0); /* freed through the same hooks */
    close(sv[0]);
    close(sv[1]);
}

/* ---- Runner ------------------------------------------------------------ */

static int conf_main(const conf_driver *drv) {
#define CONF_T(fn) cmocka_unit_test_setup_teardown(fn, conf_setup, conf_teardown)
    const struct CMUnitTest tests[] = {
        CONF_T(conf_io_read_fires),
        CONF_T(conf_io_set_idempotent),
        CONF_T(conf_io_write),
        CONF_T(conf_io_set_zero_stops),
        CONF_T(conf_io_free_in_own_cb),
        CONF_T(conf_io_free_other_same_turn),
        CONF_T(conf_io_replace_in_cb),
        CONF_T(conf_io_hangup),
        CONF_T(conf_timer_fires_once),
        CONF_T(conf_timer_rearm_moves),
        CONF_T(conf_timer_cancel),
        CONF_T(conf_timer_free_in_own_cb),
        CONF_T(conf_timer_rearm_in_own_cb),
        CONF_T(conf_timers_many),
        CONF_T(conf_defer_armed_twice_runs_once),
        CONF_T(conf_defer_before_run),
        CONF_T(conf_defer_from_io_same_turn),
        CONF_T(conf_defer_chain_no_block),
        CONF_T(conf_defer_self_rearm_bounded),
        CONF_T(conf_defer_free_pending),
        CONF_T(conf_run_once_nonblocking),
        CONF_T(conf_user_timer_repeat),
        CONF_T(conf_user_timer_free_in_cb),
        CONF_T(conf_loop_run_stop),
        CONF_T(conf_wake_from_thread),
        CONF_T(conf_wake_coalesce),
        CONF_T(conf_wake_same_thread),
        CONF_T(conf_wake_free_signalled),
        CONF_T(conf_wake_idle_not_alive),
        CONF_T(conf_post_from_threads),
        CONF_T(conf_post_same_thread),
        CONF_T(conf_post_stops_blocked_run),
        CONF_T(conf_post_on_thread),
        cmocka_unit_test(conf_post_run_at_free),
        cmocka_unit_test(conf_from_vtable_null),
        cmocka_unit_test(conf_allocations_through_hooks),
    };
#undef CONF_T
    conf_drv = drv;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name(drv->name, tests, NULL, NULL);
}

#endif
