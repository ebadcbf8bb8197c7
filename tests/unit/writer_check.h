/*
 * Shared by the writer's unit tests (writer.c, writer_printf.c): format and
 * compare with the exact bytes expected, and build expected RESP.
 * Include after ts.h, proto/writer_internal.h and util/buf.h.
 */
#ifndef AREDIS_TEST_WRITER_CHECK_H
#define AREDIS_TEST_WRITER_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Format with the public API and compare to the expected bytes exactly. */
#define EXPECT_FMT(expected, ...)                                                                  \
    do {                                                                                           \
        char *out_ = NULL;                                                                         \
        size_t len_ = 0;                                                                           \
        assert_int_equal(aredis_format_command(&out_, &len_, __VA_ARGS__), AREDIS_ERR_OK);         \
        assert_non_null(out_);                                                                     \
        assert_int_equal(len_, sizeof(expected) - 1);                                              \
        assert_memory_equal(out_, expected, sizeof(expected) - 1);                                 \
        assert_int_equal(out_[len_], '\0');                                                        \
        aredis_free_command(out_);                                                                 \
    } while (0)

/* A small growable byte string for building expected output. */
typedef struct {
    char *p;
    size_t n;
} bytes;

static inline void bytes_add(bytes *b, const void *p, size_t n) {
    b->p = realloc(b->p, b->n + n + 1);
    assert_non_null(b->p);
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* A RESP header: type, then a decimal, then CRLF ("*3\r\n", "$5\r\n"). */
static inline void bytes_hdr(bytes *b, char type, size_t v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%c%zu\r\n", type, v);
    bytes_add(b, tmp, (size_t)n);
}

/* Expected RESP for argc arguments (lens NULL: NUL-terminated). */
static inline bytes resp(int argc, const char *const *argv, const size_t *lens) {
    bytes b = {NULL, 0};
    bytes_hdr(&b, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        bytes_hdr(&b, '$', l);
        bytes_add(&b, argv[i], l);
        bytes_add(&b, "\r\n", 2);
    }
    return b;
}

/* Format through the va_list entry of the internal API. */
static inline aredis_err buf_fmt(aredis__buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err rc = aredis__write_vfmt(b, fmt, ap);
    va_end(ap);
    return rc;
}

#endif
