/*
 * cluster — Redis Cluster: one object for the whole cluster. Commands go
 * to the node that owns their keys; a pipeline over many slots is split by
 * node and its replies come back in order; a transaction keeps its keys in
 * one slot with a hash tag; shard channels are subscribed on their owners;
 * a SCAN walks every primary.
 *
 *   ./example_cluster [host:port ...]      (default 127.0.0.1:7000)
 *
 * A local cluster to try it on: three `redis-server --port 700N
 * --cluster-enabled yes --cluster-config-file nodes-700N.conf` and
 * `redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002`.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <string.h>

static int g_messages;

static void on_message(aredis_cluster_sub *s, const aredis_message *m, void *data) {
    (void)s;
    (void)data;
    printf("  message on %.*s: %.*s\n", (int)m->channel_len, m->channel, (int)m->payload_len,
           m->payload);
    g_messages++;
}

static void on_subscribed(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)r;
    *(int *)data = err ? -1 : 1;
    if (err) printf("  SSUBSCRIBE failed: %s\n", err->detail);
}

static void on_batch(aredis_cluster_scan *s, const aredis_reply *batch, const aredis_error *err,
                     void *data) {
    (void)s;
    size_t *found = data;
    if (err)
        printf("  scan failed: %s\n", err->detail);
    else
        *found += batch->elements;
}

/* Run the loop until the future is done; print its failure. */
static aredis_reply *wait_for(aredis_future *f, const char *what) {
    if (aredis_await(f) == AREDIS_ERR_OK) return aredis_future_reply(f);
    printf("%s failed: %s\n", what, aredis_future_error(f)->detail);
    return NULL;
}

int main(int argc, char **argv) {
    const char *dflt[] = {"127.0.0.1:7000"};
    aredis_loop *loop = aredis_loop_new();
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    o.seeds = argc > 1 ? (const char *const *)argv + 1 : dflt;
    o.nseeds = argc > 1 ? (size_t)argc - 1 : 1;
    aredis_cluster *cl = aredis_cluster_new(loop, &o);
    if (!cl) {
        printf("cluster: %s\n", aredis_call_error()->detail);
        return 1;
    }
    int rc = 1;

    /* One command: routed by its key. */
    aredis_future *f = aredis_cluster_future(cl, "SET %s %s", "user:1", "ann");
    if (!wait_for(f, "SET")) goto out;
    aredis_future_release(f);
    f = aredis_cluster_future(cl, "GET %s", "user:1");
    aredis_reply *r = wait_for(f, "GET");
    if (r) printf("GET user:1 -> %s (slot %u)\n", r->str, aredis_cluster_keyslot("user:1", 6));
    aredis_future_release(f);

    /* Keys of different slots in one command: refused before sending. */
    f = aredis_cluster_future(cl, "MGET %s %s", "a", "b");
    aredis_await(f);
    printf("MGET a b -> %s\n", aredis_future_error(f)->detail);
    aredis_future_release(f);

    /* A pipeline over many slots: one write per node, replies in order. */
    aredis_cluster_pipeline *p = aredis_cluster_pipeline_new(cl);
    for (int i = 0; i < 100; i++)
        aredis_cluster_pipeline_command(p, "SET key:%d %d", i, i * i);
    aredis_cluster_pipeline_command(p, "GET key:%d", 12);
    f = aredis_cluster_pipeline_exec_future(p);
    r = wait_for(f, "pipeline");
    if (r) printf("pipeline: %zu replies, the last: %s\n", r->elements, r->element[100]->str);
    aredis_future_release(f);
    aredis_cluster_pipeline_free(p);

    /* A transaction: its keys share a hash tag, so one slot, one node. */
    aredis_cluster_tx *tx = aredis_cluster_tx_new(cl);
    aredis_cluster_tx_queue(tx, "HSET %s total %d", "{order:7}:head", 42);
    aredis_cluster_tx_queue(tx, "RPUSH %s %s %s", "{order:7}:items", "pen", "ink");
    if (aredis_cluster_tx_queue(tx, "SET %s x", "other") != AREDIS_ERR_OK)
        printf("queue SET other -> %s\n", aredis_call_error()->detail);
    f = aredis_cluster_tx_exec_future(tx);
    r = wait_for(f, "transaction");
    if (r) printf("transaction: %zu replies\n", r->elements);
    aredis_future_release(f);
    aredis_cluster_tx_free(tx);

    /* A blocking command takes a connection of its own, from the pool of
     * its key's node (WATCH transactions too: aredis_tx on an acquired one). */
    aredis_pool *pool = aredis_cluster_pool(cl, "{order:7}:queue", 15, NULL);
    if (pool) {
        f = aredis_cluster_future(cl, "LPUSH %s %s", "{order:7}:queue", "ship");
        wait_for(f, "LPUSH");
        aredis_future_release(f);
        f = aredis_pool_future_command(pool, "BLPOP %s 1", "{order:7}:queue");
        r = wait_for(f, "BLPOP");
        if (r && r->elements == 2) printf("BLPOP on the node's pool -> %s\n", r->element[1]->str);
        aredis_future_release(f);
    } else {
        printf("node pool: %s\n", aredis_call_error()->detail);
    }

    /* Every primary: FLUSHALL, DBSIZE, SCRIPT LOAD... */
    /* SCAN over every primary. */
    aredis_scan_opts so = {0};
    so.kind = AREDIS_SCAN_KEYS;
    so.match = "key:*";
    aredis_cluster_scan *scan = aredis_cluster_scan_new(cl, &so);
    size_t found = 0;
    while (scan && !aredis_cluster_scan_done(scan)) {
        if (aredis_cluster_scan_next(scan, on_batch, &found) != AREDIS_ERR_OK) break;
        while (aredis_cluster_scan_busy(scan))
            aredis_loop_run_once(loop, 1);
    }
    printf("scan: %zu keys like key:*\n", found);
    aredis_cluster_scan_free(scan);

    /* Sharded pub/sub: each channel on the node that owns its slot. */
    aredis_cluster_sub *sub = aredis_cluster_sub_new(cl, on_message, NULL, NULL);
    const char *chans[] = {"news:eu", "news:us"};
    int subscribed = 0;
    aredis_cluster_ssubscribe(sub, 2, chans, NULL, on_subscribed, &subscribed);
    while (!subscribed)
        aredis_loop_run_once(loop, 1);
    for (int i = 0; i < 2; i++) {
        f = aredis_cluster_future(cl, "SPUBLISH %s %s", chans[i], "hello");
        wait_for(f, "SPUBLISH");
        aredis_future_release(f);
    }
    for (int i = 0; subscribed > 0 && g_messages < 2 && i < 50; i++)
        aredis_loop_run_for(loop, 100); /* at most 5 s */
    aredis_cluster_sub_free(sub);

    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    printf("nodes: %zu, topology reads: %llu, MOVED followed: %llu\n", st.nodes,
           (unsigned long long)st.refreshes, (unsigned long long)st.moved);
    rc = 0;
out:
    aredis_cluster_free(cl);
    aredis_loop_free(loop);
    return rc;
}
