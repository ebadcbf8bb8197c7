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
 */
#include "loop/loop_internal.h"
#include "util/alloc.h"

/* ---- The wrapper ------------------------------------------------------- */

aredis_loop *aredis_loop_from_vtable(const aredis_loop_vtable *vt, void *ld) {
    aredis_loop *loop;

    if (!vt || !vt->io_new || !vt->io_set || !vt->io_free || !vt->timer_new || !vt->timer_arm ||
        !vt->timer_cancel || !vt->timer_free || !vt->defer_new || !vt->defer_arm ||
        !vt->defer_free || !vt->run_once || !vt->now_ms || !vt->cleanup) {
        return NULL;
    }
    loop = aredis__calloc(1, sizeof *loop);
    if (!loop) return NULL;
    loop->vt = *vt;
    loop->ld = ld;
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

void aredis_loop_free(aredis_loop *loop) {
    if (!loop) return;
    loop->vt.cleanup(loop->ld);
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
        if (!loop->vt.run_once(loop->ld, 1)) break;
    }
    loop->stop = 0;
}

int aredis_loop_run_once(aredis_loop *loop, int block) {
    return loop ? loop->vt.run_once(loop->ld, block) : 0;
}

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
        if (!loop->vt.run_once(loop->ld, 0)) {
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
        loop->vt.run_once(loop->ld, 1);
        loop->vt.timer_cancel(t);
    }
    if (t) loop->vt.timer_free(t);
    loop->stop = 0;
    return ret;
}
