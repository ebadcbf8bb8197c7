/*
 * Redis.xs — Future::IO::Redis's XS entry points. The C they call is in
 * fio_core.c (fio.h); the subscription and pool entry points are in
 * Subscription.xsh and Pool.xsh.
 */
#include "fio.h"

/* batch_exec's pipeline or transaction, freed by the savestack. */
typedef struct batch_hold {
    aredis_tx *tx;
    aredis_pipeline *p;
} batch_hold;

static void batch_hold_free(pTHX_ void *v) {
    batch_hold *h = v;
    aredis_tx_free(h->tx);
    aredis_pipeline_free(h->p);
}

MODULE = Future::IO::Redis    PACKAGE = Future::IO::Redis::_XS

PROTOTYPES: DISABLE

void
io_fire(UV ptr, int events)
CODE:
    fl_io *io = INT2PTR(fl_io *, ptr);
    ENTER;
    dispatch_begin(aTHX);
    io->cb(io->arg, events);
    LEAVE;

void
timer_fire(UV ptr)
CODE:
    fl_timer *t = INT2PTR(fl_timer *, ptr);
    t->asked = 0;
    ENTER;
    dispatch_begin(aTHX);
    if (t->armed) {
        uint64_t now = fl_now(NULL);
        if (now >= t->deadline) {
            t->armed = 0;
            t->cb(t->arg);
        } else {
            timer_ask(t, now);
        }
    }
    LEAVE;

void
run_defers()
CODE:
    g_kicked = 0;
    run_defers();

void
global_end()
CODE:
    g_ended = 1;

void
wake_fire(UV ptr)
CODE:
    fl_wake *w = INT2PTR(fl_wake *, ptr);
    uint64_t n;
    while (read(w->efd, &n, sizeof n) > 0) {}
    ENTER;
    dispatch_begin(aTHX);
    w->cb(w->arg);
    LEAVE;

UV
client_new(HV *opts, SV *self)
CODE:
    RETVAL = PTR2UV(pclient_new(aTHX_ opts, self));
OUTPUT:
    RETVAL

void
client_free(UV ptr)
CODE:
    pclient_free(aTHX_ INT2PTR(pclient *, ptr));

void
client_connect(UV ptr)
CODE:
    pclient *pc = INT2PTR(pclient *, ptr);
    aredis_err e = aredis_client_connect(pc->c);
    if (e != AREDIS_ERR_OK && e != AREDIS_ERR_INVALID) refused(aTHX_ e);

void
client_disconnect(UV ptr)
CODE:
    if (ptr) aredis_client_disconnect((INT2PTR(pclient *, ptr))->c);

void
client_close(UV ptr)
CODE:
    if (ptr) aredis_client_close((INT2PTR(pclient *, ptr))->c);

const char *
client_state(UV ptr)
CODE:
    RETVAL = ptr ? aredis_state_name(aredis_client_state((INT2PTR(pclient *, ptr))->c)) : "closed";
OUTPUT:
    RETVAL

void
command(UV ptr, SV *future, ...)
CODE:
    pclient *pc = INT2PTR(pclient *, ptr);
    if (!pc) croak_closed(aTHX);
    int n = items - 2;
    if (n < 1) croak("Future::IO::Redis: no command");
    argv_buf b;
    argv_fill(aTHX_ &b, &ST(2), n);
    SV *f = newSVsv(future);
    aredis_err e = aredis_command_argv(pc->c, on_reply, f, n, b.argv, b.lens);
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(f);
        refused(aTHX_ e);
    }

void
batch_exec(UV ptr, SV *future, int is_tx, ...)
CODE:
    /* A pipeline (is_tx 0) or a MULTI/EXEC transaction (1) of the array
     * refs given: one write, one reply (an array). */
    pclient *pc = INT2PTR(pclient *, ptr);
    if (!pc) croak_closed(aTHX);
    /* Freed when this scope ends, also when a bad argument croaks out of
     * it (argv_fill) or the exec is refused. */
    ENTER;
    batch_hold *h;
    Newxz(h, 1, batch_hold);
    SAVEFREEPV(h);
    SAVEDESTRUCTOR_X(batch_hold_free, h);
    if (is_tx)
        h->tx = aredis_tx_new(pc->c);
    else
        h->p = aredis_pipeline_new(pc->c);
    aredis_tx *tx = h->tx;
    aredis_pipeline *p = h->p;
    if (!p && !tx) refused(aTHX_ aredis_call_error()->code);
    aredis_err e = AREDIS_ERR_OK;
    for (int i = 3; i < items && e == AREDIS_ERR_OK; i++) {
        SV *cmd = ST(i);
        if (!SvROK(cmd) || SvTYPE(SvRV(cmd)) != SVt_PVAV) {
            e = AREDIS_ERR_INVALID;
            break;
        }
        AV *av = (AV *)SvRV(cmd);
        int n = (int)(av_len(av) + 1);
        if (n < 1) {
            e = AREDIS_ERR_INVALID;
            break;
        }
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
        e = is_tx ? aredis_tx_queue_argv(tx, n, b.argv, b.lens)
                  : aredis_pipeline_argv(p, n, b.argv, b.lens);
        FREETMPS;
        LEAVE;
    }
    SV *f = NULL;
    if (e == AREDIS_ERR_OK) {
        f = newSVsv(future);
        e = is_tx ? aredis_tx_exec(tx, on_reply, f) : aredis_pipeline_exec(p, on_reply, f);
    }
    if (e != AREDIS_ERR_OK) {
        if (f) SvREFCNT_dec(f);
        refused(aTHX_ e);
    }
    LEAVE;

void
pipe_attach(SV *self, UV ptr)
CODE:
    /* ptr 0: a client already gone (the pipeline only fails). */
    ppipe_attach(aTHX_ self, INT2PTR(pclient *, ptr));

void
pipe_command(SV *self, ...)
PPCODE:
    ppipe_queue(aTHX_ ppipe_of(aTHX_ self), 0, NULL, NULL, &ST(1), items - 1);
    XSRETURN(1); /* the pipeline: calls chain */

UV
pipe_count(SV *self)
CODE:
    RETVAL = (UV)ppipe_count(ppipe_of(aTHX_ self));
OUTPUT:
    RETVAL

SV *
pipe_exec(SV *self, SV *future, SV *watching)
CODE:
    RETVAL = ppipe_exec(aTHX_ ppipe_of(aTHX_ self), future, SvTRUE(watching));
OUTPUT:
    RETVAL

SV *
pipe_method(...)
CODE:
    /* Commands->install's maker: the method of a command (its words). */
    RETVAL = ppipe_method(aTHX_ &ST(0), items);
OUTPUT:
    RETVAL

void
client_detach_pipes(UV ptr)
CODE:
    pclient_detach_pipes(INT2PTR(pclient *, ptr));

void
client_stats(UV ptr)
PPCODE:
    aredis_client_stats st;
    aredis_client_get_stats((INT2PTR(pclient *, ptr))->c, &st);
    HV *hv = newHV();
    hv_stores(hv, "commands", newSVuv((UV)st.commands));
    hv_stores(hv, "replies", newSVuv((UV)st.replies));
    hv_stores(hv, "timeouts", newSVuv((UV)st.timeouts));
    hv_stores(hv, "connects", newSVuv((UV)st.connects));
    hv_stores(hv, "write_calls", newSVuv((UV)st.write_calls));
    hv_stores(hv, "read_calls", newSVuv((UV)st.read_calls));
    hv_stores(hv, "bytes_in", newSVuv((UV)st.bytes_in));
    hv_stores(hv, "bytes_out", newSVuv((UV)st.bytes_out));
    hv_stores(hv, "pending", newSVuv((UV)aredis_client_pending((INT2PTR(pclient *, ptr))->c)));
    mXPUSHs(newRV_noinc((SV *)hv));

const char *
version()
CODE:
    RETVAL = aredis_version();
OUTPUT:
    RETVAL

SV *
uri_parse(const char *uri)
CODE:
    aredis_uri *u = NULL;
    char err[256];
    if (aredis_uri_parse(uri, &u, err, sizeof err) != AREDIS_ERR_OK)
        croak("Future::IO::Redis: bad uri: %s", err);
    HV *hv = newHV();
    RETVAL = newRV_noinc((SV *)hv);
    if (aredis_uri_unix_path(u))
        hv_stores(hv, "unix_path", newSVpv(aredis_uri_unix_path(u), 0));
    else {
        hv_stores(hv, "host", newSVpv(aredis_uri_host(u), 0));
        hv_stores(hv, "port", newSViv(aredis_uri_port(u)));
    }
    if (aredis_uri_username(u)) hv_stores(hv, "username", newSVpv(aredis_uri_username(u), 0));
    if (aredis_uri_password(u)) hv_stores(hv, "password", newSVpv(aredis_uri_password(u), 0));
    if (aredis_uri_db(u)) hv_stores(hv, "db", newSViv(aredis_uri_db(u)));
    if (aredis_uri_is_tls(u)) hv_stores(hv, "tls", newSViv(1));
    /* The query's settings: what aredis_uri_apply() changes in options
     * whose fields start unset. */
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.client_name = NULL;
    o.protocol = 0;
    o.connect_timeout_ms = UINT32_MAX;
    o.request_timeout_ms = UINT32_MAX;
    aredis_uri_apply(u, &o);
    if (o.client_name) hv_stores(hv, "client_name", newSVpv(o.client_name, 0));
    if (o.protocol) hv_stores(hv, "protocol", newSViv(o.protocol));
    if (o.connect_timeout_ms != UINT32_MAX)
        hv_stores(hv, "connect_timeout_ms", newSVuv(o.connect_timeout_ms));
    if (o.request_timeout_ms != UINT32_MAX)
        hv_stores(hv, "request_timeout_ms", newSVuv(o.request_timeout_ms));
    aredis_uri_free(u);
OUTPUT:
    RETVAL

void
set_debug(int on)
CODE:
    /* aredis's own log (credentials always <redacted>) to
     * Future::IO::Redis::_log. */
    fio_set_debug(aTHX_ on);

INCLUDE: Subscription.xsh

INCLUDE: Pool.xsh
