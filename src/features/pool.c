/*
 * Connection pools (aredis/pool.h): ordinary clients on one loop, handed
 * out one user at a time and checked (client/feature.h: aredis__session)
 * before the next one gets them.
 *
 * Where a connection is (conn.where), one list each:
 *   OPENING   connecting; its ready future says how it went
 *   IDLE      ready for the next user; most recently used first. Pool
 *             commands run on idle connections without taking them
 *             (conn.owed counts the pool's commands in flight on it)
 *   USER      acquired (or held by a with())
 *   CHECKING  out of rotation until the pool's own commands on it are
 *             answered (owed == 0): a health-check PING, a PING behind a
 *             released user's owed replies, a pool command that blocks or
 *             leaves a session state; then settle() looks again
 *   GONE      discarded: its client is freed at the end of the outermost
 *             pool entry (reap), so no user callback ever runs while the
 *             pool's lists are being walked
 *
 * Reentrancy: every entry (public call, timer, client callback) is
 * bracketed by enter/leave. User code runs only from the dispatch timer
 * (acquire results, fn of with(), deferred errors), from a command's own
 * reply callback, from the clients freed at leave(), and from
 * aredis_pool_free(). The pool's memory is freed by the outermost leave().
 *
 * Lifetimes against a client's own call chain: a client freed from inside
 * its own callbacks (a lost connection's teardown reporting on_disconnect,
 * say) may still call back into the pool after aredis_client_free()
 * returns — the teardown under way goes on failing the commands it had
 * taken. So a conn record is freed only by a later timer callback of the
 * pool (never inside any client's chain), and a pool freed from inside
 * on_error / on_disconnect of one of its connections releases its memory
 * on the next loop turn.
 */
#include "aredis/pool.h"

#include <stdio.h>
#include <string.h>

#include "aredis/cache.h"
#include "aredis/tls.h"
#include "aredis/uri.h"
#include "aredis/writer.h"
#include "client/feature.h"
#include "features/observe_internal.h"
#include "proto/cmdtable.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fork.h"

typedef enum { AT_NONE, AT_OPENING, AT_IDLE, AT_USER, AT_CHECKING, AT_GONE } where_t;

typedef struct conn conn;
typedef struct waiter waiter;
typedef struct with_ctx with_ctx;
typedef struct cmd_ctx cmd_ctx;

typedef struct clist {
    conn *head, *tail;
    size_t n;
} clist;

struct conn {
    conn *prev, *next; /* in its list (next only, once GONE) */
    aredis_pool *pool;
    aredis_client *c;
    aredis_future *ready; /* while opening */
    where_t where;
    unsigned owed;  /* the pool's own commands on it not completed yet */
    int broken;     /* lost, or one of the pool's commands on it failed */
    int health;     /* a health-check PING is among them */
    int created;    /* it became ready (counted in stats.created) */
    int keep;       /* discarded by closing only: a WATCH or subscription holds it */
    int blocking;   /* out of rotation behind a blocking pool command */
    uint64_t born;  /* when it became ready */
    uint64_t used;  /* last handed out, released, or given a pool command */
    with_ctx *with; /* the with() holding it */
};

typedef enum { W_ACQUIRE, W_WITH, W_CMD } wkind;

/* An acquire, with() or pool command waiting for a connection; then, in
 * the done queue, its outcome waiting to be delivered. */
struct waiter {
    waiter *prev, *next;
    wkind kind;
    int queued; /* in pool->waiters */
    uint64_t deadline;
    uint64_t t0;   /* when it started waiting (ns), when observed */
    conn *granted; /* the outcome: a connection, or code + detail */
    aredis_err code;
    char detail[360];
    aredis_pool_acquire_fn *cb;
    void *data;
    with_ctx *w;
    cmd_ctx *x;
};

typedef struct wlist {
    waiter *head, *tail;
    size_t n;
} wlist;

/* One aredis_pool_with(): refs held by its work and by its then on the
 * caller's future. */
struct with_ctx {
    with_ctx *prev, *next; /* in pool->withs until its work is over */
    aredis_pool *pool;     /* NULL once the pool is gone */
    aredis_pool_with_fn *fn;
    void *data;
    aredis_future *outer; /* the caller's */
    aredis_future *inner; /* fn's */
    conn *cn;
    waiter *w;     /* while waiting, or its grant not delivered yet */
    int refs;      /* work + the outer's then */
    int settled;   /* the outer is done */
    int finishing; /* the pool is completing the outer */
    int active;    /* in pool->withs */
};

/* One pool command. The callback form: owned by the client's callback once
 * sent. The future form that had to wait: refs held by its work and by its
 * then on the caller's future. */
struct cmd_ctx {
    aredis_pool *pool;
    conn *cn;
    aredis_reply_fn *cb;
    void *data;
    aredis_future *outer; /* future form that waited */
    aredis_future *inner; /* the command's own future */
    char *bytes;          /* a waiting command, encoded (without prefix) */
    size_t len;
    aredis_cmd_opts opts;
    int has_opts;
    waiter *w;
    int refs;
    int settled, finishing;
    cmd_ctx *next_free;
};

/* A pool_wait event waiting to be told. */
typedef struct wait_event {
    struct wait_event *next;
    aredis_pool_wait_event ev;
    char name[160];
} wait_event;

struct aredis_pool {
    aredis_loop *loop;
    aredis_options copt; /* every connection's options: owned strings, the user's callbacks */
    aredis_tls_context *tls;
    unsigned min, max;
    uint32_t acquire_timeout, idle_timeout, max_age, health_after;
    clist opening, idle, user, checking;
    conn *reap;       /* discarded: their clients are freed by the outermost leave() */
    conn *graveyard;  /* records of freed clients: freed by the next timer callback */
    conn *kept;       /* closed clients kept until the pool is freed */
    conn *forked;     /* inherited across fork(): freed by the next dispatch */
    wlist waiters;    /* FIFO */
    wlist done;       /* outcomes to deliver, in order */
    size_t wait_conn; /* waiters that each need a connection (acquire, with) */
    size_t wait_cmd;  /* waiting pool commands (one connection serves them all) */
    with_ctx *withs;
    cmd_ctx *free_ctx;
    size_t nfree_ctx;
    aredis_timer *dispatch, *tick;
    int dispatch_armed;
    int tick_dirty; /* recompute the tick's next time at leave() */
    int tick_armed; /* ...else it fires at tick_at, or earlier */
    uint64_t tick_at;
    uint64_t picked_at; /* the clock as pick_idle() last read it */
    waiter *free_w;     /* recycled waiter records */
    size_t nfree_w;
    uint64_t retry_at; /* no new connection before this (backoff after a failure) */
    uint32_t retry_delay;
    char last_error[200]; /* the last failed open; cleared by a successful one */
    aredis_pool_stats st; /* the counters (the gauges are computed) */
    unsigned fork_gen;
    int depth, closing, free_pending;
    int conn_cb; /* inside on_error / on_disconnect of a connection */
    /* observability (aredis/observe.h): given to every connection */
    const aredis_observer *obs;
    void *obs_data;
    aredis_metrics *metrics;
    struct aredis__mpool *mp;           /* its entry in `metrics` */
    struct wait_event *wev, **wev_tail; /* pool_wait events to tell (leave()) */
    int defer_destroy;                  /* freed from there: the memory goes on the next turn */
};

static void serve(aredis_pool *p);
static void settle(aredis_pool *p, conn *cn);

/* ---- Small helpers ------------------------------------------------------- */

static uint64_t now_ms(aredis_pool *p) { return aredis_loop_now_ms(p->loop); }

/* Make the tick fire at `at` at the latest (it recomputes when it fires:
 * firing early is harmless, and cheaper than moving it at every change). */
static void need_tick(aredis_pool *p, uint64_t at, uint64_t now) {
    if (p->closing || !p->tick || (p->tick_armed && p->tick_at <= at)) return;
    p->tick_armed = 1;
    p->tick_at = at;
    aredis_timer_start(p->tick, at > now ? at - now : 0, 0);
}

static waiter *waiter_new(aredis_pool *p) {
    waiter *w = p->free_w;
    if (!w) return aredis__calloc(1, sizeof *w);
    p->free_w = w->next;
    p->nfree_w--;
    memset(w, 0, sizeof *w);
    return w;
}

static void waiter_free(aredis_pool *p, waiter *w) {
    if (p && !p->closing && p->nfree_w < 64) {
        w->next = p->free_w;
        p->free_w = w;
        p->nfree_w++;
    } else {
        aredis__free(w);
    }
}

static clist *list_of(aredis_pool *p, where_t w) {
    switch (w) {
    case AT_OPENING:
        return &p->opening;
    case AT_IDLE:
        return &p->idle;
    case AT_USER:
        return &p->user;
    case AT_CHECKING:
        return &p->checking;
    default:
        return NULL;
    }
}

static void clist_unlink(clist *l, conn *cn) {
    if (cn->prev)
        cn->prev->next = cn->next;
    else
        l->head = cn->next;
    if (cn->next)
        cn->next->prev = cn->prev;
    else
        l->tail = cn->prev;
    cn->prev = cn->next = NULL;
    l->n--;
}

static void clist_push_head(clist *l, conn *cn) {
    cn->prev = NULL;
    cn->next = l->head;
    if (l->head)
        l->head->prev = cn;
    else
        l->tail = cn;
    l->head = cn;
    l->n++;
}

/* Move cn to the head of the list of `w` (AT_GONE: out of every list). */
static void move_to(aredis_pool *p, conn *cn, where_t w) {
    clist *from = list_of(p, cn->where);
    if (from) clist_unlink(from, cn);
    cn->where = w;
    clist *to = list_of(p, w);
    if (to) clist_push_head(to, cn);
}

static size_t ready_count(const aredis_pool *p) { return p->idle.n + p->user.n + p->checking.n; }
static size_t total_count(const aredis_pool *p) { return p->opening.n + ready_count(p); }

static void wlist_push(wlist *l, waiter *w) {
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    l->n++;
}

static void wlist_push_head(wlist *l, waiter *w) {
    w->prev = NULL;
    w->next = l->head;
    if (l->head)
        l->head->prev = w;
    else
        l->tail = w;
    l->head = w;
    l->n++;
}

static void wlist_unlink(wlist *l, waiter *w) {
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->prev = w->next = NULL;
    l->n--;
}

static waiter *wlist_pop(wlist *l) {
    waiter *w = l->head;
    if (w) wlist_unlink(l, w);
    return w;
}

/* ---- Enter / leave -------------------------------------------------------- */

static void enter(aredis_pool *p) { p->depth++; }

static void destroy(aredis_pool *p);
static void rearm(aredis_pool *p);
static void wait_events_flush(aredis_pool *p);

static void arm_dispatch(aredis_pool *p);

/* A conn whose client is being freed: its record goes once no client
 * chain can reach it any more (the next timer callback). */
static void bury(aredis_pool *p, conn *cn) {
    cn->c = NULL;
    cn->next = p->graveyard;
    p->graveyard = cn;
    arm_dispatch(p);
}

/* From a timer callback only (see the top of the file). */
static void free_graveyard(aredis_pool *p) {
    conn *g = p->graveyard;
    p->graveyard = NULL;
    while (g) {
        conn *n = g->next;
        aredis__free(g);
        g = n;
    }
}

/* Free the clients of discarded connections: their pending callbacks run
 * now (CANCELLED), with the pool's lists consistent. */
static void reap(aredis_pool *p) {
    conn *cn;
    while ((cn = p->reap)) {
        p->reap = cn->next;
        if (cn->keep) {
            /* A WATCH or a subscription still holds the client: closed
             * (no traffic, its callbacks run), kept for its holder. */
            aredis_client_close(cn->c);
            cn->next = p->kept;
            p->kept = cn;
        } else {
            aredis_client *c = cn->c;
            bury(p, cn);
            aredis_client_free(c);
        }
    }
}

static void leave(aredis_pool *p) {
    if (p->depth > 1) {
        p->depth--;
        return;
    }
    /* Still counted as inside: the callbacks below (the observer's, the
     * frees') may enter again. */
    wait_events_flush(p);
    reap(p);
    if (p->tick_dirty && !p->closing) rearm(p);
    p->depth--;
    if (p->free_pending && !p->defer_destroy) destroy(p);
}

/* ---- The two timers -------------------------------------------------------- */

static void arm_dispatch(aredis_pool *p) {
    if (p->dispatch_armed || p->free_pending || !p->dispatch) return;
    p->dispatch_armed = 1;
    aredis_timer_start(p->dispatch, 0, 0);
}

static void push_done(aredis_pool *p, waiter *w) {
    wlist_push(&p->done, w);
    arm_dispatch(p);
}

/* db.client.connection.pool.name: "host:port/db" (or "path/db"). */
static void pool_name(const aredis_pool *p, char *out, size_t len) {
    if (p->copt.unix_path)
        snprintf(out, len, "%s/%d", p->copt.unix_path, p->copt.db);
    else
        snprintf(out, len, "%s:%d/%d", p->copt.host ? p->copt.host : "", p->copt.port, p->copt.db);
}

/* A wait for a connection is over (w just left the waiters): tell the
 * observer and the metrics, when there are any. */
static void wait_over_since(aredis_pool *p, uint64_t t0, aredis_err code) {
    if (!t0 || (!p->mp && !(p->obs && p->obs->pool_wait))) return;
    uint64_t d = aredis__mono_ns() - t0;
    if (p->mp) aredis__metrics_pool_wait(p->mp, d, code);
    if (!p->obs || !p->obs->pool_wait) return;
    /* Told at the outermost leave(): the callback is the user's, and the
     * waiter lists may be half-walked here. */
    wait_event *e = aredis__malloc(sizeof *e);
    if (!e) return; /* counted, not told */
    memset(&e->ev, 0, sizeof e->ev);
    if (p->mp)
        snprintf(e->name, sizeof e->name, "%s", aredis__metrics_pool_name(p->mp));
    else
        pool_name(p, e->name, sizeof e->name);
    e->ev.pool = p;
    e->ev.duration_ns = d ? d : 1;
    e->ev.outcome = code;
    e->ev.error_type = code == AREDIS_ERR_OK ? NULL : aredis__err_type(code);
    e->ev.idle = p->idle.n;
    e->ev.used = p->user.n + p->checking.n;
    e->ev.pending = p->waiters.n;
    e->next = NULL;
    *p->wev_tail = e;
    p->wev_tail = &e->next;
}

/* Tell the observer of the waits that ended (outermost leave()). */
static void wait_events_flush(aredis_pool *p) {
    wait_event *e;
    while ((e = p->wev)) {
        p->wev = e->next;
        if (!p->wev) p->wev_tail = &p->wev;
        e->ev.pool_name = e->name;
        if (p->obs && p->obs->pool_wait) p->obs->pool_wait(&e->ev, p->obs_data);
        aredis__free(e);
    }
}

static void wait_over(aredis_pool *p, const waiter *w, aredis_err code) {
    wait_over_since(p, w->t0, code);
}

static void fail_waiter(aredis_pool *p, waiter *w, aredis_err code, const char *detail) {
    w->granted = NULL;
    w->code = code;
    snprintf(w->detail, sizeof w->detail, "%s", detail ? detail : aredis_strerror(code));
    push_done(p, w);
}

/* ---- Connections: open, discard ------------------------------------------ */

/* Take cn out of rotation for good; its client is freed (or, `keep`,
 * closed) by the outermost leave(). */
static void discard(aredis_pool *p, conn *cn, int keep) {
    if (cn->where == AT_GONE) return;
    move_to(p, cn, AT_GONE);
    if (cn->created) p->st.discarded++;
    if (cn->with) {
        cn->with->cn = NULL;
        cn->with = NULL;
    }
    cn->keep = keep;
    cn->next = p->reap;
    p->reap = cn;
}

static void w_connect(aredis_client *c, void *data) {
    conn *cn = data;
    aredis_pool *p = cn->pool;
    if (p->copt.on_connect) p->copt.on_connect(c, p->copt.cb_data);
}

static void w_push(aredis_client *c, aredis_reply *r, void *data) {
    conn *cn = data;
    aredis_pool *p = cn->pool;
    if (p->copt.on_push) p->copt.on_push(c, r, p->copt.cb_data);
}

static void w_error(aredis_client *c, const aredis_error *err, void *data) {
    conn *cn = data;
    aredis_pool *p = cn->pool;
    if (!p->copt.on_error) return;
    enter(p);
    p->conn_cb++;
    p->copt.on_error(c, err, p->copt.cb_data);
    p->conn_cb--;
    leave(p);
}

static void w_reconnect(aredis_client *c, unsigned attempt, uint32_t delay, void *data) {
    conn *cn = data;
    aredis_pool *p = cn->pool;
    if (p->copt.on_reconnect_attempt)
        p->copt.on_reconnect_attempt(c, attempt, delay, p->copt.cb_data);
}

/* A connection that was up ended (with reconnect off, for good). */
static void w_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    conn *cn = data;
    aredis_pool *p = cn->pool;
    enter(p);
    if (cn->where != AT_GONE) {
        cn->broken = 1;
        if (cn->where == AT_IDLE) {
            discard(p, cn, 0);
            serve(p);
        }
        /* USER: replaced at its release; CHECKING: its own commands fail
         * now, and settle() sees it broken. */
    }
    if (p->copt.on_disconnect) {
        p->conn_cb++;
        p->copt.on_disconnect(c, err, p->copt.cb_data);
        p->conn_cb--;
    }
    leave(p);
}

static void open_failed(aredis_pool *p, conn *cn, aredis_err code, const char *detail);

/* cn went idle at t: the tick must look at it when it may expire. */
static void idle_tick(aredis_pool *p, conn *cn, uint64_t t) {
    if (p->max_age) need_tick(p, cn->born + p->max_age, t);
    if (p->idle_timeout && total_count(p) > p->min) need_tick(p, t + p->idle_timeout, t);
}

static void on_ready(aredis_future *f, void *data) {
    conn *cn = data;
    aredis_pool *p = cn->pool;
    enter(p);
    cn->ready = NULL;
    if (cn->where == AT_OPENING) {
        const aredis_error *err = aredis_future_error(f);
        if (!err) {
            uint64_t t = now_ms(p);
            cn->created = 1;
            cn->born = cn->used = t;
            p->st.created++;
            p->last_error[0] = '\0';
            p->retry_at = 0;
            p->retry_delay = 0;
            move_to(p, cn, AT_IDLE);
            idle_tick(p, cn, t);
            serve(p);
        } else {
            open_failed(p, cn, err->code, err->detail);
        }
    }
    aredis_future_release(f);
    leave(p);
}

/*
 * A connection could not be opened. When nothing else could serve the
 * waiters (no connection ready or opening), they all fail with why, at
 * once, as a client's first failed connect fails what waits for it. The
 * next open waits for the backoff.
 */
static void open_failed(aredis_pool *p, conn *cn, aredis_err code, const char *detail) {
    p->st.connect_failures++;
    if (!p->last_error[0] || code != AREDIS_ERR_TIMEOUT)
        snprintf(p->last_error, sizeof p->last_error, "%s: %s", aredis_err_name(code),
                 detail ? detail : aredis_strerror(code));
    discard(p, cn, 0);
    uint32_t base = p->copt.reconnect_delay_ms ? p->copt.reconnect_delay_ms : 100;
    uint32_t cap = p->copt.max_reconnect_delay_ms ? p->copt.max_reconnect_delay_ms : 30000;
    p->retry_delay = !p->retry_delay ? base : (p->retry_delay > cap / 2 ? cap : p->retry_delay * 2);
    if (p->retry_delay > cap) p->retry_delay = cap;
    uint64_t t = now_ms(p);
    p->retry_at = t + p->retry_delay;
    need_tick(p, p->retry_at, t);
    if (total_count(p) == 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot open a connection: %s",
                 detail ? detail : aredis_strerror(code));
        waiter *w;
        while ((w = wlist_pop(&p->waiters))) {
            w->queued = 0;
            if (w->kind == W_CMD)
                p->wait_cmd--;
            else
                p->wait_conn--;
            wait_over(p, w, code);
            fail_waiter(p, w, code, msg);
        }
    }
}

static void open_conn(aredis_pool *p) {
    conn *cn = aredis__calloc(1, sizeof *cn);
    if (!cn) {
        p->st.connect_failures++;
        p->retry_at = now_ms(p) + 100;
        need_tick(p, p->retry_at, p->retry_at - 100);
        return;
    }
    cn->pool = p;
    aredis_options o = p->copt;
    o.reconnect = 0;
    o.reconnect_in_child = 0;
    o.tls_context = p->tls;
    o.on_connect = w_connect;
    o.on_disconnect = w_disconnect;
    o.on_error = w_error;
    o.on_reconnect_attempt = w_reconnect;
    o.on_push = p->copt.on_push ? w_push : NULL;
    o.cb_data = cn;
    cn->c = aredis_client_new(p->loop, &o);
    if (cn->c && ((p->obs && aredis_client_set_observer(cn->c, p->obs, p->obs_data)) ||
                  (p->metrics && aredis_client_set_metrics(cn->c, p->metrics)))) {
        aredis_client_free(cn->c);
        cn->c = NULL;
    }
    if (!cn->c) {
        aredis__free(cn);
        p->st.connect_failures++;
        p->retry_at = now_ms(p) + 100;
        need_tick(p, p->retry_at, p->retry_at - 100);
        return;
    }
    move_to(p, cn, AT_OPENING);
    aredis_err e = aredis_client_connect(cn->c);
    if (e != AREDIS_ERR_OK) {
        open_failed(p, cn, e, aredis_call_error()->detail);
        return;
    }
    cn->ready = aredis_future_ready(cn->c);
    if (!cn->ready) {
        open_failed(p, cn, AREDIS_ERR_NOMEM, "out of memory");
        return;
    }
    if (aredis_future_then(cn->ready, on_ready, cn) != AREDIS_ERR_OK) {
        aredis_future_release(cn->ready);
        cn->ready = NULL;
        open_failed(p, cn, AREDIS_ERR_NOMEM, "out of memory");
    }
}

/* Open what the waiters need (one each for acquires and with()s, one for
 * all pool commands), and up to min_connections, within max. */
static void ensure(aredis_pool *p) {
    if (p->closing) return;
    size_t need = p->wait_conn + (p->wait_cmd ? 1 : 0);
    /* Connections being checked come back soon; one behind a blocking
     * pool command may never. */
    size_t back = 0;
    for (conn *cn = p->checking.head; cn; cn = cn->next)
        back += !cn->blocking;
    while (total_count(p) < p->max) {
        size_t coming = p->opening.n + back;
        if (coming >= need && total_count(p) >= p->min) break;
        uint64_t t;
        if (p->retry_at && (t = now_ms(p)) < p->retry_at) {
            need_tick(p, p->retry_at, t); /* the tick opens it then */
            break;
        }
        open_conn(p);
    }
}

/* ---- The pool's own commands --------------------------------------------- */

/* After one of the pool's commands on cn completed. */
static void after_owed(aredis_pool *p, conn *cn) {
    if (cn->owed) return;
    if (cn->where == AT_CHECKING) {
        settle(p, cn);
    } else if (cn->where == AT_IDLE &&
               (cn->broken || (p->max_age && now_ms(p) - cn->born >= p->max_age))) {
        discard(p, cn, 0);
        serve(p);
    }
}

/* Any failure (a server error reply included) leaves cn unusable. */
static void own_strict_done(aredis_client *c, aredis_reply *r, const aredis_error *err,
                            void *data) {
    (void)c;
    (void)r;
    conn *cn = data;
    aredis_pool *p = cn->pool;
    enter(p);
    cn->owed--;
    if (err) {
        cn->broken = 1;
        if (cn->health) p->st.health_check_failures++;
    }
    if (cn->owed == 0) cn->health = 0;
    after_owed(p, cn);
    leave(p);
}

/* DISCARD: "ERR DISCARD without MULTI" (a MULTI the server refused) is
 * harmless; anything else is not. */
static void own_discard_done(aredis_client *c, aredis_reply *r, const aredis_error *err,
                             void *data) {
    if (err && err->code == AREDIS_ERR_SERVER) err = NULL;
    own_strict_done(c, r, err, data);
}

static void own(aredis_pool *p, conn *cn, aredis_reply_fn *done, int argc,
                const char *const *argv) {
    (void)p;
    /* The pool's own commands are not the application's operations. */
    aredis__obs_pause(cn->c, 1);
    aredis_err e = aredis_command_argv(cn->c, done, cn, argc, argv, NULL);
    aredis__obs_pause(cn->c, 0);
    if (e != AREDIS_ERR_OK)
        cn->broken = 1;
    else
        cn->owed++;
}

static void start_check(aredis_pool *p, conn *cn) {
    static const char *const ping[] = {"PING"};
    p->st.health_checks++;
    cn->health = 1;
    move_to(p, cn, AT_CHECKING);
    own(p, cn, own_strict_done, 1, ping);
    if (cn->broken && cn->owed == 0) {
        p->st.health_check_failures++;
        discard(p, cn, 0);
    }
}

/*
 * A connection back from a user (released) or from a check (its pool
 * commands all answered): is it fit for the next user as it is, after a
 * reset in place, or must it go? (docs/POOL.md, "Dirty connections".)
 */
static void settle(aredis_pool *p, conn *cn) {
    aredis_client *c = cn->c;
    cn->blocking = 0;
    if (cn->with) {
        cn->with->cn = NULL;
        cn->with = NULL;
    }
    if (cn->broken || aredis_client_state(c) != AREDIS_STATE_READY) {
        discard(p, cn, 0);
        serve(p);
        return;
    }
    unsigned s = aredis__session(c);
    if (s & (AREDIS__SESS_WATCH | AREDIS__SESS_SUBSCRIBED)) {
        discard(p, cn, 1);
    } else if (s & (AREDIS__SESS_BLOCKING | AREDIS__SESS_AUTH)) {
        discard(p, cn, 0);
    } else {
        size_t pending = aredis_client_pending(c);
        size_t users = pending > cn->owed ? pending - cn->owed : 0;
        /* Replies owed to the released user (or to commands that timed
         * out, still owed by the server): a PING behind them says when
         * they have all come. */
        int fence = users > 0 || ((s & AREDIS__SESS_OWED) && cn->owed == 0);
        int reset = 0;
        if (s & AREDIS__SESS_MULTI) {
            static const char *const discard_argv[] = {"DISCARD"};
            own(p, cn, own_discard_done, 1, discard_argv);
            reset = 1;
        }
        if (s & AREDIS__SESS_DB) {
            char db[16];
            snprintf(db, sizeof db, "%d", p->copt.db);
            const char *select_argv[] = {"SELECT", db};
            own(p, cn, own_strict_done, 2, select_argv);
            reset = 1;
        }
        if (fence) {
            static const char *const ping[] = {"PING"};
            own(p, cn, own_strict_done, 1, ping);
            reset = 1;
        }
        uint64_t t = now_ms(p);
        if (cn->broken && !cn->owed) {
            discard(p, cn, 0);
        } else if (fence || cn->broken) {
            if (reset) p->st.resets++;
            move_to(p, cn, AT_CHECKING); /* settled again when answered */
        } else if (p->max_age && t - cn->born >= p->max_age && cn->owed == 0) {
            discard(p, cn, 0);
        } else {
            if (reset) p->st.resets++;
            cn->used = t;
            move_to(p, cn, AT_IDLE);
            idle_tick(p, cn, t);
        }
    }
    serve(p);
}

/* ---- Handing out --------------------------------------------------------- */

/*
 * An idle connection, or NULL. Idle connections that are lost go; those
 * past max_age go; those idle longer than health_check_after_ms get a PING
 * first (out of rotation until it answers). Most recently used first (the
 * others age out). For a user (`for_cmd` 0): one with nothing in flight
 * if there is one, else the one with the fewest pool commands. For a pool
 * command: the first usable one, whatever it carries — commands of the
 * pool share one connection and leave in one write (the server runs them
 * one at a time anyway; a blocking one takes its connection out of
 * rotation, after_issue()).
 */
static conn *pick_idle(aredis_pool *p, int for_cmd) {
    conn *best = NULL, *next;
    uint64_t t = p->idle.n ? now_ms(p) : 0;
    p->picked_at = t;
    for (conn *cn = p->idle.head; cn; cn = next) {
        next = cn->next;
        if (cn->broken || aredis_client_state(cn->c) != AREDIS_STATE_READY) {
            if (cn->owed == 0) discard(p, cn, 0);
            continue;
        }
        if (p->max_age && t - cn->born >= p->max_age) {
            /* Too old: no new work; it goes once its pool commands are
             * answered (after_owed()). */
            if (cn->owed == 0) discard(p, cn, 0);
            continue;
        }
        if (cn->owed == 0) {
            if (p->health_after && t - cn->used >= p->health_after) {
                start_check(p, cn);
                continue;
            }
            return cn;
        }
        if (for_cmd) return cn;
        if (!best || cn->owed < best->owed) best = cn;
    }
    return best;
}

static aredis_err issue_waiting(aredis_pool *p, cmd_ctx *x, conn *cn);

/* Hand cn to w; for a pool command, issue it there. Returns its error
 * when that fails (w then failed with it). */
static aredis_err grant(aredis_pool *p, waiter *w, conn *cn) {
    if (w->kind == W_CMD) {
        cmd_ctx *x = w->x;
        aredis_err e = issue_waiting(p, x, cn);
        if (e != AREDIS_ERR_OK) {
            fail_waiter(p, w, e, aredis_call_error()->detail);
        } else {
            x->w = NULL;
            waiter_free(p, w);
        }
        return e;
    }
    move_to(p, cn, AT_USER);
    w->granted = cn;
    push_done(p, w);
    return AREDIS_ERR_OK;
}

static void serve(aredis_pool *p) {
    if (p->closing) return;
    while (p->waiters.head) {
        conn *cn = pick_idle(p, p->waiters.head->kind == W_CMD);
        if (!cn) break;
        waiter *w = wlist_pop(&p->waiters);
        w->queued = 0;
        if (w->kind == W_CMD)
            p->wait_cmd--;
        else
            p->wait_conn--;
        uint64_t t0 = w->t0; /* grant may recycle w */
        aredis_err e = grant(p, w, cn);
        wait_over_since(p, t0, e); /* the gauges with it granted */
    }
    ensure(p);
}

/* The detail of a wait that timed out: what the pool looked like. */
static void exhausted(aredis_pool *p, char *out, size_t len) {
    int n = snprintf(out, len,
                     "acquire timed out after %u ms: pool exhausted: %zu in use, %zu idle, max "
                     "%u, %zu waiting",
                     (unsigned)p->acquire_timeout, p->user.n, p->idle.n, p->max, p->waiters.n);
    size_t at = n < 0 ? 0 : (size_t)n;
    if (at < len && p->opening.n)
        at += (size_t)snprintf(out + at, len - at, ", %zu opening", p->opening.n);
    if (at < len && p->checking.n)
        at += (size_t)snprintf(out + at, len - at, ", %zu being checked", p->checking.n);
    if (at < len && p->last_error[0])
        snprintf(out + at, len - at, "; last connect error: %s", p->last_error);
}

/* Take a connection now (none waits ahead) or wait for one. */
static void acquire_or_wait(aredis_pool *p, waiter *w) {
    conn *cn = p->waiters.head ? NULL : pick_idle(p, w->kind == W_CMD);
    if (cn) {
        grant(p, w, cn);
        ensure(p);
        return;
    }
    w->deadline = 0;
    if (p->acquire_timeout) {
        uint64_t t = now_ms(p);
        w->deadline = t + p->acquire_timeout;
        need_tick(p, w->deadline, t);
    }
    w->queued = 1;
    w->t0 = p->mp || p->obs ? aredis__mono_ns() : 0;
    wlist_push(&p->waiters, w);
    if (w->kind == W_CMD)
        p->wait_cmd++;
    else
        p->wait_conn++;
    ensure(p);
}

/* ---- Fork ------------------------------------------------------------------ */

static void drop_list(aredis_pool *p, clist *l) {
    conn *cn;
    while ((cn = l->head)) {
        clist_unlink(l, cn);
        cn->where = AT_GONE;
        if (cn->created) p->st.discarded++;
        if (cn->with) {
            cn->with->cn = NULL;
            cn->with = NULL;
        }
        cn->next = p->forked;
        p->forked = cn;
    }
}

/*
 * First use in a forked child: the connections belong to the parent. Drop
 * them without a byte (their clients are freed on the next dispatch, where
 * a forked client only closes its descriptor), fail what waited, and open
 * fresh ones.
 */
static void check_fork(aredis_pool *p) {
    if (p->fork_gen == aredis__fork_current()) return;
    p->fork_gen = aredis__fork_current();
    drop_list(p, &p->opening);
    drop_list(p, &p->idle);
    drop_list(p, &p->user);
    drop_list(p, &p->checking);
    while (p->kept) {
        conn *cn = p->kept;
        p->kept = cn->next;
        cn->next = p->forked;
        p->forked = cn;
    }
    /* (Discarded ones not reaped yet cannot exist here: reap runs before
     * every return to the caller.) */
    for (waiter *w = p->done.head; w; w = w->next) {
        if (w->granted) {
            w->granted = NULL;
            w->code = AREDIS_ERR_FORKED;
            snprintf(w->detail, sizeof w->detail, "inherited across fork()");
        }
    }
    waiter *w;
    while ((w = wlist_pop(&p->waiters))) {
        w->queued = 0;
        wait_over(p, w, AREDIS_ERR_FORKED);
        fail_waiter(p, w, AREDIS_ERR_FORKED, "inherited across fork()");
    }
    p->wait_conn = p->wait_cmd = 0;
    p->retry_at = 0;
    p->retry_delay = 0;
    p->dispatch_armed = 0; /* a start in the parent: start it again here */
    arm_dispatch(p);
    p->tick_dirty = 1;
    ensure(p);
}

/* ---- with() -------------------------------------------------------------- */

static void with_unref(with_ctx *x) {
    if (--x->refs == 0) aredis__free(x);
}

/* The work is over: give the connection back, settle the caller's future
 * as fn's did (r/err), drop what the pool held. */
static void with_finish(with_ctx *x, aredis_reply *r, const aredis_error *err) {
    aredis_pool *p = x->pool;
    if (p) {
        enter(p);
        if (x->active) {
            x->active = 0;
            if (x->prev)
                x->prev->next = x->next;
            else
                p->withs = x->next;
            if (x->next) x->next->prev = x->prev;
        }
        if (x->cn && !p->closing) {
            conn *cn = x->cn;
            x->cn = NULL;
            cn->with = NULL;
            if (cn->where == AT_USER) settle(p, cn);
        }
    }
    x->finishing = 1;
    if (x->outer) aredis__future_done(NULL, r, err, x->outer); /* drops the completer's ref */
    x->outer = NULL;
    aredis_future *inner = x->inner;
    x->inner = NULL;
    aredis_future_release(inner);
    if (p) leave(p);
    with_unref(x);
}

static void with_inner_done(aredis_future *f, void *data) {
    with_ctx *x = data;
    with_finish(x, aredis_future_reply(f), aredis_future_error(f));
}

/* The caller's future settled: by the pool, or cancelled by the caller. */
static void with_outer_done(aredis_future *f, void *data) {
    (void)f;
    with_ctx *x = data;
    x->settled = 1;
    if (!x->finishing) {
        aredis_pool *p = x->pool;
        if (p) enter(p);
        if (p && x->w && x->w->queued) {
            /* Still waiting: the wait ends. */
            waiter *w = x->w;
            wlist_unlink(&p->waiters, w);
            p->wait_conn--;
            wait_over(p, w, AREDIS_ERR_CANCELLED);
            x->w = NULL;
            waiter_free(p, w);
            with_finish(x, NULL, NULL);
        } else if (x->inner) {
            aredis_future_cancel(x->inner); /* its then finishes the work */
        }
        /* A grant not delivered yet: dispatch sees `settled`. */
        if (p) leave(p);
    }
    with_unref(x);
}

/* A with()'s connection is there (dispatch): run fn. */
static void with_start(aredis_pool *p, with_ctx *x, conn *cn) {
    x->w = NULL;
    if (x->settled) {
        x->cn = cn;
        cn->with = x;
        with_finish(x, NULL, NULL);
        return;
    }
    x->cn = cn;
    cn->with = x;
    p->st.acquires++;
    aredis_future *inner = x->fn(cn->c, x->data);
    if (!inner) {
        with_finish(x, NULL, NULL);
        return;
    }
    x->inner = inner;
    if (aredis_future_then(inner, with_inner_done, x) != AREDIS_ERR_OK) {
        aredis_error e = {AREDIS_ERR_NOMEM, "out of memory", ""};
        with_finish(x, NULL, &e);
    }
}

/* ---- Pool commands --------------------------------------------------------- */

static cmd_ctx *ctx_get(aredis_pool *p) {
    cmd_ctx *x = p->free_ctx;
    if (x) {
        p->free_ctx = x->next_free;
        p->nfree_ctx--;
        memset(x, 0, sizeof *x);
    } else {
        x = aredis__calloc(1, sizeof *x);
        if (!x) return NULL;
    }
    x->pool = p;
    return x;
}

static void ctx_put(aredis_pool *p, cmd_ctx *x) {
    aredis__free(x->bytes);
    x->bytes = NULL;
    if (p && !p->closing && p->nfree_ctx < 64) {
        x->next_free = p->free_ctx;
        p->free_ctx = x;
        p->nfree_ctx++;
    } else {
        aredis__free(x);
    }
}

/* A command is on cn (just picked by pick_idle()) now: count it, and take
 * cn out of rotation when the command leaves anything behind (a blocking
 * command, MULTI, SELECT...): settled once the pool's commands on it are
 * answered. */
static void after_issue(aredis_pool *p, conn *cn) {
    cn->owed++;
    p->st.commands++;
    cn->used = p->picked_at;
    unsigned s = aredis__session(cn->c);
    if (s & ~AREDIS__SESS_OWED) {
        cn->blocking = (s & AREDIS__SESS_BLOCKING) != 0;
        move_to(p, cn, AT_CHECKING);
    }
}

/* The callback form's reply. */
static void cmd_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    cmd_ctx *x = data;
    aredis_pool *p = x->pool;
    conn *cn = x->cn;
    enter(p);
    cn->owed--;
    aredis_reply_fn *cb = x->cb;
    void *cbdata = x->data;
    ctx_put(p, x);
    if (cb) cb(c, r, err, cbdata);
    after_owed(p, cn);
    leave(p);
}

static void cmd_unref(cmd_ctx *x) {
    if (--x->refs == 0) ctx_put(x->pool, x);
}

/* The future form: the command's own future is done. For one that waited,
 * the caller's future settles the same way. */
static void cmd_inner_done(aredis_future *f, void *data) {
    cmd_ctx *x = data;
    aredis_pool *p = x->pool;
    enter(p);
    conn *cn = x->cn;
    cn->owed--;
    if (x->outer) {
        x->finishing = 1;
        aredis__future_done(NULL, aredis_future_reply(f), aredis_future_error(f), x->outer);
        x->outer = NULL;
        aredis_future_release(x->inner);
        x->inner = NULL;
        cmd_unref(x);
    } else {
        ctx_put(p, x);
    }
    after_owed(p, cn);
    leave(p);
}

/* The caller's future of a command that waited settled (by the pool, or
 * cancelled). */
static void cmd_outer_done(aredis_future *f, void *data) {
    (void)f;
    cmd_ctx *x = data;
    aredis_pool *p = x->pool;
    enter(p);
    x->settled = 1;
    if (!x->finishing) {
        if (x->w && x->w->queued) {
            waiter *w = x->w;
            wlist_unlink(&p->waiters, w);
            p->wait_cmd--;
            wait_over(p, w, AREDIS_ERR_CANCELLED);
            x->w = NULL;
            waiter_free(p, w);
            aredis__future_done(NULL, NULL, NULL, x->outer); /* done already: drops the ref */
            x->outer = NULL;
            cmd_unref(x);
        } else if (x->inner) {
            aredis_future_cancel(x->inner);
        }
    }
    cmd_unref(x);
    leave(p);
}

/* Send a command that waited (its bytes) on cn. */
static aredis_err issue_waiting(aredis_pool *p, cmd_ctx *x, conn *cn) {
    aredis__arg small[16], *args = small;
    long n = aredis__resp_args(x->bytes, x->len, small, 16);
    if (n <= 0) return aredis__call_fail(AREDIS_ERR_INVALID, "malformed command");
    if (n > 16) {
        args = aredis__calloc((size_t)n, sizeof *args);
        if (!args) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        aredis__resp_args(x->bytes, x->len, args, (size_t)n);
    }
    const char *sv[16], **argv = sv;
    size_t sl[16], *lens = sl;
    if (n > 16) {
        argv = aredis__calloc((size_t)n, sizeof *argv);
        lens = aredis__calloc((size_t)n, sizeof *lens);
    }
    aredis_err e = AREDIS_ERR_NOMEM;
    if (argv && lens) {
        for (long i = 0; i < n; i++) {
            argv[i] = args[i].p;
            lens[i] = args[i].n;
        }
        const aredis_cmd_opts *o = x->has_opts ? &x->opts : NULL;
        x->cn = cn;
        if (x->outer) {
            aredis_future *inner = aredis_future_argv_ex(cn->c, o, (int)n, argv, lens);
            if (!inner) {
                e = aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
            } else if (aredis_future_is_done(inner)) {
                const aredis_error *err = aredis_future_error(inner);
                e = aredis__call_fail(err ? err->code : AREDIS_ERR_INVALID, "%s",
                                      err ? err->detail : "refused");
                aredis_future_release(inner);
            } else {
                x->inner = inner;
                after_issue(p, cn);
                if (aredis_future_then(inner, cmd_inner_done, x) != AREDIS_ERR_OK) {
                    /* Out of memory: the command goes on; the pool stops
                     * waiting for it. */
                    cn->owed--;
                    aredis_future_cancel(inner);
                    aredis_future_release(inner);
                    after_owed(p, cn);
                    x->inner = NULL;
                    e = aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
                } else {
                    e = AREDIS_ERR_OK;
                }
            }
        } else {
            e = aredis_command_argv_ex(cn->c, o, cmd_reply, x, (int)n, argv, lens);
            if (e == AREDIS_ERR_OK) after_issue(p, cn);
        }
        if (e == AREDIS_ERR_OK) {
            aredis__free(x->bytes);
            x->bytes = NULL;
        } else {
            x->cn = NULL;
        }
    } else {
        aredis__call_fail(e, "out of memory");
    }
    if (args != small) aredis__free(args);
    if (argv != sv) aredis__free(argv);
    if (lens != sl) aredis__free(lens);
    return e;
}

/* A pool command that waits: its bytes kept until a connection is idle. */
static aredis_err wait_command(aredis_pool *p, cmd_ctx *x, int argc, const char *const *argv,
                               const size_t *argvlen, const char *fmt, va_list *ap) {
    char *bytes = NULL;
    size_t len = 0;
    aredis_err e;
    if (fmt) {
        va_list cp;
        va_copy(cp, *ap);
        e = aredis_vformat_command(&bytes, &len, fmt, cp);
        va_end(cp);
    } else {
        e = aredis_format_argv(&bytes, &len, argc, argv, argvlen);
    }
    if (e != AREDIS_ERR_OK)
        return aredis__call_fail(e, e == AREDIS_ERR_NOMEM ? "out of memory"
                                                          : "malformed command or format");
    x->bytes = aredis__memdup0(bytes, len);
    x->len = len;
    aredis_free_command(bytes);
    waiter *w = waiter_new(p);
    if (!x->bytes || !w) {
        waiter_free(p, w);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    w->kind = W_CMD;
    w->x = x;
    x->w = w;
    acquire_or_wait(p, w);
    return AREDIS_ERR_OK;
}

static aredis_err refuse_closed(const aredis_pool *p) {
    (void)p;
    return aredis__call_fail(AREDIS_ERR_CLOSED, "pool closed");
}

/* The callback form, both argument styles. */
static aredis_err pool_command(aredis_pool *p, const aredis_cmd_opts *o, aredis_reply_fn *cb,
                               void *data, int argc, const char *const *argv, const size_t *argvlen,
                               const char *fmt, va_list *ap) {
    if (!p) return aredis__call_fail(AREDIS_ERR_INVALID, "pool is NULL");
    if (!fmt && (argc < 1 || !argv))
        return aredis__call_fail(AREDIS_ERR_INVALID, "no command given");
    enter(p);
    check_fork(p);
    aredis_err e;
    cmd_ctx *x = NULL;
    if (p->closing) {
        e = refuse_closed(p);
    } else if (!(x = ctx_get(p))) {
        e = aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    } else {
        x->cb = cb;
        x->data = data;
        if (o) {
            x->opts = *o;
            x->has_opts = 1;
        }
        conn *cn = p->waiters.head ? NULL : pick_idle(p, 1);
        if (cn) {
            x->cn = cn;
            if (fmt) {
                va_list cp;
                va_copy(cp, *ap);
                e = aredis_vcommand_ex(cn->c, o, cmd_reply, x, fmt, cp);
                va_end(cp);
            } else {
                e = aredis_command_argv_ex(cn->c, o, cmd_reply, x, argc, argv, argvlen);
            }
            if (e == AREDIS_ERR_OK) after_issue(p, cn);
        } else {
            e = wait_command(p, x, argc, argv, argvlen, fmt, ap);
        }
        if (e != AREDIS_ERR_OK) ctx_put(p, x);
    }
    leave(p);
    return e;
}

aredis_err aredis_pool_vcommand(aredis_pool *p, aredis_reply_fn *cb, void *data, const char *fmt,
                                va_list ap) {
    if (!fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL");
    va_list cp;
    va_copy(cp, ap);
    aredis_err e = pool_command(p, NULL, cb, data, 0, NULL, NULL, fmt, &cp);
    va_end(cp);
    return e;
}

aredis_err aredis_pool_command(aredis_pool *p, aredis_reply_fn *cb, void *data, const char *fmt,
                               ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis_pool_vcommand(p, cb, data, fmt, ap);
    va_end(ap);
    return e;
}

aredis_err aredis_pool_command_argv(aredis_pool *p, aredis_reply_fn *cb, void *data, int argc,
                                    const char *const *argv, const size_t *argvlen) {
    return pool_command(p, NULL, cb, data, argc, argv, argvlen, NULL, NULL);
}

aredis_err aredis_pool_command_argv_ex(aredis_pool *p, const aredis_cmd_opts *opts,
                                       aredis_reply_fn *cb, void *data, int argc,
                                       const char *const *argv, const size_t *argvlen) {
    return pool_command(p, opts, cb, data, argc, argv, argvlen, NULL, NULL);
}

/* A future of the pool's loop that has failed already with the last call
 * error (code). */
static aredis_future *failed_future(aredis_pool *p, aredis_err code) {
    aredis_future *f = aredis__future_pending_loop(p->loop);
    return f ? aredis__future_refused(f, code) : NULL;
}

/* The future form. With a connection idle now, the command's own future
 * (cancel works on it directly); else a future of the pool that settles
 * as the command does once it could be sent. */
static aredis_future *pool_future(aredis_pool *p, int argc, const char *const *argv,
                                  const size_t *argvlen, const char *fmt, va_list *ap) {
    if (!p) return NULL;
    if (!fmt && (argc < 1 || !argv))
        return failed_future(p, aredis__call_fail(AREDIS_ERR_INVALID, "no command given"));
    enter(p);
    check_fork(p);
    aredis_future *f = NULL;
    cmd_ctx *x = NULL;
    if (p->closing) {
        f = failed_future(p, refuse_closed(p));
    } else if (!(x = ctx_get(p))) {
        f = NULL;
    } else {
        conn *cn = p->waiters.head ? NULL : pick_idle(p, 1);
        if (cn) {
            if (fmt) {
                va_list cp;
                va_copy(cp, *ap);
                f = aredis_future_vcommand(cn->c, fmt, cp);
                va_end(cp);
            } else {
                f = aredis_future_argv(cn->c, argc, argv, argvlen);
            }
            if (!f || aredis_future_is_done(f)) {
                ctx_put(p, x); /* refused (or out of memory): nothing in flight */
            } else {
                x->cn = cn;
                after_issue(p, cn);
                if (aredis_future_then(f, cmd_inner_done, x) != AREDIS_ERR_OK) {
                    cn->owed--;
                    aredis_future_cancel(f);
                    ctx_put(p, x);
                    after_owed(p, cn);
                }
            }
        } else {
            x->outer = aredis__future_pending_loop(p->loop);
            if (!x->outer) {
                ctx_put(p, x);
            } else if (aredis_future_then(x->outer, cmd_outer_done, x) != AREDIS_ERR_OK) {
                f = aredis__future_refused(x->outer,
                                           aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory"));
                ctx_put(p, x);
            } else {
                x->refs = 2; /* the work, the then */
                f = x->outer;
                aredis_err e = wait_command(p, x, argc, argv, argvlen, fmt, ap);
                if (e != AREDIS_ERR_OK) {
                    /* Fails the caller's future; its then drops a ref. */
                    x->finishing = 1;
                    aredis_error err = {e, aredis_call_error()->detail, ""};
                    aredis__future_done(NULL, NULL, &err, x->outer);
                    x->outer = NULL;
                    cmd_unref(x);
                }
            }
        }
    }
    leave(p);
    return f;
}

aredis_future *aredis_pool_future_vcommand(aredis_pool *p, const char *fmt, va_list ap) {
    if (!p) return NULL;
    if (!fmt) return failed_future(p, aredis__call_fail(AREDIS_ERR_INVALID, "format is NULL"));
    va_list cp;
    va_copy(cp, ap);
    aredis_future *f = pool_future(p, 0, NULL, NULL, fmt, &cp);
    va_end(cp);
    return f;
}

aredis_future *aredis_pool_future_command(aredis_pool *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_pool_future_vcommand(p, fmt, ap);
    va_end(ap);
    return f;
}

aredis_future *aredis_pool_future_argv(aredis_pool *p, int argc, const char *const *argv,
                                       const size_t *argvlen) {
    return pool_future(p, argc, argv, argvlen, NULL, NULL);
}

/* ---- Acquire, release, with ------------------------------------------------ */

aredis_err aredis_pool_acquire(aredis_pool *p, aredis_pool_acquire_fn *cb, void *data) {
    if (!p || !cb) return aredis__call_fail(AREDIS_ERR_INVALID, "pool or callback is NULL");
    enter(p);
    check_fork(p);
    aredis_err e = AREDIS_ERR_OK;
    waiter *w = NULL;
    if (p->closing)
        e = refuse_closed(p);
    else if (!(w = waiter_new(p)))
        e = aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    if (w) {
        w->kind = W_ACQUIRE;
        w->cb = cb;
        w->data = data;
        acquire_or_wait(p, w);
    }
    leave(p);
    return e;
}

/* The connection of this pool acquired as c, or NULL. */
static conn *find_user(aredis_pool *p, const aredis_client *c) {
    for (conn *cn = p->user.head; cn; cn = cn->next)
        if (cn->c == c) return cn;
    return NULL;
}

aredis_err aredis_pool_release(aredis_pool *p, aredis_client *c) {
    if (!p || !c) return aredis__call_fail(AREDIS_ERR_INVALID, "pool or client is NULL");
    enter(p);
    check_fork(p);
    aredis_err e = AREDIS_ERR_OK;
    conn *cn = p->closing ? NULL : find_user(p, c);
    if (p->closing) {
        /* Everything is being closed anyway. */
    } else if (!cn) {
        e = aredis__call_fail(AREDIS_ERR_INVALID,
                              "not a connection acquired from this pool (released already?)");
    } else if (cn->with) {
        e = aredis__call_fail(AREDIS_ERR_INVALID,
                              "held by aredis_pool_with(): released when its future settles");
    } else {
        settle(p, cn);
    }
    leave(p);
    return e;
}

aredis_future *aredis_pool_with(aredis_pool *p, aredis_pool_with_fn *fn, void *data) {
    if (!p) return NULL;
    if (!fn) return failed_future(p, aredis__call_fail(AREDIS_ERR_INVALID, "fn is NULL"));
    enter(p);
    check_fork(p);
    aredis_future *f = NULL;
    with_ctx *x = NULL;
    waiter *w = NULL;
    if (p->closing) {
        f = failed_future(p, refuse_closed(p));
    } else if ((x = aredis__calloc(1, sizeof *x)) && (w = waiter_new(p)) &&
               (f = aredis__future_pending_loop(p->loop))) {
        x->pool = p;
        x->fn = fn;
        x->data = data;
        x->outer = f;
        x->refs = 2; /* the work, the then */
        if (aredis_future_then(f, with_outer_done, x) != AREDIS_ERR_OK) {
            f = aredis__future_refused(f, aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory"));
            aredis__free(x);
            waiter_free(p, w);
        } else {
            x->active = 1;
            x->next = p->withs;
            if (p->withs) p->withs->prev = x;
            p->withs = x;
            w->kind = W_WITH;
            w->w = x;
            x->w = w;
            acquire_or_wait(p, w);
        }
    } else {
        aredis__free(x);
        if (w) waiter_free(p, w);
    }
    leave(p);
    return f;
}

/* ---- Dispatch: outcomes delivered in a later loop turn --------------------- */

static void deliver(aredis_pool *p, waiter *w) {
    conn *cn = w->granted;
    if (cn &&
        (cn->where != AT_USER || cn->broken || aredis_client_state(cn->c) != AREDIS_STATE_READY)) {
        /* Lost between the grant and now: this waiter is first in line for
         * another one. */
        if (cn->where == AT_USER) discard(p, cn, 0);
        w->granted = NULL;
        w->queued = 1;
        w->t0 = p->mp || p->obs ? aredis__mono_ns() : 0; /* a wait again */
        wlist_push_head(&p->waiters, w);
        p->wait_conn++;
        p->tick_dirty = 1;
        serve(p);
        return;
    }
    aredis_error e = {w->code, w->detail, ""};
    switch (w->kind) {
    case W_ACQUIRE:
        if (cn) {
            p->st.acquires++;
            w->cb(p, cn->c, NULL, w->data);
        } else {
            w->cb(p, NULL, &e, w->data);
        }
        break;
    case W_WITH: {
        with_ctx *x = w->w;
        x->w = NULL;
        if (cn)
            with_start(p, x, cn);
        else
            with_finish(x, NULL, &e);
        break;
    }
    case W_CMD: {
        /* Only failures get here (a sent command is answered by its
         * client). */
        cmd_ctx *x = w->x;
        x->w = NULL;
        if (x->outer) {
            x->finishing = 1;
            aredis__future_done(NULL, NULL, &e, x->outer);
            x->outer = NULL;
            cmd_unref(x);
        } else {
            aredis_reply_fn *cb = x->cb;
            void *data = x->data;
            ctx_put(p, x);
            if (cb) cb(NULL, NULL, &e, data);
        }
        break;
    }
    }
    waiter_free(p, w);
}

static void on_dispatch(void *arg) {
    aredis_pool *p = arg;
    enter(p);
    p->dispatch_armed = 0;
    if (p->free_pending) {
        /* Freed from inside a connection's callback: a new turn now. */
        p->defer_destroy = 0;
        leave(p);
        return;
    }
    free_graveyard(p);
    check_fork(p);
    conn *cn;
    while ((cn = p->forked)) {
        /* In a forked child a client only closes its descriptor. */
        p->forked = cn->next;
        aredis_client *c = cn->c;
        bury(p, cn);
        aredis_client_free(c);
    }
    waiter *w;
    while (!p->closing && (w = wlist_pop(&p->done)))
        deliver(p, w);
    leave(p);
}

/* ---- The tick: deadlines, idle connections, reopening ---------------------- */

static void rearm(aredis_pool *p) {
    p->tick_dirty = 0;
    uint64_t t = now_ms(p), next = UINT64_MAX;
    /* FIFO with one timeout for all: the first deadline is the earliest
     * (one put back first in line has an earlier one still). */
    for (waiter *w = p->waiters.head; w; w = w->next) {
        if (w->deadline) {
            next = w->deadline;
            break;
        }
    }
    if (p->idle_timeout || p->max_age) {
        size_t total = total_count(p);
        for (conn *cn = p->idle.head; cn; cn = cn->next) {
            if (cn->owed) {
                /* Busy with pool commands: look again later. */
                uint64_t later = t + (p->idle_timeout ? p->idle_timeout : p->max_age);
                if (later < next) next = later;
                continue;
            }
            if (p->max_age && cn->born + p->max_age < next) next = cn->born + p->max_age;
            if (p->idle_timeout && total > p->min && cn->used + p->idle_timeout < next)
                next = cn->used + p->idle_timeout;
        }
    }
    if (p->retry_at && (p->waiters.n || total_count(p) < p->min) && p->retry_at < next)
        next = p->retry_at;
    p->tick_armed = 0;
    if (next == UINT64_MAX)
        aredis_timer_stop(p->tick);
    else
        need_tick(p, next, t);
}

static void on_tick(void *arg) {
    aredis_pool *p = arg;
    enter(p);
    p->tick_armed = 0;
    free_graveyard(p);
    check_fork(p);
    p->tick_dirty = 1; /* what comes next is computed by leave() */
    if (!p->closing) {
        uint64_t t = now_ms(p);
        waiter *w, *wn;
        for (w = p->waiters.head; w; w = wn) {
            wn = w->next;
            if (!w->deadline || w->deadline > t) continue;
            char msg[360];
            exhausted(p, msg, sizeof msg);
            wlist_unlink(&p->waiters, w);
            w->queued = 0;
            if (w->kind == W_CMD)
                p->wait_cmd--;
            else
                p->wait_conn--;
            p->st.timeouts++;
            wait_over(p, w, AREDIS_ERR_TIMEOUT);
            fail_waiter(p, w, AREDIS_ERR_TIMEOUT, msg);
        }
        /* Least recently used first: those go when above min. */
        conn *cn, *prev;
        for (cn = p->idle.tail; cn; cn = prev) {
            prev = cn->prev;
            if (cn->owed) continue;
            if (p->max_age && t - cn->born >= p->max_age)
                discard(p, cn, 0);
            else if (p->idle_timeout && t - cn->used >= p->idle_timeout && total_count(p) > p->min)
                discard(p, cn, 0);
        }
        serve(p);
    }
    leave(p);
}

/* ---- Lifecycle --------------------------------------------------------------- */

static void destroy(aredis_pool *p) {
    free_graveyard(p);
    while (p->wev) {
        wait_event *e = p->wev;
        p->wev = e->next;
        aredis__free(e);
    }
    while (p->free_w) {
        waiter *w = p->free_w;
        p->free_w = w->next;
        aredis__free(w);
    }
    aredis_timer_free(p->dispatch);
    while (p->free_ctx) {
        cmd_ctx *x = p->free_ctx;
        p->free_ctx = x->next_free;
        aredis__free(x);
    }
    aredis_cache_free(p->copt.cache);
    aredis__options_release(&p->copt);
    aredis_tls_context_release(p->tls);
    aredis__free(p);
}

aredis_pool *aredis_pool_new(aredis_loop *loop, const aredis_pool_options *opts) {
    aredis_pool_options def = AREDIS_POOL_OPTIONS_INIT;
    if (!loop) {
        aredis__call_fail(AREDIS_ERR_INVALID, "loop is NULL");
        return NULL;
    }
    if (!opts) opts = &def;
    if (opts->max_connections == 0) {
        aredis__call_fail(AREDIS_ERR_INVALID, "invalid pool options: max_connections is 0");
        return NULL;
    }
    if (opts->min_connections > opts->max_connections) {
        aredis__call_fail(AREDIS_ERR_INVALID,
                          "invalid pool options: min_connections above max_connections");
        return NULL;
    }
    aredis_options o = opts->client;
    aredis_uri *u = NULL;
    if (opts->uri) {
        char eb[256];
        aredis_err e = aredis_uri_parse(opts->uri, &u, eb, sizeof eb);
        if (e != AREDIS_ERR_OK) {
            aredis__call_fail(e, "%s", eb);
            return NULL;
        }
        aredis_uri_apply(u, &o);
    }
    aredis_pool *p = aredis__calloc(1, sizeof *p);
    int ok = p && aredis__options_dup(&p->copt, &o) == 0;
    aredis_uri_free(u);
    /* One cache for every connection (a reference of the pool's own). */
    if (ok)
        aredis__csc_ref(p->copt.cache);
    else if (p)
        p->copt.cache = NULL;
    if (!ok) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    p->loop = loop;
    p->wev_tail = &p->wev;
    p->min = opts->min_connections;
    p->max = opts->max_connections;
    p->acquire_timeout = opts->acquire_timeout_ms;
    p->idle_timeout = opts->idle_timeout_ms;
    p->max_age = opts->max_age_ms;
    p->health_after = opts->health_check_after_ms;
    /* One TLS context for every connection. */
    if (p->copt.tls_context)
        p->tls = aredis_tls_context_retain(p->copt.tls_context);
    else if (p->copt.tls && !(p->tls = aredis_tls_context_new(&p->copt)))
        goto fail; /* the call error says why */
    p->copt.tls_context = NULL;
    /* The options checked as every connection will have them. */
    aredis_options ao = p->copt;
    ao.tls = 0;
    ao.on_push = NULL;
    ao.on_connect = NULL;
    ao.on_disconnect = NULL;
    ao.on_error = NULL;
    ao.on_reconnect_attempt = NULL;
    ao.cb_data = NULL;
    aredis_client *probe = aredis_client_new(loop, &ao);
    if (!probe) goto fail; /* the call error says why */
    aredis_client_free(probe);
    p->dispatch = aredis_timer_new(loop, on_dispatch, p);
    p->tick = aredis_timer_new(loop, on_tick, p);
    if (!p->dispatch || !p->tick) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    p->fork_gen = aredis__fork_generation();
    enter(p);
    ensure(p);
    leave(p);
    return p;
fail:
    if (p) {
        aredis_timer_free(p->tick);
        destroy(p);
    }
    return NULL;
}

static void free_clients(aredis_pool *p, conn **l) {
    conn *cn;
    while ((cn = *l)) {
        *l = cn->next;
        aredis_client *c = cn->c;
        bury(p, cn);
        aredis_client_free(c);
    }
}

void aredis_pool_free(aredis_pool *p) {
    if (!p || p->closing) return;
    enter(p);
    p->closing = 1;
    check_fork(p); /* in a child: the parent's connections dropped, no byte sent */
    static const char why[] = "pool freed";
    waiter *w;
    while ((w = wlist_pop(&p->waiters))) {
        w->queued = 0;
        wait_over(p, w, AREDIS_ERR_CANCELLED);
        w->granted = NULL;
        w->code = AREDIS_ERR_CANCELLED;
        snprintf(w->detail, sizeof w->detail, "%s", why);
        wlist_push(&p->done, w);
    }
    p->wait_conn = p->wait_cmd = 0;
    for (w = p->done.head; w; w = w->next) {
        if (w->granted) {
            w->granted = NULL;
            w->code = AREDIS_ERR_CANCELLED;
            snprintf(w->detail, sizeof w->detail, "%s", why);
        }
    }
    while ((w = wlist_pop(&p->done)))
        deliver(p, w);
    /* with()s at work: their futures fail now; the work's own future is
     * cancelled below when it is a command on the connection. */
    while (p->withs) {
        with_ctx *x = p->withs;
        p->withs = x->next;
        if (p->withs) p->withs->prev = NULL;
        x->active = 0;
        x->prev = x->next = NULL;
        if (x->cn) x->cn->with = NULL;
        x->cn = NULL;
        x->pool = NULL;
        if (!x->settled && x->outer) {
            x->finishing = 1;
            aredis_error e = {AREDIS_ERR_CANCELLED, why, ""};
            aredis__future_done(NULL, NULL, &e, x->outer);
            x->outer = NULL;
        }
    }
    clist *lists[] = {&p->opening, &p->idle, &p->user, &p->checking};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        while (lists[i]->head)
            discard(p, lists[i]->head, 0);
    reap(p);
    aredis__metrics_pool_detach(p->mp); /* its gauges end with it */
    p->mp = NULL;
    free_clients(p, &p->kept);
    free_clients(p, &p->forked);
    aredis_timer_free(p->tick);
    p->tick = NULL;
    if (p->conn_cb) {
        /* Inside a connection's on_error / on_disconnect: its teardown may
         * still call back (see the top of the file). */
        p->defer_destroy = 1;
        aredis_timer_start(p->dispatch, 0, 0);
    }
    p->free_pending = 1;
    leave(p);
}

aredis_loop *aredis_pool_loop(const aredis_pool *p) { return p->loop; }

void aredis_pool_get_stats(const aredis_pool *p, aredis_pool_stats *out) {
    *out = p->st;
    if (p->fork_gen != aredis__fork_current()) {
        /* A forked child that has not used the pool yet: the parent's
         * connections are not this process's. */
        out->total = out->idle = out->in_use = out->opening = out->checking = out->waiting = 0;
        return;
    }
    out->idle = p->idle.n;
    out->in_use = p->user.n;
    out->opening = p->opening.n;
    out->checking = p->checking.n;
    out->total = total_count(p);
    out->waiting = p->waiters.n;
}

/* ---- Observability (aredis/observe.h) ------------------------------------ */

/* Every connection the pool holds, in any state (the client of each). */
static aredis_err each_conn(aredis_pool *p, aredis_err (*fn)(aredis_pool *, aredis_client *)) {
    clist *lists[] = {&p->opening, &p->idle, &p->user, &p->checking};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        for (conn *cn = lists[i]->head; cn; cn = cn->next) {
            aredis_err e = fn(p, cn->c);
            if (e != AREDIS_ERR_OK) return e;
        }
    return AREDIS_ERR_OK;
}

static aredis_err give_observer(aredis_pool *p, aredis_client *c) {
    return aredis_client_set_observer(c, p->obs, p->obs_data);
}

static aredis_err give_metrics(aredis_pool *p, aredis_client *c) {
    return aredis_client_set_metrics(c, p->metrics);
}

aredis_err aredis_pool_set_observer(aredis_pool *p, const aredis_observer *obs, void *data) {
    if (!p) return aredis__call_fail(AREDIS_ERR_INVALID, "pool is NULL");
    p->obs = obs;
    p->obs_data = obs ? data : NULL;
    return each_conn(p, give_observer);
}

aredis_err aredis_pool_set_metrics(aredis_pool *p, aredis_metrics *m) {
    if (!p) return aredis__call_fail(AREDIS_ERR_INVALID, "pool is NULL");
    if (p->metrics != m) {
        struct aredis__mpool *mp = NULL;
        if (m) {
            char name[160];
            pool_name(p, name, sizeof name);
            if (!(mp = aredis__metrics_pool_attach(m, p, name, p->max)))
                return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        }
        aredis__metrics_pool_detach(p->mp);
        p->mp = mp;
        p->metrics = m;
    }
    /* Again with the same metrics after a NOMEM attaches the rest. */
    return each_conn(p, give_metrics);
}

void aredis__pool_metrics_gone(aredis_pool *p) {
    /* Its connections are detached by the metrics themselves. */
    p->mp = NULL;
    p->metrics = NULL;
}
