/*
 * The cluster client's core (internal for now; the public aredis/cluster.h
 * comes with pipelines, transactions and sharded pub/sub): one aredis_client
 * per node, commands routed by their keys' hash slot to the primary the
 * topology names, MOVED and ASK followed, the topology read from CLUSTER
 * SHARDS (CLUSTER SLOTS on servers without it) and read again after a
 * MOVED or a lost node connection, at most once per min_refresh_ms.
 *
 *   routing      proto/slot.c: the command's keys (command table) must all
 *                hash to one slot (else refused: UNSUPPORTED, "CROSSSLOT
 *                ..."); keyless commands (and those whose keys cannot be
 *                known) go to any reachable primary
 *   MOVED        "MOVED <slot> <host>:<port>": the slot's owner is updated
 *                at once, the command sent again there, and the topology
 *                read again (a MOVED usually means a whole range moved)
 *   ASK          "ASK <slot> <host>:<port>": ASKING and the command, as one
 *                batch, to that node; the slot's owner is not changed
 *   before the topology is known, commands wait (in order) and go out
 *   when it is; if it cannot be read they fail with the reason.
 *
 * Callback contract as for aredis_command (aredis/client.h): the callback
 * runs exactly once, never inside the call, with the reply of the command
 * on the node that finally answered it (redirections are not seen).
 */
#ifndef AREDIS_FEATURES_CLUSTER_H
#define AREDIS_FEATURES_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"

typedef struct aredis__cluster aredis__cluster;

#define AREDIS__CLUSTER_NO_PERIODIC UINT32_MAX

typedef struct aredis__cluster_opts {
    const char *seed_host; /* a node to start from */
    int seed_port;
    /* Every node connection's options (host and port are the cluster's
     * to set; a key prefix is refused for now). */
    aredis_options node;
    unsigned max_redirects;  /* MOVED/ASK followed per command (5) */
    uint32_t min_refresh_ms; /* topology read at most this often (100) */
    /* The topology is also read this often, unasked (a scale-out, a
     * replica added: nothing a command would notice). 0: 30 s;
     * AREDIS__CLUSTER_NO_PERIODIC: never. */
    uint32_t refresh_every_ms;
} aredis__cluster_opts;

/* NULL with aredis_call_error() set when the options are invalid or out of
 * memory. Connects to the seed at once. */
aredis__cluster *aredis__cluster_new(aredis_loop *loop, const aredis__cluster_opts *o);
void aredis__cluster_free(aredis__cluster *cl);

/* Issue a command (format or argv form). */
aredis_err aredis__cluster_command(aredis__cluster *cl, aredis_reply_fn *cb, void *data,
                                   const char *fmt, ...);
aredis_err aredis__cluster_command_argv(aredis__cluster *cl, aredis_reply_fn *cb, void *data,
                                        int argc, const char *const *argv, const size_t *argvlen);

/* For tests: topology reads done (successful), MOVED and ASK followed,
 * and node connections made. */
typedef struct aredis__cluster_stats {
    uint64_t refreshes, moved, asked;
    size_t nodes;
} aredis__cluster_stats;
void aredis__cluster_get_stats(const aredis__cluster *cl, aredis__cluster_stats *out);

#endif
