/*
 * timeouts — a request timeout for the client, a per-command override, a
 * command without any deadline, and a wait with a deadline of its own.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_timeouts   (that is the default)
 *
 * Exits 0 when each wait ended as described below.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

static int g_failed;

/* Print what happened, and note it when it is not what we expected. */
static void saw(const char *what, aredis_err got, aredis_err want) {
    printf("%-42s %s\n", what,
           got == AREDIS_ERR_OK ? "done (nil: nothing to pop)" : aredis_err_name(got));
    if (got != want) {
        fprintf(stderr, "  expected %s\n", aredis_err_name(want));
        g_failed = 1;
    }
}

int main(void) {
    const char *key = "example:empty-list";
    const char *url = getenv("REDIS_URL");
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        return 2;
    }
    aredis_uri_apply(uri, &o);
    o.connect_timeout_ms = 2000;
    o.request_timeout_ms = 500; /* every command, from the moment it is issued */
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);

    /* A blocking command gets its own block time on top of the client's
     * 500 ms: BLPOP for 1 s may take 1.5 s, and ends with nil. */
    aredis_future *f = aredis_future_command(c, "BLPOP %s %d", key, 1);
    saw("BLPOP 1 s, client timeout 500 ms:", aredis_await(f), AREDIS_ERR_OK);
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
    saw("BLPOP 1 s, its own deadline 200 ms:", aredis_await(t), AREDIS_ERR_TIMEOUT);
    aredis_err pe = aredis_await(p); /* after the BLPOP's 1 s: PING waits behind it */
    printf("%-42s %s\n",
           "PING behind it:", pe == AREDIS_ERR_OK ? aredis_future_reply(p)->str : "failed");
    if (pe != AREDIS_ERR_OK) g_failed = 1;
    aredis_future_release(t);
    aredis_future_release(p);

    /* Waiting is not the command: aredis_await_for() gives up after 100 ms
     * but leaves the BLPOP pending, and a later wait still gets its reply. */
    f = aredis_future_command(c, "BLPOP %s %d", key, 1);
    saw("waiting 100 ms for BLPOP 1 s:", aredis_await_for(f, 100), AREDIS_ERR_TIMEOUT);
    if (aredis_future_is_done(f)) g_failed = 1; /* that TIMEOUT was the wait's, not the BLPOP's */
    saw("waiting again:", aredis_await(f), AREDIS_ERR_OK);
    aredis_future_release(f);

    aredis_client_free(c);
    aredis_loop_free(loop);
    return g_failed;
}
