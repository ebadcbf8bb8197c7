/**
 * @file
 * aredis/uri.h — connection URIs.
 *
 *     redis://[user[:password]@]host[:port][/db][?key=value&...]
 *     rediss://...                      (TLS: the same syntax; apply() sets
 *                                        opts->tls = 1 — see docs/SECURITY.md)
 *     unix:///path/to/socket[?db=N&password=...&username=...]
 *     redis+unix:///path, and redis://  with a [v6:addr] host in brackets
 *
 * user and password may be percent-encoded. Query keys: db, protocol (2|3),
 * client_name (or name), connect_timeout and timeout (request timeout), both
 * in seconds with decimals ("0.5"), password, username.
 *
 * A malformed URI is AREDIS_ERR_URI with a message naming what is wrong; the
 * message never contains the password.
 */
#ifndef AREDIS_URI_H
#define AREDIS_URI_H

#include <stddef.h>

#include "aredis/client.h"
#include "aredis/error.h"
#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A parsed URI (opaque): made by aredis_uri_parse(), freed with
 * aredis_uri_free(). */
typedef struct aredis_uri aredis_uri;

/**
 * Parse `uri`. On success *out is a parsed URI (free with aredis_uri_free).
 * On failure returns AREDIS_ERR_URI (or NOMEM / UNSUPPORTED; INVALID when uri
 * or out is NULL), *out is NULL (when out is not NULL) and
 * `errbuf` (if not NULL) holds a message of at most errlen-1 bytes.
 */
AREDIS_API aredis_err aredis_uri_parse(const char *uri, aredis_uri **out, char *errbuf,
                                       size_t errlen);

/**
 * Copy what the URI says into *opts (fields it doesn't mention are left as
 * they are). The strings point into `u`: keep u alive until
 * aredis_client_new() has copied them.
 *
 * TLS: rediss:// sets opts->tls = 1. redis:// and unix:// leave opts->tls
 * unchanged, so a URI can turn TLS on but never off: a program that set
 * tls = 1 is not downgraded to plain text by a "redis://" in a config file.
 * The other TLS options (CA, client certificate, server name, skip-verify)
 * are never set by a URI; set them in opts.
 */
AREDIS_API void aredis_uri_apply(const aredis_uri *u, aredis_options *opts);

/** Free a parsed URI, wiping its username and password first. NULL is
 * ignored. */
AREDIS_API void aredis_uri_free(aredis_uri *u);

/* Accessors (NULL / 0 when absent, and for a NULL u). Strings belong to u. */

/** 1 for rediss://, else 0. */
AREDIS_API int aredis_uri_is_tls(const aredis_uri *u);
/** The host, without the brackets of an IPv6 literal (owned by u); NULL for
 * a unix socket. */
AREDIS_API const char *aredis_uri_host(const aredis_uri *u);
/** The port: 6379 when the URI names none; 0 for a unix socket. */
AREDIS_API int aredis_uri_port(const aredis_uri *u);
/** The socket path of a unix:// or redis+unix:// URI (owned by u), else
 * NULL. */
AREDIS_API const char *aredis_uri_unix_path(const aredis_uri *u);
/** The user name (percent-decoded; owned by u), or NULL. */
AREDIS_API const char *aredis_uri_username(const aredis_uri *u);
/** The password (percent-decoded, in clear; owned by u), or NULL. */
AREDIS_API const char *aredis_uri_password(const aredis_uri *u);
/** The database number, 0 when absent. */
AREDIS_API int aredis_uri_db(const aredis_uri *u);

#ifdef __cplusplus
}
#endif

#endif
