/*
 * Lua scripts by SHA1 with the NOSCRIPT fallback, and functions
 * (aredis/script.h).
 *
 * A run sends EVALSHA as a batch of one (client/feature.h), so its reply
 * comes back raw; on NOSCRIPT the same encoded EVALSHA goes again behind a
 * SCRIPT LOAD, as one batch of two whose first reply is not the caller's:
 * one round trip for the fallback, and never more than one retry.
 */
#include "aredis/script.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include "client/feature.h"
#include "features/cmdlist.h"
#include "features/pipeline_internal.h"
#include "features/tx_internal.h"
#include "util/alloc.h"
#include "util/error.h"

struct aredis_script {
    char *src;
    size_t len;
    char sha[41];
    /* Where it was last loaded or run: a tag of (client, its connect
     * count). A pipeline or transaction on the same connection skips its
     * SCRIPT LOAD. A stale or racing tag costs one SCRIPT LOAD at most. */
    _Atomic uint64_t loaded;
    /* The user's reference plus one per run under way: a run reads the
     * source again for its NOSCRIPT retry, so aredis_script_free() during
     * a run leaves the freeing to the run's end. */
    _Atomic unsigned refs;
};

static uint64_t conn_tag(aredis_client *c) {
    aredis_client_stats st;
    aredis_client_get_stats(c, &st);
    uint64_t x = (uint64_t)(uintptr_t)c ^ (st.connects * 0x9E3779B97F4A7C15ull);
    return x ? x : 1;
}

aredis_script *aredis_script_new(const char *src, size_t len) {
    if (!src) {
        aredis__call_fail(AREDIS_ERR_INVALID, "script source is NULL");
        return NULL;
    }
    if (!len) len = strlen(src);
    aredis_script *s = aredis__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->src = aredis__memdup0(src, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!s->src || EVP_Digest(src, len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        aredis__free(s->src);
        aredis__free(s);
        aredis__call_fail(AREDIS_ERR_NOMEM, "cannot compute the script's SHA1");
        return NULL;
    }
    s->len = len;
    s->refs = 1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 20; i++) {
        s->sha[2 * i] = hex[md[i] >> 4];
        s->sha[2 * i + 1] = hex[md[i] & 15];
    }
    s->sha[40] = '\0';
    return s;
}

void aredis_script_free(aredis_script *s) {
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    aredis__free(s->src);
    aredis__free(s);
}

const char *aredis_script_sha(const aredis_script *s) { return s->sha; }

/* ---- Encoding ----------------------------------------------------------- */

/* The arguments of `name target nkeys keys... args...` (EVALSHA sha,
 * FCALL fn). */
/* Up to this many arguments live on the stack (no allocation per run). */
#define CALL_ARGS_INLINE 16

typedef struct call_args {
    const char **argv;
    size_t *lens;
    size_t argc;
    char num[24];
    const char *argv_in[CALL_ARGS_INLINE];
    size_t lens_in[CALL_ARGS_INLINE];
} call_args;

static void args_free(call_args *a) {
    if (a->argv != a->argv_in) aredis__free(a->argv);
    if (a->lens != a->lens_in) aredis__free(a->lens);
}

/* n in decimal (n >= 0), NUL-terminated; its length. */
static size_t fmt_count(char *out, int n) {
    char tmp[16];
    size_t k = 0;
    unsigned v = (unsigned)n;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < k; i++)
        out[i] = tmp[k - 1 - i];
    out[k] = '\0';
    return k;
}

static aredis_err args_make(call_args *a, const char *name, const char *target, size_t tlen,
                            int nkeys, const char *const *keys, const size_t *keylens, int nargs,
                            const char *const *args, const size_t *arglens) {
    a->argv = NULL;
    a->lens = NULL;
    if (nkeys < 0 || nargs < 0 || (nkeys && !keys) || (nargs && !args) || !target)
        return aredis__call_fail(AREDIS_ERR_INVALID, "bad keys or arguments for %s", name);
    a->argc = 3 + (size_t)nkeys + (size_t)nargs;
    if (a->argc <= CALL_ARGS_INLINE) {
        a->argv = a->argv_in;
        a->lens = a->lens_in;
    } else {
        a->argv = aredis__calloc(a->argc, sizeof *a->argv);
        a->lens = aredis__calloc(a->argc, sizeof *a->lens);
        if (!a->argv || !a->lens) {
            args_free(a);
            return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        }
    }
    a->argv[0] = name;
    a->lens[0] = strlen(name);
    a->argv[1] = target;
    a->lens[1] = tlen;
    a->argv[2] = a->num;
    a->lens[2] = fmt_count(a->num, nkeys);
    for (int i = 0; i < nkeys; i++) {
        a->argv[3 + i] = keys[i];
        a->lens[3 + i] = keylens ? keylens[i] : strlen(keys[i]);
    }
    for (int i = 0; i < nargs; i++) {
        a->argv[3 + nkeys + i] = args[i];
        a->lens[3 + nkeys + i] = arglens ? arglens[i] : strlen(args[i]);
    }
    return AREDIS_ERR_OK;
}

/* Encode such a call with the client's prefix, into b. */
static aredis_err encode_call(aredis_client *c, aredis__buf *b, const char *name,
                              const char *target, size_t tlen, int nkeys, const char *const *keys,
                              const size_t *keylens, int nargs, const char *const *args,
                              const size_t *arglens) {
    call_args a;
    aredis_err e = args_make(&a, name, target, tlen, nkeys, keys, keylens, nargs, args, arglens);
    if (e != AREDIS_ERR_OK) return e;
    e = aredis__encode(c, b, (int)a.argc, a.argv, a.lens, NULL, NULL, NULL);
    args_free(&a);
    return e;
}

/* SCRIPT LOAD <source>, as arguments. */
static void load_args(const aredis_script *s, const char *argv[3], size_t lens[3]) {
    argv[0] = "SCRIPT";
    lens[0] = 6;
    argv[1] = "LOAD";
    lens[1] = 4;
    argv[2] = s->src;
    lens[2] = s->len;
}

static aredis_err encode_load(aredis_client *c, aredis__buf *b, const aredis_script *s) {
    const char *argv[3];
    size_t lens[3];
    load_args(s, argv, lens);
    return aredis__encode(c, b, 3, argv, lens, NULL, NULL, NULL);
}

/* ---- Running with the NOSCRIPT fallback --------------------------------- */

typedef struct run_ctx {
    aredis_script *s; /* held (refs) until the run ends */
    aredis_client *c;
    aredis_reply_fn *cb;
    void *data;
    aredis_future *f;    /* the future form: cancel follows the retry */
    aredis__buf evalsha; /* the encoded EVALSHA, for the retry */
    aredis__buf load;    /* SCRIPT LOAD + EVALSHA */
    aredis_reply *r;     /* the last reply of the current attempt */
    int retried;
    uint64_t tag;
} run_ctx;

static void ctx_free(run_ctx *x) {
    aredis_script_free(x->s); /* the run's reference */
    aredis__buf_free(&x->evalsha);
    aredis__buf_free(&x->load);
    aredis_reply_release(x->r);
    aredis__free(x);
}

static void on_part(aredis_client *c, aredis_reply *r, size_t i, void *data) {
    (void)c;
    run_ctx *x = data;
    if (x->retried && i == 0) return; /* SCRIPT LOAD's SHA1 */
    aredis_reply_release(x->r);
    x->r = aredis_reply_retain(r);
}

static int is_noscript(const aredis_reply *r) {
    return r && r->type == AREDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

static aredis_err submit_attempt(run_ctx *x);

static void deliver(run_ctx *x, aredis_reply *r, const aredis_error *err) {
    aredis__deliver(x->c, x->cb, x->data, r, err);
}

static void on_done(aredis_client *c, aredis_reply *unused, const aredis_error *err, void *data) {
    (void)unused;
    run_ctx *x = data;
    if (!err && is_noscript(x->r) && !x->retried) {
        /* Load it and run again, once; the caller sees only this. */
        x->retried = 1;
        aredis_err e = submit_attempt(x);
        if (e == AREDIS_ERR_OK) return;
        aredis_error fe;
        memset(&fe, 0, sizeof fe);
        fe.code = e;
        fe.detail = aredis_call_error()->detail;
        aredis_reply_release(x->r);
        x->r = NULL;
        deliver(x, NULL, &fe);
        ctx_free(x);
        return;
    }
    if (!err && x->r && x->r->type != AREDIS_REPLY_ERROR)
        x->s->loaded = x->tag; /* the server has it: pipelines may skip loading */
    (void)c;
    deliver(x, err ? NULL : x->r, err);
    ctx_free(x);
}

static aredis_err submit_attempt(run_ctx *x) {
    aredis__batch_spec sp;
    memset(&sp, 0, sizeof sp);
    size_t ends[2];
    if (!x->retried) {
        ends[0] = x->evalsha.len;
        sp.bytes = x->evalsha.data;
        sp.len = x->evalsha.len;
        sp.n = 1;
    } else {
        x->load.len = x->load.off = 0;
        if (encode_load(x->c, &x->load, x->s) != AREDIS_ERR_OK) return AREDIS_ERR_NOMEM;
        ends[0] = x->load.len;
        if (aredis__buf_append(&x->load, x->evalsha.data, x->evalsha.len) != 0)
            return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        ends[1] = x->load.len;
        sp.bytes = x->load.data;
        sp.len = x->load.len;
        sp.n = 2;
    }
    sp.ends = ends;
    sp.part = on_part;
    sp.done = on_done;
    sp.data = x;
    aredis__cmd *cmd = NULL;
    aredis_err e = aredis__batch_submit(x->c, &sp, &cmd);
    if (e == AREDIS_ERR_OK && x->f) aredis__future_attach(x->f, cmd);
    return e;
}

static aredis_err run(aredis_client *c, aredis_script *s, unsigned flags, aredis_reply_fn *cb,
                      void *data, aredis_future *f, int nkeys, const char *const *keys,
                      const size_t *keylens, int nargs, const char *const *args,
                      const size_t *arglens) {
    if (!c || !s) return aredis__call_fail(AREDIS_ERR_INVALID, "client or script is NULL");
    run_ctx *x = aredis__calloc(1, sizeof *x);
    if (!x) return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    atomic_fetch_add(&s->refs, 1);
    x->s = s;
    x->c = c;
    x->cb = cb;
    x->data = data;
    x->f = f;
    x->tag = conn_tag(c);
    aredis_err e =
        encode_call(c, &x->evalsha, (flags & AREDIS_SCRIPT_RO) ? "EVALSHA_RO" : "EVALSHA", s->sha,
                    40, nkeys, keys, keylens, nargs, args, arglens);
    if (e == AREDIS_ERR_OK) e = submit_attempt(x);
    if (e != AREDIS_ERR_OK) ctx_free(x);
    return e;
}

aredis_err aredis_script_run(aredis_client *c, aredis_script *s, unsigned flags,
                             aredis_reply_fn *cb, void *data, int nkeys, const char *const *keys,
                             const size_t *keylens, int nargs, const char *const *args,
                             const size_t *arglens) {
    return run(c, s, flags, cb, data, NULL, nkeys, keys, keylens, nargs, args, arglens);
}

aredis_future *aredis_script_run_future(aredis_client *c, aredis_script *s, unsigned flags,
                                        int nkeys, const char *const *keys, const size_t *keylens,
                                        int nargs, const char *const *args, const size_t *arglens) {
    if (!c || !s) {
        aredis__call_fail(AREDIS_ERR_INVALID, "client or script is NULL");
        return NULL;
    }
    aredis_future *f = aredis__future_pending(c);
    if (!f) return NULL;
    aredis_err e =
        run(c, s, flags, aredis__future_done, f, f, nkeys, keys, keylens, nargs, args, arglens);
    if (e != AREDIS_ERR_OK) return aredis__future_refused(f, e);
    return f;
}

aredis_err aredis_script_load(aredis_client *c, aredis_script *s, aredis_reply_fn *cb, void *data) {
    if (!c || !s) return aredis__call_fail(AREDIS_ERR_INVALID, "client or script is NULL");
    const char *argv[3];
    size_t lens[3];
    load_args(s, argv, lens);
    return aredis_command_argv(c, cb, data, 3, argv, lens);
}

aredis_future *aredis_script_load_future(aredis_client *c, aredis_script *s) {
    if (!c || !s) {
        aredis__call_fail(AREDIS_ERR_INVALID, "client or script is NULL");
        return NULL;
    }
    const char *argv[3];
    size_t lens[3];
    load_args(s, argv, lens);
    return aredis_future_argv(c, 3, argv, lens);
}

/* ---- In pipelines and transactions -------------------------------------- */

/* Queue [SCRIPT LOAD (hidden, into `pre`)] EVALSHA (into `body`). */
static aredis_err queue_script(aredis__cmdlist *pre, aredis__cmdlist *body, aredis_script *s,
                               unsigned flags, int nkeys, const char *const *keys,
                               const size_t *keylens, int nargs, const char *const *args,
                               const size_t *arglens) {
    if (!s) return aredis__call_fail(AREDIS_ERR_INVALID, "script is NULL");
    aredis_client *c = body->client;
    const char *name = (flags & AREDIS_SCRIPT_RO) ? "EVALSHA_RO" : "EVALSHA";
    call_args a;
    aredis_err e = args_make(&a, name, s->sha, 40, nkeys, keys, keylens, nargs, args, arglens);
    if (e != AREDIS_ERR_OK) return e;
    int need_load = s->loaded != conn_tag(c);
    size_t pre_n = pre->n, pre_len = pre->buf.len;
    if (need_load) {
        const char *largv[3];
        size_t llens[3];
        load_args(s, largv, llens);
        e = aredis__cmdlist_add(pre, 3, largv, llens, NULL, NULL, 1);
    }
    if (e == AREDIS_ERR_OK) {
        e = aredis__cmdlist_add(body, (int)a.argc, a.argv, a.lens, NULL, NULL, 0);
        if (e != AREDIS_ERR_OK && need_load) {
            /* Take the SCRIPT LOAD back (hidden: not counted as visible):
             * nothing is queued on failure. */
            pre->n = pre_n;
            pre->buf.len = pre_len;
        }
    }
    args_free(&a);
    return e;
}

aredis_err aredis_pipeline_script(aredis_pipeline *p, aredis_script *s, unsigned flags, int nkeys,
                                  const char *const *keys, const size_t *keylens, int nargs,
                                  const char *const *args, const size_t *arglens) {
    /* A pipeline's hidden load goes right before the script, in the same
     * list: the list is both `pre` and `body`. */
    aredis__cmdlist *l = aredis__pipeline_list(p);
    return queue_script(l, l, s, flags, nkeys, keys, keylens, nargs, args, arglens);
}

aredis_err aredis_tx_script(aredis_tx *tx, aredis_script *s, unsigned flags, int nkeys,
                            const char *const *keys, const size_t *keylens, int nargs,
                            const char *const *args, const size_t *arglens) {
    return queue_script(aredis__tx_pre(tx), aredis__tx_body(tx), s, flags, nkeys, keys, keylens,
                        nargs, args, arglens);
}

/* ---- Functions ---------------------------------------------------------- */

/* FUNCTION LOAD [REPLACE] <code>, as arguments; their count. */
static int function_load_args(const char *code, size_t len, int replace, const char *argv[4],
                              size_t lens[4]) {
    int n = 0;
    argv[n] = "FUNCTION";
    lens[n++] = 8;
    argv[n] = "LOAD";
    lens[n++] = 4;
    if (replace) {
        argv[n] = "REPLACE";
        lens[n++] = 7;
    }
    argv[n] = code;
    lens[n++] = len ? len : strlen(code);
    return n;
}

aredis_err aredis_function_load(aredis_client *c, const char *code, size_t len, int replace,
                                aredis_reply_fn *cb, void *data) {
    if (!c || !code) return aredis__call_fail(AREDIS_ERR_INVALID, "client or code is NULL");
    const char *argv[4];
    size_t lens[4];
    int argc = function_load_args(code, len, replace, argv, lens);
    return aredis_command_argv(c, cb, data, argc, argv, lens);
}

aredis_future *aredis_function_load_future(aredis_client *c, const char *code, size_t len,
                                           int replace) {
    if (!c || !code) {
        aredis__call_fail(AREDIS_ERR_INVALID, "client or code is NULL");
        return NULL;
    }
    const char *argv[4];
    size_t lens[4];
    int argc = function_load_args(code, len, replace, argv, lens);
    return aredis_future_argv(c, argc, argv, lens);
}

/* FCALL is a plain command: the client's own path (key prefix included). */
aredis_err aredis_fcall(aredis_client *c, const char *fn, unsigned flags, aredis_reply_fn *cb,
                        void *data, int nkeys, const char *const *keys, const size_t *keylens,
                        int nargs, const char *const *args, const size_t *arglens) {
    if (!c || !fn) return aredis__call_fail(AREDIS_ERR_INVALID, "client or function is NULL");
    call_args a;
    aredis_err e = args_make(&a, (flags & AREDIS_SCRIPT_RO) ? "FCALL_RO" : "FCALL", fn, strlen(fn),
                             nkeys, keys, keylens, nargs, args, arglens);
    if (e != AREDIS_ERR_OK) return e;
    e = aredis_command_argv(c, cb, data, (int)a.argc, a.argv, a.lens);
    args_free(&a);
    return e;
}

aredis_future *aredis_fcall_future(aredis_client *c, const char *fn, unsigned flags, int nkeys,
                                   const char *const *keys, const size_t *keylens, int nargs,
                                   const char *const *args, const size_t *arglens) {
    if (!c || !fn) {
        aredis__call_fail(AREDIS_ERR_INVALID, "client or function is NULL");
        return NULL;
    }
    call_args a;
    aredis_err e = args_make(&a, (flags & AREDIS_SCRIPT_RO) ? "FCALL_RO" : "FCALL", fn, strlen(fn),
                             nkeys, keys, keylens, nargs, args, arglens);
    if (e != AREDIS_ERR_OK) {
        aredis_future *f = aredis__future_pending(c);
        return f ? aredis__future_refused(f, e) : NULL;
    }
    aredis_future *f = aredis_future_argv(c, (int)a.argc, a.argv, a.lens);
    args_free(&a);
    return f;
}
