/*
 * What other features (scripts) need of a transaction: the hidden list of
 * commands sent before its MULTI (a script's SCRIPT LOAD).
 */
#ifndef AREDIS_FEATURES_TX_INTERNAL_H
#define AREDIS_FEATURES_TX_INTERNAL_H

#include "aredis/tx.h"
#include "features/cmdlist.h"

aredis__cmdlist *aredis__tx_pre(aredis_tx *tx);
aredis__cmdlist *aredis__tx_body(aredis_tx *tx);
aredis_err aredis__tx_watch(aredis_tx *tx, aredis_reply_fn *cb, void *data, int nkeys,
                            const char *const *keys, const size_t *keylens, aredis__cmd **out);

#endif
