/*
 * first-use (integration): the README's first program never hangs with the
 * default options. It is run as is ("A first program" in README.md: SET and
 * GET through futures, aredis_await on the GET, print the value or
 * "failed: <detail>") in a forked child whose stdout is a pipe, with
 * AREDIS_OPTIONS_INIT and only the port changed (with a server there, it
 * prints the value: the harness works):
 *   - nothing listening on the port: it prints a connection error;
 *   - a listener that accepts and never answers: it prints an error;
 * both within twice the default connect_timeout_ms (the child is killed and
 * the test fails past that).
 * The defaults still reconnect an ESTABLISHED client: a command issued while
 * its server is down waits for the server to come back, then succeeds.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts.h"

/* ---- The README program, in a child ---------------------------------------- */

/* README.md, "A first program", with options instead of NULL (the port). */
static void readme_program(int port) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = port;
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);

    aredis_future *f = aredis_future_command(c, "SET %s %b", "key", "val", (size_t)3);
    aredis_future *g = aredis_future_command(c, "GET %s", "key");
    if (aredis_await(g) == AREDIS_ERR_OK) {
        const char *s = aredis_future_reply(g)->str; /* NULL for a nil reply */
        printf("%s\n", s ? s : "(nil)");
    } else {
        printf("failed: %s\n", aredis_future_error(g)->detail);
    }
    aredis_future_release(f);
    aredis_future_release(g);

    aredis_client_free(c);
    aredis_loop_free(loop);
}

static uint32_t default_connect_timeout_ms(void) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    return o.connect_timeout_ms;
}

/*
 * Run the program against port in a child; returns what it printed (NUL
 * terminated in out) once it has exited. Fails the test, after killing the
 * child, if it has not finished within twice the default connect timeout
 * (which must be set: 0 would be no bound).
 */
static void run_readme_program(int port, char *out, size_t outlen) {
    uint32_t ct = default_connect_timeout_ms();
    assert_true(ct > 0);
    uint64_t deadline_ms = 2ull * ct;
    int p[2];
    assert_int_equal(pipe(p), 0);
    uint64_t t0 = ts_now_ms();
    pid_t pid = ts_fork();
    if (pid == 0) {
        close(p[0]);
        if (dup2(p[1], STDOUT_FILENO) < 0) _exit(2);
        close(p[1]);
        readme_program(port);
        fflush(stdout);
        _exit(0); /* no atexit handlers: they belong to the parent */
    }
    close(p[1]);
    size_t got = 0;
    int eof = 0;
    while (!eof) {
        uint64_t now = ts_now_ms();
        if (now >= t0 + deadline_ms) break;
        struct pollfd pfd = {.fd = p[0], .events = POLLIN, .revents = 0};
        int r = poll(&pfd, 1, (int)(t0 + deadline_ms - now));
        if (r < 0 && errno == EINTR) continue;
        assert_true(r >= 0);
        if (r == 0) continue;
        char buf[512];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            eof = 1;
            break;
        }
        size_t take = (size_t)n < outlen - 1 - got ? (size_t)n : outlen - 1 - got;
        memcpy(out + got, buf, take);
        got += take;
    }
    out[got] = '\0';
    close(p[0]);
    uint64_t took = ts_now_ms() - t0;
    if (!eof) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the README program did not finish within %llu ms (it printed \"%s\")",
                 (unsigned long long)deadline_ms, out);
    }
    ts_log("the README program finished in %llu ms and printed: %s", (unsigned long long)took, out);
    ts_wait_child(pid, NULL, 0);
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- Cases ------------------------------------------------------------------ */

/* The harness itself: with a server there, the program prints the value. */
static void test_server_there(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    char out[1024];
    run_readme_program(ts_server_port(s), out, sizeof out);
    assert_string_equal(out, "val\n");
    ts_server_stop(s);
}

static void test_nothing_listening(void **state) {
    (void)state;
    char out[1024];
    run_readme_program(ts_dead_port(), out, sizeof out);
    assert_true(starts_with(out, "failed: "));
    /* It says why: the connection. */
    assert_true(strstr(out, "refused") || strstr(out, "connect"));
}

static void test_silent_listener(void **state) {
    (void)state;
    int port;
    int lfd = ts_silent_listener(&port);
    char out[1024];
    run_readme_program(port, out, sizeof out);
    close(lfd);
    assert_true(starts_with(out, "failed: "));
}

/* ---- An established client keeps queueing across a server restart ---------- */

static int not_ready(const void *c) { return aredis_client_state(c) != AREDIS_STATE_READY; }
static int future_done(const void *f) { return aredis_future_is_done(f); }

static void test_established_client_reconnects(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    aredis_loop *loop = aredis_loop_new();
    assert_non_null(loop);
    aredis_options o = ts_options(s); /* AREDIS_OPTIONS_INIT, the server's port */
    aredis_client *c = ts_connect(loop, &o);
    ts_cmd_ok(c, "SET fu:key %s", "val");

    ts_server_kill(s);
    assert_true(ts_wait_until(loop, not_ready, c, 10000));
    /* Issued while the server is down: it waits for the reconnect. */
    aredis_future *g = aredis_future_command(c, "GET %s", "fu:key");
    assert_non_null(g);
    assert_false(aredis_future_is_done(g));
    ts_server_restart(s);
    assert_true(ts_wait_until(loop, future_done, g, 30000));
    const aredis_error *e = aredis_future_error(g);
    if (e) fail_msg("GET after the restart failed: %s: %s", aredis_err_name(e->code), e->detail);
    /* No persistence: the value died with the server; nil is a reply too. */
    aredis_reply *r = aredis_future_reply(g);
    assert_non_null(r);
    assert_true(r->type == AREDIS_REPLY_NIL ||
                (r->type == AREDIS_REPLY_STRING && strcmp(r->str, "val") == 0));
    aredis_future_release(g);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    ts_cmd_ok(c, "SET fu:key %s", "again");

    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_there),
        cmocka_unit_test(test_nothing_listening),
        cmocka_unit_test(test_silent_listener),
        cmocka_unit_test(test_established_client_reconnects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
