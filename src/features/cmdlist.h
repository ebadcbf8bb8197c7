/*
 * A list of encoded commands waiting to go out as one batch: what a
 * pipeline or a transaction queues. Each command is checked when queued
 * (refused commands, AUTH/HELLO never get in), encoded with the client's key
 * prefix, and remembered with where it ends, what to strip from its reply,
 * and whether its reply is the caller's (`hidden`: a script's SCRIPT LOAD
 * sent ahead of it is not).
 */
#ifndef AREDIS_FEATURES_CMDLIST_H
#define AREDIS_FEATURES_CMDLIST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "client/feature.h"

typedef struct aredis__cmdlist {
    aredis_client *client;
    aredis__buf buf; /* the commands, encoded one after the other */
    size_t n, cap;
    size_t *ends;          /* ends[i]: where command i ends in buf */
    unsigned *strip;       /* per command: what to strip from its reply */
    unsigned char *hidden; /* per command: 1 = its reply is not the caller's */
    size_t visible;        /* commands whose replies are the caller's */
    uint64_t block_ms;     /* total block time of blocking commands */
    int block_forever, sensitive, session;
} aredis__cmdlist;

void aredis__cmdlist_init(aredis__cmdlist *l, aredis_client *c);
/* Queue one command (format or argv form). On error nothing is queued and
 * aredis_call_error() says why. */
aredis_err aredis__cmdlist_add(aredis__cmdlist *l, int argc, const char *const *argv,
                               const size_t *argvlen, const char *fmt, va_list *ap, int hidden);
/* Forget every command queued (memory kept for reuse). */
void aredis__cmdlist_reset(aredis__cmdlist *l);
void aredis__cmdlist_free(aredis__cmdlist *l);
/* A batch spec for the list as it is (bytes, ends, blocking, sensitive). */
void aredis__cmdlist_spec(const aredis__cmdlist *l, aredis__batch_spec *s);

/* ---- One command as a batch of one ---------------------------------------- */

/*
 * A command that must go through the batch path (it belongs to a
 * reservation, or its reply must come back raw): encoded for the client
 * (key prefix), checked as a batch command when `check` (refusals, block
 * time, secrets), sent as a batch of one.
 */
typedef struct aredis__one {
    aredis__part_fn *part;
    aredis_reply_fn *done;
    void *data;
    const void *owner;
    unsigned flags; /* AREDIS__BATCH_* */
    int check;
} aredis__one;
aredis_err aredis__send_one(aredis_client *c, const aredis__one *o, int argc,
                            const char *const *argv, const size_t *argvlen, const char *fmt,
                            va_list *ap, aredis__cmd **out);

/*
 * Relaying a batch-of-one's reply to a command callback, as a plain
 * command's would arrive (aredis__deliver): embed an aredis__relay first in
 * the data, give aredis__relay_part as the part hook, and call
 * aredis__relay_finish from the done callback (it does not free the data).
 */
typedef struct aredis__relay {
    aredis_reply_fn *cb;
    void *data;
    aredis_reply *r;
} aredis__relay;
void aredis__relay_part(aredis_client *c, aredis_reply *r, size_t index, void *data);
void aredis__relay_finish(aredis_client *c, aredis__relay *x, const aredis_error *err);

#endif
