/**
 * @file
 * aredis/adapters/adapter_common.h — INTERNAL to the loop adapters in this
 * folder (libuv.h, libevent.h, libev.h); not an API: include an adapter, not
 * this. Names and contents may change in any release.
 *
 * The parts of an adapter that do not depend on the foreign loop: the list of
 * pending defers, the io callback's event translation, deadlines that never
 * fire early, and the monotonic clock. Header-only (static inline, prefix
 * aredis__adapter_), like the adapters, so that an adapter compiles in the
 * user's program against only the public library.
 */
#ifndef AREDIS_ADAPTERS_ADAPTER_COMMON_H
#define AREDIS_ADAPTERS_ADAPTER_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "../alloc.h"
#include "../loop.h"

/* ---- events ---- */

/** Translate the bits `rd` / `wr` of `flags` to `to_rd` / `to_wr` (either
 * way between aredis's AREDIS_EV_* and a foreign loop's flags). */
static inline int aredis__adapter_map_events(int flags, int rd, int wr, int to_rd, int to_wr) {
    int out = 0;
    if (flags & rd) out |= to_rd;
    if (flags & wr) out |= to_wr;
    return out;
}

/** What an io watcher's callback needs; each adapter's watcher embeds one. */
typedef struct aredis__adapter_io {
    aredis_io_fn *cb;
    void *arg;
    int mask; /**< AREDIS_EV_* watched */
} aredis__adapter_io;

/** Deliver what the foreign loop reported for a watcher: `events` (AREDIS_EV_*)
 * as far as watched, or, when the loop reports an error (and has stopped the
 * watcher), every watched event, after which the watcher watches nothing
 * until io_set. The callback runs last: it may free the watcher. */
static inline void aredis__adapter_io_fire(aredis__adapter_io *w, int error, int events) {
    int ev = events & w->mask;

    if (error) {
        ev = w->mask;
        w->mask = 0;
    }
    if (ev) w->cb(w->arg, ev);
}

/* ---- time ---- */

#if defined(CLOCK_MONOTONIC)
#define AREDIS__ADAPTER_HAVE_MONOTONIC 1
/** CLOCK_MONOTONIC in ns (only where <time.h> declares it). */
static inline uint64_t aredis__adapter_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

/** `ms` after `now`, in a clock of `per_ms` units a millisecond; saturates at
 * UINT64_MAX instead of wrapping. */
static inline uint64_t aredis__adapter_deadline(uint64_t now, uint64_t ms, uint64_t per_ms) {
    return ms > (UINT64_MAX - now) / per_ms ? UINT64_MAX : now + ms * per_ms;
}

/** What is left until `due` at `now` (0 once due). A timer that the foreign
 * loop fires while this is nonzero fired early by our clock: the adapter
 * re-arms it for the rest, so timers never fire early. */
static inline uint64_t aredis__adapter_left(uint64_t due, uint64_t now) {
    return due > now ? due - now : 0;
}

/* ---- defers ---- */

/** A circular doubly linked list with a head node. */
typedef struct aredis__adapter_link {
    struct aredis__adapter_link *prev, *next;
} aredis__adapter_link;

typedef struct aredis__adapter_defer {
    aredis__adapter_link link;     /**< first: a link is a defer; next: NULL when not pending */
    aredis__adapter_link *pending; /**< the owner's list of pending defers */
    void *owner;                   /**< the adapter's loop data */
    aredis_timer_fn *cb;
    void *arg;
} aredis__adapter_defer;

static inline void aredis__adapter_list_init(aredis__adapter_link *h) { h->next = h->prev = h; }

static inline int aredis__adapter_list_empty(const aredis__adapter_link *h) { return h->next == h; }

static inline void aredis__adapter_unlink(aredis__adapter_link *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/** A defer of `owner`, which keeps its pending defers in `pending`. */
static inline void *aredis__adapter_defer_new(void *owner, aredis__adapter_link *pending,
                                              aredis_timer_fn *cb, void *arg) {
    aredis__adapter_defer *d = (aredis__adapter_defer *)aredis_mem_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->pending = pending;
    d->owner = owner;
    d->cb = cb;
    d->arg = arg;
    return d;
}

/** Make d pending (last in its list). 0 when it already was: nothing to do. */
static inline int aredis__adapter_defer_enqueue(aredis__adapter_defer *d) {
    aredis__adapter_link *h = d->pending;

    if (d->link.next) return 0; /* already pending */
    d->link.prev = h->prev;
    d->link.next = h;
    h->prev->next = &d->link;
    h->prev = &d->link;
    return 1;
}

/** The vtable's defer_free: a pending defer never runs. */
static inline void aredis__adapter_defer_free(void *p) {
    aredis__adapter_defer *d = (aredis__adapter_defer *)p;
    if (!d) return;
    if (d->link.next) aredis__adapter_unlink(&d->link);
    aredis_mem_free(d);
}

/** Run the defers pending now (those armed meanwhile wait for the next call;
 * one freed meanwhile never runs). 0 when none was pending. */
static inline int aredis__adapter_run_defers(aredis__adapter_link *pending) {
    aredis__adapter_link batch;

    if (aredis__adapter_list_empty(pending)) return 0;
    batch.next = pending->next;
    batch.prev = pending->prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    aredis__adapter_list_init(pending);
    while (batch.next != &batch) {
        aredis__adapter_defer *d = (aredis__adapter_defer *)batch.next;
        aredis__adapter_unlink(&d->link);
        d->cb(d->arg);
    }
    return 1;
}

/* ---- the loop ---- */

/* The vtable of the adapter whose functions are named P##_io_new ... (all but
 * defer_free, which is aredis__adapter_defer_free). */
#define AREDIS__ADAPTER_VTABLE(P)                                                                  \
    {                                                                                              \
        P##_io_new, P##_io_set, P##_io_free, P##_timer_new, P##_timer_arm, P##_timer_cancel,       \
            P##_timer_free, P##_defer_new, P##_defer_arm, aredis__adapter_defer_free,              \
            P##_run_once, P##_now_ms, P##_cleanup, P##_wake_new, P##_wake_signal, P##_wake_free,   \
    }

/** The aredis_loop on an adapter's vtable and data; NULL (out of memory) after
 * vt->cleanup(ld). */
static inline aredis_loop *aredis__adapter_loop(const aredis_loop_vtable *vt, void *ld) {
    aredis_loop *loop = aredis_loop_from_vtable(vt, ld);
    if (!loop) vt->cleanup(ld);
    return loop;
}

#endif
