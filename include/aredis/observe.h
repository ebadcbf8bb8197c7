/**
 * @file
 * aredis/observe.h — tracing and metrics hooks, on OpenTelemetry's
 * conventions for database clients.
 *
 * Two independent things, each free when unused:
 *
 *   - OBSERVER: callbacks told of every operation as it starts and ends
 *     (span-like: start time, duration, outcome, attributes), of every
 *     connect, disconnect and reconnect attempt, and of every wait for a
 *     pool connection. Turn them into spans of your tracer
 *     (examples/otlp_exporter.c writes OTLP JSON).
 *   - METRICS: counters and histograms the library keeps itself:
 *     operations by name and outcome with a duration histogram, bytes in
 *     and out, connects and reconnect attempts, pool gauges and pool wait
 *     time. Read them as a snapshot, or as Prometheus text.
 *
 * @code
 *   static void *on_start(const aredis_op *op, void *data) {
 *       return my_tracer_start_span(op->name, op->parent); // becomes op->span
 *   }
 *   static void on_end(const aredis_op *op, void *data) {
 *       my_span_end(op->span, op->duration_ns, op->error_type);
 *   }
 *   static const aredis_observer obs = {.command_start = on_start, .command_end = on_end};
 *   aredis_client_set_observer(c, &obs, NULL);
 * @endcode
 *
 * OPERATIONS. One per command issued through any API (callback, future,
 * pool, pub/sub, script, scan page...), and one per pipeline or transaction
 * as a whole: `command_start` runs inside the call that issued it, on the
 * caller's thread, after it was accepted (a call that returns an error
 * issued nothing and reports nothing); `command_end` runs exactly once,
 * when the operation's outcome is decided — its reply, a server error, a
 * timeout, a cancel, a lost connection — just before the application's own
 * callback, also for an operation that timed out and whose late reply is
 * then dropped (it ended at the timeout). The library's own commands
 * (handshake, health check, subscription replay) are not operations: they
 * are part of a connect.
 *
 * ATTRIBUTES (OpenTelemetry semantic conventions for database clients):
 * @code{.unparsed}
 *   db.system.name           "redis", always
 *   db.operation.name        the command name as given ("GET", "hset"); for a
 *                            pipeline of two or more commands "BATCH <NAME>"
 *                            when all have that name, else "BATCH"; for a
 *                            transaction "MULTI"
 *   db.operation.batch.size  commands in a pipeline or transaction, when
 *                            two or more (0: not a batch, not reported)
 *   db.namespace             the database index, as the connection was on it
 *   server.address/port      the host (or unix socket path) and port the
 *                            client was given
 *   network.peer.address/port  the address connected to, once connected
 *   error.type               on failure: the server's error prefix for an
 *                            error reply ("WRONGTYPE"), else the aredis error
 *                            name without its prefix ("TIMEOUT",
 *                            "CANCELLED", "EOF", "CONNREFUSED"...).
 *                            A pipeline with an error reply among its
 *                            replies fails as SERVER with the first error's
 *                            prefix; a transaction with its EXEC's error
 *                            ("EXECABORT"); a transaction aborted by WATCH
 *                            (EXEC answered nil) succeeds, as does one
 *                            whose EXEC array holds an error
 *   db.response.status_code  the server's error prefix, for error replies
 *   db.query.text            only with AREDIS_OBSERVE_QUERY_TEXT: the
 *                            command as text, credentials replaced by
 *                            "<redacted>" exactly as in log lines
 *                            (aredis/log.h), truncated to 1,024 bytes
 * @endcode
 *
 * NO SECRET in any attribute or label: names, prefixes and addresses carry
 * none; query text is redacted; passwords in URIs never reach an attribute.
 *
 * TRACE CONTEXT. The observer's start callback runs on the thread that
 * issued the command, inside the call: a tracer keeping the current span in
 * a thread-local may read it there. Or say it explicitly:
 * aredis_client_set_trace_parent() gives the commands issued from then on
 * a parent, which the start callback finds in op->parent
 * (docs/OBSERVABILITY.md shows both with W3C traceparent ids).
 *
 * COST. With no observer and no metrics, issuing and completing a command
 * pays one predictable branch each. With metrics on, a command pays a look
 * at its name and a histogram bucket; its times are read once per socket
 * read (the replies of one read share their end time, and a command issued
 * from a reply callback starts at that read's time: durations are exact to
 * the time it takes to handle one read's replies, microseconds — unless a
 * reply callback blocks, e.g. waits on a future, before issuing). An
 * observer's operations read the clock themselves, for spans.
 * docs/BENCHMARKS.md has the figures.
 *
 * THREADS. An observer's callbacks run on the thread that drives the
 * client (and, for command_start, on the issuing thread, which is the
 * same; a command issued through aredis/threads.h from another thread
 * starts on the loop thread, so a thread-local parent is not seen there).
 * A metrics object may be attached to any number of clients and pools that
 * run on one loop; take its snapshot on that loop's thread (from another
 * thread, through aredis_loop_post(), aredis/loop.h). For clients on
 * several loops, use one metrics object per loop, take each snapshot on its
 * loop and render aredis_metrics_snapshot_merge() of them.
 */
#ifndef AREDIS_OBSERVE_H
#define AREDIS_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/error.h"
#include "aredis/export.h"
#include "aredis/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Operations ----------------------------------------------------------- */

/**
 * One operation, as command_start and command_end see it. Everything is
 * borrowed for the callback; copy what you keep. Fields marked END are set
 * only for command_end (zero / NULL at the start).
 */
typedef struct aredis_op {
    aredis_client *client;      /**< the client it runs on (for a pool command: the connection) */
    uint64_t id;                /**< unique in the process, increasing in issue order */
    const char *name;           /**< db.operation.name, NUL-terminated */
    size_t batch_size;          /**< db.operation.batch.size; 0 when not a batch */
    int db;                     /**< db.namespace (the index) */
    const char *server_address; /**< server.address: host or unix path */
    int server_port;            /**< server.port; 0 for a unix socket */
    /** network.peer.address: the address connected to when the operation
     * started; NULL when not connected then (it waits). */
    const char *peer_address;
    int peer_port; /**< network.peer.port; 0 when peer_address is NULL */
    /** db.query.text, with AREDIS_OBSERVE_QUERY_TEXT only (else NULL):
     * redacted; a pipeline's commands separated by "; ". */
    const char *query_text;
    int64_t start_unix_ns; /**< when it was issued (CLOCK_REALTIME) */
    uint64_t duration_ns;  /**< END: issue to outcome (CLOCK_MONOTONIC) */
    aredis_err outcome;    /**< END: OK, SERVER (an error reply), TIMEOUT... */
    /** END, on failure only (NULL on success): error.type — the server's
     * error prefix for SERVER, else aredis_err_name(outcome) without
     * "AREDIS_ERR_" ("TIMEOUT"). */
    const char *error_type;
    /** END: db.response.status_code — the server's error prefix for an
     * error reply, else NULL. */
    const char *status_code;
    void *parent; /**< the trace parent when it was issued (set_trace_parent) */
    void *span;   /**< END: what command_start returned */
} aredis_op;

/* ---- Connection events ----------------------------------------------------- */

/** What an aredis_conn_event tells. */
typedef enum aredis_conn_event_kind {
    /** A connect attempt ended: outcome OK (handshake done, the connection
     * is ready) or why it failed; duration_ns from the attempt's start
     * (resolution, TCP, TLS and handshake included). */
    AREDIS_CONN_CONNECT = 1,
    /** A ready connection ended; outcome says why (CLOSED when asked to). */
    AREDIS_CONN_DISCONNECT = 2,
    /** A reconnect attempt was scheduled: attempt (1, 2...) and delay_ms. */
    AREDIS_CONN_RECONNECT = 3
} aredis_conn_event_kind;

/**
 * A connect, disconnect or reconnect attempt of a client, as the
 * observer's `connection` callback sees it. Borrowed for the callback;
 * copy what you keep. Fields marked with a kind are set only for that
 * kind (zero otherwise).
 */
typedef struct aredis_conn_event {
    aredis_conn_event_kind kind; /**< which event */
    aredis_client *client;       /**< the client it happened to */
    const char *server_address;  /**< server.address: host or unix path */
    int server_port;             /**< server.port; 0 for a unix socket */
    /** network.peer.address: the address connected to; NULL when there is
     * none (a failed CONNECT, a RECONNECT). */
    const char *peer_address;
    int peer_port;          /**< network.peer.port; 0 when peer_address is NULL */
    int64_t time_unix_ns;   /**< when it happened */
    uint64_t duration_ns;   /**< CONNECT: the attempt; DISCONNECT: time connected */
    aredis_err outcome;     /**< OK, or why */
    const char *error_type; /**< NULL, or the error's name ("TIMEOUT") */
    unsigned attempt;       /**< RECONNECT: which attempt */
    uint32_t delay_ms;      /**< RECONNECT: its delay */
} aredis_conn_event;

/* ---- Pool waits ------------------------------------------------------------ */

/**
 * A wait for a pool connection ended (an acquire, with() or pool command
 * that found none idle): granted (outcome OK) or failed (TIMEOUT: the
 * acquire timeout; CANCELLED, CLOSED...). Gauges as the wait ended.
 */
typedef struct aredis_pool_wait_event {
    aredis_pool *pool;      /**< the pool waited on */
    const char *pool_name;  /**< db.client.connection.pool.name: "host:port/db" */
    uint64_t duration_ns;   /**< how long the wait took (CLOCK_MONOTONIC) */
    aredis_err outcome;     /**< OK (a connection was granted), or why not */
    const char *error_type; /**< NULL, or the error's name ("TIMEOUT") */
    /** The pool's gauges as the wait ended: connections idle, connections
     * used (acquired, or out of rotation for a moment) and waits still
     * pending. */
    /** @{ */
    size_t idle, used, pending;
    /** @} */
} aredis_pool_wait_event;

/* ---- Observer -------------------------------------------------------------- */

/** aredis_observer.flags: db.query.text on operations (redacted; off by
 * default). */
#define AREDIS_OBSERVE_QUERY_TEXT 1u

/**
 * The callbacks; any may be NULL. `data` is what was given with the
 * observer. Callbacks must not free the client they observe (issuing
 * commands, closing or cancelling is fine in command_end and the events;
 * in command_start do nothing with the client: the command being issued is
 * not fully placed yet).
 */
typedef struct aredis_observer {
    /** An operation started (see OPERATIONS in aredis/observe.h). Returns
     * the span (or anything) to carry to command_end as op->span. */
    void *(*command_start)(const aredis_op *op, void *data);
    /** An operation ended: runs exactly once for every operation started,
     * just before the application's own callback. */
    void (*command_end)(const aredis_op *op, void *data);
    /** A connect attempt ended, a connection ended, or a reconnect attempt
     * was scheduled. */
    void (*connection)(const aredis_conn_event *ev, void *data);
    /** A wait for a pool connection ended (pools observed with
     * aredis_pool_set_observer() only). */
    void (*pool_wait)(const aredis_pool_wait_event *ev, void *data);
    unsigned flags; /**< AREDIS_OBSERVE_* bits; 0 for none */
} aredis_observer;

/**
 * Observe c: obs with data; NULL stops. obs is kept by pointer: it must
 * stay valid while it is set and until every operation started under it
 * has ended (operations already started keep the observer they started
 * with for their end; at the latest, until the client is freed). Returns OK, or NOMEM (nothing
 * changed). A hidden connection that a RESP2 subscription makes after
 * this call (aredis/pubsub.h) is observed the same way.
 */
AREDIS_API aredis_err aredis_client_set_observer(aredis_client *c, const aredis_observer *obs,
                                                 void *data);

/**
 * The trace parent of the commands c issues from now on (op->parent), until
 * set again; NULL for none. Opaque to aredis: a span, a context, a W3C
 * traceparent string the caller keeps alive until the operations end.
 */
AREDIS_API void aredis_client_set_trace_parent(aredis_client *c, void *parent);

/**
 * Observe the pool: its pool_wait events, and through every connection it
 * has and will make, their operations and connection events. A pool
 * command that has to wait for a connection starts (command_start) when
 * it is issued on one, from the loop, not inside the call: a thread-local
 * parent of the caller is not seen then. Returns OK, or NOMEM (some
 * connections may then be observed already: call again, or with NULL).
 */
AREDIS_API aredis_err aredis_pool_set_observer(aredis_pool *pool, const aredis_observer *obs,
                                               void *data);

/* ---- Metrics --------------------------------------------------------------- */

/**
 * Counters and histograms kept for any number of clients and pools on one
 * loop (opaque). Made with aredis_metrics_new(), attached with
 * aredis_client_set_metrics() and aredis_pool_set_metrics(), read with
 * aredis_metrics_snapshot_take().
 */
typedef struct aredis_metrics aredis_metrics;

/** How many finite bucket bounds aredis_metrics_bounds holds; an
 * aredis_histogram has one bucket more (+Inf). */
#define AREDIS_METRICS_BOUNDS 9
/**
 * The histogram bucket upper bounds, in seconds, that OpenTelemetry
 * recommends for db.client.operation.duration (used for every duration
 * histogram here): 0.001 0.005 0.01 0.05 0.1 0.5 1 5 10, and +Inf.
 */
AREDIS_API extern const double aredis_metrics_bounds[AREDIS_METRICS_BOUNDS];

/** A new, empty metrics object; NULL when out of memory. */
AREDIS_API aredis_metrics *aredis_metrics_new(void);
/** Detaches it from every client and pool first. NULL is ignored. */
AREDIS_API void aredis_metrics_free(aredis_metrics *m);

/**
 * Keep c's metrics in m from now on (NULL: stop; its counts so far stay in
 * the metrics it was attached to). A client freed while attached leaves
 * its counts behind.
 */
AREDIS_API aredis_err aredis_client_set_metrics(aredis_client *c, aredis_metrics *m);
/** The same for every connection of the pool, now and later, plus the
 * pool's gauges and wait times. Returns OK, or NOMEM (as set_observer). */
AREDIS_API aredis_err aredis_pool_set_metrics(aredis_pool *pool, aredis_metrics *m);

/** One duration histogram: count, sum, and buckets[i] = how many took at
 * most aredis_metrics_bounds[i] (cumulative, as Prometheus has them);
 * buckets[AREDIS_METRICS_BOUNDS] is the +Inf bucket (== count). */
typedef struct aredis_histogram {
    uint64_t count;                              /**< durations recorded */
    double sum_seconds;                          /**< their sum, in seconds */
    uint64_t buckets[AREDIS_METRICS_BOUNDS + 1]; /**< cumulative counts per bound, then +Inf */
} aredis_histogram;

/** Operations of one name to one server with one outcome. */
typedef struct aredis_metrics_op {
    const char *server_address; /**< server.address: host or unix path */
    int server_port;            /**< server.port; 0 for a unix socket */
    const char *name;           /**< db.operation.name */
    const char *error_type;     /**< NULL: succeeded */
    aredis_histogram duration;  /**< db.client.operation.duration */
} aredis_metrics_op;

/** Per server (server.address/port): connection counters. */
typedef struct aredis_metrics_server {
    const char *server_address; /**< server.address: host or unix path */
    int server_port;            /**< server.port; 0 for a unix socket */
    /** Bytes written to the server and read from it. */
    /** @{ */
    uint64_t bytes_out, bytes_in;
    /** @} */
    uint64_t connects;           /**< connections made (handshake done) */
    uint64_t connect_failures;   /**< attempts that failed */
    uint64_t reconnect_attempts; /**< attempts scheduled after a loss */
    uint64_t timeouts;           /**< operations failed with TIMEOUT */
} aredis_metrics_server;

/** Per pool: gauges now and the wait-time histogram. */
typedef struct aredis_metrics_pool {
    const char *pool_name; /**< db.client.connection.pool.name */
    /** Gauges when the snapshot was taken: connections idle, connections
     * used (acquired, or out of rotation for a moment), waits pending, and
     * max_connections. All but max are 0 once the pool is freed. */
    /** @{ */
    size_t idle, used, pending, max;
    /** @} */
    uint64_t timeouts;     /**< waits that ended in the acquire timeout */
    aredis_histogram wait; /**< db.client.connection.wait_time of every wait */
} aredis_metrics_pool;

/**
 * Everything a metrics object held at one moment: three arrays, each with
 * its length. One allocation, strings included, owned by the snapshot
 * (aredis_metrics_snapshot_free()).
 */
typedef struct aredis_metrics_snapshot {
    size_t n_ops;                         /**< entries in ops */
    const aredis_metrics_op *ops;         /**< sorted by server, name, outcome */
    size_t n_servers;                     /**< entries in servers */
    const aredis_metrics_server *servers; /**< one per server.address/port */
    size_t n_pools;                       /**< entries in pools */
    const aredis_metrics_pool *pools;     /**< one per pool */
} aredis_metrics_snapshot;

/**
 * A copy of everything m holds now (one allocation; free it with
 * aredis_metrics_snapshot_free, which ignores NULL). NULL when out of
 * memory, or m NULL.
 */
AREDIS_API aredis_metrics_snapshot *aredis_metrics_snapshot_take(const aredis_metrics *m);
/** Free a snapshot of aredis_metrics_snapshot_take() or
 * aredis_metrics_snapshot_merge(). NULL is ignored. */
AREDIS_API void aredis_metrics_snapshot_free(aredis_metrics_snapshot *s);

/**
 * n snapshots as one, for clients on several loops (one metrics object per
 * loop): series with the same labels are added up — operations by server,
 * name and outcome, servers by address and port, pools by name (gauges
 * summed: two pools to the same place on two loops read as one). Render
 * the result once: Prometheus text of each snapshot one after the other
 * would repeat families and series. NULL when out of memory or a snapshot
 * is NULL; free it with aredis_metrics_snapshot_free.
 */
AREDIS_API aredis_metrics_snapshot *
aredis_metrics_snapshot_merge(const aredis_metrics_snapshot *const *snapshots, size_t n);

/**
 * The snapshot in the Prometheus text exposition format (version 0.0.4),
 * OpenTelemetry names converted as Prometheus does (dots to underscores,
 * unit suffix, "_total" on counters):
 * @code{.unparsed}
 *   db_client_operation_duration_seconds   histogram: db_system_name,
 *        db_operation_name, server_address, server_port, error_type (when
 *        failed)
 *   aredis_client_network_io_bytes_total    counter: network_io_direction
 *        (transmit / receive), server_address, server_port
 *   aredis_client_connects_total, aredis_client_connect_failures_total,
 *   aredis_client_reconnect_attempts_total, aredis_client_timeouts_total
 *   db_client_connection_count              gauge: pool name, state idle/used
 *   db_client_connection_pending_requests   gauge
 *   db_client_connection_max                gauge
 *   db_client_connection_timeouts_total     counter
 *   db_client_connection_wait_time_seconds  histogram
 * @endcode
 * Label values are escaped as the format requires (a backslash, a double
 * quote and a newline become backslash-backslash, backslash-quote and
 * backslash-n). Returns a NUL-terminated string
 * allocated with the library allocator (free it with aredis_mem_free), its
 * length in *len when len is not NULL; NULL when out of memory.
 */
AREDIS_API char *aredis_metrics_prometheus(const aredis_metrics_snapshot *s, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
