/*
 * Internal side of aredis_call_error(): a public call that fails records
 * why, on its thread, and returns the code.
 */
#ifndef AREDIS_UTIL_ERROR_H
#define AREDIS_UTIL_ERROR_H

#include "aredis/error.h"

/* Record code and the formatted detail as this thread's last call error;
 * returns code, so that `return aredis__call_fail(...)` reads well. */
aredis_err aredis__call_fail(aredis_err code, const char *fmt, ...) AREDIS_PRINTF(2, 3);

#endif
