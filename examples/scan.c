/*
 * scan — walk keys and a hash in batches, without blocking the server:
 * futures for SCAN, a per-element walk for HSCAN.
 *
 *   ./example_scan [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

/* HSCAN, one field and value at a time. */
static int print_field(aredis_scan *s, const aredis_reply *field, const aredis_reply *value,
                       void *data) {
    (void)s;
    (void)data;
    printf("  %s = %s\n", field->str, value->str);
    return 0; /* go on */
}

static void walk_done(aredis_scan *s, const aredis_error *err, void *data) {
    (void)data;
    if (err)
        printf("HSCAN stopped at cursor %s: %s\n", aredis_scan_cursor(s), err->detail);
    else
        printf("HSCAN complete\n");
    aredis_loop_stop(aredis_client_loop(aredis_scan_client(s)));
}

int main(int argc, char **argv) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);

    aredis_future *setup = aredis_future_command(c, "MSET example:scan:1 a example:scan:2 b");
    aredis_future_release(aredis_future_command(c, "HSET example:scan:h f1 v1 f2 v2"));
    if (aredis_await(setup) != AREDIS_ERR_OK) {
        printf("MSET failed: %s\n", aredis_future_error(setup)->detail);
        return 1;
    }
    aredis_future_release(setup);

    /* SCAN with MATCH and COUNT, a future per batch. A failed batch keeps
     * the cursor: asking again goes on from the same place. */
    aredis_scan_opts so = AREDIS_SCAN_OPTS_INIT;
    so.match = "example:scan:*";
    so.count = 100;
    aredis_scan *s = aredis_scan_new(c, &so);
    int failures = 0;
    while (!aredis_scan_done(s) && failures < 3) {
        aredis_future *f = aredis_scan_next_future(s);
        const aredis_reply *batch;
        if (!f) {
            printf("refused: %s\n", aredis_call_error()->detail);
            break;
        }
        aredis_await(f);
        if (aredis_scan_batch(s, f, &batch) == AREDIS_ERR_OK) {
            for (size_t i = 0; i < batch->elements; i++)
                printf("key %s\n", batch->element[i]->str);
        } else {
            printf("batch failed (cursor stays %s): %s\n", aredis_scan_cursor(s),
                   aredis_call_error()->detail);
            failures++;
        }
        aredis_future_release(f);
    }
    aredis_scan_free(s);

    /* HSCAN as a walk: a callback per pair, then one at the end. */
    aredis_scan_opts ho = AREDIS_SCAN_OPTS_INIT;
    ho.kind = AREDIS_SCAN_HASH;
    ho.key = "example:scan:h";
    aredis_scan *hs = aredis_scan_new(c, &ho);
    printf("HSCAN example:scan:h\n");
    if (aredis_scan_each(hs, print_field, walk_done, NULL) == AREDIS_ERR_OK)
        aredis_loop_run(loop); /* until walk_done stops it */
    aredis_scan_free(hs);

    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
