/*
 * The reader against hostile and resource-hungry input: limits (bulk length,
 * element count, depth), memory that must track the bytes received rather
 * than the counts claimed (proved with a counting allocator), allocation
 * failure at every point of a parse (only NOMEM, never a crash or a leak),
 * and nesting 100000 deep (parsed and freed without recursion).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"
#include "util/cache.h"

/* A TAP-style note on stderr. */
#define NOTE(...) (fprintf(stderr, "# " __VA_ARGS__), fputc('\n', stderr))

/* ---- A counting, failing allocator -------------------------------------- */

/* Each block carries its size in a header that keeps malloc's alignment. */
typedef union hdr {
    size_t size;
    max_align_t align;
} hdr;

static size_t live_bytes, peak_bytes, live_blocks, alloc_calls;
static size_t fail_at; /* fail the fail_at-th allocation call; 0 = never */
static int failed;

static int should_fail(void) {
    alloc_calls++;
    if (fail_at && alloc_calls == fail_at) {
        failed = 1;
        return 1;
    }
    return 0;
}

static void account(size_t add, size_t sub) {
    live_bytes = live_bytes + add - sub;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
}

static void *c_malloc(size_t n) {
    if (should_fail()) return NULL;
    hdr *h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    live_blocks++;
    account(n, 0);
    return h + 1;
}

static void *c_calloc(size_t nm, size_t sz) {
    size_t n;
    if (__builtin_mul_overflow(nm, sz, &n)) return NULL;
    void *p = c_malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

static void *c_realloc(void *p, size_t n) {
    if (!p) return c_malloc(n);
    if (should_fail()) return NULL;
    hdr *h = (hdr *)p - 1;
    size_t old = h->size;
    hdr *nh = realloc(h, sizeof *nh + n);
    if (!nh) return NULL;
    nh->size = n;
    account(n, old);
    return nh + 1;
}

static void c_free(void *p) {
    if (!p) return;
    hdr *h = (hdr *)p - 1;
    live_blocks--;
    account(0, h->size);
    free(h);
}

static const aredis_allocator counting = {c_malloc, c_calloc, c_realloc, c_free};

static int use_counting(void **state) {
    (void)state;
    live_bytes = peak_bytes = live_blocks = alloc_calls = 0;
    fail_at = 0;
    failed = 0;
    aredis_set_allocator(&counting);
    return 0;
}

static int check_no_leak(void **state) {
    (void)state;
    aredis_reset_allocator();
    assert_int_equal(live_blocks, 0);
    assert_int_equal(live_bytes, 0);
    return 0;
}

/* ---- Helpers ------------------------------------------------------------ */

/* Feed `in` and take one reply: returns the error; *rep set on success. */
static aredis_err parse1(aredis_reader *r, const char *in, size_t n, void **rep) {
    aredis_err e = aredis_reader_feed(r, in, n);
    if (e != AREDIS_ERR_OK) return e;
    return aredis_reader_get_reply(r, rep);
}
#define PARSE1(r, lit, rep) parse1(r, lit, sizeof(lit) - 1, rep)

static aredis_reader *reader_with(size_t bulk, size_t elems, unsigned depth) {
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    aredis_reader_limits l = {bulk, elems, depth};
    aredis_reader_set_limits(r, &l);
    return r;
}

static void expect_limit(aredis_reader *r, const char *in, size_t n, const char *needle) {
    void *rep = NULL;
    assert_int_equal(parse1(r, in, n, &rep), AREDIS_ERR_PROTOCOL);
    assert_null(rep);
    if (!strstr(aredis_reader_errstr(r), needle))
        fail_msg("'%s' lacks '%s'", aredis_reader_errstr(r), needle);
    aredis_reader_free(r);
}
#define EXPECT_LIMIT(r, lit, needle) expect_limit(r, lit, sizeof(lit) - 1, needle)

static void expect_ok(aredis_reader *r, const char *in, size_t n) {
    void *rep = NULL;
    assert_int_equal(parse1(r, in, n, &rep), AREDIS_ERR_OK);
    if (!rep) fail_msg("no reply for '%s'", in);
    aredis_reply_free(rep);
    aredis_reader_free(r);
}
#define EXPECT_OK(r, lit) expect_ok(r, lit, sizeof(lit) - 1)

/* "*1\r\n" × depth, then ":1\r\n". */
static char *nested(size_t depth, size_t *len) {
    *len = depth * 4 + 4;
    char *s = malloc(*len + 1);
    assert_non_null(s);
    for (size_t i = 0; i < depth; i++)
        memcpy(s + i * 4, "*1\r\n", 4);
    memcpy(s + depth * 4, ":1\r\n", 5);
    return s;
}

/* ---- Limits ------------------------------------------------------------- */

static void test_max_bulk_len(void **state) {
    (void)state;
    EXPECT_OK(reader_with(10, 0, 0), "$10\r\n0123456789\r\n");
    EXPECT_LIMIT(reader_with(10, 0, 0), "$11\r\n01234567890\r\n", "max_bulk_len 10");
    EXPECT_LIMIT(reader_with(10, 0, 0), "!11\r\n", "max_bulk_len");
    EXPECT_LIMIT(reader_with(10, 0, 0), "=11\r\n", "max_bulk_len");
    /* Simple lines are bounded by the same limit, even before their CRLF. */
    EXPECT_OK(reader_with(10, 0, 0), "+0123456789\r\n");
    EXPECT_LIMIT(reader_with(10, 0, 0), "+01234567890\r\n", "too long");
    EXPECT_LIMIT(reader_with(10, 0, 0), "-01234567890", "too long");
    /* The commonest reply too, on every path (the first reply after new
     * limits takes the general one, later ones a shortcut). */
    EXPECT_LIMIT(reader_with(1, 0, 0), "+OK\r\n", "too long");
    EXPECT_OK(reader_with(2, 0, 0), "+OK\r\n");
    aredis_reader *r1 = reader_with(1, 0, 0);
    void *rep;
    assert_int_equal(PARSE1(r1, ":1\r\n+OK\r\n", &rep), AREDIS_ERR_OK);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r1, &rep), AREDIS_ERR_PROTOCOL);
    assert_non_null(strstr(aredis_reader_errstr(r1), "too long"));
    aredis_reader_free(r1);
    r1 = reader_with(10, 0, 0);
    assert_int_equal(PARSE1(r1, ":1\r\n$10\r\n0123456789\r\n$11\r\n01234567890\r\n", &rep),
                     AREDIS_ERR_OK);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r1, &rep), AREDIS_ERR_OK);
    assert_int_equal(((aredis_reply *)rep)->len, 10);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r1, &rep), AREDIS_ERR_PROTOCOL);
    assert_non_null(strstr(aredis_reader_errstr(r1), "max_bulk_len 10"));
    aredis_reader_free(r1);
    /* The default limit. */
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    char head[64];
    snprintf(head, sizeof head, "$%zu\r\n", AREDIS_READER_DEFAULT_MAX_BULK + 1);
    expect_limit(r, head, strlen(head), "max_bulk_len");
}

static void test_max_elements(void **state) {
    (void)state;
    EXPECT_OK(reader_with(0, 3, 0), "*3\r\n:1\r\n:2\r\n:3\r\n");
    EXPECT_LIMIT(reader_with(0, 3, 0), "*4\r\n", "max_elements 3");
    EXPECT_LIMIT(reader_with(0, 3, 0), "~4\r\n", "max_elements");
    EXPECT_LIMIT(reader_with(0, 3, 0), ">4\r\n", "max_elements");
    /* Maps and attributes count pairs × 2. */
    EXPECT_OK(reader_with(0, 3, 0), "%1\r\n:1\r\n:2\r\n");
    EXPECT_LIMIT(reader_with(0, 3, 0), "%2\r\n", "max_elements");
    EXPECT_LIMIT(reader_with(0, 3, 0), "|2\r\n", "max_elements");
    EXPECT_LIMIT(reader_with(0, 3, 0), "*1\r\n*4\r\n", "max_elements");
    EXPECT_LIMIT(aredis_reader_new(NULL, NULL), "*268435457\r\n", "max_elements");
}

static void test_max_depth(void **state) {
    (void)state;
    size_t len;
    char *s = nested(AREDIS_READER_DEFAULT_MAX_DEPTH, &len);
    expect_ok(aredis_reader_new(NULL, NULL), s, len);
    free(s);
    s = nested(AREDIS_READER_DEFAULT_MAX_DEPTH + 1, &len);
    expect_limit(aredis_reader_new(NULL, NULL), s, len, "max_depth 128");
    /* Zero fields mean "default". */
    expect_limit(reader_with(0, 0, 0), s, len, "max_depth 128");
    free(s);

    EXPECT_OK(reader_with(0, 0, 1), "*2\r\n:1\r\n*-1\r\n");
    EXPECT_LIMIT(reader_with(0, 0, 1), "*1\r\n*0\r\n", "max_depth 1"); /* empty counts */
    EXPECT_LIMIT(reader_with(0, 0, 1), "*1\r\n%0\r\n", "max_depth");
    EXPECT_OK(reader_with(0, 0, 2), "*1\r\n~1\r\n:1\r\n");
    /* An attribute is a level of nesting where it stands. */
    EXPECT_OK(reader_with(0, 0, 1), "|1\r\n+a\r\n+b\r\n*1\r\n:1\r\n");
    EXPECT_LIMIT(reader_with(0, 0, 1), "*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", "max_depth");
}

/* New limits apply to the next reply, not to the one being parsed. */
static void test_limits_apply_to_next_reply(void **state) {
    (void)state;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    void *rep;
    assert_int_equal(PARSE1(r, "*2\r\n:1\r\n", &rep), AREDIS_ERR_OK);
    assert_null(rep);
    aredis_reader_limits l = AREDIS_READER_LIMITS_INIT;
    l.max_elements = 1;
    aredis_reader_set_limits(r, &l);
    assert_int_equal(PARSE1(r, ":2\r\n*2\r\n:1\r\n:2\r\n", &rep), AREDIS_ERR_OK);
    assert_non_null(rep);
    assert_int_equal(((aredis_reply *)rep)->elements, 2);
    aredis_reply_free(rep);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_PROTOCOL);
    assert_non_null(strstr(aredis_reader_errstr(r), "max_elements 1"));
    aredis_reader_free(r);
    /* NULL restores the defaults. */
    r = reader_with(1, 1, 1);
    aredis_reader_set_limits(r, NULL);
    EXPECT_OK(r, "*2\r\n$2\r\nab\r\n*0\r\n");
}

/* ---- Memory tracks bytes received --------------------------------------- */

/* Peak bytes allocated while get_reply parses what was fed. */
static size_t parse_peak(aredis_reader *r, const char *in, size_t n, aredis_err want) {
    assert_int_equal(aredis_reader_feed(r, in, n), AREDIS_ERR_OK);
    size_t base = live_bytes;
    peak_bytes = live_bytes;
    void *rep = (void *)1;
    assert_int_equal(aredis_reader_get_reply(r, &rep), want);
    assert_null(rep);
    return peak_bytes - base;
}

static void test_claimed_count_costs_nothing(void **state) {
    (void)state;
    /* Over the default max_elements (2^28)... */
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    size_t grew = parse_peak(r, "*4294967295\r\n", 13, AREDIS_ERR_PROTOCOL);
    assert_int_equal(grew, 0);
    aredis_reader_free(r);
    /* ... and with no limit, the claim costs one small object. */
    r = reader_with(SIZE_MAX, SIZE_MAX, 0);
    grew = parse_peak(r, "*4294967295\r\n", 13, AREDIS_ERR_OK);
    NOTE("*4294967295: %zu bytes during get_reply, %zu live in all", grew, live_bytes);
    assert_true(grew <= 400);
    /* The reader, its 512-byte buffer (and the room kept before it for a reply
     * that takes the buffer over), frames, one array. */
    assert_true(live_bytes <= 1300);
    /* Elements arriving grow the array a little at a time. */
    grew = parse_peak(r, ":1\r\n:2\r\n:3\r\n:4\r\n:5\r\n", 20, AREDIS_ERR_OK);
    assert_true(grew <= 600);
    aredis_reader_free(r);

    /* A map claiming ~LLONG_MAX/2 pairs: over the default limit... */
    r = aredis_reader_new(NULL, NULL);
    parse_peak(r, "%4611686018427387903\r\n", 22, AREDIS_ERR_PROTOCOL);
    assert_non_null(strstr(aredis_reader_errstr(r), "max_elements"));
    aredis_reader_free(r);
    /* ... and with no limit at all it still costs one object. */
    r = reader_with(SIZE_MAX, SIZE_MAX, 0);
    grew = parse_peak(r, "%4611686018427387903\r\n", 22, AREDIS_ERR_OK);
    assert_true(grew <= 400);
    grew = parse_peak(r, "*9223372036854775807\r\n", 22, AREDIS_ERR_OK);
    assert_true(grew <= 400);
    aredis_reader_free(r);
}

static void test_claimed_length_costs_nothing(void **state) {
    (void)state;
    aredis_reader *r = reader_with(SIZE_MAX, 0, 0);
    size_t grew = parse_peak(r, "$9223372036854775807\r\n", 22, AREDIS_ERR_OK);
    assert_int_equal(grew, 0);
    /* 10 KB of payload: the buffer grows with it, not with the claim. */
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 10; i++) {
        grew = parse_peak(r, chunk, sizeof chunk, AREDIS_ERR_OK);
        assert_int_equal(grew, 0); /* nothing is built until the blob is whole */
    }
    assert_true(live_bytes < 40000);
    aredis_reader_free(r);
}

/*
 * Element slots are made ahead only as far as the bytes received can fill
 * them, and each received byte backs at most one such slot: aggregates nested
 * 2000 deep, each claiming a million elements, must not each size an array
 * from the same buffered bytes (that would be quadratic).
 */
static void test_nested_claims_cost_linear(void **state) {
    (void)state;
    const size_t depth = 2000;
    const char unit[] = "*1000000\r\n";
    size_t ul = sizeof unit - 1, len = depth * ul;
    char *s = malloc(len);
    assert_non_null(s);
    for (size_t i = 0; i < depth; i++)
        memcpy(s + i * ul, unit, ul);
    aredis_reader *r = reader_with(0, SIZE_MAX, 5000);
    size_t grew = parse_peak(r, s, len, AREDIS_ERR_OK);
    NOTE("%zu nested claims (%zu bytes): %zu bytes during get_reply", depth, len, grew);
    assert_true(grew <= 40 * len);
    aredis_reader_free(r);
    free(s);
}

/* A blob is built once, in one allocation, when its last byte is in. */
static void test_blob_allocated_once_complete(void **state) {
    (void)state;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    void *rep;
    char payload[300];
    memset(payload, 'p', sizeof payload);
    assert_int_equal(PARSE1(r, "$300\r\n", &rep), AREDIS_ERR_OK);
    assert_null(rep);
    for (int i = 0; i < 299; i++) {
        assert_int_equal(aredis_reader_feed(r, payload + i, 1), AREDIS_ERR_OK);
        size_t calls = alloc_calls;
        assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
        assert_null(rep);
        assert_int_equal(alloc_calls, calls);
    }
    assert_int_equal(aredis_reader_feed(r, payload + 299, 1), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_feed(r, "\r\n", 2), AREDIS_ERR_OK);
    size_t calls = alloc_calls;
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_non_null(rep);
    assert_int_equal(alloc_calls, calls + 1);
    assert_int_equal(((aredis_reply *)rep)->len, 300);
    aredis_reply_free(rep);
    aredis_reader_free(r);
}

/* Many replies through one reader: the buffer stays small; a huge one is let go. */
static void test_buffer_stays_bounded(void **state) {
    (void)state;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    void *rep;
    for (int i = 0; i < 100000; i++) {
        /* Feed one and a half replies at a time so data is always pending. */
        const char *piece = i % 2 ? "K\r\n+OK\r\n" : "+OK\r\n+O";
        assert_int_equal(aredis_reader_feed(r, piece, strlen(piece)), AREDIS_ERR_OK);
        while (aredis_reader_get_reply(r, &rep) == AREDIS_ERR_OK && rep)
            aredis_reply_free(rep);
    }
    assert_true(peak_bytes < 4096);

    size_t big = 1 << 20;
    char *blob = malloc(big + 32);
    int h = snprintf(blob, 32, "$%zu\r\n", big);
    memset(blob + h, 'z', big);
    memcpy(blob + h + big, "\r\n", 2);
    assert_int_equal(aredis_reader_feed(r, blob, (size_t)h + big + 2), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_non_null(rep);
    aredis_reply_free(rep);
    free(blob);
    assert_true(live_bytes < 4096); /* the 1 MB buffer was released */
    aredis_reader_free(r);
}

/* ---- Allocation failure ------------------------------------------------- */

/* A nested stream of every type, with a blob that outgrows the first buffer. */
static char fail_input[2048];
static size_t fail_len;
#define FAIL_REPLIES 7

static void make_fail_input(void) {
    static const char head[] =
        "*3\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n%2\r\n$3\r\nkey\r\n*6\r\n:1\r\n:2\r\n:3\r\n"
        ":4\r\n:5\r\n:6\r\n+k\r\n~1\r\n,1.5\r\n=7\r\ntxt:abc\r\n"
        ">2\r\n+message\r\n$2\r\nhi\r\n_\r\n#t\r\n(123\r\n!3\r\nERR\r\n$1500\r\n";
    memcpy(fail_input, head, sizeof head - 1);
    fail_len = sizeof head - 1;
    /* Big enough to take the reader's buffer over when it ends the bytes fed. */
    memset(fail_input + fail_len, 'x', 1500);
    fail_len += 1500;
    memcpy(fail_input + fail_len, "\r\n", 2);
    fail_len += 2;
}

/*
 * Parse fail_input with the fail_at-th allocation failing, fed in `step`
 * byte pieces (0: one feed; zero_copy via space/commit). Only NOMEM may
 * appear, it must be sticky, and everything must be freed.
 */
static void run_with_failure(size_t step, int zero_copy) {
    size_t len = fail_len;
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    if (!r) {
        assert_true(failed);
        return;
    }
    size_t off = 0, replies = 0;
    aredis_err e = AREDIS_ERR_OK;
    while (off < len && e == AREDIS_ERR_OK) {
        size_t n = step ? step : len;
        if (n > len - off) n = len - off;
        if (zero_copy) {
            char *p = aredis_reader_space(r, n, NULL);
            if (!p) {
                e = AREDIS_ERR_NOMEM;
                break;
            }
            memcpy(p, fail_input + off, n);
            aredis_reader_commit(r, n);
        } else {
            e = aredis_reader_feed(r, fail_input + off, n);
            if (e != AREDIS_ERR_OK) break;
        }
        off += n;
        void *rep;
        while ((e = aredis_reader_get_reply(r, &rep)) == AREDIS_ERR_OK && rep) {
            aredis_reply_free(rep);
            /* Empty the thread's block cache, so that every reply allocates
             * afresh and each of those allocations gets failed in turn. */
            aredis__cache_flush();
            replies++;
        }
    }
    if (e != AREDIS_ERR_OK) {
        assert_int_equal(e, AREDIS_ERR_NOMEM);
        assert_true(failed);
        void *rep = (void *)1;
        aredis_err again = aredis_reader_get_reply(r, &rep);
        /* A failed feed leaves the reader usable; a failed parse is sticky. */
        if (again != AREDIS_ERR_OK) {
            assert_int_equal(again, AREDIS_ERR_NOMEM);
            assert_string_equal(aredis_reader_errstr(r), "out of memory");
        }
        if (rep) aredis_reply_free(rep);
    } else {
        assert_int_equal(replies, FAIL_REPLIES);
    }
    aredis_reader_free(r);
}

static void test_alloc_failure_everywhere(void **state) {
    (void)state;
    static const size_t steps[] = {0, 1, 3, 16};
    make_fail_input();
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        for (int zc = 0; zc < 2; zc++) {
            size_t n;
            for (n = 1; n < 10000; n++) {
                live_bytes = live_blocks = alloc_calls = 0;
                failed = 0;
                fail_at = n;
                run_with_failure(steps[s], zc);
                assert_int_equal(live_blocks, 0);
                if (!failed) break; /* every allocation point has been failed */
            }
            NOTE("step %zu%s: failed each of %zu allocations", steps[s], zc ? " zero-copy" : "",
                 n - 1);
            /* The reader, its buffer and stack, and the arena chunks of 7 replies. */
            assert_true(n > 10);
        }
    }
    fail_at = 0;
}

/* ---- Deep nesting ------------------------------------------------------- */

#define DEEP 100000u

static void test_deep_nesting_freed_iteratively(void **state) {
    (void)state;
    size_t len;
    char *s = nested(DEEP, &len);
    aredis_reader *r = reader_with(0, 0, DEEP);
    void *rep;
    assert_int_equal(parse1(r, s, len, &rep), AREDIS_ERR_OK);
    assert_non_null(rep);
    const aredis_reply *x = rep;
    size_t depth = 0;
    while (x->type == AREDIS_REPLY_ARRAY)
        x = x->element[0], depth++;
    assert_int_equal(depth, DEEP);
    assert_int_equal(x->integer, 1);
    aredis_reply_free(rep);

    /* One past the limit fails, and the 100000-deep partial reply is freed. */
    assert_int_equal(aredis_reader_feed(r, s, len - 4), AREDIS_ERR_OK);
    assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
    assert_null(rep);
    assert_int_equal(PARSE1(r, "*1\r\n", &rep), AREDIS_ERR_PROTOCOL);
    aredis_reader_free(r);

    /* A deep partial reply is freed with the reader. */
    r = reader_with(0, 0, DEEP);
    assert_int_equal(parse1(r, s, len - 4, &rep), AREDIS_ERR_OK);
    assert_null(rep);
    aredis_reader_free(r);
    free(s);
}

/* Deep through attributes and maps: every free path of the reply tree. */
static void test_deep_attributes_freed_iteratively(void **state) {
    (void)state;
    /* A map whose key carries {k: v} where v carries {a: b}; its value nests on. */
    const char unit[] = "%1\r\n|1\r\n+k\r\n|1\r\n+a\r\n+b\r\n+v\r\n+key\r\n";
    size_t ul = sizeof unit - 1, n = DEEP / 2;
    char *s = malloc(ul * n + 5);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    memcpy(s + n * ul, ":1\r\n", 5);
    aredis_reader *r = reader_with(0, 0, DEEP + 10);
    void *rep;
    assert_int_equal(parse1(r, s, ul * n + 4, &rep), AREDIS_ERR_OK);
    assert_non_null(rep);
    const aredis_reply *x = rep;
    assert_int_equal(x->type, AREDIS_REPLY_MAP);
    assert_non_null(x->element[0]->attribute);
    assert_int_equal(x->element[0]->attribute->element[1]->attribute->type, AREDIS_REPLY_ATTR);
    aredis_reply_free(rep);
    aredis_reader_free(r);
    free(s);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, use_counting, check_no_leak)
    const struct CMUnitTest tests[] = {
        T(test_max_bulk_len),
        T(test_max_elements),
        T(test_max_depth),
        T(test_limits_apply_to_next_reply),
        T(test_claimed_count_costs_nothing),
        T(test_claimed_length_costs_nothing),
        T(test_nested_claims_cost_linear),
        T(test_blob_allocated_once_complete),
        T(test_buffer_stays_bounded),
        T(test_alloc_failure_everywhere),
        T(test_deep_nesting_freed_iteratively),
        T(test_deep_attributes_freed_iteratively),
    };
#undef T
    return cmocka_run_group_tests(tests, 0, NULL);
}
