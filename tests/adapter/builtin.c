/*
 * The loop conformance suite (conformance.h) on the built-in loop
 * (aredis_loop_new: epoll on Linux), including the exact deadline-order check
 * of its timer heap.
 */
#include "conformance.h"

static aredis_loop *builtin_make(void **foreign) {
    *foreign = NULL;
    return aredis_loop_new();
}

static void builtin_destroy(aredis_loop *loop, void *foreign) {
    (void)foreign;
    aredis_loop_free(loop);
}

int main(void) {
    static const conf_driver drv = {"loop/builtin", builtin_make, builtin_destroy, 1};
    return conf_main(&drv);
}
