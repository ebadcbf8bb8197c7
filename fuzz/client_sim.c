/*
 * Simulation testing of the whole client (libFuzzer target; replayed by the
 * test suite through fuzz/client_replay.c, CTest entry unit/client_sim; long
 * runs: scripts/fuzz-client.sh, `make fuzz-client`). docs/TESTING.md,
 * "Simulation testing of the client", says how to extend it.
 *
 * The REAL client (every file of src/) runs against three adversaries, all
 * driven by the fuzz input, one byte per decision, so that one input replays
 * one run exactly:
 *
 *   the loop        an aredis_loop vtable (aredis_loop_from_vtable) whose
 *                   clock is virtual (time moves only when the input says
 *                   so) and whose readiness is the harness's choice: a turn
 *                   reports only the events the input allows (the socket
 *                   must also really be ready: poll() with no wait), fires
 *                   timers before or after I/O, then runs the defers;
 *   the server      in this process, on a unix socket the harness listens
 *                   on and accept()s: it parses what the client wrote with
 *                   the project's own reader and answers from a small model
 *                   in which every data command's reply names the command
 *                   (ECHO t / GET t / GETDEL t answer "t"), so a reply
 *                   handed to the wrong command is seen at once. It answers
 *                   the handshake (HELLO 3 → a map; or "-ERR unknown
 *                   command" → RESP2 and PING; -LOADING; -WRONGPASS; a bad
 *                   SELECT; a close at accept), splits its output at any
 *                   byte, holds replies back while time passes (late
 *                   answers after timeouts), closes, resets, sends RESP3
 *                   pushes and attributes between replies, and sends a
 *                   surplus reply when nothing is owed;
 *   the application issues commands in every style (format, argv, _ex with
 *                   per-command timeouts and AREDIS_CMD_RETRYABLE, futures),
 *                   cancels and releases futures, and from inside any
 *                   callback issues more, closes, disconnects, frees or
 *                   reconnects. It also runs pipelines (1..N token commands,
 *                   callback or future, the pipeline freed right after its
 *                   exec or kept and reused) and transactions on a few
 *                   aredis_tx objects: queue, exec (callback, _ex, future),
 *                   WATCH (aredis_tx_watch: the connection is reserved),
 *                   reads between WATCH and EXEC (aredis_tx_command),
 *                   discard, free with a WATCH pending — and plain commands
 *                   while a reservation holds the line.
 *
 * The server also speaks MULTI/EXEC/WATCH/UNWATCH: +OK to MULTI, +QUEUED
 * (or, chosen by the input, an error: EXEC then answers -EXECABORT) to each
 * queued command, and to EXEC an array of the tokens (an element may be an
 * error) or, when the same transaction's WATCH was answered +OK on this
 * connection, nil (a WATCH abort). WATCH t answers +OK or -NOPERM naming t.
 * Per connection it tracks, as each command is received, the framing that
 * I3 and the reservation invariant below check.
 *
 * Pub/sub runs (about half: told by the first input byte, from values no
 * corpus file made before them starts with, so those replay as they did).
 * The server answers (P|S)(UN)SUBSCRIBE as Redis does, one confirmation
 * [kind, name, count] per name (a push on RESP3, an array on RESP2),
 * counting per connection channels and patterns together and shard
 * channels apart; a subscribe naming what its ACL refuses gets -NOPERM (and
 * nothing is subscribed), one of a shard channel it dropped gets -MOVED. A
 * RESP2 connection in subscribed mode runs nothing else: PING answers
 * ["pong", ""], any other command "-ERR Can't execute ... only
 * (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in
 * this context". Between replies, as the input says, it sends messages
 * (message/pmessage/smessage; the payload "m<seq>" numbers them over the
 * run) for names the connection is subscribed to, now and then drops a
 * subscribed shard channel on its own (an unsolicited sunsubscribe), and
 * its ACL may come to refuse a name (every connection subscribed to it is
 * then killed, as Redis 7 does). The application keeps three subscription
 * slots (handler or next(); max_buffered 1, 2, 5 or the default;
 * connection AUTO, SHARED or DEDICATED): subscribe and unsubscribe 1..3
 * names of a kind (callback or future), next() futures awaited, cancelled
 * and released, free — also from inside a handler, an event or any other
 * callback — with the plain commands, pipelines and transactions going on.
 * A dedicated subscriber connection is a second client the library makes
 * (aredis_client_new with the same options, on the same loop): the server
 * accepts its connections on the same socket and tells the two apart by
 * the order of their connect()s (the loop's io_new), and its jitter seed is
 * fixed as the client's is.
 *
 * The invariants, checked after every step, inside every callback and at
 * the end of the run (each failure names the invariant; the trace of the
 * last steps is printed; then abort()):
 *
 *   I1  every command callback (or future completion) runs at most once,
 *       exactly once by the end (after free at the latest), never for a
 *       command refused at issue, never inside the call that issued it;
 *   I2  a reply handed to command X is the model's reply for X (its token),
 *       and X's bytes had reached the server (the server drains its socket
 *       before checking): no misrouted reply, no reply for a command never
 *       written. A pipeline's result has one element per command, each its
 *       own command's reply; on failure it is a prefix of them, each one the
 *       server answered. An EXEC's result is exactly what the server
 *       answered to that transaction's EXEC: the array (element i names
 *       queued command i), nil, or -EXECABORT as AREDIS_ERR_SERVER;
 *   I3  a non-retryable command reaches the server at most once across
 *       reconnects; a retryable one at most once per connection. A batch
 *       (pipeline, transaction, WATCH, a transaction's read) is never
 *       written twice, and arrives whole: a pipeline's commands contiguous,
 *       MULTI + the transaction's commands + EXEC contiguous, nothing else
 *       between them on the connection;
 *   IR  reservation: between a WATCH of transaction T and T's EXEC or
 *       UNWATCH, the connection receives nothing but T's commands (and the
 *       client's health-check PING); T's EXEC, when T was watching, arrives
 *       on the connection that received T's WATCHes of that round; a
 *       command failed "because the WATCH ahead of it failed" belongs to a
 *       round (WATCH ... EXEC) one of whose WATCHes failed;
 *   I4  a request timeout fires no earlier than its deadline (virtual time)
 *       and no later than the loop turn after the first turn that began at
 *       or past it;
 *   I5  connection callbacks: on_disconnect only after on_connect, once;
 *       on_error at most once per connection attempt; reconnect attempts
 *       numbered 1, 2, 3... from each connect; on_connect only when READY;
 *   I6  aredis_client_pending() equals the commands the application still
 *       waits for (a pipeline, an exec, a WATCH, a read count one each) plus
 *       the UNWATCHes a transaction sends by itself (discard, free, a failed
 *       WATCH: counted in the client's queues, white box); an IDLE or CLOSED
 *       client waits for none; a future's is_done agrees with its
 *       completion; aredis_tx_size()/aredis_pipeline_size() agree with what
 *       the application queued;
 *   I7  the handshake comes first: no user command reaches a connection the
 *       server has not answered a handshake step on; the client writes only
 *       well-formed commands;
 *   I8  after free the client has left nothing on the loop (io, timers,
 *       defers) and no fd it watched open, and the library's heap (counted through
 *       aredis_set_allocator; the per-thread reply cache is flushed by
 *       setting the hooks again) is back where it was before the run;
 *   I9  liveness: once the input is exhausted the application discards its
 *       transactions (a WATCH left pending holds the connection), the server
 *       turns cooperative and virtual time runs on: every command then
 *       completes.
 *
 * Pub/sub (the application's model of what each subscription holds follows
 * the contract: a subscribe's names at the call, an unsubscribe's let go
 * at the call, a refused subscribe's names none, a DROPPED name gone):
 *
 *   I-P1 a message is delivered (to a handler or a next() future) only to a
 *        subscription that holds its name — at that moment for a handler;
 *        for next(), then or when the server sent it — on its own
 *        connection, all of its bytes sent by the server, as sent (kind,
 *        name); never to a freed subscription, never to a command
 *        callback. aredis_subscription_count() agrees with the model;
 *   I-P2 per subscription, messages are delivered in the server's order,
 *        none twice;
 *   I-P3 a subscribe/unsubscribe callback (future) runs exactly once (I1),
 *        succeeds only once the server has sent every confirmation of the
 *        (P|S)(UN)SUBSCRIBE it sent for the call (the names it had to send:
 *        for an unsubscribe, those no other subscription of the connection
 *        holds; none: no reply), with the last of them; fails with a server
 *        error only when the server sent that error for it;
 *   I-P4 a subscription buffers at most max_buffered messages (none with a
 *        handler);
 *   I-P5 after a reconnect, RESUBSCRIBED comes before any message of the
 *        new connection, and the first commands after the handshake there
 *        are the replay: one SUBSCRIBE per kind with every name then held
 *        (RESP2: only the names the server had — one whose subscribe was
 *        never written goes out with its own call, in order — so there
 *        I-P8 checks the outcome);
 *        a subscription that held names across the reconnect gets
 *        RESUBSCRIBED before a message of the new connection;
 *   I-P6 DROPPED only for a shard channel the server dropped on its own;
 *   I-P7 on a RESP2 connection shared with subscriptions, an ordinary
 *        command issued while a subscription there holds a name or a call
 *        is in flight is refused at the call (UNSUPPORTED); one accepted
 *        while nothing was subscribed never meets subscribed mode;
 *   I-P8 settled (nothing owed either way, the client READY), the server's
 *        subscriptions on each connection are exactly the names its
 *        subscriptions hold;
 *   and every next() future completes exactly once (I1, at the free at the
 *   latest), the library's heap is back at the end (I8) and I6 counts the
 *   client's own (UN)SUBSCRIBE.
 *
 * Observability (aredis/observe.h; an observer, metrics, both or neither,
 * chosen by the input's length so that the corpus keeps its meaning):
 *   I-O1 operation ids are unique and increasing; command_end runs once per
 *        command_start, after it, with its span; by the end of the run
 *        (after free at the latest) every started operation has ended;
 *   I-O2 with metrics too, the operations the metrics counted equal the
 *        ends the observer saw, and the timeouts among them.
 *
 * Input layout: a few bytes of options, then one step per byte (plus the
 * bytes each step takes for its own choices). When the input runs out,
 * every further choice is 0 (the benign one), the run settles and the
 * client is freed. AREDIS_SIM_TRACE=1 prints every step as it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "aredis/aredis.h"
/* White box for one field only: the client seeds its reconnect jitter from
 * its own address and the pid; a simulation replays exactly only if that
 * seed is fixed (aredis_client.rng, set right after aredis_client_new). */
#include "client/client_internal.h"
/* And the pub/sub side of the client (the protocol it speaks, whether RESP2
 * refuses commands, the subscribe batches in its queues): I-P7, I6. */
#include "client/feature.h"
#include "proto/slot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Bugs the simulation found in pub/sub, all fixed since: each macro, set to
 * 1 (-DSIM_KNOWN_BUG_...=1), puts back the workaround that kept the harness
 * off the path while the bug was open (to explore around a regression);
 * at 0, the default, the path is explored and the
 * fuzz/client_corpus/known-ps-* file named with it replays it. What each
 * was, and how it was fixed:
 *
 * PING_CANCEL: cancelling the future of an unsubscribe that needed no
 * server (features/pubsub.c, do_unsubscribe: its PING is issued with
 * aredis_command(), so future_of() has no command to attach the future
 * to) leaves the PING owed: aredis_client_pending() counts a command
 * nobody waits for any more (I6). known-ps-a-ping-cancel-pending.
 */
#ifndef SIM_KNOWN_BUG_PING_CANCEL
#define SIM_KNOWN_BUG_PING_CANCEL 0
#endif
/*
 * UNWRITTEN_CALL: a subscribe or unsubscribe changes the registry at the
 * call (features/pubsub.c, do_subscribe/do_unsubscribe), but its command
 * may never be written: its future cancelled, or timed out, while it
 * waits (aredis__cmd_abort takes it out of `waiting`), and call_done()
 * undoes nothing. An unsubscribe lost so leaves the connection subscribed
 * to names no subscription holds (RESP2: subscribed mode, every ordinary
 * command refused, for good on that connection); a subscribe lost so
 * holds names the server never subscribed (no message comes until a
 * reconnect replays them). I-P8 is skipped for a connection owner once
 * one of its calls ended CANCELLED or TIMEOUT.
 * known-ps-b-unsubscribe-cancelled-unwritten (with ORPHAN_CONFIRM at 0 too:
 * that gate keeps the calls from being cancelled or timing out).
 */
#ifndef SIM_KNOWN_BUG_UNWRITTEN_CALL
#define SIM_KNOWN_BUG_UNWRITTEN_CALL 0
#endif
/*
 * ORPHAN_CONFIRM: a subscribe or unsubscribe cancelled or timed out after
 * it was written stays at the head of `sent` as an orphan whose ps_call
 * call_done() has freed; its confirmation then reaches push.c's
 * aredis__push_route(), which asks hooks->confirms(c->sent.head->data, r)
 * (features/pubsub.c, on_confirms) about the freed call: a heap
 * use-after-free (ASan); without ASan the garbage most often says "not
 * mine", the confirmation is dropped as unsolicited and the orphan takes
 * the next reply: every later reply is handed to the command before its
 * own (I2). With it set, pub/sub runs neither cancel a call's future nor
 * give the client a default request timeout. known-ps-c-orphan-confirm.
 */
#ifndef SIM_KNOWN_BUG_ORPHAN_CONFIRM
#define SIM_KNOWN_BUG_ORPHAN_CONFIRM 0
#endif
/*
 * FREE_UNSUB_REFUSED: aredis_subscription_free() tells the server about
 * the names nobody else holds with an UNSUBSCRIBE through issue(), which
 * the client's admission refuses when max_queue_size is reached; the
 * refusal is dropped (call_free), so the connection stays subscribed to
 * names no subscription holds (RESP2 shared: subscribed mode, every
 * ordinary command refused while that connection lasts). I-P8 is skipped
 * for an owner once a subscription was freed on a full queue.
 * known-ps-d-free-unsubscribe-queue-full.
 */
#ifndef SIM_KNOWN_BUG_FREE_UNSUB_REFUSED
#define SIM_KNOWN_BUG_FREE_UNSUB_REFUSED 0
#endif
/*
 * FREE_IN_EVENT: aredis_subscription_free() of a subscription from inside
 * its own on_event leaks it (features/pubsub.c, sub_event: refs++ around
 * the call, then refs-- without sub_release(), so the reference the free
 * left is never dropped): I8, the heap grows by the subscription. With it
 * set, a subscription is not freed from inside its own event (it is at
 * the end of the run). known-ps-e-free-in-own-event.
 */
#ifndef SIM_KNOWN_BUG_FREE_IN_EVENT
#define SIM_KNOWN_BUG_FREE_IN_EVENT 0
#endif
/*
 * RESP2_RESERVED: on a RESP2 connection shared with subscriptions, a
 * subscribe (or unsubscribe, or a free that unsubscribes) issued while a
 * transaction's WATCH reserves the connection is held behind the
 * reservation, yet already counts as engaged (features/pubsub.c,
 * on_engaged: inflight), so aredis__pubsub_refuse() refuses the
 * transaction's own EXEC and UNWATCH (client/batch.c,
 * aredis__batch_submit): nothing can end the reservation, and the
 * subscribe and everything held behind it wait for good (I9). Likewise a
 * WATCH taken while a subscription is engaged, when the connection turns
 * out to speak RESP2 (a server without HELLO): the WATCH fails and its
 * UNWATCH is refused; or a WATCH issued before any subscription, sent
 * behind a replay (REPLAY_AHEAD). With it set, pub/sub runs make no WATCH,
 * and no call on the client's connection while it is reserved.
 * known-ps-f-resp2-subscribe-behind-watch, known-ps-g-resp2-fallback-watch.
 */
#ifndef SIM_KNOWN_BUG_RESP2_RESERVED
#define SIM_KNOWN_BUG_RESP2_RESERVED 0
#endif
/*
 * REPLAY_AHEAD: on RESP2, a command accepted at the call while nothing was
 * subscribed on the client's connection still reaches the server in
 * subscribed mode, and fails with its "only (P|S)SUBSCRIBE / ... allowed"
 * error: the replay after a reconnect (features/pubsub.c, on_ready, issued
 * from aredis__set_ready ahead of `waiting`) subscribes every name held
 * then — names of subscribe calls issued after the command and still
 * waiting included — before the commands that waited (and those resent),
 * though they were issued first (I-P7). With it set the check is off
 * (the server's refusal is taken as the command's reply).
 * known-ps-h-replay-ahead-of-earlier-command.
 */
#ifndef SIM_KNOWN_BUG_REPLAY_AHEAD
#define SIM_KNOWN_BUG_REPLAY_AHEAD 0
#endif
/*
 * UNSOLICITED_MATCH: a confirmation is matched to the (UN)SUBSCRIBE at the
 * head of `sent` by its kind alone (client/push.c, aredis__push_route;
 * features/pubsub.c, on_confirms), not by its name: the server's own
 * sunsubscribe of a shard channel (its slot moved) arriving while a
 * SUNSUBSCRIBE of other names is owed completes that call before the
 * server has answered it (I-P3), and the call's own confirmation, later,
 * goes to the next call of its kind or is taken for the server dropping
 * the name. The unsolicited one may be on its way to the client before
 * the call is even written, so with it set the server drops no shard
 * channel on its own at all (no DROPPED: I-P6 idle).
 * known-ps-i-unsolicited-taken-as-confirmation.
 */
#ifndef SIM_KNOWN_BUG_UNSOLICITED_MATCH
#define SIM_KNOWN_BUG_UNSOLICITED_MATCH 0
#endif
/*
 * ERROR_DROPS_HELD: a subscribe the server refuses (-NOPERM for one of its
 * names, -MOVED) takes every name of the call off the subscription
 * (features/pubsub.c, call_done), those it held before the call — and the
 * server had confirmed — included: the connection stays subscribed to
 * them, the registry has forgotten them (their messages are dropped; RESP2:
 * subscribed mode with nothing held). I-P8 is skipped for an owner once
 * that happened. known-ps-j-refused-subscribe-drops-held-names.
 */
#ifndef SIM_KNOWN_BUG_ERROR_DROPS_HELD
#define SIM_KNOWN_BUG_ERROR_DROPS_HELD 0
#endif
/*
 * NEXT_IN_OVERFLOW: aredis_subscription_next() called from inside the
 * OVERFLOW event: the event runs in the middle of ring_push()
 * (features/pubsub.c), which then buffers the message it was pushing even
 * though next() futures now wait; the next message goes straight to such
 * a future (deliver: take_next), ahead of the buffered one (I-P2: m38
 * delivered before m37, which a later next() returns). With it set, a
 * subscription's next() is not called from inside its OVERFLOW event.
 * known-ps-k-next-inside-overflow.
 */
#ifndef SIM_KNOWN_BUG_NEXT_IN_OVERFLOW
#define SIM_KNOWN_BUG_NEXT_IN_OVERFLOW 0
#endif
/*
 * ENDED_ITER: on_down (features/pubsub.c) walks st->subs running ENDED and
 * failing each subscription's next() futures, then sub_release(s) and
 * s = s->next: a subscription freed meanwhile from one of those callbacks
 * (a failed next()'s completion, the ENDED event) is freed by that
 * sub_release, and s->next is read from freed memory (ASan:
 * heap-use-after-free in on_down). With it set, the application does
 * nothing from inside ENDED or a failed next() completion.
 * known-ps-l-free-inside-ended (ASan).
 */
#ifndef SIM_KNOWN_BUG_ENDED_ITER
#define SIM_KNOWN_BUG_ENDED_ITER 0
#endif

#define MAX_STEPS 3000
#define SETTLE_ROUNDS 600
/* Pub/sub runs settle for at least this much virtual time (the longest
 * reconnect delay the options choose, jitter included, and then some). */
#define SETTLE_PS_MS 60000
#define TRACE_LINES 48

/* ---- The input ----------------------------------------------------------- */

static const uint8_t *g_in;
static size_t g_in_len, g_in_pos;

/* A choice in [0, n): one byte of input; 0 once the input is exhausted. */
static unsigned pick(unsigned n) {
    if (n <= 1 || g_in_pos >= g_in_len) return 0;
    return g_in[g_in_pos++] % n;
}
static int exhausted(void) { return g_in_pos >= g_in_len; }

/* ---- Trace and failure --------------------------------------------------- */

static char g_trace[TRACE_LINES][200];
static unsigned g_trace_n;
static int g_trace_live = -1;

static uint64_t sim_now(void);

static void trace(const char *fmt, ...) AREDIS_PRINTF(1, 2);
static void trace(const char *fmt, ...) {
    char *line = g_trace[g_trace_n++ % TRACE_LINES];
    int off = snprintf(line, 200, "[t=%llu] ", (unsigned long long)sim_now());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + off, (size_t)(200 - off), fmt, ap);
    va_end(ap);
    if (g_trace_live < 0) {
        const char *v = getenv("AREDIS_SIM_TRACE");
        g_trace_live = v && *v && *v != '0';
    }
    if (g_trace_live) fprintf(stderr, "  %s\n", line);
}

static char g_opts_desc[400];
static void cleanup_at_exit(void);

static void violation(const char *fmt, ...) AREDIS_PRINTF(1, 2);
static void violation(const char *fmt, ...) {
    fprintf(stderr, "\nclient_sim: INVARIANT VIOLATED: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nclient_sim: options: %s\nclient_sim: input byte %zu of %zu\n", g_opts_desc,
            g_in_pos, g_in_len);
    unsigned first = g_trace_n > TRACE_LINES ? g_trace_n - TRACE_LINES : 0;
    fprintf(stderr, "client_sim: the last %u step(s):\n", g_trace_n - first);
    for (unsigned i = first; i < g_trace_n; i++)
        fprintf(stderr, "  %s\n", g_trace[i % TRACE_LINES]);
    cleanup_at_exit(); /* the socket's temp dir: abort() skips atexit */
    abort();
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) violation(__VA_ARGS__);                                                       \
    } while (0)

/* ---- Observability (I-O1, I-O2) --------------------------------------------- */

static struct {
    int on;               /* an observer is set */
    aredis_metrics *m;    /* metrics are kept */
    uint64_t first;       /* this run's first id (ids are process-wide) */
    uint64_t last_id;     /* increasing */
    unsigned char *state; /* per id: 1 started, 2 ended */
    size_t cap;
    uint64_t starts, ends, timeouts;
} g_obs;

static void *obs_start(const aredis_op *op, void *data) {
    (void)data;
    /* Process-wide ids: this run's start where the previous run's ended. */
    if (!g_obs.first) g_obs.first = op->id;
    CHECK(op->id > g_obs.last_id, "I-O1: operation id %llu after %llu", (unsigned long long)op->id,
          (unsigned long long)g_obs.last_id);
    g_obs.last_id = op->id;
    uint64_t slot = op->id - g_obs.first + 1;
    if (slot >= g_obs.cap) {
        size_t cap = g_obs.cap ? g_obs.cap * 2 : 256;
        while (cap <= slot)
            cap *= 2;
        g_obs.state = realloc(g_obs.state, cap);
        if (!g_obs.state) abort();
        memset(g_obs.state + g_obs.cap, 0, cap - g_obs.cap);
        g_obs.cap = cap;
    }
    g_obs.state[slot] = 1;
    g_obs.starts++;
    return (void *)(uintptr_t)(op->id * 2 + 1); /* the span: checked at the end */
}

static void obs_end(const aredis_op *op, void *data) {
    (void)data;
    uint64_t slot = g_obs.first && op->id >= g_obs.first ? op->id - g_obs.first + 1 : 0;
    CHECK(slot >= 1 && slot < g_obs.cap && g_obs.state[slot] == 1,
          "I-O1: command_end for operation %llu, %s", (unsigned long long)op->id,
          slot && slot < g_obs.cap && g_obs.state[slot] == 2 ? "ended twice" : "never started");
    CHECK(op->span == (void *)(uintptr_t)(op->id * 2 + 1),
          "I-O1: operation %llu ended with "
          "another span",
          (unsigned long long)op->id);
    CHECK(op->duration_ns > 0, "I-O1: operation %llu ended with no duration",
          (unsigned long long)op->id);
    CHECK((op->outcome == AREDIS_ERR_OK) == (op->error_type == NULL),
          "I-O1: operation %llu: outcome %s with error.type %s", (unsigned long long)op->id,
          aredis_err_name(op->outcome), op->error_type ? op->error_type : "(none)");
    g_obs.state[slot] = 2;
    g_obs.ends++;
    if (op->outcome == AREDIS_ERR_TIMEOUT) g_obs.timeouts++;
}

static const aredis_observer k_sim_observer = {obs_start, obs_end, NULL, NULL, 0};

/* Set up what the input's length chooses (consumes no input byte). */
static void obs_setup(aredis_client *c, size_t size) {
    memset(&g_obs, 0, sizeof g_obs);
    unsigned mode = (unsigned)(size % 4);
    g_obs.on = mode & 1;
    if (g_obs.on)
        CHECK(aredis_client_set_observer(c, &k_sim_observer, NULL) == AREDIS_ERR_OK,
              "set_observer failed");
    if (mode & 2) {
        g_obs.m = aredis_metrics_new();
        CHECK(g_obs.m && aredis_client_set_metrics(c, g_obs.m) == AREDIS_ERR_OK,
              "set_metrics failed");
    }
}

/* After free: every start ended; the metrics agree (I-O1, I-O2). */
static void obs_finish(void) {
    if (g_obs.on) {
        CHECK(g_obs.starts == g_obs.ends, "I-O1: %llu operations started, %llu ended",
              (unsigned long long)g_obs.starts, (unsigned long long)g_obs.ends);
        for (uint64_t i = 1; g_obs.first && i <= g_obs.last_id - g_obs.first + 1; i++)
            CHECK(g_obs.state[i] == 2, "I-O1: operation %llu never ended",
                  (unsigned long long)(g_obs.first + i - 1));
    }
    if (g_obs.m) {
        aredis_metrics_snapshot *snap = aredis_metrics_snapshot_take(g_obs.m);
        CHECK(snap, "metrics snapshot failed");
        uint64_t n = 0, to = 0;
        for (size_t i = 0; i < snap->n_ops; i++)
            n += snap->ops[i].duration.count;
        for (size_t i = 0; i < snap->n_servers; i++)
            to += snap->servers[i].timeouts;
        if (g_obs.on)
            CHECK(n == g_obs.ends && to == g_obs.timeouts,
                  "I-O2: the metrics counted %llu operations (%llu timeouts), the observer saw "
                  "%llu (%llu)",
                  (unsigned long long)n, (unsigned long long)to, (unsigned long long)g_obs.ends,
                  (unsigned long long)g_obs.timeouts);
        char *text = aredis_metrics_prometheus(snap, NULL);
        CHECK(text, "prometheus text failed");
        aredis_mem_free(text);
        aredis_metrics_snapshot_free(snap);
        aredis_metrics_free(g_obs.m);
    }
    free(g_obs.state);
    memset(&g_obs, 0, sizeof g_obs);
}

/* ---- The library's heap, counted ------------------------------------------ */

typedef struct {
    size_t size;
    size_t pad; /* keeps the payload 16-byte aligned */
} mhdr;

static long long g_live_bytes, g_live_blocks;

static void *cnt_malloc(size_t n) {
    mhdr *h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    g_live_bytes += (long long)n;
    g_live_blocks++;
    return h + 1;
}
static void *cnt_calloc(size_t nmemb, size_t size) {
    if (size && nmemb > ((size_t)-1 - sizeof(mhdr)) / size) return NULL;
    mhdr *h = calloc(1, sizeof *h + nmemb * size);
    if (!h) return NULL;
    h->size = nmemb * size;
    g_live_bytes += (long long)h->size;
    g_live_blocks++;
    return h + 1;
}
static void *cnt_realloc(void *p, size_t n) {
    if (!p) return cnt_malloc(n);
    mhdr *h = (mhdr *)p - 1;
    size_t old = h->size;
    mhdr *nh = realloc(h, sizeof *nh + n);
    if (!nh) return NULL;
    nh->size = n;
    g_live_bytes += (long long)n - (long long)old;
    return nh + 1;
}
static void cnt_free(void *p) {
    if (!p) return;
    mhdr *h = (mhdr *)p - 1;
    g_live_bytes -= (long long)h->size;
    g_live_blocks--;
    free(h);
}
static const aredis_allocator g_counting = {cnt_malloc, cnt_calloc, cnt_realloc, cnt_free};

/* ---- The deterministic loop ----------------------------------------------- */

typedef struct sim_io {
    struct sim_io *next;
    int fd;
    aredis_io_fn *cb;
    void *arg;
    int events;
    int dead;
} sim_io;

typedef struct sim_timer {
    struct sim_timer *next;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t due;
    uint64_t seq; /* when it was armed: ties fire in arming order */
    int armed;
    int dead;
} sim_timer;

typedef struct sim_defer {
    struct sim_defer *next;
    aredis_timer_fn *cb;
    void *arg;
    uint64_t seq;
    int armed;
    int dead;
} sim_defer;

typedef struct sim_loop {
    uint64_t now;
    uint64_t seq;
    sim_io *ios;
    sim_timer *timers;
    sim_defer *defers;
    int in_turn;
    /* this turn's policy, set by the harness */
    int allow; /* AREDIS_EV_* that may be reported */
    int timers_first;
} sim_loop;

static sim_loop g_loop;

static uint64_t sim_now(void) { return g_loop.now; }

static void on_io_new(void *arg);

/* Every fd the client watched in this run: all closed by the end (I8). */
static int g_fds[64];
static unsigned g_nfds;

static void *l_io_new(void *ld, int fd, aredis_io_fn *cb, void *arg) {
    sim_loop *l = ld;
    for (sim_io *o = l->ios; o; o = o->next)
        CHECK(o->dead || o->fd != fd, "loop contract: a second watcher for fd %d", fd);
    sim_io *io = calloc(1, sizeof *io);
    if (!io) abort();
    if (g_nfds < sizeof g_fds / sizeof *g_fds) g_fds[g_nfds++] = fd;
    io->fd = fd;
    io->cb = cb;
    io->arg = arg;
    sim_io **pp = &l->ios;
    while (*pp)
        pp = &(*pp)->next;
    *pp = io;
    on_io_new(arg);
    return io;
}
static void l_io_set(void *h, int events) {
    sim_io *io = h;
    CHECK(!io->dead, "loop contract: io_set on a freed watcher");
    io->events = events;
}
static void l_io_free(void *h) {
    sim_io *io = h;
    CHECK(!io->dead, "loop contract: io watcher freed twice");
    CHECK(fcntl(io->fd, F_GETFD) != -1, "loop contract: fd %d closed before its watcher was freed",
          io->fd);
    io->dead = 1;
    io->events = 0;
}
static void *l_timer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    sim_loop *l = ld;
    sim_timer *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->cb = cb;
    t->arg = arg;
    sim_timer **pp = &l->timers;
    while (*pp)
        pp = &(*pp)->next;
    *pp = t;
    return t;
}
static void l_timer_arm(void *h, uint64_t ms) {
    sim_timer *t = h;
    CHECK(!t->dead, "loop contract: timer_arm on a freed timer");
    t->due = g_loop.now + ms;
    t->seq = ++g_loop.seq;
    t->armed = 1;
}
static void l_timer_cancel(void *h) {
    sim_timer *t = h;
    CHECK(!t->dead, "loop contract: timer_cancel on a freed timer");
    t->armed = 0;
}
static void l_timer_free(void *h) {
    sim_timer *t = h;
    CHECK(!t->dead, "loop contract: timer freed twice");
    t->dead = 1;
    t->armed = 0;
}
static void *l_defer_new(void *ld, aredis_timer_fn *cb, void *arg) {
    sim_loop *l = ld;
    sim_defer *d = calloc(1, sizeof *d);
    if (!d) abort();
    d->cb = cb;
    d->arg = arg;
    sim_defer **pp = &l->defers;
    while (*pp)
        pp = &(*pp)->next;
    *pp = d;
    return d;
}
static void l_defer_arm(void *h) {
    sim_defer *d = h;
    CHECK(!d->dead, "loop contract: defer_arm on a freed defer");
    if (!d->armed) {
        d->armed = 1;
        d->seq = ++g_loop.seq;
    }
}
static void l_defer_free(void *h) {
    sim_defer *d = h;
    CHECK(!d->dead, "loop contract: defer freed twice");
    d->dead = 1;
    d->armed = 0;
}

/* Free what was freed, now that no callback is running over the lists. */
static void l_sweep(sim_loop *l) {
    for (sim_io **pp = &l->ios; *pp;) {
        sim_io *o = *pp;
        if (o->dead)
            *pp = o->next, free(o);
        else
            pp = &o->next;
    }
    for (sim_timer **pp = &l->timers; *pp;) {
        sim_timer *t = *pp;
        if (t->dead)
            *pp = t->next, free(t);
        else
            pp = &t->next;
    }
    for (sim_defer **pp = &l->defers; *pp;) {
        sim_defer *d = *pp;
        if (d->dead)
            *pp = d->next, free(d);
        else
            pp = &d->next;
    }
}

static int l_alive(const sim_loop *l) {
    for (sim_io *o = l->ios; o; o = o->next)
        if (!o->dead && o->events) return 1;
    for (sim_timer *t = l->timers; t; t = t->next)
        if (t->armed) return 1;
    for (sim_defer *d = l->defers; d; d = d->next)
        if (d->armed) return 1;
    return 0;
}

static void l_run_io(sim_loop *l) {
    /* Watchers made during this phase wait for the next turn. */
    sim_io *last = l->ios;
    while (last && last->next)
        last = last->next;
    for (sim_io *o = l->ios; o; o = o->next) {
        if (!o->dead && o->events) {
            struct pollfd p = {o->fd, 0, 0};
            if (o->events & AREDIS_EV_READ) p.events |= POLLIN;
            if (o->events & AREDIS_EV_WRITE) p.events |= POLLOUT;
            int ev = 0;
            if (poll(&p, 1, 0) > 0) {
                if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) ev = o->events;
                if (p.revents & POLLIN) ev |= AREDIS_EV_READ;
                if (p.revents & POLLOUT) ev |= AREDIS_EV_WRITE;
            }
            ev &= o->events & l->allow;
            if (ev) o->cb(o->arg, ev);
        }
        if (o == last) break;
    }
}

static void l_run_timers(sim_loop *l) {
    uint64_t limit = l->seq; /* armed during this phase: next turn */
    for (;;) {
        sim_timer *best = NULL;
        for (sim_timer *t = l->timers; t; t = t->next)
            if (t->armed && !t->dead && t->due <= l->now && t->seq <= limit &&
                (!best || t->due < best->due || (t->due == best->due && t->seq < best->seq)))
                best = t;
        if (!best) return;
        best->armed = 0;
        best->cb(best->arg);
    }
}

static int l_run_once(void *ld, int block) {
    (void)block; /* nothing blocks: time moves only when the harness says */
    sim_loop *l = ld;
    CHECK(!l->in_turn, "run_once re-entered from inside a loop callback");
    l->in_turn = 1;
    if (l->timers_first) l_run_timers(l);
    l_run_io(l);
    if (!l->timers_first) l_run_timers(l);
    for (int rounds = 0;; rounds++) {
        CHECK(rounds < 1000, "defers re-armed themselves 1000 times in one turn");
        sim_defer *best = NULL;
        for (sim_defer *d = l->defers; d; d = d->next)
            if (d->armed && !d->dead && (!best || d->seq < best->seq)) best = d;
        if (!best) break;
        best->armed = 0;
        best->cb(best->arg);
    }
    l->in_turn = 0;
    l_sweep(l);
    return l_alive(l);
}

static uint64_t l_now_ms(void *ld) { return ((sim_loop *)ld)->now; }
static void l_cleanup(void *ld) { (void)ld; }
/* The wake handle aredis_loop_from_vtable() makes for aredis_loop_post():
 * the simulated application has one thread and posts nothing, so it is made
 * and freed, never signalled. */
static int g_wake;
static void *l_wake_new(void *ld, aredis_timer_fn *cb, void *arg) {
    (void)ld, (void)cb, (void)arg;
    return &g_wake;
}
static void l_wake_signal(void *w) { (void)w; }
static void l_wake_free(void *w) { (void)w; }

static const aredis_loop_vtable g_vtable = {
    l_io_new,     l_io_set,    l_io_free,     l_timer_new,  l_timer_arm, l_timer_cancel,
    l_timer_free, l_defer_new, l_defer_arm,   l_defer_free, l_run_once,  l_now_ms,
    l_cleanup,    l_wake_new,  l_wake_signal, l_wake_free,
};

/* The earliest armed timer's due time, or 0. */
static uint64_t l_next_due(void) {
    uint64_t best = 0;
    for (sim_timer *t = g_loop.timers; t; t = t->next)
        if (t->armed && !t->dead && (!best || t->due < best)) best = t->due;
    return best;
}

/* ---- The run's state --------------------------------------------------------- */

/* The kinds of record: the first K_WIRE are commands the server sees with
 * their token (WATCH's key is its token); a pipeline or an exec is the
 * record of a whole batch (its commands are records of their own). */
enum { K_ECHO, K_GET, K_GETDEL, K_SUBSCRIBE, K_WATCH, K_PIPE, K_EXEC, K_PSUB, K_NEXT };
#define K_WIRE 5
static const char *const k_names[] = {"ECHO",     "GET",  "GETDEL",      "SUBSCRIBE", "WATCH",
                                      "PIPELINE", "EXEC", "PUBSUB-CALL", "NEXT"};

/* What the server answered to an EXEC (OUT_CTX: a RESP2 subscribed
 * connection refused it). */
enum { OUT_NONE, OUT_ARRAY, OUT_NIL, OUT_ABORT, OUT_CTX };

struct simsub;

typedef struct rec {
    unsigned id;
    char tok[24];
    int kind;
    int style;
    int retryable;
    int has_deadline;
    uint64_t deadline;
    uint64_t issued_at;
    int refused;
    int calls;        /* completions seen */
    int overdue;      /* turns begun at or past its deadline while pending */
    aredis_future *f; /* futures: the caller's reference, until released */
    int released;
    int cancel_asked;
    /* the server's view */
    int seen;            /* times its bytes reached the server */
    unsigned seen_conn;  /* the connection they last came on */
    int answered;        /* the server has answered it */
    unsigned reply_conn; /* where: the connection */
    uint64_t reply_end;  /* and the end of its reply in that connection's output */
    int reply_sent;      /* all of its reply was sent before the server closed */
    /* batches */
    int in_batch;         /* queued in a pipeline or transaction: no callback */
    struct rec *parent;   /* in_batch, once executed: the pipeline or exec */
    unsigned slot;        /* its index there */
    struct rec **slots;   /* K_PIPE, K_EXEC: the commands, in order */
    unsigned nslots;      /* how many */
    unsigned txi;         /* the transaction it belongs to (unique id), 0: none */
    unsigned round;       /* its transaction's watch round when issued */
    int watched;          /* K_EXEC, a read: issued while its transaction was watching */
    int outcome;          /* K_EXEC: what the server answered (OUT_*) */
    int watch_failed;     /* K_WATCH: completed with an error or an error reply */
    int blamed;           /* failed "because the WATCH ahead of it failed": 1 to check, 2 done */
    unsigned issued_conn; /* K_WATCH issued while READY: the connection it went out on */
    int ctx_err;          /* the server refused it: a RESP2 subscribed connection */
    int issued_resp2;     /* accepted at the call by a client speaking RESP2 */
    /* pub/sub: K_PSUB (a subscribe or unsubscribe call), K_NEXT (a next() future) */
    struct simsub *sub;
    int pkind, unsub, ping_path, owner;
    unsigned char names[4], wire[4];
    unsigned nnames, nwire;
    unsigned new_mask; /* a subscribe: the names its subscription did not hold before */
} rec;

/* A transaction of the application, and what it has queued. */
typedef struct simtx {
    aredis_tx *tx;
    unsigned txi;   /* unique over the run */
    unsigned round; /* a new one at every reset (exec, discard, WATCH lost) */
    int watching;   /* a WATCH was accepted since the last reset */
    rec **q;        /* queued, not executed */
    size_t nq, capq;
} simtx;
#define NTX 3

typedef struct sconn {
    struct sconn *next;
    int fd;
    unsigned id;
    aredis_reader *rd;
    char *out;
    size_t olen, ocap;
    uint64_t out_total, out_sent; /* bytes ever queued, ever sent */
    aredis_reply **cmds;          /* parsed, not answered yet */
    size_t ncmds, capcmds;
    int hs_mode;
    int proto;
    int authed;
    int eof;
    /* framing, as commands are received (I3, IR) */
    rec *open_pipe;      /* a pipeline whose commands are arriving */
    unsigned pipe_next;  /* the index of its next one */
    int multi;           /* MULTI received, its EXEC not yet */
    rec *multi_exec;     /* the block's transaction (from its first command) */
    unsigned multi_n;    /* its commands received */
    unsigned window_txi; /* a WATCH of this transaction received, no EXEC/UNWATCH yet */
    rec *window_watch;   /* the WATCH that opened it */
    int window_void;     /* disconnect() was called: held commands go out anyway */
    /* the answering side's MULTI state */
    int a_multi, a_bad;
    rec *a_exec;
    unsigned a_watch_txi; /* a WATCH of it answered +OK, no EXEC/UNWATCH yet */
    rec *a_ctx_exec;      /* a transaction block refused by a subscribed RESP2 connection */
    /* pub/sub */
    int owner;      /* OW_MAIN: the client's connection; OW_DED: its subscriber one */
    unsigned ps[3]; /* subscribed names per kind (bits), as Redis counts them */
    unsigned moved; /* shard channels dropped by the server on its own (their slot moved) */
    struct {        /* the first commands after the handshake (the replay, I-P5) */
        int kind, unsub, other;
        unsigned mask, n;
    } first[8];
    unsigned nfirst;
    int rp_known; /* the replay expected on it is known (a RESUBSCRIBED was seen) */
    unsigned rp_expect[3], rp_matched, rp_checked;
    unsigned rp_shard_matched; /* shard channels replayed so far (one slot per command) */
    unsigned rp_refused;       /* kinds whose replay the server refused (the names stay) */
} sconn;

/* ---- Pub/sub: the application's subscriptions, the server's messages ---- */

#define NSUB 3  /* subscription slots of the application */
#define NNAME 4 /* names n0..n3, of each kind (a channel n1 is not the shard channel n1) */
enum { OW_MAIN = 1, OW_DED = 2 }; /* whose connection: the client's, or its subscriber's */
static const char *const k_ps_sub[3] = {"subscribe", "psubscribe", "ssubscribe"};
static const char *const k_ps_unsub[3] = {"unsubscribe", "punsubscribe", "sunsubscribe"};
static const char *const k_ps_msg[3] = {"message", "pmessage", "smessage"};
static const char *const k_ps_names[NNAME] = {"n0", "n1", "n2", "n3"};
static const char *const k_ps_conn[3] = {"auto", "shared", "dedicated"};

/* A subscription of the application and its model of what it holds. */
typedef struct simsub {
    aredis_subscription *s;
    unsigned id;
    int handler;   /* on_message set (else next()) */
    size_t maxbuf; /* max_buffered */
    int conn_mode; /* AREDIS_SUB_AUTO/SHARED/DEDICATED */
    int owner;     /* OW_MAIN or OW_DED: the connection it lives on */
    int freed;
    unsigned held[3];              /* names held, per kind (bits): the model */
    uint64_t drop_epoch[3][NNAME]; /* when each name was last let go */
    unsigned last_seq;             /* the last message delivered to it */
    unsigned last_msg_conn;        /* the connection that message came on */
    unsigned cont_conn;            /* that connection, while names are held since */
    uint64_t hold_since;           /* the epoch it last began to hold names */
    unsigned resub_conn;           /* the connection of its last RESUBSCRIBED */
    int in_handler;
    int in_event;
    int in_overflow;
} simsub;

/* A message the server queued: seq is in its payload ("m<seq>"). */
typedef struct psmsg {
    unsigned conn;
    int owner, kind, name;
    uint64_t end;        /* its end in the connection's output */
    int sent, dead;      /* all its bytes sent / never will be */
    uint64_t sent_epoch; /* the model's epoch when it was sent */
} psmsg;

/* A (P|S)(UN)SUBSCRIBE the server answered: what a call's completion is
 * checked against (I-P3). */
typedef struct pscall {
    unsigned conn;
    int owner, kind, unsub, error, sent, claimed;
    unsigned char names[16];
    unsigned n;
    uint64_t end; /* the end of its last confirmation (or error) */
} pscall;

enum { HS_OK, HS_FALLBACK, HS_LOADING, HS_AUTHFAIL, HS_SELECTFAIL, HS_DROP };
static const char *const k_hs_names[] = {"ok",       "fallback-resp2", "loading",
                                         "authfail", "selectfail",     "drop"};

static struct {
    aredis_options o;
    aredis_loop *loop;
    aredis_client *c;
    int freed;
    int ever_closed;     /* close() or free() was called */
    int ever_disconnect; /* disconnect() was called */
    int in_issue;        /* inside a call that issues a command, or connect() */
    int react_depth;
    rec **recs;
    size_t nrecs, caprecs;
    /* connection callbacks */
    int up;
    int errored; /* on_error ran since the last connection attempt began */
    unsigned last_attempt;
    unsigned attempts, connects, disconnects, errors, pushes;
    /* the server */
    sconn *conns;
    unsigned conn_seq;
    int mute; /* the server reads but does not answer */
    unsigned surplus_seq;
    unsigned subscribe_rate; /* 1 in N commands is a SUBSCRIBE; 0: none */
    unsigned eager;          /* the server answers after a step: 0 only when told,
                                1 one step in two, 2 every step */
    int windows_void;        /* from disconnect() to the next connect() */
    /* batches */
    simtx tx[NTX];
    unsigned txi_seq, round_seq;
    aredis_pipeline *pipe; /* a long-lived pipeline, reused */
    rec **pq;              /* what it holds */
    size_t npq, cappq;
    /* pub/sub (a pub/sub run: S.ps) */
    int ps;
    simsub *slot[NSUB]; /* the application's live subscriptions */
    simsub **subs;      /* every one made in the run */
    size_t nsubs, capsubs;
    psmsg *msgs;
    size_t nmsgs, capmsgs, msg_lo;
    pscall *pcalls;
    size_t npcalls, cappcalls;
    unsigned acl[3];          /* names the server's ACL refuses, per kind (bits) */
    unsigned unsol[3];        /* per owner: shard names the server dropped on its own */
    uint64_t epoch;           /* bumped at every change of the model */
    unsigned char fifo[4096]; /* the owner of each connection attempt, in connect order */
    unsigned fifo_in, fifo_out;
    unsigned last_conn[3];  /* per owner: the latest connection accepted */
    int lost_call[3];       /* per owner: a call ended CANCELLED/TIMEOUT (UNWRITTEN_CALL) */
    unsigned ps_refused[3]; /* per owner: kinds a subscribe of was refused (NOPERM, MOVED) */
    uint64_t *resub;        /* per connection: the subscriptions told RESUBSCRIBED (bit id%64) */
    size_t nresub;
    aredis_client *ded; /* the client's subscriber connection (white box) */
} S;

/* Totals over the process, for AREDIS_SIM_STATS=1: what the runs reached. */
static struct {
    unsigned long runs, steps, issued, refused, refused_by[AREDIS_ERR__COUNT], ok, server_err,
        by_code[AREDIS_ERR__COUNT];
    unsigned long connects, errors, reconnects, pushes, surplus, conns, turns;
    unsigned long pipelines, pipe_ok, txs, tx_array, tx_nil, tx_abort, watches, watch_ok, tx_reads,
        discards, tx_frees, held_seen, pipe_partial, pipe_eof_partial;
    unsigned long ps_runs, ps_subs, ps_dedicated, ps_calls, ps_call_ok, ps_call_err, ps_pings,
        ps_nexts, ps_published, ps_by_handler, ps_by_next, ps_resub, ps_overflow, ps_dropped,
        ps_errors, ps_ended, ps_unsol, ps_ctx, ps_refused_resp2, ps_acl, ps_converged;
} g_stat;

static void on_new_attempt(void);

/* A connection attempt (the loop's io_new, right after its connect()):
 * whose it is, for the server to know when it accepts it. The subscriber
 * connection's client, seen here first, gets a fixed jitter seed too. */
static void on_io_new(void *arg) {
    int owner = OW_MAIN;
    if (S.ps && S.c && arg != (void *)S.c) {
        owner = OW_DED;
        if (S.ded != arg) {
            S.ded = arg;
            S.ded->rng = 0x2545F4914F6CDD1Dull ^ (uint64_t)g_in_len;
            g_stat.ps_dedicated++;
        }
    }
    CHECK(S.fifo_in - S.fifo_out < sizeof S.fifo, "harness: too many connections not accepted");
    S.fifo[S.fifo_in++ % sizeof S.fifo] = (unsigned char)owner;
    if (owner == OW_MAIN) on_new_attempt();
}

static int g_listen_fd = -1;
static char g_dir[64], g_path[108];

static rec *rec_by_token(const char *s, size_t len) {
    if (len < 2 || len > 12 || s[0] != 't') return NULL;
    unsigned long id = 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return NULL;
        id = id * 10 + (unsigned long)(s[i] - '0');
    }
    return id < S.nrecs ? S.recs[id] : NULL;
}

/* The commands (and pub/sub calls) still owed a completion; main: only
 * those the client counts itself, less its (UN)SUBSCRIBE batches (counted
 * apart, white box: I6). */
static size_t pending_count_ex(int main_only) {
    size_t n = 0;
    for (size_t i = 0; i < S.nrecs; i++) {
        const rec *x = S.recs[i];
        if (x->refused || x->in_batch || x->calls || x->kind == K_NEXT) continue;
        if (main_only && x->kind == K_PSUB && (x->owner != OW_MAIN || !x->ping_path)) continue;
        n++;
    }
    return n;
}
static size_t pending_count(void) { return pending_count_ex(0); }

/* Append x to a growable array of records. */
static void recs_push(rec ***arr, size_t *n, size_t *cap, rec *x) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *arr = realloc(*arr, *cap * sizeof **arr);
        if (!*arr) abort();
    }
    (*arr)[(*n)++] = x;
}

/* ---- The server --------------------------------------------------------------- */

static void s_put(sconn *s, const char *p, size_t n) {
    if (s->olen + n > s->ocap) {
        size_t cap = s->ocap ? s->ocap : 256;
        while (cap < s->olen + n)
            cap *= 2;
        char *nb = realloc(s->out, cap);
        if (!nb) abort();
        s->out = nb;
        s->ocap = cap;
    }
    memcpy(s->out + s->olen, p, n);
    s->olen += n;
    s->out_total += n;
}
static void s_puts(sconn *s, const char *p) { s_put(s, p, strlen(p)); }
static void s_bulk(sconn *s, const char *p, size_t n) {
    char h[32];
    snprintf(h, sizeof h, "$%zu\r\n", n);
    s_puts(s, h);
    s_put(s, p, n);
    s_puts(s, "\r\n");
}

/* The latest live connection of an owner (the client's: OW_MAIN). */
static sconn *s_latest(int owner) {
    sconn *best = NULL;
    for (sconn *s = S.conns; s; s = s->next)
        if (!s->eof && s->owner == owner && (!best || s->id > best->id)) best = s;
    return best;
}
static sconn *s_current(void) { return s_latest(OW_MAIN); }

static sconn *s_by_id(unsigned id) {
    for (sconn *s = S.conns; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

/* What the server has sent of a connection's output is final once it is
 * closed: the messages and confirmations it had sent, the client can read;
 * the others never reach it. */
static void ps_conn_over(sconn *s) {
    for (size_t i = S.msg_lo; i < S.nmsgs; i++) {
        psmsg *m = &S.msgs[i];
        if (m->conn != s->id || m->sent || m->dead) continue;
        if (m->end <= s->out_sent) {
            m->sent = 1;
            m->sent_epoch = S.epoch;
        } else {
            m->dead = 1;
        }
    }
    for (size_t i = 0; i < S.npcalls; i++)
        if (S.pcalls[i].conn == s->id && S.pcalls[i].end <= s->out_sent) S.pcalls[i].sent = 1;
}

static void s_free(sconn *s) {
    ps_conn_over(s);
    if (s->fd >= 0) close(s->fd);
    aredis_reader_free(s->rd);
    for (size_t i = 0; i < s->ncmds; i++)
        aredis_reply_free(s->cmds[i]);
    free(s->cmds);
    free(s->out);
    free(s);
}

/* Forget connections that are over (closed by us, or EOF seen). */
static void s_reap(void) {
    for (sconn **pp = &S.conns; *pp;) {
        sconn *s = *pp;
        if (s->eof)
            *pp = s->next, s_free(s);
        else
            pp = &s->next;
    }
}

static void s_accept_all(void) {
    for (;;) {
        int fd = accept4(g_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        sconn *s = calloc(1, sizeof *s);
        if (!s) abort();
        s->fd = fd;
        s->id = ++S.conn_seq;
        g_stat.conns++;
        s->rd = aredis_reader_new(NULL, NULL);
        if (!s->rd) abort();
        unsigned v = pick(64);
        s->hs_mode = v < 54   ? HS_OK
                     : v < 58 ? HS_FALLBACK
                     : v < 60 ? HS_LOADING
                     : v < 61 ? HS_AUTHFAIL
                     : v < 62 ? HS_SELECTFAIL
                     : v < 63 ? HS_DROP
                              : HS_OK;
        s->proto = 2;
        s->owner = S.fifo_in != S.fifo_out ? S.fifo[S.fifo_out++ % sizeof S.fifo] : OW_MAIN;
        S.last_conn[s->owner] = s->id;
        s->window_void = S.windows_void;
        s->next = S.conns;
        S.conns = s;
        trace("server: accepted connection #%u%s (handshake: %s)", s->id,
              s->owner == OW_DED ? " (the subscriber connection)" : "", k_hs_names[s->hs_mode]);
        if (s->hs_mode == HS_DROP) {
            close(s->fd);
            s->fd = -1;
            s->eof = 1;
        }
    }
}

static int is_user_kind(const char *name, size_t n, int *kind) {
    for (int k = 0; k < K_WIRE; k++)
        if (strlen(k_names[k]) == n && strncasecmp(name, k_names[k], n) == 0) {
            *kind = k;
            return 1;
        }
    return 0;
}

/* The words of a transaction's framing (no token: told apart by name). */
enum { W_TOKEN, W_MULTI, W_EXEC, W_UNWATCH, W_PING, W_OTHER };
static const char *const k_words[] = {"token", "MULTI", "EXEC", "UNWATCH", "PING", "other"};

static int word_of(const aredis_reply *r, int is_token) {
    if (is_token) return W_TOKEN;
    static const char *const w[] = {"MULTI", "EXEC", "UNWATCH", "PING"};
    for (int i = 0; i < 4; i++)
        if (r->element[0]->len == strlen(w[i]) &&
            strncasecmp(r->element[0]->str, w[i], r->element[0]->len) == 0)
            return W_MULTI + i;
    return W_OTHER;
}

static void describe_cmd(const aredis_reply *r, const rec *x, char *buf, size_t len) {
    if (x)
        snprintf(buf, len, "%s %s%s", k_names[x->kind], x->tok,
                 x->parent ? (x->parent->kind == K_PIPE ? " (of a pipeline)" : " (of an exec)")
                 : x->txi  ? " (a transaction's)"
                           : "");
    else
        snprintf(buf, len, "%.*s", (int)r->element[0]->len, r->element[0]->str);
}

/* ---- The server's pub/sub ------------------------------------------------ */

static int ieq_lit(const aredis_reply *e, const char *lit) {
    return e->len == strlen(lit) && strncasecmp(e->str, lit, e->len) == 0;
}

/* (P|S)(UN)SUBSCRIBE: 1, with its kind and direction. */
static int ps_word(const aredis_reply *e, int *kind, int *unsub) {
    for (int k = 0; k < 3; k++) {
        if (ieq_lit(e, k_ps_sub[k])) {
            *kind = k, *unsub = 0;
            return 1;
        }
        if (ieq_lit(e, k_ps_unsub[k])) {
            *kind = k, *unsub = 1;
            return 1;
        }
    }
    return 0;
}

static int name_idx(const char *p, size_t n) {
    if (n != 2 || p[0] != 'n' || p[1] < '0' || p[1] >= '0' + NNAME) return -1;
    return p[1] - '0';
}

static unsigned popc(unsigned x) { return (unsigned)__builtin_popcount(x); }

static int s_subscribed(const sconn *s) { return (s->ps[0] | s->ps[1] | s->ps[2]) != 0; }

/* Shard channels go one hash slot per command (features/pubsub.c: a
 * cluster node refuses several): the names of `held` in name i's slot, and
 * how many such groups `held` has. */
static unsigned shard_group(unsigned held, int i) {
    unsigned slot = aredis__key_slot(k_ps_names[i], 2), m = 0;
    for (int j = 0; j < NNAME; j++)
        if ((held & (1u << j)) && aredis__key_slot(k_ps_names[j], 2) == slot) m |= 1u << j;
    return m;
}

static unsigned shard_groups(unsigned held) {
    unsigned n = 0, seen = 0;
    for (int j = 0; j < NNAME; j++)
        if ((held & (1u << j)) && !(seen & (1u << j))) {
            seen |= shard_group(held, j);
            n++;
        }
    return n;
}

/* The replay a RESUBSCRIBED announced (I-P5): the first commands after the
 * handshake are one SUBSCRIBE per kind held, each with every name of it —
 * shard channels one SSUBSCRIBE per hash slot among them. */
static void ps_check_replay(sconn *s) {
    if (!s->rp_known) return;
    /* RESP2 replays only the names the server had: one whose subscribe was
     * never written goes out with its own call, in order (ahead of it,
     * commands accepted while nothing was subscribed would meet subscribed
     * mode), and such calls may lead. What the replay must achieve is
     * checked once settled (I-P8). */
    if (s->proto == 2) return;
    unsigned need = (s->rp_expect[0] != 0) + (s->rp_expect[1] != 0) + shard_groups(s->rp_expect[2]);
    for (; s->rp_checked < s->nfirst && s->rp_checked < need; s->rp_checked++) {
        unsigned i = s->rp_checked;
        int k = s->first[i].kind;
        unsigned want = s->rp_expect[k];
        int again = (s->rp_matched & (1u << k)) != 0;
        if (k == 2 && !s->first[i].other && s->first[i].mask) {
            want = shard_group(s->rp_expect[2], __builtin_ctz(s->first[i].mask));
            again = (s->rp_shard_matched & s->first[i].mask) != 0;
        }
        CHECK(!s->first[i].other && !s->first[i].unsub && s->rp_expect[k] && !again,
              "I-P5: after a reconnect, command %u on connection #%u is not the replay (%s of "
              "kind %d; the replay owed: channels %#x, patterns %#x, shard channels %#x)",
              i + 1, s->id,
              s->first[i].other   ? "another command"
              : s->first[i].unsub ? "an unsubscribe"
                                  : "a subscribe",
              k, s->rp_expect[0], s->rp_expect[1], s->rp_expect[2]);
        CHECK(s->first[i].mask == want && s->first[i].n == popc(want),
              "I-P5: the replay %s on connection #%u names %#x (%u name(s)), the subscriptions "
              "held %#x",
              k_ps_sub[k], s->id, s->first[i].mask, s->first[i].n, want);
        s->rp_matched |= 1u << k;
        if (k == 2) s->rp_shard_matched |= s->first[i].mask;
    }
}

/* A command received after the handshake: the first few are kept. */
static void ps_note_first(sconn *s, int other, int kind, int unsub, unsigned mask, unsigned n) {
    if (!S.ps || s->nfirst >= 8) return;
    s->first[s->nfirst].other = other;
    s->first[s->nfirst].kind = kind;
    s->first[s->nfirst].unsub = unsub;
    s->first[s->nfirst].mask = mask;
    s->first[s->nfirst].n = n;
    s->nfirst++;
    ps_check_replay(s);
}

/* The messages the server has now sent in full: the client may read them. */
static void ps_mark_sent(sconn *s) {
    for (size_t i = S.msg_lo; i < S.nmsgs; i++) {
        psmsg *m = &S.msgs[i];
        if (m->conn == s->id && !m->sent && !m->dead && m->end <= s->out_sent) {
            m->sent = 1;
            m->sent_epoch = S.epoch;
        }
    }
    while (S.msg_lo < S.nmsgs && (S.msgs[S.msg_lo].sent || S.msgs[S.msg_lo].dead))
        S.msg_lo++;
}

/* The EXEC or a read x of a watching round arrived on s: the WATCHes of
 * its round issued before it came on s, and at least one did (IR). */
static void s_check_round_conn(sconn *s, rec *x) {
    if (!x->watched) return;
    unsigned here = 0;
    for (size_t i = 0; i < S.nrecs && S.recs[i] != x; i++) {
        rec *w = S.recs[i];
        if (w->kind != K_WATCH || w->round != x->round || !w->seen) continue;
        if (w->seen_conn == s->id) {
            here++;
            continue;
        }
        CHECK(0,
              "IR: %s %s (transaction %u) arrived on connection #%u, its round's WATCH %s on #%u",
              k_names[x->kind], x->tok, x->txi, s->id, w->tok, w->seen_conn);
    }
    CHECK(here > 0,
          "IR: %s %s (transaction %u, watching) arrived on connection #%u, none of its round's "
          "WATCHes did",
          k_names[x->kind], x->tok, x->txi, s->id);
}

/*
 * The framing of what arrives on one connection, checked as it is
 * received: a pipeline's commands contiguous, MULTI + a transaction's
 * commands + EXEC contiguous (I3), and nothing but T's commands between a
 * WATCH of T and its EXEC or UNWATCH (IR).
 */
static void s_frame(sconn *s, const aredis_reply *r, rec *x) {
    int w = word_of(r, x != NULL);
    char what[96];
    describe_cmd(r, x, what, sizeof what);
    /* IR: the reservation window. */
    if (s->window_txi) {
        int ok = w == W_PING || w == W_UNWATCH || w == W_MULTI || w == W_EXEC ||
                 (x && x->txi == s->window_txi);
        CHECK(ok,
              "IR: %s reached connection #%u between a WATCH of transaction %u and its "
              "EXEC/UNWATCH (it should have been held)",
              what, s->id, s->window_txi);
    }
    /* I3: a pipeline under way. */
    if (s->open_pipe) {
        CHECK(x && x->parent == s->open_pipe && x->slot == s->pipe_next,
              "I3: pipeline %s split on connection #%u: %s arrived where its command %u (%s) was "
              "due",
              s->open_pipe->tok, s->id, what, s->pipe_next, s->open_pipe->slots[s->pipe_next]->tok);
        if (++s->pipe_next == s->open_pipe->nslots) s->open_pipe = NULL;
        return;
    }
    /* I3: a MULTI block under way. */
    if (s->multi) {
        if (w == W_EXEC) {
            rec *X = s->multi_exec;
            CHECK(X && s->multi_n == X->nslots,
                  "I3: EXEC on connection #%u after %u command(s) of transaction block %s (of %u)",
                  s->id, s->multi_n, X ? X->tok : "-", X ? X->nslots : 0);
            CHECK(!X->seen, "I3: the EXEC of %s written twice (connections #%u and #%u)", X->tok,
                  X->seen_conn, s->id);
            X->seen++;
            X->seen_conn = s->id;
            s_check_round_conn(s, X);
            s->multi = 0;
            s->multi_exec = NULL;
            if (s->window_txi) s->window_txi = 0;
            trace("server #%u: received EXEC of %s (transaction %u)", s->id, X->tok, X->txi);
            return;
        }
        rec *X = s->multi_exec;
        CHECK(x && x->parent && x->parent->kind == K_EXEC &&
                  (X ? x->parent == X && x->slot == s->multi_n : x->slot == 0),
              "I3: MULTI..EXEC split on connection #%u: %s arrived as command %u of block %s",
              s->id, what, s->multi_n, X ? X->tok : "(none yet)");
        s->multi_exec = x->parent;
        s->multi_n++;
        return;
    }
    switch (w) {
    case W_MULTI:
        s->multi = 1;
        s->multi_exec = NULL;
        s->multi_n = 0;
        return;
    case W_EXEC:
        violation("I3: EXEC without MULTI on connection #%u", s->id);
        return;
    case W_UNWATCH:
        s->window_txi = 0;
        trace("server #%u: received UNWATCH", s->id);
        return;
    default:
        break;
    }
    if (!x) return;
    if (x->parent && x->parent->kind == K_EXEC)
        violation("I3: %s arrived on connection #%u outside its MULTI..EXEC", what, s->id);
    if (x->parent && x->parent->kind == K_PIPE) {
        CHECK(x->slot == 0,
              "I3: pipeline %s split: its command %u (%s) arrived first on connection #%u",
              x->parent->tok, x->slot, x->tok, s->id);
        if (x->parent->nslots > 1) {
            s->open_pipe = x->parent;
            s->pipe_next = 1;
        }
    }
    if (x->kind == K_WATCH && !s->window_void) {
        s->window_txi = x->txi;
        s->window_watch = x;
    }
    if (x->kind == K_GET && x->txi) s_check_round_conn(s, x);
}

/* A command arrived: the token ledger (I3), the handshake order (I7) and
 * the framing of batches (I3, IR). */
static void s_note(sconn *s, const aredis_reply *r) {
    CHECK(r->type == AREDIS_REPLY_ARRAY && r->elements >= 1,
          "the client wrote something that is not a command (type %s)",
          aredis_reply_type_name(r->type));
    for (size_t i = 0; i < r->elements; i++)
        CHECK(r->element[i]->type == AREDIS_REPLY_STRING,
              "the client wrote a command with a non-bulk argument");
    int kind, pk, pu;
    if (ps_word(r->element[0], &pk, &pu)) {
        /* The subscribe family: only through the pub/sub API, with names
         * the application used. */
        CHECK(s->authed, "I7: %.*s reached connection #%u before its handshake was answered",
              (int)r->element[0]->len, r->element[0]->str, s->id);
        unsigned mask = 0;
        for (size_t i = 1; i < r->elements; i++) {
            int idx = name_idx(r->element[i]->str, r->element[i]->len);
            CHECK(idx >= 0,
                  "the server received %s %.*s: no subscription of the application "
                  "names it (the subscribe family through the command API?)",
                  pu ? k_ps_unsub[pk] : k_ps_sub[pk], (int)r->element[i]->len, r->element[i]->str);
            mask |= 1u << idx;
        }
        trace("server #%u: received %s (%zu name(s), %#x)", s->id,
              pu ? k_ps_unsub[pk] : k_ps_sub[pk], r->elements - 1, mask);
        ps_note_first(s, 0, pk, pu, mask, (unsigned)(r->elements - 1));
        s_frame(s, r, NULL);
        return;
    }
    if (!is_user_kind(r->element[0]->str, r->element[0]->len, &kind)) {
        int w = word_of(r, 0);
        if (w == W_MULTI || w == W_EXEC || w == W_UNWATCH)
            CHECK(s->authed, "I7: %s reached connection #%u before its handshake was answered",
                  k_words[w], s->id);
        if (w != W_PING && w != W_OTHER) ps_note_first(s, 1, 0, 0, 0, 0);
        s_frame(s, r, NULL);
        return;
    }
    CHECK(r->elements == 2, "user command with %zu arguments", r->elements);
    rec *x = rec_by_token(r->element[1]->str, r->element[1]->len);
    CHECK(x && x->kind == kind, "the server received a command nobody issued: %s %.*s",
          k_names[kind], (int)r->element[1]->len, r->element[1]->str);
    CHECK(!x->refused, "the server received %s %s, refused at issue (or dropped from its batch)",
          k_names[kind], x->tok);
    CHECK(!x->in_batch || x->parent, "the server received %s %s, queued but never executed",
          k_names[kind], x->tok);
    CHECK(s->authed, "I7: %s %s reached connection #%u before its handshake was answered",
          k_names[kind], x->tok, s->id);
    if (x->seen) {
        CHECK(!x->in_batch && !x->txi,
              "I3: %s %s, part of a batch, written twice (connections #%u and #%u)", k_names[kind],
              x->tok, x->seen_conn, s->id);
        CHECK(x->retryable, "I3: non-retryable %s %s written twice (connections #%u and #%u)",
              k_names[kind], x->tok, x->seen_conn, s->id);
        CHECK(x->seen_conn != s->id, "I3: retryable %s %s written twice on one connection (#%u)",
              k_names[kind], x->tok, s->id);
    }
    x->seen++;
    x->seen_conn = s->id;
    trace("server #%u: received %s %s", s->id, k_names[kind], x->tok);
    ps_note_first(s, 1, 0, 0, 0, 0);
    s_frame(s, r, x);
}

/* Read what the client wrote (no answers yet). */
static void s_ingest(sconn *s) {
    if (s->eof) return;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            if (aredis_reader_feed(s->rd, buf, (size_t)n) != AREDIS_ERR_OK) abort();
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            trace("server #%u: the client closed the connection", s->id);
            s->eof = 1;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    for (;;) {
        void *r = NULL;
        aredis_err e = aredis_reader_get_reply(s->rd, &r);
        CHECK(e == AREDIS_ERR_OK, "the client wrote malformed RESP: %s",
              aredis_reader_errstr(s->rd));
        if (!r) break;
        s_note(s, r);
        if (s->ncmds == s->capcmds) {
            s->capcmds = s->capcmds ? 2 * s->capcmds : 16;
            s->cmds = realloc(s->cmds, s->capcmds * sizeof *s->cmds);
            if (!s->cmds) abort();
        }
        s->cmds[s->ncmds++] = r;
    }
    if (s->eof) {
        close(s->fd);
        s->fd = -1;
    }
}

static void s_ingest_all(void) {
    s_accept_all();
    for (sconn *s = S.conns; s; s = s->next)
        s_ingest(s);
}

static int arg_is(const aredis_reply *r, size_t i, const char *s) {
    return i < r->elements && r->element[i]->len == strlen(s) &&
           strncasecmp(r->element[i]->str, s, r->element[i]->len) == 0;
}

/* One handshake step answered: the model's replies per handshake mode. */
static void s_hs_ok(sconn *s, const char *reply) {
    s->authed = 1;
    s_puts(s, reply);
}

/* EXEC: the outcome of the block read since MULTI (the model's MULTI). */
static void s_answer_exec(sconn *s) {
    rec *X = s->a_exec;
    if (!s->a_multi || !X) { /* never, I3 saw to it when it was received */
        s_puts(s, "-ERR EXEC without MULTI\r\n");
        return;
    }
    s->a_multi = 0;
    s->a_exec = NULL;
    int watched_here = X->watched && s->a_watch_txi == X->txi;
    s->a_watch_txi = 0;
    if (s->a_bad) {
        s_puts(s, "-EXECABORT Transaction discarded because of previous errors.\r\n");
        X->outcome = OUT_ABORT;
    } else if (watched_here && pick(3) == 0) {
        s_puts(s, s->proto == 3 ? "_\r\n" : "*-1\r\n");
        X->outcome = OUT_NIL;
    } else {
        char h[32];
        snprintf(h, sizeof h, "*%u\r\n", X->nslots);
        s_puts(s, h);
        for (unsigned i = 0; i < X->nslots; i++) {
            rec *y = X->slots[i];
            unsigned how = pick(8);
            if (how == 1) {
                char line[64];
                snprintf(line, sizeof line, "-ERRTOK %s\r\n", y->tok);
                s_puts(s, line);
            } else if (how == 2) {
                char v[64];
                int n = snprintf(v, sizeof v, "%s|xxxxxxxxxxxxxxxxxxxx", y->tok);
                s_bulk(s, v, (size_t)n);
            } else {
                s_bulk(s, y->tok, strlen(y->tok));
            }
            y->answered = 1;
        }
        X->outcome = OUT_ARRAY;
    }
    X->answered = 1;
    static const char *const outs[] = {"-", "an array", "nil (WATCH abort)", "-EXECABORT"};
    trace("server #%u: answered EXEC of %s: %s", s->id, X->tok, outs[X->outcome]);
}

/* One confirmation: [kind, name, count] (a push on RESP3). */
static void s_ps_confirm(sconn *s, const char *word, const char *name, unsigned count) {
    char h[32];
    s_puts(s, s->proto == 3 ? ">3\r\n" : "*3\r\n");
    s_bulk(s, word, strlen(word));
    if (name)
        s_bulk(s, name, strlen(name));
    else
        s_puts(s, "$-1\r\n");
    snprintf(h, sizeof h, ":%u\r\n", count);
    s_puts(s, h);
}

static unsigned s_ps_count(const sconn *s, int kind) {
    return kind == 2 ? popc(s->ps[2]) : popc(s->ps[0]) + popc(s->ps[1]);
}

/* (P|S)(UN)SUBSCRIBE, as Redis answers it: one confirmation per name, the
 * count after it (channels and patterns together, shard channels apart);
 * or, for a subscribe naming what the ACL refuses or a shard channel whose
 * slot moved, one error and nothing subscribed. */
static void s_answer_ps(sconn *s, const aredis_reply *r, int kind, int unsub) {
    if (S.npcalls == S.cappcalls) {
        S.cappcalls = S.cappcalls ? 2 * S.cappcalls : 16;
        S.pcalls = realloc(S.pcalls, S.cappcalls * sizeof *S.pcalls);
        if (!S.pcalls) abort();
    }
    pscall *k = &S.pcalls[S.npcalls++];
    memset(k, 0, sizeof *k);
    k->conn = s->id;
    k->owner = s->owner;
    k->kind = kind;
    k->unsub = unsub;
    for (size_t i = 1; i < r->elements; i++) {
        int idx = name_idx(r->element[i]->str, r->element[i]->len);
        if (idx >= 0 && k->n < sizeof k->names) k->names[k->n++] = (unsigned char)idx;
    }
    const char *word = unsub ? k_ps_unsub[kind] : k_ps_sub[kind];
    if (!unsub) {
        for (unsigned i = 0; i < k->n; i++) {
            unsigned bit = 1u << k->names[i];
            char line[128];
            if (S.acl[kind] & bit)
                snprintf(line, sizeof line,
                         "-NOPERM User default has no permissions to access the '%s' channel\r\n",
                         k_ps_names[k->names[i]]);
            else if (kind == 2 && (s->moved & bit))
                snprintf(line, sizeof line, "-MOVED %u 127.0.0.1:7001\r\n", 1000 + k->names[i]);
            else
                continue;
            s_puts(s, line);
            k->error = 1;
            k->end = s->out_total;
            unsigned mask = 0;
            for (unsigned j = 0; j < k->n; j++)
                mask |= 1u << k->names[j];
            /* The replay refused: its names stay held. (RESP2 replays only
             * what the server had, behind the commands kept for the
             * reconnect: it is not told apart from the application's own
             * subscribes, so any refused one excuses the kind from I-P8.) */
            if ((s->proto == 2 && !unsub) ||
                (s->rp_known && mask &&
                 mask == (kind == 2 ? shard_group(s->rp_expect[2], __builtin_ctz(mask))
                                    : s->rp_expect[kind])))
                s->rp_refused |= 1u << kind;
            /* A refused subscribe sent by the library (a replay, or for a
             * call that never left) leaves its names held but not
             * subscribed until a later reconnect replays them (the
             * contract: AREDIS_SUB_ERROR, the names stay). */
            if (!unsub) S.ps_refused[s->owner] |= 1u << kind;
            trace("server #%u: refused %s of %s: %.40s", s->id, word, k_ps_names[k->names[i]],
                  line + 1);
            return;
        }
    }
    if (unsub && !k->n) {
        /* Every name of the kind (or [kind, nil, 0] when none). */
        unsigned had = s->ps[kind];
        s->ps[kind] = 0;
        for (int j = 0; j < NNAME; j++)
            if (had & (1u << j)) s_ps_confirm(s, word, k_ps_names[j], s_ps_count(s, kind));
        if (!had) s_ps_confirm(s, word, NULL, s_ps_count(s, kind));
    }
    for (unsigned i = 0; i < k->n; i++) {
        unsigned bit = 1u << k->names[i];
        if (unsub)
            s->ps[kind] &= ~bit;
        else
            s->ps[kind] |= bit;
        s_ps_confirm(s, word, k_ps_names[k->names[i]], s_ps_count(s, kind));
    }
    k->end = s->out_total;
    trace("server #%u: answered %s (%u name(s)): now %#x %#x %#x", s->id, word, k->n, s->ps[0],
          s->ps[1], s->ps[2]);
}

/* A RESP2 connection in subscribed mode runs nothing else (PING aside). */
static void s_answer_ctx(sconn *s, const aredis_reply *r) {
    char lname[24];
    size_t n = r->element[0]->len < sizeof lname - 1 ? r->element[0]->len : sizeof lname - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = r->element[0]->str[i];
        lname[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    lname[n] = '\0';
    char line[200];
    snprintf(line, sizeof line,
             "-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
             "RESET are allowed in this context\r\n",
             lname);
    s_puts(s, line);
    g_stat.ps_ctx++;
    int kind;
    if (is_user_kind(r->element[0]->str, r->element[0]->len, &kind) && r->elements == 2) {
        rec *x = rec_by_token(r->element[1]->str, r->element[1]->len);
        if (x) {
            CHECK(SIM_KNOWN_BUG_REPLAY_AHEAD || !x->issued_resp2,
                  "I-P7: %s %s, accepted at the call on RESP2 while nothing was subscribed, "
                  "reached connection #%u in subscribed mode (a subscription went ahead of it)",
                  k_names[x->kind], x->tok, s->id);
            x->ctx_err = 1;
            x->answered = 1;
            x->reply_conn = s->id;
            x->reply_end = s->out_total;
            if (x->parent && x->parent->kind == K_EXEC) s->a_ctx_exec = x->parent;
        }
    } else if (arg_is(r, 0, "EXEC") && s->a_ctx_exec) {
        s->a_ctx_exec->outcome = OUT_CTX;
        s->a_ctx_exec->answered = 1;
        s->a_ctx_exec = NULL;
    }
    trace("server #%u: refused %s (subscribed, RESP2)", s->id, lname);
}

/* Queue one message for a name the connection is subscribed to. */
static void s_ps_message(sconn *s) {
    unsigned n = 0;
    for (int k = 0; k < 3; k++)
        n += popc(s->ps[k]);
    if (!n || s->eof || !s->authed) return;
    unsigned j = pick(n);
    int kind = 0, name = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < NNAME; i++)
            if ((s->ps[k] & (1u << i)) && j-- == 0) kind = k, name = i;
    if (S.nmsgs == S.capmsgs) {
        S.capmsgs = S.capmsgs ? 2 * S.capmsgs : 64;
        S.msgs = realloc(S.msgs, S.capmsgs * sizeof *S.msgs);
        if (!S.msgs) abort();
    }
    psmsg *m = &S.msgs[S.nmsgs++];
    memset(m, 0, sizeof *m);
    char payload[32], ch[16];
    int pl = snprintf(payload, sizeof payload, "m%zu", S.nmsgs);
    s_puts(s, kind == 1 ? (s->proto == 3 ? ">4\r\n" : "*4\r\n")
                        : (s->proto == 3 ? ">3\r\n" : "*3\r\n"));
    s_bulk(s, k_ps_msg[kind], strlen(k_ps_msg[kind]));
    s_bulk(s, k_ps_names[name], 2);
    if (kind == 1) {
        int cl = snprintf(ch, sizeof ch, "%s:c", k_ps_names[name]);
        s_bulk(s, ch, (size_t)cl);
    }
    s_bulk(s, payload, (size_t)pl);
    m->conn = s->id;
    m->owner = s->owner;
    m->kind = kind;
    m->name = name;
    m->end = s->out_total;
    g_stat.ps_published++;
    trace("server #%u: queued %s %s \"%s\"", s->id, k_ps_msg[kind], k_ps_names[name], payload);
}

/* The server drops a shard channel on its own (its slot moved): an
 * unsolicited sunsubscribe; later SSUBSCRIBEs of it here get -MOVED. */
static void s_ps_unsolicited(sconn *s) {
    if (s->eof || !s->authed || !s->ps[2]) return;
    if (SIM_KNOWN_BUG_UNSOLICITED_MATCH) return;
    unsigned j = pick(popc(s->ps[2]));
    for (int i = 0; i < NNAME; i++)
        if ((s->ps[2] & (1u << i)) && j-- == 0) {
            s->ps[2] &= ~(1u << i);
            s->moved |= 1u << i;
            s_ps_confirm(s, "sunsubscribe", k_ps_names[i], popc(s->ps[2]));
            S.unsol[s->owner] |= 1u << i;
            g_stat.ps_unsol++;
            trace("server #%u: dropped shard channel %s on its own (unsolicited sunsubscribe)",
                  s->id, k_ps_names[i]);
            return;
        }
}

static void s_answer(sconn *s, const aredis_reply *r) {
    const char *name = r->element[0]->str;
    size_t nl = r->element[0]->len;
    int kind, pk, pu;
    if (ps_word(r->element[0], &pk, &pu)) {
        s_answer_ps(s, r, pk, pu);
        return;
    }
    if (s->proto == 2 && s_subscribed(s)) {
        if (arg_is(r, 0, "PING")) {
            s_puts(s, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
            trace("server #%u: answered PING (subscribed, RESP2)", s->id);
        } else {
            s_answer_ctx(s, r);
        }
        return;
    }
    if (arg_is(r, 0, "MULTI")) {
        s->a_multi = 1;
        s->a_bad = 0;
        s->a_exec = NULL;
        s_puts(s, "+OK\r\n");
        trace("server #%u: answered MULTI", s->id);
        return;
    }
    if (arg_is(r, 0, "EXEC")) {
        s_answer_exec(s);
        return;
    }
    if (arg_is(r, 0, "UNWATCH")) {
        s->a_watch_txi = 0;
        s_puts(s, "+OK\r\n");
        trace("server #%u: answered UNWATCH", s->id);
        return;
    }
    if (is_user_kind(name, nl, &kind)) {
        const aredis_reply *t = r->element[1];
        rec *x = rec_by_token(t->str, t->len);
        if (x) x->answered = 1;
        if (s->a_multi) {
            if (!s->a_exec && x) s->a_exec = x->parent;
            if (pick(32) == 0) {
                /* Refused at queue time: EXEC will answer -EXECABORT. */
                char line[96];
                snprintf(line, sizeof line,
                         "-ERR unknown command '%s', with args beginning with: '%.*s'\r\n",
                         k_names[kind], (int)t->len, t->str);
                s_puts(s, line);
                s->a_bad = 1;
                trace("server #%u: refused queued %s %.*s", s->id, k_names[kind], (int)t->len,
                      t->str);
            } else {
                s_puts(s, "+QUEUED\r\n");
                trace("server #%u: queued %s %.*s", s->id, k_names[kind], (int)t->len, t->str);
            }
            if (x) x->answered = 0; /* answered by EXEC */
            return;
        }
        if (kind == K_WATCH) {
            if (pick(12) == 0) {
                char line[96];
                snprintf(line, sizeof line, "-NOPERM no permissions to access key %.*s\r\n",
                         (int)t->len, t->str);
                s_puts(s, line);
            } else {
                s_puts(s, "+OK\r\n");
                if (x) s->a_watch_txi = x->txi;
            }
            trace("server #%u: answered WATCH %.*s", s->id, (int)t->len, t->str);
            return;
        }
        unsigned how = pick(16);
        if (how == 1 && s->proto == 3) s_puts(s, "|1\r\n+ttl\r\n:1\r\n"); /* an attribute */
        if (how == 2) {
            char line[64];
            snprintf(line, sizeof line, "-ERRTOK %.*s\r\n", (int)t->len, t->str);
            s_puts(s, line);
        } else if (how == 3 || how == 4) {
            /* Long: split over reads, and past the reader's chunk. */
            size_t pad = how == 3 ? 1 + pick(200) * 13 : 17000 + pick(4) * 9000;
            char *v = malloc(t->len + 1 + pad);
            if (!v) abort();
            memcpy(v, t->str, t->len);
            v[t->len] = '|';
            memset(v + t->len + 1, 'x', pad);
            s_bulk(s, v, t->len + 1 + pad);
            free(v);
        } else {
            s_bulk(s, t->str, t->len);
        }
        if (x) {
            x->reply_conn = s->id;
            x->reply_end = s->out_total;
        }
        trace("server #%u: answered %s %.*s%s", s->id, k_names[kind], (int)t->len, t->str,
              how == 2 ? " (error reply)" : "");
        return;
    }
    int loading = s->hs_mode == HS_LOADING;
    if (arg_is(r, 0, "HELLO")) {
        if (loading)
            s_puts(s, "-LOADING Redis is loading the dataset in memory\r\n");
        else if (s->hs_mode == HS_AUTHFAIL)
            s_puts(s, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        else if (s->hs_mode == HS_FALLBACK || !arg_is(r, 1, "3"))
            s_puts(s, "-ERR unknown command 'HELLO', with args beginning with: \r\n");
        else {
            s->proto = 3;
            s_hs_ok(s, "%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$4\r\nmode\r\n"
                       "$10\r\nstandalone\r\n");
        }
    } else if (arg_is(r, 0, "AUTH")) {
        if (loading)
            s_puts(s, "-LOADING Redis is loading the dataset in memory\r\n");
        else if (s->hs_mode == HS_AUTHFAIL)
            s_puts(s, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        else
            s_hs_ok(s, "+OK\r\n");
    } else if (arg_is(r, 0, "SELECT")) {
        if (loading)
            s_puts(s, "-LOADING Redis is loading the dataset in memory\r\n");
        else if (s->hs_mode == HS_SELECTFAIL)
            s_puts(s, "-ERR DB index is out of range\r\n");
        else
            s_hs_ok(s, "+OK\r\n");
    } else if (arg_is(r, 0, "CLIENT")) {
        s_hs_ok(s, "+OK\r\n");
    } else if (arg_is(r, 0, "PING")) {
        if (loading && !s->authed)
            s_puts(s, "-LOADING Redis is loading the dataset in memory\r\n");
        else
            s_hs_ok(s, "+PONG\r\n");
    } else {
        s_puts(s, "-ERR unknown command\r\n");
    }
    trace("server #%u: answered %.*s", s->id, (int)nl, name);
}

/* Answer what was read (unless muted). */
static void s_process_n(sconn *s, size_t max) {
    if (S.mute || s->eof) return;
    size_t n = max < s->ncmds ? max : s->ncmds;
    if (!n) return;
    for (size_t i = 0; i < n; i++) {
        /* Pub/sub: now and then a message between two replies. */
        if (S.ps && s->authed && pick(8) == 7) s_ps_message(s);
        s_answer(s, s->cmds[i]);
        aredis_reply_free(s->cmds[i]);
    }
    memmove(s->cmds, s->cmds + n, (s->ncmds - n) * sizeof *s->cmds);
    s->ncmds -= n;
}
static void s_process(sconn *s) { s_process_n(s, (size_t)-1); }

/* Send up to max bytes of what is queued. */
static void s_send(sconn *s, size_t max) {
    if (s->fd < 0 || !s->olen) return;
    size_t n = max < s->olen ? max : s->olen;
    ssize_t w = send(s->fd, s->out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
        memmove(s->out, s->out + w, s->olen - (size_t)w);
        s->olen -= (size_t)w;
        s->out_sent += (uint64_t)w;
        if (S.ps) ps_mark_sent(s);
        trace("server #%u: sent %zd byte(s), %zu left", s->id, w, s->olen);
    } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        trace("server #%u: send failed (%s): the client is gone", s->id, strerror(errno));
        s->olen = 0;
    }
}

static void s_close(sconn *s, int reset) {
    if (s->fd < 0) return;
    if (!reset) s_ingest(s); /* a clean close: nothing left unread */
    trace("server #%u: %s", s->id, reset ? "reset (closed with input unread)" : "closed");
    /* What the client can still read before it sees the close. */
    for (size_t i = 0; i < S.nrecs; i++) {
        rec *x = S.recs[i];
        if (x->answered && x->reply_conn == s->id && x->reply_end <= s->out_sent) x->reply_sent = 1;
    }
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->eof = 1;
}

/* ---- The application ----------------------------------------------------------- */

static void check_step(const char *where);
static void app_react(const char *where);
static void ps_call_complete(rec *x, const aredis_reply *r, const aredis_error *err);
static void ps_next_complete(rec *x, const aredis_reply *r, const aredis_error *err);
static int ps_main_engaged(void);
static void ps_app(unsigned a);
static void ps_free(simsub *u);
static void turn(int allow, int timers_first);

static void rec_check_written(rec *x, const char *how) {
    s_ingest_all();
    CHECK(x->seen > 0,
          "I2: %s %s received a server reply (%s) but its bytes never reached "
          "the server",
          k_names[x->kind], x->tok, how);
}

static int reply_names(const rec *x, const aredis_reply *r) {
    size_t n = strlen(x->tok);
    if (!r) return 0;
    /* Refused by a RESP2 subscribed connection: the server's own words. */
    if (x->ctx_err && r->type == AREDIS_REPLY_ERROR && r->len > 17 &&
        memcmp(r->str, "ERR Can't execute", 17) == 0)
        return 1;
    if (x->kind == K_WATCH) {
        static const char np[] = "NOPERM no permissions to access key ";
        if (r->type == AREDIS_REPLY_STATUS) return r->len == 2 && memcmp(r->str, "OK", 2) == 0;
        return r->type == AREDIS_REPLY_ERROR && r->len == sizeof np - 1 + n &&
               memcmp(r->str, np, sizeof np - 1) == 0 &&
               memcmp(r->str + sizeof np - 1, x->tok, n) == 0;
    }
    if (r->type == AREDIS_REPLY_STRING)
        return r->len >= n && memcmp(r->str, x->tok, n) == 0 && (r->len == n || r->str[n] == '|');
    if (r->type == AREDIS_REPLY_ERROR)
        return r->len == n + 7 && memcmp(r->str, "ERRTOK ", 7) == 0 &&
               memcmp(r->str + 7, x->tok, n) == 0;
    if (r->type == AREDIS_REPLY_ARRAY && x->kind == K_SUBSCRIBE)
        return r->elements == 3 && r->element[1]->type == AREDIS_REPLY_STRING &&
               r->element[1]->len == n && memcmp(r->element[1]->str, x->tok, n) == 0;
    return 0;
}

static void describe_reply(const aredis_reply *r, char *buf, size_t len) {
    if (!r)
        snprintf(buf, len, "no reply");
    else if (r->str)
        snprintf(buf, len, "%s \"%.40s\"", aredis_reply_type_name(r->type), r->str);
    else if (r->type == AREDIS_REPLY_ARRAY)
        snprintf(buf, len, "array of %zu", r->elements);
    else
        snprintf(buf, len, "%s", aredis_reply_type_name(r->type));
}

/* A failure that is not a server reply: the codes a command may end with,
 * and what each one promises. */
static void check_failure(rec *x, const aredis_error *err) {
    switch (err->code) {
    case AREDIS_ERR_TIMEOUT:
        if (strncmp(err->detail, "request timed out", 17) == 0) {
            CHECK(x->has_deadline, "I4: %s %s has no deadline but timed out (%s)", k_names[x->kind],
                  x->tok, err->detail);
            CHECK(sim_now() >= x->deadline, "I4: %s %s timed out at %llu, before its deadline %llu",
                  k_names[x->kind], x->tok, (unsigned long long)sim_now(),
                  (unsigned long long)x->deadline);
        }
        break;
    case AREDIS_ERR_CANCELLED:
        CHECK(x->cancel_asked || S.ever_closed,
              "%s %s CANCELLED, yet neither cancel, close nor free was called", k_names[x->kind],
              x->tok);
        break;
    case AREDIS_ERR_CLOSED:
        CHECK(S.ever_disconnect || S.ever_closed,
              "%s %s CLOSED, yet neither disconnect, close nor free was called", k_names[x->kind],
              x->tok);
        break;
    case AREDIS_ERR_IO:
        /* Checked after the step (check_blamed): the WATCH's own callback
         * runs after those of the commands it takes down. */
        if (strstr(err->detail, "WATCH ahead of it failed")) x->blamed = 1;
        break;
    case AREDIS_ERR_EOF:
    case AREDIS_ERR_CONNREFUSED:
    case AREDIS_ERR_PROTOCOL:
    case AREDIS_ERR_AUTH:
    case AREDIS_ERR_HANDSHAKE:
    case AREDIS_ERR_NOT_CONNECTED:
        break;
    default:
        violation("%s %s failed with an unexpected %s: %s", k_names[x->kind], x->tok,
                  aredis_err_name(err->code), err->detail);
    }
}

/* Element i of a batch's result is the reply of its command i (I2). */
static void check_slots(rec *x, const aredis_reply *r) {
    for (size_t i = 0; i < r->elements; i++) {
        rec *y = x->slots[i];
        char got[96];
        describe_reply(r->element[i], got, sizeof got);
        CHECK(reply_names(y, r->element[i]),
              "I2: misrouted reply: element %zu of %s %s (%s %s) is %s", i, k_names[x->kind],
              x->tok, k_names[y->kind], y->tok, got);
        CHECK(y->answered, "I2: element %zu of %s %s (%s %s): the server never answered it", i,
              k_names[x->kind], x->tok, k_names[y->kind], y->tok);
        rec_check_written(y, got);
    }
}

static void pipe_complete(rec *x, const aredis_reply *r, const aredis_error *err) {
    if (!err) {
        g_stat.pipe_ok++;
        CHECK(r && r->type == AREDIS_REPLY_ARRAY && r->elements == x->nslots,
              "I2: pipeline %s of %u command(s) succeeded with %s", x->tok, x->nslots,
              r ? aredis_reply_type_name(r->type) : "no reply");
    } else {
        CHECK(err->code != AREDIS_ERR_SERVER, "pipeline %s failed with a server error: %s", x->tok,
              err->detail);
        check_failure(x, err);
        /* The replies that did arrive, in order: a prefix. */
        CHECK(r && r->type == AREDIS_REPLY_ARRAY && r->elements <= x->nslots,
              "I2: pipeline %s of %u command(s) failed (%s) with %s%s", x->tok, x->nslots,
              aredis_err_name(err->code), r ? aredis_reply_type_name(r->type) : "no reply",
              r && r->type == AREDIS_REPLY_ARRAY ? " too long" : " (a partial array is owed)");
        if (r->elements) g_stat.pipe_partial++;
        /* The server closed: the client read all it had sent first. */
        if (err->code == AREDIS_ERR_EOF) {
            if (r->elements) g_stat.pipe_eof_partial++;
            unsigned sent = 0;
            for (unsigned i = 0; i < x->nslots; i++)
                sent += (unsigned)x->slots[i]->reply_sent;
            CHECK(r->elements == sent,
                  "I2: pipeline %s failed with EOF holding %zu repl(ies); the server had sent %u "
                  "before it closed",
                  x->tok, r->elements, sent);
        }
    }
    check_slots(x, r);
}

static void exec_complete(rec *x, const aredis_reply *r, const aredis_error *err) {
    static const char *const outs[] = {"nothing", "an array", "nil", "-EXECABORT",
                                       "a subscribed-mode refusal"};
    if (!err) {
        CHECK(r, "I2: exec %s succeeded without a reply", x->tok);
        if (r->type == AREDIS_REPLY_NIL) {
            g_stat.tx_nil++;
            CHECK(x->outcome == OUT_NIL && aredis_tx_aborted(r),
                  "I2: exec %s got nil (a WATCH abort), the server answered %s", x->tok,
                  outs[x->outcome]);
        } else {
            g_stat.tx_array++;
            CHECK(r->type == AREDIS_REPLY_ARRAY && r->elements == x->nslots &&
                      x->outcome == OUT_ARRAY && !aredis_tx_aborted(r),
                  "I2: exec %s of %u command(s) got %s, the server answered %s", x->tok, x->nslots,
                  aredis_reply_type_name(r->type), outs[x->outcome]);
            check_slots(x, r);
        }
        rec_check_written(x, "EXEC");
    } else if (err->code == AREDIS_ERR_SERVER && x->outcome == OUT_CTX) {
        CHECK(r && r->type == AREDIS_REPLY_ERROR && strcmp(err->prefix, "ERR") == 0,
              "I2: exec %s refused by a subscribed connection, failed with %s: %s", x->tok,
              err->prefix, err->detail);
        rec_check_written(x, "a subscribed-mode refusal");
    } else if (err->code == AREDIS_ERR_SERVER) {
        g_stat.tx_abort++;
        CHECK(x->outcome == OUT_ABORT && strcmp(err->prefix, "EXECABORT") == 0 && r &&
                  r->type == AREDIS_REPLY_ERROR,
              "I2: exec %s failed with a server error (%s: %s), the server answered %s", x->tok,
              err->prefix, err->detail, outs[x->outcome]);
        rec_check_written(x, "EXECABORT");
    } else {
        CHECK(!r, "exec %s failed (%s) with a reply", x->tok, aredis_err_name(err->code));
        check_failure(x, err);
    }
}

static void rec_complete(rec *x, const aredis_reply *r, const aredis_error *err, const char *via) {
    char got[96];
    describe_reply(r, got, sizeof got);
    trace("app: %s %s completed via %s: %s%s%s (%s)", k_names[x->kind], x->tok, via,
          err ? aredis_err_name(err->code) : "OK", err ? " " : "", err ? err->detail : "", got);
    CHECK(!S.in_issue, "I1: the callback of %s %s ran inside a call that issues a command",
          k_names[x->kind], x->tok);
    CHECK(!x->refused, "I1: %s %s was refused at issue, yet its callback ran", k_names[x->kind],
          x->tok);
    CHECK(!x->in_batch, "I1: %s %s, a command of a batch, had a callback of its own",
          k_names[x->kind], x->tok);
    if (!err)
        g_stat.ok++;
    else if (err->code == AREDIS_ERR_SERVER)
        g_stat.server_err++;
    else
        g_stat.by_code[err->code]++;
    CHECK(++x->calls == 1, "I1: the callback of %s %s ran %d times", k_names[x->kind], x->tok,
          x->calls);
    if (x->kind == K_PSUB) {
        ps_call_complete(x, r, err);
        return;
    }
    if (x->kind == K_NEXT) {
        ps_next_complete(x, r, err);
        return;
    }
    if (r && !err && (r->type == AREDIS_REPLY_PUSH || r->type == AREDIS_REPLY_ARRAY)) {
        aredis_message m;
        CHECK(aredis_message_parse((aredis_reply *)r, &m) != 0,
              "I-P1: a pub/sub message handed to the callback of %s %s", k_names[x->kind], x->tok);
    }
    if (x->kind == K_PIPE) {
        pipe_complete(x, r, err);
        return;
    }
    if (x->kind == K_EXEC) {
        exec_complete(x, r, err);
        return;
    }
    if (x->kind == K_WATCH) {
        x->watch_failed = err || !r || r->type == AREDIS_REPLY_ERROR;
        if (!x->watch_failed) g_stat.watch_ok++;
    }
    if (!err || err->code == AREDIS_ERR_SERVER) {
        CHECK(r, "I2: %s %s succeeded without a reply", k_names[x->kind], x->tok);
        CHECK(reply_names(x, r), "I2: misrouted reply: %s %s received %s", k_names[x->kind], x->tok,
              got);
        CHECK(!err || r->type == AREDIS_REPLY_ERROR, "AREDIS_ERR_SERVER with a %s reply",
              aredis_reply_type_name(r->type));
        CHECK(err || r->type != AREDIS_REPLY_ERROR, "an error reply delivered as success");
        rec_check_written(x, got);
        return;
    }
    CHECK(!r, "%s %s failed (%s) with a reply", k_names[x->kind], x->tok,
          aredis_err_name(err->code));
    check_failure(x, err);
}

static void on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    rec_complete(data, r, err, "callback");
    app_react("command callback");
}

static void on_future(aredis_future *f, void *data) {
    rec_complete(data, aredis_future_reply(f), aredis_future_error(f), "future");
    if (SIM_KNOWN_BUG_ENDED_ITER && ((rec *)data)->kind == K_NEXT && aredis_future_error(f)) return;
    app_react("future completion");
}

static rec *rec_new(int kind) {
    if (S.nrecs == S.caprecs) {
        S.caprecs = S.caprecs ? 2 * S.caprecs : 64;
        S.recs = realloc(S.recs, S.caprecs * sizeof *S.recs);
        if (!S.recs) abort();
    }
    rec *x = calloc(1, sizeof *x);
    if (!x) abort();
    x->id = (unsigned)S.nrecs;
    snprintf(x->tok, sizeof x->tok, "t%u", x->id);
    x->kind = kind;
    S.recs[S.nrecs++] = x;
    return x;
}

static void check_refusal(rec *x, aredis_err e) {
    x->refused = 1;
    g_stat.refused++;
    g_stat.refused_by[e]++;
    trace("app: %s %s refused at issue: %s (%s)", k_names[x->kind], x->tok, aredis_err_name(e),
          aredis_call_error()->detail);
    /* IO: a transaction's WATCH is gone (the caller checks it was watching). */
    /* UNSUPPORTED: the subscribe family through the command API; and on a
     * RESP2 connection shared with subscriptions, anything while they are
     * engaged (I-P7). */
    int resp2_engaged = !S.freed && aredis__client_proto(S.c) == 2 &&
                        aredis__pubsub_engaged(S.c, 0) && x->kind != K_PSUB;
    if (e == AREDIS_ERR_UNSUPPORTED && resp2_engaged) g_stat.ps_refused_resp2++;
    CHECK(e == AREDIS_ERR_CLOSED || e == AREDIS_ERR_NOT_CONNECTED || e == AREDIS_ERR_QUEUE_FULL ||
              (e == AREDIS_ERR_UNSUPPORTED && (x->kind == K_SUBSCRIBE || resp2_engaged)) ||
              (e == AREDIS_ERR_IO && x->txi),
          "%s %s refused at issue with an unexpected %s", k_names[x->kind], x->tok,
          aredis_err_name(e));
    CHECK(e != AREDIS_ERR_QUEUE_FULL || S.o.max_queue_size, "QUEUE_FULL without max_queue_size");
}

static const char *const k_styles[] = {"command", "command_argv_ex", "command_ex", "future_argv_ex",
                                       "future_command"};

static void app_issue(void) {
    if (S.freed) return;
    unsigned kv = pick(32);
    int kind = S.subscribe_rate && kv % S.subscribe_rate == S.subscribe_rate - 1 ? K_SUBSCRIBE
               : kv < 14                                                         ? K_ECHO
               : kv < 24                                                         ? K_GET
                                                                                 : K_GETDEL;
    rec *x = rec_new(kind);
    g_stat.issued++;
    x->style = (int)pick(5);
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    int has_opts = x->style == 1 || x->style == 2 || x->style == 3;
    if (has_opts) {
        static const uint32_t tmo[] = {0, 0, 0, 5, 40, 400, 3000, 0};
        unsigned t = pick(8);
        o.timeout_ms = tmo[t];
        if (t == 7) o.flags |= AREDIS_CMD_NO_TIMEOUT;
        if (pick(3) == 0) o.flags |= AREDIS_CMD_RETRYABLE;
    }
    x->retryable = (o.flags & AREDIS_CMD_RETRYABLE) ||
                   (S.o.retry_read_only && (kind == K_ECHO || kind == K_GET));
    uint64_t tmo_ms = (o.flags & AREDIS_CMD_NO_TIMEOUT) ? 0
                      : o.timeout_ms                    ? o.timeout_ms
                                                        : S.o.request_timeout_ms;
    x->has_deadline = tmo_ms != 0;
    x->issued_at = sim_now();
    x->deadline = x->issued_at + tmo_ms;
    const char *argv[2] = {k_names[kind], x->tok};
    trace("app: issue %s %s (%s, timeout %llu%s%s)", k_names[kind], x->tok, k_styles[x->style],
          (unsigned long long)tmo_ms, (o.flags & AREDIS_CMD_NO_TIMEOUT) ? " none" : "",
          x->retryable ? ", retryable" : "");
    aredis_err e = AREDIS_ERR_OK;
    aredis_future *f = NULL;
    /* RESP2, a subscription sharing the connection: refused (I-P7). */
    int must_refuse = S.ps && aredis__client_proto(S.c) == 2 && ps_main_engaged();
    S.in_issue++;
    switch (x->style) {
    case 0:
        e = aredis_command(S.c, on_reply, x, "%s %s", k_names[kind], x->tok);
        break;
    case 1:
        e = aredis_command_argv_ex(S.c, &o, on_reply, x, 2, argv, NULL);
        break;
    case 2:
        e = aredis_command_ex(S.c, &o, on_reply, x, "%s %s", k_names[kind], x->tok);
        break;
    case 3:
        f = aredis_future_argv_ex(S.c, &o, 2, argv, NULL);
        break;
    default:
        f = aredis_future_command(S.c, "%s %s", k_names[kind], x->tok);
        break;
    }
    S.in_issue--;
    if (must_refuse) {
        aredis_err got = x->style < 3 ? e
                         : f && aredis_future_is_done(f) && aredis_future_error(f)
                             ? aredis_future_error(f)->code
                             : AREDIS_ERR_OK;
        CHECK(got == AREDIS_ERR_UNSUPPORTED || got == AREDIS_ERR_CLOSED ||
                  got == AREDIS_ERR_NOT_CONNECTED || got == AREDIS_ERR_QUEUE_FULL,
              "I-P7: %s %s accepted (%s) on a RESP2 connection shared with a subscription",
              k_names[kind], x->tok, aredis_err_name(got));
    }
    x->issued_resp2 = S.ps && aredis__client_proto(S.c) == 2;
    if (x->style < 3) {
        if (e != AREDIS_ERR_OK) check_refusal(x, e);
        return;
    }
    CHECK(f, "a future command returned NULL (out of memory?)");
    if (aredis_future_is_done(f)) {
        const aredis_error *fe = aredis_future_error(f);
        CHECK(fe, "I1: future of %s %s completed successfully inside the issuing call",
              k_names[kind], x->tok);
        check_refusal(x, fe->code);
        aredis_future_release(f);
        return;
    }
    x->f = f;
    if (aredis_future_then(f, on_future, x) != AREDIS_ERR_OK) abort();
}

static rec *pick_future(void) {
    size_t n = 0;
    for (size_t i = 0; i < S.nrecs; i++)
        if (S.recs[i]->f && !S.recs[i]->released && !S.recs[i]->calls) n++;
    if (!n) return NULL;
    size_t k = pick((unsigned)(n > 250 ? 250 : n));
    for (size_t i = 0; i < S.nrecs; i++)
        if (S.recs[i]->f && !S.recs[i]->released && !S.recs[i]->calls && k-- == 0) return S.recs[i];
    return NULL;
}

static void app_cancel(void) {
    rec *x = pick_future();
    if (!x) return;
    if (SIM_KNOWN_BUG_PING_CANCEL && x->kind == K_PSUB && x->ping_path) return;
    if (SIM_KNOWN_BUG_ORPHAN_CONFIRM && x->kind == K_PSUB && !x->ping_path) return;
    trace("app: cancel the future of %s %s", k_names[x->kind], x->tok);
    x->cancel_asked = 1;
    aredis_future_cancel(x->f);
    CHECK(x->calls == 1, "I1: cancel did not complete the future of %s %s", k_names[x->kind],
          x->tok);
}

static void app_release(void) {
    rec *x = pick_future();
    if (!x) return;
    trace("app: release the pending future of %s %s", k_names[x->kind], x->tok);
    x->released = 1;
    aredis_future_release(x->f);
    x->f = NULL;
}

static void app_connect(void) {
    if (S.freed) return;
    aredis_state st = aredis_client_state(S.c);
    trace("app: connect (state %s)", aredis_state_name(st));
    S.in_issue++;
    aredis_err e = aredis_client_connect(S.c);
    S.in_issue--;
    if (e == AREDIS_ERR_OK) {
        CHECK(st == AREDIS_STATE_IDLE, "connect() accepted in state %s", aredis_state_name(st));
        S.last_attempt = 0;
        S.windows_void = 0;
    } else {
        CHECK(st != AREDIS_STATE_IDLE, "connect() refused on an IDLE client: %s",
              aredis_err_name(e));
    }
}

static void app_disconnect(void) {
    if (S.freed) return;
    trace("app: disconnect");
    S.ever_disconnect = 1;
    /* disconnect() ends a reservation (what it holds must go out for the
     * disconnect to finish): from here to the next connect(), the server's
     * windows are void. What was written before is checked first. */
    s_ingest_all();
    S.windows_void = 1;
    for (sconn *s = S.conns; s; s = s->next) {
        s->window_txi = 0;
        s->window_void = 1;
    }
    aredis_client_disconnect(S.c);
}

static void app_close(void) {
    if (S.freed) return;
    trace("app: close");
    S.ever_closed = 1;
    aredis_client_close(S.c);
}

/* ---- Pipelines and transactions ------------------------------------------- */

/* The deadline a call with options o (NULL: none) gives. */
static void set_deadline(rec *x, const aredis_cmd_opts *o) {
    uint64_t tmo_ms = (o && (o->flags & AREDIS_CMD_NO_TIMEOUT)) ? 0
                      : (o && o->timeout_ms)                    ? o->timeout_ms
                                                                : S.o.request_timeout_ms;
    x->has_deadline = tmo_ms != 0;
    x->issued_at = sim_now();
    x->deadline = x->issued_at + tmo_ms;
}

/* The options of an exec: a per-exec timeout or none; RETRYABLE now and
 * then (a batch must ignore it: never sent twice, I3). */
static void pick_batch_opts(aredis_cmd_opts *o) {
    static const uint32_t tmo[] = {0, 0, 5, 40, 400, 3000, 0, 0};
    unsigned t = pick(8);
    o->timeout_ms = tmo[t];
    if (t == 7) o->flags |= AREDIS_CMD_NO_TIMEOUT;
    if (pick(3) == 0) o->flags |= AREDIS_CMD_RETRYABLE;
}

/* A command for a batch: a token command with a record of its own and no
 * callback. */
static rec *slot_new(unsigned txi) {
    unsigned kv = pick(3);
    rec *y = rec_new(kv == 0 ? K_ECHO : kv == 1 ? K_GET : K_GETDEL);
    y->in_batch = 1;
    y->txi = txi;
    return y;
}

/* Queued commands that will never be executed (discard, reset, free). */
static void drop_queued(rec **q, size_t n) {
    for (size_t i = 0; i < n; i++)
        q[i]->refused = 1;
}

/* A batch accepted: its commands are its slots now. */
static void batch_adopt(rec *x, rec **q, size_t n) {
    x->slots = malloc((n ? n : 1) * sizeof *x->slots);
    if (!x->slots) abort();
    for (size_t i = 0; i < n; i++) {
        x->slots[i] = q[i];
        q[i]->parent = x;
        q[i]->slot = (unsigned)i;
    }
    x->nslots = (unsigned)n;
}

/* A future-style issue: refused (already failed) or followed. Returns 1
 * when it is under way. */
static int future_follow(rec *x, aredis_future *f) {
    CHECK(f, "a future exec returned NULL (out of memory?)");
    if (aredis_future_is_done(f)) {
        const aredis_error *fe = aredis_future_error(f);
        CHECK(fe, "I1: the future of %s %s completed successfully inside the issuing call",
              k_names[x->kind], x->tok);
        check_refusal(x, fe->code);
        aredis_future_release(f);
        return 0;
    }
    x->f = f;
    if (aredis_future_then(f, on_future, x) != AREDIS_ERR_OK) abort();
    return 1;
}

static const char *const k_pstyles[] = {"exec", "exec_ex", "exec_future", "exec_future_ex"};

/*
 * A pipeline of 1..N token commands, executed in one of four styles. Most
 * are made for the occasion and freed right after their exec; one in four
 * uses the run's long-lived pipeline, whose refused commands stay queued
 * for the next exec.
 */
static void app_pipeline(void) {
    if (S.freed) return;
    int reuse = pick(4) == 0;
    rec **q = NULL;
    size_t nq = 0, capq = 0;
    aredis_pipeline *p;
    if (reuse) {
        if (!S.pipe && !(S.pipe = aredis_pipeline_new(S.c))) abort();
        p = S.pipe;
    } else if (!(p = aredis_pipeline_new(S.c))) {
        abort();
    }
    rec ***qp = reuse ? &S.pq : &q;
    size_t *np = reuse ? &S.npq : &nq, *cp = reuse ? &S.cappq : &capq;
    unsigned n = pick(8) == 0 ? 1 + pick(24) : 1 + pick(4);
    for (unsigned i = 0; i < n; i++) {
        rec *y = slot_new(0);
        const char *argv[2] = {k_names[y->kind], y->tok};
        aredis_err e = pick(2) ? aredis_pipeline_argv(p, 2, argv, NULL)
                               : aredis_pipeline_command(p, "%s %s", k_names[y->kind], y->tok);
        CHECK(e == AREDIS_ERR_OK, "aredis_pipeline_command(%s %s) refused: %s", k_names[y->kind],
              y->tok, aredis_err_name(e));
        recs_push(qp, np, cp, y);
    }
    if (pick(16) == 0) {
        aredis_err e = aredis_pipeline_command(p, "SUBSCRIBE %s", "ch");
        CHECK(e == AREDIS_ERR_UNSUPPORTED, "a pipeline took SUBSCRIBE (%s)", aredis_err_name(e));
    }
    CHECK(aredis_pipeline_size(p) == *np, "I6: aredis_pipeline_size() is %zu, %zu queued",
          aredis_pipeline_size(p), *np);
    rec *x = rec_new(K_PIPE);
    g_stat.issued++;
    g_stat.pipelines++;
    x->style = (int)pick(4);
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    int has_opts = x->style == 1 || x->style == 3;
    if (has_opts) pick_batch_opts(&o);
    set_deadline(x, has_opts ? &o : NULL);
    trace("app: pipeline %s of %zu (%s%s, timeout %llu)", x->tok, *np, k_pstyles[x->style],
          reuse ? ", reused" : "", (unsigned long long)(x->deadline - x->issued_at));
    aredis_err e = AREDIS_ERR_OK;
    aredis_future *f = NULL;
    S.in_issue++;
    switch (x->style) {
    case 0:
        e = aredis_pipeline_exec(p, on_reply, x);
        break;
    case 1:
        e = aredis_pipeline_exec_ex(p, &o, on_reply, x);
        break;
    case 2:
        f = aredis_pipeline_exec_future(p);
        break;
    default:
        f = aredis_pipeline_exec_future_ex(p, &o);
        break;
    }
    S.in_issue--;
    int ok;
    if (f) {
        ok = !aredis_future_is_done(f);
    } else {
        ok = e == AREDIS_ERR_OK;
        if (!ok) check_refusal(x, e);
    }
    if (ok) {
        batch_adopt(x, *qp, *np);
        *np = 0;
        CHECK(aredis_pipeline_size(p) == 0, "a pipeline not empty after its exec");
    } else {
        CHECK(aredis_pipeline_size(p) == *np, "a refused exec dropped the pipeline's commands");
    }
    if (f) future_follow(x, f);
    if (!reuse) {
        S.in_issue++;
        aredis_pipeline_free(p);
        S.in_issue--;
        drop_queued(q, nq);
        free(q);
    }
}

static void tx_reset_model(simtx *t) {
    drop_queued(t->q, t->nq);
    t->nq = 0;
    t->watching = 0;
    t->round = ++S.round_seq;
}

static simtx *tx_get(unsigned i) {
    simtx *t = &S.tx[i];
    if (!t->tx) {
        if (!(t->tx = aredis_tx_new(S.c))) abort();
        t->txi = ++S.txi_seq;
        t->nq = 0;
        t->watching = 0;
        t->round = ++S.round_seq;
        g_stat.txs++;
        trace("app: new transaction %u", t->txi);
    }
    return t;
}

static void tx_queue(simtx *t, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        rec *y = slot_new(t->txi);
        y->round = t->round;
        const char *argv[2] = {k_names[y->kind], y->tok};
        aredis_err e = pick(2) ? aredis_tx_queue_argv(t->tx, 2, argv, NULL)
                               : aredis_tx_queue(t->tx, "%s %s", k_names[y->kind], y->tok);
        CHECK(e == AREDIS_ERR_OK, "aredis_tx_queue(%s %s) refused: %s", k_names[y->kind], y->tok,
              aredis_err_name(e));
        recs_push(&t->q, &t->nq, &t->capq, y);
    }
    trace("app: transaction %u: %u queued (%zu in all)", t->txi, n, t->nq);
}

/* What a transaction sends itself may not be queued. */
static void tx_queue_own_word(simtx *t) {
    static const char *const words[] = {"MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"};
    unsigned k = pick(5);
    const char *argv[2] = {words[k], "k"};
    int argc = k == 3 ? 2 : 1;
    aredis_err e = aredis_tx_queue_argv(t->tx, argc, argv, NULL);
    trace("app: transaction %u: queue %s: %s", t->txi, words[k], aredis_err_name(e));
    CHECK(e == AREDIS_ERR_INVALID || e == AREDIS_ERR_UNSUPPORTED,
          "a transaction queued its own %s (%s)", words[k], aredis_err_name(e));
}

static const char *const k_tstyles[] = {"callback", "exec_ex", "future"};

static void tx_exec(simtx *t) {
    rec *x = rec_new(K_EXEC);
    x->txi = t->txi;
    x->round = t->round;
    x->watched = t->watching;
    if (!t->nq) {
        /* Nothing queued: INVALID, and no callback. */
        x->refused = 1;
        S.in_issue++;
        aredis_err e = aredis_tx_exec(t->tx, on_reply, x);
        S.in_issue--;
        CHECK(e == AREDIS_ERR_INVALID, "the exec of an empty transaction: %s", aredis_err_name(e));
        return;
    }
    g_stat.issued++;
    x->style = (int)pick(3);
    aredis_cmd_opts o = AREDIS_CMD_OPTS_INIT;
    if (x->style == 1) pick_batch_opts(&o);
    set_deadline(x, x->style == 1 ? &o : NULL);
    trace("app: transaction %u: exec %s of %zu (%s%s, timeout %llu)", t->txi, x->tok, t->nq,
          k_tstyles[x->style], t->watching ? ", watching" : "",
          (unsigned long long)(x->deadline - x->issued_at));
    aredis_err e = AREDIS_ERR_OK;
    aredis_future *f = NULL;
    S.in_issue++;
    if (x->style == 0)
        e = aredis_tx_exec(t->tx, on_reply, x);
    else if (x->style == 1)
        e = aredis_tx_exec_ex(t->tx, &o, on_reply, x);
    else
        f = aredis_tx_exec_future(t->tx);
    S.in_issue--;
    if (f && aredis_future_is_done(f) && aredis_future_error(f)) e = aredis_future_error(f)->code;
    if (e == AREDIS_ERR_OK) {
        batch_adopt(x, t->q, t->nq);
        t->nq = 0;
        t->watching = 0;
        t->round = ++S.round_seq;
        if (f) future_follow(x, f);
        return;
    }
    if (e == AREDIS_ERR_IO) {
        /* The WATCH is gone: refused, and the transaction reset. */
        CHECK(t->watching, "the exec of transaction %u refused with IO, yet it was not watching",
              t->txi);
        tx_reset_model(t);
    }
    if (f)
        future_follow(x, f);
    else
        check_refusal(x, e);
}

static void tx_watch(simtx *t) {
    if (SIM_KNOWN_BUG_RESP2_RESERVED && S.ps) return;
    rec *w = rec_new(K_WATCH);
    w->txi = t->txi;
    w->round = t->round;
    w->style = pick(2) ? 3 : 0;
    /* READY: it goes into `out` for the latest connection accepted. */
    if (aredis_client_state(S.c) == AREDIS_STATE_READY) w->issued_conn = S.conn_seq;
    set_deadline(w, NULL);
    g_stat.issued++;
    g_stat.watches++;
    trace("app: transaction %u: WATCH %s (%s)", t->txi, w->tok, w->style ? "future" : "callback");
    const char *keys[1] = {w->tok};
    aredis_err e = AREDIS_ERR_OK;
    aredis_future *f = NULL;
    S.in_issue++;
    if (w->style)
        f = aredis_tx_watch_future(t->tx, 1, keys, NULL);
    else
        e = aredis_tx_watch(t->tx, on_reply, w, 1, keys, NULL);
    S.in_issue--;
    if (f && aredis_future_is_done(f) && aredis_future_error(f)) e = aredis_future_error(f)->code;
    if (e == AREDIS_ERR_OK) {
        t->watching = 1;
    } else if (e == AREDIS_ERR_IO) {
        CHECK(t->watching, "the WATCH of transaction %u refused with IO, yet it was not watching",
              t->txi);
        tx_reset_model(t);
    }
    if (f)
        future_follow(w, f);
    else if (e != AREDIS_ERR_OK)
        check_refusal(w, e);
}

/* A read between WATCH and EXEC, on the transaction's connection. */
static void tx_read(simtx *t) {
    rec *y = rec_new(K_GET);
    y->txi = t->txi;
    y->round = t->round;
    y->watched = t->watching;
    y->style = pick(2) ? 3 : 0;
    set_deadline(y, NULL);
    g_stat.issued++;
    g_stat.tx_reads++;
    trace("app: transaction %u: read GET %s (%s)", t->txi, y->tok,
          y->style ? "future" : "callback");
    aredis_err e = AREDIS_ERR_OK;
    aredis_future *f = NULL;
    S.in_issue++;
    if (y->style)
        f = aredis_tx_future_command(t->tx, "GET %s", y->tok);
    else
        e = aredis_tx_command(t->tx, on_reply, y, "GET %s", y->tok);
    S.in_issue--;
    if (f && aredis_future_is_done(f) && aredis_future_error(f)) e = aredis_future_error(f)->code;
    if (e == AREDIS_ERR_IO)
        CHECK(t->watching, "a read of transaction %u refused with IO, yet it was not watching",
              t->txi);
    if (f)
        future_follow(y, f);
    else if (e != AREDIS_ERR_OK)
        check_refusal(y, e);
}

static void tx_discard(simtx *t) {
    trace("app: transaction %u: discard (%zu queued%s)", t->txi, t->nq,
          t->watching ? ", watching" : "");
    g_stat.discards++;
    S.in_issue++;
    aredis_tx_discard(t->tx);
    S.in_issue--;
    tx_reset_model(t);
}

static void tx_free(simtx *t) {
    if (!t->tx) return;
    trace("app: transaction %u: free (%zu queued%s)", t->txi, t->nq,
          t->watching ? ", watching" : "");
    g_stat.tx_frees++;
    S.in_issue++;
    aredis_tx_free(t->tx);
    S.in_issue--;
    tx_reset_model(t);
    t->tx = NULL;
}

/* One pipeline or transaction action. */
static void app_batch(void) {
    if (S.freed) return;
    unsigned a = pick(16);
    if (a < 5) {
        app_pipeline();
        return;
    }
    simtx *t = tx_get(pick(NTX));
    switch (a) {
    case 5:
        tx_queue(t, 1 + pick(3));
        break;
    case 6:
        tx_exec(t);
        break;
    case 7:
    case 8:
        tx_queue(t, 1 + pick(4));
        tx_exec(t);
        break;
    case 9:
    case 10:
        tx_watch(t);
        break;
    case 11:
        tx_read(t);
        break;
    case 12:
        tx_discard(t);
        break;
    case 13:
        tx_free(t);
        break;
    case 14:
        /* check-and-set in one go: WATCH, read, queue, exec */
        tx_watch(t);
        if (pick(2)) tx_read(t);
        tx_queue(t, 1 + pick(3));
        tx_exec(t);
        break;
    default:
        if (pick(2))
            tx_queue_own_word(t);
        else
            tx_exec(t); /* INVALID when nothing is queued */
        break;
    }
}

/* The pipelines and transactions go before the client (a transaction's
 * free may send UNWATCH through it). */
static void batches_free(void) {
    for (unsigned i = 0; i < NTX; i++)
        tx_free(&S.tx[i]);
    if (S.pipe) {
        aredis_pipeline_free(S.pipe);
        S.pipe = NULL;
        drop_queued(S.pq, S.npq);
        S.npq = 0;
    }
}

static void app_free(void) {
    if (S.freed) return;
    trace("app: free");
    /* Subscriptions go before their client, or after it (ps_free_all). */
    for (int i = 0; i < NSUB; i++)
        if (S.slot[i] && pick(2)) ps_free(S.slot[i]);
    if (S.freed) return; /* freed from a callback of those frees */
    batches_free();
    S.ever_closed = 1;
    S.freed = 1;
    aredis_client_free(S.c);
}

/* What the application does from inside a callback. */
static void app_react(const char *where) {
    if (S.freed || S.react_depth >= 3 || exhausted()) return;
    S.react_depth++;
    unsigned v = pick(64);
    if (S.ps && v < 10) {
        trace("app: in a %s: pub/sub", where);
        ps_app(pick(8));
    } else if (v >= 40 && v < 48) {
        trace("app: in a %s: issue", where);
        app_issue();
    } else if (v >= 48 && v < 51) {
        trace("app: in a %s: issue several", where);
        for (unsigned k = 2 + pick(4); k-- > 0;)
            app_issue();
    } else if (v == 51 || v == 52) {
        app_cancel();
    } else if (v == 53) {
        app_release();
    } else if (v == 54 && pick(2) == 0) {
        trace("app: in a %s:", where);
        app_disconnect();
    } else if (v == 55 && pick(8) == 0) {
        trace("app: in a %s:", where);
        app_close();
    } else if (v == 56 && pick(8) == 0) {
        trace("app: in a %s:", where);
        app_free();
    } else if (v == 57 || v == 58) {
        trace("app: in a %s:", where);
        app_connect();
    } else if (v >= 59 && v < 63) {
        trace("app: in a %s: a pipeline or transaction", where);
        app_batch();
    }
    S.react_depth--;
}

/* ---- Pub/sub: the application ---------------------------------------------- */

static void ps_on_message(aredis_subscription *s, const aredis_message *m, void *data);
static void ps_sub_event(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                         void *data);

static unsigned ps_holds(const simsub *u) { return u->held[0] | u->held[1] | u->held[2]; }

/* What the live subscriptions on an owner's connection hold of a kind
 * (but `except`). */
static unsigned ps_union(int owner, int kind, const simsub *except) {
    unsigned u = 0;
    for (int i = 0; i < NSUB; i++)
        if (S.slot[i] && S.slot[i] != except && S.slot[i]->owner == owner)
            u |= S.slot[i]->held[kind];
    return u;
}

static void ps_hold(simsub *u, int kind, unsigned mask) {
    S.epoch++;
    if (!ps_holds(u) && mask) u->hold_since = S.epoch;
    u->held[kind] |= mask;
}

static void ps_drop(simsub *u, int kind, unsigned mask) {
    S.epoch++;
    for (int i = 0; i < NNAME; i++)
        if (mask & u->held[kind] & (1u << i)) u->drop_epoch[kind][i] = S.epoch;
    u->held[kind] &= ~mask;
    if (!ps_holds(u)) u->cont_conn = 0;
}

/* RESP2, shared: the client must refuse ordinary commands (I-P7) while a
 * subscription on its connection holds a name or a call is in flight. */
static int ps_main_engaged(void) {
    for (int i = 0; i < NSUB; i++)
        if (S.slot[i] && S.slot[i]->owner == OW_MAIN && ps_holds(S.slot[i])) return 1;
    for (size_t i = 0; i < S.nrecs; i++) {
        const rec *x = S.recs[i];
        /* A subscribe in flight (an UNSUBSCRIBE puts no connection in
         * subscribed mode: the server's counts say when it is). */
        if (x->kind == K_PSUB && x->owner == OW_MAIN && !x->unsub && !x->ping_path && !x->refused &&
            !x->calls)
            return 1;
    }
    return 0;
}

static simsub *ps_sub_new(unsigned slot) {
    if (S.freed || S.slot[slot]) return S.slot[slot];
    simsub *u = calloc(1, sizeof *u);
    if (!u) abort();
    if (S.nsubs == S.capsubs) {
        S.capsubs = S.capsubs ? 2 * S.capsubs : 8;
        S.subs = realloc(S.subs, S.capsubs * sizeof *S.subs);
        if (!S.subs) abort();
    }
    S.subs[S.nsubs++] = u;
    u->id = (unsigned)S.nsubs;
    aredis_sub_options o = AREDIS_SUB_OPTIONS_INIT;
    u->handler = pick(2) == 0;
    static const size_t mb[] = {0, 1, 2, 5};
    o.max_buffered = mb[pick(4)];
    u->maxbuf = o.max_buffered ? o.max_buffered : 10000;
    static const int cm[] = {AREDIS_SUB_SHARED, AREDIS_SUB_AUTO, AREDIS_SUB_SHARED,
                             AREDIS_SUB_DEDICATED};
    u->conn_mode = cm[pick(4)];
    o.connection = u->conn_mode;
    o.on_message = u->handler ? ps_on_message : NULL;
    o.on_event = ps_sub_event;
    o.data = u;
    /* Where it lives: decided now, by the protocol the client speaks or
     * will speak. */
    u->owner = u->conn_mode == AREDIS_SUB_DEDICATED ||
                       (u->conn_mode == AREDIS_SUB_AUTO && aredis__client_proto(S.c) == 2)
                   ? OW_DED
                   : OW_MAIN;
    S.in_issue++;
    u->s = aredis_subscription_new(S.c, &o);
    S.in_issue--;
    trace("app: new subscription %u (%s, max_buffered %zu, %s: %s connection)", u->id,
          u->handler ? "handler" : "next()", u->maxbuf, k_ps_conn[u->conn_mode],
          u->owner == OW_DED ? "a dedicated" : "the client's");
    if (!u->s) {
        CHECK(aredis_client_state(S.c) == AREDIS_STATE_CLOSED,
              "aredis_subscription_new failed on a client not closed: %s",
              aredis_call_error()->detail);
        u->freed = 1;
        return NULL;
    }
    S.slot[slot] = u;
    g_stat.ps_subs++;
    return u;
}

static void ps_on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data);

/* A subscribe or unsubscribe of 1..3 names of one kind, callback or future. */
/* RESP2_RESERVED: a call that would wedge the client. */
static int ps_gated(const simsub *u) {
    return SIM_KNOWN_BUG_RESP2_RESERVED && !S.freed && u->owner == OW_MAIN && S.c->reserved;
}

static void ps_call(simsub *u, int unsub) {
    if (!u || u->freed || ps_gated(u)) return;
    rec *x = rec_new(K_PSUB);
    x->sub = u;
    x->unsub = unsub;
    x->owner = u->owner;
    x->pkind = (int)pick(3);
    unsigned n = pick(4) == 3 ? 2 + pick(2) : 1;
    unsigned held = u->held[x->pkind];
    for (unsigned i = 0; i < n; i++) {
        int idx = (int)pick(NNAME);
        if (unsub && held && pick(4) != 3) {
            unsigned j = pick(popc(held));
            for (int b = 0; b < NNAME; b++)
                if ((held & (1u << b)) && j-- == 0) idx = b;
        }
        x->names[x->nnames++] = (unsigned char)idx;
    }
    /* What goes to the server: every name to subscribe; of the names to
     * unsubscribe, those no other subscription of the connection holds
     * (none: a PING keeps the callback in order). */
    unsigned others = ps_union(u->owner, x->pkind, u), mask = 0;
    for (unsigned i = 0; i < x->nnames; i++) {
        unsigned bit = 1u << x->names[i];
        mask |= bit;
        if (!unsub || ((held & bit) && !(others & bit))) x->wire[x->nwire++] = x->names[i];
    }
    x->ping_path = unsub && !x->nwire;
    x->style = pick(2) ? 3 : 0;
    set_deadline(x, NULL);
    g_stat.issued++;
    g_stat.ps_calls++;
    const char *argv[4];
    for (unsigned i = 0; i < x->nnames; i++)
        argv[i] = k_ps_names[x->names[i]];
    const char *what = unsub ? k_ps_unsub[x->pkind] : k_ps_sub[x->pkind];
    trace("app: subscription %u: %s %s of %s%s%s%s (%s, %u to the server)", u->id, what, x->tok,
          argv[0], n > 1 ? " " : "", n > 1 ? argv[1] : "", n > 2 ? " ..." : "",
          x->style ? "future" : "callback", x->nwire);
    aredis_err e = AREDIS_ERR_OK;
    aredis_future *f = NULL;
    aredis_sub_kind kind = (aredis_sub_kind)x->pkind;
    S.in_issue++;
    if (!x->style)
        e = unsub ? aredis_subscription_unsubscribe(u->s, kind, n, argv, NULL, ps_on_reply, x)
                  : aredis_subscription_subscribe(u->s, kind, n, argv, NULL, ps_on_reply, x);
    else
        f = unsub ? aredis_subscription_unsubscribe_f(u->s, kind, n, argv, NULL)
                  : aredis_subscription_subscribe_f(u->s, kind, n, argv, NULL);
    S.in_issue--;
    if (x->style && !f) {
        /* No future at all: the subscription's client is gone. */
        x->refused = 1;
        CHECK(S.freed, "%s %s: no future, the client alive (%s)", what, x->tok,
              aredis_call_error()->detail);
        trace("app: %s %s refused: %s", what, x->tok, aredis_call_error()->detail);
        return;
    }
    if (f && aredis_future_is_done(f) && aredis_future_error(f)) e = aredis_future_error(f)->code;
    if (e == AREDIS_ERR_OK) {
        /* The names are the subscription's at once; or let go at once. */
        if (unsub) {
            ps_drop(u, x->pkind, mask);
        } else {
            x->new_mask = mask & ~u->held[x->pkind];
            ps_hold(u, x->pkind, mask);
        }
    }
    if (f)
        future_follow(x, f);
    else if (e != AREDIS_ERR_OK)
        check_refusal(x, e);
}

/* The server answered a call x: the (P|S)(UN)SUBSCRIBE it sent for x, on a
 * connection of x's client, answered as x ended (confirmations, or an
 * error), and sent in full (I-P3). */
static int ps_pcall_sent(const pscall *k) {
    const sconn *s = s_by_id(k->conn);
    return s ? k->end <= s->out_sent : k->sent;
}

static void ps_claim(rec *x, int error) {
    s_ingest_all();
    for (size_t i = 0; i < S.npcalls; i++) {
        pscall *k = &S.pcalls[i];
        if (k->claimed || k->owner != x->owner || k->kind != x->pkind || k->unsub != x->unsub ||
            k->error != error || k->n != x->nwire || memcmp(k->names, x->wire, x->nwire) != 0 ||
            !ps_pcall_sent(k))
            continue;
        k->claimed = 1;
        return;
    }
    /* The server dropping a shard channel on its own while our SUNSUBSCRIBE
     * of it is owed sends the very confirmation the call waits for (same
     * kind, same name): taken as the call's, which it is in effect. */
    if (x->unsub && x->pkind == 2 && !error) {
        unsigned m = 0;
        for (unsigned i = 0; i < x->nwire; i++)
            m |= 1u << x->wire[i];
        if ((S.unsol[x->owner] & m) == m) return;
    }
    violation("I-P3: %s %s of subscription %u (%u name(s): %s...) completed with %s, but the "
              "server has not sent %s for such a command on a connection of its client",
              x->unsub ? k_ps_unsub[x->pkind] : k_ps_sub[x->pkind], x->tok, x->sub->id, x->nwire,
              x->nwire ? k_ps_names[x->wire[0]] : "-", error ? "an error" : "success",
              error ? "that error" : "all the confirmations");
}

static void ps_call_complete(rec *x, const aredis_reply *r, const aredis_error *err) {
    simsub *u = x->sub;
    const char *what = x->unsub ? k_ps_unsub[x->pkind] : k_ps_sub[x->pkind];
    if (!err) {
        if (x->ping_path) {
            g_stat.ps_pings++;
            CHECK(!r, "I-P3: %s %s needed no server, yet succeeded with a reply", what, x->tok);
            return;
        }
        const char *last = k_ps_names[x->wire[x->nwire - 1]];
        CHECK(r && (r->type == AREDIS_REPLY_PUSH || r->type == AREDIS_REPLY_ARRAY) &&
                  r->elements == 3 && r->element[0]->str && ieq_lit(r->element[0], what) &&
                  r->element[1]->str && r->element[1]->len == 2 &&
                  memcmp(r->element[1]->str, last, 2) == 0,
              "I-P3: %s %s succeeded with something not its last confirmation (%s %s)", what,
              x->tok, what, last);
        ps_claim(x, 0);
        g_stat.ps_call_ok++;
        return;
    }
    if (err->code == AREDIS_ERR_SERVER) {
        CHECK(!x->unsub && !x->ping_path && r && r->type == AREDIS_REPLY_ERROR &&
                  (strcmp(err->prefix, "NOPERM") == 0 || strcmp(err->prefix, "MOVED") == 0),
              "I-P3: %s %s failed with a server error the server never gave it: %s %s", what,
              x->tok, err->prefix, err->detail);
        ps_claim(x, 1);
        g_stat.ps_call_err++;
        /* None of the names the call brought is held now; those held
         * before it stay (the contract: the server kept them). */
        if (u && !u->freed) {
            unsigned mask = 0;
            for (unsigned i = 0; i < x->nnames; i++)
                mask |= 1u << x->names[i];
            ps_drop(u, x->pkind, SIM_KNOWN_BUG_ERROR_DROPS_HELD ? mask : x->new_mask);
            sconn *sc = s_latest(x->owner);
            if (SIM_KNOWN_BUG_ERROR_DROPS_HELD && sc &&
                (sc->ps[x->pkind] & mask & ~ps_union(x->owner, x->pkind, NULL)))
                S.lost_call[x->owner] = 1;
        }
        return;
    }
    CHECK(!r, "%s %s failed (%s) with a reply", what, x->tok, aredis_err_name(err->code));
    check_failure(x, err);
    if (err->code == AREDIS_ERR_CANCELLED || err->code == AREDIS_ERR_TIMEOUT)
        S.lost_call[x->owner] = 1;
}

static void ps_on_reply(aredis_client *c, aredis_reply *r, const aredis_error *err, void *data) {
    (void)c;
    rec_complete(data, r, err, "callback");
    app_react("pub/sub callback");
}

/* A message reached subscription u (its handler, or a next() future). */
static void ps_delivered(simsub *u, const aredis_message *m, int by_handler) {
    CHECK(m->payload_len >= 2 && m->payload[0] == 'm',
          "I-P1: subscription %u got a message the server never sent (payload \"%.*s\")", u->id,
          (int)(m->payload_len > 40 ? 40 : m->payload_len), m->payload);
    unsigned long seq = strtoul(m->payload + 1, NULL, 10);
    CHECK(seq >= 1 && seq <= S.nmsgs, "I-P1: subscription %u got message m%lu, never sent", u->id,
          seq);
    psmsg *g = &S.msgs[seq - 1];
    const char *nm = m->kind == AREDIS_SUB_PATTERN ? m->pattern : m->channel;
    size_t nl = m->kind == AREDIS_SUB_PATTERN ? m->pattern_len : m->channel_len;
    int idx = nm ? name_idx(nm, nl) : -1;
    CHECK((int)m->kind == g->kind && idx == g->name,
          "I-P1: message m%lu arrived as %s %.*s, the server sent it as %s %s", seq,
          k_ps_msg[m->kind], (int)nl, nm ? nm : "", k_ps_msg[g->kind], k_ps_names[g->name]);
    CHECK(g->sent,
          "I-P1: message m%lu delivered to subscription %u before the server sent all of it "
          "(connection #%u)",
          seq, u->id, g->conn);
    CHECK(g->owner == u->owner,
          "I-P1: message m%lu of connection #%u delivered to subscription %u, which lives on "
          "another connection",
          seq, g->conn, u->id);
    int held = (u->held[g->kind] >> g->name) & 1;
    CHECK(held || (!by_handler && u->drop_epoch[g->kind][g->name] > g->sent_epoch),
          "I-P1: message m%lu (%s %s) delivered to subscription %u (%s), which does not hold it",
          seq, k_ps_msg[g->kind], k_ps_names[g->name], u->id, by_handler ? "handler" : "next()");
    CHECK(seq > u->last_seq,
          "I-P2: subscription %u got message m%lu after m%u (out of the server's order, or twice)",
          u->id, seq, u->last_seq);
    if (u->cont_conn && u->cont_conn != g->conn)
        CHECK(g->conn < S.nresub && ((S.resub[g->conn] >> (u->id % 64)) & 1),
              "I-P5: subscription %u got message m%lu of connection #%u, its first since #%u "
              "(names held all along), without a RESUBSCRIBED first",
              u->id, seq, g->conn, u->cont_conn);
    u->last_seq = (unsigned)seq;
    u->last_msg_conn = g->conn;
    /* Names held since before the server sent it (a buffered message may
     * be older than what the subscription holds now). */
    u->cont_conn = ps_holds(u) && g->sent_epoch >= u->hold_since ? g->conn : 0;
    if (by_handler)
        g_stat.ps_by_handler++;
    else
        g_stat.ps_by_next++;
    trace("app: subscription %u got m%lu (%s %s) via %s", u->id, seq, k_ps_msg[g->kind],
          k_ps_names[g->name], by_handler ? "its handler" : "next()");
}

static void ps_free(simsub *u);

static void ps_on_message(aredis_subscription *s, const aredis_message *m, void *data) {
    simsub *u = data;
    CHECK(u && u->s == s && u->handler, "a message handler ran for an unknown subscription");
    CHECK(!u->freed, "I-P1: a message delivered to subscription %u after its free", u->id);
    CHECK(!S.in_issue, "I1: a message handler ran inside an issuing call");
    ps_delivered(u, m, 1);
    if (exhausted()) return;
    u->in_handler++;
    unsigned v = pick(8);
    if (v == 7) {
        trace("app: in the handler of subscription %u:", u->id);
        ps_free(u);
    } else if (v == 6) {
        app_react("message handler");
    }
    u->in_handler--;
}

static void ps_next_complete(rec *x, const aredis_reply *r, const aredis_error *err) {
    if (err) {
        switch (err->code) {
        case AREDIS_ERR_CANCELLED:
            CHECK(x->cancel_asked || x->sub->freed || S.ever_closed,
                  "next() %s CANCELLED, yet neither cancelled nor freed", x->tok);
            break;
        case AREDIS_ERR_CLOSED:
        case AREDIS_ERR_EOF:
        case AREDIS_ERR_IO:
        case AREDIS_ERR_CONNREFUSED:
        case AREDIS_ERR_PROTOCOL:
        case AREDIS_ERR_AUTH:
        case AREDIS_ERR_HANDSHAKE:
        case AREDIS_ERR_TIMEOUT:
        case AREDIS_ERR_NOT_CONNECTED:
            break;
        default:
            violation("next() %s failed with an unexpected %s: %s", x->tok,
                      aredis_err_name(err->code), err->detail);
        }
        CHECK(!r, "next() %s failed with a reply", x->tok);
        return;
    }
    aredis_message m;
    CHECK(r && aredis_message_parse((aredis_reply *)r, &m) == 0,
          "I-P1: next() %s of subscription %u resolved with something not a message (%s)", x->tok,
          x->sub->id, r ? aredis_reply_type_name(r->type) : "NULL");
    ps_delivered(x->sub, &m, 0);
}

static void ps_next(simsub *u) {
    if (!u || u->freed || (SIM_KNOWN_BUG_NEXT_IN_OVERFLOW && u->in_overflow)) return;
    rec *x = rec_new(K_NEXT);
    x->sub = u;
    x->owner = u->owner;
    x->style = 3;
    g_stat.ps_nexts++;
    trace("app: subscription %u: next() %s", u->id, x->tok);
    aredis_future *f = aredis_subscription_next(u->s);
    if (!f) {
        x->refused = 1;
        CHECK(S.freed, "next() returned no future, the client alive: %s",
              aredis_call_error()->detail);
        return;
    }
    if (aredis_future_is_done(f)) {
        const aredis_error *fe = aredis_future_error(f);
        if (fe && (fe->code == AREDIS_ERR_INVALID || fe->code == AREDIS_ERR_CLOSED)) {
            /* Refused: a handler takes the messages, or the client closed. */
            x->refused = 1;
            CHECK(fe->code == AREDIS_ERR_INVALID ? u->handler
                                                 : aredis_client_state(S.c) == AREDIS_STATE_CLOSED,
                  "next() %s of subscription %u refused: %s", x->tok, u->id, fe->detail);
        } else {
            /* A buffered message, at once. */
            CHECK(!u->handler, "next() %s of a subscription with a handler did not fail", x->tok);
            x->calls = 1;
            ps_next_complete(x, aredis_future_reply(f), fe);
        }
        aredis_future_release(f);
        return;
    }
    CHECK(!u->handler, "next() %s of a subscription with a handler did not fail at once", x->tok);
    x->f = f;
    if (aredis_future_then(f, on_future, x) != AREDIS_ERR_OK) abort();
}

static void ps_free(simsub *u) {
    if (!u || u->freed) return;
    if (SIM_KNOWN_BUG_FREE_IN_EVENT && u->in_event) return;
    if (ps_gated(u) && ps_holds(u)) return;
    trace("app: free subscription %u (holding %#x %#x %#x)%s", u->id, u->held[0], u->held[1],
          u->held[2], u->in_handler ? " from inside its handler" : "");
    aredis_client *c = S.freed ? NULL : u->owner == OW_MAIN ? S.c : S.ded;
    size_t kinds = (u->held[0] != 0) + (u->held[1] != 0) + (u->held[2] != 0);
    if (SIM_KNOWN_BUG_FREE_UNSUB_REFUSED && c && S.o.max_queue_size && kinds &&
        c->user_pending + c->orphans + kinds > S.o.max_queue_size)
        S.lost_call[u->owner] = 1;
    for (int k = 0; k < 3; k++)
        ps_drop(u, k, u->held[k]);
    u->freed = 1;
    for (int i = 0; i < NSUB; i++)
        if (S.slot[i] == u) S.slot[i] = NULL;
    aredis_subscription_free(u->s);
}

/* RESUBSCRIBED: before any message of the new connection (I-P5); the
 * first of a connection says what its replay must be. */
static void ps_on_resub(simsub *u) {
    unsigned conn = S.last_conn[u->owner];
    g_stat.ps_resub++;
    CHECK(ps_holds(u), "RESUBSCRIBED for subscription %u, which holds nothing", u->id);
    CHECK(u->last_msg_conn != conn,
          "I-P5: RESUBSCRIBED for connection #%u after subscription %u got a message of it", conn,
          u->id);
    u->resub_conn = conn;
    if (conn >= S.nresub) {
        size_t n = conn + 64;
        S.resub = realloc(S.resub, n * sizeof *S.resub);
        if (!S.resub) abort();
        memset(S.resub + S.nresub, 0, (n - S.nresub) * sizeof *S.resub);
        S.nresub = n;
    }
    S.resub[conn] |= 1ull << (u->id % 64);
    sconn *sc = s_by_id(conn);
    if (sc && !sc->rp_known) {
        sc->rp_known = 1;
        for (int k = 0; k < 3; k++)
            sc->rp_expect[k] = ps_union(u->owner, k, NULL);
        trace("app: the replay owed on connection #%u: %#x %#x %#x", conn, sc->rp_expect[0],
              sc->rp_expect[1], sc->rp_expect[2]);
        ps_check_replay(sc);
    }
}

/* DROPPED: the server dropped a shard channel on its own (I-P6). */
static void ps_on_dropped(simsub *u, const aredis_error *err) {
    static const char pre[] = "the server dropped ";
    CHECK(err && strncmp(err->detail, pre, sizeof pre - 1) == 0, "DROPPED without saying what");
    const char *nm = err->detail + sizeof pre - 1;
    int idx = name_idx(nm, strlen(nm));
    int kind = -1;
    for (int k = 0; k < 3 && idx >= 0; k++)
        if (((u->held[k] >> idx) & 1) &&
            popc(u->held[k]) == aredis_subscription_count(u->s, (aredis_sub_kind)k) + 1)
            kind = k;
    CHECK(kind >= 0, "DROPPED %s for subscription %u, which did not hold it", nm, u->id);
    CHECK(kind == 2 && ((S.unsol[u->owner] >> idx) & 1),
          "I-P6: subscription %u lost %s %s (DROPPED), which the server never dropped on its own",
          u->id,
          kind == 0   ? "channel"
          : kind == 1 ? "pattern"
                      : "shard channel",
          nm);
    ps_drop(u, kind, 1u << idx);
    g_stat.ps_dropped++;
}

static void ps_sub_event(aredis_subscription *s, aredis_sub_event ev, const aredis_error *err,
                         void *data) {
    simsub *u = data;
    CHECK(u && u->s == s, "an event for an unknown subscription");
    CHECK(!u->freed, "an event (%d) for subscription %u after its free", (int)ev, u->id);
    CHECK(!S.in_issue, "I1: a subscription event ran inside an issuing call");
    trace("app: subscription %u: event %d%s%s", u->id, (int)ev, err ? ": " : "",
          err ? err->detail : "");
    switch (ev) {
    case AREDIS_SUB_RESUBSCRIBED:
        ps_on_resub(u);
        break;
    case AREDIS_SUB_OVERFLOW:
        CHECK(!u->handler, "OVERFLOW for subscription %u, which has a handler", u->id);
        g_stat.ps_overflow++;
        break;
    case AREDIS_SUB_DROPPED:
        ps_on_dropped(u, err);
        break;
    case AREDIS_SUB_ERROR:
        g_stat.ps_errors++;
        break;
    case AREDIS_SUB_ENDED:
        g_stat.ps_ended++;
        break;
    default:
        violation("subscription %u: unknown event %d", u->id, (int)ev);
    }
    u->in_event++;
    u->in_overflow += ev == AREDIS_SUB_OVERFLOW;
    if (pick(4) == 3 && !(SIM_KNOWN_BUG_ENDED_ITER && ev == AREDIS_SUB_ENDED))
        app_react("subscription event");
    u->in_overflow -= ev == AREDIS_SUB_OVERFLOW;
    u->in_event--;
}

/* One pub/sub action of the application. */
static void ps_app(unsigned a) {
    switch (a) {
    case 0:
    case 1:
    case 2:
        ps_call(ps_sub_new(pick(NSUB)), 0);
        break;
    case 3:
    case 4:
        ps_call(S.slot[pick(NSUB)], 1);
        break;
    case 5: {
        simsub *u = S.slot[pick(NSUB)];
        for (unsigned k = 1 + pick(3); k-- > 0;)
            ps_next(u);
        break;
    }
    case 6:
        ps_free(S.slot[pick(NSUB)]);
        break;
    default:
        ps_sub_new(pick(NSUB));
        break;
    }
}

/* The client's queues: the (UN)SUBSCRIBE commands owed (white box, I6). */
static size_t lib_pubsub_cmds(void) {
    size_t n = 0;
    const aredis__cmdq *qs[] = {&S.c->sent, &S.c->waiting, &S.c->held};
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++)
        for (const aredis__cmd *cmd = qs[i]->head; cmd; cmd = cmd->next)
            if (cmd->batch && (cmd->batch->bflags & AREDIS__BATCH_PUBSUB) &&
                !(cmd->flags & (AREDIS__CMD_INTERNAL | AREDIS__CMD_ORPHAN)))
                n++;
    return n;
}

/* After every step: the library's counts are the model's; buffers bounded. */
static void ps_check(const char *where) {
    for (int i = 0; i < NSUB; i++) {
        simsub *u = S.slot[i];
        if (!u) continue;
        for (int k = 0; k < 3; k++)
            CHECK(popc(u->held[k]) == aredis_subscription_count(u->s, (aredis_sub_kind)k),
                  "I-P1: subscription %u holds %zu name(s) of kind %d says the library, %u "
                  "(%#x) says the application's model (%s)",
                  u->id, aredis_subscription_count(u->s, (aredis_sub_kind)k), k, popc(u->held[k]),
                  u->held[k], where);
        aredis_sub_stats st;
        aredis_subscription_get_stats(u->s, &st);
        CHECK(st.buffered <= u->maxbuf,
              "I-P4: subscription %u buffers %zu message(s), max %zu (%s)", u->id, st.buffered,
              u->maxbuf, where);
        CHECK(!u->handler || !st.buffered, "subscription %u has a handler and buffers %zu", u->id,
              st.buffered);
    }
}

static int ps_quiet(void) {
    aredis_client *cs[2] = {S.c, S.ded};
    for (int i = 0; i < 2; i++)
        if (cs[i] &&
            (cs[i]->sent.n || cs[i]->waiting.n || cs[i]->held.n || aredis__buf_used(&cs[i]->out)))
            return 0;
    for (sconn *s = S.conns; s; s = s->next)
        if (!s->eof && (s->ncmds || s->olen)) return 0;
    return 1;
}

/*
 * Settled (I-P8): once nothing is owed either way, the server's
 * subscriptions on each live connection are exactly what the application's
 * subscriptions on it hold (but a kind whose names the ACL refuses now:
 * its replay was refused, and the names stay until the next reconnect).
 */
static void ps_converge(void) {
    if (!S.ps || S.freed) return;
    for (int round = 0; round < 200 && !ps_quiet(); round++) {
        s_ingest_all();
        for (sconn *s = S.conns; s; s = s->next) {
            s_process(s);
            s_send(s, (size_t)-1);
        }
        s_reap();
        turn(AREDIS_EV_READ | AREDIS_EV_WRITE, 0);
        if (S.freed) return;
    }
    if (!ps_quiet()) return;
    for (int owner = OW_MAIN; owner <= OW_DED; owner++) {
        aredis_client *c = owner == OW_MAIN ? S.c : S.ded;
        sconn *sc = s_latest(owner);
        if (!c || aredis_client_state(c) != AREDIS_STATE_READY || !sc || !sc->authed ||
            sc->id != S.last_conn[owner] || (SIM_KNOWN_BUG_UNWRITTEN_CALL && S.lost_call[owner]))
            continue;
        /* A transaction's WATCH holds the connection: what the library
         * sends for subscriptions (a RESP2 replay, a call sent again)
         * waits behind it, for as long as the application keeps it. */
        if (aredis__session(c) & AREDIS__SESS_WATCH) continue;
        g_stat.ps_converged++;
        for (int k = 0; k < 3; k++) {
            unsigned want = ps_union(owner, k, NULL);
            /* Names the server refuses (an ACL; a shard channel whose slot
             * moved: MOVED for good) can be held yet not subscribed. */
            if ((want & S.acl[k]) || (sc->rp_refused & (1u << k)) ||
                (S.ps_refused[owner] & (1u << k)) || (k == 2 && (want & sc->moved)))
                continue;
            /* A shard channel the server dropped on its own while a
             * subscribe of it was pending: that subscribe puts it back on
             * the server, the subscription no longer holds it (its slot
             * moved: following it is cluster work). */
            unsigned loose = k == 2 ? S.unsol[owner] : 0;
            CHECK((sc->ps[k] & ~loose) == (want & ~loose),
                  "I-P8: settled, connection #%u (%s) is subscribed to %s %#x, the "
                  "subscriptions on it hold %#x",
                  sc->id, owner == OW_MAIN ? "the client's" : "the subscriber's", k_ps_sub[k],
                  sc->ps[k], want);
        }
    }
}

/* The server's side of a pub/sub step. */
static void ps_server(unsigned a) {
    if (a < 3) {
        /* A burst of messages on the client's or the subscriber's connection. */
        sconn *s = s_latest(pick(2) ? OW_DED : OW_MAIN);
        unsigned n = 1 + pick(4);
        if (pick(8) == 7) n += pick(16);
        if (s)
            for (unsigned i = 0; i < n; i++)
                s_ps_message(s);
    } else if (a == 3) {
        if (pick(4) == 3) {
            sconn *s = s_latest(pick(2) ? OW_DED : OW_MAIN);
            if (s) s_ps_unsolicited(s);
        }
    } else if (a == 4) {
        /* The ACL changes: a name refused from now on, and every connection
         * subscribed to it killed (Redis 7); or all allowed again. */
        unsigned v = pick(8);
        if (v == 7) {
            int k = (int)pick(3), i = (int)pick(NNAME);
            S.acl[k] |= 1u << i;
            g_stat.ps_acl++;
            trace("server: the ACL refuses %s %s from now on", k_ps_sub[k], k_ps_names[i]);
            for (sconn *s = S.conns; s; s = s->next)
                if (!s->eof && (s->ps[k] & (1u << i))) s_close(s, 0);
        } else if (v == 6) {
            memset(S.acl, 0, sizeof S.acl);
            trace("server: the ACL allows every name again");
        }
    } else {
        /* The subscriber connection: closed, reset, or answered piecemeal. */
        sconn *s = s_latest(OW_DED);
        unsigned v = pick(4);
        if (!s) return;
        s_ingest_all();
        if (v == 1)
            s_close(s, 0);
        else if (v == 2)
            s_close(s, 1);
        else if (v == 3) {
            unsigned k = pick(4);
            s_process_n(s, k ? k : (size_t)-1);
            static const size_t sizes[] = {1, 2, 3, 5, 8, 13, 40, 100};
            s_send(s, sizes[pick(8)]);
        }
    }
}

/* A pub/sub step: 16 values. */
static void ps_step(unsigned w) {
    if (w < 8)
        ps_app(w);
    else if (w < 13)
        ps_server(w - 8);
    else if (w == 13)
        ps_server(5);
    else if (w == 14)
        app_issue();
    else if (pick(2))
        app_cancel();
    else
        app_release();
}

/* Subscriptions left at the end: freed after their client. */
static void ps_free_all(void) {
    for (int i = 0; i < NSUB; i++)
        if (S.slot[i]) ps_free(S.slot[i]);
}

/* ---- Connection callbacks (I5) ------------------------------------------------ */

static void on_new_attempt(void) {
    S.attempts++;
    S.errored = 0;
}

static void cb_connect(aredis_client *c, void *data) {
    (void)data;
    trace("client: on_connect (RESP%d)", aredis_client_protocol(c));
    CHECK(!S.in_issue, "on_connect ran inside an issuing call");
    CHECK(!S.up, "I5: on_connect twice without on_disconnect");
    /* CLOSING: disconnect() was called during the handshake. */
    CHECK(aredis_client_state(c) == AREDIS_STATE_READY ||
              (S.ever_disconnect && aredis_client_state(c) == AREDIS_STATE_CLOSING),
          "I5: on_connect in state %s", aredis_state_name(aredis_client_state(c)));
    S.up = 1;
    S.connects++;
    g_stat.connects++;
    S.last_attempt = 0;
    app_react("on_connect");
}

static void cb_disconnect(aredis_client *c, const aredis_error *err, void *data) {
    (void)c, (void)data;
    trace("client: on_disconnect %s: %s", aredis_err_name(err->code), err->detail);
    CHECK(!S.in_issue, "on_disconnect ran inside an issuing call");
    CHECK(S.up, "I5: on_disconnect without on_connect");
    S.up = 0;
    S.disconnects++;
    app_react("on_disconnect");
}

static void cb_error(aredis_client *c, const aredis_error *err, void *data) {
    (void)c, (void)data;
    trace("client: on_error %s: %s", aredis_err_name(err->code), err->detail);
    CHECK(!S.in_issue, "on_error ran inside an issuing call");
    CHECK(!S.errored, "I5: on_error twice for one connection attempt (%s: %s)",
          aredis_err_name(err->code), err->detail);
    CHECK(err->code != AREDIS_ERR_OK, "on_error with OK");
    S.errored = 1;
    S.errors++;
    g_stat.errors++;
    app_react("on_error");
}

static void cb_reconnect(aredis_client *c, unsigned attempt, uint32_t delay, void *data) {
    (void)c, (void)data;
    trace("client: on_reconnect_attempt %u in %u ms", attempt, (unsigned)delay);
    CHECK(!S.in_issue, "on_reconnect_attempt ran inside an issuing call");
    CHECK(attempt == S.last_attempt + 1, "I5: reconnect attempt %u reported after attempt %u",
          attempt, S.last_attempt);
    S.last_attempt = attempt;
    g_stat.reconnects++;
    app_react("on_reconnect_attempt");
}

static void cb_push(aredis_client *c, aredis_reply *push, void *data) {
    (void)c, (void)data;
    char d[96];
    describe_reply(push, d, sizeof d);
    trace("client: on_push %s", d);
    CHECK(push && push->type == AREDIS_REPLY_PUSH, "on_push with a %s",
          push ? aredis_reply_type_name(push->type) : "NULL");
    S.pushes++;
    g_stat.pushes++;
    if (pick(4) == 0) app_react("on_push");
}

/* ---- Steps ---------------------------------------------------------------------- */

/* IR: a command failed because "the WATCH ahead of it failed": a WATCH of
 * its own round has failed (before or after it: an unsent WATCH of a round
 * whose later WATCH failed goes too — sent, it would hold the line with no
 * EXEC to come). */
static void check_blamed(void) {
    for (size_t k = 0; k < S.nrecs; k++) {
        rec *x = S.recs[k];
        if (x->blamed != 1) continue;
        x->blamed = 2;
        int found = 0;
        for (size_t i = 0; i < S.nrecs && !found; i++) {
            rec *w = S.recs[i];
            found =
                w->kind == K_WATCH && w->txi == x->txi && w->round == x->round && w->watch_failed;
        }
        CHECK(x->txi && found,
              "IR: %s %s (transaction %u, round %u) failed because \"the WATCH ahead of it "
              "failed\", yet no WATCH of its round has failed",
              k_names[x->kind], x->tok, x->txi, x->round);
    }
}

/* The client's own commands with no callback (a transaction's UNWATCH)
 * still owed: aredis_client_pending() counts them (white box). */
static size_t lib_anonymous_pending(void) {
    size_t n = 0;
    const aredis__cmdq *qs[] = {&S.c->sent, &S.c->waiting, &S.c->held};
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++)
        for (const aredis__cmd *cmd = qs[i]->head; cmd; cmd = cmd->next)
            if (!cmd->cb && !(cmd->flags & (AREDIS__CMD_INTERNAL | AREDIS__CMD_ORPHAN))) n++;
    return n;
}

static void check_step(const char *where) {
    check_blamed();
    for (size_t i = 0; i < S.nrecs; i++) {
        rec *x = S.recs[i];
        if (x->f && !x->released)
            CHECK(aredis_future_is_done(x->f) == (x->calls > 0),
                  "I6: the future of %s %s: is_done %d but completions %d (%s)", k_names[x->kind],
                  x->tok, aredis_future_is_done(x->f), x->calls, where);
    }
    if (S.ps) ps_check(where);
    if (S.freed) return;
    size_t mine = pending_count_ex(1);
    size_t anon = lib_anonymous_pending();
    size_t lib = aredis_client_pending(S.c);
    size_t pscmds = S.ps ? lib_pubsub_cmds() : 0;
    CHECK(lib == mine + anon + pscmds,
          "I6: aredis_client_pending() is %zu, the application waits for %zu (and the client for "
          "%zu UNWATCH, %zu (UN)SUBSCRIBE) (%s)",
          lib, mine, anon, pscmds, where);
    if (S.ps) {
        size_t calls = 0;
        for (size_t i = 0; i < S.nrecs; i++) {
            const rec *x = S.recs[i];
            calls += x->kind == K_PSUB && x->owner == OW_MAIN && !x->ping_path && !x->refused &&
                     !x->calls;
        }
        CHECK(pscmds >= calls,
              "I6: %zu subscribe call(s) of the application owed on the client, %zu (UN)SUBSCRIBE "
              "in its queues (%s)",
              calls, pscmds, where);
    }
    aredis_state st = aredis_client_state(S.c);
    CHECK(!lib || (st != AREDIS_STATE_IDLE && st != AREDIS_STATE_CLOSED),
          "I6: %zu command(s) pending on a client %s (%s)", lib, aredis_state_name(st), where);
    if (S.c->held.n) g_stat.held_seen++;
    for (unsigned i = 0; i < NTX; i++)
        if (S.tx[i].tx)
            CHECK(aredis_tx_size(S.tx[i].tx) == S.tx[i].nq,
                  "I6: aredis_tx_size() of transaction %u is %zu, %zu queued (%s)", S.tx[i].txi,
                  aredis_tx_size(S.tx[i].tx), S.tx[i].nq, where);
    if (S.pipe)
        CHECK(aredis_pipeline_size(S.pipe) == S.npq,
              "I6: aredis_pipeline_size() is %zu, %zu queued (%s)", aredis_pipeline_size(S.pipe),
              S.npq, where);
    if (st == AREDIS_STATE_IDLE || st == AREDIS_STATE_CLOSED)
        CHECK(!S.up, "I5: client %s, and on_disconnect owed", aredis_state_name(st));
}

/* One loop turn under a policy, then the timeout lateness check (I4). */
static void turn(int allow, int timers_first) {
    uint64_t start = g_loop.now;
    g_stat.turns++;
    g_loop.allow = allow;
    g_loop.timers_first = timers_first;
    l_run_once(&g_loop, 0);
    for (size_t i = 0; i < S.nrecs; i++) {
        rec *x = S.recs[i];
        if (x->refused || x->calls || !x->has_deadline || x->deadline > start) continue;
        CHECK(++x->overdue < 2,
              "I4: %s %s (deadline %llu) still pending after two turns that began past it",
              k_names[x->kind], x->tok, (unsigned long long)x->deadline);
    }
}

static void advance(uint64_t ms) {
    g_loop.now += ms;
    trace("time: +%llu ms", (unsigned long long)ms);
}

static void step(void) {
    unsigned v = pick(S.ps ? 80 : 64);
    sconn *cur = s_current();
    if (v >= 64) {
        ps_step(v - 64);
    } else if (v < 16) {
        unsigned p = pick(16);
        int allow = AREDIS_EV_READ | AREDIS_EV_WRITE;
        if (p == 1) allow &= ~AREDIS_EV_READ;
        if (p == 2) allow &= ~AREDIS_EV_WRITE;
        trace("loop: turn%s%s",
              p == 1   ? " (no reads)"
              : p == 2 ? " (no writes)"
                       : "",
              p >= 12 ? " (timers first)" : "");
        turn(allow, p >= 12);
    } else if (v < 26) {
        s_ingest_all();
        for (sconn *s = S.conns; s; s = s->next) {
            s_process(s);
            s_send(s, (size_t)-1);
        }
    } else if (v < 30) {
        s_ingest_all();
        if (cur) {
            /* Some of what was read, or all: replies come piecemeal. */
            unsigned k = pick(4);
            s_process_n(cur, k ? k : (size_t)-1);
            static const size_t sizes[] = {1, 2, 3, 5, 8, 13, 40, 100};
            s_send(cur, sizes[pick(8)]);
        }
    } else if (v < 36) {
        static const uint64_t ms[] = {1, 1, 4, 10, 10, 30, 100, 300, 1000, 5000, 0, 0};
        unsigned k = pick(12);
        if (k >= 10) {
            uint64_t due = l_next_due();
            if (due > g_loop.now) advance(due - g_loop.now);
        } else {
            advance(ms[k]);
        }
    } else if (v < 41) {
        for (unsigned k = 1 + (pick(4) == 0 ? pick(5) : 0); k-- > 0;)
            app_issue();
    } else if (v < 45) {
        app_batch();
    } else if (v < 46) {
        app_cancel();
    } else if (v == 46) {
        app_release();
    } else if (v == 47 && S.ps) {
        /* Pub/sub: a message, at a reply boundary. */
        if (cur) s_ps_message(cur);
    } else if (v == 47 || v == 48) {
        /* Out of band: a push (RESP3 only), at a reply boundary. */
        if (cur && cur->proto == 3 && cur->authed) {
            if (pick(2)) {
                s_puts(cur, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n");
            } else {
                s_puts(cur, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n");
            }
            trace("server #%u: queued a push", cur->id);
        }
    } else if (v == 49) {
        /* A surplus reply, only when nothing is owed: everything read has
         * been answered, and the client has consumed all of it (the socket
         * holds nothing unread: SIOCOUTQ), so the surplus is all that is in
         * the pipe and the client reads it before it can write again (a
         * forced turn, reads first). A correct client must treat it as a
         * protocol error, never hand it to a command. (Had earlier replies
         * still been in the socket, the client could read them, write new
         * commands, and only then meet the surplus — which no client can
         * tell from those commands' own reply.) */
        s_ingest_all();
        if (cur && !cur->eof && cur->authed && !S.freed &&
            aredis_client_state(S.c) == AREDIS_STATE_READY && !S.mute) {
            s_process(cur);
            s_send(cur, (size_t)-1);
            int unread = -1;
            if (!cur->olen && cur->fd >= 0 && ioctl(cur->fd, SIOCOUTQ, &unread) == 0 &&
                unread == 0) {
                char v2[32];
                int n = snprintf(v2, sizeof v2, "surplus%u", ++S.surplus_seq);
                s_bulk(cur, v2, (size_t)n);
                trace("server #%u: a surplus reply \"%s\"", cur->id, v2);
                g_stat.surplus++;
                s_send(cur, (size_t)-1);
                turn(AREDIS_EV_READ | AREDIS_EV_WRITE, 0);
            }
        }
    } else if (v == 50) {
        if (cur) s_close(cur, 0);
    } else if (v == 51) {
        if (cur) s_close(cur, 1);
    } else if (v == 52) {
        S.mute = !S.mute;
        trace("server: %s", S.mute ? "muted (reads, does not answer)" : "answers again");
    } else if (v == 53) {
        if (pick(4) == 0) app_disconnect();
    } else if (v == 54) {
        /* close and free end what a run can explore: rare */
        unsigned k = pick(32);
        if (k == 0)
            app_close();
        else if (k == 1)
            app_free();
    } else if (v == 55) {
        if (pick(2)) app_cancel();
    } else if (v < 59) {
        if (!S.freed && aredis_client_state(S.c) == AREDIS_STATE_IDLE) app_connect();
    } else {
        /* Let time run to the next timer and take a turn. */
        uint64_t due = l_next_due();
        if (due > g_loop.now) advance(due - g_loop.now);
        trace("loop: turn");
        turn(AREDIS_EV_READ | AREDIS_EV_WRITE, pick(2));
    }
    if (S.eager == 2 || (S.eager == 1 && pick(2))) {
        s_ingest_all();
        for (sconn *s = S.conns; s; s = s->next) {
            s_process(s);
            s_send(s, (size_t)-1);
        }
    }
    s_reap();
    check_step("after a step");
}

/* Cooperative server, time running on: everything must complete (I9). */
static void settle(void) {
    trace("settle: the server answers everything from now on");
    S.mute = 0;
    /* Rounds, and with pub/sub also virtual time: a subscriber
     * connection's health checks keep the next timer a few ms away, so
     * time moves in small steps, while the client's next reconnect may be
     * the longest backoff away (30 s, +50 % jitter). */
    uint64_t t0 = g_loop.now;
    for (int round = 0; round < (S.ps ? 5 * SETTLE_ROUNDS : SETTLE_ROUNDS) ||
                        (S.ps && g_loop.now - t0 < SETTLE_PS_MS && round < 50 * SETTLE_ROUNDS);
         round++) {
        s_ingest_all();
        for (sconn *s = S.conns; s; s = s->next) {
            s_process(s);
            s_send(s, (size_t)-1);
        }
        s_reap();
        turn(AREDIS_EV_READ | AREDIS_EV_WRITE, 0);
        check_step("settling");
        if (S.freed) return;
        if (!pending_count()) return;
        if (round % 4 == 3 || (S.ps && round > 100 && round % 4 == 1)) {
            /* (Pub/sub: time runs faster, and longer, so that a subscriber
             * connection's health checks do not keep the client's
             * reconnect delay from coming — but never every round: a
             * handshake of a few round trips must be able to finish
             * before its connect deadline comes.) */
            uint64_t due = l_next_due();
            if (due > g_loop.now) advance(due - g_loop.now);
        }
    }
    for (size_t i = 0; i < S.nrecs; i++) {
        rec *x = S.recs[i];
        CHECK(x->refused || x->in_batch || x->calls || x->kind == K_NEXT,
              "I9: %s %s still pending after the server turned cooperative (client %s, %zu held)",
              k_names[x->kind], x->tok, aredis_state_name(aredis_client_state(S.c)), S.c->held.n);
    }
}

/* ---- One run ---------------------------------------------------------------------- */

static void setup_once(void) {
    static int done;
    if (done) return;
    done = 1;
    aredis_set_allocator(&g_counting);
    snprintf(g_dir, sizeof g_dir, "/tmp/aredis-sim-XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    snprintf(g_path, sizeof g_path, "%s/s", g_dir);
    g_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, g_path, strlen(g_path) + 1);
    if (g_listen_fd < 0 || bind(g_listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(g_listen_fd, 4096) != 0) {
        perror("client_sim: listen");
        abort();
    }
}

static void cleanup_at_exit(void) {
    if (g_path[0]) unlink(g_path);
    if (g_dir[0]) rmdir(g_dir);
    g_path[0] = g_dir[0] = '\0';
    const char *v = getenv("AREDIS_SIM_STATS");
    if (v && *v && *v != '0') {
        fprintf(stderr,
                "client_sim: %lu run(s), %lu step(s), %lu turn(s), %lu connection(s) accepted, "
                "%lu on_connect, %lu on_error, %lu reconnect(s), %lu push(es), %lu surplus "
                "repl(ies)\nclient_sim: %lu command(s) issued, %lu refused at issue, %lu OK, "
                "%lu server error(s)",
                g_stat.runs, g_stat.steps, g_stat.turns, g_stat.conns, g_stat.connects,
                g_stat.errors, g_stat.reconnects, g_stat.pushes, g_stat.surplus, g_stat.issued,
                g_stat.refused, g_stat.ok, g_stat.server_err);
        for (int i = 1; i < AREDIS_ERR__COUNT; i++)
            if (g_stat.by_code[i] && i != AREDIS_ERR_SERVER)
                fprintf(stderr, ", %lu %s", g_stat.by_code[i], aredis_err_name((aredis_err)i));
        fprintf(stderr,
                "\nclient_sim: %lu pipeline(s) (%lu OK, %lu failed with a partial array, %lu of "
                "them at EOF), %lu transaction(s), %lu WATCH (%lu OK), "
                "%lu read(s), %lu discard(s), %lu free(s); EXEC: %lu array, %lu nil, %lu "
                "EXECABORT; %lu step(s) with commands held by a reservation",
                g_stat.pipelines, g_stat.pipe_ok, g_stat.pipe_partial, g_stat.pipe_eof_partial,
                g_stat.txs, g_stat.watches, g_stat.watch_ok, g_stat.tx_reads, g_stat.discards,
                g_stat.tx_frees, g_stat.tx_array, g_stat.tx_nil, g_stat.tx_abort, g_stat.held_seen);
        fprintf(stderr,
                "\nclient_sim: pub/sub: %lu run(s), %lu subscription(s) (%lu subscriber "
                "connection(s)), %lu call(s) (%lu OK, %lu refused by the server, %lu needing no "
                "server), %lu next(), %lu message(s) published, delivered %lu to handlers and %lu "
                "to next(); events: %lu RESUBSCRIBED, %lu OVERFLOW, %lu DROPPED, %lu ERROR, %lu "
                "ENDED; %lu unsolicited, %lu ACL change(s), %lu subscribed-mode refusal(s) by the "
                "server, %lu by the client at the call; %lu settled connection(s) compared",
                g_stat.ps_runs, g_stat.ps_subs, g_stat.ps_dedicated, g_stat.ps_calls,
                g_stat.ps_call_ok, g_stat.ps_call_err, g_stat.ps_pings, g_stat.ps_nexts,
                g_stat.ps_published, g_stat.ps_by_handler, g_stat.ps_by_next, g_stat.ps_resub,
                g_stat.ps_overflow, g_stat.ps_dropped, g_stat.ps_errors, g_stat.ps_ended,
                g_stat.ps_unsol, g_stat.ps_acl, g_stat.ps_ctx, g_stat.ps_refused_resp2,
                g_stat.ps_converged);
        fprintf(stderr, "\nclient_sim: refused:");
        for (int i = 1; i < AREDIS_ERR__COUNT; i++)
            if (g_stat.refused_by[i])
                fprintf(stderr, " %lu %s", g_stat.refused_by[i], aredis_err_name((aredis_err)i));
        fprintf(stderr, "\n");
    }
}

/*
 * A pub/sub run: told by the first byte, without consuming it (it is the
 * protocol's choice too) — from the values no corpus file made before
 * pub/sub starts with, so that those replay exactly as they did: about
 * half of the pseudo-random inputs.
 */
static int ps_run(void) {
    if (!g_in_len) return 0;
    uint8_t b = g_in[0];
    return (b >= 0x70 && b <= 0x88) || (b >= 0x92 && b <= 0xa7) ||
           (b >= 0xb0 && b <= 0xf6 && b != 0xd7);
}

static void choose_options(aredis_options *o) {
    *o = (aredis_options)AREDIS_OPTIONS_INIT;
    o->unix_path = g_path;
    S.ps = ps_run();
    unsigned proto = pick(4);
    o->protocol = proto == 0 || (S.ps && proto == 1) ? 2 : 3; /* pub/sub: RESP2 in half */
    unsigned a = pick(8);
    if (a == 1 || a == 2) o->password = "sekret";
    if (a == 2) o->username = "app";
    if (pick(4) == 0) o->db = 3;
    if (pick(4) == 0) o->client_name = "sim";
    static const uint32_t req[] = {5000, 5000, 300, 50, 1000, 0};
    o->request_timeout_ms = req[pick(6)];
    static const uint32_t dead[] = {10000, 30, 200, 0};
    o->dead_timeout_ms = dead[pick(4)];
    static const uint32_t health[] = {0, 0, 20, 150};
    o->health_check_interval_ms = health[pick(4)];
    static const uint32_t conn[] = {5000, 5000, 100, 0};
    o->connect_timeout_ms = conn[pick(4)];
    o->reconnect = pick(6) != 0;
    static const unsigned maxatt[] = {0, 0, 1, 3};
    o->max_reconnect_attempts = maxatt[pick(4)];
    static const uint32_t delay[] = {100, 1, 10};
    o->reconnect_delay_ms = delay[pick(3)];
    static const uint32_t maxdelay[] = {30000, 50, 1000};
    o->max_reconnect_delay_ms = maxdelay[pick(3)];
    static const double jitter[] = {0.1, 0, 0.5};
    o->reconnect_jitter = jitter[pick(3)];
    o->reconnect_on_auth_error = pick(4) == 0;
    o->queue_during_reconnect = pick(4) != 0;
    o->wait_for_first_connect = pick(3) == 0;
    static const size_t maxq[] = {0, 0, 0, 2, 8};
    o->max_queue_size = maxq[pick(5)];
    o->retry_read_only = pick(3) == 0;
    o->on_connect = cb_connect;
    o->on_disconnect = cb_disconnect;
    o->on_error = cb_error;
    o->on_reconnect_attempt = cb_reconnect;
    o->on_push = pick(4) ? cb_push : NULL;
    static const unsigned subs[] = {0, 0, 8, 3};
    S.subscribe_rate = subs[pick(4)];
    S.eager = pick(3);
    if (S.ps && pick(4) == 3)
        S.acl[pick(3)] |= 1u << pick(NNAME); /* a name refused from the start */
    if (S.ps && SIM_KNOWN_BUG_ORPHAN_CONFIRM) o->request_timeout_ms = 0;
    snprintf(g_opts_desc, sizeof g_opts_desc,
             "RESP%d%s%s db=%d name=%s request=%u dead=%u health=%u connect=%u reconnect=%d "
             "max_attempts=%u delay=%u/%u jitter=%.1f on_auth=%d queue=%d wait_first=%d "
             "max_queue=%zu retry_ro=%d push_cb=%d subscribe=1/%u eager=%u%s",
             o->protocol, o->password ? " password" : "", o->username ? " username" : "", o->db,
             o->client_name ? o->client_name : "-", o->request_timeout_ms, o->dead_timeout_ms,
             o->health_check_interval_ms, o->connect_timeout_ms, o->reconnect,
             o->max_reconnect_attempts, o->reconnect_delay_ms, o->max_reconnect_delay_ms,
             o->reconnect_jitter, o->reconnect_on_auth_error, o->queue_during_reconnect,
             o->wait_for_first_connect, o->max_queue_size, o->retry_read_only, o->on_push != NULL,
             S.subscribe_rate, S.eager, S.ps ? " pubsub" : "");
    if (S.ps) g_stat.ps_runs++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int registered;
    setup_once();
    if (!registered) {
        registered = 1;
        atexit(cleanup_at_exit);
    }
    g_in = data;
    g_in_len = size;
    g_in_pos = 0;
    g_trace_n = 0;
    g_nfds = 0;
    memset(&S, 0, sizeof S);
    memset(&g_loop, 0, sizeof g_loop);
    g_loop.now = 1000000; /* not 0: "0 = not armed" must not be confused with a time */

    /* The library's heap, before: the per-thread reply cache flushed. */
    aredis_set_allocator(&g_counting);
    long long heap0 = g_live_bytes, blocks0 = g_live_blocks;

    choose_options(&S.o);
    trace("run: %s", g_opts_desc);
    S.loop = aredis_loop_from_vtable(&g_vtable, &g_loop);
    if (!S.loop) abort();
    S.c = aredis_client_new(S.loop, &S.o);
    CHECK(S.c, "aredis_client_new failed: %s", aredis_call_error()->detail);
    S.c->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)size; /* see the include above */
    obs_setup(S.c, size);
    app_connect();

    g_stat.runs++;
    for (int n = 0; n < MAX_STEPS && !exhausted() && !S.freed; n++, g_stat.steps++) {
        step();
        /* A closed client has nothing left to explore but its free. */
        if (!S.freed && aredis_client_state(S.c) == AREDIS_STATE_CLOSED) break;
        /* An idle one is most often connected again. */
        if (!S.freed && aredis_client_state(S.c) == AREDIS_STATE_IDLE && pick(4) == 0)
            app_connect();
    }
    if (!S.freed) {
        /* A WATCH left pending holds the connection for good: the
         * application discards what it leaves (I9). */
        for (unsigned i = 0; i < NTX; i++)
            if (S.tx[i].tx) tx_discard(&S.tx[i]);
        settle();
        ps_converge();
    }
    if (!S.freed) app_free();
    ps_free_all();
    check_step("after free");
    obs_finish();
    /* The client is gone: it must have left nothing behind on the loop (I8). */
    l_sweep(&g_loop);
    CHECK(!g_loop.ios && !g_loop.timers && !g_loop.defers,
          "I8: the freed client left watchers, timers or defers on the loop");
    for (size_t i = 0; i < S.nrecs; i++) {
        rec *x = S.recs[i];
        CHECK(x->refused || x->in_batch || x->calls == 1,
              "I1: %s %s never completed (freed client)", k_names[x->kind], x->tok);
        CHECK(!x->in_batch || x->refused || x->parent,
              "%s %s: queued in a batch, neither executed nor dropped", k_names[x->kind], x->tok);
        if (x->f && !x->released) aredis_future_release(x->f);
    }
    for (size_t i = 0; i < S.nrecs; i++) {
        free(S.recs[i]->slots);
        free(S.recs[i]);
    }
    free(S.recs);
    for (size_t i = 0; i < S.nsubs; i++)
        free(S.subs[i]);
    free(S.subs);

    for (unsigned i = 0; i < NTX; i++)
        free(S.tx[i].q);
    free(S.pq);
    aredis_loop_free(S.loop);
    s_accept_all();
    while (S.conns) {
        sconn *s = S.conns;
        S.conns = s->next;
        s_free(s);
    }
    free(S.msgs);
    free(S.pcalls);
    free(S.resub);
    for (unsigned i = 0; i < g_nfds; i++)
        CHECK(fcntl(g_fds[i], F_GETFD) == -1,
              "I8: fd %d, watched by the client, still open "
              "after free",
              g_fds[i]);
    /* The library's heap, after: flush the cache the same way. */
    aredis_set_allocator(&g_counting);
    CHECK(g_live_bytes == heap0 && g_live_blocks == blocks0,
          "I8: the library's heap grew by %lld byte(s) in %lld block(s) over the run",
          g_live_bytes - heap0, g_live_blocks - blocks0);
    return 0;
}
