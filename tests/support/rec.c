/* Test support: outcome recorders and reply checks (rec.h). */
#include "rec.h"

#include <stdio.h>
#include <string.h>

static int g_seq;

void ts_on_rec(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    ts_rec *x = data;
    x->calls++;
    x->seq = ++g_seq;
    x->at = ts_now_ms();
    x->code = err ? err->code : AREDIS_ERR_OK;
    snprintf(x->prefix, sizeof x->prefix, "%s", err ? err->prefix : "");
    snprintf(x->detail, sizeof x->detail, "%s", err ? err->detail : "");
    aredis_reply_release(x->r);
    x->r = r ? aredis_reply_retain(r) : NULL;
    if (x->counter) (*x->counter)++;
}

void ts_rec_clear(ts_rec *x) {
    aredis_reply_release(x->r);
    memset(x, 0, sizeof *x);
}

static int rec_done(const void *arg) { return ((const ts_rec *)arg)->calls > 0; }

void ts_rec_wait(aredis_loop *loop, ts_rec *x, uint64_t ms) {
    assert_true(ts_wait_until(loop, rec_done, x, ms));
}

void ts_assert_status(const aredis_reply *r, const char *s) {
    assert_non_null(r);
    assert_int_equal(r->type, AREDIS_REPLY_STATUS);
    assert_string_equal(r->str, s);
}

void ts_assert_str(const aredis_reply *r, const char *s) {
    assert_non_null(r);
    assert_int_equal(r->type, AREDIS_REPLY_STRING);
    assert_string_equal(r->str, s);
}

void ts_assert_int(const aredis_reply *r, long long v) {
    assert_non_null(r);
    assert_int_equal(r->type, AREDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, v);
}

void ts_assert_array(const aredis_reply *r, size_t n) {
    assert_non_null(r);
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, n);
}
