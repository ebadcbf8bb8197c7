/*
 * prefix — one key namespace per client: every key argument of every
 * command gets the prefix (per the command table), values never do, and
 * SCAN/KEYS give the keys back without it.
 *
 *   ./example_prefix          (REDIS_URL=redis://127.0.0.1:6380 to choose)
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>

static aredis_client *connect_with(aredis_loop *loop, const char *prefix) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    const char *url = getenv("REDIS_URL");
    aredis_uri *uri = NULL;
    char err[256];
    if (url && *url) {
        if (aredis_uri_parse(url, &uri, err, sizeof err) != AREDIS_ERR_OK) {
            fprintf(stderr, "bad REDIS_URL: %s\n", err);
            exit(2);
        }
        aredis_uri_apply(uri, &o);
    }
    o.prefix = prefix; /* copied by aredis_client_new */
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        exit(1);
    }
    aredis_client_connect(c);
    return c;
}

static void show(aredis_client *c, const char *what, aredis_future *f) {
    (void)c;
    if (aredis_await(f) != AREDIS_ERR_OK) {
        printf("%-34s failed: %s\n", what, aredis_future_error(f)->detail);
    } else {
        aredis_reply *r = aredis_future_reply(f);
        if (r->type == AREDIS_REPLY_ARRAY) {
            printf("%-34s", what);
            for (size_t i = 0; i < r->elements; i++)
                printf(" %s", r->element[i]->str ? r->element[i]->str : "?");
            printf("\n");
        } else if (r->type == AREDIS_REPLY_INTEGER) {
            printf("%-34s %lld\n", what, r->integer);
        } else {
            printf("%-34s %s\n", what, r->str ? r->str : "(nil)");
        }
    }
    aredis_future_release(f);
}

int main(void) {
    aredis_loop *loop = aredis_loop_new();
    aredis_client *tenant = connect_with(loop, "tenant42:");
    aredis_client *admin = connect_with(loop, NULL);

    /* The tenant writes "user:1" and "visits"; they land as tenant42:... */
    show(tenant, "tenant: MSET user:1 visits",
         aredis_future_command(tenant, "MSET user:1 %s visits 0", "alice"));
    show(tenant, "tenant: INCR visits", aredis_future_command(tenant, "INCR visits"));
    show(tenant, "tenant: KEYS *", aredis_future_command(tenant, "KEYS *"));
    show(admin, "admin: GET tenant42:user:1", aredis_future_command(admin, "GET tenant42:user:1"));

    /* A script's KEYS are prefixed; its ARGV are not. */
    show(tenant, "tenant: EVAL return KEYS[1]..ARGV[1]",
         aredis_future_command(tenant, "EVAL %s 1 user:1 :x", "return KEYS[1] .. ARGV[1]"));

    /* A command whose keys cannot be known for sure is refused, not guessed. */
    aredis_future *f = aredis_future_command(tenant, "NOSUCHCOMMAND a b");
    aredis_await(f);
    printf("tenant: NOSUCHCOMMAND               refused: %s\n", aredis_future_error(f)->detail);
    aredis_future_release(f);

    show(admin, "admin: DEL", aredis_future_command(admin, "DEL tenant42:user:1 tenant42:visits"));
    aredis_client_free(tenant);
    aredis_client_free(admin);
    aredis_loop_free(loop);
    return 0;
}
