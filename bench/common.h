/*
 * bench/common.h — what every bench program shares: clocks and the CPU
 * time of the calling process, medians and percentiles, simple
 * option parsing, output to a table / JSON / Markdown, and the client
 * drivers (aredis on its built-in loop and on libevent; hiredis async on
 * libevent and sync) behind one "job" interface, so that every client runs
 * exactly the same workload.
 *
 * Nothing here is a test: numbers are measured and printed, never asserted.
 */
#ifndef AREDIS_BENCH_COMMON_H
#define AREDIS_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Clocks and CPU time ------------------------------------------------ */

/* Monotonic seconds. */
double bench_now(void);

/* A snapshot of this process: wall clock and CPU (user, sys), in seconds. */
typedef struct bench_mark {
    double t, user, sys;
} bench_mark;

void bench_mark_take(bench_mark *m);

/*
 * The whole machine's CPU time from /proc/stat, in ticks: all of it, and the
 * "steal" part (time this virtual machine's CPUs were ready to run but the
 * host ran something else). Zeros when /proc/stat cannot be read.
 */
typedef struct bench_cpustat {
    unsigned long long total, steal;
} bench_cpustat;

void bench_cpustat_take(bench_cpustat *s);
/* Percent of the CPU time between a and b that was stolen; -1 if unknown. */
double bench_steal_pct(const bench_cpustat *a, const bench_cpustat *b);

/* ---- Statistics --------------------------------------------------------- */

/* Median of v[0..n-1] (v is sorted in place). 0 when n == 0. */
double bench_median(double *v, size_t n);
/* The p-th percentile (0..100) of sorted v, nearest-rank. */
double bench_percentile(const double *sorted, size_t n, double p);
void bench_sort(double *v, size_t n);

/* ---- Child runs ----------------------------------------------------------- */

/*
 * Run av (execvp: av[0] found on PATH) in a child process whose stdout
 * comes back into buf — its tail, NUL-terminated (only the last RESULT
 * line matters) — and whose stderr goes to errlog (NULL: passed through).
 * The child dies with the bench (PR_SET_PDEATHSIG). 0 when it exited with
 * status 0, else -1.
 */
int bench_run_capture(const char *const *av, const char *errlog, char *buf, size_t cap);
/* "key=number" in s (a worker's "RESULT k=v ..." line), or def. */
double bench_field(const char *s, const char *key, double def);

/* ---- Options ------------------------------------------------------------ */

/* Parse "1,16,64" into out[] (at most max); returns how many. */
int bench_parse_list(const char *s, long *out, int max);
/* "--name=value" or "--name value": returns the value and advances *i, or
 * NULL when argv[*i] is not this option. `flag` options (no value) return
 * "" for "--name" alone. */
const char *bench_opt(int argc, char **argv, int *i, const char *name);
/* Like bench_opt, for an option that may stand alone or take "=value"
 * (never a separate word): "--json" gives "", "--json=x" gives "x". */
const char *bench_opt_eq(char **argv, int i, const char *name);

/* ---- Output ------------------------------------------------------------- */

/* Open `path` for writing ("-" or "" = stdout). Exits on failure. */
FILE *bench_open_out(const char *path);
void bench_close_out(FILE *f);

/* Human-readable rate: "1.23M", "456.7k". Returns buf. */
const char *bench_fmt_rate(double v, char *buf, size_t n);

/* The instructions ("I refs") a valgrind --tool=callgrind run wrote to its
 * log at `path` (its stderr), or -1 when there are none. */
long long bench_callgrind_refs(const char *path);

/* ---- Client drivers ----------------------------------------------------- */

/* How commands are issued. */
typedef enum bench_mode {
    BENCH_SEQ,    /* one at a time, awaiting each (aredis: futures) */
    BENCH_WINDOW, /* keep `depth` in flight: a reply issues the next */
    BENCH_BATCH,  /* issue `depth`, wait for all of them, repeat */
    BENCH_AUTO    /* issue everything (in chunks of `depth`) in one loop turn */
} bench_mode;

typedef enum bench_client {
    BENCH_AREDIS,          /* aredis, built-in loop */
    BENCH_AREDIS_LIBEVENT, /* aredis, libevent adapter */
    BENCH_HIREDIS_ASYNC,   /* hiredis async, libevent adapter */
    BENCH_HIREDIS_SYNC,    /* hiredis blocking context */
    /* The same two hiredis drivers built against a current hiredis 1.x
     * (HIREDIS_DIR): only in bench/compare_hiredis1, which is built with
     * BENCH_HIREDIS1 and without Debian's hiredis (the two versions share
     * their symbols, so one binary cannot hold both). */
    BENCH_HIREDIS1_ASYNC,
    BENCH_HIREDIS1_SYNC,
    BENCH_NCLIENTS
} bench_client;

/* Name used on the command line and in tables ("aredis", "hiredis-async"). */
const char *bench_client_name(bench_client c);
/* -1 when unknown. */
int bench_client_parse(const char *s);
/* Nonzero when the client was compiled into this binary (hiredis / libevent
 * found; hiredis1-*: only in compare_hiredis1). */
int bench_client_available(bench_client c);

typedef struct bench_job {
    const char *host; /* TCP when unix_path is NULL */
    int port;
    const char *unix_path;
    int is_get;        /* GET instead of SET */
    size_t value_size; /* SET value length; GET checks the reply length */
    long keyspace;     /* keys "<key_prefix><i % keyspace>"; 0: the one key */
    const char *key;   /* the one key when keyspace == 0 */
    long n;            /* commands to run */
    int depth;         /* in flight (WINDOW), batch size (BATCH, AUTO) */
    bench_mode mode;
    double *lat_us; /* optional: per-command latency in us, n entries */
    /* aredis what-ifs, for profiling (never in the compare tables): */
    int use_argv;        /* aredis_command_argv instead of the format string */
    unsigned timeout_ms; /* request_timeout_ms when nonzero (0: the default, 5 s) */
    int no_timeout;      /* request_timeout_ms = 0: no deadline per command */
    int spin;            /* never block: run the built-in loop without waiting (busy-poll) */
    int use_pipeline;    /* BATCH: each batch as one aredis_pipeline exec */
    int use_tx;          /* BATCH: each batch as one MULTI ... EXEC (aredis_tx) */
    int use_script;      /* every command as EVALSHA of a one-line script doing
                            the op (aredis_script_run), loaded before timing */
} bench_job;

typedef struct bench_result {
    long ops, errors, bad; /* bad: a GET whose reply had the wrong length */
    double secs, user, sys;
    /* aredis only: the client's own counters over the timed part */
    unsigned long long write_calls, read_calls;
} bench_result;

/*
 * Connect, check the server answers, then time `job` (connection set-up is
 * not timed). Returns 0, or -1 with a message on stderr.
 */
int bench_run(bench_client client, const bench_job *job, bench_result *res);

#endif
