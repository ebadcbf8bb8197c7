/*
 * Pushes and pub/sub traffic, before any reply matching (client.c's
 * dispatch asks here first). The rules, one place for all of them:
 *
 *   - A RESP3 push, or on a RESP2 connection in subscribed mode (or whose
 *     oldest owed reply is a subscribe's) an array, whose first element
 *     names a pub/sub kind is pub/sub traffic:
 *       message, pmessage, smessage: a message, to the subscriptions
 *         (features/pubsub.c through the hooks), never matched to a
 *         command;
 *       a (p|s)(un)subscribe confirmation: the next reply of the
 *         (UN)SUBSCRIBE at the head of `sent` — one per channel it named —
 *         when its bytes have been written; otherwise the server's own
 *         doing (a shard channel dropped when its slot moved), to the
 *         hooks, never matched either.
 *   - Any other push goes to options.on_push.
 *   - Everything else is a reply: matched as usual.
 *
 * RESP2 cannot tell a message from a reply by type, hence the mode: the
 * server's counts in the confirmations say whether the connection is
 * subscribed, and while it is (or a subscribe is in flight) ordinary
 * commands are refused at issue time (aredis__pubsub_refuse), so only
 * subscribe-family commands and PING (whose reply is ["pong", ""]) can be
 * owed a reply.
 */
#include <string.h>

#include "client/client_internal.h"
#include "client/feature.h"
#include "proto/cmdtable.h"
#include "util/error.h"
#include "util/redact.h"

enum { PS_NONE, PS_MESSAGE, PS_CONFIRM };

static int lit(const aredis_reply *e, const char *s, size_t n) {
    return e->len == n && memcmp(e->str, s, n) == 0;
}

/* What kind of pub/sub traffic r is; *shard for the s- forms. */
static int ps_kind(const aredis_reply *r, int *shard) {
    if (r->elements < 3) return PS_NONE;
    const aredis_reply *k = r->element[0];
    if (k->type != AREDIS_REPLY_STRING && k->type != AREDIS_REPLY_STATUS) return PS_NONE;
    *shard = k->len && (k->str[0] == 's' || k->str[0] == 'S') && !lit(k, "subscribe", 9);
    switch (k->len) {
    case 7:
        return lit(k, "message", 7) ? PS_MESSAGE : PS_NONE;
    case 8:
        return lit(k, "pmessage", 8) || lit(k, "smessage", 8) ? PS_MESSAGE : PS_NONE;
    case 9:
        return lit(k, "subscribe", 9) ? PS_CONFIRM : PS_NONE;
    case 10:
        return lit(k, "psubscribe", 10) || lit(k, "ssubscribe", 10) ? PS_CONFIRM : PS_NONE;
    case 11:
        return lit(k, "unsubscribe", 11) ? PS_CONFIRM : PS_NONE;
    case 12:
        return lit(k, "punsubscribe", 12) || lit(k, "sunsubscribe", 12) ? PS_CONFIRM : PS_NONE;
    default:
        return PS_NONE;
    }
}

static int head_is_pubsub(const aredis_client *c) {
    const aredis__cmd *h = c->sent.head;
    return h && h->batch && (h->batch->bflags & AREDIS__BATCH_PUBSUB);
}

/* Is confirmation r the one batch b expects next: its kind, and the name
 * its next reply is for? (Anything else — the server dropping a shard
 * channel — is not this call's, whatever the order.) */
static int expected(const aredis__batch *b, const aredis_reply *r) {
    const aredis_reply *k = r->element[0], *name = r->element[1];
    if (!b->ps_kind) return 1;
    size_t n = strlen(b->ps_kind);
    if (k->len != n) return 0;
    for (size_t i = 0; i < n; i++)
        if ((k->str[i] | 0x20) != b->ps_kind[i]) return 0;
    if (!b->ps_names || b->got >= b->n) return 1;
    if (name->type != AREDIS_REPLY_STRING && name->type != AREDIS_REPLY_STATUS) return 0;
    return name->len == b->ps_lens[b->got] &&
           (name->len == 0 || memcmp(name->str, b->ps_names[b->got], name->len) == 0);
}

/* The head's next reply may be matched: its bytes are all written. */
static int head_written(const aredis_client *c) {
    const aredis__cmd *h = c->sent.head;
    return h && h->end <= c->written;
}

int aredis__push_route(aredis_client *c, aredis_reply *r) {
    int is_push = r->type == AREDIS_REPLY_PUSH;
    int subscribed = c->subs_np || c->subs_shard || head_is_pubsub(c);
    if (!is_push &&
        (r->type != AREDIS_REPLY_ARRAY || c->proto != 2 || (!subscribed && !c->ps_lenient)))
        return 0;
    int shard = 0;
    int kind = ps_kind(r, &shard);
    /* RESP2, not subscribed any more, right after a SUNSUBSCRIBE: only a
     * leftover sunsubscribe confirmation is taken (see ps_lenient). */
    if (!is_push && !subscribed &&
        !(kind == PS_CONFIRM && shard && r->element[0]->len == 12 &&
          r->element[2]->type == AREDIS_REPLY_INTEGER))
        return 0;
    if (kind == PS_CONFIRM) {
        const aredis_reply *n = r->element[2];
        if (n->type == AREDIS_REPLY_INTEGER) {
            if (shard)
                c->subs_shard = n->integer;
            else
                c->subs_np = n->integer;
        }
        /* The call's at the head, if it is the one it asked for next:
         * match it. */
        if (head_is_pubsub(c) && head_written(c) && expected(c->sent.head->batch, r)) {
            /* A server dropping a shard channel on its own sends the very
             * confirmation a SUNSUBSCRIBE of it waits for: if one was taken
             * for the call's, the call's own comes after it — on RESP2
             * maybe once nothing is subscribed any more. Until the next
             * reply matched to another command, such a leftover is still
             * recognised (client.c clears the flag). */
            if (shard && r->element[0]->len == 12) c->ps_lenient = 1;
            return 0;
        }
        if (c->ps_hooks && c->ps_hooks->unsolicited) c->ps_hooks->unsolicited(c, r, c->ps_state);
        aredis_reply_release(r);
        return 1;
    }
    if (kind == PS_MESSAGE) {
        if (c->ps_hooks && c->ps_hooks->message) c->ps_hooks->message(c, r, c->ps_state);
        aredis_reply_release(r);
        return 1;
    }
    if (!is_push) return 0; /* RESP2: a reply (PING's ["pong", ""], a confirmation's error...) */
    /* Tracking's messages are the cache's (aredis/cache.h). */
    if (c->opt.cache && r->elements >= 1 && r->element[0]->str &&
        (lit(r->element[0], "invalidate", 10) || lit(r->element[0], "tracking-redir-broken", 21))) {
        aredis__csc_push(c->opt.cache, r);
        aredis_reply_release(r);
        return 1;
    }
    if (c->opt.on_push) c->opt.on_push(c, r, c->opt.cb_data);
    aredis_reply_release(r);
    return 1;
}

/* ---- The client's side of subscriptions ----------------------------------- */

void aredis__pubsub_attach(aredis_client *c, const aredis__pubsub_hooks *h, void *state) {
    c->ps_hooks = h;
    c->ps_state = h ? state : NULL;
}

void *aredis__pubsub_state(const aredis_client *c) { return c->ps_state; }

int aredis__pubsub_engaged(const aredis_client *c, int anywhere) {
    if (c->subs_np > 0 || c->subs_shard > 0) return 1;
    return c->ps_hooks && c->ps_hooks->engaged && c->ps_hooks->engaged(c->ps_state, anywhere);
}

int aredis__client_proto(const aredis_client *c) {
    if (c->proto) return c->proto;
    return c->opt.protocol == 2 ? 2 : 3;
}

int aredis__pubsub_refusing(const aredis_client *c) {
    return aredis__client_proto(c) == 2 && aredis__pubsub_engaged(c, 0);
}

aredis_err aredis__pubsub_refuse(aredis_client *c, const char *resp, size_t len) {
    /* The common case first: RESP3, or nothing subscribed. */
    if (!aredis__pubsub_refusing(c)) return AREDIS_ERR_OK;
    aredis__arg a[1];
    if (aredis__resp_args(resp, len, a, 1) >= 1 && (aredis__ieq(a[0].p, a[0].n, "PING")))
        return AREDIS_ERR_OK;
    char name[32];
    aredis__redact_command(resp, len, name, sizeof name);
    return aredis__call_fail(AREDIS_ERR_UNSUPPORTED,
                             "%s: this connection is subscribed (RESP2): a RESP2 server runs "
                             "nothing but (P|S)(UN)SUBSCRIBE and PING on a subscribed "
                             "connection; speak RESP3 (protocol 3) or subscribe on a connection "
                             "of its own (aredis_sub_options.connection = "
                             "AREDIS_SUB_DEDICATED, the default on RESP2)",
                             name);
}
