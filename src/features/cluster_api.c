/*
 * The cluster's public command functions (aredis/cluster.h): a command is
 * encoded once into the cluster's buffer, checked and made a route
 * (cluster.c), and sent; futures are completed by the route's callback;
 * command_all sends one keyless command to each primary and gathers the
 * replies; node accessors and counters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "features/cluster_internal.h"
#include "proto/reply_internal.h"
#include "proto/slot.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/error.h"

/* The command in cl->enc, sent as a lone route. */
static aredis_err send_encoded(aredis_cluster *cl, aredis_reply_fn *cb, void *data) {
    aredis__buf *b = &cl->enc;
    aredis__croute *x = aredis__cl_route_make(cl, b->data + b->off, b->len - b->off);
    if (!x) return aredis_call_error()->code;
    x->cb = cb;
    x->data = data;
    aredis_err e = aredis__cl_route_send(x);
    if (e != AREDIS_ERR_OK) aredis__cl_route_free(x);
    return e;
}

aredis_err aredis__cl_encode(aredis_cluster *cl, int argc, const char *const *argv,
                             const size_t *argvlen, const char *fmt, va_list *ap) {
    aredis__buf *b = &cl->enc;
    b->off = b->len = 0;
    aredis_err e =
        fmt ? aredis__write_vfmt(b, fmt, *ap)
            : (argc > 0 && argv ? aredis__write_argv(b, argc, argv, argvlen) : AREDIS_ERR_INVALID);
    if (e != AREDIS_ERR_OK)
        aredis__call_fail(e, fmt ? "malformed command or format" : "malformed command");
    return e;
}

static aredis_err encode_fmt(aredis_cluster *cl, const char *fmt, va_list ap) {
    va_list aq;
    va_copy(aq, ap);
    aredis_err e = aredis__cl_encode(cl, 0, NULL, NULL, fmt, &aq);
    va_end(aq);
    return e;
}

static aredis_err encode_argv(aredis_cluster *cl, int argc, const char *const *argv,
                              const size_t *argvlen) {
    return aredis__cl_encode(cl, argc, argv, argvlen, NULL, NULL);
}

aredis_err aredis_cluster_vcommand(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                   const char *fmt, va_list ap) {
    if (!cl || !fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "cluster or format is NULL");
    aredis_err e = encode_fmt(cl, fmt, ap);
    return e == AREDIS_ERR_OK ? send_encoded(cl, cb, data) : e;
}

aredis_err aredis_cluster_command(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                  const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis_cluster_vcommand(cl, cb, data, fmt, ap);
    va_end(ap);
    return e;
}

aredis_err aredis_cluster_argv(aredis_cluster *cl, aredis_reply_fn *cb, void *data, int argc,
                               const char *const *argv, const size_t *argvlen) {
    if (!cl) return aredis__call_fail(AREDIS_ERR_INVALID, "cluster is NULL");
    aredis_err e = encode_argv(cl, argc, argv, argvlen);
    return e == AREDIS_ERR_OK ? send_encoded(cl, cb, data) : e;
}

/* ---- Futures --------------------------------------------------------------- */

/* A future for what cl->enc holds (e: how encoding went). */
static aredis_future *future_of(aredis_cluster *cl, aredis_err e) {
    aredis_future *f = aredis__future_pending_loop(cl->loop);
    if (!f) return NULL;
    if (e == AREDIS_ERR_OK) e = send_encoded(cl, aredis__future_done, f);
    return e == AREDIS_ERR_OK ? f : aredis__future_refused(f, e);
}

aredis_future *aredis_cluster_future(aredis_cluster *cl, const char *fmt, ...) {
    if (!cl || !fmt) {
        aredis__call_fail(AREDIS_ERR_INVALID, "cluster or format is NULL");
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = encode_fmt(cl, fmt, ap);
    va_end(ap);
    return future_of(cl, e);
}

aredis_future *aredis_cluster_future_argv(aredis_cluster *cl, int argc, const char *const *argv,
                                          const size_t *argvlen) {
    if (!cl) {
        aredis__call_fail(AREDIS_ERR_INVALID, "cluster is NULL");
        return NULL;
    }
    return future_of(cl, encode_argv(cl, argc, argv, argvlen));
}

/* ---- One command to every primary ------------------------------------------- */

/* One node's part: its reply goes to index i. The cluster is held while
 * the part is out (a node freed from inside its own callback still
 * answers it afterwards). */
typedef struct each_one {
    aredis__clgather *all;
    size_t i;
} each_one;

static void all_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    (void)c;
    (void)i;
    each_one *one = data;
    aredis_reply_release(one->all->replies[one->i]);
    one->all->replies[one->i] = aredis_reply_retain(r);
}

static void all_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    each_one *one = data;
    aredis__clgather *g = one->all;
    aredis_cluster *cl = g->cl;
    aredis__free(one);
    aredis__cl_enter(cl);
    aredis__cl_unhold(cl);
    if (err) aredis__cl_gather_fail(g, err->code, err->detail, err->prefix);
    aredis__cl_gather_end(g, c);
    aredis__cl_leave(cl);
}

aredis_err aredis_cluster_command_all(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                      const char *fmt, ...) {
    if (!cl || !fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "cluster or format is NULL");
    if (cl->freeing) return aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = encode_fmt(cl, fmt, ap);
    va_end(ap);
    if (e != AREDIS_ERR_OK) return e;
    const char *bytes = cl->enc.data + cl->enc.off;
    size_t len = cl->enc.len - cl->enc.off;
    uint64_t block_ms = 0;
    int block_forever = 0, sensitive = 0, session = 0;
    e = aredis__batch_check(bytes, len, &block_ms, &block_forever, &sensitive, &session);
    if (e != AREDIS_ERR_OK) return e;
    int slot = aredis__cmd_slot(NULL, bytes, len, NULL);
    if (session || slot != AREDIS__SLOT_NONE)
        return aredis__call_fail(AREDIS_ERR_INVALID,
                                 "aredis_cluster_command_all takes keyless commands that change "
                                 "no session (FLUSHALL, SCRIPT LOAD, DBSIZE...)");
    enum { MAXP = 1024 };
    aredis_client *prim[MAXP];
    size_t np = aredis__cl_primaries(cl, prim, MAXP);
    if (np == 0)
        return aredis__call_fail(AREDIS_ERR_NOT_CONNECTED,
                                 "the cluster's topology is not known yet (no primary to send to)");
    if (np > MAXP) return aredis__call_fail(AREDIS_ERR_UNSUPPORTED, "more than 1024 primaries");
    aredis__clgather *a = aredis__cl_gather_new(cl, cb, data, np); /* held until all are asked */
    if (!a) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    size_t sent = 0;
    for (size_t i = 0; i < np; i++) {
        each_one *one = aredis__malloc(sizeof *one);
        aredis__batch_spec s;
        memset(&s, 0, sizeof s);
        s.bytes = bytes;
        s.len = len;
        s.n = 1;
        s.ends = &len;
        s.part = all_part;
        s.done = all_done;
        s.data = one;
        s.block_ms = block_ms;
        s.block_forever = block_forever;
        s.sensitive = sensitive;
        e = one ? AREDIS_ERR_OK : aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        if (one) {
            one->all = a;
            one->i = i;
            e = aredis__batch_submit(prim[i], &s, NULL);
            if (e != AREDIS_ERR_OK) aredis__free(one);
        }
        if (e == AREDIS_ERR_OK) {
            a->left++;
            aredis__cl_hold(cl);
            sent++;
        } else {
            aredis__cl_gather_fail(a, e, aredis_call_error()->detail, NULL);
        }
    }
    if (!sent) return aredis__cl_gather_refused(a); /* nothing went: refused now */
    aredis__cl_gather_end(a, NULL); /* what went answers later, never inside this call */
    return AREDIS_ERR_OK;
}

/* ---- Nodes and counters --------------------------------------------------------- */

size_t aredis_cluster_nodes(aredis_cluster *cl, aredis_client **out, size_t max, int replicas) {
    if (!cl) return 0;
    size_t n = aredis__cl_primaries(cl, out, max);
    if (!replicas || !cl->topo) return n;
    /* The replicas the topology names that have a connection. */
    for (size_t i = 0; i < cl->topo->nnodes; i++) {
        const aredis__cnode *tn = &cl->topo->nodes[i];
        if (tn->primary || !tn->port) continue;
        for (aredis__clnode *x = cl->nodes; x; x = x->next)
            if (x->port == tn->port && strcmp(x->host, tn->host) == 0) {
                if (n < max) out[n] = x->c;
                n++;
                break;
            }
    }
    return n;
}

aredis_client *aredis_cluster_node_for_key(aredis_cluster *cl, const char *key, size_t keylen) {
    if (!cl || !key) return NULL;
    return aredis__cl_owner_client(cl, (int)aredis__key_slot(key, keylen));
}

void aredis_cluster_get_stats(const aredis_cluster *cl, aredis_cluster_stats *out) {
    if (!out) return;
    if (!cl) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = cl->st;
}

unsigned aredis_cluster_keyslot(const char *key, size_t keylen) {
    return key ? aredis__key_slot(key, keylen) : 0;
}
