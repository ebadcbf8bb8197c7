/*
 * otlp_exporter — turn aredis's observer callbacks into OpenTelemetry spans
 * and its metrics into OpenTelemetry metrics, written as OTLP/JSON lines:
 * the encoding the OpenTelemetry Collector's file receiver (otlpjsonfile)
 * reads. One line per batch of spans, then one line of metrics at the end.
 *
 *   ./example_otlp_exporter [redis-url] [output-file]
 *       redis-url    default $REDIS_URL, else redis://127.0.0.1:6379
 *       output-file  default (or "-"): stdout
 *   OTEL_SERVICE_NAME names the service (default "aredis-otlp-example").
 *
 * It runs a small workload under one parent span ("workload"): a few SET
 * and GET, an INCR the server refuses (a span with status ERROR), a
 * pipeline (one span "BATCH ..."), a transaction (one span "MULTI"), and
 * a GET through a pool (whose connections are observed too).
 *
 * The OTLP/JSON rules it follows: 64-bit integers as decimal strings,
 * trace and span ids as lowercase hex, span kind CLIENT = 3 (INTERNAL = 1),
 * status code ERROR = 2 (an empty status object is UNSET: success).
 * A real program would hand spans to its tracing SDK instead; the shape of
 * the callbacks stays the same. The ids come from a small PRNG seeded by
 * the time and pid: fine for an example, not for production.
 */
#include <aredis/aredis.h>
#include <aredis/observe.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SPANS_PER_BATCH 8 /* spans per line: a real exporter also flushes on a timer */

/* ---- A growable string ---------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_grow(sbuf *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- JSON values ------------------------------------------------------------ */

/* A JSON string: quotes, backslash and control characters escaped. Bytes
 * from 0x80 up are copied as they are (UTF-8 passes through). */
static void json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"')
            sb_put(b, "\\\"", 2);
        else if (*p == '\\')
            sb_put(b, "\\\\", 2);
        else if (*p < 0x20)
            sb_printf(b, "\\u%04x", *p);
        else
            sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

/* A double, in the fewest digits that read back the same (0.001, not
 * 0.0010000000000000000208). JSON has no NaN or infinity: 0 then. */
static void json_double(sbuf *b, double v) {
    if (!isfinite(v)) v = 0;
    char tmp[40];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(tmp, sizeof tmp, "%.*g", digits, v);
        if (strtod(tmp, NULL) == v) break;
    }
    sb_puts(b, tmp);
}

/* OTLP/JSON writes 64-bit integers as decimal strings. */
static void json_u64(sbuf *b, uint64_t v) { sb_printf(b, "\"%llu\"", (unsigned long long)v); }

/* One attribute: {"key":"k","value":{"stringValue":"v"}}, with a leading
 * comma unless it is the first of its list (*first). */
static void attr_open(sbuf *b, int *first, const char *key) {
    if (!*first) sb_put(b, ",", 1);
    *first = 0;
    sb_puts(b, "{\"key\":");
    json_str(b, key);
    sb_puts(b, ",\"value\":{");
}

static void attr_str(sbuf *b, int *first, const char *key, const char *value) {
    attr_open(b, first, key);
    sb_puts(b, "\"stringValue\":");
    json_str(b, value);
    sb_puts(b, "}}");
}

static void attr_int(sbuf *b, int *first, const char *key, long long value) {
    attr_open(b, first, key);
    sb_printf(b, "\"intValue\":\"%lld\"}}", value);
}

/* ---- Ids and clocks ---------------------------------------------------------- */

static uint64_t g_rng; /* seeded in main() */

/* splitmix64: a small, good PRNG (ids only need to be unlikely to repeat). */
static uint64_t rng_next(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* An id of n bytes, never all zero (OTLP reads all-zero as "no id"). */
static void new_id(unsigned char *id, size_t n) {
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = rng_next();
            for (size_t j = 0; j < 8 && i + j < n; j++)
                id[i + j] = (unsigned char)(r >> (8 * j));
        }
    } while (id[0] == 0 && memcmp(id, id + 1, n - 1) == 0);
}

static void json_hex(sbuf *b, const unsigned char *id, size_t n) {
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%02x", id[i]);
    sb_put(b, "\"", 1);
}

static int64_t now_unix_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- Spans ------------------------------------------------------------------- */

/* A span's identity: what a child needs to know of its parent. */
typedef struct span_ctx {
    unsigned char trace_id[16];
    unsigned char span_id[8];
} span_ctx;

/* What command_start hands to command_end through op->span. */
typedef struct op_span {
    span_ctx ctx;
    unsigned char parent_id[8];
    int has_parent;
} op_span;

/*
 * The exporter: where lines go, and the spans waiting to be written (their
 * JSON, comma-separated, for the next line).
 */
typedef struct exporter {
    FILE *out;
    const char *service;
    sbuf spans;
    int n_spans;           /* in `spans` */
    unsigned long dropped; /* spans lost (out of memory at command_start) */
} exporter;

/*
 * TRACE CONTEXT, two ways. A tracer that keeps "the current span" in a
 * thread-local can let aredis read it: command_start runs on the thread
 * that issues the command, inside the call, so t_current is the caller's
 * current span there. Or the application says it explicitly with
 * aredis_client_set_trace_parent(c, &ctx): every command issued from then
 * on carries it as op->parent. This example uses both: the explicit form
 * on its client, and the thread-local for the pool's connections (clients
 * the pool makes, on which the application sets nothing). main() sets
 * both around the workload.
 */
static _Thread_local const span_ctx *t_current;

/* The resource and scope, then the spans of one line. */
static void write_spans_line(exporter *x, const char *scope, const char *spans) {
    sbuf line = {0};
    sb_puts(&line, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    int first = 1;
    attr_str(&line, &first, "service.name", x->service);
    sb_puts(&line, "]},\"scopeSpans\":[{\"scope\":{\"name\":");
    json_str(&line, scope);
    sb_puts(&line, ",\"version\":");
    json_str(&line, AREDIS_VERSION_STRING);
    sb_puts(&line, "},\"spans\":[");
    sb_puts(&line, spans);
    sb_puts(&line, "]}]}]}\n");
    fwrite(line.p, 1, line.len, x->out);
    fflush(x->out);
    free(line.p);
}

/* Write the spans waiting, if any, as one line. */
static void flush_spans(exporter *x) {
    if (x->n_spans == 0) return;
    write_spans_line(x, "aredis", x->spans.p);
    x->spans.len = 0;
    x->n_spans = 0;
}

/* The fields every span has: ids, name, kind, times. */
static void span_head(sbuf *b, const span_ctx *ctx, const unsigned char *parent_id,
                      const char *name, int kind, int64_t start_ns, int64_t end_ns) {
    sb_puts(b, "{\"traceId\":");
    json_hex(b, ctx->trace_id, 16);
    sb_puts(b, ",\"spanId\":");
    json_hex(b, ctx->span_id, 8);
    if (parent_id) {
        sb_puts(b, ",\"parentSpanId\":");
        json_hex(b, parent_id, 8);
    }
    sb_puts(b, ",\"name\":");
    json_str(b, name);
    sb_printf(b, ",\"kind\":%d,\"startTimeUnixNano\":", kind);
    json_u64(b, (uint64_t)start_ns);
    sb_puts(b, ",\"endTimeUnixNano\":");
    json_u64(b, (uint64_t)end_ns);
}

/* An operation's attributes, by the OpenTelemetry database conventions;
 * the optional ones only when aredis set them. */
static void op_attributes(sbuf *b, const aredis_op *op) {
    int first = 1;
    char db[16];
    snprintf(db, sizeof db, "%d", op->db);
    sb_puts(b, ",\"attributes\":[");
    attr_str(b, &first, "db.system.name", "redis");
    attr_str(b, &first, "db.operation.name", op->name);
    attr_str(b, &first, "db.namespace", db); /* a string in the conventions */
    if (op->server_address) attr_str(b, &first, "server.address", op->server_address);
    if (op->server_port) attr_int(b, &first, "server.port", op->server_port);
    if (op->peer_address) attr_str(b, &first, "network.peer.address", op->peer_address);
    if (op->peer_port) attr_int(b, &first, "network.peer.port", op->peer_port);
    if (op->batch_size) attr_int(b, &first, "db.operation.batch.size", (long long)op->batch_size);
    if (op->query_text) attr_str(b, &first, "db.query.text", op->query_text);
    if (op->error_type) attr_str(b, &first, "error.type", op->error_type);
    if (op->status_code) attr_str(b, &first, "db.response.status_code", op->status_code);
    sb_puts(b, "]");
}

/* UNSET ({}) on success; ERROR with the error type as its message. */
static void op_status(sbuf *b, const aredis_op *op) {
    if (op->outcome == AREDIS_ERR_OK) {
        sb_puts(b, ",\"status\":{}}");
        return;
    }
    sb_puts(b, ",\"status\":{\"code\":2,\"message\":");
    json_str(b, op->error_type ? op->error_type : aredis_err_name(op->outcome));
    sb_puts(b, "}}");
}

/* command_start: a new span, child of the explicit parent or else of the
 * thread's current span. Nothing may be done with the client here. */
static void *on_command_start(const aredis_op *op, void *data) {
    (void)data;
    const span_ctx *parent = op->parent ? op->parent : t_current;
    op_span *s = calloc(1, sizeof *s);
    if (!s) return NULL; /* command_end counts it as dropped */
    if (parent) {
        memcpy(s->ctx.trace_id, parent->trace_id, sizeof s->ctx.trace_id);
        memcpy(s->parent_id, parent->span_id, sizeof s->parent_id);
        s->has_parent = 1;
    } else {
        new_id(s->ctx.trace_id, sizeof s->ctx.trace_id); /* a trace of its own */
    }
    new_id(s->ctx.span_id, sizeof s->ctx.span_id);
    return s;
}

/* command_end: the span as JSON into the batch; a full batch is a line. */
static void on_command_end(const aredis_op *op, void *data) {
    exporter *x = data;
    op_span *s = op->span;
    if (!s) {
        x->dropped++;
        return;
    }
    sbuf *b = &x->spans;
    if (x->n_spans > 0) sb_put(b, ",", 1);
    span_head(b, &s->ctx, s->has_parent ? s->parent_id : NULL, op->name, 3 /* CLIENT */,
              op->start_unix_ns, op->start_unix_ns + (int64_t)op->duration_ns);
    op_attributes(b, op);
    op_status(b, op);
    free(s);
    if (++x->n_spans == SPANS_PER_BATCH) flush_spans(x);
}

/* Connection events are not operations (the handshake is part of a
 * connect): here they go to stderr, a tracer might make them spans too. */
static void on_connection(const aredis_conn_event *ev, void *data) {
    (void)data;
    const char *what = ev->kind == AREDIS_CONN_CONNECT      ? "connect"
                       : ev->kind == AREDIS_CONN_DISCONNECT ? "disconnect"
                                                            : "reconnect scheduled";
    fprintf(stderr, "[otlp_exporter] %s %s:%d: %s (%.3f ms)\n", what,
            ev->server_address ? ev->server_address : "?", ev->server_port,
            ev->error_type ? ev->error_type : "ok", (double)ev->duration_ns / 1e6);
}

/* A wait for a pool connection ended (none was idle): to stderr too. */
static void on_pool_wait(const aredis_pool_wait_event *ev, void *data) {
    (void)data;
    fprintf(stderr, "[otlp_exporter] pool %s: waited %.3f ms for a connection: %s\n", ev->pool_name,
            (double)ev->duration_ns / 1e6, ev->error_type ? ev->error_type : "ok");
}

/* The application's own span around the workload (kind INTERNAL), under
 * the example's scope, not aredis's. It is a root: no parent. */
static void write_workload_span(exporter *x, const span_ctx *ctx, int64_t start_ns,
                                int64_t end_ns) {
    sbuf b = {0};
    span_head(&b, ctx, NULL, "workload", 1 /* INTERNAL */, start_ns, end_ns);
    sb_puts(&b, ",\"attributes\":[],\"status\":{}}");
    write_spans_line(x, "otlp_exporter", b.p);
    free(b.p);
}

/* ---- Metrics ------------------------------------------------------------------ */

/*
 * The metrics line is built one metric at a time; a metric with no data
 * points is left out. Times: start = when the metrics object was made,
 * now = the snapshot; every sum is cumulative (aggregationTemporality 2).
 */
typedef struct metrics_line {
    sbuf b;
    int n_metrics;
    int64_t start_ns, now_ns;
} metrics_line;

static void metric_open(metrics_line *m, const char *name, const char *unit, const char *kind) {
    if (m->n_metrics++) sb_put(&m->b, ",", 1);
    sb_puts(&m->b, "{\"name\":");
    json_str(&m->b, name);
    sb_puts(&m->b, ",\"unit\":");
    json_str(&m->b, unit);
    sb_printf(&m->b, ",\"%s\":{", kind);
}

static void point_times(metrics_line *m) {
    sb_puts(&m->b, "\"startTimeUnixNano\":");
    json_u64(&m->b, (uint64_t)m->start_ns);
    sb_puts(&m->b, ",\"timeUnixNano\":");
    json_u64(&m->b, (uint64_t)m->now_ns);
}

/* A histogram's point: OTLP wants each bucket's own count (aredis keeps
 * them cumulative, as Prometheus does) and the bounds, +Inf implied. */
static void histogram_point(metrics_line *m, const aredis_histogram *h) {
    sbuf *b = &m->b;
    point_times(m);
    sb_puts(b, ",\"count\":");
    json_u64(b, h->count);
    sb_puts(b, ",\"sum\":");
    json_double(b, h->sum_seconds);
    sb_puts(b, ",\"bucketCounts\":[");
    for (int i = 0; i <= AREDIS_METRICS_BOUNDS; i++) {
        uint64_t below = i ? h->buckets[i - 1] : 0;
        if (i) sb_put(b, ",", 1);
        json_u64(b, h->buckets[i] - below);
    }
    sb_puts(b, "],\"explicitBounds\":[");
    for (int i = 0; i < AREDIS_METRICS_BOUNDS; i++) {
        if (i) sb_put(b, ",", 1);
        json_double(b, aredis_metrics_bounds[i]);
    }
    sb_puts(b, "]}");
}

/* db.client.operation.duration: one point per server, name and outcome. */
static void metric_op_duration(metrics_line *m, const aredis_metrics_snapshot *s) {
    if (s->n_ops == 0) return;
    metric_open(m, "db.client.operation.duration", "s", "histogram");
    sb_puts(&m->b, "\"aggregationTemporality\":2,\"dataPoints\":[");
    for (size_t i = 0; i < s->n_ops; i++) {
        const aredis_metrics_op *op = &s->ops[i];
        int first = 1;
        sb_puts(&m->b, i ? ",{\"attributes\":[" : "{\"attributes\":[");
        attr_str(&m->b, &first, "db.system.name", "redis");
        attr_str(&m->b, &first, "db.operation.name", op->name);
        if (op->server_address) attr_str(&m->b, &first, "server.address", op->server_address);
        if (op->server_port) attr_int(&m->b, &first, "server.port", op->server_port);
        if (op->error_type) attr_str(&m->b, &first, "error.type", op->error_type);
        sb_puts(&m->b, "],");
        histogram_point(m, &op->duration);
    }
    sb_puts(&m->b, "]}}");
}

/* A point's server attributes, and an optional one more. */
static void server_attrs(metrics_line *m, const aredis_metrics_server *sv, const char *key,
                         const char *value) {
    int first = 1;
    sb_puts(&m->b, "\"attributes\":[");
    attr_str(&m->b, &first, "db.system.name", "redis");
    if (sv->server_address) attr_str(&m->b, &first, "server.address", sv->server_address);
    if (sv->server_port) attr_int(&m->b, &first, "server.port", sv->server_port);
    if (key) attr_str(&m->b, &first, key, value);
    sb_puts(&m->b, "],");
}

/* An integer point (of a sum or a gauge), after its attributes. */
static void int_point(metrics_line *m, uint64_t v) {
    point_times(m);
    sb_puts(&m->b, ",\"asInt\":");
    json_u64(&m->b, v);
    sb_puts(&m->b, "}");
}

/* A monotonic cumulative counter, one point per server. `field` picks the
 * counter out of aredis_metrics_server. */
static void metric_server_counter(metrics_line *m, const aredis_metrics_snapshot *s,
                                  const char *name, const char *unit, size_t field) {
    if (s->n_servers == 0) return;
    metric_open(m, name, unit, "sum");
    sb_puts(&m->b, "\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":[");
    for (size_t i = 0; i < s->n_servers; i++) {
        const aredis_metrics_server *sv = &s->servers[i];
        uint64_t v;
        memcpy(&v, (const char *)sv + field, sizeof v);
        sb_puts(&m->b, i ? ",{" : "{");
        server_attrs(m, sv, NULL, NULL);
        int_point(m, v);
    }
    sb_puts(&m->b, "]}}");
}

/* aredis.client.network.io: bytes out (transmit) and in (receive). */
static void metric_network_io(metrics_line *m, const aredis_metrics_snapshot *s) {
    if (s->n_servers == 0) return;
    metric_open(m, "aredis.client.network.io", "By", "sum");
    sb_puts(&m->b, "\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":[");
    for (size_t i = 0; i < s->n_servers; i++) {
        const aredis_metrics_server *sv = &s->servers[i];
        sb_puts(&m->b, i ? ",{" : "{");
        server_attrs(m, sv, "network.io.direction", "transmit");
        int_point(m, sv->bytes_out);
        sb_puts(&m->b, ",{");
        server_attrs(m, sv, "network.io.direction", "receive");
        int_point(m, sv->bytes_in);
    }
    sb_puts(&m->b, "]}}");
}

/* A pool's point attributes: its name, and a connection state or not. */
static void pool_attrs(metrics_line *m, const aredis_metrics_pool *p, const char *state) {
    int first = 1;
    sb_puts(&m->b, "{\"attributes\":[");
    attr_str(&m->b, &first, "db.system.name", "redis");
    attr_str(&m->b, &first, "db.client.connection.pool.name", p->pool_name);
    if (state) attr_str(&m->b, &first, "db.client.connection.state", state);
    sb_puts(&m->b, "],");
}

/* One gauge (or, with `counter`, a monotonic sum), one point per pool:
 * `field` picks the size_t (or, for the counter, uint64_t) of
 * aredis_metrics_pool it shows. */
static void metric_pool_value(metrics_line *m, const aredis_metrics_snapshot *s, const char *name,
                              const char *unit, size_t field, int counter) {
    metric_open(m, name, unit, counter ? "sum" : "gauge");
    if (counter) sb_puts(&m->b, "\"aggregationTemporality\":2,\"isMonotonic\":true,");
    sb_puts(&m->b, "\"dataPoints\":[");
    for (size_t i = 0; i < s->n_pools; i++) {
        const char *at = (const char *)&s->pools[i] + field;
        uint64_t v;
        if (counter) {
            memcpy(&v, at, sizeof v);
        } else {
            size_t z;
            memcpy(&z, at, sizeof z);
            v = z;
        }
        if (i) sb_put(&m->b, ",", 1);
        pool_attrs(m, &s->pools[i], NULL);
        int_point(m, v);
    }
    sb_puts(&m->b, "]}}");
}

/* The pools' metrics: connections by state, requests waiting, the
 * maximum, waits that timed out, and the wait-time histogram. */
static void metric_pools(metrics_line *m, const aredis_metrics_snapshot *s) {
    if (s->n_pools == 0) return;
    metric_open(m, "db.client.connection.count", "{connection}", "gauge");
    sb_puts(&m->b, "\"dataPoints\":[");
    for (size_t i = 0; i < s->n_pools; i++) {
        const aredis_metrics_pool *p = &s->pools[i];
        sb_puts(&m->b, i ? "," : "");
        pool_attrs(m, p, "idle");
        int_point(m, p->idle);
        sb_put(&m->b, ",", 1);
        pool_attrs(m, p, "used");
        int_point(m, p->used);
    }
    sb_puts(&m->b, "]}}");
    metric_pool_value(m, s, "db.client.connection.pending_requests", "{request}",
                      offsetof(aredis_metrics_pool, pending), 0);
    metric_pool_value(m, s, "db.client.connection.max", "{connection}",
                      offsetof(aredis_metrics_pool, max), 0);
    metric_pool_value(m, s, "db.client.connection.timeouts", "{timeout}",
                      offsetof(aredis_metrics_pool, timeouts), 1);
    metric_open(m, "db.client.connection.wait_time", "s", "histogram");
    sb_puts(&m->b, "\"aggregationTemporality\":2,\"dataPoints\":[");
    for (size_t i = 0; i < s->n_pools; i++) {
        if (i) sb_put(&m->b, ",", 1);
        pool_attrs(m, &s->pools[i], NULL);
        histogram_point(m, &s->pools[i].wait);
    }
    sb_puts(&m->b, "]}}");
}

/* The snapshot as one resourceMetrics line. */
static void write_metrics_line(exporter *x, const aredis_metrics_snapshot *s, int64_t start_ns) {
    metrics_line m = {.start_ns = start_ns, .now_ns = now_unix_ns()};
    int first = 1;
    sb_puts(&m.b, "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[");
    attr_str(&m.b, &first, "service.name", x->service);
    sb_puts(&m.b, "]},\"scopeMetrics\":[{\"scope\":{\"name\":\"aredis\",\"version\":");
    json_str(&m.b, AREDIS_VERSION_STRING);
    sb_puts(&m.b, "},\"metrics\":[");
    metric_op_duration(&m, s);
    metric_network_io(&m, s);
    metric_server_counter(&m, s, "aredis.client.connects", "{connection}",
                          offsetof(aredis_metrics_server, connects));
    metric_server_counter(&m, s, "aredis.client.connect_failures", "{attempt}",
                          offsetof(aredis_metrics_server, connect_failures));
    metric_server_counter(&m, s, "aredis.client.reconnect_attempts", "{attempt}",
                          offsetof(aredis_metrics_server, reconnect_attempts));
    metric_server_counter(&m, s, "aredis.client.timeouts", "{operation}",
                          offsetof(aredis_metrics_server, timeouts));
    metric_pools(&m, s);
    sb_puts(&m.b, "]}]}]}\n");
    fwrite(m.b.p, 1, m.b.len, x->out);
    fflush(x->out);
    free(m.b.p);
}

/* ---- The workload --------------------------------------------------------------- */

/* Wait for f, say how it went, release it. Returns 0 if it succeeded. */
static int settle(const char *what, aredis_future *f) {
    aredis_err e = aredis_await(f);
    if (e != AREDIS_ERR_OK)
        fprintf(stderr, "[otlp_exporter] %s: %s (%s)\n", what, aredis_future_error(f)->detail,
                aredis_err_name(e));
    aredis_future_release(f);
    return e == AREDIS_ERR_OK ? 0 : -1;
}

/* A few commands, one refused by the server, a pipeline, a transaction,
 * a command through the pool. Returns 0, or -1 when the server could not
 * be reached. */
static int run_workload(aredis_client *c, aredis_pool *pool) {
    if (settle("SET", aredis_future_command(c, "SET %s %s", "example:otlp:greeting", "hello")))
        return -1; /* the first command also waits for the connection */
    settle("GET", aredis_future_command(c, "GET %s", "example:otlp:greeting"));
    aredis_future *fs[3] = {
        aredis_future_command(c, "SET %s %d", "example:otlp:n", 41),
        aredis_future_command(c, "INCR %s", "example:otlp:n"),
        aredis_future_command(c, "GET %s", "example:otlp:n"),
    };
    for (int i = 0; i < 3; i++)
        settle("SET/INCR/GET", fs[i]);

    /* An error reply: the span's status is ERROR, error.type "ERR". */
    settle("INCR of a string (expected to fail)",
           aredis_future_command(c, "INCR %s", "example:otlp:greeting"));

    /* A pipeline: one operation, "BATCH" (or "BATCH SET" were all SETs). */
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "SET %s %s", "example:otlp:a", "1");
    aredis_pipeline_command(p, "INCR %s", "example:otlp:a");
    aredis_pipeline_command(p, "GET %s", "example:otlp:a");
    settle("pipeline", aredis_pipeline_exec_future(p));
    aredis_pipeline_free(p);

    /* A transaction: one operation, "MULTI". */
    aredis_tx *tx = aredis_tx_new(c);
    aredis_tx_queue(tx, "INCRBY %s %d", "example:otlp:n", 10);
    aredis_tx_queue(tx, "DECRBY %s %d", "example:otlp:n", 1);
    settle("transaction", aredis_tx_exec_future(tx));
    aredis_tx_free(tx);

    /* Through the pool: its connection's span finds its parent in the
     * thread-local (t_current). A pool command that waits for a connection
     * is issued on it later, from the loop (here: inside aredis_await() on
     * this thread), so t_current must still be set then: main() sets it
     * for the whole workload, not just around this call. */
    settle("pool GET", aredis_pool_future_command(pool, "GET %s", "example:otlp:n"));

    settle("DEL", aredis_future_command(c, "DEL %s %s %s", "example:otlp:greeting",
                                        "example:otlp:n", "example:otlp:a"));
    return 0;
}

/* ---- main --------------------------------------------------------------------- */

/* The client from a URI: argv[1], else $REDIS_URL, else the default. The
 * pool (pool_from_uri) takes the same URI. */
static aredis_client *client_from_uri(aredis_loop *loop, const char *url) {
    aredis_uri *u;
    char err[256];
    if (aredis_uri_parse(url, &u, err, sizeof err) != AREDIS_ERR_OK) {
        fprintf(stderr, "bad URI: %s\n", err); /* never contains the password */
        return NULL;
    }
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(u, &o);
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(u); /* the client copied what it needs */
    if (!c) fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
    return c;
}

static aredis_pool *pool_from_uri(aredis_loop *loop, const char *url) {
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.uri = url;
    po.max_connections = 2;
    aredis_pool *pool = aredis_pool_new(loop, &po);
    if (!pool) fprintf(stderr, "cannot create pool: %s\n", aredis_call_error()->detail);
    return pool;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : getenv("REDIS_URL");
    if (!url || !*url) url = "redis://127.0.0.1:6379";
    const char *path = argc > 2 ? argv[2] : "-";
    const char *service = getenv("OTEL_SERVICE_NAME");

    exporter x = {.out = stdout, .service = service && *service ? service : "aredis-otlp-example"};
    if (strcmp(path, "-") != 0 && !(x.out = fopen(path, "w"))) {
        perror(path);
        return 2;
    }
    g_rng = (uint64_t)now_unix_ns() ^ ((uint64_t)getpid() << 32);

    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = client_from_uri(loop, url);
    aredis_pool *pool = c ? pool_from_uri(loop, url) : NULL;
    aredis_metrics *metrics = aredis_metrics_new();
    if (!c || !pool || !metrics) return 1;
    int64_t metrics_start = now_unix_ns();

    /* Observe: spans from the operations (with db.query.text, redacted),
     * connection events and pool waits to stderr. The observer must
     * outlive the client and the pool. The pool's observer and metrics
     * reach every connection it has and will make. */
    static const aredis_observer obs = {
        .command_start = on_command_start,
        .command_end = on_command_end,
        .connection = on_connection,
        .pool_wait = on_pool_wait,
        .flags = AREDIS_OBSERVE_QUERY_TEXT,
    };
    if (aredis_client_set_observer(c, &obs, &x) != AREDIS_ERR_OK ||
        aredis_client_set_metrics(c, metrics) != AREDIS_ERR_OK ||
        aredis_pool_set_observer(pool, &obs, &x) != AREDIS_ERR_OK ||
        aredis_pool_set_metrics(pool, metrics) != AREDIS_ERR_OK) {
        fprintf(stderr, "cannot observe: %s\n", aredis_call_error()->detail); /* NOMEM */
        return 1;
    }
    aredis_client_connect(c);

    /* The workload's span, parent of every command's span: passed
     * explicitly to the client, and as the thread's current span for the
     * pool's connections. It must stay alive until the operations issued
     * under it have ended. */
    span_ctx workload;
    new_id(workload.trace_id, sizeof workload.trace_id);
    new_id(workload.span_id, sizeof workload.span_id);
    int64_t workload_start = now_unix_ns();
    aredis_client_set_trace_parent(c, &workload);
    t_current = &workload;
    int rc = run_workload(c, pool) == 0 ? 0 : 1;
    t_current = NULL;
    aredis_client_set_trace_parent(c, NULL);
    write_workload_span(&x, &workload, workload_start, now_unix_ns());

    /* Every operation has ended (each was awaited): the last spans, then
     * the metrics, taken on the loop's thread (this one). */
    flush_spans(&x);
    aredis_metrics_snapshot *snap = aredis_metrics_snapshot_take(metrics);
    if (snap) {
        write_metrics_line(&x, snap, metrics_start);
        aredis_metrics_snapshot_free(snap);
    }
    if (x.dropped) fprintf(stderr, "[otlp_exporter] %lu spans dropped\n", x.dropped);

    aredis_pool_free(pool);
    aredis_client_free(c);
    aredis_metrics_free(metrics);
    aredis_loop_free(loop);
    free(x.spans.p);
    if (x.out != stdout) fclose(x.out);
    return rc;
}
