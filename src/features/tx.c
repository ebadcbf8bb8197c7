/*
 * Transactions (aredis/tx.h): MULTI, the queued commands and EXEC as one
 * batch; WATCH as a batch that reserves the connection until the EXEC (or
 * UNWATCH) batch ends the reservation (client/feature.h).
 */
#include "aredis/tx.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "features/cmdlist.h"
#include "features/tx_internal.h"
#include "proto/cmdtable.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

typedef enum { WATCH_NONE, WATCH_SENT } watch_state;

/* A command's reply relayed from a batch of one to its callback; for a
 * WATCH, also what it tells the transaction. */
typedef struct relay {
    aredis__relay base;   /* first: the part hook's data */
    struct aredis_tx *tx; /* a WATCH's transaction; NULL once it is freed */
    const void *owner;    /* a WATCH's round: the owner it reserves for */
    struct relay *next;   /* in tx->watches */
} relay;

struct aredis_tx {
    aredis_client *client;
    aredis__cmdlist pre;  /* hidden commands before MULTI (SCRIPT LOAD) */
    aredis__cmdlist body; /* the queued commands */
    watch_state watch;
    /*
     * Once a WATCH has been written (the reservation was taken at once) or
     * answered, a missing reservation means the connection that carried it
     * is gone; a WATCH that failed means the same. One not written yet
     * simply waits ahead of what follows it.
     */
    int watch_placed, watch_failed;
    relay *watches; /* WATCHes not answered yet */
    /*
     * Its reservation's owner token: unique for the process's life, never a
     * freed transaction's address that a new one could reuse. A new one for
     * every round (exec, discard, a lost WATCH): what an earlier round left
     * in flight — its WATCH failing late, its EXEC cancelled — must never
     * fail, hold or release the commands of the round under way.
     */
    const void *owner;
};

static _Atomic uintptr_t next_owner;

aredis_tx *aredis_tx_new(aredis_client *c) {
    if (!c) {
        aredis__call_fail(AREDIS_ERR_INVALID, "client is NULL");
        return NULL;
    }
    aredis_tx *tx = aredis__calloc(1, sizeof *tx);
    if (!tx) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    tx->client = c;
    tx->owner = (const void *)(++next_owner);
    aredis__cmdlist_init(&tx->pre, c);
    aredis__cmdlist_init(&tx->body, c);
    return tx;
}

aredis__cmdlist *aredis__tx_pre(aredis_tx *tx) { return &tx->pre; }
aredis__cmdlist *aredis__tx_body(aredis_tx *tx) { return &tx->body; }

/* ---- Sending one batch owned by the transaction ------------------------- */

/* UNWATCH, ending the reservation of `owner` (a round of a transaction)
 * once written; its reply matters to no one. */
static void send_unwatch(aredis_client *c, const void *owner) {
    static const char *const argv[] = {"UNWATCH"};
    aredis__one o = {NULL, NULL, NULL, owner, AREDIS__BATCH_RELEASE, 0};
    aredis__send_one(c, &o, 1, argv, NULL, NULL, NULL, NULL);
}

/* Is the reservation the WATCH took gone with its connection? */
static int watch_lost(const aredis_tx *tx) {
    return tx->watch == WATCH_SENT &&
           (tx->watch_failed || (tx->watch_placed && !aredis__reserved_by(tx->client, tx->owner)));
}

/* The refusal once the WATCH is gone (its connection lost, or it failed). */
static aredis_err refuse_lost(const aredis_tx *tx) {
    return aredis__call_fail(AREDIS_ERR_IO,
                             "%s: the server no longer watches the keys; watch them again",
                             tx->watch_failed ? "the WATCH failed" : "connection lost after WATCH");
}

/* The round is over: the next one has an owner of its own. */
static void forget_watch(aredis_tx *tx) {
    tx->watch = WATCH_NONE;
    tx->watch_placed = tx->watch_failed = 0;
    tx->owner = (const void *)(++next_owner);
}

/*
 * The exec of a transaction whose WATCH is gone: refused, and the
 * transaction reset. Why drop the queued commands too: they were computed
 * from reads made under that WATCH (check-and-set); kept, a retry that
 * watches, reads and queues again would run the stale ones with the new.
 */
static aredis_err refuse_exec_lost(aredis_tx *tx) {
    aredis_err e = refuse_lost(tx);
    aredis__cmdlist_reset(&tx->pre);
    aredis__cmdlist_reset(&tx->body);
    forget_watch(tx);
    return e;
}

/* ---- WATCH -------------------------------------------------------------- */

static void watch_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

aredis_err aredis__tx_watch(aredis_tx *tx, aredis_reply_fn *cb, void *data, int nkeys,
                            const char *const *keys, const size_t *keylens, aredis__cmd **out) {
    if (nkeys <= 0 || !keys) return aredis__call_fail(AREDIS_ERR_INVALID, "WATCH needs keys");
    /* Another WATCH on top of a lost one would leave the first keys
     * unwatched: refused, and the transaction reset, as an exec is. */
    if (watch_lost(tx)) return refuse_exec_lost(tx);
    const char **argv = aredis__calloc((size_t)nkeys + 1, sizeof *argv);
    size_t *lens = aredis__calloc((size_t)nkeys + 1, sizeof *lens);
    relay *x = aredis__calloc(1, sizeof *x);
    aredis_err e = AREDIS_ERR_NOMEM;
    if (argv && lens && x) {
        argv[0] = "WATCH";
        lens[0] = 5;
        for (int i = 0; i < nkeys; i++) {
            argv[i + 1] = keys[i];
            lens[i + 1] = keylens ? keylens[i] : strlen(keys[i]);
        }
        x->base.cb = cb;
        x->base.data = data;
        aredis__one o = {aredis__relay_part, watch_done, x, tx->owner, AREDIS__BATCH_RESERVE, 0};
        e = aredis__send_one(tx->client, &o, nkeys + 1, argv, lens, NULL, NULL, out);
    } else {
        aredis__call_fail(e, "out of memory");
    }
    aredis__free(argv);
    aredis__free(lens);
    if (e != AREDIS_ERR_OK) {
        aredis__free(x);
        return e;
    }
    x->tx = tx;
    x->owner = tx->owner;
    x->next = tx->watches;
    tx->watches = x;
    tx->watch = WATCH_SENT;
    /* Written at once when the line was free: the reservation is taken. */
    if (aredis__reserved_by(tx->client, tx->owner)) tx->watch_placed = 1;
    return AREDIS_ERR_OK;
}

static void relay_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    relay *x = data;
    aredis__relay_finish(c, &x->base, err);
    aredis__free(x);
}

static void watch_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    relay *x = data;
    aredis_tx *tx = x->tx;
    /* Only a WATCH of the round under way speaks for the transaction; one
     * of an earlier round (its EXEC or discard already issued) or of a
     * freed transaction still cleans up after its own round. */
    int current = tx && x->owner == tx->owner;
    if (tx) {
        relay **pp = &tx->watches;
        while (*pp != x)
            pp = &(*pp)->next;
        *pp = x->next;
    }
    if (err || !x->base.r || x->base.r->type == AREDIS_REPLY_ERROR) {
        if (current) tx->watch_failed = 1;
        /* A WATCH written and then refused (NOPERM), timed out or
         * cancelled took the reservation, and no EXEC will come to end
         * it (the exec is refused): end it now, or every other command
         * on the client waits for good. */
        if (aredis__reserved_by(c, x->owner)) send_unwatch(c, x->owner);
        /* What its round issued behind the WATCH and that has not gone out
         * yet (an EXEC waiting behind a held WATCH) must not run without
         * it. */
        aredis__fail_owned(c, x->owner, AREDIS_ERR_IO, "the WATCH ahead of it failed: not sent");
    } else if (current) {
        tx->watch_placed = 1;
    }
    relay_done(c, r, err, data);
}

aredis_err aredis_tx_watch(aredis_tx *tx, aredis_reply_fn *cb, void *data, int nkeys,
                           const char *const *keys, const size_t *keylens) {
    return aredis__tx_watch(tx, cb, data, nkeys, keys, keylens, NULL);
}

aredis_future *aredis_tx_watch_future(aredis_tx *tx, int nkeys, const char *const *keys,
                                      const size_t *keylens) {
    if (!tx) {
        aredis__call_fail(AREDIS_ERR_INVALID, "transaction is NULL");
        return NULL;
    }
    aredis_future *f = aredis__future_pending(tx->client);
    if (!f) return NULL;
    aredis__cmd *cmd = NULL;
    aredis_err e = aredis__tx_watch(tx, aredis__future_done, f, nkeys, keys, keylens, &cmd);
    if (e != AREDIS_ERR_OK) return aredis__future_refused(f, e);
    aredis__future_attach(f, cmd);
    return f;
}

/* ---- Commands between WATCH and EXEC ------------------------------------ */

static aredis_err tx_vcommand(aredis_tx *tx, aredis_reply_fn *cb, void *data, const char *fmt,
                              va_list *ap, aredis__cmd **out) {
    if (!fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL");
    /* Refused, the state kept: the exec must still see the WATCH gone. */
    if (watch_lost(tx)) return refuse_lost(tx);
    relay *x = aredis__calloc(1, sizeof *x);
    if (!x) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    x->base.cb = cb;
    x->base.data = data;
    aredis__one o = {aredis__relay_part, relay_done, x, tx->owner, 0, 1};
    aredis_err e = aredis__send_one(tx->client, &o, 0, NULL, NULL, fmt, ap, out);
    if (e != AREDIS_ERR_OK) aredis__free(x);
    return e;
}

aredis_err aredis_tx_command(aredis_tx *tx, aredis_reply_fn *cb, void *data, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = tx_vcommand(tx, cb, data, fmt, &ap, NULL);
    va_end(ap);
    return e;
}

aredis_future *aredis_tx_future_command(aredis_tx *tx, const char *fmt, ...) {
    if (!tx) {
        aredis__call_fail(AREDIS_ERR_INVALID, "transaction is NULL");
        return NULL;
    }
    aredis_future *f = aredis__future_pending(tx->client);
    if (!f) return NULL;
    aredis__cmd *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = tx_vcommand(tx, aredis__future_done, f, fmt, &ap, &cmd);
    va_end(ap);
    if (e != AREDIS_ERR_OK) return aredis__future_refused(f, e);
    aredis__future_attach(f, cmd);
    return f;
}

/* ---- Queueing ----------------------------------------------------------- */

/* The commands a transaction sends itself may not be queued in it. */
static aredis_err check_queued(aredis__cmdlist *l, size_t before) {
    /* (WATCH and UNWATCH never get this far: the command API refuses
     * them, aredis__batch_check.) */
    static const struct {
        const char *name;
        size_t len;
    } own[] = {{"MULTI", 5}, {"EXEC", 4}, {"DISCARD", 7}};
    aredis__arg a[1];
    if (aredis__resp_name(l->buf.data + before, l->buf.len - before, a) != 0) return AREDIS_ERR_OK;
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        if (a[0].n == own[i].len && strncasecmp(a[0].p, own[i].name, a[0].n) == 0) {
            l->n--;
            l->visible--;
            l->buf.len = before;
            return aredis__call_fail(AREDIS_ERR_INVALID,
                                     "%s cannot be queued in a transaction: aredis_tx sends it",
                                     own[i].name);
        }
    }
    return AREDIS_ERR_OK;
}

static aredis_err queue(aredis_tx *tx, int argc, const char *const *argv, const size_t *argvlen,
                        const char *fmt, va_list *ap) {
    size_t before = tx->body.buf.len;
    aredis_err e = aredis__cmdlist_add(&tx->body, argc, argv, argvlen, fmt, ap, 0);
    if (e != AREDIS_ERR_OK) return e;
    return check_queued(&tx->body, before);
}

aredis_err aredis_tx_vqueue(aredis_tx *tx, const char *fmt, va_list ap) {
    if (!fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL");
    va_list cp;
    va_copy(cp, ap);
    aredis_err e = queue(tx, 0, NULL, NULL, fmt, &cp);
    va_end(cp);
    return e;
}

aredis_err aredis_tx_queue(aredis_tx *tx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis_tx_vqueue(tx, fmt, ap);
    va_end(ap);
    return e;
}

aredis_err aredis_tx_queue_argv(aredis_tx *tx, int argc, const char *const *argv,
                                const size_t *argvlen) {
    return queue(tx, argc, argv, argvlen, NULL, NULL);
}

size_t aredis_tx_size(const aredis_tx *tx) { return tx->body.visible; }

/* ---- EXEC --------------------------------------------------------------- */

/* One exec under way: owned by its batch until `done` runs. */
typedef struct exec_ctx {
    aredis_reply_fn *cb;
    void *data;
    size_t npre, nbody; /* replies: npre hidden, MULTI, nbody QUEUED, EXEC */
    aredis_reply *exec; /* EXEC's reply */
    size_t bad;         /* the first command refused when queued (1-based), 0 */
    char bad_text[200]; /* its name and the server's reason */
    unsigned *strip;    /* per queued command, or NULL */
    int sensitive;
    char *names; /* the queued commands' names, for the EXECABORT text */
    size_t *name_at;
    const void *owner; /* the round whose reservation it ends, or NULL */
} exec_ctx;

static void exec_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    (void)c;
    exec_ctx *x = data;
    if (i < x->npre) return;
    i -= x->npre;
    if (i == 0) return; /* MULTI's +OK */
    if (i <= x->nbody) {
        if (r->type == AREDIS_REPLY_ERROR && !x->bad) {
            x->bad = i;
            char msg[160];
            if (x->sensitive)
                aredis__redact_message(r->str, r->len, msg, sizeof msg);
            else
                snprintf(msg, sizeof msg, "%.*s", (int)(r->len < 159 ? r->len : 159), r->str);
            snprintf(x->bad_text, sizeof x->bad_text, "command %zu (%s): %s", i,
                     x->names + x->name_at[i - 1], msg);
        }
        return;
    }
    x->exec = aredis_reply_retain(r);
}

static void exec_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    exec_ctx *x = data;
    aredis_reply *er = x->exec;
    /* A watched EXEC cancelled or timed out before it was written never
     * ends its reservation, and its WATCH may still be waiting to go out
     * (held behind another's reservation, or for a connection): once
     * written it would hold the line for good. An UNWATCH of its round
     * follows it instead (one more harmless round trip when the EXEC was
     * written after all). */
    if (err && x->owner && (err->code == AREDIS_ERR_CANCELLED || err->code == AREDIS_ERR_TIMEOUT))
        send_unwatch(c, x->owner);
    if (!err && er && er->type == AREDIS_REPLY_ERROR) {
        aredis_error e;
        e.code = AREDIS_ERR_SERVER;
        aredis__error_prefix(er, e.prefix, sizeof e.prefix);
        char detail[400];
        if (x->bad) {
            /* "EXECABORT Transaction discarded ... errors." + what failed */
            int keep = (int)(er->len > 0 && er->str[er->len - 1] == '.' ? er->len - 1 : er->len);
            snprintf(detail, sizeof detail, "%.*s: %s", keep, er->str, x->bad_text);
        } else
            snprintf(detail, sizeof detail, "%s", er->str);
        e.detail = detail;
        if (x->cb) x->cb(c, er, &e, x->data);
    } else if (!err && er) {
        if (x->strip && er->type == AREDIS_REPLY_ARRAY)
            for (size_t i = 0; i < er->elements && i < x->nbody; i++)
                if (x->strip[i]) aredis__strip_reply(c, er->element[i], x->strip[i]);
        if (x->cb) x->cb(c, er, NULL, x->data);
    } else if (x->cb) {
        x->cb(c, NULL, err, x->data);
    }
    aredis_reply_release(er);
    aredis__free(x->strip);
    aredis__free(x->names);
    aredis__free(x->name_at);
    aredis__free(x);
}

static const char k_multi[] = "*1\r\n$5\r\nMULTI\r\n";
static const char k_exec[] = "*1\r\n$4\r\nEXEC\r\n";

/* The queued commands' names ("SET", "INCR"...), for the EXECABORT text. */
static int names_of(exec_ctx *x, const aredis__cmdlist *l) {
    x->name_at = aredis__calloc(l->n ? l->n : 1, sizeof *x->name_at);
    x->names = aredis__malloc(l->n * 33 + 1);
    if (!x->name_at || !x->names) return -1;
    size_t at = 0, start = 0;
    for (size_t i = 0; i < l->n; i++) {
        aredis__arg a[1];
        int ok = aredis__resp_name(l->buf.data + start, l->ends[i] - start, a) == 0;
        size_t len = ok ? (a[0].n > 32 ? 32 : a[0].n) : 0;
        x->name_at[i] = at;
        for (size_t k = 0; k < len; k++) {
            char ch = a[0].p[k];
            x->names[at + k] = (char)((ch >= 'a' && ch <= 'z') ? ch - 32 : ch);
        }
        at += len;
        x->names[at++] = '\0';
        start = l->ends[i];
    }
    return 0;
}

static aredis_err tx_submit(aredis_tx *tx, const aredis_cmd_opts *opts, aredis_reply_fn *cb,
                            void *data, aredis__cmd **out) {
    aredis__cmdlist *pre = &tx->pre, *body = &tx->body;
    if (!body->n) return aredis__call_fail(AREDIS_ERR_INVALID, "the transaction is empty");
    if (watch_lost(tx)) return refuse_exec_lost(tx);
    exec_ctx *x = aredis__calloc(1, sizeof *x);
    aredis__buf b = {0};
    size_t n = pre->n + body->n + 2;
    size_t *ends = aredis__calloc(n, sizeof *ends);
    aredis_err e = AREDIS_ERR_NOMEM;
    if (!x || !ends || names_of(x, body) != 0) goto fail;
    for (size_t i = 0; i < body->n; i++) {
        if (!body->strip[i]) continue;
        if (!x->strip && !(x->strip = aredis__calloc(body->n, sizeof *x->strip))) goto fail;
        x->strip[i] = body->strip[i];
    }
    /* [hidden SCRIPT LOADs] MULTI body EXEC, with where each one ends. */
    size_t k = 0;
    if (aredis__buf_append(&b, pre->buf.data, pre->buf.len) != 0) goto fail;
    for (size_t i = 0; i < pre->n; i++)
        ends[k++] = pre->ends[i];
    if (aredis__buf_append(&b, k_multi, sizeof k_multi - 1) != 0) goto fail;
    ends[k++] = b.len;
    size_t base = b.len;
    if (aredis__buf_append(&b, body->buf.data, body->buf.len) != 0) goto fail;
    for (size_t i = 0; i < body->n; i++)
        ends[k++] = base + body->ends[i];
    if (aredis__buf_append(&b, k_exec, sizeof k_exec - 1) != 0) goto fail;
    ends[k++] = b.len;

    x->cb = cb;
    x->data = data;
    x->npre = pre->n;
    x->nbody = body->n;
    x->sensitive = body->sensitive || pre->sensitive;
    aredis__batch_spec s;
    memset(&s, 0, sizeof s);
    s.bytes = b.data;
    s.len = b.len;
    s.n = n;
    s.ends = ends;
    s.part = exec_part;
    s.done = exec_done;
    s.data = x;
    s.opts = opts;
    /* Inside MULTI nothing blocks (BLPOP runs as LPOP): no block time. */
    s.sensitive = x->sensitive;
    s.session = 1; /* MULTI and EXEC themselves (and a SELECT inside still moves) */
    s.owner = tx->watch == WATCH_SENT ? tx->owner : NULL;
    s.flags = tx->watch == WATCH_SENT ? AREDIS__BATCH_RELEASE : 0;
    x->owner = s.owner;
    e = aredis__batch_submit(tx->client, &s, out);
    if (e != AREDIS_ERR_OK) goto fail_quiet;
    aredis__buf_free(&b);
    aredis__free(ends);
    aredis__cmdlist_reset(pre);
    aredis__cmdlist_reset(body);
    forget_watch(tx);
    return AREDIS_ERR_OK;
fail:
    aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
fail_quiet:
    aredis__buf_free(&b);
    aredis__free(ends);
    if (x) {
        aredis__free(x->strip);
        aredis__free(x->names);
        aredis__free(x->name_at);
        aredis__free(x);
    }
    return e;
}

aredis_err aredis_tx_exec_ex(aredis_tx *tx, const aredis_cmd_opts *opts, aredis_reply_fn *cb,
                             void *data) {
    return tx_submit(tx, opts, cb, data, NULL);
}

aredis_err aredis_tx_exec(aredis_tx *tx, aredis_reply_fn *cb, void *data) {
    return tx_submit(tx, NULL, cb, data, NULL);
}

aredis_future *aredis_tx_exec_future(aredis_tx *tx) {
    if (!tx) {
        aredis__call_fail(AREDIS_ERR_INVALID, "transaction is NULL");
        return NULL;
    }
    aredis_future *f = aredis__future_pending(tx->client);
    if (!f) return NULL;
    aredis__cmd *cmd = NULL;
    aredis_err e = tx_submit(tx, NULL, aredis__future_done, f, &cmd);
    if (e != AREDIS_ERR_OK) return aredis__future_refused(f, e);
    aredis__future_attach(f, cmd);
    return f;
}

int aredis_tx_aborted(const aredis_reply *r) { return r && r->type == AREDIS_REPLY_NIL; }

/* ---- DISCARD and free --------------------------------------------------- */

void aredis_tx_discard(aredis_tx *tx) {
    aredis__cmdlist_reset(&tx->pre);
    aredis__cmdlist_reset(&tx->body);
    if (tx->watch == WATCH_SENT && !watch_lost(tx)) {
        /* UNWATCH ends the reservation once written. If it cannot be sent
         * (client closed), the connection and its WATCH are gone anyway. */
        send_unwatch(tx->client, tx->owner);
    }
    forget_watch(tx);
}

void aredis_tx_free(aredis_tx *tx) {
    if (!tx) return;
    aredis_tx_discard(tx);
    for (relay *x = tx->watches; x; x = x->next)
        x->tx = NULL; /* their callbacks still run; the transaction is gone */
    aredis__cmdlist_free(&tx->pre);
    aredis__cmdlist_free(&tx->body);
    aredis__free(tx);
}
