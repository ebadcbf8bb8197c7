/*
 * The command writer: a printf-like format or an argv array in, one RESP
 * command ("*N\r\n$len\r\narg\r\n...") out. No I/O.
 *
 * This is on the hot path of every command, so it works in two passes over
 * the input and never allocates per argument (hiredis builds an sds string
 * per argument and then copies them all again):
 *
 *   1. measure: validate every conversion, count the arguments and compute
 *      each argument's length and the exact size of the whole command;
 *   2. emit: reserve that size once and write the bytes in place.
 *
 * Pass 2 needs each argument's length before its bytes (the "$len" header
 * comes first). Pass 1 remembers the first LEN_CACHE lengths on the stack;
 * for the rare command with more arguments, pass 2 re-measures that one
 * argument from a va_copy just before writing it. Either way, nothing is
 * allocated besides the output itself.
 *
 * Because everything is validated in pass 1, pass 2 cannot fail, and a
 * failed call leaves the caller's buffer untouched.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "aredis/writer.h"
#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/buf.h"

/* Argument lengths remembered between the passes, on the stack. */
#define LEN_CACHE 32

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

/* Write v in decimal at dst; returns the end of what was written. */
static inline char *u64_put(char *dst, uint64_t v) {
    size_t n = u64_digits(v);
    char *p = dst + n;
    while (v >= 100) {
        size_t i = (size_t)(v % 100) * 2;
        v /= 100;
        *--p = digits2[i + 1];
        *--p = digits2[i];
    }
    if (v >= 10) {
        size_t i = (size_t)v * 2;
        *--p = digits2[i + 1];
        *--p = digits2[i];
    } else {
        *--p = (char)('0' + (int)v);
    }
    return dst + n;
}

/*
 * A signed value's decimal length, or its bytes when dst is not NULL. The
 * magnitude is computed in unsigned arithmetic so that LLONG_MIN is fine.
 */
static inline size_t i64_put(char *dst, long long v) {
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t neg = v < 0;
    if (dst) {
        if (neg) *dst++ = '-';
        u64_put(dst, mag);
    }
    return neg + u64_digits(mag);
}

static inline size_t uns_put(char *dst, unsigned long long v) {
    if (dst) u64_put(dst, (uint64_t)v);
    return u64_digits((uint64_t)v);
}

/* "$<len>\r\n<len bytes>\r\n" */
static inline size_t bulk_overhead(size_t len) { return 5 + u64_digits((uint64_t)len); }

/* ---- The format scanner ----------------------------------------------- */

enum { SCAN_END = 0, SCAN_ARG = 1, SCAN_INVALID = -1, SCAN_TOOBIG = -2 };

/*
 * Consume one argument from the format at *pf, taking conversions from *ap.
 * With dst NULL it only measures (and validates); otherwise it also writes
 * the argument's bytes at dst. *len receives the argument's length.
 *
 * Returns SCAN_ARG, SCAN_END when only spaces are left, SCAN_INVALID for a
 * bad conversion or a NULL pointer, SCAN_TOOBIG when the length would
 * overflow size_t.
 *
 * An argument is present as soon as it holds any literal character or any
 * conversion, so "%s" with "" is an empty argument, not a missing one.
 */
static int scan_arg(const char **pf, va_list *ap, char *dst, size_t *len) {
    const char *f = *pf;
    size_t n = 0;

    while (*f == ' ') f++;
    if (*f == '\0') {
        *pf = f;
        return SCAN_END;
    }
    while (*f != '\0' && *f != ' ') {
        if (*f != '%') {
            /* A run of literal bytes (bounded by the format's own length). */
            const char *s = f;
            while (*f != '\0' && *f != ' ' && *f != '%') f++;
            if (dst) memcpy(dst + n, s, (size_t)(f - s));
            n += (size_t)(f - s);
            continue;
        }
        f++; /* past '%' */
        const char *s;
        size_t piece;
        char *at = dst ? dst + n : NULL;
        switch (*f) {
        case '%':
            if (at) *at = '%';
            piece = 1;
            break;
        case 's':
            s = va_arg(*ap, const char *);
            if (s == NULL) return SCAN_INVALID;
            piece = strlen(s);
            if (at) memcpy(at, s, piece);
            break;
        case 'b':
            s = va_arg(*ap, const void *);
            piece = va_arg(*ap, size_t);
            if (s == NULL && piece != 0) return SCAN_INVALID;
            if (at && piece) memcpy(at, s, piece);
            break;
        case 'd':
        case 'i':
            piece = i64_put(at, va_arg(*ap, int));
            break;
        case 'u':
            piece = uns_put(at, va_arg(*ap, unsigned int));
            break;
        case 'l':
            f++;
            if (*f == 'l') {
                f++;
                if (*f == 'd' || *f == 'i')
                    piece = i64_put(at, va_arg(*ap, long long));
                else if (*f == 'u')
                    piece = uns_put(at, va_arg(*ap, unsigned long long));
                else
                    return SCAN_INVALID;
            } else if (*f == 'd' || *f == 'i') {
                piece = i64_put(at, va_arg(*ap, long));
            } else if (*f == 'u') {
                piece = uns_put(at, va_arg(*ap, unsigned long));
            } else {
                return SCAN_INVALID;
            }
            break;
        case 'z':
            f++;
            if (*f == 'u')
                piece = uns_put(at, va_arg(*ap, size_t));
            else if (*f == 'd')
                piece = i64_put(at, va_arg(*ap, ssize_t));
            else
                return SCAN_INVALID;
            break;
        default: /* unknown conversion, or a '%' that ends the format */
            return SCAN_INVALID;
        }
        f++; /* past the conversion letter */
        if (aredis__add_overflow(n, piece, &n)) return SCAN_TOOBIG;
    }
    *pf = f;
    *len = n;
    return SCAN_ARG;
}

/*
 * Pass 1. Fills lens[0..min(argc, LEN_CACHE)) and returns the argument count
 * and the exact size of the command.
 */
static aredis_err fmt_measure(const char *fmt, va_list ap, size_t *lens, size_t *argc_out,
                              size_t *total_out) {
    va_list cp;
    const char *f = fmt;
    size_t argc = 0, total = 0, len = 0;
    aredis_err rc = AREDIS_ERR_OK;

    va_copy(cp, ap);
    for (;;) {
        int r = scan_arg(&f, &cp, NULL, &len);
        if (r == SCAN_END) break;
        if (r != SCAN_ARG) {
            rc = r == SCAN_INVALID ? AREDIS_ERR_INVALID : AREDIS_ERR_NOMEM;
            break;
        }
        if (argc < LEN_CACHE) lens[argc] = len;
        argc++;
        if (aredis__add_overflow(total, bulk_overhead(len), &total) ||
            aredis__add_overflow(total, len, &total)) {
            rc = AREDIS_ERR_NOMEM;
            break;
        }
    }
    va_end(cp);
    if (rc != AREDIS_ERR_OK) return rc;
    if (argc == 0) return AREDIS_ERR_INVALID;
    /* "*<argc>\r\n" */
    if (aredis__add_overflow(total, 3 + u64_digits((uint64_t)argc), &total))
        return AREDIS_ERR_NOMEM;
    *argc_out = argc;
    *total_out = total;
    return AREDIS_ERR_OK;
}

static inline char *put_header(char *p, char type, size_t v) {
    *p++ = type;
    p = u64_put(p, (uint64_t)v);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Pass 2: write the command measured by fmt_measure(); returns its end. */
static char *fmt_emit(char *p, const char *fmt, va_list ap, const size_t *lens, size_t argc) {
    va_list cp;
    const char *f = fmt;
    size_t len = 0, got = 0;

    va_copy(cp, ap);
    p = put_header(p, '*', argc);
    for (size_t i = 0; i < argc; i++) {
        if (i < LEN_CACHE) {
            len = lens[i];
        } else {
            /* Past the cache: measure this one argument on a copy. */
            va_list m;
            const char *mf = f;
            va_copy(m, cp);
            (void)scan_arg(&mf, &m, NULL, &len);
            va_end(m);
        }
        p = put_header(p, '$', len);
        (void)scan_arg(&f, &cp, p, &got);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    va_end(cp);
    return p;
}

/* ---- argv ------------------------------------------------------------- */

static aredis_err argv_measure(int argc, const char *const *argv, const size_t *argvlen,
                               size_t *lens, size_t *total_out) {
    size_t total = 0;

    if (argc < 1 || argv == NULL) return AREDIS_ERR_INVALID;
    for (int i = 0; i < argc; i++) {
        if (argv[i] == NULL) return AREDIS_ERR_INVALID;
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        if (i < LEN_CACHE) lens[i] = len;
        if (aredis__add_overflow(total, bulk_overhead(len), &total) ||
            aredis__add_overflow(total, len, &total))
            return AREDIS_ERR_NOMEM;
    }
    if (aredis__add_overflow(total, 3 + u64_digits((uint64_t)argc), &total))
        return AREDIS_ERR_NOMEM;
    *total_out = total;
    return AREDIS_ERR_OK;
}

static char *argv_emit(char *p, int argc, const char *const *argv, const size_t *argvlen,
                       const size_t *lens) {
    p = put_header(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : i < LEN_CACHE ? lens[i] : strlen(argv[i]);
        p = put_header(p, '$', len);
        if (len) memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return p;
}

/* ---- Internal API: append to a buffer --------------------------------- */

aredis_err aredis__write_vfmt(aredis__buf *b, const char *fmt, va_list ap) {
    size_t lens[LEN_CACHE];
    size_t argc = 0, total = 0;

    if (b == NULL || fmt == NULL) return AREDIS_ERR_INVALID;
    aredis_err rc = fmt_measure(fmt, ap, lens, &argc, &total);
    if (rc != AREDIS_ERR_OK) return rc;
    if (aredis__buf_reserve(b, total) != 0) return AREDIS_ERR_NOMEM;
    char *end = fmt_emit(b->data + b->len, fmt, ap, lens, argc);
    assert(end == b->data + b->len + total);
    (void)end;
    b->len += total;
    return AREDIS_ERR_OK;
}

aredis_err aredis__write_argv(aredis__buf *b, int argc, const char *const *argv,
                              const size_t *argvlen) {
    size_t lens[LEN_CACHE];
    size_t total = 0;

    if (b == NULL) return AREDIS_ERR_INVALID;
    aredis_err rc = argv_measure(argc, argv, argvlen, lens, &total);
    if (rc != AREDIS_ERR_OK) return rc;
    if (aredis__buf_reserve(b, total) != 0) return AREDIS_ERR_NOMEM;
    char *end = argv_emit(b->data + b->len, argc, argv, argvlen, lens);
    assert(end == b->data + b->len + total);
    (void)end;
    b->len += total;
    return AREDIS_ERR_OK;
}

/* ---- Public API: an allocated command --------------------------------- */

/*
 * The result is allocated at its exact size plus a NUL (handy when the
 * command is printed; the length is still authoritative).
 */
static char *alloc_command(size_t total) {
    size_t n;
    if (aredis__add_overflow(total, 1, &n)) return NULL;
    return aredis__malloc(n);
}

aredis_err aredis_vformat_command(char **out, size_t *outlen, const char *fmt, va_list ap) {
    size_t lens[LEN_CACHE];
    size_t argc = 0, total = 0;

    if (out) *out = NULL;
    if (outlen) *outlen = 0;
    if (out == NULL || outlen == NULL || fmt == NULL) return AREDIS_ERR_INVALID;
    aredis_err rc = fmt_measure(fmt, ap, lens, &argc, &total);
    if (rc != AREDIS_ERR_OK) return rc;
    char *cmd = alloc_command(total);
    if (cmd == NULL) return AREDIS_ERR_NOMEM;
    char *end = fmt_emit(cmd, fmt, ap, lens, argc);
    *end = '\0';
    *out = cmd;
    *outlen = total;
    return AREDIS_ERR_OK;
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
    size_t lens[LEN_CACHE];
    size_t total = 0;

    if (out) *out = NULL;
    if (outlen) *outlen = 0;
    if (out == NULL || outlen == NULL) return AREDIS_ERR_INVALID;
    aredis_err rc = argv_measure(argc, argv, argvlen, lens, &total);
    if (rc != AREDIS_ERR_OK) return rc;
    char *cmd = alloc_command(total);
    if (cmd == NULL) return AREDIS_ERR_NOMEM;
    char *end = argv_emit(cmd, argc, argv, argvlen, lens);
    *end = '\0';
    *out = cmd;
    *outlen = total;
    return AREDIS_ERR_OK;
}

void aredis_free_command(char *cmd) { aredis__free(cmd); }
