/*
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
 */
#ifndef AREDIS_ADAPTERS_LIBEV_H
#define AREDIS_ADAPTERS_LIBEV_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <ev.h>

#include "../loop.h"

#if !EV_MULTIPLICITY
#error "aredis/adapters/libev.h needs libev built with EV_MULTIPLICITY"
#endif

typedef struct aredis__ev_link {
    struct aredis__ev_link *prev, *next;
} aredis__ev_link;

typedef struct aredis__ev {
    struct ev_loop *loop;
    ev_prepare prepare; /* runs the pending defers before blocking */
    ev_idle idle;       /* active while defers pend: no blocking */
    aredis__ev_link pending;
    long nactive; /* io with a mask + armed timers */
} aredis__ev;

typedef struct aredis__ev_io {
    ev_io w;
    aredis__ev *a;
    aredis_io_fn *cb;
    void *arg;
    int mask;
} aredis__ev_io;

typedef struct aredis__ev_timer {
    ev_timer w;
    aredis__ev *a;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t due; /* ns */
} aredis__ev_timer;

typedef struct aredis__ev_defer {
    aredis__ev_link link; /* first: a link is a defer */
    aredis__ev *a;
    aredis_timer_fn *cb;
    void *arg;
} aredis__ev_defer;

static inline uint64_t aredis__ev_now_ns(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
    return (uint64_t)(ev_time() * 1e9);
#endif
}

/* ---- io ---- */

static inline void aredis__ev_io_cb(struct ev_loop *loop, ev_io *iow, int revents) {
    aredis__ev_io *w = (aredis__ev_io *)iow->data;
    int ev = 0;

    (void)loop;
    if (revents & EV_ERROR) {
        ev = w->mask; /* libev has stopped the watcher */
        if (w->mask) w->a->nactive--;
        w->mask = 0;
    } else {
        if (revents & EV_READ) ev |= AREDIS_EV_READ;
        if (revents & EV_WRITE) ev |= AREDIS_EV_WRITE;
        ev &= w->mask;
    }
    if (ev) w->cb(w->arg, ev);
}

static inline void *aredis__ev_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    aredis__ev_io *w = (aredis__ev_io *)calloc(1, sizeof *w);

    if (!w) return NULL;
    ev_io_init(&w->w, aredis__ev_io_cb, fd, 0);
    w->w.data = w;
    w->a = (aredis__ev *)ld;
    w->cb = cb;
    w->arg = arg;
    return w;
}

static inline void aredis__ev_io_set(void *p, int events) {
    aredis__ev_io *w = (aredis__ev_io *)p;
    aredis__ev *a = w->a;
    int flags = 0;

    events &= AREDIS_EV_READ | AREDIS_EV_WRITE;
    if (events == w->mask) return;
    if (w->mask == 0) a->nactive++;
    if (events == 0) a->nactive--;
    w->mask = events;
    ev_io_stop(a->loop, &w->w);
    if (events == 0) return;
    if (events & AREDIS_EV_READ) flags |= EV_READ;
    if (events & AREDIS_EV_WRITE) flags |= EV_WRITE;
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
    if (w->mask) w->a->nactive--;
    ev_io_stop(w->a->loop, &w->w); /* also clears a pending event */
    free(w);
}

/* ---- timers ---- */

static inline void aredis__ev_timer_start(aredis__ev_timer *t, uint64_t now) {
    ev_timer_stop(t->a->loop, &t->w);
    ev_timer_set(&t->w, t->due > now ? (double)(t->due - now) / 1e9 : 0., 0.);
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
    aredis__ev_timer *t = (aredis__ev_timer *)calloc(1, sizeof *t);

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
    t->due = ms > (UINT64_MAX - now) / 1000000u ? UINT64_MAX : now + ms * 1000000u;
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
    free(p);
}

/* ---- defers ---- */

static inline int aredis__ev_empty(const aredis__ev_link *h) { return h->next == h; }

static inline void aredis__ev_unlink(aredis__ev_link *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Run the defers pending now (those armed meanwhile wait for the next call). */
static inline void aredis__ev_run_defers(aredis__ev *a) {
    aredis__ev_link batch;

    if (aredis__ev_empty(&a->pending)) return;
    batch.next = a->pending.next;
    batch.prev = a->pending.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    a->pending.next = a->pending.prev = &a->pending;
    while (batch.next != &batch) {
        aredis__ev_defer *d = (aredis__ev_defer *)batch.next;
        aredis__ev_unlink(&d->link);
        d->cb(d->arg);
    }
    if (aredis__ev_empty(&a->pending)) {
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
    aredis__ev_defer *d = (aredis__ev_defer *)calloc(1, sizeof *d);
    if (!d) return NULL;
    d->a = (aredis__ev *)ld;
    d->cb = cb;
    d->arg = arg;
    return d;
}

static inline void aredis__ev_defer_arm(void *p) {
    aredis__ev_defer *d = (aredis__ev_defer *)p;
    aredis__ev *a = d->a;

    if (d->link.next) return; /* already pending */
    d->link.prev = a->pending.prev;
    d->link.next = &a->pending;
    a->pending.prev->next = &d->link;
    a->pending.prev = &d->link;
    if (!ev_is_active(&a->prepare)) ev_prepare_start(a->loop, &a->prepare);
    if (!ev_is_active(&a->idle)) ev_idle_start(a->loop, &a->idle);
}

static inline void aredis__ev_defer_free(void *p) {
    aredis__ev_defer *d = (aredis__ev_defer *)p;
    if (!d) return;
    if (d->link.next) aredis__ev_unlink(&d->link);
    free(d);
}

/* ---- the loop ---- */

static inline int aredis__ev_run_once(void *ld, int block) {
    aredis__ev *a = (aredis__ev *)ld;
    int r = ev_run(a->loop, block ? EVRUN_ONCE : EVRUN_NOWAIT);
    aredis__ev_run_defers(a); /* armed by this turn's callbacks */
    return r != 0 || a->nactive > 0 || !aredis__ev_empty(&a->pending);
}

static inline uint64_t aredis__ev_now_ms(void *ld) {
    (void)ld;
    return aredis__ev_now_ns() / 1000000u;
}

static inline void aredis__ev_cleanup(void *ld) {
    aredis__ev *a = (aredis__ev *)ld;
    ev_prepare_stop(a->loop, &a->prepare);
    ev_idle_stop(a->loop, &a->idle);
    free(a);
}

/* Wrap a libev loop (which stays the caller's). NULL when out of memory. */
static inline aredis_loop *aredis_loop_libev(struct ev_loop *evl) {
    static const aredis_loop_vtable vt = {
        aredis__ev_io_new,    aredis__ev_io_set,       aredis__ev_io_free,    aredis__ev_timer_new,
        aredis__ev_timer_arm, aredis__ev_timer_cancel, aredis__ev_timer_free, aredis__ev_defer_new,
        aredis__ev_defer_arm, aredis__ev_defer_free,   aredis__ev_run_once,   aredis__ev_now_ms,
        aredis__ev_cleanup,
    };
    aredis__ev *a;
    aredis_loop *loop;

    if (!evl) return NULL;
    a = (aredis__ev *)calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = evl;
    a->pending.next = a->pending.prev = &a->pending;
    ev_prepare_init(&a->prepare, aredis__ev_prepare_cb);
    ev_idle_init(&a->idle, aredis__ev_idle_cb);
    a->prepare.data = a;
    a->idle.data = a;
    loop = aredis_loop_from_vtable(&vt, a);
    if (!loop) aredis__ev_cleanup(a);
    return loop;
}

#endif
