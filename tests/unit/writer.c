/*
 * Unit tests for the command writer (src/proto/writer.c): exact RESP bytes
 * for the format and argv forms, every conversion, every error, and the
 * internal append-to-buffer API's all-or-nothing behaviour, including under
 * allocation failure.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ts.h"

#include "proto/writer_internal.h"
#include "util/buf.h"
#include "writer_check.h"

/* ---- Helpers ---------------------------------------------------------- */

/* The public API must fail with `code`, leaving *out NULL and *outlen 0. */
#define EXPECT_FMT_ERR(code, ...)                                                                  \
    do {                                                                                           \
        char *out_ = (char *)1;                                                                    \
        size_t len_ = 99;                                                                          \
        assert_int_equal(aredis_format_command(&out_, &len_, __VA_ARGS__), code);                  \
        assert_null(out_);                                                                         \
        assert_int_equal(len_, 0);                                                                 \
    } while (0)

static void check_out(char *out, size_t len, const bytes *exp) {
    assert_non_null(out);
    assert_int_equal(len, exp->n);
    assert_memory_equal(out, exp->p, exp->n);
    aredis_free_command(out);
}

/* ---- A counting allocator that can fail ------------------------------- */

static long g_live;       /* blocks currently allocated through the hooks */
static long g_calls;      /* allocation calls seen */
static long g_fail_every; /* fail every N-th call (0 = never) */
static long g_fail_at;    /* fail exactly the N-th call (0 = never) */

static int should_fail(void) {
    g_calls++;
    if (g_fail_at && g_calls == g_fail_at) return 1;
    if (g_fail_every && g_calls % g_fail_every == 0) return 1;
    return 0;
}

static void *t_malloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}

static void *t_calloc(size_t a, size_t b) {
    if (should_fail()) return NULL;
    void *p = calloc(a, b);
    if (p) g_live++;
    return p;
}

static void *t_realloc(void *old, size_t n) {
    if (should_fail()) return NULL;
    void *p = realloc(old, n);
    if (p && !old) g_live++;
    return p;
}

static void t_free(void *p) {
    if (p) g_live--;
    free(p);
}

static void use_test_allocator(long fail_every, long fail_at) {
    static const aredis_allocator a = {t_malloc, t_calloc, t_realloc, t_free};
    g_live = 0;
    g_calls = 0;
    g_fail_every = fail_every;
    g_fail_at = fail_at;
    aredis_set_allocator(&a);
}

/* ---- Format: basics --------------------------------------------------- */

static void test_simple(void **state) {
    (void)state;
    EXPECT_FMT("*1\r\n$4\r\nPING\r\n", "PING");
    EXPECT_FMT("*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", "SET foo bar");
    EXPECT_FMT("*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", "SET %s %s", "foo", "bar");
    EXPECT_FMT("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", "GET %b", "keyXXX", (size_t)3);
}

static void test_spaces(void **state) {
    (void)state;
    EXPECT_FMT("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "   GET    k   ");
    EXPECT_FMT("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "GET %s ", "k");
    /* Only ' ' separates: a tab is a literal byte. */
    EXPECT_FMT("*1\r\n$3\r\na\tb\r\n", "a\tb");
    /* A space inside a %s value stays inside the argument. */
    EXPECT_FMT("*2\r\n$3\r\nGET\r\n$3\r\na b\r\n", "GET %s", "a b");
}

static void test_interpolation(void **state) {
    (void)state;
    EXPECT_FMT("*2\r\n$3\r\nGET\r\n$12\r\nkey:user:-42\r\n", "GET key:%s:%d", "user", -42);
    EXPECT_FMT("*1\r\n$9\r\nab12cd\0ef\r\n", "ab%u%s%b", 12u, "cd", "\0ef", (size_t)3);
    EXPECT_FMT("*2\r\n$4\r\nx7y8\r\n$5\r\n[foo]\r\n", "x%dy%zu [%s]", 7, (size_t)8, "foo");
}

static void test_binary(void **state) {
    (void)state;
    static const char weird[] = "a\0b\r\nc\n\r$*";
    EXPECT_FMT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\na\0b\r\nc\n\r$*\r\n", "SET k %b", weird,
               sizeof weird - 1);

    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    const char *argv[3] = {"SET", "k", (const char *)all};
    size_t lens[3] = {3, 1, sizeof all};
    bytes exp = resp(3, argv, lens);
    char *out;
    size_t len;
    assert_int_equal(aredis_format_command(&out, &len, "SET k %b", all, sizeof all), AREDIS_ERR_OK);
    check_out(out, len, &exp);
    /* The same bytes through argv. */
    assert_int_equal(aredis_format_argv(&out, &len, 3, argv, lens), AREDIS_ERR_OK);
    check_out(out, len, &exp);
    free(exp.p);
}

static void test_empty_args(void **state) {
    (void)state;
    EXPECT_FMT("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n", "SET %s %s", "", "");
    EXPECT_FMT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", "SET k %b", "", (size_t)0);
    /* A NULL pointer with length 0 is an empty argument. */
    EXPECT_FMT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", "SET k %b", (const char *)NULL,
               (size_t)0);
    /* Two empty conversions in one word are still one (empty) argument. */
    EXPECT_FMT("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "ECHO %s%s", "", "");
}

static void test_integers(void **state) {
    (void)state;
    EXPECT_FMT("*1\r\n$1\r\n0\r\n", "%d", 0);
    EXPECT_FMT("*2\r\n$11\r\n-2147483648\r\n$10\r\n2147483647\r\n", "%d %i", INT_MIN, INT_MAX);
    EXPECT_FMT("*1\r\n$10\r\n4294967295\r\n", "%u", UINT_MAX);
    EXPECT_FMT("*3\r\n$20\r\n-9223372036854775808\r\n$19\r\n9223372036854775807\r\n"
               "$20\r\n18446744073709551615\r\n",
               "%ld %li %lu", LONG_MIN, LONG_MAX, ULONG_MAX);
    EXPECT_FMT("*3\r\n$20\r\n-9223372036854775808\r\n$19\r\n9223372036854775807\r\n"
               "$20\r\n18446744073709551615\r\n",
               "%lld %lli %llu", LLONG_MIN, LLONG_MAX, ULLONG_MAX);
    EXPECT_FMT("*2\r\n$20\r\n18446744073709551615\r\n$2\r\n-1\r\n", "%zu %zd", SIZE_MAX,
               (ssize_t)-1);
    EXPECT_FMT("*1\r\n$9\r\n-12:34:56\r\n", "%d:%u:%llu", -12, 34u, 56ull);

    /* Every power of ten and its neighbours, against snprintf. */
    unsigned long long v = 1;
    for (int i = 0; i < 20; i++, v *= 10) {
        unsigned long long probes[3] = {v - 1, v, v + 1};
        for (int j = 0; j < 3; j++) {
            char want[32];
            snprintf(want, sizeof want, "%llu", probes[j]);
            const char *argv[1] = {want};
            bytes exp = resp(1, argv, NULL);
            char *out;
            size_t len;
            assert_int_equal(aredis_format_command(&out, &len, "%llu", probes[j]), AREDIS_ERR_OK);
            check_out(out, len, &exp);
            free(exp.p);
            snprintf(want, sizeof want, "%lld", -(long long)(probes[j] / 2));
            exp = resp(1, argv, NULL);
            assert_int_equal(aredis_format_command(&out, &len, "%lld", -(long long)(probes[j] / 2)),
                             AREDIS_ERR_OK);
            check_out(out, len, &exp);
            free(exp.p);
        }
    }
}

static void test_percent(void **state) {
    (void)state;
    EXPECT_FMT("*1\r\n$1\r\n%\r\n", "%%");
    EXPECT_FMT("*2\r\n$4\r\nECHO\r\n$4\r\n100%\r\n", "ECHO 100%%");
    EXPECT_FMT("*1\r\n$5\r\na%b%c\r\n", "a%%b%%%s", "c");
}

static void test_bad_conversions(void **state) {
    (void)state;
    /* Conversions hiredis does not accept either (the printf conversions it
     * does accept are tested in writer_printf.c). */
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %q", 1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET k%");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %l", 1L);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %l x", 1L);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %lf", 1.0);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %ll", 1LL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %lls", "x");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %lll", 1LL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %z", (size_t)1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %zf", 1.0);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %5s", "x");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %hs", "x");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %*d", 5, 1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %n", (int *)NULL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET % ", 1);
    /* A bad conversion after good ones still fails the whole command. */
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "SET %s %d %q", "k", 1, 2);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "SET %s %5.2f %q", "k", 1.0, 2);
}

static void test_null_and_empty(void **state) {
    (void)state;
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "     ");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, (const char *)NULL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %s", (const char *)NULL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %b", (const char *)NULL, (size_t)1);

    char *out = NULL;
    size_t len = 0;
    assert_int_equal(aredis_format_command(NULL, &len, "PING"), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_format_command(&out, NULL, "PING"), AREDIS_ERR_INVALID);
    assert_null(out);
    aredis_free_command(NULL);
}

static void test_size_overflow(void **state) {
    (void)state;
    /* A %b length that cannot be allocated: NOMEM, nothing read from p. */
    EXPECT_FMT_ERR(AREDIS_ERR_NOMEM, "SET k %b", "x", SIZE_MAX);
    EXPECT_FMT_ERR(AREDIS_ERR_NOMEM, "SET k %b%b", "x", SIZE_MAX / 2 + 1, "y", SIZE_MAX / 2 + 1);
}

/*
 * Many arguments: past 9 the format writer moves the body once to widen the
 * "*N" header it kept room for. Compare with the argv form.
 */
static void test_many_args(void **state) {
    (void)state;
    const char *words[40];
    char store[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(store[i], sizeof store[i], "w%d", i);
        words[i] = store[i];
    }
    /* Literal words, then conversions past the cache. */
    char *out;
    size_t len;
    bytes exp = resp(40, words, NULL);
    assert_int_equal(
        aredis_format_command(
            &out, &len,
            "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 "
            "w22 w23 w24 w25 w26 w27 w28 w29 w30 w31 w32 w%d %s %b w%u w%zu w%lld w39",
            33, "w34", "w35", (size_t)3, 36u, (size_t)37, 38LL),
        AREDIS_ERR_OK);
    check_out(out, len, &exp);
    assert_int_equal(aredis_format_argv(&out, &len, 40, words, NULL), AREDIS_ERR_OK);
    check_out(out, len, &exp);
    free(exp.p);

    /* 200 arguments through argv, with and without lengths. */
    const char *many[200];
    size_t lens[200];
    for (int i = 0; i < 200; i++) {
        many[i] = (i % 3 == 0) ? "" : (i % 3 == 1) ? "abc" : "hello world";
        lens[i] = strlen(many[i]);
    }
    exp = resp(200, many, lens);
    assert_int_equal(aredis_format_argv(&out, &len, 200, many, NULL), AREDIS_ERR_OK);
    check_out(out, len, &exp);
    assert_int_equal(aredis_format_argv(&out, &len, 200, many, lens), AREDIS_ERR_OK);
    check_out(out, len, &exp);
    free(exp.p);
}

/* ---- argv ------------------------------------------------------------- */

static void test_argv(void **state) {
    (void)state;
    const char *argv[3] = {"SET", "key", "va\0ue"};
    size_t lens[3] = {3, 3, 5};
    char *out = (char *)1;
    size_t len = 9;

    assert_int_equal(aredis_format_argv(&out, &len, 3, argv, lens), AREDIS_ERR_OK);
    assert_int_equal(len, sizeof("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\0ue\r\n") - 1);
    assert_memory_equal(out, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\0ue\r\n", len);
    aredis_free_command(out);

    /* Without lengths, strings stop at their NUL. */
    assert_int_equal(aredis_format_argv(&out, &len, 3, argv, NULL), AREDIS_ERR_OK);
    assert_int_equal(len, sizeof("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$2\r\nva\r\n") - 1);
    assert_memory_equal(out, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$2\r\nva\r\n", len);
    aredis_free_command(out);

    /* An empty argument, and a zero length on a non-empty string. */
    const char *e[2] = {"ECHO", "ignored"};
    size_t el[2] = {4, 0};
    assert_int_equal(aredis_format_argv(&out, &len, 2, e, el), AREDIS_ERR_OK);
    assert_int_equal(len, sizeof("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n") - 1);
    assert_memory_equal(out, "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", len);
    aredis_free_command(out);
}

static void test_argv_errors(void **state) {
    (void)state;
    const char *argv[2] = {"GET", NULL};
    size_t lens[2] = {3, 0};
    char *out = (char *)1;
    size_t len = 9;

    assert_int_equal(aredis_format_argv(&out, &len, 0, argv, NULL), AREDIS_ERR_INVALID);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_int_equal(aredis_format_argv(&out, &len, -1, argv, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_format_argv(&out, &len, 1, NULL, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_format_argv(&out, &len, 2, argv, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_format_argv(&out, &len, 2, argv, lens), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_format_argv(NULL, &len, 1, argv, NULL), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_format_argv(&out, NULL, 1, argv, NULL), AREDIS_ERR_INVALID);
    assert_null(out);
}

/* ---- Internal API ----------------------------------------------------- */

static void test_internal_append(void **state) {
    (void)state;
    aredis__buf b = {NULL, 0, 0, 0};
    const char *argv[2] = {"GET", "k"};

    assert_int_equal(buf_fmt(&b, "PING"), AREDIS_ERR_OK);
    assert_int_equal(aredis__write_argv(&b, 2, argv, NULL), AREDIS_ERR_OK);
    assert_int_equal(buf_fmt(&b, "SET %s %d", "k", 1), AREDIS_ERR_OK);
    static const char want[] = "*1\r\n$4\r\nPING\r\n"
                               "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                               "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);

    /* Appending after a consumed prefix keeps the unconsumed bytes intact. */
    aredis__buf_consume(&b, 14); /* the PING */
    assert_int_equal(buf_fmt(&b, "PING"), AREDIS_ERR_OK);
    assert_int_equal(aredis__buf_used(&b), sizeof want - 1);
    assert_memory_equal(b.data + b.off, want + 14, sizeof want - 1 - 14);
    assert_memory_equal(b.data + b.len - 14, "*1\r\n$4\r\nPING\r\n", 14);

    /* Large values force the buffer to grow. */
    size_t big = 100000;
    char *val = malloc(big);
    assert_non_null(val);
    memset(val, 'v', big);
    size_t before = aredis__buf_used(&b);
    assert_int_equal(buf_fmt(&b, "SET big %b", val, big), AREDIS_ERR_OK);
    assert_int_equal(aredis__buf_used(&b), before + 4 + 9 + 9 + 9 + big + 2);
    assert_memory_equal(b.data + b.len - big - 2, val, big);
    free(val);
    aredis__buf_free(&b);
}

/* Snapshot a buffer and check that a failed write left it byte-identical. */
typedef struct {
    aredis__buf b;
    char copy[64];
} buf_snap;

static void snap(buf_snap *s, const aredis__buf *b) {
    s->b = *b;
    assert_true(b->len <= sizeof s->copy);
    memcpy(s->copy, b->data, b->len);
}

static void same(const buf_snap *s, const aredis__buf *b) {
    assert_ptr_equal(b->data, s->b.data);
    assert_int_equal(b->off, s->b.off);
    assert_int_equal(b->len, s->b.len);
    assert_int_equal(b->cap, s->b.cap);
    assert_memory_equal(b->data, s->copy, b->len);
}

static void test_internal_rollback(void **state) {
    (void)state;
    aredis__buf b = {NULL, 0, 0, 0};
    const char *nullarg[2] = {"GET", NULL};
    buf_snap s;

    assert_int_equal(buf_fmt(&b, "SET a b"), AREDIS_ERR_OK);
    snap(&s, &b);
    assert_int_equal(buf_fmt(&b, "SET %s %q", "k", 1), AREDIS_ERR_INVALID);
    same(&s, &b);
    assert_int_equal(buf_fmt(&b, "SET %s %s", "k", (const char *)NULL), AREDIS_ERR_INVALID);
    same(&s, &b);
    assert_int_equal(buf_fmt(&b, "   "), AREDIS_ERR_INVALID);
    same(&s, &b);
    assert_int_equal(buf_fmt(&b, NULL), AREDIS_ERR_INVALID);
    same(&s, &b);
    assert_int_equal(buf_fmt(&b, "SET k %b", "x", SIZE_MAX), AREDIS_ERR_NOMEM);
    same(&s, &b);
    assert_int_equal(aredis__write_argv(&b, 0, nullarg, NULL), AREDIS_ERR_INVALID);
    same(&s, &b);
    assert_int_equal(aredis__write_argv(&b, 2, nullarg, NULL), AREDIS_ERR_INVALID);
    same(&s, &b);
    assert_int_equal(aredis__write_argv(NULL, 1, nullarg, NULL), AREDIS_ERR_INVALID);

    /* The buffer is full to its capacity and cannot grow: NOMEM, unchanged. */
    use_test_allocator(0, 1);
    char *fill = malloc(b.cap);
    assert_non_null(fill);
    memset(fill, 'x', b.cap);
    size_t room = b.cap - b.len;
    b.len += room; /* pretend the rest is used by earlier commands */
    memcpy(b.data + b.len - room, fill, room);
    s.b = b;
    assert_int_equal(buf_fmt(&b, "SET %s %s", "k", "v"), AREDIS_ERR_NOMEM);
    assert_ptr_equal(b.data, s.b.data);
    assert_int_equal(b.len, s.b.len);
    assert_int_equal(b.cap, s.b.cap);
    assert_memory_equal(b.data, s.copy, s.b.len - room);
    const char *argv[1] = {"PING"};
    g_fail_at = g_calls + 1;
    assert_int_equal(aredis__write_argv(&b, 1, argv, NULL), AREDIS_ERR_NOMEM);
    assert_int_equal(b.len, s.b.len);
    assert_int_equal(b.cap, s.b.cap);
    aredis_reset_allocator();
    free(fill);
    aredis__buf_free(&b);
}

/*
 * Fail every N-th allocation while formatting many commands, both ways:
 * every call either succeeds with the right bytes or fails with NOMEM, and
 * nothing leaks.
 */
static void test_alloc_failure(void **state) {
    (void)state;
    static const char want[] = "*3\r\n$3\r\nSET\r\n$5\r\nkey:7\r\n$5\r\nvalue\r\n";
    const char *argv[3] = {"SET", "key:7", "value"};

    for (long n = 1; n <= 6; n++) {
        int ok = 0, nomem = 0;
        use_test_allocator(n, 0);
        for (int i = 0; i < 50; i++) {
            char *out = NULL;
            size_t len = 0;
            aredis_err rc = (i % 2) ? aredis_format_command(&out, &len, "SET key:%d %s", 7, "value")
                                    : aredis_format_argv(&out, &len, 3, argv, NULL);
            if (rc == AREDIS_ERR_OK) {
                ok++;
                assert_int_equal(len, sizeof want - 1);
                assert_memory_equal(out, want, len);
                aredis_free_command(out);
            } else {
                nomem++;
                assert_int_equal(rc, AREDIS_ERR_NOMEM);
                assert_null(out);
            }
        }
        assert_int_equal(g_live, 0);
        if (n == 1) assert_int_equal(ok, 0);
        if (n > 1) assert_true(ok > 0);
        assert_true(nomem > 0);

        /* The internal API, growing a buffer from empty. */
        aredis__buf b = {NULL, 0, 0, 0};
        size_t expect_len = 0;
        g_calls = 0;
        for (int i = 0; i < 2000; i++) {
            aredis_err rc = (i % 2) ? buf_fmt(&b, "SET key:%d %s", 7, "value")
                                    : aredis__write_argv(&b, 3, argv, NULL);
            if (rc == AREDIS_ERR_OK)
                expect_len += sizeof want - 1;
            else
                assert_int_equal(rc, AREDIS_ERR_NOMEM);
            assert_int_equal(b.len, expect_len);
        }
        for (size_t off = 0; off < b.len; off += sizeof want - 1)
            assert_memory_equal(b.data + off, want, sizeof want - 1);
        aredis__buf_free(&b);
        assert_int_equal(g_live, 0);
        aredis_reset_allocator();
    }
}

/* ---- One pass: words of several pieces, headers, growth ---------------- */

/* A deterministic byte pattern (includes ' ', '%', NUL, CR and LF). */
static void fill_pattern(char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i * 131u + seed * 7u + 3u) % 256u);
}

/* A NUL-free pattern for %s. */
static void fill_text(char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i + seed) % 26u);
    p[n] = '\0';
}

/*
 * Words of several pieces whose payload crosses the lengths where its header
 * gets another digit (9/10, 99/100, 999/1000) and where the small copies
 * change strategy (4, 8, 16, 32 bytes).
 */
static void test_multi_piece_words(void **state) {
    (void)state;
    static const size_t lens[] = {0,  1,  2,   3,   4,   5,   6,   7,   8,   9,   10,   11,  14,
                                  15, 16, 17,  28,  29,  30,  31,  32,  33,  34,  95,   96,  97,
                                  98, 99, 100, 101, 200, 995, 996, 997, 998, 999, 1000, 5000};
    static char str[5001], bin[5001];
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k];
        fill_text(str, n, (unsigned)k);
        fill_pattern(bin, n, (unsigned)k);
        char *out;
        size_t len;

        /* "k:%s" is 2 + n bytes, "%b|%s" is 2n + 1 bytes. */
        char *w1 = malloc(n + 3), *w2 = malloc(2 * n + 2);
        assert_non_null(w1);
        assert_non_null(w2);
        memcpy(w1, "k:", 2);
        memcpy(w1 + 2, str, n);
        memcpy(w2, bin, n);
        w2[n] = '|';
        memcpy(w2 + n + 1, str, n);
        const char *argv[4] = {"SET", w1, w2, "x-7"};
        size_t al[4] = {3, n + 2, 2 * n + 1, 3};
        bytes exp = resp(4, argv, al);
        assert_int_equal(
            aredis_format_command(&out, &len, "SET k:%s %b|%s x%d", str, bin, n, str, -7),
            AREDIS_ERR_OK);
        check_out(out, len, &exp);

        /* The same through the buffer API, behind some earlier bytes. */
        aredis__buf b = {NULL, 0, 0, 0};
        assert_int_equal(aredis__buf_append(&b, "prefix", 6), 0);
        assert_int_equal(buf_fmt(&b, "SET k:%s %b|%s x%d", str, bin, n, str, -7), AREDIS_ERR_OK);
        assert_int_equal(b.len, 6 + exp.n);
        assert_memory_equal(b.data, "prefix", 6);
        assert_memory_equal(b.data + 6, exp.p, exp.n);
        aredis__buf_free(&b);
        free(exp.p);
        free(w1);
        free(w2);
    }

    /* A word of many pieces of every kind. */
    static const char want[] = "*2\r\n$4\r\nECHO\r\n"
                               "$70\r\n"
                               "a-1b2c-3d4e5f6g7h%i8j9k10l11m12n-13o14pq\0rstu"
                               "v|x%y-9223372036854775808\r\n";
    EXPECT_FMT(want,
               "ECHO a%db%uc%ldd%lue%llif%llug%zuh%%i%zdj%lik%dl%um%dn%do%dp%s%bt%su%b|x%%y%lld",
               -1, 2u, -3L, 4UL, 5LL, 6ULL, (size_t)7, (ssize_t)8, 9L, 10, 11u, 12, -13, 14, "",
               "q\0rs", (size_t)4, "", "v", (size_t)1, LLONG_MIN);
}

/* A format of `n` literal words "w0 w1 ...", then " %s %d". */
static char *words_fmt(int n) {
    size_t cap = (size_t)n * 8 + 16;
    char *f = malloc(cap), *p = f;
    assert_non_null(f);
    for (int i = 0; i < n; i++)
        p += snprintf(p, cap - (size_t)(p - f), "w%d ", i);
    strcpy(p, "%s %d");
    return f;
}

/* The "*N" header around its widths, against the argv form. */
static void test_arg_counts(void **state) {
    (void)state;
    static const int counts[] = {1, 2, 7, 8, 9, 10, 11, 98, 99, 100, 101, 998, 1000, 1003};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        int total = counts[k], lit = total - 2 > 0 ? total - 2 : 0;
        const char **argv = malloc((size_t)(lit + 2) * sizeof *argv);
        char(*store)[16] = malloc((size_t)(lit + 2) * sizeof *store);
        assert_non_null(argv);
        assert_non_null(store);
        for (int i = 0; i < lit; i++) {
            snprintf(store[i], sizeof store[i], "w%d", i);
            argv[i] = store[i];
        }
        argv[lit] = "s";
        argv[lit + 1] = "-5";
        bytes exp;
        char *out, *fmt;
        size_t len;
        if (total == 1) {
            exp = resp(1, argv + lit, NULL);
            fmt = strdup("%s");
        } else {
            exp = resp(lit + 2, argv, NULL);
            fmt = words_fmt(lit);
        }
        assert_non_null(fmt);
        assert_int_equal(aredis_format_command(&out, &len, fmt, "s", -5), AREDIS_ERR_OK);
        check_out(out, len, &exp);
        const char *const *av = total == 1 ? argv + lit : argv;
        assert_int_equal(aredis_format_argv(&out, &len, total, av, NULL), AREDIS_ERR_OK);
        check_out(out, len, &exp);

        aredis__buf b = {NULL, 0, 0, 0};
        assert_int_equal(buf_fmt(&b, fmt, "s", -5), AREDIS_ERR_OK);
        assert_int_equal(aredis__write_argv(&b, total, av, NULL), AREDIS_ERR_OK);
        assert_int_equal(b.len, 2 * exp.n);
        assert_memory_equal(b.data, exp.p, exp.n);
        assert_memory_equal(b.data + exp.n, exp.p, exp.n);
        aredis__buf_free(&b);
        free(exp.p);
        free(fmt);
        free(store);
        free(argv);
    }
}

/* The va_list is only copied: the same one formats the same command twice. */
static aredis_err buf_fmt_twice(aredis__buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err rc = aredis__write_vfmt(b, fmt, ap);
    if (rc == AREDIS_ERR_OK) rc = aredis__write_vfmt(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_va_list_reuse(void **state) {
    (void)state;
    aredis__buf b = {NULL, 0, 0, 0};
    /* More arguments than registers, so some come from the stack. */
    assert_int_equal(buf_fmt_twice(&b, "MSET %s %d k:%u:%lld %b %zu %s%s %d %d %d", "a", 1, 2u, 3LL,
                                   "b\0", (size_t)2, (size_t)4, "c", "d", 5, 6, 7),
                     AREDIS_ERR_OK);
    static const char one[] = "*10\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$5\r\nk:2:3\r\n"
                              "$2\r\nb\0\r\n$1\r\n4\r\n$2\r\ncd\r\n$1\r\n5\r\n$1\r\n6\r\n"
                              "$1\r\n7\r\n";
    assert_int_equal(b.len, 2 * (sizeof one - 1));
    assert_memory_equal(b.data, one, sizeof one - 1);
    assert_memory_equal(b.data + sizeof one - 1, one, sizeof one - 1);
    aredis__buf_free(&b);
}

/*
 * Buffer states that make the one-pass writer grow in the middle of a
 * command: an empty buffer, and buffers with `room` bytes left, with and
 * without a consumed prefix (which a growth may reclaim by moving the used
 * bytes down). After the call the used bytes that were there must be intact
 * and followed by exactly `exp` (or, on error, by nothing).
 */
typedef aredis_err (*buf_call)(aredis__buf *b);

static const char *g_big_s;
static const char *g_big_b;
static size_t g_big_n;

static aredis_err call_single(aredis__buf *b) {
    return buf_fmt(b, "SET %s %b", g_big_s, g_big_b, g_big_n);
}
static aredis_err call_multi(aredis__buf *b) {
    return buf_fmt(b, "SET k:%s:%d v%b%s%b. %u", g_big_s, 42, g_big_b, g_big_n, g_big_s, g_big_b,
                   g_big_n, 9u);
}
static aredis_err call_many(aredis__buf *b) {
    return buf_fmt(b, "A B C D E F G H I J K%s %b", g_big_s, g_big_b, g_big_n);
}
static aredis_err call_argv(aredis__buf *b) {
    const char *argv[4] = {"SET", g_big_s, g_big_b, "end"};
    size_t lens[4] = {3, strlen(g_big_s), g_big_n, 3};
    return aredis__write_argv(b, 4, argv, lens);
}
static aredis_err call_late_error(aredis__buf *b) {
    return buf_fmt(b, "SET k:%s %b %d %q", g_big_s, g_big_b, g_big_n, 1, 2);
}
static aredis_err call_late_null(aredis__buf *b) {
    const char *argv[4] = {"SET", g_big_s, g_big_b, NULL};
    size_t lens[4] = {3, strlen(g_big_s), g_big_n, 0};
    return aredis__write_argv(b, 4, argv, lens);
}

static bytes expect_of(buf_call call) {
    bytes e = {NULL, 0};
    if (call == call_single) {
        const char *argv[3] = {"SET", g_big_s, g_big_b};
        size_t l[3] = {3, strlen(g_big_s), g_big_n};
        return resp(3, argv, l);
    }
    if (call == call_argv) {
        const char *argv[4] = {"SET", g_big_s, g_big_b, "end"};
        size_t l[4] = {3, strlen(g_big_s), g_big_n, 3};
        return resp(4, argv, l);
    }
    size_t sn = strlen(g_big_s);
    if (call == call_many) {
        const char *argv[12] = {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", NULL, g_big_b};
        size_t l[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 + sn, g_big_n};
        char *k = malloc(sn + 1);
        assert_non_null(k);
        k[0] = 'K';
        memcpy(k + 1, g_big_s, sn);
        argv[10] = k;
        e = resp(12, argv, l);
        free(k);
        return e;
    }
    /* call_multi: "k:<s>:42" "v<b><s><b>." "9" */
    char *w1 = malloc(sn + 5), *w2 = malloc(2 * g_big_n + sn + 2);
    assert_non_null(w1);
    assert_non_null(w2);
    memcpy(w1, "k:", 2);
    memcpy(w1 + 2, g_big_s, sn);
    memcpy(w1 + 2 + sn, ":42", 3);
    w2[0] = 'v';
    memcpy(w2 + 1, g_big_b, g_big_n);
    memcpy(w2 + 1 + g_big_n, g_big_s, sn);
    memcpy(w2 + 1 + g_big_n + sn, g_big_b, g_big_n);
    w2[1 + 2 * g_big_n + sn] = '.';
    const char *argv[4] = {"SET", w1, w2, "9"};
    size_t l[4] = {3, sn + 5, 2 * g_big_n + sn + 2, 1};
    e = resp(4, argv, l);
    free(w1);
    free(w2);
    return e;
}

/*
 * Run `call` on a buffer of capacity >= 1024 filled to `room` bytes from its
 * end, the first `consumed` of them consumed. Returns the call's result and
 * checks the buffer against `exp` (NULL: the call must have failed).
 */
static aredis_err run_in_state(buf_call call, const bytes *exp, size_t room, size_t consumed) {
    aredis__buf b = {NULL, 0, 0, 0};
    assert_int_equal(aredis__buf_reserve(&b, 1024), 0);
    size_t fill = room < b.cap ? b.cap - room : 0;
    char *pre = malloc(fill + 1);
    assert_non_null(pre);
    fill_pattern(pre, fill, 5);
    assert_int_equal(aredis__buf_append(&b, pre, fill), 0);
    if (consumed >= fill) consumed = fill ? fill - 1 : 0;
    aredis__buf_consume(&b, consumed);
    size_t used = aredis__buf_used(&b);
    assert_int_equal(used, fill - consumed);

    aredis_err rc = call(&b);

    assert_int_equal(aredis__buf_used(&b), used + (rc == AREDIS_ERR_OK ? exp->n : 0));
    assert_memory_equal(b.data + b.off, pre + consumed, used);
    if (rc == AREDIS_ERR_OK) assert_memory_equal(b.data + b.off + used, exp->p, exp->n);
    /* The buffer still works after it. */
    assert_int_equal(buf_fmt(&b, "PING"), AREDIS_ERR_OK);
    assert_memory_equal(b.data + b.len - 14, "*1\r\n$4\r\nPING\r\n", 14);
    aredis__buf_free(&b);
    free(pre);
    return rc;
}

static void test_growth_mid_command(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 9, 10, 33, 100, 700, 1500, 5000};
    static const buf_call ok_calls[] = {call_single, call_multi, call_many, call_argv};
    static const buf_call bad_calls[] = {call_late_error, call_late_null};
    static char s[5001], bin[5001];

    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        fill_text(s, sizes[z] / 3, (unsigned)z);
        fill_pattern(bin, sizes[z], (unsigned)z);
        g_big_s = s;
        g_big_b = bin;
        g_big_n = sizes[z];
        for (size_t c = 0; c < sizeof ok_calls / sizeof ok_calls[0]; c++) {
            bytes exp = expect_of(ok_calls[c]);
            size_t rooms[] = {0,   1,         3,         4,     5,         9,         17, 23,
                              24,  25,        26,        27,    31,        40,        60, 64,
                              100, exp.n / 2, exp.n - 1, exp.n, exp.n + 1, exp.n + 40};
            for (size_t r = 0; r < sizeof rooms / sizeof rooms[0]; r++) {
                assert_int_equal(run_in_state(ok_calls[c], &exp, rooms[r], 0), AREDIS_ERR_OK);
                assert_int_equal(run_in_state(ok_calls[c], &exp, rooms[r], 900), AREDIS_ERR_OK);
                assert_int_equal(run_in_state(ok_calls[c], &exp, rooms[r], 20), AREDIS_ERR_OK);
            }
            free(exp.p);
        }
        for (size_t c = 0; c < sizeof bad_calls / sizeof bad_calls[0]; c++) {
            size_t rooms[] = {0, 4, 25, 64, 200, 2000, 20000};
            for (size_t r = 0; r < sizeof rooms / sizeof rooms[0]; r++) {
                assert_int_equal(run_in_state(bad_calls[c], NULL, rooms[r], 0), AREDIS_ERR_INVALID);
                assert_int_equal(run_in_state(bad_calls[c], NULL, rooms[r], 900),
                                 AREDIS_ERR_INVALID);
            }
        }
    }
}

/*
 * Allocation failure at every growth of a command that grows several times
 * on its way: NOMEM with the used bytes intact, or the exact command; no
 * leak either way, in the buffer and the public API.
 */
static void test_alloc_failure_mid_command(void **state) {
    (void)state;
    static char s[3001], bin[20000];
    fill_text(s, 3000, 1);
    fill_pattern(bin, sizeof bin, 2);
    g_big_s = s;
    g_big_b = bin;
    g_big_n = sizeof bin;
    static const buf_call calls[] = {call_single, call_multi, call_many, call_argv};

    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        bytes exp = expect_of(calls[c]);
        for (long k = 1; k <= 8; k++) {
            for (int consumed = 0; consumed < 2; consumed++) {
                use_test_allocator(0, 0);
                aredis__buf b = {NULL, 0, 0, 0};
                assert_int_equal(aredis__buf_append(&b, "0123456789", 10), 0);
                if (consumed) aredis__buf_consume(&b, 4);
                size_t used = aredis__buf_used(&b);
                g_fail_at = g_calls + k;
                aredis_err rc = calls[c](&b);
                if (rc == AREDIS_ERR_OK) {
                    assert_int_equal(aredis__buf_used(&b), used + exp.n);
                    assert_memory_equal(b.data + b.off + used, exp.p, exp.n);
                } else {
                    assert_int_equal(rc, AREDIS_ERR_NOMEM);
                    assert_int_equal(aredis__buf_used(&b), used);
                }
                assert_memory_equal(b.data + b.off, "0123456789" + (consumed ? 4 : 0), used);
                aredis__buf_free(&b);
                assert_int_equal(g_live, 0);
                aredis_reset_allocator();
            }
        }
        free(exp.p);
    }

    /* The public API: on the stack first, then the heap. */
    const char *argv[3] = {"SET", s, bin};
    size_t lens[3] = {3, strlen(s), sizeof bin};
    bytes exp = resp(3, argv, lens);
    for (long k = 1; k <= 10; k++) {
        use_test_allocator(0, k);
        char *out = NULL;
        size_t len = 0;
        aredis_err rc = aredis_format_command(&out, &len, "SET %s %b", s, bin, sizeof bin);
        if (rc == AREDIS_ERR_OK) {
            assert_int_equal(len, exp.n);
            assert_memory_equal(out, exp.p, exp.n);
            assert_int_equal(out[len], '\0');
            aredis_free_command(out);
        } else {
            assert_int_equal(rc, AREDIS_ERR_NOMEM);
            assert_null(out);
        }
        rc = aredis_format_argv(&out, &len, 3, argv, lens);
        if (rc == AREDIS_ERR_OK) {
            assert_int_equal(len, exp.n);
            assert_memory_equal(out, exp.p, exp.n);
            aredis_free_command(out);
        } else {
            assert_int_equal(rc, AREDIS_ERR_NOMEM);
        }
        assert_int_equal(g_live, 0);
        aredis_reset_allocator();
    }
    free(exp.p);
}

/* Lengths no object can have fail with NOMEM before anything is read. */
static void test_huge_lengths(void **state) {
    (void)state;
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 24, SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX,
                                  (size_t)PTRDIFF_MAX - 30};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        size_t n = huge[i];
        EXPECT_FMT_ERR(AREDIS_ERR_NOMEM, "SET k %b", "x", n);
        EXPECT_FMT_ERR(AREDIS_ERR_NOMEM, "SET k:%b", "x", n);
        EXPECT_FMT_ERR(AREDIS_ERR_NOMEM, "SET k %s%b", "abc", "x", n);

        aredis__buf b = {NULL, 0, 0, 0};
        assert_int_equal(buf_fmt(&b, "PING"), AREDIS_ERR_OK);
        assert_int_equal(buf_fmt(&b, "SET k %b", "x", n), AREDIS_ERR_NOMEM);
        assert_int_equal(buf_fmt(&b, "SET k:%b", "x", n), AREDIS_ERR_NOMEM);
        const char *argv[3] = {"SET", "k", "x"};
        size_t lens[3] = {3, 1, n};
        assert_int_equal(aredis__write_argv(&b, 3, argv, lens), AREDIS_ERR_NOMEM);
        char *out = (char *)1;
        size_t len = 9;
        assert_int_equal(aredis_format_argv(&out, &len, 3, argv, lens), AREDIS_ERR_NOMEM);
        assert_null(out);
        assert_int_equal(b.len, 14);
        assert_memory_equal(b.data, "*1\r\n$4\r\nPING\r\n", 14);
        aredis__buf_free(&b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_spaces),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_empty_args),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_bad_conversions),
        cmocka_unit_test(test_null_and_empty),
        cmocka_unit_test(test_size_overflow),
        cmocka_unit_test(test_many_args),
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_argv_errors),
        cmocka_unit_test(test_internal_append),
        cmocka_unit_test(test_internal_rollback),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_multi_piece_words),
        cmocka_unit_test(test_arg_counts),
        cmocka_unit_test(test_va_list_reuse),
        cmocka_unit_test(test_growth_mid_command),
        cmocka_unit_test(test_alloc_failure_mid_command),
        cmocka_unit_test(test_huge_lengths),
    };
    return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
