/*
 * The loop conformance suite (conformance.h) on the libevent adapter
 * (aredis/adapters/libevent.h). Each test gets a fresh event_base; at
 * teardown no event of the adapter may be left on it. With libevent_pthreads
 * (AREDIS_HAVE_EVTHREAD) libevent's locking is on, and the tests that signal
 * and post from other threads run too; without it they are skipped.
 */
#ifdef AREDIS_HAVE_LIBEVENT

#include <event2/event.h>
#ifdef AREDIS_HAVE_EVTHREAD
#include <event2/thread.h>
#endif

#include "conformance.h"
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
#ifdef AREDIS_HAVE_EVTHREAD
    /* Posts come from other threads: libevent's locking, before any base
     * (aredis/adapters/libevent.h). */
    if (evthread_use_pthreads() != 0) {
        puts("FAIL: evthread_use_pthreads");
        return 1;
    }
    static const conf_driver drv = {"loop/libevent", libevent_make, libevent_destroy, 0, 1};
#else
    static const conf_driver drv = {"loop/libevent", libevent_make, libevent_destroy, 0, 0};
#endif
    return conf_main(&drv);
}

#else

#include <stdio.h>

int main(void) {
    puts("SKIP: libevent not found");
    return 77;
}

#endif
