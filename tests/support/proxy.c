/*
 * Test support: the fault-injecting TCP proxy (see proxy.h).
 *
 * One thread per proxy runs a poll() loop over a self-pipe, the listening
 * socket and both sockets of every connection pair. Callers never touch the
 * sockets: a mode change is a command put in a one-slot mailbox (mutex +
 * condition variable); the caller wakes the thread through the pipe and
 * waits until the thread has executed the command and acknowledged it.
 *
 * Each pair has two directions, d[0] = client -> server and d[1] = server ->
 * client; direction i reads fd[i] and writes fd[1 - i]. A direction queues
 * the chunks it read (one per recv) with a release time (now + delay), and
 * is bounded: its source is not polled for input while BUF_CAP bytes are
 * queued. Poll interest is computed from the state every iteration; a socket
 * with no interest is left out of the poll set (fd -1), so an idle proxy
 * blocks in poll and a hung-up socket cannot make it spin.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ts.h"

#define BUF_CAP (1u << 20) /* bytes queued per direction before backpressure */
#define READ_MAX 65536     /* one recv */

typedef struct chunk {
    struct chunk *next;
    uint64_t release; /* monotonic ms */
    size_t len, off;
    unsigned char data[];
} chunk;

typedef struct dir {
    chunk *head, *tail;
    size_t bytes; /* queued, not yet sent */
    int eof;      /* the source sent EOF */
    int shut;     /* shutdown(dst, SHUT_WR) done */
} dir;

typedef struct conn {
    struct conn *next;
    int fd[2];      /* 0 = client side, 1 = server side */
    int connecting; /* fd[1] connect in progress */
    int cut_close;  /* close the pair once d[1] is flushed */
    int dead;
    int pidx[2]; /* index in the poll set, -1 if not polled */
    dir d[2];
} conn;

enum cmd_type {
    CMD_NONE,
    CMD_PASS,
    CMD_CLOSE_ALL,
    CMD_RESET_ALL,
    CMD_BLACKHOLE,
    CMD_DELAY,
    CMD_CUT,
    CMD_CORRUPT,
    CMD_REFUSE,
    CMD_SYNC,
    CMD_STOP
};

struct ts_proxy {
    /* Constant after start. */
    int port;
    struct sockaddr_storage target;
    socklen_t target_len;
    int wake[2];
    pthread_t thread;

    /* Mailbox, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int cmd; /* CMD_NONE when the slot is free */
    unsigned cmd_arg;
    int cmd_done;
    int cmd_result;    /* 0 or -errno */
    size_t n_accepted; /* snapshot of the counters at the last ack */
    size_t n_open;

    /* Proxy thread only. */
    int lfd;
    int blackhole;
    unsigned delay;
    int cut_armed;
    int corrupt_armed;
    conn *conns;
    size_t accepted, open;
    struct pollfd *pfds;
    size_t pfds_cap;
};

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void die(const char *what) {
    fprintf(stderr, "# proxy: fatal: %s: %s\n", what, strerror(errno));
    abort();
}

static int is_again(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

static void set_nodelay(int fd) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- listening socket -------------------------------------------------- */

/* Listen on 127.0.0.1:port (0 = any free port). Returns the fd or -errno. */
static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* ---- connection pairs -------------------------------------------------- */

static void dir_clear(dir *d) {
    chunk *c = d->head;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    d->head = d->tail = NULL;
    d->bytes = 0;
}

/* Close one socket: with a RST (SO_LINGER {1,0}), or with a FIN: shut down
 * the write side first, then discard what is unread so close() does not turn
 * into a RST. */
static void close_sock(int fd, int rst) {
    if (fd < 0) return;
    if (rst) {
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else {
        (void)shutdown(fd, SHUT_WR);
        char buf[4096];
        for (int i = 0; i < 64; i++)
            if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
    }
    close(fd);
}

static void conn_kill(ts_proxy *p, conn *c, int rst) {
    if (c->dead) return;
    close_sock(c->fd[0], rst);
    close_sock(c->fd[1], rst);
    c->fd[0] = c->fd[1] = -1;
    dir_clear(&c->d[0]);
    dir_clear(&c->d[1]);
    c->dead = 1;
    p->open--;
}

static void sweep(ts_proxy *p) {
    conn **pp = &p->conns;
    while (*pp) {
        conn *c = *pp;
        if (c->dead) {
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void kill_all(ts_proxy *p, int rst) {
    for (conn *c = p->conns; c; c = c->next)
        conn_kill(p, c, rst);
    sweep(p);
}

/* Accept every pending connection and start its outgoing connect. */
static void accept_all(ts_proxy *p) {
    while (p->lfd >= 0) {
        int cfd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "# proxy: accept: %s\n", strerror(errno));
            return;
        }
        p->accepted++;
        set_nodelay(cfd);
        int sfd = socket(p->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int connecting = 0;
        if (sfd >= 0 && connect(sfd, (struct sockaddr *)&p->target, p->target_len) != 0) {
            if (errno == EINPROGRESS || errno == EINTR) {
                connecting = 1;
            } else {
                close(sfd);
                sfd = -1;
            }
        }
        if (sfd < 0) { /* the target refused: the client reads EOF */
            close_sock(cfd, 0);
            continue;
        }
        if (!connecting) set_nodelay(sfd);
        conn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd[0] = cfd;
        c->fd[1] = sfd;
        c->connecting = connecting;
        c->pidx[0] = c->pidx[1] = -1;
        c->next = p->conns;
        p->conns = c;
        p->open++;
    }
}

/* Is direction i interested in reading its source? */
static int want_read(const ts_proxy *p, const conn *c, int i) {
    const dir *d = &c->d[i];
    if (d->eof) return 0;
    if (i == 1 && c->cut_close) return 0;
    return p->blackhole || d->bytes < BUF_CAP;
}

/* Does direction i have bytes due to write to its destination? */
static int want_write(const ts_proxy *p, const conn *c, int i, uint64_t now) {
    if (p->blackhole) return 0;
    if (1 - i == 1 && c->connecting) return 0;
    return c->d[i].head && c->d[i].head->release <= now;
}

static void enqueue(ts_proxy *p, conn *c, int i, const unsigned char *buf, size_t n, uint64_t now) {
    if (i == 1 && p->cut_armed && n >= 2) {
        n /= 2;
        p->cut_armed = 0;
        c->cut_close = 1;
    }
    chunk *ch = malloc(sizeof *ch + n);
    if (!ch) die("malloc");
    memcpy(ch->data, buf, n);
    if (i == 1 && p->corrupt_armed && n >= 1) {
        ch->data[n - 1] ^= 0x5a; /* the last byte: inside a TLS record's tag */
        p->corrupt_armed = 0;
    }
    ch->next = NULL;
    ch->release = now + p->delay;
    ch->len = n;
    ch->off = 0;
    dir *d = &c->d[i];
    if (d->tail)
        d->tail->next = ch;
    else
        d->head = ch;
    d->tail = ch;
    d->bytes += n;
}

/* Send what is due in direction i. Returns -1 if the pair died. */
static int flush_dir(ts_proxy *p, conn *c, int i, uint64_t now) {
    dir *d = &c->d[i];
    int dst = c->fd[1 - i];
    if (p->blackhole || (1 - i == 1 && c->connecting)) return 0;
    while (d->head && d->head->release <= now) {
        chunk *ch = d->head;
        ssize_t n = send(dst, ch->data + ch->off, ch->len - ch->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (is_again(errno)) return 0;
            conn_kill(p, c, 0);
            return -1;
        }
        ch->off += (size_t)n;
        d->bytes -= (size_t)n;
        if (ch->off == ch->len) {
            d->head = ch->next;
            if (!d->head) d->tail = NULL;
            free(ch);
        }
    }
    if (!d->head && d->eof && !d->shut) {
        (void)shutdown(dst, SHUT_WR);
        d->shut = 1;
    }
    return 0;
}

/* One pair after poll: finish the connect, read, write, close when done. */
static void service(ts_proxy *p, conn *c, uint64_t now) {
    short rev[2];
    for (int k = 0; k < 2; k++)
        rev[k] = c->pidx[k] >= 0 ? p->pfds[c->pidx[k]].revents : 0;
    if (c->connecting) {
        if (rev[1]) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
            if (err) { /* the target refused: the client reads EOF */
                conn_kill(p, c, 0);
                return;
            }
            c->connecting = 0;
            set_nodelay(c->fd[1]);
            rev[1] = 0;
        }
    }
    if ((rev[0] | rev[1]) & (POLLERR | POLLNVAL)) {
        conn_kill(p, c, 0);
        return;
    }
    unsigned char buf[READ_MAX];
    for (int i = 0; i < 2; i++) {
        if (!(rev[i] & (POLLIN | POLLHUP)) || !want_read(p, c, i)) continue;
        size_t room = p->blackhole ? sizeof buf : BUF_CAP - c->d[i].bytes;
        if (room > sizeof buf) room = sizeof buf;
        ssize_t n = recv(c->fd[i], buf, room, MSG_DONTWAIT);
        if (n > 0) {
            if (!p->blackhole) enqueue(p, c, i, buf, (size_t)n, now);
        } else if (n == 0) {
            c->d[i].eof = 1;
        } else if (!is_again(errno)) {
            conn_kill(p, c, 0);
            return;
        }
    }
    for (int i = 0; i < 2; i++)
        if (flush_dir(p, c, i, now) < 0) return;
    if (p->blackhole || c->connecting) return;
    if (c->cut_close && !c->d[1].head) {
        conn_kill(p, c, 0);
        return;
    }
    if (c->d[0].shut && c->d[1].shut) conn_kill(p, c, 0);
}

/* ---- commands ---------------------------------------------------------- */

static void set_delay(ts_proxy *p, unsigned ms) {
    p->delay = ms;
    uint64_t latest = now_ms() + ms;
    for (conn *c = p->conns; c; c = c->next)
        for (int i = 0; i < 2; i++)
            for (chunk *ch = c->d[i].head; ch; ch = ch->next)
                if (ch->release > latest) ch->release = latest;
}

static int set_refuse(ts_proxy *p, int on) {
    if (on) {
        if (p->lfd >= 0) {
            accept_all(p); /* connects that already returned stay usable */
            close(p->lfd);
            p->lfd = -1;
        }
        return 0;
    }
    if (p->lfd >= 0) return 0;
    int fd = listen_on(p->port);
    if (fd < 0) return fd;
    p->lfd = fd;
    return 0;
}

static int run_cmd(ts_proxy *p, int cmd, unsigned arg) {
    accept_all(p);
    switch (cmd) {
    case CMD_PASS:
        p->blackhole = 0;
        p->cut_armed = 0;
        p->corrupt_armed = 0;
        set_delay(p, 0);
        return set_refuse(p, 0);
    case CMD_CLOSE_ALL:
        kill_all(p, 0);
        return 0;
    case CMD_RESET_ALL:
        kill_all(p, 1);
        return 0;
    case CMD_BLACKHOLE:
        p->blackhole = arg != 0;
        if (p->blackhole)
            for (conn *c = p->conns; c; c = c->next) {
                dir_clear(&c->d[0]);
                dir_clear(&c->d[1]);
            }
        return 0;
    case CMD_DELAY:
        set_delay(p, arg);
        return 0;
    case CMD_CUT:
        p->cut_armed = 1;
        return 0;
    case CMD_CORRUPT:
        p->corrupt_armed = 1;
        return 0;
    case CMD_REFUSE:
        return set_refuse(p, arg != 0);
    case CMD_STOP:
        kill_all(p, 0);
        if (p->lfd >= 0) close(p->lfd);
        p->lfd = -1;
        return 0;
    default:
        return 0;
    }
}

/* Take the command in the mailbox (if any), run it, acknowledge it.
 * Returns 1 when the thread must exit. */
static int handle_mailbox(ts_proxy *p) {
    char buf[64];
    while (read(p->wake[0], buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&p->mu);
    int cmd = p->cmd_done ? CMD_NONE : p->cmd;
    unsigned arg = p->cmd_arg;
    pthread_mutex_unlock(&p->mu);
    if (cmd == CMD_NONE) return 0;
    int r = run_cmd(p, cmd, arg);
    /* A mode change may make work due without any socket event (blackhole
     * off with an EOF pending, a delay lowered): one pass with no events does
     * it before the caller goes on. */
    uint64_t now = now_ms();
    for (conn *c = p->conns; c; c = c->next) {
        c->pidx[0] = c->pidx[1] = -1;
        service(p, c, now);
    }
    sweep(p);
    pthread_mutex_lock(&p->mu);
    p->cmd_result = r;
    p->n_accepted = p->accepted;
    p->n_open = p->open;
    p->cmd_done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return cmd == CMD_STOP;
}

/* ---- the thread -------------------------------------------------------- */

static struct pollfd *pfd_slot(ts_proxy *p, size_t n) {
    if (n >= p->pfds_cap) {
        size_t cap = p->pfds_cap ? p->pfds_cap * 2 : 64;
        while (cap <= n)
            cap *= 2;
        struct pollfd *np = realloc(p->pfds, cap * sizeof *np);
        if (!np) die("realloc");
        p->pfds = np;
        p->pfds_cap = cap;
    }
    return &p->pfds[n];
}

static void *proxy_main(void *arg) {
    ts_proxy *p = arg;
    for (;;) {
        uint64_t now = now_ms();
        size_t n = 0;
        int timeout = -1;
        struct pollfd *w = pfd_slot(p, n++);
        *w = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        int lidx = -1;
        if (p->lfd >= 0) {
            lidx = (int)n;
            *pfd_slot(p, n++) = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        }
        for (conn *c = p->conns; c; c = c->next) {
            for (int k = 0; k < 2; k++) {
                short ev = 0;
                if (want_read(p, c, k)) ev |= POLLIN;
                if (want_write(p, c, 1 - k, now)) ev |= POLLOUT;
                if (k == 1 && c->connecting) ev |= POLLOUT;
                c->pidx[k] = -1;
                if (!ev) continue;
                c->pidx[k] = (int)n;
                *pfd_slot(p, n++) = (struct pollfd){.fd = c->fd[k], .events = ev};
            }
            if (p->blackhole) continue;
            for (int i = 0; i < 2; i++) {
                const chunk *h = c->d[i].head;
                if (!h || h->release <= now) continue;
                uint64_t due = h->release - now;
                if (due > 60000) due = 60000;
                if (timeout < 0 || (int)due < timeout) timeout = (int)due;
            }
        }
        int r = poll(p->pfds, (nfds_t)n, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        now = now_ms();
        for (conn *c = p->conns; c; c = c->next)
            service(p, c, now);
        sweep(p);
        if (lidx >= 0 && (p->pfds[lidx].revents & POLLIN)) accept_all(p);
        if ((p->pfds[0].revents & POLLIN) && handle_mailbox(p)) break;
    }
    return NULL;
}

/* ---- public API -------------------------------------------------------- */

static int call(const ts_proxy *cp, int cmd, unsigned arg, size_t *n_accepted, size_t *n_open) {
    ts_proxy *p = (ts_proxy *)cp; /* allocated non-const by ts_proxy_start */
    pthread_mutex_lock(&p->mu);
    while (p->cmd != CMD_NONE)
        pthread_cond_wait(&p->cv, &p->mu);
    p->cmd = cmd;
    p->cmd_arg = arg;
    p->cmd_done = 0;
    pthread_mutex_unlock(&p->mu);
    for (;;) {
        ssize_t w = write(p->wake[1], "x", 1);
        if (w == 1 || (w < 0 && errno == EAGAIN)) break; /* full: a wakeup is pending */
        if (w < 0 && errno != EINTR) die("write to the wake pipe");
    }
    pthread_mutex_lock(&p->mu);
    while (!p->cmd_done)
        pthread_cond_wait(&p->cv, &p->mu);
    int r = p->cmd_result;
    if (n_accepted) *n_accepted = p->n_accepted;
    if (n_open) *n_open = p->n_open;
    p->cmd = CMD_NONE;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return r;
}

/* Parse a loopback target; 0 if it is not a loopback address. */
static int parse_target(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    if (!host || port <= 0 || port > 65535) return 0;
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) return 0;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) return 0;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 1;
    }
    return 0;
}

ts_proxy *ts_proxy_start(const char *target_host, int target_port) {
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (!parse_target(target_host, target_port, &ss, &sslen))
        fail_msg("ts_proxy_start: target %s:%d is not a loopback address",
                 target_host ? target_host : "(null)", target_port);
    ts_proxy *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->target = ss;
    p->target_len = sslen;
    assert_int_equal(pthread_mutex_init(&p->mu, NULL), 0);
    assert_int_equal(pthread_cond_init(&p->cv, NULL), 0);
    assert_int_equal(pipe2(p->wake, O_NONBLOCK | O_CLOEXEC), 0);
    p->lfd = listen_on(0);
    if (p->lfd < 0) fail_msg("ts_proxy_start: listen: %s", strerror(-p->lfd));
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &alen), 0);
    p->port = ntohs(a.sin_port);
    /* The thread blocks every signal: they go to the test's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&p->thread, NULL, proxy_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(e, 0);
    return p;
}

int ts_proxy_port(const ts_proxy *p) { return p->port; }

void ts_proxy_pass(ts_proxy *p) {
    int r = call(p, CMD_PASS, 0, NULL, NULL);
    if (r < 0) fail_msg("ts_proxy_pass: listen again on port %d: %s", p->port, strerror(-r));
}

void ts_proxy_close_all(ts_proxy *p) { call(p, CMD_CLOSE_ALL, 0, NULL, NULL); }

void ts_proxy_reset_all(ts_proxy *p) { call(p, CMD_RESET_ALL, 0, NULL, NULL); }

void ts_proxy_blackhole(ts_proxy *p, int on) { call(p, CMD_BLACKHOLE, on != 0, NULL, NULL); }

void ts_proxy_delay(ts_proxy *p, unsigned ms) { call(p, CMD_DELAY, ms, NULL, NULL); }

void ts_proxy_cut_next_reply(ts_proxy *p) { call(p, CMD_CUT, 0, NULL, NULL); }
void ts_proxy_corrupt_next_reply(ts_proxy *p) { call(p, CMD_CORRUPT, 0, NULL, NULL); }

void ts_proxy_refuse(ts_proxy *p, int on) {
    int r = call(p, CMD_REFUSE, on != 0, NULL, NULL);
    if (r < 0) fail_msg("ts_proxy_refuse: listen again on port %d: %s", p->port, strerror(-r));
}

size_t ts_proxy_accepted(const ts_proxy *p) {
    size_t n = 0;
    call(p, CMD_SYNC, 0, &n, NULL);
    return n;
}

size_t ts_proxy_open(const ts_proxy *p) {
    size_t n = 0;
    call(p, CMD_SYNC, 0, NULL, &n);
    return n;
}

void ts_proxy_stop(ts_proxy *p) {
    if (!p) return;
    call(p, CMD_STOP, 0, NULL, NULL);
    pthread_join(p->thread, NULL);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->pfds);
    free(p);
}

aredis_options ts_proxied_start(ts_proxied *r) {
    r->srv = ts_server_start_default();
    r->px = ts_proxy_start("127.0.0.1", ts_server_port(r->srv));
    r->loop = aredis_loop_new();
    assert_non_null(r->loop);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_proxy_port(r->px);
    return o;
}

void ts_proxied_stop(ts_proxied *r, aredis_client *c) {
    if (c) aredis_client_free(c);
    aredis_loop_free(r->loop);
    ts_proxy_stop(r->px);
    ts_server_stop(r->srv);
}
