/*
 * script — Lua by SHA1 with the NOSCRIPT fallback, and Redis 7 functions.
 *
 *   ./example_script [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);

    /* A rate limiter: INCR a counter and give it a TTL on first use. */
    aredis_script *limiter =
        aredis_script_new("local n = redis.call('INCR', KEYS[1]) "
                          "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
                          "return n",
                          0);
    printf("script sha1: %s\n", aredis_script_sha(limiter));
    const char *keys[] = {"example:ratelimit"};
    const char *args[] = {"60"};
    /* The first run meets NOSCRIPT on a fresh server: the client loads the
     * script and runs it again, transparently. */
    for (int i = 0; i < 3; i++) {
        aredis_future *f = aredis_script_run_future(c, limiter, 0, 1, keys, NULL, 1, args, NULL);
        if (aredis_await(f) != AREDIS_ERR_OK) {
            printf("script failed: %s\n", aredis_future_error(f)->detail);
            return 1;
        }
        printf("calls in this minute: %lld\n", aredis_future_reply(f)->integer);
        aredis_future_release(f);
    }

    /* The same script inside a pipeline: loaded ahead if need be. */
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_script(p, limiter, 0, 1, keys, NULL, 1, args, NULL);
    aredis_pipeline_command(p, "TTL %s", keys[0]);
    aredis_future *f = aredis_pipeline_exec_future(p);
    if (aredis_await(f) == AREDIS_ERR_OK)
        printf("pipeline: count %lld, ttl %lld\n", aredis_future_reply(f)->element[0]->integer,
               aredis_future_reply(f)->element[1]->integer);
    aredis_future_release(f);
    aredis_pipeline_free(p);

    aredis_script_free(limiter);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
