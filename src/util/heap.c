/* The shared deadline min-heap: see heap.h. */
#include "util/heap.h"

#include "util/alloc.h"

static int before(const aredis__hnode *a, const aredis__hnode *b) {
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void put(aredis__heap *h, size_t i, aredis__hnode *x) {
    h->v[i] = x;
    x->idx = i;
}

static void up(aredis__heap *h, size_t i) {
    aredis__hnode *x = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(x, h->v[parent])) break;
        put(h, i, h->v[parent]);
        i = parent;
    }
    put(h, i, x);
}

static void down(aredis__heap *h, size_t i) {
    aredis__hnode *x = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(h->v[c + 1], h->v[c])) c++;
        if (!before(h->v[c], x)) break;
        put(h, i, h->v[c]);
        i = c;
    }
    put(h, i, x);
}

int aredis__heap_reserve(aredis__heap *h, size_t total) {
    if (total <= h->cap) return 0;
    size_t cap = h->cap ? h->cap : 16;
    while (cap < total)
        cap *= 2;
    aredis__hnode **v = aredis__reallocarray(h->v, cap, sizeof *v);
    if (!v) return -1;
    h->v = v;
    h->cap = cap;
    return 0;
}

void aredis__heap_set(aredis__heap *h, aredis__hnode *x, uint64_t key) {
    x->key = key;
    x->seq = h->seq++;
    if (!aredis__hnode_in(x)) {
        put(h, h->n++, x);
        up(h, x->idx);
    } else {
        up(h, x->idx);
        down(h, x->idx);
    }
}

void aredis__heap_shrink(aredis__heap *h, size_t keep) {
    if (h->cap <= 16 || h->n > h->cap / 4 || keep > h->cap / 4) return;
    size_t cap = h->cap / 2;
    aredis__hnode **v = aredis__reallocarray(h->v, cap, sizeof *v);
    if (!v) return; /* keep the larger array: still correct */
    h->v = v;
    h->cap = cap;
}

void aredis__heap_del(aredis__heap *h, aredis__hnode *x) {
    if (!aredis__hnode_in(x)) return;
    size_t i = x->idx;
    aredis__hnode *last = h->v[--h->n];
    x->idx = AREDIS__HEAP_NONE;
    if (last == x) return;
    put(h, i, last);
    up(h, i);
    down(h, last->idx);
}

void aredis__heap_free(aredis__heap *h) {
    aredis__free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
