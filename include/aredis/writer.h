/**
 * @file
 * aredis/writer.h — turn a command into RESP bytes (no I/O).
 *
 * Two forms, both binary safe:
 *   - argv: argc arguments with explicit lengths.
 *   - format: a printf-like string, as hiredis's.
 *
 * In a format, spaces separate arguments; a conversion is pasted into the
 * argument it stands in, so `"key:%s"` is one argument and `"%5d"` gives one
 * argument padded with spaces. Conversions:
 *
 *     %s   NUL-terminated string
 *     %b   binary: a pointer then a size_t length
 *     %%   a literal '%'
 *
 * and the printf conversions of one argument, formatted as snprintf does
 * (doubles in the current C locale):
 *
 *     %[flags][width][.precision][length]conversion
 *       flags       any of # 0 - + and space
 *       width       digits ('*' is not accepted)
 *       precision   '.' and digits ('.*' is not accepted)
 *       length      hh h l ll z, with d i o u x X only
 *       conversion  d i o u x X   an int (or the length's type)
 *                   e E f F g G a A   a double (no length)
 *                   c   an int, as one byte (a 0 gives a NUL byte;
 *                       no length, no precision, no # or 0 flag)
 *
 * The fast ones: \%s, \%b, \%d \%i \%u and their l, ll and z forms are
 * converted inline; the others go through snprintf. Anything else is
 * AREDIS_ERR_INVALID: other conversions (\%p, \%n, \%ls, \%5s...), L j t q
 * lengths, a width or precision past INT_MAX, '#' with d i u (undefined in
 * C), and a '\%' ending the format (hiredis sends that one as a literal
 * '\%'; it has no \%c or z, which aredis accepts). An empty string given to
 * \%s or \%b is an empty argument, not a missing one. Only ' ' in the format
 * separates arguments; runs of spaces and leading or trailing spaces make no
 * empty arguments. A NULL \%s, or a NULL \%b pointer with a nonzero
 * length, is AREDIS_ERR_INVALID.
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

/**
 * Format `fmt` into *out (allocated) and its length into *outlen
 * (aredis_vformat_command(): its arguments as a va_list).
 * Returns AREDIS_ERR_OK, AREDIS_ERR_INVALID (bad format, no arguments, NULL
 * out/outlen/fmt) or AREDIS_ERR_NOMEM. On error *out is NULL and *outlen 0.
 * `ap` is only va_copy'd, never consumed.
 */
/** @{ */
AREDIS_API aredis_err aredis_format_command(char **out, size_t *outlen, const char *fmt, ...);
AREDIS_API aredis_err aredis_vformat_command(char **out, size_t *outlen, const char *fmt,
                                             va_list ap);
/** @} */

/**
 * Encode argc arguments. argvlen may be NULL, then every argv[i] is a
 * NUL-terminated string. argc must be at least 1 and no argv[i] may be NULL
 * (even with a zero length), else AREDIS_ERR_INVALID.
 */
AREDIS_API aredis_err aredis_format_argv(char **out, size_t *outlen, int argc,
                                         const char *const *argv, const size_t *argvlen);

/** Free a buffer returned by the functions above. NULL is ignored. */
AREDIS_API void aredis_free_command(char *cmd);

#ifdef __cplusplus
}
#endif

#endif
