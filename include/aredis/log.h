/**
 * @file
 * aredis/log.h — diagnostic logging.
 *
 * aredis says what it is doing through one process-global log handler:
 *
 *     INFO   a connect attempt (host:port or unix path), connected (RESP
 *            version), a lost connection and why, a reconnect scheduled
 *            (attempt, delay), the reconnect policy giving up
 *     WARN   a protocol error from the server (the connection is closed);
 *            trouble worked around (COMMAND or ROLE refused, a cluster
 *            topology that cannot be read, a malformed sentinel message)
 *     DEBUG  every command issued, handshake commands included, rendered as
 *            text with secrets replaced by "<redacted>"
 *
 * By default nothing is logged, unless the environment variable
 * AREDIS_DEBUG=1 is set (read once, at the first log check): then every line
 * at DEBUG and above goes to stderr, prefixed "aredis: ".
 *
 * REDACTION: no log line, error detail or observer argument ever contains a
 * credential: AUTH arguments, HELLO ... AUTH user pass, MIGRATE ... AUTH pass
 * and AUTH2 user pass, CONFIG SET requirepass / masterauth /
 * tls-key-file-pass / tls-client-key-file-pass values (any parameter whose
 * name holds "pass" or "auth"), ACL SETUSER password rules (">", "<", "#",
 * "!"), SENTINEL SET/CONFIG SET auth-pass values, passwords in URIs. They
 * show as "<redacted>". See docs/LOGGING.md.
 *
 * The cost when a level is disabled is one comparison: nothing is formatted.
 */
#ifndef AREDIS_LOG_H
#define AREDIS_LOG_H

#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Levels: a higher number is more severe. */
#define AREDIS_LOG_DEBUG 10 /**< the DEBUG level, the least severe */
#define AREDIS_LOG_INFO 20  /**< the INFO level */
#define AREDIS_LOG_WARN 30  /**< the WARN level */
#define AREDIS_LOG_ERROR 40 /**< the ERROR level, the most severe (unused by aredis yet) */
/** As a min_level: log nothing. */
#define AREDIS_LOG_NONE 100

/**
 * A log handler: `level` is one of the levels above, `line` one line of text
 * without a trailing newline, valid for the call only. `data` is what was
 * given to aredis_set_log_handler(). It may be called from any thread that
 * drives an aredis client, concurrently if several do; it must not call
 * aredis_set_log_handler().
 */
typedef void aredis_log_fn(int level, const char *line, void *data);

/**
 * Send every line at min_level or more severe to fn (e.g. AREDIS_LOG_INFO:
 * INFO, WARN and ERROR). fn NULL restores the default (stderr when
 * AREDIS_DEBUG=1, else nothing; data and min_level are then ignored).
 * Process-global; safe to call from any thread, though lines being logged at
 * that moment may still go to the previous handler.
 */
AREDIS_API void aredis_set_log_handler(aredis_log_fn *fn, void *data, int min_level);

/** The name of a level: "DEBUG", "INFO", "WARN", "ERROR" (or "LOG" for any
 * other number). */
AREDIS_API const char *aredis_log_level_name(int level);

#ifdef __cplusplus
}
#endif

#endif
