/*
 * The loop conformance suite (conformance.h) on the libuv adapter
 * (aredis/adapters/libuv.h). Each test gets a fresh uv_loop_t; at teardown
 * the loop is run until libuv has closed every handle the adapter made, and
 * uv_loop_close() must succeed: a leaked handle fails the test.
 */
#ifdef AREDIS_HAVE_LIBUV

#include <uv.h>

#include "conformance.h"
#include "aredis/adapters/libuv.h"

static aredis_loop *libuv_make(void **foreign) {
    uv_loop_t *uv = malloc(sizeof *uv);
    assert_non_null(uv);
    assert_int_equal(uv_loop_init(uv), 0);
    *foreign = uv;
    return aredis_loop_libuv(uv);
}

static void libuv_destroy(aredis_loop *loop, void *foreign) {
    uv_loop_t *uv = foreign;
    aredis_loop_free(loop);
    uv_run(uv, UV_RUN_DEFAULT); /* finish the asynchronous closes */
    assert_int_equal(uv_loop_close(uv), 0);
    free(uv);
}

int main(void) {
    static const conf_driver drv = {"loop/libuv", libuv_make, libuv_destroy, 0, 1};
    return conf_main(&drv);
}

#else

#include <stdio.h>

int main(void) {
    puts("SKIP: libuv not found");
    return 77;
}

#endif
