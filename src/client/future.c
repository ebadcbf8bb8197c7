/*
 * Futures: a command's outcome as a value (the Future::IO::Redis surface).
 *
 * A future is reference counted: the caller holds one reference, and
 * whatever will complete it (a command record, a ready-waiter, a combinator
 * input) holds another until it has done so. Completion happens once; the
 * then-callbacks run in order at that moment.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"
#include "client/feature.h"
#include "loop/loop_internal.h"
#include "util/alloc.h"

typedef struct then_node {
    struct then_node *next;
    aredis_future_fn *fn;
    void *data;
} then_node;

/* Link from a combinator input back to the combinator. */
typedef struct comb_link {
    aredis_future *f;
    long index;
} comb_link;

struct aredis_future {
    unsigned refs;
    int done;
    int failed;
    aredis_loop *loop;
    aredis_reply *reply;
    aredis_error err;
    char detail[256];
    then_node *thens, *thens_tail;
    void *data;
    /* a command's future */
    aredis_client *client;
    aredis__cmd *cmd;
    /* combinators */
    int is_any;
    size_t remaining;
    long index;
    comb_link *links;
};

static aredis_future *future_new(aredis_loop *loop, unsigned refs) {
    aredis_future *f = aredis__calloc(1, sizeof *f);
    if (!f) return NULL;
    f->refs = refs;
    f->loop = loop;
    f->index = -1;
    f->err.detail = f->detail;
    return f;
}

static void future_free(aredis_future *f) {
    aredis_reply_release(f->reply);
    then_node *t = f->thens;
    while (t) {
        then_node *n = t->next;
        aredis__free(t);
        t = n;
    }
    aredis__free(f->links);
    aredis__free(f);
}

void aredis_future_release(aredis_future *f) {
    if (f && --f->refs == 0) future_free(f);
}

static void future_complete(aredis_future *f, aredis_reply *r, aredis_err code, const char *detail,
                            const char *prefix) {
    if (f->done) return;
    f->done = 1;
    f->cmd = NULL;
    if (r) f->reply = aredis_reply_retain(r);
    if (code != AREDIS_ERR_OK) {
        f->failed = 1;
        f->err.code = code;
        snprintf(f->detail, sizeof f->detail, "%s", detail ? detail : aredis_strerror(code));
        snprintf(f->err.prefix, sizeof f->err.prefix, "%s", prefix ? prefix : "");
    }
    f->refs++; /* then-callbacks may release the caller's reference */
    then_node *t;
    while ((t = f->thens)) {
        f->thens = t->next;
        if (!f->thens) f->thens_tail = NULL;
        t->fn(f, t->data);
        aredis__free(t);
    }
    aredis_future_release(f);
}

static void complete_from(aredis_future *f, aredis_reply *r, const aredis_error *err) {
    if (err)
        future_complete(f, r, err->code, err->detail, err->prefix);
    else
        future_complete(f, r, AREDIS_ERR_OK, NULL, NULL);
}

/* ---- Command futures ---------------------------------------------------- */

static void on_cmd_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    aredis_future *f = data;
    f->cmd = NULL;
    complete_from(f, r, err);
    aredis_future_release(f); /* the command's reference */
}

static aredis_future *submit(aredis_client *c, const aredis_cmd_opts *o, int argc,
                             const char *const *argv, const size_t *argvlen, const char *fmt,
                             va_list *ap) {
    aredis_future *f = future_new(c->loop, 2);
    if (!f) return NULL;
    f->client = c;
    aredis_err e = aredis__submit(c, o, on_cmd_reply, f, 0, argc, argv, argvlen, fmt, ap, &f->cmd);
    if (e != AREDIS_ERR_OK) {
        f->refs--; /* no command holds it */
        future_complete(f, NULL, e, aredis_call_error()->detail, NULL);
    }
    return f;
}

/* ---- Futures completed by features (client/feature.h) ------------------ */

aredis_future *aredis__future_pending(aredis_client *c) {
    aredis_future *f = future_new(c->loop, 2);
    if (f) f->client = c;
    return f;
}

aredis_future *aredis__future_pending_loop(aredis_loop *loop) { return future_new(loop, 2); }

void aredis__future_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    on_cmd_reply(c, r, err, data);
}

void aredis__future_attach(aredis_future *f, aredis__cmd *cmd) {
    if (!f->done) f->cmd = cmd;
}

aredis_future *aredis__future_refused(aredis_future *f, aredis_err code) {
    f->refs--; /* nothing will complete it */
    future_complete(f, NULL, code, aredis_call_error()->detail, NULL);
    return f;
}

aredis_future *aredis_future_vcommand(aredis_client *c, const char *fmt, va_list ap) {
    return aredis_future_vcommand_ex(c, NULL, fmt, ap);
}

aredis_future *aredis_future_command(aredis_client *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = submit(c, NULL, 0, NULL, NULL, fmt, &ap);
    va_end(ap);
    return f;
}

aredis_future *aredis_future_vcommand_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                         const char *fmt, va_list ap) {
    va_list cp;
    va_copy(cp, ap);
    aredis_future *f = submit(c, opts, 0, NULL, NULL, fmt, &cp);
    va_end(cp);
    return f;
}

aredis_future *aredis_future_command_ex(aredis_client *c, const aredis_cmd_opts *opts,
                                        const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = submit(c, opts, 0, NULL, NULL, fmt, &ap);
    va_end(ap);
    return f;
}

aredis_future *aredis_future_argv(aredis_client *c, int argc, const char *const *argv,
                                  const size_t *argvlen) {
    return submit(c, NULL, argc, argv, argvlen, NULL, NULL);
}

aredis_future *aredis_future_argv_ex(aredis_client *c, const aredis_cmd_opts *opts, int argc,
                                     const char *const *argv, const size_t *argvlen) {
    return submit(c, opts, argc, argv, argvlen, NULL, NULL);
}

/* ---- Ready futures ------------------------------------------------------ */

aredis_future *aredis_future_ready(aredis_client *c) {
    aredis_future *f = future_new(c->loop, 1);
    if (!f) return NULL;
    if (c->state == AREDIS_STATE_READY) {
        future_complete(f, NULL, AREDIS_ERR_OK, NULL, NULL);
    } else if (c->state == AREDIS_STATE_CLOSED || c->free_pending) {
        future_complete(f, NULL, AREDIS_ERR_CLOSED, "client closed", NULL);
    } else if (c->state == AREDIS_STATE_IDLE) {
        /* Nothing under way that could make it ready: say so now. */
        future_complete(
            f, NULL,
            c->last_err.code != AREDIS_ERR_OK ? c->last_err.code : AREDIS_ERR_NOT_CONNECTED,
            c->last_err.code != AREDIS_ERR_OK ? c->last_detail
                                              : "not connected: call aredis_client_connect()",
            NULL);
    } else {
        aredis__ready_waiter *w = aredis__malloc(sizeof *w);
        if (!w) {
            aredis__free(f);
            return NULL;
        }
        f->refs++;
        w->f = f;
        w->next = NULL;
        aredis__ready_waiter **pp = &c->ready_waiters; /* FIFO: notified in order */
        while (*pp)
            pp = &(*pp)->next;
        *pp = w;
    }
    return f;
}

void aredis__ready_notify(aredis_client *c, aredis_err code, const char *detail) {
    aredis__ready_waiter *w = c->ready_waiters;
    c->ready_waiters = NULL;
    aredis__ready_notify_list(w, code, detail);
}

void aredis__ready_notify_list(aredis__ready_waiter *w, aredis_err code, const char *detail) {
    while (w) {
        aredis__ready_waiter *n = w->next;
        future_complete(w->f, NULL, code, detail, NULL);
        aredis_future_release(w->f);
        aredis__free(w);
        w = n;
    }
}

/* ---- Waiting ------------------------------------------------------------ */

aredis_err aredis_await(aredis_future *f) {
    if (!f) return AREDIS_ERR_INVALID;
    while (!f->done) {
        if (!f->loop || !aredis_loop_run_once(f->loop, 1)) {
            if (!f->done) return AREDIS_ERR_INVALID; /* nothing left that could complete it */
        }
    }
    return f->failed ? f->err.code : AREDIS_ERR_OK;
}

/* The one-shot timer of aredis_await_for(): firing only ends the wait. */
static void await_timer_fired(void *arg) { (void)arg; }

/*
 * Each round: a turn that does not block, which also says whether anything
 * but our timer is left (it is not armed then); then, with the timer armed
 * for the time left, a turn that blocks until an event or the deadline.
 */
aredis_err aredis_await_for(aredis_future *f, uint64_t timeout_ms) {
    if (!f) return AREDIS_ERR_INVALID;
    if (f->done) return f->failed ? f->err.code : AREDIS_ERR_OK;
    aredis_loop *loop = f->loop;
    if (!loop) return AREDIS_ERR_INVALID;
    uint64_t now = aredis__now_ms(loop);
    uint64_t deadline = timeout_ms > UINT64_MAX - now ? UINT64_MAX : now + timeout_ms;
    void *t = NULL;
    aredis_err rc = AREDIS_ERR_OK;
    for (;;) {
        int alive = loop->vt.run_once(loop->ld, 0);
        if (f->done) break;
        if (!alive) {
            rc = AREDIS_ERR_INVALID; /* nothing left that could complete it */
            break;
        }
        now = aredis__now_ms(loop);
        if (now >= deadline) {
            rc = AREDIS_ERR_TIMEOUT;
            break;
        }
        if (!t && !(t = aredis__timer_new(loop, await_timer_fired, NULL))) {
            rc = AREDIS_ERR_NOMEM;
            break;
        }
        aredis__timer_arm(loop, t, deadline - now);
        loop->vt.run_once(loop->ld, 1);
        aredis__timer_cancel(loop, t);
        if (f->done) break;
    }
    if (t) aredis__timer_free(loop, t);
    if (rc != AREDIS_ERR_OK) return rc;
    return f->failed ? f->err.code : AREDIS_ERR_OK;
}

int aredis_future_is_done(const aredis_future *f) { return f->done; }
aredis_reply *aredis_future_reply(const aredis_future *f) { return f->reply; }
const aredis_error *aredis_future_error(const aredis_future *f) {
    return f->done && f->failed ? &f->err : NULL;
}
long aredis_future_index(const aredis_future *f) { return f->index; }
void *aredis_future_get_data(const aredis_future *f) { return f->data; }
void aredis_future_set_data(aredis_future *f, void *data) { f->data = data; }

aredis_err aredis_future_then(aredis_future *f, aredis_future_fn *fn, void *data) {
    if (!f || !fn) return AREDIS_ERR_INVALID;
    if (f->done) {
        fn(f, data);
        return AREDIS_ERR_OK;
    }
    then_node *t = aredis__malloc(sizeof *t);
    if (!t) return AREDIS_ERR_NOMEM;
    t->fn = fn;
    t->data = data;
    t->next = NULL;
    if (f->thens_tail)
        f->thens_tail->next = t;
    else
        f->thens = t;
    f->thens_tail = t;
    return AREDIS_ERR_OK;
}

void aredis_future_cancel(aredis_future *f) {
    if (!f || f->done) return;
    f->refs++;
    if (f->cmd && f->client) {
        aredis_client *c = f->client;
        aredis__enter(c);
        aredis__cmd_abort(c, f->cmd, AREDIS_ERR_CANCELLED, "cancelled");
        aredis__leave(c);
    }
    future_complete(f, NULL, AREDIS_ERR_CANCELLED, "cancelled", NULL);
    aredis_future_release(f);
}

/* ---- Combinators -------------------------------------------------------- */

static void on_input_done(aredis_future *in, void *data) {
    comb_link *l = data;
    aredis_future *f = l->f;
    if (!f->done) {
        if (f->is_any) {
            f->index = l->index;
            future_complete(f, in->reply, in->failed ? in->err.code : AREDIS_ERR_OK,
                            in->failed ? in->err.detail : NULL, in->err.prefix);
        } else if (in->failed) {
            future_complete(f, NULL, in->err.code, in->err.detail, in->err.prefix);
        } else if (f->remaining == 1) {
            future_complete(f, NULL, AREDIS_ERR_OK, NULL, NULL);
        }
    }
    f->remaining--;
    aredis_future_release(f); /* this input's reference */
}

static aredis_future *combine(aredis_future *const *fs, size_t n, int is_any) {
    aredis_future *f = future_new(n ? fs[0]->loop : NULL, 1);
    if (!f) return NULL;
    f->is_any = is_any;
    if (n == 0) {
        future_complete(f, NULL, AREDIS_ERR_OK, NULL, NULL);
        return f;
    }
    f->links = aredis__calloc(n, sizeof *f->links);
    if (!f->links) {
        aredis__free(f);
        return NULL;
    }
    f->remaining = n;
    f->refs += (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        f->links[i].f = f;
        f->links[i].index = (long)i;
        if (aredis_future_then(fs[i], on_input_done, &f->links[i]) != AREDIS_ERR_OK) {
            /* Out of memory: count the rest as failed inputs. */
            future_complete(f, NULL, AREDIS_ERR_NOMEM, "out of memory", NULL);
            for (size_t j = i; j < n; j++) {
                f->remaining--;
                f->refs--;
            }
            break;
        }
    }
    return f;
}

aredis_future *aredis_future_all(aredis_future *const *fs, size_t n) { return combine(fs, n, 0); }
aredis_future *aredis_future_any(aredis_future *const *fs, size_t n) { return combine(fs, n, 1); }
