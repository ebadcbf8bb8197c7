/*
 * The loop conformance suite (conformance.h) on the built-in loop
 * (aredis_loop_new: epoll on Linux), including the exact deadline-order check
 * of its timer heap, and the fork check (builtin_fork.h). builtin_poll.c runs
 * the same on the poll() backend.
 */
#include "conformance.h"

#include "builtin_fork.h"

static aredis_loop *builtin_make(void **foreign) {
    *foreign = NULL;
    return aredis_loop_new();
}

static void builtin_destroy(aredis_loop *loop, void *foreign) {
    (void)foreign;
    aredis_loop_free(loop);
}

int main(void) {
    static const conf_driver drv = {"loop/builtin", builtin_make, builtin_destroy, 1, 1};
    int rc = conf_main(&drv);
    return rc | builtin_fork_main("loop/builtin fork");
}
