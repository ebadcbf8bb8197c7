/*
 * binary-values / binary-keys / utf8 / large-values (TEST-PLAN binary):
 * values and keys round-trip byte for byte, through both the format (%b)
 * and the argv interfaces.
 */
#include <stdlib.h>
#include <string.h>

#include "ts.h"

/* SET key val (argv), GET key (format %b), compare whole. */
static void roundtrip(const char *key, size_t klen, const char *val, size_t vlen) {
    ts_env *env = ts_env_get();
    const char *argv[] = {"SET", key, val};
    size_t lens[] = {3, klen, vlen};
    aredis_future *f = aredis_future_argv(env->c, 3, argv, lens);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    f = ts_cmd(env->c, "GET %b", key, klen);
    assert_null(aredis_future_error(f));
    aredis_reply *r = aredis_future_reply(f);
    assert_int_equal(r->type, AREDIS_REPLY_STRING);
    assert_int_equal(r->len, vlen);
    assert_memory_equal(r->str, val, vlen);
    assert_int_equal(r->str[vlen], '\0');
    aredis_future_release(f);
}

static void test_nul_bytes(void **state) {
    (void)state;
    static const char v[] = "foo\0bar\0baz";
    roundtrip("bin:nul", 7, v, sizeof v - 1);
}

static void test_all_256_bytes(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    char v[256];
    for (int i = 0; i < 256; i++)
        v[i] = (char)i;
    roundtrip("bin:all", 7, v, sizeof v);
    /* And through %b on the SET side too. */
    aredis_future *f = ts_cmd(env->c, "SET %s %b", "bin:all2", v, sizeof v);
    assert_null(aredis_future_error(f));
    aredis_future_release(f);
    f = ts_cmd(env->c, "STRLEN bin:all2");
    assert_int_equal(aredis_future_reply(f)->integer, 256);
    aredis_future_release(f);
}

static void test_binary_key(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    static const char k[] = "key\0with\xFFhigh";
    roundtrip(k, sizeof k - 1, "value", 5);
    /* The key exists under its exact bytes, not a truncated one. */
    aredis_future *f = ts_cmd(env->c, "EXISTS %b", "key", (size_t)3);
    assert_int_equal(aredis_future_reply(f)->integer, 0);
    aredis_future_release(f);
}

static void test_crlf_inside(void **state) {
    (void)state;
    static const char v[] = "line1\r\nline2\r\nline3";
    roundtrip("bin:crlf", 8, v, sizeof v - 1);
}

static void test_utf8(void **state) {
    (void)state;
    static const char v[] = "h\xC3\xA9llo w\xC3\xB6rld \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x9A\x80";
    static const char k[] = "bin:\xE2\x9C\x93";
    roundtrip(k, sizeof k - 1, v, sizeof v - 1);
}

static char *pattern(size_t n) {
    char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i * 31 + i / 251) & 0xFF);
    return p;
}

static void large(size_t n) {
    char *v = pattern(n);
    uint64_t t0 = ts_now_ms();
    roundtrip("bin:large", 9, v, n);
    ts_log("%zu bytes written and read back in %llu ms", n, (unsigned long long)(ts_now_ms() - t0));
    free(v);
}

static void test_1k(void **state) {
    (void)state;
    large(1024);
}
static void test_100k(void **state) {
    (void)state;
    large(100 * 1024);
}
static void test_1m(void **state) {
    (void)state;
    large(1024 * 1024);
}

static void test_10m(void **state) {
    (void)state;
    ts_env *env = ts_env_get();
    size_t n = 10 * 1024 * 1024;
    char *v = pattern(n);
    const char *argv[] = {"SET", "bin:10m", v};
    size_t lens[] = {3, 7, n};
    aredis_future *f = aredis_future_argv(env->c, 3, argv, lens);
    aredis_err e = aredis_await(f);
    if (e == AREDIS_ERR_SERVER) {
        ts_log("server refused 10 MiB: %s", aredis_future_error(f)->detail);
        assert_true(strlen(aredis_future_error(f)->detail) > 0);
    } else {
        assert_int_equal(e, AREDIS_ERR_OK);
        aredis_future *g = ts_cmd(env->c, "GET bin:10m");
        assert_int_equal(aredis_future_reply(g)->len, n);
        assert_memory_equal(aredis_future_reply(g)->str, v, n);
        aredis_future_release(g);
    }
    aredis_future_release(f);
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nul_bytes),  cmocka_unit_test(test_all_256_bytes),
        cmocka_unit_test(test_binary_key), cmocka_unit_test(test_crlf_inside),
        cmocka_unit_test(test_utf8),       cmocka_unit_test(test_1k),
        cmocka_unit_test(test_100k),       cmocka_unit_test(test_1m),
        cmocka_unit_test(test_10m),
    };
    return cmocka_run_group_tests(tests, ts_env_setup, ts_env_teardown);
}
