/*
 * timeouts — a request timeout for the client, a per-command override, and
 * a command without any deadline (for blocking commands).
 *
 *   ./example_timeouts [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    o.connect_timeout_ms = 2000;
    o.request_timeout_ms = 500; /* every command, from the moment it is issued */
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);

    /* BLPOP for 1 s would exceed 500 ms: give it its own deadline. */
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 3000;
    const char *blpop[] = {"BLPOP", "example:empty-list", "1"};
    aredis_future *f = aredis_future_argv_ex(c, &co, 3, blpop, NULL);
    aredis_err e = aredis_await(f);
    printf("BLPOP 1 s with a 3 s deadline: %s\n", e ? aredis_err_name(e) : "nil, as expected");
    aredis_future_release(f);

    /* The same with the client's 500 ms: a TIMEOUT. The late reply will be
     * dropped, and the GET behind it still gets its own answer. */
    aredis_future *t = aredis_future_argv(c, 3, blpop, NULL);
    aredis_cmd_opts none = AREDIS_CMD_OPTS_INIT;
    none.flags = AREDIS_CMD_NO_TIMEOUT;
    const char *ping[] = {"PING"};
    aredis_future *p = aredis_future_argv_ex(c, &none, 1, ping, NULL);
    printf("BLPOP 1 s with 500 ms: %s\n", aredis_err_name(aredis_await(t)));
    printf("PING behind it: %s\n",
           aredis_await(p) == AREDIS_ERR_OK ? aredis_future_reply(p)->str : "failed");
    aredis_future_release(t);
    aredis_future_release(p);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
