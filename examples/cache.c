/*
 * cache — client-side caching: repeated reads of a hot key are answered
 * from memory, and another client's write invalidates them (the server
 * tells the cache, RESP3 tracking). Shows the hit/miss statistics.
 *
 *   ./example_cache [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

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

/* GET the key, print where the answer came from. */
static void get(aredis_client *c, aredis_cache *cache, const char *key) {
    aredis_cache_stats before, after;
    aredis_cache_get_stats(cache, &before);
    aredis_future *f = aredis_future_command(c, "GET %s", key);
    if (aredis_await(f) == AREDIS_ERR_OK) {
        aredis_cache_get_stats(cache, &after);
        const aredis_reply *r = aredis_future_reply(f);
        printf("GET %s -> %s (%s)\n", key, r->type == AREDIS_REPLY_STRING ? r->str : "(nil)",
               after.hits > before.hits ? "from the cache" : "from the server");
    } else {
        printf("GET %s failed: %s\n", key, aredis_future_error(f)->detail);
    }
    aredis_future_release(f);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 6379;
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
    o.port = port;
    o.cache = cache; /* tracking is turned on in the handshake */
    aredis_client *reader = aredis_client_new(loop, &o);
    o.cache = NULL; /* a plain client, to write */
    aredis_client *writer = aredis_client_new(loop, &o);
    if (!reader || !writer) {
        fprintf(stderr, "client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(reader);
    aredis_client_connect(writer);

    aredis_future *f = aredis_future_command(writer, "SET %s %s", "example:cache", "first");
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "SET: %s\n", aredis_future_error(f)->detail);
        return 1;
    }
    aredis_future_release(f);

    get(reader, cache, "example:cache"); /* a miss: sent, and stored */
    get(reader, cache, "example:cache"); /* a hit: no I/O */
    get(reader, cache, "example:cache");

    /* Another client writes: the server pushes an invalidation to the
     * reader's connection; wait until it has arrived. */
    int seen = g_invalidated;
    f = aredis_future_command(writer, "SET %s %s", "example:cache", "second");
    aredis_await(f);
    aredis_future_release(f);
    while (g_invalidated == seen)
        aredis_loop_run_once(loop, 1);
    get(reader, cache, "example:cache"); /* the new value, from the server */
    get(reader, cache, "example:cache"); /* and cached again */

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
