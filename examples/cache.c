/*
 * cache — client-side caching: repeated reads of a hot key are answered
 * from memory, and another client's write invalidates them (the server
 * tells the cache, RESP3 tracking). Shows the hit/miss statistics.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_cache   (that is the default)
 *
 * Exits 0 when every read came from where it should (server or cache) with
 * the right value, and the invalidation arrived.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_invalidated;

static void on_invalidate(aredis_cache *cache, const char *key, size_t len, void *data) {
    (void)cache;
    (void)data;
    if (key)
        printf("  server says %.*s changed\n", (int)len, key);
    else
        printf("  cache emptied\n");
    g_invalidated++;
}

/* GET the key, print where the answer came from; exit unless it is `want`
 * and came from where we expect (from_cache 1: the cache, 0: the server). */
static void get(aredis_client *c, aredis_cache *cache, const char *key, const char *want,
                int from_cache) {
    aredis_cache_stats before, after;
    aredis_cache_get_stats(cache, &before);
    aredis_future *f = aredis_future_command(c, "GET %s", key);
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "GET %s failed: %s\n", key, aredis_future_error(f)->detail);
        exit(1);
    }
    aredis_cache_get_stats(cache, &after);
    const aredis_reply *r = aredis_future_reply(f);
    const char *got = r->type == AREDIS_REPLY_STRING ? r->str : "(nil)";
    int hit = after.hits > before.hits;
    printf("GET %s -> %s (%s)\n", key, got, hit ? "from the cache" : "from the server");
    if (strcmp(got, want) != 0 || hit != from_cache) {
        fprintf(stderr, "expected %s from the %s\n", want, from_cache ? "cache" : "server");
        exit(1);
    }
    aredis_future_release(f);
}

/* Await f; on failure say why and exit. */
static void must(aredis_future *f, const char *what) {
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "%s failed: %s\n", what, aredis_future_error(f)->detail);
        exit(1);
    }
    aredis_future_release(f);
}

int main(void) {
    const char *url = getenv("REDIS_URL");
    aredis_loop *loop = aredis_loop_new();

    aredis_cache_options co = AREDIS_CACHE_OPTIONS_INIT;
    co.max_bytes = 16u << 20; /* 16 MiB of cached replies at most */
    co.on_invalidate = on_invalidate;
    aredis_cache *cache = aredis_cache_new(&co);
    if (!cache) {
        fprintf(stderr, "cache: %s\n", aredis_call_error()->detail);
        return 1;
    }

    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        return 2;
    }
    aredis_uri_apply(uri, &o);
    o.cache = cache; /* tracking is turned on in the handshake */
    aredis_client *reader = aredis_client_new(loop, &o);
    o.cache = NULL; /* a plain client, to write */
    aredis_client *writer = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!reader || !writer) {
        fprintf(stderr, "client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(reader);
    aredis_client_connect(writer);

    must(aredis_future_command(writer, "SET %s %s", "example:cache", "first"), "SET");

    get(reader, cache, "example:cache", "first", 0); /* a miss: sent, and stored */
    get(reader, cache, "example:cache", "first", 1); /* a hit: no I/O */
    get(reader, cache, "example:cache", "first", 1);

    /* Another client writes: the server pushes an invalidation to the
     * reader's connection; wait (at most 5 s) until it has arrived. */
    int seen = g_invalidated;
    must(aredis_future_command(writer, "SET %s %s", "example:cache", "second"), "SET");
    for (int i = 0; i < 50 && g_invalidated == seen; i++)
        aredis_loop_run_for(loop, 100);
    if (g_invalidated == seen) {
        fprintf(stderr, "no invalidation within 5 s\n");
        return 1;
    }
    get(reader, cache, "example:cache", "second", 0); /* the new value, from the server */
    get(reader, cache, "example:cache", "second", 1); /* and cached again */

    aredis_cache_stats st;
    aredis_cache_get_stats(cache, &st);
    printf("hits %llu, misses %llu, invalidations %llu, entries %zu, %zu bytes\n",
           (unsigned long long)st.hits, (unsigned long long)st.misses,
           (unsigned long long)st.invalidation_messages, st.entries, st.bytes);

    aredis_client_free(reader);
    aredis_client_free(writer);
    aredis_cache_free(cache);
    aredis_loop_free(loop);
    return 0;
}
