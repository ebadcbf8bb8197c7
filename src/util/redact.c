/*
 * Redaction of commands, URIs and server messages (see util/redact.h).
 *
 * Output goes through a bounded writer that never overruns, cuts with
 * "...", and NUL-terminates. Secrets are decided before an argument is
 * written and are never written at all, so a cut can only ever shorten safe
 * text.
 */
#include "util/redact.h"

#include <stdint.h>
#include <string.h>

/* ---- Bounded writer ------------------------------------------------------ */

typedef struct out {
    char *p;
    size_t cap; /* outlen */
    size_t n;
    int full;
} out;

static void put(out *w, const char *s, size_t n) {
    if (w->full || w->cap == 0) {
        w->full = 1;
        return;
    }
    size_t room = w->cap - 1 - w->n;
    if (n > room) {
        memcpy(w->p + w->n, s, room);
        w->n += room;
        w->full = 1;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void puts_(out *w, const char *s) { put(w, s, strlen(s)); }

static void putc_(out *w, char ch) { put(w, &ch, 1); }

/* Safe text: control bytes become `repl`. */
static void put_text(out *w, const char *s, size_t n, char repl) {
    for (size_t i = 0; i < n && !w->full; i++) {
        unsigned char ch = (unsigned char)s[i];
        putc_(w, (ch < 0x20 || ch == 0x7f) ? repl : (char)ch);
    }
}

static size_t finish(out *w) {
    if (w->cap == 0) return 0;
    if (w->full && w->n >= 3) memcpy(w->p + w->n - 3, "...", 3);
    w->p[w->n] = '\0';
    return w->n;
}

/* ---- Helpers ------------------------------------------------------------ */

static char lower(char ch) { return (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch; }

static int ieq(const char *a, size_t n, const char *lit) {
    size_t m = strlen(lit);
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(lit[i])) return 0;
    return 1;
}

static int icontains(const char *a, size_t n, const char *lit) {
    size_t m = strlen(lit);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && lower(a[i + j]) == lower(lit[j]))
            j++;
        if (j == m) return 1;
    }
    return 0;
}

/* A name whose value is a secret: requirepass, masterauth, *-pass, ... */
static int secret_name(const char *a, size_t n) {
    return icontains(a, n, "pass") || icontains(a, n, "auth");
}

/* ---- RESP command parsing ----------------------------------------------- */

typedef struct cursor {
    const char *p, *end;
} cursor;

/* "<type><digits>\r\n" → *v. Returns 0 on success. */
static int read_len(cursor *c, char type, size_t *v) {
    if (c->p >= c->end || *c->p != type) return -1;
    const char *q = c->p + 1;
    size_t x = 0;
    int digits = 0;
    while (q < c->end && *q >= '0' && *q <= '9') {
        if (++digits > 18) return -1; /* no real command is that long */
        x = x * 10 + (size_t)(*q - '0');
        q++;
    }
    if (!digits || c->end - q < 2 || q[0] != '\r' || q[1] != '\n') return -1;
    c->p = q + 2;
    *v = x;
    return 0;
}

/* One bulk argument. Returns 0 and sets *a, *n; -1 when malformed or cut. */
static int read_arg(cursor *c, const char **a, size_t *n) {
    size_t len;
    if (read_len(c, '$', &len) != 0) return -1;
    if ((size_t)(c->end - c->p) < len || (size_t)(c->end - c->p) - len < 2) return -1;
    if (c->p[len] != '\r' || c->p[len + 1] != '\n') return -1;
    *a = c->p;
    *n = len;
    c->p += len + 2;
    return 0;
}

/* ---- Which arguments are secret ----------------------------------------- */

typedef enum {
    K_NONE,
    K_AUTH,     /* AUTH: every argument */
    K_HELLO,    /* HELLO ... AUTH u p */
    K_MIGRATE,  /* MIGRATE ... AUTH p | AUTH2 u p */
    K_CONFIG,   /* CONFIG: SET decides */
    K_ACL,      /* ACL: SETUSER decides */
    K_SENTINEL, /* SENTINEL: SET / CONFIG decide */
    K_PAIRS,    /* after a secret name, its value */
    K_SETUSER   /* ACL SETUSER rules */
} kind;

typedef struct judge {
    kind k;
    size_t countdown; /* this many next arguments are secret */
} judge;

/* By length first: this runs for every command issued (is_sensitive). */
static kind name_kind(const char *a, size_t n) {
    switch (n) {
    case 3:
        return ieq(a, n, "ACL") ? K_ACL : K_NONE;
    case 4:
        return ieq(a, n, "AUTH") ? K_AUTH : K_NONE;
    case 5:
        return ieq(a, n, "HELLO") ? K_HELLO : K_NONE;
    case 6:
        return ieq(a, n, "CONFIG") ? K_CONFIG : K_NONE;
    case 7:
        return ieq(a, n, "MIGRATE") ? K_MIGRATE : K_NONE;
    case 8:
        return ieq(a, n, "SENTINEL") ? K_SENTINEL : K_NONE;
    default:
        return K_NONE;
    }
}

static int pw_rule_char(char ch) { return ch == '>' || ch == '<' || ch == '#' || ch == '!'; }

/* An ACL rule that sets or names a password; a selector "(...)" holding one
 * word that does is redacted whole. */
static int pw_rule(const char *a, size_t n) {
    if (n == 0) return 0;
    if (pw_rule_char(a[0])) return 1;
    if (a[0] != '(') return 0;
    for (size_t i = 1; i < n; i++)
        if (pw_rule_char(a[i]) && (a[i - 1] == '(' || a[i - 1] == ' ')) return 1;
    return 0;
}

/* Decide for argument i (0 = the name), given everything before it. */
static int is_secret(judge *j, size_t i, const char *a, size_t n) {
    if (j->countdown) {
        j->countdown--;
        return 1;
    }
    if (i == 0) {
        j->k = name_kind(a, n);
        return 0;
    }
    switch (j->k) {
    case K_AUTH:
        return 1;
    case K_HELLO:
        if (ieq(a, n, "AUTH")) j->countdown = 2;
        return 0;
    case K_MIGRATE:
        if (ieq(a, n, "AUTH"))
            j->countdown = 1;
        else if (ieq(a, n, "AUTH2"))
            j->countdown = 2;
        return 0;
    case K_CONFIG:
        j->k = ieq(a, n, "SET") ? K_PAIRS : K_NONE;
        return 0;
    case K_SENTINEL:
        j->k = (ieq(a, n, "SET") || ieq(a, n, "CONFIG")) ? K_PAIRS : K_NONE;
        return 0;
    case K_ACL:
        j->k = ieq(a, n, "SETUSER") ? K_SETUSER : K_NONE;
        return 0;
    case K_PAIRS:
        if (secret_name(a, n)) j->countdown = 1;
        return 0;
    case K_SETUSER:
        return i >= 3 && pw_rule(a, n);
    case K_NONE:
        break;
    }
    return 0;
}

/* ---- Rendering ----------------------------------------------------------- */

#define ARG_SHOWN 64 /* bytes of one argument shown before "..." */

static void put_arg(out *w, const char *a, size_t n) {
    size_t shown = n > ARG_SHOWN ? ARG_SHOWN : n;
    int quote = n == 0;
    for (size_t i = 0; i < shown && !quote; i++) {
        unsigned char ch = (unsigned char)a[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') quote = 1;
    }
    if (!quote) {
        put(w, a, shown);
        if (shown < n) puts_(w, "...");
        return;
    }
    putc_(w, '"');
    for (size_t i = 0; i < shown && !w->full; i++) {
        unsigned char ch = (unsigned char)a[i];
        char esc[5];
        switch (ch) {
        case '"':
            puts_(w, "\\\"");
            break;
        case '\\':
            puts_(w, "\\\\");
            break;
        case '\n':
            puts_(w, "\\n");
            break;
        case '\r':
            puts_(w, "\\r");
            break;
        case '\t':
            puts_(w, "\\t");
            break;
        default:
            if (ch >= 0x20 && ch < 0x7f) {
                putc_(w, (char)ch);
            } else {
                static const char hex[] = "0123456789abcdef";
                esc[0] = '\\';
                esc[1] = 'x';
                esc[2] = hex[ch >> 4];
                esc[3] = hex[ch & 15];
                put(w, esc, 4);
            }
        }
    }
    if (shown < n) puts_(w, "...");
    putc_(w, '"');
}

size_t aredis__redact_command(const char *resp, size_t len, char *o, size_t outlen) {
    out w = {o, outlen, 0, 0};
    cursor c = {resp, resp ? resp + len : NULL};
    size_t argc;
    if (!resp || read_len(&c, '*', &argc) != 0 || argc == 0) {
        puts_(&w, "<malformed command>");
        return finish(&w);
    }
    judge j = {K_NONE, 0};
    for (size_t i = 0; i < argc && !w.full; i++) {
        const char *a;
        size_t n;
        if (read_arg(&c, &a, &n) != 0) {
            /* Cut or malformed: stop, never echo what could not be parsed. */
            puts_(&w, i ? " ..." : "<malformed command>");
            break;
        }
        if (i) putc_(&w, ' ');
        if (is_secret(&j, i, a, n))
            puts_(&w, AREDIS__REDACTED);
        else
            put_arg(&w, a, n);
    }
    return finish(&w);
}

/*
 * The first letter of the only sensitive name of each length 3..8 (ACL, AUTH,
 * HELLO, CONFIG, MIGRATE, SENTINEL), lower case; 0 for other lengths.
 */
static const char sensitive_initial[9] = {0, 0, 0, 'a', 'a', 'h', 'c', 'm', 's'};

int aredis__redact_is_sensitive(const char *resp, size_t len) {
    /*
     * Every command issued comes through here: most are told apart by the
     * name's length and first letter, read straight from the common layout
     * "*<1 digit>\r\n$<1 digit>\r\n<name>", before any real parsing.
     */
    if (len >= 9 && resp[0] == '*' && resp[2] == '\r' && resp[4] == '$' && resp[6] == '\r') {
        unsigned d = (unsigned char)resp[5] - '0';
        if (d < 3 || d > 8 || lower(resp[8]) != sensitive_initial[d]) return 0;
    }
    cursor c = {resp, resp + len};
    size_t argc;
    const char *a;
    size_t n;
    if (read_len(&c, '*', &argc) != 0 || argc == 0 || read_arg(&c, &a, &n) != 0) return 0;
    return name_kind(a, n) != K_NONE;
}

/* ---- URIs ---------------------------------------------------------------- */

/* The query (or anything from `s` on): values of secret names redacted. */
static void put_query(out *w, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && !w->full) {
        size_t end = i;
        while (end < n && s[end] != '&' && s[end] != ';' && s[end] != '#')
            end++;
        const char *eq = memchr(s + i, '=', end - i);
        if (eq) {
            size_t klen = (size_t)(eq - (s + i));
            /* A percent-encoded name might spell "password": redact it too. */
            if (secret_name(s + i, klen) || memchr(s + i, '%', klen)) {
                put_text(w, s + i, klen + 1, '?');
                puts_(w, AREDIS__REDACTED);
            } else {
                put_text(w, s + i, end - i, '?');
            }
        } else {
            put_text(w, s + i, end - i, '?');
        }
        if (end < n) putc_(w, s[end]);
        i = end + 1;
    }
}

size_t aredis__redact_uri(const char *uri, char *o, size_t outlen) {
    out w = {o, outlen, 0, 0};
    if (!uri) {
        puts_(&w, "(null)");
        return finish(&w);
    }
    size_t len = strlen(uri);
    const char *sep = strstr(uri, "://");
    size_t start = sep ? (size_t)(sep - uri) + 3 : 0;
    /* The userinfo ends at the LAST '@': a password may hold an unencoded
     * '@', '/', '?' or ':'; taking too much only redacts more. */
    const char *at = NULL;
    for (size_t i = start; i < len; i++)
        if (uri[i] == '@') at = uri + i;
    size_t rest = start;
    if (at) {
        const char *ui = uri + start;
        const char *colon = memchr(ui, ':', (size_t)(at - ui));
        put_text(&w, uri, colon ? (size_t)(colon + 1 - uri) : start, '?');
        puts_(&w, AREDIS__REDACTED);
        rest = (size_t)(at - uri);
    } else {
        put_text(&w, uri, start, '?');
        /* No '@', but "host:<not a port>" is likely "user:password" with
         * the '@' forgotten: redact what follows the colon. */
        size_t aend = start, colon = 0, in_brackets = 0;
        for (; aend < len && uri[aend] != '/' && uri[aend] != '?' && uri[aend] != '#'; aend++) {
            if (uri[aend] == '[')
                in_brackets = 1;
            else if (uri[aend] == ']')
                in_brackets = 0;
            else if (uri[aend] == ':' && !in_brackets)
                colon = aend + 1;
        }
        int numeric = colon != 0;
        for (size_t i = colon; colon && i < aend; i++)
            if (uri[i] < '0' || uri[i] > '9') numeric = 0;
        if (colon && !numeric && colon < aend) {
            /* Up to the query: the password may hold an unencoded '/'. */
            const char *qm = memchr(uri + colon, '?', len - colon);
            put_text(&w, uri + start, colon - start, '?');
            puts_(&w, AREDIS__REDACTED);
            start = qm ? (size_t)(qm - uri) : len;
        }
        rest = start;
    }
    const char *q = memchr(uri + rest, '?', len - rest);
    size_t qat = q ? (size_t)(q - uri) + 1 : len;
    put_text(&w, uri + rest, qat - rest, '?');
    put_query(&w, uri + qat, len - qat);
    return finish(&w);
}

/* ---- Server messages ----------------------------------------------------- */

size_t aredis__redact_message(const char *msg, size_t len, char *o, size_t outlen) {
    out w = {o, outlen, 0, 0};
    for (size_t i = 0; msg && i < len && !w.full; i++) {
        char ch = msg[i];
        if (ch == '\'' || ch == '"' || ch == '`') {
            const char *close = memchr(msg + i + 1, ch, len - i - 1);
            putc_(&w, ch);
            puts_(&w, AREDIS__REDACTED);
            if (!close) break; /* unterminated: the rest may be the secret */
            putc_(&w, ch);
            i = (size_t)(close - msg);
            continue;
        }
        put_text(&w, &ch, 1, ' ');
    }
    return finish(&w);
}

size_t aredis__redact_secrets(const char *msg, size_t len, const char *const *secrets,
                              size_t nsecrets, char *o, size_t outlen) {
    out w = {o, outlen, 0, 0};
    for (size_t i = 0; msg && i < len && !w.full;) {
        size_t best = 0;
        for (size_t k = 0; k < nsecrets; k++) {
            const char *s = secrets[k];
            size_t sl = s ? strlen(s) : 0;
            if (sl && sl <= len - i && sl > best && memcmp(msg + i, s, sl) == 0) best = sl;
        }
        if (best) {
            puts_(&w, AREDIS__REDACTED);
            i += best;
        } else {
            put_text(&w, msg + i, 1, ' ');
            i++;
        }
    }
    return finish(&w);
}
