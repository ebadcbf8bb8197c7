/*
 * bench/pool.c — what a connection pool costs per operation: instructions
 * per operation (callgrind, start-up excluded) and ops/s of
 *
 *   plain    aredis_command GET on one client
 *   acquire  aredis_pool_acquire, GET on the connection, aredis_pool_release
 *            (from the GET's callback; the next acquire from there too)
 *   pool     aredis_pool_command GET
 *
 * each with `depth` chains in flight (default 1: one operation at a time,
 * the cost of the pool shows whole; the pool has `depth` connections,
 * opened before the timed part).
 *
 *   pool [-h HOST] [-p PORT] [-n COUNT] [-d DEPTH] [--modes plain,acquire,pool]
 *        [--instructions[=N]]
 *   pool --worker MODE [-h HOST] [-p PORT] [-n COUNT] [-d DEPTH]
 *
 * --instructions runs each mode under `valgrind --tool=callgrind` twice (N
 * and N/5 operations, default N 50000) and prints the difference of the
 * instruction counts divided by the difference of the operation counts:
 * start-up, connect and teardown cancel out. Needs valgrind in $PATH.
 * Nothing here is asserted: numbers are measured and printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aredis/aredis.h>

#include "common.h"

enum { M_PLAIN, M_ACQUIRE, M_POOL, M_COUNT };
static const char *const mode_names[M_COUNT] = {"plain", "acquire", "pool"};
static const char *const mode_desc[M_COUNT] = {
    "aredis_command GET (one client)", "acquire + GET + release", "aredis_pool_command GET"};

typedef struct run {
    aredis_loop *loop;
    aredis_client *c;
    aredis_pool *pool;
    long n, issued, done, errors;
    int mode;
} run;

static const char k_key[] = "bench:pool:key";

static void next_op(run *r);

static void on_get(aredis_client *c, aredis_reply *reply, const aredis_error *err, void *data) {
    run *r = data;
    if (err || !reply || reply->type != AREDIS_REPLY_STRING) r->errors++;
    r->done++;
    if (r->mode == M_ACQUIRE && aredis_pool_release(r->pool, c) != AREDIS_ERR_OK) r->errors++;
    next_op(r);
}

static void on_acquired(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data) {
    (void)p;
    run *r = data;
    if (err) {
        r->errors++;
        r->done++;
        next_op(r);
        return;
    }
    if (aredis_command(c, on_get, r, "GET %s", k_key) != AREDIS_ERR_OK) {
        r->errors++;
        r->done++;
        aredis_pool_release(r->pool, c);
        next_op(r);
    }
}

static void next_op(run *r) {
    if (r->issued >= r->n) {
        if (r->done >= r->n) aredis_loop_stop(r->loop);
        return;
    }
    r->issued++;
    aredis_err e = AREDIS_ERR_OK;
    switch (r->mode) {
    case M_PLAIN:
        e = aredis_command(r->c, on_get, r, "GET %s", k_key);
        break;
    case M_ACQUIRE:
        e = aredis_pool_acquire(r->pool, on_acquired, r);
        break;
    default:
        e = aredis_pool_command(r->pool, on_get, r, "GET %s", k_key);
        break;
    }
    if (e != AREDIS_ERR_OK) {
        fprintf(stderr, "pool: issue failed: %s\n", aredis_call_error()->detail);
        exit(1);
    }
}

/* Set up (untimed), run n operations in `depth` chains, tear down. Returns
 * the timed seconds, or -1. */
static double run_mode(int mode, const char *host, int port, long n, int depth, long *errors) {
    run r;
    memset(&r, 0, sizeof r);
    r.loop = aredis_loop_new();
    r.n = n;
    r.mode = mode;
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = host;
    o.port = port;
    /* The key, through a plain client (also: the server is there). */
    aredis_client *setup = aredis_client_new(r.loop, &o);
    aredis_client_connect(setup);
    aredis_future *f = aredis_future_command(setup, "SET %s %s", k_key, "abc");
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "pool: cannot reach %s:%d: %s\n", host, port,
                aredis_future_error(f)->detail);
        return -1;
    }
    aredis_future_release(f);
    if (mode == M_PLAIN) {
        r.c = setup;
    } else {
        aredis_client_free(setup);
        aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
        po.client = o;
        po.min_connections = (unsigned)depth;
        po.max_connections = (unsigned)depth;
        r.pool = aredis_pool_new(r.loop, &po);
        if (!r.pool) {
            fprintf(stderr, "pool: %s\n", aredis_call_error()->detail);
            return -1;
        }
        /* Every connection open before the clock starts. */
        for (;;) {
            aredis_pool_stats s;
            aredis_pool_get_stats(r.pool, &s);
            if (s.idle == (size_t)depth) break;
            if (s.connect_failures) {
                fprintf(stderr, "pool: cannot open the pool's connections\n");
                return -1;
            }
            aredis_loop_run_once(r.loop, 1);
        }
    }
    double t0 = bench_now();
    for (int i = 0; i < depth && r.issued < n; i++)
        next_op(&r);
    aredis_loop_run(r.loop);
    double secs = bench_now() - t0;
    *errors = r.errors + (r.done != n);
    aredis_pool_free(r.pool);
    aredis_client_free(r.c);
    aredis_loop_free(r.loop);
    return secs;
}

/* Instructions of one `--worker` run under callgrind, or -1. */
static long long callgrind(const char *self, int mode, const char *host, int port, long n,
                           int depth) {
    char out[64], nbuf[32], pbuf[16], dbuf[16];
    snprintf(out, sizeof out, "/tmp/aredis-pool-bench-%d.log", (int)getpid());
    snprintf(nbuf, sizeof nbuf, "%ld", n);
    snprintf(pbuf, sizeof pbuf, "%d", port);
    snprintf(dbuf, sizeof dbuf, "%d", depth);
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *log = freopen(out, "w", stderr);
        (void)log;
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        execlp("valgrind", "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", self,
               "--worker", mode_names[mode], "-h", host, "-p", pbuf, "-n", nbuf, "-d", dbuf,
               (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "pool: the callgrind run of %s failed (see %s)\n", mode_names[mode], out);
        return -1;
    }
    long long ir = bench_callgrind_refs(out);
    unlink(out);
    return ir;
}

static void usage(void) {
    fprintf(stderr, "usage: pool [-h HOST] [-p PORT] [-n COUNT] [-d DEPTH]\n"
                    "            [--modes plain,acquire,pool] [--instructions[=N]]\n"
                    "       pool --worker MODE [-h HOST] [-p PORT] [-n COUNT] [-d DEPTH]\n");
    exit(2);
}

static int mode_parse(const char *s) {
    for (int m = 0; m < M_COUNT; m++)
        if (!strcmp(s, mode_names[m])) return m;
    return -1;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *modes = "plain,acquire,pool", *v;
    int port = 6379, depth = 1, worker = -1;
    long n = 200000, instr_n = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "-h")))
            host = v;
        else if ((v = bench_opt(argc, argv, &i, "-p")))
            port = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-n")))
            n = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "-d")))
            depth = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--modes")))
            modes = v;
        else if ((v = bench_opt(argc, argv, &i, "--worker"))) {
            if ((worker = mode_parse(v)) < 0) usage();
        } else if ((v = bench_opt_eq(argv, i, "--instructions")))
            instr_n = *v ? atol(v) : 50000;
        else
            usage();
    }
    if (n <= 0 || depth <= 0 || port <= 0) usage();
    if (worker >= 0) {
        long errors = 0;
        double secs = run_mode(worker, host, port, n, depth, &errors);
        if (secs < 0) return 1;
        printf("mode=%s ops=%ld secs=%.3f errors=%ld\n", mode_names[worker], n, secs, errors);
        return errors ? 1 : 0;
    }
    printf("# pool bench: %s:%d, depth %d, GET of a 3-byte value\n", host, port, depth);
    double plain_ops = 0;
    long long plain_ir = 0;
    for (int m = 0; m < M_COUNT; m++) {
        char want[32];
        snprintf(want, sizeof want, ",%s,", mode_names[m]);
        char list[128];
        snprintf(list, sizeof list, ",%s,", modes);
        if (!strstr(list, want)) continue;
        long errors = 0;
        double secs = run_mode(m, host, port, n, depth, &errors);
        if (secs < 0) return 1;
        double ops = (double)n / secs;
        char rate[32];
        printf("%-8s %-34s %10s ops/s", mode_names[m], mode_desc[m],
               bench_fmt_rate(ops, rate, sizeof rate));
        if (m == M_PLAIN)
            plain_ops = ops;
        else if (plain_ops > 0)
            printf("  (%.2fx plain)", ops / plain_ops);
        if (errors) printf("  errors=%ld", errors);
        if (instr_n > 0) {
            long small = instr_n / 5 > 0 ? instr_n / 5 : 1;
            long long hi = callgrind(argv[0], m, host, port, instr_n, depth);
            long long lo = callgrind(argv[0], m, host, port, small, depth);
            if (hi > 0 && lo > 0) {
                long long per = (hi - lo) / (instr_n - small);
                printf("  %6lld instructions/op", per);
                if (m == M_PLAIN)
                    plain_ir = per;
                else if (plain_ir > 0)
                    printf(" (+%lld)", per - plain_ir);
            }
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
