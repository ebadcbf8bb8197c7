/*
 * The cluster and sentinel fixtures (tests/support/cluster.h, sentinel.h)
 * do what they say, on real processes: a 3-primary, 1-replica-each cluster
 * comes up with every slot covered and serves a key from the node owning its
 * slot; killing a primary leads to a failover the fixture sees, and the
 * promoted replica serves the slot; a migrated slot takes its keys and its
 * ownership along; a primary, a replica and three sentinels come up, and the
 * sentinels fail over when the primary is killed.
 *
 * Each case has a cluster (or a sentinel setup) of its own: a case that
 * fails half-way leaves nothing behind for the next one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "sentinel.h"
#include "ts.h"

#define FAILOVER_MS 20000

/* ---- Helpers ------------------------------------------------------------ */

static int cluster_setup(void **state) {
    *state = ts_cluster_start(3, 1, NULL);
    return 0;
}

static int cluster_teardown(void **state) {
    ts_cluster_stop(*state);
    return 0;
}

/* The command's reply on port, asserting there is one. */
static aredis_reply *cmd(int port, const char *arg0, const char *arg1, const char *arg2) {
    aredis_reply *r = ts_node_cmd(port, arg0, arg1, arg2, (char *)NULL);
    if (!r) fail_msg("port %d: no reply to %s", port, arg0);
    return r;
}

static void assert_status_ok(aredis_reply *r) {
    assert_non_null(r);
    if (r->type != AREDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
        fail_msg("expected +OK, got %s %s", aredis_reply_type_name(r->type), r->str ? r->str : "");
    aredis_reply_free(r);
}

static void assert_get(int port, const char *key, const char *want) {
    aredis_reply *r = cmd(port, "GET", key, NULL);
    if (r->type != AREDIS_REPLY_STRING)
        fail_msg("GET %s on port %d: %s %s", key, port, aredis_reply_type_name(r->type),
                 r->str ? r->str : "");
    assert_string_equal(r->str, want);
    aredis_reply_free(r);
}

/* GET key on port answers -MOVED <slot> 127.0.0.1:<to>. */
static void assert_moved(int port, const char *key, int slot, int to) {
    aredis_reply *r = cmd(port, "GET", key, NULL);
    char want[64];
    snprintf(want, sizeof want, "MOVED %d 127.0.0.1:%d", slot, to);
    assert_int_equal(r->type, AREDIS_REPLY_ERROR);
    assert_string_equal(r->str, want);
    aredis_reply_free(r);
}

static long long integer(int port, const char *arg0, const char *arg1, const char *arg2) {
    aredis_reply *r = cmd(port, arg0, arg1, arg2);
    if (r->type != AREDIS_REPLY_INTEGER)
        fail_msg("%s %s on port %d: %s %s", arg0, arg1 ? arg1 : "", port,
                 aredis_reply_type_name(r->type), r->str ? r->str : "");
    long long v = r->integer;
    aredis_reply_free(r);
    return v;
}

/* Write key=value on port and wait until one replica has it. WAIT counts
 * the acks for the writes of its own connection: both go through one
 * client of the library (ts_node_cmd() opens a connection a command). */
static void set_replicated(int port, const char *key, const char *value) {
    aredis_loop *loop = aredis_loop_new();
    assert_non_null(loop);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = port;
    aredis_client *cl = ts_connect(loop, &o);
    ts_cmd_ok(cl, "SET %s %s", key, value);
    aredis_future *f = ts_cmd(cl, "WAIT 1 5000");
    assert_null(aredis_future_error(f));
    assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_INTEGER);
    assert_int_equal(aredis_future_reply(f)->integer, 1);
    aredis_future_release(f);
    aredis_client_free(cl);
    aredis_loop_free(loop);
}

static void assert_replica_of(int port, int primary_port) {
    char v[32];
    assert_true(ts_node_info_field(port, "replication", "role", v, sizeof v));
    assert_string_equal(v, "slave");
    assert_true(ts_node_info_field(port, "replication", "master_port", v, sizeof v));
    assert_int_equal(atoi(v), primary_port);
}

/* ---- The cluster -------------------------------------------------------- */

static void test_cluster_comes_up(void **state) {
    ts_cluster *c = *state;
    int n = ts_cluster_nodes(c);
    assert_int_equal(n, 6);
    int primaries = 0, replicas_of[6] = {0};
    for (int i = 0; i < n; i++) {
        assert_true(ts_cluster_is_alive(c, i));
        assert_int_equal(strlen(ts_cluster_node_id(c, i)), 40);
        assert_int_equal(ts_cluster_index_of_port(c, ts_cluster_port(c, i)), i);
        if (ts_cluster_is_primary(c, i)) {
            primaries++;
            assert_int_equal(ts_cluster_primary_of(c, i), -1);
            continue;
        }
        int p = ts_cluster_primary_of(c, i);
        assert_true(p >= 0 && ts_cluster_is_primary(c, p));
        replicas_of[p]++;
        assert_replica_of(ts_cluster_port(c, i), ts_cluster_port(c, p));
    }
    assert_int_equal(primaries, 3);
    for (int i = 0; i < n; i++)
        if (ts_cluster_is_primary(c, i)) assert_int_equal(replicas_of[i], 1);

    /* Every node, asked itself, covers all 16384 slots, from primaries. */
    for (int i = 0; i < n; i++) {
        aredis_reply *r = cmd(ts_cluster_port(c, i), "CLUSTER", "SLOTS", NULL);
        assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
        long long covered = 0;
        for (size_t k = 0; k < r->elements; k++) {
            const aredis_reply *e = r->element[k];
            covered += e->element[1]->integer - e->element[0]->integer + 1;
            int owner = ts_cluster_index_of_port(c, (int)e->element[2]->element[1]->integer);
            assert_true(owner >= 0 && ts_cluster_is_primary(c, owner));
        }
        assert_int_equal(covered, TS_CLUSTER_SLOTS);
        aredis_reply_free(r);
    }
    assert_true(ts_cluster_node_for_slot(c, 0) > 0);
    assert_true(ts_cluster_node_for_slot(c, TS_CLUSTER_SLOTS - 1) > 0);

    /* A key written through the library's own client, on the node owning
     * its slot, reads back; another primary redirects to that node. */
    const char *key = "fixture:key";
    int slot = ts_cluster_keyslot(c, key);
    assert_int_equal(slot, (int)integer(ts_cluster_port(c, 0), "CLUSTER", "KEYSLOT", key));
    int owner = ts_cluster_node_for_slot(c, slot);
    assert_true(ts_cluster_is_primary(c, ts_cluster_index_of_port(c, owner)));
    aredis_loop *loop = aredis_loop_new();
    assert_non_null(loop);
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = owner;
    aredis_client *cl = ts_connect(loop, &o);
    ts_cmd_ok(cl, "SET %s %s", key, "v1");
    ts_cmd_bytes(cl, "v1", 2, "GET %s", key);
    aredis_client_free(cl);
    aredis_loop_free(loop);
    for (int i = 0; i < n; i++)
        if (ts_cluster_is_primary(c, i) && ts_cluster_port(c, i) != owner)
            assert_moved(ts_cluster_port(c, i), key, slot, owner);
}

static void test_cluster_failover(void **state) {
    ts_cluster *c = *state;
    const char *key = "fixture:failover";
    int slot = ts_cluster_keyslot(c, key);
    int owner = ts_cluster_node_for_slot(c, slot);
    int victim = ts_cluster_index_of_port(c, owner);
    assert_true(victim >= 0 && ts_cluster_is_primary(c, victim));
    set_replicated(owner, key, "before");

    ts_cluster_kill(c, victim);
    assert_false(ts_cluster_is_alive(c, victim));
    int promoted = ts_cluster_wait_failover(c, victim, FAILOVER_MS);
    assert_int_equal(ts_cluster_primary_of(c, promoted), victim);
    int now = ts_cluster_port(c, promoted);
    assert_int_equal(ts_cluster_node_for_slot(c, slot), now);
    assert_get(now, key, "before");
    assert_status_ok(cmd(now, "SET", key, "after"));
    for (int i = 0; i < ts_cluster_nodes(c); i++)
        if (ts_cluster_is_alive(c, i) && i != promoted &&
            ts_cluster_is_primary(c, i)) /* primaries redirect to it */
            assert_moved(ts_cluster_port(c, i), key, slot, now);

    /* Back, the old primary is a replica of the promoted node. */
    ts_cluster_restart(c, victim);
    assert_true(ts_cluster_is_alive(c, victim));
    assert_replica_of(owner, now);
    assert_moved(owner, key, slot, now);
    assert_int_equal(ts_cluster_node_for_slot(c, slot), now);
}

static void test_cluster_migrate_slot(void **state) {
    ts_cluster *c = *state;
    enum { NKEYS = 250 }; /* three batches of GETKEYSINSLOT */
    const char *tag = "{fixture-mig}";
    int slot = ts_cluster_keyslot(c, tag);
    int from = ts_cluster_node_for_slot(c, slot), to = -1;
    for (int i = 0; i < ts_cluster_nodes(c) && to < 0; i++)
        if (ts_cluster_is_primary(c, i) && ts_cluster_port(c, i) != from)
            to = ts_cluster_port(c, i);
    assert_true(from > 0 && to > 0);

    /* One MSET: the keys share a hash tag, hence a slot. */
    static char keys[NKEYS][32], vals[NKEYS][32];
    const char *argv[1 + 2 * NKEYS];
    argv[0] = "MSET";
    for (int k = 0; k < NKEYS; k++) {
        snprintf(keys[k], sizeof keys[k], "%s:%d", tag, k);
        snprintf(vals[k], sizeof vals[k], "value-%d", k);
        argv[1 + 2 * k] = keys[k];
        argv[2 + 2 * k] = vals[k];
    }
    char err[256];
    assert_status_ok(ts_node_command(from, 1 + 2 * NKEYS, argv, NULL, err, sizeof err));
    char s[16];
    snprintf(s, sizeof s, "%d", slot);
    assert_int_equal(integer(from, "CLUSTER", "COUNTKEYSINSLOT", s), NKEYS);

    ts_cluster_migrate_slot(c, slot, to);
    assert_int_equal(ts_cluster_node_for_slot(c, slot), to);
    assert_int_equal(integer(from, "CLUSTER", "COUNTKEYSINSLOT", s), 0);
    assert_int_equal(integer(to, "CLUSTER", "COUNTKEYSINSLOT", s), NKEYS);
    assert_get(to, keys[0], vals[0]);
    assert_get(to, keys[NKEYS - 1], vals[NKEYS - 1]);
    assert_moved(from, keys[0], slot, to);
    /* No slot is left half-way: neither node still migrates or imports. */
    for (int port = from; port; port = port == from ? to : 0) {
        aredis_reply *r = cmd(port, "CLUSTER", "NODES", NULL);
        assert_int_equal(r->type, AREDIS_REPLY_STRING);
        assert_null(strstr(r->str, "->-"));
        assert_null(strstr(r->str, "-<-"));
        aredis_reply_free(r);
    }
    /* Moving it to where it is changes nothing. */
    ts_cluster_migrate_slot(c, slot, to);
    assert_int_equal(ts_cluster_node_for_slot(c, slot), to);
}

/* ---- Sentinel ----------------------------------------------------------- */

static int sentinel_setup(void **state) {
    *state = ts_sentinel_start(3);
    return 0;
}

static int sentinel_teardown(void **state) {
    ts_sentinel_stop(*state);
    return 0;
}

static void test_sentinel_failover(void **state) {
    ts_sentinel *s = *state;
    int primary = ts_sentinel_primary_port(s), replica = ts_sentinel_replica_port(s);
    assert_int_equal(ts_sentinel_count(s), 3);
    assert_int_equal(ts_sentinel_master_port(s), primary);
    for (int i = 0; i < 3; i++) {
        aredis_reply *r =
            cmd(ts_sentinel_port(s, i), "SENTINEL", "get-master-addr-by-name", TS_SENTINEL_MASTER);
        assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 2);
        assert_string_equal(r->element[0]->str, "127.0.0.1");
        assert_int_equal(atoi(r->element[1]->str), primary);
        aredis_reply_free(r);
    }
    assert_replica_of(replica, primary);
    set_replicated(primary, "fixture:sentinel", "kept");

    ts_sentinel_kill_primary(s);
    ts_sentinel_wait_failover(s, 30000);
    assert_int_equal(ts_sentinel_master_port(s), replica);
    assert_get(replica, "fixture:sentinel", "kept");
    assert_status_ok(cmd(replica, "SET", "fixture:sentinel", "new"));

    /* The old primary comes back and answers. */
    ts_sentinel_restart_primary(s);
    aredis_reply *r = cmd(primary, "PING", NULL, NULL);
    assert_int_equal(r->type, AREDIS_REPLY_STATUS);
    assert_string_equal(r->str, "PONG");
    aredis_reply_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_comes_up, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_failover, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_migrate_slot, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_sentinel_failover, sentinel_setup, sentinel_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
