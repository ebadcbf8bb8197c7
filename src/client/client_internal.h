/*
 * The client's private state, shared by the files of src/client/:
 *   client.c     lifecycle, socket events, reply dispatch, teardown
 *   queue.c      command records and the FIFO queues
 *   timeout.c    the one loop timer per client: request, connect, dead-link
 *   command.c    the public command functions
 *   handshake.c  HELLO / AUTH / SELECT / CLIENT SETNAME
 *   reconnect.c  whether and when to reconnect; what survives a lost link
 *   future.c     futures
 *   (a locator, features/sentinel.c, is asked where to connect first:
 *   client/feature.h)
 */
#ifndef AREDIS_CLIENT_INTERNAL_H
#define AREDIS_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/future.h"
#include "client/feature.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/heap.h"

struct addrinfo;

/* Command record flags. */
#define AREDIS__CMD_ORPHAN 1u     /* callback already ran (timeout, cancel): drop the reply */
#define AREDIS__CMD_INTERNAL 2u   /* handshake command: not counted as user pending */
#define AREDIS__CMD_SENT 4u       /* bytes are in `out` or on the wire */
#define AREDIS__CMD_RETRY 8u      /* may be sent again after a reconnect (buf kept) */
#define AREDIS__CMD_SENSITIVE 16u /* AUTH, CONFIG SET, ...: redact its error detail */
#define AREDIS__CMD_BARRIER                                                                        \
    32u /* AUTH, HELLO: written only when nothing else                                             \
           is owed a reply; later commands wait for it */
#define AREDIS__CMD_FIFO                                                                           \
    64u                            /* its deadline is in the client's FIFO (the                    \
                                      default request timeout), not the heap */
#define AREDIS__CMD_QUEUED 128u    /* in c->waiting (not in a list being failed) */
#define AREDIS__CMD_STRIP 256u     /* strip the key prefix from its reply (cmd->strip) */
#define AREDIS__CMD_HELD 512u      /* in c->held: waits for a reservation to end */
#define AREDIS__CMD_BLOCKING 1024u /* blocks on the server: its silence is expected */
#define AREDIS__CMD_DONE 2048u     /* its callback has been (or is being) run */
#define AREDIS__CMD_OBSERVED 4096u /* its operation's end is owed (cmd->ob) */
#define AREDIS__CMD_OBS_REC 8192u  /* ...and cmd->ob.x is an observer record */
#define AREDIS__CMD_HIT 16384u     /* answered by the cache: in `hits`, reply in cmd->hit */
#define AREDIS__CMD_CSC 32768u     /* a batch with writes the cache notes: batch->csc */

/* A batch that went into `out` while its owner held the reservation (a
 * transaction's command after the WATCH that took it): client only, beside
 * the AREDIS__BATCH_* flags of client/feature.h. */
#define AREDIS__BATCH_UNDER 0x100u
/* An observed transaction (MULTI ... EXEC): its EXEC's error reply is its
 * outcome (client.c, dispatch_part). */
#define AREDIS__BATCH_OBS_TX 0x200u

/*
 * A batch: several commands that go out as one record, their bytes
 * contiguous, owing one reply each (pipelines, transactions). `ends` are
 * the end offsets of each command within the record's bytes: reply i may be
 * matched only once ends[i] bytes of the record have been written.
 */
typedef struct aredis__batch {
    void (*part)(aredis_client *c, aredis_reply *r, size_t index, void *data);
    const void *owner; /* the reservation it belongs to, or NULL */
    unsigned bflags;   /* AREDIS__BATCH_* (client/feature.h) */
    size_t n, got;     /* replies owed in all, and received */
    /* A subscribe-family batch (AREDIS__BATCH_PUBSUB): the confirmation
     * each reply must be — its kind ("subscribe"...) and, for reply i, the
     * name ps_names[i] of ps_lens[i] bytes (copies, in this allocation). */
    const char *ps_kind;
    const char **ps_names;
    size_t *ps_lens;
    char obs_status[32]; /* observed: the first error reply's prefix */
    void *csc;           /* with a cache: its writes' keys (aredis__csc_batch_done) */
    uint64_t ends[];
} aredis__batch;

typedef struct aredis__cmd {
    struct aredis__cmd *next, *prev;   /* in `waiting` or `sent` */
    struct aredis__cmd *fnext, *fprev; /* in the deadline FIFO (AREDIS__CMD_FIFO) */
    aredis_reply_fn *cb;
    void *data;
    aredis__hnode dl; /* its deadline (loop ms): key; in the client's heap
                         unless AREDIS__CMD_FIFO */
    union {
        char *buf;         /* the encoded command while it waits for a connection
                              (and, for a retryable command, while in flight) */
        aredis_reply *hit; /* AREDIS__CMD_HIT: the cached reply (a reference) */
    };
    size_t len;
    uint64_t start; /* its bytes in the output stream: [start, end) */
    uint64_t end;
    unsigned flags;
    unsigned char strip;  /* AREDIS__CMD_STRIP: an AREDIS__STRIP_* (proto/prefix.h) */
    uint32_t obs_gen;     /* AREDIS__CMD_OBSERVED: the metrics generation */
    aredis__batch *batch; /* NULL for a plain command */
    aredis__obs_cmd ob;   /* AREDIS__CMD_OBSERVED: its operation (observe.c) */
} aredis__cmd;

typedef struct aredis__cmdq {
    aredis__cmd *head, *tail;
    size_t n;
} aredis__cmdq;

/*
 * The default request timeout gives every command the same delay, so their
 * deadlines come in issue order: a FIFO keeps them at O(1) a command, and
 * only per-command timeouts pay for the heap.
 */
typedef struct aredis__fifo {
    aredis__cmd *head, *tail;
} aredis__fifo;

/* A future waiting for the client to become ready. */
typedef struct aredis__ready_waiter {
    struct aredis__ready_waiter *next;
    aredis_future *f;
} aredis__ready_waiter;

struct aredis_client {
    aredis_loop *loop;
    aredis_options opt; /* strings below are owned copies */
    size_t prefix_len;
    /* The server's command table (load_commands): what the built-in table
     * lacks. Replaced at each connect that loads it; NULL until then. */
    struct aredis__cmdtable *cmdtable; /* strlen(opt.prefix); 0 = no key prefix */
    aredis_state state;
    int proto; /* 2 or 3 once ready */
    void *data;

    /* connection */
    int fd;
    int deferred_errno; /* a connect that failed inside aredis_client_connect */
    void *io;
    int io_mask;
    struct addrinfo *addrs, *addr_next;    /* candidates while connecting */
    struct aredis__resolve_job *resolving; /* a host name being resolved off
                                              the loop thread (net/resolve.h) */
    aredis_reader *reader;
    struct aredis_tls_context *tls_ctx; /* shared (options), or made at the first TLS connect */
    struct aredis__tls *tls;            /* this connection's TLS, or NULL */
    int tls_handshaking;
    aredis__buf out;   /* encoded commands not yet written */
    uint64_t appended; /* bytes ever appended to `out` (stream position) */
    uint64_t written;  /* bytes ever written to the socket */
    void *flush_defer;
    int flush_armed;
    uint64_t gen; /* bumped at every teardown: stale callers stop */

    /* queues */
    aredis__cmdq waiting; /* not sendable yet (not READY, or behind a
                             barrier): bytes in cmd->buf, exact size */
    aredis__cmdq sent;    /* bytes in `out` or on the wire, awaiting replies */
    aredis__cmd *barrier; /* an AUTH/HELLO in `sent`: nothing goes out behind it */
    aredis__cmdq forked;  /* inherited across fork(): failed next loop turn */
    aredis__cmdq hits;    /* answered by the cache: delivered next loop turn */
    void *hits_timer;     /* opt.cache: fires (0 ms) to deliver them */
    int hits_armed;
    /*
     * A reservation (a transaction between WATCH and EXEC): while `reserved`
     * is set, only its owner's commands go out; everyone else's wait in
     * `held`, in order, until it ends (client/batch.c).
     */
    const void *reserved;
    aredis__cmdq held;
    aredis__cmd *freelist;
    size_t nfree;
    size_t user_pending; /* user commands not yet completed */
    size_t orphans;      /* timed-out / cancelled commands still in `sent` */
    size_t blocking;     /* records flagged AREDIS__CMD_BLOCKING not recycled yet */

    /* deadlines */
    aredis__heap deadlines; /* per-command deadlines, earliest first */
    aredis__fifo fifo;      /* default-timeout deadlines, in issue order */
    void *timer;
    uint64_t timer_at;      /* when the loop timer is armed for; 0 = not armed */
    uint64_t conn_deadline; /* connect + handshake deadline; 0 = none */
    uint64_t orphan_since;  /* when the first orphan of `sent` appeared */
    uint64_t last_rx;       /* last time bytes arrived */

    /* handshake */
    int hs_pending;
    int hs_fallback; /* HELLO was refused: RESP2 */

    /* graceful disconnect */
    int disconnecting;
    int tearing_down; /* a lost connection is being torn down: no second one */
    int up;           /* on_connect ran for this connection: on_disconnect owed */
    int ever_ready;   /* connected once: from then on, queue while reconnecting */

    /* what the socket waits for, per direction: TLS may need to write to
     * read or read to write (0 = the natural event) */
    int rd_want, wr_want;

    /* reconnection (reconnect.c) */
    unsigned attempt;         /* failed attempts in a row */
    uint64_t reconnect_at;    /* when the next attempt starts; 0 = none */
    uint32_t reconnect_delay; /* the delay chosen for it (reported as is) */
    uint64_t rng;             /* jitter */
    int was_ready;            /* the connection being torn down had been READY */

    /* health check */
    uint64_t last_tx;
    int health_inflight;

    /* fork safety */
    unsigned fork_gen;

    /* reentrancy: callbacks may close or free the client */
    int depth;
    int free_pending;

    aredis__ready_waiter *ready_waiters;
    /* the parent's connection, reported lost on the next loop turn */
    aredis__ready_waiter *forked_waiters;
    int forked_report, forked_up;

    aredis_client_stats stats;

    /* session state (session.c): what users changed beyond replies */
    int sess_multi; /* a MULTI issued, no EXEC/DISCARD since */
    int sess_auth;  /* AUTH/HELLO issued by a user */
    int sess_db;    /* the database now (opt.db at connect) */

    /* pub/sub (features/pubsub.c, through client/feature.h) */
    const struct aredis__pubsub_hooks *ps_hooks;
    void *ps_state;
    long long subs_np;    /* channels + patterns the server counts for us */
    long long subs_shard; /* shard channels */
    int tracking;         /* CLIENT TRACKING is on for this connection (opt.cache) */
    aredis__csc_conn csc; /* the cache's view of the connection (feature.h) */
    int ps_lenient;       /* RESP2: a sunsubscribe confirmation may still come
                             after the call it matched (push.c) */

    /* observability (features/observe.c): `obs` while an observer or
     * metrics are set, else NULL; `obs_mem` the state once made */
    struct aredis__obs *obs;
    struct aredis__obs *obs_mem;
    int obs_mode;     /* AREDIS__OBS_* (client/feature.h) */
    uint32_t obs_gen; /* the metrics generation */
    size_t obs_klen;  /* the metrics fast path: the last name's length (0: */
    uint64_t obs_key; /* none), key (aredis__name_key) and entry */
    void *obs_slot;
    uint64_t obs_now; /* while a read is dispatched (obs set): its time, in
                         ns; operations' times for metrics (observe.c) */

    /* a locator (features/sentinel.c, client/feature.h): asked where to
     * connect at the start of every attempt */
    const aredis__locator_ops *loc_ops;
    void *loc;
    char *loc_label; /* what is located, for log lines: owned */
    int locating;    /* this attempt waits for the locator's answer */
    int located;     /* this attempt's host/port are the locator's answer */
    /* the handshake's extra steps (handshake.c) */
    int expect_role; /* AREDIS__ROLE_*: ROLE must say so; 0: not asked */
    int readonly;    /* READONLY */

    aredis_error last_err;
    char last_detail[256];
    char err_detail[256]; /* detail for the error being delivered */
};

/* ---- queue.c ----------------------------------------------------------- */
aredis__cmd *aredis__cmd_new(aredis_client *c);
void aredis__cmd_recycle(aredis_client *c, aredis__cmd *cmd);
void aredis__cmdq_push(aredis__cmdq *q, aredis__cmd *cmd);
aredis__cmd *aredis__cmdq_pop(aredis__cmdq *q);
/* Take cmd out of q, wherever it is in it. */
void aredis__cmdq_unlink(aredis__cmdq *q, aredis__cmd *cmd);
/* Append all of `more` to q; `more` is left empty. */
void aredis__cmdq_append(aredis__cmdq *q, aredis__cmdq *more);
/* Give cmd a deadline `at` (loop ms): in the FIFO when `fifo` (the caller
 * guarantees issue order), else in the heap (room reserved). */
void aredis__deadline_set(aredis_client *c, aredis__cmd *cmd, uint64_t at, int fifo);
void aredis__deadline_unlink(aredis_client *c, aredis__cmd *cmd);
/* The earliest command deadline (FIFO head or heap top), or NULL. */
aredis__cmd *aredis__deadline_first(const aredis_client *c);
/* The record leaves the queues for good: it no longer blocks anything on
 * the server (session.c's count of blocking commands). */
static inline void aredis__cmd_unblock(aredis_client *c, aredis__cmd *cmd) {
    if (cmd->flags & AREDIS__CMD_BLOCKING) {
        cmd->flags &= ~AREDIS__CMD_BLOCKING;
        c->blocking--;
    }
}
/* Free the cached records (the connection is gone: nothing to reuse them). */
void aredis__freelist_trim(aredis_client *c);
static inline aredis__cmd *aredis__cmd_of(aredis__hnode *n) {
    return (aredis__cmd *)(void *)((char *)n - offsetof(aredis__cmd, dl));
}
/* Take cmd's deadline away, if it has one (most often it has none left). */
static inline void aredis__deadline_del(aredis_client *c, aredis__cmd *cmd) {
    if ((cmd->flags & AREDIS__CMD_FIFO) || aredis__hnode_in(&cmd->dl))
        aredis__deadline_unlink(c, cmd);
}
void aredis__client_free_queues(aredis_client *c);

/* ---- timeout.c --------------------------------------------------------- */
/* Recompute the next deadline and (re)arm the loop timer if it moved. */
void aredis__timer_update(aredis_client *c);
void aredis__on_timer(void *arg);

/* ---- client.c ---------------------------------------------------------- */
void aredis__enter(aredis_client *c);
/* Returns 1 if the client was freed (do not touch it again). */
int aredis__leave(aredis_client *c);
/* Close the connection and fail every pending command with `code`. */
void aredis__teardown(aredis_client *c, aredis_err code, const char *detail);
/*
 * The same for a refusal the next attempt would meet again (credentials, an
 * invalid database, a certificate that does not verify): the reconnect
 * policy stops unless reconnect_on_auth_error is set.
 */
void aredis__teardown_refused(aredis_client *c, aredis_err code, const char *detail);
/* Move what `waiting` holds into `out`, up to the first barrier that cannot
 * go yet. READY only. Returns -1 if the connection was torn down. */
int aredis__drain_waiting(aredis_client *c);
/* Run a command's callback exactly once (cmd is already out of its queue
 * or marked orphan). */
void aredis__complete(aredis_client *c, aredis__cmd *cmd, aredis_reply *r, aredis_err code,
                      const char *detail);
void aredis__arm_flush(aredis_client *c);
/* Deliver c->hits on the next loop turn. */
void aredis__hits_arm(aredis_client *c);
/* Handshake finished: READY, send what waited. */
void aredis__set_ready(aredis_client *c);
/*
 * In a forked child: 1 when the client may act (not forked, or it has just
 * adopted the child per reconnect_in_child), 0 when it must stay inert.
 * Adopting drops the inherited connection and starts a new one at once;
 * what is reported about the old one (on_error, its commands failing with
 * FORKED) waits for the next loop turn, so nothing runs inside the call
 * that noticed the fork (issuing a command, connect).
 */
int aredis__fork_adopt(aredis_client *c);
/* For loop callbacks: 1 when the client is a forked copy, adopted now or
 * inert — the event belonged to the parent's connection: drop it. */
int aredis__forked(aredis_client *c);
void aredis__set_error(aredis_client *c, aredis_err code, const char *fmt, ...) AREDIS_PRINTF(3, 4);
/* "host:port" or the unix path, for log lines (never credentials). */
const char *aredis__endpoint(const aredis_client *c, char *buf, size_t len);
/* The detail of an attempt whose deadline passed while its locator was
 * still looking (client/feature.h), in buf. */
const char *aredis__locate_timeout(aredis_client *c, char *buf, size_t len);

/* ---- reconnect.c ------------------------------------------------------- */
/*
 * The connection was lost or could not be made (code says why). Decide
 * whether to reconnect; if so schedule it and keep what may be kept.
 * Returns 1 when a reconnect is scheduled.
 */
int aredis__reconnect_decide(aredis_client *c, aredis_err code, int refused);
/*
 * Split the sent queue of a lost connection: what is kept goes to `keep` (in
 * order, marked unsent, bytes in cmd->buf), the rest to `fail`. Call before
 * `out` is reset.
 */
void aredis__reconnect_sort(aredis_client *c, aredis__cmdq *sent, aredis__cmdq *keep,
                            aredis__cmdq *fail);
/* The delay before attempt n (1-based), jitter applied. */
uint32_t aredis__backoff_ms(const aredis_options *o, unsigned attempt, uint64_t *rng);
/* Start a connect attempt now (socket, then the handshake on connect). */
void aredis__connect_start(aredis_client *c);
/* Is this command (argv[0], and argv[1] when it has one, else sub = NULL)
 * read-only, hence safe to retry? The command table says (proto/cmdtable.h). */
int aredis__cmd_is_read_only(const char *name, size_t len, const char *sub, size_t sublen,
                             const struct aredis__cmdtable *extra);

/* ---- cmdclass.c -------------------------------------------------------- */
/* What the dispatcher must know about a command, from its encoded bytes. */
#define AREDIS__CC_SENSITIVE 1u  /* may carry a secret: redact its error */
#define AREDIS__CC_BARRIER 2u    /* AUTH, HELLO: sent alone */
#define AREDIS__CC_REFUSED 4u    /* its replies cannot be matched: refuse it */
#define AREDIS__CC_BLOCKING 8u   /* blocks on the server for *block_ms */
#define AREDIS__CC_READ_ONLY 16u /* only reads (retry_read_only) */
#define AREDIS__CC_SESSION 32u   /* MULTI, EXEC, DISCARD, SELECT, AUTH, HELLO (session.c) */
/*
 * Classify one encoded command. *why gets a static text for a refusal;
 * *block_ms the block time of a blocking command (0 = forever). `want_ro`
 * asks for the read-only test as well (it costs a lookup), which also
 * consults `extra`, the server's table when loaded (load_commands; NULL:
 * the built-in one only). Cheap for the
 * common commands: most are told apart by name length and initial.
 */
unsigned aredis__cmd_classify_slow(const char *resp, size_t len, int want_ro, const char **why,
                                   uint64_t *block_ms, const struct aredis__cmdtable *extra);
/* The initials of the names of interest, a bit per letter, by name length. */
extern const uint32_t aredis__cc_initials[10];
static inline unsigned aredis__cmd_classify(const char *resp, size_t len, int want_ro,
                                            const char **why, uint64_t *block_ms,
                                            const struct aredis__cmdtable *extra) {
    /* The common layout "*<d>\r\n$<d>\r\n<name>": length and initial. */
    if (!want_ro && len >= 9 && resp[0] == '*' && resp[2] == '\r' && resp[4] == '$' &&
        resp[6] == '\r') {
        unsigned d = (unsigned)((unsigned char)resp[5] - '0');
        unsigned ch = (unsigned)(((unsigned char)resp[8] | 0x20) - 'a');
        if (d > 9 || ch > 25 || !((aredis__cc_initials[d] >> ch) & 1u)) return 0;
    }
    return aredis__cmd_classify_slow(resp, len, want_ro, why, block_ms, extra);
}

/* ---- batch.c ----------------------------------------------------------- */
/* The owner of a command's reservation (NULL for most). */
static inline const void *aredis__cmd_owner(const aredis__cmd *cmd) {
    return cmd->batch ? cmd->batch->owner : NULL;
}
/* A command has just gone into `out`: take or end a reservation as its batch
 * says. Returns 1 when a reservation ended (held commands are waiting). */
int aredis__reservation_step(aredis_client *c, aredis__cmd *cmd);
/* End the reservation, if any: held commands move to the front of `waiting`
 * (they were issued before what still waits there). */
void aredis__reservation_end(aredis_client *c);
/* Move every held command to the front of `waiting`, in order. */
void aredis__held_to_waiting(aredis_client *c);

/* ---- command.c --------------------------------------------------------- */
/*
 * Queue one encoded command (bytes in buf, taken over, or appended to `out`
 * already when buf is NULL). Used by the public functions and the handshake.
 */
aredis_err aredis__submit(aredis_client *c, const aredis_cmd_opts *o, aredis_reply_fn *cb,
                          void *data, int internal, int argc, const char *const *argv,
                          const size_t *argvlen, const char *fmt, va_list *ap, aredis__cmd **out);
/* Refusals at issue time (closed, forked, not connected, queue full): an
 * error with aredis_call_error() set, or OK. */
aredis_err aredis__admission(aredis_client *c, int internal);
/*
 * The common tail of a submit: the command's bytes are the last `len` bytes
 * of `out` (from offset `before`); give it its deadline (`timeout` ms, 0 =
 * none; `fifo` for the default request timeout) and put it on the wire, in
 * `waiting` or in `held`. `retry`: keep a copy to send again after a
 * reconnect. On failure nothing is issued (out rolled back, cmd recycled).
 */
aredis_err aredis__place(aredis_client *c, aredis__cmd *cmd, size_t before, size_t len,
                         uint64_t timeout, int fifo, int retry, int internal);
/*
 * Append one user command to b as the client encodes it: with the client's
 * key prefix when it has one (*strip then tells what to strip from its
 * reply: AREDIS__STRIP_*, proto/prefix.h; 0 without a prefix; strip may
 * be NULL). Returns
 * the writer's errors (INVALID, NOMEM: no detail recorded), or UNSUPPORTED
 * for a command a prefix cannot be applied to, detail recorded for
 * aredis_call_error(). On error nothing is appended. For features that
 * batch commands (pipelines, transactions).
 */
aredis_err aredis__encode(aredis_client *c, aredis__buf *b, int argc, const char *const *argv,
                          const size_t *argvlen, const char *fmt, va_list *ap, unsigned *strip);
/* Fail a pending command now (timeout, cancel): its callback runs with
 * `code`; its late reply will be dropped. */
void aredis__cmd_abort(aredis_client *c, aredis__cmd *cmd, aredis_err code, const char *detail);

/* ---- handshake.c ------------------------------------------------------- */
/* Connected: send the handshake (or go READY if none is needed). */
void aredis__handshake_start(aredis_client *c);

/* ---- push.c ------------------------------------------------------------ */
/* A push, or a RESP2 array while pub/sub is engaged: route it if it is
 * nobody's reply (message, unsolicited confirmation, other push). Returns 1
 * when taken (r released), 0 when it is to be matched as a reply. */
int aredis__push_route(aredis_client *c, aredis_reply *r);
/* On a RESP2 subscribed connection, refuse an ordinary command (not PING):
 * UNSUPPORTED with aredis_call_error() set. OK otherwise. */
aredis_err aredis__pubsub_refuse(aredis_client *c, const char *resp, size_t len);
/* RESP2 and subscribed (or subscribing) on this connection: ordinary
 * commands are refused now. */
int aredis__pubsub_refusing(const aredis_client *c);

/* ---- session.c --------------------------------------------------------- */
/* A user command the classifier flagged AREDIS__CC_SESSION was issued. */
void aredis__session_note(aredis_client *c, const char *resp, size_t len);
/* A new connection: nothing changed yet. */
void aredis__session_reset(aredis_client *c);

/* ---- future.c ---------------------------------------------------------- */
/* Complete waiters of aredis_future_ready(). code OK = ready. */
void aredis__ready_notify(aredis_client *c, aredis_err code, const char *detail);
/* The same for a list already taken from the client. */
void aredis__ready_notify_list(aredis__ready_waiter *w, aredis_err code, const char *detail);

#endif
