/*
 * What the cluster's files share (aredis/cluster.h is the public face):
 *
 *   cluster.c          nodes, topology reads, routing, redirections: the
 *                      route, one unit of work sent to one node
 *   cluster_api.c      the public command, future and node functions
 *   cluster_batch.c    pipelines (routes merged in order) and transactions
 *                      (one route of MULTI ... EXEC)
 *   cluster_pubsub.c   sharded pub/sub on the owning nodes
 *   cluster_scan.c     SCAN over every primary
 */
#ifndef AREDIS_FEATURES_CLUSTER_INTERNAL_H
#define AREDIS_FEATURES_CLUSTER_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "aredis/cluster.h"
#include "client/feature.h"
#include "features/cluster_topology.h"
#include "proto/slot.h"
#include "util/buf.h"

typedef struct aredis__clnode {
    struct aredis__clnode *next;
    aredis_cluster *cl;
    char *host;
    int port;
    int replica; /* connected with READONLY */
    int retired; /* left the topology: closing once idle */
    aredis_client *c;
    aredis_pool *pool; /* exclusive connections to this node (aredis_cluster_pool) */
    struct aredis__croute *routes, *routes_tail; /* sent here and not finished, in order */
} aredis__clnode;

typedef struct aredis__croute aredis__croute;

/* A route's end, for routes that belong to a pipeline or a transaction:
 * r or err (as a reply callback's); the function releases the route. */
typedef void aredis__croute_fin(aredis__croute *x, aredis_client *c, aredis_reply *r,
                                const aredis_error *err);

/*
 * A unit of work for one node: one command, or a transaction's MULTI ...
 * EXEC (ncmds commands, ends[] where each ends). Its bytes are kept so that
 * a redirection can send it again.
 */
struct aredis__croute {
    aredis__croute *next;              /* waiting for the topology, or for a TRYAGAIN retry */
    aredis__croute *on_prev, *on_next; /* in its node's list while sent there */
    aredis__clnode *on;                /* the node it was sent to, or NULL */
    aredis__cmd *cmd;                  /* its record there (to take it back) */
    int rerouting;                     /* being taken back: send again, do not finish */
    aredis_cluster *cl;
    aredis_reply_fn *cb; /* delivery of a lone command */
    void *data;
    aredis__croute_fin *fin; /* or this, for a pipeline's or transaction's */
    void *parent;
    size_t index;
    aredis_reply *reply; /* the last reply (kept from the part hook to done) */
    aredis_reply *redir; /* the first MOVED/ASK/TRYAGAIN among its replies */
    unsigned redirects;
    unsigned ncmds; /* commands in bytes (1, or a transaction's) */
    size_t *ends;   /* ncmds > 1: where each ends (owned) */
    int asking;     /* sent behind ASKING: reply 0 is ASKING's */
    int slot;       /* or an AREDIS__SLOT_* */
    int readonly;   /* may go to a replica */
    uint64_t block_ms;
    int block_forever, sensitive;
    size_t len, cap;
    char bytes[];
};

typedef struct aredis__clseed {
    char *host;
    int port;
} aredis__clseed;

struct aredis_cluster_sub;

struct aredis_cluster {
    aredis_loop *loop;
    aredis_options nopt; /* every node's options (copied strings) */
    unsigned max_redirects;
    uint32_t min_refresh;
    aredis_read_from read_from;
    aredis__clseed *seeds;
    size_t nseeds, next_seed;
    size_t first_failures; /* failed reads before a first topology */
    aredis__clnode *nodes;
    aredis__clnode *retired; /* closing once idle */
    aredis__ctopo *topo;
    aredis__clnode **tnode; /* topology node i's connection, once looked up */
    size_t ntnode;
    aredis__croute *wait_head, *wait_tail;
    aredis__croute *retry_head, *retry_tail; /* TRYAGAIN: sent again on a timer */
    int refreshing;
    aredis_client *read_on; /* where the last topology read went (compared only) */
    int refresh_armed;
    uint64_t last_refresh;
    unsigned rr; /* replica choice */
    aredis_timer *timer;
    aredis_timer *periodic;
    aredis_timer *retry_timer;
    int freeing;
    int depth;
    int free_pending;
    /* Routes on node lists and the cluster's own commands (topology reads,
     * command_all): the memory stays until they are all over, as a node
     * connection freed from inside its own callback still fails them. */
    size_t outstanding;
    aredis__clnode *dead; /* nodes of a freed cluster: freed with it */
    aredis__croute *spare;
    size_t nspare;
    aredis__buf enc;
    aredis__slot_memo memo;            /* the last command's shape (proto/slot.h) */
    struct aredis_cluster_sub *subs;   /* sharded subscriptions (cluster_pubsub.c) */
    struct aredis_cluster_scan *scans; /* scans (cluster_scan.c) */
    aredis_cluster_stats st;
};

/* Encode a command (fmt with *ap, else argc/argv/argvlen) into cl->enc:
 * OK, or the refusal with aredis_call_error() set (cluster_api.c). */
aredis_err aredis__cl_encode(aredis_cluster *cl, int argc, const char *const *argv,
                             const size_t *argvlen, const char *fmt, va_list *ap);

/*
 * Replies gathered by index into one ARRAY, handed to cb once every part
 * is in: a pipeline's exec, command_all (cluster_batch.c). `left` counts
 * the parts out plus one hold the caller drops when all are out; the first
 * failure (code, detail) makes the whole an error instead.
 */
typedef struct aredis__clgather {
    aredis_cluster *cl;
    aredis_reply_fn *cb;
    void *data;
    size_t n, left;
    aredis_err code;
    char prefix[32];
    char detail[256];
    aredis_reply *replies[];
} aredis__clgather;

/* n parts, held once (left = 1); NULL when out of memory. */
aredis__clgather *aredis__cl_gather_new(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                        size_t n);
/* The first failure wins. */
void aredis__cl_gather_fail(aredis__clgather *g, aredis_err code, const char *detail,
                            const char *prefix);
/* A part (or the hold) is over: the last one delivers (c: the connection
 * that answered it) and frees g. */
void aredis__cl_gather_end(aredis__clgather *g, aredis_client *c);
/* Nothing went out (every part refused at once): the refusal, g freed,
 * its callback never run. */
aredis_err aredis__cl_gather_refused(aredis__clgather *g);

/* Free-safety around the cluster's own callbacks (as the client's). */
void aredis__cl_enter(aredis_cluster *cl);
void aredis__cl_leave(aredis_cluster *cl);
/* One of the cluster's own commands goes out / is over (inside enter/leave):
 * a freed cluster's memory waits for them. */
static inline void aredis__cl_hold(aredis_cluster *cl) { cl->outstanding++; }
static inline void aredis__cl_unhold(aredis_cluster *cl) { cl->outstanding--; }
/* Whether c is one of the cluster's live node connections. */
int aredis__cl_has_client(const aredis_cluster *cl, const aredis_client *c);

/* What a command is to a cluster. */
typedef struct aredis__clcheck {
    int slot;     /* or an AREDIS__SLOT_* */
    int readonly; /* a read (may go to a replica) */
    uint64_t block_ms;
    int block_forever, sensitive;
} aredis__clcheck;

/*
 * Check an encoded command for a cluster: OK, or the refusal (CROSSSLOT,
 * UNSUPPORTED for session commands, what the command API refuses,
 * CANCELLED while freeing) with aredis_call_error() set. `in_tx`: one
 * queued in a transaction (the refusal's words say so).
 */
aredis_err aredis__cl_check(aredis_cluster *cl, const char *bytes, size_t len, int in_tx,
                            aredis__clcheck *out);
/* A checked route holding the command: NULL with aredis_call_error() set
 * when refused or out of memory. */
aredis__croute *aredis__cl_route_make(aredis_cluster *cl, const char *bytes, size_t len);
/* A route of len bytes, not checked (the caller fills it). */
aredis__croute *aredis__cl_route_new(aredis_cluster *cl, size_t len);
/* Drop a route that was never sent. */
void aredis__cl_route_free(aredis__croute *x);
/* Send it where it belongs (or let it wait for the topology). Returns OK,
 * or an error with the route untouched (the caller frees it). */
aredis_err aredis__cl_route_send(aredis__croute *x);

/* Read the topology again (now, or when the rate limit allows). */
void aredis__cl_refresh(aredis_cluster *cl);

/* The node connection serving slot (its primary; NULL when unknown). */
aredis_client *aredis__cl_owner_client(aredis_cluster *cl, int slot);
/* Each primary of the topology, in slot order: their connections. */
size_t aredis__cl_primaries(aredis_cluster *cl, aredis_client **out, size_t max);

/* cluster_pubsub.c: after a topology change, move channels whose slot
 * has a new owner; at free, detach. */
void aredis__cl_subs_reconcile(aredis_cluster *cl);
void aredis__cl_subs_detach(aredis_cluster *cl);
/* Subscribe calls waiting for a first topology fail with the reason too. */
void aredis__cl_subs_fail_waiting(aredis_cluster *cl, aredis_err code, const char *detail);
/* cluster_scan.c: at free, detach the scans. */
void aredis__cl_scans_detach(aredis_cluster *cl);
/* Whether host:port is a primary of the current topology. */
int aredis__cl_is_primary(const aredis_cluster *cl, const char *host, int port);
/* The connection to host:port (made when new); NULL when out of memory. */
aredis_client *aredis__cl_node_client(aredis_cluster *cl, const char *host, int port);
/* The address of each primary, in slot order (as aredis__cl_primaries):
 * up to max into hosts (borrowed from the topology: copy them) and ports. */
size_t aredis__cl_primary_addrs(const aredis_cluster *cl, const char **hosts, int *ports,
                                size_t max);

#endif
