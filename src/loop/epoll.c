/*
 * The built-in event loop: epoll on Linux, poll() elsewhere or when built
 * with -DAREDIS_LOOP_USE_POLL (CMake: -DAREDIS_LOOP_BACKEND=poll). The test
 * suite builds a poll copy as well (tests/adapter/builtin_poll.c), so both
 * backends stay tested on Linux. It implements aredis__builtin_vtable; the
 * wrapper in loop.c turns it into an aredis_loop.
 *
 * One turn of run_once():
 *
 *   1. run the defers that are pending (armed before this turn);
 *   2. if nothing is watched, armed or pending: return 0 without blocking;
 *   3. wait for I/O, once: not at all when block == 0 or a defer is pending,
 *      else until the next timer is due (forever without timers);
 *   4. dispatch the fired I/O (an error or hang-up is reported as every
 *      event the watcher is watching);
 *   5. fire the timers that are due;
 *   6. run the defers armed during steps 4-5: a command issued from a reply
 *      callback is flushed in the same turn, before the loop blocks again.
 *      (Defers armed in step 6 itself run in step 1 of the next turn: still
 *      before blocking, and a defer that re-arms itself cannot live-lock.)
 *
 * No allocation happens per turn: the ready array lives on the stack (which
 * also keeps a nested run_once(), e.g. an await inside a callback, from
 * overwriting the outer turn's array), and the timer heap's capacity is
 * reserved when a timer is created, so arming never allocates and never
 * fails.
 *
 * Callbacks may free any handle. The hazard is I/O: the ready array of the
 * current turn may still name a watcher that a callback just freed. So a
 * watcher freed while a run_once() is in progress is only marked dead (its
 * mask set to 0, so its pending events are dropped) and queued; its memory is
 * released when the outermost run_once() returns. Timers and defers are
 * unlinked from the heap / list before their callback runs and are never
 * referenced by a stale array, so they are freed at once.
 *
 * Timers keep deadlines in nanoseconds of CLOCK_MONOTONIC, read fresh at arm
 * time, so a timer never fires early even if arming happens late in a long
 * turn. The clock is read once per timer phase; a timer armed during the
 * phase is never due within it (no live-lock on a 0 ms re-arm). Ties fire in
 * arming order.
 *
 * Wake handles (aredis_loop_post's, and the vtable's wake_*): an eventfd
 * (epoll) or a self-pipe (poll), watched for READ by an internal watcher that
 * does not count towards nwatched, so an idle wake handle never keeps the loop
 * alive, yet a blocking wait still ends when it is signalled. wake_signal may
 * come from any thread: it writes only when `signalled` goes 0 -> 1, so a
 * burst of signals costs one write. The loop side drains the fd FIRST and
 * clears `signalled` after, then runs the callback: a signal that found
 * `signalled` still set (and wrote nothing) came before the clear, so the
 * callback, which starts after the clear, comes after it; one that came
 * after the clear wrote again. The last signal is never lost.
 *
 * Limits, as with libuv: one watcher per fd; free the watcher before closing
 * the fd. If the kernel refuses to watch an fd (epoll_ctl fails: closed fd,
 * regular file), the watcher is reported ready (READ|WRITE, masked) on every
 * turn instead of silently never firing, so the owner sees the fault when it
 * reads or writes. poll() never refuses: it reports such an fd (POLLNVAL,
 * or a regular file's constant readiness) as ready, with the same effect.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(AREDIS_LOOP_USE_POLL)
#define BL_EPOLL 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#else
#include <poll.h>
#endif

#include "loop/loop_internal.h"
#include "util/alloc.h"
#include "util/fork.h"
#include "util/heap.h"

#define BL_MAXEVENTS 64
#define BL_NOT_ARMED SIZE_MAX
#define BL_EV_ALL (AREDIS_EV_READ | AREDIS_EV_WRITE)

typedef struct bl_loop bl_loop;

typedef struct bl_io {
    bl_loop *loop;
    aredis_io_fn *cb;
    void *arg;
    int fd;
    int mask;       /* what is watched; 0 once dead */
    int dead;       /* freed during a turn, memory not yet released */
    int failed;     /* the kernel refused it: on the failed list */
    int uncounted;  /* a wake handle's: never counts in nwatched */
    unsigned epoch; /* the loop's epoch when it was set: older ones are dormant */
#ifdef BL_EPOLL
    int in_kernel; /* registered with epoll (valid when epoch matches) */
#else
    size_t slot; /* index in pfd[] / pio[], or BL_NOT_ARMED (valid when epoch matches) */
#endif
    struct bl_io *next_dead;
    struct bl_io *next_failed;
} bl_io;

typedef struct bl_timer {
    bl_loop *loop;
    aredis_timer_fn *cb;
    void *arg;
    aredis__hnode hn; /* deadline in ns of CLOCK_MONOTONIC; arming order breaks ties */
} bl_timer;

static bl_timer *timer_of(aredis__hnode *n) {
    return (bl_timer *)(void *)((char *)n - offsetof(bl_timer, hn));
}

/* Circular doubly linked list: unlinking needs no knowledge of the head, so a
 * defer can be freed whether it sits in the pending list or in a batch that a
 * run_defers() call holds on its stack. */
typedef struct bl_link {
    struct bl_link *prev, *next;
} bl_link;

typedef struct bl_defer {
    bl_link link; /* first member: a bl_link * is a bl_defer * */
    bl_loop *loop;
    aredis_timer_fn *cb;
    void *arg;
} bl_defer;

typedef struct bl_ready {
    bl_io *io;
    int events;
} bl_ready;

/* A wake handle: see the top. */
typedef struct bl_wake {
    bl_link link; /* the loop's wake handles (remade after a fork) */
    bl_loop *loop;
    aredis_timer_fn *cb;
    void *arg;
    bl_io *io;            /* READ on rfd; uncounted */
    int rfd, wfd;         /* eventfd: one fd; pipe: its two ends */
    atomic_int signalled; /* a write is made or on its way, not yet drained */
} bl_wake;

struct bl_loop {
    unsigned fork_gen;   /* fork generation at creation: a copy in a child is inert */
    unsigned epoch;      /* bumped by aredis_loop_after_fork(): a new backend state */
    int depth;           /* nesting of run_once() */
    size_t nwatched;     /* live watchers with a nonzero mask */
    aredis__heap timers; /* armed timers, earliest first */
    size_t ntimers;
    uint64_t now;    /* ns, read once per timer phase */
    bl_link pending; /* armed defers */
    bl_link wakes;   /* wake handles */
    bl_io *dead;     /* watchers freed during a turn */
    bl_io *failed;   /* watchers the kernel refused */
#ifdef BL_EPOLL
    int epfd;
#else
    struct pollfd *pfd;
    bl_io **pio;
    size_t npfd, pcap, nio, rr;
#endif
};

/*
 * A loop inherited by a forked child shares its kernel state (the epoll
 * instance, the fds) with the parent: touching it would steal the parent's
 * events or unregister its sockets. In the child it is inert: it runs
 * nothing and changes nothing in the kernel; memory can still be freed.
 * Make a new loop in the child.
 */
static int forked(const bl_loop *l) { return l->fork_gen != aredis__fork_current(); }

/* ---- Clock ------------------------------------------------------------- */

static uint64_t bl_clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t bl_now_ms(void *ld) {
    (void)ld;
    return bl_clock_ns() / 1000000u;
}

/* ---- Lists ------------------------------------------------------------- */

static void link_init(bl_link *h) { h->prev = h->next = h; }
static int link_empty(const bl_link *h) { return h->next == h; }

static void link_push(bl_link *h, bl_link *n) {
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static void link_del(bl_link *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Move every node of `from` to the empty list `to`. */
static void link_take(bl_link *from, bl_link *to) {
    link_init(to);
    if (link_empty(from)) return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    link_init(from);
}

/* ---- Backend: epoll or poll -------------------------------------------- */

#ifdef BL_EPOLL

static int backend_init(bl_loop *l) {
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    return l->epfd < 0 ? -1 : 0;
}

static void backend_free(bl_loop *l) {
    if (l->epfd >= 0) close(l->epfd);
}

static int backend_reserve(bl_loop *l) {
    (void)l;
    return 0;
}

static void backend_release(bl_loop *l) { (void)l; }

/* A watcher of before aredis_loop_after_fork(): not in the new instance. */
static void backend_forget(bl_io *io) { io->in_kernel = 0; }

/* In a forked child: an epoll instance of its own. */
static int backend_after_fork(bl_loop *l) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return -1;
    close(l->epfd); /* the child's copy: the parent's instance is untouched */
    l->epfd = fd;
    return 0;
}

/* Watch exactly `events` (nonzero) or nothing (0). -1 if the kernel refuses. */
static int backend_set(bl_loop *l, bl_io *io, int events) {
    struct epoll_event ee;
    int op;

    if (forked(l)) {
        io->in_kernel = 0;
        return 0;
    }
    if (io->epoch != l->epoch) {
        /* Registered with the epoll instance of before a fork: not in ours. */
        io->in_kernel = 0;
        io->epoch = l->epoch;
    }
    memset(&ee, 0, sizeof ee);
    ee.data.ptr = io;
    if (events == 0) {
        /* DEL rather than MOD to 0: epoll reports EPOLLHUP/EPOLLERR even for
         * an empty mask, which would wake an idle loop forever. */
        if (io->in_kernel) epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, &ee);
        io->in_kernel = 0;
        return 0;
    }
    ee.events =
        ((events & AREDIS_EV_READ) ? EPOLLIN : 0u) | ((events & AREDIS_EV_WRITE) ? EPOLLOUT : 0u);
    op = io->in_kernel ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, io->fd, &ee) != 0) {
        /* EEXIST: a stale registration of a reused fd number (its old file
         * still open elsewhere); ENOENT: the fd was closed and reopened. */
        if (op == EPOLL_CTL_ADD && errno == EEXIST) {
            op = EPOLL_CTL_MOD;
        } else if (op == EPOLL_CTL_MOD && errno == ENOENT) {
            op = EPOLL_CTL_ADD;
        } else {
            io->in_kernel = 0;
            return -1;
        }
        if (epoll_ctl(l->epfd, op, io->fd, &ee) != 0) {
            io->in_kernel = 0;
            return -1;
        }
    }
    io->in_kernel = 1;
    return 0;
}

static int backend_wait(bl_loop *l, bl_ready *out, int max, int timeout) {
    struct epoll_event evs[BL_MAXEVENTS];
    int n, i;

    n = epoll_wait(l->epfd, evs, max < BL_MAXEVENTS ? max : BL_MAXEVENTS, timeout);
    if (n <= 0) return 0; /* EINTR: a turn with no I/O */
    for (i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        int ev = 0;
        if (e & (EPOLLERR | EPOLLHUP)) ev = BL_EV_ALL;
        if (e & EPOLLIN) ev |= AREDIS_EV_READ;
        if (e & EPOLLOUT) ev |= AREDIS_EV_WRITE;
        out[i].io = evs[i].data.ptr;
        out[i].events = ev;
    }
    return n;
}

#else /* poll() */

static int backend_init(bl_loop *l) {
    (void)l;
    return 0;
}

static void backend_free(bl_loop *l) {
    aredis__free(l->pfd);
    aredis__free(l->pio);
}

/* Reserve a slot for one more watcher, so that io_set never allocates. */
static int backend_reserve(bl_loop *l) {
    if (l->nio == l->pcap) {
        size_t cap = l->pcap ? l->pcap * 2 : 16;
        struct pollfd *p = aredis__reallocarray(l->pfd, cap, sizeof *p);
        if (!p) return -1;
        l->pfd = p;
        bl_io **q = aredis__reallocarray(l->pio, cap, sizeof *q);
        if (!q) return -1;
        l->pio = q;
        l->pcap = cap;
    }
    l->nio++;
    return 0;
}

static void backend_release(bl_loop *l) { l->nio--; }

/* A watcher of before aredis_loop_after_fork(): its slot is gone. */
static void backend_forget(bl_io *io) { io->slot = BL_NOT_ARMED; }

/* In a forked child: poll() keeps no kernel state, so forgetting every slot
 * is enough (the reserved capacity stays: io_set still never allocates). */
static int backend_after_fork(bl_loop *l) {
    l->npfd = 0;
    return 0;
}

static int backend_set(bl_loop *l, bl_io *io, int events) {
    if (events == 0) {
        if (io->slot != BL_NOT_ARMED) {
            size_t s = io->slot, last = --l->npfd;
            l->pfd[s] = l->pfd[last];
            l->pio[s] = l->pio[last];
            l->pio[s]->slot = s;
            io->slot = BL_NOT_ARMED;
        }
        return 0;
    }
    if (io->slot == BL_NOT_ARMED) {
        io->slot = l->npfd++;
        l->pfd[io->slot].fd = io->fd;
        l->pio[io->slot] = io;
    }
    l->pfd[io->slot].events = (short)(((events & AREDIS_EV_READ) ? POLLIN : 0) |
                                      ((events & AREDIS_EV_WRITE) ? POLLOUT : 0));
    l->pfd[io->slot].revents = 0;
    return 0;
}

static int backend_wait(bl_loop *l, bl_ready *out, int max, int timeout) {
    int r, n = 0;
    size_t k, start;

    r = poll(l->pfd, (nfds_t)l->npfd, timeout);
    if (r <= 0 || l->npfd == 0) return 0;
    /* Start the scan at a rotating slot so that more than `max` busy fds
     * cannot starve the ones at the end. */
    start = l->rr++ % l->npfd;
    for (k = 0; k < l->npfd && n < max; k++) {
        size_t i = (start + k) % l->npfd;
        short re = l->pfd[i].revents;
        int ev = 0;
        if (!re) continue;
        if (re & (POLLERR | POLLHUP | POLLNVAL)) ev = BL_EV_ALL;
        if (re & POLLIN) ev |= AREDIS_EV_READ;
        if (re & POLLOUT) ev |= AREDIS_EV_WRITE;
        out[n].io = l->pio[i];
        out[n].events = ev;
        n++;
    }
    return n;
}

#endif

/* ---- I/O watchers ------------------------------------------------------ */

static void failed_add(bl_loop *l, bl_io *io) {
    if (io->failed) return;
    io->failed = 1;
    io->next_failed = l->failed;
    l->failed = io;
}

static void failed_del(bl_loop *l, bl_io *io) {
    bl_io **p;
    if (!io->failed) return;
    for (p = &l->failed; *p; p = &(*p)->next_failed) {
        if (*p == io) {
            *p = io->next_failed;
            break;
        }
    }
    io->failed = 0;
    io->next_failed = NULL;
}

static void *bl_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    bl_loop *l = ld;
    bl_io *io;

    if (fd < 0 || !cb) return NULL;
    io = aredis__calloc(1, sizeof *io);
    if (!io) return NULL;
    if (backend_reserve(l) != 0) {
        aredis__free(io);
        return NULL;
    }
    io->loop = l;
    io->cb = cb;
    io->arg = arg;
    io->fd = fd;
    io->epoch = l->epoch;
    backend_forget(io);
    return io;
}

static void bl_io_set(void *p, int events) {
    bl_io *io = p;
    bl_loop *l = io->loop;

    events &= BL_EV_ALL;
    if (io->epoch != l->epoch && !io->dead) {
        /* Made before aredis_loop_after_fork(): dormant, watching nothing in
         * this backend state until set again. */
        io->mask = 0;
        backend_forget(io);
        io->epoch = l->epoch;
    }
    if (io->dead || events == io->mask) return; /* idempotent: no syscall */
    if (backend_set(l, io, events) == 0) {
        failed_del(l, io);
    } else {
        failed_add(l, io);
    }
    if (io->uncounted) {
        /* a wake handle's watcher: not a reason to keep running */
    } else if (io->mask == 0) {
        l->nwatched++;
    } else if (events == 0) {
        l->nwatched--;
    }
    io->mask = events;
}

static void bl_io_free(void *p) {
    bl_io *io = p;
    bl_loop *l;

    if (!io || io->dead) return;
    l = io->loop;
    bl_io_set(io, 0);
    failed_del(l, io);
    backend_release(l);
    if (l->depth > 0) {
        /* The current turn's ready array may still name it: see the top. */
        io->dead = 1;
        io->next_dead = l->dead;
        l->dead = io;
    } else {
        aredis__free(io);
    }
}

static void free_dead(bl_loop *l) {
    while (l->dead) {
        bl_io *io = l->dead;
        l->dead = io->next_dead;
        aredis__free(io);
    }
}

/* ---- Timers (util/heap.h) ------------------------------------------------ */

static void *bl_timer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    bl_loop *l = ld;
    bl_timer *t;

    if (!cb) return NULL;
    /* Reserve the heap slot now: timer_arm cannot report failure. */
    if (aredis__heap_reserve(&l->timers, l->ntimers + 1) != 0) return NULL;
    t = aredis__calloc(1, sizeof *t);
    if (!t) return NULL;
    t->loop = l;
    t->cb = cb;
    t->arg = arg;
    aredis__hnode_init(&t->hn);
    l->ntimers++;
    return t;
}

static void bl_timer_arm(void *p, uint64_t ms) {
    bl_timer *t = p;
    bl_loop *l = t->loop;
    uint64_t now = bl_clock_ns();
    uint64_t d = ms > (UINT64_MAX - now) / 1000000u ? UINT64_MAX : now + ms * 1000000u;

    /* Never due within the timer phase that armed it (l->now <= now, so this
     * only moves a 0 ms timer by 1 ns). */
    if (d <= l->now) d = l->now + 1;
    aredis__heap_set(&l->timers, &t->hn, d);
}

static void bl_timer_cancel(void *p) {
    bl_timer *t = p;
    aredis__heap_del(&t->loop->timers, &t->hn);
}

static void bl_timer_free(void *p) {
    bl_timer *t = p;
    if (!t) return;
    bl_timer_cancel(t);
    t->loop->ntimers--;
    aredis__free(t);
}

/* Milliseconds until the next timer is due (rounded up: never early), -1 if
 * none is armed. */
static int next_timeout(bl_loop *l) {
    uint64_t now, d, ms;

    aredis__hnode *first = aredis__heap_min(&l->timers);
    if (!first) return -1;
    now = bl_clock_ns();
    d = first->key;
    if (d <= now) return 0;
    ms = (d - now + 999999u) / 1000000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void run_timers(bl_loop *l) {
    l->now = bl_clock_ns();
    aredis__hnode *due;
    while ((due = aredis__heap_min(&l->timers)) && due->key <= l->now) {
        bl_timer *t = timer_of(due);
        aredis__heap_del(&l->timers, due);
        t->cb(t->arg); /* may re-arm or free t: not touched afterwards */
    }
}

/* ---- Deferred callbacks ------------------------------------------------ */

static void *bl_defer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    bl_defer *d;
    if (!cb) return NULL;
    d = aredis__calloc(1, sizeof *d);
    if (!d) return NULL;
    d->loop = ld;
    d->cb = cb;
    d->arg = arg;
    return d;
}

static void bl_defer_arm(void *p) {
    bl_defer *d = p;
    if (d->link.next) return; /* already pending: runs once */
    link_push(&d->loop->pending, &d->link);
}

static void bl_defer_free(void *p) {
    bl_defer *d = p;
    if (!d) return;
    if (d->link.next) link_del(&d->link);
    aredis__free(d);
}

/* Run the defers pending now; those armed meanwhile wait for the next call. */
static void run_defers(bl_loop *l) {
    bl_link batch;

    if (link_empty(&l->pending)) return;
    link_take(&l->pending, &batch);
    while (!link_empty(&batch)) {
        bl_defer *d = (bl_defer *)batch.next;
        link_del(&d->link);
        d->cb(d->arg); /* may re-arm or free d */
    }
}

/* ---- Wake handles ------------------------------------------------------ */

static void wake_close_fds(bl_wake *w) {
    if (w->rfd >= 0) close(w->rfd);
    if (w->wfd >= 0 && w->wfd != w->rfd) close(w->wfd);
    w->rfd = w->wfd = -1;
}

/* Read everything the fd holds (the eventfd's counter; the pipe's bytes). */
static void wake_drain(bl_wake *w) {
#ifdef BL_EPOLL
    uint64_t v;
    while (read(w->rfd, &v, sizeof v) < 0 && errno == EINTR) {
    }
#else
    char buf[64];
    ssize_t n;
    do {
        n = read(w->rfd, buf, sizeof buf);
    } while (n > 0 || (n < 0 && errno == EINTR));
#endif
}

static void wake_fired(void *arg, int events) {
    bl_wake *w = arg;
    (void)events;
    wake_drain(w);
    atomic_store(&w->signalled, 0); /* after the drain: see the top */
    w->cb(w->arg);                  /* may free w */
}

#ifndef BL_EPOLL
static int wake_set_flags(int fd) {
    int fl = fcntl(fd, F_GETFL);
    int fd_fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fd_fl < 0) return -1;
    if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -1;
    return fcntl(fd, F_SETFD, fd_fl | FD_CLOEXEC);
}
#endif

/* Make w's fds and their watcher. -1 (nothing left open) on failure. */
static int wake_open(bl_wake *w) {
    bl_loop *l = w->loop;
#ifdef BL_EPOLL
    w->rfd = w->wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->rfd < 0) return -1;
#else
    int fds[2];
    if (pipe(fds) != 0) return -1;
    w->rfd = fds[0];
    w->wfd = fds[1];
    if (wake_set_flags(w->rfd) != 0 || wake_set_flags(w->wfd) != 0) {
        wake_close_fds(w);
        return -1;
    }
#endif
    w->io = bl_io_new(l, w->rfd, wake_fired, w);
    if (!w->io) {
        wake_close_fds(w);
        return -1;
    }
    w->io->uncounted = 1;
    bl_io_set(w->io, AREDIS_EV_READ);
    atomic_store(&w->signalled, 0);
    return 0;
}

static void wake_close(bl_wake *w) {
    if (w->io) bl_io_free(w->io); /* before its fd is closed */
    w->io = NULL;
    wake_close_fds(w);
}

static void *bl_wake_new(void *ld, aredis_timer_fn *cb, void *arg) {
    bl_loop *l = ld;
    bl_wake *w;

    if (!cb) return NULL;
    w = aredis__calloc(1, sizeof *w);
    if (!w) return NULL;
    w->loop = l;
    w->cb = cb;
    w->arg = arg;
    w->rfd = w->wfd = -1;
    atomic_init(&w->signalled, 0);
    if (wake_open(w) != 0) {
        aredis__free(w);
        return NULL;
    }
    link_push(&l->wakes, &w->link);
    return w;
}

/* Any thread. Only `signalled` and `wfd` are touched. */
static void bl_wake_signal(void *p) {
    bl_wake *w = p;
    if (atomic_exchange(&w->signalled, 1)) return; /* a write is made or coming */
#ifdef BL_EPOLL
    uint64_t one = 1;
    while (write(w->wfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
#else
    while (write(w->wfd, "w", 1) < 0 && errno == EINTR) {
    }
#endif
}

static void bl_wake_free(void *p) {
    bl_wake *w = p;
    if (!w) return;
    link_del(&w->link);
    wake_close(w);
    aredis__free(w);
}

/* ---- The turn ---------------------------------------------------------- */

static int bl_active(const bl_loop *l) {
    return l->nwatched > 0 || l->timers.n > 0 || !link_empty(&l->pending);
}

static int bl_run_once(void *ld, int block) {
    bl_loop *l = ld;
    bl_ready ready[BL_MAXEVENTS];
    int n = 0, i, timeout;

    if (forked(l)) return 0;

    l->depth++;
    run_defers(l);
    if (bl_active(l)) {
        if (!block || !link_empty(&l->pending) || l->failed) {
            timeout = 0;
        } else {
            timeout = next_timeout(l);
        }
        /* With nothing to watch, a zero wait is pointless; a positive one is
         * how we sleep until the next timer. */
        if (l->nwatched > 0 || timeout > 0) n = backend_wait(l, ready, BL_MAXEVENTS, timeout);
        for (bl_io *io = l->failed; io && n < BL_MAXEVENTS; io = io->next_failed) {
            ready[n].io = io;
            ready[n].events = BL_EV_ALL;
            n++;
        }
        for (i = 0; i < n; i++) {
            bl_io *io = ready[i].io;
            /* A watcher freed or changed by an earlier callback of this turn
             * has a new (or zero) mask: report only what it still watches. */
            int ev = ready[i].events & io->mask;
            if (ev) io->cb(io->arg, ev);
        }
        if (l->timers.n > 0) run_timers(l);
        run_defers(l);
    }
    if (--l->depth == 0) free_dead(l);
    return bl_active(l);
}

/* ---- Construction ------------------------------------------------------ */

static void bl_cleanup(void *ld) {
    bl_loop *l = ld;
    if (!l) return;
    while (!link_empty(&l->wakes)) /* the owner should have freed them */
        bl_wake_free((bl_wake *)l->wakes.next);
    free_dead(l);
    backend_free(l);
    aredis__heap_free(&l->timers);
    aredis__free(l);
}

/*
 * In a forked child: give the loop its own epoll instance (poll: an empty
 * watch list) and make it usable again. Watchers made before the fork stay
 * dormant (not watched) until io_set is called on them again, so the child
 * never reads a socket it shares with the parent by accident. Timers and
 * defers carry on.
 */
int aredis__builtin_after_fork(void *ld) {
    bl_loop *l = ld;
    if (!forked(l)) return 0;
    if (backend_after_fork(l) != 0) return -1;
    l->epoch++;
    l->nwatched = 0; /* every older watcher is dormant now */
    while (l->failed)
        failed_del(l, l->failed);
    l->fork_gen = aredis__fork_current();
    /* Wake handles: the inherited eventfd (pipe) is the parent's too, and
     * its watcher is dormant. Each gets fds of its own, watched afresh. */
    for (bl_link *k = l->wakes.next; k != &l->wakes; k = k->next) {
        bl_wake *w = (bl_wake *)(void *)k;
        wake_close(w);
        if (wake_open(w) != 0) return -1;
    }
    return 0;
}

void *aredis__builtin_new(void) {
    bl_loop *l = aredis__calloc(1, sizeof *l);
    if (!l) return NULL;
    link_init(&l->pending);
    link_init(&l->wakes);
#ifdef BL_EPOLL
    l->epfd = -1;
#endif
    l->fork_gen = aredis__fork_generation();
    if (backend_init(l) != 0) {
        bl_cleanup(l);
        return NULL;
    }
    return l;
}

const char *aredis__builtin_backend(void) {
#ifdef BL_EPOLL
    return "epoll";
#else
    return "poll";
#endif
}

const aredis_loop_vtable aredis__builtin_vtable = {
    .io_new = bl_io_new,
    .io_set = bl_io_set,
    .io_free = bl_io_free,
    .timer_new = bl_timer_new,
    .timer_arm = bl_timer_arm,
    .timer_cancel = bl_timer_cancel,
    .timer_free = bl_timer_free,
    .defer_new = bl_defer_new,
    .defer_arm = bl_defer_arm,
    .defer_free = bl_defer_free,
    .run_once = bl_run_once,
    .now_ms = bl_now_ms,
    .cleanup = bl_cleanup,
    .wake_new = bl_wake_new,
    .wake_signal = bl_wake_signal,
    .wake_free = bl_wake_free,
};
