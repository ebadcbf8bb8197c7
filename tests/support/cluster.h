/*
 * Test support: a Redis Cluster of real redis-server processes on free
 * loopback ports, made with `redis-cli --cluster create`, and a tiny
 * synchronous way to talk to any node (one blocking connection a command,
 * RESP2, the reply read with the library's own aredis_reader).
 *
 * Binaries are found as server.c finds redis-server: $REDIS_SERVER, the
 * usual places, $PATH; redis-cli is $REDIS_CLI, else the one next to the
 * server binary (valkey-cli next to a valkey-server), else the usual places
 * and $PATH. A missing one skips the test program (exit 77), or fails it
 * when CI is set. Nodes die with the test process (PR_SET_PDEATHSIG + the
 * core's atexit sweep), and their dirs go with them.
 *
 * Every wait here polls the nodes, bounded (30 s unless a timeout is
 * given), and fails the test with what it last saw when it runs out.
 */
#ifndef AREDIS_TS_CLUSTER_H
#define AREDIS_TS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "ts.h"

/* ---- One node, synchronously -------------------------------------------- */

/*
 * Send one command (argc arguments, argv[i] of lens[i] bytes; lens NULL
 * means strlen) to 127.0.0.1:port on a fresh connection and read its reply.
 * Nothing carries over from one command to the next: not a WAIT's writes
 * to count, a MULTI, a SELECT. Nothing authenticates either.
 * The reply (caller frees with aredis_reply_free; a server error is an
 * AREDIS_REPLY_ERROR reply), or NULL when there is none (refused, closed,
 * no answer within 10 s, a protocol error): then err (may be NULL) says why.
 */
aredis_reply *ts_node_command(int port, int argc, const char *const *argv, const size_t *lens,
                              char *err, size_t errlen);
/* The same with NUL-terminated arguments, the list ending in NULL:
 * ts_node_cmd(port, "CLUSTER", "INFO", (char *)NULL). */
aredis_reply *ts_node_cmd(int port, const char *arg0, ...) __attribute__((sentinel));
/* The value of `field` in INFO <section> of the node at port, copied to
 * out: 1, or 0 when the node did not answer or has no such field. */
int ts_node_info_field(int port, const char *section, const char *field, char *out, size_t outlen);

/* How many replicas the primary on port lists as state=online in INFO
 * replication (synced and acked: WAIT counts them); -1 when it did not
 * answer. */
int ts_node_online_replicas(int port);

/* ---- A cluster ---------------------------------------------------------- */

typedef struct ts_cluster ts_cluster;

#define TS_CLUSTER_SLOTS 16384

/*
 * Start primaries * (1 + replicas_per_primary) nodes (primaries >= 3: what
 * redis-cli --cluster create requires) with cluster-enabled yes, their own
 * nodes.conf, cluster-node-timeout 1000, no persistence, diskless sync
 * without delay, and the extra config lines `conf` (NULL-terminated, may be
 * NULL; no requirepass: nothing here authenticates), each on a free
 * 127.0.0.1 port whose bus port (port + 10000) is free too. Then
 * redis-cli --cluster create, and wait until every node says
 * cluster_state:ok, knows every node (none failing), covers all 16384 slots
 * in CLUSTER SLOTS, sees `primaries` primaries holding slots and the rest
 * as replicas, every replica's link to its primary is up and every primary
 * has its replicas online (a WAIT right after start counts them). Fails the
 * test (after logging the reason) if that does not happen within 30 s.
 */
ts_cluster *ts_cluster_start(int primaries, int replicas_per_primary, const char *const *conf);
/* Stop every node, remove their dirs, free. NULL ignored. */
void ts_cluster_stop(ts_cluster *c);

/* The number of nodes, primaries and replicas. */
int ts_cluster_nodes(const ts_cluster *c);
/* Node i's port (0 <= i < ts_cluster_nodes(c)). */
int ts_cluster_port(const ts_cluster *c, int i);
/* Node i's cluster node id (40 hex digits; it keeps it across restarts). */
const char *ts_cluster_node_id(const ts_cluster *c, int i);
/* 1 when node i was a primary once the cluster came up, 0 for a replica. */
int ts_cluster_is_primary(const ts_cluster *c, int i);
/* The index of the primary node i replicated once the cluster came up; -1
 * for a primary. */
int ts_cluster_primary_of(const ts_cluster *c, int i);
/* The index of the node on port, or -1. */
int ts_cluster_index_of_port(const ts_cluster *c, int port);
/* 1 while node i runs (not killed). */
int ts_cluster_is_alive(const ts_cluster *c, int i);

/* CLUSTER KEYSLOT key, asked of the first live node that answers. */
int ts_cluster_keyslot(const ts_cluster *c, const char *key);
/* The port of the primary serving slot, by the CLUSTER SLOTS of the first
 * live node that answers; -1 when no range has it (or no node answered). */
int ts_cluster_node_for_slot(const ts_cluster *c, int slot);

/*
 * SIGKILL node i and reap it (its dir stays, for a restart). The replicas
 * it had then (by its own CLUSTER NODES) are remembered for
 * ts_cluster_wait_failover().
 */
void ts_cluster_kill(ts_cluster *c, int i);
/*
 * Start node i again on its port, dir and nodes.conf, and wait until the
 * cluster is whole again: every live node in cluster_state:ok, covering all
 * slots, nobody flagged failing, every replica's link up (a primary that
 * was failed over comes back as a replica of the node that took its slots).
 */
void ts_cluster_restart(ts_cluster *c, int i);
/*
 * After ts_cluster_kill(c, killed) of a primary: wait up to timeout_ms until
 * one of its replicas has become a primary, and every live node is in
 * cluster_state:ok, covers all slots with no slot on a dead node, flags no
 * live node as failing, and every live replica's link is up. Returns the
 * promoted node's index; fails the test when that does not happen in time.
 */
int ts_cluster_wait_failover(ts_cluster *c, int killed, uint64_t timeout_ms);
/*
 * Move slot to the primary on to_port as the cluster docs describe:
 * CLUSTER SETSLOT <slot> IMPORTING on the target, MIGRATING on the source,
 * the keys moved with MIGRATE ... KEYS in batches of 100 (GETKEYSINSLOT)
 * until none is left, then SETSLOT <slot> NODE <target> on the target, the
 * source and every other primary; waits until every live node's CLUSTER
 * SLOTS names to_port for the slot. A no-op when to_port serves it already.
 */
void ts_cluster_migrate_slot(ts_cluster *c, int slot, int to_port);

/*
 * Wait up to timeout_ms until CLUSTER SHARDS, asked of every live node,
 * says health "online" for every node it lists. Redis 7.0 reports a node
 * "loading" while the asking node has no replication offset for it from
 * the cluster bus (replicas for a while after they synced, in some views
 * for longer), and a client reading from replicas rightly skips those.
 * 1 when so, 0 when not in time (the last view that was not is logged).
 */
int ts_cluster_wait_shards_online(ts_cluster *c, uint64_t timeout_ms);

/* ---- A TLS-only cluster --------------------------------------------------- */

/*
 * The files of a TLS-only cluster (absolute paths; copied at start):
 *   ca_file           tls-ca-cert-file: what every node verifies its peers
 *                     with, and what the fixture verifies the nodes with
 *   cert_file         tls-cert-file / tls-key-file: each node's certificate
 *   key_file          as a server
 *   client_cert_file  tls-client-cert-file / tls-client-key-file: what a
 *   client_key_file   node presents when it dials another (cluster bus,
 *                     replication; the bus always asks for one), and what
 *                     the fixture presents (redis-cli --cert/--key too).
 *                     NULL: the nodes present cert_file (it must then be
 *                     fit for client auth) and the fixture presents none.
 */
typedef struct ts_tls_files {
    const char *ca_file;
    const char *cert_file, *key_file;
    const char *client_cert_file, *client_key_file;
} ts_tls_files;

/*
 * One command over TLS, as ts_node_command() does over TCP: a fresh TLS
 * connection to 127.0.0.1:port verified against f->ca_file (the chain, not
 * the name), f's client certificate presented when it has one, the reply
 * read, everything within 10 s. The reply, or NULL and err says why (a
 * handshake failure in OpenSSL's words). SIGPIPE is ignored from the first
 * call on (a node that closes mid-write must not kill the test).
 */
aredis_reply *ts_node_command_tls(int port, const ts_tls_files *f, int argc,
                                  const char *const *argv, const size_t *lens, char *err,
                                  size_t errlen);
/* The same with NUL-terminated arguments, the list ending in NULL. */
aredis_reply *ts_node_cmd_tls(int port, const ts_tls_files *f, const char *arg0, ...)
    __attribute__((sentinel));

/*
 * ts_cluster_start() for a cluster that speaks TLS only: every node has
 * `port 0`, `tls-port` on a free port (its bus port, + 10000, free too),
 * `tls-cluster yes`, `tls-replication yes`, f's files, `tls-auth-clients
 * no`, then the `conf` lines (which may override any of it). Made with
 * `redis-cli --tls --cacert ... [--cert ... --key ...] --cluster create`,
 * and waited for over TLS until every node says cluster_state:ok, knows
 * every node, none failing and all connected, agrees on the owners of all
 * 16384 slots (CLUSTER SLOTS), sees `primaries` primaries with slots and
 * the rest as replicas, every replica's link is up and every primary has
 * its replicas online. Fails the test if not within 30 s; a server built
 * without TLS skips it (exit 77; fails under CI), as ts_tls_server_start()
 * does.
 *
 * ts_cluster_port(c, i) is node i's TLS port. The accessors, ts_cluster_stop()
 * and ts_cluster_kill() work on it; what asks the nodes something over TCP
 * does not (ts_cluster_keyslot, ts_cluster_node_for_slot, restart, failover,
 * migrate, shards_online): use the TLS forms below, or ts_node_cmd_tls().
 */
ts_cluster *ts_cluster_start_tls(int primaries, int replicas_per_primary, const ts_tls_files *f,
                                 const char *const *conf);
/* The files a TLS cluster was started with (a copy that lives as long as
 * the process); NULL for a cluster started by ts_cluster_start(). */
const ts_tls_files *ts_cluster_tls_files(const ts_cluster *c);
/* ts_cluster_node_for_slot() over TLS: the TLS port of the primary serving
 * slot, by the CLUSTER SLOTS of the first live node that answers; -1 when
 * none. */
int ts_cluster_tls_node_for_slot(const ts_cluster *c, int slot);
/* ts_cluster_keyslot() over TLS. */
int ts_cluster_tls_keyslot(const ts_cluster *c, const char *key);

#endif
