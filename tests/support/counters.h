/*
 * Test support: connection-event counters wired into a client's options,
 * and a reply recorder.
 */
#ifndef AREDIS_TEST_COUNTERS_H
#define AREDIS_TEST_COUNTERS_H

#include <stdio.h>
#include <string.h>

#include "ts.h"

typedef struct {
    int connects;
    int disconnects;
    int errors;
    int attempts;
    uint64_t attempt_at[32]; /* when each reconnect was scheduled */
    uint32_t attempt_delay[32];
    uint64_t error_at[32]; /* when each connection error was reported */
    aredis_err last_disconnect;
    aredis_err last_error;
} conn_counters;

static inline void cc_on_connect(aredis_client *c, void *data) {
    (void)c;
    ((conn_counters *)data)->connects++;
}

static inline void cc_on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    conn_counters *k = data;
    k->disconnects++;
    k->last_disconnect = err->code;
}

static inline void cc_on_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c;
    conn_counters *k = data;
    if (k->errors < 32) k->error_at[k->errors] = ts_now_ms();
    k->errors++;
    k->last_error = err->code;
}

static inline void cc_on_attempt(aredis_client *c, unsigned attempt, uint32_t delay, void *data) {
    (void)c;
    (void)attempt;
    conn_counters *k = data;
    if (k->attempts < 32) {
        k->attempt_at[k->attempts] = ts_now_ms();
        k->attempt_delay[k->attempts] = delay;
    }
    k->attempts++;
}

static inline void cc_wire(aredis_options *o, conn_counters *k) {
    memset(k, 0, sizeof *k);
    o->on_connect = cc_on_connect;
    o->on_disconnect = cc_on_disconnect;
    o->on_error = cc_on_error;
    o->on_reconnect_attempt = cc_on_attempt;
    o->cb_data = k;
}

/* Assert every count at once; a failure shows them all. */
static inline void cc_expect(const conn_counters *k, int connects, int disconnects, int errors,
                             int attempts) {
    if (k->connects != connects || k->disconnects != disconnects || k->errors != errors ||
        k->attempts != attempts)
        fail_msg("connects %d, disconnects %d, errors %d, reconnect attempts %d; "
                 "want %d, %d, %d, %d",
                 k->connects, k->disconnects, k->errors, k->attempts, connects, disconnects, errors,
                 attempts);
}

typedef struct {
    const conn_counters *k;
    int n;
} cc_attempts_arg;

static inline int cc_attempts_reached(const void *p) {
    const cc_attempts_arg *a = p;
    return a->k->attempts >= a->n;
}

/* Run loop until k has seen n reconnect attempts, or timeout_ms passes:
 * 1 if it has. */
static inline int cc_wait_attempts(aredis_loop *loop, const conn_counters *k, int n,
                                   uint64_t timeout_ms) {
    cc_attempts_arg a = {k, n};
    return ts_wait_until(loop, cc_attempts_reached, &a, timeout_ms);
}

/* Reply recorder: the shared one from test support. */
typedef ts_result reply_rec;

#endif
