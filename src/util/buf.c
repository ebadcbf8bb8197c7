/* Growable byte buffer. */
#include "util/buf.h"

int aredis__buf_reserve(aredis__buf *b, size_t n) {
    size_t need;
    if (aredis__add_overflow(b->len, n, &need)) return -1;
    if (need <= b->cap) return 0;
    /* Reclaim the consumed prefix before growing: at most one memmove. */
    if (b->off > 0 && need - b->off <= b->cap) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *d = aredis__realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int aredis__buf_append(aredis__buf *b, const void *p, size_t n) {
    if (aredis__buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void aredis__buf_consume(aredis__buf *b, size_t n) {
    b->off += n;
    if (b->off >= b->len) b->off = b->len = 0;
}

void aredis__buf_free(aredis__buf *b) {
    aredis__free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
