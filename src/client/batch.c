/*
 * Batches and reservations: what pipelines and transactions are made of
 * (the operations of client/feature.h).
 *
 * A batch is one command record carrying several commands: their bytes are
 * appended to the output in one piece, so nothing issued elsewhere can come
 * between them, and the record stays at the head of `sent` until its last
 * reply. Each reply is checked against the end of its own command (a reply
 * for bytes not written yet is surplus), handed to the batch's part hook,
 * and the batch completes once. A batch is never sent twice: a connection
 * lost after its first byte was written fails it whole.
 *
 * A reservation gives the connection to one owner between two of its
 * batches (a transaction's WATCH ... EXEC): everyone else's commands wait in
 * `held`, in order, and go out right behind the batch that ends it. A lost
 * connection ends it too (the server forgets a WATCH with its connection),
 * and the owner's commands not yet written then fail instead of running on
 * the next connection without their WATCH.
 */
#include <stdint.h>
#include <string.h>

#include "client/client_internal.h"
#include "client/feature.h"
#include "proto/prefix.h"
#include "loop/loop_internal.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/redact.h"

/* ---- Reservations ------------------------------------------------------- */

void aredis__held_to_waiting(aredis_client *c) {
    for (aredis__cmd *cmd = c->held.head; cmd; cmd = cmd->next)
        cmd->flags = (cmd->flags & ~AREDIS__CMD_HELD) | AREDIS__CMD_QUEUED;
    /* Ahead of what still waits, not behind it: held commands were issued
     * first (taken from the front of `waiting` by a drain that a release
     * further down ends, or held while it was empty). Behind, a later
     * command — a transaction's EXEC — could go out before the WATCH it
     * belongs to. */
    aredis__cmdq_append(&c->held, &c->waiting);
    c->waiting = c->held;
    memset(&c->held, 0, sizeof c->held);
}

void aredis__reservation_end(aredis_client *c) {
    c->reserved = NULL;
    aredis__held_to_waiting(c);
}

int aredis__reservation_step(aredis_client *c, aredis__cmd *cmd) {
    aredis__batch *b = cmd->batch;
    /* Under its owner's reservation (taken by an earlier batch): if the
     * connection is lost before this one is written, it must not go out
     * again without that WATCH (aredis__reconnect_sort). */
    if (b->owner && c->reserved == b->owner) b->bflags |= AREDIS__BATCH_UNDER;
    /* No new reservation once disconnect() is under way: it must let
     * everything out to finish, and no EXEC or UNWATCH can be issued any
     * more to end one. */
    if ((b->bflags & AREDIS__BATCH_RESERVE) && !c->reserved && !c->disconnecting)
        c->reserved = b->owner;
    if ((b->bflags & AREDIS__BATCH_RELEASE) && b->owner && c->reserved == b->owner) {
        aredis__reservation_end(c);
        return 1;
    }
    return 0;
}

int aredis__cmd_was_sent(const aredis_client *c, const aredis__cmd *cmd) {
    return (cmd->flags & AREDIS__CMD_SENT) && cmd->end <= c->written;
}

int aredis__reserved_by(const aredis_client *c, const void *owner) {
    return owner && c->reserved == owner;
}

uint64_t aredis__client_now(const aredis_client *c) { return aredis__now_ms(c->loop); }

/* ---- Batches ------------------------------------------------------------ */

aredis_err aredis__batch_check(const char *resp, size_t len, uint64_t *block_ms, int *block_forever,
                               int *sensitive, int *session) {
    const char *why = NULL;
    uint64_t b = 0;
    unsigned cls = aredis__cmd_classify(resp, len, 0, &why, &b, NULL);
    if (cls & (AREDIS__CC_REFUSED | AREDIS__CC_BARRIER)) {
        char name[32];
        aredis__redact_command(resp, len, name, sizeof name);
        return aredis__call_fail(AREDIS_ERR_UNSUPPORTED, "%s: %s", name,
                                 why ? why
                                     : "AUTH and HELLO are sent alone, never inside a pipeline "
                                       "or transaction");
    }
    if (cls & AREDIS__CC_BLOCKING) {
        if (b == 0)
            *block_forever = 1;
        else
            *block_ms += b;
    }
    if (cls & AREDIS__CC_SENSITIVE) *sensitive = 1;
    if (cls & AREDIS__CC_SESSION) *session = 1;
    return AREDIS_ERR_OK;
}

/* DEBUG: each command of a batch as text, secrets redacted. */
static void log_batch(const aredis_client *c, const aredis__batch_spec *s) {
    char where[160];
    aredis__endpoint(c, where, sizeof where);
    size_t start = 0;
    for (size_t i = 0; i < s->n; i++) {
        char text[320];
        aredis__redact_command(s->bytes + start, s->ends[i] - start, text, sizeof text);
        aredis__log(AREDIS_LOG_DEBUG, "%s batch %zu/%zu: %s", where, i + 1, s->n, text);
        start = s->ends[i];
    }
}

static aredis_err submit_tail(aredis_client *c, const aredis__batch_spec *s, aredis__cmd *cmd,
                              aredis__cmd **out, int pubsub, int internal);

aredis_err aredis__batch_submit(aredis_client *c, const aredis__batch_spec *s, aredis__cmd **out) {
    if (!s->n || !s->len || !s->ends || s->ends[s->n - 1] != s->len)
        return aredis__call_fail(AREDIS_ERR_INVALID, "empty or malformed batch");
    int internal = (s->flags & AREDIS__BATCH_INTERNAL) != 0;
    aredis_err e = aredis__admission(c, internal);
    /* A batch that only ends its owner's reservation (a transaction's own
     * UNWATCH: RELEASE, no callback) is what lets every held command go:
     * refused for max_queue_size — which the held commands fill — the
     * client would wait for good. */
    if (e == AREDIS_ERR_QUEUE_FULL &&
        (((s->flags & AREDIS__BATCH_RELEASE) && !s->done) || (s->flags & AREDIS__BATCH_UNBOUNDED)))
        e = AREDIS_ERR_OK;
    if (e != AREDIS_ERR_OK) return e;
    /* On a RESP2 subscribed connection, whether the commands inside may run
     * at all; then what they change (session.c). Both are rare: the
     * commands are only looked at again when one of them applies. A
     * transaction's own commands are not refused: its EXEC or UNWATCH may
     * be what ends the reservation a held subscribe waits behind (and a
     * server in subscribed mode answers them with an error, never with a
     * reply that looks like a message). */
    int pubsub = (s->flags & AREDIS__BATCH_PUBSUB) != 0;
    int refusing = !internal && !pubsub && !s->owner && aredis__pubsub_refusing(c);
    int noting = !internal && s->session;
    /* With a cache (aredis/cache.h): a command that would blind it is
     * refused; a write drops its keys now and again when the batch is
     * answered. */
    int caching =
        __builtin_expect(c->opt.cache != NULL, 0) && !internal && !(s->flags & AREDIS__BATCH_CACHE);
    /* Every refusal before anything is noted: a refused batch changes
     * nothing. */
    for (size_t i = 0, start = 0; (refusing || caching) && i < s->n; start = s->ends[i++]) {
        const char *one = s->bytes + start;
        size_t len = s->ends[i] - start;
        if (refusing && (e = aredis__pubsub_refuse(c, one, len)) != AREDIS_ERR_OK) return e;
        if (caching && (e = aredis__csc_batch_refuse(one, len)) != AREDIS_ERR_OK) return e;
    }
    for (size_t i = 0, start = 0; noting && i < s->n; start = s->ends[i++]) {
        const char *one = s->bytes + start;
        size_t len = s->ends[i] - start;
        const char *why = NULL;
        uint64_t bm = 0;
        if (aredis__cmd_classify(one, len, 0, &why, &bm, NULL) & AREDIS__CC_SESSION)
            aredis__session_note(c, one, len);
    }
    void *csc = NULL;
    for (size_t i = 0, start = 0; caching && i < s->n; start = s->ends[i++])
        aredis__csc_batch_command(c, c->opt.cache, s->bytes + start, s->ends[i] - start,
                                  c->sess_multi, &csc);
    aredis__cmd *cmd = aredis__cmd_new(c);
    if (__builtin_expect((s->flags & AREDIS__BATCH_LONE) != 0, 1) && s->n == 1 && !s->part &&
        !pubsub && !csc) {
        if (!cmd) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        cmd->batch = NULL;
        return submit_tail(c, s, cmd, out, pubsub, internal);
    }
    aredis__batch *b = NULL;
    size_t bytes, names = 0, extra = 0;
    if (pubsub && s->ps_names) {
        for (size_t i = 0; i < s->n; i++)
            if (aredis__add_overflow(names, s->ps_lens[i], &names)) names = SIZE_MAX;
        if (aredis__mul_overflow(s->n, sizeof(char *) + sizeof(size_t), &extra) ||
            aredis__add_overflow(extra, names, &extra))
            extra = SIZE_MAX;
    }
    if (cmd && extra != SIZE_MAX && !aredis__mul_overflow(s->n, sizeof(uint64_t), &bytes) &&
        !aredis__add_overflow(bytes, sizeof *b, &bytes) &&
        !aredis__add_overflow(bytes, extra, &bytes))
        b = aredis__malloc(bytes);
    if (!b) {
        if (cmd) aredis__cmd_recycle(c, cmd);
        if (csc) aredis__csc_batch_done(csc);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    b->csc = csc;
    b->part = s->part;
    b->owner = s->owner;
    b->bflags = s->flags;
    b->n = s->n;
    b->got = 0;
    for (size_t i = 0; i < s->n; i++)
        b->ends[i] = s->ends[i];
    b->ps_kind = pubsub ? s->ps_kind : NULL;
    b->obs_status[0] = '\0';
    b->ps_names = NULL;
    b->ps_lens = NULL;
    if (pubsub && s->ps_names) {
        /* After ends[]: the lengths, the pointers, then the bytes. */
        b->ps_lens = (size_t *)(void *)(b->ends + s->n);
        b->ps_names = (const char **)(void *)(b->ps_lens + s->n);
        char *blob = (char *)(b->ps_names + s->n);
        for (size_t i = 0; i < s->n; i++) {
            b->ps_lens[i] = s->ps_lens[i];
            b->ps_names[i] = blob;
            if (s->ps_lens[i]) memcpy(blob, s->ps_names[i], s->ps_lens[i]);
            blob += s->ps_lens[i];
        }
    }
    cmd->batch = b;
    if (csc) cmd->flags |= AREDIS__CMD_CSC;
    return submit_tail(c, s, cmd, out, pubsub, internal);
}

/* The record made: callback, flags, bytes into the output, deadline. */
static aredis_err submit_tail(aredis_client *c, const aredis__batch_spec *s, aredis__cmd *cmd,
                              aredis__cmd **out, int pubsub, int internal) {
    aredis_err e;
    cmd->cb = s->done;
    cmd->data = s->data;
    if (internal) cmd->flags |= AREDIS__CMD_INTERNAL;
    if (s->sensitive) cmd->flags |= AREDIS__CMD_SENSITIVE;
    if (s->block_ms || s->block_forever) {
        cmd->flags |= AREDIS__CMD_BLOCKING;
        c->blocking++;
    }

    if (aredis__log_enabled(AREDIS_LOG_DEBUG)) log_batch(c, s);

    /* Into `out` like any command (aredis__place moves it to `waiting` when
     * it cannot go yet). */
    aredis__buf *o = &c->out;
    size_t used = o->len - o->off;
    if (aredis__buf_append(o, s->bytes, s->len) != 0) {
        aredis__cmd_recycle(c, cmd);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    size_t before = o->off + used;

    /* One deadline for the whole batch, as for one command: the default
     * grows by the block time of blocking commands inside. */
    const aredis_cmd_opts *op = s->opts;
    uint64_t timeout = 0;
    int fifo = 0;
    if (!(op && (op->flags & AREDIS_CMD_NO_TIMEOUT))) {
        if (op && op->timeout_ms)
            timeout = op->timeout_ms;
        else if (!c->opt.request_timeout_ms || s->block_forever)
            timeout = 0;
        else if (s->block_ms)
            timeout = c->opt.request_timeout_ms + s->block_ms;
        else {
            timeout = c->opt.request_timeout_ms;
            fifo = 1;
        }
    }
    e = aredis__place(c, cmd, before, s->len, timeout, fifo, 0, internal);
    if (e != AREDIS_ERR_OK) return e;
    /* Counted per command inside (a subscribe is one command whatever its
     * confirmations). */
    if (!pubsub && !internal) c->stats.commands += s->n - 1;
    if (out) *out = cmd;
    return AREDIS_ERR_OK;
}

void aredis__batch_abort(aredis_client *c, aredis__cmd *cmd, aredis_err code, const char *detail) {
    aredis__enter(c);
    aredis__cmd_abort(c, cmd, code, detail);
    aredis__leave(c);
}

/* ---- Key prefix in batch replies ---------------------------------------- */

void aredis__strip_reply(aredis_client *c, aredis_reply *r, unsigned strip) {
    if (strip && c->prefix_len) aredis__prefix_strip(r, strip, c->opt.prefix, c->prefix_len);
}

/* ---- Replies of batches of one ------------------------------------------ */

void aredis__deliver(aredis_client *c, aredis_reply_fn *cb, void *data, aredis_reply *r,
                     const aredis_error *err) {
    if (!cb) return;
    aredis_error e;
    if (!err && r && r->type == AREDIS_REPLY_ERROR) {
        e.code = AREDIS_ERR_SERVER;
        aredis__error_prefix(r, e.prefix, sizeof e.prefix);
        e.detail = r->str;
        err = &e;
    }
    cb(c, err && err->code != AREDIS_ERR_SERVER ? NULL : r, err, data);
}

/* ---- Failing an owner's unsent commands --------------------------------- */

/* Move the commands of `owner` from q to `to`, in order, marked as taken
 * (in no client queue: a cancel then only marks them). */
static void take_owned(aredis__cmdq *q, aredis__cmdq *to, const void *owner) {
    aredis__cmd *cmd = q->head;
    while (cmd) {
        aredis__cmd *next = cmd->next;
        if (aredis__cmd_owner(cmd) == owner) {
            aredis__cmdq_unlink(q, cmd);
            cmd->flags &= ~(AREDIS__CMD_QUEUED | AREDIS__CMD_HELD);
            aredis__cmdq_push(to, cmd);
        }
        cmd = next;
    }
}

void aredis__fail_owned(aredis_client *c, const void *owner, aredis_err code, const char *detail) {
    if (!owner) return;
    aredis__enter(c);
    /* All of them out of the queues first, then failed one by one: a
     * callback may drain the queues meanwhile (disconnect() ends a
     * reservation and lets out what it held), and an EXEC still queued
     * would go out without the WATCH it was failed for. Held ones first:
     * they were issued first (aredis__held_to_waiting). */
    aredis__cmdq mine = {0};
    take_owned(&c->held, &mine, owner);
    take_owned(&c->waiting, &mine, owner);
    aredis__cmd *cmd;
    while ((cmd = aredis__cmdq_pop(&mine))) {
        aredis__cmd_abort(c, cmd, code, detail); /* only marks one cancelled meanwhile */
        aredis__cmd_recycle(c, cmd);
    }
    aredis__leave(c);
}
