/*
 * The observer of aredis/observe.h against a real server: exactly one
 * command_start (inside the issuing call) and one command_end (just before
 * the application's callback) per operation, matched by id and by the span
 * command_start returned — for a reply, an error reply, a timeout whose late
 * reply is then dropped, a cancel, a lost connection, commands waiting for a
 * connect that fails, a client freed with commands pending; nothing for a
 * call refused at issue. The attributes (name as given, batch name and size
 * of pipelines and transactions, db, server and peer addresses, times,
 * error type and status code, query text redacted, trace parent); no
 * password in any field of any operation or event. Connection events
 * (connect, refused connect, restart: disconnect, reconnect attempt,
 * connect). Pools: their connections observed, pool_wait events granted and
 * timed out.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aredis/observe.h"
#include "counters.h"
#include "proxy.h"
#include "ts.h"

static const char *const k_debug_conf[] = {"enable-debug-command local", NULL};

static ts_server *g_srv;
/* The running case's loop (TS_LOOP_CASE), or a proxied rig's while a
 * case uses one. */
static aredis_loop *g_rig_loop;
#define g_loop (g_rig_loop ? g_rig_loop : ts_case_loop())

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start(k_debug_conf, 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ts_server_stop(g_srv);
    return 0;
}

/* ---- What the observer saw ------------------------------------------------ */

#define MAX_OPS 256
#define MAX_EVS 64
#define MAX_WAITS 16
#define STR 256
#define QMAX 1200

typedef struct seen_op {
    const void *data; /* the observer's data at command_start */
    aredis_client *client;
    uint64_t id;
    char name[STR];
    size_t batch_size;
    int db;
    char server_address[STR];
    int server_port;
    int has_peer;
    char peer_address[STR];
    int peer_port;
    int has_query;
    char query_text[QMAX];
    int64_t start_unix_ns;
    void *parent;
    int in_call;         /* command_start ran inside an issuing call of the test */
    int64_t start_cb_ns; /* CLOCK_REALTIME in command_start */
    /* command_end */
    int ends;
    const void *end_data;
    uint64_t duration_ns;
    aredis_err outcome;
    int has_error_type;
    char error_type[STR];
    int has_status;
    char status_code[STR];
    int end_seq;
    int64_t end_cb_ns;
} seen_op;

typedef struct seen_ev {
    const void *data;
    aredis_conn_event_kind kind;
    aredis_client *client;
    char server_address[STR];
    int server_port;
    int has_peer;
    char peer_address[STR];
    int peer_port;
    int64_t time_unix_ns;
    uint64_t duration_ns;
    aredis_err outcome;
    int has_error_type;
    char error_type[STR];
    unsigned attempt;
    uint32_t delay_ms;
    int64_t cb_ns;
} seen_ev;

typedef struct seen_wait {
    const void *data;
    aredis_pool *pool;
    char pool_name[STR];
    uint64_t duration_ns;
    aredis_err outcome;
    int has_error_type;
    char error_type[STR];
    size_t idle, used, pending;
} seen_wait;

typedef struct obs_log {
    seen_op ops[MAX_OPS];
    size_t starts, ends;
    seen_ev evs[MAX_EVS];
    size_t n_evs;
    seen_wait waits[MAX_WAITS];
    size_t n_waits;
    int violations;
    char first_violation[700];
    const char *secrets[8]; /* strings no field may ever hold */
    size_t strings_scanned;
} obs_log;

static obs_log g_log;
static int g_seq;     /* command_end and application callbacks, in order */
static int g_in_call; /* 1 while the test is inside an issuing call */
static int g_tag_a, g_tag_b;

static void log_reset(void) {
    memset(&g_log, 0, sizeof g_log);
    g_seq = 0;
    g_in_call = 0;
}

static int64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A broken rule seen inside a callback: recorded (a cmocka failure must not
 * jump out of the library), asserted by check_clean() at the next check. */
static void violation(const char *fmt, ...) {
    if (g_log.violations++) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_log.first_violation, sizeof g_log.first_violation, fmt, ap);
    va_end(ap);
}

static void check_clean(void) {
    if (g_log.violations)
        fail_msg("%d observer rule(s) broken; the first: %s", g_log.violations,
                 g_log.first_violation);
}

/* Every string the observer is handed goes through here. */
static void scan(const char *s, const char *what) {
    if (!s) return;
    g_log.strings_scanned++;
    for (size_t i = 0; i < sizeof g_log.secrets / sizeof *g_log.secrets; i++)
        if (g_log.secrets[i] && strstr(s, g_log.secrets[i]))
            violation("a password (%s) in %s: \"%s\"", g_log.secrets[i], what, s);
}

static int copy(char *dst, size_t cap, const char *src, const char *what) {
    scan(src, what);
    if (!src) {
        dst[0] = '\0';
        return 0;
    }
    if (strlen(src) >= cap) violation("%s longer than the test keeps (%zu)", what, strlen(src));
    snprintf(dst, cap, "%s", src);
    return 1;
}

/* The name error.type has for an aredis outcome: the header's attribute
 * table names them "TIMEOUT", "CANCELLED", "EOF" (aredis_err_name without
 * its "AREDIS_ERR_" prefix). */
static const char *err_type(aredis_err e) {
    const char *n = aredis_err_name(e);
    return strncmp(n, "AREDIS_ERR_", 11) == 0 ? n + 11 : n;
}

static void *on_start(const aredis_op *op, void *data) {
    if (!op || !op->name || !op->server_address) {
        violation("command_start with %s", !op ? "no op" : "a NULL name or server address");
        return NULL;
    }
    if (g_log.starts >= MAX_OPS) {
        violation("more than %d operations", MAX_OPS);
        return NULL;
    }
    seen_op *s = &g_log.ops[g_log.starts];
    memset(s, 0, sizeof *s);
    s->data = data;
    s->client = op->client;
    s->id = op->id;
    copy(s->name, sizeof s->name, op->name, "op->name");
    s->batch_size = op->batch_size;
    s->db = op->db;
    copy(s->server_address, sizeof s->server_address, op->server_address, "op->server_address");
    s->server_port = op->server_port;
    s->has_peer =
        copy(s->peer_address, sizeof s->peer_address, op->peer_address, "op->peer_address");
    s->peer_port = op->peer_port;
    s->has_query = copy(s->query_text, sizeof s->query_text, op->query_text, "op->query_text");
    s->start_unix_ns = op->start_unix_ns;
    s->parent = op->parent;
    s->in_call = g_in_call;
    s->start_cb_ns = realtime_ns();
    scan(op->error_type, "op->error_type at start");
    scan(op->status_code, "op->status_code at start");
    if (op->duration_ns || op->outcome != AREDIS_ERR_OK || op->error_type || op->status_code ||
        op->span)
        violation("command_start of %s (id %" PRIu64 ") has END fields set: duration %" PRIu64
                  ", outcome %s, error_type %s, status_code %s, span %p",
                  op->name, op->id, op->duration_ns, aredis_err_name(op->outcome),
                  op->error_type ? op->error_type : "NULL",
                  op->status_code ? op->status_code : "NULL", op->span);
    if (!op->client) violation("command_start of %s without its client", op->name);
    g_log.starts++;
    return s; /* a distinct pointer per operation: the span */
}

static void on_end(const aredis_op *op, void *data) {
    g_log.ends++;
    if (!op || !op->name) {
        violation("command_end with no op or no name");
        return;
    }
    uintptr_t at = (uintptr_t)op->span, base = (uintptr_t)g_log.ops;
    if (at < base || at >= base + g_log.starts * sizeof(seen_op) ||
        (at - base) % sizeof(seen_op) != 0) {
        violation("command_end of %s (id %" PRIu64 ") with span %p: not one command_start "
                  "returned",
                  op->name, op->id, op->span);
        return;
    }
    seen_op *s = op->span;
    if (++s->ends > 1)
        violation("a second command_end for %s (id %" PRIu64 "), outcome %s", s->name, s->id,
                  aredis_err_name(op->outcome));
    if (op->id != s->id || op->client != s->client || strcmp(op->name, s->name) != 0)
        violation("command_end of %s id %" PRIu64 " got the span of %s id %" PRIu64, op->name,
                  op->id, s->name, s->id);
    if (op->batch_size != s->batch_size || op->db != s->db || op->parent != s->parent ||
        op->start_unix_ns != s->start_unix_ns)
        violation("command_end of %s: attributes differ from its command_start", s->name);
    s->end_data = data;
    if (data != s->data)
        violation("command_end of %s got data %p, its start %p", s->name, data, s->data);
    s->duration_ns = op->duration_ns;
    s->outcome = op->outcome;
    s->has_error_type = copy(s->error_type, sizeof s->error_type, op->error_type, "op->error_type");
    s->has_status = copy(s->status_code, sizeof s->status_code, op->status_code, "op->status_code");
    scan(op->name, "op->name at end");
    scan(op->server_address, "op->server_address at end");
    scan(op->peer_address, "op->peer_address at end");
    scan(op->query_text, "op->query_text at end");
    if (op->outcome == AREDIS_ERR_OK && (op->error_type || op->status_code))
        violation("%s succeeded with error_type %s, status_code %s", s->name,
                  op->error_type ? op->error_type : "NULL",
                  op->status_code ? op->status_code : "NULL");
    if (op->outcome != AREDIS_ERR_OK && !op->error_type)
        violation("%s failed (%s) with no error_type", s->name, aredis_err_name(op->outcome));
    s->end_seq = ++g_seq;
    s->end_cb_ns = realtime_ns();
}

static void on_conn(const aredis_conn_event *ev, void *data) {
    if (g_log.n_evs >= MAX_EVS) {
        violation("more than %d connection events", MAX_EVS);
        return;
    }
    seen_ev *e = &g_log.evs[g_log.n_evs++];
    memset(e, 0, sizeof *e);
    e->data = data;
    e->kind = ev->kind;
    e->client = ev->client;
    copy(e->server_address, sizeof e->server_address, ev->server_address, "ev->server_address");
    e->server_port = ev->server_port;
    e->has_peer =
        copy(e->peer_address, sizeof e->peer_address, ev->peer_address, "ev->peer_address");
    e->peer_port = ev->peer_port;
    e->time_unix_ns = ev->time_unix_ns;
    e->duration_ns = ev->duration_ns;
    e->outcome = ev->outcome;
    e->has_error_type = copy(e->error_type, sizeof e->error_type, ev->error_type, "ev->error_type");
    e->attempt = ev->attempt;
    e->delay_ms = ev->delay_ms;
    e->cb_ns = realtime_ns();
    if (ev->kind != AREDIS_CONN_CONNECT && ev->kind != AREDIS_CONN_DISCONNECT &&
        ev->kind != AREDIS_CONN_RECONNECT)
        violation("connection event of kind %d", (int)ev->kind);
    if (ev->outcome == AREDIS_ERR_OK && ev->error_type)
        violation("connection event %d, outcome OK, error_type %s", (int)ev->kind, ev->error_type);
    if (ev->error_type && strcmp(ev->error_type, err_type(ev->outcome)) != 0)
        violation("connection event %d: error_type %s for outcome %s", (int)ev->kind,
                  ev->error_type, aredis_err_name(ev->outcome));
}

static void on_wait(const aredis_pool_wait_event *ev, void *data) {
    if (g_log.n_waits >= MAX_WAITS) {
        violation("more than %d pool waits", MAX_WAITS);
        return;
    }
    seen_wait *w = &g_log.waits[g_log.n_waits++];
    memset(w, 0, sizeof *w);
    w->data = data;
    w->pool = ev->pool;
    copy(w->pool_name, sizeof w->pool_name, ev->pool_name, "ev->pool_name");
    w->duration_ns = ev->duration_ns;
    w->outcome = ev->outcome;
    w->has_error_type =
        copy(w->error_type, sizeof w->error_type, ev->error_type, "pool wait error_type");
    w->idle = ev->idle;
    w->used = ev->used;
    w->pending = ev->pending;
}

static const aredis_observer k_obs = {on_start, on_end, on_conn, on_wait, 0};
static const aredis_observer k_obs_text = {on_start, on_end, on_conn, on_wait,
                                           AREDIS_OBSERVE_QUERY_TEXT};

/* Every operation started has ended exactly once, and nothing was broken. */
static void check_all_ended(void) {
    check_clean();
    for (size_t i = 0; i < g_log.starts; i++)
        if (g_log.ops[i].ends != 1)
            fail_msg("operation %zu (%s, id %" PRIu64 ") ended %d times", i, g_log.ops[i].name,
                     g_log.ops[i].id, g_log.ops[i].ends);
    assert_int_equal(g_log.ends, g_log.starts);
}

static size_t count_evs(aredis_conn_event_kind kind) {
    size_t n = 0;
    for (size_t i = 0; i < g_log.n_evs; i++)
        n += g_log.evs[i].kind == kind;
    return n;
}

static const seen_ev *nth_ev(aredis_conn_event_kind kind, size_t nth) {
    for (size_t i = 0; i < g_log.n_evs; i++)
        if (g_log.evs[i].kind == kind && nth-- == 0) return &g_log.evs[i];
    return NULL;
}

/* ---- Issuing and waiting ---------------------------------------------------- */

typedef struct app {
    int calls;
    int seq;
    aredis_err code;
    char prefix[32];
} app;

static void on_app(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    app *a = data;
    a->calls++;
    a->seq = ++g_seq;
    a->code = err ? err->code : AREDIS_ERR_OK;
    snprintf(a->prefix, sizeof a->prefix, "%s", err ? err->prefix : "");
}

/* The operation an issuing call just started: exactly one, inside the call,
 * not ended inside it. */
static seen_op *started_one(size_t before, const char *what) {
    check_clean();
    if (g_log.starts != before + 1)
        fail_msg("%s: %zu command_start(s), want 1", what, g_log.starts - before);
    seen_op *op = &g_log.ops[before];
    if (!op->in_call) fail_msg("%s: command_start ran outside the issuing call", what);
    if (op->ends) fail_msg("%s: command_end ran inside the issuing call", what);
    return op;
}

/* The application callback ran; its operation ended once, just before it. */
static void ended_before(const seen_op *op, const app *a, const char *what) {
    check_clean();
    if (op->ends != 1) fail_msg("%s: %d command_end(s) when its callback ran", what, op->ends);
    if (op->end_seq + 1 != a->seq)
        fail_msg("%s: command_end at step %d, the callback at %d: not just before it", what,
                 op->end_seq, a->seq);
}

static aredis_err issue(aredis_client *c, const aredis_cmd_opts *o, app *a, const char *fmt,
                        va_list ap) {
    g_in_call = 1;
    aredis_err e = aredis_vcommand_ex(c, o, on_app, a, fmt, ap);
    g_in_call = 0;
    return e;
}

/* Issue, assert one start, wait for the callback, assert one end just
 * before it. */
static seen_op *cmd_ex(aredis_client *c, const aredis_cmd_opts *o, app *a, const char *fmt, ...) {
    size_t before = g_log.starts;
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = issue(c, o, a, fmt, ap);
    va_end(ap);
    if (e != AREDIS_ERR_OK) fail_msg("%s refused: %s", fmt, aredis_call_error()->detail);
    seen_op *op = started_one(before, fmt);
    if (!ts_wait(g_loop, &a->calls, 10000)) fail_msg("%s: no reply", fmt);
    ended_before(op, a, fmt);
    return op;
}

#define cmd(c, a, ...) cmd_ex((c), NULL, (a), __VA_ARGS__)

/* Issue without waiting. */
static seen_op *issue_only(aredis_client *c, const aredis_cmd_opts *o, app *a, const char *fmt,
                           ...) {
    size_t before = g_log.starts;
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = issue(c, o, a, fmt, ap);
    va_end(ap);
    if (e != AREDIS_ERR_OK) fail_msg("%s refused: %s", fmt, aredis_call_error()->detail);
    return started_one(before, fmt);
}

static aredis_client *observed_client(aredis_options *o, const aredis_observer *obs, void *data,
                                      int wait_ready) {
    aredis_client *c = aredis_client_new(g_loop, o);
    if (!c) fail_msg("aredis_client_new: %s", aredis_call_error()->detail);
    assert_int_equal(aredis_client_set_observer(c, obs, data), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    if (wait_ready) {
        char detail[300];
        aredis_err e = ts_await_ready(c, detail, sizeof detail);
        if (e != AREDIS_ERR_OK) fail_msg("connect: %s: %s", aredis_err_name(e), detail);
    }
    return c;
}

static uint64_t bytes_out(aredis_client *c) {
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    return st.bytes_out;
}

/* Wait until the client has written past `before` (the bytes of the
 * commands issued are on the wire). */
static void wait_written(aredis_client *c, uint64_t before) {
    assert_true(ts_wait_bytes_out(g_loop, c, before, 10000));
}

static int evs_at_least(const void *p) { return g_log.n_evs >= *(const size_t *)p; }

static void wait_evs(size_t n) {
    if (!ts_wait_until(g_loop, evs_at_least, &n, 10000))
        fail_msg("%zu connection event(s), want %zu", g_log.n_evs, n);
}

/* The time attributes of an ended operation make sense. */
static void check_times(const seen_op *op) {
    int64_t skew = 5 * (int64_t)1000000000; /* the test's own clock reads */
    if (op->start_unix_ns < op->start_cb_ns - skew || op->start_unix_ns > op->start_cb_ns + 1000000)
        fail_msg("%s: start_unix_ns %" PRId64 ", the clock read %" PRId64 " in command_start",
                 op->name, op->start_unix_ns, op->start_cb_ns);
    if (op->duration_ns == 0) fail_msg("%s: duration_ns 0", op->name);
    /* Ended after it started, and not after command_end ran (CLOCK_REALTIME
     * against CLOCK_MONOTONIC: 50 ms of slack). */
    if (op->start_unix_ns + (int64_t)op->duration_ns > op->end_cb_ns + 50000000)
        fail_msg("%s: start %" PRId64 " + duration %" PRIu64
                 " is past command_end's clock %" PRId64,
                 op->name, op->start_unix_ns, op->duration_ns, op->end_cb_ns);
}

static void check_peer(const seen_op *op, int port) {
    if (!op->has_peer) fail_msg("%s: no peer_address though connected", op->name);
    assert_string_equal(op->peer_address, "127.0.0.1");
    assert_int_equal(op->peer_port, port);
}

static void check_failed(const seen_op *op, aredis_err want, const char *type) {
    if (op->outcome != want)
        fail_msg("%s: outcome %s, want %s", op->name, aredis_err_name(op->outcome),
                 aredis_err_name(want));
    assert_true(op->has_error_type);
    assert_string_equal(op->error_type, type);
}

/* ---- One start and one end, with their attributes ---------------------------- */

static void test_success_attributes(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    o.db = 3;
    aredis_client *c = observed_client(&o, &k_obs, &g_tag_a, 1);
    assert_int_equal(g_log.starts, 0); /* the handshake is not an operation */

    app a = {0}, b = {0}, d = {0};
    seen_op *op = cmd(c, &a, "SET obs:k %s", "v");
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_true(op->id >= 1); /* ids are unique in the process: increasing */
    uint64_t id0 = op->id;
    assert_ptr_equal(op->client, c);
    assert_ptr_equal(op->data, &g_tag_a);
    assert_string_equal(op->name, "SET");
    assert_int_equal(op->batch_size, 0);
    assert_int_equal(op->db, 3);
    assert_string_equal(op->server_address, "127.0.0.1");
    assert_int_equal(op->server_port, ts_server_port(g_srv));
    check_peer(op, ts_server_port(g_srv));
    assert_false(op->has_query); /* off by default */
    assert_null(op->parent);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);
    assert_false(op->has_error_type);
    assert_false(op->has_status);
    check_times(op);

    /* The name as given; ids in issue order. */
    op = cmd(c, &b, "get obs:k");
    assert_string_equal(op->name, "get");
    assert_true(op->id > id0);
    id0 = op->id;
    assert_int_equal(op->db, 3);
    check_times(op);
    op = cmd(c, &d, "GET obs:k");
    assert_string_equal(op->name, "GET");
    assert_true(op->id > id0);

    /* A future is an operation like any other. */
    g_in_call = 1;
    aredis_future *f = aredis_future_command(c, "ECHO %s", "hi");
    g_in_call = 0;
    seen_op *fo = started_one(3, "future ECHO");
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    assert_int_equal(fo->ends, 1);
    assert_string_equal(fo->name, "ECHO");
    assert_int_equal(fo->id, 4);
    assert_int_equal(fo->outcome, AREDIS_ERR_OK);

    aredis_client_free(c);
    check_all_ended();
    assert_int_equal(g_log.starts, 4);
}

/* A command issued while the client is still connecting waits: no peer. */
static void test_peer_unknown_while_waiting(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 0);
    aredis_state st = aredis_client_state(c);
    app a = {0}, b = {0};
    seen_op *op = cmd(c, &a, "PING");
    assert_int_equal(a.code, AREDIS_ERR_OK);
    if (st == AREDIS_STATE_CONNECTING || st == AREDIS_STATE_RECONNECTING) {
        if (op->has_peer || op->peer_port != 0)
            fail_msg("issued while %s: peer %s:%d, want none", aredis_state_name(st),
                     op->peer_address, op->peer_port);
    } else {
        ts_log("not checked: the client was already %s when PING was issued",
               aredis_state_name(st));
    }
    op = cmd(c, &b, "PING");
    check_peer(op, ts_server_port(g_srv));
    aredis_client_free(c);
    check_all_ended();
}

static void test_server_error_reply(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    app a = {0}, b = {0}, d = {0};
    cmd(c, &a, "SET obs:str %s", "text");
    seen_op *op = cmd(c, &b, "LPUSH obs:str x");
    assert_int_equal(b.code, AREDIS_ERR_SERVER);
    assert_string_equal(b.prefix, "WRONGTYPE");
    assert_string_equal(op->name, "LPUSH");
    check_failed(op, AREDIS_ERR_SERVER, "WRONGTYPE");
    assert_true(op->has_status);
    assert_string_equal(op->status_code, "WRONGTYPE");
    check_times(op);

    op = cmd(c, &d, "INCR obs:str");
    assert_int_equal(d.code, AREDIS_ERR_SERVER);
    check_failed(op, AREDIS_ERR_SERVER, d.prefix); /* "ERR" */
    assert_string_equal(op->error_type, "ERR");
    assert_true(op->has_status);
    assert_string_equal(op->status_code, "ERR");
    aredis_client_free(c);
    check_all_ended();
}

/* Timed out: it ended at the timeout; its late reply ends nothing. */
static void test_timeout_then_late_reply(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 50;
    app a = {0}, b = {0};
    seen_op *op = cmd_ex(c, &co, &a, "DEBUG SLEEP 0.5");
    assert_int_equal(a.code, AREDIS_ERR_TIMEOUT);
    assert_string_equal(op->name, "DEBUG");
    check_failed(op, AREDIS_ERR_TIMEOUT, err_type(AREDIS_ERR_TIMEOUT));
    assert_false(op->has_status);
    check_times(op);
    if (op->duration_ns < 45000000 || op->duration_ns > 450000000)
        fail_msg("timed out after %" PRIu64 " ns; the timeout was 50 ms", op->duration_ns);

    /* The PING's reply comes after the late one of DEBUG SLEEP. */
    seen_op *ping = cmd(c, &b, "PING");
    assert_int_equal(b.code, AREDIS_ERR_OK);
    assert_int_equal(ping->outcome, AREDIS_ERR_OK);
    assert_int_equal(op->ends, 1);
    assert_int_equal(g_log.starts, 2);
    check_all_ended();
    aredis_client_free(c);
    check_all_ended();
}

static void test_cancelled_future(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);

    /* Cancelled after it was written: ends at the cancel, not at its reply. */
    uint64_t out = bytes_out(c);
    g_in_call = 1;
    aredis_future *f = aredis_future_command(c, "DEBUG SLEEP 0.2");
    g_in_call = 0;
    seen_op *op = started_one(0, "future DEBUG SLEEP");
    wait_written(c, out);
    assert_int_equal(op->ends, 0);
    aredis_future_cancel(f);
    if (op->ends != 1)
        fail_msg("cancelled future: %d command_end(s) right after the cancel", op->ends);
    check_failed(op, AREDIS_ERR_CANCELLED, err_type(AREDIS_ERR_CANCELLED));
    assert_int_equal(aredis_future_error(f)->code, AREDIS_ERR_CANCELLED);
    aredis_future_release(f);

    /* Cancelled before it was written. */
    g_in_call = 1;
    aredis_future *g = aredis_future_command(c, "GET obs:cancelled");
    g_in_call = 0;
    seen_op *op2 = started_one(1, "future GET");
    aredis_future_cancel(g);
    assert_int_equal(op2->ends, 1);
    check_failed(op2, AREDIS_ERR_CANCELLED, err_type(AREDIS_ERR_CANCELLED));
    aredis_future_release(g);

    /* Everything owed arrives before PONG: no second end. */
    app b = {0};
    cmd(c, &b, "PING");
    assert_int_equal(b.code, AREDIS_ERR_OK);
    assert_int_equal(g_log.starts, 3);
    check_all_ended();
    aredis_client_free(c);
    check_all_ended();
}

/* The connection is killed under a blocked command. */
static void test_lost_connection_client_kill(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_client *killer = ts_client(g_loop, g_srv);
    long long id = ts_client_id(c); /* CLIENT ID: operation 1 */
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_NO_TIMEOUT;
    app a = {0};
    uint64_t out = bytes_out(c);
    seen_op *op = issue_only(c, &co, &a, "BLPOP obs:never 0");
    wait_written(c, out);
    aredis_future *k = ts_cmd(killer, "CLIENT KILL ID %lld", id);
    assert_null(aredis_future_error(k));
    aredis_future_release(k);
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    ended_before(op, &a, "BLPOP");
    if (!aredis_err_is_connection(op->outcome))
        fail_msg("BLPOP on a killed connection: outcome %s", aredis_err_name(op->outcome));
    check_failed(op, op->outcome, err_type(op->outcome));
    assert_false(op->has_status);
    check_times(op);
    /* And the connection's end was reported. */
    const seen_ev *d = nth_ev(AREDIS_CONN_DISCONNECT, 0);
    if (!d) fail_msg("no DISCONNECT event after CLIENT KILL");
    assert_true(aredis_err_is_connection(d->outcome));
    aredis_client_free(killer);
    aredis_client_free(c);
    check_all_ended();
}

/* The same through the proxy: the link is reset under a command. */
static void test_lost_connection_proxy_reset(void **state) {
    (void)state;
    log_reset();
    ts_proxied rig;
    aredis_options o = ts_proxied_start(&rig);
    g_rig_loop = rig.loop;
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_NO_TIMEOUT;
    app a = {0};
    uint64_t out = bytes_out(c);
    seen_op *op = issue_only(c, &co, &a, "BLPOP obs:never 0");
    wait_written(c, out);
    ts_proxy_reset_all(rig.px);
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    ended_before(op, &a, "BLPOP");
    if (!aredis_err_is_connection(op->outcome))
        fail_msg("BLPOP on a reset link: outcome %s", aredis_err_name(op->outcome));
    check_failed(op, op->outcome, err_type(op->outcome));
    assert_int_equal(op->peer_port, ts_proxy_port(rig.px));
    g_rig_loop = NULL;
    ts_proxied_stop(&rig, c);
    check_all_ended();
}

/* Commands waiting for a first connect that fails get its error. */
static void test_waiting_then_connect_failed(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    o.port = ts_dead_port();
    o.reconnect = 0;
    aredis_client *c = observed_client(&o, &k_obs, NULL, 0);
    app a = {0}, b = {0};
    seen_op *op = issue_only(c, NULL, &a, "GET obs:k");
    seen_op *op2 = issue_only(c, NULL, &b, "SET obs:k v");
    assert_false(op->has_peer);
    assert_int_equal(op->peer_port, 0);
    assert_int_equal(op->server_port, o.port);
    assert_true(ts_wait(g_loop, &b.calls, 10000));
    ended_before(op, &a, "GET");
    ended_before(op2, &b, "SET");
    if (!aredis_err_is_connection(op->outcome))
        fail_msg("GET waiting for a refused connect: %s", aredis_err_name(op->outcome));
    check_failed(op, a.code, err_type(a.code));
    check_failed(op2, b.code, err_type(b.code));
    check_times(op);

    /* The attempt: one CONNECT event with its failure. */
    assert_int_equal(count_evs(AREDIS_CONN_CONNECT), 1);
    const seen_ev *e = nth_ev(AREDIS_CONN_CONNECT, 0);
    assert_int_not_equal(e->outcome, AREDIS_ERR_OK);
    assert_true(e->has_error_type);
    assert_string_equal(e->error_type, err_type(e->outcome));
    assert_string_equal(e->server_address, "127.0.0.1");
    assert_int_equal(e->server_port, o.port);
    assert_ptr_equal(e->client, c);
    assert_int_equal(count_evs(AREDIS_CONN_DISCONNECT), 0); /* never ready */

    /* Refused at issue now: nothing reported. */
    app x = {0};
    g_in_call = 1;
    aredis_err r = aredis_command(c, on_app, &x, "GET obs:k");
    g_in_call = 0;
    assert_int_not_equal(r, AREDIS_ERR_OK);
    assert_int_equal(g_log.starts, 2);
    aredis_client_free(c);
    check_all_ended();
    assert_int_equal(x.calls, 0);
}

/* Commands issued while an established client is reconnecting wait, with no
 * peer, then fail when their deadline passes. */
static void test_waiting_while_reconnecting_then_failed(void **state) {
    (void)state;
    log_reset();
    ts_proxied rig;
    aredis_options o = ts_proxied_start(&rig);
    o.request_timeout_ms = 300;
    o.reconnect_delay_ms = 20;
    o.max_reconnect_delay_ms = 50;
    g_rig_loop = rig.loop;
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    ts_proxy_refuse(rig.px, 1);
    ts_proxy_close_all(rig.px);
    wait_evs(2); /* CONNECT, DISCONNECT */
    assert_int_equal(g_log.evs[1].kind, AREDIS_CONN_DISCONNECT);
    app a = {0};
    seen_op *op = issue_only(c, NULL, &a, "GET obs:k");
    assert_false(op->has_peer);
    assert_int_equal(op->peer_port, 0);
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    ended_before(op, &a, "GET");
    assert_int_not_equal(op->outcome, AREDIS_ERR_OK);
    check_failed(op, a.code, err_type(a.code));
    ts_log("GET waiting through refused reconnects: %s", aredis_err_name(a.code));
    g_rig_loop = NULL;
    ts_proxied_stop(&rig, c);
    check_all_ended();
}

/* A call that returns an error issued nothing and reports nothing. */
static void test_refused_at_issue(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    app x = {0};
    g_in_call = 1;
    assert_int_equal(aredis_command(c, on_app, &x, "SUBSCRIBE obs:ch"), AREDIS_ERR_UNSUPPORTED);
    assert_int_equal(aredis_command(c, on_app, &x, "WATCH obs:k"), AREDIS_ERR_UNSUPPORTED);
    g_in_call = 0;
    aredis_pipeline *empty = aredis_pipeline_new(c);
    assert_int_not_equal(aredis_pipeline_exec(empty, on_app, &x), AREDIS_ERR_OK);
    assert_int_equal(g_log.starts, 0);

    aredis_client_close(c);
    g_in_call = 1;
    assert_int_not_equal(aredis_command(c, on_app, &x, "GET obs:k"), AREDIS_ERR_OK);
    aredis_future *f = aredis_future_command(c, "GET obs:k");
    g_in_call = 0;
    assert_non_null(f);
    assert_true(aredis_future_is_done(f));
    assert_non_null(aredis_future_error(f));
    aredis_future_release(f);
    aredis_pipeline *p = aredis_pipeline_new(c);
    if (p) {
        if (aredis_pipeline_command(p, "GET obs:k") == AREDIS_ERR_OK)
            assert_int_not_equal(aredis_pipeline_exec(p, on_app, &x), AREDIS_ERR_OK);
        aredis_pipeline_free(p);
    }
    if (g_log.starts)
        fail_msg("%zu command_start(s) for calls refused at issue; the first: %s", g_log.starts,
                 g_log.ops[0].name);
    assert_int_equal(g_log.ends, 0);
    assert_int_equal(x.calls, 0);
    aredis_pipeline_free(empty);
    aredis_client_free(c);
    assert_int_equal(g_log.starts, 0);
    assert_int_equal(g_log.ends, 0);
    check_clean();
}

/* Freed with commands in flight, queued and waiting for the connect: each
 * ends once (the client is gone: the log is global). */
static void test_free_with_pending(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.flags = AREDIS_CMD_NO_TIMEOUT;
    app a = {0}, b = {0};
    uint64_t out = bytes_out(c);
    issue_only(c, &co, &a, "BLPOP obs:never 0");
    issue_only(c, NULL, &b, "GET obs:k");
    g_in_call = 1;
    aredis_future *f = aredis_future_command(c, "GET obs:k2");
    g_in_call = 0;
    started_one(2, "future GET");
    wait_written(c, out);
    /* And one on a client still connecting. */
    aredis_client *c2 = observed_client(&o, &k_obs, NULL, 0);
    app d = {0};
    issue_only(c2, NULL, &d, "GET obs:k");
    assert_int_equal(g_log.ends, 0);

    aredis_client_free(c);
    aredis_client_free(c2);
    assert_int_equal(g_log.starts, 4);
    if (g_log.ends != 4) fail_msg("freed with 4 pending: %zu command_end(s)", g_log.ends);
    for (size_t i = 0; i < 4; i++) {
        const seen_op *op = &g_log.ops[i];
        if (op->outcome != AREDIS_ERR_CANCELLED && op->outcome != AREDIS_ERR_CLOSED)
            fail_msg("%s pending at free: outcome %s", op->name, aredis_err_name(op->outcome));
        assert_string_equal(op->error_type, err_type(op->outcome));
    }
    assert_true(aredis_future_is_done(f));
    aredis_future_release(f);
    /* Nothing more, whatever the loop does now. */
    aredis_client *other = ts_client(g_loop, g_srv);
    ts_echo_tokens(other, "obs", 2, 10000, "free with pending");
    aredis_client_free(other);
    assert_int_equal(g_log.ends, 4);
    check_all_ended();
    assert_int_equal(a.calls + b.calls + d.calls, 3);
}

/* Operations started keep the observer they started with; NULL stops. */
static void test_observer_switch(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, &g_tag_a, 1);
    app a = {0}, b = {0}, d = {0};
    seen_op *op = issue_only(c, NULL, &a, "GET obs:k");
    assert_int_equal(aredis_client_set_observer(c, &k_obs, &g_tag_b), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    ended_before(op, &a, "GET");
    assert_ptr_equal(op->end_data, &g_tag_a);
    op = cmd(c, &b, "GET obs:k");
    assert_ptr_equal(op->data, &g_tag_b);
    assert_int_equal(aredis_client_set_observer(c, NULL, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_command(c, on_app, &d, "GET obs:k"), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &d.calls, 10000));
    check_clean();
    assert_int_equal(g_log.starts, 2); /* not observed any more */
    assert_int_equal(g_log.ends, 2);
    aredis_client_free(c);
    check_all_ended();
}

/* Observed from the moment it is set: a connect under way when the observer
 * comes is reported when it ends. */
static void test_observer_set_while_connecting(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CONNECTING);
    assert_int_equal(aredis_client_set_observer(c, &k_obs, NULL), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    check_clean();
    if (count_evs(AREDIS_CONN_CONNECT) != 1)
        fail_msg("observer set while connecting: %zu CONNECT event(s) when the connect ended",
                 count_evs(AREDIS_CONN_CONNECT));
    assert_int_equal(g_log.evs[0].outcome, AREDIS_ERR_OK);
    assert_int_equal(g_log.evs[0].peer_port, ts_server_port(g_srv));
    app a = {0};
    seen_op *op = cmd(c, &a, "PING");
    check_peer(op, ts_server_port(g_srv));
    aredis_client_free(c);
    check_all_ended();
}

/* A unix socket: the path is server.address, the port 0. */
static void test_unix_socket(void **state) {
    (void)state;
    ts_server *s = ts_server_start(NULL, 1);
    log_reset();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.unix_path = ts_server_unix(s);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    app a = {0};
    seen_op *op = cmd(c, &a, "SET obs:unix %s", "v");
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_string_equal(op->server_address, ts_server_unix(s));
    assert_int_equal(op->server_port, 0);
    assert_int_equal(g_log.evs[0].kind, AREDIS_CONN_CONNECT);
    assert_string_equal(g_log.evs[0].server_address, ts_server_unix(s));
    assert_int_equal(g_log.evs[0].server_port, 0);
    ts_log("unix socket: peer %s:%d", op->has_peer ? op->peer_address : "NULL", op->peer_port);
    aredis_client_free(c);
    check_all_ended();
    ts_server_stop(s);
}

/* Subscribing is an operation; a RESP2 subscription's own connection is
 * observed too. */
static void pubsub_observed(int proto) {
    log_reset();
    aredis_options o = ts_options(g_srv);
    o.protocol = proto;
    aredis_client *c = observed_client(&o, &k_obs, &g_tag_a, 1);
    assert_int_equal(aredis_client_protocol(c), proto);
    size_t evs0 = g_log.n_evs;
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    aredis_subscription *sub = aredis_subscription_new(c, &so);
    assert_non_null(sub);
    const char *names[] = {"obs:ch"};
    size_t before = g_log.starts;
    g_in_call = 1;
    aredis_future *f = aredis_subscription_subscribe_f(sub, AREDIS_SUB_CHANNEL, 1, names, NULL);
    g_in_call = 0;
    assert_non_null(f);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    check_clean();
    if (g_log.starts != before + 1)
        fail_msg("RESP%d SUBSCRIBE: %zu operation(s)", proto, g_log.starts - before);
    seen_op *op = &g_log.ops[before];
    assert_string_equal(op->name, "SUBSCRIBE");
    assert_int_equal(op->ends, 1);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);
    assert_ptr_equal(op->data, &g_tag_a);
    if (proto == 2) {
        /* Its own connection: a CONNECT of another client. */
        int other = 0;
        for (size_t i = evs0; i < g_log.n_evs; i++)
            other |= g_log.evs[i].kind == AREDIS_CONN_CONNECT &&
                     g_log.evs[i].outcome == AREDIS_ERR_OK && g_log.evs[i].client != c;
        if (!other) fail_msg("RESP2: no CONNECT event for the subscription's connection");
        assert_ptr_not_equal(op->client, c);
    }
    /* A message, then unsubscribing. */
    aredis_future *nx = aredis_subscription_next(sub);
    app p = {0};
    cmd(c, &p, "PUBLISH obs:ch hello");
    assert_int_equal(aredis_await(nx), AREDIS_ERR_OK);
    aredis_future_release(nx);
    before = g_log.starts;
    f = aredis_subscription_unsubscribe_f(sub, AREDIS_SUB_CHANNEL, 1, names, NULL);
    assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);
    check_clean();
    assert_int_equal(g_log.starts, before + 1);
    assert_string_equal(g_log.ops[before].name, "UNSUBSCRIBE");
    aredis_subscription_free(sub);
    aredis_client_free(c);
    check_all_ended();
}

static void test_pubsub_resp3(void **state) {
    (void)state;
    pubsub_observed(3);
}

static void test_pubsub_resp2(void **state) {
    (void)state;
    pubsub_observed(2);
}

/* ---- Pipelines and transactions ------------------------------------------- */

static seen_op *exec_pipeline(aredis_pipeline *p, app *a, const char *what) {
    size_t before = g_log.starts;
    g_in_call = 1;
    aredis_err e = aredis_pipeline_exec(p, on_app, a);
    g_in_call = 0;
    assert_int_equal(e, AREDIS_ERR_OK);
    seen_op *op = started_one(before, what);
    assert_true(ts_wait(g_loop, &a->calls, 10000));
    ended_before(op, a, what);
    return op;
}

static void test_pipeline_names(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    o.db = 3;
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_non_null(p);

    app a = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(aredis_pipeline_command(p, "GET obs:p%d", i), AREDIS_ERR_OK);
    assert_int_equal(g_log.starts, 0); /* queued, not issued */
    seen_op *op = exec_pipeline(p, &a, "pipeline of 3 GETs");
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_string_equal(op->name, "BATCH GET");
    assert_int_equal(op->batch_size, 3);
    assert_int_equal(op->db, 3);
    check_peer(op, ts_server_port(g_srv));
    check_times(op);

    app b = {0};
    assert_int_equal(aredis_pipeline_command(p, "SET obs:p0 %s", "x"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "GET obs:p0"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "INCR obs:pn"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "GET obs:p1"), AREDIS_ERR_OK);
    op = exec_pipeline(p, &b, "mixed pipeline");
    assert_string_equal(op->name, "BATCH");
    assert_int_equal(op->batch_size, 4);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);

    /* One command: not a batch. */
    app d = {0};
    assert_int_equal(aredis_pipeline_command(p, "GET obs:p0"), AREDIS_ERR_OK);
    op = exec_pipeline(p, &d, "pipeline of one");
    assert_string_equal(op->name, "GET");
    assert_int_equal(op->batch_size, 0);

    /* A command of the pipeline refused by the server: the exec succeeds. */
    app e = {0};
    assert_int_equal(aredis_pipeline_command(p, "LPUSH obs:p0 x"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "LPUSH obs:p0 y"), AREDIS_ERR_OK);
    op = exec_pipeline(p, &e, "pipeline with error replies");
    assert_string_equal(op->name, "BATCH LPUSH");
    assert_int_equal(op->batch_size, 2);
    assert_int_equal(e.code, AREDIS_ERR_OK);
    /* An error reply among the replies: failed, SERVER, the first error's
     * prefix (though the exec itself succeeds). */
    check_failed(op, AREDIS_ERR_SERVER, "WRONGTYPE");
    assert_true(op->has_status);
    assert_string_equal(op->status_code, "WRONGTYPE");
    app e2 = {0};
    assert_int_equal(aredis_pipeline_command(p, "GET obs:p0"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "INCR obs:p0"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "LPUSH obs:p0 z"), AREDIS_ERR_OK);
    op = exec_pipeline(p, &e2, "pipeline with ERR then WRONGTYPE");
    assert_int_equal(e2.code, AREDIS_ERR_OK);
    check_failed(op, AREDIS_ERR_SERVER, "ERR");
    assert_string_equal(op->status_code, "ERR");

    /* A pipeline that times out: one end. */
    app t = {0};
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 50;
    assert_int_equal(aredis_pipeline_command(p, "DEBUG SLEEP 0.3"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "GET obs:p0"), AREDIS_ERR_OK);
    size_t before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_pipeline_exec_ex(p, &co, on_app, &t), AREDIS_ERR_OK);
    g_in_call = 0;
    op = started_one(before, "pipeline timing out");
    assert_true(ts_wait(g_loop, &t.calls, 10000));
    ended_before(op, &t, "pipeline timing out");
    assert_string_equal(op->name, "BATCH");
    check_failed(op, AREDIS_ERR_TIMEOUT, err_type(AREDIS_ERR_TIMEOUT));
    app ping = {0};
    cmd(c, &ping, "PING");

    aredis_pipeline_free(p);
    aredis_client_free(c);
    check_all_ended();
}

static void test_transaction_names(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_tx *tx = aredis_tx_new(c);
    assert_non_null(tx);

    app a = {0};
    assert_int_equal(aredis_tx_queue(tx, "SET obs:t %d", 1), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "INCR obs:t"), AREDIS_ERR_OK);
    assert_int_equal(g_log.starts, 0);
    g_in_call = 1;
    assert_int_equal(aredis_tx_exec(tx, on_app, &a), AREDIS_ERR_OK);
    g_in_call = 0;
    seen_op *op = started_one(0, "MULTI of 2");
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    ended_before(op, &a, "MULTI of 2");
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_string_equal(op->name, "MULTI");
    assert_int_equal(op->batch_size, 2);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);
    check_times(op);

    /* WATCH, a read, then the exec: three operations. */
    const char *keys[] = {"obs:t"};
    app w = {0}, r = {0}, x = {0};
    size_t before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_tx_watch(tx, on_app, &w, 1, keys, NULL), AREDIS_ERR_OK);
    g_in_call = 0;
    seen_op *wop = started_one(before, "WATCH");
    assert_true(ts_wait(g_loop, &w.calls, 10000));
    ended_before(wop, &w, "WATCH");
    assert_string_equal(wop->name, "WATCH");
    assert_int_equal(wop->batch_size, 0);
    assert_int_equal(wop->outcome, AREDIS_ERR_OK);

    before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_tx_command(tx, on_app, &r, "GET obs:t"), AREDIS_ERR_OK);
    g_in_call = 0;
    seen_op *rop = started_one(before, "GET after WATCH");
    assert_true(ts_wait(g_loop, &r.calls, 10000));
    ended_before(rop, &r, "GET after WATCH");
    assert_string_equal(rop->name, "GET");

    assert_int_equal(aredis_tx_queue(tx, "SET obs:t %d", 5), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "GET obs:t"), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "DEL obs:t"), AREDIS_ERR_OK);
    before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_tx_exec(tx, on_app, &x), AREDIS_ERR_OK);
    g_in_call = 0;
    op = started_one(before, "MULTI of 3 after WATCH");
    assert_true(ts_wait(g_loop, &x.calls, 10000));
    ended_before(op, &x, "MULTI of 3");
    assert_string_equal(op->name, "MULTI");
    assert_int_equal(op->batch_size, 3);
    assert_int_equal(g_log.starts, 4);

    /* A transaction of one command: a transaction, not a batch size. */
    app y = {0};
    assert_int_equal(aredis_tx_queue(tx, "GET obs:t"), AREDIS_ERR_OK);
    before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_tx_exec(tx, on_app, &y), AREDIS_ERR_OK);
    g_in_call = 0;
    op = started_one(before, "MULTI of 1");
    assert_true(ts_wait(g_loop, &y.calls, 10000));
    assert_string_equal(op->name, "MULTI");
    assert_int_equal(op->batch_size, 0);

    /* An EXEC array holding an error reply: the transaction succeeded. */
    app v = {0};
    assert_int_equal(aredis_tx_queue(tx, "SET obs:t %s", "text"), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "INCR obs:t"), AREDIS_ERR_OK);
    before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_tx_exec(tx, on_app, &v), AREDIS_ERR_OK);
    g_in_call = 0;
    op = started_one(before, "MULTI with an error inside");
    assert_true(ts_wait(g_loop, &v.calls, 10000));
    ended_before(op, &v, "MULTI with an error inside");
    assert_int_equal(v.code, AREDIS_ERR_OK);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);
    assert_false(op->has_error_type);
    assert_false(op->has_status);

    /* Aborted by WATCH (EXEC answers nil): succeeded too. */
    aredis_client *other = ts_client(g_loop, g_srv);
    app w2 = {0};
    before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_tx_watch(tx, on_app, &w2, 1, keys, NULL), AREDIS_ERR_OK);
    g_in_call = 0;
    started_one(before, "WATCH again");
    assert_true(ts_wait(g_loop, &w2.calls, 10000));
    ts_cmd_ok(other, "SET obs:t %s", "changed");
    assert_int_equal(aredis_tx_queue(tx, "SET obs:t %s", "mine"), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "GET obs:t"), AREDIS_ERR_OK);
    before = g_log.starts;
    aredis_future *abf = NULL;
    g_in_call = 1;
    abf = aredis_tx_exec_future(tx);
    g_in_call = 0;
    op = started_one(before, "MULTI aborted by WATCH");
    assert_int_equal(aredis_await(abf), AREDIS_ERR_OK);
    assert_true(aredis_tx_aborted(aredis_future_reply(abf)));
    aredis_future_release(abf);
    assert_int_equal(op->ends, 1);
    assert_string_equal(op->name, "MULTI");
    assert_int_equal(op->batch_size, 2);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);
    assert_false(op->has_error_type);
    aredis_client_free(other);

    /* EXECABORT: a server error of the transaction as a whole. */
    app z = {0};
    assert_int_equal(aredis_tx_queue(tx, "SET obs:t"), AREDIS_ERR_OK); /* wrong arity */
    assert_int_equal(aredis_tx_queue(tx, "GET obs:t"), AREDIS_ERR_OK);
    before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_tx_exec(tx, on_app, &z), AREDIS_ERR_OK);
    g_in_call = 0;
    op = started_one(before, "MULTI aborted");
    assert_true(ts_wait(g_loop, &z.calls, 10000));
    ended_before(op, &z, "MULTI aborted");
    assert_int_equal(z.code, AREDIS_ERR_SERVER);
    assert_string_equal(z.prefix, "EXECABORT"); /* what the application is told */
    check_failed(op, AREDIS_ERR_SERVER, "EXECABORT");
    assert_string_equal(op->status_code, "EXECABORT");

    aredis_tx_free(tx);
    aredis_client_free(c);
    check_all_ended();
}

/* ---- Query text and secrets ----------------------------------------------- */

static void test_query_text(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs_text, NULL, 1);
    app a = {0}, b = {0}, d = {0}, e = {0};
    seen_op *op = cmd(c, &a, "SET obs:k %s", "v");
    assert_true(op->has_query);
    assert_string_equal(op->query_text, "SET obs:k v");
    op = cmd(c, &b, "get obs:k");
    assert_string_equal(op->query_text, "get obs:k");
    op = cmd(c, &d, "SET obs:q %s", "two words");
    assert_string_equal(op->query_text, "SET obs:q \"two words\"");

    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(p, "SET obs:a %d", 1), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "GET obs:a"), AREDIS_ERR_OK);
    op = exec_pipeline(p, &e, "pipeline with text");
    assert_true(op->has_query);
    assert_string_equal(op->query_text, "SET obs:a 1; GET obs:a");
    aredis_pipeline_free(p);

    /* Long: cut to 1,024 bytes. */
    const char *argv[501];
    char keys[500][20];
    argv[0] = "DEL";
    for (int i = 0; i < 500; i++) {
        snprintf(keys[i], sizeof keys[i], "obs:long:%d", i);
        argv[i + 1] = keys[i];
    }
    size_t before = g_log.starts;
    app m = {0};
    g_in_call = 1;
    assert_int_equal(aredis_command_argv(c, on_app, &m, 501, argv, NULL), AREDIS_ERR_OK);
    g_in_call = 0;
    op = started_one(before, "DEL of 500 keys");
    assert_true(ts_wait(g_loop, &m.calls, 10000));
    assert_true(op->has_query);
    size_t qlen = strlen(op->query_text);
    if (qlen > 1024) fail_msg("query text of %zu bytes, the limit is 1,024", qlen);
    assert_true(qlen >= 1000);
    assert_memory_equal(op->query_text, "DEL obs:long:0 obs:long:1 ", 26);

    aredis_client_free(c);
    check_all_ended();
}

#define PW_SERVER "Srv-Pa55word-7f3a"
#define PW_BOB "B0b-Pa55word-c91e"
#define PW_NEW "N3w-Pa55word-04d2"
#define PW_WRONG "Wr0ng-Pa55word-5be8"

/* Query text is redacted as log lines are; no password anywhere, also the
 * client's own (options or URI) in connection events. */
static void test_no_secret_anywhere(void **state) {
    (void)state;
    static const char *const conf[] = {"requirepass " PW_SERVER, NULL};
    ts_server *s = ts_server_start(conf, 0);
    log_reset();
    g_log.secrets[0] = PW_SERVER;
    g_log.secrets[1] = PW_BOB;
    g_log.secrets[2] = PW_NEW;
    g_log.secrets[3] = PW_WRONG;
    g_log.secrets[4] = "Pa55word";

    aredis_options o = ts_options(s);
    o.password = PW_SERVER;
    aredis_client *c = observed_client(&o, &k_obs_text, NULL, 1);
    app a[10];
    memset(a, 0, sizeof a);
    seen_op *op = cmd(c, &a[0], "AUTH %s", PW_SERVER);
    assert_int_equal(a[0].code, AREDIS_ERR_OK);
    assert_string_equal(op->query_text, "AUTH <redacted>");
    op = cmd(c, &a[1], "AUTH default %s", PW_SERVER);
    assert_string_equal(op->query_text, "AUTH <redacted> <redacted>");
    op = cmd(c, &a[2], "ACL SETUSER obsbob on >%s ~* &* +@all", PW_BOB);
    assert_int_equal(a[2].code, AREDIS_ERR_OK);
    assert_string_equal(op->query_text, "ACL SETUSER obsbob on <redacted> ~* &* +@all");
    op = cmd(c, &a[3], "HELLO 3 AUTH obsbob %s", PW_BOB);
    assert_int_equal(a[3].code, AREDIS_ERR_OK);
    assert_string_equal(op->name, "HELLO");
    assert_string_equal(op->query_text, "HELLO 3 AUTH <redacted> <redacted>");
    op = cmd(c, &a[4], "CONFIG SET requirepass %s", PW_NEW);
    assert_int_equal(a[4].code, AREDIS_ERR_OK);
    assert_string_equal(op->query_text, "CONFIG SET requirepass <redacted>");
    op = cmd(c, &a[5], "AUTH %s", PW_WRONG);
    assert_int_not_equal(a[5].code, AREDIS_ERR_OK);
    ts_log("AUTH with a wrong password: %s %s", aredis_err_name(op->outcome), op->error_type);
    op = cmd(c, &a[6], "CONFIG SET requirepass %s", PW_SERVER);
    assert_int_equal(a[6].code, AREDIS_ERR_OK);

    /* A pipeline carrying a secret. */
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(p, "CONFIG SET masterauth %s", PW_NEW), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "ACL SETUSER obsbob >%s", PW_NEW), AREDIS_ERR_OK);
    op = exec_pipeline(p, &a[7], "pipeline with secrets");
    assert_string_equal(op->query_text,
                        "CONFIG SET masterauth <redacted>; ACL SETUSER obsbob <redacted>");
    aredis_pipeline_free(p);
    aredis_client_free(c);

    /* A client given the password in a URI. */
    char uri[200];
    snprintf(uri, sizeof uri, "redis://default:%s@127.0.0.1:%d/2", PW_SERVER, ts_server_port(s));
    aredis_uri *u = NULL;
    assert_int_equal(aredis_uri_parse(uri, &u, NULL, 0), AREDIS_ERR_OK);
    aredis_options uo = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(u, &uo);
    aredis_client *cu = observed_client(&uo, &k_obs_text, NULL, 1);
    aredis_uri_free(u);
    op = cmd(cu, &a[8], "SET obs:u %s", "v");
    assert_int_equal(op->db, 2);
    assert_string_equal(op->query_text, "SET obs:u v");
    aredis_client_free(cu);

    check_all_ended();
    assert_true(g_log.n_evs >= 4); /* two connects, two disconnects */
    assert_true(g_log.strings_scanned > 50);
    ts_server_stop(s);
}

static void test_trace_parent(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    int x, y;
    app a = {0}, b = {0}, d = {0}, e = {0};
    seen_op *op = cmd(c, &a, "PING");
    assert_null(op->parent);
    aredis_client_set_trace_parent(c, &x);
    op = cmd(c, &b, "PING");
    assert_ptr_equal(op->parent, &x);
    /* The parent when it was issued, whatever is set meanwhile. */
    seen_op *held = issue_only(c, NULL, &d, "PING");
    aredis_client_set_trace_parent(c, &y);
    assert_true(ts_wait(g_loop, &d.calls, 10000));
    assert_ptr_equal(held->parent, &x);
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_int_equal(aredis_pipeline_command(p, "PING"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "PING"), AREDIS_ERR_OK);
    app f = {0};
    op = exec_pipeline(p, &f, "pipeline with a parent");
    assert_ptr_equal(op->parent, &y);
    aredis_pipeline_free(p);
    aredis_client_set_trace_parent(c, NULL);
    op = cmd(c, &e, "PING");
    assert_null(op->parent);
    aredis_client_free(c);
    check_all_ended();
}

/* ---- Connection events ---------------------------------------------------- */

static void test_connect_and_close_events(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    int64_t t0 = realtime_ns();
    aredis_client *c = observed_client(&o, &k_obs, &g_tag_a, 1);
    check_clean();
    assert_int_equal(g_log.n_evs, 1);
    const seen_ev *e = &g_log.evs[0];
    assert_int_equal(e->kind, AREDIS_CONN_CONNECT);
    assert_ptr_equal(e->data, &g_tag_a);
    assert_ptr_equal(e->client, c);
    assert_int_equal(e->outcome, AREDIS_ERR_OK);
    assert_false(e->has_error_type);
    assert_string_equal(e->server_address, "127.0.0.1");
    assert_int_equal(e->server_port, ts_server_port(g_srv));
    assert_true(e->has_peer);
    assert_string_equal(e->peer_address, "127.0.0.1");
    assert_int_equal(e->peer_port, ts_server_port(g_srv));
    assert_true(e->duration_ns > 0);
    if (e->time_unix_ns < t0 - 1000000 || e->time_unix_ns > e->cb_ns + 1000000)
        fail_msg("CONNECT at %" PRId64 ", the test started connecting at %" PRId64
                 " and saw the event at %" PRId64,
                 e->time_unix_ns, t0, e->cb_ns);
    if ((uint64_t)(e->cb_ns - t0) + 50000000 < e->duration_ns)
        fail_msg("CONNECT took %" PRIu64 " ns, longer than the test waited", e->duration_ns);

    app a = {0};
    cmd(c, &a, "PING");
    assert_int_equal(g_log.n_evs, 1);

    /* Asked to close: one DISCONNECT, CLOSED; no reconnect. */
    aredis_client_close(c);
    wait_evs(2);
    e = &g_log.evs[1];
    assert_int_equal(e->kind, AREDIS_CONN_DISCONNECT);
    assert_int_equal(e->outcome, AREDIS_ERR_CLOSED);
    assert_true(e->duration_ns > 0);
    assert_ptr_equal(e->client, c);
    aredis_client_free(c);
    assert_int_equal(count_evs(AREDIS_CONN_RECONNECT), 0);
    assert_int_equal(count_evs(AREDIS_CONN_CONNECT), 1);
    assert_int_equal(count_evs(AREDIS_CONN_DISCONNECT), 1);

    /* Graceful disconnect: CLOSED too. */
    log_reset();
    c = observed_client(&o, &k_obs, NULL, 1);
    aredis_client_disconnect(c);
    wait_evs(2);
    assert_int_equal(g_log.evs[1].kind, AREDIS_CONN_DISCONNECT);
    assert_int_equal(g_log.evs[1].outcome, AREDIS_ERR_CLOSED);
    aredis_client_free(c);
    assert_int_equal(count_evs(AREDIS_CONN_DISCONNECT), 1);
    check_all_ended();
}

static void test_connect_refused_event(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    o.port = ts_dead_port();
    o.reconnect = 0;
    aredis_client *c = observed_client(&o, &k_obs, NULL, 0);
    char detail[200];
    aredis_err r = ts_await_ready(c, detail, sizeof detail);
    assert_int_not_equal(r, AREDIS_ERR_OK);
    wait_evs(1);
    check_clean();
    assert_int_equal(g_log.n_evs, 1);
    const seen_ev *e = &g_log.evs[0];
    assert_int_equal(e->kind, AREDIS_CONN_CONNECT);
    assert_int_equal(e->outcome, AREDIS_ERR_CONNREFUSED);
    assert_true(e->has_error_type);
    assert_string_equal(e->error_type, err_type(AREDIS_ERR_CONNREFUSED));
    assert_int_equal(e->server_port, o.port);
    aredis_client_free(c);
    assert_int_equal(count_evs(AREDIS_CONN_DISCONNECT), 0);
    assert_int_equal(count_evs(AREDIS_CONN_RECONNECT), 0);
}

static int connects_ok(void) {
    int n = 0;
    for (size_t i = 0; i < g_log.n_evs; i++)
        n += g_log.evs[i].kind == AREDIS_CONN_CONNECT && g_log.evs[i].outcome == AREDIS_ERR_OK;
    return n;
}

static int two_connects(const void *p) {
    (void)p;
    return connects_ok() >= 2;
}

static void test_restart_events(void **state) {
    (void)state;
    ts_server *s = ts_server_start(NULL, 0);
    log_reset();
    aredis_options o = ts_options(s);
    o.reconnect_delay_ms = 50;
    o.max_reconnect_delay_ms = 200;
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    assert_int_equal(g_log.n_evs, 1);
    ts_server_restart(s);
    if (!ts_wait_until(g_loop, two_connects, NULL, 20000))
        fail_msg("no CONNECT OK after the restart; %zu events", g_log.n_evs);
    check_clean();
    /* CONNECT OK, DISCONNECT, RECONNECT 1, [failed CONNECT, RECONNECT n]*,
     * CONNECT OK. */
    for (size_t i = 0; i < g_log.n_evs; i++)
        ts_log("event %zu: kind %d outcome %s attempt %u delay %u", i, (int)g_log.evs[i].kind,
               aredis_err_name(g_log.evs[i].outcome), g_log.evs[i].attempt, g_log.evs[i].delay_ms);
    assert_true(g_log.n_evs >= 4);
    const seen_ev *d = &g_log.evs[1];
    assert_int_equal(d->kind, AREDIS_CONN_DISCONNECT);
    assert_true(aredis_err_is_connection(d->outcome));
    assert_true(d->has_error_type);
    assert_true(d->duration_ns > 0);
    const seen_ev *r = &g_log.evs[2];
    assert_int_equal(r->kind, AREDIS_CONN_RECONNECT);
    assert_int_equal(r->attempt, 1);
    assert_true(k.attempts >= 1);
    assert_int_equal(r->delay_ms, k.attempt_delay[0]);
    assert_true(r->delay_ms >= 40 && r->delay_ms <= 60);
    unsigned want_attempt = 2;
    for (size_t i = 3; i + 1 < g_log.n_evs; i += 2) {
        assert_int_equal(g_log.evs[i].kind, AREDIS_CONN_CONNECT);
        assert_int_not_equal(g_log.evs[i].outcome, AREDIS_ERR_OK);
        assert_int_equal(g_log.evs[i + 1].kind, AREDIS_CONN_RECONNECT);
        assert_int_equal(g_log.evs[i + 1].attempt, want_attempt++);
    }
    const seen_ev *last = &g_log.evs[g_log.n_evs - 1];
    assert_int_equal(last->kind, AREDIS_CONN_CONNECT);
    assert_int_equal(last->outcome, AREDIS_ERR_OK);
    assert_int_equal(last->peer_port, ts_server_port(s));
    assert_int_equal((int)count_evs(AREDIS_CONN_RECONNECT), k.attempts);
    aredis_client_free(c);
    ts_server_stop(s);
    check_all_ended();
}

/* ---- Pools ---------------------------------------------------------------- */

static aredis_pool *observed_pool(uint32_t acquire_timeout_ms) {
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    po.min_connections = 1;
    po.max_connections = 1;
    po.acquire_timeout_ms = acquire_timeout_ms;
    aredis_pool *p = aredis_pool_new(g_loop, &po);
    if (!p) fail_msg("aredis_pool_new: %s", aredis_call_error()->detail);
    assert_int_equal(aredis_pool_set_observer(p, &k_obs, &g_tag_b), AREDIS_ERR_OK);
    assert_true(ts_wait_pool_idle(g_loop, p, 1, 10000));
    return p;
}

static void test_pool_observed(void **state) {
    (void)state;
    log_reset();
    aredis_pool *p = observed_pool(5000);
    char name[64];
    snprintf(name, sizeof name, "127.0.0.1:%d/0", ts_server_port(g_srv));
    /* Its connection's connect was seen. */
    assert_int_equal(count_evs(AREDIS_CONN_CONNECT), 1);
    assert_int_equal(g_log.evs[0].outcome, AREDIS_ERR_OK);
    assert_ptr_equal(g_log.evs[0].data, &g_tag_b);

    /* A pool command: an operation on the pool's connection. */
    app a = {0};
    g_in_call = 1;
    assert_int_equal(aredis_pool_command(p, on_app, &a, "SET obs:pool %s", "v"), AREDIS_ERR_OK);
    g_in_call = 0;
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    check_clean();
    assert_int_equal(g_log.starts, 1);
    seen_op *op = &g_log.ops[0];
    assert_string_equal(op->name, "SET");
    assert_non_null(op->client);
    assert_ptr_equal(op->data, &g_tag_b);
    assert_int_equal(op->ends, 1);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);
    assert_int_equal(g_log.n_waits, 0); /* one was idle */

    /* Found idle: no wait. Then a second acquire waits for the release. */
    ts_acquired g1 = {0}, g2 = {0};
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g1), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g1.calls, 10000));
    assert_int_equal(g1.code, AREDIS_ERR_OK);
    assert_int_equal(g_log.n_waits, 0);
    app b = {0};
    op = cmd(g1.c, &b, "GET obs:pool");
    assert_ptr_equal(op->client, g1.c);
    assert_ptr_equal(op->data, &g_tag_b);

    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g2), AREDIS_ERR_OK);
    /* The wait lasts a few loop turns at least. */
    app d = {0};
    cmd(g1.c, &d, "PING");
    assert_int_equal(g2.calls, 0);
    assert_int_equal(g_log.n_waits, 0);
    assert_int_equal(aredis_pool_release(p, g1.c), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g2.calls, 10000));
    assert_int_equal(g2.code, AREDIS_ERR_OK);
    check_clean();
    assert_int_equal(g_log.n_waits, 1);
    const seen_wait *w = &g_log.waits[0];
    assert_ptr_equal(w->pool, p);
    assert_ptr_equal(w->data, &g_tag_b);
    assert_string_equal(w->pool_name, name);
    assert_int_equal(w->outcome, AREDIS_ERR_OK);
    assert_false(w->has_error_type);
    assert_true(w->duration_ns > 0);
    assert_int_equal(w->used, 1);
    assert_int_equal(w->idle, 0);
    assert_int_equal(aredis_pool_release(p, g2.c), AREDIS_ERR_OK);
    aredis_pool_free(p);
    check_all_ended();
}

static void test_pool_wait_timeout(void **state) {
    (void)state;
    log_reset();
    aredis_pool *p = observed_pool(100);
    ts_acquired g1 = {0}, g2 = {0};
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g1), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g1.calls, 10000));
    assert_int_equal(g1.code, AREDIS_ERR_OK);
    uint64_t t0 = ts_now_ms();
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g2), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g2.calls, 10000));
    uint64_t took = ts_now_ms() - t0;
    assert_int_equal(g2.code, AREDIS_ERR_TIMEOUT);
    check_clean();
    assert_int_equal(g_log.n_waits, 1);
    const seen_wait *w = &g_log.waits[0];
    assert_int_equal(w->outcome, AREDIS_ERR_TIMEOUT);
    assert_true(w->has_error_type);
    assert_string_equal(w->error_type, err_type(AREDIS_ERR_TIMEOUT));
    if (w->duration_ns < 90000000 || w->duration_ns > (took + 50) * 1000000)
        fail_msg("wait of %" PRIu64 " ns: the acquire timeout is 100 ms, the test waited %" PRIu64
                 " ms",
                 w->duration_ns, took);
    assert_int_equal(w->used, 1);
    assert_int_equal(aredis_pool_release(p, g1.c), AREDIS_ERR_OK);
    aredis_pool_free(p);
    check_all_ended();
}

/* Run the loop for about ms (a timer ends the wait: nothing is timed). */
static void flag_set(void *arg) { *(int *)arg = 1; }
static void run_ms(uint64_t ms) {
    int flag = 0;
    aredis_timer *t = aredis_timer_new(g_loop, flag_set, &flag);
    assert_non_null(t);
    aredis_timer_start(t, ms, 0);
    assert_true(ts_wait(g_loop, &flag, ms + 10000));
    aredis_timer_free(t);
}

typedef struct stat_arg {
    aredis_pool *p;
    uint64_t resets;
} stat_arg;

static int reset_and_idle(const void *p) {
    const stat_arg *a = p;
    aredis_pool_stats s;
    aredis_pool_get_stats(a->p, &s);
    return s.resets >= a->resets && s.idle == 1;
}

static size_t ops_named(const char *name) {
    size_t n = 0;
    for (size_t i = 0; i < g_log.starts; i++)
        n += strcmp(g_log.ops[i].name, name) == 0;
    return n;
}

/* The pool's own commands (a health-check PING, the SELECT that resets a
 * released connection) are the library's, not operations. */
static void test_pool_own_commands_not_ops(void **state) {
    (void)state;
    log_reset();
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    po.min_connections = 1;
    po.max_connections = 1;
    po.health_check_after_ms = 1;
    aredis_pool *p = aredis_pool_new(g_loop, &po);
    assert_non_null(p);
    assert_int_equal(aredis_pool_set_observer(p, &k_obs, NULL), AREDIS_ERR_OK);
    assert_true(ts_wait_pool_idle(g_loop, p, 1, 10000));
    run_ms(20); /* idle longer than health_check_after_ms */
    ts_acquired g = {0};
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g.calls, 10000));
    assert_int_equal(g.code, AREDIS_ERR_OK);
    aredis_pool_stats st;
    aredis_pool_get_stats(p, &st);
    assert_int_equal(st.health_checks, 1);
    app a = {0};
    cmd(g.c, &a, "SELECT 2");
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_int_equal(aredis_pool_release(p, g.c), AREDIS_ERR_OK);
    stat_arg sa = {p, 1};
    assert_true(ts_wait_until(g_loop, reset_and_idle, &sa, 10000));
    check_clean();
    for (size_t i = 0; i < g_log.starts; i++)
        ts_log("pool operation %zu: %s", i, g_log.ops[i].name);
    if (ops_named("PING") != 0)
        fail_msg("the pool's health-check PING reported as %zu operation(s)", ops_named("PING"));
    if (ops_named("SELECT") != 1)
        fail_msg("SELECT: %zu operations; the user issued 1, the pool's reset is its own",
                 ops_named("SELECT"));
    assert_int_equal(g_log.starts, 1);
    aredis_pool_free(p);
    check_all_ended();
}

/* ---- Regressions ---------------------------------------------------------- */

/* Let the loop run whatever is still due (a late reply, a deferred free):
 * a round trip on a client of its own. */
static void spin(void) {
    aredis_client *other = ts_client(g_loop, g_srv);
    ts_echo_tokens(other, "obs-spin", 2, 10000, "spin");
    aredis_client_free(other);
}

/* An observer whose command_end closes the client on one outcome. */
static aredis_err g_close_on;
static int g_closes;

static void end_then_close(const aredis_op *op, void *data) {
    on_end(op, data);
    if (op->outcome == g_close_on && !g_closes) {
        g_closes++;
        aredis_client_close(op->client);
    }
}

static const aredis_observer k_obs_end_close = {on_start, end_then_close, on_conn, on_wait, 0};

typedef struct fdone {
    int calls;
    aredis_err code;
} fdone;

static void on_fdone(aredis_future *f, void *data) {
    fdone *d = data;
    d->calls++;
    const aredis_error *e = aredis_future_error(f);
    d->code = e ? e->code : AREDIS_ERR_OK;
}

/*
 * command_end closes the client. Guards a use-after-free in
 * aredis__complete (client.c): the close tears the connection down and
 * recycles the record of the command that just ended (timed out, or
 * cancelled, and still owed its reply), and the application's callback
 * and data were read from that record after the observer's end. ASan
 * reports it; without ASan the callback may run with the wrong data, or
 * twice. Each callback must run exactly once, and each operation end once.
 */
static void test_end_closes_client_on_timeout(void **state) {
    (void)state;
    log_reset();
    g_close_on = AREDIS_ERR_TIMEOUT;
    g_closes = 0;
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs_end_close, NULL, 1);
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 50;
    app a = {0}, b = {0};
    uint64_t out = bytes_out(c);
    seen_op *op = issue_only(c, &co, &a, "DEBUG SLEEP 0.3");
    seen_op *op2 = issue_only(c, NULL, &b, "GET obs:behind");
    wait_written(c, out);
    assert_true(ts_wait(g_loop, &a.calls, 10000));
    assert_true(ts_wait(g_loop, &b.calls, 10000));
    spin(); /* anything owed would come now */
    check_clean();
    assert_int_equal(g_closes, 1);
    if (a.calls != 1 || b.calls != 1)
        fail_msg("callbacks ran %d and %d times, want once each", a.calls, b.calls);
    assert_int_equal(a.code, AREDIS_ERR_TIMEOUT);
    if (b.code != AREDIS_ERR_CANCELLED && !aredis_err_is_connection(b.code))
        fail_msg("the command behind the closing one: %s", aredis_err_name(b.code));
    check_failed(op, AREDIS_ERR_TIMEOUT, err_type(AREDIS_ERR_TIMEOUT));
    check_failed(op2, b.code, err_type(b.code));
    assert_int_equal(g_log.starts, 2);
    check_all_ended();
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CLOSED);
    aredis_client_free(c);
    check_all_ended();

    /* A future cancelled (its command written): its end closes the client. */
    log_reset();
    g_close_on = AREDIS_ERR_CANCELLED;
    g_closes = 0;
    c = observed_client(&o, &k_obs_end_close, NULL, 1);
    out = bytes_out(c);
    g_in_call = 1;
    aredis_future *f1 = aredis_future_command(c, "DEBUG SLEEP 0.2");
    aredis_future *f2 = aredis_future_command(c, "GET obs:behind");
    g_in_call = 0;
    assert_non_null(f1);
    assert_non_null(f2);
    assert_int_equal(g_log.starts, 2);
    fdone d1 = {0}, d2 = {0};
    assert_int_equal(aredis_future_then(f1, on_fdone, &d1), AREDIS_ERR_OK);
    assert_int_equal(aredis_future_then(f2, on_fdone, &d2), AREDIS_ERR_OK);
    wait_written(c, out);
    aredis_future_cancel(f1);
    assert_int_equal(g_closes, 1);
    assert_true(ts_wait(g_loop, &d2.calls, 10000));
    spin();
    check_clean();
    if (d1.calls != 1 || d2.calls != 1)
        fail_msg("futures done %d and %d times, want once each", d1.calls, d2.calls);
    assert_int_equal(d1.code, AREDIS_ERR_CANCELLED);
    if (d2.code != AREDIS_ERR_CANCELLED && !aredis_err_is_connection(d2.code))
        fail_msg("the future behind the cancelled one: %s", aredis_err_name(d2.code));
    check_failed(&g_log.ops[0], AREDIS_ERR_CANCELLED, err_type(AREDIS_ERR_CANCELLED));
    check_failed(&g_log.ops[1], d2.code, err_type(d2.code));
    check_all_ended();
    aredis_future_release(f1);
    aredis_future_release(f2);
    aredis_client_free(c);
    check_all_ended();
}

/* Pool futures a pool_wait callback acts on (a global: the callback's). */
#define NPF 3
static aredis_future *g_pf[NPF];
static fdone g_pf_done[NPF];
static size_t g_pf_total;
static aredis_pool *g_reenter_pool; /* NULL once freed */
static int g_reenter_mode;          /* 1: cancel another waiter; 2: free the pool */
static int g_reenter_acted;
static int g_reenter_cancelled = -1;

static void on_pf_done(aredis_future *f, void *data) {
    on_fdone(f, data);
    g_pf_total++;
}

static void wait_reenter(const aredis_pool_wait_event *ev, void *data) {
    on_wait(ev, data);
    if (g_reenter_acted || ev->outcome != AREDIS_ERR_TIMEOUT) return;
    g_reenter_acted = 1;
    if (g_reenter_mode == 1) {
        /* The waits end oldest first: this event is the oldest pending
         * future's; cancel the one after it (the waiter a walk of the list
         * would visit next). */
        int skipped = 0;
        for (int i = 0; i < NPF; i++) {
            if (aredis_future_is_done(g_pf[i])) continue;
            if (!skipped++) continue;
            g_reenter_cancelled = i;
            aredis_future_cancel(g_pf[i]);
            break;
        }
    } else {
        aredis_pool *p = g_reenter_pool;
        g_reenter_pool = NULL;
        aredis_pool_free(p);
    }
}

static const aredis_observer k_obs_wait_reenter = {on_start, on_end, on_conn, wait_reenter, 0};

static int pf_all_done(const void *p) {
    (void)p;
    return g_pf_total >= NPF;
}

/*
 * A pool_wait callback that re-enters the pool: cancels another waiting
 * future (mode 1), or frees the pool (mode 2). Guards the pool telling its
 * observer while it walked its waiter list (the tick's timeout walk held a
 * pointer to the next waiter, which the callback cancelled and recycled:
 * a wait ended twice, a future failed twice, the list corrupted); events
 * are now told at the pool's outermost leave(). Each future completes
 * once, and there is one pool_wait event per wait.
 */
static void pool_wait_reenters(int mode) {
    log_reset();
    memset(g_pf, 0, sizeof g_pf);
    memset(g_pf_done, 0, sizeof g_pf_done);
    g_pf_total = 0;
    g_reenter_mode = mode;
    g_reenter_acted = 0;
    g_reenter_cancelled = -1;
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    po.client = ts_options(g_srv);
    po.min_connections = 1;
    po.max_connections = 1;
    po.acquire_timeout_ms = 50;
    aredis_pool *p = aredis_pool_new(g_loop, &po);
    if (!p) fail_msg("aredis_pool_new: %s", aredis_call_error()->detail);
    g_reenter_pool = p;
    assert_int_equal(aredis_pool_set_observer(p, &k_obs_wait_reenter, &g_tag_b), AREDIS_ERR_OK);
    assert_true(ts_wait_pool_idle(g_loop, p, 1, 10000));
    /* The only connection held: the futures wait, and time out. */
    ts_acquired g1 = {0};
    assert_int_equal(aredis_pool_acquire(p, ts_on_acquired, &g1), AREDIS_ERR_OK);
    assert_true(ts_wait(g_loop, &g1.calls, 10000));
    assert_int_equal(g1.code, AREDIS_ERR_OK);
    for (int i = 0; i < NPF; i++) {
        g_pf[i] = aredis_pool_future_command(p, "GET obs:pool:%d", i);
        assert_non_null(g_pf[i]);
        assert_false(aredis_future_is_done(g_pf[i]));
        assert_int_equal(aredis_future_then(g_pf[i], on_pf_done, &g_pf_done[i]), AREDIS_ERR_OK);
    }
    aredis_pool_stats st;
    aredis_pool_get_stats(p, &st);
    assert_int_equal(st.waiting, NPF);
    if (!ts_wait_until(g_loop, pf_all_done, NULL, 10000))
        fail_msg("%zu of %d pool futures done", g_pf_total, NPF);
    assert_int_equal(g_reenter_acted, 1);
    if (mode == 1) {
        /* The pool goes on: a command through it works, and the loop runs
         * whatever was still due. */
        assert_int_equal(aredis_pool_release(p, g1.c), AREDIS_ERR_OK);
        aredis_future *f = aredis_pool_future_command(p, "PING");
        assert_int_equal(aredis_await(f), AREDIS_ERR_OK);
        aredis_future_release(f);
        aredis_pool_get_stats(p, &st);
        assert_int_equal(st.waiting, 0);
    } else {
        assert_null(g_reenter_pool); /* freed: nothing touches it any more */
    }
    spin();
    check_clean();
    for (int i = 0; i < NPF; i++) {
        if (g_pf_done[i].calls != 1)
            fail_msg("pool future %d completed %d times", i, g_pf_done[i].calls);
        aredis_err want = AREDIS_ERR_TIMEOUT;
        if (i == g_reenter_cancelled) want = AREDIS_ERR_CANCELLED;
        if (mode == 2 && g_pf_done[i].code == AREDIS_ERR_CANCELLED) want = AREDIS_ERR_CANCELLED;
        if (g_pf_done[i].code != want)
            fail_msg("pool future %d: %s, want %s", i, aredis_err_name(g_pf_done[i].code),
                     aredis_err_name(want));
    }
    if (mode == 1 && g_reenter_cancelled < 0) fail_msg("no future was left to cancel");
    /* One event per wait, each ended once. */
    if (g_log.n_waits != NPF) {
        for (size_t i = 0; i < g_log.n_waits; i++)
            ts_log("pool_wait %zu: %s", i, aredis_err_name(g_log.waits[i].outcome));
        fail_msg("%zu pool_wait events for %d waits", g_log.n_waits, NPF);
    }
    size_t timeouts = 0;
    for (size_t i = 0; i < g_log.n_waits; i++) {
        const seen_wait *w = &g_log.waits[i];
        assert_ptr_equal(w->pool, p);
        if (w->outcome == AREDIS_ERR_TIMEOUT)
            timeouts++;
        else if (w->outcome != AREDIS_ERR_CANCELLED)
            fail_msg("pool_wait %zu: %s", i, aredis_err_name(w->outcome));
    }
    assert_true(timeouts >= 1);
    for (int i = 0; i < NPF; i++)
        aredis_future_release(g_pf[i]);
    if (mode == 1) aredis_pool_free(p);
    g_reenter_pool = NULL;
    check_all_ended();
}

static void test_pool_wait_callback_reenters(void **state) {
    (void)state;
    pool_wait_reenters(1);
    pool_wait_reenters(2);
}

/* What m counted of operations named `name` (any server, any outcome). */
static uint64_t metrics_count(const aredis_metrics *m, const char *name) {
    aredis_metrics_snapshot *s = aredis_metrics_snapshot_take(m);
    assert_non_null(s);
    uint64_t n = 0;
    for (size_t i = 0; i < s->n_ops; i++)
        if (strcmp(s->ops[i].name, name) == 0) n += s->ops[i].duration.count;
    aredis_metrics_snapshot_free(s);
    return n;
}

/* Subscribe to one channel and wait for the confirmation. */
static void subscribe_one(aredis_subscription *sub, const char *channel) {
    const char *names[] = {channel};
    g_in_call = 1;
    aredis_future *f = aredis_subscription_subscribe_f(sub, AREDIS_SUB_CHANNEL, 1, names, NULL);
    g_in_call = 0;
    assert_non_null(f);
    if (aredis_await(f) != AREDIS_ERR_OK)
        fail_msg("SUBSCRIBE %s: %s", channel, aredis_future_error(f)->detail);
    aredis_future_release(f);
}

static int g_b_starts;
static void *on_start_b(const aredis_op *op, void *data) {
    g_b_starts++;
    return on_start(op, data);
}
static const aredis_observer k_obs_b = {on_start_b, on_end, on_conn, on_wait, 0};

/*
 * RESP2: a subscription's hidden connection (aredis__client_clone) follows
 * what is set on the client it was made from after it was made — the
 * trace parent, the observer (NULL included), the metrics. Guards the
 * clone copying them only once, when it was made: its operations then
 * kept the old parent, went on reporting to an observer the application
 * had removed (and may have freed), and never counted in metrics attached
 * later.
 */
static void test_hidden_subscriber_follows_origin(void **state) {
    (void)state;
    log_reset();
    g_b_starts = 0;
    int p1, p2;
    aredis_options o = ts_options(g_srv);
    o.protocol = 2;
    aredis_client *c = observed_client(&o, &k_obs, &g_tag_a, 1);
    assert_int_equal(aredis_client_protocol(c), 2);
    aredis_client_set_trace_parent(c, &p1);
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    aredis_subscription *sub = aredis_subscription_new(c, &so);
    assert_non_null(sub);

    size_t before = g_log.starts;
    subscribe_one(sub, "obs:hid:a");
    check_clean();
    assert_int_equal(g_log.starts, before + 1);
    seen_op *op = &g_log.ops[before];
    assert_string_equal(op->name, "SUBSCRIBE");
    assert_ptr_not_equal(op->client, c); /* the hidden connection */
    aredis_client *hidden = op->client;
    assert_ptr_equal(op->data, &g_tag_a);
    assert_ptr_equal(op->parent, &p1);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);

    /* A new parent on the origin: the hidden connection's next op has it. */
    aredis_client_set_trace_parent(c, &p2);
    before = g_log.starts;
    subscribe_one(sub, "obs:hid:b");
    check_clean();
    if (g_log.starts != before + 1) fail_msg("second SUBSCRIBE: %zu ops", g_log.starts - before);
    op = &g_log.ops[before];
    assert_string_equal(op->name, "SUBSCRIBE");
    assert_ptr_equal(op->client, hidden);
    if (op->parent != &p2)
        fail_msg("SUBSCRIBE after set_trace_parent(P2): parent %p, P1 %p, P2 %p", op->parent,
                 (void *)&p1, (void *)&p2);

    /* The observer removed from the origin: nothing reported. */
    assert_int_equal(aredis_client_set_observer(c, NULL, NULL), AREDIS_ERR_OK);
    before = g_log.starts;
    size_t ends = g_log.ends;
    subscribe_one(sub, "obs:hid:c");
    check_clean();
    if (g_log.starts != before || g_log.ends != ends)
        fail_msg("SUBSCRIBE with the observer removed: %zu start(s), %zu end(s)",
                 g_log.starts - before, g_log.ends - ends);

    /* Another observer: the next one reports there. */
    assert_int_equal(aredis_client_set_observer(c, &k_obs_b, &g_tag_b), AREDIS_ERR_OK);
    before = g_log.starts;
    subscribe_one(sub, "obs:hid:d");
    check_clean();
    if (g_b_starts != 1 || g_log.starts != before + 1)
        fail_msg("SUBSCRIBE under observer B: %d start(s) told to B, %zu in all", g_b_starts,
                 g_log.starts - before);
    op = &g_log.ops[before];
    assert_ptr_equal(op->data, &g_tag_b);
    assert_ptr_equal(op->end_data, &g_tag_b);
    assert_ptr_equal(op->client, hidden);
    assert_ptr_equal(op->parent, &p2);

    /* Metrics attached to the origin once the hidden connection exists. */
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    assert_int_equal(aredis_client_set_metrics(c, m), AREDIS_ERR_OK);
    subscribe_one(sub, "obs:hid:e");
    subscribe_one(sub, "obs:hid:f");
    uint64_t n = metrics_count(m, "SUBSCRIBE");
    if (n != 2)
        fail_msg("metrics attached after the hidden connection: %" PRIu64 " SUBSCRIBE, 2 made", n);

    aredis_subscription_free(sub);
    aredis_client_free(c);
    aredis_metrics_free(m);
    check_all_ended();

    /* Made while nothing was set on the origin: what is set later follows
     * too. The origin freed first, then the subscription (ASan watches the
     * link between them). */
    log_reset();
    aredis_client *c2 = aredis_client_new(g_loop, &o);
    assert_non_null(c2);
    assert_int_equal(aredis_client_connect(c2), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c2, NULL, 0), AREDIS_ERR_OK);
    aredis_subscription *sub2 = aredis_subscription_new(c2, &so);
    assert_non_null(sub2);
    subscribe_one(sub2, "obs:hid2:a");
    assert_int_equal(g_log.starts, 0);
    aredis_client_set_trace_parent(c2, &p1);
    assert_int_equal(aredis_client_set_observer(c2, &k_obs, &g_tag_a), AREDIS_ERR_OK);
    subscribe_one(sub2, "obs:hid2:b");
    check_clean();
    if (g_log.starts != 1)
        fail_msg("observer set after an unobserved hidden connection was made: %zu SUBSCRIBE "
                 "reported, 1 made",
                 g_log.starts);
    assert_ptr_not_equal(g_log.ops[0].client, c2);
    assert_ptr_equal(g_log.ops[0].data, &g_tag_a);
    assert_ptr_equal(g_log.ops[0].parent, &p1);
    aredis_client_free(c2);
    aredis_subscription_free(sub2);
    check_all_ended();
}

static int g_resubscribed;
static void on_sub_event(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                         void *data) {
    (void)s;
    (void)data;
    if (ev == AREDIS_SUB_RESUBSCRIBED) g_resubscribed++;
    if (ev == AREDIS_SUB_ERROR) violation("subscription error: %s", err ? err->detail : "?");
}

/*
 * After the subscriber connection is lost, the library subscribes again:
 * that replay is part of the reconnect, not an operation. Guards the
 * RESP2 replay (on the hidden connection, issued as an ordinary batch)
 * being reported as a SUBSCRIBE the application never made, and counted
 * in the metrics. RESP3, where the replay was already internal, too.
 */
static void replay_not_an_operation(int proto) {
    log_reset();
    g_resubscribed = 0;
    aredis_metrics *m = aredis_metrics_new();
    assert_non_null(m);
    aredis_options o = ts_options(g_srv);
    o.protocol = proto;
    o.reconnect_delay_ms = 20;
    aredis_client *c = aredis_client_new(g_loop, &o);
    assert_non_null(c);
    assert_int_equal(aredis_client_set_observer(c, &k_obs, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_set_metrics(c, m), AREDIS_ERR_OK);
    assert_int_equal(aredis_client_connect(c), AREDIS_ERR_OK);
    assert_int_equal(ts_await_ready(c, NULL, 0), AREDIS_ERR_OK);
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_event = on_sub_event;
    aredis_subscription *sub = aredis_subscription_new(c, &so);
    assert_non_null(sub);
    subscribe_one(sub, "obs:replay:a");
    assert_int_equal(g_log.starts, 1);

    aredis_client *killer = ts_client(g_loop, g_srv);
    aredis_future *k = ts_cmd(killer, "CLIENT KILL TYPE pubsub");
    assert_null(aredis_future_error(k));
    assert_true(aredis_future_reply(k)->integer >= 1);
    aredis_future_release(k);
    assert_true(ts_wait(g_loop, &g_resubscribed, 10000));
    /* Behind the replay on the same connection: its confirmation came. */
    subscribe_one(sub, "obs:replay:b");
    /* And it delivers. */
    aredis_future *nx = aredis_subscription_next(sub);
    aredis_future *pf = ts_cmd(killer, "PUBLISH obs:replay:a hello");
    aredis_future_release(pf);
    assert_int_equal(aredis_await(nx), AREDIS_ERR_OK);
    aredis_future_release(nx);
    check_clean();
    for (size_t i = 0; i < g_log.starts; i++)
        ts_log("RESP%d op %zu: %s %s", proto, i, g_log.ops[i].name,
               aredis_err_name(g_log.ops[i].outcome));
    if (g_log.starts != 2)
        fail_msg("RESP%d: %zu operations; the application subscribed twice (the replay is the "
                 "library's)",
                 proto, g_log.starts);
    assert_string_equal(g_log.ops[0].name, "SUBSCRIBE");
    assert_string_equal(g_log.ops[1].name, "SUBSCRIBE");
    check_all_ended();
    uint64_t n = metrics_count(m, "SUBSCRIBE");
    if (n != 2) fail_msg("RESP%d: %" PRIu64 " SUBSCRIBE counted, 2 made", proto, n);
    aredis_client_free(killer);
    aredis_subscription_free(sub);
    aredis_client_free(c);
    aredis_metrics_free(m);
    check_all_ended();
}

static void test_resp2_replay_not_an_operation(void **state) {
    (void)state;
    replay_not_an_operation(2);
    replay_not_an_operation(3);
}

static seen_op *exec_tx(aredis_tx *tx, app *a, const char *what) {
    size_t before = g_log.starts;
    g_in_call = 1;
    aredis_err e = aredis_tx_exec(tx, on_app, a);
    g_in_call = 0;
    if (e != AREDIS_ERR_OK) fail_msg("%s: exec refused: %s", what, aredis_call_error()->detail);
    seen_op *op = started_one(before, what);
    assert_true(ts_wait(g_loop, &a->calls, 10000));
    ended_before(op, a, what);
    return op;
}

/*
 * Scripts in a transaction, and the NOSCRIPT retry. Guards the hidden
 * SCRIPT LOAD sent ahead of MULTI naming and sizing the operation (it was
 * a "BATCH" of every command sent, not "MULTI" of the user's), and the
 * retry's SCRIPT LOAD + EVALSHA being reported as a "BATCH" of 2 the
 * application never issued.
 */
static void test_tx_with_script_names(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_client *other = ts_client(g_loop, g_srv);
    aredis_tx *tx = aredis_tx_new(c);
    assert_non_null(tx);

    /* A script never run through this client: a SCRIPT LOAD goes ahead. */
    aredis_script *s = aredis_script_new("return 'obs tx script 1'", 0);
    assert_non_null(s);
    assert_int_equal(aredis_tx_script(tx, s, 0, 0, NULL, NULL, 0, NULL, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "INCR obs:txs"), AREDIS_ERR_OK);
    app a = {0};
    seen_op *op = exec_tx(tx, &a, "MULTI with a script");
    assert_int_equal(a.code, AREDIS_ERR_OK);
    assert_string_equal(op->name, "MULTI");
    assert_int_equal(op->batch_size, 2);
    assert_int_equal(op->outcome, AREDIS_ERR_OK);
    assert_false(op->has_error_type);

    /* With a bad command queued: EXECABORT. */
    aredis_script *s2 = aredis_script_new("return 'obs tx script 2'", 0);
    assert_non_null(s2);
    assert_int_equal(aredis_tx_script(tx, s2, 0, 0, NULL, NULL, 0, NULL, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "NOSUCHCMD obs:txs"), AREDIS_ERR_OK);
    assert_int_equal(aredis_tx_queue(tx, "INCR obs:txs"), AREDIS_ERR_OK);
    app b = {0};
    op = exec_tx(tx, &b, "MULTI with a script and a bad command");
    assert_int_equal(b.code, AREDIS_ERR_SERVER);
    assert_string_equal(b.prefix, "EXECABORT");
    assert_string_equal(op->name, "MULTI");
    assert_int_equal(op->batch_size, 3);
    check_failed(op, AREDIS_ERR_SERVER, "EXECABORT");
    assert_string_equal(op->status_code, "EXECABORT");

    /* NOSCRIPT: the run, then its retry. */
    ts_cmd_ok(other, "SCRIPT FLUSH");
    aredis_script *s3 = aredis_script_new("return 'obs run script 3'", 0);
    assert_non_null(s3);
    app r = {0};
    size_t before = g_log.starts;
    g_in_call = 1;
    assert_int_equal(aredis_script_run(c, s3, 0, on_app, &r, 0, NULL, NULL, 0, NULL, NULL),
                     AREDIS_ERR_OK);
    g_in_call = 0;
    op = started_one(before, "EVALSHA");
    assert_true(ts_wait(g_loop, &r.calls, 10000));
    check_clean();
    if (r.code != AREDIS_ERR_OK)
        fail_msg("the script run failed: %s %s", aredis_err_name(r.code), r.prefix);
    for (size_t i = before; i < g_log.starts; i++)
        ts_log("script op %zu: %s size %zu %s %s", i, g_log.ops[i].name, g_log.ops[i].batch_size,
               aredis_err_name(g_log.ops[i].outcome), g_log.ops[i].error_type);
    if (g_log.starts != before + 2)
        fail_msg("a run meeting NOSCRIPT: %zu operations, want the run and its retry",
                 g_log.starts - before);
    op = &g_log.ops[before];
    assert_string_equal(op->name, "EVALSHA");
    assert_int_equal(op->batch_size, 0);
    check_failed(op, AREDIS_ERR_SERVER, "NOSCRIPT");
    assert_string_equal(op->status_code, "NOSCRIPT");
    seen_op *retry = &g_log.ops[before + 1];
    assert_string_equal(retry->name, "EVALSHA");
    assert_int_equal(retry->batch_size, 0);
    assert_int_equal(retry->outcome, AREDIS_ERR_OK);
    assert_false(retry->has_error_type);
    assert_int_equal(retry->ends, 1);
    if (retry->end_seq + 1 != r.seq) fail_msg("the retry did not end just before the callback");

    aredis_tx_free(tx);
    aredis_script_free(s);
    aredis_script_free(s2);
    aredis_script_free(s3);
    aredis_client_free(other);
    aredis_client_free(c);
    check_all_ended();
}

/*
 * An error reply's first word is error.type only when it is a code word
 * (capitals, digits, '_', '-'). Guards a script's free text (an argument
 * it was given, a secret) becoming the label: "-my secret words" was
 * reported with error_type and status_code "my".
 */
static void test_error_type_only_code_words(void **state) {
    (void)state;
    log_reset();
    g_log.secrets[0] = "secret";
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    app a = {0}, b = {0};
    seen_op *op = cmd(c, &a, "EVAL %s 0", "return redis.error_reply('my secret words')");
    assert_int_equal(a.code, AREDIS_ERR_SERVER);
    assert_string_equal(op->name, "EVAL");
    check_failed(op, AREDIS_ERR_SERVER, "SERVER");
    if (op->has_status) fail_msg("status_code \"%s\" from a script's free text", op->status_code);
    op = cmd(c, &b, "EVAL %s 0", "return redis.error_reply('MYCODE detail')");
    assert_int_equal(b.code, AREDIS_ERR_SERVER);
    check_failed(op, AREDIS_ERR_SERVER, "MYCODE");
    assert_true(op->has_status);
    assert_string_equal(op->status_code, "MYCODE");
    aredis_client_free(c);
    check_all_ended();
}

static void conn_close_on_connect(const aredis_conn_event *ev, void *data) {
    on_conn(ev, data);
    if (ev->kind == AREDIS_CONN_CONNECT && ev->outcome == AREDIS_ERR_OK)
        aredis_client_close(ev->client);
}

static const aredis_observer k_obs_conn_close = {on_start, on_end, conn_close_on_connect, on_wait,
                                                 0};

/*
 * The observer closes the client when told of the connect. Guards the
 * application being told of a connection that never reached it: its
 * on_disconnect ran (on_connect never did), and the observer's
 * DISCONNECT was missing.
 */
static void test_observer_closes_in_connect(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    conn_counters k;
    cc_wire(&o, &k);
    aredis_client *c = observed_client(&o, &k_obs_conn_close, NULL, 0);
    wait_evs(2);
    spin();
    check_clean();
    for (size_t i = 0; i < g_log.n_evs; i++)
        ts_log("event %zu: kind %d %s", i, (int)g_log.evs[i].kind,
               aredis_err_name(g_log.evs[i].outcome));
    assert_int_equal(g_log.n_evs, 2);
    assert_int_equal(g_log.evs[0].kind, AREDIS_CONN_CONNECT);
    assert_int_equal(g_log.evs[0].outcome, AREDIS_ERR_OK);
    assert_int_equal(g_log.evs[1].kind, AREDIS_CONN_DISCONNECT);
    assert_int_equal(g_log.evs[1].outcome, AREDIS_ERR_CLOSED);
    assert_ptr_equal(g_log.evs[1].client, c);
    if (k.connects || k.disconnects)
        fail_msg("closed by the observer at its connect: on_connect ran %d, on_disconnect %d "
                 "time(s)",
                 k.connects, k.disconnects);
    assert_int_equal(k.attempts, 0);
    assert_int_equal(aredis_client_state(c), AREDIS_STATE_CLOSED);
    aredis_client_free(c);
    assert_int_equal(g_log.n_evs, 2);
    check_all_ended();
}

/*
 * Pipelines with scripts: the SCRIPT LOAD the library sends ahead of a
 * script (aredis_pipeline_script puts it right before the EVALSHA) is not
 * the user's command, while the user's own SCRIPT EXISTS is. Guards a
 * naming that skipped any leading SCRIPT command and missed loads placed
 * later.
 */
static void test_pipeline_script_names(void **state) {
    (void)state;
    log_reset();
    aredis_options o = ts_options(g_srv);
    aredis_client *c = observed_client(&o, &k_obs, NULL, 1);
    aredis_pipeline *p = aredis_pipeline_new(c);
    assert_non_null(p);
    app a = {0}, b = {0}, d = {0};
    /* The user's own SCRIPT command first: two commands, a BATCH of 2. */
    assert_int_equal(aredis_pipeline_command(p, "SCRIPT EXISTS abc"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_command(p, "GET obs:ps"), AREDIS_ERR_OK);
    seen_op *op = exec_pipeline(p, &a, "SCRIPT EXISTS + GET");
    assert_string_equal(op->name, "BATCH");
    assert_int_equal(op->batch_size, 2);
    /* A script after a GET: its hidden SCRIPT LOAD is not the user's. */
    aredis_script *s = aredis_script_new("return 'obs pipeline script 1'", 0);
    assert_int_equal(aredis_pipeline_command(p, "GET obs:ps"), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_script(p, s, 0, 0, NULL, NULL, 0, NULL, NULL), AREDIS_ERR_OK);
    op = exec_pipeline(p, &b, "GET + script");
    assert_string_equal(op->name, "BATCH");
    assert_int_equal(op->batch_size, 2);
    /* The same script twice. */
    aredis_script *s2 = aredis_script_new("return 'obs pipeline script 2'", 0);
    assert_int_equal(aredis_pipeline_script(p, s2, 0, 0, NULL, NULL, 0, NULL, NULL), AREDIS_ERR_OK);
    assert_int_equal(aredis_pipeline_script(p, s2, 0, 0, NULL, NULL, 0, NULL, NULL), AREDIS_ERR_OK);
    op = exec_pipeline(p, &d, "script twice");
    assert_string_equal(op->name, "BATCH EVALSHA");
    assert_int_equal(op->batch_size, 2);
    aredis_pipeline_free(p);
    aredis_script_free(s);
    aredis_script_free(s2);
    aredis_client_free(c);
    check_all_ended();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_success_attributes),
        TS_LOOP_CASE(test_peer_unknown_while_waiting),
        TS_LOOP_CASE(test_server_error_reply),
        TS_LOOP_CASE(test_timeout_then_late_reply),
        TS_LOOP_CASE(test_cancelled_future),
        TS_LOOP_CASE(test_lost_connection_client_kill),
        TS_LOOP_CASE(test_lost_connection_proxy_reset),
        TS_LOOP_CASE(test_waiting_then_connect_failed),
        TS_LOOP_CASE(test_waiting_while_reconnecting_then_failed),
        TS_LOOP_CASE(test_refused_at_issue),
        TS_LOOP_CASE(test_free_with_pending),
        TS_LOOP_CASE(test_observer_switch),
        TS_LOOP_CASE(test_observer_set_while_connecting),
        TS_LOOP_CASE(test_unix_socket),
        TS_LOOP_CASE(test_pubsub_resp3),
        TS_LOOP_CASE(test_pubsub_resp2),
        TS_LOOP_CASE(test_pipeline_names),
        TS_LOOP_CASE(test_transaction_names),
        TS_LOOP_CASE(test_query_text),
        TS_LOOP_CASE(test_no_secret_anywhere),
        TS_LOOP_CASE(test_trace_parent),
        TS_LOOP_CASE(test_connect_and_close_events),
        TS_LOOP_CASE(test_connect_refused_event),
        TS_LOOP_CASE(test_restart_events),
        TS_LOOP_CASE(test_pool_observed),
        TS_LOOP_CASE(test_pool_wait_timeout),
        TS_LOOP_CASE(test_pool_own_commands_not_ops),
        TS_LOOP_CASE(test_end_closes_client_on_timeout),
        TS_LOOP_CASE(test_pool_wait_callback_reenters),
        TS_LOOP_CASE(test_hidden_subscriber_follows_origin),
        TS_LOOP_CASE(test_resp2_replay_not_an_operation),
        TS_LOOP_CASE(test_tx_with_script_names),
        TS_LOOP_CASE(test_pipeline_script_names),
        TS_LOOP_CASE(test_error_type_only_code_words),
        TS_LOOP_CASE(test_observer_closes_in_connect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
