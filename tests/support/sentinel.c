/*
 * Test support: one primary, one replica and N sentinels (sentinel.h).
 *
 * The primary and the replica are ts_server processes. The sentinels are the
 * server binary run with --sentinel: the core (server_core.h) only runs
 * `<binary> <conf>`, so they are spawned here, the core's way (a free port,
 * PR_SET_PDEATHSIG, ready once they answer PING, retried on a port taken
 * meanwhile), with an atexit sweep of their own. Every wait polls the
 * processes, bounded, keeping the last reason it was not done.
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
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sentinel.h"
#include "server_core.h"

#define WAIT_MS 30000
#define POLL_MS 20
#define MAX_SENTINELS 16

struct ts_sentinel {
    ts_server *primary, *replica;
    int n;
    tsp_proc *sent; /* n sentinels */
    char why[1024]; /* why the last look found it not done */
    /* ts_sentinel_start_auth(): the passwords (NULL: none) */
    char *sentinel_pass, *node_pass;
};

static void why(ts_sentinel *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(ts_sentinel *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
}

/* ---- Sentinel processes ------------------------------------------------- */

static tsp_proc *g_live; /* sentinels running, for the sweep */
static pid_t g_owner;
static int g_atexit_done;

static void kill_all_sentinels(void) {
    if (getpid() != g_owner) return; /* a forked child exiting */
    for (tsp_proc *p = g_live; p; p = p->next_live) {
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
        }
        if (p->rm_dir_at_exit) tsp_rm_rf(p->dir);
    }
}

static void unlink_live(tsp_proc *p) {
    for (tsp_proc **pp = &g_live; *pp; pp = &(*pp)->next_live) {
        if (*pp == p) {
            *pp = p->next_live;
            break;
        }
    }
}

static void write_sentinel_conf(const ts_sentinel *s, const tsp_proc *p, int primary_port,
                                int quorum) {
    FILE *f = fopen(p->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\ndaemonize no\nlogfile %s\nprotected-mode no\n"
            "sentinel monitor %s 127.0.0.1 %d %d\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 5000\n",
            p->port, p->dir, p->log, TS_SENTINEL_MASTER, primary_port, quorum, TS_SENTINEL_MASTER,
            TS_SENTINEL_MASTER);
    if (s->sentinel_pass) fprintf(f, "requirepass %s\n", s->sentinel_pass);
    if (s->node_pass) fprintf(f, "sentinel auth-pass %s %s\n", TS_SENTINEL_MASTER, s->node_pass);
    fclose(f);
}

static void truncate_file(const char *path) {
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

/* Start p as a sentinel and wait until it answers PING: 0; -1 when it
 * exited; -2 when it did not answer within 10 s (then killed). */
static int spawn_sentinel(tsp_proc *p) {
    const char *bin = tsp_server_path();
    truncate_file(p->log);
    truncate_file(p->err);
    pid_t pid = ts_fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        int err = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (err >= 0) dup2(err, 2);
        if (chdir(p->dir) != 0) _exit(126);
        execl(bin, bin, p->conf, "--sentinel", (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    uint64_t until = ts_now_ms() + 10000;
    while (ts_now_ms() < until) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            p->pid = 0;
            return -1;
        }
        if (p->ready(p)) return 0;
        tsp_sleep_ms(5); /* an external process: polling is the only way */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    p->pid = 0;
    return -2;
}

static int start_sentinel(const ts_sentinel *s, tsp_proc *p, int primary_port, int quorum) {
    if (!g_atexit_done) {
        g_owner = getpid();
        atexit(kill_all_sentinels);
        g_atexit_done = 1;
    }
    for (int attempt = 0; attempt < 20; attempt++) {
        p->port = tsp_free_port();
        assert_true(p->port > 0);
        write_sentinel_conf(s, p, primary_port, quorum); /* afresh: it rewrites it */
        int r = spawn_sentinel(p);
        if (r == 0) {
            p->next_live = g_live;
            g_live = p;
            return 0;
        }
        if (r == -1 && !tsp_output_has(p, "Address already in use")) return -1;
    }
    return -1;
}

/* ---- Talking to the processes ------------------------------------------- */

/* Is port one of the sentinels'? */
static int is_sentinel(const ts_sentinel *s, int port) {
    for (int i = 0; s->sent && i < s->n; i++)
        if (s->sent[i].port == port) return 1;
    return 0;
}

/*
 * One command to the process on port, as ts_node_cmd() sends it; with a
 * password for that process, through a client of the library that
 * authenticates first (RESP2, one connection a command). NULL when there
 * is no reply (refused, timed out); error replies are replies.
 */
static aredis_reply *scmd(const ts_sentinel *s, int port, const char *arg0, ...)
    __attribute__((sentinel));
static aredis_reply *scmd(const ts_sentinel *s, int port, const char *arg0, ...) {
    const char *argv[8];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 8; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    const char *pass = is_sentinel(s, port) ? s->sentinel_pass : s->node_pass;
    if (!pass) return ts_node_command(port, argc, argv, NULL, NULL, 0);
    aredis_loop *loop = aredis_loop_new();
    assert_non_null(loop);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = port;
    o.password = pass;
    o.protocol = 2;
    o.reconnect = 0;
    o.connect_timeout_ms = 5000;
    o.request_timeout_ms = 10000;
    aredis_client *c = aredis_client_new(loop, &o);
    assert_non_null(c);
    aredis_reply *r = NULL;
    if (aredis_client_connect(c) == AREDIS_ERR_OK) {
        aredis_future *f = aredis_future_argv(c, argc, argv, NULL);
        assert_non_null(f);
        aredis_await(f);
        if (aredis_future_reply(f)) r = aredis_reply_retain(aredis_future_reply(f));
        aredis_future_release(f);
    }
    aredis_client_free(c);
    aredis_loop_free(loop);
    return r;
}

/* ts_node_info_field() through scmd(). */
static int info_field(const ts_sentinel *s, int port, const char *section, const char *field,
                      char *out, size_t outlen) {
    if (!s->node_pass) return ts_node_info_field(port, section, field, out, outlen);
    aredis_reply *r = scmd(s, port, "INFO", section, (char *)NULL);
    int found = 0;
    size_t flen = strlen(field);
    for (const char *p = r && r->str ? r->str : ""; p && *p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (strncmp(p, field, flen) == 0 && p[flen] == ':') {
            size_t n = strcspn(p + flen + 1, "\r\n");
            snprintf(out, outlen, "%.*s", (int)n, p + flen + 1);
            found = 1;
            break;
        }
    }
    aredis_reply_free(r);
    return found;
}

/* ts_node_online_replicas() through scmd(). */
static int online_replicas(const ts_sentinel *s, int port) {
    if (!s->node_pass) return ts_node_online_replicas(port);
    aredis_reply *r = scmd(s, port, "INFO", "replication", (char *)NULL);
    if (!r || !r->str) {
        aredis_reply_free(r);
        return -1;
    }
    int n = 0;
    for (const char *p = strstr(r->str, "state=online"); p; p = strstr(p + 1, "state=online"))
        n++;
    aredis_reply_free(r);
    return n;
}

/* ---- What the sentinels say --------------------------------------------- */

/* The value of key in a flat key/value array (RESP2 SENTINEL replies). */
static const char *kv(const aredis_reply *e, const char *key) {
    if (!e || e->type != AREDIS_REPLY_ARRAY) return NULL;
    for (size_t k = 0; k + 1 < e->elements; k += 2)
        if (e->element[k]->type == AREDIS_REPLY_STRING && strcmp(e->element[k]->str, key) == 0 &&
            e->element[k + 1]->type == AREDIS_REPLY_STRING)
            return e->element[k + 1]->str;
    return NULL;
}

static int flags_down(const char *flags) {
    return !flags || strstr(flags, "s_down") || strstr(flags, "o_down") ||
           strstr(flags, "disconnected");
}

/* The primary's port sentinel i names, or -1 (and s->why). */
static int named_primary(ts_sentinel *s, int i) {
    aredis_reply *r = scmd(s, s->sent[i].port, "SENTINEL", "get-master-addr-by-name",
                           TS_SENTINEL_MASTER, (char *)NULL);
    int port = -1;
    if (r && r->type == AREDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == AREDIS_REPLY_STRING)
        port = atoi(r->element[1]->str);
    else
        why(s, "sentinel %d: get-master-addr-by-name: %s", i,
            !r       ? "no answer"
            : r->str ? r->str
                     : aredis_reply_type_name(r->type));
    aredis_reply_free(r);
    return port;
}

/* Does sentinel i know the replica, with its link up, and every other
 * sentinel, none of them down? */
static int knows_all(ts_sentinel *s, int i) {
    int port = s->sent[i].port, ok = 0;
    aredis_reply *r = scmd(s, port, "SENTINEL", "replicas", TS_SENTINEL_MASTER, (char *)NULL);
    int rport = ts_server_port(s->replica);
    if (!r || r->type != AREDIS_REPLY_ARRAY) {
        why(s, "sentinel %d: SENTINEL replicas: %s", i, r && r->str ? r->str : "no answer");
        goto out;
    }
    const aredis_reply *rep = NULL;
    for (size_t k = 0; k < r->elements; k++) {
        const char *p = kv(r->element[k], "port");
        if (p && atoi(p) == rport) rep = r->element[k];
    }
    if (!rep) {
        why(s, "sentinel %d knows %zu replicas, not the one on port %d", i, r->elements, rport);
        goto out;
    }
    const char *flags = kv(rep, "flags"), *link = kv(rep, "master-link-status");
    if (flags_down(flags) || !link || strcmp(link, "ok") != 0) {
        why(s, "sentinel %d: the replica is %s, link %s", i, flags ? flags : "?",
            link ? link : "?");
        goto out;
    }
    aredis_reply_free(r);
    r = scmd(s, port, "SENTINEL", "sentinels", TS_SENTINEL_MASTER, (char *)NULL);
    if (!r || r->type != AREDIS_REPLY_ARRAY) {
        why(s, "sentinel %d: SENTINEL sentinels: %s", i, r && r->str ? r->str : "no answer");
        goto out;
    }
    if ((int)r->elements != s->n - 1) {
        why(s, "sentinel %d knows %zu other sentinels, not %d", i, r->elements, s->n - 1);
        goto out;
    }
    for (size_t k = 0; k < r->elements; k++) {
        const char *f = kv(r->element[k], "flags");
        if (flags_down(f)) {
            why(s, "sentinel %d sees sentinel on port %s as %s", i,
                kv(r->element[k], "port") ? kv(r->element[k], "port") : "?", f ? f : "?");
            goto out;
        }
    }
    ok = 1;
out:
    aredis_reply_free(r);
    return ok;
}

static int replica_up(ts_sentinel *s) {
    char v[32] = "?";
    if (!info_field(s, ts_server_port(s->replica), "replication", "master_link_status", v,
                    sizeof v) ||
        strcmp(v, "up") != 0) {
        why(s, "the replica's master_link_status:%s", v);
        return 0;
    }
    int online = online_replicas(s, ts_server_port(s->primary));
    if (online < 1) {
        why(s, "the primary has %d replicas online", online);
        return 0;
    }
    return 1;
}

static int sentinels_ready(ts_sentinel *s) {
    for (int i = 0; i < s->n; i++) {
        int named = named_primary(s, i);
        if (named < 0) return 0;
        if (named != ts_server_port(s->primary)) {
            why(s, "sentinel %d names port %d as the primary, not %d", i, named,
                ts_server_port(s->primary));
            return 0;
        }
        if (!knows_all(s, i)) return 0;
    }
    return 1;
}

/* The port a majority of sentinels name, or -1. */
static int majority_port(ts_sentinel *s) {
    int *named = calloc((size_t)s->n, sizeof *named);
    assert_non_null(named);
    int found = -1;
    for (int i = 0; i < s->n; i++)
        named[i] = s->sent[i].pid > 0 ? named_primary(s, i) : -1;
    for (int i = 0; i < s->n && found < 0; i++) {
        int votes = 0;
        for (int j = 0; j < s->n; j++)
            votes += named[i] > 0 && named[j] == named[i];
        if (votes >= s->n / 2 + 1) found = named[i];
    }
    if (found < 0) why(s, "no majority of %d sentinels names one primary", s->n);
    free(named);
    return found;
}

static int poll_until(ts_sentinel *s, int (*done)(ts_sentinel *s), uint64_t timeout_ms) {
    uint64_t until = ts_now_ms() + timeout_ms;
    for (;;) {
        if (done(s)) return 1;
        if (ts_now_ms() >= until) return 0;
        tsp_sleep_ms(POLL_MS); /* external processes: polling is the only way */
    }
}

static void dump_sentinels(const ts_sentinel *s) {
    for (int i = 0; i < s->n; i++) {
        if (!s->sent[i].dir[0]) continue;
        ts_log("sentinel %d (port %d):", i, s->sent[i].port);
        tsp_dump_output(&s->sent[i]);
    }
}

/* ---- The setup ---------------------------------------------------------- */

void ts_sentinel_stop(ts_sentinel *s) {
    if (!s) return;
    for (int i = 0; s->sent && i < s->n; i++) {
        if (!s->sent[i].dir[0]) continue;
        unlink_live(&s->sent[i]);
        tsp_stop(&s->sent[i]); /* not in the core's list: it only stops and removes */
    }
    free(s->sent);
    ts_server_stop(s->replica);
    ts_server_stop(s->primary);
    free(s->sentinel_pass);
    free(s->node_pass);
    free(s);
}

ts_sentinel *ts_sentinel_start(int nsentinels) {
    return ts_sentinel_start_auth(nsentinels, NULL, NULL);
}

ts_sentinel *ts_sentinel_start_auth(int nsentinels, const char *sentinel_pass,
                                    const char *node_pass) {
    assert_true(nsentinels >= 1 && nsentinels <= MAX_SENTINELS);
    uint64_t t0 = ts_now_ms();
    ts_sentinel *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->n = nsentinels;
    s->sentinel_pass = sentinel_pass ? strdup(sentinel_pass) : NULL;
    s->node_pass = node_pass ? strdup(node_pass) : NULL;
    char requirepass[160] = "", masterauth[160] = "";
    if (node_pass) {
        snprintf(requirepass, sizeof requirepass, "requirepass %s", node_pass);
        snprintf(masterauth, sizeof masterauth, "masterauth %s", node_pass);
    }
    const char *const primary_conf[] = {"repl-diskless-sync-delay 0",
                                        node_pass ? requirepass : NULL, masterauth, NULL};
    s->primary = ts_server_start(primary_conf, 0); /* skips when there is no binary */
    char replicaof[64];
    snprintf(replicaof, sizeof replicaof, "replicaof 127.0.0.1 %d", ts_server_port(s->primary));
    const char *const replica_conf[] = {"repl-diskless-sync-delay 0", replicaof,
                                        node_pass ? requirepass : NULL, masterauth, NULL};
    s->replica = ts_server_start(replica_conf, 0);
    /* The sentinels learn the replica from the primary's first INFO: it must
     * be there by then (the next INFO is 10 s later). */
    if (!poll_until(s, replica_up, WAIT_MS)) {
        char reason[sizeof s->why];
        snprintf(reason, sizeof reason, "%s", s->why);
        ts_sentinel_stop(s);
        fail_msg("the sentinel setup's replica did not sync within %d ms: %s", WAIT_MS, reason);
    }
    s->sent = calloc((size_t)nsentinels, sizeof *s->sent);
    assert_non_null(s->sent);
    int quorum = nsentinels >= 2 ? 2 : 1;
    for (int i = 0; i < nsentinels; i++) {
        tsp_proc *p = &s->sent[i];
        tsp_make_dir(p, "aredis-sentinel");
        snprintf(p->conf, sizeof p->conf, "%s/sentinel.conf", p->dir);
        p->ready = tsp_ready_ping;
        p->rm_dir_at_exit = 1;
        if (start_sentinel(s, p, ts_server_port(s->primary), quorum) != 0) {
            int said = tsp_dump_output(p);
            ts_sentinel_stop(s);
            fail_msg("sentinel %d: %s --sentinel (%s) did not start (%s)", i, tsp_server_path(),
                     ts_server_describe(), said ? "its output is above" : "it printed nothing");
        }
    }
    if (!poll_until(s, sentinels_ready, WAIT_MS)) {
        char reason[sizeof s->why];
        snprintf(reason, sizeof reason, "%s", s->why);
        dump_sentinels(s);
        ts_sentinel_stop(s);
        fail_msg("the %d sentinels did not settle within %d ms: %s", nsentinels, WAIT_MS, reason);
    }
    ts_log("primary, replica and %d sentinels up in %llu ms (%s)", nsentinels,
           (unsigned long long)(ts_now_ms() - t0), ts_server_describe());
    return s;
}

int ts_sentinel_primary_port(const ts_sentinel *s) {
    assert_non_null(s);
    return ts_server_port(s->primary);
}

int ts_sentinel_replica_port(const ts_sentinel *s) {
    assert_non_null(s);
    return ts_server_port(s->replica);
}

int ts_sentinel_count(const ts_sentinel *s) {
    assert_non_null(s);
    return s->n;
}

int ts_sentinel_port(const ts_sentinel *s, int i) {
    assert_non_null(s);
    assert_true(i >= 0 && i < s->n);
    return s->sent[i].port;
}

int ts_sentinel_master_port(const ts_sentinel *s) {
    assert_non_null(s);
    return majority_port((ts_sentinel *)s);
}

void ts_sentinel_kill_primary(ts_sentinel *s) {
    assert_non_null(s);
    ts_server_kill(s->primary);
}

void ts_sentinel_restart_primary(ts_sentinel *s) {
    assert_non_null(s);
    ts_server_restart(s->primary);
}

static int failed_over(ts_sentinel *s) {
    int port = majority_port(s), want = ts_server_port(s->replica);
    if (port < 0) return 0;
    if (port != want) {
        why(s, "a majority of sentinels name port %d, not the replica's %d", port, want);
        return 0;
    }
    char role[32] = "?";
    if (!info_field(s, want, "replication", "role", role, sizeof role) ||
        strcmp(role, "master") != 0) {
        why(s, "the sentinels name the replica, but it says role:%s", role);
        return 0;
    }
    return 1;
}

void ts_sentinel_wait_failover(ts_sentinel *s, uint64_t timeout_ms) {
    assert_non_null(s);
    uint64_t t0 = ts_now_ms();
    if (!poll_until(s, failed_over, timeout_ms)) {
        dump_sentinels(s);
        fail_msg("no sentinel failover within %llu ms: %s", (unsigned long long)timeout_ms, s->why);
    }
    ts_log("sentinels failed over to port %d in %llu ms", ts_server_port(s->replica),
           (unsigned long long)(ts_now_ms() - t0));
}
