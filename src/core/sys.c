/*
 * sys.c — the one door from weft to the kernel for every call the monkey patch (src/hook)
 * can redefine.
 *
 * The hook defines read, recv, close, poll, nanosleep, ... in libweft itself. Any call to
 * those names from inside the library (a pool thread's read, a Pipe's sendmsg, the
 * watchdog's nanosleep) would bind to the hook's definitions, by symbol interposition or,
 * with -Bsymbolic-functions, at link time, and run under rules made for user code. So
 * layers below the hook never name them: they call weft__sys_<name> here, which goes to the
 * kernel with syscall(2) (as musl's __syscall helpers), errno-reporting like libc. Later,
 * fault injection hooks in at this file too. tests/check_internal_calls.cmake keeps the rule:
 * no object of the library but the hook's has an undefined reference to a hooked name.
 *
 * Not cancellation points (weft has its own cancellation); EINTR is returned as from libc.
 */

#include "sys_internal.h"
#include "core_internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

ssize_t weft__sys_read(int fd, void *buf, size_t n)
{
    return syscall(SYS_read, fd, buf, n);
}

ssize_t weft__sys_write(int fd, const void *buf, size_t n)
{
    return syscall(SYS_write, fd, buf, n);
}

ssize_t weft__sys_recv(int fd, void *buf, size_t n, int flags)
{
    return syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
}

ssize_t weft__sys_send(int fd, const void *buf, size_t n, int flags)
{
    return syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}

ssize_t weft__sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return syscall(SYS_sendmsg, fd, msg, flags);
}

ssize_t weft__sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return syscall(SYS_recvmsg, fd, msg, flags);
}

int weft__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

int weft__sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return (int)syscall(SYS_connect, fd, addr, len);
}

int weft__sys_socket(int domain, int type, int protocol)
{
    return (int)syscall(SYS_socket, domain, type, protocol);
}

int weft__sys_socketpair(int domain, int type, int protocol, int sv[2])
{
    return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

int weft__sys_setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    return (int)syscall(SYS_setsockopt, fd, level, name, value, len);
}

int weft__sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

int weft__sys_fcntl(int fd, int cmd, long arg)
{
    return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int weft__sys_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts)
{
    /* The kernel writes back the time left into ts: hand it a copy (libc's ppoll does too). */
    struct timespec copy, *tsp = NULL;
    if (ts) {
        copy = *ts;
        tsp = &copy;
    }
    return (int)syscall(SYS_ppoll, fds, n, tsp, NULL, (size_t)_NSIG / 8);
}

int weft__sys_nanosleep(const struct timespec *ts)
{
    struct timespec left = *ts;
    /* Relative CLOCK_MONOTONIC sleep, restarted after a signal for what is left. */
    for (;;) {
        long r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &left, &left);
        if (r == 0 || errno != EINTR) return (int)r;
    }
}

int weft__sys_poll(struct pollfd *fds, nfds_t n, int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    return weft__sys_ppoll(fds, n, ms < 0 ? NULL : &ts);
}

int weft__sys_dup3(int fd, int to, int flags)
{
    return (int)syscall(SYS_dup3, fd, to, flags);
}
