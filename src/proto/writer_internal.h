/*
 * The command writer's internal entry points: format a command straight into
 * a client's output buffer, with no intermediate allocation.
 *
 * Both functions APPEND exactly one complete RESP command
 * ("*N\r\n$len\r\narg\r\n...") after the buffer's used bytes, in one pass:
 * the buffer grows (aredis__buf_reserve) as the command is written. On any
 * error the command is rolled back: the used bytes (b->off .. b->len) hold
 * exactly what they held before the call, though the storage may have grown
 * on the way (an error is typically found only when the scan reaches it).
 *
 * A growth may reclaim the consumed prefix (b->off becomes 0 and the used
 * bytes move to the front), so b->len before the call is not where the
 * command starts: it starts at b->off + (b->len - b->off as it was before the
 * call), and on error that is where b->len is left.
 *
 * Errors: AREDIS_ERR_INVALID for a NULL/unknown conversion, a NULL format, a
 * format with no arguments, argc < 1, a NULL argv or argv entry, a NULL %s
 * string, a NULL %b pointer with a nonzero length; AREDIS_ERR_NOMEM when the
 * buffer cannot grow (or the command's size would overflow size_t).
 *
 * The format grammar is the public one, see aredis/writer.h.
 */
#ifndef AREDIS_PROTO_WRITER_INTERNAL_H
#define AREDIS_PROTO_WRITER_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "aredis/error.h"
#include "util/buf.h"

/* Append the command described by fmt/ap. `ap` is not consumed (va_copy'd). */
aredis_err aredis__write_vfmt(aredis__buf *b, const char *fmt, va_list ap);

/* Append argc arguments; argvlen NULL means NUL-terminated strings. */
aredis_err aredis__write_argv(aredis__buf *b, int argc, const char *const *argv,
                              const size_t *argvlen);

#endif
