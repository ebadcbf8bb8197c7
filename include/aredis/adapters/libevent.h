/**
 * @file
 * aredis/adapters/libevent.h — run aredis on a libevent (2.1+) event_base.
 * Header-only.
 *
 *     #include <event2/event.h>
 *     #include <aredis/aredis.h>
 *     #include <aredis/adapters/libevent.h>
 *
 *     struct event_base *base = event_base_new();
 *     aredis_loop *loop = aredis_loop_libevent(base);  // NULL: out of memory
 *     ... make clients on `loop`, issue commands ...
 *     event_base_dispatch(base);                       // or aredis_loop_run(loop)
 *     ... free the clients ...
 *     aredis_loop_free(loop);                          // never frees `base`
 *     event_base_free(base);
 *
 * Mapping: io = one event per watcher, (re)assigned with EV_PERSIST and the
 * wanted EV_READ/EV_WRITE when the mask changes; timer = evtimer; defers = one
 * list per loop, run by a "runner" event with fd -1. Arming a defer activates
 * the runner (event_active), which libevent runs in the same pass over active
 * events and, in any case, before it next waits (an active event makes the
 * wait non-blocking). A defer armed while the runner itself runs is not
 * activated again in the same pass (that could live-lock); the runner then
 * re-adds itself with a zero timeout, which also keeps the next wait from
 * blocking. run_once() runs one event_base_loop(EVLOOP_ONCE / EVLOOP_NONBLOCK)
 * then the defers armed during it, and reports whether the base still has
 * added or active events (event_base_get_num_events), so the base's other
 * events count too.
 *
 * Clock: CLOCK_MONOTONIC when <time.h> declares it, else libevent's
 * event_gettime_monotonic(). libevent schedules timers from its cached time;
 * the adapter refreshes that cache before arming and re-arms a timer that
 * fires before its deadline by our clock, so timers never fire early.
 *
 * Wake handles (aredis_loop_post from other threads): an event with fd -1
 * each, not added while idle, made active by event_active(). Not being
 * added, an idle one keeps neither event_base_dispatch() nor run_once()
 * alive. libevent runs an event activated during its own callback again in
 * the same pass, which would let a callback that signals its own handle (a
 * posted job that posts again) starve everything else: a small state
 * (idle, active, running, running and signalled again) turns a signal that
 * comes while the callback runs into a run in the next pass (the event is
 * added with a zero timeout) instead. THREADS:
 * event_active() from another thread is safe only on a base made after
 * libevent's locking was turned on, so a program that posts to a libevent
 * loop from other threads (aredis_loop_post, aredis/threads.h) must call
 *
 *     evthread_use_pthreads();          // <event2/thread.h>, -levent_pthreads
 *
 * once, before event_base_new(). libevent offers no way to check that it
 * was: without it such posts race with the loop. A program that never posts
 * from another thread needs nothing.
 */
#ifndef AREDIS_ADAPTERS_LIBEVENT_H
#define AREDIS_ADAPTERS_LIBEVENT_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "../loop.h"
#include "adapter_common.h"

typedef struct aredis__le {
    struct event_base *base;
    struct event *runner; /**< fd -1: runs the pending defers */
    aredis__adapter_link pending;
    int in_runner;
} aredis__le;

typedef struct aredis__le_io {
    struct event *ev;
    aredis__le *a;
    aredis__adapter_io io;
    evutil_socket_t fd;
} aredis__le_io;

/* A wake handle's state (GCC/Clang __atomic builtins: the header stays C99
 * and C++). */
#define AREDIS__LE_WAKE_IDLE 0
#define AREDIS__LE_WAKE_ACTIVE 1  /* activated or re-added, callback not started */
#define AREDIS__LE_WAKE_RUNNING 2 /* the callback runs */
#define AREDIS__LE_WAKE_AGAIN 3   /* the callback runs, and a signal came meanwhile */

typedef struct aredis__le_wake {
    struct event *ev;
    aredis_timer_fn *cb;
    void *arg;
    int state;    /**< AREDIS__LE_WAKE_*, atomic */
    int in_cb;    /**< loop thread only */
    int freed_cb; /**< wake_free from the callback: free once it returns */
} aredis__le_wake;

typedef struct aredis__le_timer {
    struct event *ev;
    aredis__le *a;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t due; /**< us */
} aredis__le_timer;

static inline uint64_t aredis__le_now_us(aredis__le *a) {
#ifdef AREDIS__ADAPTER_HAVE_MONOTONIC
    (void)a;
    return aredis__adapter_monotonic_ns() / 1000u;
#else
    struct timeval tv;
    event_gettime_monotonic(a->base, &tv);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
#endif
}

/* ---- io ---- */

static inline void aredis__le_io_cb(evutil_socket_t fd, short what, void *arg) {
    aredis__le_io *w = (aredis__le_io *)arg;

    (void)fd;
    aredis__adapter_io_fire(
        &w->io, 0,
        aredis__adapter_map_events(what, EV_READ, EV_WRITE, AREDIS_EV_READ, AREDIS_EV_WRITE));
}

static inline void *aredis__le_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    aredis__le *a = (aredis__le *)ld;
    aredis__le_io *w = (aredis__le_io *)aredis_mem_calloc(1, sizeof *w);

    if (!w) return NULL;
    w->ev = event_new(a->base, fd, 0, aredis__le_io_cb, w);
    if (!w->ev) {
        aredis_mem_free(w);
        return NULL;
    }
    w->a = a;
    w->io.cb = cb;
    w->io.arg = arg;
    w->fd = fd;
    return w;
}

static inline void aredis__le_io_set(void *p, int events) {
    aredis__le_io *w = (aredis__le_io *)p;
    short flags = EV_PERSIST;

    events &= AREDIS_EV_READ | AREDIS_EV_WRITE;
    if (events == w->io.mask) return;
    w->io.mask = events;
    event_del(w->ev); /* event_assign needs a non-pending event */
    if (events == 0) return;
    flags |= (short)aredis__adapter_map_events(events, AREDIS_EV_READ, AREDIS_EV_WRITE, EV_READ,
                                               EV_WRITE);
    event_assign(w->ev, w->a->base, w->fd, flags, aredis__le_io_cb, w);
    event_add(w->ev, NULL);
}

static inline void aredis__le_io_free(void *p) {
    aredis__le_io *w = (aredis__le_io *)p;
    if (!w) return;
    event_free(w->ev); /* also drops it from this pass's active queue */
    aredis_mem_free(w);
}

/* ---- timers ---- */

static inline void aredis__le_timer_add(aredis__le_timer *t, uint64_t now) {
    uint64_t us = aredis__adapter_left(t->due, now);
    struct timeval tv;

    tv.tv_sec = (time_t)(us / 1000000u);
    tv.tv_usec = (int)(us % 1000000u);
    event_base_update_cache_time(t->a->base); /* count from now, not from the turn's start */
    evtimer_add(t->ev, &tv);
}

static inline void aredis__le_timer_cb(evutil_socket_t fd, short what, void *arg) {
    aredis__le_timer *t = (aredis__le_timer *)arg;
    uint64_t now = aredis__le_now_us(t->a);

    (void)fd;
    (void)what;
    if (now < t->due) {
        aredis__le_timer_add(t, now); /* early by our clock: wait for the rest */
        return;
    }
    t->cb(t->arg);
}

static inline void *aredis__le_timer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    aredis__le *a = (aredis__le *)ld;
    aredis__le_timer *t = (aredis__le_timer *)aredis_mem_calloc(1, sizeof *t);

    if (!t) return NULL;
    t->ev = evtimer_new(a->base, aredis__le_timer_cb, t);
    if (!t->ev) {
        aredis_mem_free(t);
        return NULL;
    }
    t->a = a;
    t->cb = cb;
    t->arg = arg;
    return t;
}

static inline void aredis__le_timer_arm(void *p, uint64_t ms) {
    aredis__le_timer *t = (aredis__le_timer *)p;
    uint64_t now = aredis__le_now_us(t->a);

    /* Capped at ~31 years so that the timeval cannot overflow. */
    if (ms > 1000000000000u) ms = 1000000000000u;
    t->due = aredis__adapter_deadline(now, ms, 1000u);
    aredis__le_timer_add(t, now);
}

static inline void aredis__le_timer_cancel(void *p) { evtimer_del(((aredis__le_timer *)p)->ev); }

static inline void aredis__le_timer_free(void *p) {
    aredis__le_timer *t = (aredis__le_timer *)p;
    if (!t) return;
    event_free(t->ev);
    aredis_mem_free(t);
}

/* ---- defers ---- */

static inline void aredis__le_runner_cb(evutil_socket_t fd, short what, void *arg) {
    aredis__le *a = (aredis__le *)arg;

    (void)fd;
    (void)what;
    a->in_runner = 1;
    aredis__adapter_run_defers(&a->pending);
    a->in_runner = 0;
    if (!aredis__adapter_list_empty(&a->pending)) {
        struct timeval zero = {0, 0};
        event_add(a->runner, &zero); /* next turn, without blocking */
    }
}

static inline void *aredis__le_defer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    return aredis__adapter_defer_new(ld, &((aredis__le *)ld)->pending, cb, arg);
}

static inline void aredis__le_defer_arm(void *p) {
    aredis__adapter_defer *d = (aredis__adapter_defer *)p;
    aredis__le *a = (aredis__le *)d->owner;
    int was_empty = aredis__adapter_list_empty(&a->pending);

    /* (not when already pending: the list was not empty then) */
    if (aredis__adapter_defer_enqueue(d) && was_empty && !a->in_runner)
        event_active(a->runner, EV_TIMEOUT, 0);
}

/* ---- wake handles ---- */

static inline void aredis__le_wake_cb(evutil_socket_t fd, short what, void *arg) {
    aredis__le_wake *w = (aredis__le_wake *)arg;
    int s = AREDIS__LE_WAKE_RUNNING;

    (void)fd;
    (void)what;
    (void)__atomic_exchange_n(&w->state, AREDIS__LE_WAKE_RUNNING, __ATOMIC_SEQ_CST);
    w->in_cb = 1;
    w->cb(w->arg);
    w->in_cb = 0;
    if (w->freed_cb) {
        event_free(w->ev);
        aredis_mem_free(w);
        return;
    }
    if (!__atomic_compare_exchange_n(&w->state, &s, AREDIS__LE_WAKE_IDLE, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST)) {
        /* Signalled while running: run again, in the next pass. */
        struct timeval zero = {0, 0};
        __atomic_store_n(&w->state, AREDIS__LE_WAKE_ACTIVE, __ATOMIC_SEQ_CST);
        event_add(w->ev, &zero);
    }
}

static inline void *aredis__le_wake_new(void *ld, aredis_timer_fn *cb, void *arg) {
    aredis__le *a = (aredis__le *)ld;
    aredis__le_wake *w = (aredis__le_wake *)aredis_mem_calloc(1, sizeof *w);

    if (!w) return NULL;
    w->ev = event_new(a->base, -1, 0, aredis__le_wake_cb, w);
    if (!w->ev) {
        aredis_mem_free(w);
        return NULL;
    }
    w->cb = cb;
    w->arg = arg;
    return w;
}

/** Any thread, on a base with libevent's locking (see the top). Only an idle
 * handle is activated; an active one will run anyway, and a running one is
 * told to run again (next pass). */
static inline void aredis__le_wake_signal(void *p) {
    aredis__le_wake *w = (aredis__le_wake *)p;
    int s = __atomic_load_n(&w->state, __ATOMIC_SEQ_CST);

    for (;;) {
        int to;
        if (s == AREDIS__LE_WAKE_ACTIVE || s == AREDIS__LE_WAKE_AGAIN) return;
        to = s == AREDIS__LE_WAKE_IDLE ? AREDIS__LE_WAKE_ACTIVE : AREDIS__LE_WAKE_AGAIN;
        if (__atomic_compare_exchange_n(&w->state, &s, to, 1, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            if (to == AREDIS__LE_WAKE_ACTIVE) event_active(w->ev, EV_READ, 0);
            return;
        }
    }
}

static inline void aredis__le_wake_free(void *p) {
    aredis__le_wake *w = (aredis__le_wake *)p;
    if (!w) return;
    if (w->in_cb) { /* its own callback: it still uses w */
        w->freed_cb = 1;
        return;
    }
    event_free(w->ev); /* also drops it from the active queue and the timeouts */
    aredis_mem_free(w);
}

/* ---- the loop ---- */

static inline int aredis__le_run_once(void *ld, int block) {
    aredis__le *a = (aredis__le *)ld;
    event_base_loop(a->base, block ? EVLOOP_ONCE : EVLOOP_NONBLOCK);
    aredis__adapter_run_defers(&a->pending); /* armed by this turn's callbacks */
    return event_base_get_num_events(a->base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) > 0;
}

static inline uint64_t aredis__le_now_ms(void *ld) {
    return aredis__le_now_us((aredis__le *)ld) / 1000u;
}

static inline void aredis__le_cleanup(void *ld) {
    aredis__le *a = (aredis__le *)ld;
    if (a->runner) event_free(a->runner);
    aredis_mem_free(a);
}

/** Wrap a libevent base (which stays the caller's). NULL when base is NULL or
 * out of memory. */
static inline aredis_loop *aredis_loop_libevent(struct event_base *base) {
    static const aredis_loop_vtable vt = AREDIS__ADAPTER_VTABLE(aredis__le);
    aredis__le *a;

    if (!base) return NULL;
    a = (aredis__le *)aredis_mem_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->base = base;
    aredis__adapter_list_init(&a->pending);
    a->runner = event_new(base, -1, 0, aredis__le_runner_cb, a);
    if (!a->runner) {
        aredis__le_cleanup(a);
        return NULL;
    }
    return aredis__adapter_loop(&vt, a);
}

#endif
