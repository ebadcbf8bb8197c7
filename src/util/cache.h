/*
 * A per-thread cache of small blocks, for the commonest allocation of all:
 * one small reply per command (src/proto/reader.c). Freeing a reply parks
 * its block here; the next small reply made on this thread takes it back,
 * instead of a malloc/free pair.
 *
 * Blocks are AREDIS__CACHE_BLOCK bytes, allocated with aredis__malloc() by
 * the caller; at most AREDIS__CACHE_MAX are kept per thread (2 KiB), the rest
 * are freed as usual. A thread's blocks are freed when it exits (and the
 * thread that calls exit() frees its own then); the calling thread's are
 * freed by aredis__cache_flush(), which runs whenever the allocator hooks
 * change (blocks go back to the allocator they came from).
 */
#ifndef AREDIS_UTIL_CACHE_H
#define AREDIS_UTIL_CACHE_H

#include <stddef.h>

#define AREDIS__CACHE_BLOCK 128
#define AREDIS__CACHE_MAX 16

#if defined(__SANITIZE_ADDRESS__)
#define AREDIS__CACHE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AREDIS__CACHE_ASAN 1
#endif
#endif
#ifdef AREDIS__CACHE_ASAN
/* A parked block is poisoned: a use after free of a cached reply is reported. */
#include <sanitizer/asan_interface.h>
#define AREDIS__CACHE_POISON(p) ASAN_POISON_MEMORY_REGION((p), AREDIS__CACHE_BLOCK)
#define AREDIS__CACHE_UNPOISON(p) ASAN_UNPOISON_MEMORY_REGION((p), AREDIS__CACHE_BLOCK)
#else
#define AREDIS__CACHE_POISON(p) ((void)(p))
#define AREDIS__CACHE_UNPOISON(p) ((void)(p))
#endif

typedef struct aredis__cache_block {
    struct aredis__cache_block *next;
} aredis__cache_block;

typedef struct aredis__cache {
    aredis__cache_block *head;
    unsigned n;
    int registered; /* this thread's exit destructor is set */
    int closed;     /* drained at exit: cache nothing more */
} aredis__cache;

/* This thread's cache (the list is only ever touched by its own thread). */
extern _Thread_local aredis__cache aredis__tls_cache;

/* Slow path of put: register the thread-exit destructor; 0 if impossible. */
int aredis__cache_register(void);

/* A block of AREDIS__CACHE_BLOCK bytes from this thread's cache, or NULL. */
static inline void *aredis__cache_get(void) {
    aredis__cache *c = &aredis__tls_cache;
    aredis__cache_block *b = c->head;
    if (!b) return NULL;
    AREDIS__CACHE_UNPOISON(b);
    c->head = b->next;
    c->n--;
    return b;
}

/* Keep p (a block of AREDIS__CACHE_BLOCK bytes from aredis__malloc) for
 * reuse: 1 if kept, 0 if the caller must free it (the cache is full). */
static inline int aredis__cache_put(void *p) {
    aredis__cache *c = &aredis__tls_cache;
    if (c->n >= AREDIS__CACHE_MAX || (!c->registered && !aredis__cache_register()) || c->closed)
        return 0;
    aredis__cache_block *b = (aredis__cache_block *)p;
    b->next = c->head;
    c->head = b;
    c->n++;
    AREDIS__CACHE_POISON(b);
    return 1;
}

/* Free this thread's cached blocks. */
void aredis__cache_flush(void);

#endif
