/*
 * The one string hash of the library's tables (pub/sub registry, metrics
 * names, the client-side cache's store): 64-bit FNV-1a, `seed` mixed into
 * its offset basis (0: plain FNV-1a).
 */
#ifndef AREDIS_UTIL_HASH_H
#define AREDIS_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t aredis__hash(uint64_t seed, const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

#endif
