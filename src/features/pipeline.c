/*
 * Explicit pipelines (aredis/pipeline.h): a command list sent as one batch,
 * its replies gathered into one ARRAY.
 */
#include "aredis/pipeline.h"

#include <string.h>

#include "features/cmdlist.h"
#include "features/pipeline_internal.h"
#include "util/alloc.h"
#include "util/error.h"

struct aredis_pipeline {
    aredis__cmdlist list;
};

/* One exec under way: owned by its batch until `done` runs. */
typedef struct exec_ctx {
    aredis_reply_fn *cb;
    void *data;
    aredis_reply *results;
    unsigned *strip;       /* NULL when no reply needs it */
    unsigned char *hidden; /* NULL when every reply is the caller's */
} exec_ctx;

aredis_pipeline *aredis_pipeline_new(aredis_client *c) {
    if (!c) {
        aredis__call_fail(AREDIS_ERR_INVALID, "client is NULL");
        return NULL;
    }
    aredis_pipeline *p = aredis__malloc(sizeof *p);
    if (!p) return NULL;
    aredis__cmdlist_init(&p->list, c);
    return p;
}

void aredis_pipeline_free(aredis_pipeline *p) {
    if (!p) return;
    aredis__cmdlist_free(&p->list);
    aredis__free(p);
}

aredis__cmdlist *aredis__pipeline_list(aredis_pipeline *p) { return &p->list; }

aredis_err aredis_pipeline_vcommand(aredis_pipeline *p, const char *fmt, va_list ap) {
    if (!fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL");
    va_list cp;
    va_copy(cp, ap);
    aredis_err e = aredis__cmdlist_add(&p->list, 0, NULL, NULL, fmt, &cp, 0);
    va_end(cp);
    return e;
}

aredis_err aredis_pipeline_command(aredis_pipeline *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis_pipeline_vcommand(p, fmt, ap);
    va_end(ap);
    return e;
}

aredis_err aredis_pipeline_argv(aredis_pipeline *p, int argc, const char *const *argv,
                                const size_t *argvlen) {
    return aredis__cmdlist_add(&p->list, argc, argv, argvlen, NULL, NULL, 0);
}

size_t aredis_pipeline_size(const aredis_pipeline *p) { return p->list.visible; }

void aredis_pipeline_clear(aredis_pipeline *p) { aredis__cmdlist_reset(&p->list); }

/* ---- Exec ---------------------------------------------------------------- */

static void on_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    exec_ctx *x = data;
    if (x->hidden && x->hidden[i]) return;
    if (x->strip && x->strip[i]) aredis__strip_reply(c, r, x->strip[i]);
    aredis__reply_array_add(x->results, r);
}

static void on_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    exec_ctx *x = data;
    if (x->cb) x->cb(c, x->results, err, x->data);
    aredis_reply_release(x->results);
    aredis__free(x);
}

/*
 * A context for an exec of l: the results array and, only when some command
 * needs them, copies of the strip and hidden marks (the list is reused).
 */
static exec_ctx *ctx_new(const aredis__cmdlist *l) {
    int any_strip = 0;
    for (size_t i = 0; i < l->n && !any_strip; i++)
        any_strip = l->strip[i] != 0;
    int any_hidden = l->visible != l->n;
    size_t size = sizeof(exec_ctx);
    if (any_strip) size += l->n * sizeof(unsigned);
    if (any_hidden) size += l->n;
    exec_ctx *x = aredis__malloc(size);
    if (!x) return NULL;
    memset(x, 0, sizeof *x);
    x->results = aredis__reply_array_new(l->visible);
    if (!x->results) {
        aredis__free(x);
        return NULL;
    }
    char *extra = (char *)(x + 1);
    if (any_strip) {
        x->strip = (unsigned *)(void *)extra;
        memcpy(x->strip, l->strip, l->n * sizeof(unsigned));
        extra += l->n * sizeof(unsigned);
    }
    if (any_hidden) {
        x->hidden = (unsigned char *)extra;
        memcpy(x->hidden, l->hidden, l->n);
    }
    return x;
}

aredis_err aredis__pipeline_submit(aredis_pipeline *p, const aredis_cmd_opts *opts,
                                   aredis_reply_fn *cb, void *data, aredis__cmd **out) {
    aredis__cmdlist *l = &p->list;
    if (!l->n) return aredis__call_fail(AREDIS_ERR_INVALID, "the pipeline is empty");
    exec_ctx *x = ctx_new(l);
    if (!x) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    x->cb = cb;
    x->data = data;
    aredis__batch_spec s;
    aredis__cmdlist_spec(l, &s);
    s.part = on_part;
    s.done = on_done;
    s.data = x;
    s.opts = opts;
    aredis_err e = aredis__batch_submit(l->client, &s, out);
    if (e != AREDIS_ERR_OK) {
        aredis_reply_release(x->results);
        aredis__free(x);
        return e;
    }
    aredis__cmdlist_reset(l);
    return AREDIS_ERR_OK;
}

aredis_err aredis_pipeline_exec_ex(aredis_pipeline *p, const aredis_cmd_opts *opts,
                                   aredis_reply_fn *cb, void *data) {
    return aredis__pipeline_submit(p, opts, cb, data, NULL);
}

aredis_err aredis_pipeline_exec(aredis_pipeline *p, aredis_reply_fn *cb, void *data) {
    return aredis__pipeline_submit(p, NULL, cb, data, NULL);
}

aredis_future *aredis_pipeline_exec_future_ex(aredis_pipeline *p, const aredis_cmd_opts *opts) {
    aredis_future *f = aredis__future_pending(p->list.client);
    if (!f) return NULL;
    aredis__cmd *cmd = NULL;
    aredis_err e = aredis__pipeline_submit(p, opts, aredis__future_done, f, &cmd);
    if (e != AREDIS_ERR_OK) return aredis__future_refused(f, e);
    aredis__future_attach(f, cmd);
    return f;
}

aredis_future *aredis_pipeline_exec_future(aredis_pipeline *p) {
    return aredis_pipeline_exec_future_ex(p, NULL);
}
