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
const char *ts_server_host(const ts_server *s);   /* "127.0.0.1" */
const char *ts_server_unix(const ts_server *s);   /* NULL unless with_unix */
const char *ts_server_dir(const ts_server *s);
pid_t ts_server_pid(const ts_server *s);
/* SIGKILL the process and reap it; the dir is kept for a restart. */
void ts_server_kill(ts_server *s);
/* Start again on the same port, dir and config; waits until it answers. */
void ts_server_restart(ts_server *s);
/* Stop (SIGTERM, then SIGKILL), remove the dir, free. NULL ignored. */
void ts_server_stop(ts_server *s);
/* "redis-server --version" major number (e.g. 7), 0 if unknown. */
int ts_server_major_version(void);

/* ---- Clients and waiting ---------------------------------------------- */

/* Options pointing at s (TCP). */
aredis_options ts_options(const ts_server *s);
/* A new client on loop connected to s; asserts it becomes ready. */
aredis_client *ts_client(aredis_loop *loop, const ts_server *s);

/*
 * Run the loop until *flag becomes nonzero or timeout_ms passes. Returns 1
 * if the flag was set, 0 on timeout. Use assert_true(ts_wait(...)).
 */
int ts_wait(aredis_loop *loop, const volatile int *flag, uint64_t timeout_ms);
/* Run until *counter >= target, or timeout. */
int ts_wait_count(aredis_loop *loop, const volatile size_t *counter, size_t target,
                  uint64_t timeout_ms);

/* Monotonic milliseconds. */
uint64_t ts_now_ms(void);

/* Run a command synchronously through futures; returns the future (caller
 * releases), asserting it completed (with success or error). */
aredis_future *ts_cmd(aredis_client *c, const char *fmt, ...);
/* Assert the command succeeds and returns a STATUS "OK". */
void ts_cmd_ok(aredis_client *c, const char *fmt, ...);

/* Log a line to stderr prefixed with "# " (TAP-style comment). */
void ts_log(const char *fmt, ...);

#endif
