/*
 * Test support: real redis-server processes on free loopback ports, and
 * helpers to drive a loop until a condition holds (never sleep-and-hope).
 *
 * Include this after <stdarg.h>, <stddef.h>, <setjmp.h> (ts.h does it), then
 * <cmocka.h> comes with it.
 */
#ifndef AREDIS_TS_H
#define AREDIS_TS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include "aredis/aredis.h"

/* ---- redis-server fixture --------------------------------------------- */

typedef struct ts_server ts_server;

/*
 * Start a redis-server on a free 127.0.0.1 port in a fresh temp dir, with
 * extra config lines (NULL-terminated array, may be NULL), e.g.
 *   {"requirepass secret", "enable-debug-command local", NULL}
 * Lines the server does not know and does not need are left out, logged:
 * "enable-debug-command" before Redis 7.0 (DEBUG is always allowed there).
 * Waits until it answers PING. If redis-server is missing: when the CI
 * environment variable is set the test FAILS; otherwise the process prints
 * "SKIP: ..." and exits 77 (CTest shows it as skipped).
 * `with_unix` also makes it listen on a unix socket in its dir.
 * Servers are killed at process exit, even when a test fails.
 */
ts_server *ts_server_start(const char *const *conf, int with_unix);
/* Start with no extra config. */
ts_server *ts_server_start_default(void);
int ts_server_port(const ts_server *s);
const char *ts_server_host(const ts_server *s); /* "127.0.0.1" */
const char *ts_server_unix(const ts_server *s); /* NULL unless with_unix */
const char *ts_server_dir(const ts_server *s);
pid_t ts_server_pid(const ts_server *s);
/* SIGKILL the process and reap it; the dir is kept for a restart. NULL
 * ignored (a teardown after a failed setup). */
void ts_server_kill(ts_server *s);
/* Start again on the same port, dir and config; waits until it answers. */
void ts_server_restart(ts_server *s);
/* Stop (SIGTERM, then SIGKILL), remove the dir, free. NULL ignored. */
void ts_server_stop(ts_server *s);
/* The server's own major version (e.g. 7; 8 for Valkey 8), 0 if unknown:
 * ts_server_version()->major. */
int ts_server_major_version(void);
/* A 127.0.0.1 port where nothing listens: a server's, once it is stopped. */
int ts_dead_port(void);

/* ---- The server's version and features -------------------------------- */

/*
 * The fixture's servers are whatever binary $REDIS_SERVER names (else
 * redis-server from the usual places and $PATH): Redis 6.2 and later, or
 * Valkey. Tests adapt to it through what follows; a test that needs what
 * the server lacks says so by name (ts_require) rather than failing or
 * passing silently.
 */
typedef struct ts_version {
    const char *product;     /* "Redis", "Valkey", or "unknown" */
    int major, minor, patch; /* its own version (Valkey's for Valkey); 0 if unknown */
    /* The Redis release it matches feature-wise, major * 100 + minor: 602
     * for Redis 6.2.x, 704 for 7.4.x; 702 for every Valkey so far (7.2,
     * 8.x: they report redis_version 7.2.4). 0 if unknown. */
    int redis_level;
} ts_version;

/* The server binary's version, from "<binary> --version" ("Redis server
 * v=7.0.15 ...", "Valkey server v=8.0.1 ..."): run once, then cached. */
const ts_version *ts_server_version(void);
/* "Redis 6.2.16", "Valkey 8.0.1 (Redis 7.2 features)", "an unknown server". */
const char *ts_server_describe(void);
/*
 * The version in an INFO reply's text (INFO or INFO server): Valkey's own
 * from valkey_version when there is one (its redis_version, 7.2.4, is then
 * the redis_level), else redis_version. 0 on success, -1 if neither is in it.
 */
int ts_info_version(const char *info, ts_version *out);

/* What some tests need that not every supported server has. */
typedef enum ts_feature {
    TS_FEATURE_CLIENT_INFO,      /* CLIENT INFO (Redis 6.2) */
    TS_FEATURE_GETEX,            /* GETEX (Redis 6.2) */
    TS_FEATURE_CLIENT_INFO_RESP, /* the resp= field of CLIENT INFO/LIST (Redis 7.0) */
    TS_FEATURE_DEBUG_DIRECTIVE,  /* the enable-debug-command directive (Redis 7.0;
                                    before it DEBUG is always allowed) */
    TS_FEATURE_SPUBLISH,         /* sharded pub/sub: SPUBLISH, SSUBSCRIBE (Redis 7.0) */
    TS_FEATURE_CLIENT_SETINFO,   /* CLIENT SETINFO, lib-name=/lib-ver= (Redis 7.2) */
    TS_FEATURE_HASH_FIELD_TTL,   /* HEXPIRE and friends (Redis 7.4; not Valkey 8) */
    TS_FEATURE_COUNT
} ts_feature;

/* 1 when the server has f (also when its version is unknown: the test then
 * runs and fails loudly rather than skipping). */
int ts_server_has(ts_feature f);
/* "the resp= field of CLIENT INFO (Redis 7.0+)". */
const char *ts_feature_name(ts_feature f);
/*
 * In a cmocka test: when the server lacks f, log
 * "# skipped: needs <feature>; the server is Redis 6.2.16" and skip() the
 * test (cmocka reports it SKIPPED). Use before the test does anything.
 */
void ts_require(ts_feature f);
/*
 * For a whole test program (call it in main()): when the server lacks f,
 * print "SKIP: needs <feature>; the server is ..." and exit 77 (CTest
 * reports the program skipped).
 */
void ts_require_or_exit(ts_feature f);

/* ---- Clients and waiting ---------------------------------------------- */

/* Options pointing at s (TCP). */
aredis_options ts_options(const ts_server *s);
/* A new client on loop connected to s; asserts it becomes ready. */
aredis_client *ts_client(aredis_loop *loop, const ts_server *s);
/* A new client on loop with options o; asserts it becomes ready (the failure
 * message carries the error's detail). */
aredis_client *ts_connect(aredis_loop *loop, const aredis_options *o);
/*
 * A new client on loop with options o, connected and waited for: returns the
 * ready future's outcome, the client in *out (caller frees, also on error)
 * and, when detail is not NULL, the error detail ("" on success).
 */
aredis_err ts_connect_err(aredis_loop *loop, const aredis_options *o, aredis_client **out,
                          char *detail, size_t dlen);
/* Wait until c (connect() already called) is ready or failed; the outcome,
 * and the error detail in detail when not NULL ("" on success). */
aredis_err ts_await_ready(aredis_client *c, char *detail, size_t dlen);

/* ---- Shared fixture: one default server, a loop, a connected client ---- */

typedef struct ts_env {
    ts_server *srv;
    aredis_loop *loop;
    aredis_client *c;
} ts_env;

/*
 * cmocka group setup / teardown: start a default redis-server, a loop and a
 * client connected to it (ts_env_setup), and free them (ts_env_teardown).
 * The env is stored in *state and is also returned by ts_env_get().
 */
int ts_env_setup(void **state);
int ts_env_teardown(void **state);
/* The env of the running group (NULL outside ts_env_setup..teardown). */
ts_env *ts_env_get(void);

/*
 * Run the loop until *flag becomes nonzero or timeout_ms passes. Returns 1
 * if the flag was set, 0 on timeout. Use assert_true(ts_wait(...)).
 */
int ts_wait(aredis_loop *loop, const volatile int *flag, uint64_t timeout_ms);
/* Run until *counter >= target, or timeout. */
int ts_wait_count(aredis_loop *loop, const volatile size_t *counter, size_t target,
                  uint64_t timeout_ms);
/* Run until done(arg) returns nonzero, or timeout: 1 if it did, 0 if not. */
int ts_wait_until(aredis_loop *loop, int (*done)(const void *), const void *arg,
                  uint64_t timeout_ms);

/* Monotonic milliseconds. */
uint64_t ts_now_ms(void);

/* Run a command synchronously through futures; returns the future (caller
 * releases), asserting it completed (with success or error). */
aredis_future *ts_cmd(aredis_client *c, const char *fmt, ...);
/* Assert the command succeeds and returns a STATUS "OK". */
void ts_cmd_ok(aredis_client *c, const char *fmt, ...);
/* Assert the command succeeds and returns a STRING of exactly these n bytes. */
void ts_cmd_bytes(aredis_client *c, const void *want, size_t n, const char *fmt, ...);

/*
 * A reply recorder for callback tests: pass a ts_result as the data of
 * ts_on_reply. Records what arrived; `done` and `calls` show it ran (and
 * how often); *done_counter, when set, is bumped on every completion.
 */
typedef struct ts_result {
    int done;
    int calls;
    aredis_err code;
    char prefix[32]; /* err->prefix of a server error */
    char text[160];  /* the reply's string (first element's, for a pair) */
    char text2[64];  /* the second element's string, for a 2-element array */
    aredis_reply_type type;
    long long integer;
    size_t elements;
    int had_reply;
    uint64_t at; /* ts_now_ms() at completion */
    size_t *done_counter;
} ts_result;
void ts_on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

/*
 * Issue n ECHOs of "<tag>-<i>" (i = 0..n-1), then a PING, in one loop turn,
 * and wait up to timeout_ms for every reply: each ECHO must get its own
 * token back, exactly once, as a string, and the PING its PONG. Replies
 * come in order, so once PONG is in nothing more can reach the ECHOs. A
 * failure says what came before: `after`. With n = 0: just the PING.
 */
void ts_echo_tokens(aredis_client *c, const char *tag, int n, uint64_t timeout_ms,
                    const char *after);

/* CLIENT ID of c's connection, asserting it is an integer. */
long long ts_client_id(aredis_client *c);
/*
 * The value of `field` (e.g. "db", "name", "resp") in the server's line
 * about c's own connection (CLIENT INFO; CLIENT LIST's line with c's id on
 * servers before 6.2), copied to out. 1 when the line has the field, 0 when
 * it does not (a field newer than the server: resp= before 7.0).
 */
int ts_client_field(aredis_client *c, const char *field, char *out, size_t outlen);

/*
 * A 127.0.0.1 listener that never accepts or answers (connects complete in
 * the kernel's backlog, then silence): for connect/handshake timeouts.
 * Returns the fd (close it when done) and sets *port.
 */
int ts_silent_listener(int *port);

/* Log a line to stderr prefixed with "# " (TAP-style comment). */
void ts_log(const char *fmt, ...);

/* A parametrised cmocka case: fn runs with *state = &param, as `name`. */
#define TS_CASE(name, fn, param)                                                                   \
    { name, fn, NULL, NULL, (void *)&(param) }

/*
 * Cases that each run on a loop of their own: a case that fails leaves its
 * clients behind (cmocka jumps out of it), and they must not report into
 * the next case; the loop of a case that passed is freed. List them as
 * TS_LOOP_CASE(fn) in the CMUnitTest array; ts_case_loop() is the running
 * case's loop.
 */
typedef struct ts_loop_case {
    void (*fn)(void **state);
} ts_loop_case;
void ts_loop_case_run(void **state);
int ts_loop_case_setup(void **state);
int ts_loop_case_teardown(void **state);
aredis_loop *ts_case_loop(void);
#define TS_LOOP_CASE(f)                                                                            \
    {                                                                                              \
#f, ts_loop_case_run, ts_loop_case_setup, ts_loop_case_teardown, &(ts_loop_case) { f }     \
    }

/* Run the loop until c has written more than `before` bytes in all
 * (aredis_client_stats.bytes_out): 1, or 0 after timeout_ms. */
int ts_wait_bytes_out(aredis_loop *loop, aredis_client *c, uint64_t before, uint64_t timeout_ms);

/* An aredis_pool_acquire() result: pass ts_on_acquired with a zeroed
 * ts_acquired as its data. */
typedef struct ts_acquired {
    int calls;
    aredis_client *c;
    aredis_err code;
} ts_acquired;
void ts_on_acquired(aredis_pool *p, aredis_client *c, const aredis_error *err, void *data);
/* Run the loop until the pool holds n idle connections: 1, or 0 after
 * timeout_ms. */
int ts_wait_pool_idle(aredis_loop *loop, aredis_pool *p, size_t n, uint64_t timeout_ms);

/* ---- Forked children ---------------------------------------------------- */

/*
 * fork() with stdio flushed first (nothing buffered is written twice),
 * asserting it worked. The child must leave with _exit(): no atexit handler
 * (the fixture's server sweep) may run in it.
 */
pid_t ts_fork(void);

/* A child that cannot use cmocka reports a failed check as a bit of its
 * exit status; `what` says what the bit means. */
typedef struct ts_child_check {
    int bit;
    const char *what;
} ts_child_check;

/*
 * Wait for the child pid (EINTR retried) and assert it exited with status 0.
 * A signal (a crash, or the child's alarm() against a hang) fails the test;
 * so does any other status, after logging what each of its bits listed in
 * checks[0..n) means (checks may be NULL).
 */
void ts_wait_child(pid_t pid, const ts_child_check *checks, size_t n);

/* ---- Counting allocator ------------------------------------------------- */

/*
 * Allocator hooks that count the library's heap: each block carries a
 * header with its requested size (aligned as malloc's blocks are), so the
 * counts are the bytes the library asked for and still holds, exactly
 * (unlike RSS, whatever the C library or a sanitizer caches). Install with
 * aredis_set_allocator(ts_heap_hooks()) before any block the hooks would
 * free is allocated; the counts are atomic (any thread may allocate).
 */
const aredis_allocator *ts_heap_hooks(void);
/* Zero every count (with nothing counted still live). */
void ts_heap_reset(void);
/* Bytes requested through the hooks and not yet freed. */
long long ts_heap_live(void);
/* Blocks allocated through the hooks and not yet freed. */
long long ts_heap_blocks(void);
/* The highest ts_heap_live() since the last reset; during a realloc the
 * old block counts as live until the new one is there. */
long long ts_heap_peak(void);

#endif
