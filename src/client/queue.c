/*
 * Command records and the two FIFO queues (waiting for a connection; sent
 * and awaiting a reply). Deadlines live in a shared min-heap (util/heap.h)
 * so that one loop timer serves every command of a client.
 *
 * Records are recycled through a small per-client free list, so issuing a
 * command in steady state allocates nothing.
 */
#include <stdint.h>

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
    cmd->next = NULL;
    cmd->cb = NULL;
    cmd->data = NULL;
    aredis__hnode_init(&cmd->dl);
    cmd->buf = NULL;
    cmd->len = 0;
    cmd->flags = 0;
    return cmd;
}

void aredis__cmd_recycle(aredis_client *c, aredis__cmd *cmd) {
    aredis__heap_del(&c->deadlines, &cmd->dl);
    aredis__free(cmd->buf);
    cmd->buf = NULL;
    if (c->nfree < FREELIST_MAX) {
        cmd->next = c->freelist;
        c->freelist = cmd;
        c->nfree++;
    } else {
        aredis__free(cmd);
    }
}

void aredis__cmdq_push(aredis__cmdq *q, aredis__cmd *cmd) {
    cmd->next = NULL;
    if (q->tail) q->tail->next = cmd;
    else q->head = cmd;
    q->tail = cmd;
    q->n++;
}

aredis__cmd *aredis__cmdq_pop(aredis__cmdq *q) {
    aredis__cmd *cmd = q->head;
    if (!cmd) return NULL;
    q->head = cmd->next;
    if (!q->head) q->tail = NULL;
    q->n--;
    cmd->next = NULL;
    return cmd;
}

void aredis__client_free_queues(aredis_client *c) {
    aredis__cmd *cmd;
    while ((cmd = c->freelist)) {
        c->freelist = cmd->next;
        aredis__free(cmd);
    }
    c->nfree = 0;
    aredis__heap_free(&c->deadlines);
}
