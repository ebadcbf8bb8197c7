/*
 * Unit tests for the client's command classifier (src/client/cmdclass.c)
 * as the command table drives it: block times of the blocking commands
 * (BLOCKING flag and block argument), read-only commands for
 * retry_read_only (READONLY flag), and the fast path's filter
 * (aredis__cc_initials, generated with the table) never changing a verdict:
 * for every command of the table, in several argument shapes, the inline
 * classifier and the slow one agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "proto/cmdtable.h"
#include "ts.h"

/* Classify argv (NULL-terminated) as the client encodes it. */
static unsigned classify(const char *const *argv, int want_ro, int slow, uint64_t *block_ms) {
    int argc = 0;
    while (argv[argc])
        argc++;
    char *cmd;
    size_t len;
    assert_int_equal(aredis_format_argv(&cmd, &len, argc, argv, NULL), AREDIS_ERR_OK);
    const char *why = NULL;
    uint64_t ms = UINT64_MAX;
    unsigned f = slow ? aredis__cmd_classify_slow(cmd, len, want_ro, &why, &ms, NULL)
                      : aredis__cmd_classify(cmd, len, want_ro, &why, &ms, NULL);
    if (f & AREDIS__CC_REFUSED) assert_non_null(why);
    if (block_ms) *block_ms = ms;
    aredis_free_command(cmd);
    return f;
}

#define CLASSIFY(ro, ms, ...) classify((const char *const[]){__VA_ARGS__, NULL}, ro, 0, ms)

/* ---- Blocking ----------------------------------------------------------- */

static void test_blocking(void **state) {
    (void)state;
    static const struct {
        const char *argv[12];
        int64_t ms; /* -1: not blocking */
    } cases[] = {
        {{"BLPOP", "k", "5", NULL}, 5000},
        {{"blpop", "k", "0.5", NULL}, 500},
        {{"BLPOP", "k", "0", NULL}, 0},
        {{"BLPOP", "k", "soon", NULL}, -1},
        {{"BRPOP", "a", "b", "1", NULL}, 1000},
        {{"BRPOPLPUSH", "a", "b", "0.5", NULL}, 500},
        {{"BLMOVE", "a", "b", "LEFT", "RIGHT", "2", NULL}, 2000},
        {{"BZPOPMIN", "z", "3", NULL}, 3000},
        {{"BZPOPMAX", "z", "0", NULL}, 0},
        {{"BLMPOP", "1.5", "1", "k", "LEFT", NULL}, 1500},
        {{"BZMPOP", "4", "1", "z", "MAX", NULL}, 4000},
        {{"XREAD", "BLOCK", "100", "STREAMS", "s", "0", NULL}, 100},
        {{"XREAD", "STREAMS", "s", "0", NULL}, -1},
        {{"XREAD", "STREAMS", "BLOCK", "100", "0", "0", NULL}, -1},
        {{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">", NULL}, 0},
        {{"WAIT", "1", "200", NULL}, 200},
        {{"WAITAOF", "1", "0", "300", NULL}, 300},
        {{"GET", "k", NULL}, -1},
        {{"SET", "k", "5", NULL}, -1},
        {{"CONFIG", "GET", "timeout", NULL}, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int slow = 0; slow <= 1; slow++) {
            uint64_t ms;
            unsigned f = classify(cases[i].argv, 0, slow, &ms);
            int blocking = (f & AREDIS__CC_BLOCKING) != 0;
            if (blocking != (cases[i].ms >= 0) || (blocking && ms != (uint64_t)cases[i].ms))
                fail_msg("%s %s: blocking %d, %llu ms; expected %lld", cases[i].argv[0],
                         cases[i].argv[1], blocking, (unsigned long long)ms,
                         (long long)cases[i].ms);
        }
    }
    /* More arguments than the classifier keeps on its stack. */
    const char *many[40] = {"BLPOP"};
    char keys[36][8];
    for (int i = 0; i < 36; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[1 + i] = keys[i];
    }
    many[37] = "7";
    many[38] = NULL;
    uint64_t ms;
    assert_true(classify(many, 0, 0, &ms) & AREDIS__CC_BLOCKING);
    assert_int_equal(ms, 7000);
}

/* ---- Read-only (retry_read_only) ---------------------------------------- */

/* What was read-only before the command table: every one still is. */
static const char *const k_old_read_only[] = {
    "BITCOUNT",
    "BITPOS",
    "DBSIZE",
    "DUMP",
    "ECHO",
    "EXISTS",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HVALS",
    "INFO",
    "KEYS",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "MGET",
    "PFCOUNT",
    "PING",
    "PTTL",
    "RANDOMKEY",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUNION",
    "TIME",
    "TTL",
    "TYPE",
    "XLEN",
    "XRANGE",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
};

static void test_read_only(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_old_read_only / sizeof *k_old_read_only; i++) {
        if (!(CLASSIFY(1, NULL, k_old_read_only[i], "k") & AREDIS__CC_READ_ONLY))
            fail_msg("%s is no longer read-only", k_old_read_only[i]);
        assert_true(aredis__cmd_is_read_only(k_old_read_only[i], strlen(k_old_read_only[i]), NULL,
                                             0, NULL));
    }
    /* The table's READONLY flag brings more, subcommands included. */
    assert_true(CLASSIFY(1, NULL, "OBJECT", "ENCODING", "k") & AREDIS__CC_READ_ONLY);
    assert_true(CLASSIFY(1, NULL, "xinfo", "stream", "s") & AREDIS__CC_READ_ONLY);
    assert_true(CLASSIFY(1, NULL, "EVAL_RO", "return 1", "0") & AREDIS__CC_READ_ONLY);
    assert_true(CLASSIFY(1, NULL, "SORT_RO", "k") & AREDIS__CC_READ_ONLY);
    assert_true(CLASSIFY(1, NULL, "get", "k") & AREDIS__CC_READ_ONLY);
    assert_true(CLASSIFY(1, NULL, "ping") & AREDIS__CC_READ_ONLY);
    /* Writes and the rest are not. */
    static const char *const writes[][4] = {
        {"SET", "k", "v", NULL},
        {"INCR", "k", NULL},
        {"EVAL", "return 1", "0", NULL},
        {"CONFIG", "GET", "x", NULL},
        {"OBJECT", "nope", NULL},
        {"NOSUCHCOMMAND", NULL},
        {"GETDEL", "k", NULL},
        {"XREADGROUP", "GROUP", "g", NULL},
        {"PINGX", NULL},
        {"SORT", "k", NULL},
    };
    for (size_t i = 0; i < sizeof writes / sizeof *writes; i++)
        if (classify(writes[i], 1, 0, NULL) & AREDIS__CC_READ_ONLY)
            fail_msg("%s is taken for read-only", writes[i][0]);
    /* Without want_ro the test is not made. */
    assert_false(CLASSIFY(0, NULL, "GET", "k") & AREDIS__CC_READ_ONLY);
}

/* ---- Refusals, barriers, secrets (unchanged by the table) --------------- */

static void test_other_classes(void **state) {
    (void)state;
    assert_true(CLASSIFY(0, NULL, "SUBSCRIBE", "ch") & AREDIS__CC_REFUSED);
    assert_true(CLASSIFY(0, NULL, "sunsubscribe") & AREDIS__CC_REFUSED);
    assert_true(CLASSIFY(0, NULL, "MONITOR") & AREDIS__CC_REFUSED);
    assert_true(CLASSIFY(0, NULL, "PSYNC", "?", "-1") & AREDIS__CC_REFUSED);
    assert_true(CLASSIFY(0, NULL, "RESET") & AREDIS__CC_REFUSED);
    assert_true(CLASSIFY(0, NULL, "WATCH", "k") & AREDIS__CC_REFUSED);
    assert_true(CLASSIFY(0, NULL, "unwatch") & AREDIS__CC_REFUSED);
    assert_true(CLASSIFY(0, NULL, "CLIENT", "REPLY", "OFF") & AREDIS__CC_REFUSED);
    assert_false(CLASSIFY(0, NULL, "CLIENT", "REPLY", "ON") & AREDIS__CC_REFUSED);
    assert_int_equal(CLASSIFY(0, NULL, "AUTH", "pw"),
                     AREDIS__CC_BARRIER | AREDIS__CC_SENSITIVE | AREDIS__CC_SESSION);
    /* What a pool's next user would inherit (client/session.c). */
    assert_int_equal(CLASSIFY(0, NULL, "MULTI"), AREDIS__CC_SESSION);
    assert_int_equal(CLASSIFY(0, NULL, "exec"), AREDIS__CC_SESSION);
    assert_int_equal(CLASSIFY(0, NULL, "DISCARD"), AREDIS__CC_SESSION);
    assert_int_equal(CLASSIFY(0, NULL, "SELECT", "2"), AREDIS__CC_SESSION);
    assert_int_equal(CLASSIFY(0, NULL, "SET", "k", "v"), 0);
    assert_true(CLASSIFY(0, NULL, "HELLO", "3") & AREDIS__CC_BARRIER);
    assert_true(CLASSIFY(0, NULL, "CONFIG", "SET", "requirepass", "x") & AREDIS__CC_SENSITIVE);
    assert_int_equal(CLASSIFY(0, NULL, "GET", "k"), 0);
}

/* ---- The fast path's filter --------------------------------------------- */

/* Argument shapes that make some command of the table blocking, refused,
 * a barrier or secret-bearing. */
static const char *const k_shapes[][10] = {
    {NULL},
    {"0", NULL},
    {"k", "0", NULL},
    {"1", "1", "0", NULL},
    {"a", "b", "LEFT", "RIGHT", "0", NULL},
    {"0", "1", "k", "LEFT", NULL},
    {"BLOCK", "0", "STREAMS", "s", "0", NULL},
    {"GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">", NULL},
    {"REPLY", "OFF", NULL},
    {"SET", "requirepass", "x", NULL},
    {"SETUSER", "u", ">pw", NULL},
    {"3", "AUTH", "u", "pw", NULL},
    {"h", "6379", "k", "0", "5000", "AUTH", "pw", NULL},
};

static void check_agree(const char *name) {
    for (size_t s = 0; s < sizeof k_shapes / sizeof *k_shapes; s++) {
        const char *argv[12] = {name};
        size_t n = 1;
        for (; k_shapes[s][n - 1]; n++)
            argv[n] = k_shapes[s][n - 1];
        argv[n] = NULL;
        uint64_t ms_fast, ms_slow;
        unsigned fast = classify(argv, 0, 0, &ms_fast);
        unsigned slow = classify(argv, 0, 1, &ms_slow);
        if (fast != slow)
            fail_msg("%s (shape %zu): the fast path says %u, the slow one %u: add it to "
                     "k_classified in tools/gencommands.c and run make commands",
                     name, s, fast, slow);
        if ((slow & AREDIS__CC_BLOCKING) && ms_fast != ms_slow)
            fail_msg("%s: block times differ", name);
    }
}

static void test_filter(void **state) {
    (void)state;
    for (size_t i = 0; i < aredis__cmdtable_count; i++) {
        const aredis__cmdinfo *ci = &aredis__cmdtable_builtin[i];
        char up[64];
        size_t n = strlen(ci->name);
        assert_true(n < sizeof up);
        for (size_t k = 0; k <= n; k++)
            up[k] =
                (char)(ci->name[k] >= 'a' && ci->name[k] <= 'z' ? ci->name[k] - 32 : ci->name[k]);
        check_agree(ci->name);
        check_agree(up);
        /* Every blocking command passes the filter (or is too long for it). */
        if ((ci->flags & AREDIS__CF_BLOCKING) && n <= 9)
            assert_true((aredis__cc_initials[n] >> (ci->name[0] - 'a')) & 1u);
    }
    /* Sentinel's commands are not in a plain server's table. */
    check_agree("SENTINEL");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocking),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_other_classes),
        cmocka_unit_test(test_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
