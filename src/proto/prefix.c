/*
 * Key prefixing: rewrite one command so that each of its key arguments
 * starts with the client's prefix, and encode it as RESP.
 *
 * Which arguments are keys: the command table's key specs (Redis 7: by
 * index, after a keyword, a range or a key count), e.g. GET k, MSET k v k v,
 * EVAL script 2 k1 k2 arg, XREAD COUNT 1 STREAMS s1 s2 0 0, ZUNIONSTORE d 2
 * a b WEIGHTS 1 2. Values, channels (SPUBLISH's are "not a key") and every
 * other argument are left alone. A command no table knows, or whose keys its
 * table cannot find for sure (a number of arguments its arity does not
 * allow, as from a server newer than the table; a key count out of range;
 * an "incomplete" or "unknown" key spec), is refused: sending it without
 * its keys prefixed would read or write outside the namespace.
 *
 * SPECIAL CASES: what Redis 7.0's key specs do not say, handled here by
 * following the server's own parsing of the command.
 *
 *   command           prefixed                                    reply
 *   ----------------  ------------------------------------------  ---------
 *   SCAN              the MATCH pattern, with the prefix's glob   keys lose
 *                     characters * ? [ ] \ escaped; without MATCH  the prefix
 *                     "MATCH <escaped prefix>*" is added, so only
 *                     the namespace is listed
 *   KEYS              the pattern, the same way                   the same
 *   SORT, SORT_RO     the key; STORE's key; a BY pattern holding  -
 *                     a '*' (without one BY only means "do not
 *                     sort": left alone); every GET pattern but
 *                     "#" (the element itself). The patterns are
 *                     not globs: the prefix goes in as it is, and
 *                     a prefix holding a '*' is refused for them
 *                     (the server substitutes the first '*')
 *   MIGRATE           the key (argument 3); with KEYS, the keys   -
 *                     after KEYS, argument 3 staying "" as the
 *                     server requires (AUTH/AUTH2 values skipped)
 *   CLIENT TRACKING   each PREFIX argument (literal prefixes;     -
 *                     BCAST without PREFIX still covers all keys)
 *   CLUSTER KEYSLOT   the key (its slot is the prefixed name's)   -
 *   DEBUG OBJECT,     the key                                     -
 *   SDSLEN, LISTPACK,
 *   ZIPLIST
 *   DEBUG             the keys                                    -
 *   DIGEST-VALUE
 *
 * Replies that name keys lose the prefix (aredis__prefix_strip): KEYS and
 * SCAN as above; the key of BLPOP, BRPOP, BZPOPMIN, BZPOPMAX, LMPOP, BLMPOP,
 * ZMPOP and BZMPOP; the stream names of XREAD and XREADGROUP. Other names
 * the server hands out come as they are: RANDOMKEY, CLUSTER GETKEYSINSLOT,
 * what a script returns of its KEYS, keyspace notifications and tracking
 * invalidations (pushes).
 *
 * The rewrite copies nothing: each argument of the result is an optional
 * head (the prefix, or the prefix escaped for a glob) and a body (the
 * caller's bytes), and the command is written once at its exact size.
 */
#include "proto/prefix.h"

#include <stdint.h>
#include <string.h>

#include "proto/writer_internal.h"
#include "util/alloc.h"
#include "util/error.h"

/* What to say when a command cannot be prefixed. */
#define PREFIX_HINT                                                                                \
    "issue it from a client without a prefix, or set load_commands so the server's own command "   \
    "table is used"

/* Arguments kept on the stack; more go to the heap. */
#define STACK_ARGS 32

/* ---- The rewritten command ---------------------------------------------- */

#define HEAD_NONE 0u
#define HEAD_KEY 1u  /* the prefix as it is: a key name */
#define HEAD_GLOB 2u /* the prefix with its glob characters escaped: a pattern */

typedef struct oarg {
    const char *p; /* the body: the caller's bytes (or a literal) */
    size_t n;
    unsigned head; /* HEAD_* */
} oarg;

typedef struct rw {
    oarg *a; /* the arguments to write: the input's, then any added */
    size_t n;
    const char *prefix;
    size_t plen;
    char *esc; /* the escaped prefix (2 * plen bytes of room) */
    size_t elen;
    int esc_done;
} rw;

/* Glob characters of Redis's stringmatchlen() (a '-' or '^' is special only
 * inside brackets, which an escaped '[' never opens). */
static int glob_char(char ch) {
    return ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\';
}

static void key_at(rw *w, size_t i) {
    if (i > 0 && i < w->n) w->a[i].head = HEAD_KEY;
}

static void glob_at(rw *w, size_t i) {
    if (i == 0 || i >= w->n) return;
    w->a[i].head = HEAD_GLOB;
    if (w->esc_done) return;
    size_t k = 0;
    for (size_t j = 0; j < w->plen; j++) {
        if (glob_char(w->prefix[j])) w->esc[k++] = '\\';
        w->esc[k++] = w->prefix[j];
    }
    w->elen = k;
    w->esc_done = 1;
}

static size_t head_len(const rw *w, unsigned head) {
    return head == HEAD_KEY ? w->plen : head == HEAD_GLOB ? w->elen : 0;
}

/* ---- Arguments ---------------------------------------------------------- */

/* Is argument a the word `lit` (lower case), in any case? */
static int arg_is(const aredis__arg *a, const char *lit) {
    size_t n = strlen(lit);
    if (a->n != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = a->p[i];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (ch != lit[i]) return 0;
    }
    return 1;
}

static int has_star(const aredis__arg *a) { return memchr(a->p, '*', a->n) != NULL; }

/* The command's name for a message (nargs 2: with its subcommand),
 * printable and bounded. */
static void name_of(const aredis__arg *args, size_t nargs, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < nargs && i < 2; i++) {
        if (i == 1 && k + 1 < cap) out[k++] = ' ';
        for (size_t j = 0; j < args[i].n && k + 1 < cap && j < 40; j++) {
            char ch = args[i].p[j];
            out[k++] = (ch > ' ' && ch <= '~' && ch != '\'') ? ch : '?';
        }
    }
    out[k] = '\0';
}

/* ---- Special cases ------------------------------------------------------ */

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: option pairs, as the
 * server reads them (a later MATCH wins there: every one is prefixed). */
static aredis_err sp_scan(rw *w, const aredis__arg *args, size_t nargs) {
    if (nargs < 2) return AREDIS_ERR_OK; /* the server's arity error */
    int matched = 0;
    for (size_t i = 2; i + 1 < nargs; i += 2) {
        if (arg_is(&args[i], "match")) {
            glob_at(w, i + 1);
            matched = 1;
        }
    }
    if (!matched) {
        w->a[w->n++] = (oarg){"MATCH", 5, HEAD_NONE};
        w->a[w->n++] = (oarg){"*", 1, HEAD_NONE};
        glob_at(w, w->n - 1);
    }
    return AREDIS_ERR_OK;
}

/* KEYS pattern. */
static aredis_err sp_keys(rw *w, const aredis__arg *args, size_t nargs) {
    (void)args;
    if (nargs >= 2) glob_at(w, 1);
    return AREDIS_ERR_OK;
}

/* SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
 * [ALPHA] [STORE destination], parsed as sortCommandGeneric() does. */
static aredis_err sp_sort(rw *w, const aredis__arg *args, size_t nargs) {
    key_at(w, 1);
    for (size_t j = 2; j < nargs; j++) {
        size_t left = nargs - j - 1;
        if (arg_is(&args[j], "limit") && left >= 2) {
            j += 2;
        } else if (arg_is(&args[j], "store") && left >= 1) {
            key_at(w, ++j);
        } else if ((arg_is(&args[j], "by") || arg_is(&args[j], "get")) && left >= 1) {
            const aredis__arg *pat = &args[++j];
            int by = args[j - 1].n == 2;
            if (by ? !has_star(pat) : (pat->n == 1 && pat->p[0] == '#')) continue;
            if (memchr(w->prefix, '*', w->plen))
                return aredis__call_fail(AREDIS_ERR_UNSUPPORTED,
                                         "prefix: SORT %s patterns cannot take a prefix holding "
                                         "'*' (the server substitutes the first '*'); " PREFIX_HINT,
                                         by ? "BY" : "GET");
            key_at(w, j);
        }
        /* ASC, DESC, ALPHA; anything else is the server's syntax error. */
    }
    return AREDIS_ERR_OK;
}

/* MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw]
 * [AUTH2 user pw] [KEYS key ...], parsed as migrateCommand() does. */
static aredis_err sp_migrate(rw *w, const aredis__arg *args, size_t nargs) {
    for (size_t j = 6; j < nargs; j++) {
        size_t more = nargs - 1 - j;
        if (arg_is(&args[j], "auth")) {
            if (!more) break;
            j++;
        } else if (arg_is(&args[j], "auth2")) {
            if (more < 2) break;
            j += 2;
        } else if (arg_is(&args[j], "keys")) {
            /* argument 3 must stay "": the server refuses anything else */
            for (size_t k = j + 1; k < nargs; k++)
                key_at(w, k);
            return AREDIS_ERR_OK;
        } else if (!arg_is(&args[j], "copy") && !arg_is(&args[j], "replace")) {
            break; /* the server's syntax error */
        }
    }
    key_at(w, 3);
    return AREDIS_ERR_OK;
}

/* CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
 * [OPTOUT] [NOLOOP]. */
static aredis_err sp_tracking(rw *w, const aredis__arg *args, size_t nargs) {
    for (size_t j = 3; j + 1 < nargs; j++) {
        if (arg_is(&args[j], "redirect")) {
            j++;
        } else if (arg_is(&args[j], "prefix")) {
            key_at(w, ++j);
        }
    }
    return AREDIS_ERR_OK;
}

typedef struct special {
    const char *name; /* lower case */
    const char *sub;  /* the subcommand (lower case), or NULL */
    aredis_err (*fn)(rw *w, const aredis__arg *args, size_t nargs);
    short first, last; /* fn NULL, first > 0: keys are first..last (-1: the
                          last argument); first 0: keys from the table */
    unsigned strip;    /* AREDIS__STRIP_* */
} special;

static const special specials[] = {
    {"scan", NULL, sp_scan, 0, 0, AREDIS__STRIP_SCAN},
    {"keys", NULL, sp_keys, 0, 0, AREDIS__STRIP_KEYS},
    {"sort", NULL, sp_sort, 0, 0, 0},
    {"sort_ro", NULL, sp_sort, 0, 0, 0},
    {"migrate", NULL, sp_migrate, 0, 0, 0},
    {"client", "tracking", sp_tracking, 0, 0, 0},
    {"cluster", "keyslot", NULL, 2, 2, 0},
    {"debug", "object", NULL, 2, 2, 0},
    {"debug", "sdslen", NULL, 2, 2, 0},
    {"debug", "listpack", NULL, 2, 2, 0},
    {"debug", "ziplist", NULL, 2, 2, 0},
    {"debug", "digest-value", NULL, 2, -1, 0},
    /* keys from the table; the reply names one */
    {"blpop", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"brpop", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"bzpopmin", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"bzpopmax", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"lmpop", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"blmpop", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"zmpop", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"bzmpop", NULL, NULL, 0, 0, AREDIS__STRIP_FIRST},
    {"xread", NULL, NULL, 0, 0, AREDIS__STRIP_STREAMS},
    {"xreadgroup", NULL, NULL, 0, 0, AREDIS__STRIP_STREAMS},
};

static const special *special_of(const aredis__arg *args, size_t nargs) {
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        const special *s = &specials[i];
        if (!arg_is(&args[0], s->name)) continue;
        if (!s->sub) return s;
        if (nargs >= 2 && arg_is(&args[1], s->sub)) return s;
    }
    return NULL;
}

/* ---- Keys from the command table ---------------------------------------- */

static aredis_err table_keys(rw *w, const aredis__cmdtable *extra, const aredis__arg *args,
                             size_t nargs) {
    char name[96];
    const aredis__cmdinfo *ci = aredis__cmd_lookup(extra, args, nargs);
    if (!ci) {
        name_of(args, 1, name, sizeof name);
        return aredis__call_fail(
            AREDIS_ERR_UNSUPPORTED,
            "prefix: unknown command '%s': its keys cannot be found; " PREFIX_HINT, name);
    }
    /* A number of arguments the table does not expect: a mistake, or a
     * server newer than the table that takes more (keys among them?). */
    if (ci->arity >= 0 ? nargs != (size_t)ci->arity : nargs < (size_t)-ci->arity) {
        name_of(args, strchr(ci->name, '|') ? 2 : 1, name, sizeof name);
        return aredis__call_fail(AREDIS_ERR_UNSUPPORTED,
                                 "prefix: '%s' with %zu arguments, which the command table does "
                                 "not expect (arity %d): its keys cannot be found; " PREFIX_HINT,
                                 name, nargs, (int)ci->arity);
    }
    int stack[STACK_ARGS], *pos = stack;
    int k = aredis__cmd_keys(ci, args, nargs, pos, STACK_ARGS);
    if (k > STACK_ARGS) {
        pos = aredis__reallocarray(NULL, (size_t)k, sizeof *pos);
        if (!pos) return AREDIS_ERR_NOMEM;
        k = aredis__cmd_keys(ci, args, nargs, pos, (size_t)k);
    }
    if (k < 0) {
        if (pos != stack) aredis__free(pos);
        name_of(args, strchr(ci->name, '|') ? 2 : 1, name, sizeof name);
        return aredis__call_fail(
            AREDIS_ERR_UNSUPPORTED,
            "prefix: cannot tell which arguments of '%s' are keys (a key "
            "count out of range, or key specs the table cannot follow); " PREFIX_HINT,
            name);
    }
    for (int i = 0; i < k; i++)
        if (pos[i] > 0) key_at(w, (size_t)pos[i]);
    if (pos != stack) aredis__free(pos);
    return AREDIS_ERR_OK;
}

/* ---- Encoding ----------------------------------------------------------- */

static size_t dec_len(size_t v) {
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* "<type><v>\r\n" at p; returns its end. */
static char *put_hdr(char *p, char type, size_t v) {
    char tmp[24];
    size_t k = sizeof tmp;
    do {
        tmp[--k] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    *p++ = type;
    memcpy(p, tmp + k, sizeof tmp - k);
    p += sizeof tmp - k;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Write w's arguments to out: the size first, then one reservation, so that
 * a failure appends nothing. */
static aredis_err emit(aredis__buf *out, const rw *w) {
    size_t total = 3 + dec_len(w->n);
    for (size_t i = 0; i < w->n; i++) {
        size_t len, one;
        if (aredis__add_overflow(w->a[i].n, head_len(w, w->a[i].head), &len) ||
            aredis__add_overflow(len, 5 + dec_len(len), &one) ||
            aredis__add_overflow(total, one, &total))
            return AREDIS_ERR_NOMEM;
    }
    if (total > (size_t)PTRDIFF_MAX || aredis__buf_reserve(out, total) != 0)
        return AREDIS_ERR_NOMEM;
    char *p = put_hdr(out->data + out->len, '*', w->n);
    for (size_t i = 0; i < w->n; i++) {
        const oarg *a = &w->a[i];
        size_t hl = head_len(w, a->head);
        p = put_hdr(p, '$', hl + a->n);
        if (hl) memcpy(p, a->head == HEAD_KEY ? w->prefix : w->esc, hl);
        p += hl;
        if (a->n) memcpy(p, a->p, a->n);
        p += a->n;
        *p++ = '\r';
        *p++ = '\n';
    }
    out->len += total;
    return AREDIS_ERR_OK;
}

aredis_err aredis__prefix_encode(aredis__buf *out, const aredis__cmdtable *extra,
                                 const char *prefix, size_t plen, const aredis__arg *args,
                                 size_t nargs, unsigned *strip) {
    *strip = AREDIS__STRIP_NONE;
    if (!out || !args || nargs < 1 || !prefix || plen < 1 || plen > AREDIS__PREFIX_MAX)
        return AREDIS_ERR_INVALID;
    for (size_t i = 0; i < nargs; i++)
        if (!args[i].p && args[i].n) return AREDIS_ERR_INVALID;

    oarg stack[STACK_ARGS + 2];
    char esc[2 * AREDIS__PREFIX_MAX];
    rw w = {stack, nargs, prefix, plen, esc, 0, 0};
    if (nargs > STACK_ARGS) {
        w.a = aredis__reallocarray(NULL, nargs + 2, sizeof *w.a);
        if (!w.a) return AREDIS_ERR_NOMEM;
    }
    for (size_t i = 0; i < nargs; i++)
        w.a[i] = (oarg){args[i].p ? args[i].p : "", args[i].n, 0};

    aredis_err e;
    const special *sp = special_of(args, nargs);
    if (sp && sp->fn) {
        e = sp->fn(&w, args, nargs);
    } else if (sp && sp->first > 0) {
        size_t last = sp->last < 0 ? nargs - 1 : (size_t)sp->last;
        for (size_t i = (size_t)sp->first; i <= last; i++)
            key_at(&w, i);
        e = AREDIS_ERR_OK;
    } else {
        e = table_keys(&w, extra, args, nargs);
    }
    if (e == AREDIS_ERR_OK) e = emit(out, &w);
    if (e == AREDIS_ERR_OK && sp) *strip = sp->strip;
    if (w.a != stack) aredis__free(w.a);
    return e;
}

/* ---- The client's two forms ---------------------------------------------- */

aredis_err aredis__prefix_encode_argv(aredis__buf *out, const aredis__cmdtable *extra,
                                      const char *prefix, size_t plen, int argc,
                                      const char *const *argv, const size_t *argvlen,
                                      unsigned *strip) {
    *strip = AREDIS__STRIP_NONE;
    if (argc < 1 || !argv) return AREDIS_ERR_INVALID;
    aredis__arg stack[STACK_ARGS], *a = stack;
    if (argc > STACK_ARGS) {
        a = aredis__reallocarray(NULL, (size_t)argc, sizeof *a);
        if (!a) return AREDIS_ERR_NOMEM;
    }
    aredis_err e = AREDIS_ERR_OK;
    for (int i = 0; i < argc; i++) {
        if (!argv[i]) {
            e = AREDIS_ERR_INVALID;
            break;
        }
        a[i].p = argv[i];
        a[i].n = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    if (e == AREDIS_ERR_OK)
        e = aredis__prefix_encode(out, extra, prefix, plen, a, (size_t)argc, strip);
    if (a != stack) aredis__free(a);
    return e;
}

aredis_err aredis__prefix_encode_fmt(aredis__buf *out, const aredis__cmdtable *extra,
                                     const char *prefix, size_t plen, const char *fmt, va_list ap,
                                     unsigned *strip) {
    *strip = AREDIS__STRIP_NONE;
    /* The format's own encoding, split back into its arguments: the
     * writer stays the one parser of the format grammar. */
    aredis__buf tmp = {0};
    aredis_err e = aredis__write_vfmt(&tmp, fmt, ap);
    if (e != AREDIS_ERR_OK) {
        aredis__buf_free(&tmp);
        return e;
    }
    aredis__arg stack[STACK_ARGS], *a = stack;
    long n = aredis__resp_args(tmp.data, tmp.len, a, STACK_ARGS);
    if (n > STACK_ARGS) {
        a = aredis__reallocarray(NULL, (size_t)n, sizeof *a);
        if (!a) {
            aredis__buf_free(&tmp);
            return AREDIS_ERR_NOMEM;
        }
        n = aredis__resp_args(tmp.data, tmp.len, a, (size_t)n);
    }
    if (n < 1)
        e = AREDIS_ERR_INVALID;
    else
        e = aredis__prefix_encode(out, extra, prefix, plen, a, (size_t)n, strip);
    if (a != stack) aredis__free(a);
    aredis__buf_free(&tmp);
    return e;
}

/* ---- Replies ------------------------------------------------------------ */

static int is_list(const aredis_reply *r) {
    return r && (r->type == AREDIS_REPLY_ARRAY || r->type == AREDIS_REPLY_SET);
}

static void strip_one(aredis_reply *e, const char *prefix, size_t plen) {
    if (!e || e->type != AREDIS_REPLY_STRING || e->len < plen || !e->str ||
        memcmp(e->str, prefix, plen) != 0)
        return;
    memmove(e->str, e->str + plen, e->len - plen + 1); /* with its NUL */
    e->len -= plen;
}

void aredis__prefix_strip(aredis_reply *r, unsigned strip, const char *prefix, size_t plen) {
    if (!r || !prefix || !plen) return;
    switch (strip) {
    case AREDIS__STRIP_KEYS:
        if (is_list(r))
            for (size_t i = 0; i < r->elements; i++)
                strip_one(r->element[i], prefix, plen);
        break;
    case AREDIS__STRIP_SCAN:
        if (is_list(r) && r->elements == 2 && is_list(r->element[1]))
            aredis__prefix_strip(r->element[1], AREDIS__STRIP_KEYS, prefix, plen);
        break;
    case AREDIS__STRIP_FIRST:
        if (is_list(r) && r->elements >= 1) strip_one(r->element[0], prefix, plen);
        break;
    case AREDIS__STRIP_STREAMS:
        if (r->type == AREDIS_REPLY_MAP) {
            for (size_t i = 0; i + 1 < r->elements; i += 2)
                strip_one(r->element[i], prefix, plen);
        } else if (is_list(r)) {
            for (size_t i = 0; i < r->elements; i++)
                aredis__prefix_strip(r->element[i], AREDIS__STRIP_FIRST, prefix, plen);
        }
        break;
    default:
        break;
    }
}
