/*
 * Test support: a scripted fake Redis server (see fake_server.h).
 *
 * One thread accepts and serves connections one at a time with blocking
 * sockets. Every wait (accept, read, pause) polls a wake-up pipe too, so
 * ts_fake_stop() interrupts any step at once: once the pipe is written it
 * stays readable, and every later wait returns "stop".
 */
#include "fake_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ts.h"

#define RX_KEEP_MAX ((size_t)1 << 20)

typedef enum {
    OP_READ_CMD,
    OP_SKIP,
    OP_SEND,
    OP_SEND_SPLIT,
    OP_SEND_BYTEWISE,
    OP_SLEEP,
    OP_CLOSE,
    OP_RESET,
    OP_WAIT_EOF,
    OP_SERVE,
    OP_SERVE_ECHO,
    OP_SERVE_AUTH_DROP,
    OP_NEXT_CONN
} op_t;

typedef struct step {
    op_t op;
    char *data;
    size_t len;
    size_t n;    /* READ_CMD: commands; SKIP: bytes; SEND_SPLIT: offset */
    unsigned ms; /* pauses and limits */
} step;

struct ts_fake {
    step *steps;
    size_t nsteps, cap;
    int lfd;
    int port;
    int wake[2];
    pthread_t thread;
    int started;
    atomic_int stopping;
    pthread_mutex_t mu;
    size_t accepted, finished, commands;
    char *rx;
    size_t rxlen;
};

typedef struct conn {
    int fd;
    char *buf;
    size_t len, cap;
} conn;

/* ---- Script building ------------------------------------------------------ */

ts_fake *ts_fake_new(void) {
    ts_fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->lfd = -1;
    f->wake[0] = f->wake[1] = -1;
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

static step *add(ts_fake *f, op_t op) {
    assert_false(f->started);
    if (f->nsteps == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->steps = realloc(f->steps, f->cap * sizeof *f->steps);
        assert_non_null(f->steps);
    }
    step *s = &f->steps[f->nsteps++];
    memset(s, 0, sizeof *s);
    s->op = op;
    return s;
}

static void set_data(step *s, const void *data, size_t len) {
    s->data = malloc(len ? len : 1);
    assert_non_null(s->data);
    if (len) memcpy(s->data, data, len);
    s->len = len;
}

void ts_fake_read_cmd(ts_fake *f, size_t n) { add(f, OP_READ_CMD)->n = n; }
void ts_fake_skip(ts_fake *f, size_t n) { add(f, OP_SKIP)->n = n; }
void ts_fake_send(ts_fake *f, const void *data, size_t len) {
    set_data(add(f, OP_SEND), data, len);
}
void ts_fake_send_str(ts_fake *f, const char *s) { ts_fake_send(f, s, strlen(s)); }
void ts_fake_send_split(ts_fake *f, const void *data, size_t len, size_t at, unsigned pause_ms) {
    assert_true(at <= len);
    step *s = add(f, OP_SEND_SPLIT);
    set_data(s, data, len);
    s->n = at;
    s->ms = pause_ms;
}
void ts_fake_send_bytewise(ts_fake *f, const void *data, size_t len, unsigned pause_ms) {
    step *s = add(f, OP_SEND_BYTEWISE);
    set_data(s, data, len);
    s->ms = pause_ms;
}
void ts_fake_reply(ts_fake *f, const char *resp) {
    ts_fake_read_cmd(f, 1);
    ts_fake_send_str(f, resp);
}
void ts_fake_sleep(ts_fake *f, unsigned ms) { add(f, OP_SLEEP)->ms = ms; }
void ts_fake_close(ts_fake *f) { add(f, OP_CLOSE); }
void ts_fake_reset(ts_fake *f) { add(f, OP_RESET); }
void ts_fake_wait_eof(ts_fake *f, unsigned max_ms) { add(f, OP_WAIT_EOF)->ms = max_ms; }
void ts_fake_serve(ts_fake *f, const char *resp) { set_data(add(f, OP_SERVE), resp, strlen(resp)); }
void ts_fake_serve_echo(ts_fake *f) { add(f, OP_SERVE_ECHO); }
void ts_fake_serve_auth_drop(ts_fake *f) { add(f, OP_SERVE_AUTH_DROP); }
void ts_fake_hello3(ts_fake *f) { ts_fake_reply(f, "%1\r\n$5\r\nproto\r\n:3\r\n"); }
void ts_fake_hello2(ts_fake *f) {
    ts_fake_reply(f, "-ERR unknown command 'HELLO'\r\n");
    ts_fake_reply(f, "+PONG\r\n");
}
void ts_fake_next_conn(ts_fake *f) { add(f, OP_NEXT_CONN); }

/* ---- Waiting ---------------------------------------------------------------- */

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until fd is readable (fd < 0: just wait). 1 readable, 0 timed out,
 * -1 stopping. timeout_ms < 0: no limit. */
static int wait_fd(ts_fake *f, int fd, int timeout_ms) {
    for (;;) {
        if (atomic_load(&f->stopping)) return -1;
        struct pollfd p[2] = {{f->wake[0], POLLIN, 0}, {fd, POLLIN, 0}};
        int r = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || p[0].revents) return -1;
        if (r == 0) return 0;
        return 1;
    }
}

static int pause_ms(ts_fake *f, unsigned ms) { return wait_fd(f, -1, (int)ms) < 0 ? -1 : 0; }

/* ---- Connection I/O --------------------------------------------------------- */

/* Read more bytes. >0 read, 0 EOF, -1 error, stop or timeout. */
static ssize_t read_more(ts_fake *f, conn *c, int timeout_ms) {
    int w = wait_fd(f, c->fd, timeout_ms);
    if (w <= 0) return -1;
    if (c->cap - c->len < 16384) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    ssize_t n;
    do
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return n < 0 ? -1 : 0;
    pthread_mutex_lock(&f->mu);
    size_t keep = (size_t)n;
    if (f->rxlen + keep > RX_KEEP_MAX) keep = RX_KEEP_MAX - f->rxlen;
    if (keep) {
        char *rx = realloc(f->rx, f->rxlen + keep + 1);
        if (rx) {
            memcpy(rx + f->rxlen, c->buf + c->len, keep);
            f->rx = rx;
            f->rxlen += keep;
        }
    }
    pthread_mutex_unlock(&f->mu);
    c->len += (size_t)n;
    return n;
}

static void consume(conn *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* "<type><digits>\r\n" at *p. 1 parsed, 0 need more, -1 malformed. */
static int parse_len(const char *b, size_t len, size_t *pos, char type, size_t *v) {
    size_t i = *pos;
    if (i >= len) return 0;
    if (b[i] != type) return -1;
    size_t x = 0;
    int digits = 0;
    for (i++; i < len && b[i] >= '0' && b[i] <= '9'; i++) {
        if (++digits > 12) return -1;
        x = x * 10 + (size_t)(b[i] - '0');
    }
    if (i >= len || (i + 1 >= len && b[i] == '\r')) return 0;
    if (!digits || b[i] != '\r' || b[i + 1] != '\n') return -1;
    *pos = i + 2;
    *v = x;
    return 1;
}

static int send_all(conn *c, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A complete command at the start of the buffer: its size; 0 need more;
 * SIZE_MAX malformed. */
static size_t parse_cmd(const char *b, size_t len) {
    if (len == 0) return 0;
    if (b[0] != '*') {
        const char *nl = memchr(b, '\n', len);
        return nl ? (size_t)(nl - b) + 1 : 0; /* inline command */
    }
    size_t pos = 0, argc;
    int r = parse_len(b, len, &pos, '*', &argc);
    if (r <= 0) return r < 0 ? SIZE_MAX : 0;
    for (size_t i = 0; i < argc; i++) {
        size_t alen;
        r = parse_len(b, len, &pos, '$', &alen);
        if (r <= 0) return r < 0 ? SIZE_MAX : 0;
        if (len - pos < alen + 2) return 0;
        if (b[pos + alen] != '\r' || b[pos + alen + 1] != '\n') return SIZE_MAX;
        pos += alen + 2;
    }
    return pos;
}

/* The echo error for the command of n bytes at b (parsed already). */
static char *echo_error(const char *b, size_t n, size_t *outlen) {
    size_t cap = n * 2 + 128, o = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    o += (size_t)snprintf(out, cap, "-ERR unknown command ");
    size_t pos = 0, argc = 0;
    if (b[0] == '*') parse_len(b, n, &pos, '*', &argc);
    for (size_t i = 0; i < argc; i++) {
        size_t alen;
        parse_len(b, n, &pos, '$', &alen);
        if (i == 1)
            o += (size_t)snprintf(out + o, cap - o, ", with args beginning with: ");
        else if (i > 1)
            out[o++] = ' ';
        out[o++] = '\'';
        for (size_t k = 0; k < alen; k++) {
            char ch = b[pos + k];
            out[o++] = (ch == '\r' || ch == '\n') ? ' ' : ch;
        }
        out[o++] = '\'';
        pos += alen + 2;
    }
    out[o++] = '\r';
    out[o++] = '\n';
    *outlen = o;
    return out;
}

/* Wait for one command and drop it (or answer it with an echo error).
 * 0 done, -1 the script ends. */
static int read_cmd_ex(ts_fake *f, conn *c, int echo) {
    for (;;) {
        size_t n = parse_cmd(c->buf, c->len);
        if (n == SIZE_MAX) return -1;
        if (n) {
            if (echo) {
                size_t elen;
                char *e = echo_error(c->buf, n, &elen);
                int w = send_all(c, e, elen);
                free(e);
                if (w != 0) return -1;
            }
            consume(c, n);
            pthread_mutex_lock(&f->mu);
            f->commands++;
            pthread_mutex_unlock(&f->mu);
            return 0;
        }
        if (read_more(f, c, -1) <= 0) return -1;
    }
}

static int read_cmd(ts_fake *f, conn *c) { return read_cmd_ex(f, c, 0); }

/* ---- The AUTH-dropping server (ts_fake_serve_auth_drop) --------------------- */

typedef struct obuf {
    char *p;
    size_t len, cap;
} obuf;

static void out_add(obuf *o, const char *s, size_t n) {
    if (o->cap - o->len < n) {
        o->cap = (o->len + n) * 2 + 64;
        o->p = realloc(o->p, o->cap);
        assert_non_null(o->p);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_str(obuf *o, const char *s) { out_add(o, s, strlen(s)); }

/* Argument i (0 = the name) of the command of n bytes at b (parsed already,
 * a RESP array): 1 found, 0 not (fewer arguments, or an inline command). */
static int cmd_arg(const char *b, size_t n, size_t i, const char **arg, size_t *alen) {
    size_t pos = 0, argc;
    if (b[0] != '*' || parse_len(b, n, &pos, '*', &argc) != 1 || i >= argc) return 0;
    for (size_t k = 0;; k++) {
        size_t len;
        if (parse_len(b, n, &pos, '$', &len) != 1) return 0; /* cut short */
        if (k == i) {
            *arg = b + pos;
            *alen = len;
            return 1;
        }
        pos += len + 2;
    }
}

static int arg_is(const char *b, size_t n, size_t i, const char *word) {
    const char *a;
    size_t alen;
    return cmd_arg(b, n, i, &a, &alen) && alen == strlen(word) && strncasecmp(a, word, alen) == 0;
}

/* AUTH, or HELLO carrying AUTH. */
static int is_auth_attempt(const char *b, size_t n) {
    if (arg_is(b, n, 0, "AUTH")) return 1;
    if (!arg_is(b, n, 0, "HELLO")) return 0;
    const char *a;
    size_t alen;
    for (size_t i = 1; cmd_arg(b, n, i, &a, &alen); i++)
        if (alen == 4 && strncasecmp(a, "AUTH", 4) == 0) return 1;
    return 0;
}

/* The reply to the command of n bytes at b, in a batch of `batch` commands. */
static void auth_drop_reply(obuf *o, const char *b, size_t n, size_t batch) {
    const char *a;
    size_t alen;
    if (is_auth_attempt(b, n)) {
        if (batch == 1)
            out_str(o, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    } else if (arg_is(b, n, 0, "HELLO")) {
        out_str(o, "-ERR unknown command 'HELLO'\r\n");
    } else if (arg_is(b, n, 0, "PING")) {
        out_str(o, "+PONG\r\n");
    } else if (arg_is(b, n, 0, "ECHO") && cmd_arg(b, n, 1, &a, &alen)) {
        char head[32];
        out_add(o, head, (size_t)snprintf(head, sizeof head, "$%zu\r\n", alen));
        out_add(o, a, alen);
        out_str(o, "\r\n");
    } else {
        size_t elen;
        char *e = echo_error(b, n, &elen);
        out_add(o, e, elen);
        free(e);
    }
}

/* Answer every complete command buffered now, as one batch. 0 done, -1 the
 * script ends. */
static int auth_drop_batch(ts_fake *f, conn *c) {
    size_t batch = 0, pos = 0;
    for (;;) {
        size_t n = parse_cmd(c->buf + pos, c->len - pos);
        if (n == SIZE_MAX) return -1;
        if (!n) break;
        pos += n;
        batch++;
    }
    obuf o = {NULL, 0, 0};
    for (size_t i = 0, at = 0; i < batch; i++) {
        size_t n = parse_cmd(c->buf + at, c->len - at);
        auth_drop_reply(&o, c->buf + at, n, batch);
        at += n;
    }
    /* Counted before the replies leave: a client holding a reply sees its
     * command counted. */
    pthread_mutex_lock(&f->mu);
    f->commands += batch;
    pthread_mutex_unlock(&f->mu);
    int w = o.len ? send_all(c, o.p, o.len) : 0;
    free(o.p);
    consume(c, pos);
    return w;
}

/* ---- The script ------------------------------------------------------------- */

/* Run one step. 0 go on, 1 the connection is closed (stop), -1 failed. */
static int run_step(ts_fake *f, conn *c, const step *s) {
    switch (s->op) {
    case OP_READ_CMD:
        for (size_t i = 0; i < s->n; i++)
            if (read_cmd(f, c) != 0) return -1;
        return 0;
    case OP_SKIP:
        while (c->len < s->n)
            if (read_more(f, c, -1) <= 0) return -1;
        consume(c, s->n);
        return 0;
    case OP_SEND:
        return send_all(c, s->data, s->len);
    case OP_SEND_SPLIT:
        if (send_all(c, s->data, s->n) != 0 || pause_ms(f, s->ms) != 0) return -1;
        return send_all(c, s->data + s->n, s->len - s->n);
    case OP_SEND_BYTEWISE:
        for (size_t i = 0; i < s->len; i++) {
            if (i && pause_ms(f, s->ms) != 0) return -1;
            if (send_all(c, s->data + i, 1) != 0) return -1;
        }
        return 0;
    case OP_SLEEP:
        return pause_ms(f, s->ms);
    case OP_CLOSE:
        shutdown(c->fd, SHUT_RDWR);
        close(c->fd);
        c->fd = -1;
        return 1;
    case OP_RESET: {
        struct linger l = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(c->fd);
        c->fd = -1;
        return 1;
    }
    case OP_WAIT_EOF: {
        uint64_t until = now_ms() + s->ms;
        for (;;) {
            uint64_t now = now_ms();
            if (now >= until) return 0;
            ssize_t n = read_more(f, c, (int)(until - now));
            if (n <= 0) return n == 0 ? 1 : -1;
            c->len = 0; /* dropped */
        }
    }
    case OP_SERVE:
        for (;;) {
            if (read_cmd(f, c) != 0) return -1;
            if (send_all(c, s->data, s->len) != 0) return -1;
        }
    case OP_SERVE_ECHO:
        for (;;)
            if (read_cmd_ex(f, c, 1) != 0) return -1;
    case OP_SERVE_AUTH_DROP:
        /* Bytes left by earlier steps are a batch of their own. */
        if (c->len && auth_drop_batch(f, c) != 0) return -1;
        for (;;)
            if (read_more(f, c, -1) <= 0 || auth_drop_batch(f, c) != 0) return -1;
    case OP_NEXT_CONN:
        return 1;
    }
    return -1;
}

/* The script of the k-th connection (0-based): steps [*first, *end). Past
 * the last script, the last one is reused. */
static void script_of(const ts_fake *f, size_t k, size_t *first, size_t *end) {
    size_t seg = 0, start = 0;
    for (size_t i = 0; i < f->nsteps; i++) {
        if (f->steps[i].op != OP_NEXT_CONN) continue;
        if (seg == k) {
            *first = start;
            *end = i;
            return;
        }
        seg++;
        start = i + 1;
    }
    *first = start; /* the last script (the k-th, or reused) */
    *end = f->nsteps;
}

static void serve(ts_fake *f, int fd, size_t k) {
    conn c = {fd, NULL, 0, 0};
    size_t first, end;
    script_of(f, k, &first, &end);
    for (size_t i = first; i < end; i++)
        if (run_step(f, &c, &f->steps[i]) != 0) break;
    if (c.fd >= 0) close(c.fd);
    free(c.buf);
}

static void *thread_main(void *arg) {
    ts_fake *f = arg;
    for (;;) {
        if (wait_fd(f, f->lfd, -1) < 0) break;
        int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {5, 0}; /* a send never blocks the thread for long */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        pthread_mutex_lock(&f->mu);
        size_t k = f->accepted++;
        pthread_mutex_unlock(&f->mu);
        serve(f, fd, k);
        pthread_mutex_lock(&f->mu);
        f->finished++;
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

/* ---- Running ---------------------------------------------------------------- */

void ts_fake_start(ts_fake *f) {
    assert_false(f->started);
    assert_int_equal(pipe2(f->wake, O_CLOEXEC), 0);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    int one = 1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, thread_main, f), 0);
    f->started = 1;
}

int ts_fake_port(const ts_fake *f) { return f->port; }

static size_t get(ts_fake *f, const size_t *field) {
    pthread_mutex_lock(&f->mu);
    size_t v = *field;
    pthread_mutex_unlock(&f->mu);
    return v;
}

size_t ts_fake_accepted(ts_fake *f) { return get(f, &f->accepted); }
size_t ts_fake_finished(ts_fake *f) { return get(f, &f->finished); }
size_t ts_fake_commands(ts_fake *f) { return get(f, &f->commands); }

char *ts_fake_received(ts_fake *f, size_t *len) {
    pthread_mutex_lock(&f->mu);
    char *copy = malloc(f->rxlen + 1);
    assert_non_null(copy);
    if (f->rxlen) memcpy(copy, f->rx, f->rxlen);
    copy[f->rxlen] = '\0';
    *len = f->rxlen;
    pthread_mutex_unlock(&f->mu);
    return copy;
}

void ts_fake_stop(ts_fake *f) {
    if (!f) return;
    if (f->started) {
        atomic_store(&f->stopping, 1);
        ssize_t w;
        do
            w = write(f->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(f->thread, NULL);
    }
    if (f->lfd >= 0) close(f->lfd);
    if (f->wake[0] >= 0) close(f->wake[0]);
    if (f->wake[1] >= 0) close(f->wake[1]);
    for (size_t i = 0; i < f->nsteps; i++)
        free(f->steps[i].data);
    free(f->steps);
    free(f->rx);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
