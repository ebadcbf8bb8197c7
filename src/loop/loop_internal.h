/*
 * The aredis_loop object and the thin wrappers the rest of the library uses
 * to talk to whatever loop it was given.
 */
#ifndef AREDIS_LOOP_INTERNAL_H
#define AREDIS_LOOP_INTERNAL_H

#include "aredis/loop.h"

struct aredis_loop {
    aredis_loop_vtable vt;
    void *ld;
    int stop;    /* aredis_loop_stop() was called */
    int builtin; /* ld is a built-in loop (freed with the wrapper) */
};

static inline void *aredis__io_new(aredis_loop *l, int fd, aredis_io_fn *cb, void *arg) {
    return l->vt.io_new(l->ld, fd, cb, arg);
}
static inline void aredis__io_set(aredis_loop *l, void *io, int ev) { l->vt.io_set(io, ev); }
static inline void aredis__io_free(aredis_loop *l, void *io) { l->vt.io_free(io); }
static inline void *aredis__timer_new(aredis_loop *l, aredis_timer_fn *cb, void *arg) {
    return l->vt.timer_new(l->ld, cb, arg);
}
static inline void aredis__timer_arm(aredis_loop *l, void *t, uint64_t ms) {
    l->vt.timer_arm(t, ms);
}
static inline void aredis__timer_cancel(aredis_loop *l, void *t) { l->vt.timer_cancel(t); }
static inline void aredis__timer_free(aredis_loop *l, void *t) { l->vt.timer_free(t); }
static inline void *aredis__defer_new(aredis_loop *l, aredis_timer_fn *cb, void *arg) {
    return l->vt.defer_new(l->ld, cb, arg);
}
static inline void aredis__defer_arm(aredis_loop *l, void *d) { l->vt.defer_arm(d); }
static inline void aredis__defer_free(aredis_loop *l, void *d) { l->vt.defer_free(d); }
static inline uint64_t aredis__now_ms(aredis_loop *l) { return l->vt.now_ms(l->ld); }

/* The built-in loop's vtable and constructor (src/loop/epoll.c). */
extern const aredis_loop_vtable aredis__builtin_vtable;
void *aredis__builtin_new(void);
int aredis__builtin_after_fork(void *ld);
/* Which backend it was compiled with: "epoll" or "poll" (for the tests). */
const char *aredis__builtin_backend(void);

#endif
