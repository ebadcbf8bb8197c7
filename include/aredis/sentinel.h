/**
 * @file
 * aredis/sentinel.h — a client that finds its server through Redis
 * Sentinel and follows it across failovers.
 *
 * @code
 *   const char *sentinels[] = {"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"};
 *   aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;
 *   so.sentinels = sentinels;
 *   so.nsentinels = 3;
 *   so.master_name = "mymaster";
 *   so.node.password = "data-node-secret";    // the data connection's options
 *   aredis_client *c = aredis_sentinel_client_new(loop, &so);
 *   aredis_client_connect(c);
 *   aredis_command(c, on_reply, NULL, "SET %s %s", "k", "v");   // as any client
 * @endcode
 *
 * WHAT YOU GET is an ordinary aredis_client: commands, futures, pipelines,
 * transactions, scripts, pub/sub, SCAN, observers all work on it unchanged,
 * and aredis_client_free() frees everything the sentinel part holds. Only
 * where it connects differs.
 *
 * EVERY CONNECT ATTEMPT (the first one and every reconnect) starts by asking
 * the sentinels, in order, one at a time, each within sentinel_timeout_ms:
 * @code{.unparsed}
 *   AREDIS_SENTINEL_PRIMARY  SENTINEL get-master-addr-by-name <master_name>
 *   AREDIS_SENTINEL_REPLICA  SENTINEL replicas <master_name>, and one of
 *                            the replicas it lists as healthy (not s_down,
 *                            o_down or disconnected, master-link-status ok),
 *                            picked at random
 * @endcode
 * The first sentinel that answers with an address wins and moves to the
 * front of the list; one that does not (down, too slow, refused, does not
 * know the name, a port that is none) moves to the back, so that silent
 * sentinels ahead in the list cannot use up every attempt's deadline. The
 * client then connects there, and its handshake ends with
 * ROLE: a server that is not what was asked for (a primary demoted since,
 * a stale answer) fails the attempt (AREDIS_ERR_HANDSHAKE, "ROLE: ... is a
 * replica, not the primary wanted"), and the reconnect policy asks again.
 * All of this happens within the attempt's connect_timeout_ms, and an
 * attempt where no sentinel gave an address fails like a refused connect
 * (AREDIS_ERR_IO, the detail naming each sentinel and what it said): the
 * node options' reconnect policy — backoff, max_reconnect_attempts,
 * wait_for_first_connect, on_error, on_reconnect_attempt — applies
 * unchanged; a deadline that passes while a sentinel is being asked fails
 * it with AREDIS_ERR_TIMEOUT ("connect timed out locating ..."). When
 * every sentinel refused the sentinel credentials the attempt fails with
 * AREDIS_ERR_AUTH and, as for a data node refusing its password, the
 * policy stops unless reconnect_on_auth_error is set.
 *
 * FAILOVERS. A lost connection is a reconnect, and a reconnect asks the
 * sentinels again: that alone follows a failover. To follow it promptly,
 * the client also keeps one subscription to +switch-master on one sentinel
 * (a connection of its own, moved to the next sentinel when it is lost;
 * `watch`). When a switch of master_name to another address is announced
 * (or, after the subscription is made, a sentinel names another address
 * than the client's; or, during a lookup, a sentinel that has not heard of
 * the switch names the old address: the announced one wins), the client
 * drops its connection at once, as a lost
 * connection: commands in flight fail with AREDIS_ERR_IO (their bytes may
 * have reached the old primary: at most once, as after any lost
 * connection), commands not yet sent wait and go to the new primary
 * (queue_during_reconnect), and the reconnect asks the sentinels. A client
 * on a replica moves when its replica is the one promoted. Writes the old
 * primary accepted before the switch and never replicated are lost: that is
 * Sentinel's asynchronous replication, not the client's doing.
 *
 * CREDENTIALS. sentinel_username/sentinel_password authenticate to the
 * sentinels (Sentinel's requirepass or an ACL user); node.username and
 * node.password to the data nodes. Neither ever appears in a log line,
 * an error detail or an observer event.
 *
 * TLS. With node.tls set, the sentinel connections use TLS too, with the
 * node's CA, certificate, key, tls_context and tls_server_name (sentinels
 * and data nodes of one deployment share them). Without a tls_context, one
 * is built by aredis_sentinel_client_new() (a file that cannot be loaded:
 * NULL, AREDIS_ERR_TLS) and shared by all the client's connections. A data
 * node's certificate is verified against the address the sentinels give
 * (usually an IP) unless tls_server_name names it.
 *
 * THE SENTINEL CONNECTIONS are ordinary clients on the same loop: one for
 * each lookup (closed once it has answered) and the watch. They take the
 * node options' TLS, keepalive, request, dead-link and health-check
 * timeouts, reader limits and protocol (RESP3 with the RESP2 fallback, or
 * RESP2); their connect timeout is sentinel_timeout_ms; none of the node
 * options' callbacks, database,
 * key prefix, cache or client name.
 *
 * NOT (YET): discovering sentinels beyond the list given (SENTINEL
 * sentinels); pools (aredis/pool.h) over a sentinel client; a client in a
 * forked child (reconnect_in_child) finds its server through the parent's
 * sentinel connections at best: make a new client in the child.
 *
 * THREADS: as for any client, everything here runs on the loop's thread.
 */
#ifndef AREDIS_SENTINEL_H
#define AREDIS_SENTINEL_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/error.h"
#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the client connects to (aredis_sentinel_options.role). */

/** aredis_sentinel_options.role: the primary the sentinels name for
 * master_name (the default). */
#define AREDIS_SENTINEL_PRIMARY 0
/** aredis_sentinel_options.role: one of the primary's healthy replicas,
 * picked at random. */
#define AREDIS_SENTINEL_REPLICA 1

/**
 * Options. Start from AREDIS_SENTINEL_OPTIONS_INIT so that fields added
 * later keep their defaults (each field says its default). Strings are
 * copied by aredis_sentinel_client_new().
 */
typedef struct aredis_sentinel_options {
    /** The sentinels' addresses, `nsentinels` of them: "host:port", "host"
     * (port 26379), "[::1]:26379" for IPv6; at least one. */
    const char *const *sentinels;
    size_t nsentinels;       /**< how many sentinels (at least 1) */
    const char *master_name; /**< the name the sentinels monitor the primary as (required) */
    int role; /**< AREDIS_SENTINEL_PRIMARY (the default) or AREDIS_SENTINEL_REPLICA */
    const char *sentinel_username; /**< NULL: "default" (or plain AUTH) */
    const char *sentinel_password; /**< NULL: the sentinels ask for no password */
    /** 500: one sentinel's connect and answer (the Sentinel client spec's
     * "short timeout"), within the attempt's connect_timeout_ms; 0: an
     * equal share of what is left of it for each sentinel still to ask. */
    uint32_t sentinel_timeout_ms;
    /** 1: follow +switch-master (see FAILOVERS in aredis/sentinel.h); 0:
     * only a lost connection moves the client. */
    int watch;
    /** AREDIS_OPTIONS_INIT: the data connection's options; its host and
     * port are the sentinels' to set (ignored), and a unix_path is
     * refused. */
    aredis_options node;
} aredis_sentinel_options;

#ifndef __cplusplus
/** The default options (see aredis_sentinel_options), as an initializer:
 * `aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;`. In C++ it
 * calls aredis_sentinel_options_default(). */
#define AREDIS_SENTINEL_OPTIONS_INIT                                                               \
    {                                                                                              \
        .sentinels = NULL, .nsentinels = 0, .master_name = NULL, .role = AREDIS_SENTINEL_PRIMARY,  \
        .sentinel_username = NULL, .sentinel_password = NULL, .sentinel_timeout_ms = 500,          \
        .watch = 1, .node = AREDIS_OPTIONS_INIT                                                    \
    }
#else
/** The default options, for C++: what AREDIS_SENTINEL_OPTIONS_INIT gives
 * there (the same defaults, set one by one; see aredis_options_default()).
 * Keep the two lists identical. */
static inline aredis_sentinel_options aredis_sentinel_options_default(void) {
    aredis_sentinel_options o = aredis_sentinel_options();
    o.sentinels = NULL;
    o.nsentinels = 0;
    o.master_name = NULL;
    o.role = AREDIS_SENTINEL_PRIMARY;
    o.sentinel_username = NULL;
    o.sentinel_password = NULL;
    o.sentinel_timeout_ms = 500;
    o.watch = 1;
    o.node = aredis_options_default();
    return o;
}
/** The default options (see aredis_sentinel_options), as an initializer:
 * `aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;`. In C++ it
 * calls aredis_sentinel_options_default(). */
#define AREDIS_SENTINEL_OPTIONS_INIT aredis_sentinel_options_default()
#endif

/**
 * A client on `loop` that finds its server through the sentinels (see
 * above). Does not connect: call aredis_client_connect(), as for
 * aredis_client_new(). Returns NULL when out of memory or when the options
 * are invalid (no sentinel, an address that does not parse, no
 * master_name or one holding a space, an unknown role, sentinel_username
 * without sentinel_password, a node.unix_path, invalid node options),
 * or when node.tls is set and its files cannot be loaded (AREDIS_ERR_TLS):
 * aredis_call_error() then says which.
 */
AREDIS_API aredis_client *aredis_sentinel_client_new(aredis_loop *loop,
                                                     const aredis_sentinel_options *o);

/**
 * Where the client is: the address the sentinels gave for its current (or
 * last) connect attempt, host copied to host[hostlen] (NUL-terminated, cut
 * to fit) and the port to *port (either may be NULL). Returns OK;
 * NOT_CONNECTED before the sentinels have given an address; INVALID when
 * c is not a sentinel client. Connected or not: aredis_client_state() says.
 */
AREDIS_API aredis_err aredis_sentinel_current(const aredis_client *c, char *host, size_t hostlen,
                                              int *port);

/** Counters since the client was made. */
typedef struct aredis_sentinel_stats {
    uint64_t lookups;         /**< connect attempts that asked the sentinels */
    uint64_t lookup_failures; /**< ... and got no address (the attempt failed,
                                 or its deadline passed first) */
    uint64_t sentinel_errors; /**< sentinels that did not answer a lookup
                                 (down, too slow, refused, name unknown,
                                 cut off by the deadline) */
    uint64_t moves;           /**< lookups whose answer differed from the one
                                 before (a new server) */
    uint64_t switches;        /**< +switch-master announcements of master_name */
    uint64_t relocations;     /**< connections dropped (or reconnects started
                                 early, or lookups sent where a
                                 +switch-master announced meanwhile) because
                                 the sentinels named another server: the
                                 prompt path of a failover */
    uint64_t watch_connects;  /**< subscriptions to +switch-master made */
} aredis_sentinel_stats;

/** Copy the counters into *out: OK, or INVALID when c is not a sentinel
 * client. */
AREDIS_API aredis_err aredis_sentinel_get_stats(const aredis_client *c, aredis_sentinel_stats *out);

#ifdef __cplusplus
}
#endif

#endif
