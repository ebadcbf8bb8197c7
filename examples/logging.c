/*
 * logging — the library's log lines through a handler of your own
 * (aredis/log.h, docs/LOGGING.md), and what they never contain: a
 * password. At DEBUG every command is logged, the handshake's included,
 * with credentials replaced by "<redacted>".
 *
 *   REDIS_URL=redis://:secret@127.0.0.1:6379 ./example_logging
 *
 * REDIS_URL defaults to redis://127.0.0.1:6379; with a password in it the
 * handshake (HELLO 3 AUTH ...) shows it redacted. Either way the example
 * also sends an AUTH with a made-up user and password, which the server
 * refuses: the log line and the error both show "<redacted>". (Set
 * AREDIS_DEBUG=1 instead of a handler to get the same lines on stderr.)
 * Exits 0 when there were log lines, some redacted, and none held a
 * password.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MADE_UP_PASSWORD "not-the-password-4711"

typedef struct seen {
    const char *secrets[2]; /* what must never appear */
    int lines, redacted, leaked;
} seen;

/* The handler: one line, no newline, valid for the call only. It may run
 * on any thread that drives a client (here: just this one). */
static void on_log(int level, const char *line, void *data) {
    seen *s = data;
    printf("[%s] %s\n", aredis_log_level_name(level), line);
    s->lines++;
    if (strstr(line, "<redacted>")) s->redacted++;
    for (int i = 0; i < 2; i++)
        if (s->secrets[i] && *s->secrets[i] && strstr(line, s->secrets[i])) s->leaked++;
}

int main(void) {
    const char *url = getenv("REDIS_URL");
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err); /* never contains the password */
        return 2;
    }
    seen s = {{aredis_uri_password(uri), MADE_UP_PASSWORD}, 0, 0, 0};

    /* Process-global: every client's lines, DEBUG and above, to on_log. */
    aredis_set_log_handler(on_log, &s, AREDIS_LOG_DEBUG);

    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(uri, &o);
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, &o);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        return 1;
    }
    aredis_client_connect(c);
    int ok = 1;
    aredis_future *f = aredis_future_command(c, "PING");
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "PING failed: %s\n", aredis_future_error(f)->detail);
        ok = 0;
    }
    aredis_future_release(f);

    /* Refused by the server (no such user): the error's detail is redacted
     * too, though the reply object holds the server's own text. */
    f = aredis_future_command(c, "AUTH example-nobody %s", MADE_UP_PASSWORD);
    aredis_await(f);
    const aredis_error *e = aredis_future_error(f);
    if (e) printf("AUTH refused: %s\n", e->detail);
    if (!e || strstr(e->detail, MADE_UP_PASSWORD)) ok = 0;
    aredis_future_release(f);

    aredis_client_free(c);
    aredis_loop_free(loop);
    aredis_set_log_handler(NULL, NULL, 0); /* back to the default */
    printf("%d log lines, %d with <redacted>, %d with a password\n", s.lines, s.redacted, s.leaked);
    aredis_uri_free(uri); /* the password above pointed into it */
    if (!ok || s.lines == 0 || s.redacted == 0 || s.leaked != 0) {
        fprintf(stderr, "expected log lines, some redacted, none with a password\n");
        return 1;
    }
    return 0;
}
