/* The client scenario (client_scenario.h) on the built-in loop compiled with
 * its poll() backend (see builtin_poll.c). */
#include "client_scenario.h"

#include "loop/loop_internal.h"

static aredis_loop *poll_make(void **foreign) {
    *foreign = NULL;
    return aredis_loop_new();
}
static void poll_destroy(aredis_loop *loop, void *foreign) {
    (void)foreign;
    aredis_loop_free(loop);
}

int main(void) {
    static const loop_kind k = {"builtin_poll", poll_make, poll_destroy};
    if (strcmp(aredis__builtin_backend(), "poll") != 0) {
        fprintf(stderr, "FAIL: the built-in loop here is %s, not poll\n",
                aredis__builtin_backend());
        return 1;
    }
    return scenario_main(&k);
}
