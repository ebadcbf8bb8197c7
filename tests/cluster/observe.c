/*
 * Observers, metrics and credentials on the cluster's node connections
 * (aredis/observe.h, through aredis_cluster_nodes()), against a real
 * 3-primary cluster (no replicas):
 *
 *   each command  an observer and one metrics object on every node
 *                 connection, after the first topology read; 300 SETs across
 *                 the slots: exactly 300 starts and 300 ends, all SET and OK,
 *                 each on the connection aredis_cluster_node_for_key() names
 *                 for its key, with server.port and network.peer.port the
 *                 port of the primary the server says serves the slot
 *                 (sampled keys); no topology read meanwhile, and none seen;
 *                 the metrics count the same per node, and nothing else
 *   redirection   what the library counts when a slot has moved: the
 *                 command's MOVED on the old owner (a failed SERVER
 *                 operation, error.type "MOVED"), the command again on the
 *                 new owner, and a GET after the topology read that
 *                 follows — exactly 3 operations (the read is the library's
 *                 own: none), and the same 3 series in the metrics
 *   ACL user      ACL SETUSER on every node; node.username/password: every
 *                 command succeeds, every node connection is that user
 *                 (ACL WHOAMI)
 *   wrong pass    commands fail with AREDIS_ERR_AUTH within a bound (the
 *                 topology read is refused), and so do commands issued after
 *                 those failed
 *   no secret     through all of it, at DEBUG: the passwords appear in no
 *                 log line and no on_error text, while the handshakes were
 *                 logged with "<redacted>" (so the check is not vacuous)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "aredis/cluster.h"
#include "ts.h"

#define g_loop ts_case_loop()
#define WAIT_MS 10000
#define FAIL_BOUND_MS 5000
#define MARK "S3CR3T"
#define ACL_USER "cluser"
#define GOOD_PW "good-S3CR3T-1"
#define WRONG_PW "wrong-S3CR3T-2"
#define N_OPS 300

static ts_cluster *g_tc;

/* ---- Helpers ------------------------------------------------------------------ */

static char g_seed[32];
static const char *g_seeds[1];

static aredis_cluster_options plain_options(void) {
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    snprintf(g_seed, sizeof g_seed, "127.0.0.1:%d", ts_cluster_port(g_tc, 0));
    g_seeds[0] = g_seed;
    o.seeds = g_seeds;
    o.nseeds = 1;
    /* No topology read unasked: any read seen was caused by something. */
    o.refresh_every_ms = AREDIS_CLUSTER_NO_PERIODIC;
    o.node.reconnect_delay_ms = 20;
    o.node.max_reconnect_delay_ms = 200;
    return o;
}

static aredis_cluster *cluster_new(const aredis_cluster_options *o) {
    aredis_cluster *cl = aredis_cluster_new(g_loop, o);
    if (!cl)
        fail_msg("aredis_cluster_new: %s: %s", aredis_err_name(aredis_call_error()->code),
                 aredis_call_error()->detail);
    return cl;
}

static aredis_future *fwait(aredis_future *f) {
    assert_non_null(f);
    (void)aredis_await_for(f, WAIT_MS);
    if (!aredis_future_is_done(f)) fail_msg("future still pending after %d ms", WAIT_MS);
    return f;
}

static const aredis_reply *fok(aredis_future *f, const char *what) {
    const aredis_error *e = aredis_future_error(f);
    if (e) fail_msg("%s failed: %s: %s", what, aredis_err_name(e->code), e->detail);
    assert_non_null(aredis_future_reply(f));
    return aredis_future_reply(f);
}

/* The topology read once (a command answered). */
static void warm_up(aredis_cluster *cl) {
    aredis_future *f = fwait(aredis_cluster_future(cl, "PING"));
    fok(f, "PING through the cluster");
    aredis_future_release(f);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(st.slots_known, TS_CLUSTER_SLOTS);
}

typedef struct ready_arg {
    aredis_client *const *c;
    size_t n;
} ready_arg;

static int all_ready(const void *arg) {
    const ready_arg *a = arg;
    for (size_t i = 0; i < a->n; i++)
        if (aredis_client_state(a->c[i]) != AREDIS_STATE_READY) return 0;
    return 1;
}

/* Outcomes of many callbacks. */
typedef struct tally {
    size_t done, ok, errors;
    aredis_err first_code;
    char first_error[300];
    uint64_t last_at;
} tally;

static void on_tally(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c, (void)r;
    tally *t = data;
    t->done++;
    t->last_at = ts_now_ms();
    if (err) {
        if (!t->errors++) {
            t->first_code = err->code;
            snprintf(t->first_error, sizeof t->first_error, "%s", err->detail);
        }
    } else {
        t->ok++;
    }
}

/* ---- The observer ---------------------------------------------------------------- */

#define MAX_SEEN 1024

typedef struct seen_op {
    aredis_client *client;
    char name[32];
    char query[96];
    char error_type[32];
    int server_port, peer_port;
    aredis_err outcome;
} seen_op;

typedef struct seen {
    size_t starts, ends, no_span;
    seen_op op[MAX_SEEN];
} seen;

static void *obs_start(const aredis_op *op, void *data) {
    seen *s = data;
    s->starts++;
    return (void *)op->name; /* any non-NULL: checked at the end */
}

static void obs_end(const aredis_op *op, void *data) {
    seen *s = data;
    s->no_span += op->span == NULL; /* command_start's return, carried */
    if (s->ends < MAX_SEEN) {
        seen_op *o = &s->op[s->ends];
        o->client = op->client;
        snprintf(o->name, sizeof o->name, "%s", op->name);
        snprintf(o->query, sizeof o->query, "%s", op->query_text ? op->query_text : "");
        snprintf(o->error_type, sizeof o->error_type, "%s", op->error_type ? op->error_type : "");
        o->server_port = op->server_port;
        o->peer_port = op->peer_port;
        o->outcome = op->outcome;
    }
    s->ends++;
}

static const aredis_observer g_obs = {
    .command_start = obs_start, .command_end = obs_end, .flags = AREDIS_OBSERVE_QUERY_TEXT};

/* The cluster's node connections (3 primaries), each observed into s and
 * counted into m; waits until every one is ready. */
static size_t observe_nodes(aredis_cluster *cl, aredis_client **out, seen *s, aredis_metrics *m) {
    size_t n = aredis_cluster_nodes(cl, out, 8, 1);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(aredis_client_set_observer(out[i], &g_obs, s), AREDIS_ERR_OK);
        assert_int_equal(aredis_client_set_metrics(out[i], m), AREDIS_ERR_OK);
    }
    ready_arg a = {out, n};
    assert_true(ts_wait_until(g_loop, all_ready, &a, WAIT_MS));
    return n;
}

/* The count of the metrics series (port, name, error type or NULL). */
static uint64_t series(const aredis_metrics_snapshot *snap, int port, const char *name,
                       const char *error_type) {
    for (size_t i = 0; i < snap->n_ops; i++) {
        const aredis_metrics_op *o = &snap->ops[i];
        if (o->server_port == port && strcmp(o->name, name) == 0 &&
            (error_type ? o->error_type && strcmp(o->error_type, error_type) == 0 : !o->error_type))
            return o->duration.count;
    }
    return 0;
}

static void dump_series(const aredis_metrics_snapshot *snap) {
    for (size_t i = 0; i < snap->n_ops; i++)
        ts_log("metrics: port %d %s %s: %llu", snap->ops[i].server_port, snap->ops[i].name,
               snap->ops[i].error_type ? snap->ops[i].error_type : "OK",
               (unsigned long long)snap->ops[i].duration.count);
}

/* ---- 1. Every command seen once, on its node ------------------------------------ */

static void test_observer_sees_each_command(void **state) {
    (void)state;
    aredis_cluster_options o = plain_options();
    aredis_cluster *cl = cluster_new(&o);
    warm_up(cl);
    static seen s;
    memset(&s, 0, sizeof s);
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    aredis_client *node[8];
    observe_nodes(cl, node, &s, m);
    tally t = {0};
    for (int i = 0; i < N_OPS; i++)
        assert_int_equal(aredis_cluster_command(cl, on_tally, &t, "SET obs:%d v%d", i, i),
                         AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t.done, N_OPS, WAIT_MS));
    if (t.errors) fail_msg("%zu SETs failed, the first: %s", t.errors, t.first_error);
    /* Exactly one start and one end per command; nothing else (no topology
     * read: none was needed, and none happened). */
    assert_int_equal(s.starts, N_OPS);
    assert_int_equal(s.ends, N_OPS);
    assert_int_equal(s.no_span, 0);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(st.moved, 0);
    /* Each on the node connection that serves its key; per connection one
     * server.port, the one it is connected to. */
    int port_of[3] = {0, 0, 0};
    size_t per[3] = {0, 0, 0};
    for (size_t k = 0; k < s.ends; k++) {
        const seen_op *x = &s.op[k];
        assert_string_equal(x->name, "SET");
        assert_int_equal(x->outcome, AREDIS_ERR_OK);
        assert_string_equal(x->error_type, "");
        char key[32];
        int i;
        if (sscanf(x->query, "SET %31s v%d", key, &i) != 2)
            fail_msg("query text [%s] is not a SET of this test", x->query);
        aredis_client *want = aredis_cluster_node_for_key(cl, key, strlen(key));
        if (x->client != want) fail_msg("%s ran on another node connection than its key's", key);
        int j = x->client == node[0] ? 0 : x->client == node[1] ? 1 : x->client == node[2] ? 2 : -1;
        assert_true(j >= 0);
        if (!port_of[j]) port_of[j] = x->server_port;
        assert_int_equal(x->server_port, port_of[j]);
        assert_int_equal(x->peer_port, x->server_port);
        per[j]++;
        /* Sampled: the port is the one the server says serves the slot. */
        if (i % 10 == 0) {
            int owner = ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, key));
            if (x->server_port != owner)
                fail_msg("%s: server.port %d, but its slot is served on port %d", key,
                         x->server_port, owner);
        }
    }
    assert_true(per[0] && per[1] && per[2]);
    assert_int_equal(per[0] + per[1] + per[2], N_OPS);
    assert_true(port_of[0] != port_of[1] && port_of[1] != port_of[2] && port_of[0] != port_of[2]);
    for (int j = 0; j < 3; j++)
        assert_true(ts_cluster_is_primary(g_tc, ts_cluster_index_of_port(g_tc, port_of[j])));
    /* The metrics: the same counts per node, and no other series. */
    aredis_metrics_snapshot *snap = aredis_metrics_snapshot_take(m);
    assert_non_null(snap);
    dump_series(snap);
    assert_int_equal(snap->n_ops, 3);
    for (int j = 0; j < 3; j++)
        assert_int_equal(series(snap, port_of[j], "SET", NULL), per[j]);
    aredis_metrics_snapshot_free(snap);
    aredis_cluster_free(cl);
    aredis_metrics_free(m);
}

/* ---- 2. A redirection: what the library counts ------------------------------------ */

typedef struct refresh_arg {
    aredis_cluster *cl;
    uint64_t want;
} refresh_arg;

static int refreshed(const void *arg) {
    const refresh_arg *a = arg;
    aredis_cluster_stats st;
    aredis_cluster_get_stats(a->cl, &st);
    return st.refreshes >= a->want;
}

static void test_observer_counts_redirection(void **state) {
    (void)state;
    aredis_cluster_options o = plain_options();
    aredis_cluster *cl = cluster_new(&o);
    warm_up(cl);
    static seen s;
    memset(&s, 0, sizeof s);
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    aredis_client *node[8];
    observe_nodes(cl, node, &s, m);
    /* The slot of a key moves to another primary behind the client's back. */
    const char *key = "obsmv:{m}";
    int slot = ts_cluster_keyslot(g_tc, key);
    int from = ts_cluster_node_for_slot(g_tc, slot), to = -1;
    for (int i = 0; i < ts_cluster_nodes(g_tc) && to < 0; i++)
        if (ts_cluster_is_primary(g_tc, i) && ts_cluster_port(g_tc, i) != from)
            to = ts_cluster_port(g_tc, i);
    ts_cluster_migrate_slot(g_tc, slot, to);
    aredis_future *f = fwait(aredis_cluster_future(cl, "SET %s moved", key));
    fok(f, "SET of a moved slot");
    aredis_future_release(f);
    /* The MOVED makes the cluster read the topology again; once that is
     * installed, one more command on the slot (straight to the new owner):
     * anything late would be seen before its reply. */
    refresh_arg ra = {cl, 2};
    assert_true(ts_wait_until(g_loop, refreshed, &ra, WAIT_MS));
    f = fwait(aredis_cluster_future(cl, "GET %s", key));
    assert_string_equal(fok(f, "GET after the move")->str, "moved");
    aredis_future_release(f);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.moved, 1);
    assert_int_equal(st.refreshes, 2);
    for (size_t k = 0; k < s.ends && k < MAX_SEEN; k++)
        ts_log("op %zu: %s [%s] port %d %s", k, s.op[k].name, s.op[k].query, s.op[k].server_port,
               s.op[k].error_type[0] ? s.op[k].error_type : "OK");
    /* SET on the old owner (MOVED), SET on the new one, the GET. The
     * topology read is the library's own command: not an operation
     * (aredis/observe.h). */
    assert_int_equal(s.ends, 3);
    assert_int_equal(s.starts, 3);
    int moved = 0, set_ok = 0, reads = 0, get_ok = 0;
    for (size_t k = 0; k < s.ends; k++) {
        const seen_op *x = &s.op[k];
        if (strcmp(x->name, "SET") == 0 && x->outcome == AREDIS_ERR_SERVER &&
            strcmp(x->error_type, "MOVED") == 0 && x->server_port == from)
            moved++;
        else if (strcmp(x->name, "SET") == 0 && x->outcome == AREDIS_ERR_OK && x->server_port == to)
            set_ok++;
        else if (strcmp(x->name, "CLUSTER") == 0 && x->outcome == AREDIS_ERR_OK &&
                 strcmp(x->query, "CLUSTER SHARDS") == 0)
            reads++;
        else if (strcmp(x->name, "GET") == 0 && x->outcome == AREDIS_ERR_OK && x->server_port == to)
            get_ok++;
    }
    assert_int_equal(moved, 1);
    assert_int_equal(set_ok, 1);
    assert_int_equal(reads, 0);
    assert_int_equal(get_ok, 1);
    /* The metrics say the same. */
    aredis_metrics_snapshot *snap = aredis_metrics_snapshot_take(m);
    assert_non_null(snap);
    dump_series(snap);
    assert_int_equal(series(snap, from, "SET", "MOVED"), 1);
    assert_int_equal(series(snap, to, "SET", NULL), 1);
    assert_int_equal(series(snap, to, "GET", NULL), 1);
    uint64_t cluster_reads = 0, total = 0;
    for (size_t i = 0; i < snap->n_ops; i++) {
        total += snap->ops[i].duration.count;
        if (strcmp(snap->ops[i].name, "CLUSTER") == 0) cluster_reads += snap->ops[i].duration.count;
    }
    assert_int_equal(cluster_reads, 0);
    assert_int_equal(total, 3);
    aredis_metrics_snapshot_free(snap);
    aredis_cluster_free(cl);
    aredis_metrics_free(m);
}

/* ---- 3. An ACL user on every node --------------------------------------------------- */

static char *g_cap;
static size_t g_caplen, g_capcap;

static void cap_add(const char *what, const char *text) {
    if (!text) text = "(null)";
    size_t need = strlen(what) + strlen(text) + 4;
    if (g_caplen + need + 1 > g_capcap) {
        g_capcap = (g_caplen + need + 1) * 2;
        g_cap = realloc(g_cap, g_capcap);
        assert_non_null(g_cap);
    }
    g_caplen += (size_t)sprintf(g_cap + g_caplen, "%s: %s\n", what, text);
}

static void capture_log(int level, const char *line, void *data) {
    (void)data;
    cap_add(aredis_log_level_name(level), line);
}

static void on_node_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c, (void)data;
    cap_add("on_error", err->detail);
}

static void assert_clean(const char *where) {
    const char *at = g_cap ? strstr(g_cap, MARK) : NULL;
    if (at) {
        const char *from = at - g_cap > 200 ? at - 200 : g_cap;
        fail_msg("%s: a password leaked:\n...%.300s", where, from);
    }
}

static void assert_captured(const char *needle) {
    if (!g_cap || !strstr(g_cap, needle)) fail_msg("not in the captured log: [%s]", needle);
}

/* How many captured lines contain needle. */
static int captured_count(const char *needle) {
    int n = 0;
    for (const char *p = g_cap; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#define HANDSHAKE_LOGGED "handshake: HELLO 3 AUTH <redacted> <redacted>"

static aredis_cluster_options acl_options(const char *password) {
    aredis_cluster_options o = plain_options();
    o.node.username = ACL_USER;
    o.node.password = password;
    o.node.on_error = on_node_error;
    return o;
}

static void test_acl_user(void **state) {
    (void)state;
    aredis_set_log_handler(capture_log, NULL, AREDIS_LOG_DEBUG);
    aredis_cluster_options o = acl_options(GOOD_PW);
    aredis_cluster *cl = cluster_new(&o);
    tally t = {0};
    for (int i = 0; i < N_OPS; i++)
        assert_int_equal(aredis_cluster_command(cl, on_tally, &t, "SET acl:%d v%d", i, i),
                         AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t.done, N_OPS, WAIT_MS));
    if (t.errors)
        fail_msg("%zu commands failed, the first: %s: %s", t.errors, aredis_err_name(t.first_code),
                 t.first_error);
    aredis_client *node[8];
    assert_int_equal(aredis_cluster_nodes(cl, node, 8, 1), 3);
    for (int i = 0; i < 3; i++) {
        aredis_future *f = fwait(aredis_future_command(node[i], "ACL WHOAMI"));
        assert_string_equal(fok(f, "ACL WHOAMI")->str, ACL_USER);
        aredis_future_release(f);
    }
    aredis_cluster_free(cl);
    aredis_set_log_handler(NULL, NULL, 0);
    /* Every node's handshake was logged, the credentials in it redacted. */
    if (captured_count(HANDSHAKE_LOGGED) < 3)
        fail_msg("%d handshakes logged, not the 3 node connections'",
                 captured_count(HANDSHAKE_LOGGED));
    assert_clean("right password");
}

/* ---- 4. A wrong password --------------------------------------------------------------- */

/* n commands at once: every one must fail with AREDIS_ERR_AUTH within
 * FAIL_BOUND_MS. */
static void expect_auth_failures(aredis_cluster *cl, int n, const char *what) {
    tally t = {0};
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < n; i++)
        assert_int_equal(aredis_cluster_command(cl, on_tally, &t, "GET wpw:%d", i), AREDIS_ERR_OK);
    if (!ts_wait_count(g_loop, &t.done, (size_t)n, FAIL_BOUND_MS))
        fail_msg("%s: %zu of %d commands ended within %d ms", what, t.done, n, FAIL_BOUND_MS);
    ts_log("%s: %d commands failed in %llu ms: %s: %s", what, n,
           (unsigned long long)(t.last_at - t0), aredis_err_name(t.first_code), t.first_error);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.errors, (size_t)n);
    if (t.first_code != AREDIS_ERR_AUTH)
        fail_msg("%s: %s: %s (not AREDIS_ERR_AUTH)", what, aredis_err_name(t.first_code),
                 t.first_error);
    cap_add("command error", t.first_error);
}

static void test_wrong_password(void **state) {
    (void)state;
    aredis_set_log_handler(capture_log, NULL, AREDIS_LOG_DEBUG);
    aredis_cluster_options o = acl_options(WRONG_PW);
    aredis_cluster *cl = cluster_new(&o);
    expect_auth_failures(cl, 20, "wrong password");
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.refreshes, 0);
    aredis_cluster_free(cl);
    aredis_set_log_handler(NULL, NULL, 0);
    assert_captured(HANDSHAKE_LOGGED);
    assert_captured("on_error: ");
    assert_clean("wrong password");
}

/* Commands issued after the first ones failed: refused as soon, and still
 * for the reason the topology cannot be read. */
static void test_wrong_password_later_commands(void **state) {
    (void)state;
    aredis_set_log_handler(capture_log, NULL, AREDIS_LOG_DEBUG);
    aredis_cluster_options o = acl_options(WRONG_PW);
    aredis_cluster *cl = cluster_new(&o);
    expect_auth_failures(cl, 5, "wrong password, first commands");
    expect_auth_failures(cl, 5, "wrong password, commands issued after those failed");
    aredis_cluster_free(cl);
    aredis_set_log_handler(NULL, NULL, 0);
    assert_clean("wrong password, later commands");
}

static int group_setup(void **state) {
    (void)state;
    g_tc = ts_cluster_start(3, 0, NULL);
    /* The ACL user on every node (ACLs are per node); the default user
     * stays as it is, for the fixture. */
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++) {
        aredis_reply *r = ts_node_cmd(ts_cluster_port(g_tc, i), "ACL", "SETUSER", ACL_USER, "reset",
                                      "on", ">" GOOD_PW, "~*", "&*", "+@all", (char *)NULL);
        if (!r || r->type != AREDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
            fail_msg("ACL SETUSER on port %d: %s", ts_cluster_port(g_tc, i),
                     r && r->str ? r->str : "no reply");
        aredis_reply_free(r);
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    aredis_set_log_handler(NULL, NULL, 0);
    ts_cluster_stop(g_tc);
    free(g_cap);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_observer_sees_each_command),
        TS_LOOP_CASE(test_observer_counts_redirection),
        TS_LOOP_CASE(test_acl_user),
        TS_LOOP_CASE(test_wrong_password),
        TS_LOOP_CASE(test_wrong_password_later_commands),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
