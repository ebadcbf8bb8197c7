/*
 * The store behind client-side caching (cache_store.h): two hash tables —
 * entries by their command's bytes, and the Redis keys they read — one
 * least-recently-used list over the entries, and per key its entries, its
 * invalidation count and its reads in flight.
 */
#include "features/cache_store.h"

#include <string.h>

#include "util/alloc.h"
#include "util/hash.h"

typedef struct centry {
    struct centry *hnext;         /* in the entries' hash chain */
    struct centry *lprev, *lnext; /* LRU: head most recent */
    struct centry *kprev, *knext; /* in its key's list */
    aredis__ckey *key;
    void *value;
    size_t size; /* accounted: value + this record */
    uint64_t expires;
    uint64_t h;
    size_t cmdlen;
    char cmd[];
} centry;

struct aredis__ckey {
    struct aredis__ckey *hnext;
    centry *entries;
    uint64_t seq;    /* invalidations seen */
    size_t inflight; /* reads begun, not completed or aborted */
    uint64_t h;
    size_t len;
    char name[];
};

struct aredis__cstore {
    aredis__cstore_limits lim;
    void (*free_value)(void *value);
    centry **etab;
    size_t ecap;
    aredis__ckey **ktab;
    size_t kcap, nkeys;
    centry *lru_head, *lru_tail;
    uint64_t flushes;
    aredis__cstore_stats st;
};

aredis__cstore *aredis__cstore_new(const aredis__cstore_limits *limits,
                                   void (*free_value)(void *value)) {
    aredis__cstore *s = aredis__calloc(1, sizeof *s);
    if (!s) return NULL;
    if (limits) s->lim = *limits;
    s->free_value = free_value;
    s->ecap = s->kcap = 64;
    s->etab = aredis__calloc(s->ecap, sizeof *s->etab);
    s->ktab = aredis__calloc(s->kcap, sizeof *s->ktab);
    if (!s->etab || !s->ktab) {
        aredis__free(s->etab);
        aredis__free(s->ktab);
        aredis__free(s);
        return NULL;
    }
    return s;
}

/* ---- Keys ---------------------------------------------------------------- */

static aredis__ckey **key_slot(aredis__cstore *s, const char *name, size_t len, uint64_t h) {
    aredis__ckey **at = &s->ktab[h & (s->kcap - 1)];
    while (*at && !((*at)->h == h && (*at)->len == len && memcmp((*at)->name, name, len) == 0))
        at = &(*at)->hnext;
    return at;
}

static void keys_grow(aredis__cstore *s) {
    size_t cap = s->kcap * 2;
    aredis__ckey **tab = aredis__calloc(cap, sizeof *tab);
    if (!tab) return; /* longer chains: still correct */
    for (size_t i = 0; i < s->kcap; i++)
        for (aredis__ckey *k = s->ktab[i], *next; k; k = next) {
            next = k->hnext;
            k->hnext = tab[k->h & (cap - 1)];
            tab[k->h & (cap - 1)] = k;
        }
    aredis__free(s->ktab);
    s->ktab = tab;
    s->kcap = cap;
}

/* Free k when nothing needs it any more: no entry, no read in flight. */
static void key_release(aredis__cstore *s, aredis__ckey *k) {
    if (k->entries || k->inflight) return;
    aredis__ckey **at = key_slot(s, k->name, k->len, k->h);
    if (*at == k) *at = k->hnext;
    s->nkeys--;
    aredis__free(k);
}

/* ---- Entries -------------------------------------------------------------- */

static centry **entry_slot(aredis__cstore *s, const char *cmd, size_t len, uint64_t h) {
    centry **at = &s->etab[h & (s->ecap - 1)];
    while (*at && !((*at)->h == h && (*at)->cmdlen == len && memcmp((*at)->cmd, cmd, len) == 0))
        at = &(*at)->hnext;
    return at;
}

static void entries_grow(aredis__cstore *s) {
    size_t cap = s->ecap * 2;
    centry **tab = aredis__calloc(cap, sizeof *tab);
    if (!tab) return;
    for (size_t i = 0; i < s->ecap; i++)
        for (centry *e = s->etab[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = tab[e->h & (cap - 1)];
            tab[e->h & (cap - 1)] = e;
        }
    aredis__free(s->etab);
    s->etab = tab;
    s->ecap = cap;
}

static void lru_unlink(aredis__cstore *s, centry *e) {
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        s->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        s->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push_head(aredis__cstore *s, centry *e) {
    e->lprev = NULL;
    e->lnext = s->lru_head;
    if (s->lru_head) s->lru_head->lprev = e;
    s->lru_head = e;
    if (!s->lru_tail) s->lru_tail = e;
}

/* Take e out of everything and free it; its key goes too when unneeded
 * (unless `keep_key`). */
static void entry_drop(aredis__cstore *s, centry *e, int keep_key) {
    centry **at = entry_slot(s, e->cmd, e->cmdlen, e->h);
    if (*at == e) *at = e->hnext;
    lru_unlink(s, e);
    aredis__ckey *k = e->key;
    if (e->kprev)
        e->kprev->knext = e->knext;
    else
        k->entries = e->knext;
    if (e->knext) e->knext->kprev = e->kprev;
    s->st.entries--;
    s->st.bytes -= e->size;
    if (s->free_value) s->free_value(e->value);
    aredis__free(e);
    if (!keep_key) key_release(s, k);
}

void *aredis__cstore_get(aredis__cstore *s, const char *cmd, size_t cmdlen, uint64_t now) {
    centry *e = *entry_slot(s, cmd, cmdlen, aredis__hash(0, cmd, cmdlen));
    if (e && e->expires && now >= e->expires) {
        s->st.expirations++;
        entry_drop(s, e, 0);
        e = NULL;
    }
    if (!e) {
        s->st.misses++;
        return NULL;
    }
    s->st.hits++;
    if (s->lru_head != e) {
        lru_unlink(s, e);
        lru_push_head(s, e);
    }
    return e->value;
}

/* ---- Reads in flight ---------------------------------------------------------- */

int aredis__cstore_begin(aredis__cstore *s, const char *key, size_t keylen, aredis__ctoken *t) {
    uint64_t h = aredis__hash(0, key, keylen);
    aredis__ckey **at = key_slot(s, key, keylen, h);
    aredis__ckey *k = *at;
    if (!k) {
        k = aredis__calloc(1, sizeof *k + keylen + 1);
        if (!k) return -1;
        k->h = h;
        k->len = keylen;
        memcpy(k->name, key, keylen);
        *at = k;
        if (++s->nkeys * 4 > s->kcap * 3) keys_grow(s);
    }
    k->inflight++;
    t->key = k;
    t->seq = k->seq;
    t->flushes = s->flushes;
    return 0;
}

void aredis__cstore_abort(aredis__cstore *s, aredis__ctoken *t) {
    aredis__ckey *k = t->key;
    t->key = NULL;
    if (!k) return;
    k->inflight--;
    key_release(s, k);
}

int aredis__cstore_complete(aredis__cstore *s, aredis__ctoken *t, const char *cmd, size_t cmdlen,
                            void *value, size_t size, uint64_t now) {
    aredis__ckey *k = t->key;
    size_t total = size + sizeof(centry) + cmdlen;
    /* Invalidated (or flushed) while in flight: the value may be older
     * than what the server told us about. Or bigger than the budget. */
    if (!k || k->seq != t->seq || s->flushes != t->flushes ||
        (s->lim.max_bytes && total > s->lim.max_bytes)) {
        s->st.not_stored++;
        if (s->free_value) s->free_value(value);
        aredis__cstore_abort(s, t);
        return 0;
    }
    uint64_t h = aredis__hash(0, cmd, cmdlen);
    centry *old = *entry_slot(s, cmd, cmdlen, h);
    if (old) entry_drop(s, old, 1); /* k stays: its read is still counted */
    /* Room: the least recently used go first (k is held by its read). */
    while (s->lru_tail && ((s->lim.max_entries && s->st.entries >= s->lim.max_entries) ||
                           (s->lim.max_bytes && s->st.bytes + total > s->lim.max_bytes))) {
        s->st.evictions++;
        entry_drop(s, s->lru_tail, 0);
    }
    centry *e = aredis__malloc(sizeof *e + cmdlen);
    if (!e) {
        s->st.not_stored++;
        if (s->free_value) s->free_value(value);
        aredis__cstore_abort(s, t);
        return 0;
    }
    e->key = k;
    e->value = value;
    e->size = total;
    e->expires = s->lim.ttl_ms ? now + s->lim.ttl_ms : 0;
    e->h = h;
    e->cmdlen = cmdlen;
    memcpy(e->cmd, cmd, cmdlen);
    centry **at = &s->etab[h & (s->ecap - 1)];
    e->hnext = *at;
    *at = e;
    lru_push_head(s, e);
    e->kprev = NULL;
    e->knext = k->entries;
    if (k->entries) k->entries->kprev = e;
    k->entries = e;
    s->st.entries++;
    s->st.bytes += total;
    if (s->st.entries * 4 > s->ecap * 3) entries_grow(s);
    aredis__cstore_abort(s, t); /* the read is over (k has an entry now) */
    return 1;
}

/* ---- Invalidation ------------------------------------------------------------- */

void aredis__cstore_invalidate(aredis__cstore *s, const char *key, size_t keylen) {
    aredis__ckey *k = *key_slot(s, key, keylen, aredis__hash(0, key, keylen));
    if (!k) return; /* nothing cached, nothing in flight */
    k->seq++;
    while (k->entries) {
        s->st.invalidations++;
        entry_drop(s, k->entries, 1);
    }
    key_release(s, k);
}

void aredis__cstore_flush(aredis__cstore *s) {
    s->flushes++;
    while (s->lru_head) {
        s->st.invalidations++;
        entry_drop(s, s->lru_head, 0);
    }
}

void aredis__cstore_get_stats(const aredis__cstore *s, aredis__cstore_stats *out) { *out = s->st; }

void aredis__cstore_free(aredis__cstore *s) {
    if (!s) return;
    while (s->lru_head)
        entry_drop(s, s->lru_head, 1);
    for (size_t i = 0; i < s->kcap; i++)
        for (aredis__ckey *k = s->ktab[i], *next; k; k = next) {
            next = k->hnext;
            aredis__free(k);
        }
    aredis__free(s->ktab);
    aredis__free(s->etab);
    aredis__free(s);
}
