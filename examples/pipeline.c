/*
 * pipeline — many commands in one write, every reply back in one ARRAY, in
 * order: the future style, then the callback style with an error reply in
 * its own slot.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_pipeline   (that is the default)
 *
 * Exits 0 when every reply is the one expected, in its place.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_ok; /* the callback style's replies were all as expected */

/* The callback style: one call with every reply (or the error that ended
 * the exec and the replies that arrived before it). */
static void on_replies(aredis_client *c, aredis_reply *all, const aredis_error *err, void *data) {
    (void)data;
    aredis_loop_stop(aredis_client_loop(c)); /* main() goes on once this returns */
    if (err) {
        fprintf(stderr, "pipeline failed: %s (%zu replies arrived)\n", err->detail,
                all ? all->elements : (size_t)0);
        return;
    }
    static const char *const want[] = {"OK", "42", "WRONGTYPE", "42"};
    char got[64];
    g_ok = all->elements == 4;
    for (size_t i = 0; i < all->elements; i++) {
        const aredis_reply *r = all->element[i];
        if (r->type == AREDIS_REPLY_ERROR) /* only this command failed */
            printf("  #%zu failed: %s\n", i, r->str);
        else if (r->type == AREDIS_REPLY_INTEGER)
            printf("  #%zu -> %lld\n", i, r->integer);
        else
            printf("  #%zu -> %s\n", i, r->str ? r->str : "(nil)");
        if (r->type == AREDIS_REPLY_INTEGER)
            snprintf(got, sizeof got, "%lld", r->integer);
        else
            snprintf(got, sizeof got, "%.*s", (int)strcspn(r->str ? r->str : "", " "),
                     r->str ? r->str : ""); /* an error's first word: its prefix */
        if (i < 4 && strcmp(got, want[i]) != 0) {
            fprintf(stderr, "#%zu: expected %s\n", i, want[i]);
            g_ok = 0;
        }
    }
}

int main(void) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    const char *url = getenv("REDIS_URL");
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

    /* 1,000 SETs queued, then sent together: one write, one result. */
    aredis_pipeline *p = aredis_pipeline_new(c);
    for (int i = 0; i < 1000; i++)
        aredis_pipeline_command(p, "SET example:pipe:%d %d", i, i);
    aredis_future *f = aredis_pipeline_exec_future(p); /* p is empty again */
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "pipeline failed: %s\n", aredis_future_error(f)->detail);
        return 1;
    }
    printf("1000 SETs: %zu replies\n", aredis_future_reply(f)->elements);
    if (aredis_future_reply(f)->elements != 1000) return 1;
    aredis_future_release(f);

    /* The same pipeline object again: a mix, with a command that fails. */
    aredis_pipeline_command(p, "SET example:pipe:n %d", 41);
    aredis_pipeline_command(p, "INCR example:pipe:n");
    aredis_pipeline_command(p, "LPUSH example:pipe:n x"); /* WRONGTYPE */
    aredis_pipeline_command(p, "GET example:pipe:n");
    if (aredis_pipeline_command(p, "SUBSCRIBE news") == AREDIS_ERR_OK) { /* never queued */
        fprintf(stderr, "SUBSCRIBE was queued in a pipeline\n");
        return 1;
    }
    printf("refused: %s\n", aredis_call_error()->detail);
    if (aredis_pipeline_exec(p, on_replies, NULL) == AREDIS_ERR_OK) {
        aredis_pipeline_free(p); /* the exec goes on */
        aredis_loop_run(loop);   /* until on_replies stops it */
    } else {
        fprintf(stderr, "exec refused: %s\n", aredis_call_error()->detail);
        aredis_pipeline_free(p);
    }

    /* Clean up what the example wrote, in one more pipeline. */
    p = aredis_pipeline_new(c);
    for (int i = 0; i < 1000; i++)
        aredis_pipeline_command(p, "UNLINK example:pipe:%d", i);
    aredis_pipeline_command(p, "UNLINK example:pipe:n");
    f = aredis_pipeline_exec_future(p);
    if (aredis_await(f) != AREDIS_ERR_OK) g_ok = 0;
    aredis_future_release(f);
    aredis_pipeline_free(p);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return g_ok ? 0 : 1;
}
