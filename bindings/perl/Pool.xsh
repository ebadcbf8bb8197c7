# Pool entry points (Future::IO::Redis::Pool), included by Redis.xs inside
# MODULE = Future::IO::Redis PACKAGE = Future::IO::Redis::_XS.

int
pool_available()
CODE:
    RETVAL = 1;
OUTPUT:
    RETVAL
