/*
 * bench/common.c — clocks, the process's CPU time, statistics, option parsing and
 * output helpers shared by the bench programs (see common.h). The client
 * drivers live in clients.c.
 */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_mark_take(bench_mark *m) {
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    m->user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    m->sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    m->t = bench_now();
}

/* ---- Statistics --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_sort(double *v, size_t n) { qsort(v, n, sizeof *v, cmp_double); }

void bench_cpustat_take(bench_cpustat *s) {
    s->total = s->steal = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return;
    unsigned long long v[8] = {0};
    /* cpu  user nice system idle iowait irq softirq steal ... */
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            s->total += v[i];
        s->steal = v[7];
    }
    fclose(f);
}

double bench_steal_pct(const bench_cpustat *a, const bench_cpustat *b) {
    if (!a->total || b->total <= a->total || b->steal < a->steal) return -1;
    return 100.0 * (double)(b->steal - a->steal) / (double)(b->total - a->total);
}

double bench_median(double *v, size_t n) {
    if (!n) return 0;
    bench_sort(v, n);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_percentile(const double *sorted, size_t n, double p) {
    if (!n) return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

/* ---- Options ------------------------------------------------------------ */

int bench_parse_list(const char *s, long *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        out[n++] = v;
        s = end;
        if (*s == ',') s++;
    }
    return n;
}

const char *bench_opt(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", name);
        exit(2);
    }
    return argv[++*i];
}

const char *bench_opt_eq(char **argv, int i, const char *name) {
    size_t n = strlen(name);
    const char *a = argv[i];

    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    return a[n] == '\0' ? "" : NULL;
}

/* ---- Output ------------------------------------------------------------- */

FILE *bench_open_out(const char *path) {
    FILE *f;
    if (!path || !*path || !strcmp(path, "-")) return stdout;
    f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

void bench_close_out(FILE *f) {
    if (f && f != stdout)
        fclose(f);
    else
        fflush(stdout);
}

const char *bench_fmt_rate(double v, char *buf, size_t n) {
    if (v >= 1e6)
        snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
    return buf;
}

long long bench_callgrind_refs(const char *path) {
    FILE *f = fopen(path, "r");
    long long ir = -1;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "I   refs:");
        if (!p) p = strstr(line, "I refs:");
        if (!p) continue;
        p = strchr(p, ':') + 1;
        long long v = 0;
        for (; *p; p++)
            if (*p >= '0' && *p <= '9') v = v * 10 + (*p - '0');
        ir = v;
    }
    if (f) fclose(f);
    return ir;
}

/* ---- Child runs ----------------------------------------------------------- */

int bench_run_capture(const char *const *av, const char *errlog, char *buf, size_t cap) {
    int pfd[2];
    buf[0] = '\0';
    if (cap < 2 || pipe(pfd) != 0) return -1;
    fflush(NULL); /* nothing buffered is written twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* the bench gone, its runs go too */
        if (getppid() != parent) _exit(1);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        if (errlog && !freopen(errlog, "w", stderr)) _exit(127);
        execvp(av[0], (char *const *)av);
        fprintf(stderr, "bench: cannot run %s: %s\n", av[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(pfd[0], buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len >= cap - 1) len = 0; /* only the tail matters: the RESULT line */
    }
    buf[len] = '\0';
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

double bench_field(const char *s, const char *key, double def) {
    size_t n = strlen(key);
    for (const char *p = s; (p = strstr(p, key)); p += n)
        if ((p == s || p[-1] == ' ') && p[n] == '=') return strtod(p + n + 1, NULL);
    return def;
}
