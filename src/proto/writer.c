/*
 * The command writer: a printf-like format or an argv array in, one RESP
 * command ("*N\r\n$len\r\narg\r\n...") out. No I/O.
 *
 * This is on the hot path of every command, so it makes ONE pass over the
 * input, writes straight into the output and never allocates per argument
 * (hiredis builds an sds string per argument and then copies them all again):
 *
 *   - A format argument is a word: literal bytes and conversions up to the
 *     next ' '. A word of one piece ("GET", "%s", "%d") is measured first
 *     (strlen, the %b length, an integer converted on the stack), so its
 *     "$len\r\n" header is written before its bytes and it is copied once.
 *     A word of several pieces ("key:%d") is copied piece by piece behind a
 *     4-byte header slot ("$N\r\n", N < 10); once the word is complete, a
 *     payload of 10 bytes or more is moved up once behind its longer header.
 *   - The argument count is only known at the end. Space for "*N\r\n" with
 *     N < 10 is kept in front; a command with more arguments moves its body
 *     once to make room for the longer header.
 *   - argv knows its count up front; each argument is measured and written
 *     in turn.
 *
 * Only %s, %b, %% and the plain integers (%d %i %u, with l, ll or z) are
 * converted inline. Every other printf conversion hiredis accepts (flags,
 * width, precision, hh/h, o x X, doubles, %c) goes through printf_piece(),
 * a cold helper that rebuilds the exact conversion spec and snprintf's one
 * argument into a small stack scratch (a longer result is formatted into the
 * output buffer, past where it is copied to), so the common conversions pay
 * nothing for the rare ones.
 *
 * Room is checked per argument (per piece in a several-piece word) against a
 * bound that covers the payload, the longest header and the CRLF; the output
 * grows only when that check fails. A bad conversion is only found when the
 * scan reaches it, so on ANY error the command is rolled back: b->len goes
 * back to where the command started and the bytes before it are untouched.
 * A growth on the way may have enlarged the buffer or, through
 * aredis__buf_reserve(), reclaimed its consumed prefix.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "util/copy.h"
#include "aredis/writer.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/buf.h"

/* The longest "$<len>\r\n" or "*<n>\r\n": 1 + 20 digits + 2. */
#define HDR_MAX 23
/* Room asked for per argument besides its payload: header and CRLF. */
#define ARG_SLACK (HDR_MAX + 2)
/* The public API formats into this much stack before it needs the heap. */
#define STACK_OUT 512

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- Integer to ASCII ------------------------------------------------- */

/* Two digits at a time halves the number of divisions. */
static const char digits2[201] = "00010203040506070809101112131415161718192021222324"
                                 "25262728293031323334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374"
                                 "75767778798081828384858687888990919293949596979899";

static inline size_t u64_digits(uint64_t v) {
    size_t n = 1;
    for (;;) {
        if (v < 10) return n;
        if (v < 100) return n + 1;
        if (v < 1000) return n + 2;
        if (v < 10000) return n + 3;
        v /= 10000;
        n += 4;
    }
}

/*
 * Write v in decimal so that it ends just before `end`; returns its start.
 * Values that fit 32 bits (nearly all) take the cheaper 32-bit divisions.
 */
static inline char *u32_rev(char *end, uint32_t v) {
    while (v >= 100) {
        uint32_t i = (v % 100) * 2;
        v /= 100;
        end -= 2;
        memcpy(end, digits2 + i, 2);
    }
    if (v >= 10) {
        end -= 2;
        memcpy(end, digits2 + v * 2, 2);
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

static inline char *u64_rev(char *end, uint64_t v) {
    while (v > UINT32_MAX) {
        size_t i = (size_t)(v % 100) * 2;
        v /= 100;
        end -= 2;
        memcpy(end, digits2 + i, 2);
    }
    return u32_rev(end, (uint32_t)v);
}

/* "<type><v>\r\n" at p (at most HDR_MAX bytes); returns its end. */
static inline char *put_hdr(char *p, char type, size_t v) {
    p[0] = type;
    if (v < 10) {
        p[1] = (char)('0' + (int)v);
        p[2] = '\r';
        p[3] = '\n';
        return p + 4;
    }
    if (v < 100) {
        p[1] = digits2[v * 2];
        p[2] = digits2[v * 2 + 1];
        p[3] = '\r';
        p[4] = '\n';
        return p + 5;
    }
    p += 1 + u64_digits((uint64_t)v);
    u64_rev(p, (uint64_t)v);
    p[0] = '\r';
    p[1] = '\n';
    return p + 2;
}

/* ---- The output ------------------------------------------------------- */

/*
 * Where a command is written: the tail of an aredis__buf (b set), or, for
 * the public API, a stack array that moves to the heap when it is too small.
 * Between growths the writers work on local copies of p and cap.
 */
typedef struct {
    char *p;        /* b->data, the stack array or the heap block */
    size_t pos;     /* the write offset (synced around a growth only) */
    size_t cap;     /* bytes at p */
    size_t start;   /* where this command starts */
    aredis__buf *b; /* appending to b, or NULL */
    int heap;       /* b == NULL: p is an aredis__malloc'd block */
} wbuf;

/*
 * Make room for `need` bytes at w->pos, the first `keep` of which are
 * already written (a several-piece word in flight) and must survive. Cold.
 * Returns -1 when out of memory; then nothing has changed.
 */
static __attribute__((noinline, cold)) int wb_grow(wbuf *w, size_t need, size_t keep) {
    /* No object is larger than PTRDIFF_MAX: a bogus %b length or argvlen
     * fails here rather than in the allocator. */
    if (need > (size_t)PTRDIFF_MAX - w->pos) return -1;
    if (w->b) {
        aredis__buf *b = w->b;
        /* Count the partial command as used so that a compaction keeps it. */
        size_t hold = w->pos + keep;
        size_t saved = b->len;
        b->len = hold;
        if (aredis__buf_reserve(b, need - keep) != 0) {
            b->len = saved;
            return -1;
        }
        /* A compaction moved everything down by the consumed prefix. */
        size_t shift = hold - b->len;
        w->start -= shift;
        w->pos -= shift;
        w->p = b->data;
        w->cap = b->cap;
        return 0;
    }
    size_t want, cap;
    if (aredis__add_overflow(w->pos, need, &want)) return -1;
    cap = w->cap > ((size_t)-1) / 2 ? want : w->cap * 2;
    if (cap < want) cap = want;
    char *np;
    if (w->heap) {
        np = aredis__realloc(w->p, cap);
    } else {
        np = aredis__malloc(cap);
        if (np) memcpy(np, w->p, w->pos + keep);
    }
    if (np == NULL) return -1;
    w->p = np;
    w->cap = cap;
    w->heap = 1;
    return 0;
}

/* ---- Format ----------------------------------------------------------- */

/* Bytes that end a run of literal format bytes. */
static const unsigned char lit_stop[256] = {[0] = 1, [' '] = 1, ['%'] = 1};

/* Bytes that end a word. */
#define WORD_END(c) ((c) == ' ' || (c) == '\0')

/*
 * Where a converted argument waits until it is copied into the output: an
 * integer of the fast path is written so that it ends at the scratch's end,
 * a printf conversion from its start. A printf result too long for it is
 * written into the output buffer itself, past the place it is copied to.
 */
#define SCRATCH 64

/*
 * printf_piece() grew the output to hold a long result: the writer reloads
 * its pointers. A private value, never returned by the writer.
 */
#define PIECE_MOVED ((aredis_err)AREDIS_ERR__COUNT)

/* A piece converted by printf_piece(): its bytes, where the format goes on,
 * and OK, PIECE_MOVED or an error. Returned by value so that the hot loop's
 * locals keep no address. */
typedef struct {
    const char *s;
    size_t n;
    const char *f;
    aredis_err rc;
} piece;

/* The argument of a printf conversion, fetched with its promoted type. */
enum { K_INT, K_UINT, K_LONG, K_ULONG, K_LLONG, K_ULLONG, K_SSIZE, K_SIZE, K_DOUBLE };
typedef union {
    int i;
    unsigned u;
    long l;
    unsigned long ul;
    long long ll;
    unsigned long long ull;
    ssize_t ss;
    size_t sz;
    double d;
} conv_arg;

/* snprintf one argument of kind k with spec; the result's length, or < 0. */
static int conv_print(char *dst, size_t cap, const char *spec, int k, const conv_arg *a) {
    switch (k) {
    case K_INT:
        return snprintf(dst, cap, spec, a->i);
    case K_UINT:
        return snprintf(dst, cap, spec, a->u);
    case K_LONG:
        return snprintf(dst, cap, spec, a->l);
    case K_ULONG:
        return snprintf(dst, cap, spec, a->ul);
    case K_LLONG:
        return snprintf(dst, cap, spec, a->ll);
    case K_ULLONG:
        return snprintf(dst, cap, spec, a->ull);
    case K_SSIZE:
        return snprintf(dst, cap, spec, a->ss);
    case K_SIZE:
        return snprintf(dst, cap, spec, a->sz);
    default:
        return snprintf(dst, cap, spec, a->d);
    }
}

/* v in decimal at p; returns its end. */
static char *put_u32(char *p, uint32_t v) {
    char *e = p + u64_digits(v);
    u32_rev(e, v);
    return e;
}

/* Digits of a width or precision at *pp (none: 0); -1 past INT_MAX. */
static long conv_number(const char **pp) {
    const char *p = *pp;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        if (v > (INT_MAX - (*p - '0')) / 10) return -1;
        v = v * 10 + (*p - '0');
        p++;
    }
    *pp = p;
    return v;
}

/*
 * One printf conversion at f (a '%' that is not %s, %b, %% or a plain
 * integer of the fast path), as hiredis accepts them: flags "#0- +", a
 * width and a precision in digits (no '*'), a length hh h l ll (or z, as
 * the fast path has it) and one of d i o u x X, or no length and one of
 * e E f F g G a A or c. Combinations C leaves undefined (# with d i u or
 * c; 0 or a precision with c) are refused too, as is any other byte: %n,
 * %p, %*d, L, j, t, q, a '%' ending the format. The spec is rebuilt in a
 * canonical form (each flag once, numbers without leading zeros), so it
 * always fits its buffer, and snprintf'd with the one argument.
 *
 * The result goes to `buf` (SCRATCH bytes) when it fits. A longer one is
 * written into w, whose command has `keep` bytes in flight at offset pos:
 * the piece will be copied to at most pos + keep + HDR_MAX, so it is put
 * past that copy's end, in room grown now for both (the writer's own room
 * check then finds enough and moves nothing), and PIECE_MOVED says that w
 * may have moved (w->pos is then pos's new offset).
 */
static __attribute__((noinline, cold)) piece printf_piece(const char *f, va_list *ap, char *buf,
                                                          wbuf *w, size_t pos, size_t keep) {
    piece r = {NULL, 0, f, AREDIS_ERR_INVALID};
    enum { F_ALT = 1, F_ZERO = 2, F_LEFT = 4, F_SPACE = 8, F_PLUS = 16 };
    unsigned flags = 0;
    const char *p = f + 1;
    for (;; p++) {
        if (*p == '#')
            flags |= F_ALT;
        else if (*p == '0')
            flags |= F_ZERO;
        else if (*p == '-')
            flags |= F_LEFT;
        else if (*p == ' ')
            flags |= F_SPACE;
        else if (*p == '+')
            flags |= F_PLUS;
        else
            break;
    }
    long width = -1, prec = -1;
    if (*p >= '1' && *p <= '9' && (width = conv_number(&p)) < 0) return r;
    if (*p == '.') {
        p++;
        if ((prec = conv_number(&p)) < 0) return r;
    }
    /* Length: 0 none, 1 hh, 2 h, 3 l, 4 ll, 5 z. */
    static const char *const len_text[] = {"", "hh", "h", "l", "ll", "z"};
    int len = 0;
    if (p[0] == 'h')
        len = p[1] == 'h' ? 1 : 2;
    else if (p[0] == 'l')
        len = p[1] == 'l' ? 4 : 3;
    else if (p[0] == 'z')
        len = 5;
    p += len == 1 || len == 4 ? 2 : len ? 1 : 0;

    char conv = *p;
    int signed_conv = conv == 'd' || conv == 'i';
    int k;
    conv_arg a;
    if (signed_conv || conv == 'o' || conv == 'u' || conv == 'x' || conv == 'X') {
        if ((flags & F_ALT) && (signed_conv || conv == 'u')) return r;
        switch (len) {
        case 3:
            k = signed_conv ? K_LONG : K_ULONG;
            break;
        case 4:
            k = signed_conv ? K_LLONG : K_ULLONG;
            break;
        case 5:
            k = signed_conv ? K_SSIZE : K_SIZE;
            break;
        default: /* none, and hh / h (promoted to int; snprintf narrows) */
            k = signed_conv ? K_INT : K_UINT;
            break;
        }
    } else if (conv == 'e' || conv == 'E' || conv == 'f' || conv == 'F' || conv == 'g' ||
               conv == 'G' || conv == 'a' || conv == 'A') {
        if (len) return r;
        k = K_DOUBLE;
    } else if (conv == 'c') {
        if (len || prec >= 0 || (flags & (F_ALT | F_ZERO))) return r;
        k = K_INT;
    } else {
        return r; /* unknown, or the format ended */
    }
    switch (k) {
    case K_INT:
        a.i = va_arg(*ap, int);
        break;
    case K_UINT:
        a.u = va_arg(*ap, unsigned);
        break;
    case K_LONG:
        a.l = va_arg(*ap, long);
        break;
    case K_ULONG:
        a.ul = va_arg(*ap, unsigned long);
        break;
    case K_LLONG:
        a.ll = va_arg(*ap, long long);
        break;
    case K_ULLONG:
        a.ull = va_arg(*ap, unsigned long long);
        break;
    case K_SSIZE:
        a.ss = va_arg(*ap, ssize_t);
        break;
    case K_SIZE:
        a.sz = va_arg(*ap, size_t);
        break;
    default:
        a.d = va_arg(*ap, double);
        break;
    }

    /* '%', 5 flags, 2 numbers of at most 10 digits, '.', 2 length bytes,
     * the conversion and a NUL: 32 at most. */
    char spec[40], *q = spec;
    *q++ = '%';
    if (flags & F_ALT) *q++ = '#';
    if (flags & F_ZERO) *q++ = '0';
    if (flags & F_LEFT) *q++ = '-';
    if (flags & F_SPACE) *q++ = ' ';
    if (flags & F_PLUS) *q++ = '+';
    if (width >= 0) q = put_u32(q, (uint32_t)width);
    if (prec >= 0) {
        *q++ = '.';
        q = put_u32(q, (uint32_t)prec);
    }
    memcpy(q, len_text[len], strlen(len_text[len]));
    q += strlen(len_text[len]);
    *q++ = conv;
    *q = '\0';

    int n = conv_print(buf, SCRATCH, spec, k, &a);
    if (n < 0) return r; /* past INT_MAX bytes */
    r.s = buf;
    r.rc = AREDIS_ERR_OK;
    if ((size_t)n >= SCRATCH) {
        /* In flight, then the copy (header and payload), then the text. */
        size_t at = keep + HDR_MAX + (size_t)n, need;
        if (aredis__add_overflow(at, (size_t)n + 1 + ARG_SLACK, &need)) {
            r.rc = AREDIS_ERR_NOMEM;
            return r;
        }
        w->pos = pos;
        if (w->cap - w->pos < need && wb_grow(w, need, keep) != 0) {
            r.rc = AREDIS_ERR_NOMEM;
            return r;
        }
        char *t = w->p + w->pos + at;
        if (conv_print(t, (size_t)n + 1, spec, k, &a) != n) {
            r.rc = AREDIS_ERR_INVALID;
            return r;
        }
        r.s = t;
        r.rc = PIECE_MOVED;
    }
    r.n = (size_t)n;
    r.f = p + 1;
    return r;
}

/* printf_piece() for next_piece(), its result in next_piece()'s terms. */
static inline __attribute__((always_inline)) aredis_err printf_conv(const char **pf, va_list *ap,
                                                                    char *buf, wbuf *w,
                                                                    const char *q, size_t keep,
                                                                    const char **ps, size_t *pn) {
    piece r = printf_piece(*pf, ap, buf, w, (size_t)(q - w->p), keep);
    if (r.rc != AREDIS_ERR_OK && r.rc != PIECE_MOVED) return r.rc;
    *ps = r.s;
    *pn = r.n;
    *pf = r.f;
    return r.rc;
}

/*
 * One piece of a word at *pf: a run of literal bytes, or one conversion
 * (an integer is converted so that it ends just before the scratch's end;
 * the rarer printf conversions go through printf_piece(), which is given
 * the output's state: q, with `keep` bytes of the command in flight). An
 * empty conversion is still a piece, so "%s" with "" makes an empty
 * argument, not a missing one. Returns AREDIS_ERR_INVALID for a bad
 * conversion or a NULL pointer, AREDIS_ERR_NOMEM when a long printf result
 * finds no room, PIECE_MOVED when the output moved under q.
 */
static inline __attribute__((always_inline)) aredis_err next_piece(const char **pf, va_list *ap,
                                                                   char *buf, wbuf *w,
                                                                   const char *q, size_t keep,
                                                                   const char **ps, size_t *pn) {
    const char *f = *pf;
    char *e = buf + SCRATCH;
    uint64_t mag;
    int neg;

    if (*f != '%') {
        const char *s = f;
        do {
            f++;
        } while (!lit_stop[(unsigned char)*f]);
        *ps = s;
        *pn = (size_t)(f - s);
        *pf = f;
        return AREDIS_ERR_OK;
    }
    /* Every integer is a sign and a magnitude, converted in one place. The
     * magnitude is taken in unsigned arithmetic so that INT_MIN is fine. */
#define SIGNED(T)                                                                                  \
    do {                                                                                           \
        T v_ = va_arg(*ap, T);                                                                     \
        neg = v_ < 0;                                                                              \
        mag = neg ? (uint64_t)0 - (uint64_t)v_ : (uint64_t)v_;                                     \
    } while (0)
#define UNSIGNED(T)                                                                                \
    do {                                                                                           \
        neg = 0;                                                                                   \
        mag = va_arg(*ap, T);                                                                      \
    } while (0)
    switch (f[1]) {
    case 's': {
        const char *s = va_arg(*ap, const char *);
        if (s == NULL) return AREDIS_ERR_INVALID;
        *ps = s;
        *pn = strlen(s);
        *pf = f + 2;
        return AREDIS_ERR_OK;
    }
    case 'b': {
        const char *s = va_arg(*ap, const char *);
        size_t n = va_arg(*ap, size_t);
        if (s == NULL && n != 0) return AREDIS_ERR_INVALID;
        *ps = s;
        *pn = n;
        *pf = f + 2;
        return AREDIS_ERR_OK;
    }
    case '%':
        *ps = f + 1;
        *pn = 1;
        *pf = f + 2;
        return AREDIS_ERR_OK;
    case 'd':
    case 'i':
        SIGNED(int);
        f += 2;
        break;
    case 'u':
        UNSIGNED(unsigned int);
        f += 2;
        break;
    case 'l':
        if (f[2] == 'l') {
            if (f[3] == 'd' || f[3] == 'i')
                SIGNED(long long);
            else if (f[3] == 'u')
                UNSIGNED(unsigned long long);
            else
                goto printf_conv;
            f += 4;
        } else {
            if (f[2] == 'd' || f[2] == 'i')
                SIGNED(long);
            else if (f[2] == 'u')
                UNSIGNED(unsigned long);
            else
                goto printf_conv;
            f += 3;
        }
        break;
    case 'z':
        if (f[2] == 'u')
            UNSIGNED(size_t);
        else if (f[2] == 'd')
            SIGNED(ssize_t);
        else
            goto printf_conv;
        f += 3;
        break;
    default: /* flags, width, precision, h, o x X, doubles, %c; or invalid */
    printf_conv:
        return printf_conv(pf, ap, buf, w, q, keep, ps, pn);
    }
#undef SIGNED
#undef UNSIGNED
    char *s = u64_rev(e, mag);
    if (neg) *--s = '-';
    *ps = s;
    *pn = (size_t)(e - s);
    *pf = f;
    return AREDIS_ERR_OK;
}

/*
 * Append the command at w->pos. On error w->pos is meaningless and the
 * caller rolls back to w->start.
 *
 * A word of one piece ("GET", "%s"), the common case, has its length before
 * its bytes: header, then one copy. A word of several pieces ("key:%d") is
 * copied piece by piece behind a 4-byte header slot ("$N\r\n", N < 10); a
 * payload of 10 bytes or more is then moved up behind its longer header.
 */
static inline __attribute__((always_inline)) aredis_err fmt_write(wbuf *w, const char *f,
                                                                  va_list *ap) {
    char buf[SCRATCH];
    size_t argc = 0;
    aredis_err rc;

    /* "*N\r\n" for N < 10; more arguments move the body at the end. */
    if (w->cap - w->pos < 4 && wb_grow(w, 4, 0) != 0) return AREDIS_ERR_NOMEM;
    char *q = w->p + w->pos + 4;
    char *end = w->p + w->cap;

    for (;;) {
        while (*f == ' ')
            f++;
        if (*f == '\0') break;
        const char *s;
        size_t n, need;
        rc = next_piece(&f, ap, buf, w, q, 0, &s, &n);
        if (UNLIKELY(rc != AREDIS_ERR_OK)) {
            if (rc != PIECE_MOVED) return rc;
            q = w->p + w->pos;
            end = w->p + w->cap;
        }
        if (LIKELY(WORD_END(*f))) {
            if (aredis__add_overflow(n, ARG_SLACK, &need)) return AREDIS_ERR_NOMEM;
            if (UNLIKELY((size_t)(end - q) < need)) {
                w->pos = (size_t)(q - w->p);
                if (wb_grow(w, need, 0) != 0) return AREDIS_ERR_NOMEM;
                q = w->p + w->pos;
                end = w->p + w->cap;
            }
            q = put_hdr(q, '$', n);
            aredis__copy(q, s, n);
            q += n;
        } else {
            /* A word of several pieces: append each to the payload. */
            size_t len = 0;
            for (;;) {
                size_t total;
                if (aredis__add_overflow(len, n, &total) ||
                    aredis__add_overflow(total, ARG_SLACK, &need))
                    return AREDIS_ERR_NOMEM;
                if (UNLIKELY((size_t)(end - q) < need)) {
                    w->pos = (size_t)(q - w->p);
                    if (wb_grow(w, need, 4 + len) != 0) return AREDIS_ERR_NOMEM;
                    q = w->p + w->pos;
                    end = w->p + w->cap;
                }
                aredis__copy(q + 4 + len, s, n);
                len = total;
                if (WORD_END(*f)) break;
                rc = next_piece(&f, ap, buf, w, q, 4 + len, &s, &n);
                if (UNLIKELY(rc != AREDIS_ERR_OK)) {
                    if (rc != PIECE_MOVED) return rc;
                    q = w->p + w->pos;
                    end = w->p + w->cap;
                }
            }
            if (len >= 10) aredis__move(q + 3 + u64_digits((uint64_t)len), q + 4, len);
            q = put_hdr(q, '$', len) + len;
        }
        q[0] = '\r';
        q[1] = '\n';
        q += 2;
        argc++;
    }
    w->pos = (size_t)(q - w->p);

    if (argc == 0) return AREDIS_ERR_INVALID;
    if (argc < 10) {
        put_hdr(w->p + w->start, '*', argc);
    } else {
        size_t extra = 3 + u64_digits((uint64_t)argc) - 4;
        if (w->cap - w->pos < extra && wb_grow(w, extra, 0) != 0) return AREDIS_ERR_NOMEM;
        char *at = w->p + w->start;
        memmove(at + 4 + extra, at + 4, w->pos - w->start - 4);
        put_hdr(at, '*', argc);
        w->pos += extra;
    }
    return AREDIS_ERR_OK;
}

/* ---- argv ------------------------------------------------------------- */

/* The arguments of argv_write(), with or without argvlen (unswitched). */
static inline __attribute__((always_inline)) aredis_err
argv_args(wbuf *w, char *q, int argc, const char *const *argv, const size_t *argvlen) {
    char *end = w->p + w->cap;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (s == NULL) return AREDIS_ERR_INVALID;
        size_t len = argvlen ? argvlen[i] : strlen(s), need;
        if (aredis__add_overflow(len, ARG_SLACK, &need)) return AREDIS_ERR_NOMEM;
        if (UNLIKELY((size_t)(end - q) < need)) {
            w->pos = (size_t)(q - w->p);
            if (wb_grow(w, need, 0) != 0) return AREDIS_ERR_NOMEM;
            q = w->p + w->pos;
            end = w->p + w->cap;
        }
        q = put_hdr(q, '$', len);
        aredis__copy(q, s, len);
        q += len;
        q[0] = '\r';
        q[1] = '\n';
        q += 2;
    }
    w->pos = (size_t)(q - w->p);
    return AREDIS_ERR_OK;
}

static inline __attribute__((always_inline)) aredis_err
argv_write(wbuf *w, int argc, const char *const *argv, const size_t *argvlen) {
    if (argc < 1 || argv == NULL) return AREDIS_ERR_INVALID;
    if (w->cap - w->pos < HDR_MAX && wb_grow(w, HDR_MAX, 0) != 0) return AREDIS_ERR_NOMEM;
    char *q = put_hdr(w->p + w->pos, '*', (size_t)argc);
    if (argvlen) return argv_args(w, q, argc, argv, argvlen);
    return argv_args(w, q, argc, argv, NULL);
}

/* ---- Internal API: append to a buffer --------------------------------- */

aredis_err aredis__write_vfmt(aredis__buf *b, const char *fmt, va_list ap) {
    if (b == NULL || fmt == NULL) return AREDIS_ERR_INVALID;
    wbuf w = {b->data, b->len, b->cap, b->len, b, 0};
    va_list cp;
    va_copy(cp, ap);
    aredis_err rc = fmt_write(&w, fmt, &cp);
    va_end(cp);
    b->len = rc == AREDIS_ERR_OK ? w.pos : w.start;
    return rc;
}

aredis_err aredis__write_argv(aredis__buf *b, int argc, const char *const *argv,
                              const size_t *argvlen) {
    if (b == NULL) return AREDIS_ERR_INVALID;
    wbuf w = {b->data, b->len, b->cap, b->len, b, 0};
    aredis_err rc = argv_write(&w, argc, argv, argvlen);
    b->len = rc == AREDIS_ERR_OK ? w.pos : w.start;
    return rc;
}

/* ---- Public API: an allocated command --------------------------------- */

/*
 * Hand out what w holds, allocated at its exact size plus a NUL (handy when
 * the command is printed; the length is still authoritative). Frees w's
 * heap block on error. One allocation when the command fit on the stack.
 */
static aredis_err finish(wbuf *w, aredis_err rc, char **out, size_t *outlen) {
    if (rc != AREDIS_ERR_OK) {
        if (w->heap) aredis__free(w->p);
        return rc;
    }
    size_t len = w->pos, n;
    char *cmd;
    if (aredis__add_overflow(len, 1, &n)) {
        cmd = NULL;
    } else if (w->heap) {
        cmd = aredis__realloc(w->p, n);
        /* A failed shrink keeps the larger block. */
        if (cmd == NULL && w->cap >= n) cmd = w->p;
    } else {
        cmd = aredis__malloc(n);
        if (cmd) memcpy(cmd, w->p, len);
    }
    if (cmd == NULL) {
        if (w->heap) aredis__free(w->p);
        return AREDIS_ERR_NOMEM;
    }
    cmd[len] = '\0';
    *out = cmd;
    *outlen = len;
    return AREDIS_ERR_OK;
}

aredis_err aredis_vformat_command(char **out, size_t *outlen, const char *fmt, va_list ap) {
    char stack[STACK_OUT];
    wbuf w = {stack, 0, sizeof stack, 0, NULL, 0};

    if (out) *out = NULL;
    if (outlen) *outlen = 0;
    if (out == NULL || outlen == NULL || fmt == NULL) return AREDIS_ERR_INVALID;
    va_list cp;
    va_copy(cp, ap);
    aredis_err rc = fmt_write(&w, fmt, &cp);
    va_end(cp);
    return finish(&w, rc, out, outlen);
}

aredis_err aredis_format_command(char **out, size_t *outlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err rc = aredis_vformat_command(out, outlen, fmt, ap);
    va_end(ap);
    return rc;
}

aredis_err aredis_format_argv(char **out, size_t *outlen, int argc, const char *const *argv,
                              const size_t *argvlen) {
    char stack[STACK_OUT];
    wbuf w = {stack, 0, sizeof stack, 0, NULL, 0};

    if (out) *out = NULL;
    if (outlen) *outlen = 0;
    if (out == NULL || outlen == NULL) return AREDIS_ERR_INVALID;
    return finish(&w, argv_write(&w, argc, argv, argvlen), out, outlen);
}

void aredis_free_command(char *cmd) { aredis__free(cmd); }
