/*
 * src/proto/reader.c — the RESP2/RESP3 reader: bytes in, reply objects out.
 *
 * The reader owns a growable byte buffer. feed() (or space()/commit()) appends
 * to it; get_reply() parses from `pos` and hands out each top-level reply as
 * soon as its last byte is in. Objects are made by a pluggable builder
 * (aredis_reply_builder); the reader itself only tracks where the next object
 * goes.
 *
 * Incremental parsing without re-parsing: open aggregates live on an explicit
 * stack of frames (object, claimed count, next index), so bytes that became
 * objects are never looked at again. The only bytes scanned twice are those of
 * a header line that was incomplete, and even then the search for '\r'
 * resumes where it stopped (`scanned`). A blob string whose payload is not all
 * in yet is remembered by length (state RS_BULK): nothing is scanned or
 * allocated until every byte has arrived.
 *
 * Hostile input: lengths and counts are parsed strictly into int64 and
 * checked against the limits before anything is sized from them, and the
 * builder is told the claimed count but must grow as elements arrive. Memory
 * therefore tracks the bytes actually received.
 *
 * Errors are sticky: the first one frees the partial reply, drops the
 * buffered bytes, and is returned from every later call.
 */
#include "aredis/reader.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define READER_BUF_MIN 512           /* first buffer size for feed()        */
#define READER_BUF_KEEP (256 * 1024) /* an empty buffer above this is freed */
#define READER_NUM_LINE_MAX 64       /* longest numeric header line         */
#define READER_DOUBLE_MAX 255        /* longest double text we accept       */
#define READER_STACK_MIN 4           /* first frame stack size              */

/* The per-object helpers sit on the hot path; GCC would not inline them all. */
#if defined(__GNUC__)
#define READER_INLINE inline __attribute__((always_inline))
#else
#define READER_INLINE inline
#endif

/* What the reader is waiting for. */
typedef enum reader_state {
    RS_LINE, /* a type byte and its header line */
    RS_BULK  /* the payload (+ CRLF) of a blob string whose header is consumed */
} reader_state;

/* One open aggregate. */
typedef struct reader_frame {
    void *obj;      /* the aggregate being filled */
    void *attr;     /* a finished attribute waiting for this frame's next child */
    size_t claimed; /* elements the peer announced (pairs × 2 for maps) */
    size_t idx;     /* next element position */
    aredis_reply_type type;
} reader_frame;

struct aredis_reader {
    /* The buffer: bytes [pos, len) are received and not yet consumed. */
    char *buf;
    size_t pos, len, cap;
    /* Bytes after the type byte already known to hold no '\r'. */
    size_t scanned;

    reader_state state;
    aredis_reply_type bulk_type; /* RS_BULK: STRING, ERROR or VERB */
    size_t bulk_len;             /* RS_BULK: payload bytes, CRLF excluded */

    reader_frame *stack;
    size_t depth, stack_cap;
    void *top_attr; /* a finished attribute waiting for the next top-level reply */

    const aredis_reply_builder *fn;
    void *privdata;
    aredis_reader_limits limits; /* as set; copied into `cur` when a reply starts */
    aredis_reader_limits cur;
    int limits_changed; /* `limits` differs from `cur` */

    aredis_err err;
    char errstr[128];
};

/* ---- Errors and cleanup ------------------------------------------------- */

/*
 * Free every object of the reply being built. Each frame's object is owned by
 * the frame below it (the builder stored it there) except the bottom one and
 * attributes, which are built detached; pending attributes belong to us.
 */
static void reader_discard_partial(aredis_reader *r) {
    for (size_t i = r->depth; i-- > 0;) {
        reader_frame *f = &r->stack[i];
        if (f->attr) r->fn->free_object(f->attr);
        if (i == 0 || f->type == AREDIS_REPLY_ATTR) r->fn->free_object(f->obj);
    }
    r->depth = 0;
    if (r->top_attr) r->fn->free_object(r->top_attr);
    r->top_attr = NULL;
    r->state = RS_LINE;
    r->scanned = 0;
}

/* Enter the sticky error state. Always returns -1 so callers can `return`. */
AREDIS_PRINTF(3, 4)
static int reader_fail(aredis_reader *r, aredis_err code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->errstr, sizeof r->errstr, fmt, ap);
    va_end(ap);
    r->err = code;
    reader_discard_partial(r);
    /* The stream cannot be resynchronised: nothing buffered is worth keeping. */
    r->pos = r->len = 0;
    return -1;
}

static int reader_nomem(aredis_reader *r) {
    return reader_fail(r, AREDIS_ERR_NOMEM, "out of memory");
}

/* Render a byte for a message: 'x' when printable, \xNN otherwise. */
static void byte_repr(unsigned char c, char out[8]) {
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
        snprintf(out, 8, "'%c'", c);
    else
        snprintf(out, 8, "'\\x%02x'", c);
}

/* ---- Lifecycle and limits ----------------------------------------------- */

aredis_reader *aredis_reader_new(const aredis_reply_builder *builder, void *privdata) {
    aredis_reader *r = aredis__calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fn = builder ? builder : aredis_reply_builder_default();
    r->privdata = privdata;
    aredis_reader_set_limits(r, NULL);
    r->cur = r->limits;
    r->limits_changed = 0;
    return r;
}

void aredis_reader_free(aredis_reader *r) {
    if (!r) return;
    reader_discard_partial(r);
    aredis__free(r->stack);
    aredis__free(r->buf);
    aredis__free(r);
}

void aredis_reader_set_limits(aredis_reader *r, const aredis_reader_limits *l) {
    static const aredis_reader_limits defaults = AREDIS_READER_LIMITS_INIT;
    r->limits = l ? *l : defaults;
    /* A zero field is "unset", not "nothing allowed": keep the default. */
    if (r->limits.max_bulk_len == 0) r->limits.max_bulk_len = defaults.max_bulk_len;
    if (r->limits.max_elements == 0) r->limits.max_elements = defaults.max_elements;
    if (r->limits.max_depth == 0) r->limits.max_depth = defaults.max_depth;
    r->limits_changed = 1;
}

const char *aredis_reader_errstr(const aredis_reader *r) { return r->err ? r->errstr : ""; }

size_t aredis_reader_pending(const aredis_reader *r) { return r->len - r->pos; }

/* ---- Buffer ------------------------------------------------------------- */

/*
 * Make `need` bytes writable after `len`. Consumed bytes are dropped by one
 * memmove, only when the free tail is too short — never once per reply.
 */
static int buf_reserve(aredis_reader *r, size_t need) {
    if (r->cap - r->len >= need) return 0;
    if (r->pos > 0) {
        size_t live = r->len - r->pos;
        if (live) memmove(r->buf, r->buf + r->pos, live);
        r->len = live;
        r->pos = 0;
        if (r->cap - r->len >= need) return 0;
    }
    size_t want;
    if (aredis__add_overflow(r->len, need, &want)) return -1;
    size_t cap = r->cap ? r->cap : READER_BUF_MIN;
    while (cap < want) {
        if (aredis__mul_overflow(cap, 2, &cap)) {
            cap = want;
            break;
        }
    }
    char *nb = aredis__realloc(r->buf, cap);
    if (!nb) return -1;
    r->buf = nb;
    r->cap = cap;
    return 0;
}

/* Everything consumed: start again at offset 0, and give back a huge buffer. */
static void buf_rewind_if_empty(aredis_reader *r) {
    if (r->pos != r->len) return;
    r->pos = r->len = 0;
    if (r->cap > READER_BUF_KEEP) {
        aredis__free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
}

aredis_err aredis_reader_feed(aredis_reader *r, const char *buf, size_t len) {
    if (r->err) return r->err;
    if (len == 0) return AREDIS_ERR_OK;
    if (buf_reserve(r, len) < 0) return AREDIS_ERR_NOMEM;
    memcpy(r->buf + r->len, buf, len);
    r->len += len;
    return AREDIS_ERR_OK;
}

char *aredis_reader_space(aredis_reader *r, size_t min, size_t *avail) {
    if (buf_reserve(r, min ? min : 1) < 0) {
        if (avail) *avail = 0;
        return NULL;
    }
    if (avail) *avail = r->cap - r->len;
    return r->buf + r->len;
}

void aredis_reader_commit(aredis_reader *r, size_t n) {
    /* After an error the bytes are dropped: the stream is dead. */
    if (r->err) return;
    if (n > r->cap - r->len) n = r->cap - r->len; /* never trust past the buffer */
    r->len += n;
}

/* ---- Scalar parsers (strict, no locale, no UB) --------------------------- */

/*
 * Parse "-?[0-9]+" into an int64. Returns 0, or -1 on anything else (empty,
 * stray byte, overflow). Up to 18 digits cannot overflow, so only longer
 * numbers pay for the checked arithmetic.
 */
static int parse_ll(const char *s, size_t n, long long *out) {
    int neg = 0;
    if (n && s[0] == '-') {
        neg = 1;
        s++;
        n--;
    }
    if (n == 0) return -1;
    unsigned long long v = 0;
    size_t i = 0;
    size_t fast = n < 18 ? n : 18;
    for (; i < fast; i++) {
        unsigned d = (unsigned char)s[i] - (unsigned)'0';
        if (d > 9) return -1;
        v = v * 10 + d;
    }
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - (unsigned)'0';
        if (d > 9) return -1;
        if (__builtin_mul_overflow(v, 10ULL, &v) || __builtin_add_overflow(v, d, &v)) return -1;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return -1;
        /* -(v-1)-1 reaches LLONG_MIN without overflowing. */
        *out = v ? -(long long)(v - 1) - 1 : 0;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return -1;
        *out = (long long)v;
    }
    return 0;
}

/*
 * Parse a RESP3 double: "inf", "+inf", "-inf", "nan", or a decimal number.
 * strtod runs on a NUL-terminated copy and must consume all of it; only the
 * characters of a decimal number are let through, so strtod's extras (hex,
 * "infinity", "nan(...)") and leading blanks are refused. Under a locale whose
 * decimal point is not '.', strtod stops at the '.': retry with its point.
 */
static int parse_double(const char *s, size_t n, double *out) {
    if (n == 3 && memcmp(s, "inf", 3) == 0) return *out = INFINITY, 0;
    if (n == 4 && memcmp(s, "+inf", 4) == 0) return *out = INFINITY, 0;
    if (n == 4 && memcmp(s, "-inf", 4) == 0) return *out = -INFINITY, 0;
    if (n == 3 && memcmp(s, "nan", 3) == 0) return *out = NAN, 0;
    if (n == 0 || n > READER_DOUBLE_MAX) return -1;
    char tmp[READER_DOUBLE_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
            return -1;
        tmp[i] = c;
    }
    tmp[n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + n && *end == '.') {
        const char *dp = localeconv()->decimal_point;
        if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
            for (size_t i = 0; i < n; i++)
                if (tmp[i] == '.') tmp[i] = dp[0];
            v = strtod(tmp, &end);
        }
    }
    if (end != tmp + n) return -1;
    *out = v;
    return 0;
}

/* A big number: "-?[0-9]+". */
static int valid_bignum(const char *s, size_t n) {
    size_t i = (n && s[0] == '-') ? 1 : 0;
    if (i == n) return 0;
    for (; i < n; i++)
        if ((unsigned char)s[i] - (unsigned)'0' > 9) return 0;
    return 1;
}

/*
 * Parse the length of a blob or the count of an aggregate. Returns 1 for a
 * count in *out, 0 for the RESP2 null (-1, only where `allow_nil`), -1 after
 * failing the reader.
 */
static int parse_count(aredis_reader *r, char type, const char *s, size_t n, int allow_nil,
                       long long *out) {
    if (n == 1 && s[0] == '?')
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "streamed types unsupported ('%c?')", type);
    if (parse_ll(s, n, out) < 0)
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "bad length or count after '%c'", type);
    if (*out >= 0) return 1;
    if (*out == -1 && allow_nil) return 0;
    return reader_fail(r, AREDIS_ERR_PROTOCOL, "negative length or count %lld after '%c'", *out,
                       type);
}

/* ---- Building ----------------------------------------------------------- */

/* Where an object made now goes. Attributes are built detached. */
static READER_INLINE void make_task(const aredis_reader *r, aredis_reply_type type,
                                    aredis_reader_task *t) {
    t->type = type;
    t->privdata = r->privdata;
    if (r->depth && type != AREDIS_REPLY_ATTR) {
        const reader_frame *f = &r->stack[r->depth - 1];
        t->parent = f->obj;
        t->parent_type = f->type;
        t->idx = f->idx;
    } else {
        t->parent = NULL;
        t->parent_type = (aredis_reply_type)0;
        t->idx = 0;
    }
}

/* The slot of a finished attribute waiting for the next value at this level. */
static void **attr_slot(aredis_reader *r) {
    return r->depth ? &r->stack[r->depth - 1].attr : &r->top_attr;
}

/* A value was just made at the current position: hand it the attribute. */
static void adopt_attr(aredis_reader *r, void *obj) {
    void **slot = attr_slot(r);
    if (*slot) {
        r->fn->set_attribute(obj, *slot);
        *slot = NULL;
    }
}

/*
 * A value is complete at the current position: advance the parent, closing
 * every aggregate this completes; sets *out when a top-level reply is done.
 * A finished attribute does not take a position: it waits in its level's
 * slot for the next value. Returns 1 (progress), like every step below.
 */
static int value_done(aredis_reader *r, void *obj, int is_attr, void **out) {
    for (;;) {
        if (is_attr) {
            void **slot = attr_slot(r);
            if (!r->fn->set_attribute) {
                r->fn->free_object(obj); /* no one wants attributes */
            } else {
                /* Two attributes in a row: keep the later one. */
                if (*slot) r->fn->free_object(*slot);
                *slot = obj;
            }
            return 1;
        }
        if (r->depth == 0) {
            *out = obj;
            return 1;
        }
        reader_frame *f = &r->stack[r->depth - 1];
        if (++f->idx < f->claimed) return 1;
        obj = f->obj;
        is_attr = f->type == AREDIS_REPLY_ATTR;
        r->depth--;
    }
}

/*
 * A leaf value was made at the current position: complete it. The common
 * cases — a top-level reply, an element that does not end its aggregate —
 * are handled inline; closing aggregates goes through value_done().
 */
static READER_INLINE int leaf_done(aredis_reader *r, void *obj, void **out) {
    if (!obj) return reader_nomem(r);
    if (r->depth == 0) {
        if (r->top_attr) adopt_attr(r, obj);
        *out = obj;
        return 1;
    }
    reader_frame *f = &r->stack[r->depth - 1];
    if (f->attr) adopt_attr(r, obj);
    if (f->idx + 1 < f->claimed) {
        f->idx++;
        return 1;
    }
    return value_done(r, obj, 0, out);
}

static int make_string(aredis_reader *r, aredis_reply_type type, const char *s, size_t n,
                       void **out) {
    aredis_reader_task t;
    make_task(r, type, &t);
    return leaf_done(r, r->fn->create_string(&t, s, n), out);
}

static int make_nil(aredis_reader *r, void **out) {
    aredis_reader_task t;
    make_task(r, AREDIS_REPLY_NIL, &t);
    return leaf_done(r, r->fn->create_nil(&t), out);
}

/* ---- Items -------------------------------------------------------------- */

/* A blob payload is complete in the buffer at pos: check it, build it. */
static int finish_bulk(aredis_reader *r, aredis_reply_type type, size_t n, void **out) {
    const char *p = r->buf + r->pos;
    if (p[n] != '\r' || p[n + 1] != '\n')
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "blob of %zu bytes not followed by CRLF", n);
    if (type == AREDIS_REPLY_VERB && p[3] != ':')
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "verbatim string without 'xxx:' prefix");
    r->pos += n + 2;
    r->state = RS_LINE;
    return make_string(r, type, p, n, out);
}

/* RS_BULK: wait, without scanning, until the payload and its CRLF are in. */
static int read_bulk(aredis_reader *r, void **out) {
    if (r->len - r->pos < r->bulk_len + 2) return 0;
    return finish_bulk(r, r->bulk_type, r->bulk_len, out);
}

/*
 * A blob header ($ ! =) claiming `v` bytes (>= 0, or -1 for $'s null) is
 * consumed: build it now if the payload is all in, else wait in RS_BULK.
 */
static int open_bulk(aredis_reader *r, char type, long long v, void **out) {
    if (v < 0) return make_nil(r, out);
    /* Compare as unsigned long long: the limit is a size_t, v is >= 0. */
    if ((unsigned long long)v > r->cur.max_bulk_len || (unsigned long long)v > SIZE_MAX - 2)
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "blob length %lld exceeds max_bulk_len %zu", v,
                           r->cur.max_bulk_len);
    size_t len = (size_t)v;
    aredis_reply_type bt = type == '$'   ? AREDIS_REPLY_STRING
                           : type == '!' ? AREDIS_REPLY_ERROR
                                         : AREDIS_REPLY_VERB;
    if (bt == AREDIS_REPLY_VERB && len < 4)
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "verbatim string shorter than its prefix");
    if (r->len - r->pos >= len + 2) return finish_bulk(r, bt, len, out);
    r->state = RS_BULK;
    r->bulk_type = bt;
    r->bulk_len = len;
    return 1;
}

static aredis_reply_type aggregate_type(char c) {
    switch (c) {
    case '%':
        return AREDIS_REPLY_MAP;
    case '~':
        return AREDIS_REPLY_SET;
    case '|':
        return AREDIS_REPLY_ATTR;
    case '>':
        return AREDIS_REPLY_PUSH;
    default:
        return AREDIS_REPLY_ARRAY;
    }
}

/*
 * An aggregate header (* % ~ | >) claiming `v` elements (>= 0, or -1 for *'s
 * null) is consumed: check the limits, make the object, open a frame.
 */
static int open_aggregate(aredis_reader *r, char type, long long v, void **out) {
    if (v < 0) return make_nil(r, out);
    aredis_reply_type at = aggregate_type(type);
    size_t claimed = (size_t)v;
    int paired = at == AREDIS_REPLY_MAP || at == AREDIS_REPLY_ATTR;
    if ((unsigned long long)v > SIZE_MAX ||
        (paired && aredis__mul_overflow(claimed, 2, &claimed)) || claimed > r->cur.max_elements)
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "aggregate of %lld%s exceeds max_elements %zu",
                           v, paired ? " pairs" : " elements", r->cur.max_elements);
    if (r->depth >= r->cur.max_depth)
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "nesting deeper than max_depth %u",
                           r->cur.max_depth);
    /* Room for the frame first: a made object must never be stranded. */
    if (claimed && r->depth == r->stack_cap) {
        size_t ncap = r->stack_cap ? r->stack_cap * 2 : READER_STACK_MIN;
        reader_frame *ns = aredis__reallocarray(r->stack, ncap, sizeof *ns);
        if (!ns) return reader_nomem(r);
        r->stack = ns;
        r->stack_cap = ncap;
    }
    aredis_reader_task t;
    make_task(r, at, &t);
    void *obj = r->fn->create_aggregate(&t, claimed);
    if (!obj) return reader_nomem(r);
    if (at != AREDIS_REPLY_ATTR) adopt_attr(r, obj);
    if (claimed == 0) return value_done(r, obj, at == AREDIS_REPLY_ATTR, out);
    reader_frame *f = &r->stack[r->depth++];
    f->obj = obj;
    f->attr = NULL;
    f->claimed = claimed;
    f->idx = 0;
    f->type = at;
    return 1;
}

static int make_integer(aredis_reader *r, long long v, void **out) {
    aredis_reader_task t;
    make_task(r, AREDIS_REPLY_INTEGER, &t);
    return leaf_done(r, r->fn->create_integer(&t, v), out);
}

/*
 * What a type byte starts: a table, so the hot path pays one load. A simple
 * line (+ - , () is bounded by max_bulk_len, a numeric one by
 * READER_NUM_LINE_MAX (no valid one comes close), so a peer cannot make us
 * buffer an endless header.
 */
enum { TC_NONE, TC_TEXT, TC_NUM, TC_STREAMED };
/* clang-format off */
static const unsigned char type_class[256] = {
    ['+'] = TC_TEXT, ['-'] = TC_TEXT, [','] = TC_TEXT, ['('] = TC_TEXT,
    [':'] = TC_NUM,  ['$'] = TC_NUM,  ['!'] = TC_NUM,  ['='] = TC_NUM,
    ['*'] = TC_NUM,  ['%'] = TC_NUM,  ['~'] = TC_NUM,  ['|'] = TC_NUM,
    ['>'] = TC_NUM,  ['#'] = TC_NUM,  ['_'] = TC_NUM,  [';'] = TC_STREAMED,
    ['.'] = TC_STREAMED,
};
/* clang-format on */

/*
 * The header line is complete and consumed: `line` holds its n bytes (CRLF
 * excluded). Validate it and make what it announces.
 */
static int dispatch_line(aredis_reader *r, char type, const char *line, size_t n, void **out) {
    long long ll;
    double d;
    aredis_reader_task t;
    int rc;

    switch (type) {
    case '+':
    case '-':
        if (memchr(line, '\n', n))
            return reader_fail(r, AREDIS_ERR_PROTOCOL, "bare LF in simple string");
        return make_string(r, type == '+' ? AREDIS_REPLY_STATUS : AREDIS_REPLY_ERROR, line, n, out);
    case ':':
        if (parse_ll(line, n, &ll) < 0) return reader_fail(r, AREDIS_ERR_PROTOCOL, "bad integer");
        return make_integer(r, ll, out);
    case ',':
        if (parse_double(line, n, &d) < 0) return reader_fail(r, AREDIS_ERR_PROTOCOL, "bad double");
        make_task(r, AREDIS_REPLY_DOUBLE, &t);
        return leaf_done(r, r->fn->create_double(&t, d, line, n), out);
    case '#':
        if (n != 1 || (line[0] != 't' && line[0] != 'f'))
            return reader_fail(r, AREDIS_ERR_PROTOCOL, "bad boolean");
        make_task(r, AREDIS_REPLY_BOOL, &t);
        return leaf_done(r, r->fn->create_bool(&t, line[0] == 't'), out);
    case '_':
        if (n != 0) return reader_fail(r, AREDIS_ERR_PROTOCOL, "bad null");
        return make_nil(r, out);
    case '(':
        if (!valid_bignum(line, n)) return reader_fail(r, AREDIS_ERR_PROTOCOL, "bad big number");
        return make_string(r, AREDIS_REPLY_BIGNUM, line, n, out);
    case '$':
    case '!':
    case '=':
        rc = parse_count(r, type, line, n, type == '$', &ll);
        if (rc < 0) return -1;
        return open_bulk(r, type, rc ? ll : -1, out);
    default:
        rc = parse_count(r, type, line, n, type == '*', &ll);
        if (rc < 0) return -1;
        return open_aggregate(r, type, rc ? ll : -1, out);
    }
}

/*
 * The fast path for the commonest headers — a length, count or integer of
 * 1 to 18 plain digits — parsed and its CRLF found in one inline pass.
 * Returns 0 (nothing consumed) for anything else, which the strict general
 * path then handles, errors included.
 */
static int read_numeric_fast(aredis_reader *r, char type, void **out) {
    const char *p = r->buf + r->pos + 1, *first = p;
    const char *end = r->buf + r->len;
    const char *lim = end - p > 18 ? p + 18 : end;
    unsigned long long v = 0;
    while (p < lim) {
        unsigned d = (unsigned char)*p - (unsigned)'0';
        if (d > 9) break;
        v = v * 10 + d;
        p++;
    }
    if (p == first || end - p < 2 || p[0] != '\r' || p[1] != '\n') return 0;
    r->pos = (size_t)(p + 2 - r->buf);
    switch (type) {
    case ':':
        return make_integer(r, (long long)v, out);
    case '$':
    case '!':
    case '=':
        return open_bulk(r, type, (long long)v, out);
    default:
        return open_aggregate(r, type, (long long)v, out);
    }
}

/*
 * RS_LINE: parse one header line and whatever it makes. Like every step:
 * returns 1 after progress (with *out set when a reply is complete), 0 when
 * more bytes are needed, -1 on error.
 */
static int read_line(aredis_reader *r, void **out) {
    if (r->len == r->pos) return 0;
    const char *start = r->buf + r->pos;
    char type = start[0];
    unsigned tc = type_class[(unsigned char)type];
    if (tc == TC_NONE || tc == TC_STREAMED) {
        char b[8];
        if (tc == TC_STREAMED)
            return reader_fail(r, AREDIS_ERR_PROTOCOL, "streamed types unsupported");
        byte_repr((unsigned char)type, b);
        return reader_fail(r, AREDIS_ERR_PROTOCOL, "unknown type byte %s", b);
    }
    if (r->limits_changed && r->depth == 0 && !r->top_attr) { /* a new reply starts */
        r->cur = r->limits;
        r->limits_changed = 0;
    }
    if (tc == TC_NUM && type != '#' && type != '_' && r->scanned == 0) {
        int rc = read_numeric_fast(r, type, out);
        if (rc) return rc;
    }

    size_t limit = tc == TC_TEXT ? r->cur.max_bulk_len : READER_NUM_LINE_MAX;
    const char *line = start + 1;
    const char *from = line + r->scanned;
    const char *end = r->buf + r->len;
    const char *cr = from < end ? memchr(from, '\r', (size_t)(end - from)) : NULL;
    if (!cr || cr + 1 == end) {
        /* Incomplete: resume the search here next time (at the '\r' if any). */
        r->scanned = (size_t)((cr ? cr : end) - line);
        if (r->scanned > limit)
            return reader_fail(r, AREDIS_ERR_PROTOCOL, "header line of '%c' too long", type);
        return 0;
    }
    size_t n = (size_t)(cr - line);
    if (n > limit) return reader_fail(r, AREDIS_ERR_PROTOCOL, "header line of '%c' too long", type);
    if (cr[1] != '\n') return reader_fail(r, AREDIS_ERR_PROTOCOL, "expected LF after CR");
    r->scanned = 0;
    r->pos += 1 + n + 2;
    return dispatch_line(r, type, line, n, out);
}

aredis_err aredis_reader_get_reply(aredis_reader *r, void **reply) {
    void *out = NULL;
    if (reply) *reply = NULL;
    if (r->err) return r->err;
    for (;;) {
        int rc = r->state == RS_BULK ? read_bulk(r, &out) : read_line(r, &out);
        if (rc < 0) return r->err;
        if (out || rc == 0) break;
    }
    buf_rewind_if_empty(r);
    if (reply)
        *reply = out;
    else if (out)
        r->fn->free_object(out);
    return AREDIS_ERR_OK;
}
