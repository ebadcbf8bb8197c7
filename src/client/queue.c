/*
 * Command records, the two FIFO queues (waiting for a connection; sent and
 * awaiting a reply) and the min-heap of deadlines that lets one loop timer
 * serve every command of a client.
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
    cmd->deadline = 0;
    cmd->heap_idx = SIZE_MAX;
    cmd->buf = NULL;
    cmd->len = 0;
    cmd->flags = 0;
    return cmd;
}

void aredis__cmd_recycle(aredis_client *c, aredis__cmd *cmd) {
    aredis__heap_remove(c, cmd);
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

/* ---- Deadline heap ------------------------------------------------------ */

static void heap_set(aredis_client *c, size_t i, aredis__cmd *cmd) {
    c->heap[i] = cmd;
    cmd->heap_idx = i;
}

static void sift_up(aredis_client *c, size_t i) {
    aredis__cmd *cmd = c->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (c->heap[p]->deadline <= cmd->deadline) break;
        heap_set(c, i, c->heap[p]);
        i = p;
    }
    heap_set(c, i, cmd);
}

static void sift_down(aredis_client *c, size_t i) {
    aredis__cmd *cmd = c->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        uint64_t best = cmd->deadline;
        if (l < c->heap_n && c->heap[l]->deadline < best) m = l, best = c->heap[l]->deadline;
        if (l + 1 < c->heap_n && c->heap[l + 1]->deadline < best) m = l + 1;
        if (m == i) break;
        heap_set(c, i, c->heap[m]);
        i = m;
    }
    heap_set(c, i, cmd);
}

int aredis__heap_push(aredis_client *c, aredis__cmd *cmd) {
    if (c->heap_n == c->heap_cap) {
        size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
        aredis__cmd **h = aredis__reallocarray(c->heap, cap, sizeof *h);
        if (!h) return -1;
        c->heap = h;
        c->heap_cap = cap;
    }
    c->heap[c->heap_n] = cmd;
    cmd->heap_idx = c->heap_n++;
    sift_up(c, cmd->heap_idx);
    return 0;
}

void aredis__heap_remove(aredis_client *c, aredis__cmd *cmd) {
    size_t i = cmd->heap_idx;
    if (i == SIZE_MAX) return;
    cmd->heap_idx = SIZE_MAX;
    aredis__cmd *last = c->heap[--c->heap_n];
    if (i == c->heap_n) return;
    heap_set(c, i, last);
    if (i > 0 && c->heap[(i - 1) / 2]->deadline > last->deadline) sift_up(c, i);
    else sift_down(c, i);
}

void aredis__client_free_queues(aredis_client *c) {
    aredis__cmd *cmd;
    while ((cmd = c->freelist)) {
        c->freelist = cmd->next;
        aredis__free(cmd);
    }
    c->nfree = 0;
    aredis__free(c->heap);
    c->heap = NULL;
    c->heap_n = c->heap_cap = 0;
}
