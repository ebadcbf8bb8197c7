/*
 * Cluster pipelines and transactions (aredis/cluster.h).
 *
 *   pipeline     each queued command is a route of its own (checked and
 *                kept when queued); exec sends them all in one turn — a
 *                node client writes what it was given in a turn at once,
 *                so that is one write per node — and an "exec" record
 *                gathers their ends by index into one ARRAY
 *   transaction  the queued commands' bytes, all of one slot; exec makes
 *                one route of MULTI, them, EXEC (ncmds = n + 2) whose
 *                reply is EXEC's: a redirection of any queued command
 *                sends the whole route again (cluster.c)
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "features/cluster_internal.h"
#include "proto/reply_internal.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/error.h"

/* ---- Pipelines ------------------------------------------------------------------ */

struct aredis_cluster_pipeline {
    aredis_cluster *cl;
    aredis__croute *head, *tail;
    size_t n;
};

aredis_cluster_pipeline *aredis_cluster_pipeline_new(aredis_cluster *cl) {
    if (!cl) {
        aredis__call_fail(AREDIS_ERR_INVALID, "cluster is NULL");
        return NULL;
    }
    aredis_cluster_pipeline *p = aredis__calloc(1, sizeof *p);
    if (!p) aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    if (p) p->cl = cl;
    return p;
}

/* Routes never sent: plain memory (the cluster may be gone). */
static void drop_routes(aredis__croute *x) {
    while (x) {
        aredis__croute *next = x->next;
        aredis__free(x->ends);
        aredis__free(x);
        x = next;
    }
}

void aredis_cluster_pipeline_free(aredis_cluster_pipeline *p) {
    if (!p) return;
    drop_routes(p->head);
    aredis__free(p);
}

static aredis_err pipe_add(aredis_cluster_pipeline *p, int argc, const char *const *argv,
                           const size_t *argvlen, const char *fmt, va_list *ap) {
    if (!p) return aredis__call_fail(AREDIS_ERR_INVALID, "pipeline is NULL");
    aredis_err e = aredis__cl_encode(p->cl, argc, argv, argvlen, fmt, ap);
    if (e != AREDIS_ERR_OK) return e;
    aredis__buf *b = &p->cl->enc;
    aredis__croute *x = aredis__cl_route_make(p->cl, b->data + b->off, b->len - b->off);
    if (!x) return aredis_call_error()->code;
    if (p->tail)
        p->tail->next = x;
    else
        p->head = x;
    p->tail = x;
    p->n++;
    return AREDIS_ERR_OK;
}

aredis_err aredis_cluster_pipeline_command(aredis_cluster_pipeline *p, const char *fmt, ...) {
    if (!fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL");
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = pipe_add(p, 0, NULL, NULL, fmt, &ap);
    va_end(ap);
    return e;
}

aredis_err aredis_cluster_pipeline_argv(aredis_cluster_pipeline *p, int argc,
                                        const char *const *argv, const size_t *argvlen) {
    return pipe_add(p, argc, argv, argvlen, NULL, NULL);
}

size_t aredis_cluster_pipeline_size(const aredis_cluster_pipeline *p) { return p ? p->n : 0; }

/* ---- Replies gathered in order (pipelines, command_all) ----------------------- */

aredis__clgather *aredis__cl_gather_new(aredis_cluster *cl, aredis_reply_fn *cb, void *data,
                                        size_t n) {
    aredis__clgather *g = aredis__calloc(1, sizeof *g + n * sizeof(aredis_reply *));
    if (!g) return NULL;
    g->cl = cl;
    g->cb = cb;
    g->data = data;
    g->n = n;
    g->left = 1;
    return g;
}

void aredis__cl_gather_fail(aredis__clgather *g, aredis_err code, const char *detail,
                            const char *prefix) {
    if (g->code != AREDIS_ERR_OK) return;
    g->code = code;
    snprintf(g->detail, sizeof g->detail, "%s", detail ? detail : "");
    snprintf(g->prefix, sizeof g->prefix, "%s", prefix ? prefix : "");
}

void aredis__cl_gather_end(aredis__clgather *g, aredis_client *c) {
    if (--g->left) return;
    if (g->cl->freeing) c = NULL; /* the node connections are going */
    aredis_error e;
    memset(&e, 0, sizeof e);
    aredis_reply *arr = NULL;
    if (g->code == AREDIS_ERR_OK) {
        arr = aredis__reply_array_new(g->n);
        if (arr)
            for (size_t i = 0; i < g->n; i++)
                aredis__reply_array_add(arr, g->replies[i]);
        else
            aredis__cl_gather_fail(g, AREDIS_ERR_NOMEM, "out of memory", NULL);
    }
    if (g->code != AREDIS_ERR_OK) {
        e.code = g->code;
        e.detail = g->detail;
        snprintf(e.prefix, sizeof e.prefix, "%s", g->prefix);
    }
    if (g->cb) g->cb(c, arr, arr ? NULL : &e, g->data);
    aredis_reply_release(arr);
    for (size_t i = 0; i < g->n; i++)
        aredis_reply_release(g->replies[i]);
    aredis__free(g);
}

aredis_err aredis__cl_gather_refused(aredis__clgather *g) {
    aredis_err code = g->code;
    char why[256];
    snprintf(why, sizeof why, "%s", g->detail);
    aredis__free(g);
    return aredis__call_fail(code, "%s", why);
}

/* One command of the exec is over (cluster.c calls it; frees x). */
static void pipe_fin(aredis__croute *x, aredis_client *c, aredis_reply *r,
                     const aredis_error *err) {
    aredis__clgather *g = x->parent;
    if (err)
        aredis__cl_gather_fail(g, err->code, err->detail, err->prefix);
    else
        g->replies[x->index] = aredis_reply_retain(r);
    aredis__cl_route_free(x);
    aredis__cl_gather_end(g, c);
}

aredis_err aredis_cluster_pipeline_exec(aredis_cluster_pipeline *p, aredis_reply_fn *cb,
                                        void *data) {
    if (!p || !p->n) return aredis__call_fail(AREDIS_ERR_INVALID, "nothing queued");
    aredis_cluster *cl = p->cl;
    if (cl->freeing) return aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
    aredis__clgather *pe = aredis__cl_gather_new(cl, cb, data, p->n); /* held until all are out */
    if (!pe) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    aredis__croute *x = p->head;
    p->head = p->tail = NULL;
    p->n = 0;
    size_t sent = 0;
    for (size_t i = 0; x; i++) {
        aredis__croute *next = x->next;
        x->next = NULL;
        x->fin = pipe_fin;
        x->parent = pe;
        x->index = i;
        aredis_err e = aredis__cl_route_send(x);
        if (e == AREDIS_ERR_OK) {
            pe->left++;
            sent++;
        } else {
            aredis__cl_gather_fail(pe, e, aredis_call_error()->detail, NULL);
            aredis__cl_route_free(x);
        }
        x = next;
    }
    if (!sent) return aredis__cl_gather_refused(pe); /* refused as a whole: cb never runs */
    aredis__cl_gather_end(pe, NULL); /* the routes finish on later turns, never inside this call */
    return AREDIS_ERR_OK;
}

aredis_future *aredis_cluster_pipeline_exec_future(aredis_cluster_pipeline *p) {
    if (!p) {
        aredis__call_fail(AREDIS_ERR_INVALID, "pipeline is NULL");
        return NULL;
    }
    aredis_future *f = aredis__future_pending_loop(p->cl->loop);
    if (!f) return NULL;
    aredis_err e = aredis_cluster_pipeline_exec(p, aredis__future_done, f);
    return e == AREDIS_ERR_OK ? f : aredis__future_refused(f, e);
}

/* ---- Transactions ------------------------------------------------------------------ */

static const char k_multi[] = "*1\r\n$5\r\nMULTI\r\n";
static const char k_exec[] = "*1\r\n$4\r\nEXEC\r\n";

struct aredis_cluster_tx {
    aredis_cluster *cl;
    aredis__buf bytes; /* the queued commands */
    size_t *ends;      /* where each ends in bytes */
    size_t n, cap;
    int slot; /* the transaction's slot, or AREDIS__SLOT_NONE so far */
    int sensitive;
};

aredis_cluster_tx *aredis_cluster_tx_new(aredis_cluster *cl) {
    if (!cl) {
        aredis__call_fail(AREDIS_ERR_INVALID, "cluster is NULL");
        return NULL;
    }
    aredis_cluster_tx *tx = aredis__calloc(1, sizeof *tx);
    if (!tx) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    tx->cl = cl;
    tx->slot = AREDIS__SLOT_NONE;
    return tx;
}

static void tx_reset(aredis_cluster_tx *tx) {
    tx->bytes.off = tx->bytes.len = 0;
    tx->n = 0;
    tx->slot = AREDIS__SLOT_NONE;
    tx->sensitive = 0;
}

void aredis_cluster_tx_free(aredis_cluster_tx *tx) {
    if (!tx) return;
    aredis__buf_free(&tx->bytes);
    aredis__free(tx->ends);
    aredis__free(tx);
}

static aredis_err tx_add(aredis_cluster_tx *tx, int argc, const char *const *argv,
                         const size_t *argvlen, const char *fmt, va_list *ap) {
    if (!tx) return aredis__call_fail(AREDIS_ERR_INVALID, "transaction is NULL");
    aredis_cluster *cl = tx->cl;
    aredis_err e = aredis__cl_encode(cl, argc, argv, argvlen, fmt, ap);
    if (e != AREDIS_ERR_OK) return e;
    const char *cmd = cl->enc.data + cl->enc.off;
    size_t len = cl->enc.len - cl->enc.off;
    aredis__clcheck ck;
    e = aredis__cl_check(cl, cmd, len, 1, &ck);
    if (e != AREDIS_ERR_OK) return e;
    if (ck.slot >= 0 && tx->slot >= 0 && ck.slot != tx->slot)
        return aredis__call_fail(AREDIS_ERR_CROSSSLOT,
                                 "CROSSSLOT a cluster transaction runs on one node: this "
                                 "command's keys are in slot %d, the transaction's in slot %d "
                                 "(use a hash tag, {...}, to keep keys together)",
                                 ck.slot, tx->slot);
    if (tx->n == tx->cap) {
        size_t cap = tx->cap ? tx->cap * 2 : 8;
        size_t *ends = aredis__realloc(tx->ends, cap * sizeof *ends);
        if (!ends) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        tx->ends = ends;
        tx->cap = cap;
    }
    if (aredis__buf_append(&tx->bytes, cmd, len) != 0)
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    tx->ends[tx->n++] = tx->bytes.len - tx->bytes.off;
    if (ck.slot >= 0) tx->slot = ck.slot;
    tx->sensitive |= ck.sensitive;
    return AREDIS_ERR_OK;
}

aredis_err aredis_cluster_tx_queue(aredis_cluster_tx *tx, const char *fmt, ...) {
    if (!fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL");
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = tx_add(tx, 0, NULL, NULL, fmt, &ap);
    va_end(ap);
    return e;
}

aredis_err aredis_cluster_tx_queue_argv(aredis_cluster_tx *tx, int argc, const char *const *argv,
                                        const size_t *argvlen) {
    return tx_add(tx, argc, argv, argvlen, NULL, NULL);
}

size_t aredis_cluster_tx_size(const aredis_cluster_tx *tx) { return tx ? tx->n : 0; }

aredis_err aredis_cluster_tx_exec(aredis_cluster_tx *tx, aredis_reply_fn *cb, void *data) {
    if (!tx || !tx->n) return aredis__call_fail(AREDIS_ERR_INVALID, "nothing queued");
    aredis_cluster *cl = tx->cl;
    if (cl->freeing) return aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
    size_t ml = sizeof k_multi - 1, el = sizeof k_exec - 1;
    size_t body = tx->bytes.len - tx->bytes.off;
    aredis__croute *x = aredis__cl_route_new(cl, ml + body + el);
    size_t *ends = aredis__malloc((tx->n + 2) * sizeof *ends);
    if (!x || !ends) {
        if (x) aredis__cl_route_free(x);
        aredis__free(ends);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    memcpy(x->bytes, k_multi, ml);
    memcpy(x->bytes + ml, tx->bytes.data + tx->bytes.off, body);
    memcpy(x->bytes + ml + body, k_exec, el);
    ends[0] = ml;
    for (size_t i = 0; i < tx->n; i++)
        ends[i + 1] = ml + tx->ends[i];
    ends[tx->n + 1] = ml + body + el;
    x->ends = ends;
    x->ncmds = (unsigned)(tx->n + 2);
    x->slot = tx->slot;
    x->sensitive = tx->sensitive;
    x->cb = cb;
    x->data = data;
    aredis_err e = aredis__cl_route_send(x);
    if (e != AREDIS_ERR_OK) {
        aredis__cl_route_free(x);
        return e;
    }
    tx_reset(tx);
    return AREDIS_ERR_OK;
}

aredis_future *aredis_cluster_tx_exec_future(aredis_cluster_tx *tx) {
    if (!tx) {
        aredis__call_fail(AREDIS_ERR_INVALID, "transaction is NULL");
        return NULL;
    }
    aredis_future *f = aredis__future_pending_loop(tx->cl->loop);
    if (!f) return NULL;
    aredis_err e = aredis_cluster_tx_exec(tx, aredis__future_done, f);
    return e == AREDIS_ERR_OK ? f : aredis__future_refused(f, e);
}
