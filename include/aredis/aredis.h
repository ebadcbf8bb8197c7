/**
 * @file
 * aredis/aredis.h — the umbrella header. Include this one.
 *
 * aredis is an asynchronous Redis client: event-loop agnostic, with callbacks
 * and futures, RESP2 and RESP3, typed errors and timeouts that never deliver
 * one command's reply to another.
 */
#ifndef AREDIS_H
#define AREDIS_H

#include "aredis/export.h"
#include "aredis/alloc.h"
#include "aredis/error.h"
#include "aredis/reply.h"
#include "aredis/reader.h"
#include "aredis/writer.h"
#include "aredis/loop.h"
#include "aredis/client.h"
#include "aredis/future.h"
#include "aredis/scan.h"
#include "aredis/uri.h"
#include "aredis/tls.h"
#include "aredis/log.h"
#include "aredis/pipeline.h"
#include "aredis/tx.h"
#include "aredis/script.h"
#include "aredis/pool.h"
#include "aredis/pubsub.h"
#include "aredis/threads.h"
#include "aredis/observe.h"
#include "aredis/cache.h"
#include "aredis/sentinel.h"
#include "aredis/cluster.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The library version string ("0.1.0"). */
AREDIS_API const char *aredis_version(void);

#ifdef __cplusplus
}
#endif

#endif
