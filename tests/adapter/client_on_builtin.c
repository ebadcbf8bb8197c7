/* The client scenario (client_scenario.h) on the builtin loop. */
#include "client_scenario.h"

static aredis_loop *builtin_make(void **foreign) {
    *foreign = NULL;
    return aredis_loop_new();
}
static void builtin_destroy(aredis_loop *loop, void *foreign) {
    (void)foreign;
    aredis_loop_free(loop);
}

int main(void) {
    static const loop_kind k = {"builtin", builtin_make, builtin_destroy};
    return scenario_main(&k);
}
