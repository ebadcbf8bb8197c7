/*
 * The aredis_loop object and the thin wrappers the rest of the library uses
 * to talk to whatever loop it was given.
 */
#ifndef AREDIS_LOOP_INTERNAL_H
#define AREDIS_LOOP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "aredis/loop.h"

/* A job of aredis_loop_post(). */
typedef struct aredis__post {
    struct aredis__post *next;
    aredis_post_fn *fn;
    void *arg;
} aredis__post;

struct aredis_loop {
    aredis_loop_vtable vt;
    void *ld;
    int stop;    /* aredis_loop_stop() was called */
    int builtin; /* ld is a built-in loop (freed with the wrapper) */
    /* ---- aredis_loop_post() (loop.c) ---- */
    pthread_mutex_t post_mu;
    aredis__post *queued, **queued_tail; /* posted by any thread (post_mu) */
    int freeing;                         /* aredis_loop_free() has begun (post_mu) */
    aredis__post *ready, **ready_tail;   /* taken from `queued`, not run yet (loop thread) */
    atomic_size_t npending;              /* queued + ready: posts not run yet */
    void *wake;                          /* signalled when `queued` becomes non-empty */
    /* A token of the loop's thread (aredis_loop_on_thread). */
    _Atomic(const void *) owner;
};

/* This thread's token (the address of a thread-local object). */
const void *aredis__thread_token(void);

/* The calling thread runs this loop from now on (aredis_loop_on_thread). */
static inline void aredis__loop_claim(aredis_loop *l) {
    const void *me = aredis__thread_token();
    if (atomic_load_explicit(&l->owner, memory_order_relaxed) != me)
        atomic_store_explicit(&l->owner, me, memory_order_release);
}

/* The handle constructors run on the loop's thread: they claim it. */
static inline void *aredis__io_new(aredis_loop *l, int fd, aredis_io_fn *cb, void *arg) {
    aredis__loop_claim(l);
    return l->vt.io_new(l->ld, fd, cb, arg);
}
static inline void aredis__io_set(aredis_loop *l, void *io, int ev) { l->vt.io_set(io, ev); }
static inline void aredis__io_free(aredis_loop *l, void *io) { l->vt.io_free(io); }
static inline void *aredis__timer_new(aredis_loop *l, aredis_timer_fn *cb, void *arg) {
    aredis__loop_claim(l);
    return l->vt.timer_new(l->ld, cb, arg);
}
static inline void aredis__timer_arm(aredis_loop *l, void *t, uint64_t ms) {
    l->vt.timer_arm(t, ms);
}
static inline void aredis__timer_cancel(aredis_loop *l, void *t) { l->vt.timer_cancel(t); }
static inline void aredis__timer_free(aredis_loop *l, void *t) { l->vt.timer_free(t); }
static inline void *aredis__defer_new(aredis_loop *l, aredis_timer_fn *cb, void *arg) {
    aredis__loop_claim(l);
    return l->vt.defer_new(l->ld, cb, arg);
}
static inline void aredis__defer_arm(aredis_loop *l, void *d) { l->vt.defer_arm(d); }
static inline void aredis__defer_free(aredis_loop *l, void *d) { l->vt.defer_free(d); }
static inline uint64_t aredis__now_ms(aredis_loop *l) { return l->vt.now_ms(l->ld); }
static inline void *aredis__wake_new(aredis_loop *l, aredis_timer_fn *cb, void *arg) {
    return l->vt.wake_new(l->ld, cb, arg);
}
static inline void aredis__wake_signal(aredis_loop *l, void *w) { l->vt.wake_signal(w); }
static inline void aredis__wake_free(aredis_loop *l, void *w) { l->vt.wake_free(w); }

/* The built-in loop's vtable and constructor (src/loop/epoll.c). */
extern const aredis_loop_vtable aredis__builtin_vtable;
void *aredis__builtin_new(void);
int aredis__builtin_after_fork(void *ld);
/* Which backend it was compiled with: "epoll" or "poll" (for the tests). */
const char *aredis__builtin_backend(void);

#endif
