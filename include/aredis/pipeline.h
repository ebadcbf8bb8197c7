/**
 * @file
 * aredis/pipeline.h — explicit pipelines: queue commands, then send them
 * all at once and get every reply back together, in order.
 *
 * @code
 *   aredis_pipeline *p = aredis_pipeline_new(c);
 *   aredis_pipeline_command(p, "SET %s %s", "a", "1");
 *   aredis_pipeline_command(p, "INCR %s", "counter");
 *   aredis_pipeline_command(p, "GET %s", "a");
 *   aredis_future *f = aredis_pipeline_exec_future(p);
 *   if (aredis_await(f) == AREDIS_ERR_OK) {
 *       aredis_reply *all = aredis_future_reply(f); // ARRAY of 3 replies
 *   }
 *   aredis_future_release(f);
 *   aredis_pipeline_free(p);
 * @endcode
 *
 * What a pipeline promises:
 *   - One write: the commands' bytes go out together, in the order queued,
 *     and nothing issued elsewhere on the client comes between them.
 *     Plain commands and other pipelines issued before or after keep their
 *     own order around it, and never see its replies.
 *   - One result: an ARRAY reply with one element per command, in order.
 *     A command the server refused (WRONGTYPE...) has its ERROR reply in
 *     its own slot; the others are not affected, and the exec as a whole
 *     succeeds.
 *   - One deadline: the client's request timeout (or the exec's options)
 *     covers the whole pipeline, grown by the block time of blocking
 *     commands inside (a BLPOP 0 inside: no deadline).
 *   - At most once: a pipeline is never sent twice. If the connection is
 *     lost after its first byte was written, the exec fails with that
 *     connection error; the replies that did arrive are still handed over
 *     (the ARRAY then has fewer elements than commands queued) — the
 *     commands past them may or may not have run.
 *   - Not atomic: other clients' commands may run between its commands on
 *     the server. Use a transaction (aredis/tx.h) for that.
 *
 * A pipeline belongs to one client and is used from its loop's thread. It
 * is a builder: exec hands everything queued to the client and empties the
 * pipeline, which may be reused at once or freed (an exec under way is not
 * affected by either). Commands are encoded when queued (with the client's
 * key prefix), so their arguments may be freed right after each call.
 * Once its client is freed, a pipeline may only be freed.
 */
#ifndef AREDIS_PIPELINE_H
#define AREDIS_PIPELINE_H

#include <stdarg.h>
#include <stddef.h>

#include "aredis/client.h"
#include "aredis/export.h"
#include "aredis/future.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A pipeline (opaque): commands queued on one client, sent together by
 * an exec. Made with aredis_pipeline_new(), freed with
 * aredis_pipeline_free(). */
typedef struct aredis_pipeline aredis_pipeline;

/** A new empty pipeline on c. NULL when out of memory. */
AREDIS_API aredis_pipeline *aredis_pipeline_new(aredis_client *c);

/** Free it (queued commands are dropped; an exec under way goes on). NULL
 * is ignored. */
AREDIS_API void aredis_pipeline_free(aredis_pipeline *p);

/**
 * Queue a command, printf-like as aredis_command(). Returns OK, or an error
 * and nothing is queued (aredis_call_error() says why): INVALID (a
 * malformed format), NOMEM, UNSUPPORTED for the commands the client's
 * command API refuses (SUBSCRIBE...; see aredis_command()) and for AUTH and
 * HELLO, which are always sent alone, or when the client's key prefix
 * cannot be applied to the command.
 */
/** @{ */
AREDIS_API aredis_err aredis_pipeline_command(aredis_pipeline *p, const char *fmt, ...);
AREDIS_API aredis_err aredis_pipeline_vcommand(aredis_pipeline *p, const char *fmt, va_list ap);
/** @} */
/** argc arguments with lengths (argvlen NULL: NUL-terminated strings). */
AREDIS_API aredis_err aredis_pipeline_argv(aredis_pipeline *p, int argc, const char *const *argv,
                                           const size_t *argvlen);

/** Commands queued and not yet executed. */
AREDIS_API size_t aredis_pipeline_size(const aredis_pipeline *p);
/** Drop the commands queued. */
AREDIS_API void aredis_pipeline_clear(aredis_pipeline *p);

/**
 * Send everything queued. cb runs once (callback contract of
 * aredis/client.h): with an ARRAY reply of one element per command and no
 * error; or with the error that ended it (TIMEOUT, CANCELLED, a connection
 * error) and — unlike a plain command — an ARRAY of the replies that did
 * arrive before it (maybe none). The reply is borrowed for the callback.
 * Returns INVALID when nothing is queued, else the client's refusals
 * (CLOSED, NOT_CONNECTED, QUEUE_FULL, FORKED, NOMEM): then cb never runs
 * and the commands stay queued. On OK the pipeline is empty again.
 */
AREDIS_API aredis_err aredis_pipeline_exec(aredis_pipeline *p, aredis_reply_fn *cb, void *data);
/** The same with options (timeout_ms for the whole pipeline,
 * AREDIS_CMD_NO_TIMEOUT). AREDIS_CMD_RETRYABLE is ignored: never resent. */
AREDIS_API aredis_err aredis_pipeline_exec_ex(aredis_pipeline *p, const aredis_cmd_opts *opts,
                                              aredis_reply_fn *cb, void *data);
/**
 * The future form: resolves with the ARRAY reply, or fails as above (its
 * reply then holds the partial ARRAY). A refused exec gives a future that
 * is already failed. Cancelling it fails the exec with CANCELLED (replies
 * still owed are dropped as they arrive). NULL only when out of memory.
 */
/** @{ */
AREDIS_API aredis_future *aredis_pipeline_exec_future(aredis_pipeline *p);
AREDIS_API aredis_future *aredis_pipeline_exec_future_ex(aredis_pipeline *p,
                                                         const aredis_cmd_opts *opts);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
