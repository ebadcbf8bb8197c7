/*
 * src/proto/reply.c — the default reply builder (aredis_reply trees), and
 * freeing, reference counting and type names for aredis_reply.
 *
 * Two ways to build with the default builder:
 *
 * - A reader given the default builder (NULL) builds the trees itself, in one
 *   arena per top-level reply (src/proto/reader.c): priv_alloc is not
 *   REPLY_OWN, and aredis__reply_arena_free() frees the whole chain at once
 *   when the top-level reply is freed.
 *
 * - The builder table below serves everyone else: a builder that copies or
 *   wraps the default one calls these functions one object at a time. Layout:
 *   one allocation per object (priv_alloc REPLY_OWN, i.e. 0). A
 *   string-carrying reply keeps its bytes right after the struct
 *   (str == (char *)(reply + 1)), so a leaf costs one malloc and one free. An
 *   aggregate has a separate element array that grows as its children arrive
 *   (doubling, capped at the claimed count): a peer that claims four billion
 *   elements and sends none costs one struct.
 *
 * Freeing such a tree is iterative: a work list is threaded through the
 * `attribute` field of the nodes waiting to be freed, so a tree of any depth
 * is freed in constant C stack and without allocating.
 */
#include "proto/reply_internal.h"
#include "aredis/reply.h"

#include <limits.h>
#include <string.h>

#include "aredis/reader.h"
#include "util/alloc.h"

/*
 * First element array size: aggregates up to this size (most of them) get an
 * exact array in one allocation; a claim alone still costs nothing.
 */
#define REPLY_ELEMENTS_MIN 16

/* Frees a reply the reader built in an arena (defined in reader.c). */

/* ---- Allocation --------------------------------------------------------- */

/* A zeroed reply with `extra` bytes after it; refcount one. */
static aredis_reply *reply_new(aredis_reply_type type, size_t extra) {
    size_t n;
    if (aredis__add_overflow(sizeof(aredis_reply), extra, &n)) return NULL;
    aredis_reply *r = aredis__malloc(n);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->type = type;
    r->priv_refs = 1;
    return r;
}

/*
 * Store `child` at t->idx of t->parent, if any. Elements arrive in order, so
 * the array holds `elements` filled slots and its capacity follows from that
 * count: 0, then min(claimed, 16), then doubling at each power of two, capped
 * at the claimed count (kept in `integer` while the aggregate fills). Grown
 * before the child is made, so a failure here strands nothing.
 */
static int reply_make_room(const aredis_reader_task *t) {
    if (!t->parent) return 0;
    aredis_reply *p = t->parent;
    size_t idx = t->idx;
    if (idx != 0 && (idx < REPLY_ELEMENTS_MIN || (idx & (idx - 1)) != 0)) return 0;
    size_t claimed = (size_t)p->integer;
    size_t want = idx == 0 ? REPLY_ELEMENTS_MIN : idx * 2;
    if (want > claimed) want = claimed;
    if (want <= idx) return -1; /* only a mis-driven builder gets here */
    aredis_reply **e = aredis__reallocarray(p->element, want, sizeof *e);
    if (!e) return -1;
    p->element = e;
    return 0;
}

static void *reply_attach(const aredis_reader_task *t, aredis_reply *child) {
    if (t->parent) {
        aredis_reply *p = t->parent;
        p->element[t->idx] = child;
        p->elements = t->idx + 1;
    }
    return child;
}

/* ---- The default builder ------------------------------------------------ */

static void *build_string(const aredis_reader_task *t, const char *s, size_t len) {
    const char *payload = s;
    size_t plen = len;
    if (t->type == AREDIS_REPLY_VERB) {
        /* The reader guarantees len >= 4 and s[3] == ':'. */
        payload = s + 4;
        plen = len - 4;
    }
    if (reply_make_room(t) < 0) return NULL;
    size_t extra;
    if (aredis__add_overflow(plen, 1, &extra)) return NULL;
    aredis_reply *r = reply_new(t->type, extra);
    if (!r) return NULL;
    r->str = (char *)(r + 1);
    r->len = plen;
    if (plen) memcpy(r->str, payload, plen);
    r->str[plen] = '\0';
    if (t->type == AREDIS_REPLY_VERB) {
        memcpy(r->vtype, s, 3);
        r->vtype[3] = '\0';
    }
    return reply_attach(t, r);
}

static void *build_aggregate(const aredis_reader_task *t, size_t claimed) {
    if (reply_make_room(t) < 0) return NULL;
    aredis_reply *r = reply_new(t->type, 0);
    if (!r) return NULL;
    /* The claimed count bounds the element array; equals `elements` once full. */
    r->integer = claimed > (size_t)LLONG_MAX ? LLONG_MAX : (long long)claimed;
    return reply_attach(t, r);
}

static void *build_integer(const aredis_reader_task *t, long long v) {
    if (reply_make_room(t) < 0) return NULL;
    aredis_reply *r = reply_new(AREDIS_REPLY_INTEGER, 0);
    if (!r) return NULL;
    r->integer = v;
    return reply_attach(t, r);
}

static void *build_double(const aredis_reader_task *t, double v, const char *s, size_t len) {
    if (reply_make_room(t) < 0) return NULL;
    size_t extra;
    if (aredis__add_overflow(len, 1, &extra)) return NULL;
    aredis_reply *r = reply_new(AREDIS_REPLY_DOUBLE, extra);
    if (!r) return NULL;
    r->dval = v;
    r->str = (char *)(r + 1);
    r->len = len;
    if (len) memcpy(r->str, s, len);
    r->str[len] = '\0';
    return reply_attach(t, r);
}

static void *build_nil(const aredis_reader_task *t) {
    if (reply_make_room(t) < 0) return NULL;
    aredis_reply *r = reply_new(AREDIS_REPLY_NIL, 0);
    return r ? reply_attach(t, r) : NULL;
}

static void *build_bool(const aredis_reader_task *t, int v) {
    if (reply_make_room(t) < 0) return NULL;
    aredis_reply *r = reply_new(AREDIS_REPLY_BOOL, 0);
    if (!r) return NULL;
    r->integer = v != 0;
    return reply_attach(t, r);
}

static void build_set_attribute(void *obj, void *attr) {
    aredis_reply *r = obj;
    /* The reader hands one attribute per value; be safe if given another. */
    aredis_reply_free(r->attribute);
    r->attribute = attr;
}

static void build_free(void *obj) { aredis_reply_free(obj); }

static const aredis_reply_builder default_builder = {
    build_string, build_aggregate, build_integer,       build_double,
    build_nil,    build_bool,      build_set_attribute, build_free,
};

const aredis_reply_builder *aredis_reply_builder_default(void) { return &default_builder; }

/* ---- Freeing ------------------------------------------------------------ */

/*
 * Put `n` and the chain of attributes hanging from it on the work list, which
 * is linked through `attribute` (each node's own attribute is pushed too, so
 * the overwritten link loses nothing).
 */
static void push_work(aredis_reply **todo, aredis_reply *n) {
    while (n) {
        aredis_reply *next = n->attribute;
        n->attribute = *todo;
        *todo = n;
        n = next;
    }
}

/* A tree of individually allocated replies (the builder table's). */
static void reply_free_tree(aredis_reply *r) {
    aredis_reply *todo = NULL;
    push_work(&todo, r);
    while (todo) {
        aredis_reply *n = todo;
        todo = n->attribute;
        for (size_t i = 0; i < n->elements; i++) {
            aredis_reply *c = n->element[i];
            /* Leaves without attributes, the common case, go at once. */
            if (c && !c->element && !c->attribute)
                aredis__free(c);
            else
                push_work(&todo, c);
        }
        aredis__free(n->element); /* the string, if any, is inside n */
        aredis__free(n);
    }
}

/* ---- Arrays of whole replies (client/feature.h) ------------------------- */

aredis_reply *aredis__reply_array_new(size_t n) {
    size_t extra;
    if (aredis__mul_overflow(n, sizeof(aredis_reply *), &extra)) return NULL;
    aredis_reply *a = reply_new(AREDIS_REPLY_ARRAY, extra);
    if (!a) return NULL;
    a->priv_alloc = REPLY_COMPOSITE;
    a->element = (aredis_reply **)(void *)(a + 1);
    return a;
}

void aredis__reply_array_add(aredis_reply *a, aredis_reply *elem) {
    a->element[a->elements++] = aredis_reply_retain(elem);
    a->integer = (long long)a->elements;
}

static void composite_free(aredis_reply *a) {
    for (size_t i = 0; i < a->elements; i++)
        aredis_reply_release(a->element[i]);
    aredis__free(a);
}

void aredis_reply_free(aredis_reply *r) {
    if (!r) return;
    if (r->priv_alloc == REPLY_COMPOSITE)
        composite_free(r);
    else if (r->priv_alloc) /* built by the reader: its arena goes at once */
        aredis__reply_arena_free(r);
    else if (!r->element && !r->attribute) /* a leaf */
        aredis__free(r);
    else
        reply_free_tree(r);
}

aredis_reply *aredis_reply_retain(aredis_reply *r) {
    if (r && r->priv_alloc != REPLY_STATIC) r->priv_refs++;
    return r;
}

void aredis_reply_release(aredis_reply *r) {
    if (!r || r->priv_alloc == REPLY_STATIC) return;
    if (r->priv_refs > 1) {
        r->priv_refs--;
        return;
    }
    aredis_reply_free(r);
}

/* ---- Names -------------------------------------------------------------- */

const char *aredis_reply_type_name(aredis_reply_type t) {
    switch (t) {
    case AREDIS_REPLY_STRING:
        return "string";
    case AREDIS_REPLY_ARRAY:
        return "array";
    case AREDIS_REPLY_INTEGER:
        return "integer";
    case AREDIS_REPLY_NIL:
        return "nil";
    case AREDIS_REPLY_STATUS:
        return "status";
    case AREDIS_REPLY_ERROR:
        return "error";
    case AREDIS_REPLY_DOUBLE:
        return "double";
    case AREDIS_REPLY_BOOL:
        return "bool";
    case AREDIS_REPLY_MAP:
        return "map";
    case AREDIS_REPLY_SET:
        return "set";
    case AREDIS_REPLY_ATTR:
        return "attribute";
    case AREDIS_REPLY_PUSH:
        return "push";
    case AREDIS_REPLY_BIGNUM:
        return "bignum";
    case AREDIS_REPLY_VERB:
        return "verbatim";
    }
    return "unknown";
}
