/*
 * bench/pubsub.c — one subscriber, one publisher: messages per second
 * delivered to the subscriber and the subscriber's own CPU time per million
 * messages, aredis against hiredis async under the same publisher load, side
 * by side in one run.
 *
 *   pubsub [-h HOST] [-p PORT] [-n COUNT] [-s SIZE] [--runs R]
 *          [--window W] [--subs aredis,hiredis-async]
 *
 * Each run forks one subscriber process per client (they take turns, the
 * order rotating from run to run); the parent is the publisher: a plain
 * socket pipelining PUBLISH of COUNT messages of SIZE bytes (default
 * 1,000,000 of 16 bytes) to one channel, never more than W (20,000) ahead of
 * what the subscriber has received (a counter in shared memory), so that the
 * server's pubsub output buffer limit never drops a slow subscriber. The
 * publisher is the same bytes for every client.
 *
 * The subscriber subscribes, says it is ready, then counts messages (each
 * payload's length checked) until COUNT. Its CPU time is getrusage() of its
 * own process from "ready" to the last message (connect and subscribe not
 * included); its rate is COUNT over the time from its first message to its
 * last. The figures are the median of R runs (default 3).
 *
 * Subscribers: aredis (built-in loop, RESP3: pushes on the client's own
 * connection), aredis-resp2 (built-in loop, RESP2: the subscription's own
 * hidden connection), aredis-libevent (RESP3 on libevent: the same loop as
 * hiredis), hiredis-async (hiredis on libevent, redisAsyncCommand SUBSCRIBE
 * with a callback; needs hiredis and libevent at build time). The last line
 * is the ratio of aredis's CPU per message to hiredis-async's.
 *
 * Nothing here is a test: figures are printed, never asserted.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aredis/aredis.h>
#include <aredis/pubsub.h>

#include "common.h"

#ifdef BENCH_HAVE_LIBEVENT
#include <event2/event.h>

#include <aredis/adapters/libevent.h>
#endif
#if defined(BENCH_HAVE_HIREDIS) && defined(BENCH_HAVE_LIBEVENT)
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#define HAVE_HIREDIS_ASYNC 1
#endif

enum { SUB_AREDIS, SUB_AREDIS_RESP2, SUB_AREDIS_LIBEVENT, SUB_HIREDIS, NSUBS };
static const char *const sub_names[NSUBS] = {"aredis", "aredis-resp2", "aredis-libevent",
                                             "hiredis-async"};

static int sub_available(int k) {
    switch (k) {
    case SUB_AREDIS:
    case SUB_AREDIS_RESP2:
        return 1;
    case SUB_AREDIS_LIBEVENT:
#ifdef BENCH_HAVE_LIBEVENT
        return 1;
#else
        return 0;
#endif
    default:
#ifdef HAVE_HIREDIS_ASYNC
        return 1;
#else
        return 0;
#endif
    }
}

/* What the subscriber and the publisher share. */
typedef struct shared {
    _Atomic unsigned long long received;
} shared;

/* What a subscriber reports. */
typedef struct sub_result {
    int ok;
    long count, bad;
    double first, last; /* bench_now() at the first and the last message */
    double user, sys;   /* CPU seconds from ready to the last message */
} sub_result;

typedef struct cfg {
    const char *host;
    int port;
    long n;
    long size;
    long window;
    char channel[64];
} cfg;

/* ---- The subscriber's side ------------------------------------------------- */

typedef struct sub_state {
    const cfg *cf;
    shared *sh;
    int ready_fd;
    long count, bad;
    double first, last;
    int done;
    struct rusage r0;  /* at "ready" */
    aredis_loop *loop; /* aredis */
#ifdef BENCH_HAVE_LIBEVENT
    struct event_base *base;
#endif
} sub_state;

/* Subscribed: the CPU clock starts, the publisher may go. */
static void say_ready(sub_state *s) {
    char c = 'R';
    getrusage(RUSAGE_SELF, &s->r0);
    if (write(s->ready_fd, &c, 1) != 1) _exit(3);
}

/* One message: counted, its length checked, the publisher told. */
static inline void got_one(sub_state *s, size_t payload_len) {
    if (s->count == 0) s->first = bench_now();
    if (payload_len != (size_t)s->cf->size) s->bad++;
    s->count++;
    atomic_store_explicit(&s->sh->received, (unsigned long long)s->count, memory_order_relaxed);
    if (s->count == s->cf->n) {
        s->last = bench_now();
        s->done = 1;
    }
}

static void ar_on_message(aredis_subscription *sub, const aredis_message *m, void *data) {
    (void)sub;
    sub_state *s = data;
    got_one(s, m->payload_len);
    if (s->done) {
        if (s->loop) aredis_loop_stop(s->loop);
#ifdef BENCH_HAVE_LIBEVENT
        if (s->base) event_base_loopbreak(s->base);
#endif
    }
}

static void ar_on_subscribed(aredis_client *c, aredis_reply *r, const aredis_error *err,
                             void *data) {
    (void)c;
    (void)r;
    sub_state *s = data;
    if (err) {
        fprintf(stderr, "pubsub: aredis subscribe failed: %s\n", err->detail);
        _exit(3);
    }
    say_ready(s);
}

static int run_aredis_sub(sub_state *s, int proto, int use_libevent) {
    aredis_loop *loop = NULL;
#ifdef BENCH_HAVE_LIBEVENT
    struct event_base *base = NULL;
    if (use_libevent) {
        base = event_base_new();
        loop = base ? aredis_loop_libevent(base) : NULL;
        s->base = base;
    }
#else
    (void)use_libevent;
#endif
    if (!loop) {
        loop = aredis_loop_new();
        s->loop = loop;
    }
    if (!loop) return -1;
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = s->cf->host;
    o.port = s->cf->port;
    o.protocol = proto;
    aredis_client *c = aredis_client_new(loop, &o);
    if (!c || aredis_client_connect(c) != AREDIS_ERR_OK) return -1;
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = ar_on_message;
    so.data = s;
    aredis_subscription *sub = aredis_subscription_new(c, &so);
    const char *ch = s->cf->channel;
    if (!sub || aredis_subscription_subscribe(sub, AREDIS_SUB_CHANNEL, 1, &ch, NULL,
                                              ar_on_subscribed, s) != AREDIS_ERR_OK)
        return -1;
        /* Until the last message (the handler stops the loop). */
#ifdef BENCH_HAVE_LIBEVENT
    if (s->base) {
        while (!s->done)
            event_base_dispatch(s->base);
    } else
#endif
        while (!s->done)
            aredis_loop_run(loop);
    return 0;
}

#ifdef HAVE_HIREDIS_ASYNC
static void hi_on_reply(redisAsyncContext *ac, void *reply, void *data) {
    (void)ac;
    sub_state *s = data;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const redisReply *k = r->element[0];
    if (k->len == 7 && memcmp(k->str, "message", 7) == 0) {
        got_one(s, r->element[2]->len);
        if (s->done) event_base_loopbreak(s->base);
    } else if (k->len == 9 && memcmp(k->str, "subscribe", 9) == 0) {
        say_ready(s);
    }
}

static int run_hiredis_sub(sub_state *s) {
    s->base = event_base_new();
    if (!s->base) return -1;
    redisAsyncContext *ac = redisAsyncConnect(s->cf->host, s->cf->port);
    if (!ac || ac->err) {
        fprintf(stderr, "pubsub: hiredis connect failed: %s\n", ac ? ac->errstr : "no memory");
        return -1;
    }
    redisLibeventAttach(ac, s->base);
    if (redisAsyncCommand(ac, hi_on_reply, s, "SUBSCRIBE %s", s->cf->channel) != REDIS_OK)
        return -1;
    while (!s->done)
        event_base_dispatch(s->base);
    return 0;
}
#endif

/* The subscriber process: never returns. */
static void subscriber(int kind, const cfg *cf, shared *sh, int ready_fd, int result_fd) {
    sub_state s;
    memset(&s, 0, sizeof s);
    s.cf = cf;
    s.sh = sh;
    s.ready_fd = ready_fd;
    /* CPU from "ready" (the subscribe confirmed: connecting and
     * subscribing are not counted) to the last message. */
    struct rusage r1;
    int rc = -1;
    if (kind == SUB_AREDIS)
        rc = run_aredis_sub(&s, 3, 0);
    else if (kind == SUB_AREDIS_RESP2)
        rc = run_aredis_sub(&s, 2, 0);
    else if (kind == SUB_AREDIS_LIBEVENT)
        rc = run_aredis_sub(&s, 3, 1);
#ifdef HAVE_HIREDIS_ASYNC
    else if (kind == SUB_HIREDIS)
        rc = run_hiredis_sub(&s);
#endif
    getrusage(RUSAGE_SELF, &r1);
    sub_result res;
    memset(&res, 0, sizeof res);
    res.ok = rc == 0 && s.done;
    res.count = s.count;
    res.bad = s.bad;
    res.first = s.first;
    res.last = s.last;
    res.user = (double)(r1.ru_utime.tv_sec - s.r0.ru_utime.tv_sec) +
               (double)(r1.ru_utime.tv_usec - s.r0.ru_utime.tv_usec) / 1e6;
    res.sys = (double)(r1.ru_stime.tv_sec - s.r0.ru_stime.tv_sec) +
              (double)(r1.ru_stime.tv_usec - s.r0.ru_stime.tv_usec) / 1e6;
    if (write(result_fd, &res, sizeof res) != (ssize_t)sizeof res) _exit(4);
    /* No cleanup: the process ends here (nothing of it is measured). */
    _exit(0);
}

/* ---- The publisher's side -------------------------------------------------- */

static int tcp_connect(const char *host, int port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0 || !res) return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Read every reply that is there (non-blocking): each is ":<receivers>\r\n".
 * Counts them; an error reply or a PUBLISH that reached nobody (":0") is
 * counted in *bad. *st: 0 at a line's start, 1 after its ':', 2 past that.
 * Returns -1 when the connection failed. */
static int pub_read(int fd, long *acked, long *bad, int *st) {
    char buf[65536];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0) return -1;
        if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        for (ssize_t i = 0; i < r; i++) {
            char ch = buf[i];
            if (*st == 0) {
                if (ch != ':') ++*bad;
                *st = ch == ':' ? 1 : 2;
            } else if (*st == 1) {
                if (ch == '0') ++*bad;
                *st = 2;
            }
            if (ch == '\n') {
                ++*acked;
                *st = 0;
            }
        }
    }
}

/* Publish cf->n messages, at most cf->window ahead of the subscriber.
 * 0 on success. */
static int publisher(const cfg *cf, shared *sh, long *bad) {
    int fd = tcp_connect(cf->host, cf->port);
    if (fd < 0) {
        fprintf(stderr, "pubsub: cannot connect to %s:%d\n", cf->host, cf->port);
        return -1;
    }
    /* One PUBLISH, then a block of them. */
    enum { BLOCK = 128 };
    char *payload = malloc((size_t)cf->size + 1);
    if (!payload) return -1;
    memset(payload, 'x', (size_t)cf->size);
    size_t chl = strlen(cf->channel);
    size_t one_cap = 64 + chl + (size_t)cf->size;
    char *one = malloc(one_cap);
    if (!one) return -1;
    int hl = snprintf(one, one_cap, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%ld\r\n", chl,
                      cf->channel, cf->size);
    memcpy(one + hl, payload, (size_t)cf->size);
    memcpy(one + hl + cf->size, "\r\n", 2);
    size_t one_len = (size_t)hl + (size_t)cf->size + 2;
    char *block = malloc(one_len * BLOCK);
    if (!block) return -1;
    for (int i = 0; i < BLOCK; i++)
        memcpy(block + (size_t)i * one_len, one, one_len);
    free(one);
    free(payload);

    long sent = 0, acked = 0;
    int line_st = 0;
    size_t out_len = 0, out_off = 0; /* what of `block` is still to write */
    *bad = 0;
    int rc = 0;
    while (acked < cf->n) {
        int progressed = 0;
        if (out_off == out_len) {
            long ahead = sent - (long)atomic_load_explicit(&sh->received, memory_order_relaxed);
            long can = cf->window - ahead;
            if (can > cf->n - sent) can = cf->n - sent;
            if (can > BLOCK) can = BLOCK;
            if (can > 0) {
                out_len = (size_t)can * one_len;
                out_off = 0;
                sent += can;
            }
        }
        if (out_off < out_len) {
            ssize_t w = send(fd, block + out_off, out_len - out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                out_off += (size_t)w;
                progressed = 1;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                rc = -1;
                break;
            }
        }
        long before = acked;
        if (pub_read(fd, &acked, bad, &line_st) != 0) {
            rc = -1;
            break;
        }
        if (acked != before) progressed = 1;
        if (!progressed) {
            /* Waiting for the server, or for the subscriber (the window):
             * a short poll either way. */
            struct pollfd p = {fd, (short)(POLLIN | (out_off < out_len ? POLLOUT : 0)), 0};
            poll(&p, 1, 1);
        }
    }
    if (rc != 0) fprintf(stderr, "pubsub: the publisher's connection failed\n");
    free(block);
    close(fd);
    return rc;
}

/* ---- One run of one subscriber -------------------------------------------- */

static int run_one(int kind, const cfg *cf, sub_result *out, long *pub_bad) {
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return -1;
    atomic_store(&sh->received, 0);
    int ready[2], result[2];
    if (pipe(ready) != 0 || pipe(result) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(ready[0]);
        close(result[0]);
        subscriber(kind, cf, sh, ready[1], result[1]);
    }
    close(ready[1]);
    close(result[1]);
    int rc = -1;
    char c;
    struct pollfd p = {ready[0], POLLIN, 0};
    if (poll(&p, 1, 10000) != 1 || read(ready[0], &c, 1) != 1) {
        fprintf(stderr, "pubsub: %s did not subscribe within 10 s\n", sub_names[kind]);
        goto out;
    }
    if (publisher(cf, sh, pub_bad) != 0) goto out;
    /* Every PUBLISH answered: the subscriber has them all or soon will. */
    p.fd = result[0];
    if (poll(&p, 1, 60000) != 1 || read(result[0], out, sizeof *out) != (ssize_t)sizeof *out) {
        fprintf(stderr, "pubsub: %s: no result within 60 s (received %llu of %ld)\n",
                sub_names[kind], (unsigned long long)atomic_load(&sh->received), cf->n);
        goto out;
    }
    rc = out->ok ? 0 : -1;
out:
    if (rc != 0) kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(ready[0]);
    close(result[0]);
    munmap(sh, sizeof *sh);
    return rc;
}

/* ---- main ------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: pubsub [-h HOST] [-p PORT] [-n COUNT] [-s SIZE] [--runs R]\n"
                    "              [--window W] [--subs aredis,aredis-resp2,aredis-libevent,"
                    "hiredis-async]\n");
    exit(2);
}

typedef struct row {
    int kind;
    double rate[16], cpu_m[16], user_m[16], sys_m[16];
    int nruns;
    long bad;
} row;

int main(int argc, char **argv) {
    cfg cf;
    memset(&cf, 0, sizeof cf);
    cf.host = "127.0.0.1";
    cf.port = 6379;
    cf.n = 1000000;
    cf.size = 16;
    cf.window = 20000;
    long runs = 3;
    const char *subs_s = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "-h")) || (v = bench_opt(argc, argv, &i, "--host")))
            cf.host = v;
        else if ((v = bench_opt(argc, argv, &i, "-p")) || (v = bench_opt(argc, argv, &i, "--port")))
            cf.port = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-n")) ||
                 (v = bench_opt(argc, argv, &i, "--count")))
            cf.n = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "-s")) || (v = bench_opt(argc, argv, &i, "--size")))
            cf.size = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--runs")))
            runs = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--window")))
            cf.window = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--subs")))
            subs_s = v;
        else
            usage();
    }
    if (cf.n < 1 || cf.size < 0 || runs < 1 || runs > 16 || cf.window < 1) usage();
    snprintf(cf.channel, sizeof cf.channel, "bench:pubsub:%ld", (long)getpid());

    row rows[NSUBS];
    int nrows = 0;
    if (subs_s) {
        char *dup = strdup(subs_s), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int k = -1;
            for (int j = 0; j < NSUBS; j++)
                if (!strcmp(t, sub_names[j])) k = j;
            if (k < 0 || nrows == NSUBS) usage();
            if (!sub_available(k)) {
                fprintf(stderr, "pubsub: %s not built (hiredis or libevent missing), skipped\n", t);
                continue;
            }
            memset(&rows[nrows], 0, sizeof rows[nrows]);
            rows[nrows++].kind = k;
        }
        free(dup);
    } else {
        memset(rows, 0, sizeof rows);
        rows[nrows++].kind = SUB_AREDIS;
        if (sub_available(SUB_HIREDIS)) rows[nrows++].kind = SUB_HIREDIS;
    }
    if (!nrows) usage();

    printf("pub/sub to one subscriber: %ld messages of %ld B on %s:%d, publisher window %ld, "
           "%ld run(s), medians\n",
           cf.n, cf.size, cf.host, cf.port, cf.window, runs);
    fflush(stdout);
    for (long r = 0; r < runs; r++) {
        for (int j = 0; j < nrows; j++) {
            row *w = &rows[(j + r) % nrows]; /* the order rotates */
            sub_result res;
            long pub_bad = 0;
            if (run_one(w->kind, &cf, &res, &pub_bad) != 0) {
                fprintf(stderr, "pubsub: %s: run %ld failed\n", sub_names[w->kind], r + 1);
                return 1;
            }
            double secs = res.last - res.first;
            double per_m = 1e6 / (double)cf.n;
            w->rate[w->nruns] = secs > 0 ? (double)(cf.n - 1) / secs : 0;
            w->cpu_m[w->nruns] = (res.user + res.sys) * per_m;
            w->user_m[w->nruns] = res.user * per_m;
            w->sys_m[w->nruns] = res.sys * per_m;
            w->nruns++;
            w->bad += res.bad + pub_bad;
            printf("  run %ld %-16s %10.0f msg/s  %6.3f CPU s/M (user %.3f, sys %.3f)\n", r + 1,
                   sub_names[w->kind], w->rate[w->nruns - 1], w->cpu_m[w->nruns - 1],
                   w->user_m[w->nruns - 1], w->sys_m[w->nruns - 1]);
        }
    }

    printf("%-16s %12s %14s %10s %10s %6s\n", "subscriber", "msgs/s", "CPU s/M msgs", "user", "sys",
           "bad");
    double cpu[NSUBS];
    for (int j = 0; j < nrows; j++) {
        row *w = &rows[j];
        double rate = bench_median(w->rate, (size_t)w->nruns);
        cpu[j] = bench_median(w->cpu_m, (size_t)w->nruns);
        double user = bench_median(w->user_m, (size_t)w->nruns);
        double sys = bench_median(w->sys_m, (size_t)w->nruns);
        char rb[32];
        printf("%-16s %12s %14.3f %10.3f %10.3f %6ld\n", sub_names[w->kind],
               bench_fmt_rate(rate, rb, sizeof rb), cpu[j], user, sys, w->bad);
    }
    int hi = -1;
    for (int j = 0; j < nrows; j++)
        if (rows[j].kind == SUB_HIREDIS) hi = j;
    for (int j = 0; hi >= 0 && j < nrows; j++)
        if (j != hi && cpu[hi] > 0)
            printf("CPU per message, %s / hiredis-async: %.2fx (target <= 0.50x)\n",
                   sub_names[rows[j].kind], cpu[j] / cpu[hi]);
    for (int j = 0; j < nrows; j++)
        if (rows[j].bad) return 1;
    return 0;
}
