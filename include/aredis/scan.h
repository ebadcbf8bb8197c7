/**
 * @file
 * aredis/scan.h — SCAN iterators: walk the keys of a database, or the
 * fields of a hash, the members of a set or a sorted set, in batches,
 * without blocking the server (SCAN, HSCAN, SSCAN, ZSCAN).
 *
 * An iterator holds a cursor. Each batch sends one SCAN-family command with
 * that cursor; the reply brings some elements and the next cursor. The scan
 * is complete when the server hands back cursor 0.
 *
 * @code
 *   aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
 *   so.match = "user:*";
 *   aredis_scan *s = aredis_scan_new(c, &so);
 *   while (!aredis_scan_done(s)) {
 *       aredis_future *f = aredis_scan_next_future(s);
 *       const aredis_reply *batch;
 *       if (!f) break;                      // refused: aredis_call_error()
 *       aredis_await(f);
 *       if (aredis_scan_batch(s, f, &batch) == AREDIS_ERR_OK)
 *           for (size_t i = 0; i < batch->elements; i++)
 *               puts(batch->element[i]->str);
 *       aredis_future_release(f);           // a failed batch: try again
 *   }
 *   aredis_scan_free(s);
 * @endcode
 *
 * Three ways to drive it, one batch at a time in all of them:
 *   - aredis_scan_next(): a callback per batch;
 *   - aredis_scan_next_future(): a future per batch;
 *   - aredis_scan_each(): a callback per element, then one at the end.
 *
 * WHAT SCAN GUARANTEES (the server's promise, not the client's):
 *   - every element present from the start to the end of the scan is
 *     returned at least once;
 *   - an element may be returned more than once (deduplicate if it
 *     matters);
 *   - an element added or removed during the scan may or may not be
 *     returned;
 *   - a batch may be empty while the scan is not complete, and COUNT is a
 *     hint: a batch may hold fewer or more elements (a small hash, set or
 *     sorted set comes whole in the first batch).
 *
 * FAILURES AND RECONNECTS: every batch is sent with AREDIS_CMD_RETRYABLE
 * (the SCAN family only reads): if the connection is lost while a batch is
 * in flight and the client reconnects, the batch is sent again, with the
 * same cursor, and the scan goes on as if nothing happened. A batch that
 * fails anyway (a timeout, reconnection turned off or given up, a server
 * error, a malformed reply) leaves the cursor where it was: the next batch
 * asks for the same place again, so nothing is skipped.
 *
 * CALLBACK CONTRACT (aredis_scan_next() and aredis_scan_each()):
 *   - If the call returns an error, no callback runs (aredis_call_error()
 *     says why).
 *   - Otherwise the batch callback (next) or the done callback (each) runs
 *     exactly once: with the outcome, or with AREDIS_ERR_CANCELLED when the
 *     client is closed or the iterator freed first.
 *   - It never runs from inside the call that issued the batch.
 *   - Any aredis function may be called from inside a callback, including
 *     aredis_scan_next() on the same iterator (the next batch),
 *     aredis_scan_free() on it and aredis_client_free() on its client.
 *
 * OWNERSHIP: the options' strings are copied by aredis_scan_new(). A batch
 * handed to a callback is borrowed for the callback's duration (copy what
 * you keep, or use futures: a future owns its reply until released).
 *
 * KEY PREFIXES: the iterator sends patterns and keys exactly as given and
 * returns elements exactly as the client delivers them; a client-level key
 * prefix, if the client applies one, is the client's business.
 *
 * An iterator belongs to one client and is used on that client's loop
 * thread. Free it before or after the client; once the client is freed,
 * aredis_scan_free() is the only call left to make on it.
 */
#ifndef AREDIS_SCAN_H
#define AREDIS_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/error.h"
#include "aredis/export.h"
#include "aredis/future.h"
#include "aredis/reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A SCAN iterator (opaque): one client, one cursor. Made with
 * aredis_scan_new(), freed with aredis_scan_free(). */
typedef struct aredis_scan aredis_scan;

/** What to scan, and so which command each batch sends. */
typedef enum aredis_scan_kind {
    AREDIS_SCAN_KEYS = 0, /**< SCAN: the keys of the client's database */
    AREDIS_SCAN_HASH,     /**< HSCAN key: field, value pairs */
    AREDIS_SCAN_SET,      /**< SSCAN key: members */
    AREDIS_SCAN_ZSET      /**< ZSCAN key: member, score pairs */
} aredis_scan_kind;

/**
 * Options. Start from AREDIS_SCAN_OPTS_INIT (a SCAN of every key, server
 * defaults for the rest) so that fields added later keep their defaults.
 * Every string is binary safe and copied by aredis_scan_new().
 */
typedef struct aredis_scan_opts {
    aredis_scan_kind kind; /**< AREDIS_SCAN_KEYS */
    /** HASH, SET, ZSET: the key to scan (required). KEYS: must be NULL. */
    const char *key;
    size_t keylen; /**< key's length; 0 means strlen(key) */
    /** MATCH pattern (glob-style, as the server reads it); NULL: none.
     * Filtering happens on the server after the batch is picked, which is
     * why batches may come back empty. */
    const char *match;
    size_t matchlen; /**< match's length; 0 means strlen(match); nonzero
                        without match is refused (INVALID) */
    /** COUNT hint: about how much work per batch; 0: the server's (10). */
    uint32_t count;
    /** KEYS only: TYPE filter ("string", "hash", "list", "set", "zset",
     * "stream", or a module type's name); NULL: none. Redis 6.0+. Any
     * other kind with a type is refused with AREDIS_ERR_INVALID. */
    const char *type;
    /** Per-batch timeout; 0: the client's request_timeout_ms. A batch that
     * times out fails with AREDIS_ERR_TIMEOUT and keeps the cursor. */
    uint32_t timeout_ms;
    /** Start from this cursor (decimal text from aredis_scan_cursor() of an
     * earlier iterator with the same options) to resume a scan; NULL or
     * "0": from the beginning. */
    const char *cursor;
} aredis_scan_opts;

/** The default options (a SCAN of every key, server defaults for the
 * rest), as an initializer: `aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;`.
 * Every field, in order: positional so that it reads the same in C and
 * C++ (whose designated initializers came only with C++20). */
#define AREDIS_SCAN_OPTS_INIT                                                                      \
    { AREDIS_SCAN_KEYS, NULL, 0, NULL, 0, 0, NULL, 0, NULL }

/**
 * One batch's outcome, for aredis_scan_next(). On success err is NULL and
 * batch holds the batch's elements: an array (in RESP3 possibly a set or a
 * map, laid out the same) of `batch->elements` replies, usually strings.
 * For HASH and ZSET they come in pairs: field, value, field, value...
 * (ZSET: member, score). The batch may be empty. The iterator's cursor has
 * already moved on: aredis_scan_done() says whether this was the last one.
 *
 * On failure batch is NULL and err says why: a connection error or
 * TIMEOUT, SERVER (err->prefix "WRONGTYPE" for HSCAN of a string...),
 * PROTOCOL (the reply was not shaped as a SCAN reply), CANCELLED (the
 * client closed, or aredis_scan_free() while the batch was in flight).
 * The cursor has not moved: the next aredis_scan_next() asks for the same
 * place again.
 */
typedef void aredis_scan_fn(aredis_scan *s, const aredis_reply *batch, const aredis_error *err,
                            void *data);

/**
 * One element, for aredis_scan_each(): for KEYS and SET, elem is the key or
 * member and value is NULL; for HASH, the field and its value; for ZSET, the
 * member and its score (as the server sends it: a string in RESP2 and
 * RESP3 alike). Both are borrowed for the callback's duration.
 *
 * Return 0 to go on; anything else stops the walk after this element (the
 * rest of this batch is skipped, and the cursor is already past it) and the
 * done callback runs with err NULL.
 */
typedef int aredis_scan_elem_fn(aredis_scan *s, const aredis_reply *elem, const aredis_reply *value,
                                void *data);

/**
 * The end of aredis_scan_each(): err NULL when the scan is complete
 * (aredis_scan_done() is then true) or the element callback stopped it;
 * otherwise the failure of the batch that ended the walk, the cursor kept
 * (call aredis_scan_each() again to go on from there), or
 * AREDIS_ERR_CANCELLED when the iterator was freed during the walk.
 */
typedef void aredis_scan_done_fn(aredis_scan *s, const aredis_error *err, void *data);

/* ---- Lifecycle --------------------------------------------------------- */

/**
 * Make an iterator on client c with opts (NULL: AREDIS_SCAN_OPTS_INIT, a
 * SCAN of every key). Sends nothing yet. Returns NULL when out of memory or
 * when the options are invalid — no client, an unknown kind, a key missing
 * (HASH, SET, ZSET) or given (KEYS), a TYPE filter other than with KEYS or
 * empty, a cursor that is not a 64-bit decimal number — and
 * aredis_call_error() then says which.
 */
AREDIS_API aredis_scan *aredis_scan_new(aredis_client *c, const aredis_scan_opts *opts);

/**
 * Free the iterator. NULL is ignored. Safe with a batch in flight: its
 * command is cancelled (its reply, if it comes, is dropped by the client)
 * and, before this returns, the batch's callback runs with
 * AREDIS_ERR_CANCELLED (aredis_scan_next), the walk's done callback runs
 * with AREDIS_ERR_CANCELLED (aredis_scan_each), or the batch's future fails
 * with AREDIS_ERR_CANCELLED (aredis_scan_next_future; the caller still
 * releases that future). Those callbacks may only read the iterator; the
 * calls that would send a batch fail with AREDIS_ERR_INVALID. Safe from
 * inside the iterator's own callbacks: the memory goes when they return.
 */
AREDIS_API void aredis_scan_free(aredis_scan *s);

/* ---- Batches ----------------------------------------------------------- */

/**
 * Ask for the next batch; cb runs once with it (see aredis_scan_fn and the
 * contract above). cb may not be NULL.
 *
 * Returns AREDIS_ERR_OK, or an error (cb then never runs, and
 * aredis_call_error() says why): INVALID when a batch or a walk is already
 * under way on this iterator (one at a time), when the scan is complete, or
 * while the iterator is being freed; else what the client refused the
 * command with (CLOSED, NOT_CONNECTED, QUEUE_FULL, FORKED, NOMEM).
 */
AREDIS_API aredis_err aredis_scan_next(aredis_scan *s, aredis_scan_fn *cb, void *data);

/**
 * Ask for the next batch as a future. It resolves with the whole SCAN
 * reply (owned by the future until it is released); aredis_scan_batch()
 * gives its elements. The iterator's cursor has moved on by the time the
 * future is done (its own then-callback runs first), whether or not anyone
 * awaits it; releasing the future early does not stop the batch.
 *
 * Returns NULL when the batch could not be issued, with aredis_call_error()
 * saying why: the same refusals as aredis_scan_next(). Unlike
 * aredis_future_command(), no already-failed future is returned: NULL is
 * the refusal, a future is a batch on its way.
 */
AREDIS_API aredis_future *aredis_scan_next_future(aredis_scan *s);

/**
 * The elements of batch future f, which iterator s gave, in *batch:
 * borrowed from the future's reply (valid until the future is released),
 * laid out as for aredis_scan_fn. The iterator says how to read the reply
 * (HASH and ZSET batches must hold pairs). Returns AREDIS_ERR_OK, or: the
 * future's own error if it failed (TIMEOUT, SERVER, CANCELLED...),
 * AREDIS_ERR_PROTOCOL if its reply is not shaped as a SCAN reply (the
 * iterator then kept its cursor), AREDIS_ERR_INVALID if it is still
 * pending or an argument is NULL; *batch is then NULL and
 * aredis_call_error() says why.
 */
AREDIS_API aredis_err aredis_scan_batch(const aredis_scan *s, const aredis_future *f,
                                        const aredis_reply **batch);

/**
 * Walk every remaining batch: elem_cb runs for each element (each pair, for
 * HASH and ZSET), in the order the server sends them, then done_cb once at
 * the end, on the first failure, or when elem_cb stops the walk. elem_cb
 * may not be NULL; done_cb may be NULL (failures then go unreported). One
 * batch is in flight at a time; the walk goes on from the iterator's
 * cursor, so a walk that failed resumes where it stopped.
 *
 * Returns AREDIS_ERR_OK, or an error (no callback then runs): the same
 * refusals as aredis_scan_next().
 */
AREDIS_API aredis_err aredis_scan_each(aredis_scan *s, aredis_scan_elem_fn *elem_cb,
                                       aredis_scan_done_fn *done_cb, void *data);

/* ---- State ------------------------------------------------------------- */

/** 1 once a batch has brought cursor 0 back (the scan is complete), else
 * 0. A scan is never complete before its first batch. */
AREDIS_API int aredis_scan_done(const aredis_scan *s);

/**
 * The cursor the next batch will send, as decimal text ("0" before the
 * first batch and again once the scan is complete). Borrowed: valid until
 * the next batch completes or the iterator is freed. Give it back as
 * aredis_scan_opts.cursor to resume the scan with another iterator.
 */
AREDIS_API const char *aredis_scan_cursor(const aredis_scan *s);

/** 1 while a batch is in flight or a walk (aredis_scan_each) is under way:
 * aredis_scan_next() would then be refused. */
AREDIS_API int aredis_scan_busy(const aredis_scan *s);

/** Batches completed successfully so far (failed ones not counted). */
AREDIS_API uint64_t aredis_scan_batches(const aredis_scan *s);

/** The client the iterator was made on. */
AREDIS_API aredis_client *aredis_scan_client(const aredis_scan *s);
/** A pointer of the application's, kept with the iterator (NULL at first;
 * the callbacks get their own data argument, not this one). */
/** @{ */
AREDIS_API void *aredis_scan_get_data(const aredis_scan *s);
AREDIS_API void aredis_scan_set_data(aredis_scan *s, void *data);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
