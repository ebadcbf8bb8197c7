/*
 * Test support: a Sentinel setup of real processes on free loopback ports:
 * one primary, one replica of it, and N sentinels watching the primary as
 * "mymaster" (TS_SENTINEL_MASTER). The sentinels are the server binary run
 * with --sentinel ($REDIS_SERVER, else redis-server as server.c finds it:
 * what Debian's redis-sentinel is a link to), each in its own dir with its
 * own config file, which it rewrites. A missing binary skips the test
 * program (exit 77), or fails it when CI is set. Everything dies with the
 * test process (PR_SET_PDEATHSIG + atexit sweeps).
 *
 * ts_node_cmd() and friends (cluster.h) talk to any of these processes.
 */
#ifndef AREDIS_TS_SENTINEL_H
#define AREDIS_TS_SENTINEL_H

#include <stdint.h>

#include "cluster.h"
#include "ts.h"

#define TS_SENTINEL_MASTER "mymaster"

typedef struct ts_sentinel ts_sentinel;

/*
 * Start the primary, the replica (replicaof the primary; waits until its
 * link is up), then nsentinels sentinels (1..16) with
 *   sentinel monitor mymaster 127.0.0.1 <primary> <quorum: 2, 1 for one sentinel>
 *   sentinel down-after-milliseconds mymaster 1000
 *   sentinel failover-timeout mymaster 5000
 * and wait until every sentinel names the primary (SENTINEL
 * get-master-addr-by-name), knows the replica with its link up (SENTINEL
 * replicas) and the other sentinels (SENTINEL sentinels), none of them
 * flagged down or disconnected. Fails the test with the reason if that does
 * not happen within 30 s.
 */
ts_sentinel *ts_sentinel_start(int nsentinels);
/*
 * The same with passwords (NULL: none): `sentinel_pass` is every sentinel's
 * requirepass (they also use it with each other), `node_pass` the
 * primary's and the replica's requirepass and masterauth, and the
 * sentinels' auth-pass for mymaster. The fixture's own probes authenticate.
 */
ts_sentinel *ts_sentinel_start_auth(int nsentinels, const char *sentinel_pass,
                                    const char *node_pass);
/* Stop the sentinels, then the servers; remove their dirs, free. NULL
 * ignored. */
void ts_sentinel_stop(ts_sentinel *s);

/* The port of the server started as primary, and as replica. */
int ts_sentinel_primary_port(const ts_sentinel *s);
int ts_sentinel_replica_port(const ts_sentinel *s);
/* The number of sentinels, and sentinel i's port. */
int ts_sentinel_count(const ts_sentinel *s);
int ts_sentinel_port(const ts_sentinel *s, int i);

/* The primary's port as a majority of the sentinels name it now
 * (get-master-addr-by-name), or -1 when no majority agrees. */
int ts_sentinel_master_port(const ts_sentinel *s);

/* SIGKILL the server started as primary, and reap it (its dir stays). */
void ts_sentinel_kill_primary(ts_sentinel *s);
/* Start it again on its port and config; waits until it answers PING
 * (after a failover the sentinels turn it into a replica, in their time). */
void ts_sentinel_restart_primary(ts_sentinel *s);
/*
 * After ts_sentinel_kill_primary(): wait up to timeout_ms until a majority
 * of the sentinels name the replica as the primary and the replica says
 * role:master. Fails the test when that does not happen in time.
 */
void ts_sentinel_wait_failover(ts_sentinel *s, uint64_t timeout_ms);

/*
 * A fake sentinel, in-process, for what a real one cannot be made to do:
 * name any address, stay silent, answer late, publish any +switch-master
 * message, drop its subscribers. It listens on a free 127.0.0.1 port and
 * serves every connection at once (a thread of its own), RESP2 or RESP3
 * (HELLO 3). It answers HELLO, AUTH, CLIENT, SELECT, PING, ROLE (sentinel),
 * SENTINEL get-master-addr-by-name <name> (the address set, or nil when
 * none is set or the name is not its own), SENTINEL replicas (empty) and
 * SUBSCRIBE; anything else gets an error. Any failure fails the test.
 */
typedef struct ts_fsent ts_fsent;

/* Start one that monitors `master_name` (NULL: TS_SENTINEL_MASTER), with
 * no address set (it answers nil). */
ts_fsent *ts_fsent_start(const char *master_name);
int ts_fsent_port(const ts_fsent *f);
/* The address get-master-addr-by-name answers, as given (any text: a bad
 * port too); host NULL: nil. */
void ts_fsent_set_master(ts_fsent *f, const char *host, const char *port);
/* The same for 127.0.0.1:port. */
void ts_fsent_set_master_port(ts_fsent *f, int port);
/* 1: SENTINEL commands are read and never answered. */
void ts_fsent_set_silent(ts_fsent *f, int on);
/* Answers to SENTINEL commands (and all that follows them on their
 * connection) held back ms milliseconds; 0: at once. */
void ts_fsent_set_delay(ts_fsent *f, unsigned ms);
/* Publish payload on +switch-master to every subscriber: how many. */
int ts_fsent_publish(ts_fsent *f, const char *payload);
/* Close the subscribers' connections (shutdown: a FIN): how many. */
int ts_fsent_kill_subscribers(ts_fsent *f);
/* SENTINEL commands received so far; subscribers and connections open. */
unsigned ts_fsent_lookups(ts_fsent *f);
unsigned ts_fsent_subscribers(ts_fsent *f);
unsigned ts_fsent_connections(ts_fsent *f);
/* Stop the thread, close everything, free. NULL ignored. */
void ts_fsent_stop(ts_fsent *f);

#endif
