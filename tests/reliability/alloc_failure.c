/*
 * alloc-failure (reliability): allocation failure injected through the
 * allocator hooks (aredis_set_allocator) at every allocation of a whole
 * client round — make a loop, make a client, connect, await ready, SET, GET,
 * free the client, free the loop — first failing only the N-th allocation,
 * then every allocation from the N-th on. Every step may fail, but cleanly:
 * a NULL or an error code (a failed future), never a crash, never a hang
 * (each wait is bounded), never a leak (allocations minus frees through the
 * hooks is 0 after every round; the suite also runs under LeakSanitizer).
 * N grows until a round makes fewer than N allocations, i.e. runs with no
 * injected failure at all; that round must then succeed completely.
 *
 * Only allocations made through the hooks are counted: cmocka and the test
 * support use plain malloc. The allocator is reset before any assertion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"

/* ---- The counting, failing allocator ------------------------------------ */

static size_t g_seen;     /* allocation requests counted this round */
static size_t g_fail_at;  /* 1-based index of the first failure; 0 = none */
static int g_fail_rest;   /* fail every request from g_fail_at on */
static size_t g_injected; /* failures injected this round */
static long g_live;       /* successful allocations minus frees */
static int g_exempt;      /* the test's own guard timer: never failed, not counted */

static int inject(void) {
    if (g_exempt) return 0;
    size_t n = ++g_seen;
    if (g_fail_at && (n == g_fail_at || (g_fail_rest && n > g_fail_at))) {
        g_injected++;
        return 1;
    }
    return 0;
}

static void *hk_malloc(size_t n) {
    if (inject()) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}

static void *hk_calloc(size_t nmemb, size_t size) {
    if (inject()) return NULL;
    void *p = calloc(nmemb, size);
    if (p) g_live++;
    return p;
}

static void *hk_realloc(void *p, size_t n) {
    if (inject()) return NULL; /* p stays valid and live */
    void *q = realloc(p, n);
    if (q && !p) g_live++;
    return q;
}

static void hk_free(void *p) {
    if (p) g_live--;
    free(p);
}

static const aredis_allocator k_hooks = {hk_malloc, hk_calloc, hk_realloc, hk_free};

/* ---- One round ----------------------------------------------------------- */

typedef enum {
    STEP_LOOP,    /* aredis_loop_new */
    STEP_CLIENT,  /* aredis_client_new */
    STEP_CONNECT, /* aredis_client_connect */
    STEP_READY,   /* the ready future */
    STEP_SET,
    STEP_GET,
    STEP_EXTRA, /* the extended round's extra work */
    STEP_DONE,  /* everything succeeded */
    STEP__COUNT
} step;

static const char *const k_step_names[STEP__COUNT] = {
    "loop_new", "client_new", "connect", "ready", "SET", "GET", "extra", "complete"};

typedef struct {
    step failed_at; /* first step that failed, or STEP_DONE */
    int hung;       /* a bounded wait ran out */
    int wrong;      /* a step reported success with a wrong result */
    char why[200];
} round_result;

static void noop(void *arg) { (void)arg; }

/*
 * Run the loop until f is done, at most ms. The guard timer makes each turn
 * block for 50 ms at most (re-arming a timer never allocates: its heap slot
 * is reserved when it is made). Returns 0 when the bound ran out.
 */
static int bounded_until(aredis_loop *loop, aredis_timer *guard, int (*done)(const void *),
                         const void *arg, uint64_t ms) {
    uint64_t until = ts_now_ms() + ms;
    while (!done(arg)) {
        if (ts_now_ms() >= until) return 0;
        aredis_timer_start(guard, 50, 0);
        aredis_loop_run_once(loop, 1);
    }
    return 1;
}

static int future_done(const void *f) { return aredis_future_is_done(f); }

static int bounded_wait(aredis_loop *loop, aredis_timer *guard, aredis_future *f, uint64_t ms) {
    return bounded_until(loop, guard, future_done, f, ms);
}

/* The outcome of a done future: OK or its error code. */
static aredis_err outcome(const aredis_future *f) {
    const aredis_error *e = aredis_future_error(f);
    return e ? e->code : AREDIS_ERR_OK;
}

#define NPIPE 20

typedef struct {
    int calls;
    aredis_err code;
    long long integer;
    aredis_reply_type type;
} pipe_result;

/* What callbacks write outlives the client: a command still pending when
 * the client is freed completes (CANCELLED) during the free. */
typedef struct {
    pipe_result pr[NPIPE];
    int issued;
    int thens; /* then-callbacks run */
} pipe_state;

static int extra_work(aredis_loop *loop, aredis_timer *guard, aredis_client *c, const char *key,
                      pipe_state *ps, round_result *rr);

/*
 * The round of the brief; `extended` adds more allocation sites after GET
 * (pipelined commands, a reply larger than the read buffer, an aggregate
 * reply, then-callbacks and a combinator).
 */
static void run_round(const ts_server *s, size_t round_no, int extended, round_result *rr) {
    memset(rr, 0, sizeof *rr);
    rr->failed_at = STEP_LOOP;
    char key[48], val[48];
    snprintf(key, sizeof key, "af:%zu:%zu", round_no, g_fail_at);
    snprintf(val, sizeof val, "v-%zu-%zu", round_no, g_fail_at);

    aredis_loop *loop = aredis_loop_new();
    if (!loop) return;
    rr->failed_at = STEP_CLIENT;
    g_exempt++;
    aredis_timer *guard = aredis_timer_new(loop, noop, NULL);
    g_exempt--;
    if (!guard) { /* not an injected failure: the process is out of memory */
        rr->wrong = 1;
        snprintf(rr->why, sizeof rr->why, "guard timer could not be made");
        aredis_loop_free(loop);
        return;
    }

    pipe_state ps;
    memset(&ps, 0, sizeof ps);
    aredis_options o = ts_options(s);
    o.reconnect = 0;
    o.connect_timeout_ms = 2000;
    o.request_timeout_ms = 2000;
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_future *ready = NULL, *set = NULL, *get = NULL;
    if (!c) goto out;

    rr->failed_at = STEP_CONNECT;
    aredis_err e = aredis_client_connect(c);
    if (e != AREDIS_ERR_OK) goto out;

    rr->failed_at = STEP_READY;
    ready = aredis_future_ready(c);
    if (!ready) goto out;
    if (!bounded_wait(loop, guard, ready, 5000)) {
        rr->hung = 1;
        snprintf(rr->why, sizeof rr->why, "ready future not done after 5 s (state %s)",
                 aredis_state_name(aredis_client_state(c)));
        goto out;
    }
    if (outcome(ready) != AREDIS_ERR_OK) goto out;

    rr->failed_at = STEP_SET;
    set = aredis_future_command(c, "SET %s %s", key, val);
    if (!set) goto out;
    if (!bounded_wait(loop, guard, set, 5000)) {
        rr->hung = 1;
        snprintf(rr->why, sizeof rr->why, "SET not done after 5 s");
        goto out;
    }
    int set_ok = outcome(set) == AREDIS_ERR_OK;
    if (set_ok) {
        aredis_reply *r = aredis_future_reply(set);
        if (!r || r->type != AREDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
            rr->wrong = 1;
            snprintf(rr->why, sizeof rr->why, "SET succeeded with a wrong reply");
            goto out;
        }
    }

    /* GET runs even after a failed SET: the client must still answer. */
    get = aredis_future_command(c, "GET %s", key);
    if (!get) goto out;
    if (!bounded_wait(loop, guard, get, 5000)) {
        rr->hung = 1;
        snprintf(rr->why, sizeof rr->why, "GET not done after 5 s");
        goto out;
    }
    if (outcome(get) == AREDIS_ERR_OK) {
        aredis_reply *r = aredis_future_reply(get);
        /* Its own key: the value if the SET ran, else nil; never anything
         * else (a reply meant for another command). */
        int is_val = r && r->type == AREDIS_REPLY_STRING && strcmp(r->str, val) == 0;
        int is_nil = r && r->type == AREDIS_REPLY_NIL;
        if (!(is_val || (is_nil && !set_ok))) {
            rr->wrong = 1;
            snprintf(rr->why, sizeof rr->why, "GET succeeded with a wrong reply (SET %s)",
                     set_ok ? "ok" : "failed");
            goto out;
        }
        if (!set_ok)
            rr->failed_at = STEP_SET;
        else if (!extended)
            rr->failed_at = STEP_DONE;
        else
            rr->failed_at = extra_work(loop, guard, c, key, &ps, rr) ? STEP_DONE : STEP_EXTRA;
    } else {
        rr->failed_at = set_ok ? STEP_GET : STEP_SET;
    }

out:
    aredis_future_release(ready);
    aredis_future_release(set);
    aredis_future_release(get);
    aredis_client_free(c);
    aredis_timer_free(guard);
    aredis_loop_free(loop);
    /* Every accepted command completed exactly once, by now at the latest. */
    for (int i = 0; i < ps.issued; i++) {
        if (ps.pr[i].calls != 1 && !rr->wrong) {
            rr->wrong = 1;
            snprintf(rr->why, sizeof rr->why, "pipelined INCR %d completed %d times", i,
                     ps.pr[i].calls);
        }
    }
}

/* ---- The extended round's extra work -------------------------------------- */

#define BIG (64u * 1024u)

static void on_pipe(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    pipe_result *p = data;
    p->calls++;
    p->code = err ? err->code : AREDIS_ERR_OK;
    if (r) {
        p->type = r->type;
        p->integer = r->integer;
    }
}

static void on_then(aredis_future *f, void *data) {
    (void)f;
    (*(int *)data)++;
}

static int pipe_done(const void *arg) {
    const pipe_state *ps = arg;
    for (int i = 0; i < ps->issued; i++)
        if (ps->pr[i].calls == 0) return 0;
    return 1;
}

/* Returns 1 when everything worked; 0 after a clean failure; sets rr->hung
 * or rr->wrong for a hang or a wrong result. */
static int extra_work(aredis_loop *loop, aredis_timer *guard, aredis_client *c, const char *key,
                      pipe_state *ps, round_result *rr) {
    int all_ok = 1;
    /* 1. NPIPE INCRs issued at once; the ones that succeed are 1, 2, ... */
    pipe_result *pr = ps->pr;
    int issued = 0;
    for (int i = 0; i < NPIPE; i++) {
        if (aredis_command(c, on_pipe, &pr[i], "INCR %s:n", key) != AREDIS_ERR_OK) {
            all_ok = 0;
            break;
        }
        ps->issued = ++issued;
    }
    if (!bounded_until(loop, guard, pipe_done, ps, 5000)) {
        rr->hung = 1;
        snprintf(rr->why, sizeof rr->why, "pipelined INCRs not done after 5 s");
        return 0;
    }
    long long next = 1;
    for (int i = 0; i < issued; i++) {
        if (pr[i].calls != 1) {
            rr->wrong = 1;
            snprintf(rr->why, sizeof rr->why, "INCR %d completed %d times", i, pr[i].calls);
            return 0;
        }
        if (pr[i].code != AREDIS_ERR_OK) {
            all_ok = 0;
            continue;
        }
        if (pr[i].type != AREDIS_REPLY_INTEGER || pr[i].integer != next++) {
            rr->wrong = 1;
            snprintf(rr->why, sizeof rr->why, "INCR %d got a wrong reply", i);
            return 0;
        }
    }

    /* 2. A value larger than one read: read back whole. */
    static char big[BIG];
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('A' + i % 53 % 26);
    aredis_future *fs[3] = {NULL, NULL, NULL};
    fs[0] = aredis_future_command(c, "SET %s:big %b", key, big, (size_t)BIG);
    fs[1] = aredis_future_command(c, "GET %s:big", key);
    /* 3. An aggregate reply (a map under RESP3). */
    fs[2] = aredis_future_command(c, "HGETALL %s:h", key);
    aredis_future *hs = aredis_future_command(c, "HSET %s:h f1 v1 f2 v2", key);
    int then_added = 0;
    aredis_future *all = NULL;
    if (fs[0] && fs[1] && fs[2] && hs) {
        for (int i = 0; i < 3; i++)
            if (aredis_future_then(fs[i], on_then, &ps->thens) == AREDIS_ERR_OK) then_added++;
        all = aredis_future_all(fs, 3);
    }
    int ok = all != NULL;
    if (all && !bounded_wait(loop, guard, all, 5000)) {
        rr->hung = 1;
        snprintf(rr->why, sizeof rr->why, "SET/GET big + HGETALL not done after 5 s");
        ok = 0;
    }
    if (ok && hs && !bounded_wait(loop, guard, hs, 5000)) {
        rr->hung = 1;
        snprintf(rr->why, sizeof rr->why, "HSET not done after 5 s");
        ok = 0;
    }
    if (ok) {
        for (int i = 0; i < 3; i++)
            if (!aredis_future_is_done(fs[i])) {
                rr->wrong = 1;
                snprintf(rr->why, sizeof rr->why, "all() done before its input %d", i);
            }
        if (ps->thens != then_added) {
            rr->wrong = 1;
            snprintf(rr->why, sizeof rr->why, "%d of %d then-callbacks ran", ps->thens, then_added);
        }
        if (!aredis_future_error(fs[1])) {
            aredis_reply *r = aredis_future_reply(fs[1]);
            int is_big =
                r->type == AREDIS_REPLY_STRING && r->len == BIG && memcmp(r->str, big, BIG) == 0;
            int is_nil = r->type == AREDIS_REPLY_NIL && aredis_future_error(fs[0]);
            if (!is_big && !is_nil) {
                rr->wrong = 1;
                snprintf(rr->why, sizeof rr->why, "GET big returned a wrong value");
            }
        }
        if (!aredis_future_error(fs[2])) {
            /* Issued before the HSET: the hash does not exist yet. */
            aredis_reply *r = aredis_future_reply(fs[2]);
            if ((r->type != AREDIS_REPLY_MAP && r->type != AREDIS_REPLY_ARRAY) || r->elements) {
                rr->wrong = 1;
                snprintf(rr->why, sizeof rr->why, "HGETALL of a missing key not empty");
            }
        }
        if (aredis_future_error(all) || aredis_future_error(hs)) ok = 0;
    }
    if (ok && !rr->wrong) {
        aredis_future *h = aredis_future_command(c, "HGETALL %s:h", key);
        if (!h) {
            ok = 0;
        } else if (!bounded_wait(loop, guard, h, 5000)) {
            rr->hung = 1;
            snprintf(rr->why, sizeof rr->why, "HGETALL not done after 5 s");
            ok = 0;
        } else if (aredis_future_error(h)) {
            ok = 0;
        } else {
            aredis_reply *r = aredis_future_reply(h);
            if (r->type != AREDIS_REPLY_MAP || r->elements != 4 ||
                r->element[0]->type != AREDIS_REPLY_STRING) {
                rr->wrong = 1;
                snprintf(rr->why, sizeof rr->why, "HGETALL returned a wrong reply");
            }
        }
        aredis_future_release(h);
    }
    for (int i = 0; i < 3; i++)
        aredis_future_release(fs[i]);
    aredis_future_release(hs);
    aredis_future_release(all);
    return all_ok && ok && !rr->hung && !rr->wrong;
}

/* ---- The sweep ----------------------------------------------------------- */

static void sweep(int fail_rest, int extended) {
    ts_server *s = ts_server_start_default();
    size_t by_step[STEP__COUNT] = {0};
    size_t clean_allocs = 0, rounds = 0;
    int clean = 0;
    char failure[400] = "";

    for (size_t n = 1; n <= 5000 && !clean; n++) {
        g_seen = 0;
        g_injected = 0;
        g_live = 0;
        g_fail_at = n;
        g_fail_rest = fail_rest;
        g_exempt = 0;
        aredis_set_allocator(&k_hooks);
        round_result rr;
        run_round(s, n, extended, &rr);
        aredis_reset_allocator();
        rounds++;
        by_step[rr.failed_at]++;

        if (rr.hung || rr.wrong) {
            snprintf(failure, sizeof failure, "N=%zu (%s): %s", n,
                     fail_rest ? "fail from N on" : "fail only N", rr.why);
            break;
        }
        if (g_live != 0) {
            snprintf(failure, sizeof failure,
                     "N=%zu (%s): %ld allocation(s) not freed after the round "
                     "(failed at step %s)",
                     n, fail_rest ? "fail from N on" : "fail only N", g_live,
                     k_step_names[rr.failed_at]);
            break;
        }
        if (g_injected == 0) {
            /* N is past the last allocation of a full round: nothing was
             * injected, so everything must have worked. */
            if (rr.failed_at != STEP_DONE) {
                snprintf(failure, sizeof failure,
                         "N=%zu: a round with no injected failure stopped at %s", n,
                         k_step_names[rr.failed_at]);
                break;
            }
            clean = 1;
            clean_allocs = g_seen;
        } else if (!fail_rest && g_injected != 1) {
            snprintf(failure, sizeof failure, "N=%zu: %zu failures injected, expected 1", n,
                     g_injected);
            break;
        }
    }

    ts_log("%s%s: %zu rounds; a full round makes %zu allocations",
           fail_rest ? "fail from N on" : "fail only the N-th", extended ? ", extended round" : "",
           rounds, clean_allocs);
    for (int i = 0; i < STEP__COUNT; i++)
        if (by_step[i]) ts_log("  rounds that stopped at %-10s: %zu", k_step_names[i], by_step[i]);
    if (failure[0]) fail_msg("%s", failure);
    assert_true(clean);
    assert_true(clean_allocs > 0);
    ts_server_stop(s);
}

static void test_fail_only_nth(void **state) {
    (void)state;
    sweep(0, 0);
}

static void test_fail_from_nth_on(void **state) {
    (void)state;
    sweep(1, 0);
}

static void test_extended_fail_only_nth(void **state) {
    (void)state;
    sweep(0, 1);
}

static void test_extended_fail_from_nth_on(void **state) {
    (void)state;
    sweep(1, 1);
}

/* Sanity of the harness itself: with no injection a round completes, makes
 * allocations through the hooks, and frees them all. */
static void test_hooks_see_the_library(void **state) {
    (void)state;
    ts_server *s = ts_server_start_default();
    g_seen = 0;
    g_injected = 0;
    g_live = 0;
    g_fail_at = 0;
    g_fail_rest = 0;
    aredis_set_allocator(&k_hooks);
    round_result rr;
    run_round(s, 0, 1, &rr);
    aredis_reset_allocator();
    ts_log("a clean round: %zu allocations, %ld live after it", g_seen, g_live);
    assert_int_equal(rr.failed_at, STEP_DONE);
    assert_false(rr.hung);
    assert_false(rr.wrong);
    assert_true(g_seen > 0);
    assert_int_equal(g_live, 0);
    assert_int_equal(g_injected, 0);
    ts_server_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_see_the_library),
        cmocka_unit_test(test_fail_only_nth),
        cmocka_unit_test(test_fail_from_nth_on),
        cmocka_unit_test(test_extended_fail_only_nth),
        cmocka_unit_test(test_extended_fail_from_nth_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
