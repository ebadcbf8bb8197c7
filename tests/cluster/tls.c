/* labels: tls */
/*
 * The cluster client over TLS, against a real TLS-only Redis cluster: 3
 * primaries and 1 replica each with `port 0`, `tls-port`, `tls-cluster
 * yes`, `tls-replication yes`, the test CA's certificates
 * (ts_cluster_start_tls, tests/support/cluster.h); the nodes present
 * client.crt to each other, clients need none (tls-auth-clients no).
 *
 *   shards       CLUSTER SHARDS over TLS names every node by "tls-port"
 *                alone (the server's side, checked first); through it the
 *                cluster client learns the whole topology: a command is
 *                answered, all 16384 slots are known, and its node
 *                connections are the primaries' TLS ports in slot order
 *   all slots    one key in each of the 16384 slots written and read back,
 *                right first time (no MOVED), each primary holding exactly
 *                the keys of the slots it serves; sampled keys' node
 *                connections are their slots' primaries
 *   pipeline     600 commands of every node in one pipeline, replies in
 *                the order queued
 *   bad files    node.tls with a CA file that does not exist, or a client
 *                certificate without its key: aredis_cluster_new() fails at
 *                once with AREDIS_ERR_TLS naming the file; a given
 *                node.tls_context wins over those fields
 *   held ctx     node.tls_context released by the caller right after
 *                aredis_cluster_new(): every node connection made after
 *                that (the seed's and the ones the topology adds) still
 *                handshakes with it (ASan builds: no use-after-free)
 *   one ctx      node.tls_ca_file is a copy removed right after
 *                aredis_cluster_new(): every node connection, seeds and
 *                later ones, still verifies the nodes — the CA was read
 *                once, into the one context they share
 *   wrong CA     node.tls_ca_file of an unrelated CA: every command fails
 *                with AREDIS_ERR_TLS and OpenSSL's reason, within a bound,
 *                and so do commands issued after the first failures
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "aredis/cluster.h"
#include "tls.h"
#include "ts.h"

#define g_loop ts_case_loop()
#define WAIT_MS 10000
/* How long a command may take to fail when the topology cannot be read:
 * a TLS handshake refused on loopback, then the reply to every waiting
 * command. Generous; it measures that nothing hangs. */
#define FAIL_BOUND_MS 5000

static ts_cluster *g_tc;
static const ts_tls_files *g_files;

/* ---- Helpers ------------------------------------------------------------------ */

static char g_seed_buf[6][32];
static const char *g_seeds[6];

/* Options for the cluster: the first `nseeds` primaries as seeds, TLS with
 * the test CA, quick reconnects. */
static aredis_cluster_options tls_options(size_t nseeds) {
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    size_t k = 0;
    for (int i = 0; i < ts_cluster_nodes(g_tc) && k < nseeds; i++) {
        if (!ts_cluster_is_primary(g_tc, i)) continue;
        snprintf(g_seed_buf[k], sizeof g_seed_buf[k], "127.0.0.1:%d", ts_cluster_port(g_tc, i));
        g_seeds[k] = g_seed_buf[k];
        k++;
    }
    assert_int_equal(k, nseeds);
    o.seeds = g_seeds;
    o.nseeds = nseeds;
    o.node.tls = 1;
    o.node.tls_ca_file = g_files->ca_file;
    o.node.reconnect_delay_ms = 20;
    o.node.max_reconnect_delay_ms = 200;
    o.node.connect_timeout_ms = 3000;
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

#define CL(cl, ...) fwait(aredis_cluster_future((cl), __VA_ARGS__))

/* A command to a node over TLS (the fixture's own connection), asserting a
 * reply. */
static aredis_reply *node_cmd(int port, const char *a0, const char *a1, const char *a2) {
    char err[256];
    const char *argv[] = {a0, a1, a2};
    int argc = a2 ? 3 : a1 ? 2 : 1;
    aredis_reply *r = ts_node_command_tls(port, g_files, argc, argv, NULL, err, sizeof err);
    if (!r) fail_msg("port %d: %s: %s", port, a0, err);
    return r;
}

/* The TLS port a node connection talks to, as the server says (no public
 * accessor gives a node client's address). */
static int client_tls_port(aredis_client *c) {
    aredis_future *f = fwait(aredis_future_command(c, "CONFIG GET tls-port"));
    const aredis_reply *r = fok(f, "CONFIG GET tls-port");
    if (r->elements != 2 || !r->element[1]->str) fail_msg("CONFIG GET tls-port: unexpected reply");
    int port = atoi(r->element[1]->str);
    aredis_future_release(f);
    return port;
}

/* Outcomes of many callbacks. */
typedef struct tally {
    size_t done, ok, errors, wrong;
    aredis_err first_code;
    char first_error[300];
    uint64_t last_at; /* ts_now_ms() of the last completion */
} tally;

typedef struct op {
    tally *t;
    char want[24]; /* a GET's value; "" for anything else */
} op;

static void on_op(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    op *o = data;
    tally *t = o->t;
    t->done++;
    t->last_at = ts_now_ms();
    if (err) {
        if (!t->errors++) {
            t->first_code = err->code;
            snprintf(t->first_error, sizeof t->first_error, "%s", err->detail);
        }
    } else if (o->want[0] && !(r && r->str && strcmp(r->str, o->want) == 0)) {
        t->wrong++;
    } else {
        t->ok++;
    }
}

/* A key for every slot: key_of[s] hashes to slot s ("ts:<n>", the first n
 * that does). */
static char (*g_slot_keys)[16];

static void make_slot_keys(void) {
    if (g_slot_keys) return;
    g_slot_keys = calloc(TS_CLUSTER_SLOTS, sizeof *g_slot_keys);
    assert_non_null(g_slot_keys);
    size_t covered = 0;
    for (long n = 0; covered < TS_CLUSTER_SLOTS; n++) {
        assert_true(n < 10000000);
        char k[16];
        int len = snprintf(k, sizeof k, "ts:%ld", n);
        unsigned s = aredis_cluster_keyslot(k, (size_t)len);
        if (g_slot_keys[s][0]) continue;
        memcpy(g_slot_keys[s], k, (size_t)len + 1);
        covered++;
    }
}

/* SET then GET of n keys "<prefix><i>" = "v<i>", each batch all in flight;
 * asserts every one succeeds with the right value. */
static void write_read(aredis_cluster *cl, const char *prefix, int n) {
    tally t = {0};
    op *ops = calloc((size_t)(2 * n), sizeof *ops);
    assert_non_null(ops);
    for (int i = 0; i < n; i++) {
        ops[i].t = &t;
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "SET %s%d v%d", prefix, i, i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, (size_t)n, WAIT_MS));
    for (int i = 0; i < n; i++) {
        ops[n + i].t = &t;
        snprintf(ops[n + i].want, sizeof ops[n + i].want, "v%d", i);
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[n + i], "GET %s%d", prefix, i),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, (size_t)(2 * n), WAIT_MS));
    free(ops);
    if (t.errors)
        fail_msg("%zu of %d commands failed, the first: %s: %s", t.errors, 2 * n,
                 aredis_err_name(t.first_code), t.first_error);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.ok, (size_t)(2 * n));
}

/* ---- 1. CLUSTER SHARDS over TLS ------------------------------------------------------ */

/* A RESP2 map (flat array of pairs): the value of key, or NULL. */
static const aredis_reply *flat_get(const aredis_reply *m, const char *key) {
    for (size_t i = 0; m && m->type == AREDIS_REPLY_ARRAY && i + 1 < m->elements; i += 2)
        if (m->element[i]->str && strcmp(m->element[i]->str, key) == 0) return m->element[i + 1];
    return NULL;
}

static void test_shards_name_tls_ports(void **state) {
    (void)state;
    /* The server's side: every node of every shard has a "tls-port" that
     * is one of the cluster's ports, and no plain "port" (there is none). */
    aredis_reply *r = node_cmd(ts_cluster_port(g_tc, 0), "CLUSTER", "SHARDS", NULL);
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    int listed = 0;
    for (size_t s = 0; s < r->elements; s++) {
        const aredis_reply *nodes = flat_get(r->element[s], "nodes");
        assert_non_null(nodes);
        for (size_t k = 0; k < nodes->elements; k++) {
            const aredis_reply *tp = flat_get(nodes->element[k], "tls-port");
            const aredis_reply *pp = flat_get(nodes->element[k], "port");
            if (!tp || tp->type != AREDIS_REPLY_INTEGER)
                fail_msg("CLUSTER SHARDS: a node without tls-port");
            assert_true(ts_cluster_index_of_port(g_tc, (int)tp->integer) >= 0);
            assert_true(!pp || (pp->type == AREDIS_REPLY_INTEGER && pp->integer == 0));
            listed++;
        }
    }
    aredis_reply_free(r);
    assert_int_equal(listed, ts_cluster_nodes(g_tc));
    /* The client's side: from that reply, the whole topology. */
    aredis_cluster_options o = tls_options(1);
    aredis_cluster *cl = cluster_new(&o);
    aredis_future *f = CL(cl, "SET %s %s", "shards:k", "v");
    fok(f, "SET through the TLS cluster");
    aredis_future_release(f);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.slots_known, TS_CLUSTER_SLOTS);
    assert_int_equal(st.refreshes, 1);
    aredis_client *out[8] = {0};
    assert_int_equal(aredis_cluster_nodes(cl, out, 8, 0), 3);
    /* Primaries in slot order: each is the TLS port serving its first slot. */
    assert_int_equal(client_tls_port(out[0]), ts_cluster_tls_node_for_slot(g_tc, 0));
    assert_int_equal(client_tls_port(out[2]),
                     ts_cluster_tls_node_for_slot(g_tc, TS_CLUSTER_SLOTS - 1));
    int p1 = client_tls_port(out[1]);
    assert_true(p1 != client_tls_port(out[0]) && p1 != client_tls_port(out[2]));
    assert_true(ts_cluster_is_primary(g_tc, ts_cluster_index_of_port(g_tc, p1)));
    aredis_cluster_free(cl);
}

/* ---- 2. Every slot --------------------------------------------------------------------- */

static void test_every_slot(void **state) {
    (void)state;
    make_slot_keys();
    /* The primaries start empty; how many slots each serves. */
    int nprim = 0, ports[3], slots_of[3] = {0, 0, 0};
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++)
        if (ts_cluster_is_primary(g_tc, i)) {
            assert_true(nprim < 3);
            ports[nprim++] = ts_cluster_port(g_tc, i);
            aredis_reply_free(node_cmd(ts_cluster_port(g_tc, i), "FLUSHALL", NULL, NULL));
        }
    assert_int_equal(nprim, 3);
    aredis_reply *slots = node_cmd(ports[0], "CLUSTER", "SLOTS", NULL);
    assert_int_equal(slots->type, AREDIS_REPLY_ARRAY);
    for (size_t k = 0; k < slots->elements; k++) {
        const aredis_reply *e = slots->element[k];
        int port = (int)e->element[2]->element[1]->integer;
        for (int j = 0; j < 3; j++)
            if (ports[j] == port)
                slots_of[j] += (int)(e->element[1]->integer - e->element[0]->integer + 1);
    }
    aredis_reply_free(slots);
    assert_int_equal(slots_of[0] + slots_of[1] + slots_of[2], TS_CLUSTER_SLOTS);

    aredis_cluster_options o = tls_options(1);
    aredis_cluster *cl = cluster_new(&o);
    tally t = {0};
    op *ops = calloc(2 * TS_CLUSTER_SLOTS, sizeof *ops);
    assert_non_null(ops);
    for (int s = 0; s < TS_CLUSTER_SLOTS; s++) {
        ops[s].t = &t;
        assert_int_equal(
            aredis_cluster_command(cl, on_op, &ops[s], "SET %s s%d", g_slot_keys[s], s),
            AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, TS_CLUSTER_SLOTS, 20000));
    if (t.errors)
        fail_msg("%zu of %d SETs failed, the first: %s: %s", t.errors, TS_CLUSTER_SLOTS,
                 aredis_err_name(t.first_code), t.first_error);
    for (int s = 0; s < TS_CLUSTER_SLOTS; s++) {
        op *x = &ops[TS_CLUSTER_SLOTS + s];
        x->t = &t;
        snprintf(x->want, sizeof x->want, "s%d", s);
        assert_int_equal(aredis_cluster_command(cl, on_op, x, "GET %s", g_slot_keys[s]),
                         AREDIS_ERR_OK);
    }
    assert_true(ts_wait_count(g_loop, &t.done, 2 * TS_CLUSTER_SLOTS, 20000));
    free(ops);
    if (t.errors)
        fail_msg("%zu GETs failed, the first: %s: %s", t.errors, aredis_err_name(t.first_code),
                 t.first_error);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.ok, 2 * TS_CLUSTER_SLOTS);
    /* Right first time: no redirection was needed. */
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.moved, 0);
    assert_int_equal(st.asked, 0);
    assert_int_equal(st.nodes, 3);
    /* Each primary holds exactly the keys of its slots. */
    for (int j = 0; j < 3; j++) {
        aredis_reply *r = node_cmd(ports[j], "DBSIZE", NULL, NULL);
        assert_int_equal(r->type, AREDIS_REPLY_INTEGER);
        if (r->integer != slots_of[j])
            fail_msg("primary on port %d holds %lld keys, serves %d slots", ports[j], r->integer,
                     slots_of[j]);
        aredis_reply_free(r);
    }
    /* Sampled keys: their node connection is their slot's primary, which
     * holds them (read over the fixture's own TLS connection). */
    for (int s = 0; s < TS_CLUSTER_SLOTS; s += 1361) {
        const char *k = g_slot_keys[s];
        aredis_client *c = aredis_cluster_node_for_key(cl, k, strlen(k));
        assert_non_null(c);
        assert_int_equal(ts_cluster_tls_keyslot(g_tc, k), s);
        int owner = ts_cluster_tls_node_for_slot(g_tc, s);
        assert_int_equal(client_tls_port(c), owner);
        aredis_reply *r = node_cmd(owner, "GET", k, NULL);
        char want[16];
        snprintf(want, sizeof want, "s%d", s);
        if (r->type != AREDIS_REPLY_STRING || strcmp(r->str, want) != 0)
            fail_msg("GET %s on port %d: %s", k, owner, r->str ? r->str : "(not a string)");
        aredis_reply_free(r);
    }
    aredis_cluster_free(cl);
}

/* ---- 3. A pipeline across slots ----------------------------------------------------- */

static void test_pipeline_across_slots(void **state) {
    (void)state;
    aredis_cluster_options o = tls_options(1);
    aredis_cluster *cl = cluster_new(&o);
    enum { N = 300 };
    aredis_cluster_pipeline *p = aredis_cluster_pipeline_new(cl);
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        assert_int_equal(aredis_cluster_pipeline_command(p, "SET tp:%d pv%d", i, i), AREDIS_ERR_OK);
        assert_int_equal(aredis_cluster_pipeline_command(p, "GET tp:%d", i), AREDIS_ERR_OK);
    }
    assert_int_equal(aredis_cluster_pipeline_size(p), 2 * N);
    aredis_future *f = fwait(aredis_cluster_pipeline_exec_future(p));
    assert_int_equal(aredis_cluster_pipeline_size(p), 0);
    const aredis_reply *r = fok(f, "pipeline exec over TLS");
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2 * N);
    for (int i = 0; i < N; i++) {
        const aredis_reply *set = r->element[2 * i], *get = r->element[2 * i + 1];
        char want[16];
        snprintf(want, sizeof want, "pv%d", i);
        if (set->type != AREDIS_REPLY_STATUS || strcmp(set->str, "OK") != 0)
            fail_msg("reply %d (SET tp:%d): %s", 2 * i, i, set->str ? set->str : "?");
        if (get->type != AREDIS_REPLY_STRING || strcmp(get->str, want) != 0)
            fail_msg("reply %d (GET tp:%d): %s", 2 * i + 1, i, get->str ? get->str : "?");
    }
    aredis_future_release(f);
    aredis_cluster_pipeline_free(p);
    /* The keys were spread over all three primaries. */
    int hit[3] = {0, 0, 0};
    aredis_client *out[3];
    assert_int_equal(aredis_cluster_nodes(cl, out, 3, 0), 3);
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "tp:%d", i);
        aredis_client *c = aredis_cluster_node_for_key(cl, k, strlen(k));
        for (int j = 0; j < 3; j++)
            hit[j] += c == out[j];
    }
    assert_true(hit[0] && hit[1] && hit[2]);
    assert_int_equal(hit[0] + hit[1] + hit[2], N);
    aredis_cluster_free(cl);
}

/* ---- 4. One context: bad files refused at once -------------------------------------- */

/* The node connections that connected (each once). */
typedef struct conns {
    size_t n;
    aredis_client *c[8];
} conns;

static void on_node_connect(aredis_client *c, void *data) {
    conns *k = data;
    for (size_t i = 0; i < k->n; i++)
        if (k->c[i] == c) return;
    if (k->n < 8) k->c[k->n++] = c;
}

/* Every connection in k answers a PING of its own (over its TLS session). */
static void ping_each(conns *k) {
    for (size_t i = 0; i < k->n; i++) {
        aredis_future *f = fwait(aredis_future_command(k->c[i], "PING"));
        const aredis_reply *r = fok(f, "PING on a node connection");
        assert_string_equal(r->str, "PONG");
        aredis_future_release(f);
    }
}

static void test_bad_files_refused_at_once(void **state) {
    (void)state;
    aredis_cluster_options o = tls_options(1);
    o.node.tls_ca_file = "/nonexistent/aredis-ca.crt";
    uint64_t t0 = ts_now_ms();
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_TLS);
    assert_non_null(strstr(aredis_call_error()->detail, "/nonexistent/aredis-ca.crt"));
    /* A client certificate without its key. */
    o.node.tls_ca_file = g_files->ca_file;
    o.node.tls_cert_file = ts_tls_file("client.crt");
    assert_null(aredis_cluster_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_TLS);
    assert_non_null(strstr(aredis_call_error()->detail, "tls_key_file"));
    /* Both refused inside the call: nothing was connected or waited for. */
    assert_true(ts_now_ms() - t0 < 1000);
    /* A context of the caller's wins over the fields: the bad CA is not
     * read, and the seed connects with the context. */
    aredis_options t = AREDIS_OPTIONS_INIT;
    t.tls_ca_file = g_files->ca_file;
    aredis_tls_context *ctx = aredis_tls_context_new(&t);
    assert_non_null(ctx);
    o.node.tls_cert_file = NULL;
    o.node.tls_ca_file = "/nonexistent/aredis-ca.crt";
    o.node.tls_context = ctx;
    conns k = {0};
    o.node.on_connect = on_node_connect;
    o.node.cb_data = &k;
    aredis_cluster *cl = cluster_new(&o);
    aredis_tls_context_release(ctx);
    assert_true(ts_wait_count(g_loop, &k.n, 1, WAIT_MS));
    ping_each(&k);
    aredis_cluster_free(cl);
}

/* ---- 5. The caller's context, released at once --------------------------------------- */

/* Every primary a seed: three node connections made inside
 * aredis_cluster_new(), each handshaking later, on the loop, after the
 * caller released the context. */
static void test_context_outlives_caller_seeds(void **state) {
    (void)state;
    aredis_options t = AREDIS_OPTIONS_INIT;
    t.tls_ca_file = g_files->ca_file;
    aredis_tls_context *ctx = aredis_tls_context_new(&t);
    assert_non_null(ctx);
    aredis_cluster_options o = tls_options(3);
    o.node.tls_ca_file = NULL;
    o.node.tls_context = ctx;
    conns k = {0};
    o.node.on_connect = on_node_connect;
    o.node.cb_data = &k;
    aredis_cluster *cl = cluster_new(&o);
    aredis_tls_context_release(ctx); /* the cluster's reference is the only one now */
    assert_true(ts_wait_count(g_loop, &k.n, 3, WAIT_MS));
    ping_each(&k);
    aredis_cluster_free(cl);
}

/* One seed: the other primaries' connections are made once the topology
 * names them, with the same context, long after the caller let it go. */
static void test_context_outlives_caller_later_nodes(void **state) {
    (void)state;
    aredis_options t = AREDIS_OPTIONS_INIT;
    t.tls_ca_file = g_files->ca_file;
    aredis_tls_context *ctx = aredis_tls_context_new(&t);
    assert_non_null(ctx);
    aredis_cluster_options o = tls_options(1);
    o.node.tls_ca_file = NULL;
    o.node.tls_context = ctx;
    conns k = {0};
    o.node.on_connect = on_node_connect;
    o.node.cb_data = &k;
    aredis_cluster *cl = cluster_new(&o);
    aredis_tls_context_release(ctx);
    write_read(cl, "held:", 300);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.nodes, 3);
    assert_int_equal(k.n, 3);
    aredis_cluster_free(cl);
}

/* ---- 6. One context for every node: the CA is read once ------------------------------ */

/* A copy of the test CA at a temp path (the caller unlinks it). */
static void ca_copy(char *path) {
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *in = fopen(g_files->ca_file, "r");
    assert_non_null(in);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_true(n > 0 && n < sizeof buf);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);
}

/* The CA file gone right after aredis_cluster_new(): a node connection
 * building its own context at its connect would fail to load it. The
 * three seeds connect and verify the nodes all the same. */
static void test_ca_read_once_seeds(void **state) {
    (void)state;
    char path[] = "/tmp/aredis-ca-once-XXXXXX";
    ca_copy(path);
    aredis_cluster_options o = tls_options(3);
    o.node.tls_ca_file = path;
    conns k = {0};
    o.node.on_connect = on_node_connect;
    o.node.cb_data = &k;
    aredis_cluster *cl = cluster_new(&o);
    assert_int_equal(unlink(path), 0);
    assert_true(ts_wait_count(g_loop, &k.n, 3, WAIT_MS));
    ping_each(&k);
    aredis_cluster_free(cl);
}

/* The same with one seed: the connections the topology adds later verify
 * the nodes with the CA read before it was removed. */
static void test_ca_read_once_later_nodes(void **state) {
    (void)state;
    char path[] = "/tmp/aredis-ca-once-XXXXXX";
    ca_copy(path);
    aredis_cluster_options o = tls_options(1);
    o.node.tls_ca_file = path;
    conns k = {0};
    o.node.on_connect = on_node_connect;
    o.node.cb_data = &k;
    aredis_cluster *cl = cluster_new(&o);
    assert_int_equal(unlink(path), 0);
    write_read(cl, "once:", 300);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.nodes, 3);
    assert_int_equal(k.n, 3);
    aredis_cluster_free(cl);
}

/* ---- 7. A wrong CA --------------------------------------------------------------------- */

/* A cluster whose nodes' certificates its CA did not sign. */
static aredis_cluster *wrong_ca_cluster(void) {
    aredis_cluster_options o = tls_options(1);
    o.node.tls_ca_file = ts_tls_file("other-ca.crt");
    return cluster_new(&o); /* the file itself is fine */
}

/* n commands issued at once: every one must fail with the TLS reason
 * within FAIL_BOUND_MS. */
static void expect_tls_failures(aredis_cluster *cl, int n, const char *what) {
    tally t = {0};
    op *ops = calloc((size_t)n, sizeof *ops);
    assert_non_null(ops);
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < n; i++) {
        ops[i].t = &t;
        assert_int_equal(aredis_cluster_command(cl, on_op, &ops[i], "SET wca:%d x", i),
                         AREDIS_ERR_OK);
    }
    if (!ts_wait_count(g_loop, &t.done, (size_t)n, FAIL_BOUND_MS))
        fail_msg("%s: %zu of %d commands ended within %d ms", what, t.done, n, FAIL_BOUND_MS);
    ts_log("%s: %d commands failed in %llu ms: %s: %s", what, n,
           (unsigned long long)(t.last_at - t0), aredis_err_name(t.first_code), t.first_error);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.errors, (size_t)n);
    if (t.first_code != AREDIS_ERR_TLS || !strstr(t.first_error, "certificate verify failed"))
        fail_msg("%s: %s: %s (not the TLS reason)", what, aredis_err_name(t.first_code),
                 t.first_error);
    free(ops);
}

static void test_wrong_ca_fails_in_bounded_time(void **state) {
    (void)state;
    aredis_cluster *cl = wrong_ca_cluster();
    expect_tls_failures(cl, 20, "wrong CA");
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.refreshes, 0);
    assert_int_equal(st.slots_known, 0);
    aredis_cluster_free(cl);
}

/* Commands issued after the first ones failed: they fail too, as soon, and
 * still for the reason the topology cannot be read. */
static void test_wrong_ca_later_commands(void **state) {
    (void)state;
    aredis_cluster *cl = wrong_ca_cluster();
    expect_tls_failures(cl, 5, "wrong CA, first commands");
    expect_tls_failures(cl, 5, "wrong CA, commands issued after those failed");
    aredis_cluster_free(cl);
}

static int group_setup(void **state) {
    (void)state;
    static ts_tls_files files;
    files.ca_file = ts_tls_file("ca.crt");
    files.cert_file = ts_tls_file("server.crt");
    files.key_file = ts_tls_file("server.key");
    files.client_cert_file = ts_tls_file("client.crt");
    files.client_key_file = ts_tls_file("client.key");
    g_tc = ts_cluster_start_tls(3, 1, &files, NULL);
    g_files = ts_cluster_tls_files(g_tc);
    assert_non_null(g_files);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    ts_cluster_stop(g_tc);
    free(g_slot_keys);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_shards_name_tls_ports),
        TS_LOOP_CASE(test_every_slot),
        TS_LOOP_CASE(test_pipeline_across_slots),
        TS_LOOP_CASE(test_bad_files_refused_at_once),
        TS_LOOP_CASE(test_context_outlives_caller_seeds),
        TS_LOOP_CASE(test_context_outlives_caller_later_nodes),
        TS_LOOP_CASE(test_ca_read_once_seeds),
        TS_LOOP_CASE(test_ca_read_once_later_nodes),
        TS_LOOP_CASE(test_wrong_ca_fails_in_bounded_time),
        TS_LOOP_CASE(test_wrong_ca_later_commands),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
