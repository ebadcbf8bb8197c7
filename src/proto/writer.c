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
 * Room is checked per argument (per piece in a several-piece word) against a
 * bound that covers the payload, the longest header and the CRLF; the output
 * grows only when that check fails. A bad conversion is only found when the
 * scan reaches it, so on ANY error the command is rolled back: b->len goes
 * back to where the command started and the bytes before it are untouched.
 * A growth on the way may have enlarged the buffer or, through
 * aredis__buf_reserve(), reclaimed its consumed prefix.
 */
#include <stddef.h>
#include <stdint.h>
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
 * One piece of a word at *pf: a run of literal bytes, or one conversion
 * (an integer is converted so that it ends just before `e`). An empty
 * conversion is still a piece, so "%s" with "" makes an empty argument, not
 * a missing one. Returns AREDIS_ERR_INVALID for a bad conversion or a NULL
 * pointer.
 */
static inline __attribute__((always_inline)) aredis_err
next_piece(const char **pf, va_list *ap, char *e, const char **ps, size_t *pn) {
    const char *f = *pf;
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
                return AREDIS_ERR_INVALID;
            f += 4;
        } else {
            if (f[2] == 'd' || f[2] == 'i')
                SIGNED(long);
            else if (f[2] == 'u')
                UNSIGNED(unsigned long);
            else
                return AREDIS_ERR_INVALID;
            f += 3;
        }
        break;
    case 'z':
        if (f[2] == 'u')
            UNSIGNED(size_t);
        else if (f[2] == 'd')
            SIGNED(ssize_t);
        else
            return AREDIS_ERR_INVALID;
        f += 3;
        break;
    default: /* unknown conversion, or a '%' that ends the format */
        return AREDIS_ERR_INVALID;
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
    char num[24];
    size_t argc = 0;
    aredis_err rc;

    /* "*N\r\n" for N < 10; more arguments move the body at the end. */
    if (w->cap - w->pos < 4 && wb_grow(w, 4, 0) != 0) return AREDIS_ERR_NOMEM;
    char *q = w->p + w->pos + 4;
    char *end = w->p + w->cap;

    for (;;) {
        while (*f == ' ') f++;
        if (*f == '\0') break;
        const char *s;
        size_t n, need;
        rc = next_piece(&f, ap, num + sizeof num, &s, &n);
        if (rc != AREDIS_ERR_OK) return rc;
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
                rc = next_piece(&f, ap, num + sizeof num, &s, &n);
                if (rc != AREDIS_ERR_OK) return rc;
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
