/* Internal allocation helpers: every allocation goes through the hooks. */
#ifndef AREDIS_UTIL_ALLOC_H
#define AREDIS_UTIL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/alloc.h"

void *aredis__malloc(size_t n);
void *aredis__calloc(size_t nmemb, size_t size);
void *aredis__realloc(void *p, size_t n);
void aredis__free(void *p);
/* Copy a NUL-terminated string (NULL in, NULL out). */
char *aredis__strdup(const char *s);
/* Copy len bytes and add a NUL. */
char *aredis__memdup0(const void *s, size_t len);
/* realloc for an array of nmemb elements of size bytes, overflow-checked. */
void *aredis__reallocarray(void *p, size_t nmemb, size_t size);

/* a*b overflow check: returns 1 on overflow. */
static inline int aredis__mul_overflow(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline int aredis__add_overflow(size_t a, size_t b, size_t *out) {
    return __builtin_add_overflow(a, b, out);
}

#endif
