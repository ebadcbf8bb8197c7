/*
 * The handshake, run after every connect before any user command is sent:
 *
 *   protocol 3:  HELLO 3 [AUTH user pass] [SETNAME name]   then SELECT db
 *                (a server without HELLO, or refusing RESP3, falls back to
 *                the RESP2 sequence below)
 *   protocol 2:  AUTH [user] pass, SELECT db, CLIENT SETNAME name
 *                (pipelined: one round trip; a lone PING when none of them
 *                is needed, so an unauthenticated connect fails here)
 *   then, for the clients that ask for them (client/feature.h):
 *                ROLE (a sentinel client: is this the primary, or a
 *                replica, as the sentinels said?) and READONLY (a
 *                cluster client reading from replicas)
 *   then, with load_commands, COMMAND: the server's command table
 *
 * Refusals come in two classes, the server's words in the detail:
 *   permanent  credentials (NOAUTH, WRONGPASS, NOPERM...: AREDIS_ERR_AUTH)
 *              and an invalid database (SELECT: AREDIS_ERR_HANDSHAKE): the
 *              next attempt would be refused too, so the reconnect policy
 *              stops (unless reconnect_on_auth_error);
 *   transient  anything else (LOADING, BUSY, MASTERDOWN, TRYAGAIN, "max
 *              number of clients reached", ...: AREDIS_ERR_HANDSHAKE): the
 *              server may say yes in a moment, so it is retried with
 *              backoff like a failed connect.
 * Handshake commands are INTERNAL: they bypass the waiting queue and have
 * no request deadline (the connect deadline covers them).
 */
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"
#include "proto/cmdtable.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/redact.h"

static int starts_with(const aredis_reply *r, const char *p) {
    size_t n = strlen(p);
    return r && r->str && r->len >= n && memcmp(r->str, p, n) == 0;
}

/* "The server cannot serve this now": a refusal to retry, not to obey. */
static int is_transient(const aredis_reply *r) {
    return starts_with(r, "LOADING") || starts_with(r, "BUSY") || starts_with(r, "MASTERDOWN") ||
           starts_with(r, "TRYAGAIN") || starts_with(r, "CLUSTERDOWN") ||
           starts_with(r, "ERR max number of clients");
}

static int is_auth_error(const aredis_reply *r) {
    return starts_with(r, "NOAUTH") || starts_with(r, "NOPERM") || starts_with(r, "WRONGPASS") ||
           starts_with(r, "ERR invalid password") || starts_with(r, "ERR invalid username") ||
           starts_with(r, "ERR AUTH") || starts_with(r, "ERR Client sent AUTH");
}

/*
 * The server's words go into the error detail, the log and on_error: a
 * server that echoes what it was sent ("unknown command 'HELLO', with args
 * beginning with: ... 'pass'") must not leak the credentials, so they are
 * cut out, and for the steps that carry them so is anything quoted.
 */
static void fail(aredis_client *c, const char *step, const aredis_reply *r) {
    char said[220], safe[220], msg[256];
    const char *secrets[] = {c->opt.password, c->opt.username};
    size_t n = aredis__redact_secrets(r && r->str ? r->str : "", r && r->str ? r->len : 0, secrets,
                                      2, said, sizeof said);
    if (strcmp(step, "AUTH") == 0 || strcmp(step, "HELLO") == 0)
        aredis__redact_message(said, n, safe, sizeof safe);
    else
        snprintf(safe, sizeof safe, "%s", said);
    snprintf(msg, sizeof msg, "%s refused: %s", step, safe);
    if (is_auth_error(r))
        aredis__teardown_refused(c, AREDIS_ERR_AUTH, msg);
    else if ((strcmp(step, "SELECT") == 0 || strcmp(step, "CLIENT TRACKING") == 0) &&
             !is_transient(r))
        aredis__teardown_refused(c, AREDIS_ERR_HANDSHAKE, msg); /* no such database, a
                                                                    tracking refused */
    else
        aredis__teardown(c, AREDIS_ERR_HANDSHAKE, msg);
}

/* One step of the pipelined tail; the last one to answer makes us READY. */
static void step_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    if (err && (err->code != AREDIS_ERR_SERVER || !r)) return; /* teardown under way */
    if (err) {
        fail(c, (const char *)data, r);
        return;
    }
    if (--c->hs_pending == 0) aredis__set_ready(c);
}

/*
 * The server's command table (load_commands): kept for what the built-in
 * one lacks. Not a refusal to connect when it fails: the built-in table
 * still serves.
 */
static void commands_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)data;
    if (err && (err->code != AREDIS_ERR_SERVER || !r)) return; /* teardown under way */
    aredis__cmdtable *t = err ? NULL : aredis__cmdtable_load(r);
    if (t) {
        aredis__cmdtable_free(c->cmdtable);
        c->cmdtable = t;
        aredis__log(AREDIS_LOG_DEBUG, "command table: %zu commands beyond the built-in table",
                    aredis__cmdtable_size(t));
    } else {
        aredis__log(AREDIS_LOG_WARN, "load_commands: %s: keeping the built-in command table",
                    err ? err->detail : "the reply to COMMAND could not be read");
    }
    if (--c->hs_pending == 0) aredis__set_ready(c);
}

static void tracking_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    if (!err) c->tracking = 1;
    step_done(c, r, err, data);
}

/* A client with a cache: CLIENT TRACKING ON [OPTIN | BCAST [PREFIX p]...]. */
static int send_tracking(aredis_client *c) {
    enum { MAX = 5 + 2 * 64 }; /* aredis_cache_new() allows 64 prefixes */
    const char *argv[MAX];
    size_t lens[MAX];
    char *owned[64];
    int nowned = 0;
    int argc =
        aredis__csc_tracking_argv(c->opt.cache, c->opt.prefix, argv, lens, MAX, owned, &nowned);
    aredis_err e = argc < 0 ? AREDIS_ERR_NOMEM
                            : aredis__submit(c, NULL, tracking_done, (void *)"CLIENT TRACKING", 1,
                                             argc, argv, lens, NULL, NULL, NULL);
    for (int i = 0; i < nowned; i++)
        aredis__free(owned[i]);
    if (e != AREDIS_ERR_OK) {
        aredis__teardown(c, e, "cannot queue handshake");
        return -1;
    }
    c->hs_pending++;
    return 0;
}

/*
 * ROLE (expect_role): the server must be what the client was told it is.
 * Another role is a transient refusal (the sentinels' answer was stale, or
 * the primary came back demoted): the reconnect policy asks again, with
 * backoff. A user the ACL denies ROLE, or a server (a proxy) without it,
 * is not verified: the connect goes on, with a warning.
 */
static void role_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    if (err && (err->code != AREDIS_ERR_SERVER || !r)) return; /* teardown under way */
    if (err) {
        if (starts_with(r, "NOPERM") || starts_with(r, "ERR unknown command")) {
            char said[160];
            aredis__redact_message(r->str, r->len, said, sizeof said);
            aredis__log(AREDIS_LOG_WARN, "ROLE refused (%s): the server's role is not verified",
                        said);
        } else {
            fail(c, (const char *)data, r);
            return;
        }
    } else {
        const char *want = c->expect_role == AREDIS__ROLE_MASTER ? "master" : "slave";
        const aredis_reply *e = r->type == AREDIS_REPLY_ARRAY && r->elements ? r->element[0] : NULL;
        const char *got = e && e->str ? e->str : "?";
        if (strcmp(got, want) != 0) {
            char where[160], msg[256];
            snprintf(msg, sizeof msg, "ROLE: %s is a %.32s, not the %s wanted",
                     aredis__endpoint(c, where, sizeof where),
                     strcmp(got, "slave") == 0 ? "replica" : got,
                     c->expect_role == AREDIS__ROLE_MASTER ? "primary" : "replica");
            aredis__teardown(c, AREDIS_ERR_HANDSHAKE, msg);
            return;
        }
    }
    if (--c->hs_pending == 0) aredis__set_ready(c);
}

static int send_step(aredis_client *c, const char *name, int argc, const char *const *argv) {
    aredis_err e =
        aredis__submit(c, NULL, step_done, (void *)name, 1, argc, argv, NULL, NULL, NULL, NULL);
    if (e != AREDIS_ERR_OK) {
        aredis__teardown(c, e, "cannot queue handshake");
        return -1;
    }
    c->hs_pending++;
    return 0;
}

/* Everything after HELLO (or instead of it, for RESP2). */
static void send_tail(aredis_client *c, int with_auth_and_name) {
    char db[16];
    c->hs_pending = 0;
    if (with_auth_and_name && c->opt.password) {
        const char *a3[] = {"AUTH", c->opt.username, c->opt.password};
        const char *a2[] = {"AUTH", c->opt.password};
        if (c->opt.username ? send_step(c, "AUTH", 3, a3) : send_step(c, "AUTH", 2, a2)) return;
    }
    if (c->opt.db) {
        snprintf(db, sizeof db, "%d", c->opt.db);
        const char *a[] = {"SELECT", db};
        if (send_step(c, "SELECT", 2, a)) return;
    }
    if (with_auth_and_name && c->opt.client_name) {
        const char *a[] = {"CLIENT", "SETNAME", c->opt.client_name};
        if (send_step(c, "CLIENT SETNAME", 3, a)) return;
    }
    if (c->expect_role) {
        const char *a[] = {"ROLE"};
        if (aredis__submit(c, NULL, role_done, (void *)"ROLE", 1, 1, a, NULL, NULL, NULL, NULL) !=
            AREDIS_ERR_OK) {
            aredis__teardown(c, AREDIS_ERR_NOMEM, "cannot queue handshake");
            return;
        }
        c->hs_pending++;
    }
    if (c->readonly) {
        const char *a[] = {"READONLY"};
        if (send_step(c, "READONLY", 1, a)) return;
    }
    if (c->opt.cache && send_tracking(c)) return;
    if (c->opt.load_commands) {
        const char *a[] = {"COMMAND"};
        if (aredis__submit(c, NULL, commands_done, NULL, 1, 1, a, NULL, NULL, NULL, NULL) !=
            AREDIS_ERR_OK) {
            aredis__teardown(c, AREDIS_ERR_NOMEM, "cannot queue handshake");
            return;
        }
        c->hs_pending++;
    }
    if (c->hs_pending == 0 && with_auth_and_name) {
        /* RESP2 with nothing to send: PING once, so that a server wanting a
         * password (NOAUTH) or still loading fails the connect, not the
         * first user command. */
        const char *a[] = {"PING"};
        if (send_step(c, "PING", 1, a)) return;
    }
    if (c->hs_pending == 0) aredis__set_ready(c);
}

static void hello_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)data;
    if (err && (err->code != AREDIS_ERR_SERVER || !r)) return;
    if (!err) {
        c->proto = 3;
        send_tail(c, 0);
        return;
    }
    if (is_auth_error(r) || is_transient(r)) {
        fail(c, "HELLO", r);
        return;
    }
    /* A cache cannot work on RESP2 (aredis/cache.h): refuse, saying why. */
    if (c->opt.cache) {
        char said[160], msg[256];
        aredis__redact_message(r->str, r->len, said, sizeof said);
        snprintf(msg, sizeof msg,
                 "client-side caching needs RESP3, and the server refused HELLO 3: %s", said);
        aredis__teardown_refused(c, AREDIS_ERR_HANDSHAKE, msg);
        return;
    }
    /* No HELLO (Redis < 6) or no RESP3: speak RESP2. */
    aredis__log(AREDIS_LOG_DEBUG, "HELLO refused: falling back to RESP2");
    c->hs_fallback = 1;
    c->proto = 2;
    send_tail(c, 1);
}

void aredis__handshake_start(aredis_client *c) {
    c->state = AREDIS_STATE_HANDSHAKE;
    c->hs_fallback = 0;
    if (c->opt.protocol == 2) {
        c->proto = 2;
        send_tail(c, 1);
        return;
    }
    const char *argv[7];
    int argc = 0;
    argv[argc++] = "HELLO";
    argv[argc++] = "3";
    if (c->opt.password) {
        argv[argc++] = "AUTH";
        argv[argc++] = c->opt.username ? c->opt.username : "default";
        argv[argc++] = c->opt.password;
    }
    if (c->opt.client_name) {
        argv[argc++] = "SETNAME";
        argv[argc++] = c->opt.client_name;
    }
    aredis_err e = aredis__submit(c, NULL, hello_done, NULL, 1, argc, argv, NULL, NULL, NULL, NULL);
    if (e != AREDIS_ERR_OK) aredis__teardown(c, e, "cannot queue handshake");
}
