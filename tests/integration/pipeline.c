/*
 * Explicit pipelines (aredis/pipeline.h) against a real server, in RESP3 and
 * then RESP2: one write for many commands; one ARRAY of replies in order;
 * an error reply fails only its own slot; pipelines and plain commands
 * issued together keep their order and never mix replies; the refusals at
 * queue and exec time; a per-exec timeout; cancel; a connection killed in
 * the middle (the partial ARRAY holds what arrived); a pipeline issued while
 * connecting; free right after exec; a blocking command inside (its block
 * time extends the deadline); 10,000 commands in one pipeline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"
#include "ts.h"

static const char *const k_debug_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv;
static aredis_loop *g_loop;
static int g_proto; /* 3, then 2: main() runs the group once with each */

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_debug_conf, 0);
    g_loop = aredis_loop_new();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

/* A client speaking g_proto; timeout_ms 0: the default request timeout. */
static aredis_client *client_ex(uint32_t timeout_ms) {
    aredis_options o = ts_options(g_srv);
    o.protocol = g_proto;
    if (timeout_ms) o.request_timeout_ms = timeout_ms;
    aredis_client *c = ts_connect(g_loop, &o);
    assert_int_equal(aredis_client_protocol(c), g_proto);
    return c;
}

static aredis_client *client(void) { return client_ex(0); }

/* A second client (RESP2) to watch or disturb the first from outside. */
static aredis_client *observer(void) {
    aredis_options o = ts_options(g_srv);
    o.protocol = 2;
    return ts_connect(g_loop, &o);
}

/* ---- Recording exec outcomes -------------------------------------------- */

/* The string `tag-i` in each of r's n elements, in order. */
static void assert_tokens(const aredis_reply *r, const char *tag, int n) {
    ts_assert_array(r, (size_t)n);
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s-%d", tag, i);
        ts_assert_str(r->element[i], want);
    }
}

static void get_is(aredis_client *c, const char *key, const char *want) {
    aredis_future *f = ts_cmd(c, "GET %s", key);
    assert_null(aredis_future_error(f));
    if (want)
        ts_assert_str(aredis_future_reply(f), want);
    else
        assert_int_equal(aredis_future_reply(f)->type, AREDIS_REPLY_NIL);
    aredis_future_release(f);
}

static int is_connection_error(aredis_err e) { return e == AREDIS_ERR_IO || e == AREDIS_ERR_EOF; }

/* ---- One write, one result --------------------------------------------- */

/* 1,000 SETs on an idle connection leave in one write (a partial write on
 * a small socket buffer may add one or two: logged) and come back as one
 * ARRAY of 1,000 OKs. */
static void test_one_write(void **state) {
    (void)state;
    aredis_client *c = client();
    ts_cmd_ok(c, "SET pl:w:warm 1"); /* idle from here */
    aredis_client_stats before, after;
    aredis_client_get_stats(c, &before);

    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_non_null(p);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(aredis_pipeline_command(p, "SET pl:w:%d %d", i, i), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_size(p), 1000);
    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_non_null(f);
    assert_int_equal(aredis_pipeline_size(p), 0);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_client_get_stats(c, &after);

    aredis_reply *all = aredis_future_reply(f);
    ts_assert_array(all, 1000);
    for (size_t i = 0; i < 1000; i++)
        ts_assert_status(all->element[i], "OK");
    uint64_t writes = after.write_calls - before.write_calls;
    ts_log("1000-command pipeline: %llu write call(s), %llu bytes", (unsigned long long)writes,
           (unsigned long long)(after.bytes_out - before.bytes_out));
    assert_true(writes >= 1);
    assert_true(writes <= 3);
    assert_int_equal(after.commands - before.commands, 1000);
    assert_int_equal(after.replies - before.replies, 1000);
    aredis_future_release(f);
    get_is(c, "pl:w:999", "999");
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

/* A SET/INCR/GET mix, callback style: one element per command, in order,
 * each the command's own reply. */
static void test_results_in_order(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(p, "SET %s %d", "pl:o:n", 10), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "INCR pl:o:n"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "INCRBY pl:o:n %d", 5), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "GET pl:o:n"), AREDIS_ERR_OK);
    const char *argv[] = {"SET", "pl:o:s", "he\0llo"};
    const size_t lens[] = {3, 6, 6};
    assert_int_equal(aredis_pipeline_argv(p, 3, argv, lens), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "STRLEN pl:o:s"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "DEL pl:o:none"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "GET pl:o:none"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_size(p), 8);

    ts_rec x = {0};
    assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_OK);
    assert_int_equal(x.calls, 0); /* never from inside the call */
    assert_int_equal(aredis_pipeline_size(p), 0);
    ts_rec_wait(g_loop, &x, 5000);
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.code, AREDIS_ERR_OK);
    ts_assert_array(x.r, 8);
    ts_assert_status(x.r->element[0], "OK");
    ts_assert_int(x.r->element[1], 11);
    ts_assert_int(x.r->element[2], 16);
    ts_assert_str(x.r->element[3], "16");
    ts_assert_status(x.r->element[4], "OK");
    ts_assert_int(x.r->element[5], 6);
    ts_assert_int(x.r->element[6], 0);
    assert_int_equal(x.r->element[7]->type, AREDIS_REPLY_NIL);
    ts_rec_clear(&x);

    /* The builder is empty again and reusable at once. */
    assert_int_equal(aredis_pipeline_command(p, "GET pl:o:n"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_OK);
    ts_rec_wait(g_loop, &x, 5000);
    assert_int_equal(x.code, AREDIS_ERR_OK);
    ts_assert_array(x.r, 1);
    ts_assert_str(x.r->element[0], "16");
    ts_rec_clear(&x);
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

/* INCR on a string and LPUSH on a string: ERROR replies in their own slots,
 * the commands around them applied, the exec itself a success. */
static void test_error_reply_in_its_slot(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "SET pl:e:s text");
    aredis_pipeline_command(p, "INCR pl:e:s");
    aredis_pipeline_command(p, "LPUSH pl:e:s x");
    aredis_pipeline_command(p, "DEL pl:e:n");
    aredis_pipeline_command(p, "INCR pl:e:n");
    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_null(aredis_future_error(f));
    aredis_reply *all = aredis_future_reply(f);
    ts_assert_array(all, 5);
    ts_assert_status(all->element[0], "OK");
    assert_int_equal(all->element[1]->type, AREDIS_REPLY_ERROR);
    assert_true(strncmp(all->element[1]->str, "ERR", 3) == 0);
    assert_int_equal(all->element[2]->type, AREDIS_REPLY_ERROR);
    assert_true(strncmp(all->element[2]->str, "WRONGTYPE", 9) == 0);
    assert_int_equal(all->element[3]->type, AREDIS_REPLY_INTEGER);
    ts_assert_int(all->element[4], 1);
    aredis_future_release(f);
    get_is(c, "pl:e:s", "text");
    get_is(c, "pl:e:n", "1");
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

/* ---- Order among pipelines and plain commands --------------------------- */

typedef struct turn {
    aredis_client *c;
    ts_rec plain[4];
    ts_rec pipe[4];
    aredis_future *fut;
    size_t done;
} turn;

static aredis_pipeline *echo_pipeline(aredis_client *c, const char *tag, int n) {
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_non_null(p);
    for (int i = 0; i < n; i++)
        assert_int_equal(aredis_pipeline_command(p, "ECHO %s-%d", tag, i), AREDIS_ERR_OK);
    return p;
}

/* The first plain command's callback issues a pipeline and a plain command
 * of its own: they go behind everything issued before them. */
static void on_first_plain(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    turn *t = data;
    ts_on_rec(c, r, err, &t->plain[0]);
    aredis_pipeline *p = echo_pipeline(c, "cb", 7);
    if (aredis_pipeline_exec(p, ts_on_rec, &t->pipe[3]) != AREDIS_ERR_OK) t->pipe[3].calls = -1;
    aredis_pipeline_free(p); /* the exec goes on */
    if (aredis_command(c, ts_on_rec, &t->plain[3], "ECHO plain-3") != AREDIS_ERR_OK)
        t->plain[3].calls = -1;
}

/*
 * In one loop turn: plain ECHO, pipeline A, plain ECHO, pipeline B (built
 * while plain commands were issued between its queue calls), a future
 * pipeline C, plain ECHO; and from the first plain callback, pipeline D and
 * a plain ECHO. Every reply is its own command's, and completions follow
 * the issue order.
 */
static void test_concurrent_order(void **state) {
    (void)state;
    aredis_client *c = client();
    turn t;
    memset(&t, 0, sizeof t);
    t.c = c;
    for (int i = 0; i < 4; i++)
        t.plain[i].counter = t.pipe[i].counter = &t.done;

    aredis_pipeline *b = aredis_pipeline_new(c);
    assert_int_equal(aredis_command(c, on_first_plain, &t, "ECHO plain-0"), AREDIS_ERR_OK);
    aredis_pipeline *a = echo_pipeline(c, "a", 10);
    for (int i = 0; i < 10; i++) {
        /* B's commands and plain commands interleaved at issue time. */
        assert_int_equal(aredis_pipeline_command(b, "ECHO b-%d", i), AREDIS_ERR_OK);
        if (i == 4)
            assert_int_equal(aredis_command(c, ts_on_rec, &t.plain[1], "ECHO plain-1"),
                             AREDIS_ERR_OK);
    }
    assert_int_equal(aredis_pipeline_exec(a, ts_on_rec, &t.pipe[0]), AREDIS_ERR_OK);
    for (int i = 10; i < 20; i++)
        assert_int_equal(aredis_pipeline_command(b, "ECHO b-%d", i), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_exec(b, ts_on_rec, &t.pipe[1]), AREDIS_ERR_OK);
    aredis_pipeline *cp = echo_pipeline(c, "c", 5);
    aredis_future *fc = aredis_pipeline_exec_future(cp);
    assert_non_null(fc);
    assert_int_equal(aredis_command(c, ts_on_rec, &t.plain[2], "ECHO plain-2"), AREDIS_ERR_OK);

    assert_true(ts_wait_count(g_loop, &t.done, 7, 5000));
    assert_int_equal(aredis_await(fc), AREDIS_ERR_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(t.plain[i].calls, 1);
        assert_int_equal(t.plain[i].code, AREDIS_ERR_OK);
        char want[32];
        snprintf(want, sizeof want, "plain-%d", i);
        ts_assert_str(t.plain[i].r, want);
    }
    assert_int_equal(t.pipe[0].calls, 1);
    assert_int_equal(t.pipe[1].calls, 1);
    assert_int_equal(t.pipe[3].calls, 1);
    assert_int_equal(t.pipe[0].code, AREDIS_ERR_OK);
    assert_int_equal(t.pipe[1].code, AREDIS_ERR_OK);
    assert_int_equal(t.pipe[3].code, AREDIS_ERR_OK);
    assert_tokens(t.pipe[0].r, "a", 10);
    assert_tokens(t.pipe[1].r, "b", 20);
    assert_tokens(aredis_future_reply(fc), "c", 5);
    assert_tokens(t.pipe[3].r, "cb", 7);

    /* Issue order: plain-0, plain-1, A, B, (C: a future), plain-2, then
     * what plain-0's callback issued: D, plain-3. */
    assert_true(t.plain[0].seq < t.plain[1].seq);
    assert_true(t.plain[1].seq < t.pipe[0].seq);
    assert_true(t.pipe[0].seq < t.pipe[1].seq);
    assert_true(t.pipe[1].seq < t.plain[2].seq);
    assert_true(t.plain[2].seq < t.pipe[3].seq);
    assert_true(t.pipe[3].seq < t.plain[3].seq);

    for (int i = 0; i < 4; i++) {
        ts_rec_clear(&t.plain[i]);
        ts_rec_clear(&t.pipe[i]);
    }
    aredis_future_release(fc);
    aredis_pipeline_free(a);
    aredis_pipeline_free(b);
    aredis_pipeline_free(cp);
    ts_echo_tokens(c, "after-order", 10, 5000, "concurrent pipelines");
    aredis_client_free(c);
}

/* The same pipeline through all four exec forms; vcommand and argv forms. */
static aredis_err vcmd(aredis_pipeline *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis_pipeline_vcommand(p, fmt, ap);
    va_end(ap);
    return e;
}

static void fill_styles(aredis_pipeline *p, int form) {
    assert_int_equal(aredis_pipeline_command(p, "SET pl:st:%d %d", form, form * 10), AREDIS_ERR_OK);
    assert_int_equal(vcmd(p, "INCRBY pl:st:%d %d", form, 1), AREDIS_ERR_OK);
    const char *argv[] = {"GET", NULL};
    char key[32];
    snprintf(key, sizeof key, "pl:st:%d", form);
    argv[1] = key;
    assert_int_equal(aredis_pipeline_argv(p, 2, argv, NULL), AREDIS_ERR_OK);
}

static void test_styles(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    o.timeout_ms = 3000;
    for (int form = 0; form < 4; form++) {
        fill_styles(p, form);
        aredis_reply *all;
        ts_rec x = {0};
        aredis_future *f = NULL;
        if (form == 0)
            assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_OK);
        else if (form == 1)
            assert_int_equal(aredis_pipeline_exec_ex(p, &o, ts_on_rec, &x), AREDIS_ERR_OK);
        else if (form == 2)
            f = aredis_pipeline_exec_future(p);
        else
            f = aredis_pipeline_exec_future_ex(p, &o);
        if (f) {
            assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
            all = aredis_future_reply(f);
        } else {
            ts_rec_wait(g_loop, &x, 5000);
            assert_int_equal(x.code, AREDIS_ERR_OK);
            all = x.r;
        }
        ts_assert_array(all, 3);
        ts_assert_status(all->element[0], "OK");
        ts_assert_int(all->element[1], form * 10 + 1);
        char want[16];
        snprintf(want, sizeof want, "%d", form * 10 + 1);
        ts_assert_str(all->element[2], want);
        aredis_future_release(f);
        ts_rec_clear(&x);
    }
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

/* ---- Refusals ------------------------------------------------------------ */

static void test_empty_exec_invalid(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_pipeline *p = aredis_pipeline_new(c);
    ts_rec x = {0};
    assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    assert_int_equal(aredis_pipeline_exec_ex(p, &o, ts_on_rec, &x), AREDIS_ERR_INVALID);

    /* The future form: already failed. */
    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_non_null(f);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_INVALID);
    aredis_future_release(f);

    /* Cleared: empty again. */
    aredis_pipeline_command(p, "PING");
    aredis_pipeline_command(p, "PING");
    assert_int_equal(aredis_pipeline_size(p), 2);
    aredis_pipeline_clear(p);
    assert_int_equal(aredis_pipeline_size(p), 0);
    assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_INVALID);

    ts_echo_tokens(c, "after-empty", 3, 5000, "empty exec");
    assert_int_equal(x.calls, 0); /* never ran */
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

/* SUBSCRIBE & co., AUTH, HELLO: UNSUPPORTED at queue time, nothing queued
 * (the exec carries only the accepted commands). */
static void test_refused_commands(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(p, "ECHO first"), AREDIS_ERR_OK);
    const char *refused[] = {"SUBSCRIBE pl:ch",  "PSUBSCRIBE pl:*",  "UNSUBSCRIBE", "AUTH secret",
                             "AUTH user secret", "HELLO 3",          "hello 2",     "MONITOR",
                             "CLIENT REPLY OFF", "SSUBSCRIBE pl:sh", "RESET"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        aredis_err e = aredis_pipeline_command(p, refused[i]);
        if (e != AREDIS_ERR_UNSUPPORTED)
            fail_msg("%s: %s, want UNSUPPORTED", refused[i], aredis_err_name(e));
        assert_int_equal(aredis_call_error()->code, AREDIS_ERR_UNSUPPORTED);
        assert_int_equal(aredis_pipeline_size(p), 1);
    }
    const char *argv[] = {"SUBSCRIBE", "pl:ch2"};
    assert_int_equal(aredis_pipeline_argv(p, 2, argv, NULL), AREDIS_ERR_UNSUPPORTED);
    /* A NULL or malformed format: INVALID. */
    assert_int_equal(aredis_pipeline_command(p, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_pipeline_size(p), 1);
    assert_int_equal(aredis_pipeline_command(p, "ECHO last"), AREDIS_ERR_OK);

    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_array(aredis_future_reply(f), 2);
    ts_assert_str(aredis_future_reply(f)->element[0], "first");
    ts_assert_str(aredis_future_reply(f)->element[1], "last");
    aredis_future_release(f);
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

/* ---- Deadlines, cancel --------------------------------------------------- */

/*
 * A 200 ms deadline of its own around [SET, DEBUG SLEEP 1, SET], on a
 * client whose timeout is 10 s: TIMEOUT at about 200 ms with a (partial)
 * ARRAY; the late replies are dropped and later commands get their own.
 */
static void test_exec_timeout(void **state) {
    (void)state;
    aredis_client *c = client_ex(10000);
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    o.timeout_ms = 200;
    for (int form = 0; form < 2; form++) {
        aredis_pipeline *p = aredis_pipeline_new(c);
        aredis_pipeline_command(p, "SET pl:t:a %d", form);
        aredis_pipeline_command(p, "DEBUG SLEEP 1");
        aredis_pipeline_command(p, "SET pl:t:b %d", form);
        uint64_t t0 = ts_now_ms(), took;
        aredis_err code;
        const aredis_reply *partial;
        ts_rec x = {0};
        aredis_future *f = NULL;
        if (form == 0) {
            assert_int_equal(aredis_pipeline_exec_ex(p, &o, ts_on_rec, &x), AREDIS_ERR_OK);
            aredis_pipeline_free(p);
            ts_rec_wait(g_loop, &x, 5000);
            assert_int_equal(x.calls, 1);
            code = x.code;
            took = x.at - t0;
            partial = x.r;
        } else {
            f = aredis_pipeline_exec_future_ex(p, &o);
            aredis_pipeline_free(p);
            code = aredis_await(f);
            took = ts_now_ms() - t0;
            partial = aredis_future_reply(f);
        }
        ts_log("form %d: pipeline with DEBUG SLEEP 1 and 200 ms: %s after %llu ms, %zu of 3 "
               "replies",
               form, aredis_err_name(code), (unsigned long long)took,
               partial ? partial->elements : (size_t)0);
        assert_int_equal(code, AREDIS_ERR_TIMEOUT);
        assert_true(took >= 190);
        assert_true(took < 900);
        /* The replies that arrived: an ARRAY, maybe empty, never more. */
        assert_non_null(partial);
        assert_int_equal(partial->type, AREDIS_REPLY_ARRAY);
        assert_true(partial->elements <= 1);
        aredis_future_release(f);
        ts_rec_clear(&x);
        /* The late replies (3) must not reach these. */
        ts_echo_tokens(c, form ? "after-timeout-f" : "after-timeout-cb", 10, 5000,
                       "a timed-out pipeline");
    }
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    assert_int_equal(st.timeouts, 2);
    aredis_client_free(c);
}

/*
 * A deadline of its own (300 ms) around [SET, BLPOP empty 1, SET]: the
 * server answers the SET, then blocks; the exec fails with TIMEOUT and the
 * ARRAY of what arrived: exactly the first OK. (An explicit timeout_ms is
 * the whole pipeline's: the BLPOP's block time is not added to it.) The
 * rest is dropped when it comes; later commands get their own replies.
 */
static void test_timeout_keeps_partial_replies(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    o.timeout_ms = 300;
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "SET pl:tp:a 1");
    aredis_pipeline_command(p, "BLPOP pl:tp:empty 1");
    aredis_pipeline_command(p, "SET pl:tp:b 1");
    uint64_t t0 = ts_now_ms();
    aredis_future *f = aredis_pipeline_exec_future_ex(p, &o);
    assert_int_equal(aredis_await(f), AREDIS_ERR_TIMEOUT);
    uint64_t took = ts_now_ms() - t0;
    ts_log("pipeline [SET, BLPOP 1, SET] with 300 ms: TIMEOUT after %llu ms",
           (unsigned long long)took);
    assert_true(took >= 290 && took < 900);
    const aredis_reply *partial = aredis_future_reply(f);
    ts_assert_array(partial, 1);
    ts_assert_status(partial->element[0], "OK");
    aredis_future_release(f);
    aredis_pipeline_free(p);
    ts_echo_tokens(c, "after-partial", 10, 5000, "a timed-out pipeline with replies in");
    get_is(c, "pl:tp:b", "1"); /* it ran: the client only stopped waiting */
    aredis_client_free(c);
}

/* Cancel the exec future before the write and while the server sleeps in
 * the middle: CANCELLED at once, late replies dropped. */
static void test_cancel_exec_future(void **state) {
    (void)state;
    aredis_client *c = client();
    for (int when = 0; when < 2; when++) {
        aredis_pipeline *p = aredis_pipeline_new(c);
        aredis_pipeline_command(p, "DEBUG SLEEP 0.3");
        aredis_pipeline_command(p, "ECHO cancelled-%d", when);
        aredis_future *f = aredis_pipeline_exec_future(p);
        if (when == 1) /* in flight: the server is asleep */
            assert_int_equal(aredis_await_for(f, 100), AREDIS_ERR_TIMEOUT);
        assert_false(aredis_future_is_done(f));
        aredis_future_cancel(f);
        assert_true(aredis_future_is_done(f));
        assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
        const aredis_reply *partial = aredis_future_reply(f);
        if (partial) { /* what arrived before the cancel: nothing yet */
            assert_int_equal(partial->type, AREDIS_REPLY_ARRAY);
            assert_int_equal(partial->elements, 0);
        }
        aredis_future_release(f);
        aredis_pipeline_free(p);
        ts_echo_tokens(c, when ? "after-cancel-1" : "after-cancel-0", 10, 5000,
                       "a cancelled pipeline");
    }
    aredis_client_free(c);
}

/* ---- A connection lost in the middle ------------------------------------ */

static void on_conn(aredis_client *c, void *data) {
    (void)c;
    (*(size_t *)data)++;
}

/* Until the observer sees c's connection blocked in BLPOP. */
static void wait_blocked(aredis_client *obs, long long id) {
    uint64_t until = ts_now_ms() + 5000;
    for (;;) {
        aredis_future *f = ts_cmd(obs, "CLIENT LIST ID %lld", id);
        assert_null(aredis_future_error(f));
        const char *line = aredis_future_reply(f)->str;
        int blocked = line && strstr(line, "cmd=blpop") != NULL;
        aredis_future_release(f);
        if (blocked) return;
        if (ts_now_ms() > until) fail_msg("connection %lld never blocked in BLPOP", id);
    }
}

/*
 * [SET a, BLPOP (blocks), SET b]: the server answers SET a and blocks in
 * BLPOP; a second client kills the connection then. The exec fails with the
 * connection error and its partial ARRAY holds SET a's OK only; SET b never
 * ran; the client reconnects and goes on.
 */
static void test_connection_killed_midway(void **state) {
    (void)state;
    size_t connects = 0;
    aredis_options o = ts_options(g_srv);
    o.protocol = g_proto;
    o.on_connect = on_conn;
    o.cb_data = &connects;
    aredis_client *c = ts_connect(g_loop, &o);
    aredis_client *obs = observer();
    ts_cmd_ok(obs, "SET pl:k:b untouched");
    long long id = ts_client_id(c);

    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "SET pl:k:a set");
    aredis_pipeline_command(p, "BLPOP pl:k:list 5");
    aredis_pipeline_command(p, "SET pl:k:b set");
    ts_rec x = {0};
    assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_OK);
    aredis_pipeline_free(p);
    wait_blocked(obs, id);
    assert_int_equal(x.calls, 0);
    aredis_future *k = ts_cmd(obs, "CLIENT KILL ID %lld", id);
    assert_null(aredis_future_error(k));
    ts_assert_int(aredis_future_reply(k), 1);
    aredis_future_release(k);

    ts_rec_wait(g_loop, &x, 5000);
    ts_log("killed mid-pipeline: %s (%s), %zu of 3 replies", aredis_err_name(x.code), x.detail,
           x.r ? x.r->elements : (size_t)0);
    assert_int_equal(x.calls, 1);
    assert_true(is_connection_error(x.code));
    ts_assert_array(x.r, 1);
    ts_assert_status(x.r->element[0], "OK");
    ts_rec_clear(&x);
    get_is(obs, "pl:k:a", "set");
    get_is(obs, "pl:k:b", "untouched"); /* never ran */

    /* Back on a new connection: commands work, the pipeline was not resent. */
    assert_true(ts_wait_count(g_loop, &connects, 2, 5000));
    ts_echo_tokens(c, "after-kill", 10, 5000, "a pipeline killed midway");
    get_is(obs, "pl:k:b", "untouched");
    aredis_client_free(obs);
    aredis_client_free(c);
}

/* ---- Before connect; freed after exec ----------------------------------- */

/* Issued while the client connects (with plain commands around it): it
 * goes out after the handshake, in its place. */
static void test_queued_while_connecting(void **state) {
    (void)state;
    aredis_options o = ts_options(g_srv);
    o.protocol = g_proto;
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_not_equal(aredis_client_state(c), AREDIS_STATE_READY);

    size_t done = 0;
    ts_rec before = {.counter = &done}, after = {.counter = &done}, x = {.counter = &done};
    assert_int_equal(aredis_command(c, ts_on_rec, &before, "ECHO before"), AREDIS_ERR_OK);
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "SET pl:q:a queued");
    aredis_pipeline_command(p, "GET pl:q:a");
    aredis_pipeline_command(p, "ECHO inside");
    assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, ts_on_rec, &after, "ECHO after"), AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &done, 3, 5000));
    assert_int_equal(aredis_client_protocol(c), g_proto);
    ts_assert_str(before.r, "before");
    ts_assert_str(after.r, "after");
    assert_int_equal(x.code, AREDIS_ERR_OK);
    ts_assert_array(x.r, 3);
    ts_assert_status(x.r->element[0], "OK");
    ts_assert_str(x.r->element[1], "queued");
    ts_assert_str(x.r->element[2], "inside");
    assert_true(before.seq < x.seq && x.seq < after.seq);
    ts_rec_clear(&before);
    ts_rec_clear(&after);
    ts_rec_clear(&x);
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

/* Freed right after exec (both styles): the exec completes all the same. */
static void test_free_after_exec(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "SET pl:f:a 1");
    aredis_pipeline_command(p, "INCR pl:f:a");
    aredis_pipeline_command(p, "GET pl:f:a");
    aredis_future *f = aredis_pipeline_exec_future(p);
    aredis_pipeline_free(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_assert_array(aredis_future_reply(f), 3);
    ts_assert_int(aredis_future_reply(f)->element[1], 2);
    ts_assert_str(aredis_future_reply(f)->element[2], "2");
    aredis_future_release(f);

    p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "INCR pl:f:a");
    ts_rec x = {0};
    assert_int_equal(aredis_pipeline_exec(p, ts_on_rec, &x), AREDIS_ERR_OK);
    aredis_pipeline_free(p);
    ts_rec_wait(g_loop, &x, 5000);
    assert_int_equal(x.code, AREDIS_ERR_OK);
    ts_assert_array(x.r, 1);
    ts_assert_int(x.r->element[0], 3);
    ts_rec_clear(&x);
    aredis_client_free(c);
}

/* ---- A blocking command inside ------------------------------------------ */

/*
 * A 500 ms client timeout. [SET, BLPOP empty 1, GET]: the BLPOP's 1 s is
 * added to the deadline, so the pipeline completes after about 1 s with a
 * nil in the BLPOP's slot. [BLPOP list 3, ECHO]: still pending at 700 ms,
 * then released by a push from another client.
 */
static void test_blocking_inside(void **state) {
    (void)state;
    aredis_client *c = client_ex(500);
    aredis_client *obs = observer();

    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "SET pl:b:x 1");
    aredis_pipeline_command(p, "BLPOP pl:b:empty 1");
    aredis_pipeline_command(p, "GET pl:b:x");
    uint64_t t0 = ts_now_ms();
    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    uint64_t took = ts_now_ms() - t0;
    ts_log("pipeline with BLPOP 1 (client timeout 500 ms): done after %llu ms",
           (unsigned long long)took);
    assert_true(took >= 900);
    aredis_reply *all = aredis_future_reply(f);
    ts_assert_array(all, 3);
    ts_assert_status(all->element[0], "OK");
    assert_int_equal(all->element[1]->type, AREDIS_REPLY_NIL);
    ts_assert_str(all->element[2], "1");
    aredis_future_release(f);

    aredis_pipeline_command(p, "BLPOP pl:b:list 3");
    aredis_pipeline_command(p, "ECHO behind");
    f = aredis_pipeline_exec_future(p);
    assert_int_equal(aredis_await_for(f, 700), AREDIS_ERR_TIMEOUT);
    assert_false(aredis_future_is_done(f)); /* past the 500 ms: not cut */
    aredis_future *push = ts_cmd(obs, "RPUSH pl:b:list pushed");
    aredis_future_release(push);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    all = aredis_future_reply(f);
    ts_assert_array(all, 2);
    ts_assert_array(all->element[0], 2);
    ts_assert_str(all->element[0]->element[0], "pl:b:list");
    ts_assert_str(all->element[0]->element[1], "pushed");
    ts_assert_str(all->element[1], "behind");
    aredis_future_release(f);
    aredis_pipeline_free(p);
    aredis_client_free(obs);
    aredis_client_free(c);
}

/* ---- Size ---------------------------------------------------------------- */

static void test_ten_thousand(void **state) {
    (void)state;
    aredis_client *c = client();
    aredis_pipeline *p = aredis_pipeline_new(c);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(aredis_pipeline_command(p, "SET pl:big:%d v%d", i, i), AREDIS_ERR_OK);
    uint64_t t0 = ts_now_ms();
    aredis_future *f = aredis_pipeline_exec_future(p);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    ts_log("10,000-SET pipeline: %llu ms", (unsigned long long)(ts_now_ms() - t0));
    aredis_reply *all = aredis_future_reply(f);
    ts_assert_array(all, 10000);
    for (size_t i = 0; i < 10000; i++)
        ts_assert_status(all->element[i], "OK");
    aredis_future_release(f);
    get_is(c, "pl:big:0", "v0");
    get_is(c, "pl:big:9999", "v9999");
    aredis_pipeline_free(p);
    aredis_client_free(c);
}

static int run_group(int proto) {
    g_proto = proto;
    ts_log("---- RESP%d ----", proto);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_write),
        cmocka_unit_test(test_results_in_order),
        cmocka_unit_test(test_error_reply_in_its_slot),
        cmocka_unit_test(test_concurrent_order),
        cmocka_unit_test(test_styles),
        cmocka_unit_test(test_empty_exec_invalid),
        cmocka_unit_test(test_refused_commands),
        cmocka_unit_test(test_exec_timeout),
        cmocka_unit_test(test_timeout_keeps_partial_replies),
        cmocka_unit_test(test_cancel_exec_future),
        cmocka_unit_test(test_connection_killed_midway),
        cmocka_unit_test(test_queued_while_connecting),
        cmocka_unit_test(test_free_after_exec),
        cmocka_unit_test(test_blocking_inside),
        cmocka_unit_test(test_ten_thousand),
    };
    return cmocka_run_group_tests_name(proto == 3 ? "pipeline RESP3" : "pipeline RESP2", tests,
                                       setup, teardown);
}

int main(void) {
    int failed = run_group(3);
    failed += run_group(2);
    return failed ? 1 : 0;
}
