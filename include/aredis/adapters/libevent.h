/*
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
    struct event *runner; /* fd -1: runs the pending defers */
    aredis__adapter_link pending;
    int in_runner;
} aredis__le;

typedef struct aredis__le_io {
    struct event *ev;
    aredis__le *a;
    aredis__adapter_io io;
    evutil_socket_t fd;
} aredis__le_io;

typedef struct aredis__le_timer {
    struct event *ev;
    aredis__le *a;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t due; /* us */
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

/* Wrap a libevent base (which stays the caller's). NULL when out of memory. */
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
