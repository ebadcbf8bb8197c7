# Pool and WATCH entry points (Future::IO::Redis::Pool, and watch,
# watch_multi, unwatch of Future::IO::Redis), included by Redis.xs inside
# MODULE = Future::IO::Redis PACKAGE = Future::IO::Redis::_XS. The C is in
# fio_pool.c (fio_pool.h).

#include "fio_pool.h"

int
pool_available()
CODE:
    RETVAL = 1;
OUTPUT:
    RETVAL

UV
pool_new(HV *client_opts, HV *pool_opts)
CODE:
    RETVAL = PTR2UV(fpool_new(aTHX_ client_opts, pool_opts));
OUTPUT:
    RETVAL

void
pool_free(UV p)
CODE:
    aredis_pool_free(INT2PTR(aredis_pool *, p));

void
pool_acquire(UV p, SV *future, SV *pool)
CODE:
    fpool_acquire(aTHX_ INT2PTR(aredis_pool *, p), future, pool);

int
pool_release(UV p, UV c)
CODE:
    /* 1: given back; 0: not a connection of this pool acquired now. */
    RETVAL = aredis_pool_release(INT2PTR(aredis_pool *, p), INT2PTR(aredis_client *, c))
             == AREDIS_ERR_OK;
OUTPUT:
    RETVAL

void
pool_command(UV p, SV *future, ...)
CODE:
    int n = items - 2;
    if (n < 1) croak("Future::IO::Redis::Pool: no command");
    argv_buf b;
    argv_fill(aTHX_ &b, &ST(2), n);
    SV *f = newSVsv(future);
    aredis_err e = aredis_pool_command_argv(INT2PTR(aredis_pool *, p), on_reply, f, n, b.argv,
                                            b.lens);
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(f);
        refused(aTHX_ e);
    }

SV *
pool_stats(UV p)
CODE:
    RETVAL = fpool_stats(aTHX_ INT2PTR(aredis_pool *, p));
OUTPUT:
    RETVAL

UV
pconn_new(UV c, SV *self)
CODE:
    RETVAL = PTR2UV(pconn_new(aTHX_ INT2PTR(aredis_client *, c), self));
OUTPUT:
    RETVAL

void
pconn_free(UV pc)
CODE:
    pconn_free(aTHX_ INT2PTR(pclient *, pc));

UV
tx_new(UV pc)
CODE:
    aredis_tx *tx = aredis_tx_new((INT2PTR(pclient *, pc))->c);
    if (!tx) refused(aTHX_ aredis_call_error()->code);
    RETVAL = PTR2UV(tx);
OUTPUT:
    RETVAL

void
tx_free(UV tx)
CODE:
    /* Watching still: UNWATCH is sent and the reservation ends. */
    aredis_tx_free(INT2PTR(aredis_tx *, tx));

void
tx_discard(UV tx)
CODE:
    aredis_tx_discard(INT2PTR(aredis_tx *, tx));

void
tx_watch(UV tx, SV *future, ...)
CODE:
    int n = items - 2;
    if (n < 1) fio_refuse(aTHX_ "AREDIS_ERR_INVALID", "WATCH needs keys");
    argv_buf b;
    argv_fill(aTHX_ &b, &ST(2), n);
    SV *f = newSVsv(future);
    aredis_err e = aredis_tx_watch(INT2PTR(aredis_tx *, tx), on_reply, f, n, b.argv, b.lens);
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(f);
        refused(aTHX_ e);
    }

void
tx_command(UV tx, SV *future, ...)
CODE:
    /* A command now, on the watching connection, ahead of what its
     * reservation holds back. */
    int n = items - 2;
    if (n < 1) croak("Future::IO::Redis: no command");
    if (n > FTX_MAX_WORDS) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "a command between WATCH and EXEC has at most %d words (this one has %d)",
                 FTX_MAX_WORDS, n);
        fio_refuse(aTHX_ "AREDIS_ERR_INVALID", msg);
    }
    argv_buf b;
    argv_fill(aTHX_ &b, &ST(2), n);
    SV *f = newSVsv(future);
    aredis_err e = ftx_command_argv(INT2PTR(aredis_tx *, tx), on_reply, f, n, b.argv, b.lens);
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(f);
        refused(aTHX_ e);
    }

void
tx_exec(UV txp, SV *future, ...)
CODE:
    /* Queue the array refs given and send MULTI ... EXEC under the
     * transaction's WATCH. The transaction is empty (and not watching)
     * afterwards, or keeps what was queued when refused: the caller frees
     * it either way. */
    aredis_tx *tx = INT2PTR(aredis_tx *, txp);
    aredis_err e = AREDIS_ERR_OK;
    for (int i = 2; i < items && e == AREDIS_ERR_OK; i++) {
        SV *cmd = ST(i);
        if (!SvROK(cmd) || SvTYPE(SvRV(cmd)) != SVt_PVAV)
            fio_refuse(aTHX_ "AREDIS_ERR_INVALID", "a queued command is not an array ref");
        AV *av = (AV *)SvRV(cmd);
        int n = (int)(av_len(av) + 1);
        if (n < 1) fio_refuse(aTHX_ "AREDIS_ERR_INVALID", "a queued command is empty");
        ENTER;
        SAVETMPS;
        SV **svs;
        Newx(svs, n, SV *);
        SAVEFREEPV(svs);
        for (int k = 0; k < n; k++) {
            SV **el = av_fetch(av, k, 0);
            svs[k] = el ? *el : &PL_sv_undef;
        }
        argv_buf b;
        argv_fill(aTHX_ &b, svs, n);
        e = aredis_tx_queue_argv(tx, n, b.argv, b.lens);
        FREETMPS;
        LEAVE;
    }
    if (e != AREDIS_ERR_OK) refused(aTHX_ e);
    SV *f = newSVsv(future);
    e = aredis_tx_exec(tx, on_reply, f);
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(f);
        refused(aTHX_ e);
    }
