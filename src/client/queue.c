/*
 * Command records, the FIFO queues (waiting to be sent; sent and awaiting a
 * reply) and the deadlines.
 *
 * Deadlines: the default request timeout is the same for every command, so
 * those deadlines arrive in issue order and a FIFO keeps them (O(1) per
 * command); per-command timeouts and blocking commands go into a shared
 * min-heap (util/heap.h). One loop timer serves both (timeout.c).
 *
 * Records are recycled through a small per-client free list while the
 * client is connected, so issuing a command in steady state allocates
 * nothing; while it is not, a record freed is given back at once, so that
 * an outage full of timed-out commands leaves nothing behind.
 */
#include <stdint.h>
#include <string.h>

#include "client/client_internal.h"
#include "util/alloc.h"

#define FREELIST_MAX 1024

aredis__cmd *aredis__cmd_new(aredis_client *c) {
    aredis__cmd *cmd = c->freelist;
    if (cmd) {
        c->freelist = cmd->next;
        c->nfree--;
    } else {
        cmd = aredis__malloc(sizeof *cmd);
        if (!cmd) return NULL;
    }
    cmd->next = cmd->prev = NULL;
    cmd->fnext = cmd->fprev = NULL;
    cmd->cb = NULL;
    cmd->data = NULL;
    aredis__hnode_init(&cmd->dl);
    cmd->buf = NULL;
    cmd->len = 0;
    cmd->flags = 0;
    cmd->batch = NULL;
    return cmd;
}

void aredis__cmd_recycle(aredis_client *c, aredis__cmd *cmd) {
    aredis__deadline_del(c, cmd);
    /* The rare kinds in one test: blocking, a cache hit, a batch the cache
     * noted. */
    if (__builtin_expect(
            (cmd->flags & (AREDIS__CMD_BLOCKING | AREDIS__CMD_HIT | AREDIS__CMD_CSC)) != 0, 0)) {
        aredis__cmd_unblock(c, cmd);
        if (cmd->flags & AREDIS__CMD_HIT) {
            aredis_reply_release(cmd->hit);
            cmd->hit = NULL; /* (cmd->buf) */
        }
        if (cmd->flags & AREDIS__CMD_CSC) aredis__csc_batch_done(cmd->batch->csc);
        cmd->flags &= ~(AREDIS__CMD_HIT | AREDIS__CMD_CSC);
    }
    aredis__free(cmd->buf);
    cmd->buf = NULL;
    aredis__free(cmd->batch);
    cmd->batch = NULL;
    if (c->state == AREDIS_STATE_READY && c->nfree < FREELIST_MAX) {
        cmd->next = c->freelist;
        c->freelist = cmd;
        c->nfree++;
    } else {
        aredis__free(cmd);
    }
}

void aredis__freelist_trim(aredis_client *c) {
    aredis__cmd *cmd;
    while ((cmd = c->freelist)) {
        c->freelist = cmd->next;
        aredis__free(cmd);
    }
    c->nfree = 0;
}

/* ---- Queues ------------------------------------------------------------- */

void aredis__cmdq_push(aredis__cmdq *q, aredis__cmd *cmd) {
    cmd->next = NULL;
    cmd->prev = q->tail;
    if (q->tail)
        q->tail->next = cmd;
    else
        q->head = cmd;
    q->tail = cmd;
    q->n++;
}

aredis__cmd *aredis__cmdq_pop(aredis__cmdq *q) {
    aredis__cmd *cmd = q->head;
    if (!cmd) return NULL;
    q->head = cmd->next;
    if (q->head)
        q->head->prev = NULL;
    else
        q->tail = NULL;
    q->n--;
    cmd->next = cmd->prev = NULL;
    return cmd;
}

void aredis__cmdq_unlink(aredis__cmdq *q, aredis__cmd *cmd) {
    if (cmd->prev)
        cmd->prev->next = cmd->next;
    else
        q->head = cmd->next;
    if (cmd->next)
        cmd->next->prev = cmd->prev;
    else
        q->tail = cmd->prev;
    q->n--;
    cmd->next = cmd->prev = NULL;
}

void aredis__cmdq_append(aredis__cmdq *q, aredis__cmdq *more) {
    if (!more->head) return;
    more->head->prev = q->tail;
    if (q->tail)
        q->tail->next = more->head;
    else
        q->head = more->head;
    q->tail = more->tail;
    q->n += more->n;
    memset(more, 0, sizeof *more);
}

/* ---- Deadlines ---------------------------------------------------------- */

void aredis__deadline_set(aredis_client *c, aredis__cmd *cmd, uint64_t at, int fifo) {
    if (!fifo) {
        aredis__heap_set(&c->deadlines, &cmd->dl, at);
        return;
    }
    cmd->dl.key = at;
    cmd->flags |= AREDIS__CMD_FIFO;
    cmd->fnext = NULL;
    cmd->fprev = c->fifo.tail;
    if (c->fifo.tail)
        c->fifo.tail->fnext = cmd;
    else
        c->fifo.head = cmd;
    c->fifo.tail = cmd;
}

void aredis__deadline_unlink(aredis_client *c, aredis__cmd *cmd) {
    if (!(cmd->flags & AREDIS__CMD_FIFO)) {
        aredis__heap_del(&c->deadlines, &cmd->dl);
        aredis__heap_shrink(&c->deadlines, c->deadlines.n);
        return;
    }
    if (cmd->fprev)
        cmd->fprev->fnext = cmd->fnext;
    else
        c->fifo.head = cmd->fnext;
    if (cmd->fnext)
        cmd->fnext->fprev = cmd->fprev;
    else
        c->fifo.tail = cmd->fprev;
    cmd->fnext = cmd->fprev = NULL;
    cmd->flags &= ~AREDIS__CMD_FIFO;
}

aredis__cmd *aredis__deadline_first(const aredis_client *c) {
    aredis__hnode *h = aredis__heap_min(&c->deadlines);
    aredis__cmd *f = c->fifo.head;
    if (!h) return f;
    if (!f || h->key < f->dl.key) return aredis__cmd_of(h);
    return f;
}

void aredis__client_free_queues(aredis_client *c) {
    aredis__freelist_trim(c);
    aredis__heap_free(&c->deadlines);
}
