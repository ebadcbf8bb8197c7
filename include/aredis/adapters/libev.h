/**
 * @file
 * aredis/adapters/libev.h — run aredis on a libev (4.x) loop. Header-only.
 *
 *     #include <ev.h>
 *     #include <aredis/aredis.h>
 *     #include <aredis/adapters/libev.h>
 *
 *     struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);   // or EV_DEFAULT
 *     aredis_loop *loop = aredis_loop_libev(ev);       // NULL: out of memory
 *     ... make clients on `loop`, issue commands ...
 *     ev_run(ev, 0);                                   // or aredis_loop_run(loop)
 *     ... free the clients ...
 *     aredis_loop_free(loop);                          // never frees `ev`
 *     ev_loop_destroy(ev);
 *
 * Mapping: io = ev_io (stopped, modified and restarted when the mask
 * changes), timer = ev_timer, defers = one list per loop run from an
 * ev_prepare, which libev calls right before it blocks. While a defer is
 * pending an ev_idle is also active: libev then polls without blocking, so a
 * defer armed after the prepare phase (from a defer, or another prepare
 * watcher) still runs before the loop blocks. run_once() runs one
 * ev_run(EVRUN_ONCE / EVRUN_NOWAIT) and then the defers armed during it.
 *
 * run_once()'s result: libev has no public count of active watchers outside
 * ev_run(), so the adapter counts its own (io with a mask, armed timers,
 * pending defers) and ORs in ev_run()'s result (which counts the loop's
 * other watchers too).
 *
 * Clock: CLOCK_MONOTONIC when <time.h> declares it, else ev_time() (wall
 * clock). libev schedules timers from its cached loop time; a timer that fires
 * before its deadline by our clock is re-armed for the rest, so timers never
 * fire early. Errors: libev stops an io watcher on EV_ERROR (bad fd); the
 * callback gets READ|WRITE (as far as watched) and the watcher counts as
 * watching nothing until io_set is called again. Needs EV_MULTIPLICITY.
 *
 * Wake handles (aredis_loop_post from other threads): an ev_async each,
 * started with ev_unref() so that an idle one keeps neither ev_run() nor
 * run_once() alive (and not counted in nactive); ev_async_send() is
 * thread-safe and coalesces as the vtable says.
 */
#ifndef AREDIS_ADAPTERS_LIBEV_H
#define AREDIS_ADAPTERS_LIBEV_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <ev.h>

#include "../loop.h"
#include "adapter_common.h"

#if !EV_MULTIPLICITY
#error "aredis/adapters/libev.h needs libev built with EV_MULTIPLICITY"
#endif

typedef struct aredis__ev {
    struct ev_loop *loop;
    ev_prepare prepare; /**< runs the pending defers before blocking */
    ev_idle idle;       /**< active while defers pend: no blocking */
    aredis__adapter_link pending;
    long nactive; /**< io with a mask + armed timers */
} aredis__ev;

typedef struct aredis__ev_io {
    ev_io w;
    aredis__ev *a;
    aredis__adapter_io io;
} aredis__ev_io;

typedef struct aredis__ev_wake {
    ev_async w;
    aredis__ev *a;
    aredis_timer_fn *cb;
    void *arg;
} aredis__ev_wake;

typedef struct aredis__ev_timer {
    ev_timer w;
    aredis__ev *a;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t due; /**< ns */
} aredis__ev_timer;

static inline uint64_t aredis__ev_now_ns(void) {
#ifdef AREDIS__ADAPTER_HAVE_MONOTONIC
    return aredis__adapter_monotonic_ns();
#else
    return (uint64_t)(ev_time() * 1e9);
#endif
}

/* ---- io ---- */

static inline void aredis__ev_io_cb(struct ev_loop *loop, ev_io *iow, int revents) {
    aredis__ev_io *w = (aredis__ev_io *)iow->data;
    int error = (revents & EV_ERROR) != 0; /* libev has stopped the watcher */

    (void)loop;
    if (error && w->io.mask) w->a->nactive--;
    aredis__adapter_io_fire(
        &w->io, error,
        aredis__adapter_map_events(revents, EV_READ, EV_WRITE, AREDIS_EV_READ, AREDIS_EV_WRITE));
}

static inline void *aredis__ev_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    aredis__ev_io *w = (aredis__ev_io *)aredis_mem_calloc(1, sizeof *w);

    if (!w) return NULL;
    ev_io_init(&w->w, aredis__ev_io_cb, fd, 0);
    w->w.data = w;
    w->a = (aredis__ev *)ld;
    w->io.cb = cb;
    w->io.arg = arg;
    return w;
}

static inline void aredis__ev_io_set(void *p, int events) {
    aredis__ev_io *w = (aredis__ev_io *)p;
    aredis__ev *a = w->a;
    int flags;

    events &= AREDIS_EV_READ | AREDIS_EV_WRITE;
    if (events == w->io.mask) return;
    if (w->io.mask == 0) a->nactive++;
    if (events == 0) a->nactive--;
    w->io.mask = events;
    ev_io_stop(a->loop, &w->w);
    if (events == 0) return;
    flags = aredis__adapter_map_events(events, AREDIS_EV_READ, AREDIS_EV_WRITE, EV_READ, EV_WRITE);
#ifdef ev_io_modify
    ev_io_modify(&w->w, flags);
#else
    ev_io_set(&w->w, w->w.fd, flags);
#endif
    ev_io_start(a->loop, &w->w);
}

static inline void aredis__ev_io_free(void *p) {
    aredis__ev_io *w = (aredis__ev_io *)p;
    if (!w) return;
    if (w->io.mask) w->a->nactive--;
    ev_io_stop(w->a->loop, &w->w); /* also clears a pending event */
    aredis_mem_free(w);
}

/* ---- timers ---- */

static inline void aredis__ev_timer_start(aredis__ev_timer *t, uint64_t now) {
    ev_timer_stop(t->a->loop, &t->w);
    ev_timer_set(&t->w, (double)aredis__adapter_left(t->due, now) / 1e9, 0.);
    ev_timer_start(t->a->loop, &t->w);
}

static inline void aredis__ev_timer_cb(struct ev_loop *loop, ev_timer *tw, int revents) {
    aredis__ev_timer *t = (aredis__ev_timer *)tw->data;
    uint64_t now = aredis__ev_now_ns();

    (void)loop;
    (void)revents;
    if (now < t->due) {
        aredis__ev_timer_start(t, now); /* early by our clock: wait for the rest */
        return;
    }
    t->a->nactive--; /* libev stopped the one-shot timer */
    t->cb(t->arg);
}

static inline void *aredis__ev_timer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    aredis__ev_timer *t = (aredis__ev_timer *)aredis_mem_calloc(1, sizeof *t);

    if (!t) return NULL;
    ev_timer_init(&t->w, aredis__ev_timer_cb, 0., 0.);
    t->w.data = t;
    t->a = (aredis__ev *)ld;
    t->cb = cb;
    t->arg = arg;
    return t;
}

static inline void aredis__ev_timer_arm(void *p, uint64_t ms) {
    aredis__ev_timer *t = (aredis__ev_timer *)p;
    uint64_t now = aredis__ev_now_ns();

    if (!ev_is_active(&t->w)) t->a->nactive++;
    t->due = aredis__adapter_deadline(now, ms, 1000000u);
    aredis__ev_timer_start(t, now);
}

static inline void aredis__ev_timer_cancel(void *p) {
    aredis__ev_timer *t = (aredis__ev_timer *)p;
    if (ev_is_active(&t->w)) t->a->nactive--;
    ev_timer_stop(t->a->loop, &t->w);
}

static inline void aredis__ev_timer_free(void *p) {
    if (!p) return;
    aredis__ev_timer_cancel(p);
    aredis_mem_free(p);
}

/* ---- defers ---- */

/** Run the defers pending now; stop polling without blocking once none is. */
static inline void aredis__ev_run_defers(aredis__ev *a) {
    (void)aredis__adapter_run_defers(&a->pending);
    if (aredis__adapter_list_empty(&a->pending)) { /* also when the last one was freed */
        ev_prepare_stop(a->loop, &a->prepare);
        ev_idle_stop(a->loop, &a->idle);
    }
}

static inline void aredis__ev_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents) {
    (void)loop;
    (void)revents;
    aredis__ev_run_defers((aredis__ev *)w->data);
}

static inline void aredis__ev_idle_cb(struct ev_loop *loop, ev_idle *w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
}

static inline void *aredis__ev_defer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    return aredis__adapter_defer_new(ld, &((aredis__ev *)ld)->pending, cb, arg);
}

static inline void aredis__ev_defer_arm(void *p) {
    aredis__adapter_defer *d = (aredis__adapter_defer *)p;
    aredis__ev *a = (aredis__ev *)d->owner;

    if (!aredis__adapter_defer_enqueue(d)) return; /* already pending */
    if (!ev_is_active(&a->prepare)) ev_prepare_start(a->loop, &a->prepare);
    if (!ev_is_active(&a->idle)) ev_idle_start(a->loop, &a->idle);
}

/* ---- wake handles ---- */

static inline void aredis__ev_async_cb(struct ev_loop *loop, ev_async *aw, int revents) {
    aredis__ev_wake *w = (aredis__ev_wake *)aw->data;
    (void)loop;
    (void)revents;
    w->cb(w->arg);
}

static inline void *aredis__ev_wake_new(void *ld, aredis_timer_fn *cb, void *arg) {
    aredis__ev *a = (aredis__ev *)ld;
    aredis__ev_wake *w = (aredis__ev_wake *)aredis_mem_calloc(1, sizeof *w);

    if (!w) return NULL;
    ev_async_init(&w->w, aredis__ev_async_cb);
    w->w.data = w;
    w->a = a;
    w->cb = cb;
    w->arg = arg;
    ev_async_start(a->loop, &w->w);
    ev_unref(a->loop); /* idle, it keeps nothing alive */
    return w;
}

/** Any thread. */
static inline void aredis__ev_wake_signal(void *p) {
    aredis__ev_wake *w = (aredis__ev_wake *)p;
    ev_async_send(w->a->loop, &w->w);
}

static inline void aredis__ev_wake_free(void *p) {
    aredis__ev_wake *w = (aredis__ev_wake *)p;
    if (!w) return;
    ev_ref(w->a->loop); /* undo the unref before the stop, as libev asks */
    ev_async_stop(w->a->loop, &w->w);
    aredis_mem_free(w);
}

/* ---- the loop ---- */

static inline int aredis__ev_run_once(void *ld, int block) {
    aredis__ev *a = (aredis__ev *)ld;
    int r = ev_run(a->loop, block ? EVRUN_ONCE : EVRUN_NOWAIT);
    aredis__ev_run_defers(a); /* armed by this turn's callbacks */
    return r != 0 || a->nactive > 0 || !aredis__adapter_list_empty(&a->pending);
}

static inline uint64_t aredis__ev_now_ms(void *ld) {
    (void)ld;
    return aredis__ev_now_ns() / 1000000u;
}

static inline void aredis__ev_cleanup(void *ld) {
    aredis__ev *a = (aredis__ev *)ld;
    ev_prepare_stop(a->loop, &a->prepare);
    ev_idle_stop(a->loop, &a->idle);
    aredis_mem_free(a);
}

/** Wrap a libev loop (which stays the caller's). NULL when evl is NULL or out
 * of memory. */
static inline aredis_loop *aredis_loop_libev(struct ev_loop *evl) {
    static const aredis_loop_vtable vt = AREDIS__ADAPTER_VTABLE(aredis__ev);
    aredis__ev *a;

    if (!evl) return NULL;
    a = (aredis__ev *)aredis_mem_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = evl;
    aredis__adapter_list_init(&a->pending);
    ev_prepare_init(&a->prepare, aredis__ev_prepare_cb);
    ev_idle_init(&a->idle, aredis__ev_idle_cb);
    a->prepare.data = a;
    a->idle.data = a;
    return aredis__adapter_loop(&vt, a);
}

#endif
