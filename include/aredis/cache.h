/**
 * @file
 * aredis/cache.h — client-side caching: reads of hot keys answered from
 * the application's memory, kept correct by the server's invalidation
 * messages (Redis 6+ "tracking", RESP3).
 *
 * @code
 *   aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
 *   co.max_bytes = 64 << 20;
 *   aredis_cache *cache = aredis_cache_new(&co);
 *
 *   aredis_options o = AREDIS_OPTIONS_INIT;
 *   o.cache = cache;                     // or a pool's .client.cache: one
 *   aredis_client *c = aredis_client_new(loop, &o);   // cache for them all
 *   aredis_cache_free(cache);            // the clients keep their reference
 *
 *   aredis_command(c, on_reply, NULL, "GET %s", "user:1");  // a miss: sent
 *   ...                                                     // (reply stored)
 *   aredis_command(c, on_reply, NULL, "GET %s", "user:1");  // a hit: no I/O
 * @endcode
 *
 * HOW IT WORKS. Every connection of a client with a cache turns tracking on
 * in its handshake (CLIENT TRACKING ON, right after HELLO 3). A command
 * the cache may answer — a read-only, single-key command on the allow-list
 * (GET, HGET, HGETALL, SMEMBERS, ZSCORE... aredis_cache_allow()) — is
 * looked up first, by its exact bytes and database: found, its callback
 * runs on the next loop turn with the stored reply, and nothing is sent;
 * not found, it is sent as usual and its reply stored (error replies and
 * replies bigger than a quarter of max_bytes are not). The server then
 * remembers that this connection read the key and, when the key changes
 * (any client's write, an expiry, an eviction, FLUSHDB), sends an
 * "invalidate" push on the same connection: the cache drops every reply it
 * holds for that key before any later reply is read. A nil invalidation
 * (FLUSHALL/FLUSHDB) empties the cache.
 *
 * CORRECTNESS.
 *   - The in-flight race: a read sent before an invalidation of its key and
 *     answered after it carries a value that may be older than the
 *     invalidation; its reply is handed to its callback but never stored.
 *     Each read takes a token when it is issued (the key's invalidation
 *     count and the cache's flush count); its reply is stored only if
 *     neither moved since (docs/CACHING.md).
 *   - Own writes: a write command issued through a client with the cache
 *     (SET, HSET, DEL, EVAL's declared keys...) drops its keys at once and
 *     again when its reply arrives, so a read issued after it — on any
 *     connection of the pool — never sees the old value. FLUSHDB,
 *     FLUSHALL, SWAPDB and writes whose keys cannot be known empty it.
 *   - A lost connection (a restart, a network failure, a reconnect) empties
 *     the whole cache: invalidations sent while it was down are lost.
 *   - Inside MULTI (issued with aredis_command) nothing is served or stored,
 *     and a write queued there makes its EXEC empty the cache when it is
 *     answered; pipelines and transactions (aredis/pipeline.h, tx.h)
 *     bypass the cache but their writes drop their keys when issued and
 *     when answered.
 *   - Databases: entries are kept per database. A SELECT pauses caching
 *     until it is answered; one inside a MULTI, a pipeline or a
 *     transaction stops caching on that connection until a plain SELECT
 *     (or a reconnect) tells the cache where the connection is.
 *   - Hits are not operations for an observer (aredis/observe.h) and do not
 *     move the client's command or byte counters: nothing went out.
 *
 * RESP3 ONLY. Invalidations must arrive on the connection whose replies
 * they order against; RESP2 would need a second connection (REDIRECT),
 * whose messages race the replies. A client with a cache therefore asks for
 * RESP3: `protocol = 2` with a cache is refused by aredis_client_new(), and
 * a server that refuses HELLO 3 (Redis < 6) fails the connect with
 * AREDIS_ERR_HANDSHAKE saying so (not retried).
 *
 * WHEN NOT TO USE IT. Keys written far more often than read (every write
 * costs an invalidation message and a lost entry); keys with an expiry the
 * application relies on to the millisecond (the server invalidates an
 * expired key when it deletes it — on access or in its expiry cycle — so a
 * cached value may outlive its TTL by that delay; set ttl_ms to bound it);
 * commands whose answer changes without a write (TTL, RANDOMKEY,
 * SRANDMEMBER: not on the default allow-list; do not allow them).
 * docs/CACHING.md says more.
 *
 * ONE SERVER. Entries are keyed by command and database, not by server:
 * give a cache only to clients (or a pool) of one server.
 *
 * THREADS. A cache belongs to one loop: the clients sharing it must all be
 * on the loop of the first one (another loop is refused). Functions here
 * run on that loop's thread (or before any client uses the cache).
 *
 * Callback contract: a hit's callback runs exactly once, on a later loop
 * turn — never inside the call that issued the command — with the stored
 * reply (borrowed for the callback; aredis_reply_retain() to keep it), or
 * with CANCELLED when the client is closed or freed first. Cancelling a
 * hit's future cancels it. ORDER: a hit may complete before commands
 * issued earlier that went to the server (their replies have not come
 * yet); for one key the order holds, since a write drops the key and the
 * reads after it go to the server behind it.
 */
#ifndef AREDIS_CACHE_H
#define AREDIS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/error.h"
#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A client-side cache (opaque): cached replies, the allow-list and the
 * counters, shared by the clients given it. Made with aredis_cache_new();
 * reference-counted (aredis_cache_free()). */
typedef struct aredis_cache aredis_cache;

/** How the server tracks keys for the cache's connections. */
typedef enum aredis_cache_mode {
    /** The server remembers every key each connection read and tells that
     * connection when one changes. Precise; the server spends memory per
     * key read (its tracking table, bounded by tracking-table-max-keys). */
    AREDIS_CACHE_DEFAULT = 0,
    /** The server tells every cache connection about every change of a key
     * under the given prefixes (all keys without prefixes), read or not:
     * no server memory per key, more messages. Only keys under the
     * prefixes are cached. */
    AREDIS_CACHE_BCAST = 1,
    /** The server tracks only the reads the cache asks it to (CLIENT CACHING
     * YES before each cached read, sent together with it): the other reads
     * of the connection cost the server nothing. */
    AREDIS_CACHE_OPTIN = 2
} aredis_cache_mode;

/**
 * Tell the application the server invalidated a key — its name as the
 * server knows it, with any aredis_options.prefix in front (key NULL, len 0: the
 * whole cache was emptied — a FLUSHALL/FLUSHDB, a lost connection,
 * aredis_cache_clear()). The drops the cache makes for this client's own
 * writes are not told. Runs on the loop thread, after the entries are
 * gone (never inside a call that issued a command); may call anything but
 * aredis_cache_free() of the last reference.
 */
typedef void aredis_cache_invalidate_fn(aredis_cache *cache, const char *key, size_t len,
                                        void *data);

/** Options of aredis_cache_new(); start from AREDIS_CACHE_OPTIONS_INIT. */
typedef struct aredis_cache_options {
    /** Memory for cached replies (their bytes plus the cache's own per-entry
     * cost, about 200 bytes). The least recently used entries are evicted
     * past it. 0 = no byte limit (max_entries must then be set). */
    size_t max_bytes;
    /** At most this many cached replies; 0 = no count limit. */
    size_t max_entries;
    /** An entry expires this long after it was stored (a bound on how long
     * a value may outlive a TTL the server has not acted on yet); 0 = kept
     * until invalidated or evicted. */
    uint32_t ttl_ms;
    aredis_cache_mode mode; /**< how the server tracks keys; AREDIS_CACHE_DEFAULT */
    /** AREDIS_CACHE_BCAST: the key prefixes to track (and cache), `nprefixes`
     * of them; none = every key. Keys as the application names them: a
     * client's key prefix (aredis_options.prefix) is put in front. Copied
     * by aredis_cache_new(). At most 64, none starting with another (the
     * server refuses overlaps). Must be NULL/0 in the other modes. */
    const char *const *prefixes;
    size_t nprefixes;                          /**< how many prefixes; 0: none */
    aredis_cache_invalidate_fn *on_invalidate; /**< NULL: none */
    void *data;                                /**< passed to on_invalidate */
} aredis_cache_options;

/** The default options, as an initializer: 64 MiB, no count limit, no
 * expiry, default tracking. */
#define AREDIS_CACHE_OPTIONS_INIT                                                                  \
    { 64u << 20, 0, 0, AREDIS_CACHE_DEFAULT, NULL, 0, NULL, NULL }

/**
 * A new cache (opts NULL = defaults), with the default allow-list: GET,
 * GETRANGE, STRLEN, GETBIT, BITCOUNT, BITPOS, EXISTS, TYPE, HGET, HMGET,
 * HGETALL, HEXISTS, HLEN, HKEYS, HVALS, HSTRLEN, SMEMBERS, SISMEMBER,
 * SMISMEMBER, SCARD, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, ZRANK,
 * ZREVRANK, ZRANGE, ZRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGE, ZREVRANGEBYSCORE,
 * ZREVRANGEBYLEX, LRANGE, LLEN, LINDEX, LPOS, XLEN, XRANGE, XREVRANGE,
 * GEOPOS, GEODIST, GEOHASH. NULL when out of memory or the options are
 * invalid (both limits 0, an unknown mode, prefixes outside BCAST,
 * nprefixes without prefixes, a NULL prefix, more than 64 prefixes, two
 * prefixes that overlap): aredis_call_error() says which.
 */
AREDIS_API aredis_cache *aredis_cache_new(const aredis_cache_options *opts);

/**
 * Drop the caller's reference. Each client (and pool) given the cache in
 * its options holds one of its own, so the cache lives until the last of
 * them is freed. NULL is ignored.
 */
AREDIS_API void aredis_cache_free(aredis_cache *cache);

/**
 * Add a command to the allow-list (any letter case: "geopos"). Refused
 * with AREDIS_ERR_INVALID (detail in aredis_call_error()) for a command the
 * built-in command table does not know, or that is not read-only, blocks,
 * reads no key, or finds its keys at a moving position (movable keys).
 * A call with more than one key is never cached (EXISTS a b is sent).
 * Caution: the table cannot tell a command whose answer changes without a
 * write (SRANDMEMBER, HRANDFIELD, TTL): do not allow one.
 */
AREDIS_API aredis_err aredis_cache_allow(aredis_cache *cache, const char *command);
/** Take a command off the allow-list. Cached replies are keyed by their
 * bytes, not by command, so the whole cache is emptied when the command
 * was on the list. INVALID for a command the table does not know. */
AREDIS_API aredis_err aredis_cache_deny(aredis_cache *cache, const char *command);
/** 1 when the command is on the allow-list. */
AREDIS_API int aredis_cache_allowed(const aredis_cache *cache, const char *command);

/** Empty the cache (on_invalidate runs with key NULL). */
AREDIS_API void aredis_cache_clear(aredis_cache *cache);

/** Counters since the cache was made, and its size now. */
typedef struct aredis_cache_stats {
    uint64_t hits;                  /**< commands answered from the cache */
    uint64_t misses;                /**< cacheable commands sent to the server */
    uint64_t stores;                /**< replies stored */
    uint64_t not_stored;            /**< replies not stored: invalidated while in flight,
                                       an error reply, too big */
    uint64_t evictions;             /**< entries dropped for max_bytes / max_entries */
    uint64_t expirations;           /**< entries dropped past ttl_ms */
    uint64_t invalidations;         /**< entries dropped by invalidations, own writes
                                       and flushes */
    uint64_t invalidation_messages; /**< invalidate pushes received (one per
                                       key; a nil one counts once) */
    uint64_t flushes;               /**< times the whole cache was emptied */
    size_t entries;                 /**< cached replies now */
    size_t bytes;                   /**< their memory, as max_bytes counts it */
} aredis_cache_stats;

/** Copy the cache's counters into *out (all zero when cache is NULL). */
AREDIS_API void aredis_cache_get_stats(const aredis_cache *cache, aredis_cache_stats *out);

#ifdef __cplusplus
}
#endif

#endif
