/*
 * Unit tests for the command writer's printf conversions (src/proto/writer.c,
 * printf_piece): every conversion hiredis accepts, with flags, widths,
 * precisions and length modifiers, compared byte for byte with the RESP
 * built from snprintf of the same spec (the oracle); results longer than the
 * writer's stack scratch, in every buffer state; and the specs that stay
 * invalid.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
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

/* The public API and the internal one must both fail with `code`. */
#define EXPECT_FMT_ERR(code, ...)                                                                  \
    do {                                                                                           \
        char *out_ = (char *)1;                                                                    \
        size_t len_ = 99;                                                                          \
        assert_int_equal(aredis_format_command(&out_, &len_, __VA_ARGS__), code);                  \
        assert_null(out_);                                                                         \
        assert_int_equal(len_, 0);                                                                 \
        aredis__buf b_ = {NULL, 0, 0, 0};                                                          \
        assert_int_equal(buf_fmt(&b_, "PING"), AREDIS_ERR_OK);                                     \
        assert_int_equal(buf_fmt(&b_, __VA_ARGS__), code);                                         \
        assert_int_equal(b_.len, 14);                                                              \
        assert_memory_equal(b_.data, "*1\r\n$4\r\nPING\r\n", 14);                                  \
        aredis__buf_free(&b_);                                                                     \
    } while (0)

/* ---- One argument of a known type, for the writer and the oracle ------ */

typedef enum { T_INT, T_UINT, T_LONG, T_ULONG, T_LLONG, T_ULLONG, T_SSIZE, T_SIZE, T_DOUBLE } kind;

typedef struct {
    kind k;
    union {
        int i;
        unsigned u;
        long l;
        unsigned long ul;
        long long ll;
        unsigned long long ull;
        ssize_t ss;
        size_t sz;
        double d;
    } v;
} value;

static value V_INT(int x) { return (value){.k = T_INT, .v.i = x}; }
static value V_UINT(unsigned x) { return (value){.k = T_UINT, .v.u = x}; }
static value V_LONG(long x) { return (value){.k = T_LONG, .v.l = x}; }
static value V_ULONG(unsigned long x) { return (value){.k = T_ULONG, .v.ul = x}; }
static value V_LLONG(long long x) { return (value){.k = T_LLONG, .v.ll = x}; }
static value V_ULLONG(unsigned long long x) { return (value){.k = T_ULLONG, .v.ull = x}; }
static value V_SSIZE(ssize_t x) { return (value){.k = T_SSIZE, .v.ss = x}; }
static value V_SIZE(size_t x) { return (value){.k = T_SIZE, .v.sz = x}; }
static value V_DOUBLE(double x) { return (value){.k = T_DOUBLE, .v.d = x}; }

/* snprintf(dst, cap, fmt, v) with v passed as its own type. */
static int print_value(char *dst, size_t cap, const char *fmt, const value *v) {
    switch (v->k) {
    case T_INT:
        return snprintf(dst, cap, fmt, v->v.i);
    case T_UINT:
        return snprintf(dst, cap, fmt, v->v.u);
    case T_LONG:
        return snprintf(dst, cap, fmt, v->v.l);
    case T_ULONG:
        return snprintf(dst, cap, fmt, v->v.ul);
    case T_LLONG:
        return snprintf(dst, cap, fmt, v->v.ll);
    case T_ULLONG:
        return snprintf(dst, cap, fmt, v->v.ull);
    case T_SSIZE:
        return snprintf(dst, cap, fmt, v->v.ss);
    case T_SIZE:
        return snprintf(dst, cap, fmt, v->v.sz);
    default:
        return snprintf(dst, cap, fmt, v->v.d);
    }
}

/* The oracle: snprintf of spec with v, as bytes (a %c of 0 is one NUL). */
static bytes oracle_text(const char *spec, const value *v) {
    int n = print_value(NULL, 0, spec, v);
    assert_true(n >= 0);
    bytes b = {malloc((size_t)n + 1), (size_t)n};
    assert_non_null(b.p);
    assert_int_equal(print_value(b.p, (size_t)n + 1, spec, v), n);
    return b;
}

/* aredis_format_command(out, len, fmt, <v as its own type>). */
static aredis_err format_value(char **out, size_t *len, const char *fmt, const value *v) {
    switch (v->k) {
    case T_INT:
        return aredis_format_command(out, len, fmt, v->v.i);
    case T_UINT:
        return aredis_format_command(out, len, fmt, v->v.u);
    case T_LONG:
        return aredis_format_command(out, len, fmt, v->v.l);
    case T_ULONG:
        return aredis_format_command(out, len, fmt, v->v.ul);
    case T_LLONG:
        return aredis_format_command(out, len, fmt, v->v.ll);
    case T_ULLONG:
        return aredis_format_command(out, len, fmt, v->v.ull);
    case T_SSIZE:
        return aredis_format_command(out, len, fmt, v->v.ss);
    case T_SIZE:
        return aredis_format_command(out, len, fmt, v->v.sz);
    default:
        return aredis_format_command(out, len, fmt, v->v.d);
    }
}

/* The same through the internal API, with a %s around v to check that the
 * arguments after a printf conversion are still read in order. */
static aredis_err buf_value(aredis__buf *b, const char *fmt, const value *v, const char *after) {
    switch (v->k) {
    case T_INT:
        return buf_fmt(b, fmt, v->v.i, after);
    case T_UINT:
        return buf_fmt(b, fmt, v->v.u, after);
    case T_LONG:
        return buf_fmt(b, fmt, v->v.l, after);
    case T_ULONG:
        return buf_fmt(b, fmt, v->v.ul, after);
    case T_LLONG:
        return buf_fmt(b, fmt, v->v.ll, after);
    case T_ULLONG:
        return buf_fmt(b, fmt, v->v.ull, after);
    case T_SSIZE:
        return buf_fmt(b, fmt, v->v.ss, after);
    case T_SIZE:
        return buf_fmt(b, fmt, v->v.sz, after);
    default:
        return buf_fmt(b, fmt, v->v.d, after);
    }
}

static long g_checked; /* specs compared with the oracle */

/*
 * Compare the writer with the oracle for one spec and value, in three
 * places: an argument of its own, the middle of a word, and (internal API,
 * after a command already in the buffer) followed by a %s.
 */
static void check_spec(const char *spec, const value *v) {
    bytes t = oracle_text(spec, v);
    char fmt[96];
    char *out;
    size_t len;

    /* "ZADD k <spec> m" */
    snprintf(fmt, sizeof fmt, "ZADD k %s m", spec);
    const char *a1[4] = {"ZADD", "k", t.p, "m"};
    size_t l1[4] = {4, 1, t.n, 1};
    bytes e = resp(4, a1, l1);
    aredis_err rc = format_value(&out, &len, fmt, v);
    if (rc != AREDIS_ERR_OK) fail_msg("\"%s\": %s", fmt, aredis_err_name(rc));
    if (len != e.n || memcmp(out, e.p, e.n) != 0)
        fail_msg("\"%s\": got %.*s, want %.*s", fmt, (int)len, out, (int)e.n, e.p);
    aredis_free_command(out);
    free(e.p);

    /* "SET k:<spec>:x" */
    snprintf(fmt, sizeof fmt, "SET k:%s:x", spec);
    bytes w = {NULL, 0};
    bytes_add(&w, "k:", 2);
    bytes_add(&w, t.p, t.n);
    bytes_add(&w, ":x", 2);
    const char *a2[2] = {"SET", w.p};
    size_t l2[2] = {3, w.n};
    e = resp(2, a2, l2);
    rc = format_value(&out, &len, fmt, v);
    if (rc != AREDIS_ERR_OK) fail_msg("\"%s\": %s", fmt, aredis_err_name(rc));
    if (len != e.n || memcmp(out, e.p, e.n) != 0)
        fail_msg("\"%s\": got %.*s, want %.*s", fmt, (int)len, out, (int)e.n, e.p);
    aredis_free_command(out);
    free(e.p);
    free(w.p);

    /* Internal API: "<spec> %s" after a PING. */
    snprintf(fmt, sizeof fmt, "%s %%s", spec);
    const char *a3[2] = {t.p, "after"};
    size_t l3[2] = {t.n, 5};
    e = resp(2, a3, l3);
    aredis__buf b = {NULL, 0, 0, 0};
    assert_int_equal(buf_fmt(&b, "PING"), AREDIS_ERR_OK);
    rc = buf_value(&b, fmt, v, "after");
    if (rc != AREDIS_ERR_OK) fail_msg("\"%s\": %s", fmt, aredis_err_name(rc));
    assert_int_equal(b.len, 14 + e.n);
    assert_memory_equal(b.data, "*1\r\n$4\r\nPING\r\n", 14);
    if (memcmp(b.data + 14, e.p, e.n) != 0) fail_msg("\"%s\" (internal): bytes differ", fmt);
    aredis__buf_free(&b);
    free(e.p);
    free(t.p);
    g_checked++;
}

/* The writer must refuse spec, in the public and internal API. */
static void check_invalid(const char *spec, const value *v) {
    char fmt[96];
    char *out = (char *)1;
    size_t len = 9;
    snprintf(fmt, sizeof fmt, "SET k %s", spec);
    aredis_err rc = format_value(&out, &len, fmt, v);
    if (rc != AREDIS_ERR_INVALID) fail_msg("\"%s\" accepted (%s)", fmt, aredis_err_name(rc));
    assert_null(out);
    assert_int_equal(len, 0);
    aredis__buf b = {NULL, 0, 0, 0};
    assert_int_equal(buf_fmt(&b, "PING"), AREDIS_ERR_OK);
    assert_int_equal(buf_value(&b, fmt, v, "x"), AREDIS_ERR_INVALID);
    assert_int_equal(b.len, 14);
    aredis__buf_free(&b);
}

/* ---- Every combination, against the oracle ---------------------------- */

static const char *const k_widths[] = {"", "1", "7", "25"};
static const char *const k_precs[] = {"", ".", ".0", ".2", ".13"};
static const char k_flag_chars[] = "#0- +";

/* "%<flags><width><prec><len><conv>" for flag subset `mask`. */
static void build_spec(char *spec, size_t cap, unsigned mask, const char *width, const char *prec,
                       const char *len, char conv) {
    char flags[8], *p = flags;
    for (unsigned i = 0; i < 5; i++)
        if (mask & (1u << i)) *p++ = k_flag_chars[i];
    *p = '\0';
    snprintf(spec, cap, "%%%s%s%s%s%c", flags, width, prec, len, conv);
}

/* The value of kind matching a length modifier, from a signed seed. */
static value int_value(const char *len, int is_signed, long long seed) {
    if (strcmp(len, "l") == 0) return is_signed ? V_LONG((long)seed) : V_ULONG((unsigned long)seed);
    if (strcmp(len, "ll") == 0)
        return is_signed ? V_LLONG(seed) : V_ULLONG((unsigned long long)seed);
    if (strcmp(len, "z") == 0) return is_signed ? V_SSIZE((ssize_t)seed) : V_SIZE((size_t)seed);
    /* none, h, hh: promoted to int / unsigned int */
    return is_signed ? V_INT((int)seed) : V_UINT((unsigned)seed);
}

static void test_integers_vs_oracle(void **state) {
    (void)state;
    static const char *const lens[] = {"", "hh", "h", "l", "ll", "z"};
    static const char convs[] = "diouxX";
    static const long long seeds[] = {0,       1,         -1,        42,
                                      -300,    255,       65537,     INT_MAX,
                                      INT_MIN, LLONG_MAX, LLONG_MIN, 0x1234567890abcdefLL};
    char spec[48];
    g_checked = 0;
    for (size_t c = 0; convs[c]; c++) {
        int is_signed = convs[c] == 'd' || convs[c] == 'i';
        int alt_ub = is_signed || convs[c] == 'u';
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
            for (unsigned mask = 0; mask < 32; mask++)
                for (size_t w = 0; w < sizeof k_widths / sizeof k_widths[0]; w++)
                    for (size_t p = 0; p < sizeof k_precs / sizeof k_precs[0]; p++) {
                        build_spec(spec, sizeof spec, mask, k_widths[w], k_precs[p], lens[l],
                                   convs[c]);
                        for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
                            value v = int_value(lens[l], is_signed, seeds[s]);
                            /* '#' with d, i, u is undefined in C: refused. */
                            if ((mask & 1u) && alt_ub) {
                                check_invalid(spec, &v);
                                break;
                            }
                            check_spec(spec, &v);
                        }
                    }
    }
    ts_log("%ld integer specs and values matched snprintf", g_checked);
}

static void test_doubles_vs_oracle(void **state) {
    (void)state;
    static const char convs[] = "eEfFgGaA";
    const double vals[] = {0.0,    -0.0,          1.5,       -1.5,     3.14159265358979,
                           1e-10,  123456789.125, 1e300,     -DBL_MAX, DBL_MIN,
                           5e-324, INFINITY,      -INFINITY, NAN};
    char spec[48];
    g_checked = 0;
    for (size_t c = 0; convs[c]; c++)
        for (unsigned mask = 0; mask < 32; mask++)
            for (size_t w = 0; w < sizeof k_widths / sizeof k_widths[0]; w++)
                for (size_t p = 0; p < sizeof k_precs / sizeof k_precs[0]; p++) {
                    build_spec(spec, sizeof spec, mask, k_widths[w], k_precs[p], "", convs[c]);
                    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
                        value v = V_DOUBLE(vals[i]);
                        check_spec(spec, &v);
                    }
                }
    ts_log("%ld double specs and values matched snprintf", g_checked);
}

static void test_chars_vs_oracle(void **state) {
    (void)state;
    static const int vals[] = {'A', 'z', ' ', '%', 0, 255, -1, 0x141};
    char spec[48];
    g_checked = 0;
    for (unsigned mask = 0; mask < 32; mask++)
        for (size_t w = 0; w < sizeof k_widths / sizeof k_widths[0]; w++)
            for (size_t p = 0; p < sizeof k_precs / sizeof k_precs[0]; p++) {
                build_spec(spec, sizeof spec, mask, k_widths[w], k_precs[p], "", 'c');
                /* '#', '0' or a precision with %c is undefined in C: refused. */
                int ub = (mask & 3u) || k_precs[p][0];
                for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
                    value v = V_INT(vals[i]);
                    if (ub) {
                        check_invalid(spec, &v);
                        break;
                    }
                    check_spec(spec, &v);
                }
            }
    ts_log("%ld %%c specs and values matched snprintf", g_checked);
}

/* Specs written in unusual ways: repeated flags, leading zeros, "%.f". */
static void test_unusual_spellings(void **state) {
    (void)state;
    static const char *const ints[] = {"%--5d", "%00+5d", "%-0 8i",     "%007d",  "%.007d",
                                       "%+ d",  "% +d",   "%-+-+12.5d", "%0000x", "%#-#-10o"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        value a = V_INT(-42), b = V_INT(42);
        check_spec(ints[i], &a);
        check_spec(ints[i], &b);
    }
    static const char *const dbl[] = {"%.f",     "%#.f",     "%#.0e",     "%#g",
                                      "%010.3f", "%-+10.3e", "%.000005g", "%1.40f"};
    for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++) {
        value a = V_DOUBLE(2.5), b = V_DOUBLE(-1234.5678);
        check_spec(dbl[i], &a);
        check_spec(dbl[i], &b);
    }
}

/* ---- Literal expectations ---------------------------------------------- */

static void test_literal(void **state) {
    (void)state;
    EXPECT_FMT("*4\r\n$4\r\nZADD\r\n$1\r\nk\r\n$8\r\n1.500000\r\n$1\r\nm\r\n", "ZADD k %f m", 1.5);
    EXPECT_FMT("*4\r\n$4\r\nZADD\r\n$1\r\nk\r\n$3\r\n1.5\r\n$1\r\nm\r\n", "ZADD k %g m", 1.5);
    EXPECT_FMT("*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$2\r\nff\r\n", "INCRBY k %x", 255);
    EXPECT_FMT("*1\r\n$4\r\n0XFF\r\n", "%#X", 255u);
    EXPECT_FMT("*1\r\n$3\r\n017\r\n", "%#o", 15u);
    EXPECT_FMT("*1\r\n$5\r\n003.1\r\n", "%05.1f", 3.14159);
    EXPECT_FMT("*1\r\n$12\r\n1.234568e+04\r\n", "%e", 12345.678);
    EXPECT_FMT("*1\r\n$2\r\n+5\r\n", "%+d", 5);
    EXPECT_FMT("*1\r\n$1\r\nA\r\n", "%c", 'A');
    EXPECT_FMT("*1\r\n$4\r\nk:A!\r\n", "k:%c!", 'A');
    EXPECT_FMT("*1\r\n$1\r\n\0\r\n", "%c", 0); /* a NUL byte is an argument too */
    EXPECT_FMT("*1\r\n$1\r\n1\r\n", "%hhu", 257);
    EXPECT_FMT("*1\r\n$2\r\nff\r\n", "%hhx", -1);
    EXPECT_FMT("*1\r\n$6\r\n-32768\r\n", "%hd", 32768);
    EXPECT_FMT("*1\r\n$16\r\nffffffffffffffff\r\n", "%lx", ULONG_MAX);
    EXPECT_FMT("*1\r\n$16\r\nFFFFFFFFFFFFFFFF\r\n", "%llX", ULLONG_MAX);
    EXPECT_FMT("*1\r\n$16\r\nffffffffffffffff\r\n", "%zx", SIZE_MAX);
    EXPECT_FMT("*1\r\n$2\r\n-7\r\n", "%zi", (ssize_t)-7);
    EXPECT_FMT("*1\r\n$3\r\ninf\r\n", "%f", INFINITY);
    /* Padding is part of the argument: spaces in a conversion split nothing. */
    EXPECT_FMT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\n    1\r\n", "SET k %5d", 1);
    EXPECT_FMT("*2\r\n$3\r\nSET\r\n$7\r\nk:1   |\r\n", "SET k:%-4d|", 1);
    /* Fast-path and printf conversions mixed, arguments read in order. */
    EXPECT_FMT(
        "*6\r\n$4\r\nZADD\r\n$3\r\nz:7\r\n$4\r\n0.25\r\n$3\r\nabc\r\n$5\r\n1e+02\r\n$2\r\nxy\r\n",
        "ZADD z:%d %.2f %s %.0e %b", 7, 0.25, "abc", 100.0, "xy", (size_t)2);
    /* %% still a literal '%' next to printf conversions. */
    EXPECT_FMT("*1\r\n$6\r\n50.0%x\r\n", "%.1f%%x", 50.0);
}

/* ---- Invalid specs ------------------------------------------------------ */

static void test_invalid_specs(void **state) {
    (void)state;
    static const char *const bad[] = {"%",
                                      "k%",
                                      "%-",
                                      "%5",
                                      "%.",
                                      "%5.",
                                      "%#",
                                      "%h",
                                      "%hh",
                                      "%l",
                                      "%ll",
                                      "%z",
                                      "%n",
                                      "%hn",
                                      "%*d",
                                      "%.*f",
                                      "%-*d",
                                      "%q",
                                      "%qd",
                                      "%jd",
                                      "%td",
                                      "%Lf",
                                      "%lf",
                                      "%hf",
                                      "%hhf",
                                      "%llf",
                                      "%zf",
                                      "%lc",
                                      "%hc",
                                      "%hhc",
                                      "%zc",
                                      "%.3c",
                                      "%0c",
                                      "%#c",
                                      "%#d",
                                      "%#i",
                                      "%#u",
                                      "%#lu",
                                      "%#lld",
                                      "%#zd",
                                      "%p",
                                      "%5%",
                                      "%-%",
                                      "%5s",
                                      "%-s",
                                      "%.3s",
                                      "%ls",
                                      "%5b",
                                      "%S",
                                      "%C",
                                      "%D",
                                      "%U",
                                      "%O",
                                      "%m",
                                      "%'d",
                                      "%Id",
                                      "%1$d",
                                      "% ",
                                      "%+",
                                      "%lhd",
                                      "%hld",
                                      "%hhhd",
                                      "%llld",
                                      "%zzd",
                                      "%zld",
                                      "%2147483648d",
                                      "%99999999999d",
                                      "%.2147483648f",
                                      "%.99999999999999999999f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        value v = V_INT(1);
        check_invalid(bad[i], &v);
    }
    /* A bad conversion after printf ones still fails the whole command. */
    EXPECT_FMT_ERR(AREDIS_ERR_INVALID, "SET %s %d %5.2f %s %q", "k", 1, 2.0, "x", 3);
}

/* ---- Results longer than the stack scratch ----------------------------- */

/* Long results: a wide integer, a long precision, DBL_MAX in %f. */
static void test_long_results(void **state) {
    (void)state;
    static const int widths[] = {63, 64, 65, 100, 1000, 5000, 70000};
    char spec[32];
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        value v = V_INT(-12345);
        snprintf(spec, sizeof spec, "%%%dd", widths[i]);
        check_spec(spec, &v);
        snprintf(spec, sizeof spec, "%%-%d.%dd", widths[i], widths[i] / 2);
        check_spec(spec, &v);
        value d = V_DOUBLE(-DBL_MAX);
        snprintf(spec, sizeof spec, "%%.%df", widths[i] / 3);
        check_spec(spec, &d);
        value c = V_INT('q');
        snprintf(spec, sizeof spec, "%%-%dc", widths[i]);
        check_spec(spec, &c);
    }
    value d = V_DOUBLE(DBL_MAX);
    check_spec("%f", &d);
    check_spec("%+.300e", &d);

    /* Several long results in one word, and in a command of 10+ arguments. */
    char *out;
    size_t len;
    assert_int_equal(
        aredis_format_command(&out, &len, "A B C D E F G H I J k:%300d:%.200f:%s!", 7, 1.0, "end"),
        AREDIS_ERR_OK);
    char w[600];
    int n = snprintf(w, sizeof w, "k:%300d:%.200f:%s!", 7, 1.0, "end");
    const char *argv[11] = {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", w};
    size_t lens[11] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, (size_t)n};
    bytes e = resp(11, argv, lens);
    assert_int_equal(len, e.n);
    assert_memory_equal(out, e.p, e.n);
    aredis_free_command(out);
    free(e.p);
}

/*
 * A long result in every buffer state: room left from none to plenty, with
 * and without a consumed prefix (which a growth may reclaim). The bytes
 * already there stay intact and are followed by exactly the command, or by
 * nothing when a later conversion is invalid.
 */
static void test_long_result_buffer_states(void **state) {
    (void)state;
    static const int widths[] = {64, 200, 1500, 5000};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        char fmt1[64], fmt2[64], fmtbad[64];
        snprintf(fmt1, sizeof fmt1, "SET %%s %%%d.3f", widths[wi]);
        snprintf(fmt2, sizeof fmt2, "SET k:%%s:%%%dx:%%-%dd. %%u", widths[wi], widths[wi] / 2);
        snprintf(fmtbad, sizeof fmtbad, "SET %%s %%%d.3f %%q", widths[wi]);
        char *t1 = malloc((size_t)widths[wi] + 1), *t2 = malloc(4 * (size_t)widths[wi] + 16);
        assert_non_null(t1);
        assert_non_null(t2);
        int n1 = snprintf(t1, (size_t)widths[wi] + 1, "%*.3f", widths[wi], 2.5);
        int n2 = snprintf(t2, 4 * (size_t)widths[wi] + 16, "k:%s:%*x:%-*d.", "key", widths[wi],
                          0xbeefu, widths[wi] / 2, -3);
        const char *a1[3] = {"SET", "key", t1};
        size_t l1[3] = {3, 3, (size_t)n1};
        const char *a2[3] = {"SET", t2, "9"};
        size_t l2[3] = {3, (size_t)n2, 1};
        bytes e1 = resp(3, a1, l1), e2 = resp(3, a2, l2);
        const size_t rooms[] = {
            0,        1,    4,    23,         24,      25, 63, 64, 65, 100, (size_t)widths[wi],
            e1.n - 1, e1.n, e2.n, e2.n + 100, 3 * e2.n};
        const size_t consumed[] = {0, 20, 900};
        for (size_t r = 0; r < sizeof rooms / sizeof rooms[0]; r++)
            for (size_t c = 0; c < sizeof consumed / sizeof consumed[0]; c++)
                for (int which = 0; which < 3; which++) {
                    aredis__buf b = {NULL, 0, 0, 0};
                    assert_int_equal(aredis__buf_reserve(&b, 1024), 0);
                    size_t fill = rooms[r] < b.cap ? b.cap - rooms[r] : 0;
                    char *pre = malloc(fill + 1);
                    assert_non_null(pre);
                    for (size_t i = 0; i < fill; i++)
                        pre[i] = (char)('a' + (i * 7 + r) % 26);
                    assert_int_equal(aredis__buf_append(&b, pre, fill), 0);
                    size_t cons = consumed[c] >= fill ? (fill ? fill - 1 : 0) : consumed[c];
                    aredis__buf_consume(&b, cons);
                    size_t used = aredis__buf_used(&b);
                    aredis_err rc;
                    const bytes *e = NULL;
                    if (which == 0) {
                        rc = buf_fmt(&b, fmt1, "key", 2.5);
                        e = &e1;
                    } else if (which == 1) {
                        rc = buf_fmt(&b, fmt2, "key", 0xbeefu, -3, 9u);
                        e = &e2;
                    } else {
                        rc = buf_fmt(&b, fmtbad, "key", 2.5, 1);
                    }
                    assert_int_equal(rc, e ? AREDIS_ERR_OK : AREDIS_ERR_INVALID);
                    assert_int_equal(aredis__buf_used(&b), used + (e ? e->n : 0));
                    assert_memory_equal(b.data + b.off, pre + cons, used);
                    if (e) assert_memory_equal(b.data + b.off + used, e->p, e->n);
                    aredis__buf_free(&b);
                    free(pre);
                }
        free(e1.p);
        free(e2.p);
        free(t1);
        free(t2);
    }
}

/* ---- Allocation failure on a long result ------------------------------- */

static long g_live, g_calls, g_fail_at;

static void *t_malloc(size_t n) {
    if (++g_calls == g_fail_at) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}
static void *t_calloc(size_t a, size_t b) {
    if (++g_calls == g_fail_at) return NULL;
    void *p = calloc(a, b);
    if (p) g_live++;
    return p;
}
static void *t_realloc(void *p, size_t n) {
    if (++g_calls == g_fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) g_live++;
    return q;
}
static void t_free(void *p) {
    if (p) g_live--;
    free(p);
}

/*
 * Fail each allocation in turn while formatting long results: NOMEM and no
 * leak (public API), NOMEM with the buffer's bytes intact (internal API);
 * once nothing fails, the exact command.
 */
static void test_long_result_alloc_failure(void **state) {
    (void)state;
    static const aredis_allocator a = {t_malloc, t_calloc, t_realloc, t_free};
    char want[4096];
    int wn = snprintf(want, sizeof want, "k:%600d:%.900f", 5, 1.25);
    const char *argv[3] = {"SET", want, "v"};
    size_t lens[3] = {3, (size_t)wn, 1};
    bytes e = resp(3, argv, lens);
    int ok_public = 0, ok_internal = 0;
    for (long at = 1; at < 20 && !(ok_public && ok_internal); at++) {
        g_live = g_calls = 0;
        g_fail_at = at;
        aredis_set_allocator(&a);
        char *out = NULL;
        size_t len = 0;
        aredis_err rc = aredis_format_command(&out, &len, "SET k:%600d:%.900f v", 5, 1.25);
        if (rc == AREDIS_ERR_OK) {
            assert_int_equal(len, e.n);
            assert_memory_equal(out, e.p, e.n);
            aredis_free_command(out);
            ok_public = 1;
        } else {
            assert_int_equal(rc, AREDIS_ERR_NOMEM);
            assert_null(out);
        }
        assert_int_equal(g_live, 0);

        g_calls = 0;
        aredis__buf b = {NULL, 0, 0, 0};
        g_fail_at = 0;
        assert_int_equal(buf_fmt(&b, "PING"), AREDIS_ERR_OK);
        g_calls = 0;
        g_fail_at = at;
        rc = buf_fmt(&b, "SET k:%600d:%.900f v", 5, 1.25);
        if (rc == AREDIS_ERR_OK) {
            assert_int_equal(b.len, 14 + e.n);
            assert_memory_equal(b.data + 14, e.p, e.n);
            ok_internal = 1;
        } else {
            assert_int_equal(rc, AREDIS_ERR_NOMEM);
            assert_int_equal(b.len, 14);
        }
        assert_memory_equal(b.data, "*1\r\n$4\r\nPING\r\n", 14);
        aredis__buf_free(&b);
        assert_int_equal(g_live, 0);
        aredis_reset_allocator();
    }
    assert_true(ok_public);
    assert_true(ok_internal);
    free(e.p);
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
    /* More arguments than registers (general and SSE), so some come from
     * the stack. */
    assert_int_equal(buf_fmt_twice(&b, "%.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %x %c %s %ld",
                                   0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 255, 'z', "s", 9L),
                     AREDIS_ERR_OK);
    static const char one[] = "*13\r\n$3\r\n0.5\r\n$3\r\n1.5\r\n$3\r\n2.5\r\n$3\r\n3.5\r\n"
                              "$3\r\n4.5\r\n$3\r\n5.5\r\n$3\r\n6.5\r\n$3\r\n7.5\r\n$3\r\n8.5\r\n"
                              "$2\r\nff\r\n$1\r\nz\r\n$1\r\ns\r\n$1\r\n9\r\n";
    assert_int_equal(b.len, 2 * (sizeof one - 1));
    assert_memory_equal(b.data, one, sizeof one - 1);
    assert_memory_equal(b.data + sizeof one - 1, one, sizeof one - 1);
    aredis__buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_invalid_specs),
        cmocka_unit_test(test_unusual_spellings),
        cmocka_unit_test(test_integers_vs_oracle),
        cmocka_unit_test(test_doubles_vs_oracle),
        cmocka_unit_test(test_chars_vs_oracle),
        cmocka_unit_test(test_long_results),
        cmocka_unit_test(test_long_result_buffer_states),
        cmocka_unit_test(test_long_result_alloc_failure),
        cmocka_unit_test(test_va_list_reuse),
    };
    return cmocka_run_group_tests_name("writer_printf", tests, NULL, NULL);
}
