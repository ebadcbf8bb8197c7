/*
 * SCAN iterators (aredis/scan.h), built on the client's public API only.
 *
 * Each batch is one command future (aredis_future_argv_ex with
 * AREDIS_CMD_RETRYABLE) whose first then-callback, on_batch(), is ours: it
 * reads the reply, moves the cursor, and hands the outcome to whoever asked
 * for the batch — a batch callback, the walk of aredis_scan_each(), or
 * nobody (the futures style: the caller reads the batch from the future).
 * Using a future for every style gives one cancel path: aredis_scan_free()
 * cancels the batch in flight, and the cancelled future runs on_batch() at
 * once with CANCELLED, so each callback still runs exactly once.
 *
 * The iterator keeps no reference to the future. It does not need one: a
 * pending command future is held by its command until it completes, and
 * on_batch() — run at completion — forgets it. So `inflight` is valid
 * exactly while it is set.
 *
 * The cursor moves only when a reply was read as a whole SCAN reply: a
 * failed or malformed batch leaves it where it was, and the next batch asks
 * for the same place again (at least once, never skipping).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aredis/scan.h"
#include "util/alloc.h"
#include "util/error.h"

/* Who gets the batch in flight. Named for traces and error details. */
#define SCAN_MODE_MAP(X)                                                                           \
    X(IDLE, "idle")                                                                                \
    X(CALLBACK, "a batch callback")                                                                \
    X(FUTURE, "a batch future")                                                                    \
    X(EACH, "a walk")
typedef enum scan_mode {
#define SCAN_MODE_ENUM(n, s) SCAN_MODE_##n,
    SCAN_MODE_MAP(SCAN_MODE_ENUM)
#undef SCAN_MODE_ENUM
} scan_mode;

static const char *mode_name(scan_mode m) {
    switch (m) {
#define SCAN_MODE_NAME(n, s)                                                                       \
    case SCAN_MODE_##n:                                                                            \
        return s;
        SCAN_MODE_MAP(SCAN_MODE_NAME)
#undef SCAN_MODE_NAME
    }
    return "?";
}

/* The command of each kind, indexed by aredis_scan_kind. */
static const char *const k_cmd[] = {"SCAN", "HSCAN", "SSCAN", "ZSCAN"};

/* A 64-bit cursor in decimal: at most 20 digits, and a NUL. */
#define CURSOR_MAX 21

struct aredis_scan {
    aredis_client *client;
    aredis_scan_kind kind;
    char *key; /* HASH, SET, ZSET; NUL-added copy */
    size_t keylen;
    char *match; /* NULL: no MATCH */
    size_t matchlen;
    char *type;     /* NULL: no TYPE */
    char count[12]; /* "" : no COUNT */
    uint32_t timeout_ms;
    char cursor[CURSOR_MAX]; /* what the next batch sends */
    int done;                /* a batch brought cursor 0 back */
    uint64_t batches;

    scan_mode mode;          /* who gets the batch in flight */
    aredis_future *inflight; /* not owned; valid while set (see the top) */
    int walking;             /* aredis_scan_each() under way */
    aredis_scan_fn *cb;
    aredis_scan_elem_fn *elem_cb;
    aredis_scan_done_fn *done_cb;
    void *cb_data;

    /* Free is deferred while our callbacks run (depth > 0). */
    unsigned depth;
    int freed;
    void *data;
};

/* HASH and ZSET batches come as pairs. */
static int kind_pairs(aredis_scan_kind k) { return k == AREDIS_SCAN_HASH || k == AREDIS_SCAN_ZSET; }

/* ---- Cursors and replies ------------------------------------------------ */

/* 1 when p[0..len) is a decimal number that fits 64 bits (digits only). */
static int parse_u64(const char *p, size_t len, uint64_t *out) {
    if (len == 0 || len > CURSOR_MAX - 1) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static int is_scalar(const aredis_reply *r) {
    switch (r->type) {
    case AREDIS_REPLY_STRING:
    case AREDIS_REPLY_STATUS:
    case AREDIS_REPLY_VERB:
    case AREDIS_REPLY_INTEGER:
    case AREDIS_REPLY_DOUBLE:
    case AREDIS_REPLY_BIGNUM:
        return 1;
    default:
        return 0;
    }
}

/*
 * Read a SCAN-family reply: [cursor, elements]. RESP2 and RESP3 alike send
 * the cursor as a bulk string and the elements as an array; a status or a
 * non-negative integer cursor and a set or map of elements are accepted too
 * (same layout). Every element must be a scalar, and a HASH or ZSET batch
 * must hold pairs. Returns NULL with *cursor (normalised decimal), *value
 * and *batch set, or what is wrong with the reply.
 */
static const char *parse_reply(const aredis_reply *r, aredis_scan_kind kind,
                               char cursor[CURSOR_MAX], uint64_t *value,
                               const aredis_reply **batch) {
    if (!r) return "no reply";
    if (r->type != AREDIS_REPLY_ARRAY) return "not an array";
    if (r->elements != 2) return "not two elements";
    const aredis_reply *c = r->element[0], *e = r->element[1];
    if (!c || !e) return "an element is missing";
    if (c->type == AREDIS_REPLY_STRING || c->type == AREDIS_REPLY_STATUS) {
        if (!parse_u64(c->str, c->len, value)) return "the cursor is not a 64-bit number";
    } else if (c->type == AREDIS_REPLY_INTEGER && c->integer >= 0) {
        *value = (uint64_t)c->integer;
    } else {
        return "the cursor is not a string";
    }
    if (e->type != AREDIS_REPLY_ARRAY && e->type != AREDIS_REPLY_SET && e->type != AREDIS_REPLY_MAP)
        return "the elements are not an array";
    if (kind_pairs(kind) && e->elements % 2) return "an odd number of elements for pairs";
    for (size_t i = 0; i < e->elements; i++)
        if (!e->element[i] || !is_scalar(e->element[i])) return "an element is not a string";
    snprintf(cursor, CURSOR_MAX, "%" PRIu64, *value);
    *batch = e;
    return NULL;
}

/* ---- Issuing a batch ---------------------------------------------------- */

static void on_batch(aredis_future *f, void *data);

/* OK when a batch may be issued now; else INVALID, with the reason as
 * aredis_call_error(). One batch at a time keeps the cursor a single
 * thread of progress: two batches in flight would ask for the same place. */
static aredis_err check_idle(const aredis_scan *s) {
    const char *cmd = k_cmd[s->kind];
    if (s->freed)
        return aredis__call_fail(AREDIS_ERR_INVALID, "%s: the iterator is being freed", cmd);
    if (s->mode != SCAN_MODE_IDLE || s->walking)
        return aredis__call_fail(AREDIS_ERR_INVALID,
                                 "%s: one batch at a time, and %s is already under way", cmd,
                                 mode_name(s->walking ? SCAN_MODE_EACH : s->mode));
    if (s->done) return aredis__call_fail(AREDIS_ERR_INVALID, "%s: the scan is complete", cmd);
    return AREDIS_ERR_OK;
}

/*
 * Send the next batch for `mode`. On success the batch is in flight and
 * *out (when not NULL) holds the caller's reference to its future; else
 * nothing was sent and aredis_call_error() says why.
 */
static aredis_err issue(aredis_scan *s, scan_mode mode, aredis_future **out) {
    const char *argv[10];
    size_t len[10];
    int n = 0;
#define ARG(p, l) (argv[n] = (p), len[n] = (l), n++)
    ARG(k_cmd[s->kind], strlen(k_cmd[s->kind]));
    if (s->key) ARG(s->key, s->keylen);
    ARG(s->cursor, strlen(s->cursor));
    if (s->match) {
        ARG("MATCH", 5);
        ARG(s->match, s->matchlen);
    }
    if (s->count[0]) {
        ARG("COUNT", 5);
        ARG(s->count, strlen(s->count));
    }
    if (s->type) {
        ARG("TYPE", 4);
        ARG(s->type, strlen(s->type));
    }
#undef ARG
    /* Read-only: safe to send again after a reconnect with the same cursor. */
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    o.timeout_ms = s->timeout_ms;
    o.flags = AREDIS_CMD_RETRYABLE;
    aredis_future *f = aredis_future_argv_ex(s->client, &o, n, argv, len);
    if (!f) return aredis__call_fail(AREDIS_ERR_NOMEM, "%s: out of memory", k_cmd[s->kind]);
    if (aredis_future_is_done(f)) {
        /* Refused at issue (CLOSED, NOT_CONNECTED, QUEUE_FULL...): a
         * callback-style refusal, so that no callback ever runs for it. */
        const aredis_error *e = aredis_future_error(f);
        aredis_err code = e ? e->code : AREDIS_ERR_INVALID;
        aredis__call_fail(code, "%s: %s", k_cmd[s->kind], e ? e->detail : "refused");
        aredis_future_release(f);
        return code;
    }
    s->mode = mode;
    s->inflight = f;
    if (aredis_future_then(f, on_batch, s) != AREDIS_ERR_OK) {
        s->mode = SCAN_MODE_IDLE;
        s->inflight = NULL;
        aredis_future_cancel(f); /* the command is not sent, or its reply dropped */
        aredis_future_release(f);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "%s: out of memory", k_cmd[s->kind]);
    }
    if (out)
        *out = f;
    else
        aredis_future_release(f); /* the command holds it until on_batch */
    return AREDIS_ERR_OK;
}

/* ---- Completing a batch ------------------------------------------------- */

static void scan_destroy(aredis_scan *s) {
    aredis__free(s->key);
    aredis__free(s->match);
    aredis__free(s->type);
    aredis__free(s);
}

/* End a walk: done_cb runs once, with the walk already over (so that it may
 * start another, or free the iterator). */
static void walk_finish(aredis_scan *s, const aredis_error *err) {
    aredis_scan_done_fn *done = s->done_cb;
    void *data = s->cb_data;
    s->walking = 0;
    s->elem_cb = NULL;
    s->done_cb = NULL;
    if (done) done(s, err, data);
}

/* One batch of aredis_scan_each(): its elements, then the next batch or
 * the end. */
static void walk(aredis_scan *s, const aredis_reply *batch, const aredis_error *err) {
    int stop = 0;
    if (!err) {
        size_t step = kind_pairs(s->kind) ? 2 : 1;
        for (size_t i = 0; i + step <= batch->elements && !s->freed; i += step) {
            const aredis_reply *value = step == 2 ? batch->element[i + 1] : NULL;
            if (s->elem_cb(s, batch->element[i], value, s->cb_data)) {
                stop = 1;
                break;
            }
        }
    }
    aredis_error e = {AREDIS_ERR_CANCELLED, "", ""};
    char detail[256];
    if (s->freed) {
        snprintf(detail, sizeof detail, "%s: the iterator was freed during the walk",
                 k_cmd[s->kind]);
        e.detail = detail;
        err = &e;
    } else if (!err && !stop && !s->done) {
        if (issue(s, SCAN_MODE_EACH, NULL) == AREDIS_ERR_OK) return; /* the walk goes on */
        /* aredis_call_error() may change under done_cb: keep a copy. */
        const aredis_error *ce = aredis_call_error();
        snprintf(detail, sizeof detail, "%s", ce->detail);
        e.code = ce->code;
        e.detail = detail;
        err = &e;
    }
    walk_finish(s, err);
}

/* Our then-callback on every batch future: runs first, at completion. */
static void on_batch(aredis_future *f, void *data) {
    aredis_scan *s = data;
    scan_mode mode = s->mode;
    s->mode = SCAN_MODE_IDLE;
    s->inflight = NULL;

    const aredis_reply *batch = NULL;
    const aredis_error *err = aredis_future_error(f);
    aredis_error perr = {AREDIS_ERR_PROTOCOL, "", ""};
    char detail[160];
    if (!err) {
        char cursor[CURSOR_MAX];
        uint64_t value = 0;
        const char *why = parse_reply(aredis_future_reply(f), s->kind, cursor, &value, &batch);
        if (why) {
            snprintf(detail, sizeof detail, "%s reply: %s", k_cmd[s->kind], why);
            perr.detail = detail;
            err = &perr;
            batch = NULL;
        } else {
            memcpy(s->cursor, cursor, sizeof cursor);
            s->done = value == 0;
            s->batches++;
        }
    }

    s->depth++;
    if (mode == SCAN_MODE_CALLBACK) {
        aredis_scan_fn *cb = s->cb;
        void *cb_data = s->cb_data;
        s->cb = NULL;
        cb(s, batch, err, cb_data);
    } else if (mode == SCAN_MODE_EACH) {
        walk(s, batch, err);
    }
    /* SCAN_MODE_FUTURE: the caller reads the batch from the future. */
    s->depth--;
    if (s->freed && s->depth == 0) scan_destroy(s);
}

/* ---- Public API --------------------------------------------------------- */

static aredis_err bad(const char *what) {
    return aredis__call_fail(AREDIS_ERR_INVALID, "aredis_scan_new: %s", what);
}

aredis_scan *aredis_scan_new(aredis_client *c, const aredis_scan_opts *opts) {
    static const aredis_scan_opts defaults = AREDIS_SCAN_OPTS_INIT;
    const aredis_scan_opts *o = opts ? opts : &defaults;
    uint64_t start = 0;
    const char *why = NULL;
    if (!c)
        why = "no client";
    else if ((unsigned)o->kind > (unsigned)AREDIS_SCAN_ZSET)
        why = "unknown kind";
    else if (o->kind == AREDIS_SCAN_KEYS && (o->key || o->keylen))
        why = "a key is for HASH, SET and ZSET scans; SCAN takes none";
    else if (o->kind != AREDIS_SCAN_KEYS && !o->key)
        why = "HASH, SET and ZSET scans need a key";
    else if (!o->match && o->matchlen)
        why = "matchlen without match";
    else if (o->type && o->kind != AREDIS_SCAN_KEYS)
        why = "a TYPE filter is for SCAN (AREDIS_SCAN_KEYS) only";
    else if (o->type && !o->type[0])
        why = "an empty TYPE filter";
    else if (o->cursor && !parse_u64(o->cursor, strlen(o->cursor), &start))
        why = "the cursor is not a 64-bit decimal number";
    if (why) {
        bad(why);
        return NULL;
    }

    aredis_scan *s = aredis__calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->client = c;
    s->kind = o->kind;
    s->timeout_ms = o->timeout_ms;
    if (o->key) {
        s->keylen = o->keylen ? o->keylen : strlen(o->key);
        if (!(s->key = aredis__memdup0(o->key, s->keylen))) goto nomem;
    }
    if (o->match) {
        s->matchlen = o->matchlen ? o->matchlen : strlen(o->match);
        if (!(s->match = aredis__memdup0(o->match, s->matchlen))) goto nomem;
    }
    if (o->type && !(s->type = aredis__strdup(o->type))) goto nomem;
    if (o->count) snprintf(s->count, sizeof s->count, "%" PRIu32, o->count);
    snprintf(s->cursor, sizeof s->cursor, "%" PRIu64, start);
    return s;
nomem:
    if (s) scan_destroy(s);
    aredis__call_fail(AREDIS_ERR_NOMEM, "aredis_scan_new: out of memory");
    return NULL;
}

void aredis_scan_free(aredis_scan *s) {
    if (!s || s->freed) return;
    s->freed = 1;
    if (s->inflight) {
        /* The batch fails with CANCELLED now: on_batch runs, nested. */
        s->depth++;
        aredis_future_cancel(s->inflight);
        s->depth--;
    }
    if (s->depth == 0) scan_destroy(s); /* else the outermost on_batch frees */
}

aredis_err aredis_scan_next(aredis_scan *s, aredis_scan_fn *cb, void *data) {
    if (!s || !cb)
        return aredis__call_fail(AREDIS_ERR_INVALID, "aredis_scan_next: %s",
                                 s ? "no callback" : "no iterator");
    aredis_err e = check_idle(s);
    if (e != AREDIS_ERR_OK) return e;
    s->cb = cb;
    s->cb_data = data;
    e = issue(s, SCAN_MODE_CALLBACK, NULL);
    if (e != AREDIS_ERR_OK) s->cb = NULL;
    return e;
}

aredis_future *aredis_scan_next_future(aredis_scan *s) {
    if (!s) {
        aredis__call_fail(AREDIS_ERR_INVALID, "aredis_scan_next_future: no iterator");
        return NULL;
    }
    if (check_idle(s) != AREDIS_ERR_OK) return NULL;
    aredis_future *f = NULL;
    return issue(s, SCAN_MODE_FUTURE, &f) == AREDIS_ERR_OK ? f : NULL;
}

aredis_err aredis_scan_batch(const aredis_scan *s, const aredis_future *f,
                             const aredis_reply **batch) {
    if (batch) *batch = NULL;
    if (!s || !f || !batch)
        return aredis__call_fail(AREDIS_ERR_INVALID, "aredis_scan_batch: a NULL argument");
    if (!aredis_future_is_done(f))
        return aredis__call_fail(AREDIS_ERR_INVALID, "%s: the batch is still pending",
                                 k_cmd[s->kind]);
    const aredis_error *err = aredis_future_error(f);
    if (err) return aredis__call_fail(err->code, "%s", err->detail);
    char cursor[CURSOR_MAX];
    uint64_t value;
    const aredis_reply *b = NULL;
    const char *why = parse_reply(aredis_future_reply(f), s->kind, cursor, &value, &b);
    if (why) return aredis__call_fail(AREDIS_ERR_PROTOCOL, "%s reply: %s", k_cmd[s->kind], why);
    *batch = b;
    return AREDIS_ERR_OK;
}

aredis_err aredis_scan_each(aredis_scan *s, aredis_scan_elem_fn *elem_cb,
                            aredis_scan_done_fn *done_cb, void *data) {
    if (!s || !elem_cb)
        return aredis__call_fail(AREDIS_ERR_INVALID, "aredis_scan_each: %s",
                                 s ? "no element callback" : "no iterator");
    aredis_err e = check_idle(s);
    if (e != AREDIS_ERR_OK) return e;
    s->walking = 1;
    s->elem_cb = elem_cb;
    s->done_cb = done_cb;
    s->cb_data = data;
    e = issue(s, SCAN_MODE_EACH, NULL);
    if (e != AREDIS_ERR_OK) {
        s->walking = 0;
        s->elem_cb = NULL;
        s->done_cb = NULL;
    }
    return e;
}

int aredis_scan_done(const aredis_scan *s) { return s->done; }
const char *aredis_scan_cursor(const aredis_scan *s) { return s->cursor; }
int aredis_scan_busy(const aredis_scan *s) { return s->mode != SCAN_MODE_IDLE || s->walking; }
uint64_t aredis_scan_batches(const aredis_scan *s) { return s->batches; }
aredis_client *aredis_scan_client(const aredis_scan *s) { return s->client; }
void *aredis_scan_get_data(const aredis_scan *s) { return s->data; }
void aredis_scan_set_data(aredis_scan *s, void *data) { s->data = data; }
