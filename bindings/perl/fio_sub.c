/*
 * fio_sub.c — the C side of Future::IO::Redis::Subscription (the XS entry
 * points are in Subscription.xsh): an aredis_subscription on a client,
 * its events handed to Perl, its messages as Perl futures.
 *
 * MESSAGES. The subscription has no aredis message handler: messages wait
 * in aredis's bounded buffer (max_buffered; past it the oldest is dropped
 * and an "overflow" event says so) until a Perl future asks for one. Each
 * next_message is one aredis_subscription_next() future whose then-callback
 * completes the Perl future with a hash ref — or with undef when the
 * subscription ended (client closed, disconnected or given up, or the
 * subscription freed). The on_message form is a Perl loop over those.
 *
 * WHAT C HOLDS OF PERL. A psub holds a weak reference to its Perl object
 * (events are dropped once it is gone, and an event handler gets a strong
 * reference of its own for the call, so that the object cannot go while
 * Perl runs). A pnext holds a strong reference to its Perl future until it
 * completes it; a Perl future cancelled first cancels the aredis future
 * (psub_next_cancel) so the message goes to the next one asking. Nothing
 * touches a psub after calling into Perl: Perl may free it there (DESTROY
 * → psub_free → aredis_subscription_free, which aredis allows from inside
 * the subscription's own event handler).
 */
#include "fio_sub.h"

/* aredis_sub_event → the name Future::IO::Redis::Subscription::_event gets. */
static const char *event_name(aredis_sub_event ev) {
    switch (ev) {
    case AREDIS_SUB_RESUBSCRIBED:
        return "resubscribed";
    case AREDIS_SUB_OVERFLOW:
        return "overflow";
    case AREDIS_SUB_DROPPED:
        return "dropped";
    case AREDIS_SUB_ERROR:
        return "error";
    case AREDIS_SUB_ENDED:
        return "ended";
    }
    return NULL;
}

/* Future::IO::Redis::Subscription::_event(self, name[, code, detail, is_conn]).
 * The handler may free ps: not touched after the call. */
static void sub_event(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                      void *data) {
    dTHX;
    psub *ps = data;
    const char *name = event_name(ev);
    (void)s;
    if (!name) return;
    perl_event(aTHX_ "Future::IO::Redis::Subscription::_event", ps->self, name, err);
}

psub *psub_new(pTHX_ pclient *pc, SV *self, size_t max_buffered) {
    psub *ps = calloc(1, sizeof *ps);
    if (!ps) croak("Future::IO::Redis: out of memory");
    aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
    so.on_event = sub_event;
    so.max_buffered = max_buffered;
    so.data = ps;
    ps->s = aredis_subscription_new(pc->c, &so);
    if (!ps->s) {
        free(ps);
        refused(aTHX_ aredis_call_error()->code); /* dies */
    }
    ps->self = newSVsv(self);
    sv_rvweaken(ps->self);
    return ps;
}

void psub_free(pTHX_ psub *ps) {
    aredis_subscription *s = ps->s;
    SV *self = ps->self;
    ps->s = NULL;
    ps->self = NULL;
    /* Pending message futures fail with CANCELLED: their Perl futures
     * resolve with undef here (Perl runs; it no longer reaches ps). */
    aredis_subscription_free(s);
    SvREFCNT_dec(self);
    free(ps);
}

void psub_call(pTHX_ psub *ps, int unsub, int kind, SV *future, SV **names, int n) {
    if (kind < AREDIS_SUB_CHANNEL || kind > AREDIS_SUB_SHARD)
        croak("Future::IO::Redis::Subscription: unknown kind %d", kind);
    if (!ps->s) refused(aTHX_ AREDIS_ERR_CLOSED);
    ENTER;
    argv_buf b;
    argv_fill(aTHX_ & b, names, n);
    SV *f = newSVsv(future);
    aredis_err e = unsub ? aredis_subscription_unsubscribe(ps->s, (aredis_sub_kind)kind, (size_t)n,
                                                           b.argv, b.lens, on_reply, f)
                         : aredis_subscription_subscribe(ps->s, (aredis_sub_kind)kind, (size_t)n,
                                                         b.argv, b.lens, on_reply, f);
    LEAVE;
    if (e != AREDIS_ERR_OK) {
        SvREFCNT_dec(f);
        refused(aTHX_ e);
    }
}

/* A message reply as the hash ref Perl gets: type, channel, message (or
 * data), and pattern for a pmessage. Bytes, binary safe. */
static SV *message_sv(pTHX_ aredis_reply *r, int data_key) {
    aredis_message m;
    if (!r || aredis_message_parse(r, &m) != 0) return newSV(0);
    HV *hv = newHV();
    const char *type = m.kind == AREDIS_SUB_PATTERN ? "pmessage"
                       : m.kind == AREDIS_SUB_SHARD ? "smessage"
                                                    : "message";
    hv_stores(hv, "type", newSVpv(type, 0));
    hv_stores(hv, "channel", newSVpvn(m.channel, m.channel_len));
    if (data_key)
        hv_stores(hv, "data", newSVpvn(m.payload, m.payload_len));
    else
        hv_stores(hv, "message", newSVpvn(m.payload, m.payload_len));
    if (m.pattern) hv_stores(hv, "pattern", newSVpvn(m.pattern, m.pattern_len));
    return newRV_noinc((SV *)hv);
}

/* n's aredis future is done: complete the Perl future (unless it was
 * cancelled) and let both go. */
static void next_complete(pTHX_ pnext *n) {
    aredis_future *af = n->af;
    SV *f = n->future;
    int cancelled = n->cancelled, data_key = n->data_key;
    free(n);
    /* In global destruction Perl has undone references to objects (f
     * among them) and may have torn packages down: nobody is waiting. */
    if (!cancelled && SvROK(f) && PL_phase != PERL_PHASE_DESTRUCT) {
        /* Failed: the subscription ended (client closed, disconnected or
         * given up; subscription freed): undef, as the reference design's
         * next_message gives then. */
        aredis_reply *r = aredis_future_error(af) ? NULL : aredis_future_reply(af);
        future_done(aTHX_ f, message_sv(aTHX_ r, data_key));
    }
    SvREFCNT_dec(f);
    aredis_future_release(af);
}

static void next_then(aredis_future *af, void *data) {
    dTHX;
    (void)af;
    next_complete(aTHX_ data);
}

pnext *psub_next(pTHX_ psub *ps, SV *future, int data_key) {
    aredis_future *af = ps->s ? aredis_subscription_next(ps->s) : NULL;
    if (!af) { /* the client is gone (or out of memory) */
        future_done(aTHX_ future, newSV(0));
        return NULL;
    }
    pnext *n = calloc(1, sizeof *n);
    if (!n) {
        aredis_future_cancel(af);
        aredis_future_release(af);
        croak("Future::IO::Redis: out of memory");
    }
    n->future = newSVsv(future);
    n->af = af;
    n->data_key = data_key;
    if (aredis_future_is_done(af)) { /* a message was buffered */
        next_complete(aTHX_ n);
        return NULL;
    }
    if (aredis_future_then(af, next_then, n) != AREDIS_ERR_OK) {
        n->cancelled = 1;
        aredis_future_cancel(af);
        next_complete(aTHX_ n);
        croak("Future::IO::Redis: out of memory");
    }
    return n;
}

void psub_next_cancel(pnext *n) {
    n->cancelled = 1;
    aredis_future_cancel(n->af); /* runs next_then now: n is freed */
}

SV *psub_stats(pTHX_ psub *ps) {
    aredis_sub_stats st = {0, 0, 0, 0};
    if (ps->s) aredis_subscription_get_stats(ps->s, &st);
    HV *hv = newHV();
    hv_stores(hv, "delivered", newSVuv((UV)st.delivered));
    hv_stores(hv, "dropped", newSVuv((UV)st.dropped));
    hv_stores(hv, "resubscribes", newSVuv((UV)st.resubscribes));
    hv_stores(hv, "buffered", newSVuv((UV)st.buffered));
    return newRV_noinc((SV *)hv);
}
