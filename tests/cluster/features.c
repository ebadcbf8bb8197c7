/*
 * The cluster client's public features (aredis/cluster.h) against a real
 * 3-primary, 1-replica-each cluster, started once for the file:
 *   pipelines     300 commands over every slot (a PING and a failing INCR
 *                 among them) come back as one ARRAY in queue order, the
 *                 callback once and never inside exec, one write per node,
 *                 the pipeline empty and reusable after exec; CROSSSLOT
 *                 refused when queued; an empty exec refused; the future
 *                 form; a slot migrated just before exec (MOVED followed
 *                 per command)
 *   transactions  hash-tagged MULTI/EXEC, a command of another slot
 *                 refused when queued, keyless commands allowed, session
 *                 commands refused, EXECABORT, the slot migrated before
 *                 exec (the whole transaction sent again), the future form
 *   command_all   FLUSHALL and DBSIZE on every primary, in node order;
 *                 commands with keys refused
 *   scan          1,000 keys over every primary found exactly once, a TYPE
 *                 filter, refusals, freed part-way
 *   futures       GET/argv futures, each command run once (100 INCRs), a
 *                 CROSSSLOT future already failed, subscribe/MULTI refused;
 *                 option validation; a dead first seed
 *   replicas      read_from REPLICA, seeded from a primary and from a
 *                 replica: reads served by the replica connections, no
 *                 MOVED, writes still on the primaries
 *   nodes         nodes, node_for_key, keyslot against the server's
 *   free          the cluster freed with a pipeline, a transaction and
 *                 commands in flight: every callback once (client NULL);
 *                 pipelines, transactions and scans freed after their
 *                 cluster; a scan freed while its first batch is on its way
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "aredis/cluster.h"
#include "ts.h"

#define g_loop ts_case_loop()
#define WAIT_MS 15000

static ts_cluster *g_tc;

/* ---- Helpers ---------------------------------------------------------------- */

static aredis_cluster *cluster_ex(int node, aredis_read_from rf, uint32_t refresh_every) {
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", ts_cluster_port(g_tc, node));
    const char *seeds[] = {seed};
    o.seeds = seeds;
    o.nseeds = 1;
    o.node.reconnect_delay_ms = 20;
    o.node.max_reconnect_delay_ms = 200;
    o.read_from = rf;
    o.refresh_every_ms = refresh_every;
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    if (!cl) fail_msg("cluster: %s", aredis_call_error()->detail);
    return cl;
}

static aredis_cluster *cluster_on(int node) {
    return cluster_ex(node, AREDIS_READ_PRIMARY, AREDIS_CLUSTER_NO_PERIODIC);
}

/* The index of a primary (or replica) node of the fixture. */
static int a_node(int primary) {
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_primary(g_tc, i) == primary) return i;
    fail_msg("no %s in the cluster", primary ? "primary" : "replica");
    return -1;
}

/* A future awaited (bounded): it must be done. */
static aredis_future *fwait(aredis_future *f) {
    assert_non_null(f);
    (void)aredis_await_for(f, WAIT_MS);
    if (!aredis_future_is_done(f)) fail_msg("future still pending after %d ms", WAIT_MS);
    return f;
}

/* The future's reply, asserting it succeeded. */
static const aredis_reply *fok(aredis_future *f, const char *what) {
    const aredis_error *e = aredis_future_error(f);
    if (e) fail_msg("%s failed: %s: %s", what, aredis_err_name(e->code), e->detail);
    assert_non_null(aredis_future_reply(f));
    return aredis_future_reply(f);
}

/* A reply callback's outcome, kept (the reply retained). */
typedef struct res {
    int calls;
    int inside;                /* calls made while the issuing call had not returned */
    int cancelled_with_client; /* CANCELLED with a client argument */
    aredis_err code;
    char prefix[32];
    char detail[256];
    aredis_reply *r;
} res;

static int g_in_call;

static void on_res(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    res *x = data;
    x->calls++;
    if (g_in_call) x->inside++;
    x->code = err ? err->code : AREDIS_ERR_OK;
    if (err && err->code == AREDIS_ERR_CANCELLED && c) x->cancelled_with_client++;
    if (err) {
        snprintf(x->prefix, sizeof x->prefix, "%s", err->prefix);
        snprintf(x->detail, sizeof x->detail, "%s", err->detail ? err->detail : "");
    }
    aredis_reply_release(x->r);
    x->r = r ? aredis_reply_retain(r) : NULL;
}

static int res_done(const void *arg) { return ((const res *)arg)->calls > 0; }

static void res_wait(res *x, const char *what) {
    if (!ts_wait_until(g_loop, res_done, x, WAIT_MS)) fail_msg("%s: no callback in time", what);
}

static void res_clear(res *x) {
    aredis_reply_release(x->r);
    memset(x, 0, sizeof *x);
}

/* Many commands' outcomes. */
typedef struct tally {
    size_t done, ok, errors, wrong, cancelled;
    size_t cancelled_with_client; /* CANCELLED with a client argument */
    char first_error[200];
} tally;

typedef struct op {
    tally *t;
    int calls;
    char want[48]; /* a GET's expected value; "" for anything that is not an error */
} op;

static void on_op(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    op *o = data;
    tally *t = o->t;
    o->calls++;
    t->done++;
    if (err) {
        if (err->code == AREDIS_ERR_CANCELLED) t->cancelled++;
        if (err->code == AREDIS_ERR_CANCELLED && c) t->cancelled_with_client++;
        if (!t->errors++)
            snprintf(t->first_error, sizeof t->first_error, "%s: %s", aredis_err_name(err->code),
                     err->detail ? err->detail : "");
    } else if (o->want[0] && !(r && r->str && strcmp(r->str, o->want) == 0) &&
               !(r && r->type == AREDIS_REPLY_INTEGER && r->integer == atoll(o->want))) {
        t->wrong++;
    } else {
        t->ok++;
    }
}

/* SET <prefix><i> v<i> for i in [0, n), all in flight, asserting each OK. */
static void put_keys(aredis_cluster *cl, const char *prefix, int n) {
    tally t = {0};
    op *ops = calloc((size_t)n, sizeof *ops);
    assert_non_null(ops);
    for (int i = 0; i < n; i++) {
        ops[i].t = &t;
        char k[64], v[32];
        snprintf(k, sizeof k, "%s%d", prefix, i);
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "SET %s %s", k, v),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, (size_t)n, WAIT_MS));
    if (t.errors) fail_msg("%zu SETs failed, the first: %s", t.errors, t.first_error);
    assert_int_equal(t.ok, (size_t)n);
    free(ops);
}

/* One command through the cluster, awaited; the future (caller releases). */
#define CL(cl, ...) fwait(aredis_cluster_future((cl), __VA_ARGS__))

/* The topology is known and every primary connected (and READY). */
static void warm_up(aredis_cluster *cl) {
    aredis_future *f = CL(cl, "PING");
    fok(f, "PING");
    aredis_future_release(f);
    res x = {0};
    assert_int_equal(aredis_cluster_command_all(cl, on_res, &x, "PING"), AREDIS_ERR_OK);
    res_wait(&x, "command_all PING");
    assert_int_equal(x.code, AREDIS_ERR_OK);
    assert_int_equal(x.r->elements, 3);
    res_clear(&x);
}

/* The port a node connection talks to, as the server says (no public
 * accessor gives a node client's address). */
static int client_port(aredis_client *c) {
    aredis_future *f = ts_cmd(c, "CONFIG GET port");
    const aredis_reply *r = fok(f, "CONFIG GET port");
    if (r->elements != 2 || !r->element[1]->str) fail_msg("CONFIG GET port: unexpected reply");
    int port = atoi(r->element[1]->str);
    aredis_future_release(f);
    return port;
}

/* A primary port other than `not`. */
static int other_primary(int not ) {
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_primary(g_tc, i) && ts_cluster_is_alive(g_tc, i) &&
            ts_cluster_port(g_tc, i) != not )
            return ts_cluster_port(g_tc, i);
    fail_msg("no other primary");
    return -1;
}

/* GET key on port (the node must own it): its value, or "(nil)". */
static void assert_node_get(int port, const char *key, const char *want) {
    aredis_reply *r = ts_node_cmd(port, "GET", key, (char *)NULL);
    if (!r) fail_msg("port %d: no reply to GET %s", port, key);
    const char *got = r->type == AREDIS_REPLY_NIL ? "(nil)" : r->str ? r->str : "?";
    if (strcmp(got, want) != 0)
        fail_msg("GET %s on port %d: %s %s, want %s", key, port, aredis_reply_type_name(r->type),
                 got, want);
    aredis_reply_free(r);
}

/* What a reply must be. */
typedef struct want {
    aredis_reply_type type;
    char str[48]; /* STRING/STATUS: equal; ERROR: a prefix */
    long long integer;
    int any_integer;
} want;

static void check_reply(const aredis_reply *r, const want *w, size_t i) {
    if (!r) fail_msg("element %zu: no reply", i);
    if (r->type != w->type)
        fail_msg("element %zu: %s [%s], want %s [%s]", i, aredis_reply_type_name(r->type),
                 r->str ? r->str : "", aredis_reply_type_name(w->type), w->str);
    switch (w->type) {
    case AREDIS_REPLY_STRING:
    case AREDIS_REPLY_STATUS:
        if (strcmp(r->str, w->str) != 0)
            fail_msg("element %zu: [%s], want [%s]", i, r->str, w->str);
        break;
    case AREDIS_REPLY_ERROR:
        if (strncmp(r->str, w->str, strlen(w->str)) != 0)
            fail_msg("element %zu: error [%s], want one starting [%s]", i, r->str, w->str);
        break;
    case AREDIS_REPLY_INTEGER:
        if (!w->any_integer && r->integer != w->integer)
            fail_msg("element %zu: %lld, want %lld", i, r->integer, w->integer);
        break;
    default:
        break;
    }
}

static void check_array(const aredis_reply *arr, const want *w, size_t n) {
    assert_non_null(arr);
    if (arr->type != AREDIS_REPLY_ARRAY)
        fail_msg("not an ARRAY: %s [%s]", aredis_reply_type_name(arr->type),
                 arr->str ? arr->str : "");
    if (arr->elements != n) fail_msg("ARRAY of %zu, want %zu", arr->elements, n);
    for (size_t i = 0; i < n; i++)
        check_reply(arr->element[i], &w[i], i);
}

static want w_str(const char *s) {
    want w = {AREDIS_REPLY_STRING, "", 0, 0};
    snprintf(w.str, sizeof w.str, "%s", s);
    return w;
}
static want w_status(const char *s) {
    want w = w_str(s);
    w.type = AREDIS_REPLY_STATUS;
    return w;
}
static want w_err(const char *s) {
    want w = w_str(s);
    w.type = AREDIS_REPLY_ERROR;
    return w;
}
static want w_int(long long v) {
    want w = {AREDIS_REPLY_INTEGER, "", v, 0};
    return w;
}

/* ---- 1. Pipelines across slots ----------------------------------------------- */

#define PN 300

/* The 300 commands: SET pl:k<i> / GET of the key set just before / INCR of
 * a fresh counter, a PING at 152 and an INCR of a string at 200. */
static void queue_300(aredis_cluster_pipeline *p, want *w) {
    for (int i = 0; i < PN; i++) {
        char k[32], v[32];
        aredis_err e;
        if (i == 152) {
            e = aredis_cluster_pipeline_command(p, "PING");
            w[i] = w_status("PONG");
        } else if (i == 200) {
            snprintf(k, sizeof k, "pl:k%d", i - 2);
            e = aredis_cluster_pipeline_command(p, "INCR %s", k);
            w[i] = w_err("ERR value is not an integer");
        } else if (i % 3 == 0) {
            snprintf(k, sizeof k, "pl:k%d", i);
            snprintf(v, sizeof v, "v%d", i);
            e = aredis_cluster_pipeline_command(p, "SET %s %s", k, v);
            w[i] = w_status("OK");
        } else if (i % 3 == 1) {
            snprintf(k, sizeof k, "pl:k%d", i - 1);
            snprintf(v, sizeof v, "v%d", i - 1);
            const char *argv[] = {"GET", k};
            e = aredis_cluster_pipeline_argv(p, 2, argv, NULL);
            w[i] = w_str(v);
        } else {
            snprintf(k, sizeof k, "pl:c%d", i);
            e = aredis_cluster_pipeline_command(p, "INCRBY %s %d", k, i);
            w[i] = w_int(i);
        }
        assert_int_equal(e, AREDIS_ERR_OK);
    }
    assert_int_equal(aredis_cluster_pipeline_size(p), PN);
}

static void test_pipeline_across_slots(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(0);
    warm_up(cl);
    aredis_client *prim[8];
    assert_int_equal(aredis_cluster_nodes(cl, prim, 8, 0), 3);
    /* The SET keys land on every primary. */
    int on[3] = {0};
    for (int i = 0; i < PN; i += 3) {
        char k[32];
        snprintf(k, sizeof k, "pl:k%d", i);
        aredis_client *c = aredis_cluster_node_for_key(cl, k, strlen(k));
        for (int j = 0; j < 3; j++)
            on[j] += c == prim[j];
    }
    assert_true(on[0] > 0 && on[1] > 0 && on[2] > 0);

    aredis_client_stats before[3], after[3];
    for (int j = 0; j < 3; j++)
        aredis_client_get_stats(prim[j], &before[j]);
    aredis_cluster_pipeline *p = aredis_cluster_pipeline_new(cl);
    assert_non_null(p);
    want *w = calloc(PN, sizeof *w);
    assert_non_null(w);
    queue_300(p, w);
    res x = {0};
    g_in_call = 1;
    assert_int_equal(aredis_cluster_pipeline_exec(p, on_res, &x), AREDIS_ERR_OK);
    g_in_call = 0;
    assert_int_equal(x.calls, 0); /* never inside the call */
    assert_int_equal(aredis_cluster_pipeline_size(p), 0);
    res_wait(&x, "pipeline exec");
    if (x.code != AREDIS_ERR_OK) fail_msg("exec failed: %s: %s", aredis_err_name(x.code), x.detail);
    check_array(x.r, w, PN);
    /* One write per node for the whole exec. */
    for (int j = 0; j < 3; j++) {
        aredis_client_get_stats(prim[j], &after[j]);
        if (after[j].write_calls - before[j].write_calls != 1)
            fail_msg("primary %d: %llu write calls for one exec (want 1)", j,
                     (unsigned long long)(after[j].write_calls - before[j].write_calls));
    }

    /* Reused: a CROSSSLOT command refused when queued, the others kept. */
    assert_int_equal(aredis_cluster_pipeline_command(p, "GET pl:k3"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_pipeline_command(p, "MGET {a}x {b}y"), AREDIS_ERR_CROSSSLOT);
    assert_non_null(strstr(aredis_call_error()->detail, "CROSSSLOT"));
    assert_int_equal(aredis_cluster_pipeline_size(p), 1);
    assert_int_equal(aredis_cluster_pipeline_command(p, "MSET {pt}a 1 {pt}b 2"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_pipeline_command(p, "MGET {pt}a {pt}b"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_pipeline_command(p, "SUBSCRIBE ch"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis_cluster_pipeline_size(p), 3);
    /* The future form. */
    aredis_future *f = fwait(aredis_cluster_pipeline_exec_future(p));
    const aredis_reply *r = fok(f, "pipeline exec future");
    want w2[2] = {w_str("v3"), w_status("OK")};
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    check_reply(r->element[0], &w2[0], 0);
    check_reply(r->element[1], &w2[1], 1);
    assert_int_equal(r->element[2]->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->element[2]->elements, 2);
    assert_string_equal(r->element[2]->element[0]->str, "1");
    assert_string_equal(r->element[2]->element[1]->str, "2");
    aredis_future_release(f);

    /* Empty: refused, the callback never runs; the future already failed. */
    assert_int_equal(aredis_cluster_pipeline_size(p), 0);
    res y = {0};
    assert_int_equal(aredis_cluster_pipeline_exec(p, on_res, &y), AREDIS_ERR_INVALID);
    f = aredis_cluster_pipeline_exec_future(p);
    assert_non_null(f);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);

    /* The first exec's callback ran once only (a round trip later). */
    f = CL(cl, "PING");
    aredis_future_release(f);
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.inside, 0);
    assert_int_equal(y.calls, 0);
    res_clear(&x);
    free(w);
    aredis_cluster_pipeline_free(p);
    aredis_cluster_free(cl);
}

/* ---- 2. A pipeline across a slot migration ---------------------------------------- */

static void test_pipeline_across_migration(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(0);
    warm_up(cl);
    int slot = (int)aredis_cluster_keyslot("{pmig}", 6);
    assert_int_equal(slot, ts_cluster_keyslot(g_tc, "{pmig}"));
    int from = ts_cluster_node_for_slot(g_tc, slot);
    int to = other_primary(from);
    put_keys(cl, "{pmig}:k", 50);
    put_keys(cl, "pm:o", 50);
    aredis_cluster_pipeline *p = aredis_cluster_pipeline_new(cl);
    want w[150];
    for (int i = 0; i < 50; i++) {
        char v[32];
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(aredis_cluster_pipeline_command(p, "GET {pmig}:k%d", i), AREDIS_ERR_OK);
        w[3 * i] = w_str(v);
        assert_int_equal(aredis_cluster_pipeline_command(p, "SET {pmig}:n%d w%d", i, i),
                         AREDIS_ERR_OK);
        w[3 * i + 1] = w_status("OK");
        assert_int_equal(aredis_cluster_pipeline_command(p, "GET pm:o%d", i), AREDIS_ERR_OK);
        w[3 * i + 2] = w_str(v);
    }
    aredis_cluster_stats st0, st1;
    aredis_cluster_get_stats(cl, &st0);
    ts_cluster_migrate_slot(g_tc, slot, to);
    res x = {0};
    assert_int_equal(aredis_cluster_pipeline_exec(p, on_res, &x), AREDIS_ERR_OK);
    res_wait(&x, "pipeline exec");
    if (x.code != AREDIS_ERR_OK) fail_msg("exec failed: %s: %s", aredis_err_name(x.code), x.detail);
    check_array(x.r, w, 150);
    aredis_cluster_get_stats(cl, &st1);
    assert_true(st1.moved > st0.moved);
    assert_node_get(to, "{pmig}:n7", "w7");
    assert_node_get(to, "{pmig}:k7", "v7");
    assert_int_equal(x.calls, 1);
    res_clear(&x);
    aredis_cluster_pipeline_free(p);
    aredis_cluster_free(cl);
}

/* ---- 3. Transactions ---------------------------------------------------------------- */

static void test_transactions(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(1);
    warm_up(cl);
    aredis_cluster_tx *tx = aredis_cluster_tx_new(cl);
    assert_non_null(tx);
    assert_int_equal(aredis_cluster_tx_queue(tx, "DEL {order:7}:a {order:7}:n {order:7}:l"),
                     AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "SET {order:7}:a hello"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "INCR {order:7}:n"), AREDIS_ERR_OK);
    /* Another slot: refused, the transaction still usable. */
    assert_int_equal(aredis_cluster_tx_queue(tx, "SET {other}:x 1"), AREDIS_ERR_CROSSSLOT);
    assert_non_null(strstr(aredis_call_error()->detail, "CROSSSLOT"));
    assert_int_equal(aredis_cluster_tx_queue(tx, "MGET {order:7}:a {other}:x"),
                     AREDIS_ERR_CROSSSLOT);
    /* Session commands: refused. */
    static const char *const session[] = {"MULTI", "EXEC", "DISCARD", "WATCH {order:7}:a",
                                          "SELECT 0"};
    for (size_t i = 0; i < sizeof session / sizeof *session; i++)
        if (aredis_cluster_tx_queue(tx, session[i]) != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s was not refused in a cluster transaction", session[i]);
    assert_int_equal(aredis_cluster_tx_size(tx), 3);
    const char *argv[] = {"INCRBY", "{order:7}:n", "41"};
    assert_int_equal(aredis_cluster_tx_queue_argv(tx, 3, argv, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "GET {order:7}:a"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "RPUSH {order:7}:l x y"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "PING"), AREDIS_ERR_OK); /* keyless */
    assert_int_equal(aredis_cluster_tx_size(tx), 7);
    res x = {0};
    g_in_call = 1;
    assert_int_equal(aredis_cluster_tx_exec(tx, on_res, &x), AREDIS_ERR_OK);
    g_in_call = 0;
    assert_int_equal(x.calls, 0);
    assert_int_equal(aredis_cluster_tx_size(tx), 0);
    res_wait(&x, "tx exec");
    if (x.code != AREDIS_ERR_OK) fail_msg("exec failed: %s: %s", aredis_err_name(x.code), x.detail);
    want w[7] = {w_int(0),       w_status("OK"), w_int(1),        w_int(42),
                 w_str("hello"), w_int(2),       w_status("PONG")};
    w[0].any_integer = 1;
    check_array(x.r, w, 7);
    res_clear(&x);
    int port = ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, "{order:7}:n"));
    assert_node_get(port, "{order:7}:n", "42");

    /* Reused, the future form. */
    assert_int_equal(aredis_cluster_tx_queue(tx, "GET {order:7}:a"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "LRANGE {order:7}:l 0 -1"), AREDIS_ERR_OK);
    aredis_future *f = fwait(aredis_cluster_tx_exec_future(tx));
    const aredis_reply *r = fok(f, "tx exec future");
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->str, "hello");
    assert_int_equal(r->element[1]->elements, 2);
    assert_string_equal(r->element[1]->element[0]->str, "x");
    assert_string_equal(r->element[1]->element[1]->str, "y");
    aredis_future_release(f);

    /* Only keyless commands: fine too. */
    assert_int_equal(aredis_cluster_tx_queue(tx, "PING"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "ECHO hi"), AREDIS_ERR_OK);
    f = fwait(aredis_cluster_tx_exec_future(tx));
    r = fok(f, "keyless tx");
    want wk[2] = {w_status("PONG"), w_str("hi")};
    check_array(r, wk, 2);
    aredis_future_release(f);

    /* EXECABORT: a queued command the server refuses (wrong arity); none of
     * it runs. */
    assert_int_equal(aredis_cluster_tx_queue(tx, "SET {order:7}:y 1"), AREDIS_ERR_OK);
    const char *bad[] = {"SET", "{order:7}:x"};
    assert_int_equal(aredis_cluster_tx_queue_argv(tx, 2, bad, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_exec(tx, on_res, &x), AREDIS_ERR_OK);
    res_wait(&x, "aborted tx");
    assert_int_equal(x.code, AREDIS_ERR_SERVER);
    assert_string_equal(x.prefix, "EXECABORT");
    res_clear(&x);
    assert_node_get(port, "{order:7}:y", "(nil)");

    /* Empty: refused. */
    assert_int_equal(aredis_cluster_tx_exec(tx, on_res, &x), AREDIS_ERR_INVALID);
    f = aredis_cluster_tx_exec_future(tx);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);
    assert_int_equal(x.calls, 0);

    /* The slot migrated before exec: the whole transaction runs once, on
     * the new owner. */
    f = CL(cl, "SET {mig7}:c 10");
    fok(f, "SET");
    aredis_future_release(f);
    int slot = ts_cluster_keyslot(g_tc, "{mig7}:c");
    int from = ts_cluster_node_for_slot(g_tc, slot), to = other_primary(from);
    assert_int_equal(aredis_cluster_tx_queue(tx, "INCR {mig7}:c"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "INCR {mig7}:c"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "GET {mig7}:c"), AREDIS_ERR_OK);
    aredis_cluster_stats st0, st1;
    aredis_cluster_get_stats(cl, &st0);
    ts_cluster_migrate_slot(g_tc, slot, to);
    assert_int_equal(aredis_cluster_tx_exec(tx, on_res, &x), AREDIS_ERR_OK);
    res_wait(&x, "tx after migration");
    if (x.code != AREDIS_ERR_OK)
        fail_msg("migrated tx failed: %s: %s %s", aredis_err_name(x.code), x.prefix, x.detail);
    want wm[3] = {w_int(11), w_int(12), w_str("12")};
    check_array(x.r, wm, 3);
    res_clear(&x);
    aredis_cluster_get_stats(cl, &st1);
    assert_true(st1.moved > st0.moved);
    assert_node_get(to, "{mig7}:c", "12");
    aredis_cluster_tx_free(tx);
    aredis_cluster_free(cl);
}

/* ---- 4. command_all --------------------------------------------------------------- */

static void test_command_all(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(2);
    warm_up(cl);
    res x = {0};
    g_in_call = 1;
    assert_int_equal(aredis_cluster_command_all(cl, on_res, &x, "FLUSHALL"), AREDIS_ERR_OK);
    g_in_call = 0;
    assert_int_equal(x.calls, 0);
    res_wait(&x, "FLUSHALL");
    assert_int_equal(x.code, AREDIS_ERR_OK);
    want ok3[3] = {w_status("OK"), w_status("OK"), w_status("OK")};
    check_array(x.r, ok3, 3);
    res_clear(&x);
    put_keys(cl, "ca:", 500);
    assert_int_equal(aredis_cluster_command_all(cl, on_res, &x, "DBSIZE"), AREDIS_ERR_OK);
    res_wait(&x, "DBSIZE");
    assert_int_equal(x.code, AREDIS_ERR_OK);
    assert_int_equal(x.r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(x.r->elements, 3);
    /* In the order aredis_cluster_nodes() gives the primaries. */
    aredis_client *prim[3];
    assert_int_equal(aredis_cluster_nodes(cl, prim, 3, 0), 3);
    long long sum = 0;
    for (size_t i = 0; i < 3; i++) {
        const aredis_reply *e = x.r->element[i];
        assert_int_equal(e->type, AREDIS_REPLY_INTEGER);
        assert_true(e->integer > 0);
        sum += e->integer;
        aredis_reply *n = ts_node_cmd(client_port(prim[i]), "DBSIZE", (char *)NULL);
        assert_non_null(n);
        assert_int_equal(n->integer, e->integer);
        aredis_reply_free(n);
    }
    assert_int_equal(sum, 500);
    assert_int_equal(x.calls, 1);
    res_clear(&x);
    /* Commands with keys (or session commands): refused, no callback. */
    assert_int_equal(aredis_cluster_command_all(cl, on_res, &x, "GET foo"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cluster_command_all(cl, on_res, &x, "MSET a 1 b 2"),
                     AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cluster_command_all(cl, on_res, &x, "MULTI"), AREDIS_ERR_INVALID);
    aredis_future *f = CL(cl, "PING");
    aredis_future_release(f);
    assert_int_equal(x.calls, 0);
    aredis_cluster_free(cl);
}

/* ---- 5. SCAN over the cluster -------------------------------------------------------- */

#define SN 1000
#define HN 20

typedef struct scan_acc {
    int calls;
    int errors;
    aredis_err code;
    const char *prefix;
    int *seen;
    int n;
    size_t total, foreign, batches;
    int target;
} scan_acc;

static void on_scan(aredis_cluster_scan *s, const aredis_reply *batch, const aredis_error *err,
                    void *data) {
    (void)s;
    scan_acc *a = data;
    a->calls++;
    if (err) {
        a->errors++;
        a->code = err->code;
        return;
    }
    a->batches++;
    size_t pl = strlen(a->prefix);
    for (size_t i = 0; i < batch->elements; i++) {
        const aredis_reply *k = batch->element[i];
        a->total++;
        char *end = NULL;
        long idx = -1;
        if (k->str && k->len > pl && strncmp(k->str, a->prefix, pl) == 0)
            idx = strtol(k->str + pl, &end, 10);
        if (idx >= 0 && idx < a->n && end && *end == '\0')
            a->seen[idx]++;
        else
            a->foreign++;
    }
}

static int scan_reached(const void *arg) {
    const scan_acc *a = arg;
    return a->calls >= a->target;
}

/* Wait until the scan's callback has run `target` times in all. */
static void scan_wait(scan_acc *a, int target) {
    a->target = target;
    if (!ts_wait_until(g_loop, scan_reached, a, WAIT_MS)) fail_msg("scan: no batch in time");
    if (a->errors) fail_msg("scan batch failed: %s", aredis_err_name(a->code));
}

/* One batch, waited for. */
static void scan_step(aredis_cluster_scan *s, scan_acc *a) {
    int before = a->calls;
    assert_int_equal(aredis_cluster_scan_next(s, on_scan, a), AREDIS_ERR_OK);
    scan_wait(a, before + 1);
}

/* A whole scan; while a batch is on its way (the first, and one later), a
 * second next() is refused. */
static void scan_all(aredis_cluster *cl, const aredis_scan_opts *o, scan_acc *a) {
    aredis_cluster_scan *s = aredis_cluster_scan_new(cl, o);
    if (!s) fail_msg("scan_new: %s", aredis_call_error()->detail);
    assert_false(aredis_cluster_scan_done(s));
    int guard = 0;
    while (!aredis_cluster_scan_done(s)) {
        int before = a->calls;
        assert_int_equal(aredis_cluster_scan_next(s, on_scan, a), AREDIS_ERR_OK);
        if (guard == 0 || guard == 3)
            assert_int_equal(aredis_cluster_scan_next(s, on_scan, a), AREDIS_ERR_INVALID);
        scan_wait(a, before + 1);
        if (++guard > 5000) fail_msg("scan does not end");
    }
    /* Done: refused. */
    assert_int_equal(aredis_cluster_scan_next(s, on_scan, a), AREDIS_ERR_INVALID);
    aredis_cluster_scan_free(s);
}

static void test_scan(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(0);
    warm_up(cl);
    put_keys(cl, "scs:", SN);
    /* Every key exactly once. */
    scan_acc a = {0};
    a.prefix = "scs:";
    a.n = SN;
    a.seen = calloc(SN, sizeof *a.seen);
    aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
    o.match = "scs:*";
    o.count = 100;
    scan_all(cl, &o, &a);
    int once = 0;
    for (int i = 0; i < SN; i++) {
        if (a.seen[i] != 1) fail_msg("scs:%d seen %d times", i, a.seen[i]);
        once++;
    }
    assert_int_equal(once, SN);
    assert_int_equal(a.total, SN);
    assert_int_equal(a.foreign, 0);
    free(a.seen);

    /* A TYPE filter: only the hashes. */
    tally t = {0};
    op ops[HN];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < HN; i++) {
        ops[i].t = &t;
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "HSET sch:%d f v", i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, HN, WAIT_MS));
    assert_int_equal(t.ok, HN);
    scan_acc h = {0};
    h.prefix = "sch:";
    h.n = HN;
    h.seen = calloc(HN, sizeof *h.seen);
    o.match = "sc*";
    o.type = "hash";
    scan_all(cl, &o, &h);
    for (int i = 0; i < HN; i++)
        if (h.seen[i] != 1) fail_msg("sch:%d seen %d times", i, h.seen[i]);
    assert_int_equal(h.total, HN);
    assert_int_equal(h.foreign, 0);
    free(h.seen);

    /* Invalid options. */
    aredis_scan_opts bad = AREDIS_SCAN_OPTS_INIT;
    bad.kind = AREDIS_SCAN_HASH;
    bad.key = "sch:1";
    assert_null(aredis_cluster_scan_new(cl, &bad));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    bad = (aredis_scan_opts)AREDIS_SCAN_OPTS_INIT;
    bad.cursor = "17";
    assert_null(aredis_cluster_scan_new(cl, &bad));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_null(aredis_cluster_scan_new(NULL, NULL));

    /* Freed in the middle, between batches. */
    scan_acc m = {0};
    m.prefix = "scs:";
    m.n = SN;
    m.seen = calloc(SN, sizeof *m.seen);
    aredis_scan_opts mo = AREDIS_SCAN_OPTS_INIT;
    mo.match = "scs:*";
    mo.count = 50;
    aredis_cluster_scan *s = aredis_cluster_scan_new(cl, &mo);
    assert_non_null(s);
    scan_step(s, &m);
    scan_step(s, &m);
    assert_false(aredis_cluster_scan_done(s));
    aredis_cluster_scan_free(s);
    /* Freed with a batch (not the first) in flight: its callback once,
     * CANCELLED, and nothing after. */
    s = aredis_cluster_scan_new(cl, &mo);
    assert_non_null(s);
    scan_step(s, &m);
    int before = m.calls;
    assert_int_equal(aredis_cluster_scan_next(s, on_scan, &m), AREDIS_ERR_OK);
    aredis_cluster_scan_free(s);
    assert_true(m.calls <= before + 1);
    aredis_future *f = CL(cl, "PING");
    aredis_future_release(f);
    assert_int_equal(m.calls, before + 1);
    assert_int_equal(m.code, AREDIS_ERR_CANCELLED);
    free(m.seen);
    aredis_cluster_free(cl);
}

/* ---- 6. Futures, refusals, options ------------------------------------------------- */

static void test_futures_and_refusals(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(0);
    aredis_future *f = CL(cl, "SET %s %s", "fu:1", "ann");
    const aredis_reply *r = fok(f, "SET");
    assert_string_equal(r->str, "OK");
    aredis_future_release(f);
    f = CL(cl, "GET %s", "fu:1");
    assert_string_equal(fok(f, "GET")->str, "ann");
    aredis_future_release(f);
    const char *argv[] = {"GET", "fu:1"};
    f = fwait(aredis_cluster_future_argv(cl, 2, argv, NULL));
    assert_string_equal(fok(f, "GET argv")->str, "ann");
    aredis_future_release(f);
    /* Binary-safe argv with lengths. */
    const char *argv2[] = {"SET", "fu:bin", "a\0b"};
    const size_t lens2[] = {3, 6, 3};
    f = fwait(aredis_cluster_future_argv(cl, 3, argv2, lens2));
    fok(f, "SET binary");
    aredis_future_release(f);
    f = CL(cl, "GET fu:bin");
    r = fok(f, "GET binary");
    assert_int_equal(r->len, 3);
    assert_memory_equal(r->str, "a\0b", 3);
    aredis_future_release(f);
    /* A server error: SERVER, the reply kept. */
    f = CL(cl, "INCR fu:1");
    assert_non_null(aredis_future_error(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_SERVER);
    aredis_future_release(f);
    /* Each command runs once: 100 INCRs of one counter answer 1..100. */
    tally t = {0};
    op ops[100];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < 100; i++) {
        ops[i].t = &t;
        snprintf(ops[i].want, sizeof ops[i].want, "%d", i + 1);
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "INCR fu:n"), AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, 100, WAIT_MS));
    assert_int_equal(t.errors, 0);
    f = CL(cl, "GET fu:n");
    const char *final = fok(f, "GET fu:n")->str;
    if (t.wrong || strcmp(final, "100") != 0)
        fail_msg("100 INCRs: %zu answered out of sequence, the counter is %s (not 100): "
                 "commands ran twice",
                 t.wrong, final);
    aredis_future_release(f);
    /* CROSSSLOT: a future already failed. */
    f = aredis_cluster_future(cl, "MGET %s %s", "a", "b");
    assert_non_null(f);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CROSSSLOT);
    aredis_future_release(f);
    f = aredis_cluster_future(cl, "SUBSCRIBE ch");
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_UNSUPPORTED);
    aredis_future_release(f);
    /* Refused through the command API. */
    static const char *const refused[] = {"SSUBSCRIBE ch", "SUBSCRIBE ch", "MULTI",
                                          "EXEC",          "WATCH k",      "SELECT 1"};
    res x = {0};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (aredis_cluster_command(cl, on_res, &x, refused[i]) != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s was not refused", refused[i]);
    f = CL(cl, "PING");
    aredis_future_release(f);
    assert_int_equal(x.calls, 0);
    aredis_cluster_free(cl);
}

static void test_options(void **state) {
    (void)state;
    char live[32], dead[32], v6[48];
    int dport = ts_dead_port();
    snprintf(live, sizeof live, "127.0.0.1:%d", ts_cluster_port(g_tc, 0));
    snprintf(dead, sizeof dead, "127.0.0.1:%d", dport);
    snprintf(v6, sizeof v6, "[::1]:%d", dport);
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    /* No seeds. */
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    const char *one[] = {live};
    o.seeds = one;
    o.nseeds = 0;
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    /* A NULL seed; malformed seeds. */
    const char *with_null[] = {live, NULL};
    o.seeds = with_null;
    o.nseeds = 2;
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    static const char *const malformed[] = {"nohostport", "host:0",    "host:", ":7000",
                                            "host:70000", "[::1:7000", "h:12x"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        const char *s[] = {malformed[i]};
        o.seeds = s;
        o.nseeds = 1;
        aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
        if (cl) {
            aredis_cluster_free(cl);
            fail_msg("seed \"%s\" accepted", malformed[i]);
        }
        assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    }
    /* db, prefix, read_from. */
    o.seeds = one;
    o.nseeds = 1;
    o.node.db = 1;
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    o.node.db = 0;
    o.node.prefix = "app:";
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    o.node.prefix = NULL;
    o.read_from = (aredis_read_from)7;
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    o.read_from = AREDIS_READ_PRIMARY;
    assert_null(aredis_cluster_new(NULL, &o));
    assert_null(aredis_cluster_new(g_loop, NULL));

    /* An IPv6 seed parses; nothing listens there: commands fail with why
     * the topology could not be read. */
    const char *s6[] = {v6};
    o.seeds = s6;
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    if (!cl) fail_msg("seed %s refused: %s", v6, aredis_call_error()->detail);
    res x = {0};
    assert_int_equal(aredis_cluster_command(cl, on_res, &x, "GET k"), AREDIS_ERR_OK);
    res_wait(&x, "GET via a dead IPv6 seed");
    assert_int_not_equal(x.code, AREDIS_ERR_OK);
    if (!strstr(x.detail, "topology")) fail_msg("error detail: %s", x.detail);
    res_clear(&x);
    aredis_cluster_free(cl);

    /* The first seed dead, the second alive: commands issued at once
     * succeed (the header: they fail only if no seed can answer). */
    const char *two[] = {dead, live};
    o.seeds = two;
    o.nseeds = 2;
    cl = aredis_cluster_new(g_loop, &o);
    assert_non_null(cl);
    tally t = {0};
    op ops[20];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < 20; i++) {
        ops[i].t = &t;
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "SET seed:%d x", i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, 20, WAIT_MS));
    if (t.errors) fail_msg("%zu of 20 failed with a dead first seed: %s", t.errors, t.first_error);
    aredis_future *f = CL(cl, "GET seed:3");
    assert_string_equal(fok(f, "GET")->str, "x");
    aredis_future_release(f);
    aredis_cluster_free(cl);
}

/* ---- 7. Replica reads ------------------------------------------------------------------ */

#define RN 300

static void replica_reads(int seed_node) {
    /* Replicas the cluster calls healthy (Redis 7.0 may call them
     * "loading" for a while: they are skipped then, rightly). */
    if (!ts_cluster_wait_shards_online(g_tc, 20000))
        fail_msg("the cluster does not report every replica online");
    aredis_cluster *cl = cluster_ex(seed_node, AREDIS_READ_REPLICA, AREDIS_CLUSTER_NO_PERIODIC);
    warm_up(cl);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "rr%d:", seed_node);
    put_keys(cl, prefix, RN);
    /* Replicated: WAIT on the connections that wrote. */
    res x = {0};
    assert_int_equal(aredis_cluster_command_all(cl, on_res, &x, "WAIT 1 5000"), AREDIS_ERR_OK);
    res_wait(&x, "WAIT");
    assert_int_equal(x.code, AREDIS_ERR_OK);
    for (size_t i = 0; i < x.r->elements; i++)
        assert_int_equal(x.r->element[i]->integer, 1);
    res_clear(&x);

    aredis_client *nodes[8];
    aredis_client_stats pst[3], pst1[3];
    assert_int_equal(aredis_cluster_nodes(cl, nodes, 8, 0), 3);
    for (int j = 0; j < 3; j++)
        aredis_client_get_stats(nodes[j], &pst[j]);
    aredis_cluster_stats st0, st1, st2;
    aredis_cluster_get_stats(cl, &st0);
    tally t = {0};
    op *ops = calloc(RN, sizeof *ops);
    assert_non_null(ops);
    for (int i = 0; i < RN; i++) {
        ops[i].t = &t;
        snprintf(ops[i].want, sizeof ops[i].want, "v%d", i);
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "GET %s%d", prefix, i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, RN, WAIT_MS));
    if (t.errors) fail_msg("%zu GETs failed, the first: %s", t.errors, t.first_error);
    assert_int_equal(t.wrong, 0);
    aredis_cluster_get_stats(cl, &st1);
    /* Served by the replicas: no MOVED, the primaries asked nothing. */
    size_t n = aredis_cluster_nodes(cl, nodes, 8, 1);
    uint64_t served = 0;
    for (size_t j = 3; j < n && j < 8; j++) {
        aredis_client_stats s;
        aredis_client_get_stats(nodes[j], &s);
        served += s.commands;
    }
    for (int j = 0; j < 3; j++)
        aredis_client_get_stats(nodes[j], &pst1[j]);
    uint64_t on_primaries = 0;
    for (int j = 0; j < 3; j++)
        on_primaries += pst1[j].commands - pst[j].commands;
    if (n != 6 || st1.moved != st0.moved || served < RN || on_primaries != 0)
        fail_msg("seeded from node %d: %zu node connections (want 3 primaries + 3 replicas), "
                 "replica connections served %llu commands for %d GETs, the primaries %llu, "
                 "MOVED followed %llu",
                 seed_node, n, (unsigned long long)served, RN, (unsigned long long)on_primaries,
                 (unsigned long long)(st1.moved - st0.moved));
    /* A write goes to the primary. */
    aredis_future *f = CL(cl, "SET %s%d w", prefix, 7);
    fok(f, "SET");
    aredis_future_release(f);
    aredis_cluster_get_stats(cl, &st2);
    assert_int_equal(st2.moved, st1.moved);
    char k[32];
    snprintf(k, sizeof k, "%s7", prefix);
    assert_node_get(ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, k)), k, "w");
    free(ops);
    aredis_cluster_free(cl);
}

static void test_replica_reads(void **state) {
    (void)state;
    replica_reads(a_node(1));
}

/* The same, seeded from a replica: the seed's connection serves reads
 * too, so it must be a READONLY one. */
static void test_replica_reads_seeded_from_replica(void **state) {
    (void)state;
    replica_reads(a_node(0));
}

/* ---- 8. Nodes, stats, keyslot ----------------------------------------------------------- */

static void test_nodes_and_keyslot(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(0);
    aredis_client *out[8] = {0};
    /* Before the topology is read: nothing known. */
    assert_int_equal(aredis_cluster_nodes(cl, out, 8, 0), 0);
    assert_null(aredis_cluster_node_for_key(cl, "user:1", 6));
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.slots_known, 0);
    aredis_future *f = CL(cl, "PING");
    fok(f, "PING");
    aredis_future_release(f);
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.slots_known, TS_CLUSTER_SLOTS);
    assert_true(st.refreshes >= 1);
    assert_int_equal(aredis_cluster_nodes(cl, out, 8, 0), 3);
    assert_true(out[0] && out[1] && out[2] && out[0] != out[1] && out[1] != out[2] &&
                out[0] != out[2]);
    assert_null(out[3]);
    /* Primaries in slot order. */
    assert_int_equal(client_port(out[0]), ts_cluster_node_for_slot(g_tc, 0));
    assert_int_equal(client_port(out[2]), ts_cluster_node_for_slot(g_tc, TS_CLUSTER_SLOTS - 1));
    /* max smaller than the count: the count, max of them written. */
    aredis_client *two[3] = {NULL, NULL, NULL};
    assert_int_equal(aredis_cluster_nodes(cl, two, 2, 0), 3);
    assert_ptr_equal(two[0], out[0]);
    assert_ptr_equal(two[1], out[1]);
    assert_null(two[2]);
    assert_int_equal(aredis_cluster_nodes(NULL, two, 2, 0), 0);
    /* node_for_key: the slot's primary, as the server says. */
    int ports[3];
    for (int j = 0; j < 3; j++)
        ports[j] = client_port(out[j]);
    int hit[3] = {0};
    for (int i = 0; i < 30; i++) {
        char k[32];
        snprintf(k, sizeof k, "nk:%d", i);
        aredis_client *c = aredis_cluster_node_for_key(cl, k, strlen(k));
        assert_non_null(c);
        int owner = ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, k));
        int j = c == out[0] ? 0 : c == out[1] ? 1 : c == out[2] ? 2 : -1;
        assert_true(j >= 0);
        assert_int_equal(ports[j], owner);
        hit[j]++;
    }
    assert_true(hit[0] && hit[1] && hit[2]);
    /* A command through that client lands on the owner. */
    aredis_client *c = aredis_cluster_node_for_key(cl, "nk:5", 4);
    f = fwait(aredis_future_command(c, "SET nk:5 direct"));
    fok(f, "SET on the node");
    aredis_future_release(f);
    assert_node_get(ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, "nk:5")), "nk:5",
                    "direct");
    /* keyslot: as the server computes it, hash tags included. */
    static const char *const keys[] = {"{user1}.a", "user1",   "foo", "{}.a",   "a{b",
                                       "{a}{b}",    "x{a}y{b", "",    "{{a}}b", "123456789"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        unsigned mine = aredis_cluster_keyslot(keys[i], strlen(keys[i]));
        int theirs = ts_cluster_keyslot(g_tc, keys[i]);
        if ((int)mine != theirs) fail_msg("keyslot(\"%s\"): %u, server %d", keys[i], mine, theirs);
    }
    assert_int_equal(aredis_cluster_keyslot("{user1}.a", 9), aredis_cluster_keyslot("user1", 5));
    assert_int_equal(aredis_cluster_keyslot("123456789", 9), 12739); /* CRC16 check value */
    aredis_cluster_free(cl);
}

/* ---- 9. Freed with everything in flight -------------------------------------------------- */

static void test_free_with_everything_in_flight(void **state) {
    (void)state;
    /* Nothing answered yet (the loop has not run since): all CANCELLED. */
    aredis_cluster *cl = cluster_on(0);
    warm_up(cl);
    aredis_cluster_pipeline *p = aredis_cluster_pipeline_new(cl);
    for (int i = 0; i < 50; i++)
        assert_int_equal(aredis_cluster_pipeline_command(p, "SET ff:%d x", i), AREDIS_ERR_OK);
    res px = {0}, tx_res = {0};
    assert_int_equal(aredis_cluster_pipeline_exec(p, on_res, &px), AREDIS_ERR_OK);
    aredis_cluster_tx *tx = aredis_cluster_tx_new(cl);
    assert_int_equal(aredis_cluster_tx_queue(tx, "SET {ff}:a 1"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "INCR {ff}:b"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_exec(tx, on_res, &tx_res), AREDIS_ERR_OK);
    tally t = {0};
    op ops[100];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < 100; i++) {
        ops[i].t = &t;
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "GET ff:%d", i), AREDIS_ERR_OK);
    }
    aredis_cluster_free(cl);
    assert_int_equal(px.calls, 1);
    assert_int_equal(px.code, AREDIS_ERR_CANCELLED);
    assert_int_equal(tx_res.calls, 1);
    assert_int_equal(tx_res.code, AREDIS_ERR_CANCELLED);
    assert_int_equal(t.done, 100);
    assert_int_equal(t.cancelled, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ops[i].calls, 1);
    /* The header: the client argument is NULL when no node answered
     * (the cluster was freed); checked last, below. */
    size_t with_client = t.cancelled_with_client + (size_t)px.cancelled_with_client +
                         (size_t)tx_res.cancelled_with_client;
    res_clear(&px);
    res_clear(&tx_res);
    aredis_cluster_pipeline_free(p); /* after the cluster: allowed */
    aredis_cluster_tx_free(tx);

    /* Part of it answered: each callback once, a reply or CANCELLED. */
    cl = cluster_on(0);
    warm_up(cl);
    p = aredis_cluster_pipeline_new(cl);
    for (int i = 0; i < 50; i++)
        assert_int_equal(aredis_cluster_pipeline_command(p, "SET ff:%d y", i), AREDIS_ERR_OK);
    tx = aredis_cluster_tx_new(cl);
    assert_int_equal(aredis_cluster_tx_queue(tx, "INCR {ff}:b"), AREDIS_ERR_OK);
    tally t2 = {0};
    op ops2[300];
    memset(ops2, 0, sizeof ops2);
    for (int i = 0; i < 300; i++) {
        ops2[i].t = &t2;
        if (i == 100) {
            assert_int_equal(aredis_cluster_pipeline_exec(p, on_res, &px), AREDIS_ERR_OK);
            assert_int_equal(aredis_cluster_tx_exec(tx, on_res, &tx_res), AREDIS_ERR_OK);
        }
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops2[i], "SET ff:%d z", i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t2.done, 1, WAIT_MS));
    aredis_cluster_free(cl);
    assert_int_equal(t2.done, 300);
    assert_int_equal(t2.ok + t2.cancelled, 300);
    for (int i = 0; i < 300; i++)
        assert_int_equal(ops2[i].calls, 1);
    assert_int_equal(px.calls, 1);
    assert_true(px.code == AREDIS_ERR_OK || px.code == AREDIS_ERR_CANCELLED);
    assert_int_equal(tx_res.calls, 1);
    assert_true(tx_res.code == AREDIS_ERR_OK || tx_res.code == AREDIS_ERR_CANCELLED);
    res_clear(&px);
    res_clear(&tx_res);
    aredis_cluster_pipeline_free(p);
    aredis_cluster_tx_free(tx);

    /* Objects still holding commands, freed after their cluster. */
    cl = cluster_on(0);
    warm_up(cl);
    p = aredis_cluster_pipeline_new(cl);
    aredis_cluster_pipeline *empty = aredis_cluster_pipeline_new(cl);
    for (int i = 0; i < 10; i++)
        assert_int_equal(aredis_cluster_pipeline_command(p, "GET ff:%d", i), AREDIS_ERR_OK);
    tx = aredis_cluster_tx_new(cl);
    assert_int_equal(aredis_cluster_tx_queue(tx, "INCR {ff}:b"), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_tx_queue(tx, "GET {ff}:b"), AREDIS_ERR_OK);
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.match = "ff:*";
    so.count = 5;
    aredis_cluster_scan *s = aredis_cluster_scan_new(cl, &so);
    scan_acc a = {0};
    a.prefix = "ff:";
    a.n = 300;
    a.seen = calloc(300, sizeof *a.seen);
    scan_step(s, &a);
    aredis_cluster_free(cl);
    assert_int_equal(aredis_cluster_pipeline_size(p), 10);
    assert_int_equal(aredis_cluster_tx_size(tx), 2);
    aredis_cluster_pipeline_free(p);
    aredis_cluster_pipeline_free(empty);
    aredis_cluster_tx_free(tx);
    aredis_cluster_scan_free(s);
    free(a.seen);
    if (with_client)
        fail_msg("%zu of 102 callbacks cancelled by aredis_cluster_free got a node client, not "
                 "NULL",
                 with_client);
}

/* ---- 10. A scan freed while its first batch is on its way ---------------------------------- */

/*
 * The first next() of a cluster scan asks the cluster for a PING (to wait
 * for the topology) and takes the addresses in its callback: freeing the
 * scan then (allowed: aredis_cluster_scan_free at any time) must not leave
 * that callback pointing at the freed scan. Last in the file: a
 * use-after-free here would take the process down under ASan.
 */
static void test_scan_freed_before_first_batch(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(0);
    warm_up(cl);
    scan_acc a = {0};
    a.prefix = "scs:";
    a.n = 1;
    a.seen = calloc(1, sizeof *a.seen);
    aredis_scan_opts o = AREDIS_SCAN_OPTS_INIT;
    aredis_cluster_scan *s = aredis_cluster_scan_new(cl, &o);
    assert_non_null(s);
    assert_int_equal(aredis_cluster_scan_next(s, on_scan, &a), AREDIS_ERR_OK);
    aredis_cluster_scan_free(s);
    int before = a.calls;
    /* The PING's reply arrives (and more after it). */
    aredis_future *f = CL(cl, "PING");
    fok(f, "PING");
    aredis_future_release(f);
    f = CL(cl, "PING");
    aredis_future_release(f);
    assert_true(a.calls <= 1);
    assert_true(a.calls == before || a.code == AREDIS_ERR_CANCELLED);
    free(a.seen);
    aredis_cluster_free(cl);
}

/* ---- Per-node pools: connections of one's own ---------------------------------- */

typedef struct acq {
    int calls;
    aredis_client *c;
    aredis_err code;
} acq;

static void on_acquired(aredis_pool *pool, aredis_client *c, const aredis_error *err, void *data) {
    (void)pool;
    acq *a = data;
    a->calls++;
    a->c = c;
    a->code = err ? err->code : AREDIS_ERR_OK;
}

static int acq_done(const void *arg) { return ((const acq *)arg)->calls > 0; }

static aredis_client *acquire(aredis_pool *pool) {
    acq a = {0};
    assert_int_equal(aredis_pool_acquire(pool, on_acquired, &a), AREDIS_ERR_OK);
    assert_true(ts_wait_until(g_loop, acq_done, &a, WAIT_MS));
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_non_null(a.c);
    return a.c;
}

/* A key served by another primary than `key`'s. */
static void key_elsewhere(const char *key, char *out, size_t len) {
    int port = ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, key));
    for (int i = 0; i < 1000; i++) {
        snprintf(out, len, "other:%d", i);
        if (ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, out)) != port) return;
    }
    fail_msg("no key on another node");
}

/* One pool per node (the same for keys of one node, another elsewhere);
 * none before the topology names the node; a BLPOP 0 on an acquired
 * connection blocks it alone: the cluster's commands to that very node go
 * on meanwhile, and the BLPOP gets the LPUSH made through the cluster. */
static void test_node_pool_blocking(void **state) {
    (void)state;
    aredis_cluster *early = cluster_on(a_node(1));
    assert_null(aredis_cluster_pool(early, "k", 1, NULL));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_NOT_CONNECTED);
    aredis_cluster_free(early);
    aredis_cluster *cl = cluster_on(a_node(1));
    warm_up(cl);
    assert_null(aredis_cluster_pool(cl, NULL, 0, NULL));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.max_connections = 2;
    aredis_pool *p = aredis_cluster_pool(cl, "{q}:list", 8, &po);
    assert_non_null(p);
    assert_ptr_equal(aredis_cluster_pool(cl, "{q}:other", 9, NULL), p);
    char other[32];
    key_elsewhere("{q}:list", other, sizeof other);
    aredis_pool *p2 = aredis_cluster_pool(cl, other, strlen(other), NULL);
    assert_non_null(p2);
    assert_true(p2 != p);
    aredis_future_release(CL(cl, "DEL {q}:list"));
    aredis_client *c = acquire(p);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_NO_TIMEOUT;
    res blpop = {0};
    assert_int_equal(aredis_command_ex(c, &co, on_res, &blpop, "BLPOP {q}:list 0"), AREDIS_ERR_OK);
    /* The shared connection to the same node is not held by it. */
    for (int i = 0; i < 20; i++) {
        aredis_future *f = CL(cl, "SET {q}:k%d v%d", i, i);
        fok(f, "SET while a BLPOP blocks");
        aredis_future_release(f);
    }
    assert_int_equal(blpop.calls, 0);
    aredis_future *f = CL(cl, "LPUSH {q}:list hello");
    fok(f, "LPUSH");
    aredis_future_release(f);
    res_wait(&blpop, "BLPOP");
    assert_int_equal(blpop.code, AREDIS_ERR_OK);
    assert_int_equal(blpop.r->elements, 2);
    assert_string_equal(blpop.r->element[1]->str, "hello");
    res_clear(&blpop);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_cluster_free(cl);
}

/* WATCH on an acquired connection: a write through the cluster between
 * WATCH and EXEC aborts the transaction; without one it commits. */
static void test_node_pool_watch(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(a_node(1));
    warm_up(cl);
    aredis_pool *p = aredis_cluster_pool(cl, "{w}:n", 5, NULL);
    assert_non_null(p);
    for (int round = 0; round < 2; round++) {
        aredis_future *f = CL(cl, "SET {w}:n 1");
        aredis_future_release(f);
        aredis_client *c = acquire(p);
        aredis_tx *tx = aredis_tx_new(c);
        assert_non_null(tx);
        const char *keys[] = {"{w}:n"};
        f = fwait(aredis_tx_watch_future(tx, 1, keys, NULL));
        fok(f, "WATCH");
        aredis_future_release(f);
        if (round == 0) { /* someone else writes the watched key */
            f = CL(cl, "SET {w}:n 2");
            fok(f, "the other write");
            aredis_future_release(f);
        }
        assert_int_equal(aredis_tx_queue(tx, "INCR {w}:n"), AREDIS_ERR_OK);
        f = fwait(aredis_tx_exec_future(tx));
        const aredis_reply *r = fok(f, "EXEC");
        assert_int_equal(aredis_tx_aborted(r), round == 0);
        aredis_future_release(f);
        aredis_tx_free(tx);
        assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
        f = CL(cl, "GET {w}:n");
        /* aborted: the other write's 2; committed: 1 + 1 */
        assert_string_equal(fok(f, "GET")->str, "2");
        aredis_future_release(f);
    }
    aredis_cluster_free(cl);
}

/* The cluster freed with a pool connection acquired and a BLPOP on it:
 * the BLPOP's callback runs once, with an error; nothing leaks (ASan). */
static void test_node_pool_freed_with_cluster(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(a_node(1));
    warm_up(cl);
    aredis_pool *p = aredis_cluster_pool(cl, "{f}:l", 5, NULL);
    assert_non_null(p);
    aredis_client *c = acquire(p);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_NO_TIMEOUT;
    res blpop = {0};
    assert_int_equal(aredis_command_ex(c, &co, on_res, &blpop, "BLPOP {f}:l 0"), AREDIS_ERR_OK);
    aredis_cluster_free(cl);
    assert_int_equal(blpop.calls, 1);
    assert_true(blpop.code != AREDIS_ERR_OK);
    res_clear(&blpop);
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
        TS_LOOP_CASE(test_pipeline_across_slots),
        TS_LOOP_CASE(test_pipeline_across_migration),
        TS_LOOP_CASE(test_transactions),
        TS_LOOP_CASE(test_command_all),
        TS_LOOP_CASE(test_scan),
        TS_LOOP_CASE(test_futures_and_refusals),
        TS_LOOP_CASE(test_options),
        TS_LOOP_CASE(test_replica_reads),
        TS_LOOP_CASE(test_replica_reads_seeded_from_replica),
        TS_LOOP_CASE(test_nodes_and_keyslot),
        TS_LOOP_CASE(test_node_pool_blocking),
        TS_LOOP_CASE(test_node_pool_watch),
        TS_LOOP_CASE(test_node_pool_freed_with_cluster),
        TS_LOOP_CASE(test_free_with_everything_in_flight),
        TS_LOOP_CASE(test_scan_freed_before_first_batch),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
