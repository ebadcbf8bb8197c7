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
#include <signal.h>
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

/* aredis_loop_from_vtable refuses a vtable with any NULL entry. */
static void conf_from_vtable_null(void **state) {
    const aredis_loop_vtable full = {
        conf_d_io_new,   conf_d_io_set, conf_d_free,    conf_d_new,  conf_d_arm,
        conf_d_free,     conf_d_free,   conf_d_new,     conf_d_free, conf_d_free,
        conf_d_run_once, conf_d_now,    conf_d_cleanup,
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
#undef CONF_NULL_ONE
    assert_int_equal(cleaned, 0);
    aredis_loop *l = aredis_loop_from_vtable(&full, &cleaned);
    assert_non_null(l);
    assert_ptr_equal(aredis_loop_data(l), &cleaned);
    aredis_loop_free(l);
    assert_int_equal(cleaned, 1);
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
    assert_true(conf_run_until(l, &fired, 1, 5000));
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
        cmocka_unit_test(conf_from_vtable_null),
        cmocka_unit_test(conf_allocations_through_hooks),
    };
#undef CONF_T
    conf_drv = drv;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name(drv->name, tests, NULL, NULL);
}

#endif
