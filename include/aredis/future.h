/**
 * @file
 * aredis/future.h — futures: the same commands, as values.
 *
 * @code
 * aredis_future *f = aredis_future_command(c, "GET %s", "k");
 * if (aredis_await(f) == AREDIS_ERR_OK)
 *     puts(aredis_future_reply(f)->str);
 * aredis_future_release(f);
 * @endcode
 *
 * A future is pending, then done exactly once: with a reply, or failed with
 * an error. It owns its reply until it is released. Release every future you
 * are given; releasing a pending future does not cancel its command (the
 * command completes and its reply is dropped) — call aredis_future_cancel()
 * for that.
 *
 * aredis_await() drives the client's loop (built-in or adapter, through the
 * vtable's run_once) until the future is done; aredis_await_for() does the
 * same with a deadline. Do not call them from inside a loop callback.
 */
#ifndef AREDIS_FUTURE_H
#define AREDIS_FUTURE_H

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

/** A future (opaque): one command's outcome, pending until done. Reference
 * counted; the caller's reference is dropped with aredis_future_release(). */
typedef struct aredis_future aredis_future;

/**
 * Issue a command and get its future. A command refused at issue time
 * (QUEUE_FULL, CLOSED, a bad format) gives a future that is already failed.
 * Returns NULL only when out of memory.
 *
 * The command is given as in client.h: a printf-like format
 * (aredis_future_command(); aredis_future_vcommand() with a va_list), or
 * argc arguments with lengths (aredis_future_argv(); argvlen NULL:
 * NUL-terminated strings), with per-command options for
 * aredis_future_argv_ex() (opts NULL = defaults).
 */
/** @{ */
AREDIS_API aredis_future *aredis_future_command(aredis_client *c, const char *fmt, ...);
AREDIS_API aredis_future *aredis_future_vcommand(aredis_client *c, const char *fmt, va_list ap);
AREDIS_API aredis_future *aredis_future_argv(aredis_client *c, int argc, const char *const *argv,
                                             const size_t *argvlen);
AREDIS_API aredis_future *aredis_future_argv_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                                int argc, const char *const *argv,
                                                const size_t *argvlen);
/** @} */
/** The format forms with per-command options (opts NULL = defaults), as
 * aredis_command_ex(). */
/** @{ */
AREDIS_API aredis_future *aredis_future_command_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                                   const char *fmt, ...);
AREDIS_API aredis_future *aredis_future_vcommand_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                                    const char *fmt, va_list ap);
/** @} */

/** A future that is done when the client is connected and ready, or failed
 * with the reason it could not connect: at the first failed attempt of a
 * client that never connected (unless wait_for_first_connect is set), else
 * when the reconnect policy gives up; CANCELLED when the client is closed
 * or freed first. On an idle client (never connected, or connection over)
 * it fails at once with the last connection error, or
 * AREDIS_ERR_NOT_CONNECTED. */
AREDIS_API aredis_future *aredis_future_ready(aredis_client *c);

/** Run the loop until f is done. Returns the error code (OK on success). */
AREDIS_API aredis_err aredis_await(aredis_future *f);
/**
 * Run the loop until f is done or timeout_ms has passed, whichever is first.
 * Returns f's outcome as aredis_await() does, or AREDIS_ERR_TIMEOUT if f is
 * still pending then. A timeout here does NOT cancel anything: f stays
 * pending and usable (await it again, or aredis_future_cancel() it) and its
 * command keeps its own deadline (request_timeout_ms or its
 * aredis_cmd_opts); aredis_future_is_done() tells this TIMEOUT from the
 * command's own. 0 runs one turn that does not block. Like
 * aredis_await(), it returns AREDIS_ERR_INVALID at once when nothing left
 * on the loop could complete f, and AREDIS_ERR_NOMEM if its timer cannot
 * be made.
 */
AREDIS_API aredis_err aredis_await_for(aredis_future *f, uint64_t timeout_ms);

/** 1 once f is done (with a reply or failed, cancelled included), 0 while it
 * is pending. */
AREDIS_API int aredis_future_is_done(const aredis_future *f);
/** The reply (borrowed; owned by the future), or NULL. Also set for a server
 * error reply. */
AREDIS_API aredis_reply *aredis_future_reply(const aredis_future *f);
/** NULL while pending or on success; else the error. Borrowed. */
AREDIS_API const aredis_error *aredis_future_error(const aredis_future *f);

/** A then-callback (aredis_future_then()): f is done; `data` is what was
 * given with the callback. f is borrowed: the callback may release the
 * caller's reference to it. */
typedef void aredis_future_fn(aredis_future *f, void *data);
/**
 * Call fn once when f is done (at once, synchronously, if it already is).
 * Several then-callbacks run in the order they were added. Returns
 * AREDIS_ERR_OK, or AREDIS_ERR_INVALID (NULL f or fn) or AREDIS_ERR_NOMEM,
 * and fn then never runs.
 */
AREDIS_API aredis_err aredis_future_then(aredis_future *f, aredis_future_fn *fn, void *data);

/**
 * A future done when all of fs are done with success (then with a NULL
 * reply), or failed as soon as the first of them fails, with its error
 * (fail-fast: the others may still be pending; they go on). The inputs
 * stay owned by the caller. n may be 0 (done at once).
 */
AREDIS_API aredis_future *aredis_future_all(aredis_future *const *fs, size_t n);
/** A future done when the first of fs is done, with that one's outcome
 * (its reply is shared, retained). aredis_future_index() tells which. */
AREDIS_API aredis_future *aredis_future_any(aredis_future *const *fs, size_t n);
/** For a future made by aredis_future_any: the index of the winner, or -1. */
AREDIS_API long aredis_future_index(const aredis_future *f);

/**
 * Cancel: the future fails with AREDIS_ERR_CANCELLED now. A command not yet
 * sent is never sent; one already sent has its reply discarded when it
 * arrives, and later commands still get their own replies. No effect on a
 * done future.
 */
AREDIS_API void aredis_future_cancel(aredis_future *f);

/** Drop the caller's reference. NULL is ignored. */
AREDIS_API void aredis_future_release(aredis_future *f);

/** The caller's own pointer, kept with the future: set_data stores it,
 * get_data returns it (NULL until set). The library never uses it. */
/** @{ */
AREDIS_API void *aredis_future_get_data(const aredis_future *f);
AREDIS_API void aredis_future_set_data(aredis_future *f, void *data);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
