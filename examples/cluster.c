/*
 * cluster — Redis Cluster: one object for the whole cluster. Commands go
 * to the node that owns their keys; a pipeline over many slots is split by
 * node and its replies come back in order; a transaction keeps its keys in
 * one slot with a hash tag; shard channels are subscribed on their owners;
 * a SCAN walks every primary.
 *
 *   REDIS_CLUSTER_SEEDS=127.0.0.1:7000,127.0.0.1:7001 ./example_cluster
 *   ./example_cluster 127.0.0.1:7000 127.0.0.1:7001     (the same)
 *
 * With neither, the one seed 127.0.0.1:7000. Any node will do as a seed;
 * more than one in case the first is down. A local cluster to try it on:
 * three `redis-server --port 700N --cluster-enabled yes --cluster-config-file
 * nodes-700N.conf` and
 * `redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002`.
 * Sharded pub/sub needs Redis 7.
 *
 * Exits 0 when every step gave what it should.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
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
    if (err) fprintf(stderr, "SSUBSCRIBE failed: %s\n", err->detail);
}

static void on_batch(aredis_cluster_scan *s, const aredis_reply *batch, const aredis_error *err,
                     void *data) {
    (void)s;
    long *found = data;
    if (err) {
        fprintf(stderr, "scan failed: %s\n", err->detail);
        *found = -1;
    } else if (*found >= 0) {
        *found += (long)batch->elements;
    }
}

/* Await f; on failure say why and exit. Returns its reply. */
static aredis_reply *must(aredis_future *f, const char *what) {
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "%s failed: %s\n", what, aredis_future_error(f)->detail);
        exit(1);
    }
    return aredis_future_reply(f);
}

static void expect(int ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "unexpected: %s\n", what);
    exit(1);
}

int main(int argc, char **argv) {
    /* The seeds: the arguments, else $REDIS_CLUSTER_SEEDS split at commas. */
    static char list[1024];
    const char *seeds[16] = {"127.0.0.1:7000"};
    size_t nseeds = 1;
    const char *env = getenv("REDIS_CLUSTER_SEEDS");
    if (argc > 1) {
        for (nseeds = 0; nseeds < 16 && (int)nseeds < argc - 1; nseeds++)
            seeds[nseeds] = argv[nseeds + 1];
    } else if (env && *env) {
        snprintf(list, sizeof list, "%s", env);
        nseeds = 0;
        for (char *p = strtok(list, ","); p && nseeds < 16; p = strtok(NULL, ","))
            seeds[nseeds++] = p;
    }

    aredis_loop *loop = aredis_loop_new();
    aredis_cluster_options o = AREDIS_CLUSTER_OPTIONS_INIT;
    o.seeds = seeds;
    o.nseeds = nseeds;
    aredis_cluster *cl = aredis_cluster_new(loop, &o);
    if (!cl) {
        fprintf(stderr, "cluster: %s\n", aredis_call_error()->detail);
        return 1;
    }

    /* One command: routed by its key. */
    aredis_future *f = aredis_cluster_future(cl, "SET %s %s", "user:1", "ann");
    must(f, "SET");
    aredis_future_release(f);
    f = aredis_cluster_future(cl, "GET %s", "user:1");
    aredis_reply *r = must(f, "GET");
    printf("GET user:1 -> %s (slot %u)\n", r->str, aredis_cluster_keyslot("user:1", 6));
    expect(r->str && strcmp(r->str, "ann") == 0, "GET user:1 is not ann");
    aredis_future_release(f);

    /* Keys of different slots in one command: refused before sending. */
    f = aredis_cluster_future(cl, "MGET %s %s", "a", "b");
    aredis_await(f);
    expect(aredis_future_error(f) && aredis_future_error(f)->code == AREDIS_ERR_CROSSSLOT,
           "MGET a b was not refused with CROSSSLOT");
    printf("MGET a b -> %s\n", aredis_future_error(f)->detail);
    aredis_future_release(f);

    /* A pipeline over many slots: one write per node, replies in order. */
    aredis_cluster_pipeline *p = aredis_cluster_pipeline_new(cl);
    for (int i = 0; i < 100; i++)
        aredis_cluster_pipeline_command(p, "SET key:%d %d", i, i * i);
    aredis_cluster_pipeline_command(p, "GET key:%d", 12);
    f = aredis_cluster_pipeline_exec_future(p);
    r = must(f, "pipeline");
    printf("pipeline: %zu replies, the last: %s\n", r->elements, r->element[100]->str);
    expect(r->elements == 101 && strcmp(r->element[100]->str, "144") == 0,
           "the pipeline's GET key:12 is not 144");
    aredis_future_release(f);
    aredis_cluster_pipeline_free(p);

    /* A transaction: its keys share a hash tag, so one slot, one node. */
    aredis_cluster_tx *tx = aredis_cluster_tx_new(cl);
    aredis_cluster_tx_queue(tx, "DEL %s %s", "{order:7}:head", "{order:7}:items");
    aredis_cluster_tx_queue(tx, "HSET %s total %d", "{order:7}:head", 42);
    aredis_cluster_tx_queue(tx, "RPUSH %s %s %s", "{order:7}:items", "pen", "ink");
    expect(aredis_cluster_tx_queue(tx, "SET %s x", "other") != AREDIS_ERR_OK,
           "a key of another slot was queued");
    printf("queue SET other -> %s\n", aredis_call_error()->detail);
    f = aredis_cluster_tx_exec_future(tx);
    r = must(f, "transaction");
    printf("transaction: %zu replies, RPUSH -> %lld\n", r->elements, r->element[2]->integer);
    expect(r->elements == 3 && r->element[2]->integer == 2, "the transaction's RPUSH is not 2");
    aredis_future_release(f);
    aredis_cluster_tx_free(tx);

    /* A blocking command takes a connection of its own, from the pool of
     * its key's node (WATCH transactions too: aredis_tx on an acquired one). */
    aredis_pool *pool = aredis_cluster_pool(cl, "{order:7}:queue", 15, NULL);
    expect(pool != NULL, "no pool for {order:7}:queue");
    f = aredis_cluster_future(cl, "LPUSH %s %s", "{order:7}:queue", "ship");
    must(f, "LPUSH");
    aredis_future_release(f);
    f = aredis_pool_future_command(pool, "BLPOP %s 1", "{order:7}:queue");
    r = must(f, "BLPOP");
    expect(r->elements == 2 && strcmp(r->element[1]->str, "ship") == 0, "BLPOP did not pop ship");
    printf("BLPOP on the node's pool -> %s\n", r->element[1]->str);
    aredis_future_release(f);

    /* SCAN over every primary: the 100 keys of the pipeline, wherever they are. */
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.match = "key:*";
    aredis_cluster_scan *scan = aredis_cluster_scan_new(cl, &so);
    long found = 0;
    while (scan && found >= 0 && !aredis_cluster_scan_done(scan)) {
        if (aredis_cluster_scan_next(scan, on_batch, &found) != AREDIS_ERR_OK) break;
        while (aredis_cluster_scan_busy(scan)) /* ends by the request timeout at worst */
            aredis_loop_run_once(loop, 1);
    }
    aredis_cluster_scan_free(scan);
    printf("scan: %ld keys like key:*\n", found);
    expect(found == 100, "SCAN did not find the 100 keys");

    /* Sharded pub/sub: each channel on the node that owns its slot. */
    aredis_cluster_sub *sub = aredis_cluster_sub_new(cl, on_message, NULL, NULL);
    const char *chans[] = {"news:eu", "news:us"};
    int subscribed = 0;
    aredis_cluster_ssubscribe(sub, 2, chans, NULL, on_subscribed, &subscribed);
    for (int i = 0; i < 50 && !subscribed; i++)
        aredis_loop_run_for(loop, 100); /* at most 5 s */
    expect(subscribed == 1, "not subscribed");
    for (int i = 0; i < 2; i++) {
        f = aredis_cluster_future(cl, "SPUBLISH %s %s", chans[i], "hello");
        must(f, "SPUBLISH");
        aredis_future_release(f);
    }
    for (int i = 0; g_messages < 2 && i < 50; i++)
        aredis_loop_run_for(loop, 100); /* at most 5 s */
    aredis_cluster_sub_free(sub);
    expect(g_messages == 2, "the 2 messages did not arrive");

    aredis_cluster_stats st;
    aredis_cluster_get_stats(cl, &st);
    printf("nodes: %zu, topology reads: %llu, MOVED followed: %llu\n", st.nodes,
           (unsigned long long)st.refreshes, (unsigned long long)st.moved);
    aredis_cluster_free(cl);
    aredis_loop_free(loop);
    return 0;
}
