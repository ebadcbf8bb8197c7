/**
 * @file
 * aredis/cluster.h — Redis Cluster: one object for the whole cluster,
 * commands routed to the node that holds their keys.
 *
 * @code
 *   aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
 *   const char *seeds[] = {"127.0.0.1:7000", "127.0.0.1:7001"};
 *   o.seeds = seeds;
 *   o.nseeds = 2;
 *   aredis_cluster *cl = aredis_cluster_new(loop, &o);
 *   aredis_cluster_command(cl, on_reply, NULL, "SET %s %s", "user:1", "ann");
 *   aredis_future *f = aredis_cluster_future(cl, "GET %s", "user:1");
 *   aredis_await(f);   // "ann", from whichever node serves user:1
 * @endcode
 *
 * TOPOLOGY. The cluster's shape is read from a seed (CLUSTER SHARDS; CLUSTER
 * SLOTS on servers before Redis 7) as soon as the cluster object is made,
 * and read again after a MOVED, after a node connection is lost (a failover
 * may be under way: read until the failed primary's slots have a new
 * owner), and every refresh_every_ms — never more often than once per
 * min_refresh_ms. Commands issued before the first read wait for it, in
 * order; if no seed can answer they fail with the reason.
 *
 * ROUTING. A command goes to the primary that owns its keys' hash slot
 * (CRC16 of the key, or of the part between the first "{" and the next "}"
 * when that is not empty: "{user:1}:name" and "{user:1}:mail" share a
 * slot). The keys are found from the command table, as the server finds
 * them. Keys of several slots in one command are refused before anything
 * is sent (AREDIS_ERR_CROSSSLOT). Commands without keys go to the connected
 * primary with the least waiting on it.
 * With read_from = AREDIS_READ_REPLICA, read-only commands go to a replica
 * of the owning primary (READONLY is sent on replica connections), falling
 * back to the primary when it has no replica.
 *
 * REDIRECTIONS are followed and never seen: MOVED updates the slot's owner
 * and sends the command there (and reads the topology again); ASK sends
 * ASKING and the command to the node named, leaving the owner as it is;
 * TRYAGAIN (keys of a slot being migrated, split across both nodes) is
 * retried after a short wait. At most max_redirects of these per command;
 * then the last error reply is the command's reply.
 *
 * NODES. Every node used gets one connection, an aredis_client made with
 * `node` options (TLS, auth, timeouts, reconnect policy, observers and
 * metrics apply per node connection as on a single client;
 * aredis_cluster_nodes() hands them out for INFO, stats or observers).
 * Connections of one's own (blocking commands, WATCH) come from a node's
 * pool: aredis_cluster_pool().
 * With TLS, one context serves every node: node.tls_context (held by the
 * cluster), or one built from node's tls_* files by aredis_cluster_new(),
 * which then fails with AREDIS_ERR_TLS when they cannot be used.
 * Connections to nodes that left the topology are closed. Commands
 * waiting, unsent, on the connection of a primary that is down are taken
 * back and sent to its slot's new owner once the topology names one (a
 * failover); those in flight when it failed fail with its error.
 *
 * NOT ON A CLUSTER: commands that change a connection's session (SELECT,
 * AUTH, HELLO; MULTI/EXEC/DISCARD/WATCH through the command API — use
 * aredis_cluster_tx below), a key prefix, and the subscribe family through
 * the command API (use aredis_cluster_sub below) are refused with
 * AREDIS_ERR_UNSUPPORTED and a reason.
 *
 * CALLBACK CONTRACT (as aredis/client.h): a callback runs exactly once,
 * never from inside the call that issued it; if the call returns an error
 * it never runs. The client argument of a reply callback is the node
 * connection that answered (NULL when none did: the cluster was freed, or
 * the topology could not be read). Everything is used from the loop's
 * thread. aredis_cluster_free() may be called from inside any callback.
 */
#ifndef AREDIS_CLUSTER_H
#define AREDIS_CLUSTER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/export.h"
#include "aredis/future.h"
#include "aredis/pool.h"
#include "aredis/pubsub.h"
#include "aredis/scan.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A Redis Cluster (opaque): every node connection, the topology and the
 * commands under way; made with aredis_cluster_new(), freed with
 * aredis_cluster_free(). */
typedef struct aredis_cluster aredis_cluster;

/** Where read-only commands go (aredis_cluster_options.read_from). */
typedef enum aredis_read_from {
    AREDIS_READ_PRIMARY = 0, /**< every command to the slot's primary */
    AREDIS_READ_REPLICA = 1  /**< read-only commands to one of its replicas (they
                                may lag the primary by a little) */
} aredis_read_from;

/** aredis_cluster_options.refresh_every_ms: no periodic topology reads. */
#define AREDIS_CLUSTER_NO_PERIODIC UINT32_MAX

/**
 * Options; start from AREDIS_CLUSTER_OPTIONS_INIT. Each field says its
 * default.
 */
typedef struct aredis_cluster_options {
    /** Nodes to read the topology from first, "host:port" ("[::1]:7000"
     * for IPv6), `nseeds` of them; at least one; tried in turn. */
    const char *const *seeds;
    size_t nseeds; /**< how many seeds (at least 1) */
    /** Every node connection's options (AREDIS_OPTIONS_INIT); host, port
     * and unix_path are the cluster's to set; db must be 0 and prefix and
     * cache NULL. on_connect, on_disconnect, on_error and
     * on_reconnect_attempt run for every node connection (their client
     * argument says which). */
    aredis_options node;
    unsigned max_redirects;  /**< 5: MOVED/ASK/TRYAGAIN followed per command */
    uint32_t min_refresh_ms; /**< 100: the topology is read at most this often */
    /** 30000: read unasked this often (a node added, a replica promoted by
     * hand); AREDIS_CLUSTER_NO_PERIODIC: never. */
    uint32_t refresh_every_ms;
    aredis_read_from read_from; /**< AREDIS_READ_PRIMARY */
} aredis_cluster_options;

#ifndef __cplusplus
/** The default options (see aredis_cluster_options), as an initializer:
 * `aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;`. In C++ it
 * calls aredis_cluster_options_default(). */
#define AREDIS_CLUSTER_OPTIONS_INIT                                                                \
    {                                                                                              \
        .seeds = NULL, .nseeds = 0, .node = AREDIS_OPTIONS_INIT, .max_redirects = 5,               \
        .min_refresh_ms = 100, .refresh_every_ms = 30000, .read_from = AREDIS_READ_PRIMARY         \
    }
#else
/** The default options, for C++: what AREDIS_CLUSTER_OPTIONS_INIT gives
 * there (the same defaults, set one by one). Keep the two lists
 * identical. */
static inline aredis_cluster_options aredis_cluster_options_default(void) {
    aredis_cluster_options o = aredis_cluster_options();
    o.node = aredis_options_default();
    o.max_redirects = 5;
    o.min_refresh_ms = 100;
    o.refresh_every_ms = 30000;
    o.read_from = AREDIS_READ_PRIMARY;
    return o;
}
/** The default options (see aredis_cluster_options), as an initializer:
 * `aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;`. In C++ it
 * calls aredis_cluster_options_default(). */
#define AREDIS_CLUSTER_OPTIONS_INIT aredis_cluster_options_default()
#endif

/**
 * A cluster object on loop, connecting to every seed at once (the first to
 * answer gives the topology; the options are copied). 0 in max_redirects,
 * min_refresh_ms or refresh_every_ms means that field's default. NULL with aredis_call_error() set:
 * INVALID (no seed, a seed that is not "host:port", db, prefix or cache set, no loop), TLS
 * (node.tls set and its files unusable) or NOMEM.
 */
AREDIS_API aredis_cluster *aredis_cluster_new(aredis_loop *loop, const aredis_cluster_options *o);

/**
 * Close every node connection and free. Commands, pipelines and
 * transactions not answered yet fail with CANCELLED (their callbacks run
 * now); subscriptions and scans made on it may only be freed afterwards.
 * NULL is ignored.
 */
AREDIS_API void aredis_cluster_free(aredis_cluster *cl);

/**
 * Issue a command (printf-like as aredis_command(), or argc arguments
 * with lengths; argvlen NULL: NUL-terminated). Returns OK, or an error and
 * cb never runs: INVALID (malformed), NOMEM, CROSSSLOT (keys of several
 * slots), UNSUPPORTED (see NOT ON A CLUSTER above), CANCELLED (the cluster
 * is being freed), NOT_CONNECTED (no node has a usable address). cb gets
 * the reply of the node that finally answered, or the error (the node
 * connection's: TIMEOUT, a connection error...; or why the topology could
 * not be read).
 */
/** @{ */
AREDIS_API aredis_err aredis_cluster_command(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                             const char *fmt, ...);
AREDIS_API aredis_err aredis_cluster_vcommand(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                              const char *fmt, va_list ap);
AREDIS_API aredis_err aredis_cluster_argv(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                          int argc, const char *const *argv, const size_t *argvlen);
/** @} */

/**
 * The future forms: a future that resolves with the reply (NULL only when
 * out of memory, or cl or the format is NULL; a refused call gives a
 * future already failed with the refusal). Release it; cancelling it drops the reply (the command
 * may still run on the server).
 */
/** @{ */
AREDIS_API aredis_future *aredis_cluster_future(aredis_cluster *cl, const char *fmt, ...);
AREDIS_API aredis_future *aredis_cluster_future_argv(aredis_cluster *cl, int argc,
                                                     const char *const *argv,
                                                     const size_t *argvlen);
/** @} */

/**
 * Send one command to every primary (FLUSHALL, SCRIPT LOAD, CONFIG SET,
 * DBSIZE...): cb runs once with an ARRAY reply of each primary's reply, in
 * the order aredis_cluster_nodes() gives the primaries, or with the first
 * error (then no reply). Commands with keys are refused (INVALID).
 */
AREDIS_API aredis_err aredis_cluster_command_all(aredis_cluster *cl, aredis_reply_fn *cb,
                                                 void *data, const char *fmt, ...);

/* ---- Pipelines ------------------------------------------------------------ */

/**
 * A cluster pipeline: queue commands of any slots, then exec. They are
 * split by node — one write per node — and the replies merged back into
 * one ARRAY in the order queued (a command refused by the server has its
 * ERROR reply in its place; redirections are followed per command). The
 * exec fails only when a node connection fails or the deadline passes;
 * then the callback gets that error and no reply (which commands ran is
 * unknown). Commands of different nodes run in no particular order
 * between nodes; those of one node in the order queued. Each command is
 * checked when queued (CROSSSLOT, UNSUPPORTED: as aredis_cluster_command()).
 * exec empties the pipeline; it may be reused or freed at once.
 */
typedef struct aredis_cluster_pipeline aredis_cluster_pipeline;

/** A new empty pipeline on cl. NULL with aredis_call_error() set: INVALID
 * (cl NULL) or NOMEM. */
AREDIS_API aredis_cluster_pipeline *aredis_cluster_pipeline_new(aredis_cluster *cl);
/** Free it (queued commands are dropped; an exec under way goes on). Also
 * after the cluster was freed. NULL is ignored. */
AREDIS_API void aredis_cluster_pipeline_free(aredis_cluster_pipeline *p);
/**
 * Queue a command (printf-like as aredis_command(), or argc arguments with
 * lengths; argvlen NULL: NUL-terminated). Returns OK, or an error and
 * nothing is queued: INVALID (malformed), CROSSSLOT, UNSUPPORTED (as
 * aredis_cluster_command()), CANCELLED (the cluster is being freed), NOMEM.
 */
/** @{ */
AREDIS_API aredis_err aredis_cluster_pipeline_command(aredis_cluster_pipeline *p, const char *fmt,
                                                      ...);
AREDIS_API aredis_err aredis_cluster_pipeline_argv(aredis_cluster_pipeline *p, int argc,
                                                   const char *const *argv, const size_t *argvlen);
/** @} */
/** Commands queued and not yet executed. */
AREDIS_API size_t aredis_cluster_pipeline_size(const aredis_cluster_pipeline *p);
/** Send everything queued. Returns OK (cb will run), or INVALID for an
 * empty pipeline, NOMEM, CANCELLED (the pipeline is then unchanged), or
 * NOT_CONNECTED when no node could take any of the commands (they are
 * dropped: the pipeline is then empty). */
AREDIS_API aredis_err aredis_cluster_pipeline_exec(aredis_cluster_pipeline *p, aredis_reply_fn *cb,
                                                   void *data);
/** The future form of aredis_cluster_pipeline_exec(): a refused exec gives
 * a future already failed with the refusal; NULL when out of memory (or p
 * NULL). */
AREDIS_API aredis_future *aredis_cluster_pipeline_exec_future(aredis_cluster_pipeline *p);

/* ---- Transactions ------------------------------------------------------------ */

/**
 * MULTI ... EXEC on the node that owns the transaction's slot: every key
 * of every queued command must hash to the same slot (use a hash tag,
 * "{order:7}:items"); a command with keys of another slot is refused when
 * queued (CROSSSLOT), keyless commands are fine. exec sends MULTI, the
 * commands and EXEC in one write; cb gets EXEC's reply as with
 * aredis_tx_exec() (an ARRAY of the commands' replies; nil when aborted;
 * an EXECABORT error when the server refused a queued command). If the
 * slot moved, the whole transaction is sent again to the new owner (the
 * old one ran none of it). For WATCH, use aredis_tx (aredis/tx.h) on a
 * connection from the node's pool: aredis_cluster_pool().
 */
typedef struct aredis_cluster_tx aredis_cluster_tx;

/** A new empty transaction on cl. NULL with aredis_call_error() set:
 * INVALID (cl NULL) or NOMEM. */
AREDIS_API aredis_cluster_tx *aredis_cluster_tx_new(aredis_cluster *cl);
/** Free it (queued commands are dropped; an exec under way goes on). Also
 * after the cluster was freed. NULL is ignored. */
AREDIS_API void aredis_cluster_tx_free(aredis_cluster_tx *tx);
/**
 * Queue a command for MULTI ... EXEC (printf-like, or argc arguments with
 * lengths; argvlen NULL: NUL-terminated). Returns OK, or an error and
 * nothing is queued: INVALID (malformed), CROSSSLOT (keys of another slot
 * than the transaction's), UNSUPPORTED (MULTI, EXEC, DISCARD, WATCH,
 * SELECT, AUTH, HELLO...), CANCELLED (the cluster is being freed), NOMEM.
 */
/** @{ */
AREDIS_API aredis_err aredis_cluster_tx_queue(aredis_cluster_tx *tx, const char *fmt, ...);
AREDIS_API aredis_err aredis_cluster_tx_queue_argv(aredis_cluster_tx *tx, int argc,
                                                   const char *const *argv, const size_t *argvlen);
/** @} */
/** Commands queued. */
AREDIS_API size_t aredis_cluster_tx_size(const aredis_cluster_tx *tx);
/**
 * Send MULTI, the queued commands and EXEC to the slot's owner; cb runs
 * once with EXEC's reply or the error. Returns OK (the transaction is then
 * empty and may be reused), or an error and cb never runs, the commands
 * stay queued: INVALID when nothing is queued, CANCELLED (the cluster is
 * being freed), NOT_CONNECTED (no node to send it to), NOMEM.
 */
AREDIS_API aredis_err aredis_cluster_tx_exec(aredis_cluster_tx *tx, aredis_reply_fn *cb,
                                             void *data);
/** The future form of aredis_cluster_tx_exec(): a refused exec gives a
 * future already failed with the refusal; NULL when out of memory (or tx
 * NULL). */
AREDIS_API aredis_future *aredis_cluster_tx_exec_future(aredis_cluster_tx *tx);

/* ---- Sharded pub/sub (Redis 7) ------------------------------------------------ */

/**
 * Shard channels subscribed on the node that owns each channel's slot
 * (SSUBSCRIBE), and moved when the slot moves: when the server drops a
 * channel (its slot migrated) or the owner changes in the topology (a
 * failover), the channel is subscribed again on the new owner and on_event
 * runs with AREDIS_SUB_RESUBSCRIBED (messages published in between are
 * lost). A node connection's own reconnect replays its channels as on a
 * single client. Messages of every node arrive at one handler.
 */
typedef struct aredis_cluster_sub aredis_cluster_sub;

/** A message on one of the shard channels (m->kind AREDIS_SUB_SHARD),
 * borrowed for the handler's duration as for aredis_message_fn. */
typedef void aredis_cluster_message_fn(aredis_cluster_sub *s, const aredis_message *m, void *data);
/** An event of the subscription, as for aredis_sub_event_fn:
 * AREDIS_SUB_RESUBSCRIBED when channels were subscribed again (a node's
 * reconnect, a channel moved), AREDIS_SUB_ERROR when that failed (err
 * says why). */
typedef void aredis_cluster_sub_event_fn(aredis_cluster_sub *s, aredis_sub_event ev,
                                         const aredis_error *err, void *data);

/** A subscription on cl, holding no channel yet. on_message is required;
 * on_event may be NULL. NULL with aredis_call_error() set: INVALID,
 * CANCELLED (the cluster is being freed) or NOMEM. */
AREDIS_API aredis_cluster_sub *aredis_cluster_sub_new(aredis_cluster *cl,
                                                      aredis_cluster_message_fn *on_message,
                                                      aredis_cluster_sub_event_fn *on_event,
                                                      void *data);
/**
 * Subscribe to n shard channels (lens NULL: NUL-terminated). cb runs once
 * every node involved has confirmed, with the last confirmation, or with
 * the first error. Same refusals as aredis_subscription_subscribe().
 */
/** @{ */
AREDIS_API aredis_err aredis_cluster_ssubscribe(aredis_cluster_sub *s, size_t n,
                                                const char *const *names, const size_t *lens,
                                                aredis_reply_fn *cb, void *data);
AREDIS_API aredis_err aredis_cluster_sunsubscribe(aredis_cluster_sub *s, size_t n,
                                                  const char *const *names, const size_t *lens,
                                                  aredis_reply_fn *cb, void *data);
/** @} */
/** Shard channels held. */
AREDIS_API size_t aredis_cluster_sub_count(const aredis_cluster_sub *s);
/** Unsubscribe (without waiting) and free; safe from its own handlers and
 * after the cluster was freed. NULL ignored. */
AREDIS_API void aredis_cluster_sub_free(aredis_cluster_sub *s);

/* ---- SCAN over the cluster ---------------------------------------------------- */

/**
 * SCAN every primary in turn (keys of every slot, each key once as long as
 * slots do not move during the scan). opts as for aredis_scan_new() (kind
 * must be AREDIS_SCAN_KEYS; cursor must be NULL). Each next() gives one
 * batch (an ARRAY of keys, possibly empty) from the node being scanned;
 * aredis_cluster_scan_done() says when every node is done.
 */
typedef struct aredis_cluster_scan aredis_cluster_scan;

/**
 * One batch's outcome, as aredis_scan_fn: on success err is NULL and batch
 * an ARRAY of keys (possibly empty), borrowed for the callback; on failure
 * batch is NULL and err says why (the node's cursor is kept: the next
 * batch asks for the same place again).
 */
typedef void aredis_cluster_scan_fn(aredis_cluster_scan *s, const aredis_reply *batch,
                                    const aredis_error *err, void *data);

/** A scan of every key on cl (opts NULL: no MATCH, COUNT or TYPE; the
 * strings are copied). Sends nothing yet. NULL with aredis_call_error()
 * set: INVALID (cl NULL, a kind other than KEYS, a key or a cursor given)
 * or NOMEM. */
AREDIS_API aredis_cluster_scan *aredis_cluster_scan_new(aredis_cluster *cl,
                                                        const aredis_scan_opts *opts);
/** Ask for the next batch; cb runs once with it. Returns OK (cb will run),
 * or INVALID when done or a batch is under way, CLOSED once the cluster is
 * freed. */
AREDIS_API aredis_err aredis_cluster_scan_next(aredis_cluster_scan *s, aredis_cluster_scan_fn *cb,
                                               void *data);
/** 1 once every primary has been scanned to the end, else 0 (0 before the
 * first batch). */
AREDIS_API int aredis_cluster_scan_done(const aredis_cluster_scan *s);
/** 1 while a batch is under way (its callback has not run yet). */
AREDIS_API int aredis_cluster_scan_busy(const aredis_cluster_scan *s);
/** Free the scan, also after the cluster was freed. Freeing it with a
 * batch under way runs its callback at once with CANCELLED. NULL is
 * ignored. */
AREDIS_API void aredis_cluster_scan_free(aredis_cluster_scan *s);

/* ---- Nodes and counters ---------------------------------------------------------- */

/**
 * The node connections: up to max of them into out (primaries first, in
 * slot order, then replicas when `replicas` is set). Returns how many
 * there are. The clients belong to the cluster: do not free or close them.
 */
AREDIS_API size_t aredis_cluster_nodes(aredis_cluster *cl, aredis_client **out, size_t max,
                                       int replicas);

/**
 * A connection pool to the primary serving key (aredis/pool.h), for what
 * needs a connection of one's own: blocking commands (BLPOP, XREAD BLOCK,
 * WAIT...), WATCH transactions (aredis_tx on an acquired connection), or
 * isolation. Made on first use with po (NULL: AREDIS_POOL_OPTIONS_INIT;
 * its client and uri are ignored: every connection gets the cluster's node
 * options and the node's address), then the same pool for every key of
 * that node. The pool belongs to the cluster: do not free it; it goes with
 * aredis_cluster_free() (connections still acquired are closed then, their
 * callbacks CANCELLED). It stays with its node: after a resharding the key
 * may be served elsewhere (its commands there get MOVED errors) — ask
 * again. NULL with aredis_call_error() set: INVALID, NOT_CONNECTED (the
 * topology does not name the key's node yet: call once a command has been
 * answered), CANCELLED (the cluster is being freed), or what
 * aredis_pool_new() refuses.
 */
AREDIS_API aredis_pool *aredis_cluster_pool(aredis_cluster *cl, const char *key, size_t keylen,
                                            const aredis_pool_options *po);

/** The node connection serving key (its slot's primary), or NULL when the
 * topology is not known yet. */
AREDIS_API aredis_client *aredis_cluster_node_for_key(aredis_cluster *cl, const char *key,
                                                      size_t keylen);

/** Counters since aredis_cluster_new(), and the cluster's state now. */
typedef struct aredis_cluster_stats {
    uint64_t refreshes; /**< topology reads installed */
    uint64_t moved;     /**< MOVED redirections followed */
    uint64_t asked;     /**< ASK redirections followed */
    uint64_t tryagain;  /**< TRYAGAIN retries */
    uint64_t rerouted;  /**< commands taken back, unsent, from a node that was
                           down and lost their slot, and sent to the new owner */
    size_t nodes;       /**< node connections open now */
    size_t slots_known; /**< slots with an owner in the topology (16384 when whole) */
} aredis_cluster_stats;
/** Copy the cluster's counters into *out. */
AREDIS_API void aredis_cluster_get_stats(const aredis_cluster *cl, aredis_cluster_stats *out);

/** A slot (0..16383) as the cluster computes it, hash tags included. */
AREDIS_API unsigned aredis_cluster_keyslot(const char *key, size_t keylen);

#ifdef __cplusplus
}
#endif

#endif
