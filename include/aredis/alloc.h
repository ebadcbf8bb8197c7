/**
 * @file
 * aredis/alloc.h — allocator hooks.
 *
 * Every allocation the library makes goes through these hooks, the protocol
 * reader's and the loop adapters' included. Set them once, before any other
 * aredis call; they are process-global and not thread-safe to change.
 *
 * THREADS: a client whose host is a name (not an IP literal) resolves it on
 * a short-lived resolver thread, and that thread may free the resolver's
 * job with free_fn. The hooks must then be safe to call from any thread
 * (malloc/free are). Clients on IP literals or unix sockets call them only
 * from the thread that runs their loop.
 *
 * REUSE: each thread keeps up to 16 blocks of freed small replies (2 KiB)
 * for its next ones, instead of freeing and allocating again. They go back
 * through free_fn when the thread exits, when the process exits, and — for
 * the calling thread — when the hooks are changed; so change the hooks only
 * while no other thread is using aredis.
 *
 * A hook that returns NULL makes the operation that needed memory fail
 * cleanly with AREDIS_ERR_NOMEM: aredis never aborts on allocation failure.
 */
#ifndef AREDIS_ALLOC_H
#define AREDIS_ALLOC_H

#include <stddef.h>

#include "aredis/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The allocator hooks: four functions with the C library's contracts. */
typedef struct aredis_allocator {
    void *(*malloc_fn)(size_t size);               /**< as malloc(); never asked for 0 bytes */
    void *(*calloc_fn)(size_t nmemb, size_t size); /**< as calloc(); never asked for 0 bytes */
    void *(*realloc_fn)(void *ptr, size_t size);   /**< as realloc(); never asked for 0 bytes */
    void (*free_fn)(void *ptr);                    /**< as free(); never given NULL */
} aredis_allocator;

/**
 * Replace the allocator. Every field is required; passing NULL (or an
 * allocator with a NULL field) restores the C library's
 * malloc/calloc/realloc/free. Returns the previous allocator.
 */
AREDIS_API aredis_allocator aredis_set_allocator(const aredis_allocator *a);

/** Restore the C library's allocator. */
AREDIS_API void aredis_reset_allocator(void);

/**
 * Allocate and free through the current hooks, for code outside the
 * library whose memory should be counted with aredis's: the header-only loop
 * adapters (aredis/adapters/) use them. aredis_mem_calloc() returns zeroed
 * memory, or NULL when out of memory or when nmemb * size overflows; free
 * with aredis_mem_free() (NULL is ignored) under the same hooks.
 */
/** @{ */
AREDIS_API void *aredis_mem_calloc(size_t nmemb, size_t size);
AREDIS_API void aredis_mem_free(void *p);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
