/*
 * What observe.c (operations, events), metrics.c (counting) and pool.c
 * share about observability. The client side is in client/feature.h.
 */
#ifndef AREDIS_OBSERVE_INTERNAL_H
#define AREDIS_OBSERVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/observe.h"
#include "client/feature.h"

struct aredis__mserver;
struct aredis__mname;
struct aredis__mpool;

/* A client's observability state (made at the first setter; freed with
 * the client). */
typedef struct aredis__obs {
    aredis_client *c;
    const aredis_observer *ob;
    void *ob_data;
    void *parent;
    /* the connection: the peer as connected, attempt and ready times */
    char peer[64];
    int peer_port;
    int has_peer;
    uint64_t conn_t0; /* a connect attempt under way since (ns); 0 = none */
    uint64_t up_t0;   /* ready since (ns) */
    /* metrics (metrics.c) */
    aredis_metrics *m;
    unsigned mgen; /* bumped at every detach: entries of older ops are stale */
    struct aredis__mserver *srv;
    struct aredis__mname *last; /* the name looked up last */
    void *free_recs;            /* observer records kept for reuse */
    unsigned nfree_recs;
    aredis_client_stats base; /* the client's counters when attached */
    struct aredis__obs *mprev, *mnext;
    /* A clone (the hidden subscriber connection of aredis/pubsub.h)
     * follows its origin: what is set on the origin is set on it. */
    struct aredis__obs *leader, *followers, *fprev, *fnext;
} aredis__obs;

uint64_t aredis__mono_ns(void);
/* error.type of a failure: "TIMEOUT" for AREDIS_ERR_TIMEOUT... */
const char *aredis__err_type(aredis_err code);
int64_t aredis__unix_ns(void);

/* The client's state, made when missing (NULL when out of memory), and
 * the hot path's switch set from it: on while an observer or metrics are. */
aredis__obs *aredis__obs_get(aredis_client *c);
void aredis__obs_refresh(aredis_client *c);
void aredis__obs_free_recs(aredis__obs *o);
/* Issue the library's own commands unobserved: pause, issue, unpause. */
void aredis__obs_pause(aredis_client *c, int paused);

/* ---- metrics.c -------------------------------------------------------------- */

/* The entry operations named `name` count in (NULL when out of memory). */
struct aredis__mname *aredis__metrics_slot(aredis__obs *o, const char *name, size_t len);
/* An operation ended: its duration and outcome (type NULL: succeeded). */
void aredis__metrics_record(aredis__obs *o, struct aredis__mname *slot, uint64_t ns,
                            aredis_err code, const char *type);
/* A connection event (AREDIS_CONN_*). */
void aredis__metrics_conn(aredis__obs *o, int kind, aredis_err code);
/* Stop counting into o->m (counts folded into it). */
void aredis__metrics_detach(aredis__obs *o);

/* A pool's entry: its wait times and, at each snapshot, its gauges. */
struct aredis__mpool *aredis__metrics_pool_attach(aredis_metrics *m, aredis_pool *pool,
                                                  const char *name, size_t max);
/* Its name, unique in its metrics ("host:port/db", "#2"... after). */
const char *aredis__metrics_pool_name(const struct aredis__mpool *mp);
void aredis__metrics_pool_detach(struct aredis__mpool *mp);
void aredis__metrics_pool_wait(struct aredis__mpool *mp, uint64_t ns, aredis_err code);
/* pool.c: m is being freed; forget its entry. */
void aredis__pool_metrics_gone(aredis_pool *pool);

#endif
