/*
 * The examples (examples/<name>.c) run as a user would run them, against
 * real servers started here: `test_examples_run <name>` starts what
 * example <name> needs (a redis-server, one with a password, a TLS server,
 * a cluster, a Sentinel setup), runs the example's binary (its path is
 * compiled in, EXAMPLE_<name>) with the environment it documents, bounded
 * in time (killed, and the test failed, past EXAMPLE_TIMEOUT_MS), and then
 * checks its exit status, lines of its output and what it left in the
 * server. Its output is copied into the test's log ("# | ...").
 *
 * An example that was not built (a loop library missing: libuv, libevent,
 * libev) skips (exit 77), and fails under CI, like a missing server.
 * examples/otlp_exporter has its own test (integration/otlp_export).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "sentinel.h"
#include "tls.h"
#include "ts.h"

#define EXAMPLE_TIMEOUT_MS 60000

/* ---- Running an example ------------------------------------------------- */

typedef struct run {
    const char *name, *path;
    pid_t pid;
    char out_path[2][256]; /* its stdout, its stderr */
    char out[1 << 16];     /* what they hold: stdout, then stderr */
    size_t stdout_len;
    uint64_t deadline;
    int status; /* the exit code, once it exited */
} run;

/* What the examples read from the environment: cleared in the child, so
 * that a developer's own settings do not leak into a test. */
static const char *const k_vars[] = {"REDIS_URL",       "REDIS_CLUSTER_SEEDS", "REDIS_SENTINELS",
                                     "SENTINEL_MASTER", "SENTINEL_PASSWORD",   "REDIS_PASSWORD",
                                     "DURATION_S",      "REDIS_TLS_CA",        "REDIS_TLS_CERT",
                                     "REDIS_TLS_KEY",   "AREDIS_DEBUG",        NULL};

/* Start the example: env "NAME=value" strings and args after argv[0],
 * both NULL-terminated (either may be NULL). */
static void start(run *r, const char *const *env, const char *const *args) {
    const char *tmp = getenv("TMPDIR");
    int fd[2];
    for (int i = 0; i < 2; i++) {
        snprintf(r->out_path[i], sizeof r->out_path[i], "%s/aredis-example-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        fd[i] = mkstemp(r->out_path[i]);
        assert_true(fd[i] >= 0);
    }
    r->pid = ts_fork();
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
        dup2(fd[0], 1);
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        for (int i = 0; k_vars[i]; i++)
            unsetenv(k_vars[i]);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        const char *argv[16] = {r->path};
        for (int i = 0; args && args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(r->path, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", r->path, strerror(errno));
        _exit(127);
    }
    close(fd[0]);
    close(fd[1]);
    r->deadline = ts_now_ms() + EXAMPLE_TIMEOUT_MS;
    ts_log("%s started", r->name);
}

/* Read what the example wrote so far into r->out: stdout, then stderr. */
static const char *output(run *r) {
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(r->out_path[i], "r");
        if (f) {
            n += fread(r->out + n, 1, sizeof r->out - 1 - n, f);
            fclose(f);
        }
        if (i == 0) r->stdout_len = n;
    }
    r->out[n] = '\0';
    return r->out;
}

/* Copy its output into the test's log: "# | " stdout, "# ! " stderr. */
static void show(run *r) {
    output(r);
    for (const char *line = r->out; *line;) {
        size_t n = strcspn(line, "\n");
        fprintf(stderr, "# %c %.*s\n", line < r->out + r->stdout_len ? '|' : '!', (int)n, line);
        line += n;
        if (*line) line++;
    }
}

static void cleanup(run *r) {
    unlink(r->out_path[0]);
    unlink(r->out_path[1]);
}

/* Wait until the example exits; its exit code. A signal, or running past
 * its deadline (it is then killed), fails the test. */
static int finish(run *r) {
    int st = 0;
    pid_t w;
    for (;;) {
        w = waitpid(r->pid, &st, WNOHANG);
        if (w == r->pid) break;
        assert_true(w == 0 || errno == EINTR);
        if (ts_now_ms() > r->deadline) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            show(r);
            cleanup(r);
            fail_msg("%s still ran after %d s: killed", r->name, EXAMPLE_TIMEOUT_MS / 1000);
        }
        usleep(10 * 1000);
    }
    show(r);
    cleanup(r);
    if (WIFSIGNALED(st)) fail_msg("%s was killed by signal %d", r->name, WTERMSIG(st));
    assert_true(WIFEXITED(st));
    r->status = WEXITSTATUS(st);
    ts_log("%s exited with %d", r->name, r->status);
    return r->status;
}

/* How many times s is in the output read last. */
static int count(const run *r, const char *s) {
    int n = 0;
    for (const char *p = r->out; (p = strstr(p, s)) != NULL; p += strlen(s))
        n++;
    return n;
}

/* While it runs: wait until its output has s n times. 1, or 0 when it
 * exited or timeout_ms passed first. */
static int wait_output_n(run *r, const char *s, int n, uint64_t timeout_ms) {
    uint64_t until = ts_now_ms() + timeout_ms;
    while (ts_now_ms() < until) {
        output(r);
        if (count(r, s) >= n) return 1;
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == r->pid) { /* it exited: what it wrote is all there is */
            output(r);
            return count(r, s) >= n;
        }
        usleep(20 * 1000);
    }
    return 0;
}

static int wait_output(run *r, const char *s, uint64_t timeout_ms) {
    return wait_output_n(r, s, 1, timeout_ms);
}

/* Something it should have done while running did not happen: kill it,
 * show what it wrote, fail with why. */
static void give_up(run *r, const char *why) {
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    show(r);
    cleanup(r);
    fail_msg("%s: %s", r->name, why);
}

/* Run the example to its end: its exit code. */
static int run_example(run *r, const char *const *env, const char *const *args) {
    start(r, env, args);
    return finish(r);
}

/* The output has a line holding a, and b after it on the same line (b
 * NULL: a alone). */
static void expect_line(run *r, const char *a, const char *b) {
    for (const char *p = r->out; (p = strstr(p, a)) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        if (!b) return;
        const char *q = strstr(p + strlen(a), b);
        if (q && (!eol || q < eol)) return;
    }
    fail_msg("%s: no line with \"%s\"%s%s%s in its output", r->name, a, b ? " then \"" : "",
             b ? b : "", b ? "\"" : "");
}

static void expect_absent(run *r, const char *s) {
    if (strstr(r->out, s)) fail_msg("%s: its output holds \"%s\"", r->name, s);
}

static void expect_ok(run *r, const char *const *env, const char *const *args) {
    int code = run_example(r, env, args);
    if (code != 0) fail_msg("%s exited with %d (its output is above)", r->name, code);
}

/* ---- The server's state ------------------------------------------------- */

/* One command on a fresh connection made with o: the reply as text (an
 * integer in decimal, nil "(nil)", an error "(error) ...", an array's
 * elements joined by spaces), in a buffer that lives until the next call. */
static const char *query(aredis_options o, const char *fmt, ...) {
    static char text[16384]; /* INFO commandstats: a few KB */
    aredis_loop *loop = aredis_loop_new();
    assert_non_null(loop);
    aredis_client *c = ts_connect(loop, &o);
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(f);
    aredis_err e = aredis_await(f);
    const aredis_reply *r = aredis_future_reply(f);
    text[0] = '\0';
    if (r && r->type == AREDIS_REPLY_ERROR)
        snprintf(text, sizeof text, "(error) %s", r->str);
    else if (e != AREDIS_ERR_OK)
        fail_msg("%s: %s", fmt, aredis_future_error(f)->detail);
    else if (r->type == AREDIS_REPLY_INTEGER)
        snprintf(text, sizeof text, "%lld", r->integer);
    else if (r->type == AREDIS_REPLY_NIL)
        snprintf(text, sizeof text, "(nil)");
    else if (r->elements || r->type == AREDIS_REPLY_ARRAY || r->type == AREDIS_REPLY_SET)
        for (size_t i = 0; i < r->elements; i++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", i ? " " : "",
                     r->element[i]->str ? r->element[i]->str : "?");
    else
        snprintf(text, sizeof text, "%s", r->str ? r->str : "");
    if (strlen(text) + 1 == sizeof text) fail_msg("%s: the reply is too long to check", fmt);
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return text;
}

#define expect_query(o, want, ...)                                                                 \
    do {                                                                                           \
        const char *got_ = query(o, __VA_ARGS__);                                                  \
        if (strcmp(got_, want) != 0)                                                               \
            fail_msg("server: %s -> \"%s\", expected \"%s\"", #__VA_ARGS__, got_, want);           \
    } while (0)

/* The calls= of a command in INFO commandstats ("cmdstat_incr:calls=5,..."),
 * 0 when it was never called. */
static long calls(aredis_options o, const char *cmd) {
    const char *info = query(o, "INFO commandstats");
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(info, key);
    return p ? atol(p + strlen(key)) : 0;
}

/* The server ran cmd exactly n times (INFO commandstats). */
static void expect_calls(ts_server *s, const char *cmd, long n) {
    long got = calls(ts_options(s), cmd);
    if (got != n) fail_msg("the server ran %s %ld times, not %ld", cmd, got, n);
}

/* REDIS_URL=redis://127.0.0.1:<port> for s (in a buffer of the caller's). */
static const char *url_of(const ts_server *s, char *buf, size_t n) {
    snprintf(buf, n, "REDIS_URL=redis://127.0.0.1:%d", ts_server_port(s));
    return buf;
}

/* ---- One test per example ----------------------------------------------- */

/* Most examples: one plain server, REDIS_URL, run to the end. */
static ts_server *run_on_server(run *r, const char *const *args) {
    ts_server *s = ts_server_start_default();
    char url[64];
    const char *env[] = {url_of(s, url, sizeof url), NULL};
    expect_ok(r, env, args);
    return s;
}

static void ex_blocking(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "worker: got job-1 from example:jobs", NULL);
    expect_line(r, "main: INCR -> 3 while the worker waits", NULL);
    expect_query(ts_options(s), "3", "GET example:counter");
    expect_query(ts_options(s), "0", "LLEN example:jobs");
    ts_server_stop(s);
}

static void ex_cache(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "GET example:cache -> first (from the cache)", NULL);
    expect_line(r, "server says example:cache changed", NULL);
    expect_line(r, "GET example:cache -> second (from the cache)", NULL);
    expect_line(r, "hits 3, misses 2, invalidations 1", NULL);
    /* The reads the cache answered never reached the server. */
    long gets = calls(ts_options(s), "get");
    if (gets != 2) fail_msg("the server saw %ld GETs, not 2", gets);
    expect_query(ts_options(s), "second", "GET example:cache");
    ts_server_stop(s);
}

static void ex_callbacks(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "-> value", NULL);
    expect_line(r, "-> 5", NULL);
    expect_query(ts_options(s), "value", "GET example:cb");
    expect_query(ts_options(s), "0", "EXISTS example:cb:counter");
    ts_server_stop(s);
}

static void ex_cluster(run *r) {
    ts_require_or_exit(TS_FEATURE_SPUBLISH); /* the example's sharded pub/sub */
    ts_cluster *tc = ts_cluster_start(3, 0, NULL);
    char seeds[128];
    snprintf(seeds, sizeof seeds, "REDIS_CLUSTER_SEEDS=127.0.0.1:%d,127.0.0.1:%d",
             ts_cluster_port(tc, 1), ts_cluster_port(tc, 2));
    const char *env[] = {seeds, NULL};
    expect_ok(r, env, NULL);
    expect_line(r, "GET user:1 -> ann", NULL);
    expect_line(r, "MGET a b -> ", NULL);
    expect_line(r, "pipeline: 101 replies, the last: 144", NULL);
    expect_line(r, "transaction: 3 replies", NULL);
    expect_line(r, "BLPOP on the node's pool -> ship", NULL);
    expect_line(r, "scan: 100 keys like key:*", NULL);
    expect_line(r, "message on news:eu: hello", NULL);
    expect_line(r, "message on news:us: hello", NULL);
    /* user:1, key:0..99 and {order:7}:head/:items, spread over the nodes. */
    long total = 0;
    for (int i = 0; i < ts_cluster_nodes(tc); i++) {
        aredis_reply *n = ts_node_cmd(ts_cluster_port(tc, i), "DBSIZE", (char *)NULL);
        assert_non_null(n);
        assert_int_equal(n->type, AREDIS_REPLY_INTEGER);
        if (n->integer == 0) fail_msg("node %d holds no key", i);
        total += n->integer;
        aredis_reply_free(n);
    }
    if (total != 103) fail_msg("the cluster holds %ld keys, not 103", total);
    int port = ts_cluster_node_for_slot(tc, ts_cluster_keyslot(tc, "user:1"));
    aredis_reply *v = ts_node_cmd(port, "GET", "user:1", (char *)NULL);
    assert_non_null(v);
    assert_string_equal(v->str, "ann");
    aredis_reply_free(v);
    ts_cluster_stop(tc);
}

static void ex_demo(run *r) {
    const char *args[] = {"1000", NULL};
    ts_server *s = run_on_server(r, args);
    expect_line(r, "2. SET -> OK, GET -> \"hello, redis\"", NULL);
    expect_line(r, "3. 1000 concurrent INCRs -> counter now 1000", NULL);
    expect_line(r, "5. LPUSH on a string -> AREDIS_ERR_SERVER, prefix WRONGTYPE", NULL);
    expect_line(r, "pipelined (batches of 100)", NULL);
    expect_line(r, "removed the 3000 demo:* keys the demo wrote", NULL);
    expect_query(ts_options(s), "0", "DBSIZE");
    ts_server_stop(s);
}

static void ex_futures(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "then: GET example:f -> 42", NULL);
    expect_line(r, "after 10 INCRs: 52", NULL);
    expect_line(r, "first done: #0 (PONG)", NULL);
    expect_line(r, "cancelled: AREDIS_ERR_CANCELLED", NULL);
    expect_query(ts_options(s), "52", "GET example:f");
    ts_server_stop(s);
}

/* libuv, libevent, libev: five ticks, five INCRs, then the counter deleted. */
static void ex_loop(run *r) {
    ts_server *s = run_on_server(r, NULL);
    for (int i = 1; i <= 5; i++) {
        char line[64];
        snprintf(line, sizeof line, "tick %d: counter = %d", i, i);
        expect_line(r, line, NULL);
    }
    expect_calls(s, "incr", 5);
    char key[64];
    snprintf(key, sizeof key, "example:%s:counter", r->name);
    expect_query(ts_options(s), "0", "EXISTS %s", key);
    ts_server_stop(s);
}

static void ex_metrics(run *r) {
    ts_server *s = run_on_server(r, NULL);
    char line[256];
    snprintf(line, sizeof line,
             "db_client_operation_duration_seconds_count{db_system_name=\"redis\","
             "db_operation_name=\"GET\",server_address=\"127.0.0.1\",server_port=\"%d\"} 3",
             ts_server_port(s));
    expect_line(r, line, NULL);
    expect_line(r, "db_operation_name=\"LPUSH\"", "error_type=\"WRONGTYPE\"} 1");
    expect_line(r, "aredis_client_connects_total{", "} 1");
    expect_line(r, "LPUSH  WRONGTYPE  1 op(s)", NULL);
    ts_server_stop(s);
}

#define PASSWORD "example-Test-pw-6131"

static void ex_logging(run *r) {
    static const char *const conf[] = {"requirepass " PASSWORD, NULL};
    ts_server *s = ts_server_start(conf, 0);
    char url[128];
    snprintf(url, sizeof url, "REDIS_URL=redis://:%s@127.0.0.1:%d", PASSWORD, ts_server_port(s));
    const char *env[] = {url, NULL};
    expect_ok(r, env, NULL);
    expect_line(r, "[INFO] connecting to 127.0.0.1:", NULL);
    expect_line(r, "handshake: HELLO 3 AUTH <redacted> <redacted>", NULL);
    expect_line(r, "command: AUTH <redacted> <redacted>", NULL);
    expect_line(r, "AUTH refused: WRONGPASS", NULL);
    expect_absent(r, PASSWORD);
    expect_absent(r, "not-the-password-4711");
    ts_server_stop(s);
}

static void ex_auth(run *r) {
    static const char *const conf[] = {"requirepass " PASSWORD, NULL};
    ts_server *s = ts_server_start(conf, 0);
    char url[128];
    snprintf(url, sizeof url, "REDIS_URL=redis://:%s@127.0.0.1:%d", PASSWORD, ts_server_port(s));
    const char *env[] = {url, NULL};
    expect_ok(r, env, NULL);
    expect_line(r, "ACL WHOAMI -> default", NULL);
    expect_line(r, "ACL WHOAMI -> example-app", NULL);
    expect_line(r, "authenticated as example-app", "yes");
    expect_line(r, "may not read other keys", "yes");
    expect_line(r, "reads what it wrote through the options", "yes");
    expect_line(r, "connect refused: AREDIS_ERR_AUTH", NULL);
    expect_line(r, "user removed", "yes");
    expect_absent(r, PASSWORD);
    expect_absent(r, "example-app-Secret-9");
    aredis_options o = ts_options(s);
    o.password = PASSWORD;
    expect_query(o, "hello", "GET example:auth:greeting");
    expect_query(o, "default", "ACL USERS");
    ts_server_stop(s);
}

static void ex_pipeline(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "1000 SETs: 1000 replies", NULL);
    expect_line(r, "refused: SUBSCRIBE", NULL);
    expect_line(r, "#1 -> 42", NULL);
    expect_line(r, "#2 failed: WRONGTYPE", NULL);
    expect_line(r, "#3 -> 42", NULL);
    expect_query(ts_options(s), "0", "DBSIZE");
    expect_calls(s, "set", 1001);
    ts_server_stop(s);
}

static void ex_pool(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "100 INCRs through the pool: the counter is at 100", NULL);
    expect_line(r, "transfer done: a=90 b=10", NULL);
    expect_line(r, "read back: a=90 b=10", NULL);
    expect_query(ts_options(s), "100", "GET example:pool:n");
    expect_query(ts_options(s), "90 10", "MGET example:pool:a example:pool:b");
    ts_server_stop(s);
}

static void ex_prefix(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "tenant: KEYS user:*", "user:1");
    expect_line(r, "admin: GET tenant42:user:1", "alice");
    expect_line(r, "tenant: EVAL", "tenant42:user:1:x");
    expect_line(r, "tenant: NOSUCHCOMMAND a b", "refused");
    expect_line(r, "admin: DEL", "2");
    expect_query(ts_options(s), "0", "DBSIZE");
    expect_calls(s, "mset", 1);
    ts_server_stop(s);
}

static void ex_pubsub(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "news: hello", NULL);
    expect_line(r, "[log.*] log.disk: 90% full", NULL);
    expect_line(r, "news: bye", NULL);
    expect_line(r, "next(): job-1 on jobs", NULL);
    expect_calls(s, "publish", 4);
    ts_server_stop(s);
}

/* Restarted under it: the example rides through, then is stopped (SIGINT)
 * once it writes again. */
static void ex_reconnect(run *r) {
    ts_server *s = ts_server_start_default();
    char url[64];
    const char *env[] = {url_of(s, url, sizeof url), NULL};
    const char *args[] = {"30", NULL};
    start(r, env, args);
    if (!wait_output(r, "counter = 10\n", 15000)) give_up(r, "no INCRs before the restart");
    ts_server_kill(s);
    ts_server_restart(s);
    if (!wait_output(r, "connected (2)", 15000) ||
        !wait_output_n(r, "first INCR since connected", 2, 15000))
        give_up(r, "not back and writing 15 s after the restart");
    kill(r->pid, SIGINT);
    if (finish(r) != 0) fail_msg("reconnect exited with %d", r->status);
    expect_line(r, "disconnected: ", NULL);
    expect_line(r, "INCRs acknowledged", "2 connects");
    long n = atol(query(ts_options(s), "GET example:reconnect"));
    if (n < 1) fail_msg("example:reconnect is %ld after the restart", n);
    ts_server_stop(s);
}

static void ex_scan(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "key example:scan:1", NULL);
    expect_line(r, "key example:scan:h", NULL);
    expect_line(r, "SCAN: 3 keys", NULL);
    expect_line(r, "f2 = v2", NULL);
    expect_line(r, "HSCAN complete", NULL);
    expect_query(ts_options(s), "v1 v2", "HMGET example:scan:h f1 f2");
    ts_server_stop(s);
}

static void ex_script(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "calls in this minute: 3", NULL);
    expect_line(r, "pipeline: count 4, ttl", NULL);
    if (ts_server_version()->redis_level >= 700)
        expect_line(r, "FCALL example_greet world -> hello world", NULL);
    else
        expect_line(r, "functions: not on this server", NULL);
    expect_query(ts_options(s), "4", "GET example:ratelimit");
    if (calls(ts_options(s), "evalsha") < 3) fail_msg("the script did not run by its SHA1");
    ts_server_stop(s);
}

/* A failover (SENTINEL FAILOVER) under it: the example follows it, then is
 * stopped (SIGINT) once it writes on the new primary. */
static void ex_sentinel(run *r) {
    ts_sentinel *ts = ts_sentinel_start(1);
    char sentinels[64], duration[] = "DURATION_S=50", at[64];
    snprintf(sentinels, sizeof sentinels, "REDIS_SENTINELS=127.0.0.1:%d", ts_sentinel_port(ts, 0));
    const char *env[] = {sentinels, duration, NULL};
    start(r, env, NULL);
    snprintf(at, sizeof at, "first INCR on 127.0.0.1:%d", ts_sentinel_primary_port(ts));
    if (!wait_output(r, at, 15000)) give_up(r, "no INCR on the primary");
    aredis_reply *f = ts_node_cmd(ts_sentinel_port(ts, 0), "SENTINEL", "FAILOVER",
                                  TS_SENTINEL_MASTER, (char *)NULL);
    assert_non_null(f);
    if (f->type != AREDIS_REPLY_STATUS) fail_msg("SENTINEL FAILOVER: %s", f->str ? f->str : "?");
    aredis_reply_free(f);
    snprintf(at, sizeof at, "first INCR on 127.0.0.1:%d", ts_sentinel_replica_port(ts));
    if (!wait_output(r, at, 30000))
        give_up(r, "no INCR on the new primary 30 s after the failover");
    kill(r->pid, SIGINT);
    if (finish(r) != 0) fail_msg("sentinel exited with %d", r->status);
    expect_line(r, "(moved: a failover was followed)", NULL);
    expect_line(r, "failovers followed", NULL);
    aredis_reply *v =
        ts_node_cmd(ts_sentinel_replica_port(ts), "GET", "example:sentinel:counter", (char *)NULL);
    assert_non_null(v);
    /* (Replication is asynchronous: what the old primary had not passed on
     * when it was demoted may be missing here.) */
    if (v->type != AREDIS_REPLY_STRING || atol(v->str) < 1)
        fail_msg("the new primary's counter: %s", v->str ? v->str : "(none)");
    aredis_reply_free(v);
    ts_sentinel_stop(ts);
}

static void ex_threads(run *r) {
    ts_server *s = run_on_server(r, NULL);
    for (int i = 0; i < 4; i++) {
        char line[64];
        snprintf(line, sizeof line, "worker %d: counter = 1000", i);
        expect_line(r, line, NULL);
        expect_query(ts_options(s), "1000", "GET example:threads:%d", i);
    }
    ts_server_stop(s);
}

static void ex_timeouts(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "BLPOP 1 s, client timeout 500 ms:", "done (nil");
    expect_line(r, "BLPOP 1 s, its own deadline 200 ms:", "AREDIS_ERR_TIMEOUT");
    expect_line(r, "PING behind it:", "PONG");
    expect_line(r, "waiting 100 ms for BLPOP 1 s:", "AREDIS_ERR_TIMEOUT");
    expect_line(r, "waiting again:", "done (nil");
    expect_calls(s, "blpop", 3);
    ts_server_stop(s);
}

/* Mutual TLS, the server verified by name; then a CA that did not sign the
 * server's certificate: the example must fail. */
static void ex_tls(run *r) {
    static const char *const conf[] = {"tls-auth-clients yes", NULL};
    ts_tls_server *s = ts_tls_server_start(conf, NULL, NULL);
    char url[64], ca[512], cert[512], key[512], other[512];
    snprintf(url, sizeof url, "REDIS_URL=rediss://localhost:%d", ts_tls_server_port(s));
    snprintf(ca, sizeof ca, "REDIS_TLS_CA=%s", ts_tls_file("ca.crt"));
    snprintf(cert, sizeof cert, "REDIS_TLS_CERT=%s", ts_tls_file("client.crt"));
    snprintf(key, sizeof key, "REDIS_TLS_KEY=%s", ts_tls_file("client.key"));
    snprintf(other, sizeof other, "REDIS_TLS_CA=%s", ts_tls_file("other-ca.crt"));
    const char *env[] = {url, ca, cert, key, NULL};
    expect_ok(r, env, NULL);
    expect_line(r, "PING over TLS -> PONG", NULL);

    const char *wrong_ca[] = {url, other, cert, key, NULL};
    if (run_example(r, wrong_ca, NULL) != 1) fail_msg("tls with the wrong CA did not exit 1");
    expect_line(r, "failed: AREDIS_ERR_TLS", NULL);
    expect_absent(r, "PONG");
    ts_tls_server_stop(s);
}

static void ex_transaction(run *r) {
    ts_server *s = run_on_server(r, NULL);
    expect_line(r, "EXEC: 4 results; INCR -> 101; LPUSH -> WRONGTYPE", NULL);
    expect_line(r, "refused: EXECABORT", NULL);
    expect_line(r, "attempt 1: example:tx:balance changed under us, again", NULL);
    expect_line(r, "withdrew 30: balance 106 -> 76", NULL);
    expect_line(r, "cannot withdraw 100: the balance is 76", NULL);
    expect_query(ts_options(s), "0", "DBSIZE");
    expect_calls(s, "exec", 4);
    ts_server_stop(s);
}

/* A URI given as the argument: TCP with a database and a timeout, then a
 * unix socket with another database. */
static void ex_uri(run *r) {
    ts_server *s = ts_server_start(NULL, 1);
    char tcp[128], unix_uri[400];
    snprintf(tcp, sizeof tcp, "redis://127.0.0.1:%d/2?timeout=0.5", ts_server_port(s));
    snprintf(unix_uri, sizeof unix_uri, "unix://%s?db=3", ts_server_unix(s));
    const char *args[] = {tcp, NULL};
    expect_ok(r, NULL, args);
    expect_line(r, "host 127.0.0.1, port ", ", db 2");
    expect_line(r, "GET example:uri -> db 2", NULL);
    args[0] = unix_uri;
    expect_ok(r, NULL, args);
    expect_line(r, "unix socket ", ", db 3");
    expect_line(r, "GET example:uri -> db 3", NULL);
    aredis_options o = ts_options(s);
    o.db = 2;
    expect_query(o, "db 2", "GET example:uri");
    o.db = 3;
    expect_query(o, "db 3", "GET example:uri");
    o.db = 0;
    expect_query(o, "0", "DBSIZE");
    ts_server_stop(s);
}

/* ---- The table ------------------------------------------------------------ */

#define EXAMPLE(name, fn, needs)                                                                   \
    { #name, EXAMPLE_##name, needs, fn }

typedef struct example {
    const char *name;
    const char *path; /* "" when it was not built */
    const char *needs;
    void (*test)(run *r);
} example;

static const example k_examples[] = {
    EXAMPLE(auth, ex_auth, NULL),
    EXAMPLE(blocking, ex_blocking, NULL),
    EXAMPLE(cache, ex_cache, NULL),
    EXAMPLE(callbacks, ex_callbacks, NULL),
    EXAMPLE(cluster, ex_cluster, NULL),
    EXAMPLE(demo, ex_demo, NULL),
    EXAMPLE(futures, ex_futures, NULL),
    EXAMPLE(libev, ex_loop, "libev (Debian: libev-dev)"),
    EXAMPLE(libevent, ex_loop, "libevent (Debian: libevent-dev)"),
    EXAMPLE(libuv, ex_loop, "libuv (Debian: libuv1-dev)"),
    EXAMPLE(logging, ex_logging, NULL),
    EXAMPLE(metrics, ex_metrics, NULL),
    EXAMPLE(pipeline, ex_pipeline, NULL),
    EXAMPLE(pool, ex_pool, NULL),
    EXAMPLE(prefix, ex_prefix, NULL),
    EXAMPLE(pubsub, ex_pubsub, NULL),
    EXAMPLE(reconnect, ex_reconnect, NULL),
    EXAMPLE(scan, ex_scan, NULL),
    EXAMPLE(script, ex_script, NULL),
    EXAMPLE(sentinel, ex_sentinel, NULL),
    EXAMPLE(threads, ex_threads, NULL),
    EXAMPLE(timeouts, ex_timeouts, NULL),
    EXAMPLE(tls, ex_tls, NULL),
    EXAMPLE(transaction, ex_transaction, NULL),
    EXAMPLE(uri, ex_uri, NULL),
};

static void test_example(void **state) {
    const example *ex = *state;
    static run r; /* 64 KiB of output: not on the stack */
    memset(&r, 0, sizeof r);
    r.name = ex->name;
    r.path = ex->path;
    ex->test(&r);
}

int main(int argc, char **argv) {
    const example *ex = NULL;
    for (size_t i = 0; argc == 2 && i < sizeof k_examples / sizeof k_examples[0]; i++)
        if (strcmp(argv[1], k_examples[i].name) == 0) ex = &k_examples[i];
    if (!ex) {
        fprintf(stderr, "usage: %s <example>; no test for \"%s\": add one here\n", argv[0],
                argc > 1 ? argv[1] : "");
        return 2;
    }
    if (!ex->path[0]) {
        if (getenv("CI")) {
            fprintf(stderr,
                    "FAIL: example_%s was not built: %s not found (CI must have it: "
                    "run scripts/deps.sh)\n",
                    ex->name, ex->needs ? ex->needs : "?");
            return 1;
        }
        fprintf(stderr, "SKIP: example_%s was not built: %s not found\n", ex->name,
                ex->needs ? ex->needs : "?");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        {ex->name, test_example, NULL, NULL, (void *)ex},
    };
    return cmocka_run_group_tests_name("examples", tests, NULL, NULL);
}
