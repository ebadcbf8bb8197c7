/*
 * Metrics the library keeps (aredis/observe.h): per server, operations by
 * name and outcome with a duration histogram, and connection counters; per
 * pool, its wait times and (read at each snapshot) its gauges.
 *
 * Cost per operation: the name is looked up once at its start (the client
 * remembers the entry it used last, so a run of one command compares a few
 * bytes), and its end adds to one histogram. Bytes in and out cost nothing
 * per operation: they are the clients' own counters, read at each snapshot
 * (and folded in when a client leaves).
 *
 * Cardinality is bounded: a server keeps at most MAX_NAMES operation names
 * (later ones count as "_other") and a name at most MAX_OUTCOMES error
 * types (later ones count as "_other").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/feature.h"
#include "features/observe_internal.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "util/error.h"

#define MAX_NAMES 256
#define MAX_OUTCOMES 32
#define OTHER "_other"

const double aredis_metrics_bounds[AREDIS_METRICS_BOUNDS] = {0.001, 0.005, 0.01, 0.05, 0.1,
                                                             0.5,   1,     5,    10};

typedef aredis__mhist mhist;
_Static_assert(sizeof(((mhist *)0)->b) / sizeof(uint64_t) == AREDIS_METRICS_BOUNDS + 1,
               "the histogram's buckets: the bounds and +Inf");

typedef struct mout {
    struct mout *next;
    mhist h;
    char type[];
} mout;

typedef struct aredis__mname {
    mhist ok;                   /* first: observe.c's fast path counts a success here */
    struct aredis__mname *next; /* hash chain */
    struct aredis__mserver *srv;
    mout *errs;
    size_t nerrs;
    size_t len;
    char name[]; /* NUL-terminated too */
} mname;

typedef struct aredis__mserver {
    struct aredis__mserver *next;
    char *host;
    int port;
    uint64_t bytes_out, bytes_in; /* folded from clients that left */
    uint64_t connects, connect_failures, reconnects, timeouts;
    mname **tab;
    size_t cap, n;
} mserver;

typedef struct aredis__mpool {
    struct aredis__mpool *next, *prev;
    aredis_metrics *m;
    aredis_pool *pool;
    size_t max;
    char name[160];
    mhist wait;
    uint64_t timeouts;
} mpool;

struct aredis_metrics {
    mserver *servers;
    mpool *pools;
    aredis__obs *clients;
};

/* ---- Servers and names ---------------------------------------------------------- */

static mserver *server_get(aredis_metrics *m, const char *host, int port) {
    for (mserver *s = m->servers; s; s = s->next)
        if (s->port == port && strcmp(s->host, host) == 0) return s;
    mserver *s = aredis__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->host = aredis__strdup(host);
    s->cap = 16;
    s->tab = aredis__calloc(s->cap, sizeof *s->tab);
    if (!s->host || !s->tab) {
        aredis__free(s->host);
        aredis__free(s->tab);
        aredis__free(s);
        return NULL;
    }
    s->port = port;
    s->next = m->servers;
    m->servers = s;
    return s;
}

static mname *name_find(mserver *s, const char *name, size_t len) {
    for (mname *e = s->tab[aredis__hash(0, name, len) & (s->cap - 1)]; e; e = e->next)
        if (e->len == len && memcmp(e->name, name, len) == 0) return e;
    return NULL;
}

static void grow(mserver *s) {
    size_t cap = s->cap * 2;
    mname **tab = aredis__calloc(cap, sizeof *tab);
    if (!tab) return; /* longer chains, still correct */
    for (size_t i = 0; i < s->cap; i++) {
        mname *e = s->tab[i];
        while (e) {
            mname *next = e->next;
            size_t j = aredis__hash(0, e->name, e->len) & (cap - 1);
            e->next = tab[j];
            tab[j] = e;
            e = next;
        }
    }
    aredis__free(s->tab);
    s->tab = tab;
    s->cap = cap;
}

static mname *name_add(mserver *s, const char *name, size_t len) {
    if (s->n >= MAX_NAMES) {
        name = OTHER;
        len = strlen(OTHER);
        mname *o = name_find(s, name, len);
        if (o) return o;
    }
    mname *e = aredis__calloc(1, sizeof *e + len + 1);
    if (!e) return NULL;
    e->srv = s;
    e->len = len;
    memcpy(e->name, name, len);
    size_t j = aredis__hash(0, name, len) & (s->cap - 1);
    e->next = s->tab[j];
    s->tab[j] = e;
    if (++s->n * 4 > s->cap * 3) grow(s);
    return e;
}

struct aredis__mname *aredis__metrics_slot(aredis__obs *o, const char *name, size_t len) {
    mname *e = o->last;
    if (e && e->len == len && memcmp(e->name, name, len) == 0) return e;
    e = name_find(o->srv, name, len);
    if (!e) e = name_add(o->srv, name, len);
    if (e) o->last = e;
    return e;
}

static mhist *outcome(mname *e, const char *type) {
    if (!type) return &e->ok;
    for (mout *x = e->errs; x; x = x->next)
        if (strcmp(x->type, type) == 0) return &x->h;
    if (e->nerrs >= MAX_OUTCOMES) {
        type = OTHER;
        for (mout *x = e->errs; x; x = x->next)
            if (strcmp(x->type, type) == 0) return &x->h;
    }
    size_t tl = strlen(type);
    mout *x = aredis__calloc(1, sizeof *x + tl + 1);
    if (!x) return NULL;
    memcpy(x->type, type, tl);
    /* At the end: the snapshot sorts anyway, and order of arrival reads well. */
    mout **at = &e->errs;
    while (*at)
        at = &(*at)->next;
    *at = x;
    e->nerrs++;
    return &x->h;
}

static void hist_add(mhist *h, uint64_t ns) { aredis__mhist_add(h, ns); }

void aredis__metrics_record(aredis__obs *o, struct aredis__mname *slot, uint64_t ns,
                            aredis_err code, const char *type) {
    (void)o;
    mhist *h = outcome(slot, type);
    if (h) hist_add(h, ns);
    if (code == AREDIS_ERR_TIMEOUT) slot->srv->timeouts++;
}

void aredis__metrics_conn(aredis__obs *o, int kind, aredis_err code) {
    mserver *s = o->srv;
    if (!s) return;
    if (kind == AREDIS_CONN_CONNECT) {
        if (code == AREDIS_ERR_OK)
            s->connects++;
        else if (code != AREDIS_ERR_CLOSED && code != AREDIS_ERR_CANCELLED)
            s->connect_failures++; /* closed while connecting: not a failure */
    } else if (kind == AREDIS_CONN_RECONNECT) {
        s->reconnects++;
    }
}

/* ---- Attaching clients ------------------------------------------------------------ */

static void endpoint(aredis_client *c, const char **host, int *port) {
    const aredis_options *opt = aredis__client_opts(c);
    *host = opt->unix_path ? opt->unix_path : opt->host ? opt->host : "";
    *port = opt->unix_path ? 0 : opt->port;
}

void aredis__metrics_detach(aredis__obs *o) {
    aredis_metrics *m = o->m;
    if (!m) return;
    aredis_client_stats st;
    aredis_client_get_stats(o->c, &st);
    o->srv->bytes_out += st.bytes_out - o->base.bytes_out;
    o->srv->bytes_in += st.bytes_in - o->base.bytes_in;
    if (o->mprev)
        o->mprev->mnext = o->mnext;
    else
        m->clients = o->mnext;
    if (o->mnext) o->mnext->mprev = o->mprev;
    o->mprev = o->mnext = NULL;
    o->m = NULL;
    o->srv = NULL;
    o->last = NULL;
    o->mgen++;
}

aredis_err aredis_client_set_metrics(aredis_client *c, aredis_metrics *m) {
    if (!c) return aredis__call_fail(AREDIS_ERR_INVALID, "client is NULL");
    aredis__obs *o = m ? aredis__obs_get(c) : aredis__obs_state(c);
    if (!o) return m ? aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory") : AREDIS_ERR_OK;
    if (o->m == m) return AREDIS_ERR_OK;
    mserver *s = NULL;
    if (m) {
        const char *host;
        int port;
        endpoint(c, &host, &port);
        if (!(s = server_get(m, host, port)))
            return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    aredis__metrics_detach(o);
    if (m) {
        o->m = m;
        o->srv = s;
        aredis_client_get_stats(c, &o->base);
        o->mnext = m->clients;
        if (m->clients) m->clients->mprev = o;
        m->clients = o;
    }
    aredis__obs_refresh(c);
    for (aredis__obs *f = o->followers; f; f = f->fnext)
        aredis_client_set_metrics(f->c, m);
    return AREDIS_ERR_OK;
}

/* ---- Pools --------------------------------------------------------------------- */

struct aredis__mpool *aredis__metrics_pool_attach(aredis_metrics *m, aredis_pool *pool,
                                                  const char *name, size_t max) {
    mpool *mp = aredis__calloc(1, sizeof *mp);
    if (!mp) return NULL;
    mp->m = m;
    mp->pool = pool;
    mp->max = max;
    /* Unique within m: a second pool to the same place gets "#2"... */
    snprintf(mp->name, sizeof mp->name, "%s", name);
    for (unsigned k = 2;; k++) {
        const mpool *q = m->pools;
        while (q && strcmp(q->name, mp->name) != 0)
            q = q->next;
        if (!q) break;
        snprintf(mp->name, sizeof mp->name, "%.140s#%u", name, k);
    }
    mp->next = m->pools;
    if (m->pools) m->pools->prev = mp;
    m->pools = mp;
    return mp;
}

void aredis__metrics_pool_detach(struct aredis__mpool *mp) {
    if (!mp) return;
    aredis_metrics *m = mp->m;
    if (mp->prev)
        mp->prev->next = mp->next;
    else
        m->pools = mp->next;
    if (mp->next) mp->next->prev = mp->prev;
    aredis__free(mp);
}

void aredis__metrics_pool_wait(struct aredis__mpool *mp, uint64_t ns, aredis_err code) {
    hist_add(&mp->wait, ns);
    if (code == AREDIS_ERR_TIMEOUT) mp->timeouts++;
}

const char *aredis__metrics_pool_name(const struct aredis__mpool *mp) { return mp->name; }

/* ---- The object ------------------------------------------------------------------ */

aredis_metrics *aredis_metrics_new(void) { return aredis__calloc(1, sizeof(aredis_metrics)); }

void aredis_metrics_free(aredis_metrics *m) {
    if (!m) return;
    while (m->clients) {
        aredis__obs *o = m->clients;
        m->clients = o->mnext;
        o->mprev = o->mnext = NULL;
        o->m = NULL;
        o->srv = NULL;
        o->last = NULL;
        o->mgen++;
        aredis__obs_refresh(o->c);
    }
    while (m->pools) {
        mpool *mp = m->pools;
        m->pools = mp->next;
        aredis__pool_metrics_gone(mp->pool);
        aredis__free(mp);
    }
    while (m->servers) {
        mserver *s = m->servers;
        m->servers = s->next;
        for (size_t i = 0; i < s->cap; i++) {
            mname *e = s->tab[i];
            while (e) {
                mname *next = e->next;
                while (e->errs) {
                    mout *x = e->errs;
                    e->errs = x->next;
                    aredis__free(x);
                }
                aredis__free(e);
                e = next;
            }
        }
        aredis__free(s->tab);
        aredis__free(s->host);
        aredis__free(s);
    }
    aredis__free(m);
}

/* ---- Snapshots ------------------------------------------------------------------- */

static void hist_out(const mhist *h, aredis_histogram *out) {
    out->count = h->count;
    out->sum_seconds = (double)h->sum_ns / 1e9;
    uint64_t run = 0;
    for (size_t i = 0; i <= AREDIS_METRICS_BOUNDS; i++) {
        run += h->b[i];
        out->buckets[i] = run;
    }
}

static int op_cmp(const void *a, const void *b) {
    const aredis_metrics_op *x = a, *y = b;
    int r = strcmp(x->server_address, y->server_address);
    if (r) return r;
    if (x->server_port != y->server_port) return x->server_port < y->server_port ? -1 : 1;
    if ((r = strcmp(x->name, y->name))) return r;
    if (!x->error_type || !y->error_type) return !x->error_type ? (y->error_type ? -1 : 0) : 1;
    return strcmp(x->error_type, y->error_type);
}

/* Strings copied into the snapshot's block. */
typedef struct strpool {
    char *at, *end;
} strpool;

static const char *keep(strpool *sp, const char *s) {
    size_t n = strlen(s) + 1;
    if ((size_t)(sp->end - sp->at) < n) return ""; /* sized beforehand: never */
    char *d = sp->at;
    memcpy(d, s, n);
    sp->at += n;
    return d;
}

aredis_metrics_snapshot *aredis_metrics_snapshot_take(const aredis_metrics *m) {
    if (!m) return NULL;
    size_t nops = 0, nsrv = 0, npool = 0, strs = 0;
    for (const mserver *s = m->servers; s; s = s->next) {
        nsrv++;
        strs += strlen(s->host) + 1;
        for (size_t i = 0; i < s->cap; i++)
            for (const mname *e = s->tab[i]; e; e = e->next) {
                if (e->ok.count) {
                    nops++;
                    strs += strlen(e->name) + 1;
                }
                for (const mout *x = e->errs; x; x = x->next) {
                    nops++;
                    strs += strlen(e->name) + strlen(x->type) + 2;
                }
            }
    }
    for (const mpool *mp = m->pools; mp; mp = mp->next) {
        npool++;
        strs += strlen(mp->name) + 1;
    }
    /* Ops' server strings point at the server's copy: counted once. */
    size_t size = sizeof(aredis_metrics_snapshot) + nops * sizeof(aredis_metrics_op) +
                  nsrv * sizeof(aredis_metrics_server) + npool * sizeof(aredis_metrics_pool) + strs;
    aredis_metrics_snapshot *snap = aredis__calloc(1, size);
    if (!snap) return NULL;
    aredis_metrics_op *ops = (aredis_metrics_op *)(void *)(snap + 1);
    aredis_metrics_server *srv = (aredis_metrics_server *)(void *)(ops + nops);
    aredis_metrics_pool *pools = (aredis_metrics_pool *)(void *)(srv + nsrv);
    strpool sp = {(char *)(pools + npool), (char *)snap + size};
    size_t k = 0, j = 0;
    for (const mserver *s = m->servers; s; s = s->next, j++) {
        aredis_metrics_server *o = &srv[j];
        o->server_address = keep(&sp, s->host);
        o->server_port = s->port;
        o->bytes_out = s->bytes_out;
        o->bytes_in = s->bytes_in;
        o->connects = s->connects;
        o->connect_failures = s->connect_failures;
        o->reconnect_attempts = s->reconnects;
        o->timeouts = s->timeouts;
        for (const aredis__obs *c = m->clients; c; c = c->mnext) {
            if (c->srv != s) continue;
            aredis_client_stats st;
            aredis_client_get_stats(c->c, &st);
            o->bytes_out += st.bytes_out - c->base.bytes_out;
            o->bytes_in += st.bytes_in - c->base.bytes_in;
        }
        for (size_t i = 0; i < s->cap; i++)
            for (const mname *e = s->tab[i]; e; e = e->next) {
                const char *nm = NULL;
                if (e->ok.count) {
                    nm = keep(&sp, e->name);
                    ops[k] = (aredis_metrics_op){o->server_address, s->port, nm, NULL, {0}};
                    hist_out(&e->ok, &ops[k++].duration);
                }
                for (const mout *x = e->errs; x; x = x->next) {
                    const char *n2 = keep(&sp, e->name);
                    ops[k] = (aredis_metrics_op){
                        o->server_address, s->port, n2, keep(&sp, x->type), {0}};
                    hist_out(&x->h, &ops[k++].duration);
                }
            }
    }
    qsort(ops, k, sizeof *ops, op_cmp);
    j = 0;
    for (const mpool *mp = m->pools; mp; mp = mp->next, j++) {
        aredis_metrics_pool *o = &pools[j];
        o->pool_name = keep(&sp, mp->name);
        if (mp->pool) {
            aredis_pool_stats st;
            aredis_pool_get_stats(mp->pool, &st);
            o->idle = st.idle;
            o->used = st.in_use + st.checking;
            o->pending = st.waiting;
        }
        o->max = mp->max;
        o->timeouts = mp->timeouts;
        hist_out(&mp->wait, &o->wait);
    }
    snap->n_ops = k;
    snap->ops = ops;
    snap->n_servers = nsrv;
    snap->servers = srv;
    snap->n_pools = npool;
    snap->pools = pools;
    return snap;
}

void aredis_metrics_snapshot_free(aredis_metrics_snapshot *s) { aredis__free(s); }

/* ---- Merging snapshots --------------------------------------------------------- */

static void hist_sum(aredis_histogram *to, const aredis_histogram *h) {
    to->count += h->count;
    to->sum_seconds += h->sum_seconds;
    for (size_t i = 0; i <= AREDIS_METRICS_BOUNDS; i++)
        to->buckets[i] += h->buckets[i]; /* cumulative counts add up as they are */
}

static int same_str(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static size_t slen(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *keep_opt(strpool *sp, const char *s) { return s ? keep(sp, s) : NULL; }

aredis_metrics_snapshot *aredis_metrics_snapshot_merge(const aredis_metrics_snapshot *const *in,
                                                       size_t n) {
    if (!in && n) return NULL;
    size_t nops = 0, nsrv = 0, npool = 0, strs = 0;
    for (size_t k = 0; k < n; k++) {
        const aredis_metrics_snapshot *s = in[k];
        if (!s) return NULL;
        nops += s->n_ops;
        nsrv += s->n_servers;
        npool += s->n_pools;
        for (size_t i = 0; i < s->n_ops; i++)
            strs +=
                slen(s->ops[i].server_address) + slen(s->ops[i].name) + slen(s->ops[i].error_type);
        for (size_t i = 0; i < s->n_servers; i++)
            strs += slen(s->servers[i].server_address);
        for (size_t i = 0; i < s->n_pools; i++)
            strs += slen(s->pools[i].pool_name);
    }
    size_t size = sizeof(aredis_metrics_snapshot) + nops * sizeof(aredis_metrics_op) +
                  nsrv * sizeof(aredis_metrics_server) + npool * sizeof(aredis_metrics_pool) + strs;
    aredis_metrics_snapshot *m = aredis__calloc(1, size);
    if (!m) return NULL;
    aredis_metrics_op *ops = (aredis_metrics_op *)(void *)(m + 1);
    aredis_metrics_server *srv = (aredis_metrics_server *)(void *)(ops + nops);
    aredis_metrics_pool *pools = (aredis_metrics_pool *)(void *)(srv + nsrv);
    strpool sp = {(char *)(pools + npool), (char *)m + size};
    size_t no = 0, ns = 0, np = 0;
    for (size_t k = 0; k < n; k++) {
        const aredis_metrics_snapshot *s = in[k];
        for (size_t i = 0; i < s->n_ops; i++) {
            const aredis_metrics_op *o = &s->ops[i];
            size_t j = 0;
            while (j < no &&
                   !(ops[j].server_port == o->server_port &&
                     same_str(ops[j].server_address, o->server_address) &&
                     same_str(ops[j].name, o->name) && same_str(ops[j].error_type, o->error_type)))
                j++;
            if (j == no) {
                ops[no].server_address = keep_opt(&sp, o->server_address);
                ops[no].server_port = o->server_port;
                ops[no].name = keep_opt(&sp, o->name);
                ops[no++].error_type = keep_opt(&sp, o->error_type);
            }
            hist_sum(&ops[j].duration, &o->duration);
        }
        for (size_t i = 0; i < s->n_servers; i++) {
            const aredis_metrics_server *v = &s->servers[i];
            size_t j = 0;
            while (j < ns && !(srv[j].server_port == v->server_port &&
                               same_str(srv[j].server_address, v->server_address)))
                j++;
            if (j == ns) {
                srv[ns].server_address = keep_opt(&sp, v->server_address);
                srv[ns++].server_port = v->server_port;
            }
            srv[j].bytes_out += v->bytes_out;
            srv[j].bytes_in += v->bytes_in;
            srv[j].connects += v->connects;
            srv[j].connect_failures += v->connect_failures;
            srv[j].reconnect_attempts += v->reconnect_attempts;
            srv[j].timeouts += v->timeouts;
        }
        for (size_t i = 0; i < s->n_pools; i++) {
            const aredis_metrics_pool *v = &s->pools[i];
            size_t j = 0;
            while (j < np && !same_str(pools[j].pool_name, v->pool_name))
                j++;
            if (j == np) pools[np++].pool_name = keep_opt(&sp, v->pool_name);
            pools[j].idle += v->idle;
            pools[j].used += v->used;
            pools[j].pending += v->pending;
            pools[j].max += v->max;
            pools[j].timeouts += v->timeouts;
            hist_sum(&pools[j].wait, &v->wait);
        }
    }
    qsort(ops, no, sizeof *ops, op_cmp);
    m->n_ops = no;
    m->ops = ops;
    m->n_servers = ns;
    m->servers = srv;
    m->n_pools = np;
    m->pools = pools;
    return m;
}
