/* labels: cluster */
/*
 * A failover with the old primary still up (SENTINEL FAILOVER mymaster):
 * the old primary keeps accepting the client's writes until the sentinels
 * get round to demoting it, so only the +switch-master announcement can
 * move the client promptly. With the writer of writer.h running, the client
 * is on the promoted replica soon after the switch, and it left the old
 * primary on its own (the connection ended with the client's own reason,
 * naming +switch-master, not because the server closed it), once. The same
 * with watch = 0: the client stays on the old primary for as long as that
 * one keeps its connection (the lost connection, not the announcement,
 * moves it later).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentinel.h"
#include "ts.h"
#include "writer.h"

#define g_loop ts_case_loop()

typedef struct events {
    size_t disconnects;
    char first_disconnect[256];
} events;

static void ev_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    events *e = data;
    if (!e->disconnects++)
        snprintf(e->first_disconnect, sizeof e->first_disconnect, "%s", err->detail);
}

static int watching(const void *arg) {
    aredis_sentinel_stats st;
    aredis_sentinel_get_stats(arg, &st);
    return st.watch_connects >= 1;
}

static int on_port(const void *arg) {
    const writer *w = arg;
    int port = -1;
    aredis_sentinel_current(w->c, NULL, 0, &port);
    return port == w->target_port && aredis_client_state(w->c) == AREDIS_STATE_READY;
}

static aredis_client *client_for(ts_sentinel *ts, const char **list, events *ev, int watch) {
    aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;
    so.sentinels = list;
    so.nsentinels = 3;
    so.master_name = TS_SENTINEL_MASTER;
    so.watch = watch;
    so.node.reconnect_delay_ms = 50;
    so.node.max_reconnect_delay_ms = 500;
    so.node.request_timeout_ms = 30000;
    so.node.on_disconnect = ev_disconnect;
    so.node.cb_data = ev;
    aredis_client *c = aredis_sentinel_client_new(g_loop, &so);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    int port = 0;
    assert_int_equal(aredis_sentinel_current(c, NULL, 0, &port), AREDIS_ERR_OK);
    assert_int_equal(port, ts_sentinel_primary_port(ts));
    return c;
}

static void test_switch_master(void **state) {
    (void)state;
    ts_sentinel *ts = ts_sentinel_start(3);
    char addr[3][32];
    const char *list[3];
    for (int i = 0; i < 3; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", ts_sentinel_port(ts, i));
        list[i] = addr[i];
    }
    int old_port = ts_sentinel_primary_port(ts), new_port = ts_sentinel_replica_port(ts);
    events ev = {0}, quiet_ev = {0};
    aredis_client *c = client_for(ts, list, &ev, 1);
    aredis_client *quiet = client_for(ts, list, &quiet_ev, 0);
    assert_true(ts_wait_until(g_loop, watching, c, 10000));
    aredis_sentinel_stats st;
    assert_int_equal(aredis_sentinel_get_stats(quiet, &st), AREDIS_ERR_OK);
    assert_int_equal(st.watch_connects, 0);

    writer w;
    writer_start(&w, c, 4);
    w.target_port = new_port;
    assert_true(ts_wait_until(g_loop, writer_ok_200, &w, 10000));
    uint64_t t0 = ts_now_ms();
    aredis_reply *r = ts_node_cmd(ts_sentinel_port(ts, 1), "SENTINEL", "FAILOVER",
                                  TS_SENTINEL_MASTER, (char *)NULL);
    assert_non_null(r);
    if (r->type != AREDIS_REPLY_STATUS) fail_msg("SENTINEL FAILOVER: %s", r->str ? r->str : "?");
    aredis_reply_free(r);

    if (!ts_wait_until(g_loop, on_port, &w, 20000))
        fail_msg("the client did not move to port %d: %s", new_port,
                 aredis_client_last_error(c)->detail);
    ts_log("on the new primary %llu ms after SENTINEL FAILOVER",
           (unsigned long long)(ts_now_ms() - t0));
    /* It left on its own, because of the announcement. */
    assert_int_equal(ev.disconnects, 1);
    if (!strstr(ev.first_disconnect, "(+switch-master)"))
        fail_msg("the connection ended with [%s], not the client's own move", ev.first_disconnect);
    assert_int_equal(aredis_sentinel_get_stats(c, &st), AREDIS_ERR_OK);
    assert_true(st.switches >= 1);
    assert_true(st.relocations >= 1);
    assert_int_equal(st.moves, 1);
    /* The one without the watch moved only if its connection was closed
     * under it (the sentinels demote the old primary with CLIENT KILL):
     * never because of the announcement. */
    int qport = 0;
    assert_int_equal(aredis_sentinel_current(quiet, NULL, 0, &qport), AREDIS_ERR_OK);
    assert_int_equal(aredis_sentinel_get_stats(quiet, &st), AREDIS_ERR_OK);
    assert_int_equal(st.relocations, 0);
    assert_int_equal(st.switches, 0);
    if (qport == old_port) {
        assert_int_equal(quiet_ev.disconnects, 0);
    } else {
        assert_int_equal(qport, new_port);
        assert_true(quiet_ev.disconnects >= 1);
        assert_null(strstr(quiet_ev.first_disconnect, "switch-master"));
    }
    ts_log("the client without the watch is on port %d (%s)", qport,
           qport == old_port ? "still the old primary" : "moved by a lost connection");

    /* Writing on the new primary, no application change. */
    w.ok_on_target = 0;
    assert_true(ts_wait_until(g_loop, writer_moved_and_writing, &w, 20000));
    writer_finish(&w, g_loop);
    aredis_future *f = ts_cmd(c, "ROLE");
    assert_string_equal(aredis_future_reply(f)->element[0]->str, "master");
    aredis_future_release(f);
    aredis_client_free(quiet);
    aredis_client_free(c);
    ts_sentinel_stop(ts);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_switch_master),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
