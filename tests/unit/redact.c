/*
 * Unit tests for redaction (src/util/redact.c): a table of commands, each
 * rendered from its RESP encoding and compared with the exact text expected,
 * and checked not to contain any of its secrets; case variations; binary,
 * overlong and malformed input; output bounds for every buffer size; URIs,
 * server messages and known-secret scrubbing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ts.h"
#include "util/redact.h"

#define R "<redacted>"

/* ---- Commands ----------------------------------------------------------- */

typedef struct {
    const char *argv[16]; /* NULL-terminated */
    const char *expect;   /* exact rendering */
    const char *secrets[6];
} cmd_case;

static const cmd_case k_cmds[] = {
    /* Ordinary commands are shown as they are. */
    {{"SET", "key", "value", NULL}, "SET key value", {NULL}},
    {{"GET", "k", NULL}, "GET k", {NULL}},
    {{"PING", NULL}, "PING", {NULL}},
    /* AUTH: every argument. */
    {{"AUTH", "S3CR3T-a1", NULL}, "AUTH " R, {"S3CR3T-a1"}},
    {{"AUTH", "alice", "S3CR3T-a2", NULL}, "AUTH " R " " R, {"S3CR3T-a2", "alice"}},
    {{"auth", "S3CR3T-a3", NULL}, "auth " R, {"S3CR3T-a3"}},
    {{"aUtH", "S3CR3T-a4", "more", NULL}, "aUtH " R " " R, {"S3CR3T-a4", "more"}},
    /* HELLO ... AUTH user pass [SETNAME name]. */
    {{"HELLO", "3", "AUTH", "bob", "S3CR3T-h1", NULL},
     "HELLO 3 AUTH " R " " R,
     {"S3CR3T-h1", "bob"}},
    {{"hello", "3", "auth", "bob", "S3CR3T-h2", "SETNAME", "app", NULL},
     "hello 3 auth " R " " R " SETNAME app",
     {"S3CR3T-h2", "bob"}},
    {{"HELLO", "3", "SETNAME", "app", NULL}, "HELLO 3 SETNAME app", {NULL}},
    {{"HELLO", "2", "AUTH", "default", "AUTH", NULL}, "HELLO 2 AUTH " R " " R, {NULL}},
    /* MIGRATE ... AUTH pass | AUTH2 user pass [KEYS ...]. */
    {{"MIGRATE", "10.0.0.2", "6379", "", "0", "5000", "AUTH", "S3CR3T-m1", NULL},
     "MIGRATE 10.0.0.2 6379 \"\" 0 5000 AUTH " R,
     {"S3CR3T-m1"}},
    {{"MIGRATE", "h", "6379", "", "0", "5000", "COPY", "REPLACE", "AUTH2", "carol", "S3CR3T-m2",
      "KEYS", "k1", "k2", NULL},
     "MIGRATE h 6379 \"\" 0 5000 COPY REPLACE AUTH2 " R " " R " KEYS k1 k2",
     {"S3CR3T-m2", "carol"}},
    {{"migrate", "h", "1", "k", "0", "10", "auth2", "u", "S3CR3T-m3", NULL},
     "migrate h 1 k 0 10 auth2 " R " " R,
     {"S3CR3T-m3"}},
    /* The password spelled like a keyword is still the password. */
    {{"MIGRATE", "h", "1", "k", "0", "10", "AUTH", "AUTH2", "KEYS", NULL},
     "MIGRATE h 1 k 0 10 AUTH " R " KEYS",
     {NULL}},
    /* CONFIG SET: values of secret parameters, every pair. */
    {{"CONFIG", "SET", "requirepass", "S3CR3T-c1", NULL},
     "CONFIG SET requirepass " R,
     {"S3CR3T-c1"}},
    {{"config", "set", "MASTERAUTH", "S3CR3T-c2", NULL}, "config set MASTERAUTH " R, {"S3CR3T-c2"}},
    {{"CONFIG", "SET", "tls-key-file-pass", "S3CR3T-c3", NULL},
     "CONFIG SET tls-key-file-pass " R,
     {"S3CR3T-c3"}},
    {{"Config", "Set", "TLS-Client-Key-File-Pass", "S3CR3T-c4", NULL},
     "Config Set TLS-Client-Key-File-Pass " R,
     {"S3CR3T-c4"}},
    {{"CONFIG", "SET", "maxmemory", "100mb", "requirepass", "S3CR3T-c5", "masterauth", "S3CR3T-c6",
      "appendonly", "yes", NULL},
     "CONFIG SET maxmemory 100mb requirepass " R " masterauth " R " appendonly yes",
     {"S3CR3T-c5", "S3CR3T-c6"}},
    {{"CONFIG", "GET", "requirepass", NULL}, "CONFIG GET requirepass", {NULL}},
    /* ACL SETUSER: password rules, and selectors holding one. */
    {{"ACL", "SETUSER", "dave", "on", ">S3CR3T-p1", "<S3CR3T-p2", "#S3CR3T-p3", "!S3CR3T-p4", "~*",
      "+@all", NULL},
     "ACL SETUSER dave on " R " " R " " R " " R " ~* +@all",
     {"S3CR3T-p1", "S3CR3T-p2", "S3CR3T-p3", "S3CR3T-p4"}},
    {{"acl", "setuser", "eve", "resetpass", ">S3CR3T-p5", NULL},
     "acl setuser eve resetpass " R,
     {"S3CR3T-p5"}},
    {{"ACL", "SETUSER", "eve", "(~k >S3CR3T-p6)", NULL}, "ACL SETUSER eve " R, {"S3CR3T-p6"}},
    {{"ACL", "WHOAMI", NULL}, "ACL WHOAMI", {NULL}},
    /* SENTINEL SET / CONFIG SET. */
    {{"SENTINEL", "SET", "mymaster", "auth-pass", "S3CR3T-s1", "quorum", "2", NULL},
     "SENTINEL SET mymaster auth-pass " R " quorum 2",
     {"S3CR3T-s1"}},
    {{"SENTINEL", "CONFIG", "SET", "sentinel-pass", "S3CR3T-s2", NULL},
     "SENTINEL CONFIG SET sentinel-pass " R,
     {"S3CR3T-s2"}},
    /* Quoting and escapes. */
    {{"SET", "a b", "x\"y\\z", NULL}, "SET \"a b\" \"x\\\"y\\\\z\"", {NULL}},
    {{"SET", "k", "", NULL}, "SET k \"\"", {NULL}},
    {{"SET", "k", "line\r\nnext\t", NULL}, "SET k \"line\\r\\nnext\\t\"", {NULL}},
};

static char *encode(const char *const *argv, size_t *len) {
    int argc = 0;
    while (argv[argc])
        argc++;
    char *cmd;
    assert_int_equal(aredis_format_argv(&cmd, len, argc, argv, NULL), AREDIS_ERR_OK);
    return cmd;
}

static void assert_no_secret(const char *text, const char *const *secrets) {
    for (int i = 0; secrets[i]; i++)
        if (strstr(text, secrets[i])) fail_msg("secret '%s' in output: %s", secrets[i], text);
}

static int sensitive_name(const char *name) {
    static const char *const names[] = {"AUTH", "HELLO", "MIGRATE", "CONFIG", "ACL", "SENTINEL"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(name, names[i]) == 0) return 1;
    return 0;
}

static void test_command_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_cmds / sizeof *k_cmds; i++) {
        const cmd_case *t = &k_cmds[i];
        size_t len;
        char *cmd = encode(t->argv, &len);
        char out[512];
        size_t n = aredis__redact_command(cmd, len, out, sizeof out);
        if (strcmp(out, t->expect) != 0)
            fail_msg("case %zu: got [%s], want [%s]", i, out, t->expect);
        assert_int_equal(n, strlen(out));
        assert_no_secret(out, t->secrets);
        assert_int_equal(aredis__redact_is_sensitive(cmd, len), sensitive_name(t->argv[0]));
        /* Every smaller buffer: bounded, terminated, never a secret. */
        for (size_t cap = 0; cap <= strlen(t->expect) + 2; cap++) {
            char small[512];
            memset(small, 'Z', sizeof small);
            size_t m = aredis__redact_command(cmd, len, small, cap);
            if (cap == 0) {
                assert_int_equal(m, 0);
                assert_int_equal(small[0], 'Z');
                continue;
            }
            assert_true(m < cap);
            assert_int_equal(small[m], '\0');
            assert_int_equal(small[cap], 'Z');
            assert_no_secret(small, t->secrets);
            if (m >= 3 && m < strlen(t->expect)) assert_memory_equal(small + m - 3, "...", 3);
        }
        aredis_free_command(cmd);
    }
}

/* Binary arguments are escaped; long ones are cut; the whole is bounded. */
static void test_binary_and_long(void **state) {
    (void)state;
    const char bin[] = {'a', 0, 1, (char)0xff, 'b'};
    const char *argv[] = {"SET", "k", bin};
    size_t lens[] = {3, 1, sizeof bin};
    char *cmd;
    size_t len;
    assert_int_equal(aredis_format_argv(&cmd, &len, 3, argv, lens), AREDIS_ERR_OK);
    char out[256];
    aredis__redact_command(cmd, len, out, sizeof out);
    assert_string_equal(out, "SET k \"a\\x00\\x01\\xffb\"");
    aredis_free_command(cmd);

    /* A 1 MB value: shown cut, output bounded by the buffer. */
    size_t big = 1 << 20;
    char *v = malloc(big);
    memset(v, 'v', big);
    const char *argv2[] = {"SET", "k", v};
    size_t lens2[] = {3, 1, big};
    assert_int_equal(aredis_format_argv(&cmd, &len, 3, argv2, lens2), AREDIS_ERR_OK);
    size_t n = aredis__redact_command(cmd, len, out, sizeof out);
    assert_true(n < 100);
    assert_non_null(strstr(out, "vvv..."));
    aredis_free_command(cmd);

    /* AUTH with a 1 MB password: nothing of it, however small the buffer. */
    memset(v, 'S', big);
    const char *argv3[] = {"AUTH", v};
    size_t lens3[] = {4, big};
    assert_int_equal(aredis_format_argv(&cmd, &len, 2, argv3, lens3), AREDIS_ERR_OK);
    aredis__redact_command(cmd, len, out, sizeof out);
    assert_string_equal(out, "AUTH " R);
    aredis_free_command(cmd);

    /* Many arguments: bounded, ends with "...". */
    const char *many[2000];
    many[0] = "MSET";
    for (int i = 1; i < 2000; i++)
        many[i] = "kv";
    assert_int_equal(aredis_format_argv(&cmd, &len, 2000, many, NULL), AREDIS_ERR_OK);
    n = aredis__redact_command(cmd, len, out, sizeof out);
    assert_int_equal(n, sizeof out - 1);
    assert_string_equal(out + n - 3, "...");
    aredis_free_command(cmd);
    free(v);
}

/* Malformed or cut encodings never echo unparsed bytes. */
static void test_malformed(void **state) {
    (void)state;
    static const struct {
        const char *in;
        const char *expect;
    } cases[] = {
        {"", "<malformed command>"},
        {"AUTH S3CR3T-x\r\n", "<malformed command>"}, /* inline: not parsed, not shown */
        {"*0\r\n", "<malformed command>"},
        {"*-1\r\n", "<malformed command>"},
        {"*2\r\n$4\r\nAUTH\r\n$20\r\nS3CR3T-x", "AUTH ..."},
        {"*2\r\n$4\r\nAUTH\r\n", "AUTH ..."},
        {"*2\r\n$3\r\nGET\r\n$1\r\nkX\r\n", "GET ..."},
        {"*1\r\n$99999999999999999999\r\nS3CR3T-x", "<malformed command>"},
        {"*99999999999999999999\r\n$4\r\nAUTH\r\n", "<malformed command>"},
        {"*3\r\n$4\r\nAUTH\r\n$8\r\nS3CR3T-x\r\n", "AUTH " R " ..."},
        /* Bytes after the first command are ignored. */
        {"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nAUTH\r\n$8\r\nS3CR3T-x\r\n", "PING"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[128];
        aredis__redact_command(cases[i].in, strlen(cases[i].in), out, sizeof out);
        if (strcmp(out, cases[i].expect) != 0)
            fail_msg("case %zu: got [%s], want [%s]", i, out, cases[i].expect);
        assert_null(strstr(out, "S3CR3T"));
    }
    char out[16];
    aredis__redact_command(NULL, 0, out, sizeof out);
    assert_string_equal(out, "<malformed c...");
}

/* Random mutations of a secret-bearing command: never a crash, never the
 * secret in full. */
static void test_random(void **state) {
    (void)state;
    const char *argv[] = {"CONFIG", "SET", "requirepass", "S3CR3T-rnd", NULL};
    size_t len;
    char *cmd = encode(argv, &len);
    uint64_t seed = 0x1234567;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[128];
        memcpy(buf, cmd, len);
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t at = (size_t)(seed >> 33) % len;
        /* Flip a byte outside the secret itself: the structure changes, the
         * secret stays intact and must still never show. */
        if (at >= len - 12 && at < len - 2) continue;
        buf[at] = (char)(seed >> 17);
        char out[128];
        size_t cut = (size_t)(seed >> 40) % (len + 1);
        size_t n = aredis__redact_command(buf, cut, out, sizeof out);
        assert_true(n < sizeof out);
        /* A changed command name or keyword may legitimately make the value
         * an ordinary argument; only check when the structure is intact. */
        if (strncmp(out, "CONFIG SET requirepass ", 23) == 0) assert_null(strstr(out, "S3CR3T"));
    }
    aredis_free_command(cmd);
}

/* ---- URIs --------------------------------------------------------------- */

static void test_uri(void **state) {
    (void)state;
    static const struct {
        const char *in;
        const char *expect;
    } cases[] = {
        {"redis://localhost:6379/0", "redis://localhost:6379/0"},
        {"redis://user:S3CR3T-u1@host:6379/2", "redis://user:" R "@host:6379/2"},
        {"rediss://:S3CR3T-u2@host", "rediss://:" R "@host"},
        {"redis://S3CR3T-u3@host", "redis://" R "@host"},
        {"redis://u:S3:CR3T@x@host", "redis://u:" R "@host"},
        {"redis://u:S3CR3T/x?y@host/1?db=2", "redis://u:" R "@host/1?db=2"},
        {"redis://host/0?password=S3CR3T-u4&db=1", "redis://host/0?password=" R "&db=1"},
        {"unix:///tmp/r.sock?db=1&PASSWORD=S3CR3T-u5", "unix:///tmp/r.sock?db=1&PASSWORD=" R},
        {"redis://h?auth=S3CR3T-u6;name=x", "redis://h?auth=" R ";name=x"},
        {"redis://h?pass%77ord=S3CR3T-u7", "redis://h?pass%77ord=" R},
        {"redis://h?p%61ssword=S3CR3T-u7", "redis://h?p%61ssword=" R},
        /* Malformed: forgotten '@', no scheme, one slash. */
        {"redis://user:S3CR3T-u8", "redis://user:" R},
        {"redis://user:S3CR3T/u9?db=1", "redis://user:" R "?db=1"},
        {"user:S3CR3T-u10@host", "user:" R "@host"},
        {"redis:/user:S3CR3T-u11@host", "redis:" R "@host"},
        {"redis://[::1]:6379", "redis://[::1]:6379"},
        {"redis://u:S3CR3T\n@h", "redis://u:" R "@h"},
        {"redis://h/\x01", "redis://h/?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256];
        size_t n = aredis__redact_uri(cases[i].in, out, sizeof out);
        if (strcmp(out, cases[i].expect) != 0)
            fail_msg("case %zu: got [%s], want [%s]", i, out, cases[i].expect);
        assert_int_equal(n, strlen(out));
        assert_null(strstr(out, "S3CR3T"));
        for (size_t cap = 1; cap < strlen(cases[i].expect); cap++) {
            char small[256];
            size_t m = aredis__redact_uri(cases[i].in, small, cap);
            assert_true(m < cap);
            assert_null(strstr(small, "S3CR3T"));
            assert_null(strstr(small, "CR3T"));
        }
    }
    char out[16];
    aredis__redact_uri(NULL, out, sizeof out);
    assert_string_equal(out, "(null)");
}

/* ---- Messages ------------------------------------------------------------ */

static void test_messages(void **state) {
    (void)state;
    char out[256];
    const char *m1 = "ERR Error in ACL SETUSER modifier '>S3CR3T-x': Syntax error";
    aredis__redact_message(m1, strlen(m1), out, sizeof out);
    assert_string_equal(out, "ERR Error in ACL SETUSER modifier '" R "': Syntax error");
    const char *m2 = "ERR unknown command `HELLO`, with args beginning with: `3`, `S3CR3T`, ";
    aredis__redact_message(m2, strlen(m2), out, sizeof out);
    assert_string_equal(out, "ERR unknown command `" R "`, with args beginning with: `" R "`, `" R
                             "`, ");
    const char *m3 = "ERR bad \"S3CR3T unterminated";
    aredis__redact_message(m3, strlen(m3), out, sizeof out);
    assert_string_equal(out, "ERR bad \"" R);
    const char *m4 = "WRONGPASS invalid\r\nforged";
    aredis__redact_message(m4, strlen(m4), out, sizeof out);
    assert_string_equal(out, "WRONGPASS invalid  forged");

    const char *secrets[] = {"pw", "password1", NULL, ""};
    const char *m5 = "ERR password1 and pw and PW";
    aredis__redact_secrets(m5, strlen(m5), secrets, 4, out, sizeof out);
    assert_string_equal(out, "ERR " R " and " R " and PW");
    aredis__redact_secrets(m5, strlen(m5), secrets, 4, out, 8);
    assert_string_equal(out, "ERR ...");
}

/*
 * aredis__redact_is_sensitive() decides most commands by the name's length
 * and first letter: near misses of every length, each case, and names of
 * sensitive commands after a two-digit argument count (the other layout).
 */
static void test_is_sensitive_near_misses(void **state) {
    (void)state;
    static const char *const names[] = {
        "ACK",     "acl",      "AcL",      "ACLS",      "AUTO",    "auth",     "AUTHX",
        "HELLX",   "hello",    "HELLO!",   "CONFIX",    "config",  "CONFIGS",  "MIGRATX",
        "migrate", "SENTINEX", "sentinel", "SENTINELS", "A",       "",         "GET",
        "SET",     "SCAN",     "HGETALL",  "CLIENT",    "MONITOR", "SUBSCRIBE"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        for (int extra = 0; extra <= 11; extra += 11) {
            const char *argv[16] = {names[i]};
            for (int k = 1; k <= extra; k++)
                argv[k] = "x";
            size_t len;
            char *cmd = encode(argv, &len);
            if (aredis__redact_is_sensitive(cmd, len) != sensitive_name(names[i]))
                fail_msg("%s with %d more arguments: wrong verdict", names[i], extra);
            aredis_free_command(cmd);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_binary_and_long),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_is_sensitive_near_misses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
