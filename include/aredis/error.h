/**
 * @file
 * aredis/error.h — typed errors.
 *
 * Every failure aredis reports carries one code from the table below and a
 * detail string. The table is an X-macro so that the enum, the names and the
 * messages can never drift apart.
 *
 * Classes:
 *
 *     IO        the transport failed (refused, reset, EOF, unreachable)
 *     TIMEOUT   a deadline passed (connect or request)
 *     PROTOCOL  the peer sent bytes that are not valid RESP, or exceeded a limit
 *     SERVER    the server answered with an error reply (-ERR, -WRONGTYPE, ...)
 *               — a server error is an answer, not a transport failure
 *     AUTH      authentication was refused (NOAUTH, WRONGPASS, ...)
 *     ...       see the table (aredis_err)
 */
#ifndef AREDIS_ERROR_H
#define AREDIS_ERROR_H

#include <stddef.h>

#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The table of error codes, as an X-macro: X(NAME, "message") for each
 * code AREDIS_ERR_NAME of aredis_err, in enum order — keep OK first. */
#define AREDIS_ERRNO_MAP(X)                                                                        \
    X(OK, "success")                                                                               \
    X(IO, "connection error")                                                                      \
    X(EOF, "connection closed by peer")                                                            \
    X(CONNREFUSED, "connection refused")                                                           \
    X(RESOLVE, "cannot resolve host")                                                              \
    X(TIMEOUT, "timed out")                                                                        \
    X(PROTOCOL, "protocol error")                                                                  \
    X(SERVER, "server error reply")                                                                \
    X(AUTH, "authentication failed")                                                               \
    X(HANDSHAKE, "connection setup refused by server")                                             \
    X(TLS, "TLS error")                                                                            \
    X(QUEUE_FULL, "command queue full")                                                            \
    X(CANCELLED, "cancelled")                                                                      \
    X(CLOSED, "client closed")                                                                     \
    X(NOT_CONNECTED, "not connected")                                                              \
    X(FORKED, "client used in a forked child")                                                     \
    X(NOMEM, "out of memory")                                                                      \
    X(INVALID, "invalid argument")                                                                 \
    X(URI, "malformed URI")                                                                        \
    X(UNSUPPORTED, "not supported")                                                                \
    X(CROSSSLOT, "keys in different cluster hash slots")

/**
 * An error code: one enumerator AREDIS_ERR_NAME per row X(NAME, "message") of
 * AREDIS_ERRNO_MAP, in that order, from AREDIS_ERR_OK = 0. The codes and
 * their messages (aredis_strerror()):
 *
 *     AREDIS_ERR_OK             success
 *     AREDIS_ERR_IO             connection error
 *     AREDIS_ERR_EOF            connection closed by peer
 *     AREDIS_ERR_CONNREFUSED    connection refused
 *     AREDIS_ERR_RESOLVE        cannot resolve host
 *     AREDIS_ERR_TIMEOUT        timed out
 *     AREDIS_ERR_PROTOCOL       protocol error
 *     AREDIS_ERR_SERVER         server error reply
 *     AREDIS_ERR_AUTH           authentication failed
 *     AREDIS_ERR_HANDSHAKE      connection setup refused by server
 *     AREDIS_ERR_TLS            TLS error
 *     AREDIS_ERR_QUEUE_FULL     command queue full
 *     AREDIS_ERR_CANCELLED      cancelled
 *     AREDIS_ERR_CLOSED         client closed
 *     AREDIS_ERR_NOT_CONNECTED  not connected
 *     AREDIS_ERR_FORKED         client used in a forked child
 *     AREDIS_ERR_NOMEM          out of memory
 *     AREDIS_ERR_INVALID        invalid argument
 *     AREDIS_ERR_URI            malformed URI
 *     AREDIS_ERR_UNSUPPORTED    not supported
 *     AREDIS_ERR_CROSSSLOT      keys in different cluster hash slots
 */
typedef enum aredis_err {
#define AREDIS__ERR_ENUM(name, msg) AREDIS_ERR_##name,
    AREDIS_ERRNO_MAP(AREDIS__ERR_ENUM)
#undef AREDIS__ERR_ENUM
        AREDIS_ERR__COUNT /**< the number of codes above; not a code itself */
} aredis_err;

/**
 * An error as handed to callbacks and futures. `detail` is never NULL and is
 * valid for as long as the object that carries the error (the callback's
 * duration, or the future's lifetime). For AREDIS_ERR_SERVER, `prefix` holds
 * the first word of the server's reply ("ERR", "WRONGTYPE", "OOM", ...).
 * Details never contain credentials.
 */
typedef struct aredis_error {
    aredis_err code;    /**< the code (AREDIS_ERR_OK: no error) */
    const char *detail; /**< what was wrong, in words; never NULL */
    char prefix[32];    /**< SERVER: the reply's first word ("WRONGTYPE"); else "" */
} aredis_error;

/** The human message of a code ("connection refused"); "unknown error" for
 * a value that is not a code. Never NULL. */
AREDIS_API const char *aredis_strerror(aredis_err code);

/** The symbolic name of a code ("AREDIS_ERR_TIMEOUT"); "AREDIS_ERR_UNKNOWN"
 * for a value that is not a code. Never NULL. */
AREDIS_API const char *aredis_err_name(aredis_err code);

/**
 * True for codes that mean the transport failed or was never there: IO, EOF,
 * CONNREFUSED, RESOLVE, NOT_CONNECTED. A TIMEOUT is not a connection error,
 * nor is a SERVER error.
 */
AREDIS_API int aredis_err_is_connection(aredis_err code);

/**
 * Why the last aredis call on this thread that returned an error code (or
 * an already-failed future) failed: the same code and a detail naming what
 * was wrong ("SUBSCRIBE ch: the subscribe family is not supported by the
 * command API: ...", "not connected: connect to 127.0.0.1:6379 failed:
 * Connection refused"). Like errno: only meaningful right after a call that
 * failed; calls that succeed leave it as it was. Never NULL; the detail
 * stays valid until the next failing call on this thread.
 */
AREDIS_API const aredis_error *aredis_call_error(void);

#ifdef __cplusplus
}
#endif

#endif
