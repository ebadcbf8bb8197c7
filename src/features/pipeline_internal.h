/*
 * What other features (scripts) need of a pipeline: its command list, to
 * queue a hidden SCRIPT LOAD ahead of a script, and the exec with a handle
 * on its batch.
 */
#ifndef AREDIS_FEATURES_PIPELINE_INTERNAL_H
#define AREDIS_FEATURES_PIPELINE_INTERNAL_H

#include "aredis/pipeline.h"
#include "features/cmdlist.h"

aredis__cmdlist *aredis__pipeline_list(aredis_pipeline *p);
aredis_err aredis__pipeline_submit(aredis_pipeline *p, const aredis_cmd_opts *opts,
                                   aredis_reply_fn *cb, void *data, aredis__cmd **out);

#endif
