/*
 * aredis/export.h — symbol visibility and version.
 *
 * The library is built with -fvisibility=hidden; only what the public headers
 * declare with AREDIS_API is exported.
 */
#ifndef AREDIS_EXPORT_H
#define AREDIS_EXPORT_H

#define AREDIS_VERSION_MAJOR 0
#define AREDIS_VERSION_MINOR 1
#define AREDIS_VERSION_PATCH 0
#define AREDIS_VERSION_STRING "0.1.0"

/*
 * The ABI version: the SONAME is libaredis.so.<AREDIS_ABI_VERSION>. It is
 * bumped by every change that a program built against older headers could
 * not survive — the size or layout of a public struct, an enum value, a
 * function's signature — so that such a program fails to load instead of
 * misreading memory (docs/ABI.md; tests/unit/abi.c enforces the layouts).
 */
#define AREDIS_ABI_VERSION 3

#if defined(_WIN32)
#define AREDIS_API
#elif defined(__GNUC__)
#define AREDIS_API __attribute__((visibility("default")))
#else
#define AREDIS_API
#endif

#if defined(__GNUC__)
#define AREDIS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define AREDIS_PRINTF(fmt, args)
#endif

#endif
