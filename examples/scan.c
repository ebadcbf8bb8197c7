/*
 * scan — walk keys and a hash in batches, without blocking the server:
 * futures for SCAN, a per-element walk for HSCAN.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_scan   (that is the default)
 *
 * Exits 0 when SCAN found the example's 3 keys and HSCAN its 2 fields.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct walk {
    int fields;   /* pairs seen */
    int complete; /* 1: done, -1: failed */
} walk;

/* HSCAN, one field and value at a time. */
static int print_field(aredis_scan *s, const aredis_reply *field, const aredis_reply *value,
                       void *data) {
    (void)s;
    walk *w = data;
    printf("  %s = %s\n", field->str, value->str);
    w->fields++;
    return 0; /* go on */
}

static void walk_done(aredis_scan *s, const aredis_error *err, void *data) {
    walk *w = data;
    if (err) {
        fprintf(stderr, "HSCAN stopped at cursor %s: %s\n", aredis_scan_cursor(s), err->detail);
        w->complete = -1;
    } else {
        printf("HSCAN complete\n");
        w->complete = 1;
    }
    aredis_loop_stop(aredis_client_loop(aredis_scan_client(s)));
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

    aredis_future *setup = aredis_future_command(c, "MSET example:scan:1 a example:scan:2 b");
    aredis_future *hset = aredis_future_command(c, "HSET example:scan:h f1 v1 f2 v2");
    if (aredis_await(setup) != AREDIS_ERR_OK || aredis_await(hset) != AREDIS_ERR_OK) {
        fprintf(stderr, "MSET / HSET failed\n");
        return 1;
    }
    aredis_future_release(setup);
    aredis_future_release(hset);

    /* SCAN with MATCH and COUNT, a future per batch. A failed batch keeps
     * the cursor: asking again goes on from the same place. */
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.match = "example:scan:*";
    so.count = 100;
    aredis_scan *s = aredis_scan_new(c, &so);
    int failures = 0, keys = 0;
    while (!aredis_scan_done(s) && failures < 3) {
        aredis_future *f = aredis_scan_next_future(s);
        const aredis_reply *batch;
        if (!f) {
            fprintf(stderr, "refused: %s\n", aredis_call_error()->detail);
            break;
        }
        aredis_await(f);
        if (aredis_scan_batch(s, f, &batch) == AREDIS_ERR_OK) {
            for (size_t i = 0; i < batch->elements; i++)
                printf("key %s\n", batch->element[i]->str);
            keys += (int)batch->elements;
        } else {
            fprintf(stderr, "batch failed (cursor stays %s): %s\n", aredis_scan_cursor(s),
                    aredis_call_error()->detail);
            failures++;
        }
        aredis_future_release(f);
    }
    int scanned = aredis_scan_done(s);
    aredis_scan_free(s);
    printf("SCAN: %d keys\n", keys);
    if (!scanned || keys != 3) { /* example:scan:1, :2 and :h (SCAN may repeat a key; not here) */
        fprintf(stderr, "expected the 3 keys, and the scan complete\n");
        return 1;
    }

    /* HSCAN as a walk: a callback per pair, then one at the end. */
    aredis_scan_opts ho = AREDIS_SCAN_OPTS_INIT;
    ho.kind = AREDIS_SCAN_HASH;
    ho.key = "example:scan:h";
    aredis_scan *hs = aredis_scan_new(c, &ho);
    walk w = {0, 0};
    printf("HSCAN example:scan:h\n");
    if (aredis_scan_each(hs, print_field, walk_done, &w) == AREDIS_ERR_OK)
        aredis_loop_run(loop); /* until walk_done stops it */
    aredis_scan_free(hs);

    aredis_client_free(c);
    aredis_loop_free(loop);
    return w.complete == 1 && w.fields == 2 ? 0 : 1;
}
