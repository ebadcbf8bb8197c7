/*
 * Unit tests of the RESP reader: every RESP2/RESP3 type, attributes, every
 * kind of malformed input (each must be a sticky PROTOCOL error), the
 * zero-copy space/commit API, a custom builder, and reply refcounting.
 *
 * Replies are checked through dump(), which renders a tree as a short
 * canonical text, so one string comparison checks a whole structure.
 */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <stdatomic.h>

#include "util/alloc.h"
#include "util/cache.h"
#include "ts.h"

/* ---- Rendering replies -------------------------------------------------- */

typedef struct sbuf {
    char s[8192];
    size_t n;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    assert_true(b->n + n < sizeof b->s);
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_bytes(sbuf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            put(b, (const char *)&c, 1);
        } else {
            snprintf(e, sizeof e, "\\x%02x", c);
            puts_(b, e);
        }
    }
}

static void dump_into(sbuf *b, const aredis_reply *r) {
    char num[64];
    if (r->attribute) {
        dump_into(b, r->attribute);
        puts_(b, " ");
    }
    switch (r->type) {
    case AREDIS_REPLY_STRING:
        puts_(b, "\"");
        put_bytes(b, r->str, r->len);
        puts_(b, "\"");
        break;
    case AREDIS_REPLY_STATUS:
    case AREDIS_REPLY_ERROR:
    case AREDIS_REPLY_BIGNUM:
        puts_(b, r->type == AREDIS_REPLY_STATUS ? "+" : r->type == AREDIS_REPLY_ERROR ? "-" : "(");
        put_bytes(b, r->str, r->len);
        break;
    case AREDIS_REPLY_VERB:
        puts_(b, "=");
        puts_(b, r->vtype);
        puts_(b, ":");
        put_bytes(b, r->str, r->len);
        break;
    case AREDIS_REPLY_INTEGER:
        snprintf(num, sizeof num, ":%lld", r->integer);
        puts_(b, num);
        break;
    case AREDIS_REPLY_DOUBLE:
        snprintf(num, sizeof num, ",%g", r->dval);
        puts_(b, num);
        break;
    case AREDIS_REPLY_BOOL:
        puts_(b, r->integer ? "#t" : "#f");
        break;
    case AREDIS_REPLY_NIL:
        puts_(b, "nil");
        break;
    default: {
        const char *open = r->type == AREDIS_REPLY_ARRAY  ? "["
                           : r->type == AREDIS_REPLY_MAP  ? "{"
                           : r->type == AREDIS_REPLY_SET  ? "~{"
                           : r->type == AREDIS_REPLY_ATTR ? "|{"
                                                          : ">[";
        int paired = r->type == AREDIS_REPLY_MAP || r->type == AREDIS_REPLY_ATTR;
        puts_(b, open);
        for (size_t i = 0; i < r->elements; i++) {
            if (i) puts_(b, paired && i % 2 ? ":" : ",");
            dump_into(b, r->element[i]);
        }
        puts_(b, r->type == AREDIS_REPLY_ARRAY || r->type == AREDIS_REPLY_PUSH ? "]" : "}");
    }
    }
}

static const char *dump(const aredis_reply *r) {
    static sbuf b;
    b.n = 0;
    b.s[0] = '\0';
    dump_into(&b, r);
    return b.s;
}

/* ---- Helpers ------------------------------------------------------------ */

/* Parse `in` (n bytes) in one feed; expect exactly one reply, rendered. */
static void expect_one(const char *in, size_t n, const char *want) {
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    assert_int_equal(aredis_reader_feed(r, in, n), AREDIS_ERR_OK);
    void *rep = NULL;
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    if (!rep) fail_msg("no reply for %s", in);
    if (strcmp(dump(rep), want) != 0) fail_msg("input %s: got %s want %s", in, dump(rep), want);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_null(rep);
    assert_int_equal(aredis_reader_pending(r), 0);
    aredis_reader_free(r);
}
#define FEED(r, lit) aredis_reader_feed(r, lit, sizeof(lit) - 1)
#define EXPECT(lit, want) expect_one(lit, sizeof(lit) - 1, want)

/* Parse `in`; expect a PROTOCOL error whose message contains `needle`. */
static void expect_err_n(const char *in, size_t n, const char *needle) {
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    assert_int_equal(aredis_reader_feed(r, in, n), AREDIS_ERR_OK);
    void *rep = (void *)1;
    aredis_err e;
    /* Earlier complete replies in the input are fine; the error must come. */
    while ((e = aredis_reader_get_reply(r, &rep)) == AREDIS_ERR_OK && rep)
        aredis_reply_free(rep);
    if (e != AREDIS_ERR_PROTOCOL) fail_msg("input '%s': want PROTOCOL, got %d", in, (int)e);
    assert_null(rep);
    const char *msg = aredis_reader_errstr(r);
    if (!strstr(msg, needle)) fail_msg("input '%s': message '%s' lacks '%s'", in, msg, needle);
    /* Sticky, for every entry point. */
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_PROTOCOL);
    assert_int_equal(FEED(r, "+OK\r\n"), AREDIS_ERR_PROTOCOL);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_PROTOCOL);
    assert_string_equal(aredis_reader_errstr(r), msg);
    aredis_reader_free(r);
}
#define EXPECT_ERR(lit, needle) expect_err_n(lit, sizeof(lit) - 1, needle)

/* ---- Types -------------------------------------------------------------- */

static void test_simple_types(void **state) {
    (void)state;
    EXPECT("+OK\r\n", "+OK");
    EXPECT("+\r\n", "+");
    EXPECT("-ERR wrong type\r\n", "-ERR wrong type");
    EXPECT(":0\r\n", ":0");
    EXPECT(":-42\r\n", ":-42");
    EXPECT(":9223372036854775807\r\n", ":9223372036854775807");
    EXPECT(":-9223372036854775808\r\n", ":-9223372036854775808");
    EXPECT(":-0\r\n", ":0");
    EXPECT(":007\r\n", ":7");
    EXPECT("_\r\n", "nil");
    EXPECT("#t\r\n", "#t");
    EXPECT("#f\r\n", "#f");
    EXPECT("(3492890328409238509324850943850943825024385\r\n",
           "(3492890328409238509324850943850943825024385");
    EXPECT("(-12\r\n", "(-12");
}

static void test_blobs(void **state) {
    (void)state;
    EXPECT("$3\r\nfoo\r\n", "\"foo\"");
    EXPECT("$0\r\n\r\n", "\"\"");
    EXPECT("$-1\r\n", "nil");
    EXPECT("$6\r\na\r\n\0b\n\r\n", "\"a\\x0d\\x0a\\x00b\\x0a\"");
    EXPECT("!21\r\nSYNTAX invalid syntax\r\n", "-SYNTAX invalid syntax");
    EXPECT("=15\r\ntxt:Some string\r\n", "=txt:Some string");
    EXPECT("=4\r\nmkd:\r\n", "=mkd:");

    /* Blob strings are NUL-terminated and keep embedded NULs. */
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    FEED(r, "$3\r\na\0b\r\n=7\r\ntxt:abc\r\n");
    aredis_reply *rep;
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_int_equal(rep->type, AREDIS_REPLY_STRING);
    assert_int_equal(rep->len, 3);
    assert_memory_equal(rep->str, "a\0b", 4);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_int_equal(rep->type, AREDIS_REPLY_VERB);
    assert_string_equal(rep->vtype, "txt");
    assert_string_equal(rep->str, "abc");
    assert_int_equal(rep->len, 3);
    aredis_reply_free(rep);
    aredis_reader_free(r);
}

static void test_doubles(void **state) {
    (void)state;
    EXPECT(",1.5\r\n", ",1.5");
    EXPECT(",-0.25\r\n", ",-0.25");
    EXPECT(",1e3\r\n", ",1000");
    EXPECT(",1.23E-2\r\n", ",0.0123");
    EXPECT(",10\r\n", ",10");
    EXPECT(",inf\r\n", ",inf");
    EXPECT(",+inf\r\n", ",inf");
    EXPECT(",-inf\r\n", ",-inf");
    EXPECT(",1e400\r\n", ",inf");

    aredis_reader *r = aredis_reader_new(NULL, NULL);
    FEED(r, ",nan\r\n,3.25\r\n");
    aredis_reply *rep;
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_int_equal(rep->type, AREDIS_REPLY_DOUBLE);
    assert_true(isnan(rep->dval));
    assert_string_equal(rep->str, "nan");
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_true(rep->dval == 3.25);
    assert_string_equal(rep->str, "3.25"); /* the text is kept as sent */
    assert_int_equal(rep->len, 4);
    aredis_reply_free(rep);
    aredis_reader_free(r);
}

/* A locale whose decimal point is ',' must not change how doubles parse. */
static void test_double_locale(void **state) {
    (void)state;
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                                        "fr_FR.utf8",  "de_DE",      NULL};
    const char *got = NULL;
    for (int i = 0; names[i] && !got; i++)
        got = setlocale(LC_NUMERIC, names[i]);
    if (!got) fprintf(stderr, "# no comma-decimal locale installed: C locale only\n");
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    FEED(r, ",2.5\r\n,-1.25e2\r\n");
    aredis_reply *rep;
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_true(rep->dval == 2.5);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_true(rep->dval == -125.0);
    aredis_reply_free(rep);
    aredis_reader_free(r);
    EXPECT_ERR(",2,5\r\n", "bad double");
    setlocale(LC_NUMERIC, "C");
}

static void test_aggregates(void **state) {
    (void)state;
    EXPECT("*0\r\n", "[]");
    EXPECT("*-1\r\n", "nil");
    EXPECT("*2\r\n:1\r\n$1\r\nx\r\n", "[:1,\"x\"]");
    EXPECT("*3\r\n*1\r\n*0\r\n$-1\r\n*-1\r\n", "[[[]],nil,nil]");
    EXPECT("%2\r\n+a\r\n:1\r\n+b\r\n#f\r\n", "{+a::1,+b:#f}");
    EXPECT("%0\r\n", "{}");
    EXPECT("~3\r\n:1\r\n:2\r\n_\r\n", "~{:1,:2,nil}");
    EXPECT(">3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n", ">[+message,+chan,\"hi\"]");
    EXPECT("*2\r\n%1\r\n+k\r\n~1\r\n,1.5\r\n>1\r\n(7\r\n", "[{+k:~{,1.5}},>[(7]]");

    /* A map reports twice its pair count, laid out key, value, ... */
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    FEED(r, "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
    aredis_reply *rep;
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_int_equal(rep->type, AREDIS_REPLY_MAP);
    assert_int_equal(rep->elements, 4);
    assert_string_equal(rep->element[2]->str, "b");
    assert_int_equal(rep->element[3]->integer, 2);
    aredis_reply_free(rep);
    aredis_reader_free(r);

    /* An aggregate larger than the builder's first element array. */
    sbuf in = {.n = 0};
    puts_(&in, "*40\r\n");
    for (int i = 0; i < 40; i++) {
        char line[16];
        snprintf(line, sizeof line, ":%d\r\n", i);
        puts_(&in, line);
    }
    r = aredis_reader_new(NULL, NULL);
    aredis_reader_feed(r, in.s, in.n);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_int_equal(rep->elements, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(rep->element[i]->integer, i);
    aredis_reply_free(rep);
    aredis_reader_free(r);
}

static void test_attributes(void **state) {
    (void)state;
    /* Before a top-level reply. */
    EXPECT("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n",
           "|{+key-popularity:{\"a\":,0.19}} [:2]");
    /* Before an element inside an aggregate, and before an aggregate. */
    EXPECT("*3\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:3\r\n", "[:1,|{+ttl::3600} \"v\",:3]");
    EXPECT("*1\r\n|1\r\n+a\r\n+b\r\n*1\r\n:1\r\n", "[|{+a:+b} [:1]]");
    /* Before a map value, and before the last element (closes the parent). */
    EXPECT("%1\r\n+k\r\n|1\r\n+a\r\n+b\r\n:1\r\n", "{+k:|{+a:+b} :1}");
    /* An attribute carrying an attribute on one of its values. */
    EXPECT("|1\r\n+a\r\n|1\r\n+x\r\n+y\r\n+b\r\n:9\r\n", "|{+a:|{+x:+y} +b} :9");
    /* Empty attribute; attribute before a nil. */
    EXPECT("|0\r\n:1\r\n", "|{} :1");
    EXPECT("|1\r\n+a\r\n+b\r\n$-1\r\n", "|{+a:+b} nil");
    /* Two attributes in a row: the later one is kept. */
    EXPECT("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n:1\r\n", "|{+c:+d} :1");

    /* An attribute alone is not a reply: the reader waits for its value. */
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    FEED(r, "|1\r\n+a\r\n+b\r\n");
    void *rep;
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_null(rep);
    aredis_reader_free(r); /* frees the pending attribute */
}

static void test_several_replies(void **state) {
    (void)state;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    const char in[] = "+a\r\n:1\r\n$1\r\nb\r\n*1\r\n:2\r\n+c";
    aredis_reader_feed(r, in, sizeof in - 1);
    const char *want[] = {"+a", ":1", "\"b\"", "[:2]"};
    for (int i = 0; i < 4; i++) {
        void *rep;
        assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
        assert_non_null(rep);
        assert_string_equal(dump(rep), want[i]);
        aredis_reply_free(rep);
    }
    void *rep;
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_null(rep);
    assert_int_equal(aredis_reader_pending(r), 2);
    FEED(r, "\r\n");
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_string_equal(dump(rep), "+c");
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_pending(r), 0);
    assert_string_equal(aredis_reader_errstr(r), "");
    aredis_reader_free(r);
}

/* ---- Malformed input ---------------------------------------------------- */

static void test_bad_lines(void **state) {
    (void)state;
    EXPECT_ERR("@foo\r\n", "unknown type byte '@'");
    EXPECT_ERR("\x01", "unknown type byte '\\x01'");
    EXPECT_ERR("+OK\r\n\xff", "unknown type byte '\\xff'");
    EXPECT_ERR("\r\n", "unknown type byte '\\x0d'");
    EXPECT_ERR("+OK\rX", "expected LF after CR");
    EXPECT_ERR("+O\nK\r\n", "bare LF");
    EXPECT_ERR(":1\n:2\r\n", "bad integer");
    EXPECT_ERR(":12345678901234567890123456789012345678901234567890123456789012345", "too long");
}

static void test_bad_integers(void **state) {
    (void)state;
    EXPECT_ERR(":\r\n", "bad integer");
    EXPECT_ERR(":-\r\n", "bad integer");
    EXPECT_ERR(":+1\r\n", "bad integer");
    EXPECT_ERR(": 1\r\n", "bad integer");
    EXPECT_ERR(":1 \r\n", "bad integer");
    EXPECT_ERR(":12a\r\n", "bad integer");
    EXPECT_ERR(":--1\r\n", "bad integer");
    EXPECT_ERR(":99999999999999999999\r\n", "bad integer");
    EXPECT_ERR(":9223372036854775808\r\n", "bad integer");
    EXPECT_ERR(":-9223372036854775809\r\n", "bad integer");
    EXPECT_ERR(":18446744073709551616\r\n", "bad integer");
}

static void test_bad_lengths(void **state) {
    (void)state;
    EXPECT_ERR("$-2\r\n", "negative");
    EXPECT_ERR("*-2\r\n", "negative");
    EXPECT_ERR("!-1\r\n", "negative");
    EXPECT_ERR("=-1\r\n", "negative");
    EXPECT_ERR("%-1\r\n", "negative");
    EXPECT_ERR("~-1\r\n", "negative");
    EXPECT_ERR(">-1\r\n", "negative");
    EXPECT_ERR("|-1\r\n", "negative");
    EXPECT_ERR("$\r\n", "bad length");
    EXPECT_ERR("*x\r\n", "bad length");
    EXPECT_ERR("$9223372036854775808\r\n", "bad length");
    EXPECT_ERR("$9223372036854775807\r\n", "max_bulk_len");
    EXPECT_ERR("$3\r\nfooXY", "not followed by CRLF");
    EXPECT_ERR("$3\r\nfoo\rX", "not followed by CRLF");
    EXPECT_ERR("$3\r\nfoo\n\r", "not followed by CRLF");
    EXPECT_ERR("$3\r\nfo\r\n\r\n", "not followed by CRLF");
    EXPECT_ERR("=3\r\nabc\r\n", "verbatim");
    EXPECT_ERR("=4\r\nabcd\r\n", "verbatim");
    EXPECT_ERR("=5\r\ntxt;x\r\n", "verbatim");
}

static void test_bad_scalars(void **state) {
    (void)state;
    EXPECT_ERR(",\r\n", "bad double");
    EXPECT_ERR(",nan1\r\n", "bad double");
    EXPECT_ERR(",-nan\r\n", "bad double");
    EXPECT_ERR(",NaN\r\n", "bad double");
    EXPECT_ERR(",infinity\r\n", "bad double");
    EXPECT_ERR(",1.5x\r\n", "bad double");
    EXPECT_ERR(", 1\r\n", "bad double");
    EXPECT_ERR(",0x10\r\n", "bad double");
    EXPECT_ERR(",1e\r\n", "bad double");
    EXPECT_ERR(",.\r\n", "bad double");
    EXPECT_ERR(",1..2\r\n", "bad double");
    EXPECT_ERR("#x\r\n", "bad boolean");
    EXPECT_ERR("#\r\n", "bad boolean");
    EXPECT_ERR("#tt\r\n", "bad boolean");
    EXPECT_ERR("#T\r\n", "bad boolean");
    EXPECT_ERR("_x\r\n", "bad null");
    EXPECT_ERR("(\r\n", "bad big number");
    EXPECT_ERR("(-\r\n", "bad big number");
    EXPECT_ERR("(+1\r\n", "bad big number");
    EXPECT_ERR("(12a\r\n", "bad big number");
}

static void test_streamed_unsupported(void **state) {
    (void)state;
    EXPECT_ERR("$?\r\n;4\r\nHell\r\n;0\r\n", "streamed types unsupported");
    EXPECT_ERR("*?\r\n:1\r\n.\r\n", "streamed types unsupported");
    EXPECT_ERR("%?\r\n", "streamed types unsupported");
    EXPECT_ERR("~?\r\n", "streamed types unsupported");
    EXPECT_ERR(";4\r\nHell\r\n", "streamed types unsupported");
    EXPECT_ERR(".\r\n", "streamed types unsupported");
}

/* An error deep inside a half-built reply frees all of it (ASan checks). */
static void test_error_frees_partial(void **state) {
    (void)state;
    EXPECT_ERR("*2\r\n%1\r\n+k\r\n*3\r\n:1\r\n|1\r\n+a\r\n+b\r\n$2\r\nxyz\r\n", "CRLF");
    EXPECT_ERR("|1\r\n+a\r\n*1\r\n+b\r\n#q\r\n", "bad boolean");
    EXPECT_ERR("|1\r\n+a\r\n+b\r\n*2\r\n|1\r\n+c\r\n+d\r\n:1\r\n:x\r\n", "bad integer");
    EXPECT_ERR("*1\r\n|1\r\n+a\r\n+b\r\n:x\r\n", "bad integer");
}

/* ---- Buffer API --------------------------------------------------------- */

/* Replies fed through space()/commit() in small pieces parse the same. */
static void test_space_commit(void **state) {
    (void)state;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    const char unit[] = "*2\r\n$5\r\nhello\r\n:12345\r\n";
    size_t ul = sizeof unit - 1, got = 0;
    size_t total = ul * 5000, off = 0;
    while (off < total) {
        size_t avail;
        char *p = aredis_reader_space(r, 7, &avail);
        assert_non_null(p);
        assert_true(avail >= 7);
        size_t n = total - off < 7 ? total - off : 7; /* a short "read" */
        for (size_t i = 0; i < n; i++)
            p[i] = unit[(off + i) % ul];
        off += n;
        aredis_reader_commit(r, n);
        void *rep;
        while (aredis_reader_get_reply(r, &rep) == AREDIS_ERR_OK && rep) {
            assert_string_equal(dump(rep), "[\"hello\",:12345]");
            aredis_reply_free(rep);
            got++;
        }
    }
    assert_int_equal(got, 5000);
    assert_int_equal(aredis_reader_pending(r), 0);

    /* A large request for space is honoured. */
    size_t avail;
    char *p = aredis_reader_space(r, 100000, &avail);
    assert_non_null(p);
    assert_true(avail >= 100000);
    memcpy(p, "+big\r\n", 6);
    aredis_reader_commit(r, 6);
    void *rep;
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_string_equal(dump(rep), "+big");
    aredis_reply_free(rep);
    aredis_reader_free(r);
}

/*
 * A big top-level blob that ends the buffered bytes takes the reader's buffer
 * as its memory (no copy of the payload). It must read like any other reply,
 * and the reader must go on as if nothing happened.
 */
static char *big_blob(const char *head, size_t n, const char *tail, size_t *len) {
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + n + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        s[hl + i] = (char)('a' + i % 26);
    s[hl + 7] = '\r'; /* CR, LF and NUL inside the payload are data */
    s[hl + 8] = '\n';
    s[hl + 9] = '\0';
    memcpy(s + hl + n, tail, tl + 1);
    *len = hl + n + tl;
    return s;
}

static void check_big(const aredis_reply *rep, aredis_reply_type type, const char *want, size_t n) {
    assert_non_null(rep);
    assert_int_equal(rep->type, type);
    assert_int_equal(rep->len, n);
    assert_memory_equal(rep->str, want, n);
    assert_int_equal(rep->str[n], '\0');
    assert_null(rep->attribute);
}

static void test_big_blob_takes_buffer(void **state) {
    (void)state;
    size_t len;
    aredis_reply *rep;
    aredis_reader *r = aredis_reader_new(NULL, NULL);

    /* Alone in one feed. */
    char *s = big_blob("$2000\r\n", 2000, "\r\n", &len);
    assert_int_equal(aredis_reader_feed(r, s, len), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    check_big(rep, AREDIS_REPLY_STRING, s + 7, 2000);
    assert_int_equal(aredis_reader_pending(r), 0);
    /* The reader goes on, and the reply outlives the next feeds. */
    FEED(r, "+OK\r\n:7\r\n");
    void *next;
    assert_int_equal(aredis_reader_get_reply(r, &next), AREDIS_ERR_OK);
    assert_string_equal(dump(next), "+OK");
    aredis_reply_free(next);
    assert_int_equal(aredis_reader_get_reply(r, &next), AREDIS_ERR_OK);
    assert_string_equal(dump(next), ":7");
    aredis_reply_free(next);
    check_big(rep, AREDIS_REPLY_STRING, s + 7, 2000);
    assert_ptr_equal(aredis_reply_retain(rep), rep);
    aredis_reply_release(rep);
    aredis_reply_release(rep);

    /* Followed by more bytes: copied as usual, both replies right. */
    free(s);
    s = big_blob("$2000\r\n", 2000, "\r\n+after\r\n", &len);
    assert_int_equal(aredis_reader_feed(r, s, len), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    check_big(rep, AREDIS_REPLY_STRING, s + 7, 2000);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, &next), AREDIS_ERR_OK);
    assert_string_equal(dump(next), "+after");
    aredis_reply_free(next);

    /* Arriving in pieces (the reader waits in its blob state). */
    free(s);
    s = big_blob("$3000\r\n", 3000, "\r\n", &len);
    for (size_t off = 0; off < len; off += 700) {
        size_t n = len - off < 700 ? len - off : 700;
        assert_int_equal(aredis_reader_feed(r, s + off, n), AREDIS_ERR_OK);
        assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
        if (off + n < len) assert_null(rep);
    }
    check_big(rep, AREDIS_REPLY_STRING, s + 7, 3000);
    aredis_reply_free(rep);

    /* A verbatim string, a blob error and a long status line. */
    free(s);
    s = big_blob("=2004\r\nmkd:", 2000, "\r\n", &len);
    assert_int_equal(aredis_reader_feed(r, s, len), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    check_big(rep, AREDIS_REPLY_VERB, s + 11, 2000);
    assert_string_equal(rep->vtype, "mkd");
    aredis_reply_free(rep);
    free(s);
    s = big_blob("!1500\r\n", 1500, "\r\n", &len);
    assert_int_equal(aredis_reader_feed(r, s, len), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    check_big(rep, AREDIS_REPLY_ERROR, s + 7, 1500);
    aredis_reply_free(rep);
    free(s);
    s = malloc(1203);
    s[0] = '+';
    memset(s + 1, 's', 1200);
    memcpy(s + 1201, "\r\n", 2);
    assert_int_equal(aredis_reader_feed(r, s, 1203), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    check_big(rep, AREDIS_REPLY_STATUS, s + 1, 1200);
    aredis_reply_free(rep);

    /* After an attribute the blob is built in the reply's arena instead. */
    free(s);
    s = big_blob("|1\r\n+a\r\n+b\r\n$2000\r\n", 2000, "\r\n", &len);
    assert_int_equal(aredis_reader_feed(r, s, len), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_non_null(rep->attribute);
    assert_string_equal(dump(rep->attribute), "|{+a:+b}");
    assert_int_equal(rep->len, 2000);
    assert_memory_equal(rep->str, s + 19, 2000);
    aredis_reply_free(rep);

    /* Through space()/commit(), then space() again. */
    free(s);
    s = big_blob("$2000\r\n", 2000, "\r\n", &len);
    size_t avail;
    char *p = aredis_reader_space(r, len, &avail);
    assert_non_null(p);
    memcpy(p, s, len);
    aredis_reader_commit(r, len);
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    check_big(rep, AREDIS_REPLY_STRING, s + 7, 2000);
    p = aredis_reader_space(r, 16, &avail);
    assert_non_null(p);
    assert_true(avail >= 16);
    memcpy(p, "$2\r\nhi\r\n", 8);
    aredis_reader_commit(r, 8);
    assert_int_equal(aredis_reader_get_reply(r, &next), AREDIS_ERR_OK);
    assert_string_equal(dump(next), "\"hi\"");
    aredis_reply_free(next);
    aredis_reader_free(r); /* the reply does not depend on the reader */
    check_big(rep, AREDIS_REPLY_STRING, s + 7, 2000);
    aredis_reply_free(rep);
    free(s);

    /* Taken with a NULL reply pointer: freed at once. */
    r = aredis_reader_new(NULL, NULL);
    s = big_blob("$2000\r\n", 2000, "\r\n", &len);
    assert_int_equal(aredis_reader_feed(r, s, len), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_pending(r), 0);
    aredis_reader_free(r);
    free(s);
}

/*
 * With the default builder a top-level reply owns the memory of everything
 * in it: freeing or releasing a nested reply does nothing (ASan would catch
 * a bad free), and the tree stays intact until the top-level reply goes.
 */
static void test_nested_replies_belong_to_top(void **state) {
    (void)state;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    FEED(r, "*3\r\n$1\r\na\r\n|1\r\n+k\r\n+v\r\n%1\r\n:1\r\n*1\r\n_\r\n:2\r\n");
    aredis_reply *rep;
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_string_equal(dump(rep), "[\"a\",|{+k:+v} {:1:[nil]},:2]");
    aredis_reply_free(rep->element[0]);
    aredis_reply_free(rep->element[1]->attribute);
    aredis_reply_release(aredis_reply_retain(rep->element[1]));
    aredis_reply_release(rep->element[2]);
    assert_string_equal(dump(rep), "[\"a\",|{+k:+v} {:1:[nil]},:2]");
    aredis_reply_free(rep);
    aredis_reader_free(r);
}

/* ---- Custom builder ----------------------------------------------------- */

/*
 * A builder whose objects are heap-allocated text nodes: each remembers its
 * rendering and its children. It counts live objects to prove the reader
 * frees exactly what it made.
 */
typedef struct tnode {
    char text[64];
    struct tnode *kids[8];
    size_t nkids;
    struct tnode *attr;
} tnode;

static int live_nodes;

static tnode *tnew(const aredis_reader_task *t, const char *fmt, const char *s, size_t n) {
    tnode *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    live_nodes++;
    snprintf(x->text, sizeof x->text, fmt, (int)n, s);
    if (t->parent) {
        tnode *p = t->parent;
        assert_true(t->idx == p->nkids && t->idx < 8);
        p->kids[p->nkids++] = x;
    }
    return x;
}

static void *t_string(const aredis_reader_task *t, const char *s, size_t len) {
    return tnew(t, t->type == AREDIS_REPLY_VERB ? "verb(%.*s)" : "str(%.*s)", s, len);
}
static void *t_aggregate(const aredis_reader_task *t, size_t claimed) {
    char tag[32];
    snprintf(tag, sizeof tag, "%s/%zu", aredis_reply_type_name(t->type), claimed);
    return tnew(t, "%.*s", tag, strlen(tag));
}
static void *t_integer(const aredis_reader_task *t, long long v) {
    char tag[32];
    snprintf(tag, sizeof tag, "int(%lld)", v);
    return tnew(t, "%.*s", tag, strlen(tag));
}
static void *t_double(const aredis_reader_task *t, double v, const char *s, size_t len) {
    (void)v;
    return tnew(t, "dbl(%.*s)", s, len);
}
static void *t_nil(const aredis_reader_task *t) { return tnew(t, "nil%.*s", "", 0); }
static void *t_bool(const aredis_reader_task *t, int v) {
    return tnew(t, "%.*s", v ? "true" : "false", v ? 4 : 5);
}
static void t_set_attr(void *obj, void *attr) { ((tnode *)obj)->attr = attr; }
static void t_free(void *obj) {
    /* Test trees are shallow: recursion is fine here. */
    tnode *x = obj;
    if (!x) return;
    for (size_t i = 0; i < x->nkids; i++)
        t_free(x->kids[i]);
    t_free(x->attr);
    live_nodes--;
    free(x);
}

static void t_render(const tnode *x, char *out, size_t cap) {
    size_t n = strlen(out);
    if (x->attr) {
        snprintf(out + n, cap - n, "@");
        t_render(x->attr, out, cap);
        n = strlen(out);
    }
    snprintf(out + n, cap - n, "%s", x->text);
    if (x->nkids) {
        n = strlen(out);
        snprintf(out + n, cap - n, "(");
        for (size_t i = 0; i < x->nkids; i++) {
            if (i) strncat(out, " ", cap - strlen(out) - 1);
            t_render(x->kids[i], out, cap);
        }
        n = strlen(out);
        snprintf(out + n, cap - n, ")");
    }
}

static void test_custom_builder(void **state) {
    (void)state;
    aredis_reply_builder b = {t_string, t_aggregate, t_integer,  t_double,
                              t_nil,    t_bool,      t_set_attr, t_free};
    int priv = 7;
    aredis_reader *r = aredis_reader_new(&b, &priv);
    assert_non_null(r);
    const char in[] = "*3\r\n:1\r\n|1\r\n+a\r\n#t\r\n%1\r\n$1\r\nk\r\n,2.5\r\n=6\r\ntxt:hi\r\n"
                      "_\r\n";
    aredis_reader_feed(r, in, sizeof in - 1);
    void *rep;
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_non_null(rep);
    char text[512] = "";
    t_render(rep, text, sizeof text);
    assert_string_equal(text, "array/3(int(1) @attribute/2(str(a) true)map/2(str(k) dbl(2.5)) "
                              "verb(txt:hi))");
    t_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    t_render(rep, text, sizeof text);
    t_free(rep);

    /* A partial reply is freed through free_object by the reader. */
    FEED(r, "*2\r\n|1\r\n+a\r\n");
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_null(rep);
    assert_true(live_nodes > 0);
    aredis_reader_free(r);
    assert_int_equal(live_nodes, 0);

    /* No set_attribute: attributes are parsed and dropped. */
    b.set_attribute = NULL;
    r = aredis_reader_new(&b, NULL);
    aredis_reader_feed(r, in, sizeof in - 1);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    text[0] = '\0';
    t_render(rep, text, sizeof text);
    assert_string_equal(text, "array/3(int(1) map/2(str(k) dbl(2.5)) verb(txt:hi))");
    t_free(rep);
    aredis_reader_free(r);
    assert_int_equal(live_nodes, 0);
}

/* Tasks say where each object goes; privdata comes through. */
static int task_log_n;
static aredis_reader_task task_log[16];
static void *log_integer(const aredis_reader_task *t, long long v) {
    task_log[task_log_n++] = *t;
    return aredis_reply_builder_default()->create_integer(t, v);
}

static void test_tasks(void **state) {
    (void)state;
    aredis_reply_builder b = *aredis_reply_builder_default();
    b.create_integer = log_integer;
    int priv;
    aredis_reader *r = aredis_reader_new(&b, &priv);
    const char in[] = "*2\r\n:1\r\n%1\r\n:2\r\n:3\r\n|1\r\n:4\r\n:5\r\n:6\r\n";
    aredis_reader_feed(r, in, sizeof in - 1);
    void *rep;
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_string_equal(dump(rep), "|{:4::5} :6");
    aredis_reply_free(rep);
    assert_int_equal(task_log_n, 6);
    assert_ptr_equal(task_log[0].privdata, &priv);
    assert_int_equal(task_log[0].parent_type, AREDIS_REPLY_ARRAY);
    assert_int_equal(task_log[0].idx, 0);
    assert_int_equal(task_log[1].parent_type, AREDIS_REPLY_MAP);
    assert_int_equal(task_log[2].parent_type, AREDIS_REPLY_MAP);
    assert_int_equal(task_log[2].idx, 1);
    assert_int_equal(task_log[3].parent_type, AREDIS_REPLY_ATTR);
    assert_null(task_log[5].parent); /* the value after a top-level attribute */
    assert_int_equal(task_log[5].idx, 0);
    aredis_reader_free(r);
}

/* ---- Reply object ------------------------------------------------------- */

static void test_refcount_and_names(void **state) {
    (void)state;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    FEED(r, "*1\r\n+x\r\n");
    aredis_reply *rep;
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_int_equal(rep->priv_refs, 1);
    assert_ptr_equal(aredis_reply_retain(rep), rep);
    assert_int_equal(rep->priv_refs, 2);
    aredis_reply_release(rep);
    assert_int_equal(rep->priv_refs, 1);
    aredis_reply_release(rep); /* frees; ASan would see a leak otherwise */
    aredis_reply_release(NULL);
    aredis_reply_free(NULL);
    aredis_reader_free(r);
    aredis_reader_free(NULL);

    assert_string_equal(aredis_reply_type_name(AREDIS_REPLY_STRING), "string");
    assert_string_equal(aredis_reply_type_name(AREDIS_REPLY_MAP), "map");
    assert_string_equal(aredis_reply_type_name(AREDIS_REPLY_VERB), "verbatim");
    assert_string_equal(aredis_reply_type_name((aredis_reply_type)0), "unknown");
    for (int t = AREDIS_REPLY_STRING; t <= AREDIS_REPLY_VERB; t++)
        assert_string_not_equal(aredis_reply_type_name((aredis_reply_type)t), "unknown");
}

/*
 * Small top-level replies reuse memory through the thread's block cache
 * (src/util/cache.h): a freed small reply's block serves the next small
 * reply with every field reset; a retained reply is not reused until its
 * last reference goes; a top-level nil is one shared read-only reply; big
 * replies and aggregates are not cached; at most AREDIS__CACHE_MAX blocks
 * are kept; changing the allocator gives the cached blocks back to the
 * allocator they came from; a thread's blocks are freed when it exits.
 */
static aredis_reply *next_reply(aredis_reader *r) {
    aredis_reply *rep = NULL;
    assert_int_equal(aredis_reader_get_reply(r, (void **)&rep), AREDIS_ERR_OK);
    assert_non_null(rep);
    return rep;
}

static void test_small_replies_reuse_memory(void **state) {
    (void)state;
    aredis__cache_flush();
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    char big[200];
    memset(big, 'b', sizeof big);
    assert_int_equal(FEED(r, "+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n"), AREDIS_ERR_OK);
    assert_int_equal(FEED(r, "$200\r\n"), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_feed(r, big, sizeof big), AREDIS_ERR_OK);
    assert_int_equal(FEED(r, "\r\n*1\r\n:1\r\n#t\r\n"), AREDIS_ERR_OK);

    aredis_reply *ok = next_reply(r);
    assert_string_equal(dump(ok), "+OK");
    aredis_reply_free(ok);

    aredis_reply *num = next_reply(r);
    assert_ptr_equal(num, ok); /* the same memory, reset */
    assert_int_equal(num->type, AREDIS_REPLY_INTEGER);
    assert_int_equal(num->integer, 42);
    assert_null(num->str);
    assert_int_equal(num->len, 0);
    assert_int_equal(num->priv_refs, 1);

    /* Retained: one release keeps it, and its memory is not handed out. */
    aredis_reply_retain(num);
    aredis_reply_release(num);
    assert_int_equal(num->priv_refs, 1);
    aredis_reply *hello = next_reply(r);
    assert_ptr_not_equal(hello, num);
    assert_string_equal(dump(hello), "\"hello\"");
    assert_int_equal(num->integer, 42);
    aredis_reply_release(num);
    aredis_reply_free(hello);

    /* A top-level nil is the shared read-only one: no block taken. */
    aredis_reply *nil = next_reply(r);
    assert_ptr_not_equal(nil, hello);
    assert_int_equal(nil->type, AREDIS_REPLY_NIL);
    assert_null(nil->str);
    assert_ptr_equal(aredis_reply_retain(nil), nil);
    aredis_reply_release(nil);
    aredis_reply_free(nil);
    aredis_reply_free(nil);

    /* Too big for a block, and an aggregate: freed, never cached. */
    aredis__cache_flush();
    aredis_reply *blob = next_reply(r);
    assert_int_equal(blob->len, sizeof big);
    aredis_reply_free(blob);
    aredis_reply *arr = next_reply(r);
    assert_string_equal(dump(arr), "[:1]");
    aredis_reply_free(arr);
    assert_null(aredis__cache_get());

    aredis_reply *yes = next_reply(r);
    assert_string_equal(dump(yes), "#t");
    aredis_reply_free(yes);
    /* Parked on free: the block is the chunk link, then the reply. */
    char *blk = aredis__cache_get();
    assert_ptr_equal(blk + sizeof(void *), (char *)yes);
    aredis__free(blk); /* taken out: ours to free */
    aredis_reader_free(r);
}

static atomic_long g_live;

static void *count_malloc(size_t n) {
    void *p = malloc(n);
    if (p) atomic_fetch_add(&g_live, 1);
    return p;
}
static void *count_calloc(size_t m, size_t n) {
    void *p = calloc(m, n);
    if (p) atomic_fetch_add(&g_live, 1);
    return p;
}
static void *count_realloc(void *old, size_t n) {
    void *p = realloc(old, n);
    if (p && !old) atomic_fetch_add(&g_live, 1);
    return p;
}
static void count_free(void *p) {
    if (p) atomic_fetch_sub(&g_live, 1);
    free(p);
}
static const aredis_allocator counting = {count_malloc, count_calloc, count_realloc, count_free};

/* Parse and free n small replies on a reader of its own. */
static void small_replies(int n) {
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    aredis_reply *rep[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++)
        assert_int_equal(FEED(r, ":7\r\n"), AREDIS_ERR_OK);
    for (int i = 0; i < n; i++)
        rep[i] = next_reply(r);
    for (int i = 0; i < n; i++) {
        assert_int_equal(rep[i]->integer, 7);
        aredis_reply_free(rep[i]);
    }
    aredis_reader_free(r);
}

static void *thread_main(void *arg) {
    small_replies(*(int *)arg);
    return NULL;
}

static void test_block_cache_bounds_and_owners(void **state) {
    (void)state;
    /* Bounded: of 40 small replies freed at once, AREDIS__CACHE_MAX stay. */
    atomic_store(&g_live, 0);
    aredis_set_allocator(&counting);
    small_replies(40);
    assert_int_equal(atomic_load(&g_live), AREDIS__CACHE_MAX);
    /* Changing the allocator gives them back to the one they came from. */
    aredis_reset_allocator();
    assert_int_equal(atomic_load(&g_live), 0);

    /* A thread's cached blocks are freed when the thread exits. */
    aredis_set_allocator(&counting);
    int n = 5;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_main, &n), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&g_live), 0);
    aredis_reset_allocator();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_types),
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_double_locale),
        cmocka_unit_test(test_aggregates),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_several_replies),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_bad_integers),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_bad_scalars),
        cmocka_unit_test(test_streamed_unsupported),
        cmocka_unit_test(test_error_frees_partial),
        cmocka_unit_test(test_space_commit),
        cmocka_unit_test(test_big_blob_takes_buffer),
        cmocka_unit_test(test_nested_replies_belong_to_top),
        cmocka_unit_test(test_custom_builder),
        cmocka_unit_test(test_tasks),
        cmocka_unit_test(test_refcount_and_names),
        cmocka_unit_test(test_small_replies_reuse_memory),
        cmocka_unit_test(test_block_cache_bounds_and_owners),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
