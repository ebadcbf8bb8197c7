/*
 * bench/parser.c — the reply reader alone, on canned buffers, side by side
 * with hiredis's reader (redisReaderFeed / redisReaderGetReply from Debian's
 * libhiredis-dev). No sockets, no server.
 *
 * Each canned buffer holds one reply repeated to fill a 16 KB chunk (the
 * size both libraries read from a socket at a time); a reader is fed the
 * chunk, every reply is taken out and freed (both libraries build reply
 * objects), and this repeats for --time seconds. Readers alternate over
 * --rounds rounds and the median is reported: replies/s and bytes/ns.
 *
 *   nil        $-1
 *   bulk16     a 16-byte bulk string
 *   bulk1k     a 1 KB bulk string
 *   array100   an array of 100 short bulk strings
 *   map50      a RESP3 map of 50 field/value pairs (HGETALL under HELLO 3).
 *              hiredis 0.14 has no RESP3: it parses the RESP2 equivalent,
 *              an array of 100 bulk strings (HGETALL under RESP2).
 *
 * The column "aredis zero-copy" is aredis fed through reader_space/commit,
 * as its client does (read() straight into the reader's buffer); the ratio
 * is taken with plain feed() on both sides. Both free every reply with
 * aredis_reply_free(), hiredis with freeReplyObject().
 *
 *   parser [--time SECONDS] [--rounds R] [--buffers nil,bulk16,...]
 *          [--only aredis|hiredis] [--chunks N] [--json[=PATH]] [--md=PATH]
 *
 * --chunks N feeds exactly N chunks per run instead of running for a time:
 * with --only and --rounds 1 it makes a repeatable run for callgrind.
 */
#include <stdlib.h>
#include <string.h>

#include <aredis/aredis.h>

#include "common.h"

#ifdef BENCH_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

#define CHUNK 16384

static long g_chunks; /* --chunks: fixed work instead of a time */

/* Keep going? A time budget, or a fixed number of chunks. */
static int more(long chunks, double t, double secs) {
    return g_chunks ? chunks < g_chunks : t < secs;
}

typedef struct canned {
    const char *name, *what;
    char *buf, *hbuf; /* aredis's and hiredis's chunk (the same unless RESP3) */
    size_t len, hlen;
    long replies, hreplies;  /* replies per chunk */
    double rate[3], bpns[3]; /* median: aredis feed, hiredis, aredis zero-copy */
} canned;

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(1);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_bulk(sbuf *b, const char *s, size_t n) {
    char h[32];
    int k = snprintf(h, sizeof h, "$%zu\r\n", n);
    sb_add(b, h, (size_t)k);
    sb_add(b, s, n);
    sb_add(b, "\r\n", 2);
}

/* Repeat `one` until CHUNK is filled (at least once). */
static char *fill_chunk(const sbuf *one, size_t *len, long *count) {
    sbuf out = {0};
    long k = 0;
    do {
        sb_add(&out, one->p, one->len);
        k++;
    } while (out.len + one->len <= CHUNK);
    *len = out.len;
    *count = k;
    return out.p;
}

static void make_canned(canned *c) {
    sbuf one = {0}, hone = {0};
    char s[1024];
    memset(s, 'v', sizeof s);
    if (!strcmp(c->name, "nil")) {
        sb_add(&one, "$-1\r\n", 5);
    } else if (!strcmp(c->name, "bulk16")) {
        sb_bulk(&one, s, 16);
    } else if (!strcmp(c->name, "bulk1k")) {
        sb_bulk(&one, s, 1024);
    } else if (!strcmp(c->name, "array100")) {
        sb_add(&one, "*100\r\n", 6);
        for (int i = 0; i < 100; i++) {
            char e[32];
            sb_bulk(&one, e, (size_t)snprintf(e, sizeof e, "member:%03d", i));
        }
    } else { /* map50 */
        sb_add(&one, "%50\r\n", 5);
        sb_add(&hone, "*100\r\n", 6);
        for (int i = 0; i < 50; i++) {
            char e[32];
            size_t k = (size_t)snprintf(e, sizeof e, "field:%02d", i);
            sb_bulk(&one, e, k);
            sb_bulk(&hone, e, k);
            k = (size_t)snprintf(e, sizeof e, "value:%04d", i);
            sb_bulk(&one, e, k);
            sb_bulk(&hone, e, k);
        }
    }
    c->buf = fill_chunk(&one, &c->len, &c->replies);
    if (hone.len)
        c->hbuf = fill_chunk(&hone, &c->hlen, &c->hreplies);
    else
        c->hbuf = c->buf, c->hlen = c->len, c->hreplies = c->replies;
    free(one.p);
    free(hone.p);
}

/* ---- The readers -------------------------------------------------------- */

/* Run for `secs`; returns replies parsed, *bytes the bytes consumed. */
static long run_aredis(const canned *c, double secs, int zero_copy, double *elapsed,
                       double *bytes) {
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    long n = 0, chunks = 0;
    double t0 = bench_now(), t;
    if (!r) exit(1);
    do {
        for (int rep = 0; rep < 8; rep++, chunks++) {
            if (zero_copy) {
                size_t avail;
                char *p = aredis_reader_space(r, c->len, &avail);
                if (!p) exit(1);
                memcpy(p, c->buf, c->len); /* stands in for read() */
                aredis_reader_commit(r, c->len);
            } else if (aredis_reader_feed(r, c->buf, c->len) != AREDIS_ERR_OK) {
                exit(1);
            }
            for (;;) {
                void *reply;
                if (aredis_reader_get_reply(r, &reply) != AREDIS_ERR_OK) {
                    fprintf(stderr, "aredis reader: %s\n", aredis_reader_errstr(r));
                    exit(1);
                }
                if (!reply) break;
                aredis_reply_free(reply);
                n++;
            }
        }
        t = bench_now() - t0;
    } while (more(chunks, t, secs));
    aredis_reader_free(r);
    if (n != chunks * c->replies) {
        fprintf(stderr, "aredis reader: %ld replies, expected %ld\n", n, chunks * c->replies);
        exit(1);
    }
    *elapsed = t;
    *bytes = (double)chunks * (double)c->len;
    return n;
}

#ifdef BENCH_HAVE_HIREDIS
static long run_hiredis(const canned *c, double secs, double *elapsed, double *bytes) {
    redisReader *r = redisReaderCreate();
    long n = 0, chunks = 0;
    double t0 = bench_now(), t;
    if (!r) exit(1);
    do {
        for (int rep = 0; rep < 8; rep++, chunks++) {
            if (redisReaderFeed(r, c->hbuf, c->hlen) != REDIS_OK) exit(1);
            for (;;) {
                void *reply;
                if (redisReaderGetReply(r, &reply) != REDIS_OK) {
                    fprintf(stderr, "hiredis reader: %s\n", r->errstr);
                    exit(1);
                }
                if (!reply) break;
                freeReplyObject(reply);
                n++;
            }
        }
        t = bench_now() - t0;
    } while (more(chunks, t, secs));
    redisReaderFree(r);
    if (n != chunks * c->hreplies) {
        fprintf(stderr, "hiredis reader: %ld replies, expected %ld\n", n, chunks * c->hreplies);
        exit(1);
    }
    *elapsed = t;
    *bytes = (double)chunks * (double)c->hlen;
    return n;
}
#endif

static void usage(void) {
    fprintf(stderr,
            "usage: parser [--time SECONDS] [--rounds R] [--buffers LIST]\n"
            "              [--only aredis|hiredis] [--chunks N] [--json[=PATH]] [--md=PATH]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *json = NULL, *md = NULL, *v, *only = "", *buffers = NULL;
    double secs = 0.3;
    int rounds = 5;
#ifdef BENCH_HAVE_HIREDIS
    const int have_hiredis = 1;
#else
    const int have_hiredis = 0;
#endif

    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--time")))
            secs = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")))
            rounds = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--buffers")))
            buffers = v;
        else if ((v = bench_opt(argc, argv, &i, "--only")))
            only = v;
        else if ((v = bench_opt(argc, argv, &i, "--chunks")))
            g_chunks = atol(v);
        else if ((v = bench_opt_eq(argv, i, "--json")))
            json = v;
        else if ((v = bench_opt(argc, argv, &i, "--md")))
            md = v;
        else
            usage();
    }
    if (secs <= 0 || rounds < 1 || rounds > 64) usage();

    canned cs[] = {
        {"nil", "$-1", 0, 0, 0, 0, 0, 0, {0}, {0}},
        {"bulk16", "16-byte bulk string", 0, 0, 0, 0, 0, 0, {0}, {0}},
        {"bulk1k", "1 KB bulk string", 0, 0, 0, 0, 0, 0, {0}, {0}},
        {"array100", "array of 100 bulk strings", 0, 0, 0, 0, 0, 0, {0}, {0}},
        {"map50", "RESP3 map, 50 pairs (hiredis: RESP2 array of 100)", 0, 0, 0, 0, 0, 0, {0}, {0}},
    };
    const int ncs = (int)(sizeof cs / sizeof cs[0]);
    int human = !json || *json;

    if (human) {
        printf("reader alone, 16 KB chunks, median of %d x %.2f s (replies/s; bytes/ns)\n", rounds,
               secs);
        printf("%-9s %14s %8s %14s %8s %14s %7s\n", "buffer", "aredis", "B/ns", "hiredis", "B/ns",
               "aredis 0-copy", "ratio");
    }
    for (int k = 0; k < ncs; k++) {
        canned *c = &cs[k];
        double rate[3][64] = {{0}}, bpns[3][64] = {{0}};
        make_canned(c);
        if (buffers) {
            char w[32];
            snprintf(w, sizeof w, ",%s,", c->name);
            char *l = malloc(strlen(buffers) + 3);
            if (!l) return 1;
            sprintf(l, ",%s,", buffers);
            int want = strstr(l, w) != NULL;
            free(l);
            if (!want) continue;
        }
        for (int r = 0; r < rounds; r++) {
            double el, bytes;
            long n;
            if (strcmp(only, "hiredis") != 0) {
                n = run_aredis(c, secs, 0, &el, &bytes);
                rate[0][r] = (double)n / el;
                bpns[0][r] = bytes / (el * 1e9);
            }
#ifdef BENCH_HAVE_HIREDIS
            if (strcmp(only, "aredis") != 0) {
                n = run_hiredis(c, secs, &el, &bytes);
                rate[1][r] = (double)n / el;
                bpns[1][r] = bytes / (el * 1e9);
            }
#endif
            if (!*only) {
                n = run_aredis(c, secs, 1, &el, &bytes);
                rate[2][r] = (double)n / el;
                bpns[2][r] = bytes / (el * 1e9);
            }
        }
        for (int j = 0; j < 3; j++) {
            c->rate[j] = bench_median(rate[j], (size_t)rounds);
            c->bpns[j] = bench_median(bpns[j], (size_t)rounds);
        }
        if (human) {
            printf("%-9s %14.0f %8.3f %14.0f %8.3f %14.0f %6.2fx\n", c->name, c->rate[0],
                   c->bpns[0], c->rate[1], c->bpns[1], c->rate[2],
                   c->rate[1] > 0 ? c->rate[0] / c->rate[1] : 0.0);
            fflush(stdout);
        }
    }

    if (json) {
        FILE *f = bench_open_out(json);
        fprintf(f, "{\"bench\":\"parser\",\"chunk\":%d,\"hiredis\":%s,\"results\":[\n", CHUNK,
                have_hiredis ? "true" : "false");
        for (int k = 0; k < ncs; k++)
            fprintf(f,
                    "  {\"buffer\":\"%s\",\"aredis_replies_per_sec\":%.0f,\"aredis_bytes_per_ns\":"
                    "%.4f,\"hiredis_replies_per_sec\":%.0f,\"hiredis_bytes_per_ns\":%.4f,"
                    "\"aredis_zero_copy_replies_per_sec\":%.0f,\"ratio\":%.3f}%s\n",
                    cs[k].name, cs[k].rate[0], cs[k].bpns[0], cs[k].rate[1], cs[k].bpns[1],
                    cs[k].rate[2], cs[k].rate[1] > 0 ? cs[k].rate[0] / cs[k].rate[1] : 0.0,
                    k + 1 < ncs ? "," : "");
        fprintf(f, "]}\n");
        bench_close_out(f);
    }
    if (md) {
        FILE *f = bench_open_out(md);
        fprintf(f, "| buffer | aredis replies/s | aredis B/ns | hiredis replies/s | hiredis B/ns "
                   "| aredis/hiredis | ≥ 2× | aredis zero-copy replies/s |\n"
                   "|---|---:|---:|---:|---:|---:|:-:|---:|\n");
        for (int k = 0; k < ncs; k++) {
            double ratio = cs[k].rate[1] > 0 ? cs[k].rate[0] / cs[k].rate[1] : 0;
            fprintf(f, "| %s (%s) | %.0f | %.3f | %.0f | %.3f | %.2f× | %s | %.0f |\n", cs[k].name,
                    cs[k].what, cs[k].rate[0], cs[k].bpns[0], cs[k].rate[1], cs[k].bpns[1], ratio,
                    !have_hiredis ? "n/a"
                    : ratio >= 2  ? "met"
                                  : "**missed**",
                    cs[k].rate[2]);
        }
        bench_close_out(f);
    }
    for (int k = 0; k < ncs; k++) {
        free(cs[k].buf);
        if (cs[k].hbuf != cs[k].buf) free(cs[k].hbuf);
    }
    return 0;
}
