/*
 * Test support: a fault-injecting TCP proxy.
 *
 * The proxy runs in-process on its own thread (so it keeps forwarding while
 * the test's event loop is blocked or busy). It listens on a free 127.0.0.1
 * port and forwards every accepted connection to a loopback target; each
 * client connection gets its own outgoing connection to the target.
 *
 * Every mode change below is thread-safe and synchronous: the call returns
 * only after the proxy thread has applied it, so a test can rely on it at
 * once (e.g. when ts_proxy_close_all() returns, every connection that the
 * proxy had accepted is closed). Connections whose connect() to the proxy
 * has already returned in the caller are accepted before a mode change is
 * applied, so they are "current connections" for it.
 *
 * Forwarding details: non-blocking sockets, TCP_NODELAY on both sides, a
 * bounded buffer per direction (1 MiB; the proxy stops reading a side while
 * its buffer is full), partial writes handled, half-close propagated (EOF
 * from one side shuts down the write side of the other once its buffered
 * bytes are flushed; the pair is closed when both directions are done). A
 * socket error on either side (reset, write failure) closes the pair. If the
 * target refuses the outgoing connection, the client side is closed (the
 * client reads EOF). SIGPIPE is never raised (send with MSG_NOSIGNAL).
 *
 * Only loopback targets are allowed (127.0.0.0/8, ::1, "localhost").
 */
#ifndef AREDIS_TS_PROXY_H
#define AREDIS_TS_PROXY_H

#include <stddef.h>

#include "ts.h"

typedef struct ts_proxy ts_proxy;

/*
 * Start a proxy in front of target_host:target_port, in pass mode. The target
 * must be a numeric loopback address (127.0.0.0/8 or ::1) or "localhost";
 * anything else fails the test (cmocka assertion), as does any failure to
 * set up the listening socket or the thread. Never returns NULL.
 */
ts_proxy *ts_proxy_start(const char *target_host, int target_port);

/* The 127.0.0.1 port the proxy listens on (constant for its lifetime). */
int ts_proxy_port(const ts_proxy *p);

/*
 * Normal forwarding: clears blackhole, delay (chunks still queued are
 * released at once, in order), refuse (listens again) and an armed
 * cut_next_reply.
 */
void ts_proxy_pass(ts_proxy *p);

/*
 * Close both sides of every current connection with a FIN (the proxy
 * shuts down its write side, discards what is unread, then closes). Bytes
 * still queued in the proxy are dropped. New connections are still accepted
 * afterwards, in whatever mode is set.
 */
void ts_proxy_close_all(ts_proxy *p);

/* Like ts_proxy_close_all() but with a RST on both sides (SO_LINGER {1,0},
 * then close): the peers' next read/write fails with ECONNRESET. */
void ts_proxy_reset_all(ts_proxy *p);

/*
 * on: the link loses all traffic. New connections are still accepted (and
 * connected to the target), but nothing is forwarded in either direction:
 * bytes read from either side are DROPPED (not held), bytes already queued
 * in the proxy are dropped, and EOFs are not forwarded while it lasts.
 * off: forwarding resumes for the connections still open (a pending EOF is
 * then forwarded). Connections are never closed by the blackhole itself.
 */
void ts_proxy_blackhole(ts_proxy *p, int on);

/*
 * Forward every chunk ms milliseconds after the proxy read it (0 = none),
 * in both directions, keeping the order. Changing the delay never reorders
 * bytes: queued chunks are released no later than now + the new delay.
 */
void ts_proxy_delay(ts_proxy *p, unsigned ms);

/*
 * One-shot: the next chunk the proxy reads from a server (on any
 * connection) is cut: only its first half (len/2: at least 1 byte, less
 * than all) is forwarded to the client, then both sides of that connection
 * are closed (FIN). A 1-byte chunk cannot be cut that way: it is forwarded
 * whole and the cut stays armed for the next chunk. Bytes dropped by a
 * blackhole do not count as a chunk.
 */
void ts_proxy_cut_next_reply(ts_proxy *p);

/*
 * One-shot: the next chunk the proxy reads from a server (on any
 * connection) is forwarded with its last byte flipped — under TLS, a record
 * whose authentication tag no longer matches ("bad record mac"). Cleared by
 * ts_proxy_pass().
 */
void ts_proxy_corrupt_next_reply(ts_proxy *p);

/*
 * on: the listening socket is closed, so new connects get ECONNREFUSED
 * (connections already open keep working). off: listen again on the SAME
 * port (SO_REUSEADDR); fails the test if the port cannot be bound again.
 */
void ts_proxy_refuse(ts_proxy *p, int on);

/* Connections accepted so far (including ones whose connect() returned in
 * the caller but that the proxy thread had not picked up yet). */
size_t ts_proxy_accepted(const ts_proxy *p);

/* Connections currently open (a pair counts until both of its sockets are
 * closed by the proxy). */
size_t ts_proxy_open(const ts_proxy *p);

/* Close every connection (FIN) and the listening socket, join the thread,
 * free. NULL is ignored. */
void ts_proxy_stop(ts_proxy *p);

/* ---- The usual fault rig: a default server behind a proxy, and a loop ---- */

typedef struct ts_proxied {
    ts_server *srv;
    ts_proxy *px;
    aredis_loop *loop;
} ts_proxied;

/* Start a default redis-server, a proxy in front of it and a loop; returns
 * AREDIS_OPTIONS_INIT with the port set to the proxy's. */
aredis_options ts_proxied_start(ts_proxied *r);
/* Free c (NULL ignored), then the loop, the proxy and the server. */
void ts_proxied_stop(ts_proxied *r, aredis_client *c);

#endif
