/*
 * pool — a pool of connections: commands on the pool, a connection of
 * your own for a transaction (acquire ... release), the scoped form that
 * always releases (aredis_pool_with), and the pool's stats.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_pool   (that is the default)
 *
 * Exits 0 when the counter, the transfer and the reads all add up.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_pending; /* replies still to come */
static int g_failed;
static int g_hundred; /* an INCR answered 100 */

/* A pool command's reply: c is the connection it ran on (read only). */
static void on_incr(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    g_pending--;
    if (err) {
        fprintf(stderr, "INCR failed: %s\n", err->detail);
        g_failed = 1;
    } else if (r->integer == 100) {
        printf("100 INCRs through the pool: the counter is at 100\n");
        g_hundred = 1;
    }
}

static void on_exec(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    aredis_pool *pool = data;
    g_pending--;
    if (err) {
        fprintf(stderr, "transfer failed: %s\n", err->detail);
        g_failed = 1;
    } else {
        printf("transfer done: a=%lld b=%lld\n", r->element[0]->integer, r->element[1]->integer);
    }
    aredis_pool_release(pool, c); /* the connection is the next user's */
}

/* Transfer between two keys atomically, on a connection of our own. */
static void on_conn(aredis_pool *pool, aredis_client *c, const aredis_error *err, void *data) {
    (void)data;
    if (err) {
        fprintf(stderr, "acquire failed: %s\n", err->detail);
        g_failed = 1;
        g_pending--;
        return;
    }
    aredis_tx *tx = aredis_tx_new(c);
    aredis_tx_queue(tx, "DECRBY example:pool:a %d", 10);
    aredis_tx_queue(tx, "INCRBY example:pool:b %d", 10);
    if (aredis_tx_exec(tx, on_exec, pool) != AREDIS_ERR_OK) {
        fprintf(stderr, "exec refused: %s\n", aredis_call_error()->detail);
        g_failed = 1;
        g_pending--;
        aredis_pool_release(pool, c);
    }
    aredis_tx_free(tx); /* the exec goes on */
}

/* The scoped form: our work as a future; the pool releases the connection
 * when it settles, whatever its outcome. */
static aredis_future *read_both(aredis_client *c, void *data) {
    (void)data;
    aredis_pipeline *p = aredis_pipeline_new(c);
    aredis_pipeline_command(p, "GET example:pool:a");
    aredis_pipeline_command(p, "GET example:pool:b");
    aredis_future *f = aredis_pipeline_exec_future(p);
    aredis_pipeline_free(p);
    return f;
}

int main(void) {
    aredis_pool_options po = AREDIS_POOL_OPTIONS_INIT;
    const char *url = getenv("REDIS_URL");
    po.uri = url && *url ? url : "redis://127.0.0.1:6379"; /* every connection: host, auth, db */
    po.min_connections = 1;
    po.max_connections = 4;
    aredis_loop *loop = aredis_loop_new();
    aredis_pool *pool = aredis_pool_new(loop, &po);
    if (!pool) {
        fprintf(stderr, "cannot create pool: %s\n", aredis_call_error()->detail);
        return 1;
    }

    /* 1. Commands on the pool: no connection to manage. */
    aredis_future *f = aredis_pool_future_command(pool, "DEL example:pool:n");
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "cannot reach the server: %s\n", aredis_future_error(f)->detail);
        aredis_future_release(f);
        aredis_pool_free(pool);
        aredis_loop_free(loop);
        return 1;
    }
    aredis_future_release(f);
    for (int i = 0; i < 100; i++)
        if (aredis_pool_command(pool, on_incr, NULL, "INCR example:pool:n") == AREDIS_ERR_OK)
            g_pending++;

    /* 2. A connection of our own, for a transaction. */
    f = aredis_pool_future_command(pool, "MSET example:pool:a 100 example:pool:b 0");
    if (aredis_await(f) != AREDIS_ERR_OK) g_failed = 1;
    aredis_future_release(f);
    if (aredis_pool_acquire(pool, on_conn, NULL) == AREDIS_ERR_OK) g_pending++;

    while (g_pending > 0) /* the INCRs and the transfer (bounded by their timeouts) */
        aredis_loop_run_once(loop, 1);
    if (!g_hundred && !g_failed) {
        fprintf(stderr, "no INCR answered 100\n");
        g_failed = 1;
    }

    /* 3. Scoped: released when the work settles. */
    f = aredis_pool_with(pool, read_both, NULL);
    if (aredis_await(f) == AREDIS_ERR_OK) {
        const aredis_reply *r = aredis_future_reply(f);
        const char *a = r->element[0]->str ? r->element[0]->str : "(nil)";
        const char *b = r->element[1]->str ? r->element[1]->str : "(nil)";
        printf("read back: a=%s b=%s\n", a, b);
        if (strcmp(a, "90") != 0 || strcmp(b, "10") != 0) {
            fprintf(stderr, "expected a=90 b=10\n");
            g_failed = 1;
        }
    } else {
        fprintf(stderr, "with failed: %s\n", aredis_future_error(f)->detail);
        g_failed = 1;
    }
    aredis_future_release(f);

    aredis_pool_stats s;
    aredis_pool_get_stats(pool, &s);
    printf("pool: %zu connections (%zu idle, %zu in use); created %llu, discarded %llu, "
           "%llu commands, %llu acquires\n",
           s.total, s.idle, s.in_use, (unsigned long long)s.created,
           (unsigned long long)s.discarded, (unsigned long long)s.commands,
           (unsigned long long)s.acquires);
    aredis_pool_free(pool);
    aredis_loop_free(loop);
    return g_failed;
}
