/*
 * auth — passwords and ACL users, through a URI and through options, on a
 * server that requires them (requirepass, ACL SETUSER). The client
 * authenticates in its handshake (HELLO 3 AUTH user pass, or AUTH on
 * RESP2), on every connect and reconnect; a refused password fails the
 * connect with AREDIS_ERR_AUTH and is not retried.
 *
 *   REDIS_URL=redis://:secret@127.0.0.1:6379 ./example_auth
 *   REDIS_URL=redis://admin:adminpw@127.0.0.1:6379 ./example_auth
 *
 * REDIS_URL (default redis://127.0.0.1:6379) names the server and a user
 * allowed to manage ACL users: the default user with its requirepass
 * password, or an ACL user. Through that connection the example makes an
 * ACL user of its own, example-app, allowed the keys example:auth:* only;
 * connects as it through options, then through a URI; tries a wrong
 * password; and removes the user.
 *
 * Exits 0 when each connection was who it should be, could do what it
 * should, and the wrong password was refused.
 */
#include <aredis/aredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP_USER "example-app"
#define APP_PASSWORD "example-app-Secret-9"

static int g_failed;

static void check(int ok, const char *what) {
    printf("%-52s %s\n", what, ok ? "yes" : "NO");
    if (!ok) g_failed = 1;
}

/* A client with o, connected: NULL (and why, on stderr) when the connect
 * failed; the error's code in *code. */
static aredis_client *connect_as(aredis_loop *loop, const aredis_options *o, aredis_err *code) {
    aredis_client *c = aredis_client_new(loop, o);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        exit(1);
    }
    aredis_client_connect(c);
    aredis_future *ready = aredis_future_ready(c);
    *code = aredis_await(ready);
    if (*code != AREDIS_ERR_OK) {
        /* The detail never holds the password. */
        printf("connect refused: %s: %s\n", aredis_err_name(*code),
               aredis_future_error(ready)->detail);
        aredis_client_free(c);
        c = NULL;
    }
    aredis_future_release(ready);
    return c;
}

/* The reply to one command, as text ("(error) NOPERM ..." for an error).
 * Prints the command's format, not the command: no password on screen. */
static void ask(aredis_client *c, char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aredis_future *f = aredis_future_vcommand(c, fmt, ap);
    va_end(ap);
    aredis_err e = aredis_await(f);
    const aredis_reply *r = aredis_future_reply(f);
    if (r && r->type == AREDIS_REPLY_ERROR)
        snprintf(out, n, "(error) %s", r->str);
    else if (e != AREDIS_ERR_OK)
        snprintf(out, n, "(failed) %s", aredis_future_error(f)->detail);
    else if (r->type == AREDIS_REPLY_INTEGER)
        snprintf(out, n, "%lld", r->integer);
    else
        snprintf(out, n, "%s", r->str ? r->str : "(nil)");
    printf("  %s -> %s\n", fmt, out);
    aredis_future_release(f);
}

int main(void) {
    const char *url = getenv("REDIS_URL");
    aredis_uri *uri;
    char err[256], got[256];
    aredis_err code;
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err); /* never contains the password */
        return 2;
    }
    aredis_loop *loop = aredis_loop_new();

    /* 1. Through a URI: redis://:password@host:port (the default user) or
     * redis://user:password@host:port. */
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(uri, &o);
    aredis_client *admin = connect_as(loop, &o, &code);
    if (!admin) return 1;
    printf("REDIS_URL:\n");
    ask(admin, got, sizeof got, "ACL WHOAMI");
    ask(admin, got, sizeof got, "ACL SETUSER %s reset on >%s ~example:auth:* +@all", APP_USER,
        APP_PASSWORD);
    if (strcmp(got, "OK") != 0) return 1;

    /* 2. Through options: the same server, as the ACL user. */
    o = (aredis_options)AREDIS_OPTIONS_INIT;
    aredis_uri_apply(uri, &o); /* the address (and any other settings) */
    o.username = APP_USER;     /* NULL: the default user */
    o.password = APP_PASSWORD; /* copied by aredis_client_new */
    aredis_client *app = connect_as(loop, &o, &code);
    printf("options username=" APP_USER ":\n");
    if (app) {
        ask(app, got, sizeof got, "ACL WHOAMI");
        check(strcmp(got, APP_USER) == 0, "authenticated as " APP_USER);
        ask(app, got, sizeof got, "SET example:auth:greeting hello");
        check(strcmp(got, "OK") == 0, "may write example:auth:*");
        ask(app, got, sizeof got, "GET other:key");
        check(strncmp(got, "(error) NOPERM", 14) == 0, "may not read other keys");
        aredis_client_free(app);
    } else {
        check(0, "connected as " APP_USER);
    }

    /* 3. Through a URI made for the user (percent-encode special characters
     * of a real password); a unix socket takes them as query parameters. */
    char app_url[512];
    if (aredis_uri_unix_path(uri))
        snprintf(app_url, sizeof app_url, "unix://%s?username=%s&password=%s",
                 aredis_uri_unix_path(uri), APP_USER, APP_PASSWORD);
    else
        snprintf(app_url, sizeof app_url, "redis://%s:%s@%s:%d", APP_USER, APP_PASSWORD,
                 aredis_uri_host(uri), aredis_uri_port(uri) ? aredis_uri_port(uri) : 6379);
    aredis_uri *app_uri;
    if (aredis_uri_parse(app_url, &app_uri, err, sizeof err) != AREDIS_ERR_OK) {
        fprintf(stderr, "bad URI: %s\n", err);
        return 1;
    }
    o = (aredis_options)AREDIS_OPTIONS_INIT;
    aredis_uri_apply(app_uri, &o);
    app = connect_as(loop, &o, &code);
    aredis_uri_free(app_uri);
    printf("URI redis://" APP_USER ":<password>@...:\n");
    if (app) {
        ask(app, got, sizeof got, "GET example:auth:greeting");
        check(strcmp(got, "hello") == 0, "reads what it wrote through the options");
        aredis_client_free(app);
    } else {
        check(0, "connected as " APP_USER " through a URI");
    }

    /* 4. A wrong password: the connect fails with AUTH, and the client
     * does not retry it (reconnect_on_auth_error is 0). */
    o = (aredis_options)AREDIS_OPTIONS_INIT;
    aredis_uri_apply(uri, &o);
    o.username = APP_USER;
    o.password = "not-" APP_PASSWORD;
    printf("options with a wrong password:\n");
    app = connect_as(loop, &o, &code);
    check(!app && code == AREDIS_ERR_AUTH, "refused with AREDIS_ERR_AUTH");
    aredis_client_free(app);

    ask(admin, got, sizeof got, "ACL DELUSER " APP_USER);
    check(strcmp(got, "1") == 0, "user removed");
    aredis_client_free(admin);
    aredis_uri_free(uri);
    aredis_loop_free(loop);
    return g_failed;
}
