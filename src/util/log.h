/*
 * Internal logging (see aredis/log.h for the public side).
 *
 * Guard anything costly with aredis__log_enabled(): it is one relaxed load
 * and a comparison. aredis__log() checks again, so a plain call is correct
 * too, only it evaluates its arguments first.
 *
 * Never pass a credential in: render commands with aredis__redact_command()
 * and URIs with aredis__redact_uri() (util/redact.h).
 */
#ifndef AREDIS_UTIL_LOG_H
#define AREDIS_UTIL_LOG_H

#include <stdatomic.h>

#include "aredis/export.h"
#include "aredis/log.h"

/* The effective threshold; AREDIS__LOG_UNSET until the first check. */
#define AREDIS__LOG_UNSET (-1)
extern _Atomic int aredis__log_threshold;

/* Read AREDIS_DEBUG (once) and return the threshold. */
int aredis__log_init(void);

static inline int aredis__log_enabled(int level) {
    int t = atomic_load_explicit(&aredis__log_threshold, memory_order_relaxed);
    if (t == AREDIS__LOG_UNSET) t = aredis__log_init();
    return level >= t;
}

/* Format and hand one line to the handler (truncated at 1 KiB). */
void aredis__log(int level, const char *fmt, ...) AREDIS_PRINTF(2, 3);

#endif
