/*
 * The log handler: process-global, with a default that writes to stderr
 * when AREDIS_DEBUG=1.
 *
 * The threshold lives in one atomic so that the check made before any
 * formatting is a single relaxed load. The handler and its data change
 * together under a mutex; a line takes a snapshot of both and calls the
 * handler outside the lock (a slow handler must not serialise every other
 * thread's set_log_handler, and holding a lock across user code invites
 * deadlock).
 */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Atomic int aredis__log_threshold = AREDIS__LOG_UNSET;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_env_threshold = AREDIS_LOG_NONE; /* the default handler's, from the env */
static aredis_log_fn *g_fn;                   /* NULL: the default (stderr) */
static void *g_data;

static void read_env(void) {
    const char *v = getenv("AREDIS_DEBUG");
    g_env_threshold = (v && strcmp(v, "1") == 0) ? AREDIS_LOG_DEBUG : AREDIS_LOG_NONE;
    pthread_mutex_lock(&g_lock);
    /* A handler set before the first check keeps its own threshold. */
    if (!g_fn) atomic_store_explicit(&aredis__log_threshold, g_env_threshold, memory_order_relaxed);
    pthread_mutex_unlock(&g_lock);
}

int aredis__log_init(void) {
    pthread_once(&g_once, read_env);
    return atomic_load_explicit(&aredis__log_threshold, memory_order_relaxed);
}

void aredis_set_log_handler(aredis_log_fn *fn, void *data, int min_level) {
    pthread_once(&g_once, read_env);
    pthread_mutex_lock(&g_lock);
    g_fn = fn;
    g_data = fn ? data : NULL;
    atomic_store_explicit(&aredis__log_threshold, fn ? min_level : g_env_threshold,
                          memory_order_relaxed);
    pthread_mutex_unlock(&g_lock);
}

const char *aredis_log_level_name(int level) {
    switch (level) {
    case AREDIS_LOG_DEBUG:
        return "DEBUG";
    case AREDIS_LOG_INFO:
        return "INFO";
    case AREDIS_LOG_WARN:
        return "WARN";
    case AREDIS_LOG_ERROR:
        return "ERROR";
    default:
        return "LOG";
    }
}

void aredis__log(int level, const char *fmt, ...) {
    if (!aredis__log_enabled(level)) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One line: a control byte (a newline in a server's message) must not
     * start a forged line of its own. */
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';

    pthread_mutex_lock(&g_lock);
    aredis_log_fn *fn = g_fn;
    void *data = g_data;
    int threshold = atomic_load_explicit(&aredis__log_threshold, memory_order_relaxed);
    pthread_mutex_unlock(&g_lock);
    if (level < threshold) return; /* the handler changed meanwhile */

    if (fn) {
        fn(level, line, data);
        return;
    }
    /* One write per line, so lines from several threads do not interleave. */
    char out[1100];
    int n = snprintf(out, sizeof out, "aredis: %s %s\n", aredis_log_level_name(level), line);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof out ? (size_t)n : sizeof out - 1;
    if (len && out[len - 1] != '\n') out[len - 1] = '\n';
    fwrite(out, 1, len, stderr);
    fflush(stderr);
}
