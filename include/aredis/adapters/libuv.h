/**
 * @file
 * aredis/adapters/libuv.h — run aredis on a libuv loop. Header-only.
 *
 *     #include <uv.h>
 *     #include <aredis/aredis.h>
 *     #include <aredis/adapters/libuv.h>
 *
 *     uv_loop_t *uv = uv_default_loop();
 *     aredis_loop *loop = aredis_loop_libuv(uv);     // NULL: out of memory
 *     ... make clients on `loop`, issue commands ...
 *     uv_run(uv, UV_RUN_DEFAULT);                     // or aredis_loop_run(loop)
 *     ... free the clients ...
 *     aredis_loop_free(loop);                         // never frees `uv`
 *     uv_run(uv, UV_RUN_DEFAULT);                     // let libuv finish closing
 *     uv_loop_close(uv);
 *
 * Mapping: io = uv_poll_t (at most one per fd, as libuv requires; libuv makes
 * the fd non-blocking), timer = uv_timer_t, defers = one list per loop run
 * from a uv_prepare_t, which libuv calls right before it polls for I/O. While
 * a defer is pending a uv_idle_t is also active: libuv then polls with a zero
 * timeout, so a defer armed after the prepare phase (from a defer, or from
 * another prepare handle) still runs before the loop blocks. run_once() runs
 * one uv_run(UV_RUN_ONCE / UV_RUN_NOWAIT) and then the defers armed during it,
 * and reports uv_loop_alive() (so the foreign loop's own handles count too).
 *
 * libuv frees handles asynchronously (uv_close): io_free, timer_free and
 * aredis_loop_free stop at once and release memory from close callbacks, so
 * run the uv loop once more before uv_loop_close(). uv_run() is not
 * reentrant: do not drive this loop from inside one of its callbacks.
 *
 * Clock: uv_hrtime() (CLOCK_MONOTONIC). libuv schedules timers against its
 * cached, millisecond loop time; a timer that libuv fires before its deadline
 * by our clock is re-armed for the rest, so timers never fire early.
 * Errors: libuv stops a poll handle that reports an error; the callback gets
 * READ|WRITE (as far as watched) and the watcher counts as watching nothing
 * until io_set is called again.
 *
 * Wake handles (aredis_loop_post from other threads): a uv_async_t each,
 * uv_unref()'d so that an idle one keeps neither uv_run() nor run_once()
 * alive; uv_async_send() is thread-safe and coalesces as the vtable says.
 * Like every handle, its memory goes in its close callback.
 */
#ifndef AREDIS_ADAPTERS_LIBUV_H
#define AREDIS_ADAPTERS_LIBUV_H

#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include "../loop.h"
#include "adapter_common.h"

typedef struct aredis__uv {
    uv_loop_t *loop;
    uv_prepare_t prepare; /**< runs the pending defers before polling */
    uv_idle_t idle;       /**< active while defers pend: poll won't block */
    aredis__adapter_link pending;
    int closing; /**< handles not yet closed after cleanup */
} aredis__uv;

typedef struct aredis__uv_io {
    uv_poll_t h;
    aredis__adapter_io io;
} aredis__uv_io;

typedef struct aredis__uv_wake {
    uv_async_t h;
    aredis_timer_fn *cb;
    void *arg;
} aredis__uv_wake;

typedef struct aredis__uv_timer {
    uv_timer_t h;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t due; /**< uv_hrtime() ns */
} aredis__uv_timer;

static inline void aredis__uv_free_cb(uv_handle_t *h) { aredis_mem_free(h->data); }

/* ---- io ---- */

static inline void aredis__uv_poll_cb(uv_poll_t *h, int status, int events) {
    aredis__uv_io *w = (aredis__uv_io *)h->data;
    /* on an error libuv has stopped the handle */
    aredis__adapter_io_fire(&w->io, status < 0,
                            aredis__adapter_map_events(events, UV_READABLE, UV_WRITABLE,
                                                       AREDIS_EV_READ, AREDIS_EV_WRITE));
}

static inline void *aredis__uv_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    aredis__uv *a = (aredis__uv *)ld;
    aredis__uv_io *w = (aredis__uv_io *)aredis_mem_calloc(1, sizeof *w);

    if (!w) return NULL;
    if (uv_poll_init(a->loop, &w->h, fd) != 0) {
        aredis_mem_free(w);
        return NULL;
    }
    w->h.data = w;
    w->io.cb = cb;
    w->io.arg = arg;
    return w;
}

static inline void aredis__uv_io_set(void *p, int events) {
    aredis__uv_io *w = (aredis__uv_io *)p;

    events &= AREDIS_EV_READ | AREDIS_EV_WRITE;
    if (events == w->io.mask) return;
    w->io.mask = events;
    if (events == 0) {
        uv_poll_stop(&w->h);
        return;
    }
    uv_poll_start(&w->h,
                  aredis__adapter_map_events(events, AREDIS_EV_READ, AREDIS_EV_WRITE, UV_READABLE,
                                             UV_WRITABLE),
                  aredis__uv_poll_cb);
}

static inline void aredis__uv_io_free(void *p) {
    aredis__uv_io *w = (aredis__uv_io *)p;
    if (w) uv_close((uv_handle_t *)&w->h, aredis__uv_free_cb);
}

/* ---- timers ---- */

static inline void aredis__uv_timer_cb(uv_timer_t *h);

/** Start the uv timer so that it is due at t->due: libuv adds the timeout to
 * its cached loop time, which lags our clock, so count from that. */
static inline void aredis__uv_timer_start(aredis__uv_timer *t) {
    uint64_t due_ms = t->due / 1000000u + (t->due % 1000000u != 0);
    uv_timer_start(&t->h, aredis__uv_timer_cb, aredis__adapter_left(due_ms, uv_now(t->h.loop)), 0);
}

static inline void aredis__uv_timer_cb(uv_timer_t *h) {
    aredis__uv_timer *t = (aredis__uv_timer *)h->data;
    if (uv_hrtime() < t->due) {
        aredis__uv_timer_start(t); /* early by our clock: wait for the rest */
        return;
    }
    t->cb(t->arg);
}

static inline void *aredis__uv_timer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    aredis__uv *a = (aredis__uv *)ld;
    aredis__uv_timer *t = (aredis__uv_timer *)aredis_mem_calloc(1, sizeof *t);

    if (!t) return NULL;
    uv_timer_init(a->loop, &t->h);
    t->h.data = t;
    t->cb = cb;
    t->arg = arg;
    return t;
}

static inline void aredis__uv_timer_arm(void *p, uint64_t ms) {
    aredis__uv_timer *t = (aredis__uv_timer *)p;
    uint64_t now = uv_hrtime();

    t->due = aredis__adapter_deadline(now, ms, 1000000u);
    aredis__uv_timer_start(t);
}

static inline void aredis__uv_timer_cancel(void *p) { uv_timer_stop(&((aredis__uv_timer *)p)->h); }

static inline void aredis__uv_timer_free(void *p) {
    aredis__uv_timer *t = (aredis__uv_timer *)p;
    if (t) uv_close((uv_handle_t *)&t->h, aredis__uv_free_cb);
}

/* ---- defers ---- */

/** Run the defers pending now; stop polling without blocking once none is. */
static inline void aredis__uv_run_defers(aredis__uv *a) {
    (void)aredis__adapter_run_defers(&a->pending);
    if (aredis__adapter_list_empty(&a->pending)) { /* also when the last one was freed */
        uv_prepare_stop(&a->prepare);
        uv_idle_stop(&a->idle);
    }
}

static inline void aredis__uv_prepare_cb(uv_prepare_t *h) {
    aredis__uv_run_defers((aredis__uv *)h->data);
}

static inline void aredis__uv_idle_cb(uv_idle_t *h) { (void)h; }

static inline void *aredis__uv_defer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    return aredis__adapter_defer_new(ld, &((aredis__uv *)ld)->pending, cb, arg);
}

static inline void aredis__uv_defer_arm(void *p) {
    aredis__adapter_defer *d = (aredis__adapter_defer *)p;
    aredis__uv *a = (aredis__uv *)d->owner;

    if (!aredis__adapter_defer_enqueue(d)) return;        /* already pending */
    uv_prepare_start(&a->prepare, aredis__uv_prepare_cb); /* no-ops when active */
    uv_idle_start(&a->idle, aredis__uv_idle_cb);
}

/* ---- wake handles ---- */

static inline void aredis__uv_async_cb(uv_async_t *h) {
    aredis__uv_wake *w = (aredis__uv_wake *)h->data;
    w->cb(w->arg);
}

static inline void *aredis__uv_wake_new(void *ld, aredis_timer_fn *cb, void *arg) {
    aredis__uv *a = (aredis__uv *)ld;
    aredis__uv_wake *w = (aredis__uv_wake *)aredis_mem_calloc(1, sizeof *w);

    if (!w) return NULL;
    if (uv_async_init(a->loop, &w->h, aredis__uv_async_cb) != 0) {
        aredis_mem_free(w);
        return NULL;
    }
    w->h.data = w;
    w->cb = cb;
    w->arg = arg;
    uv_unref((uv_handle_t *)&w->h); /* idle, it keeps nothing alive */
    return w;
}

/** Any thread. */
static inline void aredis__uv_wake_signal(void *p) { uv_async_send(&((aredis__uv_wake *)p)->h); }

static inline void aredis__uv_wake_free(void *p) {
    aredis__uv_wake *w = (aredis__uv_wake *)p;
    if (w) uv_close((uv_handle_t *)&w->h, aredis__uv_free_cb);
}

/* ---- the loop ---- */

static inline int aredis__uv_run_once(void *ld, int block) {
    aredis__uv *a = (aredis__uv *)ld;
    uv_run(a->loop, block ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    aredis__uv_run_defers(a); /* armed by this turn's callbacks */
    return uv_loop_alive(a->loop);
}

static inline uint64_t aredis__uv_now_ms(void *ld) {
    (void)ld;
    return uv_hrtime() / 1000000u;
}

static inline void aredis__uv_closed(uv_handle_t *h) {
    aredis__uv *a = (aredis__uv *)h->data;
    if (--a->closing == 0) aredis_mem_free(a);
}

static inline void aredis__uv_cleanup(void *ld) {
    aredis__uv *a = (aredis__uv *)ld;
    a->closing = 2;
    uv_close((uv_handle_t *)&a->prepare, aredis__uv_closed);
    uv_close((uv_handle_t *)&a->idle, aredis__uv_closed);
}

/** Wrap a libuv loop (which stays the caller's). NULL when uv is NULL or out
 * of memory. */
static inline aredis_loop *aredis_loop_libuv(uv_loop_t *uv) {
    static const aredis_loop_vtable vt = AREDIS__ADAPTER_VTABLE(aredis__uv);
    aredis__uv *a;

    if (!uv) return NULL;
    a = (aredis__uv *)aredis_mem_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = uv;
    aredis__adapter_list_init(&a->pending);
    uv_prepare_init(uv, &a->prepare);
    uv_idle_init(uv, &a->idle);
    a->prepare.data = a;
    a->idle.data = a;
    return aredis__adapter_loop(&vt, a);
}

#endif
