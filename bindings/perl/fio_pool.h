/*
 * fio_pool.h — the pool and WATCH halves of Future::IO::Redis's C core
 * (fio_pool.c; the XS entry points are in Pool.xsh).
 *
 * A connection lent by a pool is given to Perl as an ordinary pclient (so
 * every entry point of Redis.xs works on it) whose client belongs to the
 * pool: pconn_free() frees the record and never the client, which goes
 * back with aredis_pool_release().
 */
#ifndef FIO_POOL_H
#define FIO_POOL_H

#include "fio.h"

/* A pool from a hash of aredis_options fields (as pclient_new takes) and a
 * hash of pool fields (min_connections, max_connections, acquire_timeout_ms,
 * idle_timeout_ms, max_age_ms, health_check_after_ms). Croaks with aredis's
 * reason when the options are refused. */
aredis_pool *fpool_new(pTHX_ HV *client_opts, HV *pool_opts);

/* Acquire a connection for a Perl future. `pool` (a reference to the Perl
 * pool object) is kept until the acquire completes; then
 * Future::IO::Redis::Pool::_acquired(pool, future, client) gets the
 * connection, or the future fails with the acquire's error. */
void fpool_acquire(pTHX_ aredis_pool *p, SV *future, SV *pool);

/* The pool's stats as a new hash reference. */
SV *fpool_stats(pTHX_ aredis_pool *p);

/* The record of a borrowed connection (self: its Perl object, weakly). */
pclient *pconn_new(pTHX_ aredis_client *c, SV *self);
void pconn_free(pTHX_ pclient *pc);

/* The most words a command between WATCH and EXEC may have: aredis has no
 * argv form of aredis_tx_command(), so ftx_command_argv() builds a format
 * of that many "%b". */
#define FTX_MAX_WORDS 32

/* A command between WATCH and EXEC (aredis_tx_command) from an argv.
 * INVALID (with aredis_call_error() unset) for more than FTX_MAX_WORDS. */
aredis_err ftx_command_argv(aredis_tx *tx, aredis_reply_fn *cb, void *data, int argc,
                            const char *const *argv, const size_t *lens);

/* Die with the error object of a refusal (code: "AREDIS_ERR_INVALID"...)
 * whose reason is ours, not aredis_call_error()'s. */
void fio_refuse(pTHX_ const char *code, const char *detail);

#endif
