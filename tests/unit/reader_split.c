/*
 * Incremental parsing: a large mixed stream (every type, nesting, attributes
 * at top level and inside aggregates, push, a blob bigger than the first
 * buffer) must give exactly the same replies however it is cut: at every
 * byte offset into two feeds, one byte at a time, in fixed and random chunks,
 * through feed() and through space()/commit(). A stream ending in garbage must
 * give the same replies and then the same error message for every cut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"

#define MAX_REPLIES 64

typedef struct outcome {
    aredis_reply *rep[MAX_REPLIES];
    size_t n;
    aredis_err err;
    char errstr[128];
} outcome;

/* ---- Structural comparison ---------------------------------------------- */

static int reply_eq(const aredis_reply *a, const aredis_reply *b) {
    if (!a || !b) return a == b;
    if (a->type != b->type || a->len != b->len || a->elements != b->elements ||
        a->integer != b->integer || strcmp(a->vtype, b->vtype) != 0)
        return 0;
    if ((a->str == NULL) != (b->str == NULL)) return 0;
    if (a->str && memcmp(a->str, b->str, a->len + 1) != 0) return 0; /* NUL included */
    if (memcmp(&a->dval, &b->dval, sizeof a->dval) != 0) return 0;   /* nan == nan */
    if (!reply_eq(a->attribute, b->attribute)) return 0;
    for (size_t i = 0; i < a->elements; i++)
        if (!reply_eq(a->element[i], b->element[i])) return 0;
    return 1;
}

static void outcome_free(outcome *o) {
    for (size_t i = 0; i < o->n; i++)
        aredis_reply_free(o->rep[i]);
    o->n = 0;
}

static void outcome_expect(const outcome *want, const outcome *got, const char *how, size_t arg) {
    if (got->n != want->n) fail_msg("%s(%zu): %zu replies, want %zu", how, arg, got->n, want->n);
    for (size_t i = 0; i < want->n; i++)
        if (!reply_eq(want->rep[i], got->rep[i]))
            fail_msg("%s(%zu): reply %zu differs", how, arg, i);
    if (got->err != want->err || strcmp(got->errstr, want->errstr) != 0)
        fail_msg("%s(%zu): error %d '%s', want %d '%s'", how, arg, (int)got->err, got->errstr,
                 (int)want->err, want->errstr);
}

/* ---- Feeding ------------------------------------------------------------ */

/* Take every reply now available; record a final error. Returns 0 on error. */
static int drain(aredis_reader *r, outcome *o) {
    void *rep;
    aredis_err e;
    while ((e = aredis_reader_get_reply(r, &rep)) == AREDIS_ERR_OK && rep) {
        assert_true(o->n < MAX_REPLIES);
        o->rep[o->n++] = rep;
    }
    if (e != AREDIS_ERR_OK) {
        o->err = e;
        snprintf(o->errstr, sizeof o->errstr, "%s", aredis_reader_errstr(r));
        return 0;
    }
    return 1;
}

/* How the next chunk is chosen: fixed `step`, or pseudo-random from `seed`. */
typedef struct cutter {
    size_t step; /* 0: random sizes */
    unsigned seed;
    size_t split_at; /* SIZE_MAX: not used; else two feeds cut here */
} cutter;

static size_t next_chunk(cutter *c, size_t off, size_t left) {
    size_t n;
    if (c->split_at != SIZE_MAX)
        n = off < c->split_at ? c->split_at - off : left;
    else if (c->step)
        n = c->step;
    else {
        c->seed = c->seed * 1103515245u + 12345u;
        n = 1 + (c->seed >> 16) % 97;
    }
    return n < left ? n : left;
}

static void parse_cut(const char *in, size_t len, cutter c, int zero_copy, outcome *o) {
    memset(o, 0, sizeof *o);
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    assert_non_null(r);
    size_t off = 0;
    while (off < len) {
        size_t n = next_chunk(&c, off, len - off);
        if (zero_copy) {
            size_t avail;
            char *p = aredis_reader_space(r, n, &avail);
            assert_non_null(p);
            assert_true(avail >= n);
            memcpy(p, in + off, n);
            aredis_reader_commit(r, n);
        } else {
            aredis_err e = aredis_reader_feed(r, in + off, n);
            if (e != AREDIS_ERR_OK) {
                assert_int_equal(e, o->err); /* only after an error */
                break;
            }
        }
        off += n;
        if (!drain(r, o)) break;
    }
    if (off >= len) drain(r, o);
    aredis_reader_free(r);
}

static void parse_once(const char *in, size_t len, outcome *o) {
    cutter c = {.step = len ? len : 1, .split_at = SIZE_MAX};
    parse_cut(in, len, c, 0, o);
}

/* ---- The stream --------------------------------------------------------- */

typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void add(text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = '\0';
}
#define ADD(t, lit) add(t, lit, sizeof(lit) - 1)

static void build_stream(text *t) {
    ADD(t, "+OK\r\n-ERR bad thing\r\n:0\r\n:-9223372036854775808\r\n:42\r\n");
    ADD(t, "$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n_\r\n");
    ADD(t, "$8\r\n\r\n\0\r\n$1\r\r\n"); /* CRLFs and a NUL inside a blob */
    ADD(t, ",3.14\r\n,-inf\r\n,inf\r\n,nan\r\n,1e-3\r\n#t\r\n#f\r\n");
    ADD(t, "(12345678901234567890123456789\r\n!10\r\nERR blob e\r\n=9\r\ntxt:hello\r\n");
    ADD(t, "*0\r\n%0\r\n~0\r\n");
    ADD(t, "*3\r\n:1\r\n*2\r\n+a\r\n*1\r\n$1\r\nb\r\n%1\r\n+k\r\n~2\r\n#t\r\n_\r\n");
    ADD(t, "%2\r\n$3\r\nkey\r\n*2\r\n:1\r\n:2\r\n+k2\r\n%1\r\n(1\r\n,2.5\r\n");
    ADD(t, ">4\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n*0\r\n");
    /* Attributes: top level, inside an array, before an aggregate, nested. */
    ADD(t, "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.81\r\n");
    ADD(t, "*2\r\n:2039123\r\n:9543892\r\n");
    ADD(t, "*3\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n|2\r\n+a\r\n*1\r\n:1\r\n+b\r\n_\r\n"
           "%1\r\n+x\r\n+y\r\n");
    ADD(t, "|1\r\n+a\r\n|1\r\n+x\r\n+y\r\n+b\r\n>2\r\n+invalidate\r\n*1\r\n$3\r\nkey\r\n");
    ADD(t, "|0\r\n|1\r\n+m\r\n+n\r\n:7\r\n");
    /* A blob larger than the reader's first buffer. */
    char big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    big[100] = '\r';
    big[101] = '\n';
    ADD(t, "*2\r\n$3000\r\n");
    add(t, big, sizeof big);
    ADD(t, "\r\n=3004\r\nmkd:");
    add(t, big, 3000);
    ADD(t, "\r\n");
    /* Deep-ish nesting. */
    for (int i = 0; i < 40; i++)
        ADD(t, "*1\r\n");
    ADD(t, ":1\r\n");
    ADD(t, "+done\r\n");
    /*
     * Big top-level blobs, which take the reader's buffer as their memory
     * when they end the bytes fed so far (so for some cuts and not others),
     * and one after an attribute, which never does.
     */
    ADD(t, "$2000\r\n");
    add(t, big, 2000);
    ADD(t, "\r\n=1504\r\ntxt:");
    add(t, big + 1000, 1500);
    ADD(t, "\r\n|1\r\n+a\r\n+b\r\n$1200\r\n");
    add(t, big, 1200);
    ADD(t, "\r\n+");
    for (int i = 0; i < 1100; i++)
        ADD(t, "s");
    ADD(t, "\r\n");
}

/* Replies up to "+done", then the big ones. */
#define STREAM_REPLIES 34
#define STREAM_TOTAL (STREAM_REPLIES + 4)

/* ---- Tests -------------------------------------------------------------- */

static void check_all_cuts(const text *t, const outcome *want) {
    outcome got;
    for (size_t at = 0; at <= t->n; at++) {
        cutter c = {.split_at = at};
        parse_cut(t->s, t->n, c, 0, &got);
        outcome_expect(want, &got, "split", at);
        outcome_free(&got);
    }
    for (size_t step = 1; step <= 9; step++) {
        cutter c = {.step = step, .split_at = SIZE_MAX};
        parse_cut(t->s, t->n, c, step % 2, &got);
        outcome_expect(want, &got, "step", step);
        outcome_free(&got);
    }
    for (unsigned seed = 1; seed <= 40; seed++) {
        cutter c = {.seed = seed, .split_at = SIZE_MAX};
        parse_cut(t->s, t->n, c, seed % 2, &got);
        outcome_expect(want, &got, "random", seed);
        outcome_free(&got);
    }
}

static void test_every_split(void **state) {
    (void)state;
    text t = {0};
    build_stream(&t);
    outcome want;
    parse_once(t.s, t.n, &want);
    assert_int_equal(want.err, AREDIS_ERR_OK);
    assert_int_equal(want.n, STREAM_TOTAL);
    /* Spot checks that the one-shot parse is itself right. */
    assert_int_equal(want.rep[0]->type, AREDIS_REPLY_STATUS);
    assert_int_equal(want.rep[10]->len, 8);
    assert_memory_equal(want.rep[10]->str, "\r\n\0\r\n$1\r", 8);
    aredis_reply *pop = want.rep[STREAM_REPLIES - 7];
    assert_int_equal(pop->type, AREDIS_REPLY_ARRAY);
    assert_non_null(pop->attribute);
    assert_int_equal(pop->attribute->elements, 2);
    assert_int_equal(pop->attribute->element[1]->elements, 4);
    aredis_reply *big = want.rep[STREAM_REPLIES - 3];
    assert_int_equal(big->element[1]->type, AREDIS_REPLY_VERB);
    assert_int_equal(big->element[1]->len, 3000);
    assert_string_equal(want.rep[STREAM_REPLIES - 1]->str, "done");
    assert_int_equal(want.rep[STREAM_REPLIES]->len, 2000);
    assert_string_equal(want.rep[STREAM_REPLIES + 1]->vtype, "txt");
    assert_int_equal(want.rep[STREAM_REPLIES + 1]->len, 1500);
    assert_non_null(want.rep[STREAM_REPLIES + 2]->attribute);
    assert_int_equal(want.rep[STREAM_REPLIES + 3]->len, 1100);
    check_all_cuts(&t, &want);
    outcome_free(&want);
    free(t.s);
}

static void test_every_split_then_error(void **state) {
    (void)state;
    static const char *const tails[] = {
        "*2\r\n:1\r\n%1\r\n+k\r\n:12x\r\n", /* error deep in a partial reply */
        "|1\r\n+a\r\n+b\r\n$3\r\nabcd\r\n", /* blob overrun after an attribute */
        "*1\r\n$?\r\n",                     /* streamed */
        "@",                                /* unknown type byte */
        "+OK\n",                            /* bare LF: the error needs the full line */
    };
    for (size_t k = 0; k < sizeof tails / sizeof *tails; k++) {
        text t = {0};
        build_stream(&t);
        add(&t, tails[k], strlen(tails[k]));
        if (k == 4) ADD(&t, "\r\n"); /* ... "+OK\n\r\n" */
        outcome want;
        parse_once(t.s, t.n, &want);
        assert_int_equal(want.err, AREDIS_ERR_PROTOCOL);
        assert_int_equal(want.n, STREAM_TOTAL);
        check_all_cuts(&t, &want);
        outcome_free(&want);
        free(t.s);
    }
}

/* One byte at a time, replies taken after every byte. */
static void test_byte_at_a_time(void **state) {
    (void)state;
    text t = {0};
    build_stream(&t);
    outcome want, got;
    parse_once(t.s, t.n, &want);
    memset(&got, 0, sizeof got);
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    for (size_t i = 0; i < t.n; i++) {
        assert_int_equal(aredis_reader_feed(r, t.s + i, 1), AREDIS_ERR_OK);
        assert_true(drain(r, &got));
    }
    assert_int_equal(aredis_reader_pending(r), 0);
    aredis_reader_free(r);
    outcome_expect(&want, &got, "bytes", 1);
    outcome_free(&got);
    outcome_free(&want);
    free(t.s);
}

/*
 * Feeding the whole stream before taking any reply, and taking replies only
 * every few feeds, must not matter either.
 */
static void test_lazy_drain(void **state) {
    (void)state;
    text t = {0};
    build_stream(&t);
    outcome want, got;
    parse_once(t.s, t.n, &want);
    memset(&got, 0, sizeof got);
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    size_t feeds = 0;
    for (size_t off = 0; off < t.n; off += 13) {
        size_t n = t.n - off < 13 ? t.n - off : 13;
        assert_int_equal(aredis_reader_feed(r, t.s + off, n), AREDIS_ERR_OK);
        if (++feeds % 17 == 0) {
            void *rep;
            assert_int_equal(aredis_reader_get_reply(r, &rep), AREDIS_ERR_OK);
            if (rep) got.rep[got.n++] = rep;
        }
    }
    assert_true(drain(r, &got));
    aredis_reader_free(r);
    outcome_expect(&want, &got, "lazy", 13);
    outcome_free(&got);
    outcome_free(&want);
    free(t.s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_every_split_then_error),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_lazy_drain),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
