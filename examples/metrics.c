/*
 * metrics — the counters and histograms the library keeps itself
 * (aredis/observe.h, docs/OBSERVABILITY.md): attach a metrics object to a
 * client, run a few commands, then read a snapshot — operations by name and
 * outcome with their durations, bytes both ways, connects — and the same as
 * Prometheus text, ready for a /metrics endpoint.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_metrics   (that is the default)
 *
 * Exits 0 when the snapshot counts exactly what the example did.
 */
#include <aredis/aredis.h>
#include <aredis/observe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Await f (its outcome is counted either way) and release it. */
static void run(aredis_future *f) {
    aredis_await(f);
    aredis_future_release(f);
}

/* How many `name` operations the snapshot holds with this outcome
 * (error_type NULL: succeeded). */
static unsigned long long count(const aredis_metrics_snapshot *s, const char *name,
                                const char *error_type) {
    for (size_t i = 0; i < s->n_ops; i++) {
        const aredis_metrics_op *op = &s->ops[i];
        if (strcmp(op->name, name) == 0 &&
            (error_type ? op->error_type && strcmp(op->error_type, error_type) == 0
                        : op->error_type == NULL))
            return (unsigned long long)op->duration.count;
    }
    return 0;
}

int main(void) {
    const char *url = getenv("REDIS_URL");
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        return 2;
    }
    aredis_uri_apply(uri, &o);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    aredis_metrics *m = aredis_metrics_new();
    if (!c || !m) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    /* One metrics object may serve many clients and pools on one loop. */
    aredis_client_set_metrics(c, m);
    aredis_client_connect(c);

    /* The workload: 1 SET, 3 GETs, and an LPUSH the server refuses. The
     * handshake (HELLO...) is part of the connect, not an operation. */
    run(aredis_future_command(c, "SET %s %s", "example:metrics", "v"));
    for (int i = 0; i < 3; i++)
        run(aredis_future_command(c, "GET %s", "example:metrics"));
    run(aredis_future_command(c, "LPUSH %s %s", "example:metrics", "x")); /* WRONGTYPE */

    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    if (!s) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < s->n_ops; i++) {
        const aredis_metrics_op *op = &s->ops[i];
        printf("%-6s %-10s %llu op(s), %.3f ms in all\n", op->name,
               op->error_type ? op->error_type : "ok", (unsigned long long)op->duration.count,
               op->duration.sum_seconds * 1e3);
    }
    for (size_t i = 0; i < s->n_servers; i++)
        printf("%s:%d: %llu connect(s), %llu bytes out, %llu bytes in\n",
               s->servers[i].server_address, s->servers[i].server_port,
               (unsigned long long)s->servers[i].connects,
               (unsigned long long)s->servers[i].bytes_out,
               (unsigned long long)s->servers[i].bytes_in);
    int ok = count(s, "SET", NULL) == 1 && count(s, "GET", NULL) == 3 &&
             count(s, "LPUSH", "WRONGTYPE") == 1 && s->n_servers == 1 &&
             s->servers[0].connects == 1 && s->servers[0].bytes_in > 0;

    /* The same snapshot as Prometheus text (the library's allocator: free
     * it with aredis_mem_free). */
    size_t len;
    char *text = aredis_metrics_prometheus(s, &len);
    if (text) {
        printf("\n%s", text);
        aredis_mem_free(text);
    }
    aredis_metrics_snapshot_free(s);
    if (!ok || !text) fprintf(stderr, "the snapshot does not count what was done\n");

    aredis_client_free(c);
    aredis_metrics_free(m);
    aredis_loop_free(loop);
    return ok && text ? 0 : 1;
}
