/*
 * reconnect_in_child: after fork() the child makes the inherited built-in
 * loop usable (aredis_loop_after_fork) and the inherited client opens its own
 * connection on first use; the parent's connection is untouched.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts.h"

static long long client_id(aredis_client *c) {
    aredis_future *f = aredis_future_command(c, "CLIENT ID");
    long long id = aredis_await(f) == AREDIS_ERR_OK ? aredis_future_reply(f)->integer : -1;
    aredis_future_release(f);
    return id;
}

/* The child's checks, reported in its exit status (no cmocka there). */
static int child(aredis_loop *loop, aredis_client *c, long long parent_id) {
    int bad = 0;
    if (aredis_loop_after_fork(loop) != AREDIS_ERR_OK) bad |= 1;
    aredis_future *f = aredis_future_command(c, "SET fork:child %s", "from-child");
    if (aredis_await(f) != AREDIS_ERR_OK) bad |= 2;
    aredis_future_release(f);
    long long id = client_id(c);
    if (id < 0 || id == parent_id) bad |= 4; /* a connection of its own */
    aredis_client_free(c);
    aredis_loop_free(loop);
    return bad;
}

static void test_child_reconnects_parent_untouched(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = ts_options(s);
    o.reconnect_in_child = 1;
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    long long parent_id = client_id(c);
    assert_true(parent_id > 0);

    pid_t pid = ts_fork();
    if (pid == 0) _exit(child(loop, c, parent_id));
    ts_wait_child(pid, NULL, 0);

    /* The parent's connection is the same one and still answers in order. */
    assert_int_equal(client_id(c), parent_id);
    aredis_future *f = ts_cmd(c, "GET fork:child");
    assert_string_equal(aredis_future_reply(f)->str, "from-child");
    aredis_future_release(f);
    aredis_client_stats stats;
    aredis_client_get_stats(c, &stats);
    assert_int_equal(stats.connects, 1);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

/* Without the option the inherited client stays inert in the child, even on
 * a loop made usable again. */
static void test_child_without_option_is_inert(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = ts_client(loop, s);
    pid_t pid = ts_fork();
    if (pid == 0) {
        int bad = 0;
        if (aredis_loop_after_fork(loop) != AREDIS_ERR_OK) bad |= 1;
        if (aredis_command(c, NULL, NULL, "SET fork:never x") != AREDIS_ERR_FORKED) bad |= 2;
        if (aredis_client_connect(c) != AREDIS_ERR_FORKED) bad |= 4;
        aredis_client_free(c);
        aredis_loop_free(loop);
        _exit(bad);
    }
    ts_wait_child(pid, NULL, 0);
    aredis_future *f = ts_cmd(c, "EXISTS fork:never");
    assert_int_equal(aredis_future_reply(f)->integer, 0);
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_reconnects_parent_untouched),
        cmocka_unit_test(test_child_without_option_is_inert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
