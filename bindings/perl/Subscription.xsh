# Subscription entry points (Future::IO::Redis::Subscription), included by Redis.xs inside
# MODULE = Future::IO::Redis PACKAGE = Future::IO::Redis::_XS.

int
subscription_available()
CODE:
    RETVAL = 1;
OUTPUT:
    RETVAL
