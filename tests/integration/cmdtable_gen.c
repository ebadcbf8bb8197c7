/*
 * The committed command table (src/proto/cmdtable_data.c) is what
 * tools/gencommands writes: run the built generator against a fresh server
 * of the fixture and compare its output with the committed file, byte for
 * byte. A difference means the table was edited by hand, or the generator
 * changed without `make commands`.
 *
 * The table names the server it came from ("redis 7.0.15"). When the
 * fixture's server is another version (REDIS_SERVER names another build),
 * the comparison means nothing: the program prints SKIP with both versions
 * and exits 77. It never skips when they match.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/cmdtable.h"
#include "ts.h"

#ifndef AREDIS_GENCOMMANDS
#error "tests/CMakeLists.txt defines AREDIS_GENCOMMANDS (the generator's path)"
#endif
#ifndef AREDIS_CMDTABLE_DATA
#error "tests/CMakeLists.txt defines AREDIS_CMDTABLE_DATA (the committed table)"
#endif

static ts_server *g_srv;

/* The whole file, NUL-terminated; *len its size. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        if (got == 0) break;
        n += got;
    }
    assert_false(ferror(f));
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Line number and text of the first difference, for the failure message. */
static void first_difference(const char *a, const char *b) {
    size_t line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
        a++;
        b++;
    }
    ts_log("first difference at line %zu:", line);
    ts_log("  committed: %.*s", (int)strcspn(la, "\n"), la);
    ts_log("  generated: %.*s", (int)strcspn(lb, "\n"), lb);
}

static void test_committed_table_is_generated(void **state) {
    (void)state;
    char out[1024], port[16];
    snprintf(out, sizeof out, "%s/cmdtable_data.c", ts_server_dir(g_srv));
    snprintf(port, sizeof port, "%d", ts_server_port(g_srv));
    pid_t pid = ts_fork();
    if (pid == 0) {
        execl(AREDIS_GENCOMMANDS, AREDIS_GENCOMMANDS, "--host", ts_server_host(g_srv), "--port",
              port, "--out", out, (char *)NULL);
        _exit(127);
    }
    ts_wait_child(pid, NULL, 0);

    size_t nc, ng;
    char *committed = slurp(AREDIS_CMDTABLE_DATA, &nc);
    char *generated = slurp(out, &ng);
    if (nc != ng || memcmp(committed, generated, nc) != 0) {
        first_difference(committed, generated);
        fail_msg("%s differs from what tools/gencommands writes for %s (%zu and %zu bytes): "
                 "run make commands",
                 AREDIS_CMDTABLE_DATA, aredis__cmdtable_source, nc, ng);
    }
    free(committed);
    free(generated);
}

/* "redis 7.0.15" for the running server, from its INFO (what the
 * generator reads). */
static void live_source(char *buf, size_t len) {
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = ts_client(loop, g_srv);
    aredis_future *f = ts_cmd(c, "INFO server");
    const aredis_reply *r = aredis_future_reply(f);
    assert_non_null(r);
    assert_non_null(r->str);
    ts_version v;
    assert_int_equal(ts_info_version(r->str, &v), 0);
    snprintf(buf, len, "%s %d.%d.%d", strcmp(v.product, "Valkey") == 0 ? "valkey" : "redis",
             v.major, v.minor, v.patch);
    aredis_future_release(f);
    aredis_client_free(c);
    aredis_loop_free(loop);
}

int main(void) {
    g_srv = ts_server_start_default();
    char source[64];
    live_source(source, sizeof source);
    if (strcmp(source, aredis__cmdtable_source) != 0) {
        printf("SKIP: the committed command table is from %s, the test server is %s: "
               "the generator's output for it is another table\n",
               aredis__cmdtable_source, source);
        ts_server_stop(g_srv);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_table_is_generated),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ts_server_stop(g_srv);
    return rc;
}
