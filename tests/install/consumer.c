/* A program built against an installed aredis: proves the headers, the
 * library, aredis.pc and the CMake package work together. With REDIS_URL
 * set it also does a round trip: SET then GET of a key, checking the value. */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int round_trip(aredis_loop *loop, const char *url) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri = NULL;
    char err[256];
    if (aredis_uri_parse(url, &uri, err, sizeof err) != AREDIS_ERR_OK) {
        fprintf(stderr, "consumer: bad REDIS_URL: %s\n", err);
        return 1;
    }
    aredis_uri_apply(uri, &o);
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "consumer: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);
    aredis_future *set = aredis_future_command(c, "SET %s %s", "consumer:key", "installed");
    aredis_future *get = aredis_future_command(c, "GET %s", "consumer:key");
    int ok = aredis_await(set) == AREDIS_ERR_OK && aredis_await(get) == AREDIS_ERR_OK;
    const aredis_reply *r = ok ? aredis_future_reply(get) : NULL;
    ok = ok && r && r->str && strcmp(r->str, "installed") == 0;
    if (!ok) {
        const aredis_error *e = aredis_future_error(get);
        fprintf(stderr, "consumer: round trip failed: %s\n", e ? e->detail : "wrong value");
    } else {
        printf("consumer: SET/GET round trip ok\n");
    }
    aredis_future_release(set);
    aredis_future_release(get);
    aredis_client_free(c);
    return ok ? 0 : 1;
}

int main(void) {
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, NULL);
    printf("aredis %s: %s\n", aredis_version(), c && loop ? "ok" : "failed");
    aredis_client_free(c);
    int rc = c && loop ? 0 : 1;
    const char *url = getenv("REDIS_URL");
    if (rc == 0 && url && *url) rc = round_trip(loop, url);
    aredis_loop_free(loop);
    return rc;
}
