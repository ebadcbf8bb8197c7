/*
 * Where a command times out.
 *
 * One loop timer per client serves three kinds of deadline:
 *   - each command's request deadline (a min-heap in queue.c);
 *   - the connect deadline (connect + handshake);
 *   - the dead-link deadline: once a command has timed out with its bytes
 *     on the wire, its late reply is still expected (Redis answers in
 *     order). If nothing at all arrives for dead_timeout_ms after that, the
 *     link is declared dead and torn down.
 * The timer is armed for the earliest of them. It is only re-armed when a
 * deadline earlier than the armed one appears; when it fires early (the
 * earliest deadline went away) it just recomputes.
 */
#include "client/client_internal.h"
#include "loop/loop_internal.h"

static uint64_t dead_at(const aredis_client *c) {
    if (!c->orphans || !c->opt.dead_timeout_ms) return 0;
    uint64_t from = c->orphan_since > c->last_rx ? c->orphan_since : c->last_rx;
    return from + c->opt.dead_timeout_ms;
}

static uint64_t earliest(uint64_t a, uint64_t b) {
    if (!a) return b;
    if (!b) return a;
    return a < b ? a : b;
}

static uint64_t next_deadline(const aredis_client *c) {
    uint64_t next = c->heap_n ? c->heap[0]->deadline : 0;
    next = earliest(next, c->conn_deadline);
    return earliest(next, dead_at(c));
}

void aredis__timer_update(aredis_client *c) {
    uint64_t next = next_deadline(c);
    if (!next) return; /* an armed timer will fire and find nothing: cheaper than cancel */
    if (c->timer_at && c->timer_at <= next) return;
    uint64_t now = aredis__now_ms(c->loop);
    aredis__timer_arm(c->loop, c->timer, next > now ? next - now : 0);
    c->timer_at = next;
}

void aredis__on_timer(void *arg) {
    aredis_client *c = arg;
    c->timer_at = 0;
    aredis__enter(c);
    uint64_t now = aredis__now_ms(c->loop);
    if (c->conn_deadline && now >= c->conn_deadline) {
        aredis__teardown(c, AREDIS_ERR_TIMEOUT, c->state == AREDIS_STATE_HANDSHAKE
                                                    ? "handshake timed out"
                                                    : "connect timed out");
    }
    uint64_t dead = dead_at(c);
    if (dead && now >= dead) {
        aredis__teardown(c, AREDIS_ERR_TIMEOUT,
                         "server silent after a request timed out: connection declared dead");
    }
    while (c->heap_n && c->heap[0]->deadline <= now) {
        aredis__cmd_abort(c, c->heap[0], AREDIS_ERR_TIMEOUT, "request timed out");
    }
    if (!c->free_pending) aredis__timer_update(c);
    aredis__leave(c);
}
