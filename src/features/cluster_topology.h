/*
 * A Redis Cluster's topology (no I/O): which node serves each of the 16384
 * hash slots, and each primary's replicas, read from a node's answer to
 * CLUSTER SHARDS (Redis 7+) or CLUSTER SLOTS (older servers, and the
 * fallback). `tls`: the asker connects with TLS, so SHARDS' tls-port is
 * the port to use (SLOTS answers with the asking connection's kind). The cluster client (to come)
 * asks a node, builds one of these, and swaps it in whole: a command is routed by looking its slot
 * up here.
 *
 * Node addresses: a node that does not know its own address (a one-node
 * cluster answers "" for its IP) is given the address the question was
 * sent to; "?" (an unknown endpoint) leaves the node unusable (port 0)
 * and its slots unserved.
 */
#ifndef AREDIS_CLUSTER_TOPOLOGY_H
#define AREDIS_CLUSTER_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/reply.h"
#include "proto/slot.h"

typedef struct aredis__cnode {
    char *host;  /* owned; the address to connect to */
    int port;    /* 0: no usable address */
    char id[48]; /* the node id (40 hex digits), "" when not given */
    int primary; /* 1: serves slots (a master); 0: a replica */
    int healthy; /* CLUSTER SHARDS "health": online (1) or failed/loading (0);
                    1 when not reported (CLUSTER SLOTS) */
    int of;      /* a replica: the index of its primary in `nodes`; -1 */
} aredis__cnode;

typedef struct aredis__ctopo {
    aredis__cnode *nodes;
    size_t nnodes;
    /* Per slot: 1 + the index of the primary serving it; 0: nobody. */
    uint16_t owner[AREDIS__SLOTS];
    size_t covered; /* slots with an owner */
} aredis__ctopo;

/*
 * Build a topology from a reply to CLUSTER SHARDS or CLUSTER SLOTS (RESP2
 * or RESP3), asked of `asked_host` (the address for nodes that do not know
 * theirs). NULL when the reply is not one of them or when out of memory;
 * *why then says which (static text).
 */
aredis__ctopo *aredis__ctopo_from_shards(const aredis_reply *r, const char *asked_host, int tls,
                                         const char **why);
aredis__ctopo *aredis__ctopo_from_slots(const aredis_reply *r, const char *asked_host, int tls,
                                        const char **why);
void aredis__ctopo_free(aredis__ctopo *t);

/* The primary serving a slot, or NULL. */
static inline const aredis__cnode *aredis__ctopo_owner(const aredis__ctopo *t, unsigned slot) {
    unsigned i = t->owner[slot & (AREDIS__SLOTS - 1)];
    return i ? &t->nodes[i - 1] : NULL;
}

/* The node with this address, or -1. */
int aredis__ctopo_find(const aredis__ctopo *t, const char *host, int port);
/* The node with this address, added when new (a MOVED names a node the
 * topology did not know yet); -1 when out of memory. */
int aredis__ctopo_node(aredis__ctopo *t, const char *host, int port, int primary);
/* A MOVED says who serves a slot now. */
void aredis__ctopo_set_owner(aredis__ctopo *t, unsigned slot, int node);

#endif
