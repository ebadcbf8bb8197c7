/**
 * @file
 * aredis/reader.h — the RESP2/RESP3 reader (no I/O).
 *
 * Feed it bytes, in pieces of any size; take complete replies out. The reader
 * never does I/O and allocates only through the library allocator, so it can
 * be driven from any runtime and fuzzed on byte strings.
 *
 *     aredis_reader *r = aredis_reader_new(NULL, NULL);
 *     aredis_reader_feed(r, buf, n);
 *     void *reply;
 *     while (aredis_reader_get_reply(r, &reply) == AREDIS_ERR_OK && reply)
 *         use((aredis_reply *)reply), aredis_reply_free(reply);
 *
 * Memory grows with the bytes actually received, never with a length or a
 * count the peer merely claims: "*4294967295\r\n" allocates almost nothing.
 *
 * Errors are sticky: after AREDIS_ERR_PROTOCOL the reader returns the same
 * error for every later call. The stream cannot be resynchronised.
 */
#ifndef AREDIS_READER_H
#define AREDIS_READER_H

#include <stddef.h>

#include "aredis/error.h"
#include "aredis/export.h"
#include "aredis/reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A reader (opaque): bytes in, replies out. Made with aredis_reader_new(),
 * freed with aredis_reader_free(). */
typedef struct aredis_reader aredis_reader;

/**
 * Limits. Exceeding one is AREDIS_ERR_PROTOCOL. A field left 0 takes its
 * default. max_bulk_len also bounds a simple line (+ - , ( ), so a peer
 * cannot make the reader buffer an endless header.
 */
typedef struct aredis_reader_limits {
    size_t max_bulk_len; /**< longest blob string/error/verbatim (bytes) */
    size_t max_elements; /**< most elements in one aggregate (pairs × 2 for maps) */
    unsigned max_depth;  /**< deepest nesting of aggregates; 1 = flat array */
} aredis_reader_limits;

/** The default max_bulk_len: 512 MiB. */
#define AREDIS_READER_DEFAULT_MAX_BULK ((size_t)512 * 1024 * 1024)
/** The default max_elements: 2^28. */
#define AREDIS_READER_DEFAULT_MAX_ELEMENTS ((size_t)1 << 28)
/** The default max_depth: 128 levels. */
#define AREDIS_READER_DEFAULT_MAX_DEPTH 128u
/** The default limits, as an initializer for aredis_reader_limits. */
#define AREDIS_READER_LIMITS_INIT                                                                  \
    {                                                                                              \
        AREDIS_READER_DEFAULT_MAX_BULK, AREDIS_READER_DEFAULT_MAX_ELEMENTS,                        \
            AREDIS_READER_DEFAULT_MAX_DEPTH                                                        \
    }

/**
 * Where an object being created goes. `parent` is the aggregate object being
 * filled (NULL for a top-level reply or for an attribute, which is built
 * detached and handed to set_attribute later), `idx` its position there.
 */
typedef struct aredis_reader_task {
    aredis_reply_type type;        /**< the type of the object to create */
    void *parent;                  /**< the aggregate being filled, or NULL */
    aredis_reply_type parent_type; /**< the parent's type; 0 when parent is NULL */
    size_t idx;                    /**< the position in the parent; 0 when parent is NULL */
    void *privdata;                /**< as given to aredis_reader_new */
} aredis_reader_task;

/**
 * A pluggable reply builder (as hiredis allows): bindings build their own
 * objects. Each create_* makes an object and, when t->parent is not NULL,
 * stores it in the parent at t->idx; elements arrive in order, so a builder
 * can grow its parent as they come. Returning NULL means out of memory: the
 * reader fails with AREDIS_ERR_NOMEM.
 *
 * Every entry is required except set_attribute (NULL: attributes are parsed
 * and dropped). Bytes handed to an entry (`s`, `len`) point into the
 * reader's buffer: they are not NUL-terminated, and good for the call only.
 */
typedef struct aredis_reply_builder {
    /** STRING, STATUS, ERROR, BIGNUM and VERB (t->type says which): the
     * `len` bytes at `s`. For VERB it gets the whole payload, "xxx:" prefix
     * included (len >= 4, s[3] == ':'). */
    void *(*create_string)(const aredis_reader_task *t, const char *s, size_t len);
    /** ARRAY, MAP, SET, ATTR and PUSH: an aggregate, filled by the calls that
     * follow. It gets the element count the peer claims (pairs × 2 for MAP
     * and ATTR) — do NOT allocate that much up front; the count is untrusted. */
    void *(*create_aggregate)(const aredis_reader_task *t, size_t claimed);
    /** INTEGER: the value. */
    void *(*create_integer)(const aredis_reader_task *t, long long v);
    /** DOUBLE: the value, and its text as received (`len` bytes at `s`). */
    void *(*create_double)(const aredis_reader_task *t, double v, const char *s, size_t len);
    /** NIL: serves `$-1`, `*-1` and `_`. */
    void *(*create_nil)(const aredis_reader_task *t);
    /** BOOL: v is 1 (true) or 0 (false). */
    void *(*create_bool)(const aredis_reader_task *t, int v);
    /** An attribute is built detached and, when complete, handed with
     * set_attribute to the next value made at the same position (set before
     * that value's own elements arrive); `obj` owns `attr` from then on. Of
     * two attributes in a row the later is kept. Optional. */
    void (*set_attribute)(void *obj, void *attr);
    /** Free an object and everything in it. It may get an aggregate that is
     * only partly filled (elements 0 .. idx-1 stored): the reader frees a
     * half-built reply when it fails or is freed mid-reply. */
    void (*free_object)(void *obj);
} aredis_reply_builder;

/**
 * The default builder: makes aredis_reply trees. A reader given it (or NULL)
 * builds them itself, without a call per object: all of one top-level reply
 * lives in one block or a short chain of blocks, freed together by
 * aredis_reply_free() on the top-level reply (see aredis/reply.h). A big
 * top-level blob that ends the bytes received so far takes over the reader's
 * buffer instead of being copied (the reader then allocates a new one). The
 * functions of the table also work one object at a time, for builders that
 * copy or wrap them.
 */
AREDIS_API const aredis_reply_builder *aredis_reply_builder_default(void);

/**
 * Make a reader. `builder` NULL means the default builder. Returns NULL when
 * out of memory.
 */
AREDIS_API aredis_reader *aredis_reader_new(const aredis_reply_builder *builder, void *privdata);

/** Free the reader and any partial reply it holds. NULL is ignored. */
AREDIS_API void aredis_reader_free(aredis_reader *r);

/** Set limits (copied; NULL = defaults). Applies to replies not yet started. */
AREDIS_API void aredis_reader_set_limits(aredis_reader *r, const aredis_reader_limits *l);

/**
 * Copy `len` bytes into the reader. AREDIS_ERR_NOMEM if they don't fit (the
 * reader is unchanged and still usable). After a parse error, returns that
 * error and drops the bytes.
 */
AREDIS_API aredis_err aredis_reader_feed(aredis_reader *r, const char *buf, size_t len);

/**
 * Zero-copy feeding: get at least `min` writable bytes at the end of the
 * reader's buffer (*avail tells how many), read into them, then commit how
 * many were written. The buffer is compacted at most once per call.
 * Returns NULL when out of memory. After a parse error, committed bytes are
 * dropped. The pointer is good until the next call on the reader: ask again
 * before each read.
 */
/** @{ */
AREDIS_API char *aredis_reader_space(aredis_reader *r, size_t min, size_t *avail);
AREDIS_API void aredis_reader_commit(aredis_reader *r, size_t n);
/** @} */

/**
 * Take the next complete reply. Returns AREDIS_ERR_OK and sets *reply to the
 * reply, or to NULL when more bytes are needed. On a malformed stream returns
 * AREDIS_ERR_PROTOCOL (sticky); see aredis_reader_errstr(). The caller owns
 * the reply (free it with the builder's free_object / aredis_reply_free).
 */
AREDIS_API aredis_err aredis_reader_get_reply(aredis_reader *r, void **reply);

/** Why the reader failed, or "" when it has not. Never NULL. */
AREDIS_API const char *aredis_reader_errstr(const aredis_reader *r);

/** Bytes received but not yet consumed into replies. */
AREDIS_API size_t aredis_reader_pending(const aredis_reader *r);

#ifdef __cplusplus
}
#endif

#endif
