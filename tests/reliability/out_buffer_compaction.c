/*
 * out-buffer-compaction (reliability): a command encoded straight into the
 * output buffer while that buffer reclaims its consumed prefix keeps the
 * right span of bytes — for its retry copy, its sensitive flag and its DEBUG
 * log line.
 *
 * The scenario, forced and then proven from the client's internals:
 *   1. The server is stopped (SIGSTOP) and a big non-retryable SET is issued:
 *      the kernel buffers fill up and the client is left with a partial write
 *      (`out.off > 0`, unwritten bytes in [off, len)). The big command is
 *      sized so that it leaves a small free tail in `out` (a few KiB).
 *   2. A retryable command is issued whose last argument does not fit in
 *      that tail but does fit once the consumed prefix is reclaimed, so
 *      aredis__buf_reserve() memmoves [off, len) to the front IN THE MIDDLE
 *      of encoding. The test checks that this happened: the data pointer and
 *      capacity did not change (no realloc), `off` went from > 0 to 0 while
 *      unwritten bytes remain, and the unwritten tail of the big command now
 *      sits at the front. The command is sized to be longer than the
 *      reclaimed prefix, so a span computed before encoding (the old bug)
 *      would point inside the buffer, at the wrong bytes — not out of it.
 *   3. The command's span is checked three ways: its retry copy is exactly
 *      its encoding; the DEBUG log line names it; its sensitive flag is right
 *      (a second case issues CONFIG SET masterauth: flagged, and redacted in
 *      the log).
 *   4. End to end: the stopped server is killed and restarted on the same
 *      port (no persistence, so it starts empty). The client reconnects and
 *      re-sends the retryable command from its copy; the command succeeds and
 *      reading the key (or the config) back gives exactly the value sent. A
 *      wrong span would re-send other bytes (garbage, or another command).
 *      The big non-retryable command fails with a connection error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "client/client_internal.h"
#include "counters.h"

/* The big command grows `out` to the first doubling of its capacity at or
 * above this (so its partial write outlasts what loopback buffers take in
 * one go; more rounds are issued if the kernel swallowed it whole). */
#define BIG_TARGET ((size_t)8 << 20)
/* Free bytes the big command leaves at the end of `out` (about). */
#define TAIL_GAP ((size_t)4096)
/* Room the writer asks for per argument besides its payload: the longest
 * header and the CRLF (ARG_SLACK in src/proto/writer.c). */
#define WRITER_SLACK ((size_t)25)
#define MAX_ROUNDS 8

/* ---- Waiting on client state ------------------------------------------- */

/* The deferred flush ran: do_write() wrote until the socket would block or
 * `out` was empty. */
static int flushed(const void *c) { return !((const aredis_client *)c)->flush_armed; }

/* ---- DEBUG log capture --------------------------------------------------- */

static struct {
    int commands;   /* DEBUG "command" lines seen */
    char line[512]; /* the last one */
} g_log;

static void capture_log(int level, const char *line, void *data) {
    (void)data;
    if (level != AREDIS_LOG_DEBUG || !strstr(line, " command: ")) return;
    g_log.commands++;
    snprintf(g_log.line, sizeof g_log.line, "%s", line);
}

/* ---- The rig --------------------------------------------------------------- */

typedef struct {
    ts_server *srv;
    aredis_loop *loop;
    aredis_client *c;
    conn_counters k;
    /* the big, non-retryable commands that stall the output */
    int rounds;
    size_t big_done;
    size_t big_conn_errors;
    char *big;
    size_t big_len;
} rig;

static void on_big(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    rig *g = data;
    if (err && aredis_err_is_connection(err->code)) g->big_conn_errors++;
    g->big_done++;
}

/* Printable, position-dependent bytes after a readable head: a span that
 * starts anywhere else reads differently. */
static void fill_value(char *v, size_t n, const char *head) {
    size_t h = strlen(head);
    if (h > n) h = n;
    memcpy(v, head, h);
    uint32_t x = (uint32_t)n * 2654435761u;
    for (size_t i = h; i < n; i++) {
        x = x * 1103515245u + 12345u;
        v[i] = (char)('a' + (x >> 16) % 26);
    }
}

/* Encoded length of a command made of argv (argc < 9: a "*N" header of one
 * digit, as with one more argument). */
static size_t encoded_len(int argc, const char *const *argv, const size_t *argvlen) {
    char *cmd;
    size_t len;
    assert_int_equal(aredis_format_argv(&cmd, &len, argc, argv, argvlen), AREDIS_ERR_OK);
    aredis_free_command(cmd);
    return len;
}

static void rig_start(rig *g) {
    memset(g, 0, sizeof *g);
    g->srv = ts_server_start_default();
    g->loop = aredis_loop_new();
    assert_non_null(g->loop);
    aredis_options o = ts_options(g->srv);
    o.reconnect_delay_ms = 20;
    o.max_reconnect_delay_ms = 200;
    o.reconnect_jitter = 0;
    cc_wire(&o, &g->k);
    g->c = ts_connect(g->loop, &o);
    aredis_future_release(ts_cmd(g->c, "PING")); /* a round trip: `out` is empty */
}

static void rig_stop(rig *g) {
    aredis_client_free(g->c);
    aredis_loop_free(g->loop);
    ts_server_stop(g->srv);
    free(g->big);
}

/*
 * Stop the server and leave the client with a partial write: `out.off > 0`
 * and unwritten bytes in [off, len), with a free tail of about TAIL_GAP.
 */
static void stall_output(rig *g) {
    aredis_client *c = g->c;
    assert_int_equal(aredis__buf_used(&c->out), 0);

    pid_t pid = ts_server_pid(g->srv);
    int st;
    assert_int_equal(kill(pid, SIGSTOP), 0);
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    assert_true(WIFSTOPPED(st));

    /* SET <key> <value>: the value is the argument that grows `out`, at
     * offset `pre` of an empty buffer; growth asks for pre + value + slack
     * and doubles the capacity until that fits: to exactly `cap` here. */
    static const char *const pre_argv[] = {"SET", "regress:big"};
    size_t pre = encoded_len(2, pre_argv, NULL);
    size_t cap = c->out.cap ? c->out.cap : 1024;
    while (cap < BIG_TARGET)
        cap *= 2;
    g->big_len = cap - pre - WRITER_SLACK - TAIL_GAP;
    g->big = malloc(g->big_len);
    assert_non_null(g->big);
    memset(g->big, 'x', g->big_len);
    const char *argv[] = {"SET", "regress:big", g->big};
    size_t argvlen[] = {3, 11, g->big_len};

    for (;;) {
        if (g->rounds == MAX_ROUNDS)
            fail_msg("the kernel took %d x %zu bytes without blocking", g->rounds, g->big_len);
        assert_int_equal(aredis__buf_used(&c->out), 0);
        g->rounds++;
        assert_int_equal(aredis_command_argv(c, on_big, g, 3, argv, argvlen), AREDIS_ERR_OK);
        assert_true(ts_wait_until(g->loop, flushed, c, 5000));
        assert_int_equal(aredis_client_state(c), AREDIS_STATE_READY);
        if (c->out.off > 0) break; /* written in part, then the socket would block */
        /* Written whole (the kernel took it all): issue another. */
        if (aredis__buf_used(&c->out) != 0)
            fail_msg("the socket blocked before any byte of round %d went out", g->rounds);
    }
    assert_true(aredis__buf_used(&c->out) > 0);
    assert_int_equal(c->out.cap, cap);
    ts_log("stalled after %d round(s): off=%zu len=%zu cap=%zu (free tail %zu)", g->rounds,
           c->out.off, c->out.len, c->out.cap, c->out.cap - c->out.len);
}

/*
 * Issue the retryable command (prefix..., value) so that encoding its value
 * compacts `out`, and check that it did and that the command's span is
 * right. Returns its record, and the value (caller frees) in *val / *vlen.
 */
static aredis__cmd *submit_compacting(rig *g, int npre, const char *const *pre_argv,
                                      const char *head, ts_result *res, char **val, size_t *vlen) {
    aredis_client *c = g->c;
    aredis__buf *b = &c->out;
    const size_t off0 = b->off, len0 = b->len, cap0 = b->cap;
    const char *const data0 = b->data;
    const size_t used0 = len0 - off0, free0 = cap0 - len0;

    /*
     * The value argument is reached at len0 + pre and asks for value + slack:
     *   - more than the free tail:            value > free0 - pre - slack
     *   - fits once off0 bytes are reclaimed: value <= free0 + off0 - pre - slack
     *   - the command is longer than off0, so that a span taken before
     *     encoding would still lie inside the buffer (wrong, not wild).
     */
    size_t pre = encoded_len(npre, pre_argv, NULL);
    assert_true(npre + 1 < 10);
    assert_true(free0 > pre + WRITER_SLACK + 64);
    size_t lo = free0 - pre - WRITER_SLACK + 1;
    if (lo < off0) lo = off0;
    size_t hi = free0 + off0 - pre - WRITER_SLACK;
    assert_true(lo < hi);
    size_t n = lo + (hi - lo) / 2;
    char *v = malloc(n);
    assert_non_null(v);
    fill_value(v, n, head);

    const char *argv[10];
    size_t argvlen[10];
    for (int i = 0; i < npre; i++) {
        argv[i] = pre_argv[i];
        argvlen[i] = strlen(pre_argv[i]);
    }
    argv[npre] = v;
    argvlen[npre] = n;
    char *exp;
    size_t explen;
    assert_int_equal(aredis_format_argv(&exp, &explen, npre + 1, argv, argvlen), AREDIS_ERR_OK);
    assert_true(explen > free0);         /* does not fit the tail */
    assert_true(explen <= free0 + off0); /* fits after compaction */
    assert_true(explen > off0);          /* longer than the reclaimed prefix */

    /* The last unwritten bytes of the big command, to find them moved. */
    char tail[64];
    size_t tn = used0 < sizeof tail ? used0 : sizeof tail;
    memcpy(tail, b->data + len0 - tn, tn);

    memset(&g_log, 0, sizeof g_log);
    aredis_set_log_handler(capture_log, NULL, AREDIS_LOG_DEBUG);
    aredis_cmd_opts opts = AREDIS_CMD_OPTS_INIT;
    opts.flags = AREDIS_CMD_RETRYABLE;
    aredis_err e = aredis_command_argv_ex(c, &opts, ts_on_reply, res, npre + 1, argv, argvlen);
    aredis_set_log_handler(NULL, NULL, 0);
    assert_int_equal(e, AREDIS_ERR_OK);

    ts_log("issued %zu bytes: off %zu -> %zu, len %zu -> %zu, cap %zu -> %zu, data %s", explen,
           off0, b->off, len0, b->len, cap0, b->cap, b->data == data0 ? "kept" : "moved");
    /* Compaction, not a realloc, happened while encoding: the same block,
     * the prefix reclaimed, the unwritten bytes moved to the front, the
     * command right behind them. */
    assert_ptr_equal(b->data, data0);
    assert_int_equal(b->cap, cap0);
    assert_int_equal(b->off, 0);
    assert_int_equal(b->len, used0 + explen);
    assert_memory_equal(b->data + used0 - tn, tail, tn);
    assert_memory_equal(b->data + used0, exp, explen);

    /* The command's record: the last one sent, retryable, and its copy is
     * exactly its bytes. */
    aredis__cmd *cmd = c->sent.tail;
    assert_non_null(cmd);
    assert_ptr_equal(cmd->data, res);
    assert_true(cmd->flags & AREDIS__CMD_RETRY);
    assert_int_equal(cmd->end - cmd->start, explen);
    assert_int_equal(cmd->len, explen);
    assert_non_null(cmd->buf);
    assert_memory_equal(cmd->buf, exp, explen);

    /* Its DEBUG line was logged once, from the same span. */
    ts_log("log: %s", g_log.line);
    assert_int_equal(g_log.commands, 1);

    aredis_free_command(exp);
    *val = v;
    *vlen = n;
    return cmd;
}

/* Kill the stopped server, start it again on the same port, and wait for
 * the retryable command to complete over the new connection. */
static void restart_and_resend(rig *g, ts_result *res) {
    ts_server_restart(g->srv);
    assert_true(ts_wait(g->loop, &res->done, 10000));
    assert_int_equal(res->calls, 1);
    if (res->code != AREDIS_ERR_OK)
        fail_msg("re-sent command failed: %s %s", aredis_err_name(res->code), res->text);
    assert_int_equal(res->type, AREDIS_REPLY_STATUS);
    assert_string_equal(res->text, "OK");
    /* The big commands were partly written: at most once, they fail. */
    assert_true(ts_wait_count(g->loop, &g->big_done, (size_t)g->rounds, 5000));
    assert_int_equal(g->big_conn_errors, (size_t)g->rounds);
    assert_true(g->k.disconnects >= 1);
    assert_true(g->k.connects >= 2);
}

/* ---- Tests --------------------------------------------------------------- */

static void test_retry_copy_and_log_after_compaction(void **state) {
    (void)state;
    rig g;
    rig_start(&g);
    stall_output(&g);

    static const char *const pre[] = {"SET", "regress:key"};
    ts_result res = {0};
    char *v;
    size_t n;
    aredis__cmd *cmd = submit_compacting(&g, 2, pre, "regress-value-", &res, &v, &n);
    assert_false(cmd->flags & AREDIS__CMD_SENSITIVE);
    assert_non_null(strstr(g_log.line, " command: SET regress:key regress-value-"));

    restart_and_resend(&g, &res);

    ts_cmd_bytes(g.c, v, n, "GET regress:key");
    /* The big value never made it: the restarted server is empty. */
    aredis_future *f = ts_cmd(g.c, "EXISTS regress:big");
    assert_int_equal(aredis_future_reply(f)->integer, 0);
    aredis_future_release(f);

    free(v);
    rig_stop(&g);
}

static void test_sensitive_flag_after_compaction(void **state) {
    (void)state;
    rig g;
    rig_start(&g);
    stall_output(&g);

    static const char *const pre[] = {"CONFIG", "SET", "masterauth"};
    ts_result res = {0};
    char *v;
    size_t n;
    aredis__cmd *cmd = submit_compacting(&g, 3, pre, "S3CR3T-", &res, &v, &n);
    assert_true(cmd->flags & AREDIS__CMD_SENSITIVE);
    assert_non_null(strstr(g_log.line, " command: CONFIG SET masterauth <redacted>"));
    assert_null(strstr(g_log.line, "S3CR3T"));

    restart_and_resend(&g, &res);

    aredis_future *f = ts_cmd(g.c, "CONFIG GET masterauth");
    assert_null(aredis_future_error(f));
    aredis_reply *r = aredis_future_reply(f);
    assert_int_equal(r->elements, 2);
    assert_int_equal(r->element[1]->len, n);
    assert_memory_equal(r->element[1]->str, v, n);
    aredis_future_release(f);

    free(v);
    rig_stop(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_copy_and_log_after_compaction),
        cmocka_unit_test(test_sensitive_flag_after_compaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
