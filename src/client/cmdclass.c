/*
 * What the dispatcher must know about a command before it is queued, read
 * from its encoded bytes (the same for the format and the argv paths):
 *
 *   refused   commands whose replies cannot be matched one per command:
 *             the subscribe family (confirmations and messages are pushes,
 *             or on RESP2 the connection changes mode), MONITOR (a stream),
 *             SYNC/PSYNC (a replication stream), CLIENT REPLY OFF|SKIP (no
 *             reply at all) and RESET (undoes the handshake); and WATCH/
 *             UNWATCH, whose replies match but which need the connection
 *             to themselves until EXEC (aredis_tx_watch reserves it). They
 *             fail at issue time with AREDIS_ERR_UNSUPPORTED and a reason.
 *   barrier   AUTH and HELLO: written only when nothing else is owed a
 *             reply, and nothing is written behind them until they are
 *             answered (Redis 7.2+ drops a failed AUTH's reply when others
 *             are pending, which would shift every reply after it).
 *   blocking  BLPOP & co., XREAD(GROUP) BLOCK, WAIT, WAITAOF: the default
 *             request timeout is extended by the command's own block time,
 *             and a block time of 0 (forever) means no deadline. The
 *             command table says which commands block and where their
 *             block time is (proto/cmdtable.h: AREDIS__CF_BLOCKING,
 *             aredis__cmd_block_ms).
 *   sensitive may carry a secret: its error detail is redacted.
 *   read-only may be retried after a reconnect (retry_read_only): the
 *             table's READONLY flag (reconnect.c).
 *   session   MULTI, EXEC, DISCARD, SELECT, AUTH, HELLO: they change what
 *             the next user of the connection would inherit (session.c).
 *
 * This runs for every command issued, so the usual commands are told apart
 * by the name's length and first letter before anything is parsed
 * (aredis__cmd_classify). That filter, aredis__cc_initials, is generated
 * with the table (tools/gencommands.c) from its blocking commands and the
 * names this file and util/redact.c act on: a name added to refusal(), the
 * barriers or the secret-bearing commands must be added to k_classified
 * there too (tests/unit/cmdclass.c checks it).
 */
#include <stdint.h>
#include <string.h>

#include "client/client_internal.h"
#include "proto/cmdtable.h"
#include "util/alloc.h"
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

static const char *refusal(const char *name, size_t n, cursor args, size_t argc) {
    if (aredis__ieq(name, n, "SUBSCRIBE") || aredis__ieq(name, n, "PSUBSCRIBE") ||
        aredis__ieq(name, n, "SSUBSCRIBE") || aredis__ieq(name, n, "UNSUBSCRIBE") ||
        aredis__ieq(name, n, "PUNSUBSCRIBE") || aredis__ieq(name, n, "SUNSUBSCRIBE"))
        return "the subscribe family is not supported by the command API: its confirmations "
               "and messages are not one reply per command (use aredis_subscription_new(), "
               "aredis/pubsub.h)";
    if (aredis__ieq(name, n, "MONITOR"))
        return "MONITOR is not supported by the command API: it streams the server's "
               "commands instead of replying once (use redis-cli monitor)";
    if (aredis__ieq(name, n, "SYNC") || aredis__ieq(name, n, "PSYNC"))
        return "SYNC/PSYNC are not supported: they turn the connection into a replication "
               "stream";
    if (aredis__ieq(name, n, "RESET"))
        return "RESET is not supported: it undoes what the handshake set up (user, database, "
               "name, protocol); use aredis_client_close() and a new connection instead";
    if (aredis__ieq(name, n, "WATCH") || aredis__ieq(name, n, "UNWATCH"))
        return "WATCH/UNWATCH are not supported by the command API: a WATCH needs the "
               "connection to itself until EXEC, and other commands on a shared client would "
               "clear or trip it; use aredis_tx_watch() (aredis/tx.h), which reserves the "
               "connection";
    if (aredis__ieq(name, n, "CLIENT") && argc >= 3) {
        const char *a, *b;
        size_t an, bn;
        if (read_arg(&args, &a, &an) == 0 && aredis__ieq(a, an, "REPLY") &&
            read_arg(&args, &b, &bn) == 0 &&
            (aredis__ieq(b, bn, "OFF") || aredis__ieq(b, bn, "SKIP")))
            return "CLIENT REPLY OFF|SKIP is not supported: with replies switched off, later "
                   "replies could not be matched to their commands";
    }
    return NULL;
}

/*
 * The block time of a blocking command (ms, 0 = forever), or -1 when it
 * does not block. head holds its name and, when it has one, its first
 * argument (for a subcommand's entry); the rest is read only for a command
 * the table marks blocking.
 */
static int64_t blocking(const char *resp, size_t len, const aredis__arg *head, size_t nhead,
                        size_t argc) {
    if (head[0].n == 0 || head[0].n >= AREDIS__CMD_NAME_MAX) return -1;
    unsigned ch = (unsigned)(((unsigned char)head[0].p[0] | 0x20) - 'a');
    if (ch > 25 || !((aredis__cmdtable_blocking_initials[head[0].n] >> ch) & 1u))
        return -1; /* no blocking command has that length and initial */
    const aredis__cmdinfo *ci = aredis__cmd_lookup(NULL, head, nhead);
    if (!ci || !(ci->flags & AREDIS__CF_BLOCKING)) return -1;
    aredis__arg local[16], *args = local;
    if (argc > sizeof local / sizeof *local) {
        /* BLPOP over many keys: out of memory leaves the plain timeout */
        args = aredis__reallocarray(NULL, argc, sizeof *args);
        if (!args) return -1;
    }
    long n = aredis__resp_args(resp, len, args, argc);
    int64_t ms = n >= 0 && (size_t)n == argc ? aredis__cmd_block_ms(ci, args, argc) : -1;
    if (args != local) aredis__free(args);
    return ms;
}

unsigned aredis__cmd_classify_slow(const char *resp, size_t len, int want_ro, const char **why,
                                   uint64_t *block_ms, const aredis__cmdtable *extra) {
    cursor c = {resp, resp + len};
    size_t argc, nhead = 1;
    aredis__arg head[2] = {{NULL, 0}, {NULL, 0}};
    if (read_num(&c, '*', &argc) != 0 || argc == 0 || read_arg(&c, &head[0].p, &head[0].n) != 0)
        return 0;
    cursor next = c;
    if (argc >= 2 && read_arg(&next, &head[1].p, &head[1].n) == 0) nhead = 2;
    const char *name = head[0].p;
    size_t n = head[0].n;
    unsigned flags = 0;
    if (want_ro &&
        aredis__cmd_is_read_only(name, n, nhead == 2 ? head[1].p : NULL, head[1].n, extra))
        flags |= AREDIS__CC_READ_ONLY;
    const char *r = refusal(name, n, c, argc);
    if (r) {
        *why = r;
        return flags | AREDIS__CC_REFUSED;
    }
    if (aredis__ieq(name, n, "AUTH") || aredis__ieq(name, n, "HELLO"))
        flags |= AREDIS__CC_BARRIER | AREDIS__CC_SESSION;
    if (aredis__ieq(name, n, "MULTI") || aredis__ieq(name, n, "EXEC") ||
        aredis__ieq(name, n, "DISCARD") || aredis__ieq(name, n, "SELECT"))
        flags |= AREDIS__CC_SESSION;
    int64_t b = blocking(resp, len, head, nhead, argc);
    if (b >= 0) {
        flags |= AREDIS__CC_BLOCKING;
        *block_ms = (uint64_t)b;
    }
    if (aredis__redact_is_sensitive(resp, len)) flags |= AREDIS__CC_SENSITIVE;
    return flags;
}
