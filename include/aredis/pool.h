/**
 * @file
 * aredis/pool.h — a pool of connections to one server, on one loop.
 *
 * Every connection is an ordinary aredis_client made from the same options
 * (URI, TLS, auth, database, key prefix). A user takes one for a while
 * (acquire ... release, or the scoped aredis_pool_with()), or lets the pool
 * pick one for a single command (aredis_pool_command()).
 *
 * @code
 *   aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
 *   po.client.port = 6380;
 *   po.max_connections = 4;
 *   aredis_pool *pool = aredis_pool_new(loop, &po);
 *   aredis_pool_command(pool, on_reply, NULL, "INCR %s", "hits");
 *   aredis_pool_acquire(pool, on_conn, NULL);   // on_conn(pool, c, err, data)
 *   ...                                         // commands on c, then:
 *   aredis_pool_release(pool, c);
 * @endcode
 *
 * NEVER HANDED OVER DIRTY. A connection is released in whatever state its
 * user left it; before anyone else gets it, the pool looks at what is left
 * on it and resets it in place or closes it (docs/POOL.md has the table):
 * @code{.unparsed}
 *   MULTI open                     DISCARD, sent ahead of anything else
 *   SELECT to another database     SELECT <the configured db>
 *   replies still owed             kept out of rotation until a PING sent
 *                                  behind them is answered (they complete,
 *                                  to their own callbacks)
 *   a blocking command pending     closed (the command fails, CANCELLED)
 *   AUTH or HELLO issued           closed
 *   a transaction's WATCH held,    closed; the client object stays valid
 *   or subscribed                  (CLOSED) until the pool is freed, so the
 *                                  aredis_tx / subscription that still
 *                                  holds it can be freed safely
 *   lost, closed, or a reset or    closed
 *   health check failed
 * @endcode
 * CLIENT REPLY OFF/SKIP, plain WATCH/UNWATCH, SUBSCRIBE and RESET are
 * refused by the client at issue time (AREDIS_ERR_UNSUPPORTED), so they
 * never leave anything behind.
 *
 * A pool replaces connections rather than reconnecting them: its clients
 * are made with reconnect = 0 (a lost connection is closed and a new one
 * opened when needed) and reconnect_in_child = 0 (the pool handles fork()).
 * reconnect_delay_ms and max_reconnect_delay_ms are the pool's backoff
 * after a connection could not be opened.
 *
 * CALLBACK CONTRACT (as client.h's, for every function here that takes a
 * callback or returns a future): if the call returns an error the callback
 * never runs; otherwise it runs exactly once — also with TIMEOUT
 * (acquire_timeout_ms), CANCELLED when the pool is freed first, FORKED in a
 * forked child — and never from inside the call that issued it. Any aredis
 * function may be called from inside a callback, aredis_pool_free() on its
 * own pool included.
 *
 * Waiters are served in the order they came (acquires, aredis_pool_with()
 * and pool commands alike): a connection released goes to the oldest
 * waiter, never to a newer call.
 *
 * A pool and its connections belong to one loop and are used from that
 * loop's thread.
 */
#ifndef AREDIS_POOL_H
#define AREDIS_POOL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/error.h"
#include "aredis/export.h"
#include "aredis/future.h"
#include "aredis/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A connection pool (opaque): connections to one server, on one loop.
 * Made with aredis_pool_new(), freed with aredis_pool_free(). */
typedef struct aredis_pool aredis_pool;

/**
 * Options. Start from AREDIS_POOL_OPTIONS_INIT so that fields added later
 * keep their defaults. Strings (in `client` and `uri`) are copied by
 * aredis_pool_new().
 *
 * THE DEFAULTS, and what each protects against (docs/POOL.md has the same
 * table). No default waits for ever.
 *
 * @code{.unparsed}
 *   client                 AREDIS_OPTIONS_INIT  every connection's options
 *   min_connections        0       nothing opened before it is needed
 *   max_connections        10      the server's connection count stays
 *                                  bounded however many users wait
 *   acquire_timeout_ms     5000    an exhausted pool (a leak: connections
 *                                  never released) fails acquires within
 *                                  5 s, the error naming the pool's state
 *   idle_timeout_ms        60000   connections opened for a burst are
 *                                  closed a minute after it (down to
 *                                  min_connections)
 *   max_age_ms             0       off: connections are not recycled by
 *                                  age (set it behind a load balancer that
 *                                  should see new connections)
 *   health_check_after_ms  30000   a connection idle for 30 s gets a PING
 *                                  before it is handed out: one that died
 *                                  unnoticed (a NAT timeout, a restart the
 *                                  loop had not seen yet) is replaced, not
 *                                  given to a user
 * @endcode
 */
typedef struct aredis_pool_options {
    /**
     * Every connection's options. The pool sets reconnect = 0 and
     * reconnect_in_child = 0 on its clients (see aredis/pool.h); the callbacks
     * (on_connect, on_disconnect, on_error, on_push...) run for every
     * connection, with cb_data. With tls = 1 and no tls_context, the pool
     * builds one TLS context for all of its connections.
     */
    aredis_options client;
    /** A URI ("redis://user:pass@host:6380/2"), applied over `client` as
     * aredis_uri_apply() does; NULL: none. */
    const char *uri;
    unsigned min_connections; /**< opened at once and kept (reopened when lost) */
    unsigned max_connections; /**< >= 1, >= min_connections */
    /** An acquire (or with(), or a pool command) that gets no connection
     * within this time fails with AREDIS_ERR_TIMEOUT. 0 = no limit. */
    uint32_t acquire_timeout_ms;
    /** Idle connections above min_connections are closed after this long
     * unused. 0 = never. */
    uint32_t idle_timeout_ms;
    /** A connection older than this is closed when it is released (or while
     * idle) instead of being reused. 0 = no limit. */
    uint32_t max_age_ms;
    /** A connection idle longer than this is PINGed before it is handed out;
     * a failed PING closes it and the acquirer gets another, without
     * noticing. 0 = never. */
    uint32_t health_check_after_ms;
} aredis_pool_options;

#ifndef __cplusplus
/** The default options (the table at aredis_pool_options), as an
 * initializer: `aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;`. In C++
 * it calls aredis_pool_options_default(). */
#define AREDIS_POOL_OPTIONS_INIT                                                                   \
    {                                                                                              \
        .client = AREDIS_OPTIONS_INIT, .uri = NULL, .min_connections = 0, .max_connections = 10,   \
        .acquire_timeout_ms = 5000, .idle_timeout_ms = 60000, .max_age_ms = 0,                     \
        .health_check_after_ms = 30000                                                             \
    }
#else
/** The default options, for C++: what AREDIS_POOL_OPTIONS_INIT gives there
 * (the same defaults, set one by one; see aredis_options_default()). Keep
 * the two lists identical. */
static inline aredis_pool_options aredis_pool_options_default(void) {
    aredis_pool_options o = aredis_pool_options();
    o.client = aredis_options_default();
    o.uri = NULL;
    o.min_connections = 0;
    o.max_connections = 10;
    o.acquire_timeout_ms = 5000;
    o.idle_timeout_ms = 60000;
    o.max_age_ms = 0;
    o.health_check_after_ms = 30000;
    return o;
}
/** The default options (the table at aredis_pool_options), as an
 * initializer: `aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;`. In C++
 * it calls aredis_pool_options_default(). */
#define AREDIS_POOL_OPTIONS_INIT aredis_pool_options_default()
#endif

/* ---- Lifecycle --------------------------------------------------------- */

/**
 * Make a pool on `loop` (opts NULL = defaults) and start opening
 * min_connections. Returns NULL when out of memory or when the options are
 * invalid (max_connections 0 or below min_connections, a bad URI, invalid
 * client options, a TLS context that cannot be built): aredis_call_error()
 * then says which.
 */
AREDIS_API aredis_pool *aredis_pool_new(aredis_loop *loop, const aredis_pool_options *opts);

/**
 * Close every connection and free the pool. Before this returns, every
 * pending callback runs once: acquires and pool commands still waiting
 * fail with AREDIS_ERR_CANCELLED, commands in flight on the pool's
 * connections too, and futures of aredis_pool_with() fail with CANCELLED
 * (their work's own future is cancelled when it is a command on the
 * connection). Connections still acquired are closed and freed as well:
 * a client a user still holds is invalid from then on, as are
 * transactions, pipelines and subscriptions made on pool connections —
 * free those first. Safe from inside the pool's callbacks. NULL is
 * ignored.
 */
AREDIS_API void aredis_pool_free(aredis_pool *pool);

/** The loop the pool was made on. */
AREDIS_API aredis_loop *aredis_pool_loop(const aredis_pool *pool);

/* ---- Acquire and release ----------------------------------------------- */

/**
 * cb gets a ready connection (err NULL) or fails (c NULL): TIMEOUT after
 * acquire_timeout_ms, its detail naming the pool's state ("acquire timed
 * out after 5000 ms: pool exhausted: 4 in use, 0 idle, max 4, 3
 * waiting"); the connection error when no connection could be opened and
 * the pool had none left to wait for; CANCELLED, FORKED.
 */
typedef void aredis_pool_acquire_fn(aredis_pool *pool, aredis_client *c, const aredis_error *err,
                                    void *data);

/**
 * Get a connection for yourself: cb runs once with it (a later loop turn
 * even when one is idle now). Use it as any client — except that it may
 * not be freed, closed or disconnected: give it back with
 * aredis_pool_release(). It may still owe replies to pool commands issued
 * before you got it (never a blocking one): your commands follow theirs on
 * the wire, and their replies are not yours.
 * Returns OK, INVALID (cb NULL), CLOSED (the pool is being freed).
 */
AREDIS_API aredis_err aredis_pool_acquire(aredis_pool *pool, aredis_pool_acquire_fn *cb,
                                          void *data);

/**
 * Give c back. Commands you issued on it and that are still owed complete
 * as usual (unless the connection must be closed: a blocking one pending);
 * the pool then resets it or closes it before anyone else gets it (see the
 * top of this file). Do not use c after this. Returns OK, or INVALID when
 * c is not a connection of this pool that is acquired now (released
 * already, or held by aredis_pool_with()).
 */
AREDIS_API aredis_err aredis_pool_release(aredis_pool *pool, aredis_client *c);

/**
 * Your work with a connection: return a future of it (a command, a
 * pipeline, a transaction, aredis_future_all() of several...), or NULL
 * when nothing is left to wait for. The pool takes over that future (it
 * releases it). Do not keep c past it.
 */
typedef aredis_future *aredis_pool_with_fn(aredis_client *c, void *data);

/**
 * Acquire, run fn(c, data) (in a later loop turn), and release c when the
 * future fn returned settles — or at once when it returned NULL. Always
 * released, whatever the outcome. The future returned settles the same
 * way as fn's (its reply, or its error), after the release; or fails with
 * the acquire's error (fn then never runs). Cancelling it cancels the
 * acquire, or fn's future. NULL only when out of memory or pool is NULL;
 * refused calls (a pool being freed) give a future that has failed
 * already.
 */
AREDIS_API aredis_future *aredis_pool_with(aredis_pool *pool, aredis_pool_with_fn *fn, void *data);

/* ---- Commands on the pool ---------------------------------------------- */

/**
 * One command on a connection the pool picks: acquire, send, release in
 * one step, without taking the connection from anyone — commands of the
 * pool share an idle connection (the most recently used: those issued in
 * one loop turn leave in one write, as on a single client) and only wait
 * when none is idle. cb (may be NULL) is
 * an aredis_reply_fn: `c` is the connection the command ran on, for
 * reading only (NULL when it never got one: TIMEOUT waiting, CANCELLED);
 * issue more commands through the pool, not on it. A command that would
 * leave something behind (MULTI, SELECT, a blocking command...) takes its
 * connection out of rotation until it completes, and the pool then resets
 * it as it would after a release: a pool command's session state never
 * outlives it.
 *
 * Returns OK or: INVALID (a malformed format), CLOSED, NOMEM, and, when a
 * connection is idle at the call, the client's own refusals (UNSUPPORTED
 * for SUBSCRIBE...). A command that has to wait is checked when it is
 * sent: a refusal then reaches cb. The request timeout runs from the
 * moment it is sent on a connection (the wait is bounded by
 * acquire_timeout_ms).
 */
/** @{ */
AREDIS_API aredis_err aredis_pool_command(aredis_pool *pool, aredis_reply_fn *cb, void *data,
                                          const char *fmt, ...);
AREDIS_API aredis_err aredis_pool_vcommand(aredis_pool *pool, aredis_reply_fn *cb, void *data,
                                           const char *fmt, va_list ap);
AREDIS_API aredis_err aredis_pool_command_argv(aredis_pool *pool, aredis_reply_fn *cb, void *data,
                                               int argc, const char *const *argv,
                                               const size_t *argvlen);
/** @} */
/** With per-command options (opts NULL = defaults), as aredis_command_ex(). */
AREDIS_API aredis_err aredis_pool_command_argv_ex(aredis_pool *pool, const aredis_cmd_opts *opts,
                                                  aredis_reply_fn *cb, void *data, int argc,
                                                  const char *const *argv, const size_t *argvlen);

/** The future forms: already failed when refused; NULL only when out of
 * memory. Cancelling one cancels the command (or its wait). */
/** @{ */
AREDIS_API aredis_future *aredis_pool_future_command(aredis_pool *pool, const char *fmt, ...);
AREDIS_API aredis_future *aredis_pool_future_vcommand(aredis_pool *pool, const char *fmt,
                                                      va_list ap);
AREDIS_API aredis_future *aredis_pool_future_argv(aredis_pool *pool, int argc,
                                                  const char *const *argv, const size_t *argvlen);
/** @} */

/* ---- Stats ------------------------------------------------------------- */

/**
 * The pool now, and counters since it was made. Always
 * @code{.unparsed}
 *   total == opening + idle + in_use + checking
 *   created - discarded == idle + in_use + checking
 * @endcode
 */
typedef struct aredis_pool_stats {
    size_t total;                   /**< connections held, counted against max_connections */
    size_t idle;                    /**< ready for the next user (may carry pool commands) */
    size_t in_use;                  /**< acquired (or held by aredis_pool_with()) */
    size_t opening;                 /**< connecting, handshake included */
    size_t checking;                /**< out of rotation for a moment: a health-check PING,
                                       a reset, replies owed, a pool command that blocks */
    size_t waiting;                 /**< acquires, with()s and pool commands waiting */
    uint64_t created;               /**< connections opened (that became ready) */
    uint64_t discarded;             /**< ...and closed by the pool since: dirty, broken,
                                       too old, idle too long, failed health check */
    uint64_t connect_failures;      /**< connections that could not be opened */
    uint64_t acquires;              /**< connections handed out (acquire, with) */
    uint64_t commands;              /**< pool commands sent */
    uint64_t timeouts;              /**< waits failed with AREDIS_ERR_TIMEOUT */
    uint64_t resets;                /**< releases reset in place (DISCARD, SELECT,
                                       a PING behind owed replies) */
    uint64_t health_checks;         /**< PINGs before handing out an idle connection */
    uint64_t health_check_failures; /**< ...that failed (the connection was closed) */
} aredis_pool_stats;

/** Copy the pool's state and counters into *out. */
AREDIS_API void aredis_pool_get_stats(const aredis_pool *pool, aredis_pool_stats *out);

#ifdef __cplusplus
}
#endif

#endif
