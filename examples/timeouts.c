/*
 * timeouts — a request timeout for the client, a per-command override, a
 * command without any deadline, and a wait with a deadline of its own.
 *
 *   ./example_timeouts [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

static const char *outcome(aredis_err e) { return e ? aredis_err_name(e) : "nil, as expected"; }

int main(int argc, char **argv) {
    const char *key = "example:empty-list";
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    o.connect_timeout_ms = 2000;
    o.request_timeout_ms = 500; /* every command, from the moment it is issued */
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);

    /* A blocking command gets its own block time on top of the client's
     * 500 ms: BLPOP for 1 s may take 1.5 s, and ends with nil. */
    aredis_future *f = aredis_future_command(c, "BLPOP %s %d", key, 1);
    printf("BLPOP 1 s, client timeout 500 ms: %s\n", outcome(aredis_await(f)));
    aredis_future_release(f);

    /* A per-command deadline overrides the client's: 200 ms for the same
     * BLPOP is a TIMEOUT. Its late reply will be dropped, and the PING
     * behind it (sent with no deadline at all) still gets its own answer. */
    aredis_cmd_opts co = AREDIS_CMD_OPTS_INIT;
    co.timeout_ms = 200;
    aredis_future *t = aredis_future_command_ex(c, &co, "BLPOP %s %d", key, 1);
    aredis_cmd_opts none = AREDIS_CMD_OPTS_INIT;
    none.flags = AREDIS_CMD_NO_TIMEOUT;
    aredis_future *p = aredis_future_command_ex(c, &none, "PING");
    printf("BLPOP 1 s, its own deadline 200 ms: %s\n", aredis_err_name(aredis_await(t)));
    printf("PING behind it: %s\n",
           aredis_await(p) == AREDIS_ERR_OK ? aredis_future_reply(p)->str : "failed");
    aredis_future_release(t);
    aredis_future_release(p);

    /* Waiting is not the command: aredis_await_for() gives up after 100 ms
     * but leaves the BLPOP pending, and a later wait still gets its reply. */
    f = aredis_future_command(c, "BLPOP %s %d", key, 1);
    printf("waiting 100 ms for BLPOP 1 s: %s\n", aredis_err_name(aredis_await_for(f, 100)));
    printf("waiting again: %s\n", outcome(aredis_await(f)));
    aredis_future_release(f);

    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
