/*
 * Copies for the short keys, values and lines that dominate Redis traffic:
 * a few fixed-size, overlapping moves instead of a call to memcpy (a call
 * costs more than copying a dozen bytes). Shared by the reader and the
 * writer.
 */
#ifndef AREDIS_UTIL_COPY_H
#define AREDIS_UTIL_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define AREDIS__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define AREDIS__ALWAYS_INLINE inline
#endif

/*
 * Copy 1 to 32 bytes. Every byte is loaded before any is stored, so it is
 * also correct for overlapping ranges.
 */
static AREDIS__ALWAYS_INLINE void aredis__copy_small(char *d, const char *s, size_t n) {
    if (n >= 16) {
        char a[16], z[16];
        memcpy(a, s, 16);
        memcpy(z, s + n - 16, 16);
        memcpy(d, a, 16);
        memcpy(d + n - 16, z, 16);
    } else if (n >= 8) {
        uint64_t a, z;
        memcpy(&a, s, 8);
        memcpy(&z, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &z, 8);
    } else if (n >= 4) {
        uint32_t a, z;
        memcpy(&a, s, 4);
        memcpy(&z, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &z, 4);
    } else {
        char a = s[0], m = s[n / 2], z = s[n - 1];
        d[0] = a;
        d[n / 2] = m;
        d[n - 1] = z;
    }
}

/* Copy n bytes (0 allowed: nothing is read), short ones inline. */
static AREDIS__ALWAYS_INLINE void aredis__copy(char *d, const char *s, size_t n) {
    if (n - 1 < 32)
        aredis__copy_small(d, s, n);
    else if (n)
        memcpy(d, s, n);
}

/* aredis__copy() for ranges that may overlap. */
static AREDIS__ALWAYS_INLINE void aredis__move(char *d, const char *s, size_t n) {
    if (n - 1 < 32)
        aredis__copy_small(d, s, n);
    else if (n)
        memmove(d, s, n);
}

#endif
