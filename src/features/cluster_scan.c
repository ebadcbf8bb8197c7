/*
 * SCAN over a cluster (aredis/cluster.h): the primaries' addresses are
 * taken when the first batch is asked for (after the topology is known: a
 * PING through the cluster waits for it), then each is scanned to the end
 * with an aredis_scan (features/scan.c) on its node connection, one after
 * the other. A node that left the cluster meanwhile is skipped (its slots'
 * keys are on another node, scanned or to be).
 */
#include <stdio.h>
#include <string.h>

#include "features/cluster_internal.h"
#include "proto/reply_internal.h"
#include "util/alloc.h"
#include "util/error.h"

static void scan_destroy(aredis_cluster_scan *s);

struct aredis_cluster_scan {
    aredis_cluster_scan *next; /* in the cluster's list */
    aredis_cluster *cl;        /* NULL once the cluster is freed */
    aredis_scan_opts o;
    char *match, *type; /* copies */
    char **hosts;
    int *ports;
    size_t n, at; /* nodes, and the one being scanned */
    int started;  /* the addresses are taken */
    aredis_scan *sc;
    aredis_client *sc_on; /* sc's node connection */
    int busy;
    int zombie; /* freed while its first PING was out: memory goes with it */
    aredis_cluster_scan_fn *cb;
    void *data;
};

static void fail(aredis_cluster_scan *s, aredis_client *c, aredis_err code, const char *detail) {
    aredis_error e;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.detail = detail;
    (void)c;
    s->busy = 0;
    s->cb(s, NULL, &e, s->data);
}

static void on_batch(aredis_scan *sc, const aredis_reply *batch, const aredis_error *err,
                     void *data) {
    aredis_cluster_scan *s = data;
    if (!err && aredis_scan_done(sc)) s->at++; /* this node is done: the next one next time */
    s->busy = 0;
    s->cb(s, err ? NULL : batch, err, s->data);
}

static void on_empty(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    (void)err;
    aredis_cluster_scan *s = data;
    if (s->zombie) {
        scan_destroy(s);
        return;
    }
    aredis_reply *none = aredis__reply_array_new(0);
    aredis_error e = {AREDIS_ERR_NOMEM, "out of memory", {0}};
    s->busy = 0;
    s->cb(s, none, none ? NULL : &e, s->data);
    aredis_reply_release(none);
}

/* Ask the current node for its next batch (on a fresh iterator when the
 * node is new to the scan, or its connection was made again). Nodes that
 * left the cluster are skipped (their slots' keys are elsewhere); when
 * none is left, the batch is an empty one, on a later turn. */
static aredis_err step(aredis_cluster_scan *s) {
    while (s->at < s->n && !aredis__cl_is_primary(s->cl, s->hosts[s->at], s->ports[s->at]))
        s->at++;
    if (s->at >= s->n) {
        if (s->sc) aredis_scan_free(s->sc);
        s->sc = NULL;
        return aredis_cluster_command(s->cl, on_empty, s, "PING");
    }
    aredis_client *c = aredis__cl_node_client(s->cl, s->hosts[s->at], s->ports[s->at]);
    if (!c) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    if (s->sc && (s->sc_on != c || aredis_scan_done(s->sc))) {
        aredis_scan_free(s->sc);
        s->sc = NULL;
    }
    if (!s->sc) {
        s->sc = aredis_scan_new(c, &s->o);
        s->sc_on = c;
        if (!s->sc) return aredis_call_error()->code;
    }
    return aredis_scan_next(s->sc, on_batch, s);
}

/* The topology is known (or could not be read): take the addresses. */
static void on_known(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    aredis_cluster_scan *s = data;
    if (s->zombie) { /* freed meanwhile: its callback ran then */
        scan_destroy(s);
        return;
    }
    if (err && err->code != AREDIS_ERR_SERVER) {
        fail(s, c, err->code, err->detail);
        return;
    }
    if (!s->cl) {
        fail(s, c, AREDIS_ERR_CANCELLED, "cluster freed");
        return;
    }
    enum { MAXP = 1024 };
    const char *hosts[MAXP];
    int ports[MAXP];
    size_t n = aredis__cl_primary_addrs(s->cl, hosts, ports, MAXP);
    if (n > MAXP) n = MAXP;
    s->hosts = aredis__calloc(n ? n : 1, sizeof *s->hosts);
    s->ports = aredis__calloc(n ? n : 1, sizeof *s->ports);
    if (!s->hosts || !s->ports) {
        fail(s, c, AREDIS_ERR_NOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        s->hosts[i] = aredis__strdup(hosts[i]);
        s->ports[i] = ports[i];
        if (!s->hosts[i]) {
            fail(s, c, AREDIS_ERR_NOMEM, "out of memory");
            return;
        }
        s->n++;
    }
    s->started = 1;
    if (!s->n) {
        fail(s, c, AREDIS_ERR_NOT_CONNECTED, "the cluster names no primary");
        return;
    }
    if (step(s) != AREDIS_ERR_OK)
        fail(s, c, aredis_call_error()->code, aredis_call_error()->detail);
}

aredis_cluster_scan *aredis_cluster_scan_new(aredis_cluster *cl, const aredis_scan_opts *opts) {
    if (!cl) {
        aredis__call_fail(AREDIS_ERR_INVALID, "cluster is NULL");
        return NULL;
    }
    aredis_scan_opts o;
    if (opts) {
        o = *opts;
    } else {
        memset(&o, 0, sizeof o);
        o.kind = AREDIS_SCAN_KEYS;
    }
    if (o.kind != AREDIS_SCAN_KEYS || o.key || o.cursor) {
        aredis__call_fail(AREDIS_ERR_INVALID,
                          "a cluster scan walks keys (AREDIS_SCAN_KEYS), from the start "
                          "(no cursor): HSCAN/SSCAN/ZSCAN go to the key's node "
                          "(aredis_cluster_node_for_key)");
        return NULL;
    }
    aredis_cluster_scan *s = aredis__calloc(1, sizeof *s);
    if (!s) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (o.match) {
        size_t ml = o.matchlen ? o.matchlen : strlen(o.match);
        s->match = aredis__memdup0(o.match, ml);
        o.match = s->match;
        o.matchlen = ml;
    }
    if (o.type) {
        s->type = aredis__strdup(o.type);
        o.type = s->type;
    }
    if ((opts && opts->match && !s->match) || (opts && opts->type && !s->type)) {
        aredis__free(s->match);
        aredis__free(s->type);
        aredis__free(s);
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->o = o;
    s->cl = cl;
    s->next = cl->scans;
    cl->scans = s;
    return s;
}

aredis_err aredis_cluster_scan_next(aredis_cluster_scan *s, aredis_cluster_scan_fn *cb,
                                    void *data) {
    if (!s || !cb) return aredis__call_fail(AREDIS_ERR_INVALID, "scan or callback is NULL");
    if (!s->cl) return aredis__call_fail(AREDIS_ERR_CLOSED, "cluster freed");
    if (s->busy) return aredis__call_fail(AREDIS_ERR_INVALID, "a batch is under way");
    if (aredis_cluster_scan_done(s)) return aredis__call_fail(AREDIS_ERR_INVALID, "scan done");
    s->cb = cb;
    s->data = data;
    if (!s->started) {
        aredis_err e = aredis_cluster_command(s->cl, on_known, s, "PING");
        if (e == AREDIS_ERR_OK) s->busy = 1;
        return e;
    }
    s->busy = 1;
    aredis_err e = step(s);
    if (e != AREDIS_ERR_OK) s->busy = 0;
    return e;
}

int aredis_cluster_scan_done(const aredis_cluster_scan *s) {
    return !s || (s->started && s->at >= s->n);
}

int aredis_cluster_scan_busy(const aredis_cluster_scan *s) { return s && s->busy; }

void aredis__cl_scans_detach(aredis_cluster *cl) {
    aredis_cluster_scan *s = cl->scans;
    cl->scans = NULL;
    while (s) {
        /* Freeing the iterator runs the batch's callback, which may free
         * s: nothing of s is used after it. */
        aredis_cluster_scan *next = s->next;
        aredis_scan *sc = s->sc;
        s->sc = NULL;
        s->cl = NULL;
        s->next = NULL;
        if (sc) aredis_scan_free(sc);
        s = next;
    }
}

void aredis_cluster_scan_free(aredis_cluster_scan *s) {
    if (!s || s->zombie) return;
    if (s->cl) {
        aredis_cluster_scan **pp = &s->cl->scans;
        while (*pp && *pp != s)
            pp = &(*pp)->next;
        if (*pp) *pp = s->next;
        s->cl = NULL;
    }
    if (s->busy && !s->sc) {
        /* Its PING (waiting for the topology) still names it: the callback
         * runs now, as for a batch in flight, and the memory goes when the
         * PING comes back. */
        s->zombie = 1;
        fail(s, NULL, AREDIS_ERR_CANCELLED, "scan freed");
        return;
    }
    scan_destroy(s);
}

static void scan_destroy(aredis_cluster_scan *s) {
    if (s->sc) aredis_scan_free(s->sc);
    for (size_t i = 0; i < s->n; i++)
        aredis__free(s->hosts[i]);
    aredis__free(s->hosts);
    aredis__free(s->ports);
    aredis__free(s->match);
    aredis__free(s->type);
    aredis__free(s);
}
