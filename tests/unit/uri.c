/*
 * Unit tests for connection URIs (src/net/uri.c): a table of valid URIs
 * checked field by field through aredis_uri_apply(), a table of malformed
 * ones that must fail with a clear message, the promise that no message ever
 * contains the password, percent-decoding, IPv6, rediss:// (TLS), allocation
 * failure, and random inputs that must never crash.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ts.h"

/* ---- Valid URIs ------------------------------------------------------- */

/*
 * Options start from these sentinels so that the test sees exactly which
 * fields apply() touched.
 */
#define S_HOST "sentinel-host"
#define S_PORT 1111
#define S_UNIX "/sentinel.sock"
#define S_USER "sentinel-user"
#define S_PASS "sentinel-pass"
#define S_DB 99
#define S_NAME "sentinel-name"
#define S_PROTO 7
#define S_CTO 12345u
#define S_RTO 54321u

static aredis_options sentinel_options(void) {
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.host = S_HOST;
    o.port = S_PORT;
    o.unix_path = S_UNIX;
    o.username = S_USER;
    o.password = S_PASS;
    o.db = S_DB;
    o.client_name = S_NAME;
    o.protocol = S_PROTO;
    o.connect_timeout_ms = S_CTO;
    o.request_timeout_ms = S_RTO;
    return o;
}

/* Expected options after apply(); a NULL string / -1 means "left alone". */
typedef struct {
    const char *uri;
    const char *host; /* NULL: unix URI (host left alone) */
    int port;
    const char *unix_path; /* NULL: tcp URI (unix_path becomes NULL) */
    const char *user;
    const char *pass;
    int db;
    const char *name;
    int protocol;
    long cto; /* connect_timeout_ms */
    long rto; /* request_timeout_ms */
} valid_case;

#define TCP(uri, host, port) uri, host, port, NULL
#define UNIX(uri, path) uri, NULL, 0, path

static const valid_case valid[] = {
    {TCP("redis://localhost", "localhost", 6379), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://localhost:6380", "localhost", 6380), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://127.0.0.1:6379/0", "127.0.0.1", 6379), NULL, NULL, 0, NULL, 0, -1, -1},
    {TCP("redis://10.1.2.3/15", "10.1.2.3", 6379), NULL, NULL, 15, NULL, 0, -1, -1},
    {TCP("redis://:secret@host", "host", 6379), NULL, "secret", -1, NULL, 0, -1, -1},
    {TCP("redis://alice:secret@db.example.com:7000/2", "db.example.com", 7000), "alice", "secret",
     2, NULL, 0, -1, -1},
    {TCP("redis://[::1]:6380/2", "::1", 6380), NULL, NULL, 2, NULL, 0, -1, -1},
    {TCP("redis://[::1]", "::1", 6379), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://[2001:db8::1]:1", "2001:db8::1", 1), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://[::ffff:127.0.0.1]:6379/1", "::ffff:127.0.0.1", 6379), NULL, NULL, 1, NULL, 0, -1,
     -1},
    {TCP("redis://host:65535", "host", 65535), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://host/", "host", 6379), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://host?db=3", "host", 6379), NULL, NULL, 3, NULL, 0, -1, -1},
    {TCP("redis://host/3?db=3", "host", 6379), NULL, NULL, 3, NULL, 0, -1, -1},
    {TCP("redis://host?protocol=2", "host", 6379), NULL, NULL, -1, NULL, 2, -1, -1},
    {TCP("redis://host?protocol=3&client_name=worker-1", "host", 6379), NULL, NULL, -1, "worker-1",
     3, -1, -1},
    {TCP("redis://host?name=app%3Aone", "host", 6379), NULL, NULL, -1, "app:one", 0, -1, -1},
    {TCP("redis://host?connect_timeout=0.5&timeout=2", "host", 6379), NULL, NULL, -1, NULL, 0, 500,
     2000},
    {TCP("redis://host?timeout=1.25&connect_timeout=.001", "host", 6379), NULL, NULL, -1, NULL, 0,
     1, 1250},
    {TCP("redis://host?timeout=0&connect_timeout=3.", "host", 6379), NULL, NULL, -1, NULL, 0, 3000,
     0},
    /* Sub-millisecond values round up: a tiny timeout must not mean "none". */
    {TCP("redis://host?timeout=0.0001&connect_timeout=4294967", "host", 6379), NULL, NULL, -1, NULL,
     0, 4294967000L, 1},
    {TCP("redis://host?password=p%40ss", "host", 6379), NULL, "p@ss", -1, NULL, 0, -1, -1},
    {TCP("redis://host?username=bob&password=pw", "host", 6379), "bob", "pw", -1, NULL, 0, -1, -1},
    {TCP("redis://bob@host?password=pw", "host", 6379), "bob", "pw", -1, NULL, 0, -1, -1},
    {TCP("redis://u%3Ax:p%2F%3F%23%25w@host", "host", 6379), "u:x", "p/?#%w", -1, NULL, 0, -1, -1},
    /* The last '@' ends the userinfo; the first ':' splits it. */
    {TCP("redis://:p@ss@host", "host", 6379), NULL, "p@ss", -1, NULL, 0, -1, -1},
    {TCP("redis://:a:b@host", "host", 6379), NULL, "a:b", -1, NULL, 0, -1, -1},
    {TCP("redis://@host", "host", 6379), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://:@host", "host", 6379), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("REDIS://Host.Example.COM:6379", "Host.Example.COM", 6379), NULL, NULL, -1, NULL, 0, -1,
     -1},
    {TCP("redis://my_host-1.internal:06379", "my_host-1.internal", 6379), NULL, NULL, -1, NULL, 0,
     -1, -1},
    {TCP("redis://host?&db=1&", "host", 6379), NULL, NULL, 1, NULL, 0, -1, -1},
    {TCP("redis://host?", "host", 6379), NULL, NULL, -1, NULL, 0, -1, -1},
    {TCP("redis://host/%31%32", "host", 6379), NULL, NULL, 12, NULL, 0, -1, -1},
    {TCP("redis://host/2147483647", "host", 6379), NULL, NULL, 2147483647, NULL, 0, -1, -1},
    {TCP("redis://host?password=", "host", 6379), NULL, NULL, -1, NULL, 0, -1, -1},
    {UNIX("unix:///tmp/redis.sock", "/tmp/redis.sock"), NULL, NULL, -1, NULL, 0, -1, -1},
    {UNIX("unix:///tmp/redis.sock?db=2&password=pw&username=u", "/tmp/redis.sock"), "u", "pw", 2,
     NULL, 0, -1, -1},
    {UNIX("redis+unix:///var/run/redis/redis.sock", "/var/run/redis/redis.sock"), NULL, NULL, -1,
     NULL, 0, -1, -1},
    {UNIX("Redis+Unix:///s?protocol=2&timeout=1", "/s"), NULL, NULL, -1, NULL, 2, -1, 1000},
    {UNIX("unix:///tmp/with%20space.sock", "/tmp/with space.sock"), NULL, NULL, -1, NULL, 0, -1,
     -1},
};

static void check_str(const char *got, const char *want, const char *what, const char *uri) {
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
        fail_msg("%s: %s is '%s', expected '%s'", uri, what, got ? got : "(null)",
                 want ? want : "(null)");
    }
}

static void test_valid_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const valid_case *c = &valid[i];
        char err[256] = "untouched";
        aredis_uri *u = (aredis_uri *)1;
        aredis_err rc = aredis_uri_parse(c->uri, &u, err, sizeof err);
        if (rc != AREDIS_ERR_OK) fail_msg("%s: %s (%s)", c->uri, aredis_err_name(rc), err);
        assert_non_null(u);
        assert_string_equal(err, "");
        assert_int_equal(aredis_uri_is_tls(u), 0);

        /* Accessors. */
        check_str(aredis_uri_host(u), c->host, "host", c->uri);
        assert_int_equal(aredis_uri_port(u), c->host ? c->port : 0);
        check_str(aredis_uri_unix_path(u), c->unix_path, "unix_path", c->uri);
        check_str(aredis_uri_username(u), c->user, "username", c->uri);
        check_str(aredis_uri_password(u), c->pass, "password", c->uri);
        assert_int_equal(aredis_uri_db(u), c->db < 0 ? 0 : c->db);

        /* apply(): only what the URI mentions changes. */
        aredis_options o = sentinel_options();
        aredis_uri_apply(u, &o);
        if (c->host) {
            check_str(o.host, c->host, "opts.host", c->uri);
            assert_int_equal(o.port, c->port);
            assert_null(o.unix_path);
        } else {
            check_str(o.host, S_HOST, "opts.host", c->uri);
            assert_int_equal(o.port, S_PORT);
            check_str(o.unix_path, c->unix_path, "opts.unix_path", c->uri);
        }
        check_str(o.username, c->user ? c->user : S_USER, "opts.username", c->uri);
        check_str(o.password, c->pass ? c->pass : S_PASS, "opts.password", c->uri);
        check_str(o.client_name, c->name ? c->name : S_NAME, "opts.client_name", c->uri);
        assert_int_equal(o.db, c->db < 0 ? S_DB : c->db);
        assert_int_equal(o.protocol, c->protocol ? c->protocol : S_PROTO);
        assert_int_equal(o.connect_timeout_ms, c->cto < 0 ? S_CTO : (uint32_t)c->cto);
        assert_int_equal(o.request_timeout_ms, c->rto < 0 ? S_RTO : (uint32_t)c->rto);
        aredis_uri_free(u);
    }
    assert_true(sizeof valid / sizeof valid[0] >= 25);
}

/* ---- Malformed URIs --------------------------------------------------- */

typedef struct {
    const char *uri;
    const char *msg; /* a substring the message must contain */
} bad_case;

static const bad_case bad[] = {
    {"", "missing scheme"},
    {"localhost:6379", "expected '//'"},
    {"://host", "missing scheme"},
    {"1redis://host", "missing scheme"},
    {"http://host", "unknown scheme 'http'"},
    {"rediss+unix:///tmp/s", "unknown scheme 'rediss+unix'"},
    {"redis:/host", "expected '//'"},
    {"redis://", "empty host"},
    {"redis:///path", "empty host"},
    {"redis://:6379", "empty host"},
    {"redis://host:0", "port out of range (1-65535)"},
    {"redis://host:65536", "port out of range (1-65535)"},
    {"redis://host:99999999999999999999999", "port out of range"},
    {"redis://host:abc", "port must be a decimal number"},
    {"redis://host:-1", "port must be a decimal number"},
    {"redis://host:+1", "port must be a decimal number"},
    {"redis://host:", "empty port"},
    {"redis://[::1", "unterminated IPv6 bracket"},
    {"redis://[::1:6379/0", "unterminated IPv6 bracket"},
    {"redis://[]:6379", "empty host"},
    {"redis://[::1]x", "unexpected character after ']'"},
    {"redis://[::1]:", "empty port"},
    {"redis://[::g]", "invalid IPv6 address"},
    {"redis://[127.0.0.1]", "invalid IPv6 address"},
    {"redis://::1:6379", "IPv6 address must be in brackets"},
    {"redis://ho$t", "invalid character in host"},
    {"redis://h%6Fst", "invalid character in host"},
    {"redis://999.1.1.1", "invalid IPv4 address"},
    {"redis://1.2.3", "invalid IPv4 address"},
    {"redis://host/abc", "db in path"},
    {"redis://host/-1", "db in path"},
    {"redis://host/1/2", "db in path"},
    {"redis://host/2147483648", "db out of range"},
    {"redis://host/%", "bad percent-escape in path"},
    {"redis://host/1?db=2", "db given in both path and query"},
    {"redis://host?db=x", "db in query"},
    {"redis://host?db=", "db in query"},
    {"redis://host?protocol=4", "protocol must be 2 or 3"},
    {"redis://host?protocol=", "protocol must be 2 or 3"},
    {"redis://host?timeout=-1", "timeout must be a non-negative number of seconds"},
    {"redis://host?timeout=abc", "timeout must be"},
    {"redis://host?timeout=.", "timeout must be"},
    {"redis://host?timeout=1.2.3", "timeout must be"},
    {"redis://host?connect_timeout=1e3", "connect_timeout must be"},
    {"redis://host?timeout=4294968", "timeout too large"},
    {"redis://host?foo=bar", "unknown query parameter"},
    {"redis://host?DB=1", "unknown query parameter"},
    {"redis://host?db", "query parameter without a value"},
    {"redis://host?=1", "empty query parameter name"},
    {"redis://host?db=1&db=1", "'db' given twice"},
    {"redis://host?name=a&client_name=b", "'client_name' given twice"},
    {"redis://host?client_name=a%20b", "client_name must not contain"},
    {"redis://host?client_name=", "empty client_name"},
    {"redis://user@host", "username without password"},
    {"redis://user:@host", "username without password"},
    {"redis://host?username=u", "username without password"},
    {"redis://:pw@host?password=pw2", "password given both"},
    {"redis://u:pw@host?username=v", "username given both"},
    {"redis://:p%zzw@host", "bad percent-escape in password"},
    {"redis://:p%0@host", "bad percent-escape in password"},
    {"redis://:p%00w@host", "NUL byte (%00) in password"},
    {"redis://us%0ger:pw@host", "bad percent-escape in username"},
    {"redis://host?password=a%00", "NUL byte (%00) in password"},
    {"redis://ho st", "space or control character"},
    {"redis://host\n", "space or control character"},
    {"redis://host#frag", "'#' must be percent-encoded"},
    {"unix://", "absolute path"},
    {"unix://tmp/sock", "absolute path"},
    {"unix:///", "empty socket path"},
    {"unix:///tmp/s%ZZ", "bad percent-escape in socket path"},
    {"unix:///tmp/s%00", "NUL byte"},
    {"unix:///tmp/s?db=1&bogus=2", "unknown query parameter"},
    {"redis+unix://host/tmp/s", "absolute path"},
    /* rediss:// is parsed fully: a malformed one is a URI error. */
    {"rediss://host:0", "port out of range"},
    {"rediss://", "empty host"},
};

static void test_malformed_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "untouched";
        aredis_uri *u = (aredis_uri *)1;
        aredis_err rc = aredis_uri_parse(bad[i].uri, &u, err, sizeof err);
        if (rc != AREDIS_ERR_URI)
            fail_msg("'%s': expected AREDIS_ERR_URI, got %s", bad[i].uri, aredis_err_name(rc));
        assert_null(u);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].uri, err, bad[i].msg);
    }
    assert_true(sizeof bad / sizeof bad[0] >= 30);
}

static void test_long_inputs(void **state) {
    (void)state;
    char err[256];
    aredis_uri *u;
    size_t n = 1 << 20;
    char *s = malloc(n + 64);
    assert_non_null(s);

    /* A megabyte-long host. */
    strcpy(s, "redis://");
    memset(s + 8, 'a', n);
    s[8 + n] = '\0';
    assert_int_equal(aredis_uri_parse(s, &u, err, sizeof err), AREDIS_ERR_URI);
    assert_null(u);
    assert_non_null(strstr(err, "host name too long"));

    /* 253 characters is the longest host name accepted. */
    s[8 + 253] = '\0';
    assert_int_equal(aredis_uri_parse(s, &u, err, sizeof err), AREDIS_ERR_OK);
    assert_int_equal(strlen(aredis_uri_host(u)), 253);
    aredis_uri_free(u);

    /* A megabyte-long password is fine (the server decides). */
    strcpy(s, "redis://:");
    memset(s + 9, 'p', n);
    strcpy(s + 9 + n, "@host");
    assert_int_equal(aredis_uri_parse(s, &u, err, sizeof err), AREDIS_ERR_OK);
    assert_int_equal(strlen(aredis_uri_password(u)), n);
    aredis_uri_free(u);

    /* A unix path longer than sun_path. */
    strcpy(s, "unix:///");
    memset(s + 8, 'd', 200);
    s[208] = '\0';
    assert_int_equal(aredis_uri_parse(s, &u, err, sizeof err), AREDIS_ERR_URI);
    assert_non_null(strstr(err, "socket path too long"));

    /* A long db number and port. */
    strcpy(s, "redis://h/");
    memset(s + 10, '9', 5000);
    s[5010] = '\0';
    assert_int_equal(aredis_uri_parse(s, &u, err, sizeof err), AREDIS_ERR_URI);
    assert_non_null(strstr(err, "db out of range"));
    free(s);
}

/* ---- TLS, NULLs, errbuf ----------------------------------------------- */

/*
 * rediss:// is TLS: the same syntax as redis://; apply() turns tls on. A
 * redis:// or unix:// URI never turns it off (no silent downgrade), and no
 * URI touches the other TLS options.
 */
static void test_rediss(void **state) {
    (void)state;
    static const struct {
        const char *uri;
        const char *host;
        int port;
        const char *pass;
        int db;
    } ok_tls[] = {
        {"rediss://host", "host", 6379, NULL, 0},
        {"rediss://:pw@host:6380/1?timeout=1", "host", 6380, "pw", 1},
        {"REDISS://[::1]", "::1", 6379, NULL, 0},
        {"rediss://127.0.0.1:6390", "127.0.0.1", 6390, NULL, 0},
        {"Rediss://user:p%40ss@redis.example.com:16379/3?name=app", "redis.example.com", 16379,
         "p@ss", 3},
    };
    for (size_t i = 0; i < sizeof ok_tls / sizeof ok_tls[0]; i++) {
        char err[128] = "untouched";
        aredis_uri *u = (aredis_uri *)1;
        aredis_err rc = aredis_uri_parse(ok_tls[i].uri, &u, err, sizeof err);
        if (rc != AREDIS_ERR_OK) fail_msg("%s: %s (%s)", ok_tls[i].uri, aredis_err_name(rc), err);
        assert_string_equal(err, "");
        assert_int_equal(aredis_uri_is_tls(u), 1);
        check_str(aredis_uri_host(u), ok_tls[i].host, "host", ok_tls[i].uri);
        assert_int_equal(aredis_uri_port(u), ok_tls[i].port);
        check_str(aredis_uri_password(u), ok_tls[i].pass, "password", ok_tls[i].uri);
        assert_int_equal(aredis_uri_db(u), ok_tls[i].db);

        aredis_options o = AREDIS_OPTIONS_INIT;
        o.tls_ca_file = "/ca.pem";
        o.tls_server_name = "sni.example";
        aredis_uri_apply(u, &o);
        assert_int_equal(o.tls, 1);
        check_str(o.host, ok_tls[i].host, "opts.host", ok_tls[i].uri);
        assert_int_equal(o.port, ok_tls[i].port);
        /* TLS options the URI does not speak of are left alone. */
        assert_string_equal(o.tls_ca_file, "/ca.pem");
        assert_string_equal(o.tls_server_name, "sni.example");
        assert_null(o.tls_cert_file);
        assert_int_equal(o.tls_insecure_skip_verify, 0);
        aredis_uri_free(u);
    }

    /* redis:// and unix:// leave tls as it was: off stays off, on stays on. */
    static const char *const plain[] = {"redis://host:7000", "unix:///tmp/r.sock",
                                        "redis+unix:///tmp/r.sock"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        aredis_uri *u;
        char err[128];
        assert_int_equal(aredis_uri_parse(plain[i], &u, err, sizeof err), AREDIS_ERR_OK);
        assert_int_equal(aredis_uri_is_tls(u), 0);
        for (int before = 0; before <= 1; before++) {
            aredis_options o = AREDIS_OPTIONS_INIT;
            o.tls = before;
            aredis_uri_apply(u, &o);
            assert_int_equal(o.tls, before);
        }
        aredis_uri_free(u);
    }
    /* The default options have TLS off, and verification on when enabled. */
    aredis_options d = AREDIS_OPTIONS_INIT;
    assert_int_equal(d.tls, 0);
    assert_int_equal(d.tls_insecure_skip_verify, 0);
}

static void test_null_args_and_errbuf(void **state) {
    (void)state;
    char err[128] = "";
    aredis_uri *u = (aredis_uri *)1;

    assert_int_equal(aredis_uri_parse(NULL, &u, err, sizeof err), AREDIS_ERR_INVALID);
    assert_null(u);
    assert_true(strlen(err) > 0);
    assert_int_equal(aredis_uri_parse("redis://h", NULL, err, sizeof err), AREDIS_ERR_INVALID);

    /* errbuf NULL or tiny: no crash, the message is truncated and terminated. */
    assert_int_equal(aredis_uri_parse("redis://h:0", &u, NULL, 0), AREDIS_ERR_URI);
    assert_int_equal(aredis_uri_parse("redis://h:0", &u, err, 0), AREDIS_ERR_URI);
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    assert_int_equal(aredis_uri_parse("redis://h:0", &u, tiny, sizeof tiny), AREDIS_ERR_URI);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    assert_null(u);

    /* Accessors and apply() take NULL. */
    assert_null(aredis_uri_host(NULL));
    assert_null(aredis_uri_password(NULL));
    assert_int_equal(aredis_uri_port(NULL), 0);
    assert_int_equal(aredis_uri_db(NULL), 0);
    assert_int_equal(aredis_uri_is_tls(NULL), 0);
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri_apply(NULL, &o);
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(aredis_uri_parse("redis://h", &u, NULL, 0), AREDIS_ERR_OK);
    aredis_uri_apply(u, NULL);
    aredis_uri_free(u);
    aredis_uri_free(NULL);
}

/* ---- Secrets ---------------------------------------------------------- */

/*
 * The password must never show up in a message, whatever is wrong with the
 * URI and wherever the password ended up through a typo.
 */
static void test_password_never_in_error(void **state) {
    (void)state;
    static const char *const uris[] = {
        "redis://:Zq7SECRETpw@host:0",
        "redis://user:Zq7SECRETpw@ho$t",
        "redis://:Zq7SECRETpw@[::1",
        "redis://:Zq7SECRETpw@[::1]x",
        "redis://:Zq7SECRETpw@[::zz]",
        "redis://:Zq7SECRETpw@:6379",
        "redis://:Zq7SECRETpw@host:Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host/Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host?db=Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host?timeout=Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host?protocol=Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host?client_name=Zq7SECRETpw%20",
        "redis://:Zq7SECRETpw@host?password=Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host?Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host?bogus=Zq7SECRETpw",
        "redis://:Zq7SECRETpw@host#Zq7SECRETpw",
        "redis://host?password=Zq7SECRETpw&bogus=1",
        "redis://host?password=Zq7SECRETpw%zz",
        "redis://host?password=Zq7SECRETpw%00",
        "redis://host?password=Zq7SECRETpw&password=Zq7SECRETpw",
        "redis://host?username=Zq7SECRETpw",
        /* Typos that put the password where a host, port or path goes. */
        "redis://:Zq7SECRETpw",
        "redis://user:Zq7SECRETpw",
        "redis://Zq7SECRETpw@host",
        "redis://:Zq7SECRETpw/x@host",
        "redis://:Zq7SECRETpw?x@host",
        "redis://:Zq7 SECRETpw@host",
        "redis://:Zq7#SECRETpw@host",
        "redis://:Zq7%SECRETpw@host",
        "redis://:Zq7SECRETpw%0@host",
        "redis://:Zq7SECRETpw%00@host",
        "redis:/:Zq7SECRETpw@host",
        "redis//:Zq7SECRETpw@host",
        "unix://:Zq7SECRETpw@/tmp/s",
        "unix:///tmp/s?password=Zq7SECRETpw&x=1",
        "unix:///tmp/s?password=Zq7SECRETpw&password=2",
        "rediss://:Zq7SECRETpw@ho$t",
        "rediss://:Zq7SECRETpw@host:99999",
        "rediss://:Zq7SECRETpw@host?bogus=Zq7SECRETpw",
        "rediss://:Zq7SECRETpw",
    };
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        char err[512] = "";
        aredis_uri *u = (aredis_uri *)1;
        aredis_err rc = aredis_uri_parse(uris[i], &u, err, sizeof err);
        if (rc != AREDIS_ERR_URI && rc != AREDIS_ERR_UNSUPPORTED)
            fail_msg("'%s' parsed (%s)", uris[i], aredis_err_name(rc));
        assert_null(u);
        assert_true(strlen(err) > 0);
        if (strstr(err, "Zq7") || strstr(err, "SECRET"))
            fail_msg("'%s': message leaks the password: %s", uris[i], err);
    }
}

/* ---- Percent-decoding and IPv6 ---------------------------------------- */

static void test_percent_decoding(void **state) {
    (void)state;
    /* Every byte 1..255, percent-encoded, in user, password and query. */
    char enc[256 * 3 + 1], want[256];
    size_t n = 0;
    for (int c = 1; c < 256; c++) {
        snprintf(enc + n * 3, 4, "%%%02X", c);
        want[n++] = (char)c;
    }
    want[n] = '\0';

    size_t cap = sizeof enc * 3 + 64;
    char *uri = malloc(cap);
    assert_non_null(uri);
    snprintf(uri, cap, "redis://%s:%s@host", enc, enc);
    aredis_uri *u;
    char err[256];
    assert_int_equal(aredis_uri_parse(uri, &u, err, sizeof err), AREDIS_ERR_OK);
    assert_string_equal(aredis_uri_username(u), want);
    assert_string_equal(aredis_uri_password(u), want);
    aredis_uri_free(u);

    snprintf(uri, cap, "unix:///tmp/x?password=%s&username=%s", enc, enc);
    assert_int_equal(aredis_uri_parse(uri, &u, err, sizeof err), AREDIS_ERR_OK);
    assert_string_equal(aredis_uri_username(u), want);
    assert_string_equal(aredis_uri_password(u), want);
    aredis_uri_free(u);
    free(uri);

    /* Lower-case hex, '+' stays a plus, raw UTF-8 passes through. */
    assert_int_equal(aredis_uri_parse("redis://:a%2fb+c\xc3\xa9@h", &u, err, sizeof err),
                     AREDIS_ERR_OK);
    assert_string_equal(aredis_uri_password(u), "a/b+c\xc3\xa9");
    aredis_uri_free(u);

    /* A socket path with encoded '?' and '%'. */
    assert_int_equal(aredis_uri_parse("unix:///tmp/a%3Fb%25c?db=1", &u, err, sizeof err),
                     AREDIS_ERR_OK);
    assert_string_equal(aredis_uri_unix_path(u), "/tmp/a?b%c");
    assert_int_equal(aredis_uri_db(u), 1);
    aredis_uri_free(u);

    /* Escapes cut short at the end of each field. */
    const char *cut[] = {"redis://:%@h",   "redis://:%4@h",        "redis://%4:p@h",
                         "redis://h/%3",   "redis://h?password=%", "redis://h?password=%4",
                         "unix:///tmp/%4", "redis://h?name=%G1"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        u = (aredis_uri *)1;
        assert_int_equal(aredis_uri_parse(cut[i], &u, err, sizeof err), AREDIS_ERR_URI);
        assert_null(u);
        assert_non_null(strstr(err, "bad percent-escape"));
    }
}

static void test_ipv6(void **state) {
    (void)state;
    static const struct {
        const char *uri, *host;
        int port;
    } v6[] = {
        {"redis://[::1]:6380/2", "::1", 6380},
        {"redis://[::]", "::", 6379},
        {"redis://[fe80::1:2:3:4]:7000", "fe80::1:2:3:4", 7000},
        {"redis://[2001:0db8:0000:0000:0000:ff00:0042:8329]",
         "2001:0db8:0000:0000:0000:ff00:0042:8329", 6379},
        {"redis://u:p@[::1]:1/0", "::1", 1},
    };
    for (size_t i = 0; i < sizeof v6 / sizeof v6[0]; i++) {
        aredis_uri *u;
        char err[256];
        assert_int_equal(aredis_uri_parse(v6[i].uri, &u, err, sizeof err), AREDIS_ERR_OK);
        assert_string_equal(aredis_uri_host(u), v6[i].host);
        assert_int_equal(aredis_uri_port(u), v6[i].port);
        aredis_options o = AREDIS_OPTIONS_INIT;
        aredis_uri_apply(u, &o);
        assert_string_equal(o.host, v6[i].host);
        aredis_uri_free(u);
    }
    const char *badv6[] = {"redis://[::1",    "redis://[1:2:3:4:5:6:7:8:9]", "redis://[::1]]",
                           "redis://[[::1]]", "redis://[fe80::1%25eth0]",    "redis://[::1]6379"};
    for (size_t i = 0; i < sizeof badv6 / sizeof badv6[0]; i++) {
        aredis_uri *u = (aredis_uri *)1;
        char err[256] = "";
        assert_int_equal(aredis_uri_parse(badv6[i], &u, err, sizeof err), AREDIS_ERR_URI);
        assert_null(u);
        assert_true(strlen(err) > 0);
    }
}

/* ---- apply() ---------------------------------------------------------- */

static void test_apply(void **state) {
    (void)state;
    aredis_uri *u;
    char err[256];

    /* tcp over options that had a unix path: the path is dropped. */
    aredis_options o = AREDIS_OPTIONS_INIT;
    o.unix_path = "/old.sock";
    o.password = "keep";
    assert_int_equal(aredis_uri_parse("redis://example:7001", &u, err, sizeof err), AREDIS_ERR_OK);
    aredis_uri_apply(u, &o);
    assert_string_equal(o.host, "example");
    assert_int_equal(o.port, 7001);
    assert_null(o.unix_path);
    assert_string_equal(o.password, "keep");
    assert_int_equal(o.db, 0);
    assert_int_equal(o.protocol, 3);
    assert_int_equal(o.connect_timeout_ms, 5000);
    aredis_uri_free(u);

    /* unix: host/port left alone, the path and the rest set. */
    o = (aredis_options)AREDIS_OPTIONS_INIT;
    o.host = "elsewhere";
    assert_int_equal(aredis_uri_parse("unix:///run/r.sock?db=4&password=s%26s&username=adm"
                                      "&name=me&protocol=2&connect_timeout=1.5&timeout=0.25",
                                      &u, err, sizeof err),
                     AREDIS_ERR_OK);
    aredis_uri_apply(u, &o);
    assert_string_equal(o.host, "elsewhere");
    assert_int_equal(o.port, 6379);
    assert_string_equal(o.unix_path, "/run/r.sock");
    assert_int_equal(o.db, 4);
    assert_string_equal(o.password, "s&s");
    assert_string_equal(o.username, "adm");
    assert_string_equal(o.client_name, "me");
    assert_int_equal(o.protocol, 2);
    assert_int_equal(o.connect_timeout_ms, 1500);
    assert_int_equal(o.request_timeout_ms, 250);
    aredis_uri_free(u);

    /* db 0 in the URI is applied (it is mentioned), over a nonzero default. */
    o = (aredis_options)AREDIS_OPTIONS_INIT;
    o.db = 5;
    assert_int_equal(aredis_uri_parse("redis://h/0", &u, err, sizeof err), AREDIS_ERR_OK);
    aredis_uri_apply(u, &o);
    assert_int_equal(o.db, 0);
    aredis_uri_free(u);
}

/* ---- Allocation failure and random inputs ----------------------------- */

static long g_live, g_calls, g_fail_at;

static int should_fail(void) { return ++g_calls == g_fail_at; }
static void *t_malloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = malloc(n);
    g_live += p != NULL;
    return p;
}
static void *t_calloc(size_t a, size_t b) {
    if (should_fail()) return NULL;
    void *p = calloc(a, b);
    g_live += p != NULL;
    return p;
}
static void *t_realloc(void *old, size_t n) {
    if (should_fail()) return NULL;
    void *p = realloc(old, n);
    g_live += (p != NULL && old == NULL);
    return p;
}
static void t_free(void *p) {
    g_live -= p != NULL;
    free(p);
}

static void test_alloc_failure(void **state) {
    (void)state;
    static const aredis_allocator a = {t_malloc, t_calloc, t_realloc, t_free};
    const char *uris[] = {
        "redis://alice:secret@[::1]:6380/2?name=app&timeout=1&connect_timeout=2&protocol=2",
        "unix:///tmp/r.sock?db=3&password=p%40ss&username=u",
        "redis://:pw@host/1?bogus=1",
    };
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        aredis_err want = i == 2 ? AREDIS_ERR_URI : AREDIS_ERR_OK;
        int succeeded = 0;
        for (long n = 1; n < 50 && !succeeded; n++) {
            aredis_uri *u = (aredis_uri *)1;
            char err[256] = "";
            g_live = g_calls = 0;
            g_fail_at = n;
            aredis_set_allocator(&a);
            aredis_err rc = aredis_uri_parse(uris[i], &u, err, sizeof err);
            if (rc == AREDIS_ERR_NOMEM) {
                assert_null(u);
                assert_string_equal(err, "out of memory");
            } else {
                assert_int_equal(rc, want);
                succeeded = 1;
                aredis_uri_free(u);
            }
            aredis_reset_allocator();
            assert_int_equal(g_live, 0);
        }
        assert_true(succeeded);
    }
}

/* Deterministic pseudo-random, so a failure reproduces. */
static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_random_inputs(void **state) {
    (void)state;
    static const char alphabet[] = "redis:/@[]?&=%.:0123456789abcdefABCDEF+-_#unix\x01\xff ";
    static const char *seeds[] = {
        "redis://alice:secret@[::1]:6380/2?name=app&timeout=1",
        "unix:///tmp/r.sock?db=3&password=p%40ss",
        "rediss://h:1/0?protocol=3",
    };
    uint32_t s = 12345;
    char buf[128];
    for (int iter = 0; iter < 50000; iter++) {
        size_t n;
        if (iter % 2) {
            /* Random bytes from a URI-ish alphabet. */
            n = rnd(&s) % 64;
            for (size_t i = 0; i < n; i++)
                buf[i] = alphabet[rnd(&s) % (sizeof alphabet - 1)];
        } else {
            /* A valid URI with a few bytes changed, cut, or duplicated. */
            const char *seed = seeds[rnd(&s) % 3];
            n = strlen(seed);
            memcpy(buf, seed, n);
            for (int k = (int)(rnd(&s) % 4); k >= 0; k--)
                buf[rnd(&s) % n] = alphabet[rnd(&s) % (sizeof alphabet - 1)];
            if (rnd(&s) % 4 == 0) n = rnd(&s) % n;
        }
        buf[n] = '\0';
        aredis_uri *u = (aredis_uri *)1;
        char err[128] = "";
        aredis_err rc = aredis_uri_parse(buf, &u, err, sizeof err);
        if (rc == AREDIS_ERR_OK) {
            assert_non_null(u);
            assert_true(aredis_uri_host(u) != NULL || aredis_uri_unix_path(u) != NULL);
            aredis_options o = AREDIS_OPTIONS_INIT;
            aredis_uri_apply(u, &o);
            aredis_uri_free(u);
        } else {
            if (rc != AREDIS_ERR_URI && rc != AREDIS_ERR_UNSUPPORTED)
                fail_msg("'%s': %s", buf, aredis_err_name(rc));
            assert_null(u);
            assert_true(strlen(err) > 0);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_rediss),
        cmocka_unit_test(test_null_args_and_errbuf),
        cmocka_unit_test(test_password_never_in_error),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_random_inputs),
    };
    return cmocka_run_group_tests_name("uri", tests, NULL, NULL);
}
