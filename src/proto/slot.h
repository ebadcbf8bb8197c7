/*
 * Redis Cluster's hash slots (no I/O): a key's slot is the CRC16 (XMODEM:
 * polynomial 0x1021, initial value 0) of the key modulo 16384 — or of its
 * hash tag, the bytes between the first '{' and the first '}' after it,
 * when there are any — so that keys sharing a tag ("{user42}.name",
 * "{user42}.mail") land in one slot and may be used together.
 *
 * A command's slot is the one all its keys (per the command table) hash
 * to; keys in several slots cannot be sent as one command to a cluster.
 */
#ifndef AREDIS_PROTO_SLOT_H
#define AREDIS_PROTO_SLOT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/cmdtable.h"

#define AREDIS__SLOTS 16384

/* CRC16/XMODEM of n bytes. */
uint16_t aredis__crc16(const char *p, size_t n);

/* The hash slot of a key (0..16383). */
unsigned aredis__key_slot(const char *key, size_t n);

/* What aredis__cmd_slot says besides a slot number. */
#define AREDIS__SLOT_NONE (-1)  /* no key: any node may serve it */
#define AREDIS__SLOT_CROSS (-2) /* keys in two or more slots (CROSSSLOT) */
#define AREDIS__SLOT_UNKNOWN                                                                       \
    (-3) /* its keys cannot be known (no table entry, an                                           \
            INCOMPLETE key spec), or not one command */

/*
 * The slot of one encoded command (a RESP array of bulk strings, as the
 * writer makes it): its keys found with the command table (the built-in
 * one, then `extra`, may be NULL), all of which must hash to one slot.
 * *first_key, when not NULL, gets the index of its first key argument
 * (-1 without keys), for a caller that wants to quote it.
 */
int aredis__cmd_slot(const aredis__cmdtable *extra, const char *resp, size_t len, int *first_key);
/* The same, and the command's AREDIS__CF_* flags into *flags (0 when the
 * command is not known). */
int aredis__cmd_slot_ex(const aredis__cmdtable *extra, const char *resp, size_t len, int *first_key,
                        uint32_t *flags);

/*
 * The same for the built-in table, faster for a run of commands of one
 * kind: the last command whose only key is argument 1 (GET, SET, HGET...)
 * is remembered by its name's bytes, and the next one of that name is
 * hashed without looking anything up. m starts zeroed.
 */
typedef struct aredis__slot_memo {
    char name[24];
    size_t nlen;
    uint32_t flags;
} aredis__slot_memo;
int aredis__cmd_slot_memo(aredis__slot_memo *m, const char *resp, size_t len, uint32_t *flags);
/* Only the fast part: the slot when the command has the remembered name (a
 * command whose only key is argument 1, that does not block and that the
 * command API does not refuse or treat apart: nothing else to check), or
 * -1. */
int aredis__slot_memo_hit(const aredis__slot_memo *m, const char *resp, size_t len,
                          uint32_t *flags);

#endif
