/**
 * @file
 * aredis/tx.h — transactions: MULTI ... EXEC, with optional WATCH.
 *
 * @code
 *   aredis_tx *tx = aredis_tx_new(c);
 *   aredis_tx_queue(tx, "DECRBY %s %d", "from", 10);
 *   aredis_tx_queue(tx, "INCRBY %s %d", "to", 10);
 *   aredis_future *f = aredis_tx_exec_future(tx);
 *   aredis_await(f);
 *   // OK: aredis_future_reply(f) is EXEC's ARRAY, one result per command
 * @endcode
 *
 * Optimistic locking (check-and-set) with WATCH:
 *
 * @code
 *   aredis_tx_watch(tx, NULL, NULL, 1, (const char *[]){"balance"}, NULL);
 *   aredis_future *g = aredis_tx_future_command(tx, "GET %s", "balance");
 *   aredis_await(g);                      // read on the same connection
 *   aredis_tx_queue(tx, "SET %s %d", "balance", new_value);
 *   aredis_future *f = aredis_tx_exec_future(tx);
 *   aredis_await(f);
 *   if (aredis_tx_aborted(aredis_future_reply(f))) retry();  // key changed
 * @endcode
 *
 * THE OUTCOMES of an exec, in the callback or future:
 *   - done: reply is EXEC's ARRAY, one element per queued command, in
 *     order; a command that failed while running (WRONGTYPE...) has its
 *     ERROR reply in its slot. No error.
 *   - aborted by WATCH (a watched key changed): reply is NIL, no error —
 *     an outcome, not a failure; aredis_tx_aborted() tells it.
 *   - refused by the server (EXECABORT: a queued command was bad, e.g. an
 *     unknown command or wrong arity): error SERVER with prefix EXECABORT;
 *     its detail names the first bad command and the server's reason.
 *     Nothing ran.
 *   - a connection error, TIMEOUT or CANCELLED: nothing is known to have
 *     run... except when EXEC itself reached the server, which the client
 *     cannot know: like any command, a transaction is at most once.
 *
 * HOW IT STAYS WHOLE:
 *   - MULTI, the queued commands and EXEC are written as one piece:
 *     commands issued elsewhere on the same client are never interleaved
 *     into it. A connection lost after its first byte was written fails
 *     the whole transaction with the connection error (the server discards
 *     a MULTI whose EXEC never came); one not yet written when the
 *     connection is lost is sent whole after the reconnect, like any
 *     unsent command.
 *   - WATCH needs the connection to itself until EXEC (a WATCH is
 *     per-connection: another user's EXEC or UNWATCH would clear it, and
 *     their writes would abort it). So aredis_tx_watch() RESERVES the
 *     connection: from the moment the WATCH is written until this
 *     transaction's EXEC (or DISCARD, or free) is written, commands issued
 *     elsewhere on the client wait, in order — they keep their own
 *     deadlines — and go out right behind the EXEC. Keep the time between
 *     WATCH and EXEC short, or use a client of its own for transactions.
 *     WATCH and UNWATCH issued as plain commands (aredis_command, a
 *     pipeline) are refused with UNSUPPORTED for that reason.
 *   - A connection lost after the WATCH was written ends the reservation
 *     (the server forgot the WATCH): this transaction's commands not yet
 *     written fail with the connection error instead of running without
 *     it, and a later exec fails at once with AREDIS_ERR_IO ("connection
 *     lost after WATCH").
 *
 * A transaction belongs to one client and is used from its loop's thread.
 * After an exec it is empty (and no longer watching) and may be reused.
 * Free it BEFORE its client: freeing a watching transaction sends UNWATCH
 * on the client.
 */
#ifndef AREDIS_TX_H
#define AREDIS_TX_H

#include <stdarg.h>
#include <stddef.h>

#include "aredis/client.h"
#include "aredis/export.h"
#include "aredis/future.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A transaction (opaque): commands queued on one client for MULTI ...
 * EXEC, and its WATCH. Made with aredis_tx_new(), freed with
 * aredis_tx_free(). */
typedef struct aredis_tx aredis_tx;

/** A new transaction on c. NULL when out of memory (or c is NULL). */
AREDIS_API aredis_tx *aredis_tx_new(aredis_client *c);

/** Free it: queued commands are dropped; if it is watching, UNWATCH is sent
 * and the reservation ends. An exec under way goes on. NULL is ignored.
 * Free a transaction before its client: unlike a pipeline, it reads the
 * client's state when freed. */
AREDIS_API void aredis_tx_free(aredis_tx *tx);

/**
 * WATCH keys (with the client's key prefix) and reserve the connection
 * (see above). cb (may be NULL) gets WATCH's reply. Several calls add keys.
 * Returns the client's refusals, INVALID for no keys, or IO when an earlier
 * WATCH of this transaction is gone (its connection lost, or it failed):
 * the transaction is then reset — watch, read and queue again.
 *
 * If the server refuses a WATCH (an ACL) or it times out, the commands this
 * transaction issued behind it that are not written yet fail, and the
 * reservation ends; an exec already written behind it cannot be recalled
 * and runs unwatched: await the WATCH (or a read after it) before the exec
 * when that matters.
 *
 * The future form resolves as cb would run; a refused call gives a future
 * already failed with the refusal (NULL only when out of memory).
 */
/** @{ */
AREDIS_API aredis_err aredis_tx_watch(aredis_tx *tx, aredis_reply_fn *cb, void *data, int nkeys,
                                      const char *const *keys, const size_t *keylens);
AREDIS_API aredis_future *aredis_tx_watch_future(aredis_tx *tx, int nkeys, const char *const *keys,
                                                 const size_t *keylens);
/** @} */

/**
 * A command sent now on the transaction's connection, ahead of anything
 * held by its reservation: the reads between WATCH and EXEC. Same contract
 * as aredis_command() (and aredis_future_command() for the future form);
 * refused with AREDIS_ERR_IO once the connection that carried the WATCH
 * is gone.
 */
/** @{ */
AREDIS_API aredis_err aredis_tx_command(aredis_tx *tx, aredis_reply_fn *cb, void *data,
                                        const char *fmt, ...);
AREDIS_API aredis_future *aredis_tx_future_command(aredis_tx *tx, const char *fmt, ...);
/** @} */

/**
 * Queue a command for MULTI ... EXEC (sent at exec). Refused (nothing
 * queued): as aredis_pipeline_command() — WATCH and UNWATCH among them,
 * UNSUPPORTED — and INVALID for MULTI, EXEC and DISCARD (the transaction
 * sends those itself).
 */
/** @{ */
AREDIS_API aredis_err aredis_tx_queue(aredis_tx *tx, const char *fmt, ...);
AREDIS_API aredis_err aredis_tx_vqueue(aredis_tx *tx, const char *fmt, va_list ap);
AREDIS_API aredis_err aredis_tx_queue_argv(aredis_tx *tx, int argc, const char *const *argv,
                                           const size_t *argvlen);
/** @} */
/** Commands queued. */
AREDIS_API size_t aredis_tx_size(const aredis_tx *tx);

/**
 * Send MULTI, the queued commands and EXEC, as one piece. cb runs once with
 * one of the outcomes above. aredis_tx_exec_ex() takes options for the
 * whole transaction (opts NULL: the defaults), as
 * aredis_pipeline_exec_ex(). Returns the client's refusals (cb then never
 * runs, the commands stay queued), INVALID when nothing is queued, or IO
 * when the connection that carried the WATCH is gone (the transaction is
 * then reset: watch again).
 */
/** @{ */
AREDIS_API aredis_err aredis_tx_exec(aredis_tx *tx, aredis_reply_fn *cb, void *data);
AREDIS_API aredis_err aredis_tx_exec_ex(aredis_tx *tx, const aredis_cmd_opts *opts,
                                        aredis_reply_fn *cb, void *data);
/** @} */
/** The future form (already failed when refused). NULL only when out of
 * memory. */
AREDIS_API aredis_future *aredis_tx_exec_future(aredis_tx *tx);

/** Drop the queued commands and stop watching (UNWATCH; the reservation
 * ends). The transaction may be used again. */
AREDIS_API void aredis_tx_discard(aredis_tx *tx);

/** 1 when an exec's reply says a watched key changed (EXEC answered nil). */
AREDIS_API int aredis_tx_aborted(const aredis_reply *exec_reply);

#ifdef __cplusplus
}
#endif

#endif
