/*
 * Test support: start, kill, restart and stop real redis-server processes on
 * free loopback ports, each in its own temp dir. Servers die with the test
 * process (PR_SET_PDEATHSIG + an atexit sweep), so a failing test never
 * leaves one behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server_core.h"
#include "ts.h"

/* ---- The core: any redis-server process ----------------------------------- */

static tsp_proc *g_live;
static int g_atexit_done;
static pid_t g_live_owner;

const char *tsp_server_path(void) {
    static char path[512];
    const char *env = getenv("REDIS_SERVER");
    if (env && *env) return env;
    const char *cands[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server", NULL};
    for (int i = 0; cands[i]; i++)
        if (access(cands[i], X_OK) == 0) return cands[i];
    const char *p = getenv("PATH");
    if (!p) return NULL;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", p);
    for (char *save = NULL, *d = strtok_r(tmp, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/redis-server", d);
        if (access(path, X_OK) == 0) return path;
    }
    return NULL;
}

/* At exit (a failed test skips its stop()): kill the servers, and remove
 * the dirs that ask for it. Only in the process that started them: not in
 * a forked child exiting. */
static void kill_all_live(void) {
    if (getpid() != g_live_owner) return;
    for (tsp_proc *p = g_live; p; p = p->next_live) {
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
        }
        if (p->rm_dir_at_exit) tsp_rm_rf(p->dir);
    }
}

/* A free port: bind port 0, read it back, close. The small race with other
 * processes is accepted; tsp_start() retries on a bind failure. */
int tsp_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

uint64_t ts_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tsp_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void tsp_rm_rf(const char *dir) {
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
}

/* A blocking PING over a plain socket: 1 when the server answers +PONG (or a
 * NOAUTH error, which also proves it is up). */
int tsp_ready_ping(const tsp_proc *p) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            ok = strncmp(buf, "+PONG", 5) == 0 || strncmp(buf, "-NOAUTH", 7) == 0;
        }
    }
    close(fd);
    return ok;
}

/* Does the log say the server is ready? (A TLS-only server has no plain
 * port to PING.) */
int tsp_ready_log(const tsp_proc *p) {
    FILE *f = fopen(p->log, "r");
    if (!f) return 0;
    char line[1024];
    int ready = 0;
    while (!ready && fgets(line, sizeof line, f))
        ready = strstr(line, "Ready to accept connections") != NULL;
    fclose(f);
    return ready;
}

static void truncate_file(const char *path) {
    if (!path[0]) return;
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

/* Start p and wait until it is ready: 0; -1 when it exited (port taken,
 * bad config); -2 when it was still not ready after 10 s (then killed). */
static int spawn(tsp_proc *p) {
    const char *bin = tsp_server_path();
    /* An empty log: a restart must not see the previous run's lines. */
    truncate_file(p->log);
    truncate_file(p->err);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            if (devnull > 2) close(devnull);
        }
        /* Config errors come on stderr, before the log is opened. */
        int err = p->err[0] ? open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
        if (err >= 0) {
            dup2(err, 2);
            if (err > 2) close(err);
        }
        if (chdir(p->dir) != 0) _exit(126);
        execl(bin, bin, p->conf, (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    /* Wait until it is ready, or died (port taken, bad config). */
    uint64_t until = ts_now_ms() + 10000;
    while (ts_now_ms() < until) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            p->pid = 0;
            return -1;
        }
        if (p->ready(p)) return 0;
        tsp_sleep_ms(5); /* waiting for an external process: polling is the only way */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    p->pid = 0;
    return -2;
}

void tsp_make_dir(tsp_proc *p, const char *prefix) {
    const char *tmp = getenv("TMPDIR");
    snprintf(p->dir, sizeof p->dir, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->conf, sizeof p->conf, "%s/redis.conf", p->dir);
    snprintf(p->log, sizeof p->log, "%s/redis.log", p->dir);
    snprintf(p->err, sizeof p->err, "%s/stderr.log", p->dir);
}

static int file_has(const char *path, const char *s) {
    if (!path[0]) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, s) != NULL;
    fclose(f);
    return found;
}

int tsp_output_has(const tsp_proc *p, const char *s) {
    return file_has(p->log, s) || file_has(p->err, s);
}

static int dump_file(const char *path, const char *what) {
    if (!path[0]) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    for (; fgets(line, sizeof line, f); n++)
        fprintf(stderr, "# %s: %s%s", what, line, strchr(line, '\n') ? "" : "\n");
    fclose(f);
    return n;
}

int tsp_dump_output(const tsp_proc *p) {
    return dump_file(p->err, "server stderr") + dump_file(p->log, "server log");
}

/* Did the last start fail because its port was taken meanwhile (the small
 * race of tsp_free_port())? A server that exited for any other reason (a
 * config error, a missing feature) would fail again the same way. */
static int port_was_taken(const tsp_proc *p) {
    return tsp_output_has(p, "Address already in use") ||
           tsp_output_has(p, "Could not create server TCP listening socket") ||
           tsp_output_has(p, "Failed listening on port");
}

int tsp_start(tsp_proc *p, void (*write_conf)(tsp_proc *p, const void *arg), const void *arg) {
    if (!g_atexit_done) {
        g_live_owner = getpid();
        atexit(kill_all_live);
        g_atexit_done = 1;
    }
    for (int attempt = 0; attempt < 20; attempt++) {
        p->port = tsp_free_port();
        assert_true(p->port > 0);
        write_conf(p, arg);
        int r = spawn(p);
        if (r == 0) {
            p->next_live = g_live;
            g_live = p;
            return 0;
        }
        if (r == -1 && !port_was_taken(p)) return -1;
    }
    return -1;
}

void tsp_kill(tsp_proc *p) {
    if (p && p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
}

int tsp_restart(tsp_proc *p) {
    if (!p) return -1;
    tsp_kill(p);
    /* The same port: retry briefly while the kernel releases it. */
    for (int attempt = 0; attempt < 100; attempt++) {
        if (spawn(p) == 0) return 0;
        tsp_sleep_ms(50);
    }
    return -1;
}

void tsp_stop(tsp_proc *p) {
    if (!p) return;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        uint64_t until = ts_now_ms() + 3000;
        int done = 0;
        while (!done && ts_now_ms() < until) {
            if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
                done = 1;
            else
                tsp_sleep_ms(5);
        }
        if (!done) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        p->pid = 0;
    }
    for (tsp_proc **pp = &g_live; *pp; pp = &(*pp)->next_live) {
        if (*pp == p) {
            *pp = p->next_live;
            break;
        }
    }
    tsp_rm_rf(p->dir);
}

/* ---- Plain servers ------------------------------------------------------ */

struct ts_server {
    tsp_proc p; /* first: a tsp_proc * is a ts_server * */
    char unix_path[300];
    int with_unix;
};

static void require_server_binary(void) {
    if (tsp_server_path()) return;
    if (getenv("CI")) {
        fprintf(stderr, "FAIL: redis-server not found (CI must have it: run scripts/deps.sh)\n");
        exit(1);
    }
    fprintf(stderr, "SKIP: redis-server not found; install Debian's redis-server "
                    "(make test does it) to run this test\n");
    exit(77);
}

static void write_conf(tsp_proc *p, const void *arg) {
    const char *const *conf = arg;
    const ts_server *s = (const ts_server *)p;
    FILE *f = fopen(p->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n"
            "daemonize no\nlogfile %s\nprotected-mode no\n",
            p->port, p->dir, p->log);
    if (s->with_unix) fprintf(f, "unixsocket %s\nunixsocketperm 700\n", s->unix_path);
    tsp_write_conf_lines(f, conf);
    fclose(f);
}

ts_server *ts_server_start(const char *const *conf, int with_unix) {
    require_server_binary();
    ts_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    tsp_make_dir(&s->p, "aredis-test");
    s->p.ready = tsp_ready_ping;
    snprintf(s->unix_path, sizeof s->unix_path, "%s/redis.sock", s->p.dir);
    s->with_unix = with_unix;
    if (tsp_start(&s->p, write_conf, conf) == 0) return s;
    int said = tsp_dump_output(&s->p); /* above; the dir goes */
    tsp_rm_rf(s->p.dir);
    free(s);
    fail_msg("%s (%s) did not start (%s)", tsp_server_path(), ts_server_describe(),
             said ? "its output is above" : "it printed nothing");
    return NULL;
}

ts_server *ts_server_start_default(void) { return ts_server_start(NULL, 0); }

int ts_server_port(const ts_server *s) {
    assert_non_null(s);
    return s->p.port;
}
const char *ts_server_host(const ts_server *s) {
    (void)s;
    return "127.0.0.1";
}
const char *ts_server_unix(const ts_server *s) { return s && s->with_unix ? s->unix_path : NULL; }
const char *ts_server_dir(const ts_server *s) {
    assert_non_null(s);
    return s->p.dir;
}
pid_t ts_server_pid(const ts_server *s) { return s ? s->p.pid : 0; }

void ts_server_kill(ts_server *s) {
    if (s) tsp_kill(&s->p);
}

void ts_server_restart(ts_server *s) {
    assert_non_null(s);
    if (tsp_restart(&s->p) == 0) return;
    int said = tsp_dump_output(&s->p);
    fail_msg("redis-server did not restart on port %d (%s)", s->p.port,
             said ? "its output is above" : "it printed nothing");
}

void ts_server_stop(ts_server *s) {
    if (!s) return;
    tsp_stop(&s->p);
    free(s);
}

/* ---- The server's version and features ---------------------------------- */

/* "7.0.15" (or "8.0.1-rc1", "255.255.255"): major, minor, patch. */
static void parse_triple(const char *v, ts_version *out) {
    out->major = atoi(v);
    const char *d = strchr(v, '.');
    out->minor = d ? atoi(d + 1) : 0;
    d = d ? strchr(d + 1, '.') : NULL;
    out->patch = d ? atoi(d + 1) : 0;
}

/* The Redis release a Valkey matches feature-wise: every Valkey so far
 * (7.2.x, 8.0, 8.1) reports redis_version 7.2.4 and has Redis 7.2's
 * commands and fields. */
#define VALKEY_REDIS_LEVEL 702

/* The first line "<binary> --version" prints (no shell: the path may have
 * spaces), in line; 0 on success. */
static int version_line(const char *bin, char *line, size_t n) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 2);
        }
        execl(bin, bin, "--version", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n &&
           ((r = read(fds[0], line + got, n - 1 - got)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0) got += (size_t)r;
    line[got] = '\0';
    close(fds[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    line[strcspn(line, "\n")] = '\0';
    return got > 0 ? 0 : -1;
}

const ts_version *ts_server_version(void) {
    static ts_version v;
    static char for_bin[512];
    static int known;
    const char *bin = tsp_server_path();
    if (known && bin && strcmp(bin, for_bin) == 0) return &v;
    memset(&v, 0, sizeof v);
    v.product = "unknown";
    char line[512];
    if (bin && version_line(bin, line, sizeof line) == 0) {
        /* "Redis server v=7.0.15 sha=...", "Valkey server v=8.0.1 sha=..." */
        const char *at = strstr(line, " v=");
        if (at) parse_triple(at + 3, &v);
        if (strncmp(line, "Valkey", 6) == 0) {
            v.product = "Valkey";
            v.redis_level = v.major ? VALKEY_REDIS_LEVEL : 0;
        } else if (strncmp(line, "Redis", 5) == 0) {
            v.product = "Redis";
            v.redis_level = v.major * 100 + v.minor;
        }
    }
    if (bin) {
        snprintf(for_bin, sizeof for_bin, "%s", bin);
        known = 1;
    }
    return &v;
}

int ts_server_major_version(void) { return ts_server_version()->major; }

const char *ts_server_describe(void) {
    static char d[96];
    const ts_version *v = ts_server_version();
    if (!v->major)
        snprintf(d, sizeof d, "an unknown server");
    else if (strcmp(v->product, "Redis") == 0)
        snprintf(d, sizeof d, "Redis %d.%d.%d", v->major, v->minor, v->patch);
    else
        snprintf(d, sizeof d, "%s %d.%d.%d (Redis %d.%d features)", v->product, v->major, v->minor,
                 v->patch, v->redis_level / 100, v->redis_level % 100);
    return d;
}

/* The value of "<key>:" at the start of a line of INFO's text, or NULL. */
static const char *info_field(const char *info, const char *key) {
    size_t n = strlen(key);
    for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ':') return p + n + 1;
    return NULL;
}

int ts_info_version(const char *info, ts_version *out) {
    memset(out, 0, sizeof *out);
    out->product = "unknown";
    const char *redis = info_field(info, "redis_version");
    const char *valkey = info_field(info, "valkey_version");
    if (!redis && !valkey) return -1;
    ts_version r = {0};
    if (redis) parse_triple(redis, &r);
    if (valkey) {
        parse_triple(valkey, out);
        out->product = "Valkey";
        out->redis_level = redis ? r.major * 100 + r.minor : VALKEY_REDIS_LEVEL;
    } else {
        *out = r;
        /* A server_name:valkey with no valkey_version is not known to exist;
         * anything else that says redis_version is Redis feature-wise. */
        out->product = "Redis";
        out->redis_level = r.major * 100 + r.minor;
    }
    return 0;
}

static const struct {
    int level; /* the first Redis release with it, major * 100 + minor */
    const char *name;
} k_features[TS_FEATURE_COUNT] = {
    [TS_FEATURE_CLIENT_INFO] = {602, "CLIENT INFO (Redis 6.2+)"},
    [TS_FEATURE_GETEX] = {602, "GETEX (Redis 6.2+)"},
    [TS_FEATURE_CLIENT_INFO_RESP] = {700, "the resp= field of CLIENT INFO (Redis 7.0+)"},
    [TS_FEATURE_DEBUG_DIRECTIVE] = {700, "the enable-debug-command directive (Redis 7.0+)"},
    [TS_FEATURE_SPUBLISH] = {700, "sharded pub/sub, SPUBLISH (Redis 7.0+)"},
    [TS_FEATURE_CLIENT_SETINFO] = {702, "CLIENT SETINFO (Redis 7.2+, Valkey)"},
    [TS_FEATURE_HASH_FIELD_TTL] = {704, "hash field expiry, HEXPIRE (Redis 7.4+; not Valkey 8)"},
};

int ts_server_has(ts_feature f) {
    assert_true(f >= 0 && f < TS_FEATURE_COUNT);
    int level = ts_server_version()->redis_level;
    return level == 0 || level >= k_features[f].level;
}

const char *ts_feature_name(ts_feature f) {
    assert_true(f >= 0 && f < TS_FEATURE_COUNT);
    return k_features[f].name;
}

void ts_require(ts_feature f) {
    if (ts_server_has(f)) return;
    ts_log("skipped: needs %s; the server is %s", ts_feature_name(f), ts_server_describe());
    skip();
}

void ts_require_or_exit(ts_feature f) {
    if (ts_server_has(f)) return;
    fprintf(stderr, "SKIP: needs %s; the server is %s\n", ts_feature_name(f), ts_server_describe());
    exit(77);
}

/* Config directives a server may not know, and the feature that brings
 * them: without it the line is left out (and said so once). */
static const struct {
    const char *directive;
    ts_feature needs;
    const char *why_not_needed;
} k_optional_directives[] = {
    {"enable-debug-command", TS_FEATURE_DEBUG_DIRECTIVE, "DEBUG is always allowed before 7.0"},
};

void tsp_write_conf_lines(FILE *f, const char *const *lines) {
    static int said[sizeof k_optional_directives / sizeof k_optional_directives[0]];
    for (int i = 0; lines && lines[i]; i++) {
        int keep = 1;
        for (size_t k = 0; k < sizeof k_optional_directives / sizeof k_optional_directives[0];
             k++) {
            const char *d = k_optional_directives[k].directive;
            size_t n = strlen(d);
            if (strncmp(lines[i], d, n) == 0 && (lines[i][n] == ' ' || lines[i][n] == '\0') &&
                !ts_server_has(k_optional_directives[k].needs)) {
                keep = 0;
                if (!said[k]++)
                    ts_log("%s: config line \"%s\" left out (%s)", ts_server_describe(), lines[i],
                           k_optional_directives[k].why_not_needed);
            }
        }
        if (keep) fprintf(f, "%s\n", lines[i]);
    }
}

int ts_dead_port(void) {
    ts_server *s = ts_server_start_default();
    int port = ts_server_port(s);
    ts_server_stop(s);
    return port;
}

void ts_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
