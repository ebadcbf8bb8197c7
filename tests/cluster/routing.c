/*
 * The cluster client's core (src/features/cluster.c) against a real
 * 3-primary, 1-replica-each cluster: commands issued before the topology
 * is known go out once it is; 2,000 keys across the slots read back what
 * was written, through every primary, also when the seed is a replica;
 * hash-tagged keys together in MSET/MGET; a command across slots refused
 * before sending (CROSSSLOT), its callback never run; a slot migrated while
 * commands are in flight: every one succeeds (MOVED followed, the topology
 * read again); a primary killed: after the failover, reads and writes of
 * its slots succeed again; the cluster freed with commands in flight, or
 * from inside a callback while others wait: each callback once, CANCELLED,
 * and a command issued during the free refused; what a cluster refuses
 * before sending (CLIENT REPLY, MULTI, SELECT, SUBSCRIBE, MONITOR); the
 * topology read again periodically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "aredis/cluster.h"
#include "ts.h"

#define g_loop ts_case_loop()

static ts_cluster *g_tc;

static aredis_cluster *cluster_on(const ts_cluster *tc, int node) {
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    static char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", ts_cluster_port(tc, node));
    static const char *seeds[1];
    seeds[0] = seed;
    o.seeds = seeds;
    o.nseeds = 1;
    aredis_options no = AREDIS_OPTIONS_INIT;
    no.reconnect_delay_ms = 20;
    no.max_reconnect_delay_ms = 200;
    o.node = no;
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    if (!cl) fail_msg("cluster: %s", aredis_call_error()->detail);
    return cl;
}

/* Outcomes of many commands. */
typedef struct tally {
    size_t done, ok, errors, wrong;
    char first_error[200];
} tally;

typedef struct op {
    tally *t;
    char want[32]; /* a GET's expected value; "" for a write */
} op;

static void on_op(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    op *o = data;
    tally *t = o->t;
    t->done++;
    if (err) {
        if (!t->errors++) snprintf(t->first_error, sizeof t->first_error, "%s", err->detail);
    } else if (o->want[0] && (!r || !r->str || strcmp(r->str, o->want) != 0)) {
        t->wrong++;
    } else {
        t->ok++;
    }
    free(o);
}

static op *op_new(tally *t, const char *want) {
    op *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->t = t;
    snprintf(o->want, sizeof o->want, "%s", want ? want : "");
    return o;
}

static void issue(aredis_cluster *cl, tally *t, const char *want, const char *fmt, long i) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, fmt, i, i);
    assert_int_equal(aredis_cluster_command(cl, on_op, op_new(t, want), cmd), AREDIS_ERR_OK);
}

/* n SETs then n GETs of k<i> = v<i>, all in flight at once. */
static void write_read(aredis_cluster *cl, long from, long n) {
    tally t = {0};
    for (long i = from; i < from + n; i++)
        issue(cl, &t, NULL, "SET rk%ld v%ld", i);
    assert_true(ts_wait_count(g_loop, &t.done, (size_t)n, 10000));
    for (long i = from; i < from + n; i++) {
        char want[32];
        snprintf(want, sizeof want, "v%ld", i);
        issue(cl, &t, want, "GET rk%ld", i);
    }
    assert_true(ts_wait_count(g_loop, &t.done, (size_t)(2 * n), 10000));
    if (t.errors) fail_msg("%zu errors, the first: %s", t.errors, t.first_error);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.ok, (size_t)(2 * n));
}

static void test_across_slots(void **state) {
    (void)state;
    ts_cluster *tc = g_tc;
    /* Issued at once: they wait for the topology. */
    aredis_cluster *cl = cluster_on(tc, 0);
    write_read(cl, 0, 2000);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_true(st.refreshes >= 1);
    assert_int_equal(st.nodes, 3); /* the three primaries (the seed is one) */
    /* Every primary got its share: each holds keys now. */
    int holding = 0;
    for (int i = 0; i < ts_cluster_nodes(tc); i++) {
        if (!ts_cluster_is_primary(tc, i)) continue;
        aredis_reply *r = ts_node_cmd(ts_cluster_port(tc, i), "DBSIZE", (char *)NULL);
        assert_non_null(r);
        holding += r->integer > 500;
        aredis_reply_free(r);
    }
    assert_int_equal(holding, 3);
    aredis_cluster_free(cl);
    /* Seeded from a replica: writes still reach the primaries. */
    int replica = -1;
    for (int i = 0; i < ts_cluster_nodes(tc) && replica < 0; i++)
        if (!ts_cluster_is_primary(tc, i)) replica = i;
    cl = cluster_on(tc, replica);
    write_read(cl, 2000, 500);
    aredis_cluster_free(cl);
}

static void test_hash_tags_and_crossslot(void **state) {
    (void)state;
    ts_cluster *tc = g_tc;
    aredis_cluster *cl = cluster_on(tc, 1);
    tally t = {0};
    assert_int_equal(aredis_cluster_command(cl, on_op, op_new(&t, NULL), "MSET {u7}a 1 {u7}b 2"),
                     AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t.done, 1, 5000));
    assert_int_equal(t.ok, 1);
    /* MGET of the two, then of keys in different slots: refused. */
    tally t2 = {0};
    assert_int_equal(aredis_cluster_command(cl, on_op, op_new(&t2, NULL), "MGET {u7}a {u7}b"),
                     AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t2.done, 1, 5000));
    assert_int_equal(t2.ok, 1);
    op *o = op_new(&t2, NULL);
    aredis_err e = aredis_cluster_command(cl, on_op, o, "MGET foo bar");
    assert_int_equal(e, AREDIS_ERR_CROSSSLOT);
    assert_non_null(strstr(aredis_call_error()->detail, "CROSSSLOT"));
    free(o); /* refused: its callback never runs */
    assert_int_equal(aredis_cluster_command(cl, on_op, op_new(&t2, NULL), "PING"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t2.done, 2, 5000));
    assert_int_equal(t2.done, 2);
    aredis_cluster_free(cl);
}

static void test_slot_migrated_under_load(void **state) {
    (void)state;
    ts_cluster *tc = g_tc;
    aredis_cluster *cl = cluster_on(tc, 0);
    write_read(cl, 10000, 200); /* the topology is known */
    int slot = ts_cluster_keyslot(tc, "mig:{s}");
    int from = ts_cluster_node_for_slot(tc, slot), to = -1;
    for (int i = 0; i < ts_cluster_nodes(tc) && to < 0; i++)
        if (ts_cluster_is_primary(tc, i) && ts_cluster_port(tc, i) != from)
            to = ts_cluster_port(tc, i);
    /* Keys of the slot, written; reads of them in flight across the
     * migration (the loop does not run while it is done: their replies
     * wait in the socket), then more after it, at the old owner. */
    tally t = {0};
    for (long i = 0; i < 100; i++)
        issue(cl, &t, NULL, "SET mig:{s}%ld v%ld", i);
    assert_true(ts_wait_count(g_loop, &t.done, 100, 5000));
    for (long i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "v%ld", i);
        issue(cl, &t, want, "GET mig:{s}%ld", i);
    }
    ts_cluster_migrate_slot(tc, slot, to);
    for (long i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "v%ld", i);
        issue(cl, &t, want, "GET mig:{s}%ld", i);
        issue(cl, &t, NULL, "SET mig:{s}x%ld v%ld", i);
    }
    assert_true(ts_wait_count(g_loop, &t.done, 400, 10000));
    if (t.errors) fail_msg("%zu errors, the first: %s", t.errors, t.first_error);
    assert_int_equal(t.wrong, 0);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_true(st.moved >= 1);
    assert_int_equal(ts_cluster_node_for_slot(tc, slot), to);
    /* The written keys are on the new owner. */
    aredis_reply *r = ts_node_cmd(to, "GET", "mig:{s}x7", (char *)NULL);
    assert_non_null(r);
    assert_string_equal(r->str, "v7");
    aredis_reply_free(r);
    aredis_cluster_free(cl);
}

static int all_ok(const void *arg) {
    const tally *t = arg;
    return t->done > 0;
}

static void test_failover_recovers(void **state) {
    (void)state;
    ts_cluster *tc = g_tc;
    aredis_cluster *cl = cluster_on(tc, 0);
    write_read(cl, 20000, 100);
    int slot = ts_cluster_keyslot(tc, "fo:k");
    int victim = ts_cluster_index_of_port(tc, ts_cluster_node_for_slot(tc, slot));
    assert_true(victim >= 0);
    ts_cluster_kill(tc, victim);
    assert_true(ts_cluster_wait_failover(tc, victim, 20000));
    /* The client learns of it (a lost node, a read of the topology): a
     * write to the slot succeeds again, within a bound. */
    uint64_t until = ts_now_ms() + 15000;
    int ok = 0;
    while (!ok && ts_now_ms() < until) {
        tally t = {0};
        assert_int_equal(aredis_cluster_command(cl, on_op, op_new(&t, NULL), "SET fo:k v1"),
                         AREDIS_ERR_OK);
        assert_true(ts_wait_until(g_loop, all_ok, &t, 10000));
        ok = t.ok == 1;
    }
    assert_true(ok);
    /* And then everything does. */
    write_read(cl, 30000, 300);
    aredis_cluster_free(cl);
    ts_cluster_restart(tc, victim);
}

/* Commands issued while a primary is down wait in its connection's queue;
 * once the topology names its replica, they are taken back and sent there:
 * every one succeeds (none times out waiting for the dead address). */
static int node_down(const void *arg) {
    aredis_client *c = (aredis_client *)arg;
    return aredis_client_state(c) != AREDIS_STATE_READY;
}

static void test_failover_reroutes_waiting(void **state) {
    (void)state;
    ts_cluster *tc = g_tc;
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", ts_cluster_port(tc, 0));
    const char *seeds[] = {seed};
    o.seeds = seeds;
    o.nseeds = 1;
    o.node.reconnect_delay_ms = 20;
    o.node.max_reconnect_delay_ms = 200;
    o.node.request_timeout_ms = 60000; /* the failover decides, not a deadline */
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    assert_non_null(cl);
    write_read(cl, 70000, 10);
    int slot = ts_cluster_keyslot(tc, "rr:k");
    int victim = ts_cluster_index_of_port(tc, ts_cluster_node_for_slot(tc, slot));
    aredis_client *node = aredis_cluster_node_for_key(cl, "rr:k", 4);
    assert_non_null(node);
    ts_cluster_kill(tc, victim);
    assert_true(ts_wait_until(g_loop, node_down, node, 10000));
    tally t = {0};
    for (long i = 0; i < 50; i++)
        issue(cl, &t, NULL, "SET rr:k v%ld", i);
    assert_true(ts_wait_count(g_loop, &t.done, 50, 30000));
    if (t.errors) fail_msg("%zu errors, the first: %s", t.errors, t.first_error);
    assert_int_equal(t.ok, 50);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_true(st.rerouted >= 50);
    aredis_cluster_free(cl);
    assert_true(ts_cluster_wait_failover(tc, victim, 20000));
    ts_cluster_restart(tc, victim);
}

static void test_free_with_commands_in_flight(void **state) {
    (void)state;
    ts_cluster *tc = g_tc;
    aredis_cluster *cl = cluster_on(tc, 0);
    tally t = {0};
    for (long i = 0; i < 50; i++) /* waiting for the topology */
        issue(cl, &t, NULL, "SET fr%ld v%ld", i);
    aredis_cluster_free(cl);
    assert_int_equal(t.done, 50);
    assert_int_equal(t.errors, 50);
    cl = cluster_on(tc, 0);
    write_read(cl, 40000, 10);
    tally t2 = {0};
    for (long i = 0; i < 50; i++) /* in flight on the nodes */
        issue(cl, &t2, NULL, "SET fr%ld v%ld", i);
    aredis_cluster_free(cl);
    assert_int_equal(t2.done, 50); /* each once, now */
}

/* Freed from inside a callback while others wait for the topology (a seed
 * nobody answers at): each callback once, the rest CANCELLED; a command
 * issued during the free refused. */
static aredis_cluster *g_free_me;
static int g_resubmit_rc = -1;

static void free_on_first(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    on_op(c, r, err, data);
    if (g_free_me) {
        aredis_cluster *cl = g_free_me;
        g_free_me = NULL;
        aredis_cluster_free(cl);
        g_resubmit_rc = (int)aredis_cluster_command(cl, NULL, NULL, "PING");
    }
}

static void test_refusals_and_free_in_callback(void **state) {
    (void)state;
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", ts_dead_port());
    const char *seeds[] = {seed};
    o.seeds = seeds;
    o.nseeds = 1;
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    assert_non_null(cl);
    tally t = {0};
    g_free_me = cl;
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_cluster_command(cl, free_on_first, op_new(&t, NULL), "GET k%d", i),
                         AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t.done, 3, 5000));
    assert_int_equal(t.errors, 3);
    assert_null(g_free_me);
    /* A command issued during the free: refused (the cluster is still
     * there: the free was inside its own callback). */
    assert_int_equal(g_resubmit_rc, AREDIS_ERR_CANCELLED);
    /* What a cluster refuses before sending. */
    cl = cluster_on(g_tc, 0);
    static const char *const refused[] = {"CLIENT REPLY SKIP", "MULTI",         "SELECT 1",
                                          "SUBSCRIBE ch",      "SSUBSCRIBE ch", "MONITOR"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        op *x = op_new(&t, NULL);
        if (aredis_cluster_command(cl, on_op, x, refused[i]) != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s was not refused", refused[i]);
        free(x);
    }
    write_read(cl, 50000, 10); /* and the rest still works */
    aredis_cluster_free(cl);
}

/* The topology is read again unasked, every refresh_every_ms. */
static int refreshed_4(const void *arg) {
    aredis_cluster_stats st;
    aredis_cluster_get_stats(arg, &st);
    return st.refreshes >= 4;
}

static void test_periodic_refresh(void **state) {
    (void)state;
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", ts_cluster_port(g_tc, 0));
    const char *seeds[] = {seed};
    o.seeds = seeds;
    o.nseeds = 1;
    o.refresh_every_ms = 50;
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    assert_non_null(cl);
    assert_true(ts_wait_until(g_loop, refreshed_4, cl, 5000));
    write_read(cl, 60000, 10);
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
        TS_LOOP_CASE(test_across_slots),
        TS_LOOP_CASE(test_hash_tags_and_crossslot),
        TS_LOOP_CASE(test_slot_migrated_under_load),
        TS_LOOP_CASE(test_free_with_commands_in_flight),
        TS_LOOP_CASE(test_refusals_and_free_in_callback),
        TS_LOOP_CASE(test_periodic_refresh),
        TS_LOOP_CASE(test_failover_recovers),
        TS_LOOP_CASE(test_failover_reroutes_waiting),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
