/*
 * Issuing commands. When the client is READY a command is encoded straight
 * into the output buffer (no allocation beyond a recycled record: the fast
 * path); before that it is encoded into a buffer of its own and waits.
 */
#include <stdint.h>
#include <string.h>

#include "client/client_internal.h"
#include "proto/prefix.h"
#include "loop/loop_internal.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/fork.h"
#include "util/log.h"
#include "util/redact.h"

/* Append one command to b; with a prefix, its keys prefixed (and *strip
 * says what to strip from the reply, proto/prefix.h). Without one: the
 * writer, behind a single branch. */
static inline aredis_err encode(aredis_client *c, int prefixed, aredis__buf *b, int argc,
                                const char *const *argv, const size_t *argvlen, const char *fmt,
                                va_list *ap, unsigned *strip) {
    aredis_err e;
    if (prefixed) {
        if (!fmt)
            return aredis__prefix_encode_argv(b, c->cmdtable, c->opt.prefix, c->prefix_len, argc,
                                              argv, argvlen, strip);
        va_list cp;
        va_copy(cp, *ap);
        e = aredis__prefix_encode_fmt(b, c->cmdtable, c->opt.prefix, c->prefix_len, fmt, cp, strip);
        va_end(cp);
        return e;
    }
    *strip = 0;
    if (fmt) {
        va_list cp;
        va_copy(cp, *ap);
        e = aredis__write_vfmt(b, fmt, cp);
        va_end(cp);
        return e;
    }
    return aredis__write_argv(b, argc, argv, argvlen);
}

aredis_err aredis__encode(aredis_client *c, aredis__buf *b, int argc, const char *const *argv,
                          const size_t *argvlen, const char *fmt, va_list *ap, unsigned *strip) {
    unsigned ignored;
    return encode(c, c->prefix_len != 0, b, argc, argv, argvlen, fmt, ap, strip ? strip : &ignored);
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
aredis_err aredis__admission(aredis_client *c, int internal) {
    if (c->free_pending || c->state == AREDIS_STATE_CLOSED)
        return aredis__call_fail(AREDIS_ERR_CLOSED, "client closed");
    if (c->fork_gen != aredis__fork_current() && !aredis__fork_adopt(c))
        return aredis__call_fail(AREDIS_ERR_FORKED, "client inherited across fork()");
    if (internal) return AREDIS_ERR_OK;
    if (c->disconnecting) return aredis__call_fail(AREDIS_ERR_CLOSED, "client disconnecting");
    if (c->state == AREDIS_STATE_IDLE)
        return aredis__call_fail(AREDIS_ERR_NOT_CONNECTED,
                                 "not connected: call aredis_client_connect() first");
    if (c->state != AREDIS_STATE_READY && c->attempt > 0) {
        /* Disconnected and told not to queue; or never connected yet and
         * the first attempt failed: fail at once, with why. */
        if (!c->opt.queue_during_reconnect || (!c->ever_ready && !c->opt.wait_for_first_connect))
            return aredis__call_fail(AREDIS_ERR_NOT_CONNECTED, "not connected: %s",
                                     c->last_detail[0] ? c->last_detail : "reconnecting");
    }
    /* Everything the client holds for commands counts: those waiting, in
     * flight, and timed out but still owed a reply. */
    if (c->opt.max_queue_size && c->user_pending + c->orphans >= c->opt.max_queue_size)
        return aredis__call_fail(AREDIS_ERR_QUEUE_FULL, "%zu commands pending (max_queue_size)",
                                 c->user_pending + c->orphans);
    return AREDIS_ERR_OK;
}

/* Put a command (bytes in cmd->buf) at the end of c->waiting. */
static void waiting_push(aredis_client *c, aredis__cmd *cmd) {
    cmd->flags |= AREDIS__CMD_QUEUED;
    aredis__cmdq_push(&c->waiting, cmd);
}

/*
 * The cache took a command (its bytes at `before` in `out`): answered (a
 * hit: delivered on a later loop turn, client.c's on_hits), to be sent behind
 * CLIENT CACHING YES (OPTIN), or refused.
 */
static __attribute__((noinline)) aredis_err cache_took(aredis_client *c, const aredis_cmd_opts *o,
                                                       aredis__cmd *cmd, int how, aredis_reply *hit,
                                                       size_t before, aredis__cmd **out) {
    aredis__buf *b = &c->out;
    size_t len = b->len - before;
    if (how == AREDIS__CACHE_HIT) {
        b->len = before;
        cmd->flags |= AREDIS__CMD_HIT | AREDIS__CMD_QUEUED; /* QUEUED: in c->hits */
        cmd->hit = hit;
        aredis__cmdq_push(&c->hits, cmd);
        c->user_pending++;
        aredis__hits_arm(c);
        if (out) *out = cmd;
        return AREDIS_ERR_OK;
    }
    if (how == AREDIS__CACHE_FAIL) {
        b->len = before;
        aredis__cmd_recycle(c, cmd);
        return aredis_call_error()->code;
    }
    /* OPTIN: the bytes go again, in a batch of their own. */
    char *copy = aredis__memdup0(b->data + before, len);
    void *ctx = cmd->data;
    b->len = before;
    aredis__cmd_recycle(c, cmd);
    if (!copy) {
        aredis__csc_abandon(c, ctx);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    aredis_err e = aredis__csc_optin_submit(c, o, copy, len, ctx, out);
    aredis__free(copy);
    return e;
}

/*
 * The rest of a submit, once the command is encoded and classified: its
 * deadline, whether it may be re-sent, the session note, and its place.
 */
static inline aredis_err submit_tail(aredis_client *c, const aredis_cmd_opts *o, aredis__cmd *cmd,
                                     size_t before, size_t len, unsigned cls, uint64_t block_ms,
                                     int internal, aredis__cmd **out) {
    const char *bytes = c->out.data + before;
    /* Its deadline: a per-command timeout, or the client's default (which
     * a blocking command extends by its own block time; block 0 = none). */
    uint64_t timeout = 0;
    int fifo = 0;
    if (!(o && (o->flags & AREDIS_CMD_NO_TIMEOUT))) {
        if (o && o->timeout_ms) {
            timeout = o->timeout_ms;
        } else if (internal || !c->opt.request_timeout_ms) {
            timeout = 0;
        } else if (cls & AREDIS__CC_BLOCKING) {
            timeout = block_ms ? c->opt.request_timeout_ms + block_ms : 0;
        } else {
            timeout = c->opt.request_timeout_ms;
            fifo = 1;
        }
    }
    /* Retryable: by flag, or read-only under retry_read_only. */
    int retry =
        !internal && ((o && (o->flags & AREDIS_CMD_RETRYABLE)) || (cls & AREDIS__CC_READ_ONLY));
    /* Session changes are noted before the bytes may move (place may
     * append them elsewhere). A refused placement leaves a note that errs
     * on the dirty side: harmless. */
    if (!internal && (cls & AREDIS__CC_SESSION)) aredis__session_note(c, bytes, len);
    aredis_err e = aredis__place(c, cmd, before, len, timeout, fifo, retry, internal);
    if (e == AREDIS_ERR_OK && out) *out = cmd;
    return e;
}

/* A user command on a client with a cache (aredis/cache.h): answered from
 * it, sent behind CLIENT CACHING YES, refused, or sent with its callback
 * wrapped (a read to store, a write to drop again when answered). */
static __attribute__((noinline)) aredis_err
submit_cached(aredis_client *c, const aredis_cmd_opts *o, aredis__cmd *cmd, size_t before,
              size_t len, unsigned cls, uint64_t block_ms, unsigned strip, aredis__cmd **out) {
    aredis_reply *hit = NULL;
    void *data = cmd->data;
    int k = aredis__csc_command(c, c->opt.cache, c->out.data + before, len, c->sess_multi, strip,
                                &cmd->cb, &cmd->data, &hit);
    if (k != AREDIS__CACHE_SEND) return cache_took(c, o, cmd, k, hit, before, out);
    void *wrapped = cmd->data != data ? cmd->data : NULL; /* the cache's */
    aredis_err e = submit_tail(c, o, cmd, before, len, cls, block_ms, 0, out);
    if (e != AREDIS_ERR_OK && wrapped) aredis__csc_abandon(c, wrapped);
    return e;
}

aredis_err aredis__submit(aredis_client *c, const aredis_cmd_opts *o, aredis_reply_fn *cb,
                          void *data, int internal, int argc, const char *const *argv,
                          const size_t *argvlen, const char *fmt, va_list *ap, aredis__cmd **out) {
    aredis_err e = aredis__admission(c, internal);
    if (e != AREDIS_ERR_OK) return e;

    aredis__cmd *cmd = aredis__cmd_new(c);
    if (!cmd) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    cmd->cb = cb;
    cmd->data = data;
    if (internal) cmd->flags |= AREDIS__CMD_INTERNAL;

    /* Encoded at the end of `out` in every state: when it cannot go out
     * yet, an exact-size copy waits and `out` is rolled back. Bytes in use
     * before, not an absolute offset: growing the buffer may reclaim its
     * consumed prefix and move everything to the front. */
    aredis__buf *b = &c->out;
    size_t used = b->len - b->off;
    unsigned strip;
    e = encode(c, c->prefix_len && !internal, b, argc, argv, argvlen, fmt, ap, &strip);
    if (e != AREDIS_ERR_OK) {
        aredis__cmd_recycle(c, cmd);
        if (e == AREDIS_ERR_UNSUPPORTED) return e; /* prefix: the detail is set */
        return aredis__call_fail(e, e == AREDIS_ERR_NOMEM ? "out of memory"
                                                          : "malformed command or format");
    }
    if (strip) {
        cmd->flags |= AREDIS__CMD_STRIP;
        cmd->strip = (unsigned char)strip;
    }
    size_t before = b->off + used; /* where this command starts now */
    size_t len = b->len - before;
    const char *bytes = b->data + before;

    const char *why = NULL;
    uint64_t block_ms = 0;
    int want_ro = !internal && c->opt.retry_read_only && !(o && (o->flags & AREDIS_CMD_RETRYABLE));
    unsigned cls = aredis__cmd_classify(bytes, len, want_ro, &why, &block_ms, c->cmdtable);
    if (cls & AREDIS__CC_SENSITIVE) cmd->flags |= AREDIS__CMD_SENSITIVE;
    if (!internal && (cls & AREDIS__CC_REFUSED)) {
        char name[32];
        aredis__redact_command(bytes, len, name, sizeof name);
        b->len = before;
        aredis__cmd_recycle(c, cmd);
        return aredis__call_fail(AREDIS_ERR_UNSUPPORTED, "%s: %s", name, why);
    }
    if (!internal && (e = aredis__pubsub_refuse(c, bytes, len)) != AREDIS_ERR_OK) {
        b->len = before;
        aredis__cmd_recycle(c, cmd);
        return e;
    }
    if (!internal && (cls & AREDIS__CC_BARRIER)) cmd->flags |= AREDIS__CMD_BARRIER;
    if (cls & AREDIS__CC_BLOCKING) {
        cmd->flags |= AREDIS__CMD_BLOCKING;
        c->blocking++;
    }
    if (aredis__log_enabled(AREDIS_LOG_DEBUG)) log_command(c, bytes, len, internal);

    /* A cache answers or wraps it (client-side caching): off the fast path. */
    if (__builtin_expect(c->opt.cache != NULL, 0) && !internal)
        return submit_cached(c, o, cmd, before, len, cls, block_ms, strip, out);
    return submit_tail(c, o, cmd, before, len, cls, block_ms, internal, out);
}

/* Put a command (bytes in cmd->buf) at the end of c->held. */
static void held_push(aredis_client *c, aredis__cmd *cmd) {
    cmd->flags |= AREDIS__CMD_HELD;
    aredis__cmdq_push(&c->held, cmd);
}

/*
 * A user command's operation starts (an observer or metrics are set). A
 * single command counted by metrics only, issued while a read is
 * dispatched (a reply callback issuing the next command: the busy case),
 * takes the fast path when its name is the one seen last: no call, no
 * clock read (client/feature.h). Everything else goes the slow way, to
 * features/observe.c.
 */
/* Count cmd in the entry the client remembers, from t0 (metrics only). */
static inline void observe_count(aredis_client *c, aredis__cmd *cmd, uint64_t t0) {
    cmd->ob.t0 = t0;
    cmd->ob.x = c->obs_slot;
    cmd->obs_gen = c->obs_gen;
    cmd->flags |= AREDIS__CMD_OBSERVED;
}

static __attribute__((noinline)) void observe_begin_slow(aredis_client *c, aredis__cmd *cmd,
                                                         const char *p, size_t len) {
    aredis__batch *bt = cmd->batch;
    if (bt && (bt->bflags & AREDIS__BATCH_UNOBSERVED)) return; /* the library's own */
    size_t n = 0;
    uint64_t key;
    if (c->obs_mode == AREDIS__OBS_METRICS && !bt && (key = aredis__name_key(p, len, &n)) != 0) {
        if (key != c->obs_key || n != c->obs_klen) {
            void *e = aredis__obs_lookup(c, p + 8, n);
            if (!e) return; /* out of memory: not counted */
            c->obs_key = key;
            c->obs_klen = n;
            c->obs_slot = e;
        }
        observe_count(c, cmd, c->obs_now ? c->obs_now : aredis__mono_ns());
        return;
    }
    int one = !bt || (bt->bflags & AREDIS__BATCH_PUBSUB);
    cmd->ob.t0 = c->obs_now;
    unsigned bits = aredis__obs_begin(c, &cmd->ob, &cmd->obs_gen, p, len, one ? NULL : bt->ends,
                                      one ? 1 : bt->n);
    if (bits & AREDIS__OBS_ON) cmd->flags |= AREDIS__CMD_OBSERVED;
    if (bits & AREDIS__OBS_REC) cmd->flags |= AREDIS__CMD_OBS_REC;
    if (bits & AREDIS__OBS_TX) bt->bflags |= AREDIS__BATCH_OBS_TX;
}

static __attribute__((noinline)) void observe_begin(aredis_client *c, aredis__cmd *cmd,
                                                    const char *p, size_t len) {
    size_t n = 0;
    uint64_t key;
    if (c->obs_mode == AREDIS__OBS_METRICS && !cmd->batch && c->obs_now &&
        (key = aredis__name_key(p, len, &n)) == c->obs_key && n == c->obs_klen) {
        observe_count(c, cmd, c->obs_now);
        return;
    }
    observe_begin_slow(c, cmd, p, len);
}

aredis_err aredis__place(aredis_client *c, aredis__cmd *cmd, size_t before, size_t len,
                         uint64_t timeout, int fifo, int retry, int internal) {
    aredis__buf *b = &c->out;
    const char *bytes = b->data + before;
    aredis_err e = AREDIS_ERR_NOMEM;
    if (timeout && !fifo && aredis__heap_reserve(&c->deadlines, c->deadlines.n + 1) != 0) goto fail;

    /* A retryable command keeps a copy of its bytes to send again after a
     * reconnect. Straight onto the wire when ready and nothing holds the
     * line: no barrier in flight, nothing waiting ahead, a barrier itself
     * only when no reply is owed, and no reservation by someone else.
     * Handshake commands always. */
    int held = !internal && c->reserved && aredis__cmd_owner(cmd) != c->reserved;
    int direct = internal || (c->state == AREDIS_STATE_READY && !held && !c->barrier &&
                              !c->waiting.n && (!(cmd->flags & AREDIS__CMD_BARRIER) || !c->sent.n));
    if (direct) {
        if (retry) {
            cmd->buf = aredis__memdup0(bytes, len);
            if (!cmd->buf) goto fail;
            cmd->len = len;
        }
        cmd->start = c->appended;
        c->appended += len;
        cmd->end = c->appended;
        cmd->flags |= AREDIS__CMD_SENT;
        if (cmd->flags & AREDIS__CMD_BARRIER) c->barrier = cmd;
        aredis__cmdq_push(&c->sent, cmd);
        aredis__arm_flush(c);
    } else {
        cmd->buf = aredis__memdup0(bytes, len);
        if (!cmd->buf) goto fail;
        cmd->len = len;
        b->len = before;
        if (held)
            held_push(c, cmd);
        else
            waiting_push(c, cmd);
    }
    if (retry) cmd->flags |= AREDIS__CMD_RETRY;
    if (!internal) {
        c->user_pending++;
        c->stats.commands++;
        /* Its operation starts (the one branch when nobody observes). */
        if (__builtin_expect(c->obs != NULL, 0))
            observe_begin(c, cmd, cmd->buf ? cmd->buf : bytes, len);
    }
    if (timeout) {
        uint64_t at = aredis__now_ms(c->loop) + timeout;
        aredis__deadline_set(c, cmd, at, fifo);
        /* The timer moves only for a deadline earlier than it is armed for
         * (an armed timer firing early just recomputes). */
        if (!c->timer_at || at < c->timer_at) aredis__timer_update(c);
    }
    /* A batch that takes or ends a reservation does so once in `out`; held
     * commands then follow it. */
    if (direct && cmd->batch && aredis__reservation_step(c, cmd) && c->state == AREDIS_STATE_READY)
        aredis__drain_waiting(c);
    return AREDIS_ERR_OK;
fail:
    b->len = before; /* roll back: nothing was issued */
    aredis__cmd_recycle(c, cmd);
    return aredis__call_fail(e, "out of memory");
}

void aredis__cmd_abort(aredis_client *c, aredis__cmd *cmd, aredis_err code, const char *detail) {
    aredis__deadline_del(c, cmd);
    if (cmd->flags & (AREDIS__CMD_ORPHAN | AREDIS__CMD_DONE)) return;
    if (cmd->flags & AREDIS__CMD_HIT) {
        /* A hit not delivered yet (cancelled): it was never sent. Still in
         * c->hits, it goes now; taken by a teardown, that recycles it. */
        aredis__complete(c, cmd, NULL, code, detail);
        if (cmd->flags & AREDIS__CMD_QUEUED) {
            aredis__cmdq_unlink(&c->hits, cmd);
            aredis__cmd_recycle(c, cmd);
        }
        return;
    }
    cmd->flags |= AREDIS__CMD_ORPHAN;
    if (code == AREDIS_ERR_TIMEOUT) c->stats.timeouts++;
    if (cmd->flags & AREDIS__CMD_SENT) {
        /* Its reply will still come: count it so dispatch drops it, and so
         * the dead-link timer can watch for a silent server. */
        if (c->orphans++ == 0) c->orphan_since = aredis__now_ms(c->loop);
        aredis__complete(c, cmd, NULL, code, detail);
    } else if (cmd->flags & (AREDIS__CMD_QUEUED | AREDIS__CMD_HELD)) {
        /* Never sent, and now never will be: unlinked and freed at once, so
         * an outage full of timed-out commands holds nothing for them. */
        aredis__cmdq_unlink((cmd->flags & AREDIS__CMD_HELD) ? &c->held : &c->waiting, cmd);
        cmd->flags &= ~(AREDIS__CMD_QUEUED | AREDIS__CMD_HELD);
        aredis__cmd_unblock(c, cmd);
        aredis__complete(c, cmd, NULL, code, detail);
        aredis__cmd_recycle(c, cmd);
    } else {
        /* In a list a teardown is failing: it recycles the record. */
        aredis__free(cmd->buf);
        cmd->buf = NULL;
        cmd->len = 0;
        aredis__complete(c, cmd, NULL, code, detail);
    }
    aredis__timer_update(c);
}

/* ---- Public command functions ------------------------------------------- */

/* The format forms, with or without options: one check, one submit. */
static aredis_err submit_fmt(aredis_client *c, const aredis_cmd_opts *opts, aredis_reply_fn *cb,
                             void *data, const char *fmt, va_list *ap) {
    if (!fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL");
    return aredis__submit(c, opts, cb, data, 0, 0, NULL, NULL, fmt, ap, NULL);
}

aredis_err aredis_vcommand(aredis_client *c, aredis_reply_fn *cb, void *data, const char *fmt,
                           va_list ap) {
    return aredis_vcommand_ex(c, NULL, cb, data, fmt, ap);
}

aredis_err aredis_command(aredis_client *c, aredis_reply_fn *cb, void *data, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = submit_fmt(c, NULL, cb, data, fmt, &ap);
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

aredis_err aredis_vcommand_ex(aredis_client *c, const aredis_cmd_opts *opts, aredis_reply_fn *cb,
                              void *data, const char *fmt, va_list ap) {
    va_list cp;
    va_copy(cp, ap);
    aredis_err e = submit_fmt(c, opts, cb, data, fmt, &cp);
    va_end(cp);
    return e;
}

aredis_err aredis_command_ex(aredis_client *c, const aredis_cmd_opts *opts, aredis_reply_fn *cb,
                             void *data, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = submit_fmt(c, opts, cb, data, fmt, &ap);
    va_end(ap);
    return e;
}
