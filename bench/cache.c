/*
 * bench/cache.c — what client-side caching (aredis/cache.h) buys: GET of
 * 1,000 hot keys (key:0..key:999, 64-byte values, read in turn) on one
 * client, a reply callback issuing the next GET (a window of `depth` in
 * flight, as bench/observe.c), in three modes:
 *
 *   off        a plain client: every GET goes to the server
 *   on         a client with a cache large enough for every key, warmed
 *              before the run (untimed passes over the keys until one
 *              pass is all hits): the timed part is all hits, no I/O
 *   on-writes  the same cache, while another client (a plain one, on the
 *              same loop) writes one of the keys every 100 reads (1 %):
 *              the server's invalidations make some reads miss: a write
 *              of a cached key about 500 reads before its next read (see
 *              WRITE_AHEAD), so about one miss per write. The writer's SETs
 *              are part of the process's CPU.
 *
 * Every mode runs in the same process, on the same loop, each with its own
 * connection made before timing; per round every mode runs once, the
 * order rotating from round to round. For each depth and mode: ops/s
 * (median of the rounds) and its ratio to "off" taken round by round; the
 * process's CPU (user + sys, getrusage over the timed part) per million
 * reads and its ratio to "off"; and the cache's hit ratio over the timed
 * parts of all rounds (aredis_cache_get_stats: hits / (hits + misses)).
 *
 *   cache [-h HOST] [-p PORT] [-n COUNT] [--n-off COUNT] [--n1 COUNT]
 *         [--rounds R] [--depths 1,64] [--modes off,on,on-writes]
 *
 * -n is the reads per timed run with the cache on (default 1000000: hits
 * are fast, and a short run measures little CPU); "off" reads --n-off per
 * run at depth 8 and more (default COUNT/5) and --n1 below (default
 * COUNT/50: a round trip per read is slow).
 * Prints a Markdown table on stdout (progress on stderr). Nothing here is
 * asserted: numbers are measured and printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aredis/aredis.h>

#include "common.h"

enum { M_OFF, M_ON, M_WRITES, M_COUNT };
static const char *const mode_names[M_COUNT] = {"off", "on", "on-writes"};

#define NKEYS 1000
#define VALUE_LEN 64
#define WRITE_EVERY 100 /* on-writes: one SET per this many reads */
/* The j-th SET writes the key read 450 + j % 100 reads later (cached: it was
 * read 450-550 reads before). Each write then costs one miss when its
 * invalidation comes within those reads, and a key is written again only
 * 10,000 reads later, long after its miss is answered. */
#define WRITE_AHEAD 450

static char g_keys[NKEYS][16];
static char g_value[VALUE_LEN + 1];

/* ---- One run: a window of `depth` GETs over the keys ----------------------- */

typedef struct run {
    aredis_loop *loop;
    aredis_client *c;      /* the reader */
    aredis_client *writer; /* on-writes: the other client; else NULL */
    long n, issued, done, errors;
    long w_issued, w_done, w_errors;
} run;

static void issue(run *r);

static void on_set(aredis_client *c, aredis_reply *reply, const aredis_error *err, void *data) {
    (void)c;
    run *r = data;
    if (err || !reply || reply->type != AREDIS_REPLY_STATUS) r->w_errors++;
    r->w_done++;
}

static void on_get(aredis_client *c, aredis_reply *reply, const aredis_error *err, void *data) {
    (void)c;
    run *r = data;
    if (err || !reply || reply->type != AREDIS_REPLY_STRING || reply->len != VALUE_LEN) r->errors++;
    r->done++;
    if (r->done >= r->n) {
        aredis_loop_stop(r->loop);
        return;
    }
    if (r->issued < r->n) issue(r);
}

static void issue(run *r) {
    long i = r->issued++;
    if (aredis_command(r->c, on_get, r, "GET %s", g_keys[i % NKEYS]) != AREDIS_ERR_OK) {
        fprintf(stderr, "cache: issue failed: %s\n", aredis_call_error()->detail);
        exit(1);
    }
    if (r->writer && i % WRITE_EVERY == WRITE_EVERY - 1) {
        long key = (i + WRITE_AHEAD + r->w_issued++ % 100) % NKEYS;
        if (aredis_command(r->writer, on_set, r, "SET %s %b", g_keys[key], g_value,
                           (size_t)VALUE_LEN) != AREDIS_ERR_OK) {
            fprintf(stderr, "cache: SET failed: %s\n", aredis_call_error()->detail);
            exit(1);
        }
    }
}

/* Read n keys through c with `depth` in flight; writer: on-writes. Returns
 * the errors (a failed read, a wrong value, a failed write). */
static long reads(aredis_loop *loop, aredis_client *c, aredis_client *writer, long n, int depth,
                  bench_mark *a, bench_mark *b) {
    run r;
    memset(&r, 0, sizeof r);
    r.loop = loop;
    r.c = c;
    r.writer = writer;
    r.n = n;
    bench_mark_take(a);
    for (int i = 0; i < depth && r.issued < n; i++)
        issue(&r);
    while (r.done < n)
        aredis_loop_run(loop);
    bench_mark_take(b);
    while (r.w_done < r.w_issued) /* the writer's last SETs: untimed */
        aredis_loop_run_once(loop, 1);
    return r.errors + r.w_errors + (r.done != n);
}

/* Untimed passes over every key through the cached client until one pass is
 * all hits (at most 5). Returns 0 then, -1 otherwise. */
static int warm(aredis_loop *loop, aredis_client *c, const aredis_cache *k) {
    bench_mark a, b;
    for (int pass = 0; pass < 5; pass++) {
        aredis_cache_stats s0, s1;
        aredis_cache_get_stats(k, &s0);
        if (reads(loop, c, NULL, NKEYS, 64, &a, &b) != 0) return -1;
        aredis_cache_get_stats(k, &s1);
        if (s1.misses == s0.misses && s1.hits - s0.hits == NKEYS) return 0;
    }
    return -1;
}

/* ---- Set-up ----------------------------------------------------------------- */

static aredis_client *client(aredis_loop *loop, const char *host, int port, aredis_cache *k) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = host;
    o.port = port;
    o.cache = k;
    aredis_client *c = aredis_client_new(loop, &o);
    if (!c) {
        fprintf(stderr, "cache: cannot make a client: %s\n", aredis_call_error()->detail);
        exit(1);
    }
    aredis_client_connect(c);
    aredis_future *f = aredis_future_ready(c);
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "cache: cannot reach %s:%d%s: %s\n", host, port,
                k ? " with a cache (RESP3 and CLIENT TRACKING, Redis 6+)" : "",
                aredis_future_error(f)->detail);
        exit(1);
    }
    aredis_future_release(f);
    return c;
}

/* The 1,000 keys, written through a plain client. */
static void preload(aredis_loop *loop, aredis_client *c) {
    run r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < NKEYS; i++) {
        r.w_issued++;
        if (aredis_command(c, on_set, &r, "SET %s %b", g_keys[i], g_value, (size_t)VALUE_LEN) !=
            AREDIS_ERR_OK) {
            fprintf(stderr, "cache: SET failed: %s\n", aredis_call_error()->detail);
            exit(1);
        }
    }
    while (r.w_done < r.w_issued)
        aredis_loop_run_once(loop, 1);
    if (r.w_errors) {
        fprintf(stderr, "cache: %ld of the %d SETs failed\n", r.w_errors, NKEYS);
        exit(1);
    }
}

/* ---- Main ------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr, "usage: cache [-h HOST] [-p PORT] [-n COUNT] [--n-off COUNT] [--n1 COUNT]\n"
                    "             [--rounds R] [--depths 1,64] [--modes off,on,on-writes]\n");
    exit(2);
}

static int in_list(const char *list, const char *name) {
    char l[256], w[64];
    snprintf(l, sizeof l, ",%s,", list);
    snprintf(w, sizeof w, ",%s,", name);
    return strstr(l, w) != NULL;
}

#define MAX_ROUNDS 64
#define MAX_DEPTHS 8

typedef struct cell {
    double ops[MAX_ROUNDS], cpu[MAX_ROUNDS]; /* ops/s; CPU s per 1M reads */
    unsigned long long hits, misses, inval;  /* over the timed parts */
    unsigned long long writes, reads;        /* the reader's write(2)/read(2) calls */
} cell;

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *modes = "off,on,on-writes", *depths_s = "1,64", *v;
    int port = 6379, rounds = 5;
    long n = 1000000, n_off = 0, n1 = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "-h")))
            host = v;
        else if ((v = bench_opt(argc, argv, &i, "-p")))
            port = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-n")))
            n = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--n-off")))
            n_off = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--n1")))
            n1 = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")))
            rounds = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--depths")))
            depths_s = v;
        else if ((v = bench_opt(argc, argv, &i, "--modes")))
            modes = v;
        else
            usage();
    }
    if (n <= 0 || port <= 0 || rounds < 1 || rounds > MAX_ROUNDS) usage();
    if (n_off <= 0) n_off = n / 5 > 0 ? n / 5 : 1;
    if (n1 <= 0) n1 = n / 50 > 0 ? n / 50 : 1;
    long depths[MAX_DEPTHS];
    int nd = bench_parse_list(depths_s, depths, MAX_DEPTHS);
    int want[M_COUNT], nm = 0;
    for (int m = 0; m < M_COUNT; m++)
        if (in_list(modes, mode_names[m])) want[nm++] = m;
    if (nd < 1 || nm < 1) usage();
    for (int di = 0; di < nd; di++)
        if (depths[di] < 1) usage();
    int have_off = in_list(modes, "off");
    if (!have_off) fprintf(stderr, "cache: without \"off\", no ratios\n");

    for (int i = 0; i < NKEYS; i++)
        snprintf(g_keys[i], sizeof g_keys[i], "key:%d", i);
    for (int i = 0; i < VALUE_LEN; i++)
        g_value[i] = (char)('a' + i % 26);

    /* One loop; a plain client (off, and the writer of on-writes) and a
     * client with the cache, connected before anything is timed. */
    aredis_loop *loop = aredis_loop_new();
    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT; /* 64 MiB: every key fits */
    aredis_cache *cache = aredis_cache_new(&co);
    if (!loop || !cache) {
        fprintf(stderr, "cache: cannot make the loop or the cache\n");
        return 1;
    }
    aredis_client *plain = client(loop, host, port, NULL);
    aredis_client *writer = client(loop, host, port, NULL);
    aredis_client *cached = client(loop, host, port, cache);
    aredis_cache_free(cache); /* the client holds its own reference */
    preload(loop, plain);

    printf("<!-- cache bench: %s:%d, %d round(s), reads per run: %ld with the cache on, %ld "
           "off (%ld off below depth 8); %d keys of %d bytes -->\n",
           host, port, rounds, n, n_off, n1, NKEYS, VALUE_LEN);

    static cell cells[MAX_DEPTHS][M_COUNT];
    for (int di = 0; di < nd; di++) {
        int d = (int)depths[di];
        for (int r = 0; r < rounds; r++) {
            for (int j = 0; j < nm; j++) {
                int m = want[(j + r) % nm]; /* the order rotates */
                long cnt = m != M_OFF ? n : d < 8 ? n1 : n_off;
                cell *ce = &cells[di][m];
                if (m != M_OFF && warm(loop, cached, cache) != 0) {
                    fprintf(stderr, "cache: warming did not end in a pass of all hits\n");
                    return 1;
                }
                aredis_cache_stats s0, s1;
                aredis_client_stats c0, c1;
                aredis_cache_get_stats(cache, &s0);
                aredis_client *c = m == M_OFF ? plain : cached;
                aredis_client_get_stats(c, &c0);
                bench_mark a, b;
                long errors = reads(loop, c, m == M_WRITES ? writer : NULL, cnt, d, &a, &b);
                aredis_client_get_stats(c, &c1);
                aredis_cache_get_stats(cache, &s1);
                if (errors) {
                    fprintf(stderr, "cache: %s depth %d: %ld errors\n", mode_names[m], d, errors);
                    return 1;
                }
                ce->ops[r] = (double)cnt / (b.t - a.t);
                ce->cpu[r] = (b.user - a.user + b.sys - a.sys) / (double)cnt * 1e6;
                if (m != M_OFF) {
                    ce->hits += s1.hits - s0.hits;
                    ce->misses += s1.misses - s0.misses;
                    ce->inval += s1.invalidation_messages - s0.invalidation_messages;
                }
                ce->writes += c1.write_calls - c0.write_calls;
                ce->reads += c1.read_calls - c0.read_calls;
            }
            fprintf(stderr, "cache: depth %d round %d/%d done\n", d, r + 1, rounds);
        }
    }

    printf("\n**GET of 1,000 hot keys (%d-byte values) on one client, cache off vs on: ops/s "
           "and the process's CPU per million reads (median of %d rounds), their ratio "
           "to off (round by round), and the cache's hit ratio.**\n",
           VALUE_LEN, rounds);
    printf("\n| depth | cache | ops/s (median) | ops/s / off | per round / off | CPU s per 1M "
           "reads | CPU / off | hit ratio | reader's write(2) + read(2) per 1k reads |\n");
    printf("|---:|---|---:|---:|---|---:|---:|---:|---:|\n");
    for (int di = 0; di < nd; di++) {
        cell *off = &cells[di][M_OFF];
        for (int j = 0; j < nm; j++) {
            int m = want[j];
            cell *ce = &cells[di][m];
            long cnt = m != M_OFF ? n : depths[di] < 8 ? n1 : n_off;
            double tmp[MAX_ROUNDS], ratio[MAX_ROUNDS];
            memcpy(tmp, ce->ops, sizeof tmp);
            double med = bench_median(tmp, (size_t)rounds);
            memcpy(tmp, ce->cpu, sizeof tmp);
            double cpu = bench_median(tmp, (size_t)rounds);
            char rate[32], rr[MAX_ROUNDS * 10 + 8] = "", rm[16] = "-", cr[16] = "-", hr[48] = "-";
            if (have_off && m != M_OFF) {
                size_t o = 0;
                for (int r = 0; r < rounds; r++) {
                    ratio[r] = ce->ops[r] / off->ops[r];
                    o += (size_t)snprintf(rr + o, sizeof rr - o, "%s%.2f", r ? " " : "", ratio[r]);
                }
                snprintf(rm, sizeof rm, "%.2f", bench_median(ratio, (size_t)rounds));
                for (int r = 0; r < rounds; r++)
                    ratio[r] = ce->cpu[r] / off->cpu[r];
                snprintf(cr, sizeof cr, "%.3f", bench_median(ratio, (size_t)rounds));
            }
            if (m == M_OFF) {
                snprintf(rm, sizeof rm, "1");
                snprintf(cr, sizeof cr, "1");
            } else if (ce->hits + ce->misses) {
                int k = snprintf(hr, sizeof hr, "%.2f %%",
                                 100.0 * (double)ce->hits / (double)(ce->hits + ce->misses));
                if (m == M_WRITES && k > 0)
                    snprintf(hr + k, sizeof hr - (size_t)k, " (%llu invalidations)",
                             ce->inval / (unsigned long long)rounds);
            }
            double io = (double)(ce->writes + ce->reads) / ((double)cnt * rounds) * 1e3;
            printf("| %ld | %s | %s | %s | %s | %.2f | %s | %s | %.1f |\n", depths[di],
                   mode_names[m], bench_fmt_rate(med, rate, sizeof rate), rm, rr, cpu, cr, hr, io);
        }
    }
    printf("\nOne connection per mode, the modes in rotating order each round. on: warmed "
           "(untimed) until a pass over the keys is all hits. on-writes: another client "
           "(same process and loop) SETs one key per 100 reads meanwhile, each a key cached "
           "and read again about 500 reads later (invalidations received: per run); its CPU "
           "counts.\n");
    printf("\nProduced by `bench/cache");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("`.\n");

    aredis_client_free(cached);
    aredis_client_free(writer);
    aredis_client_free(plain);
    aredis_loop_free(loop);
    return 0;
}
