/*
 * Shared by reader.c (which builds default replies in arenas) and reply.c
 * (which frees and reference-counts them).
 */
#ifndef AREDIS_PROTO_REPLY_INTERNAL_H
#define AREDIS_PROTO_REPLY_INTERNAL_H

#include "aredis/reply.h"

/* Free a top-level reply built in a reader arena, with all its chunks. */
void aredis__reply_arena_free(aredis_reply *r);

#endif
