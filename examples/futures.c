/*
 * futures — the same commands as values: await, then, all, any, cancel.
 *
 *   ./example_futures [port]
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

static void print_when_done(aredis_future *f, void *data) {
    const aredis_error *e = aredis_future_error(f);
    printf("%s: %s\n", (const char *)data, e ? e->detail : aredis_future_reply(f)->str);
}

int main(int argc, char **argv) {
    aredis_loop *loop = aredis_loop_new();
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.port = argc > 1 ? atoi(argv[1]) : 6379;
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_client_connect(c);

    /* await: run the loop until this one is done. */
    aredis_future *set = aredis_future_command(c, "SET %s %s", "example:f", "42");
    if (aredis_await(set) != AREDIS_ERR_OK) {
        printf("SET failed: %s\n", aredis_future_error(set)->detail);
        return 1;
    }

    /* then: a callback when done. */
    aredis_future *get = aredis_future_command(c, "GET example:f");
    aredis_future_then(get, print_when_done, "GET example:f");

    /* all: many at once. */
    aredis_future *incr[10];
    for (int i = 0; i < 10; i++)
        incr[i] = aredis_future_command(c, "INCR example:f");
    aredis_future *all = aredis_future_all(incr, 10);
    aredis_await(all);
    printf("after 10 INCRs: %lld\n", aredis_future_reply(incr[9])->integer);

    /* any: the first of several. */
    aredis_future *two[2] = {aredis_future_command(c, "PING"), aredis_future_command(c, "ECHO hi")};
    aredis_future *any = aredis_future_any(two, 2);
    aredis_await(any);
    printf("first done: #%ld\n", aredis_future_index(any));

    /* cancel: fails now; its reply, if it comes, is dropped. */
    aredis_future *slow = aredis_future_command(c, "GET example:f");
    aredis_future_cancel(slow);
    printf("cancelled: %s\n", aredis_err_name(aredis_future_error(slow)->code));

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
