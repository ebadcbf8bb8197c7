/*
 * The command table: what the library knows about every Redis command —
 * name and subcommands, arity, flags, and where its keys are — generated
 * from a live server's COMMAND INFO and COMMAND DOCS by tools/gencommands
 * (`make commands`) into src/proto/cmdtable_data.c, which is committed.
 *
 * It drives key prefixing, which commands block (and for how long), which
 * are read-only (retry_read_only), and later cluster routing. It lives in the
 * protocol layer: no I/O, no allocation on lookup.
 *
 * A command is given as its arguments (arg[0] is the name). Commands with
 * subcommands (CONFIG GET, XINFO STREAM, OBJECT ENCODING...) resolve to the
 * subcommand's entry when arg[1] names one.
 */
#ifndef AREDIS_PROTO_CMDTABLE_H
#define AREDIS_PROTO_CMDTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/reply.h"

/* One argument of a command: bytes and length (not NUL-terminated). */
typedef struct aredis__arg {
    const char *p;
    size_t n;
} aredis__arg;

/* Command flags (COMMAND INFO's flags, plus what the library derives). */
#define AREDIS__CF_WRITE (1u << 0)
#define AREDIS__CF_READONLY (1u << 1)
#define AREDIS__CF_DENYOOM (1u << 2)
#define AREDIS__CF_ADMIN (1u << 3)
#define AREDIS__CF_PUBSUB (1u << 4)
#define AREDIS__CF_NOSCRIPT (1u << 5)
#define AREDIS__CF_BLOCKING (1u << 6)
#define AREDIS__CF_LOADING (1u << 7)
#define AREDIS__CF_STALE (1u << 8)
#define AREDIS__CF_FAST (1u << 9)
#define AREDIS__CF_NO_AUTH (1u << 10)
#define AREDIS__CF_MAY_REPLICATE (1u << 11)
#define AREDIS__CF_NO_MULTI (1u << 12)
#define AREDIS__CF_MOVABLEKEYS (1u << 13)
#define AREDIS__CF_ALLOW_BUSY (1u << 14)
#define AREDIS__CF_NO_MANDATORY_KEYS (1u << 15)
#define AREDIS__CF_SKIP_MONITOR (1u << 16)
#define AREDIS__CF_SKIP_SLOWLOG (1u << 17)
#define AREDIS__CF_ASKING (1u << 18)
#define AREDIS__CF_SENTINEL (1u << 19)
#define AREDIS__CF_ONLY_SENTINEL (1u << 20)
#define AREDIS__CF_MODULE (1u << 21)
#define AREDIS__CF_HAS_SUBCOMMANDS (1u << 22) /* a container (CONFIG, XINFO...) */
#define AREDIS__CF_NO_ASYNC_LOADING (1u << 23)

/*
 * The flags as the server names them in COMMAND INFO: X(suffix, "name")
 * for AREDIS__CF_<suffix>, in bit order. One list for the run-time loader
 * and the generator. (HAS_SUBCOMMANDS is derived, not a server flag.)
 * BLOCKING is also set by the generator on WAIT and WAITAOF, which block
 * on the server for their timeout without the server's flag.
 */
#define AREDIS__CMD_FLAG_NAMES(X)                                                                  \
    X(WRITE, "write")                                                                              \
    X(READONLY, "readonly")                                                                        \
    X(DENYOOM, "denyoom")                                                                          \
    X(ADMIN, "admin")                                                                              \
    X(PUBSUB, "pubsub")                                                                            \
    X(NOSCRIPT, "noscript")                                                                        \
    X(BLOCKING, "blocking")                                                                        \
    X(LOADING, "loading")                                                                          \
    X(STALE, "stale")                                                                              \
    X(FAST, "fast")                                                                                \
    X(NO_AUTH, "no_auth")                                                                          \
    X(MAY_REPLICATE, "may_replicate")                                                              \
    X(NO_MULTI, "no_multi")                                                                        \
    X(MOVABLEKEYS, "movablekeys")                                                                  \
    X(ALLOW_BUSY, "allow_busy")                                                                    \
    X(NO_MANDATORY_KEYS, "no_mandatory_keys")                                                      \
    X(SKIP_MONITOR, "skip_monitor")                                                                \
    X(SKIP_SLOWLOG, "skip_slowlog")                                                                \
    X(ASKING, "asking")                                                                            \
    X(SENTINEL, "sentinel")                                                                        \
    X(ONLY_SENTINEL, "only_sentinel")                                                              \
    X(MODULE, "module")                                                                            \
    X(NO_ASYNC_LOADING, "no_async_loading")

/* Key specs (Redis 7 "key-specs"): where the search begins... */
#define AREDIS__KS_BEGIN_UNKNOWN 0
#define AREDIS__KS_BEGIN_INDEX 1   /* at argument `index` */
#define AREDIS__KS_BEGIN_KEYWORD 2 /* after `keyword`, searched from `startfrom` */
/* ...and how keys are found from there. */
#define AREDIS__KS_FIND_UNKNOWN 0
#define AREDIS__KS_FIND_RANGE 1  /* lastkey, keystep, limit */
#define AREDIS__KS_FIND_KEYNUM 2 /* keynumidx, firstkey, keystep */

/* Key spec flags. */
#define AREDIS__KSF_RO (1u << 0)
#define AREDIS__KSF_RW (1u << 1)
#define AREDIS__KSF_OW (1u << 2)
#define AREDIS__KSF_RM (1u << 3)
#define AREDIS__KSF_ACCESS (1u << 4)
#define AREDIS__KSF_UPDATE (1u << 5)
#define AREDIS__KSF_INSERT (1u << 6)
#define AREDIS__KSF_DELETE (1u << 7)
#define AREDIS__KSF_NOT_KEY (1u << 8)    /* e.g. a pattern, not a key name */
#define AREDIS__KSF_INCOMPLETE (1u << 9) /* may not find every key */
#define AREDIS__KSF_VARIABLE_FLAGS (1u << 10)

/* The key spec flags as COMMAND INFO names them, in bit order. */
#define AREDIS__KEYSPEC_FLAG_NAMES(X)                                                              \
    X(RO, "RO")                                                                                    \
    X(RW, "RW")                                                                                    \
    X(OW, "OW")                                                                                    \
    X(RM, "RM")                                                                                    \
    X(ACCESS, "access")                                                                            \
    X(UPDATE, "update")                                                                            \
    X(INSERT, "insert")                                                                            \
    X(DELETE, "delete")                                                                            \
    X(NOT_KEY, "not_key")                                                                          \
    X(INCOMPLETE, "incomplete")                                                                    \
    X(VARIABLE_FLAGS, "variable_flags")

typedef struct aredis__keyspec {
    uint8_t begin;       /* AREDIS__KS_BEGIN_* */
    uint8_t find;        /* AREDIS__KS_FIND_* */
    uint16_t flags;      /* AREDIS__KSF_* */
    int16_t index;       /* BEGIN_INDEX: the argument index */
    int16_t startfrom;   /* BEGIN_KEYWORD: where to start searching
                            (negative: from the end, searching backwards) */
    const char *keyword; /* BEGIN_KEYWORD: upper case */
    int16_t a, b, c;     /* RANGE: lastkey, keystep, limit;
                            KEYNUM: keynumidx, firstkey, keystep */
} aredis__keyspec;

/* How a blocking command's block time is given (block_arg below). */
#define AREDIS__BLOCK_NONE 0
#define AREDIS__BLOCK_SECONDS 1 /* a number of seconds ("0.5" allowed) */
#define AREDIS__BLOCK_MS 2      /* an integer of milliseconds */

typedef struct aredis__cmdinfo {
    const char *name;                      /* lower case: "get"; a subcommand "config|get" */
    int16_t arity;                         /* as COMMAND INFO: -N means at least N */
    int16_t first_key, last_key, key_step; /* the legacy key range */
    uint32_t flags;                        /* AREDIS__CF_* */
    /* Blocking: where its block time is: block_arg > 0 an argument index,
     * block_arg < 0 counted from the end (-1 = the last), 0 with
     * block_keyword set: the argument after that keyword (XREAD BLOCK). */
    int8_t block_arg;
    uint8_t block_unit; /* AREDIS__BLOCK_* */
    const char *block_keyword;
    uint16_t nspecs;
    const aredis__keyspec *specs;
    uint16_t nsubs;
    const struct aredis__cmdinfo *subs; /* sorted by name */
    const char *group;                  /* COMMAND DOCS group: "string", "list", ... */
    const char *since;                  /* COMMAND DOCS since: "1.0.0" */
} aredis__cmdinfo;

/* Every name of the built-in table, and every subcommand's name after its
 * '|', is shorter than this (the generator checks). */
#define AREDIS__CMD_NAME_MAX 64

/* A table loaded from a server at run time (aredis__cmdtable_load). */
typedef struct aredis__cmdtable aredis__cmdtable;

/* Where the built-in table came from: "redis 7.0.15" (the generator's
 * server), and its number of top-level commands. */
extern const char aredis__cmdtable_source[];
extern const size_t aredis__cmdtable_count;
/* The built-in table itself: aredis__cmdtable_count entries, sorted by name
 * (strcmp order of the lower-case names). */
extern const aredis__cmdinfo aredis__cmdtable_builtin[];
/*
 * The built-in table's hash index, generated with it: slot i holds 1 + the
 * index of an entry (0: empty); a name goes to slot
 * aredis__cmdtable_hash_name(name) & aredis__cmdtable_hash_mask, or the
 * next ones (linear probing, at most half the slots used). A lookup hashes
 * the name once and compares it once, most of the time.
 */
extern const uint16_t aredis__cmdtable_hash[];
extern const uint32_t aredis__cmdtable_hash_mask;
/* The hash of a command name in any case: 32-bit FNV-1a over its bytes
 * lower-cased (A-Z only). */
uint32_t aredis__cmdtable_hash_name(const char *p, size_t n);

/* The initials of the blocking commands (a bit per letter, 'a' = bit 0) by
 * name length: a command whose bit is clear does not block, and needs no
 * lookup to say so (AREDIS__CF_BLOCKING is the answer for the others). */
extern const uint32_t aredis__cmdtable_blocking_initials[AREDIS__CMD_NAME_MAX];

/*
 * Also generated into cmdtable_data.c, for the client's classifier
 * (client/client_internal.h, aredis__cmd_classify): the initials of the
 * command names it must look at, a bit per letter ('a' = bit 0), by name
 * length 0..9 — every blocking command of the table plus the names the
 * client treats specially (AUTH, HELLO, the refused and the secret-bearing
 * ones; tools/gencommands.c lists them).
 */
extern const uint32_t aredis__cc_initials[10];

/*
 * Look a command up: the built-in table first, then `extra` (may be NULL).
 * args[0] is the name (any case); when the command has subcommands and
 * nargs >= 2, args[1] selects one. In order: the built-in subcommand, the
 * extra table's subcommand (a container the built-in table knows may gain
 * subcommands in a newer server), the built-in entry, the extra entry —
 * so a subcommand no table knows falls back to its container's entry
 * (flag AREDIS__CF_HAS_SUBCOMMANDS). NULL when no table knows the command.
 * O(log n) and no allocation.
 */
const aredis__cmdinfo *aredis__cmd_lookup(const aredis__cmdtable *extra, const aredis__arg *args,
                                          size_t nargs);

/*
 * The arguments of `args` that are key names, as indices into args, in
 * order (at most `max`; the count is returned even when larger). Uses the
 * key specs (skipping NOT_KEY ones), else the legacy range. Returns -1 when
 * the keys cannot be known for sure: an unknown spec kind, an INCOMPLETE
 * spec, a keynum out of range, or a MOVABLEKEYS command with no usable spec.
 *
 * The specs are read as Redis's getKeysUsingKeySpecs() (db.c) reads them,
 * without its fallbacks to per-command key functions:
 *   - a keyword spec whose keyword is absent finds no keys (not an error):
 *     MIGRATE without KEYS has its one key; with KEYS it is -1 (the spec is
 *     INCOMPLETE: "KEYS" may be a password after AUTH);
 *   - SORT and SORT_RO are always -1 (their BY/GET/STORE specs are of an
 *     unknown kind);
 *   - a keynum of 0 finds no keys (EVAL "s" 0: 0 keys; Redis's spec code
 *     rejects it and falls back to a key function that says the same);
 *     a keynum that is not a non-negative integer, or more keys than there
 *     are arguments, is -1; a keynum counts keys, keystep apart (Redis
 *     7.0 counted arguments: the same for its commands, whose keystep is 1);
 *   - first or last key past the arguments (a malformed command) is -1, as
 *     is a container named without a subcommand the tables know.
 */
int aredis__cmd_keys(const aredis__cmdinfo *ci, const aredis__arg *args, size_t nargs, int *pos,
                     size_t max);
/* The same; `routed` also counts NOT_KEY specs that a cluster routes by as
 * if they were keys (SPUBLISH's shard channel). */
int aredis__cmd_keys_ex(const aredis__cmdinfo *ci, const aredis__arg *args, size_t nargs, int *pos,
                        size_t max, int routed);

/*
 * The block time of a blocking command, in ms: 0 = for ever, -1 = this
 * call does not block (XREAD without BLOCK) or the time is not a number.
 * Seconds may have a fraction ("0.5" = 500 ms, rounded up to the ms); a
 * keyword (XREAD's BLOCK) is looked for up to where the keys begin (the
 * keyword of a key spec: STREAMS), so a stream named BLOCK is not taken for
 * it. -1 for a command without AREDIS__CF_BLOCKING or block_unit.
 */
int64_t aredis__cmd_block_ms(const aredis__cmdinfo *ci, const aredis__arg *args, size_t nargs);

/*
 * Build a table from the reply to COMMAND (or COMMAND INFO), holding the
 * entries the built-in table lacks: unknown commands, and the unknown
 * subcommands of known containers (under a copy of the container's entry).
 * RESP2 and RESP3 forms; nil elements (COMMAND INFO of an unknown name) are
 * skipped. Loaded entries have no group, since or block argument (COMMAND
 * INFO does not say): a blocking command unknown to the built-in table has
 * no block time (aredis__cmd_block_ms: -1). NULL when out of memory or when
 * the reply is not a COMMAND reply. Free with aredis__cmdtable_free.
 */
aredis__cmdtable *aredis__cmdtable_load(const aredis_reply *command_reply);
/* The same, holding every command of the reply (what tools/gencommands
 * starts from). */
aredis__cmdtable *aredis__cmdtable_load_all(const aredis_reply *command_reply);
void aredis__cmdtable_free(aredis__cmdtable *t);
/* The entries t holds, top-level commands and subcommands (a container kept
 * only for new subcommands counts too). 0 for NULL. */
size_t aredis__cmdtable_size(const aredis__cmdtable *t);
/* Its top-level entries, sorted by name (their subcommands sorted too);
 * *n gets their count. */
const aredis__cmdinfo *aredis__cmdtable_entries(const aredis__cmdtable *t, size_t *n);

/*
 * A RESP length header at *p ("*N\r\n" or "$N\r\n", `type` its first
 * byte): N, and *p moved past it; -1 when there is none (at most 18
 * digits). One digit, the usual case, is read without a loop.
 */
static inline long long aredis__resp_len(const char **p, const char *end, char type) {
    const char *q = *p;
    if (end - q >= 4 && q[0] == type && q[1] >= '0' && q[1] <= '9' && q[2] == '\r' &&
        q[3] == '\n') {
        *p = q + 4;
        return q[1] - '0';
    }
    if (q >= end || *q != type) return -1;
    q++;
    long long v = 0;
    int digits = 0;
    while (q < end && *q >= '0' && *q <= '9') {
        if (++digits > 18) return -1;
        v = v * 10 + (*q++ - '0');
    }
    if (!digits || end - q < 2 || q[0] != '\r' || q[1] != '\n') return -1;
    *p = q + 2;
    return v;
}

/*
 * Split one encoded command (a RESP array of bulk strings, as the writer
 * makes) into its arguments, pointing into `resp`. Returns the argument
 * count (the array's length, even when larger than max: then only the
 * first max are filled), or -1 if resp is not one well-formed command.
 */
long aredis__resp_args(const char *resp, size_t len, aredis__arg *args, size_t max);

/* Is the n bytes at a the upper-case literal `lit`, in any letter case?
 * (Command names as the classifier and the client compare them.) */
static inline int aredis__ieq(const char *a, size_t n, const char *lit) {
    size_t i = 0;
    for (; i < n && lit[i]; i++) {
        char ch = a[i];
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        if (ch != lit[i]) return 0;
    }
    return i == n && lit[i] == '\0';
}
/* Only the name (first argument) of one encoded command, read without
 * walking the rest: 0, or -1 when resp does not start like a command. */
int aredis__resp_name(const char *resp, size_t len, aredis__arg *name);

#endif
