/*
 * Test support: a scripted fake Redis server.
 *
 * It plays a script — "wait for a command, send these bytes, pause, close" —
 * to each connection it accepts, so a test can put any byte sequence in
 * front of the client: hostile lengths, garbage, a reply cut at a chosen
 * offset, silence. It runs in-process on its own thread, listening on a free
 * 127.0.0.1 port (loopback only), and allocates with the C library, never
 * through aredis_set_allocator() hooks (a test may count those).
 *
 *   ts_fake *f = ts_fake_new();
 *   ts_fake_hello3(f);                    // answer HELLO: RESP3, ready
 *   ts_fake_read_cmd(f, 1);               // wait for one full command
 *   ts_fake_send_str(f, "$-2\r\n");       // then answer garbage
 *   ts_fake_wait_eof(f, 5000);            // until the client hangs up
 *   ts_fake_start(f);
 *   o.port = ts_fake_port(f);
 *   ...
 *   ts_fake_stop(f);
 *
 * SCRIPTS: steps are added before ts_fake_start() and run in order on a
 * connection. ts_fake_next_conn() starts the script of the next connection;
 * the last script is reused for every connection after it. Connections are
 * served one at a time, in the order accepted (the client under test has one
 * at a time). A connection's script ends early when the peer closes (a read
 * step sees EOF) or a write fails; when the script ends the connection is
 * closed (FIN) unless a step already closed it.
 *
 * Commands are parsed as RESP arrays of bulk strings (what clients send) or
 * inline lines; bytes that are neither end the connection's script.
 * Every byte received is kept (up to 1 MiB) for ts_fake_received().
 *
 * Any setup failure fails the test (cmocka assertion): nothing returns NULL.
 */
#ifndef AREDIS_TS_FAKE_SERVER_H
#define AREDIS_TS_FAKE_SERVER_H

#include <stddef.h>

typedef struct ts_fake ts_fake;

/* A fake with an empty script, not yet listening. */
ts_fake *ts_fake_new(void);

/* ---- Script steps (call before ts_fake_start) ---------------------------- */

/* Wait for n complete commands from the client and drop them. */
void ts_fake_read_cmd(ts_fake *f, size_t n);
/* Read and drop exactly n bytes. */
void ts_fake_skip(ts_fake *f, size_t n);
/* Send bytes in one write (copied). */
void ts_fake_send(ts_fake *f, const void *data, size_t len);
void ts_fake_send_str(ts_fake *f, const char *s);
/* Send in two writes, the first of `at` bytes, pause_ms apart (so the
 * client reads them separately). */
void ts_fake_send_split(ts_fake *f, const void *data, size_t len, size_t at, unsigned pause_ms);
/* Send one byte per write, pause_ms between writes. */
void ts_fake_send_bytewise(ts_fake *f, const void *data, size_t len, unsigned pause_ms);
/* Wait for one command, then send `resp`: ts_fake_read_cmd + ts_fake_send. */
void ts_fake_reply(ts_fake *f, const char *resp);
/* Do nothing for ms milliseconds (still stoppable). */
void ts_fake_sleep(ts_fake *f, unsigned ms);
/* Close the connection now with a FIN; later steps of this script are
 * skipped. */
void ts_fake_close(ts_fake *f);
/* Close with a RST (SO_LINGER 0). */
void ts_fake_reset(ts_fake *f);
/* Read and drop everything until the client closes, or max_ms passes. */
void ts_fake_wait_eof(ts_fake *f, unsigned max_ms);
/* Answer every command with `resp` until the client closes. */
void ts_fake_serve(ts_fake *f, const char *resp);
/*
 * Answer every command, until the client closes, with an error quoting all
 * of its arguments back, as Redis does for an unknown command:
 *   -ERR unknown command 'AUTH', with args beginning with: 'pw'
 * (CR and LF in arguments become spaces).
 */
void ts_fake_serve_echo(ts_fake *f);
/*
 * Until the client closes, answer like a server with the lost-AUTH-error bug
 * of Redis 7.2 (the error reply of a failing AUTH is dropped when other
 * replies are pending on the connection). The commands completed by one
 * read() are one batch, answered in one write, in order:
 *   PING                 +PONG
 *   ECHO x               the bulk string x
 *   AUTH ..., HELLO ... AUTH ...
 *                        -WRONGPASS invalid username-password pair or user
 *                        is disabled. — but NO reply at all when any other
 *                        command is in the same batch (the server bug)
 *   HELLO (no AUTH)      -ERR unknown command 'HELLO' (the client falls back
 *                        to RESP2)
 *   anything else        the ts_fake_serve_echo() error
 */
void ts_fake_serve_auth_drop(ts_fake *f);

/*
 * The handshake of a client with default options (protocol 3, no password,
 * db or name): HELLO answered with a minimal RESP3 map — the client is READY
 * with RESP3.
 */
void ts_fake_hello3(ts_fake *f);
/*
 * The same client pushed to RESP2: HELLO answered "-ERR unknown command",
 * then its lone PING answered "+PONG" — READY with RESP2.
 */
void ts_fake_hello2(ts_fake *f);

/* The steps after this are the script of the next connection. */
void ts_fake_next_conn(ts_fake *f);

/* ---- Running ------------------------------------------------------------ */

/* Listen on a free 127.0.0.1 port and start the thread. */
void ts_fake_start(ts_fake *f);
int ts_fake_port(const ts_fake *f);
/* Connections accepted so far. */
size_t ts_fake_accepted(ts_fake *f);
/* Connections whose script has ended (and that are closed). */
size_t ts_fake_finished(ts_fake *f);
/* Complete commands read so far (by every step that reads commands). */
size_t ts_fake_commands(ts_fake *f);
/* A copy of every byte received so far (NUL-added, free() it); *len set. */
char *ts_fake_received(ts_fake *f, size_t *len);
/* Wake the thread, close everything, join, free. NULL is ignored. */
void ts_fake_stop(ts_fake *f);

#endif
