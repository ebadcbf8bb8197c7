/*
 * bench/cluster.c — what Redis Cluster support costs (aredis/cluster.h):
 * GET and SET of 10,000 keys ("key:0".."key:9999", spread over every slot
 * and so over every primary; 64-byte values, each naming its key, so that
 * a GET's reply is checked to be its own key's value; each run reading or
 * writing them in turn) on one client, a reply callback issuing the next command (a
 * window of `depth` commands in flight, as bench/observe.c), with:
 *
 *   single            a plain aredis_client against one standalone
 *                     redis-server (no cluster mode): the baseline
 *   cluster           aredis_cluster over a cluster of 3 primaries, on the
 *                     built-in loop, default options
 *   cluster-libevent  the same on aredis's libevent adapter (the loop
 *                     libvalkey runs on here)
 *   libvalkey         libvalkey's async cluster client
 *                     (valkeyClusterAsyncCommand) on libevent, when the
 *                     build has it (-DLIBVALKEY_DIR, see bench/CMakeLists.txt)
 *   cluster-1slot     aredis_cluster, every key in one slot ("{key}:N"):
 *                     the routing without the spreading (one node), for
 *                     --instructions
 *
 * --clients defaults to single,cluster,cluster-libevent,libvalkey and
 * --instr-clients to single,cluster-1slot,cluster,libvalkey, each of them
 * that is built in (cluster-libevent: libevent found; libvalkey:
 * LIBVALKEY_DIR).
 *
 * The servers: unless --single and --seeds name running ones, the bench
 * starts its own on free 127.0.0.1 ports in a temp dir — one standalone
 * redis-server and three with cluster-enabled, joined by `redis-cli
 * --cluster create ... --cluster-replicas 0`, then polled until every node
 * says cluster_state:ok with 16384 slots and 3 known nodes — and stops them
 * at the end, also on failure (SIGTERM on exit and on SIGINT/SIGTERM/SIGHUP;
 * PR_SET_PDEATHSIG if the bench dies otherwise). --server-cpu N pins them
 * to CPU N (the bench itself stays where it was started, e.g. under
 * `taskset -c 1`). Every server runs with --save "" --appendonly no.
 *
 * For each op, depth and client: ops/s over several rounds (every client
 * once per round, the order rotating from round to round; each run in its
 * own process, after an untimed warm-up of 1,000 commands that also
 * connects every node), shown as the median and, round by round, as the
 * ratio to "single"; the client's CPU (user + sys, getrusage over the timed
 * part) per million commands and its ratio to single; and aredis's own
 * write(2) and read(2) calls per 1,000 commands (the node connections'
 * counters).
 *
 * --instructions[=N]: user-space instructions per command counted by
 * callgrind from two `--worker` runs of N and N/5 commands, differenced so
 * that start-up, topology read, connects, warm-up and teardown cancel out
 * (as bench/observe.c), for --instr-clients at --instr-depths: the
 * routing's cost is cluster-1slot against single; cluster against
 * cluster-1slot adds what spreading a window over three connections costs
 * (each node's share of it is written and read on its own).
 * --cg-keep=DIR keeps the callgrind files (DIR/callgrind.OP.dDEPTH.CLIENT.N.out)
 * for callgrind_annotate.
 *
 * Writes per node: --pipeline (default on) runs, in their own processes,
 * `--worker pipeline` (E execs of one aredis_cluster_pipeline of 256 GETs of
 * consecutive keys, nearly as many slots), `--worker burst` (256
 * aredis_cluster_command issued in one go from outside the loop, then run
 * until answered) and `--worker single-burst` (the same 256 on the single
 * node), and prints the node connections' write(2) calls and bytes per
 * node per exec, the bytes against those of the commands themselves (a
 * command sent twice shows), the replies checked; with strace in PATH, the write-family syscalls
 * (write, writev, sendmsg, sendto) of the whole process per exec too, from two runs of E and E/5
 * execs differenced.
 *
 *   cluster [--single HOST:PORT --seeds HOST:PORT[,HOST:PORT...]]
 *           [--server-cpu N] [--server-bin redis-server] [--cli-bin redis-cli]
 *           [-n COUNT] [--n1 COUNT] [--rounds R] [--ops get,set]
 *           [--depths 1,16,64,256] [--clients single,cluster,...] [--keys K]
 *           [--instructions[=N]] [--instr-depths 1,64]
 *           [--instr-clients single,cluster-1slot,cluster,libvalkey]
 *           [--cg-keep=DIR] [--pipeline=EXECS | --no-pipeline]
 *   cluster --worker CLIENT|pipeline|burst|single-burst [--op get|set]
 *           [-d DEPTH] [-n COUNT] [--single HOST:PORT] [--seeds LIST] [--keys K]
 *
 * -n is the commands per timed run at depth 8 and more (default 200000),
 * --n1 below depth 8 (default COUNT/10: a round trip per command is slow).
 * The keys are written (untimed) through the single node's client and the
 * cluster's before the rounds. Prints Markdown on stdout (progress on
 * stderr), with the targets of issue 16 stated against the figures (routing
 * within a few percent, taken as 5 %, of a single node's instructions; one
 * write per node per pipeline exec). Nothing here is asserted: numbers are
 * measured and printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <aredis/aredis.h>
#include <aredis/cluster.h>

#ifdef BENCH_HAVE_LIBEVENT
#include <event2/event.h>

#include <aredis/adapters/libevent.h>
#endif
#ifdef BENCH_HAVE_LIBVALKEY
#include <valkey/adapters/libevent.h>
#include <valkey/cluster.h>
#endif

#include "common.h"

enum { C_SINGLE, C_CLUSTER, C_CLUSTER_LE, C_VALKEY, C_CLUSTER1, C_COUNT };
static const char *const client_names[C_COUNT] = {"single", "cluster", "cluster-libevent",
                                                  "libvalkey", "cluster-1slot"};

#define VALUE_LEN 64
#define WARM_N 1000 /* untimed commands before every timed run */
#define MAX_KEYS 1000000
#define MAX_SEEDS 8
#define PIPE_SIZE 256

static int client_available(int c) {
    if (c == C_CLUSTER_LE) {
#ifdef BENCH_HAVE_LIBEVENT
        return 1;
#else
        return 0;
#endif
    }
    if (c == C_VALKEY) {
#ifdef BENCH_HAVE_LIBVALKEY
        return 1;
#else
        return 0;
#endif
    }
    return c >= 0 && c < C_COUNT;
}

static int client_parse(const char *s) {
    for (int c = 0; c < C_COUNT; c++)
        if (!strcmp(s, client_names[c])) return c;
    return -1;
}

static int in_list(const char *list, const char *name) {
    char l[512], w[64];
    snprintf(l, sizeof l, ",%s,", list);
    snprintf(w, sizeof w, ",%s,", name);
    return strstr(l, w) != NULL;
}

/* ---- Keys ------------------------------------------------------------------ */

static char (*g_keys)[24];
static char (*g_values)[VALUE_LEN]; /* key i's value: "value of key:i" padded */
static long g_nkeys = 10000;

/* one_slot: "{key}:N" (all in the slot of "key"), else "key:N". */
static void make_keys(int one_slot) {
    g_keys = malloc((size_t)g_nkeys * sizeof *g_keys);
    g_values = malloc((size_t)g_nkeys * sizeof *g_values);
    if (!g_keys || !g_values) {
        fprintf(stderr, "cluster: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < g_nkeys; i++) {
        snprintf(g_keys[i], sizeof g_keys[i], one_slot ? "{key}:%ld" : "key:%ld", i);
        int k = snprintf(g_values[i], VALUE_LEN, "value of %s ", g_keys[i]);
        for (int j = k; j < VALUE_LEN; j++)
            g_values[i][j] = (char)('a' + j % 26);
    }
}

/* A GET's reply is key i's value (replies matched to the wrong command
 * would not pass). */
static int value_ok(const char *s, size_t len, long i) {
    return len == VALUE_LEN && !memcmp(s, g_values[i], VALUE_LEN);
}

/* "host:port" into host (cap bytes) and *port. 0 or -1. */
static int parse_addr(const char *s, char *host, size_t cap, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= cap) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* ---- One worker run: a window of `depth` commands ---------------------------- */

typedef struct wrun wrun;

/* One command in flight: which key (a reply callback's data; the window's
 * next command reuses it). */
typedef struct wslot {
    wrun *r;
    long key;
} wslot;

#define MAX_DEPTH 4096

struct wrun {
    int client, is_get;
    long n, issued, done, errors;
    wslot slots[MAX_DEPTH];
    aredis_loop *loop;
    aredis_client *c;
    aredis_cluster *cl;
#ifdef BENCH_HAVE_LIBEVENT
    struct event_base *base;
#endif
#ifdef BENCH_HAVE_LIBVALKEY
    valkeyClusterAsyncContext *acc;
#endif
};

static void issue(wslot *w);

static void finish_one(wslot *w, int ok) {
    wrun *r = w->r;
    if (!ok && ++r->errors >= 1000) { /* a server gone: do not wait out the run */
        fprintf(stderr, "cluster: %s: 1,000 failed commands: giving up\n", client_names[r->client]);
        exit(1);
    }
    r->done++;
    if (r->done >= r->n) {
#ifdef BENCH_HAVE_LIBVALKEY
        if (r->client == C_VALKEY) {
            event_base_loopbreak(r->base);
            return;
        }
#endif
        aredis_loop_stop(r->loop);
        return;
    }
    if (r->issued < r->n) issue(w);
}

static void on_reply(aredis_client *c, aredis_reply *reply, const aredis_error *err, void *data) {
    (void)c;
    wslot *w = data;
    int ok = !err && reply &&
             (w->r->is_get
                  ? reply->type == AREDIS_REPLY_STRING && value_ok(reply->str, reply->len, w->key)
                  : reply->type == AREDIS_REPLY_STATUS);
    finish_one(w, ok);
}

#ifdef BENCH_HAVE_LIBVALKEY
static void on_vk_reply(valkeyClusterAsyncContext *acc, void *rep, void *data) {
    (void)acc;
    wslot *w = data;
    valkeyReply *reply = rep;
    int ok = reply && (w->r->is_get ? reply->type == VALKEY_REPLY_STRING &&
                                          value_ok(reply->str, reply->len, w->key)
                                    : reply->type == VALKEY_REPLY_STATUS);
    finish_one(w, ok);
}
#endif

/* The next command of the run, in slot w. */
static void issue(wslot *w) {
    wrun *r = w->r;
    long i = w->key = r->issued++ % g_nkeys;
    const char *key = g_keys[i], *value = g_values[i];
    int bad;
    switch (r->client) {
    case C_SINGLE:
        bad = (r->is_get ? aredis_command(r->c, on_reply, w, "GET %s", key)
                         : aredis_command(r->c, on_reply, w, "SET %s %b", key, value,
                                          (size_t)VALUE_LEN)) != AREDIS_ERR_OK;
        break;
#ifdef BENCH_HAVE_LIBVALKEY
    case C_VALKEY:
        bad = (r->is_get ? valkeyClusterAsyncCommand(r->acc, on_vk_reply, w, "GET %s", key)
                         : valkeyClusterAsyncCommand(r->acc, on_vk_reply, w, "SET %s %b", key,
                                                     value, (size_t)VALUE_LEN)) != VALKEY_OK;
        break;
#endif
    default:
        bad = (r->is_get ? aredis_cluster_command(r->cl, on_reply, w, "GET %s", key)
                         : aredis_cluster_command(r->cl, on_reply, w, "SET %s %b", key, value,
                                                  (size_t)VALUE_LEN)) != AREDIS_ERR_OK;
        break;
    }
    if (bad) {
        fprintf(stderr, "cluster: %s: issue failed: %s\n", client_names[r->client],
                r->client == C_VALKEY ? "libvalkey error" : aredis_call_error()->detail);
        exit(1);
    }
}

/* Run the loop until stopped (or until nothing is left to watch). */
static void run_loop(wrun *r) {
#ifdef BENCH_HAVE_LIBVALKEY
    if (r->client == C_VALKEY) {
        event_base_dispatch(r->base);
        return;
    }
#endif
    aredis_loop_run(r->loop);
}

/* n commands with `depth` in flight. Returns the errors. */
static long run_window(wrun *r, long n, int depth) {
    r->n = n;
    r->issued = r->done = r->errors = 0;
    for (int i = 0; i < depth && r->issued < n; i++) {
        r->slots[i].r = r;
        issue(&r->slots[i]);
    }
    long stuck = 0, last = -1;
    while (r->done < n) {
        run_loop(r);
        if (r->done == last && ++stuck > 1000) {
            fprintf(stderr, "cluster: %s: the loop stopped with %ld of %ld answered\n",
                    client_names[r->client], r->done, n);
            exit(1);
        }
        last = r->done;
    }
    return r->errors;
}

typedef struct endpoints {
    char single_host[256];
    int single_port;
    const char *seeds_s; /* "h:p,h:p" */
    char seed_buf[MAX_SEEDS][280];
    const char *seeds[MAX_SEEDS];
    size_t nseeds;
} endpoints;

static int parse_seeds(endpoints *ep, const char *s) {
    ep->seeds_s = s;
    ep->nseeds = 0;
    while (*s && ep->nseeds < MAX_SEEDS) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (!len || len >= sizeof ep->seed_buf[0]) return -1;
        memcpy(ep->seed_buf[ep->nseeds], s, len);
        ep->seed_buf[ep->nseeds][len] = '\0';
        char h[256];
        int p;
        if (parse_addr(ep->seed_buf[ep->nseeds], h, sizeof h, &p) != 0) return -1;
        ep->seeds[ep->nseeds] = ep->seed_buf[ep->nseeds];
        ep->nseeds++;
        s += len;
        if (*s == ',') s++;
    }
    return ep->nseeds ? 0 : -1;
}

/* Make the client of r->client on its loop. Exits on failure. */
static void w_open(wrun *r, const endpoints *ep) {
    if (r->client == C_VALKEY) {
#ifdef BENCH_HAVE_LIBVALKEY
        r->base = event_base_new();
        valkeyClusterOptions o;
        memset(&o, 0, sizeof o);
        o.initial_nodes = ep->seeds_s;
        o.options = VALKEY_OPT_BLOCKING_INITIAL_UPDATE;
        if (!r->base || valkeyClusterOptionsUseLibevent(&o, r->base) != VALKEY_OK) exit(1);
        r->acc = valkeyClusterAsyncConnectWithOptions(&o);
        if (!r->acc || r->acc->err) {
            fprintf(stderr, "cluster: libvalkey cannot connect to %s: %s\n", ep->seeds_s,
                    r->acc ? r->acc->errstr : "out of memory");
            exit(1);
        }
        return;
#endif
    }
    if (r->client == C_CLUSTER_LE) {
#ifdef BENCH_HAVE_LIBEVENT
        r->base = event_base_new();
        r->loop = r->base ? aredis_loop_libevent(r->base) : NULL;
#endif
    } else {
        r->loop = aredis_loop_new();
    }
    if (!r->loop) {
        fprintf(stderr, "cluster: cannot make the loop\n");
        exit(1);
    }
    if (r->client == C_SINGLE) {
        aredis_options o = AREDIS_OPTIONS_INIT;
        o.host = ep->single_host;
        o.port = ep->single_port;
        r->c = aredis_client_new(r->loop, &o);
        if (!r->c) {
            fprintf(stderr, "cluster: cannot make a client: %s\n", aredis_call_error()->detail);
            exit(1);
        }
        aredis_client_connect(r->c);
        aredis_future *f = aredis_future_ready(r->c);
        if (aredis_await(f) != AREDIS_ERR_OK) {
            fprintf(stderr, "cluster: cannot reach %s:%d: %s\n", ep->single_host, ep->single_port,
                    aredis_future_error(f)->detail);
            exit(1);
        }
        aredis_future_release(f);
        return;
    }
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    o.seeds = ep->seeds;
    o.nseeds = ep->nseeds;
    r->cl = aredis_cluster_new(r->loop, &o);
    if (!r->cl) {
        fprintf(stderr, "cluster: cannot make the cluster object: %s\n",
                aredis_call_error()->detail);
        exit(1);
    }
}

static void w_close(wrun *r) {
    aredis_client_free(r->c);
    aredis_cluster_free(r->cl);
    if (r->loop) aredis_loop_free(r->loop);
#ifdef BENCH_HAVE_LIBVALKEY
    if (r->acc) valkeyClusterAsyncFree(r->acc);
#endif
#ifdef BENCH_HAVE_LIBEVENT
    if (r->base) event_base_free(r->base);
#endif
}

/* aredis's write(2) / read(2) calls so far: the client's, or every node
 * connection's summed. 0 for libvalkey. */
static void w_io(wrun *r, unsigned long long *writes, unsigned long long *reads) {
    *writes = *reads = 0;
    aredis_client *nodes[64];
    size_t nn = 0;
    if (r->c) {
        nodes[0] = r->c;
        nn = 1;
    } else if (r->cl) {
        nn = aredis_cluster_nodes(r->cl, nodes, 64, 1);
        if (nn > 64) nn = 64;
    }
    for (size_t i = 0; i < nn; i++) {
        aredis_client_stats s;
        aredis_client_get_stats(nodes[i], &s);
        *writes += s.write_calls;
        *reads += s.read_calls;
    }
}

static int worker_run(int client, int is_get, const endpoints *ep, long n, int depth) {
    wrun r;
    memset(&r, 0, sizeof r);
    r.client = client;
    r.is_get = is_get;
    w_open(&r, ep);
    /* Untimed: topology, connects, the first replies of every node. */
    long warm_errors = run_window(&r, WARM_N, depth);
    aredis_cluster_stats cs;
    memset(&cs, 0, sizeof cs);
    if (r.cl) aredis_cluster_get_stats(r.cl, &cs);
    unsigned long long w0, r0, w1, r1;
    w_io(&r, &w0, &r0);
    bench_mark a, b;
    bench_mark_take(&a);
    long errors = run_window(&r, n, depth);
    bench_mark_take(&b);
    w_io(&r, &w1, &r1);
    printf("RESULT client=%s op=%s ops=%ld secs=%.6f user=%.6f sys=%.6f errors=%ld warm_errors=%ld "
           "writes=%llu reads=%llu nodes=%zu slots=%zu moved=%llu\n",
           client_names[client], is_get ? "get" : "set", n, b.t - a.t, b.user - a.user,
           b.sys - a.sys, errors, warm_errors, w1 - w0, r1 - r0, cs.nodes, cs.slots_known,
           (unsigned long long)cs.moved);
    w_close(&r);
    return errors || warm_errors ? 1 : 0;
}

/* ---- Writes per node: a pipeline / a burst over many slots ------------------- */

typedef struct prun prun;

typedef struct pslot {
    prun *p;
    long key;
} pslot;

struct prun {
    long pending, errors;
    aredis_loop *loop;
    pslot slots[PIPE_SIZE]; /* the keys of the exec or burst under way */
};

static void on_exec(aredis_client *c, aredis_reply *reply, const aredis_error *err, void *data) {
    (void)c;
    prun *p = data;
    if (err || !reply || reply->type != AREDIS_REPLY_ARRAY || reply->elements != PIPE_SIZE)
        p->errors++;
    else
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type != AREDIS_REPLY_STRING ||
                !value_ok(reply->element[i]->str, reply->element[i]->len, p->slots[i].key))
                p->errors++;
    if (--p->pending == 0) aredis_loop_stop(p->loop);
}

static void on_get(aredis_client *c, aredis_reply *reply, const aredis_error *err, void *data) {
    (void)c;
    pslot *w = data;
    prun *p = w->p;
    if (err || !reply || reply->type != AREDIS_REPLY_STRING ||
        !value_ok(reply->str, reply->len, w->key))
        p->errors++;
    if (--p->pending == 0) aredis_loop_stop(p->loop);
}

static void wait_pending(prun *p) {
    long stuck = 0;
    while (p->pending > 0) {
        aredis_loop_run(p->loop);
        if (p->pending > 0 && ++stuck > 1000) {
            fprintf(stderr, "cluster: the loop stopped with %ld pending\n", p->pending);
            exit(1);
        }
    }
}

/* kind: 0 pipeline, 1 burst (cluster), 2 burst on the single node. */
static int worker_pipe(int kind, const endpoints *ep, long execs) {
    static const char *const kinds[3] = {"pipeline", "burst", "single-burst"};
    wrun r;
    memset(&r, 0, sizeof r);
    r.client = kind == 2 ? C_SINGLE : C_CLUSTER;
    r.is_get = 1;
    w_open(&r, ep);
    /* At depth 1: a warm-up whose writes do not depend on timing (strace
     * differences two runs of it). */
    if (run_window(&r, 300, 1) != 0) {
        fprintf(stderr, "cluster: %s: the warm-up failed\n", kinds[kind]);
        return 1;
    }
    aredis_client *nodes[64];
    size_t nn;
    if (kind == 2) {
        nodes[0] = r.c;
        nn = 1;
    } else {
        nn = aredis_cluster_nodes(r.cl, nodes, 64, 0);
        if (nn > 64) nn = 64;
    }
    unsigned long long w0[64], b0[64], cmds[64], expect[64];
    for (size_t i = 0; i < nn; i++) {
        aredis_client_stats s;
        aredis_client_get_stats(nodes[i], &s);
        w0[i] = s.write_calls;
        b0[i] = s.bytes_out;
        cmds[i] = expect[i] = 0;
    }
    static unsigned char seen[16384];
    unsigned long long slots = 0;
    static prun p;
    p.loop = r.loop;
    for (int j = 0; j < PIPE_SIZE; j++)
        p.slots[j].p = &p;
    aredis_cluster_pipeline *pl = kind == 0 ? aredis_cluster_pipeline_new(r.cl) : NULL;
    if (kind == 0 && !pl) {
        fprintf(stderr, "cluster: cannot make a pipeline\n");
        return 1;
    }
    for (long e = 0; e < execs; e++) {
        memset(seen, 0, sizeof seen);
        for (int j = 0; j < PIPE_SIZE; j++) {
            long ki = p.slots[j].key = (e * PIPE_SIZE + j) % g_nkeys;
            const char *key = g_keys[ki];
            size_t klen = strlen(key);
            unsigned slot = aredis_cluster_keyslot(key, klen);
            slots += !seen[slot];
            seen[slot] = 1;
            /* its bytes: *2 $3 GET $klen key */
            unsigned long long bytes = 19 + klen + (klen >= 10) + (klen >= 100);
            aredis_client *owner = kind == 2 ? r.c : aredis_cluster_node_for_key(r.cl, key, klen);
            for (size_t i = 0; i < nn; i++)
                if (nodes[i] == owner) {
                    cmds[i]++;
                    expect[i] += bytes;
                }
            aredis_err err;
            if (kind == 0)
                err = aredis_cluster_pipeline_command(pl, "GET %s", key);
            else if (kind == 1)
                err = aredis_cluster_command(r.cl, on_get, &p.slots[j], "GET %s", key);
            else
                err = aredis_command(r.c, on_get, &p.slots[j], "GET %s", key);
            if (err != AREDIS_ERR_OK) {
                fprintf(stderr, "cluster: %s: queueing failed: %s\n", kinds[kind],
                        aredis_strerror(err));
                return 1;
            }
            if (kind != 0) p.pending++;
        }
        if (kind == 0) {
            p.pending++;
            if (aredis_cluster_pipeline_exec(pl, on_exec, &p) != AREDIS_ERR_OK) {
                fprintf(stderr, "cluster: pipeline exec failed\n");
                return 1;
            }
        }
        wait_pending(&p);
    }
    aredis_cluster_pipeline_free(pl);
    printf("PIPE kind=%s execs=%ld size=%d nodes=%zu slots=%.1f errors=%ld", kinds[kind], execs,
           PIPE_SIZE, nn, (double)slots / (double)execs, p.errors);
    printf(" writes=");
    for (size_t i = 0; i < nn; i++) {
        aredis_client_stats s;
        aredis_client_get_stats(nodes[i], &s);
        printf("%s%llu", i ? "," : "", s.write_calls - w0[i]);
    }
    printf(" bytes=");
    for (size_t i = 0; i < nn; i++) {
        aredis_client_stats s;
        aredis_client_get_stats(nodes[i], &s);
        printf("%s%llu", i ? "," : "", s.bytes_out - b0[i]);
    }
    printf(" cmds=");
    for (size_t i = 0; i < nn; i++)
        printf("%s%llu", i ? "," : "", cmds[i]);
    printf(" expect=");
    for (size_t i = 0; i < nn; i++)
        printf("%s%llu", i ? "," : "", expect[i]);
    printf("\n");
    w_close(&r);
    return p.errors ? 1 : 0;
}

/* ---- Servers ------------------------------------------------------------------ */

#define MAX_SRV 4
static pid_t g_srv_pid[MAX_SRV];
static int g_nsrv;
static pid_t g_main_pid;
static char g_dir[128];
/* Every file the servers and redis-cli leave in g_dir, made before any is. */
static char g_files[64][200];
static int g_nfiles;

/* Stop every server we started and remove their dir. Only kill, waitpid,
 * unlink and rmdir: also called from a signal handler. */
static void servers_stop(void) {
    if (getpid() != g_main_pid) return;
    for (int i = 0; i < g_nsrv; i++)
        if (g_srv_pid[i] > 0) kill(g_srv_pid[i], SIGTERM);
    for (int i = 0; i < g_nsrv; i++) {
        if (g_srv_pid[i] <= 0) continue;
        int st, waited = 0;
        while (waitpid(g_srv_pid[i], &st, WNOHANG) == 0) {
            if (++waited == 500) kill(g_srv_pid[i], SIGKILL); /* 5 s */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        g_srv_pid[i] = 0;
    }
    for (int i = 0; i < g_nfiles; i++)
        unlink(g_files[i]);
    if (g_dir[0]) rmdir(g_dir);
}

static void on_signal(int sig) {
    servers_stop();
    _exit(128 + sig);
}

static int g_server_cpu = -1;

/* fork + exec av with stdout/stderr into log; the child dies with us. */
static pid_t spawn(char *const *av, const char *log, int pin) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != g_main_pid) _exit(1);
    if (pin && g_server_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(g_server_cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) _exit(126);
    }
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int nul = open("/dev/null", O_RDONLY);
    if (fd < 0 || nul < 0) _exit(126);
    dup2(nul, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(av[0], av);
    _exit(127);
}

/* redis-cli's answer to `args` (its stdout), or "" on failure. */
static const char *g_cli = "redis-cli";
static const char *cli(int port, const char *args, char *out, size_t cap) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' -h 127.0.0.1 -p %d %s 2>/dev/null", g_cli, port, args);
    out[0] = '\0';
    FILE *f = popen(cmd, "r");
    if (!f) return out;
    size_t len = fread(out, 1, cap - 1, f);
    out[len] = '\0';
    pclose(f);
    return out;
}

static int free_port(void) {
    for (int tries = 0; tries < 100; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t al = sizeof a;
        int port = 0;
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &al) == 0)
            port = ntohs(a.sin_port);
        if (fd >= 0) close(fd);
        /* a cluster node also listens on port + 10000 (its bus) */
        if (port > 1024 && port + 10000 < 65536) return port;
    }
    return -1;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start a redis-server (cluster-enabled when `cluster`) on a free port,
 * until one answers as ours. Returns its port; exits on failure. */
static int server_start(const char *bin, int cluster) {
    for (int tries = 0; tries < 5; tries++) {
        int port = free_port();
        if (port < 0 || g_nsrv >= MAX_SRV) break;
        char ps[16], logf[200], conf[32];
        snprintf(ps, sizeof ps, "%d", port);
        snprintf(logf, sizeof logf, "%s/redis-%d.log", g_dir, port);
        snprintf(conf, sizeof conf, "nodes-%d.conf", port);
        if (g_nfiles + 2 > 64) break;
        snprintf(g_files[g_nfiles++], sizeof g_files[0], "%s", logf);
        if (cluster) snprintf(g_files[g_nfiles++], sizeof g_files[0], "%s/%s", g_dir, conf);
        char *av[32];
        int k = 0;
        av[k++] = (char *)bin;
        av[k++] = "--port";
        av[k++] = ps;
        av[k++] = "--bind";
        av[k++] = "127.0.0.1";
        av[k++] = "--dir";
        av[k++] = g_dir;
        av[k++] = "--save";
        av[k++] = "";
        av[k++] = "--appendonly";
        av[k++] = "no";
        av[k++] = "--daemonize";
        av[k++] = "no";
        if (cluster) {
            av[k++] = "--cluster-enabled";
            av[k++] = "yes";
            av[k++] = "--cluster-config-file";
            av[k++] = conf;
        }
        av[k] = NULL;
        pid_t pid = spawn(av, logf, 1);
        if (pid < 0) break;
        g_srv_pid[g_nsrv++] = pid;
        char want[64], buf[8192];
        snprintf(want, sizeof want, "process_id:%d\r", (int)pid);
        for (int i = 0; i < 200; i++) { /* 10 s */
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                g_srv_pid[g_nsrv - 1] = 0;
                break;
            }
            if (strstr(cli(port, "info server", buf, sizeof buf), want)) return port;
            sleep_ms(50);
        }
        if (g_srv_pid[g_nsrv - 1] > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        g_nsrv--;
    }
    fprintf(stderr, "cluster: %s did not start (logs in %s)\n", bin, g_dir);
    exit(1);
}

/* "name:value" of CLUSTER INFO's text, or -1 / "" */
static long info_num(const char *text, const char *name) {
    const char *p = strstr(text, name);
    if (!p || p[strlen(name)] != ':') return -1;
    return atol(p + strlen(name) + 1);
}

/* One standalone server and a cluster of 3 primaries; fills ep. */
static void servers_start(const char *bin, endpoints *ep) {
    snprintf(g_dir, sizeof g_dir, "/tmp/aredis-bench-cluster-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(servers_stop);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    snprintf(ep->single_host, sizeof ep->single_host, "127.0.0.1");
    ep->single_port = server_start(bin, 0);
    int ports[3];
    for (int i = 0; i < 3; i++)
        ports[i] = server_start(bin, 1);
    static char seeds[128];
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", ports[0], ports[1],
             ports[2]);
    char a1[32], a2[32], a3[32], logf[200];
    snprintf(a1, sizeof a1, "127.0.0.1:%d", ports[0]);
    snprintf(a2, sizeof a2, "127.0.0.1:%d", ports[1]);
    snprintf(a3, sizeof a3, "127.0.0.1:%d", ports[2]);
    snprintf(logf, sizeof logf, "%s/create.log", g_dir);
    snprintf(g_files[g_nfiles++], sizeof g_files[0], "%s", logf);
    char *av[] = {(char *)g_cli,        "--cluster", "create",        a1,  a2, a3,
                  "--cluster-replicas", "0",         "--cluster-yes", NULL};
    pid_t pid = spawn(av, logf, 0);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "cluster: `redis-cli --cluster create` failed (see %s)\n", logf);
        exit(1);
    }
    /* Every node: cluster_state:ok, all slots, all nodes known. */
    char buf[4096];
    for (int i = 0; i < 600; i++) { /* 30 s */
        int ok = 1;
        for (int j = 0; j < 3 && ok; j++) {
            cli(ports[j], "cluster info", buf, sizeof buf);
            ok = strstr(buf, "cluster_state:ok") && info_num(buf, "cluster_slots_ok") == 16384 &&
                 info_num(buf, "cluster_known_nodes") == 3;
        }
        if (ok) {
            if (parse_seeds(ep, seeds) != 0) exit(1);
            fprintf(stderr, "cluster: single node on 127.0.0.1:%d, cluster on %s (%s)\n",
                    ep->single_port, seeds, g_dir);
            return;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "cluster: the cluster did not reach cluster_state:ok: %s\n", buf);
    exit(1);
}

/* ---- Children: timed workers, callgrind and strace runs ------------------------ */

static const char *g_self;

/* Run `[prefix...] self --worker WHAT ...` with stdout into buf (the tail,
 * at most cap - 1 bytes) and stderr passed through or into errlog. Returns
 * 0 when it exited with status 0. */
static int run_child(const char *const *prefix, const char *what, int is_get, const endpoints *ep,
                     long n, int depth, const char *errlog, char *buf, size_t cap) {
    char nbuf[32], dbuf[16], kbuf[32], single[300];
    snprintf(nbuf, sizeof nbuf, "%ld", n);
    snprintf(dbuf, sizeof dbuf, "%d", depth);
    snprintf(kbuf, sizeof kbuf, "%ld", g_nkeys);
    snprintf(single, sizeof single, "%s:%d", ep->single_host, ep->single_port);
    const char *av[40];
    int k = 0;
    for (; prefix && prefix[k]; k++)
        av[k] = prefix[k];
    av[k++] = g_self;
    av[k++] = "--worker";
    av[k++] = what;
    av[k++] = "--op";
    av[k++] = is_get ? "get" : "set";
    av[k++] = "--single";
    av[k++] = single;
    av[k++] = "--seeds";
    av[k++] = ep->seeds_s;
    av[k++] = "--keys";
    av[k++] = kbuf;
    av[k++] = "-n";
    av[k++] = nbuf;
    av[k++] = "-d";
    av[k++] = dbuf;
    av[k] = NULL;

    return bench_run_capture(av, errlog, buf, cap);
}

/* "key=a,b,c" in s into out (at most max); returns how many. */
static int field_list(const char *s, const char *key, double *out, int max) {
    size_t n = strlen(key);
    for (const char *p = s; (p = strstr(p, key)); p += n) {
        if ((p != s && p[-1] != ' ') || p[n] != '=') continue;
        const char *q = p + n + 1;
        int k = 0;
        while (k < max) {
            char *end;
            double v = strtod(q, &end);
            if (end == q) break;
            out[k++] = v;
            q = end;
            if (*q != ',') break;
            q++;
        }
        return k;
    }
    return 0;
}

typedef struct outcome {
    double secs, user, sys, writes, reads;
} outcome;

/* One timed run in its own process. 0 or -1. */
static int timed(int client, int is_get, const endpoints *ep, long n, int depth, outcome *out) {
    char buf[4096];
    if (run_child(NULL, client_names[client], is_get, ep, n, depth, NULL, buf, sizeof buf) != 0) {
        fprintf(stderr, "cluster: the %s run failed: %s\n", client_names[client], buf);
        return -1;
    }
    const char *res = strstr(buf, "RESULT ");
    if (!res) return -1;
    out->secs = bench_field(res, "secs", -1);
    out->user = bench_field(res, "user", 0);
    out->sys = bench_field(res, "sys", 0);
    out->writes = bench_field(res, "writes", 0);
    out->reads = bench_field(res, "reads", 0);
    if (client != C_SINGLE && client != C_VALKEY && bench_field(res, "slots", 0) != 16384)
        fprintf(stderr, "cluster: %s knew %.0f slots after its warm-up\n", client_names[client],
                bench_field(res, "slots", 0));
    return out->secs > 0 && bench_field(res, "errors", 1) == 0 ? 0 : -1;
}

/* Instructions of one `--worker` run under callgrind, or -1. */
static long long callgrind(int client, int is_get, const endpoints *ep, long n, int depth,
                           const char *keep) {
    char log[96], cg[600], outopt[640], buf[4096];
    snprintf(log, sizeof log, "/tmp/aredis-cluster-bench-%d.log", (int)getpid());
    if (keep)
        snprintf(cg, sizeof cg, "%s/callgrind.%s.d%d.%s.%ld.out", keep, is_get ? "get" : "set",
                 depth, client_names[client], n);
    snprintf(outopt, sizeof outopt, "--callgrind-out-file=%s", keep ? cg : "/dev/null");
    const char *prefix[] = {"valgrind", "--tool=callgrind", outopt, NULL};
    if (run_child(prefix, client_names[client], is_get, ep, n, depth, log, buf, sizeof buf) != 0) {
        fprintf(stderr, "cluster: the callgrind run of %s failed (see %s)\n", client_names[client],
                log);
        return -1;
    }
    long long ir = bench_callgrind_refs(log);
    unlink(log);
    return ir;
}

/* Write-family syscalls of one `--worker WHAT` run under strace, or -1. */
static long long strace_writes(const char *what, const endpoints *ep, long execs) {
    char log[96], out[96], buf[4096];
    snprintf(log, sizeof log, "/tmp/aredis-cluster-bench-%d.strace.log", (int)getpid());
    snprintf(out, sizeof out, "/tmp/aredis-cluster-bench-%d.strace", (int)getpid());
    const char *prefix[] = {"strace", "-f", "-c", "-e", "trace=write,writev,sendmsg,sendto",
                            "-o",     out,  NULL};
    long long calls = -1;
    if (run_child(prefix, what, 1, ep, execs, 1, log, buf, sizeof buf) == 0) {
        FILE *f = fopen(out, "r");
        char line[256];
        while (f && fgets(line, sizeof line, f)) {
            /* "100.00    0.000039          19         2           total" */
            double pct, secs;
            long long usecs, n;
            char name[64];
            if (sscanf(line, "%lf %lf %lld %lld %63s", &pct, &secs, &usecs, &n, name) == 5 &&
                !strcmp(name, "total"))
                calls = n;
            else if (sscanf(line, "%lf %lf %lld %63s", &pct, &secs, &n, name) == 4 &&
                     !strcmp(name, "total"))
                calls = n;
        }
        if (f) fclose(f);
    }
    unlink(out);
    unlink(log);
    return calls;
}

/* ---- The writes-per-node figure ---------------------------------------------- */

static void pipe_figure(const endpoints *ep, long execs, int have_strace) {
    static const char *const what[3] = {"pipeline", "burst", "single-burst"};
    static const char *const label[3] = {"`aredis_cluster_pipeline` of 256 GETs, one exec",
                                         "256 `aredis_cluster_command` GETs in one go",
                                         "the same 256 GETs on the single node (`aredis_command`)"};
    printf(
        "\n**Writes per node: 256 GETs of consecutive keys (of as many slots, nearly) at a time, "
        "%ld times, each answered before the next; the node connections' own write(2) "
        "counters%s.**\n",
        execs,
        have_strace ? " and, for the whole process, the write-family syscalls strace "
                      "counted (write, writev, sendmsg, sendto; two runs of "
                      "different lengths differenced)"
                    : "");
    printf("\n| 256 GETs as | distinct slots | commands per node | write(2) per node per exec "
           "| bytes per node per exec | bytes sent / the commands' | write syscalls per exec, "
           "whole process (strace) |\n");
    printf("|---|---:|---|---|---|---:|---:|\n");
    double worst = -1; /* the most write(2) of one node per exec (the cluster rows) */
    for (int k = 0; k < 3; k++) {
        char buf[4096];
        if (run_child(NULL, what[k], 1, ep, execs, 1, NULL, buf, sizeof buf) != 0) {
            fprintf(stderr, "cluster: the %s run failed: %s\n", what[k], buf);
            printf("| %s | (failed) | | | | | |\n", label[k]);
            continue;
        }
        const char *res = strstr(buf, "PIPE ");
        if (!res) continue;
        double w[64], b[64], c[64], x[64], sent = 0, own = 0;
        int nw = field_list(res, "writes", w, 64);
        int nb = field_list(res, "bytes", b, 64);
        int nc = field_list(res, "cmds", c, 64);
        int nx = field_list(res, "expect", x, 64);
        for (int i = 0; i < nb; i++)
            sent += b[i];
        for (int i = 0; i < nx; i++)
            own += x[i];
        char ws[256] = "", bs[256] = "", cs[256] = "", st[32] = "-";
        size_t o1 = 0, o2 = 0, o3 = 0;
        for (int i = 0; i < nw && o1 < sizeof ws; i++) {
            o1 += (size_t)snprintf(ws + o1, sizeof ws - o1, "%s%.2f", i ? " / " : "",
                                   w[i] / (double)execs);
            if (k < 2 && w[i] / (double)execs > worst) worst = w[i] / (double)execs;
        }
        for (int i = 0; i < nb && o2 < sizeof bs; i++)
            o2 += (size_t)snprintf(bs + o2, sizeof bs - o2, "%s%.0f", i ? " / " : "",
                                   b[i] / (double)execs);
        for (int i = 0; i < nc && o3 < sizeof cs; i++)
            o3 += (size_t)snprintf(cs + o3, sizeof cs - o3, "%s%.1f", i ? " / " : "",
                                   c[i] / (double)execs);
        if (have_strace) {
            long small = execs / 5 > 0 ? execs / 5 : 1;
            long long hi = strace_writes(what[k], ep, execs);
            long long lo = strace_writes(what[k], ep, small);
            if (hi >= 0 && lo >= 0 && execs > small)
                snprintf(st, sizeof st, "%.2f", (double)(hi - lo) / (double)(execs - small));
        }
        printf("| %s | %.1f | %s | %s | %s | %.2f | %s |\n", label[k], bench_field(res, "slots", 0),
               cs, ws, bs, own > 0 ? sent / own : 0.0, st);
    }
    if (worst >= 0)
        printf("\nTarget: a pipeline over many slots leaves in one write per node: at most "
               "%.2f write(2) per node per exec (%s).\n",
               worst, worst <= 1.0 ? "met" : "MISSED");
}

/* ---- Main ------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: cluster [--single HOST:PORT --seeds HOST:PORT[,...]] [--server-cpu N]\n"
            "               [--server-bin redis-server] [--cli-bin redis-cli]\n"
            "               [-n COUNT] [--n1 COUNT] [--rounds R] [--ops get,set]\n"
            "               [--depths 1,16,64,256] [--clients single,cluster,...] [--keys K]\n"
            "               [--instructions[=N]] [--instr-depths 1,64] [--instr-clients LIST]\n"
            "               [--cg-keep=DIR] [--pipeline=EXECS | --no-pipeline]\n"
            "       cluster --worker CLIENT|pipeline|burst|single-burst [--op get|set] [-d D]\n"
            "               [-n COUNT] [--single HOST:PORT] [--seeds LIST] [--keys K]\n"
            "clients: single, cluster, cluster-libevent, libvalkey, cluster-1slot\n");
    exit(2);
}

#define MAX_ROUNDS 64
#define MAX_DEPTHS 8

typedef struct cell {
    double ops[MAX_ROUNDS], cpu[MAX_ROUNDS]; /* ops/s; CPU s per 1M commands */
    double writes, reads;                    /* write(2), read(2) over all rounds */
    long count;                              /* commands over all rounds */
    double ir;                               /* instructions per command, or -1 */
} cell;

static double median_of(const double *v, int n) {
    double tmp[MAX_ROUNDS];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    return bench_median(tmp, (size_t)n);
}

int main(int argc, char **argv) {
    const char *ops = "get,set", *depths_s = "1,16,64,256", *clients_s = NULL, *keep = NULL;
    const char *instr_depths_s = "1,64", *instr_clients_s = NULL, *single_s = NULL;
    const char *seeds_s = NULL, *server_bin = "redis-server", *worker = NULL, *v;
    int depth = 1, is_get = 1, rounds = 5;
    long n = 200000, n1 = 0, instr_n = 0, pipe_execs = 200;
    g_self = argv[0];
    g_main_pid = getpid();
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "-n")))
            n = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--n1")))
            n1 = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "-d")))
            depth = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")))
            rounds = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--op")))
            is_get = !strcmp(v, "get");
        else if ((v = bench_opt(argc, argv, &i, "--ops")))
            ops = v;
        else if ((v = bench_opt(argc, argv, &i, "--depths")))
            depths_s = v;
        else if ((v = bench_opt(argc, argv, &i, "--clients")))
            clients_s = v;
        else if ((v = bench_opt(argc, argv, &i, "--keys")))
            g_nkeys = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--single")))
            single_s = v;
        else if ((v = bench_opt(argc, argv, &i, "--seeds")))
            seeds_s = v;
        else if ((v = bench_opt(argc, argv, &i, "--server-cpu")))
            g_server_cpu = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--server-bin")))
            server_bin = v;
        else if ((v = bench_opt(argc, argv, &i, "--cli-bin")))
            g_cli = v;
        else if ((v = bench_opt(argc, argv, &i, "--worker")))
            worker = v;
        else if ((v = bench_opt(argc, argv, &i, "--instr-depths")))
            instr_depths_s = v;
        else if ((v = bench_opt(argc, argv, &i, "--instr-clients")))
            instr_clients_s = v;
        else if ((v = bench_opt_eq(argv, i, "--instructions")))
            instr_n = *v ? atol(v) : 50000;
        else if ((v = bench_opt(argc, argv, &i, "--cg-keep")))
            keep = v;
        else if ((v = bench_opt_eq(argv, i, "--pipeline")))
            pipe_execs = *v ? atol(v) : 200;
        else if (!strcmp(argv[i], "--no-pipeline"))
            pipe_execs = 0;
        else if (!strcmp(argv[i], "--libvalkey")) {
            /* scripts/bench.sh: is libvalkey built in, which version? */
#ifdef BENCH_HAVE_LIBVALKEY
            printf("%s\n", BENCH_LIBVALKEY_VERSION);
            return 0;
#else
            return 1;
#endif
        } else
            usage();
    }
    if (n <= 0 || depth <= 0 || depth > MAX_DEPTH || rounds < 1 || rounds > MAX_ROUNDS ||
        g_nkeys < 1 || g_nkeys > MAX_KEYS || (!single_s) != (!seeds_s))
        usage();
    if (n1 <= 0) n1 = n / 10 > 0 ? n / 10 : 1;

    endpoints ep;
    memset(&ep, 0, sizeof ep);
    if (single_s &&
        (parse_addr(single_s, ep.single_host, sizeof ep.single_host, &ep.single_port) != 0 ||
         parse_seeds(&ep, seeds_s) != 0))
        usage();

    if (worker) {
        if (!single_s) usage();
        int c = client_parse(worker);
        int kind = !strcmp(worker, "pipeline")       ? 0
                   : !strcmp(worker, "burst")        ? 1
                   : !strcmp(worker, "single-burst") ? 2
                                                     : -1;
        if (c < 0 && kind < 0) usage();
        if (c >= 0 && !client_available(c)) {
            fprintf(stderr, "cluster: %s is not built in\n", worker);
            return 2;
        }
        make_keys(c == C_CLUSTER1);
        if (kind >= 0) return worker_pipe(kind, &ep, n);
        return worker_run(c, is_get, &ep, n, depth);
    }

    /* Which clients, in which order. */
    int want[C_COUNT], nc = 0, iwant[C_COUNT], ni = 0, asked = clients_s != NULL;
    if (!clients_s) clients_s = "single,cluster,cluster-libevent,libvalkey"; /* those built in */
    if (!instr_clients_s) instr_clients_s = "single,cluster-1slot,cluster,libvalkey";
    for (int c = 0; c < C_COUNT; c++) {
        if (in_list(clients_s, client_names[c])) {
            if (client_available(c))
                want[nc++] = c;
            else if (asked)
                fprintf(stderr, "cluster: %s is not built in: left out\n", client_names[c]);
        }
        if (instr_n > 0 && in_list(instr_clients_s, client_names[c]) && client_available(c))
            iwant[ni++] = c;
    }
    long depths[MAX_DEPTHS], idepths[MAX_DEPTHS];
    int nd = bench_parse_list(depths_s, depths, MAX_DEPTHS);
    int nid = instr_n > 0 ? bench_parse_list(instr_depths_s, idepths, MAX_DEPTHS) : 0;
    if (nd < 1 || (nc < 1 && ni < 1)) usage();
    for (int di = 0; di < nd; di++)
        if (depths[di] < 1 || depths[di] > MAX_DEPTH) usage();
    for (int di = 0; di < nid; di++)
        if (idepths[di] < 1 || idepths[di] > MAX_DEPTH) usage();
    int have_single = 0;
    for (int j = 0; j < nc; j++)
        have_single |= want[j] == C_SINGLE;

    if (!single_s) servers_start(server_bin, &ep);

    /* Every key, with the value GET checks: SET through the single node's
     * client, the cluster's (keys of every slot and of the one slot). */
    {
        outcome o;
        int need1 = 0;
        for (int j = 0; j < ni; j++)
            need1 |= iwant[j] == C_CLUSTER1;
        for (int j = 0; j < nc; j++)
            need1 |= want[j] == C_CLUSTER1;
        int pre[3] = {C_SINGLE,
                      client_available(C_VALKEY) && !in_list(clients_s, "cluster") &&
                              !in_list(instr_clients_s, "cluster")
                          ? C_VALKEY
                          : C_CLUSTER,
                      C_CLUSTER1};
        for (int k = 0; k < (need1 ? 3 : 2); k++)
            if (timed(pre[k], 0, &ep, g_nkeys, 256, &o) != 0) {
                fprintf(stderr, "cluster: writing the keys through %s failed\n",
                        client_names[pre[k]]);
                return 1;
            }
    }

    printf("<!-- cluster bench: single node %s:%d, cluster %s; %d round(s), %ld commands per "
           "run (%ld below depth 8); %ld keys of %d bytes",
           ep.single_host, ep.single_port, ep.seeds_s, rounds, n, n1, g_nkeys, VALUE_LEN);
    if (instr_n > 0)
        printf("; instructions from callgrind runs of %ld and %ld", instr_n,
               instr_n / 5 > 0 ? instr_n / 5 : 1);
    printf(" -->\n");

    static cell cells[2][MAX_DEPTHS][C_COUNT];
    static const char *const op_names[2] = {"SET", "GET"};
    for (int g = 0; g < 2 && nc > 0; g++) {
        if (!in_list(ops, g ? "get" : "set")) continue;
        for (int di = 0; di < nd; di++) {
            int d = (int)depths[di];
            long cnt = d < 8 ? n1 : n;
            for (int r = 0; r < rounds; r++) {
                for (int j = 0; j < nc; j++) {
                    int c = want[(j + r) % nc]; /* the order rotates */
                    outcome o;
                    if (timed(c, g, &ep, cnt, d, &o) != 0) return 1;
                    cell *ce = &cells[g][di][c];
                    ce->ops[r] = (double)cnt / o.secs;
                    ce->cpu[r] = (o.user + o.sys) / (double)cnt * 1e6;
                    ce->writes += o.writes;
                    ce->reads += o.reads;
                    ce->count += cnt;
                }
                fprintf(stderr, "cluster: %s depth %d round %d/%d done\n", op_names[g], d, r + 1,
                        rounds);
            }
        }
    }

    static cell icells[2][MAX_DEPTHS][C_COUNT];
    for (int g = 0; g < 2 && ni > 0; g++) {
        if (!in_list(ops, g ? "get" : "set")) continue;
        for (int di = 0; di < nid; di++) {
            int d = (int)idepths[di];
            for (int j = 0; j < ni; j++) {
                int c = iwant[j];
                cell *ce = &icells[g][di][c];
                long small = instr_n / 5 > 0 ? instr_n / 5 : 1;
                long long hi = callgrind(c, g, &ep, instr_n, d, keep);
                long long lo = callgrind(c, g, &ep, small, d, keep);
                ce->ir = hi > 0 && lo > 0 ? (double)(hi - lo) / (double)(instr_n - small) : -1;
                fprintf(stderr, "cluster: %s depth %d %s: %.1f instructions/command\n", op_names[g],
                        d, client_names[c], ce->ir);
            }
        }
    }

    if (nc > 0) {
        printf("\n**GET and SET of %ld keys (%d-byte values) on one client: ops/s and the "
               "client's CPU per million commands (median of %d rounds), their ratio to the "
               "single node (round by round), and aredis's write(2) and read(2) calls per "
               "1,000 commands.**\n",
               g_nkeys, VALUE_LEN, rounds);
        printf("\n| op | depth | client | ops/s (median) | ops/s / single | per round / single "
               "| CPU s per 1M | CPU / single | write(2) / read(2) per 1k |\n");
        printf("|---|---:|---|---:|---:|---|---:|---:|---:|\n");
        for (int g = 1; g >= 0; g--) {
            if (!in_list(ops, g ? "get" : "set")) continue;
            for (int di = 0; di < nd; di++) {
                cell *one = &cells[g][di][C_SINGLE];
                for (int j = 0; j < nc; j++) {
                    int c = want[j];
                    cell *ce = &cells[g][di][c];
                    double ratio[MAX_ROUNDS];
                    char rate[32], rr[MAX_ROUNDS * 8 + 8] = "", rm[16] = "-", cr[16] = "-",
                                                       wr[48] = "-";
                    if (have_single && c != C_SINGLE) {
                        size_t off = 0;
                        for (int r = 0; r < rounds; r++) {
                            ratio[r] = ce->ops[r] / one->ops[r];
                            off += (size_t)snprintf(rr + off, sizeof rr - off, "%s%.2f",
                                                    r ? " " : "", ratio[r]);
                        }
                        snprintf(rm, sizeof rm, "%.2f", median_of(ratio, rounds));
                        for (int r = 0; r < rounds; r++)
                            ratio[r] = ce->cpu[r] / one->cpu[r];
                        snprintf(cr, sizeof cr, "%.2f", median_of(ratio, rounds));
                    }
                    if (c == C_SINGLE) {
                        snprintf(rm, sizeof rm, "1");
                        snprintf(cr, sizeof cr, "1");
                    }
                    if (c != C_VALKEY && ce->count)
                        snprintf(wr, sizeof wr, "%.1f / %.1f", ce->writes / (double)ce->count * 1e3,
                                 ce->reads / (double)ce->count * 1e3);
                    printf("| %s | %ld | %s | %s | %s | %s | %.2f | %s | %s |\n", op_names[g],
                           depths[di], client_names[c],
                           bench_fmt_rate(median_of(ce->ops, rounds), rate, sizeof rate), rm, rr,
                           median_of(ce->cpu, rounds), cr, wr);
                }
            }
        }
        int have_vk = 0, have_cl = 0, have_le = 0;
        for (int j = 0; j < nc; j++) {
            have_vk |= want[j] == C_VALKEY;
            have_cl |= want[j] == C_CLUSTER;
            have_le |= want[j] == C_CLUSTER_LE;
        }
        if (have_vk && (have_cl || have_le)) {
            printf("\n**aredis's cluster client against libvalkey's (async, libevent): ops/s "
                   "and CPU per command, ratios of the medians.**\n");
            printf("\n| op | depth |%s%s\n", have_cl ? " cluster / libvalkey ops/s | CPU |" : "",
                   have_le ? " cluster-libevent / libvalkey ops/s | CPU |" : "");
            printf("|---|---:|%s%s\n", have_cl ? "---:|---:|" : "", have_le ? "---:|---:|" : "");
            for (int g = 1; g >= 0; g--) {
                if (!in_list(ops, g ? "get" : "set")) continue;
                for (int di = 0; di < nd; di++) {
                    cell *vk = &cells[g][di][C_VALKEY];
                    printf("| %s | %ld |", op_names[g], depths[di]);
                    for (int c = C_CLUSTER; c <= C_CLUSTER_LE; c++) {
                        if (c == C_CLUSTER ? !have_cl : !have_le) continue;
                        cell *ce = &cells[g][di][c];
                        printf(" %.2f | %.2f |",
                               median_of(ce->ops, rounds) / median_of(vk->ops, rounds),
                               median_of(ce->cpu, rounds) / median_of(vk->cpu, rounds));
                    }
                    printf("\n");
                }
            }
        }
    }

    if (ni > 0) {
        int has1 = 0, hass = 0;
        for (int j = 0; j < ni; j++) {
            has1 |= iwant[j] == C_CLUSTER1;
            hass |= iwant[j] == C_SINGLE;
        }
        printf("\n**Instructions per command (callgrind, user space, runs of %ld and %ld "
               "differenced).** cluster-1slot: the cluster client with every key in one slot "
               "(one node): what routing adds to a command; cluster: keys over every slot, "
               "a window spread over three connections.\n",
               instr_n, instr_n / 5 > 0 ? instr_n / 5 : 1);
        printf("\n| op | depth |");
        for (int j = 0; j < ni; j++)
            printf(" %s |", client_names[iwant[j]]);
        if (hass) {
            for (int j = 0; j < ni; j++)
                if (iwant[j] != C_SINGLE) printf(" %s / single |", client_names[iwant[j]]);
        }
        printf("\n|---|---:|");
        for (int j = 0; j < ni; j++)
            printf("---:|");
        if (hass)
            for (int j = 0; j < ni; j++)
                if (iwant[j] != C_SINGLE) printf("---:|");
        printf("\n");
        for (int g = 1; g >= 0; g--) {
            if (!in_list(ops, g ? "get" : "set")) continue;
            for (int di = 0; di < nid; di++) {
                printf("| %s | %ld |", op_names[g], idepths[di]);
                for (int j = 0; j < ni; j++) {
                    double ir = icells[g][di][iwant[j]].ir;
                    if (ir > 0)
                        printf(" %.0f |", ir);
                    else
                        printf(" - |");
                }
                double base = icells[g][di][C_SINGLE].ir;
                if (hass)
                    for (int j = 0; j < ni; j++) {
                        if (iwant[j] == C_SINGLE) continue;
                        double ir = icells[g][di][iwant[j]].ir;
                        if (ir > 0 && base > 0)
                            printf(" %.3f (%+.0f) |", ir / base, ir - base);
                        else
                            printf(" - |");
                    }
                printf("\n");
            }
        }
        if (has1 && hass) {
            printf("\nTarget: routing (cluster-1slot against single) adds at most a few percent "
                   "(here: 5 %%) to a command's instructions");
            for (int g = 1; g >= 0; g--) {
                if (!in_list(ops, g ? "get" : "set")) continue;
                for (int di = 0; di < nid; di++) {
                    double a = icells[g][di][C_SINGLE].ir, b = icells[g][di][C_CLUSTER1].ir;
                    if (a > 0 && b > 0)
                        printf("; %s depth %ld %+.1f %% (%s)", op_names[g], idepths[di],
                               100.0 * (b / a - 1), b / a - 1 <= 0.05 ? "met" : "MISSED");
                }
            }
            printf(".\n");
        }
    }

    if (pipe_execs > 0) {
        int have_strace = system("strace -V >/dev/null 2>&1") == 0;
        pipe_figure(&ep, pipe_execs, have_strace);
    }

    printf("\nThe single node: a standalone redis-server; the cluster: three primaries "
           "(cluster-enabled, no replicas)%s, all on 127.0.0.1. Every run in its own process "
           "after an untimed warm-up of %d commands (the topology read and every node "
           "connected); the clients in rotating order each round.\n",
           single_s ? "" : ", started by the bench", WARM_N);
    printf("\nProduced by `bench/cluster");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("`.\n");
    return 0;
}
