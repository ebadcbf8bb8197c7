/*
 * Hostile and broken servers: a scripted fake server (tests/support/
 * fake_server.h) answers the client's commands with malformed or abusive
 * RESP — lengths of -2, 2^63-1 and 2^64, integers past int64, bad doubles
 * and booleans, an array or map claiming billions of elements and then
 * silence, nesting one past the depth limit, garbage — and with valid
 * replies cut at every byte offset.
 *
 * For every malformed reply: the command gets AREDIS_ERR_PROTOCOL exactly
 * once, every other pending command fails exactly once too, the client goes
 * IDLE (reconnect off) with last_error PROTOCOL and a detail saying what was
 * wrong, on_error and on_disconnect run once, and memory (counted through
 * the allocator hooks) stays bounded by the bytes received, not by what the
 * server claims. Valid edge cases (,nan ,inf, INT64 bounds, nesting exactly
 * at the limit) are accepted. Runs under ASan/UBSan in `make asan-test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_server.h"
#include "ts.h"

#define NCMD 3
#define MEM_BOUND ((size_t)1 << 20)

/* ---- Counting the library's heap (peak bytes live through the hooks) ----- */

static void counting_on(void) {
    ts_heap_reset();
    aredis_set_allocator(ts_heap_hooks());
}

static void counting_off(void) {
    assert_int_equal(ts_heap_live(), 0); /* everything freed */
    aredis_reset_allocator();
}

/* ---- Outcomes ------------------------------------------------------------ */

typedef struct outcome {
    int calls;
    aredis_err code;
    char detail[256];
    aredis_reply *reply; /* retained on success */
} outcome;

typedef struct run {
    outcome cmd[NCMD];
    size_t done;
    int errors, disconnects;
    aredis_err error_code, disconnect_code;
} run;

static run *g_run;

static void on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    outcome *o = data;
    o->calls++;
    o->code = err ? err->code : AREDIS_ERR_OK;
    snprintf(o->detail, sizeof o->detail, "%s", err ? err->detail : "");
    if (!err && r && !o->reply) o->reply = aredis_reply_retain(r);
    g_run->done++;
}

static void on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    run *r = data;
    r->errors++;
    r->error_code = err->code;
}

static void on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    run *r = data;
    r->disconnects++;
    r->disconnect_code = err->code;
}

static aredis_options fake_options(const ts_fake *f, run *r) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = ts_fake_port(f);
    o.reconnect = 0;
    o.connect_timeout_ms = 5000;
    o.on_error = on_error;
    o.on_disconnect = on_disconnect;
    o.cb_data = r;
    return o;
}

/* Let the loop run a little more: nothing may be delivered twice. */
static void settle(aredis_loop *loop) {
    int never = 0;
    (void)ts_wait(loop, &never, 30);
}

static void run_free(run *r) {
    for (int i = 0; i < NCMD; i++)
        aredis_reply_release(r->cmd[i].reply);
}

/*
 * Three GETs pipelined; the fake answers the first with `payload` (valid:
 * the other two get "$1\r\nx\r\n"). Returns with the client closed and
 * freed; `r` holds what happened.
 */
static void exchange(const char *payload, size_t plen, int valid, const aredis_reader_limits *lim,
                     run *r) {
    memset(r, 0, sizeof *r);
    g_run = r;
    ts_fake *f = ts_fake_new();
    ts_fake_hello3(f);
    ts_fake_read_cmd(f, NCMD);
    ts_fake_send(f, payload, plen);
    if (valid) {
        ts_fake_send_str(f, "$1\r\nx\r\n");
        ts_fake_send_str(f, "$1\r\nx\r\n");
    }
    ts_fake_wait_eof(f, 5000);
    ts_fake_start(f);

    aredis_loop *loop = aredis_loop_new();
    aredis_options o = fake_options(f, r);
    if (lim) o.limits = *lim;
    aredis_client *c = aredis_client_new(loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    for (int i = 0; i < NCMD; i++)
        assert_int_equal(aredis_command(c, on_reply, &r->cmd[i], "GET k%d", i), AREDIS_ERR_OK);
    assert_true(ts_wait_count(loop, &r->done, NCMD, 10000));
    settle(loop);
    for (int i = 0; i < NCMD; i++)
        assert_int_equal(r->cmd[i].calls, 1);
    if (valid) {
        assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
        assert_int_equal(r->errors, 0);
    } else {
        assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
        const aredis_error *le = aredis_client_last_error(c);
        assert_int_equal(le->code, AREDIS_ERR_PROTOCOL);
        assert_true(strlen(le->detail) > 0);
        assert_int_equal(r->errors, 1);
        assert_int_equal(r->error_code, AREDIS_ERR_PROTOCOL);
        assert_int_equal(r->disconnects, 1);
        assert_int_equal(r->disconnect_code, AREDIS_ERR_PROTOCOL);
    }
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_fake_stop(f);
}

/* A payload for the test log: printable, cut at 24 bytes. */
static const char *shown(const char *p, size_t n) {
    static char buf[200];
    size_t o = 0;
    for (size_t i = 0; i < n && i < 24; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r')
            o += (size_t)sprintf(buf + o, "\\r");
        else if (ch == '\n')
            o += (size_t)sprintf(buf + o, "\\n");
        else if (ch < 0x20 || ch >= 0x7f)
            o += (size_t)sprintf(buf + o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o] = '\0';
    if (n > 24) snprintf(buf + o, sizeof buf - o, "...");
    return buf;
}

/* The payload is a PROTOCOL error for the first command and for the rest. */
static void expect_protocol(const char *payload, size_t plen, const char *why) {
    run r;
    exchange(payload, plen, 0, NULL, &r);
    for (int i = 0; i < NCMD; i++) {
        if (r.cmd[i].code != AREDIS_ERR_PROTOCOL)
            fail_msg("payload %.40s: command %d got %s (%s)", payload, i,
                     aredis_err_name(r.cmd[i].code), r.cmd[i].detail);
        if (why && !strstr(r.cmd[i].detail, why))
            fail_msg("payload %.40s: detail [%s] lacks [%s]", payload, r.cmd[i].detail, why);
    }
    ts_log("%s -> %s", shown(payload, plen), r.cmd[0].detail);
    run_free(&r);
}

/* ---- Malformed replies ---------------------------------------------------- */

static const struct {
    const char *payload;
    const char *why;
} k_bad[] = {
    {"$-2\r\n", "negative"},
    {"$9223372036854775807\r\n", "max_bulk_len"},
    {"$18446744073709551616\r\n", "bad length"},
    {"$99999999999999999999999999\r\n", "bad length"},
    {":9223372036854775808\r\n", "bad integer"},
    {":-9223372036854775809\r\n", "bad integer"},
    {":18446744073709551616\r\n", "bad integer"},
    {":12a\r\n", "bad integer"},
    {",1.2.3\r\n", "bad double"},
    {",\r\n", "bad double"},
    {",1e\r\n", "bad double"},
    {"#x\r\n", "bad boolean"},
    {"#\r\n", "bad boolean"},
    {"#tt\r\n", "bad boolean"},
    {"*4294967295\r\n", "max_elements"},
    {"*-2\r\n", "negative"},
    {"%4611686018427387903\r\n", "max_elements"},
    {"%4611686018427387904\r\n", "max_elements"},
    {"~9223372036854775807\r\n", "max_elements"},
    {"$3\r\nabcd\r\n", "CRLF"},
    {"+OK\rX\n", "LF"},
    {"hello world\r\n", "unknown type byte"},
    {"\x01\x02\x03garbage\r\n", "unknown type byte"},
};

static void count_warn(int level, const char *line, void *data) {
    if (level == AREDIS_LOG_WARN && strstr(line, "AREDIS_ERR_PROTOCOL")) (*(size_t *)data)++;
}

static void test_malformed(void **state) {
    (void)state;
    size_t warnings = 0;
    aredis_set_log_handler(count_warn, &warnings, AREDIS_LOG_WARN);
    for (size_t i = 0; i < sizeof k_bad / sizeof *k_bad; i++)
        expect_protocol(k_bad[i].payload, strlen(k_bad[i].payload), k_bad[i].why);
    aredis_set_log_handler(NULL, NULL, 0);
    /* Each protocol error is logged once, at WARN. */
    assert_int_equal(warnings, sizeof k_bad / sizeof *k_bad);
}

/* Nesting: exactly at the default limit (128) is valid, one past is not. */
static char *nested(unsigned depth, size_t *len) {
    char *p = malloc(depth * 4 + 8);
    size_t n = 0;
    for (unsigned i = 0; i < depth; i++)
        n += (size_t)sprintf(p + n, "*1\r\n");
    n += (size_t)sprintf(p + n, ":7\r\n");
    *len = n;
    return p;
}

static void test_nesting(void **state) {
    (void)state;
    assert_int_equal(AREDIS_READER_DEFAULT_MAX_DEPTH, 128);
    size_t len;
    char *p = nested(128, &len);
    run r;
    exchange(p, len, 1, NULL, &r);
    aredis_reply *x = r.cmd[0].reply;
    assert_non_null(x);
    for (int d = 0; d < 128; d++) {
        assert_int_equal(x->type, AREDIS_REPLY_ARRAY);
        assert_int_equal(x->elements, 1);
        x = x->element[0];
    }
    assert_int_equal(x->type, AREDIS_REPLY_INTEGER);
    assert_int_equal(x->integer, 7);
    run_free(&r);
    free(p);

    p = nested(129, &len);
    expect_protocol(p, len, "max_depth");
    free(p);
    /* Nesting through maps, sets and attributes counts the same way. */
    char buf[2048];
    size_t n = 0;
    for (int i = 0; i < 129; i++) {
        static const char *const level[] = {"%1\r\n+k\r\n", "~1\r\n", "*1\r\n"};
        const char *l = level[i % 3];
        memcpy(buf + n, l, strlen(l));
        n += strlen(l);
    }
    n += (size_t)sprintf(buf + n, "_\r\n");
    expect_protocol(buf, n, "max_depth");
}

/* Random garbage (seeded): never a crash, always PROTOCOL. */
static void test_garbage(void **state) {
    (void)state;
    uint64_t s = 0x5eed;
    for (int iter = 0; iter < 16; iter++) {
        char buf[200];
        for (size_t i = 0; i < sizeof buf; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = (char)(s >> 56);
        }
        /* A first byte that is no RESP type: the error is certain and
         * immediate, whatever follows. */
        buf[0] = (char)(0x80 | (unsigned char)buf[0]);
        expect_protocol(buf, sizeof buf, "unknown type byte");
    }
}

/* A reply with no command waiting for it is a protocol error too. */
static void test_unsolicited(void **state) {
    (void)state;
    run r;
    memset(&r, 0, sizeof r);
    g_run = &r;
    ts_fake *f = ts_fake_new();
    ts_fake_hello3(f);
    ts_fake_reply(f, "+OK\r\n+EXTRA\r\n");
    ts_fake_wait_eof(f, 5000);
    ts_fake_start(f);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = fake_options(f, &r);
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, on_reply, &r.cmd[0], "PING"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(loop, &r.done, 1, 5000));
    assert_int_equal(r.cmd[0].code, AREDIS_ERR_OK);
    int idle = 0;
    uint64_t until = ts_now_ms() + 5000;
    while (!idle && ts_now_ms() < until) {
        settle(loop);
        idle = aredis_client_state(c) == AREDIS_STATE_IDLE;
    }
    assert_true(idle);
    assert_int_equal(aredis_client_last_error(c)->code, AREDIS_ERR_PROTOCOL);
    assert_non_null(strstr(aredis_client_last_error(c)->detail, "no command waiting"));
    assert_int_equal(r.errors, 1);
    run_free(&r);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_fake_stop(f);
}

/* ---- Valid edge cases ----------------------------------------------------- */

static void test_valid_edges(void **state) {
    (void)state;
    run r;
    exchange(",nan\r\n", 6, 1, NULL, &r);
    assert_int_equal(r.cmd[0].reply->type, AREDIS_REPLY_DOUBLE);
    assert_true(isnan(r.cmd[0].reply->dval));
    assert_string_equal(r.cmd[1].reply->str, "x");
    run_free(&r);

    exchange(",-inf\r\n", 7, 1, NULL, &r);
    assert_true(isinf(r.cmd[0].reply->dval) && r.cmd[0].reply->dval < 0);
    run_free(&r);

    exchange(":9223372036854775807\r\n", 22, 1, NULL, &r);
    assert_true(r.cmd[0].reply->integer == INT64_MAX);
    run_free(&r);

    exchange(":-9223372036854775808\r\n", 23, 1, NULL, &r);
    assert_true(r.cmd[0].reply->integer == INT64_MIN);
    run_free(&r);

    exchange("#t\r\n", 4, 1, NULL, &r);
    assert_int_equal(r.cmd[0].reply->type, AREDIS_REPLY_BOOL);
    assert_int_equal(r.cmd[0].reply->integer, 1);
    run_free(&r);

    exchange("$-1\r\n", 5, 1, NULL, &r);
    assert_int_equal(r.cmd[0].reply->type, AREDIS_REPLY_NIL);
    run_free(&r);
}

/* ---- Memory bounded by bytes received ------------------------------------- */

static void test_memory_bounded(void **state) {
    (void)state;
    static const char *const huge[] = {"*4294967295\r\n", "%4611686018427387903\r\n",
                                       "$9223372036854775807\r\n", "~9223372036854775807\r\n"};
    /* Default limits: refused at the header. */
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        counting_on();
        expect_protocol(huge[i], strlen(huge[i]), NULL);
        ts_log("%s: peak %lld bytes", shown(huge[i], strlen(huge[i])), ts_heap_peak());
        assert_true(ts_heap_peak() < (long long)MEM_BOUND);
        counting_off();
    }
    /* Limits lifted: the header is accepted, then silence and a close. The
     * claim alone must not allocate: the command fails with EOF. */
    aredis_reader_limits lim = {SIZE_MAX, SIZE_MAX, 128};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        counting_on();
        run r;
        memset(&r, 0, sizeof r);
        g_run = &r;
        ts_fake *f = ts_fake_new();
        ts_fake_hello3(f);
        ts_fake_read_cmd(f, 1);
        ts_fake_send_str(f, huge[i]);
        ts_fake_send_str(f, huge[i][0] == '$' ? "abc" : ":1\r\n:2\r\n");
        ts_fake_sleep(f, 200);
        ts_fake_close(f);
        ts_fake_start(f);
        aredis_loop *loop = aredis_loop_new();
        aredis_options o = fake_options(f, &r);
        o.limits = lim;
        aredis_client *c = aredis_client_new(loop, &o);
        assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
        assert_int_equal(aredis_command(c, on_reply, &r.cmd[0], "GET k"), AREDIS_ERR_OK);
        assert_true(ts_wait_count(loop, &r.done, 1, 5000));
        assert_int_equal(r.cmd[0].calls, 1);
        assert_int_equal(r.cmd[0].code, AREDIS_ERR_EOF);
        assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
        aredis_client_free(c);
        aredis_loop_free(loop);
        ts_fake_stop(f);
        ts_log("%s (limits off, then EOF): peak %lld bytes", shown(huge[i], strlen(huge[i])),
               ts_heap_peak());
        assert_true(ts_heap_peak() < (long long)MEM_BOUND);
        counting_off();
    }
}

/* ---- Valid replies split at every offset ----------------------------------- */

/* Two replies back to back, so splits also fall on the boundary between
 * them: an array with a blob, an integer, a map with a double, a verbatim
 * string and an attribute; then a big number. */
static const char k_pair[] =
    "|1\r\n+ttl\r\n:9\r\n*4\r\n$5\r\nhe\r\nl\r\n:-42\r\n%1\r\n+k\r\n,3.5\r\n"
    "=8\r\ntxt:abcd\r\n"
    "(123456789012345678901234567890\r\n";

static void check_pair(const outcome *a, const outcome *b) {
    assert_int_equal(a->code, AREDIS_ERR_OK);
    const aredis_reply *r = a->reply;
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    assert_non_null(r->attribute);
    assert_int_equal(r->attribute->elements, 2);
    assert_string_equal(r->attribute->element[0]->str, "ttl");
    assert_int_equal(r->element[0]->len, 5);
    assert_memory_equal(r->element[0]->str, "he\r\nl", 5);
    assert_int_equal(r->element[1]->integer, -42);
    assert_int_equal(r->element[2]->type, AREDIS_REPLY_MAP);
    assert_string_equal(r->element[2]->element[0]->str, "k");
    assert_true(r->element[2]->element[1]->dval == 3.5);
    assert_int_equal(r->element[3]->type, AREDIS_REPLY_VERB);
    assert_string_equal(r->element[3]->vtype, "txt");
    assert_string_equal(r->element[3]->str, "abcd");
    assert_int_equal(b->code, AREDIS_ERR_OK);
    assert_int_equal(b->reply->type, AREDIS_REPLY_BIGNUM);
    assert_string_equal(b->reply->str, "123456789012345678901234567890");
}

static void test_split_everywhere(void **state) {
    (void)state;
    size_t len = sizeof k_pair - 1;
    ts_fake *f = ts_fake_new();
    ts_fake_hello3(f);
    for (size_t at = 1; at < len; at++) {
        ts_fake_read_cmd(f, 2);
        ts_fake_send_split(f, k_pair, len, at, 2);
    }
    /* And once a byte at a time. */
    ts_fake_read_cmd(f, 2);
    ts_fake_send_bytewise(f, k_pair, len, 0);
    ts_fake_wait_eof(f, 5000);
    ts_fake_start(f);

    aredis_loop *loop = aredis_loop_new();
    run r;
    memset(&r, 0, sizeof r);
    g_run = &r;
    aredis_options o = fake_options(f, &r);
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    aredis_client_stats st0;
    aredis_client_get_stats(c, &st0);
    for (size_t at = 1; at <= len; at++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(aredis_command(c, on_reply, &r.cmd[0], "GET a"), AREDIS_ERR_OK);
        assert_int_equal(aredis_command(c, on_reply, &r.cmd[1], "GET b"), AREDIS_ERR_OK);
        assert_true(ts_wait_count(loop, &r.done, 2, 5000));
        assert_int_equal(r.cmd[0].calls, 1);
        assert_int_equal(r.cmd[1].calls, 1);
        check_pair(&r.cmd[0], &r.cmd[1]);
        run_free(&r);
    }
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    ts_log("%zu splits: %llu reads (the splits were seen)", len,
           (unsigned long long)(st.read_calls - st0.read_calls));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
    assert_int_equal(r.errors, 0);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_fake_stop(f);
}

/* A PROTOCOL error inside a reply split byte by byte: found as soon as the
 * bad byte arrives, nothing delivered before. */
static void test_bad_bytewise(void **state) {
    (void)state;
    static const char bad[] = "*2\r\n$3\r\nabc\r\n:12x4\r\n";
    run r;
    memset(&r, 0, sizeof r);
    g_run = &r;
    ts_fake *f = ts_fake_new();
    ts_fake_hello2(f);
    ts_fake_read_cmd(f, 1);
    ts_fake_send_bytewise(f, bad, sizeof bad - 1, 1);
    ts_fake_wait_eof(f, 5000);
    ts_fake_start(f);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = fake_options(f, &r);
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, on_reply, &r.cmd[0], "GET a"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(loop, &r.done, 1, 5000));
    settle(loop);
    assert_int_equal(r.cmd[0].calls, 1);
    assert_int_equal(r.cmd[0].code, AREDIS_ERR_PROTOCOL);
    assert_non_null(strstr(r.cmd[0].detail, "bad integer"));
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_IDLE);
    assert_int_equal(aredis_client_protocol(c), 0);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_fake_stop(f);
}

/* With reconnect on, a protocol error is a lost connection like any other:
 * pending commands fail once, and the client reconnects. */
static void test_reconnects_after_protocol_error(void **state) {
    (void)state;
    run r;
    memset(&r, 0, sizeof r);
    g_run = &r;
    ts_fake *f = ts_fake_new();
    ts_fake_hello3(f);
    ts_fake_reply(f, "$-2\r\n");
    ts_fake_wait_eof(f, 5000);
    ts_fake_next_conn(f);
    ts_fake_hello3(f);
    ts_fake_serve(f, "+OK\r\n");
    ts_fake_start(f);
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = fake_options(f, &r);
    o.reconnect = 1;
    o.reconnect_delay_ms = 10;
    aredis_client *c = aredis_client_new(loop, &o);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, on_reply, &r.cmd[0], "GET a"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(loop, &r.done, 1, 5000));
    assert_int_equal(r.cmd[0].code, AREDIS_ERR_PROTOCOL);
    assert_int_equal(aredis_command(c, on_reply, &r.cmd[1], "PING"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(loop, &r.done, 2, 5000));
    assert_int_equal(r.cmd[1].code, AREDIS_ERR_OK);
    assert_int_equal(r.cmd[0].calls, 1);
    assert_int_equal(ts_fake_accepted(f), 2);
    run_free(&r);
    aredis_client_free(c);
    aredis_loop_free(loop);
    ts_fake_stop(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_unsolicited),
        cmocka_unit_test(test_valid_edges),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_bad_bytewise),
        cmocka_unit_test(test_reconnects_after_protocol_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
