/* Waiting on a pool or a client's counters, for tests (ts.h). */
#include "ts.h"

void ts_on_acquired(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data) {
    (void)p;
    ts_acquired *g = data;
    g->calls++;
    g->c = c;
    g->code = err ? err->code : AREDIS_ERR_OK;
}

typedef struct idle_arg {
    aredis_pool *p;
    size_t n;
} idle_arg;

static int idle_reached(const void *arg) {
    const idle_arg *a = arg;
    aredis_pool_stats s;
    aredis_pool_get_stats(a->p, &s);
    return s.idle == a->n;
}

int ts_wait_pool_idle(aredis_loop *loop, aredis_pool *p, size_t n, uint64_t timeout_ms) {
    idle_arg a = {p, n};
    return ts_wait_until(loop, idle_reached, &a, timeout_ms);
}

typedef struct sent_arg {
    aredis_client *c;
    uint64_t bytes;
} sent_arg;

static int bytes_out_above(const void *arg) {
    const sent_arg *a = arg;
    aredis_client_stats st;
    aredis_client_get_stats(a->c, &st);
    return st.bytes_out > a->bytes;
}

int ts_wait_bytes_out(aredis_loop *loop, aredis_client *c, uint64_t before, uint64_t timeout_ms) {
    sent_arg a = {c, before};
    return ts_wait_until(loop, bytes_out_above, &a, timeout_ms);
}
