/*
 * Host names are resolved off the loop thread (src/net/resolve.c): a name
 * goes to a resolver thread that wakes the loop through a watched pipe,
 * while numeric hosts are parsed at once. The resolver's getaddrinfo is
 * replaced through the test seam aredis__getaddrinfo_hook, so resolution
 * can be made slow or failing without any network ("localhost" comes from
 * /etc/hosts). Every case waits for the resolver threads to finish before it
 * ends, so that ASan's leak check sees what they freed.
 */
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "net/resolve.h"
#include "ts.h"

/* ---- Resolver hooks (they run on resolver threads) ---------------------- */

static atomic_int g_calls; /* hook calls, any hook */

/* The C library's resolver, counted. */
static int counting_gai(const char *node, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res) {
    atomic_fetch_add(&g_calls, 1);
    return getaddrinfo(node, service, hints, res);
}

/* Any name is localhost (counted): for made-up names that must work. */
static int as_localhost_gai(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res) {
    (void)node;
    atomic_fetch_add(&g_calls, 1);
    return getaddrinfo("localhost", service, hints, res);
}

/* A name that does not exist. */
static int noname_gai(const char *node, const char *service, const struct addrinfo *hints,
                      struct addrinfo **res) {
    (void)node;
    (void)service;
    (void)hints;
    (void)res;
    atomic_fetch_add(&g_calls, 1);
    return EAI_NONAME;
}

/*
 * A resolver stuck on a dead DNS server: it blocks until the test opens the
 * gate (bounded, so that a failed test cannot leave a thread stuck
 * forever), then answers with localhost's addresses, a real list for the
 * thread to free.
 */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_gate_open, g_entered;

static int gated_gai(const char *node, const char *service, const struct addrinfo *hints,
                     struct addrinfo **res) {
    (void)node;
    atomic_fetch_add(&g_calls, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&g_mu);
    g_entered++;
    pthread_cond_broadcast(&g_cv);
    int rc = 0;
    while (!g_gate_open && rc == 0)
        rc = pthread_cond_timedwait(&g_cv, &g_mu, &until);
    int open = g_gate_open;
    pthread_mutex_unlock(&g_mu);
    if (!open) return EAI_AGAIN;
    return getaddrinfo("localhost", service, hints, res);
}

static void gate_reset(void) {
    pthread_mutex_lock(&g_mu);
    g_gate_open = 0;
    g_entered = 0;
    pthread_mutex_unlock(&g_mu);
}

static void gate_open(void) {
    pthread_mutex_lock(&g_mu);
    g_gate_open = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* Block (bounded) until n resolver threads are inside gated_gai. */
static int gate_wait_entered(int n, int timeout_s) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_s;
    pthread_mutex_lock(&g_mu);
    int rc = 0;
    while (g_entered < n && rc == 0)
        rc = pthread_cond_timedwait(&g_cv, &g_mu, &until);
    int ok = g_entered >= n;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

/* Every resolver thread has returned and freed what it held (bounded). */
static int wait_resolvers_done(uint64_t timeout_ms) {
    uint64_t until = ts_now_ms() + timeout_ms;
    while (aredis__resolve_inflight() != 0) {
        if (ts_now_ms() >= until) return 0;
        usleep(1000);
    }
    return 1;
}

static void use_hook(aredis__getaddrinfo_fn *fn) {
    assert_true(wait_resolvers_done(5000)); /* no job still reads the old one */
    aredis__getaddrinfo_hook = fn;
    atomic_store(&g_calls, 0);
}

/* ---- Fixture ------------------------------------------------------------ */

static ts_server *g_srv;
static aredis_loop *g_loop;

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(NULL, 0);
    g_loop = aredis_loop_new();
    assert_non_null(g_loop);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    gate_open(); /* a failed case may have left a thread waiting */
    wait_resolvers_done(35000);
    aredis__getaddrinfo_hook = getaddrinfo;
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

static aredis_options name_options(const char *host) {
    aredis_options o = ts_options(g_srv);
    o.host = host;
    return o;
}

static void on_tick(void *arg) { (*(int *)arg)++; }

/* Connections the server has accepted so far (INFO stats). */
static long long accepted(aredis_client *probe) {
    aredis_future *f = ts_cmd(probe, "INFO stats");
    const char *at = strstr(aredis_future_reply(f)->str, "total_connections_received:");
    assert_non_null(at);
    long long n = atoll(at + strlen("total_connections_received:"));
    aredis_future_release(f);
    return n;
}

static size_t g_attempts;
static void on_attempt(aredis_client *c, unsigned attempt, uint32_t delay_ms, void *data) {
    (void)c;
    (void)attempt;
    (void)delay_ms;
    (void)data;
    g_attempts++;
}

/* ---- Cases -------------------------------------------------------------- */

/* "localhost" goes through the resolver thread (once), and the connection
 * works; a numeric host never reaches the resolver. */
static void test_localhost_roundtrip(void **state) {
    (void)state;
    use_hook(counting_gai);
    aredis_options o = name_options("localhost");
    aredis_client *c = ts_connect(g_loop, &o);
    assert_int_equal(atomic_load(&g_calls), 1);
    aredis_future *f = ts_cmd(c, "PING");
    assert_string_equal(aredis_future_reply(f)->str, "PONG");
    aredis_future_release(f);
    ts_cmd_ok(c, "SET resolve:k %s", "by-name");
    f = ts_cmd(c, "GET resolve:k");
    assert_string_equal(aredis_future_reply(f)->str, "by-name");
    aredis_future_release(f);
    aredis_client_free(c);

    o = ts_options(g_srv); /* 127.0.0.1 */
    c = ts_connect(g_loop, &o);
    assert_int_equal(atomic_load(&g_calls), 1);
    aredis_client_free(c);
    assert_true(wait_resolvers_done(5000));
}

/*
 * A resolver that hangs: the connect timeout covers resolution and fires
 * with TIMEOUT, while a 10 ms user timer on the same loop keeps ticking (the
 * loop never blocked). The late answer, when the resolver finally returns,
 * is dropped: no callback, no crash, nothing leaked.
 */
static void test_blocked_resolver_times_out(void **state) {
    (void)state;
    use_hook(gated_gai);
    gate_reset();
    aredis_options o = name_options("stuck-dns.test");
    o.connect_timeout_ms = 200;
    o.reconnect = 0;
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(g_loop, on_tick, &ticks);
    aredis_timer_start(t, 10, 10);

    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CONNECTING);
    aredis_future *ping = aredis_future_command(c, "PING"); /* waits for READY */
    char why[256];
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_TIMEOUT);
    uint64_t took = ts_now_ms() - t0;
    int during = ticks;
    ts_log("stuck resolver: TIMEOUT after %llu ms (%s); timer ticked %d times meanwhile",
           (unsigned long long)took, why, during);
    assert_non_null(strstr(why, "connect timed out"));
    assert_true(took >= 150 && took < 3000);
    assert_true(during >= 8); /* ~20 expected at 10 ms: the loop kept turning */
    assert_int_equal(aredis_await(ping), AREDIS_ERR_TIMEOUT);
    aredis_future_release(ping);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    assert_int_equal(aredis_client_last_error(c)->code, AREDIS_ERR_TIMEOUT);
    assert_true(gate_wait_entered(1, 5));

    /* Let the resolver answer now: nobody is listening any more, and no
     * stray connect reaches the server (a numeric-host probe counts). */
    aredis_client *probe = ts_client(g_loop, g_srv);
    long long conns = accepted(probe);
    gate_open();
    assert_true(wait_resolvers_done(5000));
    int before = ticks;
    while (ticks < before + 3)
        aredis_loop_run_once(g_loop, 1); /* bounded by the timer */
    assert_int_equal(accepted(probe), conns);
    aredis_client_free(probe);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    assert_int_equal(aredis_client_last_error(c)->code, AREDIS_ERR_TIMEOUT);
    assert_int_equal(atomic_load(&g_calls), 1);

    /* The client is still usable: a connect that resolves succeeds. */
    use_hook(as_localhost_gai);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, why, sizeof why), AREDIS_ERR_OK);
    assert_int_equal(atomic_load(&g_calls), 1);
    ts_cmd_ok(c, "SET resolve:after %s", "timeout");
    aredis_timer_free(t);
    aredis_client_free(c);
    assert_true(wait_resolvers_done(5000));
}

/* Freed while its name is being resolved: the command waiting for the
 * connection is cancelled, the resolver's late answer goes nowhere. */
static void test_free_while_resolving(void **state) {
    (void)state;
    use_hook(gated_gai);
    gate_reset();
    aredis_options o = name_options("slow-dns.test");
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    ts_result r = {0};
    assert_int_equal(aredis_command(c, ts_on_reply, &r, "PING"), AREDIS_ERR_OK);
    assert_true(gate_wait_entered(1, 5));
    aredis_loop_run_once(g_loop, 0);
    assert_int_equal(r.calls, 0);
    aredis_client_free(c);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, AREDIS_ERR_CANCELLED);

    /* The same with a client closed (not freed) and reconnected later. */
    gate_reset();
    aredis_client *c2 = aredis_client_new(g_loop, &o);
    assert_int_equal(aredis_client_connect(c2), AREDIS_ERR_OK);
    assert_true(gate_wait_entered(1, 5));
    aredis_client_close(c2);
    assert_int_equal(aredis_client_state(c2), AREDIS_STATE_CLOSED);

    gate_open();
    assert_true(wait_resolvers_done(5000));
    /* Give the loop turns in which a stray wake-up would be delivered. */
    int ticks = 0;
    aredis_timer *t = aredis_timer_new(g_loop, on_tick, &ticks);
    aredis_timer_start(t, 5, 5);
    while (ticks < 5)
        aredis_loop_run_once(g_loop, 1);
    aredis_timer_free(t);
    assert_int_equal(atomic_load(&g_calls), 2);
    assert_int_equal(aredis_client_state(c2), AREDIS_STATE_CLOSED);
    aredis_client_free(c2);
}

/*
 * A name that does not resolve: RESOLVE, with the host in the detail. As
 * before resolution moved off the loop, RESOLVE is retried by the reconnect
 * policy, and every attempt resolves afresh.
 */
static void test_resolve_error(void **state) {
    (void)state;
    use_hook(noname_gai);
    aredis_options o = name_options("no-such-host.test");
    o.reconnect = 0;
    aredis_client *c;
    char why[256];
    assert_int_equal(ts_connect_err(g_loop, &o, &c, why, sizeof why), AREDIS_ERR_RESOLVE);
    ts_log("no such host: %s", why);
    char want[200];
    snprintf(want, sizeof want, "cannot resolve 'no-such-host.test': %s", gai_strerror(EAI_NONAME));
    assert_string_equal(why, want);
    assert_int_equal(aredis_client_last_error(c)->code, AREDIS_ERR_RESOLVE);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    assert_int_equal(atomic_load(&g_calls), 1);
    aredis_client_free(c);

    /* With reconnection: 3 retries, each one through the resolver. */
    atomic_store(&g_calls, 0);
    g_attempts = 0;
    o.reconnect = 1;
    o.reconnect_delay_ms = 10;
    o.max_reconnect_delay_ms = 20;
    o.max_reconnect_attempts = 3;
    o.on_reconnect_attempt = on_attempt;
    o.wait_for_first_connect = 1; /* the ready future waits through them */
    assert_int_equal(ts_connect_err(g_loop, &o, &c, why, sizeof why), AREDIS_ERR_RESOLVE);
    ts_log("with reconnect: %s", why);
    assert_non_null(strstr(why, "gave up after 3 reconnect attempt(s)"));
    assert_non_null(strstr(why, "cannot resolve 'no-such-host.test'"));
    assert_int_equal(g_attempts, 3);
    assert_int_equal(atomic_load(&g_calls), 4);
    aredis_client_free(c);
    assert_true(wait_resolvers_done(5000));
}

/* The server restarts under a client connected by name: the reconnect
 * resolves the name again and gets through. */
static void test_reconnect_resolves_again(void **state) {
    (void)state;
    use_hook(counting_gai);
    aredis_options o = name_options("localhost");
    o.reconnect_delay_ms = 20;
    o.max_reconnect_delay_ms = 100;
    aredis_client *c = ts_connect(g_loop, &o);
    assert_int_equal(atomic_load(&g_calls), 1);
    ts_cmd_ok(c, "SET resolve:restart %s", "1");
    ts_server_kill(g_srv);
    ts_server_restart(g_srv);
    /* The first command finds the link dead (or waits for the reconnect);
     * a retryable one is sent again on the new connection. */
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_RETRYABLE;
    const char *argv[] = {"PING"};
    aredis_future *f = aredis_future_argv_ex(c, &co, 1, argv, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->str, "PONG");
    aredis_future_release(f);
    ts_cmd_ok(c, "SET resolve:restart %s", "2");
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    ts_log("after restart: %d resolution(s), %llu connect(s)", atomic_load(&g_calls),
           (unsigned long long)st.connects);
    assert_true(st.connects >= 2);
    assert_true(atomic_load(&g_calls) >= 2);
    aredis_client_free(c);
    assert_true(wait_resolvers_done(5000));
}

/*
 * A job that cannot even start (no descriptor left for its wake-up socket pair):
 * the failure is typed RESOLVE and, like every failure found inside
 * aredis_client_connect(), reported from the loop, not from the call.
 */
static int g_errors;
static void on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    (void)err;
    (void)data;
    g_errors++;
}

static void test_cannot_start_job(void **state) {
    (void)state;
    use_hook(counting_gai);
    aredis_options o = name_options("localhost");
    o.reconnect = 0;
    o.on_error = on_error;
    g_errors = 0;
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    /* The lowest free descriptor number becomes the limit: no new fd. */
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(probe >= 0);
    close(probe);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)probe;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    aredis_err e = aredis_client_connect(c);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(e, AREDIS_ERR_OK);
    assert_int_equal(g_errors, 0); /* not from inside the call */
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CONNECTING);
    aredis_future *ready = aredis_future_ready(c);
    assert_int_equal(aredis_await(ready), AREDIS_ERR_RESOLVE);
    ts_log("no wake-up socket: %s", aredis_future_error(ready)->detail);
    assert_non_null(strstr(aredis_future_error(ready)->detail, "cannot resolve 'localhost'"));
    assert_non_null(strstr(aredis_future_error(ready)->detail, "wake-up socket"));
    assert_int_equal(g_errors, 1);
    assert_int_equal(atomic_load(&g_calls), 0);
    aredis_future_release(ready);
    aredis_client_free(c);
}

/*
 * A dead DNS server cannot pile up resolver threads: with
 * AREDIS__RESOLVE_MAX_INFLIGHT threads stuck, the next name fails at once
 * with RESOLVE (saying why, from the loop, without starting a thread), and
 * names resolve again once the stuck threads return.
 */
static void test_inflight_cap(void **state) {
    (void)state;
    use_hook(gated_gai);
    gate_reset();
    enum { CAP = AREDIS__RESOLVE_MAX_INFLIGHT };
    aredis_client *stuck[CAP];
    aredis_options o = name_options("stuck-dns.test");
    o.reconnect = 0;
    for (int i = 0; i < CAP; i++) {
        stuck[i] = aredis_client_new(g_loop, &o);
        assert_non_null(stuck[i]);
        assert_int_equal(aredis_client_connect(stuck[i]), AREDIS_ERR_OK);
    }
    assert_true(gate_wait_entered(CAP, 10));
    assert_int_equal(aredis__resolve_inflight(), CAP);

    aredis_client *c;
    char why[256];
    aredis_options over = name_options("one-too-many.test");
    over.reconnect = 0;
    assert_int_equal(ts_connect_err(g_loop, &over, &c, why, sizeof why), AREDIS_ERR_RESOLVE);
    ts_log("over the cap: %s", why);
    assert_non_null(strstr(why, "cannot resolve 'one-too-many.test'"));
    assert_non_null(strstr(why, "already in flight"));
    assert_int_equal(atomic_load(&g_calls), CAP); /* no thread for it */
    aredis_client_free(c);

    /* A forked child has none of those threads: the cap counts from zero
     * there, so a name resolves (on a thread of the child's own). */
    pid_t pid = ts_fork();
    if (pid == 0) {
        aredis__getaddrinfo_hook = NULL; /* the C library's resolver */
        aredis_loop *loop = aredis_loop_new();
        aredis_options co = name_options("localhost");
        co.reconnect = 0;
        aredis_client *cc = aredis_client_new(loop, &co);
        int ok = cc && aredis_client_connect(cc) == AREDIS_ERR_OK;
        aredis_future *f = ok ? aredis_future_command(cc, "SET resolve:child %s", "ok") : NULL;
        ok = f && aredis_await(f) == AREDIS_ERR_OK;
        if (!ok && f) fprintf(stderr, "# child: %s\n", aredis_future_error(f)->detail);
        aredis_future_release(f);
        aredis_client_free(cc);
        aredis_loop_free(loop);
        _exit(ok ? 0 : 1);
    }
    ts_wait_child(pid, NULL, 0);
    assert_int_equal(aredis__resolve_inflight(), CAP); /* the parent's count is untouched */

    /* The stuck ones are given up (their threads still run), then answer. */
    for (int i = 0; i < CAP; i++)
        aredis_client_free(stuck[i]);
    gate_open();
    assert_true(wait_resolvers_done(10000));
    o.host = "localhost";
    c = ts_connect(g_loop, &o);
    ts_cmd_ok(c, "SET resolve:cap %s", "ok");
    aredis_client_free(c);
    assert_true(wait_resolvers_done(5000));
}

/*
 * fork() while names are being resolved: the child's copies of the clients
 * have no resolver thread behind their jobs (threads are not copied). An
 * inert copy is freed in the child without a crash; a copy with
 * reconnect_in_child drops the inherited job and resolves afresh on a thread
 * of its own. The parent's resolutions carry on untouched and connect.
 */
static int child_main(aredis_client *inert, aredis_client *adopt) {
    aredis__getaddrinfo_hook = as_localhost_gai; /* the child's own jobs */
    aredis_client_free(inert);
    if (aredis_loop_after_fork(g_loop) != AREDIS_ERR_OK) return 2;
    aredis_future *f = aredis_future_command(adopt, "PING");
    if (!f) return 3;
    aredis_err e = aredis_await(f);
    int ok = e == AREDIS_ERR_OK && strcmp(aredis_future_reply(f)->str, "PONG") == 0;
    aredis_future_release(f);
    aredis_client_free(adopt);
    aredis_loop_free(g_loop);
    return ok ? 0 : 10 + (int)e;
}

static void test_fork_while_resolving(void **state) {
    (void)state;
    use_hook(gated_gai);
    gate_reset();
    aredis_options o = name_options("forked-dns.test");
    aredis_client *inert = aredis_client_new(g_loop, &o);
    o.reconnect_in_child = 1;
    aredis_client *adopt = aredis_client_new(g_loop, &o);
    assert_non_null(inert);
    assert_non_null(adopt);
    assert_int_equal(aredis_client_connect(inert), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_connect(adopt), AREDIS_ERR_OK);
    assert_true(gate_wait_entered(2, 5));
    pid_t pid = ts_fork();
    if (pid == 0) _exit(child_main(inert, adopt));
    ts_wait_child(pid, NULL, 0);
    /* The parent's jobs are untouched: let them answer, and connect. */
    gate_open();
    char why[256];
    assert_int_equal(ts_await_ready(inert, why, sizeof why), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(adopt, why, sizeof why), AREDIS_ERR_OK);
    ts_cmd_ok(inert, "SET resolve:fork %s", "parent");
    ts_cmd_ok(adopt, "SET resolve:fork2 %s", "parent");
    aredis_client_free(inert);
    aredis_client_free(adopt);
    assert_true(wait_resolvers_done(5000));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_localhost_roundtrip),
        cmocka_unit_test(test_blocked_resolver_times_out),
        cmocka_unit_test(test_free_while_resolving),
        cmocka_unit_test(test_resolve_error),
        cmocka_unit_test(test_reconnect_resolves_again),
        cmocka_unit_test(test_cannot_start_job),
        cmocka_unit_test(test_inflight_cap),
        cmocka_unit_test(test_fork_while_resolving),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
