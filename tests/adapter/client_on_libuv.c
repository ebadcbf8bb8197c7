/* The client scenario (client_scenario.h) on the libuv loop. */
#ifdef AREDIS_HAVE_LIBUV

#include "aredis/adapters/libuv.h"
#include "client_scenario.h"

static aredis_loop *uv_make(void **foreign) {
    uv_loop_t *uv = malloc(sizeof *uv);
    assert_int_equal(uv_loop_init(uv), 0);
    *foreign = uv;
    return aredis_loop_libuv(uv);
}
static void uv_destroy(aredis_loop *loop, void *foreign) {
    aredis_loop_free(loop);
    uv_run(foreign, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(foreign), 0);
    free(foreign);
}

int main(void) {
    static const loop_kind k = {"libuv", uv_make, uv_destroy};
    return scenario_main(&k);
}

#else

#include <stdio.h>
#include <stdlib.h>

int main(void) {
    if (getenv("CI")) {
        puts("FAIL: libuv not found, and CI must test it");
        return 1;
    }
    puts("SKIP: libuv not found");
    return 77;
}

#endif
