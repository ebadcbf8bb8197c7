/*
 * A metrics snapshot as Prometheus text (exposition format 0.0.4), with
 * the OpenTelemetry names converted the way Prometheus converts them: dots
 * to underscores, the unit as a suffix, "_total" on counters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aredis/observe.h"
#include "util/alloc.h"
#include "util/buf.h"

typedef struct out {
    aredis__buf b;
    int failed;
} out;

static void put(out *o, const char *s, size_t n) {
    if (!o->failed && aredis__buf_append(&o->b, s, n) != 0) o->failed = 1;
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

static void putf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || o->failed || aredis__buf_reserve(&o->b, (size_t)n + 1) != 0) {
        o->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(o->b.data + o->b.len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->b.len += (size_t)n;
}

/* A label value: \\, \" and \n escaped; other control bytes and bytes
 * outside ASCII (a binary command name) as the text \xHH, so the output is
 * always valid UTF-8. */
static void value(out *o, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\')
            puts_(o, "\\\\");
        else if (*p == '"')
            puts_(o, "\\\"");
        else if (*p == '\n')
            puts_(o, "\\n");
        else if (*p < 0x20 || *p >= 0x7f)
            putf(o, "\\\\x%02X", *p);
        else
            put(o, (const char *)p, 1);
    }
}

static void label(out *o, int first, const char *name, const char *v) {
    if (!first) puts_(o, ",");
    puts_(o, name);
    puts_(o, "=\"");
    value(o, v);
    puts_(o, "\"");
}

static void family(out *o, const char *name, const char *type, const char *help) {
    putf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The labels of one operation series (without braces). */
static void op_labels(out *o, const aredis_metrics_op *op) {
    char port[16];
    snprintf(port, sizeof port, "%d", op->server_port);
    label(o, 1, "db_system_name", "redis");
    label(o, 0, "db_operation_name", op->name);
    label(o, 0, "server_address", op->server_address);
    label(o, 0, "server_port", port);
    if (op->error_type) label(o, 0, "error_type", op->error_type);
}

static void pool_labels(out *o, const aredis_metrics_pool *p) {
    label(o, 1, "db_system_name", "redis");
    label(o, 0, "db_client_connection_pool_name", p->pool_name);
}

/* One histogram series: buckets, sum, count. */
typedef void labels_fn(out *o, const void *what);
static void histogram(out *o, const char *name, const aredis_histogram *h, labels_fn *labels,
                      const void *what) {
    for (size_t i = 0; i <= AREDIS_METRICS_BOUNDS; i++) {
        putf(o, "%s_bucket{", name);
        labels(o, what);
        if (i < AREDIS_METRICS_BOUNDS)
            putf(o, ",le=\"%g\"} %llu\n", aredis_metrics_bounds[i],
                 (unsigned long long)h->buckets[i]);
        else
            putf(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->buckets[i]);
    }
    putf(o, "%s_sum{", name);
    labels(o, what);
    putf(o, "} %.9f\n", h->sum_seconds);
    putf(o, "%s_count{", name);
    labels(o, what);
    putf(o, "} %llu\n", (unsigned long long)h->count);
}

static void op_labels_v(out *o, const void *w) { op_labels(o, w); }
static void pool_labels_v(out *o, const void *w) { pool_labels(o, w); }

static void server_counter(out *o, const aredis_metrics_snapshot *s, const char *name,
                           const char *help, size_t field) {
    if (!s->n_servers) return;
    family(o, name, "counter", help);
    for (size_t i = 0; i < s->n_servers; i++) {
        const aredis_metrics_server *v = &s->servers[i];
        uint64_t n;
        memcpy(&n, (const char *)v + field, sizeof n);
        char port[16];
        snprintf(port, sizeof port, "%d", v->server_port);
        putf(o, "%s{", name);
        label(o, 1, "db_system_name", "redis");
        label(o, 0, "server_address", v->server_address);
        label(o, 0, "server_port", port);
        putf(o, "} %llu\n", (unsigned long long)n);
    }
}

static void pool_gauge(out *o, const aredis_metrics_snapshot *s, const char *name, const char *type,
                       const char *help, size_t field, const char *state) {
    if (!s->n_pools) return;
    if (type) family(o, name, type, help);
    for (size_t i = 0; i < s->n_pools; i++) {
        const aredis_metrics_pool *p = &s->pools[i];
        size_t n;
        memcpy(&n, (const char *)p + field, sizeof n);
        putf(o, "%s{", name);
        pool_labels(o, p);
        if (state) label(o, 0, "db_client_connection_state", state);
        putf(o, "} %zu\n", n);
    }
}

char *aredis_metrics_prometheus(const aredis_metrics_snapshot *s, size_t *len) {
    out o = {{0}, 0};
    if (!s) return NULL;
    if (s->n_ops) {
        const char *n = "db_client_operation_duration_seconds";
        family(&o, n, "histogram", "Duration of database client operations.");
        for (size_t i = 0; i < s->n_ops; i++)
            histogram(&o, n, &s->ops[i].duration, op_labels_v, &s->ops[i]);
    }
    if (s->n_servers) {
        const char *n = "aredis_client_network_io_bytes_total";
        family(&o, n, "counter", "Bytes written to and read from the server.");
        for (size_t i = 0; i < s->n_servers; i++) {
            const aredis_metrics_server *v = &s->servers[i];
            char port[16];
            snprintf(port, sizeof port, "%d", v->server_port);
            for (int d = 0; d < 2; d++) {
                putf(&o, "%s{", n);
                label(&o, 1, "db_system_name", "redis");
                label(&o, 0, "network_io_direction", d ? "receive" : "transmit");
                label(&o, 0, "server_address", v->server_address);
                label(&o, 0, "server_port", port);
                putf(&o, "} %llu\n", (unsigned long long)(d ? v->bytes_in : v->bytes_out));
            }
        }
    }
    server_counter(&o, s, "aredis_client_connects_total", "Connections made (handshake done).",
                   offsetof(aredis_metrics_server, connects));
    server_counter(&o, s, "aredis_client_connect_failures_total", "Connect attempts that failed.",
                   offsetof(aredis_metrics_server, connect_failures));
    server_counter(&o, s, "aredis_client_reconnect_attempts_total",
                   "Reconnect attempts scheduled after a lost connection.",
                   offsetof(aredis_metrics_server, reconnect_attempts));
    server_counter(&o, s, "aredis_client_timeouts_total", "Operations failed with a timeout.",
                   offsetof(aredis_metrics_server, timeouts));
    pool_gauge(&o, s, "db_client_connection_count", "gauge", "Connections of the pool, by state.",
               offsetof(aredis_metrics_pool, idle), "idle");
    pool_gauge(&o, s, "db_client_connection_count", NULL, NULL, offsetof(aredis_metrics_pool, used),
               "used");
    pool_gauge(&o, s, "db_client_connection_pending_requests", "gauge",
               "Requests waiting for a pool connection.", offsetof(aredis_metrics_pool, pending),
               NULL);
    pool_gauge(&o, s, "db_client_connection_max", "gauge", "The pool's maximum connections.",
               offsetof(aredis_metrics_pool, max), NULL);
    if (s->n_pools) {
        const char *n = "db_client_connection_timeouts_total";
        family(&o, n, "counter", "Waits for a pool connection that timed out.");
        for (size_t i = 0; i < s->n_pools; i++) {
            putf(&o, "%s{", n);
            pool_labels(&o, &s->pools[i]);
            putf(&o, "} %llu\n", (unsigned long long)s->pools[i].timeouts);
        }
        n = "db_client_connection_wait_time_seconds";
        family(&o, n, "histogram", "Time to obtain a pool connection.");
        for (size_t i = 0; i < s->n_pools; i++)
            histogram(&o, n, &s->pools[i].wait, pool_labels_v, &s->pools[i]);
    }
    put(&o, "", 1); /* the NUL */
    if (o.failed) {
        aredis__buf_free(&o.b);
        return NULL;
    }
    if (len) *len = o.b.len - o.b.off - 1;
    char *text = aredis__memdup0(o.b.data + o.b.off, o.b.len - o.b.off - 1);
    aredis__buf_free(&o.b);
    return text;
}
