/*
 * bench/clients.c — one workload, four clients: aredis on its built-in loop,
 * aredis on libevent, hiredis async on libevent and hiredis sync. Every
 * driver issues the same commands (same format string, same keys, same
 * value), checks every reply (an error or a GET of the wrong length is
 * counted) and times only the command phase, after a PING has shown that the
 * connection is up.
 *
 * Modes (see common.h): WINDOW keeps `depth` commands in flight and issues
 * the next from each reply callback; BATCH issues `depth`, waits for all of
 * them and repeats (what redis-benchmark -P and a sync client do); AUTO issues
 * chunks of `depth` commands in one loop turn without waiting in between;
 * SEQ awaits each (aredis: a future per command). A sync client cannot keep a
 * window: it runs WINDOW as BATCH.
 *
 * aredis what-ifs (bench_job): a BATCH as one explicit pipeline
 * (use_pipeline) or as one MULTI ... EXEC (use_tx), its completions being
 * the elements of the one ARRAY reply; every command as EVALSHA of a
 * one-line script doing the same (use_script), the script loaded by one
 * run before the timed part, so that only the cached path is timed.
 *
 * Built a second time with BENCH_HIREDIS1 (bench/compare_hiredis1, against
 * the hiredis of HIREDIS_DIR instead of Debian's): the same hiredis drivers
 * then answer to hiredis1-async / hiredis1-sync, and hiredis-async /
 * hiredis-sync are not in that binary.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

#include <aredis/aredis.h>

#ifdef BENCH_HAVE_LIBEVENT
#include <event2/event.h>

#include <aredis/adapters/libevent.h>
#endif
#ifdef BENCH_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#ifdef BENCH_HAVE_LIBEVENT
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#endif
#endif

static const char *const client_names[BENCH_NCLIENTS] = {"aredis",         "aredis-libevent",
                                                         "hiredis-async",  "hiredis-sync",
                                                         "hiredis1-async", "hiredis1-sync"};

/* Which names the hiredis drivers of this binary answer to. */
#ifdef BENCH_HIREDIS1
#define HI_ASYNC BENCH_HIREDIS1_ASYNC
#define HI_SYNC BENCH_HIREDIS1_SYNC
#else
#define HI_ASYNC BENCH_HIREDIS_ASYNC
#define HI_SYNC BENCH_HIREDIS_SYNC
#endif

const char *bench_client_name(bench_client c) {
    return (unsigned)c < BENCH_NCLIENTS ? client_names[c] : "?";
}

int bench_client_parse(const char *s) {
    for (int i = 0; i < BENCH_NCLIENTS; i++)
        if (!strcmp(s, client_names[i])) return i;
    return -1;
}

int bench_client_available(bench_client c) {
    int libevent = 0, hiredis = 0;
#ifdef BENCH_HAVE_LIBEVENT
    libevent = 1;
#endif
#ifdef BENCH_HAVE_HIREDIS
    hiredis = 1;
#endif
    if (c == BENCH_AREDIS) return 1;
    if (c == BENCH_AREDIS_LIBEVENT) return libevent;
    if (c == HI_ASYNC) return hiredis && libevent;
    if (c == HI_SYNC) return hiredis;
    return 0;
}

/* ---- What every driver shares ------------------------------------------- */

typedef struct run_state {
    const bench_job *job;
    char **keys; /* keyspace strings, or NULL: job->key */
    char *val;
    long issued, done, target;
    long errors, bad;
    double *t_issue; /* when latencies are wanted: issue time by index */
    void (*issue)(struct run_state *s, const char *key); /* client-specific */
    void (*stop)(struct run_state *s);
    void *client; /* aredis_client * / redisAsyncContext * / redisContext * */
    void *base;   /* struct event_base *, or the aredis loop */
    int stopped;
    /* BATCH with an explicit pipeline or transaction (aredis --pipeline,
     * --tx): issues k at once */
    void (*issue_many)(struct run_state *s, long k);
    void *pipe;   /* aredis_pipeline * (--pipeline) */
    void *tx;     /* aredis_tx * (--tx) */
    void *script; /* aredis_script * (--script) */
} run_state;

static int state_init(run_state *s, const bench_job *job) {
    memset(s, 0, sizeof *s);
    s->job = job;
    s->val = malloc(job->value_size + 1);
    if (!s->val) return -1;
    memset(s->val, 'x', job->value_size);
    s->val[job->value_size] = '\0';
    if (job->keyspace > 0) {
        s->keys = calloc((size_t)job->keyspace, sizeof *s->keys);
        if (!s->keys) return -1;
        for (long i = 0; i < job->keyspace; i++) {
            char k[64];
            snprintf(k, sizeof k, "bench:%ld", i);
            s->keys[i] = strdup(k);
            if (!s->keys[i]) return -1;
        }
    }
    if (job->lat_us) {
        s->t_issue = malloc(sizeof *s->t_issue * (size_t)(job->n ? job->n : 1));
        if (!s->t_issue) return -1;
    }
    return 0;
}

static void state_free(run_state *s) {
    if (s->keys)
        for (long i = 0; i < s->job->keyspace; i++)
            free(s->keys[i]);
    free(s->keys);
    free(s->val);
    free(s->t_issue);
}

static const char *key_of(const run_state *s, long i) {
    return s->keys ? s->keys[i % s->job->keyspace] : s->job->key;
}

static void issue_one(run_state *s) {
    long i = s->issued++;
    if (s->t_issue) s->t_issue[i] = bench_now();
    s->issue(s, key_of(s, i));
}

/* Issue the next chunk of a BATCH / AUTO run. */
static void issue_batch(run_state *s) {
    long k = s->job->n - s->issued;
    if (k > s->job->depth) k = s->job->depth;
    s->target = s->done + k;
    if (s->issue_many) {
        s->issue_many(s, k);
        return;
    }
    for (long j = 0; j < k; j++)
        issue_one(s);
}

/* Issue what the mode wants in flight at the start. */
static void issue_start(run_state *s) {
    if (s->job->mode == BENCH_WINDOW) {
        while (s->issued < s->job->n && s->issued < s->job->depth)
            issue_one(s);
    } else {
        issue_batch(s);
    }
}

/* A reply (or failure) arrived for the oldest command in flight. */
static void on_done(run_state *s, int failed, int is_string, size_t len) {
    if (failed)
        s->errors++;
    else if (s->job->is_get && (!is_string || len != s->job->value_size))
        s->bad++;
    if (s->t_issue) s->job->lat_us[s->done] = (bench_now() - s->t_issue[s->done]) * 1e6;
    s->done++;
    if (s->done >= s->job->n) {
        if (!s->stopped) {
            s->stopped = 1;
            s->stop(s);
        }
        return;
    }
    if (s->job->mode == BENCH_WINDOW) {
        if (s->issued < s->job->n) issue_one(s);
    } else if (s->done == s->target) {
        issue_batch(s);
    }
}

static void result_fill(bench_result *res, const run_state *s, const bench_mark *a,
                        const bench_mark *b) {
    res->ops = s->done;
    res->errors = s->errors;
    res->bad = s->bad;
    res->secs = b->t - a->t;
    res->user = b->user - a->user;
    res->sys = b->sys - a->sys;
}

/* ---- aredis (built-in loop or libevent) --------------------------------- */

static void ad_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    on_done(data, err != NULL, r && r->type == AREDIS_REPLY_STRING, r ? r->len : 0);
}

static void ad_issue(run_state *s, const char *key) {
    aredis_err e;
    if (s->job->use_argv) {
        const char *argv[3] = {s->job->is_get ? "GET" : "SET", key, s->val};
        size_t len[3] = {3, strlen(key), s->job->value_size};
        e = aredis_command_argv(s->client, ad_reply, s, s->job->is_get ? 2 : 3, argv, len);
    } else if (s->job->is_get) {
        e = aredis_command(s->client, ad_reply, s, "GET %s", key);
    } else {
        e = aredis_command(s->client, ad_reply, s, "SET %s %b", key, s->val, s->job->value_size);
    }
    if (e != AREDIS_ERR_OK) {
        fprintf(stderr, "aredis_command: %s\n", aredis_strerror(e));
        exit(1);
    }
}

/* The one-line scripts of --script: the op itself, run by EVALSHA. */
static const char get_script[] = "return redis.call('GET', KEYS[1])";
static const char set_script[] = "return redis.call('SET', KEYS[1], ARGV[1])";

/* --script: the same command as a script run (EVALSHA sha 1 key [value]). */
static void ad_issue_script(run_state *s, const char *key) {
    const char *keys[1] = {key};
    const char *args[1] = {s->val};
    size_t arglens[1] = {s->job->value_size};
    aredis_err e = aredis_script_run(s->client, s->script, 0, ad_reply, s, 1, keys, NULL,
                                     s->job->is_get ? 0 : 1, args, arglens);
    if (e != AREDIS_ERR_OK) {
        fprintf(stderr, "aredis_script_run: %s\n", aredis_strerror(e));
        exit(1);
    }
}

/* One exec's replies (a pipeline's ARRAY, or EXEC's), in order, as the
 * batch's completions. */
static void ad_batch_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    run_state *s = data;
    long k = s->target - s->done;
    for (long j = 0; j < k; j++) {
        aredis_reply *e = r && (size_t)j < r->elements ? r->element[j] : NULL;
        on_done(s, err != NULL || !e || e->type == AREDIS_REPLY_ERROR,
                e && e->type == AREDIS_REPLY_STRING, e ? e->len : 0);
    }
}

/* BATCH through aredis_pipeline: queue k commands, one exec. */
static void ad_issue_many(run_state *s, long k) {
    aredis_pipeline *p = s->pipe;
    for (long j = 0; j < k; j++) {
        const char *key = key_of(s, s->issued++);
        aredis_err e = s->job->is_get ? aredis_pipeline_command(p, "GET %s", key)
                                      : aredis_pipeline_command(p, "SET %s %b", key, s->val,
                                                                s->job->value_size);
        if (e != AREDIS_ERR_OK) {
            fprintf(stderr, "aredis_pipeline_command: %s\n", aredis_strerror(e));
            exit(1);
        }
    }
    if (aredis_pipeline_exec(p, ad_batch_reply, s) != AREDIS_ERR_OK) {
        fprintf(stderr, "aredis_pipeline_exec failed\n");
        exit(1);
    }
}

/* BATCH as a transaction: queue k commands, MULTI ... EXEC as one piece. */
static void ad_issue_tx(run_state *s, long k) {
    aredis_tx *tx = s->tx;
    for (long j = 0; j < k; j++) {
        const char *key = key_of(s, s->issued++);
        aredis_err e = s->job->is_get
                           ? aredis_tx_queue(tx, "GET %s", key)
                           : aredis_tx_queue(tx, "SET %s %b", key, s->val, s->job->value_size);
        if (e != AREDIS_ERR_OK) {
            fprintf(stderr, "aredis_tx_queue: %s\n", aredis_strerror(e));
            exit(1);
        }
    }
    if (aredis_tx_exec(tx, ad_batch_reply, s) != AREDIS_ERR_OK) {
        fprintf(stderr, "aredis_tx_exec failed\n");
        exit(1);
    }
}

/* --script: one run before the timed part, so that the server has the
 * script (the NOSCRIPT fallback loads it) and only EVALSHA is timed. */
static int ad_script_warm(run_state *s) {
    const char *keys[1] = {key_of(s, 0)};
    const char *args[1] = {s->val};
    size_t arglens[1] = {s->job->value_size};
    aredis_future *f = aredis_script_run_future(s->client, s->script, 0, 1, keys, NULL,
                                                s->job->is_get ? 0 : 1, args, arglens);
    if (!f) return -1;
    int rc = aredis_await(f) == AREDIS_ERR_OK ? 0 : -1;
    if (rc != 0) fprintf(stderr, "aredis: script run failed: %s\n", aredis_future_error(f)->detail);
    aredis_future_release(f);
    return rc;
}

static void ad_stop_builtin(run_state *s) { aredis_loop_stop(s->base); }

#ifdef BENCH_HAVE_LIBEVENT
static void ad_stop_libevent(run_state *s) { event_base_loopbreak(s->base); }
#endif

/* SEQ: a future per command, awaited before the next is issued. */
static void ad_run_seq(run_state *s) {
    for (long i = 0; i < s->job->n; i++) {
        const char *key = key_of(s, i);
        double t0 = s->t_issue ? bench_now() : 0;
        aredis_future *f;
        if (s->script) {
            const char *keys[1] = {key};
            const char *args[1] = {s->val};
            size_t arglens[1] = {s->job->value_size};
            f = aredis_script_run_future(s->client, s->script, 0, 1, keys, NULL,
                                         s->job->is_get ? 0 : 1, args, arglens);
        } else {
            f = s->job->is_get ? aredis_future_command(s->client, "GET %s", key)
                               : aredis_future_command(s->client, "SET %s %b", key, s->val,
                                                       s->job->value_size);
        }
        aredis_err e = aredis_await(f);
        aredis_reply *r = aredis_future_reply(f);
        if (e != AREDIS_ERR_OK)
            s->errors++;
        else if (s->job->is_get && (r->type != AREDIS_REPLY_STRING || r->len != s->job->value_size))
            s->bad++;
        aredis_future_release(f);
        if (s->t_issue) s->job->lat_us[i] = (bench_now() - t0) * 1e6;
        s->done++;
    }
}

static int run_aredis(const bench_job *job, bench_result *res, int use_libevent) {
    run_state s;
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_loop *loop = NULL;
#ifdef BENCH_HAVE_LIBEVENT
    struct event_base *base = NULL;
#endif
    int rc = -1;

    if (state_init(&s, job) != 0) goto out;
    if (job->unix_path) {
        o.unix_path = job->unix_path;
    } else {
        o.host = job->host;
        o.port = job->port;
    }
    /* Default options (AREDIS_OPTIONS_INIT: a 5 s deadline per command),
     * unless a what-if asks for another deadline or none. */
    if (job->no_timeout)
        o.request_timeout_ms = 0;
    else if (job->timeout_ms)
        o.request_timeout_ms = job->timeout_ms;
    if (use_libevent) {
#ifdef BENCH_HAVE_LIBEVENT
        base = event_base_new();
        loop = base ? aredis_loop_libevent(base) : NULL;
        s.base = base;
        s.stop = ad_stop_libevent;
#endif
    } else {
        loop = aredis_loop_new();
        s.base = loop;
        s.stop = ad_stop_builtin;
    }
    if (!loop) goto out;
    aredis_client *c = aredis_client_new(loop, &o);
    if (!c) goto out;
    s.client = c;
    s.issue = ad_issue;
    if (job->use_pipeline && job->mode == BENCH_BATCH) {
        s.pipe = aredis_pipeline_new(c);
        if (!s.pipe) goto out_client;
        s.issue_many = ad_issue_many;
    } else if (job->use_tx && job->mode == BENCH_BATCH) {
        s.tx = aredis_tx_new(c);
        if (!s.tx) goto out_client;
        s.issue_many = ad_issue_tx;
    }
    if (job->use_script) {
        s.script = aredis_script_new(job->is_get ? get_script : set_script, 0);
        if (!s.script) goto out_client;
        s.issue = ad_issue_script;
    }
    aredis_client_connect(c);
    aredis_future *ready = aredis_future_ready(c);
    if (aredis_await(ready) != AREDIS_ERR_OK) {
        fprintf(stderr, "aredis: connect failed: %s\n", aredis_future_error(ready)->detail);
        aredis_future_release(ready);
        goto out_client;
    }
    aredis_future_release(ready);
    if (s.script && ad_script_warm(&s) != 0) goto out_client;

    aredis_client_stats st0, st1;
    bench_mark a, b;
    aredis_client_get_stats(c, &st0);
    bench_mark_take(&a);
    if (job->n > 0) {
        if (job->mode == BENCH_SEQ) {
            ad_run_seq(&s);
        } else {
            issue_start(&s);
#ifdef BENCH_HAVE_LIBEVENT
            if (use_libevent) {
                while (s.done < job->n)
                    event_base_dispatch(base);
            } else
#endif
                if (job->spin) {
                while (s.done < job->n)
                    aredis_loop_run_once(loop, 0);
            } else {
                while (s.done < job->n)
                    aredis_loop_run(loop);
            }
        }
    }
    bench_mark_take(&b);
    aredis_client_get_stats(c, &st1);
    result_fill(res, &s, &a, &b);
    res->write_calls = st1.write_calls - st0.write_calls;
    res->read_calls = st1.read_calls - st0.read_calls;
    rc = 0;
out_client:
    aredis_pipeline_free(s.pipe);
    aredis_tx_free(s.tx);
    aredis_client_free(c);
    aredis_script_free(s.script);
out:
    if (loop) aredis_loop_free(loop);
#ifdef BENCH_HAVE_LIBEVENT
    if (base) event_base_free(base);
#endif
    state_free(&s);
    if (rc != 0) fprintf(stderr, "aredis: cannot run the job\n");
    return rc;
}

/* ---- hiredis async on libevent ------------------------------------------ */

#if defined(BENCH_HAVE_HIREDIS) && defined(BENCH_HAVE_LIBEVENT)
static void ha_reply(redisAsyncContext *ac, void *reply, void *data) {
    redisReply *r = reply;
    (void)ac;
    on_done(data, !r || r->type == REDIS_REPLY_ERROR, r && r->type == REDIS_REPLY_STRING,
            r ? r->len : 0);
}

static void ha_issue(run_state *s, const char *key) {
    int e;
    if (s->job->is_get)
        e = redisAsyncCommand(s->client, ha_reply, s, "GET %s", key);
    else
        e = redisAsyncCommand(s->client, ha_reply, s, "SET %s %b", key, s->val, s->job->value_size);
    if (e != REDIS_OK) {
        fprintf(stderr, "redisAsyncCommand failed\n");
        exit(1);
    }
}

static void ha_stop(run_state *s) { event_base_loopbreak(s->base); }

static void ha_ping(redisAsyncContext *ac, void *reply, void *data) {
    int *ok = data;
    redisReply *r = reply;
    *ok = r && r->type == REDIS_REPLY_STATUS ? 1 : -1;
    event_base_loopbreak(((run_state *)ac->data)->base);
}

static int run_hiredis_async(const bench_job *job, bench_result *res) {
    run_state s;
    struct event_base *base = NULL;
    redisAsyncContext *ac = NULL;
    int rc = -1, ok = 0;

    if (state_init(&s, job) != 0) goto out;
    base = event_base_new();
    if (!base) goto out;
    ac = job->unix_path ? redisAsyncConnectUnix(job->unix_path)
                        : redisAsyncConnect(job->host, job->port);
    if (!ac || ac->err) {
        fprintf(stderr, "hiredis: connect failed: %s\n", ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        ac = NULL;
        goto out;
    }
    s.client = ac;
    s.base = base;
    s.issue = ha_issue;
    s.stop = ha_stop;
    ac->data = &s;
    redisLibeventAttach(ac, base);
    redisAsyncCommand(ac, ha_ping, &ok, "PING");
    while (ok == 0)
        event_base_dispatch(base);
    if (ok < 0) {
        fprintf(stderr, "hiredis: PING failed\n");
        goto out;
    }
    bench_mark a, b;
    bench_mark_take(&a);
    if (job->n > 0) {
        issue_start(&s);
        while (s.done < job->n)
            event_base_dispatch(base);
    }
    bench_mark_take(&b);
    result_fill(res, &s, &a, &b);
    rc = 0;
out:
    if (ac) redisAsyncFree(ac);
    if (base) event_base_free(base);
    state_free(&s);
    return rc;
}
#endif

/* ---- hiredis sync -------------------------------------------------------- */

#ifdef BENCH_HAVE_HIREDIS
static void hs_append(run_state *s, const char *key) {
    redisContext *rc = s->client;
    int e;
    if (s->job->is_get)
        e = redisAppendCommand(rc, "GET %s", key);
    else
        e = redisAppendCommand(rc, "SET %s %b", key, s->val, s->job->value_size);
    if (e != REDIS_OK) {
        fprintf(stderr, "redisAppendCommand failed\n");
        exit(1);
    }
}

static int run_hiredis_sync(const bench_job *job, bench_result *res) {
    run_state s;
    redisContext *rc = NULL;
    int ret = -1;

    if (state_init(&s, job) != 0) goto out;
    rc = job->unix_path ? redisConnectUnix(job->unix_path) : redisConnect(job->host, job->port);
    if (!rc || rc->err) {
        fprintf(stderr, "hiredis: connect failed: %s\n", rc ? rc->errstr : "out of memory");
        goto out;
    }
    redisReply *ping = redisCommand(rc, "PING");
    if (!ping) {
        fprintf(stderr, "hiredis: PING failed: %s\n", rc->errstr);
        goto out;
    }
    freeReplyObject(ping);
    s.client = rc;
    /* A blocking client can only send a batch and read it back. */
    int depth = job->mode == BENCH_SEQ ? 1 : job->depth;
    bench_mark a, b;
    bench_mark_take(&a);
    while (s.done < job->n) {
        long k = job->n - s.issued;
        if (k > depth) k = depth;
        long first = s.issued;
        for (long j = 0; j < k; j++) {
            if (s.t_issue) s.t_issue[s.issued] = bench_now();
            hs_append(&s, key_of(&s, s.issued));
            s.issued++;
        }
        for (long j = 0; j < k; j++) {
            void *reply = NULL;
            if (redisGetReply(rc, &reply) != REDIS_OK) {
                fprintf(stderr, "hiredis: %s\n", rc->errstr);
                goto out;
            }
            redisReply *r = reply;
            if (r->type == REDIS_REPLY_ERROR)
                s.errors++;
            else if (job->is_get &&
                     (r->type != REDIS_REPLY_STRING || (size_t)r->len != job->value_size))
                s.bad++;
            freeReplyObject(r);
            if (s.t_issue) job->lat_us[first + j] = (bench_now() - s.t_issue[first + j]) * 1e6;
            s.done++;
        }
    }
    bench_mark_take(&b);
    result_fill(res, &s, &a, &b);
    ret = 0;
out:
    if (rc) redisFree(rc);
    state_free(&s);
    return ret;
}
#endif

/* ---- Entry --------------------------------------------------------------- */

int bench_run(bench_client client, const bench_job *job, bench_result *res) {
    memset(res, 0, sizeof *res);
    if (!bench_client_available(client)) {
        fprintf(stderr,
                "%s: not in this binary (hiredis or libevent missing; hiredis1-*: "
                "bench/compare_hiredis1, built with HIREDIS_DIR)\n",
                bench_client_name(client));
        return -1;
    }
    if (client == BENCH_AREDIS) return run_aredis(job, res, 0);
#ifdef BENCH_HAVE_LIBEVENT
    if (client == BENCH_AREDIS_LIBEVENT) return run_aredis(job, res, 1);
#endif
#if defined(BENCH_HAVE_HIREDIS) && defined(BENCH_HAVE_LIBEVENT)
    if (client == HI_ASYNC) return run_hiredis_async(job, res);
#endif
#ifdef BENCH_HAVE_HIREDIS
    if (client == HI_SYNC) return run_hiredis_sync(job, res);
#endif
    return -1;
}
