/*
 * Unit tests for the command table (src/proto/cmdtable.c and the generated
 * cmdtable_data.c): lookup (any case, subcommands, containers, unknown
 * names), key positions from the key specs over commands of every spec
 * shape, block times, splitting an encoded command, and tables loaded from
 * synthetic COMMAND replies (RESP2 and RESP3 forms).
 *
 * Expected key positions are Redis 7.0's (COMMAND GETKEYS agrees wherever
 * it answers from the key specs; where it falls back to a key function the
 * comment says what the table does instead).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cmdtable.h"
#include "ts.h"

/* ---- Helpers ------------------------------------------------------------ */

#define MAXARGS 32

/* argv (NULL-terminated) as table arguments. */
static size_t to_args(const char *const *argv, aredis__arg *args) {
    size_t n = 0;
    while (argv[n]) {
        assert_true(n < MAXARGS);
        args[n].p = argv[n];
        args[n].n = strlen(argv[n]);
        n++;
    }
    return n;
}

static const aredis__cmdinfo *lookup_in(const aredis__cmdtable *extra, const char *const *argv) {
    aredis__arg args[MAXARGS];
    size_t n = to_args(argv, args);
    return aredis__cmd_lookup(extra, args, n);
}

#define LOOKUP(...) lookup_in(NULL, (const char *const[]){__VA_ARGS__, NULL})

/* Is ci an entry (or subcommand) of the loaded table t? */
static int from_table(const aredis__cmdtable *t, const aredis__cmdinfo *ci) {
    size_t n;
    const aredis__cmdinfo *e = aredis__cmdtable_entries(t, &n);
    for (size_t i = 0; i < n; i++) {
        if (ci == &e[i]) return 1;
        for (size_t j = 0; j < e[i].nsubs; j++)
            if (ci == &e[i].subs[j]) return 1;
    }
    return 0;
}

/* ---- Lookup ------------------------------------------------------------- */

static void test_source(void **state) {
    (void)state;
    assert_true(strncmp(aredis__cmdtable_source, "redis ", 6) == 0 ||
                strncmp(aredis__cmdtable_source, "valkey ", 7) == 0);
    assert_true(aredis__cmdtable_count > 200);
    /* Sorted, lower case, unique: what the binary search needs. */
    for (size_t i = 0; i < aredis__cmdtable_count; i++) {
        const aredis__cmdinfo *ci = &aredis__cmdtable_builtin[i];
        for (const char *p = ci->name; *p; p++)
            assert_false(*p >= 'A' && *p <= 'Z');
        if (i) assert_true(strcmp(aredis__cmdtable_builtin[i - 1].name, ci->name) < 0);
        for (size_t j = 0; j < ci->nsubs; j++) {
            size_t cl = strlen(ci->name);
            assert_memory_equal(ci->subs[j].name, ci->name, cl);
            assert_int_equal(ci->subs[j].name[cl], '|');
            if (j) assert_true(strcmp(ci->subs[j - 1].name, ci->subs[j].name) < 0);
        }
        assert_int_equal(!!(ci->flags & AREDIS__CF_HAS_SUBCOMMANDS), ci->nsubs > 0);
    }
}

static void test_lookup_case(void **state) {
    (void)state;
    const aredis__cmdinfo *get = LOOKUP("get");
    assert_non_null(get);
    assert_string_equal(get->name, "get");
    assert_ptr_equal(LOOKUP("GET"), get);
    assert_ptr_equal(LOOKUP("gEt", "k"), get);
    assert_int_equal(get->arity, 2);
    assert_true(get->flags & AREDIS__CF_READONLY);
    assert_true(get->flags & AREDIS__CF_FAST);
    assert_string_equal(get->group, "string");
    assert_string_equal(get->since, "1.0.0");
    /* Names with '-' and '_' and the first and last entries. */
    assert_string_equal(LOOKUP("RESTORE-ASKING")->name, "restore-asking");
    assert_string_equal(LOOKUP("georadius_ro")->name, "georadius_ro");
    assert_ptr_equal(LOOKUP(aredis__cmdtable_builtin[0].name), &aredis__cmdtable_builtin[0]);
    const aredis__cmdinfo *last = &aredis__cmdtable_builtin[aredis__cmdtable_count - 1];
    assert_ptr_equal(LOOKUP(last->name), last);
    /* Every entry finds itself in upper case, and every subcommand. */
    for (size_t i = 0; i < aredis__cmdtable_count; i++) {
        const aredis__cmdinfo *ci = &aredis__cmdtable_builtin[i];
        char up[64], sub[64];
        size_t n = strlen(ci->name);
        assert_true(n < sizeof up);
        for (size_t k = 0; k <= n; k++)
            up[k] =
                (char)(ci->name[k] >= 'a' && ci->name[k] <= 'z' ? ci->name[k] - 32 : ci->name[k]);
        assert_ptr_equal(LOOKUP(up), ci);
        for (size_t j = 0; j < ci->nsubs; j++) {
            snprintf(sub, sizeof sub, "%s", ci->subs[j].name + n + 1);
            assert_ptr_equal(LOOKUP(up, sub), &ci->subs[j]);
        }
    }
}

static void test_lookup_subcommands(void **state) {
    (void)state;
    const aredis__cmdinfo *ci = LOOKUP("CONFIG", "GET", "maxmemory");
    assert_non_null(ci);
    assert_string_equal(ci->name, "config|get");
    assert_true(ci->flags & AREDIS__CF_ADMIN);
    assert_false(ci->flags & AREDIS__CF_HAS_SUBCOMMANDS);
    assert_string_equal(LOOKUP("config", "set", "a", "b")->name, "config|set");
    ci = LOOKUP("XINFO", "stream", "s");
    assert_string_equal(ci->name, "xinfo|stream");
    assert_true(ci->flags & AREDIS__CF_READONLY);
    ci = LOOKUP("object", "ENCODING", "k");
    assert_string_equal(ci->name, "object|encoding");
    assert_string_equal(ci->group, "generic");
    assert_string_equal(LOOKUP("CLIENT", "NO-EVICT", "on")->name, "client|no-evict");
    /* A container without a subcommand it knows: the container. */
    ci = LOOKUP("CONFIG", "FROBNICATE");
    assert_string_equal(ci->name, "config");
    assert_true(ci->flags & AREDIS__CF_HAS_SUBCOMMANDS);
    assert_ptr_equal(LOOKUP("CONFIG"), ci);
    assert_ptr_equal(LOOKUP("CONFIG", ""), ci);
    assert_ptr_equal(LOOKUP("CONFIG", "GET\xff"), ci);
    /* A command without subcommands ignores its arguments. */
    assert_string_equal(LOOKUP("GET", "config")->name, "get");
}

static void test_lookup_unknown(void **state) {
    (void)state;
    assert_null(LOOKUP("NOPE"));
    assert_null(LOOKUP("GE"));
    assert_null(LOOKUP("GETX"));
    assert_null(LOOKUP(""));
    assert_null(LOOKUP("config|get")); /* a subcommand is not a name of its own */
    assert_null(aredis__cmd_lookup(NULL, NULL, 0));
    aredis__arg a = {"GET", 3};
    assert_null(aredis__cmd_lookup(NULL, &a, 0));
    /* Bytes, not C strings: a NUL inside a name matches nothing. */
    aredis__arg nul = {"GET\0", 4};
    assert_null(aredis__cmd_lookup(NULL, &nul, 1));
    aredis__arg cut = {"GETSET", 3};
    assert_string_equal(aredis__cmd_lookup(NULL, &cut, 1)->name, "get");
}

/* ---- Keys --------------------------------------------------------------- */

typedef struct keys_case {
    const char *argv[24]; /* NULL-terminated */
    int nkeys;            /* -1: the keys cannot be known */
    int pos[12];
} keys_case;

static const keys_case k_keys[] = {
    /* index + range */
    {{"GET", "k", NULL}, 1, {1}},
    {{"get", "k", NULL}, 1, {1}},
    {{"SET", "k", "v", NULL}, 1, {1}},
    {{"SET", "k", "v", "GET", "EX", "10", NULL}, 1, {1}}, /* VARIABLE_FLAGS: positions hold */
    {{"GETEX", "k", "EX", "10", NULL}, 1, {1}},
    {{"GETDEL", "k", NULL}, 1, {1}},
    {{"DUMP", "k", NULL}, 1, {1}},
    {{"RESTORE", "k", "0", "payload", "REPLACE", NULL}, 1, {1}},
    {{"XADD", "s", "*", "f", "v", NULL}, 1, {1}},
    {{"HSET", "h", "f", "v", "g", "w", NULL}, 1, {1}},
    {{"SMISMEMBER", "k", "m1", "m2", NULL}, 1, {1}},
    {{"BITFIELD", "k", "GET", "u8", "0", NULL}, 1, {1}},
    {{"ZADD", "z", "1", "m", NULL}, 1, {1}},
    {{"MGET", "a", "b", "c", NULL}, 3, {1, 2, 3}},
    {{"DEL", "a", "b", NULL}, 2, {1, 2}},
    {{"UNLINK", "a", "b", NULL}, 2, {1, 2}},
    {{"EXISTS", "a", "b", "c", NULL}, 3, {1, 2, 3}},
    {{"TOUCH", "a", "b", NULL}, 2, {1, 2}},
    {{"WATCH", "a", "b", NULL}, 2, {1, 2}},
    {{"MSET", "k1", "v1", "k2", "v2", NULL}, 2, {1, 3}}, /* keystep 2 */
    {{"MSETNX", "k1", "v1", "k2", "v2", "k3", "v3", NULL}, 3, {1, 3, 5}},
    {{"RENAME", "a", "b", NULL}, 2, {1, 2}},
    {{"COPY", "a", "b", "DB", "1", NULL}, 2, {1, 2}},
    {{"SMOVE", "src", "dst", "m", NULL}, 2, {1, 2}},
    {{"RPOPLPUSH", "a", "b", NULL}, 2, {1, 2}},
    {{"LMOVE", "s", "d", "LEFT", "RIGHT", NULL}, 2, {1, 2}},
    {{"BLMOVE", "s", "d", "LEFT", "RIGHT", "0", NULL}, 2, {1, 2}},
    {{"LCS", "a", "b", "LEN", NULL}, 2, {1, 2}},
    {{"ZRANGESTORE", "d", "s", "0", "-1", NULL}, 2, {1, 2}},
    {{"GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km", NULL}, 2, {1, 2}},
    {{"BITOP", "AND", "d", "a", "b", NULL}, 3, {2, 3, 4}},
    {{"PFMERGE", "d", "a", "b", NULL}, 3, {1, 2, 3}},
    {{"SUNIONSTORE", "d", "a", "b", NULL}, 3, {1, 2, 3}},
    /* keys before a trailing argument: lastkey -2 */
    {{"BLPOP", "a", "b", "5", NULL}, 2, {1, 2}},
    {{"BRPOP", "a", "0", NULL}, 1, {1}},
    {{"BZPOPMIN", "z1", "z2", "z3", "0.5", NULL}, 3, {1, 2, 3}},
    /* subcommands: keys counted from the container's name */
    {{"OBJECT", "ENCODING", "k", NULL}, 1, {2}},
    {{"OBJECT", "FREQ", "k", NULL}, 1, {2}},
    {{"MEMORY", "USAGE", "k", "SAMPLES", "5", NULL}, 1, {2}},
    {{"XINFO", "STREAM", "s", "FULL", NULL}, 1, {2}},
    {{"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM", NULL}, 1, {2}},
    /* keynum */
    {{"EVAL", "return 1", "2", "k1", "k2", "a1", NULL}, 2, {3, 4}},
    {{"EVAL", "return 1", "0", NULL}, 0, {0}},
    {{"EVAL", "return 1", "0", "a1", "a2", NULL}, 0, {0}},
    {{"EVAL", "return 1", "x", "k", NULL}, -1, {0}},  /* numkeys not a number */
    {{"EVAL", "return 1", "3", "k", NULL}, -1, {0}},  /* more keys than arguments */
    {{"EVAL", "return 1", "-1", "k", NULL}, -1, {0}}, /* negative */
    {{"EVAL", "return 1", "01", "k", NULL}, -1, {0}}, /* not as Redis writes numbers */
    {{"EVAL", "return 1", " 1", "k", NULL}, -1, {0}},
    {{"EVALSHA", "abc", "1", "k", "a", NULL}, 1, {3}},
    {{"EVAL_RO", "return 1", "1", "k", NULL}, 1, {3}},
    {{"FCALL", "f", "2", "a", "b", "x", NULL}, 2, {3, 4}},
    {{"FCALL_RO", "f", "1", "a", NULL}, 1, {3}},
    {{"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2", NULL}, 3, {1, 3, 4}},
    {{"ZINTERSTORE", "d", "1", "a", NULL}, 2, {1, 3}},
    {{"ZINTER", "2", "a", "b", NULL}, 2, {2, 3}},
    {{"ZUNION", "3", "a", "b", "c", "WITHSCORES", NULL}, 3, {2, 3, 4}},
    {{"ZDIFF", "2", "a", "b", "WITHSCORES", NULL}, 2, {2, 3}},
    {{"SINTERCARD", "2", "a", "b", "LIMIT", "5", NULL}, 2, {2, 3}},
    {{"LMPOP", "2", "a", "b", "LEFT", NULL}, 2, {2, 3}},
    {{"BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "2", NULL}, 2, {3, 4}},
    {{"BZMPOP", "1.5", "1", "z", "MIN", NULL}, 1, {3}},
    /* keyword + range */
    {{"XREAD", "STREAMS", "s1", "s2", "0", "0", NULL}, 2, {2, 3}}, /* limit 2: half */
    {{"XREAD", "COUNT", "10", "BLOCK", "100", "STREAMS", "s1", "$", NULL}, 1, {6}},
    {{"xread", "block", "0", "streams", "a", "b", "c", "1", "2", "3", NULL}, 3, {4, 5, 6}},
    {{"XREAD", "STREAMS", "a", "b", "0", NULL}, 1, {2}}, /* odd count: as Redis */
    {{"XREAD", "COUNT", "1", "STREAMS", NULL}, 0, {0}},  /* keyword last: not searched */
    {{"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s1", "s2", ">", ">", NULL},
     2,
     {7, 8}},
    {{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "5", "NOACK", "STREAMS", "s", ">", NULL}, 1, {8}},
    {{"GEORADIUS", "k", "0", "0", "10", "km", NULL}, 1, {1}},
    {{"GEORADIUS", "k", "0", "0", "10", "km", "STORE", "d", NULL}, 2, {1, 7}},
    {{"GEORADIUS", "k", "0", "0", "10", "km", "WITHDIST", "STOREDIST", "d", NULL}, 2, {1, 8}},
    {{"GEORADIUSBYMEMBER", "k", "m", "10", "km", "STORE", "d", NULL}, 2, {1, 6}},
    {{"GEORADIUS", "k", "0", "0", "10", "km", "STORE", NULL}, 1, {1}}, /* keyword last */
    /* MIGRATE: its key, or KEYS ..., an INCOMPLETE spec ("KEYS" may be an
     * AUTH password): then the keys are not known. */
    {{"MIGRATE", "h", "6379", "k", "0", "5000", NULL}, 1, {3}},
    {{"MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "REPLACE", NULL}, 1, {3}},
    {{"MIGRATE", "h", "6379", "", "0", "5000", "KEYS", "a", "b", NULL}, -1, {0}},
    /* SORT: BY/GET/STORE specs of an unknown kind (Redis falls back to its
     * own key function; the table cannot). */
    {{"SORT", "k", NULL}, -1, {0}},
    {{"SORT", "k", "BY", "w", "GET", "x", "STORE", "d", NULL}, -1, {0}},
    {{"SORT_RO", "k", NULL}, -1, {0}},
    /* no keys */
    {{"PING", NULL}, 0, {0}},
    {{"SPUBLISH", "ch", "msg", NULL}, 0, {0}}, /* a NOT_KEY spec: a channel */
    {{"PUBLISH", "ch", "msg", NULL}, 0, {0}},
    {{"CONFIG", "GET", "maxmemory", NULL}, 0, {0}},
    {{"SCAN", "0", "MATCH", "k*", NULL}, 0, {0}},
    /* a container without a known subcommand, malformed commands */
    {{"CONFIG", "FROBNICATE", "x", NULL}, -1, {0}},
    {{"OBJECT", NULL}, -1, {0}},
    {{"GET", NULL}, -1, {0}},
    {{"MSET", NULL}, -1, {0}},
};

static void check_keys(const keys_case *kc) {
    aredis__arg args[MAXARGS];
    size_t n = to_args(kc->argv, args);
    const aredis__cmdinfo *ci = aredis__cmd_lookup(NULL, args, n);
    if (!ci) fail_msg("%s: not in the table", kc->argv[0]);
    int pos[MAXARGS];
    memset(pos, 0xff, sizeof pos);
    int k = aredis__cmd_keys(ci, args, n, pos, MAXARGS);
    if (k != kc->nkeys)
        fail_msg("%s %s: %d keys, expected %d", kc->argv[0], n > 1 ? kc->argv[1] : "", k,
                 kc->nkeys);
    for (int i = 0; i < k; i++)
        if (pos[i] != kc->pos[i])
            fail_msg("%s: key %d at %d, expected %d", kc->argv[0], i, pos[i], kc->pos[i]);
    /* A short array gets the first keys and the full count. */
    if (k > 1) {
        int one[1] = {-1};
        assert_int_equal(aredis__cmd_keys(ci, args, n, one, 1), k);
        assert_int_equal(one[0], kc->pos[0]);
        assert_int_equal(aredis__cmd_keys(ci, args, n, NULL, 0), k);
    }
}

static void test_keys(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_keys / sizeof *k_keys; i++)
        check_keys(&k_keys[i]);
    assert_int_equal(aredis__cmd_keys(NULL, NULL, 0, NULL, 0), -1);
}

/* Specs made up for the corners the built-in table does not reach. */
static void test_keys_synthetic(void **state) {
    (void)state;
    const char *argv[] = {"CMD", "a", "KW", "k1", "k2", "KW", "k3", NULL};
    aredis__arg args[MAXARGS];
    size_t n = to_args(argv, args);
    int pos[8];
    /* backwards from the end: the last KW */
    aredis__keyspec back = {.begin = AREDIS__KS_BEGIN_KEYWORD,
                            .find = AREDIS__KS_FIND_RANGE,
                            .keyword = "KW",
                            .startfrom = -1,
                            .a = -1,
                            .b = 1};
    aredis__cmdinfo ci = {.name = "cmd", .arity = -1, .nspecs = 1, .specs = &back};
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), 1);
    assert_int_equal(pos[0], 6);
    /* forwards from 1: the first KW, keys up to the end */
    aredis__keyspec fwd = back;
    fwd.startfrom = 1;
    ci.specs = &fwd;
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), 4);
    assert_int_equal(pos[0], 3);
    assert_int_equal(pos[3], 6);
    /* a range with a fixed lastkey and step */
    aredis__keyspec range = {
        .begin = AREDIS__KS_BEGIN_INDEX, .find = AREDIS__KS_FIND_RANGE, .index = 1, .a = 4, .b = 2};
    ci.specs = &range;
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), 3);
    assert_int_equal(pos[2], 5);
    range.a = 6; /* past the arguments */
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), -1);
    /* unknown kinds */
    aredis__keyspec unknown = {.begin = AREDIS__KS_BEGIN_UNKNOWN};
    ci.specs = &unknown;
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), -1);
    unknown.flags = AREDIS__KSF_NOT_KEY; /* skipped */
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), 0);
    aredis__keyspec nofind = {.begin = AREDIS__KS_BEGIN_INDEX, .index = 1};
    ci.specs = &nofind;
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), -1);
    /* INCOMPLETE with keys found */
    range.a = 0;
    range.flags = AREDIS__KSF_INCOMPLETE;
    ci.specs = &range;
    assert_int_equal(aredis__cmd_keys(&ci, args, n, pos, 8), -1);
    /* the legacy range without specs; MOVABLEKEYS without specs */
    aredis__cmdinfo legacy = {
        .name = "cmd", .arity = -2, .first_key = 1, .last_key = -1, .key_step = 2};
    assert_int_equal(aredis__cmd_keys(&legacy, args, n, pos, 8), 3);
    assert_int_equal(pos[1], 3);
    legacy.flags = AREDIS__CF_MOVABLEKEYS;
    assert_int_equal(aredis__cmd_keys(&legacy, args, n, pos, 8), -1);
    legacy.flags = 0;
    legacy.first_key = 0;
    assert_int_equal(aredis__cmd_keys(&legacy, args, n, pos, 8), 0);
}

/* ---- Block times -------------------------------------------------------- */

typedef struct block_case {
    const char *argv[16];
    int64_t ms;
} block_case;

static const block_case k_block[] = {
    {{"BLPOP", "k", "5", NULL}, 5000},
    {{"BLPOP", "k", "0.5", NULL}, 500},
    {{"BLPOP", "k", "0", NULL}, 0},
    {{"BLPOP", "a", "b", "c", "2", NULL}, 2000},
    {{"BLPOP", "k", "x", NULL}, -1},
    {{"BLPOP", "k", "-1", NULL}, -1},
    {{"BLPOP", "k", "", NULL}, -1},
    {{"BRPOP", "k", "0.001", NULL}, 1},
    {{"BRPOPLPUSH", "a", "b", "3", NULL}, 3000},
    {{"BLMOVE", "a", "b", "LEFT", "RIGHT", "1", NULL}, 1000},
    {{"BZPOPMIN", "z", "0.25", NULL}, 250},
    {{"BZPOPMAX", "z", "7", NULL}, 7000},
    {{"BLMPOP", "1.5", "1", "k", "LEFT", NULL}, 1500},
    {{"BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "3", NULL}, 0},
    {{"BZMPOP", "2", "1", "z", "MIN", NULL}, 2000},
    {{"XREAD", "STREAMS", "s", "0", NULL}, -1},
    {{"XREAD", "BLOCK", "100", "STREAMS", "s", "0", NULL}, 100},
    {{"XREAD", "COUNT", "5", "block", "0", "STREAMS", "s", "$", NULL}, 0},
    {{"XREAD", "STREAMS", "BLOCK", "100", "0", "0", NULL}, -1}, /* a stream named BLOCK */
    {{"XREAD", "BLOCK", NULL}, -1},
    {{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "250", "STREAMS", "s", ">", NULL}, 250},
    {{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">", NULL}, -1},
    {{"WAIT", "1", "200", NULL}, 200},
    {{"WAIT", "0", "0", NULL}, 0},
    {{"WAITAOF", "1", "0", "300", NULL}, 300},
    {{"GET", "k", NULL}, -1},
    {{"SET", "k", "5", NULL}, -1},
};

static void test_block_ms(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_block / sizeof *k_block; i++) {
        aredis__arg args[MAXARGS];
        size_t n = to_args(k_block[i].argv, args);
        const aredis__cmdinfo *ci = aredis__cmd_lookup(NULL, args, n);
        assert_non_null(ci);
        int64_t ms = aredis__cmd_block_ms(ci, args, n);
        if (ms != k_block[i].ms)
            fail_msg("%s %s: %lld ms, expected %lld", k_block[i].argv[0], k_block[i].argv[1],
                     (long long)ms, (long long)k_block[i].ms);
    }
    assert_int_equal(aredis__cmd_block_ms(NULL, NULL, 0), -1);
    /* Every blocking command of the table knows where its block time is. */
    for (size_t i = 0; i < aredis__cmdtable_count; i++) {
        const aredis__cmdinfo *ci = &aredis__cmdtable_builtin[i];
        if (!(ci->flags & AREDIS__CF_BLOCKING)) continue;
        assert_int_not_equal(ci->block_unit, AREDIS__BLOCK_NONE);
        assert_true(ci->block_arg != 0 || ci->block_keyword);
        size_t n = strlen(ci->name);
        assert_true((aredis__cmdtable_blocking_initials[n] >> (ci->name[0] - 'a')) & 1u);
    }
    /* WAIT does not carry the server's flag; the table marks it. */
    assert_true(LOOKUP("WAIT")->flags & AREDIS__CF_BLOCKING);
    assert_true(LOOKUP("WAITAOF")->flags & AREDIS__CF_BLOCKING);
}

/* ---- Encoded commands --------------------------------------------------- */

static void test_resp_args(void **state) {
    (void)state;
    static const char cmd[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
    aredis__arg a[3];
    assert_int_equal(aredis__resp_args(cmd, sizeof cmd - 1, a, 3), 3);
    assert_int_equal(a[0].n, 3);
    assert_memory_equal(a[0].p, "SET", 3);
    assert_ptr_equal(a[1].p, cmd + 17);
    assert_int_equal(a[1].n, 1);
    assert_int_equal(a[2].n, 0);
    /* fewer slots: the count all the same */
    aredis__arg one[1];
    assert_int_equal(aredis__resp_args(cmd, sizeof cmd - 1, one, 1), 3);
    assert_memory_equal(one[0].p, "SET", 3);
    assert_int_equal(aredis__resp_args(cmd, sizeof cmd - 1, NULL, 0), 3);
    /* binary arguments */
    static const char bin[] = "*2\r\n$3\r\nGET\r\n$4\r\na\r\n\0\r\n";
    assert_int_equal(aredis__resp_args(bin, sizeof bin - 1, a, 3), 2);
    assert_int_equal(a[1].n, 4);
    assert_memory_equal(a[1].p, "a\r\n\0", 4);
    assert_int_equal(aredis__resp_args("*0\r\n", 4, a, 3), 0);
    /* not one well-formed command */
    static const char *const bad[] = {
        "",
        "*",
        "*1\r\n",
        "*1\r\n$3\r\nGET\r\n$1\r\nk\r\n", /* more than it says */
        "*2\r\n$3\r\nGET\r\n",            /* less */
        "*1\r\n$3\r\nGE\r\n",
        "*1\r\n$3\r\nGETX\r\n",
        "*1\r\n:3\r\nGET\r\n",
        "+OK\r\n",
        "*-1\r\n",
        "*1\n$3\r\nGET\r\n",
        "*99999999999999999999\r\n",
        "*1\r\n$99999999999999999999\r\nGET\r\n",
        "*1\r\n$3\r\nGET\r\nx",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (aredis__resp_args(bad[i], strlen(bad[i]), a, 3) != -1)
            fail_msg("bad command %zu accepted", i);
    assert_int_equal(aredis__resp_args(NULL, 0, a, 3), -1);
    /* what the writer makes */
    char *w;
    size_t wl;
    assert_int_equal(aredis_format_command(&w, &wl, "ZADD %s %d %b", "z", 1, "m\0x", (size_t)3),
                     AREDIS_ERR_OK);
    aredis__arg four[4];
    assert_int_equal(aredis__resp_args(w, wl, four, 4), 4);
    assert_int_equal(four[3].n, 3);
    assert_memory_equal(four[3].p, "m\0x", 3);
    aredis_free_command(w);
}

/* ---- Loaded tables ------------------------------------------------------ */

static aredis_reply *parse(const char *resp, size_t len) {
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    assert_int_equal(aredis_reader_feed(r, resp, len), AREDIS_ERR_OK);
    void *reply = NULL;
    assert_int_equal(aredis_reader_get_reply(r, &reply), AREDIS_ERR_OK);
    assert_non_null(reply);
    aredis_reader_free(r);
    return reply;
}

/* A RESP2 COMMAND reply: a made-up module command with a keynum spec, GET
 * (known: dropped), CONFIG with a new subcommand beside a known one, and a
 * nil (COMMAND INFO of an unknown name). */
static const char k_resp2[] =
    "*4\r\n"
    /* foo.mset numkeys key... : arity -3, flags write denyoom module, first 2 */
    "*10\r\n$8\r\nfoo.mset\r\n:-3\r\n*4\r\n+write\r\n+denyoom\r\n+module\r\n+frobbing\r\n"
    ":0\r\n:0\r\n:0\r\n*0\r\n*0\r\n"
    "*1\r\n*6\r\n$5\r\nflags\r\n*3\r\n+OW\r\n+update\r\n+nosuchflag\r\n"
    "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n"
    "*2\r\n$5\r\nindex\r\n:1\r\n"
    "$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n"
    "*6\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:2\r\n"
    "*0\r\n"
    /* get */
    "*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n"
    "*0\r\n"
    /* config with config|get (known) and config|frob (new) */
    "*10\r\n$6\r\nconfig\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
    "*2\r\n"
    "*10\r\n$11\r\nconfig|frob\r\n:-3\r\n*2\r\n+admin\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n"
    "*0\r\n*0\r\n*0\r\n*0\r\n"
    "*10\r\n$10\r\nconfig|get\r\n:-3\r\n*1\r\n+admin\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
    "*0\r\n"
    "*-1\r\n";

static void test_load_resp2(void **state) {
    (void)state;
    aredis_reply *r = parse(k_resp2, sizeof k_resp2 - 1);
    aredis__cmdtable *t = aredis__cmdtable_load(r);
    assert_non_null(t);
    /* foo.mset, and config (kept for config|frob) with config|frob */
    assert_int_equal(aredis__cmdtable_size(t), 3);
    size_t n;
    const aredis__cmdinfo *e = aredis__cmdtable_entries(t, &n);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].name, "config");
    assert_string_equal(e[1].name, "foo.mset");

    assert_null(LOOKUP("FOO.MSET", "2", "a", "x", "b", "y"));
    const aredis__cmdinfo *ci = lookup_in(t, (const char *const[]){"FOO.MSET", NULL});
    assert_non_null(ci);
    assert_true(from_table(t, ci));
    assert_int_equal(ci->arity, -3);
    assert_int_equal(ci->flags, AREDIS__CF_WRITE | AREDIS__CF_DENYOOM | AREDIS__CF_MODULE);
    assert_null(ci->group);
    assert_int_equal(ci->nspecs, 1);
    assert_int_equal(ci->specs[0].flags, AREDIS__KSF_OW | AREDIS__KSF_UPDATE);
    const char *argv[] = {"foo.mset", "2", "a", "x", "b", "y", NULL};
    aredis__arg args[MAXARGS];
    size_t na = to_args(argv, args);
    int pos[4];
    assert_int_equal(aredis__cmd_keys(ci, args, na, pos, 4), 2);
    assert_int_equal(pos[0], 2);
    assert_int_equal(pos[1], 4);

    /* a new subcommand of a known container: from the loaded table; the
     * known ones stay built-in */
    ci = lookup_in(t, (const char *const[]){"CONFIG", "FROB", "x", NULL});
    assert_string_equal(ci->name, "config|frob");
    assert_true(from_table(t, ci));
    assert_int_equal(ci->flags, AREDIS__CF_ADMIN | AREDIS__CF_READONLY);
    ci = lookup_in(t, (const char *const[]){"config", "get", "x", NULL});
    assert_string_equal(ci->name, "config|get");
    assert_false(from_table(t, ci));
    ci = lookup_in(t, (const char *const[]){"config", "nope", NULL});
    assert_string_equal(ci->name, "config");
    assert_false(from_table(t, ci));
    assert_false(from_table(t, lookup_in(t, (const char *const[]){"GET", "k", NULL})));
    assert_null(lookup_in(t, (const char *const[]){"foo", NULL}));
    aredis__cmdtable_free(t);

    /* everything, for the generator */
    t = aredis__cmdtable_load_all(r);
    assert_non_null(t);
    e = aredis__cmdtable_entries(t, &n);
    assert_int_equal(n, 3);
    assert_string_equal(e[0].name, "config");
    assert_int_equal(e[0].nsubs, 2);
    assert_string_equal(e[0].subs[0].name, "config|frob");
    assert_string_equal(e[0].subs[1].name, "config|get");
    assert_true(e[0].flags & AREDIS__CF_HAS_SUBCOMMANDS);
    assert_string_equal(e[1].name, "foo.mset");
    assert_string_equal(e[2].name, "get");
    assert_int_equal(e[2].first_key, 1);
    assert_int_equal(aredis__cmdtable_size(t), 5);
    aredis__cmdtable_free(t);
    aredis_reply_free(r);
}

/* The same shapes as RESP3 sends them: sets of flags, maps for key specs,
 * keyword begin search. Upper-case names fold to lower case. */
static const char k_resp3[] =
    "*1\r\n"
    "*10\r\n$7\r\nFOO.GET\r\n:-2\r\n~1\r\n+readonly\r\n:0\r\n:0\r\n:0\r\n~0\r\n~0\r\n"
    "*1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n"
    "$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$7\r\nkeyword\r\n$4\r\nspec\r\n"
    "%2\r\n$7\r\nkeyword\r\n$4\r\nkeys\r\n$9\r\nstartfrom\r\n:1\r\n"
    "$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n"
    "%3\r\n$7\r\nlastkey\r\n:-1\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n"
    "*0\r\n";

static void test_load_resp3(void **state) {
    (void)state;
    aredis_reply *r = parse(k_resp3, sizeof k_resp3 - 1);
    aredis__cmdtable *t = aredis__cmdtable_load(r);
    assert_non_null(t);
    assert_int_equal(aredis__cmdtable_size(t), 1);
    const aredis__cmdinfo *ci = lookup_in(t, (const char *const[]){"foo.get", NULL});
    assert_non_null(ci);
    assert_string_equal(ci->name, "foo.get");
    assert_int_equal(ci->flags, AREDIS__CF_READONLY);
    assert_int_equal(ci->specs[0].begin, AREDIS__KS_BEGIN_KEYWORD);
    assert_string_equal(ci->specs[0].keyword, "KEYS");
    const char *argv[] = {"FOO.GET", "x", "keys", "a", "b", NULL};
    aredis__arg args[MAXARGS];
    size_t na = to_args(argv, args);
    int pos[4];
    assert_int_equal(aredis__cmd_keys(ci, args, na, pos, 4), 2);
    assert_int_equal(pos[0], 3);
    assert_int_equal(pos[1], 4);
    aredis__cmdtable_free(t);
    aredis_reply_free(r);
}

static void test_load_bad(void **state) {
    (void)state;
    static const char *const bad[] = {
        ":1\r\n",
        "+OK\r\n",
        "*1\r\n:1\r\n",                                                 /* not a command */
        "*1\r\n*3\r\n$3\r\nget\r\n:2\r\n*0\r\n",                        /* too short */
        "*1\r\n*6\r\n$3\r\nget\r\n$1\r\n2\r\n*0\r\n:1\r\n:1\r\n:1\r\n", /* arity a string */
        "*1\r\n*6\r\n$0\r\n\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n",         /* no name */
        "%1\r\n$3\r\nget\r\n:1\r\n",                                    /* a map */
        /* a bad subcommand inside a good container */
        "*1\r\n*10\r\n$3\r\nzzz\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
        "*2\r\n*6\r\n$7\r\nzzz|one\r\n:2\r\n*0\r\n:0\r\n:0\r\n:0\r\n:5\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        aredis_reply *r = parse(bad[i], strlen(bad[i]));
        aredis__cmdtable *t = aredis__cmdtable_load(r);
        if (t) fail_msg("bad reply %zu loaded", i);
        aredis_reply_free(r);
    }
    assert_null(aredis__cmdtable_load(NULL));
    aredis_reply *r = parse("*0\r\n", 4);
    aredis__cmdtable *t = aredis__cmdtable_load(r);
    assert_non_null(t);
    assert_int_equal(aredis__cmdtable_size(t), 0);
    aredis__cmdtable_free(t);
    aredis_reply_free(r);
    aredis__cmdtable_free(NULL);
    assert_int_equal(aredis__cmdtable_size(NULL), 0);
}

/* Out of memory at every allocation of a load: NULL, nothing leaked. */
static int g_fail_at, g_allocs;
static long g_live;
static void *f_malloc(size_t n) {
    if (g_fail_at >= 0 && g_allocs++ == g_fail_at) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}
static void *f_calloc(size_t a, size_t b) {
    if (g_fail_at >= 0 && g_allocs++ == g_fail_at) return NULL;
    void *p = calloc(a, b);
    if (p) g_live++;
    return p;
}
static void *f_realloc(void *p, size_t n) {
    if (!p) return f_malloc(n);
    if (n && g_fail_at >= 0 && g_allocs++ == g_fail_at) return NULL;
    return realloc(p, n);
}
static void f_free(void *p) {
    if (p) g_live--;
    free(p);
}

static void test_load_nomem(void **state) {
    (void)state;
    aredis_reply *r = parse(k_resp2, sizeof k_resp2 - 1);
    aredis_allocator hooks = {f_malloc, f_calloc, f_realloc, f_free};
    aredis_set_allocator(&hooks);
    int done = 0;
    for (g_fail_at = 0; !done && g_fail_at < 200; g_fail_at++) {
        g_allocs = 0;
        g_live = 0;
        aredis__cmdtable *t = aredis__cmdtable_load_all(r);
        if (t) {
            done = 1;
            aredis__cmdtable_free(t);
        }
        assert_int_equal(g_live, 0);
    }
    aredis_set_allocator(NULL);
    assert_true(done);
    aredis_reply_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source),
        cmocka_unit_test(test_lookup_case),
        cmocka_unit_test(test_lookup_subcommands),
        cmocka_unit_test(test_lookup_unknown),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_keys_synthetic),
        cmocka_unit_test(test_block_ms),
        cmocka_unit_test(test_resp_args),
        cmocka_unit_test(test_load_resp2),
        cmocka_unit_test(test_load_resp3),
        cmocka_unit_test(test_load_bad),
        cmocka_unit_test(test_load_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
