/*
 * Host name resolution off the loop thread (see resolve.h).
 *
 * Why a thread: getaddrinfo() is the only portable resolver and it blocks,
 * for seconds when DNS is slow or down. An async client must never stall its
 * loop (other clients, timers, its own connect timeout), so a name is
 * resolved on a short-lived detached thread; numeric hosts keep the local
 * fast path (AI_NUMERICHOST answers without any I/O).
 *
 * Ownership of a job: it is shared by the thread and the owner (the client,
 * through the io watcher), with an atomic reference count of 2 at start.
 * Whichever side lets go last frees it:
 *   - the thread: writes rc/res, sets `done` (release), writes one byte to
 *     the wake-up socket, drops its reference;
 *   - the owner: either the socket becomes readable (the watcher takes the
 *     result, frees itself, closes the read end, drops the reference, then
 *     runs the callback), or the owner cancels (frees the watcher, closes the
 *     read end, drops the reference; the callback never runs). A cancelled
 *     job's result is freed by the thread when it finally returns
 *     (freeaddrinfo, then the job).
 * The read end is only ever touched on the loop thread (a loop may drop a
 * watcher lazily, after the call that freed it); the write end lives as
 * long as the job, and is a socket written with SIGPIPE off, so writing
 * after the read end is closed is harmless (no signal, no EBADF on a
 * reused number).
 *
 * Memory: the job is allocated with the library's hooks and may be freed by
 * the resolver thread, so the hooks must be thread-safe when host names are
 * resolved (aredis/alloc.h says so). The addrinfo list is the C library's.
 *
 * Fork: only the calling thread survives fork(). A job copied into a child
 * has no thread behind it and never completes (the built-in loop keeps
 * pre-fork watchers dormant). Cancelling it there frees the child's copy
 * outright — the child is its only owner — so nothing leaks, and the
 * parent's thread, working on the parent's memory, is unaffected. A child
 * that never frees the client simply keeps the copy (a bounded leak).
 */
#include "net/resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop_internal.h"
#include "util/alloc.h"
#include "util/compat.h"
#include "util/fork.h"
#include "util/log.h"

aredis__getaddrinfo_fn *aredis__getaddrinfo_hook = getaddrinfo;

static atomic_size_t g_inflight;   /* threads not finished yet */
static atomic_uint g_inflight_gen; /* the fork generation it counts for */

struct aredis__resolve_job {
    atomic_int refs; /* the thread's and the owner's: the last one frees */
    atomic_int done; /* set (release) by the thread once rc/res are written */
    int rc;          /* getaddrinfo()'s result: written by the thread */
    int sys_errno;   /* errno when rc is EAI_SYSTEM */
    struct addrinfo *res;
    aredis__getaddrinfo_fn *gai; /* the hook as it was when the job started */
    int rfd, wfd;                /* the wake-up socket pair: rfd closed by the loop
                                    side (close_read_end), wfd with the job */
    aredis_loop *loop;
    void *io; /* watcher on rfd (owner side); NULL once completed/cancelled */
    aredis__resolve_fn *cb;
    void *arg;
    unsigned fork_gen; /* a copy in a forked child has no thread behind it */
    char port[8];
    char host[]; /* NUL-terminated copy */
};

static void job_free(aredis__resolve_job *j) {
    if (j->res) freeaddrinfo(j->res);
    if (j->rfd >= 0) close(j->rfd);
    if (j->wfd >= 0) close(j->wfd);
    aredis__free(j);
}

/* Drop one reference; the last one frees. Either thread. */
static void job_release(aredis__resolve_job *j) {
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1) job_free(j);
}

static void format_error(char *buf, size_t len, const char *host, int rc, int sys_errno) {
    if (rc == EAI_SYSTEM && sys_errno)
        snprintf(buf, len, "cannot resolve '%s': %s: %s", host, gai_strerror(rc),
                 strerror(sys_errno));
    else
        snprintf(buf, len, "cannot resolve '%s': %s", host, gai_strerror(rc));
}

/* The wake-up byte is sent with SIGPIPE off (where SO_NOSIGPIPE is the
 * way instead, wake_pair sets it). */
#ifdef MSG_NOSIGNAL
#define WAKE_SEND_FLAGS MSG_NOSIGNAL
#else
#define WAKE_SEND_FLAGS 0
#endif

/* ---- The resolver thread ------------------------------------------------ */

static void *resolve_thread(void *arg) {
    aredis__resolve_job *j = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    errno = 0;
    int rc = j->gai(j->host, j->port, &hints, &res);
    j->sys_errno = rc == EAI_SYSTEM ? errno : 0;
    j->rc = rc;
    j->res = rc == 0 ? res : NULL;
    if (rc != 0 && res) freeaddrinfo(res); /* a hook that left one behind */
    atomic_store_explicit(&j->done, 1, memory_order_release);
    /* Wake the loop. The pipe is non-blocking and holds at most this byte:
     * the write cannot block; the read end is open while we hold our
     * reference, so it cannot raise SIGPIPE either. */
    const char b = 1;
    while (send(j->wfd, &b, 1, WAKE_SEND_FLAGS) < 0 && errno == EINTR) {
    }
    job_release(j);
    atomic_fetch_sub_explicit(&g_inflight, 1, memory_order_release);
    return NULL;
}

/* ---- The loop side ------------------------------------------------------ */

/*
 * The read end is the loop's: closed on the loop thread once its watcher is
 * gone, never by the resolver thread (a loop may drop a watcher lazily —
 * libev removes it from epoll at its next turn — and a close from another
 * thread would race with that). The thread's write end is a socket, written
 * with SIGPIPE off: writing after the read end is closed is harmless.
 */
static void close_read_end(aredis__resolve_job *j) {
    if (j->rfd >= 0) close(j->rfd);
    j->rfd = -1; /* published to the thread by the release of our reference */
}

/* The pipe is readable: the thread has finished. Take the result, let go of
 * the job, then report (the callback may do anything, free the owner too). */
static void on_wake(void *arg, int events) {
    (void)events;
    aredis__resolve_job *j = arg;
    if (!atomic_load_explicit(&j->done, memory_order_acquire)) return; /* spurious */
    aredis__io_free(j->loop, j->io);
    j->io = NULL;
    close_read_end(j);
    struct addrinfo *res = j->res;
    j->res = NULL;
    char msg[320];
    msg[0] = '\0';
    aredis_err code = AREDIS_ERR_OK;
    if (j->rc != 0) {
        code = AREDIS_ERR_RESOLVE;
        format_error(msg, sizeof msg, j->host, j->rc, j->sys_errno);
    }
    aredis__resolve_fn *cb = j->cb;
    void *cb_arg = j->arg;
    job_release(j); /* the byte stays in the pipe: it is closed with the job */
    cb(cb_arg, res, code, msg);
}

size_t aredis__resolve_inflight(void) {
    return atomic_load_explicit(&g_inflight, memory_order_acquire);
}

void aredis__resolve_cancel(aredis__resolve_job *j) {
    if (!j) return;
    if (j->io) aredis__io_free(j->loop, j->io); /* before any close of rfd */
    j->io = NULL;
    close_read_end(j);
    if (j->fork_gen != aredis__fork_current()) {
        /* A copy in a forked child: its thread stayed in the parent, so this
         * copy has one owner, us. */
        job_free(j);
        return;
    }
    job_release(j);
}

/* A connected pair of non-blocking, close-on-exec unix sockets: [0] the
 * loop's read end, [1] the thread's write end (SIGPIPE off). */
static int wake_pair(int fds[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
    }
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
    int one = 1;
    (void)setsockopt(fds[1], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return 0;
}

/* Start a thread for j with every signal blocked: signals meant for the
 * application must not land on a resolver thread. Returns 0 or an errno. */
static int spawn(aredis__resolve_job *j) {
    sigset_t all, old;
    pthread_attr_t attr;
    pthread_t tid;
    int rc = pthread_attr_init(&attr);
    if (rc != 0) return rc;
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&tid, &attr, resolve_thread, j);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    (void)pthread_attr_destroy(&attr);
    return rc;
}

aredis_err aredis__resolve_start(aredis_loop *loop, const char *host, int port,
                                 aredis__resolve_fn *cb, void *arg, struct addrinfo **res,
                                 aredis__resolve_job **job, char *errbuf, size_t errlen) {
    char portstr[8];
    struct addrinfo hints;
    *res = NULL;
    *job = NULL;
    snprintf(portstr, sizeof portstr, "%d", port);

    /* A literal: parsed locally, no lookup, no thread. */
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(host, portstr, &hints, res);
    if (rc == 0) return AREDIS_ERR_OK;
    *res = NULL;
    if (rc != EAI_NONAME) {
        format_error(errbuf, errlen, host, rc, rc == EAI_SYSTEM ? errno : 0);
        return AREDIS_ERR_RESOLVE;
    }

    /*
     * A name: a job for a resolver thread. A thread stuck on a dead DNS
     * server outlives its cancelled job until the C library gives up; with a
     * reconnect every few hundred milliseconds such threads would pile up,
     * so their number is capped: past the cap the attempt fails at once.
     * In a forked child the parent's threads do not exist: their count
     * does not apply there, and starts again from zero.
     */
    unsigned gen = aredis__fork_generation();
    if (gen != atomic_load_explicit(&g_inflight_gen, memory_order_relaxed)) {
        atomic_store_explicit(&g_inflight, 0, memory_order_relaxed);
        atomic_store_explicit(&g_inflight_gen, gen, memory_order_relaxed);
    }
    if (atomic_fetch_add_explicit(&g_inflight, 1, memory_order_relaxed) >=
        AREDIS__RESOLVE_MAX_INFLIGHT) {
        atomic_fetch_sub_explicit(&g_inflight, 1, memory_order_relaxed);
        snprintf(errbuf, errlen,
                 "cannot resolve '%s': %d host name resolutions already in flight "
                 "(is DNS answering?)",
                 host, AREDIS__RESOLVE_MAX_INFLIGHT);
        return AREDIS_ERR_RESOLVE;
    }
    size_t hlen = strlen(host), size;
    if (aredis__add_overflow(sizeof(aredis__resolve_job), hlen + 1, &size)) size = SIZE_MAX;
    aredis__resolve_job *j = size == SIZE_MAX ? NULL : aredis__calloc(1, size);
    if (!j) {
        atomic_fetch_sub_explicit(&g_inflight, 1, memory_order_relaxed);
        snprintf(errbuf, errlen, "out of memory resolving '%s'", host);
        return AREDIS_ERR_NOMEM;
    }
    memcpy(j->host, host, hlen + 1);
    memcpy(j->port, portstr, sizeof j->port);
    j->rfd = j->wfd = -1;
    j->loop = loop;
    j->cb = cb;
    j->arg = arg;
    j->gai = aredis__getaddrinfo_hook ? aredis__getaddrinfo_hook : getaddrinfo;
    j->fork_gen = aredis__fork_generation();
    atomic_init(&j->refs, 2);
    atomic_init(&j->done, 0);

    int fds[2];
    if (wake_pair(fds) != 0) {
        snprintf(errbuf, errlen, "cannot resolve '%s': no wake-up socket: %s", host,
                 strerror(errno));
        atomic_fetch_sub_explicit(&g_inflight, 1, memory_order_relaxed);
        job_free(j);
        return AREDIS_ERR_RESOLVE;
    }
    j->rfd = fds[0];
    j->wfd = fds[1];
    j->io = aredis__io_new(loop, j->rfd, on_wake, j);
    if (!j->io) {
        atomic_fetch_sub_explicit(&g_inflight, 1, memory_order_relaxed);
        snprintf(errbuf, errlen, "out of memory resolving '%s'", host);
        job_free(j);
        return AREDIS_ERR_NOMEM;
    }
    aredis__io_set(loop, j->io, AREDIS_EV_READ);

    rc = spawn(j);
    if (rc != 0) {
        atomic_fetch_sub_explicit(&g_inflight, 1, memory_order_relaxed);
        snprintf(errbuf, errlen, "cannot resolve '%s': cannot start a resolver thread: %s", host,
                 strerror(rc));
        aredis__io_free(loop, j->io);
        j->io = NULL;
        job_free(j);
        return AREDIS_ERR_RESOLVE;
    }
    if (aredis__log_enabled(AREDIS_LOG_DEBUG))
        aredis__log(AREDIS_LOG_DEBUG, "resolving '%s' on a resolver thread", host);
    *job = j;
    return AREDIS_ERR_OK;
}
