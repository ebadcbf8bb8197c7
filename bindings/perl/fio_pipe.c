/*
 * fio_pipe.c — Future::IO::Redis::Pipeline's C side (the XS entry points
 * are in Redis.xs).
 *
 * A pipeline object (a blessed hash) carries a ppipe in ext magic, freed
 * with the hash. Its command methods are XSUBs (ppipe_method: the command's
 * words in CvXSUBANY) that encode each command straight into an
 * aredis_pipeline when queued: no Perl array per command, no second walk
 * at execute.
 *
 * QUEUE ERRORS. A bad argument (undef, wide characters), an empty command
 * or a command aredis refuses in a pipeline (AUTH...) does not die at the
 * method call: the first one is kept and execute fails with it (the same
 * error object a plain command dies with), the batch discarded.
 *
 * WATCH. While its client watches, a client's commands go through the
 * WATCH's transaction (Watch.pm), one by one, as Perl arrays. A batch begun
 * while watching is kept as arrays (execute hands them back: through the
 * transaction if still watching, as a pipeline of the client if not). A
 * batch begun while not watching is encoded; executing it while watching
 * fails (its bytes cannot go through the transaction, and on the client it
 * would wait behind the WATCH's reservation).
 *
 * LIFETIMES. An aredis_pipeline must not queue once its client is freed.
 * Each pclient lists its pipelines; when the client goes (pclient_free, or
 * a pool connection given back) they are detached: their aredis_pipeline
 * is freed and they fail from then on. Whichever of the two is freed first,
 * nothing dangles.
 */
#include "fio.h"

struct ppipe {
    aredis_pipeline *p; /* NULL once detached */
    pclient *pc;        /* NULL once detached */
    ppipe *next;        /* in pc->pipes */
    ppipe **prevp;
    size_t n;   /* commands queued since the last execute */
    int arrays; /* this batch was begun while watching: kept as Perl arrays */
    AV *cmds;   /* those arrays */
    SV *err;    /* the first queue error of this batch */
};

static int ppipe_mg_free(pTHX_ SV *sv, MAGIC *mg);
static MGVTBL ppipe_vtbl = {NULL, NULL, NULL, NULL, ppipe_mg_free, NULL, NULL, NULL};

static void ppipe_unlink(ppipe *pp) {
    if (pp->prevp) {
        *pp->prevp = pp->next;
        if (pp->next) pp->next->prevp = pp->prevp;
    }
    pp->next = NULL;
    pp->prevp = NULL;
    aredis_pipeline_free(pp->p);
    pp->p = NULL;
    pp->pc = NULL;
}

void pclient_detach_pipes(pclient *pc) {
    while (pc->pipes)
        ppipe_unlink(pc->pipes);
}

/* Back to empty (the batch is dropped). */
static void ppipe_reset(pTHX_ ppipe *pp) {
    pp->n = 0;
    pp->arrays = 0;
    if (pp->p) aredis_pipeline_clear(pp->p);
    if (pp->cmds) av_clear(pp->cmds);
    if (pp->err) {
        SvREFCNT_dec(pp->err);
        pp->err = NULL;
    }
}

static int ppipe_mg_free(pTHX_ SV *sv, MAGIC *mg) {
    ppipe *pp = (ppipe *)mg->mg_ptr;
    (void)sv;
    if (!pp) return 0;
    ppipe_unlink(pp);
    SvREFCNT_dec(pp->cmds);
    SvREFCNT_dec(pp->err);
    free(pp);
    mg->mg_ptr = NULL;
    return 0;
}

void ppipe_attach(pTHX_ SV *self, pclient *pc) {
    if (!SvROK(self) || SvTYPE(SvRV(self)) != SVt_PVHV)
        croak("Future::IO::Redis::Pipeline: not a hash");
    ppipe *pp = calloc(1, sizeof *pp);
    if (!pp) croak("Future::IO::Redis: out of memory");
    if (pc) {
        pp->p = aredis_pipeline_new(pc->c);
        if (!pp->p) {
            free(pp);
            refused(aTHX_ AREDIS_ERR_NOMEM);
        }
        pp->pc = pc;
        pp->next = pc->pipes;
        if (pc->pipes) pc->pipes->prevp = &pp->next;
        pc->pipes = pp;
        pp->prevp = &pc->pipes;
    }
    sv_magicext(SvRV(self), NULL, PERL_MAGIC_ext, &ppipe_vtbl, (const char *)pp, 0);
}

ppipe *ppipe_of(pTHX_ SV *self) {
    if (SvROK(self) && SvMAGICAL(SvRV(self))) {
        MAGIC *mg = mg_findext(SvRV(self), PERL_MAGIC_ext, &ppipe_vtbl);
        if (mg && mg->mg_ptr) return (ppipe *)mg->mg_ptr;
    }
    croak("Future::IO::Redis::Pipeline: not a pipeline");
}

size_t ppipe_count(const ppipe *pp) { return pp->n; }

static SV *gone_error(pTHX) {
    return error_new(aTHX_ "AREDIS_ERR_CLOSED",
                     newSVpvs("Future::IO::Redis: the client of this pipeline is gone"), 0);
}

/* Is the client's Perl object watching ($self->{watch}, Watch.pm)? */
static int pc_watching(pTHX_ const pclient *pc) {
    SV *s = pc->self;
    if (!s || !SvROK(s) || SvTYPE(SvRV(s)) != SVt_PVHV) return 0;
    SV **w = hv_fetchs((HV *)SvRV(s), "watch", 0);
    return w && SvTRUE(*w);
}

void ppipe_queue(pTHX_ ppipe *pp, int nw, const char *const *w, const size_t *wl, SV **args,
                 int nargs) {
    if (pp->n++ == 0) pp->arrays = pp->pc && pc_watching(aTHX_ pp->pc);
    if (pp->err) return; /* the first error stands */
    int n = nw + nargs;
    if (!pp->pc) {
        pp->err = gone_error(aTHX);
        return;
    }
    if (n < 1) {
        pp->err =
            error_new(aTHX_ "AREDIS_ERR_INVALID", newSVpvs("Future::IO::Redis: no command"), 0);
        return;
    }
    if (pp->arrays) {
        AV *av = newAV();
        av_extend(av, n - 1);
        for (int i = 0; i < nw; i++)
            av_push(av, newSVpvn(w[i], wl[i]));
        for (int i = 0; i < nargs; i++)
            av_push(av, newSVsv(args[i]));
        if (!pp->cmds) pp->cmds = newAV();
        av_push(pp->cmds, newRV_noinc((SV *)av));
        return;
    }
    const char *sargv[16];
    size_t slens[16];
    const char **argv = sargv;
    size_t *lens = slens;
    ENTER; /* the heap argv is freed even if a tied or overloaded argument dies */
    if (n > 16) {
        Newx(argv, n, const char *);
        Newx(lens, n, size_t);
        SAVEFREEPV(argv);
        SAVEFREEPV(lens);
    }
    for (int i = 0; i < nw; i++) {
        argv[i] = w[i];
        lens[i] = wl[i];
    }
    SV *err = NULL;
    for (int i = 0; i < nargs && !err; i++)
        err = arg_bytes(aTHX_ args[i], nw + i + 1, &argv[nw + i], &lens[nw + i]);
    if (!err) {
        aredis_err e = aredis_pipeline_argv(pp->p, n, argv, lens);
        if (e != AREDIS_ERR_OK) err = refused_error(aTHX_ e);
    }
    LEAVE;
    pp->err = err;
}

/*
 * Execute. Returns 0 when nothing is queued, 1 when the batch went to
 * aredis (the future completes with the array of replies), or an array ref
 * of the commands (arrays) of a batch begun while watching, for the caller
 * to send. Dies with the error object of a queue error, of a refusal, of a
 * gone client, or of an encoded batch executed while watching. The
 * pipeline is empty afterwards in every case.
 */
SV *ppipe_exec(pTHX_ ppipe *pp, SV *future, int watching) {
    size_t n = pp->n;
    if (pp->err) {
        SV *err = pp->err;
        pp->err = NULL;
        ppipe_reset(aTHX_ pp);
        croak_sv(sv_2mortal(err));
    }
    if (!n) return newSViv(0);
    if (!pp->pc) {
        ppipe_reset(aTHX_ pp);
        croak_sv(sv_2mortal(gone_error(aTHX)));
    }
    if (pp->arrays) {
        AV *cmds = pp->cmds ? pp->cmds : newAV();
        pp->cmds = NULL;
        ppipe_reset(aTHX_ pp);
        return newRV_noinc((SV *)cmds);
    }
    if (watching) {
        ppipe_reset(aTHX_ pp);
        croak_sv(sv_2mortal(error_new(
            aTHX_ "AREDIS_ERR_INVALID",
            newSVpvs("Future::IO::Redis: this pipeline's commands were queued before the client "
                     "began watching; under a WATCH, queue them again (or execute before watch())"),
            0)));
    }
    SV *f = newSVsv(future);
    aredis_err e = aredis_pipeline_exec(pp->p, on_reply, f);
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(f);
        ppipe_reset(aTHX_ pp);
        refused(aTHX_ e);
    }
    pp->n = 0;
    return newSViv(1);
}

/* ---- The command methods ------------------------------------------------------- */

typedef struct pwords {
    int n;
    const char **w;
    size_t *l;
} pwords;

static XSPROTO(xs_pipe_cmd) {
    dXSARGS;
    if (items < 1) croak_xs_usage(cv, "pipeline, ...");
    const pwords *pw = (const pwords *)CvXSUBANY(cv).any_ptr;
    ppipe_queue(aTHX_ ppipe_of(aTHX_ ST(0)), pw->n, pw->w, pw->l, &ST(1), items - 1);
    XSRETURN(1); /* the pipeline: calls chain */
}

/* A method queueing the command of these words (a code ref). Made once per
 * command, at load: never freed. */
SV *ppipe_method(pTHX_ SV **words, int n) {
    pwords *pw = calloc(1, sizeof *pw);
    if (!pw) croak("Future::IO::Redis: out of memory");
    pw->n = n;
    Newx(pw->w, n ? n : 1, const char *);
    Newx(pw->l, n ? n : 1, size_t);
    for (int i = 0; i < n; i++) {
        STRLEN len;
        const char *s = SvPVbyte(words[i], len);
        pw->w[i] = savepvn(s, len);
        pw->l[i] = len;
    }
    CV *cv = newXS(NULL, xs_pipe_cmd, __FILE__);
    CvXSUBANY(cv).any_ptr = pw;
    return newRV_noinc((SV *)cv);
}
