/*
 * Connection pools under faults (aredis/pool.h): a server killed and
 * restarted — idle connections lost are replaced (back to min), one lost
 * while in use is replaced at its release, waiters learn why when no
 * connection can be opened; the health check on acquire after idleness
 * replaces a connection whose link went silent without the acquirer
 * noticing; and fork(): in the child the pool drops the parent's
 * connections without a byte on them and opens its own, while the
 * parent's carry on untouched.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"
#include "rec.h"
#include "ts.h"

static aredis_loop *g_loop;

typedef struct got {
    int calls;
    aredis_client *c;
    aredis_err code;
    char detail[400];
} got;

static void on_got(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data) {
    (void)p;
    got *g = data;
    g->calls++;
    g->c = c;
    g->code = err ? err->code : AREDIS_ERR_OK;
    snprintf(g->detail, sizeof g->detail, "%s", err ? err->detail : "");
}

static aredis_client *acquire_wait(aredis_pool *p) {
    got g = {0};
    assert_int_equal(aredis_pool_acquire(p, on_got, &g), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g.calls, 15000));
    if (g.code != AREDIS_ERR_OK) fail_msg("acquire: %s", g.detail);
    return g.c;
}

static aredis_pool_stats stats(const aredis_pool *p) {
    aredis_pool_stats s;
    aredis_pool_get_stats(p, &s);
    assert_int_equal(s.total, s.opening + s.idle + s.in_use + s.checking);
    assert_int_equal(s.created - s.discarded, s.idle + s.in_use + s.checking);
    return s;
}

typedef struct {
    const aredis_pool *p;
    size_t field; /* offsetof in aredis_pool_stats (a size_t or uint64_t) */
    int is64;
    uint64_t want;
} stat_wait;

static int stat_reached(const void *arg) {
    const stat_wait *w = arg;
    aredis_pool_stats s;
    aredis_pool_get_stats(w->p, &s);
    const char *b = (const char *)&s + w->field;
    uint64_t v = w->is64 ? *(const uint64_t *)(const void *)b : *(const size_t *)(const void *)b;
    return v == w->want;
}

#define WAIT_STAT(p, field, want)                                                                  \
    do {                                                                                           \
        stat_wait w_ = {(p), offsetof(aredis_pool_stats, field),                                   \
                        sizeof(((aredis_pool_stats *)0)->field) == 8 &&                            \
                            offsetof(aredis_pool_stats, field) >=                                  \
                                offsetof(aredis_pool_stats, created),                              \
                        (uint64_t)(want)};                                                         \
        if (!ts_wait_until(g_loop, stat_reached, &w_, 20000))                                      \
            fail_msg("pool stat %s never reached %llu", #field, (unsigned long long)(want));       \
    } while (0)

static void flag_set(void *arg) { *(int *)arg = 1; }
static void run_ms(uint64_t ms) {
    int flag = 0;
    aredis_timer *t = aredis_timer_new(g_loop, flag_set, &flag);
    aredis_timer_start(t, ms, 0);
    assert_true(ts_wait(g_loop, &flag, ms + 10000));
    aredis_timer_free(t);
}

static aredis_pool_options popts(int port) {
    aredis_pool_options o = AREDIS_POOL_OPTIONS_INIT;
    o.client.port = port;
    o.client.reconnect_delay_ms = 20; /* the pool's backoff between failed opens */
    o.client.max_reconnect_delay_ms = 100;
    return o;
}

static int setup(void **state) {
    (void)state;
    g_loop = aredis_loop_new();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_loop_free(g_loop);
    return 0;
}

/* ---- Server killed and restarted ------------------------------------------- */

static void test_idle_lost_replaced(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_pool_options o = popts(ts_server_port(s));
    o.min_connections = 2;
    o.max_connections = 3;
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    assert_non_null(p);
    WAIT_STAT(p, idle, 2);
    ts_server_kill(s);
    WAIT_STAT(p, discarded, 2); /* both seen lost while idle */
    ts_server_restart(s);
    WAIT_STAT(p, idle, 2); /* reopened, back to min */
    aredis_pool_stats st = stats(p);
    assert_int_equal(st.created, 4);
    assert_int_equal(st.total, 2);
    ts_log("connect failures while the server was down: %llu",
           (unsigned long long)st.connect_failures);
    aredis_future *f = aredis_pool_future_command(p, "PING");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    aredis_pool_free(p);
    ts_server_stop(s);
}

static void test_in_use_lost_replaced_at_release(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_pool_options o = popts(ts_server_port(s));
    o.max_connections = 1;
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    aredis_client *c = acquire_wait(p);
    ts_server_kill(s);
    aredis_future *f = aredis_future_command(c, "PING");
    assert_int_not_equal(aredis_await(f), AREDIS_ERR_OK); /* the user sees the loss */
    aredis_future_release(f);
    ts_server_restart(s);
    assert_int_equal(aredis_pool_release(p, c), AREDIS_ERR_OK);
    aredis_pool_stats st = stats(p);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(st.total, 0);
    c = acquire_wait(p);
    ts_cmd_ok(c, "SET %s %s", "pool:fault", "after");
    aredis_pool_release(p, c);
    st = stats(p);
    assert_int_equal(st.created, 2);
    aredis_pool_free(p);
    ts_server_stop(s);
}

/* No connection can be opened and none is left to wait for: every waiter
 * is told why at once (not after acquire_timeout_ms). */
static void test_waiters_told_why(void **state) {
    (void)state;
    int port = ts_dead_port();
    aredis_pool_options o = popts(port);
    o.max_connections = 2;
    o.acquire_timeout_ms = 60000;
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    got a = {0}, b = {0};
    ts_rec r = {0};
    aredis_pool_acquire(p, on_got, &a);
    aredis_pool_acquire(p, on_got, &b);
    aredis_pool_command(p, ts_on_rec, &r, "PING");
    assert_true(ts_wait(g_loop, &a.calls, 15000));
    assert_true(ts_wait(g_loop, &b.calls, 15000));
    ts_rec_wait(g_loop, &r, 15000);
    ts_log("acquire: %s: %s", aredis_err_name(a.code), a.detail);
    assert_int_equal(a.code, AREDIS_ERR_CONNREFUSED);
    assert_int_equal(b.code, AREDIS_ERR_CONNREFUSED);
    assert_int_equal(r.code, AREDIS_ERR_CONNREFUSED);
    assert_non_null(strstr(a.detail, "cannot open a connection"));
    ts_rec_clear(&r);
    aredis_pool_stats st = stats(p);
    assert_true(st.connect_failures >= 1);
    assert_int_equal(st.created, 0);
    assert_int_equal(st.total, 0);
    assert_int_equal(st.waiting, 0);
    /* Later ones too (after the backoff). */
    got c = {0};
    aredis_pool_acquire(p, on_got, &c);
    assert_true(ts_wait(g_loop, &c.calls, 15000));
    assert_int_equal(c.code, AREDIS_ERR_CONNREFUSED);
    aredis_pool_free(p);
}

/* The pool freed from inside on_disconnect, while that connection's
 * teardown is still failing what it carried: everything completes once,
 * nothing is touched after it is gone (ASan), and the last of the pool
 * goes on the next loop turn. */
typedef struct {
    aredis_pool *p;
    int frees;
} free_ctx;

static void free_on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)err;
    free_ctx *f = data;
    if (f->p) {
        aredis_pool_free(f->p);
        f->p = NULL;
        f->frees++;
    }
}

static void test_free_in_on_disconnect(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    free_ctx fc = {NULL, 0};
    aredis_pool_options o = popts(ts_server_port(s));
    o.min_connections = 2;
    o.max_connections = 2;
    o.client.on_disconnect = free_on_disconnect;
    o.client.cb_data = &fc;
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    fc.p = p;
    WAIT_STAT(p, idle, 2);
    ts_rec blk = {0}, ping[5];
    memset(ping, 0, sizeof ping);
    aredis_pool_command(p, ts_on_rec, &blk, "BLPOP pool:fault:none 0");
    for (int i = 0; i < 5; i++)
        aredis_pool_command(p, ts_on_rec, &ping[i], "PING");
    aredis_loop_run_once(g_loop, 0);
    ts_server_kill(s);
    assert_true(ts_wait(g_loop, &fc.frees, 15000));
    ts_rec_wait(g_loop, &blk, 15000);
    assert_int_equal(blk.calls, 1);
    assert_int_not_equal(blk.code, AREDIS_ERR_OK);
    for (int i = 0; i < 5; i++) {
        ts_rec_wait(g_loop, &ping[i], 15000);
        assert_int_equal(ping[i].calls, 1);
        ts_rec_clear(&ping[i]);
    }
    ts_rec_clear(&blk);
    run_ms(20); /* the pool's last turn */
    ts_server_stop(s);
}

/* ---- Health check on acquire after idleness ---------------------------------- */

/* An idle connection whose link went silent (no FIN, no RST: nothing
 * comes back in time): the PING before handing it out fails, and the
 * acquirer gets a new one without seeing anything. The proxy holds every
 * byte for 10 s (not dropped: the replacement's handshake, should it be
 * sent meanwhile, goes through once the proxy passes again). */
static void test_health_check_silent_link(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    ts_proxy *px = ts_proxy_start("127.0.0.1", ts_server_port(s));
    aredis_pool_options o = popts(ts_proxy_port(px));
    o.max_connections = 2;
    o.health_check_after_ms = 50;
    o.acquire_timeout_ms = 20000;
    o.client.request_timeout_ms = 300; /* the PING's deadline */
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    aredis_client *c = acquire_wait(p);
    long long id1 = ts_client_id(c);
    aredis_pool_release(p, c);
    run_ms(80); /* idle longer than health_check_after_ms */
    ts_proxy_delay(px, 10000);
    got g = {0};
    assert_int_equal(aredis_pool_acquire(p, on_got, &g), AREDIS_ERR_OK);
    WAIT_STAT(p, health_check_failures, 1);
    /* The replacement is being opened now; let its handshake through. */
    ts_proxy_pass(px);
    assert_true(ts_wait(g_loop, &g.calls, 20000));
    assert_int_equal(g.code, AREDIS_ERR_OK);
    long long id2 = ts_client_id(g.c);
    assert_true(id2 != id1);
    aredis_pool_release(p, g.c);
    aredis_pool_stats st = stats(p);
    assert_int_equal(st.health_checks, 1);
    assert_int_equal(st.health_check_failures, 1);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(st.created, 2);

    /* A healthy idle connection passes its check and is handed out. */
    run_ms(80);
    c = acquire_wait(p);
    assert_int_equal(ts_client_id(c), id2);
    aredis_pool_release(p, c);
    st = stats(p);
    assert_int_equal(st.health_checks, 2);
    assert_int_equal(st.health_check_failures, 1);
    aredis_pool_free(p);
    ts_proxy_stop(px);
    ts_server_stop(s);
}

/* The server restarted while the program did not run its loop: the pool
 * has not seen the EOF yet. The check (or, at the latest, the hand-over)
 * finds it; the acquirer gets a live connection. */
static void test_health_check_after_restart(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_pool_options o = popts(ts_server_port(s));
    o.max_connections = 1;
    o.health_check_after_ms = 1;
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    aredis_client *c = acquire_wait(p);
    aredis_pool_release(p, c);
    run_ms(20);
    ts_server_kill(s);
    ts_server_restart(s);
    c = acquire_wait(p);
    ts_cmd_ok(c, "SET %s %s", "pool:hc", "ok");
    aredis_pool_release(p, c);
    aredis_pool_stats st = stats(p);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(st.created, 2);
    assert_int_equal(st.health_checks, 1);
    aredis_pool_free(p);
    ts_server_stop(s);
}

/* ---- fork() ------------------------------------------------------------------ */

#define CK_POOL_CMD 0x01   /* a pool command in the child failed */
#define CK_FRESH 0x02      /* the child's connection was one of the parent's */
#define CK_STATS 0x04      /* the child's stats still counted the parent's connections */
#define CK_RELEASE 0x08    /* releasing an inherited connection was accepted */
#define CK_CALLBACKS 0x10  /* an inherited waiter did not fail with FORKED, once */
#define CK_AFTER_FORK 0x20 /* aredis_loop_after_fork failed */

static const ts_child_check k_checks[] = {
    {CK_POOL_CMD, "a pool command in the child failed"},
    {CK_FRESH, "the child used a connection of the parent"},
    {CK_STATS, "the child's stats counted the parent's connections"},
    {CK_RELEASE, "releasing a connection acquired before the fork was accepted"},
    {CK_CALLBACKS, "an acquire waiting at the fork did not fail once with FORKED"},
    {CK_AFTER_FORK, "aredis_loop_after_fork failed"},
};

static aredis_future *id_fn(aredis_client *c, void *data) {
    (void)data;
    return aredis_future_command(c, "CLIENT ID");
}

static int child_main(aredis_pool *p, aredis_client *held, long long id_a, long long id_b,
                      got *waiting) {
    int bad = 0;
    alarm(30);
    if (aredis_loop_after_fork(g_loop) != AREDIS_ERR_OK) bad |= CK_AFTER_FORK;
    aredis_pool_stats st;
    aredis_pool_get_stats(p, &st);
    if (st.in_use || st.idle || st.total) bad |= CK_STATS;
    if (aredis_pool_release(p, held) != AREDIS_ERR_INVALID) bad |= CK_RELEASE;
    aredis_future *f = aredis_pool_future_command(p, "INCR %s", "pool:fork:child");
    if (!f || aredis_await(f) != AREDIS_ERR_OK) bad |= CK_POOL_CMD;
    aredis_future_release(f);
    aredis_future *w = aredis_pool_with(p, id_fn, NULL);
    if (!w || aredis_await(w) != AREDIS_ERR_OK) {
        bad |= CK_POOL_CMD;
    } else {
        long long id = aredis_future_reply(w)->integer;
        if (id == id_a || id == id_b) bad |= CK_FRESH;
    }
    aredis_future_release(w);
    if (waiting->calls != 1 || waiting->code != AREDIS_ERR_FORKED) bad |= CK_CALLBACKS;
    aredis_pool_get_stats(p, &st);
    if (st.in_use != 0 || st.total > 2) bad |= CK_STATS;
    aredis_pool_free(p);
    aredis_loop_free(g_loop);
    return bad;
}

static void test_fork(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_pool_options o = popts(ts_server_port(s));
    o.min_connections = 2;
    o.max_connections = 2;
    o.acquire_timeout_ms = 30000;
    aredis_pool *p = aredis_pool_new(g_loop, &o);
    WAIT_STAT(p, idle, 2);
    aredis_client *a = acquire_wait(p);
    aredis_client *b = acquire_wait(p);
    long long id_a = ts_client_id(a), id_b = ts_client_id(b);
    aredis_pool_release(p, b);
    /* At the fork: both connections held (one with a command in flight),
     * an acquire waiting. */
    got waiting = {0};
    aredis_pool_acquire(p, on_got, &waiting);
    assert_true(ts_wait(g_loop, &waiting.calls, 15000)); /* took the idle one */
    aredis_client *c2 = waiting.c;
    memset(&waiting, 0, sizeof waiting);
    aredis_pool_acquire(p, on_got, &waiting); /* this one waits */
    aredis_future *slow = aredis_future_command(c2, "INCR %s", "pool:fork:parent");
    aredis_loop_run_once(g_loop, 0);

    pid_t pid = ts_fork();
    if (pid == 0) _exit(child_main(p, a, id_a, id_b, &waiting));
    ts_wait_child(pid, k_checks, sizeof k_checks / sizeof *k_checks);

    /* The parent: nothing was sent or read on its connections. */
    assert_int_equal(aredis_await(slow), AREDIS_ERR_OK);
    ts_assert_int(aredis_future_reply(slow), 1);
    aredis_future_release(slow);
    assert_int_equal(ts_client_id(a), id_a);
    ts_echo_tokens(a, "parent", 10, 10000, "the fork");
    assert_int_equal(waiting.calls, 0);
    aredis_pool_release(p, a);
    assert_true(ts_wait(g_loop, &waiting.calls, 15000));
    assert_int_equal(waiting.code, AREDIS_ERR_OK);
    assert_int_equal(ts_client_id(waiting.c), id_a);
    ts_echo_tokens(c2, "parent2", 10, 10000, "the fork");
    aredis_pool_release(p, waiting.c);
    aredis_pool_release(p, c2);
    aredis_future *f = aredis_pool_future_command(p, "GET %s", "pool:fork:child");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_str(aredis_future_reply(f), "1"); /* the child's INCR, on its own connection */
    aredis_future_release(f);
    aredis_pool_stats st = stats(p);
    assert_int_equal(st.discarded, 0);
    assert_int_equal(st.created, 2);
    aredis_pool_free(p);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_lost_replaced),
        cmocka_unit_test(test_in_use_lost_replaced_at_release),
        cmocka_unit_test(test_waiters_told_why),
        cmocka_unit_test(test_free_in_on_disconnect),
        cmocka_unit_test(test_health_check_silent_link),
        cmocka_unit_test(test_health_check_after_restart),
        cmocka_unit_test(test_fork),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
