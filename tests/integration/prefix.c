/*
 * Key prefixing against a real server: a client with prefix "app:" issues
 * commands of every key-spec shape; a second client without a prefix checks
 * what is in the database: the keys carry the prefix, the values do not
 * (a value "k" stays "k"), a script sees the prefixed KEYS[1]. Replies that
 * name keys (SCAN, KEYS, BLPOP, LMPOP, XREAD...) come back without the
 * prefix; SCAN and KEYS list only the namespace. MIGRATE moves prefixed keys
 * to a second server. A command whose keys cannot be found is refused with
 * UNSUPPORTED; without a prefix nothing changes. RESP3 and RESP2 both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"

static const char *const k_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv, *g_dst;
static aredis_loop *g_loop;
static aredis_client *g_raw;    /* no prefix: sees the database as it is */
static aredis_client *g_pc[2];  /* prefix "app:": RESP3, RESP2 */
static aredis_client *g_dstraw; /* no prefix, on the MIGRATE target */

static aredis_client *client_with(const ts_server *s, const char *prefix, int protocol) {
    aredis_options o = ts_options(s);
    o.prefix = prefix;
    o.protocol = protocol;
    return ts_connect(g_loop, &o);
}

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_conf, 0);
    g_dst = ts_server_start(NULL, 0);
    g_loop = aredis_loop_new();
    g_raw = client_with(g_srv, NULL, 3);
    g_pc[0] = client_with(g_srv, "app:", 3);
    g_pc[1] = client_with(g_srv, "app:", 2);
    g_dstraw = client_with(g_dst, NULL, 3);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_client_free(g_raw);
    aredis_client_free(g_pc[0]);
    aredis_client_free(g_pc[1]);
    aredis_client_free(g_dstraw);
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    ts_server_stop(g_dst);
    return 0;
}

static int level(void) { return ts_server_version()->redis_level; }

/* ---- Replies as text ---------------------------------------------------- */

/* A compact rendering: strings as they are, :n for integers, nil, -ERR...,
 * [a,b] for arrays and sets, {k:v} for maps. */
static void show(const aredis_reply *r, char *out, size_t cap, size_t *n) {
#define PUT(...) *n += (size_t)snprintf(out + *n, *n < cap ? cap - *n : 0, __VA_ARGS__)
    switch (r->type) {
    case AREDIS_REPLY_STRING:
    case AREDIS_REPLY_STATUS:
    case AREDIS_REPLY_VERB:
    case AREDIS_REPLY_BIGNUM:
    case AREDIS_REPLY_DOUBLE:
        PUT("%.*s", (int)r->len, r->str);
        break;
    case AREDIS_REPLY_ERROR:
        PUT("-%.*s", (int)r->len, r->str);
        break;
    case AREDIS_REPLY_INTEGER:
        PUT(":%lld", r->integer);
        break;
    case AREDIS_REPLY_BOOL:
        PUT("#%c", r->integer ? 't' : 'f');
        break;
    case AREDIS_REPLY_NIL:
        PUT("nil");
        break;
    case AREDIS_REPLY_MAP:
    case AREDIS_REPLY_ATTR:
        PUT("{");
        for (size_t i = 0; i < r->elements; i++) {
            if (i) PUT(i % 2 ? ":" : ",");
            show(r->element[i], out, cap, n);
        }
        PUT("}");
        break;
    default:
        PUT("[");
        for (size_t i = 0; i < r->elements; i++) {
            if (i) PUT(",");
            show(r->element[i], out, cap, n);
        }
        PUT("]");
        break;
    }
#undef PUT
}

static const char *text(const aredis_reply *r) {
    static char buf[1024];
    size_t n = 0;
    buf[0] = '\0';
    if (!r) return "(no reply)";
    show(r, buf, sizeof buf, &n);
    return buf;
}

/* ---- Commands as lines -------------------------------------------------- */

/* Split a line at spaces; '...' quotes an argument (may be empty). */
static int split(const char *line, char *store, size_t cap, const char **argv, int max) {
    int argc = 0;
    size_t k = 0;
    const char *p = line;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        assert_true(argc < max);
        argv[argc++] = store + k;
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                store[k++] = *p;
            if (*p) p++;
        } else {
            for (; *p && *p != ' '; p++)
                store[k++] = *p;
        }
        store[k++] = '\0';
        assert_true(k < cap);
    }
    return argc;
}

/* Issue a line on c and wait; returns the future (caller releases). */
static aredis_future *run(aredis_client *c, const char *line) {
    char store[1024];
    const char *argv[64];
    int argc = split(line, store, sizeof store, argv, 64);
    aredis_future *f = aredis_future_argv(c, argc, argv, NULL);
    assert_non_null(f);
    aredis_await(f);
    return f;
}

/* Issue a line on c; its reply must read `want`. */
static void expect(aredis_client *c, const char *line, const char *want) {
    aredis_future *f = run(c, line);
    const aredis_error *e = aredis_future_error(f);
    const char *got = text(aredis_future_reply(f));
    if (e && e->code != AREDIS_ERR_SERVER)
        fail_msg("%s: %s (%s)", line, aredis_err_name(e->code), e->detail ? e->detail : "");
    if (strcmp(got, want) != 0) fail_msg("%s: got \"%s\", want \"%s\"", line, got, want);
    aredis_future_release(f);
}

/* NOSUCHCMD goes to the server, which answers "unknown command". */
static void expect_server_unknown(aredis_client *c) {
    aredis_future *f = run(c, "NOSUCHCMD k");
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_SERVER);
    const char *got = text(aredis_future_reply(f));
    if (strncmp(got, "-ERR unknown command", 20) != 0) fail_msg("NOSUCHCMD: got %s", got);
    aredis_future_release(f);
}

/* ---- The table ---------------------------------------------------------- */

typedef struct row {
    const char *seed[4];  /* run first by the client without a prefix */
    const char *cmd;      /* run by the prefixed client */
    const char *reply;    /* its reply (NULL: not checked) */
    const char *reply2;   /* its reply under RESP2, when it differs */
    const char *check[4]; /* "command => reply" by the client without a prefix */
    int level;            /* the Redis level it needs (700: 7.0), 0 = any */
} row;

static const row k_rows[] = {
    /* strings: keys prefixed, values as they are */
    {{0}, "SET k k", "OK", 0, {"GET app:k => k", "EXISTS k => :0"}, 0},
    {{"SET app:k v"}, "GET k", "v", 0, {0}, 0},
    {{"SET app:k v"}, "GETEX k EX 1000", "v", 0, {"TTL app:k => :1000"}, 0},
    {{"SET app:k v"}, "GETDEL k", "v", 0, {"EXISTS app:k => :0"}, 0},
    {{"SET app:k v"}, "APPEND k k", ":2", 0, {"GET app:k => vk"}, 0},
    {{0}, "MSET a a b b", "OK", 0, {"MGET app:a app:b => [a,b]"}, 0},
    {{"MSET app:a 1 app:b 2"}, "MGET a b c", "[1,2,nil]", 0, {0}, 0},
    {{0}, "MSETNX a a b b", ":1", 0, {"MGET app:a app:b => [a,b]"}, 0},
    {{"SET app:k 12"}, "OBJECT ENCODING k", "int", 0, {0}, 0},
    {{"SET app:a a", "SET app:b b"}, "LCS a b", "", 0, {0}, 700},
    {{"SET app:a ohmytext", "SET app:b mynewtext"}, "LCS a b", "mytext", 0, {0}, 700},
    /* generic */
    {{"MSET app:a 1 app:b 2 a 9"}, "DEL a b", ":2", 0, {"EXISTS a => :1"}, 0},
    {{"SET app:a 1"}, "UNLINK a", ":1", 0, {"EXISTS app:a => :0"}, 0},
    {{"SET app:a 1", "SET b 1"}, "EXISTS a b", ":1", 0, {0}, 0},
    {{"SET app:a 1"}, "TOUCH a", ":1", 0, {0}, 0},
    {{"SET app:a 1"}, "RENAME a b", "OK", 0, {"GET app:b => 1"}, 0},
    {{"SET app:a 1"}, "RENAMENX a b", ":1", 0, {"GET app:b => 1"}, 0},
    {{"SET app:a 1"}, "COPY a b", ":1", 0, {"MGET app:a app:b => [1,1]"}, 0},
    {{"SET app:k v"}, "EXPIRE k 1000", ":1", 0, {"TTL app:k => :1000"}, 0},
    {{"SET app:k v EX 1000"}, "TTL k", ":1000", 0, {0}, 0},
    {{"SET app:k v EX 1000"}, "PERSIST k", ":1", 0, {"TTL app:k => :-1"}, 0},
    {{"SET app:k 12"}, "DEBUG OBJECT k", NULL, 0, {0}, 0},
    /* lists */
    {{0}, "LPUSH l a l", ":2", 0, {"LRANGE app:l 0 -1 => [l,a]"}, 0},
    {{"RPUSH app:l x"}, "RPOPLPUSH l m", "x", 0, {"LRANGE app:m 0 -1 => [x]"}, 0},
    {{"RPUSH app:l x"}, "LMOVE l m LEFT RIGHT", "x", 0, {"LRANGE app:m 0 -1 => [x]"}, 0},
    {{"RPUSH app:l x"}, "BLMOVE l m LEFT RIGHT 0", "x", 0, {"LRANGE app:m 0 -1 => [x]"}, 0},
    {{"RPUSH app:m y"}, "BLPOP l m 0", "[m,y]", 0, {"EXISTS app:m => :0"}, 0},
    {{"RPUSH app:m y"}, "BRPOP l m 0", "[m,y]", 0, {0}, 0},
    {{"RPUSH app:m y z"}, "LMPOP 2 l m LEFT", "[m,[y]]", 0, {"LRANGE app:m 0 -1 => [z]"}, 700},
    {{"RPUSH app:l x"}, "BLMPOP 0 1 l RIGHT COUNT 2", "[l,[x]]", 0, {0}, 700},
    /* sets */
    {{0}, "SADD s a s", ":2", 0, {"SCARD app:s => :2", "SISMEMBER app:s s => :1"}, 0},
    {{"SADD app:s a"}, "SMOVE s t a", ":1", 0, {"SISMEMBER app:t a => :1"}, 0},
    {{"SADD app:s a b", "SADD app:t b"},
     "SINTERSTORE d s t",
     ":1",
     0,
     {"SMEMBERS app:d => [b]"},
     0},
    {{"SADD app:s a b", "SADD app:t b"}, "SINTERCARD 2 s t", ":1", 0, {0}, 700},
    {{"SADD app:s a", "SADD app:t b"}, "SUNIONSTORE d s t", ":2", 0, {"SCARD app:d => :2"}, 0},
    {{"SADD app:s a b", "SADD app:t b"}, "SDIFFSTORE d s t", ":1", 0, {"SMEMBERS app:d => [a]"}, 0},
    /* sorted sets */
    {{0}, "ZADD z 1 z", ":1", 0, {"ZSCORE app:z z => 1"}, 0},
    {{"ZADD app:z 1 a", "ZADD app:y 2 b"},
     "ZUNIONSTORE d 2 z y",
     ":2",
     0,
     {"ZCARD app:d => :2"},
     0},
    {{"ZADD app:z 1 a", "ZADD app:y 2 a"},
     "ZINTERSTORE d 2 z y WEIGHTS 1 1",
     ":1",
     0,
     {"ZSCORE app:d a => 3"},
     0},
    {{"ZADD app:z 1 a 2 b"}, "ZRANGESTORE d z 0 0", ":1", 0, {"ZRANGE app:d 0 -1 => [a]"}, 0},
    {{"ZADD app:z 1 a"}, "ZMPOP 2 y z MIN", "[z,[[a,1]]]", 0, {"EXISTS app:z => :0"}, 700},
    {{"ZADD app:z 1 a"}, "BZPOPMIN y z 0", "[z,a,1]", 0, {"EXISTS app:z => :0"}, 0},
    {{"ZADD app:z 1 a 2 b"}, "BZPOPMAX z 0", "[z,b,2]", 0, {0}, 0},
    /* hashes */
    {{0}, "HSET h f h", ":1", 0, {"HGET app:h f => h"}, 0},
    {{"HSET app:h f v"}, "HGETALL h", "{f:v}", "[f,v]", {0}, 0},
    /* HyperLogLog */
    {{0}, "PFADD p a b", ":1", 0, {"PFCOUNT app:p => :2"}, 0},
    {{"PFADD app:p a", "PFADD app:q b"}, "PFMERGE d p q", "OK", 0, {"PFCOUNT app:d => :2"}, 0},
    {{"PFADD app:p a", "PFADD app:q b"}, "PFCOUNT p q", ":2", 0, {0}, 0},
    /* bits */
    {{"SET app:a a", "SET app:b b"}, "BITOP OR d a b", ":1", 0, {"GET app:d => c"}, 0},
    /* geo */
    {{0}, "GEOADD g 13.361389 38.115556 m", ":1", 0, {"ZCARD app:g => :1"}, 0},
    {{"GEOADD app:g 13.361389 38.115556 m"},
     "GEOSEARCHSTORE d g FROMLONLAT 13.36 38.11 BYRADIUS 100 km",
     ":1",
     0,
     {"ZRANGE app:d 0 -1 => [m]"},
     0},
    /* streams */
    {{0}, "XADD x 1-1 f x", "1-1", 0, {"XLEN app:x => :1", "XRANGE app:x - + => [[1-1,[f,x]]]"}, 0},
    {{"XADD app:x 1-1 f v", "XADD app:y 1-2 g w"},
     "XREAD COUNT 5 STREAMS x y 0 0",
     "{x:[[1-1,[f,v]]],y:[[1-2,[g,w]]]}",
     "[[x,[[1-1,[f,v]]]],[y,[[1-2,[g,w]]]]]",
     {0},
     0},
    {{0}, "XGROUP CREATE x g $ MKSTREAM", "OK", 0, {"XGROUP CREATECONSUMER app:x g c => :1"}, 0},
    {{"XADD app:x 1-1 f v", "XGROUP CREATE app:x g 0"},
     "XREADGROUP GROUP g c STREAMS x >",
     "{x:[[1-1,[f,v]]]}",
     "[[x,[[1-1,[f,v]]]]]",
     {"XPENDING app:x g => [:1,1-1,1-1,[[c,1]]]"},
     0},
    /* scripts: KEYS prefixed, ARGV not */
    {{0}, "EVAL 'return {KEYS[1], ARGV[1]}' 1 k k", "[app:k,k]", 0, {0}, 0},
    {{"SET app:k v"}, "EVAL 'return redis.call(\"GET\", KEYS[1])' 1 k", "v", 0, {0}, 0},
    {{0}, "EVAL 'return 1' 0", ":1", 0, {0}, 0},
    /* SORT: the key, BY and GET patterns, STORE */
    {{"RPUSH app:l 1 2 3", "MSET app:w_1 3 app:w_2 2 app:w_3 1 app:o_1 a app:o_2 b app:o_3 c"},
     "SORT l BY w_* GET o_* GET # STORE d",
     ":6",
     0,
     {"LRANGE app:d 0 -1 => [c,3,b,2,a,1]"},
     0},
    {{"RPUSH app:l 1 2 3", "MSET app:w_1 3 app:w_2 2 app:w_3 1 app:o_1 a app:o_2 b app:o_3 c"},
     "SORT_RO l BY w_* GET o_*",
     "[c,b,a]",
     0,
     {0},
     0},
    {{"RPUSH app:l 2 1 3", "HSET app:h_1 f x"},
     "SORT l BY nosort GET h_*->f",
     "[nil,x,nil]",
     0,
     {0},
     0},
    {{"RPUSH app:l 2 1 3"}, "SORT l LIMIT 0 2", "[1,2]", 0, {0}, 0},
    /* keyless commands pass unchanged */
    {{"SET app:k v"}, "DBSIZE", ":1", 0, {0}, 0},
    {{0}, "PING", "PONG", 0, {0}, 0},
    {{0}, "ECHO k", "k", 0, {0}, 0},
};

static void run_rows(aredis_client *c, int resp2) {
    size_t done = 0;
    for (size_t i = 0; i < sizeof k_rows / sizeof k_rows[0]; i++) {
        const row *w = &k_rows[i];
        if (w->level && level() && level() < w->level) {
            ts_log("skipped on %s: %s", ts_server_describe(), w->cmd);
            continue;
        }
        ts_cmd_ok(g_raw, "FLUSHALL");
        for (int j = 0; j < 4 && w->seed[j]; j++)
            aredis_future_release(run(g_raw, w->seed[j]));
        aredis_future *f = run(c, w->cmd);
        const aredis_error *e = aredis_future_error(f);
        if (e) fail_msg("%s: %s %s", w->cmd, aredis_err_name(e->code), e->detail);
        const char *want = resp2 && w->reply2 ? w->reply2 : w->reply;
        if (want && strcmp(text(aredis_future_reply(f)), want) != 0)
            fail_msg("%s (RESP%d): got \"%s\", want \"%s\"", w->cmd, resp2 ? 2 : 3,
                     text(aredis_future_reply(f)), want);
        aredis_future_release(f);
        for (int j = 0; j < 4 && w->check[j]; j++) {
            char line[256];
            snprintf(line, sizeof line, "%s", w->check[j]);
            char *arrow = strstr(line, " => ");
            assert_non_null(arrow);
            *arrow = '\0';
            expect(g_raw, line, arrow + 4);
        }
        /* Nothing un-prefixed was made (a few rows seed one on purpose). */
        aredis_future *k = run(g_raw, "KEYS *");
        const aredis_reply *r = aredis_future_reply(k);
        for (size_t j = 0; r && j < r->elements; j++)
            if (strncmp(r->element[j]->str, "app:", 4) != 0 && strcmp(r->element[j]->str, "a") &&
                strcmp(r->element[j]->str, "b"))
                fail_msg("%s: left a key without the prefix: %s", w->cmd, r->element[j]->str);
        aredis_future_release(k);
        done++;
    }
    assert_true(done >= 40);
}

static void test_table_resp3(void **state) {
    (void)state;
    run_rows(g_pc[0], 0);
}

static void test_table_resp2(void **state) {
    (void)state;
    run_rows(g_pc[1], 1);
}

/* ---- Functions, DUMP / RESTORE ------------------------------------------ */

static void test_fcall(void **state) {
    (void)state;
    if (level() && level() < 700) skip();
    ts_cmd_ok(g_raw, "FLUSHALL");
    aredis_future *f = aredis_future_command(g_raw, "FUNCTION LOAD REPLACE %s",
                                             "#!lua name=plib\n"
                                             "redis.register_function('pkey', function(keys, args)"
                                             " return {keys[1], args[1]} end)");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    expect(g_pc[0], "FCALL pkey 1 k k", "[app:k,k]");
    expect(g_raw, "FUNCTION DELETE plib", "OK");
}

static void test_dump_restore(void **state) {
    (void)state;
    ts_cmd_ok(g_raw, "FLUSHALL");
    ts_cmd_ok(g_raw, "SET app:k v");
    aredis_future *f = aredis_future_command(g_pc[0], "DUMP k");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    const aredis_reply *d = aredis_future_reply(f);
    assert_int_equal(d->type, AREDIS_REPLY_STRING);
    aredis_future *g = aredis_future_command(g_pc[0], "RESTORE %s 0 %b", "k2", d->str, d->len);
    assert_int_equal(aredis_await(g), AREDIS_ERR_OK);
    assert_string_equal(text(aredis_future_reply(g)), "OK");
    aredis_future_release(g);
    aredis_future_release(f);
    expect(g_raw, "GET app:k2", "v");
    expect(g_raw, "EXISTS k2", ":0");
}

/* ---- SCAN and KEYS ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every key SCAN lists on c with `match` (NULL: none), sorted, joined. */
static void scan_all(aredis_client *c, const char *match, char *out, size_t cap) {
    char cursor[32] = "0";
    char *keys[64];
    size_t n = 0;
    do {
        aredis_future *f = match
                               ? aredis_future_command(c, "SCAN %s MATCH %s COUNT 3", cursor, match)
                               : aredis_future_command(c, "SCAN %s COUNT 3", cursor);
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        const aredis_reply *r = aredis_future_reply(f);
        assert_int_equal(r->elements, 2);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            assert_true(n < 64);
            keys[n++] = strdup(r->element[1]->element[i]->str);
        }
        aredis_future_release(f);
    } while (strcmp(cursor, "0") != 0);
    qsort(keys, n, sizeof keys[0], cmp_str);
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s%s", i ? "," : "", keys[i]);
        free(keys[i]);
    }
}

static void keys_sorted(aredis_client *c, const char *pattern, char *out, size_t cap) {
    aredis_future *f = aredis_future_command(c, "KEYS %s", pattern);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    const aredis_reply *r = aredis_future_reply(f);
    const char *keys[64];
    assert_true(r->elements <= 64);
    for (size_t i = 0; i < r->elements; i++)
        keys[i] = r->element[i]->str;
    qsort(keys, r->elements, sizeof keys[0], cmp_str);
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++)
        k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s%s", i ? "," : "", keys[i]);
    aredis_future_release(f);
}

static void seed_namespaces(void) {
    ts_cmd_ok(g_raw, "FLUSHALL");
    ts_cmd_ok(g_raw, "MSET app:a 1 app:b 2 app:ab 3 other:a 4 a 5 apple 6");
    ts_cmd_ok(g_raw, "MSET a*:x 1 ab:y 2 a*:z 3");
}

static void test_scan(void **state) {
    (void)state;
    char got[512];
    seed_namespaces();
    for (int i = 0; i < 2; i++) {
        scan_all(g_pc[i], NULL, got, sizeof got);
        assert_string_equal(got, "a,ab,b");
        scan_all(g_pc[i], "a*", got, sizeof got);
        assert_string_equal(got, "a,ab");
        scan_all(g_pc[i], "?", got, sizeof got);
        assert_string_equal(got, "a,b");
    }
    /* A prefix with glob characters matches only itself. */
    aredis_client *g = client_with(g_srv, "a*:", 3);
    scan_all(g, NULL, got, sizeof got);
    assert_string_equal(got, "x,z");
    aredis_client_free(g);
    /* Without a prefix: everything, as it is. */
    scan_all(g_raw, "app:*", got, sizeof got);
    assert_string_equal(got, "app:a,app:ab,app:b");
}

static void test_keys(void **state) {
    (void)state;
    char got[512];
    seed_namespaces();
    for (int i = 0; i < 2; i++) {
        keys_sorted(g_pc[i], "*", got, sizeof got);
        assert_string_equal(got, "a,ab,b");
        keys_sorted(g_pc[i], "a*", got, sizeof got);
        assert_string_equal(got, "a,ab");
    }
    aredis_client *g = client_with(g_srv, "a*:", 2);
    keys_sorted(g, "*", got, sizeof got);
    assert_string_equal(got, "x,z");
    aredis_client_free(g);
    keys_sorted(g_raw, "a*", got, sizeof got);
    assert_string_equal(got, "a,a*:x,a*:z,ab:y,app:a,app:ab,app:b,apple");
}

/* ---- MIGRATE ------------------------------------------------------------ */

static void test_migrate(void **state) {
    (void)state;
    char port[16];
    snprintf(port, sizeof port, "%d", ts_server_port(g_dst));
    ts_cmd_ok(g_raw, "FLUSHALL");
    ts_cmd_ok(g_dstraw, "FLUSHALL");
    ts_cmd_ok(g_raw, "MSET app:k v app:a 1 app:b 2");

    /* one key */
    const char *one[] = {"MIGRATE", "127.0.0.1", port, "k", "0", "5000"};
    aredis_future *f = aredis_future_argv(g_pc[0], 6, one, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(text(aredis_future_reply(f)), "OK");
    aredis_future_release(f);
    expect(g_dstraw, "GET app:k", "v");
    expect(g_raw, "EXISTS app:k", ":0");

    /* KEYS: argument 3 is "" and stays so */
    const char *many[] = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "COPY", "KEYS", "a", "b"};
    f = aredis_future_argv(g_pc[1], 10, many, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    assert_string_equal(text(aredis_future_reply(f)), "OK");
    aredis_future_release(f);
    expect(g_dstraw, "MGET app:a app:b", "[1,2]");
    expect(g_raw, "MGET app:a app:b", "[1,2]"); /* COPY */
    expect(g_dstraw, "DBSIZE", ":3");
}

/* ---- Refusals, options, and no prefix ----------------------------------- */

static void test_unknown_refused(void **state) {
    (void)state;
    /* the future form: failed at once */
    aredis_future *f = aredis_future_command(g_pc[0], "NOSUCHCMD %s", "k");
    assert_non_null(f);
    assert_true(aredis_future_is_done(f));
    assert_int_equal(aredis_await(f), AREDIS_ERR_UNSUPPORTED);
    const aredis_error *e = aredis_future_error(f);
    assert_int_equal(e->code, AREDIS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e->detail, "prefix: unknown command 'NOSUCHCMD'"));
    aredis_future_release(f);

    /* the callback form: refused, the callback never runs */
    ts_result r = {0};
    const char *argv[] = {"NOSUCHCMD", "k"};
    assert_int_equal(aredis_command_argv(g_pc[1], ts_on_reply, &r, 2, argv, NULL),
                     AREDIS_ERR_UNSUPPORTED);
    const aredis_error *ce = aredis_call_error();
    assert_int_equal(ce->code, AREDIS_ERR_UNSUPPORTED);
    assert_non_null(strstr(ce->detail, "unknown command 'NOSUCHCMD'"));
    assert_non_null(strstr(ce->detail, "without a prefix"));

    /* a key count past the arguments */
    assert_int_equal(aredis_command(g_pc[0], ts_on_reply, &r, "EVAL %s 3 k", "return 1"),
                     AREDIS_ERR_UNSUPPORTED);
    assert_non_null(strstr(aredis_call_error()->detail, "'EVAL'"));
    /* a SORT pattern under a prefix holding '*' */
    aredis_client *g = client_with(g_srv, "a*:", 3);
    assert_int_equal(aredis_command(g, ts_on_reply, &r, "SORT l GET o_*"), AREDIS_ERR_UNSUPPORTED);
    assert_non_null(strstr(aredis_call_error()->detail, "SORT GET"));
    aredis_client_free(g);
    ts_echo_tokens(g_pc[0], "after-refusal", 3, 5000, "refusals");
    assert_int_equal(r.calls, 0);

    /* without a prefix the server answers for itself */
    expect_server_unknown(g_raw);
}

static void test_options(void **state) {
    (void)state;
    char big[1100];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    aredis_options o = ts_options(g_srv);
    o.prefix = big;
    assert_null(aredis_client_new(g_loop, &o));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_non_null(strstr(aredis_call_error()->detail, "prefix"));
    big[1024] = '\0'; /* the longest accepted */
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    aredis_client_free(c);

    /* the caller's string is copied */
    char mine[8] = "tmp:";
    o.prefix = mine;
    c = ts_connect(g_loop, &o);
    memcpy(mine, "zzz:", 4);
    ts_cmd_ok(g_raw, "FLUSHALL");
    ts_cmd_ok(c, "SET k v");
    expect(g_raw, "GET tmp:k", "v");
    aredis_client_free(c);
}

/* NULL and "" mean no prefix: the bytes and replies are today's. */
static void test_no_prefix(void **state) {
    (void)state;
    const char *prefixes[] = {NULL, ""};
    for (int i = 0; i < 2; i++) {
        aredis_client *c = client_with(g_srv, prefixes[i], 3);
        ts_cmd_ok(g_raw, "FLUSHALL");
        ts_cmd_ok(c, "SET k k");
        expect(g_raw, "GET k", "k");
        expect(c, "KEYS *", "[k]");
        expect(c, "SCAN 0", "[0,[k]]");
        expect(g_raw, "RPUSH app:l x", ":1");
        expect(c, "BLPOP app:l 0", "[app:l,x]");
        /* unknown commands go to the server, which refuses them */
        expect_server_unknown(c);
        aredis_client_free(c);
    }
}

/* The callback and format forms go through the same encoder. */
static void test_forms(void **state) {
    (void)state;
    ts_cmd_ok(g_raw, "FLUSHALL");
    ts_result r = {0};
    assert_int_equal(aredis_command(g_pc[0], ts_on_reply, &r, "SET %s %b", "f1", "f1", (size_t)2),
                     AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &r.done, 5000));
    assert_int_equal(r.code, AREDIS_ERR_OK);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 3000;
    const char *argv[] = {"SET", "f2", "f2"};
    ts_result r2 = {0};
    assert_int_equal(aredis_command_argv_ex(g_pc[1], &co, ts_on_reply, &r2, 3, argv, NULL),
                     AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &r2.done, 5000));
    aredis_future *f = aredis_future_command_ex(g_pc[0], &co, "SET %s %s", "f3", "f3");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    expect(g_raw, "MGET app:f1 app:f2 app:f3", "[f1,f2,f3]");
    /* a reply stripped for a callback too */
    ts_cmd_ok(g_raw, "FLUSHALL");
    expect(g_raw, "RPUSH app:bl x", ":1");
    ts_result r3 = {0};
    assert_int_equal(aredis_command(g_pc[0], ts_on_reply, &r3, "BLPOP bl 0"), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &r3.done, 5000));
    assert_int_equal(r3.elements, 2);
    assert_string_equal(r3.text, "bl");
    assert_string_equal(r3.text2, "x");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_resp3), cmocka_unit_test(test_table_resp2),
        cmocka_unit_test(test_fcall),       cmocka_unit_test(test_dump_restore),
        cmocka_unit_test(test_scan),        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_migrate),     cmocka_unit_test(test_unknown_refused),
        cmocka_unit_test(test_options),     cmocka_unit_test(test_no_prefix),
        cmocka_unit_test(test_forms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
