/*
 * Sharded pub/sub on a cluster (aredis/cluster.h): each shard channel is
 * subscribed, through an aredis_subscription (features/pubsub.c), on the
 * node connection that owns its slot. One aredis_subscription per node
 * ("nsub"); the cluster subscription keeps, per channel, the node it is
 * held on (NULL: held nowhere now).
 *
 * Moving: a channel is held nowhere when the server dropped it (its slot
 * migrated: AREDIS_SUB_DROPPED) or its SSUBSCRIBE was refused with a
 * redirection; the topology is then read again. After every topology
 * install (and after each subscribe call) reconcile() subscribes every
 * channel held nowhere, or held on a node that no longer owns its slot,
 * on the owner — and tells the application (AREDIS_SUB_RESUBSCRIBED).
 */
#include <stdio.h>
#include <string.h>

#include "features/cluster_internal.h"
#include "proto/slot.h"
#include "util/alloc.h"
#include "util/error.h"

typedef struct nsub {
    struct nsub *next;
    aredis_cluster_sub *cs;
    aredis_client *c;
    aredis_subscription *s;
} nsub;

struct call;

typedef struct chan {
    struct chan *next;
    int slot;
    nsub *on;        /* held there, or NULL */
    struct call *by; /* the subscribe call that brought it, until placed */
    size_t len;
    char name[];
} chan;

/* A subscribe call: done when each node it went to has answered. */
typedef struct call {
    aredis_cluster_sub *cs;
    aredis_reply_fn *cb;
    void *data;
    size_t left;
    aredis_err code;
    char detail[256];
} call;

struct aredis_cluster_sub {
    aredis_cluster_sub *next; /* in the cluster's list */
    aredis_cluster *cl;       /* NULL once the cluster is freed */
    aredis_cluster_message_fn *on_message;
    aredis_cluster_sub_event_fn *on_event;
    void *data;
    chan *chans;
    nsub *nsubs;
    size_t nchans;
    int moved;  /* a channel moved since the last event */
    int failed; /* moving one was refused (fail_code, fail_detail) */
    aredis_err fail_code;
    char fail_detail[200];
    int freed;      /* aredis_cluster_sub_free ran: memory goes with the last ref */
    int refs;       /* the application's, and one per call part in flight */
    call **waiting; /* subscribe calls made before the topology was known */
    size_t nwaiting;
};

static void reconcile(aredis_cluster_sub *cs);
static void sub_release(aredis_cluster_sub *cs);
static void fail_waiting(aredis_cluster_sub *cs, aredis_err code, const char *why);

static chan *chan_find(aredis_cluster_sub *cs, const char *name, size_t len) {
    for (chan *ch = cs->chans; ch; ch = ch->next)
        if (ch->len == len && memcmp(ch->name, name, len) == 0) return ch;
    return NULL;
}

static void tell(aredis_cluster_sub *cs, aredis_sub_event ev, const aredis_error *err) {
    if (cs->on_event && !cs->freed) cs->on_event(cs, ev, err, cs->data);
}

/* ---- Per-node subscriptions ------------------------------------------------------ */

static void on_node_message(aredis_subscription *s, const aredis_message *m, void *data) {
    (void)s;
    nsub *ns = data;
    aredis_cluster_sub *cs = ns->cs;
    if (!cs->freed) cs->on_message(cs, m, cs->data);
}

/* The server dropped a channel ("the server dropped <name>", the name cut
 * at 150 bytes): every channel on this node it may be is held nowhere now
 * (subscribing one again that was not dropped is harmless). */
static void dropped(nsub *ns, const char *detail) {
    static const char lead[] = "the server dropped ";
    size_t ll = sizeof lead - 1, dl = strlen(detail);
    if (dl < ll || memcmp(detail, lead, ll) != 0) return;
    const char *name = detail + ll;
    size_t nl = dl - ll;
    for (chan *ch = ns->cs->chans; ch; ch = ch->next)
        if (ch->on == ns && ch->len >= nl && memcmp(ch->name, name, nl) == 0 &&
            (ch->len == nl || nl >= 150))
            ch->on = NULL;
}

static void on_node_event(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                          void *data) {
    (void)s;
    nsub *ns = data;
    aredis_cluster_sub *cs = ns->cs;
    if (ev == AREDIS_SUB_DROPPED && err) {
        dropped(ns, err->detail);
        if (cs->cl) aredis__cl_refresh(cs->cl);
        return;
    }
    if (ev == AREDIS_SUB_ENDED) return; /* a node connection closing: the cluster's business */
    tell(cs, ev, err);
}

static nsub *nsub_for(aredis_cluster_sub *cs, aredis_client *c) {
    for (nsub *ns = cs->nsubs; ns; ns = ns->next)
        if (ns->c == c) return ns;
    nsub *ns = aredis__calloc(1, sizeof *ns);
    if (!ns) return NULL;
    aredis_sub_options o = AREDIS_SUB_OPTIONS_INIT;
    o.on_message = on_node_message;
    o.on_event = on_node_event;
    o.data = ns;
    ns->cs = cs;
    ns->c = c;
    ns->s = aredis_subscription_new(c, &o);
    if (!ns->s) {
        aredis__free(ns);
        return NULL;
    }
    ns->next = cs->nsubs;
    cs->nsubs = ns;
    return ns;
}

/* Node subscriptions holding no channel any more are freed (a node that
 * left the topology is then closed by the cluster). */
static void nsubs_prune(aredis_cluster_sub *cs) {
    nsub **pp = &cs->nsubs;
    while (*pp) {
        nsub *ns = *pp;
        int used = 0;
        for (chan *ch = cs->chans; ch && !used; ch = ch->next)
            used = ch->on == ns;
        if (used) {
            pp = &ns->next;
            continue;
        }
        *pp = ns->next;
        aredis_subscription_free(ns->s);
        aredis__free(ns);
    }
}

/* ---- Subscribing ---------------------------------------------------------------------- */

static void call_end(call *k, aredis_client *c, aredis_reply *r) {
    if (--k->left) return;
    aredis_error e;
    memset(&e, 0, sizeof e);
    e.code = k->code;
    e.detail = k->detail;
    if (k->cb) k->cb(c, k->code == AREDIS_ERR_OK ? r : NULL, k->code ? &e : NULL, k->data);
    aredis__free(k);
}

typedef struct part {
    call *k; /* NULL: a move, nobody waits */
    aredis_cluster_sub *cs;
    nsub *ns;
    size_t n;
    struct {
        const char *p;
        size_t len;
    } names[];
} part;

/* A node answered SSUBSCRIBE for some channels. A refusal by redirection
 * (the topology was stale) leaves them held nowhere: the topology is read
 * again and they are placed after it. Another refusal (an ACL) drops them
 * and is the call's error. */
static void on_subscribed(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    part *pt = data;
    aredis_cluster_sub *cs = pt->cs;
    call *k = pt->k;
    int redirected = err && err->code == AREDIS_ERR_SERVER &&
                     (strncmp(err->detail, "MOVED", 5) == 0 || strncmp(err->detail, "ASK", 3) == 0);
    if (err && !cs->freed) {
        chan **pp = &cs->chans;
        while (*pp) {
            chan *ch = *pp;
            int mine = 0;
            for (size_t i = 0; i < pt->n && !mine; i++)
                mine = ch->len == pt->names[i].len &&
                       memcmp(ch->name, pt->names[i].p, ch->len) == 0 && ch->on == pt->ns;
            if (mine) ch->on = NULL;
            if (mine && err->code == AREDIS_ERR_SERVER && !redirected) {
                *pp = ch->next;
                cs->nchans--;
                aredis__free(ch);
            } else {
                pp = &ch->next;
            }
        }
        if (cs->cl && err->code != AREDIS_ERR_CANCELLED) aredis__cl_refresh(cs->cl);
    }
    if (k && err && !redirected && k->code == AREDIS_ERR_OK) {
        k->code = err->code;
        snprintf(k->detail, sizeof k->detail, "%s", err->detail);
    }
    /* Moving a channel with nobody waiting (a reconcile) was refused: the
     * application hears of the channels it lost. */
    if (!k && err && !redirected && err->code != AREDIS_ERR_CANCELLED)
        tell(cs, AREDIS_SUB_ERROR, err);
    aredis__free(pt);
    if (k) call_end(k, c, r);
    sub_release(cs);
}

/* Subscribe the given channels (all held nowhere, all of one owner) on c. */
static aredis_err subscribe_on(aredis_cluster_sub *cs, aredis_client *c, chan **chs, size_t n,
                               call *k) {
    nsub *ns = nsub_for(cs, c);
    size_t bytes = 0; /* the names are copied: a channel may go before the answer */
    for (size_t i = 0; i < n; i++)
        bytes += chs[i]->len + 1;
    part *pt = ns ? aredis__malloc(sizeof *pt + n * sizeof pt->names[0] + bytes) : NULL;
    const char **names = pt ? aredis__malloc(n * sizeof *names) : NULL;
    size_t *lens = names ? aredis__malloc(n * sizeof *lens) : NULL;
    if (!lens) {
        aredis__free(pt);
        aredis__free(names);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    pt->k = k;
    pt->cs = cs;
    cs->refs++;
    pt->ns = ns;
    pt->n = n;
    char *blob = (char *)&pt->names[n];
    for (size_t i = 0; i < n; i++) {
        memcpy(blob, chs[i]->name, chs[i]->len + 1);
        names[i] = pt->names[i].p = blob;
        lens[i] = pt->names[i].len = chs[i]->len;
        blob += chs[i]->len + 1;
    }
    aredis_err e =
        aredis_subscription_subscribe(ns->s, AREDIS_SUB_SHARD, n, names, lens, on_subscribed, pt);
    aredis__free(names);
    aredis__free(lens);
    if (e != AREDIS_ERR_OK) {
        cs->refs--;
        aredis__free(pt);
        return e;
    }
    for (size_t i = 0; i < n; i++) {
        chs[i]->on = ns;
        chs[i]->by = NULL;
    }
    if (k) k->left++;
    return AREDIS_ERR_OK;
}

/* Every channel held nowhere, or on a node that no longer owns its slot,
 * subscribed on its owner, one command per slot; with a call k, only the
 * channels it brought, and k waits for them. Channels whose owner is
 * unknown wait for the next topology. */
static void place(aredis_cluster_sub *cs, call *k) {
    aredis_cluster *cl = cs->cl;
    if (!cl || !cl->topo || !cs->nchans) return;
    chan **todo = aredis__malloc(cs->nchans * sizeof *todo);
    aredis_client **owner = aredis__malloc(cs->nchans * sizeof *owner);
    if (!todo || !owner) {
        aredis__free(todo);
        aredis__free(owner);
        return;
    }
    size_t n = 0;
    for (chan *ch = cs->chans; ch; ch = ch->next) {
        if (k && ch->by != k) continue; /* a call places what it brought */
        aredis_client *c = aredis__cl_owner_client(cl, ch->slot);
        /* Held on a connection the cluster has closed since: held nowhere. */
        if (ch->on && !aredis__cl_has_client(cl, ch->on->c)) ch->on = NULL;
        if (!c || (ch->on && ch->on->c == c)) continue;
        if (ch->on) { /* its slot has a new owner: leave the old one */
            const char *nm = ch->name;
            aredis_subscription_unsubscribe(ch->on->s, AREDIS_SUB_SHARD, 1, &nm, &ch->len, NULL,
                                            NULL);
            ch->on = NULL;
        }
        todo[n] = ch;
        owner[n++] = c;
    }
    /* Group by owner: each group one SSUBSCRIBE. */
    chan **grp = aredis__malloc((n ? n : 1) * sizeof *grp);
    for (size_t i = 0; grp && i < n; i++) {
        if (!owner[i]) continue;
        size_t g = 0;
        aredis_client *c = owner[i];
        /* One command per slot: a node refuses channels of several
         * (CROSSSLOT). */
        for (size_t j = i; j < n; j++)
            if (owner[j] == c && todo[j]->slot == todo[i]->slot) {
                grp[g++] = todo[j];
                owner[j] = NULL;
            }
        if (subscribe_on(cs, c, grp, g, k) == AREDIS_ERR_OK) {
            cs->moved = 1;
        } else if (k && k->code == AREDIS_ERR_OK) {
            k->code = aredis_call_error()->code;
            snprintf(k->detail, sizeof k->detail, "%s", aredis_call_error()->detail);
        } else if (!k) {
            /* Moving them was refused now (a full queue...): the
             * application hears of it, and the topology is read again,
             * which tries again. */
            cs->failed = 1;
            snprintf(cs->fail_detail, sizeof cs->fail_detail, "%s", aredis_call_error()->detail);
            cs->fail_code = aredis_call_error()->code;
        }
    }
    aredis__free(grp);
    aredis__free(todo);
    aredis__free(owner);
}

/* A call with nothing (left) to send is answered on a later turn, as
 * every callback is: after a PING through the cluster. */
static void on_deferred(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    (void)err;
    call_end(data, c, NULL);
}

/* Drop the channels call k brought that were never placed. */
static void forget_brought(aredis_cluster_sub *cs, call *k) {
    chan **pp = &cs->chans;
    while (*pp) {
        chan *ch = *pp;
        if (ch->by == k && !ch->on) {
            *pp = ch->next;
            cs->nchans--;
            aredis__free(ch);
        } else {
            pp = &ch->next;
        }
    }
}

/* Place what is held nowhere for call k, then drop k's hold: it ends when
 * its parts have answered. `in_call`: from inside the application's call,
 * where a call that sent nothing is refused instead (the channels it
 * brought are dropped, its callback never runs): returns that refusal. */
static aredis_err call_start(aredis_cluster_sub *cs, call *k, int in_call) {
    place(cs, k);
    if (in_call && k->left == 1 && k->code != AREDIS_ERR_OK) {
        forget_brought(cs, k);
        aredis_err code = k->code;
        char why[256];
        snprintf(why, sizeof why, "%s", k->detail);
        aredis__free(k);
        return aredis__call_fail(code, "%s", why);
    }
    for (chan *ch = cs->chans; ch; ch = ch->next)
        if (ch->by == k) ch->by = NULL; /* not placed (no owner yet): anyone's now */
    if (k->left == 1 && k->code == AREDIS_ERR_OK &&
        aredis_cluster_command(cs->cl, on_deferred, k, "PING") == AREDIS_ERR_OK)
        return AREDIS_ERR_OK;
    if (in_call && k->left == 1) { /* nothing went, and no later turn to answer on */
        aredis_err code = aredis_call_error()->code;
        aredis__free(k);
        return code;
    }
    if (k->left == 1 && k->code == AREDIS_ERR_OK) {
        k->code = aredis_call_error()->code;
        snprintf(k->detail, sizeof k->detail, "%s", aredis_call_error()->detail);
    }
    call_end(k, NULL, NULL);
    return AREDIS_ERR_OK;
}

static void reconcile(aredis_cluster_sub *cs) {
    cs->moved = 0;
    cs->failed = 0;
    call **w = cs->waiting;
    size_t nw = cs->nwaiting;
    cs->waiting = NULL;
    cs->nwaiting = 0;
    for (size_t i = 0; i < nw; i++) /* their callbacks may free cs: the caller holds it */
        call_start(cs, w[i], 0);
    aredis__free(w);
    if (cs->freed || !cs->cl) return;
    int had_waiting = nw > 0;
    place(cs, NULL);
    nsubs_prune(cs);
    if (cs->moved && !had_waiting) tell(cs, AREDIS_SUB_RESUBSCRIBED, NULL);
    if (cs->failed && !cs->freed && cs->cl) {
        aredis_error e;
        memset(&e, 0, sizeof e);
        e.code = cs->fail_code;
        e.detail = cs->fail_detail;
        tell(cs, AREDIS_SUB_ERROR, &e);
        if (cs->cl) aredis__cl_refresh(cs->cl);
    }
}

/* Each subscription of the cluster, held, on a snapshot: handlers may free
 * any of them. */
static void each_sub(aredis_cluster *cl, int waiting_only, void (*fn)(aredis_cluster_sub *, void *),
                     void *arg) {
    size_t n = 0;
    for (aredis_cluster_sub *cs = cl->subs; cs; cs = cs->next)
        n += !waiting_only || cs->nwaiting;
    if (!n) return;
    aredis_cluster_sub **v = aredis__malloc(n * sizeof *v);
    if (!v) return;
    n = 0;
    for (aredis_cluster_sub *cs = cl->subs; cs; cs = cs->next)
        if (!waiting_only || cs->nwaiting) {
            cs->refs++;
            v[n++] = cs;
        }
    for (size_t i = 0; i < n; i++)
        if (!v[i]->freed && v[i]->cl && !cl->freeing) fn(v[i], arg);
    for (size_t i = 0; i < n; i++)
        sub_release(v[i]);
    aredis__free(v);
}

static void reconcile_one(aredis_cluster_sub *cs, void *arg) {
    (void)arg;
    reconcile(cs);
}

void aredis__cl_subs_reconcile(aredis_cluster *cl) { each_sub(cl, 0, reconcile_one, NULL); }

typedef struct fail_why {
    aredis_err code;
    const char *detail;
} fail_why;

static void fail_one(aredis_cluster_sub *cs, void *arg) {
    const fail_why *w = arg;
    fail_waiting(cs, w->code, w->detail);
}

void aredis__cl_subs_fail_waiting(aredis_cluster *cl, aredis_err code, const char *detail) {
    fail_why w = {code, detail};
    each_sub(cl, 1, fail_one, &w);
}

static void fail_waiting(aredis_cluster_sub *cs, aredis_err code, const char *why) {
    for (size_t i = 0; i < cs->nwaiting; i++) {
        call *k = cs->waiting[i];
        if (k->code == AREDIS_ERR_OK) {
            k->code = code;
            snprintf(k->detail, sizeof k->detail, "%s", why);
        }
        call_end(k, NULL, NULL);
    }
    aredis__free(cs->waiting);
    cs->waiting = NULL;
    cs->nwaiting = 0;
}

static void nsubs_free(aredis_cluster_sub *cs) {
    while (cs->nsubs) {
        nsub *ns = cs->nsubs;
        cs->nsubs = ns->next;
        aredis_subscription_free(ns->s);
        aredis__free(ns);
    }
    for (chan *ch = cs->chans; ch; ch = ch->next)
        ch->on = NULL;
}

void aredis__cl_subs_detach(aredis_cluster *cl) {
    aredis_cluster_sub *cs = cl->subs;
    cl->subs = NULL;
    while (cs) {
        aredis_cluster_sub *next = cs->next;
        cs->next = NULL;
        cs->cl = NULL;
        nsubs_free(cs);
        fail_waiting(cs, AREDIS_ERR_CANCELLED, "cluster freed");
        cs = next;
    }
}

/* ---- Public ---------------------------------------------------------------------------- */

aredis_cluster_sub *aredis_cluster_sub_new(aredis_cluster *cl,
                                           aredis_cluster_message_fn *on_message,
                                           aredis_cluster_sub_event_fn *on_event, void *data) {
    if (!cl || !on_message) {
        aredis__call_fail(AREDIS_ERR_INVALID, "a cluster and a message handler are needed");
        return NULL;
    }
    if (cl->freeing) {
        aredis__call_fail(AREDIS_ERR_CANCELLED, "cluster freed");
        return NULL;
    }
    aredis_cluster_sub *cs = aredis__calloc(1, sizeof *cs);
    if (!cs) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cs->cl = cl;
    cs->refs = 1;
    cs->on_message = on_message;
    cs->on_event = on_event;
    cs->data = data;
    cs->next = cl->subs;
    cl->subs = cs;
    return cs;
}

static aredis_err check_names(const aredis_cluster_sub *s, size_t n, const char *const *names) {
    if (!s || !n || !names) return aredis__call_fail(AREDIS_ERR_INVALID, "no channel given");
    if (s->freed) return aredis__call_fail(AREDIS_ERR_INVALID, "subscription freed");
    if (!s->cl || s->cl->freeing) return aredis__call_fail(AREDIS_ERR_CLOSED, "cluster freed");
    for (size_t i = 0; i < n; i++)
        if (!names[i]) return aredis__call_fail(AREDIS_ERR_INVALID, "channel %zu is NULL", i);
    return AREDIS_ERR_OK;
}

static call *call_new(aredis_cluster_sub *s, aredis_reply_fn *cb, void *data) {
    call *k = aredis__calloc(1, sizeof *k);
    if (!k) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    k->cs = s;
    k->cb = cb;
    k->data = data;
    k->left = 1; /* the hold, dropped by call_start */
    return k;
}

aredis_err aredis_cluster_ssubscribe(aredis_cluster_sub *s, size_t n, const char *const *names,
                                     const size_t *lens, aredis_reply_fn *cb, void *data) {
    aredis_err e = check_names(s, n, names);
    if (e != AREDIS_ERR_OK) return e;
    call *k = call_new(s, cb, data);
    call **w = k ? aredis__realloc(s->waiting, (s->nwaiting + 1) * sizeof *w) : NULL;
    if (!w) {
        aredis__free(k);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    s->waiting = w;
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(names[i]);
        chan *ch = chan_find(s, names[i], len);
        if (ch) continue; /* held (or being placed) already */
        ch = aredis__malloc(sizeof *ch + len + 1);
        if (!ch) { /* the ones added stay, as after a failed call */
            aredis__free(k);
            return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        }
        memcpy(ch->name, names[i], len);
        ch->name[len] = '\0';
        ch->len = len;
        ch->slot = (int)aredis__key_slot(names[i], len);
        ch->on = NULL;
        ch->by = k;
        ch->next = s->chans;
        s->chans = ch;
        s->nchans++;
    }
    if (!s->cl->topo) { /* placed (and answered) once the topology is known */
        s->waiting[s->nwaiting++] = k;
        return AREDIS_ERR_OK;
    }
    return call_start(s, k, 1);
}

static void on_unsubscribed(aredis_client *c, aredis_reply *r, const aredis_error *err,
                            void *data) {
    call *k = data;
    if (err && k->code == AREDIS_ERR_OK && err->code != AREDIS_ERR_CANCELLED) {
        k->code = err->code;
        snprintf(k->detail, sizeof k->detail, "%s", err->detail);
    }
    call_end(k, c, r);
}

aredis_err aredis_cluster_sunsubscribe(aredis_cluster_sub *s, size_t n, const char *const *names,
                                       const size_t *lens, aredis_reply_fn *cb, void *data) {
    aredis_err e = check_names(s, n, names);
    if (e != AREDIS_ERR_OK) return e;
    call *k = call_new(s, cb, data);
    if (!k) return AREDIS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(names[i]);
        chan **pp = &s->chans;
        while (*pp && !((*pp)->len == len && memcmp((*pp)->name, names[i], len) == 0))
            pp = &(*pp)->next;
        chan *ch = *pp;
        if (!ch) continue;
        *pp = ch->next;
        s->nchans--;
        if (ch->on) {
            const char *nm = ch->name;
            if (aredis_subscription_unsubscribe(ch->on->s, AREDIS_SUB_SHARD, 1, &nm, &ch->len,
                                                on_unsubscribed, k) == AREDIS_ERR_OK)
                k->left++;
        }
        aredis__free(ch);
    }
    nsubs_prune(s);
    if (k->left == 1) { /* nothing to wait for: answered on a later turn */
        if (aredis_cluster_command(s->cl, on_deferred, k, "PING") == AREDIS_ERR_OK)
            return AREDIS_ERR_OK;
        aredis_err code = aredis_call_error()->code; /* the names are dropped all the same */
        aredis__free(k);
        return code;
    }
    call_end(k, NULL, NULL); /* the hold: it ends when the nodes have answered */
    return AREDIS_ERR_OK;
}

size_t aredis_cluster_sub_count(const aredis_cluster_sub *s) { return s ? s->nchans : 0; }

static void sub_release(aredis_cluster_sub *cs) {
    if (--cs->refs) return;
    while (cs->chans) {
        chan *ch = cs->chans;
        cs->chans = ch->next;
        aredis__free(ch);
    }
    aredis__free(cs);
}

void aredis_cluster_sub_free(aredis_cluster_sub *s) {
    if (!s || s->freed) return;
    s->freed = 1;
    if (s->cl) {
        aredis_cluster_sub **pp = &s->cl->subs;
        while (*pp && *pp != s)
            pp = &(*pp)->next;
        if (*pp) *pp = s->next;
    }
    nsubs_free(s);
    fail_waiting(s, AREDIS_ERR_CANCELLED, "subscription freed");
    s->cl = NULL;
    sub_release(s);
}
