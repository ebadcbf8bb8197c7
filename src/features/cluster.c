/*
 * The cluster client's core (cluster.h): node connections, routing by hash
 * slot, MOVED/ASK, topology reads. Sections:
 *   nodes      one aredis_client per node address, made when first needed
 *   topology   CLUSTER SHARDS (or SLOTS) asked of a connected node,
 *              installed whole; reads rate-limited by a timer
 *   commands   routed, sent as a batch of one (the bytes are kept for a
 *              redirection), redirected, delivered
 */
#include "features/cluster.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/feature.h"
#include "features/cluster_topology.h"
#include "proto/slot.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/log.h"

typedef struct cnode {
    struct cnode *next;
    aredis__cluster *cl;
    char *host;
    int port;
    aredis_client *c;
} cnode;

/* A command: its bytes (kept for a redirection), where to deliver. */
typedef struct route {
    struct route *next; /* waiting for the topology */
    aredis__cluster *cl;
    aredis_reply_fn *cb;
    void *data;
    aredis_reply *reply; /* its reply, kept from the part hook to done */
    unsigned redirects;
    int asking;        /* sent behind ASKING: reply 0 is ASKING's */
    int slot;          /* or an AREDIS__SLOT_* */
    uint64_t block_ms; /* a blocking command's block time (aredis__batch_check) */
    int block_forever, sensitive;
    size_t len, cap; /* the bytes, and the room for them (kept routes) */
    char bytes[];
} route;

struct aredis__cluster {
    aredis_loop *loop;
    aredis_options nopt; /* every node's options (copied strings) */
    unsigned max_redirects;
    uint32_t min_refresh;
    cnode *nodes;
    aredis__ctopo *topo;
    route *wait_head, *wait_tail;
    int refreshing;        /* a topology read in flight */
    int refresh_armed;     /* the timer will start one */
    uint64_t last_refresh; /* when the last read started (loop ms) */
    aredis_timer *timer;
    aredis_timer *periodic; /* refresh_every_ms, or NULL */
    int freeing;            /* aredis__cluster_free has begun */
    int depth;              /* inside the cluster's own callbacks (enter/leave) */
    int free_pending;       /* freed from inside one: the memory goes at leave */
    route *spare;           /* finished routes kept for reuse */
    size_t nspare;
    aredis__buf enc; /* where a command is encoded (reused) */
    aredis__cluster_stats st;
};

/* Callbacks may free the cluster: its memory stays until the outermost of
 * the cluster's own frames returns (as the client's enter/leave). */
static void enter(aredis__cluster *cl) { cl->depth++; }
static void cluster_destroy(aredis__cluster *cl);
static void leave(aredis__cluster *cl) {
    if (--cl->depth == 0 && cl->free_pending) cluster_destroy(cl);
}

static void refresh(aredis__cluster *cl);
static void send_waiting(aredis__cluster *cl, aredis_err code, const char *detail);

/* ---- Nodes ----------------------------------------------------------------- */

/* A node connection ended: its slots may have moved (a failover). */
static void node_lost(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)err;
    cnode *n = data;
    aredis__cluster *cl = n->cl;
    if (cl->freeing) return;
    enter(cl);
    refresh(cl);
    leave(cl);
}

/* The connection to host:port, if there is one. */
static cnode *node_find(const aredis__cluster *cl, const char *host, int port) {
    for (cnode *n = cl->nodes; n; n = n->next)
        if (n->port == port && strcmp(n->host, host) == 0) return n;
    return NULL;
}

/* The connection to host:port, made (and connecting) when new. */
static cnode *node_get(aredis__cluster *cl, const char *host, int port) {
    cnode *n = node_find(cl, host, port);
    if (n) return n;
    n = aredis__calloc(1, sizeof *n);
    if (!n) return NULL;
    n->cl = cl;
    n->port = port;
    n->host = aredis__strdup(host);
    aredis_options o = cl->nopt;
    o.host = host;
    o.port = port;
    o.unix_path = NULL;
    o.on_disconnect = node_lost;
    o.on_error = NULL;
    o.on_connect = NULL;
    o.on_reconnect_attempt = NULL;
    o.cb_data = n;
    if (n->host) n->c = aredis_client_new(cl->loop, &o);
    if (!n->c || aredis_client_connect(n->c) != AREDIS_ERR_OK) {
        aredis_client_free(n->c);
        aredis__free(n->host);
        aredis__free(n);
        return NULL;
    }
    n->next = cl->nodes;
    cl->nodes = n;
    cl->st.nodes++;
    return n;
}

/* The connection to topology node i. */
static aredis_client *client_of(aredis__cluster *cl, int i) {
    const aredis__cnode *tn = &cl->topo->nodes[i];
    if (!tn->port) return NULL;
    cnode *n = node_get(cl, tn->host, tn->port);
    return n ? n->c : NULL;
}

/* Where a command of this slot goes: its owner; for a keyless command (or
 * one whose keys cannot be known, or a slot nobody serves: the node will
 * say where with MOVED) a primary, preferring one that is connected. */
static aredis_client *route_to(aredis__cluster *cl, int slot) {
    if (slot >= 0 && cl->topo->owner[slot]) return client_of(cl, cl->topo->owner[slot] - 1);
    int any = -1;
    for (size_t i = 0; i < cl->topo->nnodes; i++) {
        const aredis__cnode *tn = &cl->topo->nodes[i];
        if (!tn->primary || !tn->port) continue;
        const cnode *n = node_find(cl, tn->host, tn->port);
        if (n && aredis_client_state(n->c) == AREDIS_STATE_READY) return n->c;
        if (any < 0) any = (int)i;
    }
    return any >= 0 ? client_of(cl, any) : NULL;
}

/* ---- Topology ---------------------------------------------------------------- */

/* A primary serving slots whose connection is down (a failover may be
 * under way: the cluster will name another one soon). A failed primary
 * whose slots went to its replica serves none: it does not count. */
static int owner_down(const aredis__cluster *cl) {
    const aredis__ctopo *t = cl->topo;
    for (size_t s = 0; s < AREDIS__SLOTS; s++) {
        if (!t->owner[s] || (s && t->owner[s] == t->owner[s - 1])) continue;
        const aredis__cnode *tn = &t->nodes[t->owner[s] - 1];
        const cnode *n = node_find(cl, tn->host, tn->port);
        aredis_state st = n ? aredis_client_state(n->c) : AREDIS_STATE_READY;
        if (st != AREDIS_STATE_READY && st != AREDIS_STATE_CONNECTING &&
            st != AREDIS_STATE_HANDSHAKE)
            return 1;
    }
    return 0;
}

static void install(aredis__cluster *cl, aredis__ctopo *t) {
    aredis__ctopo_free(cl->topo);
    cl->topo = t;
    cl->st.refreshes++;
    send_waiting(cl, AREDIS_ERR_OK, NULL);
    /* Still naming a primary that is down: read it again until the
     * failover shows (rate-limited like every read). */
    if (!cl->freeing && cl->topo == t && owner_down(cl)) refresh(cl);
}

typedef aredis__ctopo *parse_fn(const aredis_reply *r, const char *asked_host, const char **why);

/* A topology read's answer: installed, or (for commands waiting for a
 * first one) the reason they fail; read again when the rate limit allows. */
static void topology_read(aredis__cluster *cl, aredis_client *c, aredis_reply *r,
                          const aredis_error *err, parse_fn *parse) {
    const char *why = err ? err->detail : NULL;
    aredis__ctopo *t = err ? NULL : parse(r, aredis__client_opts(c)->host, &why);
    if (t) {
        install(cl, t);
        return;
    }
    aredis__log(AREDIS_LOG_WARN, "cluster: cannot read the topology: %s", why);
    /* As a single client's commands fail when its first connect does;
     * later reads keep the topology they have. */
    if (!cl->topo) send_waiting(cl, err ? err->code : AREDIS_ERR_PROTOCOL, why);
    if (!cl->freeing) refresh(cl);
}

static void on_slots(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    aredis__cluster *cl = data;
    cl->refreshing = 0;
    if (cl->freeing) return;
    enter(cl);
    topology_read(cl, c, r, err, aredis__ctopo_from_slots);
    leave(cl);
}

static void on_topology(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    aredis__cluster *cl = data;
    cl->refreshing = 0;
    if (cl->freeing) return;
    enter(cl);
    if (err && err->code == AREDIS_ERR_SERVER &&
        aredis_command(c, on_slots, cl, "CLUSTER SLOTS") == AREDIS_ERR_OK)
        cl->refreshing = 1; /* no CLUSTER SHARDS (before Redis 7): CLUSTER SLOTS */
    else
        topology_read(cl, c, r, err, aredis__ctopo_from_shards);
    leave(cl);
}

/* Ask a node for the topology: a connected one when there is one. */
static void refresh_now(aredis__cluster *cl) {
    aredis_client *c = NULL;
    for (cnode *n = cl->nodes; n && !c; n = n->next)
        if (aredis_client_state(n->c) == AREDIS_STATE_READY) c = n->c;
    if (!c && cl->nodes) c = cl->nodes->c; /* it queues until connected */
    if (!c) return;
    cl->last_refresh = aredis_loop_now_ms(cl->loop);
    if (aredis_command(c, on_topology, cl, "CLUSTER SHARDS") == AREDIS_ERR_OK) {
        cl->refreshing = 1;
        return;
    }
    /* Refused at once (the node is down and not queueing): commands
     * waiting for a first topology fail now, and it is tried again. */
    char why[256];
    snprintf(why, sizeof why, "%s", aredis_call_error()->detail);
    aredis_err code = aredis_call_error()->code;
    if (!cl->topo) send_waiting(cl, code, why);
    if (cl->freeing) return;
    cl->refresh_armed = 1;
    aredis_timer_start(cl->timer, cl->min_refresh, 0);
}

static void on_periodic(void *arg) {
    aredis__cluster *cl = arg;
    enter(cl);
    refresh(cl);
    leave(cl);
}

static void on_refresh_timer(void *arg) {
    aredis__cluster *cl = arg;
    cl->refresh_armed = 0;
    enter(cl);
    refresh(cl);
    leave(cl);
}

/* Read the topology again: now, or when the rate limit allows. */
static void refresh(aredis__cluster *cl) {
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

/* ---- Commands ----------------------------------------------------------------- */

static const char k_asking[] = "*1\r\n$6\r\nASKING\r\n";

static void route_part(aredis_client *c, aredis_reply *r, size_t i, void *data);
static void route_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);
static void route_done_in(aredis_client *c, aredis_reply *r, const aredis_error *err, route *x,
                          aredis__cluster *cl);

static aredis_err send_to(aredis_client *c, route *x, int asking) {
    size_t al = asking ? sizeof k_asking - 1 : 0;
    char *both = NULL;
    const char *bytes = x->bytes;
    size_t ends[2];
    if (asking) {
        both = aredis__malloc(al + x->len);
        if (!both) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        memcpy(both, k_asking, al);
        memcpy(both + al, x->bytes, x->len);
        bytes = both;
        ends[0] = al;
    }
    ends[asking ? 1 : 0] = al + x->len;
    aredis__batch_spec s;
    memset(&s, 0, sizeof s);
    s.bytes = bytes;
    s.len = al + x->len;
    s.n = asking ? 2 : 1;
    s.ends = ends;
    s.part = route_part;
    s.done = route_done;
    s.data = x;
    s.block_ms = x->block_ms;
    s.block_forever = x->block_forever;
    s.sensitive = x->sensitive;
    x->asking = asking;
    aredis_err e = aredis__batch_submit(c, &s, NULL);
    aredis__free(both);
    return e;
}

/* A route for a command of len bytes: a kept one when it has room (the
 * per-command allocation is the hot path's largest cost). */
enum { ROUTE_KEEP = 64, ROUTE_MIN = 96, ROUTE_MAX_KEPT = 4096 };

static route *route_new(aredis__cluster *cl, size_t len) {
    route *x = cl->spare;
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
    x->cl = cl;
    x->cb = NULL;
    x->data = NULL;
    x->reply = NULL;
    x->redirects = 0;
    x->asking = 0;
    x->slot = AREDIS__SLOT_UNKNOWN;
    x->block_ms = 0;
    x->block_forever = x->sensitive = 0;
    x->len = len;
    return x;
}

static void route_release(route *x) {
    aredis__cluster *cl = x->cl;
    if (cl->nspare < ROUTE_KEEP && x->cap <= ROUTE_MAX_KEPT && !cl->free_pending) {
        x->next = cl->spare;
        cl->spare = x;
        cl->nspare++;
        return;
    }
    aredis__free(x);
}

static void route_free(route *x) {
    aredis_reply_release(x->reply);
    x->reply = NULL;
    route_release(x);
}

/* Hand the outcome over, and forget the command. */
static void deliver(aredis_client *c, route *x, aredis_reply *r, const aredis_error *err) {
    aredis_reply_fn *cb = x->cb;
    void *data = x->data;
    aredis_reply *keep = x->reply;
    x->reply = NULL;
    route_release(x);
    aredis__deliver(c, cb, data, r, err);
    aredis_reply_release(keep);
}

static void deliver_code(aredis_client *c, route *x, aredis_err code, const char *detail) {
    aredis_error e;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.detail = detail;
    deliver(c, x, NULL, &e);
}

static void route_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    (void)c;
    route *x = data;
    if (x->asking && i == 0) return; /* ASKING's +OK */
    aredis_reply_release(x->reply);
    x->reply = aredis_reply_retain(r);
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": 1 (ask 0/1), slot, host, port. */
static int redirection(const aredis_reply *r, const char *from_host, int *ask, int *slot,
                       char *host, size_t hostlen, int *port) {
    if (r->type != AREDIS_REPLY_ERROR || !r->str) return 0;
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

static void route_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    route *x = data;
    aredis__cluster *cl = x->cl;
    enter(cl);
    route_done_in(c, r, err, x, cl);
    leave(cl);
}

static void route_done_in(aredis_client *c, aredis_reply *r, const aredis_error *err, route *x,
                          aredis__cluster *cl) {
    (void)r;
    if (err) {
        /* A lost connection may be a failover: read the topology again. */
        if (!cl->freeing && err->code != AREDIS_ERR_CANCELLED && err->code != AREDIS_ERR_TIMEOUT)
            refresh(cl);
        deliver(c, x, NULL, err);
        return;
    }
    aredis_reply *got = x->reply;
    int ask, slot, port;
    char host[256];
    if (got && !cl->freeing && x->redirects < cl->max_redirects &&
        redirection(got, aredis__client_opts(c)->host, &ask, &slot, host, sizeof host, &port)) {
        x->redirects++;
        cnode *n = node_get(cl, host, port);
        if (!ask) {
            cl->st.moved++;
            int i = aredis__ctopo_node(cl->topo, host, port, 1);
            if (i >= 0) aredis__ctopo_set_owner(cl->topo, (unsigned)slot, i);
            refresh(cl); /* a MOVED seldom comes alone */
        } else {
            cl->st.asked++;
        }
        aredis_reply_release(x->reply);
        x->reply = NULL;
        aredis_err e = n ? send_to(n->c, x, ask) : AREDIS_ERR_NOMEM;
        if (e != AREDIS_ERR_OK)
            deliver_code(c, x, e, n ? aredis_call_error()->detail : "out of memory");
        return;
    }
    deliver(c, x, got, NULL);
}

static aredis_err no_route(void) {
    return aredis__call_fail(AREDIS_ERR_NOT_CONNECTED,
                             "no cluster node to send it to (none with a usable address)");
}

/* Commands that waited for the topology: out now, or failed with why. */
static void send_waiting(aredis__cluster *cl, aredis_err code, const char *detail) {
    route *x = cl->wait_head;
    cl->wait_head = cl->wait_tail = NULL;
    char why[256];
    snprintf(why, sizeof why, "cluster topology unavailable: %s", detail ? detail : "");
    while (x) {
        route *next = x->next;
        x->next = NULL;
        aredis_client *c = cl->nodes ? cl->nodes->c : NULL;
        aredis_err e = code;
        const char *d = why;
        if (cl->freeing) { /* a callback freed the cluster: the rest are cancelled */
            e = AREDIS_ERR_CANCELLED;
            d = "cluster freed";
        } else if (code == AREDIS_ERR_OK) {
            aredis_client *to = route_to(cl, x->slot);
            e = to ? send_to(to, x, 0) : no_route();
            d = aredis_call_error()->detail;
        }
        if (e != AREDIS_ERR_OK) deliver_code(c, x, e, d);
        x = next;
    }
}

static aredis_err submit(aredis__cluster *cl, const char *bytes, size_t len, aredis_reply_fn *cb,
                         void *data) {
    if (cl->freeing) return aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
    /* What the command API refuses (unmatchable replies, AUTH/HELLO), and
     * its block time; a session command means a connection of one's own,
     * which a cluster does not give yet. */
    uint64_t block_ms = 0;
    int block_forever = 0, sensitive = 0, session = 0;
    aredis_err ce =
        aredis__batch_check(bytes, len, &block_ms, &block_forever, &sensitive, &session);
    if (ce != AREDIS_ERR_OK) return ce;
    if (session)
        return aredis__call_fail(
            AREDIS_ERR_UNSUPPORTED,
            "MULTI, EXEC, DISCARD, SELECT, AUTH and HELLO are not supported on "
            "a cluster (yet): they would change a node connection others share");
    int slot = aredis__cmd_slot(NULL, bytes, len, NULL);
    if (slot == AREDIS__SLOT_CROSS)
        return aredis__call_fail(AREDIS_ERR_UNSUPPORTED,
                                 "CROSSSLOT Keys in request don't hash to the same slot (refused "
                                 "before sending: use a hash tag, {...}, to keep keys together)");
    route *x = route_new(cl, len);
    if (!x) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    x->cb = cb;
    x->data = data;
    x->slot = slot;
    x->block_ms = block_ms;
    x->block_forever = block_forever;
    x->sensitive = sensitive;
    memcpy(x->bytes, bytes, len);
    if (!cl->topo) { /* it goes once the topology is known */
        if (cl->wait_tail)
            cl->wait_tail->next = x;
        else
            cl->wait_head = x;
        cl->wait_tail = x;
        if (!cl->refreshing && !cl->refresh_armed) { /* none coming: ask (next turn) */
            cl->refresh_armed = 1;
            aredis_timer_start(cl->timer, 0, 0);
        }
        return AREDIS_ERR_OK;
    }
    aredis_client *c = route_to(cl, slot);
    aredis_err e = c ? send_to(c, x, 0) : no_route();
    if (e != AREDIS_ERR_OK) route_free(x);
    return e;
}

aredis_err aredis__cluster_command(aredis__cluster *cl, aredis_reply_fn *cb, void *data,
                                   const char *fmt, ...) {
    if (!cl || !fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "cluster or format is NULL");
    aredis__buf *b = &cl->enc;
    b->off = b->len = 0;
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis__write_vfmt(b, fmt, ap);
    va_end(ap);
    if (e == AREDIS_ERR_OK)
        e = submit(cl, b->data + b->off, b->len - b->off, cb, data);
    else
        aredis__call_fail(e, "malformed command or format");
    return e;
}

aredis_err aredis__cluster_command_argv(aredis__cluster *cl, aredis_reply_fn *cb, void *data,
                                        int argc, const char *const *argv, const size_t *argvlen) {
    if (!cl) return aredis__call_fail(AREDIS_ERR_INVALID, "cluster is NULL");
    aredis__buf *b = &cl->enc;
    b->off = b->len = 0;
    aredis_err e = aredis__write_argv(b, argc, argv, argvlen);
    if (e == AREDIS_ERR_OK)
        e = submit(cl, b->data + b->off, b->len - b->off, cb, data);
    else
        aredis__call_fail(e, "malformed command");
    return e;
}

/* ---- Lifecycle ------------------------------------------------------------------ */

aredis__cluster *aredis__cluster_new(aredis_loop *loop, const aredis__cluster_opts *o) {
    if (!loop || !o || !o->seed_host || o->seed_port <= 0 || o->seed_port > 65535) {
        aredis__call_fail(AREDIS_ERR_INVALID, "a loop and a seed node (host, port) are needed");
        return NULL;
    }
    if (o->node.prefix && *o->node.prefix) {
        aredis__call_fail(AREDIS_ERR_UNSUPPORTED,
                          "key prefixes are not supported on a cluster yet");
        return NULL;
    }
    aredis__cluster *cl = aredis__calloc(1, sizeof *cl);
    if (!cl || aredis__options_dup(&cl->nopt, &o->node) != 0) {
        aredis__free(cl);
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cl->loop = loop;
    cl->max_redirects = o->max_redirects ? o->max_redirects : 5;
    cl->min_refresh = o->min_refresh_ms ? o->min_refresh_ms : 100;
    cl->timer = aredis_timer_new(loop, on_refresh_timer, cl);
    uint32_t every = o->refresh_every_ms ? o->refresh_every_ms : 30000;
    if (cl->timer && every != AREDIS__CLUSTER_NO_PERIODIC) {
        cl->periodic = aredis_timer_new(loop, on_periodic, cl);
        if (cl->periodic) {
            aredis_timer_start(cl->periodic, every, every);
        } else { /* out of memory: reported below */
            aredis_timer_free(cl->timer);
            cl->timer = NULL;
        }
    }
    if (!cl->timer || !node_get(cl, o->seed_host, o->seed_port)) {
        aredis_err code = cl->timer ? aredis_call_error()->code : AREDIS_ERR_NOMEM;
        char why[256];
        snprintf(why, sizeof why, "%s", cl->timer ? aredis_call_error()->detail : "out of memory");
        aredis__cluster_free(cl);
        aredis__call_fail(code, "%s", why);
        return NULL;
    }
    refresh_now(cl);
    return cl;
}

static void cluster_destroy(aredis__cluster *cl) {
    while (cl->spare) {
        route *x = cl->spare;
        cl->spare = x->next;
        aredis__free(x);
    }
    aredis__buf_free(&cl->enc);
    if (cl->timer) aredis_timer_free(cl->timer);
    if (cl->periodic) aredis_timer_free(cl->periodic);
    aredis__ctopo_free(cl->topo);
    aredis__options_release(&cl->nopt);
    aredis__free(cl);
}

void aredis__cluster_free(aredis__cluster *cl) {
    if (!cl || cl->freeing) return;
    cl->freeing = 1;
    enter(cl);
    /* Freeing a node fails its commands (CANCELLED): their callbacks run
     * now, while the cluster is still here. */
    while (cl->nodes) {
        cnode *n = cl->nodes;
        cl->nodes = n->next;
        aredis_client_free(n->c);
        aredis__free(n->host);
        aredis__free(n);
    }
    route *x = cl->wait_head;
    cl->wait_head = cl->wait_tail = NULL;
    while (x) {
        route *next = x->next;
        deliver_code(NULL, x, AREDIS_ERR_CANCELLED, "cluster freed");
        x = next;
    }
    if (cl->timer) aredis_timer_stop(cl->timer);
    if (cl->periodic) aredis_timer_stop(cl->periodic);
    cl->free_pending = 1;
    leave(cl);
}

void aredis__cluster_get_stats(const aredis__cluster *cl, aredis__cluster_stats *out) {
    *out = cl->st;
}
