/*
 * What the features (src/features/: pipeline, transaction, script...) may
 * ask of the client: the one narrow internal interface they use besides the
 * public API. A feature needing more grows a named operation here; it does
 * not include client_internal.h.
 *
 *   batch         several encoded commands as one record: their bytes go
 *                 out together (nothing else can come between them), and
 *                 each of their replies is handed to a part hook in order.
 *   reservation   a batch may reserve the connection for its owner (a
 *                 transaction's WATCH) and a later one end it (its EXEC):
 *                 meanwhile everyone else's commands wait, in order.
 *   futures       a future completed by a feature's callback.
 */
#ifndef AREDIS_CLIENT_FEATURE_H
#define AREDIS_CLIENT_FEATURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aredis/client.h"
#include "aredis/future.h"
#include "proto/reply_internal.h" /* aredis__reply_array_new */
#include "util/buf.h"

typedef struct aredis__cmd aredis__cmd;

/* Reply `index` (0-based) of a batch; borrowed for the call. */
typedef void aredis__part_fn(aredis_client *c, aredis_reply *r, size_t index, void *data);

#define AREDIS__BATCH_RESERVE 1u /* once in the output: the connection is the owner's */
#define AREDIS__BATCH_RELEASE 2u /* once in the output: the owner's reservation ends */
/* A (P|S)(UN)SUBSCRIBE of n channels: its n replies are the confirmations
 * (pushes on RESP3), one per channel; an error reply ends it. */
#define AREDIS__BATCH_PUBSUB 4u
/* The client's own (a subscription replay): straight into the output ahead
 * of what waits, not counted as a user's command. */
#define AREDIS__BATCH_INTERNAL 8u
/* Not refused for max_queue_size (an UNSUBSCRIBE when a subscription is
 * freed: refusing it would leave the server subscribed). */
#define AREDIS__BATCH_UNBOUNDED 16u
/* The library's own command (a replay, a reconciling (UN)SUBSCRIBE): not
 * an application's operation, so not observed (aredis/observe.h). */
#define AREDIS__BATCH_UNOBSERVED 32u
/* The client-side cache's own (CLIENT CACHING YES and a read, OPTIN): not
 * looked at by the cache again. */
#define AREDIS__BATCH_CACHE 64u
/* One command (n = 1, no part hook) delivered as aredis_command()'s are:
 * `done` gets its reply (an error reply as SERVER), and no batch record
 * is made (the cluster's routes: a pre-encoded command, cheaply). */
#define AREDIS__BATCH_LONE 128u

typedef struct aredis__batch_spec {
    const char *bytes; /* the encoded commands, one after the other */
    size_t len;
    size_t n;           /* how many commands (replies owed), >= 1 */
    const size_t *ends; /* ends[i]: where command i ends in bytes */
    aredis__part_fn *part;
    /*
     * Runs once, as a command callback does: after the last part with a
     * NULL reply and no error, or with the error that ended the batch
     * (TIMEOUT, CANCELLED, a connection error...) — parts received before
     * it have been handed over already, the rest never will be.
     */
    aredis_reply_fn *done;
    void *data;
    const aredis_cmd_opts *opts; /* timeout_ms, AREDIS_CMD_NO_TIMEOUT; NULL: defaults */
    /* Blocking commands inside: the default timeout grows by their total
     * block time; `block_forever`: no default deadline at all. */
    uint64_t block_ms;
    int block_forever;
    int sensitive; /* a command inside may carry a secret */
    int session;   /* a command inside changes the session (MULTI, SELECT...: as
                      aredis__batch_check says); submitting notes them */
    const void *owner;
    unsigned flags; /* AREDIS__BATCH_* */
    /* AREDIS__BATCH_PUBSUB: the confirmation kind ("subscribe",
     * "punsubscribe"...) and the n names in order: confirmation i must name
     * names[i], or it is not this call's (client/push.c). */
    const char *ps_kind;
    const char *const *ps_names;
    const size_t *ps_lens;
} aredis__batch_spec;

/*
 * Encode one command for this client (the format or the argv form, with
 * the client's key prefix applied) at the end of b. *strip tells what to
 * strip from its reply (aredis__strip_reply); may be NULL.
 */
aredis_err aredis__encode(aredis_client *c, aredis__buf *b, int argc, const char *const *argv,
                          const size_t *argvlen, const char *fmt, va_list *ap, unsigned *strip);
/* Undo the key prefix in a reply, as *strip from aredis__encode says. */
void aredis__strip_reply(aredis_client *c, aredis_reply *r, unsigned strip);

/*
 * May this encoded command go into a batch? AUTH/HELLO (sent alone) and
 * the commands refused by the command API are not: UNSUPPORTED, with
 * aredis_call_error() set. Adds its block time to *block_ms (sets
 * *block_forever for a block of 0), sets *sensitive when it may carry a
 * secret and *session when it changes what the connection's next user
 * would inherit (MULTI, SELECT...: aredis__batch_spec.session).
 */
aredis_err aredis__batch_check(const char *resp, size_t len, uint64_t *block_ms, int *block_forever,
                               int *sensitive, int *session);

/* Issue a batch. Same admission as a command; on error `done` never runs. */
aredis_err aredis__batch_submit(aredis_client *c, const aredis__batch_spec *s, aredis__cmd **out);

/* Fail a batch (or command) now with code: its done callback runs, its late
 * replies are dropped. Only before done has run. */
void aredis__batch_abort(aredis_client *c, aredis__cmd *cmd, aredis_err code, const char *detail);

/* The first word of a server error reply ("WRONGTYPE Operation..."), as
 * aredis_error.prefix holds it. */
void aredis__error_prefix(const aredis_reply *r, char *out, size_t outlen);

/*
 * Hand a batch-of-one's reply to a command callback as the client would: an
 * error reply as AREDIS_ERR_SERVER with its prefix (reply kept), any other
 * error with no reply. cb may be NULL.
 */
void aredis__deliver(aredis_client *c, aredis_reply_fn *cb, void *data, aredis_reply *r,
                     const aredis_error *err);

/* Whether all of a command's (or batch's) bytes have reached the socket:
 * valid inside its done callback. 0 for one failed before that, and for
 * one still (even partly) in the output buffer: if the connection is lost
 * before it is written, the server never sees it. */
int aredis__cmd_was_sent(const aredis_client *c, const aredis__cmd *cmd);

/* Fail (as aredis__batch_abort) every command of `owner` not written
 * yet: waiting, or held behind another owner's reservation. */
void aredis__fail_owned(aredis_client *c, const void *owner, aredis_err code, const char *detail);

/* 1 when `owner` holds the connection's reservation now. */
int aredis__reserved_by(const aredis_client *c, const void *owner);

/* The client's loop; the monotonic loop time in ms. */
uint64_t aredis__client_now(const aredis_client *c);

/* ---- Futures completed by a feature ------------------------------------- */

/* A pending future whose completer is `aredis__future_done` (as a reply
 * callback, data = the future). NULL when out of memory. */
aredis_future *aredis__future_pending(aredis_client *c);
/* The same, on a loop, for a feature with no client of its own at hand (a
 * pool): cancelling it only completes it. */
aredis_future *aredis__future_pending_loop(aredis_loop *loop);
void aredis__future_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);
/* Cancelling the future aborts this command or batch. */
void aredis__future_attach(aredis_future *f, aredis__cmd *cmd);
/* The submission failed: the future fails with the call's error (its
 * completer reference dropped). Returns f. */
aredis_future *aredis__future_refused(aredis_future *f, aredis_err code);

/* ---- Pub/sub (features/pubsub.c) ------------------------------------------ */

/*
 * The dispatcher's side of pub/sub. A push (RESP3), or on a RESP2
 * connection in subscribed mode an array, whose first element names a
 * pub/sub kind is classified before any matching:
 *   message, pmessage, smessage        -> hooks->message
 *   (p|s)(un)subscribe confirmations   -> the (UN)SUBSCRIBE batch at the
 *                                         head of `sent` (AREDIS__BATCH_PUBSUB)
 *                                         as its next reply; with none there,
 *                                         hooks->unsolicited (the server
 *                                         dropped a shard channel)
 *   anything else pushed               -> options.on_push
 * The client keeps the server's subscription counts from the confirmations
 * (RESP2: subscribed mode while nonzero).
 */
typedef struct aredis__pubsub_hooks {
    void (*message)(aredis_client *c, aredis_reply *r, void *state); /* borrowed */
    void (*unsolicited)(aredis_client *c, aredis_reply *r, void *state);
    /* A new connection's handshake is done: issue the replay now (internal
     * batches), before anything waiting goes out. */
    void (*ready)(aredis_client *c, void *state);
    /* The connection ended: `final` when no reconnect follows (closed, freed,
     * the policy gave up). */
    void (*down)(aredis_client *c, aredis_err code, const char *why, int final, void *state);
    /* Subscribed or (un)subscribing on this connection (RESP2 refuses
     * ordinary commands then); with `anywhere`, on the client's dedicated
     * subscriber connection too (a pool must not hand it on). */
    int (*engaged)(void *state, int anywhere);
    /* The client is being freed (after its last `down`). */
    void (*destroy)(aredis_client *c, void *state);
} aredis__pubsub_hooks;

/* Attach the pub/sub state of a client (once; NULL hooks detach). */
void aredis__pubsub_attach(aredis_client *c, const aredis__pubsub_hooks *h, void *state);
void *aredis__pubsub_state(const aredis_client *c);
/* Subscribed, or a (un)subscribe pending, on this connection (the hooks'
 * engaged(), and the server's counts); `anywhere`: or on the client's
 * dedicated subscriber connection. */
int aredis__pubsub_engaged(const aredis_client *c, int anywhere);
/* A client of its own with c's options (copied strings; callbacks and user
 * data left out), on c's loop, connecting when c is connecting or up. NULL
 * when out of memory. */
aredis_client *aredis__client_clone(aredis_client *c);
/* The protocol the client speaks or will speak: 2 or 3 once known,
 * else what the options ask for. */
int aredis__client_proto(const aredis_client *c);

/* ---- Session state (the pool's dirty detection) -------------------------- */

/*
 * What users of a connection may have left on it that the next user must
 * not inherit. Tracked at issue time from the commands' names, reset when a
 * new connection's handshake is done (it sets db and protocol afresh).
 */
#define AREDIS__SESS_OWED 1u        /* user commands issued, not completed */
#define AREDIS__SESS_BLOCKING 2u    /* among them a blocking command */
#define AREDIS__SESS_MULTI 4u       /* MULTI issued (command API), no EXEC/DISCARD yet */
#define AREDIS__SESS_WATCH 8u       /* a transaction's WATCH holds the connection */
#define AREDIS__SESS_SUBSCRIBED 16u /* subscribed, or a (un)subscribe pending */
#define AREDIS__SESS_DB 32u         /* SELECT to a database other than opts.db */
#define AREDIS__SESS_AUTH 64u       /* AUTH or HELLO issued by a user: another user/protocol */
unsigned aredis__session(const aredis_client *c);
/* A database number as SELECT takes it (digits, at most 9), or -1. */
int aredis__db_number(const char *p, size_t n);
/* The database the connection is on now (opts.db unless a SELECT moved it). */
int aredis__session_db(const aredis_client *c);

/* ---- Observability (features/observe.c, features/metrics.c) --------------- */

/*
 * What an observed command carries from its start to its end (16 bytes in
 * every command record: a queued command's size is watched): the start
 * time, and either the metrics entry it counts in or, with an observer,
 * the observer's record (which holds the entry). The entry is valid only
 * while `gen` (kept in the record's padding) is the client's metrics
 * generation (32 bits: no wrap while one operation is in flight). Set
 * only for a command flagged observed: a client with neither observer nor
 * metrics never touches it.
 */
typedef struct aredis__obs_cmd {
    uint64_t t0; /* CLOCK_MONOTONIC ns at issue */
    void *x;     /* metrics entry (features/metrics.c), or observer record */
} aredis__obs_cmd;
#define AREDIS__OBS_ON 1  /* its end is owed */
#define AREDIS__OBS_REC 2 /* x is an observer record */
#define AREDIS__OBS_TX 4  /* a transaction: its EXEC's error decides */

struct aredis__obs;
/* The client's observability state while an observer or metrics are set
 * (else NULL: the one branch of the hot path), and the state itself, kept
 * once made until the client is freed (for operations still running). */
struct aredis__obs *aredis__obs_active(const aredis_client *c);
struct aredis__obs *aredis__obs_state(const aredis_client *c);
/*
 * Install the state: `mode` AREDIS__OBS_OFF, AREDIS__OBS_METRICS (metrics
 * only: the client's own fast path counts single commands, below) or
 * AREDIS__OBS_FULL; `gen` the metrics generation (entries of operations
 * started under another are stale).
 */
#define AREDIS__OBS_OFF 0
#define AREDIS__OBS_METRICS 1
#define AREDIS__OBS_FULL 2
void aredis__obs_install(aredis_client *c, struct aredis__obs *o, int mode, unsigned gen);

/*
 * The metrics fast path, kept by the client itself (a command's cost with
 * metrics on is watched: docs/BENCHMARKS.md). A metrics entry starts with
 * the histogram of its successes; the client remembers the entry of the
 * command name it saw last, keyed by the name's bytes as below, and adds a
 * success to it without a call. Everything else goes through
 * aredis__obs_begin / aredis__obs_end.
 */
typedef struct aredis__mhist {
    uint64_t count, sum_ns;
    uint64_t b[10]; /* per bucket: AREDIS_METRICS_BOUNDS + 1 (aredis/observe.h) */
} aredis__mhist;

static inline size_t aredis__bucket_of(uint64_t ns) {
    static const uint64_t b[9] = {1000000ull,    5000000ull,    10000000ull,
                                  50000000ull,   100000000ull,  500000000ull,
                                  1000000000ull, 5000000000ull, 10000000000ull};
    size_t i = 0;
    while (i < 9 && ns > b[i])
        i++;
    return i;
}

static inline void aredis__mhist_add(aredis__mhist *h, uint64_t ns) {
    h->count++;
    h->sum_ns += ns;
    h->b[aredis__bucket_of(ns)]++;
}

/* The name of an encoded command in the common shape ("*<argc>\r\n$<n>\r\n
 * <name>", argc and n one digit, n <= 8, 16 bytes at least) as a key: its
 * bytes masked into one word; 0 when not that shape (*n gets its length). */
static inline uint64_t aredis__name_key(const char *p, size_t len, size_t *n) {
    if (len < 16 || p[2] != '\r' || p[4] != '$' || p[6] != '\r') return 0;
    size_t k = (size_t)((unsigned char)p[5] - '0');
    if (k < 1 || k > 8) return 0;
    uint64_t v;
    memcpy(&v, p + 8, 8);
    *n = k;
    if (k == 8) return v;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v & ~(~0ull >> (k * 8));
#else
    return v & ((1ull << (k * 8)) - 1);
#endif
}

/* The metrics entry of a name (NULL when out of memory). */
void *aredis__obs_lookup(aredis_client *c, const char *name, size_t len);

/* The client's options (host, port, unix path, db: its attributes). */
const aredis_options *aredis__client_opts(const aredis_client *c);
/* The address connected to, as text, and its port: 0, or -1 when not
 * connected. */
int aredis__client_peer(const aredis_client *c, char *buf, size_t len, int *port);

/*
 * A user command (or batch of n commands, their ends) was accepted: start
 * its operation. ob->t0 is preset to the time of the read being
 * dispatched, or 0 outside one (then the clock is read). Returns
 * AREDIS__OBS_* bits (the caller flags the record).
 */
unsigned aredis__obs_begin(aredis_client *c, aredis__obs_cmd *ob, uint32_t *gen, const char *bytes,
                           size_t len, const uint64_t *ends, size_t n);
/* Its outcome: `gen` the metrics generation it started under, `bits` its
 * AREDIS__OBS_* bits; `now` the time of the read being dispatched, or 0;
 * r the reply (an error reply: its prefix) or NULL; `status` a batch's
 * first error prefix ("" when none). */
void aredis__obs_end(aredis_client *c, aredis__obs_cmd *ob, uint32_t gen, unsigned bits,
                     uint64_t now, const aredis_reply *r, aredis_err code, const char *status);
/* CLOCK_MONOTONIC in ns. */
uint64_t aredis__mono_ns(void);
/* Connection events: kind AREDIS_CONN_* (aredis/observe.h). */
void aredis__obs_connect_start(aredis_client *c);
void aredis__obs_conn(aredis_client *c, int kind, aredis_err code, unsigned attempt,
                      uint32_t delay_ms);
/* A clone (the hidden subscriber connection) observed as its origin. */
void aredis__obs_clone(aredis_client *dst, aredis_client *src);
/* The client is being freed: fold its counts into its metrics, free. */
void aredis__obs_destroy(aredis_client *c);

/* ---- Client-side caching (features/client_cache.c) --------------------------------- */

struct aredis_cache;
/* What aredis__csc_command says of a user command. */
#define AREDIS__CACHE_FAIL (-1) /* refused: aredis_call_error() is set */
#define AREDIS__CACHE_SEND 0    /* send it (*cb, *data may now be the cache's wrapper) */
#define AREDIS__CACHE_HIT 1     /* answered: *hit (a reference) is its reply */
/* Send it behind CLIENT CACHING YES: give its bytes and *data to
 * aredis__csc_optin_submit. */
#define AREDIS__CACHE_OPTIN 2
/*
 * A user command on a client with a cache, encoded (bytes, len; `strip` as
 * aredis__encode said), before it is placed: looked up if cacheable (not
 * while a MULTI is open: `in_multi`), its keys dropped if it writes.
 */
int aredis__csc_command(aredis_client *c, struct aredis_cache *k, const char *bytes, size_t len,
                        int in_multi, unsigned strip, aredis_reply_fn **cb, void **data,
                        aredis_reply **hit);
/* Send a read as OPTIN wants it (a batch); ctx is the *data the call above
 * gave, taken over (also on error). */
aredis_err aredis__csc_optin_submit(aredis_client *c, const aredis_cmd_opts *o, const char *bytes,
                                    size_t len, void *ctx, aredis__cmd **out);
/* A wrapper *data the call above gave that will not be used after all. */
void aredis__csc_abandon(aredis_client *c, void *ctx);
/* One command of a batch (pipeline, transaction): a write drops its keys
 * now and notes them in *acc (NULL at first) for aredis__csc_batch_done,
 * when the batch is answered; a SELECT stops caching (the database is not
 * followed through batches). */
void aredis__csc_batch_command(aredis_client *c, struct aredis_cache *k, const char *bytes,
                               size_t len, int in_multi, void **acc);
/* Whether one command of a batch would blind the cache (CLIENT TRACKING,
 * HELLO 2): UNSUPPORTED with aredis_call_error() set, before anything of
 * the batch is noted. */
aredis_err aredis__csc_batch_refuse(const char *bytes, size_t len);
/* The batch that noted *acc is answered (or failed): drop its keys again;
 * acc is freed. */
void aredis__csc_batch_done(void *acc);
/* What the cache knows of a connection: the database it is on (opt.db at
 * connect; -1: unknown, after a SELECT it could not follow, or one that
 * failed without an answer), and SELECTs not completed (no caching
 * meanwhile). */
typedef struct aredis__csc_conn {
    int db;
    unsigned selecting; /* SELECTs issued, not completed (on any connection) */
    int multi_wrote;    /* a write was queued in the open MULTI (command API) */
} aredis__csc_conn;
aredis__csc_conn *aredis__client_csc(aredis_client *c);
/* An "invalidate" or "tracking-redir-broken" push. */
void aredis__csc_push(struct aredis_cache *k, const aredis_reply *r);
/* A connection with tracking ended: everything goes, silently (the
 * client tells on_invalidate with aredis__csc_told once its own state is
 * settled, or never: a forked child's adoption runs inside a call). */
void aredis__csc_flush(struct aredis_cache *k);
void aredis__csc_told(struct aredis_cache *k);
/* References (aredis_cache_free drops one); the loop the cache's clients
 * must share (INVALID for another, aredis_call_error() set). */
struct aredis_cache *aredis__csc_ref(struct aredis_cache *k);
aredis_err aredis__csc_bind(struct aredis_cache *k, aredis_loop *loop);
/* CLIENT TRACKING ON's arguments for a client with key prefix `cprefix`;
 * strings it made go to owned[] (*nowned of them, aredis__free each).
 * argc, or -1 when out of memory. */
int aredis__csc_tracking_argv(const struct aredis_cache *k, const char *cprefix, const char **argv,
                              size_t *lens, int max, char **owned, int *nowned);
/* The server's command table (load_commands), or NULL. */
const struct aredis__cmdtable *aredis__client_cmdtable(const aredis_client *c);
/* A copy of options with copies of its strings (an empty prefix dropped);
 * -1 when out of memory (then dst holds nothing). Release the strings with
 * aredis__options_release. */
int aredis__options_dup(aredis_options *dst, const aredis_options *src);
void aredis__options_release(aredis_options *o);

/* ---- Locators (features/sentinel.c) ------------------------------------ */

/*
 * A client with a locator does not connect to its options' host and port:
 * at the start of every connect attempt (the first and every reconnect)
 * aredis__connect_start() asks the locator where to go, inside the
 * attempt's connect deadline, and carries on once it answers. The answer
 * (an owned copy) becomes the client's host and port for that attempt; a
 * failure is the attempt's failure (the reconnect policy decides what
 * follows, as for a refused connect). The client stays CONNECTING, with no
 * socket, while it waits.
 */
typedef struct aredis__locator_ops {
    /*
     * Find the address for a new attempt, whose connect deadline is
     * `deadline` (loop ms; 0: none). Answer later, never from inside this
     * call, with aredis__located() or aredis__locate_failed(), unless
     * `cancel` comes first.
     */
    void (*locate)(aredis_client *c, void *state, uint64_t deadline);
    /* The attempt ended before the answer (its deadline, close, free): no
     * answer may follow. Runs no user callback. */
    void (*cancel)(aredis_client *c, void *state);
    /* What was tried so far, for the detail of an attempt whose deadline
     * passed while locating ("" when nothing). */
    void (*describe)(aredis_client *c, void *state, char *buf, size_t len);
    /* The client stopped: no reconnect follows (closed, disconnected, the
     * policy gave up) until aredis_client_connect() again. */
    void (*stopped)(aredis_client *c, void *state);
    /* aredis__client_clone(): give the copy `dst` a locator of its own
     * (aredis__locator_attach): 0, or -1 when out of memory. */
    int (*clone)(aredis_client *src, void *state, aredis_client *dst);
    /* The client is being freed (after its last teardown). */
    void (*destroy)(aredis_client *c, void *state);
} aredis__locator_ops;

/* Give c a locator (before its first connect). `label` (copied) names what
 * is located in log lines while no address is known ("mymaster via
 * sentinels"). -1 when out of memory. */
int aredis__locator_attach(aredis_client *c, const aredis__locator_ops *ops, void *state,
                           const char *label);
/* c's locator state when its ops are `ops`, else NULL. */
void *aredis__locator_state(const aredis_client *c, const aredis__locator_ops *ops);
/* The locator's answer: connect to host:port now. Ignored unless c is
 * waiting for one. */
void aredis__located(aredis_client *c, const char *host, int port);
/* No answer: the attempt fails with code and detail (a credential refusal
 * when `refused`: the policy stops unless reconnect_on_auth_error). */
void aredis__locate_failed(aredis_client *c, aredis_err code, int refused, const char *detail);
/*
 * The locator learnt that c's server changed (a failover): a connection or
 * attempt under way is dropped as lost (AREDIS_ERR_IO, `why`: commands in
 * flight fail with it, queued ones wait for the reconnect, which locates
 * again); a reconnect waiting for its delay starts now. Nothing while idle,
 * closed, disconnecting or locating. 1 when it acted.
 */
int aredis__client_relocate(aredis_client *c, const char *why);

/*
 * The handshake's last steps, for clients that need them (set before the
 * first connect; aredis__client_clone copies them):
 *   expect_role  ROLE, which must name AREDIS__ROLE_MASTER ("master") or
 *                AREDIS__ROLE_REPLICA ("slave"); another role fails the
 *                attempt as a transient AREDIS_ERR_HANDSHAKE (a demoted
 *                primary, a stale answer from the sentinels). A ROLE the
 *                user may not run (NOPERM) or the server does not know is
 *                not verified (a warning is logged). 0: no ROLE.
 *   readonly     READONLY (cluster replicas serving reads); a refusal is a
 *                transient AREDIS_ERR_HANDSHAKE.
 */
#define AREDIS__ROLE_MASTER 1
#define AREDIS__ROLE_REPLICA 2
void aredis__client_expect_role(aredis_client *c, int role);
void aredis__client_set_readonly(aredis_client *c, int on);
/* No more connection callbacks (on_connect, on_disconnect, on_error,
 * on_reconnect_attempt, on_push) for c: its owner is going away while c's
 * own teardown may still be under way (a cluster freed from inside one). */
void aredis__client_mute(aredis_client *c);
/* 1 while none of a command's (or batch's) bytes have been put out: it may
 * still be taken back (aredis__batch_abort) and sent elsewhere. */
int aredis__cmd_unsent(const aredis__cmd *cmd);

#endif
