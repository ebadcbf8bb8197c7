/*
 * callbacks — the zero-allocation fast path: aredis_command() with a reply
 * callback, driven by the built-in loop.
 *
 *   ./example_callbacks [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

static int remaining = 3;

static void on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    const char *what = data;
    if (err)
        printf("%s failed: %s (%s)\n", what, err->detail, aredis_err_name(err->code));
    else if (r->type == AREDIS_REPLY_STRING || r->type == AREDIS_REPLY_STATUS)
        printf("%s -> %s\n", what, r->str);
    else if (r->type == AREDIS_REPLY_INTEGER)
        printf("%s -> %lld\n", what, r->integer);
    if (--remaining == 0) aredis_client_disconnect(c); /* graceful: let the rest finish */
}

static void on_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)data;
    printf("disconnected: %s\n", err->detail);
    aredis_loop_stop(aredis_client_loop(c));
}

int main(int argc, char **argv) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    o.on_disconnect = on_disconnect;
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);
    aredis_command(c, on_reply, "SET", "SET %s %s", "example:cb", "value");
    aredis_command(c, on_reply, "GET", "GET %s", "example:cb");
    const char *argv2[] = {"INCR", "example:counter"};
    aredis_command_argv(c, on_reply, "INCR", 2, argv2, NULL);
    aredis_loop_run(loop);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
