/*
 * fio.h — what the XS files of Future::IO::Redis share (fio_core.c): the
 * loop on Future::IO, replies as Perl values, futures completed from aredis
 * callbacks, argument vectors, the client record.
 */
#ifndef FIO_H
#define FIO_H

#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#include <aredis/aredis.h>

typedef struct ppipe ppipe;

/* A client and the (weak) reference to its Perl object, for events; the
 * pipelines made on it (fio_pipe.c), detached when it goes. */
typedef struct pclient {
    aredis_client *c;
    SV *self;
    ppipe *pipes;
} pclient;

/* The loop's handles, for the XS entry points Perl calls back. */
typedef struct fl_io {
    int fd;
    aredis_io_fn *cb;
    void *arg;
} fl_io;

typedef struct fl_timer {
    aredis_timer_fn *cb;
    void *arg;
    int armed;
    uint64_t deadline; /* when armed */
    uint64_t asked;    /* the deadline of the sleep Perl holds; 0: none */
} fl_timer;

typedef struct fl_wake {
    aredis_timer_fn *cb;
    void *arg;
    int efd;
} fl_wake;

/* argv from Perl values (bytes); the pointers live as long as the SVs. */
typedef struct argv_buf {
    const char *stack_argv[16];
    size_t stack_lens[16];
    const char **argv;
    size_t *lens;
} argv_buf;

/* The one loop of the process (made on first use; croaks on failure). */
aredis_loop *the_loop(void);
uint64_t fl_now(void *ld);
void timer_ask(fl_timer *t, uint64_t now);
void run_defers(void);
extern int g_kicked;
extern int g_dispatch;
void dispatch_end(void);
void dispatch_begin(pTHX);
/* Die with the error object of a client that is gone (CLOSED). */
void croak_closed(pTHX);
extern int g_ended;

/* A reply as a Perl value (a new reference). */
SV *reply_sv(pTHX_ const aredis_reply *r);
/* The reply callback for every future-returning call: data is a new
 * reference to the future (dropped here). */
void on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);
void future_done(pTHX_ SV *f, SV *value);
void future_fail(pTHX_ SV *f, const aredis_error *err, const aredis_reply *r);
/* Die with the Perl error object of a refusal at issue time (e). */
void refused(pTHX_ aredis_err e);
/* Fill b from n SVs; croaks on undef. Uses the savestack (call in a scope). */
void argv_fill(pTHX_ argv_buf *b, SV **svs, int n);
/* Argument i (from 1) as bytes: NULL, or a new error object (undef, wide
 * characters). */
SV *arg_bytes(pTHX_ SV *sv, int i, const char **p, size_t *len);
/* The error object Future::IO::Redis::_error makes (a new reference); detail
 * is taken over. */
SV *error_new(pTHX_ const char *code, SV *detail, int is_conn);
/* The error object of a refusal at issue time (what refused() dies with). */
SV *refused_error(pTHX_ aredis_err e);
void options_from_hv(pTHX_ HV *h, aredis_options *o);
pclient *pclient_new(pTHX_ HV *opts, SV *self);
/* fn(self, name[, code, detail, is_conn]) for the object self weakly
 * references, if it is still alive; a handler that dies is warned about. */
void perl_event(pTHX_ const char *fn, SV *self, const char *name, const aredis_error *err);
/* on: aredis's log, DEBUG and up, to Future::IO::Redis::_log; off: back to
 * aredis's default (silent unless AREDIS_DEBUG=1). */
void fio_set_debug(pTHX_ int on);
void pclient_free(pTHX_ pclient *pc);

/* Pipelines (fio_pipe.c): an aredis_pipeline in ext magic on the
 * Future::IO::Redis::Pipeline object's hash, freed with it. */
/* Attach one to the object self (a hash ref) on pc (NULL: one that fails). */
void ppipe_attach(pTHX_ SV *self, pclient *pc);
/* The pipeline of self; croaks when it has none. */
ppipe *ppipe_of(pTHX_ SV *self);
/* Queue nw words (w, wl) followed by the nargs SVs; never dies: an error is
 * kept, and execute fails with it. */
void ppipe_queue(pTHX_ ppipe *pp, int nw, const char *const *w, const size_t *wl, SV **args,
                 int nargs);
size_t ppipe_count(const ppipe *pp);
/* Execute: see fio_pipe.c. */
SV *ppipe_exec(pTHX_ ppipe *pp, SV *future, int watching);
/* The client goes (freed, or a pool's connection given back): its
 * pipelines can only fail from now on. */
void pclient_detach_pipes(pclient *pc);
/* The per-command methods: an XSUB whose CvXSUBANY holds the words. */
SV *ppipe_method(pTHX_ SV **words, int n);

#endif
