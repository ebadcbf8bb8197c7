/* The error table: names and messages generated from AREDIS_ERRNO_MAP. */
#include "aredis/error.h"

#include "aredis/aredis.h"

const char *aredis_strerror(aredis_err code) {
    switch (code) {
#define AREDIS__ERR_MSG(name, msg)                                             \
    case AREDIS_ERR_##name:                                                    \
        return msg;
        AREDIS_ERRNO_MAP(AREDIS__ERR_MSG)
#undef AREDIS__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *aredis_err_name(aredis_err code) {
    switch (code) {
#define AREDIS__ERR_NAME(name, msg)                                            \
    case AREDIS_ERR_##name:                                                    \
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
