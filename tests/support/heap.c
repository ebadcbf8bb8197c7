/*
 * Test support: allocator hooks that count the library's live heap (see
 * ts_heap_hooks() in ts.h).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "ts.h"

/* In front of every block: its requested size, keeping malloc's alignment. */
typedef union {
    max_align_t align;
    size_t size;
} hdr;

static atomic_llong g_live;   /* bytes requested and not yet freed */
static atomic_llong g_blocks; /* blocks not yet freed */
static atomic_llong g_peak;   /* the highest g_live, realloc's old block included */

/* Live bytes changed by delta; `extra` more were briefly held (realloc). */
static void count(long long delta, long long extra) {
    long long live = atomic_fetch_add(&g_live, delta) + delta + extra;
    long long peak = atomic_load(&g_peak);
    while (live > peak && !atomic_compare_exchange_weak(&g_peak, &peak, live)) {
    }
}

static void *hk_malloc(size_t n) {
    if (n > (size_t)-1 - sizeof(hdr)) return NULL;
    hdr *h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    atomic_fetch_add(&g_blocks, 1);
    count((long long)n, 0);
    return h + 1;
}

static void *hk_calloc(size_t nmemb, size_t size) {
    if (size && nmemb > ((size_t)-1 - sizeof(hdr)) / size) return NULL;
    size_t n = nmemb * size;
    hdr *h = calloc(1, sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    atomic_fetch_add(&g_blocks, 1);
    count((long long)n, 0);
    return h + 1;
}

static void hk_free(void *p) {
    if (!p) return;
    hdr *h = (hdr *)p - 1;
    atomic_fetch_sub(&g_live, (long long)h->size);
    atomic_fetch_sub(&g_blocks, 1);
    free(h);
}

static void *hk_realloc(void *p, size_t n) {
    if (!p) return hk_malloc(n);
    if (n > (size_t)-1 - sizeof(hdr)) return NULL;
    hdr *h = (hdr *)p - 1;
    size_t old = h->size;
    hdr *q = realloc(h, sizeof *q + n);
    if (!q) return NULL; /* p stays valid and counted */
    q->size = n;
    count((long long)n - (long long)old, (long long)old);
    return q + 1;
}

static const aredis_allocator k_hooks = {hk_malloc, hk_calloc, hk_realloc, hk_free};

const aredis_allocator *ts_heap_hooks(void) { return &k_hooks; }

void ts_heap_reset(void) {
    atomic_store(&g_live, 0);
    atomic_store(&g_blocks, 0);
    atomic_store(&g_peak, 0);
}

long long ts_heap_live(void) { return atomic_load(&g_live); }
long long ts_heap_blocks(void) { return atomic_load(&g_blocks); }
long long ts_heap_peak(void) { return atomic_load(&g_peak); }
