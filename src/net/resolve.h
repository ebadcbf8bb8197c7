/*
 * Host name resolution that never blocks the loop.
 *
 * A numeric host (an IPv4 or IPv6 literal) is parsed at once on the
 * caller's thread: no DNS, no thread. A name is handed to getaddrinfo() on a
 * short-lived detached thread, which wakes the loop through a non-blocking
 * pipe watched with the loop's io watcher (any loop: built-in or adapter).
 * The result is delivered on the loop thread, by the callback.
 */
#ifndef AREDIS_NET_RESOLVE_H
#define AREDIS_NET_RESOLVE_H

#include <stddef.h>

#include "aredis/error.h"
#include "aredis/loop.h"

struct addrinfo;

typedef struct aredis__resolve_job aredis__resolve_job;

/*
 * The outcome of a job, on the loop thread. On success code is OK and res a
 * list the callee owns (freeaddrinfo()); otherwise res is NULL, code is
 * RESOLVE and msg reads "cannot resolve '<host>': <reason>". The job is
 * already gone when this runs: do not cancel it. msg is valid for the call.
 */
typedef void aredis__resolve_fn(void *arg, struct addrinfo *res, aredis_err code, const char *msg);

/*
 * At most this many resolver threads at once, process-wide (cancelled ones
 * still running included): past it a name fails at once with RESOLVE, so a
 * dead DNS server and a fast reconnect policy cannot pile up threads.
 */
#define AREDIS__RESOLVE_MAX_INFLIGHT 64

/*
 * Resolve host:port to stream addresses (AF_UNSPEC, SOCK_STREAM).
 *   - numeric host: returns OK with *res set and *job NULL (cb never runs);
 *   - a name: returns OK with *res NULL and *job set; cb runs exactly once,
 *     later, from the loop, unless the job is cancelled first;
 *   - failure: returns RESOLVE (a bad literal, no pipe, no thread, too many
 *     resolutions in flight) or NOMEM,
 *     with a message in errbuf; cb never runs.
 */
aredis_err aredis__resolve_start(aredis_loop *loop, const char *host, int port,
                                 aredis__resolve_fn *cb, void *arg, struct addrinfo **res,
                                 aredis__resolve_job **job, char *errbuf, size_t errlen);

/*
 * Give up a pending job (NULL ignored): its callback never runs. The thread
 * may still be inside getaddrinfo(); it frees the result and the job when it
 * returns. Loop thread only; never from inside the job's own callback (the
 * job is gone by then).
 */
void aredis__resolve_cancel(aredis__resolve_job *job);

/*
 * Test seam: the getaddrinfo() the resolver threads call (default: the C
 * library's). A replacement is called on a resolver thread and must return a
 * list freeaddrinfo() can free (i.e. come from getaddrinfo) or an EAI_* code.
 * Each job reads it once when it starts: change it only while no name is
 * being resolved. Numeric hosts never reach it.
 */
typedef int aredis__getaddrinfo_fn(const char *node, const char *service,
                                   const struct addrinfo *hints, struct addrinfo **res);
extern aredis__getaddrinfo_fn *aredis__getaddrinfo_hook;

/*
 * Resolver threads that have not finished yet (cancelled ones included):
 * tests wait for 0 before they exit so that nothing is still being freed.
 */
size_t aredis__resolve_inflight(void);

#endif
