/*
 * fio_core.c — Future::IO::Redis's C core (the XS entry points are in
 * Redis.xs): aredis's client driven by a loop built on
 * Future::IO's primitives.
 *
 * THE LOOP. aredis asks its loop (an aredis_loop_vtable) to watch file
 * descriptors, arm timers and run deferred callbacks. Here each of those
 * becomes a call into Future::IO::Redis::Loop (Perl), which waits with
 * Future::IO: readiness of a handle (the implementation's ready_for_read /
 * ready_for_write), sleep. When such a future completes, the Perl side calls
 * back in (io_fire, timer_fire, run_defers, wake_fire), and aredis runs. So
 * aredis works on whatever event loop Future::IO is using, with no thread of
 * its own. One loop serves every client of the process (Future::IO is one
 * per process too).
 *
 * Cost control: a command does not touch Perl's loop side at all unless it
 * needs to. Deferred callbacks (aredis flushes writes in one) are queued here
 * and run from one Future::IO->sleep(0) per burst; timers keep their
 * deadline here and only ask Perl for a sleep when the deadline comes
 * earlier than the one already asked for.
 *
 * REPLIES become Perl values: strings (bytes), integers, doubles, undef for
 * nil, array refs, hash refs for RESP3 maps; an error reply inside an array
 * (a pipeline's, EXEC's) becomes a Future::IO::Redis::Error::Redis object.
 * A failed command fails its future through Future::IO::Redis::_fail, which
 * picks the error class from aredis's typed error.
 */
#include "fio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* ---- The loop ------------------------------------------------------------- */

typedef struct fl_defer {
    aredis_timer_fn *cb;
    void *arg;
    int armed;
    int dead; /* freed while queued: dropped when reached */
    struct fl_defer *next;
} fl_defer;

static aredis_loop *g_loop;
static fl_defer *g_dq_head, *g_dq_tail; /* armed defers, in arming order */
int g_kicked;                           /* a sleep(0) is pending in Perl */
int g_dispatch;                         /* inside io_fire / timer_fire / wake_fire (depth) */
int g_ended; /* global destruction: Perl's side of the loop may be gone */

uint64_t fl_now(void *ld) {
    (void)ld;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Call Future::IO::Redis::Loop::<name>(ptr, a, b): the Perl side of the loop. */
static int perl_loop_call(const char *name, void *ptr, IV a, NV b, int nargs) {
    dTHX;
    /* Objects freed during global destruction must not call into packages
     * Perl may have torn down already: their handles just go. */
    if (g_ended || PL_phase == PERL_PHASE_DESTRUCT) return 0;
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    mXPUSHu(PTR2UV(ptr));
    if (nargs > 1) mXPUSHi(a);
    if (nargs > 2) mXPUSHn(b);
    PUTBACK;
    call_pv(name, G_DISCARD | G_EVAL);
    SPAGAIN;
    int ok = !SvTRUE(ERRSV);
    if (!ok) warn("Future::IO::Redis: %s: %" SVf, name, SVfARG(ERRSV));
    FREETMPS;
    LEAVE;
    return ok;
}

/* Hand Perl's side of the loop (fn(ptr, fd)) a duplicate of fd to watch: its
 * handle may close what it owns without touching aredis's descriptor. Perl
 * owns the duplicate once its handle is open; when it is not (global
 * destruction, a failed open) it is closed here and 0 returned. */
static int perl_watch_dup(const char *fn, void *ptr, int fd) {
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0) return 0;
    if (!perl_loop_call(fn, ptr, dupfd, 0, 2)) {
        close(dupfd);
        return 0;
    }
    return 1;
}

static void *fl_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    (void)ld;
    fl_io *io = calloc(1, sizeof *io);
    if (!io) return NULL;
    io->fd = fd;
    io->cb = cb;
    io->arg = arg;
    if (!perl_watch_dup("Future::IO::Redis::Loop::_io_new", io, fd)) {
        free(io);
        return NULL;
    }
    return io;
}

static void fl_io_set(void *p, int events) {
    perl_loop_call("Future::IO::Redis::Loop::_io_set", p, events, 0, 2);
}

static void fl_io_free(void *p) {
    perl_loop_call("Future::IO::Redis::Loop::_io_free", p, 0, 0, 1);
    free(p);
}

static void *fl_timer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    (void)ld;
    fl_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cb = cb;
    t->arg = arg;
    return t;
}

void timer_ask(fl_timer *t, uint64_t now) {
    t->asked = t->deadline;
    NV secs = (NV)(t->deadline > now ? t->deadline - now : 0) / 1000.0;
    perl_loop_call("Future::IO::Redis::Loop::_timer_arm", t, 0, secs, 3);
}

static void fl_timer_arm(void *p, uint64_t ms) {
    fl_timer *t = p;
    uint64_t now = fl_now(NULL);
    t->armed = 1;
    t->deadline = now + ms;
    /* A sleep that ends no later is already asked for: it will look again. */
    if (!t->asked || t->deadline < t->asked) timer_ask(t, now);
}

static void fl_timer_cancel(void *p) { ((fl_timer *)p)->armed = 0; }

static void fl_timer_free(void *p) {
    fl_timer *t = p;
    if (t->asked) perl_loop_call("Future::IO::Redis::Loop::_timer_free", t, 0, 0, 1);
    free(t);
}

static void *fl_defer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    (void)ld;
    fl_defer *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->cb = cb;
    d->arg = arg;
    return d;
}

static void kick(void) {
    /* Inside an event's dispatch the defers run when it ends
     * (dispatch_end): no turn of the loop needed. */
    if (g_kicked || g_dispatch) return;
    g_kicked = 1;
    perl_loop_call("Future::IO::Redis::Loop::_kick", NULL, 0, 0, 1);
}

static void fl_defer_arm(void *p) {
    fl_defer *d = p;
    if (d->armed) return;
    d->armed = 1;
    d->next = NULL;
    if (g_dq_tail)
        g_dq_tail->next = d;
    else
        g_dq_head = d;
    g_dq_tail = d;
    kick();
}

static void fl_defer_free(void *p) {
    fl_defer *d = p;
    if (d->armed)
        d->dead = 1; /* unlinked and freed when the queue reaches it */
    else
        free(d);
}

/* An event's dispatch has ended: what its callbacks queued (writes of the
 * commands they issued) goes now, in one flush, not one loop turn later. */
static void dispatch_unwind(pTHX_ void *unused) {
    (void)unused;
    dispatch_end();
}

/* An event's dispatch begins: dispatch_end() runs when the caller's scope
 * ends, also when a die unwinds it (else g_dispatch would stay up and no
 * write would ever be kicked again). Call between ENTER and LEAVE. */
void dispatch_begin(pTHX) {
    g_dispatch++;
    SAVEDESTRUCTOR_X(dispatch_unwind, NULL);
}

void dispatch_end(void) {
    if (--g_dispatch == 0 && g_dq_head) run_defers();
}

/* Run the armed defers in arming order, those they arm included. */
void run_defers(void) {
    while (g_dq_head) {
        fl_defer *d = g_dq_head;
        g_dq_head = d->next;
        if (!g_dq_head) g_dq_tail = NULL;
        d->armed = 0;
        if (d->dead) {
            free(d);
            continue;
        }
        d->cb(d->arg);
    }
}

static int fl_run_once(void *ld, int block) {
    (void)ld;
    (void)block;
    run_defers();
    return 1;
}

static void fl_cleanup(void *ld) { (void)ld; }

static void *fl_wake_new(void *ld, aredis_timer_fn *cb, void *arg) {
    (void)ld;
    fl_wake *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        free(w);
        return NULL;
    }
    w->cb = cb;
    w->arg = arg;
    if (!perl_watch_dup("Future::IO::Redis::Loop::_wake_new", w, w->efd)) {
        close(w->efd);
        free(w);
        return NULL;
    }
    return w;
}

/* Any thread: an eventfd write is all it does. */
static void fl_wake_signal(void *p) {
    fl_wake *w = p;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(w->efd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
}

static void fl_wake_free(void *p) {
    fl_wake *w = p;
    perl_loop_call("Future::IO::Redis::Loop::_wake_free", w, 0, 0, 1);
    close(w->efd);
    free(w);
}

static const aredis_loop_vtable fl_vtable = {
    fl_io_new,     fl_io_set,    fl_io_free,     fl_timer_new,  fl_timer_arm, fl_timer_cancel,
    fl_timer_free, fl_defer_new, fl_defer_arm,   fl_defer_free, fl_run_once,  fl_now,
    fl_cleanup,    fl_wake_new,  fl_wake_signal, fl_wake_free,
};

aredis_loop *the_loop(void) {
    if (!g_loop) g_loop = aredis_loop_from_vtable(&fl_vtable, NULL);
    if (!g_loop) croak("Future::IO::Redis: cannot make the loop");
    return g_loop;
}

/* ---- Replies ---------------------------------------------------------------- */

static SV *error_object(pTHX_ const char *msg, size_t len) {
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    mXPUSHp(msg, len);
    PUTBACK;
    /* Never dies out of here: this runs inside aredis's reader. */
    int n = call_pv("Future::IO::Redis::_reply_error", G_SCALAR | G_EVAL);
    SPAGAIN;
    SV *e = n == 1 && !SvTRUE(ERRSV) ? newSVsv(POPs) : newSVpvn(msg, len);
    PUTBACK;
    FREETMPS;
    LEAVE;
    return e;
}

SV *reply_sv(pTHX_ const aredis_reply *r) {
    if (!r) return newSV(0);
    switch (r->type) {
    case AREDIS_REPLY_STRING:
    case AREDIS_REPLY_STATUS:
    case AREDIS_REPLY_BIGNUM:
    case AREDIS_REPLY_VERB:
        return newSVpvn(r->str ? r->str : "", r->len);
    case AREDIS_REPLY_ERROR:
        return error_object(aTHX_ r->str ? r->str : "", r->len);
    case AREDIS_REPLY_INTEGER:
        return newSViv((IV)r->integer);
    case AREDIS_REPLY_DOUBLE:
        return newSVnv(r->dval);
    case AREDIS_REPLY_BOOL:
        return newSViv(r->integer ? 1 : 0);
    case AREDIS_REPLY_NIL:
        return newSV(0);
    case AREDIS_REPLY_MAP:
    case AREDIS_REPLY_ATTR: {
        HV *hv = newHV();
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const aredis_reply *k = r->element[i];
            SV *ks = reply_sv(aTHX_ k);
            hv_store_ent(hv, ks, reply_sv(aTHX_ r->element[i + 1]), 0);
            SvREFCNT_dec(ks);
        }
        return newRV_noinc((SV *)hv);
    }
    default: { /* ARRAY, SET, PUSH */
        AV *av = newAV();
        if (r->elements) av_extend(av, (SSize_t)r->elements - 1);
        for (size_t i = 0; i < r->elements; i++)
            av_push(av, reply_sv(aTHX_ r->element[i]));
        return newRV_noinc((SV *)av);
    }
    }
}

/* ---- Completing futures ------------------------------------------------------ */

/* future->done(value) */
void future_done(pTHX_ SV *f, SV *value) {
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    XPUSHs(f);
    mXPUSHs(value);
    PUTBACK;
    call_method("done", G_DISCARD | G_EVAL);
    if (SvTRUE(ERRSV)) warn("Future::IO::Redis: a callback died: %" SVf, SVfARG(ERRSV));
    FREETMPS;
    LEAVE;
}

/* Future::IO::Redis::_fail(future, code name, detail, prefix, reply) */
void future_fail(pTHX_ SV *f, const aredis_error *err, const aredis_reply *r) {
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    XPUSHs(f);
    mXPUSHs(newSVpv(aredis_err_name(err->code), 0));
    mXPUSHs(newSVpv(err->detail ? err->detail : "", 0));
    mXPUSHs(newSVpv(err->prefix, 0));
    mXPUSHs(newSViv(aredis_err_is_connection(err->code)));
    if (r && r->type == AREDIS_REPLY_ERROR && r->str) mXPUSHs(newSVpvn(r->str, r->len));
    PUTBACK;
    call_pv("Future::IO::Redis::_fail", G_DISCARD | G_EVAL);
    if (SvTRUE(ERRSV)) warn("Future::IO::Redis: a callback died: %" SVf, SVfARG(ERRSV));
    FREETMPS;
    LEAVE;
}

/* The reply callback of every command: data is the future (a reference we
 * hold until now). */
void on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    dTHX;
    (void)c;
    SV *f = data;
    /* In global destruction the future may be gone already: just drop it. */
    if (!SvROK(f) || PL_phase == PERL_PHASE_DESTRUCT) {
        SvREFCNT_dec(f);
        return;
    }
    if (err)
        future_fail(aTHX_ f, err, r);
    else
        future_done(aTHX_ f, reply_sv(aTHX_ r));
    SvREFCNT_dec(f);
}

/* Throw a refusal at issue time as Future::IO::Redis::_refused(code, detail). */
void refused(pTHX_ aredis_err e) {
    dSP;
    const aredis_error *ce = aredis_call_error();
    PUSHMARK(SP);
    mXPUSHs(newSVpv(aredis_err_name(e), 0));
    mXPUSHs(newSVpv(ce && ce->detail ? ce->detail : aredis_strerror(e), 0));
    mXPUSHs(newSViv(aredis_err_is_connection(e)));
    PUTBACK;
    call_pv("Future::IO::Redis::_refused", G_DISCARD); /* dies */
}

/* The error object Future::IO::Redis::_error(code, detail, '', is_conn)
 * makes (what _refused dies with), as a new reference. */
SV *error_new(pTHX_ const char *code, SV *detail, int is_conn) {
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    mXPUSHs(newSVpv(code, 0));
    mXPUSHs(detail);
    mXPUSHs(newSVpvs(""));
    mXPUSHs(newSViv(is_conn));
    PUTBACK;
    /* Never dies: callers hold C resources (see ppipe_queue). A plain
     * string stands in if the error class cannot be made. */
    int n = call_pv("Future::IO::Redis::_error", G_SCALAR | G_EVAL);
    SPAGAIN;
    SV *e = n == 1 && !SvTRUE(ERRSV) ? newSVsv(POPs) : newSVpv(code, 0);
    PUTBACK;
    FREETMPS;
    LEAVE;
    return e;
}

/* The error object of a refusal (e) at issue time, as refused() dies with. */
SV *refused_error(pTHX_ aredis_err e) {
    const aredis_error *ce = aredis_call_error();
    return error_new(aTHX_ aredis_err_name(e),
                     newSVpv(ce && ce->detail ? ce->detail : aredis_strerror(e), 0),
                     aredis_err_is_connection(e));
}

/* One argument as bytes (*p, *len), argument i (from 1) of its command:
 * NULL, or a new error object (code AREDIS_ERR_INVALID) for undef and for a
 * string with characters above 0xFF (it has no bytes until the program
 * encodes it). *p stays valid while sv and the current temporaries do. */
SV *arg_bytes(pTHX_ SV *sv, int i, const char **p, size_t *len) {
    STRLEN l;
    if (!SvOK(sv))
        return error_new(aTHX_ "AREDIS_ERR_INVALID",
                         newSVpvf("Future::IO::Redis: argument %d is undef", i), 0);
    if (SvUTF8(sv)) {
        /* A copy, so the caller's string keeps its representation. */
        sv = sv_mortalcopy(sv);
        if (!sv_utf8_downgrade(sv, TRUE))
            return error_new(aTHX_ "AREDIS_ERR_INVALID",
                             newSVpvf("Future::IO::Redis: argument %d has wide characters (above "
                                      "0xFF): Redis stores bytes; encode it first "
                                      "(Encode::encode('UTF-8', $string))",
                                      i),
                             0);
    }
    *p = SvPVbyte(sv, l);
    *len = l;
    return NULL;
}

/* argv from a list of SVs, as bytes (arg_bytes: undef and wide characters
 * die with an error object). The pointers stay valid while the SVs and the
 * current temporaries do. */
void argv_fill(pTHX_ argv_buf *b, SV **svs, int n) {
    b->argv = b->stack_argv;
    b->lens = b->stack_lens;
    if (n > 16) {
        Newx(b->argv, n, const char *);
        Newx(b->lens, n, size_t);
        SAVEFREEPV(b->argv);
        SAVEFREEPV(b->lens);
    }
    for (int i = 0; i < n; i++) {
        SV *e = arg_bytes(aTHX_ svs[i], i + 1, &b->argv[i], &b->lens[i]);
        if (e) croak_sv(sv_2mortal(e));
    }
}

/* ---- Debug log ------------------------------------------------------------------ */

static pthread_t g_log_thread; /* Perl's: lines from any other go to fd 2 */

/* aredis's log handler while debug is on: each line to
 * Future::IO::Redis::_log(level, line), which warns it or hands it to the
 * program's logger. A die there is caught: it must not unwind through
 * aredis. */
static void fio_log(int level, const char *line, void *data) {
    (void)data;
    if (!pthread_equal(pthread_self(), g_log_thread) || g_ended) {
        char out[1100];
        int n = snprintf(out, sizeof out, "[REDIS %s] %s\n", aredis_log_level_name(level), line);
        if (n > 0) {
            ssize_t w = write(2, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
            (void)w;
        }
        return;
    }
    dTHX;
    if (PL_phase == PERL_PHASE_DESTRUCT) return;
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    mXPUSHs(newSVpv(aredis_log_level_name(level), 0));
    mXPUSHs(newSVpv(line, 0));
    PUTBACK;
    call_pv("Future::IO::Redis::_log", G_DISCARD | G_EVAL);
    FREETMPS;
    LEAVE;
}

void fio_set_debug(pTHX_ int on) {
    PERL_UNUSED_CONTEXT;
    g_log_thread = pthread_self();
    aredis_set_log_handler(on ? fio_log : NULL, NULL, AREDIS_LOG_DEBUG);
}

/* ---- Client callbacks into Perl ------------------------------------------------ */

/* fn(self, name[, code, detail, is_conn]): an event for the Perl object that
 * self weakly references, if it is still there. A strong reference is held
 * for the call: the handler may drop every other one (and with it the C
 * record that held self: not touched after the call). */
void perl_event(pTHX_ const char *fn, SV *self, const char *name, const aredis_error *err) {
    if (!self || !SvROK(self) || PL_phase == PERL_PHASE_DESTRUCT) return;
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    XPUSHs(sv_2mortal(newSVsv(self)));
    mXPUSHs(newSVpv(name, 0));
    if (err) {
        mXPUSHs(newSVpv(aredis_err_name(err->code), 0));
        mXPUSHs(newSVpv(err->detail ? err->detail : "", 0));
        mXPUSHs(newSViv(aredis_err_is_connection(err->code)));
    }
    PUTBACK;
    call_pv(fn, G_DISCARD | G_EVAL);
    SPAGAIN;
    if (SvTRUE(ERRSV)) warn("%s: %s handler died: %" SVf, fn, name, SVfARG(ERRSV));
    FREETMPS;
    LEAVE;
}

/* The client's events: Future::IO::Redis::_event(self, name, ...). */
static void client_event(aredis_client *c, const char *name, const aredis_error *err, void *data) {
    dTHX;
    (void)c;
    perl_event(aTHX_ "Future::IO::Redis::_event", ((pclient *)data)->self, name, err);
}

static void ev_connect(aredis_client *c, void *data) { client_event(c, "connect", NULL, data); }
static void ev_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    client_event(c, "disconnect", err, data);
}
static void ev_error(aredis_client *c, const aredis_error *err, void *data) {
    client_event(c, "error", err, data);
}

/* Options from a hash of aredis_options fields (Future::IO::Redis->new
 * maps the reference design's names onto these). Strings are copied by
 * aredis_client_new. */
static const char *opt_str(pTHX_ HV *h, const char *k) {
    SV **v = hv_fetch(h, k, (I32)strlen(k), 0);
    return v && SvOK(*v) ? SvPV_nolen(*v) : NULL;
}
static int opt_has(pTHX_ HV *h, const char *k) {
    SV **v = hv_fetch(h, k, (I32)strlen(k), 0);
    return v && SvOK(*v);
}
static NV opt_num(pTHX_ HV *h, const char *k) {
    SV **v = hv_fetch(h, k, (I32)strlen(k), 0);
    return v && SvOK(*v) ? SvNV(*v) : 0;
}

#define OPT_U32(field)                                                                             \
    if (opt_has(aTHX_ h, #field)) o.field = (uint32_t)opt_num(aTHX_ h, #field)
#define OPT_INT(field)                                                                             \
    if (opt_has(aTHX_ h, #field)) o.field = (int)opt_num(aTHX_ h, #field)
#define OPT_STR(field)                                                                             \
    if (opt_has(aTHX_ h, #field)) o.field = opt_str(aTHX_ h, #field)

void options_from_hv(pTHX_ HV *h, aredis_options *op) {
    aredis_options o = *op;
    OPT_STR(host);
    OPT_INT(port);
    OPT_STR(unix_path);
    OPT_INT(tls);
    OPT_STR(tls_ca_file);
    OPT_STR(tls_ca_path);
    OPT_STR(tls_cert_file);
    OPT_STR(tls_key_file);
    OPT_STR(tls_server_name);
    OPT_INT(tls_insecure_skip_verify);
    OPT_STR(username);
    OPT_STR(password);
    OPT_INT(db);
    OPT_STR(client_name);
    OPT_INT(protocol);
    OPT_U32(connect_timeout_ms);
    OPT_U32(request_timeout_ms);
    OPT_U32(dead_timeout_ms);
    OPT_INT(reconnect);
    OPT_U32(reconnect_delay_ms);
    OPT_U32(max_reconnect_delay_ms);
    if (opt_has(aTHX_ h, "reconnect_jitter"))
        o.reconnect_jitter = opt_num(aTHX_ h, "reconnect_jitter");
    OPT_U32(max_reconnect_attempts);
    OPT_INT(reconnect_on_auth_error);
    OPT_INT(queue_during_reconnect);
    if (opt_has(aTHX_ h, "max_queue_size"))
        o.max_queue_size = (size_t)opt_num(aTHX_ h, "max_queue_size");
    OPT_INT(wait_for_first_connect);
    OPT_INT(reconnect_in_child);
    OPT_STR(prefix);
    *op = o;
}

/* A client for the Perl object self (weakly referenced), with options from
 * the hash; croaks with aredis's reason when the options are refused. */
pclient *pclient_new(pTHX_ HV *opts, SV *self) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    options_from_hv(aTHX_ opts, &o);
    aredis_loop *loop = the_loop(); /* croaks: before anything is allocated */
    pclient *pc = calloc(1, sizeof *pc);
    if (!pc) croak("Future::IO::Redis: out of memory");
    pc->self = newSVsv(self);
    sv_rvweaken(pc->self);
    o.on_connect = ev_connect;
    o.on_disconnect = ev_disconnect;
    o.on_error = ev_error;
    o.cb_data = pc;
    pc->c = aredis_client_new(loop, &o);
    if (!pc->c) {
        const aredis_error *e = aredis_call_error();
        SvREFCNT_dec(pc->self);
        free(pc);
        croak("Future::IO::Redis: %s", e && e->detail ? e->detail : "invalid options");
    }
    return pc;
}

void pclient_free(pTHX_ pclient *pc) {
    pclient_detach_pipes(pc);
    /* The object is going (its DESTROY called this): no event handler may
     * run on it now, as the free's own disconnect report would. */
    SvREFCNT_dec(pc->self);
    pc->self = NULL;
    aredis_client_free(pc->c); /* pending commands fail with CANCELLED now */
    free(pc);
}

/* Die with the error of a client that is gone (its object freed or being
 * freed): Disconnected, AREDIS_ERR_CLOSED. */
void croak_closed(pTHX) {
    croak_sv(sv_2mortal(error_new(aTHX_ "AREDIS_ERR_CLOSED",
                                  newSVpvs("Future::IO::Redis: the client is closed"), 0)));
}
