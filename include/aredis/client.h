/**
 * @file
 * aredis/client.h — the asynchronous client.
 *
 * A client is one connection to one Redis server, driven by an aredis_loop.
 * Commands may be issued at once after aredis_client_connect(): they wait
 * until the connection and handshake are done, then leave together.
 *
 * @code
 * aredis_loop *loop = aredis_loop_new();
 * aredis_options o = AREDIS_OPTIONS_INIT;
 * o.port = 6380;
 * aredis_client *c = aredis_client_new(loop, &o);
 * aredis_client_connect(c);
 * aredis_command(c, on_reply, NULL, "SET %s %b", key, val, vlen);
 * aredis_loop_run(loop);
 * @endcode
 *
 * CALLBACK CONTRACT (every function here that takes a callback):
 *   - If the call returns an error, the callback never runs.
 *   - Otherwise it runs exactly once: with the reply, or with an error
 *     (TIMEOUT at its deadline, a connection error, CANCELLED when the client
 *     is closed or freed first).
 *   - It never runs from inside the call that issued the command.
 *   - Any aredis function may be called from inside a callback, including
 *     aredis_client_close() and aredis_client_free() on its own client.
 *
 * OWNERSHIP: strings and buffers passed in are copied during the call. A
 * reply handed to a callback is borrowed for the callback's duration;
 * aredis_reply_retain() keeps it longer.
 */
#ifndef AREDIS_CLIENT_H
#define AREDIS_CLIENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "aredis/error.h"
#include "aredis/export.h"
#include "aredis/loop.h"
#include "aredis/reader.h"
#include "aredis/reply.h"
#include "aredis/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A client (opaque): one connection to one Redis server, on one loop. Made
 * with aredis_client_new(), freed with aredis_client_free(). */
typedef struct aredis_client aredis_client;

/**
 * A command's outcome. On success err is NULL and reply is the reply (nested
 * error replies inside an array are just replies). When the server answered
 * with an error reply, err->code is AREDIS_ERR_SERVER, err->prefix names it
 * ("WRONGTYPE") and reply is that error reply. On any other failure reply is
 * NULL.
 */
typedef void aredis_reply_fn(aredis_client *c, aredis_reply *reply, const aredis_error *err,
                             void *data);

/** Out-of-band RESP3 push (not a reply to a command). Borrowed reply. With
 * a cache (aredis/cache.h) its invalidation pushes go to the cache, not here. */
typedef void aredis_push_fn(aredis_client *c, aredis_reply *push, void *data);
/** Connected and handshake done (the first time and after every reconnect). */
typedef void aredis_connect_fn(aredis_client *c, void *data);
/**
 * A connection that was established (on_connect ran for it) ended; err says
 * why (AREDIS_ERR_CLOSED after close() or a graceful disconnect()). Never
 * for a connect that did not finish: that is reported through on_error.
 */
typedef void aredis_disconnect_fn(aredis_client *c, const aredis_error *err, void *data);
/**
 * A connection-level error: a connect attempt failed, a connection was lost,
 * or the reconnect policy gave up. Informational; commands get their own
 * errors.
 */
typedef void aredis_conn_error_fn(aredis_client *c, const aredis_error *err, void *data);
/** A reconnect is scheduled: attempt number (1, 2, ...) and its delay. */
typedef void aredis_reconnect_fn(aredis_client *c, unsigned attempt, uint32_t delay_ms, void *data);

/**
 * Options. Start from AREDIS_OPTIONS_INIT so that fields added later keep
 * their defaults. Strings are copied by aredis_client_new().
 *
 * THE DEFAULTS, and what each protects against (docs/RESILIENCE.md has the
 * same table). No default lets a program wait for ever.
 *
 *     connect_timeout_ms      5000   a host that swallows packets: connect +
 *                                    TLS + handshake fail within 5 s
 *     request_timeout_ms      5000   a hung server or an outage: a command
 *                                    ends within 5 s of being issued (blocking
 *                                    commands: plus their own block time)
 *     wait_for_first_connect  0      a program started with no server: the
 *                                    first failed attempt fails what waits
 *                                    for it; later commands are refused at
 *                                    once until a connect succeeds
 *     reconnect               1      restarts and blips: the client comes back
 *     reconnect_delay_ms      100    } exponential backoff with jitter: no
 *     max_reconnect_delay_ms  30000  } herd of clients hammering a server
 *     reconnect_jitter        0.1    } that is coming back
 *     max_reconnect_attempts  0      unlimited (the timeouts bound commands)
 *     reconnect_on_auth_error 0      no hammering with refused credentials
 *     queue_during_reconnect  1      commands issued during a restart of an
 *                                    established client wait for it
 *     max_queue_size          0      unbounded in count (bounded in time by
 *                                    request_timeout_ms)
 *     retry_read_only         0      at most once: no write applied twice
 *     dead_timeout_ms         10000  a link that died after a timeout on it
 *     keepalive_s             60     a half-open TCP connection
 *     health_check_interval_ms 0     off (idle links dropped by a NAT: set it)
 *     tls_insecure_skip_verify 0     a man in the middle
 *     load_commands           0      no extra round trip (COMMAND) at connect
 */
typedef struct aredis_options {
    /** @name Where */
    /** @{ */
    /**
     * The server, "127.0.0.1" by default: a name, IPv4 or IPv6 literal. A
     * literal is parsed at once; a name is resolved (getaddrinfo) on a
     * short-lived thread, never on the loop thread, at every connect and
     * reconnect, within connect_timeout_ms. Resolving names needs
     * thread-safe allocator hooks (aredis/alloc.h). At most 64 resolutions
     * run at once in a process (stuck ones included); past that a connect
     * fails with RESOLVE.
     */
    const char *host;
    int port;              /**< 6379: the TCP port */
    const char *unix_path; /**< a unix socket path; when set, host/port unused */
    /** @} */
    /** @name TLS (see docs/SECURITY.md) */
    /** @{ */
    int tls;                     /**< 1: TLS (rediss://); 0: plain TCP */
    const char *tls_ca_file;     /**< PEM CA bundle to verify the server; NULL:
                                    the system store (or tls_ca_path) */
    const char *tls_ca_path;     /**< a directory of hashed CA certificates */
    const char *tls_cert_file;   /**< client certificate (mutual TLS) */
    const char *tls_key_file;    /**< its private key */
    const char *tls_server_name; /**< SNI and the name to verify; NULL: host */
    /**
     * DANGER: 1 turns off ALL verification of the server (certificate chain
     * and name). Anyone on the path can then read and change your traffic.
     * For throwaway test setups only.
     */
    int tls_insecure_skip_verify;
    /**
     * A context built once with aredis_tls_context_new() (aredis/tls.h) and
     * shared by many clients: when set, no context is built per client and
     * the CA, certificate and key fields above and tls_insecure_skip_verify
     * are not used (the context holds them); `tls` must still be 1, and
     * tls_server_name (or host) is still the name sent and verified.
     * The client holds a reference until it is freed. NULL: build one.
     */
    aredis_tls_context *tls_context;
    /** @} */
    /** @name Handshake */
    /** @{ */
    const char *username;    /**< ACL user (NULL: "default" / plain AUTH) */
    const char *password;    /**< NULL: no AUTH */
    int db;                  /**< SELECT db after connecting when nonzero */
    const char *client_name; /**< CLIENT SETNAME when set */
    int protocol;            /**< 3: HELLO 3, falling back to RESP2 if the server
                                lacks HELLO; 2: RESP2 only */
    /** @} */
    /** @name Commands */
    /** @{ */
    /**
     * A key prefix ("app:"), at most 1024 bytes; NULL or "" = none. Put in
     * front of every key argument of every command (per the command table:
     * GET k is sent as GET app:k, values are never touched), including SCAN
     * and KEYS patterns, whose replies come back without it. A command
     * whose keys the library cannot find for sure is refused with
     * AREDIS_ERR_UNSUPPORTED. See docs/PREFIX.md.
     */
    const char *prefix;
    /**
     * 0: the library knows the commands of its built-in table (generated
     * from Redis 7.0). 1: at every connect, as the last step of the
     * handshake, the client reads the server's own table (COMMAND: one
     * round trip, some 200 KB) and uses it for what the built-in one lacks
     * — commands of newer servers and modules — so the key prefix and
     * retry_read_only cover them too. A server that refuses COMMAND (an
     * ACL) does not fail the connect: the client logs a warning and goes on
     * with the built-in table. aredis_client_known_commands() tells how
     * many commands the loaded table added. A blocking command it adds
     * keeps the plain request timeout (COMMAND does not say where a block
     * time is): give it aredis_cmd_opts.timeout_ms or AREDIS_CMD_NO_TIMEOUT.
     */
    int load_commands;
    /** @} */
    /** @name Timeouts */
    /** @{ */
    uint32_t connect_timeout_ms; /**< 5000; 0 = none; name resolution +
                                    connect + handshake */
    /**
     * 5000; 0 = none. Per command, from issue time (time spent queued
     * counts). Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
     * BZPOPMIN, BZPOPMAX, BZMPOP, XREAD/XREADGROUP BLOCK, WAIT, WAITAOF) get
     * their own block time on top, and none at all when they block for
     * ever (timeout 0). AREDIS_CMD_NO_TIMEOUT or aredis_cmd_opts.timeout_ms
     * override it per command.
     */
    uint32_t request_timeout_ms;
    /**
     * After a command has timed out while its bytes were on the wire, the
     * connection is kept (the late reply is discarded and later commands
     * still get their own replies). If nothing at all arrives from the
     * server for this long past that deadline, the connection is dead: it is
     * closed (and reconnected, per the policy below). 10000; 0 = never.
     */
    uint32_t dead_timeout_ms;
    /**
     * AREDIS_READER_LIMITS_INIT: the largest replies the client accepts
     * (aredis/reader.h; a field left 0 takes its default). A reply past a
     * limit is a protocol error: the connection is closed.
     */
    aredis_reader_limits limits;
    /** @} */
    /** @name Reconnection (see docs/RESILIENCE.md) */
    /** @{ */
    int reconnect;                   /**< 1: reconnect after a lost or failed
                                        connection, the initial one included */
    uint32_t reconnect_delay_ms;     /**< 100: first delay; doubles per failure */
    uint32_t max_reconnect_delay_ms; /**< 30000: the cap */
    double reconnect_jitter;         /**< 0.1: each delay is scaled by a random
                                        factor in [1 - j, 1 + j] */
    unsigned max_reconnect_attempts; /**< 0 = unlimited; else give up after
                                        this many failed reconnect attempts
                                        in a row (connect()'s first attempt
                                        is not counted) */
    int reconnect_on_auth_error;     /**< 0: a permanent refusal (AUTH
                                        refused, an invalid db, CLIENT
                                        TRACKING refused, TLS files that do
                                        not load, a certificate that fails
                                        verification) stops the policy;
                                        1: retried as any failure */
    /** @} */
    /** @name Queueing and delivery */
    /** @{ */
    int queue_during_reconnect; /**< 1: commands issued while disconnected wait
                                   for the reconnect; 0: refused at once with
                                   AREDIS_ERR_NOT_CONNECTED */
    /**
     * 0: until the client has connected once, a failed attempt fails the
     * commands (and aredis_future_ready()) waiting for it with its error,
     * and commands issued before the next attempt succeeds are refused at
     * once with AREDIS_ERR_NOT_CONNECTED: a program started with no server
     * sees why within seconds. Reconnection still goes on in the
     * background per the policy, and once connected, queue_during_reconnect
     * applies. 1: commands wait through failed first attempts too (bounded
     * by request_timeout_ms), for a program started before its server.
     */
    int wait_for_first_connect;
    size_t max_queue_size; /**< 0 = unbounded; else every command the
                              client holds: waiting, in flight, and
                              timed out but still owed a reply; one
                              more is refused with
                              AREDIS_ERR_QUEUE_FULL */
    int retry_read_only;   /**< 0: at most once for every command; 1:
                              read-only commands (GET, HGETALL, ...) are
                              re-sent after a reconnect if their reply
                              was lost */
    /** @} */
    /** @name Dead connections */
    /** @{ */
    uint32_t keepalive_s;              /**< 60: TCP keepalive idle time; 0 = off */
    uint32_t health_check_interval_ms; /**< 0 = off; else PING after this long
                                          idle; no answer within
                                          request_timeout_ms (or the interval)
                                          means the link is dead */
    /** @} */
    /** @name Fork */
    /** @{ */
    int reconnect_in_child; /**< 0: in a forked child the inherited client
                               fails everything with AREDIS_ERR_FORKED;
                               1: on first use there it drops the inherited
                               connection (sending nothing) and connects anew
                               (built-in loop: call aredis_loop_after_fork()
                               in the child first) */
    /** @} */
    /** @name Client-side caching */
    /** @{ */
    /**
     * A cache made with aredis_cache_new() (aredis/cache.h): reads of hot
     * keys answered from memory, invalidated by the server. Every connection
     * turns tracking on in its handshake. Needs RESP3 (protocol 2 is
     * refused). Shared by all the clients given it (all on one loop); each
     * holds a reference until it is freed. NULL: no cache.
     */
    struct aredis_cache *cache;
    /** @} */
    /** @name Callbacks (each may be NULL) */
    /** @{ */
    aredis_push_fn *on_push;                   /**< out-of-band pushes; NULL: dropped */
    aredis_connect_fn *on_connect;             /**< connected, handshake done */
    aredis_disconnect_fn *on_disconnect;       /**< an established connection ended */
    aredis_conn_error_fn *on_error;            /**< a connection-level error */
    aredis_reconnect_fn *on_reconnect_attempt; /**< a reconnect is scheduled */
    void *cb_data;                             /**< passed to every callback above */
    /** @} */
} aredis_options;

#ifndef __cplusplus
/** The default options (the table at aredis_options), as an initializer
 * (`aredis_options o = AREDIS_OPTIONS_INIT;`). In C it is a braced list of
 * designated fields; in C++ it calls aredis_options_default(). */
#define AREDIS_OPTIONS_INIT                                                                        \
    {                                                                                              \
        .host = "127.0.0.1", .port = 6379, .protocol = 3, .connect_timeout_ms = 5000,              \
        .request_timeout_ms = 5000, .dead_timeout_ms = 10000, .limits = AREDIS_READER_LIMITS_INIT, \
        .reconnect = 1, .reconnect_delay_ms = 100, .max_reconnect_delay_ms = 30000,                \
        .reconnect_jitter = 0.1, .queue_during_reconnect = 1, .keepalive_s = 60                    \
    }
#else
/** The default options, for C++: what AREDIS_OPTIONS_INIT gives there. C++
 * has no designated initializers before C++20 (and g++ warns about the
 * fields they leave out): the same defaults, set one by one on a
 * zero-initialised struct. Keep the two lists identical. */
static inline aredis_options aredis_options_default(void) {
    aredis_options o = aredis_options();
    const aredis_reader_limits limits = AREDIS_READER_LIMITS_INIT;
    o.host = "127.0.0.1";
    o.port = 6379;
    o.protocol = 3;
    o.connect_timeout_ms = 5000;
    o.request_timeout_ms = 5000;
    o.dead_timeout_ms = 10000;
    o.limits = limits;
    o.reconnect = 1;
    o.reconnect_delay_ms = 100;
    o.max_reconnect_delay_ms = 30000;
    o.reconnect_jitter = 0.1;
    o.queue_during_reconnect = 1;
    o.keepalive_s = 60;
    return o;
}
/** The default options (the table at aredis_options), as an initializer
 * (`aredis_options o = AREDIS_OPTIONS_INIT;`). In C it is a braced list of
 * designated fields; in C++ it calls aredis_options_default(). */
#define AREDIS_OPTIONS_INIT aredis_options_default()
#endif

/** Per-command options; start from AREDIS_CMD_OPTS_INIT. */
typedef struct aredis_cmd_opts {
    /** Override the client's request_timeout_ms when nonzero. */
    uint32_t timeout_ms;
    /** Bits, 0 or more of: AREDIS_CMD_NO_TIMEOUT: this command has no
     * deadline at all (blocking commands). AREDIS_CMD_RETRYABLE: safe to
     * send again after a reconnect if its reply was lost (idempotent
     * commands); by default a command whose bytes may have reached the
     * server is never sent twice. */
    unsigned flags;
} aredis_cmd_opts;
/** aredis_cmd_opts.flags: no deadline at all for this command (not even
 * request_timeout_ms); for blocking commands. */
#define AREDIS_CMD_NO_TIMEOUT 1u
/** aredis_cmd_opts.flags: safe to send again after a reconnect if its reply
 * was lost (idempotent commands). */
#define AREDIS_CMD_RETRYABLE 2u
/** The default per-command options: no timeout of its own, no flags. */
#define AREDIS_CMD_OPTS_INIT                                                                       \
    { 0, 0 }

/** The client's connection states, with a name for traces, as an X-macro:
 * X(NAME, "name") for each AREDIS_STATE_NAME of aredis_state, in order. */
#define AREDIS_STATE_MAP(X)                                                                        \
    X(IDLE, "idle")                                                                                \
    X(RECONNECTING, "waiting to reconnect")                                                        \
    X(CONNECTING, "connecting")                                                                    \
    X(HANDSHAKE, "handshake")                                                                      \
    X(READY, "ready")                                                                              \
    X(CLOSING, "closing")                                                                          \
    X(CLOSED, "closed")
/**
 * The client's connection state (aredis_client_state()). One enumerator
 * AREDIS_STATE_NAME per row of AREDIS_STATE_MAP, in this order:
 *   - AREDIS_STATE_IDLE: not connected and not trying to: just made, or
 *     after a connection ended with no reconnect to follow (a graceful
 *     disconnect, reconnect off, or the policy gave up).
 *     aredis_client_connect() starts from here.
 *   - AREDIS_STATE_RECONNECTING: waiting out the delay before the next
 *     reconnect attempt.
 *   - AREDIS_STATE_CONNECTING: resolving the host, connecting, TLS handshake.
 *   - AREDIS_STATE_HANDSHAKE: the Redis handshake (HELLO or AUTH, SELECT,
 *     CLIENT SETNAME, ...) on a new connection.
 *   - AREDIS_STATE_READY: connected; commands flow.
 *   - AREDIS_STATE_CLOSING: aredis_client_disconnect() was called on a
 *     ready client: the commands already issued complete, then the
 *     connection closes.
 *   - AREDIS_STATE_CLOSED: after aredis_client_close() or
 *     aredis_client_free(); for good.
 */
typedef enum aredis_state {
#define AREDIS__STATE_ENUM(n, s) AREDIS_STATE_##n,
    AREDIS_STATE_MAP(AREDIS__STATE_ENUM)
#undef AREDIS__STATE_ENUM
} aredis_state;
/** The name of a state for traces ("ready", "waiting to reconnect", ...);
 * "unknown" for a value that is not a state. Never NULL. */
AREDIS_API const char *aredis_state_name(aredis_state s);

/* ---- Lifecycle --------------------------------------------------------- */

/**
 * Make a client on `loop` with `opts` (NULL = defaults). Does not connect.
 * Returns NULL when out of memory or when opts are invalid (a port out of
 * range, a negative db, a client_name with spaces...): aredis_call_error()
 * then says which.
 */
AREDIS_API aredis_client *aredis_client_new(aredis_loop *loop, const aredis_options *opts);

/**
 * Start connecting (non-blocking: a host name is resolved off the loop
 * thread, see aredis_options.host). Commands issued from now on wait for the
 * connection. Failure to connect (AREDIS_ERR_RESOLVE for a name that does
 * not resolve) fails every waiting command with the connection error.
 * Returns AREDIS_ERR_INVALID if already connecting or connected,
 * AREDIS_ERR_CLOSED after close.
 */
AREDIS_API aredis_err aredis_client_connect(aredis_client *c);

/**
 * Graceful: send nothing new; commands already issued complete; then close.
 * on_disconnect runs with AREDIS_ERR_CLOSED.
 */
AREDIS_API void aredis_client_disconnect(aredis_client *c);

/**
 * Immediate: close the socket now; every pending callback runs once with
 * AREDIS_ERR_CANCELLED before this returns (also when called from inside a
 * callback: they then run nested inside it).
 */
AREDIS_API void aredis_client_close(aredis_client *c);

/** close() and free. Safe from inside the client's own callbacks (the free is
 * deferred until the callback returns). NULL is ignored. */
AREDIS_API void aredis_client_free(aredis_client *c);

/** The connection state. A ready client that is disconnecting gracefully
 * reports AREDIS_STATE_CLOSING. */
AREDIS_API aredis_state aredis_client_state(const aredis_client *c);
/** 2 or 3 once connected (RESP version spoken), 0 before. */
AREDIS_API int aredis_client_protocol(const aredis_client *c);
/** The loop the client was made on. */
AREDIS_API aredis_loop *aredis_client_loop(const aredis_client *c);
/** Commands issued and not yet completed (waiting + in flight). */
AREDIS_API size_t aredis_client_pending(const aredis_client *c);
/** The caller's own pointer, kept with the client: set_data stores it,
 * get_data returns it (NULL until set). The library never uses it. */
/** @{ */
AREDIS_API void *aredis_client_get_data(const aredis_client *c);
AREDIS_API void aredis_client_set_data(aredis_client *c, void *data);
/** @} */
/** The last connection-level error (code OK when none). Borrowed. */
AREDIS_API const aredis_error *aredis_client_last_error(const aredis_client *c);

/**
 * Counters since the client was made, for metrics and for checking that
 * batching works (write_calls per command well below one when busy).
 */
typedef struct aredis_client_stats {
    uint64_t commands;    /**< commands accepted (user commands only) */
    uint64_t replies;     /**< replies delivered to user commands */
    uint64_t write_calls; /**< write(2) calls that sent bytes */
    uint64_t read_calls;  /**< read(2) calls that returned bytes */
    uint64_t bytes_out;   /**< bytes written to the connection */
    uint64_t bytes_in;    /**< bytes read from the connection */
    uint64_t timeouts;    /**< commands failed with AREDIS_ERR_TIMEOUT */
    uint64_t connects;    /**< successful connects (handshake done) */
} aredis_client_stats;

/** Commands (and subcommands) the server's table added to the built-in
 * one (load_commands), 0 when none is loaded. */
AREDIS_API size_t aredis_client_known_commands(const aredis_client *c);

/** Copy the client's counters into *out. */
AREDIS_API void aredis_client_get_stats(const aredis_client *c, aredis_client_stats *out);

/* ---- Commands (callbacks) ---------------------------------------------- */

/**
 * Issue a command given as a printf-like format, see aredis/writer.h
 * (aredis_vcommand(): its arguments as a va_list). cb may be NULL (reply
 * ignored).
 *
 * Returns AREDIS_ERR_OK, or an error (the callback then never runs, and
 * aredis_call_error() says why): CLOSED, NOT_CONNECTED, QUEUE_FULL, FORKED,
 * INVALID (a malformed format), NOMEM, or UNSUPPORTED for a command whose
 * replies cannot be matched one per command: SUBSCRIBE, PSUBSCRIBE,
 * SSUBSCRIBE and their UN- forms, MONITOR, SYNC, PSYNC, RESET and CLIENT
 * REPLY OFF|SKIP (docs/RESILIENCE.md, "Reply routing"), and WATCH and
 * UNWATCH (use aredis_tx_watch(), aredis/tx.h). AUTH and HELLO are
 * sent alone: they wait until every reply owed has come, and later commands
 * wait for their reply.
 */
/** @{ */
AREDIS_API aredis_err aredis_command(aredis_client *c, aredis_reply_fn *cb, void *data,
                                     const char *fmt, ...);
AREDIS_API aredis_err aredis_vcommand(aredis_client *c, aredis_reply_fn *cb, void *data,
                                      const char *fmt, va_list ap);
/** @} */
/** Issue a command given as argc arguments with lengths (argvlen NULL:
 * NUL-terminated strings). Same returns and callback contract as
 * aredis_command(). */
AREDIS_API aredis_err aredis_command_argv(aredis_client *c, aredis_reply_fn *cb, void *data,
                                          int argc, const char *const *argv, const size_t *argvlen);
/** aredis_command_argv() with per-command options (opts NULL = defaults). */
AREDIS_API aredis_err aredis_command_argv_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                             aredis_reply_fn *cb, void *data, int argc,
                                             const char *const *argv, const size_t *argvlen);
/** The format forms with per-command options (opts NULL = defaults): e.g.
 * opts.timeout_ms for one slow command, AREDIS_CMD_NO_TIMEOUT for a
 * blocking one. Same returns and callback contract as aredis_command(). */
/** @{ */
AREDIS_API aredis_err aredis_command_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                        aredis_reply_fn *cb, void *data, const char *fmt, ...);
AREDIS_API aredis_err aredis_vcommand_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                         aredis_reply_fn *cb, void *data, const char *fmt,
                                         va_list ap);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
