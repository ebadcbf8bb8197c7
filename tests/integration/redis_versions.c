/*
 * redis-versions (TEST-PLAN integration): INFO gives the version (Valkey's
 * own from valkey_version), the one the fixture read from the binary; the
 * common data types work; GETEX PERSIST (6.2+) and SPUBLISH (7.0+), each
 * skipped by name on a server without it, after checking that the server
 * answers it with an unknown-command error.
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
    /* Valkey's own version is valkey_version (its redis_version says 7.2.4). */
    ts_version info;
    assert_int_equal(ts_info_version(r->str, &info), 0);
    const char *v = strstr(r->str, "redis_version:");
    assert_non_null(v);
    ts_log("server: %s %d.%d.%d (%.*s), Redis %d.%d features; the binary says %s", info.product,
           info.major, info.minor, info.patch, (int)strcspn(v, "\r\n"), v, info.redis_level / 100,
           info.redis_level % 100, ts_server_describe());
    g_major = info.major;
    assert_true(g_major >= 2);
    /* What the fixture read from "<binary> --version" is what runs. */
    const ts_version *bin = ts_server_version();
    assert_string_equal(info.product, bin->product);
    assert_int_equal(info.major, bin->major);
    assert_int_equal(info.minor, bin->minor);
    assert_int_equal(info.patch, bin->patch);
    assert_int_equal(info.redis_level, bin->redis_level);
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

/* A command the server lacks: an error reply, not a hang or a dropped
 * connection (and the fixture's version table agrees with the server). */
static void assert_unknown_command(aredis_client *c, const char *cmd) {
    aredis_future *f = ts_cmd(c, cmd);
    const aredis_error *e = aredis_future_error(f);
    if (!e) fail_msg("%s succeeded on %s, which should lack it", cmd, ts_server_describe());
    ts_log("%s on %s: %s", cmd, ts_server_describe(), e->detail);
    assert_non_null(strstr(e->detail, "unknown command"));
    aredis_future_release(f);
    ts_cmd_ok(c, "SET v:still-there yes"); /* the connection goes on */
}

static void test_getex(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    if (!ts_server_has(TS_FEATURE_GETEX)) assert_unknown_command(env->c, "GETEX v:ex PERSIST");
    ts_require(TS_FEATURE_GETEX);
    ts_cmd_ok(env->c, "SET v:ex val EX 100");
    aredis_future *f = ts_cmd(env->c, "GETEX v:ex PERSIST");
    assert_string_equal(ok_reply(f)->str, "val");
    aredis_future_release(f);
    assert_int_equal(int_of(env->c, "TTL %s", "v:ex"), -1);
}

static void test_spublish(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    if (!ts_server_has(TS_FEATURE_SPUBLISH)) assert_unknown_command(env->c, "SPUBLISH v:shard hi");
    ts_require(TS_FEATURE_SPUBLISH);
    assert_int_equal(int_of(env->c, "SPUBLISH %s hi", "v:shard"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_version),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_getex),
        cmocka_unit_test(test_spublish),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
