/*
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
 */
#ifndef AREDIS_ADAPTERS_LIBUV_H
#define AREDIS_ADAPTERS_LIBUV_H

#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include "../loop.h"

typedef struct aredis__uv_link {
    struct aredis__uv_link *prev, *next;
} aredis__uv_link;

typedef struct aredis__uv {
    uv_loop_t *loop;
    uv_prepare_t prepare; /* runs the pending defers before polling */
    uv_idle_t idle;       /* active while defers pend: poll won't block */
    aredis__uv_link pending;
    int closing; /* handles not yet closed after cleanup */
} aredis__uv;

typedef struct aredis__uv_io {
    uv_poll_t h;
    aredis_io_fn *cb;
    void *arg;
    int mask;
} aredis__uv_io;

typedef struct aredis__uv_timer {
    uv_timer_t h;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t due; /* uv_hrtime() ns */
} aredis__uv_timer;

typedef struct aredis__uv_defer {
    aredis__uv_link link; /* first: a link is a defer */
    aredis__uv *a;
    aredis_timer_fn *cb;
    void *arg;
} aredis__uv_defer;

static inline void aredis__uv_free_cb(uv_handle_t *h) { free(h->data); }

/* ---- io ---- */

static inline void aredis__uv_poll_cb(uv_poll_t *h, int status, int events) {
    aredis__uv_io *w = (aredis__uv_io *)h->data;
    int ev = 0;

    if (status < 0) {
        ev = w->mask;
        w->mask = 0; /* libuv has stopped the handle */
    } else {
        if (events & UV_READABLE) ev |= AREDIS_EV_READ;
        if (events & UV_WRITABLE) ev |= AREDIS_EV_WRITE;
        ev &= w->mask;
    }
    if (ev) w->cb(w->arg, ev);
}

static inline void *aredis__uv_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    aredis__uv *a = (aredis__uv *)ld;
    aredis__uv_io *w = (aredis__uv_io *)calloc(1, sizeof *w);

    if (!w) return NULL;
    if (uv_poll_init(a->loop, &w->h, fd) != 0) {
        free(w);
        return NULL;
    }
    w->h.data = w;
    w->cb = cb;
    w->arg = arg;
    return w;
}

static inline void aredis__uv_io_set(void *p, int events) {
    aredis__uv_io *w = (aredis__uv_io *)p;
    int flags = 0;

    events &= AREDIS_EV_READ | AREDIS_EV_WRITE;
    if (events == w->mask) return;
    w->mask = events;
    if (events == 0) {
        uv_poll_stop(&w->h);
        return;
    }
    if (events & AREDIS_EV_READ) flags |= UV_READABLE;
    if (events & AREDIS_EV_WRITE) flags |= UV_WRITABLE;
    uv_poll_start(&w->h, flags, aredis__uv_poll_cb);
}

static inline void aredis__uv_io_free(void *p) {
    aredis__uv_io *w = (aredis__uv_io *)p;
    if (w) uv_close((uv_handle_t *)&w->h, aredis__uv_free_cb);
}

/* ---- timers ---- */

static inline void aredis__uv_timer_cb(uv_timer_t *h);

/* Start the uv timer so that it is due at t->due: libuv adds the timeout to
 * its cached loop time, which lags our clock, so count from that. */
static inline void aredis__uv_timer_start(aredis__uv_timer *t) {
    uint64_t due_ms = t->due / 1000000u + (t->due % 1000000u != 0);
    uint64_t now_ms = uv_now(t->h.loop);
    uv_timer_start(&t->h, aredis__uv_timer_cb, due_ms > now_ms ? due_ms - now_ms : 0, 0);
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
    aredis__uv_timer *t = (aredis__uv_timer *)calloc(1, sizeof *t);

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

    t->due = ms > (UINT64_MAX - now) / 1000000u ? UINT64_MAX : now + ms * 1000000u;
    aredis__uv_timer_start(t);
}

static inline void aredis__uv_timer_cancel(void *p) { uv_timer_stop(&((aredis__uv_timer *)p)->h); }

static inline void aredis__uv_timer_free(void *p) {
    aredis__uv_timer *t = (aredis__uv_timer *)p;
    if (t) uv_close((uv_handle_t *)&t->h, aredis__uv_free_cb);
}

/* ---- defers ---- */

static inline int aredis__uv_empty(const aredis__uv_link *h) { return h->next == h; }

static inline void aredis__uv_unlink(aredis__uv_link *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Run the defers pending now (those armed meanwhile wait for the next call). */
static inline void aredis__uv_run_defers(aredis__uv *a) {
    aredis__uv_link batch;

    if (aredis__uv_empty(&a->pending)) return;
    batch.next = a->pending.next;
    batch.prev = a->pending.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    a->pending.next = a->pending.prev = &a->pending;
    while (batch.next != &batch) {
        aredis__uv_defer *d = (aredis__uv_defer *)batch.next;
        aredis__uv_unlink(&d->link);
        d->cb(d->arg);
    }
    if (aredis__uv_empty(&a->pending)) {
        uv_prepare_stop(&a->prepare);
        uv_idle_stop(&a->idle);
    }
}

static inline void aredis__uv_prepare_cb(uv_prepare_t *h) {
    aredis__uv_run_defers((aredis__uv *)h->data);
}

static inline void aredis__uv_idle_cb(uv_idle_t *h) { (void)h; }

static inline void *aredis__uv_defer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    aredis__uv_defer *d = (aredis__uv_defer *)calloc(1, sizeof *d);
    if (!d) return NULL;
    d->a = (aredis__uv *)ld;
    d->cb = cb;
    d->arg = arg;
    return d;
}

static inline void aredis__uv_defer_arm(void *p) {
    aredis__uv_defer *d = (aredis__uv_defer *)p;
    aredis__uv *a = d->a;

    if (d->link.next) return; /* already pending */
    d->link.prev = a->pending.prev;
    d->link.next = &a->pending;
    a->pending.prev->next = &d->link;
    a->pending.prev = &d->link;
    uv_prepare_start(&a->prepare, aredis__uv_prepare_cb); /* no-ops when active */
    uv_idle_start(&a->idle, aredis__uv_idle_cb);
}

static inline void aredis__uv_defer_free(void *p) {
    aredis__uv_defer *d = (aredis__uv_defer *)p;
    if (!d) return;
    if (d->link.next) aredis__uv_unlink(&d->link);
    free(d);
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
    if (--a->closing == 0) free(a);
}

static inline void aredis__uv_cleanup(void *ld) {
    aredis__uv *a = (aredis__uv *)ld;
    a->closing = 2;
    uv_close((uv_handle_t *)&a->prepare, aredis__uv_closed);
    uv_close((uv_handle_t *)&a->idle, aredis__uv_closed);
}

/* Wrap a libuv loop (which stays the caller's). NULL when out of memory. */
static inline aredis_loop *aredis_loop_libuv(uv_loop_t *uv) {
    static const aredis_loop_vtable vt = {
        aredis__uv_io_new,    aredis__uv_io_set,       aredis__uv_io_free,    aredis__uv_timer_new,
        aredis__uv_timer_arm, aredis__uv_timer_cancel, aredis__uv_timer_free, aredis__uv_defer_new,
        aredis__uv_defer_arm, aredis__uv_defer_free,   aredis__uv_run_once,   aredis__uv_now_ms,
        aredis__uv_cleanup,
    };
    aredis__uv *a;
    aredis_loop *loop;

    if (!uv) return NULL;
    a = (aredis__uv *)calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = uv;
    a->pending.next = a->pending.prev = &a->pending;
    uv_prepare_init(uv, &a->prepare);
    uv_idle_init(uv, &a->idle);
    a->prepare.data = a;
    a->idle.data = a;
    loop = aredis_loop_from_vtable(&vt, a);
    if (!loop) aredis__uv_cleanup(a);
    return loop;
}

#endif
