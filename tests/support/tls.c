/*
 * Test support for TLS: certificates made at test time by
 * scripts/gen-test-certs.sh, and TLS-only redis-server processes.
 *
 * A TLS-only server has no plain port to PING, so the shared core
 * (server_core.h) waits for the log line "Ready to accept connections"
 * instead (the log is emptied before every start, so a restart cannot see
 * the old line). Servers die with the test process (PR_SET_PDEATHSIG + an
 * atexit sweep).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_core.h"
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

/* ---- Certificates ----------------------------------------------------- */

static char g_certs[300];
static pid_t g_certs_owner;

static void remove_certs(void) {
    /* Only the process that made them: not a forked child exiting. */
    if (g_certs[0] && getpid() == g_certs_owner) tsp_rm_rf(g_certs);
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
        tsp_rm_rf(dir);
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

/* Did the server refuse TLS because it was built without it? Redis 6.2
 * and 7.0 do not know the tls-* directives then ("Bad directive" on
 * stderr); 7.2 and later, and Valkey, log "Failed finding TLS support."
 * (or panic, finding no TLS connection listener). */
static int built_without_tls(const tsp_proc *p) {
    return (tsp_output_has(p, "Bad directive") && tsp_output_has(p, "tls-")) ||
           tsp_output_has(p, "Failed finding TLS support") ||
           tsp_output_has(p, "Missing implement of connection type tls") ||
           tsp_output_has(p, "connection listener of tls");
}

/* A server binary built without TLS: the TLS tests cannot run on it. The
 * default binary (no $REDIS_SERVER) must have TLS under CI; one chosen with
 * $REDIS_SERVER is skipped by name, since it was chosen on purpose. */
static void no_tls_skip(void) {
    const char *chosen = getenv("REDIS_SERVER");
    char what[700];
    snprintf(what, sizeof what,
             "needs a server built with TLS (make BUILD_TLS=yes); %s (%s) has none",
             tsp_server_path(), ts_server_describe());
    if (chosen && *chosen) {
        fprintf(stderr, "SKIP: %s\n", what);
        exit(77);
    }
    skip_or_fail(what);
}

struct ts_tls_server {
    tsp_proc p; /* first: a tsp_proc * is a ts_tls_server * */
};

static void cert_path(char *out, size_t outlen, const char *name) {
    if (name[0] == '/')
        snprintf(out, outlen, "%s", name);
    else
        snprintf(out, outlen, "%s/%s", ts_tls_certs_dir(), name);
}

typedef struct {
    const char *const *extra;
    const char *cert, *key;
} conf_args;

static void write_conf(tsp_proc *p, const void *arg) {
    const conf_args *a = arg;
    char crt[512], k[512];
    cert_path(crt, sizeof crt, a->cert ? a->cert : "server.crt");
    cert_path(k, sizeof k, a->key ? a->key : "server.key");
    FILE *f = fopen(p->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port 0\ntls-port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n"
            "daemonize no\nlogfile %s\nprotected-mode no\n"
            "tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"
            "tls-auth-clients no\n",
            p->port, p->dir, p->log, crt, k, ts_tls_file("ca.crt"));
    tsp_write_conf_lines(f, a->extra);
    fclose(f);
}

ts_tls_server *ts_tls_server_start(const char *const *extra_conf, const char *cert,
                                   const char *key) {
    if (!tsp_server_path())
        skip_or_fail("redis-server not found; install Debian's redis-server to run this test");
    (void)ts_tls_certs_dir();
    ts_tls_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    tsp_make_dir(&s->p, "aredis-tls");
    s->p.ready = tsp_ready_log;
    s->p.rm_dir_at_exit = 1;
    conf_args a = {extra_conf, cert, key};
    if (tsp_start(&s->p, write_conf, &a) == 0) return s;
    int no_tls = built_without_tls(&s->p);
    int said = no_tls ? 0 : tsp_dump_output(&s->p); /* above; the dir goes */
    tsp_rm_rf(s->p.dir);
    free(s);
    if (no_tls) no_tls_skip();
    fail_msg("TLS %s did not start (%s)", ts_server_describe(),
             said ? "its output is above" : "it printed nothing");
    return NULL;
}

int ts_tls_server_port(const ts_tls_server *s) {
    assert_non_null(s);
    return s->p.port;
}
const char *ts_tls_server_dir(const ts_tls_server *s) {
    assert_non_null(s);
    return s->p.dir;
}
pid_t ts_tls_server_pid(const ts_tls_server *s) { return s ? s->p.pid : 0; }

void ts_tls_server_kill(ts_tls_server *s) {
    if (s) tsp_kill(&s->p);
}

void ts_tls_server_restart(ts_tls_server *s) {
    assert_non_null(s);
    if (tsp_restart(&s->p) == 0) return;
    int said = tsp_dump_output(&s->p);
    fail_msg("TLS redis-server did not restart on port %d (%s)", s->p.port,
             said ? "its output is above" : "it printed nothing");
}

void ts_tls_server_stop(ts_tls_server *s) {
    if (!s) return;
    tsp_stop(&s->p);
    free(s);
}

aredis_options ts_tls_options(const ts_tls_server *s) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = s->p.port;
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
    return ts_await_ready(c, detail, detail_len);
}
