/*
 * Test support: a fake sentinel the test controls (sentinel.h, "A fake
 * sentinel").
 *
 * One thread serves every connection at once: poll() over the listening
 * socket, a wake-up pipe and the connections; blocking sockets, small
 * writes. The test thread changes the state and writes to subscribers
 * under the same mutex; connections are closed by the thread only (the
 * test shuts them down), so no fd is reused under anyone's feet. It
 * allocates with the C library, never through aredis_set_allocator()
 * hooks.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sentinel.h"

#define FS_MAX_CONNS 64
#define FS_MAX_ARGS 16

typedef struct fs_out {
    struct fs_out *next;
    uint64_t due; /* monotonic ms */
    size_t len;
    char data[];
} fs_out;

typedef struct fs_conn {
    struct fs_conn *next;
    int fd;
    int proto; /* 2 or 3 */
    int sub;   /* subscribed to something */
    char *in;
    size_t inlen, incap;
    fs_out *out, *out_tail; /* replies held back (ts_fsent_set_delay) */
} fs_conn;

struct ts_fsent {
    pthread_t th;
    pthread_mutex_t mu;
    int lfd, port;
    int wake[2];
    char name[128];
    char host[64], mport[32]; /* the answer; host "" = nil */
    int silent;
    unsigned delay_ms;
    unsigned lookups;
    fs_conn *conns;
};

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* the peer is gone: its read end sees it */
        p += w;
        n -= (size_t)w;
    }
}

/* ---- Replies (built into a growable buffer) ------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_bulk(sbuf *b, const char *s, size_t n) {
    sb_fmt(b, "$%zu\r\n", n);
    sb_add(b, s, n);
    sb_add(b, "\r\n", 2);
}

static void sb_str(sbuf *b, const char *s) { sb_bulk(b, s, strlen(s)); }

/* Send now, or after the delay (keeping the order of what is held). */
static void conn_send(ts_fsent *f, fs_conn *c, sbuf *b, int delayed) {
    if (!b->len) return;
    if (!delayed && !c->out) {
        write_all(c->fd, b->p, b->len);
        return;
    }
    fs_out *o = malloc(sizeof *o + b->len);
    if (!o) abort();
    o->next = NULL;
    o->due = mono_ms() + (delayed ? f->delay_ms : 0);
    if (c->out_tail && o->due < c->out_tail->due) o->due = c->out_tail->due;
    o->len = b->len;
    memcpy(o->data, b->p, b->len);
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out = o;
    c->out_tail = o;
}

/* ---- Commands ------------------------------------------------------------ */

static int arg_is(const char *a, size_t n, const char *s) {
    return n == strlen(s) && strncasecmp(a, s, n) == 0;
}

static void command(ts_fsent *f, fs_conn *c, int argc, char **argv, size_t *lens) {
    sbuf b = {0};
    int delayed = 0;
    if (arg_is(argv[0], lens[0], "HELLO")) {
        if (argc > 1 && arg_is(argv[1], lens[1], "3")) c->proto = 3;
        sb_add(&b, c->proto == 3 ? "%3\r\n" : "*6\r\n", 4);
        sb_str(&b, "server");
        sb_str(&b, "redis");
        sb_str(&b, "proto");
        sb_fmt(&b, ":%d\r\n", c->proto);
        sb_str(&b, "mode");
        sb_str(&b, "sentinel");
    } else if (arg_is(argv[0], lens[0], "AUTH") || arg_is(argv[0], lens[0], "CLIENT") ||
               arg_is(argv[0], lens[0], "SELECT")) {
        sb_fmt(&b, "+OK\r\n");
    } else if (arg_is(argv[0], lens[0], "PING")) {
        if (c->sub && c->proto == 2)
            sb_fmt(&b, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        else
            sb_fmt(&b, "+PONG\r\n");
    } else if (arg_is(argv[0], lens[0], "ROLE")) {
        sb_fmt(&b, "*2\r\n");
        sb_str(&b, "sentinel");
        sb_fmt(&b, "*1\r\n");
        sb_str(&b, f->name);
    } else if (arg_is(argv[0], lens[0], "SENTINEL") && argc >= 2) {
        f->lookups++;
        if (f->silent) return;
        delayed = f->delay_ms > 0;
        if (arg_is(argv[1], lens[1], "get-master-addr-by-name") && argc >= 3) {
            if (!f->host[0] || !arg_is(argv[2], lens[2], f->name)) {
                sb_fmt(&b, c->proto == 3 ? "_\r\n" : "*-1\r\n");
            } else {
                sb_fmt(&b, "*2\r\n");
                sb_str(&b, f->host);
                sb_str(&b, f->mport);
            }
        } else if (arg_is(argv[1], lens[1], "replicas") || arg_is(argv[1], lens[1], "slaves")) {
            sb_fmt(&b, "*0\r\n");
        } else {
            sb_fmt(&b, "-ERR Unknown sentinel subcommand\r\n");
        }
    } else if (arg_is(argv[0], lens[0], "SUBSCRIBE") && argc >= 2) {
        for (int i = 1; i < argc; i++) {
            sb_add(&b, c->proto == 3 ? ">3\r\n" : "*3\r\n", 4);
            sb_str(&b, "subscribe");
            sb_bulk(&b, argv[i], lens[i]);
            sb_fmt(&b, ":%d\r\n", i);
        }
        c->sub = 1;
    } else {
        sb_fmt(&b, "-ERR unknown command '%.*s'\r\n", (int)(lens[0] > 40 ? 40 : lens[0]), argv[0]);
    }
    conn_send(f, c, &b, delayed);
    free(b.p);
}

/* Parse and run the complete commands in c->in: 0, or -1 for bytes that
 * are no command (the connection is then closed). */
static int conn_parse(ts_fsent *f, fs_conn *c) {
    size_t pos = 0;
    for (;;) {
        char *p = c->in + pos, *end = c->in + c->inlen;
        if (p >= end) break;
        if (*p != '*') return -1;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        int argc = atoi(p + 1);
        if (argc < 1 || argc > FS_MAX_ARGS) return -1;
        char *q = nl + 1;
        char *argv[FS_MAX_ARGS];
        size_t lens[FS_MAX_ARGS];
        int k = 0;
        for (; k < argc; k++) {
            if (q >= end) break;
            if (*q != '$') return -1;
            char *l = memchr(q, '\n', (size_t)(end - q));
            if (!l) break;
            long n = atol(q + 1);
            if (n < 0) return -1;
            if ((size_t)(end - (l + 1)) < (size_t)n + 2) break;
            argv[k] = l + 1;
            lens[k] = (size_t)n;
            q = l + 1 + n + 2;
        }
        if (k < argc) break; /* incomplete */
        command(f, c, argc, argv, lens);
        pos = (size_t)(q - c->in);
    }
    memmove(c->in, c->in + pos, c->inlen - pos);
    c->inlen -= pos;
    return 0;
}

static void conn_free(fs_conn *c) {
    close(c->fd);
    while (c->out) {
        fs_out *o = c->out;
        c->out = o->next;
        free(o);
    }
    free(c->in);
    free(c);
}

/* ---- The thread ------------------------------------------------------------ */

static void *fs_thread(void *arg) {
    ts_fsent *f = arg;
    for (;;) {
        struct pollfd pfd[FS_MAX_CONNS + 2];
        fs_conn *who[FS_MAX_CONNS + 2];
        nfds_t n = 0;
        int timeout = -1;
        pthread_mutex_lock(&f->mu);
        pfd[n++] = (struct pollfd){.fd = f->wake[0], .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
        uint64_t now = mono_ms();
        for (fs_conn *c = f->conns; c && n < FS_MAX_CONNS + 2; c = c->next) {
            who[n] = c;
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            if (c->out) {
                int t = c->out->due > now ? (int)(c->out->due - now) : 0;
                if (timeout < 0 || t < timeout) timeout = t;
            }
        }
        pthread_mutex_unlock(&f->mu);
        if (poll(pfd, n, timeout) < 0 && errno != EINTR) break;
        if (pfd[0].revents) break; /* ts_fsent_stop() */
        pthread_mutex_lock(&f->mu);
        if (pfd[1].revents & POLLIN) {
            int fd = accept(f->lfd, NULL, NULL);
            if (fd >= 0) {
                fs_conn *c = calloc(1, sizeof *c);
                if (!c) abort();
                c->fd = fd;
                c->proto = 2;
                c->next = f->conns;
                f->conns = c;
            }
        }
        for (nfds_t i = 2; i < n; i++) {
            fs_conn *c = who[i];
            int dead = 0;
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (c->inlen + 4096 > c->incap) {
                    c->incap = c->inlen + 8192;
                    c->in = realloc(c->in, c->incap);
                    if (!c->in) abort();
                }
                ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
                if (r > 0) {
                    c->inlen += (size_t)r;
                    if (conn_parse(f, c) != 0) dead = 1;
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    dead = 1;
                }
            }
            now = mono_ms();
            while (!dead && c->out && c->out->due <= now) {
                fs_out *o = c->out;
                c->out = o->next;
                if (!c->out) c->out_tail = NULL;
                write_all(c->fd, o->data, o->len);
                free(o);
            }
            if (dead) {
                for (fs_conn **pp = &f->conns; *pp; pp = &(*pp)->next) {
                    if (*pp == c) {
                        *pp = c->next;
                        break;
                    }
                }
                conn_free(c);
            }
        }
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

/* ---- The test's side --------------------------------------------------------- */

ts_fsent *ts_fsent_start(const char *master_name) {
    ts_fsent *f = calloc(1, sizeof *f);
    if (!f) abort();
    snprintf(f->name, sizeof f->name, "%s", master_name ? master_name : TS_SENTINEL_MASTER);
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->lfd, 64) != 0 || getsockname(f->lfd, (struct sockaddr *)&sa, &sl) != 0 ||
        pipe(f->wake) != 0)
        fail_msg("fake sentinel: %s", strerror(errno));
    f->port = ntohs(sa.sin_port);
    if (pthread_create(&f->th, NULL, fs_thread, f) != 0) fail_msg("fake sentinel: no thread");
    return f;
}

int ts_fsent_port(const ts_fsent *f) { return f->port; }

void ts_fsent_set_master(ts_fsent *f, const char *host, const char *port) {
    pthread_mutex_lock(&f->mu);
    snprintf(f->host, sizeof f->host, "%s", host ? host : "");
    snprintf(f->mport, sizeof f->mport, "%s", port ? port : "");
    pthread_mutex_unlock(&f->mu);
}

void ts_fsent_set_master_port(ts_fsent *f, int port) {
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    ts_fsent_set_master(f, "127.0.0.1", p);
}

void ts_fsent_set_silent(ts_fsent *f, int on) {
    pthread_mutex_lock(&f->mu);
    f->silent = on;
    pthread_mutex_unlock(&f->mu);
}

void ts_fsent_set_delay(ts_fsent *f, unsigned ms) {
    pthread_mutex_lock(&f->mu);
    f->delay_ms = ms;
    pthread_mutex_unlock(&f->mu);
}

int ts_fsent_publish(ts_fsent *f, const char *payload) {
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (fs_conn *c = f->conns; c; c = c->next) {
        if (!c->sub) continue;
        sbuf b = {0};
        sb_add(&b, c->proto == 3 ? ">3\r\n" : "*3\r\n", 4);
        sb_str(&b, "message");
        sb_str(&b, "+switch-master");
        sb_str(&b, payload);
        conn_send(f, c, &b, 0);
        free(b.p);
        n++;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

int ts_fsent_kill_subscribers(ts_fsent *f) {
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (fs_conn *c = f->conns; c; c = c->next) {
        if (!c->sub) continue;
        shutdown(c->fd, SHUT_RDWR); /* the thread sees the end, and closes */
        c->sub = 0;
        n++;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

unsigned ts_fsent_lookups(ts_fsent *f) {
    pthread_mutex_lock(&f->mu);
    unsigned n = f->lookups;
    pthread_mutex_unlock(&f->mu);
    return n;
}

unsigned ts_fsent_subscribers(ts_fsent *f) {
    unsigned n = 0;
    pthread_mutex_lock(&f->mu);
    for (fs_conn *c = f->conns; c; c = c->next)
        n += (unsigned)c->sub;
    pthread_mutex_unlock(&f->mu);
    return n;
}

unsigned ts_fsent_connections(ts_fsent *f) {
    unsigned n = 0;
    pthread_mutex_lock(&f->mu);
    for (fs_conn *c = f->conns; c; c = c->next)
        n++;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void ts_fsent_stop(ts_fsent *f) {
    if (!f) return;
    ssize_t w;
    do
        w = write(f->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(f->th, NULL);
    while (f->conns) {
        fs_conn *c = f->conns;
        f->conns = c->next;
        conn_free(c);
    }
    close(f->lfd);
    close(f->wake[0]);
    close(f->wake[1]);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
