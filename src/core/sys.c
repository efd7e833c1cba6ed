/*
 * sys.c — the one door from weft to the kernel for every call the monkey patch (src/hook)
 * can redefine.
 *
 * The hook defines read, recv, close, poll, nanosleep, ... in libweft itself. Any call to
 * those names from inside the library (a pool thread's read, a Pipe's sendmsg, the
 * watchdog's nanosleep) would bind to the hook's definitions, by symbol interposition or,
 * with -Bsymbolic-functions, at link time, and run under rules made for user code. So
 * layers below the hook never name them: they call weft__sys_<name> here, which goes to the
 * kernel with syscall(2) (as musl's __syscall helpers), errno-reporting like libc.
 * tests/check_internal_calls.cmake keeps the rule: no object of the library but the hook's
 * has an undefined reference to a hooked name.
 *
 * Fault injection: every call that gets or may lose a kernel resource (fds, mappings,
 * processes, threads, futex waits) has its wrapper here with a failpoint (sys_internal.h);
 * the names no hook redefines go to libc. `sites` holds each site's trigger and the errno a
 * fired call fails with (what the kernel says when out of that resource). A site is armed
 * while its nth is non-zero; weft__failpoints_armed counts armed sites, so an unarmed build
 * pays one relaxed load per call. Always compiled in: the test presets are every preset that
 * runs tests, the cost is that predictable branch, and libweft.so keeps the names local.
 *
 * Not cancellation points (weft has its own cancellation); EINTR is returned as from libc.
 */

#include "sys_internal.h"
#include "core_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifdef WEFT_HAVE_LIBURING
#include <liburing.h>

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define HAVE_SINGLE_THREADED 1
#endif
#endif

#ifdef HAVE_SINGLE_THREADED
const char *weft__single_threaded_flag = &__libc_single_threaded;
#else
static const char never_single_threaded = 0;
const char *weft__single_threaded_flag = &never_single_threaded;
#endif
#endif

/* ---- failpoints ------------------------------------------------------------------------- */

static struct site {
    const char *name;
    int err; /* errno of a fired call */
    _Atomic long nth, calls, failed;
    _Atomic bool persistent;
} sites[WEFT__SITE_COUNT] = {
    [WEFT__SITE_MMAP] = {.name = "mmap", .err = ENOMEM},
    [WEFT__SITE_MUNMAP] = {.name = "munmap", .err = ENOMEM},
    [WEFT__SITE_MPROTECT] = {.name = "mprotect", .err = ENOMEM},
    [WEFT__SITE_MADVISE] = {.name = "madvise", .err = EINVAL},
    [WEFT__SITE_SHM_OPEN] = {.name = "shm_open", .err = EMFILE},
    [WEFT__SITE_FTRUNCATE] = {.name = "ftruncate", .err = ENOSPC},
    [WEFT__SITE_FORK] = {.name = "fork", .err = EAGAIN},
    [WEFT__SITE_SOCKET] = {.name = "socket", .err = EMFILE},
    [WEFT__SITE_SOCKETPAIR] = {.name = "socketpair", .err = EMFILE},
    [WEFT__SITE_ACCEPT4] = {.name = "accept4", .err = EMFILE},
    [WEFT__SITE_DUP3] = {.name = "dup3", .err = EMFILE},
    [WEFT__SITE_EVENTFD] = {.name = "eventfd", .err = EMFILE},
    [WEFT__SITE_EPOLL_CREATE1] = {.name = "epoll_create1", .err = EMFILE},
    [WEFT__SITE_EPOLL_CTL] = {.name = "epoll_ctl", .err = ENOMEM},
    [WEFT__SITE_IO_URING_SETUP] = {.name = "io_uring_setup", .err = ENOMEM},
    [WEFT__SITE_FUTEX_WAIT] = {.name = "futex_wait", .err = EINTR},
    [WEFT__SITE_PTHREAD_CREATE] = {.name = "pthread_create", .err = EAGAIN},
    [WEFT__SITE_PIDFD_OPEN] = {.name = "pidfd_open", .err = EMFILE},
    [WEFT__SITE_PIPE2] = {.name = "pipe2", .err = EMFILE},
};

_Atomic int weft__failpoints_armed;

int weft__failpoint_set(int site, long nth, bool persistent)
{
    if (site < 0 || site >= WEFT__SITE_COUNT || nth < 0) return WEFT_EINVAL;
    struct site *s = &sites[site];
    long was = atomic_exchange(&s->nth, 0);
    if (was) atomic_fetch_sub(&weft__failpoints_armed, 1);
    atomic_store(&s->calls, 0);
    atomic_store(&s->failed, 0);
    atomic_store(&s->persistent, persistent);
    if (nth) {
        atomic_store(&s->nth, nth);
        atomic_fetch_add(&weft__failpoints_armed, 1);
    }
    return 0;
}

long weft__failpoint_failed(int site)
{
    if (site < 0 || site >= WEFT__SITE_COUNT) return 0;
    return atomic_load(&sites[site].failed);
}

const char *weft__failpoint_name(int site)
{
    if (site < 0 || site >= WEFT__SITE_COUNT) return "?";
    return sites[site].name;
}

bool weft__failpoint_fire(weft__site_t site)
{
    struct site *s = &sites[site];
    long nth = atomic_load(&s->nth);
    if (!nth) return false;
    long n = atomic_fetch_add(&s->calls, 1) + 1;
    if (n != nth && !(n > nth && atomic_load(&s->persistent))) return false;
    atomic_fetch_add(&s->failed, 1);
    errno = s->err;
    return true;
}

/* ---- hooked names: straight to the kernel ----------------------------------------------- */

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

ssize_t weft__sys_read_nowait(int fd, void *buf, size_t n)
{
    struct iovec iov = {buf, n};
    return syscall(SYS_preadv2, fd, &iov, 1, -1L, -1L, RWF_NOWAIT);
}

ssize_t weft__sys_writev(int fd, const struct iovec *iov, int n)
{
    return syscall(SYS_writev, fd, iov, n);
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
    if (weft__failpoint(WEFT__SITE_ACCEPT4)) return -1;
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

int weft__sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return (int)syscall(SYS_connect, fd, addr, len);
}

int weft__sys_socket(int domain, int type, int protocol)
{
    if (weft__failpoint(WEFT__SITE_SOCKET)) return -1;
    return (int)syscall(SYS_socket, domain, type, protocol);
}

int weft__sys_socketpair(int domain, int type, int protocol, int sv[2])
{
    if (weft__failpoint(WEFT__SITE_SOCKETPAIR)) return -1;
    return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

int weft__sys_pipe2(int fds[2], int flags)
{
    if (weft__failpoint(WEFT__SITE_PIPE2)) return -1;
    return (int)syscall(SYS_pipe2, fds, flags);
}

int weft__sys_setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    return (int)syscall(SYS_setsockopt, fd, level, name, value, len);
}

int weft__sys_open(const char *path, int flags)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags);
}

int weft__sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

/* Closes the open fds in [first, last] listed in /proc/self/fd (read with getdents64 into a
 * stack buffer: no allocation, fit for a fork child). false if /proc cannot be read. */
static bool close_listed(unsigned first, unsigned last)
{
    int dir = weft__sys_open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return false;
    char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            const struct dirent64 *d = (const struct dirent64 *)(buf + off);
            off += d->d_reclen;
            unsigned fd = 0;
            const char *c = d->d_name;
            if (*c < '0' || *c > '9') continue; /* "." and ".." */
            for (; *c >= '0' && *c <= '9' && fd <= INT_MAX / 10; c++)
                fd = fd * 10 + (unsigned)(*c - '0');
            if (fd >= first && fd <= last && (int)fd != dir) (void)syscall(SYS_close, fd);
        }
    }
    (void)syscall(SYS_close, dir);
    return n == 0;
}

int weft__sys_close_range(unsigned first, unsigned last)
{
    if (first > last) return 0;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, last, 0) == 0) return 0;
#endif
    if (close_listed(first, last)) return 0;
    struct rlimit lim; /* no /proc: one close per possible fd */
    unsigned end = last;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur <= end)
        end = lim.rlim_cur ? (unsigned)lim.rlim_cur - 1 : 0;
    for (unsigned fd = first; fd <= end && fd <= INT_MAX; fd++) (void)syscall(SYS_close, fd);
    return 0;
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
    if (weft__failpoint(WEFT__SITE_DUP3)) return -1;
    return (int)syscall(SYS_dup3, fd, to, flags);
}

/* ---- names no hook redefines: libc, behind a failpoint ---------------------------------- */

void *weft__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (weft__failpoint(WEFT__SITE_MMAP)) return MAP_FAILED;
    return mmap(addr, len, prot, flags, fd, off);
}

int weft__sys_munmap(void *addr, size_t len)
{
    if (weft__failpoint(WEFT__SITE_MUNMAP)) return -1;
    return munmap(addr, len);
}

int weft__sys_mprotect(void *addr, size_t len, int prot)
{
    if (weft__failpoint(WEFT__SITE_MPROTECT)) return -1;
    return mprotect(addr, len, prot);
}

int weft__sys_madvise(void *addr, size_t len, int advice)
{
    if (weft__failpoint(WEFT__SITE_MADVISE)) return -1;
    return madvise(addr, len, advice);
}

int weft__sys_shm_open(const char *name, int oflag, mode_t mode)
{
    if (weft__failpoint(WEFT__SITE_SHM_OPEN)) return -1;
    return shm_open(name, oflag, mode);
}

int weft__sys_ftruncate(int fd, off_t len)
{
    if (weft__failpoint(WEFT__SITE_FTRUNCATE)) return -1;
    return ftruncate(fd, len);
}

pid_t weft__sys_fork(void)
{
    if (weft__failpoint(WEFT__SITE_FORK)) return -1;
    return fork();
}

int weft__sys_eventfd(unsigned value, int flags)
{
    if (weft__failpoint(WEFT__SITE_EVENTFD)) return -1;
    return eventfd(value, flags);
}

int weft__sys_epoll_create1(int flags)
{
    if (weft__failpoint(WEFT__SITE_EPOLL_CREATE1)) return -1;
    return epoll_create1(flags);
}

int weft__sys_epoll_ctl(int epfd, int op, int fd, void *event)
{
    if (weft__failpoint(WEFT__SITE_EPOLL_CTL)) return -1;
    return epoll_ctl(epfd, op, fd, event);
}

#ifdef WEFT_HAVE_LIBURING
int weft__sys_io_uring_setup(unsigned entries, struct io_uring *ring, unsigned flags)
{
    if (weft__failpoint(WEFT__SITE_IO_URING_SETUP)) return -sites[WEFT__SITE_IO_URING_SETUP].err;
    return io_uring_queue_init(entries, ring, flags);
}
#endif

long weft__sys_futex_wait(_Atomic uint32_t *word, int op, uint32_t expect,
                          const struct timespec *abs)
{
    if (weft__failpoint(WEFT__SITE_FUTEX_WAIT)) return -1;
    return syscall(SYS_futex, (uint32_t *)word, op, expect, abs, NULL, FUTEX_BITSET_MATCH_ANY);
}

int weft__sys_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                             void *arg)
{
    if (weft__failpoint(WEFT__SITE_PTHREAD_CREATE)) return sites[WEFT__SITE_PTHREAD_CREATE].err;
    return pthread_create(t, attr, fn, arg);
}

int weft__sys_pidfd_open(pid_t pid)
{
    if (weft__failpoint(WEFT__SITE_PIDFD_OPEN)) return -1;
    return (int)syscall(SYS_pidfd_open, pid, 0);
}
