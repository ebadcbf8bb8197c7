/*
 * blocking — BLPOP on a client of its own, so that the client doing the
 * rest of the work is never stuck behind it.
 *
 * Replies come back in order on a connection: a BLPOP that waits for 30 s
 * holds every command issued behind it on the same client for those 30 s.
 * A second client on the same loop costs one connection and keeps the
 * waiting apart. The request timeout (5 s by default) is extended by the
 * command's own block time, so BLPOP ... 30 is not cut at 5 s, and
 * BLPOP ... 0 (wait for ever) has no deadline at all.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_blocking   (that is the default)
 *
 * Exits 0 when the worker got the job while the other client worked.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static aredis_client *new_client(aredis_loop *loop) {
    const char *url = getenv("REDIS_URL");
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        exit(2);
    }
    aredis_uri_apply(uri, &o);
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri); /* the client copied what it needs */
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        exit(1);
    }
    aredis_client_connect(c);
    return c;
}

/* Await f; on failure say why and exit. */
static aredis_reply *must(aredis_future *f, const char *what) {
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "%s failed: %s\n", what, aredis_future_error(f)->detail);
        exit(1);
    }
    return aredis_future_reply(f);
}

static int popped; /* 1: got the job; -1: failed */

/* BLPOP's reply: [list, element], or nil when its time ran out. */
static void on_job(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    (void)data;
    popped = -1;
    if (err)
        fprintf(stderr, "worker: BLPOP failed: %s\n", err->detail);
    else if (r->type == AREDIS_REPLY_NIL)
        fprintf(stderr, "worker: no job within the block time\n");
    else if (strcmp(r->element[1]->str, "job-1") != 0)
        fprintf(stderr, "worker: unexpected job %s\n", r->element[1]->str);
    else {
        printf("worker: got %s from %s\n", r->element[1]->str, r->element[0]->str);
        popped = 1;
    }
}

int main(void) {
    aredis_loop *loop = aredis_loop_new();
    aredis_client *worker = new_client(loop); /* only ever blocks */
    aredis_client *main_client = new_client(loop);

    aredis_future *f = aredis_future_command(main_client, "DEL example:jobs example:counter");
    must(f, "DEL");
    aredis_future_release(f);

    /* Waits up to 30 s: far past the 5 s request timeout, and not cut. */
    aredis_command(worker, on_job, NULL, "BLPOP example:jobs 30");

    /* Meanwhile the other client works as usual: nothing waits behind the
     * BLPOP, which is on the other connection. */
    for (int i = 1; i <= 3; i++) {
        f = aredis_future_command(main_client, "INCR example:counter");
        long long n = must(f, "INCR")->integer;
        aredis_future_release(f);
        printf("main: INCR -> %lld while the worker waits\n", n);
        if (n != i || popped) {
            fprintf(stderr, "main: expected %d with the worker still waiting\n", i);
            return 1;
        }
    }
    f = aredis_future_command(main_client, "RPUSH example:jobs job-1");
    must(f, "RPUSH");
    aredis_future_release(f);
    while (!popped) /* bounded: the BLPOP ends within 30 s + its timeout */
        aredis_loop_run_once(loop, 1);

    aredis_client_free(worker);
    aredis_client_free(main_client);
    aredis_loop_free(loop);
    return popped == 1 ? 0 : 1;
}
