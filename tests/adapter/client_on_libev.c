/* The client scenario (client_scenario.h) on the libev loop. */
#ifdef AREDIS_HAVE_LIBEV

#include "aredis/adapters/libev.h"
#include "client_scenario.h"

static aredis_loop *ev_make(void **foreign) {
    struct ev_loop *l = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(l);
    *foreign = l;
    return aredis_loop_libev(l);
}
static void ev_destroy(aredis_loop *loop, void *foreign) {
    aredis_loop_free(loop);
    ev_loop_destroy(foreign);
}

int main(void) {
    static const loop_kind k = {"libev", ev_make, ev_destroy};
    return scenario_main(&k);
}

#else

#include <stdio.h>
#include <stdlib.h>

int main(void) {
    if (getenv("CI")) {
        puts("FAIL: libev not found, and CI must test it");
        return 1;
    }
    puts("SKIP: libev not found");
    return 77;
}

#endif
