/*
 * Where a command times out.
 *
 * One loop timer per client serves every deadline the client has:
 *   - each command's request deadline (a min-heap, util/heap.h);
 *   - the connect deadline (name resolution + connect + handshake);
 *   - the dead-link deadline: once a command has timed out with its bytes
 *     on the wire, its late reply is still expected (Redis answers in
 *     order). If nothing at all arrives for dead_timeout_ms after that, the
 *     link is declared dead and torn down — unless the reply owed next is
 *     a blocking command's still waited for (silence is then expected).
 *   - the next reconnect attempt (reconnect.c decides when);
 *   - the health check: a PING after health_check_interval_ms of silence.
 * The timer is armed for the earliest of them. It is only re-armed when a
 * deadline earlier than the armed one appears; when it fires early (the
 * earliest deadline went away) it just recomputes.
 */
#include <stdio.h>

#include "client/client_internal.h"
#include "loop/loop_internal.h"

static uint64_t dead_at(const aredis_client *c) {
    if (!c->orphans || !c->opt.dead_timeout_ms) return 0;
    /* The reply owed next is a blocking command's that is still wanted
     * (BLPOP q 0 with a PING timed out behind it): the server's silence is
     * what was asked for, not a sign of a dead link. Its own deadline, if
     * any, bounds it; once it times out or is cancelled, the rule applies. */
    const aredis__cmd *head = c->sent.head;
    if (head && (head->flags & (AREDIS__CMD_BLOCKING | AREDIS__CMD_ORPHAN)) == AREDIS__CMD_BLOCKING)
        return 0;
    uint64_t from = c->orphan_since > c->last_rx ? c->orphan_since : c->last_rx;
    return from + c->opt.dead_timeout_ms;
}

static uint64_t earliest(uint64_t a, uint64_t b) {
    if (!a) return b;
    if (!b) return a;
    return a < b ? a : b;
}

/* When an idle READY connection is due a health-check PING. */
static uint64_t health_at(const aredis_client *c) {
    if (!c->opt.health_check_interval_ms || c->state != AREDIS_STATE_READY || c->health_inflight ||
        c->sent.n)
        return 0;
    uint64_t last = c->last_rx > c->last_tx ? c->last_rx : c->last_tx;
    return last + c->opt.health_check_interval_ms;
}

static uint64_t next_deadline(const aredis_client *c) {
    aredis__cmd *first = aredis__deadline_first(c);
    uint64_t next = first ? first->dl.key : 0;
    next = earliest(next, c->conn_deadline);
    next = earliest(next, c->reconnect_at);
    next = earliest(next, health_at(c));
    return earliest(next, dead_at(c));
}

static void health_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    (void)data;
    c->health_inflight = 0;
    if (err && err->code == AREDIS_ERR_TIMEOUT)
        aredis__teardown(c, AREDIS_ERR_TIMEOUT, "health check: no answer to PING");
}

static void health_check(aredis_client *c) {
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    o.timeout_ms =
        c->opt.request_timeout_ms ? c->opt.request_timeout_ms : c->opt.health_check_interval_ms;
    const char *argv[] = {"PING"};
    if (aredis__submit(c, &o, health_reply, NULL, 1, 1, argv, NULL, NULL, NULL, NULL) ==
        AREDIS_ERR_OK)
        c->health_inflight = 1;
}

void aredis__timer_update(aredis_client *c) {
    uint64_t next = next_deadline(c);
    if (!next) {
        /* Nothing due: a timer left armed would keep aredis_loop_run() alive
         * — but a connected client's socket does that anyway, so there it
         * stays armed, to fire once for nothing, rather than being disarmed
         * after every reply and armed again for the next command. */
        if (c->timer_at && c->fd < 0) {
            aredis__timer_cancel(c->loop, c->timer);
            c->timer_at = 0;
        }
        return;
    }
    if (c->timer_at && c->timer_at <= next) return;
    uint64_t now = aredis__now_ms(c->loop);
    aredis__timer_arm(c->loop, c->timer, next > now ? next - now : 0);
    c->timer_at = next;
}

/* Say where the time went: on the wire, or waiting for a connection (and
 * why there is none). */
static const char *timeout_detail(const aredis_client *c, const aredis__cmd *cmd, char *buf,
                                  size_t len) {
    if (cmd->flags & AREDIS__CMD_SENT) return "request timed out";
    if (c->state == AREDIS_STATE_READY) return "request timed out waiting to be sent";
    snprintf(buf, len, "request timed out waiting for a connection (%s%s%s)",
             aredis_state_name(c->state), c->last_detail[0] ? ": " : "", c->last_detail);
    return buf;
}

void aredis__on_timer(void *arg) {
    aredis_client *c = arg;
    c->timer_at = 0;
    if (aredis__forked(c)) return; /* a copy in a forked child */
    aredis__enter(c);
    uint64_t now = aredis__now_ms(c->loop);
    if (c->conn_deadline && now >= c->conn_deadline) {
        char where[320];
        aredis__teardown(c, AREDIS_ERR_TIMEOUT,
                         c->locating ? aredis__locate_timeout(c, where, sizeof where)
                         : c->state == AREDIS_STATE_HANDSHAKE ? "handshake timed out"
                         : c->tls_handshaking                 ? "TLS handshake timed out"
                         : c->resolving ? "connect timed out resolving the host name"
                                        : "connect timed out");
    }
    uint64_t dead = dead_at(c);
    if (dead && now >= dead) {
        aredis__teardown(c, AREDIS_ERR_TIMEOUT,
                         "server silent after a request timed out: connection declared dead");
    }
    aredis__cmd *due;
    char why[320];
    while ((due = aredis__deadline_first(c)) && due->dl.key <= now)
        aredis__cmd_abort(c, due, AREDIS_ERR_TIMEOUT, timeout_detail(c, due, why, sizeof why));
    uint64_t health = health_at(c);
    if (health && now >= health) health_check(c);
    if (c->reconnect_at && now >= c->reconnect_at && c->state == AREDIS_STATE_RECONNECTING)
        aredis__connect_start(c);
    if (!c->free_pending) aredis__timer_update(c);
    aredis__leave(c);
}
