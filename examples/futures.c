/*
 * futures — the same commands as values: await, then, all, any, cancel.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_futures   (that is the default)
 *
 * Exits 0 when every future ended as it should.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_then_ran;

static void print_when_done(aredis_future *f, void *data) {
    const aredis_error *e = aredis_future_error(f);
    printf("then: %s -> %s\n", (const char *)data, e ? e->detail : aredis_future_reply(f)->str);
    g_then_ran = e ? -1 : 1;
}

static void expect(int ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "unexpected: %s\n", what);
    exit(1);
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

    /* await: run the loop until this one is done. */
    aredis_future *set = aredis_future_command(c, "SET %s %s", "example:f", "42");
    if (aredis_await(set) != AREDIS_ERR_OK) {
        fprintf(stderr, "SET failed: %s\n", aredis_future_error(set)->detail);
        return 1;
    }

    /* then: a callback when done (it runs while the loop runs, below). */
    aredis_future *get = aredis_future_command(c, "GET example:f");
    aredis_future_then(get, print_when_done, "GET example:f");

    /* all: many at once; done when the last one is. */
    aredis_future *incr[10];
    for (int i = 0; i < 10; i++)
        incr[i] = aredis_future_command(c, "INCR example:f");
    aredis_future *all = aredis_future_all(incr, 10);
    expect(aredis_await(all) == AREDIS_ERR_OK, "an INCR failed");
    printf("after 10 INCRs: %lld\n", aredis_future_reply(incr[9])->integer);
    expect(aredis_future_reply(incr[9])->integer == 52, "the counter is not 52");
    /* Replies come in order: the GET, issued first, was done before them. */
    expect(g_then_ran == 1 && strcmp(aredis_future_reply(get)->str, "42") == 0,
           "GET example:f is not 42");

    /* any: the first of several. */
    aredis_future *two[2] = {aredis_future_command(c, "PING"), aredis_future_command(c, "ECHO hi")};
    aredis_future *any = aredis_future_any(two, 2);
    expect(aredis_await(any) == AREDIS_ERR_OK, "PING / ECHO failed");
    printf("first done: #%ld (%s)\n", aredis_future_index(any), aredis_future_reply(any)->str);
    expect(aredis_future_index(any) == 0, "PING was not first"); /* one connection: in order */

    /* cancel: fails now; its reply, if it comes, is dropped. */
    aredis_future *slow = aredis_future_command(c, "GET example:f");
    aredis_future_cancel(slow);
    printf("cancelled: %s\n", aredis_err_name(aredis_future_error(slow)->code));
    expect(aredis_future_error(slow)->code == AREDIS_ERR_CANCELLED, "not CANCELLED");

    aredis_future_release(set);
    aredis_future_release(get);
    for (int i = 0; i < 10; i++)
        aredis_future_release(incr[i]);
    aredis_future_release(all);
    aredis_future_release(two[0]);
    aredis_future_release(two[1]);
    aredis_future_release(any);
    aredis_future_release(slow);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return 0;
}
