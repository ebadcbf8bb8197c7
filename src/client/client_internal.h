/*
 * The client's private state, shared by the files of src/client/:
 *   client.c     lifecycle, socket events, reply dispatch, teardown
 *   queue.c      command records and the FIFO queues
 *   timeout.c    the one loop timer per client: request, connect, dead-link
 *   command.c    the public command functions
 *   handshake.c  HELLO / AUTH / SELECT / CLIENT SETNAME
 *   reconnect.c  whether and when to reconnect; what survives a lost link
 *   future.c     futures
 */
#ifndef AREDIS_CLIENT_INTERNAL_H
#define AREDIS_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/future.h"
#include "util/buf.h"
#include "util/heap.h"

struct addrinfo;

/* Command record flags. */
#define AREDIS__CMD_ORPHAN 1u   /* callback already ran (timeout, cancel): drop the reply */
#define AREDIS__CMD_INTERNAL 2u /* handshake command: not counted as user pending */
#define AREDIS__CMD_SENT 4u     /* bytes are in `out` or on the wire */
#define AREDIS__CMD_RETRY 8u    /* may be sent again after a reconnect (buf kept) */
#define AREDIS__CMD_SENSITIVE 16u /* AUTH, CONFIG SET, ...: redact its error detail */

typedef struct aredis__cmd {
    struct aredis__cmd *next;
    aredis_reply_fn *cb;
    void *data;
    aredis__hnode dl;  /* its deadline (loop ms) in the client's heap, if any */
    char *buf;         /* the encoded command while it waits for a connection
                          (and, for a retryable command, while in flight) */
    size_t len;
    uint64_t start;    /* its bytes in the output stream: [start, end) */
    uint64_t end;
    unsigned flags;
} aredis__cmd;

typedef struct aredis__cmdq {
    aredis__cmd *head, *tail;
    size_t n;
} aredis__cmdq;

/* A future waiting for the client to become ready. */
typedef struct aredis__ready_waiter {
    struct aredis__ready_waiter *next;
    aredis_future *f;
} aredis__ready_waiter;

struct aredis_client {
    aredis_loop *loop;
    aredis_options opt; /* strings below are owned copies */
    aredis_state state;
    int proto; /* 2 or 3 once ready */
    void *data;

    /* connection */
    int fd;
    int deferred_errno; /* a connect that failed inside aredis_client_connect */
    void *io;
    int io_mask;
    struct addrinfo *addrs, *addr_next; /* candidates while connecting */
    struct aredis__resolve_job *resolving; /* a host name being resolved off
                                              the loop thread (net/resolve.h) */
    aredis_reader *reader;
    struct aredis__tls_ctx *tls_ctx; /* made at the first TLS connect */
    struct aredis__tls *tls;         /* this connection's TLS, or NULL */
    int tls_handshaking;
    aredis__buf out; /* encoded commands not yet written */
    uint64_t appended; /* bytes ever appended to `out` (stream position) */
    uint64_t written;  /* bytes ever written to the socket */
    void *flush_defer;
    int flush_armed;
    uint64_t gen; /* bumped at every teardown: stale callers stop */

    /* queues */
    aredis__cmdq waiting; /* issued before READY: bytes in cmd->buf */
    aredis__cmdq sent;    /* bytes in `out` or on the wire, awaiting replies */
    aredis__cmd *freelist;
    size_t nfree;
    size_t user_pending; /* user commands not yet completed */
    size_t orphans;      /* timed-out / cancelled commands still in `sent` */

    /* deadlines */
    aredis__heap deadlines; /* commands with a deadline, earliest first */
    void *timer;
    uint64_t timer_at;    /* when the loop timer is armed for; 0 = not armed */
    uint64_t conn_deadline; /* connect + handshake deadline; 0 = none */
    uint64_t orphan_since;  /* when the first orphan of `sent` appeared */
    uint64_t last_rx;       /* last time bytes arrived */

    /* handshake */
    int hs_pending;
    int hs_fallback; /* HELLO was refused: RESP2 */

    /* graceful disconnect */
    int disconnecting;

    /* reconnection (reconnect.c) */
    unsigned attempt;      /* failed attempts in a row */
    uint64_t reconnect_at; /* when the next attempt starts; 0 = none */
    uint32_t reconnect_delay; /* the delay chosen for it (reported as is) */
    uint64_t rng;          /* jitter */
    int was_ready;         /* the connection being torn down had been READY */

    /* health check */
    uint64_t last_tx;
    int health_inflight;

    /* fork safety */
    unsigned fork_gen;

    /* reentrancy: callbacks may close or free the client */
    int depth;
    int free_pending;

    aredis__ready_waiter *ready_waiters;

    aredis_client_stats stats;

    aredis_error last_err;
    char last_detail[256];
    char err_detail[256]; /* detail for the error being delivered */
};

/* ---- queue.c ----------------------------------------------------------- */
aredis__cmd *aredis__cmd_new(aredis_client *c);
void aredis__cmd_recycle(aredis_client *c, aredis__cmd *cmd);
void aredis__cmdq_push(aredis__cmdq *q, aredis__cmd *cmd);
aredis__cmd *aredis__cmdq_pop(aredis__cmdq *q);
static inline aredis__cmd *aredis__cmd_of(aredis__hnode *n) {
    return (aredis__cmd *)(void *)((char *)n - offsetof(aredis__cmd, dl));
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
/* Run a command's callback exactly once (cmd is already out of its queue
 * or marked orphan). */
void aredis__complete(aredis_client *c, aredis__cmd *cmd, aredis_reply *r, aredis_err code,
                      const char *detail);
void aredis__arm_flush(aredis_client *c);
/* Handshake finished: READY, send what waited. */
void aredis__set_ready(aredis_client *c);
/*
 * In a forked child: 1 when the client may act (not forked, or it has just
 * adopted the child per reconnect_in_child), 0 when it must stay inert.
 */
int aredis__fork_ok(aredis_client *c);
void aredis__set_error(aredis_client *c, aredis_err code, const char *fmt, ...)
    AREDIS_PRINTF(3, 4);
/* "host:port" or the unix path, for log lines (never credentials). */
const char *aredis__endpoint(const aredis_client *c, char *buf, size_t len);

/* ---- reconnect.c ------------------------------------------------------- */
/*
 * The connection was lost or could not be made (code says why). Decide
 * whether to reconnect; if so schedule it and keep what may be kept.
 * Returns 1 when a reconnect is scheduled.
 */
int aredis__reconnect_decide(aredis_client *c, aredis_err code);
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
/* Is this command (argv[0]) read-only, hence safe to retry? */
int aredis__cmd_is_read_only(const char *name, size_t len);

/* ---- command.c --------------------------------------------------------- */
/*
 * Queue one encoded command (bytes in buf, taken over, or appended to `out`
 * already when buf is NULL). Used by the public functions and the handshake.
 */
aredis_err aredis__submit(aredis_client *c, const aredis_cmd_opts *o, aredis_reply_fn *cb,
                          void *data, int internal, int argc, const char *const *argv,
                          const size_t *argvlen, const char *fmt, va_list *ap,
                          aredis__cmd **out);
/* Fail a pending command now (timeout, cancel): its callback runs with
 * `code`; its late reply will be dropped. */
void aredis__cmd_abort(aredis_client *c, aredis__cmd *cmd, aredis_err code, const char *detail);

/* ---- handshake.c ------------------------------------------------------- */
/* Connected: send the handshake (or go READY if none is needed). */
void aredis__handshake_start(aredis_client *c);

/* ---- future.c ---------------------------------------------------------- */
/* Complete waiters of aredis_future_ready(). code OK = ready. */
void aredis__ready_notify(aredis_client *c, aredis_err code, const char *detail);
/* The same for a list already taken from the client. */
void aredis__ready_notify_list(aredis__ready_waiter *w, aredis_err code, const char *detail);

#endif
