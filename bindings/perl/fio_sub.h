/*
 * fio_sub.h — Future::IO::Redis::Subscription's C side (fio_sub.c): an
 * aredis_subscription, its events into Perl, and Perl futures of its
 * messages.
 */
#ifndef FIO_SUB_H
#define FIO_SUB_H

#include "fio.h"

/* A subscription and the (weak) reference to its Perl object, for events. */
typedef struct psub {
    aredis_subscription *s;
    SV *self;
} psub;

/* A pending message future: the Perl future (a reference held until it is
 * completed) and the aredis_subscription_next() future behind it. */
typedef struct pnext {
    SV *future;
    aredis_future *af;
    int data_key; /* the payload under "data" (next) rather than "message" */
    int cancelled;
} pnext;

/* A subscription on pc's client for the Perl object self (weakly
 * referenced), buffering at most max_buffered messages for next (0: the
 * default); dies with the refusal's error object. */
psub *psub_new(pTHX_ pclient *pc, SV *self, size_t max_buffered);
/* Free: pending message futures resolve with undef. */
void psub_free(pTHX_ psub *ps);
/* Subscribe (unsub 0) or unsubscribe (1) n names of a kind; future
 * completes with the last confirmation. Dies with the refusal's error. */
void psub_call(pTHX_ psub *ps, int unsub, int kind, SV *future, SV **names, int n);
/* Complete future with the next message (a hash ref; undef once the
 * subscription has ended). Returns the pending record (for psub_next_cancel)
 * or NULL when future is completed already. */
pnext *psub_next(pTHX_ psub *ps, SV *future, int data_key);
/* The Perl future of a pending record was cancelled: let its message go
 * to the next one asking. */
void psub_next_cancel(pnext *n);
/* The subscription's counters, as a new hash ref. */
SV *psub_stats(pTHX_ psub *ps);

#endif
