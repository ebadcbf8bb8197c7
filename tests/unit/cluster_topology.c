/*
 * Reading a cluster's topology (src/features/cluster_topology.c), no
 * server: CLUSTER SHARDS in RESP3 and RESP2 and CLUSTER SLOTS give the same
 * slot owners and replicas; a node that does not know its address gets the
 * one asked; an unknown endpoint ("?") leaves its slots unserved; a failed
 * node is marked; malformed replies are refused whole, saying why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/cluster_topology.h"
#include "ts.h"

/* ---- Building replies: RESP text, parsed by the library's reader ---------- */

static char g_buf[16384];
static size_t g_len;
static int g_resp3;

static void put(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_buf + g_len, sizeof g_buf - g_len, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof g_buf - g_len);
    g_len += (size_t)n;
}
static void arr(int n) { put("*%d\r\n", n); }
static void map(int pairs) {
    if (g_resp3)
        put("%%%d\r\n", pairs);
    else
        put("*%d\r\n", 2 * pairs);
}
static void str(const char *s) { put("$%zu\r\n%s\r\n", strlen(s), s); }
static void num(long long v) { put(":%lld\r\n", v); }

static aredis_reply *parse(void) {
    aredis_reader *rd = aredis_reader_new(NULL, NULL);
    assert_non_null(rd);
    assert_int_equal(aredis_reader_feed(rd, g_buf, g_len), AREDIS_ERR_OK);
    void *r = NULL;
    assert_int_equal(aredis_reader_get_reply(rd, &r), AREDIS_ERR_OK);
    assert_non_null(r);
    aredis_reader_free(rd);
    g_len = 0;
    return r;
}

/* One node of a CLUSTER SHARDS reply. */
static void shard_node(const char *id, int port, const char *ip, const char *endpoint,
                       const char *role, const char *health) {
    map(7);
    str("id");
    str(id);
    str("port");
    num(port);
    str("ip");
    str(ip);
    str("endpoint");
    str(endpoint);
    str("role");
    str(role);
    str("replication-offset");
    num(100);
    str("health");
    str(health);
}

/* Three shards (slots 0-5460, 5461-10922 and 10923-16383, the second also
 * owning a stray range), each a primary and a replica. */
static aredis_reply *three_shards(int resp3) {
    g_resp3 = resp3;
    arr(3);
    map(2);
    str("slots");
    arr(2);
    num(0);
    num(5460);
    str("nodes");
    arr(2);
    shard_node("a1", 7001, "127.0.0.1", "127.0.0.1", "master", "online");
    shard_node("a2", 7004, "127.0.0.1", "127.0.0.1", "replica", "online");
    map(2);
    str("slots");
    arr(2);
    num(5461);
    num(10922);
    str("nodes");
    arr(2);
    shard_node("b2", 7005, "127.0.0.1", "127.0.0.1", "replica", "failed");
    shard_node("b1", 7002, "127.0.0.1", "127.0.0.1", "master", "online");
    map(2);
    str("slots");
    arr(2);
    num(10923);
    num(16383);
    str("nodes");
    arr(2);
    shard_node("c1", 7003, "127.0.0.1", "127.0.0.1", "master", "online");
    shard_node("c2", 7006, "127.0.0.1", "127.0.0.1", "replica", "loading");
    return parse();
}

/* The same cluster as CLUSTER SLOTS describes it. */
static aredis_reply *three_slot_ranges(void) {
    static const struct {
        int lo, hi, p, r;
        const char *pid, *rid;
    } rg[] = {{0, 5460, 7001, 7004, "a1", "a2"},
              {5461, 10922, 7002, 7005, "b1", "b2"},
              {10923, 16383, 7003, 7006, "c1", "c2"}};
    g_resp3 = 0;
    arr(3);
    for (int i = 0; i < 3; i++) {
        arr(4);
        num(rg[i].lo);
        num(rg[i].hi);
        arr(3);
        str("127.0.0.1");
        num(rg[i].p);
        str(rg[i].pid);
        arr(3);
        str("127.0.0.1");
        num(rg[i].r);
        str(rg[i].rid);
    }
    return parse();
}

static void check_three(const aredis__ctopo *t, int with_health) {
    assert_int_equal(t->nnodes, 6);
    assert_int_equal(t->covered, AREDIS__SLOTS);
    static const struct {
        unsigned slot;
        int port;
    } at[] = {{0, 7001}, {5460, 7001}, {5461, 7002}, {10922, 7002}, {10923, 7003}, {16383, 7003}};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        const aredis__cnode *n = aredis__ctopo_owner(t, at[i].slot);
        assert_non_null(n);
        assert_int_equal(n->port, at[i].port);
        assert_string_equal(n->host, "127.0.0.1");
        assert_true(n->primary);
    }
    /* "foo" is slot 12182: the third primary's. */
    assert_int_equal(aredis__ctopo_owner(t, aredis__key_slot("foo", 3))->port, 7003);
    /* Replicas point at their primaries. */
    for (int port = 7004; port <= 7006; port++) {
        int i = aredis__ctopo_find(t, "127.0.0.1", port);
        assert_true(i >= 0);
        const aredis__cnode *r = &t->nodes[i];
        assert_false(r->primary);
        assert_true(r->of >= 0);
        assert_int_equal(t->nodes[r->of].port, port - 3);
        assert_int_equal(r->id[1], '2');
        if (with_health) assert_int_equal(r->healthy, port == 7004);
    }
    assert_int_equal(aredis__ctopo_find(t, "127.0.0.1", 7999), -1);
}

/* One shard whose node lists "port" and/or "tls-port" (0: left out). */
static aredis_reply *tls_shard(int port, int tport) {
    g_resp3 = 1;
    arr(1);
    map(2);
    str("slots");
    arr(2);
    num(0);
    num(16383);
    str("nodes");
    arr(1);
    map(3 + (port > 0) + (tport > 0));
    str("id");
    str("t1");
    if (port > 0) {
        str("port");
        num(port);
    }
    if (tport > 0) {
        str("tls-port");
        num(tport);
    }
    str("ip");
    str("127.0.0.1");
    str("role");
    str("master");
    return parse();
}

/* A TLS-only cluster (port 0) lists only tls-port; with both, a TLS client
 * uses tls-port and a plain one port; neither is refused. */
static void test_tls_port(void **state) {
    (void)state;
    static const struct {
        int port, tport, tls, want;
    } cases[] = {{0, 7443, 1, 7443},    {0, 7443, 0, 7443}, {7000, 7443, 1, 7443},
                 {7000, 7443, 0, 7000}, {7000, 0, 1, 7000}, {0, 0, 1, -1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aredis_reply *r = tls_shard(cases[i].port, cases[i].tport);
        const char *why = NULL;
        aredis__ctopo *t = aredis__ctopo_from_shards(r, "h", cases[i].tls, &why);
        if (cases[i].want < 0) {
            assert_null(t);
            assert_non_null(strstr(why, "port"));
        } else {
            assert_non_null(t);
            assert_int_equal(aredis__ctopo_owner(t, 5)->port, cases[i].want);
        }
        aredis__ctopo_free(t);
        aredis_reply_free(r);
    }
}

static void test_shards_resp3_resp2_slots_agree(void **state) {
    (void)state;
    const char *why = NULL;
    for (int resp3 = 0; resp3 <= 1; resp3++) {
        aredis_reply *r = three_shards(resp3);
        aredis__ctopo *t = aredis__ctopo_from_shards(r, "127.0.0.1", 0, &why);
        assert_non_null(t);
        check_three(t, 1);
        aredis__ctopo_free(t);
        aredis_reply_free(r);
    }
    aredis_reply *r = three_slot_ranges();
    aredis__ctopo *t = aredis__ctopo_from_slots(r, "127.0.0.1", 0, &why);
    assert_non_null(t);
    check_three(t, 0);
    aredis__ctopo_free(t);
    aredis_reply_free(r);
}

/* A one-node cluster does not know its IP (""): the address asked. An
 * unknown endpoint ("?") serves nothing. */
static void test_addresses(void **state) {
    (void)state;
    g_resp3 = 1;
    arr(2);
    map(2);
    str("slots");
    arr(4);
    num(0);
    num(99);
    num(200);
    num(16383);
    str("nodes");
    arr(1);
    shard_node("solo", 7801, "", "", "master", "online");
    map(2);
    str("slots");
    arr(2);
    num(100);
    num(199);
    str("nodes");
    arr(1);
    shard_node("lost", 7802, "10.0.0.9", "?", "master", "online");
    aredis_reply *r = parse();
    const char *why = NULL;
    aredis__ctopo *t = aredis__ctopo_from_shards(r, "localhost", 0, &why);
    assert_non_null(t);
    assert_string_equal(aredis__ctopo_owner(t, 0)->host, "localhost");
    assert_int_equal(aredis__ctopo_owner(t, 16383)->port, 7801);
    assert_null(aredis__ctopo_owner(t, 150)); /* behind "?" */
    assert_int_equal(t->covered, AREDIS__SLOTS - 100);
    aredis__ctopo_free(t);
    aredis_reply_free(r);
}

static void test_malformed_refused(void **state) {
    (void)state;
    const char *why = NULL;
    /* Not an array. */
    g_resp3 = 0;
    str("nope");
    aredis_reply *r = parse();
    assert_null(aredis__ctopo_from_shards(r, "h", 0, &why));
    assert_non_null(strstr(why, "not an array"));
    assert_null(aredis__ctopo_from_slots(r, "h", 0, &why));
    aredis_reply_free(r);
    /* A slot past 16383. */
    arr(1);
    arr(3);
    num(0);
    num(16384);
    arr(2);
    str("127.0.0.1");
    num(7001);
    r = parse();
    assert_null(aredis__ctopo_from_slots(r, "h", 0, &why));
    assert_non_null(strstr(why, "out of bounds"));
    aredis_reply_free(r);
    /* A shard node without a port. */
    g_resp3 = 1;
    arr(1);
    map(2);
    str("slots");
    arr(2);
    num(0);
    num(10);
    str("nodes");
    arr(1);
    map(1);
    str("role");
    str("master");
    r = parse();
    assert_null(aredis__ctopo_from_shards(r, "h", 0, &why));
    assert_non_null(strstr(why, "without port"));
    aredis_reply_free(r);
    /* A range given backwards. */
    g_resp3 = 0;
    arr(1);
    arr(3);
    num(10);
    num(5);
    arr(2);
    str("127.0.0.1");
    num(7001);
    r = parse();
    assert_null(aredis__ctopo_from_slots(r, "h", 0, &why));
    aredis_reply_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_resp3_resp2_slots_agree),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_tls_port),
        cmocka_unit_test(test_malformed_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
