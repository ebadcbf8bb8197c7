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

/* ---- Helpers ---------------------------------------------------------- */

/* Format with the public API and compare to the expected bytes exactly. */
#define EXPECT_FMT(expected, ...)                                                                  \
    do {                                                                                           \
        char *out_ = NULL;                                                                         \
        size_t len_ = 0;                                                                           \
        assert_int_equal(aredis_format_command(&out_, &len_, __VA_ARGS__), AREDIS_ERR_OK);         \
        assert_non_null(out_);                                                                     \
        assert_int_equal(len_, sizeof(expected) - 1);                                              \
        assert_memory_equal(out_, expected, sizeof(expected) - 1);                                 \
        assert_int_equal(out_[len_], '\0');                                                        \
        aredis_free_command(out_);                                                                 \
    } while (0)

/* The public API must fail with `code`, leaving *out NULL and *outlen 0. */
#define EXPECT_FMT_ERR(code, ...)                                                                  \
    do {                                                                                           \
        char *out_ = (char *)1;                                                                    \
        size_t len_ = 99;                                                                          \
        assert_int_equal(aredis_format_command(&out_, &len_, __VA_ARGS__), code);                 \
        assert_null(out_);                                                                         \
        assert_int_equal(len_, 0);                                                                 \
    } while (0)

/* A small growable byte string for building expected output. */
typedef struct {
    char *p;
    size_t n;
} bytes;

static void bytes_add(bytes *b, const void *p, size_t n) {
    b->p = realloc(b->p, b->n + n + 1);
    assert_non_null(b->p);
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void bytes_addf(bytes *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof tmp);
    bytes_add(b, tmp, (size_t)n);
}

/* Expected RESP for argc arguments (lens given). */
static bytes resp(int argc, const char *const *argv, const size_t *lens) {
    bytes b = {NULL, 0};
    bytes_addf(&b, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        bytes_addf(&b, "$%zu\r\n", l);
        bytes_add(&b, argv[i], l);
        bytes_add(&b, "\r\n", 2);
    }
    return b;
}

static void check_out(char *out, size_t len, const bytes *exp) {
    assert_non_null(out);
    assert_int_equal(len, exp->n);
    assert_memory_equal(out, exp->p, exp->n);
    aredis_free_command(out);
}

/* Format through the va_list entry of the internal API. */
static aredis_err buf_fmt(aredis__buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err rc = aredis__write_vfmt(b, fmt, ap);
    va_end(ap);
    return rc;
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
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    const char *argv[3] = {"SET", "k", (const char *)all};
    size_t lens[3] = {3, 1, sizeof all};
    bytes exp = resp(3, argv, lens);
    char *out;
    size_t len;
    assert_int_equal(aredis_format_command(&out, &len, "SET k %b", all, sizeof all),
                     AREDIS_ERR_OK);
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
            assert_int_equal(
                aredis_format_command(&out, &len, "%lld", -(long long)(probes[j] / 2)),
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
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %x", 1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET k%");
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %l", 1L);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %l x", 1L);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %lx", 1L);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %ll", 1LL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %llx", 1LL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %lll", 1LL);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %z", (size_t)1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %zx", (size_t)1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %5d", 1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %hd", 1);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %c", 'c');
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET %f", 1.0);
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "GET % d", 1);
    /* A bad conversion after good ones still fails the whole command. */
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "SET %s %d %q", "k", 1, 2);
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
 * More arguments than the writer remembers between its passes (32): the
 * rest are re-measured one by one. Compare with the argv form.
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
    assert_int_equal(buf_fmt(&b, "SET %s %x", "k", 1), AREDIS_ERR_INVALID);
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
    };
    return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
