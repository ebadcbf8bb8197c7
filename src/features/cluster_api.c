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

typedef struct each_all {
    aredis_cluster *cl;
    aredis_reply_fn *cb;
    void *data;
    size_t n, left;
    aredis_err code;
    char prefix[32];
    char detail[256];
    aredis_reply *replies[];
} each_all;

static void all_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

typedef struct each_one {
    each_all *all;
    size_t i;
} each_one;

static void all_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    (void)c;
    (void)i;
    each_one *one = data;
    aredis_reply_release(one->all->replies[one->i]);
    one->all->replies[one->i] = aredis_reply_retain(r);
}

static void all_finish(each_all *a, aredis_client *c) {
    aredis_cluster *cl = a->cl;
    if (cl->freeing) c = NULL; /* the node connections are going */
    aredis__cl_enter(cl);
    if (a->code != AREDIS_ERR_OK) {
        aredis_error e;
        memset(&e, 0, sizeof e);
        e.code = a->code;
        e.detail = a->detail;
        snprintf(e.prefix, sizeof e.prefix, "%s", a->prefix);
        aredis__deliver(c, a->cb, a->data, NULL, &e);
    } else {
        aredis_reply *arr = aredis__reply_array_new(a->n);
        if (arr) {
            for (size_t i = 0; i < a->n; i++)
                aredis__reply_array_add(arr, a->replies[i]);
            if (a->cb) a->cb(c, arr, NULL, a->data);
            aredis_reply_release(arr);
        } else {
            aredis_error e;
            memset(&e, 0, sizeof e);
            e.code = AREDIS_ERR_NOMEM;
            e.detail = "out of memory";
            aredis__deliver(c, a->cb, a->data, NULL, &e);
        }
    }
    for (size_t i = 0; i < a->n; i++)
        aredis_reply_release(a->replies[i]);
    aredis__free(a);
    aredis__cl_leave(cl);
}

static void all_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    each_one *one = data;
    each_all *a = one->all;
    aredis__free(one);
    if (err && a->code == AREDIS_ERR_OK) {
        a->code = err->code;
        snprintf(a->detail, sizeof a->detail, "%s", err->detail);
        snprintf(a->prefix, sizeof a->prefix, "%s", err->prefix);
    }
    if (--a->left == 0) all_finish(a, c);
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
    each_all *a = aredis__calloc(1, sizeof *a + np * sizeof(aredis_reply *));
    if (!a) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    a->cl = cl;
    a->cb = cb;
    a->data = data;
    a->n = np;
    a->left = 1; /* held until every node is asked */
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
            a->left++;
            e = aredis__batch_submit(prim[i], &s, NULL);
            if (e != AREDIS_ERR_OK) {
                a->left--;
                aredis__free(one);
            }
        }
        if (e != AREDIS_ERR_OK && a->code == AREDIS_ERR_OK) {
            a->code = e;
            snprintf(a->detail, sizeof a->detail, "%s", aredis_call_error()->detail);
        }
    }
    if (a->left == 1 && a->code != AREDIS_ERR_OK) { /* nothing went: refused now */
        aredis_err code = a->code;
        char why[256];
        snprintf(why, sizeof why, "%s", a->detail);
        aredis__free(a);
        return aredis__call_fail(code, "%s", why);
    }
    /* What went will answer (never inside this call): drop the hold. */
    a->left--;
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
