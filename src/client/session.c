/*
 * Session state: what the commands users issued changed on the server's
 * side of this connection, beyond the replies they owe — a MULTI left open,
 * another database, another user. A pool asks before handing the
 * connection to its next user (features/pool.c); the handshake of every new
 * connection starts it afresh (conn_reset in client.c).
 *
 * Tracked at issue time, from the command's name: the classifier flags the
 * few names involved (AREDIS__CC_SESSION), so other commands pay nothing.
 */
#include <string.h>

#include "client/client_internal.h"
#include "client/feature.h"
#include "proto/cmdtable.h"

int aredis__db_number(const char *p, size_t n) {
    if (n == 0 || n > 9) return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

void aredis__session_note(aredis_client *c, const char *resp, size_t len) {
    aredis__arg a[2];
    long n = aredis__resp_args(resp, len, a, 2);
    if (n < 1) return;
    if (aredis__ieq(a[0].p, a[0].n, "MULTI")) {
        c->sess_multi = 1;
    } else if (aredis__ieq(a[0].p, a[0].n, "EXEC") || aredis__ieq(a[0].p, a[0].n, "DISCARD")) {
        c->sess_multi = 0;
    } else if (aredis__ieq(a[0].p, a[0].n, "SELECT")) {
        /* A SELECT the server refuses leaves the database as it was; one
         * that is not a number will be refused. Either way: dirty, and
         * the pool's SELECT of the configured database is harmless. */
        c->sess_db = n >= 2 ? aredis__db_number(a[1].p, a[1].n) : -1;
    } else if (aredis__ieq(a[0].p, a[0].n, "AUTH") || aredis__ieq(a[0].p, a[0].n, "HELLO")) {
        c->sess_auth = 1;
    }
}

void aredis__session_reset(aredis_client *c) {
    c->sess_multi = 0;
    c->sess_auth = 0;
    c->sess_db = c->opt.db;
}

unsigned aredis__session(const aredis_client *c) {
    unsigned s = 0;
    /* Timed-out commands still owe their replies too: the connection is
     * not the next user's until they have come. The client's own commands
     * (a health-check PING, a subscription replay) are nobody's. */
    if (c->user_pending || c->orphans) s |= AREDIS__SESS_OWED;
    if (c->blocking) s |= AREDIS__SESS_BLOCKING;
    if (c->sess_multi) s |= AREDIS__SESS_MULTI;
    if (c->reserved) s |= AREDIS__SESS_WATCH;
    if (aredis__pubsub_engaged(c, 1)) s |= AREDIS__SESS_SUBSCRIBED;
    if (c->sess_db != c->opt.db) s |= AREDIS__SESS_DB;
    if (c->sess_auth) s |= AREDIS__SESS_AUTH;
    return s;
}

int aredis__session_db(const aredis_client *c) { return c->sess_db; }
