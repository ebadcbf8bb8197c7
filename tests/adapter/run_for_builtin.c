/*
 * aredis_loop_run_for() and aredis_await_for() (run_for.h) on the built-in
 * loop (aredis_loop_new).
 */
#include "run_for.h"

static aredis_loop *builtin_make(void **foreign) {
    *foreign = NULL;
    return aredis_loop_new();
}

static void builtin_destroy(aredis_loop *loop, void *foreign) {
    (void)foreign;
    aredis_loop_free(loop);
}

int main(void) {
    static const rf_driver drv = {"run_for/builtin", builtin_make, builtin_destroy};
    return rf_main(&drv);
}
