/*
 * A writer for the failover tests (failover.c, switch.c): pairs of SET k<i>
 * v<i> / GET k<i>, `depth` pairs in flight at all times, each completed pair
 * replaced by the next — an application that knows nothing of failovers.
 * Every callback is checked to run once and to get its own command's
 * reply: a SET gets +OK, a GET its pair's value (or nil when its SET may
 * not have reached the server that answered: a write lost with the old
 * primary, or one that failed). Anything else is a reply handed to the
 * wrong command.
 */
#ifndef AREDIS_TEST_SENTINEL_WRITER_H
#define AREDIS_TEST_SENTINEL_WRITER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"

typedef struct writer {
    aredis_client *c;
    int depth;
    int stop;
    long next;
    size_t issued, done;        /* commands */
    size_t ok;                  /* pairs that wrote and read back */
    size_t ok_on_target;        /* ... while the client was on `target_port` */
    int target_port;            /* 0: none */
    size_t conn_errors;         /* commands failed with a connection error */
    size_t other_errors, wrong; /* must stay 0 */
    size_t nil_reads, twice;    /* GETs that found nothing; callbacks run twice */
    long last_ok;               /* the last pair written and read back */
    char first_problem[256];
} writer;

typedef struct wpair {
    writer *w;
    long i;
    int set_done, get_done, set_failed;
} wpair;

static void writer_problem(writer *w, const char *fmt, const char *a, const char *b) {
    if (!w->first_problem[0]) snprintf(w->first_problem, sizeof w->first_problem, fmt, a, b);
}

static void writer_issue(writer *w);

static int writer_on_target(writer *w) {
    int port = -1;
    return w->target_port && aredis_sentinel_current(w->c, NULL, 0, &port) == AREDIS_ERR_OK &&
           port == w->target_port && aredis_client_state(w->c) == AREDIS_STATE_READY;
}

static void writer_error(writer *w, const aredis_error *err) {
    if (aredis_err_is_connection(err->code) || err->code == AREDIS_ERR_EOF) {
        w->conn_errors++;
    } else {
        w->other_errors++;
        writer_problem(w, "%s: %s", aredis_err_name(err->code), err->detail);
    }
}

static void writer_on_set(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    wpair *p = data;
    writer *w = p->w;
    if (p->set_done++) {
        w->twice++;
        return;
    }
    w->done++;
    if (err) {
        p->set_failed = 1;
        writer_error(w, err);
    } else if (r->type != AREDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
        w->wrong++;
        writer_problem(w, "SET got %s %s", aredis_reply_type_name(r->type), r->str ? r->str : "");
    }
}

static void writer_on_get(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    wpair *p = data;
    writer *w = p->w;
    if (p->get_done++) {
        w->twice++;
        return;
    }
    w->done++;
    char want[32];
    snprintf(want, sizeof want, "v%ld", p->i);
    if (err) {
        writer_error(w, err);
    } else if (r->type == AREDIS_REPLY_NIL) {
        w->nil_reads++;
    } else if (r->type != AREDIS_REPLY_STRING || strcmp(r->str, want) != 0) {
        w->wrong++;
        writer_problem(w, "GET got %s %s", aredis_reply_type_name(r->type), r->str ? r->str : "");
    } else if (!p->set_failed) {
        w->ok++;
        w->last_ok = p->i;
        if (writer_on_target(w)) w->ok_on_target++;
    }
    /* The GET answers after its SET (one connection, in order). */
    if (!p->set_done) {
        w->wrong++;
        writer_problem(w, "GET of pair %s answered before its SET%s", "", "");
    }
    free(p);
    if (!w->stop) writer_issue(w);
}

static void writer_issue(writer *w) {
    wpair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->w = w;
    p->i = w->next++;
    char key[32], val[32];
    snprintf(key, sizeof key, "wk:%ld", p->i);
    snprintf(val, sizeof val, "v%ld", p->i);
    const char *set[] = {"SET", key, val};
    const char *get[] = {"GET", key};
    assert_int_equal(aredis_command_argv(w->c, writer_on_set, p, 3, set, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_command_argv(w->c, writer_on_get, p, 2, get, NULL), AREDIS_ERR_OK);
    w->issued += 2;
}

static void writer_start(writer *w, aredis_client *c, int depth) {
    memset(w, 0, sizeof *w);
    w->c = c;
    w->depth = depth;
    for (int i = 0; i < depth; i++)
        writer_issue(w);
}

static int writer_drained(const void *arg) {
    const writer *w = arg;
    return w->done == w->issued;
}

static int writer_moved_and_writing(const void *arg) {
    const writer *w = arg;
    return w->ok_on_target >= 200;
}

static int writer_ok_200(const void *arg) { return ((const writer *)arg)->ok >= 200; }

/* Stop issuing, wait for every callback, and check the books. */
static void writer_finish(writer *w, aredis_loop *loop) {
    w->stop = 1;
    assert_true(ts_wait_until(loop, writer_drained, w, 30000));
    ts_log("writer: %zu commands, %zu pairs read back, %zu connection errors, %zu nil reads",
           w->issued, w->ok, w->conn_errors, w->nil_reads);
    if (w->wrong || w->other_errors || w->twice)
        fail_msg("writer: %zu wrong replies, %zu other errors, %zu callbacks run twice; first: %s",
                 w->wrong, w->other_errors, w->twice, w->first_problem);
    assert_int_equal(w->done, w->issued);
    /* Only what was in flight when the connection went may have failed,
     * or found its write gone with the old primary. */
    assert_true(w->conn_errors <= (size_t)(2 * w->depth));
    assert_true(w->nil_reads <= (size_t)w->depth);
}

#endif
