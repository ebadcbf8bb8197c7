/*
 * The cluster's core (cluster_internal.h): node connections, topology
 * reads, routing by hash slot, redirections. Sections:
 *   nodes      one aredis_client per node address, made when first needed;
 *              closed (once idle) when the node leaves the topology
 *   topology   CLUSTER SHARDS (or SLOTS) asked of a connected node or a
 *              seed, installed whole; reads rate-limited by a timer
 *   routes     a command (or a transaction) routed, sent as one batch (its
 *              bytes kept for a redirection), redirected (MOVED, ASK,
 *              TRYAGAIN), finished
 *   lifecycle  new, free
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/tls.h"
#include "features/cluster_internal.h"
#include "proto/slot.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/log.h"

void aredis__cl_enter(aredis_cluster *cl) { cl->depth++; }
static void cluster_destroy(aredis_cluster *cl);
void aredis__cl_leave(aredis_cluster *cl) {
    if (--cl->depth == 0 && cl->free_pending && !cl->outstanding) cluster_destroy(cl);
}

static void refresh(aredis_cluster *cl);
static void send_waiting(aredis_cluster *cl, aredis_err code, const char *detail);

/* ---- Nodes ----------------------------------------------------------------- */

/* The user's connection callbacks (options.node) get the user's data; the
 * cluster's own data for them is the node. */
static aredis_err ask_topology(aredis_cluster *cl, aredis_client *c, int slots);

/* A node connected. Before the first topology, it is asked at once: the
 * read may be waiting on a seed that is down (all seeds connect at
 * creation; the first to answer wins). */
static void node_connected(aredis_client *c, void *data) {
    aredis_cluster *cl = ((aredis__clnode *)data)->cl;
    aredis__cl_enter(cl);
    if (!cl->topo && !cl->freeing && c != cl->read_on) ask_topology(cl, c, 0);
    if (cl->nopt.on_connect && !cl->freeing) cl->nopt.on_connect(c, cl->nopt.cb_data);
    aredis__cl_leave(cl);
}

static void node_error(aredis_client *c, const aredis_error *err, void *data) {
    aredis_cluster *cl = ((aredis__clnode *)data)->cl;
    aredis__cl_enter(cl);
    if (cl->nopt.on_error && !cl->freeing) cl->nopt.on_error(c, err, cl->nopt.cb_data);
    aredis__cl_leave(cl);
}

static void node_reconnecting(aredis_client *c, unsigned attempt, uint32_t delay_ms, void *data) {
    aredis_cluster *cl = ((aredis__clnode *)data)->cl;
    aredis__cl_enter(cl);
    if (cl->nopt.on_reconnect_attempt && !cl->freeing)
        cl->nopt.on_reconnect_attempt(c, attempt, delay_ms, cl->nopt.cb_data);
    aredis__cl_leave(cl);
}

static void node_push(aredis_client *c, aredis_reply *push, void *data) {
    aredis_cluster *cl = ((aredis__clnode *)data)->cl;
    aredis__cl_enter(cl);
    if (cl->nopt.on_push && !cl->freeing) cl->nopt.on_push(c, push, cl->nopt.cb_data);
    aredis__cl_leave(cl);
}

/* A node connection ended: its slots may have moved (a failover). */
static void node_lost(aredis_client *c, const aredis_error *err, void *data) {
    aredis__clnode *n = data;
    aredis_cluster *cl = n->cl;
    aredis__cl_enter(cl);
    if (cl->nopt.on_disconnect && !cl->freeing) cl->nopt.on_disconnect(c, err, cl->nopt.cb_data);
    if (!cl->freeing && !n->retired) refresh(cl);
    aredis__cl_leave(cl);
}

static aredis__clnode *node_find(const aredis_cluster *cl, const char *host, int port) {
    for (aredis__clnode *n = cl->nodes; n; n = n->next)
        if (n->port == port && strcmp(n->host, host) == 0) return n;
    return NULL;
}

static void node_free(aredis__clnode *n) {
    aredis_pool_free(n->pool);
    aredis_client_free(n->c);
    aredis__free(n->host);
    aredis__free(n);
}

/* A node connection that gave up (its reconnect policy stopped: a TLS or
 * AUTH refusal, max_reconnect_attempts) is started again when the cluster
 * needs it: the node may be back, and the next failure says why it is
 * not. 1 when it was. */
static int restart(aredis_client *c) {
    return aredis_client_state(c) == AREDIS_STATE_IDLE && aredis_client_connect(c) == AREDIS_ERR_OK;
}

int aredis__cl_has_client(const aredis_cluster *cl, const aredis_client *c) {
    for (const aredis__clnode *n = cl->nodes; n; n = n->next)
        if (n->c == c) return 1;
    return 0;
}

/* The connection to host:port, made (and connecting) when new; `replica`:
 * one that serves reads (READONLY in its handshake). */
static aredis__clnode *node_get(aredis_cluster *cl, const char *host, int port, int replica) {
    aredis__clnode *n = node_find(cl, host, port);
    if (n) return n;
    n = aredis__calloc(1, sizeof *n);
    if (!n) return NULL;
    n->cl = cl;
    n->port = port;
    n->replica = replica;
    n->host = aredis__strdup(host);
    aredis_options o = cl->nopt;
    o.host = host;
    o.port = port;
    o.unix_path = NULL;
    o.on_disconnect = node_lost;
    o.on_connect = node_connected;
    o.on_error = cl->nopt.on_error ? node_error : NULL;
    o.on_reconnect_attempt = cl->nopt.on_reconnect_attempt ? node_reconnecting : NULL;
    o.on_push = cl->nopt.on_push ? node_push : NULL;
    o.cb_data = n;
    if (n->host) n->c = aredis_client_new(cl->loop, &o);
    if (n->c && replica) aredis__client_set_readonly(n->c, 1);
    if (!n->c || aredis_client_connect(n->c) != AREDIS_ERR_OK) {
        if (n->c) aredis_client_free(n->c);
        aredis__free(n->host);
        aredis__free(n);
        return NULL;
    }
    n->next = cl->nodes;
    cl->nodes = n;
    cl->st.nodes++;
    return n;
}

/* Topology node i's connection: remembered per topology (node_get looks
 * it up by address). */
static aredis__clnode *node_of(aredis_cluster *cl, int i) {
    if ((size_t)i < cl->ntnode && cl->tnode[i]) return cl->tnode[i];
    const aredis__cnode *tn = &cl->topo->nodes[i];
    if (!tn->port) return NULL;
    aredis__clnode *n = node_get(cl, tn->host, tn->port, !tn->primary);
    if (n && !tn->primary && !n->replica) {
        /* Connected before the topology said it is a replica (a seed): it
         * serves reads from now on, and after every reconnect. */
        n->replica = 1;
        aredis__client_set_readonly(n->c, 1);
        aredis_command(n->c, NULL, NULL, "READONLY");
    }
    if (n && (size_t)i < cl->ntnode) cl->tnode[i] = n;
    return n;
}

static aredis_client *client_of(aredis_cluster *cl, int i) {
    aredis__clnode *n = node_of(cl, i);
    return n ? n->c : NULL;
}

static int usable(const aredis__clnode *n) {
    aredis_state st = n ? aredis_client_state(n->c) : AREDIS_STATE_IDLE;
    return !n || st == AREDIS_STATE_READY || st == AREDIS_STATE_CONNECTING ||
           st == AREDIS_STATE_HANDSHAKE;
}

/* A replica of primary p to read from: healthy ones in turn, skipping
 * those whose connection is down; -1 when there is none. */
static int replica_of(aredis_cluster *cl, int p) {
    enum { MAXR = 16 };
    const aredis__ctopo *t = cl->topo;
    int cand[MAXR], count = 0;
    for (size_t i = 0; i < t->nnodes && count < MAXR; i++) {
        const aredis__cnode *tn = &t->nodes[i];
        if (!tn->primary && tn->of == p && tn->healthy && tn->port) cand[count++] = (int)i;
    }
    for (int k = 0; k < count; k++) {
        int i = cand[(cl->rr + (unsigned)k) % (unsigned)count];
        const aredis__cnode *tn = &t->nodes[i];
        if (usable(node_find(cl, tn->host, tn->port))) {
            cl->rr++;
            return i;
        }
    }
    return -1;
}

/* Where a route goes: its slot's owner (or, for a read with read_from
 * REPLICA, one of its replicas); for a keyless command (or one whose keys
 * cannot be known, or a slot nobody serves: the node will say where with
 * MOVED) a primary, preferring one that is connected. */
static aredis__clnode *route_to(aredis_cluster *cl, const aredis__croute *x) {
    int slot = x->slot;
    if (slot >= 0 && cl->topo->owner[slot]) {
        int p = cl->topo->owner[slot] - 1;
        if (x->readonly && cl->read_from == AREDIS_READ_REPLICA && !x->redirects) {
            int r = replica_of(cl, p);
            aredis__clnode *n = r >= 0 ? node_of(cl, r) : NULL;
            if (n) return n;
        }
        return node_of(cl, p);
    }
    /* Keyless: the connected primary with the least waiting on it (a full
     * queue or a blocking command elsewhere does not matter). */
    int any = -1;
    aredis__clnode *best = NULL;
    size_t least = 0;
    for (size_t i = 0; i < cl->topo->nnodes; i++) {
        const aredis__cnode *tn = &cl->topo->nodes[i];
        if (!tn->primary || !tn->port) continue;
        aredis__clnode *n = node_find(cl, tn->host, tn->port);
        if (n && aredis_client_state(n->c) == AREDIS_STATE_READY) {
            size_t p = aredis_client_pending(n->c);
            if (!best || p < least) {
                best = n;
                least = p;
            }
        }
        if (any < 0) any = (int)i;
    }
    if (best) return best;
    return any >= 0 ? node_of(cl, any) : NULL;
}

aredis_client *aredis__cl_owner_client(aredis_cluster *cl, int slot) {
    if (!cl->topo || slot < 0 || slot >= AREDIS__SLOTS || !cl->topo->owner[slot]) return NULL;
    return client_of(cl, cl->topo->owner[slot] - 1);
}

/* The topology's primaries serving slots, each once, in slot order. */
static size_t primary_indexes(const aredis__ctopo *t, int *out, size_t max) {
    size_t n = 0;
    for (size_t s = 0; t && s < AREDIS__SLOTS; s++) {
        int o = (int)t->owner[s] - 1;
        if (o < 0 || (s && t->owner[s] == t->owner[s - 1])) continue;
        int seen = 0; /* a primary may own several ranges */
        for (size_t k = 0; k < n && k < max && !seen; k++)
            seen = out[k] == o;
        if (seen) continue;
        if (n < max) out[n] = o;
        n++;
    }
    return n;
}

size_t aredis__cl_primaries(aredis_cluster *cl, aredis_client **out, size_t max) {
    enum { MAXP = 1024 };
    int idx[MAXP];
    size_t np = primary_indexes(cl->topo, idx, MAXP), n = 0;
    for (size_t k = 0; k < np && k < MAXP; k++) {
        aredis_client *c = client_of(cl, idx[k]);
        if (!c) continue;
        if (n < max) out[n] = c;
        n++;
    }
    return n;
}

size_t aredis__cl_primary_addrs(const aredis_cluster *cl, const char **hosts, int *ports,
                                size_t max) {
    enum { MAXP = 1024 };
    int idx[MAXP];
    size_t np = primary_indexes(cl->topo, idx, MAXP), n = 0;
    for (size_t k = 0; k < np && k < MAXP; k++) {
        const aredis__cnode *tn = &cl->topo->nodes[idx[k]];
        if (!tn->port) continue;
        if (n < max) {
            hosts[n] = tn->host;
            ports[n] = tn->port;
        }
        n++;
    }
    return n;
}

int aredis__cl_is_primary(const aredis_cluster *cl, const char *host, int port) {
    int i = cl->topo ? aredis__ctopo_find(cl->topo, host, port) : -1;
    return i >= 0 && cl->topo->nodes[i].primary;
}

aredis_pool *aredis_cluster_pool(aredis_cluster *cl, const char *key, size_t keylen,
                                 const aredis_pool_options *po) {
    if (!cl || !key) {
        aredis__call_fail(AREDIS_ERR_INVALID, "cluster or key is NULL");
        return NULL;
    }
    if (cl->freeing) {
        aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
        return NULL;
    }
    int slot = (int)aredis__key_slot(key, keylen);
    if (!cl->topo || !cl->topo->owner[slot]) {
        aredis__call_fail(AREDIS_ERR_NOT_CONNECTED,
                          "the cluster's topology does not name the key's node yet (wait for a "
                          "command to be answered first)");
        return NULL;
    }
    aredis__clnode *n = node_of(cl, cl->topo->owner[slot] - 1);
    if (!n) {
        aredis__call_fail(AREDIS_ERR_NOT_CONNECTED, "no usable address for the key's node");
        return NULL;
    }
    if (n->pool) return n->pool;
    aredis_pool_options o = AREDIS_POOL_OPTIONS_INIT;
    if (po) o = *po;
    o.uri = NULL;
    o.client = cl->nopt; /* the node's options, its address */
    o.client.host = n->host;
    o.client.port = n->port;
    o.client.unix_path = NULL;
    n->pool = aredis_pool_new(cl->loop, &o);
    return n->pool; /* NULL: aredis_call_error() says why */
}

aredis_client *aredis__cl_node_client(aredis_cluster *cl, const char *host, int port) {
    aredis__clnode *n = node_get(cl, host, port, 0);
    return n ? n->c : NULL;
}

/* Nodes the new topology does not name are closed gracefully (their
 * commands still complete) and freed once idle. */
static void retire_nodes(aredis_cluster *cl) {
    aredis__clnode **pp = &cl->nodes;
    while (*pp) {
        aredis__clnode *n = *pp;
        if (aredis__ctopo_find(cl->topo, n->host, n->port) >= 0) {
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        n->retired = 1;
        n->next = cl->retired;
        cl->retired = n;
        cl->st.nodes--;
        aredis__log(AREDIS_LOG_INFO, "cluster: %s:%d left the topology: closing it", n->host,
                    n->port);
        aredis_client_disconnect(n->c);
    }
    pp = &cl->retired;
    while (*pp) {
        aredis__clnode *n = *pp;
        aredis_state st = aredis_client_state(n->c);
        /* A node's pool stays with the cluster: its connections may be held. */
        if ((st == AREDIS_STATE_IDLE || st == AREDIS_STATE_CLOSED) &&
            !aredis_client_pending(n->c) && !n->pool) {
            *pp = n->next;
            node_free(n);
        } else {
            pp = &n->next;
        }
    }
}

/* ---- Topology ---------------------------------------------------------------- */

/* A primary serving slots whose connection is down (a failover may be
 * under way: the cluster will name another one soon). */
static int owner_down(const aredis_cluster *cl) {
    const aredis__ctopo *t = cl->topo;
    for (size_t s = 0; s < AREDIS__SLOTS; s++) {
        if (!t->owner[s] || (s && t->owner[s] == t->owner[s - 1])) continue;
        const aredis__cnode *tn = &t->nodes[t->owner[s] - 1];
        const aredis__clnode *n = node_find(cl, tn->host, tn->port);
        aredis_state st = n ? aredis_client_state(n->c) : AREDIS_STATE_READY;
        if (st != AREDIS_STATE_READY && st != AREDIS_STATE_CONNECTING &&
            st != AREDIS_STATE_HANDSHAKE)
            return 1;
    }
    return 0;
}

/* After a topology change: commands waiting, unsent, on a node connection
 * that is down, whose slot has another owner now (a failover), are taken
 * back and sent there — as a single client's queue waits for its server to
 * come back, a cluster's waits for its slot's. A connection that is down
 * has written none of them (those in flight when it was lost have failed:
 * at most once). */
static void reroute_list(aredis_cluster *cl, aredis__clnode *n) {
    if (aredis_client_state(n->c) == AREDIS_STATE_READY) return; /* they go out now */
    aredis__croute *x = n->routes, *next;
    for (; x && !cl->freeing; x = next) {
        next = x->on_next;
        /* Only what was never put out: a command that may have reached
         * the server is not sent again (at most once). */
        if (!x->cmd || !aredis__cmd_unsent(x->cmd)) continue;
        aredis__clnode *to = route_to(cl, x);
        if (!to || to == n) continue;
        x->rerouting = 1;
        cl->st.rerouted++;
        aredis__batch_abort(n->c, x->cmd, AREDIS_ERR_CANCELLED,
                            "taken back for the slot's new owner");
    }
}

static void reroute(aredis_cluster *cl) {
    for (aredis__clnode *n = cl->nodes; n && !cl->freeing; n = n->next)
        reroute_list(cl, n);
    for (aredis__clnode *n = cl->retired; n && !cl->freeing; n = n->next)
        reroute_list(cl, n);
}

static void install(aredis_cluster *cl, aredis__ctopo *t) {
    aredis__ctopo_free(cl->topo);
    cl->topo = t;
    /* Node connections are looked up again for the new topology (without
     * the table, when out of memory: by address each time). */
    aredis__free(cl->tnode);
    cl->tnode = aredis__calloc(t->nnodes ? t->nnodes : 1, sizeof *cl->tnode);
    cl->ntnode = cl->tnode ? t->nnodes : 0;
    cl->st.refreshes++;
    cl->st.slots_known = t->covered;
    send_waiting(cl, AREDIS_ERR_OK, NULL);
    /* Commands waiting on nodes that lost their slots, and channels, move
     * before nodes that left are closed (closing one fails its queue). */
    if (!cl->freeing && cl->topo == t) reroute(cl);
    if (!cl->freeing && cl->topo == t) aredis__cl_subs_reconcile(cl);
    if (!cl->freeing && cl->topo == t) retire_nodes(cl);
    if (!cl->freeing && cl->topo == t && owner_down(cl)) refresh(cl);
}

typedef aredis__ctopo *parse_fn(const aredis_reply *r, const char *asked_host, int tls,
                                const char **why);

static void topology_read(aredis_cluster *cl, aredis_client *c, aredis_reply *r,
                          const aredis_error *err, parse_fn *parse) {
    const char *why = err ? err->detail : NULL;
    int tls = cl->nopt.tls || cl->nopt.tls_context;
    aredis__ctopo *t = err ? NULL : parse(r, aredis__client_opts(c)->host, tls, &why);
    if (t) {
        install(cl, t);
        return;
    }
    aredis__log(AREDIS_LOG_WARN, "cluster: cannot read the topology: %s", why);
    /* Before a first topology, commands wait until every seed has failed
     * to answer (the reads go round the seeds), then fail with the reason. */
    if (!cl->topo && ++cl->first_failures >= cl->nseeds) {
        cl->first_failures = 0;
        send_waiting(cl, err ? err->code : AREDIS_ERR_PROTOCOL, why);
    }
    if (!cl->freeing) refresh(cl);
}

/* A topology read: the library's own command, not an application's
 * operation (aredis/observe.h), so sent as an unobserved batch of one. */
typedef struct topo_read {
    aredis_cluster *cl;
    aredis_reply *reply;
    int slots; /* CLUSTER SLOTS (the fallback), else CLUSTER SHARDS */
} topo_read;

static void read_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    (void)c;
    (void)i;
    topo_read *tr = data;
    aredis_reply_release(tr->reply);
    tr->reply = aredis_reply_retain(r);
}

static void read_done(aredis_client *c, aredis_reply *unused, const aredis_error *err, void *data) {
    (void)unused;
    topo_read *tr = data;
    aredis_cluster *cl = tr->cl;
    aredis_reply *r = tr->reply;
    int slots = tr->slots;
    aredis__free(tr);
    aredis__cl_enter(cl);
    aredis__cl_unhold(cl);
    cl->refreshing = 0;
    aredis_error e;
    if (!err && r && r->type == AREDIS_REPLY_ERROR) { /* the server refused it */
        memset(&e, 0, sizeof e);
        e.code = AREDIS_ERR_SERVER;
        e.detail = r->str;
        err = &e;
    }
    if (cl->freeing) {
        /* nothing: the cluster is going */
    } else if (!slots && err && err->code == AREDIS_ERR_SERVER &&
               ask_topology(cl, c, 1) == AREDIS_ERR_OK) {
        /* no CLUSTER SHARDS (before Redis 7): CLUSTER SLOTS */
    } else {
        topology_read(cl, c, r, err, slots ? aredis__ctopo_from_slots : aredis__ctopo_from_shards);
    }
    aredis_reply_release(r);
    aredis__cl_leave(cl);
}

static aredis_err ask_topology(aredis_cluster *cl, aredis_client *c, int slots) {
    static const char shards[] = "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n";
    static const char slotsq[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    topo_read *tr = aredis__calloc(1, sizeof *tr);
    if (!tr) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    tr->cl = cl;
    tr->slots = slots;
    size_t len = slots ? sizeof slotsq - 1 : sizeof shards - 1;
    aredis__batch_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.bytes = slots ? slotsq : shards;
    sp.len = len;
    sp.n = 1;
    sp.ends = &len;
    sp.part = read_part;
    sp.done = read_done;
    sp.data = tr;
    sp.flags = AREDIS__BATCH_UNOBSERVED;
    aredis_err e = aredis__batch_submit(c, &sp, NULL);
    if (e != AREDIS_ERR_OK) {
        aredis__free(tr);
        return e;
    }
    cl->refreshing = 1;
    aredis__cl_hold(cl);
    return AREDIS_ERR_OK;
}

/* Whom to ask: a connected node; else the seeds and known nodes in turn
 * (one per read, so that a dead seed is not asked forever). */
static aredis_client *topology_source(aredis_cluster *cl) {
    /* A connected node with the least waiting ahead (not one held by a
     * blocking command, when another will do). */
    aredis_client *best = NULL;
    size_t least = 0;
    for (aredis__clnode *n = cl->nodes; n; n = n->next) {
        if (aredis_client_state(n->c) != AREDIS_STATE_READY) continue;
        size_t p = aredis_client_pending(n->c);
        if (!best || p < least) {
            best = n->c;
            least = p;
        }
        if (!p) break;
    }
    if (best) return best;
    size_t nnodes = 0;
    for (aredis__clnode *n = cl->nodes; n; n = n->next)
        nnodes++;
    size_t k = cl->next_seed++ % (cl->nseeds + nnodes);
    if (k < cl->nseeds) {
        aredis__clnode *n = node_get(cl, cl->seeds[k].host, cl->seeds[k].port, 0);
        if (n) return n->c;
    } else {
        aredis__clnode *n = cl->nodes;
        for (k -= cl->nseeds; n && k; k--)
            n = n->next;
        if (n) return n->c;
    }
    return cl->nodes ? cl->nodes->c : NULL;
}

static void refresh_now(aredis_cluster *cl) {
    aredis_client *c = topology_source(cl);
    if (!c) return;
    restart(c);
    cl->last_refresh = aredis_loop_now_ms(cl->loop);
    if (ask_topology(cl, c, 0) == AREDIS_ERR_OK) {
        cl->read_on = c;
        return;
    }
    char why[256];
    snprintf(why, sizeof why, "%s", aredis_call_error()->detail);
    aredis_err code = aredis_call_error()->code;
    if (!cl->topo && ++cl->first_failures >= cl->nseeds) {
        cl->first_failures = 0;
        send_waiting(cl, code, why);
    }
    if (cl->freeing) return;
    cl->refresh_armed = 1;
    aredis_timer_start(cl->timer, cl->min_refresh, 0);
}

void aredis__cl_refresh(aredis_cluster *cl) { refresh(cl); }

static void on_periodic(void *arg) {
    aredis_cluster *cl = arg;
    aredis__cl_enter(cl);
    refresh(cl);
    aredis__cl_leave(cl);
}

static void on_refresh_timer(void *arg) {
    aredis_cluster *cl = arg;
    cl->refresh_armed = 0;
    aredis__cl_enter(cl);
    refresh(cl);
    aredis__cl_leave(cl);
}

/* Read the topology again: now, or when the rate limit allows. */
static void refresh(aredis_cluster *cl) {
    if (cl->refreshing || cl->refresh_armed || cl->freeing) return;
    uint64_t now = aredis_loop_now_ms(cl->loop);
    uint64_t at = cl->last_refresh + cl->min_refresh;
    if (cl->last_refresh && now < at) {
        cl->refresh_armed = 1;
        aredis_timer_start(cl->timer, at - now, 0);
        return;
    }
    refresh_now(cl);
}

/* ---- Routes ------------------------------------------------------------------- */

static const char k_asking[] = "*1\r\n$6\r\nASKING\r\n";
enum { TRYAGAIN_MS = 20 };

static void route_part(aredis_client *c, aredis_reply *r, size_t i, void *data);
static void route_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

static void route_lone_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

static aredis_err send_raw(aredis_client *c, aredis__croute *x, int asking);

/* A lone command not behind ASKING: the cheap path, no batch record. */
static aredis_err send_lone(aredis_client *c, aredis__croute *x) {
    aredis__batch_spec s;
    memset(&s, 0, sizeof s);
    s.bytes = x->bytes;
    s.len = x->len;
    s.n = 1;
    s.ends = &x->len;
    s.done = route_lone_done;
    s.data = x;
    s.block_ms = x->block_ms;
    s.block_forever = x->block_forever;
    s.sensitive = x->sensitive;
    s.flags = AREDIS__BATCH_LONE;
    x->asking = 0;
    return aredis__batch_submit(c, &s, &x->cmd);
}

/* A route sent to node n: on its list until it finishes (so that it can be
 * taken back while unsent, for a new owner: reroute()). */
static void on_node(aredis__croute *x, aredis__clnode *n) {
    x->on = n;
    x->on_next = NULL;
    x->on_prev = n->routes_tail;
    if (n->routes_tail)
        n->routes_tail->on_next = x;
    else
        n->routes = x;
    n->routes_tail = x;
    x->cl->outstanding++;
}

static void off_node(aredis__croute *x) {
    aredis__clnode *n = x->on;
    if (!n) return;
    if (x->on_prev)
        x->on_prev->on_next = x->on_next;
    else
        n->routes = x->on_next;
    if (x->on_next)
        x->on_next->on_prev = x->on_prev;
    else
        n->routes_tail = x->on_prev;
    x->on = NULL;
    x->cmd = NULL;
    x->cl->outstanding--;
}

static aredis_err send_to(aredis__clnode *n, aredis__croute *x, int asking) {
    aredis_err e = send_raw(n->c, x, asking);
    if (e == AREDIS_ERR_NOT_CONNECTED && restart(n->c)) e = send_raw(n->c, x, asking);
    if (e == AREDIS_ERR_OK) on_node(x, n);
    return e;
}

static aredis_err send_raw(aredis_client *c, aredis__croute *x, int asking) {
    if (!asking && x->ncmds == 1) return send_lone(c, x);
    size_t al = asking ? sizeof k_asking - 1 : 0;
    char *both = NULL;
    const char *bytes = x->bytes;
    size_t one_end[2], *ends = one_end;
    if (x->ncmds + (asking ? 1u : 0u) > 2) {
        ends = aredis__malloc((x->ncmds + 1) * sizeof *ends);
        if (!ends) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    if (asking) {
        both = aredis__malloc(al + x->len);
        if (!both) {
            if (ends != one_end) aredis__free(ends);
            return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        }
        memcpy(both, k_asking, al);
        memcpy(both + al, x->bytes, x->len);
        bytes = both;
        ends[0] = al;
    }
    if (x->ncmds == 1)
        ends[asking ? 1 : 0] = al + x->len;
    else
        for (unsigned i = 0; i < x->ncmds; i++)
            ends[(asking ? 1 : 0) + i] = al + x->ends[i];
    aredis__batch_spec s;
    memset(&s, 0, sizeof s);
    s.bytes = bytes;
    s.len = al + x->len;
    s.n = x->ncmds + (asking ? 1u : 0u);
    s.ends = ends;
    s.part = route_part;
    s.done = route_done;
    s.data = x;
    s.block_ms = x->block_ms;
    s.block_forever = x->block_forever;
    s.sensitive = x->sensitive;
    x->asking = asking;
    aredis_err e = aredis__batch_submit(c, &s, &x->cmd);
    aredis__free(both);
    if (ends != one_end) aredis__free(ends);
    return e;
}

/* Routes are kept for reuse: the per-command allocation is the hot path's
 * largest cost. */
enum { ROUTE_KEEP = 64, ROUTE_MIN = 96, ROUTE_MAX_KEPT = 4096 };

aredis__croute *aredis__cl_route_new(aredis_cluster *cl, size_t len) {
    aredis__croute *x = cl->spare;
    if (x && x->cap >= len) {
        cl->spare = x->next;
        cl->nspare--;
    } else {
        size_t cap = len < ROUTE_MIN ? ROUTE_MIN : len;
        x = aredis__malloc(sizeof *x + cap);
        if (!x) return NULL;
        x->cap = cap;
    }
    x->next = NULL;
    x->on_prev = x->on_next = NULL;
    x->on = NULL;
    x->cmd = NULL;
    x->rerouting = 0;
    x->cl = cl;
    x->cb = NULL;
    x->data = NULL;
    x->fin = NULL;
    x->parent = NULL;
    x->index = 0;
    x->reply = x->redir = NULL;
    x->redirects = 0;
    x->ncmds = 1;
    x->ends = NULL;
    x->asking = 0;
    x->slot = AREDIS__SLOT_UNKNOWN;
    x->readonly = 0;
    x->block_ms = 0;
    x->block_forever = x->sensitive = 0;
    x->len = len;
    return x;
}

static void route_release(aredis__croute *x) {
    aredis_cluster *cl = x->cl;
    aredis__free(x->ends);
    x->ends = NULL;
    if (cl->nspare < ROUTE_KEEP && x->cap <= ROUTE_MAX_KEPT && !cl->free_pending) {
        x->next = cl->spare;
        cl->spare = x;
        cl->nspare++;
        return;
    }
    aredis__free(x);
}

void aredis__cl_route_free(aredis__croute *x) {
    aredis_reply_release(x->reply);
    aredis_reply_release(x->redir);
    x->reply = x->redir = NULL;
    route_release(x);
}

/* The route is over: to its parent (pipeline, transaction) or its callback. */
static void finish(aredis_client *c, aredis__croute *x, aredis_reply *r, const aredis_error *err) {
    if (x->cl->freeing) c = NULL; /* the node connection is going too */
    if (x->fin) {
        x->fin(x, c, r, err); /* releases x */
        return;
    }
    aredis_reply_fn *cb = x->cb;
    void *data = x->data;
    aredis_reply *keep = x->reply, *redir = x->redir;
    x->reply = x->redir = NULL;
    route_release(x);
    aredis__deliver(c, cb, data, r, err);
    aredis_reply_release(keep);
    aredis_reply_release(redir);
}

static void finish_code(aredis_client *c, aredis__croute *x, aredis_err code, const char *detail) {
    aredis_error e;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.detail = detail;
    finish(c, x, NULL, &e);
}

static int is_redirect(const aredis_reply *r) {
    if (r->type != AREDIS_REPLY_ERROR || !r->str) return 0;
    return (r->len > 6 && memcmp(r->str, "MOVED ", 6) == 0) ||
           (r->len > 4 && memcmp(r->str, "ASK ", 4) == 0) ||
           (r->len >= 8 && memcmp(r->str, "TRYAGAIN", 8) == 0);
}

static void route_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    (void)c;
    aredis__croute *x = data;
    if (x->asking && i == 0) return; /* ASKING's +OK */
    if (!x->redir && r && is_redirect(r)) x->redir = aredis_reply_retain(r);
    aredis_reply_release(x->reply);
    x->reply = aredis_reply_retain(r);
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": 1 (ask 0/1), slot, host, port. */
static int redirection(const aredis_reply *r, const char *from_host, int *ask, int *slot,
                       char *host, size_t hostlen, int *port) {
    const char *p;
    if (r->len > 6 && memcmp(r->str, "MOVED ", 6) == 0) {
        *ask = 0;
        p = r->str + 6;
    } else if (r->len > 4 && memcmp(r->str, "ASK ", 4) == 0) {
        *ask = 1;
        p = r->str + 4;
    } else {
        return 0;
    }
    char *end;
    long s = strtol(p, &end, 10);
    if (end == p || *end != ' ' || s < 0 || s >= AREDIS__SLOTS) return 0;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    if (!colon) return 0;
    long pt = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || pt <= 0 || pt > 65535) return 0;
    size_t hl = (size_t)(colon - addr);
    if (hl == 0) { /* the node does not know its address: the one we used */
        addr = from_host;
        hl = strlen(from_host);
    }
    if (hl >= hostlen) return 0;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    *slot = (int)s;
    *port = (int)pt;
    return 1;
}

/* x at the end of a route queue (waiting for the topology, or a retry). */
static void queue_push(aredis__croute **head, aredis__croute **tail, aredis__croute *x) {
    x->next = NULL;
    if (*tail)
        (*tail)->next = x;
    else
        *head = x;
    *tail = x;
}

static void retry_later(aredis_cluster *cl, aredis__croute *x) {
    queue_push(&cl->retry_head, &cl->retry_tail, x);
    if (x == cl->retry_head) aredis_timer_start(cl->retry_timer, TRYAGAIN_MS, 0);
}

/* Send a route again after a redirection: 1 when it went (or waits). */
static int redirect(aredis_client *c, aredis__croute *x) {
    aredis_cluster *cl = x->cl;
    const aredis_reply *got = x->redir;
    int ask, slot, port;
    char host[256];
    int tryagain = got->str[0] == 'T'; /* the slot is half migrated; soon whole */
    if (!tryagain &&
        !redirection(got, aredis__client_opts(c)->host, &ask, &slot, host, sizeof host, &port))
        return 0; /* not understood: the reply stands as the command's */
    x->redirects++;
    x->redir = NULL;
    aredis_reply_release((aredis_reply *)got);
    aredis_reply_release(x->reply);
    x->reply = NULL;
    if (tryagain) {
        cl->st.tryagain++;
        retry_later(cl, x);
        return 1;
    }
    aredis__clnode *n = node_get(cl, host, port, 0);
    if (!ask) {
        cl->st.moved++;
        int i = aredis__ctopo_node(cl->topo, host, port, 1);
        if (i >= 0) aredis__ctopo_set_owner(cl->topo, (unsigned)slot, i);
        refresh(cl); /* a MOVED seldom comes alone */
    } else {
        cl->st.asked++;
    }
    aredis_err e = n ? send_to(n, x, ask) : AREDIS_ERR_NOMEM;
    if (e != AREDIS_ERR_OK) finish_code(c, x, e, n ? aredis_call_error()->detail : "out of memory");
    return 1;
}

/* A route taken back unsent from a node that lost its slot: to the new
 * owner (or failed, when that cannot be). */
static void resend(aredis_client *c, aredis__croute *x) {
    aredis_cluster *cl = x->cl;
    x->rerouting = 0;
    aredis_reply_release(x->reply);
    aredis_reply_release(x->redir);
    x->reply = x->redir = NULL;
    aredis_err e = cl->freeing ? AREDIS_ERR_CANCELLED : aredis__cl_route_send(x);
    if (e != AREDIS_ERR_OK)
        finish_code(c, x, e, cl->freeing ? "cluster freed" : aredis_call_error()->detail);
}

/* A route's end on its node: r (its reply: the last one of a batch) or
 * err; a redirection sends it again, a route taken back goes to its new
 * owner. */
static void route_end(aredis_client *c, aredis__croute *x, aredis_reply *r,
                      const aredis_error *err) {
    aredis_cluster *cl = x->cl;
    aredis__cl_enter(cl);
    off_node(x);
    if (x->rerouting) {
        resend(c, x);
    } else if (err) {
        /* A lost connection may be a failover: read the topology again. */
        if (!cl->freeing && err->code != AREDIS_ERR_CANCELLED && err->code != AREDIS_ERR_TIMEOUT)
            refresh(cl);
        finish(c, x, NULL, err);
    } else if (!(x->redir && !cl->freeing && x->redirects < cl->max_redirects && redirect(c, x))) {
        finish(c, x, r, NULL);
    }
    aredis__cl_leave(cl);
}

static void route_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r; /* a batch's replies came through route_part */
    aredis__croute *x = data;
    route_end(c, x, x->reply, err);
}

/* A lone command's end: an error reply comes as a SERVER err with it. */
static void route_lone_done(aredis_client *c, aredis_reply *r, const aredis_error *err,
                            void *data) {
    aredis__croute *x = data;
    if (err && err->code == AREDIS_ERR_SERVER && r) {
        if (is_redirect(r)) x->redir = aredis_reply_retain(r);
        err = NULL;
    }
    route_end(c, x, r, err);
}

static void on_retry_timer(void *arg) {
    aredis_cluster *cl = arg;
    aredis__croute *x = cl->retry_head;
    cl->retry_head = cl->retry_tail = NULL;
    aredis__cl_enter(cl);
    while (x) {
        aredis__croute *next = x->next;
        x->next = NULL;
        aredis_err e = cl->freeing ? AREDIS_ERR_CANCELLED : aredis__cl_route_send(x);
        if (e != AREDIS_ERR_OK)
            finish_code(NULL, x, e, cl->freeing ? "cluster freed" : aredis_call_error()->detail);
        x = next;
    }
    aredis__cl_leave(cl);
}

static aredis_err no_route(void) {
    return aredis__call_fail(AREDIS_ERR_NOT_CONNECTED,
                             "no cluster node to send it to (none with a usable address)");
}

aredis_err aredis__cl_route_send(aredis__croute *x) {
    aredis_cluster *cl = x->cl;
    if (cl->freeing) return aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
    if (!cl->topo) { /* it goes once the topology is known */
        queue_push(&cl->wait_head, &cl->wait_tail, x);
        if (!cl->refreshing && !cl->refresh_armed) { /* none coming: ask (next turn) */
            cl->refresh_armed = 1;
            aredis_timer_start(cl->timer, 0, 0);
        }
        return AREDIS_ERR_OK;
    }
    aredis__clnode *n = route_to(cl, x);
    return n ? send_to(n, x, 0) : no_route();
}

/* Routes that waited for the topology: out now, or failed with why. */
static void send_waiting(aredis_cluster *cl, aredis_err code, const char *detail) {
    if (code != AREDIS_ERR_OK && !cl->freeing) {
        char w[256];
        snprintf(w, sizeof w, "cluster topology unavailable: %s", detail ? detail : "");
        aredis__cl_subs_fail_waiting(cl, code, w);
    }
    aredis__croute *x = cl->wait_head;
    cl->wait_head = cl->wait_tail = NULL;
    char why[256];
    snprintf(why, sizeof why, "cluster topology unavailable: %s", detail ? detail : "");
    while (x) {
        aredis__croute *next = x->next;
        x->next = NULL;
        aredis_err e = code;
        const char *d = why;
        if (cl->freeing) {
            e = AREDIS_ERR_CANCELLED;
            d = "cluster freed";
        } else if (code == AREDIS_ERR_OK) {
            e = aredis__cl_route_send(x);
            d = aredis_call_error()->detail;
        }
        if (e != AREDIS_ERR_OK) finish_code(NULL, x, e, d);
        x = next;
    }
}

/* Commands that act on the node connection itself, which others share:
 * the cluster sends what it needs of them (ASKING, READONLY). NULL or why. */
static const char *node_state_command(const char *bytes, size_t len) {
    aredis__arg a[2];
    if (aredis__resp_name(bytes, len, &a[0]) != 0 || a[0].n < 4) return NULL;
    char c0 = (char)(a[0].p[0] & ~0x20);
    if (c0 != 'A' && c0 != 'R' && c0 != 'Q' && c0 != 'C') return NULL; /* the usual case */
    long n = aredis__resp_args(bytes, len, a, 2);
    if (aredis__ieq(a[0].p, a[0].n, "ASKING") || aredis__ieq(a[0].p, a[0].n, "READONLY") ||
        aredis__ieq(a[0].p, a[0].n, "READWRITE") || aredis__ieq(a[0].p, a[0].n, "QUIT"))
        return "ASKING, READONLY, READWRITE and QUIT act on a node connection other commands "
               "share: the cluster sends ASKING and READONLY itself (read_from for replica "
               "reads)";
    if (n >= 2 && aredis__ieq(a[0].p, a[0].n, "CLIENT") &&
        (aredis__ieq(a[1].p, a[1].n, "SETNAME") || aredis__ieq(a[1].p, a[1].n, "TRACKING") ||
         aredis__ieq(a[1].p, a[1].n, "CACHING")))
        return "CLIENT SETNAME/TRACKING/CACHING would change a node connection other commands "
               "share (set node.client_name in the cluster's options)";
    return NULL;
}

aredis_err aredis__cl_check(aredis_cluster *cl, const char *bytes, size_t len, int in_tx,
                            aredis__clcheck *out) {
    if (cl->freeing) return aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
    memset(out, 0, sizeof *out);
    uint32_t flags = 0;
    /* The same kind of command as the last one (GET after GET): its slot
     * is all there is to know (proto/slot.h). */
    out->slot = aredis__slot_memo_hit(&cl->memo, bytes, len, &flags);
    if (out->slot >= 0) {
        out->readonly = (flags & AREDIS__CF_READONLY) && !(flags & AREDIS__CF_WRITE);
        return AREDIS_ERR_OK;
    }
    int session = 0;
    aredis_err e = aredis__batch_check(bytes, len, &out->block_ms, &out->block_forever,
                                       &out->sensitive, &session);
    if (e != AREDIS_ERR_OK) return e;
    if (session)
        return aredis__call_fail(
            AREDIS_ERR_UNSUPPORTED, "%s",
            in_tx ? "MULTI, EXEC, DISCARD, WATCH, SELECT, AUTH and HELLO cannot be queued in a "
                    "cluster transaction (its exec sends MULTI and EXEC)"
                  : "MULTI, EXEC, DISCARD, SELECT, AUTH and HELLO are not supported on a "
                    "cluster: they would change a node connection others share (use "
                    "aredis_cluster_tx for transactions)");
    const char *why = node_state_command(bytes, len);
    if (why) return aredis__call_fail(AREDIS_ERR_UNSUPPORTED, "%s", why);
    out->slot = aredis__cmd_slot_memo(&cl->memo, bytes, len, &flags);
    if (out->slot == AREDIS__SLOT_CROSS)
        return aredis__call_fail(AREDIS_ERR_CROSSSLOT,
                                 "CROSSSLOT Keys in request don't hash to the same slot (refused "
                                 "before sending: use a hash tag, {...}, to keep keys together)");
    out->readonly = (flags & AREDIS__CF_READONLY) && !(flags & AREDIS__CF_WRITE);
    return AREDIS_ERR_OK;
}

aredis__croute *aredis__cl_route_make(aredis_cluster *cl, const char *bytes, size_t len) {
    aredis__clcheck ck;
    if (aredis__cl_check(cl, bytes, len, 0, &ck) != AREDIS_ERR_OK) return NULL;
    aredis__croute *x = aredis__cl_route_new(cl, len);
    if (!x) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    x->slot = ck.slot;
    x->readonly = ck.readonly;
    x->block_ms = ck.block_ms;
    x->block_forever = ck.block_forever;
    x->sensitive = ck.sensitive;
    memcpy(x->bytes, bytes, len);
    return x;
}

/* ---- Lifecycle ------------------------------------------------------------------ */

/* "host:port" or "[v6]:port" into a seed. */
static int parse_seed(const char *s, aredis__clseed *out) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 1 || port > 65535) return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') return -1;
        h++;
        hl -= 2;
    }
    out->host = aredis__malloc(hl + 1);
    if (!out->host) return -2;
    memcpy(out->host, h, hl);
    out->host[hl] = '\0';
    out->port = (int)port;
    return 0;
}

static const char *check_options(const aredis_loop *loop, const aredis_cluster_options *o) {
    if (!loop || !o) return "a loop and options are needed";
    if (!o->seeds || !o->nseeds) return "at least one seed node (\"host:port\") is needed";
    for (size_t i = 0; i < o->nseeds; i++)
        if (!o->seeds[i]) return "a seed is NULL";
    if (o->node.prefix && *o->node.prefix) return "key prefixes are not supported on a cluster";
    if (o->node.db) return "a cluster has only database 0 (node.db must be 0)";
    if (o->node.cache) return "client-side caching is not available on a cluster yet (node.cache)";
    if (o->read_from != AREDIS_READ_PRIMARY && o->read_from != AREDIS_READ_REPLICA)
        return "read_from must be AREDIS_READ_PRIMARY or AREDIS_READ_REPLICA";
    return NULL;
}

aredis_cluster *aredis_cluster_new(aredis_loop *loop, const aredis_cluster_options *o) {
    const char *bad = check_options(loop, o);
    if (bad) {
        aredis__call_fail(AREDIS_ERR_INVALID, "%s", bad);
        return NULL;
    }
    aredis_cluster *cl = aredis__calloc(1, sizeof *cl);
    if (!cl || aredis__options_dup(&cl->nopt, &o->node) != 0) {
        aredis__free(cl);
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* One TLS context for every node connection: the user's (held: nodes
     * are made later), or one built now from the tls_* files (a bad file
     * is reported here, not at each node's connect). */
    if (o->node.tls || o->node.tls_context) {
        aredis_tls_context *ctx = o->node.tls_context
                                      ? aredis_tls_context_retain(o->node.tls_context)
                                      : aredis_tls_context_new(&o->node);
        if (!ctx) {
            char why[256];
            aredis_err code = aredis_call_error()->code;
            snprintf(why, sizeof why, "%s", aredis_call_error()->detail);
            aredis__options_release(&cl->nopt);
            aredis__free(cl);
            aredis__call_fail(code, "%s", why);
            return NULL;
        }
        cl->nopt.tls_context = ctx;
    }
    cl->loop = loop;
    cl->max_redirects = o->max_redirects ? o->max_redirects : 5;
    cl->min_refresh = o->min_refresh_ms ? o->min_refresh_ms : 100;
    cl->read_from = o->read_from;
    cl->seeds = aredis__calloc(o->nseeds, sizeof *cl->seeds);
    int rc = cl->seeds ? 0 : -2;
    for (size_t i = 0; rc == 0 && i < o->nseeds; i++) {
        rc = parse_seed(o->seeds[i], &cl->seeds[i]);
        if (rc == 0) cl->nseeds++;
        if (rc == -1) {
            aredis_cluster_free(cl);
            aredis__call_fail(AREDIS_ERR_INVALID, "seed %zu (\"%s\") is not \"host:port\"", i,
                              o->seeds[i]);
            return NULL;
        }
    }
    cl->timer = rc == 0 ? aredis_timer_new(loop, on_refresh_timer, cl) : NULL;
    cl->retry_timer = cl->timer ? aredis_timer_new(loop, on_retry_timer, cl) : NULL;
    uint32_t every = o->refresh_every_ms ? o->refresh_every_ms : 30000;
    int ok = cl->retry_timer != NULL;
    if (ok && every != AREDIS_CLUSTER_NO_PERIODIC) {
        cl->periodic = aredis_timer_new(loop, on_periodic, cl);
        if (cl->periodic)
            aredis_timer_start(cl->periodic, every, every);
        else
            ok = 0;
    }
    if (!ok) {
        aredis_cluster_free(cl);
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < cl->nseeds; i++) /* every seed connects; the first to answer wins */
        node_get(cl, cl->seeds[i].host, cl->seeds[i].port, 0);
    refresh_now(cl);
    if (!cl->nodes) {
        char why[256];
        aredis_err code = aredis_call_error()->code;
        snprintf(why, sizeof why, "%s", aredis_call_error()->detail);
        aredis_cluster_free(cl);
        aredis__call_fail(code ? code : AREDIS_ERR_NOMEM, "%s", why);
        return NULL;
    }
    return cl;
}

static void cluster_destroy(aredis_cluster *cl) {
    while (cl->dead) {
        aredis__clnode *n = cl->dead;
        cl->dead = n->next;
        aredis__free(n->host);
        aredis__free(n);
    }
    while (cl->spare) {
        aredis__croute *x = cl->spare;
        cl->spare = x->next;
        aredis__free(x);
    }
    aredis__buf_free(&cl->enc);
    if (cl->timer) aredis_timer_free(cl->timer);
    if (cl->retry_timer) aredis_timer_free(cl->retry_timer);
    if (cl->periodic) aredis_timer_free(cl->periodic);
    aredis__ctopo_free(cl->topo);
    aredis__free(cl->tnode);
    for (size_t i = 0; i < cl->nseeds; i++)
        aredis__free(cl->seeds[i].host);
    aredis__free(cl->seeds);
    aredis_tls_context_release(cl->nopt.tls_context);
    aredis__options_release(&cl->nopt);
    aredis__free(cl);
}

static void fail_list(aredis__croute *x) {
    while (x) {
        aredis__croute *next = x->next;
        finish_code(NULL, x, AREDIS_ERR_CANCELLED, "cluster freed");
        x = next;
    }
}

void aredis_cluster_free(aredis_cluster *cl) {
    if (!cl || cl->freeing) return;
    cl->freeing = 1;
    aredis__cl_enter(cl);
    aredis__cl_subs_detach(cl);
    aredis__cl_scans_detach(cl);
    /* Freeing a node fails its commands (CANCELLED): their callbacks run
     * now, while the cluster is still here. */
    /* The node structs stay until the memory goes (routes failed by a
     * connection whose own free is deferred still name them); their
     * connections say nothing more to the cluster. */
    aredis__clnode *lists[2] = {cl->nodes, cl->retired};
    cl->nodes = cl->retired = NULL;
    for (int k = 0; k < 2; k++)
        while (lists[k]) {
            aredis__clnode *n = lists[k];
            lists[k] = n->next;
            n->next = cl->dead;
            cl->dead = n;
            aredis__client_mute(n->c);
            aredis_pool_free(n->pool); /* its callbacks run now: CANCELLED */
            n->pool = NULL;
            aredis_client_free(n->c);
        }
    aredis__croute *w = cl->wait_head, *r = cl->retry_head;
    cl->wait_head = cl->wait_tail = cl->retry_head = cl->retry_tail = NULL;
    fail_list(w);
    fail_list(r);
    if (cl->timer) aredis_timer_stop(cl->timer);
    if (cl->retry_timer) aredis_timer_stop(cl->retry_timer);
    if (cl->periodic) aredis_timer_stop(cl->periodic);
    cl->free_pending = 1;
    aredis__cl_leave(cl);
}
