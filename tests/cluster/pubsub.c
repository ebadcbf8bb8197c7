/*
 * Sharded pub/sub on a cluster (aredis/cluster.h, src/features/cluster_pubsub.c)
 * against a real 3-primary, 1-replica-each cluster (Redis 7: SSUBSCRIBE,
 * SPUBLISH): one subscription's 30 shard channels spread over every
 * primary, confirmed by every node before its callback, every message once
 * with its channel and (binary) payload while GETs on the same shared RESP3
 * connections read what they should; subscribing before the topology is
 * known (one call of several channels; several calls of one channel each);
 * unsubscribing (the server stops sending, a name never held is fine); a
 * channel following its slot to another primary; a node connection's own
 * reconnect replaying its channels; a primary's failover (then the old
 * primary's return as a replica: still once); freeing from inside a
 * handler, after the cluster, with calls in flight, and the servers told;
 * invalid arguments; an ACL that refuses a channel.
 *
 * Redis refuses an SSUBSCRIBE (or SUNSUBSCRIBE) whose channels hash to
 * several slots (CROSSSLOT), even on one node: cases about something else
 * than grouping keep each call to one slot (hash-tagged pairs, or a call
 * per channel once the topology is known).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "aredis/cluster.h"
#include "ts.h"

#define g_loop ts_case_loop()

static ts_cluster *g_tc;

static aredis_cluster *cluster_with(const ts_cluster *tc, int node, const char *user,
                                    const char *pass) {
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    static char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", ts_cluster_port(tc, node));
    static const char *seeds[1];
    seeds[0] = seed;
    o.seeds = seeds;
    o.nseeds = 1;
    aredis_options no = AREDIS_OPTIONS_INIT;
    no.reconnect_delay_ms = 20;
    no.max_reconnect_delay_ms = 200;
    no.username = user;
    no.password = pass;
    o.node = no;
    aredis_cluster *cl = aredis_cluster_new(g_loop, &o);
    if (!cl) fail_msg("cluster: %s", aredis_call_error()->detail);
    return cl;
}

static aredis_cluster *cluster_on(const ts_cluster *tc, int node) {
    return cluster_with(tc, node, NULL, NULL);
}

static int topology_known(const void *arg) {
    aredis_cluster_stats st;
    aredis_cluster_get_stats(arg, &st);
    return st.slots_known == TS_CLUSTER_SLOTS;
}

/* The port of the primary serving channel (by the cluster's own word). */
static int owner_port(const char *channel) {
    return ts_cluster_node_for_slot(g_tc, ts_cluster_keyslot(g_tc, channel));
}

/* ---- What a subscription received ----------------------------------------- */

typedef struct msg {
    aredis_sub_kind kind;
    char ch[48];
    size_t chlen;
    char pl[48];
    size_t pllen;
} msg;

typedef struct rec {
    msg *v;
    size_t n, cap;
    size_t events[8]; /* by aredis_sub_event */
    char last_event_detail[200];
    /* Free this subscription from inside the first message's handler. */
    aredis_cluster_sub *free_on_first;
    aredis_cluster_sub *self;
    int bad_sub; /* a handler ran with another subscription than self */
} rec;

static void on_msg(aredis_cluster_sub *s, const aredis_message *m, void *data) {
    rec *r = data;
    if (r->self && s != r->self) r->bad_sub++;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        assert_non_null(r->v);
    }
    msg *x = &r->v[r->n++];
    memset(x, 0, sizeof *x);
    x->kind = m->kind;
    x->chlen = m->channel_len < sizeof x->ch ? m->channel_len : sizeof x->ch - 1;
    memcpy(x->ch, m->channel, x->chlen);
    x->pllen = m->payload_len < sizeof x->pl ? m->payload_len : sizeof x->pl - 1;
    memcpy(x->pl, m->payload, x->pllen);
    if (r->free_on_first) {
        aredis_cluster_sub *f = r->free_on_first;
        r->free_on_first = NULL;
        r->self = NULL;
        aredis_cluster_sub_free(f);
    }
}

static void on_ev(aredis_cluster_sub *s, aredis_sub_event ev, const aredis_error *err, void *data) {
    rec *r = data;
    if (r->self && s != r->self) r->bad_sub++;
    if ((unsigned)ev < 8) r->events[ev]++;
    snprintf(r->last_event_detail, sizeof r->last_event_detail, "%s",
             err && err->detail ? err->detail : "");
}

/* How many messages of channel with exactly this payload arrived. */
static size_t seen(const rec *r, const char *ch, const void *pl, size_t pllen) {
    size_t k = 0, cl = strlen(ch);
    for (size_t i = 0; i < r->n; i++)
        k += r->v[i].chlen == cl && memcmp(r->v[i].ch, ch, cl) == 0 && r->v[i].pllen == pllen &&
             memcmp(r->v[i].pl, pl, pllen) == 0;
    return k;
}

/* How many messages of channel arrived, whatever their payload. */
static size_t seen_on(const rec *r, const char *ch) {
    size_t k = 0, cl = strlen(ch);
    for (size_t i = 0; i < r->n; i++)
        k += r->v[i].chlen == cl && memcmp(r->v[i].ch, ch, cl) == 0;
    return k;
}

static int all_shard(const rec *r) {
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].kind != AREDIS_SUB_SHARD) return 0;
    return 1;
}

typedef struct seen_arg {
    const rec *r;
    const char *ch;
    const void *pl;
    size_t pllen;
} seen_arg;

static int has_seen(const void *arg) {
    const seen_arg *a = arg;
    return seen(a->r, a->ch, a->pl, a->pllen) > 0;
}

static int wait_seen(const rec *r, const char *ch, const char *pl, uint64_t ms) {
    seen_arg a = {r, ch, pl, strlen(pl)};
    return ts_wait_until(g_loop, has_seen, &a, ms);
}

static int event_seen(const void *arg) {
    const rec *r = arg;
    return r->events[AREDIS_SUB_RESUBSCRIBED] > 0;
}

/* ---- Subscribe / unsubscribe callbacks ---------------------------------------- */

static int g_in_call; /* set around the calls: a callback inside one is counted */

typedef struct done {
    int calls;
    int inside; /* ran inside the call that issued it */
    aredis_err code;
    char detail[200];
    char prefix[32];
    int had_reply;
    /* When set: at the callback, count the channels matching pattern the
     * server holds on each of these ports (PUBSUB SHARDCHANNELS). */
    const int *ports;
    int nports;
    const char *pattern;
    long long server_held;
} done;

static void on_done(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    done *d = data;
    d->calls++;
    d->inside += g_in_call;
    d->code = err ? err->code : AREDIS_ERR_OK;
    snprintf(d->detail, sizeof d->detail, "%s", err && err->detail ? err->detail : "");
    snprintf(d->prefix, sizeof d->prefix, "%s", err ? err->prefix : "");
    d->had_reply = r != NULL;
    if (d->ports) {
        d->server_held = 0;
        for (int i = 0; i < d->nports; i++) {
            aredis_reply *x =
                ts_node_cmd(d->ports[i], "PUBSUB", "SHARDCHANNELS", d->pattern, (char *)NULL);
            if (x && x->type == AREDIS_REPLY_ARRAY)
                d->server_held += (long long)x->elements;
            else
                d->server_held = -1000;
            aredis_reply_free(x);
        }
    }
}

static aredis_err ssub(aredis_cluster_sub *s, size_t n, const char *const *names,
                       const size_t *lens, done *d) {
    g_in_call = 1;
    aredis_err e = aredis_cluster_ssubscribe(s, n, names, lens, on_done, d);
    g_in_call = 0;
    return e;
}

static aredis_err sunsub(aredis_cluster_sub *s, size_t n, const char *const *names, done *d) {
    g_in_call = 1;
    aredis_err e = aredis_cluster_sunsubscribe(s, n, names, NULL, on_done, d);
    g_in_call = 0;
    return e;
}

static int called(const void *arg) { return ((const done *)arg)->calls > 0; }

/* Wait for d's callback: it ran once, not inside the call, and succeeded
 * (s, when given, says how many channels it holds in the failure). */
static void wait_sub_ok(const done *d, const aredis_cluster_sub *s, const char *what) {
    if (!ts_wait_until(g_loop, called, d, 10000)) fail_msg("%s: the callback never ran", what);
    if (d->code != AREDIS_ERR_OK)
        fail_msg("%s: %s (%s); the subscription now holds %zu channels", what,
                 aredis_err_name(d->code), d->detail, aredis_cluster_sub_count(s));
    assert_int_equal(d->calls, 1);
    assert_int_equal(d->inside, 0);
}

static void wait_ok(const done *d, const char *what) { wait_sub_ok(d, NULL, what); }

/* ---- Publishing ------------------------------------------------------------- */

/* SPUBLISH on the node at port (a connection of its own): the receivers
 * the server counted, or -1 for an error reply (then why says it). */
static long long node_publish(int port, const char *ch, const void *pl, size_t pllen, char *why,
                              size_t whylen) {
    const char *argv[] = {"SPUBLISH", ch, pl};
    size_t lens[] = {8, strlen(ch), pllen};
    char err[200];
    aredis_reply *r = ts_node_command(port, 3, argv, lens, err, sizeof err);
    if (!r) fail_msg("SPUBLISH %s on port %d: %s", ch, port, err);
    long long n = -1;
    if (r->type == AREDIS_REPLY_INTEGER)
        n = r->integer;
    else if (why)
        snprintf(why, whylen, "%s", r->str ? r->str : aredis_reply_type_name(r->type));
    aredis_reply_free(r);
    return n;
}

static long long publish(int port, const char *ch, const char *pl) {
    char why[200] = "";
    long long n = node_publish(port, ch, pl, strlen(pl), why, sizeof why);
    if (n < 0) fail_msg("SPUBLISH %s %s on port %d: %s", ch, pl, port, why);
    return n;
}

/* Replies of cluster commands: SPUBLISH counts, GET values. */
typedef struct tally {
    size_t done, errors, wrong;
    char first_error[200];
} tally;

typedef struct op {
    tally *t;
    char want[32];  /* a GET's value */
    long long recv; /* a SPUBLISH's receivers; -1: not a SPUBLISH */
} op;

static void on_op(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    op *o = data;
    tally *t = o->t;
    t->done++;
    if (err) {
        if (!t->errors++) snprintf(t->first_error, sizeof t->first_error, "%s", err->detail);
    } else if (o->recv >= 0 && (!r || r->type != AREDIS_REPLY_INTEGER || r->integer != o->recv)) {
        t->wrong++;
    } else if (o->want[0] && (!r || r->type != AREDIS_REPLY_STRING || strcmp(r->str, o->want))) {
        t->wrong++;
    }
    free(o);
}

static op *op_new(tally *t, const char *want, long long recv) {
    op *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->t = t;
    snprintf(o->want, sizeof o->want, "%s", want ? want : "");
    o->recv = recv;
    return o;
}

static void tally_ok(const tally *t, size_t n) {
    assert_true(ts_wait_count(g_loop, &t->done, n, 10000));
    if (t->errors) fail_msg("%zu errors, the first: %s", t->errors, t->first_error);
    assert_int_equal(t->wrong, 0);
}

/* Names "<prefix><i>" until each of the three primaries owns at least
 * `per` of them; n in all (n >= 3 * per). Ports into port[]. */
static void names_over_primaries(const char *prefix, int n, int per, char (*names)[32],
                                 const char **np, int *port, int *ports /* [3] */) {
    int counts[3] = {0, 0, 0}, nports = 0, got = 0;
    for (int i = 0; got < n && i < 10000; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s%d", prefix, i);
        int slot = ts_cluster_keyslot(g_tc, name);
        assert_int_equal(slot, (int)aredis_cluster_keyslot(name, strlen(name)));
        int p = ts_cluster_node_for_slot(g_tc, slot);
        assert_true(p > 0);
        int k = 0;
        while (k < nports && ports[k] != p)
            k++;
        if (k == nports) {
            assert_true(nports < 3);
            ports[nports++] = p;
        }
        /* Keep the last places for primaries still short of `per`. */
        int short_of = 0;
        for (int j = 0; j < 3; j++)
            short_of += counts[j] < per ? per - counts[j] : 0;
        if (counts[k] >= per && n - got <= short_of) continue;
        counts[k]++;
        snprintf(names[got], 32, "%s", name);
        np[got] = names[got];
        port[got++] = p;
    }
    assert_int_equal(got, n);
    assert_int_equal(nports, 3);
    for (int j = 0; j < 3; j++)
        assert_true(counts[j] >= per);
}

/* A PING through the cluster, answered: the loop has run a while. */
static void roundtrip(aredis_cluster *cl) {
    tally t = {0};
    assert_int_equal(aredis_cluster_command(cl, on_op, op_new(&t, NULL, -1), "PING"),
                     AREDIS_ERR_OK);
    tally_ok(&t, 1);
}

/* Lines of CLIENT LIST on port that speak RESP3 (this library's node
 * connections: the fixture's own speak RESP2); the sum of their ssub=. */
static int resp3_clients(int port, long *ssub) {
    aredis_reply *r = ts_node_cmd(port, "CLIENT", "LIST", (char *)NULL);
    if (!r || !r->str) {
        aredis_reply_free(r);
        return -1;
    }
    int n = 0;
    if (ssub) *ssub = 0;
    for (const char *line = r->str; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (strstr(buf, " resp=3")) {
            n++;
            const char *s = strstr(buf, " ssub=");
            if (s && ssub) *ssub += atol(s + 6);
        }
        line = end ? end + 1 : NULL;
    }
    aredis_reply_free(r);
    return n;
}

/* ---- 1. Across nodes ------------------------------------------------------------ */

static void test_across_nodes(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(g_tc, 0);
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    enum { N = 30, ROUNDS = 3 };
    char names[N][32];
    const char *np[N];
    int port[N], ports[3];
    names_over_primaries("ps1:", N, 3, names, np, port, ports);
    /* A value next to each channel (same slot: "{<channel>}v"). */
    tally t = {0};
    for (int i = 0; i < N; i++)
        assert_int_equal(
            aredis_cluster_command(cl, on_op, op_new(&t, NULL, -1), "SET {%s}v val%d", np[i], i),
            AREDIS_ERR_OK);
    tally_ok(&t, N);

    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    assert_non_null(s);
    r.self = s;
    done d = {0};
    d.ports = ports;
    d.nports = 3;
    d.pattern = "ps1:*";
    assert_int_equal(ssub(s, N, np, NULL, &d), AREDIS_ERR_OK);
    assert_int_equal(d.calls, 0);
    wait_sub_ok(&d, s, "SSUBSCRIBE of 30 channels over 3 primaries");
    /* Every node had confirmed when the callback ran: the servers held all
     * 30 then. */
    assert_int_equal(d.server_held, N);
    assert_true(d.had_reply);
    assert_int_equal(aredis_cluster_sub_count(s), N);
    /* One connection per primary (the subscription shares it): one RESP3
     * client on each, holding its channels. */
    for (int k = 0; k < 3; k++) {
        long ssubs = 0;
        int want = 0;
        for (int i = 0; i < N; i++)
            want += port[i] == ports[k];
        assert_int_equal(resp3_clients(ports[k], &ssubs), 1);
        assert_int_equal(ssubs, want);
    }

    /* Publish through the cluster (SPUBLISH's channel is its key: it goes to
     * the owner, the subscriber's own connection), GETs in between. */
    tally pt = {0};
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < N; i++) {
            char pl[32];
            size_t pll = (size_t)snprintf(pl, sizeof pl, "r%d-%d", round, i);
            if (round == 1) pl[1] = '\0'; /* binary: a NUL inside */
            const char *argv[] = {"SPUBLISH", np[i], pl};
            size_t lens[] = {8, strlen(np[i]), pll};
            assert_int_equal(aredis_cluster_argv(cl, on_op, op_new(&pt, NULL, 1), 3, argv, lens),
                             AREDIS_ERR_OK);
            char want[32];
            snprintf(want, sizeof want, "val%d", i);
            assert_int_equal(
                aredis_cluster_command(cl, on_op, op_new(&pt, want, -1), "GET {%s}v", np[i]),
                AREDIS_ERR_OK);
        }
    tally_ok(&pt, 2 * N * ROUNDS);
    /* A message is pushed to its subscriber before the publisher's reply:
     * on the same connection, every one is in. */
    assert_int_equal(r.n, N * ROUNDS);
    /* One more on each node, waited for: anything doubled would be in. */
    for (int k = 0; k < 3; k++) {
        int i = 0;
        while (port[i] != ports[k])
            i++;
        assert_int_equal(publish(ports[k], np[i], "end"), 1);
        assert_true(wait_seen(&r, np[i], "end", 5000));
    }
    assert_int_equal(r.n, N * ROUNDS + 3);
    assert_true(all_shard(&r));
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < N; i++) {
            char pl[32];
            size_t pll = (size_t)snprintf(pl, sizeof pl, "r%d-%d", round, i);
            if (round == 1) pl[1] = '\0';
            if (seen(&r, np[i], pl, pll) != 1)
                fail_msg("%s round %d: seen %zu times", np[i], round, seen(&r, np[i], pl, pll));
        }
    assert_int_equal(r.bad_sub, 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(r.events[AREDIS_SUB_ERROR], 0);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

/* ---- 2. Before the topology is known ---------------------------------------------- */

/* Names over the three primaries kept to one slot per node (a pair per
 * primary sharing a hash tag: "{<prefix><i>}a", "{<prefix><i>}b"), for the
 * cases about something else than grouping. np[2k], np[2k+1] are
 * primary k's; port[] their owner. */
static void pairs_over_primaries(const char *prefix, char (*names)[32], const char **np, int *port,
                                 int *ports) {
    char tags[3][32];
    const char *tp[3];
    int tport[3];
    names_over_primaries(prefix, 3, 1, tags, tp, tport, ports);
    for (int k = 0; k < 3; k++) {
        snprintf(names[2 * k], 32, "{%s}a", tp[k]);
        snprintf(names[2 * k + 1], 32, "{%s}b", tp[k]);
        np[2 * k] = names[2 * k];
        np[2 * k + 1] = names[2 * k + 1];
        port[2 * k] = port[2 * k + 1] = tport[k];
        ports[k] = tport[k];
    }
}

static void test_before_topology(void **state) {
    (void)state;
    char names[6][32];
    const char *np[6];
    int port[6], ports[3];
    pairs_over_primaries("ps2:", names, np, port, ports);
    aredis_cluster *cl = cluster_on(g_tc, 1);
    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    assert_int_equal(st.refreshes, 0); /* nothing read yet */
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    assert_non_null(s);
    r.self = s;
    done d = {0};
    d.ports = ports;
    d.nports = 3;
    d.pattern = "{ps2:*";
    assert_int_equal(ssub(s, 6, np, NULL, &d), AREDIS_ERR_OK);
    assert_int_equal(d.calls, 0);
    wait_sub_ok(&d, s, "SSUBSCRIBE before the topology");
    aredis_cluster_get_stats(cl, &st);
    assert_true(st.refreshes >= 1);
    assert_int_equal(d.server_held, 6); /* every node had confirmed */
    assert_int_equal(aredis_cluster_sub_count(s), 6);
    /* Published through the cluster (to each channel's owner: the
     * subscriber's own connection): five each, all in flight at once. */
    tally t = {0};
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < 6; i++)
            assert_int_equal(aredis_cluster_command(cl, on_op, op_new(&t, NULL, 1),
                                                    "SPUBLISH %s hello%d", np[i], j),
                             AREDIS_ERR_OK);
    tally_ok(&t, 30);
    for (int i = 0; i < 6; i++) /* one more each, from outside: after it, nothing more */
        assert_int_equal(publish(port[i], np[i], "end"), 1);
    for (int i = 0; i < 6; i++)
        assert_true(wait_seen(&r, np[i], "end", 5000));
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < 6; i++) {
            char pl[16];
            snprintf(pl, sizeof pl, "hello%d", j);
            if (seen(&r, np[i], pl, strlen(pl)) != 1)
                fail_msg("%s %s arrived %zu times (the servers ran SPUBLISH more often than it "
                         "was issued?)",
                         np[i], pl, seen(&r, np[i], pl, strlen(pl)));
        }
    assert_int_equal(r.n, 36);
    /* No move happened: nothing to tell. */
    assert_int_equal(r.events[AREDIS_SUB_RESUBSCRIBED], 0);
    assert_int_equal(d.calls, 1);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

/* ---- 3. Unsubscribe ------------------------------------------------------------------- */

static void test_unsubscribe(void **state) {
    (void)state;
    enum { N = 6 };
    char names[N][32];
    const char *np[N];
    int port[N], ports[3];
    pairs_over_primaries("ps3:", names, np, port, ports);
    aredis_cluster *cl = cluster_on(g_tc, 0);
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    r.self = s;
    done d = {0};
    assert_int_equal(ssub(s, N, np, NULL, &d), AREDIS_ERR_OK);
    wait_sub_ok(&d, s, "SSUBSCRIBE");
    /* Per primary: "a" goes, "b" (same node, same slot) stays. */
    const char *gone[3], *kept[3];
    for (int k = 0; k < 3; k++) {
        gone[k] = np[2 * k];
        kept[k] = np[2 * k + 1];
    }
    done u = {0};
    assert_int_equal(sunsub(s, 3, gone, &u), AREDIS_ERR_OK);
    assert_int_equal(u.calls, 0);
    wait_ok(&u, "SUNSUBSCRIBE of 3 channels on 3 primaries");
    assert_int_equal(aredis_cluster_sub_count(s), N - 3);
    /* The servers stopped sending them... */
    for (int k = 0; k < 3; k++)
        assert_int_equal(publish(ports[k], gone[k], "late"), 0);
    /* ...and what comes behind them on the same connection arrives alone. */
    for (int k = 0; k < 3; k++)
        assert_int_equal(publish(ports[k], kept[k], "after"), 1);
    for (int k = 0; k < 3; k++)
        assert_true(wait_seen(&r, kept[k], "after", 5000));
    for (int k = 0; k < 3; k++)
        assert_int_equal(seen_on(&r, gone[k]), 0);
    assert_int_equal(r.n, 3);

    /* A name never held: OK, the callback later, no error. */
    const char *never[] = {"ps3:never-held"};
    done v = {0};
    assert_int_equal(sunsub(s, 1, never, &v), AREDIS_ERR_OK);
    assert_int_equal(v.calls, 0);
    wait_ok(&v, "SUNSUBSCRIBE of a name not held");
    assert_int_equal(aredis_cluster_sub_count(s), N - 3);
    /* Unsubscribed twice: the same. */
    done w = {0};
    assert_int_equal(sunsub(s, 1, gone, &w), AREDIS_ERR_OK);
    assert_int_equal(w.calls, 0);
    wait_ok(&w, "SUNSUBSCRIBE again");
    assert_int_equal(aredis_cluster_sub_count(s), N - 3);
    /* The rest still delivers. */
    for (int k = 0; k < 3; k++)
        assert_int_equal(publish(ports[k], kept[k], "still"), 1);
    for (int k = 0; k < 3; k++)
        assert_true(wait_seen(&r, kept[k], "still", 5000));
    /* All of them (held or not): nothing held, nothing sent. */
    done x = {0};
    assert_int_equal(sunsub(s, N, np, &x), AREDIS_ERR_OK);
    wait_ok(&x, "SUNSUBSCRIBE of everything");
    assert_int_equal(aredis_cluster_sub_count(s), 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(publish(ports[k], kept[k], "none"), 0);
    assert_int_equal(r.n, 6);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

/* ---- 4. A channel moves with its slot ----------------------------------------------- */

/* Publish "<tag><k>" on port until one of them arrives (bounded): the
 * number of the first to arrive, or -1. Fails at once when the
 * subscription stops holding `held` channels or reports an error. */
static int publish_until_seen(rec *r, const aredis_cluster_sub *s, size_t held, int port,
                              const char *ch, const char *tag, uint64_t ms) {
    uint64_t until = ts_now_ms() + ms;
    for (int k = 0; ts_now_ms() < until; k++) {
        char pl[32];
        snprintf(pl, sizeof pl, "%s%d", tag, k);
        char why[200] = "";
        long long n = node_publish(port, ch, pl, strlen(pl), why, sizeof why);
        if (n < 0 && k % 10 == 0) ts_log("SPUBLISH %s on port %d: %s", ch, port, why);
        /* A little loop time for each: the message comes or it does not. */
        seen_arg a = {r, ch, pl, strlen(pl)};
        int got = ts_wait_until(g_loop, has_seen, &a, 100);
        if (aredis_cluster_sub_count(s) != held || r->events[AREDIS_SUB_ERROR])
            fail_msg("waiting for %s on port %d: the subscription holds %zu channels (of %zu); "
                     "events: %zu resubscribed, %zu dropped, %zu errors (last: \"%s\")",
                     ch, port, aredis_cluster_sub_count(s), held,
                     r->events[AREDIS_SUB_RESUBSCRIBED], r->events[AREDIS_SUB_DROPPED],
                     r->events[AREDIS_SUB_ERROR], r->last_event_detail);
        if (got) {
            for (int j = 0; j <= k; j++) {
                char p2[32];
                snprintf(p2, sizeof p2, "%s%d", tag, j);
                if (seen(r, ch, p2, strlen(p2)) > 1) fail_msg("%s %s arrived twice", ch, p2);
            }
            return k;
        }
    }
    return -1;
}

static void test_moves_with_its_slot(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(g_tc, 0);
    /* Two channels of one slot move together. */
    const char *movers[] = {"{ps4:m}x", "{ps4:m}y"};
    int slot = ts_cluster_keyslot(g_tc, movers[0]);
    assert_int_equal(ts_cluster_keyslot(g_tc, movers[1]), slot);
    int from = ts_cluster_node_for_slot(g_tc, slot), to = -1;
    for (int i = 0; i < ts_cluster_nodes(g_tc) && to < 0; i++)
        if (ts_cluster_is_primary(g_tc, i) && ts_cluster_port(g_tc, i) != from)
            to = ts_cluster_port(g_tc, i);
    assert_true(from > 0 && to > 0);
    /* A companion on the old owner, in another slot: it stays there. (Its
     * own call: one SSUBSCRIBE may only name channels of one slot.) */
    char stay[32] = "";
    for (int i = 0; !stay[0]; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "ps4:stay%d", i);
        if (ts_cluster_keyslot(g_tc, nm) != slot && owner_port(nm) == from)
            snprintf(stay, sizeof stay, "%s", nm);
    }
    const char *sp[] = {stay};
    /* The topology known first: each call is placed on its own. */
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    r.self = s;
    done d = {0}, d2 = {0};
    assert_int_equal(ssub(s, 2, movers, NULL, &d), AREDIS_ERR_OK);
    assert_int_equal(ssub(s, 1, sp, NULL, &d2), AREDIS_ERR_OK);
    wait_sub_ok(&d, s, "SSUBSCRIBE");
    wait_sub_ok(&d2, s, "SSUBSCRIBE");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(publish(from, movers[i], "before"), 1);
        assert_true(wait_seen(&r, movers[i], "before", 5000));
    }

    ts_cluster_migrate_slot(g_tc, slot, to);
    /* The old owner dropped them (sunsubscribe pushes); the client
     * subscribes them on the new owner and says so. */
    if (!ts_wait_until(g_loop, event_seen, &r, 10000))
        fail_msg("no AREDIS_SUB_RESUBSCRIBED within 10 s of the slot's move (events: dropped "
                 "%zu, error %zu, last detail \"%s\")",
                 r.events[AREDIS_SUB_DROPPED], r.events[AREDIS_SUB_ERROR], r.last_event_detail);
    int k[2];
    for (int i = 0; i < 2; i++) {
        k[i] = publish_until_seen(&r, s, 3, to, movers[i], "w", 10000);
        if (k[i] < 0)
            fail_msg("nothing published to %s on the new owner reached the subscriber in 10 s",
                     movers[i]);
    }
    /* From now on: each once, from the new owner only. */
    for (int j = 0; j < 20; j++)
        for (int i = 0; i < 2; i++) {
            char pl[32];
            snprintf(pl, sizeof pl, "m%d", j);
            assert_int_equal(publish(to, movers[i], pl), 1);
        }
    assert_int_equal(publish(from, stay, "stayed"), 1);
    for (int i = 0; i < 2; i++)
        assert_true(wait_seen(&r, movers[i], "m19", 5000));
    assert_true(wait_seen(&r, stay, "stayed", 5000));
    /* The old owner redirects a publish now: nothing can come from it. */
    char why[200] = "";
    assert_int_equal(node_publish(from, movers[0], "x", 1, why, sizeof why), -1);
    assert_non_null(strstr(why, "MOVED"));
    roundtrip(cl);
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 20; j++) {
            char pl[32];
            snprintf(pl, sizeof pl, "m%d", j);
            assert_int_equal(seen(&r, movers[i], pl, strlen(pl)), 1);
        }
        /* Before the move, the warm-up ones that made it (each once), and
         * the 20: nothing else. */
        size_t warm = 0;
        for (int j = 0; j <= k[i]; j++) {
            char pl[32];
            snprintf(pl, sizeof pl, "w%d", j);
            warm += seen(&r, movers[i], pl, strlen(pl));
        }
        assert_int_equal(seen_on(&r, movers[i]), 1 + warm + 20);
    }
    assert_int_equal(seen_on(&r, stay), 1);
    assert_int_equal(aredis_cluster_sub_count(s), 3);
    assert_int_equal(r.events[AREDIS_SUB_ERROR], 0);
    assert_int_equal(r.bad_sub, 0);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
    ts_cluster_migrate_slot(g_tc, slot, from); /* as it was */
}

/* ---- 5. Node connections lost: a reconnect, a failover ------------------------------ */

/* n channels of the primary on port, each in a slot of its own. */
static void names_on(int port, const char *prefix, int n, char (*names)[32], const char **np) {
    int got = 0, slots[8];
    assert_true(n <= 8);
    for (int i = 0; got < n && i < 100000; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "%s%d", prefix, i);
        int slot = ts_cluster_keyslot(g_tc, nm), dup = 0;
        for (int j = 0; j < got; j++)
            dup |= slots[j] == slot;
        if (dup || ts_cluster_node_for_slot(g_tc, slot) != port) continue;
        slots[got] = slot;
        snprintf(names[got], 32, "%s", nm);
        np[got] = names[got];
        got++;
    }
    assert_int_equal(got, n);
}

/* CLIENT KILL every RESP3 connection on port (the library's). */
static int kill_resp3(int port) {
    aredis_reply *r = ts_node_cmd(port, "CLIENT", "LIST", (char *)NULL);
    assert_non_null(r);
    assert_non_null(r->str);
    int killed = 0;
    for (const char *line = r->str; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (strstr(buf, " resp=3") && strncmp(buf, "id=", 3) == 0) {
            char id[32];
            snprintf(id, sizeof id, "%ld", atol(buf + 3));
            aredis_reply *k = ts_node_cmd(port, "CLIENT", "KILL", "ID", id, (char *)NULL);
            assert_non_null(k);
            killed += k->type == AREDIS_REPLY_INTEGER ? (int)k->integer : 0;
            aredis_reply_free(k);
        }
        line = end ? end + 1 : NULL;
    }
    aredis_reply_free(r);
    return killed;
}

/* A node connection's own reconnect replays its channels (cluster.h: "as
 * on a single client"): two channels of different slots on one node. */
static void test_node_reconnect_replays(void **state) {
    (void)state;
    int port = owner_port("ps5r:0");
    char names[2][32];
    const char *np[2];
    names_on(port, "ps5r:", 2, names, np);
    aredis_cluster *cl = cluster_on(g_tc, 0);
    /* The topology known first: each call is placed on its own. */
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    r.self = s;
    done d0 = {0}, d1 = {0}; /* a call each: one SSUBSCRIBE names one slot */
    assert_int_equal(ssub(s, 1, &np[0], NULL, &d0), AREDIS_ERR_OK);
    assert_int_equal(ssub(s, 1, &np[1], NULL, &d1), AREDIS_ERR_OK);
    wait_sub_ok(&d0, s, "SSUBSCRIBE");
    wait_sub_ok(&d1, s, "SSUBSCRIBE");
    assert_true(kill_resp3(port) >= 1);
    if (!ts_wait_until(g_loop, event_seen, &r, 5000))
        fail_msg("no AREDIS_SUB_RESUBSCRIBED after the node connection was killed");
    for (int i = 0; i < 2; i++) {
        int k = publish_until_seen(&r, s, 2, port, np[i], "w", 5000);
        if (k < 0)
            fail_msg("%s: nothing published after the reconnect arrived in 5 s (errors %zu: "
                     "\"%s\")",
                     np[i], r.events[AREDIS_SUB_ERROR], r.last_event_detail);
    }
    assert_int_equal(r.events[AREDIS_SUB_ERROR], 0);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

static int old_node_connected(const void *arg) {
    return resp3_clients(*(const int *)arg, NULL) > 0;
}

static void test_failover(void **state) {
    (void)state;
    /* Three channels of one primary, in slots of their own (a call each:
     * one SSUBSCRIBE names one slot). */
    int victim_port = owner_port("ps5:0");
    char names[3][32];
    const char *np[3];
    names_on(victim_port, "ps5:", 3, names, np);
    int victim = ts_cluster_index_of_port(g_tc, victim_port);
    assert_true(victim >= 0);
    /* Seeded elsewhere: the topology is read from a live node. */
    aredis_cluster *cl = cluster_on(g_tc, victim == 0 ? 1 : 0);
    /* The topology known first: each call is placed on its own. */
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    r.self = s;
    done d[3] = {{0}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(ssub(s, 1, &np[i], NULL, &d[i]), AREDIS_ERR_OK);
    for (int i = 0; i < 3; i++)
        wait_sub_ok(&d[i], s, "SSUBSCRIBE");
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish(victim_port, np[i], "before"), 1);
    for (int i = 0; i < 3; i++)
        assert_true(wait_seen(&r, np[i], "before", 5000));

    ts_cluster_kill(g_tc, victim);
    int promoted = ts_cluster_wait_failover(g_tc, victim, 20000);
    int pport = ts_cluster_port(g_tc, promoted);
    /* Nothing goes through the cluster's command path here: the
     * subscription must find the new owner by itself. */
    for (int i = 0; i < 3; i++) {
        int k = publish_until_seen(&r, s, 3, pport, np[i], "w", 10000);
        if (k < 0)
            fail_msg("nothing published to %s on the promoted replica (port %d) reached the "
                     "subscriber in 10 s (events: resubscribed %zu, dropped %zu, error %zu)",
                     np[i], pport, r.events[AREDIS_SUB_RESUBSCRIBED], r.events[AREDIS_SUB_DROPPED],
                     r.events[AREDIS_SUB_ERROR]);
    }
    assert_true(r.events[AREDIS_SUB_RESUBSCRIBED] >= 1);
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 3; i++) {
            char pl[32];
            snprintf(pl, sizeof pl, "a%d", round);
            assert_int_equal(publish(pport, np[i], pl), 1);
        }
    for (int i = 0; i < 3; i++)
        assert_true(wait_seen(&r, np[i], "a4", 5000));
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 3; i++) {
            char pl[32];
            snprintf(pl, sizeof pl, "a%d", round);
            assert_int_equal(seen(&r, np[i], pl, strlen(pl)), 1);
        }

    /* The old primary returns, as a replica (which hears its primary's
     * shard messages: a subscription left on it would deliver twice). */
    ts_cluster_restart(g_tc, victim);
    if (!ts_wait_until(g_loop, old_node_connected, &victim_port, 5000))
        ts_log("no connection of the client to the old primary came back (fine: nothing can "
               "come from it)");
    roundtrip(cl);
    long ssubs = -1;
    assert_true(resp3_clients(victim_port, &ssubs) >= 0);
    assert_int_equal(ssubs, 0);
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 3; i++) {
            char pl[32];
            snprintf(pl, sizeof pl, "b%d", round);
            assert_int_equal(publish(pport, np[i], pl), 1);
        }
    for (int i = 0; i < 3; i++)
        assert_true(wait_seen(&r, np[i], "b4", 5000));
    /* Once more through the cluster, waited for: a copy from the replica
     * would have come by now. */
    roundtrip(cl);
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish(pport, np[i], "end"), 1);
    for (int i = 0; i < 3; i++)
        assert_true(wait_seen(&r, np[i], "end", 5000));
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 3; i++) {
            char pl[32];
            snprintf(pl, sizeof pl, "b%d", round);
            if (seen(&r, np[i], pl, strlen(pl)) != 1)
                fail_msg("%s %s: seen %zu times", np[i], pl, seen(&r, np[i], pl, strlen(pl)));
        }
    assert_int_equal(aredis_cluster_sub_count(s), 3);
    assert_int_equal(r.bad_sub, 0);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

/* Calls made before the topology is known, one channel each, two of them
 * in different slots of one node: each callback says how its own channel
 * fared, and every channel is held and delivers. */
static void test_calls_before_topology(void **state) {
    (void)state;
    int port = owner_port("ps2b:0");
    char names[2][32];
    const char *np[2];
    names_on(port, "ps2b:", 2, names, np);
    aredis_cluster *cl = cluster_on(g_tc, 0);
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    done d[2] = {{0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(ssub(s, 1, &np[i], NULL, &d[i]), AREDIS_ERR_OK);
    for (int i = 0; i < 2; i++)
        assert_true(ts_wait_until(g_loop, called, &d[i], 10000));
    if (d[0].code || d[1].code || aredis_cluster_sub_count(s) != 2)
        fail_msg("two one-channel calls before the topology: %s (%s), %s (%s); %zu channels held",
                 aredis_err_name(d[0].code), d[0].detail, aredis_err_name(d[1].code), d[1].detail,
                 aredis_cluster_sub_count(s));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(publish(port, np[i], "hi"), 1);
        assert_true(wait_seen(&r, np[i], "hi", 5000));
    }
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

/* ---- 6. Lifecycle ------------------------------------------------------------------------ */

/* Freed from inside its own handler: no crash, nothing more to it; another
 * subscription of the same channels (on the same node connections) keeps
 * receiving. */
static void test_free_in_own_handler(void **state) {
    (void)state;
    char names[3][32];
    const char *np[3];
    int port[3], ports[3];
    names_over_primaries("ps6a:", 3, 1, names, np, port, ports);
    aredis_cluster *cl = cluster_on(g_tc, 0);
    rec ra = {0}, rb = {0};
    aredis_cluster_sub *a = aredis_cluster_sub_new(cl, on_msg, on_ev, &ra);
    aredis_cluster_sub *b = aredis_cluster_sub_new(cl, on_msg, on_ev, &rb);
    assert_true(a && b);
    ra.self = a;
    rb.self = b;
    ra.free_on_first = a;
    done da = {0}, db = {0};
    assert_int_equal(ssub(a, 3, np, NULL, &da), AREDIS_ERR_OK);
    assert_int_equal(ssub(b, 3, np, NULL, &db), AREDIS_ERR_OK);
    wait_ok(&da, "SSUBSCRIBE a");
    wait_ok(&db, "SSUBSCRIBE b");
    /* Five to each channel, all sent before the loop reads any. */
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < 3; i++) {
            char pl[16];
            snprintf(pl, sizeof pl, "f%d", j);
            assert_int_equal(publish(port[i], np[i], pl), 1);
        }
    for (int i = 0; i < 3; i++)
        assert_true(wait_seen(&rb, np[i], "f4", 5000));
    roundtrip(cl);
    assert_int_equal(rb.n, 15);
    assert_int_equal(ra.n, 1);
    assert_null(ra.free_on_first);
    assert_int_equal(ra.bad_sub + rb.bad_sub, 0);
    aredis_cluster_sub_free(b);
    aredis_cluster_free(cl);
    free(ra.v);
    free(rb.v);
}

/* The cluster freed with a subscription alive, the subscription after it;
 * calls on it in between are refused (CLOSED). */
static void test_cluster_freed_first(void **state) {
    (void)state;
    char names[3][32];
    const char *np[3];
    int port[3], ports[3];
    names_over_primaries("ps6b:", 3, 1, names, np, port, ports);
    aredis_cluster *cl = cluster_on(g_tc, 0);
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    r.self = s;
    done d = {0};
    assert_int_equal(ssub(s, 3, np, NULL, &d), AREDIS_ERR_OK);
    wait_ok(&d, "SSUBSCRIBE");
    aredis_cluster_free(cl);
    done x = {0};
    assert_int_equal(ssub(s, 3, np, NULL, &x), AREDIS_ERR_CLOSED);
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_CLOSED);
    assert_int_equal(sunsub(s, 1, np, &x), AREDIS_ERR_CLOSED);
    /* The servers let go of the closed connections' channels. */
    aredis_cluster *other = cluster_on(g_tc, 0);
    roundtrip(other);
    assert_int_equal(x.calls, 0);
    aredis_cluster_sub_free(s);
    roundtrip(other);
    assert_int_equal(x.calls, 0);
    assert_int_equal(r.n, 0);
    aredis_cluster_free(other);
    free(r.v);
}

/* aredis_cluster_sub_free() unsubscribes: the servers stop counting it,
 * also for channels of several slots on one node. */
static void test_free_tells_the_servers(void **state) {
    (void)state;
    int port = owner_port("ps6e:0");
    char names[3][32];
    const char *np[3];
    names_on(port, "ps6e:", 3, names, np);
    aredis_cluster *cl = cluster_on(g_tc, 0);
    /* The topology known first: each call is placed on its own. */
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    done d[3] = {{0}};
    for (int i = 0; i < 3; i++) /* a call each: one SSUBSCRIBE names one slot */
        assert_int_equal(ssub(s, 1, &np[i], NULL, &d[i]), AREDIS_ERR_OK);
    for (int i = 0; i < 3; i++)
        wait_sub_ok(&d[i], s, "SSUBSCRIBE");
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish(port, np[i], "held"), 1);
    aredis_cluster_sub_free(s);
    /* Published through the cluster: on the same node connection, behind
     * the unsubscribe. Nobody receives them. */
    tally t = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            aredis_cluster_command(cl, on_op, op_new(&t, NULL, 0), "SPUBLISH %s gone", np[i]),
            AREDIS_ERR_OK);
    assert_true(ts_wait_count(g_loop, &t.done, 3, 5000));
    if (t.errors) fail_msg("SPUBLISH: %s", t.first_error);
    if (t.wrong) {
        long ssubs = -1;
        resp3_clients(port, &ssubs);
        fail_msg("after the free, %zu of 3 SPUBLISH still reached a subscriber (the node "
                 "counts %ld shard subscriptions of RESP3 clients)",
                 t.wrong, ssubs);
    }
    assert_int_equal(r.n, 0);
    aredis_cluster_free(cl);
    free(r.v);
}

static void test_invalid_arguments(void **state) {
    (void)state;
    aredis_cluster *cl = cluster_on(g_tc, 0);
    rec r = {0};
    assert_null(aredis_cluster_sub_new(NULL, on_msg, on_ev, &r));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    assert_null(aredis_cluster_sub_new(cl, NULL, on_ev, &r));
    assert_int_equal(aredis_call_error()->code, AREDIS_ERR_INVALID);
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, NULL, &r); /* no on_event: fine */
    assert_non_null(s);
    done d = {0};
    const char *one[] = {"ps6c:x"};
    const char *with_null[] = {"ps6c:a", NULL};
    assert_int_equal(ssub(s, 0, one, NULL, &d), AREDIS_ERR_INVALID);
    assert_int_equal(ssub(s, 1, NULL, NULL, &d), AREDIS_ERR_INVALID);
    assert_int_equal(ssub(s, 2, with_null, NULL, &d), AREDIS_ERR_INVALID);
    assert_int_equal(ssub(NULL, 1, one, NULL, &d), AREDIS_ERR_INVALID);
    assert_int_equal(sunsub(s, 0, one, &d), AREDIS_ERR_INVALID);
    assert_int_equal(sunsub(s, 1, NULL, &d), AREDIS_ERR_INVALID);
    assert_int_equal(sunsub(s, 2, with_null, &d), AREDIS_ERR_INVALID);
    assert_int_equal(sunsub(NULL, 1, one, &d), AREDIS_ERR_INVALID);
    assert_int_equal(aredis_cluster_sub_count(s), 0); /* nothing of a refused call stays */
    assert_int_equal(aredis_cluster_sub_count(NULL), 0);
    aredis_cluster_sub_free(NULL);
    roundtrip(cl);
    assert_int_equal(d.calls, 0);
    /* And it works afterwards. */
    assert_int_equal(ssub(s, 1, one, NULL, &d), AREDIS_ERR_OK);
    wait_ok(&d, "SSUBSCRIBE after refusals");
    assert_int_equal(publish(owner_port(one[0]), one[0], "ok"), 1);
    assert_true(wait_seen(&r, one[0], "ok", 5000));
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

/* Calls in flight when the cluster (or the subscription) is freed: each
 * callback once. */
static void test_free_with_calls_in_flight(void **state) {
    (void)state;
    char names[3][32];
    const char *np[3];
    int port[3], ports[3];
    names_over_primaries("ps6d:", 3, 1, names, np, port, ports);
    aredis_cluster *probe = cluster_on(g_tc, 0);

    /* Waiting for the topology. */
    aredis_cluster *cl = cluster_on(g_tc, 0);
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    done d1 = {0};
    assert_int_equal(ssub(s, 3, np, NULL, &d1), AREDIS_ERR_OK);
    assert_int_equal(d1.calls, 0);
    aredis_cluster_free(cl);
    roundtrip(probe);
    assert_int_equal(d1.calls, 1);
    assert_int_equal(d1.code, AREDIS_ERR_CANCELLED);
    aredis_cluster_sub_free(s);

    /* Sent (queued on the node connections), not answered. */
    cl = cluster_on(g_tc, 0);
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    done d2 = {0};
    assert_int_equal(ssub(s, 3, np, NULL, &d2), AREDIS_ERR_OK);
    assert_int_equal(d2.calls, 0);
    aredis_cluster_free(cl);
    roundtrip(probe);
    assert_int_equal(d2.calls, 1);
    assert_int_equal(d2.code, AREDIS_ERR_CANCELLED);
    aredis_cluster_sub_free(s);

    /* Part of the call unsubscribed before it was answered, then the
     * cluster freed: both callbacks once. */
    cl = cluster_on(g_tc, 0);
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    const char *pair[] = {"{ps6d}a", "{ps6d}b"};
    done d3 = {0}, u3 = {0};
    assert_int_equal(ssub(s, 2, pair, NULL, &d3), AREDIS_ERR_OK);
    assert_int_equal(sunsub(s, 1, pair, &u3), AREDIS_ERR_OK);
    assert_int_equal(aredis_cluster_sub_count(s), 1);
    aredis_cluster_free(cl);
    roundtrip(probe);
    assert_int_equal(d3.calls, 1);
    assert_int_equal(u3.calls, 1);
    aredis_cluster_sub_free(s);

    /* The subscription freed with its call in flight: the callback once. */
    cl = cluster_on(g_tc, 0);
    assert_true(ts_wait_until(g_loop, topology_known, cl, 10000));
    s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    done d4 = {0};
    assert_int_equal(ssub(s, 3, np, NULL, &d4), AREDIS_ERR_OK);
    aredis_cluster_sub_free(s);
    assert_true(ts_wait_until(g_loop, called, &d4, 5000));
    roundtrip(cl);
    assert_int_equal(d4.calls, 1);
    /* The server was told (the subscription's channels went with it): a
     * publish reaches nobody, and nothing was delivered to it. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish(port[i], np[i], "gone"), 0);
    /* Before the topology, the subscription freed: the callback once. */
    aredis_cluster *cl2 = cluster_on(g_tc, 0);
    s = aredis_cluster_sub_new(cl2, on_msg, on_ev, &r);
    done d5 = {0};
    assert_int_equal(ssub(s, 3, np, NULL, &d5), AREDIS_ERR_OK);
    aredis_cluster_sub_free(s);
    assert_true(ts_wait_until(g_loop, called, &d5, 5000));
    roundtrip(cl2);
    assert_int_equal(d5.calls, 1);
    assert_int_equal(r.n, 0);
    aredis_cluster_free(cl2);
    aredis_cluster_free(cl);
    aredis_cluster_free(probe);
    free(r.v);
}

/* ---- 7. An ACL refusing a channel --------------------------------------------------- */

static void test_acl_refusal(void **state) {
    (void)state;
    /* ACLs are each node's own: the user on every node. */
    for (int i = 0; i < ts_cluster_nodes(g_tc); i++) {
        if (!ts_cluster_is_alive(g_tc, i)) continue;
        aredis_reply *x = ts_node_cmd(ts_cluster_port(g_tc, i), "ACL", "SETUSER", "chan", "reset",
                                      "on", ">pw", "~*", "+@all", "&ok:*", (char *)NULL);
        assert_non_null(x);
        if (x->type != AREDIS_REPLY_STATUS) fail_msg("ACL SETUSER: %s", x->str ? x->str : "?");
        aredis_reply_free(x);
    }
    aredis_cluster *cl = cluster_with(g_tc, 0, "chan", "pw");
    rec r = {0};
    aredis_cluster_sub *s = aredis_cluster_sub_new(cl, on_msg, on_ev, &r);
    r.self = s;
    const char *no[] = {"no:1"};
    done d = {0};
    assert_int_equal(ssub(s, 1, no, NULL, &d), AREDIS_ERR_OK);
    assert_true(ts_wait_until(g_loop, called, &d, 10000));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.inside, 0);
    assert_int_equal(d.code, AREDIS_ERR_SERVER);
    if (!strstr(d.detail, "NOPERM") && strcmp(d.prefix, "NOPERM") != 0)
        fail_msg("refused with \"%s\" (%s), not NOPERM", d.detail, d.prefix);
    assert_int_equal(aredis_cluster_sub_count(s), 0);
    /* One allowed, one refused, on different primaries: the first error,
     * the refused one gone, the allowed one held and delivering. */
    char okc[32] = "", noc[32] = "";
    snprintf(okc, sizeof okc, "ok:1");
    int okport = owner_port(okc);
    for (int i = 2; !noc[0]; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "no:%d", i);
        if (owner_port(nm) != okport) snprintf(noc, sizeof noc, "%s", nm);
    }
    const char *mixed[] = {okc, noc};
    done m = {0};
    assert_int_equal(ssub(s, 2, mixed, NULL, &m), AREDIS_ERR_OK);
    assert_true(ts_wait_until(g_loop, called, &m, 10000));
    assert_int_equal(m.calls, 1);
    assert_int_equal(m.code, AREDIS_ERR_SERVER);
    assert_int_equal(aredis_cluster_sub_count(s), 1);
    assert_int_equal(publish(okport, okc, "allowed"), 1);
    assert_true(wait_seen(&r, okc, "allowed", 5000));
    assert_int_equal(publish(owner_port(noc), noc, "refused"), 0);
    roundtrip(cl);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.events[AREDIS_SUB_ERROR], 0);
    aredis_cluster_sub_free(s);
    aredis_cluster_free(cl);
    free(r.v);
}

static int group_setup(void **state) {
    (void)state;
    ts_require_or_exit(TS_FEATURE_SPUBLISH);
    g_tc = ts_cluster_start(3, 1, NULL);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    ts_cluster_stop(g_tc);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TS_LOOP_CASE(test_across_nodes),
        TS_LOOP_CASE(test_before_topology),
        TS_LOOP_CASE(test_calls_before_topology),
        TS_LOOP_CASE(test_unsubscribe),
        TS_LOOP_CASE(test_free_in_own_handler),
        TS_LOOP_CASE(test_cluster_freed_first),
        TS_LOOP_CASE(test_free_tells_the_servers),
        TS_LOOP_CASE(test_invalid_arguments),
        TS_LOOP_CASE(test_free_with_calls_in_flight),
        TS_LOOP_CASE(test_acl_refusal),
        TS_LOOP_CASE(test_moves_with_its_slot),
        TS_LOOP_CASE(test_node_reconnect_replays),
        TS_LOOP_CASE(test_failover),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
