/*
 * aredis_loop_run_for() and aredis_await_for() (run_for.h) on the libuv
 * adapter (aredis/adapters/libuv.h): a fresh uv_loop_t
 * each; uv_loop_close() must succeed at the end.
 */
#ifdef AREDIS_HAVE_LIBUV

#include <uv.h>

#include "run_for.h"
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
    uv_run(uv, UV_RUN_DEFAULT);             /* finish the asynchronous closes */
    assert_int_equal(uv_loop_close(uv), 0); /* fails on a handle left open */
    free(uv);
}

int main(void) {
    static const rf_driver drv = {"run_for/libuv", libuv_make, libuv_destroy};
    return rf_main(&drv);
}

#else

#include <stdio.h>

int main(void) {
    puts("SKIP: libuv not found");
    return 77;
}

#endif
