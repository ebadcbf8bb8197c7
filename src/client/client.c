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

#include "client/client_internal.h"
#include "loop/loop_internal.h"
#include "net/resolve.h"
#include "net/socket.h"
#include "net/tls.h"
#include "util/alloc.h"
#include "util/fork.h"
#include "util/log.h"
#include "util/redact.h"

#define READ_CHUNK 16384

static void on_io(void *arg, int events);
static void on_flush(void *arg);
static void client_destroy(aredis_client *c);

const char *aredis_state_name(aredis_state s) {
    switch (s) {
#define AREDIS__STATE_NAME(n, str)                                             \
    case AREDIS_STATE_##n:                                                     \
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

/* The first word of a server error ("WRONGTYPE Operation against..."). */
static void error_prefix(const aredis_reply *r, char *out, size_t outlen) {
    size_t n = 0;
    while (n < r->len && n + 1 < outlen && r->str[n] != ' ') {
        out[n] = r->str[n];
        n++;
    }
    out[n] = '\0';
}

const char *aredis__endpoint(const aredis_client *c, char *buf, size_t len) {
    if (c->opt.unix_path) snprintf(buf, len, "%s", c->opt.unix_path);
    else if (strchr(c->opt.host, ':')) snprintf(buf, len, "[%s]:%d", c->opt.host, c->opt.port);
    else snprintf(buf, len, "%s:%d", c->opt.host, c->opt.port);
    return buf;
}

void aredis__complete(aredis_client *c, aredis__cmd *cmd, aredis_reply *r, aredis_err code,
                      const char *detail) {
    if (!(cmd->flags & AREDIS__CMD_INTERNAL)) c->user_pending--;
    aredis_reply_fn *cb = cmd->cb;
    cmd->cb = NULL;
    if (!cb) return;
    if (code == AREDIS_ERR_OK) {
        cb(c, r, NULL, cmd->data);
        return;
    }
    aredis_error e;
    e.code = code;
    e.prefix[0] = '\0';
    char safe[256];
    if (code == AREDIS_ERR_SERVER && r) {
        error_prefix(r, e.prefix, sizeof e.prefix);
        e.detail = r->str;
        /* A server may quote the arguments back ("Error in ACL SETUSER
         * modifier '>...'"): the detail of a secret-bearing command is
         * redacted; the reply itself is the server's words, unchanged. */
        if (cmd->flags & AREDIS__CMD_SENSITIVE) {
            aredis__redact_message(r->str, r->len, safe, sizeof safe);
            e.detail = safe;
        }
    } else {
        e.detail = detail ? detail : aredis_strerror(code);
    }
    cb(c, r, &e, cmd->data);
}

/* ---- Teardown ----------------------------------------------------------- */

static void close_socket(aredis_client *c) {
    /* A resolution under way is given up: its callback never runs, and its
     * thread frees the late result. */
    aredis__resolve_cancel(c->resolving);
    c->resolving = NULL;
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
 * Fail every command of a queue taken from a connection that is gone. The
 * records are first marked unsent, so a cancel from one of the callbacks
 * does not count an orphan on the next connection. A free() from inside a
 * callback turns the rest into CANCELLED: nothing else is reported as if
 * the client still existed.
 */
static void fail_queue(aredis_client *c, aredis__cmdq *q, aredis_err code, const char *detail) {
    for (aredis__cmd *cmd = q->head; cmd; cmd = cmd->next) cmd->flags &= ~AREDIS__CMD_SENT;
    aredis__cmd *cmd;
    while ((cmd = aredis__cmdq_pop(q))) {
        aredis__heap_del(&c->deadlines, &cmd->dl);
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

static void cmdq_append(aredis__cmdq *q, aredis__cmdq *more) {
    if (!more->head) return;
    if (q->tail) q->tail->next = more->head;
    else q->head = more->head;
    q->tail = more->tail;
    q->n += more->n;
    memset(more, 0, sizeof *more);
}

static void report(aredis_client *c, aredis_conn_error_fn *fn, aredis_err code, const char *why) {
    if (!fn) return;
    aredis_error e;
    e.code = code;
    e.detail = why;
    e.prefix[0] = '\0';
    fn(c, &e, c->opt.cb_data);
}

/*
 * Where a connection ends. LOST: a failure (the reconnect policy decides
 * what happens next); GRACEFUL: disconnect() finished; FINAL: close/free.
 */
typedef enum { TEARDOWN_LOST, TEARDOWN_GRACEFUL, TEARDOWN_FINAL } teardown_mode;

static void teardown_ex(aredis_client *c, aredis_err code, const char *detail,
                        teardown_mode mode) {
    char why[256];
    snprintf(why, sizeof why, "%s", detail ? detail : aredis_strerror(code));
    aredis_state was = c->state;
    int was_ready = was == AREDIS_STATE_READY;
    c->gen++;

    /* Take the queues first: callbacks may issue new commands. */
    aredis__cmdq sent = c->sent, waiting = c->waiting, keep = {0}, fail = {0};
    memset(&c->sent, 0, sizeof c->sent);
    memset(&c->waiting, 0, sizeof c->waiting);
    int level = code == AREDIS_ERR_PROTOCOL ? AREDIS_LOG_WARN : AREDIS_LOG_INFO;
    if (mode == TEARDOWN_LOST && aredis__log_enabled(level)) {
        char where[160];
        aredis__log(level, "%s %s: %s: %s",
                    was_ready ? "lost connection to" : "could not connect to",
                    aredis__endpoint(c, where, sizeof where), aredis_err_name(code), why);
    }
    int retry = mode == TEARDOWN_LOST && aredis__reconnect_decide(c, code);
    if (retry) aredis__reconnect_sort(c, &sent, &keep, &fail); /* needs `out` intact */
    else fail = sent;

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
    if (!retry) {
        c->disconnecting = 0;
        c->reconnect_at = 0;
        c->state = mode == TEARDOWN_FINAL ? AREDIS_STATE_CLOSED : AREDIS_STATE_IDLE;
        if (mode == TEARDOWN_LOST && c->attempt && c->opt.reconnect) {
            char gave[320];
            snprintf(gave, sizeof gave, "gave up after %u reconnect attempt(s): %.200s",
                     c->attempt, why);
            snprintf(why, sizeof why, "%.255s", gave);
            aredis__log(AREDIS_LOG_INFO, "reconnect: %s", why);
        } else if (mode == TEARDOWN_LOST && c->opt.reconnect) {
            aredis__log(AREDIS_LOG_INFO, "reconnect: not retrying after %s", aredis_err_name(code));
        }
        c->attempt = 0;
    }
    if (code != AREDIS_ERR_OK) aredis__set_error(c, code, "%s", why);

    /* What is kept waits for the reconnect, ahead of anything issued from the
     * callbacks below. */
    if (retry && c->opt.queue_during_reconnect) {
        cmdq_append(&c->waiting, &keep);
        cmdq_append(&c->waiting, &waiting);
    }
    aredis__ready_waiter *waiters = retry ? NULL : c->ready_waiters;
    if (!retry) c->ready_waiters = NULL;
    uint64_t gen = c->gen;

    /* First what happened to the connection, then each command's fate. */
    if (mode == TEARDOWN_LOST) report(c, c->opt.on_error, code, why);
    if (!c->free_pending && c->opt.on_disconnect &&
        (was_ready || (mode != TEARDOWN_LOST && was != AREDIS_STATE_IDLE &&
                       was != AREDIS_STATE_CLOSED && was != AREDIS_STATE_RECONNECTING))) {
        aredis_error e;
        e.code = mode == TEARDOWN_LOST ? code : AREDIS_ERR_CLOSED;
        e.detail = why;
        e.prefix[0] = '\0';
        c->opt.on_disconnect(c, &e, c->opt.cb_data);
    }
    fail_queue(c, &fail, code, why);
    fail_queue(c, &waiting, code, why);
    aredis__ready_notify_list(waiters, code == AREDIS_ERR_OK ? AREDIS_ERR_CLOSED : code, why);
    if (retry && c->gen == gen && c->state == AREDIS_STATE_RECONNECTING && !c->free_pending &&
        c->opt.on_reconnect_attempt) {
        c->opt.on_reconnect_attempt(c, c->attempt, c->reconnect_delay, c->opt.cb_data);
    }
    if (!c->free_pending) aredis__timer_update(c);
}

void aredis__teardown(aredis_client *c, aredis_err code, const char *detail) {
    teardown_ex(c, code, detail, TEARDOWN_LOST);
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

static ssize_t conn_write(aredis_client *c, const void *buf, size_t n, int *want,
                          aredis_err *code, char *msg, size_t msglen) {
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

/* Write what `out` holds. Returns -1 if the connection was torn down. */
static int do_write(aredis_client *c) {
    while (aredis__buf_used(&c->out)) {
        int want = 0;
        aredis_err code = AREDIS_ERR_IO;
        char msg[256];
        ssize_t n = conn_write(c, c->out.data + c->out.off, aredis__buf_used(&c->out), &want,
                               &code, msg, sizeof msg);
        if (n > 0) {
            c->last_tx = aredis__now_ms(c->loop);
            c->stats.write_calls++;
            c->stats.bytes_out += (uint64_t)n;
            c->written += (uint64_t)n;
            aredis__buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (want) {
            /* TLS may want to read before it can write: watch both. */
            set_mask(c, AREDIS_EV_READ | AREDIS_EV_WRITE);
            return 0;
        }
        aredis__teardown(c, code, msg);
        return -1;
    }
    set_mask(c, AREDIS_EV_READ);
    return 0;
}

/* ---- Reading and dispatch ----------------------------------------------- */

static void maybe_finish_disconnect(aredis_client *c) {
    if (c->disconnecting && !c->sent.n && !c->waiting.n && !aredis__buf_used(&c->out))
        teardown_ex(c, AREDIS_ERR_CLOSED, "disconnected", TEARDOWN_GRACEFUL);
}

static void dispatch(aredis_client *c, aredis_reply *r) {
    if (r->type == AREDIS_REPLY_PUSH) {
        if (c->opt.on_push) c->opt.on_push(c, r, c->opt.cb_data);
        aredis_reply_release(r);
        return;
    }
    aredis__cmd *cmd = aredis__cmdq_pop(&c->sent);
    if (!cmd) {
        aredis_reply_release(r);
        aredis__teardown(c, AREDIS_ERR_PROTOCOL, "reply received with no command waiting");
        return;
    }
    if (cmd->flags & AREDIS__CMD_ORPHAN) {
        /* Timed out or cancelled: its callback already ran. Drop the reply. */
        if (--c->orphans == 0) c->orphan_since = 0;
        aredis_reply_release(r);
        aredis__cmd_recycle(c, cmd);
        return;
    }
    aredis__heap_del(&c->deadlines, &cmd->dl);
    if (!(cmd->flags & AREDIS__CMD_INTERNAL)) c->stats.replies++;
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
            if (!want) aredis__teardown(c, code, msg);
            return;
        }
        aredis_reader_commit(c->reader, (size_t)n);
        c->stats.read_calls++;
        c->stats.bytes_in += (uint64_t)n;
        c->last_rx = aredis__now_ms(c->loop);
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
        aredis__teardown(c, AREDIS_ERR_TLS, msg);
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
    if (!c->tls_ctx && aredis__tls_ctx_new(&c->opt, &c->tls_ctx, msg, sizeof msg) != 0) {
        aredis__teardown(c, AREDIS_ERR_TLS, msg);
        return;
    }
    const char *name = c->opt.tls_server_name ? c->opt.tls_server_name : c->opt.host;
    c->tls = aredis__tls_new(c->tls_ctx, c->fd, name, msg, sizeof msg);
    if (!c->tls) {
        aredis__teardown(c, AREDIS_ERR_TLS, msg);
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
    if (!aredis__fork_ok(c)) return; /* a copy in a forked child: inert */
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
        if (events & AREDIS_EV_READ) do_read(c);
        if (c->gen == gen && (events & AREDIS_EV_WRITE) && c->fd >= 0) do_write(c);
    }
    aredis__leave(c);
}

/*
 * The deferred flush: runs once per loop turn, before the loop blocks. It
 * also reports a connect that failed inside aredis_client_connect(), so
 * that no callback ever runs from inside the call that caused it.
 */
static void on_flush(void *arg) {
    aredis_client *c = arg;
    c->flush_armed = 0;
    if (!aredis__fork_ok(c)) return;
    aredis__enter(c);
    if (c->state == AREDIS_STATE_CONNECTING && c->fd < 0 && !c->resolving) {
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

void aredis__set_ready(aredis_client *c) {
    c->state = AREDIS_STATE_READY;
    c->conn_deadline = 0;
    c->attempt = 0;
    aredis__cmd *cmd;
    /* What waited goes out now, in issue order, behind nothing. */
    while ((cmd = aredis__cmdq_pop(&c->waiting))) {
        if (cmd->flags & AREDIS__CMD_ORPHAN) {
            aredis__cmd_recycle(c, cmd);
            continue;
        }
        if (aredis__buf_append(&c->out, cmd->buf, cmd->len) != 0) {
            aredis__cmdq_push(&c->waiting, cmd); /* keep it: teardown fails it */
            aredis__teardown(c, AREDIS_ERR_NOMEM, "out of memory queueing commands");
            return;
        }
        cmd->start = c->appended;
        c->appended += cmd->len;
        cmd->end = c->appended;
        if (!(cmd->flags & AREDIS__CMD_RETRY)) {
            aredis__free(cmd->buf);
            cmd->buf = NULL;
        }
        cmd->flags |= AREDIS__CMD_SENT;
        aredis__cmdq_push(&c->sent, cmd);
    }
    aredis__arm_flush(c);
    c->stats.connects++;
    if (aredis__log_enabled(AREDIS_LOG_INFO)) {
        char where[160];
        aredis__log(AREDIS_LOG_INFO, "connected to %s (RESP%d)",
                    aredis__endpoint(c, where, sizeof where), c->proto);
    }
    c->last_rx = c->last_tx = aredis__now_ms(c->loop);
    uint64_t gen = c->gen;
    aredis__ready_notify(c, AREDIS_ERR_OK, NULL);
    if (c->gen == gen && c->opt.on_connect) c->opt.on_connect(c, c->opt.cb_data);
}

/* ---- Fork --------------------------------------------------------------- */

int aredis__fork_ok(aredis_client *c) {
    if (c->fork_gen == aredis__fork_current()) return 1;
    if (!c->opt.reconnect_in_child) return 0;
    /* The connection belongs to the parent: drop the child's copy (closing a
     * descriptor sends nothing; TLS sends no close_notify), fail what the
     * parent had pending here with FORKED, and connect anew. */
    aredis_state was = c->state;
    c->fork_gen = aredis__fork_current();
    aredis__enter(c);
    aredis__teardown(c, AREDIS_ERR_FORKED, "inherited across fork(): reconnecting in the child");
    if (!c->free_pending && c->state == AREDIS_STATE_IDLE && was != AREDIS_STATE_IDLE &&
        was != AREDIS_STATE_CLOSED)
        aredis__connect_start(c);
    /* A callback above may have freed the client: leave() then destroyed it
     * and it must not be read again. */
    if (aredis__leave(c)) return 0;
    return !c->free_pending;
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

static void free_opts(aredis_options *o) {
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
}

aredis_client *aredis_client_new(aredis_loop *loop, const aredis_options *opts) {
    aredis_options def = AREDIS_OPTIONS_INIT;
    if (!loop) return NULL;
    if (!opts) opts = &def;
    if ((!opts->unix_path && (!opts->host || opts->port < 1 || opts->port > 65535)) ||
        opts->db < 0 || (opts->protocol != 2 && opts->protocol != 3) ||
        (opts->username && !opts->password))
        return NULL;
    aredis_client *c = aredis__calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = loop;
    c->opt = *opts;
    /* The copies below replace the caller's pointers one by one; clear them
     * first so that a failure frees only what is ours. */
    c->opt.host = c->opt.unix_path = c->opt.username = c->opt.password = NULL;
    c->opt.client_name = NULL;
    c->opt.tls_ca_file = c->opt.tls_ca_path = c->opt.tls_cert_file = NULL;
    c->opt.tls_key_file = c->opt.tls_server_name = NULL;
    c->fd = -1;
    c->state = AREDIS_STATE_IDLE;
    c->last_err.detail = c->last_detail;
    c->fork_gen = aredis__fork_generation();
    c->rng = (uint64_t)(uintptr_t)c ^ ((uint64_t)getpid() << 32) ^ aredis__now_ms(loop);
    if (copy_str(&c->opt.host, opts->host) || copy_str(&c->opt.unix_path, opts->unix_path) ||
        copy_str(&c->opt.username, opts->username) ||
        copy_str(&c->opt.password, opts->password) ||
        copy_str(&c->opt.client_name, opts->client_name) ||
        copy_str(&c->opt.tls_ca_file, opts->tls_ca_file) ||
        copy_str(&c->opt.tls_ca_path, opts->tls_ca_path) ||
        copy_str(&c->opt.tls_cert_file, opts->tls_cert_file) ||
        copy_str(&c->opt.tls_key_file, opts->tls_key_file) ||
        copy_str(&c->opt.tls_server_name, opts->tls_server_name))
        goto fail;
    c->timer = aredis__timer_new(loop, aredis__on_timer, c);
    c->flush_defer = aredis__defer_new(loop, on_flush, c);
    if (!c->timer || !c->flush_defer) goto fail;
    return c;
fail:
    if (c->timer) aredis__timer_free(loop, c->timer);
    if (c->flush_defer) aredis__defer_free(loop, c->flush_defer);
    free_opts(&c->opt);
    aredis__free(c);
    return NULL;
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
    uint64_t gen = c->gen;
    if (!aredis__fork_ok(c) || c->gen != gen) {
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

/*
 * Start one connect attempt. Failures found here are reported from the loop
 * (the deferred flush), never from inside the caller, and go through the
 * same teardown and reconnect decision as a failure found later. A host
 * name is resolved off the loop thread: the attempt then stays CONNECTING
 * (no socket yet) until on_resolved(), within the same connect deadline.
 */
void aredis__connect_start(aredis_client *c) {
    c->state = AREDIS_STATE_CONNECTING;
    c->reconnect_at = 0;
    c->deferred_errno = 0;
    uint64_t now = aredis__now_ms(c->loop);
    c->conn_deadline = c->opt.connect_timeout_ms ? now + c->opt.connect_timeout_ms : 0;
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
            if (try_next_addr(c, &err) == 0) err = 0;
            else if (!err) err = ECONNREFUSED;
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
    if (c->state == AREDIS_STATE_CLOSED || c->free_pending) return AREDIS_ERR_CLOSED;
    if (!aredis__fork_ok(c)) return AREDIS_ERR_FORKED;
    if (c->state != AREDIS_STATE_IDLE) return AREDIS_ERR_INVALID;
    c->last_err.code = AREDIS_ERR_OK;
    c->last_detail[0] = '\0';
    c->attempt = 0;
    aredis__connect_start(c);
    return AREDIS_ERR_OK;
}

void aredis_client_disconnect(aredis_client *c) {
    if (c->state == AREDIS_STATE_IDLE || c->state == AREDIS_STATE_CLOSED) return;
    aredis__enter(c);
    c->disconnecting = 1;
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
    aredis__resolve_cancel(c->resolving); /* NULL by now: teardown cancelled it */
    aredis__tls_ctx_free(c->tls_ctx);
    aredis__timer_free(c->loop, c->timer);
    aredis__defer_free(c->loop, c->flush_defer);
    aredis__buf_free(&c->out);
    aredis__client_free_queues(c);
    free_opts(&c->opt);
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
aredis_loop *aredis_client_loop(const aredis_client *c) { return c->loop; }
size_t aredis_client_pending(const aredis_client *c) { return c->user_pending; }
void *aredis_client_get_data(const aredis_client *c) { return c->data; }
void aredis_client_set_data(aredis_client *c, void *data) { c->data = data; }
void aredis_client_get_stats(const aredis_client *c, aredis_client_stats *out) {
    *out = c->stats;
}
const aredis_error *aredis_client_last_error(const aredis_client *c) { return &c->last_err; }
