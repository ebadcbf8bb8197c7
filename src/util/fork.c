/* Fork generation counter: see fork.h. */
#include "util/fork.h"

#include <pthread.h>

volatile unsigned aredis__fork_gen_value;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void in_child(void) { aredis__fork_gen_value++; }

static void register_handler(void) { (void)pthread_atfork(NULL, NULL, in_child); }

unsigned aredis__fork_generation(void) {
    (void)pthread_once(&g_once, register_handler);
    return aredis__fork_gen_value;
}
