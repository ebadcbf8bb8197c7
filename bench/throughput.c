/*
 * bench/throughput.c — aredis ops/s for SET and GET in four ways of issuing
 * commands, with 3 B, 64 B and 1 KB values, over TCP and a unix socket:
 *
 *   seq    sequential: a future per command, awaited before the next
 *   conc   concurrent: `depth` commands in flight, each reply issues the next
 *   pipe   explicit pipeline: batches of 100, each waited for in full
 *   auto   auto-pipelined: 10,000 commands issued in one loop turn (they
 *          leave together), then the loop runs until all have replied
 *
 *   throughput [--url URL | -h HOST -p PORT] [-u UNIXPATH] [-n COUNT]
 *              [--seq-count N] [-d DEPTH] [-s 3,64,1024] [--ops set,get]
 *              [--modes seq,conc,pipe,auto] [--client aredis|aredis-libevent]
 *              [--rounds R] [--json[=PATH]] [--md=PATH]
 *
 * Prints a table (ops/s; client CPU µs per command; write+read syscalls per
 * command from the client's own counters). --json prints JSON instead (or
 * writes it to PATH); --md writes a Markdown table. Keys are bench:0 ..
 * bench:9999; before the GETs of a size every key is SET with that size.
 */
#include <stdlib.h>
#include <string.h>

#include <aredis/aredis.h>

#include "common.h"

enum { M_SEQ, M_CONC, M_PIPE, M_AUTO, M_COUNT };
static const char *const mode_names[M_COUNT] = {"seq", "conc", "pipe", "auto"};

typedef struct row {
    const char *transport;
    const char *op;
    long size;
    int mode;
    double ops_s, cpu_us, sys_per_cmd;
    long n, errors;
} row;

static void usage(void) {
    fprintf(stderr, "usage: throughput [--url URL | -h HOST -p PORT] [-u UNIXPATH] [-n COUNT]\n"
                    "                  [--seq-count N] [-d DEPTH] [-s SIZES] [--ops set,get]\n"
                    "                  [--modes seq,conc,pipe,auto] [--client NAME] [--rounds R]\n"
                    "                  [--json[=PATH]] [--md=PATH]\n");
    exit(2);
}

static int has_word(const char *list, const char *w) {
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *unix_path = NULL, *ops = "set,get";
    const char *modes = "seq,conc,pipe,auto", *json = NULL, *md = NULL, *v;
    int port = 6379, depth = 64, rounds = 1, tcp = 1;
    long n = 200000, seq_n = 0, sizes[8] = {3, 64, 1024};
    int nsizes = 3;
    bench_client client = BENCH_AREDIS;

    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--url"))) {
            aredis_uri *u;
            char err[200];
            if (aredis_uri_parse(v, &u, err, sizeof err) != AREDIS_ERR_OK) {
                fprintf(stderr, "bad URL: %s\n", err);
                return 2;
            }
            if (aredis_uri_unix_path(u)) {
                unix_path = strdup(aredis_uri_unix_path(u));
                tcp = 0;
            } else {
                host = strdup(aredis_uri_host(u));
                port = aredis_uri_port(u);
            }
            aredis_uri_free(u);
        } else if ((v = bench_opt(argc, argv, &i, "-h")) ||
                   (v = bench_opt(argc, argv, &i, "--host"))) {
            host = v;
        } else if ((v = bench_opt(argc, argv, &i, "-p")) ||
                   (v = bench_opt(argc, argv, &i, "--port"))) {
            port = atoi(v);
        } else if ((v = bench_opt(argc, argv, &i, "-u")) ||
                   (v = bench_opt(argc, argv, &i, "--unix"))) {
            unix_path = v;
        } else if ((v = bench_opt(argc, argv, &i, "-n")) ||
                   (v = bench_opt(argc, argv, &i, "--count"))) {
            n = atol(v);
        } else if ((v = bench_opt(argc, argv, &i, "--seq-count"))) {
            seq_n = atol(v);
        } else if ((v = bench_opt(argc, argv, &i, "-d")) ||
                   (v = bench_opt(argc, argv, &i, "--depth"))) {
            depth = atoi(v);
        } else if ((v = bench_opt(argc, argv, &i, "-s")) ||
                   (v = bench_opt(argc, argv, &i, "--sizes"))) {
            nsizes = bench_parse_list(v, sizes, 8);
        } else if ((v = bench_opt(argc, argv, &i, "--ops"))) {
            ops = v;
        } else if ((v = bench_opt(argc, argv, &i, "--modes"))) {
            modes = v;
        } else if ((v = bench_opt(argc, argv, &i, "--client"))) {
            int c = bench_client_parse(v);
            if (c != BENCH_AREDIS && c != BENCH_AREDIS_LIBEVENT) usage();
            client = (bench_client)c;
        } else if ((v = bench_opt(argc, argv, &i, "--rounds"))) {
            rounds = atoi(v);
        } else if (!strcmp(argv[i], "--version")) {
            printf("aredis %s\n", aredis_version());
            return 0;
        } else if ((v = bench_opt_eq(argv, i, "--json"))) {
            json = v;
        } else if ((v = bench_opt(argc, argv, &i, "--md"))) {
            md = v;
        } else {
            usage();
        }
    }
    if (n < 100 || depth < 1 || rounds < 1 || nsizes < 1) usage();
    if (!seq_n) seq_n = n / 10 < 1000 ? 1000 : n / 10;
    if (!bench_client_available(client)) {
        fprintf(stderr, "%s is not built\n", bench_client_name(client));
        return 1;
    }

    row rows[2 * 8 * 2 * M_COUNT];
    int nrows = 0;
    const char *transports[2];
    int nt = 0;
    if (tcp) transports[nt++] = "tcp";
    if (unix_path) transports[nt++] = "unix";
    int human = !json || *json;

    if (human) {
        printf("aredis %s throughput (%s; depth %d; pipeline 100; auto 10,000; median of %d)\n",
               aredis_version(), bench_client_name(client), depth, rounds);
        printf("%-5s %-4s %6s %-5s %12s %10s %10s %7s\n", "net", "op", "size", "mode", "ops/s",
               "cpu us/op", "w+r/cmd", "errors");
    }
    for (int t = 0; t < nt; t++) {
        for (int si = 0; si < nsizes; si++) {
            for (int o = 0; o < 2; o++) {
                const char *op = o ? "GET" : "SET";
                if (!has_word(ops, o ? "get" : "set") && !has_word(ops, op)) continue;
                bench_job job = {0};
                bench_result res;
                job.host = host;
                job.port = port;
                job.unix_path = strcmp(transports[t], "unix") ? NULL : unix_path;
                job.value_size = (size_t)sizes[si];
                job.keyspace = 10000;
                if (o) {
                    /* Fill every key with this size first (untimed). */
                    job.n = job.keyspace;
                    job.depth = 1000;
                    job.mode = BENCH_AUTO;
                    if (bench_run(client, &job, &res) != 0) return 1;
                }
                job.is_get = o;
                for (int m = 0; m < M_COUNT; m++) {
                    if (!has_word(modes, mode_names[m])) continue;
                    static const bench_mode bm[M_COUNT] = {BENCH_SEQ, BENCH_WINDOW, BENCH_BATCH,
                                                           BENCH_AUTO};
                    static const int mdepth[M_COUNT] = {1, 0, 100, 10000};
                    job.mode = bm[m];
                    job.depth = mdepth[m] ? mdepth[m] : depth;
                    job.n = m == M_SEQ ? seq_n : n;
                    double rate[16], cpu[16], sys[16];
                    long errors = 0;
                    int r;
                    for (r = 0; r < rounds && r < 16; r++) {
                        if (bench_run(client, &job, &res) != 0) return 1;
                        rate[r] = (double)res.ops / res.secs;
                        cpu[r] = (res.user + res.sys) * 1e6 / (double)res.ops;
                        sys[r] = (double)(res.write_calls + res.read_calls) / (double)res.ops;
                        errors += res.errors + res.bad;
                    }
                    row *w = &rows[nrows++];
                    w->transport = transports[t];
                    w->op = op;
                    w->size = sizes[si];
                    w->mode = m;
                    w->ops_s = bench_median(rate, (size_t)r);
                    w->cpu_us = bench_median(cpu, (size_t)r);
                    w->sys_per_cmd = bench_median(sys, (size_t)r);
                    w->n = job.n;
                    w->errors = errors;
                    if (human) {
                        printf("%-5s %-4s %6ld %-5s %12.0f %10.2f %10.4f %7ld\n", w->transport, op,
                               w->size, mode_names[m], w->ops_s, w->cpu_us, w->sys_per_cmd, errors);
                        fflush(stdout);
                    }
                }
            }
        }
    }

    if (json) {
        FILE *f = bench_open_out(json);
        fprintf(f,
                "{\"bench\":\"throughput\",\"client\":\"%s\",\"depth\":%d,\"rounds\":%d,"
                "\"results\":[\n",
                bench_client_name(client), depth, rounds);
        for (int i = 0; i < nrows; i++)
            fprintf(f,
                    "  {\"transport\":\"%s\",\"op\":\"%s\",\"size\":%ld,\"mode\":\"%s\","
                    "\"count\":%ld,\"ops_per_sec\":%.1f,\"cpu_us_per_op\":%.4f,"
                    "\"write_read_per_cmd\":%.5f,\"errors\":%ld}%s\n",
                    rows[i].transport, rows[i].op, rows[i].size, mode_names[rows[i].mode],
                    rows[i].n, rows[i].ops_s, rows[i].cpu_us, rows[i].sys_per_cmd, rows[i].errors,
                    i + 1 < nrows ? "," : "");
        fprintf(f, "]}\n");
        bench_close_out(f);
    }
    if (md) {
        /* One row per (transport, op, size); one column per mode. */
        FILE *f = bench_open_out(md);
        fprintf(f,
                "| transport | op | value | sequential | concurrent (depth %d) | "
                "pipeline (100) | auto-pipelined | errors |\n",
                depth);
        fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < nrows;) {
            double cell[M_COUNT] = {0};
            long errs = 0;
            int j = i;
            while (j < nrows && rows[j].transport == rows[i].transport &&
                   rows[j].op == rows[i].op && rows[j].size == rows[i].size) {
                cell[rows[j].mode] = rows[j].ops_s;
                errs += rows[j].errors;
                j++;
            }
            fprintf(f, "| %s | %s | %ld B |", rows[i].transport, rows[i].op, rows[i].size);
            for (int m = 0; m < M_COUNT; m++) {
                if (cell[m] > 0)
                    fprintf(f, " %.0f |", cell[m]);
                else
                    fprintf(f, " – |");
            }
            fprintf(f, " %ld |\n", errs);
            i = j;
        }
        bench_close_out(f);
    }
    for (int i = 0; i < nrows; i++)
        if (rows[i].errors) return 1;
    return 0;
}
