/*
 * Key prefixing (aredis_options.prefix): every key argument of every command
 * gets the prefix, values never do. Which arguments are keys comes from the
 * command table (proto/cmdtable.h) and, for the commands its key specs do
 * not describe, from the special cases listed in prefix.c. A command whose
 * keys cannot be known for sure is refused rather than sent half-prefixed.
 *
 * Internal: the client encodes through it when a prefix is set
 * (client/command.c) and strips the prefix from the key names some replies
 * carry (client/client.c, dispatch).
 */
#ifndef AREDIS_PROTO_PREFIX_H
#define AREDIS_PROTO_PREFIX_H

#include <stdarg.h>
#include <stddef.h>

#include "aredis/error.h"
#include "aredis/reply.h"
#include "proto/cmdtable.h"
#include "util/buf.h"

/* The longest prefix accepted (aredis_client_new refuses a longer one). */
#define AREDIS__PREFIX_MAX 1024

/*
 * What to strip from a command's reply (aredis__prefix_encode's *strip):
 * the key names it carries, so that the caller sees the names it used.
 */
#define AREDIS__STRIP_NONE 0u
#define AREDIS__STRIP_KEYS 1u  /* KEYS: every string of the array */
#define AREDIS__STRIP_SCAN 2u  /* SCAN: [cursor, keys]: every string of keys */
#define AREDIS__STRIP_FIRST 3u /* BLPOP, LMPOP, BZPOPMIN...: [key, ...]: the key */
#define AREDIS__STRIP_STREAMS                                                                      \
    4u /* XREAD, XREADGROUP: [[key, entries]...] (RESP2)                                           \
          or {key: entries...} (RESP3): each key */

/*
 * Append to `out` one RESP command: args[0..nargs) with `prefix` (plen
 * bytes, 1..AREDIS__PREFIX_MAX) put in front of every key argument, per
 * the built-in command table, then `extra` (may be NULL), and the special
 * cases of prefix.c. *strip gets an AREDIS__STRIP_* for the reply.
 *
 * Returns AREDIS_ERR_OK; AREDIS_ERR_UNSUPPORTED when the command's keys
 * cannot be known for sure (a command no table knows, a number of
 * arguments its arity does not allow, a key count out of range, a key spec
 * the table cannot follow), with the reason recorded by
 * aredis__call_fail (aredis_call_error()); AREDIS_ERR_INVALID for no
 * arguments or a bad prefix length; AREDIS_ERR_NOMEM. On error nothing is
 * appended. The same contract on `out` as the writer's
 * (proto/writer_internal.h): a growth may move the used bytes to the front.
 */
aredis_err aredis__prefix_encode(aredis__buf *out, const aredis__cmdtable *extra,
                                 const char *prefix, size_t plen, const aredis__arg *args,
                                 size_t nargs, unsigned *strip);

/* The same, from argc arguments (argvlen NULL: NUL-terminated strings). */
aredis_err aredis__prefix_encode_argv(aredis__buf *out, const aredis__cmdtable *extra,
                                      const char *prefix, size_t plen, int argc,
                                      const char *const *argv, const size_t *argvlen,
                                      unsigned *strip);

/* The same, from a format (aredis/writer.h); `ap` is not consumed. */
aredis_err aredis__prefix_encode_fmt(aredis__buf *out, const aredis__cmdtable *extra,
                                     const char *prefix, size_t plen, const char *fmt, va_list ap,
                                     unsigned *strip);

/*
 * Remove the prefix from the key names of reply r, in place, as `strip`
 * (AREDIS__STRIP_*) says: each such string that starts with the prefix
 * loses it (moved down, still NUL-terminated, len adjusted); any other
 * string, a reply of another shape (an error, nil) is left as it is.
 */
void aredis__prefix_strip(aredis_reply *r, unsigned strip, const char *prefix, size_t plen);

#endif
