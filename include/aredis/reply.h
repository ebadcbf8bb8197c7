/**
 * @file
 * aredis/reply.h — the reply object of the default reply builder.
 *
 * One struct describes every RESP2 and RESP3 type. Read it, never write it.
 *
 * Ownership: a reply handed to a callback is borrowed for the duration of the
 * callback. Call aredis_reply_retain() to keep it longer and
 * aredis_reply_release() when done. A reply that came from
 * aredis_reader_get_reply() is owned by the caller: free it with
 * aredis_reply_free() (or release it; the two are the same at count one).
 *
 * A top-level reply owns everything in it — elements, their strings,
 * attributes — and all of it goes when the top-level reply is freed. Free,
 * retain and release only top-level replies; a nested reply is never freed on
 * its own (with a reader's default builder, freeing or releasing one does
 * nothing). To keep part of a reply, keep the top-level reply.
 *
 * Replies may share memory, which is one more reason they are read-only:
 * every top-level nil from a reader is one shared reply in read-only memory
 * (retain, release and free are harmless on it). The memory of a freed small
 * reply is reused for the next one made on the same thread, so a reply must
 * not be touched once its last reference is gone.
 */
#ifndef AREDIS_REPLY_H
#define AREDIS_REPLY_H

#include <stddef.h>

#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The type of a reply, with the RESP type byte it comes from. */
typedef enum aredis_reply_type {
    AREDIS_REPLY_STRING = 1, /**< `$` blob string */
    AREDIS_REPLY_ARRAY,      /**< `*` array */
    AREDIS_REPLY_INTEGER,    /**< `:` integer */
    AREDIS_REPLY_NIL,        /**< `$-1`, `*-1` (RESP2) and `_` (RESP3) */
    AREDIS_REPLY_STATUS,     /**< `+` simple string */
    AREDIS_REPLY_ERROR,      /**< `-` simple error and `!` blob error */
    AREDIS_REPLY_DOUBLE,     /**< `,` double (inf, -inf, nan included) */
    AREDIS_REPLY_BOOL,       /**< `#` boolean */
    AREDIS_REPLY_MAP,        /**< `%` map */
    AREDIS_REPLY_SET,        /**< `~` set */
    AREDIS_REPLY_ATTR,       /**< `|` attribute (see aredis_reply.attribute) */
    AREDIS_REPLY_PUSH,       /**< `>` push (out-of-band data) */
    AREDIS_REPLY_BIGNUM,     /**< `(` big number, kept as its decimal text */
    AREDIS_REPLY_VERB        /**< `=` verbatim string */
} aredis_reply_type;

/** A reply: one struct for every RESP2 and RESP3 type, read-only; `type`
 * says which fields hold it. Ownership: see aredis/reply.h. */
typedef struct aredis_reply {
    /** Which type this is, and so which fields below hold it. */
    aredis_reply_type type;
    /** Private: reference count of a top-level reply. */
    unsigned int priv_refs;
    /**
     * INTEGER: the value. BOOL: 1 or 0. Aggregates: the element count the
     * peer claimed (equal to `elements` once the reply is complete).
     */
    long long integer;
    /** DOUBLE: the value (may be +/-inf or nan). */
    double dval;
    /**
     * STRING, STATUS, ERROR, BIGNUM, VERB, DOUBLE: the bytes and their
     * length. Always NUL-terminated (binary data may hold NULs: use len).
     * For VERB, str is the payload without its "txt:" prefix.
     */
    /** @{ */
    size_t len;
    char *str;
    /** @} */
    /**
     * ARRAY, SET, PUSH: the number of elements. MAP and ATTR: twice the
     * number of pairs, laid out key, value, key, value, ...
     */
    size_t elements;
    /** ARRAY, SET, PUSH, MAP and ATTR: the nested replies, as many as
     * `elements`, in order (owned by the top-level reply). */
    struct aredis_reply **element;
    /** The RESP3 attribute map that preceded this reply, or NULL. */
    struct aredis_reply *attribute;
    /** VERB: the three-letter format ("txt", "mkd"), NUL-terminated. */
    char vtype[4];
    /** Private: how the reply's memory is held (see aredis_reply_free). */
    unsigned int priv_alloc;
} aredis_reply;

/** The name of a type ("string", "map", ...). Never NULL. */
AREDIS_API const char *aredis_reply_type_name(aredis_reply_type t);

/**
 * Free a top-level reply made by the default builder, and everything in it.
 * Does not recurse on the C stack, however deep the tree. NULL is ignored.
 */
AREDIS_API void aredis_reply_free(aredis_reply *r);

/** Take one more reference to a top-level reply. Returns r. */
AREDIS_API aredis_reply *aredis_reply_retain(aredis_reply *r);

/** Drop one reference; the last one frees the tree. NULL is ignored. */
AREDIS_API void aredis_reply_release(aredis_reply *r);

#ifdef __cplusplus
}
#endif

#endif
