/*
 * Shared by reader.c (which builds default replies in arenas) and reply.c
 * (which frees and reference-counts them).
 */
#ifndef AREDIS_PROTO_REPLY_INTERNAL_H
#define AREDIS_PROTO_REPLY_INTERNAL_H

#include "aredis/reply.h"

/*
 * How a reply's memory is held (aredis_reply.priv_alloc):
 * - REPLY_OWN: one allocation per object (the builder table in reply.c);
 * - REPLY_ARENA_ROOT: a top-level reply heading a chain of arena chunks;
 * - REPLY_ARENA_MEMBER: inside its top-level reply's arena, never freed alone;
 * - REPLY_ARENA_SMALL: a top-level leaf in one block of the thread block
 *   cache's size (util/cache.h), parked there for reuse when freed;
 * - REPLY_STATIC: a shared read-only reply (the top-level nil): retain,
 *   release and free leave it alone;
 * - REPLY_COMPOSITE: an array assembled from whole replies (a pipeline's
 *   results): one allocation with its element slots; freeing it releases
 *   each element.
 */
enum {
    REPLY_OWN = 0,
    REPLY_ARENA_ROOT = 1,
    REPLY_ARENA_MEMBER = 2,
    REPLY_ARENA_SMALL = 3,
    REPLY_STATIC = 4,
    REPLY_COMPOSITE = 5 /* an array made by the library whose elements are
                           top-level replies, one reference each */
};

/* An empty ARRAY reply (REPLY_COMPOSITE) with room for n elements; each
 * element added gets one more reference, released with the array. */
aredis_reply *aredis__reply_array_new(size_t n);
void aredis__reply_array_add(aredis_reply *a, aredis_reply *elem);

/* Free a top-level reply built in a reader arena, with all its chunks. */
void aredis__reply_arena_free(aredis_reply *r);

#endif
