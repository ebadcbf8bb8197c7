/* Cases on a loop of their own (ts.h, TS_LOOP_CASE). */
#include "ts.h"

static aredis_loop *g_case_loop;
static int g_case_passed;

aredis_loop *ts_case_loop(void) { return g_case_loop; }

void ts_loop_case_run(void **state) {
    const ts_loop_case *t = *state;
    g_case_passed = 0;
    t->fn(state);
    g_case_passed = 1;
}

int ts_loop_case_setup(void **state) {
    (void)state;
    g_case_loop = aredis_loop_new();
    return g_case_loop ? 0 : -1;
}

int ts_loop_case_teardown(void **state) {
    (void)state;
    if (g_case_passed)
        aredis_loop_free(g_case_loop);
    else
        ts_log("the failed case's loop and clients are left behind");
    g_case_loop = NULL;
    return 0;
}
