/*
 * Test support for TLS: certificates made at test time by
 * scripts/gen-test-certs.sh, and TLS-only redis-server processes.
 *
 * The plain fixture (server.c) waits for a server by a plain-text PING on
 * its port; a TLS-only server has no plain port, so this file spawns its
 * own and waits for the log line "Ready to accept connections" (the log is
 * emptied before every start, so a restart cannot see the old line).
 * Servers die with the test process (PR_SET_PDEATHSIG + an atexit sweep).
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

#include "tls.h"

/* ---- Skips and small helpers -------------------------------------------- */

static void skip_or_fail(const char *what) {
    if (getenv("CI")) {
        fprintf(stderr, "FAIL: %s (CI must have it: run scripts/deps.sh)\n", what);
        exit(1);
    }
    fprintf(stderr, "SKIP: %s\n", what);
    exit(77);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int find_in_path(const char *name, char *out, size_t outlen) {
    const char *p = getenv("PATH");
    if (!p) p = "/usr/local/bin:/usr/bin:/bin";
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", p);
    for (char *save = NULL, *d = strtok_r(tmp, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, outlen, "%s/%s", d, name);
        if (access(out, X_OK) == 0) return 1;
    }
    return 0;
}

static int run_wait(const char *const argv[]) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void rm_rf(const char *dir) {
    const char *argv[] = {"rm", "-rf", dir, NULL};
    run_wait(argv);
}

/* ---- Certificates ----------------------------------------------------- */

static char g_certs[300];
static pid_t g_certs_owner;

static void remove_certs(void) {
    /* Only the process that made them: not a forked child exiting. */
    if (g_certs[0] && getpid() == g_certs_owner) rm_rf(g_certs);
}

static void script_path(char *out, size_t outlen) {
    const char *src = getenv("AREDIS_SOURCE_DIR");
    if (src && *src) {
        snprintf(out, outlen, "%s/scripts/gen-test-certs.sh", src);
        return;
    }
    /* __FILE__ is absolute in CMake builds: <src>/tests/support/tls.c */
    const char *f = __FILE__;
    const char *tail = strstr(f, "tests/support/tls.c");
    if (tail && f[0] == '/') {
        snprintf(out, outlen, "%.*sscripts/gen-test-certs.sh", (int)(tail - f), f);
        return;
    }
    snprintf(out, outlen, "scripts/gen-test-certs.sh");
}

const char *ts_tls_certs_dir(void) {
    if (g_certs[0]) return g_certs;
    char openssl[512], script[1024];
    if (!find_in_path("openssl", openssl, sizeof openssl))
        skip_or_fail("the openssl command is needed to make test certificates");
    script_path(script, sizeof script);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "cannot find %s (set AREDIS_SOURCE_DIR)\n", script);
        skip_or_fail("scripts/gen-test-certs.sh not found");
    }
    const char *tmp = getenv("TMPDIR");
    char dir[sizeof g_certs];
    snprintf(dir, sizeof dir, "%s/aredis-certs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    const char *argv[] = {"sh", script, dir, NULL};
    int rc = run_wait(argv);
    if (rc != 0) {
        rm_rf(dir);
        fail_msg("%s failed (exit %d)", script, rc);
    }
    memcpy(g_certs, dir, sizeof g_certs);
    g_certs_owner = getpid();
    atexit(remove_certs);
    return g_certs;
}

const char *ts_tls_file(const char *name) {
    /* Interned: the same name gives the same string, kept until exit. */
    static struct {
        char name[64];
        char path[400];
    } files[32];
    static size_t nfiles;
    const char *dir = ts_tls_certs_dir();
    for (size_t i = 0; i < nfiles; i++)
        if (strcmp(files[i].name, name) == 0) return files[i].path;
    assert_true(nfiles < sizeof files / sizeof files[0]);
    assert_true(strlen(name) < sizeof files[0].name);
    snprintf(files[nfiles].name, sizeof files[0].name, "%s", name);
    snprintf(files[nfiles].path, sizeof files[0].path, "%s/%s", dir, name);
    return files[nfiles++].path;
}

/* ---- TLS-only redis-server ------------------------------------------------ */

struct ts_tls_server {
    pid_t pid;
    int port;
    char dir[256];
    char conf[300];
    char log[300];
    struct ts_tls_server *next_live;
};

static struct ts_tls_server *g_live;
static int g_atexit_done;
static pid_t g_live_owner;

/* At exit (a failed test skips its stop()): kill the servers, remove dirs. */
static void kill_all_live(void) {
    if (getpid() != g_live_owner) return;
    for (ts_tls_server *s = g_live; s; s = s->next_live) {
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
        }
        rm_rf(s->dir);
    }
}

static const char *redis_server_path(void) {
    static char path[512];
    const char *env = getenv("REDIS_SERVER");
    if (env && *env) return env;
    const char *cands[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server", NULL};
    for (int i = 0; cands[i]; i++)
        if (access(cands[i], X_OK) == 0) return cands[i];
    return find_in_path("redis-server", path, sizeof path) ? path : NULL;
}

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

/* Does the log say the server is ready? */
static int log_ready(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int ready = 0;
    while (!ready && fgets(line, sizeof line, f))
        ready = strstr(line, "Ready to accept connections") != NULL;
    fclose(f);
    return ready;
}

static void dump_log(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "# redis.log: %s", line);
    fclose(f);
}

static int spawn(ts_tls_server *s) {
    const char *bin = redis_server_path();
    /* An empty log: a restart must not see the previous run's line. */
    FILE *lf = fopen(s->log, "w");
    if (lf) fclose(lf);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        if (chdir(s->dir) != 0) _exit(126);
        execl(bin, bin, s->conf, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    uint64_t until = ts_now_ms() + 10000;
    while (ts_now_ms() < until) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { /* died: port taken, bad config */
            s->pid = 0;
            return -1;
        }
        if (log_ready(s->log)) return 0;
        sleep_ms(5); /* an external process: polling is the only way */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static void cert_path(char *out, size_t outlen, const char *name) {
    if (name[0] == '/')
        snprintf(out, outlen, "%s", name);
    else
        snprintf(out, outlen, "%s/%s", ts_tls_certs_dir(), name);
}

static void write_conf(ts_tls_server *s, const char *const *extra, const char *cert,
                       const char *key) {
    char crt[512], k[512];
    cert_path(crt, sizeof crt, cert ? cert : "server.crt");
    cert_path(k, sizeof k, key ? key : "server.key");
    FILE *f = fopen(s->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port 0\ntls-port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n"
            "daemonize no\nlogfile %s\nprotected-mode no\n"
            "tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"
            "tls-auth-clients no\n",
            s->port, s->dir, s->log, crt, k, ts_tls_file("ca.crt"));
    for (int i = 0; extra && extra[i]; i++)
        fprintf(f, "%s\n", extra[i]);
    fclose(f);
}

ts_tls_server *ts_tls_server_start(const char *const *extra_conf, const char *cert,
                                   const char *key) {
    if (!redis_server_path())
        skip_or_fail("redis-server not found; install Debian's redis-server to run this test");
    (void)ts_tls_certs_dir();
    if (!g_atexit_done) {
        g_live_owner = getpid();
        atexit(kill_all_live);
        g_atexit_done = 1;
    }
    ts_tls_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/aredis-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->conf, sizeof s->conf, "%s/redis.conf", s->dir);
    snprintf(s->log, sizeof s->log, "%s/redis.log", s->dir);
    for (int attempt = 0; attempt < 20; attempt++) {
        s->port = free_port();
        assert_true(s->port > 0);
        write_conf(s, extra_conf, cert, key);
        if (spawn(s) == 0) {
            s->next_live = g_live;
            g_live = s;
            return s;
        }
    }
    dump_log(s->log); /* above; the dir goes */
    rm_rf(s->dir);
    fail_msg("TLS redis-server did not start (its log is above)");
    return NULL;
}

int ts_tls_server_port(const ts_tls_server *s) { return s->port; }
const char *ts_tls_server_dir(const ts_tls_server *s) { return s->dir; }
pid_t ts_tls_server_pid(const ts_tls_server *s) { return s->pid; }

void ts_tls_server_kill(ts_tls_server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

void ts_tls_server_restart(ts_tls_server *s) {
    ts_tls_server_kill(s);
    for (int attempt = 0; attempt < 100; attempt++) {
        if (spawn(s) == 0) return;
        sleep_ms(50); /* the kernel may hold the port for a moment */
    }
    dump_log(s->log);
    fail_msg("TLS redis-server did not restart on port %d", s->port);
}

void ts_tls_server_stop(ts_tls_server *s) {
    if (!s) return;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        uint64_t until = ts_now_ms() + 3000;
        int done = 0;
        while (!done && ts_now_ms() < until) {
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
                done = 1;
            else
                sleep_ms(5);
        }
        if (!done) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        s->pid = 0;
    }
    for (ts_tls_server **pp = &g_live; *pp; pp = &(*pp)->next_live) {
        if (*pp == s) {
            *pp = s->next_live;
            break;
        }
    }
    rm_rf(s->dir);
    free(s);
}

aredis_options ts_tls_options(const ts_tls_server *s) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = s->port;
    o.tls = 1;
    o.tls_ca_file = ts_tls_file("ca.crt");
    return o;
}

aredis_err ts_tls_connect(aredis_loop *loop, const aredis_options *o, aredis_client **out,
                          char *detail, size_t detail_len) {
    aredis_client *c = aredis_client_new(loop, o);
    assert_non_null(c);
    *out = c;
    if (detail && detail_len) detail[0] = '\0';
    aredis_err e = aredis_client_connect(c);
    if (e != AREDIS_ERR_OK) {
        if (detail && detail_len) snprintf(detail, detail_len, "connect() refused");
        return e;
    }
    aredis_future *f = aredis_future_ready(c);
    assert_non_null(f);
    e = aredis_await(f);
    if (e != AREDIS_ERR_OK && detail && detail_len)
        snprintf(detail, detail_len, "%s", aredis_future_error(f)->detail);
    aredis_future_release(f);
    return e;
}
