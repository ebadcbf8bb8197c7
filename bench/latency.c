/*
 * bench/latency.c — per-command latency (issue to reply callback) at fixed
 * concurrency levels: p50, p90, p99, p99.9 and max, in microseconds, with
 * the ops/s reached meanwhile. Concurrency c means c commands kept in flight
 * on one connection (a reply issues the next).
 *
 *   latency [-h HOST] [-p PORT] [-u UNIXPATH] [-c 1,16,64,256] [-n COUNT]
 *           [--op set|get] [-s SIZE] [--clients aredis,hiredis-async]
 *           [--json[=PATH]] [--md=PATH]
 *
 * Every client runs at a level before the next level starts, so that both
 * see the same machine. COUNT (default 100,000) is per client and level;
 * level 1 runs a fifth of it.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef struct lrow {
    int client;
    long conc, n;
    double ops_s, p50, p90, p99, p999, max;
    long errors;
} lrow;

static void usage(void) {
    fprintf(stderr, "usage: latency [-h HOST] [-p PORT] [-u UNIXPATH] [-c LEVELS] [-n COUNT]\n"
                    "               [--op set|get] [-s SIZE] [--clients LIST]\n"
                    "               [--json[=PATH]] [--md=PATH]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *unix_path = NULL, *json = NULL, *md = NULL, *v;
    const char *clients_s = NULL;
    int port = 6379, is_get = 0;
    long n = 100000, size = 3, levels[8] = {1, 16, 64, 256};
    int nlevels = 4;

    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "-h")) || (v = bench_opt(argc, argv, &i, "--host")))
            host = v;
        else if ((v = bench_opt(argc, argv, &i, "-p")) || (v = bench_opt(argc, argv, &i, "--port")))
            port = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-u")) || (v = bench_opt(argc, argv, &i, "--unix")))
            unix_path = v;
        else if ((v = bench_opt(argc, argv, &i, "-c")))
            nlevels = bench_parse_list(v, levels, 8);
        else if ((v = bench_opt(argc, argv, &i, "-n")) ||
                 (v = bench_opt(argc, argv, &i, "--count")))
            n = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--op")))
            is_get = !strcmp(v, "get") || !strcmp(v, "GET");
        else if ((v = bench_opt(argc, argv, &i, "-s")))
            size = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--clients")))
            clients_s = v;
        else if ((v = bench_opt_eq(argv, i, "--json")))
            json = v;
        else if ((v = bench_opt(argc, argv, &i, "--md")))
            md = v;
        else
            usage();
    }
    if (n < 100 || nlevels < 1 || size < 0) usage();

    int clients[BENCH_NCLIENTS], nclients = 0;
    if (clients_s) {
        char *dup = strdup(clients_s), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int c = bench_client_parse(t);
            if (c < 0 || nclients == BENCH_NCLIENTS) usage();
            if (bench_client_available((bench_client)c))
                clients[nclients++] = c;
            else
                fprintf(stderr, "latency: %s not built, skipped\n", t);
        }
        free(dup);
    } else {
        clients[nclients++] = BENCH_AREDIS;
        if (bench_client_available(BENCH_HIREDIS_ASYNC)) clients[nclients++] = BENCH_HIREDIS_ASYNC;
    }

    lrow rows[8 * BENCH_NCLIENTS];
    int nrows = 0, human = !json || *json;
    double *lat = malloc(sizeof *lat * (size_t)n);
    if (!lat) return 1;
    if (is_get) {
        /* GET reads a key holding a value of SIZE bytes. */
        bench_job fill = {0};
        bench_result res;
        fill.host = host;
        fill.port = port;
        fill.unix_path = unix_path;
        fill.value_size = (size_t)size;
        fill.key = "key:__rand_int__";
        fill.n = 1;
        fill.depth = 1;
        fill.mode = BENCH_WINDOW;
        if (bench_run(BENCH_AREDIS, &fill, &res) != 0) return 1;
    }
    if (human) {
        printf("latency, %s %ld B over %s, one connection (us)\n", is_get ? "GET" : "SET", size,
               unix_path ? "a unix socket" : "TCP");
        printf("%-16s %6s %11s %8s %8s %8s %8s %8s\n", "client", "conc", "ops/s", "p50", "p90",
               "p99", "p99.9", "max");
    }
    for (int l = 0; l < nlevels; l++) {
        for (int k = 0; k < nclients; k++) {
            bench_job job = {0};
            bench_result res;
            job.host = host;
            job.port = port;
            job.unix_path = unix_path;
            job.is_get = is_get;
            job.value_size = (size_t)size;
            job.key = "key:__rand_int__";
            job.n = levels[l] == 1 ? n / 5 : n;
            job.depth = (int)levels[l];
            job.mode = BENCH_WINDOW;
            job.lat_us = lat;
            if (bench_run((bench_client)clients[k], &job, &res) != 0) return 1;
            bench_sort(lat, (size_t)res.ops);
            lrow *w = &rows[nrows++];
            w->client = clients[k];
            w->conc = levels[l];
            w->n = res.ops;
            w->ops_s = (double)res.ops / res.secs;
            w->p50 = bench_percentile(lat, (size_t)res.ops, 50);
            w->p90 = bench_percentile(lat, (size_t)res.ops, 90);
            w->p99 = bench_percentile(lat, (size_t)res.ops, 99);
            w->p999 = bench_percentile(lat, (size_t)res.ops, 99.9);
            w->max = res.ops ? lat[res.ops - 1] : 0;
            w->errors = res.errors + res.bad;
            if (human) {
                printf("%-16s %6ld %11.0f %8.1f %8.1f %8.1f %8.1f %8.1f\n",
                       bench_client_name((bench_client)w->client), w->conc, w->ops_s, w->p50,
                       w->p90, w->p99, w->p999, w->max);
                fflush(stdout);
            }
        }
    }
    free(lat);

    if (json) {
        FILE *f = bench_open_out(json);
        fprintf(f,
                "{\"bench\":\"latency\",\"op\":\"%s\",\"size\":%ld,\"unit\":\"us\","
                "\"results\":[\n",
                is_get ? "GET" : "SET", size);
        for (int i = 0; i < nrows; i++)
            fprintf(f,
                    "  {\"client\":\"%s\",\"concurrency\":%ld,\"count\":%ld,\"ops_per_sec\":%.1f,"
                    "\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p99_9\":%.2f,\"max\":%.2f,"
                    "\"errors\":%ld}%s\n",
                    bench_client_name((bench_client)rows[i].client), rows[i].conc, rows[i].n,
                    rows[i].ops_s, rows[i].p50, rows[i].p90, rows[i].p99, rows[i].p999, rows[i].max,
                    rows[i].errors, i + 1 < nrows ? "," : "");
        fprintf(f, "]}\n");
        bench_close_out(f);
    }
    if (md) {
        FILE *f = bench_open_out(md);
        fprintf(f, "| client | in flight | ops/s | p50 µs | p90 µs | p99 µs | p99.9 µs | "
                   "max µs |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < nrows; i++)
            fprintf(f, "| %s | %ld | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
                    bench_client_name((bench_client)rows[i].client), rows[i].conc, rows[i].ops_s,
                    rows[i].p50, rows[i].p90, rows[i].p99, rows[i].p999, rows[i].max);
        bench_close_out(f);
    }
    for (int i = 0; i < nrows; i++)
        if (rows[i].errors) return 1;
    return 0;
}
