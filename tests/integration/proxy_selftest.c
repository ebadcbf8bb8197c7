/*
 * Self-test of the fault-injecting proxy (tests/support/proxy.h): a real
 * redis-server behind it, and plain blocking sockets as clients. Every wait
 * is a blocking read with a timeout (SO_RCVTIMEO), never a sleep.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"
#include "ts.h"

static ts_server *g_srv;

/* ---- blocking client helpers ------------------------------------------- */

static void set_rcvtimeo(int fd, uint64_t ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (ms == 0) tv.tv_usec = 1000; /* 0 would mean "block forever" */
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
}

/* Connect to 127.0.0.1:port; the fd, or -errno. */
static int cli_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    set_rcvtimeo(fd, 3000);
    return fd;
}

static int cli(const ts_proxy *p) {
    int fd = cli_connect(ts_proxy_port(p));
    if (fd < 0) fail_msg("connect to the proxy: %s", strerror(-fd));
    return fd;
}

static void cli_send(int fd, const void *buf, size_t n) {
    const char *b = buf;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail_msg("send: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
}

static void cli_sends(int fd, const char *s) { cli_send(fd, s, strlen(s)); }

/*
 * Read until n bytes arrived, EOF, an error, or timeout_ms passed. Returns
 * the byte count; *how is 0 if n bytes arrived, 1 on EOF, else the errno
 * (EAGAIN on timeout).
 */
static size_t cli_read(int fd, void *buf, size_t n, uint64_t timeout_ms, int *how) {
    char *b = buf;
    size_t got = 0;
    uint64_t until = ts_now_ms() + timeout_ms;
    *how = 0;
    while (got < n) {
        uint64_t now = ts_now_ms();
        if (now >= until) {
            *how = EAGAIN;
            break;
        }
        set_rcvtimeo(fd, until - now);
        ssize_t r = recv(fd, b + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0) {
            *how = 1;
            break;
        } else if (errno != EINTR) {
            *how = errno == EWOULDBLOCK ? EAGAIN : errno;
            break;
        }
    }
    return got;
}

static void expect_bytes(int fd, const char *want, size_t n) {
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    int how;
    size_t got = cli_read(fd, buf, n, 3000, &how);
    if (got != n)
        fail_msg("wanted %zu bytes, got %zu (%s)", n, got, how == 1 ? "EOF" : strerror(how));
    assert_memory_equal(buf, want, n);
    free(buf);
}

static void expect_pong(int fd) {
    cli_sends(fd, "PING\r\n");
    expect_bytes(fd, "+PONG\r\n", 7);
}

/* Nothing arrives within ms: the read times out. */
static void expect_silence(int fd, uint64_t ms) {
    char c;
    int how;
    size_t got = cli_read(fd, &c, 1, ms, &how);
    assert_int_equal(got, 0);
    assert_int_equal(how, EAGAIN);
}

/* The next read reports EOF (after discarding at most a few stray bytes:
 * none expected). */
static void expect_eof(int fd) {
    char buf[64];
    int how;
    size_t got = cli_read(fd, buf, sizeof buf, 3000, &how);
    assert_int_equal(got, 0);
    assert_int_equal(how, 1);
}

/* CPU time of the whole process (the proxy thread included), in ms. */
static uint64_t cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static ts_proxy *proxy(void) { return ts_proxy_start("127.0.0.1", ts_server_port(g_srv)); }

/* ---- tests --------------------------------------------------------------- */

static void test_pass(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    assert_true(ts_proxy_port(p) > 0);
    assert_int_not_equal(ts_proxy_port(p), ts_server_port(g_srv));
    int fd = cli(p);
    for (int i = 0; i < 5; i++)
        expect_pong(fd);
    /* Pipelined: 200 PINGs in one write, 200 PONGs back. */
    char *many = malloc(200 * 6 + 1), *pongs = malloc(200 * 7 + 1);
    assert_non_null(many);
    assert_non_null(pongs);
    many[0] = pongs[0] = 0;
    for (int i = 0; i < 200; i++) {
        strcat(many, "PING\r\n");
        strcat(pongs, "+PONG\r\n");
    }
    cli_sends(fd, many);
    expect_bytes(fd, pongs, 200 * 7);
    free(many);
    free(pongs);
    /* A value bigger than the proxy's 1 MiB buffer, both ways (backpressure,
     * partial writes), compared whole. */
    size_t vlen = 3u << 20;
    char *val = malloc(vlen);
    assert_non_null(val);
    for (size_t i = 0; i < vlen; i++)
        val[i] = (char)('a' + (i * 7 + i / 251) % 26);
    char hdr[96];
    snprintf(hdr, sizeof hdr, "*3\r\n$3\r\nSET\r\n$9\r\nproxy:big\r\n$%zu\r\n", vlen);
    cli_sends(fd, hdr);
    cli_send(fd, val, vlen);
    cli_sends(fd, "\r\n");
    expect_bytes(fd, "+OK\r\n", 5);
    cli_sends(fd, "GET proxy:big\r\n");
    snprintf(hdr, sizeof hdr, "$%zu\r\n", vlen);
    expect_bytes(fd, hdr, strlen(hdr));
    expect_bytes(fd, val, vlen);
    expect_bytes(fd, "\r\n", 2);
    free(val);
    assert_int_equal(ts_proxy_accepted(p), 1);
    assert_int_equal(ts_proxy_open(p), 1);
    /* Half-close: the client's EOF reaches the server after its PING; the
     * PONG comes back, then the server's EOF. */
    cli_sends(fd, "PING\r\n");
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    expect_bytes(fd, "+PONG\r\n", 7);
    expect_eof(fd);
    close(fd);
    /* The proxy closed the pair when it forwarded the last EOF, before its
     * next command. */
    assert_int_equal(ts_proxy_open(p), 0);
    assert_int_equal(ts_proxy_accepted(p), 1);
    ts_proxy_stop(p);
}

static void test_close_all(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int a = cli(p), b = cli(p);
    expect_pong(a);
    expect_pong(b);
    assert_int_equal(ts_proxy_open(p), 2);
    ts_proxy_close_all(p);
    assert_int_equal(ts_proxy_open(p), 0);
    expect_eof(a);
    expect_eof(b);
    close(a);
    close(b);
    /* Still accepting, still forwarding. */
    int c = cli(p);
    expect_pong(c);
    close(c);
    assert_int_equal(ts_proxy_accepted(p), 3);
    ts_proxy_stop(p);
}

static void test_reset_all(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int fd = cli(p);
    expect_pong(fd);
    ts_proxy_reset_all(p);
    assert_int_equal(ts_proxy_open(p), 0);
    char c;
    int how;
    assert_int_equal(cli_read(fd, &c, 1, 3000, &how), 0);
    assert_int_equal(how, ECONNRESET);
    close(fd);
    int fd2 = cli(p);
    expect_pong(fd2);
    close(fd2);
    ts_proxy_stop(p);
}

static void test_blackhole(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int a = cli(p);
    expect_pong(a);
    ts_proxy_blackhole(p, 1);
    /* An existing connection freezes: its PING is lost. */
    cli_sends(a, "PING\r\n");
    expect_silence(a, 300);
    /* A new connection is accepted, but nothing goes through. */
    int b = cli(p);
    cli_sends(b, "PING\r\n");
    expect_silence(b, 300);
    assert_int_equal(ts_proxy_accepted(p), 2);
    assert_int_equal(ts_proxy_open(p), 2);
    ts_proxy_blackhole(p, 0);
    /* A new connection works. */
    int c = cli(p);
    expect_pong(c);
    /* The old ones resume; what was sent during the blackhole was dropped:
     * exactly one PONG for one PING. */
    expect_pong(a);
    expect_silence(a, 100);
    expect_pong(b);
    expect_silence(b, 100);
    close(a);
    close(b);
    close(c);
    ts_proxy_stop(p);
}

static void test_delay(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int fd = cli(p);
    expect_pong(fd);
    ts_proxy_delay(p, 200);
    uint64_t t0 = ts_now_ms();
    cli_sends(fd, "PING\r\n");
    expect_bytes(fd, "+PONG\r\n", 7);
    uint64_t dt = ts_now_ms() - t0;
    ts_log("PONG after %llu ms with a 200 ms delay", (unsigned long long)dt);
    assert_true(dt >= 180);
    assert_true(dt < 3000);
    /* Order is kept across many separate chunks. */
    char want[512] = "";
    for (int i = 0; i < 20; i++) {
        char cmd[32], rep[32];
        snprintf(cmd, sizeof cmd, "ECHO m%02d\r\n", i);
        snprintf(rep, sizeof rep, "$3\r\nm%02d\r\n", i);
        cli_sends(fd, cmd);
        strcat(want, rep);
    }
    expect_bytes(fd, want, strlen(want));
    /* Back to no delay. */
    ts_proxy_delay(p, 0);
    t0 = ts_now_ms();
    expect_pong(fd);
    dt = ts_now_ms() - t0;
    ts_log("PONG after %llu ms without delay", (unsigned long long)dt);
    assert_true(dt < 1000);
    /* pass() releases queued chunks at once. */
    ts_proxy_delay(p, 10000);
    cli_sends(fd, "PING\r\n");
    expect_silence(fd, 100);
    ts_proxy_pass(p);
    expect_bytes(fd, "+PONG\r\n", 7);
    close(fd);
    ts_proxy_stop(p);
}

static void test_cut_next_reply(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int fd = cli(p);
    char val[1000];
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (char)('A' + i % 26);
    char hdr[64];
    snprintf(hdr, sizeof hdr, "*3\r\n$3\r\nSET\r\n$9\r\nproxy:cut\r\n$%zu\r\n", sizeof val);
    cli_sends(fd, hdr);
    cli_send(fd, val, sizeof val);
    cli_sends(fd, "\r\n");
    expect_bytes(fd, "+OK\r\n", 5);
    /* The full reply: "$1000\r\n" + value + "\r\n". */
    char full[1009];
    memcpy(full, "$1000\r\n", 7);
    memcpy(full + 7, val, sizeof val);
    memcpy(full + 1007, "\r\n", 2);
    ts_proxy_cut_next_reply(p);
    cli_sends(fd, "GET proxy:cut\r\n");
    char buf[2048];
    int how;
    size_t got = cli_read(fd, buf, sizeof buf, 3000, &how);
    ts_log("cut reply: %zu of %zu bytes", got, sizeof full);
    assert_int_equal(how, 1); /* EOF */
    assert_true(got >= 1);
    assert_true(got < sizeof full);
    assert_memory_equal(buf, full, got);
    close(fd);
    assert_int_equal(ts_proxy_open(p), 0);
    /* One-shot: the next connection gets whole replies. */
    int fd2 = cli(p);
    cli_sends(fd2, "GET proxy:cut\r\n");
    expect_bytes(fd2, full, sizeof full);
    close(fd2);
    ts_proxy_stop(p);
}

static void test_refuse(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int port = ts_proxy_port(p);
    int old = cli(p);
    expect_pong(old);
    ts_proxy_refuse(p, 1);
    assert_int_equal(cli_connect(port), -ECONNREFUSED);
    assert_int_equal(cli_connect(port), -ECONNREFUSED);
    /* Open connections keep working. */
    expect_pong(old);
    ts_proxy_refuse(p, 0);
    assert_int_equal(ts_proxy_port(p), port);
    int fd = cli_connect(port);
    assert_true(fd >= 0);
    expect_pong(fd);
    close(fd);
    /* pass() also ends a refusal. */
    ts_proxy_refuse(p, 1);
    assert_int_equal(cli_connect(port), -ECONNREFUSED);
    ts_proxy_pass(p);
    fd = cli_connect(port);
    assert_true(fd >= 0);
    expect_pong(fd);
    close(fd);
    close(old);
    assert_int_equal(ts_proxy_accepted(p), 3);
    ts_proxy_stop(p);
}

static void test_counters(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    assert_int_equal(ts_proxy_accepted(p), 0);
    assert_int_equal(ts_proxy_open(p), 0);
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = cli(p);
    /* Counted as soon as connect() returned, no round trip needed. */
    assert_int_equal(ts_proxy_accepted(p), 3);
    assert_int_equal(ts_proxy_open(p), 3);
    for (int i = 0; i < 3; i++)
        expect_pong(fds[i]);
    /* One client half-closes; once it reads the server's EOF the pair is
     * gone. */
    assert_int_equal(shutdown(fds[0], SHUT_WR), 0);
    expect_eof(fds[0]);
    assert_int_equal(ts_proxy_open(p), 2);
    ts_proxy_close_all(p);
    assert_int_equal(ts_proxy_open(p), 0);
    assert_int_equal(ts_proxy_accepted(p), 3);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    ts_proxy_stop(p);
}

static void test_target_refuses(void **state) {
    (void)state;
    /* A loopback port where nothing listens. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    ts_proxy *p = ts_proxy_start("127.0.0.1", ntohs(a.sin_port));
    int fd = cli(p); /* the proxy accepts, then the target refuses */
    cli_sends(fd, "PING\r\n");
    char buf[16];
    int how;
    assert_int_equal(cli_read(fd, buf, sizeof buf, 3000, &how), 0);
    assert_true(how == 1 || how == ECONNRESET);
    close(fd);
    close(s);
    assert_int_equal(ts_proxy_accepted(p), 1);
    assert_int_equal(ts_proxy_open(p), 0);
    ts_proxy_stop(p);
}

static void test_localhost_target(void **state) {
    (void)state;
    /* "localhost" is accepted; the target is the IPv4 server. */
    ts_proxy *p = ts_proxy_start("localhost", ts_server_port(g_srv));
    int fd = cli(p);
    expect_pong(fd);
    close(fd);
    ts_proxy_stop(p);
}

/* An idle proxy blocks in poll: waiting 300 ms with connections in various
 * states (idle, blackholed after the client closed, chunks queued for a
 * later release) costs next to no CPU. */
static void test_idle_does_not_spin(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int idle = cli(p);
    expect_pong(idle);
    int half = cli(p);
    expect_pong(half);
    ts_proxy_blackhole(p, 1);
    assert_int_equal(shutdown(half, SHUT_WR), 0); /* EOF held by the blackhole */
    uint64_t c0 = cpu_ms();
    expect_silence(idle, 300);
    uint64_t used = cpu_ms() - c0;
    ts_log("CPU during 300 ms idle (blackhole): %llu ms", (unsigned long long)used);
    assert_true(used < 100);
    ts_proxy_blackhole(p, 0); /* the EOF goes through now */
    expect_eof(half);
    close(half);
    ts_proxy_delay(p, 2000);
    cli_sends(idle, "PING\r\n");
    c0 = cpu_ms();
    expect_silence(idle, 300);
    used = cpu_ms() - c0;
    ts_log("CPU during 300 ms idle (delay): %llu ms", (unsigned long long)used);
    assert_true(used < 100);
    ts_proxy_pass(p);
    expect_bytes(idle, "+PONG\r\n", 7);
    assert_int_equal(ts_proxy_open(p), 1);
    close(idle);
    ts_proxy_stop(p);
}

static void test_stop_with_open_connections(void **state) {
    (void)state;
    ts_proxy *p = proxy();
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = cli(p);
        expect_pong(fds[i]);
    }
    /* Bytes queued in the proxy at stop time are freed too. */
    ts_proxy_delay(p, 5000);
    cli_sends(fds[0], "PING\r\n");
    cli_sends(fds[1], "PING\r\n");
    assert_int_equal(ts_proxy_open(p), 3);
    ts_proxy_stop(p);
    for (int i = 0; i < 3; i++) {
        expect_eof(fds[i]);
        close(fds[i]);
    }
}

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start_default();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ts_server_stop(g_srv);
    g_srv = NULL;
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass),
        cmocka_unit_test(test_close_all),
        cmocka_unit_test(test_reset_all),
        cmocka_unit_test(test_blackhole),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_cut_next_reply),
        cmocka_unit_test(test_refuse),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_target_refuses),
        cmocka_unit_test(test_localhost_target),
        cmocka_unit_test(test_idle_does_not_spin),
        cmocka_unit_test(test_stop_with_open_connections),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
