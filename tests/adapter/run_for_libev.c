/*
 * aredis_loop_run_for() and aredis_await_for() (run_for.h) on the libev
 * adapter (aredis/adapters/libev.h): a fresh
 * ev_loop_new() loop each; no watcher may be left active.
 */
#ifdef AREDIS_HAVE_LIBEV

#include <ev.h>

#include "run_for.h"
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
    assert_int_equal(ev_run(evl, EVRUN_NOWAIT), 0); /* no active watcher left */
    ev_loop_destroy(evl);
}

int main(void) {
    static const rf_driver drv = {"run_for/libev", libev_make, libev_destroy};
    return rf_main(&drv);
}

#else

#include <stdio.h>

int main(void) {
    puts("SKIP: libev not found");
    return 77;
}

#endif
