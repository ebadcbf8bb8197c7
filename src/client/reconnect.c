/*
 * Where a reconnect is decided.
 *
 * After a connection is lost, or a connect attempt fails, the policy in the
 * options says whether to try again and when: the delay doubles per failed
 * attempt from reconnect_delay_ms up to max_reconnect_delay_ms, each delay
 * scaled by a random factor within ±reconnect_jitter, and the policy gives up
 * after max_reconnect_attempts failures in a row (0 = never).
 * Every attempt starts from aredis__connect_start(): a client with a
 * locator (a sentinel client, features/sentinel.c) asks it for the address
 * again each time, so a reconnect follows a failover; a locator that finds
 * nothing fails the attempt like a refused connect.
 *
 * Permanent and transient failures: a refusal the next attempt would meet
 * again — credentials (AUTH), an invalid database, a certificate that does
 * not verify, TLS options that do not load — stops the policy at once
 * unless reconnect_on_auth_error is set: retrying only hammers the server.
 * Everything else is transient and retried: refused or reset connections,
 * timeouts, a server still LOADING or BUSY or full (max clients), a TLS
 * alert or bad record on a live link.
 *
 * What survives a lost connection (delivery is at most once by default):
 *   - commands never written to the socket are kept, in order, and sent
 *     after the reconnect (when queue_during_reconnect is on);
 *   - commands whose bytes may have reached the server fail once with the
 *     connection error — unless marked retryable, then they are re-sent;
 *   - timed-out and cancelled commands are simply dropped.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client/client_internal.h"
#include "client/feature.h"
#include "loop/loop_internal.h"
#include "proto/cmdtable.h"
#include "util/alloc.h"
#include "util/log.h"

/* xorshift64*: jitter needs spread, not cryptographic strength. */
static double rand01(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

uint32_t aredis__backoff_ms(const aredis_options *o, unsigned attempt, uint64_t *rng) {
    double d = (double)o->reconnect_delay_ms;
    double cap = (double)o->max_reconnect_delay_ms;
    if (cap < d) cap = d;
    for (unsigned i = 1; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap) d = cap;
    double j = o->reconnect_jitter;
    if (j > 0) {
        if (j > 1) j = 1;
        d *= 1.0 + j * (2.0 * rand01(rng) - 1.0);
    }
    if (d < 0) d = 0;
    if (d > 4294967295.0) d = 4294967295.0;
    return (uint32_t)(d + 0.5);
}

/* ---- Read-only commands (retry_read_only) ------------------------------- */

/*
 * Read-only is the command table's READONLY flag (the server's own: the
 * command reads data and changes nothing; subcommands such as OBJECT
 * ENCODING have their own entry), plus the commands below, which change
 * nothing either but read no keys, so the server leaves them unflagged.
 */
static const char *const k_read_only_extra[] = {"ECHO", "INFO", "PING", "TIME"};

int aredis__cmd_is_read_only(const char *name, size_t len, const char *sub, size_t sublen,
                             const aredis__cmdtable *extra) {
    aredis__arg a[2] = {{name, len}, {sub, sublen}};
    const aredis__cmdinfo *ci = aredis__cmd_lookup(extra, a, sub ? 2 : 1);
    if (!ci) return 0;
    if (ci->flags & AREDIS__CF_READONLY) return 1;
    for (size_t i = 0; i < sizeof k_read_only_extra / sizeof *k_read_only_extra; i++)
        if (len == strlen(k_read_only_extra[i]) &&
            strncasecmp(name, k_read_only_extra[i], len) == 0)
            return 1;
    return 0;
}

/* ---- What survives ------------------------------------------------------ */

/*
 * A sent command whose bytes never left `out` can be kept: copy them out of
 * the output buffer before it is reset. Returns 0 when kept.
 */
static int keep_unwritten(aredis_client *c, aredis__cmd *cmd) {
    if (cmd->buf) return 0;                 /* retryable: has its own copy */
    if (cmd->start < c->written) return -1; /* may have reached the server */
    size_t at = c->out.off + (size_t)(cmd->start - c->written);
    size_t len = (size_t)(cmd->end - cmd->start);
    if (at + len > c->out.len) return -1;
    cmd->buf = aredis__memdup0(c->out.data + at, len);
    if (!cmd->buf) return -1;
    cmd->len = len;
    return 0;
}

static int may_retry(const aredis_client *c, aredis_err code, int refused) {
    if (!c->opt.reconnect || c->disconnecting) return 0;
    if ((refused || code == AREDIS_ERR_AUTH) && !c->opt.reconnect_on_auth_error) return 0;
    if (code == AREDIS_ERR_NOMEM || code == AREDIS_ERR_FORKED || code == AREDIS_ERR_CLOSED ||
        code == AREDIS_ERR_CANCELLED)
        return 0;
    if (c->opt.max_reconnect_attempts && c->attempt >= c->opt.max_reconnect_attempts) return 0;
    return 1;
}

int aredis__reconnect_decide(aredis_client *c, aredis_err code, int refused) {
    if (!may_retry(c, code, refused)) return 0;
    c->attempt++;
    uint32_t delay = aredis__backoff_ms(&c->opt, c->attempt, &c->rng);
    c->reconnect_delay = delay;
    c->reconnect_at = aredis__now_ms(c->loop) + delay;
    if (c->reconnect_at == 0) c->reconnect_at = 1;
    c->state = AREDIS_STATE_RECONNECTING;
    if (aredis__log_enabled(AREDIS_LOG_INFO)) {
        char where[160];
        /* A client with a locator asks it again: not the last address. */
        aredis__log(AREDIS_LOG_INFO, "reconnect to %s scheduled in %u ms (attempt %u)",
                    c->loc_ops ? c->loc_label : aredis__endpoint(c, where, sizeof where),
                    (unsigned)delay, c->attempt);
    }
    return 1;
}

/* A RESERVE batch of `owner` in q: its round is kept whole (never written). */
static int round_kept(const aredis__cmdq *q, const void *owner) {
    for (const aredis__cmd *cmd = q->head; cmd; cmd = cmd->next)
        if (aredis__cmd_owner(cmd) == owner && (cmd->batch->bflags & AREDIS__BATCH_RESERVE))
            return 1;
    return 0;
}

/* Move what `keep` holds of `owner`'s round to `fail`. */
static void round_unkeep(aredis__cmdq *keep, aredis__cmdq *fail, const void *owner) {
    aredis__cmd *cmd = keep->head;
    while (cmd) {
        aredis__cmd *next = cmd->next;
        if (aredis__cmd_owner(cmd) == owner) {
            aredis__cmdq_unlink(keep, cmd);
            aredis__cmdq_push(fail, cmd);
        }
        cmd = next;
    }
}

void aredis__reconnect_sort(aredis_client *c, aredis__cmdq *sent, aredis__cmdq *keep,
                            aredis__cmdq *fail) {
    aredis__cmd *cmd;
    while ((cmd = aredis__cmdq_pop(sent))) {
        const void *owner = aredis__cmd_owner(cmd);
        /* A transaction whose WATCH is kept (never written): the rest of its
         * round may be kept behind it, to go out again in order. Any number
         * of rounds may be in `out` at once. */
        int kept = owner && round_kept(keep, owner);
        if ((cmd->flags & (AREDIS__CMD_ORPHAN | AREDIS__CMD_INTERNAL)) ||
            (cmd->batch && (cmd->batch->bflags & AREDIS__BATCH_PUBSUB))) {
            /* A subscribe-family call is not sent again as it was: the
             * subscriptions may have changed since (an unsubscribe timed
             * out behind it and dropped here). It fails with the
             * connection error, and features/pubsub.c subscribes what is
             * held now on the next connection. */
            /* An EXEC cancelled or timed out before it was written ends its
             * round: a WATCH kept without it would take the next
             * connection's reservation for good. */
            if (kept && (cmd->batch->bflags & AREDIS__BATCH_RELEASE))
                round_unkeep(keep, fail, owner);
            aredis__cmdq_push(fail, cmd); /* dropped (orphans) or failed quietly */
        } else if (owner && !kept &&
                   (owner == c->reserved ||
                    (cmd->batch->bflags & (AREDIS__BATCH_RELEASE | AREDIS__BATCH_UNDER)))) {
            /* A transaction's command after its WATCH, or the EXEC that
             * ended its reservation when it went into `out`: without the
             * WATCH (gone with the connection) it must not run at all. */
            aredis__cmdq_push(fail, cmd);
        } else if (c->opt.queue_during_reconnect && keep_unwritten(c, cmd) == 0) {
            cmd->flags &= ~AREDIS__CMD_SENT;
            aredis__cmdq_push(keep, cmd);
        } else {
            aredis__cmdq_push(fail, cmd);
        }
    }
}
