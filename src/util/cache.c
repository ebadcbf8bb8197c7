/*
 * A per-thread cache of small blocks (see util/cache.h, where get and put
 * live, inline: a few instructions each).
 *
 * Each thread keeps a LIFO list of up to AREDIS__CACHE_MAX free blocks of
 * AREDIS__CACHE_BLOCK bytes, linked through their first word, in
 * thread-local storage: threads never contend, and a block freed on another
 * thread simply joins that thread's list.
 *
 * Lifetime: the first put on a thread registers a pthread key whose
 * destructor frees the thread's blocks when the thread exits; the calling
 * thread's blocks are freed by aredis__cache_flush(), which the allocator
 * hooks call before they change (a block must go back to the allocator it
 * came from), and at process exit for the thread that calls exit().
 */
#include "util/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util/alloc.h"

_Thread_local aredis__cache aredis__tls_cache;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static int key_ok;

static void cache_drain(aredis__cache *c) {
    while (c->head) {
        aredis__cache_block *b = c->head;
        AREDIS__CACHE_UNPOISON(b);
        c->head = b->next;
        aredis__free(b);
    }
    c->n = 0;
}

/* At thread exit (pthread key destructor): give the blocks back, and cache
 * nothing more (later destructors may still free replies on this thread). */
static void on_thread_exit(void *arg) {
    aredis__cache *c = arg;
    c->closed = 1;
    cache_drain(c);
}

/*
 * At process exit: give back the exiting thread's blocks, and cache nothing
 * from then on, so that the process ends with nothing outstanding (leak
 * checkers run after this; and pthread key destructors never run for the
 * thread that calls exit()).
 */
static atomic_int exiting;

static void on_process_exit(void) {
    atomic_store_explicit(&exiting, 1, memory_order_relaxed);
    aredis__tls_cache.closed = 1;
    cache_drain(&aredis__tls_cache);
}

static void key_make(void) {
    key_ok = pthread_key_create(&key, on_thread_exit) == 0 && atexit(on_process_exit) == 0;
}

int aredis__cache_register(void) {
    aredis__cache *c = &aredis__tls_cache;
    /* Without a destructor the blocks would leak when the thread exits. */
    (void)pthread_once(&key_once, key_make);
    if (!key_ok || atomic_load_explicit(&exiting, memory_order_relaxed) ||
        pthread_setspecific(key, c) != 0)
        return 0;
    c->registered = 1;
    return 1;
}

void aredis__cache_flush(void) { cache_drain(&aredis__tls_cache); }
