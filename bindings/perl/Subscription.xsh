# Subscription entry points (Future::IO::Redis::Subscription), included by Redis.xs inside
# MODULE = Future::IO::Redis PACKAGE = Future::IO::Redis::_XS. The C is in fio_sub.c.

#include "fio_sub.h"

UV
sub_new(UV client, SV *self, UV max_buffered)
CODE:
    RETVAL = PTR2UV(psub_new(aTHX_ INT2PTR(pclient *, client), self, (size_t)max_buffered));
OUTPUT:
    RETVAL

void
sub_free(UV ptr)
CODE:
    psub_free(aTHX_ INT2PTR(psub *, ptr));

void
sub_call(UV ptr, int unsub, int kind, SV *future, ...)
CODE:
    int n = items - 4;
    if (n < 1) croak("Future::IO::Redis::Subscription: no names given");
    psub_call(aTHX_ INT2PTR(psub *, ptr), unsub, kind, future, &ST(4), n);

UV
sub_next(UV ptr, SV *future, int data_key)
CODE:
    RETVAL = PTR2UV(psub_next(aTHX_ INT2PTR(psub *, ptr), future, data_key));
OUTPUT:
    RETVAL

void
sub_next_cancel(UV pending)
CODE:
    psub_next_cancel(INT2PTR(pnext *, pending));

UV
sub_count(UV ptr, int kind)
CODE:
    psub *ps = INT2PTR(psub *, ptr);
    RETVAL = ps->s ? (UV)aredis_subscription_count(ps->s, (aredis_sub_kind)kind) : 0;
OUTPUT:
    RETVAL

SV *
sub_stats(UV ptr)
CODE:
    RETVAL = psub_stats(aTHX_ INT2PTR(psub *, ptr));
OUTPUT:
    RETVAL
