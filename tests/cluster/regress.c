/*
 * Regressions of the cluster client's review (src/features/cluster*.c),
 * one case per finding, each asserting the fixed behaviour, against a real
 * 3-primary, 1-replica-each cluster started once for the file (the cases
 * that change the cluster's shape undo what they add; the one that kills
 * a primary for good runs last):
 *   refusals      ASKING, READONLY, READWRITE, QUIT, CLIENT SETNAME /
 *                 TRACKING / CACHING refused (UNSUPPORTED) by the command,
 *                 argv, pipeline and transaction calls
 *   on_push       node.on_push gets node.cb_data, not the cluster's own
 *   free in conn  the cluster freed from a node connection's on_error or
 *                 on_disconnect with a BLPOP in flight there: the BLPOP's
 *                 callback once, with an error
 *   reads         topology reads go on while a BLPOP 0 holds the newest
 *                 node connection
 *   sub calls     ssubscribe / sunsubscribe that can send nothing (full
 *                 queues) return the refusal; their callback never runs,
 *                 no channel is kept
 *   dead seed     an ssubscribe made before the topology, no seed
 *                 answering: its callback once, "cluster topology
 *                 unavailable"
 *   bad MOVED     a transaction whose queued command gets a MOVED the
 *                 client cannot parse (a fake node): a reply or an error
 *   scan + free   the cluster freed with a scan batch in flight whose
 *                 CANCELLED callback frees the scan
 *   sub + free    a subscription freed in its own event of a reconcile
 *                 (RESUBSCRIBED; with the new owner's queue full, the
 *                 SUB_ERROR of the move it could not make); a subscribe
 *                 call waiting for the topology whose callback (refused:
 *                 the owner's queue full) frees the subscription
 *   sub moved     a channel whose move (slot migrated) is refused by the
 *                 new owner's full queue: AREDIS_SUB_ERROR, then, once the
 *                 queue frees, subscribed there (messages arrive)
 *   reroute       10 RPUSHes queued on a primary whose connection is down
 *                 reach the slot's new owner in order; a rerouted SET
 *                 refused by the new owner (QUEUE_FULL) whose callback
 *                 frees the cluster
 *   at most once  a busy EVAL in flight on a node that leaves the topology
 *                 (CLUSTER FORGET) runs once in all
 *   scan + leave  a scan whose address list names a node that left
 *                 (stopped, forgotten) completes without errors
 *   nodes         after a failover, aredis_cluster_nodes() lists each
 *                 connection once (the promoted replica not twice)
 *   forgotten     a SET queued on a killed primary that is forgotten by
 *                 every node once its replica is promoted: rerouted, not
 *                 failed with CLOSED (one read installs both)
 *
 * The extra node of the "at most once" and "scan + leave" cases is a
 * cluster-enabled ts_server joined with CLUSTER MEET (Redis 7.0: its bus
 * port set with cluster-port), removed with CLUSTER FORGET on every node.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"
#include "fake_server.h"
#include "aredis/cluster.h"
#include "ts.h"

#define g_loop ts_case_loop()
#define WAIT_MS 10000

static ts_cluster *g_tc;

/* ---- Replies ----------------------------------------------------------------- */

typedef struct rr {
    int calls;
    aredis_err code;
    int had_reply;
    aredis_reply_type type;
    long long integer;
    size_t elements;
    char text[200];
    char detail[300];
} rr;

static void on_rr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    rr *x = data;
    x->calls++;
    x->code = err ? err->code : AREDIS_ERR_OK;
    x->had_reply = r != NULL;
    if (err) snprintf(x->detail, sizeof x->detail, "%s", err->detail ? err->detail : "");
    if (r) {
        x->type = r->type;
        x->integer = r->integer;
        x->elements = r->elements;
        if (r->str) snprintf(x->text, sizeof x->text, "%s", r->str);
    }
}

static int rr_done(const void *a) { return ((const rr *)a)->calls > 0; }

static void wait_rr(rr *x, const char *what) {
    if (!ts_wait_until(g_loop, rr_done, x, WAIT_MS))
        fail_msg("%s: no callback within %d ms", what, WAIT_MS);
}

static void wait_ok(rr *x, const char *what) {
    wait_rr(x, what);
    if (x->code != AREDIS_ERR_OK) fail_msg("%s: %s: %s", what, aredis_err_name(x->code), x->detail);
}

static int never(const void *a) {
    (void)a;
    return 0;
}

static void run_for(uint64_t ms) { (void)ts_wait_until(g_loop, never, NULL, ms); }

/* ---- Cluster objects ------------------------------------------------------------ */

static aredis_cluster_options opts(void) {
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    o.node.reconnect_delay_ms = 20;
    o.node.max_reconnect_delay_ms = 200;
    return o;
}

static aredis_cluster *open_at(int port, aredis_cluster_options o) {
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", port);
    const char *seeds[] = {seed};
    o.seeds = seeds;
    o.nseeds = 1;
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    if (!cl) fail_msg("cluster: %s", aredis_call_error()->detail);
    return cl;
}

static int topology_known(const void *arg) {
    aredis_cluster_stats st;
    aredis_cluster_get_stats(arg, &st);
    return st.slots_known == TS_CLUSTER_SLOTS;
}

static void wait_topology(aredis_cluster *cl) {
    if (!ts_wait_until(g_loop, topology_known, cl, WAIT_MS))
        fail_msg("the cluster's topology was not read within %d ms", WAIT_MS);
}

static uint64_t refreshes(const aredis_cluster *cl) {
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    return st.refreshes;
}

/* ---- What the nodes say --------------------------------------------------------- */

/* CLUSTER SLOTS of the node on port: owner[slot] = the port of the primary
 * serving it (0: none). 1, or 0 when it did not answer. */
static int slots_of(int port, int *owner) {
    memset(owner, 0, sizeof(int) * TS_CLUSTER_SLOTS);
    aredis_reply *r = ts_node_cmd(port, "CLUSTER", "SLOTS", (char *)NULL);
    if (!r || r->type != AREDIS_REPLY_ARRAY) {
        aredis_reply_free(r);
        return 0;
    }
    for (size_t k = 0; k < r->elements; k++) {
        const aredis_reply *e = r->element[k];
        if (e->type != AREDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[2]->type != AREDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            if (s >= 0 && s < TS_CLUSTER_SLOTS) owner[s] = (int)e->element[2]->element[1]->integer;
    }
    aredis_reply_free(r);
    return 1;
}

static int g_map[TS_CLUSTER_SLOTS];

/* A key "<prefix><i>" whose slot the primary on port serves now. */
static void key_on(int port, const char *prefix, char *out, size_t n) {
    int ok = 0;
    for (int i = 0; i < ts_cluster_nodes(g_tc) && !ok; i++)
        ok = ts_cluster_is_alive(g_tc, i) && slots_of(ts_cluster_port(g_tc, i), g_map);
    if (!ok) fail_msg("no cluster node answered CLUSTER SLOTS");
    for (int i = 0; i < 200000; i++) {
        snprintf(out, n, "%s%d", prefix, i);
        if (g_map[aredis_cluster_keyslot(out, strlen(out))] == port) return;
    }
    fail_msg("no key \"%s<n>\" of the node on port %d", prefix, port);
}

static int slot_of(const char *key) { return (int)aredis_cluster_keyslot(key, strlen(key)); }

static int info_is(int port, const char *section, const char *field, const char *want) {
    char v[64];
    return ts_node_info_field(port, section, field, v, sizeof v) && strcmp(v, want) == 0;
}

/* The ports of the live fixture nodes that are primaries now (roles move
 * with failovers), in node order. */
static int primary_ports(int *out, int max) {
    int n = 0;
    for (int i = 0; i < ts_cluster_nodes(g_tc) && n < max; i++)
        if (ts_cluster_is_alive(g_tc, i) &&
            info_is(ts_cluster_port(g_tc, i), "replication", "role", "master"))
            out[n++] = ts_cluster_port(g_tc, i);
    if (n < 3) fail_msg("only %d primaries answer", n);
    return n;
}

/* The port of a live replica of the primary on port, or -1. */
static int replica_port_of(int port) {
    char want[16];
    snprintf(want, sizeof want, "%d", port);
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++) {
        int p = ts_cluster_port(g_tc, i);
        if (ts_cluster_is_alive(g_tc, i) && info_is(p, "replication", "role", "slave") &&
            info_is(p, "replication", "master_port", want))
            return p;
    }
    return -1;
}

static const char *id_of(int port) {
    int i = ts_cluster_index_of_port(g_tc, port);
    assert_true(i >= 0);
    return ts_cluster_node_id(g_tc, i);
}

/* Run a command on a node that must answer +OK. */
static void node_ok(int port, const char *a0, const char *a1, const char *a2, const char *a3,
                    const char *a4) {
    aredis_reply *r = ts_node_cmd(port, a0, a1, a2, a3, a4, (char *)NULL);
    if (!r || r->type != AREDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
        fail_msg("%s %s %s on port %d: %s", a0, a1 ? a1 : "", a2 ? a2 : "", port,
                 r && r->str ? r->str : "no reply");
    aredis_reply_free(r);
}

static int blocked(const void *arg) {
    char v[32];
    return ts_node_info_field(*(const int *)arg, "clients", "blocked_clients", v, sizeof v) &&
           atoi(v) > 0;
}

/* Until a client is blocked (a BLPOP written and waiting) on port. */
static void wait_blocked(int port) {
    if (!ts_wait_until(g_loop, blocked, &port, WAIT_MS))
        fail_msg("no blocked client on port %d within %d ms", port, WAIT_MS);
}

/* Wake a BLPOP on key (the node on port serves it). */
static void unblock(int port, const char *key) {
    aredis_reply *r = ts_node_cmd(port, "LPUSH", key, "wake", (char *)NULL);
    if (!r || r->type != AREDIS_REPLY_INTEGER)
        fail_msg("LPUSH %s on port %d: %s", key, port, r && r->str ? r->str : "no reply");
    aredis_reply_free(r);
}

/* CLIENT KILL every RESP3 connection on port (the library's). */
static int kill_resp3(int port) {
    aredis_reply *r = ts_node_cmd(port, "CLIENT", "LIST", (char *)NULL);
    assert_non_null(r);
    assert_non_null(r->str);
    int killed = 0;
    for (const char *line = r->str; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (strstr(buf, " resp=3") && strncmp(buf, "id=", 3) == 0) {
            char id[32];
            snprintf(id, sizeof id, "%ld", atol(buf + 3));
            aredis_reply *k = ts_node_cmd(port, "CLIENT", "KILL", "ID", id, (char *)NULL);
            assert_non_null(k);
            killed += k->type == AREDIS_REPLY_INTEGER ? (int)k->integer : 0;
            aredis_reply_free(k);
        }
        line = end ? end + 1 : NULL;
    }
    aredis_reply_free(r);
    return killed;
}

static int client_down(const void *arg) {
    return aredis_client_state((const aredis_client *)arg) != AREDIS_STATE_READY;
}

/* Kill the connections to the node serving key and wait until the
 * cluster's connection there is down. */
static void kill_node_connection(aredis_cluster *cl, int port, const char *key) {
    aredis_client *c = aredis_cluster_node_for_key(cl, key, strlen(key));
    assert_non_null(c);
    assert_true(kill_resp3(port) >= 1);
    if (!ts_wait_until(g_loop, client_down, c, WAIT_MS))
        fail_msg("the connection to port %d stayed up after CLIENT KILL", port);
}

/* INFO commandstats: calls of `cmd` on port (0 when none yet); -1 when it
 * did not answer. */
static long cmd_calls(int port, const char *cmd) {
    aredis_reply *r = ts_node_cmd(port, "INFO", "commandstats", (char *)NULL);
    if (!r || !r->str) {
        aredis_reply_free(r);
        return -1;
    }
    char field[64];
    snprintf(field, sizeof field, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, field);
    long n = p ? atol(p + strlen(field)) : 0;
    aredis_reply_free(r);
    return n;
}

/* ---- A node joined for a while ------------------------------------------------ */

typedef struct extra_node {
    ts_server *srv;
    int port;
    char id[48];
} extra_node;

static void extra_leftovers(void);

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Whether the node on port lists node id; `up`: connected, not failing. */
static int lists(int port, const char *id, int up) {
    aredis_reply *r = ts_node_cmd(port, "CLUSTER", "NODES", (char *)NULL);
    int yes = 0;
    const char *line = r && r->str ? strstr(r->str, id) : NULL;
    if (line) {
        const char *eol = strchr(line, '\n');
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(eol ? eol - line : (long)strlen(line)), line);
        yes = !up || (strstr(buf, " connected") && !strstr(buf, "fail") &&
                      !strstr(buf, "handshake") && !strstr(buf, "noaddr"));
    }
    aredis_reply_free(r);
    return yes;
}

static int joined(const void *arg) {
    const extra_node *d = arg;
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++) {
        if (!ts_cluster_is_alive(g_tc, i)) continue;
        if (!lists(ts_cluster_port(g_tc, i), d->id, 1)) return 0;
        if (!lists(d->port, ts_cluster_node_id(g_tc, i), 1)) return 0;
    }
    aredis_reply *r = ts_node_cmd(d->port, "CLUSTER", "INFO", (char *)NULL);
    int ok = r && r->str && strstr(r->str, "cluster_state:ok");
    aredis_reply_free(r);
    return ok;
}

/* A cluster-enabled server, met by the cluster: a primary without slots,
 * known (and knowing) every live node. */
static void extra_join(extra_node *d) {
    extra_leftovers();
    int bus = free_port();
    char busline[32];
    snprintf(busline, sizeof busline, "cluster-port %d", bus);
    const char *conf[] = {"cluster-enabled yes", "cluster-config-file nodes.conf",
                          "cluster-node-timeout 1000", busline, NULL};
    memset(d, 0, sizeof *d);
    d->srv = ts_server_start(conf, 0);
    d->port = ts_server_port(d->srv);
    aredis_reply *r = ts_node_cmd(d->port, "CLUSTER", "MYID", (char *)NULL);
    if (!r || !r->str) fail_msg("CLUSTER MYID on the extra node: no answer");
    snprintf(d->id, sizeof d->id, "%s", r->str);
    aredis_reply_free(r);
    char ps[16], bs[16];
    snprintf(ps, sizeof ps, "%d", d->port);
    snprintf(bs, sizeof bs, "%d", bus);
    int met = 0;
    for (int i = 0; i < ts_cluster_nodes(g_tc) && !met; i++)
        if (ts_cluster_is_alive(g_tc, i)) {
            node_ok(ts_cluster_port(g_tc, i), "CLUSTER", "MEET", "127.0.0.1", ps, bs);
            met = 1;
        }
    if (!ts_wait_until(g_loop, joined, d, 20000))
        fail_msg("the extra node on port %d did not join the cluster in 20 s", d->port);
}

static int forgotten(const void *arg) {
    const extra_node *d = arg;
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_alive(g_tc, i) && lists(ts_cluster_port(g_tc, i), d->id, 0)) return 0;
    return 1;
}

/* CLUSTER FORGET it on every live node (it may still run). */
static void extra_forget(extra_node *d) {
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_alive(g_tc, i))
            node_ok(ts_cluster_port(g_tc, i), "CLUSTER", "FORGET", d->id, NULL, NULL);
    if (!ts_wait_until(g_loop, forgotten, d, WAIT_MS))
        fail_msg("a node still lists the extra node after CLUSTER FORGET");
    d->id[0] = '\0';
}

static void extra_stop(extra_node *d) {
    ts_server_stop(d->srv);
    d->srv = NULL;
}

/* The one extra node at a time; what a failed case left of it is removed
 * before the cases that need the cluster as it was (best effort). */
static extra_node g_extra;

static void extra_leftovers(void) {
    if (g_extra.srv) extra_stop(&g_extra);
    if (!g_extra.id[0]) return;
    ts_log("removing the extra node %s a failed case left", g_extra.id);
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_alive(g_tc, i))
            aredis_reply_free(ts_node_cmd(ts_cluster_port(g_tc, i), "CLUSTER", "FORGET", g_extra.id,
                                          (char *)NULL));
    g_extra.id[0] = '\0';
}

typedef struct slot_at {
    int slot, port;
    const extra_node *d; /* asked too, when running */
} slot_at;

static int slot_placed(const void *arg) {
    const slot_at *a = arg;
    int *owner = malloc(sizeof(int) * TS_CLUSTER_SLOTS);
    assert_non_null(owner);
    int ok = 1;
    for (int i = 0; ok && i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_alive(g_tc, i))
            ok = slots_of(ts_cluster_port(g_tc, i), owner) && owner[a->slot] == a->port;
    if (ok && a->d && a->d->srv) ok = slots_of(a->d->port, owner) && owner[a->slot] == a->port;
    free(owner);
    return ok;
}

/* Move an empty slot between two primaries (either may be the extra node):
 * IMPORTING, MIGRATING, then NODE on the source, the target and every
 * other primary; until every node says so. */
static void move_empty_slot(int slot, int from, const char *from_id, int to, const char *to_id,
                            const extra_node *d) {
    char s[16];
    snprintf(s, sizeof s, "%d", slot);
    node_ok(to, "CLUSTER", "SETSLOT", s, "IMPORTING", from_id);
    node_ok(from, "CLUSTER", "SETSLOT", s, "MIGRATING", to_id);
    /* The source first: a primary that learns from the target's claim
     * that it lost its last slot turns into the target's replica. */
    node_ok(from, "CLUSTER", "SETSLOT", s, "NODE", to_id);
    node_ok(to, "CLUSTER", "SETSLOT", s, "NODE", to_id);
    int prim[8], np = primary_ports(prim, 8);
    for (int k = 0; k < np; k++)
        if (prim[k] != from && prim[k] != to)
            node_ok(prim[k], "CLUSTER", "SETSLOT", s, "NODE", to_id);
    slot_at a = {slot, to, d};
    if (!ts_wait_until(g_loop, slot_placed, &a, WAIT_MS))
        fail_msg("slot %d did not move from port %d to %d", slot, from, to);
}

/* ---- Sharded subscriptions -------------------------------------------------------- */

typedef struct subrec {
    size_t events[8];
    char last_detail[200];
    size_t msgs;
    int free_on_event; /* an aredis_sub_event to free the subscription in (0: none) */
    int freed;
} subrec;

static void on_smsg(aredis_cluster_sub *s, const aredis_message *m, void *data) {
    (void)s;
    (void)m;
    ((subrec *)data)->msgs++;
}

static void on_sev(aredis_cluster_sub *s, aredis_sub_event ev, const aredis_error *err,
                   void *data) {
    subrec *r = data;
    if ((unsigned)ev < 8) r->events[ev]++;
    snprintf(r->last_detail, sizeof r->last_detail, "%s", err && err->detail ? err->detail : "");
    if (r->free_on_event && (ev == AREDIS_SUB_RESUBSCRIBED || ev == AREDIS_SUB_ERROR) &&
        !r->freed) {
        r->freed = 1;
        aredis_cluster_sub_free(s);
    }
}

/* ==== The cases ===================================================================== */

/* ASKING, READONLY, READWRITE, QUIT and CLIENT SETNAME/TRACKING/CACHING act
 * on the node connection others share: refused before anything is sent,
 * through every call that takes a command. */
static void test_node_state_commands_refused(void **state) {
    (void)state;
    aredis_cluster *cl = open_at(ts_cluster_port(g_tc, 0), opts());
    static const char *const refused[] = {
        "ASKING",          "READONLY",          "READWRITE",          "QUIT",
        "readonly",        "CLIENT SETNAME rg", "CLIENT TRACKING ON", "CLIENT CACHING YES",
        "client setname x"};
    rr never_called = {0};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        aredis_err e = aredis_cluster_command(cl, on_rr, &never_called, refused[i]);
        if (e != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s: %s, not UNSUPPORTED", refused[i], aredis_err_name(e));
    }
    const char *argv[] = {"CLIENT", "TRACKING", "on"};
    assert_int_equal(aredis_cluster_argv(cl, on_rr, &never_called, 3, argv, NULL),
                     AREDIS_ERR_UNSUPPORTED);
    aredis_cluster_pipeline *p = aredis_cluster_pipeline_new(cl);
    assert_non_null(p);
    assert_int_equal(aredis_cluster_pipeline_command(p, "READWRITE"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis_cluster_pipeline_size(p), 0);
    aredis_cluster_pipeline_free(p);
    aredis_cluster_tx *tx = aredis_cluster_tx_new(cl);
    assert_non_null(tx);
    assert_int_equal(aredis_cluster_tx_queue(tx, "CLIENT SETNAME x"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis_cluster_tx_size(tx), 0);
    aredis_cluster_tx_free(tx);
    /* Their neighbours go through. */
    rr getname = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &getname, "CLIENT GETNAME"), AREDIS_ERR_OK);
    wait_ok(&getname, "CLIENT GETNAME");
    assert_int_equal(never_called.calls, 0);
    aredis_cluster_free(cl);
}

/* node.on_push gets the application's node.cb_data. */
static int g_push_cookie;
static struct {
    int calls, wrong;
    void *last;
} g_push;

static void on_node_push(aredis_client *c, aredis_reply *push, void *data) {
    (void)c;
    (void)push;
    g_push.calls++;
    g_push.last = data;
    if (data != &g_push_cookie) g_push.wrong++;
}

static int pushed(const void *arg) {
    (void)arg;
    return g_push.calls > 0;
}

static void test_on_push_gets_cb_data(void **state) {
    (void)state;
    memset(&g_push, 0, sizeof g_push);
    aredis_cluster_options o = opts();
    o.node.on_push = on_node_push;
    o.node.cb_data = &g_push_cookie;
    int prim[8];
    primary_ports(prim, 8);
    aredis_cluster *cl = open_at(prim[0], o);
    wait_topology(cl);
    char key[32];
    key_on(prim[0], "trk:", key, sizeof key);
    /* Tracking on one node connection (the cluster refuses it through its
     * own API; the connection is the application's to observe): a write
     * of a tracked prefix is pushed to it. */
    aredis_client *c = aredis_cluster_node_for_key(cl, key, strlen(key));
    assert_non_null(c);
    rr t = {0};
    assert_int_equal(aredis_command(c, on_rr, &t, "CLIENT TRACKING ON BCAST PREFIX trk:"),
                     AREDIS_ERR_OK);
    wait_ok(&t, "CLIENT TRACKING");
    aredis_reply *r = ts_node_cmd(prim[0], "SET", key, "v", (char *)NULL);
    assert_non_null(r);
    aredis_reply_free(r);
    if (!ts_wait_until(g_loop, pushed, NULL, WAIT_MS))
        fail_msg("no invalidation push reached node.on_push");
    if (g_push.wrong)
        fail_msg("node.on_push ran %d time(s) with data %p, not node.cb_data %p", g_push.wrong,
                 g_push.last, (void *)&g_push_cookie);
    assert_ptr_equal(g_push.last, &g_push_cookie);
    aredis_cluster_free(cl);
}

/* The cluster freed from a node connection's on_error or on_disconnect,
 * a BLPOP in flight on that node: the BLPOP's callback runs once, with an
 * error (under ASan: no use of freed memory). */
typedef struct freer {
    aredis_cluster *cl;
    int calls;
} freer;

static void free_from_conn_cb(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)err;
    freer *f = data;
    f->calls++;
    if (f->cl) {
        aredis_cluster *cl = f->cl;
        f->cl = NULL;
        aredis_cluster_free(cl);
    }
}

static void free_in_conn_callback(int on_error) {
    freer f = {0};
    aredis_cluster_options o = opts();
    o.node.cb_data = &f;
    if (on_error)
        o.node.on_error = free_from_conn_cb;
    else
        o.node.on_disconnect = free_from_conn_cb;
    int prim[8];
    primary_ports(prim, 8);
    int victim = prim[1];
    aredis_cluster *cl = open_at(prim[0], o);
    f.cl = cl;
    wait_topology(cl);
    char key[32];
    key_on(victim, on_error ? "fe1:" : "fd1:", key, sizeof key);
    rr b = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &b, "BLPOP %s 10", key), AREDIS_ERR_OK);
    wait_blocked(victim);
    assert_true(kill_resp3(victim) >= 1);
    wait_rr(&b, "BLPOP");
    assert_null(f.cl); /* freed by the callback */
    assert_true(f.calls >= 1);
    run_for(200);
    assert_int_equal(b.calls, 1);
    assert_int_not_equal(b.code, AREDIS_ERR_OK);
    assert_false(b.had_reply);
}

static void test_free_from_node_on_error(void **state) {
    (void)state;
    free_in_conn_callback(1);
}

static void test_free_from_node_on_disconnect(void **state) {
    (void)state;
    free_in_conn_callback(0);
}

/* Topology reads go on while a BLPOP 0 holds a node connection — the
 * newest one, which a "first connected node" choice would pick. */
static void test_topology_reads_while_blocked(void **state) {
    (void)state;
    int prim[8];
    primary_ports(prim, 8);
    aredis_cluster_options o = opts();
    o.refresh_every_ms = 300;
    aredis_cluster *cl = open_at(prim[0], o);
    wait_topology(cl);
    char key[32];
    key_on(prim[1], "rb13:", key, sizeof key);
    rr b = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &b, "BLPOP %s 0", key), AREDIS_ERR_OK);
    wait_blocked(prim[1]);
    uint64_t before = refreshes(cl);
    run_for(2000);
    uint64_t after = refreshes(cl);
    if (after < before + 3)
        fail_msg("%llu topology reads in 2 s of a BLPOP 0 (refresh_every_ms 300)",
                 (unsigned long long)(after - before));
    assert_int_equal(b.calls, 0);
    unblock(prim[1], key);
    wait_ok(&b, "BLPOP");
    aredis_cluster_free(cl);
}

/* A subscribe call that can send nothing is refused by the call itself:
 * its callback never runs, and no channel is kept. */
static void test_sub_calls_refused_not_answered(void **state) {
    (void)state;
    ts_require(TS_FEATURE_SPUBLISH);
    int prim[8];
    primary_ports(prim, 8);
    aredis_cluster_options o = opts();
    o.node.max_queue_size = 1;
    aredis_cluster *cl = open_at(prim[0], o);
    wait_topology(cl);
    /* A BLPOP fills the queue of the node owning ch (and, for the
     * sunsubscribe's PING, of every primary). */
    char keys[3][32], ch[32], other[32];
    rr b[3];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 3; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "sq8:%d:", i);
        key_on(prim[i], prefix, keys[i], sizeof keys[i]);
    }
    key_on(prim[1], "sq8ch:", ch, sizeof ch);
    snprintf(other, sizeof other, "sq8-never-held");
    assert_int_equal(aredis_cluster_command(cl, on_rr, &b[1], "BLPOP %s 10", keys[1]),
                     AREDIS_ERR_OK);
    subrec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_smsg, on_sev, &r);
    assert_non_null(s);
    const char *np[] = {ch};
    rr sr = {0};
    aredis_err e = aredis_cluster_ssubscribe(s, 1, np, NULL, on_rr, &sr);
    if (e != AREDIS_ERR_QUEUE_FULL)
        fail_msg("ssubscribe with the owner's queue full: %s (callback ran %d time(s) inside)",
                 aredis_err_name(e), sr.calls);
    assert_int_equal(sr.calls, 0);
    assert_int_equal(aredis_cluster_sub_count(s), 0);
    /* Every primary full: the sunsubscribe's answer (a PING) cannot go. */
    for (int i = 0; i < 3; i += 2)
        assert_int_equal(aredis_cluster_command(cl, on_rr, &b[i], "BLPOP %s 10", keys[i]),
                         AREDIS_ERR_OK);
    const char *op[] = {other};
    rr ur = {0};
    e = aredis_cluster_sunsubscribe(s, 1, op, NULL, on_rr, &ur);
    if (e != AREDIS_ERR_QUEUE_FULL)
        fail_msg("sunsubscribe with every queue full: %s (callback ran %d time(s) inside)",
                 aredis_err_name(e), ur.calls);
    assert_int_equal(ur.calls, 0);
    run_for(200);
    assert_int_equal(sr.calls, 0);
    assert_int_equal(ur.calls, 0);
    for (int i = 0; i < 3; i++) {
        unblock(prim[i], keys[i]);
        wait_ok(&b[i], "BLPOP");
    }
    /* With room again, the same channel subscribes. */
    assert_int_equal(aredis_cluster_ssubscribe(s, 1, np, NULL, on_rr, &sr), AREDIS_ERR_OK);
    assert_int_equal(sr.calls, 0);
    wait_ok(&sr, "SSUBSCRIBE");
    assert_int_equal(aredis_cluster_sub_count(s), 1);
    assert_int_equal(ur.calls, 0);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
}

/* An ssubscribe made before the topology is known, no seed answering:
 * its callback runs once, with why. */
static void test_ssubscribe_with_dead_seed(void **state) {
    (void)state;
    aredis_cluster *cl = open_at(ts_dead_port(), opts());
    subrec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_smsg, on_sev, &r);
    assert_non_null(s);
    const char *np[] = {"ds10:a"};
    rr x = {0};
    assert_int_equal(aredis_cluster_ssubscribe(s, 1, np, NULL, on_rr, &x), AREDIS_ERR_OK);
    assert_int_equal(x.calls, 0);
    wait_rr(&x, "SSUBSCRIBE before a topology that no seed can give");
    assert_int_not_equal(x.code, AREDIS_ERR_OK);
    if (!strstr(x.detail, "cluster topology unavailable"))
        fail_msg("the error says \"%s\"", x.detail);
    run_for(300);
    assert_int_equal(x.calls, 1);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
}

/* A transaction whose queued command gets a MOVED the client cannot parse
 * (a 300-byte host): the callback gets a reply or an error. Two fake
 * nodes: the seed answers CLUSTER SLOTS (after refusing CLUSTER SHARDS)
 * naming the other one as the owner of every slot, which answers MULTI,
 * the SET (the MOVED) and EXEC. */
static void test_tx_with_unparsable_moved(void **state) {
    (void)state;
    char host[301];
    memset(host, 'h', 300);
    host[300] = '\0';
    char moved[512];
    snprintf(moved, sizeof moved,
             "+OK\r\n-MOVED 5 %s:7000\r\n"
             "-EXECABORT Transaction discarded because of previous errors.\r\n",
             host);
    ts_fake *owner = ts_fake_new();
    ts_fake_hello3(owner);
    ts_fake_read_cmd(owner, 3);
    ts_fake_send_str(owner, moved);
    ts_fake_wait_eof(owner, 20000);
    ts_fake_start(owner);
    char slots[160];
    snprintf(slots, sizeof slots, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n",
             ts_fake_port(owner));
    ts_fake *seed = ts_fake_new();
    ts_fake_hello3(seed);
    ts_fake_reply(seed, "-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n");
    ts_fake_reply(seed, slots);
    ts_fake_wait_eof(seed, 20000);
    ts_fake_start(seed);
    aredis_cluster *cl = open_at(ts_fake_port(seed), opts());
    wait_topology(cl);
    aredis_cluster_tx *tx = aredis_cluster_tx_new(cl);
    assert_non_null(tx);
    assert_int_equal(aredis_cluster_tx_queue(tx, "SET {t12}k v"), AREDIS_ERR_OK);
    rr x = {0};
    assert_int_equal(aredis_cluster_tx_exec(tx, on_rr, &x), AREDIS_ERR_OK);
    wait_rr(&x, "EXEC");
    if (!x.had_reply && x.code == AREDIS_ERR_OK)
        fail_msg("the transaction's callback got neither a reply nor an error");
    run_for(100);
    assert_int_equal(x.calls, 1);
    aredis_cluster_tx_free(tx);
    aredis_cluster_free(cl);
    ts_fake_stop(seed);
    ts_fake_stop(owner);
}

/* The cluster freed with a scan batch in flight whose callback
 * (CANCELLED) frees the scan. */
typedef struct scanfree {
    aredis_cluster_scan *s;
    int calls;
    aredis_err code;
} scanfree;

static void on_batch_free_scan(aredis_cluster_scan *s, const aredis_reply *batch,
                               const aredis_error *err, void *data) {
    (void)batch;
    scanfree *f = data;
    f->calls++;
    f->code = err ? err->code : AREDIS_ERR_OK;
    if (f->s) {
        assert_ptr_equal(f->s, s);
        f->s = NULL;
        aredis_cluster_scan_free(s);
    }
}

static void on_batch_count(aredis_cluster_scan *s, const aredis_reply *batch,
                           const aredis_error *err, void *data) {
    (void)s;
    (void)batch;
    rr *x = data;
    x->calls++;
    x->code = err ? err->code : AREDIS_ERR_OK;
    if (err) snprintf(x->detail, sizeof x->detail, "%s", err->detail ? err->detail : "");
    if (batch) x->elements += batch->elements;
}

static void test_free_cluster_scan_callback_frees_scan(void **state) {
    (void)state;
    aredis_cluster *cl = open_at(ts_cluster_port(g_tc, 0), opts());
    aredis_cluster_scan *s = aredis_cluster_scan_new(cl, NULL);
    assert_non_null(s);
    rr first = {0};
    assert_int_equal(aredis_cluster_scan_next(s, on_batch_count, &first), AREDIS_ERR_OK);
    wait_ok(&first, "first scan batch");
    assert_false(aredis_cluster_scan_done(s));
    scanfree f = {s, 0, AREDIS_ERR_OK};
    assert_int_equal(aredis_cluster_scan_next(s, on_batch_free_scan, &f), AREDIS_ERR_OK);
    assert_true(aredis_cluster_scan_busy(s));
    aredis_cluster_free(cl);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.code, AREDIS_ERR_CANCELLED);
    assert_null(f.s);
    run_for(200);
    assert_int_equal(f.calls, 1);
}

/* A subscription freed inside its own event of a reconcile (its channel's
 * slot migrated): AREDIS_SUB_RESUBSCRIBED once the channel is placed on
 * the new owner; then, with the new owner's queue full, the event the
 * reconcile tells of the move it could not make (AREDIS_SUB_ERROR; before
 * the fix a RESUBSCRIBED, with no call in flight holding the
 * subscription). */
static int sub_freed(const void *arg) { return ((const subrec *)arg)->freed; }

static void free_in_reconcile_event(int owner_full) {
    int prim[8];
    primary_ports(prim, 8);
    int from = prim[0], to = prim[1];
    aredis_cluster_options o = opts();
    if (owner_full) o.node.max_queue_size = 1;
    aredis_cluster *cl = open_at(prim[2], o);
    wait_topology(cl);
    char ch[32], key[32];
    key_on(from, owner_full ? "fq7:" : "fr7:", ch, sizeof ch);
    key_on(to, "fb7:", key, sizeof key);
    /* The BLPOP first: the connection to the new owner is not the newest
     * (topology reads go to a connected node with room). */
    rr b = {0};
    if (owner_full) {
        assert_int_equal(aredis_cluster_command(cl, on_rr, &b, "BLPOP %s 20", key), AREDIS_ERR_OK);
        wait_blocked(to);
    }
    subrec r = {0};
    r.free_on_event = owner_full ? AREDIS_SUB_ERROR : AREDIS_SUB_RESUBSCRIBED;
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_smsg, on_sev, &r);
    assert_non_null(s);
    const char *np[] = {ch};
    rr x = {0};
    assert_int_equal(aredis_cluster_ssubscribe(s, 1, np, NULL, on_rr, &x), AREDIS_ERR_OK);
    wait_ok(&x, "SSUBSCRIBE");
    ts_cluster_migrate_slot(g_tc, slot_of(ch), to);
    if (!ts_wait_until(g_loop, sub_freed, &r, WAIT_MS))
        fail_msg("no event to free the subscription in after the slot moved (dropped %zu, "
                 "resubscribed %zu, error %zu: %s)",
                 r.events[AREDIS_SUB_DROPPED], r.events[AREDIS_SUB_RESUBSCRIBED],
                 r.events[AREDIS_SUB_ERROR], r.last_detail);
    if (owner_full) {
        unblock(to, key);
        wait_ok(&b, "BLPOP");
    }
    rr ping = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &ping, "PING"), AREDIS_ERR_OK);
    wait_ok(&ping, "PING after the free");
    run_for(200);
    /* Nothing more after the free. */
    assert_int_equal(r.events[AREDIS_SUB_RESUBSCRIBED] + r.events[AREDIS_SUB_ERROR], 1);
    assert_int_equal(r.events[r.free_on_event], 1);
    aredis_cluster_free(cl);
}

static void test_sub_freed_in_reconcile_event(void **state) {
    (void)state;
    ts_require(TS_FEATURE_SPUBLISH);
    free_in_reconcile_event(0);
    free_in_reconcile_event(1);
}

/* A subscribe call waiting for the topology, refused once it is known
 * (the owner's queue is full), whose callback frees the subscription. */
typedef struct subfree {
    aredis_cluster_sub *s;
    int calls;
    aredis_err code;
} subfree;

static void free_sub_on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err,
                              void *data) {
    (void)c;
    (void)r;
    subfree *f = data;
    f->calls++;
    f->code = err ? err->code : AREDIS_ERR_OK;
    if (f->s) {
        aredis_cluster_sub *s = f->s;
        f->s = NULL;
        aredis_cluster_sub_free(s);
    }
}

static int subfree_done(const void *arg) { return ((const subfree *)arg)->calls > 0; }

static void test_waiting_call_frees_sub(void **state) {
    (void)state;
    ts_require(TS_FEATURE_SPUBLISH);
    int prim[8];
    primary_ports(prim, 8);
    char key[32], ch[32];
    key_on(prim[1], "wq7:", key, sizeof key);
    key_on(prim[1], "wc7:", ch, sizeof ch);
    aredis_cluster_options o = opts();
    o.node.max_queue_size = 1;
    aredis_cluster *cl = open_at(prim[0], o);
    /* Both wait for the topology; the BLPOP goes out first and fills the
     * owner's queue. */
    rr b = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &b, "BLPOP %s 10", key), AREDIS_ERR_OK);
    subrec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_smsg, on_sev, &r);
    assert_non_null(s);
    subfree f = {s, 0, AREDIS_ERR_OK};
    const char *np[] = {ch};
    assert_int_equal(aredis_cluster_ssubscribe(s, 1, np, NULL, free_sub_on_reply, &f),
                     AREDIS_ERR_OK);
    assert_int_equal(f.calls, 0);
    if (!ts_wait_until(g_loop, subfree_done, &f, WAIT_MS))
        fail_msg("the waiting ssubscribe was never answered");
    assert_int_equal(f.code, AREDIS_ERR_QUEUE_FULL);
    unblock(prim[1], key);
    wait_ok(&b, "BLPOP");
    run_for(100);
    assert_int_equal(f.calls, 1);
    aredis_cluster_free(cl);
}

/* A channel moved by a reconcile whose SSUBSCRIBE the new owner's full
 * queue refuses: AREDIS_SUB_ERROR, and once the queue frees it is
 * subscribed there (no periodic read to rescue it: it is tried again). */
static int sub_error_seen(const void *arg) {
    return ((const subrec *)arg)->events[AREDIS_SUB_ERROR] > 0;
}

static void test_moved_channel_refused_then_placed(void **state) {
    (void)state;
    ts_require(TS_FEATURE_SPUBLISH);
    int prim[8];
    primary_ports(prim, 8);
    int from = prim[0], to = prim[1];
    aredis_cluster_options o = opts();
    o.node.max_queue_size = 1;
    o.refresh_every_ms = AREDIS_CLUSTER_NO_PERIODIC;
    aredis_cluster *cl = open_at(prim[2], o);
    wait_topology(cl);
    char ch[32], key[32];
    key_on(from, "mv9:", ch, sizeof ch);
    key_on(to, "mq9:", key, sizeof key);
    /* The BLPOP first: the connection to the new owner is not the newest
     * (topology reads go to a connected node with room). */
    rr b = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &b, "BLPOP %s 20", key), AREDIS_ERR_OK);
    wait_blocked(to);
    subrec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_smsg, on_sev, &r);
    assert_non_null(s);
    const char *np[] = {ch};
    rr x = {0};
    assert_int_equal(aredis_cluster_ssubscribe(s, 1, np, NULL, on_rr, &x), AREDIS_ERR_OK);
    wait_ok(&x, "SSUBSCRIBE");
    ts_cluster_migrate_slot(g_tc, slot_of(ch), to);
    if (!ts_wait_until(g_loop, sub_error_seen, &r, WAIT_MS))
        fail_msg("no AREDIS_SUB_ERROR for the refused move (dropped %zu, resubscribed %zu)",
                 r.events[AREDIS_SUB_DROPPED], r.events[AREDIS_SUB_RESUBSCRIBED]);
    if (!strstr(r.last_detail, "max_queue_size") && !strstr(r.last_detail, "pending"))
        ts_log("AREDIS_SUB_ERROR said \"%s\"", r.last_detail);
    unblock(to, key);
    wait_ok(&b, "BLPOP");
    /* Published on the new owner until one arrives. */
    uint64_t until = ts_now_ms() + WAIT_MS;
    for (int i = 0; !r.msgs && ts_now_ms() < until; i++) {
        char pl[16];
        snprintf(pl, sizeof pl, "p%d", i);
        aredis_reply *p = ts_node_cmd(to, "SPUBLISH", ch, pl, (char *)NULL);
        aredis_reply_free(p);
        run_for(100);
    }
    if (!r.msgs)
        fail_msg("nothing published on the new owner arrived in %d ms (events: error %zu, "
                 "resubscribed %zu)",
                 WAIT_MS, r.events[AREDIS_SUB_ERROR], r.events[AREDIS_SUB_RESUBSCRIBED]);
    assert_int_equal(aredis_cluster_sub_count(s), 1);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
}

/* Commands queued on a primary whose connection is down, taken back for
 * the slot's new owner: sent there in the order issued. */
typedef struct tally {
    size_t done, errors;
    char first_error[200];
} tally;

static void on_tally(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    tally *t = data;
    t->done++;
    if (err && !t->errors++)
        snprintf(t->first_error, sizeof t->first_error, "%s", err->detail ? err->detail : "");
}

static void test_rerouted_in_order(void **state) {
    (void)state;
    int prim[8];
    primary_ports(prim, 8);
    int from = prim[0], to = prim[1];
    aredis_cluster_options o = opts();
    o.node.reconnect_delay_ms = 8000;
    o.node.max_reconnect_delay_ms = 8000;
    o.node.request_timeout_ms = 30000;
    aredis_cluster *cl = open_at(prim[2], o);
    wait_topology(cl);
    char key[32];
    key_on(from, "rq3:", key, sizeof key);
    rr w = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &w, "DEL %s", key), AREDIS_ERR_OK);
    wait_ok(&w, "DEL");
    kill_node_connection(cl, from, key);
    tally t = {0};
    for (int i = 0; i < 10; i++)
        assert_int_equal(aredis_cluster_command(cl, on_tally, &t, "RPUSH %s %d", key, i),
                         AREDIS_ERR_OK);
    ts_cluster_migrate_slot(g_tc, slot_of(key), to);
    assert_true(ts_wait_count(g_loop, &t.done, 10, WAIT_MS));
    if (t.errors) fail_msg("%zu RPUSH failed, the first: %s", t.errors, t.first_error);
    aredis_reply *l = ts_node_cmd(to, "LRANGE", key, "0", "-1", (char *)NULL);
    assert_non_null(l);
    assert_int_equal(l->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(l->elements, 10);
    char got[64] = "";
    for (size_t i = 0; i < l->elements; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s ", l->element[i]->str);
    if (strcmp(got, "0 1 2 3 4 5 6 7 8 9 ") != 0)
        fail_msg("the list on the new owner is %s(not 0 ... 9 in order)", got);
    aredis_reply_free(l);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_true(st.rerouted >= 10);
    aredis_cluster_free(cl);
}

/* A command rerouted to the slot's new owner, refused there (its queue
 * full: QUEUE_FULL), whose callback frees the cluster. */
typedef struct rfree {
    aredis_cluster *cl;
    int calls;
    aredis_err code;
    uint64_t at;
} rfree;

static void free_cluster_on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err,
                                  void *data) {
    (void)c;
    (void)r;
    rfree *f = data;
    f->calls++;
    f->code = err ? err->code : AREDIS_ERR_OK;
    f->at = ts_now_ms();
    if (f->cl) {
        aredis_cluster *cl = f->cl;
        f->cl = NULL;
        aredis_cluster_free(cl);
    }
}

static int rfree_done(const void *arg) { return ((const rfree *)arg)->calls > 0; }

static void test_rerouted_refused_frees_cluster(void **state) {
    (void)state;
    int prim[8];
    primary_ports(prim, 8);
    int from = prim[0], to = prim[1];
    aredis_cluster_options o = opts();
    o.node.max_queue_size = 1;
    o.node.reconnect_delay_ms = 8000;
    o.node.max_reconnect_delay_ms = 8000;
    o.node.request_timeout_ms = 30000;
    /* Seeded from a replica, then connections made to the source, the
     * target and last the third primary: the topology is read from the
     * third one (with pending 0, and the newest), never from behind the
     * BLPOP (the target's queue is full). */
    int seed = replica_port_of(prim[2]);
    assert_true(seed > 0);
    aredis_cluster *cl = open_at(seed, o);
    wait_topology(cl);
    char key[32], bkey[32], third[32];
    key_on(from, "rf2:", key, sizeof key);
    key_on(to, "rb2:", bkey, sizeof bkey);
    key_on(prim[2], "rt2:", third, sizeof third);
    rr w = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &w, "SET %s v0", key), AREDIS_ERR_OK);
    wait_ok(&w, "SET");
    rr b = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &b, "BLPOP %s 20", bkey), AREDIS_ERR_OK);
    wait_blocked(to);
    rr w3 = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &w3, "SET %s v", third), AREDIS_ERR_OK);
    wait_ok(&w3, "SET");
    kill_node_connection(cl, from, key);
    rfree f = {cl, 0, AREDIS_ERR_OK, 0};
    assert_int_equal(aredis_cluster_command(cl, free_cluster_on_reply, &f, "SET %s v1", key),
                     AREDIS_ERR_OK);
    ts_cluster_migrate_slot(g_tc, slot_of(key), to);
    uint64_t moved_at = ts_now_ms();
    if (!ts_wait_until(g_loop, rfree_done, &f, WAIT_MS))
        fail_msg("the SET queued on the down node was never answered");
    assert_null(f.cl);
    assert_int_equal(f.code, AREDIS_ERR_QUEUE_FULL);
    /* Refused when rerouted on a topology read, not on the source's
     * reconnect (8 s later) by a MOVED. */
    if (f.at > moved_at + 4000)
        fail_msg("the SET ended %llu ms after the slot moved: not rerouted",
                 (unsigned long long)(f.at - moved_at));
    assert_int_equal(b.calls, 1); /* CANCELLED by the free */
    assert_int_equal(b.code, AREDIS_ERR_CANCELLED);
    run_for(200);
    assert_int_equal(f.calls, 1);
    assert_int_equal(b.calls, 1);
}

/* A command written to a node that leaves the topology while it runs is
 * not sent again: a keyless 1.5 s busy EVAL on a slot-less primary (the
 * seed: the only connection when it is sent), the node forgotten by every
 * other one meanwhile. */
static const char k_busy_script[] =
    "local s = redis.call('TIME') local t0 = s[1] * 1000000 + s[2] "
    "while true do local n = redis.call('TIME') "
    "if n[1] * 1000000 + n[2] - t0 >= 1500000 then break end end return 1";

static long evals(const extra_node *d) {
    long sum = 0;
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_alive(g_tc, i)) sum += cmd_calls(ts_cluster_port(g_tc, i), "eval");
    return sum + cmd_calls(d->port, "eval");
}

static void test_written_command_not_sent_twice(void **state) {
    (void)state;
    ts_require(TS_FEATURE_SPUBLISH); /* cluster-port, CLUSTER MEET's bus port: Redis 7.0 */
    extra_node *dp = &g_extra, d;
    extra_join(dp);
    d = *dp;
    long before = evals(&d);
    aredis_cluster_options o = opts();
    o.refresh_every_ms = 200;
    o.node.request_timeout_ms = 20000;
    aredis_cluster *cl = open_at(d.port, o);
    wait_topology(cl);
    rr ev = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &ev, "EVAL %s 0", k_busy_script),
                     AREDIS_ERR_OK);
    /* Connections to the other primaries (the topology is read from them
     * from now on: the extra node is busy). */
    int prim[8], np = primary_ports(prim, 8);
    rr w[8];
    memset(w, 0, sizeof w);
    for (int i = 0; i < np; i++) {
        char key[32];
        key_on(prim[i], "ev4:", key, sizeof key);
        assert_int_equal(aredis_cluster_command(cl, on_rr, &w[i], "SET %s v", key), AREDIS_ERR_OK);
    }
    for (int i = 0; i < np; i++)
        wait_ok(&w[i], "SET");
    assert_int_equal(ev.calls, 0);
    extra_forget(dp);
    wait_rr(&ev, "EVAL");
    if (ev.code != AREDIS_ERR_OK) ts_log("EVAL: %s: %s", aredis_err_name(ev.code), ev.detail);
    run_for(300);
    assert_int_equal(ev.calls, 1);
    long ran = evals(&d) - before;
    if (ran != 1) fail_msg("the EVAL ran %ld times", ran);
    assert_int_equal(ev.code, AREDIS_ERR_OK);
    aredis_cluster_free(cl);
    extra_stop(dp);
}

/* A cluster scan whose address list names a node that left the cluster
 * (its slot moved away, stopped, forgotten) completes without errors. */
static int refreshed_to(const void *arg) {
    const void *const *a = arg;
    return refreshes(a[0]) >= *(const uint64_t *)a[1];
}

static void test_scan_past_node_that_left(void **state) {
    (void)state;
    ts_require(TS_FEATURE_SPUBLISH); /* cluster-port, CLUSTER MEET's bus port: Redis 7.0 */
    extra_node *dp = &g_extra, d;
    extra_join(dp);
    d = *dp;
    /* An empty slot of the last range, moved to the extra node. */
    int slot = -1, owner_port = 0;
    for (int s = TS_CLUSTER_SLOTS - 1; s > TS_CLUSTER_SLOTS - 200 && slot < 0; s--) {
        int p = ts_cluster_node_for_slot(g_tc, s);
        char ss[16];
        snprintf(ss, sizeof ss, "%d", s);
        aredis_reply *r = ts_node_cmd(p, "CLUSTER", "COUNTKEYSINSLOT", ss, (char *)NULL);
        if (r && r->type == AREDIS_REPLY_INTEGER && r->integer == 0) {
            slot = s;
            owner_port = p;
        }
        aredis_reply_free(r);
    }
    assert_true(slot >= 0);
    const char *owner_id = id_of(owner_port);
    move_empty_slot(slot, owner_port, owner_id, d.port, d.id, &d);
    aredis_cluster_options o = opts();
    o.refresh_every_ms = 200;
    aredis_cluster *cl = open_at(ts_cluster_port(g_tc, 0), o);
    wait_topology(cl);
    tally t = {0};
    for (int i = 0; i < 30; i++)
        assert_int_equal(aredis_cluster_command(cl, on_tally, &t, "SET sl14:%d v", i),
                         AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t.done, 30, WAIT_MS));
    assert_int_equal(t.errors, 0);
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.match = "sl14:*";
    so.count = 5;
    aredis_cluster_scan *s = aredis_cluster_scan_new(cl, &so);
    assert_non_null(s);
    rr x = {0};
    assert_int_equal(aredis_cluster_scan_next(s, on_batch_count, &x), AREDIS_ERR_OK);
    wait_ok(&x, "first scan batch"); /* the addresses are taken: the extra node's among them */
    move_empty_slot(slot, d.port, d.id, owner_port, owner_id, NULL);
    extra_stop(dp);
    extra_forget(dp);
    uint64_t want = refreshes(cl) + 2;
    const void *arg[] = {cl, &want};
    if (!ts_wait_until(g_loop, refreshed_to, arg, WAIT_MS))
        fail_msg("the topology was not read again after the node left");
    int batches = 1, errors = 0;
    char first_error[400] = "";
    while (!aredis_cluster_scan_done(s) && batches < 200) {
        int before = x.calls;
        aredis_err e = aredis_cluster_scan_next(s, on_batch_count, &x);
        if (e != AREDIS_ERR_OK) fail_msg("scan_next: %s", aredis_err_name(e));
        uint64_t until = ts_now_ms() + WAIT_MS;
        while (x.calls == before && ts_now_ms() < until)
            run_for(10);
        if (x.calls == before) fail_msg("a scan batch was never answered");
        if (x.code != AREDIS_ERR_OK && !errors++)
            snprintf(first_error, sizeof first_error, "%s: %s", aredis_err_name(x.code), x.detail);
        batches++;
    }
    if (errors) fail_msg("%d scan batches failed, the first: %s", errors, first_error);
    assert_true(aredis_cluster_scan_done(s));
    assert_int_equal(x.elements, 30); /* every key once */
    aredis_cluster_scan_free(s);
    aredis_cluster_free(cl);
}

/* After a failover (a manual one: the replica takes over, the primary
 * becomes its replica), aredis_cluster_nodes() lists each connection once:
 * the promoted replica, connected before as a replica, not twice. */
static aredis_client *g_watch;
static int owner_is_watch(const void *arg) {
    const void *const *a = arg;
    const char *key = a[1];
    return aredis_cluster_node_for_key((aredis_cluster *)a[0], key, strlen(key)) == g_watch;
}

static int client_port(aredis_client *c) {
    aredis_future *f = ts_cmd(c, "CONFIG GET port");
    const aredis_reply *r = aredis_future_reply(f);
    int port = r && r->elements == 2 && r->element[1]->str ? atoi(r->element[1]->str) : -1;
    aredis_future_release(f);
    return port;
}

static int promoted(const void *arg) {
    const int *p = arg; /* replica port, slot */
    return info_is(p[0], "replication", "role", "master") &&
           ts_cluster_node_for_slot(g_tc, p[1]) == p[0];
}

static int replica_linked(const void *arg) {
    int port = *(const int *)arg;
    return info_is(port, "replication", "role", "slave") &&
           info_is(port, "replication", "master_link_status", "up");
}

static void test_nodes_listed_once_after_failover(void **state) {
    (void)state;
    extra_leftovers();
    assert_true(ts_cluster_wait_shards_online(g_tc, 15000));
    int prim[8];
    primary_ports(prim, 8);
    int p = prim[0], rp = replica_port_of(p);
    assert_true(rp > 0);
    aredis_cluster_options o = opts();
    o.read_from = AREDIS_READ_REPLICA;
    o.refresh_every_ms = 200;
    aredis_cluster *cl = open_at(p, o);
    wait_topology(cl);
    char key[32];
    key_on(p, "no16:", key, sizeof key);
    rr w = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &w, "SET %s v", key), AREDIS_ERR_OK);
    wait_ok(&w, "SET");
    for (int i = 0; i < 3; i++) {
        rr g = {0};
        assert_int_equal(aredis_cluster_command(cl, on_rr, &g, "GET %s", key), AREDIS_ERR_OK);
        wait_rr(&g, "GET"); /* a replica may answer nil before it has the SET */
    }
    aredis_client *out[32];
    size_t n = aredis_cluster_nodes(cl, out, 32, 1);
    assert_true(n <= 32);
    g_watch = NULL;
    for (size_t i = 0; i < n && !g_watch; i++)
        if (client_port(out[i]) == rp) g_watch = out[i];
    if (!g_watch) fail_msg("no connection to the replica on port %d after replica reads", rp);
    node_ok(rp, "CLUSTER", "FAILOVER", NULL, NULL, NULL);
    int arg[2] = {rp, slot_of(key)};
    if (!ts_wait_until(g_loop, promoted, arg, 20000))
        fail_msg("the replica on port %d did not take over", rp);
    const void *warg[] = {cl, key};
    if (!ts_wait_until(g_loop, owner_is_watch, warg, WAIT_MS))
        fail_msg("the cluster did not learn of the failover");
    n = aredis_cluster_nodes(cl, out, 32, 1);
    assert_true(n <= 32);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        seen += out[i] == g_watch;
        for (size_t j = i + 1; j < n; j++)
            if (out[i] == out[j])
                fail_msg("aredis_cluster_nodes(replicas): the connection at %zu is also at %zu "
                         "(%zu listed)",
                         i, j, n);
    }
    assert_int_equal(seen, 1);
    assert_int_equal(aredis_cluster_nodes(cl, out, 32, 0), 3);
    aredis_cluster_free(cl);
    g_watch = NULL;
    /* The old primary follows the new one before the next case. */
    if (!ts_wait_until(g_loop, replica_linked, &p, 20000))
        fail_msg("port %d did not become a linked replica", p);
}

/* A SET queued on a killed primary, which every node forgets once its
 * replica is promoted: rerouted there, not failed (CLOSED). Reads are
 * rate-limited (min_refresh_ms) so that one read installs the promotion
 * and the removal together. Kills a node for good: the last case. */
static void test_queued_on_forgotten_primary(void **state) {
    (void)state;
    extra_leftovers();
    int prim[8];
    primary_ports(prim, 8);
    int victim_port = prim[0], seed = prim[1];
    int victim = ts_cluster_index_of_port(g_tc, victim_port);
    assert_true(victim >= 0);
    assert_true(replica_port_of(victim_port) > 0);
    char victim_id[48];
    snprintf(victim_id, sizeof victim_id, "%s", ts_cluster_node_id(g_tc, victim));
    aredis_cluster_options o = opts();
    o.min_refresh_ms = 6000;
    o.refresh_every_ms = AREDIS_CLUSTER_NO_PERIODIC;
    o.node.reconnect_delay_ms = 8000;
    o.node.max_reconnect_delay_ms = 8000;
    o.node.request_timeout_ms = 30000;
    aredis_cluster *cl = open_at(seed, o);
    wait_topology(cl);
    char key[32];
    key_on(victim_port, "fg5:", key, sizeof key);
    rr w = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &w, "SET %s v0", key), AREDIS_ERR_OK);
    wait_ok(&w, "SET");
    aredis_client *c = aredis_cluster_node_for_key(cl, key, strlen(key));
    assert_non_null(c);
    ts_cluster_kill(g_tc, victim);
    if (!ts_wait_until(g_loop, client_down, c, WAIT_MS))
        fail_msg("the connection to the killed node stayed up");
    rr x = {0};
    assert_int_equal(aredis_cluster_command(cl, on_rr, &x, "SET %s v1", key), AREDIS_ERR_OK);
    int promoted_i = ts_cluster_wait_failover(g_tc, victim, 20000);
    int promoted_port = ts_cluster_port(g_tc, promoted_i);
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_alive(g_tc, i))
            node_ok(ts_cluster_port(g_tc, i), "CLUSTER", "FORGET", victim_id, NULL, NULL);
    if (refreshes(cl) != 1 || x.calls)
        ts_log("a topology read came before the forget (%llu reads, SET done %d): this run "
               "does not cover one read installing both",
               (unsigned long long)refreshes(cl), x.calls);
    assert_true(ts_wait_until(g_loop, rr_done, &x, 30000));
    if (x.code != AREDIS_ERR_OK)
        fail_msg("the queued SET: %s: %s", aredis_err_name(x.code), x.detail);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_true(st.rerouted >= 1);
    aredis_reply *g = ts_node_cmd(promoted_port, "GET", key, (char *)NULL);
    assert_non_null(g);
    assert_non_null(g->str);
    assert_string_equal(g->str, "v1");
    aredis_reply_free(g);
    aredis_cluster_free(cl);
}

static int group_setup(void **state) {
    (void)state;
    g_tc = ts_cluster_start(3, 1, NULL);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    ts_cluster_stop(g_tc);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_node_state_commands_refused),
        TS_LOOP_CASE(test_on_push_gets_cb_data),
        TS_LOOP_CASE(test_free_from_node_on_error),
        TS_LOOP_CASE(test_free_from_node_on_disconnect),
        TS_LOOP_CASE(test_topology_reads_while_blocked),
        TS_LOOP_CASE(test_sub_calls_refused_not_answered),
        TS_LOOP_CASE(test_ssubscribe_with_dead_seed),
        TS_LOOP_CASE(test_tx_with_unparsable_moved),
        TS_LOOP_CASE(test_free_cluster_scan_callback_frees_scan),
        TS_LOOP_CASE(test_sub_freed_in_reconcile_event),
        TS_LOOP_CASE(test_waiting_call_frees_sub),
        TS_LOOP_CASE(test_moved_channel_refused_then_placed),
        TS_LOOP_CASE(test_rerouted_in_order),
        TS_LOOP_CASE(test_rerouted_refused_frees_cluster),
        TS_LOOP_CASE(test_written_command_not_sent_twice),
        TS_LOOP_CASE(test_scan_past_node_that_left),
        TS_LOOP_CASE(test_nodes_listed_once_after_failover),
        TS_LOOP_CASE(test_queued_on_forgotten_primary),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
