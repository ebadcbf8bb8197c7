/*
 * Test support: the shared group fixture — a default redis-server, a loop
 * and a client connected to it.
 */
#include "ts.h"

static ts_env g_env;
static ts_env *g_cur;

int ts_env_setup(void **state) {
    g_env.srv = ts_server_start_default();
    g_env.loop = aredis_loop_new();
    assert_non_null(g_env.loop);
    g_env.c = ts_client(g_env.loop, g_env.srv);
    g_cur = &g_env;
    if (state) *state = g_cur;
    return 0;
}

int ts_env_teardown(void **state) {
    if (state) *state = NULL;
    g_cur = NULL;
    aredis_client_free(g_env.c);
    aredis_loop_free(g_env.loop);
    ts_server_stop(g_env.srv);
    g_env.c = NULL;
    g_env.loop = NULL;
    g_env.srv = NULL;
    return 0;
}

ts_env *ts_env_get(void) { return g_cur; }
