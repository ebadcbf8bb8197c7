/*
 * aredis/writer.h — turn a command into RESP bytes (no I/O).
 *
 * Two forms, both binary safe:
 *   argv:   argc arguments with explicit lengths.
 *   format: a printf-like string. Spaces separate arguments; a conversion
 *           is pasted into the argument it stands in, so "key:%s" is one
 *           argument. Conversions:
 *             %s   NUL-terminated string
 *             %b   binary: a pointer then a size_t length
 *             %d %i %u %ld %li %lu %lld %lli %llu %zu %zd   integers
 *             %%   a literal '%'
 *           Anything else is AREDIS_ERR_INVALID (no flags, widths or
 *           precisions; a '%' ending the format is invalid too). An empty
 *           string given to %s or %b is an empty argument, not a missing one.
 *           Only ' ' separates arguments; runs of spaces and leading or
 *           trailing spaces make no empty arguments. A NULL %s, or a NULL %b
 *           pointer with a nonzero length, is AREDIS_ERR_INVALID.
 *
 * The functions below return a buffer allocated with the library allocator
 * (followed by a NUL byte not counted in the length, for printing); free it
 * with aredis_free_command(). Arguments must not change during the call.
 */
#ifndef AREDIS_WRITER_H
#define AREDIS_WRITER_H

#include <stdarg.h>
#include <stddef.h>

#include "aredis/error.h"
#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Format `fmt` into *out (allocated) and its length into *outlen.
 * Returns AREDIS_ERR_OK, AREDIS_ERR_INVALID (bad format, no arguments, NULL
 * out/outlen/fmt) or AREDIS_ERR_NOMEM. On error *out is NULL and *outlen 0.
 * `ap` is only va_copy'd, never consumed.
 */
AREDIS_API aredis_err aredis_format_command(char **out, size_t *outlen, const char *fmt, ...);
AREDIS_API aredis_err aredis_vformat_command(char **out, size_t *outlen, const char *fmt,
                                             va_list ap);

/*
 * Encode argc arguments. argvlen may be NULL, then every argv[i] is a
 * NUL-terminated string. argc must be at least 1 and no argv[i] may be NULL
 * (even with a zero length), else AREDIS_ERR_INVALID.
 */
AREDIS_API aredis_err aredis_format_argv(char **out, size_t *outlen, int argc,
                                         const char *const *argv, const size_t *argvlen);

/* Free a buffer returned by the functions above. NULL is ignored. */
AREDIS_API void aredis_free_command(char *cmd);

#ifdef __cplusplus
}
#endif

#endif
