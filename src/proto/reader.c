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
 * The default builder's fast path: when the reader is given the default
 * builder (NULL), it builds aredis_reply trees itself, without a call through
 * the builder table per object, and carves every object of one top-level
 * reply out of an arena — a short chain of chunks owned by the top-level
 * reply (see "Arena" below). A reply of any shape then costs one or a few
 * allocations instead of one or two per object, and freeing it frees its
 * chunks without walking the tree. A copied or wrapped default builder goes
 * through the table like any other builder (reply.c serves those calls).
 *
 * Hostile input: lengths and counts are parsed strictly into int64 and
 * checked against the limits before anything is sized from them, and the
 * builder is told the claimed count but must grow as elements arrive. Memory
 * therefore tracks the bytes actually received. The arena sizes what it
 * allocates ahead from bytes already in the buffer, never from a claim alone.
 *
 * Errors are sticky: the first one frees the partial reply, drops the
 * buffered bytes, and is returned from every later call.
 */
#include "proto/reply_internal.h"
#include "util/copy.h"
#include "aredis/reader.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cache.h"

#define READER_BUF_MIN 512           /* first buffer size for feed()        */
#define READER_BUF_KEEP (256 * 1024) /* an empty buffer above this is freed */
#define READER_NUM_LINE_MAX 64       /* longest numeric header line         */
#define READER_DOUBLE_MAX 255        /* longest double text we accept       */
#define READER_STACK_MIN 4           /* first frame stack size              */
#define READER_SHORT_LINE 32         /* simple lines scanned inline up to this */
#define READER_STEAL_MIN 1024        /* a top-level blob this long may take the buffer */

/* The per-object helpers sit on the hot path; GCC would not inline them all. */
#if defined(__GNUC__)
#define READER_INLINE inline __attribute__((always_inline))
#define READER_NOINLINE __attribute__((noinline))
#define READER_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define READER_INLINE inline
#define READER_NOINLINE
#define READER_LIKELY(x) (x)
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
    /* Fast path only: the element array of `obj` and how many slots it has. */
    aredis_reply **elems;
    size_t cap;
    aredis_reply_type type;
} reader_frame;

/* A chunk of a reply's arena: a link, then objects (8-byte aligned). */
typedef struct arena_chunk {
    struct arena_chunk *next;
} arena_chunk;

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
    int fast; /* fn is the default builder: build inline, in an arena */

    /*
     * The arena of the reply being built (fast path). `ahead` is its first
     * chunk (NULL between replies), whose first object slot is kept for the
     * top-level reply (`aroot`); new objects are carved at `acur`, `aroom`
     * bytes being left there. `atotal` counts the bytes allocated so far.
     */
    arena_chunk *ahead;
    aredis_reply *aroot;
    char *acur;
    size_t aroom, atotal;
    /*
     * Buffer offset up to which received bytes already back an element slot
     * allocated ahead of its element (see reserve_slots()).
     */
    size_t reserved_to;

    aredis_reader_limits limits; /* as set; copied into `cur` when a reply starts */
    aredis_reader_limits cur;
    int limits_changed; /* `limits` differs from `cur` */

    aredis_err err;
    char errstr[128];
};

/* ---- Arena (the default builder's fast path) ---------------------------- */

/*
 * Every object of one top-level reply — the reply itself, its elements,
 * element arrays, strings, attributes — is carved out of a chain of chunks.
 * The top-level reply sits right after the link of the first chunk, so
 * freeing it finds the chain; nested replies are never freed on their own.
 * priv_alloc says which is which: reply.c's aredis_reply_free() hands any
 * reply whose priv_alloc is not REPLY_OWN to aredis__reply_arena_free().
 *
 * Sizing, so that memory follows the bytes received: the first chunk of a
 * reply is sized exactly for a leaf, and for an aggregate by the element
 * slots the buffered bytes can back (reserve_slots()) plus an estimate of
 * those elements; a later chunk doubles the arena (so a big reply makes
 * O(log n) chunks) but is never larger than what the bytes still buffered
 * could make, and never over ARENA_CHUNK_MAX unless one object needs it. An
 * object of ARENA_OWN_CHUNK bytes or more that does not fit gets a chunk of
 * its own, so the room left in the current chunk is not wasted.
 */

/*
 * A top-level leaf whose payload fits in SMALL_LEAF_EXTRA bytes (+OK,
 * integers, short strings, RESP3 nulls: most replies; the commonest nil is
 * shared, see shared_nil()) gets a chunk of exactly AREDIS__CACHE_BLOCK
 * bytes, priv_alloc REPLY_ARENA_SMALL. Freeing it parks the chunk in the
 * thread's block cache (util/cache.h) for the next small leaf, so that a
 * reply costs no malloc/free pair in the steady state.
 */
#define SMALL_LEAF_EXTRA (AREDIS__CACHE_BLOCK - sizeof(arena_chunk) - sizeof(aredis_reply))
_Static_assert(AREDIS__CACHE_BLOCK >= sizeof(arena_chunk) + sizeof(aredis_reply) + 32,
               "a cached block holds a small leaf with a short payload");

#define ARENA_CHUNK_MAX (16 * 1024)
#define ARENA_OWN_CHUNK (4 * 1024)
#define ARENA_EST_PAYLOAD 32 /* string bytes assumed per element, at most */
#define ARENA_MIN_ELEMENT 3  /* the shortest RESP value ("_\r\n", "+\r\n") */
#define ARENA_ALIGN(n) (((n) + 7) & ~(size_t)7)

_Static_assert(sizeof(aredis_reply) % 8 == 0, "replies keep 8-byte alignment in the arena");
_Static_assert(sizeof(arena_chunk) % 8 == 0, "chunk links keep 8-byte alignment");

/* Called by aredis_reply_free() (reply.c) for a reply built in an arena. */

static void arena_free_chain(arena_chunk *c) {
    while (c) {
        arena_chunk *next = c->next;
        aredis__free(c);
        c = next;
    }
}

void aredis__reply_arena_free(aredis_reply *r) {
    arena_chunk *c = (arena_chunk *)r - 1, *next;
    if (r->priv_alloc == REPLY_ARENA_SMALL) { /* one cacheable chunk: most replies */
        if (!aredis__cache_put(c)) aredis__free(c);
        return;
    }
    /* A nested reply belongs to its top-level reply's arena: nothing to do. */
    if (r->priv_alloc != REPLY_ARENA_ROOT) return;
    do {
        next = c->next;
        aredis__free(c);
    } while ((c = next) != NULL);
}

/* Forget the arena (handed to a finished reply, or freed). */
static READER_INLINE void arena_reset(aredis_reader *r) {
    r->ahead = NULL;
    r->aroot = NULL;
    r->acur = NULL;
    r->aroom = 0;
    r->atotal = 0;
}

/*
 * Slow path of arena_alloc(): make a chunk and carve `need` (> 0, or 0 for the
 * first chunk) bytes from it. `want` is the caller's idea of a good chunk size.
 * The first chunk also holds the top-level reply's slot. Returns NULL when out
 * of memory (the arena is unchanged).
 */
static READER_NOINLINE void *arena_grow(aredis_reader *r, size_t need, size_t want) {
    size_t bytes;
    if (r->ahead && need >= ARENA_OWN_CHUNK) {
        if (aredis__add_overflow(sizeof(arena_chunk), need, &bytes)) return NULL;
        arena_chunk *c = aredis__malloc(bytes);
        if (!c) return NULL;
        c->next = r->ahead->next;
        r->ahead->next = c;
        r->atotal += bytes;
        return c + 1;
    }
    /*
     * Double the arena, but not past what the bytes still buffered could
     * make: each ARENA_MIN_ELEMENT bytes at most one reply and its slot.
     */
    size_t buffered = r->len - r->pos;
    size_t could =
        need + buffered / ARENA_MIN_ELEMENT * (sizeof(aredis_reply) + sizeof(void *)) + buffered;
    size_t size = r->atotal < could ? r->atotal : could;
    if (size < want) size = want;
    if (size > ARENA_CHUNK_MAX) size = ARENA_CHUNK_MAX;
    if (size < need) size = need;
    size_t head = sizeof(arena_chunk) + (r->ahead ? 0 : sizeof(aredis_reply));
    if (aredis__add_overflow(head, size, &bytes)) return NULL;
    arena_chunk *c = aredis__malloc(bytes);
    if (!c) return NULL;
    char *p = (char *)(c + 1);
    if (!r->ahead) {
        c->next = NULL;
        r->ahead = c;
        r->aroot = (aredis_reply *)p;
        p += sizeof(aredis_reply);
    } else {
        /* The first chunk stays first: the top-level reply finds the chain there. */
        c->next = r->ahead->next;
        r->ahead->next = c;
    }
    r->atotal += bytes;
    r->acur = p + need;
    r->aroom = size - need;
    return p;
}

/* `n` (> 0, a multiple of 8) bytes from the arena, or NULL when out of memory. */
static READER_INLINE void *arena_alloc(aredis_reader *r, size_t n, size_t want) {
    if (READER_LIKELY(r->aroom >= n)) {
        char *p = r->acur;
        r->acur += n;
        r->aroom -= n;
        return p;
    }
    return arena_grow(r, n, want);
}

/*
 * How many element slots an aggregate claiming `claimed` may get up front:
 * as many as the bytes buffered after its header could fill, each element
 * taking at least ARENA_MIN_ELEMENT bytes. Each buffered byte backs at most
 * one slot over the life of the reader (`reserved_to` moves forward only), so
 * nested aggregates cannot multiply one received byte into many slots.
 */
static READER_INLINE size_t reserve_slots(aredis_reader *r, size_t claimed) {
    size_t from = r->pos > r->reserved_to ? r->pos : r->reserved_to;
    size_t n = (r->len - from) / ARENA_MIN_ELEMENT;
    if (n > claimed) n = claimed;
    r->reserved_to = from + n * ARENA_MIN_ELEMENT;
    return n;
}

/* ---- Errors and cleanup ------------------------------------------------- */

/*
 * Free every object of the reply being built. Each frame's object is owned by
 * the frame below it (the builder stored it there) except the bottom one and
 * attributes, which are built detached; pending attributes belong to us. On
 * the fast path all of them live in the arena.
 */
static void reader_discard_partial(aredis_reader *r) {
    if (r->fast) {
        arena_free_chain(r->ahead);
        arena_reset(r);
    } else {
        for (size_t i = r->depth; i-- > 0;) {
            reader_frame *f = &r->stack[i];
            if (f->attr) r->fn->free_object(f->attr);
            if (i == 0 || f->type == AREDIS_REPLY_ATTR) r->fn->free_object(f->obj);
        }
        if (r->top_attr) r->fn->free_object(r->top_attr);
    }
    r->depth = 0;
    r->top_attr = NULL;
    r->state = RS_LINE;
    r->scanned = 0;
}

/* Enter the sticky error state. Always returns -1 so callers can `return`. */
AREDIS_PRINTF(3, 4)
static READER_NOINLINE int reader_fail(aredis_reader *r, aredis_err code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->errstr, sizeof r->errstr, fmt, ap);
    va_end(ap);
    r->err = code;
    reader_discard_partial(r);
    /* The stream cannot be resynchronised: nothing buffered is worth keeping. */
    r->pos = r->len = 0;
    r->reserved_to = 0;
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

static void buf_free(aredis_reader *r);

aredis_reader *aredis_reader_new(const aredis_reply_builder *builder, void *privdata) {
    aredis_reader *r = aredis__calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fn = builder ? builder : aredis_reply_builder_default();
    r->fast = r->fn == aredis_reply_builder_default();
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
    buf_free(r);
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
 * The buffer's block starts with room for an arena chunk link and a reply
 * (READER_BUF_HEAD bytes) before the bytes at `buf`: a big top-level blob can
 * then become a reply without copying its payload — the reply takes the whole
 * block (see buf_steal()).
 */
#define READER_BUF_HEAD (sizeof(arena_chunk) + sizeof(aredis_reply))

static READER_NOINLINE void buf_free(aredis_reader *r) {
    if (r->buf) aredis__free(r->buf - READER_BUF_HEAD);
    r->buf = NULL;
    r->cap = 0;
}

/*
 * Make `need` bytes writable after `len`. Consumed bytes are dropped by one
 * memmove, only when the free tail is too short — never once per reply. A
 * new buffer is sized to what is needed (at least READER_BUF_MIN); a full
 * one doubles.
 */
static READER_NOINLINE int buf_reserve(aredis_reader *r, size_t need) {
    if (r->cap - r->len >= need) return 0;
    if (r->pos > 0) {
        size_t live = r->len - r->pos;
        if (live) memmove(r->buf, r->buf + r->pos, live);
        r->reserved_to = r->reserved_to > r->pos ? r->reserved_to - r->pos : 0;
        r->len = live;
        r->pos = 0;
        if (r->cap - r->len >= need) return 0;
    }
    size_t want;
    if (aredis__add_overflow(r->len, need, &want)) return -1;
    size_t cap = r->cap;
    if (cap == 0) {
        cap = want < READER_BUF_MIN ? READER_BUF_MIN : want;
    } else {
        while (cap < want) {
            if (aredis__mul_overflow(cap, 2, &cap)) {
                cap = want;
                break;
            }
        }
    }
    size_t bytes;
    if (aredis__add_overflow(cap, READER_BUF_HEAD, &bytes)) return -1;
    char *nb = r->buf ? aredis__realloc(r->buf - READER_BUF_HEAD, bytes) : aredis__malloc(bytes);
    if (!nb) return -1;
    r->buf = nb + READER_BUF_HEAD;
    r->cap = cap;
    return 0;
}

/* Everything consumed: start again at offset 0, and give back a huge buffer. */
static READER_INLINE void buf_rewind_if_empty(aredis_reader *r) {
    if (r->pos != r->len) return;
    r->pos = r->len = 0;
    r->reserved_to = 0;
    if (r->cap > READER_BUF_KEEP) buf_free(r);
}

/*
 * May the top-level blob whose payload is the n bytes at s take the buffer?
 * When it is big (copying it would cost about what a new buffer costs), it
 * ends the buffered bytes (nothing to move out), and it fills at least half
 * of the buffer (the reply holds no more than twice its size).
 */
static READER_INLINE int buf_can_steal(const aredis_reader *r, const char *s, size_t n) {
    return n >= READER_STEAL_MIN && s + n + 2 == r->buf + r->len && n >= r->cap / 2;
}

/*
 * The buffer's block becomes a one-chunk arena holding the reply, whose
 * payload stays where it was received (NUL-terminated over its CR). The
 * reader starts over with no buffer.
 */
static aredis_reply *buf_steal(aredis_reader *r, aredis_reply_type type, char *s, size_t n);

static READER_NOINLINE aredis_err feed_copy(aredis_reader *r, const char *buf, size_t len) {
    if (len == 0) return AREDIS_ERR_OK;
    if (r->cap - r->len < len && buf_reserve(r, len) < 0) return AREDIS_ERR_NOMEM;
    memcpy(r->buf + r->len, buf, len);
    r->len += len;
    return AREDIS_ERR_OK;
}

aredis_err aredis_reader_feed(aredis_reader *r, const char *buf, size_t len) {
    if (r->err) return r->err;
    /* A few bytes that fit: no call at all. */
    if (len - 1 < 32 && r->cap - r->len >= len) {
        aredis__copy_small(r->buf + r->len, buf, len);
        r->len += len;
        return AREDIS_ERR_OK;
    }
    return feed_copy(r, buf, len);
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

/* ---- Building through the builder table ---------------------------------- */

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

/* ---- Building on the fast path (default builder, arena) ------------------- */

/* Room for one more element in frame f: double (at least 16), up to the claim. */
static READER_NOINLINE int elems_grow(aredis_reader *r, reader_frame *f) {
    size_t ncap;
    if (f->cap < 8)
        ncap = 16;
    else if (aredis__mul_overflow(f->cap, 2, &ncap))
        ncap = f->claimed;
    if (ncap > f->claimed) ncap = f->claimed;
    size_t bytes;
    if (aredis__mul_overflow(ncap, sizeof(aredis_reply *), &bytes)) return -1;
    aredis_reply **e = arena_alloc(r, bytes, bytes);
    if (!e) return -1;
    /* The old array stays in the arena: growth is geometric, the waste bounded. */
    if (f->idx) memcpy(e, f->elems, f->idx * sizeof *e);
    f->elems = e;
    f->cap = ncap;
    ((aredis_reply *)f->obj)->element = e;
    return 0;
}

/* Every field zero but type, refs and how it is held (stores, no memset call). */
static READER_INLINE void fast_init(aredis_reply *o, aredis_reply_type type, unsigned alloc) {
    o->type = type;
    o->priv_refs = 1;
    o->integer = 0;
    o->dval = 0;
    o->len = 0;
    o->str = NULL;
    o->elements = 0;
    o->element = NULL;
    o->attribute = NULL;
    memset(o->vtype, 0, sizeof o->vtype);
    o->priv_alloc = alloc;
}

/*
 * A top-level leaf with no attribute before it — most replies: a chunk of its
 * own (link, reply, `extra` payload bytes), made without the arena state. A
 * small one takes a cached block when the thread has one.
 */
static READER_INLINE aredis_reply *root_leaf_new(aredis_reply_type type, size_t extra) {
    arena_chunk *c;
    unsigned alloc = REPLY_ARENA_SMALL;
    if (READER_LIKELY(extra <= SMALL_LEAF_EXTRA)) {
        if (!(c = aredis__cache_get()) && !(c = aredis__malloc(AREDIS__CACHE_BLOCK))) return NULL;
    } else {
        size_t bytes;
        if (aredis__add_overflow(sizeof(arena_chunk) + sizeof(aredis_reply), extra, &bytes))
            return NULL;
        if (!(c = aredis__malloc(bytes))) return NULL;
        alloc = REPLY_ARENA_ROOT;
    }
    c->next = NULL;
    aredis_reply *o = (aredis_reply *)(void *)(c + 1);
    fast_init(o, type, alloc);
    return o;
}

static aredis_reply *buf_steal(aredis_reader *r, aredis_reply_type type, char *s, size_t n) {
    arena_chunk *c = (arena_chunk *)(void *)(r->buf - READER_BUF_HEAD);
    c->next = NULL;
    aredis_reply *o = (aredis_reply *)(void *)(c + 1);
    fast_init(o, type, REPLY_ARENA_ROOT);
    o->str = s;
    o->len = n;
    s[n] = '\0';
    r->buf = NULL;
    r->cap = 0;
    r->pos = r->len = 0;
    r->reserved_to = 0;
    return o;
}

/*
 * A zeroed reply for the value at the current position, with `extra` bytes
 * (a multiple of 8) for its payload at *payload. NULL when out of memory.
 *
 * The top-level reply takes the slot kept for it in the first chunk, or is
 * a chunk of its own (root_leaf_new()). `want` sizes a chunk if one must be
 * made; `leaf` is a constant at every call.
 */
static READER_INLINE aredis_reply *fast_new(aredis_reader *r, aredis_reply_type type, int leaf,
                                            size_t extra, size_t want, char **payload) {
    aredis_reply *o;
    char *p = NULL;
    unsigned alloc;
    if (r->depth == 0 && type != AREDIS_REPLY_ATTR) {
        if (!r->ahead && leaf) {
            o = root_leaf_new(type, extra);
            if (o) *payload = (char *)(o + 1);
            return o;
        }
        if (!r->ahead) {
            p = arena_grow(r, extra, want);
            if (!p) return NULL;
        } else if (extra) {
            p = arena_alloc(r, extra, want);
            if (!p) return NULL;
        }
        o = r->aroot;
        alloc = REPLY_ARENA_ROOT;
    } else {
        /* An element's slot first: it is made from the bytes buffered before the element's own. */
        if (r->depth && type != AREDIS_REPLY_ATTR) {
            reader_frame *f = &r->stack[r->depth - 1];
            if (f->idx == f->cap && elems_grow(r, f) < 0) return NULL;
        }
        size_t n;
        if (aredis__add_overflow(sizeof *o, extra, &n)) return NULL;
        p = arena_alloc(r, n, want);
        if (!p) return NULL;
        o = (aredis_reply *)(void *)p;
        p += sizeof *o;
        alloc = REPLY_ARENA_MEMBER;
    }
    fast_init(o, type, alloc);
    *payload = p;
    return o;
}

/* A top-level reply is complete: it takes its arena, if any, with it. */
static READER_INLINE int fast_reply_done(aredis_reader *r, aredis_reply *root, void **out) {
    *out = root;
    if (r->ahead) arena_reset(r);
    return 1;
}

/*
 * A value is complete at the current position (and already stored in its
 * parent's element array): like value_done(), for the fast path.
 */
static int fast_value_done(aredis_reader *r, aredis_reply *obj, int is_attr, void **out) {
    for (;;) {
        if (is_attr) {
            /* Two attributes in a row: the later one wins (both are in the arena). */
            *attr_slot(r) = obj;
            return 1;
        }
        if (r->depth == 0) return fast_reply_done(r, obj, out);
        reader_frame *f = &r->stack[r->depth - 1];
        if (++f->idx < f->claimed) return 1;
        obj = f->obj;
        obj->elements = f->claimed;
        is_attr = f->type == AREDIS_REPLY_ATTR;
        r->depth--;
    }
}

/* Store a new value (not an attribute) at the current position, adopting its attribute. */
static READER_INLINE void fast_attach(aredis_reader *r, aredis_reply *o) {
    if (r->depth == 0) {
        if (r->top_attr) {
            o->attribute = r->top_attr;
            r->top_attr = NULL;
        }
        return;
    }
    reader_frame *f = &r->stack[r->depth - 1];
    if (f->attr) {
        o->attribute = f->attr;
        f->attr = NULL;
    }
    f->elems[f->idx] = o; /* fast_new() made the room */
}

/* A leaf was made at the current position: store and complete it. */
static READER_INLINE int fast_leaf_done(aredis_reader *r, aredis_reply *o, void **out) {
    if (!o) return reader_nomem(r);
    fast_attach(r, o);
    if (r->depth == 0) return fast_reply_done(r, o, out);
    reader_frame *f = &r->stack[r->depth - 1];
    if (f->idx + 1 < f->claimed) {
        f->idx++;
        return 1;
    }
    return fast_value_done(r, o, 0, out);
}

static READER_INLINE int fast_string(aredis_reader *r, aredis_reply_type type, const char *s,
                                     size_t n, void **out) {
    const char *src = s;
    size_t len = n;
    if (type == AREDIS_REPLY_VERB) {
        /* The reader checked n >= 4 and s[3] == ':'. */
        src += 4;
        len -= 4;
    }
    aredis_reply *o;
    if (r->depth == 0 && !r->ahead && buf_can_steal(r, s, n)) {
        /* s is in the buffer, which the reply now owns: writable. */
        o = buf_steal(r, type, (char *)(uintptr_t)src, len);
        if (type == AREDIS_REPLY_VERB) memcpy(o->vtype, s, 3);
        *out = o;
        return 1;
    }
    if (len > SIZE_MAX - 16) return reader_nomem(r);
    char *p;
    o = fast_new(r, type, 1, ARENA_ALIGN(len + 1), 0, &p);
    if (o) {
        o->str = p;
        o->len = len;
        aredis__copy(p, src, len);
        p[len] = '\0';
        if (type == AREDIS_REPLY_VERB) memcpy(o->vtype, s, 3);
    }
    return fast_leaf_done(r, o, out);
}

static int fast_aggregate(aredis_reader *r, aredis_reply_type at, size_t claimed, void **out) {
    size_t slots = claimed ? reserve_slots(r, claimed) : 0;
    size_t arr = slots * sizeof(aredis_reply *); /* slots <= buffered bytes: no overflow */
    /* A chunk made now: the array, then about this many bytes of elements. */
    size_t payload = r->len - r->pos;
    if (payload > slots * ARENA_EST_PAYLOAD) payload = slots * ARENA_EST_PAYLOAD;
    size_t want = arr + slots * sizeof(aredis_reply) + payload;
    char *p;
    aredis_reply *o = fast_new(r, at, 0, arr, want, &p);
    if (!o) return reader_nomem(r);
    o->integer = claimed > (size_t)LLONG_MAX ? LLONG_MAX : (long long)claimed;
    if (slots) o->element = (aredis_reply **)(void *)p;
    if (at != AREDIS_REPLY_ATTR) fast_attach(r, o);
    if (claimed == 0) return fast_value_done(r, o, at == AREDIS_REPLY_ATTR, out);
    reader_frame *f = &r->stack[r->depth++];
    f->obj = o;
    f->attr = NULL;
    f->claimed = claimed;
    f->idx = 0;
    f->elems = o->element;
    f->cap = slots;
    f->type = at;
    return 1;
}

/* ---- Making values (either path) ---------------------------------------- */

static READER_INLINE int make_string(aredis_reader *r, aredis_reply_type type, const char *s,
                                     size_t n, void **out) {
    if (r->fast) return fast_string(r, type, s, n, out);
    aredis_reader_task t;
    make_task(r, type, &t);
    return leaf_done(r, r->fn->create_string(&t, s, n), out);
}

static READER_INLINE int make_nil(aredis_reader *r, void **out) {
    if (r->fast) {
        char *p;
        return fast_leaf_done(r, fast_new(r, AREDIS_REPLY_NIL, 1, 0, 0, &p), out);
    }
    aredis_reader_task t;
    make_task(r, AREDIS_REPLY_NIL, &t);
    return leaf_done(r, r->fn->create_nil(&t), out);
}

static READER_INLINE int make_integer(aredis_reader *r, long long v, void **out) {
    if (r->fast) {
        char *p;
        aredis_reply *o = fast_new(r, AREDIS_REPLY_INTEGER, 1, 0, 0, &p);
        if (o) o->integer = v;
        return fast_leaf_done(r, o, out);
    }
    aredis_reader_task t;
    make_task(r, AREDIS_REPLY_INTEGER, &t);
    return leaf_done(r, r->fn->create_integer(&t, v), out);
}

static int make_double(aredis_reader *r, double d, const char *s, size_t n, void **out) {
    if (r->fast) {
        char *p;
        aredis_reply *o = fast_new(r, AREDIS_REPLY_DOUBLE, 1, ARENA_ALIGN(n + 1), 0, &p);
        if (o) {
            o->dval = d;
            o->str = p;
            o->len = n;
            memcpy(p, s, n);
            p[n] = '\0';
        }
        return fast_leaf_done(r, o, out);
    }
    aredis_reader_task t;
    make_task(r, AREDIS_REPLY_DOUBLE, &t);
    return leaf_done(r, r->fn->create_double(&t, d, s, n), out);
}

static int make_bool(aredis_reader *r, int v, void **out) {
    if (r->fast) {
        char *p;
        aredis_reply *o = fast_new(r, AREDIS_REPLY_BOOL, 1, 0, 0, &p);
        if (o) o->integer = v;
        return fast_leaf_done(r, o, out);
    }
    aredis_reader_task t;
    make_task(r, AREDIS_REPLY_BOOL, &t);
    return leaf_done(r, r->fn->create_bool(&t, v), out);
}

/* ---- Items -------------------------------------------------------------- */

/* A blob payload is complete in the buffer at pos: check it, build it. */
static READER_INLINE int finish_bulk(aredis_reader *r, aredis_reply_type type, size_t n,
                                     void **out) {
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
static READER_INLINE int open_bulk(aredis_reader *r, char type, long long v, void **out) {
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
    if (r->fast) return fast_aggregate(r, at, claimed, out);
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
    f->elems = NULL;
    f->cap = 0;
    f->type = at;
    return 1;
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
        return make_double(r, d, line, n, out);
    case '#':
        if (n != 1 || (line[0] != 't' && line[0] != 'f'))
            return reader_fail(r, AREDIS_ERR_PROTOCOL, "bad boolean");
        return make_bool(r, line[0] == 't', out);
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
 * RS_LINE, the general path: find the header line with memchr (resuming an
 * incomplete one where the last search stopped), check it strictly, and make
 * what it announces. Like every step: returns 1 after progress (with *out set
 * when a reply is complete), 0 when more bytes are needed, -1 on error.
 */
static READER_NOINLINE int read_line(aredis_reader *r, void **out) {
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

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
#define READER_SWAR 1
#endif

/*
 * A header number in its plain form — an optional '-', 1 to 18 digits (no
 * overflow possible), CRLF — after the type byte at t. Returns the byte after
 * the CRLF, or NULL for anything else, incomplete included: the strict
 * general path then parses the line again and reports any error.
 *
 * `wide` (a constant at each call) is for integers, which often run to many
 * digits: with eight bytes buffered from t, one load takes the type byte and
 * up to seven more, and the digits are found and converted in the register
 * (SWAR), in flat time. Lengths and counts are mostly 1 to 3 digits, for
 * which the plain loop has the shorter dependency chain (the next item's
 * position waits on the value), so they keep the loop.
 */
static READER_INLINE const char *scan_num(const char *t, const char *end, unsigned long long *v,
                                          int *neg, int wide) {
    const char *p = t + 1;
#ifdef READER_SWAR
    if (wide && end - t >= 8) {
        uint64_t x;
        memcpy(&x, t, 8);
        x >>= 8; /* drop the type byte: 7 bytes, then a zero byte (a non-digit) */
        unsigned have = 7;
        *neg = (x & 0xff) == '-';
        if (*neg) {
            x >>= 8;
            have = 6;
            p++;
        }
        /* A byte is a digit when its high nibble is 3 and adding 6 keeps it so. */
        const uint64_t nib = 0xF0F0F0F0F0F0F0F0ULL, threes = 0x3030303030303030ULL;
        uint64_t nondigit = ((x & nib) ^ threes) | (((x + 0x0606060606060606ULL) & nib) ^ threes);
        unsigned d = (unsigned)__builtin_ctzll(nondigit) / 8; /* nondigit != 0: the top byte */
        if (d == 0 || d == have) goto bytewise;               /* none, or maybe more beyond */
        /* The d digits to the top of the register, first digit most significant. */
        uint64_t y = x << (8 * (8 - d));
        y = ((y & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
        y = ((y & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
        y = ((y & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
        p += d;
        if (d + 2 <= have) {
            if (((x >> (8 * d)) & 0xFFFF) != 0x0A0D) return NULL;
        } else if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            return NULL;
        }
        *v = y;
        return p + 2;
    }
bytewise:
    p = t + 1;
#endif
    *neg = p < end && *p == '-';
    p += *neg;
    const char *first = p;
    const char *lim = end - p > 18 ? p + 18 : end;
    unsigned long long x = 0;
    while (p < lim) {
        unsigned d = (unsigned char)*p - (unsigned)'0';
        if (d > 9) break;
        x = x * 10 + d;
        p++;
    }
    if (p == first || end - p < 2 || p[0] != '\r' || p[1] != '\n') return NULL;
    *v = x;
    return p + 2;
}

/*
 * A short simple line (+ -) starting at p: returns its CR, or NULL when it is
 * longer than READER_SHORT_LINE, incomplete, holds a bare CR or LF, or is
 * over the limit — all left to the general path.
 */
static READER_INLINE const char *scan_short_line(const aredis_reader *r, const char *p,
                                                 const char *end) {
    const char *q = p;
    const char *lim = end - p > READER_SHORT_LINE ? p + READER_SHORT_LINE : end;
    while (q < lim && *q != '\r' && *q != '\n')
        q++;
    if (end - q < 2 || q[0] != '\r' || q[1] != '\n') return NULL;
    if ((size_t)(q - p) > r->cur.max_bulk_len) return NULL;
    return q;
}

/*
 * RS_LINE: one item. The commonest shapes, complete in the buffer, are taken
 * in one inline pass: a length, count or integer of at most 18 plain digits
 * (with a '-' where one can be valid), a short simple string, "_" and "#t/f".
 * Anything else — longer, incomplete, malformed, over a limit — goes to the
 * strict general path, which parses it again from its type byte and reports
 * any error.
 */
static READER_INLINE int read_item(aredis_reader *r, void **out) {
    const char *p = r->buf + r->pos;
    const char *end = r->buf + r->len;
    const char *q;
    unsigned long long v;
    int neg;
    if (p == end) return 0;
    if (r->scanned) return read_line(r, out);
    char type = *p;
    switch (type) {
    case ':':
        if (!(q = scan_num(p, end, &v, &neg, 1))) break;
        r->pos = (size_t)(q - r->buf);
        return make_integer(r, neg ? -(long long)v : (long long)v, out);
    case '$':
        if (!(q = scan_num(p, end, &v, &neg, 0))) break;
        if (neg) {
            if (v != 1) break; /* "-0" and the like: the general path */
            r->pos = (size_t)(q - r->buf);
            return make_nil(r, out);
        }
        r->pos = (size_t)(q - r->buf);
        return open_bulk(r, type, (long long)v, out);
    case '*':
    case '%':
    case '~':
    case '>':
    case '|':
        if (!(q = scan_num(p, end, &v, &neg, 0))) break;
        if (neg && (type != '*' || v != 1)) break;
        r->pos = (size_t)(q - r->buf);
        return open_aggregate(r, type, neg ? -1 : (long long)v, out);
    case '!':
    case '=':
        if (!(q = scan_num(p, end, &v, &neg, 0)) || neg) break;
        r->pos = (size_t)(q - r->buf);
        return open_bulk(r, type, (long long)v, out);
    case '+':
    case '-':
        if (!(q = scan_short_line(r, p + 1, end))) break;
        r->pos = (size_t)(q + 2 - r->buf);
        return make_string(r, type == '+' ? AREDIS_REPLY_STATUS : AREDIS_REPLY_ERROR, p + 1,
                           (size_t)(q - (p + 1)), out);
    case '_':
        if (end - p < 3 || p[1] != '\r' || p[2] != '\n') break;
        r->pos += 3;
        return make_nil(r, out);
    case '#':
        if (end - p < 4 || (p[1] != 't' && p[1] != 'f') || p[2] != '\r' || p[3] != '\n') break;
        r->pos += 4;
        return make_bool(r, p[1] == 't', out);
    default:
        break;
    }
    return read_line(r, out);
}

/*
 * A top-level nil with no attribute — every missing key — is one shared,
 * read-only reply: retain, release and free do nothing to it (REPLY_STATIC).
 */
static const aredis_reply nil_reply = {
    .type = AREDIS_REPLY_NIL, .priv_refs = 1, .priv_alloc = REPLY_STATIC};

static READER_INLINE aredis_reply *shared_nil(void) {
    return (aredis_reply *)(uintptr_t)&nil_reply;
}

/* Four bytes as one word (a constant when s is a literal). */
static READER_INLINE uint32_t load32(const char *s) {
    uint32_t w;
    memcpy(&w, s, 4);
    return w;
}

/*
 * The commonest replies of all — a complete top-level $bulk, $-1, +status,
 * -error or :integer, with the default builder — made here in one pass,
 * without the state machine or the frame stack. Returns 1 with *o set, 0
 * when the bytes are anything else (the general path takes them), -1 when
 * out of memory (the reader has failed). Runs only at the start of a reply
 * (depth 0, no partial header, no pending attribute).
 */
static READER_INLINE int read_top_leaf(aredis_reader *r, aredis_reply **o) {
    const char *p = r->buf + r->pos;
    const char *end = r->buf + r->len;
    const char *q;
    unsigned long long v;
    int neg;
    aredis_reply *x;
    /* "$-1\r\n" (a missing key) and "+OK\r\n", the two commonest replies: by one compare. */
    if (end - p >= 5 && p[4] == '\n') {
        uint32_t w = load32(p);
        if (w == load32("$-1\r")) {
            x = shared_nil();
            r->pos += 5;
            *o = x;
            return 1;
        }
        if (w == load32("+OK\r") && r->cur.max_bulk_len >= 2) {
            x = root_leaf_new(AREDIS_REPLY_STATUS, 8);
            if (!x) return reader_nomem(r);
            x->str = (char *)(x + 1);
            x->len = 2;
            memcpy(x->str, "OK", 3);
            r->pos += 5;
            *o = x;
            return 1;
        }
    }
    switch (*p) {
    case '$':
        if (!(q = scan_num(p, end, &v, &neg, 0))) return 0;
        if (neg) {
            if (v != 1) return 0;
            x = shared_nil();
            r->pos = (size_t)(q - r->buf);
            *o = x;
            return 1;
        }
        /* v < 10^18: no overflow below; the payload is in the buffer. */
        if (v > r->cur.max_bulk_len || (size_t)(end - q) < v + 2 || q[v] != '\r' ||
            q[v + 1] != '\n')
            return 0;
        if (buf_can_steal(r, q, (size_t)v)) {
            *o = buf_steal(r, AREDIS_REPLY_STRING, (char *)(uintptr_t)q, (size_t)v);
            return 1;
        }
        x = root_leaf_new(AREDIS_REPLY_STRING, ARENA_ALIGN((size_t)v + 1));
        if (!x) return reader_nomem(r);
        x->str = (char *)(x + 1);
        x->len = (size_t)v;
        aredis__copy(x->str, q, (size_t)v);
        x->str[v] = '\0';
        r->pos = (size_t)(q + v + 2 - r->buf);
        *o = x;
        return 1;
    case ':':
        if (!(q = scan_num(p, end, &v, &neg, 1))) return 0;
        x = root_leaf_new(AREDIS_REPLY_INTEGER, 0);
        if (!x) return reader_nomem(r);
        x->integer = neg ? -(long long)v : (long long)v;
        r->pos = (size_t)(q - r->buf);
        *o = x;
        return 1;
    case '+':
    case '-': {
        const char *line = p + 1;
        if (!(q = scan_short_line(r, line, end))) return 0;
        size_t n = (size_t)(q - line);
        x = root_leaf_new(*p == '+' ? AREDIS_REPLY_STATUS : AREDIS_REPLY_ERROR, ARENA_ALIGN(n + 1));
        if (!x) return reader_nomem(r);
        x->str = (char *)(x + 1);
        x->len = n;
        aredis__copy(x->str, line, n);
        x->str[n] = '\0';
        r->pos = (size_t)(q + 2 - r->buf);
        *o = x;
        return 1;
    }
    default:
        return 0;
    }
}

/*
 * The body of get_reply for everything but the two commonest calls: out of
 * line, so that those pay for no big stack frame.
 */
static READER_NOINLINE aredis_err get_reply_parse(aredis_reader *r, void **reply) {
    void *out = NULL;
    /*
     * New limits apply from the next reply on. A reply ends inside one call
     * and the call then returns, so a reply can only start here, at the top.
     */
    if (r->limits_changed && r->depth == 0 && !r->top_attr && r->state == RS_LINE) {
        r->cur = r->limits;
        r->limits_changed = 0;
    }
    for (;;) {
        int rc = r->state == RS_BULK ? read_bulk(r, &out) : read_item(r, &out);
        if (rc <= 0) {
            if (rc < 0) return r->err;
            break;
        }
        if (out) break;
    }
    buf_rewind_if_empty(r);
    if (reply)
        *reply = out;
    else if (out)
        r->fn->free_object(out);
    return AREDIS_ERR_OK;
}

/* get_reply with bytes to parse: the commonest replies first, in one pass. */
static READER_NOINLINE aredis_err get_reply_some(aredis_reader *r, void **reply) {
    /* A reply starts here, nothing pending (depth 0, no partial header, no attribute). */
    if (r->fast && !(r->depth | r->scanned | (uintptr_t)r->ahead | (unsigned)r->state |
                     (unsigned)r->limits_changed)) {
        aredis_reply *o = NULL;
        int rc = read_top_leaf(r, &o);
        if (rc < 0) return r->err;
        if (rc) {
            buf_rewind_if_empty(r);
            if (reply)
                *reply = o;
            else
                aredis_reply_free(o);
            return AREDIS_ERR_OK;
        }
    }
    return get_reply_parse(r, reply);
}

aredis_err aredis_reader_get_reply(aredis_reader *r, void **reply) {
    if (reply) *reply = NULL;
    if (r->err) return r->err;
    if (r->pos == r->len) { /* nothing to parse: the common last call of a batch */
        buf_rewind_if_empty(r);
        return AREDIS_ERR_OK;
    }
    return get_reply_some(r, reply);
}
