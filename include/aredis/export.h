/**
 * @file
 * aredis/export.h — symbol visibility and version.
 *
 * The library is built with -fvisibility=hidden; only what the public headers
 * declare with AREDIS_API is exported.
 */
#ifndef AREDIS_EXPORT_H
#define AREDIS_EXPORT_H

/* The version of these headers; aredis_version() gives the library's.
 * CMakeLists.txt and the release scripts read these lines: keep each
 * #define alone on its line. */
/** The major version of these headers. */
#define AREDIS_VERSION_MAJOR 0
/** The minor version of these headers. */
#define AREDIS_VERSION_MINOR 1
/** The patch version of these headers. */
#define AREDIS_VERSION_PATCH 0
/** The version of these headers as a string, MAJOR.MINOR.PATCH. */
#define AREDIS_VERSION_STRING "0.1.0"

/**
 * The ABI version N: the shared library's SONAME is libaredis.so.N. It is
 * bumped by every change that a program built against older headers could
 * not survive — the size or layout of a public struct, an enum value, a
 * function's signature — so that such a program fails to load instead of
 * misreading memory (docs/ABI.md; tests/unit/abi.c enforces the layouts).
 */
#define AREDIS_ABI_VERSION 3

/**
 * @def AREDIS_API
 * Marks a function the library exports: default visibility with GCC and
 * Clang (the library is built with -fvisibility=hidden); empty on Windows
 * and with other compilers.
 */
#if defined(_WIN32)
#define AREDIS_API
#elif defined(__GNUC__)
#define AREDIS_API __attribute__((visibility("default")))
#else
#define AREDIS_API
#endif

/**
 * @def AREDIS_PRINTF
 * Marks a printf-like function for the compiler's format checks: `fmt` is
 * the position of its format argument and `args` that of its first
 * variadic argument, counting from 1. Empty on compilers other than GCC and
 * Clang. The library uses it on its internal functions.
 */
#if defined(__GNUC__)
#define AREDIS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define AREDIS_PRINTF(fmt, args)
#endif

#endif
