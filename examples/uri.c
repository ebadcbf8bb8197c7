/*
 * uri — connect from a URI: redis://[user:pass@]host[:port][/db][?timeout=…]
 * or unix:///path/to/socket?db=N.
 *
 *   ./example_uri redis://127.0.0.1:6379/2?timeout=0.5
 *   ./example_uri unix:///run/redis/redis.sock?db=3
 *
 * Without an argument: $REDIS_URL, else redis://127.0.0.1:6379/0. It says
 * what the URI holds, then writes example:uri = "db N" in the database the
 * URI chose, and reads it back. Exits 0 when that worked.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *url = getenv("REDIS_URL");
    const char *s = argc > 1 ? argv[1] : url && *url ? url : "redis://127.0.0.1:6379/0";
    aredis_uri *u;
    char err[256];
    if (aredis_uri_parse(s, &u, err, sizeof err) != AREDIS_ERR_OK) {
        fprintf(stderr, "bad URI: %s\n", err); /* never contains the password */
        return 2;
    }
    if (aredis_uri_unix_path(u))
        printf("unix socket %s, db %d\n", aredis_uri_unix_path(u), aredis_uri_db(u));
    else
        printf("host %s, port %d, db %d%s\n", aredis_uri_host(u), aredis_uri_port(u),
               aredis_uri_db(u), aredis_uri_is_tls(u) ? ", TLS" : "");
    char value[32];
    snprintf(value, sizeof value, "db %d", aredis_uri_db(u));

    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(u, &o); /* what the URI does not say keeps its default */
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(u); /* the client copied what it needs */
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);
    aredis_future *set = aredis_future_command(c, "SET example:uri %s", value);
    aredis_future *get = aredis_future_command(c, "GET example:uri");
    int rc = 1;
    if (aredis_await(get) != AREDIS_ERR_OK)
        fprintf(stderr, "failed: %s\n", aredis_future_error(get)->detail);
    else if (aredis_future_error(set) || strcmp(aredis_future_reply(get)->str, value) != 0)
        fprintf(stderr, "SET / GET example:uri did not give \"%s\"\n", value);
    else {
        printf("GET example:uri -> %s\n", aredis_future_reply(get)->str);
        rc = 0;
    }
    aredis_future_release(set);
    aredis_future_release(get);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return rc;
}
