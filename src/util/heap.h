/*
 * An intrusive binary min-heap of deadlines, shared by the built-in loop's
 * timers and the client's command deadlines. A node lives inside the object
 * it orders (container_of to get back); equal keys come out in the order
 * they were set (a sequence number breaks ties), so commands with the same
 * deadline time out in issue order.
 *
 * aredis__heap_set() cannot fail: reserve room first, where failure can
 * still be reported.
 */
#ifndef AREDIS_UTIL_HEAP_H
#define AREDIS_UTIL_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define AREDIS__HEAP_NONE SIZE_MAX

typedef struct aredis__hnode {
    uint64_t key; /* the deadline */
    uint64_t seq; /* when it was set: breaks ties */
    size_t idx;   /* position, or AREDIS__HEAP_NONE when not in a heap */
} aredis__hnode;

typedef struct aredis__heap {
    aredis__hnode **v;
    size_t n, cap;
    uint64_t seq;
} aredis__heap;

static inline void aredis__hnode_init(aredis__hnode *x) { x->idx = AREDIS__HEAP_NONE; }
static inline int aredis__hnode_in(const aredis__hnode *x) { return x->idx != AREDIS__HEAP_NONE; }
static inline aredis__hnode *aredis__heap_min(const aredis__heap *h) {
    return h->n ? h->v[0] : NULL;
}

/* Room for `total` nodes. 0, or -1 when out of memory. */
int aredis__heap_reserve(aredis__heap *h, size_t total);
/* Insert x with `key`, or move it there if already in. Room must exist. */
void aredis__heap_set(aredis__heap *h, aredis__hnode *x, uint64_t key);
/* Take x out (no-op when it is not in). */
void aredis__heap_del(aredis__heap *h, aredis__hnode *x);
/*
 * A heap that grew for a burst (100,000 commands timing out in an outage)
 * gives room back: when at most a quarter is used, and `keep` (the room the
 * owner promised someone) still fits, the array is halved — halving, so a
 * size going up and down by one does not reallocate each time.
 */
void aredis__heap_shrink(aredis__heap *h, size_t keep);
void aredis__heap_free(aredis__heap *h);

#endif
