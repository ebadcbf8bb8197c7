/*
 * bench/compare.c — aredis against the C client people use today (Debian's
 * hiredis, async on libevent and sync), the server's own redis-benchmark
 * and, when installed, Perl's Redis::Fast (the client the reference design
 * compared itself with): the same workload, one connection, at equal depth,
 * in one run, alternating. When the build was given a current hiredis
 * (cmake -DHIREDIS_DIR=PREFIX), the hiredis drivers run a second time
 * against it as hiredis1-async / hiredis1-sync, labelled with its version.
 *
 * Workload: SET (then GET) of the key "key:__rand_int__" (the key
 * redis-benchmark uses without -r) with a value of -s bytes (default 3, as
 * redis-benchmark -d 3), at depths 1, 16, 64 and 256. Async clients keep
 * `depth` commands in flight (a reply issues the next); redis-benchmark -P,
 * hiredis sync and Redis::Fast can only send a batch of `depth` and wait for
 * it. Every client runs in its own process:
 *   - aredis, aredis-libevent, hiredis-async, hiredis-sync: this program
 *     re-executed as a worker (compare --worker ...);
 *   - hiredis1-async, hiredis1-sync: bench/compare_hiredis1 --worker ..., the
 *     same sources built against HIREDIS_DIR's hiredis 1.x (two hiredis
 *     versions cannot be linked into one binary);
 *   - redis-benchmark -c 1 -P depth -n N -d size -t set|get --csv;
 *   - perl bench/redis_fast.pl (when Redis::Fast loads).
 *
 * For each depth, every client runs once per round, the order rotating from
 * round to round, and the median of the rounds is reported, so that noise on
 * a machine shared with the server hits every client alike. Reported:
 *   ops/s          the client's own timing of the command phase;
 *   CPU s / M cmds the client process's user+sys CPU over the command phase
 *                  (redis-benchmark: its whole process, from wait4);
 *   w+r / cmd      aredis only: its own count of write and read calls per
 *                  command (aredis_client_get_stats) over the same phase;
 * then, in a separate pass (tracing costs time, so it is kept out of the
 * numbers above), syscalls per command by kind, counted with perf stat on
 * the syscalls:sys_enter_* tracepoints or, without perf, strace -c -f; a run
 * of one batch is subtracted so that start-up (connect, Perl's module
 * loading) is not counted.
 *
 * --cpu N pins every client process to CPU N (scripts/bench.sh pins the
 * server to another), so that placement is the same for every client.
 * --md writes the tables in Markdown, --dat the ops/s for gnuplot, --summary
 * a few Markdown bullets with the headline ratios (for the README).
 *
 *   compare [-h HOST] [-p PORT] [-u UNIXPATH] [--depths 1,16,64,256]
 *           [--rounds 3] [--ops set,get] [-s SIZE] [--clients LIST]
 *           [--scale X] [--perl-script PATH] [--syscalls auto|perf|strace|none]
 *           [--cpu N] [--json[=PATH]] [--md=PATH] [--dat=PATH] [--summary=PATH]
 *   compare --hiredis1     (prints the hiredis 1.x version and worker binary
 *                           this build runs, or fails when it has none)
 *   compare --worker CLIENT --op set|get --depth D --mode window|batch -n N
 *           [-s SIZE] [-h HOST] [-p PORT] [-u UNIXPATH] [--argv] [--timeout MS]
 *           [--no-timeout] [--spin] [--pipeline | --tx] [--script]
 *
 * --argv, --timeout, --no-timeout, --spin, --pipeline, --tx and --script are
 * what-ifs for profiling aredis (argv instead of the format string; a
 * per-command deadline of MS instead of the default 5 s; no deadline at all,
 * request_timeout_ms = 0; the built-in loop run without ever blocking; in
 * batch mode, each batch of D commands as one aredis_pipeline exec, or as
 * one MULTI ... EXEC through aredis_tx; every command as EVALSHA of a
 * one-line script doing the op, loaded before the timed part); the tables
 * never use them.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aredis/aredis.h>

#include "common.h"

#define MAX_DEPTHS 8
#define MAX_ROUNDS 9
#define MAX_CLIENTS 8
#define KEY "key:__rand_int__"

/* ---- Worker: one client, one workload, one RESULT line ------------------ */

static int worker(int argc, char **argv) {
    const char *v;
    bench_job job = {0};
    bench_result res;
    int client = -1;

    job.host = "127.0.0.1";
    job.port = 6379;
    job.key = KEY;
    job.value_size = 3;
    job.depth = 1;
    job.mode = BENCH_WINDOW;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--worker")))
            client = bench_client_parse(v);
        else if ((v = bench_opt(argc, argv, &i, "--op")))
            job.is_get = !strcmp(v, "get");
        else if ((v = bench_opt(argc, argv, &i, "--depth")))
            job.depth = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--mode")))
            job.mode = !strcmp(v, "batch") ? BENCH_BATCH : BENCH_WINDOW;
        else if ((v = bench_opt(argc, argv, &i, "-n")))
            job.n = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "-s")))
            job.value_size = (size_t)atol(v);
        else if ((v = bench_opt(argc, argv, &i, "-h")))
            job.host = v;
        else if ((v = bench_opt(argc, argv, &i, "-p")))
            job.port = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-u")))
            job.unix_path = v;
        else if (!strcmp(argv[i], "--argv"))
            job.use_argv = 1;
        else if (!strcmp(argv[i], "--pipeline"))
            job.use_pipeline = 1;
        else if (!strcmp(argv[i], "--tx"))
            job.use_tx = 1;
        else if (!strcmp(argv[i], "--script"))
            job.use_script = 1;
        else if ((v = bench_opt(argc, argv, &i, "--timeout")))
            job.timeout_ms = (unsigned)atol(v);
        else if (!strcmp(argv[i], "--no-timeout"))
            job.no_timeout = 1;
        else if (!strcmp(argv[i], "--spin"))
            job.spin = 1;
        else {
            fprintf(stderr, "worker: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (client < 0 || job.depth < 1) return 2;
    /* The aredis what-ifs: refused where they would silently not apply. */
    if ((job.use_pipeline || job.use_tx || job.use_script) && client != BENCH_AREDIS &&
        client != BENCH_AREDIS_LIBEVENT) {
        fprintf(stderr, "worker: --pipeline, --tx and --script are aredis what-ifs\n");
        return 2;
    }
    if ((job.use_pipeline || job.use_tx) && job.mode != BENCH_BATCH) {
        fprintf(stderr, "worker: --pipeline and --tx need --mode batch\n");
        return 2;
    }
    if (job.use_script + job.use_pipeline + job.use_tx > 1) {
        fprintf(stderr, "worker: --pipeline, --tx and --script: one at a time\n");
        return 2;
    }
    if (bench_run((bench_client)client, &job, &res) != 0) return 1;
    printf("RESULT ops=%ld errors=%ld secs=%.6f user=%.6f sys=%.6f wcalls=%llu rcalls=%llu\n",
           res.ops, res.errors + res.bad, res.secs, res.user, res.sys, res.write_calls,
           res.read_calls);
    return res.errors + res.bad ? 1 : 0;
}

/* ---- Running a child ----------------------------------------------------- */

typedef struct child {
    char out[8192];
    int status;
    double cpu; /* user + sys from wait4 */
} child;

static int g_cpu = -1; /* --cpu: pin every client process to this CPU */

/* Run argv with stdout captured (stderr passed through, stdin /dev/null).
 * Returns 0 when it exited with status 0. */
static int run_child(char *const *argv, child *c) {
    int pfd[2];
    memset(c, 0, sizeof *c);
    fflush(stdout);
    if (pipe(pfd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        if (g_cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(g_cpu, &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0)
                fprintf(stderr, "compare: cannot pin to CPU %d: %s\n", g_cpu, strerror(errno));
        }
        execvp(argv[0], argv);
        fprintf(stderr, "compare: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(pfd[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        /* Keep the tail: the RESULT / CSV lines come last. */
        size_t k = (size_t)n;
        if (len + k >= sizeof c->out) {
            size_t drop = len + k - (sizeof c->out - 1);
            if (drop > len) drop = len;
            memmove(c->out, c->out + drop, len - drop);
            len -= drop;
            if (k > sizeof c->out - 1 - len) k = sizeof c->out - 1 - len;
        }
        memcpy(c->out + len, tmp + (size_t)n - k, k);
        len += k;
    }
    c->out[len] = '\0';
    close(pfd[0]);
    struct rusage ru;
    while (wait4(pid, &c->status, 0, &ru) < 0 && errno == EINTR) {
    }
    c->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0 ? 0 : -1;
}

/* "key=number" in s, or `def`. */
static double field(const char *s, const char *key, double def) {
    size_t n = strlen(key);
    for (const char *p = s; (p = strstr(p, key)); p += n)
        if ((p == s || p[-1] == ' ') && p[n] == '=') return strtod(p + n + 1, NULL);
    return def;
}

/* ---- The clients compared ------------------------------------------------ */

enum { K_WORKER, K_RB, K_PERL };

typedef struct dclient {
    const char *name, *how;
    int kind;
    int worker; /* bench_client for K_WORKER */
    int batch;  /* can only send batches */
    int available;
    const char *label; /* in tables and the chart; NULL: name */
    const char *exe;   /* K_WORKER: the binary to run; NULL: this one */
} dclient;

static dclient dclients[] = {
    {"aredis", "window", K_WORKER, BENCH_AREDIS, 0, 0, NULL, NULL},
    {"aredis-libevent", "window", K_WORKER, BENCH_AREDIS_LIBEVENT, 0, 0, NULL, NULL},
    {"hiredis-async", "window", K_WORKER, BENCH_HIREDIS_ASYNC, 0, 0, NULL, NULL},
    {"hiredis-sync", "batch", K_WORKER, BENCH_HIREDIS_SYNC, 1, 0, NULL, NULL},
    {"hiredis1-async", "window", K_WORKER, BENCH_HIREDIS1_ASYNC, 0, 0, NULL, NULL},
    {"hiredis1-sync", "batch", K_WORKER, BENCH_HIREDIS1_SYNC, 1, 0, NULL, NULL},
    {"redis-benchmark", "batch (-P)", K_RB, 0, 1, 0, NULL, NULL},
    {"redis-fast", "batch", K_PERL, 0, 1, 0, NULL, NULL},
};
#define NDC ((int)(sizeof dclients / sizeof dclients[0]))
_Static_assert(sizeof dclients / sizeof dclients[0] <= MAX_CLIENTS, "MAX_CLIENTS");

enum {
    DC_AREDIS,
    DC_AREDIS_LE,
    DC_HI_ASYNC,
    DC_HI_SYNC,
    DC_HI1_ASYNC,
    DC_HI1_SYNC,
    DC_RB,
    DC_PERL
};

static const char *label(int d) { return dclients[d].label ? dclients[d].label : dclients[d].name; }

/*
 * hiredis 1.x: bench/compare_hiredis1, built only when cmake was given
 * HIREDIS_DIR; CMake passes its path and the version read from its
 * hiredis.h. The labels carry the version ("hiredis-1.4.0-async").
 */
#ifdef BENCH_HIREDIS1_EXE
static const char hiredis1_version[] = BENCH_HIREDIS1_VERSION;
#else
static const char hiredis1_version[] = "";
#endif

typedef struct cfg {
    const char *host, *unix_path, *perl_script, *self;
    int port;
    long size;
} cfg;

typedef struct sample {
    double ops_s, cpu_per_m, rw_per_cmd;
    long ops, errors;
    int ok;
} sample;

/* The server's address in a client's own flags: `uflag` PATH for a unix
 * socket, else `hflag` HOST `pflag` PORT. Returns the new argument count. */
static int add_server(const cfg *g, char **av, int k, const char *uflag, const char *hflag,
                      const char *pflag, char *port) {
    if (g->unix_path) {
        av[k++] = (char *)uflag;
        av[k++] = (char *)g->unix_path;
    } else {
        av[k++] = (char *)hflag;
        av[k++] = (char *)g->host;
        av[k++] = (char *)pflag;
        av[k++] = port;
    }
    return k;
}

/* Build the command line of one run. `prefix` (perf / strace) goes first. */
static int build_argv(const cfg *g, int dc, int is_get, int depth, long n, char **prefix, char **av,
                      char (*buf)[64]) {
    int k = 0, b = 0;
    for (; prefix && *prefix; prefix++)
        av[k++] = *prefix;
#define NUM(fmt, x) (snprintf(buf[b], 64, fmt, x), buf[b++])
    const dclient *d = &dclients[dc];
    char *port = NUM("%d", g->port);
    if (d->kind == K_WORKER) {
        av[k++] = (char *)(d->exe ? d->exe : g->self);
        av[k++] = "--worker";
        av[k++] = (char *)d->name;
        av[k++] = "--op";
        av[k++] = is_get ? "get" : "set";
        av[k++] = "--depth";
        av[k++] = NUM("%d", depth);
        av[k++] = "--mode";
        av[k++] = d->batch ? "batch" : "window";
        av[k++] = "-n";
        av[k++] = NUM("%ld", n);
        av[k++] = "-s";
        av[k++] = NUM("%ld", g->size);
        k = add_server(g, av, k, "-u", "-h", "-p", port);
    } else if (d->kind == K_RB) {
        av[k++] = "redis-benchmark";
        k = add_server(g, av, k, "-s", "-h", "-p", port);
        av[k++] = "-c";
        av[k++] = "1";
        av[k++] = "-P";
        av[k++] = NUM("%d", depth);
        av[k++] = "-n";
        av[k++] = NUM("%ld", n);
        av[k++] = "-d";
        av[k++] = NUM("%ld", g->size);
        av[k++] = "-t";
        av[k++] = is_get ? "get" : "set";
        av[k++] = "--csv";
    } else {
        av[k++] = "perl";
        av[k++] = (char *)g->perl_script;
        k = add_server(g, av, k, "--sock", "--host", "--port", port);
        av[k++] = "--op";
        av[k++] = is_get ? "get" : "set";
        av[k++] = "-P";
        av[k++] = NUM("%d", depth);
        av[k++] = "-n";
        av[k++] = NUM("%ld", n);
        av[k++] = "-d";
        av[k++] = NUM("%ld", g->size);
    }
#undef NUM
    av[k] = NULL;
    return k;
}

/* redis-benchmark --csv: "SET","123456.79",... */
static double rb_rps(const char *out, int is_get) {
    char pat[16];
    snprintf(pat, sizeof pat, "\"%s\",\"", is_get ? "GET" : "SET");
    const char *p = strstr(out, pat);
    return p ? strtod(p + strlen(pat), NULL) : 0;
}

static int run_one(const cfg *g, int dc, int is_get, int depth, long n, sample *s) {
    char *av[48], buf[16][64];
    child c;
    memset(s, 0, sizeof *s);
    build_argv(g, dc, is_get, depth, n, NULL, av, buf);
    if (run_child(av, &c) != 0) {
        fprintf(stderr, "compare: %s failed (status %d): %s\n", dclients[dc].name, c.status, c.out);
        return -1;
    }
    if (dclients[dc].kind == K_RB) {
        s->ops = n;
        s->ops_s = rb_rps(c.out, is_get);
        s->cpu_per_m = c.cpu * 1e6 / (double)n;
        s->rw_per_cmd = -1; /* its syscalls come from the traced pass only */
        if (s->ops_s <= 0) {
            fprintf(stderr, "compare: cannot read redis-benchmark's output: %s\n", c.out);
            return -1;
        }
    } else {
        double ops = field(c.out, "ops", 0), secs = field(c.out, "secs", 0);
        if (ops <= 0 || secs <= 0) {
            fprintf(stderr, "compare: no RESULT from %s: %s\n", dclients[dc].name, c.out);
            return -1;
        }
        s->ops = (long)ops;
        s->errors = (long)field(c.out, "errors", 0);
        s->ops_s = ops / secs;
        s->cpu_per_m = (field(c.out, "user", 0) + field(c.out, "sys", 0)) * 1e6 / ops;
        /* aredis counts its own write and read calls; others: the traced pass. */
        double calls = field(c.out, "wcalls", 0) + field(c.out, "rcalls", 0);
        s->rw_per_cmd =
            dclients[dc].kind == K_WORKER && (dclients[dc].worker == BENCH_AREDIS ||
                                              dclients[dc].worker == BENCH_AREDIS_LIBEVENT)
                ? calls / ops
                : -1;
    }
    s->ok = 1;
    return 0;
}

/* ---- Syscalls by kind (perf stat or strace -c) --------------------------- */

enum { SC_RW, SC_POLL, SC_CTL, SC_ALL, SC_N };

static const char *const sc_rw[] = {"read",   "write",   "readv",   "writev", "recvfrom",
                                    "sendto", "recvmsg", "sendmsg", NULL};
static const char *const sc_poll[] = {"epoll_wait", "epoll_pwait", "poll", "ppoll",
                                      "select",     "pselect6",    NULL};

static int in_list(const char *const *l, const char *s) {
    for (; *l; l++)
        if (!strcmp(*l, s)) return 1;
    return 0;
}

static void sc_add(double *acc, const char *name, double count) {
    if (in_list(sc_rw, name))
        acc[SC_RW] += count;
    else if (in_list(sc_poll, name))
        acc[SC_POLL] += count;
    else if (!strcmp(name, "epoll_ctl"))
        acc[SC_CTL] += count;
    acc[SC_ALL] += count;
}

static int tool_works(char *const *av) {
    child c;
    return run_child(av, &c) == 0;
}

/* Count syscalls of one run by kind into acc[SC_N]. tool: 1 perf, 2 strace. */
static int count_syscalls(const cfg *g, int tool, int dc, int is_get, int depth, long n,
                          double *acc) {
    char tmpl[] = "/tmp/aredis-sc-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) return -1;
    close(fd);
    char *perf[] = {"perf",
                    "stat",
                    "-x,",
                    "-o",
                    tmpl,
                    "-e",
                    "syscalls:sys_enter_read,syscalls:sys_enter_write,"
                    "syscalls:sys_enter_readv,syscalls:sys_enter_writev,"
                    "syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,"
                    "syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendmsg,"
                    "syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,"
                    "syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,"
                    "syscalls:sys_enter_select,syscalls:sys_enter_pselect6,"
                    "syscalls:sys_enter_epoll_ctl",
                    "--",
                    NULL};
    char *strace[] = {"strace", "-f", "-c", "-o", tmpl, "--", NULL};
    char *av[64], buf[16][64];
    child c;
    build_argv(g, dc, is_get, depth, n, tool == 1 ? perf : strace, av, buf);
    int rc = run_child(av, &c);
    FILE *f = fopen(tmpl, "r");
    char line[512];
    for (int i = 0; i < SC_N; i++)
        acc[i] = 0;
    while (rc == 0 && f && fgets(line, sizeof line, f)) {
        if (tool == 1) {
            /* count,unit,syscalls:sys_enter_NAME,... */
            char *ev = strstr(line, "syscalls:sys_enter_");
            if (!ev || line[0] == '<') continue;
            char name[64];
            if (sscanf(ev + 19, "%63[a-z0-9_]", name) == 1) sc_add(acc, name, strtod(line, NULL));
        } else {
            /* % time  seconds  usecs/call  calls  [errors]  syscall */
            char *tok[8];
            int nt = 0;
            for (char *save = NULL, *t = strtok_r(line, " \t\n", &save); t && nt < 8;
                 t = strtok_r(NULL, " \t\n", &save))
                tok[nt++] = t;
            if (nt < 5 || tok[0][0] < '0' || tok[0][0] > '9' || !strcmp(tok[nt - 1], "total"))
                continue;
            sc_add(acc, tok[nt - 1], strtod(tok[3], NULL));
        }
    }
    if (f) fclose(f);
    unlink(tmpl);
    return rc;
}

/* ---- Driver --------------------------------------------------------------- */

static long default_count(long depth) {
    if (depth <= 1) return 15000;
    if (depth <= 16) return 100000;
    if (depth <= 64) return 200000;
    return 300000;
}

static void usage(void) {
    fprintf(stderr,
            "usage: compare [-h HOST] [-p PORT] [-u UNIXPATH] [--depths LIST] [--rounds R]\n"
            "               [--ops set,get] [-s SIZE] [--clients LIST] [--scale X]\n"
            "               [--perl-script PATH] [--syscalls auto|perf|strace|none] [--cpu N]\n"
            "               [--json[=PATH]] [--md=PATH] [--dat=PATH] [--summary=PATH]\n"
            "       compare --worker CLIENT --op set|get --depth D --mode window|batch -n N\n"
            "               [-s SIZE] [-h HOST] [-p PORT] [-u UNIXPATH] [--argv]\n"
            "               [--timeout MS] [--no-timeout] [--spin] [--pipeline | --tx]\n"
            "               [--script]\n");
    exit(2);
}

static const char *mark(int ok) { return ok ? "met" : "**missed**"; }

/* Median over rounds of x[a] / x[b]: ops/s (what 0) or CPU per command (1). */
static double paired(sample (*x)[MAX_ROUNDS], int a, int b, int rounds, int what) {
    double v[MAX_ROUNDS];
    size_t n = 0;
    for (int r = 0; r < rounds; r++) {
        double p = what ? x[a][r].cpu_per_m : x[a][r].ops_s;
        double q = what ? x[b][r].cpu_per_m : x[b][r].ops_s;
        if (q > 0) v[n++] = p / q;
    }
    return bench_median(v, n);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--worker", 8)) return worker(argc, argv);
    /* Which hiredis 1.x this binary runs, if any (scripts/bench.sh asks). */
    if (argc == 2 && !strcmp(argv[1], "--hiredis1")) {
#ifdef BENCH_HIREDIS1_EXE
        printf("%s %s\n", hiredis1_version, BENCH_HIREDIS1_EXE);
        return 0;
#else
        return 1;
#endif
    }
#ifdef BENCH_HIREDIS1
    /* compare_hiredis1 is only ever a worker: compare runs it. */
    fprintf(stderr, "compare_hiredis1: a worker of bench/compare (compare_hiredis1 --worker "
                    "hiredis1-async|hiredis1-sync ...)\n");
    return 2;
#endif

    cfg g = {"127.0.0.1", NULL, NULL, NULL, 6379, 3};
    const char *json = NULL, *md = NULL, *dat = NULL, *v, *clients_s = NULL, *scmode = "auto";
    const char *summary = NULL;
    const char *ops_s = "set,get";
    long depths[MAX_DEPTHS] = {1, 16, 64, 256};
    int ndepths = 4, rounds = 3;
    double scale = 1.0;
    static char self[4096];

    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "-h")) || (v = bench_opt(argc, argv, &i, "--host")))
            g.host = v;
        else if ((v = bench_opt(argc, argv, &i, "-p")) || (v = bench_opt(argc, argv, &i, "--port")))
            g.port = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "-u")) || (v = bench_opt(argc, argv, &i, "--unix")))
            g.unix_path = v;
        else if ((v = bench_opt(argc, argv, &i, "--depths")))
            ndepths = bench_parse_list(v, depths, MAX_DEPTHS);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")))
            rounds = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--ops")))
            ops_s = v;
        else if ((v = bench_opt(argc, argv, &i, "-s")))
            g.size = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--clients")))
            clients_s = v;
        else if ((v = bench_opt(argc, argv, &i, "--scale")))
            scale = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--perl-script")))
            g.perl_script = v;
        else if ((v = bench_opt(argc, argv, &i, "--syscalls")))
            scmode = v;
        else if ((v = bench_opt_eq(argv, i, "--json")))
            json = v;
        else if ((v = bench_opt(argc, argv, &i, "--md")))
            md = v;
        else if ((v = bench_opt(argc, argv, &i, "--dat")))
            dat = v;
        else if ((v = bench_opt(argc, argv, &i, "--summary")))
            summary = v;
        else if ((v = bench_opt(argc, argv, &i, "--cpu")))
            g_cpu = atoi(v);
        else
            usage();
    }
    if (ndepths < 1 || rounds < 1 || rounds > MAX_ROUNDS || scale <= 0 || g.size < 0) usage();
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) {
        fprintf(stderr, "compare: cannot find my own path\n");
        return 1;
    }
    self[sl] = '\0';
    g.self = self;
    int human = !json || *json;

    /* Which clients can run here. */
    for (int d = 0; d < NDC; d++) {
        dclient *dc = &dclients[d];
        if (clients_s) {
            char w[64];
            snprintf(w, sizeof w, ",%s,", dc->name);
            char *l = malloc(strlen(clients_s) + 3);
            sprintf(l, ",%s,", clients_s);
            int want = strstr(l, w) != NULL;
            free(l);
            if (!want) continue;
        }
        if (dc->worker == BENCH_HIREDIS1_ASYNC || dc->worker == BENCH_HIREDIS1_SYNC) {
#ifdef BENCH_HIREDIS1_EXE
            static char labels[2][64];
            int async = dc->worker == BENCH_HIREDIS1_ASYNC;
            snprintf(labels[async], sizeof labels[async], "hiredis-%s-%s", hiredis1_version,
                     async ? "async" : "sync");
            dc->label = labels[async];
            dc->exe = BENCH_HIREDIS1_EXE;
            /* The async driver needs libevent, as this binary's does. */
            dc->available = access(dc->exe, X_OK) == 0 &&
                            (!async || bench_client_available(BENCH_AREDIS_LIBEVENT));
#endif
#ifdef BENCH_HIREDIS0_VERSION
            /* Both versions in the tables: Debian's is labelled with its own. */
            if (dc->available) {
                static char labels0[2][64];
                int k = async ? DC_HI_ASYNC : DC_HI_SYNC;
                snprintf(labels0[async], sizeof labels0[async], "hiredis-%s-%s",
                         BENCH_HIREDIS0_VERSION, async ? "async" : "sync");
                dclients[k].label = labels0[async];
            }
#endif
        } else if (dc->kind == K_WORKER) {
            dc->available = bench_client_available((bench_client)dc->worker);
        } else if (dc->kind == K_RB) {
            char *av[] = {"redis-benchmark", "--version", NULL};
            dc->available = tool_works(av);
        } else if (g.perl_script && access(g.perl_script, R_OK) == 0) {
            char *av[] = {"perl", "-MRedis::Fast", "-e", "1", NULL};
            dc->available = tool_works(av);
        }
        if (!dc->available && human &&
            !((dc->worker == BENCH_HIREDIS1_ASYNC || dc->worker == BENCH_HIREDIS1_SYNC) &&
              !*hiredis1_version))
            fprintf(stderr, "compare: %s not available, skipped\n", dc->name);
    }
    if (!dclients[DC_AREDIS].available) {
        fprintf(stderr, "compare: the aredis client is needed\n");
        return 1;
    }
    int nops = 0, ops[2];
    if (strstr(ops_s, "set")) ops[nops++] = 0;
    if (strstr(ops_s, "get")) ops[nops++] = 1;
    if (!nops) usage();

    /* For GET the key must hold a value of the right size. */
    {
        char *av[48], buf[16][64];
        child c;
        build_argv(&g, DC_AREDIS, 0, 1, 1, NULL, av, buf);
        if (run_child(av, &c) != 0) {
            fprintf(stderr, "compare: cannot reach the server\n");
            return 1;
        }
    }

    static sample S[2][MAX_DEPTHS][MAX_CLIENTS][MAX_ROUNDS];
    double med[2][MAX_DEPTHS][MAX_CLIENTS][3]; /* ops/s, cpu per M, rw per cmd */
    long cnt[MAX_DEPTHS];
    /* Percent of the machine's CPU time the host took (steal) during each block. */
    double steal[2][MAX_DEPTHS];
    memset(med, 0, sizeof med);
    double t_start = bench_now();

    for (int oi = 0; oi < nops; oi++) {
        int op = ops[oi];
        for (int di = 0; di < ndepths; di++) {
            cnt[di] = (long)((double)default_count(depths[di]) * scale);
            if (cnt[di] < depths[di] * 4) cnt[di] = depths[di] * 4;
            if (human) {
                printf("%s, depth %ld, %ld commands, %d rounds:\n", op ? "GET" : "SET", depths[di],
                       cnt[di], rounds);
                fflush(stdout);
            }
            bench_cpustat st0, st1;
            bench_cpustat_take(&st0);
            for (int r = 0; r < rounds; r++) {
                for (int k = 0; k < NDC; k++) {
                    int d = (k + r) % NDC; /* rotate the order from round to round */
                    if (!dclients[d].available) continue;
                    if (run_one(&g, d, op, (int)depths[di], cnt[di], &S[op][di][d][r]) != 0)
                        return 1;
                }
            }
            bench_cpustat_take(&st1);
            steal[op][di] = bench_steal_pct(&st0, &st1);
            if (human && steal[op][di] >= 0)
                printf("  (host steal during these rounds: %.1f %% of the CPU time)\n",
                       steal[op][di]);
            for (int d = 0; d < NDC; d++) {
                if (!dclients[d].available) continue;
                double a[MAX_ROUNDS], b[MAX_ROUNDS], c[MAX_ROUNDS];
                long errors = 0;
                for (int r = 0; r < rounds; r++) {
                    a[r] = S[op][di][d][r].ops_s;
                    b[r] = S[op][di][d][r].cpu_per_m;
                    c[r] = S[op][di][d][r].rw_per_cmd;
                    errors += S[op][di][d][r].errors;
                }
                med[op][di][d][0] = bench_median(a, (size_t)rounds);
                med[op][di][d][1] = bench_median(b, (size_t)rounds);
                med[op][di][d][2] = bench_median(c, (size_t)rounds);
                if (human) {
                    char rw[32] = "     n/a";
                    if (med[op][di][d][2] >= 0) snprintf(rw, sizeof rw, "%8.4f", med[op][di][d][2]);
                    printf("  %-16s %-11s %12.0f ops/s %9.2f CPU s/M %s w+r/cmd%s\n",
                           dclients[d].name, dclients[d].how, med[op][di][d][0], med[op][di][d][1],
                           rw, errors ? "  ERRORS" : "");
                    fflush(stdout);
                }
                if (errors) {
                    fprintf(stderr, "compare: %s had %ld errors\n", dclients[d].name, errors);
                    return 1;
                }
            }
        }
    }
    double t_rounds = bench_now() - t_start;

    /*
     * Ratios are taken round by round (the clients of one round ran within
     * seconds of each other) and their median reported: load that comes and
     * goes on a shared machine then cancels out of the ratio.
     * ratio[op][depth][d] = aredis / d (ops/s); le = aredis-libevent / hiredis-async;
     * cpu = aredis / hiredis-async (CPU per command), cpu1 the same against hiredis 1.x.
     */
    double ratio[2][MAX_DEPTHS][MAX_CLIENTS], le_ratio[2][MAX_DEPTHS], cpu_ratio[2][MAX_DEPTHS];
    double cpu_ratio1[2][MAX_DEPTHS];
    memset(ratio, 0, sizeof ratio);
    memset(le_ratio, 0, sizeof le_ratio);
    memset(cpu_ratio, 0, sizeof cpu_ratio);
    memset(cpu_ratio1, 0, sizeof cpu_ratio1);
    for (int oi = 0; oi < nops; oi++)
        for (int di = 0; di < ndepths; di++) {
            int op = ops[oi];
            for (int d = 0; d < NDC; d++)
                if (dclients[d].available)
                    ratio[op][di][d] = paired(S[op][di], DC_AREDIS, d, rounds, 0);
            if (dclients[DC_HI_ASYNC].available) {
                if (dclients[DC_AREDIS_LE].available)
                    le_ratio[op][di] = paired(S[op][di], DC_AREDIS_LE, DC_HI_ASYNC, rounds, 0);
                cpu_ratio[op][di] = paired(S[op][di], DC_AREDIS, DC_HI_ASYNC, rounds, 1);
            }
            if (dclients[DC_HI1_ASYNC].available)
                cpu_ratio1[op][di] = paired(S[op][di], DC_AREDIS, DC_HI1_ASYNC, rounds, 1);
        }

    /* The syscall pass: SET only, one run per client and depth, minus a run of
     * one batch (start-up). */
    int tool = 0;
    if (!strcmp(scmode, "auto") || !strcmp(scmode, "perf")) {
        char *av[] = {"perf", "stat", "-x,", "-o", "/dev/null", "-e", "syscalls:sys_enter_read",
                      "--",   "true", NULL};
        if (tool_works(av)) tool = 1;
    }
    if (!tool && (!strcmp(scmode, "auto") || !strcmp(scmode, "strace"))) {
        char *av[] = {"strace", "-c", "-o", "/dev/null", "--", "true", NULL};
        if (tool_works(av)) tool = 2;
    }
    double sc[MAX_DEPTHS][MAX_CLIENTS][SC_N];
    memset(sc, 0, sizeof sc);
    if (tool) {
        if (human) {
            printf("syscalls per SET command (%s; a one-batch run subtracted):\n",
                   tool == 1 ? "perf stat, syscalls:sys_enter_*" : "strace -c -f");
            printf("  %-16s %6s %9s %9s %9s %9s\n", "client", "depth", "w+r", "poll", "ctl", "all");
        }
        for (int di = 0; di < ndepths; di++) {
            long n = cnt[di] / 2, n0 = depths[di];
            for (int d = 0; d < NDC; d++) {
                double full[SC_N], base[SC_N];
                if (!dclients[d].available) continue;
                if (count_syscalls(&g, tool, d, 0, (int)depths[di], n, full) != 0 ||
                    count_syscalls(&g, tool, d, 0, (int)depths[di], n0, base) != 0) {
                    fprintf(stderr, "compare: counting syscalls of %s failed\n", dclients[d].name);
                    continue;
                }
                for (int i = 0; i < SC_N; i++) {
                    double x = (full[i] - base[i]) / (double)(n - n0);
                    sc[di][d][i] = x > 0 ? x : 0;
                }
                if (human)
                    printf("  %-16s %6ld %9.4f %9.4f %9.4f %9.4f\n", dclients[d].name, depths[di],
                           sc[di][d][SC_RW], sc[di][d][SC_POLL], sc[di][d][SC_CTL],
                           sc[di][d][SC_ALL]);
            }
        }
    }
    double t_all = bench_now() - t_start;

    /* ---- Targets --------------------------------------------------------- */
    int at64 = -1;
    for (int di = 0; di < ndepths; di++)
        if (depths[di] == 64) at64 = di;
    int have_hi = dclients[DC_HI_ASYNC].available, have_rb = dclients[DC_RB].available;
    int t_ops = 1, t_cpu = -1, t_sys = -1;
    for (int oi = 0; oi < nops; oi++)
        for (int di = 0; di < ndepths; di++) {
            if (have_hi && ratio[ops[oi]][di][DC_HI_ASYNC] < 1.3) t_ops = 0;
            if (have_rb && ratio[ops[oi]][di][DC_RB] < 1.0) t_ops = 0;
        }
    double cpu64 = 0, hcpu64 = 0, cpu64_ratio = 0, sys64 = 0, sys64_proc = 0;
    if (at64 >= 0) {
        cpu64 = med[ops[0]][at64][DC_AREDIS][1];
        hcpu64 = med[ops[0]][at64][DC_HI_ASYNC][1];
        sys64_proc = med[ops[0]][at64][DC_AREDIS][2];
        sys64 = tool ? sc[at64][DC_AREDIS][SC_RW] : sys64_proc;
        cpu64_ratio = cpu_ratio[ops[0]][at64];
        if (have_hi) {
            t_cpu = 1;
            for (int oi = 0; oi < nops; oi++)
                if (cpu_ratio[ops[oi]][at64] > 0.5) t_cpu = 0;
        }
        t_sys = sys64 <= 0.05;
    }

    if (human) {
        static const int rcols[] = {DC_HI_ASYNC, DC_HI_SYNC, DC_HI1_ASYNC, DC_HI1_SYNC, DC_RB};
        int width[5];
        printf("\nratios (aredis / other, ops/s):\n  %-4s %6s", "op", "depth");
        for (int k = 0; k < 5; k++) {
            char h[80];
            int n = snprintf(h, sizeof h, "/%s", label(rcols[k]));
            width[k] = n > 14 ? n : 14;
            if (k == 4) width[k] = 16;
            if (k < 2 || k == 4 || dclients[rcols[k]].available) printf(" %*s", width[k], h);
        }
        printf("\n");
        for (int oi = 0; oi < nops; oi++)
            for (int di = 0; di < ndepths; di++) {
                double *q = ratio[ops[oi]][di];
                printf("  %-4s %6ld", ops[oi] ? "GET" : "SET", depths[di]);
                for (int k = 0; k < 5; k++)
                    if (k < 2 || k == 4 || dclients[rcols[k]].available)
                        printf(" %*.2fx", width[k] - 1, q[rcols[k]]);
                printf("\n");
            }
        printf("targets: ops >= 1.3x hiredis-async and >= redis-benchmark at every depth: %s\n",
               t_ops ? "met" : "MISSED");
        if (t_cpu >= 0)
            printf("         CPU/M at depth 64 <= 0.5x hiredis-async (%s %.2f vs %.2f s, "
                   "paired %.2fx): %s\n",
                   ops[0] ? "GET" : "SET", cpu64, hcpu64, cpu64_ratio, t_cpu ? "met" : "MISSED");
        if (t_sys >= 0)
            printf("         w+r syscalls/cmd at depth 64 <= 0.05 (%.4f): %s\n", sys64,
                   t_sys ? "met" : "MISSED");
        printf("(%.0f s of rounds, %.0f s in all)\n", t_rounds, t_all);
    }

    if (dat) {
        /* For gnuplot: one block per op, a row per depth, a column per client. */
        FILE *f = bench_open_out(dat);
        for (int oi = 0; oi < nops; oi++) {
            fprintf(f, "# %s\ndepth", ops[oi] ? "GET" : "SET");
            for (int d = 0; d < NDC; d++)
                if (dclients[d].available) fprintf(f, " %s", label(d));
            fprintf(f, "\n");
            for (int di = 0; di < ndepths; di++) {
                fprintf(f, "%ld", depths[di]);
                for (int d = 0; d < NDC; d++)
                    if (dclients[d].available) fprintf(f, " %.0f", med[ops[oi]][di][d][0]);
                fprintf(f, "\n");
            }
            fprintf(f, "\n\n");
        }
        bench_close_out(f);
    }

    if (json) {
        FILE *f = bench_open_out(json);
        fprintf(f,
                "{\"bench\":\"compare\",\"value_size\":%ld,\"rounds\":%d,\"transport\":\"%s\","
                "\"syscall_tool\":\"%s\",",
                g.size, rounds, g.unix_path ? "unix" : "tcp",
                tool == 1   ? "perf"
                : tool == 2 ? "strace"
                            : "none");
        if (dclients[DC_HI1_ASYNC].available || dclients[DC_HI1_SYNC].available)
            fprintf(f, "\"hiredis1_version\":\"%s\",", hiredis1_version);
        fprintf(f, "\"results\":[\n");
        int first = 1;
        for (int oi = 0; oi < nops; oi++)
            for (int di = 0; di < ndepths; di++)
                for (int d = 0; d < NDC; d++) {
                    if (!dclients[d].available) continue;
                    double *m = med[ops[oi]][di][d];
                    fprintf(f,
                            "%s  {\"op\":\"%s\",\"depth\":%ld,\"client\":\"%s\",\"how\":\"%s\","
                            "\"count\":%ld,\"ops_per_sec\":%.1f,\"cpu_s_per_million\":%.4f",
                            first ? "" : ",\n", ops[oi] ? "GET" : "SET", depths[di],
                            dclients[d].name, dclients[d].how, cnt[di], m[0], m[1]);
                    if (dclients[d].label) fprintf(f, ",\"label\":\"%s\"", dclients[d].label);
                    if (steal[ops[oi]][di] >= 0)
                        fprintf(f, ",\"host_steal_pct\":%.2f", steal[ops[oi]][di]);
                    if (m[2] >= 0) fprintf(f, ",\"aredis_counted_write_read_per_cmd\":%.5f", m[2]);
                    if (tool && ops[oi] == 0)
                        fprintf(f,
                                ",\"traced_per_cmd\":{\"write_read\":%.5f,\"poll\":%.5f,"
                                "\"epoll_ctl\":%.5f,\"all\":%.5f}",
                                sc[di][d][SC_RW], sc[di][d][SC_POLL], sc[di][d][SC_CTL],
                                sc[di][d][SC_ALL]);
                    fprintf(f, "}");
                    first = 0;
                }
        fprintf(f,
                "\n],\"targets\":{\"throughput\":%s,\"cpu_depth64\":%s,"
                "\"syscalls_depth64\":%s}}\n",
                t_ops ? "true" : "false",
                t_cpu < 0 ? "null"
                : t_cpu   ? "true"
                          : "false",
                t_sys < 0 ? "null"
                : t_sys   ? "true"
                          : "false");
        bench_close_out(f);
    }

    if (summary) {
        FILE *f = bench_open_out(summary);
        for (int oi = 0; oi < nops; oi++) {
            int op = ops[oi];
            fprintf(f, "- %s, %ld-byte value, one connection, depth", op ? "GET" : "SET", g.size);
            for (int di = 0; di < ndepths; di++)
                fprintf(f, "%s%ld", di ? "/" : " ", depths[di]);
            fprintf(f, ": aredis");
            for (int di = 0; di < ndepths; di++)
                fprintf(f, "%s%.0f", di ? "/" : " ", med[op][di][DC_AREDIS][0]);
            fprintf(f, " ops/s");
            static const int other[] = {DC_HI_ASYNC, DC_HI1_ASYNC, DC_HI_SYNC, DC_RB};
            int first = 1;
            for (int k = 0; k < 4; k++) {
                if (!dclients[other[k]].available) continue;
                fprintf(f, "%s", first ? " =" : ";");
                first = 0;
                for (int di = 0; di < ndepths; di++)
                    fprintf(f, "%s%.2f", di ? "/" : " ", ratio[op][di][other[k]]);
                fprintf(f, "× %s", label(other[k]));
            }
            fprintf(f, ".\n");
        }
        if (at64 >= 0 && have_hi)
            for (int oi = 0; oi < nops; oi++) {
                fprintf(
                    f, "- Client CPU per million %s at depth 64: aredis %.2f s, %s %.2f s (%.2f×)",
                    ops[oi] ? "GETs" : "SETs", med[ops[oi]][at64][DC_AREDIS][1], label(DC_HI_ASYNC),
                    med[ops[oi]][at64][DC_HI_ASYNC][1], cpu_ratio[ops[oi]][at64]);
                if (dclients[DC_HI1_ASYNC].available)
                    fprintf(f, ", %s %.2f s (%.2f×)", label(DC_HI1_ASYNC),
                            med[ops[oi]][at64][DC_HI1_ASYNC][1], cpu_ratio1[ops[oi]][at64]);
                fprintf(f, ".\n");
            }
        if (at64 >= 0)
            fprintf(f, "- Write+read syscalls per command at depth 64: aredis %.4f.\n", sys64);
        bench_close_out(f);
    }

    if (md) {
        FILE *f = bench_open_out(md);
        for (int oi = 0; oi < nops; oi++) {
            int op = ops[oi];
            fprintf(f, "#### %s, %ld-byte value: ops/s (median of %d rounds)\n\n| depth |",
                    op ? "GET" : "SET", g.size, rounds);
            for (int d = 0; d < NDC; d++)
                if (dclients[d].available) fprintf(f, " %s |", label(d));
            fprintf(f, "\n|---:|");
            for (int d = 0; d < NDC; d++)
                if (dclients[d].available) fprintf(f, "---:|");
            fprintf(f, "\n");
            for (int di = 0; di < ndepths; di++) {
                fprintf(f, "| %ld |", depths[di]);
                for (int d = 0; d < NDC; d++)
                    if (dclients[d].available) {
                        double x = med[op][di][d][0], best = 0;
                        for (int e = 0; e < NDC; e++)
                            if (dclients[e].available && med[op][di][e][0] > best)
                                best = med[op][di][e][0];
                        fprintf(f, x == best ? " **%.0f** |" : " %.0f |", x);
                    }
                fprintf(f, "\n");
            }
            fprintf(f, "\n");
        }
        fprintf(f, "#### Client CPU seconds (user+sys) per million commands\n\n| op | depth |");
        for (int d = 0; d < NDC; d++)
            if (dclients[d].available) fprintf(f, " %s |", label(d));
        fprintf(f, "\n|---|---:|");
        for (int d = 0; d < NDC; d++)
            if (dclients[d].available) fprintf(f, "---:|");
        fprintf(f, "\n");
        for (int oi = 0; oi < nops; oi++)
            for (int di = 0; di < ndepths; di++) {
                fprintf(f, "| %s | %ld |", ops[oi] ? "GET" : "SET", depths[di]);
                for (int d = 0; d < NDC; d++)
                    if (dclients[d].available) fprintf(f, " %.2f |", med[ops[oi]][di][d][1]);
                fprintf(f, "\n");
            }
        if (tool) {
            fprintf(f,
                    "\n#### Syscalls per SET command by kind (%s, start-up subtracted)\n\n"
                    "w+r = read/write/readv/writev/recv*/send*; poll = epoll_wait/poll/"
                    "select; ctl = epoll_ctl.\n\n| depth | client | w+r | poll | ctl | all "
                    "counted |\n|---:|---|---:|---:|---:|---:|\n",
                    tool == 1 ? "`perf stat -e syscalls:sys_enter_*`" : "`strace -c -f`");
            for (int di = 0; di < ndepths; di++)
                for (int d = 0; d < NDC; d++)
                    if (dclients[d].available)
                        fprintf(f, "| %ld | %s | %.4f | %.4f | %.4f | %.4f |\n", depths[di],
                                label(d), sc[di][d][SC_RW], sc[di][d][SC_POLL], sc[di][d][SC_CTL],
                                sc[di][d][SC_ALL]);
        }
        /* The hiredis 1.x columns only when it was built (HIREDIS_DIR). */
        int h1a = dclients[DC_HI1_ASYNC].available, h1s = dclients[DC_HI1_SYNC].available;
        fprintf(f,
                "\n#### Ratios, aredis (built-in loop) / other, ops/s\n\n"
                "Each ratio is the median of the per-round ratios (the two clients ran "
                "seconds apart).\n\n"
                "| op | depth | / %s | / %s |",
                label(DC_HI_ASYNC), label(DC_HI_SYNC));
        if (h1a) fprintf(f, " / %s |", label(DC_HI1_ASYNC));
        if (h1s) fprintf(f, " / %s |", label(DC_HI1_SYNC));
        fprintf(f,
                " / redis-benchmark | aredis-libevent / %s | target (≥ 1.3× %s, ≥ 1× "
                "redis-benchmark) | host steal |\n|---|---:|---:|---:|",
                label(DC_HI_ASYNC), label(DC_HI_ASYNC));
        fprintf(f, "%s%s---:|---:|:-:|---:|\n", h1a ? "---:|" : "", h1s ? "---:|" : "");
        for (int oi = 0; oi < nops; oi++)
            for (int di = 0; di < ndepths; di++) {
                double *q = ratio[ops[oi]][di];
                int ok = (!have_hi || q[DC_HI_ASYNC] >= 1.3) && (!have_rb || q[DC_RB] >= 1.0);
                double cells[6];
                int nc = 0;
                cells[nc++] = q[DC_HI_ASYNC];
                cells[nc++] = q[DC_HI_SYNC];
                if (h1a) cells[nc++] = q[DC_HI1_ASYNC];
                if (h1s) cells[nc++] = q[DC_HI1_SYNC];
                cells[nc++] = q[DC_RB];
                cells[nc++] = le_ratio[ops[oi]][di];
                fprintf(f, "| %s | %ld |", ops[oi] ? "GET" : "SET", depths[di]);
                for (int k = 0; k < nc; k++) {
                    if (cells[k] > 0)
                        fprintf(f, " %.2f× |", cells[k]);
                    else
                        fprintf(f, " – |");
                }
                fprintf(f, " %s |", mark(ok));
                if (steal[ops[oi]][di] >= 0)
                    fprintf(f, " %.1f %% |\n", steal[ops[oi]][di]);
                else
                    fprintf(f, " – |\n");
            }
        fprintf(f, "\nHost steal: the share of this virtual machine's CPU time that the host "
                   "gave to other work while the rounds of that row ran (from /proc/stat). "
                   "Above a few percent the row's absolute numbers are depressed; the ratios, "
                   "taken round by round, less so.\n");
        fprintf(f, "\n#### Targets\n\n| target | measured | |\n|---|---|:-:|\n");
        fprintf(f,
                "| ops/s ≥ 1.3× %s and ≥ redis-benchmark, every depth, one "
                "connection | see ratios above | %s |\n",
                label(DC_HI_ASYNC), mark(t_ops));
        if (t_cpu >= 0)
            for (int oi = 0; oi < nops; oi++)
                fprintf(f,
                        "| client CPU per million commands ≤ 0.5× %s at depth 64 "
                        "(%s) | %.2f s vs %.2f s (%.2f×) | %s |\n",
                        label(DC_HI_ASYNC), ops[oi] ? "GET" : "SET",
                        med[ops[oi]][at64][DC_AREDIS][1], med[ops[oi]][at64][DC_HI_ASYNC][1],
                        cpu_ratio[ops[oi]][at64], mark(cpu_ratio[ops[oi]][at64] <= 0.5));
        if (t_sys >= 0)
            fprintf(f,
                    "| ≤ 0.05 write+read syscalls per command at depth 64 | %.4f (%s); "
                    "%.4f by aredis's own counters at full speed | %s |\n",
                    sys64, tool ? "traced pass" : "aredis's counters", sys64_proc, mark(t_sys));
        bench_close_out(f);
    }
    return 0;
}
