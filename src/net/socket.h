/*
 * Sockets: non-blocking connect (TCP over IPv4/IPv6, unix), socket options,
 * and errno mapping. Resolution is in net/resolve.h.
 */
#ifndef AREDIS_NET_SOCKET_H
#define AREDIS_NET_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

#include "aredis/error.h"

struct addrinfo;

/*
 * Start a non-blocking connect. Returns the fd (connected or in progress;
 * *in_progress tells) or -1 with errno set.
 */
int aredis__connect_addr(const struct addrinfo *ai, unsigned keepalive_s, int *in_progress);
int aredis__connect_unix(const char *path, int *in_progress);

/* After a writable event on a connecting fd: 0 when connected, else the
 * errno of the failure. */
int aredis__connect_result(int fd);

/* TCP_NODELAY, and keepalive after keepalive_s idle seconds (0 = off). */
void aredis__sock_tune(int fd, unsigned keepalive_s);

/* The address a connected fd talks to, as text, and its port (0 for a
 * unix socket, whose address is `unix_path`). Returns 0, or -1. */
int aredis__sock_peer(int fd, const char *unix_path, char *buf, size_t len, int *port);

/* Map a connect/read/write errno to an aredis error code. */
aredis_err aredis__errno_code(int err);

#endif
