/*
 * Unit tests for key prefixing (src/proto/prefix.c): the exact RESP bytes
 * aredis__prefix_encode() makes for commands of every key-spec shape and for
 * the special cases (SCAN, KEYS, SORT, MIGRATE, CLIENT TRACKING...), glob
 * escaping of the prefix, refusals with their detail, the argv and format
 * front ends, and stripping the prefix from replies.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"

#include "proto/prefix.h"
#include "proto/writer_internal.h"
#include "util/buf.h"
#include "writer_check.h"

#define P "app:"

/* ---- Helpers ------------------------------------------------------------ */

/* Encode argv (NUL-terminated strings) with prefix p; returns the code,
 * the bytes in *out (caller frees) and the strip kind. */
static aredis_err enc_p(const char *p, int argc, const char *const *argv, bytes *out,
                        unsigned *strip) {
    aredis__arg a[256];
    assert_true(argc <= 256);
    for (int i = 0; i < argc; i++) {
        a[i].p = argv[i];
        a[i].n = strlen(argv[i]);
    }
    aredis__buf b = {0};
    unsigned s = 99;
    aredis_err e = aredis__prefix_encode(&b, NULL, p, strlen(p), a, (size_t)argc, &s);
    if (e != AREDIS_ERR_OK) assert_int_equal(b.len, 0);
    out->p = NULL;
    out->n = 0;
    bytes_add(out, b.data, b.len);
    aredis__buf_free(&b);
    if (strip) *strip = s;
    return e;
}

/* The command `in` with prefix p must encode as the command `want`. */
static void expect_p(const char *p, int argc, const char *const *in, int wantc,
                     const char *const *want, unsigned want_strip) {
    bytes got, exp = resp(wantc, want, NULL);
    unsigned strip;
    aredis_err e = enc_p(p, argc, in, &got, &strip);
    if (e != AREDIS_ERR_OK) fail_msg("%s: %s", in[0], aredis_call_error()->detail);
    if (got.n != exp.n || memcmp(got.p, exp.p, exp.n) != 0)
        fail_msg("%s: got %.*s\nwant %.*s", in[0], (int)got.n, got.p, (int)exp.n, exp.p);
    assert_int_equal(strip, want_strip);
    free(got.p);
    free(exp.p);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__})
#define N(...) ((int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))
/* EXPECT((in...), (want...)): prefix "app:", nothing to strip. */
#define IN(...) N(__VA_ARGS__), ARGS(__VA_ARGS__)
#define EXPECT(in, want) expect_p(P, IN in, IN want, 0)
#define EXPECT_STRIP(in, want, s) expect_p(P, IN in, IN want, s)

/* The command must be refused with UNSUPPORTED and a detail holding `what`. */
static void expect_refused(const char *p, int argc, const char *const *in, const char *what) {
    bytes got;
    assert_int_equal(enc_p(p, argc, in, &got, NULL), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(got.n, 0);
    free(got.p);
    const aredis_error *ce = aredis_call_error();
    assert_int_equal(ce->code, AREDIS_ERR_UNSUPPORTED);
    if (!strstr(ce->detail, what)) fail_msg("detail \"%s\" lacks \"%s\"", ce->detail, what);
}
#define REFUSED(in, what) expect_refused(P, IN in, what)

/* ---- Key specs ---------------------------------------------------------- */

static void test_single_key(void **state) {
    (void)state;
    EXPECT(("GET", "k"), ("GET", P "k"));
    EXPECT(("get", "k"), ("get", P "k")); /* any case */
    /* values stay: even a value that looks like a key */
    EXPECT(("SET", "k", "k", "EX", "10"), ("SET", P "k", "k", "EX", "10"));
    EXPECT(("GETEX", "k", "PX", "5"), ("GETEX", P "k", "PX", "5"));
    EXPECT(("APPEND", "k", "k"), ("APPEND", P "k", "k"));
    EXPECT(("HSET", "h", "f", "v"), ("HSET", P "h", "f", "v"));
    EXPECT(("EXPIRE", "k", "10"), ("EXPIRE", P "k", "10"));
    /* an empty key name is a key too */
    EXPECT(("GET", ""), ("GET", P));
}

static void test_ranges(void **state) {
    (void)state;
    EXPECT(("MSET", "a", "1", "b", "2"), ("MSET", P "a", "1", P "b", "2"));
    EXPECT(("MGET", "a", "b", "c"), ("MGET", P "a", P "b", P "c"));
    EXPECT(("DEL", "a", "b"), ("DEL", P "a", P "b"));
    EXPECT(("RENAME", "a", "b"), ("RENAME", P "a", P "b"));
    EXPECT(("COPY", "a", "b", "REPLACE"), ("COPY", P "a", P "b", "REPLACE"));
    EXPECT(("LMOVE", "a", "b", "LEFT", "RIGHT"), ("LMOVE", P "a", P "b", "LEFT", "RIGHT"));
    EXPECT(("SMOVE", "a", "b", "m"), ("SMOVE", P "a", P "b", "m"));
    /* the last argument is a timeout */
    EXPECT_STRIP(("BLPOP", "a", "b", "0"), ("BLPOP", P "a", P "b", "0"), AREDIS__STRIP_FIRST);
    EXPECT_STRIP(("BZPOPMIN", "z", "1"), ("BZPOPMIN", P "z", "1"), AREDIS__STRIP_FIRST);
    EXPECT(("BITOP", "AND", "d", "a", "b"), ("BITOP", "AND", P "d", P "a", P "b"));
    EXPECT(("LCS", "a", "b", "LEN"), ("LCS", P "a", P "b", "LEN"));
    EXPECT(("GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"),
           ("GEOSEARCHSTORE", P "d", P "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"));
}

static void test_keynum(void **state) {
    (void)state;
    EXPECT(("EVAL", "return KEYS[1]", "2", "a", "b", "x"),
           ("EVAL", "return KEYS[1]", "2", P "a", P "b", "x"));
    EXPECT(("EVALSHA", "abc", "0", "x"), ("EVALSHA", "abc", "0", "x"));
    EXPECT(("FCALL", "f", "1", "a", "x"), ("FCALL", "f", "1", P "a", "x"));
    EXPECT(("ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"),
           ("ZUNIONSTORE", P "d", "2", P "a", P "b", "WEIGHTS", "1", "2"));
    EXPECT(("SINTERCARD", "2", "a", "b", "LIMIT", "1"),
           ("SINTERCARD", "2", P "a", P "b", "LIMIT", "1"));
    EXPECT_STRIP(("LMPOP", "2", "a", "b", "LEFT"), ("LMPOP", "2", P "a", P "b", "LEFT"),
                 AREDIS__STRIP_FIRST);
    EXPECT_STRIP(("BLMPOP", "0", "1", "a", "LEFT"), ("BLMPOP", "0", "1", P "a", "LEFT"),
                 AREDIS__STRIP_FIRST);
    EXPECT_STRIP(("ZMPOP", "1", "z", "MIN"), ("ZMPOP", "1", P "z", "MIN"), AREDIS__STRIP_FIRST);
}

static void test_keyword(void **state) {
    (void)state;
    EXPECT_STRIP(("XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0"),
                 ("XREAD", "COUNT", "1", "STREAMS", P "s1", P "s2", "0", "0"),
                 AREDIS__STRIP_STREAMS);
    EXPECT_STRIP(("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
                 ("XREADGROUP", "GROUP", "g", "c", "STREAMS", P "s", ">"), AREDIS__STRIP_STREAMS);
    EXPECT(("GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d"),
           ("GEORADIUS", P "g", "0", "0", "1", "km", "STORE", P "d"));
}

static void test_subcommands(void **state) {
    (void)state;
    EXPECT(("OBJECT", "ENCODING", "k"), ("OBJECT", "ENCODING", P "k"));
    EXPECT(("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
           ("XGROUP", "CREATE", P "s", "g", "$", "MKSTREAM"));
    EXPECT(("MEMORY", "USAGE", "k"), ("MEMORY", "USAGE", P "k"));
    EXPECT(("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "maxmemory"));
}

static void test_keyless(void **state) {
    (void)state;
    EXPECT(("PING"), ("PING"));
    EXPECT(("INFO", "server"), ("INFO", "server"));
    EXPECT(("DBSIZE"), ("DBSIZE"));
    EXPECT(("ECHO", "k"), ("ECHO", "k"));
    EXPECT(("PUBLISH", "ch", "m"), ("PUBLISH", "ch", "m"));
    /* shard channels have key specs marked "not a key" */
    EXPECT(("SPUBLISH", "ch", "m"), ("SPUBLISH", "ch", "m"));
    EXPECT(("DEBUG", "SLEEP", "0"), ("DEBUG", "SLEEP", "0"));
}

/* ---- Special cases ------------------------------------------------------ */

static void test_scan(void **state) {
    (void)state;
    EXPECT_STRIP(("SCAN", "0"), ("SCAN", "0", "MATCH", P "*"), AREDIS__STRIP_SCAN);
    EXPECT_STRIP(("SCAN", "0", "COUNT", "10"), ("SCAN", "0", "COUNT", "10", "MATCH", P "*"),
                 AREDIS__STRIP_SCAN);
    EXPECT_STRIP(("scan", "7", "match", "u*", "COUNT", "5", "TYPE", "string"),
                 ("scan", "7", "match", P "u*", "COUNT", "5", "TYPE", "string"),
                 AREDIS__STRIP_SCAN);
    /* a value "MATCH" of COUNT is not the keyword: pairs, as the server reads */
    EXPECT_STRIP(("SCAN", "0", "COUNT", "MATCH", "MATCH", "x"),
                 ("SCAN", "0", "COUNT", "MATCH", "MATCH", P "x"), AREDIS__STRIP_SCAN);
    /* HSCAN's MATCH is about fields: only the key */
    EXPECT(("HSCAN", "h", "0", "MATCH", "f*"), ("HSCAN", P "h", "0", "MATCH", "f*"));
}

static void test_keys(void **state) {
    (void)state;
    EXPECT_STRIP(("KEYS", "u*"), ("KEYS", P "u*"), AREDIS__STRIP_KEYS);
    EXPECT_STRIP(("KEYS", "*"), ("KEYS", P "*"), AREDIS__STRIP_KEYS);
}

/* The prefix's glob characters are escaped in patterns, not in key names. */
static void test_glob_escape(void **state) {
    (void)state;
    const char *p = "a*b?[c]\\:";
    expect_p(p, IN("KEYS", "x*"), IN("KEYS", "a\\*b\\?\\[c\\]\\\\:x*"), AREDIS__STRIP_KEYS);
    expect_p(p, IN("SCAN", "0"), IN("SCAN", "0", "MATCH", "a\\*b\\?\\[c\\]\\\\:*"),
             AREDIS__STRIP_SCAN);
    expect_p(p, IN("GET", "k"), IN("GET", "a*b?[c]\\:k"), 0);
    /* nothing to escape: the prefix as is */
    expect_p("plain-", IN("KEYS", "*"), IN("KEYS", "plain-*"), AREDIS__STRIP_KEYS);
}

static void test_sort(void **state) {
    (void)state;
    EXPECT(("SORT", "l"), ("SORT", P "l"));
    EXPECT(("SORT", "l", "BY", "w_*", "GET", "#", "GET", "o_*->f", "LIMIT", "0", "10", "DESC",
            "ALPHA", "STORE", "d"),
           ("SORT", P "l", "BY", P "w_*", "GET", "#", "GET", P "o_*->f", "LIMIT", "0", "10", "DESC",
            "ALPHA", "STORE", P "d"));
    /* BY without a '*' means "do not sort": left alone */
    EXPECT(("SORT", "l", "BY", "nosort", "GET", "#x"),
           ("SORT", P "l", "BY", "nosort", "GET", P "#x"));
    /* LIMIT's values are not keywords */
    EXPECT(("SORT", "l", "LIMIT", "store", "get", "GET", "a_*"),
           ("SORT", P "l", "LIMIT", "store", "get", "GET", P "a_*"));
    EXPECT(("SORT_RO", "l", "BY", "w_*", "GET", "o_*"),
           ("SORT_RO", P "l", "BY", P "w_*", "GET", P "o_*"));
    /* a prefix holding '*' cannot go into a pattern; fine without one */
    expect_p("a*", IN("SORT", "l", "ALPHA"), IN("SORT", "a*l", "ALPHA"), 0);
    expect_refused("a*", IN("SORT", "l", "GET", "o_*"), "SORT GET patterns");
    expect_refused("a*", IN("SORT", "l", "BY", "w_*"), "SORT BY patterns");
}

static void test_migrate(void **state) {
    (void)state;
    EXPECT(("MIGRATE", "127.0.0.1", "7000", "k", "0", "1000"),
           ("MIGRATE", "127.0.0.1", "7000", P "k", "0", "1000"));
    EXPECT(("MIGRATE", "127.0.0.1", "7000", "k", "0", "1000", "COPY", "REPLACE"),
           ("MIGRATE", "127.0.0.1", "7000", P "k", "0", "1000", "COPY", "REPLACE"));
    /* with KEYS, argument 3 stays "" */
    EXPECT(("MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b"),
           ("MIGRATE", "h", "1", "", "0", "5", "KEYS", P "a", P "b"));
    /* a password "KEYS" is not the keyword */
    EXPECT(("MIGRATE", "h", "1", "", "0", "5", "COPY", "AUTH", "KEYS", "KEYS", "a"),
           ("MIGRATE", "h", "1", "", "0", "5", "COPY", "AUTH", "KEYS", "KEYS", P "a"));
    EXPECT(("MIGRATE", "h", "1", "", "0", "5", "AUTH2", "KEYS", "KEYS", "KEYS", "a"),
           ("MIGRATE", "h", "1", "", "0", "5", "AUTH2", "KEYS", "KEYS", "KEYS", P "a"));
    /* without KEYS the empty key is a key in the namespace */
    EXPECT(("MIGRATE", "h", "1", "", "0", "5"), ("MIGRATE", "h", "1", P, "0", "5"));
}

static void test_other_specials(void **state) {
    (void)state;
    EXPECT(("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "u:", "prefix", "v:"),
           ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", P "u:", "prefix", P "v:"));
    EXPECT(("CLIENT", "TRACKING", "on", "REDIRECT", "7", "PREFIX", "x"),
           ("CLIENT", "TRACKING", "on", "REDIRECT", "7", "PREFIX", P "x"));
    EXPECT(("CLIENT", "TRACKING", "off"), ("CLIENT", "TRACKING", "off"));
    EXPECT(("CLUSTER", "KEYSLOT", "k"), ("CLUSTER", "KEYSLOT", P "k"));
    EXPECT(("DEBUG", "OBJECT", "k"), ("DEBUG", "OBJECT", P "k"));
    EXPECT(("DEBUG", "DIGEST-VALUE", "a", "b"), ("DEBUG", "DIGEST-VALUE", P "a", P "b"));
}

/* ---- Refusals ----------------------------------------------------------- */

static void test_refusals(void **state) {
    (void)state;
    REFUSED(("FOO", "k"), "unknown command 'FOO'");
    REFUSED(("FOO", "k"), "issue it from a client without a prefix");
    /* a binary name is shown printable */
    REFUSED(("F\no", "k"), "unknown command 'F?o'");
    /* a key count past the arguments: the keys cannot be known */
    REFUSED(("EVAL", "s", "5", "a"), "'EVAL'");
    REFUSED(("ZUNIONSTORE", "d", "9", "a"), "which arguments of 'ZUNIONSTORE' are keys");
    /* a number of arguments the table does not expect */
    REFUSED(("GET"), "'GET' with 1 arguments, which the command table does not expect (arity 2)");
    REFUSED(("GET", "a", "b"), "(arity 2)");
    REFUSED(("EVAL"), "(arity -3)");
    REFUSED(("OBJECT", "ENCODING"), "'OBJECT ENCODING' with 2 arguments");

    /* invalid calls */
    aredis__arg a[2] = {{"GET", 3}, {"k", 1}};
    aredis__buf b = {0};
    unsigned s;
    assert_int_equal(aredis__prefix_encode(&b, NULL, P, 4, a, 0, &s), AREDIS_ERR_INVALID);
    assert_int_equal(aredis__prefix_encode(&b, NULL, P, 0, a, 2, &s), AREDIS_ERR_INVALID);
    assert_int_equal(aredis__prefix_encode(&b, NULL, NULL, 4, a, 2, &s), AREDIS_ERR_INVALID);
    char big[AREDIS__PREFIX_MAX + 1];
    memset(big, 'p', sizeof big);
    assert_int_equal(aredis__prefix_encode(&b, NULL, big, sizeof big, a, 2, &s),
                     AREDIS_ERR_INVALID);
    assert_int_equal(b.len, 0);
    assert_int_equal(aredis__prefix_encode(&b, NULL, big, AREDIS__PREFIX_MAX, a, 2, &s),
                     AREDIS_ERR_OK);
    assert_int_equal(b.len, 4 + 9 + 7 + AREDIS__PREFIX_MAX + 1 + 2);
    aredis__buf_free(&b);
}

/* ---- Shapes ------------------------------------------------------------- */

/* Binary keys and values (NULs, CRLF) and many arguments (past the stack). */
static void test_binary_and_many(void **state) {
    (void)state;
    aredis__arg a[3] = {{"SET", 3}, {"k\0\r\n", 4}, {"v\0", 2}};
    aredis__buf b = {0};
    unsigned s;
    assert_int_equal(aredis__prefix_encode(&b, NULL, "p\0", 2, a, 3, &s), AREDIS_ERR_OK);
    static const char want[] = "*3\r\n$3\r\nSET\r\n$6\r\np\0k\0\r\n\r\n$2\r\nv\0\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    aredis__buf_free(&b);

    /* MSET with 150 pairs; DEL with 300 keys */
    enum { PAIRS = 150 };
    static char names[2 * PAIRS][16], pref[2 * PAIRS][16];
    const char *in[1 + 2 * PAIRS], *out[1 + 2 * PAIRS];
    in[0] = out[0] = "MSET";
    for (int i = 0; i < PAIRS; i++) {
        snprintf(names[2 * i], 16, "k%d", i);
        snprintf(pref[2 * i], 16, P "k%d", i);
        snprintf(names[2 * i + 1], 16, "v%d", i);
        in[1 + 2 * i] = names[2 * i];
        out[1 + 2 * i] = pref[2 * i];
        in[2 + 2 * i] = out[2 + 2 * i] = names[2 * i + 1];
    }
    bytes got, exp = resp(1 + 2 * PAIRS, out, NULL);
    assert_int_equal(aredis__prefix_encode_argv(&b, NULL, P, 4, 1 + 2 * PAIRS, in, NULL, &s),
                     AREDIS_ERR_OK);
    assert_int_equal(b.len, exp.n);
    assert_memory_equal(b.data, exp.p, exp.n);
    free(exp.p);
    aredis__buf_free(&b);

    in[0] = out[0] = "DEL";
    for (int i = 0; i < PAIRS; i++) {
        in[1 + i] = names[2 * i];
        out[1 + i] = pref[2 * i];
    }
    exp = resp(1 + PAIRS, out, NULL);
    assert_int_equal(enc_p(P, 1 + PAIRS, in, &got, NULL), AREDIS_ERR_OK);
    assert_int_equal(got.n, exp.n);
    assert_memory_equal(got.p, exp.p, exp.n);
    free(got.p);
    free(exp.p);
}

/* Appends after what the buffer holds, also with a consumed prefix. */
static void test_appends(void **state) {
    (void)state;
    aredis__buf b = {0};
    unsigned s;
    assert_int_equal(aredis__buf_append(&b, "xxxxPING", 8), 0);
    aredis__buf_consume(&b, 4);
    aredis__arg a[2] = {{"GET", 3}, {"k", 1}};
    assert_int_equal(aredis__prefix_encode(&b, NULL, P, 4, a, 2, &s), AREDIS_ERR_OK);
    static const char want[] = "PING*2\r\n$3\r\nGET\r\n$5\r\napp:k\r\n";
    assert_int_equal(aredis__buf_used(&b), sizeof want - 1);
    assert_memory_equal(b.data + b.off, want, sizeof want - 1);
    /* a refusal leaves it as it was */
    aredis__arg f[2] = {{"NOSUCH", 6}, {"k", 1}};
    assert_int_equal(aredis__prefix_encode(&b, NULL, P, 4, f, 2, &s), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis__buf_used(&b), sizeof want - 1);
    aredis__buf_free(&b);
}

static aredis_err enc_fmt(aredis__buf *b, unsigned *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis__prefix_encode_fmt(b, NULL, P, 4, fmt, ap, s);
    va_end(ap);
    return e;
}

/* The format and argv front ends give what the writer would, prefixed. */
static void test_front_ends(void **state) {
    (void)state;
    aredis__buf b = {0};
    unsigned s = 9;
    assert_int_equal(enc_fmt(&b, &s, "SET %s %b", "k", "v\0w", (size_t)3), AREDIS_ERR_OK);
    static const char want[] = "*3\r\n$3\r\nSET\r\n$5\r\napp:k\r\n$3\r\nv\0w\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    assert_int_equal(s, 0);
    b.len = 0;
    assert_int_equal(enc_fmt(&b, &s, "SCAN %d", 0), AREDIS_ERR_OK);
    assert_int_equal(s, AREDIS__STRIP_SCAN);
    b.len = 0;
    /* the writer's errors come through, nothing appended */
    assert_int_equal(enc_fmt(&b, &s, "GET %s", (const char *)NULL), AREDIS_ERR_INVALID);
    assert_int_equal(enc_fmt(&b, &s, ""), AREDIS_ERR_INVALID);
    assert_int_equal(b.len, 0);

    const char *argv[] = {"GET", "key"};
    const size_t lens[] = {3, 1};
    assert_int_equal(aredis__prefix_encode_argv(&b, NULL, P, 4, 2, argv, lens, &s), AREDIS_ERR_OK);
    static const char want2[] = "*2\r\n$3\r\nGET\r\n$5\r\napp:k\r\n";
    assert_int_equal(b.len, sizeof want2 - 1);
    assert_memory_equal(b.data, want2, sizeof want2 - 1);
    b.len = 0;
    const char *bad[] = {"GET", NULL};
    assert_int_equal(aredis__prefix_encode_argv(&b, NULL, P, 4, 2, bad, NULL, &s),
                     AREDIS_ERR_INVALID);
    assert_int_equal(aredis__prefix_encode_argv(&b, NULL, P, 4, 0, argv, NULL, &s),
                     AREDIS_ERR_INVALID);
    assert_int_equal(b.len, 0);
    aredis__buf_free(&b);
}

/* ---- Stripping ---------------------------------------------------------- */

static aredis_reply *parse(const char *resp_bytes) {
    aredis_reader *rd = aredis_reader_new(NULL, NULL);
    assert_non_null(rd);
    assert_int_equal(aredis_reader_feed(rd, resp_bytes, strlen(resp_bytes)), AREDIS_ERR_OK);
    void *r = NULL;
    assert_int_equal(aredis_reader_get_reply(rd, &r), AREDIS_ERR_OK);
    assert_non_null(r);
    aredis_reader_free(rd);
    return r;
}

static void expect_str(const aredis_reply *r, const char *s) {
    assert_int_equal(r->type, AREDIS_REPLY_STRING);
    assert_int_equal(r->len, strlen(s));
    assert_string_equal(r->str, s); /* NUL-terminated at the new length */
}

static void test_strip(void **state) {
    (void)state;
    /* KEYS: each string; one without the prefix (should not happen) stays */
    aredis_reply *r = parse("*3\r\n$5\r\napp:a\r\n$4\r\napp:\r\n$3\r\nxyz\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_KEYS, P, 4);
    expect_str(r->element[0], "a");
    expect_str(r->element[1], "");
    expect_str(r->element[2], "xyz");
    aredis_reply_free(r);

    /* SCAN: the cursor stays even when it looks prefixed */
    r = parse("*2\r\n$5\r\napp:0\r\n*2\r\n$6\r\napp:k1\r\n$6\r\napp:k2\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_SCAN, P, 4);
    expect_str(r->element[0], "app:0");
    expect_str(r->element[1]->element[0], "k1");
    expect_str(r->element[1]->element[1], "k2");
    aredis_reply_free(r);

    /* BLPOP / LMPOP: the key only */
    r = parse("*2\r\n$5\r\napp:l\r\n$5\r\napp:v\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_FIRST, P, 4);
    expect_str(r->element[0], "l");
    expect_str(r->element[1], "app:v");
    aredis_reply_free(r);

    /* XREAD, RESP2: [[key, entries], ...] */
    r = parse("*2\r\n*2\r\n$6\r\napp:s1\r\n*0\r\n*2\r\n$6\r\napp:s2\r\n*0\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_STREAMS, P, 4);
    expect_str(r->element[0]->element[0], "s1");
    expect_str(r->element[1]->element[0], "s2");
    aredis_reply_free(r);
    /* XREAD, RESP3: {key: entries, ...} */
    r = parse("%2\r\n$6\r\napp:s1\r\n*0\r\n$6\r\napp:s2\r\n$5\r\napp:x\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_STREAMS, P, 4);
    expect_str(r->element[0], "s1");
    expect_str(r->element[2], "s2");
    expect_str(r->element[3], "app:x");
    aredis_reply_free(r);

    /* other shapes are left alone: nil, an error, a string, a bad SCAN */
    r = parse("_\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_FIRST, P, 4);
    aredis__prefix_strip(r, AREDIS__STRIP_STREAMS, P, 4);
    aredis_reply_free(r);
    r = parse("-ERR app:x\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_KEYS, P, 4);
    assert_string_equal(r->str, "ERR app:x");
    aredis_reply_free(r);
    r = parse("*1\r\n$5\r\napp:a\r\n");
    aredis__prefix_strip(r, AREDIS__STRIP_SCAN, P, 4);
    aredis__prefix_strip(r, AREDIS__STRIP_NONE, P, 4);
    expect_str(r->element[0], "app:a");
    aredis_reply_free(r);
    aredis__prefix_strip(NULL, AREDIS__STRIP_KEYS, P, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_key),  cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_keynum),      cmocka_unit_test(test_keyword),
        cmocka_unit_test(test_subcommands), cmocka_unit_test(test_keyless),
        cmocka_unit_test(test_scan),        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_glob_escape), cmocka_unit_test(test_sort),
        cmocka_unit_test(test_migrate),     cmocka_unit_test(test_other_specials),
        cmocka_unit_test(test_refusals),    cmocka_unit_test(test_binary_and_many),
        cmocka_unit_test(test_appends),     cmocka_unit_test(test_front_ends),
        cmocka_unit_test(test_strip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
