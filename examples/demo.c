/*
 * demo — the aredis showcase (what `make demo` runs).
 *
 * Connects to REDIS_URL (default redis://127.0.0.1:6379), then shows:
 * SET/GET with futures, many concurrent commands with callbacks, a pipeline,
 * typed errors, and a small throughput table: sequential (await each),
 * concurrent (N in flight) and pipelined (batches of 100) ops/s. Every key
 * it writes is under demo:* and is deleted before it exits. Progress bars
 * are drawn only on a terminal; in a log each run is one plain line.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_demo [ops]
 *
 * ops: SETs per throughput run (default 100000, at least 100; the
 * sequential run does a tenth, at least 1000). `./example_demo 1000` is a
 * quick run. Exits non-zero (saying why on stderr) if any step fails.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Stop the demo: something did not do what it should. */
static void fail(const char *what, const aredis_error *e) {
    fprintf(stderr, "\n%s failed%s%s\n", what, e ? ": " : "", e ? e->detail : "");
    exit(1);
}

static void progress(const char *what, long done, long total) {
    static int tty = -1;
    if (tty < 0) tty = isatty(2);
    if (!tty) { /* a log: one line when a run is done, no carriage returns */
        if (done == total) fprintf(stderr, "  %-12s done (%ld)\n", what, total);
        return;
    }
    int width = 30, filled = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\r  %-12s [", what);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %3ld%%", total ? done * 100 / total : 100);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

/* ---- Sequential: await each command ------------------------------------ */
static double run_sequential(aredis_client *c, long n) {
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        aredis_future *f = aredis_future_command(c, "SET demo:seq:%ld %ld", i % 1000, i);
        if (aredis_await(f) != AREDIS_ERR_OK) fail("SET", aredis_future_error(f));
        aredis_future_release(f);
        if (i % (n / 20 ? n / 20 : 1) == 0) progress("sequential", i, n);
    }
    progress("sequential", n, n);
    return (double)n / (now_s() - t0);
}

/* ---- Concurrent: keep `depth` commands in flight ----------------------- */
typedef struct {
    long issued, done, total, errors;
    int depth;
} conc_state;

static void conc_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)r;
    conc_state *s = data;
    s->done++;
    if (err) s->errors++;
    if (s->done % (s->total / 20 ? s->total / 20 : 1) == 0)
        progress("concurrent", s->done, s->total);
    if (s->issued < s->total) {
        s->issued++;
        aredis_command(c, conc_reply, s, "SET demo:conc:%ld %ld", s->issued % 1000, s->issued);
    }
}

static double run_concurrent(aredis_client *c, long n, int depth) {
    conc_state s = {0, 0, n, 0, depth};
    double t0 = now_s();
    for (int i = 0; i < depth && s.issued < n; i++) {
        s.issued++;
        aredis_command(c, conc_reply, &s, "SET demo:conc:%ld %ld", s.issued % 1000, s.issued);
    }
    while (s.done < n)
        aredis_loop_run_once(aredis_client_loop(c), 1);
    if (s.done % (n / 20 ? n / 20 : 1) != 0) progress("concurrent", n, n);
    if (s.errors) fail("concurrent SETs", NULL);
    return (double)n / (now_s() - t0);
}

/* ---- Pipelined: batches of 100 issued in one loop turn ----------------- */
static void count_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    if (err) fail("a pipelined SET", err);
    (*(long *)data)++;
}

static double run_pipelined(aredis_client *c, long n) {
    double t0 = now_s();
    long done = 0;
    for (long i = 0; i < n; i += 100) {
        long batch = n - i < 100 ? n - i : 100, target = done + batch;
        for (long j = 0; j < batch; j++)
            aredis_command(c, count_done, &done, "SET demo:pipe:%ld %ld", (i + j) % 1000, i + j);
        while (done < target)
            aredis_loop_run_once(aredis_client_loop(c), 1);
        if ((i / 100) % 20 == 0) progress("pipelined", done, n);
    }
    progress("pipelined", n, n);
    return (double)n / (now_s() - t0);
}

int main(int argc, char **argv) {
    const char *url = getenv("REDIS_URL");
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n < 100) n = 100;
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        return 2;
    }
    aredis_uri_apply(uri, &o);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!loop || !c) {
        fprintf(stderr, "cannot create client\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave with the progress bars on stderr */
    printf("aredis %s demo\n\n", aredis_version());

    /* 1. Connect: commands may be issued at once; they wait for the handshake. */
    aredis_client_connect(c);
    aredis_future *ready = aredis_future_ready(c);
    if (aredis_await(ready) != AREDIS_ERR_OK) {
        fprintf(stderr, "connect failed: %s\n", aredis_future_error(ready)->detail);
        return 1;
    }
    aredis_future_release(ready);
    printf("1. connected, speaking RESP%d\n", aredis_client_protocol(c));

    /* 2. SET / GET with futures. */
    aredis_future *set = aredis_future_command(c, "SET %s %s", "demo:greeting", "hello, redis");
    aredis_future *get = aredis_future_command(c, "GET %s", "demo:greeting");
    if (aredis_await(get) != AREDIS_ERR_OK) fail("GET", aredis_future_error(get));
    if (aredis_future_error(set)) fail("SET", aredis_future_error(set)); /* replies come in order */
    printf("2. SET -> %s, GET -> \"%s\"\n", aredis_future_reply(set)->str,
           aredis_future_reply(get)->str);
    aredis_future_release(set);
    aredis_future_release(get);

    /* 3. Many concurrent commands: issued in one go, flushed in one write. */
    enum { N = 1000 };
    aredis_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = aredis_future_command(c, "INCR demo:counter");
    aredis_future *all = aredis_future_all(fs, N);
    if (aredis_await(all) != AREDIS_ERR_OK) fail("INCR", aredis_future_error(all));
    long long first = aredis_future_reply(fs[0])->integer;
    long long last = aredis_future_reply(fs[N - 1])->integer;
    printf("3. %d concurrent INCRs -> counter now %lld\n", N, last);
    if (last - first != N - 1) fail("the INCRs' order", NULL); /* in issue order, no gap */
    for (int i = 0; i < N; i++)
        aredis_future_release(fs[i]);
    aredis_future_release(all);

    /* 4. A pipeline: a batch issued together, replies in order. */
    aredis_future *p[4] = {
        aredis_future_command(c, "RPUSH demo:list a b c"),
        aredis_future_command(c, "LRANGE demo:list 0 -1"),
        aredis_future_command(c, "HSET demo:hash field value"),
        aredis_future_command(c, "HGETALL demo:hash"),
    };
    aredis_future *pall = aredis_future_all(p, 4);
    if (aredis_await(pall) != AREDIS_ERR_OK) fail("the pipeline", aredis_future_error(pall));
    aredis_reply *m = aredis_future_reply(p[3]);
    if ((long long)aredis_future_reply(p[1])->elements != aredis_future_reply(p[0])->integer)
        fail("LRANGE after RPUSH", NULL);
    printf("4. pipeline of 4: list has %zu items; HGETALL is a %s of %zu pair(s)\n",
           aredis_future_reply(p[1])->elements, aredis_reply_type_name(m->type), m->elements / 2);
    for (int i = 0; i < 4; i++)
        aredis_future_release(p[i]);
    aredis_future_release(pall);

    /* 5. Typed errors: a server error is an answer, not a broken link. */
    aredis_future *bad = aredis_future_command(c, "LPUSH demo:greeting x");
    aredis_await(bad);
    const aredis_error *e = aredis_future_error(bad);
    if (!e || e->code != AREDIS_ERR_SERVER || strcmp(e->prefix, "WRONGTYPE") != 0)
        fail("LPUSH on a string (expected WRONGTYPE)", e);
    printf("5. LPUSH on a string -> %s, prefix %s: %s\n", aredis_err_name(e->code), e->prefix,
           e->detail);
    aredis_future_release(bad);
    aredis_command(c, NULL, NULL, "DEL demo:greeting demo:counter demo:list demo:hash");

    /* 6. Throughput. */
    printf("\n6. throughput on one connection (%ld SETs; sequential runs a tenth):\n", n);
    double seq = run_sequential(c, n / 10 > 1000 ? n / 10 : 1000);
    double conc = run_concurrent(c, n, 64);
    double pipe = run_pipelined(c, n);
    printf("\n  %-28s %12s\n", "mode", "ops/s");
    printf("  %-28s %12.0f\n", "sequential (await each)", seq);
    printf("  %-28s %12.0f\n", "concurrent (64 in flight)", conc);
    printf("  %-28s %12.0f\n", "pipelined (batches of 100)", pipe);
    printf("\n(speed comparisons with hiredis and redis-benchmark: make bench)\n");

    /* Leave nothing behind: the throughput runs wrote demo:{seq,conc,pipe}:0..999. */
    long left = 0;
    aredis_future *dels[10];
    static const char *const kinds[] = {"seq", "conc", "pipe"};
    for (int b = 0; b < 10; b++) {
        static char names[300][24];
        const char *del[301];
        del[0] = "DEL";
        for (int i = 0; i < 300; i++) {
            snprintf(names[i], sizeof names[i], "demo:%s:%d", kinds[i % 3], b * 100 + i / 3);
            del[i + 1] = names[i];
        }
        dels[b] = aredis_future_argv(c, 301, del, NULL); /* the names are copied */
    }
    for (int b = 0; b < 10; b++) {
        if (aredis_await(dels[b]) != AREDIS_ERR_OK) fail("DEL", aredis_future_error(dels[b]));
        left += aredis_future_reply(dels[b])->integer;
        aredis_future_release(dels[b]);
    }
    printf("removed the %ld demo:* keys the demo wrote\n", left);

    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
