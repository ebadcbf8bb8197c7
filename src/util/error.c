/* The error table: names and messages generated from AREDIS_ERRNO_MAP. */
#include "aredis/error.h"

#include <stdarg.h>
#include <stdio.h>

#include "aredis/aredis.h"
#include "util/error.h"

const char *aredis_strerror(aredis_err code) {
    switch (code) {
#define AREDIS__ERR_MSG(name, msg)                                                                 \
    case AREDIS_ERR_##name:                                                                        \
        return msg;
        AREDIS_ERRNO_MAP(AREDIS__ERR_MSG)
#undef AREDIS__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *aredis_err_name(aredis_err code) {
    switch (code) {
#define AREDIS__ERR_NAME(name, msg)                                                                \
    case AREDIS_ERR_##name:                                                                        \
        return "AREDIS_ERR_" #name;
        AREDIS_ERRNO_MAP(AREDIS__ERR_NAME)
#undef AREDIS__ERR_NAME
    default:
        return "AREDIS_ERR_UNKNOWN";
    }
}

int aredis_err_is_connection(aredis_err code) {
    return code == AREDIS_ERR_IO || code == AREDIS_ERR_EOF || code == AREDIS_ERR_CONNREFUSED ||
           code == AREDIS_ERR_RESOLVE || code == AREDIS_ERR_NOT_CONNECTED;
}

const char *aredis_version(void) { return AREDIS_VERSION_STRING; }

/* ---- The last failing call of this thread -------------------------------- */

static _Thread_local aredis_error g_call_err;
static _Thread_local char g_call_detail[256];

aredis_err aredis__call_fail(aredis_err code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_call_detail, sizeof g_call_detail, fmt, ap);
    va_end(ap);
    g_call_err.code = code;
    g_call_err.detail = g_call_detail;
    g_call_err.prefix[0] = '\0';
    return code;
}

const aredis_error *aredis_call_error(void) {
    if (!g_call_err.detail) {
        g_call_err.detail = g_call_detail;
        snprintf(g_call_detail, sizeof g_call_detail, "%s", aredis_strerror(g_call_err.code));
    }
    return &g_call_err;
}
