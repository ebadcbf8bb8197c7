/**
 * @file
 * aredis/loop.h — the event loop interface.
 *
 * aredis never owns the thread. Everything it needs from an event loop is in
 * the vtable below: watch a file descriptor, run a one-shot timer, and run a
 * "deferred" callback once before the loop next blocks (that is where every
 * client flushes its queued writes: commands issued in one loop turn leave in
 * one write — auto-pipelining).
 *
 * Every entry is REQUIRED. (hiredis made its timer hook optional and command
 * timeouts silently did nothing on several loops; aredis refuses a vtable
 * with a NULL entry.)
 *
 * Two kinds of loop exist:
 *   - the built-in loop (epoll on Linux, poll elsewhere): aredis_loop_new();
 *   - adapters onto libuv, libevent and libev, header-only, in
 *     aredis/adapters/: aredis_loop_libuv(uv_loop_t *) and friends.
 *
 * Both are an `aredis_loop *` to the rest of the library.
 *
 * Threading: a loop and everything attached to it are used from one thread,
 * the loop's thread. The exceptions: aredis_loop_post() and
 * aredis_loop_on_thread() may be called from any thread, and so may the
 * vtable's wake_signal (below). docs/THREADS.md has the model.
 */
#ifndef AREDIS_LOOP_H
#define AREDIS_LOOP_H

#include <stdint.h>

#include "aredis/error.h"
#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An event loop as aredis sees it (opaque): the built-in loop, or an
 * adapter onto a foreign loop, behind an aredis_loop_vtable. */
typedef struct aredis_loop aredis_loop;

/* I/O interest bits. */
#define AREDIS_EV_READ 1  /**< I/O interest bit: the fd is readable */
#define AREDIS_EV_WRITE 2 /**< I/O interest bit: the fd is writable */

/** Called with the events that fired (AREDIS_EV_READ / AREDIS_EV_WRITE; an
 * error or hang-up on the fd is reported as every event being watched, so the
 * owner finds the fault when it reads or writes). Only watched events are
 * ever reported. */
typedef void aredis_io_fn(void *arg, int events);
/** Called when a timer or a deferred callback fires. */
typedef void aredis_timer_fn(void *arg);

/**
 * The vtable. `ld` is the loop's own data (aredis_loop_data()). Handles are
 * opaque pointers owned by the implementation. Every entry is required;
 * what each must do is said with it. Callbacks may free any handle, their
 * own included.
 */
typedef struct aredis_loop_vtable {
    /** io_new(ld, fd, cb, arg): make a watcher for fd, watching nothing
     * yet; cb(arg, events) reports its events. At most one watcher per fd;
     * free it before closing the fd. NULL on failure. */
    void *(*io_new)(void *ld, int fd, aredis_io_fn *cb, void *arg);
    /** io_set(io, events): watch exactly `events` (AREDIS_EV_READ,
     * AREDIS_EV_WRITE; 0 = none). Idempotent: setting what is already set
     * costs nothing. */
    void (*io_set)(void *io, int events);
    /** io_free(io): stop and free; cb never runs again. */
    void (*io_free)(void *io);
    /** timer_new(ld, cb, arg): make a stopped one-shot timer; cb(arg) runs
     * when it fires. NULL on failure. */
    void *(*timer_new)(void *ld, aredis_timer_fn *cb, void *arg);
    /** timer_arm(t, ms): (re)start it to fire once after `ms` ms; arming an
     * armed timer moves its deadline. Never fires early by now_ms(). */
    void (*timer_arm)(void *t, uint64_t ms);
    /** timer_cancel(t): stop it if armed; harmless if not. */
    void (*timer_cancel)(void *t);
    /** timer_free(t): stop and free. */
    void (*timer_free)(void *t);
    /** defer_new(ld, cb, arg): make a deferred callback, not pending.
     * NULL on failure. */
    void *(*defer_new)(void *ld, aredis_timer_fn *cb, void *arg);
    /** defer_arm(d): make it run once, in this loop turn, after the
     * callbacks already running and before the loop next blocks for I/O.
     * Arming twice runs it once. Defers armed in one turn run in the
     * order they were armed (the client relies on it). */
    void (*defer_arm)(void *d);
    /** defer_free(d): free; it never runs again. */
    void (*defer_free)(void *d);
    /**
     * run_once(ld, block): run one loop iteration: wait for events (not at
     * all when block is 0 or a defer is pending), dispatch them, then run
     * the defers they armed. Returns nonzero if anything is still being
     * watched, armed or pending (adapters also count the foreign loop's own
     * handles). aredis_await() uses it. Not reentrant on the libuv adapter.
     */
    int (*run_once)(void *ld, int block);
    /** now_ms(ld): a monotonic clock in milliseconds. */
    uint64_t (*now_ms)(void *ld);
    /** cleanup(ld): aredis_loop_free() was called: release what the vtable
     * owns (not a foreign loop itself). */
    void (*cleanup)(void *ld);
    /**
     * wake_new(ld, cb, arg): make a wake-up handle: cb(arg) runs on the loop
     * thread, in a later turn, after wake_signal. An idle wake handle does
     * not keep the loop alive: run_once does not count it (a signalled one
     * may count until its cb ran). It is still waited on, so a signal ends a
     * blocking wait. NULL on failure.
     */
    void *(*wake_new)(void *ld, aredis_timer_fn *cb, void *arg);
    /**
     * wake_signal(w): THE ONLY ENTRY CALLABLE FROM ANY THREAD (the loop's
     * own included; never inside a signal handler). Coalescing: several
     * signals may run cb once, but cb always runs (at least once) wholly
     * after the last signal; a cb already running when a signal comes is
     * followed by another run. Never runs cb inside the call.
     */
    void (*wake_signal)(void *w);
    /** wake_free(w): stop and free (loop thread); cb never runs again. No
     * wake_signal may be in progress or come later. */
    void (*wake_free)(void *w);
} aredis_loop_vtable;

/**
 * Wrap a vtable and its data in an aredis_loop. The vtable is copied, and
 * one wake handle is made at once (wake_new: what aredis_loop_post() signals).
 * Returns NULL if any entry is NULL, or out of memory, or wake_new fails; `ld`
 * then stays the caller's. Adapters call this; applications normally don't.
 */
AREDIS_API aredis_loop *aredis_loop_from_vtable(const aredis_loop_vtable *vt, void *ld);

/** The loop's own data, as given to aredis_loop_from_vtable. */
AREDIS_API void *aredis_loop_data(const aredis_loop *loop);

/* ---- The built-in loop ------------------------------------------------- */

/** Make a built-in loop (epoll on Linux). NULL when out of resources. */
AREDIS_API aredis_loop *aredis_loop_new(void);

/**
 * Free a loop (built-in or adapter wrapper), on its thread. Free every
 * client, timer and handle attached to it first. Jobs posted with
 * aredis_loop_post() that have not run yet run now, in order, on the calling
 * thread, with AREDIS_ERR_CLOSED (posts made meanwhile are refused with
 * CLOSED); no other thread may post to the loop once this has begun. NULL
 * is ignored.
 */
AREDIS_API void aredis_loop_free(aredis_loop *loop);

/** Run until aredis_loop_stop() is called or nothing is left to watch (a job
 * posted and not yet run counts; an idle wake handle does not). The stop
 * request is consumed when run() returns; one made while the loop is not
 * running makes the next run() return at once. */
AREDIS_API void aredis_loop_run(aredis_loop *loop);

/** One iteration; block = wait for an event. Posted jobs that are pending
 * run first (the iteration then does not block). Returns nonzero while
 * anything is watched or armed, or a posted job waits. Works on adapter
 * loops too. */
AREDIS_API int aredis_loop_run_once(aredis_loop *loop, int block);

/**
 * Run the loop for at most `ms` milliseconds (built-in or adapter loops):
 * returns when the time is up, when aredis_loop_stop() is called (the
 * request is consumed, as by run()), or as soon as nothing is left to
 * watch or armed: 1 in the first two cases, 0 in the last, -1 if its timer
 * cannot be made. 0 ms runs one turn that does not block. Do not call it
 * from inside a loop callback.
 */
AREDIS_API int aredis_loop_run_for(aredis_loop *loop, uint64_t ms);

/** Make aredis_loop_run() return after the current iteration. Loop thread
 * only: from another thread, post a job that calls it. */
AREDIS_API void aredis_loop_stop(aredis_loop *loop);

/** Monotonic milliseconds by the loop's clock. */
AREDIS_API uint64_t aredis_loop_now_ms(aredis_loop *loop);

/**
 * In a forked child, make an inherited built-in loop usable (it is inert in
 * the child until then: it shares the parent's epoll instance). The loop gets
 * its own epoll instance; watchers made before the fork stay dormant until
 * set again, so the child never reads a socket it shares with the parent by
 * accident; timers carry on. Clients on it with reconnect_in_child then open
 * their own connections. Returns AREDIS_ERR_UNSUPPORTED for adapter loops
 * (use the foreign loop's own call, e.g. uv_loop_fork()). A no-op outside a
 * forked child. Also returns AREDIS_ERR_INVALID for a NULL loop, and
 * AREDIS_ERR_IO when the new epoll instance or wake handles cannot be made.
 */
AREDIS_API aredis_err aredis_loop_after_fork(aredis_loop *loop);

/* ---- Other threads (any loop) ------------------------------------------ */

/**
 * A job for aredis_loop_post(). `code` is AREDIS_ERR_OK when it runs in a
 * loop turn. It is AREDIS_ERR_CLOSED when aredis_loop_free() runs it
 * instead: the loop is going away, so the job must only release what `arg`
 * holds and wake whoever waits on it (the clients are gone by then).
 */
typedef void aredis_post_fn(void *arg, aredis_err code);

/**
 * Run fn(arg) on the loop's thread. THREAD-SAFE: callable from any thread,
 * the loop's own included (also from inside a loop callback).
 *
 * fn runs exactly once: in a later loop turn, never inside this call, or
 * with AREDIS_ERR_CLOSED from aredis_loop_free() if the loop is freed first.
 * Jobs run in the order they were posted (FIFO: two posts from one thread
 * run in that order). The loop is woken through its wake handle (an eventfd
 * or a pipe on the built-in loop; uv_async, event_active, ev_async on the
 * adapters), once per batch of posts. A job posted and not yet run keeps
 * aredis_loop_run() and aredis_loop_run_once() going; a loop driven by its
 * own library's run call (uv_run, event_base_dispatch, ev_run) runs posted
 * jobs only while something else keeps that loop alive.
 *
 * Returns AREDIS_ERR_OK (fn will run), or, and fn never runs:
 * AREDIS_ERR_INVALID (NULL loop or fn), AREDIS_ERR_NOMEM, or
 * AREDIS_ERR_CLOSED once aredis_loop_free() has begun. Posting to a loop
 * that is freed, or may be freed during the call, is the caller's bug.
 * Allocates (one node per post) through the allocator hooks on the calling
 * thread: they must be thread-safe (aredis/alloc.h).
 */
AREDIS_API aredis_err aredis_loop_post(aredis_loop *loop, aredis_post_fn *fn, void *arg);

/**
 * 1 when the calling thread is the loop's thread, else 0 (also for NULL).
 * THREAD-SAFE. The loop's thread is the one that last ran it through
 * aredis_loop_run*() or aredis_await(), ran a posted job of it, or made a
 * watcher, timer or defer on it (making a client does); at first, the one
 * that made the loop.
 */
AREDIS_API int aredis_loop_on_thread(const aredis_loop *loop);

/* ---- User timers (any loop) -------------------------------------------- */

/**
 * A timer on any aredis_loop (opaque): fires `cb(arg)` after `after_ms`,
 * then every `repeat_ms` if that is nonzero (counted from each tick, not
 * from the end of the callback). start() on a started timer restarts it.
 * Safe to stop, restart or free from its callback.
 */
typedef struct aredis_timer aredis_timer;

/** Make a stopped timer on `loop` that calls cb(arg). NULL when loop or cb
 * is NULL, or out of memory. */
AREDIS_API aredis_timer *aredis_timer_new(aredis_loop *loop, aredis_timer_fn *cb, void *arg);
/** Start t (or restart it: the old schedule is dropped): fire after
 * `after_ms`, then every `repeat_ms` if that is nonzero. */
AREDIS_API void aredis_timer_start(aredis_timer *t, uint64_t after_ms, uint64_t repeat_ms);
/** Stop t; start() may start it again. Harmless on a stopped timer. */
AREDIS_API void aredis_timer_stop(aredis_timer *t);
/** Stop and free t. NULL is ignored. */
AREDIS_API void aredis_timer_free(aredis_timer *t);

#ifdef __cplusplus
}
#endif

#endif
