/*
 * libFuzzer target for the RESP reader (scripts/fuzz.sh; replayed by the test
 * suite through fuzz/replay.c, CTest entry unit/fuzz_replay).
 *
 * Input: one control byte, then the RESP stream.
 *   bits 0-5  chunk size - 1 (1..64): the stream is fed in pieces this big
 *   bit 6     small limits (bulk 64, elements 16, depth 8) instead of defaults
 *   bit 7     feed through aredis_reader_space()/commit() instead of feed()
 *
 * Every input is parsed five times, by both kinds of reply builder:
 *
 *   1. the default builder (the reader's inline fast path), in one feed: the
 *      reference;
 *   2. the default builder, in chunks, taking replies after every chunk: the
 *      same replies and the same error (a differential check of the
 *      incremental parser);
 *   3. a custom builder (aredis_reader_new(&custom, ctx): trees of its own
 *      tiny struct), in the same chunks: the same replies, object by object,
 *      and the same error — the builder-table path against the fast path;
 *   4. the custom builder without set_attribute, in one feed: the same with
 *      every attribute dropped;
 *   5. the custom builder refusing its k-th object (k picked from the input):
 *      AREDIS_ERR_NOMEM, sticky, and the replies before it a prefix of 1's;
 *   6. a copy of the default builder's table (a copy is not the default: it
 *      goes through the table, one object at a time, src/proto/reply.c), in
 *      one feed: the same aredis_reply trees as 1.
 *
 * Every reply is checked for the invariants the headers promise, then freed.
 * The custom builder checks the builder contract of aredis/reader.h on every
 * call (privdata, parent, in-order idx below the claimed count, types) and
 * counts its objects: all must be freed by the end of each run, a leak check
 * that needs no LeakSanitizer. ASan/UBSan and LeakSanitizer catch the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/reader.h"
#include "aredis/reply.h"

#define MAX_REPLIES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- The custom builder ------------------------------------------------- */

typedef struct tctx {
    long live;    /* objects made and not yet freed */
    long made;    /* create_* calls so far */
    long fail_at; /* refuse the fail_at-th create (1-based); 0: never */
} tctx;

typedef struct tobj {
    tctx *ctx; /* free_object gets no privdata: each object knows its own */
    aredis_reply_type type;
    long long i;            /* INTEGER, BOOL */
    double d;               /* DOUBLE */
    size_t claimed, n, cap; /* aggregates: claimed count, elements stored, room */
    struct tobj **el;
    struct tobj *attr;
    size_t len; /* string types and DOUBLE: s[0..len), NUL-terminated */
    char s[];
} tobj;

static int is_aggregate(aredis_reply_type t) {
    return t == AREDIS_REPLY_ARRAY || t == AREDIS_REPLY_MAP || t == AREDIS_REPLY_SET ||
           t == AREDIS_REPLY_ATTR || t == AREDIS_REPLY_PUSH;
}

/* Make an object with `extra` bytes of text (plus a NUL) and store it in the
 * task's parent, checking what the reader promises about that parent. */
static tobj *t_new(const aredis_reader_task *t, aredis_reply_type type, size_t extra) {
    tctx *c = t->privdata;
    if (!c || t->type != type) abort();
    c->made++;
    if (c->fail_at && c->made == c->fail_at) return NULL;
    tobj *p = t->parent;
    if (type == AREDIS_REPLY_ATTR && p) abort(); /* attributes are built detached */
    if (p) {
        /* Elements arrive in order, each below the claimed count. */
        if (p->type != t->parent_type || !is_aggregate(p->type) || t->idx != p->n ||
            t->idx >= p->claimed)
            abort();
        if (p->n == p->cap) {
            /* Grown as elements arrive, never from the (untrusted) claim. */
            size_t cap = p->cap ? p->cap * 2 : 4;
            tobj **e = realloc(p->el, cap * sizeof *e);
            if (!e) return NULL;
            p->el = e;
            p->cap = cap;
        }
    }
    if (extra > SIZE_MAX - sizeof(tobj) - 1) return NULL;
    tobj *o = calloc(1, sizeof *o + extra + 1);
    if (!o) return NULL;
    o->ctx = c;
    o->type = type;
    c->live++;
    if (p) p->el[p->n++] = o;
    return o;
}

static void *t_string(const aredis_reader_task *t, const char *s, size_t len) {
    aredis_reply_type ty = t->type;
    if (ty != AREDIS_REPLY_STRING && ty != AREDIS_REPLY_STATUS && ty != AREDIS_REPLY_ERROR &&
        ty != AREDIS_REPLY_BIGNUM && ty != AREDIS_REPLY_VERB)
        abort();
    if (ty == AREDIS_REPLY_VERB && (len < 4 || s[3] != ':')) abort();
    tobj *o = t_new(t, ty, len);
    if (!o) return NULL;
    if (len) memcpy(o->s, s, len);
    o->len = len;
    return o;
}

static void *t_aggregate(const aredis_reader_task *t, size_t claimed) {
    if (!is_aggregate(t->type)) abort();
    if ((t->type == AREDIS_REPLY_MAP || t->type == AREDIS_REPLY_ATTR) && claimed % 2) abort();
    tobj *o = t_new(t, t->type, 0);
    if (o) o->claimed = claimed; /* nothing allocated for it: grown as they come */
    return o;
}

static void *t_integer(const aredis_reader_task *t, long long v) {
    tobj *o = t_new(t, AREDIS_REPLY_INTEGER, 0);
    if (o) o->i = v;
    return o;
}

static void *t_double(const aredis_reader_task *t, double v, const char *s, size_t len) {
    tobj *o = t_new(t, AREDIS_REPLY_DOUBLE, len);
    if (!o) return NULL;
    o->d = v;
    if (len) memcpy(o->s, s, len);
    o->len = len;
    return o;
}

static void *t_nil(const aredis_reader_task *t) { return t_new(t, AREDIS_REPLY_NIL, 0); }

static void *t_bool(const aredis_reader_task *t, int v) {
    if (v != 0 && v != 1) abort();
    tobj *o = t_new(t, AREDIS_REPLY_BOOL, 0);
    if (o) o->i = v;
    return o;
}

/* A complete attribute, handed to the value just made (before its elements),
 * one per value: the reader frees the earlier of two in a row itself. */
static void t_set_attribute(void *obj, void *attr) {
    tobj *o = obj, *a = attr;
    if (!o || !a || a->type != AREDIS_REPLY_ATTR || a->n != a->claimed || o->attr || o->n) abort();
    o->attr = a;
}

/* Frees a tree, however partly filled (elements 0 .. n-1). Depth is bounded
 * by max_depth (at most 128 here), so recursion is safe. */
static void t_free(void *obj) {
    tobj *o = obj;
    if (!o) abort(); /* the reader never frees NULL */
    for (size_t i = 0; i < o->n; i++)
        t_free(o->el[i]);
    if (o->attr) t_free(o->attr);
    o->ctx->live--;
    free(o->el);
    free(o);
}

static const aredis_reply_builder custom = {
    t_string, t_aggregate, t_integer, t_double, t_nil, t_bool, t_set_attribute, t_free,
};
static const aredis_reply_builder custom_no_attr = {
    t_string, t_aggregate, t_integer, t_double, t_nil, t_bool, NULL, t_free,
};

/* A custom object against the default builder's reply for the same bytes. */
static int same_custom(const tobj *o, const aredis_reply *r, int attrs) {
    if (!o || !r) return !o && !r;
    if (o->type != r->type) return 0;
    if (attrs ? !same_custom(o->attr, r->attribute, 1) : o->attr != NULL) return 0;
    switch (o->type) {
    case AREDIS_REPLY_VERB:
        /* The builder gets the whole payload; the reply splits off "xxx:". */
        return o->len == r->len + 4 && memcmp(o->s, r->vtype, 3) == 0 && o->s[3] == ':' &&
               memcmp(o->s + 4, r->str, r->len) == 0;
    case AREDIS_REPLY_DOUBLE:
        if (memcmp(&o->d, &r->dval, sizeof o->d) != 0) return 0;
        /* fallthrough */
    case AREDIS_REPLY_STRING:
    case AREDIS_REPLY_STATUS:
    case AREDIS_REPLY_ERROR:
    case AREDIS_REPLY_BIGNUM:
        return o->len == r->len && memcmp(o->s, r->str, r->len) == 0;
    case AREDIS_REPLY_INTEGER:
    case AREDIS_REPLY_BOOL:
        return o->i == r->integer;
    case AREDIS_REPLY_NIL:
        return 1;
    default:
        if (o->n != o->claimed || o->n != r->elements || (long long)o->n != r->integer) return 0;
        for (size_t i = 0; i < o->n; i++)
            if (!same_custom(o->el[i], r->element[i], attrs)) return 0;
        return 1;
    }
}

/* ---- Default replies ------------------------------------------------------ */

/* Depth is bounded by max_depth (at most 128 here), so recursion is safe. */
static void check_reply(const aredis_reply *r) {
    if (!r) abort();
    if (r->attribute) {
        if (r->attribute->type != AREDIS_REPLY_ATTR) abort();
        check_reply(r->attribute);
    }
    switch (r->type) {
    case AREDIS_REPLY_STRING:
    case AREDIS_REPLY_STATUS:
    case AREDIS_REPLY_ERROR:
    case AREDIS_REPLY_BIGNUM:
    case AREDIS_REPLY_VERB:
    case AREDIS_REPLY_DOUBLE:
        if (!r->str || r->str[r->len] != '\0') abort();
        break;
    case AREDIS_REPLY_ARRAY:
    case AREDIS_REPLY_SET:
    case AREDIS_REPLY_PUSH:
    case AREDIS_REPLY_MAP:
    case AREDIS_REPLY_ATTR:
        if ((r->type == AREDIS_REPLY_MAP || r->type == AREDIS_REPLY_ATTR) && r->elements % 2)
            abort();
        for (size_t i = 0; i < r->elements; i++)
            check_reply(r->element[i]);
        break;
    case AREDIS_REPLY_BOOL:
        if (r->integer != 0 && r->integer != 1) abort();
        break;
    case AREDIS_REPLY_INTEGER:
    case AREDIS_REPLY_NIL:
        break;
    default:
        abort();
    }
}

static int same_reply(const aredis_reply *a, const aredis_reply *b) {
    if (!a || !b) return a == b;
    if (a->type != b->type || a->len != b->len || a->elements != b->elements ||
        a->integer != b->integer || memcmp(a->vtype, b->vtype, sizeof a->vtype) != 0 ||
        memcmp(&a->dval, &b->dval, sizeof a->dval) != 0)
        return 0;
    if ((a->str == NULL) != (b->str == NULL)) return 0;
    if (a->str && memcmp(a->str, b->str, a->len) != 0) return 0;
    if (!same_reply(a->attribute, b->attribute)) return 0;
    for (size_t i = 0; i < a->elements; i++)
        if (!same_reply(a->element[i], b->element[i])) return 0;
    return 1;
}

/* ---- Runs ----------------------------------------------------------------- */

typedef struct run {
    const aredis_reply_builder *b; /* NULL: the default builder */
    void *rep[MAX_REPLIES];
    size_t n;
    aredis_err err;
    char errstr[128];
} run;

static void reply_drop(const run *x, void *rep) {
    if (x->b)
        x->b->free_object(rep);
    else
        aredis_reply_free(rep);
}

/* Take every reply available now. Returns 0 once the reader failed. */
static int drain(aredis_reader *r, run *out) {
    void *rep;
    aredis_err e;
    while ((e = aredis_reader_get_reply(r, &rep)) == AREDIS_ERR_OK && rep) {
        if (!out->b) check_reply(rep);
        if (out->n == MAX_REPLIES) {
            reply_drop(out, rep); /* still parsed and checked, just not compared */
            continue;
        }
        out->rep[out->n++] = rep;
    }
    if (e == AREDIS_ERR_OK) return 1;
    if (rep) abort();
    out->err = e;
    strncpy(out->errstr, aredis_reader_errstr(r), sizeof out->errstr - 1);
    if (!out->errstr[0]) abort();
    /* Sticky, for taking replies and for feeding. */
    if (aredis_reader_get_reply(r, &rep) != e || rep) abort();
    if (aredis_reader_feed(r, "+OK\r\n", 5) != e) abort();
    return 0;
}

static void parse(const char *s, size_t n, size_t chunk, int small, int zero_copy,
                  const aredis_reply_builder *b, tctx *ctx, run *out) {
    memset(out, 0, sizeof *out);
    out->b = b;
    aredis_reader *r = aredis_reader_new(b, ctx);
    if (!r) return;
    if (small) {
        aredis_reader_limits l = {64, 16, 8};
        aredis_reader_set_limits(r, &l);
    }
    for (size_t off = 0; off < n;) {
        size_t k = n - off < chunk ? n - off : chunk;
        if (zero_copy) {
            size_t avail;
            char *p = aredis_reader_space(r, k, &avail);
            if (!p || avail < k) abort();
            memcpy(p, s + off, k);
            aredis_reader_commit(r, k);
        } else if (aredis_reader_feed(r, s + off, k) != AREDIS_ERR_OK) {
            abort(); /* no allocation failure here, and we stop at the first error */
        }
        off += k;
        if (!drain(r, out)) break;
    }
    aredis_reader_free(r); /* and any partial reply with it */
}

static void run_free(run *x) {
    for (size_t i = 0; i < x->n; i++)
        reply_drop(x, x->rep[i]);
    x->n = 0;
}

/* A custom run against the reference: replies 0 .. got->n - 1 match. */
static void check_custom(const run *got, const run *ref, int attrs) {
    if (got->n > ref->n) abort();
    for (size_t i = 0; i < got->n; i++)
        if (!same_custom(got->rep[i], ref->rep[i], attrs)) abort();
}

/* After a custom run is freed: every object it made is gone. */
static void check_no_leak(tctx *c) {
    if (c->live != 0) abort();
}

static uint32_t input_hash(const uint8_t *d, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned ctl = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    size_t chunk = (ctl & 0x3f) + 1;
    int small = (ctl >> 6) & 1, zero_copy = (ctl >> 7) & 1;
    static run whole, pieces, cust; /* big: off the stack */
    tctx c;

    /* 1, 2: the default builder, whole and in pieces. */
    parse(s, n, n ? n : 1, small, 0, NULL, NULL, &whole);
    parse(s, n, chunk, small, zero_copy, NULL, NULL, &pieces);
    if (whole.n != pieces.n || whole.err != pieces.err || strcmp(whole.errstr, pieces.errstr) != 0)
        abort();
    for (size_t i = 0; i < whole.n; i++)
        if (!same_reply(whole.rep[i], pieces.rep[i])) abort();
    run_free(&pieces);

    /* 3: the custom builder, in the same pieces: exactly the same. */
    memset(&c, 0, sizeof c);
    parse(s, n, chunk, small, zero_copy, &custom, &c, &cust);
    if (cust.n != whole.n || cust.err != whole.err || strcmp(cust.errstr, whole.errstr) != 0)
        abort();
    check_custom(&cust, &whole, 1);
    run_free(&cust);
    check_no_leak(&c);
    long made = c.made;

    /* 4: the custom builder without set_attribute, whole: attributes dropped. */
    memset(&c, 0, sizeof c);
    parse(s, n, n ? n : 1, small, 0, &custom_no_attr, &c, &cust);
    if (cust.n != whole.n || cust.err != whole.err || strcmp(cust.errstr, whole.errstr) != 0)
        abort();
    check_custom(&cust, &whole, 0);
    run_free(&cust);
    check_no_leak(&c);

    /* 5: the custom builder, in pieces, refusing one of the objects run 3
     * made: out of memory there, whatever came after, nothing stranded. */
    if (made > 0) {
        memset(&c, 0, sizeof c);
        c.fail_at = 1 + (long)(input_hash(data, size) % (unsigned long)made);
        parse(s, n, chunk, small, zero_copy, &custom, &c, &cust);
        if (cust.err != AREDIS_ERR_NOMEM || c.made != c.fail_at) abort();
        check_custom(&cust, &whole, 1);
        run_free(&cust);
        check_no_leak(&c);
    }

    /* 6: the default builder's functions, through the table. */
    static aredis_reply_builder copied;
    copied = *aredis_reply_builder_default();
    parse(s, n, n ? n : 1, small, 0, &copied, NULL, &cust);
    if (cust.n != whole.n || cust.err != whole.err || strcmp(cust.errstr, whole.errstr) != 0)
        abort();
    for (size_t i = 0; i < whole.n; i++) {
        check_reply(cust.rep[i]);
        if (!same_reply(whole.rep[i], cust.rep[i])) abort();
    }
    run_free(&cust);

    run_free(&whole);
    return 0;
}
