/*
 * examples/otlp_exporter against a real server: every line it writes is
 * parsed with json-c (strict) and checked for the OTLP/JSON shape the
 * Collector's otlpjsonfile receiver reads — spans (ids in lowercase hex,
 * kind CLIENT, times as decimal strings, the database attributes, ERROR
 * status with error.type, the pipeline's "BATCH" and the transaction's
 * "MULTI" spans, every span a child of the workload's span) and the
 * metrics line (the duration histogram's bounds and buckets, counts equal
 * to the spans exported, bytes both ways). Then the same against a port
 * where nothing listens: still valid lines, the failure as a span.
 *
 * Needs json-c (Debian libjson-c-dev): without it the program skips, and
 * fails under CI=true (scripts/deps.sh installs it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts.h"

#ifdef AREDIS_HAVE_JSONC
#include <json-c/json.h>

/* What the example was given as OTEL_SERVICE_NAME: every character JSON
 * must escape (quote, backslash, control characters), and UTF-8. */
static const char k_service[] = "otlp \"test\" \\ tab\there \x01 caf\xc3\xa9";

/* What the workload in examples/otlp_exporter.c issues: SET, GET, SET,
 * INCR, GET, the failing INCR, the pipeline, the transaction, a GET
 * through the pool, DEL. */
#define WORKLOAD_OPS 10

/* The bounds OpenTelemetry recommends for db.client.operation.duration. */
static const double k_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

/* ---- Running the example ------------------------------------------------- */

/* Run the example with url and a fresh output file (its path in path);
 * returns its exit status (a signal fails the test). */
static int run_example(const char *url, char *path, size_t pathlen) {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, pathlen, "%s/otlp-export-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = ts_fork();
    if (pid == 0) {
        alarm(60); /* survives exec: a hung example dies of SIGALRM */
        setenv("OTEL_SERVICE_NAME", k_service, 1);
        execl(AREDIS_OTLP_EXAMPLE, AREDIS_OTLP_EXAMPLE, url, path, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", AREDIS_OTLP_EXAMPLE, strerror(errno));
        _exit(127);
    }
    int st = 0;
    pid_t w;
    do {
        w = waitpid(pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    assert_int_equal(w, pid);
    if (WIFSIGNALED(st)) fail_msg("the example was killed by signal %d", WTERMSIG(st));
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* ---- Reading JSON with a location in every failure -------------------------- */

static int g_line; /* the line being checked, for messages */

static const char *show(json_object *o) {
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

/* o's member key, of type t (a number may be written as an int or not). */
static json_object *get(json_object *o, const char *key, json_type t) {
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        fail_msg("line %d: no \"%s\" in %s", g_line, key, show(o));
    int ok = json_object_is_type(v, t) ||
             (t == json_type_double && json_object_is_type(v, json_type_int));
    if (!ok) fail_msg("line %d: \"%s\" has the wrong type: %s", g_line, key, show(v));
    return v;
}

static const char *get_str(json_object *o, const char *key) {
    return json_object_get_string(get(o, key, json_type_string));
}

static json_object *get_array(json_object *o, const char *key, size_t *n) {
    json_object *a = get(o, key, json_type_array);
    *n = json_object_array_length(a);
    return a;
}

static json_object *at(json_object *a, size_t i) { return json_object_array_get_idx(a, i); }

/* A 64-bit integer, which OTLP/JSON writes as a decimal string. */
static uint64_t decimal(const char *s, const char *what) {
    size_t n = strlen(s);
    if (n == 0 || n > 20 || strspn(s, "0123456789") != n)
        fail_msg("line %d: %s is not a decimal string: \"%s\"", g_line, what, s);
    return strtoull(s, NULL, 10);
}

static uint64_t get_decimal(json_object *o, const char *key) {
    return decimal(get_str(o, key), key);
}

/* An id: exactly n lowercase hex digits, not all zero. */
static void check_hex_id(const char *s, size_t n, const char *what) {
    if (strlen(s) != n || strspn(s, "0123456789abcdef") != n || strspn(s, "0") == n)
        fail_msg("line %d: %s is not %zu lowercase hex digits: \"%s\"", g_line, what, n, s);
}

/* The value object of attribute key in the list attrs, or NULL. Keys
 * appear at most once. */
static json_object *attr(json_object *attrs, const char *key) {
    json_object *found = NULL;
    for (size_t i = 0; i < json_object_array_length(attrs); i++) {
        json_object *kv = at(attrs, i);
        if (strcmp(get_str(kv, "key"), key) != 0) continue;
        if (found) fail_msg("line %d: attribute %s twice in %s", g_line, key, show(attrs));
        found = get(kv, "value", json_type_object);
    }
    return found;
}

static const char *attr_str(json_object *attrs, const char *key) {
    json_object *v = attr(attrs, key);
    return v ? get_str(v, "stringValue") : NULL;
}

/* An intValue (a decimal string); -1 when the attribute is absent. */
static long long attr_int(json_object *attrs, const char *key) {
    json_object *v = attr(attrs, key);
    return v ? (long long)get_decimal(v, "intValue") : -1;
}

/* Parse one line strictly: one JSON value, nothing after it. */
static json_object *parse_line(const char *line, size_t len) {
    json_tokener *tok = json_tokener_new();
    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || e != json_tokener_success)
        fail_msg("line %d is not JSON (%s): %s", g_line, json_tokener_error_desc(e), line);
    if (used != len) fail_msg("line %d: bytes after the JSON value: %s", g_line, line + used);
    return o;
}

/* ---- What the lines held ------------------------------------------------------ */

typedef struct span_seen {
    char name[64];
    char error_type[64]; /* "" when none */
    char trace_id[33], span_id[17], parent_id[17];
    long long batch_size; /* -1: absent */
    char query[256];      /* db.query.text, cut */
    int error;            /* status code 2 */
} span_seen;

typedef struct point_seen {
    char name[64];
    char error_type[64];
    uint64_t count;
} point_seen;

typedef struct export_seen {
    int port;          /* the server's, for server.port */
    span_seen ops[64]; /* aredis's spans */
    size_t n_ops;
    span_seen workload; /* the example's own span */
    int n_workload;
    point_seen points[64]; /* db.client.operation.duration's points */
    size_t n_points;
    uint64_t bytes_out, bytes_in;
    int metrics_lines;
    int last_was_metrics;
    int seen_io;   /* an aredis.client.network.io metric */
    int seen_pool; /* db.client.connection.count and .wait_time */
    uint64_t pool_idle, pool_used;
} export_seen;

static void copy(char *dst, size_t n, const char *s) { snprintf(dst, n, "%s", s ? s : ""); }

/* resource.attributes carries our service.name, as given. */
static void check_resource(json_object *r) {
    size_t n;
    json_object *attrs = get_array(get(r, "resource", json_type_object), "attributes", &n);
    const char *svc = attr_str(attrs, "service.name");
    if (!svc || strcmp(svc, k_service) != 0)
        fail_msg("line %d: service.name lost its escapes: %s", g_line, show(attrs));
}

/* What every span has: ids, name, kind, times end >= start. */
static void check_span_common(json_object *sp, span_seen *out) {
    const char *trace = get_str(sp, "traceId"), *id = get_str(sp, "spanId");
    check_hex_id(trace, 32, "traceId");
    check_hex_id(id, 16, "spanId");
    copy(out->trace_id, sizeof out->trace_id, trace);
    copy(out->span_id, sizeof out->span_id, id);
    json_object *parent = NULL;
    if (json_object_object_get_ex(sp, "parentSpanId", &parent)) {
        check_hex_id(json_object_get_string(parent), 16, "parentSpanId");
        copy(out->parent_id, sizeof out->parent_id, json_object_get_string(parent));
    }
    const char *name = get_str(sp, "name");
    if (!*name) fail_msg("line %d: a span without a name: %s", g_line, show(sp));
    copy(out->name, sizeof out->name, name);
    uint64_t start = get_decimal(sp, "startTimeUnixNano");
    uint64_t end = get_decimal(sp, "endTimeUnixNano");
    if (end < start) fail_msg("line %d: the span ends before it starts: %s", g_line, show(sp));
    if (start < 1000000000ull * 1000000000ull)
        fail_msg("line %d: start time before 2001: %s", g_line, show(sp));
}

/* An operation's span: CLIENT, the database attributes, its status. */
static void check_op_span(export_seen *x, json_object *sp) {
    assert_true(x->n_ops < sizeof x->ops / sizeof x->ops[0]);
    span_seen *s = &x->ops[x->n_ops++];
    check_span_common(sp, s);
    if (json_object_get_int(get(sp, "kind", json_type_int)) != 3)
        fail_msg("line %d: an operation's kind is not CLIENT (3): %s", g_line, show(sp));
    size_t n;
    json_object *attrs = get_array(sp, "attributes", &n);
    const char *sys = attr_str(attrs, "db.system.name");
    if (!sys || strcmp(sys, "redis") != 0)
        fail_msg("line %d: no db.system.name=redis: %s", g_line, show(attrs));
    if (attr_int(attrs, "server.port") != x->port)
        fail_msg("line %d: server.port is not %d: %s", g_line, x->port, show(attrs));
    const char *opname = attr_str(attrs, "db.operation.name");
    if (!opname || strcmp(opname, s->name) != 0)
        fail_msg("line %d: db.operation.name is not the span's name: %s", g_line, show(sp));
    if (attr(attrs, "network.peer.port") && attr_int(attrs, "network.peer.port") != x->port)
        fail_msg("line %d: network.peer.port is not %d: %s", g_line, x->port, show(attrs));
    s->batch_size = attr_int(attrs, "db.operation.batch.size");
    if (s->batch_size != -1 && s->batch_size < 2)
        fail_msg("line %d: db.operation.batch.size below 2: %s", g_line, show(attrs));
    const char *q = attr_str(attrs, "db.query.text"); /* the example asks for it */
    if (!q || !*q) fail_msg("line %d: no db.query.text: %s", g_line, show(attrs));
    copy(s->query, sizeof s->query, q);
    copy(s->error_type, sizeof s->error_type, attr_str(attrs, "error.type"));

    json_object *status = get(sp, "status", json_type_object);
    json_object *code = NULL;
    if (json_object_object_get_ex(status, "code", &code)) {
        if (!json_object_is_type(code, json_type_int) || json_object_get_int(code) != 2)
            fail_msg("line %d: a status code that is not ERROR (2): %s", g_line, show(sp));
        get_str(status, "message");
        s->error = 1;
    }
    if (s->error != (s->error_type[0] != 0))
        fail_msg("line %d: status ERROR and error.type disagree: %s", g_line, show(sp));
    const char *sc = attr_str(attrs, "db.response.status_code");
    if (sc && !s->error)
        fail_msg("line %d: db.response.status_code on a success: %s", g_line, show(sp));
}

/* The example's own span: a root (no parent), INTERNAL, once. */
static void check_workload_span(export_seen *x, json_object *sp) {
    x->n_workload++;
    check_span_common(sp, &x->workload);
    assert_string_equal(x->workload.name, "workload");
    assert_string_equal(x->workload.parent_id, "");
    assert_int_equal(json_object_get_int(get(sp, "kind", json_type_int)), 1);
}

static void check_spans_line(export_seen *x, json_object *root) {
    size_t n;
    json_object *rs = get_array(root, "resourceSpans", &n);
    assert_int_equal(n, 1);
    check_resource(at(rs, 0));
    json_object *ss = get_array(at(rs, 0), "scopeSpans", &n);
    assert_int_equal(n, 1);
    json_object *scope = get(at(ss, 0), "scope", json_type_object);
    const char *scope_name = get_str(scope, "name");
    json_object *spans = get_array(at(ss, 0), "spans", &n);
    if (n == 0) fail_msg("line %d: an empty batch", g_line);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(scope_name, "aredis") == 0) {
            assert_string_equal(get_str(scope, "version"), AREDIS_VERSION_STRING);
            check_op_span(x, at(spans, i));
        } else if (strcmp(scope_name, "otlp_exporter") == 0) {
            check_workload_span(x, at(spans, i));
        } else {
            fail_msg("line %d: unexpected scope %s", g_line, scope_name);
        }
    }
}

/* ---- The metrics line ------------------------------------------------------------ */

/* One histogram point: the bounds exactly, one more bucket than bounds,
 * buckets adding up to count. */
static uint64_t check_histogram_point(json_object *dp) {
    size_t n;
    json_object *bounds = get_array(dp, "explicitBounds", &n);
    assert_int_equal(n, sizeof k_bounds / sizeof k_bounds[0]);
    for (size_t i = 0; i < n; i++)
        if (json_object_get_double(at(bounds, i)) != k_bounds[i])
            fail_msg("line %d: explicitBounds is not [0.001 ... 10]: %s", g_line, show(bounds));
    json_object *buckets = get_array(dp, "bucketCounts", &n);
    assert_int_equal(n, sizeof k_bounds / sizeof k_bounds[0] + 1);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!json_object_is_type(at(buckets, i), json_type_string))
            fail_msg("line %d: a bucket count is not a string: %s", g_line, show(buckets));
        total += decimal(json_object_get_string(at(buckets, i)), "bucketCounts[i]");
    }
    uint64_t count = get_decimal(dp, "count");
    if (total != count)
        fail_msg("line %d: buckets add up to %llu, count is %llu: %s", g_line,
                 (unsigned long long)total, (unsigned long long)count, show(dp));
    double sum = json_object_get_double(get(dp, "sum", json_type_double));
    if (!(sum >= 0)) fail_msg("line %d: a negative sum: %s", g_line, show(dp));
    uint64_t start = get_decimal(dp, "startTimeUnixNano"), now = get_decimal(dp, "timeUnixNano");
    if (now < start) fail_msg("line %d: time before start time: %s", g_line, show(dp));
    return count;
}

static void check_op_duration(export_seen *x, json_object *metric) {
    assert_string_equal(get_str(metric, "unit"), "s");
    json_object *h = get(metric, "histogram", json_type_object);
    assert_int_equal(json_object_get_int(get(h, "aggregationTemporality", json_type_int)), 2);
    size_t n;
    json_object *dps = get_array(h, "dataPoints", &n);
    for (size_t i = 0; i < n; i++) {
        json_object *dp = at(dps, i);
        size_t na;
        json_object *attrs = get_array(dp, "attributes", &na);
        const char *sys = attr_str(attrs, "db.system.name");
        if (!sys || strcmp(sys, "redis") != 0 || attr_int(attrs, "server.port") != x->port)
            fail_msg("line %d: a point without redis or its port: %s", g_line, show(attrs));
        assert_true(x->n_points < sizeof x->points / sizeof x->points[0]);
        point_seen *p = &x->points[x->n_points++];
        const char *name = attr_str(attrs, "db.operation.name");
        if (!name || !*name) fail_msg("line %d: a point without a name: %s", g_line, show(dp));
        copy(p->name, sizeof p->name, name);
        copy(p->error_type, sizeof p->error_type, attr_str(attrs, "error.type"));
        p->count = check_histogram_point(dp);
    }
}

static void check_network_io(export_seen *x, json_object *metric) {
    assert_string_equal(get_str(metric, "unit"), "By");
    json_object *sum = get(metric, "sum", json_type_object);
    assert_int_equal(json_object_get_int(get(sum, "aggregationTemporality", json_type_int)), 2);
    assert_true(json_object_get_boolean(get(sum, "isMonotonic", json_type_boolean)));
    size_t n;
    json_object *dps = get_array(sum, "dataPoints", &n);
    for (size_t i = 0; i < n; i++) {
        size_t na;
        json_object *attrs = get_array(at(dps, i), "attributes", &na);
        const char *dir = attr_str(attrs, "network.io.direction");
        uint64_t v = get_decimal(at(dps, i), "asInt");
        if (dir && strcmp(dir, "transmit") == 0)
            x->bytes_out += v;
        else if (dir && strcmp(dir, "receive") == 0)
            x->bytes_in += v;
        else
            fail_msg("line %d: network.io.direction missing: %s", g_line, show(attrs));
    }
}

/* A pool's point: db.system.name and the pool's name; its state (idle,
 * used) when `state` is not NULL, returned there. */
static json_object *check_pool_point(json_object *dp, const char **state) {
    size_t n;
    json_object *attrs = get_array(dp, "attributes", &n);
    const char *sys = attr_str(attrs, "db.system.name");
    const char *name = attr_str(attrs, "db.client.connection.pool.name");
    if (!sys || strcmp(sys, "redis") != 0 || !name || !*name)
        fail_msg("line %d: a pool point without redis or its name: %s", g_line, show(attrs));
    if (state) *state = attr_str(attrs, "db.client.connection.state");
    return attrs;
}

/* db.client.connection.count: a gauge, idle and used per pool. */
static void check_pool_count(export_seen *x, json_object *metric) {
    x->seen_pool++;
    size_t n;
    json_object *dps = get_array(get(metric, "gauge", json_type_object), "dataPoints", &n);
    for (size_t i = 0; i < n; i++) {
        const char *state = NULL;
        check_pool_point(at(dps, i), &state);
        uint64_t v = get_decimal(at(dps, i), "asInt");
        if (state && strcmp(state, "idle") == 0)
            x->pool_idle += v;
        else if (state && strcmp(state, "used") == 0)
            x->pool_used += v;
        else
            fail_msg("line %d: a connection count without idle/used: %s", g_line, show(dps));
    }
}

/* db.client.connection.wait_time: a histogram per pool, the same bounds. */
static void check_pool_wait(export_seen *x, json_object *metric) {
    x->seen_pool++;
    assert_string_equal(get_str(metric, "unit"), "s");
    json_object *h = get(metric, "histogram", json_type_object);
    assert_int_equal(json_object_get_int(get(h, "aggregationTemporality", json_type_int)), 2);
    size_t n;
    json_object *dps = get_array(h, "dataPoints", &n);
    for (size_t i = 0; i < n; i++) {
        check_pool_point(at(dps, i), NULL);
        check_histogram_point(at(dps, i));
    }
}

static void check_metrics_line(export_seen *x, json_object *root) {
    x->metrics_lines++;
    size_t n;
    json_object *rm = get_array(root, "resourceMetrics", &n);
    assert_int_equal(n, 1);
    check_resource(at(rm, 0));
    json_object *sm = get_array(at(rm, 0), "scopeMetrics", &n);
    assert_int_equal(n, 1);
    assert_string_equal(get_str(get(at(sm, 0), "scope", json_type_object), "name"), "aredis");
    json_object *metrics = get_array(at(sm, 0), "metrics", &n);
    int seen_duration = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = get_str(at(metrics, i), "name");
        if (strcmp(name, "db.client.operation.duration") == 0) {
            seen_duration++;
            check_op_duration(x, at(metrics, i));
        } else if (strcmp(name, "aredis.client.network.io") == 0) {
            x->seen_io++;
            check_network_io(x, at(metrics, i));
        } else if (strcmp(name, "db.client.connection.count") == 0) {
            check_pool_count(x, at(metrics, i));
        } else if (strcmp(name, "db.client.connection.wait_time") == 0) {
            check_pool_wait(x, at(metrics, i));
        }
    }
    assert_int_equal(seen_duration, 1);
    assert_true(x->seen_io <= 1);
}

/* Read every line of path and check it; what was seen goes into x. */
static void check_file(const char *path, export_seen *x) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    g_line = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        g_line++;
        if (line[len - 1] != '\n') fail_msg("line %d does not end in a newline", g_line);
        line[--len] = '\0';
        json_object *root = parse_line(line, (size_t)len);
        if (json_object_object_length(root) != 1)
            fail_msg("line %d: not one resourceSpans or resourceMetrics: %.200s", g_line, line);
        x->last_was_metrics = json_object_object_get_ex(root, "resourceMetrics", NULL);
        if (x->last_was_metrics)
            check_metrics_line(x, root);
        else
            check_spans_line(x, root);
        json_object_put(root);
    }
    free(line);
    fclose(f);
    ts_log("%d lines: %zu operation spans, %d workload span, %d metrics line", g_line, x->n_ops,
           x->n_workload, x->metrics_lines);
    assert_int_equal(x->metrics_lines, 1);
    assert_true(x->last_was_metrics);
    assert_int_equal(x->n_workload, 1);
}

/* Every span a child of the workload's, in its trace; span ids unique. */
static void check_parents(const export_seen *x) {
    for (size_t i = 0; i < x->n_ops; i++) {
        const span_seen *s = &x->ops[i];
        if (strcmp(s->parent_id, x->workload.span_id) != 0 ||
            strcmp(s->trace_id, x->workload.trace_id) != 0)
            fail_msg("%s span: parent %s in trace %s, not the workload's %s in %s", s->name,
                     s->parent_id, s->trace_id, x->workload.span_id, x->workload.trace_id);
        if (strcmp(s->span_id, x->workload.span_id) == 0) fail_msg("a span id twice");
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->span_id, x->ops[j].span_id) == 0) fail_msg("a span id twice");
    }
}

/* The duration histogram counts exactly the operations exported as spans:
 * per name and outcome, and in all. */
static void check_counts(const export_seen *x) {
    uint64_t total = 0;
    for (size_t i = 0; i < x->n_points; i++) {
        const point_seen *p = &x->points[i];
        uint64_t spans = 0;
        for (size_t j = 0; j < x->n_ops; j++)
            spans += strcmp(x->ops[j].name, p->name) == 0 &&
                     strcmp(x->ops[j].error_type, p->error_type) == 0;
        if (spans != p->count)
            fail_msg("%s (error.type \"%s\"): %llu in the histogram, %llu spans", p->name,
                     p->error_type, (unsigned long long)p->count, (unsigned long long)spans);
        total += p->count;
    }
    if (total != x->n_ops)
        fail_msg("the histogram counts %llu operations, %zu spans were exported",
                 (unsigned long long)total, x->n_ops);
}

/* ---- Tests -------------------------------------------------------------------------- */

static ts_server *g_srv;

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start_default();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ts_server_stop(g_srv);
    return 0;
}

/* The workload against the server: every line valid, everything seen. */
static void test_workload(void **state) {
    (void)state;
    static export_seen x; /* large: not on the stack */
    memset(&x, 0, sizeof x);
    x.port = ts_server_port(g_srv);
    char url[128], path[512];
    snprintf(url, sizeof url, "redis://%s:%d", ts_server_host(g_srv), x.port);
    assert_int_equal(run_example(url, path, sizeof path), 0);
    check_file(path, &x);
    unlink(path);

    assert_int_equal(x.n_ops, WORKLOAD_OPS);
    check_parents(&x);
    check_counts(&x);
    int errors = 0, batches = 0, multis = 0;
    for (size_t i = 0; i < x.n_ops; i++) {
        const span_seen *s = &x.ops[i];
        if (s->error) {
            errors++;
            assert_string_equal(s->name, "INCR");
            assert_string_equal(s->error_type, "ERR"); /* value is not an integer */
        }
        if (strcmp(s->name, "BATCH") == 0 || strncmp(s->name, "BATCH ", 6) == 0) {
            batches++;
            assert_int_equal(s->batch_size, 3);
            if (!strstr(s->query, "; ")) fail_msg("a pipeline's query text: %s", s->query);
        }
        if (strcmp(s->name, "MULTI") == 0) {
            multis++;
            assert_int_equal(s->batch_size, 2); /* the commands queued */
        }
    }
    assert_int_equal(errors, 1);
    assert_int_equal(batches, 1);
    assert_int_equal(multis, 1);
    assert_int_equal(x.seen_io, 1);
    assert_true(x.bytes_out > 0);
    assert_true(x.bytes_in > 0);
    /* The pool made one connection for its GET, idle again by the end. */
    assert_int_equal(x.seen_pool, 2);
    assert_int_equal(x.pool_idle, 1);
    assert_int_equal(x.pool_used, 0);
}

/* Nothing listening: the example fails, its lines are still valid, the
 * failed SET is a span with status ERROR. */
static void test_no_server(void **state) {
    (void)state;
    static export_seen x;
    memset(&x, 0, sizeof x);
    x.port = ts_dead_port();
    char url[128], path[512];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", x.port);
    assert_int_equal(run_example(url, path, sizeof path), 1);
    check_file(path, &x);
    unlink(path);

    assert_int_equal(x.n_ops, 1);
    assert_string_equal(x.ops[0].name, "SET");
    assert_true(x.ops[0].error);
    /* error.type: not a server error, so the aredis error's name */
    assert_string_equal(x.ops[0].error_type, "CONNREFUSED");
    check_parents(&x);
    check_counts(&x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workload),
        cmocka_unit_test(test_no_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

#else /* no json-c */

int main(void) {
    if (getenv("CI")) {
        fprintf(stderr, "FAIL: json-c not found (CI must have it: run scripts/deps.sh)\n");
        return 1;
    }
    fprintf(stderr, "SKIP: json-c not found; install Debian's libjson-c-dev "
                    "(make test does it) to run this test\n");
    return 77;
}

#endif
