/*
 * The loop conformance suite (conformance.h) and the fork check
 * (builtin_fork.h) on the built-in loop compiled with its poll() backend —
 * the one for systems without epoll — on Linux too: this executable links
 * the loop objects built with AREDIS_LOOP_USE_POLL (aredis_loop_poll) ahead
 * of the library's own.
 */
#include "conformance.h"

#include "builtin_fork.h"

static aredis_loop *poll_make(void **foreign) {
    *foreign = NULL;
    return aredis_loop_new();
}

static void poll_destroy(aredis_loop *loop, void *foreign) {
    (void)foreign;
    aredis_loop_free(loop);
}

int main(void) {
    static const conf_driver drv = {"loop/builtin_poll", poll_make, poll_destroy, 1, 1};
    if (strcmp(aredis__builtin_backend(), "poll") != 0) {
        fprintf(stderr, "FAIL: the built-in loop here is %s, not poll\n",
                aredis__builtin_backend());
        return 1;
    }
    int rc = conf_main(&drv);
    return rc | builtin_fork_main("loop/builtin_poll fork");
}
