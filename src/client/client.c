/*
 * The client: lifecycle, socket events, reply dispatch and teardown.
 *
 * Life of a command (see also command.c and timeout.c):
 *   issued  → `waiting` (own buffer) while not READY, or encoded straight
 *             into `out` and pushed on `sent` when READY;
 *   flushed → `out` is written once per loop turn by the deferred flush
 *             (auto-pipelining: everything issued in one turn, one write);
 *   replied → replies arrive in order; each pops the head of `sent`.
 * A command that times out or is cancelled while on the wire stays in `sent`
 * as an orphan: its reply, when it comes, is dropped, so no later command
 * ever receives another's reply.
 *
 * Reentrancy: user callbacks may close or free the client. Every entry from
 * the loop is bracketed by aredis__enter/aredis__leave; a free requested
 * inside is carried out by the outermost leave. Teardown bumps `gen`, and
 * loops that call user code stop when it changes.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aredis/observe.h"
#include "aredis/cache.h"
#include "client/client_internal.h"
#include "client/feature.h"
#include "proto/prefix.h"
#include "loop/loop_internal.h"
#include "net/resolve.h"
#include "net/socket.h"
#include "net/tls.h"
#include "util/alloc.h"
#include "util/compat.h" /* MSG_NOSIGNAL */
#include "util/fork.h"
#include "util/log.h"
#include "util/redact.h"

#define READ_CHUNK 16384

static void on_io(void *arg, int events);
static void on_flush(void *arg);
static void on_hits(void *arg);
static void report_forked(aredis_client *c);
static void client_destroy(aredis_client *c);

const char *aredis_state_name(aredis_state s) {
    switch (s) {
#define AREDIS__STATE_NAME(n, str)                                                                 \
    case AREDIS_STATE_##n:                                                                         \
        return str;
        AREDIS_STATE_MAP(AREDIS__STATE_NAME)
#undef AREDIS__STATE_NAME
    }
    return "unknown";
}

/* ---- Reentrancy guard --------------------------------------------------- */

void aredis__enter(aredis_client *c) { c->depth++; }

int aredis__leave(aredis_client *c) {
    if (--c->depth == 0 && c->free_pending) {
        client_destroy(c);
        return 1;
    }
    return 0;
}

/* ---- Errors ------------------------------------------------------------- */

void aredis__set_error(aredis_client *c, aredis_err code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_detail, sizeof c->last_detail, fmt, ap);
    va_end(ap);
    c->last_err.code = code;
    c->last_err.detail = c->last_detail;
    c->last_err.prefix[0] = '\0';
}

void aredis__error_prefix(const aredis_reply *r, char *out, size_t outlen) {
    size_t n = 0;
    while (n < r->len && n + 1 < outlen && r->str[n] != ' ') {
        out[n] = r->str[n];
        n++;
    }
    out[n] = '\0';
}

const char *aredis__endpoint(const aredis_client *c, char *buf, size_t len) {
    if (c->loc_ops && !c->located)
        snprintf(buf, len, "%s", c->loc_label); /* no address from the locator yet */
    else if (c->opt.unix_path)
        snprintf(buf, len, "%s", c->opt.unix_path);
    else if (strchr(c->opt.host, ':'))
        snprintf(buf, len, "[%s]:%d", c->opt.host, c->opt.port);
    else
        snprintf(buf, len, "%s:%d", c->opt.host, c->opt.port);
    return buf;
}

/*
 * An observed command's operation ends. A single command that succeeded,
 * counted by metrics only, while a read is dispatched (its reply's), is
 * added to its entry here: the fast path (client/feature.h). Everything
 * else goes to features/observe.c.
 */
static __attribute__((noinline)) void observe_end_slow(aredis_client *c, aredis__cmd *cmd,
                                                       const aredis_reply *r, aredis_err code) {
    aredis__obs_end(c, &cmd->ob, cmd->obs_gen,
                    (cmd->flags & AREDIS__CMD_OBS_REC) ? AREDIS__OBS_REC : 0u, c->obs_now, r, code,
                    cmd->batch ? cmd->batch->obs_status : "");
}

/* (The call above stays apart: its eight arguments would give the fast
 * path below a stack frame.) */
static __attribute__((noinline)) void observe_end(aredis_client *c, aredis__cmd *cmd,
                                                  const aredis_reply *r, aredis_err code) {
    if (code == AREDIS_ERR_OK && c->obs_now && !(cmd->flags & AREDIS__CMD_OBS_REC) && !cmd->batch &&
        cmd->ob.x && cmd->obs_gen == c->obs_gen) {
        aredis__mhist_add(cmd->ob.x, c->obs_now - cmd->ob.t0);
        cmd->ob.x = NULL;
        return;
    }
    observe_end_slow(c, cmd, r, code);
}

void aredis__complete(aredis_client *c, aredis__cmd *cmd, aredis_reply *r, aredis_err code,
                      const char *detail) {
    /* Once: a cancel or timeout reaching a record whose completion is
     * under way (from inside its own callback's chain) finds it done. */
    if (cmd->flags & AREDIS__CMD_DONE) return;
    cmd->flags |= AREDIS__CMD_DONE;
    if (!(cmd->flags & AREDIS__CMD_INTERNAL)) c->user_pending--;
    /* Everything the callback needs is taken before the observer's end:
     * command_end may close the client, and a teardown then recycles a
     * record it finds orphaned. */
    aredis_reply_fn *cb = cmd->cb;
    void *data = cmd->data;
    int sensitive = (cmd->flags & AREDIS__CMD_SENSITIVE) != 0;
    cmd->cb = NULL;
    /* One test for the two rare cases: an observed operation ends; a batch
     * whose writes the cache noted drops their keys again, before anyone
     * hears it is done (aredis/cache.h). */
    if (__builtin_expect((cmd->flags & (AREDIS__CMD_OBSERVED | AREDIS__CMD_CSC)) != 0, 0)) {
        if (cmd->flags & AREDIS__CMD_CSC) {
            void *acc = cmd->batch->csc;
            cmd->flags &= ~AREDIS__CMD_CSC;
            cmd->batch->csc = NULL;
            aredis__csc_batch_done(acc);
        }
        if (cmd->flags & AREDIS__CMD_OBSERVED) observe_end(c, cmd, r, code);
    }
    if (!cb) return;
    if (code == AREDIS_ERR_OK) {
        cb(c, r, NULL, data);
        return;
    }
    aredis_error e;
    e.code = code;
    e.prefix[0] = '\0';
    char safe[256];
    if (code == AREDIS_ERR_SERVER && r) {
        aredis__error_prefix(r, e.prefix, sizeof e.prefix);
        e.detail = r->str;
        /* A server may quote the arguments back ("Error in ACL SETUSER
         * modifier '>...'"): the detail of a secret-bearing command is
         * redacted; the reply itself is the server's words, unchanged. */
        if (sensitive) {
            aredis__redact_message(r->str, r->len, safe, sizeof safe);
            e.detail = safe;
        }
    } else {
        e.detail = detail ? detail : aredis_strerror(code);
    }
    cb(c, r, &e, data);
}

/* ---- Teardown ----------------------------------------------------------- */

static void close_socket(aredis_client *c) {
    /* A resolution under way is given up: its callback never runs, and its
     * thread frees the late result. */
    aredis__resolve_cancel(c->resolving);
    c->resolving = NULL;
    /* So is a locator's search for the address (client/feature.h). */
    if (c->locating) {
        c->locating = 0;
        c->loc_ops->cancel(c, c->loc);
    }
    aredis__tls_free(c->tls);
    c->tls = NULL;
    c->tls_handshaking = 0;
    if (c->io) {
        aredis__io_free(c->loop, c->io);
        c->io = NULL;
    }
    c->io_mask = 0;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->addrs) {
        freeaddrinfo(c->addrs);
        c->addrs = c->addr_next = NULL;
    }
}

/*
 * A queue taken from a connection that is gone: its records are in no
 * client queue any more, so a cancel from a callback (before or while the
 * queue is failed) only marks them, and must not count an orphan on the
 * next connection.
 */
static void mark_taken(aredis__cmdq *q) {
    for (aredis__cmd *cmd = q->head; cmd; cmd = cmd->next)
        cmd->flags &= ~(AREDIS__CMD_SENT | AREDIS__CMD_QUEUED);
}

/*
 * A reservation died with its connection (the server forgot the WATCH):
 * its owner's commands still in `q` must not run on the next connection
 * without it. They move to `fail`.
 */
static void drop_owned(aredis__cmdq *q, aredis__cmdq *fail, const void *owner) {
    aredis__cmd *cmd = q->head;
    while (cmd) {
        aredis__cmd *next = cmd->next;
        if (aredis__cmd_owner(cmd) == owner) {
            aredis__cmdq_unlink(q, cmd);
            aredis__cmdq_push(fail, cmd);
        }
        cmd = next;
    }
}

/* Put what a teardown keeps back in `waiting`, in order. */
static void waiting_adopt(aredis_client *c, aredis__cmdq *q) {
    for (aredis__cmd *cmd = q->head; cmd; cmd = cmd->next)
        cmd->flags |= AREDIS__CMD_QUEUED;
    aredis__cmdq_append(&c->waiting, q);
}

/*
 * Fail every command of a taken queue. A free() from inside a callback
 * turns the rest into CANCELLED: nothing else is reported as if the client
 * still existed.
 */
static void fail_queue(aredis_client *c, aredis__cmdq *q, aredis_err code, const char *detail) {
    aredis__cmd *cmd;
    while ((cmd = aredis__cmdq_pop(q))) {
        aredis__deadline_del(c, cmd);
        if (c->free_pending && code != AREDIS_ERR_FORKED) {
            code = AREDIS_ERR_CANCELLED;
            detail = "client freed";
        }
        if (!(cmd->flags & AREDIS__CMD_ORPHAN)) {
            if (code == AREDIS_ERR_TIMEOUT && !(cmd->flags & AREDIS__CMD_INTERNAL))
                c->stats.timeouts++;
            aredis__complete(c, cmd, NULL, code, detail);
        }
        aredis__cmd_recycle(c, cmd);
    }
}

static void report(aredis_client *c, aredis_conn_error_fn *fn, aredis_err code, const char *why) {
    if (!fn) return;
    aredis_error e;
    e.code = code;
    e.detail = why;
    e.prefix[0] = '\0';
    fn(c, &e, c->opt.cb_data);
}

/* An established connection (on_connect ran) ended: tell on_disconnect. */
static void report_disconnect(aredis_client *c, int was_up, aredis_err code, const char *why) {
    if (!was_up || c->free_pending || !c->opt.on_disconnect) return;
    aredis_error e;
    e.code = code;
    e.detail = why;
    e.prefix[0] = '\0';
    c->opt.on_disconnect(c, &e, c->opt.cb_data);
}

/* Forget the connection: socket, TLS, reader, buffers, per-connection state. */
static void conn_reset(aredis_client *c) {
    close_socket(c);
    aredis_reader_free(c->reader);
    c->reader = NULL;
    c->out.off = c->out.len = 0;
    c->appended = c->written = 0;
    c->conn_deadline = 0;
    c->orphans = 0;
    c->orphan_since = 0;
    c->hs_pending = 0;
    c->health_inflight = 0;
    c->proto = 0;
    c->barrier = NULL;
    c->reserved = NULL; /* the server forgot its WATCH with the connection */
    c->rd_want = c->wr_want = 0;
    c->up = 0;
    c->subs_np = c->subs_shard = 0; /* the server forgot them with the connection */
    c->ps_lenient = 0;
    c->tracking = 0;
    c->csc.db = c->opt.db; /* as the next handshake sets it (SELECTs still
                              waiting count on: csc.selecting stays) */
    c->csc.multi_wrote = 0;
    aredis__session_reset(c);
}

/*
 * Where a connection ends. LOST: a failure (the reconnect policy decides
 * what happens next); REFUSED: a failure the next attempt would meet again
 * (credentials, invalid database, certificate); GRACEFUL: disconnect()
 * finished; FINAL: close/free.
 */
typedef enum { TEARDOWN_LOST, TEARDOWN_REFUSED, TEARDOWN_GRACEFUL, TEARDOWN_FINAL } teardown_mode;

/* The reconnect a teardown of generation `gen` scheduled is still the
 * client's plan: no callback since closed, freed or restarted it. */
static int reconnect_stands(const aredis_client *c, int retry, uint64_t gen) {
    return retry && c->gen == gen && c->state == AREDIS_STATE_RECONNECTING && !c->free_pending;
}

static void teardown_ex(aredis_client *c, aredis_err code, const char *detail, teardown_mode mode) {
    int lost = mode == TEARDOWN_LOST || mode == TEARDOWN_REFUSED;
    /* No teardown inside another: the callbacks of one (a health-check PING
     * failing with its TIMEOUT, say) may report the same lost connection
     * again — it is gone already, and a second report would count a second
     * attempt. close()/free() from a callback still go through. */
    if (lost && c->tearing_down) return;
    int outer = c->tearing_down;
    c->tearing_down = 1;
    char why[256];
    snprintf(why, sizeof why, "%s", detail ? detail : aredis_strerror(code));
    int was_up = c->up;
    c->gen++;
    /* Invalidations sent while the connection is down are lost: nothing
     * cached may be trusted any more (aredis/cache.h). */
    int flushed = c->tracking;
    if (flushed) aredis__csc_flush(c->opt.cache); /* told at the end */

    /* Held commands wait like the others; the reservation's own, unsent,
     * fail below. */
    const void *dead = c->reserved;
    aredis__held_to_waiting(c);
    /* Take the queues first: callbacks may issue new commands. */
    aredis__cmdq sent = c->sent, waiting = c->waiting, forked = c->forked, keep = {0}, fail = {0};
    aredis__cmdq hits = {0};
    if (mode == TEARDOWN_FINAL) {
        /* Answers the cache gave but not delivered yet: CANCELLED, as any
         * command of a closed client. */
        hits = c->hits;
        memset(&c->hits, 0, sizeof c->hits);
    }
    memset(&c->sent, 0, sizeof c->sent);
    memset(&c->waiting, 0, sizeof c->waiting);
    memset(&c->forked, 0, sizeof c->forked);
    int level = code == AREDIS_ERR_PROTOCOL ? AREDIS_LOG_WARN : AREDIS_LOG_INFO;
    if (lost && aredis__log_enabled(level)) {
        char where[160];
        aredis__log(level, "%s %s: %s: %s", was_up ? "lost connection to" : "could not connect to",
                    aredis__endpoint(c, where, sizeof where), aredis_err_name(code), why);
    }
    int retry = lost && aredis__reconnect_decide(c, code, mode == TEARDOWN_REFUSED);
    /* Commands wait for the next attempt only once the client has been up
     * (or when told to wait for the first connect): a newcomer's program
     * with no server must see an error, not wait for ever. */
    int queue =
        retry && c->opt.queue_during_reconnect && (c->ever_ready || c->opt.wait_for_first_connect);
    if (queue)
        aredis__reconnect_sort(c, &sent, &keep, &fail); /* needs `out` intact */
    else
        fail = sent;
    if (dead) drop_owned(&waiting, &fail, dead);
    mark_taken(&fail);
    mark_taken(&waiting);
    mark_taken(&hits);

    conn_reset(c);
    if (!retry) {
        c->disconnecting = 0;
        c->reconnect_at = 0;
        c->state = mode == TEARDOWN_FINAL ? AREDIS_STATE_CLOSED : AREDIS_STATE_IDLE;
        if (lost && c->attempt && c->opt.reconnect) {
            char gave[320];
            snprintf(gave, sizeof gave, "gave up after %u reconnect attempt(s): %.200s", c->attempt,
                     why);
            snprintf(why, sizeof why, "%.255s", gave);
            aredis__log(AREDIS_LOG_INFO, "reconnect: %s", why);
        } else if (lost && c->opt.reconnect) {
            aredis__log(AREDIS_LOG_INFO, "reconnect: not retrying after %s", aredis_err_name(code));
        }
        c->attempt = 0;
        /* No attempt follows: a locator stops what it runs for the client
         * (features/sentinel.c: its watch on the sentinels). */
        if (c->loc_ops && c->loc_ops->stopped) c->loc_ops->stopped(c, c->loc);
    }
    /* Records are not cached while there is no connection to reuse them. */
    if (c->state != AREDIS_STATE_READY) aredis__freelist_trim(c);
    if (code != AREDIS_ERR_OK) aredis__set_error(c, code, "%s", why);

    /* What is kept waits for the reconnect, ahead of anything issued from the
     * callbacks below. */
    if (queue) {
        waiting_adopt(c, &keep);
        waiting_adopt(c, &waiting);
    }
    int fail_waiters = !retry || (!c->ever_ready && !c->opt.wait_for_first_connect);
    aredis__ready_waiter *waiters = fail_waiters ? c->ready_waiters : NULL;
    if (fail_waiters) c->ready_waiters = NULL;
    aredis__ready_waiter *fwaiters = c->forked_waiters;
    c->forked_waiters = NULL;
    uint64_t gen = c->gen;

    /* First what happened to the connection, then each command's fate. */
    if (c->obs_mem)
        aredis__obs_conn(c, was_up ? AREDIS_CONN_DISCONNECT : AREDIS_CONN_CONNECT,
                         lost && code != AREDIS_ERR_OK ? code : AREDIS_ERR_CLOSED, 0, 0);
    if (lost) report(c, c->opt.on_error, code, why);
    report_disconnect(c, was_up, lost ? code : AREDIS_ERR_CLOSED, why);
    if (c->ps_hooks && c->ps_hooks->down)
        c->ps_hooks->down(c, code == AREDIS_ERR_OK ? AREDIS_ERR_CLOSED : code, why, !retry,
                          c->ps_state);
    fail_queue(c, &fail, code, why);
    fail_queue(c, &waiting, code, why);
    fail_queue(c, &forked, AREDIS_ERR_FORKED, "inherited across fork()");
    fail_queue(c, &hits, code, why);
    aredis__ready_notify_list(fwaiters, AREDIS_ERR_FORKED, "inherited across fork()");
    aredis__ready_notify_list(waiters, code == AREDIS_ERR_OK ? AREDIS_ERR_CLOSED : code, why);
    /* The attempt scheduled, told to the observer then the application
     * while it still stands (each may close or free the client). */
    if (reconnect_stands(c, retry, gen) && c->obs_mem)
        aredis__obs_conn(c, AREDIS_CONN_RECONNECT, code, c->attempt, c->reconnect_delay);
    if (reconnect_stands(c, retry, gen) && c->opt.on_reconnect_attempt)
        c->opt.on_reconnect_attempt(c, c->attempt, c->reconnect_delay, c->opt.cb_data);
    if (!c->free_pending) aredis__timer_update(c);
    /* The cache's application hears it was emptied once the client's own
     * state is settled (its on_invalidate may close or free the client). */
    if (flushed) aredis__csc_told(c->opt.cache);
    c->tearing_down = outer;
}

void aredis__teardown(aredis_client *c, aredis_err code, const char *detail) {
    teardown_ex(c, code, detail, TEARDOWN_LOST);
}

void aredis__teardown_refused(aredis_client *c, aredis_err code, const char *detail) {
    teardown_ex(c, code, detail, TEARDOWN_REFUSED);
}

/* ---- Writing ------------------------------------------------------------ */

static void set_mask(aredis_client *c, int mask) {
    if (c->io && c->io_mask != mask) {
        aredis__io_set(c->loop, c->io, mask);
        c->io_mask = mask;
    }
}

void aredis__arm_flush(aredis_client *c) {
    if (!c->flush_armed) {
        c->flush_armed = 1;
        aredis__defer_arm(c->loop, c->flush_defer);
    }
}

/*
 * The byte pipe: plain socket or TLS. Both return > 0 bytes, 0 for EOF
 * (reads), or -1 with *want set to the event to wait for, or *want = 0 on a
 * failure (then the teardown code and a message are set).
 */
static ssize_t conn_read(aredis_client *c, void *buf, size_t n, int *want, aredis_err *code,
                         char *msg, size_t msglen) {
    if (c->tls) {
        errno = 0;
        ssize_t r = aredis__tls_read(c->tls, buf, n, want, msg, msglen);
        if (r < 0 && !*want) *code = errno ? aredis__errno_code(errno) : AREDIS_ERR_TLS;
        return r;
    }
    for (;;) {
        ssize_t r = read(c->fd, buf, n);
        if (r >= 0) return r;
        int err = errno;
        if (err == EINTR) continue;
        *want = (err == EAGAIN || err == EWOULDBLOCK) ? AREDIS_EV_READ : 0;
        if (!*want) {
            *code = aredis__errno_code(err);
            snprintf(msg, msglen, "read failed: %s", strerror(err));
        }
        return -1;
    }
}

static ssize_t conn_write(aredis_client *c, const void *buf, size_t n, int *want, aredis_err *code,
                          char *msg, size_t msglen) {
    if (c->tls) {
        errno = 0;
        ssize_t r = aredis__tls_write(c->tls, buf, n, want, msg, msglen);
        if (r < 0 && !*want) *code = errno ? aredis__errno_code(errno) : AREDIS_ERR_TLS;
        return r;
    }
    for (;;) {
        /* send(MSG_NOSIGNAL), not write(): a peer that went away must give
         * EPIPE, not kill the application with SIGPIPE. */
        ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
        int err = r == 0 ? EPIPE : errno;
        if (r > 0) return r;
        if (err == EINTR) continue;
        *want = (err == EAGAIN || err == EWOULDBLOCK) ? AREDIS_EV_WRITE : 0;
        if (!*want) {
            *code = aredis__errno_code(err);
            snprintf(msg, msglen, "write failed: %s", strerror(err));
        }
        return -1;
    }
}

/* A read or write failed: a certificate refusal (TLS 1.3 reports a
 * missing client certificate only then) is for good; anything else on a
 * live link — a reset, a TLS alert or bad record — is a lost connection. */
static void conn_failed(aredis_client *c, aredis_err code, const char *msg) {
    if (c->tls && aredis__tls_refused(c->tls))
        aredis__teardown_refused(c, code, msg);
    else
        aredis__teardown(c, code, msg);
}

/*
 * What to watch once the connection is up: each direction waits for what
 * its last call asked for — normally readable to read and writable to
 * write, but TLS may need to write to finish a read (a key update, a
 * renegotiation) or to read to finish a write. Exactly that is watched:
 * no spinning on a writable socket for a write that waits to read, no
 * stall for a read that waits to write.
 */
static int read_event(const aredis_client *c) { return c->rd_want ? c->rd_want : AREDIS_EV_READ; }
static int write_event(const aredis_client *c) { return c->wr_want ? c->wr_want : AREDIS_EV_WRITE; }
static int has_output(const aredis_client *c) {
    return aredis__buf_used(&c->out) || (c->tls && aredis__tls_pending(c->tls));
}
static void update_mask(aredis_client *c) {
    set_mask(c, read_event(c) | (has_output(c) ? write_event(c) : 0));
}

/* Write what `out` holds. Returns -1 if the connection was torn down. */
static int do_write(aredis_client *c) {
    while (aredis__buf_used(&c->out)) {
        int want = 0;
        aredis_err code = AREDIS_ERR_IO;
        char msg[256];
        ssize_t n = conn_write(c, c->out.data + c->out.off, aredis__buf_used(&c->out), &want, &code,
                               msg, sizeof msg);
        if (n > 0) {
            c->wr_want = 0;
            c->last_tx = aredis__now_ms(c->loop);
            c->stats.write_calls++;
            c->stats.bytes_out += (uint64_t)n;
            c->written += (uint64_t)n;
            aredis__buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (want) {
            c->wr_want = want == AREDIS_EV_READ ? AREDIS_EV_READ : 0;
            update_mask(c);
            return 0;
        }
        conn_failed(c, code, msg);
        return -1;
    }
    /* TLS: ciphertext the socket did not take yet (our records, or a key
     * update answered from inside a read). */
    if (c->tls && aredis__tls_pending(c->tls)) {
        char msg[256];
        if (aredis__tls_flush(c->tls, msg, sizeof msg) < 0) {
            conn_failed(c, errno ? aredis__errno_code(errno) : AREDIS_ERR_TLS, msg);
            return -1;
        }
    }
    update_mask(c);
    return 0;
}

/* ---- Reading and dispatch ----------------------------------------------- */

static void maybe_finish_disconnect(aredis_client *c) {
    if (c->disconnecting && !c->sent.n && !c->waiting.n && !c->held.n && !aredis__buf_used(&c->out))
        teardown_ex(c, AREDIS_ERR_CLOSED, "disconnected", TEARDOWN_GRACEFUL);
}

/*
 * One reply of a batch that owes more: hand it to the batch's part hook
 * (unless the batch timed out or was cancelled) and keep the batch at the
 * head of `sent`.
 */
static void dispatch_part(aredis_client *c, aredis__cmd *cmd, aredis_reply *r) {
    aredis__batch *b = cmd->batch;
    size_t i = b->got++;
    if (!(cmd->flags & AREDIS__CMD_ORPHAN)) {
        if (i + 1 < b->n && !(cmd->flags & AREDIS__CMD_INTERNAL)) c->stats.replies++;
        /* An observed batch's outcome: its first error reply; a
         * transaction's EXEC error when it has one (EXECABORT). */
        if (r->type == AREDIS_REPLY_ERROR && (cmd->flags & AREDIS__CMD_OBSERVED) &&
            (!b->obs_status[0] || (i + 1 == b->n && (b->bflags & AREDIS__BATCH_OBS_TX))))
            aredis__error_prefix(r, b->obs_status, sizeof b->obs_status);
        if (b->part) b->part(c, r, i, cmd->data);
    }
    aredis_reply_release(r);
}

static void dispatch(aredis_client *c, aredis_reply *r) {
    /* Pushes and pub/sub traffic first: they are nobody's reply (push.c). */
    if ((r->type == AREDIS_REPLY_PUSH || (r->type == AREDIS_REPLY_ARRAY && c->proto == 2 &&
                                          (c->ps_hooks || c->subs_np || c->subs_shard))) &&
        aredis__push_route(c, r))
        return;
    /* A reply belongs to the oldest command whose bytes have all been
     * written (for a batch: the bytes of its next command); one with nothing
     * owed, or owed only by a command the server has not seen (issued from
     * a callback, not flushed yet), is surplus: a protocol error, never a
     * reply to hand out. */
    aredis__cmd *cmd = c->sent.head;
    uint64_t need = !cmd         ? 0
                    : cmd->batch ? cmd->start + cmd->batch->ends[cmd->batch->got]
                                 : cmd->end;
    if (!cmd || need > c->written) {
        aredis_reply_release(r);
        aredis__teardown(c, AREDIS_ERR_PROTOCOL,
                         cmd ? "reply received for a command not written yet (surplus reply)"
                             : "reply received with no command waiting (surplus reply)");
        return;
    }
    if (cmd->batch && cmd->batch->got + 1 < cmd->batch->n) {
        /* A subscribe's error reply is its only one: its confirmations
         * will not come. */
        if (!((cmd->batch->bflags & AREDIS__BATCH_PUBSUB) && r->type == AREDIS_REPLY_ERROR)) {
            dispatch_part(c, cmd, r);
            return;
        }
        cmd->batch->got = cmd->batch->n - 1;
    }
    aredis__cmdq_pop(&c->sent);
    aredis__cmd_unblock(c, cmd); /* answered: the server no longer blocks on it */
    if (!(cmd->batch && (cmd->batch->bflags & AREDIS__BATCH_PUBSUB))) c->ps_lenient = 0;
    if (cmd == c->barrier) c->barrier = NULL;
    if (cmd->flags & AREDIS__CMD_ORPHAN) {
        /* Timed out or cancelled: its callback already ran. Drop the reply. */
        if (--c->orphans == 0) c->orphan_since = 0;
        aredis_reply_release(r);
        aredis__cmd_recycle(c, cmd);
        return;
    }
    aredis__deadline_del(c, cmd);
    if (!(cmd->flags & AREDIS__CMD_INTERNAL)) c->stats.replies++;
    if (cmd->batch) {
        /* The last reply of a batch: its part, then the batch is done. */
        dispatch_part(c, cmd, r);
        aredis__complete(c, cmd, NULL, AREDIS_ERR_OK, NULL);
        aredis__cmd_recycle(c, cmd);
        return;
    }
    if (cmd->flags & AREDIS__CMD_STRIP)
        aredis__prefix_strip(r, cmd->strip, c->opt.prefix, c->prefix_len);
    aredis__complete(c, cmd, r, r->type == AREDIS_REPLY_ERROR ? AREDIS_ERR_SERVER : AREDIS_ERR_OK,
                     NULL);
    aredis__cmd_recycle(c, cmd);
    aredis_reply_release(r);
}

static void do_read(aredis_client *c) {
    uint64_t gen = c->gen;
    for (;;) {
        size_t avail;
        char *p = aredis_reader_space(c->reader, READ_CHUNK, &avail);
        if (!p) {
            aredis__teardown(c, AREDIS_ERR_NOMEM, "out of memory reading a reply");
            return;
        }
        int want = 0;
        aredis_err code = AREDIS_ERR_IO;
        char msg[256];
        ssize_t n = conn_read(c, p, avail, &want, &code, msg, sizeof msg);
        if (n == 0) {
            aredis__teardown(c, AREDIS_ERR_EOF, "server closed the connection");
            return;
        }
        if (n < 0) {
            if (!want) {
                conn_failed(c, code, msg);
                return;
            }
            /* What to wait for next; TLS may also have written (a key
             * update's answer) what the socket did not take yet. */
            c->rd_want = want == AREDIS_EV_WRITE ? AREDIS_EV_WRITE : 0;
            update_mask(c);
            return;
        }
        if (c->rd_want) {
            c->rd_want = 0;
            update_mask(c);
        }
        aredis_reader_commit(c->reader, (size_t)n);
        c->stats.read_calls++;
        c->stats.bytes_in += (uint64_t)n;
        c->last_rx = aredis__now_ms(c->loop);
        /* One clock read for the replies of this read (metrics' times). */
        if (c->obs) c->obs_now = aredis__mono_ns();
        for (;;) {
            void *r = NULL;
            aredis_err e = aredis_reader_get_reply(c->reader, &r);
            if (e != AREDIS_ERR_OK) {
                char why[200];
                snprintf(why, sizeof why, "%s", aredis_reader_errstr(c->reader));
                aredis__teardown(c, e, why);
                return;
            }
            if (!r) break;
            dispatch(c, r);
            if (c->gen != gen) return;
        }
        /* Commands held behind a barrier (or behind what waits for one) go
         * out once what they wait for has been answered. */
        if (c->waiting.n && c->state == AREDIS_STATE_READY && aredis__drain_waiting(c) != 0) return;
        maybe_finish_disconnect(c);
        if (c->gen != gen) return;
        /* A plain socket that gave less than asked for is drained. TLS may
         * hold decrypted bytes the socket no longer shows: read on until it
         * would block. */
        if (!c->tls && (size_t)n < avail) return;
    }
}

/* ---- Connecting --------------------------------------------------------- */

static int attach_fd(aredis_client *c, int fd) {
    c->fd = fd;
    c->io = aredis__io_new(c->loop, fd, on_io, c);
    if (!c->io) return -1;
    set_mask(c, AREDIS_EV_WRITE);
    return 0;
}

/* Drive the TLS handshake; when it is done, the Redis handshake starts. */
static void tls_step(aredis_client *c) {
    char msg[256];
    int r = aredis__tls_handshake(c->tls, msg, sizeof msg);
    if (r < 0) {
        conn_failed(c, AREDIS_ERR_TLS, msg);
    } else if (r > 0) {
        set_mask(c, r);
    } else {
        c->tls_handshaking = 0;
        set_mask(c, AREDIS_EV_READ);
        aredis__handshake_start(c);
    }
}

static void connected(aredis_client *c) {
    set_mask(c, AREDIS_EV_READ);
    c->last_rx = aredis__now_ms(c->loop);
    if (!c->opt.tls) {
        aredis__handshake_start(c);
        return;
    }
    char msg[256];
    /* The context is the options' CA, certificate and key: if those do not
     * load, no later attempt will do better. */
    if (!c->tls_ctx && aredis__tls_ctx_new(&c->opt, &c->tls_ctx, msg, sizeof msg) != 0) {
        aredis__teardown_refused(c, AREDIS_ERR_TLS, msg);
        return;
    }
    const char *name = c->opt.tls_server_name ? c->opt.tls_server_name : c->opt.host;
    c->tls = aredis__tls_new(c->tls_ctx, c->fd, name, msg, sizeof msg);
    if (!c->tls) {
        aredis__teardown_refused(c, AREDIS_ERR_TLS, msg);
        return;
    }
    c->tls_handshaking = 1;
    tls_step(c);
}

/* Try the next resolved address. Returns 0 when a connect is under way. */
static int try_next_addr(aredis_client *c, int *last_errno) {
    while (c->addr_next) {
        struct addrinfo *ai = c->addr_next;
        c->addr_next = ai->ai_next;
        int in_progress;
        int fd = aredis__connect_addr(ai, c->opt.keepalive_s, &in_progress);
        if (fd < 0) {
            *last_errno = errno;
            continue;
        }
        /* Even a connect that completed at once is reported by the first
         * writable event, so the handshake never starts inside connect(). */
        (void)in_progress;
        if (attach_fd(c, fd) != 0) {
            *last_errno = ENOMEM;
            return -1;
        }
        return 0;
    }
    return -1;
}

static void connect_failed(aredis_client *c, int err) {
    char msg[256];
    if (c->opt.unix_path)
        snprintf(msg, sizeof msg, "connect to %s failed: %s", c->opt.unix_path, strerror(err));
    else
        snprintf(msg, sizeof msg, "connect to %s:%d failed: %s", c->opt.host, c->opt.port,
                 strerror(err));
    aredis__teardown(c, aredis__errno_code(err), msg);
}

static void on_io(void *arg, int events) {
    aredis_client *c = arg;
    /* A copy in a forked child: inert, or it has just started over and
     * this event was the parent's connection's. */
    if (aredis__forked(c)) return;
    aredis__enter(c);
    uint64_t gen = c->gen;
    if (c->state == AREDIS_STATE_CONNECTING && c->tls_handshaking) {
        tls_step(c);
    } else if (c->state == AREDIS_STATE_CONNECTING) {
        int err = aredis__connect_result(c->fd);
        if (err == 0) {
            connected(c);
        } else {
            /* This address failed: drop its socket, keep the list, try the next. */
            aredis__io_free(c->loop, c->io);
            c->io = NULL;
            c->io_mask = 0;
            close(c->fd);
            c->fd = -1;
            int last = err;
            if (try_next_addr(c, &last) != 0) connect_failed(c, last);
        }
    } else {
        if (events & read_event(c)) {
            do_read(c);
            c->obs_now = 0; /* the read's time ends with its dispatch */
        }
        if (c->gen == gen && (events & write_event(c)) && c->fd >= 0 && has_output(c)) do_write(c);
    }
    aredis__leave(c);
}

/*
 * Commands the cache answered (aredis/cache.h): their callbacks, on a
 * loop turn after the call that issued them. Only those there now: a
 * callback's own hit waits for the next turn (a loop of hits must not keep
 * the loop from polling). A callback that closes or frees the client
 * fails the rest with CANCELLED (the teardown takes them).
 */
static void on_hits(void *arg) {
    aredis_client *c = arg;
    c->hits_armed = 0;
    if (c->fork_gen != aredis__fork_current() && !aredis__fork_adopt(c)) return; /* inert */
    aredis__enter(c);
    for (size_t n = c->hits.n; n && c->hits.head && !c->free_pending; n--) {
        aredis__cmd *cmd = aredis__cmdq_pop(&c->hits);
        cmd->flags &= ~AREDIS__CMD_QUEUED;
        aredis__complete(c, cmd, cmd->hit, AREDIS_ERR_OK, NULL);
        aredis__cmd_recycle(c, cmd);
    }
    aredis__leave(c);
}

/* A zero-delay timer, not the flush's defer: a loop turn runs its defers
 * and then may block in its poll, while a due timer makes the turn not
 * block — aredis_await() of a hit's future returns at once. */
void aredis__hits_arm(aredis_client *c) {
    if (!c->hits_armed) {
        c->hits_armed = 1;
        aredis__timer_arm(c->loop, c->hits_timer, 0);
    }
}

/*
 * The deferred flush: runs once per loop turn, before the loop blocks. It
 * also reports a connect that failed inside aredis_client_connect(), so
 * that no callback ever runs from inside the call that caused it.
 */
static void on_flush(void *arg) {
    aredis_client *c = arg;
    c->flush_armed = 0;
    if (c->fork_gen != aredis__fork_current() && !aredis__fork_adopt(c)) return; /* inert */
    aredis__enter(c);
    if (c->forked.n || c->forked_report) report_forked(c);
    if (c->free_pending) {
        aredis__leave(c);
        return;
    }
    if (c->state == AREDIS_STATE_CONNECTING && c->fd < 0 && !c->resolving && !c->locating) {
        if (c->deferred_errno) {
            connect_failed(c, c->deferred_errno);
        } else {
            char why[256];
            snprintf(why, sizeof why, "%s", c->last_detail);
            aredis__teardown(c, c->last_err.code, why);
        }
    } else if (c->fd >= 0 && c->state != AREDIS_STATE_CONNECTING && aredis__buf_used(&c->out)) {
        do_write(c);
    }
    aredis__timer_update(c);
    aredis__leave(c);
}

int aredis__drain_waiting(aredis_client *c) {
    aredis__cmd *cmd;
    int moved = 0;
    while ((cmd = c->waiting.head) && !c->barrier) {
        /* Someone else's command while a reservation holds the line: it
         * waits in `held` until the reservation ends. */
        if (c->reserved && aredis__cmd_owner(cmd) != c->reserved) {
            aredis__cmdq_pop(&c->waiting);
            cmd->flags = (cmd->flags & ~AREDIS__CMD_QUEUED) | AREDIS__CMD_HELD;
            aredis__cmdq_push(&c->held, cmd);
            continue;
        }
        /* A barrier goes out alone: only once every reply owed has come. */
        if ((cmd->flags & AREDIS__CMD_BARRIER) && c->sent.n) break;
        if (aredis__buf_append(&c->out, cmd->buf, cmd->len) != 0) {
            aredis__teardown(c, AREDIS_ERR_NOMEM, "out of memory queueing commands");
            return -1;
        }
        aredis__cmdq_pop(&c->waiting);
        cmd->flags &= ~AREDIS__CMD_QUEUED;
        cmd->start = c->appended;
        c->appended += cmd->len;
        cmd->end = c->appended;
        if (!(cmd->flags & AREDIS__CMD_RETRY)) {
            aredis__free(cmd->buf);
            cmd->buf = NULL;
        }
        cmd->flags |= AREDIS__CMD_SENT;
        if (cmd->flags & AREDIS__CMD_BARRIER) c->barrier = cmd;
        aredis__cmdq_push(&c->sent, cmd);
        moved = 1;
        if (cmd->batch) aredis__reservation_step(c, cmd);
    }
    if (moved) aredis__arm_flush(c);
    return 0;
}

void aredis__set_ready(aredis_client *c) {
    c->state = AREDIS_STATE_READY;
    c->conn_deadline = 0;
    c->attempt = 0;
    c->ever_ready = 1;
    /* Subscriptions are replayed first, then what waited goes out, in
     * issue order. */
    uint64_t g0 = c->gen;
    if (c->ps_hooks && c->ps_hooks->ready) c->ps_hooks->ready(c, c->ps_state);
    if (c->gen != g0) return;
    if (aredis__drain_waiting(c) != 0) return;
    aredis__arm_flush(c);
    c->stats.connects++;
    if (aredis__log_enabled(AREDIS_LOG_INFO)) {
        char where[160];
        aredis__log(AREDIS_LOG_INFO, "connected to %s (RESP%d)",
                    aredis__endpoint(c, where, sizeof where), c->proto);
    }
    c->last_rx = c->last_tx = aredis__now_ms(c->loop);
    uint64_t gen = c->gen;
    /* The observer first: if it closes the client, neither on_connect nor
     * on_disconnect runs for this connection (it tells itself the end). */
    if (c->obs_mem) {
        aredis__obs_conn(c, AREDIS_CONN_CONNECT, AREDIS_ERR_OK, 0, 0);
        if (c->gen != gen) return;
    }
    /* From here on_disconnect is owed when this connection ends. */
    c->up = 1;
    if (c->opt.on_connect) c->opt.on_connect(c, c->opt.cb_data);
    if (c->gen == gen) aredis__ready_notify(c, AREDIS_ERR_OK, NULL);
}

/* ---- Fork --------------------------------------------------------------- */

int aredis__fork_adopt(aredis_client *c) {
    if (c->fork_gen == aredis__fork_current()) return 1;
    if (!c->opt.reconnect_in_child || c->free_pending) return 0;
    /* The connection belongs to the parent: drop the child's copy (closing a
     * descriptor sends nothing; TLS sends no close_notify), and connect
     * anew. What the parent had pending fails with FORKED — on the next
     * loop turn (report_forked), never inside the caller's call. */
    c->fork_gen = aredis__fork_current();
    aredis_state was = c->state;
    c->gen++;
    aredis__held_to_waiting(c);
    mark_taken(&c->sent);
    mark_taken(&c->waiting);
    aredis__cmdq_append(&c->forked, &c->sent);
    aredis__cmdq_append(&c->forked, &c->waiting);
    aredis__ready_waiter **tail = &c->forked_waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c->ready_waiters;
    c->ready_waiters = NULL;
    c->forked_report = 1;
    c->forked_up = c->forked_up || c->up;
    /* The parent's connection tracked what the cache holds: nothing in it
     * will be invalidated for the child (emptied silently: nothing runs
     * inside the call that noticed the fork). */
    if (c->tracking) aredis__csc_flush(c->opt.cache);
    conn_reset(c);
    c->disconnecting = 0;
    c->attempt = 0;
    c->reconnect_at = 0;
    c->state = AREDIS_STATE_IDLE;
    if (was != AREDIS_STATE_IDLE && was != AREDIS_STATE_CLOSED) aredis__connect_start(c);
    aredis__arm_flush(c);
    return 1;
}

int aredis__forked(aredis_client *c) {
    if (c->fork_gen == aredis__fork_current()) return 0;
    aredis__fork_adopt(c);
    return 1;
}

/* The deferred half of aredis__fork_adopt(): report the parent's
 * connection as lost here, and fail what it had pending. */
static void report_forked(aredis_client *c) {
    const char *why = "inherited across fork(): reconnecting in the child";
    aredis__cmdq q = c->forked;
    memset(&c->forked, 0, sizeof c->forked);
    aredis__ready_waiter *w = c->forked_waiters;
    c->forked_waiters = NULL;
    int was_up = c->forked_up;
    c->forked_up = 0;
    c->forked_report = 0;
    report(c, c->opt.on_error, AREDIS_ERR_FORKED, why);
    report_disconnect(c, was_up, AREDIS_ERR_FORKED, why);
    fail_queue(c, &q, AREDIS_ERR_FORKED, why);
    aredis__ready_notify_list(w, AREDIS_ERR_FORKED, why);
}

/* ---- Public lifecycle --------------------------------------------------- */

static int copy_str(const char **dst, const char *src) {
    if (!src) {
        *dst = NULL;
        return 0;
    }
    *dst = aredis__strdup(src);
    return *dst ? 0 : -1;
}

void aredis__options_release(aredis_options *o) {
    aredis__free((void *)o->tls_ca_file);
    aredis__free((void *)o->tls_ca_path);
    aredis__free((void *)o->tls_cert_file);
    aredis__free((void *)o->tls_key_file);
    aredis__free((void *)o->tls_server_name);
    aredis__free((void *)o->host);
    aredis__free((void *)o->unix_path);
    aredis__free((void *)o->username);
    aredis__free((void *)o->password);
    aredis__free((void *)o->client_name);
    aredis__free((void *)o->prefix);
}

int aredis__options_dup(aredis_options *dst, const aredis_options *src) {
    *dst = *src;
    /* Replaced one by one: cleared first so that a failure frees only
     * what is ours. */
    dst->host = dst->unix_path = dst->username = dst->password = NULL;
    dst->client_name = dst->prefix = NULL;
    dst->tls_ca_file = dst->tls_ca_path = dst->tls_cert_file = NULL;
    dst->tls_key_file = dst->tls_server_name = NULL;
    if (copy_str(&dst->host, src->host) || copy_str(&dst->unix_path, src->unix_path) ||
        copy_str(&dst->username, src->username) || copy_str(&dst->password, src->password) ||
        copy_str(&dst->client_name, src->client_name) ||
        copy_str(&dst->tls_ca_file, src->tls_ca_file) ||
        copy_str(&dst->tls_ca_path, src->tls_ca_path) ||
        copy_str(&dst->tls_cert_file, src->tls_cert_file) ||
        copy_str(&dst->tls_key_file, src->tls_key_file) ||
        copy_str(&dst->tls_server_name, src->tls_server_name) ||
        copy_str(&dst->prefix, src->prefix && *src->prefix ? src->prefix : NULL)) {
        aredis__options_release(dst);
        memset(dst, 0, sizeof *dst);
        return -1;
    }
    return 0;
}

/* Redis refuses names with spaces, newlines or other special characters:
 * said here once, rather than by every connect's CLIENT SETNAME. */
static int valid_client_name(const char *s) {
    for (; *s; s++)
        if (*s < '!' || *s > '~') return 0;
    return 1;
}

static const char *invalid_options(const aredis_options *o) {
    if (!o->unix_path && !o->host) return "no host and no unix_path";
    if (!o->unix_path && (o->port < 1 || o->port > 65535)) return "port out of range (1-65535)";
    if (o->db < 0) return "db is negative";
    if (o->protocol != 2 && o->protocol != 3) return "protocol must be 2 or 3";
    if (o->username && !o->password) return "username without password";
    if (o->client_name && !valid_client_name(o->client_name))
        return "client_name holds spaces, newlines or special characters";
    if (o->prefix && strnlen(o->prefix, AREDIS__PREFIX_MAX + 1) > AREDIS__PREFIX_MAX)
        return "prefix longer than 1024 bytes";
    if (o->cache && o->protocol == 2)
        return "a cache needs RESP3 (protocol 3): invalidations must arrive on the connection "
               "whose replies they order against";
    return NULL;
}

aredis_client *aredis_client_new(aredis_loop *loop, const aredis_options *opts) {
    aredis_options def = AREDIS_OPTIONS_INIT;
    if (!loop) {
        aredis__call_fail(AREDIS_ERR_INVALID, "loop is NULL");
        return NULL;
    }
    if (!opts) opts = &def;
    const char *bad = invalid_options(opts);
    if (bad) {
        aredis__call_fail(AREDIS_ERR_INVALID, "invalid options: %s", bad);
        return NULL;
    }
    /* A cache serves the clients of one loop (aredis/cache.h). */
    if (opts->cache && aredis__csc_bind(opts->cache, loop) != AREDIS_ERR_OK) return NULL;
    aredis_client *c = aredis__calloc(1, sizeof *c);
    if (!c) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->loop = loop;
    if (aredis__options_dup(&c->opt, opts) != 0) goto fail;
    c->fd = -1;
    c->state = AREDIS_STATE_IDLE;
    c->last_err.detail = c->last_detail;
    c->fork_gen = aredis__fork_generation();
    c->rng = (uint64_t)(uintptr_t)c ^ ((uint64_t)getpid() << 32) ^ aredis__now_ms(loop);
    c->prefix_len = c->opt.prefix ? strlen(c->opt.prefix) : 0;
    c->sess_db = c->opt.db;
    c->csc.db = c->opt.db;
    c->timer = aredis__timer_new(loop, aredis__on_timer, c);
    c->flush_defer = aredis__defer_new(loop, on_flush, c);
    if (opts->cache) c->hits_timer = aredis__timer_new(loop, on_hits, c);
    if (!c->timer || !c->flush_defer || (opts->cache && !c->hits_timer)) goto fail;
    /* A shared TLS context: referenced, never rebuilt (aredis/tls.h). */
    c->tls_ctx = aredis__tls_ctx_ref(opts->tls_context);
    /* The cache too (bound to this loop above). */
    aredis__csc_ref(c->opt.cache);
    return c;
fail:
    aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    if (c->timer) aredis__timer_free(loop, c->timer);
    if (c->flush_defer) aredis__defer_free(loop, c->flush_defer);
    if (c->hits_timer) aredis__timer_free(loop, c->hits_timer);
    aredis__options_release(&c->opt);
    aredis__free(c);
    return NULL;
}

aredis_client *aredis__client_clone(aredis_client *c) {
    aredis_options o = c->opt;
    o.on_push = NULL;
    o.on_connect = NULL;
    o.on_disconnect = NULL;
    o.on_error = NULL;
    o.on_reconnect_attempt = NULL;
    o.cb_data = NULL;
    o.load_commands = 0; /* the subscribe family needs no table */
    o.cache = NULL;      /* it reads nothing the cache could keep */
    /* One TLS context for both (a reference each), when there is one. */
    if (c->tls_ctx) o.tls_context = c->tls_ctx;
    aredis_client *d = aredis_client_new(c->loop, &o);
    if (!d) return NULL;
    /* The same handshake, and the same way to find the server. */
    d->expect_role = c->expect_role;
    d->readonly = c->readonly;
    if (c->loc_ops && c->loc_ops->clone && c->loc_ops->clone(c, c->loc, d) != 0) {
        aredis_client_free(d);
        return NULL;
    }
    aredis__obs_clone(d, c);
    if (c->state != AREDIS_STATE_IDLE && c->state != AREDIS_STATE_CLOSED &&
        aredis_client_connect(d) != AREDIS_ERR_OK) {
        aredis_client_free(d);
        return NULL;
    }
    return d;
}

/*
 * A host name has been resolved (on the loop thread; see net/resolve.c):
 * carry on as aredis__connect_start() does for a numeric host, or fail the
 * attempt with RESOLVE — the reconnect policy decides what follows. Runs
 * only for the attempt that started the job: every teardown cancels it.
 */
static void on_resolved(void *arg, struct addrinfo *res, aredis_err code, const char *msg) {
    aredis_client *c = arg;
    c->resolving = NULL; /* the job is gone: nothing left to cancel */
    if (aredis__forked(c)) {
        /* A copy in a forked child: inert, or it has just started over. */
        if (res) freeaddrinfo(res);
        return;
    }
    aredis__enter(c);
    if (code != AREDIS_ERR_OK) {
        aredis__teardown(c, code, msg);
    } else {
        c->addrs = c->addr_next = res;
        /* As in connect_start: an earlier address may fail at once and a
         * later one be under way; only a total failure counts. */
        int err = 0;
        if (try_next_addr(c, &err) != 0) connect_failed(c, err ? err : ECONNREFUSED);
    }
    aredis__leave(c);
}

static void connect_go(aredis_client *c);

/*
 * Start one connect attempt. Failures found here are reported from the loop
 * (the deferred flush), never from inside the caller, and go through the
 * same teardown and reconnect decision as a failure found later. A host
 * name is resolved off the loop thread: the attempt then stays CONNECTING
 * (no socket yet) until on_resolved(), within the same connect deadline.
 * A client with a locator asks it for the address first (client/feature.h).
 */
void aredis__connect_start(aredis_client *c) {
    c->state = AREDIS_STATE_CONNECTING;
    c->reconnect_at = 0;
    c->deferred_errno = 0;
    if (c->obs_mem) aredis__obs_connect_start(c);
    uint64_t now = aredis__now_ms(c->loop);
    c->conn_deadline = c->opt.connect_timeout_ms ? now + c->opt.connect_timeout_ms : 0;
    if (c->loc_ops) {
        /* A locator says where to go first (features/sentinel.c); its
         * answer, aredis__located(), carries on with connect_go(). The
         * deadline above covers the wait. */
        c->located = 0;
        c->locating = 1;
        if (aredis__log_enabled(AREDIS_LOG_INFO))
            aredis__log(AREDIS_LOG_INFO, "locating %s (attempt %u)", c->loc_label, c->attempt + 1);
        c->loc_ops->locate(c, c->loc, c->conn_deadline);
        aredis__timer_update(c);
        return;
    }
    connect_go(c);
}

/* The connect itself, to the options' host/port or unix path. */
static void connect_go(aredis_client *c) {
    if (aredis__log_enabled(AREDIS_LOG_INFO)) {
        char where[160];
        if (c->attempt)
            aredis__log(AREDIS_LOG_INFO, "reconnecting to %s%s (attempt %u)",
                        aredis__endpoint(c, where, sizeof where), c->opt.tls ? " with TLS" : "",
                        c->attempt);
        else
            aredis__log(AREDIS_LOG_INFO, "connecting to %s%s",
                        aredis__endpoint(c, where, sizeof where), c->opt.tls ? " with TLS" : "");
    }
    int err = 0;
    c->reader = aredis_reader_new(NULL, NULL);
    if (!c->reader) {
        aredis__set_error(c, AREDIS_ERR_NOMEM, "out of memory");
        err = -1;
    } else if (c->opt.unix_path) {
        aredis_reader_set_limits(c->reader, &c->opt.limits);
        int in_progress;
        int fd = aredis__connect_unix(c->opt.unix_path, &in_progress);
        if (fd < 0) {
            err = errno;
        } else if (attach_fd(c, fd) != 0) {
            err = ENOMEM;
        }
        (void)in_progress; /* reported by the first writable event either way */
    } else {
        aredis_reader_set_limits(c->reader, &c->opt.limits);
        char msg[256];
        aredis__resolve_job *job = NULL;
        aredis_err rc = aredis__resolve_start(c->loop, c->opt.host, c->opt.port, on_resolved, c,
                                              &c->addrs, &job, msg, sizeof msg);
        if (rc != AREDIS_ERR_OK) {
            aredis__set_error(c, rc, "%s", msg);
            err = -1;
        } else if (job) {
            /* A name: resolved off the loop thread, on_resolved() carries
             * on. The connect deadline set above covers the wait. */
            c->resolving = job;
        } else {
            c->addr_next = c->addrs;
            /* An earlier address may have failed at once (err set) and a
             * later one be under way: only a total failure counts. */
            if (try_next_addr(c, &err) == 0)
                err = 0;
            else if (!err)
                err = ECONNREFUSED;
        }
    }
    if (err) {
        if (err > 0) aredis__set_error(c, aredis__errno_code(err), "%s", strerror(err));
        if (c->io) aredis__io_free(c->loop, c->io);
        c->io = NULL;
        c->io_mask = 0;
        if (c->fd >= 0) close(c->fd);
        c->fd = -1;
        c->deferred_errno = err > 0 ? err : 0;
        aredis__arm_flush(c);
    }
    aredis__timer_update(c);
}

aredis_err aredis_client_connect(aredis_client *c) {
    if (c->state == AREDIS_STATE_CLOSED || c->free_pending)
        return aredis__call_fail(AREDIS_ERR_CLOSED, "client closed");
    if (c->fork_gen != aredis__fork_current() && !aredis__fork_adopt(c))
        return aredis__call_fail(AREDIS_ERR_FORKED, "client inherited across fork()");
    if (c->state != AREDIS_STATE_IDLE)
        return aredis__call_fail(AREDIS_ERR_INVALID, "already %s", aredis_state_name(c->state));
    c->last_err.code = AREDIS_ERR_OK;
    c->last_detail[0] = '\0';
    c->attempt = 0;
    aredis__connect_start(c);
    return AREDIS_ERR_OK;
}

/* ---- Locators (client/feature.h) ----------------------------------------- */

int aredis__locator_attach(aredis_client *c, const aredis__locator_ops *ops, void *state,
                           const char *label) {
    char *l = aredis__strdup(label);
    if (!l) return -1;
    aredis__free(c->loc_label);
    c->loc_label = l;
    c->loc_ops = ops;
    c->loc = state;
    return 0;
}

void *aredis__locator_state(const aredis_client *c, const aredis__locator_ops *ops) {
    return c && c->loc_ops == ops ? c->loc : NULL;
}

void aredis__located(aredis_client *c, const char *host, int port) {
    if (!c->locating || c->free_pending) return;
    char *h = aredis__strdup(host);
    if (!h) {
        aredis__locate_failed(c, AREDIS_ERR_NOMEM, 0, "out of memory");
        return;
    }
    c->locating = 0;
    aredis__free((void *)c->opt.host);
    c->opt.host = h;
    c->opt.port = port;
    c->located = 1;
    aredis__enter(c);
    connect_go(c);
    aredis__leave(c);
}

void aredis__locate_failed(aredis_client *c, aredis_err code, int refused, const char *detail) {
    if (!c->locating || c->free_pending) return;
    c->locating = 0;
    aredis__enter(c);
    teardown_ex(c, code, detail, refused ? TEARDOWN_REFUSED : TEARDOWN_LOST);
    aredis__leave(c);
}

const char *aredis__locate_timeout(aredis_client *c, char *buf, size_t len) {
    char tried[256] = "";
    if (c->loc_ops->describe) c->loc_ops->describe(c, c->loc, tried, sizeof tried);
    snprintf(buf, len, "connect timed out locating %s%s%s", c->loc_label, tried[0] ? ": " : "",
             tried);
    return buf;
}

int aredis__client_relocate(aredis_client *c, const char *why) {
    if (c->free_pending || c->locating || c->disconnecting || c->state == AREDIS_STATE_IDLE ||
        c->state == AREDIS_STATE_CLOSED)
        return 0;
    aredis__enter(c);
    if (c->state == AREDIS_STATE_RECONNECTING) {
        /* Waiting out a backoff delay: the next attempt may succeed now. */
        uint64_t now = aredis__now_ms(c->loop);
        c->reconnect_at = now ? now : 1;
        aredis__timer_update(c);
    } else {
        aredis__teardown(c, AREDIS_ERR_IO, why);
    }
    aredis__leave(c);
    return 1;
}

void aredis__client_expect_role(aredis_client *c, int role) { c->expect_role = role; }
void aredis__client_set_readonly(aredis_client *c, int on) { c->readonly = on != 0; }

void aredis__client_mute(aredis_client *c) {
    c->opt.on_connect = NULL;
    c->opt.on_disconnect = NULL;
    c->opt.on_error = NULL;
    c->opt.on_reconnect_attempt = NULL;
    c->opt.on_push = NULL;
}

int aredis__cmd_unsent(const aredis__cmd *cmd) { return !(cmd->flags & AREDIS__CMD_SENT); }

void aredis_client_disconnect(aredis_client *c) {
    if (!c || c->state == AREDIS_STATE_IDLE || c->state == AREDIS_STATE_CLOSED) return;
    aredis__enter(c);
    c->disconnecting = 1;
    /* What a reservation holds must still go out for the disconnect to
     * finish: the reservation ends here (its owner's EXEC is refused). */
    if (c->reserved) {
        aredis__reservation_end(c);
        if (c->state == AREDIS_STATE_READY) aredis__drain_waiting(c);
    }
    if (c->state == AREDIS_STATE_RECONNECTING)
        teardown_ex(c, AREDIS_ERR_CLOSED, "disconnected while reconnecting", TEARDOWN_GRACEFUL);
    else if (c->state == AREDIS_STATE_READY)
        maybe_finish_disconnect(c);
    aredis__leave(c);
}

void aredis_client_close(aredis_client *c) {
    if (!c || c->state == AREDIS_STATE_CLOSED) return;
    aredis__enter(c);
    teardown_ex(c, AREDIS_ERR_CANCELLED, "client closed", TEARDOWN_FINAL);
    aredis__leave(c);
}

static void client_destroy(aredis_client *c) {
    if (c->ps_hooks && c->ps_hooks->destroy) c->ps_hooks->destroy(c, c->ps_state);
    if (c->loc_ops && c->loc_ops->destroy) c->loc_ops->destroy(c, c->loc);
    aredis__free(c->loc_label);
    if (c->obs_mem) aredis__obs_destroy(c);
    aredis__resolve_cancel(c->resolving); /* NULL by now: teardown cancelled it */
    aredis__cmdtable_free(c->cmdtable);
    aredis__tls_ctx_free(c->tls_ctx);
    aredis_cache_free(c->opt.cache);
    if (c->hits_timer) aredis__timer_free(c->loop, c->hits_timer);
    aredis__timer_free(c->loop, c->timer);
    aredis__defer_free(c->loop, c->flush_defer);
    aredis__buf_free(&c->out);
    aredis__client_free_queues(c);
    aredis__options_release(&c->opt);
    aredis__free(c);
}

void aredis_client_free(aredis_client *c) {
    if (!c || c->free_pending) return;
    aredis__enter(c);
    if (c->state != AREDIS_STATE_CLOSED) {
        if (c->fork_gen != aredis__fork_generation())
            teardown_ex(c, AREDIS_ERR_FORKED, "client freed in a forked child", TEARDOWN_FINAL);
        else
            teardown_ex(c, AREDIS_ERR_CANCELLED, "client freed", TEARDOWN_FINAL);
    }
    c->free_pending = 1;
    aredis__leave(c);
}

aredis_state aredis_client_state(const aredis_client *c) {
    if (c->disconnecting && c->state == AREDIS_STATE_READY) return AREDIS_STATE_CLOSING;
    return c->state;
}
int aredis_client_protocol(const aredis_client *c) { return c->proto; }
aredis__csc_conn *aredis__client_csc(aredis_client *c) { return &c->csc; }
const struct aredis__cmdtable *aredis__client_cmdtable(const aredis_client *c) {
    return c->cmdtable;
}
aredis_loop *aredis_client_loop(const aredis_client *c) { return c->loop; }
size_t aredis_client_pending(const aredis_client *c) { return c->user_pending; }
void *aredis_client_get_data(const aredis_client *c) { return c->data; }
void aredis_client_set_data(aredis_client *c, void *data) { c->data = data; }
void aredis_client_get_stats(const aredis_client *c, aredis_client_stats *out) { *out = c->stats; }
size_t aredis_client_known_commands(const aredis_client *c) {
    return aredis__cmdtable_size(c->cmdtable);
}
const aredis_error *aredis_client_last_error(const aredis_client *c) { return &c->last_err; }

/* ---- Observability (features/observe.c through client/feature.h) ---------- */

struct aredis__obs *aredis__obs_active(const aredis_client *c) {
    return c->obs;
}
struct aredis__obs *aredis__obs_state(const aredis_client *c) {
    return c->obs_mem;
}
void aredis__obs_install(aredis_client *c, struct aredis__obs *o, int mode, unsigned gen) {
    c->obs_mem = o;
    c->obs = mode != AREDIS__OBS_OFF ? o : NULL;
    c->obs_mode = mode;
    c->obs_gen = (uint32_t)gen;
    /* The entry remembered may belong to other metrics. No key matches
     * this one with length 0, not even "no key" (0): aredis__name_key. */
    c->obs_key = ~0ull;
    c->obs_klen = 0;
    c->obs_slot = NULL;
}
const aredis_options *aredis__client_opts(const aredis_client *c) { return &c->opt; }

int aredis__client_peer(const aredis_client *c, char *buf, size_t len, int *port) {
    return c->fd < 0 ? -1 : aredis__sock_peer(c->fd, c->opt.unix_path, buf, len, port);
}
