/*
 * Subscriptions (aredis/pubsub.h).
 *
 * Each client that carries subscriptions has one registry (ps_state,
 * attached to it through client/feature.h's pub/sub hooks): a hash of the
 * names subscribed on its connection — (kind, name) → the subscriptions
 * holding it — which is what messages are looked up in and what a reconnect
 * replays. A subscription on a dedicated connection (RESP2, or asked for)
 * lives in the registry of a hidden client the user's client owns (made on
 * first need, with the same options).
 *
 * The server is told: SUBSCRIBE for every call (confirming again what is
 * held is harmless), UNSUBSCRIBE only for names no other subscription of
 * the connection still holds. Each (UN)SUBSCRIBE goes out as a batch of its
 * n confirmations (AREDIS__BATCH_PUBSUB), so the dispatcher matches them to
 * this call and to nothing else.
 *
 * Handlers may free subscriptions and (un)subscribe while a message is
 * being dispatched: entries emptied meanwhile are unlinked at once but
 * freed only when the dispatch is over (`grave`), and a subscription freed
 * from its own handler is freed when the handler returns (`refs`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/pubsub.h"
#include "aredis/writer.h"
#include "client/feature.h"
#include "proto/slot.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "util/error.h"

#define NKINDS 3

typedef struct ps_entry {
    struct ps_entry *hnext;
    uint32_t hash;
    unsigned kind;
    size_t live;                /* non-NULL slots in subs */
    size_t n, cap;              /* slots used / allocated */
    aredis_subscription **subs; /* the subscriptions holding it (NULL: removed) */
    /* Confirmed by the server (or about to be: a subscribe written before
     * its confirmation could come): what a reconnect replays. A name whose
     * subscribe still waits to be written is not: its own call goes out, in
     * order, behind the replay. */
    int on_server;
    size_t len;
    char name[];
} ps_entry;

typedef struct ps_state {
    aredis_client *c;
    ps_entry **buckets;
    size_t nbuckets, count;
    size_t counts[NKINDS];
    aredis_subscription *subs; /* subscriptions whose names live here */
    unsigned inflight;         /* (un)subscribe batches not completed */
    unsigned inflight_sub;     /* of which subscribes (RESP2: subscribed mode ahead) */
    int need_replay;           /* a connection with names on it was lost */
    int dispatching;
    ps_entry *grave; /* emptied during a dispatch, freed after it */
    ps_entry *last;  /* the entry the last message was for */
    /* The user's client: its hidden connection for dedicated subscriptions
     * (with a registry of its own). */
    aredis_client *dedicated;
    int is_dedicated;
} ps_state;

struct aredis_subscription {
    aredis_client *c; /* the user's client (NULL once it is freed) */
    ps_state *st;     /* the registry of the connection it is on */
    aredis_subscription *next, *prev;
    aredis_sub_options o;
    void *data;
    size_t counts[NKINDS];
    unsigned refs; /* 1 for the user, 1 per call in flight and handler running */
    int freed;
    int overflowing;
    aredis_reply **ring; /* buffered messages for next() */
    size_t rcap, rhead, rn;
    aredis_future **nexts; /* pending next() futures, oldest first */
    size_t ncap, nhead, nn;
    aredis_sub_stats stats;
};

/* By [unsub][kind]: the command, and the kind its confirmations carry
 * (the batch keeps a pointer to the latter: static). */
static const char *const k_cmd[2][NKINDS] = {{"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"},
                                             {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}};
static const char *const k_confirm[2][NKINDS] = {{"subscribe", "psubscribe", "ssubscribe"},
                                                 {"unsubscribe", "punsubscribe", "sunsubscribe"}};

/* issue(): no deadline (the library's own: replays, reconciling commands;
 * a dead link is still found by dead_timeout_ms and health checks). */
#define AREDIS__BATCH_FOREVER 0x10000u

/* ---- The registry ------------------------------------------------------- */

static uint32_t hash_name(unsigned kind, const char *p, size_t n) {
    return (uint32_t)aredis__hash(kind, p, n);
}

static ps_entry *lookup(const ps_state *st, unsigned kind, const char *p, size_t n) {
    if (!st->nbuckets) return NULL;
    uint32_t h = hash_name(kind, p, n);
    for (ps_entry *e = st->buckets[h & (st->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->kind == kind && e->len == n && memcmp(e->name, p, n) == 0) return e;
    return NULL;
}

static int grow_table(ps_state *st) {
    if (st->count < st->nbuckets) return 0;
    size_t nb = st->nbuckets ? st->nbuckets * 2 : 16;
    ps_entry **b = aredis__calloc(nb, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < st->nbuckets; i++) {
        ps_entry *e = st->buckets[i];
        while (e) {
            ps_entry *next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    aredis__free(st->buckets);
    st->buckets = b;
    st->nbuckets = nb;
    return 0;
}

static void entry_free(ps_entry *e) {
    aredis__free(e->subs);
    aredis__free(e);
}

/* A dispatch is over: free the entries emptied during it (the outermost
 * one only: handlers may dispatch within it). */
static void dispatch_end(ps_state *st) {
    if (--st->dispatching) return;
    while (st->grave) {
        ps_entry *g = st->grave;
        st->grave = g->hnext;
        entry_free(g);
    }
}

static void unlink_entry(ps_state *st, ps_entry *e) {
    ps_entry **pp = &st->buckets[e->hash & (st->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (st->last == e) st->last = NULL;
    st->count--;
    st->counts[e->kind]--;
    if (st->dispatching) {
        e->hnext = st->grave;
        st->grave = e;
    } else {
        entry_free(e);
    }
}

/* Add s to (kind, name). Returns 1 when added, 0 when s held it already,
 * -1 when out of memory. */
static int hold(ps_state *st, aredis_subscription *s, unsigned kind, const char *p, size_t n) {
    ps_entry *e = lookup(st, kind, p, n);
    if (!e) {
        if (grow_table(st) != 0) return -1;
        e = aredis__calloc(1, sizeof *e + n + 1);
        if (!e) return -1;
        e->hash = hash_name(kind, p, n);
        e->kind = kind;
        e->len = n;
        memcpy(e->name, p, n);
        size_t slot = e->hash & (st->nbuckets - 1);
        e->hnext = st->buckets[slot];
        st->buckets[slot] = e;
        st->count++;
        st->counts[kind]++;
    }
    for (size_t i = 0; i < e->n; i++)
        if (e->subs[i] == s) return 0;
    if (e->n == e->cap) {
        /* Reuse a slot emptied outside a dispatch first. */
        if (!st->dispatching && e->live < e->n) {
            size_t k = 0;
            for (size_t i = 0; i < e->n; i++)
                if (e->subs[i]) e->subs[k++] = e->subs[i];
            e->n = k;
        } else {
            size_t cap = e->cap ? e->cap * 2 : 1;
            aredis_subscription **v = aredis__reallocarray(e->subs, cap, sizeof *v);
            if (!v) {
                if (!e->live) unlink_entry(st, e);
                return -1;
            }
            e->subs = v;
            e->cap = cap;
        }
    }
    e->subs[e->n++] = s;
    e->live++;
    s->counts[kind]++;
    return 1;
}

/* Take s off (kind, name). Returns 1 when the name is now held by nobody
 * (the server must be told), 0 when others hold it, -1 when s did not. */
static int drop(ps_state *st, aredis_subscription *s, unsigned kind, const char *p, size_t n) {
    ps_entry *e = lookup(st, kind, p, n);
    if (!e) return -1;
    for (size_t i = 0; i < e->n; i++) {
        if (e->subs[i] != s) continue;
        e->subs[i] = NULL;
        e->live--;
        s->counts[kind]--;
        if (e->live) return 0;
        unlink_entry(st, e);
        return 1;
    }
    return -1;
}

/* ---- Subscriptions' lifetime -------------------------------------------- */

static void sub_release(aredis_subscription *s);

/* An event to s. The handler may free s: a caller that uses s afterwards
 * holds a reference of its own. */
static void sub_event(aredis_subscription *s, aredis_sub_event ev, aredis_err code,
                      const char *detail) {
    if (s->freed || !s->o.on_event) return;
    aredis_error e = {code, detail ? detail : aredis_strerror(code), {0}};
    s->refs++;
    s->o.on_event(s, ev, code == AREDIS_ERR_OK && ev != AREDIS_SUB_DROPPED ? NULL : &e, s->data);
    sub_release(s);
}

/*
 * The subscriptions of a registry (with names of `kind`, or any names for
 * NKINDS; all of them for -1), each with a reference: events and futures
 * completed while walking may free any of them, and unlink them.
 */
typedef struct snap {
    aredis_subscription **v;
    size_t n;
} snap;

static void snap_take(snap *sn, const ps_state *st, int kind) {
    size_t n = 0;
    sn->n = 0;
    for (aredis_subscription *x = st->subs; x; x = x->next)
        n++;
    sn->v = n ? aredis__reallocarray(NULL, n, sizeof *sn->v) : NULL;
    if (!sn->v) return; /* out of memory: nobody is told */
    for (aredis_subscription *x = st->subs; x; x = x->next) {
        if (kind >= 0 && kind < NKINDS && !x->counts[kind]) continue;
        if (kind == NKINDS && !x->counts[0] && !x->counts[1] && !x->counts[2]) continue;
        x->refs++;
        sn->v[sn->n++] = x;
    }
}

static void snap_drop(snap *sn) {
    for (size_t i = 0; i < sn->n; i++)
        sub_release(sn->v[i]);
    aredis__free(sn->v);
}

static void fail_nexts(aredis_subscription *s, aredis_err code, const char *detail) {
    aredis_error e = {code, detail ? detail : aredis_strerror(code), {0}};
    while (s->nn) {
        aredis_future *f = s->nexts[s->nhead];
        s->nhead = (s->nhead + 1) % s->ncap;
        s->nn--;
        aredis__future_done(NULL, NULL, &e, f);
    }
}

static void sub_release(aredis_subscription *s) {
    if (--s->refs) return;
    while (s->rn) {
        aredis_reply_release(s->ring[s->rhead]);
        s->rhead = (s->rhead + 1) % s->rcap;
        s->rn--;
    }
    aredis__free(s->ring);
    aredis__free(s->nexts);
    aredis__free(s);
}

static void sub_unlink(aredis_subscription *s) {
    ps_state *st = s->st;
    if (!st) return;
    if (s->prev)
        s->prev->next = s->next;
    else
        st->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* ---- Calls: (UN)SUBSCRIBE as a batch of confirmations ------------------- */

typedef struct ps_call {
    aredis_subscription *s;
    aredis_client *user;
    aredis_reply_fn *cb;
    void *data;
    aredis_reply *last;  /* the last confirmation */
    aredis_reply *error; /* an error reply that ended it */
    unsigned kind;
    int unsub, replay;
    size_t n;
    char **names; /* the names sent, in order */
    size_t *lens;
    unsigned char *added; /* subscribe: name i was new to the subscription */
    aredis__cmd *cmd;     /* its batch: valid until call_done returns */
} ps_call;

static void call_free(ps_call *k) {
    for (size_t i = 0; k->names && i < k->n; i++)
        aredis__free(k->names[i]);
    aredis__free(k->names);
    aredis__free(k->lens);
    aredis__free(k->added);
    aredis_reply_release(k->last);
    aredis_reply_release(k->error);
    aredis__free(k);
}

static void call_part(aredis_client *c, aredis_reply *r, size_t index, void *data) {
    ps_call *k = data;
    aredis_reply **slot = r->type == AREDIS_REPLY_ERROR ? &k->error : &k->last;
    aredis_reply_release(*slot);
    *slot = aredis_reply_retain(r);
    /* A confirmed subscribe: the name is on the server now. */
    ps_state *st = aredis__pubsub_state(c);
    if (st && !k->unsub && !k->replay && r->type != AREDIS_REPLY_ERROR && index < k->n) {
        ps_entry *e = lookup(st, k->kind, k->names[index], k->lens[index]);
        if (e) e->on_server = 1;
    }
}

static aredis_err issue(ps_state *st, ps_call *k, size_t n, const char *const *names,
                        const size_t *lens, unsigned flags, aredis__cmd **out);

/*
 * A call that failed before it was written (cancelled, or timed out while
 * waiting for a connection): the registry already says what the user
 * asked for, so the server is brought in line with it — the names still
 * held subscribed, the names nobody holds any more unsubscribed — by the
 * same command again, with no callback and no deadline. Unlike the user's
 * call, it is not refused for max_queue_size.
 */
static void reconcile(ps_state *st, const ps_call *k) {
    const char **names = aredis__reallocarray(NULL, k->n ? k->n : 1, sizeof *names);
    size_t *lens = aredis__reallocarray(NULL, k->n ? k->n : 1, sizeof *lens);
    ps_call *again = aredis__calloc(1, sizeof *again);
    size_t m = 0;
    for (size_t i = 0; names && lens && again && i < k->n; i++) {
        ps_entry *e = lookup(st, k->kind, k->names[i], k->lens[i]);
        if (k->unsub ? e != NULL : e == NULL) continue; /* someone holds it / nobody does */
        names[m] = k->names[i];
        lens[m++] = k->lens[i];
    }
    int sent = 0;
    if (m) {
        again->kind = k->kind;
        again->unsub = k->unsub;
        again->n = m;
        again->names = aredis__calloc(m, sizeof *again->names);
        again->lens = aredis__calloc(m, sizeof *again->lens);
        for (size_t i = 0; again->names && again->lens && i < m; i++) {
            again->names[i] = aredis__memdup0(names[i], lens[i]);
            again->lens[i] = lens[i];
            if (!again->names[i]) m = i; /* out of memory: fewer */
        }
        again->n = m;
        sent = m && again->names && again->lens &&
               issue(st, again, m, (const char *const *)again->names, again->lens,
                     AREDIS__BATCH_UNBOUNDED | AREDIS__BATCH_FOREVER, NULL) == AREDIS_ERR_OK;
    }
    if (!sent && again) call_free(again);
    /* Not sent (closed, not connected and not queueing): a subscribe's
     * names are replayed by the next connect instead. */
    if (!sent && !k->unsub)
        for (size_t i = 0; i < k->n; i++) {
            ps_entry *e = lookup(st, k->kind, k->names[i], k->lens[i]);
            if (e) e->on_server = 1;
        }
    aredis__free(names);
    aredis__free(lens);
}

static void call_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    ps_call *k = data;
    ps_state *st = aredis__pubsub_state(c);
    if (st) {
        st->inflight--;
        if (!k->unsub) st->inflight_sub--;
    }
    aredis_subscription *s = k->s;
    if (k->replay) {
        /* A replay refused (an ACL now denies a name, say): the names stay
         * and the next reconnect tries again; the application hears why.
         * A replay lost with its connection is replayed on the next one
         * (on_down), and one that timed out on a live connection at the
         * next connect: neither is the server's refusal. */
        if (st && k->error) {
            snap sn;
            snap_take(&sn, st, (int)k->kind);
            for (size_t i = 0; i < sn.n; i++)
                sub_event(sn.v[i], AREDIS_SUB_ERROR, AREDIS_ERR_SERVER, k->error->str);
            snap_drop(&sn);
        } else if (st && err) {
            st->need_replay = 1;
        }
        call_free(k);
        return;
    }
    if (st && k->error && !k->unsub && !s) {
        /* The library's own subscribe (after a call that never left) was
         * refused: as for a refused replay, the names stay, the next
         * reconnect tries them again, and the application hears why. */
        for (size_t i = 0; i < k->n; i++) {
            ps_entry *e = lookup(st, k->kind, k->names[i], k->lens[i]);
            if (e) e->on_server = 1;
        }
        snap sn;
        snap_take(&sn, st, (int)k->kind);
        for (size_t i = 0; i < sn.n; i++)
            sub_event(sn.v[i], AREDIS_SUB_ERROR, AREDIS_ERR_SERVER, k->error->str);
        snap_drop(&sn);
    } else if (st && k->error && !k->unsub) {
        /* A subscribe the server refused subscribed none of its names: the
         * ones this call brought go (those held before stay). */
        if (s && s->st == st && !s->freed) {
            int gone = 0;
            for (size_t i = 0; i < k->n; i++)
                if (k->added && k->added[i] && drop(st, s, k->kind, k->names[i], k->lens[i]) == 1)
                    gone = 1;
            /* A subscribe the library sent meanwhile (for another call that
             * never left) may carry a name dropped here: an UNSUBSCRIBE
             * behind it keeps the server from holding it. */
            if (gone && aredis_client_state(c) != AREDIS_STATE_CLOSED) {
                ps_call tmp = *k;
                tmp.unsub = 1;
                reconcile(st, &tmp);
            }
        }
    } else if (st && err && err->code != AREDIS_ERR_CANCELLED && err->code != AREDIS_ERR_TIMEOUT) {
        /* Lost with its connection: a subscribe goes out again on the next
         * one — in its place, behind commands issued before it and kept
         * for the reconnect (RESP2 would refuse them behind a replay). The
         * new connection has nothing to unsubscribe from. */
        if (!k->unsub && aredis_client_state(c) != AREDIS_STATE_CLOSED) reconcile(st, k);
    } else if (st && err && !aredis__cmd_was_sent(c, k->cmd)) {
        if (aredis_client_state(c) != AREDIS_STATE_CLOSED) reconcile(st, k);
    } else if (st && !k->unsub) {
        /* Confirmed, or written and then given up on (the server does it
         * anyway): the server has the names — replayed after a reconnect. */
        for (size_t i = 0; i < k->n; i++) {
            ps_entry *e = lookup(st, k->kind, k->names[i], k->lens[i]);
            if (e) e->on_server = 1;
        }
    }
    if (k->cb) {
        if (err)
            aredis__deliver(k->user, k->cb, k->data, NULL, err);
        else
            aredis__deliver(k->user, k->cb, k->data, k->error ? k->error : k->last, NULL);
    }
    if (s) sub_release(s);
    call_free(k);
}

/* Issue one (UN)SUBSCRIBE of n names on the registry's connection. */
static aredis_err issue(ps_state *st, ps_call *k, size_t n, const char *const *names,
                        const size_t *lens, unsigned flags, aredis__cmd **out) {
    if (n > (size_t)INT32_MAX - 1) return aredis__call_fail(AREDIS_ERR_INVALID, "too many names");
    aredis__cmd *rec = NULL;
    const char **argv = aredis__reallocarray(NULL, n + 1, sizeof *argv);
    size_t *argl = aredis__reallocarray(NULL, n + 1, sizeof *argl);
    size_t *ends = aredis__reallocarray(NULL, n, sizeof *ends);
    aredis_err e = AREDIS_ERR_NOMEM;
    char *bytes = NULL;
    size_t len = 0;
    if (argv && argl && ends) {
        argv[0] = k_cmd[k->unsub != 0][k->kind];
        argl[0] = strlen(argv[0]);
        for (size_t i = 0; i < n; i++) {
            argv[i + 1] = names[i];
            argl[i + 1] = lens ? lens[i] : strlen(names[i]);
        }
        e = aredis_format_argv(&bytes, &len, (int)(n + 1), argv, argl);
    }
    if (e == AREDIS_ERR_OK) {
        /* One command owing n replies: each may be matched once all of it
         * has been written. */
        for (size_t i = 0; i < n; i++)
            ends[i] = len;
        aredis__batch_spec spec = {0};
        spec.bytes = bytes;
        spec.len = len;
        spec.n = n;
        spec.ends = ends;
        spec.part = call_part;
        spec.done = call_done;
        spec.data = k;
        spec.flags = AREDIS__BATCH_PUBSUB | (flags & ~AREDIS__BATCH_FOREVER) |
                     ((flags & AREDIS__BATCH_FOREVER) ? AREDIS__BATCH_UNOBSERVED : 0u);
        aredis_cmd_opts forever = {0, AREDIS_CMD_NO_TIMEOUT};
        if (flags & AREDIS__BATCH_FOREVER) spec.opts = &forever;
        /* What each confirmation must be: its kind, its name. */
        spec.ps_kind = k_confirm[k->unsub != 0][k->kind];
        spec.ps_names = names;
        spec.ps_lens = argl + 1;
        e = aredis__batch_submit(st->c, &spec, &rec);
        if (e == AREDIS_ERR_OK) {
            st->inflight++;
            if (!k->unsub) st->inflight_sub++;
            k->cmd = rec;
            if (out) *out = rec;
        }
    } else if (e == AREDIS_ERR_NOMEM) {
        aredis__call_fail(e, "out of memory");
    } else {
        aredis__call_fail(e, "a name is NULL");
    }
    aredis_free_command(bytes);
    aredis__free(argv);
    aredis__free(argl);
    aredis__free(ends);
    return e;
}

/* ---- Messages ----------------------------------------------------------- */

int aredis_message_parse(aredis_reply *r, aredis_message *m) {
    if (!r || !m || (r->type != AREDIS_REPLY_PUSH && r->type != AREDIS_REPLY_ARRAY) ||
        r->elements < 3)
        return -1;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != AREDIS_REPLY_STRING &&
            r->element[i]->type != AREDIS_REPLY_STATUS)
            return -1;
    const aredis_reply *k = r->element[0];
    memset(m, 0, sizeof *m);
    m->reply = r;
    size_t at = 1;
    if (k->len == 7 && memcmp(k->str, "message", 7) == 0) {
        m->kind = AREDIS_SUB_CHANNEL;
    } else if (k->len == 8 && memcmp(k->str, "smessage", 8) == 0) {
        m->kind = AREDIS_SUB_SHARD;
    } else if (k->len == 8 && memcmp(k->str, "pmessage", 8) == 0 && r->elements >= 4) {
        m->kind = AREDIS_SUB_PATTERN;
        m->pattern = r->element[1]->str;
        m->pattern_len = r->element[1]->len;
        at = 2;
    } else {
        return -1;
    }
    m->channel = r->element[at]->str;
    m->channel_len = r->element[at]->len;
    m->payload = r->element[at + 1]->str;
    m->payload_len = r->element[at + 1]->len;
    return 0;
}

static int ring_push(aredis_subscription *s, aredis_reply *r) {
    size_t max = s->o.max_buffered;
    if (s->rn == max) {
        /* Full: the oldest goes (the newest is what a consumer that
         * catches up wants), and the application hears of it. */
        aredis_reply_release(s->ring[s->rhead]);
        s->rhead = (s->rhead + 1) % s->rcap;
        s->rn--;
        s->stats.dropped++;
        if (!s->overflowing) s->overflowing = 2; /* told once the new one is in */
    }
    if (s->rn == s->rcap) {
        size_t cap = s->rcap ? s->rcap * 2 : 16;
        if (cap > max) cap = max;
        aredis_reply **v = aredis__reallocarray(NULL, cap, sizeof *v);
        if (!v) return -1;
        for (size_t i = 0; i < s->rn; i++)
            v[i] = s->ring[(s->rhead + i) % s->rcap];
        aredis__free(s->ring);
        s->ring = v;
        s->rcap = cap;
        s->rhead = 0;
    }
    s->ring[(s->rhead + s->rn) % s->rcap] = aredis_reply_retain(r);
    s->rn++;
    /* The event comes last: a next() inside it takes the oldest. */
    if (s->overflowing == 2) {
        s->overflowing = 1;
        sub_event(s, AREDIS_SUB_OVERFLOW, AREDIS_ERR_QUEUE_FULL,
                  "subscription buffer full (max_buffered): oldest message dropped");
    }
    return 0;
}

/* The oldest pending next() future still wanting a message, or NULL
 * (cancelled ones are let go on the way). */
static aredis_future *take_next(aredis_subscription *s) {
    while (s->nn) {
        aredis_future *f = s->nexts[s->nhead];
        s->nhead = (s->nhead + 1) % s->ncap;
        s->nn--;
        if (!aredis_future_is_done(f)) return f;
        aredis_future_release(f); /* cancelled: its completer's reference */
    }
    return NULL;
}

static void deliver(ps_state *st, aredis_subscription *s, aredis_reply *r,
                    const aredis_message *m) {
    if (s->freed) return;
    s->refs++; /* the handler, a future's then-callbacks or an event may free it */
    aredis_future *f;
    if (s->o.on_message) {
        s->stats.delivered++;
        s->o.on_message(s, m, s->data);
    } else if ((f = take_next(s))) {
        s->stats.delivered++;
        aredis__future_done(st->c, r, NULL, f);
    } else if (ring_push(s, r) != 0) {
        s->stats.dropped++; /* out of memory: counted, not kept */
    }
    sub_release(s);
}

/* A string element (the dispatcher only checked the first). */
static int is_str(const aredis_reply *e) {
    return e->type == AREDIS_REPLY_STRING || e->type == AREDIS_REPLY_STATUS;
}

static void on_message(aredis_client *c, aredis_reply *r, void *state) {
    (void)c;
    ps_state *st = state;
    /* The dispatcher has told it is a message, message / pmessage /
     * smessage by its first element (client/push.c): read it in place. */
    aredis_message m;
    m.reply = r;
    m.pattern = NULL;
    m.pattern_len = 0;
    size_t at = 1;
    char k0 = r->element[0]->str[0];
    if (k0 == 'p') {
        if (r->elements < 4 || !is_str(r->element[1])) return;
        m.kind = AREDIS_SUB_PATTERN;
        m.pattern = r->element[1]->str;
        m.pattern_len = r->element[1]->len;
        at = 2;
    } else {
        m.kind = k0 == 's' ? AREDIS_SUB_SHARD : AREDIS_SUB_CHANNEL;
    }
    const aredis_reply *ch = r->element[at], *pl = r->element[at + 1];
    if (!is_str(ch) || !is_str(pl)) return;
    m.channel = ch->str;
    m.channel_len = ch->len;
    m.payload = pl->str;
    m.payload_len = pl->len;
    const char *key = m.pattern ? m.pattern : m.channel;
    size_t klen = m.pattern ? m.pattern_len : m.channel_len;
    /* Most messages are for the name the last one was for. */
    ps_entry *e = st->last;
    if (!e || e->kind != (unsigned)m.kind || e->len != klen || memcmp(e->name, key, klen) != 0) {
        e = lookup(st, (unsigned)m.kind, key, klen);
        if (!e) return; /* unsubscribed meanwhile: nobody wants it any more */
        st->last = e;
    }
    st->dispatching++;
    /* By index, reading the slots afresh: handlers may add and remove. */
    for (size_t i = 0; i < e->n; i++)
        if (e->subs[i]) deliver(st, e->subs[i], r, &m);
    dispatch_end(st);
}

/* The server dropped a name on its own: today only a shard channel whose
 * slot moved to another node (SUNSUBSCRIBE with nothing asked). */
static void on_unsolicited(aredis_client *c, aredis_reply *r, void *state) {
    (void)c;
    ps_state *st = state;
    if (r->elements < 3 || r->element[1]->type != AREDIS_REPLY_STRING) return;
    const aredis_reply *k = r->element[0];
    unsigned kind = k->len == 12 && memcmp(k->str, "sunsubscribe", 12) == 0   ? AREDIS_SUB_SHARD
                    : k->len == 12 && memcmp(k->str, "punsubscribe", 12) == 0 ? AREDIS_SUB_PATTERN
                    : k->len == 11 && memcmp(k->str, "unsubscribe", 11) == 0  ? AREDIS_SUB_CHANNEL
                                                                              : NKINDS;
    if (kind == NKINDS) return;
    ps_entry *e = lookup(st, kind, r->element[1]->str, r->element[1]->len);
    if (!e) return;
    char detail[200];
    snprintf(detail, sizeof detail, "the server dropped %.*s", (int)(e->len > 150 ? 150 : e->len),
             e->name);
    st->dispatching++;
    for (size_t i = 0; i < e->n; i++) {
        aredis_subscription *s = e->subs[i];
        if (!s) continue;
        drop(st, s, kind, r->element[1]->str, r->element[1]->len);
        sub_event(s, AREDIS_SUB_DROPPED, AREDIS_ERR_OK, detail);
        if (!lookup(st, kind, r->element[1]->str, r->element[1]->len)) break;
    }
    dispatch_end(st);
}

/* ---- Shard channels, one hash slot per command ----------------------------- */

/*
 * A cluster node refuses an SSUBSCRIBE or SUNSUBSCRIBE whose shard channels
 * are in several hash slots (CROSSSLOT); a single server does not mind.
 * What the library sends on its own (a replay, the unsubscribe of a freed
 * subscription) is therefore ordered by slot and sent one run of a slot
 * per command. Other kinds: one run.
 */
typedef struct slot_name {
    unsigned slot;
    size_t i;
} slot_name;

static int by_slot(const void *a, const void *b) {
    const slot_name *x = a, *y = b;
    if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* stable */
}

/* Order names (and lens) by slot; 0, or -1 when out of memory (then they
 * stay as they are: one command, as before). */
static int order_by_slot(unsigned kind, void *names, size_t *lens, size_t n) {
    if (kind != AREDIS_SUB_SHARD || n < 2) return 0;
    const char **nm = names;
    slot_name *v = aredis__reallocarray(NULL, n, sizeof *v);
    const char **n2 = aredis__reallocarray(NULL, n, sizeof *n2);
    size_t *l2 = aredis__reallocarray(NULL, n, sizeof *l2);
    if (!v || !n2 || !l2) {
        aredis__free(v);
        aredis__free(n2);
        aredis__free(l2);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].slot = aredis__key_slot(nm[i], lens[i]);
        v[i].i = i;
    }
    qsort(v, n, sizeof *v, by_slot);
    for (size_t i = 0; i < n; i++) {
        n2[i] = nm[v[i].i];
        l2[i] = lens[v[i].i];
    }
    memcpy(nm, n2, n * sizeof *n2);
    memcpy(lens, l2, n * sizeof *l2);
    aredis__free(v);
    aredis__free(n2);
    aredis__free(l2);
    return 0;
}

/* How many names from `from` on share one command (ordered by slot). */
static size_t run_len(unsigned kind, const char *const *names, const size_t *lens, size_t from,
                      size_t n) {
    if (kind != AREDIS_SUB_SHARD) return n - from;
    unsigned slot = aredis__key_slot(names[from], lens[from]);
    size_t k = from + 1;
    while (k < n && aredis__key_slot(names[k], lens[k]) == slot)
        k++;
    return k - from;
}

/* ---- Reconnects ---------------------------------------------------------- */

static void on_ready(aredis_client *c, void *state) {
    ps_state *st = state;
    /* The user's client came up: its hidden connection too, if it was
     * made before the user's client was connected. */
    if (st->dedicated && aredis_client_state(st->dedicated) == AREDIS_STATE_IDLE)
        aredis_client_connect(st->dedicated);
    if (!st->need_replay) return;
    st->need_replay = 0;
    /* One command per kind, with every name of that kind, ahead of
     * anything waiting. */
    int failed[NKINDS] = {0, 0, 0};
    /* RESP2: only the names the server had, and behind the commands kept
     * for the reconnect. One whose subscribe was never written goes out
     * with that call, in its place: ahead of them, commands issued before
     * (accepted while nothing was subscribed) would meet a connection in
     * subscribed mode. RESP3 has no such mode: every name, ahead of
     * everything. */
    int resp2 = aredis__client_proto(c) == 2;
    for (unsigned kind = 0; kind < NKINDS; kind++) {
        size_t n = st->counts[kind];
        if (!n) continue;
        const char **names = aredis__reallocarray(NULL, n, sizeof *names);
        size_t *lens = aredis__reallocarray(NULL, n, sizeof *lens);
        ps_call *k = aredis__calloc(1, sizeof *k);
        aredis_err e = AREDIS_ERR_NOMEM;
        size_t j = 0;
        if (names && lens && k) {
            for (size_t b = 0; b < st->nbuckets; b++)
                for (ps_entry *x = st->buckets[b]; x; x = x->hnext)
                    if (x->kind == kind && (x->on_server || !resp2)) {
                        names[j] = x->name;
                        lens[j++] = x->len;
                    }
            k->kind = kind;
            k->replay = 1;
            /* RESP2: behind what waits (commands kept for the reconnect
             * were issued before anything was subscribed), not ahead. */
            unsigned how =
                AREDIS__BATCH_FOREVER | (resp2 ? AREDIS__BATCH_UNBOUNDED : AREDIS__BATCH_INTERNAL);
            order_by_slot(kind, names, lens, j);
            e = AREDIS_ERR_OK;
            for (size_t at = 0, run; e == AREDIS_ERR_OK && at < j; at += run) {
                run = run_len(kind, names, lens, at, j);
                ps_call *kr = at ? aredis__calloc(1, sizeof *kr) : k;
                if (!kr) {
                    e = AREDIS_ERR_NOMEM;
                    break;
                }
                kr->kind = kind;
                kr->replay = 1;
                e = issue(st, kr, run, names + at, lens + at, how, NULL);
                if (e != AREDIS_ERR_OK && kr != k) aredis__free(kr);
                if (e != AREDIS_ERR_OK && kr == k) j = 0; /* nothing went: k is freed below */
            }
        }
        aredis__free(names);
        aredis__free(lens);
        if (!j) aredis__free(k);
        if (e != AREDIS_ERR_OK) {
            st->need_replay = 1; /* out of memory: tried again at the next connect */
            failed[kind] = 1;
        }
    }
    /* Then the events, on a snapshot: handlers may free subscriptions. */
    snap sn;
    snap_take(&sn, st, NKINDS);
    for (size_t i = 0; i < sn.n; i++) {
        aredis_subscription *x = sn.v[i];
        for (unsigned kind = 0; kind < NKINDS; kind++)
            if (failed[kind] && x->counts[kind])
                sub_event(x, AREDIS_SUB_ERROR, AREDIS_ERR_NOMEM,
                          "could not subscribe again after a reconnect");
        /* A handler run meanwhile may have dropped its names. */
        if (x->freed || (!x->counts[0] && !x->counts[1] && !x->counts[2])) continue;
        x->stats.resubscribes++;
        sub_event(x, AREDIS_SUB_RESUBSCRIBED, AREDIS_ERR_OK, NULL);
    }
    snap_drop(&sn);
}

static void on_down(aredis_client *c, aredis_err code, const char *why, int final, void *state) {
    ps_state *st = state;
    /* Whatever follows — a reconnect, or a connect() after the policy gave
     * up — starts by subscribing again. Only close() ends it for good. */
    if (st->count) st->need_replay = 1;
    if (!final) return;
    /* The user's client closed or disconnected: so does its hidden
     * subscriber connection — closed for good, or disconnected until the
     * user's client connects again (on_ready). (When the policy gave up,
     * the hidden connection's own policy decides for it, with its own
     * error.) */
    int closed = aredis_client_state(c) == AREDIS_STATE_CLOSED;
    if (closed) st->need_replay = 0;
    if (closed && st->dedicated)
        aredis_client_close(st->dedicated);
    else if (code == AREDIS_ERR_CLOSED && st->dedicated &&
             aredis_client_state(st->dedicated) != AREDIS_STATE_IDLE)
        aredis_client_disconnect(st->dedicated);
    snap sn;
    snap_take(&sn, st, -1);
    for (size_t i = 0; i < sn.n; i++) {
        sub_event(sn.v[i], AREDIS_SUB_ENDED, code, why);
        fail_nexts(sn.v[i], code, why);
    }
    snap_drop(&sn);
}

static int on_engaged(void *state, int anywhere) {
    const ps_state *st = state;
    /* An UNSUBSCRIBE in flight puts no connection in subscribed mode: the
     * server's counts say when it is subscribed. */
    if (st->count > 0 || st->inflight_sub > 0) return 1;
    return anywhere && st->dedicated && aredis__pubsub_engaged(st->dedicated, 0);
}

static void state_free(ps_state *st) {
    for (size_t b = 0; b < st->nbuckets; b++) {
        ps_entry *e = st->buckets[b];
        while (e) {
            ps_entry *next = e->hnext;
            entry_free(e);
            e = next;
        }
    }
    aredis__free(st->buckets);
    aredis__free(st);
}

static void on_destroy(aredis_client *c, void *state) {
    ps_state *st = state;
    aredis__pubsub_attach(c, NULL, NULL);
    if (st->dedicated) aredis_client_free(st->dedicated);
    /* Subscriptions outlive their client: they are only freed now. */
    while (st->subs) {
        aredis_subscription *s = st->subs;
        sub_unlink(s);
        s->st = NULL;
        s->c = NULL;
    }
    state_free(st);
}

static const aredis__pubsub_hooks k_hooks = {on_message, on_unsolicited, on_ready,
                                             on_down,    on_engaged,     on_destroy};

static ps_state *state_of(aredis_client *c) {
    ps_state *st = aredis__pubsub_state(c);
    if (st) return st;
    st = aredis__calloc(1, sizeof *st);
    if (!st) return NULL;
    st->c = c;
    aredis__pubsub_attach(c, &k_hooks, st);
    return st;
}

/* ---- The public API ------------------------------------------------------ */

aredis_subscription *aredis_subscription_new(aredis_client *c, const aredis_sub_options *o) {
    aredis_sub_options def = AREDIS_SUB_OPTIONS_INIT;
    if (!c) {
        aredis__call_fail(AREDIS_ERR_INVALID, "client is NULL");
        return NULL;
    }
    if (!o) o = &def;
    if (o->connection < AREDIS_SUB_AUTO || o->connection > AREDIS_SUB_DEDICATED) {
        aredis__call_fail(AREDIS_ERR_INVALID, "invalid options: connection must be "
                                              "AREDIS_SUB_AUTO, _SHARED or _DEDICATED");
        return NULL;
    }
    if (aredis_client_state(c) == AREDIS_STATE_CLOSED) {
        aredis__call_fail(AREDIS_ERR_CLOSED, "client closed");
        return NULL;
    }
    ps_state *mine = state_of(c);
    if (!mine) goto nomem;
    ps_state *st = mine;
    if (!mine->is_dedicated &&
        (o->connection == AREDIS_SUB_DEDICATED ||
         (o->connection == AREDIS_SUB_AUTO && aredis__client_proto(c) == 2))) {
        if (!mine->dedicated) {
            aredis_client *d = aredis__client_clone(c);
            if (!d) goto nomem;
            ps_state *ds = state_of(d);
            if (!ds) {
                aredis_client_free(d);
                goto nomem;
            }
            ds->is_dedicated = 1;
            mine->dedicated = d;
        }
        st = aredis__pubsub_state(mine->dedicated);
    }
    aredis_subscription *s = aredis__calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->c = c;
    s->st = st;
    s->o = *o;
    if (!s->o.max_buffered) s->o.max_buffered = def.max_buffered;
    s->data = o->data;
    s->refs = 1;
    s->next = st->subs;
    if (st->subs) st->subs->prev = s;
    st->subs = s;
    return s;
nomem:
    aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    return NULL;
}

static aredis_err check_call(const aredis_subscription *s, aredis_sub_kind kind, size_t n,
                             const char *const *names) {
    if (!s || s->freed) return aredis__call_fail(AREDIS_ERR_INVALID, "subscription is NULL");
    if (!s->st) return aredis__call_fail(AREDIS_ERR_CLOSED, "the subscription's client is gone");
    if ((unsigned)kind >= NKINDS)
        return aredis__call_fail(AREDIS_ERR_INVALID, "unknown subscription kind %d", (int)kind);
    if (!n || !names) return aredis__call_fail(AREDIS_ERR_INVALID, "no names given");
    for (size_t i = 0; i < n; i++)
        if (!names[i]) return aredis__call_fail(AREDIS_ERR_INVALID, "name %zu is NULL", i);
    return AREDIS_ERR_OK;
}

static aredis_err do_subscribe(aredis_subscription *s, aredis_sub_kind kind, size_t n,
                               const char *const *names, const size_t *lens, aredis_reply_fn *cb,
                               void *data, aredis__cmd **out) {
    aredis_err e = check_call(s, kind, n, names);
    if (e != AREDIS_ERR_OK) return e;
    ps_state *st = s->st;
    ps_call *k = aredis__calloc(1, sizeof *k);
    if (k) {
        k->names = aredis__calloc(n, sizeof *k->names);
        k->lens = aredis__calloc(n, sizeof *k->lens);
        k->added = aredis__calloc(n, 1);
    }
    if (!k || !k->names || !k->lens || !k->added) goto nomem;
    k->n = n;
    for (size_t i = 0; i < n; i++) {
        k->lens[i] = lens ? lens[i] : strlen(names[i]);
        k->names[i] = aredis__memdup0(names[i], k->lens[i]);
        if (!k->names[i]) goto nomem;
    }
    k->s = s;
    k->user = s->c;
    k->cb = cb;
    k->data = data;
    k->kind = (unsigned)kind;
    e = issue(st, k, n, (const char *const *)k->names, k->lens, 0, out);
    if (e != AREDIS_ERR_OK) {
        call_free(k);
        return e;
    }
    s->refs++;
    /* The names are the subscription's from now on; a server error undoes
     * it (call_done). A name already held stays as it was. */
    for (size_t i = 0; i < n; i++) {
        int h = hold(st, s, (unsigned)kind, k->names[i], k->lens[i]);
        if (h < 0) s->stats.dropped++; /* out of memory: its messages cannot be delivered */
        k->added[i] = h == 1;
    }
    return AREDIS_ERR_OK;
nomem:
    if (k) call_free(k);
    return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
}

/* Unsubscribing from names others still hold needs no server: a PING keeps
 * the callback in order and out of the call. */
static void ping_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    ps_call *k = data;
    if (k->cb) aredis__deliver(k->user, k->cb, k->data, NULL, err);
    if (k->s) sub_release(k->s);
    call_free(k);
}

/* A PING as a batch of one (so a future can be attached to it). */
static aredis_err issue_ping(ps_state *st, ps_call *k, aredis__cmd **out) {
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    size_t end = sizeof ping - 1;
    aredis__batch_spec spec = {0};
    spec.bytes = ping;
    spec.len = end;
    spec.n = 1;
    spec.ends = &end;
    spec.done = ping_done;
    spec.data = k;
    return aredis__batch_submit(st->c, &spec, out);
}

static aredis_err do_unsubscribe(aredis_subscription *s, aredis_sub_kind kind, size_t n,
                                 const char *const *names, const size_t *lens, aredis_reply_fn *cb,
                                 void *data, aredis__cmd **out) {
    aredis_err e = check_call(s, kind, n, names);
    if (e != AREDIS_ERR_OK) return e;
    ps_state *st = s->st;
    ps_call *k = aredis__calloc(1, sizeof *k);
    const char **gone = aredis__reallocarray(NULL, n, sizeof *gone);
    size_t *gonel = aredis__reallocarray(NULL, n, sizeof *gonel);
    if (!k || !gone || !gonel) {
        aredis__free(k);
        aredis__free(gone);
        aredis__free(gonel);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    k->s = s;
    k->user = s->c;
    k->cb = cb;
    k->data = data;
    k->kind = (unsigned)kind;
    k->unsub = 1;
    /* The server is told about the names nobody else holds (the bytes are
     * copied before any entry is freed: `gone` points into the caller's). */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(names[i]);
        ps_entry *x = lookup(st, (unsigned)kind, names[i], len);
        int held = 0;
        for (size_t j = 0; x && j < x->n; j++)
            held |= x->subs[j] == s;
        if (held && x->live == 1) {
            gone[m] = names[i];
            gonel[m++] = len;
        }
    }
    /* The names sent, kept for a reconcile (call_done). */
    k->names = m ? aredis__calloc(m, sizeof *k->names) : NULL;
    k->lens = m ? aredis__calloc(m, sizeof *k->lens) : NULL;
    for (size_t i = 0; k->names && k->lens && i < m; i++) {
        k->names[i] = aredis__memdup0(gone[i], gonel[i]);
        k->lens[i] = gonel[i];
        if (k->names[i]) k->n = i + 1;
    }
    if (m && k->n != m)
        e = aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    else if (m)
        e = issue(st, k, m, gone, gonel, 0, out);
    else
        e = issue_ping(st, k, out);
    aredis__free(gone);
    aredis__free(gonel);
    if (e != AREDIS_ERR_OK) {
        call_free(k);
        return e;
    }
    s->refs++;
    /* Delivery stops now. */
    for (size_t i = 0; i < n; i++)
        drop(st, s, (unsigned)kind, names[i], lens ? lens[i] : strlen(names[i]));
    return AREDIS_ERR_OK;
}

aredis_err aredis_subscription_subscribe(aredis_subscription *s, aredis_sub_kind kind, size_t n,
                                         const char *const *names, const size_t *lens,
                                         aredis_reply_fn *cb, void *data) {
    return do_subscribe(s, kind, n, names, lens, cb, data, NULL);
}

aredis_err aredis_subscription_unsubscribe(aredis_subscription *s, aredis_sub_kind kind, size_t n,
                                           const char *const *names, const size_t *lens,
                                           aredis_reply_fn *cb, void *data) {
    return do_unsubscribe(s, kind, n, names, lens, cb, data, NULL);
}

static aredis_future *future_of(aredis_subscription *s, int unsub, aredis_sub_kind kind, size_t n,
                                const char *const *names, const size_t *lens) {
    if (!s || s->freed || !s->st) {
        aredis__call_fail(s && !s->freed ? AREDIS_ERR_CLOSED : AREDIS_ERR_INVALID,
                          "no usable subscription");
        return NULL;
    }
    aredis_future *f = aredis__future_pending(s->st->c);
    if (!f) return NULL;
    aredis__cmd *cmd = NULL;
    aredis_err e = unsub ? do_unsubscribe(s, kind, n, names, lens, aredis__future_done, f, &cmd)
                         : do_subscribe(s, kind, n, names, lens, aredis__future_done, f, &cmd);
    if (e != AREDIS_ERR_OK) return aredis__future_refused(f, e);
    if (cmd) aredis__future_attach(f, cmd);
    return f;
}

aredis_future *aredis_subscription_subscribe_f(aredis_subscription *s, aredis_sub_kind kind,
                                               size_t n, const char *const *names,
                                               const size_t *lens) {
    return future_of(s, 0, kind, n, names, lens);
}

aredis_future *aredis_subscription_unsubscribe_f(aredis_subscription *s, aredis_sub_kind kind,
                                                 size_t n, const char *const *names,
                                                 const size_t *lens) {
    return future_of(s, 1, kind, n, names, lens);
}

aredis_future *aredis_subscription_next(aredis_subscription *s) {
    if (!s || s->freed) {
        aredis__call_fail(AREDIS_ERR_INVALID, "subscription is NULL");
        return NULL;
    }
    aredis_client *c = s->st ? s->st->c : s->c;
    if (!c) {
        aredis__call_fail(AREDIS_ERR_CLOSED, "the subscription's client is gone");
        return NULL;
    }
    aredis_future *f = aredis__future_pending(c);
    if (!f) return NULL;
    if (s->o.on_message) {
        aredis__call_fail(AREDIS_ERR_INVALID, "the subscription has an on_message handler: "
                                              "its messages go there, not to next()");
        return aredis__future_refused(f, AREDIS_ERR_INVALID);
    }
    if (s->rn) {
        aredis_reply *r = s->ring[s->rhead];
        s->rhead = (s->rhead + 1) % s->rcap;
        if (--s->rn == 0) s->overflowing = 0;
        s->stats.delivered++;
        aredis__future_done(c, r, NULL, f);
        aredis_reply_release(r);
        return f;
    }
    if (!s->st || aredis_client_state(c) == AREDIS_STATE_CLOSED) {
        aredis__call_fail(AREDIS_ERR_CLOSED, "client closed");
        return aredis__future_refused(f, AREDIS_ERR_CLOSED);
    }
    if (s->nn == s->ncap) {
        size_t cap = s->ncap ? s->ncap * 2 : 4;
        aredis_future **v = aredis__reallocarray(NULL, cap, sizeof *v);
        if (!v) {
            aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
            return aredis__future_refused(f, AREDIS_ERR_NOMEM);
        }
        for (size_t i = 0; i < s->nn; i++)
            v[i] = s->nexts[(s->nhead + i) % s->ncap];
        aredis__free(s->nexts);
        s->nexts = v;
        s->ncap = cap;
        s->nhead = 0;
    }
    s->nexts[(s->nhead + s->nn++) % s->ncap] = f;
    return f;
}

size_t aredis_subscription_count(const aredis_subscription *s, aredis_sub_kind kind) {
    return s && (unsigned)kind < NKINDS ? s->counts[kind] : 0;
}

void aredis_subscription_get_stats(const aredis_subscription *s, aredis_sub_stats *out) {
    if (!s || !out) return;
    *out = s->stats;
    out->buffered = s->rn;
}

aredis_client *aredis_subscription_client(const aredis_subscription *s) { return s ? s->c : NULL; }
void *aredis_subscription_get_data(const aredis_subscription *s) { return s ? s->data : NULL; }
void aredis_subscription_set_data(aredis_subscription *s, void *data) {
    if (s) s->data = data;
}

/* Tell the server to drop m names (owned copies: those sent move into
 * their calls, which keep them for a reconcile, and become NULL here): one
 * command per run of a slot for shard channels. No callback. */
static void unsubscribe_owned(ps_state *st, unsigned kind, char **names, size_t *lens, size_t m) {
    order_by_slot(kind, names, lens, m);
    for (size_t at = 0, run; at < m; at += run) {
        run = run_len(kind, (const char *const *)names, lens, at, m);
        ps_call *k = aredis__calloc(1, sizeof *k);
        char **kn = aredis__calloc(run, sizeof *kn);
        size_t *kl = aredis__calloc(run, sizeof *kl);
        if (!k || !kn || !kl) {
            aredis__free(k);
            aredis__free(kn);
            aredis__free(kl);
            continue;
        }
        k->kind = kind;
        k->unsub = 1;
        if (issue(st, k, run, (const char *const *)names + at, lens + at,
                  AREDIS__BATCH_UNBOUNDED | AREDIS__BATCH_UNOBSERVED, NULL) != AREDIS_ERR_OK) {
            aredis__free(kn);
            aredis__free(kl);
            call_free(k);
            continue;
        }
        for (size_t i = 0; i < run; i++) {
            kn[i] = names[at + i];
            kl[i] = lens[at + i];
            names[at + i] = NULL;
        }
        k->names = kn;
        k->lens = kl;
        k->n = run;
    }
}

void aredis_subscription_free(aredis_subscription *s) {
    if (!s || s->freed) return;
    ps_state *st = s->st;
    if (st) {
        /* Tell the server about the names nobody else holds, per kind, in
         * one command each (no callback: the subscription is going). */
        for (unsigned kind = 0; kind < NKINDS; kind++) {
            if (!s->counts[kind]) continue;
            size_t cap = s->counts[kind], m = 0;
            char **names = aredis__calloc(cap, sizeof *names);
            size_t *lens = aredis__calloc(cap, sizeof *lens);
            for (size_t b = 0; names && lens && b < st->nbuckets; b++)
                for (ps_entry *x = st->buckets[b]; x; x = x->hnext) {
                    if (x->kind != kind) continue;
                    int held = 0;
                    for (size_t j = 0; j < x->n; j++)
                        held |= x->subs[j] == s;
                    if (held && x->live == 1 && m < cap) {
                        names[m] = aredis__memdup0(x->name, x->len);
                        lens[m] = x->len;
                        if (names[m]) m++;
                    }
                }
            /* Off the registry first (entries may be freed), then told. */
            for (size_t b = 0; b < st->nbuckets; b++) {
                ps_entry *x = st->buckets[b];
                while (x) {
                    ps_entry *next = x->hnext;
                    if (x->kind == kind)
                        for (size_t j = 0; j < x->n; j++)
                            if (x->subs[j] == s) {
                                drop(st, s, kind, x->name, x->len);
                                break;
                            }
                    x = next;
                }
            }
            if (m && aredis_client_state(st->c) != AREDIS_STATE_CLOSED)
                unsubscribe_owned(st, kind, names, lens, m);
            for (size_t i = 0; i < m; i++)
                aredis__free(names[i]);
            aredis__free(names);
            aredis__free(lens);
        }
        sub_unlink(s);
    }
    s->freed = 1;
    aredis_error e = {AREDIS_ERR_CANCELLED, "subscription freed", {0}};
    while (s->nn) {
        aredis_future *f = s->nexts[s->nhead];
        s->nhead = (s->nhead + 1) % s->ncap;
        s->nn--;
        aredis__future_done(NULL, NULL, &e, f); /* its callbacks may free the client */
    }
    /* Pending calls keep it until they are done; they no longer report to
     * it. */
    s->st = NULL;
    sub_release(s);
}
