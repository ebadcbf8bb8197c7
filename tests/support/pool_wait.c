/* Pool helpers for tests (ts.h). */
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
