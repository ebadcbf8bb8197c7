/* The client scenario (client_scenario.h) on the libevent loop. */
#ifdef AREDIS_HAVE_LIBEVENT

#include <event2/event.h>

#include "aredis/adapters/libevent.h"
#include "client_scenario.h"

static aredis_loop *ev2_make(void **foreign) {
    struct event_base *b = event_base_new();
    assert_non_null(b);
    *foreign = b;
    return aredis_loop_libevent(b);
}
static void ev2_destroy(aredis_loop *loop, void *foreign) {
    aredis_loop_free(loop);
    event_base_free(foreign);
}

int main(void) {
    static const loop_kind k = {"libevent", ev2_make, ev2_destroy};
    return scenario_main(&k);
}

#else

#include <stdio.h>
#include <stdlib.h>

int main(void) {
    if (getenv("CI")) {
        puts("FAIL: libevent not found, and CI must test it");
        return 1;
    }
    puts("SKIP: libevent not found");
    return 77;
}

#endif
