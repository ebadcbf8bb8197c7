/*
 * script — Lua by SHA1 with the NOSCRIPT fallback, and Redis 7 functions.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_script   (that is the default)
 *
 * Exits 0 when the script counted 1, 2, 3, 4 with a TTL set, and the
 * function answered (a server before Redis 7 has no functions: that part
 * is then skipped, said so).
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Await f; on failure say why and exit. Returns its reply. */
static aredis_reply *must(aredis_future *f, const char *what) {
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "%s failed: %s\n", what, aredis_future_error(f)->detail);
        exit(1);
    }
    return aredis_future_reply(f);
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
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);
    aredis_future *f = aredis_future_command(c, "DEL example:ratelimit");
    must(f, "DEL");
    aredis_future_release(f);

    /* A rate limiter: INCR a counter and give it a TTL on first use. */
    aredis_script *limiter =
        aredis_script_new("local n = redis.call('INCR', KEYS[1]) "
                          "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
                          "return n",
                          0);
    printf("script sha1: %s\n", aredis_script_sha(limiter));
    const char *keys[] = {"example:ratelimit"};
    const char *args[] = {"60"};
    /* The first run may meet NOSCRIPT (a fresh server): the client loads
     * the script and runs it again, transparently. */
    for (int i = 1; i <= 3; i++) {
        f = aredis_script_run_future(c, limiter, 0, 1, keys, NULL, 1, args, NULL);
        long long n = must(f, "script")->integer;
        aredis_future_release(f);
        printf("calls in this minute: %lld\n", n);
        if (n != i) return 1;
    }

    /* The same script inside a pipeline: loaded ahead if need be. */
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_script(p, limiter, 0, 1, keys, NULL, 1, args, NULL);
    aredis_pipeline_command(p, "TTL %s", keys[0]);
    f = aredis_pipeline_exec_future(p);
    aredis_reply *r = must(f, "pipeline");
    long long count = r->element[0]->integer, ttl = r->element[1]->integer;
    printf("pipeline: count %lld, ttl %lld\n", count, ttl);
    aredis_future_release(f);
    aredis_pipeline_free(p);
    aredis_script_free(limiter);
    if (count != 4 || ttl < 1 || ttl > 60) return 1;

    /* Redis 7 functions: a library loaded once (REPLACE: again and again),
     * then called by name. */
    static const char lib[] = "#!lua name=example\n"
                              "redis.register_function('example_greet', "
                              "function(keys, args) return 'hello ' .. args[1] end)";
    f = aredis_function_load_future(c, lib, 0, 1);
    if (aredis_await(f) != AREDIS_ERR_OK && strstr(aredis_future_error(f)->detail, "unknown")) {
        printf("functions: not on this server (Redis 7+)\n");
    } else {
        printf("FUNCTION LOAD -> %s\n", must(f, "FUNCTION LOAD")->str);
        const char *who[] = {"world"};
        aredis_future *call =
            aredis_fcall_future(c, "example_greet", 0, 0, NULL, NULL, 1, who, NULL);
        r = must(call, "FCALL");
        printf("FCALL example_greet world -> %s\n", r->str);
        if (strcmp(r->str, "hello world") != 0) return 1;
        aredis_future_release(call);
    }
    aredis_future_release(f);

    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
