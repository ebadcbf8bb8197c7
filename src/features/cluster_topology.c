/*
 * Reading a cluster's topology (cluster_topology.h) from CLUSTER SHARDS or
 * CLUSTER SLOTS. Both replies are checked element by element: anything not
 * shaped as documented makes the whole reply unusable (a topology built
 * from half a reply would route commands to the wrong node).
 *
 *   CLUSTER SHARDS  one map per shard: "slots" -> [start, end, start, end,
 *                   ...], "nodes" -> [map per node: "id", "port",
 *                   "tls-port", "ip", "endpoint", "hostname", "role"
 *                   ("master" | "replica"), "replication-offset",
 *                   "health" ("online" | "failed" | "loading")]
 *                   (RESP2: the maps are flat arrays of pairs)
 *   CLUSTER SLOTS   one array per slot range: [start, end, primary,
 *                   replica...], each node [ip, port, id, {metadata}]
 */
#include "features/cluster_topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static int is_str(const aredis_reply *r) {
    return r && (r->type == AREDIS_REPLY_STRING || r->type == AREDIS_REPLY_STATUS ||
                 r->type == AREDIS_REPLY_VERB);
}

static int str_is(const aredis_reply *r, const char *s) {
    size_t n = strlen(s);
    return is_str(r) && r->len == n && memcmp(r->str, s, n) == 0;
}

/* A map: RESP3's, or RESP2's flat array of pairs. */
static int is_map(const aredis_reply *r) {
    return r &&
           (r->type == AREDIS_REPLY_MAP || (r->type == AREDIS_REPLY_ARRAY && r->elements % 2 == 0));
}

static const aredis_reply *map_get(const aredis_reply *m, const char *key) {
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (str_is(m->element[i], key)) return m->element[i + 1];
    return NULL;
}

/* An integer, or a string of digits (some fields come as either). */
static int as_int(const aredis_reply *r, long long *out) {
    if (!r) return -1;
    if (r->type == AREDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (!is_str(r) || !r->len || r->len > 18) return -1;
    long long v = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9') return -1;
        v = v * 10 + (r->str[i] - '0');
    }
    *out = v;
    return 0;
}

static aredis__ctopo *ctopo_new(void) { return aredis__calloc(1, sizeof(aredis__ctopo)); }

void aredis__ctopo_free(aredis__ctopo *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nnodes; i++)
        aredis__free(t->nodes[i].host);
    aredis__free(t->nodes);
    aredis__free(t);
}

int aredis__ctopo_find(const aredis__ctopo *t, const char *host, int port) {
    for (size_t i = 0; i < t->nnodes; i++)
        if (t->nodes[i].port == port && t->nodes[i].host && strcmp(t->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

/*
 * Add a node (or find it: the same address twice is one node). Returns its
 * index, or -1 when out of memory. `host` of n bytes: "" means the address
 * asked, "?" an unknown one (port 0: unusable).
 */
static long add_node(aredis__ctopo *t, const char *host, size_t n, const char *asked,
                     long long port, const char *id, size_t idlen, int primary) {
    char hbuf[256];
    int unknown = (n == 1 && host[0] == '?') || port <= 0 || port > 65535;
    if (n == 0) {
        host = asked;
        n = strlen(asked);
    }
    if (n >= sizeof hbuf) return -1;
    memcpy(hbuf, host, n);
    hbuf[n] = '\0';
    if (!unknown) {
        int at = aredis__ctopo_find(t, hbuf, (int)port);
        if (at >= 0) {
            if (primary) t->nodes[at].primary = 1;
            return at;
        }
    }
    aredis__cnode *nodes = aredis__realloc(t->nodes, (t->nnodes + 1) * sizeof *nodes);
    if (!nodes) return -1;
    t->nodes = nodes;
    aredis__cnode *nd = &t->nodes[t->nnodes];
    memset(nd, 0, sizeof *nd);
    nd->host = aredis__memdup0(hbuf, n);
    if (!nd->host) return -1;
    nd->port = unknown ? 0 : (int)port;
    if (id && idlen < sizeof nd->id) memcpy(nd->id, id, idlen);
    nd->primary = primary;
    nd->healthy = 1;
    nd->of = -1;
    return (long)t->nnodes++;
}

/* Slots [lo, hi] to node `at` (a primary). */
static int assign(aredis__ctopo *t, long long lo, long long hi, long at) {
    if (lo < 0 || hi >= AREDIS__SLOTS || lo > hi) return -1;
    if (at < 0 || !t->nodes[at].port) return 0; /* unusable: the slots stay unserved */
    for (long long s = lo; s <= hi; s++) {
        if (!t->owner[s]) t->covered++;
        t->owner[s] = (uint16_t)(at + 1);
    }
    return 0;
}

static aredis__ctopo *bad(aredis__ctopo *t, const char **why, const char *what) {
    aredis__ctopo_free(t);
    if (why) *why = what;
    return NULL;
}

/* ---- CLUSTER SHARDS ---------------------------------------------------------- */

aredis__ctopo *aredis__ctopo_from_shards(const aredis_reply *r, const char *asked_host, int tls,
                                         const char **why) {
    if (!r || (r->type != AREDIS_REPLY_ARRAY && r->type != AREDIS_REPLY_SET))
        return bad(NULL, why, "CLUSTER SHARDS: not an array");
    aredis__ctopo *t = ctopo_new();
    if (!t) return bad(NULL, why, "out of memory");
    for (size_t i = 0; i < r->elements; i++) {
        const aredis_reply *sh = r->element[i];
        if (!is_map(sh)) return bad(t, why, "CLUSTER SHARDS: a shard is not a map");
        const aredis_reply *slots = map_get(sh, "slots"), *nodes = map_get(sh, "nodes");
        if (!slots || !nodes || slots->type != AREDIS_REPLY_ARRAY || slots->elements % 2 ||
            nodes->type != AREDIS_REPLY_ARRAY)
            return bad(t, why, "CLUSTER SHARDS: a shard without slots or nodes");
        long prim = -1;
        size_t first = t->nnodes;
        for (size_t j = 0; j < nodes->elements; j++) {
            const aredis_reply *nd = nodes->element[j];
            if (!is_map(nd)) return bad(t, why, "CLUSTER SHARDS: a node is not a map");
            const aredis_reply *id = map_get(nd, "id"), *role = map_get(nd, "role");
            const aredis_reply *ep = map_get(nd, "endpoint"), *ip = map_get(nd, "ip");
            const aredis_reply *health = map_get(nd, "health");
            /* "port" (plain TCP) and "tls-port" are each there when the
             * node serves it: a TLS-only cluster (port 0) has only the
             * latter. A TLS client uses tls-port, a plain one port. */
            long long port = 0, tport = 0;
            int has_port = as_int(map_get(nd, "port"), &port) == 0 && port > 0;
            int has_tls = as_int(map_get(nd, "tls-port"), &tport) == 0 && tport > 0;
            if ((!has_port && !has_tls) || !is_str(role))
                return bad(t, why, "CLUSTER SHARDS: a node without port or role");
            if (tls ? has_tls : !has_port) port = tport;
            /* The endpoint is what clients should use (the IP, a hostname
             * or "?"); the IP when there is no endpoint. */
            const aredis_reply *addr = is_str(ep) ? ep : is_str(ip) ? ip : NULL;
            int primary = str_is(role, "master");
            long at = add_node(t, addr ? addr->str : "", addr ? addr->len : 0, asked_host, port,
                               is_str(id) ? id->str : NULL, is_str(id) ? id->len : 0, primary);
            if (at < 0) return bad(t, why, "out of memory");
            if (health && !str_is(health, "online")) t->nodes[at].healthy = 0;
            if (primary) prim = at;
        }
        /* Replicas point at their shard's primary. */
        for (size_t j = first; j < t->nnodes; j++)
            if (!t->nodes[j].primary) t->nodes[j].of = (int)prim;
        for (size_t j = 0; j < slots->elements; j += 2) {
            long long lo, hi;
            if (as_int(slots->element[j], &lo) != 0 || as_int(slots->element[j + 1], &hi) != 0 ||
                (prim >= 0 && assign(t, lo, hi, prim) != 0))
                return bad(t, why, "CLUSTER SHARDS: a slot range out of bounds");
        }
    }
    return t;
}

/* ---- CLUSTER SLOTS ----------------------------------------------------------- */

aredis__ctopo *aredis__ctopo_from_slots(const aredis_reply *r, const char *asked_host, int tls,
                                        const char **why) {
    (void)tls; /* the server answers with the ports of the asking connection's kind */
    if (!r || r->type != AREDIS_REPLY_ARRAY) return bad(NULL, why, "CLUSTER SLOTS: not an array");
    aredis__ctopo *t = ctopo_new();
    if (!t) return bad(NULL, why, "out of memory");
    for (size_t i = 0; i < r->elements; i++) {
        const aredis_reply *e = r->element[i];
        long long lo, hi;
        if (e->type != AREDIS_REPLY_ARRAY || e->elements < 3 || as_int(e->element[0], &lo) != 0 ||
            as_int(e->element[1], &hi) != 0)
            return bad(t, why, "CLUSTER SLOTS: a malformed slot range");
        long prim = -1;
        for (size_t j = 2; j < e->elements; j++) {
            const aredis_reply *nd = e->element[j];
            long long port;
            if (nd->type != AREDIS_REPLY_ARRAY || nd->elements < 2 || !is_str(nd->element[0]) ||
                as_int(nd->element[1], &port) != 0)
                return bad(t, why, "CLUSTER SLOTS: a malformed node");
            const aredis_reply *id = nd->elements > 2 ? nd->element[2] : NULL;
            long at = add_node(t, nd->element[0]->str, nd->element[0]->len, asked_host, port,
                               is_str(id) ? id->str : NULL, is_str(id) ? id->len : 0, j == 2);
            if (at < 0) return bad(t, why, "out of memory");
            if (j == 2)
                prim = at;
            else
                t->nodes[at].of = (int)prim;
        }
        if (assign(t, lo, hi, prim) != 0)
            return bad(t, why, "CLUSTER SLOTS: a slot range out of bounds");
    }
    return t;
}

int aredis__ctopo_node(aredis__ctopo *t, const char *host, int port, int primary) {
    long at = add_node(t, host, strlen(host), host, port, NULL, 0, primary);
    return at < 0 ? -1 : (int)at;
}

void aredis__ctopo_set_owner(aredis__ctopo *t, unsigned slot, int node) {
    slot &= AREDIS__SLOTS - 1;
    if (!t->owner[slot]) t->covered++;
    t->owner[slot] = (uint16_t)(node + 1);
}
