/*
 * fio_pool.c — Future::IO::Redis::Pool over aredis_pool, and the WATCH
 * helpers of Future::IO::Redis (the XS entry points are in Pool.xsh).
 *
 * THE POOL. Every connection is an aredis_client of the pool; an acquire
 * completes a Perl future through Future::IO::Redis::Pool::_acquired, which
 * wraps the client in a Perl object holding a borrowed pclient (pconn_new):
 * Redis.xs's entry points run on it unchanged, and freeing the record never
 * frees the client. Dirty-connection handling is aredis's own (a release
 * inside MULTI, after SELECT, while watching or subscribed is reset in place
 * or replaced before anyone else gets the connection).
 *
 * WATCH. aredis does WATCH through an aredis_tx, which reserves its
 * connection until EXEC or DISCARD; the reads in between go through
 * aredis_tx_command(), which has no argv form: ftx_command_argv() gives it
 * one with a format of "%b" words.
 */
#include "fio_pool.h"

#include <stdio.h>
#include <string.h>

/* ---- Options -------------------------------------------------------------- */

static int hv_num(pTHX_ HV *h, const char *k, NV *out) {
    SV **v = hv_fetch(h, k, (I32)strlen(k), 0);
    if (!v || !SvOK(*v)) return 0;
    *out = SvNV(*v);
    return 1;
}

aredis_pool *fpool_new(pTHX_ HV *client_opts, HV *pool_opts) {
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    options_from_hv(aTHX_ client_opts, &po.client);
    NV v;
    if (hv_num(aTHX_ pool_opts, "min_connections", &v)) po.min_connections = (unsigned)v;
    if (hv_num(aTHX_ pool_opts, "max_connections", &v)) po.max_connections = (unsigned)v;
    if (hv_num(aTHX_ pool_opts, "acquire_timeout_ms", &v)) po.acquire_timeout_ms = (uint32_t)v;
    if (hv_num(aTHX_ pool_opts, "idle_timeout_ms", &v)) po.idle_timeout_ms = (uint32_t)v;
    if (hv_num(aTHX_ pool_opts, "max_age_ms", &v)) po.max_age_ms = (uint32_t)v;
    if (hv_num(aTHX_ pool_opts, "health_check_after_ms", &v))
        po.health_check_after_ms = (uint32_t)v;
    aredis_pool *p = aredis_pool_new(the_loop(), &po);
    if (!p) {
        const aredis_error *e = aredis_call_error();
        croak("Future::IO::Redis::Pool: %s", e && e->detail ? e->detail : "invalid options");
    }
    return p;
}

/* ---- Acquire ---------------------------------------------------------------- */

typedef struct pacquire {
    SV *future;
    SV *pool;
} pacquire;

static void on_acquired(aredis_pool *pool, aredis_client *c, const aredis_error *err, void *data) {
    dTHX;
    pacquire *a = data;
    if (err) {
        future_fail(aTHX_ a->future, err, NULL);
    } else {
        dSP;
        ENTER;
        SAVETMPS;
        PUSHMARK(SP);
        XPUSHs(a->pool);
        XPUSHs(a->future);
        mXPUSHu(PTR2UV(c));
        PUTBACK;
        call_pv("Future::IO::Redis::Pool::_acquired", G_DISCARD | G_EVAL);
        if (SvTRUE(ERRSV)) {
            /* Nobody took it: give it back rather than leak it. */
            warn("Future::IO::Redis::Pool: acquire: %" SVf, SVfARG(ERRSV));
            aredis_pool_release(pool, c);
        }
        FREETMPS;
        LEAVE;
    }
    SvREFCNT_dec(a->future);
    SvREFCNT_dec(a->pool);
    free(a);
}

void fpool_acquire(pTHX_ aredis_pool *p, SV *future, SV *pool) {
    pacquire *a = calloc(1, sizeof *a);
    if (!a) croak("Future::IO::Redis::Pool: out of memory");
    a->future = newSVsv(future);
    a->pool = newSVsv(pool);
    aredis_err e = aredis_pool_acquire(p, on_acquired, a);
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(a->future);
        SvREFCNT_dec(a->pool);
        free(a);
        refused(aTHX_ e);
    }
}

/* ---- Stats ------------------------------------------------------------------ */

SV *fpool_stats(pTHX_ aredis_pool *p) {
    aredis_pool_stats s;
    aredis_pool_get_stats(p, &s);
    HV *hv = newHV();
#define PST(name, val) hv_stores(hv, name, newSVuv((UV)(val)))
    /* The reference design's names... */
    PST("active", s.in_use);
    PST("idle", s.idle);
    PST("waiting", s.waiting);
    PST("total", s.total);
    PST("destroyed", s.discarded);
    /* ...and aredis's. */
    PST("in_use", s.in_use);
    PST("opening", s.opening);
    PST("checking", s.checking);
    PST("created", s.created);
    PST("discarded", s.discarded);
    PST("connect_failures", s.connect_failures);
    PST("acquires", s.acquires);
    PST("commands", s.commands);
    PST("timeouts", s.timeouts);
    PST("resets", s.resets);
    PST("health_checks", s.health_checks);
    PST("health_check_failures", s.health_check_failures);
#undef PST
    return newRV_noinc((SV *)hv);
}

/* ---- Borrowed connections ------------------------------------------------------ */

pclient *pconn_new(pTHX_ aredis_client *c, SV *self) {
    pclient *pc = calloc(1, sizeof *pc);
    if (!pc) croak("Future::IO::Redis::Pool: out of memory");
    pc->c = c;
    pc->self = newSVsv(self);
    sv_rvweaken(pc->self);
    return pc;
}

void pconn_free(pTHX_ pclient *pc) {
    pclient_detach_pipes(pc);
    SvREFCNT_dec(pc->self);
    free(pc);
}

void fio_refuse(pTHX_ const char *code, const char *detail) {
    dSP;
    PUSHMARK(SP);
    mXPUSHs(newSVpv(code, 0));
    mXPUSHs(newSVpv(detail, 0));
    mXPUSHs(newSViv(0));
    PUTBACK;
    call_pv("Future::IO::Redis::_refused", G_DISCARD); /* dies */
}

/* ---- Commands between WATCH and EXEC ------------------------------------------------ */

#define A2(i) w[i], l[i]
#define A8(i) A2(i), A2(i + 1), A2(i + 2), A2(i + 3), A2(i + 4), A2(i + 5), A2(i + 6), A2(i + 7)

aredis_err ftx_command_argv(aredis_tx *tx, aredis_reply_fn *cb, void *data, int argc,
                            const char *const *argv, const size_t *lens) {
    if (argc < 1 || argc > FTX_MAX_WORDS) return AREDIS_ERR_INVALID;
    const char *w[FTX_MAX_WORDS] = {0};
    size_t l[FTX_MAX_WORDS] = {0};
    char fmt[FTX_MAX_WORDS * 3 + 1];
    char *f = fmt;
    for (int i = 0; i < argc; i++) {
        /* An empty word is "" (a NULL pointer is refused by %b). */
        w[i] = argv[i] ? argv[i] : "";
        l[i] = lens[i];
        memcpy(f, i ? " %b" : "%b", i ? 3 : 2);
        f += i ? 3 : 2;
    }
    *f = '\0';
    /* The words past argc are passed too and never read: the format stops
     * at argc (extra variadic arguments are allowed). */
#if FTX_MAX_WORDS != 32
#error "ftx_command_argv passes exactly 32 words"
#endif
    return aredis_tx_command(tx, cb, data, fmt, A8(0), A8(8), A8(16), A8(24));
}
