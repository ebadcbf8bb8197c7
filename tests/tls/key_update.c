/*
 * TLS readiness (tls): over TLS, reading may need to write, and writing may
 * need to read. A TLS 1.3 server that asks for key updates
 * (SSL_key_update(SSL_KEY_UPDATE_REQUESTED)) makes the client's OpenSSL
 * answer with KeyUpdates of its own. OpenSSL 3.0 holds the first answer
 * until the next SSL_write, but writes one from inside SSL_read when a
 * second request arrives first:
 *   - into a full socket, SSL_read then waits for the socket to be
 *     WRITABLE, and until it is, nothing more can be read;
 *   - behind an application record that an SSL_write left half-sent it
 *     cannot write it at all: SSL_read fails ("bad length", OpenSSL issue
 *     #8677). A client must finish a pending write before it reads again.
 *
 * The server is a small in-process one (a thread, OpenSSL, TLS 1.3 only,
 * non-blocking sockets, its own poll loop) speaking just enough RESP: HELLO
 * is refused (the client falls back to RESP2 and PINGs), PING, ECHO. It
 * asks for a key update every KU_EVERY replies, and can be told,
 * synchronously, to hold its replies, to stop reading, and to send key
 * updates followed by the held replies, then fall silent (no read, no
 * write) for a while.
 *
 *   - load: 20,000 ECHOs, each with its own ~1 KiB payload, pipelined in
 *     bursts while the server keeps updating keys: every reply is its own
 *     payload, every command completes, one connection throughout;
 *   - key updates into a full socket: the client has written everything and
 *     its socket is full (the server reads nothing) when two key updates
 *     arrive, followed by replies; the server is then silent for 300 ms.
 *     The client must wait for the socket to become writable — not spin on
 *     the readable socket it cannot read from: its io callback (counted
 *     through a loop wrapping the built-in one) runs only a few times
 *     during the pause. Then everything completes, and the load runs on;
 *   - key updates while a write is pending: the same with a large write
 *     still pending: the connection survives, no spinning either.
 * Socket buffers are fixed (within every system's default limits) so that
 * "full" holds as planned; once full, the client's socket is given the
 * kernel's smallest send buffer, so that any write of the client blocks
 * until the server reads again.
 *
 * TLS 1.2 renegotiation is not tested: the client refuses renegotiation by
 * design (SSL_OP_NO_RENEGOTIATION, src/net/tls.c), so a server's
 * HelloRequest only ends the connection (tried: the client answers with a
 * no_renegotiation alert, the server fails the handshake).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_snd_wnd */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "loop/loop_internal.h"
#include "tls.h"

/* ---- The test server ----------------------------------------------------- */

#define MAXCONN 8
#define KU_EVERY 50 /* replies between two key updates */

typedef struct {
    char *p;
    size_t off, len, cap;
} sbuf;

static void sbuf_reserve(sbuf *b, size_t more) {
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (b->len + more <= b->cap) return;
    if (b->off) { /* reclaim the consumed prefix first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap) return;
    }
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) abort();
    b->p = p;
    b->cap = cap;
}

static void sbuf_add(sbuf *b, const void *d, size_t n) {
    sbuf_reserve(b, n);
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static size_t sbuf_used(const sbuf *b) { return b->len - b->off; }

typedef struct {
    int fd;
    SSL *ssl;
    int hs_done;
    short hs_want;  /* poll event the handshake waits for */
    short rd_want;  /* ... that SSL_read waits for (POLLIN, or POLLOUT) */
    short wr_want;  /* ... that SSL_write waits for (POLLOUT, or POLLIN) */
    int wr_blocked; /* the last SSL_write would block: retry it as is */
    sbuf in, out;
    uint64_t out_added, out_sent; /* reply bytes ever added to `out` / written */
    /* Where key updates go in the reply stream (out_added when due): each
     * is sent once everything before it is written. */
    uint64_t ku_at[64];
    unsigned ku_head, ku_n;
    unsigned since_ku;
    int more; /* stopped reading with input possibly left: step again */
} sconn;

enum { REQ_NONE, REQ_STOP, REQ_HOLD, REQ_NO_READ, REQ_KU_AND_PAUSE };

typedef struct tsrv {
    SSL_CTX *ctx;
    int lfd, port;
    int wake[2];
    pthread_t th;
    sconn conns[MAXCONN];
    int nconns;

    /* requests from the test thread, one at a time */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int req, req_arg, req_arg2, req_done;

    /* modes (server thread only) */
    int hold;    /* parse and answer, but write nothing */
    int no_read; /* read nothing */
    uint64_t pause_until;

    /* what happened (read by the test thread) */
    atomic_size_t accepted;
    atomic_size_t commands;
    atomic_size_t ku_sent;          /* KeyUpdate messages written */
    atomic_size_t ku_received;      /* ... read from the client */
    atomic_size_t flushed_at_pause; /* plaintext bytes written just before the pause */
    atomic_int pause_over;
    atomic_size_t failures;
} tsrv;

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg) {
    (void)version;
    (void)ssl;
    tsrv *s = arg;
    const unsigned char *b = buf;
    if (content_type == SSL3_RT_HANDSHAKE && len > 0 && b[0] == SSL3_MT_KEY_UPDATE) {
        if (write_p)
            atomic_fetch_add(&s->ku_sent, 1);
        else
            atomic_fetch_add(&s->ku_received, 1);
    }
}

static void conn_close(tsrv *s, int i) {
    sconn *k = &s->conns[i];
    SSL_free(k->ssl);
    close(k->fd);
    free(k->in.p);
    free(k->out.p);
    s->conns[i] = s->conns[--s->nconns];
}

static void out_add(sconn *k, const void *d, size_t n) {
    sbuf_add(&k->out, d, n);
    k->out_added += n;
}

/* A key update after the replies added so far; with dup, even if one is
 * already due there (two back to back). */
static void ku_mark(sconn *k, int dup) {
    if (!dup && k->ku_n && k->ku_at[(k->ku_head + k->ku_n - 1) % 64] == k->out_added) return;
    if (k->ku_n == 64) return; /* plenty pending already */
    k->ku_at[(k->ku_head + k->ku_n++) % 64] = k->out_added;
}

/* A reply for one parsed command. */
static void answer(tsrv *s, sconn *k, const char **av, const size_t *al, int ac) {
    atomic_fetch_add(&s->commands, 1);
    if (ac >= 1 && al[0] == 4 && strncasecmp(av[0], "PING", 4) == 0) {
        out_add(k, "+PONG\r\n", 7);
    } else if (ac == 2 && al[0] == 4 && strncasecmp(av[0], "ECHO", 4) == 0) {
        char h[32];
        int n = snprintf(h, sizeof h, "$%zu\r\n", al[1]);
        out_add(k, h, (size_t)n);
        out_add(k, av[1], al[1]);
        out_add(k, "\r\n", 2);
    } else {
        /* HELLO included: the client falls back to RESP2. */
        out_add(k, "-ERR unknown command\r\n", 22);
    }
    if (++k->since_ku >= KU_EVERY) {
        k->since_ku = 0;
        ku_mark(k, 0);
    }
}

/* Parse a decimal up to "\r\n" in [p, end); -1 if incomplete, -2 if bad. */
static long long parse_num(const char **pp, const char *end) {
    const char *p = *pp;
    long long v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (p + 2 > end) return -1;
    if (!digits || p[0] != '\r' || p[1] != '\n') return -2;
    *pp = p + 2;
    return v;
}

/* Answer every complete command in k->in. Returns -1 on a protocol error. */
static int parse(tsrv *s, sconn *k) {
    for (;;) {
        const char *p = k->in.p + k->in.off, *end = k->in.p + k->in.len;
        if (p == end) return 0;
        if (*p != '*') return -1;
        p++;
        long long n = parse_num(&p, end);
        if (n == -1) return 0;
        if (n < 1 || n > 8) return -1;
        const char *av[8];
        size_t al[8];
        for (long long i = 0; i < n; i++) {
            if (p >= end) return 0;
            if (*p != '$') return -1;
            p++;
            long long l = parse_num(&p, end);
            if (l == -1) return 0;
            if (l < 0) return -1;
            if ((size_t)(end - p) < (size_t)l + 2) return 0;
            av[i] = p;
            al[i] = (size_t)l;
            p += l + 2;
        }
        answer(s, k, av, al, (int)n);
        k->in.off = (size_t)(p - k->in.p);
    }
}

/* SSL error → the poll event to wait for; 0 for the end of the connection
 * (a failure other than the client going away is logged and counted). */
static tsrv *g_srv_for_log;

static short want_of(SSL *ssl, int r) {
    int e = SSL_get_error(ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return POLLIN;
    case SSL_ERROR_WANT_WRITE:
        return POLLOUT;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) return 0; /* EOF or reset: the client left */
        /* fall through */
    default: {
        char why[256];
        ERR_error_string_n(ERR_peek_error(), why, sizeof why);
        ts_log("test server: connection failed: SSL error %d: %s", e, why);
        if (g_srv_for_log) atomic_fetch_add(&g_srv_for_log->failures, 1);
        ERR_clear_error();
        return 0;
    }
    }
}

/* Write what is owed, with the key updates at their places. Returns -1 if
 * the connection failed. */
static int conn_flush(tsrv *s, sconn *k) {
    (void)s;
    for (;;) {
        if (!SSL_is_init_finished(k->ssl)) {
            /* A key update asked for below goes out before anything else. */
            ERR_clear_error();
            int r = SSL_do_handshake(k->ssl);
            if (r == 1) continue;
            short w = want_of(k->ssl, r);
            if (!w) return -1;
            k->wr_want = w;
            return 0;
        }
        /* Not while an SSL_write waits to be retried (OpenSSL refuses). */
        if (!k->wr_blocked && k->ku_n && k->ku_at[k->ku_head] <= k->out_sent) {
            ERR_clear_error();
            if (SSL_key_update(k->ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
                ts_log("test server: SSL_key_update refused");
                return -1;
            }
            k->ku_head = (k->ku_head + 1) % 64;
            k->ku_n--;
            continue;
        }
        size_t n = sbuf_used(&k->out);
        if (k->ku_n && k->ku_at[k->ku_head] > k->out_sent && k->ku_at[k->ku_head] - k->out_sent < n)
            n = (size_t)(k->ku_at[k->ku_head] - k->out_sent); /* up to the next one */
        if (n == 0) return 0;
        size_t put = 0;
        ERR_clear_error();
        int r = SSL_write_ex(k->ssl, k->out.p + k->out.off, n, &put);
        if (r == 1) {
            k->wr_blocked = 0;
            k->wr_want = POLLOUT;
            k->out.off += put;
            k->out_sent += put;
            if (k->out.off == k->out.len) k->out.off = k->out.len = 0;
            continue;
        }
        short w = want_of(k->ssl, r);
        if (!w) return -1;
        k->wr_blocked = 1;
        k->wr_want = w;
        return 0;
    }
}

/* Read what is there (up to 1 MiB a step, so that replies go out in
 * between) and answer it. Returns -1 if the connection ended. */
static int conn_read(tsrv *s, sconn *k) {
    size_t budget = 1u << 20;
    k->more = 0;
    for (;;) {
        if (budget == 0) {
            k->more = 1;
            return 0;
        }
        sbuf_reserve(&k->in, 65536);
        size_t got = 0;
        ERR_clear_error();
        int r = SSL_read_ex(k->ssl, k->in.p + k->in.len, k->in.cap - k->in.len, &got);
        if (r == 1) {
            k->rd_want = POLLIN;
            k->in.len += got;
            budget = got < budget ? budget - got : 0;
            if (parse(s, k) != 0) return -1;
            continue;
        }
        short w = want_of(k->ssl, r);
        if (!w) return -1;
        k->rd_want = w;
        return 0;
    }
}

static int paused(const tsrv *s) { return s->pause_until != 0; }

/* One step of a connection: handshake, read, write. -1: close it. */
static int conn_step(tsrv *s, sconn *k) {
    if (!k->hs_done) {
        ERR_clear_error();
        int r = SSL_accept(k->ssl);
        if (r != 1) {
            short w = want_of(k->ssl, r);
            if (!w) return -1;
            k->hs_want = w;
            return 0;
        }
        k->hs_done = 1;
    }
    if (paused(s)) return 0;
    if (!s->no_read && conn_read(s, k) != 0) return -1;
    if (!s->hold && conn_flush(s, k) != 0) return -1;
    return 0;
}

static short conn_events(const tsrv *s, const sconn *k) {
    if (!k->hs_done) return k->hs_want;
    if (paused(s)) return 0;
    short ev = 0;
    if (!s->no_read) ev |= k->rd_want;
    if (!s->hold && (sbuf_used(&k->out) || k->ku_n || !SSL_is_init_finished(k->ssl)))
        ev |= k->wr_want;
    return ev;
}

static void do_accept(tsrv *s) {
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) return;
        if (s->nconns == MAXCONN) {
            close(fd);
            continue;
        }
        set_nonblock(fd);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sconn *k = &s->conns[s->nconns];
        memset(k, 0, sizeof *k);
        k->fd = fd;
        k->ssl = SSL_new(s->ctx);
        if (!k->ssl) abort();
        SSL_set_fd(k->ssl, fd);
        SSL_set_accept_state(k->ssl);
        SSL_set_msg_callback(k->ssl, on_msg);
        SSL_set_msg_callback_arg(k->ssl, s);
        k->hs_want = POLLIN;
        k->rd_want = POLLIN;
        k->wr_want = POLLOUT;
        s->nconns++;
        atomic_fetch_add(&s->accepted, 1);
        if (conn_step(s, k) != 0) {
            atomic_fetch_add(&s->failures, 1);
            conn_close(s, s->nconns - 1);
        }
    }
}

static uint64_t mono_ms(void) { return ts_now_ms(); }

/* Requests, on the server thread. Returns 1 to stop. */
static int handle_request(tsrv *s) {
    pthread_mutex_lock(&s->mu);
    int req = s->req, arg = s->req_arg, arg2 = s->req_arg2;
    pthread_mutex_unlock(&s->mu);
    if (req == REQ_NONE) return 0;
    switch (req) {
    case REQ_HOLD:
        s->hold = 1;
        break;
    case REQ_NO_READ:
        s->no_read = 1;
        break;
    case REQ_KU_AND_PAUSE: {
        /* arg2 key updates back to back, then the held replies behind them,
         * as far as they go; then silence for arg ms. */
        s->hold = 0;
        size_t flushed = 0;
        for (int i = 0; i < s->nconns; i++) {
            sconn *k = &s->conns[i];
            if (!k->hs_done) continue;
            for (int j = 0; j < arg2; j++)
                ku_mark(k, 1);
            size_t before = sbuf_used(&k->out);
            if (conn_flush(s, k) != 0) atomic_fetch_add(&s->failures, 1);
            flushed += before - sbuf_used(&k->out);
        }
        atomic_store(&s->flushed_at_pause, flushed);
        s->pause_until = mono_ms() + (uint64_t)arg;
        atomic_store(&s->pause_over, 0);
        break;
    }
    default:
        break;
    }
    pthread_mutex_lock(&s->mu);
    s->req = REQ_NONE;
    s->req_done++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return req == REQ_STOP;
}

static void *server_main(void *arg) {
    tsrv *s = arg;
    for (;;) {
        struct pollfd pfd[MAXCONN + 2];
        pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN, .revents = 0};
        pfd[1] = (struct pollfd){.fd = s->lfd, .events = POLLIN, .revents = 0};
        int n = s->nconns;
        for (int i = 0; i < n; i++)
            pfd[2 + i] = (struct pollfd){
                .fd = s->conns[i].fd, .events = conn_events(s, &s->conns[i]), .revents = 0};
        int timeout = -1, more = 0;
        for (int i = 0; i < n; i++)
            more |= s->conns[i].more && !paused(s) && !s->no_read;
        if (more) timeout = 0;
        if (paused(s)) {
            uint64_t now = mono_ms();
            timeout = s->pause_until > now ? (int)(s->pause_until - now) : 0;
        }
        int r = poll(pfd, (nfds_t)(2 + n), timeout);
        if (r < 0 && errno != EINTR) break;
        if (paused(s) && mono_ms() >= s->pause_until) {
            /* The pause is over: read and write again. */
            s->pause_until = 0;
            s->no_read = 0;
            atomic_store(&s->pause_over, 1);
            for (int i = s->nconns - 1; i >= 0; i--)
                if (conn_step(s, &s->conns[i]) != 0) conn_close(s, i);
        }
        if (r < 0) continue;
        if (pfd[0].revents) {
            char b[16];
            (void)!read(s->wake[0], b, sizeof b);
            if (handle_request(s)) break;
        }
        if (pfd[1].revents) do_accept(s);
        for (int i = n - 1; i >= 0; i--) {
            if (i >= s->nconns || !(pfd[2 + i].revents || s->conns[i].more)) continue;
            if (conn_step(s, &s->conns[i]) != 0) conn_close(s, i);
        }
    }
    while (s->nconns)
        conn_close(s, s->nconns - 1);
    return NULL;
}

/* Send a request and wait until the server thread has carried it out. */
static void tsrv_request2(tsrv *s, int req, int arg, int arg2) {
    pthread_mutex_lock(&s->mu);
    s->req = req;
    s->req_arg = arg;
    s->req_arg2 = arg2;
    int done = s->req_done;
    (void)!write(s->wake[1], "x", 1);
    while (s->req_done == done)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void tsrv_request(tsrv *s, int req, int arg) { tsrv_request2(s, req, arg, 0); }

static tsrv *tsrv_start(void) {
    tsrv *s = calloc(1, sizeof *s);
    assert_non_null(s);
    g_srv_for_log = s;
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION), 1);
    SSL_CTX_set_mode(s->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* The client closes without close_notify: an ordinary EOF. */
    SSL_CTX_set_options(s->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(s->ctx, ts_tls_file("server.crt")), 1);
    assert_int_equal(
        SSL_CTX_use_PrivateKey_file(s->ctx, ts_tls_file("server.key"), SSL_FILETYPE_PEM), 1);

    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    /* A small fixed receive buffer (inherited by accepted sockets): the
     * window closes soon after the server stops reading. */
    int rcvbuf = 32 * 1024;
    assert_int_equal(setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    set_nonblock(s->lfd);
    assert_int_equal(pipe(s->wake), 0);
    set_nonblock(s->wake[0]);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
    return s;
}

static void tsrv_stop(tsrv *s) {
    tsrv_request(s, REQ_STOP, 0);
    pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- A built-in loop that counts io callbacks ------------------------------ */

static size_t g_io_calls; /* io callbacks run */
static int g_io_mask;     /* what the client watches now (its last io_set) */
static int g_io_fd = -1;  /* the client's socket (one client at a time) */

typedef struct {
    aredis_io_fn *cb;
    void *arg;
    void *inner;
} cio;

static void cio_fire(void *arg, int events) {
    cio *w = arg;
    g_io_calls++;
    w->cb(w->arg, events); /* may free w */
}

static void *cio_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    cio *w = malloc(sizeof *w);
    if (!w) return NULL;
    w->cb = cb;
    w->arg = arg;
    g_io_fd = fd;
    g_io_mask = 0;
    w->inner = aredis__builtin_vtable.io_new(ld, fd, cio_fire, w);
    if (!w->inner) {
        free(w);
        return NULL;
    }
    return w;
}

static void cio_set(void *io, int events) {
    cio *w = io;
    g_io_mask = events;
    aredis__builtin_vtable.io_set(w->inner, events);
}

static void cio_free(void *io) {
    cio *w = io;
    g_io_fd = -1;
    aredis__builtin_vtable.io_free(w->inner);
    free(w);
}

static aredis_loop *counting_loop(void) {
    aredis_loop_vtable vt = aredis__builtin_vtable;
    vt.io_new = cio_new;
    vt.io_set = cio_set;
    vt.io_free = cio_free;
    void *ld = aredis__builtin_new();
    assert_non_null(ld);
    aredis_loop *loop = aredis_loop_from_vtable(&vt, ld);
    assert_non_null(loop);
    return loop;
}

/* ---- Commands and their payloads ------------------------------------------ */

#define PAYLOAD 1000

/* The payload of command i (n bytes): unique to i, printable. */
static void payload(size_t i, char *p, size_t n) {
    int h = snprintf(p, n, "#%zu:", i);
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + 1;
    for (size_t j = (size_t)h; j < n; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[j] = (char)('a' + x % 26);
    }
}

typedef struct {
    size_t len; /* the payload's length */
    int calls;
    int ok; /* the reply was exactly the payload */
    aredis_err code;
} echo_rec;

typedef struct {
    echo_rec *rec;
    size_t n;
    size_t done;
    size_t bad;
    char *scratch; /* room for the largest payload */
} echo_set;

static echo_set *g_set;

static void on_echo(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    size_t i = (size_t)(uintptr_t)data;
    echo_rec *e = &g_set->rec[i];
    e->calls++;
    e->code = err ? err->code : AREDIS_ERR_OK;
    if (!err && r->type == AREDIS_REPLY_STRING && r->len == e->len) {
        payload(i, g_set->scratch, e->len);
        e->ok = memcmp(r->str, g_set->scratch, e->len) == 0;
    }
    if (!e->ok) g_set->bad++;
    g_set->done++;
}

static void echo_set_init(echo_set *s, size_t n, size_t maxlen) {
    memset(s, 0, sizeof *s);
    s->rec = calloc(n, sizeof *s->rec);
    s->scratch = malloc(maxlen);
    assert_non_null(s->rec);
    assert_non_null(s->scratch);
    s->n = n;
    g_set = s;
}

static void echo_set_free(echo_set *s) {
    free(s->rec);
    free(s->scratch);
    g_set = NULL;
}

/* Issue ECHO i with a payload of len bytes. */
static void echo(aredis_client *c, echo_set *s, size_t i, size_t len, char *buf) {
    s->rec[i].len = len;
    payload(i, buf, len);
    aredis_err e = aredis_command(c, on_echo, (void *)(uintptr_t)i, "ECHO %b", buf, len);
    if (e != AREDIS_ERR_OK)
        fail_msg("ECHO %zu refused: %s (the connection failed: see above)", i, aredis_err_name(e));
}

static void check_all(const echo_set *s, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        const echo_rec *e = &s->rec[i];
        if (e->calls != 1 || e->code != AREDIS_ERR_OK || !e->ok)
            fail_msg("ECHO %zu: %d call(s), %s, reply %s", i, e->calls, aredis_err_name(e->code),
                     e->ok ? "right" : "wrong");
    }
}

static size_t g_conn_errors;

static void on_conn_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    g_conn_errors++;
    ts_log("client: connection error %s: %s", aredis_err_name(err->code), err->detail);
}

static aredis_client *tls_client(aredis_loop *loop, const tsrv *s) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = s->port;
    o.tls = 1;
    o.tls_ca_file = ts_tls_file("ca.crt");
    o.tls_server_name = "localhost";
    o.request_timeout_ms = 0;
    o.reconnect = 0; /* one connection: a failure shows as failed commands */
    o.on_error = on_conn_error;
    g_conn_errors = 0;
    return ts_connect(loop, &o);
}

/* One of the server's counts (commands, key updates received) has reached
 * n: for ts_wait_until. */
typedef struct {
    atomic_size_t *count;
    size_t n;
} srv_count;

static int server_reached(const void *arg) {
    const srv_count *w = arg;
    return atomic_load(w->count) >= w->n;
}

static int flag_on(const void *arg) { return atomic_load((const atomic_int *)arg) != 0; }

/* The client's socket: its peer's receive window and what it holds. */
static void socket_fill(int fd, unsigned *snd_wnd, int *outq) {
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
    if (len < offsetof(struct tcp_info, tcpi_snd_wnd) + sizeof ti.tcpi_snd_wnd)
        fail_msg("TCP_INFO has no tcpi_snd_wnd on this kernel");
    *snd_wnd = ti.tcpi_snd_wnd;
    assert_int_equal(ioctl(fd, SIOCOUTQ, outq), 0);
}

typedef struct {
    aredis_client *c;
    uint64_t bytes_out; /* the client must have written at least this */
    int write_pending;  /* ... and still wait to write more (or not) */
} stall_arg;

/*
 * The server reads nothing and its receive window is (all but) closed; the client's
 * socket holds a good amount (more than the smallest send buffer, which it
 * is given next: then ANY write of the client blocks until the server reads
 * again); and the client still has a write pending, or has none.
 */
static int send_stalled(const void *arg) {
    const stall_arg *a = arg;
    aredis_client_stats st;
    aredis_client_get_stats(a->c, &st);
    if (st.bytes_out < a->bytes_out || g_io_fd < 0) return 0;
    if (((g_io_mask & AREDIS_EV_WRITE) != 0) != a->write_pending) return 0;
    unsigned wnd;
    int outq;
    socket_fill(g_io_fd, &wnd, &outq);
    return wnd < 16384 && outq >= 16384;
}

static void set_sndbuf(int fd, int bytes) {
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
}

/* ---- Load: pipelined bursts under key updates ------------------------------ */

static void run_load(tsrv *srv, aredis_loop *loop, aredis_client *c) {
    enum { N = 20000, BURSTS = 4 };
    echo_set set;
    echo_set_init(&set, N, PAYLOAD + 64);
    char *buf = malloc(PAYLOAD + 64);
    assert_non_null(buf);
    size_t ku0 = atomic_load(&srv->ku_sent);
    size_t calls0 = g_io_calls;
    uint64_t t0 = ts_now_ms();
    size_t issued = 0;
    for (int b = 0; b < BURSTS; b++) {
        for (size_t k = 0; k < N / BURSTS; k++, issued++)
            echo(c, &set, issued, PAYLOAD + issued % 64, buf);
        /* The next burst goes out while half of this one is in flight. */
        assert_true(ts_wait_count(loop, &set.done, issued - N / BURSTS / 2, 60000));
    }
    assert_true(ts_wait_count(loop, &set.done, N, 60000));
    aredis_loop_run_once(loop, 0);
    ts_log("%d ECHOs of ~1 KiB in %llu ms: %zu key updates asked, %zu answered, "
           "%zu io callbacks",
           N, (unsigned long long)(ts_now_ms() - t0), atomic_load(&srv->ku_sent) - ku0,
           atomic_load(&srv->ku_received), g_io_calls - calls0);
    assert_int_equal(set.done, N);
    assert_int_equal(set.bad, 0);
    check_all(&set, 0, N);
    assert_int_equal(aredis_client_pending(c), 0);
    free(buf);
    echo_set_free(&set);
}

static void test_load_with_key_updates(void **state) {
    (void)state;
    tsrv *srv = tsrv_start();
    aredis_loop *loop = counting_loop();
    aredis_client *c = tls_client(loop, srv);
    assert_int_equal(aredis_client_protocol(c), 2);
    run_load(srv, loop, c);
    assert_int_equal(g_conn_errors, 0);
    /* The server did update keys, the client answered, on one connection. */
    assert_true(atomic_load(&srv->ku_sent) >= 100);
    assert_true(atomic_load(&srv->ku_received) >= 100);
    assert_int_equal(atomic_load(&srv->accepted), 1);
    assert_int_equal(atomic_load(&srv->failures), 0);
    aredis_client_free(c);
    aredis_loop_free(loop);
    tsrv_stop(srv);
}

/* ---- Pause: key updates meet a full socket --------------------------------- */

/*
 * 1. The server holds its replies while the client sends SMALL ECHOs.
 * 2. The server stops reading; the client sends a burst: big enough to stay
 *    pending (write_pending), or small enough to leave the client's output
 *    buffer empty with its socket full. The socket is then given the
 *    smallest send buffer: whatever the client writes now blocks.
 * 3. The server asks for two key updates back to back, sends the held
 *    replies behind them as far as they go, and is silent for PAUSE_MS.
 *    Reading the second key update makes the client's OpenSSL write its
 *    answer: from inside SSL_read, into a full socket (or behind a pending
 *    application record, which OpenSSL 3.0 cannot do: a client must not
 *    read then). Either way the client has to wait for the socket to become
 *    writable, and the socket stays readable all along.
 * 4. The server reads and writes again: every command completes with its
 *    own payload, on the same connection, and the connection carries on.
 * The case's state: write_pending (k_write_pending, k_socket_full).
 */
static void test_key_updates_meet_full_socket(void **state) {
    const int write_pending = *(const int *)*state;
    enum { SMALL = 200, PAUSE_MS = 300 };
    const size_t burst_n = write_pending ? 16 : 160;
    const size_t burst_len = write_pending ? (size_t)1 << 20 : PAYLOAD;
    tsrv *srv = tsrv_start();
    aredis_loop *loop = counting_loop();
    aredis_client *c = tls_client(loop, srv);
    int fd = g_io_fd;
    /* A fixed send buffer, within every system's default limit (wmem_max):
     * the small burst fits in the socket whole. */
    set_sndbuf(fd, 200000);
    echo_set set;
    size_t total = SMALL + burst_n;
    echo_set_init(&set, total, burst_len > PAYLOAD ? burst_len : PAYLOAD);
    char *buf = malloc(burst_len > PAYLOAD ? burst_len : PAYLOAD);
    assert_non_null(buf);

    /* 1. */
    tsrv_request(srv, REQ_HOLD, 0);
    size_t base = atomic_load(&srv->commands);
    for (size_t i = 0; i < SMALL; i++)
        echo(c, &set, i, PAYLOAD, buf);
    srv_count want = {&srv->commands, base + SMALL};
    assert_true(ts_wait_until(loop, server_reached, &want, 10000));
    assert_int_equal(set.done, 0);

    /* 2. */
    tsrv_request(srv, REQ_NO_READ, 0);
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    stall_arg sa = {c, st.bytes_out + (write_pending ? 1 : burst_n * burst_len), write_pending};
    for (size_t i = SMALL; i < total; i++)
        echo(c, &set, i, burst_len, buf);
    if (!ts_wait_until(loop, send_stalled, &sa, 10000)) {
        unsigned wnd;
        int outq;
        socket_fill(fd, &wnd, &outq);
        aredis_client_get_stats(c, &st);
        fail_msg("setup: the client's socket did not fill as planned: write %s, server "
                 "window %u, %d bytes queued, %llu bytes out",
                 (g_io_mask & AREDIS_EV_WRITE) ? "pending" : "done", wnd, outq,
                 (unsigned long long)st.bytes_out);
    }
    set_sndbuf(fd, 1); /* the kernel's minimum: below what the socket holds */

    /* 3. */
    size_t ku_rx = atomic_load(&srv->ku_received);
    size_t calls0 = g_io_calls;
    uint64_t t0 = ts_now_ms();
    tsrv_request2(srv, REQ_KU_AND_PAUSE, PAUSE_MS, 2);
    assert_true(ts_wait_until(loop, flag_on, &srv->pause_over, 10000));
    size_t during = g_io_calls - calls0;
    if (g_io_fd == fd) set_sndbuf(fd, 200000); /* unless the connection is gone */
    ts_log("%s: server silent for %d ms after 2 key updates and %zu bytes of replies: %zu io "
           "callbacks in %llu ms (%zu replies read, %zu connection errors)",
           write_pending ? "write pending" : "socket full", PAUSE_MS,
           atomic_load(&srv->flushed_at_pause), during, (unsigned long long)(ts_now_ms() - t0),
           set.done, g_conn_errors);
    assert_true(atomic_load(&srv->flushed_at_pause) > 0);
    if (g_conn_errors) fail_msg("the connection failed during the pause (see above)");
    /* Waiting for writability, not spinning on a readable socket. */
    if (during >= 200)
        fail_msg("%zu io callbacks during a %d ms pause: the client busy-loops", during, PAUSE_MS);

    /* 4. */
    assert_true(ts_wait_count(loop, &set.done, total, 60000));
    assert_int_equal(g_conn_errors, 0);
    assert_int_equal(set.bad, 0);
    check_all(&set, 0, total);
    /* The client answered the key updates (behind the burst, so the server
     * may read the answer only now). */
    srv_count want_ku = {&srv->ku_received, ku_rx + 1};
    if (!ts_wait_until(loop, server_reached, &want_ku, 10000))
        fail_msg("the client never answered the key updates (%zu answers before, %zu now)", ku_rx,
                 atomic_load(&srv->ku_received));
    assert_int_equal(atomic_load(&srv->accepted), 1);
    assert_int_equal(atomic_load(&srv->failures), 0);
    free(buf);
    echo_set_free(&set);
    run_load(srv, loop, c);
    assert_int_equal(g_conn_errors, 0);
    assert_int_equal(atomic_load(&srv->accepted), 1);

    aredis_client_free(c);
    aredis_loop_free(loop);
    tsrv_stop(srv);
}

static const int k_write_pending = 1, k_socket_full = 0;

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* the test server writes with write(2) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_with_key_updates),
        TS_CASE("test_key_updates_into_full_socket", test_key_updates_meet_full_socket,
                k_socket_full),
        TS_CASE("test_key_updates_while_write_pending", test_key_updates_meet_full_socket,
                k_write_pending),
    };
    return cmocka_run_group_tests_name("tls_key_update", tests, NULL, NULL);
}
