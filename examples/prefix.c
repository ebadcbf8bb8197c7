/*
 * prefix — one key namespace per client: every key argument of every
 * command gets the prefix (per the command table), values never do, and
 * SCAN/KEYS give the keys back without it.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_prefix   (that is the default)
 *
 * Exits 0 when every reply shows the prefix where it should be, and only
 * there.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static aredis_client *connect_with(aredis_loop *loop, const char *prefix) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    const char *url = getenv("REDIS_URL");
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        exit(2);
    }
    aredis_uri_apply(uri, &o);
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

/* Await f, print its reply as one line of words, and exit unless that line
 * is `want`. */
static void show(const char *what, aredis_future *f, const char *want) {
    char line[256] = "";
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "%s failed: %s\n", what, aredis_future_error(f)->detail);
        exit(1);
    }
    aredis_reply *r = aredis_future_reply(f);
    if (r->type == AREDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", i ? " " : "",
                     r->element[i]->str ? r->element[i]->str : "?");
    } else if (r->type == AREDIS_REPLY_INTEGER) {
        snprintf(line, sizeof line, "%lld", r->integer);
    } else {
        snprintf(line, sizeof line, "%s", r->str ? r->str : "(nil)");
    }
    printf("%-38s %s\n", what, line);
    if (strcmp(line, want) != 0) {
        fprintf(stderr, "expected: %s\n", want);
        exit(1);
    }
    aredis_future_release(f);
}

int main(void) {
    aredis_loop *loop = aredis_loop_new();
    aredis_client *tenant = connect_with(loop, "tenant42:");
    aredis_client *admin = connect_with(loop, NULL);

    /* The tenant writes "user:1" and "visits"; they land as tenant42:... */
    show("tenant: MSET user:1 visits",
         aredis_future_command(tenant, "MSET user:1 %s visits 0", "alice"), "OK");
    show("tenant: INCR visits", aredis_future_command(tenant, "INCR visits"), "1");
    show("tenant: KEYS user:*", aredis_future_command(tenant, "KEYS user:*"), "user:1");
    show("admin: GET tenant42:user:1", aredis_future_command(admin, "GET tenant42:user:1"),
         "alice");

    /* A script's KEYS are prefixed; its ARGV are not. */
    show("tenant: EVAL return KEYS[1]..ARGV[1]",
         aredis_future_command(tenant, "EVAL %s 1 user:1 :x", "return KEYS[1] .. ARGV[1]"),
         "tenant42:user:1:x");

    /* A command whose keys cannot be known for sure is refused, not guessed. */
    aredis_future *f = aredis_future_command(tenant, "NOSUCHCOMMAND a b");
    aredis_await(f);
    if (!aredis_future_error(f) || aredis_future_error(f)->code != AREDIS_ERR_UNSUPPORTED) {
        fprintf(stderr, "NOSUCHCOMMAND was not refused\n");
        return 1;
    }
    printf("%-38s refused: %s\n", "tenant: NOSUCHCOMMAND a b", aredis_future_error(f)->detail);
    aredis_future_release(f);

    show("admin: DEL", aredis_future_command(admin, "DEL tenant42:user:1 tenant42:visits"), "2");
    aredis_client_free(tenant);
    aredis_client_free(admin);
    aredis_loop_free(loop);
    return 0;
}
