/*
 * Test support: a Redis Cluster of real redis-server processes (cluster.h),
 * and a synchronous one-command-a-connection way to talk to any node.
 *
 * The nodes are the core's processes (server_core.h): started, killed and
 * restarted by it, swept at exit with their dirs. The cluster itself is made
 * by `redis-cli --cluster create`; everything after that is plain commands
 * on blocking sockets, replies read with the library's aredis_reader.
 *
 * Waiting: the nodes are external processes, so every wait polls them
 * (every 20 ms, bounded) until what they say is settled; the last reason it
 * was not is kept, to say why when a wait runs out.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aredis/reader.h"
#include "cluster.h"
#include "server_core.h"

#define WAIT_MS 30000     /* the bound of every wait that has no timeout argument */
#define POLL_MS 20        /* between two looks at the nodes */
#define CMD_TIMEOUT 10000 /* one command's connect + write + reply */
#define MIGRATE_BATCH "100"
#define MAX_NODES 64

/* ---- Binaries, skips --------------------------------------------------- */

static void skip_or_fail(const char *what) {
    if (getenv("CI")) {
        fprintf(stderr, "FAIL: %s (CI must have it: run scripts/deps.sh)\n", what);
        exit(1);
    }
    fprintf(stderr, "SKIP: %s\n", what);
    exit(77);
}

static int is_program(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int executable(char *out, size_t outlen, const char *dir, size_t dirlen, const char *name) {
    snprintf(out, outlen, "%.*s/%s", (int)dirlen, dir, name);
    return is_program(out);
}

/* redis-cli: $REDIS_CLI; the one next to the server binary (valkey-cli
 * first next to a valkey-server); the usual places; $PATH. NULL if none. */
static const char *cli_path(void) {
    static char path[600];
    const char *env = getenv("REDIS_CLI");
    if (env && *env) return is_program(env) ? env : NULL;
    const char *names[] = {"redis-cli", "valkey-cli", NULL};
    const char *srv = tsp_server_path();
    const char *slash = srv ? strrchr(srv, '/') : NULL;
    if (slash) {
        const char *base = slash + 1;
        size_t dirlen = (size_t)(slash - srv);
        if (strncmp(base, "valkey", 6) == 0 &&
            executable(path, sizeof path, srv, dirlen, "valkey-cli"))
            return path;
        if (executable(path, sizeof path, srv, dirlen, "redis-cli")) return path;
    }
    const char *usual[] = {"/usr/bin", "/usr/local/bin", NULL};
    for (int i = 0; usual[i]; i++)
        if (executable(path, sizeof path, usual[i], strlen(usual[i]), "redis-cli")) return path;
    const char *p = getenv("PATH");
    if (!p) return NULL;
    for (int k = 0; names[k]; k++) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", p);
        for (char *save = NULL, *d = strtok_r(tmp, ":", &save); d; d = strtok_r(NULL, ":", &save))
            if (executable(path, sizeof path, d, strlen(d), names[k])) return path;
    }
    return NULL;
}

static void require_binaries(void) {
    if (!tsp_server_path())
        skip_or_fail("redis-server not found; install Debian's redis-server (make test does it) "
                     "to run this test");
    if (!cli_path())
        skip_or_fail(getenv("REDIS_CLI") && *getenv("REDIS_CLI")
                         ? "$REDIS_CLI is not an executable redis-cli"
                         : "redis-cli not found (set REDIS_CLI, or install Debian's redis-tools) "
                           "to run this test");
}

/* ---- One node, synchronously -------------------------------------------- */

static int node_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* Close with a reset: thousands of polls leave no TIME_WAIT behind. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r;
    do {
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int ms_left(uint64_t until) {
    uint64_t now = ts_now_ms();
    return now >= until ? 0 : (int)(until - now);
}

/* Wait until fd is ready for `events`: 1, 0 on timeout, -1 on error. */
static int wait_fd(int fd, short events, uint64_t until) {
    for (;;) {
        int left = ms_left(until);
        if (left == 0) return 0;
        struct pollfd pfd = {fd, events, 0};
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR) continue;
        return r < 0 ? -1 : r > 0;
    }
}

static char *encode(int argc, const char *const *argv, const size_t *lens, size_t *outlen) {
    size_t total = 24;
    for (int i = 0; i < argc; i++)
        total += 24 + (lens ? lens[i] : strlen(argv[i])) + 2;
    char *buf = malloc(total);
    assert_non_null(buf);
    size_t off = (size_t)snprintf(buf, total, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        off += (size_t)snprintf(buf + off, total - off, "$%zu\r\n", n);
        memcpy(buf + off, argv[i], n);
        off += n;
        memcpy(buf + off, "\r\n", 2);
        off += 2;
    }
    *outlen = off;
    return buf;
}

aredis_reply *ts_node_command(int port, int argc, const char *const *argv, const size_t *lens,
                              char *err, size_t errlen) {
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    assert_true(argc > 0);
    size_t len;
    char *buf = encode(argc, argv, lens, &len);
    uint64_t until = ts_now_ms() + CMD_TIMEOUT;
    int fd = node_connect(port);
    if (fd < 0) {
        snprintf(err, errlen, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
        free(buf);
        return NULL;
    }
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, until) <= 0) break;
        } else {
            break;
        }
    }
    free(buf);
    if (sent < len) {
        snprintf(err, errlen, "127.0.0.1:%d: could not send the command (%s)", port,
                 errno ? strerror(errno) : "timeout");
        close(fd);
        return NULL;
    }
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    void *reply = NULL;
    for (;;) {
        if (aredis_reader_get_reply(r, &reply) != AREDIS_ERR_OK) {
            snprintf(err, errlen, "127.0.0.1:%d: bad reply: %s", port, aredis_reader_errstr(r));
            reply = NULL;
            break;
        }
        if (reply) break;
        int w = wait_fd(fd, POLLIN, until);
        if (w <= 0) {
            snprintf(err, errlen, "127.0.0.1:%d: no reply within %d ms", port, CMD_TIMEOUT);
            break;
        }
        size_t avail;
        char *space = aredis_reader_space(r, 16384, &avail);
        assert_non_null(space);
        ssize_t n = recv(fd, space, avail, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (n <= 0) {
            snprintf(err, errlen, "127.0.0.1:%d: connection %s before the reply", port,
                     n == 0 ? "closed" : strerror(errno));
            break;
        }
        aredis_reader_commit(r, (size_t)n);
    }
    aredis_reader_free(r);
    close(fd);
    return reply;
}

aredis_reply *ts_node_cmd(int port, const char *arg0, ...) {
    const char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a; a = va_arg(ap, const char *)) {
        assert_true(argc < 64);
        argv[argc++] = a;
    }
    va_end(ap);
    return ts_node_command(port, argc, argv, NULL, NULL, 0);
}

/* The value of "<field>:" at the start of a line of text (INFO, CLUSTER
 * INFO), up to the line's end, copied to out: 1, or 0. */
static int text_field(const char *text, const char *field, char *out, size_t outlen) {
    size_t n = strlen(field);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, field, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            snprintf(out, outlen, "%.*s", (int)strcspn(v, "\r\n"), v);
            return 1;
        }
    }
    return 0;
}

int ts_node_info_field(int port, const char *section, const char *field, char *out, size_t outlen) {
    aredis_reply *r = ts_node_cmd(port, "INFO", section, (char *)NULL);
    int found = r && r->type == AREDIS_REPLY_STRING && text_field(r->str, field, out, outlen);
    aredis_reply_free(r);
    return found;
}

int ts_node_online_replicas(int port) {
    aredis_reply *r = ts_node_cmd(port, "INFO", "replication", (char *)NULL);
    int n = -1;
    if (r && r->type == AREDIS_REPLY_STRING) {
        n = 0;
        for (const char *p = r->str; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            const char *eol = p + strcspn(p, "\r\n"), *st = strstr(p, "state=online");
            n += strncmp(p, "slave", 5) == 0 && p[5] >= '0' && p[5] <= '9' && st && st < eol;
        }
    }
    aredis_reply_free(r);
    return n;
}

/* ---- The cluster's nodes ------------------------------------------------ */

typedef struct tsc_node {
    tsp_proc p;     /* the process */
    char id[48];    /* cluster node id */
    int primary;    /* a primary once the cluster came up */
    int primary_of; /* its primary's index then, -1 for a primary */
    int follows;    /* the primary it replicated when that was last killed, or -1 */
} tsc_node;

struct ts_cluster {
    int n, primaries, replicas;
    tsc_node *nodes;
    char cli_log[300]; /* redis-cli --cluster create's output */
    char why[1024];    /* why the last look found the cluster not settled */
    int why_node;      /* the node it was about, or -1 */
};

static void why(ts_cluster *c, int node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why(ts_cluster *c, int node, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    c->why_node = node;
}

static int alive(const ts_cluster *c, int i) { return c->nodes[i].p.pid > 0; }
static int port_of(const ts_cluster *c, int i) { return c->nodes[i].p.port; }

/* Can 127.0.0.1:port be bound right now? (A TIME_WAIT there says no too,
 * though redis-server, with SO_REUSEADDR, could: it only costs a try.) */
static int bindable(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A free port whose cluster bus port (+10000) is free too (and exists). */
static int free_port_pair(void) {
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = tsp_free_port();
        if (port > 0 && port + 10000 <= 65535 && bindable(port + 10000)) return port;
    }
    return -1;
}

/* The core calls this before every start (not restart), with a port it
 * picked: a cluster node needs its bus port free too, so pick again. */
static void write_node_conf(tsp_proc *p, const void *arg) {
    const char *const *extra = arg;
    p->port = free_port_pair();
    assert_true(p->port > 0);
    char nodes_conf[320];
    snprintf(nodes_conf, sizeof nodes_conf, "%s/nodes.conf", p->dir);
    unlink(nodes_conf); /* a failed try's: a fresh node has none */
    FILE *f = fopen(p->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n"
            "daemonize no\nlogfile %s\nprotected-mode no\n"
            "cluster-enabled yes\ncluster-config-file nodes.conf\n"
            "cluster-node-timeout 1000\nrepl-diskless-sync-delay 0\n",
            p->port, p->dir, p->log);
    tsp_write_conf_lines(f, extra);
    fclose(f);
}

int ts_cluster_index_of_port(const ts_cluster *c, int port) {
    for (int i = 0; i < c->n; i++)
        if (port_of(c, i) == port) return i;
    return -1;
}

/* ---- What the nodes say ------------------------------------------------- */

/* One line of CLUSTER NODES. */
typedef struct nline {
    char id[48];
    int port;
    char flags[128];
    char master[48]; /* "-" for a primary */
    char link[24];
    int has_slots;
} nline;

static int has_flag(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = flags; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
        if (strncmp(p, flag, n) == 0 && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

static int failing(const char *flags) {
    return has_flag(flags, "fail") || has_flag(flags, "fail?") || has_flag(flags, "handshake") ||
           has_flag(flags, "noaddr");
}

/* Parse CLUSTER NODES' text into out[0..max): the number of lines, or -1
 * when a line is malformed. */
static int parse_nodes(const char *text, nline *out, int max) {
    int count = 0;
    const char *line = text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t llen = end ? (size_t)(end - line) : strlen(line);
        char buf[16384];
        if (llen >= sizeof buf) return -1;
        memcpy(buf, line, llen);
        buf[llen] = '\0';
        line = end ? end + 1 : NULL;
        if (llen == 0 || buf[0] == '\r') continue;
        if (count >= max) return -1;
        nline *nl = &out[count];
        memset(nl, 0, sizeof *nl);
        int field = 0;
        for (char *save = NULL, *t = strtok_r(buf, " \r", &save); t;
             t = strtok_r(NULL, " \r", &save), field++) {
            switch (field) {
            case 0:
                snprintf(nl->id, sizeof nl->id, "%s", t);
                break;
            case 1: { /* ip:port@cport[,hostname] */
                char *at = strchr(t, '@');
                if (at) *at = '\0';
                char *colon = strrchr(t, ':');
                nl->port = colon ? atoi(colon + 1) : 0;
                break;
            }
            case 2:
                snprintf(nl->flags, sizeof nl->flags, "%s", t);
                break;
            case 3:
                snprintf(nl->master, sizeof nl->master, "%s", t);
                break;
            case 7:
                snprintf(nl->link, sizeof nl->link, "%s", t);
                break;
            default:
                if (field >= 8 && t[0] != '[') nl->has_slots = 1;
                break;
            }
        }
        if (field < 8) return -1;
        count++;
    }
    return count;
}

/* Node i's CLUSTER NODES: the line count (0 and c->why when it fails). */
static int fetch_nodes(ts_cluster *c, int i, nline *out, int max) {
    char err[256];
    const char *argv[] = {"CLUSTER", "NODES"};
    aredis_reply *r = ts_node_command(port_of(c, i), 2, argv, NULL, err, sizeof err);
    int count = 0;
    if (!r)
        why(c, i, "node %d: CLUSTER NODES: %s", i, err);
    else if (r->type != AREDIS_REPLY_STRING)
        why(c, i, "node %d: CLUSTER NODES: %s", i, r->str ? r->str : "not a string");
    else if ((count = parse_nodes(r->str, out, max)) <= 0)
        why(c, i, "node %d: CLUSTER NODES unreadable: %.300s", i, r->str);
    aredis_reply_free(r);
    return count > 0 ? count : 0;
}

/* Node i's CLUSTER SLOTS as owner[slot] = the serving primary's port (0 for
 * none): 1, or 0 and c->why. */
static int fetch_slots(ts_cluster *c, int i, int *owner) {
    char err[256];
    const char *argv[] = {"CLUSTER", "SLOTS"};
    aredis_reply *r = ts_node_command(port_of(c, i), 2, argv, NULL, err, sizeof err);
    if (!r || r->type != AREDIS_REPLY_ARRAY) {
        why(c, i, "node %d: CLUSTER SLOTS: %s", i, r ? r->str ? r->str : "not an array" : err);
        aredis_reply_free(r);
        return 0;
    }
    memset(owner, 0, sizeof(int) * TS_CLUSTER_SLOTS);
    int ok = 1;
    for (size_t k = 0; ok && k < r->elements; k++) {
        const aredis_reply *e = r->element[k];
        if (e->type != AREDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != AREDIS_REPLY_INTEGER ||
            e->element[1]->type != AREDIS_REPLY_INTEGER ||
            e->element[2]->type != AREDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[1]->type != AREDIS_REPLY_INTEGER) {
            why(c, i, "node %d: CLUSTER SLOTS entry %zu malformed", i, k);
            ok = 0;
            break;
        }
        long long from = e->element[0]->integer, to = e->element[1]->integer;
        int port = (int)e->element[2]->element[1]->integer;
        if (from < 0 || to >= TS_CLUSTER_SLOTS || from > to) {
            why(c, i, "node %d: CLUSTER SLOTS range %lld-%lld", i, from, to);
            ok = 0;
            break;
        }
        for (long long s = from; s <= to; s++)
            owner[s] = port;
    }
    aredis_reply_free(r);
    return ok;
}

static const nline *find_line(const nline *v, int count, int port) {
    for (int k = 0; k < count; k++)
        if (v[k].port == port) return &v[k];
    return NULL;
}

/* Node i's CLUSTER INFO (r, freed here) says cluster_state:ok and knows
 * every node of c; else 0 with the reason in c->why. */
static int info_ok(ts_cluster *c, int i, aredis_reply *r) {
    char v[64] = "?";
    int port = port_of(c, i);
    int state_ok = r->type == AREDIS_REPLY_STRING &&
                   text_field(r->str, "cluster_state", v, sizeof v) && strcmp(v, "ok") == 0;
    int known = state_ok && text_field(r->str, "cluster_known_nodes", v, sizeof v) ? atoi(v) : -1;
    aredis_reply_free(r);
    if (!state_ok) {
        why(c, i, "node %d (port %d): cluster_state:%s", i, port, v);
        return 0;
    }
    if (known != c->n) {
        why(c, i, "node %d (port %d): knows %d nodes of %d", i, port, known, c->n);
        return 0;
    }
    return 1;
}

/* Node i's slot owners agree with the first node's (*ref, whose view is in
 * owner_ref; the first node asked becomes the reference). */
static int views_agree(ts_cluster *c, int i, const int *owner, int *owner_ref, int *ref) {
    if (*ref < 0) {
        memcpy(owner_ref, owner, sizeof(int) * TS_CLUSTER_SLOTS);
        *ref = i;
        return 1;
    }
    for (int s = 0; s < TS_CLUSTER_SLOTS; s++) {
        if (owner[s] != owner_ref[s]) {
            why(c, i, "node %d says slot %d is on port %d, node %d says %d", i, s, owner[s], *ref,
                owner_ref[s]);
            return 0;
        }
    }
    return 1;
}

/*
 * Is the cluster settled, as far as its live nodes can tell? Every live
 * node says cluster_state:ok and knows all n nodes; its CLUSTER SLOTS
 * covers all slots, none on a dead node, with the same owners as every
 * other live node's; in its CLUSTER NODES every live node is connected,
 * flagged neither fail, fail?, handshake nor noaddr, with the role and the
 * primary that node gives itself. A replica replicates the primary its
 * cluster config names, its link up; a primary lists every live replica it
 * has as online in INFO replication (synced and acked: a WAIT counts it).
 * `whole` (at start) also wants `primaries` primaries with slots and the
 * rest replicas in every view. 1, or 0 with the reason in c->why.
 */
static int settled(ts_cluster *c, int whole) {
    int ok = 0, ref = -1;
    int *owner = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    int *owner_ref = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    int maxl = c->n + 16;
    nline *views = calloc((size_t)(c->n * maxl), sizeof *views);
    int *counts = calloc((size_t)c->n, sizeof *counts);
    int *self_primary = calloc((size_t)c->n, sizeof *self_primary);
    assert_true(owner && owner_ref && views && counts && self_primary);
    for (int i = 0; i < c->n; i++) {
        if (!alive(c, i)) continue;
        int port = port_of(c, i);
        char err[256], v[64] = "?";
        const char *info_argv[] = {"CLUSTER", "INFO"};
        aredis_reply *r = ts_node_command(port, 2, info_argv, NULL, err, sizeof err);
        if (!r || r->type != AREDIS_REPLY_STRING) {
            why(c, i, "node %d: CLUSTER INFO: %s", i, r ? r->str ? r->str : "not a string" : err);
            aredis_reply_free(r);
            goto out;
        }
        if (!info_ok(c, i, r)) goto out;
        if (!fetch_slots(c, i, owner)) goto out;
        for (int s = 0; s < TS_CLUSTER_SLOTS; s++) {
            int at = owner[s] ? ts_cluster_index_of_port(c, owner[s]) : -1;
            if (!owner[s] || at < 0 || !alive(c, at)) {
                if (!owner[s])
                    why(c, i, "node %d (port %d): slot %d is served by no one", i, port, s);
                else if (at < 0)
                    why(c, i, "node %d (port %d): slot %d is on port %d, not in the cluster", i,
                        port, s, owner[s]);
                else
                    why(c, i, "node %d (port %d): slot %d is still on dead node %d", i, port, s,
                        at);
                goto out;
            }
        }
        if (!views_agree(c, i, owner, owner_ref, &ref)) goto out;
        nline *view = &views[i * maxl];
        if (!(counts[i] = fetch_nodes(c, i, view, maxl))) goto out;
        const nline *me = find_line(view, counts[i], port);
        if (!me || !has_flag(me->flags, "myself")) {
            why(c, i, "node %d (port %d): no myself line in its CLUSTER NODES", i, port);
            goto out;
        }
        self_primary[i] = has_flag(me->flags, "master");
        int primaries = 0, replicas = 0;
        for (int k = 0; k < counts[i]; k++) {
            const nline *l = &view[k];
            int j = ts_cluster_index_of_port(c, l->port);
            if (j < 0) {
                why(c, i, "node %d: a stranger in its CLUSTER NODES: port %d", i, l->port);
                goto out;
            }
            if (!alive(c, j)) continue;
            if (failing(l->flags) || (j != i && strcmp(l->link, "connected") != 0)) {
                why(c, i, "node %d sees node %d as %s, %s", i, j, l->flags, l->link);
                goto out;
            }
            primaries += has_flag(l->flags, "master") && l->has_slots;
            replicas += has_flag(l->flags, "slave");
        }
        if (whole && (primaries != c->primaries || replicas != c->n - c->primaries)) {
            why(c, i, "node %d sees %d primaries with slots and %d replicas, not %d and %d", i,
                primaries, replicas, c->primaries, c->n - c->primaries);
            goto out;
        }
        if (!self_primary[i]) {
            /* Replicating the primary its cluster config names, link up. */
            const nline *m = NULL;
            for (int k = 0; k < counts[i] && !m; k++)
                if (strcmp(view[k].id, me->master) == 0) m = &view[k];
            char mport[16] = "?";
            if (!m ||
                !ts_node_info_field(port, "replication", "master_port", mport, sizeof mport) ||
                atoi(mport) != m->port) {
                why(c, i, "replica %d (port %d) replicates port %s, its cluster config says %d", i,
                    port, mport, m ? m->port : -1);
                goto out;
            }
            if (!ts_node_info_field(port, "replication", "master_link_status", v, sizeof v) ||
                strcmp(v, "up") != 0) {
                why(c, i, "replica %d (port %d): master_link_status:%s", i, port, v);
                goto out;
            }
        }
    }
    /* Everyone agrees on everyone's role; primaries have their replicas. */
    for (int i = 0; i < c->n; i++) {
        if (!alive(c, i)) continue;
        const nline *me = find_line(&views[i * maxl], counts[i], port_of(c, i));
        int replicas = 0;
        for (int k = 0; k < counts[i]; k++) {
            const nline *l = &views[i * maxl + k];
            int j = ts_cluster_index_of_port(c, l->port);
            if (j == i || !alive(c, j)) continue;
            const nline *self = find_line(&views[j * maxl], counts[j], l->port);
            if (has_flag(l->flags, "master") != self_primary[j] ||
                strcmp(l->master, self->master) != 0) {
                why(c, i, "node %d sees node %d as %s of %s, it says %s of %s", i, j, l->flags,
                    l->master, self->flags, self->master);
                goto out;
            }
            replicas += strcmp(l->master, me->id) == 0;
        }
        int online = self_primary[i] ? ts_node_online_replicas(port_of(c, i)) : 0;
        if (online < replicas) {
            why(c, i, "primary %d (port %d) has %d of its %d replicas online", i, port_of(c, i),
                online, replicas);
            goto out;
        }
    }
    ok = ref >= 0;
    if (!ok) why(c, -1, "no live node");
out:
    free(owner);
    free(owner_ref);
    free(views);
    free(counts);
    free(self_primary);
    return ok;
}

/* Poll done(c, arg) until it returns 1 (then 1) or timeout_ms passes (0). */
static int poll_until(ts_cluster *c, int (*done)(ts_cluster *c, const void *arg), const void *arg,
                      uint64_t timeout_ms) {
    uint64_t until = ts_now_ms() + timeout_ms;
    for (;;) {
        if (done(c, arg)) return 1;
        if (ts_now_ms() >= until) return 0;
        tsp_sleep_ms(POLL_MS); /* external processes: polling is the only way */
    }
}

static int start_done(ts_cluster *c, const void *arg) {
    (void)arg;
    return settled(c, 1);
}

static int whole_again(ts_cluster *c, const void *arg) {
    (void)arg;
    return settled(c, 0);
}

/* On a failed wait: the reason, and the output of the node it was about. */
static void explain(const ts_cluster *c) {
    ts_log("cluster not settled: %s", c->why);
    if (c->why_node >= 0) {
        ts_log("the log of node %d (port %d) follows", c->why_node, port_of(c, c->why_node));
        tsp_dump_output(&c->nodes[c->why_node].p);
    }
}

static void dump_cli_log(const ts_cluster *c) {
    FILE *f = fopen(c->cli_log, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "# redis-cli: %s%s", line, strchr(line, '\n') ? "" : "\n");
    fclose(f);
}

/* ---- Start, stop -------------------------------------------------------- */

/* redis-cli --cluster create over every node: 0, or -1 with c->why. */
static int cli_create(ts_cluster *c, const ts_tls_files *f) {
    const char *cli = cli_path();
    const char *tls = f ? " --tls" : "";
    int argc = 0;
    const char **argv = calloc((size_t)c->n + 16, sizeof *argv);
    char(*addr)[32] = calloc((size_t)c->n, sizeof *addr);
    char reps[16];
    assert_true(argv && addr);
    snprintf(reps, sizeof reps, "%d", c->replicas);
    argv[argc++] = cli;
    if (f) { /* a TLS-only cluster (ts_cluster_start_tls) */
        argv[argc++] = "--tls";
        argv[argc++] = "--cacert";
        argv[argc++] = f->ca_file;
        if (f->client_cert_file) {
            argv[argc++] = "--cert";
            argv[argc++] = f->client_cert_file;
            argv[argc++] = "--key";
            argv[argc++] = f->client_key_file;
        }
    }
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < c->n; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", port_of(c, i));
        argv[argc++] = addr[i];
    }
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = reps;
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    pid_t pid = ts_fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        int out = open(c->cli_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    free(argv);
    free(addr);
    uint64_t until = ts_now_ms() + WAIT_MS;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            why(c, -1, "waitpid(redis-cli): %s", strerror(errno));
            return -1;
        }
        if (ts_now_ms() >= until) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            why(c, -1, "%s%s --cluster create did not finish within %d ms", cli, tls, WAIT_MS);
            return -1;
        }
        tsp_sleep_ms(POLL_MS);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    why(c, -1, "%s%s --cluster create failed (%s %d)", cli, tls,
        WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return -1;
}

static int tls_fetch_nodes(ts_cluster *c, int i, const ts_tls_files *f, nline *out, int max);

/* Each node's id and role, by its own CLUSTER NODES (over TLS with f). */
static void learn_roles(ts_cluster *c, const ts_tls_files *f) {
    int maxl = c->n + 16;
    nline *view = calloc((size_t)maxl, sizeof *view);
    char(*master)[48] = calloc((size_t)c->n, sizeof *master);
    assert_true(view && master);
    for (int i = 0; i < c->n; i++) {
        int count = f ? tls_fetch_nodes(c, i, f, view, maxl) : fetch_nodes(c, i, view, maxl);
        const nline *me = count ? find_line(view, count, port_of(c, i)) : NULL;
        if (!me) fail_msg("cluster node %d: its own CLUSTER NODES line: %s", i, c->why);
        snprintf(c->nodes[i].id, sizeof c->nodes[i].id, "%s", me->id);
        c->nodes[i].primary = has_flag(me->flags, "master");
        snprintf(master[i], sizeof master[i], "%s", me->master);
    }
    for (int i = 0; i < c->n; i++) {
        c->nodes[i].primary_of = -1;
        for (int j = 0; !c->nodes[i].primary && j < c->n; j++)
            if (strcmp(c->nodes[j].id, master[i]) == 0) c->nodes[i].primary_of = j;
    }
    free(view);
    free(master);
}

void ts_cluster_stop(ts_cluster *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].p.dir[0]) tsp_stop(&c->nodes[i].p);
    free(c->nodes);
    free(c);
}

ts_cluster *ts_cluster_start(int primaries, int replicas_per_primary, const char *const *conf) {
    require_binaries();
    assert_true(primaries >= 3 && replicas_per_primary >= 0);
    assert_true(primaries * (1 + replicas_per_primary) <= MAX_NODES);
    ts_cluster *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->primaries = primaries;
    c->replicas = replicas_per_primary;
    c->n = primaries * (1 + replicas_per_primary);
    c->nodes = calloc((size_t)c->n, sizeof *c->nodes);
    assert_non_null(c->nodes);
    c->why_node = -1;
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < c->n; i++) {
        tsc_node *nd = &c->nodes[i];
        nd->primary_of = nd->follows = -1;
        tsp_make_dir(&nd->p, "aredis-cluster");
        nd->p.ready = tsp_ready_ping;
        nd->p.rm_dir_at_exit = 1;
        if (tsp_start(&nd->p, write_node_conf, conf) != 0) {
            int said = tsp_dump_output(&nd->p);
            ts_cluster_stop(c);
            fail_msg("cluster node %d: %s (%s) did not start (%s)", i, tsp_server_path(),
                     ts_server_describe(), said ? "its output is above" : "it printed nothing");
        }
    }
    snprintf(c->cli_log, sizeof c->cli_log, "%s/cli.log", c->nodes[0].p.dir);
    if (cli_create(c, NULL) != 0 || !poll_until(c, start_done, NULL, WAIT_MS)) {
        char reason[sizeof c->why];
        snprintf(reason, sizeof reason, "%s", c->why);
        dump_cli_log(c);
        explain(c);
        ts_cluster_stop(c);
        fail_msg("the cluster (%d primaries, %d replicas each, %s) did not come up: %s", primaries,
                 replicas_per_primary, ts_server_describe(), reason);
    }
    learn_roles(c, NULL);
    ts_log("cluster of %d nodes up in %llu ms (%s)", c->n, (unsigned long long)(ts_now_ms() - t0),
           ts_server_describe());
    return c;
}

/* ---- Accessors ---------------------------------------------------------- */

static void check_index(const ts_cluster *c, int i) {
    assert_non_null(c);
    assert_true(i >= 0 && i < c->n);
}

int ts_cluster_nodes(const ts_cluster *c) {
    assert_non_null(c);
    return c->n;
}

int ts_cluster_port(const ts_cluster *c, int i) {
    check_index(c, i);
    return port_of(c, i);
}

const char *ts_cluster_node_id(const ts_cluster *c, int i) {
    check_index(c, i);
    return c->nodes[i].id;
}

int ts_cluster_is_primary(const ts_cluster *c, int i) {
    check_index(c, i);
    return c->nodes[i].primary;
}

int ts_cluster_primary_of(const ts_cluster *c, int i) {
    check_index(c, i);
    return c->nodes[i].primary_of;
}

int ts_cluster_is_alive(const ts_cluster *c, int i) {
    check_index(c, i);
    return alive(c, i);
}

int ts_cluster_keyslot(const ts_cluster *c, const char *key) {
    assert_non_null(c);
    for (int i = 0; i < c->n; i++) {
        if (!alive(c, i)) continue;
        aredis_reply *r = ts_node_cmd(port_of(c, i), "CLUSTER", "KEYSLOT", key, (char *)NULL);
        if (r && r->type == AREDIS_REPLY_INTEGER) {
            int slot = (int)r->integer;
            aredis_reply_free(r);
            return slot;
        }
        aredis_reply_free(r);
    }
    fail_msg("no live cluster node answered CLUSTER KEYSLOT %s", key);
    return -1;
}

int ts_cluster_node_for_slot(const ts_cluster *c, int slot) {
    assert_non_null(c);
    assert_true(slot >= 0 && slot < TS_CLUSTER_SLOTS);
    for (int i = 0; i < c->n; i++) {
        if (!alive(c, i)) continue;
        aredis_reply *r = ts_node_cmd(port_of(c, i), "CLUSTER", "SLOTS", (char *)NULL);
        if (!r || r->type != AREDIS_REPLY_ARRAY) {
            aredis_reply_free(r);
            continue;
        }
        int port = -1;
        for (size_t k = 0; k < r->elements && port < 0; k++) {
            const aredis_reply *e = r->element[k];
            if (e->type == AREDIS_REPLY_ARRAY && e->elements >= 3 &&
                e->element[0]->type == AREDIS_REPLY_INTEGER &&
                e->element[1]->type == AREDIS_REPLY_INTEGER &&
                e->element[2]->type == AREDIS_REPLY_ARRAY && e->element[2]->elements >= 2 &&
                e->element[2]->element[1]->type == AREDIS_REPLY_INTEGER &&
                e->element[0]->integer <= slot && slot <= e->element[1]->integer)
                port = (int)e->element[2]->element[1]->integer;
        }
        aredis_reply_free(r);
        return port;
    }
    return -1;
}

/* ---- Kill, restart, failover -------------------------------------------- */

void ts_cluster_kill(ts_cluster *c, int i) {
    check_index(c, i);
    if (!alive(c, i)) return;
    /* Who replicates it now, each by its own word (roles change with
     * failovers; a view of someone else's primary can lag behind). */
    int maxl = c->n + 16, any = 0;
    nline *view = calloc((size_t)maxl, sizeof *view);
    assert_non_null(view);
    for (int j = 0; j < c->n; j++) {
        if (j == i || !alive(c, j)) continue;
        int count = fetch_nodes(c, j, view, maxl);
        const nline *me = count ? find_line(view, count, port_of(c, j)) : NULL;
        char mport[16];
        if ((me && strcmp(me->master, c->nodes[i].id) == 0) ||
            (ts_node_info_field(port_of(c, j), "replication", "master_port", mport, sizeof mport) &&
             atoi(mport) == port_of(c, i))) {
            c->nodes[j].follows = i;
            any = 1;
        }
    }
    if (!any) /* nobody said: what was true at start */
        for (int j = 0; j < c->n; j++)
            if (c->nodes[j].primary_of == i) c->nodes[j].follows = i;
    free(view);
    tsp_kill(&c->nodes[i].p);
}

void ts_cluster_restart(ts_cluster *c, int i) {
    check_index(c, i);
    if (tsp_restart(&c->nodes[i].p) != 0) {
        int said = tsp_dump_output(&c->nodes[i].p);
        fail_msg("cluster node %d did not restart on port %d (%s)", i, port_of(c, i),
                 said ? "its output is above" : "it printed nothing");
    }
    uint64_t t0 = ts_now_ms();
    if (!poll_until(c, whole_again, NULL, WAIT_MS)) {
        explain(c);
        fail_msg("cluster node %d restarted, but the cluster did not settle in %d ms: %s", i,
                 WAIT_MS, c->why);
    }
    ts_log("cluster node %d back, the cluster settled in %llu ms", i,
           (unsigned long long)(ts_now_ms() - t0));
}

typedef struct failover_arg {
    int killed;
    int promoted;
} failover_arg;

static int failover_done(ts_cluster *c, const void *arg) {
    failover_arg *a = (failover_arg *)arg;
    a->promoted = -1;
    for (int j = 0; j < c->n && a->promoted < 0; j++) {
        char role[32];
        if (c->nodes[j].follows == a->killed && alive(c, j) &&
            ts_node_info_field(port_of(c, j), "replication", "role", role, sizeof role) &&
            strcmp(role, "master") == 0)
            a->promoted = j;
    }
    if (a->promoted < 0) {
        int follower = -1; /* its log says why not */
        for (int j = 0; j < c->n && follower < 0; j++)
            if (c->nodes[j].follows == a->killed && alive(c, j)) follower = j;
        why(c, follower, "no replica of node %d has become a primary", a->killed);
        return 0;
    }
    return settled(c, 0);
}

int ts_cluster_wait_failover(ts_cluster *c, int killed, uint64_t timeout_ms) {
    check_index(c, killed);
    if (alive(c, killed))
        fail_msg("cluster node %d was not killed: no failover to wait for", killed);
    int any = 0;
    for (int j = 0; j < c->n; j++)
        any |= c->nodes[j].follows == killed;
    if (!any) fail_msg("cluster node %d had no replica when it was killed", killed);
    failover_arg a = {killed, -1};
    uint64_t t0 = ts_now_ms();
    if (!poll_until(c, failover_done, &a, timeout_ms)) {
        explain(c);
        fail_msg("no failover of cluster node %d within %llu ms: %s", killed,
                 (unsigned long long)timeout_ms, c->why);
    }
    ts_log("cluster node %d failed over to node %d in %llu ms", killed, a.promoted,
           (unsigned long long)(ts_now_ms() - t0));
    return a.promoted;
}

/* ---- Slot migration ----------------------------------------------------- */

/* Run a command on port that must answer +OK (or `also`, when not NULL). */
static void expect_ok(int port, int argc, const char *const *argv, const size_t *lens,
                      const char *also) {
    char err[256];
    aredis_reply *r = ts_node_command(port, argc, argv, lens, err, sizeof err);
    if (!r || r->type != AREDIS_REPLY_STATUS ||
        (strcmp(r->str, "OK") != 0 && !(also && strcmp(r->str, also) == 0))) {
        char what[256];
        snprintf(what, sizeof what, "%s",
                 r ? r->str ? r->str : aredis_reply_type_name(r->type) : err);
        aredis_reply_free(r);
        fail_msg("%s %s on port %d: %s", argv[0], argc > 1 ? argv[1] : "", port, what);
    }
    aredis_reply_free(r);
}

static void setslot(int port, const char *slot, const char *how, const char *id) {
    const char *argv[] = {"CLUSTER", "SETSLOT", slot, how, id};
    expect_ok(port, 5, argv, NULL, NULL);
}

typedef struct moved_arg {
    int slot, port;
} moved_arg;

static int slot_moved(ts_cluster *c, const void *arg) {
    const moved_arg *m = arg;
    int *owner = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    assert_non_null(owner);
    int ok = 1;
    for (int i = 0; ok && i < c->n; i++) {
        if (!alive(c, i)) continue;
        ok = fetch_slots(c, i, owner);
        if (ok && owner[m->slot] != m->port) {
            why(c, i, "node %d says slot %d is on port %d", i, m->slot, owner[m->slot]);
            ok = 0;
        }
    }
    free(owner);
    return ok;
}

void ts_cluster_migrate_slot(ts_cluster *c, int slot, int to_port) {
    assert_non_null(c);
    assert_true(slot >= 0 && slot < TS_CLUSTER_SLOTS);
    int from_port = ts_cluster_node_for_slot(c, slot);
    if (from_port < 0) fail_msg("migrate slot %d: no live node says who serves it", slot);
    if (from_port == to_port) return;
    int src = ts_cluster_index_of_port(c, from_port), dst = ts_cluster_index_of_port(c, to_port);
    if (src < 0 || dst < 0 || !alive(c, dst))
        fail_msg("migrate slot %d from port %d to %d: not two live nodes of the cluster", slot,
                 from_port, to_port);
    const char *src_id = c->nodes[src].id, *dst_id = c->nodes[dst].id;
    char s[16], to[16];
    snprintf(s, sizeof s, "%d", slot);
    snprintf(to, sizeof to, "%d", to_port);
    setslot(to_port, s, "IMPORTING", src_id);
    setslot(from_port, s, "MIGRATING", dst_id);
    size_t moved = 0;
    for (;;) {
        char err[256];
        const char *get[] = {"CLUSTER", "GETKEYSINSLOT", s, MIGRATE_BATCH};
        aredis_reply *keys = ts_node_command(from_port, 4, get, NULL, err, sizeof err);
        if (!keys || keys->type != AREDIS_REPLY_ARRAY) {
            char what[256];
            snprintf(what, sizeof what, "%s", keys ? keys->str ? keys->str : "not an array" : err);
            aredis_reply_free(keys);
            fail_msg("CLUSTER GETKEYSINSLOT %d on port %d: %s", slot, from_port, what);
        }
        size_t nk = keys->elements;
        if (nk == 0) {
            aredis_reply_free(keys);
            break;
        }
        const char **argv = calloc(nk + 7, sizeof *argv);
        size_t *lens = calloc(nk + 7, sizeof *lens);
        assert_true(argv && lens);
        const char *head[] = {"MIGRATE", "127.0.0.1", to, "", "0", "5000", "KEYS"};
        for (size_t k = 0; k < 7; k++) {
            argv[k] = head[k];
            lens[k] = strlen(head[k]);
        }
        for (size_t k = 0; k < nk; k++) {
            assert_int_equal(keys->element[k]->type, AREDIS_REPLY_STRING);
            argv[7 + k] = keys->element[k]->str;
            lens[7 + k] = keys->element[k]->len;
        }
        expect_ok(from_port, (int)(nk + 7), argv, lens, "NOKEY");
        moved += nk;
        free(argv);
        free(lens);
        aredis_reply_free(keys);
    }
    /* The owners: the target first, then the source, then every other
     * primary (the docs' order: the target's claim wins if gossip races). */
    int *owner = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    assert_non_null(owner);
    if (!fetch_slots(c, dst, owner)) fail_msg("migrate slot %d: %s", slot, c->why);
    setslot(to_port, s, "NODE", dst_id);
    setslot(from_port, s, "NODE", dst_id);
    for (int i = 0; i < c->n; i++) {
        int p = port_of(c, i), serves = 0;
        for (int k = 0; k < TS_CLUSTER_SLOTS && !serves; k++)
            serves = owner[k] == p;
        if (alive(c, i) && serves && p != to_port && p != from_port) setslot(p, s, "NODE", dst_id);
    }
    free(owner);
    moved_arg m = {slot, to_port};
    if (!poll_until(c, slot_moved, &m, WAIT_MS)) {
        explain(c);
        fail_msg("slot %d moved to port %d, but not every node says so within %d ms: %s", slot,
                 to_port, WAIT_MS, c->why);
    }
    ts_log("slot %d moved from port %d to %d with %zu keys", slot, from_port, to_port, moved);
}

/* ---- Replica health in CLUSTER SHARDS -------------------------------------- */

/* A RESP2 map (a flat array: key, value, ...): the value of key, or NULL. */
static const aredis_reply *flat_get(const aredis_reply *m, const char *key) {
    if (!m || m->type != AREDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->str && strcmp(m->element[i]->str, key) == 0) return m->element[i + 1];
    return NULL;
}

/* Every node that CLUSTER SHARDS on every live node lists: health online. */
static int shards_online(ts_cluster *c, const void *arg) {
    (void)arg;
    for (int i = 0; i < c->n; i++) {
        if (!alive(c, i)) continue;
        aredis_reply *r = ts_node_cmd(port_of(c, i), "CLUSTER", "SHARDS", (char *)NULL);
        if (!r) {
            why(c, i, "no reply to CLUSTER SHARDS");
            return 0;
        }
        int ok = r->type == AREDIS_REPLY_ARRAY;
        if (!ok) why(c, i, "CLUSTER SHARDS: %s", r->str ? r->str : "not an array");
        for (size_t s = 0; ok && s < r->elements; s++) {
            const aredis_reply *nodes = flat_get(r->element[s], "nodes");
            for (size_t k = 0; ok && nodes && k < nodes->elements; k++) {
                const aredis_reply *h = flat_get(nodes->element[k], "health");
                const aredis_reply *p = flat_get(nodes->element[k], "port");
                if (h && h->str && strcmp(h->str, "online") != 0) {
                    why(c, i, "CLUSTER SHARDS says node on port %lld is %s", p ? p->integer : -1LL,
                        h->str);
                    ok = 0;
                }
            }
        }
        aredis_reply_free(r);
        if (!ok) return 0;
    }
    return 1;
}

int ts_cluster_wait_shards_online(ts_cluster *c, uint64_t timeout_ms) {
    assert_non_null(c);
    uint64_t t0 = ts_now_ms();
    int ok = poll_until(c, shards_online, NULL, timeout_ms);
    if (ok)
        ts_log("CLUSTER SHARDS: every node online after %llu ms",
               (unsigned long long)(ts_now_ms() - t0));
    else
        ts_log("CLUSTER SHARDS: not every node online after %llu ms: %s",
               (unsigned long long)timeout_ms, c->why);
    return ok;
}

/* ---- A TLS-only cluster ---------------------------------------------------- */

/*
 * ts_cluster_start_tls(): the same nodes with `port 0` and a `tls-port`,
 * the bus and replication over TLS too. The nodes have no plain port, so
 * everything the fixture asks them goes over TLS (OpenSSL, blocking, within
 * CMD_TIMEOUT as ts_node_command() is), and readiness is the log line.
 * The files of each TLS cluster are kept in a small table beside it (the
 * cluster struct is shared with the plain fixture), found by its first
 * node's dir, which no other cluster has.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#define MAX_TLS_CLUSTERS 16

typedef struct tls_reg {
    char dir0[256]; /* node 0's dir: unique to its cluster */
    char ca[512], cert[512], key[512], ccert[512], ckey[512];
    ts_tls_files f;
} tls_reg;

static tls_reg g_tls_reg[MAX_TLS_CLUSTERS];
static size_t g_tls_next;

static tls_reg *tls_reg_of(const ts_cluster *c) {
    if (!c || c->n < 1 || !c->nodes[0].p.dir[0]) return NULL;
    for (size_t k = 0; k < MAX_TLS_CLUSTERS; k++)
        if (g_tls_reg[k].dir0[0] && strcmp(g_tls_reg[k].dir0, c->nodes[0].p.dir) == 0)
            return &g_tls_reg[k];
    return NULL;
}

static void copy_path(char *out, size_t outlen, const char **field, const char *path) {
    if (!path) {
        *field = NULL;
        return;
    }
    assert_true(strlen(path) < outlen);
    snprintf(out, outlen, "%s", path);
    *field = out;
}

static const ts_tls_files *tls_register(const ts_cluster *c, const ts_tls_files *f) {
    tls_reg *r = &g_tls_reg[g_tls_next++ % MAX_TLS_CLUSTERS]; /* the oldest goes */
    memset(r, 0, sizeof *r);
    snprintf(r->dir0, sizeof r->dir0, "%s", c->nodes[0].p.dir);
    copy_path(r->ca, sizeof r->ca, &r->f.ca_file, f->ca_file);
    copy_path(r->cert, sizeof r->cert, &r->f.cert_file, f->cert_file);
    copy_path(r->key, sizeof r->key, &r->f.key_file, f->key_file);
    copy_path(r->ccert, sizeof r->ccert, &r->f.client_cert_file, f->client_cert_file);
    copy_path(r->ckey, sizeof r->ckey, &r->f.client_key_file, f->client_key_file);
    return &r->f;
}

const ts_tls_files *ts_cluster_tls_files(const ts_cluster *c) {
    tls_reg *r = tls_reg_of(c);
    return r ? &r->f : NULL;
}

/* ---- One command over TLS ---- */

/* OpenSSL's first queued error after `what`, the queue emptied (the
 * library under test shares this thread's queue). */
static void tls_say(char *err, size_t errlen, const char *what, int port) {
    unsigned long e = ERR_get_error();
    char why[256] = "";
    if (e) ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error();
    snprintf(err, errlen, "127.0.0.1:%d: %s%s%s", port, what, why[0] ? ": " : "", why);
}

/* The client context for f, built once and kept while the files are the
 * same (the fixture polls: a context per command would reload them). */
static SSL_CTX *tls_ctx_for(const ts_tls_files *f, char *err, size_t errlen) {
    static SSL_CTX *ctx;
    static char key[5 * 512 + 8];
    char k[sizeof key];
    snprintf(k, sizeof k, "%s\n%s\n%s", f->ca_file ? f->ca_file : "",
             f->client_cert_file ? f->client_cert_file : "",
             f->client_key_file ? f->client_key_file : "");
    if (ctx && strcmp(k, key) == 0) return ctx;
    SSL_CTX_free(ctx);
    key[0] = '\0';
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        tls_say(err, errlen, "SSL_CTX_new", 0);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    const char *bad = NULL;
    if (!f->ca_file || SSL_CTX_load_verify_locations(ctx, f->ca_file, NULL) != 1)
        bad = "the CA file";
    else if (f->client_cert_file &&
             (SSL_CTX_use_certificate_chain_file(ctx, f->client_cert_file) != 1 ||
              SSL_CTX_use_PrivateKey_file(ctx, f->client_key_file ? f->client_key_file : "",
                                          SSL_FILETYPE_PEM) != 1))
        bad = "the client certificate or key";
    if (bad) {
        tls_say(err, errlen, bad, 0);
        SSL_CTX_free(ctx);
        ctx = NULL;
        return NULL;
    }
    snprintf(key, sizeof key, "%s", k);
    return ctx;
}

/* The socket's send and receive timeouts: what is left until `until`. */
static void tls_timeouts(int fd, uint64_t until) {
    int left = ms_left(until);
    if (left < 1) left = 1;
    struct timeval tv = {left / 1000, (left % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* An SSL call failed: 1 when it is worth another try before `until` (a
 * timeout slice ran out, or OpenSSL wants the call again). */
static int tls_again(SSL *ssl, int rc, uint64_t until) {
    int e = SSL_get_error(ssl, rc);
    return (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
            (e == SSL_ERROR_SYSCALL &&
             (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) &&
           ms_left(until) > 0;
}

aredis_reply *ts_node_command_tls(int port, const ts_tls_files *f, int argc,
                                  const char *const *argv, const size_t *lens, char *err,
                                  size_t errlen) {
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    assert_non_null(f);
    assert_true(argc > 0);
    /* OpenSSL writes with write(2): a node gone mid-write raises SIGPIPE. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = tls_ctx_for(f, err, errlen);
    if (!ctx) return NULL;
    size_t len;
    char *buf = encode(argc, argv, lens, &len);
    uint64_t until = ts_now_ms() + CMD_TIMEOUT;
    int fd = node_connect(port);
    if (fd < 0) {
        snprintf(err, errlen, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
        free(buf);
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_fd(ssl, fd);
    aredis_reply *reply = NULL;
    aredis_reader *r = NULL;
    int rc;
    do {
        tls_timeouts(fd, until);
        errno = 0;
    } while ((rc = SSL_connect(ssl)) != 1 && tls_again(ssl, rc, until));
    if (rc != 1) {
        tls_say(err, errlen, "TLS handshake failed", port);
        goto out;
    }
    for (size_t sent = 0; sent < len;) {
        size_t put = 0;
        tls_timeouts(fd, until);
        errno = 0;
        rc = SSL_write_ex(ssl, buf + sent, len - sent, &put);
        if (rc == 1) {
            sent += put;
        } else if (!tls_again(ssl, rc, until)) {
            tls_say(err, errlen, "could not send the command", port);
            goto out;
        }
    }
    r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    void *got = NULL;
    for (;;) {
        if (aredis_reader_get_reply(r, &got) != AREDIS_ERR_OK) {
            snprintf(err, errlen, "127.0.0.1:%d: bad reply: %s", port, aredis_reader_errstr(r));
            got = NULL;
            break;
        }
        if (got) break;
        size_t avail, n = 0;
        char *space = aredis_reader_space(r, 16384, &avail);
        assert_non_null(space);
        tls_timeouts(fd, until);
        errno = 0;
        rc = SSL_read_ex(ssl, space, avail, &n);
        if (rc == 1) {
            aredis_reader_commit(r, n);
        } else if (!tls_again(ssl, rc, until)) {
            if (ms_left(until) == 0)
                snprintf(err, errlen, "127.0.0.1:%d: no reply within %d ms", port, CMD_TIMEOUT);
            else
                tls_say(err, errlen, "connection ended before the reply", port);
            break;
        }
    }
    reply = got;
out:
    aredis_reader_free(r);
    SSL_free(ssl);
    close(fd);
    free(buf);
    ERR_clear_error();
    return reply;
}

aredis_reply *ts_node_cmd_tls(int port, const ts_tls_files *f, const char *arg0, ...) {
    const char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a; a = va_arg(ap, const char *)) {
        assert_true(argc < 64);
        argv[argc++] = a;
    }
    va_end(ap);
    return ts_node_command_tls(port, f, argc, argv, NULL, NULL, 0);
}

/* ---- What the nodes say, over TLS ---- */

/* A command of two words to node i over TLS; NULL and c->why when none. */
static aredis_reply *tls_ask(ts_cluster *c, int i, const ts_tls_files *f, const char *a0,
                             const char *a1) {
    char err[256];
    const char *argv[] = {a0, a1};
    aredis_reply *r = ts_node_command_tls(port_of(c, i), f, 2, argv, NULL, err, sizeof err);
    if (!r) why(c, i, "node %d: %s %s: %s", i, a0, a1, err);
    return r;
}

/* Node i's CLUSTER NODES over TLS: the line count (0 and c->why). */
static int tls_fetch_nodes(ts_cluster *c, int i, const ts_tls_files *f, nline *out, int max) {
    aredis_reply *r = tls_ask(c, i, f, "CLUSTER", "NODES");
    int count = 0;
    if (r && r->type != AREDIS_REPLY_STRING)
        why(c, i, "node %d: CLUSTER NODES: %s", i, r->str ? r->str : "not a string");
    else if (r && (count = parse_nodes(r->str, out, max)) <= 0)
        why(c, i, "node %d: CLUSTER NODES unreadable: %.300s", i, r->str);
    aredis_reply_free(r);
    return count > 0 ? count : 0;
}

/* Node i's CLUSTER SLOTS over TLS as owner[slot] = the primary's port (0:
 * none): 1, or 0 and c->why. */
static int tls_fetch_slots(ts_cluster *c, int i, const ts_tls_files *f, int *owner) {
    aredis_reply *r = tls_ask(c, i, f, "CLUSTER", "SLOTS");
    if (!r) return 0;
    int ok = r->type == AREDIS_REPLY_ARRAY;
    if (!ok) why(c, i, "node %d: CLUSTER SLOTS: %s", i, r->str ? r->str : "not an array");
    memset(owner, 0, sizeof(int) * TS_CLUSTER_SLOTS);
    for (size_t k = 0; ok && k < r->elements; k++) {
        const aredis_reply *e = r->element[k];
        ok = e->type == AREDIS_REPLY_ARRAY && e->elements >= 3 &&
             e->element[0]->type == AREDIS_REPLY_INTEGER &&
             e->element[1]->type == AREDIS_REPLY_INTEGER &&
             e->element[2]->type == AREDIS_REPLY_ARRAY && e->element[2]->elements >= 2 &&
             e->element[2]->element[1]->type == AREDIS_REPLY_INTEGER &&
             e->element[0]->integer >= 0 && e->element[1]->integer < TS_CLUSTER_SLOTS &&
             e->element[0]->integer <= e->element[1]->integer;
        if (!ok) {
            why(c, i, "node %d: CLUSTER SLOTS entry %zu malformed", i, k);
            break;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            owner[s] = (int)e->element[2]->element[1]->integer;
    }
    aredis_reply_free(r);
    return ok;
}

/* A field of node i's INFO replication over TLS: 1, or 0. */
static int tls_repl_field(ts_cluster *c, int i, const ts_tls_files *f, const char *field, char *out,
                          size_t outlen) {
    aredis_reply *r = tls_ask(c, i, f, "INFO", "replication");
    int found = r && r->type == AREDIS_REPLY_STRING && text_field(r->str, field, out, outlen);
    aredis_reply_free(r);
    return found;
}

/* Replicas node i lists as state=online in INFO replication; -1: none said. */
static int tls_online_replicas(ts_cluster *c, int i, const ts_tls_files *f) {
    aredis_reply *r = tls_ask(c, i, f, "INFO", "replication");
    int n = -1;
    if (r && r->type == AREDIS_REPLY_STRING) {
        n = 0;
        for (const char *p = r->str; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            const char *eol = p + strcspn(p, "\r\n"), *st = strstr(p, "state=online");
            n += strncmp(p, "slave", 5) == 0 && p[5] >= '0' && p[5] <= '9' && st && st < eol;
        }
    }
    aredis_reply_free(r);
    return n;
}

/* The whole cluster up, as every node says over TLS (see cluster.h). */
static int tls_settled(ts_cluster *c, const void *arg) {
    const ts_tls_files *f = arg;
    int ok = 0, ref = -1, maxl = c->n + 16;
    int *owner = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    int *owner_ref = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    nline *view = calloc((size_t)maxl, sizeof *view);
    assert_true(owner && owner_ref && view);
    for (int i = 0; i < c->n; i++) {
        if (!alive(c, i)) continue;
        int port = port_of(c, i);
        char v[64] = "?";
        aredis_reply *r = tls_ask(c, i, f, "CLUSTER", "INFO");
        if (!r || !info_ok(c, i, r)) goto out;
        if (!tls_fetch_slots(c, i, f, owner)) goto out;
        for (int s = 0; s < TS_CLUSTER_SLOTS; s++) {
            if (!owner[s] || ts_cluster_index_of_port(c, owner[s]) < 0) {
                why(c, i, "node %d (port %d): slot %d is on port %d", i, port, s, owner[s]);
                goto out;
            }
        }
        if (!views_agree(c, i, owner, owner_ref, &ref)) goto out;
        int count = tls_fetch_nodes(c, i, f, view, maxl);
        const nline *me = count ? find_line(view, count, port) : NULL;
        if (!me || !has_flag(me->flags, "myself")) {
            if (count) why(c, i, "node %d (port %d): no myself line in CLUSTER NODES", i, port);
            goto out;
        }
        int primaries = 0, replicas = 0, mine = 0;
        for (int k = 0; k < count; k++) {
            const nline *l = &view[k];
            int j = ts_cluster_index_of_port(c, l->port);
            if (j < 0) {
                why(c, i, "node %d: a stranger in its CLUSTER NODES: port %d", i, l->port);
                goto out;
            }
            if (failing(l->flags) || (j != i && strcmp(l->link, "connected") != 0)) {
                why(c, i, "node %d sees node %d as %s, %s", i, j, l->flags, l->link);
                goto out;
            }
            primaries += has_flag(l->flags, "master") && l->has_slots;
            replicas += has_flag(l->flags, "slave");
            mine += strcmp(l->master, me->id) == 0;
        }
        if (primaries != c->primaries || replicas != c->n - c->primaries) {
            why(c, i, "node %d sees %d primaries with slots and %d replicas, not %d and %d", i,
                primaries, replicas, c->primaries, c->n - c->primaries);
            goto out;
        }
        if (has_flag(me->flags, "slave")) {
            if (!tls_repl_field(c, i, f, "master_link_status", v, sizeof v) ||
                strcmp(v, "up") != 0) {
                why(c, i, "replica %d (port %d): master_link_status:%s", i, port, v);
                goto out;
            }
        } else if (tls_online_replicas(c, i, f) < mine) {
            why(c, i, "primary %d (port %d) has fewer than its %d replicas online", i, port, mine);
            goto out;
        }
    }
    ok = ref >= 0;
    if (!ok) why(c, -1, "no live node");
out:
    free(owner);
    free(owner_ref);
    free(view);
    return ok;
}

int ts_cluster_tls_node_for_slot(const ts_cluster *c, int slot) {
    const ts_tls_files *f = ts_cluster_tls_files(c);
    assert_non_null(f);
    assert_true(slot >= 0 && slot < TS_CLUSTER_SLOTS);
    int *owner = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    assert_non_null(owner);
    int port = -1;
    for (int i = 0; i < c->n && port < 0; i++)
        if (alive(c, i) && tls_fetch_slots((ts_cluster *)c, i, f, owner))
            port = owner[slot] ? owner[slot] : -1;
    free(owner);
    return port;
}

int ts_cluster_tls_keyslot(const ts_cluster *c, const char *key) {
    const ts_tls_files *f = ts_cluster_tls_files(c);
    assert_non_null(f);
    for (int i = 0; i < c->n; i++) {
        if (!alive(c, i)) continue;
        aredis_reply *r =
            ts_node_cmd_tls(port_of(c, i), f, "CLUSTER", "KEYSLOT", key, (char *)NULL);
        int slot = r && r->type == AREDIS_REPLY_INTEGER ? (int)r->integer : -1;
        aredis_reply_free(r);
        if (slot >= 0) return slot;
    }
    fail_msg("no live cluster node answered CLUSTER KEYSLOT %s over TLS", key);
    return -1;
}

/* ---- Start ---- */

typedef struct tls_conf_arg {
    const ts_tls_files *f;
    const char *const *extra;
} tls_conf_arg;

static void write_tls_node_conf(tsp_proc *p, const void *arg) {
    const tls_conf_arg *a = arg;
    p->port = free_port_pair(); /* the TLS port: the bus is on it + 10000 */
    assert_true(p->port > 0);
    char nodes_conf[320];
    snprintf(nodes_conf, sizeof nodes_conf, "%s/nodes.conf", p->dir);
    unlink(nodes_conf);
    FILE *f = fopen(p->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port 0\ntls-port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n"
            "daemonize no\nlogfile %s\nprotected-mode no\n"
            "cluster-enabled yes\ncluster-config-file nodes.conf\n"
            "cluster-node-timeout 1000\nrepl-diskless-sync-delay 0\n"
            "tls-cluster yes\ntls-replication yes\n"
            "tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\n",
            p->port, p->dir, p->log, a->f->cert_file, a->f->key_file, a->f->ca_file);
    if (a->f->client_cert_file)
        fprintf(f, "tls-client-cert-file %s\ntls-client-key-file %s\n", a->f->client_cert_file,
                a->f->client_key_file);
    tsp_write_conf_lines(f, a->extra);
    fclose(f);
}

/* As tls.c tells: a server that does not know TLS. */
static int no_tls_in(const tsp_proc *p) {
    return (tsp_output_has(p, "Bad directive") && tsp_output_has(p, "tls-")) ||
           tsp_output_has(p, "Failed finding TLS support") ||
           tsp_output_has(p, "Missing implement of connection type tls") ||
           tsp_output_has(p, "connection listener of tls");
}

ts_cluster *ts_cluster_start_tls(int primaries, int replicas_per_primary, const ts_tls_files *f,
                                 const char *const *conf) {
    require_binaries();
    assert_non_null(f);
    assert_true(f->ca_file && f->cert_file && f->key_file);
    assert_true(!f->client_cert_file == !f->client_key_file);
    assert_true(primaries >= 3 && replicas_per_primary >= 0);
    assert_true(primaries * (1 + replicas_per_primary) <= MAX_NODES);
    ts_cluster *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->primaries = primaries;
    c->replicas = replicas_per_primary;
    c->n = primaries * (1 + replicas_per_primary);
    c->nodes = calloc((size_t)c->n, sizeof *c->nodes);
    assert_non_null(c->nodes);
    c->why_node = -1;
    uint64_t t0 = ts_now_ms();
    tls_conf_arg a = {f, conf};
    for (int i = 0; i < c->n; i++) {
        tsc_node *nd = &c->nodes[i];
        nd->primary_of = nd->follows = -1;
        tsp_make_dir(&nd->p, "aredis-tls-cluster");
        nd->p.ready = tsp_ready_log; /* no plain port to PING */
        nd->p.rm_dir_at_exit = 1;
        if (tsp_start(&nd->p, write_tls_node_conf, &a) != 0) {
            int no_tls = no_tls_in(&nd->p);
            int said = no_tls ? 0 : tsp_dump_output(&nd->p);
            ts_cluster_stop(c);
            if (no_tls)
                skip_or_fail("a TLS cluster needs a server built with TLS (make BUILD_TLS=yes)");
            fail_msg("TLS cluster node %d: %s (%s) did not start (%s)", i, tsp_server_path(),
                     ts_server_describe(), said ? "its output is above" : "it printed nothing");
        }
    }
    const ts_tls_files *kept = tls_register(c, f);
    snprintf(c->cli_log, sizeof c->cli_log, "%s/cli.log", c->nodes[0].p.dir);
    if (cli_create(c, kept) != 0 || !poll_until(c, tls_settled, kept, WAIT_MS)) {
        char reason[sizeof c->why];
        snprintf(reason, sizeof reason, "%s", c->why);
        dump_cli_log(c);
        explain(c);
        ts_cluster_stop(c);
        fail_msg("the TLS cluster (%d primaries, %d replicas each, %s) did not come up: %s",
                 primaries, replicas_per_primary, ts_server_describe(), reason);
    }
    learn_roles(c, kept);
    ts_log("TLS cluster of %d nodes up in %llu ms (%s)", c->n,
           (unsigned long long)(ts_now_ms() - t0), ts_server_describe());
    return c;
}
