/*
 * sys_internal.h — the system calls weft makes for itself, past the monkey patch.
 *
 * Every layer below the hook calls these instead of the libc names the hook redefines (see
 * sys.c for why). Same arguments, results and errno as the libc calls they stand for, except
 * that weft__sys_ppoll takes no signal mask and weft__sys_nanosleep sleeps on
 * CLOCK_MONOTONIC and resumes after a signal.
 */
#ifndef WEFT_SYS_INTERNAL_H
#define WEFT_SYS_INTERNAL_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

ssize_t weft__sys_read(int fd, void *buf, size_t n);
ssize_t weft__sys_write(int fd, const void *buf, size_t n);
ssize_t weft__sys_recv(int fd, void *buf, size_t n, int flags);
ssize_t weft__sys_send(int fd, const void *buf, size_t n, int flags);
ssize_t weft__sys_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t weft__sys_recvmsg(int fd, struct msghdr *msg, int flags);
int weft__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int weft__sys_connect(int fd, const struct sockaddr *addr, socklen_t len);
int weft__sys_socket(int domain, int type, int protocol);
int weft__sys_socketpair(int domain, int type, int protocol, int sv[2]);
int weft__sys_setsockopt(int fd, int level, int name, const void *value, socklen_t len);
int weft__sys_close(int fd);
int weft__sys_dup3(int fd, int to, int flags);
int weft__sys_fcntl(int fd, int cmd, long arg);
int weft__sys_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts);
int weft__sys_poll(struct pollfd *fds, nfds_t n, int ms);
int weft__sys_nanosleep(const struct timespec *ts);

#endif /* WEFT_SYS_INTERNAL_H */
