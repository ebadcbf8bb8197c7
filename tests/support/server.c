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
static int free_port(void) {
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

static int spawn(tsp_proc *p) {
    const char *bin = tsp_server_path();
    if (p->log[0]) { /* an empty log: a restart must not see the previous run's line */
        FILE *lf = fopen(p->log, "w");
        if (lf) fclose(lf);
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
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
    return -1;
}

void tsp_make_dir(tsp_proc *p, const char *prefix) {
    const char *tmp = getenv("TMPDIR");
    snprintf(p->dir, sizeof p->dir, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->conf, sizeof p->conf, "%s/redis.conf", p->dir);
}

int tsp_start(tsp_proc *p, void (*write_conf)(tsp_proc *p, const void *arg), const void *arg) {
    if (!g_atexit_done) {
        g_live_owner = getpid();
        atexit(kill_all_live);
        g_atexit_done = 1;
    }
    for (int attempt = 0; attempt < 20; attempt++) {
        p->port = free_port();
        assert_true(p->port > 0);
        write_conf(p, arg);
        if (spawn(p) == 0) {
            p->next_live = g_live;
            g_live = p;
            return 0;
        }
    }
    return -1;
}

void tsp_kill(tsp_proc *p) {
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
}

int tsp_restart(tsp_proc *p) {
    tsp_kill(p);
    /* The same port: retry briefly while the kernel releases it. */
    for (int attempt = 0; attempt < 100; attempt++) {
        if (spawn(p) == 0) return 0;
        tsp_sleep_ms(50);
    }
    return -1;
}

void tsp_stop(tsp_proc *p) {
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
            "daemonize no\nlogfile %s/redis.log\nprotected-mode no\n",
            p->port, p->dir, p->dir);
    if (s->with_unix) fprintf(f, "unixsocket %s\nunixsocketperm 700\n", s->unix_path);
    for (int i = 0; conf && conf[i]; i++)
        fprintf(f, "%s\n", conf[i]);
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
    fail_msg("redis-server did not start (see %s/redis.log)", s->p.dir);
    return NULL;
}

ts_server *ts_server_start_default(void) { return ts_server_start(NULL, 0); }

int ts_server_port(const ts_server *s) { return s->p.port; }
const char *ts_server_host(const ts_server *s) {
    (void)s;
    return "127.0.0.1";
}
const char *ts_server_unix(const ts_server *s) { return s->with_unix ? s->unix_path : NULL; }
const char *ts_server_dir(const ts_server *s) { return s->p.dir; }
pid_t ts_server_pid(const ts_server *s) { return s->p.pid; }

void ts_server_kill(ts_server *s) { tsp_kill(&s->p); }

void ts_server_restart(ts_server *s) {
    if (tsp_restart(&s->p) != 0) fail_msg("redis-server did not restart on port %d", s->p.port);
}

void ts_server_stop(ts_server *s) {
    if (!s) return;
    tsp_stop(&s->p);
    free(s);
}

int ts_server_major_version(void) {
    const char *bin = tsp_server_path();
    if (!bin) return 0;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s --version", bin);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[256] = {0};
    int major = 0;
    if (fgets(line, sizeof line, p)) {
        const char *v = strstr(line, "v=");
        if (v) major = atoi(v + 2);
    }
    pclose(p);
    return major;
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
