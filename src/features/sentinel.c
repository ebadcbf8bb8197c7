/*
 * The Sentinel client (aredis/sentinel.h): an ordinary aredis_client with a
 * locator (client/feature.h) that asks the sentinels where to connect at the
 * start of every attempt, and a watch on +switch-master that moves it
 * promptly when a failover is announced.
 *
 *   snt     the sentinels, their connection options, the counters and the
 *           watch; shared (reference counted) by the user's client and its
 *           copies (aredis__client_clone: the RESP2 subscriber connection)
 *   att     one client's side: the sentinels' last answer for it and the
 *           lookup under way, if any
 *
 * A lookup asks one sentinel at a time, in the list's order, through a
 * client of its own (reconnect off, connect and request deadlines of the
 * sentinel's budget): the first address wins, that sentinel moves to the
 * front of the list, and the data client connects there; one that failed
 * or ran out of time moves to the back, so that silent sentinels ahead in
 * the list cannot use up every attempt's deadline. A +switch-master heard
 * while a lookup is under way overrides a different answer (the lookup may
 * be asking a sentinel that has not heard of the failover). Nothing
 * answers the data client from inside its own call: a lookup starts on a
 * 0 ms timer.
 *
 * The watch is one client subscribed to +switch-master on one sentinel,
 * running while any attached client is connecting or connected; a lost
 * watch goes to the next sentinel after a backoff delay.
 *
 * Reentrancy: answering the data client (aredis__located,
 * aredis__locate_failed) or dropping its connection (aredis__client_relocate)
 * may run its user's callbacks, which may free it, and with it the att and
 * maybe the snt: those calls come last, or under a reference.
 */
#include "aredis/sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/pubsub.h"
#include "aredis/tls.h"
#include "client/feature.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/log.h"

#define DEFAULT_PORT 26379
#define SWITCH_CHANNEL "+switch-master"

typedef struct snt snt;
typedef struct att att;

typedef struct saddr {
    char *host; /* owned by the snt's list (a lookup's copy of the order
                   borrows them) */
    int port;
} saddr;

struct snt {
    unsigned refs;
    aredis_loop *loop;
    saddr *list; /* the sentinels: the last one that answered first, the
                    last ones that failed last */
    size_t n;
    char *name;
    int role;
    uint32_t timeout_ms;
    int watch;
    aredis_options sopt; /* the sentinel connections' options (owned strings;
                            a reference to the TLS context, if any, which
                            the data connections share) */
    uint32_t backoff_ms, backoff_max_ms;
    att *atts;
    aredis_sentinel_stats st;
    uint64_t rng;
    /* the watch */
    aredis_client *wc;
    aredis_subscription *wsub;
    aredis_timer *wtimer; /* the next watch attempt */
    int wtimer_armed;
    size_t widx;       /* the sentinel it tries next (mod n) */
    const char *whost; /* the one it is on (its host: identity in list) */
    unsigned wfails;   /* watch attempts failed in a row */
    uint64_t wepoch;   /* subscriptions made so far */
};

struct att {
    att *next;
    snt *s;
    aredis_client *c;
    int active; /* connecting or connected: the watch runs for it */
    char *host; /* the sentinels' last answer for it (NULL: none yet) */
    int port;
    uint64_t epoch; /* s->wepoch when the sentinels gave host:port */
    int mark;       /* a relocation pass has yet to visit it */
    /* the lookup under way (busy) */
    int busy;
    aredis_timer *timer; /* starts it, one loop turn after locate() */
    aredis_client *qc;   /* the sentinel being asked */
    saddr *order;        /* the list's order when it started (n) */
    size_t i;
    uint64_t deadline;
    unsigned failed, auth_refused;
    char *sw_host; /* a +switch-master heard during it: where to go (or NULL) */
    int sw_port;
    char tried[240];
};

/* ---- Small things ----------------------------------------------------------- */

static uint64_t next_rand(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* host:port (an IPv6 host in brackets) for messages, cut to fit len. Built
 * by hand: snprintf of a host into a small buffer trips
 * -Wformat-truncation at -O2 and -O3 however its result is used. */
static void fmt_addr(char *buf, size_t len, const char *host, int port) {
    if (!len) return;
    char tail[16];
    snprintf(tail, sizeof tail, ":%d", port);
    int v6 = strchr(host, ':') != NULL;
    size_t at = 0;
    const char *parts[4] = {v6 ? "[" : "", host, v6 ? "]" : "", tail};
    for (size_t i = 0; i < 4; i++)
        for (const char *q = parts[i]; *q && at + 1 < len; q++)
            buf[at++] = *q;
    buf[at] = '\0';
}

/* A port: decimal digits only, 1..65535; else -1. */
static int parse_port(const char *p) {
    if (!p || *p < '0' || *p > '9') return -1;
    char *end;
    long v = strtol(p, &end, 10);
    return *end || v < 1 || v > 65535 ? -1 : (int)v;
}

/* "host:port", "host", "[v6]:port", "[v6]", or a bare IPv6 literal. */
static int parse_addr(const char *s, saddr *out) {
    const char *host = s, *port = NULL;
    size_t hlen;
    if (!s || !*s) return -1;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (!end || end == s + 1) return -1;
        host = s + 1;
        hlen = (size_t)(end - host);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1])
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && !strchr(colon + 1, ':')) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        } else {
            hlen = strlen(s); /* no port, or a bare IPv6 literal */
        }
        if (!hlen) return -1;
    }
    int p = port ? parse_port(port) : DEFAULT_PORT;
    if (p < 0) return -1;
    out->host = aredis__memdup0(host, hlen);
    out->port = p;
    return out->host ? 0 : -2;
}

static const char *want_name(const snt *s) {
    return s->role == AREDIS_SENTINEL_PRIMARY ? "primary" : "replica";
}

/* ---- The shared part ---------------------------------------------------------- */

/* Put the sentinel whose host string is `host` (identity) first. */
static void to_front(snt *s, const char *host) {
    for (size_t k = 0; k < s->n; k++) {
        if (s->list[k].host != host) continue;
        saddr keep = s->list[k];
        memmove(s->list + 1, s->list, k * sizeof *s->list);
        s->list[0] = keep;
        return;
    }
}

/* Put the sentinel whose host string is `host` last (it failed). */
static void to_back(snt *s, const char *host) {
    for (size_t k = 0; k < s->n; k++) {
        if (s->list[k].host != host) continue;
        saddr keep = s->list[k];
        memmove(s->list + k, s->list + k + 1, (s->n - k - 1) * sizeof *s->list);
        s->list[s->n - 1] = keep;
        return;
    }
}

static void watch_stop(snt *s);

static void snt_unref(snt *s) {
    if (--s->refs) return;
    watch_stop(s);
    aredis_timer_free(s->wtimer);
    for (size_t i = 0; i < s->n; i++)
        aredis__free(s->list[i].host);
    aredis__free(s->list);
    aredis__free(s->name);
    aredis_tls_context_release(s->sopt.tls_context);
    aredis__options_release(&s->sopt);
    aredis__free(s);
}

/* The options of a connection to sentinel `a`, within `budget` ms (0: the
 * options' own). */
static aredis_options sentinel_options(const snt *s, const saddr *a, uint32_t budget) {
    aredis_options o = s->sopt;
    o.host = a->host;
    o.port = a->port;
    if (budget) o.connect_timeout_ms = o.request_timeout_ms = budget;
    return o;
}

/* ---- Relocation ----------------------------------------------------------------- */

typedef struct where {
    const char *host;
    int port;
} where;

/*
 * Drop the connections of the attached clients that `moved` says are on the
 * wrong server now. Each drop may run user callbacks that free clients
 * (theirs or others'): every att is marked first, and the list searched
 * again for a marked one after each drop; the snt is held meanwhile.
 *
 * `announced` (a +switch-master; NULL for anything else): the new primary.
 * A client of the primary whose lookup is under way cannot be dropped (it
 * has no connection yet), and the sentinel it is asking may not have heard
 * of the failover: its lookup goes there instead of to a different answer
 * (lookup_won).
 */
static void relocate_all(snt *s, int (*moved)(const att *a, const void *arg), const void *arg,
                         const where *announced, const char *why) {
    for (att *a = s->atts; announced && a; a = a->next) {
        if (!a->busy || s->role != AREDIS_SENTINEL_PRIMARY) continue;
        char *h = aredis__strdup(announced->host);
        if (!h) continue; /* out of memory: the lookup's own answer stands */
        aredis__free(a->sw_host);
        a->sw_host = h;
        a->sw_port = announced->port;
    }
    s->refs++;
    for (att *a = s->atts; a; a = a->next)
        a->mark = a->active && a->host && moved(a, arg);
    for (;;) {
        att *a = s->atts;
        while (a && !a->mark)
            a = a->next;
        if (!a) break;
        a->mark = 0;
        if (aredis__client_relocate(a->c, why)) s->st.relocations++; /* s is held */
    }
    snt_unref(s);
}

/* A client on the primary is elsewhere than the primary named now. */
static int primary_moved(const att *a, const void *arg) {
    const where *w = arg;
    return a->s->role == AREDIS_SENTINEL_PRIMARY &&
           (a->port != w->port || strcmp(a->host, w->host) != 0);
}

/* A client on a replica is on the replica just promoted. */
static int replica_promoted(const att *a, const void *arg) {
    const where *w = arg;
    return a->s->role == AREDIS_SENTINEL_REPLICA && a->port == w->port &&
           strcmp(a->host, w->host) == 0;
}

static int either_moved(const att *a, const void *arg) {
    return primary_moved(a, arg) || replica_promoted(a, arg);
}

/* ---- The watch: +switch-master ---------------------------------------------------- */

static void watch_connect(snt *s);

static int any_active(const snt *s) {
    for (const att *a = s->atts; a; a = a->next)
        if (a->active) return 1;
    return 0;
}

/* Close the watch's connection (its callbacks, run now, find it gone). */
static void watch_close(snt *s) {
    aredis_subscription *sub = s->wsub;
    aredis_client *wc = s->wc;
    s->wsub = NULL;
    s->wc = NULL;
    aredis_subscription_free(sub);
    aredis_client_free(wc);
}

static void watch_stop(snt *s) {
    watch_close(s);
    if (s->wtimer_armed) aredis_timer_stop(s->wtimer);
    s->wtimer_armed = 0;
    s->wfails = 0;
}

static void on_wtimer(void *arg) {
    snt *s = arg;
    s->wtimer_armed = 0;
    if (!s->wc && any_active(s)) watch_connect(s);
}

/* The watch was lost or could not be made: the next sentinel, after a
 * delay growing as the node options' reconnect delay does. */
static void watch_failed(snt *s, const char *why) {
    /* The one after it in the list (which lookups reorder meanwhile). */
    size_t k = 0;
    while (k < s->n && s->list[k].host != s->whost)
        k++;
    if (k == s->n) k = 0;
    char where_[300];
    fmt_addr(where_, sizeof where_, s->list[k].host, s->list[k].port);
    aredis__log(AREDIS_LOG_INFO, "sentinel watch on %s failed: %s", where_, why);
    watch_close(s);
    s->widx = k + 1;
    s->wfails++;
    if (!any_active(s) || s->wtimer_armed) return;
    uint64_t d = s->backoff_ms ? s->backoff_ms : 100;
    for (unsigned i = 1; i < s->wfails && d < s->backoff_max_ms; i++)
        d *= 2;
    if (d > s->backoff_max_ms) d = s->backoff_max_ms;
    if (d < 10) d = 10;
    s->wtimer_armed = 1;
    aredis_timer_start(s->wtimer, s->wfails <= 1 ? 0 : d, 0);
}

static void w_on_error(aredis_client *c, const aredis_error *err, void *data) {
    snt *s = data;
    if (c == s->wc) watch_failed(s, err->detail);
}

static void w_on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    snt *s = data;
    if (c == s->wc) watch_failed(s, err->detail);
}

static void w_on_event(aredis_subscription *sub, aredis_sub_event ev, const aredis_error *err,
                       void *data) {
    snt *s = data;
    if (sub == s->wsub && ev == AREDIS_SUB_ENDED)
        watch_failed(s, err ? err->detail : "subscription ended");
}

/* "<name> <old ip> <old port> <new ip> <new port>" */
static void w_on_message(aredis_subscription *sub, const aredis_message *m, void *data) {
    snt *s = data;
    if (sub != s->wsub) return;
    char buf[1024], name[256], oldip[256], newip[256], oldp[16], newp[16];
    int end = 0;
    if (m->payload_len >= sizeof buf) return;
    memcpy(buf, m->payload, m->payload_len);
    buf[m->payload_len] = '\0';
    /* Exactly five fields, ports in range: anything else is not acted on. */
    if (sscanf(buf, "%255s %255s %15s %255s %15s%n", name, oldip, oldp, newip, newp, &end) != 5 ||
        buf[end + strspn(buf + end, " \r\n")] || strcmp(name, s->name) != 0)
        return;
    int oldport = parse_port(oldp), newport = parse_port(newp);
    if (oldport < 0 || newport < 0) {
        aredis__log(AREDIS_LOG_WARN, "sentinel: ignoring a malformed +switch-master message");
        return;
    }
    s->st.switches++;
    char why[256], to[100], from[100];
    fmt_addr(from, sizeof from, oldip, oldport);
    fmt_addr(to, sizeof to, newip, newport);
    snprintf(why, sizeof why, "the sentinels moved '%.64s' from %.70s to %.70s (+switch-master)",
             s->name, from, to);
    aredis__log(AREDIS_LOG_INFO, "%s", why);
    /* The lookups that follow ask first the sentinel that knows. */
    to_front(s, s->whost);
    where w = {newip, newport};
    relocate_all(s, either_moved, &w, &w, why);
}

/* A client located before the subscription was made: a switch announced
 * in between was missed. (One located since is covered by the
 * subscription, whatever the watched sentinel says now: it may be one that
 * has not heard of a failover yet.) */
static int primary_moved_unwatched(const att *a, const void *arg) {
    return a->epoch < a->s->wepoch && primary_moved(a, arg);
}

/* After the subscription is made: the primary's address, asked once more
 * on the watch's connection, for the switches announced before it. */
static void w_on_check(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    snt *s = data;
    (void)c;
    if (err || !s->wc || !r || r->type != AREDIS_REPLY_ARRAY || r->elements != 2 ||
        !r->element[0]->str || !r->element[1]->str)
        return;
    where w = {r->element[0]->str, parse_port(r->element[1]->str)};
    if (w.port < 0) return;
    char why[256], to[100];
    fmt_addr(to, sizeof to, w.host, w.port);
    snprintf(why, sizeof why, "the sentinels name %s as the primary of '%.100s'", to, s->name);
    relocate_all(s, primary_moved_unwatched, &w, NULL, why);
}

static void w_on_subscribed(aredis_client *c, aredis_reply *r, const aredis_error *err,
                            void *data) {
    snt *s = data;
    (void)c;
    (void)r;
    if (!s->wc) return; /* closed meanwhile */
    if (err) {
        /* Refused (an ACL), or lost (on RESP2 the subscription has a
         * connection of its own, whose loss wc does not report). */
        if (err->code != AREDIS_ERR_CANCELLED) watch_failed(s, err->detail);
        return;
    }
    s->wfails = 0;
    s->wepoch++;
    s->st.watch_connects++;
    if (s->role != AREDIS_SENTINEL_PRIMARY) return;
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", s->name};
    aredis_command_argv(s->wc, w_on_check, s, 3, argv, NULL);
}

static void watch_connect(snt *s) {
    const saddr *a = &s->list[s->widx % s->n];
    s->whost = a->host;
    aredis_options o = sentinel_options(s, a, 0);
    o.on_error = w_on_error;
    o.on_disconnect = w_on_disconnect;
    o.cb_data = s;
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_message = w_on_message;
    so.on_event = w_on_event;
    so.data = s;
    const char *ch[] = {SWITCH_CHANNEL};
    /* Connected first: on RESP2 the subscription has a connection of its
     * own, a copy of wc made now, which connects only if wc is. (Its loss
     * ends the subscription: w_on_event.) */
    s->wc = aredis_client_new(s->loop, &o);
    if (!s->wc || aredis_client_connect(s->wc) != AREDIS_ERR_OK ||
        !(s->wsub = aredis_subscription_new(s->wc, &so)) ||
        aredis_subscription_subscribe(s->wsub, AREDIS_SUB_CHANNEL, 1, ch, NULL, w_on_subscribed,
                                      s) != AREDIS_ERR_OK)
        watch_failed(s, aredis_call_error()->detail);
}

/* Run the watch while an attached client needs it. */
static void watch_ensure(snt *s) {
    if (s->watch && !s->wc && !s->wtimer_armed) watch_connect(s);
}

/* A sentinel has just answered: a watch waiting out its backoff (every
 * sentinel was down a moment ago) starts again at once, on that one. */
static void watch_kick(snt *s) {
    if (!s->watch || s->wc) return;
    if (s->wtimer_armed) aredis_timer_stop(s->wtimer);
    s->wtimer_armed = 0;
    s->widx = 0;
    s->wfails = 0;
    watch_connect(s);
}

/* ---- Lookups ------------------------------------------------------------------- */

static void lookup_step(att *a);

static void tried_add(att *a, const saddr *sa, const char *what) {
    char where_[300];
    fmt_addr(where_, sizeof where_, sa->host, sa->port);
    size_t n = strlen(a->tried);
    if (n + 8 >= sizeof a->tried) return; /* full: "..." is there already */
    int w = snprintf(a->tried + n, sizeof a->tried - n, "%s%s (%s)", n ? "; " : "", where_, what);
    if (w < 0 || (size_t)w >= sizeof a->tried - n) memcpy(a->tried + sizeof a->tried - 4, "...", 4);
}

/* The lookup is over; free its query connection (its callback, if still
 * owed, runs now and finds it gone). */
static void lookup_end(att *a) {
    aredis_client *q = a->qc;
    a->busy = 0;
    a->qc = NULL;
    aredis__free(a->sw_host);
    a->sw_host = NULL;
    aredis_timer_stop(a->timer);
    aredis_client_free(q);
}

/* What the lookup has tried, and the sentinel it is asking now:
 * "a:26379 (Connection refused); b:26379 (no answer yet)". */
static void describe(const att *a, char *buf, size_t len) {
    char where_[300] = "";
    if (a->busy && a->qc && a->i < a->s->n)
        fmt_addr(where_, sizeof where_, a->order[a->i].host, a->order[a->i].port);
    snprintf(buf, len, "%s%s%s%s", a->tried, a->tried[0] && where_[0] ? "; " : "", where_,
             where_[0] ? " (no answer yet)" : "");
}

/* The attempt's deadline has cut the lookup short: a failed lookup, and
 * the sentinel being asked, if any, a sentinel that did not answer (it goes
 * last). */
static void count_cut(att *a) {
    snt *s = a->s;
    s->st.lookup_failures++;
    if (!a->qc) return;
    s->st.sentinel_errors++;
    to_back(s, a->order[a->i].host);
}

/* Sentinel a->order[a->i] gave host:port. */
static void lookup_won(att *a, const char *host, int port) {
    snt *s = a->s;
    const saddr *sa = &a->order[a->i];
    if (a->sw_host && (a->sw_port != port || strcmp(a->sw_host, host) != 0)) {
        /* A failover was announced since the lookup started, and this
         * sentinel has not heard of it (yet): the announcement wins. */
        char said[100], to[100];
        fmt_addr(said, sizeof said, host, port);
        fmt_addr(to, sizeof to, a->sw_host, a->sw_port);
        aredis__log(AREDIS_LOG_INFO,
                    "sentinel: %s named for '%.64s' is stale (+switch-master announced %s "
                    "meanwhile): going there",
                    said, s->name, to);
        host = a->sw_host;
        port = a->sw_port;
        s->st.relocations++;
    } else {
        /* The Sentinel client spec: the sentinel that answered goes first. */
        to_front(s, sa->host);
    }
    int moved = !a->host || a->port != port || strcmp(a->host, host) != 0;
    char *h = moved ? aredis__strdup(host) : a->host;
    aredis_client *c = a->c;
    if (!h) {
        lookup_end(a);
        s->st.lookup_failures++;
        aredis__locate_failed(c, AREDIS_ERR_NOMEM, 0, "out of memory");
        return;
    }
    if (moved) {
        if (a->host) s->st.moves++;
        aredis__free(a->host);
        a->host = h;
        a->port = port;
    }
    lookup_end(a); /* host may be a->sw_host: from here on, a->host */
    a->epoch = s->wepoch;
    watch_kick(s);
    aredis__located(c, a->host, a->port); /* last: it may free c, a and s */
}

/* Nobody gave an address. */
static void lookup_lost(att *a) {
    snt *s = a->s;
    char detail[512]; /* the client keeps 255 bytes of it */
    snprintf(detail, sizeof detail, "no sentinel gave the address of the %s of '%.64s'%s%s",
             want_name(s), s->name, a->tried[0] ? ": " : "", a->tried);
    /* Every sentinel refused our credentials: retrying only hammers them. */
    int refused = a->auth_refused && a->auth_refused == a->failed;
    aredis_client *c = a->c;
    s->st.lookup_failures++;
    lookup_end(a);
    aredis__locate_failed(c, refused ? AREDIS_ERR_AUTH : AREDIS_ERR_IO, refused, detail);
}

/* The attempt's deadline has passed: a TIMEOUT, worded as the client's own
 * (aredis__locate_timeout()), whichever of its timer and the sentinel
 * connection's (which share the deadline) the loop runs first. */
static void lookup_timed_out(att *a) {
    snt *s = a->s;
    char detail[512], tried[300];
    describe(a, tried, sizeof tried);
    snprintf(detail, sizeof detail, "connect timed out locating %s of '%.100s' (via sentinels)%s%s",
             want_name(s), s->name, tried[0] ? ": " : "", tried);
    aredis_client *c = a->c;
    count_cut(a);
    lookup_end(a);
    aredis__locate_failed(c, AREDIS_ERR_TIMEOUT, 0, detail);
}

static int past_deadline(const att *a) {
    return a->deadline && aredis_loop_now_ms(a->s->loop) >= a->deadline;
}

/* The value of `key` in a flat key/value array (RESP2) or a map (RESP3). */
static const char *kv(const aredis_reply *e, const char *key) {
    if (!e || (e->type != AREDIS_REPLY_ARRAY && e->type != AREDIS_REPLY_MAP)) return NULL;
    for (size_t k = 0; k + 1 < e->elements; k += 2)
        if (e->element[k]->str && strcmp(e->element[k]->str, key) == 0 && e->element[k + 1]->str)
            return e->element[k + 1]->str;
    return NULL;
}

static int healthy(const aredis_reply *e) {
    const char *flags = kv(e, "flags"), *link = kv(e, "master-link-status");
    return flags && !strstr(flags, "s_down") && !strstr(flags, "o_down") &&
           !strstr(flags, "disconnected") && link && strcmp(link, "ok") == 0 && kv(e, "ip") &&
           kv(e, "port");
}

/* What a sentinel's answer says: 0 with the address in *host (borrowed
 * from r) and *port, or -1 with why it is no address. */
static int read_answer(att *a, aredis_reply *r, const char **host, int *port, char *why,
                       size_t wlen) {
    snt *s = a->s;
    if (r->type == AREDIS_REPLY_NIL) {
        snprintf(why, wlen, "does not know '%.64s'", s->name);
        return -1;
    }
    if (s->role == AREDIS_SENTINEL_PRIMARY) {
        if (r->type == AREDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->str &&
            r->element[0]->str[0] && r->element[1]->str) {
            *host = r->element[0]->str;
            *port = parse_port(r->element[1]->str);
            if (*port > 0) return 0;
            snprintf(why, wlen, "an address with no usable port");
            return -1;
        }
        snprintf(why, wlen, "an unexpected %s reply", aredis_reply_type_name(r->type));
        return -1;
    }
    if (r->type != AREDIS_REPLY_ARRAY) {
        snprintf(why, wlen, "an unexpected %s reply", aredis_reply_type_name(r->type));
        return -1;
    }
    size_t good = 0;
    for (size_t k = 0; k < r->elements; k++)
        good += (size_t)healthy(r->element[k]);
    if (!good) {
        snprintf(why, wlen, "no healthy replica of '%.64s' among %zu", s->name, r->elements);
        return -1;
    }
    size_t pick = (size_t)(next_rand(&s->rng) % good);
    for (size_t k = 0; k < r->elements; k++) {
        if (!healthy(r->element[k]) || pick--) continue;
        *host = kv(r->element[k], "ip");
        *port = parse_port(kv(r->element[k], "port"));
        if (*port > 0 && **host) return 0;
        break;
    }
    snprintf(why, wlen, "a replica with no usable address");
    return -1;
}

static void on_answer(aredis_client *qc, aredis_reply *r, const aredis_error *err, void *data) {
    att *a = data;
    if (qc != a->qc) return; /* the lookup was cancelled (this is its CANCELLED) */
    const char *host = NULL;
    int port = 0;
    char why[160];
    if (!err && read_answer(a, r, &host, &port, why, sizeof why) == 0) {
        lookup_won(a, host, port);
        return;
    }
    if (err && err->code == AREDIS_ERR_TIMEOUT && past_deadline(a)) {
        /* Its budget was what was left of the attempt's: the attempt timed
         * out, as the client's own timer (due now too) would say. */
        lookup_timed_out(a);
        return;
    }
    if (err) {
        if (err->code == AREDIS_ERR_AUTH) a->auth_refused++;
        /* "connect to <the address> failed: <why>": the address is said. */
        const char *d = err->detail, *f = strstr(d, " failed: ");
        if (strncmp(d, "connect to ", 11) == 0 && f) d = f + 9;
        snprintf(why, sizeof why, "%.150s", d);
    }
    a->failed++;
    a->s->st.sentinel_errors++;
    tried_add(a, &a->order[a->i], why);
    to_back(a->s, a->order[a->i].host);
    a->qc = NULL;
    aredis_client_free(qc); /* deferred: we are in its callback */
    a->i++;
    lookup_step(a);
}

/*
 * Ask the next sentinel, or give up when none is left. Each has
 * sentinel_timeout_ms, within what is left of the attempt's deadline; with
 * sentinel_timeout_ms 0, an equal share of what is left (so that one silent
 * sentinel cannot use it all).
 */
static void lookup_step(att *a) {
    snt *s = a->s;
    aredis_loop *loop = s->loop;
    while (a->i < s->n) {
        uint32_t budget = s->timeout_ms;
        if (a->deadline) {
            uint64_t now = aredis_loop_now_ms(loop);
            if (now >= a->deadline) {
                lookup_timed_out(a);
                return;
            }
            uint64_t left = a->deadline - now;
            if (!budget) left /= s->n - a->i;
            if (!budget || left < budget) budget = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
            if (!budget) budget = 1; /* 0 would be the options' own */
        }
        const saddr *sa = &a->order[a->i];
        aredis_options o = sentinel_options(s, sa, budget);
        aredis_client *q = aredis_client_new(loop, &o);
        const char *argv[3] = {
            "SENTINEL", s->role == AREDIS_SENTINEL_PRIMARY ? "get-master-addr-by-name" : "replicas",
            s->name};
        a->qc = q;
        if (q && aredis_client_connect(q) == AREDIS_ERR_OK &&
            aredis_command_argv(q, on_answer, a, 3, argv, NULL) == AREDIS_ERR_OK)
            return; /* on_answer() goes on */
        a->qc = NULL;
        a->failed++;
        s->st.sentinel_errors++;
        tried_add(a, sa, aredis_call_error()->detail);
        to_back(s, sa->host);
        aredis_client_free(q);
        a->i++;
    }
    lookup_lost(a);
}

static void on_lookup_timer(void *arg) {
    att *a = arg;
    if (a->busy && !a->qc) lookup_step(a);
}

/* ---- The locator -------------------------------------------------------------- */

static void loc_locate(aredis_client *c, void *state, uint64_t deadline) {
    att *a = state;
    snt *s = a->s;
    (void)c;
    a->active = 1;
    a->busy = 1;
    a->i = 0;
    a->failed = a->auth_refused = 0;
    a->tried[0] = '\0';
    a->deadline = deadline;
    aredis__free(a->sw_host);
    a->sw_host = NULL;
    memcpy(a->order, s->list, s->n * sizeof *s->list);
    s->st.lookups++;
    /* Answered from the loop, never from inside this call (a user's
     * aredis_client_connect()). */
    aredis_timer_start(a->timer, 0, 0);
    watch_ensure(s);
}

/* A teardown: the attempt's deadline (counted as a failed lookup), or the
 * user's close or free. */
static void loc_cancel(aredis_client *c, void *state) {
    att *a = state;
    (void)c;
    if (a->busy && past_deadline(a)) count_cut(a);
    lookup_end(a);
}

static void loc_describe(aredis_client *c, void *state, char *buf, size_t len) {
    (void)c;
    describe(state, buf, len);
}

static void loc_stopped(aredis_client *c, void *state) {
    att *a = state;
    (void)c;
    a->active = 0;
    if (!any_active(a->s)) watch_stop(a->s);
}

static void loc_destroy(aredis_client *c, void *state) {
    att *a = state;
    snt *s = a->s;
    (void)c;
    lookup_end(a);
    for (att **pp = &s->atts; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    aredis_timer_free(a->timer);
    aredis__free(a->order);
    aredis__free(a->host);
    aredis__free(a);
    if (!any_active(s)) watch_stop(s);
    snt_unref(s);
}

static int loc_clone(aredis_client *src, void *state, aredis_client *dst);

static const aredis__locator_ops k_ops = {
    loc_locate, loc_cancel, loc_describe, loc_stopped, loc_clone, loc_destroy,
};

/* Give c an att on s (a reference taken). */
static int attach(snt *s, aredis_client *c) {
    att *a = aredis__calloc(1, sizeof *a);
    if (!a) return -1;
    a->s = s;
    a->c = c;
    a->order = aredis__calloc(s->n, sizeof *a->order);
    a->timer = aredis_timer_new(s->loop, on_lookup_timer, a);
    char label[200];
    snprintf(label, sizeof label, "%s of '%.100s' (via sentinels)", want_name(s), s->name);
    if (!a->order || !a->timer || aredis__locator_attach(c, &k_ops, a, label) != 0) {
        aredis_timer_free(a->timer);
        aredis__free(a->order);
        aredis__free(a);
        return -1;
    }
    a->next = s->atts;
    s->atts = a;
    s->refs++;
    aredis__client_expect_role(c, s->role == AREDIS_SENTINEL_PRIMARY ? AREDIS__ROLE_MASTER
                                                                     : AREDIS__ROLE_REPLICA);
    return 0;
}

static int loc_clone(aredis_client *src, void *state, aredis_client *dst) {
    att *a = state;
    (void)src;
    return attach(a->s, dst);
}

/* ---- Public ------------------------------------------------------------------- */

static const char *invalid(const aredis_sentinel_options *o) {
    if (!o->sentinels || !o->nsentinels) return "no sentinels";
    if (!o->master_name || !*o->master_name) return "no master_name";
    if (strchr(o->master_name, ' ')) return "master_name holds a space";
    if (o->role != AREDIS_SENTINEL_PRIMARY && o->role != AREDIS_SENTINEL_REPLICA)
        return "role is neither AREDIS_SENTINEL_PRIMARY nor AREDIS_SENTINEL_REPLICA";
    if (o->sentinel_username && !o->sentinel_password)
        return "sentinel_username without sentinel_password";
    if (o->node.unix_path) return "node.unix_path: the sentinels say where to connect";
    return NULL;
}

/* NULL with aredis_call_error() set on failure. */
static snt *snt_new(aredis_loop *loop, const aredis_sentinel_options *o) {
    /* One TLS context for every sentinel connection and data connection,
     * built now (not by each of them at its connect). */
    aredis_tls_context *tls = o->node.tls_context;
    if (o->node.tls && !tls) {
        tls = aredis_tls_context_new(&o->node);
        if (!tls) return NULL;
    } else {
        aredis_tls_context_retain(tls); /* a shared one outlives the caller's reference */
    }
    snt *s = aredis__calloc(1, sizeof *s);
    if (!s) {
        aredis_tls_context_release(tls);
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->refs = 1;
    s->loop = loop;
    s->role = o->role;
    s->timeout_ms = o->sentinel_timeout_ms;
    s->watch = o->watch;
    s->backoff_ms = o->node.reconnect_delay_ms;
    s->backoff_max_ms = o->node.max_reconnect_delay_ms;
    if (s->backoff_max_ms < s->backoff_ms) s->backoff_max_ms = s->backoff_ms;
    s->rng = (uint64_t)(uintptr_t)s ^ aredis_loop_now_ms(loop) ^ 0x5bd1e995ull;
    s->name = aredis__strdup(o->master_name);
    s->list = aredis__calloc(o->nsentinels, sizeof *s->list);
    s->wtimer = aredis_timer_new(loop, on_wtimer, s);
    /* The sentinel connections: the node's transport settings and TLS, the
     * sentinel credentials, nothing of its session (db, name, prefix,
     * cache, callbacks), and no reconnecting of their own. */
    aredis_options so = AREDIS_OPTIONS_INIT;
    so.tls = o->node.tls;
    so.tls_ca_file = o->node.tls_ca_file;
    so.tls_ca_path = o->node.tls_ca_path;
    so.tls_cert_file = o->node.tls_cert_file;
    so.tls_key_file = o->node.tls_key_file;
    so.tls_server_name = o->node.tls_server_name;
    so.tls_insecure_skip_verify = o->node.tls_insecure_skip_verify;
    so.tls_context = tls;
    so.username = o->sentinel_username;
    so.password = o->sentinel_password;
    so.protocol = o->node.protocol;
    so.limits = o->node.limits;
    so.keepalive_s = o->node.keepalive_s;
    so.connect_timeout_ms = o->sentinel_timeout_ms ? o->sentinel_timeout_ms : 5000;
    so.request_timeout_ms = o->node.request_timeout_ms;
    so.dead_timeout_ms = o->node.dead_timeout_ms;
    so.health_check_interval_ms = o->node.health_check_interval_ms;
    so.reconnect = 0;
    if (!s->name || !s->list || !s->wtimer || aredis__options_dup(&s->sopt, &so) != 0) {
        s->sopt.tls_context = NULL;
        s->n = 0;
        snt_unref(s);
        aredis_tls_context_release(tls);
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->sopt.tls_context = tls; /* the snt's reference, released at its end */
    return s;
}

aredis_client *aredis_sentinel_client_new(aredis_loop *loop, const aredis_sentinel_options *o) {
    if (!loop || !o) {
        aredis__call_fail(AREDIS_ERR_INVALID, "%s is NULL", loop ? "options" : "loop");
        return NULL;
    }
    const char *bad = invalid(o);
    if (bad) {
        aredis__call_fail(AREDIS_ERR_INVALID, "invalid sentinel options: %s", bad);
        return NULL;
    }
    snt *s = snt_new(loop, o);
    if (!s) return NULL;
    for (size_t i = 0; i < o->nsentinels; i++) {
        int r = parse_addr(o->sentinels[i], &s->list[i]);
        if (r != 0) {
            snt_unref(s);
            if (r == -2)
                aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
            else
                aredis__call_fail(AREDIS_ERR_INVALID,
                                  "invalid sentinel options: sentinel %zu: '%.100s' is not "
                                  "host:port",
                                  i, o->sentinels[i] ? o->sentinels[i] : "(null)");
            return NULL;
        }
        s->n = i + 1;
    }
    /* The data connection: the node options, at a place-holder address
     * until the sentinels give one (never connected to: every attempt
     * asks them first). */
    aredis_options no = o->node;
    no.host = o->master_name;
    no.tls_context = s->sopt.tls_context;
    if (no.port < 1 || no.port > 65535) no.port = 6379;
    aredis_client *c = aredis_client_new(loop, &no);
    if (!c) {
        snt_unref(s);
        return NULL;
    }
    if (attach(s, c) != 0) {
        aredis_client_free(c);
        snt_unref(s);
        aredis__call_fail(AREDIS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snt_unref(s); /* the att holds it now */
    return c;
}

aredis_err aredis_sentinel_current(const aredis_client *c, char *host, size_t hostlen, int *port) {
    const att *a = aredis__locator_state(c, &k_ops);
    if (!a) return aredis__call_fail(AREDIS_ERR_INVALID, "not a sentinel client");
    if (!a->host)
        return aredis__call_fail(AREDIS_ERR_NOT_CONNECTED, "the sentinels gave no address yet");
    if (host && hostlen) snprintf(host, hostlen, "%s", a->host);
    if (port) *port = a->port;
    return AREDIS_ERR_OK;
}

aredis_err aredis_sentinel_get_stats(const aredis_client *c, aredis_sentinel_stats *out) {
    const att *a = aredis__locator_state(c, &k_ops);
    if (!a) return aredis__call_fail(AREDIS_ERR_INVALID, "not a sentinel client");
    *out = a->s->st;
    return AREDIS_ERR_OK;
}
