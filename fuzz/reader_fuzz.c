/*
 * libFuzzer target for the RESP reader.
 *
 * Input: one control byte, then the RESP stream.
 *   bits 0-5  chunk size - 1 (1..64): the stream is fed in pieces this big
 *   bit 6     small limits (bulk 64, elements 16, depth 8) instead of defaults
 *   bit 7     feed through aredis_reader_space()/commit() instead of feed()
 *
 * The stream is parsed twice — in one feed, and in chunks, taking replies
 * after every chunk — and both runs must give the same replies and the same
 * error (a differential check of the incremental parser). Every reply is
 * checked for the invariants the header promises, then freed; ASan/UBSan and
 * LeakSanitizer catch the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/reader.h"
#include "aredis/reply.h"

#define MAX_REPLIES 256

typedef struct run {
    aredis_reply *rep[MAX_REPLIES];
    size_t n;
    aredis_err err;
    char errstr[128];
} run;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Depth is bounded by max_depth (at most 128 here), so recursion is safe. */
static void check_reply(const aredis_reply *r) {
    if (!r) abort();
    if (r->attribute) {
        if (r->attribute->type != AREDIS_REPLY_ATTR) abort();
        check_reply(r->attribute);
    }
    switch (r->type) {
    case AREDIS_REPLY_STRING:
    case AREDIS_REPLY_STATUS:
    case AREDIS_REPLY_ERROR:
    case AREDIS_REPLY_BIGNUM:
    case AREDIS_REPLY_VERB:
    case AREDIS_REPLY_DOUBLE:
        if (!r->str || r->str[r->len] != '\0') abort();
        break;
    case AREDIS_REPLY_ARRAY:
    case AREDIS_REPLY_SET:
    case AREDIS_REPLY_PUSH:
    case AREDIS_REPLY_MAP:
    case AREDIS_REPLY_ATTR:
        if ((r->type == AREDIS_REPLY_MAP || r->type == AREDIS_REPLY_ATTR) && r->elements % 2)
            abort();
        for (size_t i = 0; i < r->elements; i++)
            check_reply(r->element[i]);
        break;
    case AREDIS_REPLY_BOOL:
        if (r->integer != 0 && r->integer != 1) abort();
        break;
    case AREDIS_REPLY_INTEGER:
    case AREDIS_REPLY_NIL:
        break;
    default:
        abort();
    }
}

static int same_reply(const aredis_reply *a, const aredis_reply *b) {
    if (!a || !b) return a == b;
    if (a->type != b->type || a->len != b->len || a->elements != b->elements ||
        a->integer != b->integer || memcmp(a->vtype, b->vtype, sizeof a->vtype) != 0 ||
        memcmp(&a->dval, &b->dval, sizeof a->dval) != 0)
        return 0;
    if ((a->str == NULL) != (b->str == NULL)) return 0;
    if (a->str && memcmp(a->str, b->str, a->len) != 0) return 0;
    if (!same_reply(a->attribute, b->attribute)) return 0;
    for (size_t i = 0; i < a->elements; i++)
        if (!same_reply(a->element[i], b->element[i])) return 0;
    return 1;
}

/* Take every reply available now. Returns 0 once the reader failed. */
static int drain(aredis_reader *r, run *out) {
    void *rep;
    aredis_err e;
    while ((e = aredis_reader_get_reply(r, &rep)) == AREDIS_ERR_OK && rep) {
        check_reply(rep);
        if (out->n == MAX_REPLIES) {
            aredis_reply_free(rep); /* still parsed and checked, just not compared */
            continue;
        }
        out->rep[out->n++] = rep;
    }
    if (e == AREDIS_ERR_OK) return 1;
    out->err = e;
    strncpy(out->errstr, aredis_reader_errstr(r), sizeof out->errstr - 1);
    /* Sticky. */
    if (aredis_reader_get_reply(r, &rep) != e || rep) abort();
    return 0;
}

static void parse(const char *s, size_t n, size_t chunk, int small, int zero_copy, run *out) {
    memset(out, 0, sizeof *out);
    aredis_reader *r = aredis_reader_new(NULL, NULL);
    if (!r) return;
    if (small) {
        aredis_reader_limits l = {64, 16, 8};
        aredis_reader_set_limits(r, &l);
    }
    for (size_t off = 0; off < n;) {
        size_t k = n - off < chunk ? n - off : chunk;
        if (zero_copy) {
            size_t avail;
            char *p = aredis_reader_space(r, k, &avail);
            if (!p || avail < k) abort();
            memcpy(p, s + off, k);
            aredis_reader_commit(r, k);
        } else if (aredis_reader_feed(r, s + off, k) != AREDIS_ERR_OK) {
            abort(); /* no allocation failure here, and we stop at the first error */
        }
        off += k;
        if (!drain(r, out)) break;
    }
    aredis_reader_free(r);
}

static void run_free(run *x) {
    for (size_t i = 0; i < x->n; i++)
        aredis_reply_free(x->rep[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned ctl = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    int small = (ctl >> 6) & 1, zero_copy = (ctl >> 7) & 1;

    run whole, pieces;
    parse(s, n, n ? n : 1, small, 0, &whole);
    parse(s, n, (ctl & 0x3f) + 1, small, zero_copy, &pieces);

    if (whole.n != pieces.n || whole.err != pieces.err || strcmp(whole.errstr, pieces.errstr) != 0)
        abort();
    for (size_t i = 0; i < whole.n; i++)
        if (!same_reply(whole.rep[i], pieces.rep[i])) abort();
    run_free(&whole);
    run_free(&pieces);
    return 0;
}
