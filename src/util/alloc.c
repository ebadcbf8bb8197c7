/* The library allocator: process-global hooks, overflow-checked helpers. */
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "util/cache.h"

static aredis_allocator g_alloc = {malloc, calloc, realloc, free};

/* Cached blocks go back to the allocator they came from, before it changes. */
aredis_allocator aredis_set_allocator(const aredis_allocator *a) {
    aredis__cache_flush();
    aredis_allocator old = g_alloc;
    if (a == NULL || !a->malloc_fn || !a->calloc_fn || !a->realloc_fn || !a->free_fn) {
        aredis_reset_allocator();
    } else {
        g_alloc = *a;
    }
    return old;
}

void aredis_reset_allocator(void) {
    aredis__cache_flush();
    g_alloc.malloc_fn = malloc;
    g_alloc.calloc_fn = calloc;
    g_alloc.realloc_fn = realloc;
    g_alloc.free_fn = free;
}

void *aredis__malloc(size_t n) { return g_alloc.malloc_fn(n ? n : 1); }

void *aredis__calloc(size_t nmemb, size_t size) {
    size_t total;
    if (aredis__mul_overflow(nmemb, size, &total)) return NULL;
    return g_alloc.calloc_fn(nmemb ? nmemb : 1, size ? size : 1);
}

void *aredis__realloc(void *p, size_t n) { return g_alloc.realloc_fn(p, n ? n : 1); }

void aredis__free(void *p) {
    if (p) g_alloc.free_fn(p);
}

void *aredis_mem_calloc(size_t nmemb, size_t size) { return aredis__calloc(nmemb, size); }

void aredis_mem_free(void *p) { aredis__free(p); }

void *aredis__reallocarray(void *p, size_t nmemb, size_t size) {
    size_t total;
    if (aredis__mul_overflow(nmemb, size, &total)) return NULL;
    return aredis__realloc(p, total);
}

char *aredis__memdup0(const void *s, size_t len) {
    size_t n;
    if (aredis__add_overflow(len, 1, &n)) return NULL;
    char *d = aredis__malloc(n);
    if (!d) return NULL;
    if (len) memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *aredis__strdup(const char *s) { return s ? aredis__memdup0(s, strlen(s)) : NULL; }
