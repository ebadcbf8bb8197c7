/*
 * What the dispatcher must know about a command before it is queued, read
 * from its encoded bytes (the same for the format and the argv paths):
 *
 *   refused   commands whose replies cannot be matched one per command:
 *             the subscribe family (confirmations and messages are pushes,
 *             or on RESP2 the connection changes mode), MONITOR (a stream),
 *             SYNC/PSYNC (a replication stream), CLIENT REPLY OFF|SKIP (no
 *             reply at all) and RESET (undoes the handshake). They fail at
 *             issue time with AREDIS_ERR_UNSUPPORTED and a reason.
 *   barrier   AUTH and HELLO: written only when nothing else is owed a
 *             reply, and nothing is written behind them until they are
 *             answered (Redis 7.2+ drops a failed AUTH's reply when others
 *             are pending, which would shift every reply after it).
 *   blocking  BLPOP & co., XREAD(GROUP) BLOCK, WAIT, WAITAOF: the default
 *             request timeout is extended by the command's own block time,
 *             and a block time of 0 (forever) means no deadline.
 *   sensitive may carry a secret: its error detail is redacted.
 *   read-only may be retried after a reconnect (retry_read_only).
 *
 * This runs for every command issued, so the usual commands are told apart
 * by the name's length and first letter before anything is parsed. (The
 * command table will replace these hand-written lists.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "util/redact.h"

typedef struct {
    const char *p, *end;
} cursor;

static int read_num(cursor *c, char type, size_t *out) {
    if (c->p >= c->end || *c->p != type) return -1;
    size_t n = 0;
    const char *q = c->p + 1;
    while (q < c->end && *q >= '0' && *q <= '9') {
        if (n > (SIZE_MAX - 9) / 10) return -1;
        n = n * 10 + (size_t)(*q++ - '0');
    }
    if (q == c->p + 1 || q + 2 > c->end || q[0] != '\r' || q[1] != '\n') return -1;
    c->p = q + 2;
    *out = n;
    return 0;
}

static int read_arg(cursor *c, const char **a, size_t *n) {
    if (read_num(c, '$', n) != 0 || (size_t)(c->end - c->p) < *n + 2) return -1;
    *a = c->p;
    c->p += *n + 2;
    return 0;
}

static int ieq(const char *a, size_t n, const char *lit) {
    size_t i = 0;
    for (; i < n && lit[i]; i++) {
        char ch = a[i];
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        if (ch != lit[i]) return 0;
    }
    return i == n && lit[i] == '\0';
}

/* The initials of the names of interest, by name length 0..9: bit 0 for
 * 'a', bit 1 for 'b', ... */
#define L(ch) (1u << ((ch) - 'a'))
const uint32_t aredis__cc_initials[10] = {
    0,
    0,
    0,
    L('a'),                                     /* ACL */
    L('a') | L('s') | L('w'),                   /* AUTH SYNC WAIT */
    L('h') | L('p') | L('r') | L('b') | L('x'), /* HELLO PSYNC RESET B*POP XREAD */
    L('c') | L('b'),                            /* CONFIG CLIENT BLMOVE BLMPOP BZMPOP */
    L('m') | L('w'),                            /* MIGRATE MONITOR WAITAOF */
    L('s') | L('b'),                            /* SENTINEL BZPOPMIN BZPOPMAX */
    L('s'),                                     /* SUBSCRIBE */
};
#undef L

/* A block time in seconds ("0.5") or milliseconds, as ms; -1 if not a number. */
static int64_t block_time(const char *a, size_t n, int seconds) {
    char tmp[32];
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, a, n);
    tmp[n] = '\0';
    char *e;
    double v = strtod(tmp, &e);
    if (*e != '\0' || !(v >= 0) || v > 1e12) return -1;
    return (int64_t)(seconds ? v * 1000.0 + 0.999 : v);
}

static const char *refusal(const char *name, size_t n, cursor args, size_t argc) {
    if (ieq(name, n, "SUBSCRIBE") || ieq(name, n, "PSUBSCRIBE") || ieq(name, n, "SSUBSCRIBE") ||
        ieq(name, n, "UNSUBSCRIBE") || ieq(name, n, "PUNSUBSCRIBE") || ieq(name, n, "SUNSUBSCRIBE"))
        return "the subscribe family is not supported by the command API: its confirmations "
               "and messages are not one reply per command (use a connection of its own "
               "outside aredis until aredis's pub/sub API)";
    if (ieq(name, n, "MONITOR"))
        return "MONITOR is not supported by the command API: it streams the server's "
               "commands instead of replying once (use redis-cli monitor)";
    if (ieq(name, n, "SYNC") || ieq(name, n, "PSYNC"))
        return "SYNC/PSYNC are not supported: they turn the connection into a replication "
               "stream";
    if (ieq(name, n, "RESET"))
        return "RESET is not supported: it undoes what the handshake set up (user, database, "
               "name, protocol); use aredis_client_close() and a new connection instead";
    if (ieq(name, n, "CLIENT") && argc >= 3) {
        const char *a, *b;
        size_t an, bn;
        if (read_arg(&args, &a, &an) == 0 && ieq(a, an, "REPLY") && read_arg(&args, &b, &bn) == 0 &&
            (ieq(b, bn, "OFF") || ieq(b, bn, "SKIP")))
            return "CLIENT REPLY OFF|SKIP is not supported: with replies switched off, later "
                   "replies could not be matched to their commands";
    }
    return NULL;
}

/* The block time of a blocking command (ms, 0 = forever), or -1. */
static int64_t blocking(const char *name, size_t n, cursor args, size_t argc) {
    const char *a = NULL;
    size_t an = 0;
    int last_s = ieq(name, n, "BLPOP") || ieq(name, n, "BRPOP") || ieq(name, n, "BZPOPMIN") ||
                 ieq(name, n, "BZPOPMAX") || ieq(name, n, "BRPOPLPUSH") || ieq(name, n, "BLMOVE");
    int last_ms = ieq(name, n, "WAIT") || ieq(name, n, "WAITAOF");
    if (last_s || last_ms) {
        for (size_t i = 1; i < argc; i++)
            if (read_arg(&args, &a, &an) != 0) return -1;
        return a ? block_time(a, an, last_s) : -1;
    }
    if (ieq(name, n, "BLMPOP") || ieq(name, n, "BZMPOP"))
        return argc >= 2 && read_arg(&args, &a, &an) == 0 ? block_time(a, an, 1) : -1;
    if (ieq(name, n, "XREAD") || ieq(name, n, "XREADGROUP")) {
        for (size_t i = 1; i < argc; i++) {
            if (read_arg(&args, &a, &an) != 0 || ieq(a, an, "STREAMS")) return -1;
            if (ieq(a, an, "BLOCK") && i + 1 < argc && read_arg(&args, &a, &an) == 0)
                return block_time(a, an, 0);
        }
    }
    return -1;
}

unsigned aredis__cmd_classify_slow(const char *resp, size_t len, int want_ro, const char **why,
                                   uint64_t *block_ms) {
    cursor c = {resp, resp + len};
    size_t argc, n;
    const char *name;
    if (read_num(&c, '*', &argc) != 0 || argc == 0 || read_arg(&c, &name, &n) != 0) return 0;
    unsigned flags = 0;
    if (want_ro && aredis__cmd_is_read_only(name, n)) flags |= AREDIS__CC_READ_ONLY;
    const char *r = refusal(name, n, c, argc);
    if (r) {
        *why = r;
        return flags | AREDIS__CC_REFUSED;
    }
    if (ieq(name, n, "AUTH") || ieq(name, n, "HELLO")) flags |= AREDIS__CC_BARRIER;
    int64_t b = blocking(name, n, c, argc);
    if (b >= 0) {
        flags |= AREDIS__CC_BLOCKING;
        *block_ms = (uint64_t)b;
    }
    if (aredis__redact_is_sensitive(resp, len)) flags |= AREDIS__CC_SENSITIVE;
    return flags;
}
