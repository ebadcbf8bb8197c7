/*
 * redis-versions (TEST-PLAN integration): INFO gives the version; the
 * common data types work; on 7+ GETEX PERSIST and SPUBLISH.
 */
#include <stdlib.h>
#include <string.h>

#include "ts.h"

static int g_major;

static aredis_reply *ok_reply(aredis_future *f) {
    if (aredis_future_error(f)) fail_msg("error: %s", aredis_future_error(f)->detail);
    return aredis_future_reply(f);
}

static long long int_of(aredis_client *c, const char *fmt, const char *a) {
    aredis_future *f = ts_cmd(c, fmt, a);
    aredis_reply *r = ok_reply(f);
    assert_int_equal(r->type, AREDIS_REPLY_INTEGER);
    long long v = r->integer;
    aredis_future_release(f);
    return v;
}

static void test_info_version(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    aredis_future *f = ts_cmd(env->c, "INFO server");
    aredis_reply *r = ok_reply(f);
    /* RESP3 sends INFO as a verbatim string, RESP2 as a bulk string. */
    assert_true(r->type == AREDIS_REPLY_VERB || r->type == AREDIS_REPLY_STRING);
    const char *v = strstr(r->str, "redis_version:");
    assert_non_null(v);
    g_major = atoi(v + strlen("redis_version:"));
    ts_log("server version: %.*s", (int)strcspn(v, "\r\n"), v);
    assert_true(g_major >= 2);
    assert_int_equal(g_major, ts_server_major_version());
    aredis_future_release(f);
}

static void test_types(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    ts_cmd_ok(env->c, "SET v:str hello");
    assert_int_equal(int_of(env->c, "APPEND %s !", "v:str"), 6);
    assert_int_equal(int_of(env->c, "HSET %s f1 a f2 b", "v:hash"), 2);
    assert_int_equal(int_of(env->c, "HLEN %s", "v:hash"), 2);
    assert_int_equal(int_of(env->c, "RPUSH %s a b c", "v:list"), 3);
    aredis_future *f = ts_cmd(env->c, "LRANGE v:list 0 -1");
    aredis_reply *r = ok_reply(f);
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[2]->str, "c");
    aredis_future_release(f);
    assert_int_equal(int_of(env->c, "SADD %s x y z x", "v:set"), 3);
    f = ts_cmd(env->c, "SMEMBERS v:set");
    r = ok_reply(f);
    assert_int_equal(r->type, AREDIS_REPLY_SET); /* RESP3 */
    assert_int_equal(r->elements, 3);
    aredis_future_release(f);
    assert_int_equal(int_of(env->c, "ZADD %s 1 one 2 two 3 three", "v:zset"), 3);
    f = ts_cmd(env->c, "ZSCORE v:zset two");
    r = ok_reply(f);
    assert_int_equal(r->type, AREDIS_REPLY_DOUBLE); /* RESP3 */
    assert_true(r->dval == 2.0);
    aredis_future_release(f);
    assert_int_equal(int_of(env->c, "PUBLISH %s hi", "v:chan"), 0);
}

static void test_redis7_commands(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    if (g_major < 7) {
        ts_log("server %d < 7: GETEX/SPUBLISH checked as errors only", g_major);
        return;
    }
    ts_cmd_ok(env->c, "SET v:ex val EX 100");
    aredis_future *f = ts_cmd(env->c, "GETEX v:ex PERSIST");
    assert_string_equal(ok_reply(f)->str, "val");
    aredis_future_release(f);
    assert_int_equal(int_of(env->c, "TTL %s", "v:ex"), -1);
    assert_int_equal(int_of(env->c, "SPUBLISH %s hi", "v:shard"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_version),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_redis7_commands),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
