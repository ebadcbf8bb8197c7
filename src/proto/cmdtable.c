/*
 * The command table's functions (see proto/cmdtable.h): lookup, key
 * positions, block times, tables loaded from a server, and splitting an
 * encoded command into its arguments. The built-in data is generated into
 * cmdtable_data.c by tools/gencommands.
 *
 * Lookup and key finding run on the issuing path (key prefixing, the
 * client's classifier): no allocation, binary search over lower-case names
 * compared with the argument lower-cased on the fly.
 */
#include "proto/cmdtable.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct aredis__cmdtable {
    aredis__cmdinfo *cmds; /* sorted by name; every pointer in them is owned */
    size_t n;
    size_t entries; /* top-level entries and subcommands */
};

/* ---- Names --------------------------------------------------------------- */

static unsigned char lower(char ch) {
    unsigned char c = (unsigned char)ch;
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* An argument against a lower-case name, in strcmp order of the argument
 * lower-cased: `folded` when the argument is lower case already. */
static int cmp_name(const char *a, size_t n, int folded, const char *name) {
    for (size_t i = 0; i < n; i++) {
        unsigned char x = folded ? (unsigned char)a[i] : lower(a[i]), y = (unsigned char)name[i];
        if (x != y || !y) return !y ? 1 : x < y ? -1 : 1; /* !y: the name is a prefix */
    }
    return name[n] ? -1 : 0;
}

/* An argument equal to a keyword, any case (keywords are upper case). */
static int is_keyword(const aredis__arg *a, const char *kw) {
    size_t i = 0;
    for (; i < a->n && kw[i]; i++) {
        unsigned char ch = (unsigned char)a->p[i];
        if (ch >= 'a' && ch <= 'z') ch = (unsigned char)(ch - 32);
        if (ch != (unsigned char)kw[i]) return 0;
    }
    return i == a->n && kw[i] == '\0';
}

/* Binary search of v[0..n) by name, skipping the first `skip` bytes of
 * every name (a subcommand's "container|"). */
static const aredis__cmdinfo *find(const aredis__cmdinfo *v, size_t n, const char *a, size_t an,
                                   int folded, size_t skip) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_name(a, an, folded, v[mid].name + skip);
        if (c == 0) return &v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

uint32_t aredis__cmdtable_hash_name(const char *p, size_t n) {
    uint32_t h = FNV_BASIS;
    for (size_t i = 0; i < n; i++)
        h = (h ^ lower(p[i])) * FNV_PRIME;
    return h;
}

/* A built-in command: the name folded and hashed in one pass, then the
 * hash index; most names are found at the first slot. */
static const aredis__cmdinfo *find_builtin(const aredis__arg *a) {
    char low[AREDIS__CMD_NAME_MAX];
    if (a->n >= sizeof low) return NULL; /* no built-in name is that long */
    uint32_t h = FNV_BASIS;
    for (size_t i = 0; i < a->n; i++) {
        unsigned char c = lower(a->p[i]);
        low[i] = (char)c;
        h = (h ^ c) * FNV_PRIME;
    }
    uint32_t mask = aredis__cmdtable_hash_mask;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        unsigned slot = aredis__cmdtable_hash[i];
        if (!slot) return NULL;
        const aredis__cmdinfo *ci = &aredis__cmdtable_builtin[slot - 1];
        if (cmp_name(low, a->n, 1, ci->name) == 0) return ci;
    }
}

/* The subcommand of container ci that args[1] names, or NULL. */
static const aredis__cmdinfo *sub_of(const aredis__cmdinfo *ci, const aredis__arg *args,
                                     size_t nargs) {
    if (!ci || !ci->nsubs || nargs < 2) return NULL;
    const aredis__arg *a = &args[1];
    size_t skip = strlen(ci->name) + 1;
    char low[AREDIS__CMD_NAME_MAX];
    if (a->n >= sizeof low) return find(ci->subs, ci->nsubs, a->p, a->n, 0, skip);
    for (size_t i = 0; i < a->n; i++)
        low[i] = (char)lower(a->p[i]);
    return find(ci->subs, ci->nsubs, low, a->n, 1, skip);
}

const aredis__cmdinfo *aredis__cmd_lookup(const aredis__cmdtable *extra, const aredis__arg *args,
                                          size_t nargs) {
    if (!args || nargs == 0) return NULL;
    const aredis__cmdinfo *b = find_builtin(&args[0]);
    const aredis__cmdinfo *s = sub_of(b, args, nargs);
    if (s) return s;
    if (extra) {
        const aredis__cmdinfo *e = find(extra->cmds, extra->n, args[0].p, args[0].n, 0, 0);
        s = sub_of(e, args, nargs);
        if (s) return s;
        if (!b) return e;
    }
    return b;
}

/* ---- Keys ---------------------------------------------------------------- */

/* A decimal integer as Redis's string2ll() takes it: no sign but '-', no
 * leading zero, no space, within long long. Returns 0 on success. */
static int parse_ll(const aredis__arg *a, long long *out) {
    const char *p = a->p;
    size_t n = a->n, i = 0;
    int neg = 0;
    if (n == 0 || n > 20) return -1;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return 0;
    }
    if (p[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i >= n || p[i] < '1' || p[i] > '9') return -1;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return -1;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return -1;
        *out = (long long)v;
    }
    return 0;
}

/*
 * Where a keyword spec's keys begin: the index after its keyword, 0 when
 * the keyword is absent. As Redis searches: forwards from startfrom up to
 * (not including) the last argument, or backwards from argc + startfrom
 * down to index 2; a start past the arguments finds nothing.
 */
static long keyword_first(const aredis__keyspec *ks, const aredis__arg *args, long argc) {
    if (!ks->keyword) return 0;
    if (ks->startfrom > 0) {
        for (long i = ks->startfrom; i < argc - 1; i++)
            if (is_keyword(&args[i], ks->keyword)) return i + 1;
        return 0;
    }
    long start = argc + ks->startfrom;
    if (start >= argc) return 0;
    for (long i = start; i >= 2; i--)
        if (is_keyword(&args[i], ks->keyword)) return i + 1;
    return 0;
}

/* The keys of the legacy range (first_key, last_key, key_step). */
static int legacy_keys(const aredis__cmdinfo *ci, long argc, int *pos, size_t max) {
    if (ci->flags & AREDIS__CF_MOVABLEKEYS) return -1;
    if (ci->first_key <= 0) return 0;
    long first = ci->first_key, last = ci->last_key, step = ci->key_step;
    if (last < 0) last = argc + last;
    if (step <= 0 || last < first || last >= argc) return -1;
    size_t count = 0;
    for (long i = first; i <= last; i += step) {
        if (count < max) pos[count] = (int)i;
        count++;
    }
    return (int)count;
}

int aredis__cmd_keys(const aredis__cmdinfo *ci, const aredis__arg *args, size_t nargs, int *pos,
                     size_t max) {
    return aredis__cmd_keys_ex(ci, args, nargs, pos, max, 0);
}

int aredis__cmd_keys_ex(const aredis__cmdinfo *ci, const aredis__arg *args, size_t nargs, int *pos,
                        size_t max, int routed) {
    if (!ci || !args || nargs == 0 || nargs > (size_t)INT_MAX) return -1;
    if (!pos) max = 0;
    /* A container reached without a subcommand the tables know: what its
     * arguments are is not known. */
    if (ci->flags & AREDIS__CF_HAS_SUBCOMMANDS) return -1;
    long argc = (long)nargs;
    if (ci->nspecs == 0) return legacy_keys(ci, argc, pos, max);
    size_t count = 0;
    for (size_t j = 0; j < ci->nspecs; j++) {
        const aredis__keyspec *ks = &ci->specs[j];
        if ((ks->flags & AREDIS__KSF_NOT_KEY) && !routed) continue;
        long first, last, step;
        if (ks->begin == AREDIS__KS_BEGIN_INDEX) {
            first = ks->index;
        } else if (ks->begin == AREDIS__KS_BEGIN_KEYWORD) {
            first = keyword_first(ks, args, argc);
            if (!first) continue; /* the keyword is absent: no keys here */
        } else {
            return -1;
        }
        if (first < 1) return -1;
        if (ks->find == AREDIS__KS_FIND_RANGE) {
            step = ks->b;
            if (ks->a >= 0)
                last = first + ks->a;
            else if (!ks->c)
                last = argc + ks->a;
            else
                last = first + ((argc - first) / ks->c + ks->a);
        } else if (ks->find == AREDIS__KS_FIND_KEYNUM) {
            step = ks->c;
            long at = first + ks->a;
            long long numkeys;
            if (ks->a < 0 || at >= argc || parse_ll(&args[at], &numkeys) != 0 || numkeys < 0 ||
                numkeys > argc)
                return -1;
            if (numkeys == 0) {
                if (ks->flags & AREDIS__KSF_INCOMPLETE) return -1;
                continue;
            }
            /* numkeys keys, keystep apart (Redis 7.0 stops after numkeys
             * arguments instead: the same for every built-in command, whose
             * keystep is 1; later Redis counts keys, as here) */
            first += ks->b;
            last = first + ((long)numkeys - 1) * (step > 0 ? step : 1);
        } else {
            return -1;
        }
        /* First or last out of bounds: a syntax error in the command. */
        if (last >= argc || last < first || first >= argc || step <= 0) return -1;
        for (long i = first; i <= last; i += step) {
            if (count < max) pos[count] = (int)i;
            count++;
        }
        if (ks->flags & AREDIS__KSF_INCOMPLETE) return -1;
    }
    return count > (size_t)INT_MAX ? -1 : (int)count;
}

/* ---- Block times --------------------------------------------------------- */

/* A block time in seconds ("0.5") or milliseconds, as ms; -1 if not a number. */
static int64_t block_time(const aredis__arg *a, int seconds) {
    char tmp[32];
    if (a->n == 0 || a->n >= sizeof tmp) return -1;
    memcpy(tmp, a->p, a->n);
    tmp[a->n] = '\0';
    char *e;
    double v = strtod(tmp, &e);
    if (*e != '\0' || !(v >= 0) || v > 1e12) return -1;
    return (int64_t)(seconds ? v * 1000.0 + 0.999 : v);
}

/* Does a key spec of ci begin its keys after this argument (STREAMS)? */
static int keys_begin_at(const aredis__cmdinfo *ci, const aredis__arg *a) {
    for (size_t j = 0; j < ci->nspecs; j++)
        if (ci->specs[j].begin == AREDIS__KS_BEGIN_KEYWORD && ci->specs[j].keyword &&
            is_keyword(a, ci->specs[j].keyword))
            return 1;
    return 0;
}

int64_t aredis__cmd_block_ms(const aredis__cmdinfo *ci, const aredis__arg *args, size_t nargs) {
    if (!ci || !args || !(ci->flags & AREDIS__CF_BLOCKING) || ci->block_unit == AREDIS__BLOCK_NONE)
        return -1;
    const aredis__arg *a = NULL;
    if (ci->block_arg > 0) {
        if ((size_t)ci->block_arg < nargs) a = &args[ci->block_arg];
    } else if (ci->block_arg < 0) {
        size_t back = (size_t)(-(long)ci->block_arg);
        if (back < nargs) a = &args[nargs - back];
    } else if (ci->block_keyword) {
        for (size_t i = 1; i < nargs && !keys_begin_at(ci, &args[i]); i++) {
            if (is_keyword(&args[i], ci->block_keyword) && i + 1 < nargs) {
                a = &args[i + 1];
                break;
            }
        }
    }
    return a ? block_time(a, ci->block_unit == AREDIS__BLOCK_SECONDS) : -1;
}

/* ---- Encoded commands ---------------------------------------------------- */

/* "<type><digits>\r\n" at *p (before end): the number, or -1. */
long aredis__resp_args(const char *resp, size_t len, aredis__arg *args, size_t max) {
    if (!resp) return -1;
    const char *p = resp, *end = resp + len;
    long long n = aredis__resp_len(&p, end, '*');
    /* Every argument takes at least 6 bytes ("$0\r\n\r\n"). */
    if (n < 0 || (unsigned long long)n > len / 6) return -1;
    for (long long i = 0; i < n; i++) {
        long long an = aredis__resp_len(&p, end, '$');
        if (an < 0 || (unsigned long long)(end - p) < (unsigned long long)an + 2) return -1;
        if (p[an] != '\r' || p[an + 1] != '\n') return -1;
        if (args && (size_t)i < max) {
            args[i].p = p;
            args[i].n = (size_t)an;
        }
        p += an + 2;
    }
    return p == end ? (long)n : -1;
}

int aredis__resp_name(const char *resp, size_t len, aredis__arg *name) {
    if (!resp) return -1;
    const char *p = resp, *end = resp + len;
    long long n = aredis__resp_len(&p, end, '*');
    if (n < 1) return -1;
    long long an = aredis__resp_len(&p, end, '$');
    if (an < 0 || (unsigned long long)(end - p) < (unsigned long long)an + 2) return -1;
    name->p = p;
    name->n = (size_t)an;
    return 0;
}

/* ---- Tables loaded from a server ---------------------------------------- */

/* Aggregates whose elements lie flat: arrays, sets, and maps (key, value). */
static int is_list(const aredis_reply *r) {
    return r && (r->type == AREDIS_REPLY_ARRAY || r->type == AREDIS_REPLY_SET ||
                 r->type == AREDIS_REPLY_MAP || r->type == AREDIS_REPLY_PUSH);
}

static int is_str(const aredis_reply *r) {
    return r && (r->type == AREDIS_REPLY_STRING || r->type == AREDIS_REPLY_STATUS ||
                 r->type == AREDIS_REPLY_VERB);
}

static int str_eq(const aredis_reply *r, const char *s) {
    return is_str(r) && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* The value after key `k` in a flat key/value list, or NULL. */
static const aredis_reply *kv_get(const aredis_reply *r, const char *k) {
    if (!is_list(r)) return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (str_eq(r->element[i], k)) return r->element[i + 1];
    return NULL;
}

static long long kv_int(const aredis_reply *r, const char *k) {
    const aredis_reply *v = kv_get(r, k);
    return v && v->type == AREDIS_REPLY_INTEGER ? v->integer : 0;
}

static int16_t clamp16(long long v) {
    return (int16_t)(v < INT16_MIN ? INT16_MIN : v > INT16_MAX ? INT16_MAX : v);
}

static const struct {
    const char *name;
    uint32_t bit;
} k_cmd_flags[] = {
#define AREDIS__F(suffix, name) {name, AREDIS__CF_##suffix},
    AREDIS__CMD_FLAG_NAMES(AREDIS__F)
#undef AREDIS__F
};

static const struct {
    const char *name;
    uint32_t bit;
} k_ks_flags[] = {
#define AREDIS__F(suffix, name) {name, AREDIS__KSF_##suffix},
    AREDIS__KEYSPEC_FLAG_NAMES(AREDIS__F)
#undef AREDIS__F
};

static uint32_t cmd_flags(const aredis_reply *r) {
    uint32_t f = 0;
    if (!is_list(r)) return 0;
    for (size_t i = 0; i < r->elements; i++)
        for (size_t k = 0; k < sizeof k_cmd_flags / sizeof *k_cmd_flags; k++)
            if (str_eq(r->element[i], k_cmd_flags[k].name)) f |= k_cmd_flags[k].bit;
    return f;
}

static uint16_t ks_flags(const aredis_reply *r) {
    uint32_t f = 0;
    if (!is_list(r)) return 0;
    for (size_t i = 0; i < r->elements; i++)
        for (size_t k = 0; k < sizeof k_ks_flags / sizeof *k_ks_flags; k++)
            if (str_eq(r->element[i], k_ks_flags[k].name)) f |= k_ks_flags[k].bit;
    return (uint16_t)f;
}

/* A copy of a reply string, case-folded (to lower or upper), or NULL. */
static char *dup_case(const aredis_reply *r, int upper) {
    if (!is_str(r)) return NULL;
    char *s = aredis__memdup0(r->str, r->len);
    if (!s) return NULL;
    for (size_t i = 0; i < r->len; i++) {
        if (upper && s[i] >= 'a' && s[i] <= 'z') s[i] = (char)(s[i] - 32);
        if (!upper && s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] + 32);
    }
    return s;
}

static void info_clear(aredis__cmdinfo *ci);

static void infos_free(aredis__cmdinfo *v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++)
        info_clear(&v[i]);
    aredis__free(v);
}

/* Free what an entry owns (not the entry itself). */
static void info_clear(aredis__cmdinfo *ci) {
    aredis__free((void *)ci->name);
    aredis__free((void *)ci->block_keyword);
    if (ci->specs) {
        for (size_t j = 0; j < ci->nspecs; j++)
            aredis__free((void *)ci->specs[j].keyword);
        aredis__free((void *)ci->specs);
    }
    infos_free((aredis__cmdinfo *)ci->subs, ci->nsubs);
    memset(ci, 0, sizeof *ci);
}

/* One key spec (a flat key/value list). Returns 0, or -1 out of memory. */
static int parse_spec(const aredis_reply *r, aredis__keyspec *ks) {
    memset(ks, 0, sizeof *ks);
    ks->flags = ks_flags(kv_get(r, "flags"));
    const aredis_reply *bs = kv_get(r, "begin_search");
    const aredis_reply *bt = kv_get(bs, "type"), *bspec = kv_get(bs, "spec");
    if (str_eq(bt, "index")) {
        ks->begin = AREDIS__KS_BEGIN_INDEX;
        ks->index = clamp16(kv_int(bspec, "index"));
    } else if (str_eq(bt, "keyword") && is_str(kv_get(bspec, "keyword"))) {
        ks->begin = AREDIS__KS_BEGIN_KEYWORD;
        ks->startfrom = clamp16(kv_int(bspec, "startfrom"));
        ks->keyword = dup_case(kv_get(bspec, "keyword"), 1);
        if (!ks->keyword) return -1;
    }
    const aredis_reply *fk = kv_get(r, "find_keys");
    const aredis_reply *ft = kv_get(fk, "type"), *fspec = kv_get(fk, "spec");
    if (str_eq(ft, "range")) {
        ks->find = AREDIS__KS_FIND_RANGE;
        ks->a = clamp16(kv_int(fspec, "lastkey"));
        ks->b = clamp16(kv_int(fspec, "keystep"));
        ks->c = clamp16(kv_int(fspec, "limit"));
    } else if (str_eq(ft, "keynum")) {
        ks->find = AREDIS__KS_FIND_KEYNUM;
        ks->a = clamp16(kv_int(fspec, "keynumidx"));
        ks->b = clamp16(kv_int(fspec, "firstkey"));
        ks->c = clamp16(kv_int(fspec, "keystep"));
    }
    return 0;
}

static int cmp_info(const void *a, const void *b) {
    return strcmp(((const aredis__cmdinfo *)a)->name, ((const aredis__cmdinfo *)b)->name);
}

static int elem_int(const aredis_reply *r, size_t i, long long *v) {
    if (i >= r->elements || r->element[i]->type != AREDIS_REPLY_INTEGER) return -1;
    *v = r->element[i]->integer;
    return 0;
}

/*
 * One command of a COMMAND reply into *ci: name, arity, flags, first, last,
 * step[, ACL categories[, tips, key specs, subcommands]]. Returns 0, -1 out
 * of memory, -2 when r is not a command.
 */
static int parse_cmd(const aredis_reply *r, aredis__cmdinfo *ci) {
    memset(ci, 0, sizeof *ci);
    long long arity, first, last, step;
    if (!is_list(r) || r->elements < 6 || !is_str(r->element[0]) || r->element[0]->len == 0 ||
        elem_int(r, 1, &arity) != 0 || elem_int(r, 3, &first) != 0 || elem_int(r, 4, &last) != 0 ||
        elem_int(r, 5, &step) != 0)
        return -2;
    ci->name = dup_case(r->element[0], 0);
    if (!ci->name) return -1;
    ci->arity = clamp16(arity);
    ci->first_key = clamp16(first);
    ci->last_key = clamp16(last);
    ci->key_step = clamp16(step);
    ci->flags = cmd_flags(r->element[2]);
    const aredis_reply *specs = r->elements > 8 ? r->element[8] : NULL;
    if (is_list(specs) && specs->elements) {
        if (specs->elements > UINT16_MAX) return -2;
        aredis__keyspec *ks = aredis__calloc(specs->elements, sizeof *ks);
        if (!ks) return -1;
        ci->specs = ks;
        ci->nspecs = (uint16_t)specs->elements;
        for (size_t j = 0; j < specs->elements; j++)
            if (parse_spec(specs->element[j], &ks[j]) != 0) return -1;
    }
    const aredis_reply *subs = r->elements > 9 ? r->element[9] : NULL;
    if (is_list(subs) && subs->elements) {
        if (subs->elements > UINT16_MAX) return -2;
        aredis__cmdinfo *v = aredis__calloc(subs->elements, sizeof *v);
        if (!v) return -1;
        ci->subs = v;
        for (size_t j = 0; j < subs->elements; j++) {
            int rc = parse_cmd(subs->element[j], &v[j]);
            ci->nsubs = (uint16_t)(j + 1); /* what to free from here on */
            if (rc != 0) return rc;
        }
        qsort(v, ci->nsubs, sizeof *v, cmp_info);
        ci->flags |= AREDIS__CF_HAS_SUBCOMMANDS;
    }
    return 0;
}

/* The built-in entry of that name ("config" or "config|get"), or NULL. */
static const aredis__cmdinfo *builtin_of(const char *name) {
    const char *bar = strchr(name, '|');
    aredis__arg a[2] = {{name, bar ? (size_t)(bar - name) : strlen(name)}, {NULL, 0}};
    const aredis__cmdinfo *b = find_builtin(&a[0]);
    if (!bar || !b) return b;
    a[1].p = bar + 1;
    a[1].n = strlen(bar + 1);
    return sub_of(b, a, 2);
}

/* Keep in ci only what the built-in table lacks: 1 when anything is left
 * (ci itself, or some of its subcommands under it), 0 when it is all known. */
static int keep_unknown(aredis__cmdinfo *ci) {
    if (!builtin_of(ci->name)) return 1;
    aredis__cmdinfo *v = (aredis__cmdinfo *)ci->subs;
    size_t kept = 0;
    for (size_t j = 0; j < ci->nsubs; j++) {
        if (builtin_of(v[j].name))
            info_clear(&v[j]);
        else
            v[kept++] = v[j];
    }
    ci->nsubs = (uint16_t)kept;
    if (!kept) {
        aredis__free(v);
        ci->subs = NULL;
    }
    return kept > 0;
}

static aredis__cmdtable *load(const aredis_reply *r, int all) {
    if (!is_list(r) || r->type == AREDIS_REPLY_MAP) return NULL;
    aredis__cmdtable *t = aredis__calloc(1, sizeof *t);
    if (!t) return NULL;
    if (r->elements) {
        t->cmds = aredis__calloc(r->elements, sizeof *t->cmds);
        if (!t->cmds) goto fail;
    }
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type == AREDIS_REPLY_NIL) continue;
        aredis__cmdinfo *ci = &t->cmds[t->n];
        int rc = parse_cmd(r->element[i], ci);
        if (rc != 0) {
            info_clear(ci);
            goto fail;
        }
        if (!all && !keep_unknown(ci)) {
            info_clear(ci);
            continue;
        }
        t->n++;
        t->entries += 1 + ci->nsubs;
    }
    if (t->n) qsort(t->cmds, t->n, sizeof *t->cmds, cmp_info);
    return t;
fail:
    aredis__cmdtable_free(t);
    return NULL;
}

aredis__cmdtable *aredis__cmdtable_load(const aredis_reply *command_reply) {
    return load(command_reply, 0);
}

aredis__cmdtable *aredis__cmdtable_load_all(const aredis_reply *command_reply) {
    return load(command_reply, 1);
}

void aredis__cmdtable_free(aredis__cmdtable *t) {
    if (!t) return;
    infos_free(t->cmds, t->n);
    aredis__free(t);
}

size_t aredis__cmdtable_size(const aredis__cmdtable *t) { return t ? t->entries : 0; }

const aredis__cmdinfo *aredis__cmdtable_entries(const aredis__cmdtable *t, size_t *n) {
    if (n) *n = t ? t->n : 0;
    return t ? t->cmds : NULL;
}
