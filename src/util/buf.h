/*
 * A growable byte buffer with a read offset. Used for the output buffer
 * (commands appended at the end, written from `off`) and for formatting.
 */
#ifndef AREDIS_UTIL_BUF_H
#define AREDIS_UTIL_BUF_H

#include <stddef.h>
#include <string.h>

#include "util/alloc.h"

typedef struct aredis__buf {
    char *data;
    size_t off; /* bytes before off are consumed */
    size_t len; /* bytes in use (including consumed prefix) */
    size_t cap;
} aredis__buf;

/* Make room for n more bytes. 0 on success, -1 when out of memory. */
int aredis__buf_reserve(aredis__buf *b, size_t n);
int aredis__buf_append(aredis__buf *b, const void *p, size_t n);
void aredis__buf_free(aredis__buf *b);
/* Drop n consumed bytes from the front; resets when empty. */
void aredis__buf_consume(aredis__buf *b, size_t n);

static inline size_t aredis__buf_used(const aredis__buf *b) { return b->len - b->off; }

#endif
