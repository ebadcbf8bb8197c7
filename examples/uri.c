/*
 * uri — connect from a URI: redis://[user:pass@]host[:port][/db][?timeout=…]
 * or unix:///path/to/socket?db=N.
 *
 *   ./example_uri redis://127.0.0.1:6379/2?timeout=0.5
 */
#include <aredis/aredis.h>
#include <stdio.h>

int main(int argc, char **argv) {
    const char *s = argc > 1 ? argv[1] : "redis://127.0.0.1:6379/0";
    aredis_uri *u;
    char err[256];
    if (aredis_uri_parse(s, &u, err, sizeof err) != AREDIS_ERR_OK) {
        fprintf(stderr, "bad URI: %s\n", err); /* never contains the password */
        return 2;
    }
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(u, &o);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(u); /* the client copied what it needs */
    aredis_client_connect(c);
    aredis_future *f = aredis_future_command(c, "PING");
    if (aredis_await(f) == AREDIS_ERR_OK)
        printf("PING -> %s\n", aredis_future_reply(f)->str);
    else
        printf("failed: %s\n", aredis_future_error(f)->detail);
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
