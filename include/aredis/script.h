/**
 * @file
 * aredis/script.h — Lua scripts run by their SHA1, and Redis 7 functions.
 *
 * @code
 *   aredis_script *s = aredis_script_new("return redis.call('GET', KEYS[1])", 0);
 *   const char *keys[] = {"user:1"};
 *   aredis_future *f = aredis_script_run_future(c, s, 0, 1, keys, NULL, 0, NULL, NULL);
 *   aredis_await(f);   // the script's result, as any command's reply
 * @endcode
 *
 * A script is its source and the source's SHA1, computed once, locally.
 * Running it sends EVALSHA (only the 40-byte digest goes over the wire);
 * when the server answers NOSCRIPT (it never saw the script, was
 * restarted, or its cache was flushed), the client loads it (SCRIPT LOAD)
 * and runs EVALSHA again, once, transparently: the caller sees only the
 * result. Keys get the client's key prefix; arguments never do.
 *
 * In pipelines and transactions (aredis_pipeline_script,
 * aredis_tx_script) a NOSCRIPT cannot be retried in place — inside MULTI
 * nothing can be — so the script is loaded first: a SCRIPT LOAD goes ahead
 * of it (ahead of MULTI for a transaction), its reply hidden, unless the
 * script already ran successfully through this client since its last
 * (re)connect (aredis_script_run() and the like; aredis_script_load() does
 * not count). If someone flushes the server's script cache in between,
 * that slot gets the NOSCRIPT error.
 *
 * A script is immutable and may be shared by any number of clients and
 * threads; free it once nothing is using it (a run under way keeps what it
 * needs).
 *
 * The future forms here: a call refused at issue time (bad counts, a
 * closed client...) gives a future already failed with why; NULL only when
 * out of memory or when the client, script, code or fn is NULL.
 */
#ifndef AREDIS_SCRIPT_H
#define AREDIS_SCRIPT_H

#include <stddef.h>

#include "aredis/client.h"
#include "aredis/export.h"
#include "aredis/future.h"
#include "aredis/pipeline.h"
#include "aredis/tx.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A Lua script (opaque): its source and the source's SHA1. Immutable;
 * made with aredis_script_new(), freed with aredis_script_free(). */
typedef struct aredis_script aredis_script;

/* Run flags. */
#define AREDIS_SCRIPT_RO                                                                           \
    1u /**< EVALSHA_RO / FCALL_RO: read-only (Redis 7): runs on replicas, refused if it writes */

/** A script from its Lua source (len 0: NUL-terminated). NULL when out of
 * memory or src is NULL. */
AREDIS_API aredis_script *aredis_script_new(const char *src, size_t len);
/** Free the script (see the top of this file for when). NULL is ignored. */
AREDIS_API void aredis_script_free(aredis_script *s);
/** The SHA1 of the source, 40 lowercase hex digits (what SCRIPT LOAD
 * returns). */
AREDIS_API const char *aredis_script_sha(const aredis_script *s);

/**
 * Run: EVALSHA sha nkeys keys... args... (EVALSHA_RO with
 * AREDIS_SCRIPT_RO), with the NOSCRIPT fallback above. cb runs once with
 * the script's result (a Lua error is AREDIS_ERR_SERVER). keylens/arglens
 * NULL: NUL-terminated strings. Returns the client's refusals, or INVALID
 * for negative counts. The callback contract of aredis/client.h holds.
 */
/** @{ */
AREDIS_API aredis_err aredis_script_run(aredis_client *c, aredis_script *s, unsigned flags,
                                        aredis_reply_fn *cb, void *data, int nkeys,
                                        const char *const *keys, const size_t *keylens, int nargs,
                                        const char *const *args, const size_t *arglens);
AREDIS_API aredis_future *aredis_script_run_future(aredis_client *c, aredis_script *s,
                                                   unsigned flags, int nkeys,
                                                   const char *const *keys, const size_t *keylens,
                                                   int nargs, const char *const *args,
                                                   const size_t *arglens);
/** @} */

/** Load it now (SCRIPT LOAD): cb gets the SHA1 the server computed. */
/** @{ */
AREDIS_API aredis_err aredis_script_load(aredis_client *c, aredis_script *s, aredis_reply_fn *cb,
                                         void *data);
AREDIS_API aredis_future *aredis_script_load_future(aredis_client *c, aredis_script *s);
/** @} */

/** Queue a run in a pipeline / a transaction (see above for the loading). */
/** @{ */
AREDIS_API aredis_err aredis_pipeline_script(aredis_pipeline *p, aredis_script *s, unsigned flags,
                                             int nkeys, const char *const *keys,
                                             const size_t *keylens, int nargs,
                                             const char *const *args, const size_t *arglens);
AREDIS_API aredis_err aredis_tx_script(aredis_tx *tx, aredis_script *s, unsigned flags, int nkeys,
                                       const char *const *keys, const size_t *keylens, int nargs,
                                       const char *const *args, const size_t *arglens);
/** @} */

/* ---- Functions (Redis 7) ------------------------------------------------ */

/**
 * FUNCTION LOAD [REPLACE] code (a library: "#!lua name=mylib\n..."); len 0
 * means strlen(code). cb gets the library's name.
 */
/** @{ */
AREDIS_API aredis_err aredis_function_load(aredis_client *c, const char *code, size_t len,
                                           int replace, aredis_reply_fn *cb, void *data);
AREDIS_API aredis_future *aredis_function_load_future(aredis_client *c, const char *code,
                                                      size_t len, int replace);
/** @} */
/**
 * FCALL (FCALL_RO with AREDIS_SCRIPT_RO) fn nkeys keys... args...: call
 * function fn of a library loaded with FUNCTION LOAD. As
 * aredis_script_run(): cb runs once with the function's result,
 * keylens/arglens NULL mean NUL-terminated strings, keys get the client's
 * key prefix, and the call returns the client's refusals or INVALID for
 * negative counts.
 */
/** @{ */
AREDIS_API aredis_err aredis_fcall(aredis_client *c, const char *fn, unsigned flags,
                                   aredis_reply_fn *cb, void *data, int nkeys,
                                   const char *const *keys, const size_t *keylens, int nargs,
                                   const char *const *args, const size_t *arglens);
AREDIS_API aredis_future *aredis_fcall_future(aredis_client *c, const char *fn, unsigned flags,
                                              int nkeys, const char *const *keys,
                                              const size_t *keylens, int nargs,
                                              const char *const *args, const size_t *arglens);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
