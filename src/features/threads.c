/*
 * Commands from any thread (aredis/threads.h), built on the public API:
 * aredis_loop_post() carries each command to the loop thread, which issues
 * it with aredis_command_argv_ex().
 *
 * A job is one command: its arguments, copied at the call into the job's
 * own allocation, and who wants the outcome — a callback (run on the loop
 * thread) or a waiting thread (the "call" forms). Its life:
 *
 *   posted   the caller posts it (job_run) and links it on s->queued, both
 *            under s->mu, which also guards `closed`: once aredis_shared_free
 *            has set it, no thread posts through s again (so the loop may go
 *            right after). A post made on the loop's own thread runs in a
 *            later turn, as every post does.
 *   started  job_run takes it off s->queued and issues it; or
 *            aredis_shared_free takes every queued job and completes it
 *            with CLOSED at once (job_run, when it comes, finds it started
 *            and only drops its reference); or the loop is freed and job_run
 *            runs with CLOSED.
 *   done     exactly once (job_complete): at issue (refused, CLOSED, a
 *            deadline already past), or from the client's callback.
 *
 * Handing a reply to another thread. The client releases its reference to a
 * reply right after the callback; reference counts are not atomic. So the
 * callback of a waited-for job takes a reference and puts the job on
 * s->handover, and a post to the loop itself (one per batch) hands the
 * replies over in a later turn, after the client's release: from then on
 * the waiter holds the only reference and the loop thread never touches the
 * reply again. A post is used rather than a timer because a post still runs
 * (with CLOSED) when the loop is freed first, so no waiter is left hanging.
 * If that post cannot be made, the reference is dropped at once and the
 * waiter gets NOMEM. Errors without a reply are handed over at once.
 *
 * Waiting: each waited-for job carries a mutex and a condition variable
 * (CLOCK_MONOTONIC). A waiter that times out marks the job abandoned and
 * leaves; the loop side then releases the reply itself.
 *
 * References: a job holds one on s; the job is counted by who may still
 * touch it — the post (until job_run ran), the completion (until done) and
 * a waiter — and freed by the last. s is counted by the loop thread's
 * reference (aredis_shared_free drops it), aredis_shared_retain's, its jobs
 * and a pending handover post.
 */
#include "aredis/threads.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aredis/loop.h"
#include "aredis/writer.h"
#include "util/alloc.h"
#include "util/error.h"

typedef struct sh_job sh_job;

struct aredis_shared {
    pthread_mutex_t mu; /* closed, queued, and posting through s */
    atomic_size_t refs; /* see the top */
    aredis_client *c;   /* loop thread, before the free */
    aredis_loop *loop;  /* c's loop */
    int closed;         /* aredis_shared_free ran (written under mu, on the loop thread) */
    sh_job *queued;     /* posted, not started (mu): doubly linked, oldest first */
    sh_job *queued_last;
    sh_job *handover; /* loop thread: waited-for jobs whose reply waits for the post */
    sh_job **handover_tail;
    int handover_posted; /* loop thread: that post is made and has not run */
};

/* What a waiting thread and the loop thread share (under mu). */
typedef struct sh_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;      /* the outcome is here: code, prefix, detail, reply */
    int abandoned; /* the waiter gave up (TIMEOUT): the loop side drops the reply */
    aredis_reply *reply;
    aredis_err code; /* code, prefix and detail may come before done (a reply
                        waiting for its handover) */
    char prefix[32];
    char detail[256];
} sh_wait;

struct sh_job {
    aredis_shared *s;
    sh_job *prev, *next; /* s->queued */
    sh_job *ho_next;     /* s->handover */
    atomic_int refs;     /* post + completion + waiter */
    int started;         /* off s->queued (mu) */
    /* the callback form */
    aredis_shared_fn *cb;
    void *data;
    /* the call form */
    sh_wait *w;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    aredis_reply *reply;  /* waiting for the handover (our reference) */
    /* the command: argv[i], argvlen[i] point into this allocation */
    int argc;
    const char **argv;
    size_t *argvlen;
};

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- References ----------------------------------------------------------- */

static void shared_ref(aredis_shared *s) {
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

static void shared_unref(aredis_shared *s) {
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_mutex_destroy(&s->mu);
    aredis__free(s);
}

static void job_unref(sh_job *j) {
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1) return;
    aredis_shared *s = j->s;
    if (j->w) {
        pthread_cond_destroy(&j->w->cv);
        pthread_mutex_destroy(&j->w->mu);
    }
    aredis__free(j);
    if (s) shared_unref(s);
}

/* ---- Making a job ------------------------------------------------------------ */

/*
 * A job for argc arguments of `bytes` bytes in all, with a wait state when
 * `wait`: one allocation, the argument arrays and bytes behind the job.
 * NULL when out of memory (or sizes overflow).
 */
static sh_job *job_alloc(int argc, size_t bytes, int wait, char **payload) {
    size_t n = sizeof(sh_job), part;
    size_t off_wait = 0, off_argv, off_len, off_bytes;

    if (wait) {
        off_wait = n;
        n += sizeof(sh_wait);
    }
    n = (n + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
    off_argv = n;
    if (aredis__mul_overflow((size_t)argc, sizeof(char *), &part) ||
        aredis__add_overflow(n, part, &n))
        return NULL;
    off_len = n;
    if (aredis__mul_overflow((size_t)argc, sizeof(size_t), &part) ||
        aredis__add_overflow(n, part, &n))
        return NULL;
    off_bytes = n;
    /* each argument NUL-terminated, for anyone printing it */
    if (aredis__add_overflow(n, bytes, &n) || aredis__add_overflow(n, (size_t)argc, &n))
        return NULL;
    char *m = aredis__malloc(n);
    if (!m) return NULL;
    sh_job *j = (sh_job *)(void *)m;
    memset(j, 0, sizeof *j);
    if (wait) {
        j->w = (sh_wait *)(void *)(m + off_wait);
        memset(j->w, 0, sizeof *j->w);
    }
    j->argc = argc;
    j->argv = (const char **)(void *)(m + off_argv);
    j->argvlen = (size_t *)(void *)(m + off_len);
    *payload = m + off_bytes;
    return j;
}

static sh_job *job_from_argv(int argc, const char *const *argv, const size_t *argvlen, int wait) {
    size_t bytes = 0;
    char *p;

    for (int i = 0; i < argc; i++) {
        if (!argv[i]) return NULL;
        if (aredis__add_overflow(bytes, argvlen ? argvlen[i] : strlen(argv[i]), &bytes))
            return NULL;
    }
    sh_job *j = job_alloc(argc, bytes, wait, &p);
    if (!j) return NULL;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        if (len) memcpy(p, argv[i], len);
        p[len] = '\0';
        j->argv[i] = p;
        j->argvlen[i] = len;
        p += len + 1;
    }
    return j;
}

/* A decimal length at *p, ended by CRLF (the writer's own output). */
static size_t resp_num(const char **p) {
    size_t v = 0;
    while (**p >= '0' && **p <= '9')
        v = v * 10 + (size_t)(*(*p)++ - '0');
    *p += 2;
    return v;
}

/*
 * The arguments of a command the writer encoded ("*N" then "$len" and the
 * bytes for each, CRLF after each part), copied into a new job.
 */
static sh_job *job_from_resp(const char *resp, int wait) {
    const char *p = resp + 1;
    size_t argc = resp_num(&p), bytes = 0;
    char *out;

    if (argc == 0 || argc > (size_t)INT32_MAX) return NULL;
    const char *q = p;
    for (size_t i = 0; i < argc; i++) {
        q++; /* '$' */
        size_t len = resp_num(&q);
        bytes += len;
        q += len + 2;
    }
    sh_job *j = job_alloc((int)argc, bytes, wait, &out);
    if (!j) return NULL;
    for (size_t i = 0; i < argc; i++) {
        p++;
        size_t len = resp_num(&p);
        if (len) memcpy(out, p, len);
        out[len] = '\0';
        j->argv[i] = out;
        j->argvlen[i] = len;
        out += len + 1;
        p += len + 2;
    }
    return j;
}

/* A job for the format form; *code says why when NULL. */
static sh_job *job_from_format(const char *fmt, va_list ap, int wait, aredis_err *code) {
    char *resp = NULL;
    size_t len = 0;

    *code = aredis_vformat_command(&resp, &len, fmt, ap);
    if (*code != AREDIS_ERR_OK) return NULL;
    sh_job *j = job_from_resp(resp, wait);
    aredis_free_command(resp);
    *code = j ? AREDIS_ERR_OK : AREDIS_ERR_NOMEM;
    return j;
}

/* ---- Completing a job (loop thread) ----------------------------------------- */

/* Tell a waiter the outcome's code, prefix and detail (not done yet). */
static void wait_stash(sh_job *j, aredis_err code, const char *prefix, const char *detail) {
    sh_wait *w = j->w;
    pthread_mutex_lock(&w->mu);
    if (!w->abandoned) {
        w->code = code;
        snprintf(w->prefix, sizeof w->prefix, "%s", prefix ? prefix : "");
        snprintf(w->detail, sizeof w->detail, "%s", detail ? detail : aredis_strerror(code));
    }
    pthread_mutex_unlock(&w->mu);
}

/* Wake the waiter with the stashed outcome and r (our reference, or NULL),
 * and drop the completion's reference. */
static void wait_done(sh_job *j, aredis_reply *r) {
    sh_wait *w = j->w;
    pthread_mutex_lock(&w->mu);
    if (w->abandoned) {
        pthread_mutex_unlock(&w->mu);
        aredis_reply_release(r); /* nobody waits: after the client's release, ours is the last */
    } else {
        w->reply = r;
        w->done = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    job_unref(j);
}

/* The post that hands replies over, after the client has released them. */
static void handover_run(void *arg, aredis_err code) {
    aredis_shared *s = arg;
    (void)code; /* the loop is being freed: hand them over all the same */
    s->handover_posted = 0;
    sh_job *j = s->handover;
    s->handover = NULL;
    s->handover_tail = &s->handover;
    while (j) {
        sh_job *next = j->ho_next;
        aredis_reply *r = j->reply;
        j->reply = NULL;
        wait_done(j, r);
        j = next;
    }
    shared_unref(s);
}

/*
 * The outcome of job j, exactly once: reply r (borrowed) or none, and err
 * (NULL on success). Drops the completion's reference.
 */
static void job_complete(sh_job *j, aredis_reply *r, const aredis_error *err) {
    aredis_shared *s = j->s;
    if (!j->w) {
        if (j->cb) j->cb(s, r, err, j->data);
        job_unref(j);
        return;
    }
    wait_stash(j, err ? err->code : AREDIS_ERR_OK, err ? err->prefix : NULL,
               err ? err->detail : NULL);
    if (!r) {
        wait_done(j, NULL);
        return;
    }
    /* A reply: hand it over in a later turn (see the top). */
    j->reply = aredis_reply_retain(r);
    j->ho_next = NULL;
    *s->handover_tail = j;
    s->handover_tail = &j->ho_next;
    if (s->handover_posted) return;
    aredis_err rc = aredis_loop_post(s->loop, handover_run, s);
    if (rc == AREDIS_ERR_OK) {
        s->handover_posted = 1;
        shared_ref(s);
        return;
    }
    /* No handover: the job leaves the list (it is the only one on it, since
     * none was posted) and gets the error instead of the reply. */
    s->handover = NULL;
    s->handover_tail = &s->handover;
    aredis_reply_release(j->reply);
    j->reply = NULL;
    wait_stash(j, rc, NULL, "cannot hand the reply over to the waiting thread");
    wait_done(j, NULL);
}

/* Complete j with code and a detail of ours. */
static void job_fail(sh_job *j, aredis_err code, const char *detail) {
    aredis_error e;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.detail = detail;
    job_complete(j, NULL, &e);
}

static void on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    job_complete(data, r, err);
}

/* The posted job, on the loop thread (code CLOSED: the loop is being freed). */
static void job_run(void *arg, aredis_err code) {
    sh_job *j = arg;
    aredis_shared *s = j->s;

    pthread_mutex_lock(&s->mu);
    int taken = j->started, closed = s->closed;
    if (!taken) {
        j->started = 1;
        if (j->prev)
            j->prev->next = j->next;
        else
            s->queued = j->next;
        if (j->next)
            j->next->prev = j->prev;
        else
            s->queued_last = j->prev;
        j->prev = j->next = NULL;
    }
    pthread_mutex_unlock(&s->mu);

    if (taken) {
        /* completed by aredis_shared_free already */
    } else if (code != AREDIS_ERR_OK || closed) {
        job_fail(j, AREDIS_ERR_CLOSED,
                 closed ? "the shared client was freed before the command was issued"
                        : "the loop was freed before the command was issued");
    } else {
        aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
        const aredis_cmd_opts *op = NULL;
        aredis_err rc = AREDIS_ERR_OK;
        if (j->deadline_ns) {
            uint64_t now = mono_ns();
            if (now >= j->deadline_ns) {
                rc = AREDIS_ERR_TIMEOUT;
            } else {
                uint64_t ms = (j->deadline_ns - now + 999999u) / 1000000u;
                o.timeout_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
                op = &o;
            }
        }
        if (rc == AREDIS_ERR_TIMEOUT) {
            job_fail(j, rc, "timed out before the loop thread could issue it");
        } else if (aredis_command_argv_ex(s->c, op, on_reply, j, j->argc, j->argv, j->argvlen) !=
                   AREDIS_ERR_OK) {
            const aredis_error *e = aredis_call_error();
            job_fail(j, e->code, e->detail);
        }
    }
    job_unref(j); /* the post's */
}

/* ---- Posting (any thread) ---------------------------------------------------- */

/*
 * Post j through s. On success the job belongs to the loop side (it holds a
 * reference on s). On failure j is freed and the code returned (with the
 * call error set).
 */
static aredis_err job_post(aredis_shared *s, sh_job *j, int call) {
    aredis_err rc = AREDIS_ERR_OK;
    const char *why = NULL;

    j->s = s;
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        rc = AREDIS_ERR_CLOSED;
        why = "aredis_shared_free() was called";
    } else if (call && aredis_loop_on_thread(s->loop)) {
        rc = AREDIS_ERR_INVALID;
        why = "a call waits for the loop thread, and this is the loop thread "
              "(use aredis_shared_command there)";
    } else {
        rc = aredis_loop_post(s->loop, job_run, j);
        if (rc == AREDIS_ERR_OK) {
            shared_ref(s);
            j->prev = s->queued_last;
            if (s->queued_last)
                s->queued_last->next = j;
            else
                s->queued = j;
            s->queued_last = j;
        } else {
            why = rc == AREDIS_ERR_CLOSED ? "the loop is being freed" : "cannot post to the loop";
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != AREDIS_ERR_OK) {
        j->s = NULL;
        if (j->w) {
            pthread_cond_destroy(&j->w->cv);
            pthread_mutex_destroy(&j->w->mu);
        }
        aredis__free(j);
        return aredis__call_fail(rc, "%s", why);
    }
    return AREDIS_ERR_OK;
}

/* ---- The callback forms ---------------------------------------------------- */

static aredis_err format_failed(aredis_err code) {
    return aredis__call_fail(code, code == AREDIS_ERR_NOMEM
                                       ? "out of memory"
                                       : "malformed format (see aredis/writer.h)");
}

static aredis_err command_post(aredis_shared *s, sh_job *j, aredis_shared_fn *cb, void *data) {
    j->cb = cb;
    j->data = data;
    atomic_init(&j->refs, 2); /* the post, the completion */
    return job_post(s, j, 0);
}

aredis_err aredis_shared_vcommand(aredis_shared *s, aredis_shared_fn *cb, void *data,
                                  const char *fmt, va_list ap) {
    aredis_err code;
    if (!s || !fmt) return aredis__call_fail(AREDIS_ERR_INVALID, "NULL shared object or format");
    sh_job *j = job_from_format(fmt, ap, 0, &code);
    if (!j) return format_failed(code);
    return command_post(s, j, cb, data);
}

aredis_err aredis_shared_command(aredis_shared *s, aredis_shared_fn *cb, void *data,
                                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err rc = aredis_shared_vcommand(s, cb, data, fmt, ap);
    va_end(ap);
    return rc;
}

aredis_err aredis_shared_command_argv(aredis_shared *s, aredis_shared_fn *cb, void *data, int argc,
                                      const char *const *argv, const size_t *argvlen) {
    if (!s || argc < 1 || !argv)
        return aredis__call_fail(AREDIS_ERR_INVALID, "NULL shared object or argv, or argc < 1");
    sh_job *j = job_from_argv(argc, argv, argvlen, 0);
    if (!j) {
        for (int i = 0; i < argc; i++)
            if (!argv[i]) return aredis__call_fail(AREDIS_ERR_INVALID, "argv[%d] is NULL", i);
        return aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
    }
    return command_post(s, j, cb, data);
}

/* ---- The waiting forms ----------------------------------------------------- */

/* Fill *err (when given) from this thread's call error or from success. */
static aredis_err call_result(aredis_err code, const char *prefix, const char *detail,
                              aredis_error *err) {
    if (code != AREDIS_ERR_OK) aredis__call_fail(code, "%s", detail);
    if (err) {
        if (code == AREDIS_ERR_OK) {
            memset(err, 0, sizeof *err);
            err->detail = aredis_strerror(code);
        } else {
            *err = *aredis_call_error();
            snprintf(err->prefix, sizeof err->prefix, "%s", prefix ? prefix : "");
        }
    }
    return code;
}

static aredis_err call_wait(aredis_shared *s, sh_job *j, uint32_t timeout_ms, aredis_reply **reply,
                            aredis_error *err) {
    sh_wait *w = j->w;
    pthread_condattr_t ca;
    struct timespec until = {0, 0};

    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        aredis__free(j);
        return call_result(AREDIS_ERR_NOMEM, NULL, "cannot make a mutex", err);
    }
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&w->mu);
        aredis__free(j);
        return call_result(AREDIS_ERR_NOMEM, NULL, "cannot make a condition variable", err);
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int cv_ok = pthread_cond_init(&w->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cv_ok) {
        pthread_mutex_destroy(&w->mu);
        aredis__free(j);
        return call_result(AREDIS_ERR_NOMEM, NULL, "cannot make a condition variable", err);
    }
    if (timeout_ms) {
        j->deadline_ns = mono_ns() + (uint64_t)timeout_ms * 1000000u;
        until.tv_sec = (time_t)(j->deadline_ns / 1000000000u);
        until.tv_nsec = (long)(j->deadline_ns % 1000000000u);
    }
    atomic_init(&j->refs, 3); /* the post, the completion, this waiter */
    aredis_err rc = job_post(s, j, 1);
    if (rc != AREDIS_ERR_OK) { /* j is gone */
        if (err) {
            *err = *aredis_call_error();
        }
        return rc;
    }

    char prefix[32] = "", detail[256] = "";
    aredis_reply *r = NULL;
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        if (!timeout_ms) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    if (w->done) {
        r = w->reply;
        rc = w->code;
        memcpy(prefix, w->prefix, sizeof prefix);
        memcpy(detail, w->detail, sizeof detail);
    } else {
        w->abandoned = 1;
        rc = AREDIS_ERR_TIMEOUT;
        snprintf(detail, sizeof detail, "no reply within %u ms", (unsigned)timeout_ms);
    }
    pthread_mutex_unlock(&w->mu);
    job_unref(j);
    *reply = r;
    return call_result(rc, prefix, detail, err);
}

static aredis_err call_check(aredis_shared *s, aredis_reply **reply, aredis_error *err) {
    if (reply) *reply = NULL;
    if (!s || !reply)
        return call_result(AREDIS_ERR_INVALID, NULL, "NULL shared object or reply pointer", err);
    return AREDIS_ERR_OK;
}

aredis_err aredis_shared_vcall(aredis_shared *s, uint32_t timeout_ms, aredis_reply **reply,
                               aredis_error *err, const char *fmt, va_list ap) {
    aredis_err code = call_check(s, reply, err);
    if (code != AREDIS_ERR_OK) return code;
    if (!fmt) return call_result(AREDIS_ERR_INVALID, NULL, "NULL format", err);
    sh_job *j = job_from_format(fmt, ap, 1, &code);
    if (!j) {
        format_failed(code);
        if (err) *err = *aredis_call_error();
        return code;
    }
    return call_wait(s, j, timeout_ms, reply, err);
}

aredis_err aredis_shared_call(aredis_shared *s, uint32_t timeout_ms, aredis_reply **reply,
                              aredis_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_err rc = aredis_shared_vcall(s, timeout_ms, reply, err, fmt, ap);
    va_end(ap);
    return rc;
}

aredis_err aredis_shared_call_argv(aredis_shared *s, uint32_t timeout_ms, aredis_reply **reply,
                                   aredis_error *err, int argc, const char *const *argv,
                                   const size_t *argvlen) {
    aredis_err code = call_check(s, reply, err);
    if (code != AREDIS_ERR_OK) return code;
    if (argc < 1 || !argv)
        return call_result(AREDIS_ERR_INVALID, NULL, "NULL argv, or argc < 1", err);
    sh_job *j = job_from_argv(argc, argv, argvlen, 1);
    if (!j) {
        for (int i = 0; i < argc; i++)
            if (!argv[i]) return call_result(AREDIS_ERR_INVALID, NULL, "an argv[i] is NULL", err);
        return call_result(AREDIS_ERR_NOMEM, NULL, "out of memory", err);
    }
    return call_wait(s, j, timeout_ms, reply, err);
}

/* ---- The object ------------------------------------------------------------ */

aredis_shared *aredis_shared_new(aredis_client *c) {
    if (!c) {
        aredis__call_fail(AREDIS_ERR_INVALID, "NULL client");
        return NULL;
    }
    aredis_shared *s = aredis__calloc(1, sizeof *s);
    if (!s) {
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        aredis__free(s);
        aredis__call_fail(AREDIS_ERR_NOMEM, "cannot make a mutex");
        return NULL;
    }
    s->c = c;
    s->loop = aredis_client_loop(c);
    s->handover_tail = &s->handover;
    atomic_init(&s->refs, 1);
    return s;
}

aredis_client *aredis_shared_client(const aredis_shared *s) { return s ? s->c : NULL; }

aredis_shared *aredis_shared_retain(aredis_shared *s) {
    if (s) shared_ref(s);
    return s;
}

void aredis_shared_release(aredis_shared *s) {
    if (s) shared_unref(s);
}

void aredis_shared_free(aredis_shared *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    sh_job *j = s->queued;
    s->queued = s->queued_last = NULL;
    for (sh_job *k = j; k; k = k->next)
        k->started = 1;
    pthread_mutex_unlock(&s->mu);
    /* Posted, not issued: complete them now (their posts, when they run,
     * only drop their references). */
    while (j) {
        sh_job *next = j->next;
        j->prev = j->next = NULL;
        job_fail(j, AREDIS_ERR_CLOSED, "the shared client was freed before the command was issued");
        j = next;
    }
    shared_unref(s); /* the loop thread's */
}
