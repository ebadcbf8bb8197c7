/*
 * Portability fallbacks for what Linux has and other systems may lack. Each
 * is used where the Linux way exists and replaced by the portable one (fcntl)
 * elsewhere; nothing here changes behaviour on Linux.
 *
 *   MSG_NOSIGNAL   send() without SIGPIPE when the peer has gone. Missing on
 *                  macOS: defined as 0 here, and sockets are made with
 *                  SO_NOSIGPIPE instead (net/socket.c), which has the same
 *                  effect for every send() on them. On a system with neither
 *                  the application must ignore SIGPIPE itself.
 *   pipe2()        aredis__pipe_cloexec_nonblock(): pipe() then fcntl() where
 *                  there is no pipe2 (macOS). Set AREDIS_HAVE_PIPE2 to 0 or 1
 *                  to override the guess below.
 *   SOCK_NONBLOCK, SOCK_CLOEXEC: see aredis__socket() in net/socket.c.
 *
 * The fcntl() fallbacks leave a short window in which a fork()+exec() on
 * another thread may inherit the descriptor: the best those systems allow.
 */
#ifndef AREDIS_UTIL_COMPAT_H
#define AREDIS_UTIL_COMPAT_H

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h> /* first: glibc defines MSG_NOSIGNAL as a macro here */
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#ifndef AREDIS_HAVE_PIPE2
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) ||   \
    defined(__DragonFly__)
#define AREDIS_HAVE_PIPE2 1
#else
#define AREDIS_HAVE_PIPE2 0
#endif
#endif

/* Set O_NONBLOCK and FD_CLOEXEC on fd. 0, or -1 with errno set. */
static inline int aredis__fd_nonblock_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -1;
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0) return -1;
    return 0;
}

/* pipe2(fds, O_NONBLOCK | O_CLOEXEC). 0, or -1 with errno set (no fd left open). */
static inline int aredis__pipe_cloexec_nonblock(int fds[2]) {
#if AREDIS_HAVE_PIPE2
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    if (aredis__fd_nonblock_cloexec(fds[0]) != 0 || aredis__fd_nonblock_cloexec(fds[1]) != 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return -1;
    }
    return 0;
#endif
}

#endif
