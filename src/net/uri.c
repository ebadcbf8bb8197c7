/*
 * Connection URIs: parse redis://, rediss://, unix:// and redis+unix:// into
 * an aredis_uri, and copy what one says into aredis_options.
 *
 *   redis://[user[:password]@]host[:port][/db][?key=value&...]
 *   rediss://...                          (the same, over TLS)
 *   unix:///abs/path[?key=value&...]      (also redis+unix:///abs/path)
 *
 * The parser is strict: anything it does not understand is AREDIS_ERR_URI
 * with a message naming the problem, because a URI that silently means
 * something else than intended (a typo'd query key ignored, a db in two
 * places that disagree) is worse than one that fails at startup.
 *
 * Error messages never quote user input except the scheme and a query key
 * name: the host, port, path and every value stay out of them, so a password
 * that lands in the wrong place through a typo (a forgotten '@', an
 * unencoded '/') cannot end up in a log.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "aredis/uri.h"
#include "util/alloc.h"

/*
 * rediss:// is TLS: the same syntax as redis://, and aredis_uri_apply() sets
 * opts->tls = 1. Kept as a switch so a build without TLS could refuse it
 * with AREDIS_ERR_UNSUPPORTED after a full parse.
 */
#define URI_TLS_SUPPORTED 1

#define DEFAULT_PORT 6379
#define MAX_DB 2147483647UL
#define MAX_HOST_LEN 253 /* a DNS name's longest text form */

/* Fields a URI may or may not mention, so apply() touches only those. */
enum {
    HAS_DB = 1u << 0,
    HAS_PROTOCOL = 1u << 1,
    HAS_CONNECT_TIMEOUT = 1u << 2,
    HAS_TIMEOUT = 1u << 3,
};

struct aredis_uri {
    int is_tls;
    int is_unix;
    char *host; /* tcp only; IPv6 without brackets */
    int port;   /* tcp only */
    char *unix_path;
    char *username; /* NULL when absent or empty */
    char *password; /* NULL when absent or empty */
    char *client_name;
    int db;
    int protocol;
    uint32_t connect_timeout_ms;
    uint32_t request_timeout_ms;
    unsigned has; /* HAS_* */
};

/* ---- Errors ----------------------------------------------------------- */

typedef struct parser {
    aredis_uri *u;
    char *errbuf;
    size_t errlen;
    unsigned seen; /* query keys already given (Q_* bits) */
    int path_db;   /* -1 when the path names no db */
} parser;

static aredis_err fail_code(parser *p, aredis_err code, const char *fmt, ...) AREDIS_PRINTF(3, 4);

static aredis_err fail_code(parser *p, aredis_err code, const char *fmt, ...) {
    if (p->errbuf && p->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errbuf, p->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

#define fail(p, ...) fail_code((p), AREDIS_ERR_URI, __VA_ARGS__)
#define nomem(p) fail_code((p), AREDIS_ERR_NOMEM, "out of memory")

/* ---- Small helpers ---------------------------------------------------- */

/* Overwrite a secret before freeing it; volatile so it is not optimised out. */
static void free_secret(char *s) {
    if (s == NULL) return;
    volatile char *v = s;
    while (*v)
        *v++ = '\0';
    aredis__free(s);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decode s[0..n) into a new string. `what` names the field for the
 * error message; the content never appears in it. An empty result with
 * empty_is_null set gives *out = NULL.
 */
static aredis_err decode(parser *p, const char *s, size_t n, const char *what, int empty_is_null,
                         char **out) {
    *out = NULL;
    if (n == 0 && empty_is_null) return AREDIS_ERR_OK;
    char *d = aredis__malloc(n + 1);
    if (d == NULL) return nomem(p);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[j++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            d[j] = '\0'; /* free_secret() wipes up to the NUL */
            free_secret(d);
            return fail(p, "bad percent-escape in %s (expected %%XX)", what);
        }
        if (hi == 0 && lo == 0) {
            d[j] = '\0';
            free_secret(d);
            return fail(p, "percent-encoded NUL byte (%%00) in %s", what);
        }
        d[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[j] = '\0';
    if (j == 0 && empty_is_null) {
        aredis__free(d);
        return AREDIS_ERR_OK;
    }
    *out = d;
    return AREDIS_ERR_OK;
}

/*
 * Decimal digits only, no sign, no spaces. Returns 0 and *out, -1 when not
 * a number, -2 when above max. Leading zeros are fine.
 */
static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out) {
    unsigned long v = 0;
    int over = 0;
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        if (!over) {
            v = v * 10 + (unsigned long)(s[i] - '0');
            if (v > max) over = 1; /* keep scanning: "12x" is still garbage */
        }
    }
    if (over) return -2;
    *out = v;
    return 0;
}

/*
 * Seconds with an optional fraction ("5", "0.5", ".25", "2.") into
 * milliseconds, rounded up so that a tiny positive timeout never becomes 0
 * (which means "no timeout"). Returns 0, -1 garbage, -2 too large.
 */
static int parse_seconds(const char *s, size_t n, uint32_t *ms_out) {
    uint64_t whole = 0, frac = 0;
    size_t i = 0, digits = 0, fdigits = 0;
    int rest_nonzero = 0;

    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (whole <= UINT32_MAX) whole = whole * 10 + (uint64_t)(s[i] - '0');
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            if (fdigits < 3) {
                frac = frac * 10 + (uint64_t)(s[i] - '0');
                fdigits++;
            } else if (s[i] != '0') {
                rest_nonzero = 1;
            }
        }
    }
    if (i != n || digits == 0) return -1;
    for (; fdigits < 3; fdigits++)
        frac *= 10;
    if (whole > UINT32_MAX) return -2;
    uint64_t ms = whole * 1000 + frac + (uint64_t)rest_nonzero;
    if (ms > UINT32_MAX) return -2;
    *ms_out = (uint32_t)ms;
    return 0;
}

static int is_scheme_char(char c, int first) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    if (first) return 0;
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

static int is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* Does [s, s+n) equal the NUL-terminated word w? */
static int eq(const char *s, size_t n, const char *w) {
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* ---- Pieces ----------------------------------------------------------- */

static aredis_err parse_db(parser *p, const char *s, size_t n, const char *where, int *db) {
    unsigned long v;
    int r = parse_uint(s, n, MAX_DB, &v);
    if (r == -1) return fail(p, "db %s must be a non-negative decimal number", where);
    if (r == -2) return fail(p, "db out of range (0-2147483647)");
    *db = (int)v;
    return AREDIS_ERR_OK;
}

/* A host name, an IPv4 literal or a bracketed IPv6 literal, and a port. */
static aredis_err parse_hostport(parser *p, const char *s, size_t n) {
    aredis_uri *u = p->u;
    const char *port = NULL; /* after ':' */
    size_t portlen = 0;
    const char *h;
    size_t hlen;

    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL) return fail(p, "unterminated IPv6 bracket (expected ']')");
        h = s + 1;
        hlen = (size_t)(close - h);
        if (hlen == 0) return fail(p, "empty host");
        char tmp[INET6_ADDRSTRLEN + 1];
        unsigned char addr[sizeof(struct in6_addr)];
        if (hlen >= sizeof tmp) return fail(p, "invalid IPv6 address");
        memcpy(tmp, h, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, addr) != 1) return fail(p, "invalid IPv6 address");
        const char *after = close + 1;
        size_t left = n - (size_t)(after - s);
        if (left > 0) {
            if (after[0] != ':')
                return fail(p, "unexpected character after ']' (expected ':port')");
            port = after + 1;
            portlen = left - 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        h = s;
        hlen = colon ? (size_t)(colon - s) : n;
        if (colon) {
            port = colon + 1;
            portlen = n - hlen - 1;
            if (memchr(port, ':', portlen))
                return fail(p, "IPv6 address must be in brackets (redis://[::1]:6379)");
        }
        if (hlen == 0) return fail(p, "empty host");
        if (hlen > MAX_HOST_LEN) return fail(p, "host name too long (max 253 characters)");
        int dotted_digits = 1;
        for (size_t i = 0; i < hlen; i++) {
            if (!is_host_char(h[i])) return fail(p, "invalid character in host");
            if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.')) dotted_digits = 0;
        }
        /* All digits and dots is an IPv4 literal, and must be a valid one. */
        if (dotted_digits) {
            char tmp[MAX_HOST_LEN + 1];
            unsigned char addr[sizeof(struct in_addr)];
            memcpy(tmp, h, hlen);
            tmp[hlen] = '\0';
            if (inet_pton(AF_INET, tmp, addr) != 1) return fail(p, "invalid IPv4 address");
        }
    }

    u->host = aredis__memdup0(h, hlen);
    if (u->host == NULL) return nomem(p);

    u->port = DEFAULT_PORT;
    if (port) {
        unsigned long v;
        if (portlen == 0) return fail(p, "empty port after ':'");
        int r = parse_uint(port, portlen, 65535, &v);
        if (r == -1) return fail(p, "port must be a decimal number");
        if (r == -2 || v == 0) return fail(p, "port out of range (1-65535)");
        u->port = (int)v;
    }
    return AREDIS_ERR_OK;
}

/* user[:password] — both percent-decoded; empty means absent. */
static aredis_err parse_userinfo(parser *p, const char *s, size_t n) {
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    aredis_err rc = decode(p, s, ulen, "username", 1, &p->u->username);
    if (rc != AREDIS_ERR_OK) return rc;
    if (colon) return decode(p, colon + 1, n - ulen - 1, "password", 1, &p->u->password);
    return AREDIS_ERR_OK;
}

/* ---- Query ------------------------------------------------------------ */

enum {
    Q_DB = 1u << 0,
    Q_PROTOCOL = 1u << 1,
    Q_NAME = 1u << 2,
    Q_CONNECT_TIMEOUT = 1u << 3,
    Q_TIMEOUT = 1u << 4,
    Q_PASSWORD = 1u << 5,
    Q_USERNAME = 1u << 6,
};

static aredis_err query_param(parser *p, const char *k, size_t klen, const char *v, size_t vlen) {
    aredis_uri *u = p->u;
    unsigned bit;
    const char *name;

    static const struct {
        const char *key;
        unsigned bit;
        const char *name; /* canonical, for messages */
    } keys[] = {
        {"db", Q_DB, "db"},
        {"protocol", Q_PROTOCOL, "protocol"},
        {"client_name", Q_NAME, "client_name"},
        {"name", Q_NAME, "client_name"},
        {"connect_timeout", Q_CONNECT_TIMEOUT, "connect_timeout"},
        {"timeout", Q_TIMEOUT, "timeout"},
        {"password", Q_PASSWORD, "password"},
        {"username", Q_USERNAME, "username"},
    };
    size_t ki = 0;
    while (ki < sizeof keys / sizeof keys[0] && !eq(k, klen, keys[ki].key))
        ki++;
    if (ki == sizeof keys / sizeof keys[0]) {
        /* The name is not echoed: in "?password=ab&cd=ef" it would be the
         * tail of a password with an unencoded '&'. */
        return fail(p, "unknown query parameter (known: db, protocol, client_name, "
                       "connect_timeout, timeout, password, username)");
    }
    bit = keys[ki].bit;
    name = keys[ki].name;

    if (p->seen & bit) return fail(p, "query parameter '%s' given twice", name);
    p->seen |= bit;

    /* Values are percent-decoded like everything else. */
    char *val = NULL;
    aredis_err rc = decode(p, v, vlen, name, 0, &val);
    if (rc != AREDIS_ERR_OK) return rc;
    size_t n = strlen(val);

    switch (bit) {
    case Q_DB: {
        int db = 0;
        rc = parse_db(p, val, n, "in query", &db);
        if (rc == AREDIS_ERR_OK) {
            if (p->path_db >= 0 && p->path_db != db)
                rc = fail(p, "db given in both path and query, with different values");
            u->db = db;
            u->has |= HAS_DB;
        }
        break;
    }
    case Q_PROTOCOL:
        if (eq(val, n, "2") || eq(val, n, "3")) {
            u->protocol = val[0] - '0';
            u->has |= HAS_PROTOCOL;
        } else {
            rc = fail(p, "protocol must be 2 or 3");
        }
        break;
    case Q_NAME:
        /* Redis refuses names with spaces or special characters: say so now. */
        if (n == 0) {
            rc = fail(p, "empty client_name");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (val[i] < '!' || val[i] > '~') {
                rc = fail(p, "client_name must not contain spaces or special characters");
                break;
            }
        }
        if (rc == AREDIS_ERR_OK) {
            u->client_name = val;
            val = NULL;
        }
        break;
    case Q_CONNECT_TIMEOUT:
    case Q_TIMEOUT: {
        uint32_t ms = 0;
        int r = parse_seconds(val, n, &ms);
        if (r == -1)
            rc = fail(p, "%s must be a non-negative number of seconds (e.g. 0.5)", name);
        else if (r == -2)
            rc = fail(p, "%s too large (max 4294967 seconds)", name);
        else if (bit == Q_TIMEOUT) {
            u->request_timeout_ms = ms;
            u->has |= HAS_TIMEOUT;
        } else {
            u->connect_timeout_ms = ms;
            u->has |= HAS_CONNECT_TIMEOUT;
        }
        break;
    }
    case Q_PASSWORD:
        if (u->password) {
            rc = fail(p, "password given both in the userinfo and the query");
        } else if (n > 0) {
            u->password = val;
            val = NULL;
        }
        break;
    case Q_USERNAME:
        if (u->username) {
            rc = fail(p, "username given both in the userinfo and the query");
        } else if (n > 0) {
            u->username = val;
            val = NULL;
        }
        break;
    }
    free_secret(val);
    return rc;
}

/* key=value&key=value; empty segments ("a=1&&b=2", a trailing '&') are skipped. */
static aredis_err parse_query(parser *p, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const char *seg = s + i;
        const char *amp = memchr(seg, '&', n - i);
        size_t slen = amp ? (size_t)(amp - seg) : n - i;
        i += slen + 1;
        if (slen == 0) continue;
        const char *eqs = memchr(seg, '=', slen);
        if (eqs == NULL) return fail(p, "query parameter without a value (expected key=value)");
        if (eqs == seg) return fail(p, "empty query parameter name");
        aredis_err rc =
            query_param(p, seg, (size_t)(eqs - seg), eqs + 1, slen - (size_t)(eqs - seg) - 1);
        if (rc != AREDIS_ERR_OK) return rc;
    }
    return AREDIS_ERR_OK;
}

/* ---- The parser ------------------------------------------------------- */

static aredis_err parse_unix(parser *p, const char *s, size_t n) {
    aredis_uri *u = p->u;
    if (n == 0 || s[0] != '/')
        return fail(p, "unix socket URI needs an absolute path (unix:///path/to/socket)");
    aredis_err rc = decode(p, s, n, "socket path", 0, &u->unix_path);
    if (rc != AREDIS_ERR_OK) return rc;
    size_t len = strlen(u->unix_path);
    if (len <= 1) return fail(p, "empty socket path");
    if (len >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return fail(p, "socket path too long (max %zu bytes)",
                    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    return AREDIS_ERR_OK;
}

static aredis_err parse_tcp(parser *p, const char *s, size_t n) {
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    aredis_err rc;

    /* The last '@' ends the userinfo, so an unencoded '@' in a password works. */
    const char *at = NULL;
    for (size_t i = alen; i > 0; i--) {
        if (s[i - 1] == '@') {
            at = s + i - 1;
            break;
        }
    }
    const char *hp = s;
    if (at) {
        rc = parse_userinfo(p, s, (size_t)(at - s));
        if (rc != AREDIS_ERR_OK) return rc;
        hp = at + 1;
    }
    rc = parse_hostport(p, hp, alen - (size_t)(hp - s));
    if (rc != AREDIS_ERR_OK) return rc;

    /* Path: nothing, "/", or "/<db>". */
    if (slash && n - alen > 1) {
        char *path = NULL;
        int db = 0;
        rc = decode(p, slash + 1, n - alen - 1, "path", 0, &path);
        if (rc != AREDIS_ERR_OK) return rc;
        rc = parse_db(p, path, strlen(path), "in path (/<db>)", &db);
        aredis__free(path);
        if (rc != AREDIS_ERR_OK) return rc;
        p->path_db = db;
        p->u->db = db;
        p->u->has |= HAS_DB;
    }
    return AREDIS_ERR_OK;
}

static aredis_err parse(parser *p, const char *uri) {
    aredis_uri *u = p->u;

    /* Raw spaces and control bytes are never valid; '#' would start a
     * fragment, which means nothing here and usually is an unencoded
     * password character. */
    for (const unsigned char *c = (const unsigned char *)uri; *c; c++) {
        if (*c <= 0x20 || *c == 0x7f)
            return fail(p, "URI contains a space or control character (percent-encode it)");
        if (*c == '#') return fail(p, "'#' must be percent-encoded as %%23");
    }

    size_t slen = 0;
    while (is_scheme_char(uri[slen], slen == 0))
        slen++;
    if (slen == 0 || uri[slen] != ':')
        return fail(p, "missing scheme (expected redis://, rediss://, unix:// or redis+unix://)");
    if (uri[slen + 1] != '/' || uri[slen + 2] != '/') return fail(p, "expected '//' after scheme");

    if (slen == 5 && strncasecmp(uri, "redis", 5) == 0) {
        u->is_tls = 0;
    } else if (slen == 6 && strncasecmp(uri, "rediss", 6) == 0) {
        u->is_tls = 1;
    } else if ((slen == 4 && strncasecmp(uri, "unix", 4) == 0) ||
               (slen == 10 && strncasecmp(uri, "redis+unix", 10) == 0)) {
        u->is_unix = 1;
    } else {
        return fail(p, "unknown scheme '%.*s' (expected redis, rediss, unix or redis+unix)",
                    slen > 32 ? 32 : (int)slen, uri);
    }

    const char *rest = uri + slen + 3;
    const char *q = strchr(rest, '?');
    size_t mlen = q ? (size_t)(q - rest) : strlen(rest);

    aredis_err rc = u->is_unix ? parse_unix(p, rest, mlen) : parse_tcp(p, rest, mlen);
    if (rc != AREDIS_ERR_OK) return rc;
    if (q) {
        rc = parse_query(p, q + 1, strlen(q + 1));
        if (rc != AREDIS_ERR_OK) return rc;
    }

    if (u->username && !u->password)
        return fail(p, "username without password (AUTH needs a password)");
    if (u->is_tls && !URI_TLS_SUPPORTED)
        return fail_code(p, AREDIS_ERR_UNSUPPORTED, "TLS (rediss://) is not supported yet");
    return AREDIS_ERR_OK;
}

/* ---- Public API ------------------------------------------------------- */

aredis_err aredis_uri_parse(const char *uri, aredis_uri **out, char *errbuf, size_t errlen) {
    parser p = {NULL, errbuf, errlen, 0, -1};

    if (errbuf && errlen > 0) errbuf[0] = '\0';
    if (out) *out = NULL;
    if (out == NULL) return fail_code(&p, AREDIS_ERR_INVALID, "out is NULL");
    if (uri == NULL) return fail_code(&p, AREDIS_ERR_INVALID, "URI is NULL");

    p.u = aredis__calloc(1, sizeof *p.u);
    if (p.u == NULL) return nomem(&p);
    aredis_err rc = parse(&p, uri);
    if (rc != AREDIS_ERR_OK) {
        aredis_uri_free(p.u);
        return rc;
    }
    *out = p.u;
    return AREDIS_ERR_OK;
}

void aredis_uri_apply(const aredis_uri *u, aredis_options *opts) {
    if (u == NULL || opts == NULL) return;
    /*
     * rediss:// turns TLS on. redis:// and unix:// leave opts->tls as it
     * was: a URI from a config file can add TLS but never silently take
     * away TLS that the program asked for.
     */
    if (u->is_tls) opts->tls = 1;
    if (u->is_unix) {
        opts->unix_path = u->unix_path;
    } else {
        opts->host = u->host;
        opts->port = u->port;
        opts->unix_path = NULL;
    }
    if (u->username) opts->username = u->username;
    if (u->password) opts->password = u->password;
    if (u->client_name) opts->client_name = u->client_name;
    if (u->has & HAS_DB) opts->db = u->db;
    if (u->has & HAS_PROTOCOL) opts->protocol = u->protocol;
    if (u->has & HAS_CONNECT_TIMEOUT) opts->connect_timeout_ms = u->connect_timeout_ms;
    if (u->has & HAS_TIMEOUT) opts->request_timeout_ms = u->request_timeout_ms;
}

void aredis_uri_free(aredis_uri *u) {
    if (u == NULL) return;
    aredis__free(u->host);
    aredis__free(u->unix_path);
    free_secret(u->username);
    free_secret(u->password);
    aredis__free(u->client_name);
    aredis__free(u);
}

int aredis_uri_is_tls(const aredis_uri *u) { return u ? u->is_tls : 0; }
const char *aredis_uri_host(const aredis_uri *u) { return u ? u->host : NULL; }
int aredis_uri_port(const aredis_uri *u) { return u ? u->port : 0; }
const char *aredis_uri_unix_path(const aredis_uri *u) { return u ? u->unix_path : NULL; }
const char *aredis_uri_username(const aredis_uri *u) { return u ? u->username : NULL; }
const char *aredis_uri_password(const aredis_uri *u) { return u ? u->password : NULL; }
int aredis_uri_db(const aredis_uri *u) { return u ? u->db : 0; }
