/*
 * Client-side caching (aredis/cache.h): the policy around the store
 * (cache_store.c) and the client's hooks (client/feature.h).
 *
 *   which commands    the allow-list (a bit per built-in command), one key
 *                     per call; in BCAST mode only keys under a prefix
 *   a hit             the stored reply, delivered by the client on the next
 *                     loop turn (a record in its `hits` queue)
 *   a miss            sent with a wrapper around its callback that stores
 *                     its reply if the store's token says nothing
 *                     invalidated the key meanwhile (OPTIN: sent behind
 *                     CLIENT CACHING YES, the two as one batch)
 *   a write           drops its keys when issued and when answered
 *   an invalidation   the server's push (client/push.c): the key's entries
 *                     go, and reads in flight of it will not be stored
 *   a lost connection everything goes (client.c's teardown)
 */
#include <stdio.h>
#include <string.h>

#include "aredis/cache.h"
#include "client/feature.h"
#include "features/cache_store.h"
#include "proto/cmdtable.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fork.h"

struct aredis_cache {
    unsigned refs;
    aredis_loop *loop; /* of the first client: the only one allowed */
    aredis__cstore *store;
    aredis_cache_mode mode;
    char **prefixes; /* BCAST, copies */
    size_t *plens, nprefixes;
    aredis_cache_invalidate_fn *on_invalidate;
    void *data;
    size_t max_value;  /* a reply bigger than this is not stored */
    uint32_t ttl_ms;   /* the clock is read only when entries expire */
    unsigned fork_gen; /* the process it was last used in (fork_check) */
    uint64_t stores, inval_msgs, flushes;
    uint64_t refused;     /* replies not offered to the store: errors, too big */
    unsigned char *allow; /* a bit per entry of the built-in command table */
};

/* The default allow-list: read-only, single-key, deterministic. */
static const char *const default_allow[] = {"GET",
                                            "GETRANGE",
                                            "STRLEN",
                                            "GETBIT",
                                            "BITCOUNT",
                                            "BITPOS",
                                            "EXISTS",
                                            "TYPE",
                                            "HGET",
                                            "HMGET",
                                            "HGETALL",
                                            "HEXISTS",
                                            "HLEN",
                                            "HKEYS",
                                            "HVALS",
                                            "HSTRLEN",
                                            "SMEMBERS",
                                            "SISMEMBER",
                                            "SMISMEMBER",
                                            "SCARD",
                                            "ZSCORE",
                                            "ZMSCORE",
                                            "ZCARD",
                                            "ZCOUNT",
                                            "ZLEXCOUNT",
                                            "ZRANK",
                                            "ZREVRANK",
                                            "ZRANGE",
                                            "ZRANGEBYSCORE",
                                            "ZRANGEBYLEX",
                                            "ZREVRANGE",
                                            "ZREVRANGEBYSCORE",
                                            "ZREVRANGEBYLEX",
                                            "LRANGE",
                                            "LLEN",
                                            "LINDEX",
                                            "LPOS",
                                            "XLEN",
                                            "XRANGE",
                                            "XREVRANGE",
                                            "GEOPOS",
                                            "GEODIST",
                                            "GEOHASH"};

static void fork_check(aredis_cache *k);

/* ---- Lifecycle ------------------------------------------------------------ */

static void free_reply(void *v) { aredis_reply_release(v); }

static void cache_destroy(aredis_cache *k) {
    aredis__cstore_free(k->store);
    for (size_t i = 0; i < k->nprefixes; i++)
        aredis__free(k->prefixes[i]);
    aredis__free(k->prefixes);
    aredis__free(k->plens);
    aredis__free(k->allow);
    aredis__free(k);
}

/* The allow-list: a bit per entry of the built-in table. */
static int allow_has(const aredis_cache *k, size_t at) {
    return (k->allow[at / 8] >> (at % 8)) & 1u;
}
static void allow_set(aredis_cache *k, size_t at, int on) {
    if (on)
        k->allow[at / 8] |= (unsigned char)(1u << (at % 8));
    else
        k->allow[at / 8] &= (unsigned char)~(1u << (at % 8));
}

/* The built-in table's entry of a command name, or NULL. */
static const aredis__cmdinfo *builtin(const char *name, size_t n, size_t *index) {
    aredis__arg a = {name, n};
    const aredis__cmdinfo *ci = aredis__cmd_lookup(NULL, &a, 1);
    if (!ci || ci < aredis__cmdtable_builtin ||
        ci >= aredis__cmdtable_builtin + aredis__cmdtable_count)
        return NULL; /* unknown, or a subcommand */
    *index = (size_t)(ci - aredis__cmdtable_builtin);
    return ci;
}

static const char *invalid(const aredis_cache_options *o) {
    if (!o->max_bytes && !o->max_entries)
        return "max_bytes and max_entries are both 0: the cache would grow without bound";
    if (o->mode != AREDIS_CACHE_DEFAULT && o->mode != AREDIS_CACHE_BCAST &&
        o->mode != AREDIS_CACHE_OPTIN)
        return "mode is not an aredis_cache_mode";
    if (o->mode != AREDIS_CACHE_BCAST && (o->prefixes || o->nprefixes))
        return "prefixes are for AREDIS_CACHE_BCAST only";
    if (o->nprefixes && !o->prefixes) return "nprefixes without prefixes";
    for (size_t i = 0; i < o->nprefixes; i++)
        if (!o->prefixes[i]) return "a prefix is NULL";
    if (o->nprefixes > 64) return "more than 64 prefixes";
    /* The server refuses overlapping prefixes ("a" and "ab"): say it now. */
    for (size_t i = 0; i < o->nprefixes; i++)
        for (size_t j = 0; j < o->nprefixes; j++)
            if (i != j && strncmp(o->prefixes[i], o->prefixes[j], strlen(o->prefixes[i])) == 0)
                return "two prefixes overlap (one starts with the other, or they are equal)";
    return NULL;
}

aredis_cache *aredis_cache_new(const aredis_cache_options *opts) {
    aredis_cache_options def = AREDIS_CACHE_OPTIONS_INIT;
    if (!opts) opts = &def;
    const char *bad = invalid(opts);
    if (bad) {
        aredis__call_fail(AREDIS_ERR_INVALID, "invalid cache options: %s", bad);
        return NULL;
    }
    aredis_cache *k = aredis__calloc(1, sizeof *k);
    if (!k) goto nomem;
    k->refs = 1;
    k->mode = opts->mode;
    k->on_invalidate = opts->on_invalidate;
    k->data = opts->data;
    k->max_value = opts->max_bytes ? opts->max_bytes / 4 : SIZE_MAX;
    k->ttl_ms = opts->ttl_ms;
    k->fork_gen = aredis__fork_generation();
    aredis__cstore_limits lim = {opts->max_bytes, opts->max_entries, opts->ttl_ms};
    k->store = aredis__cstore_new(&lim, free_reply);
    k->allow = aredis__calloc(aredis__cmdtable_count / 8 + 1, 1);
    if (!k->store || !k->allow) goto nomem;
    if (opts->nprefixes) {
        k->prefixes = aredis__calloc(opts->nprefixes, sizeof *k->prefixes);
        k->plens = aredis__calloc(opts->nprefixes, sizeof *k->plens);
        if (!k->prefixes || !k->plens) goto nomem;
        for (; k->nprefixes < opts->nprefixes; k->nprefixes++) {
            size_t i = k->nprefixes, n = strlen(opts->prefixes[i]);
            if (!(k->prefixes[i] = aredis__memdup0(opts->prefixes[i], n))) goto nomem;
            k->plens[i] = n;
        }
    }
    for (size_t i = 0; i < sizeof default_allow / sizeof *default_allow; i++) {
        size_t at;
        if (builtin(default_allow[i], strlen(default_allow[i]), &at)) allow_set(k, at, 1);
    }
    return k;
nomem:
    if (k) cache_destroy(k);
    aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    return NULL;
}

void aredis_cache_free(aredis_cache *k) {
    if (k && --k->refs == 0) cache_destroy(k);
}

aredis_cache *aredis__csc_ref(aredis_cache *k) {
    if (k) k->refs++;
    return k;
}

aredis_err aredis__csc_bind(aredis_cache *k, aredis_loop *loop) {
    if (k->loop && k->loop != loop)
        return aredis__call_fail(AREDIS_ERR_INVALID,
                                 "invalid options: the cache belongs to another loop's clients");
    k->loop = loop;
    return AREDIS_ERR_OK;
}

/* ---- The allow-list --------------------------------------------------------- */

aredis_err aredis_cache_allow(aredis_cache *k, const char *command) {
    if (!k || !command) return aredis__call_fail(AREDIS_ERR_INVALID, "cache or command is NULL");
    size_t at;
    const aredis__cmdinfo *ci = builtin(command, strlen(command), &at);
    if (!ci)
        return aredis__call_fail(AREDIS_ERR_INVALID, "%.64s: not a command the table knows",
                                 command);
    if (!(ci->flags & AREDIS__CF_READONLY) || (ci->flags & AREDIS__CF_BLOCKING) ||
        ci->first_key <= 0 || (ci->flags & AREDIS__CF_MOVABLEKEYS))
        return aredis__call_fail(AREDIS_ERR_INVALID,
                                 "%.64s: only read-only, non-blocking commands that read a key "
                                 "can be cached",
                                 command);
    allow_set(k, at, 1);
    return AREDIS_ERR_OK;
}

aredis_err aredis_cache_deny(aredis_cache *k, const char *command) {
    if (!k || !command) return aredis__call_fail(AREDIS_ERR_INVALID, "cache or command is NULL");
    size_t at;
    if (!builtin(command, strlen(command), &at))
        return aredis__call_fail(AREDIS_ERR_INVALID, "%.64s: not a command the table knows",
                                 command);
    if (allow_has(k, at)) {
        allow_set(k, at, 0);
        /* Its replies are keyed by their bytes, not by command: simplest
         * to let them all go. */
        aredis_cache_clear(k);
    }
    return AREDIS_ERR_OK;
}

int aredis_cache_allowed(const aredis_cache *k, const char *command) {
    size_t at;
    return k && command && builtin(command, strlen(command), &at) && allow_has(k, at);
}

/* ---- Invalidation --------------------------------------------------------- */

static void tell(aredis_cache *k, const char *key, size_t len) {
    if (k->on_invalidate) k->on_invalidate(k, key, len, k->data);
}

static void flush_quiet(aredis_cache *k) {
    k->flushes++;
    aredis__cstore_flush(k->store);
}

static void flush(aredis_cache *k) {
    flush_quiet(k);
    tell(k, NULL, 0);
}

void aredis_cache_clear(aredis_cache *k) {
    if (k) flush(k);
}

void aredis__csc_told(aredis_cache *k) { tell(k, NULL, 0); }

void aredis__csc_flush(aredis_cache *k) { flush_quiet(k); }

/* The server says key changed: drop it, and tell the application. */
static void invalidate(aredis_cache *k, const char *key, size_t len) {
    aredis__cstore_invalidate(k->store, key, len);
    tell(k, key, len);
}

/* This client writes key: drop it, silently (it may be inside the call
 * that issued the write, where no callback may run). */
static void drop_own(aredis_cache *k, const char *key, size_t len) {
    aredis__cstore_invalidate(k->store, key, len);
}

void aredis__csc_push(aredis_cache *k, const aredis_reply *r) {
    fork_check(k);
    /* ["invalidate", [key, ...]] or ["invalidate", nil] (FLUSHALL...);
     * ["tracking-redir-broken", id]: everything. */
    const aredis_reply *keys = r->elements >= 2 ? r->element[1] : NULL;
    if (r->element[0]->len != 10 || !keys ||
        (keys->type != AREDIS_REPLY_ARRAY && keys->type != AREDIS_REPLY_SET)) {
        k->inval_msgs++;
        flush(k);
        return;
    }
    for (size_t i = 0; i < keys->elements; i++) {
        const aredis_reply *e = keys->element[i];
        k->inval_msgs++;
        if (e->type == AREDIS_REPLY_STRING || e->type == AREDIS_REPLY_STATUS)
            invalidate(k, e->str, e->len);
        else
            flush(k); /* not a key we could match: be safe */
    }
}

/* ---- Commands --------------------------------------------------------------- */

/* A reply's memory, as the budget counts it. */
static size_t reply_size(const aredis_reply *r) {
    size_t n = sizeof *r + r->len + 1;
    for (size_t i = 0; i < r->elements; i++)
        n += sizeof(void *) + reply_size(r->element[i]);
    if (r->attribute) n += reply_size(r->attribute);
    return n;
}

/*
 * What a cacheable read carries from issue to reply: the caller's callback,
 * the store's token, and the bytes it is cached under (the database, then
 * the encoded command).
 */
enum { CTX_READ = 1, CTX_WRITE, CTX_SELECT };

typedef struct cctx {
    int kind;
    aredis_reply_fn *cb;
    void *data;
    aredis_cache *cache; /* a reference */
    aredis__ctoken tok;
    aredis_reply *reply; /* OPTIN: the read's reply, kept until done */
    unsigned strip;      /* OPTIN: what to strip from it */
    int nostore;         /* OPTIN: CLIENT CACHING YES was refused */
    size_t len;
    char buf[];
} cctx;

/* A write (or several: a batch): the keys it wrote, to drop again when it
 * is answered, or `all` of them (an EXEC, keys that cannot be known). */
typedef struct wctx {
    int kind;
    aredis_reply_fn *cb;
    void *data;
    aredis_cache *cache; /* a reference */
    int all;
    size_t nkeys, len, cap;
    char *keys; /* each [size_t len][bytes] */
} wctx;

/* A SELECT: the database the connection is on once it is answered. */
typedef struct sctx {
    int kind;
    aredis_reply_fn *cb;
    void *data;
    int db; /* -1: not a database number */
} sctx;

static void ctx_free(cctx *x) {
    aredis_cache_free(x->cache);
    aredis__free(x);
}

static void wctx_free(wctx *w) {
    aredis_cache_free(w->cache);
    aredis__free(w->keys);
    aredis__free(w);
}

static void store(aredis_client *c, cctx *x, aredis_reply *r) {
    aredis_cache *k = x->cache;
    size_t size = reply_size(r);
    if (size > k->max_value || r->type == AREDIS_REPLY_ERROR || x->nostore) {
        aredis__cstore_abort(k->store, &x->tok);
        k->refused++;
        return;
    }
    if (aredis__cstore_complete(k->store, &x->tok, x->buf, x->len, aredis_reply_retain(r), size,
                                k->ttl_ms ? aredis__client_now(c) : 0))
        k->stores++;
}

static void on_read(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    cctx *x = data;
    if (r && (!err || err->code == AREDIS_ERR_SERVER))
        store(c, x, r); /* an error reply is counted, not stored */
    else
        aredis__cstore_abort(x->cache->store, &x->tok);
    aredis_reply_fn *cb = x->cb;
    void *d = x->data;
    ctx_free(x);
    if (cb) cb(c, r, err, d);
}

/* Drop again what a write wrote (its reply came, or it failed). */
static void written(wctx *w) {
    if (w->all) {
        flush_quiet(w->cache);
        return;
    }
    const char *p = w->keys;
    for (size_t i = 0; i < w->nkeys; i++) {
        size_t n;
        memcpy(&n, p, sizeof n);
        drop_own(w->cache, p + sizeof n, n);
        p += sizeof n + n;
    }
}

static void on_write(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    wctx *w = data;
    written(w); /* again: a read another connection ran before it may have been stored */
    aredis_reply_fn *cb = w->cb;
    void *d = w->data;
    wctx_free(w);
    if (cb) cb(c, r, err, d);
}

static void on_select(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    sctx *x = data;
    aredis__csc_conn *cs = aredis__client_csc(c);
    cs->selecting--;
    if (!err && r && r->type == AREDIS_REPLY_STATUS)
        cs->db = x->db; /* a reply is the connection's now */
    else if (!(err && err->code == AREDIS_ERR_SERVER))
        cs->db = -1; /* timed out, cancelled, lost: it may have run, or still run */
    aredis_reply_fn *cb = x->cb;
    void *d = x->data;
    aredis__free(x);
    if (cb) cb(c, r, err, d);
}

/* OPTIN: CLIENT CACHING YES and the read, one batch. */
static void optin_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    cctx *x = data;
    if (i == 0) {
        if (r->type == AREDIS_REPLY_ERROR) x->nostore = 1;
        return;
    }
    aredis__strip_reply(c, r, x->strip);
    x->reply = aredis_reply_retain(r);
}

static void optin_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    cctx *x = data;
    aredis_reply *got = x->reply;
    aredis_reply_fn *cb = x->cb;
    void *d = x->data;
    if (!err && got)
        store(c, x, got);
    else
        aredis__cstore_abort(x->cache->store, &x->tok);
    ctx_free(x);
    aredis__deliver(c, cb, d, err ? NULL : got, err);
    aredis_reply_release(got);
}

static int bcast_match(const aredis_cache *k, const char *cprefix, size_t cplen, const char *key,
                       size_t n) {
    if (k->mode != AREDIS_CACHE_BCAST || !k->nprefixes) return 1;
    if (n < cplen || (cplen && memcmp(key, cprefix, cplen) != 0)) return 0;
    key += cplen;
    n -= cplen;
    for (size_t i = 0; i < k->nprefixes; i++)
        if (n >= k->plens[i] && memcmp(key, k->prefixes[i], k->plens[i]) == 0) return 1;
    return 0;
}

/* The write record to add to (made at the first write: NULL when out of
 * memory, then the keys are dropped once, at issue). */
static wctx *wctx_get(aredis_cache *k, wctx **acc) {
    if (!*acc && (*acc = aredis__calloc(1, sizeof **acc))) {
        (*acc)->kind = CTX_WRITE;
        (*acc)->cache = aredis__csc_ref(k);
    }
    return *acc;
}

static void wctx_add(wctx *w, const char *key, size_t n) {
    if (!w || w->all) return;
    size_t need = w->len + sizeof n + n;
    if (need > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        while (cap < need)
            cap *= 2;
        char *b = aredis__realloc(w->keys, cap);
        if (!b) {
            w->all = 1; /* cannot remember them: empty it all then */
            return;
        }
        w->keys = b;
        w->cap = cap;
    }
    memcpy(w->keys + w->len, &n, sizeof n);
    memcpy(w->keys + w->len + sizeof n, key, n);
    w->len = need;
    w->nkeys++;
}

/* A write whose keys cannot be known: everything goes now, and again when
 * it is answered. */
static void writes_anything(aredis_cache *k, wctx **acc) {
    flush_quiet(k);
    wctx *w = wctx_get(k, acc);
    if (w) w->all = 1;
}

#define ARGS_MAX 256

/* A command that would leave the cache blind: CLIENT TRACKING/CACHING
 * (the tracking is the cache's), HELLO to another protocol (RESP2 has no
 * invalidations in band). Refused, saying why. */
static int blinds(const aredis__arg *args, size_t nargs) {
    if (nargs >= 2 && aredis__ieq(args[0].p, args[0].n, "CLIENT") &&
        (aredis__ieq(args[1].p, args[1].n, "TRACKING") ||
         aredis__ieq(args[1].p, args[1].n, "CACHING"))) {
        aredis__call_fail(AREDIS_ERR_UNSUPPORTED,
                          "CLIENT %.*s: the client's cache (aredis_options.cache) manages "
                          "tracking on this connection",
                          (int)args[1].n, args[1].p);
        return 1;
    }
    if (nargs >= 2 && aredis__ieq(args[0].p, args[0].n, "HELLO") &&
        !(args[1].n == 1 && args[1].p[0] == '3')) {
        aredis__call_fail(AREDIS_ERR_UNSUPPORTED,
                          "HELLO %.*s: a client with a cache (aredis_options.cache) must stay "
                          "on RESP3, where invalidations arrive",
                          (int)(args[1].n < 8 ? args[1].n : 8), args[1].p);
        return 1;
    }
    return 0;
}

/* In a forked child the entries were tracked by the parent's connections:
 * nothing will invalidate them here. Emptied, silently, at first use. */
static void fork_check(aredis_cache *k) {
    if (__builtin_expect(k->fork_gen != aredis__fork_current(), 0)) {
        k->fork_gen = aredis__fork_current();
        flush_quiet(k);
    }
}

/*
 * What a command other than a cached read changes: a write drops its keys
 * now and notes them in *acc to drop again when answered; one whose keys
 * cannot be known (FLUSHDB, SWAPDB, SORT ... STORE, too many arguments)
 * empties the cache now and when answered; a write queued in a MULTI makes
 * its EXEC empty the cache when answered (the writes happen then); a
 * SELECT the cache cannot follow (in a MULTI or a batch) stops caching on
 * this connection until one it can.
 */
static void note_command(aredis_client *c, aredis_cache *k, const aredis__cmdinfo *ci,
                         const aredis__arg *args, long na, int in_multi, wctx **acc) {
    size_t nargs = na > ARGS_MAX ? ARGS_MAX : (size_t)na;
    if (!ci) {
        /* A command no table knows (a module's, a renamed one, one newer
         * than the tables: load_commands helps): it may write anything. */
        if (in_multi) aredis__client_csc(c)->multi_wrote = 1;
        writes_anything(k, acc);
        return;
    }
    if (aredis__ieq(args[0].p, args[0].n, "SELECT")) { /* in a MULTI or a batch */
        aredis__client_csc(c)->db = -1;
        return;
    }
    if (!(ci->flags & (AREDIS__CF_WRITE | AREDIS__CF_MAY_REPLICATE))) return;
    if (in_multi) aredis__client_csc(c)->multi_wrote = 1; /* EXEC drops everything */
    int pos[64];
    int n = na > ARGS_MAX ? -1 : aredis__cmd_keys(ci, args, nargs, pos, 64);
    if (n == 0 && !(ci->flags & AREDIS__CF_WRITE)) return; /* PUBLISH, EVAL "..." 0 */
    if (n <= 0 || n > 64) {
        writes_anything(k, acc);
        return;
    }
    wctx *w = wctx_get(k, acc);
    for (int i = 0; i < n; i++) {
        drop_own(k, args[pos[i]].p, args[pos[i]].n);
        wctx_add(w, args[pos[i]].p, args[pos[i]].n);
    }
}

/* A plain SELECT (not in a MULTI): caching pauses until it is answered,
 * then follows it. */
static int wrap_select(aredis_client *c, const aredis__arg *args, long na, aredis_reply_fn **cb,
                       void **data) {
    aredis__csc_conn *cs = aredis__client_csc(c);
    sctx *x = aredis__calloc(1, sizeof *x);
    if (!x) {
        cs->db = -1;
        return 0;
    }
    x->kind = CTX_SELECT;
    x->db = na == 2 ? aredis__db_number(args[1].p, args[1].n) : -1;
    x->cb = *cb;
    x->data = *data;
    cs->selecting++;
    *cb = on_select;
    *data = x;
    return 1;
}

/* One encoded command's arguments (the first ARGS_MAX; *na their count,
 * < 1 for bytes that are not a command) and its table entry: the built-in
 * table's, else the server's (load_commands), else NULL. */
static const aredis__cmdinfo *parse(aredis_client *c, aredis_cache *k, const char *bytes,
                                    size_t len, aredis__arg *args, long *na) {
    *na = aredis__resp_args(bytes, len, args, ARGS_MAX);
    if (*na < 1) return NULL;
    size_t nargs = *na > ARGS_MAX ? ARGS_MAX : (size_t)*na;
    fork_check(k);
    const aredis__cmdinfo *ci = aredis__cmd_lookup(NULL, args, nargs);
    return ci ? ci : aredis__cmd_lookup(aredis__client_cmdtable(c), args, nargs);
}

/*
 * A user command, encoded (client/feature.h). The common case — a cached
 * GET — parses two arguments, looks the name up once, and the store once.
 */
int aredis__csc_command(aredis_client *c, aredis_cache *k, const char *bytes, size_t len,
                        int in_multi, unsigned strip, aredis_reply_fn **cb, void **data,
                        aredis_reply **hit) {
    aredis__arg args[ARGS_MAX];
    long na;
    const aredis__cmdinfo *ci = parse(c, k, bytes, len, args, &na);
    if (na < 1) return AREDIS__CACHE_SEND;
    size_t nargs = na > ARGS_MAX ? ARGS_MAX : (size_t)na;
    size_t at = ci ? (size_t)(ci - aredis__cmdtable_builtin) : 0;
    int top = ci && ci >= aredis__cmdtable_builtin && at < aredis__cmdtable_count;
    if (top && allow_has(k, at)) {
        /* Not inside a MULTI (the reply is QUEUED), nor while the database
         * is not known for sure (a SELECT in flight or not followed). */
        const aredis__csc_conn *cs = aredis__client_csc(c);
        if (in_multi || cs->selecting || cs->db < 0 || na > ARGS_MAX) return AREDIS__CACHE_SEND;
        int pos[2];
        if (aredis__cmd_keys(ci, args, nargs, pos, 2) != 1) return AREDIS__CACHE_SEND;
        const aredis__arg *key = &args[pos[0]];
        const aredis_options *o = aredis__client_opts(c);
        if (!bcast_match(k, o->prefix, o->prefix ? strlen(o->prefix) : 0, key->p, key->n))
            return AREDIS__CACHE_SEND;
        /* Cached under the database and the command's bytes. */
        char dbtag[16];
        size_t tl = cs->db ? (size_t)snprintf(dbtag, sizeof dbtag, "%d:", cs->db) : 0;
        aredis_reply *v;
        uint64_t now = k->ttl_ms ? aredis__client_now(c) : 0;
        if (!tl) {
            v = aredis__cstore_get(k->store, bytes, len, now);
        } else {
            char small[256];
            char *kb = tl + len <= sizeof small ? small : aredis__malloc(tl + len);
            if (!kb) return AREDIS__CACHE_SEND;
            memcpy(kb, dbtag, tl);
            memcpy(kb + tl, bytes, len);
            v = aredis__cstore_get(k->store, kb, tl + len, now);
            if (kb != small) aredis__free(kb);
        }
        if (v) {
            *hit = aredis_reply_retain(v);
            return AREDIS__CACHE_HIT;
        }
        cctx *x = aredis__calloc(1, sizeof *x + tl + len);
        if (!x) return AREDIS__CACHE_SEND; /* not cached: still correct */
        if (aredis__cstore_begin(k->store, key->p, key->n, &x->tok) != 0) {
            aredis__free(x);
            return AREDIS__CACHE_SEND;
        }
        x->kind = CTX_READ;
        memcpy(x->buf, dbtag, tl);
        memcpy(x->buf + tl, bytes, len);
        x->len = tl + len;
        x->cb = *cb;
        x->data = *data;
        x->cache = aredis__csc_ref(k);
        x->strip = strip;
        *cb = on_read;
        *data = x;
        return k->mode == AREDIS_CACHE_OPTIN ? AREDIS__CACHE_OPTIN : AREDIS__CACHE_SEND;
    }
    if (blinds(args, nargs)) return AREDIS__CACHE_FAIL;
    if (!in_multi && aredis__ieq(args[0].p, args[0].n, "SELECT")) {
        wrap_select(c, args, na, cb, data);
        return AREDIS__CACHE_SEND;
    }
    aredis__csc_conn *cs = aredis__client_csc(c);
    wctx *w = NULL;
    if (aredis__ieq(args[0].p, args[0].n, "EXEC") || aredis__ieq(args[0].p, args[0].n, "DISCARD")) {
        /* The writes queued since MULTI happen at EXEC: everything goes
         * again when it is answered (their keys went when queued). */
        if (in_multi && cs->multi_wrote && args[0].n == 4 && wctx_get(k, &w)) w->all = 1;
        cs->multi_wrote = 0;
    } else {
        note_command(c, k, ci, args, na, in_multi, &w);
    }
    if (w) { /* dropped again when answered */
        w->cb = *cb;
        w->data = *data;
        *cb = on_write;
        *data = w;
    }
    return AREDIS__CACHE_SEND;
}

aredis_err aredis__csc_batch_refuse(const char *bytes, size_t len) {
    aredis__arg args[2];
    long na = aredis__resp_args(bytes, len, args, 2);
    return na >= 1 && blinds(args, na > 2 ? 2 : (size_t)na) ? AREDIS_ERR_UNSUPPORTED
                                                            : AREDIS_ERR_OK;
}

void aredis__csc_batch_command(aredis_client *c, aredis_cache *k, const char *bytes, size_t len,
                               int in_multi, void **acc) {
    aredis__arg args[ARGS_MAX];
    long na;
    const aredis__cmdinfo *ci = parse(c, k, bytes, len, args, &na);
    if (na < 1) return;
    wctx *w = *acc;
    note_command(c, k, ci, args, na, in_multi, &w);
    *acc = w;
}

void aredis__csc_batch_done(void *acc) {
    written(acc);
    wctx_free(acc);
}

aredis_err aredis__csc_optin_submit(aredis_client *c, const aredis_cmd_opts *o, const char *bytes,
                                    size_t len, void *ctx, aredis__cmd **out) {
    static const char caching[] = "*3\r\n$6\r\nCLIENT\r\n$7\r\nCACHING\r\n$3\r\nYES\r\n";
    cctx *x = ctx;
    size_t cl = sizeof caching - 1;
    char *all = aredis__malloc(cl + len);
    aredis_err e = AREDIS_ERR_NOMEM;
    if (all) {
        memcpy(all, caching, cl);
        memcpy(all + cl, bytes, len);
        size_t ends[2] = {cl, cl + len};
        aredis__batch_spec s = {0};
        s.bytes = all;
        s.len = cl + len;
        s.n = 2;
        s.ends = ends;
        s.part = optin_part;
        s.done = optin_done;
        s.data = x;
        s.opts = o;
        s.flags = AREDIS__BATCH_CACHE;
        e = aredis__batch_submit(c, &s, out);
        aredis__free(all);
        if (e == AREDIS_ERR_OK) return e;
    } else {
        aredis__call_fail(e, "out of memory");
    }
    aredis__cstore_abort(x->cache->store, &x->tok);
    ctx_free(x);
    return e;
}

void aredis__csc_abandon(aredis_client *c, void *ctx) {
    int kind;
    memcpy(&kind, ctx, sizeof kind);
    if (kind == CTX_READ) {
        cctx *x = ctx;
        aredis__cstore_abort(x->cache->store, &x->tok);
        ctx_free(x);
    } else if (kind == CTX_WRITE) {
        wctx_free(ctx);
    } else {
        aredis__client_csc(c)->selecting--; /* its SELECT was never issued */
        aredis__free(ctx);
    }
}

/* The arguments of CLIENT TRACKING ON for a connection: into argv/lens,
 * BCAST prefixes (each behind the client's key prefix) allocated in
 * *owned (free with aredis__free each, count returned in *nowned).
 * Returns argc, or -1 when out of memory. */
int aredis__csc_tracking_argv(const aredis_cache *k, const char *cprefix, const char **argv,
                              size_t *lens, int max, char **owned, int *nowned) {
    int argc = 0;
    *nowned = 0;
    argv[argc++] = "CLIENT";
    argv[argc++] = "TRACKING";
    argv[argc++] = "ON";
    if (k->mode == AREDIS_CACHE_OPTIN) argv[argc++] = "OPTIN";
    if (k->mode == AREDIS_CACHE_BCAST) argv[argc++] = "BCAST";
    for (size_t i = 0; i < k->nprefixes && argc + 2 <= max; i++) {
        size_t cl = cprefix ? strlen(cprefix) : 0;
        char *p = aredis__malloc(cl + k->plens[i] + 1);
        if (!p) return -1;
        if (cl) memcpy(p, cprefix, cl);
        memcpy(p + cl, k->prefixes[i], k->plens[i] + 1);
        owned[(*nowned)++] = p;
        argv[argc++] = "PREFIX";
        argv[argc++] = p;
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return argc;
}

/* ---- Stats ---------------------------------------------------------------- */

void aredis_cache_get_stats(const aredis_cache *k, aredis_cache_stats *out) {
    memset(out, 0, sizeof *out);
    if (!k) return;
    aredis__cstore_stats st;
    aredis__cstore_get_stats(k->store, &st);
    out->hits = st.hits;
    out->misses = st.misses;
    out->stores = k->stores;
    out->not_stored = st.not_stored + k->refused;
    out->evictions = st.evictions;
    out->expirations = st.expirations;
    out->invalidations = st.invalidations;
    out->invalidation_messages = k->inval_msgs;
    out->flushes = k->flushes;
    out->entries = st.entries;
    out->bytes = st.bytes;
}
