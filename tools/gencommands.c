/*
 * gencommands: writes the built-in command table (src/proto/cmdtable_data.c)
 * from a live server: COMMAND (flags, arity, key specs, subcommands),
 * COMMAND DOCS (group, since, and where blocking commands take their block
 * time) and INFO server (the version the table names).
 *
 *   gencommands [--host H] [--port P] [--unix PATH] [--out FILE]
 *
 * `make commands` (scripts/gencommands.sh) runs it against a throwaway
 * redis-server. The output depends on the server's replies only: commands
 * and subcommands sorted by name, key specs in the server's order, one
 * layout, and `// clang-format off` around the data so that the formatter
 * leaves it as written. tests/integration/cmdtable_gen.c checks that the
 * committed file is what this program writes for the server it names.
 *
 * It is a client of aredis itself (futures, RESP2), and parses the COMMAND
 * reply with the library's own loader (aredis__cmdtable_load_all), so the
 * built-in table and a table loaded at run time read the server alike.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/aredis.h"
#include "proto/cmdtable.h"

/* ---- What the server does not say ---------------------------------------- */

/*
 * Where each blocking command takes its block time, and in what unit.
 * COMMAND DOCS names the argument ("timeout", or the value after the BLOCK
 * token) but not its unit: BLPOP's timeout is seconds (a double since Redis
 * 6.0), WAIT's is milliseconds, both typed as numbers. So the unit is
 * written here, once per command; the position comes from the docs.
 *
 * WAIT and WAITAOF block on the server for their timeout without the
 * server's "blocking" flag: they get AREDIS__CF_BLOCKING here, because the
 * client extends a blocking command's request timeout by its block time.
 */
typedef struct blockdef {
    const char *name;
    const char *arg;   /* the argument's name in COMMAND DOCS, or NULL: */
    const char *token; /* the value of this token (XREAD BLOCK ms) */
    uint8_t unit;      /* AREDIS__BLOCK_* */
} blockdef;

static const blockdef k_block[] = {
    {"blmove", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"blmpop", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"blpop", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"brpop", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"brpoplpush", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"bzmpop", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"bzpopmax", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"bzpopmin", "timeout", NULL, AREDIS__BLOCK_SECONDS},
    {"wait", "timeout", NULL, AREDIS__BLOCK_MS},
    {"waitaof", "timeout", NULL, AREDIS__BLOCK_MS},
    {"xread", NULL, "BLOCK", AREDIS__BLOCK_MS},
    {"xreadgroup", NULL, "BLOCK", AREDIS__BLOCK_MS},
};

/*
 * Commands the client depends on that an older generating server may lack:
 * written into the table as given here when the server does not list them
 * (the server's own entry wins when it does). WAITAOF (Redis 7.2) blocks
 * for its timeout; without an entry a WAITAOF would get the plain request
 * timeout. Its flags and arity are Redis 7.2's; its block time is its third
 * argument, in milliseconds (WAITAOF numlocal numreplicas timeout).
 */
static const aredis__cmdinfo k_supplements[] = {
    {.name = "waitaof",
     .arity = 4,
     .flags = AREDIS__CF_NOSCRIPT | AREDIS__CF_BLOCKING,
     .block_arg = 3,
     .block_unit = AREDIS__BLOCK_MS,
     .group = "generic",
     .since = "7.2.0"},
};

/*
 * The names the client's classifier (src/client/cmdclass.c) acts on besides
 * the blocking commands: the barriers (AUTH, HELLO); the refused commands
 * (the subscribe family, MONITOR, SYNC, PSYNC, RESET, and CLIENT for CLIENT
 * REPLY OFF|SKIP); the secret-bearing ones (util/redact.c: ACL, AUTH,
 * CONFIG, HELLO, MIGRATE, SENTINEL). The classifier's fast path looks no
 * further at a command whose name's length and initial match none of these
 * (aredis__cc_initials). Keep in step with those files: tests/unit/
 * cmdclass.c checks that the filter never changes the classifier's verdict.
 */
static const char *const k_classified[] = {
    "acl",          "auth",    "client",      "config",   "discard",    "exec",
    "hello",        "migrate", "monitor",     "multi",    "psubscribe", "psync",
    "punsubscribe", "reset",   "select",      "sentinel", "ssubscribe", "subscribe",
    "sunsubscribe", "sync",    "unsubscribe", "unwatch",  "watch",
};

/* ---- Output helpers ------------------------------------------------------ */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gencommands: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gencommands: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A C string literal. */
static void put_str(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(out, "\\%03o", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* A C identifier from a command name: "config|get" -> "config_get". */
static void ident(char *buf, size_t len, const char *prefix, const char *name) {
    int n = snprintf(buf, len, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= len) die("name too long: %s", name);
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) *p = '_';
}

typedef struct flagname {
    const char *macro;
    uint32_t bit;
} flagname;

static const flagname k_cf[] = {
#define F(suffix, name) {"AREDIS__CF_" #suffix, AREDIS__CF_##suffix},
    AREDIS__CMD_FLAG_NAMES(F)
#undef F
        {"AREDIS__CF_HAS_SUBCOMMANDS", AREDIS__CF_HAS_SUBCOMMANDS},
};

static const flagname k_ksf[] = {
#define F(suffix, name) {"AREDIS__KSF_" #suffix, AREDIS__KSF_##suffix},
    AREDIS__KEYSPEC_FLAG_NAMES(F)
#undef F
};

/* Flags as "A | B" in bit order, or "0". */
static void put_flags(FILE *out, uint32_t f, const flagname *names, size_t n) {
    int any = 0;
    for (uint32_t bit = 1; bit; bit <<= 1) {
        if (!(f & bit)) continue;
        const char *m = NULL;
        for (size_t i = 0; i < n; i++)
            if (names[i].bit == bit) m = names[i].macro;
        if (!m) die("flag bit 0x%x has no name", (unsigned)bit);
        fprintf(out, "%s%s", any ? " | " : "", m);
        any = 1;
    }
    if (!any) fputs("0", out);
}

/* ---- Replies ------------------------------------------------------------- */

static int is_list(const aredis_reply *r) {
    return r && (r->type == AREDIS_REPLY_ARRAY || r->type == AREDIS_REPLY_SET ||
                 r->type == AREDIS_REPLY_MAP);
}

static int is_str(const aredis_reply *r) {
    return r && (r->type == AREDIS_REPLY_STRING || r->type == AREDIS_REPLY_STATUS ||
                 r->type == AREDIS_REPLY_VERB);
}

static int str_eq(const aredis_reply *r, const char *s) {
    return is_str(r) && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* The value after key k in a flat key/value list, or NULL. */
static const aredis_reply *kv_get(const aredis_reply *r, const char *k) {
    if (!is_list(r)) return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (str_eq(r->element[i], k)) return r->element[i + 1];
    return NULL;
}

/* A string value as a NUL-terminated string (the reply's own). */
static const char *kv_str(const aredis_reply *r, const char *k) {
    const aredis_reply *v = kv_get(r, k);
    return is_str(v) ? v->str : NULL;
}

static int has_flag(const aredis_reply *arg, const char *flag) {
    const aredis_reply *f = kv_get(arg, "flags");
    if (!is_list(f)) return 0;
    for (size_t i = 0; i < f->elements; i++)
        if (str_eq(f->element[i], flag)) return 1;
    return 0;
}

/* Flag names in the COMMAND reply that the table has no bit for: said
 * aloud, since the loader ignores them. */
static void check_flag_names(const aredis_reply *cmd) {
    if (!is_list(cmd) || cmd->elements < 3) return;
    const aredis_reply *f = cmd->element[2];
    for (size_t i = 0; is_list(f) && i < f->elements; i++) {
        int known = 0;
#define F(suffix, name) known |= str_eq(f->element[i], name);
        AREDIS__CMD_FLAG_NAMES(F)
#undef F
        if (!known && is_str(f->element[i]))
            warn("%s: flag \"%s\" has no AREDIS__CF_ bit (ignored)", cmd->element[0]->str,
                 f->element[i]->str);
    }
    const aredis_reply *specs = cmd->elements > 8 ? cmd->element[8] : NULL;
    for (size_t j = 0; is_list(specs) && j < specs->elements; j++) {
        const aredis_reply *kf = kv_get(specs->element[j], "flags");
        for (size_t i = 0; is_list(kf) && i < kf->elements; i++) {
            int known = 0;
#define F(suffix, name) known |= str_eq(kf->element[i], name);
            AREDIS__KEYSPEC_FLAG_NAMES(F)
#undef F
            if (!known && is_str(kf->element[i]))
                warn("%s: key spec flag \"%s\" has no AREDIS__KSF_ bit (ignored)",
                     cmd->element[0]->str, kf->element[i]->str);
        }
    }
    const aredis_reply *subs = cmd->elements > 9 ? cmd->element[9] : NULL;
    for (size_t j = 0; is_list(subs) && j < subs->elements; j++)
        check_flag_names(subs->element[j]);
}

/* The docs of a command ("get") or subcommand ("config|get"), or NULL. */
static const aredis_reply *docs_of(const aredis_reply *docs, const char *name) {
    const char *bar = strchr(name, '|');
    char top[128];
    size_t n = bar ? (size_t)(bar - name) : strlen(name);
    if (n >= sizeof top) return NULL;
    memcpy(top, name, n);
    top[n] = '\0';
    const aredis_reply *d = kv_get(docs, top);
    return bar ? kv_get(kv_get(d, "subcommands"), name) : d;
}

/* ---- Block times ---------------------------------------------------------- */

/* How many arguments a documented argument takes: -1 when it varies. */
static int width(const aredis_reply *arg) {
    if (has_flag(arg, "optional") || has_flag(arg, "multiple")) return -1;
    const char *type = kv_str(arg, "type");
    int w = 1;
    if (type && strcmp(type, "pure-token") == 0) return 1;
    if (type && (strcmp(type, "block") == 0 || strcmp(type, "oneof") == 0)) {
        const aredis_reply *sub = kv_get(arg, "arguments");
        if (!is_list(sub) || !sub->elements) return -1;
        int block = strcmp(type, "block") == 0;
        w = block ? 0 : width(sub->element[0]);
        for (size_t i = 0; i < sub->elements; i++) {
            int x = width(sub->element[i]);
            if (x < 0 || (!block && x != w)) return -1;
            if (block) w += x;
        }
    }
    return w + (kv_get(arg, "token") ? 1 : 0);
}

/* Fill in where ci's block time is, from its docs and k_block. */
static void set_block(aredis__cmdinfo *ci, const aredis_reply *docs) {
    const blockdef *bd = NULL;
    for (size_t i = 0; i < sizeof k_block / sizeof *k_block; i++)
        if (strcmp(k_block[i].name, ci->name) == 0) bd = &k_block[i];
    if (!bd) {
        if (ci->flags & AREDIS__CF_BLOCKING)
            warn("%s is blocking but its block time is unknown: add it to k_block", ci->name);
        return;
    }
    ci->flags |= AREDIS__CF_BLOCKING;
    ci->block_unit = bd->unit;
    const aredis_reply *args = kv_get(docs, "arguments");
    if (!is_list(args)) die("%s: COMMAND DOCS lists no arguments", ci->name);
    if (bd->token) {
        for (size_t i = 0; i < args->elements; i++) {
            const char *tok = kv_str(args->element[i], "token");
            if (tok && strcmp(tok, bd->token) == 0) {
                ci->block_keyword = bd->token;
                return;
            }
        }
        die("%s: no argument with the token %s in COMMAND DOCS", ci->name, bd->token);
    }
    size_t at = args->elements;
    for (size_t i = 0; i < args->elements; i++)
        if (str_eq(kv_get(args->element[i], "name"), bd->arg)) at = i;
    if (at == args->elements) die("%s: no argument \"%s\" in COMMAND DOCS", ci->name, bd->arg);
    if (width(args->element[at]) != 1) die("%s: %s is not a single argument", ci->name, bd->arg);
    int before = 0, after = 0;
    for (size_t i = 0; i < args->elements && before >= 0; i++) {
        if (i == at) break;
        int w = width(args->element[i]);
        before = w < 0 ? -1 : before + w;
    }
    for (size_t i = at + 1; i < args->elements && after >= 0; i++) {
        int w = width(args->element[i]);
        after = w < 0 ? -1 : after + w;
    }
    if (before >= 0)
        ci->block_arg = (int8_t)(before + 1);
    else if (after >= 0)
        ci->block_arg = (int8_t)(-(after + 1));
    else
        die("%s: the position of %s varies", ci->name, bd->arg);
}

/* ---- The table ------------------------------------------------------------ */

typedef struct entry {
    aredis__cmdinfo ci; /* strings point into the loaded table or the docs */
    aredis__cmdinfo *subs;
    int supplement;
} entry;

static void complete(aredis__cmdinfo *ci, const aredis_reply *docs) {
    const aredis_reply *d = docs_of(docs, ci->name);
    if (!d) {
        warn("%s: no COMMAND DOCS", ci->name);
    } else {
        ci->group = kv_str(d, "group");
        ci->since = kv_str(d, "since");
    }
    set_block(ci, d);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const entry *)a)->ci.name, ((const entry *)b)->ci.name);
}

static void put_specs(FILE *out, const aredis__cmdinfo *ci) {
    if (!ci->nspecs) return;
    char id[160];
    ident(id, sizeof id, "ks_", ci->name);
    fprintf(out, "static const aredis__keyspec %s[] = {\n", id);
    for (size_t j = 0; j < ci->nspecs; j++) {
        const aredis__keyspec *ks = &ci->specs[j];
        fputs("    {", out);
        if (ks->begin == AREDIS__KS_BEGIN_INDEX) {
            fprintf(out, "INDEX(%d), ", ks->index);
        } else if (ks->begin == AREDIS__KS_BEGIN_KEYWORD) {
            fputs("KEYWORD(", out);
            put_str(out, ks->keyword);
            fprintf(out, ", %d), ", ks->startfrom);
        } else {
            fputs("BEGIN_UNKNOWN, ", out);
        }
        if (ks->find == AREDIS__KS_FIND_RANGE)
            fprintf(out, "RANGE(%d, %d, %d), ", ks->a, ks->b, ks->c);
        else if (ks->find == AREDIS__KS_FIND_KEYNUM)
            fprintf(out, "KEYNUM(%d, %d, %d), ", ks->a, ks->b, ks->c);
        else
            fputs("FIND_UNKNOWN, ", out);
        fputs(".flags = ", out);
        put_flags(out, ks->flags, k_ksf, sizeof k_ksf / sizeof *k_ksf);
        fputs("},\n", out);
    }
    fputs("};\n", out);
}

static void put_info(FILE *out, const aredis__cmdinfo *ci, const char *indent) {
    char id[160];
    fprintf(out, "%s{.name = ", indent);
    put_str(out, ci->name);
    fprintf(out, ", .arity = %d, .first_key = %d, .last_key = %d, .key_step = %d,\n", ci->arity,
            ci->first_key, ci->last_key, ci->key_step);
    fprintf(out, "%s .flags = ", indent);
    put_flags(out, ci->flags, k_cf, sizeof k_cf / sizeof *k_cf);
    fputs(",\n", out);
    if (ci->block_unit != AREDIS__BLOCK_NONE) {
        fprintf(out, "%s .block_unit = %s, ", indent,
                ci->block_unit == AREDIS__BLOCK_SECONDS ? "AREDIS__BLOCK_SECONDS"
                                                        : "AREDIS__BLOCK_MS");
        if (ci->block_keyword) {
            fputs(".block_keyword = ", out);
            put_str(out, ci->block_keyword);
        } else {
            fprintf(out, ".block_arg = %d", ci->block_arg);
        }
        fputs(",\n", out);
    }
    if (ci->nspecs) {
        ident(id, sizeof id, "ks_", ci->name);
        fprintf(out, "%s .nspecs = %u, .specs = %s,\n", indent, (unsigned)ci->nspecs, id);
    }
    if (ci->nsubs) {
        ident(id, sizeof id, "subs_", ci->name);
        fprintf(out, "%s .nsubs = %u, .subs = %s,\n", indent, (unsigned)ci->nsubs, id);
    }
    fprintf(out, "%s .group = ", indent);
    if (ci->group)
        put_str(out, ci->group);
    else
        fputs("NULL", out);
    fputs(", .since = ", out);
    if (ci->since)
        put_str(out, ci->since);
    else
        fputs("NULL", out);
    fputs("},\n", out);
}

/* The hash index of the table (see aredis__cmdtable_hash in cmdtable.h):
 * the smallest power of two at least twice the count, filled in name order. */
static void put_hash(FILE *out, const entry *v, size_t n) {
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    if (n >= UINT16_MAX) die("too many commands");
    uint16_t *slots = calloc(size, sizeof *slots);
    if (!slots) die("out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t at = aredis__cmdtable_hash_name(v[i].ci.name, strlen(v[i].ci.name)) & (size - 1);
        while (slots[at])
            at = (at + 1) & (size - 1);
        slots[at] = (uint16_t)(i + 1);
    }
    fprintf(out,
            "/* The hash index: 1 + an entry's index, by the hash of its name (0: empty). */\n"
            "const uint32_t aredis__cmdtable_hash_mask = %zu;\n"
            "const uint16_t aredis__cmdtable_hash[%zu] = {\n",
            size - 1, size);
    for (size_t i = 0; i < size; i++)
        fprintf(out, "%s%u,%s", i % 16 ? " " : "    ", (unsigned)slots[i],
                i % 16 == 15 || i + 1 == size ? "\n" : "");
    fputs("};\n\n", out);
    free(slots);
}

/* The initials of the blocking commands by name length (see
 * aredis__cmdtable_blocking_initials in cmdtable.h). */
static void put_blocking_initials(FILE *out, const entry *v, size_t n) {
    uint32_t bits[AREDIS__CMD_NAME_MAX] = {0};
    for (size_t i = 0; i < n; i++) {
        const char *name = v[i].ci.name;
        if (!(v[i].ci.flags & AREDIS__CF_BLOCKING)) continue;
        if (name[0] < 'a' || name[0] > 'z') die("%s: the filter needs a letter first", name);
        bits[strlen(name)] |= 1u << (name[0] - 'a');
    }
    fprintf(out,
            "/* The initials of the blocking commands (a bit per letter, 'a' = bit 0)\n"
            " * by name length: a command whose bit is clear does not block. */\n"
            "const uint32_t aredis__cmdtable_blocking_initials[%d] = {\n",
            AREDIS__CMD_NAME_MAX);
    for (size_t i = 0; i < AREDIS__CMD_NAME_MAX; i++)
        fprintf(out, "%s0x%08x,%s", i % 8 ? " " : "    ", (unsigned)bits[i],
                i % 8 == 7 ? "\n" : "");
    fputs("};\n\n", out);
}

/* The initials filter: names of interest by length, a bit per letter. */
static void put_initials(FILE *out, const entry *v, size_t n) {
    const char *names[10][64];
    size_t count[10] = {0};
    uint32_t bits[10] = {0};
    for (size_t i = 0; i < n + sizeof k_classified / sizeof *k_classified; i++) {
        const char *name = i < n ? v[i].ci.name : k_classified[i - n];
        if (i < n && !(v[i].ci.flags & AREDIS__CF_BLOCKING)) continue;
        size_t len = strlen(name);
        if (len > 9) continue; /* longer names always take the slow path */
        if (name[0] < 'a' || name[0] > 'z') die("%s: the filter needs a letter first", name);
        if (count[len] >= 64) die("too many names of length %zu", len);
        names[len][count[len]++] = name;
        bits[len] |= 1u << (name[0] - 'a');
    }
    fputs("/*\n"
          " * The client's classifier looks further only at commands whose name's\n"
          " * length and initial are here (client/client_internal.h): every blocking\n"
          " * command above, and the names tools/gencommands.c lists in k_classified.\n"
          " * A bit per letter ('a' = bit 0), by name length; names longer than 9\n"
          " * always take the slow path.\n"
          " */\n",
          out);
    fputs("const uint32_t aredis__cc_initials[10] = {\n", out);
    for (size_t len = 0; len < 10; len++) {
        /* sort this length's names for a stable comment */
        for (size_t a = 1; a < count[len]; a++)
            for (size_t b = a; b > 0 && strcmp(names[len][b - 1], names[len][b]) > 0; b--) {
                const char *t = names[len][b];
                names[len][b] = names[len][b - 1];
                names[len][b - 1] = t;
            }
        fprintf(out, "    0x%08x, /* %zu:", (unsigned)bits[len], len);
        const char *prev = NULL;
        for (size_t k = 0; k < count[len]; k++) {
            if (prev && strcmp(prev, names[len][k]) == 0) continue;
            fprintf(out, " %s", names[len][k]);
            prev = names[len][k];
        }
        fputs(" */\n", out);
    }
    fputs("};\n", out);
}

static void emit(FILE *out, const char *source, entry *v, size_t n) {
    size_t nsubs = 0;
    for (size_t i = 0; i < n; i++)
        nsubs += v[i].ci.nsubs;
    fprintf(out,
            "/*\n"
            " * The built-in command table, generated by tools/gencommands from\n"
            " * %s (`make commands`): do not edit, regenerate.\n"
            " *\n"
            " * %zu commands and %zu subcommands, sorted by name: COMMAND's flags,\n"
            " * arity and key specs; COMMAND DOCS's group and since; where blocking\n"
            " * commands take their block time (tools/gencommands.c, k_block).\n",
            source, n, nsubs);
    int sup = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].supplement) {
            fprintf(out, "%s%s",
                    sup ? ", " : " * Not from the server, added for the client: ", v[i].ci.name);
            sup = 1;
        }
    if (sup) fputs(" (k_supplements).\n", out);
    fputs(" */\n"
          "#include <stddef.h>\n"
          "#include <stdint.h>\n"
          "\n"
          "#include \"proto/cmdtable.h\"\n"
          "\n"
          "// clang-format off\n"
          "\n"
          "#define INDEX(i) .begin = AREDIS__KS_BEGIN_INDEX, .index = (i)\n"
          "#define KEYWORD(k, from) .begin = AREDIS__KS_BEGIN_KEYWORD, .keyword = (k), "
          ".startfrom = (from)\n"
          "#define BEGIN_UNKNOWN .begin = AREDIS__KS_BEGIN_UNKNOWN\n"
          "#define RANGE(lastkey, step, limit) .find = AREDIS__KS_FIND_RANGE, .a = (lastkey), "
          ".b = (step), .c = (limit)\n"
          "#define KEYNUM(idx, first, step) .find = AREDIS__KS_FIND_KEYNUM, .a = (idx), "
          ".b = (first), .c = (step)\n"
          "#define FIND_UNKNOWN .find = AREDIS__KS_FIND_UNKNOWN\n"
          "\n"
          "const char aredis__cmdtable_source[] = ",
          out);
    put_str(out, source);
    fputs(";\n", out);
    for (size_t i = 0; i < n; i++) {
        const aredis__cmdinfo *ci = &v[i].ci;
        fputs("\n", out);
        if (ci->nsubs) {
            char id[160];
            for (size_t j = 0; j < ci->nsubs; j++)
                put_specs(out, &v[i].subs[j]);
            ident(id, sizeof id, "subs_", ci->name);
            fprintf(out, "static const aredis__cmdinfo %s[] = {\n", id);
            for (size_t j = 0; j < ci->nsubs; j++)
                put_info(out, &v[i].subs[j], "    ");
            fputs("};\n", out);
        }
        put_specs(out, ci);
    }
    fputs("\nconst aredis__cmdinfo aredis__cmdtable_builtin[] = {\n", out);
    for (size_t i = 0; i < n; i++)
        put_info(out, &v[i].ci, "    ");
    fprintf(out, "};\n\nconst size_t aredis__cmdtable_count = %zu;\n\n", n);
    put_hash(out, v, n);
    put_blocking_initials(out, v, n);
    put_initials(out, v, n);
    fputs("\n#undef INDEX\n#undef KEYWORD\n#undef BEGIN_UNKNOWN\n#undef RANGE\n#undef KEYNUM\n"
          "#undef FIND_UNKNOWN\n\n// clang-format on\n",
          out);
}

/* Every identifier the output defines must be distinct ("a-b" and "a_b"
 * would both be a_b), and every name shorter than the lookup's buffer. */
static void check_idents(const entry *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (strlen(v[i].ci.name) >= AREDIS__CMD_NAME_MAX) die("%s: name too long", v[i].ci.name);
        for (size_t j = 0; j < v[i].ci.nsubs; j++) {
            const char *bar = strchr(v[i].subs[j].name, '|');
            if (!bar || strlen(bar + 1) >= AREDIS__CMD_NAME_MAX)
                die("%s: not a subcommand's name, or too long", v[i].subs[j].name);
        }
    }
    for (size_t i = 0; i + 1 < n; i++) {
        char a[160], b[160];
        ident(a, sizeof a, "", v[i].ci.name);
        ident(b, sizeof b, "", v[i + 1].ci.name);
        if (strcmp(a, b) == 0) die("%s and %s make the same identifier", a, b);
    }
}

/* ---- The server ----------------------------------------------------------- */

static aredis_future *run(aredis_client *c, const char *cmd) {
    aredis_future *f = aredis_future_command(c, cmd);
    if (!f) die("%s: %s", cmd, aredis_call_error()->detail);
    aredis_err e = aredis_await(f);
    if (e != AREDIS_ERR_OK) {
        const aredis_error *err = aredis_future_error(f);
        die("%s: %s (%s)", cmd, aredis_strerror(e), err && err->detail ? err->detail : "");
    }
    return f;
}

/* "redis 7.0.15" (or "valkey 8.0.1") from INFO server. */
static void server_source(const char *info, char *out, size_t len) {
    const char *product = "redis", *key = "redis_version:";
    if (strstr(info, "valkey_version:")) {
        product = "valkey";
        key = "valkey_version:";
    }
    const char *v = strstr(info, key);
    if (!v) die("INFO server has no %s", key);
    v += strlen(key);
    size_t n = strcspn(v, "\r\n");
    if (n == 0 || n > 40) die("INFO server: a strange version");
    snprintf(out, len, "%s %.*s", product, (int)n, v);
}

static void usage(void) {
    fputs("usage: gencommands [--host H] [--port P] [--unix PATH] [--out FILE]\n"
          "Writes the command table (src/proto/cmdtable_data.c) from a live server.\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    const char *outpath = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        if (strcmp(a, "--host") == 0)
            o.host = argv[++i];
        else if (strcmp(a, "--port") == 0)
            o.port = atoi(argv[++i]);
        else if (strcmp(a, "--unix") == 0)
            o.unix_path = argv[++i];
        else if (strcmp(a, "--out") == 0)
            outpath = argv[++i];
        else
            usage();
    }
    o.protocol = 2; /* COMMAND's RESP2 form: flat key/value arrays */
    o.reconnect = 0;
    o.request_timeout_ms = 30000;

    aredis_loop *loop = aredis_loop_new();
    if (!loop) die("out of memory");
    aredis_client *c = aredis_client_new(loop, &o);
    if (!c) die("client: %s", aredis_call_error()->detail);
    if (aredis_client_connect(c) != AREDIS_ERR_OK) die("connect: %s", aredis_call_error()->detail);
    aredis_future *ready = aredis_future_ready(c);
    if (!ready || aredis_await(ready) != AREDIS_ERR_OK) {
        const aredis_error *err = ready ? aredis_future_error(ready) : aredis_call_error();
        die("cannot connect: %s", err && err->detail ? err->detail : "?");
    }
    aredis_future_release(ready);

    aredis_future *finfo = run(c, "INFO server");
    aredis_future *fcmd = run(c, "COMMAND");
    aredis_future *fdocs = run(c, "COMMAND DOCS");
    const aredis_reply *info = aredis_future_reply(finfo);
    const aredis_reply *cmds = aredis_future_reply(fcmd);
    const aredis_reply *docs = aredis_future_reply(fdocs);
    if (!is_str(info)) die("INFO server: not a string");
    if (!is_list(docs)) die("COMMAND DOCS: not a list (the server predates Redis 7.0?)");
    char source[64];
    server_source(info->str, source, sizeof source);

    for (size_t i = 0; is_list(cmds) && i < cmds->elements; i++)
        check_flag_names(cmds->element[i]);
    aredis__cmdtable *t = aredis__cmdtable_load_all(cmds);
    if (!t) die("COMMAND: not a COMMAND reply");
    size_t n;
    const aredis__cmdinfo *all = aredis__cmdtable_entries(t, &n);
    size_t nsup = sizeof k_supplements / sizeof *k_supplements;
    entry *v = calloc(n + nsup, sizeof *v);
    if (!v) die("out of memory");
    for (size_t i = 0; i < n; i++) {
        v[i].ci = all[i];
        complete(&v[i].ci, docs);
        if (all[i].nsubs) {
            v[i].subs = calloc(all[i].nsubs, sizeof *v[i].subs);
            if (!v[i].subs) die("out of memory");
            for (size_t j = 0; j < all[i].nsubs; j++) {
                v[i].subs[j] = all[i].subs[j];
                complete(&v[i].subs[j], docs);
            }
            v[i].ci.subs = v[i].subs;
        }
    }
    size_t total = n;
    for (size_t k = 0; k < nsup; k++) {
        int listed = 0;
        for (size_t i = 0; i < n; i++)
            listed |= strcmp(v[i].ci.name, k_supplements[k].name) == 0;
        if (listed) continue;
        v[total].ci = k_supplements[k];
        v[total].supplement = 1;
        total++;
    }
    qsort(v, total, sizeof *v, cmp_entry);
    check_idents(v, total);

    FILE *out = stdout;
    if (outpath && strcmp(outpath, "-") != 0) {
        out = fopen(outpath, "w");
        if (!out) die("%s: cannot write", outpath);
    }
    emit(out, source, v, total);
    if (fflush(out) != 0 || ferror(out)) die("write error");
    if (out != stdout) fclose(out);

    for (size_t i = 0; i < total; i++)
        free(v[i].subs);
    free(v);
    aredis__cmdtable_free(t);
    aredis_future_release(finfo);
    aredis_future_release(fcmd);
    aredis_future_release(fdocs);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
