/*
 * Sockets: non-blocking connect, options. Nothing here blocks. Host names
 * are resolved before, in net/resolve.c: numeric addresses locally, names
 * on a resolver thread, never on the loop thread.
 */
#include "net/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/compat.h"

/*
 * A non-blocking, close-on-exec socket: in one call where SOCK_NONBLOCK and
 * SOCK_CLOEXEC exist (Linux, the BSDs), else socket() then fcntl() (macOS).
 * Where send() has no MSG_NOSIGNAL but the socket has SO_NOSIGPIPE (macOS),
 * that is set: writing to a peer that has gone gives EPIPE, never SIGPIPE.
 */
static int sock_open(int domain, int type, int protocol) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0) return -1;
#else
    int fd = socket(domain, type, protocol);
    if (fd < 0) return -1;
    if (aredis__fd_nonblock_cloexec(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
#endif
#ifdef SO_NOSIGPIPE
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return fd;
}

static int finish_connect(int fd, const struct sockaddr *sa, socklen_t len, int *in_progress) {
    *in_progress = 0;
    for (;;) {
        if (connect(fd, sa, len) == 0) return fd;
        if (errno == EINTR) continue;
        /* EAGAIN on a unix socket means a full backlog, not "in progress":
         * the socket is not connecting, so it is a failure. */
        if (errno == EINPROGRESS) {
            *in_progress = 1;
            return fd;
        }
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
}

int aredis__connect_addr(const struct addrinfo *ai, unsigned keepalive_s, int *in_progress) {
    int fd = sock_open(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) return -1;
    aredis__sock_tune(fd, keepalive_s);
    return finish_connect(fd, ai->ai_addr, ai->ai_addrlen, in_progress);
}

int aredis__connect_unix(const char *path, int *in_progress) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, n + 1);
    int fd = sock_open(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    return finish_connect(fd, (struct sockaddr *)&sa, (socklen_t)sizeof sa, in_progress);
}

int aredis__connect_result(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

void aredis__sock_tune(int fd, unsigned keepalive_s) {
    int one = 1;
    /* Commands are batched by the loop turn; Nagle would only add latency. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!keepalive_s) return;
    /* Keepalive finds a peer that vanished without a FIN (a half-open link)
     * after about idle + 3 probes × interval. */
    int idle = keepalive_s > 32767 ? 32767 : (int)keepalive_s;
    int intvl = idle / 3 > 0 ? idle / 3 : 1, cnt = 3;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#if defined(TCP_KEEPIDLE)
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
#elif defined(TCP_KEEPALIVE) /* macOS: the same, by another name */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPALIVE, &idle, sizeof idle);
#endif
#ifdef TCP_KEEPINTVL
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
#endif
#ifdef TCP_KEEPCNT
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#endif
    (void)idle, (void)intvl, (void)cnt; /* some may have no option here */
}

aredis_err aredis__errno_code(int err) {
    switch (err) {
    case ECONNREFUSED:
        return AREDIS_ERR_CONNREFUSED;
    case ETIMEDOUT:
        return AREDIS_ERR_TIMEOUT;
    case ENOMEM:
    case ENOBUFS:
        return AREDIS_ERR_NOMEM;
    default:
        return AREDIS_ERR_IO;
    }
}

int aredis__sock_peer(int fd, const char *unix_path, char *buf, size_t len, int *port) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) return -1;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        if (!inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len)) return -1;
        *port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len)) return -1;
        *port = ntohs(in6->sin6_port);
    } else if (ss.ss_family == AF_UNIX && unix_path) {
        snprintf(buf, len, "%s", unix_path);
        *port = 0;
    } else {
        return -1;
    }
    return 0;
}
