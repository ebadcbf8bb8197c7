/*
 * Test support: clients against fixture servers, and waiting on the loop
 * for a condition (tests never sleep and hope).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ts.h"

aredis_options ts_options(const ts_server *s) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = ts_server_host(s);
    o.port = ts_server_port(s);
    return o;
}

aredis_err ts_await_ready(aredis_client *c, char *detail, size_t dlen) {
    aredis_future *f = aredis_future_ready(c);
    assert_non_null(f);
    aredis_err e = aredis_await(f);
    if (detail && dlen) snprintf(detail, dlen, "%s", e ? aredis_future_error(f)->detail : "");
    aredis_future_release(f);
    return e;
}

aredis_err ts_connect_err(aredis_loop *loop, const aredis_options *o, aredis_client **out,
                          char *detail, size_t dlen) {
    aredis_client *c = aredis_client_new(loop, o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    *out = c;
    return ts_await_ready(c, detail, dlen);
}

aredis_client *ts_connect(aredis_loop *loop, const aredis_options *o) {
    aredis_client *c;
    char why[512];
    aredis_err e = ts_connect_err(loop, o, &c, why, sizeof why);
    if (e != AREDIS_ERR_OK) fail_msg("connect failed: %s: %s", aredis_err_name(e), why);
    return c;
}

aredis_client *ts_client(aredis_loop *loop, const ts_server *s) {
    aredis_options o = ts_options(s);
    return ts_connect(loop, &o);
}

static void noop(void *arg) { (void)arg; }

int ts_wait_until(aredis_loop *loop, int (*done)(const void *), const void *arg,
                  uint64_t timeout_ms) {
    uint64_t until = ts_now_ms() + timeout_ms;
    /* A timer bounds each wait so a silent loop cannot hang the test. */
    aredis_timer *t = aredis_timer_new(loop, noop, NULL);
    assert_non_null(t);
    while (!done(arg)) {
        if (ts_now_ms() >= until) {
            aredis_timer_free(t);
            return 0;
        }
        aredis_timer_start(t, 50, 0);
        aredis_loop_run_once(loop, 1);
    }
    aredis_timer_free(t);
    return 1;
}

static int flag_set(const void *p) { return *(const volatile int *)p != 0; }

int ts_wait(aredis_loop *loop, const volatile int *flag, uint64_t timeout_ms) {
    return ts_wait_until(loop, flag_set, (const void *)flag, timeout_ms);
}

typedef struct {
    const volatile size_t *counter;
    size_t target;
} count_arg;

static int count_reached(const void *p) {
    const count_arg *a = p;
    return *a->counter >= a->target;
}

int ts_wait_count(aredis_loop *loop, const volatile size_t *counter, size_t target,
                  uint64_t timeout_ms) {
    count_arg a = {counter, target};
    return ts_wait_until(loop, count_reached, &a, timeout_ms);
}

aredis_future *ts_cmd(aredis_client *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(f);
    aredis_await(f);
    assert_true(aredis_future_is_done(f));
    return f;
}

/* Issue, await, and assert success: the future (caller releases) and its reply. */
static aredis_future *cmd_succeeds(aredis_client *c, aredis_reply **r, const char *fmt,
                                   va_list ap) {
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    assert_non_null(f);
    aredis_err e = aredis_await(f);
    if (e != AREDIS_ERR_OK) fail_msg("%s: %s", fmt, aredis_future_error(f)->detail);
    *r = aredis_future_reply(f);
    assert_non_null(*r);
    return f;
}

void ts_cmd_ok(aredis_client *c, const char *fmt, ...) {
    va_list ap;
    aredis_reply *r;
    va_start(ap, fmt);
    aredis_future *f = cmd_succeeds(c, &r, fmt, ap);
    va_end(ap);
    assert_int_equal(r->type, AREDIS_REPLY_STATUS);
    assert_string_equal(r->str, "OK");
    aredis_future_release(f);
}

void ts_cmd_bytes(aredis_client *c, const void *want, size_t n, const char *fmt, ...) {
    va_list ap;
    aredis_reply *r;
    va_start(ap, fmt);
    aredis_future *f = cmd_succeeds(c, &r, fmt, ap);
    va_end(ap);
    assert_int_equal(r->type, AREDIS_REPLY_STRING);
    assert_int_equal(r->len, n);
    assert_memory_equal(r->str, want, n);
    aredis_future_release(f);
}

void ts_on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    ts_result *res = data;
    res->calls++;
    res->done = 1;
    res->at = ts_now_ms();
    res->code = err ? err->code : AREDIS_ERR_OK;
    if (err) snprintf(res->prefix, sizeof res->prefix, "%s", err->prefix);
    res->had_reply = r != NULL;
    if (r) {
        res->type = r->type;
        res->integer = r->integer;
        res->elements = r->elements;
        if (r->str) snprintf(res->text, sizeof res->text, "%s", r->str);
        if (r->type == AREDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->str &&
            r->element[1]->str) {
            snprintf(res->text, sizeof res->text, "%s", r->element[0]->str);
            snprintf(res->text2, sizeof res->text2, "%s", r->element[1]->str);
        }
    }
    if (res->done_counter) (*res->done_counter)++;
}

void ts_echo_tokens(aredis_client *c, const char *tag, int n, uint64_t timeout_ms,
                    const char *after) {
    ts_result *tok = calloc((size_t)n + 1, sizeof *tok);
    assert_non_null(tok);
    ts_result *ping = &tok[n];
    size_t done = 0;
    for (int i = 0; i < n; i++) {
        tok[i].done_counter = &done;
        assert_int_equal(aredis_command(c, ts_on_reply, &tok[i], "ECHO %s-%d", tag, i),
                         AREDIS_ERR_OK);
    }
    ping->done_counter = &done;
    assert_int_equal(aredis_command(c, ts_on_reply, ping, "PING"), AREDIS_ERR_OK);
    if (!ts_wait_count(aredis_client_loop(c), &done, (size_t)n + 1, timeout_ms))
        fail_msg("after %s: %zu of %d ECHO and PING replies arrived", after, done, n + 1);
    if (ping->calls != 1 || ping->code != AREDIS_ERR_OK || ping->type != AREDIS_REPLY_STATUS ||
        strcmp(ping->text, "PONG") != 0)
        fail_msg("after %s: PING got %s, type %d, [%s], not PONG", after,
                 aredis_err_name(ping->code), (int)ping->type, ping->text);
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s-%d", tag, i);
        if (tok[i].calls != 1 || tok[i].code != AREDIS_ERR_OK ||
            tok[i].type != AREDIS_REPLY_STRING || strcmp(tok[i].text, want) != 0)
            fail_msg("after %s: ECHO %s got %d call(s), %s, type %d, [%s]", after, want,
                     tok[i].calls, aredis_err_name(tok[i].code), (int)tok[i].type, tok[i].text);
    }
    free(tok);
}

long long ts_client_id(aredis_client *c) {
    aredis_future *f = ts_cmd(c, "CLIENT ID");
    assert_null(aredis_future_error(f));
    assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_INTEGER);
    long long id = aredis_future_reply(f)->integer;
    aredis_future_release(f);
    return id;
}

/* The " field=" (or "field=" at the start) in line: its value's start, or
 * NULL. */
static const char *find_field(const char *line, const char *field) {
    size_t n = strlen(field);
    for (const char *p = line; (p = strstr(p, field)) != NULL; p += n) {
        if ((p == line || p[-1] == ' ') && p[n] == '=') return p + n + 1;
    }
    return NULL;
}

int ts_client_field(aredis_client *c, const char *field, char *out, size_t outlen) {
    char line[4096];
    aredis_future *f;
    if (ts_server_has(TS_FEATURE_CLIENT_INFO)) {
        f = ts_cmd(c, "CLIENT INFO");
        if (aredis_future_error(f)) fail_msg("CLIENT INFO: %s", aredis_future_error(f)->detail);
        snprintf(line, sizeof line, "%s", aredis_future_reply(f)->str);
    } else { /* before 6.2: this connection's line of CLIENT LIST */
        char want[32];
        snprintf(want, sizeof want, "id=%lld ", ts_client_id(c));
        f = ts_cmd(c, "CLIENT LIST");
        if (aredis_future_error(f)) fail_msg("CLIENT LIST: %s", aredis_future_error(f)->detail);
        const char *all = aredis_future_reply(f)->str;
        const char *at = all;
        while (at && strncmp(at, want, strlen(want)) != 0) {
            at = strchr(at, '\n');
            if (at) at++;
        }
        if (!at) fail_msg("CLIENT LIST has no line with %s", want);
        snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\r\n"), at);
    }
    aredis_future_release(f);
    const char *v = find_field(line, field);
    if (!v) return 0;
    snprintf(out, outlen, "%.*s", (int)strcspn(v, " \r\n"), v);
    return 1;
}

int ts_silent_listener(int *port) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return lfd;
}
