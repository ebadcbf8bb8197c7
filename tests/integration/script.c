/*
 * Scripts and functions (aredis/script.h): EVALSHA with the NOSCRIPT
 * fallback (after SCRIPT FLUSH the script still runs, one SCRIPT LOAD
 * later), EVALSHA_RO, the SHA1 computed locally, scripts in pipelines and
 * transactions (loaded ahead), FUNCTION LOAD and FCALL/FCALL_RO.
 */
#include <stdio.h>
#include <string.h>

#include "ts.h"

static const char *const k_src = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}";

/* The SHA1 the server computes equals ours. */
static void test_sha_matches_server(void **state) {
    ts_env *env = *state;
    aredis_script *s = aredis_script_new(k_src, 0);
    assert_non_null(s);
    aredis_future *f = ts_cmd(env->c, "SCRIPT LOAD %s", k_src);
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, aredis_script_sha(s));
    aredis_future_release(f);
    f = aredis_script_load_future(env->c, s);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->str, aredis_script_sha(s));
    aredis_future_release(f);
    aredis_script_free(s);
}

/* Count the scripts the server ran by their SHA (INFO commandstats would
 * do too): SCRIPT EXISTS tells whether it is cached. */
static int cached(aredis_client *c, const aredis_script *s) {
    aredis_future *f = ts_cmd(c, "SCRIPT EXISTS %s", aredis_script_sha(s));
    assert_null(aredis_future_error(f));
    int yes = (int)aredis_future_reply(f)->element[0]->integer;
    aredis_future_release(f);
    return yes;
}

static aredis_future *run(aredis_client *c, aredis_script *s, unsigned flags, const char *key,
                          const char *arg) {
    const char *keys[] = {key};
    const char *args[] = {arg};
    aredis_future *f = aredis_script_run_future(c, s, flags, 1, keys, NULL, 1, args, NULL);
    assert_non_null(f);
    aredis_await(f);
    return f;
}

/* After SCRIPT FLUSH the run still succeeds (NOSCRIPT → load → run once),
 * the caller sees only the result, and the script is cached again. */
static void test_noscript_fallback(void **state) {
    ts_env *env = *state;
    aredis_client *c = env->c;
    ts_cmd_ok(c, "SCRIPT FLUSH");
    ts_cmd_ok(c, "SET sc:n 0");
    aredis_script *s = aredis_script_new(k_src, 0);
    assert_int_equal(cached(c, s), 0);
    for (int round = 1; round <= 3; round++) {
        if (round == 3) ts_cmd_ok(c, "SCRIPT FLUSH");
        aredis_future *f = run(c, s, 0, "sc:n", "hello");
        assert_null(aredis_future_error(f));
        aredis_reply *r = aredis_future_reply(f);
        assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 3);
        assert_string_equal(r->element[0]->str, "sc:n");
        assert_string_equal(r->element[1]->str, "hello");
        assert_int_equal(r->element[2]->integer, round); /* ran exactly once per call */
        aredis_future_release(f);
        assert_int_equal(cached(c, s), 1);
    }
    aredis_script_free(s);
}

/* A Lua error is a server error with its prefix; the client goes on. */
static void test_script_error(void **state) {
    ts_env *env = *state;
    aredis_script *s = aredis_script_new("return redis.error_reply('MYERR bad thing')", 0);
    aredis_future *f = aredis_script_run_future(env->c, s, 0, 0, NULL, NULL, 0, NULL, NULL);
    aredis_await(f);
    assert_non_null(aredis_future_error(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_SERVER);
    assert_string_equal(aredis_future_error(f)->prefix, "MYERR");
    aredis_future_release(f);
    aredis_script_free(s);
    ts_echo_tokens(env->c, "after-script-error", 10, 5000, "a Lua error");
}

/* EVALSHA_RO refuses a script that writes; runs one that reads. */
static void test_read_only(void **state) {
    ts_env *env = *state;
    ts_cmd_ok(env->c, "SET sc:ro v1");
    aredis_script *rd = aredis_script_new("return redis.call('GET', KEYS[1])", 0);
    aredis_future *f = run(env->c, rd, AREDIS_SCRIPT_RO, "sc:ro", "x");
    assert_null(aredis_future_error(f));
    assert_string_equal(aredis_future_reply(f)->str, "v1");
    aredis_future_release(f);
    aredis_script *wr = aredis_script_new("return redis.call('SET', KEYS[1], ARGV[1])", 0);
    f = run(env->c, wr, AREDIS_SCRIPT_RO, "sc:ro", "v2");
    assert_non_null(aredis_future_error(f));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_SERVER);
    aredis_future_release(f);
    ts_cmd_bytes(env->c, "v1", 2, "GET sc:ro");
    aredis_script_free(rd);
    aredis_script_free(wr);
}

/* In a pipeline and in a transaction after SCRIPT FLUSH: loaded ahead,
 * its result in its own slot, the load's reply not among the results. */
static void test_in_pipeline_and_tx(void **state) {
    ts_env *env = *state;
    aredis_client *c = env->c;
    ts_cmd_ok(c, "SET sc:p 10");
    aredis_script *s = aredis_script_new(k_src, 0);
    const char *keys[] = {"sc:p"};
    const char *args[] = {"a"};
    for (int kind = 0; kind < 2; kind++) {
        ts_cmd_ok(c, "SCRIPT FLUSH");
        aredis_future *f;
        if (kind == 0) {
            aredis_pipeline *p = aredis_pipeline_new(c);
            assert_int_equal(aredis_pipeline_command(p, "PING"), AREDIS_ERR_OK);
            assert_int_equal(aredis_pipeline_script(p, s, 0, 1, keys, NULL, 1, args, NULL),
                             AREDIS_ERR_OK);
            assert_int_equal(aredis_pipeline_command(p, "GET sc:p"), AREDIS_ERR_OK);
            assert_int_equal(aredis_pipeline_size(p), 3);
            f = aredis_pipeline_exec_future(p);
            aredis_pipeline_free(p);
        } else {
            aredis_tx *tx = aredis_tx_new(c);
            assert_int_equal(aredis_tx_queue(tx, "PING"), AREDIS_ERR_OK);
            assert_int_equal(aredis_tx_script(tx, s, 0, 1, keys, NULL, 1, args, NULL),
                             AREDIS_ERR_OK);
            assert_int_equal(aredis_tx_queue(tx, "GET sc:p"), AREDIS_ERR_OK);
            f = aredis_tx_exec_future(tx);
            aredis_tx_free(tx);
        }
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        aredis_reply *r = aredis_future_reply(f);
        assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 3);
        assert_int_equal(r->element[1]->type, AREDIS_REPLY_ARRAY);
        long long want = 11 + kind;
        assert_int_equal(r->element[1]->element[2]->integer, want);
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", want);
        assert_string_equal(r->element[2]->str, buf);
        aredis_future_release(f);
    }
    aredis_script_free(s);
}

/* FUNCTION LOAD, FCALL and FCALL_RO. */
static void test_functions(void **state) {
    ts_env *env = *state;
    aredis_client *c = env->c;
    const char *lib = "#!lua name=aredis_testlib\n"
                      "redis.register_function('echo_key', function(keys, args) "
                      "return keys[1] .. '=' .. args[1] end)\n"
                      "redis.register_function{function_name='ro_get', callback=function(keys, "
                      "args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n";
    ts_result r = {0};
    assert_int_equal(aredis_function_load(c, lib, 0, 1, ts_on_reply, &r), AREDIS_ERR_OK);
    assert_true(ts_wait(env->loop, &r.done, 5000));
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_string_equal(r.text, "aredis_testlib");
    /* Loading it again without REPLACE is refused; with it, accepted. */
    aredis_future *lf = aredis_function_load_future(c, lib, 0, 0);
    assert_int_equal(aredis_await(lf), AREDIS_ERR_SERVER);
    aredis_future_release(lf);
    lf = aredis_function_load_future(c, lib, 0, 1);
    assert_int_equal(aredis_await(lf), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(lf)->str, "aredis_testlib");
    aredis_future_release(lf);
    const char *keys[] = {"fk"};
    const char *args[] = {"v"};
    aredis_future *f = aredis_fcall_future(c, "echo_key", 0, 1, keys, NULL, 1, args, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->str, "fk=v");
    aredis_future_release(f);
    ts_cmd_ok(c, "SET fk stored");
    f = aredis_fcall_future(c, "ro_get", AREDIS_SCRIPT_RO, 1, keys, NULL, 0, NULL, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(aredis_future_reply(f)->str, "stored");
    aredis_future_release(f);
    f = aredis_fcall_future(c, "no_such_function", 0, 0, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_SERVER);
    aredis_future_release(f);
}

/* Bad arguments are refused at the call; the callback never runs. */
static void test_invalid(void **state) {
    ts_env *env = *state;
    assert_null(aredis_script_new(NULL, 0));
    aredis_script *s = aredis_script_new("return 1", 0);
    ts_result r = {0};
    assert_int_equal(
        aredis_script_run(env->c, s, 0, ts_on_reply, &r, -1, NULL, NULL, 0, NULL, NULL),
        AREDIS_ERR_INVALID);
    assert_int_equal(aredis_script_run(env->c, s, 0, ts_on_reply, &r, 2, NULL, NULL, 0, NULL, NULL),
                     AREDIS_ERR_INVALID);
    assert_int_equal(r.calls, 0);
    aredis_script_free(s);
}

/* The script may be freed while a run is under way (script.h: "a run under
 * way keeps what it needs"): here the run still has its NOSCRIPT retry ahead
 * of it, which needs the source. Under ASan, a use-after-free before the
 * run held the script. NULL client or script: NULL from the future form,
 * refused at the call. */
static void test_free_during_run(void **state) {
    ts_env *env = *state;
    aredis_client *c = env->c;
    ts_cmd_ok(c, "SCRIPT FLUSH");
    ts_cmd_ok(c, "SET sc:free 0");
    static const char src[] = "return redis.call('INCR', KEYS[1])";
    aredis_script *s = aredis_script_new(src, 0);
    const char *keys[] = {"sc:free"};
    aredis_future *f = aredis_script_run_future(c, s, 0, 1, keys, NULL, 0, NULL, NULL);
    ts_result r = {0};
    assert_int_equal(aredis_script_run(c, s, 0, ts_on_reply, &r, 1, keys, NULL, 0, NULL, NULL),
                     AREDIS_ERR_OK);
    aredis_script_free(s); /* both runs are still waiting for their NOSCRIPT */
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_int_equal(aredis_future_reply(f)->integer, 1);
    aredis_future_release(f);
    assert_true(ts_wait(env->loop, &r.done, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, AREDIS_ERR_OK);
    assert_int_equal(r.integer, 2);
    f = ts_cmd(c, "GET sc:free");
    assert_string_equal(aredis_future_reply(f)->str, "2");
    aredis_future_release(f);

    s = aredis_script_new(src, 0);
    assert_null(aredis_script_run_future(NULL, s, 0, 0, NULL, NULL, 0, NULL, NULL));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    aredis_script_free(s);
    assert_null(aredis_script_run_future(c, NULL, 0, 0, NULL, NULL, 0, NULL, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_during_run),   cmocka_unit_test(test_sha_matches_server),
        cmocka_unit_test(test_noscript_fallback), cmocka_unit_test(test_script_error),
        cmocka_unit_test(test_read_only),         cmocka_unit_test(test_in_pipeline_and_tx),
        cmocka_unit_test(test_functions),         cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
