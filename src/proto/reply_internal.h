/*
 * Shared by reader.c (which builds default replies in arenas) and reply.c
 * (which frees and reference-counts them).
 */
#ifndef AREDIS_PROTO_REPLY_INTERNAL_H
#define AREDIS_PROTO_REPLY_INTERNAL_H

#include "aredis/reply.h"

/* Free a top-level reply built in a reader arena, with all its chunks. */
void aredis__reply_arena_free(aredis_reply *r);

/*
 * Drop the caller's reference to a top-level reply `reader` built: like
 * aredis_reply_release(), but a small leaf whose last reference this was is
 * kept by the reader for its next small leaf instead of being freed. The
 * client calls it once a reply's callback has returned. Any reader will do
 * (the chunk has one size); NULL means a plain release.
 */
struct aredis_reader;
void aredis__reader_recycle(struct aredis_reader *reader, aredis_reply *reply);

#endif
