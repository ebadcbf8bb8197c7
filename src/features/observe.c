/*
 * Operations and connection events for observers (aredis/observe.h).
 *
 * The client calls in at three places only (client/feature.h): a user
 * command or batch accepted (aredis__obs_begin), its outcome decided
 * (aredis__obs_end, from the one place every callback runs), and the
 * connection events. Both hot-path calls sit behind one branch on the
 * client's `obs` pointer, which is NULL unless an observer or metrics are
 * set, and a command started is flagged so that its end is owed exactly
 * once whatever ends it (reply, timeout, cancel, lost connection, free).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/feature.h"
#include "features/observe_internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#define NAME_MAX_LEN 64
#define QUERY_MAX 1024

/* The observer's view of one operation, from its start to its end. */
typedef struct obs_rec {
    const aredis_observer *ob; /* the one it started with */
    void *data;
    struct aredis__mname *slot; /* its metrics entry, or NULL */
    aredis_op op;
    char name[NAME_MAX_LEN];
    char peer[64];
    int query_room; /* query[] is there (not kept for reuse) */
    char query[];   /* AREDIS_OBSERVE_QUERY_TEXT only */
} obs_rec;

/* Operation ids: unique in the process, so that spans of several clients
 * (a pool's, a subscription's hidden one) never share one. */
static _Atomic uint64_t g_next_id = 1;

uint64_t aredis__mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t aredis__unix_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + (int64_t)ts.tv_nsec;
}

/* error.type for a failure that is not a server's error reply: the error's
 * name without "AREDIS_ERR_" ("TIMEOUT"). */
const char *aredis__err_type(aredis_err code) {
    const char *n = aredis_err_name(code);
    return strncmp(n, "AREDIS_ERR_", 11) == 0 ? n + 11 : n;
}

/* ---- The client's state ------------------------------------------------------ */

aredis__obs *aredis__obs_get(aredis_client *c) {
    aredis__obs *o = aredis__obs_state(c);
    if (o) return o;
    o = aredis__calloc(1, sizeof *o);
    if (!o) return NULL;
    o->c = c;
    o->peer_port = 0;
    o->has_peer = aredis__client_peer(c, o->peer, sizeof o->peer, &o->peer_port) == 0;
    aredis_state st = aredis_client_state(c);
    if (o->has_peer && st == AREDIS_STATE_READY) o->up_t0 = aredis__mono_ns();
    /* A connect under way: its outcome is still reported (timed from now). */
    if (st == AREDIS_STATE_CONNECTING || st == AREDIS_STATE_HANDSHAKE) {
        o->conn_t0 = aredis__mono_ns();
        o->has_peer = 0;
    }
    aredis__obs_install(c, o, AREDIS__OBS_OFF, 0);
    return o;
}

void aredis__obs_pause(aredis_client *c, int paused) {
    aredis__obs *o = aredis__obs_state(c);
    if (!o) return;
    if (paused)
        aredis__obs_install(c, o, AREDIS__OBS_OFF, o->mgen);
    else
        aredis__obs_refresh(c);
}

void aredis__obs_refresh(aredis_client *c) {
    aredis__obs *o = aredis__obs_state(c);
    if (!o) return;
    int mode = o->ob ? AREDIS__OBS_FULL : o->m ? AREDIS__OBS_METRICS : AREDIS__OBS_OFF;
    aredis__obs_install(c, o, mode, o->mgen);
}

void aredis__obs_destroy(aredis_client *c) {
    aredis__obs *o = aredis__obs_state(c);
    if (!o) return;
    if (o->leader) {
        if (o->fprev)
            o->fprev->fnext = o->fnext;
        else
            o->leader->followers = o->fnext;
        if (o->fnext) o->fnext->fprev = o->fprev;
    }
    for (aredis__obs *f = o->followers; f; f = f->fnext)
        f->leader = NULL;
    if (o->m) aredis__metrics_detach(o);
    aredis__obs_free_recs(o);
    aredis__obs_install(c, NULL, AREDIS__OBS_OFF, 0);
    aredis__free(o);
}

void aredis__obs_clone(aredis_client *dst, aredis_client *src) {
    /* Linked even with nothing set yet: the origin's later settings follow. */
    aredis__obs *s = aredis__obs_get(src), *d = aredis__obs_get(dst);
    if (!s || !d) return; /* out of memory: the clone goes unobserved */
    d->leader = s;
    d->fnext = s->followers;
    if (s->followers) s->followers->fprev = d;
    s->followers = d;
    if (s->ob) aredis_client_set_observer(dst, s->ob, s->ob_data);
    if (s->m) aredis_client_set_metrics(dst, s->m);
    if (s->parent) aredis_client_set_trace_parent(dst, s->parent);
}

aredis_err aredis_client_set_observer(aredis_client *c, const aredis_observer *obs, void *data) {
    if (!c) return aredis__call_fail(AREDIS_ERR_INVALID, "client is NULL");
    aredis__obs *o = obs ? aredis__obs_get(c) : aredis__obs_state(c);
    if (!o) return obs ? aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory") : AREDIS_ERR_OK;
    o->ob = obs;
    o->ob_data = obs ? data : NULL;
    aredis__obs_refresh(c);
    for (aredis__obs *f = o->followers; f; f = f->fnext)
        aredis_client_set_observer(f->c, obs, data);
    return AREDIS_ERR_OK;
}

void aredis_client_set_trace_parent(aredis_client *c, void *parent) {
    if (!c) return;
    aredis__obs *o = parent ? aredis__obs_get(c) : aredis__obs_state(c);
    if (!o) return;
    o->parent = parent;
    for (aredis__obs *f = o->followers; f; f = f->fnext)
        aredis_client_set_trace_parent(f->c, parent);
}

/* ---- Operation names ------------------------------------------------------------ */

/* Argument i (0: the name) of one encoded command: its length, *arg
 * pointing into resp; 0 when it has no such argument. */
static size_t resp_arg(const char *p, size_t len, size_t i, const char **arg) {
    size_t at = 1, argc = 0;
    if (len < 4 || p[0] != '*') return 0;
    for (; at < len && p[at] >= '0' && p[at] <= '9'; at++)
        argc = argc * 10 + (size_t)(p[at] - '0');
    at += 2;
    if (i >= argc) return 0;
    for (size_t k = 0;; k++) {
        if (at >= len || p[at] != '$') return 0;
        size_t l = 0;
        for (at++; at < len && p[at] >= '0' && p[at] <= '9'; at++)
            l = l * 10 + (size_t)(p[at] - '0');
        at += 2;
        if (at > len || l > len - at) return 0;
        if (k == i) {
            *arg = p + at;
            return l;
        }
        at += l + 2;
    }
}

static int name_is(const char *n, size_t len, const char *word) {
    size_t wl = strlen(word);
    if (len != wl) return 0;
    for (size_t i = 0; i < len; i++)
        if ((n[i] | 0x20) != (word[i] | 0x20)) return 0;
    return 1;
}

/* SCRIPT LOAD: what the library sends ahead of the scripts a pipeline or
 * transaction runs (aredis/script.h). */
static int is_script_load(const char *p, size_t len) {
    const char *a = "";
    size_t l = resp_arg(p, len, 0, &a);
    if (!name_is(a, l, "SCRIPT")) return 0;
    l = resp_arg(p, len, 1, &a);
    return l && name_is(a, l, "LOAD");
}

/*
 * A batch's operation name and size. SCRIPT LOADs are the library's
 * preparation (scripts loaded ahead of the commands that run them, in a
 * pipeline or transaction) and do not count. A transaction (MULTI ...
 * EXEC) is "MULTI" of the commands between; a pipeline "BATCH <NAME>" when
 * all its commands have one name, else "BATCH". Fewer than two commands is
 * no batch: the command's own name, size 0.
 */
static size_t batch_name(const char *bytes, const uint64_t *ends, size_t n, char *out,
                         size_t outlen, size_t *size, int *tx) {
    const char *first = "", *last = "", *nm = "";
    size_t flen = 0, llen = 0, same = 1, counted = 0;
    /* Twice only for a batch of nothing but SCRIPT LOADs: then they count. */
    for (int skip = 1; skip >= 0 && counted == 0; skip--)
        for (size_t i = 0, start = 0; i < n; start = (size_t)ends[i++]) {
            size_t clen = (size_t)ends[i] - start;
            if (skip && is_script_load(bytes + start, clen)) continue;
            size_t l = resp_arg(bytes + start, clen, 0, &nm);
            if (!l) nm = "";
            if (counted++ == 0) {
                first = nm;
                flen = l;
            } else if (l != flen || memcmp(nm, first, l) != 0) {
                same = 0;
            }
            last = nm;
            llen = l;
        }
    if (counted >= 2 && name_is(first, flen, "MULTI") && name_is(last, llen, "EXEC")) {
        *tx = 1;
        *size = counted - 2 >= 2 ? counted - 2 : 0;
        return (size_t)snprintf(out, outlen, "MULTI");
    }
    *size = counted >= 2 ? counted : 0;
    int w;
    if (counted < 2)
        w = snprintf(out, outlen, "%.*s", (int)(flen < outlen ? flen : outlen - 1), first);
    else if (same)
        w = snprintf(out, outlen, "BATCH %.*s", (int)(flen < outlen - 6 ? flen : outlen - 7),
                     first);
    else
        w = snprintf(out, outlen, "BATCH");
    return w < 0 ? 0 : (size_t)w >= outlen ? outlen - 1 : (size_t)w;
}

/* db.query.text: each command redacted, "; " between a batch's. */
static void query_text(char *out, size_t outlen, const char *bytes, size_t len,
                       const uint64_t *ends, size_t n) {
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0, start = 0; i < n && at + 1 < outlen; i++) {
        size_t end = ends ? (size_t)ends[i] : len;
        if (i) at += (size_t)snprintf(out + at, outlen - at, "; ");
        if (at + 1 >= outlen) break;
        at += aredis__redact_command(bytes + start, end - start, out + at, outlen - at);
        start = end;
    }
}

/* ---- Operations -------------------------------------------------------------- */

static void fill_common(aredis_client *c, aredis_op *op) {
    const aredis_options *opt = aredis__client_opts(c);
    op->client = c;
    op->db = aredis__session_db(c);
    op->server_address = opt->unix_path ? opt->unix_path : opt->host;
    op->server_port = opt->unix_path ? 0 : opt->port;
}

/* The metrics entry of a single command. */
static struct aredis__mname *slot_of(aredis__obs *o, const char *p, size_t len) {
    const char *name = "";
    size_t nlen = resp_arg(p, len, 0, &name);
    return aredis__metrics_slot(o, name, nlen);
}

void *aredis__obs_lookup(aredis_client *c, const char *name, size_t len) {
    aredis__obs *o = aredis__obs_state(c);
    return o && o->m ? aredis__metrics_slot(o, name, len) : NULL;
}

static obs_rec *rec_new(aredis__obs *o, int q) {
    obs_rec *r = NULL;
    if (!q && o->free_recs) {
        r = o->free_recs;
        o->free_recs = *(obs_rec **)(void *)r;
        o->nfree_recs--;
    } else {
        r = aredis__malloc(sizeof *r + (q ? QUERY_MAX + 1 : 0));
        if (!r) return NULL;
    }
    r->query_room = q;
    memset(&r->op, 0, sizeof r->op);
    return r;
}

static void rec_free(aredis__obs *o, obs_rec *r) {
    if (o && !r->query_room && o->nfree_recs < 64) {
        *(obs_rec **)(void *)r = o->free_recs;
        o->free_recs = r;
        o->nfree_recs++;
        return;
    }
    aredis__free(r);
}

void aredis__obs_free_recs(aredis__obs *o) {
    while (o->free_recs) {
        obs_rec *r = o->free_recs;
        o->free_recs = *(obs_rec **)(void *)r;
        aredis__free(r);
    }
    o->nfree_recs = 0;
}

/*
 * An error reply's prefix as error.type and db.response.status_code: only
 * a word of capitals, digits, '_' and '-' ("WRONGTYPE", "NOSCRIPT"). A
 * script or module may start an error with anything (an argument it was
 * given): that is never a label; it reads as "SERVER".
 */
static const char *code_word(const char *s) {
    if (!s || !*s) return NULL;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return NULL;
    return s;
}

unsigned aredis__obs_begin(aredis_client *c, aredis__obs_cmd *ob, uint32_t *gen, const char *bytes,
                           size_t len, const uint64_t *ends, size_t n) {
    aredis__obs *o = aredis__obs_active(c);
    ob->x = NULL;
    /* Metrics only, one command (a name the client's own fast path does
     * not take, or issued outside a read's dispatch). */
    if (n <= 1 && !o->ob) {
        if (!ob->t0) ob->t0 = aredis__mono_ns();
        ob->x = slot_of(o, bytes, len);
        *gen = o->mgen;
        return AREDIS__OBS_ON;
    }
    const char *name = "";
    size_t nlen, bsize = 0;
    char nbuf[NAME_MAX_LEN];
    int tx = 0;
    if (n <= 1) {
        nlen = resp_arg(bytes, len, 0, &name);
    } else {
        nlen = batch_name(bytes, ends, n, nbuf, sizeof nbuf, &bsize, &tx);
        name = nbuf;
    }
    unsigned bits = AREDIS__OBS_ON | (tx ? AREDIS__OBS_TX : 0u);
    struct aredis__mname *slot = NULL;
    if (o->m) {
        slot = aredis__metrics_slot(o, name, nlen);
        *gen = o->mgen;
    }
    ob->x = slot;
    if (!o->ob) {
        if (!ob->t0) ob->t0 = aredis__mono_ns();
        return bits;
    }
    ob->t0 = aredis__mono_ns(); /* a span wants its own clock reads */
    const aredis_observer *obs = o->ob;
    int q = (obs->flags & AREDIS_OBSERVE_QUERY_TEXT) != 0;
    obs_rec *r = rec_new(o, q);
    if (!r) return bits; /* counted, not traced */
    r->ob = obs;
    r->data = o->ob_data;
    r->slot = slot;
    if (nlen >= sizeof r->name) nlen = sizeof r->name - 1;
    memcpy(r->name, name, nlen);
    r->name[nlen] = '\0';
    aredis_op *op = &r->op;
    fill_common(c, op);
    op->id = atomic_fetch_add_explicit(&g_next_id, 1, memory_order_relaxed);
    op->name = r->name;
    op->batch_size = bsize;
    if (o->has_peer && aredis_client_state(c) == AREDIS_STATE_READY) {
        memcpy(r->peer, o->peer, sizeof r->peer);
        op->peer_address = r->peer;
        op->peer_port = o->peer_port;
    }
    if (q) {
        query_text(r->query, QUERY_MAX + 1, bytes, len, n > 1 ? ends : NULL, n ? n : 1);
        op->query_text = r->query;
    }
    op->start_unix_ns = aredis__unix_ns();
    op->parent = o->parent;
    ob->x = r;
    if (obs->command_start) op->span = obs->command_start(op, r->data);
    return bits | AREDIS__OBS_REC;
}

void aredis__obs_end(aredis_client *c, aredis__obs_cmd *ob, uint32_t gen, unsigned bits,
                     uint64_t now, const aredis_reply *r, aredis_err code, const char *bstatus) {
    aredis__obs *o = aredis__obs_state(c);
    obs_rec *rec = (bits & AREDIS__OBS_REC) ? ob->x : NULL;
    struct aredis__mname *slot = rec ? rec->slot : ob->x;
    ob->x = NULL;
    /* The entry belongs to the metrics attached when it started, if still. */
    int counted = slot && o && o->m && gen == o->mgen;
    if (!rec && !counted) return;
    /* A span reads the clock itself; metrics take the read's time. */
    uint64_t d = (!rec && now ? now : aredis__mono_ns()) - ob->t0;
    char pre[32];
    const char *status = NULL;
    if (code == AREDIS_ERR_SERVER && r) {
        aredis__error_prefix(r, pre, sizeof pre);
        status = code_word(pre);
    } else if (code == AREDIS_ERR_OK && bstatus[0]) {
        code = AREDIS_ERR_SERVER; /* a batch with an error reply */
        status = code_word(bstatus);
    }
    const char *type = code == AREDIS_ERR_OK ? NULL : status ? status : aredis__err_type(code);
    if (counted) aredis__metrics_record(o, slot, d, code, type);
    if (!rec) return;
    aredis_op *op = &rec->op;
    op->duration_ns = d ? d : 1;
    op->outcome = code;
    op->error_type = type;
    op->status_code = status;
    if (rec->ob->command_end) rec->ob->command_end(op, rec->data);
    rec_free(o, rec);
}

/* ---- Connection events --------------------------------------------------------- */

void aredis__obs_connect_start(aredis_client *c) {
    aredis__obs *o = aredis__obs_state(c);
    o->conn_t0 = aredis__mono_ns();
    o->has_peer = 0;
}

void aredis__obs_conn(aredis_client *c, int kind, aredis_err code, unsigned attempt,
                      uint32_t delay_ms) {
    aredis__obs *o = aredis__obs_state(c);
    uint64_t now = aredis__mono_ns(), d = 0;
    /* A connection the observer was told of as made, closed before the
     * application's on_connect (by the observer itself): its end. */
    if (kind == AREDIS_CONN_CONNECT && code != AREDIS_ERR_OK && !o->conn_t0 && o->up_t0)
        kind = AREDIS_CONN_DISCONNECT;
    if (kind == AREDIS_CONN_CONNECT) {
        if (!o->conn_t0) return; /* no attempt under way (closed while waiting) */
        d = now - o->conn_t0;
        o->conn_t0 = 0;
        if (code == AREDIS_ERR_OK) {
            o->up_t0 = now;
            o->has_peer = aredis__client_peer(c, o->peer, sizeof o->peer, &o->peer_port) == 0;
        }
    } else if (kind == AREDIS_CONN_DISCONNECT) {
        d = o->up_t0 ? now - o->up_t0 : 0;
        o->up_t0 = 0;
    }
    if (o->m) aredis__metrics_conn(o, kind, code);
    const aredis_observer *obs = o->ob;
    if (obs && obs->connection) {
        aredis_conn_event ev;
        memset(&ev, 0, sizeof ev);
        aredis_op tmp;
        memset(&tmp, 0, sizeof tmp);
        fill_common(c, &tmp);
        char peer[64];
        ev.kind = (aredis_conn_event_kind)kind;
        ev.client = c;
        ev.server_address = tmp.server_address;
        ev.server_port = tmp.server_port;
        if (o->has_peer && kind != AREDIS_CONN_RECONNECT) {
            memcpy(peer, o->peer, sizeof peer);
            ev.peer_address = peer;
            ev.peer_port = o->peer_port;
        }
        ev.time_unix_ns = aredis__unix_ns();
        ev.duration_ns = d;
        ev.outcome = code;
        ev.error_type = code == AREDIS_ERR_OK ? NULL : aredis__err_type(code);
        ev.attempt = attempt;
        ev.delay_ms = delay_ms;
        if (kind == AREDIS_CONN_DISCONNECT) o->has_peer = 0;
        obs->connection(&ev, o->ob_data);
        return;
    }
    if (kind == AREDIS_CONN_DISCONNECT) o->has_peer = 0;
}
