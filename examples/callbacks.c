/*
 * callbacks — the zero-allocation fast path: aredis_command() with a reply
 * callback, driven by the built-in loop.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_callbacks   (that is the default)
 *
 * Exits 0 when every command got the reply it should.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int remaining = 3, failed;

/* One callback for the three commands; `data` says which reply we expect. */
static void on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    const char *want = data;
    char got[64] = "";
    if (err) {
        fprintf(stderr, "failed: %s (%s)\n", err->detail, aredis_err_name(err->code));
        failed = 1;
    } else {
        if (r->type == AREDIS_REPLY_STRING || r->type == AREDIS_REPLY_STATUS)
            snprintf(got, sizeof got, "%s", r->str);
        else if (r->type == AREDIS_REPLY_INTEGER)
            snprintf(got, sizeof got, "%lld", r->integer);
        printf("-> %s\n", got);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "expected %s\n", want);
            failed = 1;
        }
    }
    if (--remaining == 0) aredis_client_disconnect(c); /* graceful: let the rest finish */
}

static void on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)data;
    printf("disconnected: %s\n", err->detail);
    aredis_loop_stop(aredis_client_loop(c));
}

int main(void) {
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
    o.on_disconnect = on_disconnect;
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);

    /* Issued at once: they wait for the connection, then leave in one write.
     * The callback runs once for each, in order. */
    aredis_command(c, on_reply, "OK", "SET %s %s", "example:cb", "value");
    aredis_command(c, on_reply, "value", "GET %s", "example:cb");
    const char *argv[] = {"INCRBY", "example:cb:counter", "5"};
    aredis_command_argv(c, on_reply, "5", 3, argv, NULL);
    aredis_command(c, NULL, NULL, "DEL %s", "example:cb:counter"); /* reply ignored */

    /* Until on_disconnect stops it (a connect that fails ends the commands
     * with its error, and the loop then has nothing left to do). */
    aredis_loop_run(loop);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return failed || remaining ? 1 : 0;
}
