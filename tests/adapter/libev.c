/*
 * The loop conformance suite (conformance.h) on the libev adapter
 * (aredis/adapters/libev.h). Each test gets a fresh ev_loop_new() loop; at
 * teardown no watcher of the adapter may be left active on it.
 */
#ifdef AREDIS_HAVE_LIBEV

#include <ev.h>

#include "conformance.h"
#include "aredis/adapters/libev.h"

static aredis_loop *libev_make(void **foreign) {
    struct ev_loop *evl = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(evl);
    *foreign = evl;
    return aredis_loop_libev(evl);
}

static void libev_destroy(aredis_loop *loop, void *foreign) {
    struct ev_loop *evl = foreign;
    aredis_loop_free(loop);
    /* With no active watcher left, a non-blocking turn reports none. */
    assert_int_equal(ev_run(evl, EVRUN_NOWAIT), 0);
    ev_loop_destroy(evl);
}

int main(void) {
    static const conf_driver drv = {"loop/libev", libev_make, libev_destroy, 0, 1};
    return conf_main(&drv);
}

#else

#include <stdio.h>

int main(void) {
    puts("SKIP: libev not found");
    return 77;
}

#endif
