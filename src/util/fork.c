/* Fork generation counter: see fork.h. */
#include "util/fork.h"

#include <pthread.h>

static volatile unsigned g_generation;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void in_child(void) { g_generation++; }

static void register_handler(void) { (void)pthread_atfork(NULL, NULL, in_child); }

unsigned aredis__fork_generation(void) {
    (void)pthread_once(&g_once, register_handler);
    return g_generation;
}
