/*
 * Queued commands of a pipeline or transaction (features/cmdlist.h).
 */
#include "features/cmdlist.h"

#include <string.h>

#include "util/alloc.h"
#include "util/error.h"

void aredis__cmdlist_init(aredis__cmdlist *l, aredis_client *c) {
    memset(l, 0, sizeof *l);
    l->client = c;
}

static int grow(aredis__cmdlist *l) {
    if (l->n < l->cap) return 0;
    size_t cap = l->cap ? l->cap * 2 : 16;
    size_t *e = aredis__reallocarray(l->ends, cap, sizeof *e);
    if (!e) return -1;
    l->ends = e;
    unsigned *s = aredis__reallocarray(l->strip, cap, sizeof *s);
    if (!s) return -1;
    l->strip = s;
    unsigned char *h = aredis__reallocarray(l->hidden, cap, 1);
    if (!h) return -1;
    l->hidden = h;
    l->cap = cap;
    return 0;
}

aredis_err aredis__cmdlist_add(aredis__cmdlist *l, int argc, const char *const *argv,
                               const size_t *argvlen, const char *fmt, va_list *ap, int hidden) {
    if (grow(l) != 0) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    size_t before = l->buf.len;
    unsigned strip = 0;
    aredis_err e = aredis__encode(l->client, &l->buf, argc, argv, argvlen, fmt, ap, &strip);
    if (e != AREDIS_ERR_OK) {
        l->buf.len = before;
        return e;
    }
    uint64_t block_ms = l->block_ms;
    int forever = l->block_forever, sensitive = l->sensitive, session = l->session;
    e = aredis__batch_check(l->buf.data + before, l->buf.len - before, &block_ms, &forever,
                            &sensitive, &session);
    if (e != AREDIS_ERR_OK) {
        l->buf.len = before;
        return e;
    }
    l->block_ms = block_ms;
    l->block_forever = forever;
    l->sensitive = sensitive;
    l->session = session;
    l->ends[l->n] = l->buf.len;
    l->strip[l->n] = strip;
    l->hidden[l->n] = (unsigned char)(hidden != 0);
    if (!hidden) l->visible++;
    l->n++;
    return AREDIS_ERR_OK;
}

void aredis__cmdlist_reset(aredis__cmdlist *l) {
    l->buf.len = l->buf.off = 0;
    l->n = l->visible = 0;
    l->block_ms = 0;
    l->block_forever = l->sensitive = l->session = 0;
}

void aredis__cmdlist_free(aredis__cmdlist *l) {
    aredis__buf_free(&l->buf);
    aredis__free(l->ends);
    aredis__free(l->strip);
    aredis__free(l->hidden);
    memset(l, 0, sizeof *l);
}

void aredis__cmdlist_spec(const aredis__cmdlist *l, aredis__batch_spec *s) {
    memset(s, 0, sizeof *s);
    s->bytes = l->buf.data;
    s->len = l->buf.len;
    s->n = l->n;
    s->ends = l->ends;
    s->block_ms = l->block_ms;
    s->block_forever = l->block_forever;
    s->sensitive = l->sensitive;
    s->session = l->session;
}

/* ---- One command as a batch of one ---------------------------------------- */

aredis_err aredis__send_one(aredis_client *c, const aredis__one *o, int argc,
                            const char *const *argv, const size_t *argvlen, const char *fmt,
                            va_list *ap, aredis__cmd **out) {
    aredis__buf b = {0};
    aredis_err e = aredis__encode(c, &b, argc, argv, argvlen, fmt, ap, NULL);
    aredis__batch_spec s;
    memset(&s, 0, sizeof s);
    if (e == AREDIS_ERR_OK && o->check)
        e = aredis__batch_check(b.data, b.len, &s.block_ms, &s.block_forever, &s.sensitive,
                                &s.session);
    if (e == AREDIS_ERR_OK) {
        size_t end = b.len;
        s.bytes = b.data;
        s.len = b.len;
        s.n = 1;
        s.ends = &end;
        s.part = o->part;
        s.done = o->done;
        s.data = o->data;
        s.owner = o->owner;
        s.flags = o->flags;
        e = aredis__batch_submit(c, &s, out);
    }
    aredis__buf_free(&b);
    return e;
}

void aredis__relay_part(aredis_client *c, aredis_reply *r, size_t index, void *data) {
    (void)c;
    (void)index;
    aredis__relay *x = data;
    aredis_reply_release(x->r);
    x->r = aredis_reply_retain(r);
}

void aredis__relay_finish(aredis_client *c, aredis__relay *x, const aredis_error *err) {
    aredis__deliver(c, x->cb, x->data, err ? NULL : x->r, err);
    aredis_reply_release(x->r);
    x->r = NULL;
}
