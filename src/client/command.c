/*
 * Issuing commands. When the client is READY a command is encoded straight
 * into the output buffer (no allocation beyond a recycled record: the fast
 * path); before that it is encoded into a buffer of its own and waits.
 */
#include <stdint.h>
#include <string.h>

#include "client/client_internal.h"
#include "loop/loop_internal.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/fork.h"
#include "util/log.h"
#include "util/redact.h"

static aredis_err encode(aredis__buf *b, int argc, const char *const *argv,
                         const size_t *argvlen, const char *fmt, va_list *ap) {
    if (fmt) {
        va_list cp;
        va_copy(cp, *ap);
        aredis_err e = aredis__write_vfmt(b, fmt, cp);
        va_end(cp);
        return e;
    }
    return aredis__write_argv(b, argc, argv, argvlen);
}

/* The command name of an encoded command ("*N\r\n$L\r\nNAME\r\n..."). */
static int encoded_name(const char *p, size_t len, const char **name, size_t *nlen) {
    const char *end = p + len;
    const char *q = memchr(p, '\n', len);
    if (!q || ++q >= end || *q != '$') return -1;
    size_t n = 0;
    for (q++; q < end && *q >= '0' && *q <= '9'; q++) n = n * 10 + (size_t)(*q - '0');
    if (q + 2 > end || q[0] != '\r' || q[1] != '\n' || (size_t)(end - (q + 2)) < n) return -1;
    *name = q + 2;
    *nlen = n;
    return 0;
}

/* DEBUG: the command as text, secrets redacted. Off the fast path. */
static void log_command(const aredis_client *c, const char *p, size_t len, int internal) {
    char text[320], where[160];
    aredis__redact_command(p, len, text, sizeof text);
    const char *what = !internal                            ? "command"
                       : c->state == AREDIS_STATE_HANDSHAKE ? "handshake"
                                                            : "internal";
    aredis__log(AREDIS_LOG_DEBUG, "%s %s: %s", aredis__endpoint(c, where, sizeof where), what,
                text);
}

/* Refusals at issue time: the callback never runs. */
static aredis_err admission(aredis_client *c, int internal) {
    if (c->free_pending || c->state == AREDIS_STATE_CLOSED) return AREDIS_ERR_CLOSED;
    if (c->fork_gen != aredis__fork_current() && !aredis__fork_ok(c)) return AREDIS_ERR_FORKED;
    if (internal) return AREDIS_ERR_OK;
    if (c->disconnecting) return AREDIS_ERR_CLOSED;
    if (c->state == AREDIS_STATE_IDLE) return AREDIS_ERR_NOT_CONNECTED;
    /* Disconnected and told not to queue: fail at once. */
    if (!c->opt.queue_during_reconnect && c->state != AREDIS_STATE_READY && c->attempt > 0)
        return AREDIS_ERR_NOT_CONNECTED;
    if (c->opt.max_queue_size && c->user_pending >= c->opt.max_queue_size)
        return AREDIS_ERR_QUEUE_FULL;
    return AREDIS_ERR_OK;
}

aredis_err aredis__submit(aredis_client *c, const aredis_cmd_opts *o, aredis_reply_fn *cb,
                          void *data, int internal, int argc, const char *const *argv,
                          const size_t *argvlen, const char *fmt, va_list *ap,
                          aredis__cmd **out) {
    aredis_err e = admission(c, internal);
    if (e != AREDIS_ERR_OK) return e;

    uint64_t timeout = 0;
    if (!(o && (o->flags & AREDIS_CMD_NO_TIMEOUT)))
        timeout = (o && o->timeout_ms) ? o->timeout_ms : internal ? 0 : c->opt.request_timeout_ms;
    /* Make room in the heap first, so nothing can fail after encoding. */
    if (timeout && aredis__heap_reserve(&c->deadlines, c->deadlines.n + 1) != 0)
        return AREDIS_ERR_NOMEM;
    aredis__cmd *cmd = aredis__cmd_new(c);
    if (!cmd) return AREDIS_ERR_NOMEM;
    cmd->cb = cb;
    cmd->data = data;
    if (internal) cmd->flags |= AREDIS__CMD_INTERNAL;

    int direct = c->state == AREDIS_STATE_READY || internal;
    aredis__buf own = {0};
    aredis__buf *b = direct ? &c->out : &own;
    /* Bytes in use before, not an absolute offset: growing the buffer may
     * reclaim its consumed prefix and move everything to the front. */
    size_t used = b->len - b->off;
    e = encode(b, argc, argv, argvlen, fmt, ap);
    if (e != AREDIS_ERR_OK) goto fail;
    size_t before = b->off + used; /* where this command starts now */
    size_t len = b->len - before;
    if (aredis__redact_is_sensitive(b->data + before, len)) cmd->flags |= AREDIS__CMD_SENSITIVE;
    if (aredis__log_enabled(AREDIS_LOG_DEBUG)) log_command(c, b->data + before, len, internal);

    /* Retryable: by flag, or read-only under retry_read_only. It keeps a copy
     * of its bytes to send again after a reconnect. */
    int retry = !internal && o && (o->flags & AREDIS_CMD_RETRYABLE);
    if (!retry && !internal && c->opt.retry_read_only) {
        const char *name;
        size_t nlen;
        retry = encoded_name(b->data + before, len, &name, &nlen) == 0 &&
                aredis__cmd_is_read_only(name, nlen);
    }
    if (direct) {
        if (retry) {
            cmd->buf = aredis__memdup0(b->data + before, len);
            if (!cmd->buf) {
                b->len = before; /* roll back: nothing was issued */
                e = AREDIS_ERR_NOMEM;
                goto fail;
            }
            cmd->len = len;
        }
        cmd->start = c->appended;
        c->appended += len;
        cmd->end = c->appended;
        cmd->flags |= AREDIS__CMD_SENT;
        aredis__cmdq_push(&c->sent, cmd);
        aredis__arm_flush(c);
    } else {
        cmd->buf = own.data;
        cmd->len = len;
        aredis__cmdq_push(&c->waiting, cmd);
    }
    if (retry) cmd->flags |= AREDIS__CMD_RETRY;
    if (!internal) {
        c->user_pending++;
        c->stats.commands++;
    }
    if (timeout) {
        aredis__heap_set(&c->deadlines, &cmd->dl, aredis__now_ms(c->loop) + timeout);
        aredis__timer_update(c);
    }
    if (out) *out = cmd;
    return AREDIS_ERR_OK;
fail:
    aredis__buf_free(&own);
    aredis__cmd_recycle(c, cmd);
    return e;
}

void aredis__cmd_abort(aredis_client *c, aredis__cmd *cmd, aredis_err code, const char *detail) {
    aredis__heap_del(&c->deadlines, &cmd->dl);
    if (cmd->flags & AREDIS__CMD_ORPHAN) return;
    cmd->flags |= AREDIS__CMD_ORPHAN;
    if (cmd->flags & AREDIS__CMD_SENT) {
        /* Its reply will still come: count it so dispatch drops it, and so
         * the dead-link timer can watch for a silent server. */
        if (c->orphans++ == 0) c->orphan_since = aredis__now_ms(c->loop);
    } else {
        /* Never sent: it will never be. The record stays in `waiting` and is
         * skipped when the queue is flushed. */
        aredis__free(cmd->buf);
        cmd->buf = NULL;
        cmd->len = 0;
    }
    if (code == AREDIS_ERR_TIMEOUT) c->stats.timeouts++;
    aredis__complete(c, cmd, NULL, code, detail);
    aredis__timer_update(c);
}

/* ---- Public command functions ------------------------------------------- */

aredis_err aredis_vcommand(aredis_client *c, aredis_reply_fn *cb, void *data, const char *fmt,
                           va_list ap) {
    va_list cp;
    va_copy(cp, ap);
    aredis_err e = aredis__submit(c, NULL, cb, data, 0, 0, NULL, NULL, fmt, &cp, NULL);
    va_end(cp);
    return e;
}

aredis_err aredis_command(aredis_client *c, aredis_reply_fn *cb, void *data, const char *fmt,
                          ...) {
    if (!fmt) return AREDIS_ERR_INVALID;
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis__submit(c, NULL, cb, data, 0, 0, NULL, NULL, fmt, &ap, NULL);
    va_end(ap);
    return e;
}

aredis_err aredis_command_argv(aredis_client *c, aredis_reply_fn *cb, void *data, int argc,
                               const char *const *argv, const size_t *argvlen) {
    return aredis__submit(c, NULL, cb, data, 0, argc, argv, argvlen, NULL, NULL, NULL);
}

aredis_err aredis_command_argv_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                  aredis_reply_fn *cb, void *data, int argc,
                                  const char *const *argv, const size_t *argvlen) {
    return aredis__submit(c, opts, cb, data, 0, argc, argv, argvlen, NULL, NULL, NULL);
}
