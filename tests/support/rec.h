/*
 * Test support: recording a command's (or an exec's) outcome in a callback,
 * and checking replies. Include after ts.h.
 *
 *   ts_rec x = {0};
 *   aredis_pipeline_exec(p, ts_on_rec, &x);
 *   ts_rec_wait(loop, &x, 5000);
 *   ts_assert_array(x.r, 3);
 *   ts_rec_clear(&x);          // releases the retained reply
 */
#ifndef AREDIS_TS_REC_H
#define AREDIS_TS_REC_H

#include "ts.h"

typedef struct ts_rec {
    int calls;        /* times the callback ran */
    int seq;          /* completion order across every recorder of the process */
    aredis_err code;  /* OK, or the error's code */
    char prefix[32];  /* the error's prefix */
    char detail[400]; /* the error's detail */
    aredis_reply *r;  /* the reply given, retained; NULL when none */
    uint64_t at;      /* ts_now_ms() at completion */
    size_t *counter;  /* bumped at every completion, when set */
} ts_rec;

/* An aredis_reply_fn recording into the ts_rec given as data. */
void ts_on_rec(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);
/* Release the reply and zero the record. */
void ts_rec_clear(ts_rec *x);
/* Run loop until x's callback has run, asserting it does within ms. */
void ts_rec_wait(aredis_loop *loop, ts_rec *x, uint64_t ms);

/* r is a STATUS / STRING with exactly s, an INTEGER v, an ARRAY of n. */
void ts_assert_status(const aredis_reply *r, const char *s);
void ts_assert_str(const aredis_reply *r, const char *s);
void ts_assert_int(const aredis_reply *r, long long v);
void ts_assert_array(const aredis_reply *r, size_t n);

#endif
