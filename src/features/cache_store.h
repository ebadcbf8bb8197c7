/*
 * The store behind client-side caching (no I/O, no client): cached read
 * replies keyed by the encoded read command, grouped by the Redis key they
 * read so that one invalidation drops them all, bounded by a byte budget
 * and an entry count with least-recently-used eviction, optional expiry.
 *
 * The race every client-side cache must close — a read sent before an
 * invalidation of its key and answered after it must not be cached — is
 * closed here by tokens: a read takes a token when it is sent
 * (aredis__cstore_begin), which remembers the key's invalidation count and
 * the store's flush count; its reply is stored (aredis__cstore_complete)
 * only if neither moved in between. A key with reads in flight keeps its
 * count even when it holds no entry.
 *
 * Values are opaque: the store owns them once given and frees them with
 * the free function given at creation.
 */
#ifndef AREDIS_CACHE_STORE_H
#define AREDIS_CACHE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct aredis__cstore aredis__cstore;
typedef struct aredis__ckey aredis__ckey;

typedef struct aredis__cstore_limits {
    size_t max_bytes;   /* values' sizes plus the store's own per entry; 0: none */
    size_t max_entries; /* 0: none */
    uint64_t ttl_ms;    /* an entry expires this long after it was stored; 0: never */
} aredis__cstore_limits;

typedef struct aredis__cstore_stats {
    uint64_t hits, misses;
    uint64_t evictions;     /* dropped for the budget or the entry limit */
    uint64_t expirations;   /* dropped at a lookup past their time */
    uint64_t invalidations; /* entries dropped by invalidations and flushes */
    uint64_t not_stored;    /* replies refused: invalidated while in flight, or too big */
    size_t entries, bytes;
} aredis__cstore_stats;

/* A read in flight: what aredis__cstore_begin gave, for complete/abort. */
typedef struct aredis__ctoken {
    aredis__ckey *key;
    uint64_t seq, flushes;
} aredis__ctoken;

/* NULL when out of memory. free_value frees what the store is given. */
aredis__cstore *aredis__cstore_new(const aredis__cstore_limits *limits,
                                   void (*free_value)(void *value));
void aredis__cstore_free(aredis__cstore *s);

/* The value cached for this command at `now` (ms), or NULL (a miss; an
 * expired entry is dropped). Borrowed until the store changes. */
void *aredis__cstore_get(aredis__cstore *s, const char *cmd, size_t cmdlen, uint64_t now);

/* A read of `key` is being sent: its token (returns -1 when out of
 * memory: the reply will not be cached, nothing to complete). */
int aredis__cstore_begin(aredis__cstore *s, const char *key, size_t keylen, aredis__ctoken *t);
/* Its reply: stored under cmd (value of `size` bytes, taken over) when
 * nothing invalidated the key or flushed the store since begin; else the
 * value is freed. Returns 1 stored, 0 not. */
int aredis__cstore_complete(aredis__cstore *s, aredis__ctoken *t, const char *cmd, size_t cmdlen,
                            void *value, size_t size, uint64_t now);
/* Its reply will not be stored (an error, a timeout, a cancel). */
void aredis__cstore_abort(aredis__cstore *s, aredis__ctoken *t);

/* The server says `key` changed: drop its entries, and make reads of it in
 * flight uncacheable. */
void aredis__cstore_invalidate(aredis__cstore *s, const char *key, size_t keylen);
/* Everything (a FLUSHDB/FLUSHALL invalidation, a lost connection,
 * tracking-redir-broken): drop all entries; reads in flight uncacheable. */
void aredis__cstore_flush(aredis__cstore *s);

void aredis__cstore_get_stats(const aredis__cstore *s, aredis__cstore_stats *out);

#endif
