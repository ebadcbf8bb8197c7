/*
 * Hash slots (slot.h). The CRC16 is table-driven: one lookup and two
 * operations per byte (a command's slot is computed for every command a
 * cluster client sends). The table is CRC16/XMODEM's, generated from its
 * definition — entry i is i << 8 run through eight steps of "shift left,
 * XOR 0x1021 when the top bit fell out" — and unit/slot checks every entry
 * against that definition.
 */
#include "proto/slot.h"

#include <string.h>

#include "util/alloc.h"

static const uint16_t crc16_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7, 0x8108, 0x9129, 0xa14a, 0xb16b,
    0xc18c, 0xd1ad, 0xe1ce, 0xf1ef, 0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de, 0x2462, 0x3443, 0x0420, 0x1401,
    0x64e6, 0x74c7, 0x44a4, 0x5485, 0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4, 0xb75b, 0xa77a, 0x9719, 0x8738,
    0xf7df, 0xe7fe, 0xd79d, 0xc7bc, 0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b, 0x5af5, 0x4ad4, 0x7ab7, 0x6a96,
    0x1a71, 0x0a50, 0x3a33, 0x2a12, 0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41, 0xedae, 0xfd8f, 0xcdec, 0xddcd,
    0xad2a, 0xbd0b, 0x8d68, 0x9d49, 0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78, 0x9188, 0x81a9, 0xb1ca, 0xa1eb,
    0xd10c, 0xc12d, 0xf14e, 0xe16f, 0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e, 0x02b1, 0x1290, 0x22f3, 0x32d2,
    0x4235, 0x5214, 0x6277, 0x7256, 0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405, 0xa7db, 0xb7fa, 0x8799, 0x97b8,
    0xe75f, 0xf77e, 0xc71d, 0xd73c, 0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab, 0x5844, 0x4865, 0x7806, 0x6827,
    0x18c0, 0x08e1, 0x3882, 0x28a3, 0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92, 0xfd2e, 0xed0f, 0xdd6c, 0xcd4d,
    0xbdaa, 0xad8b, 0x9de8, 0x8dc9, 0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8, 0x6e17, 0x7e36, 0x4e55, 0x5e74,
    0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

uint16_t aredis__crc16(const char *p, size_t n) {
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ (unsigned char)p[i]) & 0xff]);
    return crc;
}

unsigned aredis__key_slot(const char *key, size_t n) {
    /* A hash tag: the bytes between the first '{' and the next '}', if
     * there are any ("{}" is no tag: the whole key counts). */
    for (size_t s = 0; s < n; s++) {
        if (key[s] != '{') continue;
        for (size_t e = s + 1; e < n; e++) {
            if (key[e] != '}') continue;
            if (e > s + 1) return aredis__crc16(key + s + 1, e - s - 1) & (AREDIS__SLOTS - 1);
            break;
        }
        break;
    }
    return aredis__crc16(key, n) & (AREDIS__SLOTS - 1);
}

int aredis__cmd_slot(const aredis__cmdtable *extra, const char *resp, size_t len, int *first_key) {
    return aredis__cmd_slot_ex(extra, resp, len, first_key, NULL);
}

int aredis__cmd_slot_ex(const aredis__cmdtable *extra, const char *resp, size_t len, int *first_key,
                        uint32_t *flags) {
    enum { MAX_ARGS = 64 };
    aredis__arg small_args[MAX_ARGS];
    int small_pos[MAX_ARGS];
    aredis__arg *args = small_args;
    int *pos = small_pos;
    if (first_key) *first_key = -1;
    if (flags) *flags = 0;
    long na = aredis__resp_args(resp, len, args, MAX_ARGS);
    if (na < 1) return AREDIS__SLOT_UNKNOWN;
    if (na > MAX_ARGS) { /* an MSET of many keys: room for all of them */
        args = aredis__malloc((size_t)na * sizeof *args);
        pos = aredis__malloc((size_t)na * sizeof *pos);
        if (!args || !pos || aredis__resp_args(resp, len, args, (size_t)na) != na) {
            aredis__free(args);
            aredis__free(pos);
            return AREDIS__SLOT_UNKNOWN;
        }
    }
    int slot = AREDIS__SLOT_UNKNOWN;
    const aredis__cmdinfo *ci = aredis__cmd_lookup(extra, args, (size_t)na);
    if (flags) *flags = ci ? ci->flags : 0;
    int nk = ci ? aredis__cmd_keys_ex(ci, args, (size_t)na, pos, (size_t)na, 1) : -1;
    if (nk == 0) {
        slot = AREDIS__SLOT_NONE;
    } else if (nk > 0 && nk <= na) {
        if (first_key) *first_key = pos[0];
        slot = (int)aredis__key_slot(args[pos[0]].p, args[pos[0]].n);
        for (int i = 1; i < nk && slot >= 0; i++)
            if ((int)aredis__key_slot(args[pos[i]].p, args[pos[i]].n) != slot)
                slot = AREDIS__SLOT_CROSS;
    }
    if (args != small_args) {
        aredis__free(args);
        aredis__free(pos);
    }
    return slot;
}

/* ---- A memo of the last command's shape ------------------------------------ */

/* A command whose only key is argument 1, whatever its argument count:
 * one key spec "index 1, range lastkey 0" (GET, SET, HGET, LPUSH...), or
 * no specs and the legacy range 1..1. */
static int key_is_arg1(const aredis__cmdinfo *ci) {
    if (ci->flags & (AREDIS__CF_MOVABLEKEYS | AREDIS__CF_HAS_SUBCOMMANDS)) return 0;
    if (ci->nspecs == 0) return ci->first_key == 1 && ci->last_key == 1;
    const aredis__keyspec *ks = &ci->specs[0];
    return ci->nspecs == 1 && ks->begin == AREDIS__KS_BEGIN_INDEX && ks->index == 1 &&
           ks->find == AREDIS__KS_FIND_RANGE && ks->a == 0 &&
           !(ks->flags & (AREDIS__KSF_NOT_KEY | AREDIS__KSF_INCOMPLETE));
}

int aredis__slot_memo_hit(const aredis__slot_memo *m, const char *resp, size_t len,
                          uint32_t *flags) {
    const char *p = resp, *end = resp + len;
    long long argc = aredis__resp_len(&p, end, '*');
    long long nl = argc >= 2 ? aredis__resp_len(&p, end, '$') : -1;
    if (nl <= 0 || (size_t)nl != m->nlen || end - p < nl + 2 || memcmp(m->name, p, (size_t)nl) != 0)
        return -1;
    p += nl + 2;
    long long kl = aredis__resp_len(&p, end, '$');
    if (kl < 0 || end - p < kl + 2) return -1;
    *flags = m->flags;
    return (int)aredis__key_slot(p, (size_t)kl);
}

int aredis__cmd_slot_memo(aredis__slot_memo *m, const char *resp, size_t len, uint32_t *flags) {
    int slot = aredis__slot_memo_hit(m, resp, len, flags);
    if (slot >= 0) return slot;
    /* Not the last command's name: the full path, remembered when its key
     * is argument 1 (and it neither blocks nor is refused: a hit skips
     * those checks, proto/slot.h). */
    aredis__arg a[2];
    if (aredis__resp_args(resp, len, a, 2) >= 2 && a[0].n <= sizeof m->name) {
        const aredis__cmdinfo *ci = aredis__cmd_lookup(NULL, a, 1);
        if (ci && key_is_arg1(ci) && !(ci->flags & AREDIS__CF_BLOCKING)) {
            memcpy(m->name, a[0].p, a[0].n);
            m->nlen = a[0].n;
            m->flags = ci->flags;
        }
    }
    return aredis__cmd_slot_ex(NULL, resp, len, NULL, flags);
}
