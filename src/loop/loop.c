/*
 * The aredis_loop wrapper (a copied vtable plus its data), the built-in loop's
 * public entry points, and user timers built on any loop's vtable.
 *
 * User timers: the vtable's timers are one-shot; a repeating aredis_timer
 * re-arms itself BEFORE running the user callback (as libuv does), so that a
 * stop() or a new start() from the callback simply overrides the re-arm and
 * the interval is measured from the tick, not from the end of the callback.
 * aredis_timer_free() from the timer's own callback releases the vtable
 * timer at once (the vtable allows that) but keeps the aredis_timer struct,
 * which the firing code still uses, until the callback has returned.
 *
 * Posts (aredis_loop_post): any thread appends a job to `queued` under
 * post_mu, and signals the loop's wake handle when it made `queued`
 * non-empty — one signal per batch: until the loop thread takes the batch,
 * later posts find it non-empty and know a signal is on its way. The loop
 * thread takes the batch whole (to `ready`, its own list) and runs it, from
 * the wake handle's callback or at the start of aredis_loop_run_once(),
 * whichever comes first: a foreign loop with nothing else alive never polls,
 * so the wake handle alone cannot be relied on. A run takes only the jobs
 * there when it starts (a job that posts again runs next turn: no live-lock)
 * and always the oldest first, also when a job runs the loop nested (an
 * await), so jobs start in posting order. `npending` counts the jobs not
 * run yet, for the liveness answer of run_once; the wake handle itself never
 * keeps the loop alive.
 */
#include <stdatomic.h>

#include "loop/loop_internal.h"
#include "util/alloc.h"

/* ---- The loop's thread --------------------------------------------------- */

static _Thread_local char thread_token;

const void *aredis__thread_token(void) { return &thread_token; }

int aredis_loop_on_thread(const aredis_loop *loop) {
    if (!loop) return 0;
    return atomic_load_explicit(&((aredis_loop *)(uintptr_t)loop)->owner, memory_order_acquire) ==
           aredis__thread_token();
}

/* ---- Posts ----------------------------------------------------------------- */

/* Move the batch posted so far to `ready`. Loop thread. */
static void posts_take(aredis_loop *loop) {
    pthread_mutex_lock(&loop->post_mu);
    if (loop->queued) {
        *loop->ready_tail = loop->queued;
        loop->ready_tail = loop->queued_tail;
        loop->queued = NULL;
        loop->queued_tail = &loop->queued;
    }
    pthread_mutex_unlock(&loop->post_mu);
}

/* Run the jobs posted so far, oldest first, each with `code`. Loop thread. */
static void posts_run(aredis_loop *loop, aredis_err code) {
    size_t n = 0;

    posts_take(loop);
    for (aredis__post *p = loop->ready; p; p = p->next)
        n++;
    /* A job may run the loop nested and so run later jobs itself: take each
     * from the head of `ready` afresh. */
    while (n-- > 0 && loop->ready) {
        aredis__post *p = loop->ready;
        loop->ready = p->next;
        if (!loop->ready) loop->ready_tail = &loop->ready;
        aredis_post_fn *fn = p->fn;
        void *arg = p->arg;
        aredis__free(p);
        atomic_fetch_sub_explicit(&loop->npending, 1, memory_order_relaxed);
        fn(arg, code);
    }
}

/* The wake handle fired: run what was posted. */
static void posts_woken(void *arg) {
    aredis_loop *loop = arg;
    aredis__loop_claim(loop);
    posts_run(loop, AREDIS_ERR_OK);
}

static int posts_pending(const aredis_loop *loop) {
    return atomic_load_explicit(&((aredis_loop *)(uintptr_t)loop)->npending, memory_order_relaxed) >
           0;
}

aredis_err aredis_loop_post(aredis_loop *loop, aredis_post_fn *fn, void *arg) {
    aredis__post *p;
    int first;

    if (!loop || !fn) return AREDIS_ERR_INVALID;
    p = aredis__malloc(sizeof *p);
    if (!p) return AREDIS_ERR_NOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_mu);
    if (loop->freeing) {
        pthread_mutex_unlock(&loop->post_mu);
        aredis__free(p);
        return AREDIS_ERR_CLOSED;
    }
    first = loop->queued == NULL;
    *loop->queued_tail = p;
    loop->queued_tail = &p->next;
    atomic_fetch_add_explicit(&loop->npending, 1, memory_order_relaxed);
    /* Signalled under the lock: aredis_loop_free() cannot free the handle
     * between our unlock and the signal. */
    if (first) aredis__wake_signal(loop, loop->wake);
    pthread_mutex_unlock(&loop->post_mu);
    return AREDIS_ERR_OK;
}

/* One turn for the wrappers below: the jobs posted so far, then the
 * vtable's turn, which does not block when jobs ran (what they did — a
 * stop, a future completed — is for the caller to see now) or wait. */
static int loop_turn(aredis_loop *loop, int block) {
    int ran = 0;
    aredis__loop_claim(loop);
    if (posts_pending(loop)) {
        posts_run(loop, AREDIS_ERR_OK);
        ran = 1;
    }
    int alive = loop->vt.run_once(loop->ld, block && !ran && !posts_pending(loop));
    return alive || posts_pending(loop);
}

/* ---- The wrapper ------------------------------------------------------- */

aredis_loop *aredis_loop_from_vtable(const aredis_loop_vtable *vt, void *ld) {
    aredis_loop *loop;

    if (!vt || !vt->io_new || !vt->io_set || !vt->io_free || !vt->timer_new || !vt->timer_arm ||
        !vt->timer_cancel || !vt->timer_free || !vt->defer_new || !vt->defer_arm ||
        !vt->defer_free || !vt->run_once || !vt->now_ms || !vt->cleanup || !vt->wake_new ||
        !vt->wake_signal || !vt->wake_free) {
        return NULL;
    }
    loop = aredis__calloc(1, sizeof *loop);
    if (!loop) return NULL;
    loop->vt = *vt;
    loop->ld = ld;
    loop->queued_tail = &loop->queued;
    loop->ready_tail = &loop->ready;
    atomic_init(&loop->npending, 0);
    atomic_init(&loop->owner, aredis__thread_token());
    if (pthread_mutex_init(&loop->post_mu, NULL) != 0) {
        aredis__free(loop);
        return NULL;
    }
    loop->wake = aredis__wake_new(loop, posts_woken, loop);
    if (!loop->wake) {
        pthread_mutex_destroy(&loop->post_mu);
        aredis__free(loop);
        return NULL;
    }
    return loop;
}

void *aredis_loop_data(const aredis_loop *loop) { return loop ? loop->ld : NULL; }

aredis_loop *aredis_loop_new(void) {
    aredis_loop *loop;
    void *ld = aredis__builtin_new();

    if (!ld) return NULL;
    loop = aredis_loop_from_vtable(&aredis__builtin_vtable, ld);
    if (!loop) {
        aredis__builtin_vtable.cleanup(ld);
        return NULL;
    }
    loop->builtin = 1;
    return loop;
}

/*
 * Jobs still posted run with CLOSED, in order; posts made meanwhile (from
 * those jobs, or another thread's last one) are refused with CLOSED, so the
 * drain ends. Then the wake handle and the vtable's data go.
 */
void aredis_loop_free(aredis_loop *loop) {
    if (!loop) return;
    pthread_mutex_lock(&loop->post_mu);
    loop->freeing = 1;
    pthread_mutex_unlock(&loop->post_mu);
    while (posts_pending(loop))
        posts_run(loop, AREDIS_ERR_CLOSED);
    aredis__wake_free(loop, loop->wake);
    loop->vt.cleanup(loop->ld);
    pthread_mutex_destroy(&loop->post_mu);
    aredis__free(loop);
}

/*
 * Turns until stop() or until nothing is left. The stop flag is checked
 * before each turn and cleared on return, so a stop() made while the loop was
 * not running makes the next run() return at once (as uv_stop does).
 */
void aredis_loop_run(aredis_loop *loop) {
    if (!loop) return;
    while (!loop->stop) {
        if (!loop_turn(loop, 1)) break;
    }
    loop->stop = 0;
}

int aredis_loop_run_once(aredis_loop *loop, int block) { return loop ? loop_turn(loop, block) : 0; }

void aredis_loop_stop(aredis_loop *loop) {
    if (loop) loop->stop = 1;
}

uint64_t aredis_loop_now_ms(aredis_loop *loop) { return loop ? loop->vt.now_ms(loop->ld) : 0; }

/* ---- User timers ------------------------------------------------------- */

struct aredis_timer {
    aredis_loop *loop;
    void *h; /* the vtable timer; NULL once freed */
    aredis_timer_fn *cb;
    void *arg;
    uint64_t repeat_ms;
    int in_cb; /* nesting of the user callback */
    int dead;  /* freed from its callback: free when it returns */
};

static void utimer_fire(void *arg) {
    aredis_timer *t = arg;

    if (t->repeat_ms) aredis__timer_arm(t->loop, t->h, t->repeat_ms);
    t->in_cb++;
    t->cb(t->arg);
    t->in_cb--;
    if (t->dead && t->in_cb == 0) aredis__free(t);
}

aredis_timer *aredis_timer_new(aredis_loop *loop, aredis_timer_fn *cb, void *arg) {
    aredis_timer *t;

    if (!loop || !cb) return NULL;
    t = aredis__calloc(1, sizeof *t);
    if (!t) return NULL;
    t->loop = loop;
    t->cb = cb;
    t->arg = arg;
    t->h = aredis__timer_new(loop, utimer_fire, t);
    if (!t->h) {
        aredis__free(t);
        return NULL;
    }
    return t;
}

void aredis_timer_start(aredis_timer *t, uint64_t after_ms, uint64_t repeat_ms) {
    if (!t || !t->h) return;
    t->repeat_ms = repeat_ms;
    aredis__timer_arm(t->loop, t->h, after_ms);
}

void aredis_timer_stop(aredis_timer *t) {
    if (!t || !t->h) return;
    t->repeat_ms = 0;
    aredis__timer_cancel(t->loop, t->h);
}

void aredis_timer_free(aredis_timer *t) {
    if (!t || t->dead) return;
    aredis__timer_free(t->loop, t->h);
    t->h = NULL;
    if (t->in_cb) {
        t->dead = 1;
    } else {
        aredis__free(t);
    }
}

aredis_err aredis_loop_after_fork(aredis_loop *loop) {
    if (!loop) return AREDIS_ERR_INVALID;
    if (!loop->builtin) return AREDIS_ERR_UNSUPPORTED;
    return aredis__builtin_after_fork(loop->ld) == 0 ? AREDIS_ERR_OK : AREDIS_ERR_IO;
}

/* ---- Running for a while ----------------------------------------------- */

/* The one-shot timer of aredis_loop_run_for(): firing only ends the wait. */
static void run_for_fired(void *arg) { (void)arg; }

/*
 * Each round: a turn that does not block, which also says whether anything
 * but our timer is left (it is not armed then); then, with the timer armed
 * for the time left, a turn that blocks until an event or the deadline (the
 * built-in loop would otherwise block until the next event).
 */
int aredis_loop_run_for(aredis_loop *loop, uint64_t ms) {
    if (!loop) return 0;
    uint64_t now = loop->vt.now_ms(loop->ld);
    uint64_t deadline = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
    void *t = NULL;
    int ret = 1;
    while (!loop->stop) {
        if (!loop_turn(loop, 0)) {
            ret = 0;
            break;
        }
        now = loop->vt.now_ms(loop->ld);
        if (loop->stop || now >= deadline) break;
        if (!t && !(t = loop->vt.timer_new(loop->ld, run_for_fired, NULL))) {
            ret = -1;
            break;
        }
        loop->vt.timer_arm(t, deadline - now);
        loop_turn(loop, 1);
        loop->vt.timer_cancel(t);
    }
    if (t) loop->vt.timer_free(t);
    loop->stop = 0;
    return ret;
}
