/* labels: cluster */
/*
 * A failover, the hard way: the primary is killed (SIGKILL) while an
 * application keeps writing and reading through a Sentinel client with the
 * default reconnect policy (delays shortened). The application changes
 * nothing: once the sentinels have promoted the replica, the client is on
 * it (the replica's port, ROLE master) and the writes succeed there. On the
 * way, only the commands in flight at the kill fail (a connection error),
 * every callback runs once, and no reply reaches another command
 * (writer.h). What was written after the move is on the new primary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentinel.h"
#include "ts.h"
#include "writer.h"

#define g_loop ts_case_loop()

static void test_kill_primary(void **state) {
    (void)state;
    ts_sentinel *ts = ts_sentinel_start(3);
    char addr[3][32];
    const char *list[3];
    for (int i = 0; i < 3; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", ts_sentinel_port(ts, i));
        list[i] = addr[i];
    }
    aredis_sentinel_options so = AREDIS_SENTINEL_OPTIONS_INIT;
    so.sentinels = list;
    so.nsentinels = 3;
    so.master_name = TS_SENTINEL_MASTER;
    so.node.reconnect_delay_ms = 50;
    so.node.max_reconnect_delay_ms = 500;
    so.node.request_timeout_ms = 30000; /* the writes wait out the failover */
    aredis_client *c = aredis_sentinel_client_new(g_loop, &so);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    int port = 0;
    assert_int_equal(aredis_sentinel_current(c, NULL, 0, &port), AREDIS_ERR_OK);
    assert_int_equal(port, ts_sentinel_primary_port(ts));

    writer w;
    writer_start(&w, c, 4);
    w.target_port = ts_sentinel_replica_port(ts);
    assert_true(ts_wait_until(g_loop, writer_ok_200, &w, 10000));
    uint64_t t0 = ts_now_ms();
    ts_sentinel_kill_primary(ts);
    /* No application change: the same writer goes on, and succeeds on the
     * promoted replica. */
    if (!ts_wait_until(g_loop, writer_moved_and_writing, &w, 40000))
        fail_msg("not writing on the new primary after 40 s: %zu pairs there, %zu errors (%s)",
                 w.ok_on_target, w.conn_errors, aredis_client_last_error(c)->detail);
    ts_log("writing on the new primary %llu ms after the kill",
           (unsigned long long)(ts_now_ms() - t0));
    writer_finish(&w, g_loop);
    assert_true(w.conn_errors >= 1); /* the kill was noticed: in-flight commands failed */

    assert_int_equal(aredis_sentinel_current(c, NULL, 0, &port), AREDIS_ERR_OK);
    assert_int_equal(port, ts_sentinel_replica_port(ts));
    /* The sentinels agree (the ones that did not lead the failover learn
     * it a moment later). */
    ts_sentinel_wait_failover(ts, 20000);
    aredis_future *f = ts_cmd(c, "ROLE");
    assert_string_equal(aredis_future_reply(f)->element[0]->str, "master");
    aredis_future_release(f);
    /* The last pair read back is on the new primary itself. */
    char key[32], val[32];
    snprintf(key, sizeof key, "wk:%ld", w.last_ok);
    snprintf(val, sizeof val, "v%ld", w.last_ok);
    aredis_reply *r = ts_node_cmd(ts_sentinel_replica_port(ts), "GET", key, (char *)NULL);
    assert_non_null(r);
    assert_int_equal(r->type, AREDIS_REPLY_STRING);
    assert_string_equal(r->str, val);
    aredis_reply_free(r);
    aredis_sentinel_stats st;
    assert_int_equal(aredis_sentinel_get_stats(c, &st), AREDIS_ERR_OK);
    ts_log("lookups %llu (failed %llu), moves %llu, switches %llu, relocations %llu",
           (unsigned long long)st.lookups, (unsigned long long)st.lookup_failures,
           (unsigned long long)st.moves, (unsigned long long)st.switches,
           (unsigned long long)st.relocations);
    assert_true(st.lookups >= 2);
    assert_int_equal(st.moves, 1);
    aredis_client_free(c);
    ts_sentinel_stop(ts);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_kill_primary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
