/**
 * @file
 * aredis/pubsub.h — publish/subscribe: channels, patterns and shard
 * channels, replayed after every reconnect.
 *
 * A subscription is an object on a client. It holds channels (SUBSCRIBE),
 * patterns (PSUBSCRIBE) and shard channels (SSUBSCRIBE, Redis 7) and hands
 * their messages either to a handler, as they arrive, or to the futures of
 * aredis_subscription_next(), in order.
 *
 * @code
 *   aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;
 *   so.on_message = on_message;
 *   aredis_subscription *s = aredis_subscription_new(c, &so);
 *   const char *ch[] = {"news", "alerts"};
 *   aredis_subscription_subscribe(s, AREDIS_SUB_CHANNEL, 2, ch, NULL, on_done, NULL);
 * @endcode
 *
 * WHICH CONNECTION. On RESP3 (the default protocol) messages arrive as
 * pushes on the client's own connection, and ordinary commands keep working
 * on it: the confirmations are matched to the calls that asked for them,
 * messages never to any command. A RESP2 server runs nothing but the
 * subscribe family and PING on a subscribed connection, so on RESP2 a
 * subscription uses a connection of its own by default (made by the
 * library with the client's options: URI, TLS, auth, database), and the
 * client's commands are unaffected. aredis_sub_options.connection chooses.
 *
 * RECONNECTS. After the client reconnects, every channel, pattern and shard
 * channel of every subscription is subscribed again (one command per kind)
 * before anything else goes out on the new connection, so no message after
 * the replay is missed — but those published while the link was down are
 * lost: on_event runs with AREDIS_SUB_RESUBSCRIBED to say so.
 *
 * BOUNDED. Without a handler, messages wait for aredis_subscription_next()
 * in a buffer of at most max_buffered messages; past that the oldest is
 * dropped and on_event runs with AREDIS_SUB_OVERFLOW (once per episode:
 * again after the buffer has emptied). The client never reads more for a
 * slow consumer than that bound.
 *
 * CALLBACK CONTRACT (the subscribe/unsubscribe callbacks, as client.h's):
 * if the call returns an error the callback never runs; otherwise exactly
 * once, never from inside the call. Message handlers and on_event run for
 * each message or event. Any aredis function may be called from inside any
 * of them, aredis_subscription_free() on its own subscription included.
 *
 * OWNERSHIP: names and options are copied at the call. A message is
 * borrowed for the handler's duration; aredis_reply_retain(m->reply) keeps
 * its bytes longer.
 */
#ifndef AREDIS_PUBSUB_H
#define AREDIS_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "aredis/client.h"
#include "aredis/error.h"
#include "aredis/export.h"
#include "aredis/future.h"
#include "aredis/reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A subscription (opaque): channels, patterns and shard channels held on
 * one client, and their messages' handler or buffer. Made with
 * aredis_subscription_new(), freed with aredis_subscription_free(). */
typedef struct aredis_subscription aredis_subscription;

/** What a name is: a channel, a glob-style pattern, or a shard channel. */
typedef enum aredis_sub_kind {
    AREDIS_SUB_CHANNEL = 0, /**< SUBSCRIBE; messages of kind "message" */
    AREDIS_SUB_PATTERN = 1, /**< PSUBSCRIBE; "pmessage" */
    AREDIS_SUB_SHARD = 2    /**< SSUBSCRIBE (Redis 7); "smessage" */
} aredis_sub_kind;

/**
 * One message, a view into the push it came in (all binary safe; the
 * strings are NUL-terminated after their length as well).
 */
typedef struct aredis_message {
    aredis_sub_kind kind; /**< what it came through: a channel, a pattern, a shard channel */
    const char *channel;  /**< the channel it was published to */
    size_t channel_len;   /**< channel's length in bytes */
    const char *pattern;  /**< AREDIS_SUB_PATTERN: the pattern that matched; else NULL */
    size_t pattern_len;   /**< pattern's length in bytes; 0 without one */
    const char *payload;  /**< the message published */
    size_t payload_len;   /**< payload's length in bytes */
    aredis_reply *reply;  /**< the push itself: retain it to keep the strings */
} aredis_message;

/**
 * Read a message out of a push reply (as aredis_subscription_next()'s
 * futures resolve with): 0 and *m filled, or -1 when r is not a message.
 */
AREDIS_API int aredis_message_parse(aredis_reply *r, aredis_message *m);

/** Events of a subscription. */
typedef enum aredis_sub_event {
    /** The client reconnected and the subscription's names are being
     * subscribed again: messages published meanwhile are lost. Runs before
     * any message of the new connection is delivered. */
    AREDIS_SUB_RESUBSCRIBED = 1,
    /** The buffer for aredis_subscription_next() was full: the oldest
     * message was dropped (aredis_sub_stats.dropped counts them); err's
     * code is AREDIS_ERR_QUEUE_FULL. */
    AREDIS_SUB_OVERFLOW = 2,
    /** The server dropped a name on its own (a shard channel whose slot
     * moved): err->detail names it (err's code is AREDIS_ERR_OK). The subscription no longer holds
     * it. */
    AREDIS_SUB_DROPPED = 3,
    /** Subscribing again failed — after a reconnect, or for a call that
     * never left — (an ACL now refuses a channel, say): err says why. The
     * names stay; the next reconnect tries again. */
    AREDIS_SUB_ERROR = 4,
    /** The client closed, was freed, disconnected, or gave up reconnecting:
     * no message will come any more — until aredis_client_connect() again,
     * which replays the subscription as a reconnect does (not after close
     * or free). Pending aredis_subscription_next() futures fail with err. */
    AREDIS_SUB_ENDED = 5
} aredis_sub_event;

/** A message handler (aredis_sub_options.on_message): m is borrowed for
 * the call (aredis_reply_retain(m->reply) keeps its bytes longer). */
typedef void aredis_message_fn(aredis_subscription *s, const aredis_message *m, void *data);
/** An event handler (aredis_sub_options.on_event): err is NULL for
 * AREDIS_SUB_RESUBSCRIBED; for the other events it says why (see
 * aredis_sub_event), borrowed for the call. */
typedef void aredis_sub_event_fn(aredis_subscription *s, aredis_sub_event ev,
                                 const aredis_error *err, void *data);

/* Where a subscription's messages come from (aredis_sub_options.connection). */

/** RESP3: the client's own connection; RESP2: one of its own. Decided when
 * the subscription is made: a client not connected yet counts as speaking
 * what its options.protocol asks for. The default. */
#define AREDIS_SUB_AUTO 0
/** The client's own connection, on RESP2 too (its ordinary commands are
 * then refused while subscribed: AREDIS_ERR_UNSUPPORTED). */
#define AREDIS_SUB_SHARED 1
/** Always a connection of its own. */
#define AREDIS_SUB_DEDICATED 2

/** Options; start from AREDIS_SUB_OPTIONS_INIT. Each field says its
 * default. */
typedef struct aredis_sub_options {
    aredis_message_fn *on_message; /**< NULL: messages wait for aredis_subscription_next() */
    aredis_sub_event_fn *on_event; /**< NULL: events are not reported (they still happen) */
    size_t max_buffered;           /**< 10000: messages held for next(); 0 means the default */
    int connection; /**< AREDIS_SUB_AUTO (the default), AREDIS_SUB_SHARED or AREDIS_SUB_DEDICATED */
    void *data;     /**< passed to on_message and on_event */
} aredis_sub_options;

/** The default options, as an initializer:
 * `aredis_sub_options so = AREDIS_SUB_OPTIONS_INIT;`. */
#define AREDIS_SUB_OPTIONS_INIT                                                                    \
    { NULL, NULL, 10000, AREDIS_SUB_AUTO, NULL }

/**
 * A subscription on client c (which must have been made, not necessarily
 * connected), with options o (NULL: the defaults). Subscribes to nothing
 * yet. NULL when out of memory, when the options are invalid or when c is
 * closed (aredis_call_error() says which).
 */
AREDIS_API aredis_subscription *aredis_subscription_new(aredis_client *c,
                                                        const aredis_sub_options *o);

/**
 * Subscribe to n names of one kind (lens NULL: NUL-terminated strings).
 * The names are the subscription's at once (a message for them is
 * delivered from now on) and cb runs once the server has confirmed every
 * one of them, with the last confirmation ([kind, name, count]); or with
 * the error: SERVER (a NOPERM from an ACL, say: the server subscribed
 * none of them, and the names this call brought leave the subscription;
 * those it held before stay), or TIMEOUT, CANCELLED or a connection error:
 * then the names stay — the library subscribes them anyway (after the
 * reconnect, or at once for a call that never left), so that the
 * subscription and the server always agree; unsubscribe to drop them.
 * cb may be NULL. A name already held is confirmed again, harmlessly.
 * Returns OK or: INVALID (n = 0, a NULL name, unknown kind), NOMEM, and
 * the client's refusals (CLOSED, NOT_CONNECTED, QUEUE_FULL...).
 */
AREDIS_API aredis_err aredis_subscription_subscribe(aredis_subscription *s, aredis_sub_kind kind,
                                                    size_t n, const char *const *names,
                                                    const size_t *lens, aredis_reply_fn *cb,
                                                    void *data);

/**
 * Unsubscribe from n names of one kind. Delivery of their messages to this
 * subscription stops at once, whatever becomes of the call (a call that
 * fails before it is sent is sent again without a callback); the server
 * is told unless another subscription of the client still holds a name. cb runs when that is
 * done (with the last confirmation, or a NULL reply when nothing needed
 * the server). Names not held are ignored. Same errors as subscribe.
 */
AREDIS_API aredis_err aredis_subscription_unsubscribe(aredis_subscription *s, aredis_sub_kind kind,
                                                      size_t n, const char *const *names,
                                                      const size_t *lens, aredis_reply_fn *cb,
                                                      void *data);

/** The future forms: resolve as the callbacks above would run. */
/** @{ */
AREDIS_API aredis_future *aredis_subscription_subscribe_f(aredis_subscription *s,
                                                          aredis_sub_kind kind, size_t n,
                                                          const char *const *names,
                                                          const size_t *lens);
AREDIS_API aredis_future *aredis_subscription_unsubscribe_f(aredis_subscription *s,
                                                            aredis_sub_kind kind, size_t n,
                                                            const char *const *names,
                                                            const size_t *lens);
/** @} */

/**
 * The next message, as a future that resolves with its push reply (read it
 * with aredis_message_parse()): at once when one is buffered, else when
 * one arrives. Futures are served in the order they were asked for. Fails
 * with CANCELLED when the subscription is freed, with the client's error
 * when it closes or gives up (AREDIS_SUB_ENDED), with INVALID when the
 * subscription has an on_message handler (messages go there). NULL when
 * out of memory, or s is NULL or its client is gone. Release every future.
 */
AREDIS_API aredis_future *aredis_subscription_next(aredis_subscription *s);

/** How many names of a kind the subscription holds. */
AREDIS_API size_t aredis_subscription_count(const aredis_subscription *s, aredis_sub_kind kind);

/** Counters since the subscription was made. */
typedef struct aredis_sub_stats {
    uint64_t delivered;    /**< to the handler or to a next() future */
    uint64_t dropped;      /**< oldest buffered messages dropped (overflow) */
    uint64_t resubscribes; /**< replays after a reconnect */
    size_t buffered;       /**< messages waiting for next() now */
} aredis_sub_stats;
/** Copy the subscription's counters into *out. */
AREDIS_API void aredis_subscription_get_stats(const aredis_subscription *s, aredis_sub_stats *out);

/** The client the subscription was made on (not its own connection). */
AREDIS_API aredis_client *aredis_subscription_client(const aredis_subscription *s);
/** The data handed to on_message and on_event: aredis_sub_options.data,
 * until set again with aredis_subscription_set_data(). */
/** @{ */
AREDIS_API void *aredis_subscription_get_data(const aredis_subscription *s);
AREDIS_API void aredis_subscription_set_data(aredis_subscription *s, void *data);
/** @} */

/**
 * Unsubscribe from every name no other subscription holds (without
 * waiting), fail pending next() futures with CANCELLED, drop buffered
 * messages, free. Safe from inside its own handler (the free is deferred
 * until the handler returns) and after its client was freed. NULL ignored.
 */
AREDIS_API void aredis_subscription_free(aredis_subscription *s);

#ifdef __cplusplus
}
#endif

#endif
