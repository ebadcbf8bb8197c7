/**
 * @file
 * aredis/threads.h — issue commands from any thread.
 *
 * A client lives on its loop's thread: everything in client.h is called
 * there. To use it from other threads, make an aredis_shared on the loop's
 * thread and hand it to them:
 *
 * @code
 * // loop thread
 * aredis_shared *s = aredis_shared_new(c);
 * ... start the workers, run the loop (aredis_loop_run) ...
 *
 * // any thread: wait for the reply...
 * aredis_reply *r;
 * if (aredis_shared_call(s, 1000, &r, NULL, "GET %s", key) == AREDIS_ERR_OK) {
 *     ... r->str ...
 *     aredis_reply_release(r);
 * }
 * // ...or be called back with it, on the loop thread
 * aredis_shared_command(s, on_reply, data, "INCR %s", key);
 * @endcode
 *
 * Each call copies its arguments and hands the command to the loop thread
 * through aredis_loop_post() (aredis/loop.h); the loop thread issues it on
 * the client, exactly as aredis_command_argv() would. Commands issued from
 * one thread reach the server in the order they were issued.
 *
 * LIFETIME. The reference aredis_shared_new() returns belongs to the loop
 * thread and is given up by aredis_shared_free(). A thread that may still
 * call in after that takes a reference of its own first (aredis_shared_retain,
 * while s is known to be alive) and drops it when done (aredis_shared_release):
 * its calls after the free fail with AREDIS_ERR_CLOSED. Free the shared
 * object before its client, the client before the loop (docs/THREADS.md).
 *
 * THREADS. Everything here may be called from any thread, except
 * aredis_shared_new(), aredis_shared_free() and aredis_shared_client()
 * (loop thread). Callbacks run on the loop thread. The allocator hooks must
 * be thread-safe (aredis/alloc.h): calls allocate on the calling thread.
 */
#ifndef AREDIS_THREADS_H
#define AREDIS_THREADS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/error.h"
#include "aredis/export.h"
#include "aredis/reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A shared handle (opaque, reference counted) through which any thread
 * issues commands on one client. */
typedef struct aredis_shared aredis_shared;

/**
 * A command's outcome, on the loop thread, as aredis_reply_fn's (client.h):
 * on success err is NULL; a server error reply is AREDIS_ERR_SERVER with the
 * reply; any other failure has no reply. The reply is borrowed for the
 * callback's duration (aredis_reply_retain() keeps it).
 */
typedef void aredis_shared_fn(aredis_shared *s, aredis_reply *reply, const aredis_error *err,
                              void *data);

/**
 * Make a shared handle on client c. Loop thread (c's). Returns NULL when c
 * is NULL or out of memory. It does not own c: free it before c.
 */
AREDIS_API aredis_shared *aredis_shared_new(aredis_client *c);

/**
 * Give up the loop thread's reference, on the loop thread. From now on calls
 * fail with AREDIS_ERR_CLOSED; commands handed over and not issued yet
 * complete now, with CLOSED (their callbacks run, their callers wake up),
 * before this returns; commands already issued on the client complete as
 * the client completes them (free the client to cancel them). The memory
 * goes with the last reference. NULL is ignored.
 */
AREDIS_API void aredis_shared_free(aredis_shared *s);

/** Take one more reference (any thread, while s is alive). Returns s. */
AREDIS_API aredis_shared *aredis_shared_retain(aredis_shared *s);

/** Drop a reference taken with aredis_shared_retain (any thread). NULL is
 * ignored. */
AREDIS_API void aredis_shared_release(aredis_shared *s);

/** The client (loop thread, before aredis_shared_free). */
AREDIS_API aredis_client *aredis_shared_client(const aredis_shared *s);

/* ---- Called back, on the loop thread --------------------------------------- */

/**
 * Issue a command from any thread; cb(s, reply, err, data) runs on the loop
 * thread. The arguments are copied during the call (format: aredis/writer.h;
 * argvlen NULL: NUL-terminated strings). cb may be NULL.
 *
 * Returns AREDIS_ERR_OK, and then cb runs exactly once, never inside this
 * call: with the reply, with the error the client gave (a refusal at issue
 * time, QUEUE_FULL or NOT_CONNECTED say, included), or with CLOSED when the
 * shared object or the loop was freed before the command was issued. Or an
 * error, and cb never runs: INVALID (NULL s, a malformed format, argc < 1),
 * NOMEM, CLOSED (after aredis_shared_free, or the loop is being freed).
 * aredis_call_error() says why, on the calling thread.
 */
/** @{ */
AREDIS_API aredis_err aredis_shared_command(aredis_shared *s, aredis_shared_fn *cb, void *data,
                                            const char *fmt, ...);
AREDIS_API aredis_err aredis_shared_vcommand(aredis_shared *s, aredis_shared_fn *cb, void *data,
                                             const char *fmt, va_list ap);
AREDIS_API aredis_err aredis_shared_command_argv(aredis_shared *s, aredis_shared_fn *cb, void *data,
                                                 int argc, const char *const *argv,
                                                 const size_t *argvlen);
/** @} */

/* ---- Waiting for the reply ------------------------------------------------ */

/**
 * Issue a command from a thread other than the loop's and wait for its
 * outcome. Returns the outcome's code: OK with the reply in *reply;
 * AREDIS_ERR_SERVER with the error reply in *reply; any other error with
 * *reply NULL. A reply is the caller's: release it with
 * aredis_reply_release(), on this thread or any other (the loop thread no
 * longer touches it).
 *
 * timeout_ms bounds the wait (0: no bound of its own). It is also the
 * command's own deadline (aredis_cmd_opts.timeout_ms, counted from this
 * call), so the client fails it in time too; without one, the client's
 * request_timeout_ms (and a blocking command's block time) applies as
 * usual and ends the wait — as long as the loop runs. At the bound the
 * call returns AREDIS_ERR_TIMEOUT whatever the loop does; a reply coming
 * later is dropped.
 *
 * Fails at once with INVALID on the loop's own thread (it would wait for
 * itself: use aredis_shared_command there), with NULL s or reply, a
 * malformed format or argc < 1; with CLOSED after aredis_shared_free; with
 * NOMEM. err, when not NULL, gets the outcome: code, the server's prefix
 * ("WRONGTYPE") for SERVER, and a detail that stays valid until the next
 * failing aredis call on this thread (it is aredis_call_error()'s; "success"
 * on success). Any number of threads may wait at once.
 */
/** @{ */
AREDIS_API aredis_err aredis_shared_call(aredis_shared *s, uint32_t timeout_ms,
                                         aredis_reply **reply, aredis_error *err, const char *fmt,
                                         ...);
AREDIS_API aredis_err aredis_shared_vcall(aredis_shared *s, uint32_t timeout_ms,
                                          aredis_reply **reply, aredis_error *err, const char *fmt,
                                          va_list ap);
AREDIS_API aredis_err aredis_shared_call_argv(aredis_shared *s, uint32_t timeout_ms,
                                              aredis_reply **reply, aredis_error *err, int argc,
                                              const char *const *argv, const size_t *argvlen);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
