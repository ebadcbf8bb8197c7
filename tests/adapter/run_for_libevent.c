/*
 * aredis_loop_run_for() and aredis_await_for() (run_for.h) on the libevent
 * adapter (aredis/adapters/libevent.h): a fresh
 * event_base each; no event may be left on it.
 */
#ifdef AREDIS_HAVE_LIBEVENT

#include <event2/event.h>

#include "run_for.h"
#include "aredis/adapters/libevent.h"

static aredis_loop *libevent_make(void **foreign) {
    struct event_base *base = event_base_new();
    assert_non_null(base);
    *foreign = base;
    return aredis_loop_libevent(base);
}

static void libevent_destroy(aredis_loop *loop, void *foreign) {
    struct event_base *base = foreign;
    aredis_loop_free(loop);
    assert_int_equal(
        event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE), 0);
    event_base_free(base);
}

int main(void) {
    static const rf_driver drv = {"run_for/libevent", libevent_make, libevent_destroy};
    return rf_main(&drv);
}

#else

#include <stdio.h>

int main(void) {
    puts("SKIP: libevent not found");
    return 77;
}

#endif
